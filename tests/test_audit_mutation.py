"""The audit trail (spinemets.store.audit) asserted exactly, on SQLite and PostgreSQL (the mutation run of that
module uses the SQLite cases; the PostgreSQL cases kill the mutants that only PostgreSQL can show).

The trail is safety-critical, so these tests pin the whole observable result rather than a word of it:

- the stored row (who, when, what, the detail text) and its hash, recomputed here from the documented format
  (SHA-256 of the canonical JSON of the row's fields and the previous hash), so that a changed format, a
  dropped field or a broken link fails even when the code stays consistent with itself;
- the digests of stored content, from the same kind of written-out JSON;
- every way of breaking the chain (a row altered, re-hashed, deleted, inserted, reordered; the head row
  rewritten, deleted or left behind; a head recorded earlier) with the exact list of problems reported, and
  the stored users, assessments and tokens changed, inserted or deleted with SQL;
- the report an operator reads (``to_text``) and the JSON the API returns (``to_dict``), word for word;
- the audit listing (newest first, paging, filters, counts).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import time

import pytest
from sqlalchemy import text

from spinemets.store import audit
from spinemets.store import repository as repo
from spinemets.store.models import AuditEntry, AuditHead
from tests.store_support import add_token, add_user, save

GENESIS = "0" * 64
PREV_BROKEN = ("prev_hash does not match the hash of the entry before it (a row before it was altered, inserted "
               "or deleted)")
ALTERED = "its contents do not match its hash (altered)"
AT_FORMAT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z")


@pytest.fixture
def far_from_utc(monkeypatch):
    """The machine's local time zone five hours behind UTC, so that local time can never pass for UTC."""
    monkeypatch.setenv("TZ", "EST+05")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


# --- helpers ------------------------------------------------------------------------------------------------------


def sha256(text_: str) -> str:
    return hashlib.sha256(text_.encode("utf-8")).hexdigest()


def documented_hash(e: AuditEntry) -> str:
    """The row hash as the module docstring defines it, written out independently of the code under test."""
    payload = {"seq": e.seq, "at": e.at, "actor_id": e.actor_id, "actor": e.actor, "action": e.action,
               "object_type": e.object_type, "object_id": e.object_id, "detail": e.detail, "prev_hash": e.prev_hash}
    return sha256(json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False))


def verify(store, expect=None) -> audit.Verification:
    with store.session() as s:
        return audit.verify(s, expect)


def tamper(store, *sql: str) -> None:
    """Change the database behind the application's back (the append-only triggers dropped first)."""
    with store.engine.begin() as c:
        if store.backend == "postgresql":
            c.exec_driver_sql("ALTER TABLE audit_log DISABLE TRIGGER USER")
        else:
            c.exec_driver_sql("DROP TRIGGER IF EXISTS audit_log_no_update")
            c.exec_driver_sql("DROP TRIGGER IF EXISTS audit_log_no_delete")
        for statement in sql:
            c.exec_driver_sql(statement)
        if store.backend == "postgresql":
            c.exec_driver_sql("ALTER TABLE audit_log ENABLE TRIGGER USER")


def hashes(store) -> dict[int, str]:
    with store.session() as s:
        return {e.seq: e.hash for e in s.query(AuditEntry).order_by(AuditEntry.seq)}


def insert_row(store, *, object_type: str, object_id: str | None, detail: str, advance_head: bool = True) -> int:
    """Append a correctly chained row with SQL (as another program could), optionally advancing the head."""
    with store.session() as s:
        last = s.query(AuditEntry).order_by(AuditEntry.seq.desc()).first()
        seq, prev = (last.seq + 1, last.hash) if last else (1, GENESIS)
    at = "2024-01-02T03:04:05.000006Z"
    h = audit.entry_hash(seq, at, None, "tool", "update", object_type, object_id, detail, prev)
    with store.engine.begin() as c:
        c.execute(text("INSERT INTO audit_log (seq, at, actor_id, actor, action, object_type, object_id, detail, "
                       "prev_hash, hash) VALUES (:seq, :at, NULL, 'tool', 'update', :ot, :oid, :detail, :prev, :h)"),
                  {"seq": seq, "at": at, "ot": object_type, "oid": object_id, "detail": detail, "prev": prev, "h": h})
        if advance_head:
            c.execute(text("UPDATE audit_head SET seq = :seq, hash = :h WHERE id = 1"), {"seq": seq, "h": h})
    return seq


