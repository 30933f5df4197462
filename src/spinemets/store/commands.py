"""CLI of the store: ``db``, ``user``, ``token``, ``assessment`` and ``audit`` (import-light: the database
code is imported inside the commands).

The command line talks to the database directly (SPINEMETS_DATABASE_URL, default ./data/spinemets.db), so
whoever runs it already holds the data: user management and the audit trail need no sign-in there, and
assessment commands act as the user named by ``--user`` (or $SPINEMETS_USER); everything is audited with
``via: cli``.  Exit codes: 0 success, 2 invalid input / not found / not allowed / database missing or
unreachable, 4 audit chain broken.

Only ``db upgrade`` and ``user add`` create a SQLite database that is not there yet; every other command
refuses a missing one (a mistyped path must not be answered from a new, empty database).  A database that
cannot be reached or used is reported in one line, never with a traceback.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
from collections.abc import Callable
from typing import Any

EXIT_OK, EXIT_INVALID, EXIT_AUDIT_BROKEN = 0, 2, 4


def _store() -> Any:
    from spinemets.store.db import Store

    return Store()


def _missing_sqlite() -> str | None:
    """The path of the configured SQLite database when that file does not exist (else None)."""
    from pathlib import Path

    from spinemets.store.db import database_url, normalise_url

    url = normalise_url(database_url())
    if not url.drivername.startswith("sqlite"):
        return None
    path = Path(str(url.database)).expanduser()
    return None if path.is_file() else str(path.resolve())


def _ready_store(create: bool = False) -> Any:
    """The store, migrated if needed (as the server does at start-up).  Unless *create*, a SQLite database
    that does not exist is refused, and neither the file nor its folder is made."""
    from spinemets.store.db import StoreConfigError

    if not create:
        missing = _missing_sqlite()
        if missing is not None:
            where = ("SPINEMETS_DATABASE_URL" if (os.environ.get("SPINEMETS_DATABASE_URL") or "").strip()
                     else "SPINEMETS_DATA_DIR (default ./data)")
            raise StoreConfigError(f"database {missing} does not exist; check {where} "
                                   "(`spinemets db upgrade` creates a new, empty one)")
    store = _store()
    if os.environ.get("SPINEMETS_AUTO_MIGRATE", "1").strip() not in ("0", "false", "no"):
        store.upgrade()
    return store


def _database_errors(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """A database that cannot be reached or used: one line naming it (without its password), exit 2."""

    @functools.wraps(func)
    def run(a: argparse.Namespace) -> int:
        from alembic.util import CommandError
        from sqlalchemy.exc import SQLAlchemyError

        from spinemets.store.db import StoreConfigError

        try:
            return func(a)
        except (SQLAlchemyError, CommandError) as exc:
            text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
            reason = (text[0] if text else type(exc).__name__)[:300]
            raise StoreConfigError(f"database {_where()}: cannot use it: {reason}") from None

    return run


def _where() -> str:
    from spinemets.store.db import database_url, safe_url

    try:
        return safe_url(database_url())
    except Exception:
        return "(unparsable SPINEMETS_DATABASE_URL)"


def _actor(s: Any, a: argparse.Namespace) -> Any:
    from spinemets.errors import InvalidInputError
    from spinemets.store import repository as repo

    name = a.user or os.environ.get("SPINEMETS_USER")
    if not name:
        raise InvalidInputError("user", "name the user to act as: --user NAME (or set SPINEMETS_USER)")
    u = repo.get_user(s, name)
    if not u.active:
        raise repo.Forbidden(f"user: {u.username!r} is disabled", ["user"])
    return repo.Actor.of(u, "cli")


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False))


# --- db ------------------------------------------------------------------------------------------------------------


def cmd_db_upgrade(a: argparse.Namespace) -> int:
    from spinemets.store.db import safe_url

    store = _store()
    rev = store.upgrade(a.revision)
    print(f"db upgrade: {store.backend} database {safe_url(store.url)} is at revision {rev}")
    return EXIT_OK


def cmd_db_current(a: argparse.Namespace) -> int:
    from spinemets.store.db import safe_url

    missing = _missing_sqlite()
    if missing is not None:  # report it without creating it
        print(f"db: sqlite database {missing} at revision (none): needs `spinemets db upgrade` (no such file yet)")
        return EXIT_OK
    store = _store()
    cur, head = store.current_revision(), store.head_revision()
    state = "up to date" if cur == head else f"needs `spinemets db upgrade` (latest is {head})"
    print(f"db: {store.backend} database {safe_url(store.url)} at revision {cur or '(none)'}: {state}")
    return EXIT_OK


# --- users and tokens ---------------------------------------------------------------------------------------------


NO_TERMINAL = ("no terminal to ask for the password; give it on standard input with --password-stdin, e.g. "
               "printf '%s\\n' \"$PASSWORD\" | spinemets user {verb} NAME --password-stdin")


def _read_password(a: argparse.Namespace, verb: str = "add") -> str:
    """The new password: from standard input (--password-stdin) or asked twice at the terminal."""
    import getpass

    from spinemets.errors import InvalidInputError

    stdin = sys.stdin
    if a.password_stdin:
        if stdin is None or stdin.closed:
            raise InvalidInputError("password", "--password-stdin: standard input is closed; pipe the password in")
        try:
            return stdin.readline().rstrip("\r\n")
        except (UnicodeDecodeError, OSError) as exc:
            raise InvalidInputError("password", f"--password-stdin: cannot read standard input ({exc.__class__.__name__})") from None
    if stdin is None or stdin.closed or not stdin.isatty():
        raise InvalidInputError("password", NO_TERMINAL.format(verb=verb))
    try:
        pw = getpass.getpass("Password: ")
        again = getpass.getpass("Repeat it: ")
    except (EOFError, KeyboardInterrupt, OSError):
        raise InvalidInputError("password", NO_TERMINAL.format(verb=verb)) from None
    if again != pw:
        raise InvalidInputError("password", "the two entries differ")
    return pw


def cmd_user_add(a: argparse.Namespace) -> int:
    from spinemets.store import repository as repo

    role = "admin" if a.admin else a.role
    password = _read_password(a)
    with _ready_store(create=True).session(write=True) as s:
        u = repo.create_user(s, repo.system(), {"username": a.username, "password": password, "role": role})
        out = repo.user_dict(u)
    if a.json:
        _print_json(out)
    else:
        print(f"user add: {out['username']} ({out['role']})")
    return EXIT_OK


def cmd_user_list(a: argparse.Namespace) -> int:
    from spinemets.store import repository as repo

    with _ready_store().session(write=True) as s:
        users = [repo.user_dict(u) for u in repo.list_users(s, repo.system())]
    if a.json:
        _print_json(users)
        return EXIT_OK
    if not users:
        print("no users; add one with `spinemets user add --admin NAME`")
    for u in users:
        print(f"{u['username']:<24} {u['role']:<10} {'active' if u['active'] else 'disabled':<9} since {u['created_at'][:10]}")
    return EXIT_OK


def _user_set(a: argparse.Namespace, change: dict[str, Any], verb: str) -> int:
    from spinemets.store import repository as repo

    with _ready_store().session(write=True) as s:
        u = repo.update_user(s, repo.system(), a.username, change)
        out = repo.user_dict(u)
    if a.json:
        _print_json(out)
    else:
        print(f"user {verb}: {out['username']} ({out['role']}, {'active' if out['active'] else 'disabled'})")
    return EXIT_OK


def cmd_user_disable(a: argparse.Namespace) -> int:
    return _user_set(a, {"active": False}, "disable")


def cmd_user_enable(a: argparse.Namespace) -> int:
    return _user_set(a, {"active": True}, "enable")


def cmd_user_password(a: argparse.Namespace) -> int:
    """A new password; the user's browser sessions end and API tokens are revoked."""
    return _user_set(a, {"password": _read_password(a, "password")}, "password")


