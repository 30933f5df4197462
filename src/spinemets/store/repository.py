"""What can be done with stored data, each operation with its access check and its audit row.

Every function takes a session (in a write transaction: reads are audited too) and the acting user.

==================  =====================================  ==========================================
who                 assessments                            users, tokens, audit trail
==================  =====================================  ==========================================
nobody signed in    nothing (401)                          nothing (401)
clinician           create; read, export, compare own and  own API tokens
                    shared ones; update own ones
admin               the same as a clinician                users, audit trail (list, verify)
==================  =====================================  ==========================================

Another user's private assessment is reported as not found (404), so that its existence is not disclosed;
changing someone else's shared assessment is forbidden (403).  Errors name the field.

Rows that create or change an assessment, a user or an API token carry the digest of its stored content
in their audit row (:func:`spinemets.store.audit.digest`), which ``audit verify`` checks.  Sign-in
(:func:`sign_in`) manages its own short transactions so that the password check runs outside them; its
failures are counted per account and 15-minute window and enter the audit trail as one row per account
and window (:func:`flush_failed_logins`).  Text that a database cannot store (a NUL character, a lone
surrogate) is refused with the field named.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, defer

from spinemets.assess import AssessResult, CaseDocument, assess
from spinemets.errors import InvalidInputError, SpinemetsError
from spinemets.store import audit, auth
from spinemets.store.models import ROLES, ApiToken, Assessment, LoginFailures, User, utcnow

PATIENT_REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}$")
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._@-]{1,63}$")
ID = re.compile(r"^[0-9a-f]{32}$")
MAX_NOTE = 4000
MAX_ID = 2**31 - 1  # the largest INTEGER key on PostgreSQL (and well inside SQLite's)
FAILED_LOGIN_WINDOW = dt.timedelta(minutes=15)
UNSTORABLE = "contains a character that cannot be stored (a NUL character or a lone surrogate)"
PATIENT_REF_RULE = ("a pseudonymous reference (e.g. a study or record number): 1-64 letters, digits and . _ : / -, "
                    "starting with a letter or digit; no spaces, so no names")


# --- errors ---------------------------------------------------------------------------------------------------


class StoreError(SpinemetsError):
    """An access or state error of the store; ``slug`` names its problem type (api/problem.py)."""

    slug = "invalid-input"
    status = 422

    def __init__(self, detail: str, fields: list[str] | None = None) -> None:
        self.detail = detail
        self.fields = list(fields or [])
        super().__init__(detail)


class Unauthenticated(StoreError):
    slug, status = "unauthorized", 401


class Forbidden(StoreError):
    slug, status = "forbidden", 403


class NotFound(StoreError):
    slug, status = "not-found", 404


class Conflict(StoreError):
    slug, status = "conflict", 409


class Throttled(StoreError):
    """Sign-in refused for now (too many failed attempts, or too many at once); ``retry_after`` in seconds."""

    slug, status = "too-many-requests", 429

    def __init__(self, retry_after: int, busy: bool = False) -> None:
        self.retry_after = max(1, int(retry_after))
        wait = auth.wait_text(self.retry_after)
        detail = (f"the server is busy checking other sign-ins; try again in {wait}" if busy else
                  f"too many failed sign-ins for this account or from this address; try again in {wait}")
        super().__init__(detail)


# --- who is acting ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Actor:
    id: int | None
    username: str
    role: str
    via: str = "api"

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @classmethod
    def of(cls, user: User, via: str) -> Actor:
        return cls(user.id, user.username, user.role, via)


def system(via: str = "cli") -> Actor:
    """The operator at the command line (who has the database itself): may manage users and read the audit."""
    return Actor(None, "system", "admin", via)


def _log(s: Session, actor: Actor, action: str, object_type: str, object_id: str | None = None,
         **detail: Any) -> None:
    audit.append(s, actor_id=actor.id, actor=actor.username, action=action, object_type=object_type,
                 object_id=object_id, detail={"via": actor.via, **detail})


def _require_user(actor: Actor | None) -> Actor:
    if actor is None:
        raise Unauthenticated("sign in, or send an API token (Authorization: Bearer ...)")
    return actor


def _require_admin(actor: Actor | None) -> Actor:
    actor = _require_user(actor)
    if not actor.is_admin:
        raise Forbidden("this needs the admin role")
    return actor


def _require_clinical(actor: Actor | None) -> Actor:
    actor = _require_user(actor)
    if actor.id is None:
        raise Forbidden("assessments belong to a user; act as one (--user NAME)", ["user"])
    return actor


# --- inputs -----------------------------------------------------------------------------------------------------


def _check_ref(value: str) -> str:
    value = value.strip()
    if not PATIENT_REF.match(value):
        raise ValueError(f"use {PATIENT_REF_RULE}")
    return value


def _check_study_date(value: dt.date | None) -> dt.date | None:
    if value is not None and value > dt.date.today() + dt.timedelta(days=1):
        raise ValueError(f"{value.isoformat()} is in the future")
    if value is not None and value.year < 1900:
        raise ValueError(f"{value.isoformat()} is before 1900")
    return value


def _check_password(value: str) -> str:
    """The NIST SP 800-63B rule without the user name (see auth.password_problem); never echoes the password."""
    problem = auth.password_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def _check_note(value: str) -> str:
    if len(value) > MAX_NOTE:
        raise ValueError(f"too long: {len(value)} characters; at most {MAX_NOTE}")
    if auth.unstorable(value):
        raise ValueError(UNSTORABLE)
    return value


def check_storable(data: Any, path: str) -> None:
    """Refuse any text inside *data* (a model or plain JSON) that a database cannot store, naming where it is."""
    if isinstance(data, BaseModel):
        data = data.model_dump(mode="python", exclude_none=True)
    if isinstance(data, str):
        if auth.unstorable(data):
            raise InvalidInputError(path, UNSTORABLE)
    elif isinstance(data, dict):
        for key, value in data.items():
            name = str(key)
            if auth.unstorable(name):
                raise InvalidInputError(path, f"a field name {UNSTORABLE}")
            check_storable(value, f"{path}.{name}" if path else name)
    elif isinstance(data, (list, tuple)):
        for i, value in enumerate(data):
            check_storable(value, f"{path}[{i}]")


Note = Annotated[str, AfterValidator(_check_note)]
PatientRef = Annotated[str, AfterValidator(_check_ref)]
StudyDate = Annotated[dt.date, AfterValidator(_check_study_date)]
Password = Annotated[str, AfterValidator(_check_password)]


class SaveInput(BaseModel):
    """A case to assess and save."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"title": "spinemets assessment to save"})

    case: CaseDocument
    patient_ref: PatientRef = Field(description=PATIENT_REF_RULE)
    note: Note = Field("", description="free text, shown to those who can read the assessment")
    shared: bool = Field(False, description="readable by every signed-in user (only the owner can change it)")
    study_date: StudyDate | None = Field(None, description="date of the imaging study (default: today)")