def trail(store) -> dict[int, str]:
    """Six rows: alice created by the operator (row 1, with her content digest), then five listings by alice."""
    alice = add_user(store, "alice")
    for _ in range(5):
        with store.session(write=True) as s:
            repo.listing(s, alice, {})
    v = verify(store)
    assert (v.ok, v.rows, v.problems) == (True, 6, []), v.problems
    return hashes(store)


# --- the documented formats: canonical JSON, the row hash, the content digest -------------------------------------


def test_canonical_json_is_sorted_compact_and_keeps_unicode():
    assert audit.canonical({"b": 1, "a": ["é", 1.5, None, True]}) == '{"a":["é",1.5,null,true],"b":1}'
    assert audit.canonical({}) == "{}"


def test_entry_hash_is_sha256_of_the_canonical_row():
    at = "2024-01-02T03:04:05.000006Z"
    written_out = ('{"action":"export","actor":"zoë","actor_id":7,"at":"2024-01-02T03:04:05.000006Z",'
                   '"detail":"{\\"a\\":1}","object_id":"abc","object_type":"assessment",'
                   f'"prev_hash":"{GENESIS}","seq":3}}')
    assert audit.entry_hash(3, at, 7, "zoë", "export", "assessment", "abc", '{"a":1}', GENESIS) == sha256(written_out)
    nulls = ('{"action":"logout","actor":"system","actor_id":null,"at":"x","detail":"{}","object_id":null,'
             f'"object_type":"user","prev_hash":"{"f" * 64}","seq":1}}')
    assert audit.entry_hash(1, "x", None, "system", "logout", "user", None, "{}", "f" * 64) == sha256(nulls)


def test_digest_is_sha256_of_the_canonical_content_with_its_kind():
    user = {"id": 1, "username": "zoë", "role": "admin", "active": True, "password_hash": "$h", "created_at": "x"}
    assert audit.digest("user", user) == sha256(
        '{"active":true,"id":1,"kind":"user","password_hash":"$h","role":"admin","username":"zoë"}')
    token = {"id": 2, "user_id": 1, "token_hash": "t", "revoked_at": None,
             "expires_at": dt.datetime(2024, 5, 1, 14, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))}
    assert audit.digest("api_token", token) == sha256(
        '{"expires_at":"2024-05-01T12:00:00.000000+00:00","id":2,"kind":"api_token","revoked_at":null,'
        '"token_hash":"t","user_id":1}')
    # the same content of another kind is another digest; any changed field is another digest
    assert audit.digest("user", user) != audit.digest("user", {**user, "role": "clinician"})


def test_plain_values_read_back_the_same_from_either_database(far_from_utc):
    """Integral floats become integers (PostgreSQL's JSONB writes 1.0 as 1), datetimes UTC text (a naive one is
    UTC, whatever the machine's zone), dates ISO text, mappings and sequences element by element."""
    plain = audit._plain
    assert plain(None) is None and plain(True) is True and plain("x") == "x" and plain(3) == 3
    assert plain(14.0) == 14 and type(plain(14.0)) is int
    assert plain(1.5) == 1.5 and type(plain(1.5)) is float
    assert plain(dt.datetime(2024, 1, 2, 3, 4, 5, 6)) == "2024-01-02T03:04:05.000006+00:00"
    cet = dt.timezone(dt.timedelta(hours=2))
    assert plain(dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=cet)) == "2024-01-02T01:04:05.000000+00:00"
    assert plain(dt.date(2024, 1, 2)) == "2024-01-02"
    assert plain({"a": [2.0, 0.5, (1, "x")], 7: {"d": dt.date(2024, 2, 29)}}) == {
        "a": [2, 0.5, [1, "x"]], "7": {"d": "2024-02-29"}}
    # so a stored SINS total read back as 14.0 and as 14 vouch for the same content, 14.5 does not
    doc = {"sins": {"total": 14, "category": "unstable"}}
    values = {name: None for name in audit.CONTENT_FIELDS["assessment"]}
    same = audit.digest("assessment", {**values, "result_document": doc, "sins_total": 14})
    assert audit.digest("assessment", {**values, "result_document": {"sins": {"total": 14.0, "category": "unstable"}},
                                       "sins_total": 14.0}) == same
    assert audit.digest("assessment", {**values, "result_document": doc, "sins_total": 14.5}) != same
    with pytest.raises(TypeError) as e:
        plain({1, 2})
    assert str(e.value) == "cannot digest a set"


