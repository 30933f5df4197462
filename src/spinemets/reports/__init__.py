"""Read spine MRI and CT reports: findings with their assertions, and pre-filled SINS, ESCC and fracture inputs.

Use ``from spinemets.reports.extract import extract``; ``extract(text)`` returns an
:class:`~spinemets.reports.extract.ExtractResult`.  Importing this package is cheap: the NLP libraries
(spaCy, medspaCy) are imported on the first extraction.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ExtractResult", "Finding", "load_rules", "evaluate", "run_batch"]


def __getattr__(name: str) -> Any:
    if name in ("ExtractResult", "Finding"):
        from spinemets.reports import extract as module

        return getattr(module, name)
    if name == "load_rules":
        from spinemets.reports.rules import load_rules

        return load_rules
    if name == "evaluate":
        from spinemets.reports.evaluate import evaluate

        return evaluate
    if name == "run_batch":
        from spinemets.reports.batch import run_batch

        return run_batch
    raise AttributeError(f"module 'spinemets.reports' has no attribute {name!r}")
