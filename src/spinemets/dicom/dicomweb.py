"""A series read from a DICOMweb server, and a report stored there (issue 14): QIDO-RS to find the series' instances,
WADO-RS to retrieve them, STOW-RS to store the SR (dicomweb-client).

A series is named by its DICOMweb URL, ``{base}/studies/{StudyInstanceUID}/series/{SeriesInstanceUID}``, as a
viewer or PACS shows it; the base is the server's DICOMweb root.  A bearer token can be given, one for every server
(``SPINEMETS_DICOMWEB_TOKEN``) or one per server (``SPINEMETS_DICOMWEB_TOKENS``, a JSON object from each DICOMweb
root to its token: a server not listed gets none, so no server sees another's token); tokens travel only over https
or on this machine.  Every failure is an error naming the server's answer: unreachable, refused, no such series.
"""

from __future__ import annotations

import os
import re
from typing import Any

from spinemets.dicom.series import SeriesError, Volume, from_datasets

TOKEN_ENV = "SPINEMETS_DICOMWEB_TOKEN"
TOKENS_ENV = "SPINEMETS_DICOMWEB_TOKENS"
SERIES_URL = re.compile(r"^(?P<base>https?://.+?)/studies/(?P<study>[0-9.]+)/series/(?P<series>[0-9.]+)/?\Z")
TIMEOUT = 30


def is_series_url(text: str) -> bool:
    return bool(SERIES_URL.match(text))


def client(base: str) -> Any:
    from dicomweb_client.api import DICOMwebClient

    from urllib.parse import urlsplit

    token, named = token_for(base)
    parts = urlsplit(base)
    if token and parts.scheme != "https" and parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise SeriesError(f"{base}: {named} gives a token for it and the server is not https: the token would cross "
                          "the network unencrypted")
    headers = {"Authorization": f"Bearer {token}"} if token else None
    web = DICOMwebClient(url=base, headers=headers, timeout=TIMEOUT)
    # one attempt: the client's default retries any failure five times with exponential waits (half a minute for a
    # server that is down); the error is said at once instead
    web.set_http_retry_params(retry=False)
    return web


def token_for(base: str) -> tuple[str | None, str]:
    """The bearer token for the DICOMweb root *base*, and the setting it came from.  Both settings at once, or a
    per-server setting that is not a JSON object of strings, is a configuration error (never a quiet fallback)."""
    import json

    single, per_server = os.environ.get(TOKEN_ENV), os.environ.get(TOKENS_ENV)
    if single and per_server:
        raise SeriesError(f"both {TOKEN_ENV} and {TOKENS_ENV} are set: set one (per server is safer)", "configuration")
    if not per_server:
        return single or None, TOKEN_ENV
    try:
        tokens = json.loads(per_server)
    except json.JSONDecodeError:
        tokens = None
    if not isinstance(tokens, dict) or not all(isinstance(k, str) and isinstance(v, str) and v for k, v in
                                               tokens.items()):
        raise SeriesError(f"{TOKENS_ENV} must be a JSON object from each DICOMweb root to its token", "configuration")
    wanted = base.rstrip("/")
    return next((v for k, v in tokens.items() if k.rstrip("/") == wanted), None), TOKENS_ENV


class UpstreamError(SeriesError):
    """The DICOMweb server failed or could not be reached (not the caller's input): 502 over REST."""


def _failed(base: str, exc: Exception) -> SeriesError:
    import requests

    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        code = exc.response.status_code
        if code in (401, 403):
            return SeriesError(f"{base}: the DICOMweb server refused access ({code}): give its token ({TOKENS_ENV} "
                               f"or {TOKEN_ENV})")
        if code == 404:
            return SeriesError(f"{base}: the DICOMweb server has no such series (404)")
        return UpstreamError(f"{base}: the DICOMweb server answered {code}")
    if isinstance(exc, requests.ConnectionError):
        return UpstreamError(f"{base}: the DICOMweb server cannot be reached")
    if isinstance(exc, requests.Timeout):
        return UpstreamError(f"{base}: the DICOMweb server did not answer in time")
    return UpstreamError(f"{base}: DICOMweb failed: {type(exc).__name__}: {exc}")


def load_series(url: str) -> Volume:
    """The volume of the series at *url* (``{base}/studies/{study}/series/{series}``)."""
    import requests

    m = SERIES_URL.match(url)
    if m is None:
        raise SeriesError(f"{url}: a DICOMweb series URL is {{base}}/studies/{{StudyInstanceUID}}/series/"
                          "{SeriesInstanceUID}")
    base, study, series = m.group("base"), m.group("study"), m.group("series")
    web = client(base)
    try:
        found = web.search_for_instances(study_instance_uid=study, series_instance_uid=series)
        if not found:
            raise SeriesError(f"{url}: the DICOMweb server has no instances in this series")
        datasets = web.retrieve_series(study_instance_uid=study, series_instance_uid=series)
    except SeriesError:
        raise
    except (requests.RequestException, ValueError) as exc:
        raise _failed(base, exc) from None
    return from_datasets(datasets, where=url, release=True)


def instance_uids(url: str) -> set[str]:
    """The SOP instance UIDs the server holds in the series at *url* now (QIDO-RS): whether a series read earlier is
    still the same."""
    import requests

    m = SERIES_URL.match(url)
    if m is None:
        raise SeriesError(f"{url}: a DICOMweb series URL is {{base}}/studies/{{StudyInstanceUID}}/series/"
                          "{SeriesInstanceUID}")
    base = m.group("base")
    try:
        found = client(base).search_for_instances(study_instance_uid=m.group("study"),
                                                  series_instance_uid=m.group("series"), fields=["00080018"],
                                                  get_remaining=True)  # every page, not the server's first
    except (requests.RequestException, ValueError) as exc:
        raise _failed(base, exc) from None
    return {str(item.get("00080018", {}).get("Value", [""])[0]) for item in found}


def store(base: str, datasets: list[Any]) -> None:
    """Store datasets (the SR) on the server with STOW-RS."""
    import requests

    try:
        client(base).store_instances(datasets=datasets)
    except (requests.RequestException, ValueError) as exc:
        raise _failed(base, exc) from None