# --- appending rows -----------------------------------------------------------------------------------------------


def test_append_stores_who_what_when_in_a_linked_chain(store):
    before = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    with store.session(write=True) as s:
        first = audit.append(s, actor_id=None, actor="system", action="create", object_type="user", object_id="1",
                             detail={"via": "test"})
        assert first.seq == 1
        audit.append(s, actor_id=7, actor="zoë", action="export", object_type="assessment", object_id="abc",
                     detail={"b": 1, "a": "é"})
        last = audit.append(s, actor_id=7, actor="zoë", action="logout", object_type="user")
        assert last.seq == 3
    after = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    with store.session() as s:
        rows = list(s.query(AuditEntry).order_by(AuditEntry.seq))
        got = [audit.entry_dict(e) for e in rows]
        head = s.get(AuditHead, 1)
        assert (head.seq, head.hash) == (3, rows[-1].hash)
        assert [e.detail for e in rows] == ['{"via":"test"}', '{"a":"é","b":1}', "{}"]
        assert [e.hash for e in rows] == [documented_hash(e) for e in rows]
    ats = [g.pop("at") for g in got]
    assert all(AT_FORMAT.fullmatch(a) for a in ats), ats
    stamps = [dt.datetime.strptime(a, "%Y-%m-%dT%H:%M:%S.%fZ") for a in ats]
    assert before <= stamps[0] <= stamps[1] <= stamps[2] <= after
    h = [r.hash for r in rows]
    assert got == [
        {"seq": 1, "actor_id": None, "actor": "system", "action": "create", "object_type": "user", "object_id": "1",
         "detail": {"via": "test"}, "prev_hash": GENESIS, "hash": h[0]},
        {"seq": 2, "actor_id": 7, "actor": "zoë", "action": "export", "object_type": "assessment",
         "object_id": "abc", "detail": {"a": "é", "b": 1}, "prev_hash": h[0], "hash": h[1]},
        {"seq": 3, "actor_id": 7, "actor": "zoë", "action": "logout", "object_type": "user", "object_id": None,
         "detail": {}, "prev_hash": h[1], "hash": h[2]},
    ]
    v = verify(store)
    assert v == audit.Verification(ok=True, rows=3, head_seq=3, head_hash=h[2], problems=[],
                                   checked={"assessment": 0, "user": 0, "api_token": 0})


def test_append_refuses_an_unknown_action_and_writes_nothing(store):
    with pytest.raises(ValueError) as e, store.session(write=True) as s:
        audit.append(s, actor_id=1, actor="alice", action="delete", object_type="assessment", object_id="x")
    assert str(e.value) == "unknown audit action 'delete'"
    v = verify(store)
    assert (v.ok, v.rows, v.head_seq, v.head_hash) == (True, 0, 0, GENESIS)


def test_application_rows_carry_the_digest_of_what_they_stored(store):
    """Creating a user, an assessment and a token: who, what, the digest of the stored row, all in the chain."""
    alice = add_user(store, "alice")
    aid = save(store, alice, "P-1")
    add_token(store, "alice")
    with store.session(write=True) as s:
        repo.get(s, alice, aid)
    with store.session() as s:
        rows = list(s.query(AuditEntry).order_by(AuditEntry.seq))
        user = s.execute(text("SELECT id, username, role, active, password_hash FROM users")).one()
        assert [e.hash for e in rows] == [documented_hash(e) for e in rows]
        got = [(e.seq, e.actor_id, e.actor, e.action, e.object_type, e.object_id) for e in rows]
        details = [json.loads(e.detail) for e in rows]
    assert got == [(1, None, "system", "create", "user", "1"), (2, 1, "alice", "create", "assessment", aid),
                   (3, None, "system", "create", "api_token", "1"), (4, 1, "alice", "read", "assessment", aid)]
    content = sha256(json.dumps({"kind": "user", "id": user.id, "username": "alice", "role": "clinician",
                                 "active": True, "password_hash": user.password_hash},
                                sort_keys=True, separators=(",", ":"), ensure_ascii=False))
    assert details[0] == {"via": "test", "username": "alice", "role": "clinician", "content": content}
    assert details[3] == {"via": "test"}
    v = verify(store)
    assert v == audit.Verification(ok=True, rows=4, head_seq=4, head_hash=rows[-1].hash, problems=[],
                                   checked={"assessment": 1, "user": 1, "api_token": 1})