def cmd_user_role(a: argparse.Namespace) -> int:
    return _user_set(a, {"role": a.role}, "role")


def cmd_token_create(a: argparse.Namespace) -> int:
    from spinemets.store import repository as repo

    with _ready_store().session(write=True) as s:
        owner = repo.get_user(s, a.username)
        secret, row = repo.create_token(s, repo.system(), owner, {"name": a.name, "days": a.days})
        out = {**repo.token_dict(row), "user": owner.username, "token": secret}
    if a.json:
        _print_json(out)
    else:
        print(secret)
        print(f"token create: {out['name']!r} for {out['user']}; shown once - store it safely. "
              "Use it as: Authorization: Bearer TOKEN", file=sys.stderr)
    return EXIT_OK


# --- assessments --------------------------------------------------------------------------------------------------


def cmd_assessment_save(a: argparse.Namespace) -> int:
    from spinemets.cli import _read_json
    from spinemets.store import repository as repo

    data: dict[str, Any] = {"case": _read_json(a.case), "patient_ref": a.patient_ref, "note": a.note or "",
                            "shared": a.shared}
    if a.study_date:
        data["study_date"] = a.study_date
    with _ready_store().session(write=True) as s:
        actor = _actor(s, a)
        saved = repo.save(s, actor, data)
        out = repo.full_dict(saved, actor.username)
    if a.json:
        _print_json(out)
    else:
        print(f"assessment save: {out['id']} ({out['patient_ref']}, {out['study_date']}, knowledge base {out['kb_version']})")
    return EXIT_OK


