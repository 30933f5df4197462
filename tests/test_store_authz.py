"""The authorisation matrix, cell by cell, on SQLite and PostgreSQL (the app in-process, real databases).

Rows: every stored-data endpoint.  Columns: nobody signed in, a disabled user, an unknown token, the owner
(clinician), another clinician, an admin.  Another user's private assessment is 404 (its existence is not
disclosed); changing someone else's shared one is 403.  The calculators, assess and ask need no sign-in.
"""

from __future__ import annotations

import itertools
import json

import pytest

from spinemets.api import ask as ask_adapter
from tests.conftest import ROOT
from tests.store_support import BACKENDS, PASSWORD, add_token, add_user, new_database

CASE = json.loads((ROOT / "examples" / "full_case.json").read_text())
ACTORS = ["anonymous", "disabled", "bad_token", "owner", "other", "admin"]
_counter = itertools.count()


class World:
    def __init__(self, client, tokens, ids, store):
        self.client, self.tokens, self.ids, self.store = client, tokens, ids, store

    def headers(self, actor: str) -> dict[str, str]:
        if actor == "anonymous":
            return {}
        if actor == "bad_token":
            return {"authorization": "Bearer smt_" + "x" * 43}
        return {"authorization": f"Bearer {self.tokens[actor]}"}


@pytest.fixture(scope="module", params=BACKENDS)
def world(request, pg, sqlite_template, tmp_path_factory):
    from fastapi.testclient import TestClient

    from spinemets.api.app import create_app
    from spinemets.store import repository as repo
    from spinemets.store.db import Store

    url, cleanup = new_database(request.param, pg, sqlite_template, tmp_path_factory.mktemp("authz"))
    store = Store(url)
    names = {"owner": ("alice", "clinician"), "other": ("bob", "clinician"), "admin": ("root", "admin"),
             "disabled": ("carol", "clinician")}
    actors = {k: add_user(store, *v) for k, v in names.items()}
    tokens = {k: add_token(store, names[k][0]) for k in names}
    ids = {}
    with store.session(write=True) as s:
        for key, who, shared in (("private", "owner", False), ("shared", "owner", True), ("bobs", "other", False)):
            ids[key] = repo.save(s, actors[who], {"case": CASE, "patient_ref": "P-1", "shared": shared}).id
        repo.update_user(s, repo.system("test"), "carol", {"active": False})
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SPINEMETS_DATABASE_URL", url)
        app = create_app()
    with TestClient(app, base_url="https://testserver") as client:
        yield World(client, tokens, ids, store)
    app.state.store.dispose()
    store.dispose()
    cleanup()


def _req(w: World, action: str):
    """(method, path, json body) of one matrix row."""
    p, s = w.ids["private"], w.ids["shared"]
    n = next(_counter)
    return {
        "list": ("GET", "/api/v1/assessments?patient_ref=P-1", None),
        "create": ("POST", "/api/v1/assessments", {"case": CASE, "patient_ref": "P-2"}),
        "read_private": ("GET", f"/api/v1/assessments/{p}", None),
        "read_shared": ("GET", f"/api/v1/assessments/{s}", None),
        "update_private": ("PATCH", f"/api/v1/assessments/{p}", {"note": f"n{n}"}),
        "update_shared": ("PATCH", f"/api/v1/assessments/{s}", {"note": f"n{n}"}),
        "export_private": ("GET", f"/api/v1/assessments/{p}/export", None),
        "export_shared": ("GET", f"/api/v1/assessments/{s}/export", None),
        "compare_private": ("GET", f"/api/v1/assessments/{p}/compare", None),
        "compare_shared_svg": ("GET", f"/api/v1/assessments/{s}/compare.svg", None),
        "me": ("GET", "/api/v1/auth/me", None),
        "tokens_list": ("GET", "/api/v1/auth/tokens", None),
        "tokens_create": ("POST", "/api/v1/auth/tokens", {"name": f"t{n}"}),
        "users_list": ("GET", "/api/v1/admin/users", None),
        "users_add": ("POST", "/api/v1/admin/users", {"username": f"user{n}", "password": PASSWORD}),
        "users_update": ("PATCH", "/api/v1/admin/users/bob", {"active": True}),
        "audit_list": ("GET", "/api/v1/admin/audit?limit=5", None),
        "audit_verify": ("GET", "/api/v1/admin/audit/verify", None),
        "page_list": ("GET", "/assessments", None),
        "page_private": ("GET", f"/assessments/{p}", None),
        "page_compare_private": ("GET", f"/assessments/{p}/compare", None),
        "page_admin": ("GET", "/admin", None),
        "page_account": ("GET", "/account", None),
    }[action]


