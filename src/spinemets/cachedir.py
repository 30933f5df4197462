"""Where spinemets keeps derived files it can always rebuild (embeddings, the parsed knowledge base)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any


def cache_dir() -> Path:
    """$SPINEMETS_CACHE_DIR, else $SPINEMETS_DATA_DIR/cache, else ~/.cache/spinemets (XDG_CACHE_HOME honoured)."""
    if os.environ.get("SPINEMETS_CACHE_DIR"):
        return Path(os.environ["SPINEMETS_CACHE_DIR"])
    if os.environ.get("SPINEMETS_DATA_DIR"):
        return Path(os.environ["SPINEMETS_DATA_DIR"]) / "cache"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "spinemets"


def save_atomically(path: Path, write: Callable[[IO[Any]], None], text: bool = False) -> bool:
    """Write a cache file whole or not at all: *write* fills a temporary file beside *path*, which then replaces it
    (readers never see half a file).  Returns False, leaving nothing behind, when the folder is not writable or
    *write* fails; a cache that cannot be saved is simply computed again next time."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    except OSError:
        return False
    try:
        with os.fdopen(fd, "w" if text else "wb", **({"encoding": "utf-8"} if text else {})) as fh:
            write(fh)
        os.replace(tmp, path)
        return True
    except (OSError, TypeError, ValueError):
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        return False
