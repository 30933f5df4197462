"""The store after the security and reliability review (issue 16), on SQLite and PostgreSQL.

Each test names the review's finding it guards against; each failed before its fix:

1. sign-in: throttling with growing waits (429 + Retry-After), the password checked outside any write
   transaction, failed attempts one audit row per account and window, and the flood probe (16 anonymous
   guessers must not slow a signed-in user down);
2. a password reset ends sessions and API tokens; tokens expire by default;
3. the password rule of NIST SP 800-63B (length, common and breached passwords, the user name; no
   composition rules);
4. the audit chain covers the stored data: assessments, users and tokens changed, deleted or inserted
   with SQL are detected;
5. no 500 for a token id beyond the integer range or text a database cannot store;
6. `audit verify` refuses a missing database; an unreachable one is one line, exit 2;
7. the first admin: a one-time set-up page (local clients, a printed link, CSRF) and `user add` without
   a terminal.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from spinemets.errors import InvalidInputError
from spinemets.store import audit, auth
from spinemets.store import repository as repo
from spinemets.store.db import Store
from tests.conftest import ROOT, SPINEMETS, run_cli
from tests.store_support import CASE, PASSWORD, add_token, add_user, case_with, new_database, save

LOCAL = ("127.0.0.1", 50000)


def verify(store):
    with store.session() as s:
        return audit.verify(s)


@contextmanager
def client_for(db_url: str, monkeypatch, client: tuple[str, int] = LOCAL, **env: str) -> Iterator:
    """The app in-process on *db_url*, as seen from *client* (default: this machine)."""
    from fastapi.testclient import TestClient

    from spinemets.api.app import create_app

    monkeypatch.setenv("SPINEMETS_DATABASE_URL", db_url)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    app = create_app()
    try:
        with TestClient(app, base_url="https://testserver", client=client, follow_redirects=False) as c:
            yield c
    finally:
        app.state.store.dispose()


def login(c, username="alice", password=PASSWORD):
    return c.post("/api/v1/auth/login", json={"username": username, "password": password})


def _sql(store, sql: str) -> None:
    with store.engine.begin() as c:
        c.exec_driver_sql(sql)


# --- 1. sign-in ---------------------------------------------------------------------------------------------------


def test_throttle_waits_grow_with_the_failures():
    """Finding 1 (no rate limiting on sign-in): each limit reached makes the wait longer, per account and per
    address, and a successful sign-in clears the account's count."""
    t = auth.LoginThrottle(account="2/second;3/minute", address="5/minute")
    assert t.retry_after("alice", "10.0.0.1") is None
    t.failed("alice", "10.0.0.1")
    t.failed("ALICE ", "10.0.0.1")  # the same account however typed
    first = t.retry_after("alice", "10.0.0.1")
    assert first is not None and 1 <= first <= 1
    time.sleep(1.1)
    assert t.retry_after("alice", "10.0.0.1") is None
    t.failed("alice", "10.0.0.1")
    second = t.retry_after("alice", "10.0.0.2")  # another address: the account is still over its limit
    assert second is not None and 55 <= second <= 60 and second > first
    assert t.retry_after("bob", "10.0.0.2") is None
    t.failed("bob", "10.0.0.1")
    t.failed("carol", "10.0.0.1")  # five failures from one address, whatever the accounts
    assert 55 <= t.retry_after("dave", "10.0.0.1") <= 60
    assert t.retry_after("dave", "10.0.0.3") is None
    t.succeeded("alice")
    assert t.retry_after("alice", "10.0.0.3") is None
    assert auth.wait_text(1) == "1 second" and auth.wait_text(59) == "59 seconds"
    assert auth.wait_text(600) == "10 minutes" and auth.wait_text(7200) == "2 hours"


def test_bad_limit_settings_are_refused(monkeypatch):
    from spinemets.store.db import StoreConfigError

    monkeypatch.setenv("SPINEMETS_LOGIN_LIMITS_ACCOUNT", "lots")
    with pytest.raises(StoreConfigError, match="SPINEMETS_LOGIN_LIMITS_ACCOUNT: 'lots' is not a list of limits"):
        auth.LoginThrottle()


def test_api_sign_in_answers_429_with_retry_after(store, db_url, monkeypatch):
    """Finding 1: over the limit the API answers 429 problem+json with Retry-After, even to the right password."""
    add_user(store, "alice")
    add_user(store, "bob")
    with client_for(db_url, monkeypatch, SPINEMETS_LOGIN_LIMITS_ACCOUNT="3/minute") as c:
        for _ in range(3):
            assert login(c, password="wrong password").status_code == 401
        r = login(c)
        assert r.status_code == 429 and r.headers["content-type"].startswith("application/problem+json")
        wait = int(r.headers["retry-after"])
        assert 1 <= wait <= 60 and r.json()["retry_after"] == wait
        assert r.json()["type"] == "/problems/too-many-requests" and r.json()["status"] == 429
        assert r.json()["detail"].startswith("too many failed sign-ins for this account or from this address; "
                                             "try again in ")
        assert "set-cookie" not in r.headers
        assert login(c, "bob").status_code == 200  # another account from the same address still signs in
        assert c.get("/problems/too-many-requests").status_code == 200
        doc = c.get("/openapi.json").json()
        assert "429" in doc["paths"]["/api/v1/auth/login"]["post"]["responses"]


