"""Fetching what the EHR did not prefetch, from its FHIR server (CDS Hooks 2.0, "FHIR Resource Access").

A hook call may name the EHR's FHIR server (``fhirServer``) and an access token for it (``fhirAuthorization``).  For
each prefetch template the call did not fill (the key absent, or null: the EHR could not prefetch it), the template is
expanded with the call's context and the query is sent to that server with the token.

Nothing is fetched unless the site allowed it: the calling client's entry in the trust file must list the FHIR server
base URL (``fhir_servers``); a server not listed is not contacted (the card says the record is missing and why), so a
caller cannot make spinemets request an arbitrary address.  A token whose ``token_type`` is not Bearer is not used;
an unsigned call (the development setting) fetches nothing.  Each request has a timeout; a search's
further pages (``next`` links) are followed on the same server only, up to a limit.  Every failure is said in words
(the resource and the reason), and the resource is then treated as missing: never guessed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

TIMEOUT_ENV = "SPINEMETS_CDS_FETCH_TIMEOUT"  # seconds per request (default 3)
MAX_PAGES = 5
MAX_ENTRIES = 2000
FHIR_JSON = "application/fhir+json"
TOKEN = re.compile(r"\{\{\s*context\.(\w+)\s*\}\}")
FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")  # the FHIR id datatype


@dataclass
class Fetched:
    """The prefetch keys filled from the FHIR server, and what could not be fetched (in words)."""

    resources: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def _allowed(server: str, allowed: Sequence[str]) -> bool:
    base = server.rstrip("/")
    return any(base == a.rstrip("/") for a in allowed)


def expand(template: str, context: Mapping[str, Any]) -> str | None:
    """The query of a prefetch template with the call's context, or None when a token has no value."""
    missing: list[str] = []

    def value(m: re.Match[str]) -> str:
        v = context.get(m.group(1))
        if not isinstance(v, str) or not FHIR_ID.fullmatch(v) or v.strip(".") == "":
            missing.append(m.group(1))  # only a FHIR id: nothing that changes the query or the path
            return ""
        return v

    query = TOKEN.sub(value, template)
    return None if missing else query


def missing_keys(request: Mapping[str, Any], templates: Mapping[str, str]) -> list[str]:
    """The prefetch keys to fetch: those the call left out.  A key sent as null (the EHR has no data) or as an
    OperationOutcome (the EHR could not prefetch it) is not fetched again (CDS Hooks 2.0)."""
    prefetch = request.get("prefetch") or {}
    if not isinstance(prefetch, Mapping):
        return list(templates)
    return [key for key in templates if key not in prefetch]


def fetch_missing(request: Mapping[str, Any], templates: Mapping[str, str], allowed: Sequence[str],
                  labels: Mapping[str, str], *, timeout: float | None = None,
                  transport: Any = None) -> Fetched:
    """Fill the prefetch keys the call left empty from its FHIR server (see the module docstring).  *labels* names
    each key in words (for the problems); *transport* is an httpx transport (tests may pass one)."""
    import httpx

    out = Fetched()
    keys = missing_keys(request, templates)
    if not keys:
        return out
    server = request.get("fhirServer")
    if not isinstance(server, str) or not server:
        return out
    what = ", ".join(labels.get(k, k) for k in keys)
    if not server.startswith(("https://", "http://")):
        out.problems.append(f"{what}: the EHR's FHIR server address is not an http(s) URL: not fetched")
        return out
    if not _allowed(server, allowed):
        out.problems.append(f"{what}: the EHR's FHIR server {server} is not one this site allows spinemets to "
                            "query: not fetched")
        return out
    headers = {"Accept": FHIR_JSON}
    auth = request.get("fhirAuthorization")
    if not isinstance(auth, Mapping):
        # CDS Hooks: the service reads the EHR's FHIR server only with the access token it grants for this call
        out.problems.append(f"{what}: the call grants no access token (fhirAuthorization): not fetched")
        return out
    token = auth.get("access_token")
    if str(auth.get("token_type", "")).lower() != "bearer" or not isinstance(token, str) or not token \
            or not token.isascii() or any(c in token for c in " \r\n"):
        out.problems.append(f"{what}: the FHIR access token is not a usable Bearer token: not fetched")
        return out
    headers["Authorization"] = f"Bearer {token}"
    context = request.get("context") if isinstance(request.get("context"), Mapping) else {}
    if timeout is None:
        try:
            timeout = float(os.environ.get(TIMEOUT_ENV, "3"))
        except ValueError:
            timeout = 3.0
        if not 0 < timeout <= 30:
            timeout = 3.0
    import time

    base = server.rstrip("/") + "/"
    deadline = time.monotonic() + timeout  # one budget for the whole record, not per request
    with httpx.Client(timeout=timeout, headers=headers, transport=transport, follow_redirects=False) as client:
        for key in keys:
            label = labels.get(key, key)
            query = expand(templates[key], context)
            if query is None:
                out.problems.append(f"{label}: the call's context lacks what the query needs: not fetched")
                continue
            try:
                out.resources[key] = _get(client, base, query, deadline)
            except FetchError as exc:
                out.problems.append(f"{label}: {exc}")
    return out


class FetchError(Exception):
    pass


def _get(client: Any, base: str, query: str, deadline: float) -> dict[str, Any]:
    import time

    import httpx

    url = base + query
    entries: list[dict[str, Any]] = []
    for _ in range(MAX_PAGES):
        left = deadline - time.monotonic()
        if left <= 0:
            raise FetchError("the EHR's FHIR server did not answer in time")
        if len(entries) > MAX_ENTRIES:
            raise FetchError(f"the search returned more than {MAX_ENTRIES} resources: not read")
        try:
            response = client.get(url, timeout=left)
        except httpx.TimeoutException:
            raise FetchError("the EHR's FHIR server did not answer in time") from None
        except httpx.HTTPError as exc:
            raise FetchError(f"the EHR's FHIR server could not be reached ({type(exc).__name__})") from None
        if 300 <= response.status_code < 400:
            raise FetchError(f"the EHR's FHIR server redirected the request ({response.status_code}): not followed")
        if response.status_code in (401, 403):
            raise FetchError(f"the EHR's FHIR server refused the access token ({response.status_code})")
        if response.status_code >= 400:
            raise FetchError(f"the EHR's FHIR server answered {response.status_code}")
        try:
            body = response.json()
        except ValueError:
            raise FetchError("the EHR's FHIR server's answer is not JSON") from None
        if not isinstance(body, dict) or not body.get("resourceType"):
            raise FetchError("the EHR's FHIR server's answer is not a FHIR resource")
        if body["resourceType"] == "OperationOutcome":
            raise FetchError("the EHR's FHIR server answered with an error (OperationOutcome)")
        if body["resourceType"] != "Bundle":
            return body
        entries += [e for e in body.get("entry") or [] if isinstance(e, dict)]
        following = next((str(link.get("url")) for link in body.get("link") or []
                          if isinstance(link, dict) and link.get("relation") == "next" and link.get("url")), None)
        if following is None:
            return {"resourceType": "Bundle", "type": "searchset", "entry": entries}
        if not following.startswith(base):
            raise FetchError("the search's next page is on another server: not followed")
        url = following
    raise FetchError(f"the search has more than {MAX_PAGES} pages: not read (the record would be incomplete)")
