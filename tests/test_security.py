"""Security headers, no inline script or style, and user text always escaped (over real HTTP)."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import quote

import pytest

from spinemets.api import ask as ask_adapter
from spinemets.api import features as registry

PAYLOAD = '<script>alert("x")</script>'
ESCAPED = "&lt;script&gt;"

PAGES = [
    "/", "/sins", "/sins?level=T12&pain=mechanical&lesion=lytic&alignment=normal&collapse=gt50&posterolateral=bilateral",
    "/escc", "/escc?epidural_disease=yes&thecal_sac_deformed=no", "/noms", "/probability",
    "/probability?pre_test=0.2&t1_result=negative&t1_modality=mri", "/pathway", "/assess", "/kb", "/kb/sources",
    "/kb/sources/fisher-2010", "/kb/tables", "/kb/tables/escc_grades", "/docs", "/problems/invalid-input",
    "/no-such-page", "/sins?level=L6",
] + [f"/{f.name}" for f in registry.available() if f.name not in ("sins", "escc", "noms", "probability", "pathway")] \
  + (["/ask"] if ask_adapter.available() else [])


def assert_security_headers(r) -> None:
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "default-src 'self'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"


class _Scan(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.inline_scripts = 0
        self.handlers: list[str] = []
        self.styles = 0
        self.style_blocks = 0
        self.blank_targets_without_noopener = 0
        self.inputs_without_label: list[str] = []
        self.labels_for: set[str] = set()
        self.inputs: list[tuple[str, str]] = []
        self._in_label = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "script" and not a.get("src"):
            self.inline_scripts += 1
        if tag == "style":
            self.style_blocks += 1
        for name, _ in attrs:
            if name.startswith("on"):
                self.handlers.append(f"{tag}[{name}]")
            if name == "style":
                self.styles += 1
        if tag == "a" and a.get("target") == "_blank" and "noopener" not in (a.get("rel") or ""):
            self.blank_targets_without_noopener += 1
        if tag == "label":
            self._in_label += 1
            if a.get("for"):
                self.labels_for.add(a["for"])
        if tag in ("input", "select", "textarea") and a.get("type") != "hidden":
            self.inputs.append((a.get("id") or "", "wrapped" if self._in_label else ""))

    def handle_endtag(self, tag):
        if tag == "label" and self._in_label:
            self._in_label -= 1


@pytest.mark.parametrize("path", PAGES)
def test_pages_headers_no_inline_code_and_labels(http, path):
    r = http.get(path)
    assert r.status_code in (200, 404, 422)
    assert r.headers["content-type"].startswith("text/html")
    assert_security_headers(r)
    scan = _Scan()
    scan.feed(r.text)
    assert scan.inline_scripts == 0, "JavaScript lives in /static files only"
    assert not scan.handlers, scan.handlers
    assert scan.styles == 0 and scan.style_blocks == 0, "inline styles are blocked by the CSP"
    assert scan.blank_targets_without_noopener == 0
    unlabelled = [i for i, wrapped in scan.inputs if not wrapped and i not in scan.labels_for]
    assert not unlabelled, f"inputs without a label: {unlabelled}"
    # Every page says what it is and which knowledge base it used.
    assert "Decision support for healthcare professionals" in r.text
    assert re.search(r"Knowledge base <strong class=\"kb-version\">\d{4}\.\d+\.\d+</strong>", r.text)


@pytest.mark.parametrize("path", ["/api/v1/ping", "/api/v1/kb", "/static/app.js", "/static/style.css", "/openapi.json",
                                  "/api/v1/nothing"])
def test_other_responses_have_security_headers(http, path):
    assert_security_headers(http.get(path))


def test_error_responses_have_security_headers(http):
    assert_security_headers(http.post("/api/v1/sins", json={"pain": "x"}))
    big = b'{"level": "' + b"x" * 70_000 + b'"}'
    r = http.post("/api/v1/sins", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert_security_headers(r)


def test_static_files_and_no_path_traversal(http):
    r = http.get("/static/app.js")
    assert r.status_code == 200 and "javascript" in r.headers["content-type"]
    assert http.get("/static/../pyproject.toml").status_code == 404
    assert http.get("/static/%2e%2e/%2e%2e/knowledge/data/manifest.yaml").status_code == 404


@pytest.mark.parametrize("path", [
    "/noms?histology={p}",
    "/noms?escc_grade={p}",
    "/sins?level={p}",
    "/sins?pain={p}",
    "/kb?q={p}",
    "/pathway?_=1&primary_site={p}&cancer_history=current&spinal_pain=yes",
    "/probability?pre_test={p}&t1_result=positive&t1_modality=mri",
    "/fracture?convex_posterior_border={p}",
    "/marrow?_=1&t1={p}",
    "/ask?q={p}",
])
def test_user_text_is_escaped(http, path):
    """The payload comes back (in the form or the error message), always escaped, never as markup."""
    if path.startswith("/ask") and not ask_adapter.available():
        pytest.skip("spinemets.ask is not installed")
    name = path.split("?")[0].strip("/")
    if name in ("fracture", "marrow") and registry.get(name) is None:
        pytest.skip(f"{name} is not installed")
    r = http.get(path.format(p=quote(PAYLOAD)))
    assert r.status_code in (200, 422)
    assert PAYLOAD not in r.text and "<script>alert" not in r.text
    assert ESCAPED in r.text, "the text is shown back to the user, escaped"


def test_unknown_filter_value_is_not_reflected_as_markup(http):
    r = http.get("/kb?topic=" + quote(PAYLOAD))
    assert r.status_code == 200 and PAYLOAD not in r.text


def test_user_text_escaped_in_assess_summary(http):
    case = '{"case_id": "%s", "patient": {"histology": "%s"}}' % (PAYLOAD.replace('"', '\\"'), PAYLOAD.replace('"', '\\"'))
    r = http.post("/assess", data={"case": case})
    assert r.status_code == 200
    assert PAYLOAD not in r.text and ESCAPED in r.text
    r = http.post("/assess", data={"case": PAYLOAD})
    assert r.status_code == 422 and PAYLOAD not in r.text and ESCAPED in r.text


def test_echoed_values_are_escaped_in_forms(http):
    r = http.get("/noms?histology=" + quote('"><img src=x onerror=alert(1)>'))
    assert "<img src=x" not in r.text and "&#34;&gt;&lt;img" in r.text


def test_api_reflects_user_text_only_as_json(http):
    r = http.post("/api/v1/sins", json={"pain": PAYLOAD})
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json")
    assert r.headers["x-content-type-options"] == "nosniff"


def test_printable_summary_of_every_section(http):
    """The assessment summary renders every instrument's result, with the page rules above."""
    import json

    from tests.conftest import ROOT

    case = json.loads((ROOT / "examples" / "full_case.json").read_text())
    extra = {"fracture": {"convex_posterior_border": "present"}, "marrow": {"t1": "hypointense"},
             "quantitative": {"adc": 1.1}, "primaries": {"lesion_type": "lytic"}}
    case.update({k: v for k, v in extra.items() if registry.get(k) is not None})
    r = http.post("/assess", data={"case": json.dumps(case)})
    assert r.status_code == 200
    assert_security_headers(r)
    scan = _Scan()
    scan.feed(r.text)
    assert scan.inline_scripts == 0 and not scan.handlers and scan.styles == 0
    names = ("pathway", "sins", "escc", "noms", "probability", *(k for k in extra if k in case))
    starts = {name: r.text.find(f'id="{name}-h"') for name in names}
    assert all(pos >= 0 for pos in starts.values()), starts
    ends = sorted(starts.values()) + [len(r.text)]
    for name, start in starts.items():
        section = r.text[start:ends[ends.index(start) + 1]]
        cited = re.findall(r'href="#([\w-]+-ref-\d+)"', section)
        assert cited, f"{name} cites its sources"
        assert all(f'id="{ref}"' in r.text for ref in cited), f"{name}'s citations lead to a listed reference"
    assert "Decision support for healthcare professionals" in r.text
