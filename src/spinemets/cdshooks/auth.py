"""Trusting the calling EHR: the JWT checks of CDS Hooks 2.0 ("Trusting CDS Clients").

Every call carries ``Authorization: Bearer <JWT>``.  The token is accepted only when every check passes, each failure
refused with its reason:

* the header has ``typ`` JWT, a ``kid``, and an ``alg`` from the allowed asymmetric algorithms (ES384 and RS384 by
  default: the specification recommends them and forbids ``none`` and symmetric algorithms);
* ``iss`` is an issuer configured locally, and ``kid`` names a key of that issuer's JWK Set, which is configured
  locally too: nothing is fetched from the network; a ``jku`` header must be one of the issuer's configured JWK Set
  URLs (it is never fetched);
* the signature verifies with that key;
* ``aud`` is the URL of the service endpoint called; ``exp`` is in the future and ``iat`` not in the future (with a
  small clock leeway); ``jti`` is present and not seen before from that issuer while the token is valid.

The trust file (``$SPINEMETS_CDS_TRUST``, YAML or JSON) lists the clients::

    clients:
      - iss: https://ehr.example.org
        jwks: {keys: [...public JWKs...]}          # or jwks_file: path/to/jwks.json
        jku: [https://ehr.example.org/jwks.json]    # optional: the JWK Set URLs it may name
        fhir_servers: [https://ehr.example.org/fhir]  # optional: the FHIR servers spinemets may query for it

An unsigned call (no Authorization header) is refused unless the development setting ``SPINEMETS_CDS_ALLOW_UNSIGNED``
is 1 (off by default; never in production): then it is let through and marked unsigned.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

TRUST_ENV = "SPINEMETS_CDS_TRUST"
UNSIGNED_ENV = "SPINEMETS_CDS_ALLOW_UNSIGNED"
ALGORITHMS = ("ES384", "RS384")
LEEWAY = 60  # seconds of clock difference tolerated on exp and iat
MAX_JTI = 100_000  # remembered token ids (a full store forgets the ones already expired first)


class CdsAuthError(Exception):
    """A call that is not trusted; ``reason`` says why, in words the caller's engineers can act on."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True)
class Client:
    iss: str
    keys: Any  # joserfc KeySet
    kids: frozenset[str]
    jku: frozenset[str] = frozenset()
    fhir_servers: tuple[str, ...] = ()