def test_an_append_after_deleted_newest_rows_numbers_from_the_head(store):
    """The next row continues from the head (7), not from the last row left (5 + 1): the gap stays visible."""
    h = trail(store)
    tamper(store, "DELETE FROM audit_log WHERE seq = 6")
    with store.session(write=True) as s:
        e = audit.append(s, actor_id=None, actor="system", action="verify", object_type="audit_trail")
        assert (e.seq, e.prev_hash) == (7, h[6])
    v = verify(store)
    assert v.problems == ["entry 6 is missing (deleted)", f"entry 7: {PREV_BROKEN}"]
    assert (v.ok, v.rows, v.head_seq) == (False, 6, 7)


# --- verify: the chain --------------------------------------------------------------------------------------------


def test_verify_an_empty_trail(store):
    assert verify(store) == audit.Verification(ok=True, rows=0, head_seq=0, head_hash=GENESIS, problems=[],
                                               checked={"assessment": 0, "user": 0, "api_token": 0})


@pytest.mark.parametrize("column,value", [
    ("at", "'2020-01-01T00:00:00.000000Z'"), ("actor_id", "NULL"), ("actor", "'mallory'"), ("action", "'export'"),
    ("object_type", "'assessment'"), ("object_id", "'abc'"), ("detail", "'{}'"),
])
def test_verify_detects_any_altered_field(store, column, value):
    """Who (actor, actor_id), when (at) and what (action, object, detail) are all covered by the row hash."""
    h = trail(store)
    tamper(store, f"UPDATE audit_log SET {column} = {value} WHERE seq = 3")
    v = verify(store)
    assert v.problems == [f"entry 3: {ALTERED}"]
    assert (v.ok, v.rows, v.head_seq, v.head_hash) == (False, 6, 6, h[6])


@pytest.mark.parametrize("sql,problems,rows", [
    (["UPDATE audit_log SET prev_hash = '{f}' WHERE seq = 3"], ["entry 3: " + PREV_BROKEN, f"entry 3: {ALTERED}"], 6),
    (["DELETE FROM audit_log WHERE seq = 4"], ["entry 4 is missing (deleted)", "entry 5: " + PREV_BROKEN], 5),
    (["DELETE FROM audit_log WHERE seq IN (2, 3)"],
     ["entries 2..3 are missing (2 deleted)", "entry 4: " + PREV_BROKEN], 4),
    (["DELETE FROM audit_log WHERE seq IN (2, 3, 4)"],
     ["entries 2..4 are missing (3 deleted)", "entry 5: " + PREV_BROKEN], 3),
    (["DELETE FROM audit_log WHERE seq = 6"],
     ["the chain head says 6 entries but the last entry is 5 (newest entries deleted)"], 5),
    (["DELETE FROM audit_log"],
     ["the chain head says 6 entries but the last entry is 0 (newest entries deleted)",
      "user 1 ('alice', clinician): not in the audit trail (added outside the application)"], 0),
    # reordered: rows 3 and 4 swapped
    (["UPDATE audit_log SET seq = 100 WHERE seq = 3", "UPDATE audit_log SET seq = 3 WHERE seq = 4",
      "UPDATE audit_log SET seq = 4 WHERE seq = 100"],
     ["entry 3: " + PREV_BROKEN, f"entry 3: {ALTERED}", "entry 4: " + PREV_BROKEN, f"entry 4: {ALTERED}",
      "entry 5: " + PREV_BROKEN], 6),
    # renumbered: row 3 moved to the end
    (["UPDATE audit_log SET seq = 9 WHERE seq = 3"],
     ["entry 3 is missing (deleted)", "entry 4: " + PREV_BROKEN, "entries 7..8 are missing (2 deleted)",
      "entry 9: " + PREV_BROKEN, f"entry 9: {ALTERED}", "the chain head says 6 entries but the last entry is 9"], 6),
])
def test_verify_reports_exactly_what_broke(store, sql, problems, rows):
    h = trail(store)
    tamper(store, *(q.format(f="f" * 64) for q in sql))
    v = verify(store)
    assert v.problems == problems
    assert (v.ok, v.rows, v.head_seq, v.head_hash) == (False, rows, 6, h[6])


