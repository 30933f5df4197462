"""Playing the EHR (issue 13): signed order-select calls to the real app, answered with cards checked against the
CDS Hooks 2.0 shapes."""

from __future__ import annotations

import time
import uuid

import pytest
import yaml
from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.jwk import ECKey

from spinemets.cdshooks.service import indication_system

ISS = "https://ehr.example.org"
KEY = ECKey.generate_key("P-384", parameters={"kid": "ehr-1"})
SERVICE = "spinemets-order-select"


@pytest.fixture
def client(tmp_path, monkeypatch):
    trust = tmp_path / "trust.yaml"
    trust.write_text(yaml.safe_dump({"clients": [{"iss": ISS, "jwks": {"keys": [KEY.as_dict(private=False)]}}]}))
    monkeypatch.setenv("SPINEMETS_CDS_TRUST", str(trust))
    monkeypatch.delenv("SPINEMETS_CDS_ALLOW_UNSIGNED", raising=False)
    monkeypatch.delenv("SPINEMETS_PAMA_GCODE", raising=False)
    from spinemets.api.app import create_app

    return TestClient(create_app())


def signed(url=f"http://testserver/cds-services/{SERVICE}"):
    now = int(time.time())
    claims = {"iss": ISS, "aud": url, "exp": now + 300, "iat": now, "jti": str(uuid.uuid4())}
    return {"Authorization": "Bearer " + jwt.encode({"alg": "ES384", "typ": "JWT", "kid": "ehr-1"}, claims, KEY,
                                                    algorithms=["ES384"])}


def patient(sex="female", born="1968-03-01"):
    return {"resourceType": "Patient", "id": "p1", "birthDate": born, "gender": sex}


def breast_cancer():
    return {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": {
        "resourceType": "Condition", "id": "c1", "subject": {"reference": "Patient/p1"},
        "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                       "code": "active"}]},
        "code": {"text": "Malignant neoplasm of breast"}}}]}


def no_cancer():
    return {"resourceType": "Bundle", "type": "searchset", "entry": []}


def order(code, *reasons, oid="sr1"):
    return {"resourceType": "ServiceRequest", "id": oid, "status": "draft", "intent": "order",
            "subject": {"reference": "Patient/p1"},
            "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
            "reasonCode": [{"coding": [{"system": indication_system(), "code": r} for r in reasons]}]}


def hook(*orders, prefetch=True, conditions=None):
    body = {"hook": "order-select", "hookInstance": str(uuid.uuid4()),
            "context": {"userId": "Practitioner/1", "patientId": "p1",
                        "draftOrders": {"resourceType": "Bundle", "type": "collection",
                                        "entry": [{"resource": o} for o in orders]}}}
    if prefetch:
        body["prefetch"] = {"patient": patient(), "conditions": conditions or breast_cancer()}
    return body


def check_card(card):
    assert set(card) <= {"uuid", "summary", "detail", "indicator", "source", "suggestions", "selectionBehavior",
                         "overrideReasons", "links"}
    assert len(card["summary"]) < 140 and card["indicator"] in ("info", "warning", "critical")
    assert card["source"]["label"] and "Decision support" in card["detail"]
    for s in card.get("suggestions", []):
        assert s["label"] and all(a["type"] in ("create", "update", "delete") and a["description"]
                                  for a in s["actions"])
    for link in card.get("links", []):
        assert link["type"] in ("absolute", "smart") and link["label"] and link["url"]


def test_discovery(client):
    services = client.get("/cds-services").json()["services"]
    assert {s["hook"] for s in services} == {"order-select", "order-sign", "patient-view"}
    assert all(s["id"] and s["description"] and "patient" in s["prefetch"] for s in services)


@pytest.mark.parametrize("reasons, words", [
    (("no-neurological-deficit", "motor-weakness"), "examined, no neurological deficit and new limb weakness both"),
    (("back-pain-lumbar", "no-back-pain"), "low back pain and no spinal pain both answered"),
])
def test_contradictory_reasons_are_not_read(client, reasons, words):
    body = hook(order("24967-2", *reasons))
    card = client.post(f"/cds-services/{SERVICE}", json=body, headers=signed()).json()["cards"][0]
    assert words in card["detail"] and "contradictory, not read" in card["detail"]
    assert "no rating yet" in card["summary"]


