"""Alembic migrations of the store, shipped inside the package (no alembic.ini needed).

``spinemets db upgrade`` runs them; so does the app at start-up unless SPINEMETS_AUTO_MIGRATE=0.
To add a revision, write a new file in ``versions/`` (``script.py.mako`` is the template; set
``down_revision`` to the previous one) and run ``tests/test_store.py``, which migrates empty SQLite and
PostgreSQL databases up and down.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def alembic_config(connection: Any) -> Any:
    """An Alembic Config pointing at this folder, bound to *connection* (an SQLAlchemy Connection or None)."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    cfg.set_main_option("path_separator", "os")
    cfg.set_main_option("version_locations", str(HERE / "versions"))
    cfg.attributes["connection"] = connection
    cfg.attributes["configure_logger"] = False
    return cfg
