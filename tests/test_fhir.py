"""FHIR export (issue 13, part 2 "out"): every resource validated by the fhir.resources R4B models, the values those
of the assessment, nothing missing filled in."""

from __future__ import annotations

import json

import pytest
from fhir.resources.R4B.bundle import Bundle
from hypothesis import HealthCheck, given, settings

from spinemets.assess import assess
from spinemets.errors import InvalidInputError, SpinemetsError
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


def test_codes_are_the_knowledge_base_rows_and_categories_fit():
    bundle = assessment_bundle(assess({"sins": {"level": "T12", **UNSTABLE}, "patient": {"histology": "breast"},
                                       "prognosis": {"karnofsky": 80}}))
    sins = _by_code(bundle, "sins-total")[0]
    codes = [c["valueCodeableConcept"]["coding"][0]["code"] for c in sins["component"]]
    from spinemets.knowledge.loader import load_kb

    rows = {r.id for r in load_kb().table("sins_points").rows}
    assert all(code in rows for code in codes), codes
    tokuhashi = _by_code(bundle, "prognosis-tokuhashi")[0]
    assert tokuhashi["category"][0]["coding"][0]["code"] == "survey"
    assert sins["category"][0]["coding"][0]["code"] == "imaging" and "effectiveDateTime" not in sins
    assert "policy" not in _resources(bundle, "Provenance")[0]


def test_nothing_to_assess_and_a_bad_base_are_refused():
    from spinemets.errors import InsufficientDataError

    with pytest.raises(InsufficientDataError):
        assessment_bundle(assess({}))
    for base in ("urn:oid:1.2.3", "x", "https://a b"):
        with pytest.raises(InvalidInputError, match="absolute http"):
            code_system(base)
    assert code_system("https://t.example.org/fhir/CodeSystem/spinemets") == \
        "https://t.example.org/fhir/CodeSystem/spinemets"


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
    if not result.statuses:
        with pytest.raises(SpinemetsError, match="nothing to assess"):
            assessment_bundle(result)
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


# --- in: a Bundle read into a case -----------------------------------------------------------------------------------

from spinemets.fhir.read import read_bundle  # noqa: E402

ACTIVE = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]}
REMISSION = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "remission"}]}
PATIENT = {"resourceType": "Patient", "id": "p1", "birthDate": "1961-05-20", "gender": "female"}


def _bundle(*resources, timestamp="2026-12-01T10:00:00Z", patient=True):
    """A collection Bundle of *resources*, with the patient (p1) first unless one is given or *patient* is False."""
    if patient and not any(r.get("resourceType") == "Patient" for r in resources):
        resources = (PATIENT, *resources)
    return {"resourceType": "Bundle", "type": "collection", "timestamp": timestamp,
            "entry": [{"resource": r} for r in resources]}


def _condition(text, status=ACTIVE, rid="c1", codes=()):
    return {"resourceType": "Condition", "id": rid, "subject": {"reference": "Patient/p1"}, "clinicalStatus": status,
            "code": {"text": text, "coding": list(codes)}}


def _obs(code, value, rid="o1", when="2026-11-20", unit="mL/min/{1.73_m2}"):
    return {"resourceType": "Observation", "id": rid, "status": "final", "effectiveDateTime": when,
            "subject": {"reference": "Patient/p1"},
            "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
            "valueQuantity": {"value": value, "system": "http://unitsofmeasure.org", "code": unit}}


def test_a_bundle_becomes_a_case_and_says_what_it_used():
    report = {"resourceType": "DiagnosticReport", "id": "r1", "status": "final", "code": {"text": "MRI spine"},
              "subject": {"reference": "Patient/p1"},
              "conclusion": "Lytic metastasis T7 with 40% height loss; epidural tumour deforming the thecal sac "
                            "without cord contact."}
    read = read_bundle(_bundle(PATIENT, _condition("Invasive ductal carcinoma of the left breast"),
                               _condition("Breast lump", rid="c2"), _obs("62238-1", 48),
                               _obs("62238-1", 61, rid="o0", when="2026-01-10"),
                               _obs("89243-0", 70, rid="o2", unit="{score}"), report))
    assert read.case["pathway"] == {"age": 65, "sex": "female", "egfr": 48.0, "cancer_history": "current",
                                    "primary_site": "breast"}
    assert read.case["prognosis"] == {"karnofsky": 70}
    assert read.case["sins"] == {"level": "T7", "lesion": "lytic", "collapse": "lt50"}
    assert read.case["escc"]["thecal_sac_deformed"] is True
    assert {u.resource for u in read.not_used} == {"Condition/c2", "Observation/o0"}  # a lump; an older eGFR
    assessed = assess(read.case)
    assert assessed.sins is not None and assessed.pathway is not None