def test_a_mri_for_new_thoracic_back_pain_in_breast_cancer(client):
    body = hook(order("24981-3", "back-pain-thoracic", "no-red-flags", "no-neurological-deficit"))
    cards = client.post(f"/cds-services/{SERVICE}", json=body, headers=signed()).json()["cards"]
    assert len(cards) == 1
    check_card(cards[0])
    # the knowledge base holds no ACR variant for thoracic pain; the pathway's own recommendation is shown
    # (not "no criteria apply": ACR's Thoracic Back Pain document exists, its ratings are not in the knowledge base)
    assert cards[0]["summary"] == "MR Thoracic spine WO and W contrast IV: not rated (no ACR rating in spinemets)"
    assert "The pathway recommends:** MRI of the whole spine" in cards[0]["detail"]


def test_a_lumbar_mri_in_breast_cancer_is_usually_appropriate(client):
    body = hook(order("24967-2", "back-pain-lumbar", "no-red-flags", "no-neurological-deficit"))
    card = client.post(f"/cds-services/{SERVICE}", json=body, headers=signed()).json()["cards"][0]
    check_card(card)
    assert card["summary"] == "MR Lumbar spine WO and W contrast IV: usually appropriate (ACR)"


def test_b_lumbar_radiograph_without_red_flags_not_appropriate_with_a_suggestion(client):
    # a record without a cancer condition does not say "no cancer": the order's answer does
    unsaid = hook(order("24972-2", "back-pain-lumbar", "no-red-flags", "no-neurological-deficit"),
                  conditions=no_cancer())
    card = client.post(f"/cds-services/{SERVICE}", json=unsaid, headers=signed()).json()["cards"][0]
    assert "no rating yet" in card["summary"] and "cancer history" in card["detail"]
    body = hook(order("24972-2", "back-pain-lumbar", "no-red-flags", "no-neurological-deficit", "no-cancer-history"),
                conditions=no_cancer())
    card = client.post(f"/cds-services/{SERVICE}", json=body, headers=signed()).json()["cards"][0]
    check_card(card)
    assert card["indicator"] == "warning" and "usually not appropriate" in card["summary"]
    action = card["suggestions"][0]["actions"][0]
    assert (action["type"], action["resourceId"]) == ("delete", "ServiceRequest/sr1")


def test_c_no_record_and_no_reason_gives_no_rating_and_says_what_is_missing(client):
    # no record and no FHIR server, and nothing rateable without them: CDS Hooks 2.0 asks for 412, naming what is
    # missing (the EHR can call again with the prefetch)
    body = hook(order("24981-3"), prefetch=False)
    r = client.post(f"/cds-services/{SERVICE}", json=body, headers=signed())
    assert r.status_code == 412 and r.headers["content-type"].startswith("application/problem+json")
    assert "the patient's record (Patient, Conditions, Observations, Devices) was not prefetched" in r.json()["detail"]
    assert "names no FHIR server" in r.json()["detail"]
    # a partial record (no conditions): a card, no rating, the cancer history and the conditions named as missing
    body = hook(order("24981-3"))
    del body["prefetch"]["conditions"]
    card = client.post(f"/cds-services/{SERVICE}", json=body, headers=signed()).json()["cards"][0]
    check_card(card)
    assert card["summary"].endswith("no rating yet, information missing")
    assert "the patient's conditions (cancer, pregnancy) (neither prefetched nor fetched)" in card["detail"]
    assert "cancer history" in card["detail"]
    # the reasons without the record: "no imaging" holds for adults only, so the age is needed (412) ...
    reasons = ("back-pain-lumbar", "no-red-flags", "no-neurological-deficit", "no-cancer-history")
    body = hook(order("24972-2", *reasons), prefetch=False)
    assert client.post(f"/cds-services/{SERVICE}", json=body, headers=signed()).status_code == 412
    # ... and with the Patient alone (an adult), the reasons decide; the rest of the record was not needed
    body = hook(order("24972-2", *reasons))
    del body["prefetch"]["conditions"]
    card = client.post(f"/cds-services/{SERVICE}", json=body, headers=signed()).json()["cards"][0]
    assert card["summary"] == "XR Lumbar spine Views: usually not appropriate (ACR)"
    assert "(neither prefetched nor fetched): not needed for this answer" in card["detail"]
    assert "systemActions" not in client.post(f"/cds-services/{SERVICE}", json=hook(order("24981-3")),
                                              headers=signed()).json()


