"""Ask: free-text clinical questions answered from the knowledge base with numbered references.

    from spinemets.ask import ask
    result = ask("Are plain films enough to rule out spinal mets?")
    print(result.to_text())

The package is imported lazily (``spinemets --help`` imports only
:mod:`spinemets.ask.commands`); see :mod:`spinemets.ask.compose`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "ask": "spinemets.ask.compose",
    "AskResult": "spinemets.ask.compose",
    "Sentence": "spinemets.ask.compose",
    "Composition": "spinemets.ask.compose",
    "MAX_QUESTION": "spinemets.ask.compose",
    "evaluate": "spinemets.ask.evaluate",
    "EvalReport": "spinemets.ask.evaluate",
}

if TYPE_CHECKING:  # pragma: no cover
    from spinemets.ask.compose import MAX_QUESTION, AskResult, Composition, Sentence, ask
    from spinemets.ask.evaluate import EvalReport, evaluate

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'spinemets.ask' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