@pytest.mark.parametrize("condition, expected", [
    (_condition("Secondary malignant neoplasm of bone", codes=[{"system": "http://hl7.org/fhir/sid/icd-10",
                                                               "code": "C79.5"}]), {"cancer_history": "current"}),
    (_condition("Renal cell carcinoma", status=REMISSION), {"cancer_history": "previous", "primary_site": "renal"}),
    (_condition("Prostate adenocarcinoma", status=None), {"primary_site": "prostate"}),  # status not given: not guessed
    (_condition("Carcinoma of breast", codes=[{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "C509"}]),
     {"cancer_history": "current", "primary_site": "breast"}),
    (_condition("Benign prostatic hyperplasia"), {}),
    (_condition("Pregnancy"), {"pregnant": True}),
    # review findings: none of these is a current cancer or pregnancy
    (_condition("Family history of breast cancer"), {}),
    (_condition("Lung cancer ruled out"), {}),
    (_condition("No evidence of malignancy"), {}),
    (_condition("History of skin cancer"), {}),
    (_condition("Carcinoma in situ of breast"), {}),
    (_condition("Basal cell carcinoma of skin"), {}),
    (_condition("Metastatic abscess"), {}),
    (_condition("Not pregnant"), {}),
    (_condition("Pregnancy test negative"), {}),
    (_condition("History of pregnancy-induced hypertension"), {}),
    ({**_condition("Carcinoma of lung"), "verificationStatus": {"coding": [{"code": "refuted"}]}}, {}),
    ({**_condition("Carcinoma of lung"), "verificationStatus": {"coding": [{"code": "provisional"}]}}, {}),
    ({**_condition("Carcinoma of lung"), "abatementDateTime": "2020-01-01"}, {}),
    ({**_condition("Carcinoma of lung"), "subject": {"reference": "Patient/other"}}, {}),
])
def test_conditions(condition, expected):
    if condition.get("clinicalStatus") is None:
        condition = {k: v for k, v in condition.items() if k != "clinicalStatus"}
    read = read_bundle(_bundle(condition))
    assert {k: v for k, v in read.case.get("pathway", {}).items() if k not in ("age", "sex")} == expected
    if not expected:
        assert any(u.resource == "Condition/c1" for u in read.not_used)


def test_two_primaries_are_not_chosen_between():
    read = read_bundle(_bundle(_condition("Breast cancer"), _condition("Lung adenocarcinoma", rid="c2")))
    assert read.case["pathway"] == {"age": 65, "sex": "female", "cancer_history": "current"}
    assert any("different primaries" in u.note for u in read.not_used)


@pytest.mark.parametrize("obs, why", [
    (_obs("62238-1", 4.8, unit="mL/s"), "not converted"),
    (_obs("2160-0", 1.2, unit="mg/dL"), "does not read"),
    ({**_obs("62238-1", 50), "status": "entered-in-error"}, "not used"),
    ({**_obs("62238-1", 50), "status": "registered"}, "not used"),
    ({**_obs("62238-1", 15), "valueQuantity": {"value": 15, "comparator": "<", "code": "mL/min/{1.73_m2}"}},
     "is a bound"),
    ({**_obs("62238-1", 45), "valueQuantity": {"value": 45}}, "not converted"),
    (_obs("89243-0", 75, unit="{score}"), "not a Karnofsky score"),
    (_obs("62238-1", -3), "outside 0-200"),
])
def test_observations_not_used_say_why(obs, why):
    read = read_bundle(_bundle(obs, patient=True))
    assert "egfr" not in read.case.get("pathway", {}) and "prognosis" not in read.case
    assert why in next(u.note for u in read.not_used if u.resource == "Observation/o1")


def test_observation_times_are_compared_as_times_and_ties_that_disagree_are_not_used():
    east = _obs("62238-1", 40, rid="east", when="2026-01-01T23:00:00-05:00")  # 2 January 04:00 UTC
    west = _obs("62238-1", 60, rid="west", when="2026-01-02T01:00:00+09:00")  # 1 January 16:00 UTC
    assert read_bundle(_bundle(east, west)).case["pathway"]["egfr"] == 40.0
    tie = read_bundle(_bundle(_obs("62238-1", 20, rid="a"), _obs("62238-1", 80, rid="b")))
    assert "egfr" not in tie.case["pathway"]
    assert sum("two different values" in u.note for u in tie.not_used) == 2


