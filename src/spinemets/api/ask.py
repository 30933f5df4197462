"""Adapter for ``spinemets.ask`` (questions answered from the knowledge base), when it is installed.

Exposes ``spinemets.ask.ask`` as ``POST /api/v1/ask`` and the web page ``/ask``; without the package
neither exists.  The answer model is the package's own ``AskResult``.  Server-side sessions (follow-up
questions stored on disk) are not offered over HTTP: the request carries one question.
"""

from __future__ import annotations

import functools
import importlib
from typing import Any, Literal

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field

MODULE = "spinemets.ask"


class AskRequest(BaseModel):
    """One question."""

    model_config = ConfigDict(extra="forbid")

    question: str = Field(min_length=1, max_length=1000, description="a clinical question in plain words")
    audience: Literal["clinician", "patient"] = Field(default="clinician", description="wording of the answer")
    lexical: bool = Field(default=False, description="lexical search only (skips the dense model; faster first answer)")


@functools.cache
def _module() -> Any | None:
    try:
        return importlib.import_module(MODULE)
    except ModuleNotFoundError as exc:
        if exc.name == MODULE:
            return None
        raise


def available() -> bool:
    mod = _module()
    try:
        return mod is not None and callable(getattr(mod, "ask", None))
    except ImportError:  # the package is there but broken
        return False


def result_model() -> type[BaseModel] | None:
    mod = _module()
    try:
        model = getattr(mod, "AskResult", None) if mod is not None else None
    except ImportError:
        return None
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def run(data: AskRequest | dict[str, Any]) -> Any:
    """Call ``spinemets.ask.ask`` with one request (validated here, so errors name ask.<field>)."""
    from spinemets.validation import parse

    mod = _module()
    assert mod is not None
    req = parse(AskRequest, data, "ask")
    return mod.ask(req.question, audience=req.audience, lexical=req.lexical)


def warm() -> None:
    """Load the retrieval index and the dense model once (the first answer otherwise takes seconds)."""
    try:
        run({"question": "imaging of spinal metastases"})
        # the declined examples' embeddings (that question names the disease, so the scope check did not need them)
        from spinemets.ask.scope import declined_examples

        declined_examples().matrix()
    except Exception:  # pragma: no cover - warming is best effort
        pass


def add_routes(app: FastAPI, responses: dict[int | str, dict[str, Any]]) -> None:
    from spinemets.api.body import add_body_route

    add_body_route(
        app, "/api/v1/ask", prefix="ask", input_model=AskRequest, func=run, result_model=result_model(),
        summary="Ask a question", tags=["ask"], responses=responses, threaded=True,
        example={"question": "Is contrast needed for spinal MRI?"},
        description="Answer a clinical question from knowledge-base statements (and the calculators, when the "
        "question gives their inputs), with numbered references. Core function: `spinemets.ask.ask`. "
        "Retrieval is CPU-bound and runs off the event loop.",
    )