@dataclass
class Trust:
    """The locally configured clients, the allowed algorithms and the token ids seen."""

    clients: dict[str, Client]
    algorithms: tuple[str, ...] = ALGORITHMS
    allow_unsigned: bool = False
    _seen: dict[tuple[str, str], float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def remember(self, iss: str, jti: str, exp: float, now: float) -> bool:
        """Record a token id; False when it was seen before (a replay)."""
        with self._lock:
            if (iss, jti) in self._seen:
                return False
            if len(self._seen) >= MAX_JTI:
                for key in [k for k, until in self._seen.items() if until < now]:
                    del self._seen[key]
                if len(self._seen) >= MAX_JTI:
                    raise CdsAuthError("too many tokens in flight: try again later")
            self._seen[(iss, jti)] = exp + LEEWAY
            return True


def load_trust(path: str | Path | None = None, *, allow_unsigned: bool | None = None) -> Trust:
    """The trust configuration from *path* (default ``$SPINEMETS_CDS_TRUST``; none: no client is trusted)."""
    from joserfc.jwk import KeySet

    if allow_unsigned is None:
        allow_unsigned = os.environ.get(UNSIGNED_ENV, "") == "1"
    path = path or os.environ.get(TRUST_ENV)
    clients: dict[str, Client] = {}
    if path:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        for i, entry in enumerate(raw.get("clients") or []):
            iss = entry.get("iss")
            if not iss:
                raise ValueError(f"{path}: client {i + 1} has no iss")
            jwks = entry.get("jwks")
            if jwks is None and entry.get("jwks_file"):
                jwks = json.loads((Path(path).parent / entry["jwks_file"]).read_text(encoding="utf-8"))
            if not jwks or not jwks.get("keys"):
                raise ValueError(f"{path}: client {iss} has no JWK Set (jwks or jwks_file)")
            if any("d" in k for k in jwks["keys"]):
                raise ValueError(f"{path}: client {iss}: the JWK Set holds a private key; give the public keys only")
            kids = frozenset(str(k.get("kid")) for k in jwks["keys"] if k.get("kid"))
            clients[iss] = Client(iss=iss, keys=KeySet.import_key_set(jwks), kids=kids,
                                  jku=frozenset(entry.get("jku") or ()),
                                  fhir_servers=_servers(path, iss, entry.get("fhir_servers")))
        algorithms = tuple(raw.get("algorithms") or ALGORITHMS)
        forbidden = [a for a in algorithms if a == "none" or a.startswith("HS")]
        if forbidden:
            raise ValueError(f"{path}: {', '.join(forbidden)} may not be allowed (CDS Hooks: no 'none', no symmetric)")
    else:
        algorithms = ALGORITHMS
    return Trust(clients=clients, algorithms=algorithms, allow_unsigned=allow_unsigned)


def _servers(path: str | Path, iss: str, value: Any) -> tuple[str, ...]:
    """The FHIR servers allowed for a client: https URLs (plain http only on this computer's loopback address, for
    development: the access token must not cross a network unencrypted)."""
    from urllib.parse import urlsplit

    if value is None:
        return ()
    if not isinstance(value, list):
        raise ValueError(f"{path}: client {iss}: fhir_servers must be a list of URLs")
    for s in value:
        parts = urlsplit(s) if isinstance(s, str) else None
        if parts is None or not parts.hostname or parts.scheme not in ("https", "http") or parts.query \
                or parts.fragment:
            raise ValueError(f"{path}: client {iss}: fhir_servers must be https URLs, not {s!r}")
        if parts.scheme == "http" and parts.hostname not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError(f"{path}: client {iss}: {s} is plain http: the access token would cross the network "
                             "unencrypted; use https (plain http is allowed on the loopback address only)")
    return tuple(s.rstrip("/") for s in value)


def _segment(token: str, i: int) -> Mapping[str, Any]:
    import base64

    part = token.split(".")[i]
    data = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    value = json.loads(data)
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    return value


def verify(authorization: str | None, service_url: str, trust: Trust, now: float | None = None) -> dict[str, Any]:
    """The claims of a trusted call, or CdsAuthError with the reason (see the module docstring).  An unsigned call
    allowed by the development setting gives ``{"unsigned": True}``."""
    from joserfc import jwt
    from joserfc.errors import JoseError

    now = time.time() if now is None else now
    if not authorization:
        if trust.allow_unsigned:
            return {"unsigned": True}
        raise CdsAuthError("no Authorization header: a CDS client must send a signed JWT (Bearer)")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise CdsAuthError("the Authorization header must be 'Bearer <JWT>'")
    token = token.strip()
    if token.count(".") != 2:
        raise CdsAuthError("the bearer token is not a signed JWT (three dot-separated parts)")
    try:
        header, claims = _segment(token, 0), _segment(token, 1)
    except (ValueError, UnicodeDecodeError):
        raise CdsAuthError("the JWT's header or payload is not base64url-encoded JSON") from None
    alg = header.get("alg")
    if alg not in trust.algorithms:
        raise CdsAuthError(f"algorithm {alg!r} is not allowed (allowed: {', '.join(trust.algorithms)})")
    if header.get("typ") != "JWT":
        raise CdsAuthError("the JWT header must have typ JWT")
    kid = header.get("kid")
    if not kid:
        raise CdsAuthError("the JWT header has no kid")
    iss = claims.get("iss")
    client = trust.clients.get(iss) if isinstance(iss, str) else None
    if client is None:
        raise CdsAuthError(f"issuer {iss!r} is not a trusted CDS client")
    if kid not in client.kids:
        raise CdsAuthError(f"key {kid!r} is not in the JWK Set configured for {iss}")
    jku = header.get("jku")
    if jku is not None and jku not in client.jku:
        raise CdsAuthError(f"jku {jku!r} is not a JWK Set URL configured for {iss}")
    try:
        jwt.decode(token, client.keys, algorithms=[alg])
    except JoseError:
        raise CdsAuthError("the JWT's signature does not verify with the issuer's key") from None
    aud = claims.get("aud")
    auds = aud if isinstance(aud, list) else [aud]
    if service_url not in auds:
        raise CdsAuthError(f"aud must be the URL of the service called ({service_url}), not {aud!r}")
    exp, iat = claims.get("exp"), claims.get("iat")
    if not isinstance(exp, (int, float)) or isinstance(exp, bool):
        raise CdsAuthError("the JWT has no exp")
    if exp + LEEWAY < now:
        raise CdsAuthError("the JWT has expired")
    if not isinstance(iat, (int, float)) or isinstance(iat, bool):
        raise CdsAuthError("the JWT has no iat")
    if iat - LEEWAY > now:
        raise CdsAuthError("the JWT was issued in the future (iat): check the clocks")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti:
        raise CdsAuthError("the JWT has no jti")
    if not trust.remember(iss, jti, float(exp), now):
        raise CdsAuthError("the JWT's jti was used before (a replayed token)")
    return dict(claims)


def bearer(headers: Mapping[str, str]) -> str | None:
    return headers.get("authorization")


__all__: Sequence[str] = ("CdsAuthError", "Trust", "load_trust", "verify")
