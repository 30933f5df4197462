"""REST routes and pages of the store: sign-in, saved assessments, comparison, export, users, audit trail.

Installed by ``spinemets.api.app.create_app`` (``APP_EXTENSIONS``).  The database is opened and migrated at
start-up (unless SPINEMETS_AUTO_MIGRATE=0).  With the default SQLite location, a data folder that cannot be
created only disables the store (its routes answer 503); a configured SPINEMETS_DATABASE_URL that cannot be
opened stops the server with a clear message.

REST (JSON; errors are problem+json naming the field)::

    POST   /api/v1/auth/login                    {username, password} -> session cookie + csrf_token
    POST   /api/v1/auth/logout
    GET    /api/v1/auth/me
    GET    /api/v1/auth/tokens        POST /api/v1/auth/tokens {name, days}      DELETE /api/v1/auth/tokens/{id}
    POST   /api/v1/assessments                   {case, patient_ref, note, shared, study_date} -> 201
    GET    /api/v1/assessments?patient_ref=&date_from=&date_to=&scope=&limit=&offset=
    GET    /api/v1/assessments/{id}              PATCH /api/v1/assessments/{id} {note, shared, patient_ref, study_date}
    GET    /api/v1/assessments/{id}/export       (attachment)
    GET    /api/v1/assessments/{id}/compare?with=ID      GET /api/v1/assessments/{id}/compare.svg?with=ID
    GET    /api/v1/admin/users        POST /api/v1/admin/users       PATCH /api/v1/admin/users/{username}
    GET    /api/v1/admin/audit?limit=&before=    GET /api/v1/admin/audit/verify?expect=SEQ:HASH

Pages: /login, /logout, /assessments (list, search, save), /assessments/{id}, /assessments/{id}/compare,
/account (API tokens), /admin (users, audit trail), /setup (the first admin; see below).

Requests authenticated by the session cookie must carry the session's CSRF token on every unsafe method
(``X-CSRF-Token`` header, or the ``csrf_token`` form field on pages); bearer-token requests need none.

Sign-in is throttled per account and per client address (:class:`spinemets.store.auth.LoginThrottle`,
in memory, per process): over the limit, the API answers 429 problem+json and the page a message, both
with ``Retry-After``.

First admin: when the server starts with no admin (and no SPINEMETS_ADMIN_PASSWORD), it prints a one-time
link ``http://127.0.0.1:PORT/setup?token=...``.  The page answers only a client on the server's own machine
(127.0.0.1 or ::1, and no proxy headers), only with that link's token and only while there is no admin;
its form carries a CSRF token (double-submit cookie).  Creating the admin ends every set-up link.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Body, FastAPI, Form, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from jinja2 import ChoiceLoader, FileSystemLoader
from markupsafe import Markup
from pydantic import BaseModel, ConfigDict, Field

from spinemets.store import audit, auth
from spinemets.store import repository as repo
from spinemets.errors import InvalidInputError, SpinemetsError
from spinemets.store.models import User
from spinemets.store.repository import Actor, Forbidden, NotFound, StoreError, Throttled, Unauthenticated
from spinemets.wording import field_name

log = logging.getLogger("spinemets.store")
API = "/api/v1"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
HERE = Path(__file__).parent
_BODY_SPECS: dict[Any, tuple[type, str]] = {}
SETUP_CSRF_COOKIE = "spinemets_setup_csrf"
PROXY_HEADERS = ("forwarded", "x-forwarded-for", "x-forwarded-host", "x-real-ip")
NO_STORE = {"cache-control": "no-store"}


def _register_problem_type() -> None:
    """The 429 problem type of throttled sign-ins (added to api/problem.py's table unless it is there)."""
    from spinemets.api.problem import PROBLEM_TYPES, ProblemType

    PROBLEM_TYPES.setdefault("too-many-requests", ProblemType(
        "too-many-requests", "Too many requests", 429,
        "Too many failed sign-ins for the account or from the client address (or too many at once). "
        "Wait the number of seconds in the `Retry-After` header before trying again."))


# --- start-up ---------------------------------------------------------------------------------------------------


def open_store() -> Any:
    """Open (and migrate) the configured database; None when the default location is unusable."""
    from spinemets.store.db import Store, StoreConfigError, is_default_url, safe_url

    default = is_default_url()
    try:
        store = Store()
        if os.environ.get("SPINEMETS_AUTO_MIGRATE", "1").strip() not in ("0", "false", "no"):
            store.upgrade()
        first_admin(store)
    except Exception as exc:
        if default:
            log.error("store: saved assessments are unavailable (default SQLite database under %s): %s",
                      os.environ.get("SPINEMETS_DATA_DIR") or "./data", _reason(exc))
            return None
        if isinstance(exc, StoreConfigError):
            raise
        raise StoreConfigError(f"SPINEMETS_DATABASE_URL: cannot open {_url_for_log()}: {_reason(exc)}") from None
    log.info("store: %s database %s", store.backend, safe_url(store.url))
    return store


def _url_for_log() -> str:
    from spinemets.store.db import database_url, safe_url

    try:
        return safe_url(database_url())
    except Exception:
        return "(unparsable URL)"


def _reason(exc: BaseException) -> str:
    """A one-line reason without bound parameters (engines hide them; this trims the SQL too)."""
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]


