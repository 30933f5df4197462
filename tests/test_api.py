"""The REST API over real HTTP (`spinemets serve` in a subprocess), plus a few in-process cases (TestClient).

Every endpoint must give exactly what the core function gives for the same input, and every error must be
RFC 9457 problem+json naming the field.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from spinemets.api import ask as ask_adapter
from spinemets.api import features as registry
from spinemets.cli import build_parser
from tests.support import CASE, DISCLAIMER, PROBLEM, QUIET, ROOT, problem, server

FULL_SINS = {"level": "T12", "pain": "mechanical", "lesion": "lytic", "alignment": "normal",
             "collapse": "gt50", "posterolateral": "bilateral"}

# One valid request per feature; features whose module is absent are skipped.
REQUESTS = {
    "sins": FULL_SINS,
    "escc": {"epidural_disease": True, "thecal_sac_deformed": True, "cord_abutted": True, "cord_compressed": False},
    "noms": {"escc_grade": "3", "histology": "renal cell carcinoma", "sins_total": 8, "fit_for_surgery": True},
    "probability": {"pre_test": 0.1, "tests": [{"modality": "mri", "result": "positive", "source": "harlianto-2024"}]},
    "pathway": {"cancer_history": "previous", "primary_site": "prostate", "spinal_pain": True, "pain_region": "lumbar",
                "neuro_deficits": [], "red_flags": []},
    "fracture": {"features": {"convex_posterior_border": "present", "epidural_mass": "absent"}},
    "marrow": {"t1": "hypointense", "stir": "hyperintense"},
    "quantitative": {"adc": 1.2},
    "primaries": {"lesion_type": "blastic"},
}


def feature_names() -> list[str]:
    return [f.name for f in registry.available()]


# --- service -------------------------------------------------------------------------------------------------


def test_ping_and_version(http):
    assert http.get("/api/v1/ping").json() == {}
    assert http.post("/api/v1/ping").json() == {}
    v = http.get("/api/v1/version").json()
    assert v["kb_version"] and DISCLAIMER in v["disclaimer"]
    assert {"sins", "escc", "noms", "probability", "pathway"} <= set(v["features"])


def test_serve_defaults_and_help(cli):
    a = build_parser().parse_args(["serve"])
    assert (a.host, a.port, a.workers) == ("127.0.0.1", 8000, 1)
    r = cli("serve", "--help")
    assert r.returncode == 0 and "127.0.0.1:8000" in r.stdout and "--workers" in r.stdout
    r = cli("serve", "--port", "70000")
    assert r.returncode == 2 and "port" in r.stderr


def test_serve_with_two_workers():
    with server({}, "--workers", "2", *QUIET) as (base, _):
        r = httpx.post(base + "/api/v1/sins", json=FULL_SINS, timeout=10)
        assert r.status_code == 200 and r.json()["total"] == 14


# --- every feature -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(REQUESTS))
def test_feature_endpoint_equals_core(http, name):
    lf = registry.get(name)
    if lf is None:
        pytest.skip(f"spinemets feature {name!r} is not installed")
    body = REQUESTS[name]
    r = http.post(f"/api/v1/{name}", json=body)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    got = r.json()
    expected = json.loads(lf.func(lf.input_model.model_validate(body)).model_dump_json())
    assert got == expected
    assert got["kb_version"] and got["disclaimer"]
    assert got["references"], "every result cites its sources"
    for ref in got["references"]:
        assert ref["citation"] and ref["source_id"]


def test_sins_complete_and_insufficient(http):
    r = http.post("/api/v1/sins", json=FULL_SINS).json()
    assert (r["total"], r["category"], r["status"]) == (14, "unstable", "complete")
    r = http.post("/api/v1/sins", json={"level": "T6", "lesion": "blastic"})
    assert r.status_code == 200
    data = r.json()
    assert data["status"] == "insufficient_data" and data["total"] is None
    assert (data["possible_min"], data["possible_max"]) == (1, 14)
    assert "sins.pain" in data["missing"]


def test_assess_equals_core(http):
    # Imported here, not at module level: importing the submodule spinemets.assess at collection time would
    # shadow the lazily exported function `spinemets.assess` for tests collected later in the same process.
    from spinemets.assess import assess

    r = http.post("/api/v1/assess", json=CASE)
    assert r.status_code == 200
    assert r.json() == json.loads(assess(CASE).model_dump_json())
    assert r.json()["statuses"] == {k: "complete" for k in ("pathway", "sins", "escc", "noms", "probability")}


def test_case_schema(http):
    schema = http.get("/api/v1/schema/case").json()
    assert schema["title"] == "spinemets case document" and "sins" in schema["properties"]


# --- ask -------------------------------------------------------------------------------------------------------


@pytest.mark.skipif(not ask_adapter.available(), reason="spinemets.ask is not installed")
def test_ask_endpoint_equals_core(http):
    from spinemets.ask import ask

    q = "Is contrast needed for spinal MRI?"
    r = http.post("/api/v1/ask", json={"question": q, "lexical": True})
    assert r.status_code == 200, r.text
    got = r.json()
    expected = json.loads(ask(q, lexical=True).model_dump_json())
    got.pop("timings_ms")
    expected.pop("timings_ms")
    assert got == expected
    assert got["status"] == "answered" and got["references"] and got["kb_version"]
    numbers = {ref["number"] for ref in got["references"]}
    for s in got["direct_answer"] + got["key_points"]:
        assert s["refs"] and set(s["refs"]) <= numbers, "every sentence cites a listed reference"


@pytest.mark.skipif(not ask_adapter.available(), reason="spinemets.ask is not installed")
def test_ask_errors_name_the_field(http):
    assert problem(http.post("/api/v1/ask", json={"question": ""}), 422)["field"] == "ask.question"
    assert problem(http.post("/api/v1/ask", json={"question": "x" * 1001}), 422)["field"] == "ask.question"
    assert problem(http.post("/api/v1/ask", json={"question": "MRI?", "audience": "dog"}), 422)["field"] == "ask.audience"
    assert problem(http.post("/api/v1/ask", json={"question": "MRI?", "session": "a"}), 422)["field"] == "ask.session"


# --- knowledge base ------------------------------------------------------------------------------------------


def test_kb_endpoints(http, kb):
    info = http.get("/api/v1/kb").json()
    assert info["version"] == kb.version and info["statements"] == len(kb.statements)
    page = http.get("/api/v1/kb/statements", params={"limit": 5}).json()
    assert page["count"] == len(kb.statements) and len(page["items"]) == 5
    for item in page["items"]:
        assert item["sources"] and item["review_status"] and item["last_reviewed"]
    drafts = http.get("/api/v1/kb/statements", params={"draft": "true", "limit": 1000}).json()
    assert drafts["count"] == sum(1 for s in kb.statements.values() if s.is_draft)
    topic = http.get("/api/v1/kb/statements", params={"topic": "sins", "limit": 1000}).json()
    assert topic["count"] and all("sins" in s["topics"] for s in topic["items"])
    sid = next(iter(kb.statements))
    assert http.get(f"/api/v1/kb/statements/{sid}").json()["id"] == sid
    sources = http.get("/api/v1/kb/sources").json()
    assert sources["count"] == len(kb.sources)
    assert http.get("/api/v1/kb/sources/fisher-2010").json()["id"] == "fisher-2010"
    tables = http.get("/api/v1/kb/tables").json()["items"]
    assert {"sins_points", "escc_grades"} <= {t["id"] for t in tables}
    assert len(http.get("/api/v1/kb/tables/sins_points").json()["rows"]) == len(kb.table("sins_points").rows)
    hits = http.get("/api/v1/kb/search", params={"q": "contrast"}).json()["hits"]
    assert hits and all(h["sources"] for h in hits)
    assert http.get("/api/v1/kb/items/sins_points.lesion-lytic").json()["points"] == 2


def test_kb_not_found_is_problem(http):
    body = problem(http.get("/api/v1/kb/statements/no.such.statement"), 404)
    assert "no.such.statement" in body["detail"] and body["field"] == "id"
    problem(http.get("/api/v1/kb/tables/nope"), 404)
    problem(http.get("/api/v1/kb/sources/nope"), 404)


# --- errors --------------------------------------------------------------------------------------------------


def test_invalid_value_names_field_and_allowed_values(http):
    body = problem(http.post("/api/v1/sins", json={"level": "T12", "pain": "sometimes"}), 422)
    assert body["type"] == "/problems/invalid-input"
    assert body["field"] == "sins.pain" and body["fields"] == ["sins.pain"]
    assert "'mechanical'" in body["detail"] and body["instance"] == "/api/v1/sins"
    body = problem(http.post("/api/v1/sins", json={"level": "L6"}), 422)
    assert body["field"] == "sins.level" and "L1 to L5" in body["detail"]


def test_unknown_field_and_wrong_type(http):
    body = problem(http.post("/api/v1/sins", json={"levle": "T12"}), 422)
    assert body["field"] == "sins.levle" and "allowed fields" in body["detail"]
    body = problem(http.post("/api/v1/noms", json={"sins_total": "many"}), 422)
    assert body["field"] == "noms.sins_total"
    body = problem(http.post("/api/v1/probability", json={"pre_test": 1.5, "tests": [{"modality": "mri", "result": "positive"}]}), 422)
    assert body["field"] == "probability.pre_test"
    body = problem(http.post("/api/v1/assess", json={"sins": {"level": "T99"}}), 422)
    assert body["field"] == "case.sins.level"


def test_contradictory_input_names_every_field(http):
    body = problem(http.post("/api/v1/escc", json={"grade": "2", "epidural_disease": False}), 422)
    assert body["type"] == "/problems/contradictory-input"
    assert body["fields"] == ["escc.grade", "escc.epidural_disease"] and body["field"] == "escc.grade"
    body = problem(http.post("/api/v1/sins", json={"level": "T12", "location": "mobile"}), 422)
    assert set(body["fields"]) == {"sins.level", "sins.location"}


def test_insufficient_data_error(http):
    many = {"pre_test": 0.1, "tests": [{"modality": "mri", "result": "positive"}] * 3}
    body = problem(http.post("/api/v1/probability", json=many), 422)
    assert body["type"] == "/problems/insufficient-data"
    assert body["fields"][0] == "probability.tests[0].source"


def test_malformed_missing_and_non_object_bodies(http):
    body = problem(http.post("/api/v1/sins", content=b'{"level": ', headers={"content-type": "application/json"}), 400)
    assert body["type"] == "/problems/malformed-json" and body["field"] == "sins"
    body = problem(http.post("/api/v1/sins"), 422)
    assert body["field"] == "sins"
    body = problem(http.post("/api/v1/sins", json=[1, 2]), 400)
    assert body["field"] == "sins"
    body = problem(http.post("/api/v1/sins", content=b"level=T12", headers={"content-type": "application/x-www-form-urlencoded"}), 415)
    assert body["field"] == "sins"


def test_body_over_limit_is_413(http):
    big = json.dumps({"level": "T12", "note": "x" * 70_000}).encode()
    body = problem(http.post("/api/v1/sins", content=big, headers={"content-type": "application/json"}), 413)
    assert body["type"] == "/problems/body-too-large" and body["limit"] == 65536

    def chunked():
        yield b'{"level": "'
        for _ in range(80):
            yield b"x" * 1000
        yield b'"}'

    problem(http.post("/api/v1/assess", content=chunked(), headers={"content-type": "application/json"}), 413)


def test_unknown_route_and_method(http):
    body = problem(http.get("/api/v1/nothing"), 404)
    assert "/api/v1/nothing" in body["detail"]
    problem(http.get("/api/v1/sins"), 405)
    problem(http.get("/api/v1/kb/statements", params={"limit": 0}), 422)


# --- OpenAPI -------------------------------------------------------------------------------------------------


def test_openapi_uses_core_models(http):
    spec = http.get("/openapi.json").json()
    paths = spec["paths"]
    for lf in registry.available():
        op = paths[f"/api/v1/{lf.name}"]["post"]
        ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        assert ref.endswith("/" + lf.input_model.__name__)
        ok = op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
        assert ok.endswith("/" + lf.result_model.__name__)
        assert "422" in op["responses"]
    assess_op = paths["/api/v1/assess"]["post"]
    assert assess_op["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/CaseDocument")
    for p in ("/api/v1/kb", "/api/v1/kb/statements", "/api/v1/kb/sources/{source_id}", "/api/v1/ping"):
        assert p in paths
    html = http.get("/docs")
    assert html.status_code == 200 and "/api/v1/sins" in html.text and "/openapi.json" in html.text
    assert http.get("/problems/invalid-input").status_code == 200


# --- in process (TestClient) ---------------------------------------------------------------------------------


def test_internal_error_is_problem_without_details(monkeypatch):
    from fastapi.testclient import TestClient

    from spinemets.api.app import create_app

    lf = registry.get("sins")
    assert lf is not None

    def boom(data):
        raise RuntimeError("secret internals")

    real = registry.available()
    patched = tuple(registry.LoadedFeature(f.feature, boom, f.input_model, f.result_model) if f.name == "sins" else f
                    for f in real)
    monkeypatch.setattr(registry, "available", lambda: patched)
    client = TestClient(create_app(), raise_server_exceptions=False)
    r = client.post("/api/v1/sins", json=FULL_SINS)
    body = problem(r, 500)
    assert "secret" not in r.text and body["type"] == "/problems/internal-error"


def test_max_body_is_configurable():
    from fastapi.testclient import TestClient

    from spinemets.api.app import create_app

    client = TestClient(create_app(max_body=100))
    assert client.post("/api/v1/sins", json={"level": "T12"}).status_code == 200
    r = client.post("/api/v1/sins", json={"level": "T12", "pain": "x" * 200})
    assert r.status_code == 413 and r.json()["limit"] == 100


def test_api_only_app_has_no_pages():
    from fastapi.testclient import TestClient

    from spinemets.api.app import create_app

    client = TestClient(create_app(web=False))
    assert client.post("/api/v1/sins", json=FULL_SINS).json()["total"] == 14
    r = client.get("/sins")
    assert r.status_code == 404 and r.headers["content-type"].startswith(PROBLEM)


def test_package_data_includes_web_files():
    import tomllib

    data = tomllib.loads(Path(ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["spinemets"]
    assert any("templates" in p for p in data) and any("static" in p for p in data)


def test_response_cache_gives_identical_bytes(http):
    """Repeated bodies are served from the cache of the pure core functions: same bytes, same result."""
    body = json.dumps({"level": "C5", "pain": "occasional", "lesion": "mixed"}).encode()
    headers = {"content-type": "application/json"}
    first = http.post("/api/v1/sins", content=body, headers=headers)
    second = http.post("/api/v1/sins", content=body, headers=headers)
    assert first.status_code == second.status_code == 200
    assert first.content == second.content
    assert (first.headers["x-cache"], second.headers["x-cache"]) == ("miss", "hit")


def test_cache_is_bounded():
    from spinemets.api.cache import ResponseCache

    c = ResponseCache(max_bytes=100)
    for i in range(20):
        c.put("sins", str(i).encode(), b"x" * 20)
    assert c.size <= 100 and len(c) == 4
    assert c.get("sins", b"19") == b"x" * 20 and c.get("sins", b"0") is None
    c.put("sins", b"big", b"x" * 200)  # larger than the whole cache: not stored
    assert c.get("sins", b"big") is None