def test_page_sign_in_shows_the_wait(store, db_url, monkeypatch):
    """Finding 1: the sign-in page says how long to wait, with Retry-After."""
    add_user(store, "alice")
    with client_for(db_url, monkeypatch, SPINEMETS_LOGIN_LIMITS_ADDRESS="2/minute") as c:
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', c.get("/login").text).group(1)
        form = {"username": "alice", "password": "wrong password", "csrf_token": csrf}
        for _ in range(2):
            assert c.post("/login", data=form).status_code == 401
        r = c.post("/login", data={**form, "password": PASSWORD})
        assert r.status_code == 429 and 1 <= int(r.headers["retry-after"]) <= 60
        assert "Too many failed sign-ins for this account or from this address; try again in" in r.text
        assert 'action="/login"' in r.text and "spinemets_session" not in r.headers.get("set-cookie", "")


def test_password_is_checked_outside_any_write_transaction(store, monkeypatch):
    """Finding 1 (each attempt held the database write lock while argon2 ran): while the password is being
    checked, another writer gets through at once."""
    add_user(store, "alice")
    real = auth.verify_password
    outcomes: list[bool] = []

    def probe(stored, password):
        def write():
            with store.session(write=True) as s:
                audit.lock(s)
            done.set()

        done = threading.Event()
        threading.Thread(target=write, daemon=True).start()
        outcomes.append(done.wait(5))
        return real(stored, password)

    monkeypatch.setattr(auth, "verify_password", probe)
    assert repo.sign_in(store, "alice", "wrong password", "test") is None
    assert repo.sign_in(store, "alice", PASSWORD, "test") is not None
    assert repo.sign_in(store, "nobody", PASSWORD, "test") is None
    assert outcomes == [True, True, True]


def test_failed_sign_ins_are_one_audit_row_per_account_and_window(store):
    """Finding 1 (every failed attempt added a permanent audit row): one row per account and window, with counts."""
    add_user(store, "alice")
    add_user(store, "bob")
    for who, pw in [("alice", "wrong password")] * 5 + [("nobody", PASSWORD), ("ghost", "x")] + [("bob", "nope")] * 2:
        assert repo.sign_in(store, who, pw, "api") is None
    with store.session() as s:  # counted, not yet in the trail
        assert s.execute(text("SELECT count(*) FROM audit_log WHERE action = 'login_failed'")).scalar_one() == 0
        assert s.execute(text("SELECT sum(count) FROM login_failures")).scalar_one() == 9
    later = audit.utcnow() + repo.FAILED_LOGIN_WINDOW
    with store.session(write=True) as s:
        assert repo.flush_failed_logins(s, later) == 3
    with store.session(write=True) as s:
        rows, _ = repo.audit_list(s, repo.system("test"), action="login_failed")
    got = {e["actor"]: e["detail"] for e in rows}
    assert set(got) == {"alice", "bob", "anonymous"}
    assert got["alice"]["count"] == 5 and got["alice"]["reasons"] == {"wrong password": 5} and got["alice"]["via"] == {"api": 5}
    assert got["anonymous"]["count"] == 2 and got["anonymous"]["reasons"] == {"unknown user": 2}
    assert got["bob"]["count"] == 2
    start = dt.datetime.fromisoformat(got["alice"]["window_start"])
    assert dt.datetime.fromisoformat(got["alice"]["window_end"]) - start == repo.FAILED_LOGIN_WINDOW
    assert "nobody" not in json.dumps(rows) and "ghost" not in json.dumps(rows)  # typed names are not kept
    with store.session() as s:
        assert s.execute(text("SELECT count(*) FROM login_failures")).scalar_one() == 0
    assert verify(store).ok


def test_failures_in_two_windows_are_two_rows_and_ended_windows_flush_on_the_next_failure(store):
    """Finding 1: the window's row is written when the window has ended (by the next failure, a sign-in, an
    audit listing or verification, or a server start)."""
    alice = add_user(store, "alice")
    t0 = repo.window_start(audit.utcnow()) - 3 * repo.FAILED_LOGIN_WINDOW
    with store.session(write=True) as s:
        for minutes in (1, 2, 16):
            repo.record_failed_login(s, alice.id, "alice", "wrong password", "web", t0 + dt.timedelta(minutes=minutes))
    with store.session(write=True) as s:  # the next failure, now: both ended windows become audit rows
        repo.record_failed_login(s, alice.id, "alice", "wrong password", "web")
    with store.session() as s:
        counts = [json.loads(d)["count"] for (d,) in s.execute(text(
            "SELECT detail FROM audit_log WHERE action = 'login_failed' ORDER BY seq"))]
        assert counts == [2, 1]
        assert s.execute(text("SELECT count FROM login_failures")).scalar_one() == 1


