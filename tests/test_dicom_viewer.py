"""The slice viewer (issue 14, "a web page with a simple slice viewer"): the REST routes it uses (a series' geometry,
one slice's values) against a real Orthanc, the volume cache, the measurement in words, and the page in a real
chromium signed in to a real `spinemets serve`: open a series from the PACS, window it, click the lesion, read the
measurement and its interpretation, store the SR back."""

from __future__ import annotations

import numpy as np
import pytest

from spinemets.dicom import measure
from spinemets.dicom.series import load_folder
from spinemets.dicom.web import VolumeCache
from tests.dicom_phantoms import ct_spheres
from tests.orthanc_support import orthanc, upload  # noqa: F401
from tests.store_support import PASSWORD, add_token, add_user
from tests.test_web_browser import browser  # noqa: F401 - the chromium fixture

BONE_ISLAND = ((0.0, 0.0, 40.0), 10.0, 1300.0)


@pytest.fixture(scope="module")
def ct(tmp_path_factory):
    folder = tmp_path_factory.mktemp("viewer-ct") / "series"
    made = ct_spheres(folder, [BONE_ISLAND], slope=2.0, intercept=-1024.0, reverse=True, background=40.0)
    return folder, made


# --- the volume cache ------------------------------------------------------------------------------------------------

def test_the_cache_reads_a_series_once_keeps_the_latest_and_forgets_after_its_time():
    now = [0.0]
    cache = VolumeCache(size=2, seconds=300, clock=lambda: now[0])
    reads: list[str] = []

    def load(url):
        reads.append(url)
        return f"volume of {url}"

    assert cache.get("a", load) == "volume of a" and cache.get("a", load) == "volume of a"
    assert reads == ["a"]
    cache.get("b", load)
    cache.get("a", load)       # a used last: b is the oldest
    cache.get("c", load)       # over the size: b goes
    assert reads == ["a", "b", "c"]
    cache.get("a", load)
    cache.get("b", load)
    assert reads == ["a", "b", "c", "b"]
    now[0] = 301.0             # past its time: read again from the PACS
    cache.get("b", load)
    assert reads[-1] == "b" and len(reads) == 5
    cache.clear()
    cache.get("b", load)
    assert len(reads) == 6


def test_the_cache_reads_a_series_once_however_many_ask_at_once_and_keys_by_the_series():
    import threading
    import time as _time

    cache = VolumeCache(size=2, seconds=300)
    reads: list[str] = []
    gate = threading.Event()

    def slow(url):
        reads.append(url)
        gate.wait(5)
        return object()

    base = "https://pacs.example.org/dicom-web/studies/1.2/series/3.4"
    threads = [threading.Thread(target=cache.get, args=(base + ("/" if n % 2 else ""), slow)) for n in range(8)]
    for t in threads:
        t.start()
    _time.sleep(0.2)
    gate.set()
    for t in threads:
        t.join(5)
    assert len(reads) == 1  # eight requests (the URL spelled two ways), one read from the PACS
    kept = cache.get(base, slow)
    assert cache.get(base, slow, fresh=lambda v: v is kept) is kept and len(reads) == 1
    cache.get(base, slow, fresh=lambda v: False)  # the server's images changed: read again
    assert len(reads) == 2


def test_expired_series_are_dropped_on_any_use_and_the_count_is_bounded():
    now = [0.0]
    cache = VolumeCache(size=2, seconds=300, clock=lambda: now[0])
    for name in "abcdef":
        cache.get(name, lambda url: url)
    assert len(cache._items) == 2
    now[0] = 301.0
    cache.get("z", lambda url: url)  # another series asked for: the expired ones go
    assert list(cache._items) == ["z"]


# --- the measurement in words ------------------------------------------------------------------------------------------

def test_the_measurement_in_words_has_the_numbers_and_the_interpretation_without_internal_names(ct):
    volume = load_folder(ct[0])
    lines = measure.describe(measure.roi(volume, [0, 0, 40], 6))
    text = "\n".join(lines)
    assert lines[0].startswith("ROI: sphere of radius 6 mm at (0, 0, 40) mm: mean 1300.0 HU, max 1300.0 HU, SD 0.0")
    assert "Mean attenuation: 1300 HU" in text and "Maximum attenuation: 1300 HU" in text
    assert "885" in text and "1060" in text  # the bone-island cut-offs compared, with their sources
    assert "_" not in text.replace("n_", "")  # no field names (mean_hu, ct_max_hu) shown
    circle = "\n".join(measure.describe(measure.roi(volume, [0, 0, 40], 6, "circle")))
    assert "circle of radius 6 mm on slice 21 (image 20) at" in circle and "mm2" in circle
    mr = measure.describe(measure.of_stats(volume.__class__(**{**volume.__dict__, "modality": "MR", "units": None}),
                                           measure.sphere(volume, [0, 0, 40], 6)))
    assert mr[-1].startswith("A MR series gives signal intensity") and mr[-1].endswith(".")


