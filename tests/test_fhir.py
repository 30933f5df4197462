"""FHIR export (issue 13, part 2 "out"): every resource validated by the fhir.resources R4B models, the values those
of the assessment, nothing missing filled in."""

from __future__ import annotations

import json

import pytest
from fhir.resources.R4B.bundle import Bundle
from hypothesis import HealthCheck, given, settings

from spinemets.assess import assess
from spinemets.errors import SpinemetsError
from spinemets.fhir.export import assessment_bundle, code_system
from tests.conftest import ROOT
from tests.test_assess import _CASES

FULL = json.loads((ROOT / "examples" / "full_case.json").read_text())
UNSTABLE = {"pain": "mechanical", "lesion": "lytic", "alignment": "normal", "collapse": "gt50",
            "posterolateral": "bilateral"}


def _resources(bundle, kind):
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind]


def _by_code(bundle, code):
    return [o for o in _resources(bundle, "Observation") if o["code"]["coding"][0]["code"] == code]


def test_the_full_example_as_a_validated_bundle():
    result = assess(FULL)
    bundle = assessment_bundle(result)
    Bundle.model_validate(bundle)
    kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert kinds[0] == "Device" and kinds[-2:] == ["DiagnosticReport", "Provenance"]
    urls = {e["fullUrl"] for e in bundle["entry"]}
    report = _resources(bundle, "DiagnosticReport")[0]
    assert report["status"] == "preliminary" and all(r["reference"] in urls for r in report["result"])
    assert result.disclaimer in report["conclusion"]
    device = _resources(bundle, "Device")[0]
    assert {"type": {"text": "knowledge base"}, "value": result.kb_version} in device["version"]
    provenance = _resources(bundle, "Provenance")[0]
    assert {t["reference"] for t in provenance["target"]} == {report["result"][i]["reference"]
                                                              for i in range(len(report["result"]))} | {
        next(e["fullUrl"] for e in bundle["entry"] if e["resource"] is report)}
    sins = _by_code(bundle, "sins-total")[0]
    assert sins["valueInteger"] == result.sins.total and len(sins["component"]) == 6
    assert sins["interpretation"][0]["text"] == result.sins.category_label
    escc = _by_code(bundle, "escc-grade")[0]
    assert escc["valueCodeableConcept"]["coding"][0]["code"] == f"escc-grade-{result.escc.grade}"


def test_missing_input_is_never_filled_in():
    bundle = assessment_bundle(assess({"sins": {"level": "T12", "lesion": "lytic"},
                                       "escc": {"epidural_disease": True}}))
    sins = _by_code(bundle, "sins-total")[0]
    assert sins["valueRange"] == {"low": {"value": 5}, "high": {"value": 18}}
    pain = next(c for c in sins["component"] if c["code"]["coding"][0]["code"] == "sins-pain")
    assert pain["dataAbsentReason"]["coding"][0]["code"] == "unknown" and "valueCodeableConcept" not in pain
    assert "Not known:" in sins["note"][0]["text"]
    escc = _by_code(bundle, "escc-grade")[0]
    assert escc["valueString"] == "grade 1a or 1b or 1c or 2 or 3 (not yet decided)"


def test_lesions_and_prognostic_scores():
    result = assess({"lesions": [{"levels": "T12", "sins": UNSTABLE, "escc": {"grade": "2"}},
                                 {"levels": "L2-L3", "escc": {"grade": "0"}}],
                     "prognosis": {"primary": "breast", "karnofsky": 80}})
    bundle = assessment_bundle(result)
    sites = [o["bodySite"]["text"] for o in _by_code(bundle, "sins-total")]
    assert sites == ["vertebral level T12", "vertebral level L2-L3"]
    tokuhashi = _by_code(bundle, "prognosis-tokuhashi")[0]
    assert tokuhashi["valueRange"]["low"]["value"] == result.prognosis.scores[0].possible_min
    tomita = _by_code(bundle, "prognosis-tomita")[0]
    assert "Draft" in tomita["note"][0]["text"]


@pytest.mark.parametrize("base, system", [(None, "urn:spinemets:CodeSystem:spinemets"),
                                          ("https://terminology.example.org/fhir/",
                                           "https://terminology.example.org/fhir/CodeSystem/spinemets")])
def test_the_code_system_base(base, system, monkeypatch):
    monkeypatch.delenv("SPINEMETS_FHIR_BASE", raising=False)
    assert code_system(base) == system
    bundle = assessment_bundle(assess({"escc": {"grade": "1a"}}), base=base)
    assert _by_code(bundle, "escc-grade")[0]["code"]["coding"][0]["system"] == system


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_CASES)
def test_every_random_case_exports_a_valid_bundle(case):
    try:
        result = assess(case)
    except SpinemetsError:
        return
    Bundle.model_validate(assessment_bundle(result))


def test_cli_and_rest(cli, tmp_path):
    path = tmp_path / "case.json"
    path.write_text(json.dumps(FULL))
    r = cli("fhir", "export", str(path))
    assert r.returncode == 0
    Bundle.model_validate(json.loads(r.stdout))
    empty = cli("fhir", "export", "-", stdin="{}")
    assert empty.returncode == 3 and "nothing to assess" in empty.stderr
    bad = cli("fhir", "export", "-", stdin='{"sins": {"pain": "sharp"}}')
    assert bad.returncode == 2 and "case.sins.pain" in bad.stderr
    from fastapi.testclient import TestClient

    from spinemets.api.app import create_app

    client = TestClient(create_app())
    ok = client.post("/api/v1/fhir/export", json=FULL)
    assert ok.status_code == 200 and ok.headers["content-type"].startswith("application/fhir+json")
    Bundle.model_validate(ok.json())
    problem = client.post("/api/v1/fhir/export", json={"sins": {"pain": "sharp"}})
    assert problem.status_code == 422 and problem.json()["field"] == "case.sins.pain"