def test_one_patient_and_the_latest_final_report():
    with pytest.raises(InvalidInputError, match="2 patients"):
        read_bundle(_bundle(PATIENT, {**PATIENT, "id": "p2"}))
    old = {"resourceType": "DiagnosticReport", "id": "old", "status": "final", "subject": {"reference": "Patient/p1"},
           "code": {"text": "MRI"}, "effectiveDateTime": "2025-01-01", "conclusion": "L2 lytic lesion, no epidural disease."}
    new = {**old, "id": "new", "effectiveDateTime": "2026-11-01",
           "conclusion": "T12 lytic metastasis with ESCC grade 3 cord compression."}
    draft = {**old, "id": "draft", "status": "preliminary", "effectiveDateTime": "2026-11-30"}
    read = read_bundle(_bundle(old, new, draft))
    assert read.case["sins"]["level"] == "T12" and read.case["escc"]["grade"] == "3"
    notes = {u.resource: u.note for u in read.not_used}
    assert "older report" in notes["DiagnosticReport/old"] and "preliminary" in notes["DiagnosticReport/draft"]


def test_age_needs_a_full_birth_date_and_counts_on_the_reference_date():
    assert read_bundle(_bundle({**PATIENT, "birthDate": "1961"})).case["pathway"] == {"sex": "female"}
    future = read_bundle(_bundle({**PATIENT, "birthDate": "2030-01-01"}))
    assert "age" not in future.case["pathway"] and "gives an age of" in future.not_used[0].note
    dead = read_bundle(_bundle({**PATIENT, "deceasedBoolean": True}))
    assert "age" not in dead.case["pathway"] and "deceased" in dead.not_used[0].note
    on = read_bundle(_bundle(PATIENT, timestamp="2026-05-19T00:00:00Z")).case["pathway"]["age"]
    after = read_bundle(_bundle(PATIENT, timestamp="2026-05-20T00:00:00Z")).case["pathway"]["age"]
    assert (on, after) == (64, 65)


@pytest.mark.parametrize("bad, words", [
    ({"resourceType": "Patient"}, "expected a FHIR Bundle"),
    ({"resourceType": "Bundle"}, "not a valid FHIR R4 Bundle: type"),
    ({"resourceType": "Bundle", "type": "transaction"}, "is a request, not a record"),
    (_bundle({"resourceType": "Patient", "birthDate": "not-a-date"}), "entry.0.resource.birthDate"),
    (_bundle({"resourceType": "Observation", "status": "final"}), "entry.1.resource.code"),
])
def test_invalid_bundles_are_refused(bad, words):
    with pytest.raises(InvalidInputError) as exc:
        read_bundle(bad)
    assert exc.value.field == "bundle" and words in exc.value.message


def test_import_cli_and_rest(cli, tmp_path):
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(_bundle(PATIENT, _condition("Breast cancer"))))
    r = cli("fhir", "import", str(path))
    assert r.returncode == 0 and json.loads(r.stdout)["pathway"]["primary_site"] == "breast"
    assert "used     Patient/p1" in r.stderr
    assessed = cli("fhir", "import", str(path), "--assess")
    assert assessed.returncode == 0 and assessed.stdout.startswith("Assessment")
    from fastapi.testclient import TestClient

    from spinemets.api.app import create_app

    client = TestClient(create_app())
    ok = client.post("/api/v1/fhir/import", json=_bundle(PATIENT))
    assert ok.status_code == 200 and ok.json()["case"]["pathway"]["sex"] == "female"
    bad = client.post("/api/v1/fhir/import", json={"resourceType": "Patient"})
    assert bad.status_code == 422 and bad.json()["field"] == "bundle"


def test_the_pathway_is_exported_with_its_first_study_recommendations_and_urgency():
    from spinemets.assess import assess
    from spinemets.fhir.export import assessment_bundle

    case = {"pathway": {"age": 60, "sex": "female", "cancer_history": "current", "primary_site": "breast",
                        "spinal_pain": True, "pain_region": "thoracic", "neuro_deficits": ["motor_weakness"]}}
    bundle = assessment_bundle(assess(case))
    obs = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Observation"
               and e["resource"]["code"]["coding"][0]["code"] == "imaging-pathway")
    assert obs["valueCodeableConcept"]["coding"][0]["code"].startswith("study-mri-whole-spine")
    roles = [c["code"]["coding"][0]["code"] for c in obs["component"]]
    assert roles[0] == "pathway-first-line" and "pathway-urgency" in roles
    urgency = next(c for c in obs["component"] if c["code"]["coding"][0]["code"] == "pathway-urgency")
    assert "hour" in urgency["valueString"]
    assert obs["note"][0]["text"].startswith("What to do now:")
    not_indicated = assessment_bundle(assess({"pathway": {"age": 40, "sex": "male", "cancer_history": "none",
                                                          "spinal_pain": True, "pain_region": "lumbar",
                                                          "red_flags": [], "neuro_deficits": []}}))
    obs = next(e["resource"] for e in not_indicated["entry"] if e["resource"]["resourceType"] == "Observation")
    assert obs["valueString"] == "imaging not indicated"


