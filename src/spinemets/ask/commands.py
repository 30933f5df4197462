"""``spinemets ask`` and ``spinemets ask-eval``: registered by the CLI's plugin hook.

Import-light on purpose: argparse only; the answer machinery (and torch)
is imported inside the commands.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

EXIT_OK, EXIT_INSUFFICIENT = 0, 3


def cmd_ask(a: argparse.Namespace) -> int:
    from spinemets.ask.compose import ask

    r = ask(" ".join(a.question), audience=a.audience, session=a.session, lexical=a.lexical)
    _print(r.model_dump_json(indent=2) if a.json else r.to_text())
    return EXIT_INSUFFICIENT if r.declined else EXIT_OK


def _print(text: str) -> None:
    """Print, and stay quiet when the reader of a pipe has gone (spinemets ask ... | head)."""
    try:
        print(text)
        sys.stdout.flush()
    except BrokenPipeError:
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def cmd_ask_eval(a: argparse.Namespace) -> int:
    from spinemets.ask.evaluate import evaluate

    modes = ["lexical"] if a.lexical else ["lexical", "hybrid"]
    reports = [evaluate(a.set, mode=m) for m in modes]
    if a.json:
        payload: dict[str, Any] = {r.mode: r.model_dump(mode="json", exclude={"items"} if not a.verbose else set())
                                   for r in reports}
        _print(json.dumps(payload, indent=2))
    else:
        _print("\n\n".join(r.to_text(verbose=a.verbose) for r in reports))
    return EXIT_OK


def register(sub: Any, add: Any) -> None:
    q = add("ask", cmd_ask, "answer a clinical question from the knowledge base, with numbered references")
    q.add_argument("question", nargs="+", help="the question, in words (quote it)")
    q.add_argument("--audience", default="clinician", metavar="clinician|patient",
                   help="patient answers use the plain-language statements")
    q.add_argument("--session", metavar="ID", help="keep earlier turns under this id so follow-ups refine them "
                   "(stored in $SPINEMETS_DATA_DIR/sessions or ./data/sessions)")
    q.add_argument("--lexical", action="store_true", help="lexical search only (does not load the dense model)")

    e = add("ask-eval", cmd_ask_eval, "score ask on the development question set (recall, facts, citations, refusals)")
    e.add_argument("--set", metavar="YAML", help="question set (default: tests/data/ask_dev.yaml of the source tree)")
    e.add_argument("--lexical", action="store_true", help="lexical only (default: lexical and hybrid side by side)")
    e.add_argument("--verbose", action="store_true", help="list every question that misses a target")


if __name__ == "__main__":  # pragma: no cover
    sys.exit("run through the spinemets command")
