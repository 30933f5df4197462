"""Passwords (argon2id), browser sessions with CSRF tokens, and API tokens.

* Passwords are hashed with argon2id (argon2-cffi defaults); a sign-in for an unknown user still spends
  one verification, so timing does not tell which user names exist.
* A browser session is a random 256-bit secret in an HttpOnly, SameSite=Lax cookie (Secure unless the
  request is plain HTTP on a loopback address; see :func:`secure_cookie`).  The database keeps its SHA-256
  and a per-session CSRF token (synchronizer token): every unsafe request made with the cookie must carry
  it, in the form field ``csrf_token`` or the ``X-CSRF-Token`` header.
* API tokens (``smt_`` + 256 random bits) are for scripts: ``Authorization: Bearer smt_...``.  Only their
  SHA-256 is stored; a token is shown once, when created.  Bearer requests need no CSRF token.  A token
  expires after $SPINEMETS_TOKEN_DAYS days (default 90) unless a shorter or longer lifetime is asked for.
* The password rule follows NIST SP 800-63B (:func:`password_problem`): a minimum and a maximum length,
  no composition rules, and a refusal of common or breached passwords (the 30,000 most common passwords of
  the ``zxcvbn`` package, MIT licence), of such a password with digits or symbols added around it, of a
  repeated or consecutive run of characters, and of passwords that contain the user name.
* Sign-in is throttled per account and per client address (:class:`LoginThrottle`, the ``limits``
  library): failed attempts count in several windows, so that the wait grows with the failures.  The
  counts live in memory, per server process (with several workers, each keeps its own).  Password
  verification (argon2, about 0.1 s of CPU) runs outside every database transaction and at most
  $SPINEMETS_LOGIN_CONCURRENCY at a time (default: half the CPUs), so that a flood of guesses cannot hold
  the write lock or take every CPU from signed-in users.
* A one-time set-up link (:func:`create_setup_token`) lets the first admin be created from a page on the
  server's own machine while there is no admin.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import ipaddress
import math
import os
import re
import secrets
import threading
import time
import unicodedata
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy import text as sql
from sqlalchemy.orm import Session

from spinemets.store.models import ApiToken, SetupToken, User, WebSession, utcnow

SESSION_COOKIE = "spinemets_session"
LOGIN_CSRF_COOKIE = "spinemets_login_csrf"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
TOKEN_PREFIX = "smt_"
MIN_PASSWORD = 10  # NIST SP 800-63B: at least 8
MAX_PASSWORD = 1024  # NIST SP 800-63B: at least 64 allowed
SERVICE_NAME = "spinemets"
DEFAULT_TOKEN_DAYS = 90
MAX_TOKEN_DAYS = 3650
SETUP_HOURS = 24
DEFAULT_ACCOUNT_LIMITS = "5/minute;10/15 minutes;20/hour;50/day"
DEFAULT_ADDRESS_LIMITS = "30/minute;100/15 minutes;300/hour;1000/day"


@functools.lru_cache(maxsize=1)
def _hasher() -> Any:
    from argon2 import PasswordHasher

    return PasswordHasher()


@functools.lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return str(_hasher().hash(secrets.token_urlsafe(16)))


def _secret(password: str) -> bytes:
    """UTF-8 bytes of a password; a lone surrogate (refused when a password is set) cannot raise here."""
    return password.encode("utf-8", "surrogatepass")


def hash_password(password: str) -> str:
    return str(_hasher().hash(_secret(password)))


def verify_password(stored: str | None, password: str) -> bool:
    """Whether *password* matches *stored*; spends one verification even when there is no stored hash.

    Call it outside any database transaction (it takes about 0.1 s of CPU).
    """
    from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

    try:
        return bool(_hasher().verify(stored or _dummy_hash(), _secret(password))) and stored is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    return bool(_hasher().check_needs_rehash(stored))


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def session_hours() -> float:
    try:
        return max(0.1, float(os.environ.get("SPINEMETS_SESSION_HOURS", "12")))
    except ValueError:
        return 12.0


# --- browser sessions -------------------------------------------------------------------------------------------


def create_session(s: Session, user: User) -> tuple[str, WebSession]:
    """A new session for *user*; returns (cookie secret, row).  Expired sessions are purged on the way."""
    now = utcnow()
    s.execute(delete(WebSession).where(WebSession.expires_at < now))
    secret = secrets.token_urlsafe(32)
    row = WebSession(id=sha256(secret), user_id=user.id, csrf_token=secrets.token_urlsafe(32), created_at=now,
                     expires_at=now + dt.timedelta(hours=session_hours()))
    s.add(row)
    s.flush()
    return secret, row


def session_user(s: Session, secret: str | None) -> tuple[User, WebSession] | None:
    if not secret or len(secret) > 200:
        return None
    row = s.get(WebSession, sha256(secret))
    if row is None or row.expires_at <= utcnow():
        return None
    user = s.get(User, row.user_id)
    if user is None or not user.active:
        return None
    return user, row


def end_session(s: Session, secret: str | None) -> None:
    if secret:
        s.execute(delete(WebSession).where(WebSession.id == sha256(secret)))


def csrf_ok(expected: str | None, given: str | None) -> bool:
    return bool(expected) and bool(given) and hmac.compare_digest(str(expected), str(given))


def secure_cookie(scheme: str, host: str | None) -> bool:
    """Whether cookies get the Secure attribute.

    SPINEMETS_SECURE_COOKIES=1 always, =0 never; by default (auto) always, except for plain HTTP to a loopback
    address (``make run`` on one's own machine), where browsers would otherwise drop the cookie.
    """
    setting = (os.environ.get("SPINEMETS_SECURE_COOKIES") or "auto").strip().lower()
    if setting in ("1", "true", "yes"):
        return True
    if setting in ("0", "false", "no"):
        return False
    return scheme == "https" or not is_loopback(host)


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# --- API tokens ---------------------------------------------------------------------------------------------------


def token_days() -> int:
    """The default lifetime of a new API token in days: $SPINEMETS_TOKEN_DAYS, else 90."""
    from spinemets.store.db import StoreConfigError

    text = (os.environ.get("SPINEMETS_TOKEN_DAYS") or "").strip()
    if not text:
        return DEFAULT_TOKEN_DAYS
    if not text.isdigit() or not 1 <= int(text) <= MAX_TOKEN_DAYS:
        raise StoreConfigError(f"SPINEMETS_TOKEN_DAYS: {text[:20]!r} is not a number of days from 1 to {MAX_TOKEN_DAYS}")
    return int(text)


def create_token(s: Session, user: User, name: str, days: int | None = None) -> tuple[str, ApiToken]:
    """A new token expiring after *days* (default :func:`token_days`); returns (secret, row)."""
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = utcnow()
    row = ApiToken(user_id=user.id, name=name, token_hash=sha256(secret), prefix=secret[:10], created_at=now,
                   expires_at=now + dt.timedelta(days=days or token_days()))
    s.add(row)
    s.flush()
    return secret, row


def end_sessions(s: Session, user_id: int) -> int:
    """Sign *user_id* out everywhere; returns how many sessions ended."""
    return int(s.execute(delete(WebSession).where(WebSession.user_id == user_id)).rowcount or 0)  # type: ignore[attr-defined]


def live_tokens(s: Session, user_id: int) -> list[ApiToken]:
    """The user's API tokens that are neither revoked nor expired."""
    now = utcnow()
    return [t for t in s.scalars(select(ApiToken).where(ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None))
                                 .order_by(ApiToken.id))
            if t.expires_at is None or t.expires_at > now]