def test_verify_detects_a_forged_and_rehashed_row(store):
    """A row altered and given a matching hash: its successor's link breaks; for the newest row, the head."""
    h = trail(store)
    with store.session() as s:
        row3, row6 = s.get(AuditEntry, 3), s.get(AuditEntry, 6)
        forged3 = audit.entry_hash(3, row3.at, row3.actor_id, "mallory", row3.action, row3.object_type,
                                   row3.object_id, row3.detail, row3.prev_hash)
        forged6 = audit.entry_hash(6, row6.at, row6.actor_id, row6.actor, "export", row6.object_type,
                                   row6.object_id, row6.detail, row6.prev_hash)
    tamper(store, f"UPDATE audit_log SET actor = 'mallory', hash = '{forged3}' WHERE seq = 3")
    assert verify(store).problems == ["entry 4: " + PREV_BROKEN]
    tamper(store, f"UPDATE audit_log SET actor = 'alice', hash = '{h[3]}' WHERE seq = 3",
           f"UPDATE audit_log SET action = 'export', hash = '{forged6}' WHERE seq = 6")
    v = verify(store)
    assert v.problems == ["the chain head hash does not match entry 6"]
    assert (v.ok, v.rows, v.head_seq, v.head_hash) == (False, 6, 6, h[6])


def test_verify_detects_a_row_appended_behind_the_head(store):
    """A correctly chained row added with SQL without moving the head: the head says fewer entries."""
    h = trail(store)
    insert_row(store, object_type="audit_trail", object_id=None, detail="{}", advance_head=False)
    v = verify(store)
    assert v.problems == ["the chain head says 6 entries but the last entry is 7"]
    assert (v.ok, v.rows, v.head_seq, v.head_hash) == (False, 7, 6, h[6])


def test_verify_without_the_head_row(store):
    h = trail(store)
    tamper(store, "DELETE FROM audit_head")
    v = verify(store)
    assert v == audit.Verification(ok=False, rows=6, head_seq=6, head_hash=h[6],
                                   problems=["the chain head row (audit_head id 1) is missing"],
                                   checked={"assessment": 0, "user": 1, "api_token": 0})


def test_verify_against_a_head_recorded_earlier(store):
    h = trail(store)
    ok = audit.Verification(ok=True, rows=6, head_seq=6, head_hash=h[6], problems=[],
                            checked={"assessment": 0, "user": 1, "api_token": 0})
    assert verify(store, (6, h[6])) == ok
    assert verify(store, (3, h[3])) == ok
    assert verify(store, (3, "f" * 64)).problems == [f"entry 3: hash {h[3]} differs from the expected {'f' * 64}"]
    assert verify(store, (9, "e" * 64)).problems == [
        f"entry 9 expected with hash {'e' * 64} is not in the trail (deleted)"]
    # the newest rows deleted and the head rewritten: consistent inside the database, caught by the recorded head
    tamper(store, "DELETE FROM audit_log WHERE seq >= 3",
           f"UPDATE audit_head SET seq = 2, hash = '{h[2]}' WHERE id = 1")
    assert verify(store) == audit.Verification(ok=True, rows=2, head_seq=2, head_hash=h[2], problems=[],
                                               checked={"assessment": 0, "user": 1, "api_token": 0})
    v = verify(store, (6, h[6]))
    assert (v.ok, v.problems) == (False, [f"entry 6 expected with hash {h[6]} is not in the trail (deleted)"])