def first_admin(store: Any) -> str | None:
    """At start-up: failed sign-ins of ended windows go to the audit trail; with no admin yet,
    SPINEMETS_ADMIN_PASSWORD (and SPINEMETS_ADMIN_USER, default 'admin') create one, and otherwise a one-time
    set-up link is printed.  Returns that link (None when there is an admin)."""
    password = os.environ.get("SPINEMETS_ADMIN_PASSWORD")
    with store.session(write=True) as s:
        repo.flush_failed_logins(s)
        if repo.has_admin(s):
            return None
        if password:
            name = os.environ.get("SPINEMETS_ADMIN_USER") or "admin"
            try:
                with s.begin_nested():
                    repo.create_user(s, repo.system("startup"), {"username": name, "password": password, "role": "admin"})
            except SpinemetsError as exc:  # a bad name or a weak password: say so, keep the store running
                log.error("store: SPINEMETS_ADMIN_PASSWORD / SPINEMETS_ADMIN_USER: no admin created: %s", exc)
            else:
                log.warning("store: created the first admin %r from SPINEMETS_ADMIN_PASSWORD", name)
                return None
        if auth.setup_link_printed_since(s, store.backend, _serve_started()):
            return None  # another worker of this server start printed the link
        link = setup_url(auth.create_setup_token(s))
    print(f"spinemets: there is no admin yet. Create the first one from this computer, once, at\n  {link}\n"
          f"(valid for {auth.SETUP_HOURS} hours and only while there is no admin; or run "
          "`spinemets user add --admin NAME`)", flush=True)
    return link


def _serve_started() -> Any:
    """When `spinemets serve` began ($SPINEMETS_SERVE_STARTED, set for its workers), or None."""
    import datetime as dt

    raw = os.environ.get("SPINEMETS_SERVE_STARTED", "").strip()
    try:
        started = dt.datetime.fromisoformat(raw) if raw else None
    except ValueError:
        return None
    return started if started is None or started.tzinfo else started.replace(tzinfo=dt.timezone.utc)


def setup_url(secret: str) -> str:
    """The set-up link on the loopback address and the server's port: from $SPINEMETS_SERVE_URL when
    `spinemets serve` sets it, else from its --port argument, else 8000."""
    import sys
    from urllib.parse import urlsplit

    port: int | None = None
    served = (os.environ.get("SPINEMETS_SERVE_URL") or "").strip()
    if served:
        try:
            port = urlsplit(served).port
        except ValueError:
            port = None
    if port is None and "serve" in sys.argv:
        args = sys.argv[sys.argv.index("serve") + 1:]
        for i, arg in enumerate(args):
            if arg.startswith("--port="):
                value = arg.partition("=")[2]
            elif arg == "--port" and i + 1 < len(args):
                value = args[i + 1]
            else:
                continue
            if value.isdigit():
                port = int(value)
    return f"http://127.0.0.1:{port or 8000}/setup?token={secret}"


class _RedactQuery(logging.Filter):
    """Access-log lines lose their query string (it may hold a patient reference or a question)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str) and "?" in args[2]:
            record.args = (*args[:2], args[2].split("?", 1)[0] + "?[redacted]", *args[3:])
        return True


def _redact_access_log() -> None:
    logger = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, _RedactQuery) for f in logger.filters):
        logger.addFilter(_RedactQuery())


# --- errors, identity, transactions -----------------------------------------------------------------------------


def _problem(request: Request, exc: StoreError) -> Response:
    from spinemets.api.problem import MEDIA_TYPE, problem_body

    body = problem_body(exc.slug, exc.detail, instance=request.url.path, fields=exc.fields)
    headers = {"www-authenticate": 'Bearer realm="spinemets"'} if exc.status == 401 else {}
    if isinstance(exc, Throttled):
        headers["retry-after"] = str(exc.retry_after)
        body["retry_after"] = exc.retry_after
    return JSONResponse(body, status_code=exc.status, media_type=MEDIA_TYPE, headers=headers or None)


class Unavailable(StoreError):
    slug, status = "storage-unavailable", 503


def _store(request: Request) -> Any:
    store = getattr(request.app.state, "store", None)
    if store is None:
        raise Unavailable("saved assessments are unavailable: the database could not be opened (see the server log)")
    return store


def _identity(request: Request, s: Any) -> tuple[Any, Any, str]:
    """(user, web session, via) from the bearer token or else the session cookie."""
    header = request.headers.get("authorization")
    if header:
        return auth.token_user(s, auth.bearer(header)), None, "api"
    found = auth.session_user(s, request.cookies.get(auth.SESSION_COOKIE))
    via = "api" if request.url.path.startswith("/api/") else "web"
    if found is None:
        return None, None, via
    return found[0], found[1], via


def _run(request: Request, fn: Callable[[Any, Actor | None], Any], *, form_csrf: str | None = None,
         check_csrf: bool = True) -> Any:
    """Run *fn(session, actor)* in one write transaction (reads are audited too); denials are audited."""
    store = _store(request)
    actor: Actor | None = None
    try:
        with store.session(write=True) as s:
            user, sess, via = _identity(request, s)
            actor = Actor.of(user, via) if user is not None else None
            if check_csrf and sess is not None and request.method not in SAFE_METHODS:
                given = form_csrf if form_csrf is not None else request.headers.get(auth.CSRF_HEADER)
                if not auth.csrf_ok(sess.csrf_token, given):
                    raise Forbidden("csrf_token: missing or wrong; send the session's CSRF token (X-CSRF-Token "
                                    "header, from /api/v1/auth/login or /api/v1/auth/me)", ["csrf_token"])
            return fn(s, actor)
    except (Forbidden, NotFound) as exc:
        if actor is not None:
            _audit_denied(store, request, actor, exc)
        raise


def _audit_denied(store: Any, request: Request, actor: Actor, exc: StoreError) -> None:
    try:
        with store.session(write=True) as s:
            audit.append(s, actor_id=actor.id, actor=actor.username, action="denied", object_type="request",
                         object_id=None, detail={"via": actor.via, "method": request.method,
                                                 "path": request.url.path[:200], "status": exc.status})
    except Exception:  # pragma: no cover - never mask the original answer
        log.exception("store: could not audit a denied request")


class StoreRoute(APIRoute):
    """JSON bodies are validated by FastAPI for the OpenAPI document, but an invalid body is reported the
    core's way: ``assessment.patient_ref: use a pseudonymous reference ...``."""

    def get_route_handler(self) -> Callable[..., Any]:
        original = super().get_route_handler()
        spec = _BODY_SPECS.get(self.endpoint)

        async def handler(request: Request) -> Response:
            if spec is not None:
                from spinemets.api.body import _check_media_type

                _check_media_type(request, spec[1])
            try:
                return await original(request)
            except RequestValidationError as exc:
                errors = exc.errors()
                if spec is not None and errors and errors[0].get("loc", ("",))[0] == "body" \
                        and errors[0].get("type") != "json_invalid":
                    try:
                        data = json.loads(await request.body())
                    except ValueError:
                        raise exc from None
                    repo.parse(spec[0], data, spec[1])  # raises InvalidInputError naming the field
                    repo.check_storable(data, spec[1])  # e.g. a lone surrogate: named, not a 500
                raise

        return handler


