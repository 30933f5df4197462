"""The store over real HTTP (`spinemets serve` in a subprocess): many concurrent writers lose nothing, a server
killed with SIGKILL mid-write keeps every acknowledged write and a valid audit chain, no patient text reaches
the log, the pages work with sign-in and CSRF, and a fresh machine starts with the SQLite default."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from spinemets.api.devserver import free_port
from tests.store_support import PASSWORD, add_token, add_user
from tests.support import CASE, QUIET, SPINEMETS, check_page, server

SECRET_REF = "PRIVREF-7731"
SECRET_NOTE = "Mrs Privatename has back pain"


def _count(store) -> int:
    from sqlalchemy import text

    with store.session() as s:
        return int(s.execute(text("SELECT count(*) FROM assessments")).scalar_one())


# --- concurrency ----------------------------------------------------------------------------------------------


def test_concurrent_writers_lose_nothing(store):
    threads_n, per_thread = 16, 20
    users = [f"user{i}" for i in range(4)]
    for u in users:
        add_user(store, u)
    tokens = [add_token(store, u) for u in users]
    acked: list[str] = []
    errors: list[str] = []
    lock = threading.Lock()

    with server({"SPINEMETS_DATABASE_URL": str(store.url.render_as_string(hide_password=False))},
                *QUIET) as (base, _):
        def work(i: int) -> None:
            with httpx.Client(base_url=base, timeout=60,
                              headers={"authorization": f"Bearer {tokens[i % len(tokens)]}"}) as c:
                for j in range(per_thread):
                    r = c.post("/api/v1/assessments", json={"case": CASE, "patient_ref": f"C-{i}", "note": f"{i}/{j}"})
                    with lock:
                        (acked.append(r.json()["id"]) if r.status_code == 201 else errors.append(r.text[:200]))

        ts = [threading.Thread(target=work, args=(i,)) for i in range(threads_n)]
        [t.start() for t in ts]
        [t.join() for t in ts]
        assert not errors, errors[:3]
        assert len(acked) == len(set(acked)) == threads_n * per_thread
        with httpx.Client(base_url=base, headers={"authorization": f"Bearer {tokens[0]}"}) as c:
            r = c.get("/api/v1/assessments", params={"patient_ref": "C-0"})
            assert r.json()["count"] == per_thread and sorted(int(i["id"] != "") for i in r.json()["items"])
    assert _count(store) == threads_n * per_thread
    from spinemets.store import audit

    with store.session() as s:
        v = audit.verify(s)
        creates = s.execute(audit.select(audit.AuditEntry.object_id).where(audit.AuditEntry.action == "create",
                                                                            audit.AuditEntry.object_type == "assessment")).scalars().all()
    assert v.ok and set(creates) == set(acked)


# --- SIGKILL in the middle of writes ----------------------------------------------------------------------------


def _writers(base: str, token: str, prefix: str, acked: list[str], stop: threading.Event, *, on_error: str,
             after: tuple[threading.Event, list[str]] | None = None, n: int = 8) -> list[threading.Thread]:
    """*n* clients saving assessments until *stop*; each acknowledged id goes to *acked* (and to the list of
    *after* once its event is set).  On a connection error a client stops ("stop": the server is gone) or tries
    again ("retry": another worker will answer)."""
    lock = threading.Lock()

    def work(i: int) -> None:
        with httpx.Client(base_url=base, timeout=30, headers={"authorization": f"Bearer {token}"}) as c:
            k = 0
            while not stop.is_set():
                try:
                    r = c.post("/api/v1/assessments", json={"case": CASE, "patient_ref": f"{prefix}-{i}", "note": str(k)})
                except httpx.HTTPError:
                    if on_error == "stop":
                        return
                    continue
                if r.status_code == 201:
                    with lock:
                        acked.append(r.json()["id"])
                        if after is not None and after[0].is_set():
                            after[1].append(r.json()["id"])
                k += 1

    threads = [threading.Thread(target=work, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    return threads


def test_sigkill_mid_write_keeps_every_acknowledged_write(store, tmp_path):
    add_user(store, "alice")
    token = add_token(store, "alice")
    url = store.url.render_as_string(hide_password=False)
    acked: list[str] = []
    stop = threading.Event()

    with server({"SPINEMETS_DATABASE_URL": url}, *QUIET) as (base, proc):
        ts = _writers(base, token, "K", acked, stop, on_error="stop")
        deadline = time.monotonic() + 20
        while len(acked) < 60 and time.monotonic() < deadline:
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)  # mid-write: eight clients are sending
        proc.wait()
        stop.set()
        [t.join(timeout=30) for t in ts]
    assert len(acked) >= 60
    # Restart on the same database: every acknowledged write is there and the audit chain verifies.
    with server({"SPINEMETS_DATABASE_URL": url}, *QUIET) as (base, _):
        with httpx.Client(base_url=base, headers={"authorization": f"Bearer {token}"}) as c:
            for aid in acked[:: max(1, len(acked) // 10)]:
                assert c.get(f"/api/v1/assessments/{aid}").status_code == 200
    from sqlalchemy import select

    from spinemets.store.models import Assessment

    with store.session() as s:
        present = set(s.scalars(select(Assessment.id)))
    assert set(acked) <= present
    r = subprocess.run([SPINEMETS, "audit", "verify"], capture_output=True,
                       text=True, env={**os.environ, "SPINEMETS_DATABASE_URL": url}, timeout=60)
    assert r.returncode == 0 and r.stdout.startswith("audit verify: ok"), r.stdout + r.stderr


# --- several worker processes over one store ---------------------------------------------------------------------


def _workers_of(pid: int) -> list[int]:
    """The uvicorn worker processes of a `spinemets serve --workers N` (children running multiprocessing.spawn)."""
    out = []
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue
        if b"spawn_main" in cmdline:
            out.append(int(child))
    return out


def test_four_workers_one_killed_mid_write_keep_every_acknowledged_write_and_one_chain(store):
    """Four processes write at once over one database; one is killed with SIGKILL while eight clients send; uvicorn
    starts another; every acknowledged write is stored once, the audit trail is one verifiable chain."""
    add_user(store, "alice")
    token = add_token(store, "alice")
    url = store.url.render_as_string(hide_password=False)
    acked: list[str] = []
    after_kill: list[str] = []
    stop = threading.Event()
    killed = threading.Event()

    with server({"SPINEMETS_DATABASE_URL": url}, "--workers", "4", *QUIET, timeout=120) as (base, proc):
        deadline = time.monotonic() + 60
        while len(_workers_of(proc.pid)) < 4 and time.monotonic() < deadline:
            time.sleep(0.1)
        workers = _workers_of(proc.pid)
        assert len(workers) == 4, workers
        # a connection on the killed worker fails: the client tries again, on another
        ts = _writers(base, token, "W", acked, stop, on_error="retry", after=(killed, after_kill))
        deadline = time.monotonic() + 60
        while len(acked) < 80 and time.monotonic() < deadline:
            time.sleep(0.02)
        os.kill(workers[0], signal.SIGKILL)  # mid-write
        killed.set()
        deadline = time.monotonic() + 60
        while len(after_kill) < 80 and time.monotonic() < deadline:
            time.sleep(0.05)
        deadline = time.monotonic() + 60
        while len(_workers_of(proc.pid)) < 4 and time.monotonic() < deadline:
            time.sleep(0.1)
        replaced = _workers_of(proc.pid)
        stop.set()
        [t.join(timeout=60) for t in ts]
    assert len(after_kill) >= 80, "the other workers went on serving"
    assert len(replaced) == 4 and workers[0] not in replaced, "uvicorn started a new worker"
    assert len(acked) == len(set(acked))
    from sqlalchemy import select

    from spinemets.store import audit
    from spinemets.store.models import Assessment

    with store.session() as s:
        present = set(s.scalars(select(Assessment.id)))
        creates = s.execute(select(audit.AuditEntry.object_id).where(
            audit.AuditEntry.action == "create", audit.AuditEntry.object_type == "assessment")).scalars().all()
        assert audit.verify(s).ok
    assert set(acked) <= present
    assert set(acked) <= set(creates) and len(creates) == len(set(creates)), "one audit entry per stored write"
    r = subprocess.run([SPINEMETS, "audit", "verify"], capture_output=True,
                       text=True, env={**os.environ, "SPINEMETS_DATABASE_URL": url}, timeout=60)
    assert r.returncode == 0 and r.stdout.startswith("audit verify: ok"), r.stdout + r.stderr


def test_four_workers_print_one_set_up_link_and_it_works(tmp_path):
    log = tmp_path / "serve.log"
    env = {"SPINEMETS_DATA_DIR": str(tmp_path / "data")}
    with server(env, "--workers", "4", *QUIET, log=log, timeout=120) as (base, proc):
        deadline = time.monotonic() + 60
        while len(_workers_of(proc.pid)) < 4 and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)  # every worker has opened the store
        links = [line.strip() for line in log.read_text().splitlines() if "/setup?token=" in line]
        assert len(links) == 1, links
        path = links[0][links[0].index("/setup?"):]
        assert httpx.get(base + path, timeout=10).status_code == 200
    # a new start is a new link (the last one may have been lost)
    with server(env, "--workers", "2", *QUIET, log=log, timeout=120) as (base, proc):
        deadline = time.monotonic() + 60
        while len(_workers_of(proc.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)
        assert len([line for line in log.read_text().splitlines() if "/setup?token=" in line]) == 1


# --- privacy of the application log ----------------------------------------------------------------------------


def test_no_patient_text_in_the_application_log(tmp_path):
    log = tmp_path / "server.log"
    env = {"SPINEMETS_DATA_DIR": str(tmp_path / "data"), "SPINEMETS_ADMIN_PASSWORD": PASSWORD}
    with server(env, "--log-level", "debug", log=log) as (base, _):
        with httpx.Client(base_url=base) as c:
            r = c.post("/api/v1/auth/login", json={"username": "admin", "password": PASSWORD})
            h = {"x-csrf-token": r.json()["csrf_token"]}
            r = c.post("/api/v1/assessments", json={"case": {**CASE, "case_id": SECRET_REF}, "patient_ref": SECRET_REF,
                                                    "note": SECRET_NOTE}, headers=h)
            aid = r.json()["id"]
            c.get("/api/v1/assessments", params={"patient_ref": SECRET_REF})
            c.get(f"/assessments?patient_ref={SECRET_REF}")
            c.patch(f"/api/v1/assessments/{aid}", json={"note": SECRET_NOTE + " again"}, headers=h)
            assert c.post("/api/v1/assessments", json={"case": CASE, "patient_ref": "Jane Privatename"}, headers=h).status_code == 422
            c.post("/api/v1/assessments", json={"case": CASE, "patient_ref": SECRET_REF, "note": SECRET_NOTE * 200}, headers=h)
            c.get(f"/api/v1/assessments/{aid}/export")
            c.post("/api/v1/auth/login", json={"username": "Privatename", "password": "x"})
            c.get(f"/noms?histology={SECRET_NOTE}")
    text = log.read_text()
    assert "GET /api/v1/assessments?[redacted]" in text  # the access log is on, without its query strings
    for secret in (SECRET_REF, "Privatename", "back pain", PASSWORD):
        assert secret not in text, f"{secret!r} in the server log"


# --- the pages, with sign-in and CSRF ---------------------------------------------------------------------------


def _csrf_field(html: str) -> str:
    import re

    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def test_web_sign_in_save_list_compare_and_sign_out(tmp_path):
    env = {"SPINEMETS_DATA_DIR": str(tmp_path / "data"), "SPINEMETS_ADMIN_PASSWORD": PASSWORD,
           "SPINEMETS_ADMIN_USER": "chief"}
    with server(env, *QUIET) as (base, _), \
            httpx.Client(base_url=base, follow_redirects=False) as c:
        r = c.get("/assessments")
        assert r.status_code == 401 and 'action="/login"' in r.text
        r = c.get("/login")
        login_csrf = _csrf_field(r.text)
        r = c.post("/login", data={"username": "chief", "password": PASSWORD, "csrf_token": "forged"})
        assert r.status_code == 403 and "spinemets_session" not in r.headers.get("set-cookie", "")
        r = c.post("/login", data={"username": "chief", "password": "wrong password", "csrf_token": login_csrf})
        assert r.status_code == 401 and "Wrong user name or password" in r.text
        r = c.post("/login", data={"username": "chief", "password": PASSWORD, "csrf_token": login_csrf,
                                   "next": "https://evil.example/"})
        assert r.status_code == 303 and r.headers["location"] == "/assessments"
        cookie = r.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie  # plain HTTP on loopback: not Secure
        # assess, then save from the result page
        r = c.post("/assess", data={"case": json.dumps(CASE)})
        assert r.status_code == 200 and 'data-testid="save-form"' in r.text
        csrf = _csrf_field(r.text)
        form = {"case": json.dumps(CASE), "patient_ref": "W-1", "study_date": "2024-01-05", "note": "first", "csrf_token": csrf}
        assert c.post("/assessments", data={**form, "csrf_token": ""}).status_code == 403
        r = c.post("/assessments", data={**form, "patient_ref": "John Smith"})
        assert r.status_code == 422 and "patient_ref" in r.text and 'aria-invalid="true"' in r.text
        r = c.post("/assessments", data=form)
        assert r.status_code == 303
        first = r.headers["location"]
        r = c.post("/assessments", data={**form, "study_date": "", "note": "second", "shared": "yes"})
        second = r.headers["location"]
        pages = ["/assessments", "/assessments?patient_ref=W-*", first, second, second + "/compare", "/admin",
                 "/admin?verify=1", "/account", "/login", "/logout"]
        for path in pages:
            r = c.get(path)
            assert r.status_code == 200, path
            check_page(r)
        assert "2 assessments" in c.get("/assessments?patient_ref=W-1").text
        r = c.get(second + "/compare")
        assert "<svg" in r.text and 'data-testid="compare-table"' in r.text
        assert "Chain intact" in c.get("/admin?verify=1").text
        r = c.post(first, data={"note": "<script>alert(1)</script>", "csrf_token": csrf})
        assert r.status_code == 303
        assert "&lt;script&gt;alert(1)" in c.get(first).text
        r = c.post("/account/tokens", data={"name": "script", "csrf_token": csrf})
        token = r.text.split('data-testid="new-token"')[1].split("<code>")[1].split("</code>")[0]
        assert httpx.get(base + "/api/v1/auth/me", headers={"authorization": f"Bearer {token}"}).status_code == 200
        assert c.post("/logout", data={"csrf_token": "nope"}).status_code == 403
        assert c.post("/logout", data={"csrf_token": csrf}).status_code == 303
        assert c.get("/assessments").status_code == 401


# --- a fresh machine ----------------------------------------------------------------------------------------------


def test_fresh_machine_default_sqlite_and_first_admin(tmp_path):
    data = tmp_path / "not" / "yet" / "there"
    env = {"SPINEMETS_DATA_DIR": str(data), "SPINEMETS_ADMIN_PASSWORD": PASSWORD}
    with server(env, "--no-access-log") as (base, _):
        assert (data / "spinemets.db").exists()
        r = httpx.post(base + "/api/v1/auth/login", json={"username": "admin", "password": PASSWORD})
        assert r.status_code == 200 and r.json()["user"]["role"] == "admin"
    env2 = {**os.environ, "SPINEMETS_DATA_DIR": str(tmp_path / "cli" / "data")}
    for args, words in ((["db", "current"], "at revision (none): needs `spinemets db upgrade`"),
                        (["db", "upgrade"], "is at revision 0002"), (["db", "current"], "revision 0002: up to date")):
        r = subprocess.run([SPINEMETS, *args], capture_output=True, text=True,
                           env=env2, timeout=60)
        assert r.returncode == 0 and words in r.stdout, r.stdout + r.stderr


def test_unusable_default_folder_disables_only_the_store(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with server({"SPINEMETS_DATA_DIR": str(blocker / "data")}, "--no-access-log") as (base, _):
        assert httpx.post(base + "/api/v1/sins", json={"level": "T12"}).status_code == 200
        r = httpx.get(base + "/api/v1/assessments")
        assert r.status_code == 503 and r.json()["type"] == "/problems/storage-unavailable"
        assert httpx.get(base + "/sins").status_code == 200


def test_a_broken_database_url_stops_the_server_with_a_clear_message():
    port = free_port()
    r = subprocess.run([SPINEMETS, "serve", "--port", str(port)],
                       capture_output=True, text=True, timeout=60,
                       env={**os.environ, "SPINEMETS_DATABASE_URL": f"postgresql://u:topsecret@127.0.0.1:{free_port()}/x"})
    assert r.returncode != 0
    out = r.stdout + r.stderr
    assert "error: SPINEMETS_DATABASE_URL: cannot open postgresql://u:***@127.0.0.1" in out
    assert "topsecret" not in out


def test_in_a_browser_sign_in_save_and_compare(tmp_path):
    """Real chromium: no console error (a CSP violation is one) on the way from sign-in to the comparison plot.
    Chromium missing: skipped locally, a failure under CI (never a silent skip there)."""
    from tests.store_support import missing, sign_in_page, watched_page

    if not Path("/usr/bin/chromium").exists():
        missing("Chromium", "/usr/bin/chromium is missing: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    from tests.test_web_browser import ARGS

    env = {"SPINEMETS_DATA_DIR": str(tmp_path / "data"), "SPINEMETS_ADMIN_PASSWORD": PASSWORD}
    with server(env, *QUIET) as (base, _), sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        # the sign-in page answers 401
        page, problems = watched_page(browser.new_context(base_url=base), allowed=("401", "404"))
        sign_in_page(page, "/assessments")
        for date in ("2024-01-02", ""):
            page.goto("/assess")
            page.click(".assess-form button[type=submit]")
            page.fill("#f-patient-ref", "B-1")
            if date:
                page.fill("#f-study-date", date)
            page.click("[data-testid=save-form] button[type=submit]")
            page.wait_for_selector("[data-testid=assess-statuses]")
        page.click("text=Compare with an earlier assessment")
        page.wait_for_selector("svg.compare-plot")
        assert page.locator("[data-testid=compare-table]").is_visible()
        page.goto("/logout")
        page.click("main button[type=submit]")
        page.wait_for_url(base + "/")
        browser.close()
    assert not problems, problems