# --- the REST routes of the viewer -----------------------------------------------------------------------------------

def test_the_viewer_routes_give_the_geometry_and_each_slice_as_stored(orthanc, ct, monkeypatch, db_url, store):  # noqa: F811
    from fastapi.testclient import TestClient

    from spinemets.api.app import create_app
    from spinemets.dicom import web
    from spinemets.store.models import AuditEntry

    folder, made = ct
    upload(orthanc, folder)
    url = f"{orthanc}/studies/{made['study']}/series/{made['series']}"
    monkeypatch.setenv("SPINEMETS_DICOMWEB_SERVERS", orthanc)
    monkeypatch.setenv("SPINEMETS_DATABASE_URL", db_url)
    web.CACHE.clear()
    add_user(store, "bob")
    client = TestClient(create_app())
    assert client.post("/api/v1/dicom/series", json={"series": url}).status_code == 401
    assert client.post("/api/v1/dicom/slice", json={"series": url, "index": 0}).status_code == 401
    client.headers["authorization"] = f"Bearer {add_token(store, 'bob')}"
    r = client.post("/api/v1/dicom/series", json={"series": url})
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store", r.text
    info = r.json()
    volume = load_folder(folder)
    assert (info["slices"], info["rows"], info["columns"]) == volume.shape == (40, 128, 128)
    assert np.allclose(info["affine"], volume.affine) and info["spacing_mm"] == pytest.approx([0.8, 0.8, 2.0])
    assert info["value_range"] == [40.0, 1300.0] and info["window"] is None and info["units"] == "HU"
    assert "Decision support" in info["disclaimer"]
    for k in (0, 20, 39):
        r = client.post("/api/v1/dicom/slice", json={"series": url, "index": k})
        assert r.status_code == 200 and r.headers["content-type"] == "application/octet-stream"
        values = np.frombuffer(r.content, dtype="<f4").reshape(128, 128)
        assert np.array_equal(values, volume.values(k).astype(np.float32))
    assert values.max() == 40.0  # slice 39 (z = 78 mm) is past the sphere
    r = client.post("/api/v1/dicom/slice", json={"series": url, "index": 40})
    assert r.status_code == 422 and r.json()["field"] == "slice.index" and "40 slices (0 to 39), not 41" in r.json()["detail"]
    r = client.post("/api/v1/dicom/slice", json={"series": url, "index": -1})
    assert r.status_code == 422 and "index" in r.json()["detail"]
    r = client.post("/api/v1/dicom/roi", json={"series": url, "center": [0, 0, 40], "radius_mm": 6})
    assert r.status_code == 200 and "Mean attenuation: 1300 HU" in r.json()["summary"]
    square = [[-4, -4, 40], [4, -4, 40], [4, 4, 40], [-4, 4, 40]]
    r = client.post("/api/v1/dicom/roi", json={"series": url, "shape": "polygon", "points": square})
    assert r.status_code == 200 and r.json()["measurement"]["rois"]["series"]["n"] == 100, r.text
    r = client.post("/api/v1/dicom/roi", json={"series": url, "shape": "polygon", "points": square,
                                               "center": [0, 0, 40]})
    assert r.status_code == 422 and "not both" in r.json()["detail"]
    r = client.post("/api/v1/dicom/roi", json={"series": url, "shape": "polygon"})
    assert r.status_code == 422 and "needs its corners" in r.json()["detail"]
    r = client.post("/api/v1/dicom/roi", json={"series": url})
    assert r.status_code == 422 and "needs its centre and radius" in r.json()["detail"]
    with store.session() as s:  # every request audited, the refused ones too (as denied)
        reads = [e for e in s.query(AuditEntry) if e.object_type == "dicom_series" and e.actor == "bob"]
    assert len(reads) >= 10
    r = client.post("/api/v1/dicom/series", json={"series": "http://10.1.2.3/dicom-web/studies/1/series/2"})
    assert r.status_code == 422 and "not one this site allows" in r.json()["detail"]


