#!/usr/bin/env python3
"""Save a PNG screenshot of every page of the web app under docs/screenshots/.

    .venv/bin/python scripts/screenshots.py                 # starts its own server on a free loopback port
    .venv/bin/python scripts/screenshots.py --base-url URL  # uses a running server

Drives Debian's chromium (/usr/bin/chromium) through Playwright; it never downloads a browser.
tests/test_web_browser.py runs it too.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
MAX_HEIGHT = 2400  # px: long pages (the knowledge base, a full assessment) are cut here to keep the PNGs small

FULL_SINS = "level=T12&pain=mechanical&lesion=lytic&alignment=normal&collapse=gt50&posterolateral=bilateral"
# (file name, path, viewport); the path fills the form through its query string, as a bookmark would.
PAGES: list[tuple[str, str, dict[str, int]]] = [
    ("home", "/", DESKTOP),
    ("pathway", "/pathway?_=1&cancer_history=previous&primary_site=prostate&spinal_pain=yes&pain_region=lumbar"
                "&neuro_deficits=__none__&red_flags=__none__", DESKTOP),
    ("pathway-mscc", "/pathway?_=1&cancer_history=current&primary_site=lung&spinal_pain=yes"
                     "&neuro_deficits=motor_weakness", DESKTOP),
    ("pathway-phone", "/pathway?_=1&cancer_history=previous&primary_site=prostate&spinal_pain=yes&pain_region=lumbar"
                      "&neuro_deficits=__none__&red_flags=__none__", PHONE),
    ("pathway-child", "/pathway?_=1&age=9&cancer_history=none&spinal_pain=yes&night_pain=yes"
                      "&neuro_deficits=__none__", DESKTOP),
    ("sins", "/sins?" + FULL_SINS, DESKTOP),
    ("sins-partial", "/sins?level=T6&lesion=blastic", DESKTOP),
    ("sins-phone", "/sins?" + FULL_SINS, PHONE),
    ("escc", "/escc?epidural_disease=yes&thecal_sac_deformed=yes&cord_abutted=yes&cord_compressed=no", DESKTOP),
    ("noms-empty", "/noms", DESKTOP),
    ("noms", "/noms?escc_grade=3&histology=renal+cell+carcinoma&sins_total=8&fit_for_surgery=yes", DESKTOP),
    ("probability", "/probability?pre_test=0.1&t1_result=positive&t1_modality=mri", DESKTOP),
    ("fracture", "/fracture?convex_posterior_border=present&epidural_mass=absent", DESKTOP),
    ("marrow", "/marrow?_=1&t1=hypointense&stir=hyperintense&opposed_phase=no_drop", DESKTOP),
    ("quantitative", "/quantitative?_=1&adc=1.2&dixon_fat_fraction_percent=10", DESKTOP),
    ("primaries", "/primaries?_=1&lesion_type=blastic", DESKTOP),
    ("ask", "/ask?q=Is+contrast+needed+for+spinal+MRI%3F", DESKTOP),
    ("extract", "/extract", DESKTOP),
    ("login", "/login", DESKTOP),
    ("kb", "/kb?q=contrast", DESKTOP),
    ("kb-topic", "/kb?topic=contrast", DESKTOP),
    ("kb-source", "/kb/sources/fisher-2010", DESKTOP),
    ("kb-table", "/kb/tables/sins_points", DESKTOP),
    ("api-docs", "/docs", DESKTOP),
    ("error", "/sins?level=L6", DESKTOP),
]


def launch(playwright: object) -> object:
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)  # type: ignore[attr-defined]


@contextlib.contextmanager
def _server(base_url: str | None) -> Iterator[str]:
    if base_url:
        yield base_url.rstrip("/")
        return
    sys.path.insert(0, str(ROOT / "src"))
    from spinemets.api.devserver import running_server

    with running_server() as base:
        yield base


def take(base: str, out: Path = OUT, pages: list[tuple[str, str, dict[str, int]]] | None = None,
         browser: object | None = None) -> list[Path]:
    """Screenshot each page (and the printable assessment); return the files written.

    Pass ``browser`` to reuse a launched Playwright browser (the tests do); otherwise one is launched.
    """
    if browser is None:
        from playwright.sync_api import sync_playwright

        with sync_playwright() as p:
            b = launch(p)
            try:
                return _take(b, base, out, pages)
            finally:
                b.close()  # type: ignore[attr-defined]
    return _take(browser, base, out, pages)


def _take(browser: object, base: str, out: Path, pages: list[tuple[str, str, dict[str, int]]] | None) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for name, path, viewport in pages or PAGES:
        phone = viewport["width"] < DESKTOP["width"]
        page = browser.new_page(viewport=viewport, is_mobile=phone, has_touch=phone)  # type: ignore[attr-defined]
        response = page.goto(base + path, wait_until="load")
        if response is not None and response.status == 404:
            page.close()
            continue  # an optional feature (ask, interpretations) that is not installed
        file = out / f"{name}.png"
        _shot(page, file, viewport["width"])
        written.append(file)
        page.close()
    if pages is None:
        written += _interactions(browser, base, out)
    return written


def _interactions(browser: object, base: str, out: Path) -> list[Path]:
    """Pages reached by a click: the printable assessment, a report read, the phone menu opened."""
    written = []
    page = browser.new_page(viewport=DESKTOP)  # type: ignore[attr-defined]
    page.goto(base + "/assess")
    page.get_by_role("button", name="Assess").click()
    page.wait_for_selector("[data-testid=assess-statuses]")
    _shot(page, out / "assess-summary.png", DESKTOP["width"])
    written.append(out / "assess-summary.png")
    page.emulate_media(media="print")
    _shot(page, out / "assess-print.png", DESKTOP["width"])
    written.append(out / "assess-print.png")
    page.close()
    page = browser.new_page(viewport=DESKTOP)  # type: ignore[attr-defined]
    response = page.goto(base + "/extract?example=1")
    if response is not None and response.status == 200:
        page.get_by_role("button", name="Read the report").click()
        page.wait_for_selector(".extract-result")
        _shot(page, out / "extract-result.png", DESKTOP["width"])
        written.append(out / "extract-result.png")
    page.close()
    page = browser.new_page(viewport=PHONE, is_mobile=True, has_touch=True)  # type: ignore[attr-defined]
    page.goto(base + "/sins")
    page.locator("nav[aria-label=Main] summary").click()
    page.screenshot(path=str(out / "menu-phone.png"))
    written.append(out / "menu-phone.png")
    page.close()
    return written


def _shot(page: object, file: Path, width: int) -> None:
    height = min(MAX_HEIGHT, int(page.evaluate("document.documentElement.scrollHeight")))  # type: ignore[attr-defined]
    page.screenshot(path=str(file), full_page=True, clip={"x": 0, "y": 0, "width": width, "height": height})  # type: ignore[attr-defined]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base-url", help="a running server (default: start one)")
    ap.add_argument("--out", type=Path, default=OUT)
    a = ap.parse_args(argv)
    if not Path(CHROMIUM).exists():
        print(f"{CHROMIUM} is missing: apt-get install -y chromium", file=sys.stderr)
        return 1
    with _server(a.base_url) as base:
        files = take(base, a.out)
    for f in files:
        print(f.relative_to(ROOT) if f.is_relative_to(ROOT) else f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
