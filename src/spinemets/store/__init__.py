"""Stored assessments, local users and an append-only audit trail (SQLite by default, PostgreSQL in production).

``db`` opens the database named by ``SPINEMETS_DATABASE_URL`` (default: a SQLite file in WAL mode under
``$SPINEMETS_DATA_DIR``, else ``./data``), ``models`` declares the tables, ``migrations`` holds the Alembic
revisions, ``audit`` the hash-chained audit trail, ``auth`` passwords, sessions and API tokens,
``repository`` the operations with their access checks, ``commands`` the CLI and ``web`` the REST routes
and pages.  Nothing here writes patient text (references, notes, case documents) to the application logs.
"""
