"""Report extraction over real HTTP (`spinemets serve` in a subprocess): ``POST /api/v1/extract`` and the page
``/extract`` with its pre-filled calculator forms."""

from __future__ import annotations

import json
import re
from html import unescape

import pytest

from spinemets.reports.extract import MAX_CHARS, extract
from tests.support import DISCLAIMER, ROOT, check_page, problem
from tests.test_security import PAYLOAD, assert_security_headers

REPORT = (ROOT / "tests" / "data" / "reports" / "dev" / "d01-breast-t7-lytic.txt").read_text()


# --- the API ----------------------------------------------------------------------------------------------


def test_extract_endpoint_gives_what_the_core_gives(http):
    r = http.post("/api/v1/extract", json={"text": REPORT, "pain": "mechanical"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    body = r.json()
    core = json.loads(extract(REPORT, pain="mechanical").model_dump_json())
    assert body == core
    assert body["index_level"] == "T7" and body["prefill"]["escc_grade"] == "1b"
    assert body["prefill"]["inputs"]["sins"]["pain"] == "mechanical"
    assert DISCLAIMER in body["disclaimer"] and body["kb_version"]
    assert {f["assertion"] for f in body["findings"]} >= {"present", "negated", "other_level"}
    assert_security_headers(r)


def test_extract_endpoint_with_a_chosen_level(http):
    body = http.post("/api/v1/extract", json={"text": REPORT, "level": "T11"}).json()
    assert body["index_level"] == "T11" and body["index_level_given"] is True
    assert body["prefill"]["applies"]["sins"] is True and body["prefill"]["inputs"]["sins"] == {"level": "T11", "alignment": "normal"}  # a global statement


@pytest.mark.parametrize("payload,field,message", [
    ({"text": ""}, "extract.text", "the report is empty"),
    ({"text": "   "}, "extract.text", "the report is empty"),
    ({"text": "x" * (MAX_CHARS + 1)}, "extract.text", f"the limit is {MAX_CHARS}"),
    ({"text": 42}, "extract.text", None),
    ({}, "extract.text", None),
    ({"text": "Lytic lesion at T7.", "pain": "often"}, "extract.pain", "allowed values"),
    ({"text": "Lytic lesion at T7.", "level": "L6"}, "extract.level", "lumbar levels are L1 to L5"),
    ({"text": "Lytic lesion at T7.", "colour": "red"}, "extract.colour", "unknown field"),
])
def test_extract_endpoint_errors_name_the_field(http, payload, field, message):
    body = problem(http.post("/api/v1/extract", json=payload), 422, field)
    if message:
        assert message in body["detail"]


def test_extract_endpoint_protocol_errors(http):
    problem(http.post("/api/v1/extract", content=b"{not json", headers={"content-type": "application/json"}), 400)
    problem(http.post("/api/v1/extract", content=b"text=x", headers={"content-type": "text/plain"}), 415)
    problem(http.post("/api/v1/extract", content=b'{"text": "' + b"x" * 70_000 + b'"}',
                      headers={"content-type": "application/json"}), 413)
    problem(http.get("/api/v1/extract"), 405)


def test_extract_endpoint_in_the_openapi_document(http):
    spec = http.get("/openapi.json").json()
    op = spec["paths"]["/api/v1/extract"]["post"]
    assert op["tags"] == ["reports"] and "ExtractResult" in json.dumps(op["responses"]["200"])
    assert "ExtractRequest" in spec["components"]["schemas"]


# --- the page -------------------------------------------------------------------------------------------------


def test_page_form_and_nav(http):
    r = http.get("/extract")
    assert r.status_code == 200
    check_page(r)
    assert '<textarea id="f-report" name="report"' in r.text and 'action="/extract"' in r.text
    assert '<a href="/extract" aria-current="page">Read a report</a>' in r.text
    assert '<a href="/extract">Read a report</a>' in http.get("/sins").text  # in every page's navigation
    example = http.get("/extract?example=1")
    assert "T7 vertebral body" in example.text


def test_page_reads_a_report_and_opens_prefilled_forms(http):
    r = http.post("/extract", data={"report": REPORT, "pain": "mechanical", "level": ""})
    assert r.status_code == 200
    check_page(r)
    html = r.text
    assert '<mark class="a-present"' in html and '<mark class="a-negated"' in html and '<mark class="a-other_level"' in html
    for action in ("/sins", "/escc", "/fracture", "/marrow"):
        assert f'action="{action}"' in html
    assert '<option value="lytic" selected>' in html and '<option value="1b" selected>' in html
    assert "from “left pedicle”, “left pedicle involvement”" in html  # the phrase each value came from
    links = {m: unescape(u) for m, u in re.findall(r'<a href="/(sins|escc|fracture|marrow)\?([^"]+)">open as pre-filled', html)}
    assert links["sins"] == ("level=T7&pain=mechanical&lesion=lytic&collapse=lt50&alignment=normal&posterolateral=unilateral")
    # The calculator opens with those values and scores them.
    sins = http.get("/sins?" + links["sins"])
    assert sins.status_code == 200 and "complete" in sins.text
    escc = http.get("/escc?" + links["escc"])
    assert escc.status_code == 200 and "1b" in escc.text


def test_page_benign_report_explains_what_is_not_prefilled(http):
    report = (ROOT / "tests" / "data" / "reports" / "dev" / "d39-typical-haemangioma-l3.txt").read_text()
    r = http.post("/extract", data={"report": report})
    check_page(r)
    assert "SINS not pre-filled:" in r.text and "benign" in r.text and 'action="/marrow"' in r.text


@pytest.mark.parametrize("form,message", [
    ({"report": ""}, "the report is empty"),
    ({"report": "Lytic lesion at T7.", "level": "T13"}, "thoracic levels are T1 to T12"),
    ({"report": "Lytic lesion at T7.", "pain": "often"}, "allowed values"),
])
def test_page_errors(http, form, message):
    r = http.post("/extract", data=form)
    assert r.status_code == 422
    check_page(r)
    assert 'role="alert"' in r.text and message in unescape(r.text)


def test_page_escapes_the_report(http):
    r = http.post("/extract", data={"report": f"Lytic lesion at T7. {PAYLOAD}"})
    assert r.status_code == 200
    assert PAYLOAD not in r.text and "&lt;script&gt;" in r.text
    check_page(r)


@pytest.mark.parametrize("preload", [True, False])
def test_the_served_app_builds_the_report_reader_at_start_up(preload):
    """With preloading (what `spinemets serve` sets), the pipeline is built in the background when the app starts,
    before any /extract request; without it, not (a fresh process, so that no other test built it first)."""
    import subprocess
    import sys

    code = (
        "import time\n"
        "from fastapi.testclient import TestClient\n"
        "from spinemets.api.app import create_app\n"
        "from spinemets.reports import pipeline\n"
        f"app = create_app(preload_extract={preload})\n"
        "with TestClient(app) as client:\n"
        "    client.get('/api/v1/ping')\n"
        "    deadline = time.monotonic() + 60\n"
        "    while pipeline._cached.cache_info().currsize == 0 and time.monotonic() < deadline:\n"
        f"        time.sleep(0.05 if {preload} else 3)\n"
        f"        if not {preload}: break\n"
        "    print('built' if pipeline._cached.cache_info().currsize else 'not built')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == ("built" if preload else "not built")


def test_serve_preloads_the_report_reader_unless_told_not_to(monkeypatch):
    import os

    from spinemets.api import commands

    monkeypatch.setenv("SPINEMETS_PRELOAD_EXTRACT", "")  # (so that the variable is restored after the test)
    monkeypatch.delenv("SPINEMETS_PRELOAD_EXTRACT")
    monkeypatch.setattr(commands, "port_problem", lambda host, port: "busy (test)")  # stop before serving
    assert main_serve(commands) == 2
    assert os.environ["SPINEMETS_PRELOAD_EXTRACT"] == "1"


def main_serve(commands):
    import argparse

    return commands.cmd_serve(argparse.Namespace(host="127.0.0.1", port=1, max_body=None, preload_ask=False,
                                                 workers=1))