class UpdateInput(BaseModel):
    """Fields of a saved assessment that its owner can change (the case and its results cannot change)."""

    model_config = ConfigDict(extra="forbid")

    patient_ref: PatientRef | None = None
    note: Note | None = None
    shared: bool | None = None
    study_date: StudyDate | None = None


class ListQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    patient_ref: str | None = Field(None, max_length=65, description="exact reference, or a prefix ending in *")
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    scope: Literal["visible", "mine", "shared"] = "visible"
    limit: int = Field(50, ge=1, le=200)
    offset: int = Field(0, ge=0, le=MAX_ID)


class UserInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(max_length=64)
    password: Password
    role: Literal["clinician", "admin"] = "clinician"

    @field_validator("username")
    @classmethod
    def _name(cls, v: str) -> str:
        v = v.strip().lower()
        if not USERNAME.match(v):
            raise ValueError("2-64 characters: lower-case letters, digits and . _ @ -, starting with a letter or digit")
        return v

    @field_validator("password")
    @classmethod
    def _not_the_name(cls, v: str, info: ValidationInfo) -> str:
        problem = auth.password_problem(v, info.data.get("username"))
        if problem:
            raise ValueError(problem)
        return v


class UserUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    active: bool | None = None
    role: Literal["clinician", "admin"] | None = None
    password: Password | None = None


class TokenInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field("api", min_length=1, max_length=100)
    days: int | None = Field(None, ge=1, le=auth.MAX_TOKEN_DAYS,
                             description="expires after this many days (default: $SPINEMETS_TOKEN_DAYS, else 90)")


def parse(model: type[BaseModel], data: Any, prefix: str) -> Any:
    from spinemets.validation import parse as core_parse

    return core_parse(model, data, prefix)


def check_id(value: str, name: str = "id") -> str:
    if not ID.match(value or ""):
        raise NotFound(f"{name}: no assessment {value!r}", [name])
    return value


# --- users ------------------------------------------------------------------------------------------------------


def user_dict(u: User) -> dict[str, Any]:
    return {"id": u.id, "username": u.username, "role": u.role, "active": u.active,
            "created_at": u.created_at.isoformat()}


def create_user(s: Session, actor: Actor | None, data: UserInput | dict[str, Any]) -> User:
    actor = _require_admin(actor)
    if not isinstance(data, UserInput):
        check_storable(data, "user")
    inp = data if isinstance(data, UserInput) else parse(UserInput, data, "user")
    if s.scalar(select(User.id).where(User.username == inp.username)) is not None:
        raise Conflict(f"user.username: {inp.username!r} already exists", ["user.username"])
    u = User(username=inp.username, password_hash=auth.hash_password(inp.password), role=inp.role, active=True,
             created_at=utcnow())
    s.add(u)
    s.flush()
    _log(s, actor, "create", "user", str(u.id), username=u.username, role=u.role, content=audit.digest_of(s, u))
    return u