def test_pama_system_actions_only_with_a_configured_g_code(client, monkeypatch):
    monkeypatch.setenv("SPINEMETS_PAMA_GCODE", "G1011")
    body = hook(order("24967-2", "back-pain-lumbar", "no-red-flags", "no-neurological-deficit"))
    answer = client.post(f"/cds-services/{SERVICE}", json=body, headers=signed()).json()
    action = answer["systemActions"][0]
    assert action["type"] == "update" and action["resource"]["id"] == "sr1"
    ext = {e["url"]: e for e in action["resource"]["extension"]}
    rating = ext["http://fhir.org/argonaut/Extension/pama-rating"]["valueCodeableConcept"]["coding"][0]
    assert (rating["system"], rating["code"]) == ("http://fhir.org/argonaut/CodeSystem/pama-rating", "appropriate")
    assert ext["http://fhir.org/argonaut/Extension/pama-rating-qcdsm-consulted"]["valueString"] == "G1011"


def test_orders_it_does_not_know_get_no_card(client):
    body = hook(order("24627-2"))  # a chest CT: not a spine imaging order
    assert client.post(f"/cds-services/{SERVICE}", json=body, headers=signed()).json() == {"cards": []}


@pytest.mark.parametrize("headers, body, status, words", [
    ({}, None, 401, "no Authorization header"),
    (None, {"hook": "patient-view", "hookInstance": "x", "context": {}}, 400, "answers the order-select hook"),
    (None, {"hook": "order-select", "hookInstance": "x", "context": {}}, 400, "draftOrders"),
    (None, b"{not json", 400, "not valid JSON"),
    # a prefetched Condition without its subject: the caller's own record is not valid FHIR
    (None, {**hook(order("24981-3")), "prefetch": {"conditions": {"resourceType": "Bundle", "type": "searchset",
                                                                  "entry": [{"resource": {"resourceType": "Condition",
                                                                                          "code": {"text": "x"}}}]}}},
     400, "not a valid FHIR R4 Bundle"),
    (None, {**hook(order("24981-3")), "prefetch": ["not", "an", "object"]}, 400, "must be an object"),
    (None, {**hook(order("24981-3")), "context": "p1"}, 400, "context: must be an object"),
    (None, {**hook(order("24981-3")), "prefetch": {"patient": "Patient/p1"}}, 400, "prefetch.patient: must be a FHIR"),
    (None, {**hook(), "context": {"patientId": "p1", "draftOrders": []}}, 400, "draftOrders"),
])
def test_refusals(client, headers, body, status, words):
    headers = signed() if headers is None else headers
    if isinstance(body, bytes):
        r = client.post(f"/cds-services/{SERVICE}", content=body, headers={**headers, "content-type": "application/json"})
    else:
        r = client.post(f"/cds-services/{SERVICE}", json=body or hook(order("24981-3")), headers=headers)
    assert r.status_code == status and words in r.json()["detail"]


def test_an_unknown_service_is_not_found(client):
    r = client.post("/cds-services/other", json=hook(), headers=signed("http://testserver/cds-services/other"))
    assert r.status_code == 404


def test_feedback_is_recorded_in_the_audit_trail(client):
    url = f"http://testserver/cds-services/{SERVICE}/feedback"
    body = {"feedback": [{"card": "card-1", "outcome": "accepted", "acceptedSuggestions": [{"id": "s-1"}],
                          "outcomeTimestamp": "2026-12-06T10:00:00Z"},
                         {"card": "card-2", "outcome": "overridden", "outcomeTimestamp": "2026-12-06T10:01:00Z",
                          "overrideReason": {"reason": {"code": "patient-refused"}, "userComment": "declined"}}]}
    r = client.post(f"/cds-services/{SERVICE}/feedback", json=body, headers=signed(url))
    assert r.status_code == 200 and r.json() == {"recorded": 2}
    from spinemets.store import repository as repo

    with client.app.state.store.session(write=True) as s:
        records = [a for a in repo.audit_list(s, repo.system("test"), action="create")[0]
                   if a["object_type"] == "cds_feedback"]
        assert repo.audit_verify(s, repo.system("test")).ok
    assert {a["object_id"] for a in records} >= {"card-1", "card-2"}
    assert all(a["actor"] == ISS for a in records)


