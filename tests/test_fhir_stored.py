"""A saved assessment as FHIR (issue 13): ``spinemets fhir export ASSESSMENT_ID`` and
``GET /api/v1/fhir/assessments/{id}`` give the result as it was saved (not recomputed), with its pseudonymous patient
reference, study date and id; only for users who may read it; audited as an export."""

from __future__ import annotations

import datetime as dt
import json

from fastapi.testclient import TestClient

from spinemets.fhir.export import validate
from tests.store_support import CASE, add_token, add_user, save


def observations(bundle):
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Observation"]


def check_stored(bundle, assessment_id, ref, date):
    validate(bundle)
    obs = observations(bundle)
    assert obs and all(o["subject"]["identifier"]["value"] == ref and o["effectiveDateTime"] == date for o in obs)
    report = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "DiagnosticReport")
    assert report["identifier"][0]["value"] == assessment_id and report["effectiveDateTime"] == date
    assert report["subject"]["identifier"]["system"] == "urn:spinemets:NamingSystem:spinemets-patient-ref"


def test_cli_exports_a_saved_assessment_as_it_was_saved(store, db_url, monkeypatch, cli):
    monkeypatch.setenv("SPINEMETS_DATABASE_URL", db_url)
    alice = add_user(store, "alice")
    add_user(store, "bob")
    aid = save(store, alice, ref="P-42", study_date=dt.date(2024, 3, 5))
    with store.session(write=True) as s:  # what was saved is what is exported: change the stored total
        from spinemets.store.models import Assessment

        row = s.get(Assessment, aid)
        doc = dict(row.result_document)
        doc["sins"] = {**doc["sins"], "total": 17}
        row.result_document = doc
    r = cli("fhir", "export", aid, "--user", "alice")
    assert r.returncode == 0, r.stderr
    bundle = json.loads(r.stdout)
    check_stored(bundle, aid, "P-42", "2024-03-05")
    sins = next(o for o in observations(bundle) if o["code"]["coding"][0]["code"] == "sins-total")
    assert sins["valueInteger"] == 17
    r = cli("fhir", "export", aid, "--user", "bob")  # private to alice
    assert r.returncode == 2 and "no assessment" in r.stderr
    r = cli("fhir", "export", aid)
    assert r.returncode == 2 and "--user" in r.stderr
    from spinemets.store.models import AuditEntry

    with store.session() as s:
        actions = [(e.actor, e.action, json.loads(e.detail).get("format")) for e in
                   s.query(AuditEntry).order_by(AuditEntry.seq)]
    assert ("alice", "export", "fhir") in actions


def test_rest_exports_a_saved_assessment_for_a_signed_in_user_only(store, db_url, monkeypatch):
    monkeypatch.setenv("SPINEMETS_DATABASE_URL", db_url)
    alice = add_user(store, "alice")
    add_user(store, "bob")
    aid = save(store, alice, ref="P-43", study_date=dt.date(2025, 1, 2))
    from spinemets.api.app import create_app

    client = TestClient(create_app())
    r = client.get(f"/api/v1/fhir/assessments/{aid}", headers={"authorization": f"Bearer {add_token(store, 'alice')}"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/fhir+json")
    check_stored(r.json(), aid, "P-43", "2025-01-02")
    r = client.get(f"/api/v1/fhir/assessments/{aid}", headers={"authorization": f"Bearer {add_token(store, 'bob')}"})
    assert r.status_code == 404 and "no assessment" in r.json()["detail"]
    assert client.get(f"/api/v1/fhir/assessments/{aid}").status_code == 401


def test_a_case_file_is_still_assessed_now(tmp_path, cli):
    case = tmp_path / "case.json"
    case.write_text(json.dumps(CASE))
    r = cli("fhir", "export", str(case))
    assert r.returncode == 0 and "subject" not in json.dumps(observations(json.loads(r.stdout))[0])


def _saved_and_changed(store, db_url, monkeypatch, ref, **changes):
    """An assessment saved by alice (the store named by the environment), with *changes* made to its row."""
    from spinemets.store.models import Assessment

    monkeypatch.setenv("SPINEMETS_DATABASE_URL", db_url)
    aid = save(store, add_user(store, "alice"), ref=ref)
    with store.session(write=True) as s:
        row = s.get(Assessment, aid)
        for name, value in changes.items():
            setattr(row, name, value(row) if callable(value) else value)
    return aid


def test_a_saved_result_this_version_cannot_read_is_refused_clearly_and_not_audited(store, db_url, monkeypatch, cli):
    aid = _saved_and_changed(store, db_url, monkeypatch, "P-44",
                             result_document=lambda row: {**row.result_document, "statuses": "not a mapping"})
    r = cli("fhir", "export", aid, "--user", "alice")
    assert r.returncode == 2 and "saved by an earlier version" in r.stderr and "Traceback" not in r.stderr
    from spinemets.api.app import create_app

    client = TestClient(create_app())
    r = client.get(f"/api/v1/fhir/assessments/{aid}", headers={"authorization": f"Bearer {add_token(store, 'alice')}"})
    assert r.status_code == 409 and "spinemets assessment export" in r.json()["detail"]
    from spinemets.store.models import AuditEntry

    with store.session() as s:
        assert not [e for e in s.query(AuditEntry) if e.action == "export"]


def test_a_saved_results_observations_are_issued_when_assessed(store, db_url, monkeypatch, cli):
    aid = _saved_and_changed(store, db_url, monkeypatch, "P-45",
                             created_at=dt.datetime(2024, 2, 1, 9, 30, tzinfo=dt.timezone.utc))
    bundle = json.loads(cli("fhir", "export", aid, "--user", "alice").stdout)
    assert {o["issued"] for o in observations(bundle)} == {"2024-02-01T09:30:00+00:00"}
    assert bundle["timestamp"] != "2024-02-01T09:30:00+00:00"  # the Bundle itself is made when exported