def has_admin(s: Session) -> bool:
    """Whether any admin account exists (active or not)."""
    return s.scalar(select(User.id).where(User.role == "admin").limit(1)) is not None


def create_first_admin(s: Session, data: dict[str, Any], via: str = "setup") -> User:
    """The first admin, from the set-up page: refused once any admin exists; ends every set-up link."""
    audit.lock(s)  # one at a time, on PostgreSQL too
    if has_admin(s):
        raise Conflict("there is already an admin; sign in, or ask an admin for an account")
    u = create_user(s, system(via), {**data, "role": "admin"})
    auth.end_setup_tokens(s)
    return u


def _user_by_name(s: Session, username: str, field: str = "username") -> User:
    u = s.scalar(select(User).where(User.username == username.strip().lower()))
    if u is None:
        raise NotFound(f"{field}: no user {username!r}", [field])
    return u


def get_user(s: Session, username: str) -> User:
    return _user_by_name(s, username)


def list_users(s: Session, actor: Actor | None) -> list[User]:
    actor = _require_admin(actor)
    users = list(s.scalars(select(User).order_by(User.username)))
    _log(s, actor, "read", "user_list", None, count=len(users))
    return users


def _active_admins(s: Session) -> int:
    return int(s.scalar(select(func.count()).select_from(User).where(User.role == "admin", User.active.is_(True))) or 0)


def update_user(s: Session, actor: Actor | None, username: str, data: UserUpdate | dict[str, Any]) -> User:
    actor = _require_admin(actor)
    inp = data if isinstance(data, UserUpdate) else parse(UserUpdate, data, "user")
    u = _user_by_name(s, username)
    changed: list[str] = []
    losing_admin = u.role == "admin" and u.active and (inp.active is False or (inp.role not in (None, "admin")))
    if losing_admin and _active_admins(s) <= 1:
        raise Conflict(f"user.{'active' if inp.active is False else 'role'}: {u.username!r} is the last active admin",
                       ["user.active" if inp.active is False else "user.role"])
    if inp.active is not None and inp.active != u.active:
        u.active = inp.active
        changed.append("active")
    if inp.role is not None and inp.role != u.role:
        u.role = inp.role
        changed.append("role")
    ended: dict[str, int] = {}
    if inp.password is not None:
        problem = auth.password_problem(inp.password, u.username)
        if problem:
            raise InvalidInputError("user.password", problem)
        u.password_hash = auth.hash_password(inp.password)
        changed.append("password")
        ended = _end_access(s, actor, u)
    if changed:
        _log(s, actor, "update", "user", str(u.id), fields=changed, active=u.active, role=u.role,
             content=audit.digest_of(s, u), **ended)
    return u


def _end_access(s: Session, actor: Actor, u: User) -> dict[str, int]:
    """After a password reset: the user's browser sessions end and every live API token is revoked."""
    sessions = auth.end_sessions(s, u.id)
    tokens = auth.live_tokens(s, u.id)
    now = utcnow()
    for t in tokens:
        t.revoked_at = now
        _log(s, actor, "update", "api_token", str(t.id), revoked=True, reason="password reset",
             content=audit.digest_of(s, t))
    return {"sessions_ended": sessions, "tokens_revoked": len(tokens)}


# --- signing in ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Candidate:
    id: int
    username: str
    password_hash: str
    active: bool


def _candidate(s: Session, name: str) -> _Candidate | None:
    if not USERNAME.match(name):
        return None
    u = s.scalar(select(User).where(User.username == name))
    return None if u is None else _Candidate(u.id, u.username, u.password_hash, u.active)