# --- pregnancy status and implanted devices (coded answers of the knowledge base) -----------------------------------

def _pregnancy(system, code, rid="ps1", when="2026-11-25"):
    return {"resourceType": "Observation", "id": rid, "status": "final", "effectiveDateTime": when,
            "subject": {"reference": "Patient/p1"},
            "code": {"coding": [{"system": "http://loinc.org", "code": "82810-3"}]},
            "valueCodeableConcept": {"coding": [{"system": system, "code": code}]}}


SCT, LOINC, NCIT = "http://snomed.info/sct", "http://loinc.org", "urn:oid:2.16.840.1.113883.3.26.1.1"


@pytest.mark.parametrize("observations, expected, note", [
    ([_pregnancy(SCT, "77386006")], True, None),                      # US Core / IPS 2: SNOMED pregnant
    ([_pregnancy(LOINC, "LA26683-5")], False, None),                  # IPS 1.1: LOINC not pregnant
    ([_pregnancy(SCT, "146799005")], None, "possible pregnancy: leaves it open"),
    ([_pregnancy(LOINC, "LA4489-6")], None, "pregnancy status unknown: leaves it open"),
    ([_pregnancy(SCT, "12345")], None, "no answer spinemets reads"),
    # the most recent answer counts
    ([_pregnancy(SCT, "77386006", when="2026-01-01"), _pregnancy(SCT, "60001007", rid="ps2")], False, None),
])
def test_pregnancy_status_is_read_from_its_coded_answer(observations, expected, note):
    read = read_bundle(_bundle(*observations))
    assert read.case["pathway"].get("pregnant") == expected
    if note:
        assert any(note in u.note for u in read.not_used)


def test_a_pregnancy_status_that_contradicts_a_pregnancy_condition_keeps_the_pregnancy_and_says_so():
    # "not pregnant" beside an active pregnancy condition: the cautious reading (pregnant) is kept, to be confirmed;
    # leaving both out would have read as "not pregnant" (contrast and ionising staging allowed)
    read = read_bundle(_bundle(_condition("Pregnancy"), _pregnancy(SCT, "60001007")))
    assert read.case["pathway"]["pregnant"] is True
    assert any("read as pregnant, the cautious reading" in u.note for u in read.not_used)
    assert any(u.resource == "Condition/c1" and u.input == "pathway.pregnant" for u in read.used)
    male = {**PATIENT, "gender": "male"}
    read = read_bundle(_bundle(male, _pregnancy(SCT, "77386006")))
    assert "pregnant" not in read.case["pathway"]
    # the Patient is read first, wherever it stands in the Bundle
    read = read_bundle(_bundle(_condition("Pregnancy"), male))
    assert "pregnant" not in read.case["pathway"]


@pytest.mark.parametrize("text", ["Possible pregnancy", "Pregnancy not yet confirmed", "Suspected pregnancy"])
def test_an_unconfirmed_pregnancy_condition_is_not_read(text):
    read = read_bundle(_bundle(_condition(text)))
    assert "pregnant" not in read.case.get("pathway", {})


def test_an_old_pregnant_status_is_not_read_as_current():
    read = read_bundle(_bundle(_pregnancy(SCT, "77386006", when="2019-05-01")))  # the Bundle is of 2026-12-01
    assert "pregnant" not in read.case["pathway"]
    assert any("too old or undated to be read as current" in u.note for u in read.not_used)
    assert read_bundle(_bundle(_pregnancy(SCT, "77386006", when="2026-06-01"))).case["pathway"]["pregnant"] is True


IMPLANTABLE = {"profile": ["http://hl7.org/fhir/us/core/StructureDefinition/us-core-implantable-device"]}


def _device(rid="d1", safety=None, kind=None, status="active", patient="Patient/p1", implanted=True):
    dev = {"resourceType": "Device", "id": rid, "status": status, "patient": {"reference": patient}}
    if implanted:
        dev["meta"] = IMPLANTABLE
    if safety:
        dev["safety"] = [{"coding": [{"system": NCIT, "code": safety}]}]
    if kind:
        dev["type"] = {"coding": [{"system": SCT, "code": kind}]}
    return dev