def test_failed_windows_flush_at_server_start(store, db_url, monkeypatch):
    """Finding 1: counts of an ended window are not lost when the server restarts."""
    alice = add_user(store, "alice")
    with store.session(write=True) as s:
        repo.record_failed_login(s, alice.id, "alice", "wrong password", "api",
                                 audit.utcnow() - 2 * repo.FAILED_LOGIN_WINDOW)
    with client_for(db_url, monkeypatch):
        pass
    with store.session() as s:
        assert s.execute(text("SELECT count(*) FROM audit_log WHERE action = 'login_failed'")).scalar_one() == 1


FLOOD = r"""
import sys, threading, time, uuid, httpx
base, seconds = sys.argv[1], float(sys.argv[2])
count = [0]
lock = threading.Lock()
def guess(i):
    names = ["alice", "admin", "root", "u" + uuid.uuid4().hex[:8]]
    with httpx.Client(base_url=base, timeout=60) as c:
        n = 0
        while time.monotonic() < end:
            c.post("/api/v1/auth/login", json={"username": names[n % len(names)], "password": f"guess-{i}-{n}-xyz"})
            n += 1
            with lock:
                count[0] += 1
end = time.monotonic() + seconds
ts = [threading.Thread(target=guess, args=(i,)) for i in range(16)]
print("started", flush=True)
[t.start() for t in ts]
[t.join() for t in ts]
print(count[0], flush=True)
"""


def _timings(c: httpx.Client, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        r = c.get("/api/v1/assessments", params={"patient_ref": "F-1"})
        out.append(time.perf_counter() - t)
        assert r.status_code == 200
    return out


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1]


def test_sign_in_flood_does_not_slow_a_signed_in_user(store):
    """Finding 1, the review's probe: 16 anonymous clients guessing passwords pushed a signed-in user's
    request from 9 ms to 5.5 s.  Throttling is set out of the way here, so that the probe measures the
    password check running outside the write transaction, a few at a time.  The bound is generous and
    relative: p95 under 1 s and under ten times the p95 measured just before (taken as at least 20 ms, as
    the other test worker may load the machine meanwhile).  Before the fix: SQLite 27 ms -> 3.2 s,
    PostgreSQL 44 ms -> 0.9 s; after it about 30 ms -> 70 ms on both."""
    from tests.test_store_http import server

    alice = add_user(store, "alice")
    save(store, alice, "F-1")
    token = add_token(store, "alice")
    env = {"SPINEMETS_DATABASE_URL": store.url.render_as_string(hide_password=False),
           "SPINEMETS_LOGIN_LIMITS_ACCOUNT": "1000000/minute", "SPINEMETS_LOGIN_LIMITS_ADDRESS": "1000000/minute"}
    with server(env, "--no-access-log", "--log-level", "warning") as (base, _), \
            httpx.Client(base_url=base, timeout=60, headers={"authorization": f"Bearer {token}"}) as c:
        _timings(c, 5)  # warm up
        baseline = _timings(c, 40)
        flood = subprocess.Popen([sys.executable, "-c", FLOOD, base, "8"], stdout=subprocess.PIPE, text=True)
        try:
            assert flood.stdout.readline().strip() == "started"
            time.sleep(1.5)  # let the guessers fill the server's queue
            loaded = _timings(c, 40)
        finally:
            out, _ = flood.communicate(timeout=120)
    attempts = int(out.strip().splitlines()[-1])
    base_p95, load_p95 = p95(baseline), p95(loaded)
    print(f"\nsign-in flood ({store.backend}): {attempts} guesses; signed-in request p95 "
          f"{base_p95 * 1000:.1f} ms alone, {load_p95 * 1000:.1f} ms during the flood")
    assert attempts >= 16  # the guessers really ran
    assert load_p95 < 1.0 and load_p95 < 10 * max(base_p95, 0.02), (base_p95, load_p95)
    with store.session() as s:
        # Failed sign-ins are counted per account and 15-minute window and written to the audit trail when the window
        # ends, never one row per guess: a run that straddles a quarter hour writes the ended window (it failed at
        # 21:30 UTC when this read "== 0"). Four account groups guessed (alice, admin, root, unknown names).
        rows = s.execute(text("SELECT count(*) FROM audit_log WHERE action = 'login_failed'")).scalar_one()
    assert rows <= 4 < attempts, (rows, attempts)
    assert verify(store).ok


# --- 2. password reset, token lifetime --------------------------------------------------------------------------------