def sign_in(store: Any, username: str, password: str, via: str, *, address: str = "-",
            throttle: auth.LoginThrottle | None = None,
            then: Callable[[Session, User], Any] | None = None) -> tuple[User, Any] | None:
    """(user, then(session, user)) if the password is right and the account active, else None.

    Three steps, so that argon2 (about 0.1 s of CPU) never runs inside a database transaction: read the
    account (a read transaction), verify the password (no transaction; at most a few at a time), then
    either record the failure (a short write: counted per account and window, see
    :func:`record_failed_login`) or, in one short write, check that the account did not change meanwhile,
    audit the sign-in and run *then* (e.g. create the browser session).  With a *throttle*, an account or
    address over its limits raises :class:`Throttled` before any of this.
    """
    name = (username or "").strip().lower()
    if throttle is not None:
        wait = throttle.retry_after(name, address)
        if wait is not None:
            raise Throttled(wait)
    with store.session() as s:
        cand = _candidate(s, name)
    try:
        ok = auth.verify_password_limited(cand.password_hash if cand is not None else None, password or "")
    except auth.TooManyAttempts as exc:
        raise Throttled(exc.retry_after, busy=True) from None
    if cand is not None and ok and cand.active:
        new_hash = auth.hash_password(password) if auth.needs_rehash(cand.password_hash) else None
        with store.session(write=True) as s:
            u = s.get(User, cand.id)
            if u is not None and u.active and u.password_hash == cand.password_hash:
                flush_failed_logins(s)
                detail: dict[str, Any] = {"via": via}
                if new_hash is not None:
                    u.password_hash = new_hash
                    detail.update(fields=["password_rehash"], content=audit.digest_of(s, u))
                audit.append(s, actor_id=u.id, actor=u.username, action="login", object_type="user",
                             object_id=str(u.id), detail=detail)
                extra = then(s, u) if then is not None else None
                if throttle is not None:
                    throttle.succeeded(name)
                return u, extra
        ok = False  # disabled or given a new password while the old one was being checked
    reason = "unknown user" if cand is None else ("wrong password" if not ok else "account disabled")
    if throttle is not None:
        throttle.failed(name, address)
    with store.session(write=True) as s:
        record_failed_login(s, cand.id if cand is not None else None, cand.username if cand is not None else None,
                            reason, via)
    return None


