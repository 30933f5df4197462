"""Conversation sessions for ask: earlier turns kept as JSON files so follow-ups refine them.

A session file ``<data>/sessions/<id>.json`` holds the turns (question,
what was understood, the statements cited) and, per instrument, the inputs
understood so far.  A follow-up ("and if she has a pacemaker?") adds to
those inputs.  The data folder is ``$SPINEMETS_DATA_DIR`` or ``./data``,
created on first use (owner-only permissions).  Session ids are 1-64
letters, digits, ``-`` or ``_``, so an id can never name a path outside the
folder.  Do not put patient identifiers in questions: sessions are stored as
plain text.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from spinemets.errors import InvalidInputError

SESSION_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
MAX_TURNS = 50
FORMAT = 1


def data_dir(explicit: str | Path | None = None) -> Path:
    if explicit is not None:
        return Path(explicit)
    return Path(os.environ.get("SPINEMETS_DATA_DIR") or "data")


def validate_id(session_id: Any) -> str:
    if not isinstance(session_id, str) or not SESSION_ID.match(session_id):
        raise InvalidInputError(
            "ask.session",
            f"{session_id!r} is not a valid session id: use 1-64 letters, digits, '-' or '_', starting with a letter or digit",
        )
    return session_id


class Session:
    """One conversation: its turns and the inputs understood so far, per instrument."""

    def __init__(self, session_id: str, folder: Path, data: dict[str, Any] | None = None) -> None:
        self.id = session_id
        self.path = folder / f"{session_id}.json"
        data = data or {}
        self.turns: list[dict[str, Any]] = list(data.get("turns") or [])
        self.state: dict[str, dict[str, Any]] = dict(data.get("state") or {})
        self.created: str = data.get("created") or _now()

    @classmethod
    def open(cls, session_id: str, root: str | Path | None = None) -> Session:
        validate_id(session_id)
        folder = data_dir(root) / "sessions"
        path = folder / f"{session_id}.json"
        if not path.exists():
            return cls(session_id, folder)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise InvalidInputError("ask.session", f"session file {path} cannot be read: {exc}") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise InvalidInputError("ask.session", f"session file {path} is not a spinemets ask session")
        return cls(session_id, folder, data)

    @property
    def turn(self) -> int:
        return len(self.turns)

    def add_turn(self, turn: dict[str, Any], state: dict[str, dict[str, Any]]) -> None:
        self.turns.append({"at": _now(), **turn})
        self.turns = self.turns[-MAX_TURNS:]
        self.state = state

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        payload = {"format": FORMAT, "id": self.id, "created": self.created, "updated": _now(),
                   "turns": self.turns, "state": self.state}
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.id}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(payload, fh, indent=2, ensure_ascii=False, default=str)
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