def test_password_reset_ends_sessions_and_tokens(store, db_url, monkeypatch):
    """Finding 2 (a reset by an admin did not end the user's sessions or API tokens)."""
    add_user(store, "root", "admin")
    add_user(store, "alice")
    admin_token, alice_token = add_token(store, "root"), add_token(store, "alice")
    with client_for(db_url, monkeypatch) as c:
        assert login(c).status_code == 200
        assert c.get("/api/v1/auth/me").status_code == 200
        bearer = {"authorization": f"Bearer {alice_token}"}
        assert c.get("/api/v1/auth/me", headers=bearer).status_code == 200
        r = c.patch("/api/v1/admin/users/alice", json={"password": "a brand new passphrase"},
                    headers={"authorization": f"Bearer {admin_token}"})
        assert r.status_code == 200
        assert c.get("/api/v1/auth/me").status_code == 401  # the browser session has ended
        assert c.get("/api/v1/auth/me", headers=bearer).status_code == 401  # the token is revoked
        assert login(c, password="a brand new passphrase").status_code == 200
        tokens = c.get("/api/v1/auth/tokens").json()["items"]
        assert len(tokens) == 1 and tokens[0]["revoked_at"] is not None
        assert c.get("/api/v1/auth/me", headers={"authorization": f"Bearer {admin_token}"}).status_code == 200
    with store.session(write=True) as s:
        rows, _ = repo.audit_list(s, repo.system("test"), object_id=None, action="update")
    user_row = next(e for e in rows if e["object_type"] == "user")
    assert user_row["detail"]["fields"] == ["password"] and user_row["detail"]["sessions_ended"] == 1
    assert user_row["detail"]["tokens_revoked"] == 1
    assert verify(store).ok


def test_cli_password_reset_ends_tokens(db_url, monkeypatch):
    """Finding 2, at the command line."""
    monkeypatch.setenv("SPINEMETS_DATABASE_URL", db_url)
    assert run_cli("user", "add", "alice", "--password-stdin", stdin=PASSWORD + "\n").returncode == 0
    token = run_cli("token", "create", "alice").stdout.strip()
    r = run_cli("user", "password", "alice", "--password-stdin", stdin="another long passphrase\n")
    assert r.returncode == 0, r.stderr
    st = Store(db_url)
    try:
        with st.session() as s:
            assert auth.token_user(s, token) is None
    finally:
        st.dispose()


def test_a_new_token_secret_is_never_cached(store, db_url, monkeypatch):
    """Finding 2's neighbour: the token secret is shown once, so its response is `Cache-Control: no-store`."""
    add_user(store, "alice")
    with client_for(db_url, monkeypatch) as c:
        r = c.post("/api/v1/auth/tokens", json={"name": "x"}, headers={"authorization": f"Bearer {add_token(store, 'alice')}"})
        assert r.status_code == 201 and r.json()["token"].startswith("smt_") and r.headers["cache-control"] == "no-store"
        assert r.json()["expires_at"] is not None


def test_tokens_expire_by_default(store, monkeypatch):
    """Finding 2 (tokens never expired unless asked): 90 days by default, SPINEMETS_TOKEN_DAYS changes it,
    and an expired token is refused."""
    add_user(store, "alice")
    with store.session(write=True) as s:
        alice = repo.get_user(s, "alice")
        _, row = repo.create_token(s, repo.system("test"), alice, {"name": "default"})
        assert row.expires_at - row.created_at == dt.timedelta(days=90)
        monkeypatch.setenv("SPINEMETS_TOKEN_DAYS", "7")
        secret, row = repo.create_token(s, repo.system("test"), alice, {"name": "short"})
        assert row.expires_at - row.created_at == dt.timedelta(days=7)
        _, row = repo.create_token(s, repo.system("test"), alice, {"name": "long", "days": 400})
        assert row.expires_at - row.created_at == dt.timedelta(days=400)
        assert auth.token_user(s, secret).username == "alice"
    _sql(store, "UPDATE api_tokens SET expires_at = created_at WHERE name = 'short'")
    with store.session() as s:
        assert auth.token_user(s, secret) is None
    monkeypatch.setenv("SPINEMETS_TOKEN_DAYS", "forever")
    from spinemets.store.db import StoreConfigError

    with pytest.raises(StoreConfigError, match="SPINEMETS_TOKEN_DAYS"):
        auth.token_days()


def test_migration_gives_old_tokens_an_expiry_and_baselines_the_chain(backend, pg, sqlite_template, tmp_path):
    """Findings 2 and 4 on a database of the previous version: tokens that never expired get an expiry date,
    and existing users, tokens and assessments enter the chain, so that verify covers them from then on."""
    url, cleanup = new_database(backend, pg, sqlite_template, tmp_path, migrated=False)
    st = Store(url)
    try:
        st.upgrade("0001")
        with st.engine.begin() as c:  # rows as the previous version wrote them (no content digests)
            c.exec_driver_sql("INSERT INTO users (username, password_hash, role, active, created_at) VALUES "
                              "('old', 'x', 'admin', true, CURRENT_TIMESTAMP)")
            c.exec_driver_sql("INSERT INTO api_tokens (user_id, name, token_hash, prefix, created_at) VALUES "
                              "(1, 'cli', 'h', 'smt_', CURRENT_TIMESTAMP)")
        assert st.upgrade() == "0002"
        with st.session() as s:
            expires = s.execute(text("SELECT expires_at FROM api_tokens")).scalar_one()
            assert expires is not None
            kinds = [r[0] for r in s.execute(text("SELECT object_type FROM audit_log WHERE action = 'baseline'"))]
            assert kinds == ["user", "api_token"]
        assert verify(st).ok
        _sql(st, "UPDATE users SET active = false")
        assert not verify(st).ok
    finally:
        st.dispose()
        cleanup()


