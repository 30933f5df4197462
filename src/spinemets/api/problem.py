"""RFC 9457 problem details for every error the REST API returns.

Each problem names the offending input: ``field`` (the first one) and
``fields`` (all of them), spelled as the core spells them (``sins.pain``,
``probability.tests[0].source``), so the CLI, the API and the web pages give
the same message for the same mistake.

=====================  ======  =============================================
error                  status  type
=====================  ======  =============================================
InvalidInputError      422     /problems/invalid-input
ContradictoryInput...  422     /problems/contradictory-input
InsufficientDataError  422     /problems/insufficient-data
malformed JSON         400     /problems/malformed-json
UnknownItemError       404     /problems/not-found
not signed in          401     /problems/unauthorized     (stored data)
not allowed            403     /problems/forbidden        (role, owner, CSRF)
clash with stored data 409     /problems/conflict
database unavailable   503     /problems/storage-unavailable
body over the limit    413     /problems/body-too-large
sign-in throttled      429     /problems/too-many-requests (Retry-After says when)
KnowledgeBaseError     500     /problems/knowledge-base-invalid
anything else          500     /problems/internal-error
=====================  ======  =============================================
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from spinemets.validation import clip, clip_message

MEDIA_TYPE = "application/problem+json"
log = logging.getLogger("spinemets.api")


@dataclass(frozen=True)
class ProblemType:
    slug: str
    title: str
    status: int
    explanation: str

    @property
    def uri(self) -> str:
        return f"/problems/{self.slug}"


PROBLEM_TYPES: dict[str, ProblemType] = {
    p.slug: p
    for p in (
        ProblemType("invalid-input", "Invalid input", 422,
                    "A value is not one of the allowed values, is out of range or has the wrong type. "
                    "`field` names it; `detail` lists the allowed values where there is a closed set."),
        ProblemType("contradictory-input", "Contradictory input", 422,
                    "Two or more inputs cannot all be true at once. `fields` names every one of them."),
        ProblemType("insufficient-data", "Insufficient data", 422,
                    "No result can be given until the inputs named in `fields` are supplied. (Most "
                    "instruments instead return a result with status `insufficient_data`.)"),
        ProblemType("malformed-json", "Malformed JSON", 400,
                    "The request body is not valid JSON (or not a JSON object)."),
        ProblemType("not-found", "Not found", 404,
                    "No such endpoint or knowledge-base item. `field` names the path parameter when there is one."),
        ProblemType("unauthorized", "Not signed in", 401,
                    "Stored data (assessments, users, the audit trail) needs a signed-in user: a session cookie "
                    "(sign in at /login or POST /api/v1/auth/login) or an API token (`Authorization: Bearer smt_...`). "
                    "The calculators, assess and ask need no sign-in."),
        ProblemType("forbidden", "Forbidden", 403,
                    "Signed in, but not allowed: the action needs another role (admin), belongs to the owner of the "
                    "assessment, or the CSRF token of a signed-in browser session is missing (`field` says which)."),
        ProblemType("conflict", "Conflict", 409,
                    "The request clashes with what is stored (a user name that exists, the last active admin). "
                    "`field` names the input."),
        ProblemType("storage-unavailable", "Storage unavailable", 503,
                    "The database of saved assessments could not be opened; the calculators still work. "
                    "See the server's log and SPINEMETS_DATABASE_URL."),
        ProblemType("method-not-allowed", "Method not allowed", 405, "The endpoint does not accept this HTTP method."),
        ProblemType("body-too-large", "Request body too large", 413,
                    "The request body is larger than the server's limit (`limit` gives it in bytes)."),
        ProblemType("too-many-requests", "Too many requests", 429,
                    "Too many failed sign-in attempts for this account or from this address; wait the number of "
                    "seconds in the Retry-After header before trying again."),
        ProblemType("unsupported-media-type", "Unsupported media type", 415,
                    "The API accepts `application/json` request bodies."),
        ProblemType("knowledge-base-invalid", "Knowledge base invalid", 500,
                    "The packaged knowledge base failed validation; no result can be given."),
        ProblemType("internal-error", "Internal error", 500,
                    "An unexpected error. It has been logged; the response holds no details."),
        ProblemType("http-error", "HTTP error", 400, "A protocol-level error."),
    )
}


class Problem(BaseModel):
    """An RFC 9457 problem document, with spinemets' extension members."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(description="URI reference of the problem type; GET it for an explanation")
    title: str
    status: int
    detail: str
    instance: str | None = Field(default=None, description="the request path")
    field: str | None = Field(default=None, description="the first offending input, dotted as in the core")
    fields: list[str] = Field(default_factory=list, description="every offending input")
    kb_version: str | None = None