# --- the page in a real browser ----------------------------------------------------------------------------------------

def wait_text(page, testid: str, text: str, exact: bool = False) -> None:
    page.wait_for_function("([id, t, exact]) => { const e = document.querySelector(`[data-testid=${id}]`); "
                           "return e && (exact ? e.textContent === t : e.textContent.includes(t)); }",
                           arg=[testid, text, exact])


@pytest.fixture(scope="module")
def viewer_server(orthanc, tmp_path_factory):  # noqa: F811
    """One real `spinemets serve` for the page tests, allowing the test Orthanc."""
    from tests.support import QUIET, server

    env = {"SPINEMETS_DATA_DIR": str(tmp_path_factory.mktemp("viewer") / "data"), "SPINEMETS_ADMIN_PASSWORD": PASSWORD,
           "SPINEMETS_DICOMWEB_SERVERS": orthanc}
    with server(env, *QUIET) as (base, _):
        yield base


@pytest.fixture
def viewer(viewer_server, browser):  # noqa: F811
    """A signed-in page (a fresh browser context: its own session) that fails the test on any console error."""
    from tests.store_support import sign_in_page, watched_page

    context = browser.new_context(base_url=viewer_server, viewport={"width": 1200, "height": 1000})
    page, problems = watched_page(context, allowed=("401", "422"))
    sign_in_page(page, "/login?next=/images")
    yield page
    context.close()
    assert not problems, problems


@pytest.fixture
def ct_url(orthanc, ct):  # noqa: F811
    """The CT phantom on the test Orthanc: its DICOMweb URL and UIDs."""
    folder, made = ct
    upload(orthanc, folder)
    return f"{orthanc}/studies/{made['study']}/series/{made['series']}", made


def open_series(page, url, label):
    page.fill("#f-series", url)
    page.click("#images-open button[type=submit]")
    wait_text(page, "slice-label", label, exact=True)


PIXEL = "([x, y]) => Array.from(document.getElementById('image').getContext('2d').getImageData(x, y, 1, 1).data)"


def click_voxel(page, i, j, columns, rows):
    page.locator("[data-testid=image]").scroll_into_view_if_needed()
    box = page.locator("[data-testid=image]").bounding_box()
    page.mouse.click(box["x"] + (i + 0.5) / columns * box["width"], box["y"] + (j + 0.5) / rows * box["height"])


def region_at(page):
    status = page.inner_text("#measure-status")
    return [float(v) for v in status.split("Region at ")[1].split(" mm")[0].split(", ")]