# --- 3. the password rule ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("password,words", [
    ("aaaaaaaaaa", "too easy to guess"),
    ("password12", "too common"),
    ("Password2024!", "too common"),
    ("qwertyuiop", "too common"),
    ("iloveyou123", "too common"),
    ("abcdefghijkl", "too easy to guess"),
    ("abcabcabcabc", "too easy to guess"),
    ("carol.smith", "is the user name"),
    ("Carol.Smith-2024", "contains the user name"),
    ("spinemets rocks", "contains the name of this program"),
    ("s3cr3t!", "too short: use at least 10 characters"),
    ("x" * 1025, "too long: use at most 1024 characters"),
])
def test_password_rule_refuses_weak_passwords(store, password, words):
    """Finding 3 (length was the only rule: `aaaaaaaaaa` and `password12` passed)."""
    with pytest.raises(InvalidInputError) as e, store.session(write=True) as s:
        repo.create_user(s, repo.system("test"), {"username": "carol.smith", "password": password})
    assert e.value.field == "user.password" and words in e.value.message
    assert password not in str(e.value)


@pytest.mark.parametrize("password", [
    "correct horse battery",  # words, spaces, all lower case: no composition rules
    "tulips in the rain",
    "Tr0ub4dor&3x",
    "naïve café olé 2024",
    "zz" + "horse staple " * 6,  # 64 characters and more are fine
    "q" + "w9" * 511 + "x",  # up to 1024 characters
])
def test_password_rule_accepts_without_composition_rules(store, password):
    """Finding 3: no composition rules, long passwords allowed (NIST SP 800-63B)."""
    with store.session(write=True) as s:
        repo.create_user(s, repo.system("test"), {"username": "dave", "password": password})
    assert repo.sign_in(store, "dave", password, "test") is not None


def test_password_rule_on_reset_and_in_the_api(store, db_url, monkeypatch):
    """Finding 3: the rule applies to a reset (with the user's own name) and answers 422 naming the field."""
    add_user(store, "alice")
    with pytest.raises(InvalidInputError, match="user.password: contains the user name"), store.session(write=True) as s:
        repo.update_user(s, repo.system("test"), "alice", {"password": "alice in wonderland"})
    add_user(store, "root", "admin")
    token = add_token(store, "root")
    with client_for(db_url, monkeypatch) as c:
        r = c.post("/api/v1/admin/users", json={"username": "erin", "password": "password12"},
                   headers={"authorization": f"Bearer {token}"})
        assert r.status_code == 422 and r.json()["field"] == "user.password" and "too common" in r.json()["detail"]
        assert "password12" not in r.text
    assert len(auth.common_passwords()) >= 30000


# --- 4. the audit chain covers the stored data -----------------------------------------------------------------------

SINS_14 = case_with(sins={"alignment": "normal", "collapse": "over_50", "posterolateral": "bilateral"})


def _world(store):
    alice, bob = add_user(store, "alice"), add_user(store, "bob")
    private = save(store, alice, "P-1", case=SINS_14, note="first look")
    save(store, bob, "P-2", shared=True)
    add_token(store, "bob")
    with store.session(write=True) as s:
        a, _ = repo.get(s, alice, private)
        assert (a.result_document["sins"]["total"], a.result_document["sins"]["category"]) == (14, "unstable")
        assert a.shared is False
    v = verify(store)
    assert v.ok and v.checked == {"assessment": 2, "user": 2, "api_token": 1}, v.problems
    return alice, private


def _tampering(store, private: str) -> dict[str, tuple[str, str]]:
    pg = store.backend == "postgresql"
    result = ("jsonb_set(jsonb_set(result_document, '{sins,total}', '4'), '{sins,category}', '\"stable\"')" if pg
              else "json_set(result_document, '$.sins.total', 4, '$.sins.category', 'stable')")
    hashed = auth.hash_password("mallory's own password")
    return {
        "deleted": (f"DELETE FROM assessments WHERE id = '{private}'",
                    f"assessment {private}: in the audit trail but not in the database (deleted outside"),
        "result": (f"UPDATE assessments SET sins_total = 4, sins_category = 'stable', result_document = {result} "
                   f"WHERE id = '{private}'", f"assessment {private}: its stored content differs from the audit trail"),
        "shared": (f"UPDATE assessments SET shared = true WHERE id = '{private}'",
                   f"assessment {private}: its stored content differs"),
        "note": (f"UPDATE assessments SET note = 'rewritten' WHERE id = '{private}'",
                 f"assessment {private}: its stored content differs"),
        "admin": ("INSERT INTO users (username, password_hash, role, active, created_at) VALUES "
                  f"('mallory', '{hashed}', 'admin', true, CURRENT_TIMESTAMP)",
                  "user 3 ('mallory', admin): not in the audit trail (added outside the application)"),
        "role": ("UPDATE users SET role = 'admin' WHERE username = 'alice'",
                 "user 1 ('alice', admin): its stored content differs from the audit trail"),
        "password": (f"UPDATE users SET password_hash = '{hashed}' WHERE username = 'bob'",
                     "user 2 ('bob', clinician): its stored content differs"),
        "token": ("INSERT INTO api_tokens (user_id, name, token_hash, prefix, created_at) VALUES "
                  "(1, 'x', 'feed', 'smt_x', CURRENT_TIMESTAMP)", "API token 2: not in the audit trail"),
        "expiry": ("UPDATE api_tokens SET expires_at = NULL", "API token 1: its stored content differs"),
    }


