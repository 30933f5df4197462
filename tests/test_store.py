"""The store on real SQLite and real PostgreSQL: migrations, saved assessments, comparison, users, tokens and
the hash-chained audit trail (tampering detected, the database refusing updates and deletes)."""

from __future__ import annotations

import datetime as dt
import json
import threading

import pytest
from sqlalchemy import inspect, text

from spinemets.errors import InvalidInputError
from spinemets.store import audit, auth
from spinemets.store import repository as repo
from spinemets.store.db import Store, StoreConfigError, normalise_url, safe_url
from tests.conftest import ROOT, run_cli
from tests.store_support import CASE, PASSWORD, add_token, add_user, case_with, new_database, save



def verify(store, expect=None):
    with store.session() as s:
        return audit.verify(s, expect)


# --- configuration and migrations ------------------------------------------------------------------------------


def test_urls():
    assert normalise_url("postgresql://u:secret@h/db").drivername == "postgresql+psycopg"
    assert normalise_url("postgres://u@h/db").drivername == "postgresql+psycopg"
    assert "secret" not in safe_url(normalise_url("postgresql://u:secret@h/db"))
    for bad, word in (("mysql://x/y", "unsupported"), ("sqlite://", "in-memory"), ("nonsense", "not a database URL")):
        with pytest.raises(StoreConfigError, match=word) as e:
            normalise_url(bad)
        assert str(e.value).startswith("SPINEMETS_DATABASE_URL")


def test_default_database_is_sqlite_in_the_data_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("SPINEMETS_DATABASE_URL", raising=False)
    monkeypatch.setenv("SPINEMETS_DATA_DIR", str(tmp_path / "new" / "folder"))
    st = Store()
    try:
        assert st.backend == "sqlite" and st.path == (tmp_path / "new" / "folder" / "spinemets.db")
        assert st.upgrade() == st.head_revision() == "0002"
        with st.engine.connect() as c:
            assert c.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert c.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
    finally:
        st.dispose()


def test_migrations_from_empty_and_idempotent(backend, pg, sqlite_template, tmp_path):
    url, cleanup = new_database(backend, pg, sqlite_template, tmp_path, migrated=False)
    st = Store(url)
    try:
        assert st.current_revision() is None
        assert st.upgrade() == "0002"
        assert st.upgrade() == "0002"
        names = set(inspect(st.engine).get_table_names())
        assert {"users", "api_tokens", "web_sessions", "assessments", "audit_log", "audit_head"} <= names
        with st.session() as s:
            assert audit.verify(s).ok and audit.verify(s).rows == 0
        # and back down (development use)
        from alembic import command

        from spinemets.store.migrations import alembic_config

        with st.engine.connect() as c:
            command.downgrade(alembic_config(c), "base")
            c.commit()
        assert "assessments" not in set(inspect(st.engine).get_table_names())
    finally:
        st.dispose()
        cleanup()


def test_concurrent_start_ups_migrate_once(backend, pg, sqlite_template, tmp_path):
    url, cleanup = new_database(backend, pg, sqlite_template, tmp_path, migrated=False)
    stores = [Store(url) for _ in range(4)]
    errors: list[BaseException] = []

    def go(st):
        try:
            st.upgrade()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=go, args=(st,)) for st in stores]
    [t.start() for t in threads]
    [t.join() for t in threads]
    try:
        assert not errors, errors
        assert stores[0].current_revision() == "0002"
    finally:
        [st.dispose() for st in stores]
        cleanup()


# --- assessments ------------------------------------------------------------------------------------------------


def test_save_keeps_case_every_result_and_kb_version(store, kb):
    alice = add_user(store, "alice")
    aid = save(store, alice, note="free text", study_date="2025-03-01")
    with store.session(write=True) as s:
        a, owner = repo.get(s, alice, aid)
        d = repo.full_dict(a, owner)
    from spinemets.assess import assess

    assert d["result"] == json.loads(assess(CASE).model_dump_json())
    assert d["case"]["sins"] == CASE["sins"] and d["kb_version"] == kb.version == d["result"]["kb_version"]
    assert (d["patient_ref"], d["note"], d["study_date"], d["owner"], d["shared"]) == ("P-001", "free text", "2025-03-01", "alice", False)
    assert d["sins_total"] == d["result"]["sins"]["total"] and d["escc_grade"] == d["result"]["escc"]["grade"]


