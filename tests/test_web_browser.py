"""The web pages in a real browser: Playwright (sync API) driving Debian's chromium against `spinemets serve`.

Never downloads a browser: chromium comes from `apt-get install -y chromium` (scripts/system-deps.sh).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from spinemets.api import ask as ask_adapter
from spinemets.api import features as registry
from tests.conftest import ROOT

CHROMIUM = "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is missing: install it with `apt-get install -y chromium`"
)
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, live_server):
    """A page that fails the test on any console error (a CSP violation is one) or uncaught exception."""
    context = browser.new_context(base_url=live_server)
    pg = context.new_page()
    problems: list[str] = []
    pg.on("console", lambda m: problems.append(m.text) if m.type == "error" and "404" not in m.text and "422" not in m.text else None)
    pg.on("pageerror", lambda e: problems.append(str(e)))
    pg.set_default_timeout(10_000)
    yield pg
    context.close()
    assert not problems, problems


def wait_for_text(pg, selector: str, text: str) -> None:
    pg.wait_for_function(
        "([s, t]) => { const e = document.querySelector(s); return e && e.textContent.includes(t); }",
        arg=[selector, text],
    )


# --- SINS ------------------------------------------------------------------------------------------------------


def test_sins_form_to_category_with_live_running_total(page):
    page.goto("/sins")
    assert page.locator(".kb-version").inner_text()
    assert "Decision support for healthcare professionals" in page.content()
    page.select_option("#f-level", "T12")
    wait_for_text(page, "[data-testid=sins-running]", "3")  # junctional location: 3 points so far
    assert page.locator("svg.spine .selected title").text_content().startswith("T12")
    from spinemets.knowledge.loader import load_kb
    from spinemets.web.svg import level_categories

    junctional = [lv for lv, cat in level_categories(load_kb()).items() if cat == "junctional"]
    assert page.locator("svg.spine .in-region").count() == len(junctional)  # the whole region is highlighted
    page.get_by_label("Mechanical pain").check()
    wait_for_text(page, "[data-testid=sins-running]", "6")
    page.locator("input[name=lesion][value=lytic]").check()
    page.get_by_label("Normal alignment").check()
    page.get_by_label("More than 50% vertebral body collapse").check()
    page.get_by_label("Bilateral posterolateral involvement", exact=False).check()
    wait_for_text(page, "[data-testid=sins-total]", "14")
    assert page.locator("[data-testid=sins-category]").inner_text() == "Unstable"
    assert "level=T12" in page.url and "posterolateral=bilateral" in page.url  # bookmarkable
    refs = page.locator(".references li")
    assert refs.count() >= 1
    assert page.locator(".references a.ref-kb").first.get_attribute("href").startswith("/kb/sources/")


def test_sins_by_keyboard_only(page):
    page.goto("/sins")
    page.focus("#f-level")
    page.keyboard.type("L3")  # type-ahead selects the option
    page.keyboard.press("Tab")
    wait_for_text(page, "[data-testid=sins-running]", "2")  # L3: mobile spine, 2 points
    # radio groups: focus the group's first radio, arrow to the next option (selects it)
    page.focus("input[name=pain][value='']")
    page.keyboard.press("ArrowDown")
    wait_for_text(page, "[data-testid=sins-running]", "5")
    assert page.evaluate("document.activeElement.value") == "mechanical"
    # submit with the keyboard
    page.focus("button[type=submit]")
    page.keyboard.press("Enter")
    page.wait_for_url("**/sins?*")
    assert "pain=mechanical" in page.url


def test_sins_works_without_javascript(browser, live_server):
    context = browser.new_context(base_url=live_server, java_script_enabled=False)
    pg = context.new_page()
    pg.goto("/sins")
    pg.select_option("#f-level", "T6")
    pg.locator("input[name=lesion][value=blastic]").check()
    pg.get_by_role("button", name="Calculate").click()
    pg.wait_for_url("**/sins?*")
    assert "total could be 1" in pg.content() and "insufficient data" in pg.content()
    context.close()


def test_sins_error_names_the_field(page):
    page.goto("/sins?level=T12&location=mobile")
    alert = page.get_by_role("alert")
    assert "sins.level" in alert.inner_text() and "sins.location" in alert.inner_text()
    assert page.locator("#f-level").get_attribute("aria-invalid") == "true"


# --- pathway ---------------------------------------------------------------------------------------------------


def test_pathway_cord_compression_leads_with_what_to_do_now(page):
    page.goto("/pathway")
    page.select_option("#f-cancer-history", "current")
    page.fill("#f-primary-site", "lung")
    page.select_option("#f-spinal-pain", "yes")
    page.locator("#f-neuro-deficits input[value=motor_weakness]").check()
    page.get_by_role("button", name="Run").click()
    page.wait_for_url("**/pathway?*")
    summary = page.locator("[data-testid=pathway-summary]").inner_text()
    assert summary.startswith("Suspected spinal cord compression, emergency. Now: Contact the MSCC coordinator")
    steps = page.locator("[data-testid=pathway-actions] > ol > li")
    assert steps.count() == 6 and "dexamethasone 16 mg" in steps.nth(1).inner_text()
    # staging comes in its own section after the spine study
    assert page.locator("[data-testid=pathway-staging] > li").count() >= 1


def test_pathway_pregnant_patient_gets_unenhanced_mri(page):
    page.goto("/pathway")
    page.select_option("#f-pregnant", "yes")
    page.select_option("#f-cancer-history", "current")
    page.fill("#f-primary-site", "breast")
    page.select_option("#f-spinal-pain", "yes")
    page.locator("#f-neuro-deficits input[value=__none__]").check()
    page.get_by_role("button", name="Run").click()
    page.wait_for_url("**/pathway?*")
    summary = page.locator("[data-testid=pathway-summary]").inner_text()
    assert summary.startswith("MRI of the whole spine without IV contrast")
    assert "Whole-body MRI with diffusion-weighted imaging" in page.locator("[data-testid=pathway-staging]").inner_text()


def test_pathway_run_and_open_a_reference(page):
    page.goto("/pathway")
    page.select_option("#f-cancer-history", "previous")
    page.fill("#f-primary-site", "prostate")
    page.select_option("#f-spinal-pain", "yes")
    page.select_option("#f-pain-region", "lumbar")
    page.locator("#f-neuro-deficits input[value=__none__]").check()
    page.locator("#f-red-flags input[value=__none__]").check()
    page.get_by_role("button", name="Run").click()
    page.wait_for_url("**/pathway?*")
    summary = page.locator("[data-testid=pathway-summary]").inner_text()
    assert summary.startswith("MRI of the whole spine without and with IV contrast; urgent")
    recs = page.locator("[data-testid=pathway-recommendations] > li")
    assert recs.count() >= 3 and "first line" in recs.first.inner_text()
    # A reference number jumps to its entry; the entry opens the source in the knowledge base.
    first_ref = page.locator("[data-testid=pathway-recommendations] sup.refs a").first
    target = first_ref.get_attribute("href")
    first_ref.click()
    assert page.url.endswith(target)
    entry = page.locator(target)
    assert entry.locator("a.ref-kb").count() == 1
    external = entry.locator("a.ref-source")
    if external.count():
        assert external.get_attribute("rel") == "noopener noreferrer"
        assert external.get_attribute("href").startswith("http")
    entry.locator("a.ref-kb").click()
    page.wait_for_url("**/kb/sources/*")
    assert page.locator("[data-testid=source-citation]").inner_text()
    assert "Last reviewed" in page.content()


# --- other instruments -----------------------------------------------------------------------------------------


def test_escc_highlights_the_grade(page):
    page.goto("/escc")
    assert page.locator(".escc-panel svg.escc").count() == 6
    page.select_option("#f-epidural-disease", "yes")
    page.select_option("#f-thecal-sac-deformed", "yes")
    page.select_option("#f-cord-abutted", "yes")
    page.select_option("#f-cord-compressed", "no")
    wait_for_text(page, "[data-testid=escc-grade]", "1c")
    selected = page.locator(".escc-cell.selected")
    assert selected.count() == 1 and "Grade 1c" in selected.inner_text()


def test_escc_high_grade_either_way_without_a_grade(page):
    page.goto("/escc")
    page.select_option("#f-cord-compressed", "yes")
    wait_for_text(page, "[data-testid=escc-severity]", "high grade either way")
    assert page.locator("[data-testid=escc-grade]").count() == 0


def test_noms_summary(page):
    page.goto("/noms?escc_grade=3&histology=renal+cell+carcinoma&sins_total=8&fit_for_surgery=yes")
    framing = page.locator("[data-testid=noms-framing] li")
    assert framing.count() == 2 and "Separation surgery" in framing.nth(1).inner_text()


def test_probability_with_fagan_nomogram(page):
    page.goto("/probability")
    page.fill("#f-pre-test", "0.1")
    page.select_option("#f-t1-result", "positive")
    page.fill("#f-t1-se", "0.93")
    page.fill("#f-t1-sp", "0.85")
    wait_for_text(page, "[data-testid=post-test]", "40.8%")
    assert page.locator("svg.fagan .fagan-line").count() == 1
    assert "post-test 40.8%" in page.locator("svg.fagan title").first.text_content()


def test_fracture_checklist(page):
    if registry.get("fracture") is None:
        pytest.skip("fracture differential not installed")
    page.goto("/fracture")
    page.locator("input[name=convex_posterior_border][value=present]").check()
    wait_for_text(page, "[data-testid=fracture-leaning]", "malignant")


@pytest.mark.parametrize("name,query,testid", [
    ("marrow", "t1=hypointense&stir=hyperintense", "marrow-summary"),
    ("quantitative", "adc=1.2", "quantitative-summary"),
    ("primaries", "lesion_type=blastic", "primaries-summary"),
])
def test_interpretation_forms(page, name, query, testid):
    if registry.get(name) is None:
        pytest.skip(f"{name} not installed")
    page.goto(f"/{name}?_=1&{query}")
    assert page.locator(f"[data-testid={testid}]").inner_text()
    assert page.locator(".references li").count() >= 1


# --- ask -------------------------------------------------------------------------------------------------------


@pytest.mark.skipif(not ask_adapter.available(), reason="spinemets.ask is not installed")
def test_ask_and_open_a_reference(page):
    page.set_default_navigation_timeout(90_000)  # the first question loads the retrieval model
    page.set_default_timeout(90_000)
    page.goto("/ask")
    page.fill("#f-q", "Is contrast needed for spinal MRI?")
    page.get_by_role("button", name="Ask").click()
    page.wait_for_url("**/ask?*")
    assert page.locator("[data-testid=ask-answer]").inner_text()
    ref = page.locator("sup.refs a").first
    target = ref.get_attribute("href")
    ref.click()
    page.locator(target).locator("a.ref-kb").click()
    page.wait_for_url("**/kb/sources/*")
    assert page.locator("[data-testid=source-citation]").inner_text()


# --- assess, knowledge base, layout ----------------------------------------------------------------------------


def test_assess_printable_summary(page):
    page.goto("/assess")
    page.get_by_role("button", name="Assess").click()
    page.wait_for_selector("[data-testid=assess-statuses]")
    assert page.locator("[data-testid=assess-statuses] tbody tr").count() == 5
    assert page.locator("svg.spine").count() == 1 and page.locator("svg.fagan").count() == 1
    page.emulate_media(media="print")
    assert not page.locator("nav[aria-label=Main]").is_visible()
    assert page.locator(".print-only").first.is_visible()


def test_kb_browser(page):
    page.goto("/kb")
    page.fill("#f-q", "contrast")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**/kb?*")
    first = page.locator("table.kb-list tbody tr").first
    assert "reviewed" in first.inner_text() or "draft" in first.inner_text() or "approved" in first.inner_text()
    first.locator("a").first.click()
    page.wait_for_url("**/kb/statements/*")
    assert "Last reviewed" in page.content() and page.locator("#ref-1").count() == 1


def test_phone_layout_has_no_horizontal_scroll(browser, live_server):
    context = browser.new_context(base_url=live_server, viewport=PHONE, is_mobile=True, has_touch=True)
    pg = context.new_page()
    for path in ("/", "/sins?level=T12&pain=mechanical", "/escc", "/probability?pre_test=0.1&t1_result=positive&t1_modality=mri",
                 "/pathway", "/kb/tables/sins_points"):
        pg.goto(path)
        body_overflow = pg.evaluate("document.body.scrollWidth - window.innerWidth")
        assert body_overflow <= 1, f"{path} scrolls sideways by {body_overflow}px"
    # the SINS running total stays on screen while the form is filled in
    pg.goto("/sins?level=T12")
    box = pg.locator(".total-fixed").bounding_box()
    assert box is not None and box["y"] + box["height"] <= PHONE["height"] + 1
    context.close()


def test_script_payload_never_runs(page):
    payload = '<img src=x onerror="window.__xss=1"><script>window.__xss=1</script>'
    from urllib.parse import quote

    for path in (f"/noms?histology={quote(payload)}", f"/kb?q={quote(payload)}", f"/sins?level={quote(payload)}"):
        page.goto(path)
        assert page.evaluate("window.__xss") is None
        assert page.locator("img[src=x]").count() == 0


def test_screenshots_of_every_page(browser, live_server, tmp_path):
    spec = importlib.util.spec_from_file_location("screenshots", ROOT / "scripts" / "screenshots.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["screenshots"] = module
    spec.loader.exec_module(module)
    files = module.take(live_server, tmp_path, browser=browser)
    names = {f.stem for f in files}
    assert {"home", "pathway", "sins", "escc", "noms", "probability", "kb", "assess-print"} <= names
    for f in files:
        data = f.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