def cmd_assessment_list(a: argparse.Namespace) -> int:
    from spinemets.store import repository as repo

    query = {"patient_ref": a.patient_ref, "date_from": a.date_from, "date_to": a.date_to, "scope": a.scope,
             "limit": a.limit, "offset": a.offset}
    with _ready_store().session(write=True) as s:
        actor = _actor(s, a)
        items, total = repo.listing(s, actor, {k: v for k, v in query.items() if v is not None})
        rows = [repo.summary_dict(x, o) for x, o in items]
    if a.json:
        _print_json({"count": total, "items": rows})
        return EXIT_OK
    for r in rows:
        sins = "-" if r["sins_total"] is None else str(r["sins_total"])
        print(f"{r['id']}  {r['study_date']}  {r['patient_ref']:<20} SINS {sins:<3} ESCC {r['escc_grade'] or '-':<3} "
              f"{r['owner']}{' (shared)' if r['shared'] else ''}")
    print(f"{total} assessment(s){'' if total <= len(rows) else f', showing {len(rows)}'}")
    return EXIT_OK


def cmd_assessment_show(a: argparse.Namespace) -> int:
    from spinemets.assess import AssessResult
    from spinemets.store import repository as repo

    with _ready_store().session(write=True) as s:
        actor = _actor(s, a)
        out = repo.full_dict(*repo.get(s, actor, a.id))
    if a.json:
        _print_json(out)
        return EXIT_OK
    print(f"Assessment {out['id']}: {out['patient_ref']}, study date {out['study_date']}, saved by {out['owner']}"
          f"{' (shared)' if out['shared'] else ''}, knowledge base {out['kb_version']}")
    if out["note"]:
        print(f"Note: {out['note']}")
    print()
    print(AssessResult.model_validate(out["result"]).to_text())
    return EXIT_OK