@pytest.mark.parametrize("data,field,words", [
    ({"patient_ref": "John Smith"}, "assessment.patient_ref", "no names"),
    ({"patient_ref": ""}, "assessment.patient_ref", "pseudonymous"),
    ({"patient_ref": "x" * 65}, "assessment.patient_ref", "1-64"),
    ({"note": "n" * 4001}, "assessment.note", "at most 4000"),
    ({"study_date": "2999-01-01"}, "assessment.study_date", "future"),
    ({"study_date": "yesterday"}, "assessment.study_date", "date"),
    ({"case": {"sins": {"pain": "severe"}}}, "assessment.case.sins.pain", "allowed values"),
    ({"colour": "blue"}, "assessment.colour", "unknown field"),
])
def test_save_errors_name_the_field(store, data, field, words):
    alice = add_user(store, "alice")
    with pytest.raises(InvalidInputError) as e, store.session(write=True) as s:
        repo.save(s, alice, {"case": CASE, "patient_ref": "P1", **data})
    assert e.value.field == field and words in str(e.value)
    assert "n" * 100 not in str(e.value)  # a long note is not echoed back


def test_list_search_by_reference_and_date(store):
    alice, bob = add_user(store, "alice"), add_user(store, "bob")
    a1 = save(store, alice, "P-001", study_date="2024-01-10")
    a2 = save(store, alice, "P-001", study_date="2024-06-10")
    a3 = save(store, alice, "P-002", study_date="2024-03-10")
    b1 = save(store, bob, "P-001", study_date="2024-02-10", shared=True)
    save(store, bob, "P-001", study_date="2024-02-11")  # private to bob

    def ids(**q):
        with store.session(write=True) as s:
            items, total = repo.listing(s, alice, q)
            assert total == len(items) or q.get("limit")
            return [a.id for a, _ in items]

    assert ids() == [a2, a3, b1, a1]  # newest study first; bob's private one is not there
    assert ids(patient_ref="P-001") == [a2, b1, a1]
    assert ids(patient_ref="P-00*") == [a2, a3, b1, a1]
    assert ids(patient_ref="P-001", date_from="2024-02-01", date_to="2024-05-31") == [b1]
    assert ids(scope="mine") == [a2, a3, a1] and ids(scope="shared") == [b1]
    assert ids(limit=2) == [a2, a3] and ids(limit=2, offset=2) == [b1, a1]
    with pytest.raises(InvalidInputError, match="patient_ref"):
        ids(patient_ref="P%")
    with pytest.raises(InvalidInputError, match="date_from"):
        ids(date_from="2024-05-01", date_to="2024-01-01")
    with pytest.raises(InvalidInputError, match="scope"):
        ids(scope="everyone")


def test_update_by_owner_only_and_revision(store):
    alice, bob = add_user(store, "alice"), add_user(store, "bob")
    aid = save(store, alice, shared=True)
    with store.session(write=True) as s:
        a, _ = repo.update(s, alice, aid, {"note": "changed", "shared": False})
        assert (a.note, a.shared, a.revision) == ("changed", False, 2)
    with store.session(write=True) as s:
        repo.update(s, alice, aid, {"shared": True})
    with pytest.raises(repo.Forbidden), store.session(write=True) as s:
        repo.update(s, bob, aid, {"note": "mine now"})
    with pytest.raises(InvalidInputError, match="update.case"), store.session(write=True) as s:
        repo.update(s, alice, aid, {"case": CASE})


