"""The append-only audit trail: who did what to which object, and when, in a SHA-256 hash chain.

Every row stores ``prev_hash`` (the previous row's hash; 64 zeros for the first) and
``hash = sha256(canonical JSON of its own fields + prev_hash)``.  Appends happen inside the caller's write
transaction (so an action and its audit row commit or roll back together) and are serialised on the
single ``audit_head`` row: ``SELECT ... FOR UPDATE`` on PostgreSQL, the ``BEGIN IMMEDIATE`` write lock on
SQLite.  Concurrent writers therefore queue and never fork the chain.

:func:`verify` walks the chain and reports any altered row (hash mismatch), deleted or inserted row (a gap
in ``seq`` or a broken ``prev_hash`` link) and a truncated tail (the head row points past the last row).
Deleting the newest rows *and* rewriting the head cannot be seen from inside the database: keep the head
hash that ``spinemets audit verify`` prints somewhere else and pass it back with ``--expect SEQ:HASH``.

The chain also covers the stored data: every row that creates or changes an assessment, a user or an API
token carries ``content``, a SHA-256 of that row's stored content (:func:`digest`: for an assessment its
case, results, knowledge-base version, owner, reference, date, note and sharing; for a user the name,
role, state and password hash; for a token its owner, hash, expiry and revocation).  :func:`verify` then
compares every row of those tables with the latest digest in the chain, and so reports one changed,
deleted or inserted outside the application (a stored result rewritten, a private assessment made
shared, an admin added with SQL).

Details hold identifiers, digests and counts only, never patient text.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from spinemets.store.models import ApiToken, Assessment, AuditEntry, AuditHead, User, utcnow

GENESIS = "0" * 64
ACTIONS = ("create", "read", "update", "export", "login", "login_failed", "logout", "verify", "denied", "baseline")

# The stored content that the chain vouches for, per object type (see :func:`digest`).
CONTENT_FIELDS: dict[str, tuple[str, ...]] = {
    "assessment": ("id", "owner_id", "patient_ref", "study_date", "note", "shared", "kb_version", "case_document",
                   "result_document", "statuses", "sins_total", "sins_category", "escc_grade", "revision"),
    "user": ("id", "username", "role", "active", "password_hash"),
    "api_token": ("id", "user_id", "token_hash", "expires_at", "revoked_at"),
}
CONTENT_MODELS: dict[str, Any] = {"assessment": Assessment, "user": User, "api_token": ApiToken}
LABELS = {"assessment": "assessment", "user": "user", "api_token": "API token"}


def canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def entry_hash(seq: int, at: str, actor_id: int | None, actor: str, action: str, object_type: str,
               object_id: str | None, detail: str, prev_hash: str) -> str:
    payload = {"seq": seq, "at": at, "actor_id": actor_id, "actor": actor, "action": action,
               "object_type": object_type, "object_id": object_id, "detail": detail, "prev_hash": prev_hash}
    return hashlib.sha256(canonical(payload).encode("utf-8")).hexdigest()


def row_hash(e: AuditEntry) -> str:
    return entry_hash(e.seq, e.at, e.actor_id, e.actor, e.action, e.object_type, e.object_id, e.detail, e.prev_hash)


def _plain(value: Any) -> Any:
    """A JSON value that reads back the same from SQLite and PostgreSQL (JSONB writes 1.0 as 1 for large
    numbers, so integral floats become integers; datetimes become UTC ISO text, naive ones taken as UTC)."""
    if value is None or isinstance(value, (bool, str, int)):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else value
    if isinstance(value, dt.datetime):
        value = value if value.tzinfo is not None else value.replace(tzinfo=dt.timezone.utc)
        return value.astimezone(dt.timezone.utc).isoformat(timespec="microseconds")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    raise TypeError(f"cannot digest a {type(value).__name__}")


def digest(kind: str, values: Mapping[str, Any]) -> str:
    """SHA-256 of the stored content of one assessment, user or API token (fields: CONTENT_FIELDS[kind])."""
    doc = {"kind": kind, **{name: _plain(values[name]) for name in CONTENT_FIELDS[kind]}}
    return hashlib.sha256(canonical(doc).encode("utf-8")).hexdigest()


def digest_of(s: Session, obj: Any) -> str:
    """:func:`digest` of an ORM row as the database holds it (flushed and read back)."""
    kind = next(k for k, model in CONTENT_MODELS.items() if isinstance(obj, model))
    s.flush()
    s.refresh(obj)
    return digest(kind, {name: getattr(obj, name) for name in CONTENT_FIELDS[kind]})


def lock(s: Session) -> AuditHead:
    """Take the chain's head row for this transaction (``FOR UPDATE``): writers queue behind it."""
    return s.execute(select(AuditHead).where(AuditHead.id == 1).with_for_update()).scalar_one()


