"""The patient-view reminders (issue 13): an adult with spinal metastases on the problem list, whose record holds
no SINS or ESCC result of spinemets, gets a card for each, with the reason and its sources; signed calls to the real
app, checked against the CDS Hooks 2.0 card shape."""

from __future__ import annotations

import uuid

import pytest

from spinemets.cdshooks.service import discovery
from spinemets.fhir.export import code_system
from tests.test_cdshooks_service import check_card, client, patient, signed  # noqa: F401

ACTIVE_STATUS = "http://terminology.hl7.org/CodeSystem/condition-clinical"

SERVICE = "spinemets-patient-view"
URL = f"http://testserver/cds-services/{SERVICE}"


def condition(text, status="active", verification=None, rid="c1", subject="Patient/p1"):
    res = {"resourceType": "Condition", "id": rid, "subject": {"reference": subject},
           "clinicalStatus": {"coding": [{"system": ACTIVE_STATUS, "code": status}]}, "code": {"text": text}}
    if verification:
        res["verificationStatus"] = {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": verification}]}
    return res


def result(code, rid="o1", status="final", subject="Patient/p1"):
    return {"resourceType": "Observation", "id": rid, "status": status, "subject": {"reference": subject},
            "code": {"coding": [{"system": code_system(), "code": code}]}, "valueInteger": 9}


def searchset(*resources):
    return {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": r} for r in resources]}


def view(conditions=(), results=(), born="1958-03-01", prefetch=True):
    body = {"hook": "patient-view", "hookInstance": str(uuid.uuid4()),
            "context": {"userId": "Practitioner/1", "patientId": "p1"}}
    if prefetch:
        body["prefetch"] = {"patient": patient(born=born), "conditions": searchset(*conditions),
                            "results": searchset(*results)}
    return body


def cards(client, body, status=200):  # noqa: F811
    r = client.post(f"/cds-services/{SERVICE}", json=body, headers=signed(URL))
    assert r.status_code == status, r.text
    return r.json().get("cards") if status == 200 else r.json()


def test_discovery_lists_the_patient_view_service_with_its_prefetch():
    svc = next(s for s in discovery()["services"] if s["id"] == SERVICE)
    assert svc["hook"] == "patient-view" and "Decision support" in svc["description"]
    assert set(svc["prefetch"]) == {"patient", "conditions", "results"}
    assert f"{code_system()}|sins-total" in svc["prefetch"]["results"]


def test_an_adult_with_spinal_metastases_and_no_scores_gets_both_reminders(client):  # noqa: F811
    got = cards(client, view([condition("Vertebral metastases from breast cancer")]))
    assert [c["summary"] for c in got] == ["Spinal metastases: no SINS (spinal instability) recorded",
                                           "Spinal metastases: no ESCC (epidural cord compression) grade recorded"]
    for c in got:
        check_card(c)
        assert "Vertebral metastases from breast cancer" in c["detail"]
    assert [c["links"][0]["url"] for c in got] == ["http://testserver/sins", "http://testserver/escc"]
    for c in got:
        assert client.get(c["links"][0]["url"].removeprefix("http://testserver")).status_code == 200
    assert "spine-surgery consultation" in got[0]["detail"] and "Fisher CG" in got[0]["detail"]
    assert "Laufer I" in got[1]["detail"]


def test_a_recorded_score_gives_no_reminder(client):  # noqa: F811
    got = cards(client, view([condition("Spinal metastases")], [result("sins-total")]))
    assert [c["summary"] for c in got] == ["Spinal metastases: no ESCC (epidural cord compression) grade recorded"]
    got = cards(client, view([condition("Spinal metastases")], [result("sins-total"), result("escc-grade", "o2")]))
    assert got == []
    # an entered-in-error result, or another patient's, does not count
    got = cards(client, view([condition("Spinal metastases")], [result("sins-total", status="entered-in-error"),
                                                               result("escc-grade", "o2", subject="Patient/p2")]))
    assert len(got) == 2


@pytest.mark.parametrize("conditions", [
    [],
    [condition("Breast cancer")],                                        # cancer, not spinal metastases
    [condition("Bone metastases")],                                      # not said to be spinal
    [condition("Suspected spinal metastases")],                          # hedged
    [condition("History of spinal metastasis")],
    [condition("Spinal metastases", status="resolved")],
    [condition("Spinal metastases", verification="refuted")],
    [condition("Spinal metastases", subject="Patient/p2")],              # another patient's
    [condition("No spinal metastases")],                                 # negated
    [condition("Breast cancer without spinal metastases")],
    [condition("Spinal metastases excluded")],
    [condition("Intramedullary spinal metastasis")],                     # inside the dura: SINS does not apply
    [{**condition("Spinal metastases"), "abatementDateTime": "2026-01-01"}],  # active and abated: contradictory
])
def test_no_reminder_without_current_confirmed_spinal_metastases(client, conditions):  # noqa: F811
    assert cards(client, view(conditions)) == []


def test_no_reminder_for_a_child(client):  # noqa: F811
    assert cards(client, view([condition("Spinal metastases")], born="2016-01-01")) == []


def test_without_the_record_the_answer_is_412_naming_what_is_missing(client):  # noqa: F811
    problem = cards(client, view(prefetch=False), status=412)
    assert "the patient's age, the patient's problem list" in problem["detail"]
    body = view([condition("Spinal metastases")])
    del body["prefetch"]["results"]
    assert "spinemets' results in the record" in cards(client, body, status=412)["detail"]


def test_a_malformed_call_is_refused(client):  # noqa: F811
    body = view()
    body["context"]["patientId"] = "../x"
    assert client.post(f"/cds-services/{SERVICE}", json=body, headers=signed(URL)).status_code == 400
    body = view()
    body["hook"] = "order-select"
    assert client.post(f"/cds-services/{SERVICE}", json=body, headers=signed(URL)).status_code == 400


def test_no_reminder_when_a_patient_or_a_relative_opens_the_record(client):  # noqa: F811
    body = view([condition("Spinal metastases")])
    body["context"]["userId"] = "Patient/p1"
    assert cards(client, body) == []
    body["context"]["userId"] = "PractitionerRole/r1"
    assert len(cards(client, body)) == 2


def test_a_metastasis_named_with_a_finding_beside_it_still_counts(client):  # noqa: F811
    assert len(cards(client, view([condition("Spinal metastases without cord compression")]))) == 2