def window_start(at: dt.datetime) -> dt.datetime:
    """The start of the failed-sign-in window holding *at* (15-minute windows from the epoch)."""
    size = FAILED_LOGIN_WINDOW.total_seconds()
    return dt.datetime.fromtimestamp((at.timestamp() // size) * size, dt.timezone.utc)


def record_failed_login(s: Session, user_id: int | None, username: str | None, reason: str, via: str,
                        now: dt.datetime | None = None) -> LoginFailures:
    """Count one failed sign-in for the account (or for unknown user names, together) in the current window."""
    now = now or utcnow()
    flush_failed_logins(s, now)  # also takes the chain's lock: counting is serialised
    account = str(user_id) if user_id is not None else "-"
    start = window_start(now)
    row = s.get(LoginFailures, (account, start))
    if row is None:
        row = LoginFailures(account=account, window_start=start, user_id=user_id, username=username or "anonymous",
                            count=0, reasons="{}", last_at=now)
        s.add(row)
    counts = json.loads(row.reasons or "{}")
    for group, key in (("reasons", reason), ("via", via)):
        counts.setdefault(group, {})
        counts[group][key] = counts[group].get(key, 0) + 1
    row.reasons = audit.canonical(counts)
    row.count = (row.count or 0) + 1
    row.last_at = now
    s.flush()
    return row


def flush_failed_logins(s: Session, now: dt.datetime | None = None) -> int:
    """Move the counts of ended windows into the audit trail: one ``login_failed`` row per account and window."""
    audit.lock(s)
    cutoff = window_start(now or utcnow())
    rows = list(s.scalars(select(LoginFailures).where(LoginFailures.window_start < cutoff)
                          .order_by(LoginFailures.window_start, LoginFailures.account)))
    for r in rows:
        end = r.window_start + FAILED_LOGIN_WINDOW
        audit.append(s, actor_id=r.user_id, actor=r.username, action="login_failed", object_type="user",
                     object_id=str(r.user_id) if r.user_id is not None else None,
                     detail={"count": r.count, "window_start": r.window_start.isoformat(), "window_end": end.isoformat(),
                             "last_at": r.last_at.isoformat(), **json.loads(r.reasons or "{}")})
        s.delete(r)
    if rows:
        s.flush()
    return len(rows)


def create_token(s: Session, actor: Actor | None, owner: User, data: TokenInput | dict[str, Any]) -> tuple[str, ApiToken]:
    """A new API token for *owner*, expiring after ``days`` (default $SPINEMETS_TOKEN_DAYS, else 90)."""
    actor = _require_user(actor)
    if actor.id is not None and actor.id != owner.id:
        raise Forbidden("tokens can only be created for oneself")
    inp = data if isinstance(data, TokenInput) else parse(TokenInput, data, "token")
    check_storable(inp.name, "token.name")
    if not owner.active:
        raise Conflict(f"user: {owner.username!r} is disabled", ["user"])
    secret, row = auth.create_token(s, owner, inp.name, inp.days)
    _log(s, actor, "create", "api_token", str(row.id), owner=owner.username, name=inp.name,
         content=audit.digest_of(s, row))
    return secret, row


def token_dict(t: ApiToken) -> dict[str, Any]:
    return {"id": t.id, "name": t.name, "prefix": t.prefix, "created_at": t.created_at.isoformat(),
            "expires_at": t.expires_at.isoformat() if t.expires_at else None,
            "revoked_at": t.revoked_at.isoformat() if t.revoked_at else None}


def list_tokens(s: Session, actor: Actor | None) -> list[ApiToken]:
    actor = _require_clinical(actor)
    return list(s.scalars(select(ApiToken).where(ApiToken.user_id == actor.id).order_by(ApiToken.id)))


def revoke_token(s: Session, actor: Actor | None, token_id: int) -> ApiToken:
    actor = _require_clinical(actor)
    if not 1 <= token_id <= MAX_ID:  # a database INTEGER cannot hold it: no such token
        raise NotFound(f"id: no token {str(token_id)[:24]}", ["id"])
    t = s.get(ApiToken, token_id)
    if t is None or t.user_id != actor.id:
        raise NotFound(f"id: no token {token_id}", ["id"])
    if t.revoked_at is None:
        t.revoked_at = utcnow()
        _log(s, actor, "update", "api_token", str(t.id), revoked=True, content=audit.digest_of(s, t))
    return t


# --- assessments ------------------------------------------------------------------------------------------------


def _summary_fields(result: AssessResult) -> dict[str, Any]:
    """The columns listed and plotted: the single lesion's SINS and ESCC, or, for several lesions, those of the index
    lesion by each rule when it is certain and one lesion (the highest SINS total; the highest ESCC grade)."""
    sins, escc = result.sins, result.escc
    if result.lesions is not None:
        by = {ix.by: ix for ix in result.lesions.index if ix.certain and len(ix.lesions) == 1}
        named = {x.levels: x for x in result.lesions.lesions}
        sins = named[by["sins"].lesions[0]].sins if "sins" in by else None
        escc = named[by["escc"].lesions[0]].escc if "escc" in by else None
    return {
        "statuses": dict(result.statuses),
        "sins_total": sins.total if sins is not None else None,
        "sins_category": sins.category if sins is not None else None,
        "escc_grade": escc.grade if escc is not None else None,
    }


def save(s: Session, actor: Actor | None, data: SaveInput | dict[str, Any]) -> Assessment:
    """Assess the case (the server computes every result) and save it with the knowledge-base version."""
    actor = _require_clinical(actor)
    if not isinstance(data, SaveInput):
        check_storable(data, "assessment")
    inp = data if isinstance(data, SaveInput) else parse(SaveInput, data, "assessment")
    check_storable(inp, "assessment")
    result = assess(inp.case)
    now = utcnow()
    a = Assessment(
        id=uuid.uuid4().hex, owner_id=actor.id, patient_ref=inp.patient_ref, study_date=inp.study_date or now.date(),
        note=inp.note, shared=inp.shared, kb_version=result.kb_version,
        case_document=inp.case.model_dump(mode="json", exclude_none=True),
        result_document=result.model_dump(mode="json"), created_at=now, updated_at=now, revision=1,
        **_summary_fields(result),
    )
    s.add(a)
    s.flush()
    _log(s, actor, "create", "assessment", a.id, kb_version=a.kb_version, content=audit.digest_of(s, a))
    return a


def _visible(actor: Actor) -> Any:
    return or_(Assessment.owner_id == actor.id, Assessment.shared.is_(True))


def _get_visible(s: Session, actor: Actor, assessment_id: str, field: str = "id") -> tuple[Assessment, str]:
    check_id(assessment_id, field)
    row = s.execute(select(Assessment, User.username).join(User, User.id == Assessment.owner_id)
                    .where(Assessment.id == assessment_id)).first()
    if row is None or not (row[0].owner_id == actor.id or row[0].shared):
        raise NotFound(f"{field}: no assessment {assessment_id!r}", [field])
    return row[0], row[1]


def summary_dict(a: Assessment, owner: str) -> dict[str, Any]:
    return {
        "id": a.id, "patient_ref": a.patient_ref, "study_date": a.study_date.isoformat(), "owner": owner,
        "shared": a.shared, "kb_version": a.kb_version, "sins_total": a.sins_total, "sins_category": a.sins_category,
        "escc_grade": a.escc_grade, "statuses": a.statuses,
        "has_note": bool(a.note), "created_at": a.created_at.isoformat(), "updated_at": a.updated_at.isoformat(),
        "revision": a.revision,
    }


def full_dict(a: Assessment, owner: str) -> dict[str, Any]:
    d = summary_dict(a, owner)
    d.pop("has_note")
    d.update(note=a.note, case=a.case_document, result=a.result_document)
    return d


def get(s: Session, actor: Actor | None, assessment_id: str) -> tuple[Assessment, str]:
    actor = _require_clinical(actor)
    a, owner = _get_visible(s, actor, assessment_id)
    _log(s, actor, "read", "assessment", a.id)
    return a, owner


def listing(s: Session, actor: Actor | None, query: ListQuery | dict[str, Any]) -> tuple[list[tuple[Assessment, str]], int]:
    actor = _require_clinical(actor)
    q = query if isinstance(query, ListQuery) else parse(ListQuery, query, "query")
    conds: list[Any] = [_visible(actor)]
    if q.scope == "mine":
        conds.append(Assessment.owner_id == actor.id)
    elif q.scope == "shared":
        conds.append(Assessment.shared.is_(True))
    if q.patient_ref:
        ref = q.patient_ref.strip()
        if ref.endswith("*"):
            stem = ref[:-1]
            if stem and not PATIENT_REF.match(stem):
                raise InvalidInputError("patient_ref", f"use {PATIENT_REF_RULE} (a trailing * matches any ending)")
            conds.append(Assessment.patient_ref.startswith(stem, autoescape=True))
        else:
            if not PATIENT_REF.match(ref):
                raise InvalidInputError("patient_ref", f"use {PATIENT_REF_RULE} (a trailing * matches any ending)")
            conds.append(Assessment.patient_ref == ref)
    if q.date_from and q.date_to and q.date_from > q.date_to:
        raise InvalidInputError("date_from", f"{q.date_from.isoformat()} is after date_to {q.date_to.isoformat()}")
    if q.date_from:
        conds.append(Assessment.study_date >= q.date_from)
    if q.date_to:
        conds.append(Assessment.study_date <= q.date_to)
    total = int(s.scalar(select(func.count()).select_from(Assessment).where(*conds)) or 0)
    rows = s.execute(
        select(Assessment, User.username).join(User, User.id == Assessment.owner_id).where(*conds)
        .options(defer(Assessment.case_document), defer(Assessment.result_document))
        .order_by(Assessment.study_date.desc(), Assessment.created_at.desc(), Assessment.id)
        .limit(q.limit).offset(q.offset)
    ).all()
    items = [(r[0], r[1]) for r in rows]
    _log(s, actor, "read", "assessment_list", None, count=len(items), ids=[a.id for a, _ in items])
    return items, total


def update(s: Session, actor: Actor | None, assessment_id: str, data: UpdateInput | dict[str, Any]) -> tuple[Assessment, str]:
    actor = _require_clinical(actor)
    if not isinstance(data, UpdateInput):
        check_storable(data, "update")
    inp = data if isinstance(data, UpdateInput) else parse(UpdateInput, data, "update")
    check_storable(inp, "update")
    a, owner = _get_visible(s, actor, assessment_id)
    if a.owner_id != actor.id:
        raise Forbidden(f"only {owner!r}, who saved it, can change this assessment")
    changed = []
    for name in ("patient_ref", "note", "shared", "study_date"):
        value = getattr(inp, name)
        if value is not None and value != getattr(a, name):
            setattr(a, name, value)
            changed.append(name)
    if changed:
        a.revision += 1
        a.updated_at = utcnow()
        _log(s, actor, "update", "assessment", a.id, fields=changed, revision=a.revision,
             content=audit.digest_of(s, a))
    return a, owner


def export(s: Session, actor: Actor | None, assessment_id: str) -> dict[str, Any]:
    """The whole assessment as one JSON document (format ``spinemets-assessment`` version 1)."""
    from spinemets import __version__
    from spinemets.knowledge.loader import load_kb

    actor = _require_clinical(actor)
    a, owner = _get_visible(s, actor, assessment_id)
    _log(s, actor, "export", "assessment", a.id, format="json")
    return {
        "format": "spinemets-assessment", "format_version": 1, "exported_at": utcnow().isoformat(),
        "exported_by": actor.username, "spinemets": __version__, "disclaimer": load_kb().manifest.disclaimer,
        "assessment": full_dict(a, owner),
    }


def stored_result(s: Session, actor: Actor | None, assessment_id: str, *, purpose: str = "fhir") -> dict[str, Any]:
    """A saved assessment's result as it was computed (not recomputed), with its id, patient reference, study date
    and time of assessment, for an export in another format (audited as an export in *purpose*)."""
    from pydantic import ValidationError

    actor = _require_clinical(actor)
    a, _ = _get_visible(s, actor, assessment_id)
    try:
        result = AssessResult.model_validate(a.result_document)
    except ValidationError:
        raise Conflict(f"id: assessment {a.id} was saved by an earlier version whose result this version cannot "
                       f"read as {purpose.upper()}; export it as JSON (spinemets assessment export), or assess its "
                       "case again", ["id"]) from None
    _log(s, actor, "export", "assessment", a.id, format=purpose)
    return {"assessment_id": a.id, "patient_ref": a.patient_ref, "study_date": a.study_date,
            "assessed_at": a.created_at, "result": result}


def _order_key(a: Assessment) -> tuple[dt.date, dt.datetime, str]:
    return (a.study_date, a.created_at, a.id)


def _point(a: Assessment) -> dict[str, Any]:
    return {"id": a.id, "study_date": a.study_date.isoformat(), "created_at": a.created_at.isoformat(),
            "sins_total": a.sins_total, "sins_category": a.sins_category, "escc_grade": a.escc_grade}


def _delta(earlier: dict[str, Any], later: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The SINS and ESCC change between two points (each with sins_total, sins_category, escc_grade)."""
    from spinemets.scores.escc import GRADES

    sins: dict[str, Any] = {"from": earlier["sins_total"], "to": later["sins_total"], "delta": None,
                            "from_category": earlier["sins_category"], "to_category": later["sins_category"]}
    if earlier["sins_total"] is not None and later["sins_total"] is not None:
        sins["delta"] = later["sins_total"] - earlier["sins_total"]
    escc: dict[str, Any] = {"from": earlier["escc_grade"], "to": later["escc_grade"], "steps": None, "direction": None}
    if earlier["escc_grade"] in GRADES and later["escc_grade"] in GRADES:
        steps = GRADES.index(later["escc_grade"]) - GRADES.index(earlier["escc_grade"])
        escc["steps"] = steps
        escc["direction"] = "higher grade" if steps > 0 else ("lower grade" if steps < 0 else "unchanged")
    return sins, escc


def change(earlier: Assessment | None, later: Assessment) -> dict[str, Any]:
    if earlier is None:
        return {"sins": None, "escc": None, "days": None}
    sins, escc = _delta(_point(earlier), _point(later))
    return {"sins": sins, "escc": escc, "days": (later.study_date - earlier.study_date).days}


def levels_of(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each vertebra's SINS and ESCC in a stored result: every vertebra of each lesion of a multilevel case, or the
    SINS level of a single-lesion case (with that case's ESCC)."""
    out: dict[str, dict[str, Any]] = {}
    for lesion in ((result.get("lesions") or {}).get("lesions") or []):
        sins, escc = lesion.get("sins") or {}, lesion.get("escc") or {}
        entry = {"lesion": lesion["levels"], "sins_total": sins.get("total"), "sins_category": sins.get("category"),
                 "escc_grade": escc.get("grade")}
        for vertebra in lesion["vertebrae"]:
            out[vertebra] = entry
    single = result.get("sins") or {}
    if single.get("level"):
        out[single["level"]] = {"lesion": single["level"], "sins_total": single.get("total"),
                                "sins_category": single.get("category"),
                                "escc_grade": (result.get("escc") or {}).get("grade")}
    return out


def _by_level(series: list[Assessment], earlier: Assessment | None, later: Assessment | None) -> dict[str, Any]:
    """For every vertebra scored in any assessment of the series: its points over time and, where both of the
    compared assessments score it, the change between them."""
    from spinemets.levels import INDEX

    found = {a.id: levels_of(a.result_document or {}) for a in series}
    vertebrae = sorted({v for levels in found.values() for v in levels}, key=INDEX.__getitem__)
    out: dict[str, Any] = {}
    for v in vertebrae:
        points = [{"id": a.id, "study_date": a.study_date.isoformat(), **found[a.id][v]} for a in series
                  if v in found[a.id]]
        before = found[earlier.id].get(v) if earlier is not None else None
        after = found[later.id].get(v) if later is not None else None
        sins = escc = None
        note = None
        if before is not None and after is not None:
            if before["lesion"] == after["lesion"]:
                sins, escc = _delta(before, after)
            else:
                note = f"scored as part of different lesions ({before['lesion']}; {after['lesion']})"
        elif after is not None and earlier is not None:
            note = "new: not scored in the earlier assessment"
        elif before is not None and later is not None:
            note = "not scored in the later assessment"
        out[v] = {"series": points, "change": {"sins": sins, "escc": escc, "note": note}}
    return out


def compare(s: Session, actor: Actor | None, assessment_id: str, with_id: str | None = None) -> dict[str, Any]:
    """This assessment against an earlier one of the same patient (default: the latest before it), with the
    whole series of that patient's assessments the user can read, for the plot."""
    actor = _require_clinical(actor)
    a, _ = _get_visible(s, actor, assessment_id)
    series = list(s.scalars(select(Assessment).where(_visible(actor), Assessment.patient_ref == a.patient_ref)
                            .options(defer(Assessment.case_document))))
    series.sort(key=_order_key)
    other: Assessment | None = None
    if with_id:
        other, _ = _get_visible(s, actor, with_id, "with")
        if other.id == a.id:
            raise InvalidInputError("with", "is the same assessment; choose an earlier one of the same patient")
        if other.patient_ref != a.patient_ref:
            raise InvalidInputError("with", f"assessment {with_id!r} is for another patient reference")
    else:
        before = [x for x in series if _order_key(x) < _order_key(a)]
        other = before[-1] if before else None
    earlier, later = (a, other) if other is not None and _order_key(other) > _order_key(a) else (other, a)
    _log(s, actor, "read", "assessment", a.id, compare_with=other.id if other else None)
    return {
        "patient_ref": a.patient_ref, "assessment": a.id,
        "earlier": _point(earlier) if earlier is not None else None,
        "later": _point(later) if later is not None else None,
        "change": change(earlier, later) if later is not None else change(None, a),
        "series": [_point(x) for x in series],
        "levels": _by_level(series, earlier, later),
        "message": None if other is not None else "no earlier assessment of this patient reference that you can read",
    }


# --- DICOM measurements from the PACS -------------------------------------------------------------------------------


def record_dicom_access(s: Session, actor: Actor | None, action: str, series: list[str]) -> str:
    """A signed-in clinician's DICOM measurement (reading the named series from the PACS, or storing an SR there),
    audited before the series are read; the user's name is returned."""
    actor = _require_clinical(actor)
    _log(s, actor, action, "dicom_series", None, series=series)
    return actor.username


# --- CDS Hooks feedback ---------------------------------------------------------------------------------------------

FEEDBACK_OUTCOMES = ("accepted", "overridden")


def record_cds_feedback(s: Session, client: str, service_id: str, feedback: Any) -> int:
    """Record a CDS client's feedback on cards (CDS Hooks 2.0) in the audit trail, one record per card, and return
    how many; each entry needs ``card``, an ``outcome`` (accepted or overridden; accepted with its
    ``acceptedSuggestions``) and an ``outcomeTimestamp`` (InvalidInputError naming the entry otherwise)."""
    if not isinstance(feedback, list) or not feedback:
        raise InvalidInputError("feedback", "a non-empty list of feedback entries is required")
    actor = Actor(None, client[:120], "cds-client", "cds-hooks")
    entries = []
    for i, entry in enumerate(feedback):
        where = f"feedback[{i}]"
        if not isinstance(entry, dict):
            raise InvalidInputError(where, "each entry is an object")
        if not isinstance(entry.get("card"), str) or not entry["card"]:
            raise InvalidInputError(f"{where}.card", "the card's uuid is required")
        if entry.get("outcome") not in FEEDBACK_OUTCOMES:
            raise InvalidInputError(f"{where}.outcome", f"one of {', '.join(FEEDBACK_OUTCOMES)}")
        accepted = entry.get("acceptedSuggestions")
        if entry["outcome"] == "accepted" and not (isinstance(accepted, list) and accepted):
            raise InvalidInputError(f"{where}.acceptedSuggestions", "required when the outcome is accepted")
        stamp = entry.get("outcomeTimestamp")
        try:
            dt.datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
        except ValueError:
            raise InvalidInputError(f"{where}.outcomeTimestamp", "an ISO 8601 date and time is required") from None
        entries.append(entry)
    for entry in entries:
        _log(s, actor, "create", "cds_feedback", entry["card"][:80], service=service_id,
             outcome=entry["outcome"], accepted=[str(a.get("id")) for a in entry.get("acceptedSuggestions") or []
                                                 if isinstance(a, dict)],
             override=(entry.get("overrideReason") or {}).get("reason", {}).get("code")
             if isinstance(entry.get("overrideReason"), dict) else None,
             comment=str((entry.get("overrideReason") or {}).get("userComment") or "")[:500]
             if isinstance(entry.get("overrideReason"), dict) else "",
             at=str(entry["outcomeTimestamp"]))
    return len(entries)


# --- audit trail --------------------------------------------------------------------------------------------------


def audit_list(s: Session, actor: Actor | None, *, limit: int = 100, before: int | None = None,
               actor_name: str | None = None, action: str | None = None, object_id: str | None = None) -> tuple[list[dict[str, Any]], int]:
    actor = _require_admin(actor)
    if not 1 <= limit <= 1000:
        raise InvalidInputError("limit", f"{limit} is out of range 1-1000")
    if before is not None and not 1 <= before <= MAX_ID:
        raise InvalidInputError("before", f"{str(before)[:24]} is out of range 1-{MAX_ID}")
    flush_failed_logins(s)
    rows, total = audit.entries(s, limit=limit, before=before, actor=actor_name, action=action, object_id=object_id)
    out = [audit.entry_dict(e) for e in rows]
    _log(s, actor, "read", "audit_trail", None, count=len(out))
    return out, total


def audit_verify(s: Session, actor: Actor | None, expect: tuple[int, str] | None = None) -> audit.Verification:
    actor = _require_admin(actor)
    flush_failed_logins(s)
    v = audit.verify(s, expect)
    _log(s, actor, "verify", "audit_trail", None, ok=v.ok, rows=v.rows)
    return v


def role_names() -> tuple[str, ...]:
    return ROLES