def _body(model: type, prefix: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        _BODY_SPECS[fn] = (model, prefix)
        return fn

    return deco


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(data, status_code=status, headers=headers)


# --- REST ---------------------------------------------------------------------------------------------------------


def _login_cookie(request: Request, response: Response, secret: str) -> None:
    response.set_cookie(auth.SESSION_COOKIE, secret, max_age=int(auth.session_hours() * 3600), path="/",
                        httponly=True, samesite="lax", secure=auth.secure_cookie(request.url.scheme, request.url.hostname))


def client_address(request: Request) -> str:
    return request.client.host if request.client is not None and request.client.host else "-"


def _do_login(request: Request, username: str, password: str, via: str) -> tuple[Any, str, str] | None:
    """(user, session secret, CSRF token), or None; raises Throttled (429) over the sign-in limits."""
    store = _store(request)

    def start(s: Any, user: User) -> tuple[Any, str, str]:
        secret, row = auth.create_session(s, user)
        return repo.user_dict(user), secret, row.csrf_token

    done = repo.sign_in(store, username, password, via, address=client_address(request),
                        throttle=getattr(request.app.state, "login_throttle", None), then=start)
    return None if done is None else done[1]


def _api_router(responses: dict[int | str, dict[str, Any]]) -> APIRouter:
    from spinemets.assess import CaseDocument  # noqa: F401  (schema of SaveInput)

    r = APIRouter(prefix=API, route_class=StoreRoute, responses=responses)
    auth_tags, a_tags, admin_tags = ["auth"], ["assessments"], ["admin"]

    @r.post("/auth/login", tags=auth_tags, summary="Sign in: sets the session cookie, returns the CSRF token")
    @_body(LoginInput, "login")
    def api_login(request: Request, body: LoginInput = Body(...)) -> Response:
        done = _do_login(request, body.username, body.password, "api")
        if done is None:
            raise Unauthenticated("wrong user name or password (or the account is disabled)", ["password"])
        user, secret, csrf = done
        resp = _json({"user": user, "csrf_token": csrf})
        _login_cookie(request, resp, secret)
        return resp

    @r.post("/auth/logout", tags=auth_tags, summary="Sign out (ends the session)", status_code=204)
    def api_logout(request: Request) -> Response:
        def fn(s: Any, actor: Actor | None) -> None:
            repo._require_user(actor)
            auth.end_session(s, request.cookies.get(auth.SESSION_COOKIE))
            if actor is not None:
                repo._log(s, actor, "logout", "user", str(actor.id))

        _run(request, fn)
        resp = Response(status_code=204)
        resp.delete_cookie(auth.SESSION_COOKIE, path="/")
        return resp

    @r.get("/auth/me", tags=auth_tags, summary="Who is signed in (and the session's CSRF token)")
    def api_me(request: Request) -> Response:
        store = _store(request)
        with store.session() as s:
            user, sess, via = _identity(request, s)
            if user is None:
                raise Unauthenticated("sign in, or send an API token (Authorization: Bearer ...)")
            return _json({"user": repo.user_dict(user), "auth": "session" if sess is not None else "token",
                          "csrf_token": sess.csrf_token if sess is not None else None})

    @r.get("/auth/tokens", tags=auth_tags, summary="Your API tokens (never the secrets)")
    def api_tokens(request: Request) -> Response:
        return _json({"items": _run(request, lambda s, a: [repo.token_dict(t) for t in repo.list_tokens(s, a)])})

    @r.post("/auth/tokens", tags=auth_tags, status_code=201, summary="Create an API token (its secret is shown once)")
    @_body(repo.TokenInput, "token")
    def api_token_create(request: Request, body: repo.TokenInput = Body(...)) -> Response:
        def fn(s: Any, actor: Actor | None) -> dict[str, Any]:
            actor = repo._require_clinical(actor)
            owner = s.get(User, actor.id)
            secret, row = repo.create_token(s, actor, owner, body)
            return {**repo.token_dict(row), "token": secret}

        return _json(_run(request, fn), 201, NO_STORE)  # the secret is shown once: never cached

    @r.delete("/auth/tokens/{token_id}", tags=auth_tags, status_code=204, summary="Revoke an API token")
    def api_token_revoke(request: Request, token_id: int) -> Response:
        _run(request, lambda s, a: repo.revoke_token(s, a, token_id))
        return Response(status_code=204)

    @r.post("/assessments", tags=a_tags, status_code=201,
            summary="Assess a case and save it (case, every result, knowledge-base version, patient reference, note)")
    @_body(repo.SaveInput, "assessment")
    def api_save(request: Request, body: repo.SaveInput = Body(...)) -> Response:
        def fn(s: Any, actor: Actor | None) -> dict[str, Any]:
            a = repo.save(s, actor, body)
            return repo.full_dict(a, actor.username if actor else "")

        data = _run(request, fn)
        return _json(data, 201, {"location": f"{API}/assessments/{data['id']}"})

    @r.get("/assessments", tags=a_tags, summary="List and search the assessments you can read")
    def api_list(request: Request, patient_ref: str | None = Query(None, description="exact, or a prefix ending in *"),
                 date_from: str | None = Query(None, description="study date from (YYYY-MM-DD)"),
                 date_to: str | None = Query(None, description="study date to (YYYY-MM-DD)"),
                 scope: str = Query("visible", description="visible (own and shared), mine or shared"),
                 limit: str = Query("50", description="1-200"), offset: str = Query("0")) -> Response:
        raw = {"patient_ref": patient_ref, "date_from": date_from, "date_to": date_to, "scope": scope,
               "limit": limit, "offset": offset}
        query = repo.parse(repo.ListQuery, {k: v for k, v in raw.items() if v not in (None, "")}, "")

        def fn(s: Any, actor: Actor | None) -> dict[str, Any]:
            items, total = repo.listing(s, actor, query)
            return {"count": total, "limit": query.limit, "offset": query.offset,
                    "items": [repo.summary_dict(a, o) for a, o in items]}

        return _json(_run(request, fn))

    @r.get("/assessments/{assessment_id}", tags=a_tags, summary="One assessment: case, every result, note")
    def api_get(request: Request, assessment_id: str) -> Response:
        return _json(_run(request, lambda s, a: repo.full_dict(*repo.get(s, a, assessment_id))))

    @r.patch("/assessments/{assessment_id}", tags=a_tags, summary="Change the note, sharing, reference or date (owner)")
    @_body(repo.UpdateInput, "update")
    def api_update(request: Request, assessment_id: str, body: repo.UpdateInput = Body(...)) -> Response:
        return _json(_run(request, lambda s, a: repo.full_dict(*repo.update(s, a, assessment_id, body))))

    @r.get("/assessments/{assessment_id}/export", tags=a_tags, summary="Export as a JSON document (attachment)")
    def api_export(request: Request, assessment_id: str) -> Response:
        doc = _run(request, lambda s, a: repo.export(s, a, assessment_id))
        return Response(json.dumps(doc, indent=2, ensure_ascii=False), media_type="application/json",
                        headers={"content-disposition": f'attachment; filename="assessment-{assessment_id}.json"'})

    @r.get("/assessments/{assessment_id}/compare", tags=a_tags,
           summary="Compare with an earlier assessment of the same patient (default: the latest before it)")
    def api_compare(request: Request, assessment_id: str, with_: str | None = Query(None, alias="with")) -> Response:
        return _json(_run(request, lambda s, a: repo.compare(s, a, assessment_id, with_ or None)))

    @r.get("/assessments/{assessment_id}/compare.svg", tags=a_tags, summary="The comparison as an SVG plot",
           response_class=Response)
    def api_compare_svg(request: Request, assessment_id: str, with_: str | None = Query(None, alias="with")) -> Response:
        from spinemets.store.plot import comparison_svg

        cmp = _run(request, lambda s, a: repo.compare(s, a, assessment_id, with_ or None))
        return Response(comparison_svg(cmp), media_type="image/svg+xml")

    @r.get("/admin/users", tags=admin_tags, summary="Users (admin)")
    def api_users(request: Request) -> Response:
        return _json({"items": _run(request, lambda s, a: [repo.user_dict(u) for u in repo.list_users(s, a)])})

    @r.post("/admin/users", tags=admin_tags, status_code=201, summary="Add a user (admin)")
    @_body(repo.UserInput, "user")
    def api_user_add(request: Request, body: repo.UserInput = Body(...)) -> Response:
        return _json(_run(request, lambda s, a: repo.user_dict(repo.create_user(s, a, body))), 201)

    @r.patch("/admin/users/{username}", tags=admin_tags, summary="Disable, enable, change role or password (admin)")
    @_body(repo.UserUpdate, "user")
    def api_user_update(request: Request, username: str, body: repo.UserUpdate = Body(...)) -> Response:
        return _json(_run(request, lambda s, a: repo.user_dict(repo.update_user(s, a, username, body))))

    @r.get("/admin/audit", tags=admin_tags, summary="The audit trail, newest first (admin)")
    def api_audit(request: Request, limit: int = Query(100, ge=1, le=1000), before: int | None = Query(None, ge=1),
                  actor: str | None = Query(None, max_length=64), action: str | None = Query(None, max_length=32),
                  object_id: str | None = Query(None, max_length=64)) -> Response:
        def fn(s: Any, a: Actor | None) -> dict[str, Any]:
            items, total = repo.audit_list(s, a, limit=limit, before=before, actor_name=actor, action=action,
                                           object_id=object_id)
            return {"count": total, "items": items}

        return _json(_run(request, fn))

    @r.get("/admin/audit/verify", tags=admin_tags, summary="Verify the audit hash chain (admin)")
    def api_audit_verify(request: Request, expect: str | None = Query(None, description="SEQ:HASH recorded earlier")) -> Response:
        exp = parse_expect(expect) if expect else None
        return _json(_run(request, lambda s, a: repo.audit_verify(s, a, exp).to_dict()))

    return r


class LoginInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(max_length=64)
    password: str = Field(max_length=auth.MAX_PASSWORD)


def parse_expect(text: str) -> tuple[int, str]:
    seq, sep, h = text.partition(":")
    if not sep or not seq.strip().isdigit() or len(h.strip()) != 64:
        raise InvalidInputError("expect", f"{text!r}: use SEQ:HASH as printed by `spinemets audit verify`")
    return int(seq), h.strip().lower()


# --- pages --------------------------------------------------------------------------------------------------------


def _env() -> Any:
    from spinemets.web import routes

    env = getattr(_env, "cached", None)
    if env is None:
        env = routes.env.overlay(loader=ChoiceLoader([FileSystemLoader(str(HERE / "templates")), routes.env.loader]))
        env.globals.update(comparison_svg=lambda cmp, uid="cmp": Markup(_svg(cmp, uid)))
        _env.cached = env  # type: ignore[attr-defined]
    return env


def _svg(cmp: dict[str, Any], uid: str) -> str:
    from spinemets.store.plot import comparison_svg

    return comparison_svg(cmp, uid)


def _page(request: Request, template: str, active: str, status: int = 200, **kw: Any) -> Response:
    from spinemets.web import routes

    ctx = routes._ctx(request, active, **kw)
    return HTMLResponse(_env().get_template(template).render(ctx), status_code=status)


def _who(request: Request) -> dict[str, Any] | None:
    """The signed-in user of a page request (cached per request): username, role, csrf token."""
    if hasattr(request.state, "store_who"):
        return request.state.store_who  # type: ignore[no-any-return]
    who = None
    store = getattr(request.app.state, "store", None)
    if store is not None and (request.cookies.get(auth.SESSION_COOKIE) or request.headers.get("authorization")):
        try:
            with store.session() as s:
                user, sess, _ = _identity(request, s)
                if user is not None:
                    who = {"username": user.username, "role": user.role,
                           "csrf": sess.csrf_token if sess is not None else ""}
        except Exception:
            log.exception("store: could not read the session")
    request.state.store_who = who
    return who


def _page_context(request: Request, ctx: dict[str, Any]) -> None:
    """Adds the store's links to every page's navigation, and the save form under an assessment result."""
    who = _who(request)
    active = ctx.get("active")
    items = [{"href": "/assessments", "label": "Assessments", "active": active == "assessments"}]
    if who is None:
        items.append({"href": "/login", "label": "Sign in", "active": active == "login"})
    else:
        if who["role"] == "admin":
            items.append({"href": "/admin", "label": "Admin", "active": active == "admin"})
        items.append({"href": "/account", "label": f"Account ({who['username']})", "active": active == "account"})
        items.append({"href": "/logout", "label": "Sign out", "active": active == "logout"})
    ctx["nav"] = list(ctx.get("nav", [])) + items
    ctx["store_user"] = who
    if request.url.path == "/assess" and request.method == "POST" and ctx.get("result") is not None:
        html = _env().get_template("save_form.html").render(
            who=who, case_text=ctx.get("case_text", ""), values={}, error=None)
        ctx["store_save"] = Markup(html)


def _login_page(request: Request, status: int = 401, error: str | None = None, next_url: str | None = None) -> Response:
    token = request.cookies.get(auth.LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(32)
    target = next_url if next_url is not None else request.url.path + (f"?{request.url.query}" if request.url.query else "")
    resp = _page(request, "login.html", "login", status, login_csrf=token, next=_safe_next(target), login_error=error,
                 insecure=not auth.secure_cookie(request.url.scheme, request.url.hostname)
                 and not auth.is_loopback(request.url.hostname))
    resp.set_cookie(auth.LOGIN_CSRF_COOKIE, token, max_age=3600, path="/", httponly=True, samesite="strict",
                    secure=auth.secure_cookie(request.url.scheme, request.url.hostname))
    return resp


def _safe_next(target: str | None) -> str:
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target or target.startswith("/login"):
        return "/assessments"
    return target


def _form_error(exc: Exception, prefix: str = "") -> dict[str, Any]:
    from spinemets.api.problem import PROBLEM_TYPES, problem_for_exception

    slug, detail, fields = problem_for_exception(exc) or ("invalid-input", str(exc), [])  # type: ignore[arg-type]
    inputs = [f.split(".")[-1] if f.startswith(prefix) else f for f in fields]
    return {"title": PROBLEM_TYPES[slug].title, "detail": detail, "fields": fields,
            "labels": [field_name(f) for f in fields], "inputs": inputs,
            "status": PROBLEM_TYPES[slug].status}


def _guard(request: Request, fn: Callable[[], Response]) -> Response:
    """Pages: 401 shows the sign-in form; 403/404/503 the error page."""
    from spinemets.web.routes import render_error

    try:
        return fn()
    except Unauthenticated:
        return _login_page(request)
    except StoreError as exc:
        title = {403: "Forbidden", 404: "Not found", 503: "Storage unavailable"}.get(exc.status, "Error")
        return render_error(request, exc.status, title, exc.detail)


def _pages_router() -> APIRouter:
    r = APIRouter(include_in_schema=False)

    @r.get("/login", response_class=HTMLResponse)
    def login_form(request: Request, next: str = "/assessments") -> Response:
        return _login_page(request, 200, next_url=next)

    @r.post("/login", response_class=HTMLResponse)
    def login_submit(request: Request, username: str = Form(""), password: str = Form(""),
                     csrf_token: str = Form(""), next: str = Form("/assessments")) -> Response:
        target = _safe_next(next)
        if not auth.csrf_ok(request.cookies.get(auth.LOGIN_CSRF_COOKIE), csrf_token):
            return _login_page(request, 403, "The sign-in form had expired; please try again.", target)
        if not username or not password or len(username) > 64 or len(password) > auth.MAX_PASSWORD:
            return _login_page(request, 422, "Enter your user name and password.", target)
        try:
            done = _do_login(request, username, password, "web")
        except Unavailable as exc:
            from spinemets.web.routes import render_error

            return render_error(request, 503, "Storage unavailable", exc.detail)
        except Throttled as exc:
            resp = _login_page(request, 429, exc.detail[0].upper() + exc.detail[1:] + ".", target)
            resp.headers["retry-after"] = str(exc.retry_after)
            return resp
        if done is None:
            return _login_page(request, 401, "Wrong user name or password (or the account is disabled).", target)
        _, secret, _ = done
        resp = RedirectResponse(target, status_code=303)
        _login_cookie(request, resp, secret)
        resp.delete_cookie(auth.LOGIN_CSRF_COOKIE, path="/")
        return resp

    @r.get("/logout", response_class=HTMLResponse)
    def logout_form(request: Request) -> Response:
        if _who(request) is None:
            return RedirectResponse("/", status_code=303)
        return _page(request, "logout.html", "logout")

    @r.post("/logout", response_class=HTMLResponse)
    def logout_submit(request: Request, csrf_token: str = Form("")) -> Response:
        def fn(s: Any, actor: Actor | None) -> None:
            auth.end_session(s, request.cookies.get(auth.SESSION_COOKIE))
            if actor is not None:
                repo._log(s, actor, "logout", "user", str(actor.id))

        def go() -> Response:
            _run(request, fn, form_csrf=csrf_token)
            resp = RedirectResponse("/", status_code=303)
            resp.delete_cookie(auth.SESSION_COOKIE, path="/")
            return resp

        return _guard(request, go)

    @r.get("/assessments", response_class=HTMLResponse)
    def assessments_page(request: Request) -> Response:
        params = request.query_params
        values = {k: (params.get(k) or "").strip() for k in ("patient_ref", "date_from", "date_to", "scope", "offset")}

        def go() -> Response:
            if _who(request) is None:
                raise Unauthenticated("sign in")
            error = None
            items: list[Any] = []
            total = 0
            query = None
            try:
                query = repo.parse(repo.ListQuery, {k: v for k, v in values.items() if v}, "")
            except InvalidInputError as exc:
                error = _form_error(exc)
            if query is not None:
                try:
                    rows, total = _run(request, lambda s, a: repo.listing(s, a, query))
                    items = [repo.summary_dict(a, o) for a, o in rows]
                except InvalidInputError as exc:
                    error = _form_error(exc)
            return _page(request, "assessments.html", "assessments", 422 if error else 200, values=values,
                         items=items, total=total, query=query, error=error)

        return _guard(request, go)

    @r.post("/assessments", response_class=HTMLResponse)
    def assessments_save(request: Request, case: str = Form(""), patient_ref: str = Form(""), note: str = Form(""),
                         shared: str = Form(""), study_date: str = Form(""), csrf_token: str = Form("")) -> Response:
        values = {"patient_ref": patient_ref, "note": note, "shared": shared, "study_date": study_date}

        def go() -> Response:
            from spinemets.errors import InvalidInputError, SpinemetsError

            try:
                try:
                    case_data = json.loads(case)
                except json.JSONDecodeError as exc:
                    raise InvalidInputError("case", f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
                data = {"case": case_data, "patient_ref": patient_ref, "note": note, "shared": bool(shared)}
                if study_date.strip():
                    data["study_date"] = study_date.strip()
                a_id = _run(request, lambda s, a: repo.save(s, a, data).id, form_csrf=csrf_token)
            except (Unauthenticated, Forbidden, Unavailable):
                raise
            except SpinemetsError as exc:
                error = _form_error(exc, "assessment.")
                html = _env().get_template("save_form.html").render(who=_who(request), case_text=case, values=values,
                                                                     error=error, standalone=True)
                return _page(request, "save_error.html", "assessments", error["status"], form=Markup(html), error=error)
            return RedirectResponse(f"/assessments/{a_id}", status_code=303)

        return _guard(request, go)

    @r.get("/assessments/{assessment_id}", response_class=HTMLResponse)
    def assessment_page(request: Request, assessment_id: str) -> Response:
        def go() -> Response:
            from spinemets.assess import AssessResult

            a, owner = _run(request, lambda s, act: repo.get(s, act, assessment_id))
            d = repo.full_dict(a, owner)
            result = AssessResult.model_validate(d["result"])
            who = _who(request) or {}
            return _page(request, "assessment.html", "assessments", a=d, result=result,
                         case_text=json.dumps(d["case"], indent=2, ensure_ascii=False),
                         own=who.get("username") == owner, error=None)

        return _guard(request, go)

    @r.post("/assessments/{assessment_id}", response_class=HTMLResponse)
    def assessment_update(request: Request, assessment_id: str, note: str = Form(""), shared: str = Form(""),
                          csrf_token: str = Form("")) -> Response:
        def go() -> Response:
            try:
                _run(request, lambda s, a: repo.update(s, a, assessment_id, {"note": note, "shared": bool(shared)}),
                     form_csrf=csrf_token)
            except InvalidInputError as exc:
                from spinemets.web.routes import render_error

                return render_error(request, 422, "Invalid input", str(exc))
            return RedirectResponse(f"/assessments/{assessment_id}", status_code=303)

        return _guard(request, go)

    @r.get("/assessments/{assessment_id}/compare", response_class=HTMLResponse)
    def compare_page(request: Request, assessment_id: str) -> Response:
        with_id = (request.query_params.get("with") or "").strip() or None

        def go() -> Response:
            try:
                cmp = _run(request, lambda s, a: repo.compare(s, a, assessment_id, with_id))
            except InvalidInputError as exc:
                from spinemets.web.routes import render_error

                return render_error(request, 422, "Invalid input", str(exc))
            return _page(request, "compare.html", "assessments", cmp=cmp)

        return _guard(request, go)

    @r.get("/account", response_class=HTMLResponse)
    def account_page(request: Request) -> Response:
        def go() -> Response:
            tokens = _run(request, lambda s, a: [repo.token_dict(t) for t in repo.list_tokens(s, a)])
            return _page(request, "account.html", "account", tokens=tokens, new_token=None)

        return _guard(request, go)

    @r.post("/account/tokens", response_class=HTMLResponse)
    def account_token(request: Request, name: str = Form("api"), csrf_token: str = Form("")) -> Response:
        def go() -> Response:
            def fn(s: Any, actor: Actor | None) -> tuple[str, list[dict[str, Any]]]:
                actor = repo._require_clinical(actor)
                secret, _ = repo.create_token(s, actor, s.get(User, actor.id), {"name": name.strip() or "api"})
                return secret, [repo.token_dict(t) for t in repo.list_tokens(s, actor)]

            try:
                secret, tokens = _run(request, fn, form_csrf=csrf_token)
            except InvalidInputError as exc:
                from spinemets.web.routes import render_error

                return render_error(request, 422, "Invalid input", str(exc))
            resp = _page(request, "account.html", "account", tokens=tokens, new_token=secret)
            resp.headers.update(NO_STORE)  # the secret is shown once: never cached
            return resp

        return _guard(request, go)

    @r.post("/account/tokens/{token_id}/revoke", response_class=HTMLResponse)
    def account_revoke(request: Request, token_id: int, csrf_token: str = Form("")) -> Response:
        def go() -> Response:
            _run(request, lambda s, a: repo.revoke_token(s, a, token_id), form_csrf=csrf_token)
            return RedirectResponse("/account", status_code=303)

        return _guard(request, go)

    @r.get("/admin", response_class=HTMLResponse)
    def admin_page(request: Request) -> Response:
        verify = bool(request.query_params.get("verify"))

        def go() -> Response:
            def fn(s: Any, a: Actor | None) -> dict[str, Any]:
                users = [repo.user_dict(u) for u in repo.list_users(s, a)]
                entries, total = repo.audit_list(s, a, limit=50)
                v = repo.audit_verify(s, a).to_dict() if verify else None
                return {"users": users, "entries": entries, "total": total, "verification": v}

            return _page(request, "admin.html", "admin", error=None, **_run(request, fn))

        return _guard(request, go)

    @r.post("/admin/users", response_class=HTMLResponse)
    def admin_add_user(request: Request, username: str = Form(""), password: str = Form(""), role: str = Form("clinician"),
                       csrf_token: str = Form("")) -> Response:
        def go() -> Response:
            from spinemets.errors import SpinemetsError
            from spinemets.web.routes import render_error

            try:
                _run(request, lambda s, a: repo.create_user(s, a, {"username": username, "password": password, "role": role}),
                     form_csrf=csrf_token)
            except (Unauthenticated, Forbidden, NotFound, Unavailable):
                raise
            except SpinemetsError as exc:
                err = _form_error(exc)
                return render_error(request, err["status"], err["title"], err["detail"])
            return RedirectResponse("/admin", status_code=303)

        return _guard(request, go)

    @r.post("/admin/users/{username}", response_class=HTMLResponse)
    def admin_update_user(request: Request, username: str, active: str = Form(""), role: str = Form(""),
                          csrf_token: str = Form("")) -> Response:
        def go() -> Response:
            from spinemets.errors import SpinemetsError
            from spinemets.web.routes import render_error

            change: dict[str, Any] = {}
            if active in ("yes", "no"):
                change["active"] = active == "yes"
            if role:
                change["role"] = role
            try:
                _run(request, lambda s, a: repo.update_user(s, a, username, change), form_csrf=csrf_token)
            except (Unauthenticated, Forbidden, NotFound, Unavailable):
                raise
            except SpinemetsError as exc:
                err = _form_error(exc)
                return render_error(request, err["status"], err["title"], err["detail"])
            return RedirectResponse("/admin", status_code=303)

        return _guard(request, go)

    @r.get("/setup", response_class=HTMLResponse)
    def setup_form(request: Request, token: str = "") -> Response:
        refused = _setup_refused(request, token)
        return refused if refused is not None else _setup_page(request, token)

    @r.post("/setup", response_class=HTMLResponse)
    def setup_submit(request: Request, token: str = Form(""), username: str = Form(""), password: str = Form(""),
                     password_again: str = Form(""), csrf_token: str = Form("")) -> Response:
        refused = _setup_refused(request, token)
        if refused is not None:
            return refused
        if not auth.csrf_ok(request.cookies.get(SETUP_CSRF_COOKIE), csrf_token):
            return _setup_page(request, token, 403, "The form had expired; please try again.", username)
        if password != password_again:
            return _setup_page(request, token, 422, "The two passwords differ; type the same one twice.", username,
                               "password_again")
        try:
            with _store(request).session(write=True) as s:
                if not auth.setup_token_ok(s, token):
                    raise NotFound("the set-up link has been used or has expired")
                user = repo.create_first_admin(s, {"username": username, "password": password})
                audit.append(s, actor_id=user.id, actor=user.username, action="login", object_type="user",
                             object_id=str(user.id), detail={"via": "setup"})
                secret, _ = auth.create_session(s, user)
        except InvalidInputError as exc:
            field = exc.field.rsplit(".", 1)[-1]
            return _setup_page(request, token, 422, exc.message[0].upper() + exc.message[1:] + ".", username,
                               "password" if field == "password" else "username")
        except (NotFound, repo.Conflict):
            return _setup_gone(request)
        resp = RedirectResponse("/admin", status_code=303)
        _login_cookie(request, resp, secret)
        resp.delete_cookie(SETUP_CSRF_COOKIE, path="/setup")
        return resp

    return r


def is_local_client(request: Request) -> bool:
    """A request from the server's own machine: a loopback client address and no proxy headers."""
    import ipaddress

    if any(h in request.headers for h in PROXY_HEADERS):
        return False
    try:
        ip = ipaddress.ip_address(client_address(request).strip("[]"))
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def _setup_gone(request: Request) -> Response:
    from spinemets.web.routes import render_error

    return render_error(request, 404, "Not found", "There is no page at this address.")


def _setup_refused(request: Request, token: str) -> Response | None:
    """None when the set-up page may be shown: a local client, no admin yet, a valid one-time token."""
    from spinemets.web.routes import render_error

    store = getattr(request.app.state, "store", None)
    if store is None or not is_local_client(request):
        return _setup_gone(request)
    with store.session() as s:
        if repo.has_admin(s):
            return _setup_gone(request)
        if not auth.setup_token_ok(s, token):
            return render_error(request, 403, "Set-up link needed",
                                "Open the one-time link that the server printed when it started (restart the server "
                                "for a new one), or run `spinemets user add --admin NAME`.")
    return None


def _setup_page(request: Request, token: str, status: int = 200, error: str | None = None, username: str = "",
                field: str | None = None) -> Response:
    csrf = request.cookies.get(SETUP_CSRF_COOKIE) or secrets.token_urlsafe(32)
    resp = _page(request, "setup.html", "setup", status, setup_csrf=csrf, setup_token=token, setup_error=error,
                 setup_username=username[:64], setup_field=field, min_password=auth.MIN_PASSWORD,
                 max_password=auth.MAX_PASSWORD)
    resp.set_cookie(SETUP_CSRF_COOKIE, csrf, max_age=3600, path="/setup", httponly=True, samesite="strict",
                    secure=auth.secure_cookie(request.url.scheme, request.url.hostname))
    resp.headers.update(NO_STORE)  # its address holds the one-time token
    return resp


# --- install ------------------------------------------------------------------------------------------------------


def install(app: FastAPI, problem_responses: dict[int | str, dict[str, Any]], web: bool) -> None:
    """Open the database, add the REST routes and (if *web*) the pages."""
    from spinemets.api.problem import MEDIA_TYPE, Problem

    _register_problem_type()
    app.state.login_throttle = auth.LoginThrottle()
    app.state.store = open_store()
    _redact_access_log()

    def cds_feedback(client: str, service_id: str, feedback: Any) -> int:  # the CDS Hooks adapter's sink
        with app.state.store.session(write=True) as s:
            return repo.record_cds_feedback(s, client, service_id, feedback)

    app.state.cds_feedback = cds_feedback

    def stored_result(request: Request, assessment_id: str) -> dict[str, Any]:  # the FHIR adapter's source
        return _run(request, lambda s, a: repo.stored_result(s, a, assessment_id))  # type: ignore[no-any-return]

    app.state.stored_result = stored_result

    def dicom_access(request: Request, action: str, series: list[str]) -> str:  # the DICOM adapter's gate
        return _run(request, lambda s, a: repo.record_dicom_access(s, a, action, series))  # type: ignore[no-any-return]

    app.state.dicom_access = dicom_access

    @app.exception_handler(StoreError)
    async def store_error(request: Request, exc: StoreError) -> Response:
        if getattr(request.app.state, "web", False) and not request.url.path.startswith("/api/"):
            from spinemets.web.routes import render_error

            if exc.status == 401:
                return _login_page(request)
            return render_error(request, exc.status, {403: "Forbidden", 404: "Not found"}.get(exc.status, "Error"),
                                exc.detail)
        return _problem(request, exc)

    responses = dict(problem_responses)
    for code, text in ((401, "Not signed in (no session cookie or API token)"),
                       (403, "Signed in but not allowed (role, owner, CSRF token)"),
                       (404, "No such assessment, or another user's private one"), (409, "Conflict"),
                       (429, "Too many failed sign-ins (see Retry-After)"), (503, "Database unavailable")):
        responses[code] = {"model": Problem, "description": text, "content": {MEDIA_TYPE: {}}}
    app.include_router(_api_router(responses))
    if web:
        hooks = list(getattr(app.state, "page_context", []))
        hooks.append(_page_context)
        app.state.page_context = hooks
        app.include_router(_pages_router())