@pytest.mark.browser
@pytest.mark.slow
def test_the_page_windows_a_ct_measures_a_click_draws_the_ring_and_stores_the_sr(orthanc, ct_url, viewer):  # noqa: F811
    from dicomweb_client.api import DICOMwebClient

    page, (url, made) = viewer, ct_url
    assert "Decision support for healthcare professionals" in page.content()
    assert page.locator("#viewer").is_hidden() and page.locator("#store-sr").is_hidden()
    assert page.locator("nav a[href='/images']").count()
    page.fill("#f-series", url.replace(orthanc, "https://elsewhere.example.org/dicom-web"))
    page.click("#images-open button[type=submit]")
    wait_text(page, "images-error", "This PACS address is not one this site allows")
    assert "SPINEMETS" not in page.inner_text("[data-testid=images-error]")
    open_series(page, url, "21 of 40 (image 20)")  # files written in reverse: slice 21 is image 20
    assert "40 slices of 128 x 128" in page.inner_text("[data-testid=series-line]")
    assert page.get_attribute("[data-testid=image]", "aria-label").startswith("Slice 21 of 40 (image 20)")
    # no window stored in the series: its whole range (40 to 1300 HU): the sphere white, the rest black
    assert page.input_value("#f-center") == "670" and page.input_value("#f-width") == "1260"
    page.wait_for_function(f"() => ({PIXEL})([64, 64])[0] === 255")
    assert page.evaluate(PIXEL, [5, 5])[0] == 0
    # a typed window: centre 40, width 100 (DICOM's linear function: 40 HU is just above mid-grey)
    page.fill("#f-center", "40")
    page.fill("#f-width", "100")
    page.dispatch_event("#f-width", "change")
    page.wait_for_function(f"() => [128, 129].includes(({PIXEL})([5, 5])[0])")
    page.fill("#f-width", "-5")  # refused, said, the window kept
    page.dispatch_event("#f-width", "change")
    wait_text(page, "window-error", "Window width must be a number above 0: kept at 100")
    assert page.input_value("#f-width") == "100"
    page.fill("#f-center", "")
    page.dispatch_event("#f-center", "change")
    wait_text(page, "window-error", "Window centre must be a number: kept at 40")
    # a drag changes the window; it places nothing
    page.locator("[data-testid=image]").scroll_into_view_if_needed()
    box = page.locator("[data-testid=image]").bounding_box()
    page.mouse.move(box["x"] + 10, box["y"] + 10)
    page.mouse.down()
    page.mouse.move(box["x"] + 60, box["y"] + 10, steps=5)
    page.mouse.up()
    assert float(page.input_value("#f-width")) > 100
    assert page.locator("[data-testid=measure-lines] li").count() == 0
    page.click("#window-reset")
    # a click on the sphere's centre: x = 0 mm is column 62.5, y = 0 mm row 62.5 (origin -50 mm, 0.8 mm pixels)
    page.fill("#f-radius", "6")
    click_voxel(page, 62.5, 62.5, 128, 128)
    wait_text(page, "measure-lines", "Mean attenuation: 1300 HU")
    lines = page.inner_text("[data-testid=measure-lines]")
    assert "885" in lines and "Decision support" in lines and "mean_hu" not in lines
    assert region_at(page) == pytest.approx([0.0, 0.0, 40.0], abs=0.12)  # within 0.15 pixel of the click
    # the ring (6 mm = 7.5 pixels) around the centre pixel edge at 63: the pixel at 70 is the ring's colour
    page.wait_for_function(f"() => ({PIXEL})([70, 63])[2] < 120")
    ring = page.evaluate(PIXEL, [70, 63])
    assert ring[0] > 200 and 150 < ring[1] < 230 and page.evaluate(PIXEL, [63, 63])[:3] == [255, 255, 255]
    # four slices on (8 mm from the centre, past the 6 mm radius): no ring drawn
    for _ in range(4):
        page.locator("[data-testid=image]").focus()
        page.keyboard.press("ArrowUp")
    wait_text(page, "slice-label", "25 of 40 (image 16)", exact=True)
    row = page.evaluate("() => Array.from(document.getElementById('image').getContext('2d')"
                        ".getImageData(0, 63, 128, 1).data)")
    assert not any(row[n + 2] < 120 and row[n] > 200 for n in range(0, len(row), 4))
    # the radius changed: measured again; an ADC needs its unit (never guessed) and clears the old numbers
    page.fill("#f-radius", "4")
    page.dispatch_event("#f-radius", "change")
    wait_text(page, "measure-lines", "sphere of radius 4 mm")
    page.select_option("#f-measure", "adc")
    assert "Choose the unit" in page.inner_text("#measure-status")
    assert page.locator("[data-testid=measure-lines] li").count() == 0 and page.locator("#store-sr").is_hidden()
    page.select_option("#f-measure", "roi")
    wait_text(page, "measure-lines", "Mean attenuation: 1300 HU")
    # the centre typed (keyboard only): the slice follows it
    page.fill("#f-at", "0, 0, 30")
    page.press("#f-at", "Enter")
    wait_text(page, "slice-label", "16 of 40 (image 25)", exact=True)
    wait_text(page, "measure-status", "Region at 0.0, 0.0, 30.0 mm")
    page.fill("#f-at", "0, 0")
    page.press("#f-at", "Enter")
    wait_text(page, "measure-status", "three numbers x, y, z")
    page.fill("#f-at", "0, 0, 40")
    page.press("#f-at", "Enter")
    wait_text(page, "measure-lines", "Mean attenuation: 1300 HU")
    page.click("#store-sr")
    wait_text(page, "sr-status", "Stored on the PACS")
    stored = DICOMwebClient(url=orthanc).search_for_series(study_instance_uid=made["study"],
                                                          search_filters={"Modality": "SR"})
    assert len(stored) >= 1