def test_compare_with_the_previous_assessment_and_the_plot(store):
    alice = add_user(store, "alice")
    first = save(store, alice, study_date="2024-01-01",
                 case=case_with(sins={"collapse": "none", "pain": "none"}, escc={"cord_compressed": False, "cord_abutted": False}))
    save(store, alice, "P-OTHER", study_date="2024-02-01")
    second = save(store, alice, study_date="2024-04-01")
    with store.session(write=True) as s:
        cmp = repo.compare(s, alice, second)
    assert cmp["earlier"]["id"] == first and cmp["later"]["id"] == second and len(cmp["series"]) == 2
    sins, escc = cmp["change"]["sins"], cmp["change"]["escc"]
    assert sins["delta"] == sins["to"] - sins["from"] > 0
    assert (escc["from"], escc["to"], escc["direction"]) == ("1b", "2", "higher grade")
    assert cmp["change"]["days"] == 91
    with store.session(write=True) as s:
        only = repo.compare(s, alice, first)
    assert only["earlier"] is None and "no earlier assessment" in only["message"]
    with store.session(write=True) as s:
        assert repo.compare(s, alice, first, second)["change"] == cmp["change"]  # chronological either way
    with pytest.raises(InvalidInputError, match="another patient"), store.session(write=True) as s:
        other = repo.listing(s, alice, {"patient_ref": "P-OTHER"})[0][0][0].id
        repo.compare(s, alice, second, other)
    from spinemets.store.plot import comparison_svg

    svg = comparison_svg(cmp)
    assert svg.startswith("<svg") and "SINS total" in svg and "ESCC grade" in svg and "<script" not in svg
    assert svg.count("<circle") == 4 and "style=" not in svg


def test_compare_never_shows_another_users_private_assessment(store):
    alice, bob = add_user(store, "alice"), add_user(store, "bob")
    save(store, bob, study_date="2024-01-01")  # bob's, private, same reference
    mine = save(store, alice, study_date="2024-03-01")
    with store.session(write=True) as s:
        cmp = repo.compare(s, alice, mine)
    assert cmp["earlier"] is None and [p["id"] for p in cmp["series"]] == [mine]


def test_export_document(store):
    alice = add_user(store, "alice")
    aid = save(store, alice, note="n")
    with store.session(write=True) as s:
        doc = repo.export(s, alice, aid)
    assert doc["format"] == "spinemets-assessment" and doc["format_version"] == 1
    assert doc["assessment"]["id"] == aid and doc["assessment"]["result"]["statuses"]
    assert "Decision support for healthcare professionals" in doc["disclaimer"]
    json.dumps(doc)


# --- users, passwords, tokens -----------------------------------------------------------------------------------------


def test_passwords_are_argon2_and_tokens_are_stored_hashed(store):
    add_user(store, "alice")
    secret = add_token(store, "alice")
    with store.session() as s:
        row = s.execute(text("SELECT password_hash FROM users WHERE username = 'alice'")).scalar_one()
        assert row.startswith("$argon2id$") and PASSWORD not in row
        hashes = list(s.execute(text("SELECT token_hash, prefix FROM api_tokens")))
        assert hashes == [(auth.sha256(secret), secret[:10])]
        assert auth.token_user(s, secret).username == "alice"
        assert auth.token_user(s, secret + "x") is None and auth.token_user(s, "smt_") is None


def test_authenticate_disable_and_last_admin(store):
    add_user(store, "root", "admin")
    add_user(store, "alice")
    assert repo.sign_in(store, "ALICE", PASSWORD, "test")[0].username == "alice"
    assert repo.sign_in(store, "alice", "wrong password", "test") is None
    assert repo.sign_in(store, "nobody", PASSWORD, "test") is None
    with store.session(write=True) as s:
        repo.update_user(s, repo.system("test"), "alice", {"active": False})
    assert repo.sign_in(store, "alice", PASSWORD, "test") is None
    with pytest.raises(repo.Conflict, match="last active admin"), store.session(write=True) as s:
        repo.update_user(s, repo.system("test"), "root", {"active": False})
    with pytest.raises(repo.Conflict, match="already exists"), store.session(write=True) as s:
        repo.create_user(s, repo.system("test"), {"username": "Alice", "password": PASSWORD})
    with pytest.raises(InvalidInputError, match="user.password: too short") as e, store.session(write=True) as s:
        repo.create_user(s, repo.system("test"), {"username": "carol", "password": "s3cret"})
    assert "s3cret" not in str(e.value)
    with store.session(write=True) as s:  # the failures are counted per account and window (see test_store_hardening)
        assert repo.flush_failed_logins(s, audit.utcnow() + repo.FAILED_LOGIN_WINDOW) == 2
    with store.session() as s:
        actions = [r[0] for r in s.execute(text("SELECT action FROM audit_log ORDER BY seq"))]
    assert actions.count("login") == 1 and actions.count("login_failed") == 2