@pytest.mark.parametrize("backend", ["postgresql"])
def test_verify_holds_the_chain_head_so_no_writer_commits_during_the_walk(store):
    # PostgreSQL: verify locks the head row first, so an append (which moves the head) waits until the verifying
    # transaction ends; without that lock an entry could land between the walk and the head comparison and raise
    # a false alarm. (SQLite needs no lock: its read transaction is a snapshot.)
    from sqlalchemy.exc import OperationalError

    save(store, add_user(store, "alice"))
    with store.session() as reading:
        assert audit.verify(reading).ok
        with pytest.raises(OperationalError, match="lock timeout"), store.session(write=True) as writing:
            writing.execute(text("SET LOCAL lock_timeout = '300ms'"))
            audit.append(writing, actor_id=None, actor="system", action="create", object_type="user", object_id="9")
    with store.session(write=True) as writing:  # the verifying transaction has ended: the writer gets through
        audit.append(writing, actor_id=None, actor="system", action="create", object_type="user", object_id="9")
    assert verify(store).ok


def test_verify_reports_at_most_50_problems(store):
    trail(store)
    values = ", ".join(f"('m{i}', 'x', 'clinician', true, CURRENT_TIMESTAMP)" for i in range(60))
    tamper(store, f"INSERT INTO users (username, password_hash, role, active, created_at) VALUES {values}")
    v = verify(store)
    assert (v.ok, len(v.problems), v.checked["user"]) == (False, 50, 61)
    assert v.problems[0] == "user 2 ('m0', clinician): not in the audit trail (added outside the application)"
    assert v.problems[-1] == "user 51 ('m49', clinician): not in the audit trail (added outside the application)"


# --- verify: the stored content -----------------------------------------------------------------------------------


def world(store) -> tuple[str, dict[str, int]]:
    alice, _bob = add_user(store, "alice"), add_user(store, "bob")
    aid = save(store, alice, "P-1", note="first look")
    add_token(store, "bob")
    v = verify(store)
    checked = {"assessment": 1, "user": 2, "api_token": 1}
    assert (v.ok, v.problems, v.checked) == (True, [], checked)
    return aid, checked


@pytest.mark.parametrize("case", ["note", "shared", "deleted", "admin", "role", "password", "token", "expiry",
                                  "token_deleted"])
def test_verify_reports_stored_content_changed_with_sql(store, case):
    aid, checked = world(store)
    changed = "its stored content differs from the audit trail (changed outside the application)"
    added = "not in the audit trail (added outside the application)"
    sql, problem, counts = {
        "note": (f"UPDATE assessments SET note = 'rewritten' WHERE id = '{aid}'", f"assessment {aid}: {changed}", {}),
        "shared": (f"UPDATE assessments SET shared = true WHERE id = '{aid}'", f"assessment {aid}: {changed}", {}),
        "deleted": (f"DELETE FROM assessments WHERE id = '{aid}'",
                    f"assessment {aid}: in the audit trail but not in the database (deleted outside the application)",
                    {"assessment": 0}),
        "admin": ("INSERT INTO users (username, password_hash, role, active, created_at) VALUES "
                  "('mallory', 'x', 'admin', true, CURRENT_TIMESTAMP)", f"user 3 ('mallory', admin): {added}",
                  {"user": 3}),
        "role": ("UPDATE users SET role = 'admin' WHERE username = 'alice'", f"user 1 ('alice', admin): {changed}", {}),
        "password": ("UPDATE users SET password_hash = 'x' WHERE username = 'bob'",
                     f"user 2 ('bob', clinician): {changed}", {}),
        "token": ("INSERT INTO api_tokens (user_id, name, token_hash, prefix, created_at) VALUES "
                  "(1, 'x', 'feed', 'smt_x', CURRENT_TIMESTAMP)", f"API token 2: {added}", {"api_token": 2}),
        "expiry": ("UPDATE api_tokens SET expires_at = NULL", f"API token 1: {changed}", {}),
        "token_deleted": ("DELETE FROM api_tokens",
                          "API token 1: in the audit trail but not in the database (deleted outside the application)",
                          {"api_token": 0}),
    }[case]
    tamper(store, sql)
    v = verify(store)
    assert (v.ok, v.problems, v.checked) == (False, [problem], {**checked, **counts})


