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
    assert "circle of radius 6 mm on slice 21 at" in circle and "mm2" in circle
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
    assert r.status_code == 422 and r.json()["field"] == "index" and "40 slices (0 to 39), not 41" in r.json()["detail"]
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


@pytest.mark.browser
@pytest.mark.slow
def test_the_viewer_page_opens_a_series_windows_it_measures_a_click_and_stores_the_sr(orthanc, ct, browser,  # noqa: F811
                                                                                         tmp_path):
    from dicomweb_client.api import DICOMwebClient

    from tests.support import QUIET, server

    folder, made = ct
    upload(orthanc, folder)
    url = f"{orthanc}/studies/{made['study']}/series/{made['series']}"
    env = {"SPINEMETS_DATA_DIR": str(tmp_path / "data"), "SPINEMETS_ADMIN_PASSWORD": PASSWORD,
           "SPINEMETS_DICOMWEB_SERVERS": orthanc}
    with server(env, *QUIET) as (base, _):
        context = browser.new_context(base_url=base, viewport={"width": 1200, "height": 1000})
        page = context.new_page()
        problems: list[str] = []
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" and "401" not in m.text else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.set_default_timeout(15_000)
        page.goto("/images")
        assert "Decision support for healthcare professionals" in page.content()
        assert page.locator("nav a[href='/images']").first.is_visible() or page.locator("nav a[href='/images']").count()
        page.fill("#f-series", url)
        page.click("#images-open button[type=submit]")  # not signed in: said, nothing read
        page.wait_for_selector("#images-signin", state="visible")
        assert "Sign in" in page.inner_text("[data-testid=images-error]")
        page.goto("/login?next=/images")
        page.fill("#f-username", "admin")
        page.fill("#f-password", PASSWORD)
        page.click("[data-testid=login-form] button[type=submit]")
        page.wait_for_url("**/images")
        page.fill("#f-series", url)
        page.click("#images-open button[type=submit]")
        wait_text(page, "slice-label", "21 of 40", exact=True)
        assert "40 slices of 128 x 128" in page.inner_text("[data-testid=series-line]")
        # no window stored in the series: the whole range (40 to 1300 HU), so the sphere is white, the rest black
        assert page.input_value("#f-center") == "670" and page.input_value("#f-width") == "1260"
        grey = "([x, y]) => document.getElementById('image').getContext('2d').getImageData(x, y, 1, 1).data[0]"
        page.wait_for_function(f"() => ({grey})([64, 64]) === 255")
        assert page.evaluate(grey, [5, 5]) == 0
        # a typed window: centre 40, width 100 -> the background mid-grey
        page.fill("#f-center", "40")
        page.fill("#f-width", "100")
        page.dispatch_event("#f-width", "change")
        page.wait_for_function(f"() => [127, 128].includes(({grey})([5, 5]))")
        # a drag changes the window, a click places the region: click the sphere's centre (x 0, y 0 on slice 21)
        page.locator("[data-testid=image]").scroll_into_view_if_needed()
        box = page.locator("[data-testid=image]").bounding_box()
        assert box["y"] >= 0 and box["y"] + box["height"] <= 1000
        page.mouse.move(box["x"] + 10, box["y"] + 10)
        page.mouse.down()
        page.mouse.move(box["x"] + 60, box["y"] + 10, steps=5)
        page.mouse.up()
        assert float(page.input_value("#f-width")) > 100
        assert page.locator("[data-testid=measure-lines] li").count() == 0  # a drag is not a click
        page.fill("#f-radius", "6")
        box = page.locator("[data-testid=image]").bounding_box()  # where it is now
        x = box["x"] + (62.5 + 0.5) / 128 * box["width"]   # x = 0 mm is column 62.5 (origin -50, 0.8 mm)
        y = box["y"] + (62.5 + 0.5) / 128 * box["height"]
        page.mouse.click(x, y)
        wait_text(page, "measure-lines", "Mean attenuation: 1300 HU")
        lines = page.inner_text("[data-testid=measure-lines]")
        assert "885" in lines and "Decision support" in lines and "mean_hu" not in lines
        status = page.inner_text("#measure-status")
        at = [float(v) for v in status.split("Region at ")[1].split(" mm")[0].split(", ")]
        assert at == pytest.approx([0.0, 0.0, 40.0], abs=0.5), status  # within a pixel of the click
        # the wheel moves one slice; the ROI ring is drawn where the sphere crosses it
        page.mouse.wheel(0, 100)
        wait_text(page, "slice-label", "22 of 40", exact=True)
        # an ADC measurement needs its unit, never guessed
        page.select_option("#f-measure", "adc")
        assert "Choose the unit" in page.inner_text("#measure-status")
        page.select_option("#f-measure", "roi")
        wait_text(page, "measure-lines", "Mean attenuation: 1300 HU")
        page.click("#store-sr")
        wait_text(page, "sr-status", "Stored on the PACS")
        context.close()
    stored = DICOMwebClient(url=orthanc).search_for_series(study_instance_uid=made["study"],
                                                          search_filters={"Modality": "SR"})
    assert stored
    assert not problems, problems
