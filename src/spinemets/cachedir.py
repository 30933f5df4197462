"""Where spinemets keeps derived files it can always rebuild (embeddings, the parsed knowledge base)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """$SPINEMETS_CACHE_DIR, else $SPINEMETS_DATA_DIR/cache, else ~/.cache/spinemets (XDG_CACHE_HOME honoured)."""
    if os.environ.get("SPINEMETS_CACHE_DIR"):
        return Path(os.environ["SPINEMETS_CACHE_DIR"])
    if os.environ.get("SPINEMETS_DATA_DIR"):
        return Path(os.environ["SPINEMETS_DATA_DIR"]) / "cache"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "spinemets"