def _sagittal_mr(folder):
    """A sagittal MR stack (as in tests/test_dicom.py): 0.5 mm between rows, 1.0 mm between columns, 30 x 50, slices
    3 mm apart along x; one bright voxel; two display windows stored (the first is the one shown)."""
    from pydicom.uid import MRImageStorage, generate_uid

    from tests.dicom_phantoms import _dataset

    folder.mkdir()
    study, series, frame = generate_uid(), generate_uid(), generate_uid()
    for n in range(8):
        image = np.full((30, 50), 100.0)
        if n == 5:
            image[12, 20] = 1000.0  # row 12, column 20
        ds = _dataset(MRImageStorage, "MR", 30, 50, (1.0, 0.5, 3.0), (10.0 + 3.0 * n, -40.0, 60.0),
                      (0, 1, 0, 0, 0, -1), image, 1.0, 0.0, study, series, frame, n + 1, "sagittal")
        ds.WindowCenter, ds.WindowWidth = [500, 100], [1000, 200]
        ds.save_as(folder / f"s{n}.dcm", enforce_file_format=True)
    return study, series


@pytest.mark.browser
@pytest.mark.slow
def test_a_sagittal_anisotropic_series_its_own_window_and_an_exact_click(orthanc, viewer, tmp_path):  # noqa: F811
    page = viewer
    study, series = _sagittal_mr(tmp_path / "sag")
    upload(orthanc, tmp_path / "sag")
    open_series(page, f"{orthanc}/studies/{study}/series/{series}", "5 of 8 (image 4)")
    assert page.input_value("#f-center") == "500" and page.input_value("#f-width") == "1000"  # the first window
    # the normal (rows x columns) is -x: slice 3 of 8 is x = 25 mm, the bright voxel's
    for _ in range(2):
        page.locator("[data-testid=image]").focus()
        page.keyboard.press("ArrowDown")
    wait_text(page, "slice-label", "3 of 8 (image 6)", exact=True)
    page.select_option("#f-shape", "circle")
    page.fill("#f-radius", "0.3")
    page.locator("[data-testid=image]").scroll_into_view_if_needed()
    box = page.locator("[data-testid=image]").bounding_box()
    assert box["width"] / box["height"] == pytest.approx(50 * 1.0 / (30 * 0.5), rel=0.02)  # shown in mm, not pixels
    click_voxel(page, 20, 12, 50, 30)
    wait_text(page, "measure-lines", "mean 1000.0")
    assert region_at(page) == pytest.approx([25.0, -20.0, 54.0], abs=0.15)
    assert "A MR series gives signal intensity" in page.inner_text("[data-testid=measure-lines]")


@pytest.mark.browser
@pytest.mark.slow
def test_a_slice_or_a_measurement_of_a_series_no_longer_open_is_never_shown(orthanc, ct_url, viewer,  # noqa: F811
                                                                             tmp_path):
    page, (first, _) = viewer, ct_url
    other = ct_spheres(tmp_path / "plain", [((22.0, 22.0, 40.0), 7.0, 700.0)], background=40.0)  # no central sphere
    upload(orthanc, tmp_path / "plain")
    second = f"{orthanc}/studies/{other['study']}/series/{other['series']}"
    held = []
    hold_measurements = [False]

    def hold(route):
        if first in (route.request.post_data or "") or (hold_measurements[0] and route.request.url.endswith("/roi")):
            held.append(route)  # the first series' answers wait
        else:
            route.continue_()

    page.route("**/api/v1/dicom/slice", hold)
    page.route("**/api/v1/dicom/roi", hold)
    page.fill("#f-series", first)
    page.click("#images-open button[type=submit]")
    page.wait_for_function("() => !document.getElementById('viewer').hidden")
    page.wait_for_timeout(300)
    assert len(held) == 1  # the first series' middle slice, held
    open_series(page, second, "21 of 40 (image 21)")
    page.wait_for_function(f"() => ({PIXEL})([64, 64])[0] === 0")  # the second series' background, black
    before = page.evaluate(PIXEL, [64, 64])
    for route in held:
        route.continue_()
    page.wait_for_timeout(500)
    assert page.evaluate(PIXEL, [64, 64]) == before  # the first series' sphere never drawn on the second
    assert page.inner_text("[data-testid=slice-label]") == "21 of 40 (image 21)"
    # a measurement of the first series answered after the second was opened is dropped too
    click_voxel(page, 62.5, 62.5, 128, 128)
    wait_text(page, "measure-lines", "Mean attenuation: 40 HU")
    # a measurement still under way when the series is opened again is dropped, not shown for the new one
    held.clear()
    hold_measurements[0] = True
    click_voxel(page, 30, 30, 128, 128)
    page.wait_for_function("() => document.querySelector('[data-testid=measure-status]').textContent === 'Measuring…'")
    assert len(held) == 1
    open_series(page, second, "21 of 40 (image 21)")
    wait_text(page, "measure-status", "No region placed yet.", exact=True)  # opened again, then the answer comes
    held[0].continue_()
    page.wait_for_timeout(500)
    assert page.inner_text("[data-testid=measure-status]") == "No region placed yet."
    assert page.locator("[data-testid=measure-lines] li").count() == 0


