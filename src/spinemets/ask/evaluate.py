"""Score ask on a question set (``tests/data/ask_dev.yaml``): retrieval, answer facts, citations, refusals.

Each item of the set::

    - id: radiograph-rule-out
      q: Are plain films enough to rule out spinal mets?
      cite: [imaging.radiograph.cannot_exclude]   # statements the answer should rest on
      related: [radiograph.not_for_screening]     # also acceptable to cite
      facts: [radiographs, "do not rule metastasis out"]   # strings the answer must contain
      context: [earlier questions of the same session]      # optional
      audience: patient                                      # optional
      declined: true                                         # expected refusal (out of scope, instructions)

Figures:

* recall@k: for each item with ``cite``, the share of its statements among the
  k best-ranked statements (out of at most k), averaged;
* answer-fact rate: facts found in the answer's sentences (case-insensitive),
  over all facts of the items that should be answered;
* citation precision: of the statements the answer cites (engine lines
  excluded), the share listed in ``cite`` or ``related``;
* citation recall: of the ``cite`` statements, the share the answer cites;
* refusal accuracy: items whose declined / answered outcome is the expected one.
"""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

from spinemets.errors import InvalidInputError

DEFAULT_SET = Path(__file__).resolve().parents[3] / "tests" / "data" / "ask_dev.yaml"