# Expected status per action for: owner, other clinician, admin.  Nobody, disabled, bad token: always 401.
MATRIX = {
    "list": (200, 200, 200),
    "create": (201, 201, 201),
    "read_private": (200, 404, 404),
    "read_shared": (200, 200, 200),
    "update_private": (200, 404, 404),
    "update_shared": (200, 403, 403),
    "export_private": (200, 404, 404),
    "export_shared": (200, 200, 200),
    "compare_private": (200, 404, 404),
    "compare_shared_svg": (200, 200, 200),
    "me": (200, 200, 200),
    "tokens_list": (200, 200, 200),
    "tokens_create": (201, 201, 201),
    "users_list": (403, 403, 200),
    "users_add": (403, 403, 201),
    "users_update": (403, 403, 200),
    "audit_list": (403, 403, 200),
    "audit_verify": (403, 403, 200),
    "page_list": (200, 200, 200),
    "page_private": (200, 404, 404),
    "page_compare_private": (200, 404, 404),
    "page_admin": (403, 403, 200),
    "page_account": (200, 200, 200),
}
CELLS = [(action, actor) for action in MATRIX for actor in ACTORS]


@pytest.mark.parametrize("action,actor", CELLS, ids=[f"{a}-{b}" for a, b in CELLS])
def test_cell(world, action, actor):
    method, path, body = _req(world, action)
    r = world.client.request(method, path, json=body, headers=world.headers(actor))
    expected = 401 if actor in ("anonymous", "disabled", "bad_token") else MATRIX[action][("owner", "other", "admin").index(actor)]
    assert r.status_code == expected, (r.status_code, r.text[:300])
    if path.startswith("/api/") and expected >= 400:
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["status"] == expected and r.json()["detail"]
        if expected == 401:
            assert r.headers["www-authenticate"].startswith("Bearer")
        if expected == 404:  # nothing about the private assessment leaks
            assert "P-1" not in r.text and "alice" not in r.text
    if not path.startswith("/api/"):
        assert "Decision support for healthcare professionals" in r.text
        if expected == 401:
            assert 'action="/login"' in r.text


@pytest.mark.parametrize("method,path,body", [
    ("POST", "/api/v1/sins", {"level": "T12", "pain": "mechanical"}),
    ("POST", "/api/v1/assess", CASE),
    ("GET", "/api/v1/kb", None),
    ("GET", "/sins?level=T12", None),
    ("GET", "/assess", None),
    ("POST", "/assess", None),
    ("GET", "/", None),
])
def test_calculators_need_no_sign_in(world, method, path, body):
    kw = {"data": {"case": json.dumps(CASE)}} if path == "/assess" and method == "POST" else {"json": body}
    r = world.client.request(method, path, **kw)
    assert r.status_code == 200
    if path == "/assess" and method == "POST":
        assert "Sign in</a> to save assessments" in r.text


@pytest.mark.skipif(not ask_adapter.available(), reason="spinemets.ask is not installed")
def test_ask_needs_no_sign_in(world):
    r = world.client.post("/api/v1/ask", json={"question": "what is the SINS?", "lexical": True})
    assert r.status_code == 200