@pytest.mark.parametrize("devices, expected", [
    ([_device(safety="C106046")], "mr_conditional"),
    ([_device(safety="C106047")], "mr_unsafe"),
    ([_device(safety="C106045")], "mr_safe"),
    ([_device(safety="C113844")], "labelling_unknown"),
    ([_device(kind="14106009")], "labelling_unknown"),               # a pacemaker whose MR safety is not given
    ([_device(safety="C106045"), _device("d2", safety="C106047")], "mr_unsafe"),  # the most cautious decides
    ([_device(safety="C106047", status="inactive")], None),          # removed
    ([_device(safety="C106047", patient="Patient/other")], None),    # another patient's
    ([_device(kind="25062003")], "labelling_unknown"),               # an implant (profile) of a kind not listed
    ([_device(safety="C106047", kind="69805005", implanted=False)], None),  # an insulin pump: taken off, not read
    ([_device(kind="14106009", implanted=False)], "labelling_unknown"),    # a pacemaker is implanted by its kind
])
def test_implants_are_read_from_their_mr_safety(devices, expected):
    read = read_bundle(_bundle(*devices))
    assert read.case.get("pathway", {}).get("implanted_device") == expected
    if expected is None:
        assert {u.resource for u in read.not_used} >= {f"Device/{d['id']}" for d in devices}


def test_an_implant_read_from_the_record_changes_the_pathway():
    case = read_bundle(_bundle(_condition("Metastatic breast cancer"), _device(safety="C106047"))).case
    from spinemets.pathway import pathway

    r = pathway({**case["pathway"], "spinal_pain": True, "pain_region": "thoracic", "neuro_deficits": []})
    assert "implant" in r.patient_groups
    assert not any(rec.study is not None and rec.study.modality == "mri" and rec.role == "first_line"
                   for rec in r.recommendations)


# --- the code system as a CodeSystem resource -----------------------------------------------------------------------

def _codes_in(value, system, out):
    if isinstance(value, dict):
        if value.get("system") == system and "code" in value:
            out.add(value["code"])
        for v in value.values():
            _codes_in(v, system, out)
    elif isinstance(value, list):
        for v in value:
            _codes_in(v, system, out)
    return out


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_CASES)
def test_every_code_a_random_export_carries_is_a_concept_of_the_code_system(case):
    from spinemets.fhir.codesystem import code_system_resource

    try:
        result = assess(case)
    except SpinemetsError:
        return
    if not result.statuses:
        return
    system = code_system(None)
    listed = {c["code"] for c in code_system_resource()["concept"]}
    assert _codes_in(assessment_bundle(result), system, set()) <= listed


def test_the_code_system_resource_over_cli_and_rest(cli, monkeypatch):
    from fastapi.testclient import TestClient

    from spinemets.api.app import create_app
    from spinemets.fhir.codesystem import code_system_resource

    monkeypatch.delenv("SPINEMETS_FHIR_BASE", raising=False)
    resource = code_system_resource()
    codes = {c["code"]: c for c in resource["concept"]}
    assert resource["url"] == "urn:spinemets:CodeSystem:spinemets" and resource["count"] == len(codes)
    assert resource["content"] == "complete" and "Decision support" in resource["description"]
    assert codes["sins-total"]["display"] == "Spinal Instability Neoplastic Score (SINS) total"
    assert codes["escc-grade-1c"]["display"] == "ESCC grade 1c"
    # everything the full example exports is listed
    assert _codes_in(assessment_bundle(assess(FULL)), resource["url"], set()) <= set(codes)
    r = cli("fhir", "codesystem", "--base", "https://terminology.example.org/fhir")
    assert r.returncode == 0
    assert json.loads(r.stdout)["url"] == "https://terminology.example.org/fhir/CodeSystem/spinemets"
    got = TestClient(create_app()).get("/api/v1/fhir/CodeSystem/spinemets")
    assert got.status_code == 200 and got.headers["content-type"].startswith("application/fhir+json")
    assert got.json()["concept"] == resource["concept"]


def test_every_coded_answer_gives_a_value_the_pathway_takes():
    import typing

    from spinemets.knowledge.loader import load_kb
    from spinemets.pathway import ImplantedDevice

    for row in load_kb().table("fhir_answers").rows:
        if row["input"] == "pathway.implanted_device":
            assert row["value"] in typing.get_args(ImplantedDevice), row.id
        else:
            assert row["input"] == "pathway.pregnant" and row["value"] in (True, False, None), row.id
