"""The CDS Hooks JWT checks (CDS Hooks 2.0, "Trusting CDS Clients"): the accept/reject matrix, every refusal with its
reason."""

from __future__ import annotations

import base64
import json
import time

import pytest
import yaml
from joserfc import jwt
from joserfc.jwk import ECKey, OctKey, RSAKey

from spinemets.cdshooks.auth import CdsAuthError, load_trust, verify

URL = "https://cds.example.org/cds-services/spinemets-order-select"
ISS = "https://ehr.example.org"
EC = ECKey.generate_key("P-384", parameters={"kid": "ec-1"})
RSA = RSAKey.generate_key(2048, parameters={"kid": "rsa-1"})
OTHER = ECKey.generate_key("P-384", parameters={"kid": "ec-1"})  # same kid, another key


@pytest.fixture
def trust(tmp_path):
    path = tmp_path / "trust.yaml"
    path.write_text(yaml.safe_dump({"clients": [{
        "iss": ISS, "jwks": {"keys": [EC.as_dict(private=False), RSA.as_dict(private=False)]},
        "jku": [f"{ISS}/jwks.json"]}]}))
    return load_trust(path, allow_unsigned=False)


def token(key=EC, alg="ES384", header=None, **claims):
    now = int(time.time())
    body = {"iss": ISS, "aud": URL, "exp": now + 300, "iat": now, "jti": f"j-{time.time_ns()}"}
    body.update(claims)
    body = {k: v for k, v in body.items() if v is not None}
    head = {"alg": alg, "typ": "JWT", "kid": key.kid, **(header or {})}
    head = {k: v for k, v in head.items() if v is not None}
    return "Bearer " + jwt.encode(head, body, key, algorithms=[alg])


def test_es384_and_rs384_are_accepted(trust):
    assert verify(token(), URL, trust)["iss"] == ISS
    assert verify(token(RSA, "RS384"), URL, trust)["iss"] == ISS
    assert verify(token(header={"jku": f"{ISS}/jwks.json"}), URL, trust)["aud"] == URL


def _without_typ():
    from joserfc import jws

    now = int(time.time())
    claims = {"iss": ISS, "aud": URL, "exp": now + 60, "iat": now, "jti": "no-typ"}
    return "Bearer " + jws.serialize_compact({"alg": "ES384", "kid": "ec-1"}, json.dumps(claims).encode(), EC,
                                             algorithms=["ES384"])


def _unsigned(alg):
    enc = lambda d: base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()  # noqa: E731
    now = int(time.time())
    return "Bearer " + enc({"alg": alg, "typ": "JWT", "kid": "ec-1"}) + "." + enc(
        {"iss": ISS, "aud": URL, "exp": now + 60, "iat": now, "jti": "x"}) + "."


@pytest.mark.parametrize("make, reason", [
    (lambda: _unsigned("none"), "algorithm 'none' is not allowed"),
    (lambda: token(OctKey.generate_key(256, parameters={"kid": "ec-1"}), "HS384"), "algorithm 'HS384' is not allowed"),
    (lambda: token(ECKey.generate_key("P-256", parameters={"kid": "ec-1"}), "ES256"), "algorithm 'ES256' is not allowed"),
    (lambda: _without_typ(), "typ JWT"),
    (lambda: token(header={"kid": None}), "has no kid"),
    (lambda: token(ECKey.generate_key("P-384", parameters={"kid": "ec-9"})), "key 'ec-9' is not in the JWK Set"),
    (lambda: token(OTHER), "signature does not verify"),
    (lambda: token(iss="https://evil.example.org"), "is not a trusted CDS client"),
    (lambda: token(iss=None), "is not a trusted CDS client"),
    (lambda: token(aud="https://cds.example.org/cds-services/other"), "aud must be the URL of the service called"),
    (lambda: token(exp=int(time.time()) - 3600), "has expired"),
    (lambda: token(exp=None), "has no exp"),
    (lambda: token(iat=int(time.time()) + 3600), "issued in the future"),
    (lambda: token(iat=None), "has no iat"),
    (lambda: token(jti=None), "has no jti"),
    (lambda: token(header={"jku": "https://attacker.example.org/jwks.json"}), "is not a JWK Set URL configured"),
    (lambda: "Basic dXNlcjpwYXNz", "must be 'Bearer <JWT>'"),
    (lambda: "Bearer not-a-jwt", "three dot-separated parts"),
    (lambda: "Bearer a.b.c", "not base64url-encoded JSON"),
])
def test_refusals_say_why(trust, make, reason):
    with pytest.raises(CdsAuthError) as exc:
        verify(make(), URL, trust)
    assert reason in exc.value.reason


def test_a_replayed_token_is_refused(trust):
    t = token()
    verify(t, URL, trust)
    with pytest.raises(CdsAuthError, match="used before"):
        verify(t, URL, trust)


def test_unsigned_calls_only_with_the_development_setting(trust, tmp_path, monkeypatch):
    with pytest.raises(CdsAuthError, match="no Authorization header"):
        verify(None, URL, trust)
    monkeypatch.setenv("SPINEMETS_CDS_ALLOW_UNSIGNED", "1")
    dev = load_trust(None)
    assert verify(None, URL, dev) == {"unsigned": True}
    assert not dev.clients  # and no client is trusted without the file


@pytest.mark.parametrize("config, words", [
    ({"clients": [{"jwks": {"keys": [EC.as_dict(private=False)]}}]}, "has no iss"),
    ({"clients": [{"iss": ISS}]}, "has no JWK Set"),
    ({"clients": [{"iss": ISS, "jwks": {"keys": [EC.as_dict(private=True)]}}]}, "holds a private key"),
    ({"clients": [], "algorithms": ["HS256"]}, "may not be allowed"),
])
def test_a_bad_trust_file_is_refused(tmp_path, config, words):
    path = tmp_path / "trust.yaml"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(ValueError, match=words):
        load_trust(path)