def test_sessions_expire_and_end(store, monkeypatch):
    add_user(store, "alice")
    with store.session(write=True) as s:
        u = repo.get_user(s, "alice")
        secret, row = auth.create_session(s, u)
        assert auth.session_user(s, secret)[0].username == "alice"
        assert auth.csrf_ok(row.csrf_token, row.csrf_token) and not auth.csrf_ok(row.csrf_token, "x")
        row.expires_at = row.created_at - dt.timedelta(seconds=1)
    with store.session(write=True) as s:
        assert auth.session_user(s, secret) is None
        secret2, _ = auth.create_session(s, repo.get_user(s, "alice"))
        auth.end_session(s, secret2)
        assert auth.session_user(s, secret2) is None


def test_secure_cookie_policy(monkeypatch):
    monkeypatch.delenv("SPINEMETS_SECURE_COOKIES", raising=False)
    assert auth.secure_cookie("https", "example.org") and auth.secure_cookie("http", "example.org")
    assert not auth.secure_cookie("http", "127.0.0.1") and not auth.secure_cookie("http", "localhost")
    monkeypatch.setenv("SPINEMETS_SECURE_COOKIES", "1")
    assert auth.secure_cookie("http", "127.0.0.1")


# --- the audit trail ---------------------------------------------------------------------------------------------


def test_every_action_is_audited_with_who_what_when(store):
    alice = add_user(store, "alice")
    aid = save(store, alice)
    with store.session(write=True) as s:
        repo.get(s, alice, aid)
        repo.listing(s, alice, {})
        repo.update(s, alice, aid, {"note": "x"})
        repo.export(s, alice, aid)
    repo.sign_in(store, "alice", PASSWORD, "web")
    with store.session(write=True) as s:
        rows, total = repo.audit_list(s, repo.system("test"), limit=100)
    got = [(e["actor"], e["action"], e["object_type"]) for e in reversed(rows)]
    assert got == [("system", "create", "user"), ("alice", "create", "assessment"), ("alice", "read", "assessment"),
                   ("alice", "read", "assessment_list"), ("alice", "update", "assessment"),
                   ("alice", "export", "assessment"), ("alice", "login", "user")]
    assert all(e["at"].endswith("Z") for e in rows) and rows[0]["seq"] == total
    v = verify(store)
    assert v.ok and v.rows == 8  # the listing above is audited too


def _tamper(store, sql: str) -> None:
    """Change the audit trail behind the application's back (dropping the append-only triggers first)."""
    with store.engine.begin() as c:
        if store.backend == "postgresql":
            c.exec_driver_sql("ALTER TABLE audit_log DISABLE TRIGGER USER")
            c.exec_driver_sql(sql)
            c.exec_driver_sql("ALTER TABLE audit_log ENABLE TRIGGER USER")
        else:
            c.exec_driver_sql("DROP TRIGGER IF EXISTS audit_log_no_update")
            c.exec_driver_sql("DROP TRIGGER IF EXISTS audit_log_no_delete")
            c.exec_driver_sql(sql)


def _trail(store, n=6):
    alice = add_user(store, "alice")
    aid = save(store, alice)
    for _ in range(n - 2):
        with store.session(write=True) as s:
            repo.get(s, alice, aid)
    v = verify(store)
    assert v.ok and v.rows == n
    return v