@pytest.mark.parametrize("body, status, words", [
    ({"feedback": [{"card": "c", "outcome": "accepted", "outcomeTimestamp": "2026-12-06T10:00:00Z"}]}, 400,
     "acceptedSuggestions"),
    ({"feedback": [{"card": "c", "outcome": "maybe", "outcomeTimestamp": "2026-12-06T10:00:00Z"}]}, 400, "outcome"),
    ({"feedback": [{"card": "c", "outcome": "overridden", "outcomeTimestamp": "yesterday"}]}, 400, "outcomeTimestamp"),
    ({"feedback": []}, 400, "non-empty list"),
])
def test_malformed_feedback_is_refused(client, body, status, words):
    url = f"http://testserver/cds-services/{SERVICE}/feedback"
    r = client.post(f"/cds-services/{SERVICE}/feedback", json=body, headers=signed(url))
    assert r.status_code == status and words in r.json()["detail"]


def test_feedback_needs_a_signed_call_and_a_known_service(client):
    assert client.post(f"/cds-services/{SERVICE}/feedback", json={"feedback": []}).status_code == 401
    assert client.post("/cds-services/other/feedback", json={"feedback": []}).status_code == 404


def test_two_pain_regions_are_pain_in_several_regions_and_a_contradiction_drops_both_rows():
    from spinemets.cdshooks.service import _indications
    from spinemets.knowledge.loader import load_kb

    kb = load_kb()
    inputs, said = _indications(order("24981-3", "back-pain-thoracic", "back-pain-lumbar"), kb, None)
    assert inputs == {"spinal_pain": True, "pain_region": "multiple"} and said == ["thoracic back pain", "low back pain"]
    inputs, said = _indications(order("24981-3", "no-back-pain", "back-pain-lumbar", "no-red-flags"), kb, None)
    assert inputs == {"red_flags": []}  # nothing of the two contradicting rows is read, not even the region
    inputs, said = _indications(order("24981-3", "no-red-flags", "no-red-flags"), kb, None)
    assert said == ["red flags assessed, none present"]  # a repeated code once


def test_a_patient_included_by_a_condition_search_is_one_patient(client):
    body = hook(order("24967-2", "back-pain-lumbar", "no-red-flags", "no-neurological-deficit"))
    body["prefetch"]["conditions"]["entry"].append({"resource": patient(), "search": {"mode": "include"}})
    card = client.post(f"/cds-services/{SERVICE}", json=body, headers=signed()).json()["cards"][0]
    assert card["summary"] == "MR Lumbar spine WO and W contrast IV: usually appropriate (ACR)"


def test_a_contradicted_pregnancy_is_kept_and_said_on_the_card(client):
    pregnancy = {"resourceType": "Condition", "id": "c2", "subject": {"reference": "Patient/p1"},
                 "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                                "code": "active"}]}, "code": {"text": "Pregnancy"}}
    status = {"resourceType": "Observation", "id": "o1", "status": "final", "effectiveDateTime": "2021-01-01",
              "subject": {"reference": "Patient/p1"},
              "code": {"coding": [{"system": "http://loinc.org", "code": "82810-3"}]},
              "valueCodeableConcept": {"coding": [{"system": "http://snomed.info/sct", "code": "60001007"}]}}
    conditions = breast_cancer()
    conditions["entry"].append({"resource": pregnancy})
    body = hook(order("24981-3", "back-pain-thoracic", "no-neurological-deficit"), conditions=conditions)
    body["prefetch"]["observations"] = {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": status}]}
    card = client.post(f"/cds-services/{SERVICE}", json=body, headers=signed()).json()["cards"][0]
    assert "read as pregnant, the cautious reading" in card["detail"]
    assert "without IV contrast" in card["detail"]  # the pathway's study for a pregnant patient


def test_an_error_on_a_card_names_the_input_in_words_not_its_field_path():
    from spinemets.cdshooks.service import _in_words
    from spinemets.errors import ContradictoryInputError, InvalidInputError

    text = _in_words(InvalidInputError("pathway.egfr", "must be between 0 and 200"))
    assert "pathway." not in text and text.endswith("must be between 0 and 200")
    text = _in_words(ContradictoryInputError(["pathway.pregnant", "pathway.sex"], "a pregnancy in a male patient"))
    assert "pathway." not in text and "do not fit together" in text