def cmd_assessment_export(a: argparse.Namespace) -> int:
    from spinemets.store import repository as repo

    with _ready_store().session(write=True) as s:
        doc = repo.export(s, _actor(s, a), a.id)
    text = json.dumps(doc, indent=2, ensure_ascii=False)
    if a.output and a.output != "-":
        with open(a.output, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")
        print(f"assessment export: wrote {a.output}", file=sys.stderr)
    else:
        print(text)
    return EXIT_OK


def stored_result(assessment_id: str, user: str | None) -> dict[str, Any]:
    """A saved assessment's result for an export in another format (``spinemets fhir export ID``), read as *user*."""
    from spinemets.store import repository as repo

    with _ready_store().session(write=True) as s:
        return repo.stored_result(s, _actor(s, argparse.Namespace(user=user)), assessment_id)  # type: ignore[no-any-return]


def cmd_assessment_compare(a: argparse.Namespace) -> int:
    from spinemets.store import repository as repo

    with _ready_store().session(write=True) as s:
        cmp = repo.compare(s, _actor(s, a), a.id, a.with_id)
    if a.svg:
        from spinemets.store.plot import comparison_svg

        with open(a.svg, "w", encoding="utf-8") as fh:
            fh.write(comparison_svg(cmp))
    if a.json:
        _print_json(cmp)
        return EXIT_OK
    print(f"{cmp['patient_ref']}: {len(cmp['series'])} assessment(s)")
    if cmp["message"]:
        print(cmp["message"])
    else:
        s_, e_ = cmp["change"]["sins"], cmp["change"]["escc"]
        print(f"{cmp['earlier']['study_date']} -> {cmp['later']['study_date']} ({cmp['change']['days']} days)")
        delta = "" if s_["delta"] is None else f" ({s_['delta']:+d})"
        print(f"  SINS total: {s_['from'] if s_['from'] is not None else '-'} -> {s_['to'] if s_['to'] is not None else '-'}{delta}"
              f"; category {s_['from_category'] or '-'} -> {s_['to_category'] or '-'}")
        print(f"  ESCC grade: {e_['from'] or '-'} -> {e_['to'] or '-'}{' (' + e_['direction'] + ')' if e_['direction'] else ''}")
        for vertebra, by in cmp["levels"].items():
            ls, le = by["change"]["sins"], by["change"]["escc"]
            if ls is None:
                if by["change"].get("note"):
                    print(f"  {vertebra}: {by['change']['note']}")
                continue
            delta = "" if ls["delta"] is None else f" ({ls['delta']:+d})"
            print(f"  {vertebra}: SINS {ls['from'] if ls['from'] is not None else '-'} -> "
                  f"{ls['to'] if ls['to'] is not None else '-'}{delta}; ESCC {le['from'] or '-'} -> {le['to'] or '-'}"
                  f"{' (' + le['direction'] + ')' if le['direction'] else ''}")
    for p in cmp["series"]:
        mark = "*" if p["id"] in {cmp["earlier"] and cmp["earlier"]["id"], cmp["later"] and cmp["later"]["id"]} else " "
        print(f" {mark} {p['study_date']}  SINS {p['sins_total'] if p['sins_total'] is not None else '-':<3} "
              f"ESCC {p['escc_grade'] or '-':<3} {p['id']}")
    if a.svg:
        print(f"plot: {a.svg}")
    return EXIT_OK


# --- audit --------------------------------------------------------------------------------------------------------


def cmd_audit_verify(a: argparse.Namespace) -> int:
    from spinemets.store import repository as repo
    from spinemets.store.web import parse_expect

    expect = parse_expect(a.expect) if a.expect else None
    with _ready_store().session(write=True) as s:
        v = repo.audit_verify(s, repo.system(), expect)
    if a.json:
        _print_json(v.to_dict())
    else:
        print(v.to_text(), file=sys.stdout if v.ok else sys.stderr)
    return EXIT_OK if v.ok else EXIT_AUDIT_BROKEN


def cmd_audit_list(a: argparse.Namespace) -> int:
    from spinemets.store import repository as repo

    with _ready_store().session(write=True) as s:
        items, total = repo.audit_list(s, repo.system(), limit=a.limit, before=a.before, actor_name=a.actor,
                                       action=a.action, object_id=a.object)
    if a.json:
        _print_json({"count": total, "items": items})
        return EXIT_OK
    for e in items:
        obj = e["object_type"] + (f" {e['object_id']}" if e["object_id"] else "")
        print(f"{e['seq']:>7}  {e['at'][:19].replace('T', ' ')}  {e['actor']:<16} {e['action']:<12} {obj}")
    print(f"{total} entries")
    return EXIT_OK


# --- parser -------------------------------------------------------------------------------------------------------


def _date(text: str) -> str:
    import datetime as dt

    try:
        return dt.date.fromisoformat(text).isoformat()
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: use YYYY-MM-DD") from None


def register(sub: Any, add: Any) -> None:
    def group(name: str, help: str) -> Any:
        p = sub.add_parser(name, help=help, description=help)
        return p.add_subparsers(dest=f"{name}_command", required=True, metavar=f"{name.upper()}_COMMAND")

    def cmd(parent: Any, name: str, func: Any, help: str, json_flag: bool = True) -> argparse.ArgumentParser:
        p = parent.add_parser(name, help=help, description=help)
        p.set_defaults(func=_database_errors(func))
        if json_flag:
            p.add_argument("--json", action="store_true", help="machine-readable output")
        return p

    def as_user(p: argparse.ArgumentParser) -> None:
        p.add_argument("--user", help="act as this user (default $SPINEMETS_USER)")

    db = group("db", "the database of saved assessments (SPINEMETS_DATABASE_URL; default ./data/spinemets.db)")
    up = cmd(db, "upgrade", cmd_db_upgrade, "run the migrations (the server also runs them at start-up)", False)
    up.add_argument("--revision", default="head", help="target revision (default: the latest)")
    cmd(db, "current", cmd_db_current, "show the database and its revision", False)

    us = group("user", "local user accounts (clinician or admin)")
    p = cmd(us, "add", cmd_user_add, "add a user (asks for the password)")
    p.add_argument("username")
    p.add_argument("--admin", action="store_true", help="give the admin role (users, audit trail)")
    p.add_argument("--role", choices=["clinician", "admin"], default="clinician")
    p.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    cmd(us, "list", cmd_user_list, "list users")
    for name, func, text in (("disable", cmd_user_disable, "disable a user (sessions and tokens stop working)"),
                             ("enable", cmd_user_enable, "enable a disabled user")):
        p = cmd(us, name, func, text)
        p.add_argument("username")
    p = cmd(us, "password", cmd_user_password, "set a user's password (ends their sessions and API tokens)")
    p.add_argument("username")
    p.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    p = cmd(us, "role", cmd_user_role, "set a user's role")
    p.add_argument("username")
    p.add_argument("role", choices=["clinician", "admin"])

    tk = group("token", "API tokens for scripts (Authorization: Bearer TOKEN)")
    p = cmd(tk, "create", cmd_token_create, "create an API token for a user (printed once)")
    p.add_argument("username")
    p.add_argument("--name", default="cli", help="a label for the token")
    p.add_argument("--days", type=int, help="expires after this many days (default: $SPINEMETS_TOKEN_DAYS, else 90)")

    asm = group("assessment", "saved assessments: save, list, show, export, compare")
    p = cmd(asm, "save", cmd_assessment_save, "assess a case document and save it")
    p.add_argument("case", help="case document (JSON file, or - for standard input)")
    p.add_argument("--patient-ref", required=True, help="pseudonymous patient reference (no names)")
    p.add_argument("--note", help="free-text note")
    p.add_argument("--shared", action="store_true", help="readable by every signed-in user")
    p.add_argument("--study-date", type=_date, help="date of the imaging study, YYYY-MM-DD (default: today)")
    as_user(p)
    p = cmd(asm, "list", cmd_assessment_list, "list and search the assessments the user can read")
    p.add_argument("--patient-ref", help="exact reference, or a prefix ending in *")
    p.add_argument("--from", dest="date_from", type=_date, help="study date from, YYYY-MM-DD")
    p.add_argument("--to", dest="date_to", type=_date, help="study date to, YYYY-MM-DD")
    p.add_argument("--scope", choices=["visible", "mine", "shared"], default="visible")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--offset", type=int, default=0)
    as_user(p)
    p = cmd(asm, "show", cmd_assessment_show, "show one assessment with every result")
    p.add_argument("id")
    as_user(p)
    p = cmd(asm, "export", cmd_assessment_export, "export one assessment as JSON", False)
    p.add_argument("id")
    p.add_argument("-o", "--output", help="file to write (default: standard output)")
    as_user(p)
    p = cmd(asm, "compare", cmd_assessment_compare, "SINS and ESCC change against an earlier assessment of the same patient")
    p.add_argument("id")
    p.add_argument("--with", dest="with_id", help="the other assessment (default: the latest before this one)")
    p.add_argument("--svg", help="also write the plot to this SVG file")
    as_user(p)

    au = group("audit", "the append-only audit trail")
    p = cmd(au, "verify", cmd_audit_verify, "check the hash chain: detects altered and deleted entries (exit 4 if broken)")
    p.add_argument("--expect", metavar="SEQ:HASH", help="a head printed by an earlier verify, which must still be there")
    p = cmd(au, "list", cmd_audit_list, "the newest entries")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--before", type=int, help="entries before this sequence number")
    p.add_argument("--actor", help="only this user")
    p.add_argument("--action", help="only this action (create, read, update, export, login, ...)")
    p.add_argument("--object", help="only this object id")