@pytest.mark.parametrize("case", ["deleted", "result", "shared", "note", "admin", "role", "password", "token",
                                  "expiry"])
def test_verify_detects_stored_data_changed_with_sql(store, case):
    """Finding 4 (deleting an assessment, changing a stored result from SINS 14 unstable to 4 stable, making a
    private one shared or inserting an admin with SQL all left `audit verify` at 0)."""
    alice, private = _world(store)
    sql, words = _tampering(store, private)[case]
    _sql(store, sql)
    if case == "result":  # the change took: the application would now show SINS 4, stable
        with store.session(write=True) as s:
            a, _ = repo.get(s, alice, private)
            assert (a.sins_total, a.result_document["sins"]["total"], a.result_document["sins"]["category"]) == (4, 4, "stable")
    v = verify(store)
    assert not v.ok and any(words in p for p in v.problems), v.problems
    assert len(v.problems) == 1, v.problems  # nothing else is reported


def test_verify_at_the_command_line_exits_4_on_a_changed_result(store, db_url, monkeypatch):
    """Finding 4 through `spinemets audit verify` (exit 4, the problem on standard error)."""
    _, private = _world(store)
    _sql(store, _tampering(store, private)["result"][0])
    monkeypatch.setenv("SPINEMETS_DATABASE_URL", db_url)
    r = run_cli("audit", "verify")
    assert r.returncode == 4 and f"assessment {private}: its stored content differs" in r.stderr


def test_changes_made_by_the_application_keep_verify_ok(store):
    """Finding 4: every change the application makes carries the new digest (no false alarms)."""
    alice, private = _world(store)
    with store.session(write=True) as s:
        repo.update(s, alice, private, {"note": "second look", "shared": True, "study_date": "2024-01-02"})
        repo.update_user(s, repo.system("test"), "bob", {"role": "admin"})
        repo.update_user(s, repo.system("test"), "bob", {"password": "an entirely new passphrase"})
        repo.update_user(s, repo.system("test"), "alice", {"active": False})
        repo.update_user(s, repo.system("test"), "alice", {"active": True})
        repo.revoke_token(s, alice, repo.create_token(s, alice, repo.get_user(s, "alice"), {})[1].id)
    from argon2 import PasswordHasher

    with store.session(write=True) as s:  # a hash with older argon2 parameters, as an older version stored it
        u = repo.get_user(s, "alice")
        u.password_hash = PasswordHasher(time_cost=1).hash(PASSWORD)
        repo._log(s, repo.system("test"), "update", "user", str(u.id), content=audit.digest_of(s, u))
    assert repo.sign_in(store, "alice", PASSWORD, "test") is not None  # rehashes, and records the new digest
    with store.session() as s:
        assert repo.get_user(s, "alice").password_hash.startswith("$argon2id$v=19$m=65536,t=3")
    v = verify(store)
    assert v.ok, v.problems
    assert "stored data matches it (2 assessments, 2 users, 2 API tokens)" in v.to_text()


# --- 5. no 500s -----------------------------------------------------------------------------------------------------


def test_ids_beyond_the_integer_range_are_not_500(store, db_url, monkeypatch):
    """Finding 5 (a token id beyond the integer range answered 500)."""
    add_user(store, "alice", "admin")
    token = add_token(store, "alice")
    h = {"authorization": f"Bearer {token}"}
    huge = "99999999999999999999"
    with client_for(db_url, monkeypatch) as c:
        for tid in (huge, str(2**63), str(2**31), "0", "-1"):
            r = c.delete(f"/api/v1/auth/tokens/{tid}", headers=h)
            assert r.status_code == 404 and r.json()["field"] == "id", (tid, r.text)
        r = c.get(f"/api/v1/admin/audit?before={huge}", headers=h)
        assert r.status_code == 422 and r.json()["field"] == "before"
        r = c.get(f"/api/v1/assessments?offset={huge}", headers=h)
        assert r.status_code == 422 and r.json()["field"] == "offset"
        assert login(c).status_code == 200
        csrf = c.get("/api/v1/auth/me").json()["csrf_token"]
        r = c.post(f"/account/tokens/{huge}/revoke", data={"csrf_token": csrf})
        assert r.status_code == 404 and "no token" in r.text