@pytest.mark.parametrize("sql,words", [
    ("UPDATE audit_log SET actor = 'mallory' WHERE seq = 3", "entry 3: its contents do not match"),
    ("UPDATE audit_log SET at = '2020-01-01T00:00:00.000000Z' WHERE seq = 1", "entry 1: its contents"),
    ("UPDATE audit_log SET detail = '{}' WHERE seq = 2", "entry 2: its contents"),
    ("DELETE FROM audit_log WHERE seq = 4", "entry 4 is missing"),
    ("DELETE FROM audit_log WHERE seq IN (2, 3)", "entries 2..3 are missing"),
    ("DELETE FROM audit_log WHERE seq = 6", "newest entries deleted"),
    ("DELETE FROM audit_log", "newest entries deleted"),
])
def test_verify_detects_altered_and_deleted_rows(store, sql, words):
    _trail(store)
    _tamper(store, sql)
    v = verify(store)
    assert not v.ok and any(words in p for p in v.problems), v.problems


def test_verify_detects_a_rehashed_row_and_a_rewritten_tail(store):
    v0 = _trail(store)
    # Alter a row and recompute its own hash: the next row's prev_hash link breaks.
    with store.session() as s:
        row = s.get(audit.AuditEntry, 3)
        forged = audit.entry_hash(3, row.at, row.actor_id, "mallory", row.action, row.object_type, row.object_id,
                                  row.detail, row.prev_hash)
    _tamper(store, f"UPDATE audit_log SET actor = 'mallory', hash = '{forged}' WHERE seq = 3")
    v = verify(store)
    assert not v.ok and any("entry 4: prev_hash" in p for p in v.problems)
    # Deleting the newest row and rewriting the head is caught by a head recorded earlier (--expect).
    url = str(store.url)
    st2 = Store(url)
    try:
        _tamper(st2, "DELETE FROM audit_log WHERE seq >= 3")
        with st2.engine.begin() as c:
            c.exec_driver_sql("UPDATE audit_head SET seq = 2, hash = (SELECT hash FROM audit_log WHERE seq = 2)")
        assert verify(st2).ok  # undetectable from inside the database alone ...
        v = verify(st2, (v0.head_seq, v0.head_hash))
        assert not v.ok and any("expected" in p for p in v.problems)  # ... but not against the recorded head
    finally:
        st2.dispose()


def test_verify_detects_a_forged_and_rehashed_newest_row(store, monkeypatch):
    """Planted-bug regression (issue 18): the newest row has no successor whose prev_hash could break, so only the
    head row (audit_head) shows that it was rewritten and re-hashed; without the head check this passed."""
    _trail(store)
    with store.session() as s:
        row = s.get(audit.AuditEntry, 6)
        assert (row.actor, row.action) == ("alice", "read")
        forged = audit.entry_hash(6, row.at, row.actor_id, "mallory", row.action, row.object_type, row.object_id,
                                  row.detail, row.prev_hash)
        old_hash = row.hash
    _tamper(store, f"UPDATE audit_log SET actor = 'mallory', hash = '{forged}' WHERE seq = 6")
    with store.session() as s:  # the forgery is self-consistent: its own hash and its link both check out
        row = s.get(audit.AuditEntry, 6)
        assert row.actor == "mallory" and audit.row_hash(row) == row.hash == forged != old_hash
        assert row.prev_hash == s.get(audit.AuditEntry, 5).hash
    v = verify(store)
    assert not v.ok and v.problems == ["the chain head hash does not match entry 6"], v.problems
    # and the command a user runs says so, with the failure exit code
    monkeypatch.setenv("SPINEMETS_DATABASE_URL", str(store.url))
    r = run_cli("audit", "verify")
    assert r.returncode == 4, (r.stdout, r.stderr)
    assert r.stderr.startswith("audit verify: FAILED\n") and "audit verify: ok" not in r.stdout
    assert "- the chain head hash does not match entry 6" in r.stderr.splitlines()