@pytest.mark.browser
@pytest.mark.slow
def test_a_polygon_is_clicked_corner_by_corner_closed_measured_and_stored(orthanc, ct_url, viewer):  # noqa: F811
    page, (url, _) = viewer, ct_url
    open_series(page, url, "21 of 40 (image 20)")
    page.select_option("#f-shape", "polygon")
    wait_text(page, "polygon-count", "Click the corners")
    assert page.locator("#polygon-close").is_disabled()
    # an 8 mm square around the sphere's centre: corners at columns and rows 57.5 and 67.5 (x, y = -4 and 4 mm)
    for i, j in ((57.5, 57.5), (67.5, 57.5), (67.5, 67.5)):
        click_voxel(page, i, j, 128, 128)
    wait_text(page, "polygon-count", "3 corners placed")
    assert page.locator("[data-testid=measure-lines] li").count() == 0  # nothing measured before it is closed
    click_voxel(page, 57.5, 67.5, 128, 128)
    page.click("#polygon-close")
    wait_text(page, "measure-lines", "polygon of 4 corners on slice 21 (image 20)")
    lines = page.inner_text("[data-testid=measure-lines]")
    assert "100 voxels" in lines and "mean 1300.0 HU" in lines  # 10 x 10 pixel centres inside
    page.fill("#f-at", "0, 0, 40")
    page.press("#f-at", "Enter")
    wait_text(page, "measure-status", "choose one of them as the region")
    page.click("#store-sr")
    wait_text(page, "sr-status", "Stored on the PACS")


@pytest.mark.browser
@pytest.mark.slow
def test_six_landmarks_clicked_on_a_sagittal_image_give_the_heights_and_the_sins_collapse(orthanc, viewer,  # noqa: F811
                                                                                           tmp_path):
    page = viewer
    study, series = _sagittal_mr(tmp_path / "sag")
    upload(orthanc, tmp_path / "sag")
    open_series(page, f"{orthanc}/studies/{study}/series/{series}", "5 of 8 (image 4)")
    page.select_option("#f-measure", "height")
    wait_text(page, "height-next", "Click the anterior wall, upper endplate (1 of 6)")
    page.fill("#f-reference", "13")
    # rows 0.5 mm apart: the anterior wall 12 rows (6 mm) high, the middle 20 rows (10 mm), the posterior 24 (12 mm)
    for i, j in ((10, 16), (10, 28), (20, 8), (20, 28), (30, 4), (30, 28)):
        click_voxel(page, i, j, 50, 30)
    wait_text(page, "measure-lines", "SINS collapse: more than 50% vertebral body collapse")
    lines = page.inner_text("[data-testid=measure-lines]")
    assert "Genant grade 3" in lines and "heights: anterior" in lines and "Decision support" in lines
    wait_text(page, "height-next", "All six landmarks placed.")
    page.fill("#f-reference", "")
    page.dispatch_event("#f-reference", "change")  # no expected height: no grade is guessed
    wait_text(page, "measure-status", "Heights and ratios only")
    assert "Genant grade" not in page.inner_text("[data-testid=measure-lines]").replace("its Genant grade", "")
    page.fill("#f-reference", "-2")
    page.dispatch_event("#f-reference", "change")
    wait_text(page, "measure-status", "must be numbers of millimetres above 0")


@pytest.mark.browser
@pytest.mark.slow
def test_without_signing_in_the_page_says_so_and_reads_nothing(viewer_server, browser, ct_url):  # noqa: F811
    context = browser.new_context(base_url=viewer_server)
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto("/images")
    assert "Decision support for healthcare professionals" in page.content()
    page.fill("#f-series", ct_url[0])
    page.click("#images-open button[type=submit]")
    page.wait_for_selector("#images-signin", state="visible")
    wait_text(page, "images-error", "Sign in first")
    assert page.locator("#viewer").is_hidden()
    context.close()