class Item(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    q: str
    cite: list[str] = Field(default_factory=list)
    related: list[str] = Field(default_factory=list)
    facts: list[str] = Field(default_factory=list)
    declined: bool = False
    audience: str = "clinician"
    context: list[str] = Field(default_factory=list)
    kind: str = "knowledge"


class ItemResult(BaseModel):
    id: str
    declined: bool
    expected_declined: bool
    ranked: list[str]
    cited: list[str]
    recall_at_1: float | None = None
    recall_at_3: float | None = None
    facts_missing: list[str] = Field(default_factory=list)
    facts_total: int = 0
    precision_hits: int = 0
    precision_total: int = 0
    cite_found: int = 0
    cite_total: int = 0
    ms: float = 0.0
    error: str | None = None


class EvalReport(BaseModel):
    mode: str
    set: str
    questions: int
    recall_at_1: float
    recall_at_3: float
    answer_fact_rate: float
    citation_precision: float
    citation_recall: float
    refusal_accuracy: float
    median_ms: float
    items: list[ItemResult] = Field(default_factory=list)

    def failures(self) -> list[str]:
        out = []
        for it in self.items:
            problems = []
            if it.error:
                problems.append(f"error: {it.error}")
            if it.declined != it.expected_declined:
                problems.append("declined" if it.declined else "answered (should decline)")
            if it.recall_at_3 is not None and it.recall_at_3 < 1:
                problems.append(f"recall@3 {it.recall_at_3:.2f} (ranked {', '.join(it.ranked[:3])})")
            if it.facts_missing:
                problems.append("facts missing: " + "; ".join(repr(f) for f in it.facts_missing))
            if it.precision_total and it.precision_hits < it.precision_total:
                extra = [c for c in it.cited][: it.precision_total]
                problems.append(f"precision {it.precision_hits}/{it.precision_total} (cited {', '.join(extra)})")
            if problems:
                out.append(f"{it.id}: " + " | ".join(problems))
        return out

    def to_text(self, verbose: bool = False) -> str:
        lines = [
            f"ask-eval ({self.mode}) on {self.set}: {self.questions} questions",
            f"  recall@1            {self.recall_at_1:.3f}",
            f"  recall@3            {self.recall_at_3:.3f}",
            f"  answer-fact rate    {self.answer_fact_rate:.3f}",
            f"  citation precision  {self.citation_precision:.3f}",
            f"  citation recall     {self.citation_recall:.3f}",
            f"  refusal accuracy    {self.refusal_accuracy:.3f}",
            f"  median latency      {self.median_ms:.1f} ms per question (warm, in process)",
        ]
        if verbose:
            lines.extend("  - " + f for f in self.failures())
        return "\n".join(lines)


def load_set(path: str | Path | None = None) -> tuple[Path, list[Item]]:
    p = Path(path) if path else DEFAULT_SET
    if not p.exists():
        raise InvalidInputError("ask-eval.set", f"{p} does not exist; give the question set with --set")
    raw = yaml.safe_load(p.read_text(encoding="utf-8"))
    if not isinstance(raw, list):
        raise InvalidInputError("ask-eval.set", f"{p} must hold a list of questions")
    items = []
    for i, entry in enumerate(raw):
        try:
            items.append(Item.model_validate(entry))
        except Exception as exc:  # pydantic ValidationError
            detail = " ".join(line.strip() for line in str(exc).splitlines()[1:3])
            raise InvalidInputError(f"ask-eval.set[{i}]", detail) from None
    return p, items


def _found(fact: str, text: str) -> bool:
    return " ".join(fact.lower().split()) in " ".join(text.lower().split())


def evaluate(path: str | Path | None = None, mode: str = "hybrid", **ask_kw: Any) -> EvalReport:
    """Run every question of the set through ask and score it (see the module docstring)."""
    from spinemets.ask.compose import ask
    from spinemets.errors import SpinemetsError

    p, items = load_set(path)
    lexical = mode == "lexical"
    results: list[ItemResult] = []
    with tempfile.TemporaryDirectory(prefix="spinemets-ask-eval-") as tmp:
        for n, it in enumerate(items):
            session = f"eval-{n}" if it.context else None
            try:
                for earlier in it.context:
                    ask(earlier, audience=it.audience, session=session, lexical=lexical, data_dir=tmp, **ask_kw)
                r = ask(it.q, audience=it.audience, session=session, lexical=lexical, data_dir=tmp, **ask_kw)
            except SpinemetsError as exc:
                results.append(ItemResult(id=it.id, declined=False, expected_declined=it.declined, ranked=[], cited=[],
                                          error=str(exc), facts_missing=list(it.facts), facts_total=len(it.facts)))
                continue
            ranked = [h.id for h in r.retrieval]
            cited = r.cited_statements()
            res = ItemResult(id=it.id, declined=r.declined, expected_declined=it.declined, ranked=ranked, cited=cited,
                             ms=r.timings_ms.get("total", 0.0))
            if it.cite:
                res.recall_at_1 = len(set(it.cite) & set(ranked[:1])) / min(len(it.cite), 1)
                res.recall_at_3 = len(set(it.cite) & set(ranked[:3])) / min(len(it.cite), 3)
                res.cite_total = len(it.cite)
                res.cite_found = len(set(it.cite) & set(cited))
            if not it.declined:
                text = r.answer_text()
                res.facts_total = len(it.facts)
                res.facts_missing = [f for f in it.facts if not _found(f, text)]
                if it.cite and not r.declined:
                    ok = set(it.cite) | set(it.related)
                    res.precision_total = len(cited)
                    res.precision_hits = sum(1 for c in cited if c in ok)
            results.append(res)

    with_cite = [r for r in results if r.recall_at_1 is not None]
    facts_total = sum(r.facts_total for r in results)
    facts_missing = sum(len(r.facts_missing) for r in results)
    prec_total = sum(r.precision_total for r in results)
    cite_total = sum(r.cite_total for r in results)
    return EvalReport(
        mode=mode, set=str(p), questions=len(items),
        recall_at_1=round(statistics.fmean(r.recall_at_1 or 0 for r in with_cite), 4) if with_cite else 0.0,
        recall_at_3=round(statistics.fmean(r.recall_at_3 or 0 for r in with_cite), 4) if with_cite else 0.0,
        answer_fact_rate=round(1 - facts_missing / facts_total, 4) if facts_total else 1.0,
        citation_precision=round(sum(r.precision_hits for r in results) / prec_total, 4) if prec_total else 1.0,
        citation_recall=round(sum(r.cite_found for r in results) / cite_total, 4) if cite_total else 1.0,
        refusal_accuracy=round(sum(r.declined == r.expected_declined and not r.error for r in results) / len(results), 4)
        if results else 0.0,
        median_ms=round(statistics.median(r.ms for r in results), 2) if results else 0.0,
        items=results,
    )