def append(s: Session, *, actor_id: int | None, actor: str, action: str, object_type: str,
           object_id: str | None = None, detail: dict[str, Any] | None = None) -> AuditEntry:
    """Append one row in the session's (write) transaction."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    head = lock(s)
    seq = head.seq + 1
    at = utcnow().strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    text = canonical(detail or {})
    h = entry_hash(seq, at, actor_id, actor, action, object_type, object_id, text, head.hash)
    entry = AuditEntry(seq=seq, at=at, actor_id=actor_id, actor=actor, action=action, object_type=object_type,
                       object_id=object_id, detail=text, prev_hash=head.hash, hash=h)
    s.add(entry)
    head.seq = seq
    head.hash = h
    s.flush()
    return entry


@dataclass
class Verification:
    ok: bool
    rows: int
    head_seq: int
    head_hash: str
    problems: list[str] = field(default_factory=list)
    checked: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "rows": self.rows, "head_seq": self.head_seq, "head_hash": self.head_hash,
                "problems": self.problems, "checked": self.checked}

    def to_text(self) -> str:
        if self.ok:
            counts = ", ".join(f"{n} {LABELS[k]}{'s' if n != 1 else ''}" for k, n in self.checked.items())
            return (f"audit verify: ok - {self.rows} entries, chain intact; stored data matches it ({counts}); "
                    f"head {self.head_seq}:{self.head_hash}\n"
                    "Keep the head (SEQ:HASH) elsewhere and check it later with --expect SEQ:HASH.")
        return "audit verify: FAILED\n" + "\n".join(f"- {p}" for p in self.problems)


MAX_PROBLEMS = 50


def verify(s: Session, expect: tuple[int, str] | None = None) -> Verification:
    """Walk the whole chain, then compare the stored assessments, users and tokens with their latest digests
    in it; report every break (up to 50).

    The head row is locked first, so that on PostgreSQL no writer commits between the walk and the
    comparison (on SQLite the read transaction's snapshot does the same).
    """
    s.execute(select(AuditHead.id).where(AuditHead.id == 1).with_for_update())
    problems: list[str] = []
    latest: dict[tuple[str, str], str | None] = {}

    def problem(text: str) -> None:
        if len(problems) < MAX_PROBLEMS:
            problems.append(text)

    prev = GENESIS
    expected_seq = 1
    rows = 0
    last_seq, last_hash = 0, GENESIS
    seen_expect = expect is None
    stmt = select(AuditEntry).order_by(AuditEntry.seq).execution_options(yield_per=2000)
    for e in s.scalars(stmt):
        rows += 1
        if e.seq != expected_seq:
            if e.seq > expected_seq:
                missing = e.seq - expected_seq
                problem(f"entries {expected_seq}..{e.seq - 1} are missing ({missing} deleted)" if missing > 1
                        else f"entry {expected_seq} is missing (deleted)")
            else:  # pragma: no cover - seq is the primary key
                problem(f"entry {e.seq} is out of order")
        if e.prev_hash != prev:
            problem(f"entry {e.seq}: prev_hash does not match the hash of the entry before it (a row before it was "
                    "altered, inserted or deleted)")
        if row_hash(e) != e.hash:
            problem(f"entry {e.seq}: its contents do not match its hash (altered)")
        if expect is not None and e.seq == expect[0]:
            seen_expect = True
            if e.hash != expect[1]:
                problem(f"entry {e.seq}: hash {e.hash} differs from the expected {expect[1]}")
        if e.object_type in CONTENT_FIELDS and e.object_id is not None and '"content"' in e.detail:
            try:
                content = json.loads(e.detail).get("content")
            except (ValueError, AttributeError):
                content = None
            if isinstance(content, str):
                latest[(e.object_type, e.object_id)] = content
        prev = e.hash
        expected_seq = e.seq + 1
        last_seq, last_hash = e.seq, e.hash
    head = s.get(AuditHead, 1)
    if head is None:
        problem("the chain head row (audit_head id 1) is missing")
        head_seq, head_hash = last_seq, last_hash
    else:
        head_seq, head_hash = head.seq, head.hash
        if head.seq != last_seq:
            problem(f"the chain head says {head.seq} entries but the last entry is {last_seq} "
                    "(newest entries deleted)" if head.seq > last_seq else
                    f"the chain head says {head.seq} entries but the last entry is {last_seq}")
        elif head.hash != last_hash:
            problem(f"the chain head hash does not match entry {last_seq}")
    if not seen_expect:
        problem(f"entry {expect[0]} expected with hash {expect[1]} is not in the trail (deleted)")  # type: ignore[index]
    checked = _check_contents(s, latest, problem)
    return Verification(ok=not problems, rows=rows, head_seq=head_seq, head_hash=head_hash, problems=problems,
                        checked=checked)


def _check_contents(s: Session, latest: dict[tuple[str, str], str | None], problem: Any) -> dict[str, int]:
    """Every stored assessment, user and token against its latest digest in the chain."""
    checked: dict[str, int] = {}
    for kind, model in CONTENT_MODELS.items():
        names = CONTENT_FIELDS[kind]
        label = LABELS[kind]
        seen: set[str] = set()
        stmt = select(*(getattr(model, n) for n in names)).order_by(model.id).execution_options(yield_per=500)
        for row in s.execute(stmt):
            values = dict(zip(names, row))
            oid = str(values["id"])
            seen.add(oid)
            what = f"{label} {oid}" + (f" ({values['username']!r}, {values['role']})" if kind == "user" else "")
            expected = latest.get((kind, oid))
            if expected is None:
                problem(f"{what}: not in the audit trail (added outside the application)")
            elif digest(kind, values) != expected:
                problem(f"{what}: its stored content differs from the audit trail (changed outside the application)")
        for (k, oid), expected in latest.items():
            if k == kind and expected is not None and oid not in seen:
                problem(f"{label} {oid}: in the audit trail but not in the database (deleted outside the application)")
        checked[kind] = len(seen)
    return checked


def entries(s: Session, *, limit: int = 100, before: int | None = None, actor: str | None = None,
            action: str | None = None, object_id: str | None = None) -> tuple[list[AuditEntry], int]:
    """Newest first; ``before`` pages backwards by sequence number."""
    q = select(AuditEntry)
    cq = select(func.count()).select_from(AuditEntry)
    conds = []
    if before is not None:
        conds.append(AuditEntry.seq < before)
    if actor:
        conds.append(AuditEntry.actor == actor)
    if action:
        conds.append(AuditEntry.action == action)
    if object_id:
        conds.append(AuditEntry.object_id == object_id)
    for c in conds:
        q = q.where(c)
        cq = cq.where(c)
    rows = list(s.scalars(q.order_by(AuditEntry.seq.desc()).limit(limit)))
    return rows, int(s.scalar(cq) or 0)


def entry_dict(e: AuditEntry) -> dict[str, Any]:
    return {"seq": e.seq, "at": e.at, "actor_id": e.actor_id, "actor": e.actor, "action": e.action,
            "object_type": e.object_type, "object_id": e.object_id, "detail": json.loads(e.detail),
            "prev_hash": e.prev_hash, "hash": e.hash}
