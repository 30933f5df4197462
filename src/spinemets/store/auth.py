"""Passwords (argon2id), browser sessions with CSRF tokens, and API tokens.

* Passwords are hashed with argon2id (argon2-cffi defaults); a sign-in for an unknown user still spends
  one verification, so timing does not tell which user names exist.
* A browser session is a random 256-bit secret in an HttpOnly, SameSite=Lax cookie (Secure unless the
  request is plain HTTP on a loopback address; see :func:`secure_cookie`).  The database keeps its SHA-256
  and a per-session CSRF token (synchronizer token): every unsafe request made with the cookie must carry
  it, in the form field ``csrf_token`` or the ``X-CSRF-Token`` header.
* API tokens (``smt_`` + 256 random bits) are for scripts: ``Authorization: Bearer smt_...``.  Only their
  SHA-256 is stored; a token is shown once, when created.  Bearer requests need no CSRF token.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import ipaddress
import os
import secrets
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from spinemets.store.models import ApiToken, User, WebSession, utcnow

SESSION_COOKIE = "spinemets_session"
LOGIN_CSRF_COOKIE = "spinemets_login_csrf"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
TOKEN_PREFIX = "smt_"
MIN_PASSWORD = 10
MAX_PASSWORD = 1024


@functools.lru_cache(maxsize=1)
def _hasher() -> Any:
    from argon2 import PasswordHasher

    return PasswordHasher()


@functools.lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return str(_hasher().hash(secrets.token_urlsafe(16)))


def hash_password(password: str) -> str:
    return str(_hasher().hash(password))


def verify_password(stored: str | None, password: str) -> bool:
    from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

    try:
        return bool(_hasher().verify(stored or _dummy_hash(), password)) and stored is not None
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


def create_token(s: Session, user: User, name: str, days: int | None = None) -> tuple[str, ApiToken]:
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = utcnow()
    row = ApiToken(user_id=user.id, name=name, token_hash=sha256(secret), prefix=secret[:10], created_at=now,
                   expires_at=now + dt.timedelta(days=days) if days else None)
    s.add(row)
    s.flush()
    return secret, row


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
