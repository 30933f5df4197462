"""What the EHR did not prefetch, fetched from its FHIR server (issue 13): a real HTTP server plays the EHR's FHIR
server (it checks the access token, pages a search, can be slow or refuse), and signed hook calls go to the real app."""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml
from fastapi.testclient import TestClient
from tests.test_cdshooks_service import ISS, KEY, SERVICE, breast_cancer, check_card, hook, order, patient, signed

from spinemets.cdshooks import fetch
from spinemets.cdshooks.auth import load_trust
from spinemets.cdshooks.service import PREFETCH_LABELS, prefetch_templates

TOKEN = "ehr-access-token-1"


class FhirServer:
    """The EHR's FHIR server: Patient/p1, its Conditions (two pages) and no Observations."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str | None]] = []
        self.delay = 0.0
        self.next_url: str | None = None  # overrides the Condition search's next link
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                outer.requests.append((self.path, self.headers.get("Authorization")))
                time.sleep(outer.delay)
                if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    return self.answer(401, {"resourceType": "OperationOutcome", "issue": []})
                url = urllib.parse.urlsplit(self.path)
                query = urllib.parse.parse_qs(url.query)
                if url.path == "/fhir/Patient/p1":
                    return self.answer(200, patient())
                if url.path == "/fhir/Condition" and query.get("patient") == ["p1"]:
                    if query.get("page") == ["2"]:
                        return self.answer(200, breast_cancer())
                    nxt = outer.next_url or f"{outer.base}/Condition?patient=p1&page=2"
                    return self.answer(200, {"resourceType": "Bundle", "type": "searchset", "entry": [],
                                             "link": [{"relation": "next", "url": nxt}]})
                if url.path == "/fhir/Observation" and query.get("patient") == ["p1"]:
                    return self.answer(200, {"resourceType": "Bundle", "type": "searchset", "entry": []})
                return self.answer(404, {"resourceType": "OperationOutcome", "issue": []})

            def answer(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/fhir+json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}/fhir"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def ehr():
    server = FhirServer()
    yield server
    server.close()


def app(tmp_path, monkeypatch, servers):
    trust = tmp_path / "trust.yaml"
    trust.write_text(yaml.safe_dump({"clients": [{"iss": ISS, "jwks": {"keys": [KEY.as_dict(private=False)]},
                                                  "fhir_servers": servers}]}))
    monkeypatch.setenv("SPINEMETS_CDS_TRUST", str(trust))
    monkeypatch.delenv("SPINEMETS_CDS_ALLOW_UNSIGNED", raising=False)
    monkeypatch.delenv("SPINEMETS_PAMA_GCODE", raising=False)
    from spinemets.api.app import create_app

    return TestClient(create_app())


def call(client, ehr, token=TOKEN, server=None, prefetch=False, status=200):
    body = hook(order("24967-2", "back-pain-lumbar", "no-red-flags", "no-neurological-deficit"), prefetch=prefetch)
    body["fhirServer"] = server or ehr.base
    if token is not None:
        body["fhirAuthorization"] = {"access_token": token, "token_type": "Bearer", "expires_in": 300,
                                     "scope": "patient/Patient.read patient/Condition.read patient/Observation.read",
                                     "subject": "spinemets"}
    response = client.post(f"/cds-services/{SERVICE}", json=body, headers=signed())
    assert response.status_code == status, response.text
    if status == 412:  # nothing of the record: the problem names what is missing and why
        return response.json()["detail"]
    card = response.json()["cards"][0]
    check_card(card)
    return card


def test_the_record_not_prefetched_is_fetched_with_the_token_and_rated_as_if_prefetched(tmp_path, monkeypatch, ehr):
    client = app(tmp_path, monkeypatch, [ehr.base])
    card = call(client, ehr)
    assert card["summary"] == "MR Lumbar spine WO and W contrast IV: usually appropriate (ACR)"
    paths = [p for p, _ in ehr.requests]
    assert paths[0] == "/fhir/Patient/p1"
    assert "/fhir/Condition?patient=p1" in paths and "/fhir/Condition?patient=p1&page=2" in paths  # the next page
    assert any(p.startswith("/fhir/Observation?patient=p1&code=") for p in paths)
    assert {auth for _, auth in ehr.requests} == {f"Bearer {TOKEN}"}
    assert "Not available" not in card["detail"]


def test_only_what_was_not_prefetched_is_fetched(tmp_path, monkeypatch, ehr):
    client = app(tmp_path, monkeypatch, [ehr.base])
    card = call(client, ehr, prefetch=True)  # patient and conditions prefetched
    assert [p.split("?")[0] for p, _ in ehr.requests] == ["/fhir/Observation"]
    assert "usually appropriate" in card["summary"]


def test_a_server_the_site_does_not_allow_is_never_contacted(tmp_path, monkeypatch, ehr):
    client = app(tmp_path, monkeypatch, ["https://other-ehr.example.org/fhir"])
    detail = call(client, ehr, status=412)
    assert ehr.requests == []
    assert f"the EHR's FHIR server {ehr.base} is not one this site allows" in detail
    # with part of the record prefetched, a card says what could not be fetched
    card = call(client, ehr, prefetch=True)
    assert "not one this site allows" in card["detail"] and ehr.requests == []


def test_a_refused_token_is_said_and_nothing_is_guessed(tmp_path, monkeypatch, ehr):
    client = app(tmp_path, monkeypatch, [ehr.base])
    assert "refused the access token (401)" in call(client, ehr, token="stale", status=412)


def test_a_slow_server_times_out(tmp_path, monkeypatch, ehr):
    monkeypatch.setenv("SPINEMETS_CDS_FETCH_TIMEOUT", "0.3")
    ehr.delay = 1.0
    client = app(tmp_path, monkeypatch, [ehr.base])
    assert "did not answer in time" in call(client, ehr, status=412)


def test_a_next_page_on_another_server_is_not_followed(tmp_path, monkeypatch, ehr):
    ehr.next_url = "https://elsewhere.example.org/fhir/Condition?page=2"
    client = app(tmp_path, monkeypatch, [ehr.base])
    card = call(client, ehr)
    assert "the patient's conditions (cancer, pregnancy): the search's next page is on another server" in card["detail"]
    assert "no rating yet" in card["summary"]  # the cancer history stays unknown


def test_an_unsigned_development_call_fetches_nothing(tmp_path, monkeypatch, ehr):
    client = app(tmp_path, monkeypatch, [ehr.base])
    monkeypatch.setenv("SPINEMETS_CDS_ALLOW_UNSIGNED", "1")
    client = TestClient(__import__("spinemets.api.app", fromlist=["create_app"]).create_app())
    body = hook(order("24967-2", "back-pain-lumbar"), prefetch=False)
    body["fhirServer"] = ehr.base
    r = client.post(f"/cds-services/{SERVICE}", json=body)
    assert r.status_code == 412 and ehr.requests == [] and "not one this site allows" in r.json()["detail"]


def test_expand_fills_the_context_and_refuses_a_value_that_would_change_the_query():
    template = prefetch_templates()["conditions"]
    assert fetch.expand(template, {"patientId": "p1"}) == "Condition?patient=p1"
    assert fetch.expand(template, {"patientId": "p1&code=x"}) is None
    assert fetch.expand(template, {"patientId": "../Patient"}) is None
    assert fetch.expand(template, {}) is None


def test_missing_keys_counts_null_and_operation_outcome_as_not_prefetched():
    templates = prefetch_templates()
    request = {"prefetch": {"patient": patient(), "conditions": None,
                            "observations": {"resourceType": "OperationOutcome", "issue": []}}}
    assert fetch.missing_keys(request, templates) == ["conditions", "observations"]


def test_a_token_that_is_not_bearer_is_not_used():
    request = {"fhirServer": "https://ehr.example.org/fhir", "context": {"patientId": "p1"},
               "fhirAuthorization": {"access_token": "x", "token_type": "MAC"}}
    got = fetch.fetch_missing(request, prefetch_templates(), ["https://ehr.example.org/fhir"], PREFETCH_LABELS)
    assert got.resources == {} and "not a Bearer token" in got.problems[0]


def test_the_trust_file_refuses_a_fhir_server_that_is_not_a_url(tmp_path):
    trust = tmp_path / "trust.yaml"
    trust.write_text(yaml.safe_dump({"clients": [{"iss": ISS, "jwks": {"keys": [KEY.as_dict(private=False)]},
                                                  "fhir_servers": ["ehr.example.org/fhir"]}]}))
    with pytest.raises(ValueError, match="fhir_servers must be http"):
        load_trust(trust)
    trust.write_text(yaml.safe_dump({"clients": [{"iss": ISS, "jwks": {"keys": [KEY.as_dict(private=False)]},
                                                  "fhir_servers": ["https://ehr.example.org/fhir/"]}]}))
    assert load_trust(trust).clients[ISS].fhir_servers == ("https://ehr.example.org/fhir",)