def test_verify_lists_unknown_rows_in_order_of_their_id(store):
    aid, _ = world(store)
    tamper(store, "CREATE TEMP TABLE copy AS SELECT * FROM assessments",
           f"UPDATE copy SET id = '{'z' * 32}'", "INSERT INTO assessments SELECT * FROM copy",
           f"UPDATE copy SET id = '{'a' * 32}'", "INSERT INTO assessments SELECT * FROM copy")
    v = verify(store)
    added = "not in the audit trail (added outside the application)"
    assert v.problems == [f"assessment {'a' * 32}: {added}", f"assessment {'z' * 32}: {added}"]
    assert v.checked["assessment"] == 3


def test_rows_that_vouch_for_no_content_are_ignored(store):
    """Only a row naming an assessment, user or token by id, with a text ``content`` in a JSON object, sets the
    digest that the stored row is checked against; other rows neither raise an alarm nor clear the digest."""
    world(store)
    with store.session(write=True) as s:
        for object_type, object_id in (("user", None), ("audit_trail", "1")):
            audit.append(s, actor_id=None, actor="system", action="update", object_type=object_type,
                         object_id=object_id, detail={"content": "f" * 64})
    insert_row(store, object_type="user", object_id="1", detail='["content"]')
    insert_row(store, object_type="user", object_id="1", detail='{"content": 5}')
    v = verify(store)
    assert (v.ok, v.problems, v.rows) == (True, [], 8)


# --- what the operator reads and the API returns ------------------------------------------------------------------


def test_the_report_word_for_word():
    ok = audit.Verification(ok=True, rows=5, head_seq=5, head_hash="ab" * 32,
                            checked={"assessment": 0, "user": 1, "api_token": 2})
    assert ok.to_text() == (
        "audit verify: ok - 5 entries, chain intact; stored data matches it (0 assessments, 1 user, 2 API tokens); "
        f"head 5:{'ab' * 32}\nKeep the head (SEQ:HASH) elsewhere and check it later with --expect SEQ:HASH.")
    one = audit.Verification(ok=True, rows=1, head_seq=1, head_hash="c" * 64,
                             checked={"assessment": 1, "user": 3, "api_token": 1})
    assert "(1 assessment, 3 users, 1 API token)" in one.to_text()
    failed = audit.Verification(ok=False, rows=6, head_seq=6, head_hash="d" * 64,
                                problems=["entry 4 is missing (deleted)", "entry 5: " + PREV_BROKEN])
    assert failed.to_text() == f"audit verify: FAILED\n- entry 4 is missing (deleted)\n- entry 5: {PREV_BROKEN}"
    assert failed.to_dict() == {"ok": False, "rows": 6, "head_seq": 6, "head_hash": "d" * 64,
                                "problems": ["entry 4 is missing (deleted)", "entry 5: " + PREV_BROKEN], "checked": {}}
    assert ok.to_dict() == {"ok": True, "rows": 5, "head_seq": 5, "head_hash": "ab" * 32, "problems": [],
                            "checked": {"assessment": 0, "user": 1, "api_token": 2}}


# --- the listing --------------------------------------------------------------------------------------------------


def test_entries_newest_first_with_paging_filters_and_counts(store):
    with store.session(write=True) as s:
        for i in range(1, 106):
            audit.append(s, actor_id=i, actor="bob" if i % 5 == 0 else "alice",
                         action="export" if i % 7 == 0 else "read", object_type="assessment",
                         object_id="a1" if i % 3 == 0 else None)
    with store.session() as s:
        def seqs(**kw):
            rows, total = audit.entries(s, **kw)
            return [e.seq for e in rows], total

        assert seqs() == (list(range(105, 5, -1)), 105)  # 100 by default
        assert seqs(limit=3, before=50) == ([49, 48, 47], 49)
        assert seqs(actor="bob") == ([i for i in range(105, 0, -1) if i % 5 == 0], 21)
        assert seqs(action="export", limit=3) == ([105, 98, 91], 15)
        assert seqs(object_id="a1", before=10) == ([9, 6, 3], 3)
        assert seqs(actor="bob", action="export") == ([105, 70, 35], 3)
        assert seqs(actor="nobody") == ([], 0)
        assert seqs(actor="", action="", object_id="", limit=2) == ([105, 104], 105)  # empty filters: none