@pytest.mark.parametrize("method,path,body,field", [
    ("POST", "/api/v1/assessments", '{"case": CASE, "patient_ref": "P1", "note": "pain \\ud800 at T12"}', "assessment.note"),
    ("POST", "/api/v1/assessments", '{"case": CASE, "patient_ref": "P1", "note": "nul \\u0000 here"}', "assessment.note"),
    ("POST", "/api/v1/assessments", '{"case": CASEX, "patient_ref": "P1"}', "assessment.case.case_id"),
    ("PATCH", "/api/v1/assessments/{id}", '{"note": "\\udfff"}', "update.note"),
    ("POST", "/api/v1/admin/users", '{"username": "erin", "password": "long enough \\ud800 pass"}', "user.password"),
    ("POST", "/api/v1/auth/tokens", '{"name": "t\\ud800"}', "token.name"),
])
def test_text_a_database_cannot_store_is_422_naming_the_field(store, db_url, monkeypatch, method, path, body, field):
    """Finding 5 (a lone surrogate in an assessment note answered 500; a NUL character would on PostgreSQL)."""
    alice = add_user(store, "alice", "admin")
    aid = save(store, alice)
    token = add_token(store, "alice")
    case_x = json.dumps(CASE).replace('"example-renal-T12"', '"case \\ud83d"')
    body = body.replace("CASEX", case_x).replace("CASE", json.dumps(CASE))
    with client_for(db_url, monkeypatch) as c:
        r = c.request(method, path.format(id=aid), content=body.encode(),
                      headers={"authorization": f"Bearer {token}", "content-type": "application/json"})
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert r.json()["field"] == field and ("cannot be stored" in detail or "valid string" in detail), detail
    with store.session() as s:
        assert s.execute(text("SELECT count(*) FROM assessments")).scalar_one() == 1
        assert s.execute(text("SELECT note FROM assessments")).scalar_one() == ""
    assert verify(store).ok


def test_a_lone_surrogate_in_a_password_at_sign_in_is_no_500(store, db_url, monkeypatch):
    """Finding 5: the password check never fails on text it cannot encode."""
    add_user(store, "alice")
    assert auth.verify_password(auth.hash_password(PASSWORD), "x\ud800") is False
    with client_for(db_url, monkeypatch) as c:
        r = c.post("/api/v1/auth/login", content=b'{"username": "alice", "password": "pw \\ud800 pw"}',
                   headers={"content-type": "application/json"})
        assert r.status_code in (401, 422), r.text


# --- 6. the command line and the database ---------------------------------------------------------------------------


def test_audit_verify_refuses_a_missing_database(tmp_path):
    """Finding 6 (`audit verify` on a mistyped path created an empty database and reported ok)."""
    missing = tmp_path / "mistyped" / "spinemets.db"
    for env in ({"SPINEMETS_DATABASE_URL": f"sqlite:///{missing}"}, {"SPINEMETS_DATA_DIR": str(missing.parent)}):
        for args in (["audit", "verify"], ["audit", "list"], ["user", "list"], ["assessment", "list", "--user", "x"]):
            r = subprocess.run([SPINEMETS, *args], capture_output=True, text=True, timeout=60,
                               env={**os.environ, **env})
            assert r.returncode == 2, (args, r.stdout, r.stderr)
            assert f"error: database {missing} does not exist; check " in r.stderr
            assert "Traceback" not in r.stderr and r.stdout == ""
        r = subprocess.run([SPINEMETS, "db", "current"], capture_output=True, text=True, timeout=60,
                           env={**os.environ, **env})
        assert r.returncode == 0 and "no such file yet" in r.stdout
        assert not missing.parent.exists()  # neither the file nor its folder was made


def test_an_unreachable_database_is_one_line_exit_2():
    """Finding 6 (an unreachable database printed a traceback)."""
    from spinemets.api.devserver import free_port

    env = {**os.environ, "SPINEMETS_DATABASE_URL": f"postgresql://u:topsecret@127.0.0.1:{free_port()}/x"}
    for args in (["audit", "verify"], ["user", "list"], ["db", "upgrade"], ["db", "current"],
                 ["user", "add", "x1", "--password-stdin"]):
        r = subprocess.run([SPINEMETS, *args], capture_output=True, text=True, timeout=60, env=env,
                           input=PASSWORD + "\n")
        assert r.returncode == 2, (args, r.stderr)
        assert r.stderr.startswith("error: database postgresql://u:***@127.0.0.1:") and "cannot use it: " in r.stderr
        assert "Traceback" not in r.stderr and "topsecret" not in r.stderr and len(r.stderr.splitlines()) == 1


# --- 7. the first admin ----------------------------------------------------------------------------------------------


def _setup_link(capsys) -> str:
    out = capsys.readouterr().out
    m = re.search(r"http://127\.0\.0\.1:\d+(/setup\?token=[\w-]+)", out)
    assert m, out
    return m.group(1)


