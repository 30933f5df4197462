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
        self.mode = ""  # "invalid": a Condition without its subject; "redirect": the Patient read redirects
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
                    if outer.mode == "redirect":
                        self.send_response(302)
                        self.send_header("Location", "https://elsewhere.example.org/fhir/Patient/p1")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return None
                    return self.answer(200, patient())
                if url.path == "/fhir/Condition" and outer.mode == "invalid":
                    bad = breast_cancer()
                    del bad["entry"][0]["resource"]["subject"]
                    return self.answer(200, bad)
                if url.path == "/fhir/Condition" and query.get("patient") == ["p1"]:
                    if query.get("page") == ["2"]:
                        return self.answer(200, breast_cancer())
                    nxt = outer.next_url or f"{outer.base}/Condition?patient=p1&page=2"
                    return self.answer(200, {"resourceType": "Bundle", "type": "searchset", "entry": [],
                                             "link": [{"relation": "next", "url": nxt}]})
                if url.path in ("/fhir/Observation", "/fhir/Device") and query.get("patient") == ["p1"]:
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
    assert "/fhir/Device?patient=p1" in paths
    assert {auth for _, auth in ehr.requests} == {f"Bearer {TOKEN}"}
    assert "About the record" not in card["detail"]


def test_only_what_was_not_prefetched_is_fetched(tmp_path, monkeypatch, ehr):
    client = app(tmp_path, monkeypatch, [ehr.base])
    card = call(client, ehr, prefetch=True)  # patient and conditions prefetched
    assert [p.split("?")[0] for p, _ in ehr.requests] == ["/fhir/Observation", "/fhir/Device"]
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


def test_only_keys_left_out_are_fetched():
    templates = prefetch_templates()
    request = {"prefetch": {"patient": patient(), "conditions": None}}  # null: no data; observations: left out
    assert fetch.missing_keys(request, templates) == ["observations", "devices"]
    assert fetch.missing_keys({}, templates) == list(templates)


def test_a_token_that_is_not_bearer_is_not_used():
    request = {"fhirServer": "https://ehr.example.org/fhir", "context": {"patientId": "p1"},
               "fhirAuthorization": {"access_token": "x", "token_type": "MAC"}}
    got = fetch.fetch_missing(request, prefetch_templates(), ["https://ehr.example.org/fhir"], PREFETCH_LABELS)
    assert got.resources == {} and "not a usable Bearer token" in got.problems[0]


def test_the_trust_file_refuses_a_fhir_server_that_is_not_a_url(tmp_path):
    trust = tmp_path / "trust.yaml"
    trust.write_text(yaml.safe_dump({"clients": [{"iss": ISS, "jwks": {"keys": [KEY.as_dict(private=False)]},
                                                  "fhir_servers": ["ehr.example.org/fhir"]}]}))
    with pytest.raises(ValueError, match="fhir_servers must be https"):
        load_trust(trust)
    trust.write_text(yaml.safe_dump({"clients": [{"iss": ISS, "jwks": {"keys": [KEY.as_dict(private=False)]},
                                                  "fhir_servers": ["https://ehr.example.org/fhir/"]}]}))
    assert load_trust(trust).clients[ISS].fhir_servers == ("https://ehr.example.org/fhir",)


def test_no_access_token_means_nothing_is_fetched(tmp_path, monkeypatch, ehr):
    client = app(tmp_path, monkeypatch, [ehr.base])
    detail = call(client, ehr, token=None, status=412)
    assert ehr.requests == [] and "grants no access token" in detail


def test_a_token_that_is_not_ascii_is_not_sent(tmp_path, monkeypatch, ehr):
    client = app(tmp_path, monkeypatch, [ehr.base])
    detail = call(client, ehr, token="t\u00f6ken", status=412)
    assert ehr.requests == [] and "not a usable Bearer token" in detail


def test_an_invalid_answer_of_the_ehr_is_said_not_blamed_on_the_caller(tmp_path, monkeypatch, ehr):
    ehr.mode = "invalid"
    client = app(tmp_path, monkeypatch, [ehr.base])
    card = call(client, ehr)  # a card, not a 400: the patient and observations were read, the conditions were not
    assert "the patient's conditions (cancer, pregnancy): the EHR's FHIR server's answer is not valid FHIR" in card["detail"]
    assert "no rating yet" in card["summary"]


def test_a_redirect_is_not_followed(tmp_path, monkeypatch, ehr):
    ehr.mode = "redirect"
    client = app(tmp_path, monkeypatch, [ehr.base])
    card = call(client, ehr)
    assert "redirected the request (302): not followed" in card["detail"]
    assert not any("elsewhere" in p for p, _ in ehr.requests)


def test_null_is_no_data_and_an_error_is_not_fetched_again(tmp_path, monkeypatch, ehr):
    client = app(tmp_path, monkeypatch, [ehr.base])
    body = hook(order("24967-2", "back-pain-lumbar", "no-red-flags", "no-neurological-deficit"))
    body["prefetch"] = {"patient": patient(), "conditions": None, "devices": None,
                        "observations": {"resourceType": "OperationOutcome", "issue": []}}
    body["fhirServer"] = ehr.base
    body["fhirAuthorization"] = {"access_token": TOKEN, "token_type": "Bearer", "expires_in": 300, "scope": "x",
                                 "subject": "spinemets"}
    card = client.post(f"/cds-services/{SERVICE}", json=body, headers=signed()).json()["cards"][0]
    assert ehr.requests == []  # nothing left out: nothing fetched
    assert "the patient's eGFR, Karnofsky and pregnancy status results: the EHR could not prefetch it" in card["detail"]
    # no conditions is not "no cancer": the cancer history is still asked for
    assert "no rating yet" in card["summary"] and "cancer history" in card["detail"]


def test_a_rating_is_not_given_while_the_record_could_change_it(tmp_path, monkeypatch, ehr):
    client = app(tmp_path, monkeypatch, [ehr.base])
    body = hook(order("24972-2", "back-pain-lumbar", "motor-weakness"), prefetch=False)
    assert client.post(f"/cds-services/{SERVICE}", json=body, headers=signed()).status_code == 412
    body = hook(order("24972-2", "back-pain-lumbar", "motor-weakness"))
    del body["prefetch"]["conditions"]  # the age is known, the cancer history is not
    card = client.post(f"/cds-services/{SERVICE}", json=body, headers=signed()).json()["cards"][0]
    assert "no rating yet" in card["summary"] and "cancer history" in card["detail"]
    assert "not needed for this answer" not in card["detail"]


@pytest.mark.parametrize("value", ["..", ".", "p1,p2", "p1%26code=x", "p 1", "x" * 65])
def test_expand_takes_only_a_fhir_id(value):
    assert fetch.expand(prefetch_templates()["conditions"], {"patientId": value}) is None


@pytest.mark.parametrize("servers, words", [
    ("https://ehr.example.org/fhir", "must be a list"),
    (["http://ehr.example.org/fhir"], "plain http"),
    (["https://ehr.example.org/fhir?x=1"], "must be https URLs"),
])
def test_the_trust_file_refuses_unsafe_fhir_servers(tmp_path, servers, words):
    trust = tmp_path / "trust.yaml"
    trust.write_text(yaml.safe_dump({"clients": [{"iss": ISS, "jwks": {"keys": [KEY.as_dict(private=False)]},
                                                  "fhir_servers": servers}]}))
    with pytest.raises(ValueError, match=words):
        load_trust(trust)