def _session(world, username="alice"):
    """A fresh browser-like client signed in through the REST login: (client, csrf token)."""
    from fastapi.testclient import TestClient

    c = TestClient(world.client.app, base_url="https://testserver")
    r = c.post("/api/v1/auth/login", json={"username": username, "password": PASSWORD})
    assert r.status_code == 200
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "Secure" in cookie and "samesite=lax" in cookie.lower()
    return c, r.json()["csrf_token"]


@pytest.mark.parametrize("method,path,body,ok", [
    ("POST", "/api/v1/assessments", {"case": CASE, "patient_ref": "P-3"}, 201),
    ("PATCH", "/api/v1/assessments/{private}", {"note": "x"}, 200),
    ("POST", "/api/v1/auth/tokens", {"name": "x"}, 201),
    ("DELETE", "/api/v1/auth/tokens/999999", None, 404),
    ("POST", "/api/v1/auth/logout", None, 204),
])
def test_csrf_required_for_unsafe_requests_with_the_session_cookie(world, method, path, body, ok):
    c, csrf = _session(world)
    path = path.format(**world.ids)
    r = c.request(method, path, json=body)
    assert r.status_code == 403 and r.json()["field"] == "csrf_token"
    r = c.request(method, path, json=body, headers={"x-csrf-token": "wrong"})
    assert r.status_code == 403
    r = c.request(method, path, json=body, headers={"x-csrf-token": csrf})
    assert r.status_code == ok, r.text
    c.close()


def test_safe_requests_with_the_session_cookie_need_no_csrf(world):
    c, _ = _session(world)
    assert c.get("/api/v1/assessments").status_code == 200
    assert c.get(f"/api/v1/assessments/{world.ids['private']}").status_code == 200
    c.close()


def test_login_failures(world):
    c = world.client
    for body in ({"username": "alice", "password": "wrong password"}, {"username": "nobody", "password": PASSWORD},
                 {"username": "carol", "password": PASSWORD}):
        r = c.post("/api/v1/auth/login", json=body)
        assert r.status_code == 401 and r.json()["detail"].startswith("wrong user name or password")
        assert "set-cookie" not in r.headers
    r = c.post("/api/v1/auth/login", json={"username": "alice"})
    assert r.status_code == 422 and r.json()["field"] == "login.password"


def test_logout_ends_the_session_and_revoked_tokens_stop_working(world):
    c, csrf = _session(world)
    assert c.post("/api/v1/auth/logout", headers={"x-csrf-token": csrf}).status_code == 204
    assert c.get("/api/v1/assessments").status_code == 401
    r = world.client.post("/api/v1/auth/tokens", json={"name": "temp"}, headers=world.headers("owner"))
    token, tid = r.json()["token"], r.json()["id"]
    h = {"authorization": f"Bearer {token}"}
    assert world.client.get("/api/v1/auth/me", headers=h).json()["user"]["username"] == "alice"
    assert world.client.get("/api/v1/auth/tokens", headers=h).json()["items"][-1]["prefix"] == token[:10]
    assert "token" not in world.client.get("/api/v1/auth/tokens", headers=h).json()["items"][-1]
    assert world.client.delete(f"/api/v1/auth/tokens/{tid}", headers=world.headers("other")).status_code == 404
    assert world.client.delete(f"/api/v1/auth/tokens/{tid}", headers=h).status_code == 204
    assert world.client.get("/api/v1/auth/me", headers=h).status_code == 401


def test_denied_requests_are_audited(world):
    world.client.get(f"/api/v1/assessments/{world.ids['private']}", headers=world.headers("other"))
    r = world.client.get("/api/v1/admin/audit?action=denied&limit=1", headers=world.headers("admin"))
    e = r.json()["items"][0]
    assert (e["actor"], e["action"], e["detail"]["status"]) == ("bob", "denied", 404)
    assert world.client.get("/api/v1/admin/audit/verify", headers=world.headers("admin")).json()["ok"]