def test_the_database_refuses_to_change_the_audit_trail(store):
    _trail(store, 3)
    from sqlalchemy.exc import DBAPIError

    for sql in ("UPDATE audit_log SET actor = 'mallory'", "DELETE FROM audit_log WHERE seq = 1"):
        with pytest.raises(DBAPIError, match="append-only"), store.engine.begin() as c:
            c.exec_driver_sql(sql)
    assert verify(store).ok


def test_concurrent_appends_never_fork_the_chain(store):
    alice = add_user(store, "alice")
    errors: list[BaseException] = []

    def work():
        try:
            for _ in range(10):
                save(store, alice)
        except BaseException as exc:  # pragma: no cover
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert not errors, errors
    v = verify(store)
    assert v.ok and v.rows == 81
    with store.session() as s:
        assert s.execute(text("SELECT count(*) FROM assessments")).scalar_one() == 80


# --- the command line --------------------------------------------------------------------------------------------


def test_cli_end_to_end(db_url, tmp_path, monkeypatch):
    monkeypatch.setenv("SPINEMETS_DATABASE_URL", db_url)
    r = run_cli("db", "upgrade")
    assert r.returncode == 0 and "revision 0002" in r.stdout
    assert run_cli("user", "add", "root", "--admin", "--password-stdin", stdin=PASSWORD + "\n").returncode == 0
    assert run_cli("user", "add", "alice", "--password-stdin", stdin=PASSWORD + "\n").returncode == 0
    r = run_cli("user", "add", "bob", "--password-stdin", stdin="short\n")
    assert r.returncode == 2 and "user.password: too short" in r.stderr and "short\n" not in r.stderr
    r = run_cli("user", "list", "--json")
    assert [(u["username"], u["role"]) for u in json.loads(r.stdout)] == [("alice", "clinician"), ("root", "admin")]
    case = tmp_path / "case.json"
    case.write_text(json.dumps(CASE))
    r = run_cli("assessment", "save", str(case), "--patient-ref", "P-7", "--study-date", "2024-01-01", "--user", "alice", "--json")
    first = json.loads(r.stdout)["id"]
    r = run_cli("assessment", "save", str(case), "--patient-ref", "P-7", "--note", "second look", "--user", "alice")
    assert r.returncode == 0 and r.stdout.startswith("assessment save: ")
    second = r.stdout.split()[2]
    r = run_cli("assessment", "list", "--patient-ref", "P-7", "--user", "alice")
    assert r.returncode == 0 and "2 assessment(s)" in r.stdout
    r = run_cli("assessment", "list", "--from", "2024-06-01", "--user", "alice", "--json")
    assert [i["id"] for i in json.loads(r.stdout)["items"]] == [second]
    r = run_cli("assessment", "show", second, "--user", "alice")
    assert "second look" in r.stdout and "SINS" in r.stdout and "Decision support" in r.stdout
    out = tmp_path / "export.json"
    assert run_cli("assessment", "export", second, "-o", str(out), "--user", "alice").returncode == 0
    assert json.loads(out.read_text())["assessment"]["id"] == second
    r = run_cli("assessment", "compare", second, "--svg", str(tmp_path / "c.svg"), "--user", "alice")
    assert r.returncode == 0 and "SINS total: 11 -> 11 (+0)" in r.stdout and first in r.stdout
    assert (tmp_path / "c.svg").read_text().startswith("<svg")
    r = run_cli("assessment", "show", second, "--user", "root")  # admin: not another user's private data
    assert r.returncode == 2 and "no assessment" in r.stderr
    r = run_cli("assessment", "show", second)
    assert r.returncode == 2 and "--user" in r.stderr
    token = run_cli("token", "create", "alice").stdout.strip()
    assert token.startswith("smt_")
    assert run_cli("user", "disable", "alice").returncode == 0
    r = run_cli("assessment", "list", "--user", "alice")
    assert r.returncode == 2 and "disabled" in r.stderr
    r = run_cli("audit", "list", "--limit", "3")
    assert r.returncode == 0 and "entries" in r.stdout
    r = run_cli("audit", "verify")
    assert r.returncode == 0 and r.stdout.startswith("audit verify: ok")
    head = r.stdout.split("head ")[1].split()[0]
    assert run_cli("audit", "verify", "--expect", head).returncode == 0
    r = run_cli("audit", "verify", "--expect", "1:" + "0" * 64)
    assert r.returncode == 4 and "FAILED" in r.stderr
    r = run_cli("audit", "verify", "--expect", "nonsense")
    assert r.returncode == 2 and "expect" in r.stderr


