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

Items may also carry ``crux`` (terms the FIRST sentence must contain: the study, the time limit, the grade),
``topic`` (the curated answer topic the question should reach; a number for the hold-out set, which was written
from the topic list only), ``area`` and ``source`` (where a question was paraphrased from).  In ``crux`` and
``facts`` an entry may list alternatives separated by ``|`` ("24 hours|24 h"); any one counts.

Figures:

* direct-answer rate: of the answered items with ``crux``, the share whose first sentence carries every crux
  entry (the first sentence answers the question);
* key-fact coverage: ``facts`` found anywhere in the answer's sentences;
* draft in the first sentence, internal-id leaks (statement, table or topic ids, field paths, seed numbers in
  anything a person reads): counts, which must be 0;
* out-of-scope declined: of the items that must be declined, the share declined;
* topic routing: of the items with a ``topic`` id, the share routed to it;

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

import re
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
    crux: list[str] = Field(default_factory=list)
    topic: str | int | None = None
    area: str | None = None
    source: str | None = None


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
    first_sentence: str = ""
    crux_missing: list[str] = Field(default_factory=list)
    crux_total: int = 0
    routed_topic: str | None = None
    expected_topic: str | None = None
    also_topics: list[str] = Field(default_factory=list)  # later topics split from the expected one: also right
    draft_first: bool = False
    leaks: list[str] = Field(default_factory=list)

    @property
    def routed_right(self) -> bool:
        return self.routed_topic == self.expected_topic or self.routed_topic in self.also_topics


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
    direct_answer_rate: float = 0.0
    key_fact_coverage: float = 0.0
    out_of_scope_declined: float = 1.0
    draft_in_first_sentence: int = 0
    internal_id_leaks: int = 0
    topic_routing: float | None = None
    curated_share: float = 0.0
    p95_ms: float = 0.0
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
            if it.crux_missing:
                problems.append("first sentence lacks " + "; ".join(repr(f) for f in it.crux_missing)
                                + f" (first sentence: {it.first_sentence[:160]!r})")
            if it.expected_topic and not it.routed_right:
                problems.append(f"routed to {it.routed_topic or 'no topic'}, expected {it.expected_topic}")
            if it.draft_first:
                problems.append("draft item in the first sentence")
            if it.leaks:
                problems.append("internal ids in the text: " + ", ".join(it.leaks[:5]))
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
            f"  direct-answer rate  {self.direct_answer_rate:.3f}  (first sentence carries the crux)",
            f"  key-fact coverage   {self.key_fact_coverage:.3f}",
            f"  out-of-scope declined {self.out_of_scope_declined:.3f}",
            f"  draft in 1st sentence {self.draft_in_first_sentence}",
            f"  internal-id leaks   {self.internal_id_leaks}",
            f"  curated answers     {self.curated_share:.3f}  (share of answered questions routed to a topic)",
        ]
        if self.topic_routing is not None:
            lines.append(f"  topic routing       {self.topic_routing:.3f}")
        lines += [
            f"  recall@1            {self.recall_at_1:.3f}",
            f"  recall@3            {self.recall_at_3:.3f}",
            f"  answer-fact rate    {self.answer_fact_rate:.3f}",
            f"  citation precision  {self.citation_precision:.3f}",
            f"  citation recall     {self.citation_recall:.3f}",
            f"  refusal accuracy    {self.refusal_accuracy:.3f}",
            f"  median latency      {self.median_ms:.1f} ms per question (warm, in process); p95 {self.p95_ms:.1f} ms",
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
    """Is the fact (or one of its ``|`` alternatives) in the text?  Case and spacing do not count."""
    hay = " ".join(text.lower().split())
    return any(" ".join(alt.lower().split()) in hay for alt in fact.split("|") if alt.strip())


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z(\[])")


def first_sentence(text: str) -> str:
    """The first sentence of a text (a full stop followed by a capital letter ends it)."""
    text = " ".join(text.split())
    return _SENTENCE_END.split(text, maxsplit=1)[0] if text else ""


def evaluate(path: str | Path | None = None, mode: str = "hybrid", **ask_kw: Any) -> EvalReport:
    """Run every question of the set through ask and score it (see the module docstring)."""
    from spinemets.ask.compose import ask
    from spinemets.ask.scope import leave_out
    from spinemets.errors import SpinemetsError

    from spinemets.knowledge.loader import load_kb
    from spinemets.wording import internal_ids

    p, items = load_set(path)
    kb = ask_kw.get("kb") or load_kb()
    topic_numbers, topic_also = _topic_numbers(p), _topic_also(p)
    lexical = mode == "lexical"
    results: list[ItemResult] = []
    # a development set's own out-of-scope questions are among ask's declined examples: they are left out while it
    # is scored, so that its figure measures questions ask has not seen
    with tempfile.TemporaryDirectory(prefix="spinemets-ask-eval-") as tmp, leave_out(p.name):
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
                             ms=r.timings_ms.get("total", 0.0), routed_topic=r.answer_topic)
            res.expected_topic = topic_numbers.get(it.topic) if isinstance(it.topic, int) else it.topic
            res.also_topics = topic_also.get(it.topic, []) if isinstance(it.topic, int) else []
            if r.direct_answer:
                res.first_sentence = first_sentence(r.direct_answer[0].text)
                res.draft_first = r.direct_answer[0].draft
            res.leaks = internal_ids(r.to_text().split("\nReferences\n")[0], kb)
            if it.crux and not it.declined:
                res.crux_total = len(it.crux)
                res.crux_missing = [c for c in it.crux if not _found(c, res.first_sentence)]
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
    with_crux = [r for r in results if r.crux_total]
    out_of_scope = [r for r in results if r.expected_declined]
    with_topic = [r for r in results if r.expected_topic]
    answered = [r for r in results if not r.declined and not r.error]
    times = sorted(r.ms for r in results)
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
        p95_ms=round(times[min(len(times) - 1, int(0.95 * len(times)))], 2) if times else 0.0,
        direct_answer_rate=round(sum(1 for r in with_crux if not r.crux_missing and not r.declined) / len(with_crux), 4)
        if with_crux else 0.0,
        key_fact_coverage=round(1 - facts_missing / facts_total, 4) if facts_total else 1.0,
        out_of_scope_declined=round(sum(r.declined for r in out_of_scope) / len(out_of_scope), 4) if out_of_scope else 1.0,
        draft_in_first_sentence=sum(r.draft_first for r in results),
        internal_id_leaks=sum(len(r.leaks) for r in results),
        topic_routing=round(sum(r.routed_right for r in with_topic) / len(with_topic), 4)
        if with_topic else None,
        curated_share=round(sum(1 for r in answered if r.routed_topic) / len(answered), 4) if answered else 0.0,
        items=results,
    )



def _topic_also(set_path: Path) -> dict[int, list[str]]:
    """Topics split later from a listed one (``also`` in ``ask_topic_list.yaml``): routing there is right too."""
    listing = set_path.parent / "ask_topic_list.yaml"
    if not listing.exists():
        return {}
    raw = yaml.safe_load(listing.read_text(encoding="utf-8")) or []
    return {int(row["number"]): [str(t) for t in row["also"]] for row in raw if row.get("also")}


def _topic_numbers(set_path: Path) -> dict[int, str]:
    """The hold-out set names topics by their number in the topic list its writer was given
    (``ask_topic_list.yaml`` beside the set: number -> topic id); other sets name topic ids."""
    listing = set_path.parent / "ask_topic_list.yaml"
    if not listing.exists():
        return {}
    raw = yaml.safe_load(listing.read_text(encoding="utf-8")) or []
    return {int(row["number"]): str(row["topic"]) for row in raw if row.get("topic")}