def test_first_admin_set_up_page(db_url, monkeypatch, capsys):
    """Finding 7 (no way to create the first admin from the web app): a one-time page, from this machine
    only, with the printed token and a CSRF token, only while there is no admin."""
    from tests.test_security import _Scan, assert_security_headers

    with client_for(db_url, monkeypatch) as c:
        link = _setup_link(capsys)
        token = link.split("token=")[1]
        r = c.get(link)
        assert r.status_code == 200 and 'data-testid="setup-form"' in r.text
        assert_security_headers(r)
        assert r.headers["cache-control"] == "no-store" and r.headers["referrer-policy"] == "no-referrer"
        scan = _Scan()
        scan.feed(r.text)
        assert scan.inline_scripts == 0 and not scan.handlers and scan.styles == 0
        assert not [i for i, wrapped in scan.inputs if not wrapped and i not in scan.labels_for]
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', r.text).group(1)
        assert "spinemets_setup_csrf" in r.headers["set-cookie"] and "samesite=strict" in r.headers["set-cookie"].lower()
        assert c.get("/setup").status_code == 403 and c.get("/setup?token=wrong").status_code == 403
        assert c.get(link, headers={"x-forwarded-for": "203.0.113.9"}).status_code == 404
        form = {"token": token, "username": "chief", "password": PASSWORD, "password_again": PASSWORD,
                "csrf_token": csrf}
        r = c.post("/setup", data={**form, "csrf_token": "forged"})
        assert r.status_code == 403 and "expired" in r.text
        r = c.post("/setup", data={**form, "password_again": "something else"})
        assert r.status_code == 422 and "The two passwords differ" in r.text
        r = c.post("/setup", data={**form, "password": "password12", "password_again": "password12"})
        assert r.status_code == 422 and "Too common" in r.text and 'aria-invalid="true"' in r.text
        r = c.post("/setup", data=form)
        assert r.status_code == 303 and r.headers["location"] == "/admin"
        assert "spinemets_session" in r.headers["set-cookie"]
        assert c.get("/admin").status_code == 200  # signed in as the new admin
        me = c.get("/api/v1/auth/me").json()["user"]
        assert (me["username"], me["role"]) == ("chief", "admin")
        assert c.get(link).status_code == 404  # once: there is an admin now
        assert c.post("/setup", data={**form, "username": "second"}).status_code == 404
    st = Store(db_url)
    try:
        with st.session() as s:
            assert s.execute(text("SELECT count(*) FROM setup_tokens")).scalar_one() == 0
            assert s.execute(text("SELECT username FROM users WHERE role = 'admin'")).scalars().all() == ["chief"]
        assert verify(st).ok
    finally:
        st.dispose()


def test_set_up_page_only_for_this_machine(db_url, monkeypatch, capsys):
    """Finding 7: another client address gets 404, even with the right link."""
    with client_for(db_url, monkeypatch, client=("192.0.2.7", 40000)) as c:
        link = _setup_link(capsys)
        assert c.get(link).status_code == 404
        c.cookies.set("spinemets_setup_csrf", "a")
        r = c.post("/setup", data={"token": link.split("token=")[1], "username": "x", "password": PASSWORD,
                                   "password_again": PASSWORD, "csrf_token": "a"})
        assert r.status_code == 404
    with client_for(db_url, monkeypatch, client=("::1", 40000)) as c:
        assert c.get(_setup_link(capsys)).status_code == 200


def test_no_set_up_link_when_there_is_an_admin(store, db_url, monkeypatch, capsys):
    add_user(store, "root", "admin")
    with client_for(db_url, monkeypatch) as c:
        assert "/setup?token=" not in capsys.readouterr().out
        assert c.get("/setup?token=anything").status_code == 404


def test_serve_prints_a_one_time_set_up_link(tmp_path):
    """Finding 7: `spinemets serve` prints the link (with its own port) when there is no admin."""
    from tests.test_store_http import server

    log = tmp_path / "serve.log"
    with server({"SPINEMETS_DATA_DIR": str(tmp_path / "data")}, "--no-access-log", log=log) as (base, _):
        out = log.read_text()
        m = re.search(r"(http://127\.0\.0\.1:\d+)/setup\?token=([\w-]+)", out)
        assert m and m.group(1) == base, out
        assert "there is no admin yet" in out
        r = httpx.get(f"{base}/setup?token={m.group(2)}")
        assert r.status_code == 200 and "Create the first admin" in r.text


def test_user_add_without_a_terminal_says_to_use_password_stdin(tmp_path):
    """Finding 7 (`user add` without a terminal failed unless one knew --password-stdin; with standard input
    closed it crashed)."""
    env = {**os.environ, "SPINEMETS_DATA_DIR": str(tmp_path / "data")}
    for stdin in (subprocess.DEVNULL, "closed"):
        if stdin == "closed":
            r = subprocess.run(["sh", "-c", f"'{SPINEMETS}' user add bob <&-"], capture_output=True, text=True,
                               timeout=60, env=env)
        else:
            r = subprocess.run([SPINEMETS, "user", "add", "bob"], stdin=stdin, capture_output=True, text=True,
                               timeout=60, env=env)
        assert r.returncode == 2, r.stderr
        assert r.stderr.startswith("error: password: no terminal to ask for the password; give it on standard "
                                   "input with --password-stdin")
        assert "Traceback" not in r.stderr
    r = subprocess.run(["sh", "-c", f"'{SPINEMETS}' user add bob --password-stdin <&-"], capture_output=True,
                       text=True, timeout=60, env=env)
    assert r.returncode == 2 and "standard input is closed" in r.stderr and "Traceback" not in r.stderr