def test_cli_help_is_light():
    r = run_cli("assessment", "--help")
    assert r.returncode == 0 and "compare" in r.stdout
    import subprocess
    import sys

    code = ("import sys, spinemets.cli as c; c.build_parser(); "
            "print(sorted(m for m in ('sqlalchemy', 'alembic', 'argon2', 'psycopg') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stderr


def test_compare_by_level_follows_each_vertebra_over_time(store):
    """Issue 15: stored assessments compare per level: the SINS and ESCC of T7 over three dates, a vertebra of a
    lesion range carrying that lesion's scores, and a single-lesion case counted at its SINS level."""
    alice = add_user(store, "alice")
    unstable = {"pain": "mechanical", "lesion": "lytic", "alignment": "normal", "collapse": "lt50",
                "posterolateral": "unilateral"}
    first = save(store, alice, study_date="2024-01-01",
                 case={"sins": {**unstable, "level": "T7", "collapse": "none"}, "escc": {"grade": "1a"}})
    second = save(store, alice, study_date="2024-03-01", case={"lesions": [
        {"levels": "T7", "sins": unstable, "escc": {"grade": "1b"}},
        {"levels": "L1-L2", "sins": {**unstable, "level": "L1"}, "escc": {"grade": "0"}}]})
    third = save(store, alice, study_date="2024-06-01", case={"lesions": [
        {"levels": "T6-T8", "sins": {**unstable, "level": "T7", "collapse": "gt50"}, "escc": {"grade": "2"}},
        {"levels": "L1", "sins": {**unstable, "collapse": "none"}}]})
    with store.session(write=True) as s:
        cmp = repo.compare(s, alice, third)
    assert cmp["earlier"]["id"] == second
    t7 = cmp["levels"]["T7"]
    # semi-rigid 1 + mechanical 3 + lytic 2 + normal 0 + unilateral 1, with collapse none 0 / lt50 2 / gt50 3
    assert [(p["study_date"], p["sins_total"], p["escc_grade"]) for p in t7["series"]] == [
        ("2024-01-01", 7, "1a"), ("2024-03-01", 9, "1b"), ("2024-06-01", 10, "2")]
    # T7 alone, then T7 as part of T6-T8: not the same lesion, so no change is computed
    assert t7["change"]["sins"] is None
    assert t7["change"]["note"] == "scored as part of different lesions (T7; T6-T8)"
    assert cmp["levels"]["T6"]["series"][0]["lesion"] == "T6-T8"
    assert cmp["levels"]["T6"]["change"]["note"] == "new: not scored in the earlier assessment"
    assert cmp["levels"]["L2"]["change"]["note"] == "not scored in the later assessment"
    # the listed columns of a multilevel assessment: the index lesion by each rule (L1-L2: SINS 11; T7: ESCC 1b)
    points = {p["id"]: p for p in cmp["series"]}
    assert (points[second]["sins_total"], points[second]["escc_grade"]) == (11, "1b")
    with store.session(write=True) as s:
        pair = repo.compare(s, alice, second)
    assert pair["levels"]["T7"]["change"]["sins"]["delta"] == 2  # T7 alone both times: collapse none -> lt50
    assert cmp["levels"]["L2"]["series"] == [{"id": second, "study_date": "2024-03-01", "lesion": "L1-L2",
                                              "sins_total": 11, "sins_category": "potentially_unstable",
                                              "escc_grade": "0"}]
    assert list(cmp["levels"]) == ["T6", "T7", "T8", "L1", "L2"]
    assert first in {p["id"] for p in t7["series"]}