def problem_body(
    slug: str,
    detail: str,
    *,
    status: int | None = None,
    instance: str | None = None,
    fields: Sequence[str] = (),
    **extra: Any,
) -> dict[str, Any]:
    """The problem document; every value it repeats from the request is cut short (see
    :func:`spinemets.validation.clip_message`), so a huge value or path never comes back whole."""
    p = PROBLEM_TYPES[slug]
    body: dict[str, Any] = {
        "type": p.uri,
        "title": p.title,
        "status": status or p.status,
        "detail": clip_message(detail),
    }
    if instance is not None:
        body["instance"] = clip(instance)
    fields = [clip(f) for f in fields]
    body["field"] = fields[0] if fields else None
    body["fields"] = fields
    body["kb_version"] = _kb_version()
    body.update(extra)
    return body


def problem_bytes(slug: str, detail: str, **kw: Any) -> tuple[int, bytes]:
    body = problem_body(slug, detail, **kw)
    return body["status"], json.dumps(body, ensure_ascii=False).encode()


def _kb_version() -> str | None:
    try:
        from spinemets.knowledge.loader import load_kb

        return load_kb().version
    except Exception:  # the knowledge base itself may be what failed
        return None


def problem_for_exception(exc: BaseException) -> tuple[str, str, list[str]] | None:
    """(slug, detail, fields) for the core's own errors; None for anything else."""
    from spinemets.errors import (
        ContradictoryInputError,
        InsufficientDataError,
        InvalidInputError,
        KnowledgeBaseError,
        UnknownItemError,
        UnknownSourceError,
    )

    from spinemets.api.body import ProblemError

    if isinstance(exc, ProblemError):
        return exc.slug, exc.detail, list(exc.fields)
    slug = getattr(exc, "slug", None)  # spinemets.store errors carry their problem type
    if isinstance(slug, str) and slug in PROBLEM_TYPES and hasattr(exc, "detail"):
        return slug, str(exc.detail), list(getattr(exc, "fields", []))
    if isinstance(exc, InvalidInputError):
        return "invalid-input", str(exc), [exc.field]
    if isinstance(exc, ContradictoryInputError):
        return "contradictory-input", str(exc), list(exc.fields)
    if isinstance(exc, InsufficientDataError):
        return "insufficient-data", str(exc), list(exc.fields)
    if isinstance(exc, UnknownItemError):
        return "not-found", str(exc), ["id"]
    if isinstance(exc, UnknownSourceError):
        return "not-found", str(exc), ["id"]
    if isinstance(exc, KnowledgeBaseError):
        return "knowledge-base-invalid", "the knowledge base failed validation; run `spinemets kb check`", []
    return None


def validation_problem(errors: Sequence[dict[str, Any]]) -> tuple[str, str, list[str]]:
    """FastAPI's RequestValidationError (query and path parameters; JSON bodies are validated by
    :mod:`spinemets.api.body`) as (slug, detail, fields)."""
    from spinemets.validation import field_path

    first = errors[0] if errors else {}
    loc = tuple(first.get("loc", ()))
    if first.get("type") == "json_invalid":
        return "malformed-json", "the request body is not valid JSON", ["body"]
    name = field_path(loc[1:]) if len(loc) > 1 else (str(loc[0]) if loc else "request")
    msg = str(first.get("msg", "invalid"))
    return "invalid-input", f"{name}: {msg[:1].lower() + msg[1:]}", [name]
