"""Failed sign-ins counted per window, one-time set-up links, token lifetimes and the stored data in the chain.

* ``login_failures``: failed sign-ins per account and 15-minute window, until the window's one audit row
  is written.
* ``setup_tokens``: SHA-256 of the one-time links to the first-admin set-up page.
* API tokens that never expired now expire 90 days after this migration (revoked ones are left alone).
* One ``baseline`` audit row per existing user, API token and assessment with the digest of its stored
  content, so that ``audit verify`` can from now on tell when one is changed, deleted or inserted outside
  the application.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TOKEN_DAYS = 90


def _json() -> sa.types.TypeEngine:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    from spinemets.store.models import UTCDateTime

    op.create_table(
        "login_failures",
        sa.Column("account", sa.String(32), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user_id", sa.Integer, nullable=True),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("reasons", sa.Text, nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("account", "window_start", name="pk_login_failures"),
    )
    op.create_table(
        "setup_tokens",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    conn = op.get_bind()
    now = dt.datetime.now(dt.timezone.utc)
    tokens = sa.table("api_tokens", sa.column("id", sa.Integer), sa.column("user_id", sa.Integer),
                      sa.column("token_hash", sa.String), sa.column("expires_at", UTCDateTime()),
                      sa.column("revoked_at", UTCDateTime()))
    conn.execute(tokens.update().where(tokens.c.expires_at.is_(None), tokens.c.revoked_at.is_(None))
                 .values(expires_at=now + dt.timedelta(days=TOKEN_DAYS)))
    _baseline(conn, now, tokens)


def _baseline(conn: Any, now: dt.datetime, tokens: Any) -> None:
    """Append one audit row per existing user, token and assessment with its content digest."""
    from spinemets.store import audit

    users = sa.table("users", sa.column("id", sa.Integer), sa.column("username", sa.String),
                     sa.column("role", sa.String), sa.column("active", sa.Boolean),
                     sa.column("password_hash", sa.String))
    assessments = sa.table(
        "assessments", sa.column("id", sa.String), sa.column("owner_id", sa.Integer),
        sa.column("patient_ref", sa.String), sa.column("study_date", sa.Date), sa.column("note", sa.Text),
        sa.column("shared", sa.Boolean), sa.column("kb_version", sa.String), sa.column("case_document", _json()),
        sa.column("result_document", _json()), sa.column("statuses", _json()), sa.column("sins_total", sa.Integer),
        sa.column("sins_category", sa.String), sa.column("escc_grade", sa.String), sa.column("revision", sa.Integer))
    log = sa.table("audit_log", *(sa.column(n) for n in ("seq", "at", "actor_id", "actor", "action", "object_type",
                                                         "object_id", "detail", "prev_hash", "hash")))
    head = sa.table("audit_head", sa.column("id", sa.Integer), sa.column("seq", sa.Integer), sa.column("hash", sa.String))
    seq, prev = conn.execute(sa.select(head.c.seq, head.c.hash).where(head.c.id == 1).with_for_update()).one()
    at = now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    for kind, table in (("user", users), ("api_token", tokens), ("assessment", assessments)):
        names = audit.CONTENT_FIELDS[kind]
        for row in conn.execute(sa.select(*(table.c[n] for n in names)).order_by(table.c.id)).all():
            values = dict(zip(names, row))
            seq += 1
            detail = audit.canonical({"via": "migration", "content": audit.digest(kind, values)})
            h = audit.entry_hash(seq, at, None, "system", "baseline", kind, str(values["id"]), detail, prev)
            conn.execute(log.insert().values(seq=seq, at=at, actor_id=None, actor="system", action="baseline",
                                             object_type=kind, object_id=str(values["id"]), detail=detail,
                                             prev_hash=prev, hash=h))
            prev = h
    conn.execute(head.update().where(head.c.id == 1).values(seq=seq, hash=prev))


def downgrade() -> None:
    # The baseline audit rows stay (the trail is append-only); token expiry dates stay too.
    op.drop_table("setup_tokens")
    op.drop_table("login_failures")