def token_user(s: Session, secret: str | None) -> User | None:
    if not secret or not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
        return None
    row = s.scalar(select(ApiToken).where(ApiToken.token_hash == sha256(secret)))
    if row is None or row.revoked_at is not None or (row.expires_at is not None and row.expires_at <= utcnow()):
        return None
    user = s.get(User, row.user_id)
    return user if user is not None and user.active else None


def bearer(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


# --- the password rule (NIST SP 800-63B) --------------------------------------------------------------------------

_EDGES = re.compile(r"^[\W\d_]+|[\W\d_]+$")


@functools.lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    """The 30,000 most common passwords of leaked password lists, as shipped by ``zxcvbn`` (MIT licence)."""
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(FREQUENCY_LISTS["passwords"])


def unstorable(text: str) -> bool:
    """Whether *text* holds a NUL character or a lone surrogate (neither SQLite nor PostgreSQL stores them)."""
    return "\x00" in text or any("\ud800" <= ch <= "\udfff" for ch in text)


def _predictable(folded: str) -> bool:
    """One character or a short group repeated (aaaa, abab), or a run of consecutive characters (1234, dcba)."""
    n = len(folded)
    for size in range(1, n // 2 + 1):
        if n % size == 0 and folded[:size] * (n // size) == folded:
            return True
    steps = {ord(b) - ord(a) for a, b in zip(folded, folded[1:])}
    return len(steps) == 1 and steps <= {1, -1}


def password_problem(password: str, username: str | None = None) -> str | None:
    """What is wrong with *password* as a new password, in plain words (never repeating it); None if fine.

    NIST SP 800-63B: at least :data:`MIN_PASSWORD` and at most :data:`MAX_PASSWORD` characters, any
    characters (spaces too), no composition rules (no demands for digits, capitals or symbols), and no
    password that is common, breached, predictable or made of the user name.
    """
    if unstorable(password):
        return "contains a character that cannot be stored (a NUL character or a lone surrogate); type it again"
    if len(password) < MIN_PASSWORD:
        return f"too short: use at least {MIN_PASSWORD} characters (a few unrelated words make a good password)"
    if len(password) > MAX_PASSWORD:
        return f"too long: use at most {MAX_PASSWORD} characters"
    folded = unicodedata.normalize("NFKC", password).casefold()
    squeezed = "".join(folded.split())
    name = unicodedata.normalize("NFKC", username or "").casefold().strip()
    if name and (folded == name or squeezed == name.replace(" ", "")):
        return "is the user name; choose a password that has nothing to do with it"
    for part in {name, name.split("@", 1)[0]}:
        if len(part) >= 3 and (part in folded or part in squeezed):
            return "contains the user name; choose a password that has nothing to do with it"
    if SERVICE_NAME in squeezed:
        return "contains the name of this program; choose one that has nothing to do with it"
    common = common_passwords()
    core = _EDGES.sub("", squeezed)
    if folded in common or squeezed in common or (len(core) >= 4 and core in common):
        return ("too common: it is on a list of passwords that attackers try first (digits or symbols added "
                "around it do not help); choose another, for example a few unrelated words")
    if _predictable(squeezed):
        return "too easy to guess: a character or group repeated, or characters in sequence (like aaaa or 1234)"
    return None


# --- sign-in throttling -------------------------------------------------------------------------------------------


class TooManyAttempts(Exception):
    """Sign-in refused for now; ``retry_after`` seconds until the next attempt can be made."""

    def __init__(self, retry_after: int, busy: bool = False) -> None:
        self.retry_after = max(1, int(retry_after))
        self.busy = busy
        super().__init__(wait_text(self.retry_after))


def wait_text(seconds: int) -> str:
    """'45 seconds', '3 minutes', '2 hours' (rounded up)."""
    if seconds < 90:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    if seconds < 90 * 60:
        minutes = math.ceil(seconds / 60)
        return f"{minutes} minutes"
    return f"{math.ceil(seconds / 3600)} hours"


class LoginThrottle:
    """Failed sign-ins counted per account (the user name as typed, known or not) and per client address.

    Each key has several limits (``5/minute;10/15 minutes;20/hour;50/day`` by default for an account,
    ``30/minute;100/15 minutes;300/hour;1000/day`` for an address; $SPINEMETS_LOGIN_LIMITS_ACCOUNT and
    $SPINEMETS_LOGIN_LIMITS_ADDRESS change them): once one is reached, sign-in for that key waits until the
    oldest failure of that window has aged out, so the wait grows from under a minute to hours as failures
    accumulate.  Moving windows of the ``limits`` library in its in-memory storage (per process).  A
    successful sign-in clears the account's counts, not the address's.
    """

    def __init__(self, account: str | None = None, address: str | None = None) -> None:
        from limits import parse_many
        from limits.storage import MemoryStorage
        from limits.strategies import MovingWindowRateLimiter

        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self.limits: dict[str, list[Any]] = {}
        for kind, given, env, default in (("account", account, "SPINEMETS_LOGIN_LIMITS_ACCOUNT", DEFAULT_ACCOUNT_LIMITS),
                                          ("address", address, "SPINEMETS_LOGIN_LIMITS_ADDRESS", DEFAULT_ADDRESS_LIMITS)):
            text = given or (os.environ.get(env) or "").strip() or default
            try:
                self.limits[kind] = list(parse_many(text))
            except ValueError:
                from spinemets.store.db import StoreConfigError

                raise StoreConfigError(f"{env}: {text[:80]!r} is not a list of limits like "
                                       f"{default!r}") from None

    @staticmethod
    def account_key(username: str) -> str:
        return sha256(unicodedata.normalize("NFKC", (username or "").strip()).casefold()[:200])

    def retry_after(self, username: str, address: str) -> int | None:
        """Seconds to wait before the next attempt for this account or address; None when it may go ahead."""
        waits = []
        now = time.time()
        for kind, key in (("account", self.account_key(username)), ("address", address or "-")):
            for item in self.limits[kind]:
                if not self._limiter.test(item, kind, key):
                    reset = self._limiter.get_window_stats(item, kind, key).reset_time
                    waits.append(max(1, math.ceil(reset - now)))
        return max(waits) if waits else None

    def failed(self, username: str, address: str) -> None:
        for kind, key in (("account", self.account_key(username)), ("address", address or "-")):
            for item in self.limits[kind]:
                self._limiter.hit(item, kind, key)

    def succeeded(self, username: str) -> None:
        key = self.account_key(username)
        for item in self.limits["account"]:
            self._limiter.clear(item, "account", key)


def login_concurrency() -> int:
    text = (os.environ.get("SPINEMETS_LOGIN_CONCURRENCY") or "").strip()
    if text.isdigit() and int(text) > 0:
        return int(text)
    return max(1, (os.cpu_count() or 2) // 2)


_slots_lock = threading.Lock()
_slots: threading.BoundedSemaphore | None = None
SLOT_WAIT = 10.0


def verify_password_limited(stored: str | None, password: str) -> bool:
    """:func:`verify_password`, at most :func:`login_concurrency` at a time in this process.

    Raises :class:`TooManyAttempts` (busy) when no slot frees up within a few seconds.
    """
    global _slots
    with _slots_lock:
        if _slots is None:
            _slots = threading.BoundedSemaphore(login_concurrency())
        slots = _slots
    if not slots.acquire(timeout=SLOT_WAIT):
        raise TooManyAttempts(1, busy=True)
    try:
        return verify_password(stored, password)
    finally:
        slots.release()


# --- first-admin set-up link ----------------------------------------------------------------------------------------


def create_setup_token(s: Session, hours: float = SETUP_HOURS) -> str:
    """A new one-time set-up secret (the table keeps its SHA-256); expired ones are purged on the way."""
    now = utcnow()
    s.execute(delete(SetupToken).where(SetupToken.expires_at <= now))
    secret = secrets.token_urlsafe(32)
    s.add(SetupToken(token_hash=sha256(secret), created_at=now, expires_at=now + dt.timedelta(hours=hours)))
    s.flush()
    return secret


SETUP_LINK_LOCK = 0x5350_5355  # pg_advisory_xact_lock key while a worker decides whether to print the link ("SPSU")


def setup_link_printed_since(s: Session, backend: str, started: dt.datetime | None) -> bool:
    """Has a worker of this server start (`spinemets serve --workers N` starts N processes, each opening the store)
    already made a set-up link?  One link is enough: the others say nothing.  *started* is when `serve` began (None:
    not started by `serve`, always a new link).  On PostgreSQL the decision is serialised with a transaction-level
    advisory lock; SQLite's write transaction already serialises it."""
    if started is None:
        return False
    if backend == "postgresql":
        s.execute(sql(f"SELECT pg_advisory_xact_lock({SETUP_LINK_LOCK})"))
    now = utcnow()
    made = s.scalar(select(func.count()).select_from(SetupToken).where(SetupToken.created_at >= started,
                                                                       SetupToken.expires_at > now))
    return bool(made)


def setup_token_ok(s: Session, secret: str | None) -> bool:
    if not secret or len(secret) > 200:
        return False
    row = s.get(SetupToken, sha256(secret))
    return row is not None and row.expires_at > utcnow()


def end_setup_tokens(s: Session) -> None:
    s.execute(delete(SetupToken))
