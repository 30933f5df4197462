"""Answer a free-text question from the knowledge base, with numbered references.

The answer has the shape clinicians know from guideline-backed assistants:

* a direct answer: the bottom line of the curated answer topic the question
  asks (``knowledge/data/topics``); for a patient, the pathway's headline; for
  a calculator question, its result; when no topic matches, the best statement
  (and the answer says that no curated answer matched);
* key points (the topic's ordered statements, or the next best statements);
* alternatives and caveats (caveat statements among the best matches);
* for a question that describes a patient, what the imaging pathway
  recommends for that patient, with what was understood from the words;
* for a calculator question, the score's result;
* numbered references, every sentence carrying its numbers.

Nothing is generated: each sentence is a topic's bottom line, a knowledge-base
statement (its ``text``, or ``patient_text`` for the patient audience) or a
line of an engine result.  References are the primary sources (guidelines,
studies, labels, reviews): web summaries and AI answer pages are never cited for
a clinical fact, and a statement resting on them alone is left out.  A question outside the knowledge base is declined with the
reason and the nearest topics that are covered.  Text that reads as an
instruction is treated as a question like any other and flagged.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from spinemets.ask.index import THRESHOLDS, Retrieval, index_for
from spinemets.ask.scenario import Parse, Understood, reader_for
from spinemets.ask.session import Session, validate_id
from spinemets.ask.text import PhraseMatcher, instruction_like, normalise
from spinemets.ask.topics import Route, topic_index_for
from spinemets.errors import ContradictoryInputError, InvalidInputError
from spinemets.knowledge.loader import KnowledgeBase, load_kb
from spinemets.knowledge.models import NON_PRIMARY_KINDS, AnswerTopic, Statement
from spinemets.results import Citer, Reference, Result, reference_lines
from spinemets.wording import field_name, missing_in_words

MAX_QUESTION = 1000
AUDIENCES = ("clinician", "patient")
Audience = Literal["clinician", "patient"]
CALCULATORS = ("sins", "escc", "noms", "probability")
# Pathway inputs that describe a clinical picture (age alone does not).
_PATHWAY_SKIP = {"pathway.age", "pathway.sex"}
_DEFICIT_FIELDS = {"pathway.neuro_deficits", "pathway.suspected_cord_compression", "pathway.suspected_cauda_equina"}
_CANCER_FIELDS = {"pathway.primary_site", "pathway.cancer_history"}
_SYMPTOM_FIELDS = {"pathway.spinal_pain", *_DEFICIT_FIELDS}


@dataclass(frozen=True)
class Composition:
    """How many statements go where (tuned on the development set)."""

    second_ratio: float = 0.90  # a second statement joins the direct answer if it scores this close to the first
    key_min: float = 0.70  # key points: at least this share of the best score
    key_max: int = 2
    caveat_min: float = 0.70  # alternatives and caveats: caveat statements scoring at least this share of the best
    caveat_max: int = 1
    pool: int = 10  # statements considered after the direct answer
    topic_key_max: int = 6  # key points of a curated topic


COMPOSITION = Composition()


class Sentence(BaseModel):
    """One sentence of the answer and what stands behind it."""

    text: str
    refs: list[int] = Field(default_factory=list, description="numbers in the answer's reference list")
    kb_items: list[str] = Field(default_factory=list, description="statement ids or TABLE.ROW ids behind the sentence")
    sources: list[str] = Field(default_factory=list)
    origin: str = Field(description="'topic' (a curated bottom line), 'statement', or the engine that produced it: "
                                    "pathway, sins, escc, noms, probability")
    draft: bool = False


class UnderstoodItem(BaseModel):
    """An input read from the question (or kept from an earlier turn of the session)."""

    field: str
    value: Any
    phrase: str
    negated: bool = False
    assumed: bool = False
    from_earlier_turn: bool = False

    def describe(self) -> str:
        value = _show(self.value)
        bits = [f"{field_name(self.field)}: {value}"]
        if self.from_earlier_turn:
            bits.append("(from an earlier turn)")
        else:
            bits.append(f'(from "{self.phrase}"' + (", negated" if self.negated else "") + ")")
        if self.assumed:
            bits.append("(assumed: a named cancer counts as known cancer; say 'history of' or 'survivor' if treated)")
        return " ".join(bits)


class EngineSummary(BaseModel):
    instrument: str
    status: str
    summary: str
    missing: list[str] = Field(default_factory=list)


class Retrieved(BaseModel):
    id: str
    score: float
    lexical: float
    dense: float | None = None


class AskResult(BaseModel):
    """The answer to one question.  ``to_text()`` renders it; the JSON form carries the same."""

    instrument: str = "ask"
    question: str
    audience: Audience
    mode: Literal["hybrid", "lexical"]
    status: Literal["answered", "declined"]
    declined: bool
    decline_reason: str | None = None
    nearest_topics: list[str] = Field(default_factory=list)
    answer_topic: str | None = Field(None, description="id of the curated answer topic the question was routed to")
    answer_topic_title: str | None = Field(None, description="its title, in words")
    curated: bool = Field(False, description="the first sentence is a curated bottom line")
    instruction_like: bool = Field(False, description="the question contained text that reads as an instruction; it was not followed")
    session_id: str | None = None
    turn: int | None = None
    understood: list[UnderstoodItem] = Field(default_factory=list)
    summary: str
    direct_answer: list[Sentence] = Field(default_factory=list)
    key_points: list[Sentence] = Field(default_factory=list)
    alternatives_and_caveats: list[Sentence] = Field(default_factory=list)
    for_this_patient: list[Sentence] = Field(default_factory=list)
    calculations: list[Sentence] = Field(default_factory=list)
    engines: list[EngineSummary] = Field(default_factory=list)
    missing: list[str] = Field(default_factory=list, description="inputs an engine needs that the question did not give")
    notes: list[str] = Field(default_factory=list, description="messages about how the question was handled")
    retrieval: list[Retrieved] = Field(default_factory=list, description="best-ranked statements, for transparency")
    draft_items: list[str] = Field(default_factory=list)
    draft_labels: list[str] = Field(default_factory=list, description="the draft items in words (same order)")
    references: list[Reference] = Field(default_factory=list)
    kb_version: str
    disclaimer: str
    timings_ms: dict[str, float] = Field(default_factory=dict)

    def sentences(self) -> list[Sentence]:
        return [*self.direct_answer, *self.key_points, *self.alternatives_and_caveats, *self.for_this_patient,
                *self.calculations]

    def cited_statements(self, origin: str | None = "statement") -> list[str]:
        out: list[str] = []
        for s in self.sentences():
            if origin is None or s.origin == origin:
                out.extend(i for i in s.kb_items if i not in out)
        return out

    def missing_labels(self) -> list[str]:
        """The missing inputs in clinical words (``missing`` keeps the field paths)."""
        return missing_in_words(self.missing)

    def answer_text(self) -> str:
        """The sentences only (no references or disclaimer), as the answer-fact check reads them."""
        return "\n".join(s.text for s in self.sentences())

    def to_text(self) -> str:
        lines: list[str] = []
        if self.declined:
            lines.append(f"ASK: declined - {self.decline_reason}")
            if self.nearest_topics:
                lines.append("Nearest topics the knowledge base covers: " + ", ".join(self.nearest_topics))
        if self.instruction_like:
            lines.append("! The question contains text that reads as an instruction; ask follows no instructions and "
                         "answers only from the knowledge base.")
        if self.understood:
            lines.append("Understood from the question:")
            lines.extend(f"  - {u.describe()}" for u in self.understood)
        for title, sentences, bullet in (
            ("Answer", self.direct_answer, ""),
            ("Key points", self.key_points, "- "),
            ("Alternatives and caveats", self.alternatives_and_caveats, "- "),
            ("For this patient (imaging pathway)", self.for_this_patient, "- "),
            ("Calculation", self.calculations, "- "),
        ):
            if sentences:
                lines.append("")
                lines.append(title)
                for s in sentences:
                    flag = " [DRAFT]" if s.draft else ""
                    lines.append(f"  {bullet}{s.text}{_refs(s.refs)}{flag}")
        if self.missing:
            lines.append("")
            lines.append("Missing: " + ", ".join(self.missing_labels()))
        for note in self.notes:
            lines.append(f"! {note}")
        if self.draft_items:
            lines.append("! DRAFT: this answer uses unverified knowledge-base items awaiting review: "
                         + "; ".join(self.draft_labels or self.draft_items))
        lines.extend(reference_lines(self.references, self.kb_version, self.disclaimer))
        return "\n".join(lines).lstrip("\n")


def _refs(numbers: Sequence[int]) -> str:
    return f" [{','.join(str(n) for n in numbers)}]" if numbers else ""


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return "none" if not value else ", ".join(_show(v) for v in value)
    if isinstance(value, dict):
        return " ".join(str(v).replace("_", " ") for v in value.values())
    if isinstance(value, float):
        return f"{value:.0%}" if 0 <= value <= 1 else str(value)
    return str(value).replace("_", " ")


class _Citer(Citer):
    """Citer that also records drafts reported by engine results."""

    def add_draft(self, item_id: str) -> None:
        if item_id not in self._draft:
            self._draft.append(item_id)


# --- the entry point -------------------------------------------------------------------------------------------


def ask(
    question: str,
    *,
    audience: str = "clinician",
    session: str | None = None,
    lexical: bool = False,
    kb: KnowledgeBase | None = None,
    data_dir: str | Path | None = None,
    composition: Composition = COMPOSITION,
) -> AskResult:
    """Answer *question* from the knowledge base (see the module docstring).

    ``audience`` is ``clinician`` or ``patient``; ``session`` an id whose
    earlier turns a follow-up refines; ``lexical`` answers without loading
    the dense model.  Raises :class:`~spinemets.errors.InvalidInputError`
    for an empty or too long question, an unknown audience or a bad session
    id, and :class:`~spinemets.errors.ContradictoryInputError` when the
    question gives one input two ways.
    """
    t0 = time.perf_counter()
    question = _validate_question(question)
    if audience not in AUDIENCES:
        raise InvalidInputError("ask.audience", f"{audience!r} is not allowed; allowed values: {', '.join(AUDIENCES)}")
    if session is not None:
        validate_id(session)
    kb = kb or load_kb()
    notes: list[str] = []
    use_dense = not lexical
    if use_dense:
        from spinemets.ask import dense

        if not dense.available():
            use_dense = False
            notes.append("Dense retrieval is not installed (pip install 'spinemets[dense]'); this answer uses lexical search only.")

    from spinemets.ask.spelling import speller_for

    asked = question  # as written: shown, stored and checked for instructions
    question, slips = speller_for(kb).correct(question)  # typing slips read as the knowledge base's words
    if slips:
        notes.append("Read " + ", ".join(f"'{c.written}' as '{c.read_as}'" for c in slips) + ".")
    reader = reader_for(kb)
    parse = reader.read(question)
    sess = Session.open(session, data_dir) if session is not None else None
    cite = _Citer(kb)
    t1 = time.perf_counter()

    engines, state, understood, missing = _run_engines(kb, parse, sess, cite)
    t2 = time.perf_counter()
    index = index_for(kb)
    neutral = {i for a, b in parse.spans for i in range(a, b)}
    retrieval = index.search(question, dense=use_dense, neutral=neutral)
    t_retrieval = time.perf_counter()

    route: Route | None = None
    groups = _populations(kb, parse, state)  # who the patient is: steers routing and the choice of topic
    if kb.answer_topics:
        route = topic_index_for(kb).route(question, retrieval.units, retrieval.vector,
                                          groups=frozenset(groups))
        if not retrieval.supported and route.rescue and retrieval.coverage >= THRESHOLDS.min_coverage:
            # The words are the knowledge base's (a topic's phrasing) and a curated answer matches confidently.
            retrieval.supported, retrieval.reason = True, None
        elif (not retrieval.supported and route.chosen is not None
              and retrieval.coverage >= THRESHOLDS.min_coverage and _names_the_domain(kb, parse.words)):
            # The question names the spine or the disease, a curated answer matches and the knowledge base knows
            # most of its words: a word it does not know ('colonography', 'hotter'), or statements that each carry
            # only part of the question, do not make it out of scope.
            retrieval.supported, retrieval.reason = True, None
    t3 = time.perf_counter()

    injected = instruction_like(asked)
    ran = [e for e in engines if e.result is not None]
    declined = not retrieval.supported and not ran
    symptomatic = any(u.field in _SYMPTOMS and not u.negated and not u.default for u in parse.items)
    no_cancer = parse.values("pathway").get("cancer_history") == "none"
    # a deficit beyond root pain (weakness, numbness, sphincter or gait change, suspected compression)
    deficit = any(u.field in _DEFICIT_FIELDS and u.value not in (False, [], None, "radicular") and not u.negated
                  and not u.default for u in parse.items)
    outside = _outside_scope(kb, parse.words, route, engines_ran=bool(ran), symptomatic=symptomatic,
                             calculated=any(e.name != "pathway" for e in ran), no_cancer=no_cancer, deficit=deficit,
                             answer_anyway=symptomatic and _cancer_red_flag_or_child(parse),
                             vector=retrieval.vector if not injected else None)
    if not outside and _stated_ratio_only(ran) and not _names_the_domain(kb, parse.words):
        # a likelihood ratio and a pre-test probability alone (D-dimer and pulmonary embolism, say) are arithmetic
        # about any disease: without the spine or the disease named, the question is not ask's
        outside = ("the question gives a likelihood ratio but names neither the spine nor spinal metastases; ask "
                   "computes post-test probabilities of spinal metastasis only")
    if injected:
        outside = ("the question contains instructions to the system; ask follows none and answers clinical "
                   "questions only: ask again without them")
    if outside:  # the scope reason (or an instruction) is named, whatever else applies: it says more than coverage
        declined, retrieval.reason, ran = True, outside, []
    if ran and not retrieval.supported and retrieval.reason:
        notes.append(f"No knowledge-base statement was added beyond the engine results: {retrieval.reason}.")
    result_kw: dict[str, Any] = dict(
        question=asked, audience=audience, mode="hybrid" if use_dense else "lexical",
        instruction_like=injected, session_id=session, understood=understood, missing=missing, notes=notes,
        retrieval=[Retrieved(id=h.id, score=round(h.score, 4), lexical=round(h.lexical, 3),
                             dense=None if h.dense is None else round(h.dense, 4)) for h in retrieval.hits[:10]],
        kb_version=kb.version, disclaimer=kb.manifest.disclaimer,
    )
    if declined:
        topics = _nearest_topics(kb, retrieval, route)
        reason = retrieval.reason or "the question is outside the knowledge base"
        out = AskResult(
            status="declined", declined=True, decline_reason=reason, nearest_topics=topics,
            summary=f"declined: {reason}", **result_kw,
        )
    else:
        site = (state.get("pathway") or parse.values("pathway")).get("primary_site")
        topic = _applicable_topic(kb, route, groups, notes, site)
        if _named_calculator(ran, topic, parse):
            topic = None
        if topic is not None:
            direct, key, caveats = [], _usable(kb, topic.key_points), _usable(kb, topic.caveats)
            key = key[: composition.topic_key_max]
        else:
            if groups or site:
                retrieval.hits = [h for h in retrieval.hits if not _written_for_others(kb, h.id, groups, site)]
            direct, key, caveats = (_select(kb, retrieval, question, composition, bool(ran)) if retrieval.supported
                                    else ([], [], []))
            if retrieval.supported and kb.answer_topics and not ran:
                notes.append("No curated answer matched this question; the closest statements of the knowledge "
                             "base follow.")
        if "pathway.age" in parse.unstated or any(
                e.name == "pathway" and "child" in getattr(e.result, "patient_groups", []) for e in ran):
            # The adult time limits never reach an answer about a child (the paediatric criteria apply).
            direct, key, caveats = ([sid for sid in ids if "timing" not in kb.statements[sid].topics]
                                    for ids in (direct, key, caveats))
        elif "no_cancer" in groups:
            # Nor do the metastasis guidelines' time limits reach a patient without cancer (their own are kept).
            direct, key, caveats = ([sid for sid in ids if not _metastasis_time_limit(kb, sid)]
                                    for ids in (direct, key, caveats))
        direct_s = ([_topic_sentence(kb, topic, cite, audience)] if topic is not None else
                    [_statement_sentence(kb, sid, cite, audience) for sid in direct])
        key_s = [_statement_sentence(kb, sid, cite, audience) for sid in key]
        caveat_s = [_statement_sentence(kb, sid, cite, audience) for sid in caveats]
        patient_s: list[Sentence] = []
        calc_s: list[Sentence] = []
        for e in ran:
            if e.name == "pathway":
                patient_s.extend(e.sentences)
            else:
                calc_s.extend(e.sentences)
        for e in engines:
            if e.result is None:
                calc_s.extend(e.sentences)
            elif e.note:
                notes.append(e.note)
        bare = _bare_case(parse)
        heads = [h for e in ran if e.sentences and e.note is None
                 and (topic is None or (_engine_decides(e, topic, _asks_which_study(question), len(parse.fields(e.name)))
                                        and not (bare and e.name == "pathway")
                                        and not (e.name == "escc" and _grade_only(parse))))
                 for h in e.sentences[:2 if e.sentences[0].kb_items == [f"{e.name}:reviewed_parts"] else 1]]
        step = _patient_step(topic, ran) if topic is not None and not heads and parse.patient else None
        if step is not None:
            # "Should he have dexamethasone?" about a described patient: the patient's own step answers first
            # ("No routine steroids without neurological symptoms or signs"), the general bottom line follows.
            heads = [step[1]]
            patient_s = [s for s in patient_s if s is not step[0]]

        prior = _negative_test_sentence(ran) if any(h.origin == "pathway" for h in heads) and not any(
            e.name == "pathway" and getattr(e.result.urgency, "level", None) == "emergency" for e in ran) else None
        if prior is not None:
            # "X-ray normal - can I discharge?": what the negative test does not exclude answers first, then the
            # patient's pathway.
            heads = [prior, *(h for h in heads if h is not prior)]
            patient_s = [s for s in patient_s if s is not prior]
        stated_total = [e.sentences[0] for e in engines if e.name == "sins_total"]
        if stated_total and not any(e.name == "sins" and e.result.status == "complete" for e in ran):
            # the total given answers first; a SINS from the few components read stays in the calculation
            sins_heads = {e.sentences[0].text for e in ran if e.name == "sins" and e.sentences}
            heads = [*stated_total, *(h for h in heads if h not in stated_total and h.text not in sins_heads)]
        if heads:
            # A calculator question is answered by the calculator, a patient by the pathway (its headline says
            # what to image, or what holds while inputs are missing); the statements become key points.
            limit = composition.topic_key_max if topic is not None else composition.key_max + 1
            key_s = [*direct_s, *key_s][:limit]
            direct_s = heads
            calc_s = [s for s in calc_s if s not in heads]
            patient_s = [s for s in patient_s if s not in heads]
        emergency = next((e.sentences[0] for e in ran if e.name == "pathway" and e.sentences
                          and getattr(e.result.urgency, "level", None) == "emergency"), None)
        if emergency is not None and direct_s and emergency not in direct_s:
            # a curated answer or the patient's own step answers first; the emergency follows at once, not only
            # under "For this patient"
            direct_s = [direct_s[0], emergency, *direct_s[1:]]
            patient_s = [s for s in patient_s if s is not emergency]
        key_s, caveat_s, patient_s, calc_s = _without_repeats(direct_s, key_s, caveat_s, patient_s, calc_s)
        direct_s, key_s = _reviewed_first(direct_s, key_s)
        for e in ran:
            for item in e.result.draft_items:
                cite.add_draft(item)
        if not direct_s and key_s:
            notes.append("No reviewed statement of the knowledge base answers this question; the draft statements "
                         "below await clinical review.")
        summary = direct_s[0].text if direct_s else "answered"
        out = AskResult(
            status="answered", declined=False, summary=summary, direct_answer=direct_s, key_points=key_s,
            answer_topic=topic.id if topic is not None else None,
            answer_topic_title=topic.title if topic is not None else None,
            curated=topic is not None and not heads,
            alternatives_and_caveats=caveat_s, for_this_patient=patient_s, calculations=calc_s,
            engines=[EngineSummary(instrument=e.name, status=e.result.status, summary=e.result.summary,
                                   missing=list(e.result.missing)) for e in ran],
            **result_kw,
        )
        out.references = cite.references()
        out.draft_items = cite.draft_items
        out.draft_labels = cite.draft_labels()
    t4 = time.perf_counter()
    out.timings_ms = {k: round(v, 3) for k, v in {
        "read": (t1 - t0) * 1000, "engines": (t2 - t1) * 1000, "retrieval": (t_retrieval - t2) * 1000, "routing": (t3 - t_retrieval) * 1000,
        "compose": (t4 - t3) * 1000, "total": (t4 - t0) * 1000, **retrieval.timings}.items()}

    if sess is not None:
        out.turn = sess.turn + 1
        sess.add_turn({
            "question": asked, "audience": audience, "status": out.status,
            "understood": [u.model_dump(mode="json") for u in understood if not u.from_earlier_turn],
            "cited": out.cited_statements(origin=None), "engines": [e.instrument for e in out.engines],
        }, state)
        sess.save()
    return out


def _validate_question(question: Any) -> str:
    if not isinstance(question, str):
        raise InvalidInputError("ask.question", f"expected text, got {type(question).__name__}")
    text = question.strip()
    if not text:
        raise InvalidInputError("ask.question", "is empty; ask a question in words")
    if len(text) > MAX_QUESTION:
        raise InvalidInputError("ask.question", f"is {len(text)} characters long; the limit is {MAX_QUESTION}")
    if not re.search(r"[A-Za-z0-9]", normalise(text)):
        raise InvalidInputError("ask.question", "has no letters or digits; ask a question in words")
    return text


# --- statements ------------------------------------------------------------------------------------------------


def _select(kb: KnowledgeBase, r: Retrieval, question: str, c: Composition, calculator: bool) -> tuple[list[str], list[str], list[str]]:
    """Direct answer, key points, alternatives and caveats from the ranked statements."""
    usable = set(_usable(kb, (h.id for h in r.hits)))
    hits = [h for h in r.hits if h.id in usable]
    if not hits:
        return [], [], []
    scores = {h.id: h.score for h in hits}
    # Nothing draft opens an answer: the best reviewed statement does; drafts can only follow, flagged.
    reviewed = [h for h in hits if not kb.statements[h.id].is_draft]
    if not reviewed:
        return [], [h.id for h in hits[: c.key_max]], []
    lead = reviewed[0]
    hits = [lead, *(h for h in hits if h is not lead)]
    top = scores[lead.id]
    direct = [lead.id]
    second = hits[1] if len(hits) > 1 else None
    if second is not None and scores[second.id] >= c.second_ratio * top and kb.statements[second.id].kind != "caveat" \
            and not kb.statements[second.id].is_draft:
        direct.append(second.id)
    key: list[str] = []
    caveats: list[str] = []
    for h in hits[len(direct): len(direct) + c.pool]:
        st = kb.statements[h.id]
        s = scores[h.id]
        if st.kind == "caveat":
            if s >= c.caveat_min * top and len(caveats) < c.caveat_max:
                caveats.append(h.id)
        elif s >= c.key_min * top and len(key) < c.key_max:
            key.append(h.id)
    return direct, key, caveats


def _without_repeats(direct: list[Sentence], *sections: list[Sentence]) -> tuple[list[Sentence], ...]:
    """Each statement and each sentence once: a later section drops what an earlier one already says."""
    seen_items: set[str] = {i for s in direct for i in s.kb_items}
    seen_text: set[str] = {s.text for s in direct}
    out: list[list[Sentence]] = []
    for section in sections:
        kept = []
        for s in section:
            single = s.origin == "statement" and len(s.kb_items) == 1
            if s.text in seen_text or single and s.kb_items[0] in seen_items:
                continue
            kept.append(s)
            seen_text.add(s.text)
            seen_items.update(s.kb_items if single or s.origin == "topic" else ())
        out.append(kept)
    return tuple(out)


def _primary(kb: KnowledgeBase, sources: Iterable[str]) -> list[str]:
    """The sources that can back a clinical fact (not web summaries or AI answer pages)."""
    return [s for s in sources if s in kb.sources and kb.sources[s].kind not in NON_PRIMARY_KINDS]


def _usable(kb: KnowledgeBase, ids: Iterable[str]) -> list[str]:
    """Statements ask may show: those with at least one primary source."""
    return [sid for sid in ids if _primary(kb, kb.statement(sid).sources)]


def _statement_sentence(kb: KnowledgeBase, sid: str, cite: _Citer, audience: str) -> Sentence:
    st: Statement = kb.statement(sid)
    sources = _primary(kb, st.sources) or list(st.sources)  # callers pass usable statements (a primary source)
    if st.is_draft:
        cite.add_draft(sid)
    refs = cite.cite_sources(sources)
    text = st.patient_text if audience == "patient" else st.text
    return Sentence(text=text.strip(), refs=refs, kb_items=[sid], sources=sources, origin="statement",
                    draft=st.is_draft)


def _topic_sentence(kb: KnowledgeBase, topic: AnswerTopic, cite: _Citer, audience: str) -> Sentence:
    """The curated bottom line, citing its primary sources."""
    text = topic.patient_answer if audience == "patient" and topic.patient_answer else topic.answer
    return Sentence(text=" ".join(text.split()), refs=cite.cite_sources(topic.answer_sources), kb_items=[topic.id],
                    sources=list(topic.answer_sources), origin="topic", draft=False)


# Patient groups in words (for the note when a curated answer does not apply).
_GROUP_WORDS = {
    "child": "a child or adolescent", "pregnancy": "a pregnant patient", "no_cancer": "a patient without known cancer",
    "known_cancer": "a patient with known cancer", "myeloma": "myeloma or another plasma-cell disorder",
    "renal_impairment": "reduced kidney function", "implant": "an implanted device", "adult": "an adult",
}


def _populations(kb: KnowledgeBase, parse: Parse, state: dict[str, dict[str, Any]]) -> set[str]:
    """The patient groups the question describes (empty when it describes no patient)."""
    from pydantic import ValidationError

    from spinemets.pathway import PathwayInput, recognised_groups

    data = state.get("pathway") or parse.values("pathway")
    groups: set[str] = set()
    if "pathway.age" in parse.unstated:
        groups.add("child")
    elif "pathway.age" not in parse.fields("pathway"):
        groups |= parse.described  # "my dad", "a woman": an adult, though no age is given
    if not data:
        return groups
    try:
        inp = PathwayInput.model_validate(data)
    except ValidationError:
        return groups
    groups |= set(recognised_groups(inp, kb))
    if inp.cancer_history == "none" and not inp.unknown_primary:
        groups.add("no_cancer")
    elif inp.cancer_history in ("current", "previous"):
        groups.add("known_cancer")
    if inp.age is not None and "child" not in groups:
        groups.add("adult")
    return groups


# Statements written for one primary tumour (by id prefix or topic tag) -> the primary_sites rows they hold for.
_PRIMARY_MARKS = {
    "breast": ("breast",), "breast-cancer": ("breast",), "prostate": ("prostate",), "prostate-cancer": ("prostate",),
    "staging.prostate": ("prostate",), "staging.thyroid": ("thyroid",), "staging.neuroendocrine": ("neuroendocrine",),
    "staging.lymphoma": ("lymphoma",), "staging.lung": ("lung",), "staging.renal": ("renal",),
    "lung-cancer": ("lung",), "renal-cell-carcinoma": ("renal",), "myeloma": ("myeloma",),
}
_CHILD_MARKS = ("child", "paediatric", "neuroblastoma", "ewing")


def _metastasis_time_limit(kb: KnowledgeBase, sid: str) -> bool:
    """A time limit of the metastasis and cord-compression guidelines (the 'timing.' statements), not one written
    for patients without cancer."""
    return sid.startswith("timing.") and "timing" in kb.statements[sid].topics and "no_cancer" not in sid


def _written_for_others(kb: KnowledgeBase, sid: str, groups: set[str], site: str | None) -> bool:
    """Is the statement written for another patient than the one described: a child's statement for an adult, a
    statement on one primary tumour for a patient with another?  Unrelated statements never fill an answer."""
    from spinemets.pathway import primary_groups

    st = kb.statements.get(sid)
    if st is None:
        return False
    marks = {*st.topics, sid.split(".")[0], ".".join(sid.split(".")[:2])}
    if groups and "child" not in groups and marks & set(_CHILD_MARKS):
        return True  # a described patient who is not a child (an adult, or a case without a child's words)
    if not site:
        return False
    written_for = {p for m in marks for p in _PRIMARY_MARKS.get(m, ())}
    named = {row.id for row in primary_groups(site, kb)}
    return bool(written_for) and not written_for & named


def _applicable_topic(kb: KnowledgeBase, route: Route | None, groups: set[str], notes: list[str],
                      primary_site: str | None = None) -> AnswerTopic | None:
    """The routed topic, unless it is a draft, written against this patient's group or written for another
    primary tumour than the one the question names (then a note says why)."""
    from spinemets.pathway import primary_groups

    if route is None or route.chosen is None:
        return None
    topic = kb.answer_topic(route.chosen.id)
    if topic.is_draft:
        return None
    if topic.primaries and primary_site:
        named = [row.id for row in primary_groups(primary_site, kb)]
        if not set(named) & set(topic.primaries):
            labels = [kb.table("primary_sites").row(p)["label"] for p in topic.primaries]
            notes.append(f"The curated answer on {topic.title[0].lower() + topic.title[1:]} is written for "
                         f"{' or '.join(labels)}, not for {primary_site}; the answer below comes from the "
                         "statements and the pathway for this patient.")
            return None
    if "pregnancy" in topic.populations and "any" not in topic.populations and groups and "pregnancy" not in groups:
        # A topic written for pregnancy is not the answer for a patient described without it ("melanoma patient
        # with new back pain"): its bottom line would withhold gadolinium for a fetal risk she does not carry.
        notes.append(f"The curated answer on {topic.title[0].lower() + topic.title[1:]} is written for a pregnant "
                     "patient; the answer below comes from the statements and the pathway for this patient.")
        return None
    clash = [g for g in topic.not_for if g in groups]
    if clash:
        who = ", ".join(_GROUP_WORDS.get(g, g.replace("_", " ")) for g in clash)
        notes.append(f"The curated answer on {topic.title[0].lower() + topic.title[1:]} does not hold for {who}; "
                     "the answer below comes from the statements and the pathway for this patient.")
        return None
    return topic


# A curated topic that matches this closely keeps a question that names neither the spine nor the disease
# ("Do I need dye for my scan?"): 0.55 in hybrid mode (0.60 before 2026-12-05; 0.55 kept every out-of-scope
# question of the four development sets declined), 0.60 in lexical mode (0.55 let one through there).
_SCOPE_TOPIC_SCORE = {"hybrid": 0.55, "lexical": 0.60}
_NEAR_TOPIC_SCORE = 0.30  # below this a topic is not "near": the answer lists the areas covered instead


# A relative named in the question ("my dad has ...", "his father says ...") may not be the patient: it does not make
# the patient an adult.
_RELATIVES = frozenset({"partner", "mother", "mum", "mom", "father", "dad", "husband", "wife", "grandmother", "grandma",
                        "granny", "nan", "grandfather", "grandad", "granddad", "grandpa", "uncle", "aunt", "auntie"})


def _stated_ratio_only(ran: list[_Engine]) -> bool:
    """Is the only result a post-test probability whose every test is a likelihood ratio stated in the question?"""
    if len(ran) != 1 or ran[0].name != "probability":
        return False
    steps = [st for sc in getattr(ran[0].result, "scenarios", []) for st in sc.steps]
    return bool(steps) and all(st.sensitivity is None for st in steps)


@functools.lru_cache(maxsize=4)
def _scope_matcher(kb: KnowledgeBase) -> PhraseMatcher:
    return PhraseMatcher((p, row["kind"]) for row in kb.table("ask_scope").rows for p in row["phrases"])


def _names_the_domain(kb: KnowledgeBase, words: list[str]) -> bool:
    """Does the question name the spine or the disease (not only imaging words), and nothing non-clinical?"""
    if "ask_scope" not in kb.tables:
        return False
    kinds = {m.target for m in _scope_matcher(kb).find(words)} | _level_kind(words)
    return bool(kinds & {"spinal", "disease"}) and not kinds & {"non_clinical", "foreign", "other_disease", "off_task",
                                                                "other_treatment", "other_care", "animal"}


def _level_kind(words: list[str]) -> set[str]:
    """A vertebral level named in the question ("uptake at L4") names the spine."""
    from spinemets.ask.index import level_word

    return {"spinal"} if any(level_word(w) for w in words) else set()


# Inputs that describe a symptom or sign: a question stating one is about the patient's spine, whatever else it names.
_SYMPTOMS = frozenset({"pathway.neuro_deficits", "pathway.spinal_pain", "pathway.pain_region",
                       "pathway.suspected_cord_compression", "pathway.suspected_cauda_equina", "pathway.night_pain",
                       "pathway.mechanical_pain", "pathway.pain_progressive", "pathway.brain_symptoms"})


def _outside_scope(kb: KnowledgeBase, words: list[str], route: Route | None, engines_ran: bool = False,
                   symptomatic: bool = False, calculated: bool = False, no_cancer: bool = False,
                   deficit: bool = False, answer_anyway: bool = False, vector: Any = None) -> str | None:
    """Why the question lies outside ask's scope, or None: first by its words (the scope table), then, in hybrid
    mode (*vector* is the question's embedding), by its resemblance to questions ask declines.

    The resemblance never declines a question that names the disease, states a symptom or sign of the patient (pain,
    a deficit, suspected compression: the scope table's rule), that a curated answer matches closely, or that a
    calculator answered."""
    reason = _outside_scope_by_words(kb, words, route, engines_ran=engines_ran, symptomatic=symptomatic,
                                     calculated=calculated, no_cancer=no_cancer, deficit=deficit,
                                     answer_anyway=answer_anyway)
    if (reason or vector is None or symptomatic or deficit or answer_anyway or calculated or not kb.answer_topics
            or _close_topic(route)):
        return reason
    kinds = {m.target for m in _scope_matcher(kb).find(words)}
    if "disease" in kinds:
        return None
    from spinemets.ask.scope import declined_examples

    if declined_examples().resemblance(vector, topic_index_for(kb).dense_matrix()).resembles_outside:
        return ("the question is most like the questions ask does not cover; ask covers the imaging diagnosis of "
                "spinal metastases and the decisions around it")
    return None


def _outside_scope_by_words(kb: KnowledgeBase, words: list[str], route: Route | None, engines_ran: bool = False,
                            symptomatic: bool = False, calculated: bool = False, no_cancer: bool = False,
                            deficit: bool = False, answer_anyway: bool = False) -> str | None:
    """Why the question's words place it outside ask's scope (another body part; neither the spine nor the disease).

    A scenario the pathway or a calculator can answer is in scope unless it names another body part only."""
    if "ask_scope" not in kb.tables:
        return None
    found = _scope_matcher(kb).find(words)
    kinds = {m.target for m in found} | _level_kind(words)
    # a symptom or sign of the patient (pain, a deficit, suspected compression) is answered: a name ('Sue'), a legal
    # word, a procedure ('after spinal anaesthesia') or a drug beside it never makes it someone else's question
    # (another body part or disease still does: a stroke with a weak arm)
    animal = [m.phrase for m in found if m.target == "animal"]
    if animal and not deficit:
        return f"ask answers clinical questions about people, and this question is about an animal (\"{animal[0]}\")"
    off = [] if symptomatic else [m.phrase for m in found if m.target == "non_clinical"]
    if off:
        return f"ask answers clinical questions on spinal imaging only, and this question is not one (\"{off[0]}\")"
    care = [m.phrase for m in found if m.target == "other_care"]
    # (cancer or the disease named with a symptom is always answered: "myeloma, fell, neck pain: does the Canadian
    # C-spine rule apply?" is the imaging of a possible pathological fracture)
    # ("no cancer history" names cancer only to deny it)
    named = kinds & {"disease"} or (kinds & {"cancer"} and not no_cancer)
    # (a neurological deficit or suspected compression is a possible emergency: never declined for what else it names)
    if care and not calculated and not deficit and not answer_anyway and not _close_topic(route) \
            and not (symptomatic and named):
        return _not_covered(f"'{care[0]}'")
    aside = [m.phrase for m in found if m.target == "off_task"]
    if aside and not symptomatic and not calculated and not _close_topic(route):
        return _not_covered(aside[0])
    other = [m.phrase for m in found if m.target == "other_disease"]
    if other and not kinds & {"disease", "cancer"} and not deficit and not answer_anyway:
        return f"the question is about {other[0]}, not spinal metastases; ask covers the imaging of spinal metastases"
    if "spinal" in kinds:
        return None
    treatment = [m.phrase for m in found if m.target == "other_treatment"]
    if treatment and not symptomatic and "imaging" not in kinds and not _close_topic(route):
        return _not_covered(treatment[0])
    foreign = [m.phrase for m in found if m.target == "foreign"]
    if foreign:
        return f"the question is about '{foreign[0]}', not the spine; ask covers the imaging of spinal metastases"
    if "disease" in kinds or engines_ran or deficit:
        # (a deficit is a possible emergency: "legs heavy and clumsy, a tight band round the chest" names no spine)
        return None
    # a cancer named without the spine or bone ("survival of pancreatic cancer") needs a close curated answer
    if _close_topic(route):
        return None
    return "the question names neither the spine nor spinal metastases, and no curated answer matches it"


def _not_covered(subject: str) -> str:
    return (f"the question is about {subject}, which ask does not cover; ask covers the imaging diagnosis of spinal "
            "metastases and the decisions around it")


def _close_topic(route: Route | None) -> bool:
    """Does a curated answer topic match the question closely enough to answer a question at the edge of scope?"""
    return route is not None and route.chosen is not None and route.chosen.score >= _SCOPE_TOPIC_SCORE[
        "lexical" if route.chosen.dense is None else "hybrid"]


def _nearest_topics(kb: KnowledgeBase, r: Retrieval, route: Route | None = None, limit: int = 6) -> list[str]:
    """What the knowledge base covers near the question, in words: the titles of the closest answer topics."""
    if kb.answer_topics:
        if route is None:
            route = topic_index_for(kb).route(r.question, r.units, r.vector)
        titles = [kb.answer_topics[h.id].title for h in route.hits if h.score >= _NEAR_TOPIC_SCORE][:limit]
        if titles:
            return titles
        return list(dict.fromkeys(t.area.replace("_", " ") for t in kb.answer_topics.values()))[:limit]
    topics: list[str] = []
    for h in r.hits[:5]:
        for t in kb.statements[h.id].topics:
            label = t.replace("-", " ")
            if label not in topics:
                topics.append(label)
    if not topics:  # nothing matched at all: the knowledge base's main subjects
        counts: dict[str, int] = {}
        for st in kb.statements.values():
            for t in st.topics:
                counts[t] = counts.get(t, 0) + 1
        topics = [t.replace("-", " ") for t, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
    return topics[:limit]


# --- engines ---------------------------------------------------------------------------------------------------


@dataclass
class _Engine:
    name: str
    result: Result | None = None
    sentences: list[Sentence] = None  # type: ignore[assignment]

    @property
    def note(self) -> str | None:
        """The result's summary when no sentence carries it (it cites nothing, e.g. nothing to recommend yet)."""
        if self.result is None:
            return None
        head = self.sentences[0].kb_items if self.sentences else []
        if head and head[0].startswith(f"{self.name}:"):
            return None
        return f"{_LABEL[self.name]}: {self.result.summary}"


_LABEL = {"pathway": "Imaging pathway", "sins": "SINS", "escc": "ESCC", "noms": "NOMS", "probability": "Post-test probability"}


def _merge(earlier: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    out = dict(earlier)
    for k, v in new.items():
        if isinstance(v, list) and isinstance(out.get(k), list):
            merged = list(out[k])
            merged.extend(x for x in v if x not in merged)
            out[k] = merged
        else:
            out[k] = v
    return out


def _pathway_wanted(parse: Parse, calculator: bool) -> bool:
    rows = {u.rule for u in parse.items if u.field.startswith("pathway.") and u.field not in _PATHWAY_SKIP and not u.default}
    if not rows:
        return False
    if calculator:
        calc_rows = {u.rule for u in parse.items if u.field.split(".")[0] in CALCULATORS}
        return parse.patient and len(rows - calc_rows) >= 2
    # A neurological deficit (or suspected compression) with one more fact is a possible emergency: the pathway
    # always runs for it, whoever writes ("I have prostate cancer and my legs have gone weak").
    deficit = any(u.field in _DEFICIT_FIELDS and u.value not in (False, [], None) and not u.default for u in parse.items)
    # (and a symptom of a deficit alone when the writer has it: "my legs feel heavy and clumsy"; not the name of
    # the condition: "translate 'spinal cord compression' for my leaflet")
    felt = any(u.field == "pathway.neuro_deficits" and u.value not in (False, [], None, "radicular") and not u.negated
               and not u.default for u in parse.items)
    return (parse.patient or len(rows) >= 3 or (deficit and len(rows) >= 2)
            or (felt and bool(_FIRST_PERSON & set(parse.words))) or _bare_case(parse))


_FIRST_PERSON = frozenset({"i", "my", "me", "im", "myself"})


def _cancer_red_flag_or_child(parse: Parse) -> bool:
    """A spinal symptom in someone with cancer (any named primary, 'known ca'), with a red flag, or in a child: the
    question is answered whatever other care or condition it names (a symptom there may be the disease ask covers)."""
    from spinemets.pathway import group_threshold

    data = parse.values("pathway")
    age = data.get("age")
    child = isinstance(age, (int, float)) and age < group_threshold("child")  # the paediatric age, from the KB
    return (data.get("cancer_history") in ("current", "previous") or bool(data.get("primary_site"))
            or any(f not in (None, "none") for f in (data.get("red_flags") or []))
            or child or "pathway.age" in parse.unstated)


# Words that set two named cancers side by side ("than" is left out: "back pain worse than before" is not a comparison
# of cancers, and a patient said to have two primaries must still get the contradiction error)
_COMPARING = frozenset({"versus", "vs", "compared", "comparing", "comparison", "differ", "difference"})


def _compares_primaries(parse: Parse) -> bool:
    """Does the question name two primary tumours to compare them (the only input said two ways)?"""
    return set(parse.conflicts) == {"pathway.primary_site"} and bool(_COMPARING & {w.lower() for w in parse.words})


def _bare_case(parse: Parse) -> bool:
    """A named cancer with a spinal symptom and nothing more ("colorectal cancer and back pain, which scan?"): the
    pathway runs, but a curated topic that matches keeps the first sentence (the question may ask about one test)."""
    said = {u.field for u in parse.items if not u.default and u.value not in (False, [], None)}
    rows = {u.rule for u in parse.items if u.field.startswith("pathway.") and u.field not in _PATHWAY_SKIP and not u.default}
    return (not parse.patient and len(rows) == 2 and not said & _DEFICIT_FIELDS
            and bool(said & _CANCER_FIELDS) and bool(said & _SYMPTOM_FIELDS))


def _run_engines(kb: KnowledgeBase, parse: Parse, sess: Session | None, cite: _Citer
                 ) -> tuple[list[_Engine], dict[str, dict[str, Any]], list[UnderstoodItem], list[str]]:
    """Run the calculators and the pathway the question calls for; returns engines, new state, understood, missing."""
    earlier = dict(sess.state) if sess is not None else {}
    state = dict(earlier)
    engines: list[_Engine] = []
    understood: list[UnderstoodItem] = []
    missing: list[str] = []
    follow = parse.follow_up and bool(earlier)
    used_fields: set[str] = set()

    def inputs(name: str) -> tuple[dict[str, Any], bool]:
        new = parse.values(name)
        if name == "probability":
            new = {k: v for k, v in new.items() if k == "pre_test"}
            if parse.tests:
                new["tests"] = parse.tests
        prior = earlier.get(name) or {}
        if prior and (follow or name == "pathway" and not _new_patient(parse)) and new:
            if name == "probability" and "tests" in new:
                return _merge({k: v for k, v in prior.items() if k != "tests"}, new), True
            return _merge(prior, new), True
        return new, False

    calc_named = parse.instruments & set(CALCULATORS)
    if "noms" in calc_named:
        calc_named -= {"sins", "escc"}  # their inputs feed the NOMS framing
    for name in CALCULATORS:
        data, merged = inputs(name)
        wanted = name in calc_named or (merged and follow and bool(parse.fields(name)))
        if not wanted:
            continue
        parse.check(name)
        if name == "probability":
            if "pre_test" not in data:
                missing.append("probability.pre_test")
                continue
            if not data.get("tests"):
                missing.append("probability.tests")
                continue
        if not data:
            continue
        result = _call(kb, name, data, parse)
        sentences = _engine_sentences(kb, name, result, cite)
        engines.append(_Engine(name, result, sentences))
        missing.extend(m for m in result.missing if m not in missing)
        state[name] = data
        used_fields.add(name)
        understood.extend(_understood(parse, name, earlier.get(name) if merged else None))

    pdata, pmerged = inputs("pathway")
    wanted = _pathway_wanted(parse, bool(calc_named)) or (pmerged and follow and bool(parse.fields("pathway")))
    if (wanted and "adult" in parse.described and pdata.get("age") is None and "pathway.age" not in parse.unstated
            and parse.described_by.get("adult", "").lower() not in _RELATIVES):
        # "my dad", "a woman": an adult though no age is given (the adult doses and time limits apply)
        pdata = {**pdata, "adult": True}
        parse.items.append(Understood("pathway.adult", True, parse.described_by.get("adult", ""), rule="adult"))
    if wanted and "pathway.age" in parse.unstated and "age" not in pdata:
        # A child or adolescent without an age: the adult pathway would be wrong and the paediatric one needs the
        # age, so no pathway advice is given; the age is named as missing (the note explains why).
        missing.append("pathway.age")
        wanted = False
    if wanted and not parse.patient and _compares_primaries(parse):
        # "cord compression from myeloma versus renal cell carcinoma: why does the tumour type matter?" compares
        # two cancers; it describes no patient with both (a patient's two primaries are still a contradiction)
        wanted = False
    if wanted:
        parse.check("pathway")
        from spinemets.pathway import pathway

        result = pathway(pdata, kb)
        engines.insert(0, _Engine("pathway", result, _engine_sentences(kb, "pathway", result, cite)))
        missing[:0] = [m for m in result.missing if m not in missing]
        state["pathway"] = pdata
        understood[:0] = _understood(parse, "pathway", earlier.get("pathway") if pmerged else None)
    stated = parse.values("noms").get("sins_total")
    if stated is not None and "noms" not in calc_named:
        # A SINS total given in the question ("SINS of 11: what does it imply?") is answered by its category,
        # unless the components read from the same question rule it out: then neither is guessed.
        computed = next((e.result for e in engines if e.name == "sins" and e.result is not None), None)
        if computed is not None and not computed.possible_min <= int(stated) <= computed.possible_max:
            raise ContradictoryInputError(
                ["noms.sins_total", "sins"],
                f"the question gives a SINS total of {stated}, but the components it describes give "
                + (f"{computed.total}" if computed.total is not None
                   else f"{computed.possible_min}-{computed.possible_max}"))
        engines.append(_Engine("sins_total", None, [_sins_total_sentence(kb, int(stated), cite)]))
        understood.extend(u for u in _understood(parse, "noms", None) if u.field == "noms.sins_total")
    for message, items in parse.notes:
        if all(i.startswith("sins.") for i in items) and "sins" not in used_fields:
            continue
        st = kb.statement(items[0])
        engines.append(_Engine("note", None, [Sentence(text=message, refs=cite.cite_statement(items[0]), kb_items=list(items),
                                                      sources=list(st.sources), origin="sins", draft=st.is_draft)]))
    return engines, state, understood, missing


def _sins_total_sentence(kb: KnowledgeBase, total: int, cite: _Citer) -> Sentence:
    """The stability category of a SINS total stated in the question, from tables/sins_categories."""
    from spinemets.scores.sins import CATEGORIES

    if not 0 <= total <= 18:
        raise InvalidInputError("noms.sins_total", f"a SINS total is 0 to 18, not {total}")
    row = next(r for r in kb.table(CATEGORIES).rows if r["min"] <= total <= r["max"])
    label = str(row["label"]).split(" (")[0].lower()
    implication = str(row["implication"])
    text = f"A SINS total of {total} is {label} ({row['min']}-{row['max']} of 18): {implication[0].lower()}{implication[1:]}"
    return Sentence(text=text, refs=cite.cite_row(CATEGORIES, row), kb_items=[f"{CATEGORIES}.{row.id}"],
                    sources=list(row.sources), origin="sins", draft=row.is_draft)


def _new_patient(parse: Parse) -> bool:
    """Does the question describe a new patient (rather than refine the last one)?"""
    if parse.follow_up:
        return False
    return bool(parse.fields("pathway") & {"pathway.cancer_history", "pathway.primary_site", "pathway.unknown_primary"}) \
        or any(u.field == "pathway.age" for u in parse.items)


def _understood(parse: Parse, name: str, earlier: dict[str, Any] | None) -> list[UnderstoodItem]:
    out: list[UnderstoodItem] = []
    explicit = {u.field for u in parse.items if not u.default}
    for u in parse.items:
        if not u.field.startswith(name + ".") or (u.default and u.field in explicit):
            continue
        out.append(UnderstoodItem(field=u.field, value=u.value, phrase=u.phrase, negated=u.negated, assumed=u.default))
    if earlier:
        seen = {u.field for u in out}
        for k, v in earlier.items():
            if f"{name}.{k}" not in seen:
                out.append(UnderstoodItem(field=f"{name}.{k}", value=v, phrase="", from_earlier_turn=True))
    return out


def _call(kb: KnowledgeBase, name: str, data: dict[str, Any], parse: Parse) -> Result:
    if name == "sins":
        from spinemets.scores.sins import sins

        return sins(data, kb)
    if name == "escc":
        from spinemets.scores.escc import escc

        return escc(data, kb)
    if name == "noms":
        from spinemets.scores.noms import noms

        noms_in = {k: v for k, v in data.items() if k in ("escc_grade", "histology", "sins_total", "fit_for_surgery", "myelopathy")}
        sins_in = parse.values("sins")
        escc_in = {k: v for k, v in parse.values("escc").items() if k != "grade"}
        if "sins_total" not in noms_in and sins_in:
            parse.check("sins")
            noms_in["sins"] = sins_in
        if "escc_grade" not in noms_in and escc_in:
            parse.check("escc")
            noms_in["escc"] = escc_in
        return noms(noms_in, kb)
    from spinemets.interpret.probability import post_test_probability

    return post_test_probability(data, kb)


# --- engine results as sentences -------------------------------------------------------------------------------

# Engine remarks that carry no reference of their own, and the statement that says the same.
_NOTICE_STATEMENTS = {
    ("probability", "independence"): "performance.bayes.conditional_independence",
    ("probability", "sources_differ"): "performance.caveat.lr_depends_on_source",
}
_ROLE = {"first_line": "First-line", "alternative": "Alternative", "additional": "Additional", "staging": "Staging",
         "staging_alternative": "Staging, other position", "avoid": "Avoid", "not_indicated": "Not indicated"}


class _Refs:
    """Maps an engine result's reference numbers to the answer's numbering."""

    def __init__(self, result: Result, cite: Citer) -> None:
        self.by_number = {r.number: r.source_id for r in result.references}
        self.cite = cite

    def sources(self, numbers: Iterable[int]) -> list[str]:
        return list(dict.fromkeys(self.by_number[n] for n in numbers if n in self.by_number))

    def sentence(self, text: str, numbers: Iterable[int], origin: str, kb_items: Sequence[str] = (),
                 draft: bool = False) -> Sentence:
        cited = self.sources(numbers)
        sources = _primary(self.cite.kb, cited)
        if not sources:  # only web summaries or AI answer pages stand behind it: shown, flagged as draft
            sources, draft = cited, bool(cited) or draft
        return Sentence(text=text, refs=self.cite.cite_sources(sources), kb_items=list(kb_items), sources=sources,
                        origin=origin, draft=draft)


_EMERGENCY_SCENARIOS = ("suspected_mscc", "paediatric_neurological")
_CHILD_FLAGS_NOTE = "Red flags present: "  # the pathway's note naming a child's red flags


def _pathway_head(result: Any) -> str:
    """The pathway's recommendation as the answer's first sentence: the study and how fast, in clinical words
    (the emergency first in suspected cord compression); what is missing and the first actions follow."""
    from spinemets.pathway import Urgency, first_line_label

    first = next((r for r in result.recommendations if r.role == "first_line"), None)
    missing = result.missing_labels() if hasattr(result, "missing_labels") else []
    if result.imaging_indicated is False:
        reason = next((r.rationale[0] for r in result.recommendations if r.study is None and r.rationale), "")
        head = "Imaging is not indicated now" + (f": {reason[0].lower()}{reason[1:]}" if reason else ".")
        return head if head.endswith(".") else head + "."
    if first is None or first.study is None:
        if missing:
            head = "No imaging recommendation yet; not yet stated: " + ", ".join(missing) + "."
            either = re.search(r"; (without [^:;]+: [^;]+)$", result.summary or "")
            if either:  # what holds on one side of the missing input (no red flags: no imaging)
                head += f" {either.group(1)[0].upper()}{either.group(1)[1:]}."
            return head
        return f"Imaging pathway: {result.summary}"
    when = ""
    if result.urgency is not None:
        shown = [w for w in result.urgency.windows if not w.draft]
        when = (", " + Urgency(level=result.urgency.level, windows=shown).describe()) if shown else \
            f", {result.urgency.level.replace('_', ' ')}"
        if result.urgency.level == "depends_on_neurology" and shown:
            # the study holds, the time limit does not: say so rather than 'whatever the missing inputs'
            when = "; how fast depends on whether there is any neurological symptom or sign, not yet stated: " + \
                Urgency(level=result.urgency.level, windows=shown).describe()
            missing = [m for m in missing if "neurolog" not in m]
    study = first_line_label(result.recommendations)
    if result.scenario in _EMERGENCY_SCENARIOS:
        what = "cauda equina" if (result.summary or "").startswith("Suspected cauda equina") else "spinal cord"
        # Whom to call leads (NICE: contact at once), then the study and how fast; the next step follows.
        contact = next((a for a in result.actions if a.step == "contact"), None)
        lead = ""
        if contact is not None:
            clause = re.split(r"[:;]", contact.label, maxsplit=1)[0].strip().rstrip(".")
            lead = f"{clause[0].lower()}{clause[1:]}; "
        head = f"Suspected {what} compression is an emergency: {lead}{study}{when}."
        following = [a.label for a in result.actions if a is not contact][:1]
        if following:
            head += " Now: " + " ".join(following)
    else:
        from spinemets.pathway import SCENARIO_LABELS

        who = SCENARIO_LABELS.get(result.scenario)
        flags = next((n.message for n in getattr(result, "notices", []) if n.code == "child_red_flags"), "")
        if who and result.scenario == "paediatric_back_pain" and flags.startswith(_CHILD_FLAGS_NOTE):
            # in a child the red flags are what make imaging indicated at all (none: no imaging): name them
            named = "; ".join(f[:1].lower() + f[1:] for f in flags[len(_CHILD_FLAGS_NOTE):].rstrip(".").split("; "))
            who = f"{who} and {'red flags' if '; ' in named else 'a red flag'} ({named})"
        head = f"For {_with_article(who)}: {study}{when}." if who else f"{study[0].upper()}{study[1:]}{when}."
    if missing:
        what = "The study holds" if "how fast depends on" in when else "This holds"
        head += f" {what} whatever the missing inputs; not yet stated: " + ", ".join(missing) + "."
    return head


# 'Which scan?', 'what imaging should be ordered', 'what test do I need': the question asks for the study itself.
_WHICH_STUDY = re.compile(r"\b(which|what)\s+(\w+\s+){0,2}(scan|scans|imaging|test|tests|study|studies|"
                          r"investigation|investigations|modality|examination)\b", re.I)


def _asks_which_study(question: str) -> bool:
    return bool(_WHICH_STUDY.search(question))


# A calculator question that gives at least this many of its inputs is answered by the calculator even while
# some are missing: what holds whatever the missing inputs are ("every possible total is 10-13") answers it.
STATED_INPUTS = 3


def _engine_decides(e: _Engine, topic: AnswerTopic, which_study: bool = False, given: int = 0) -> bool:
    """Does the engine's result answer the question better than a matched curated topic?  A complete result does,
    and so does a calculator given at least STATED_INPUTS of its inputs; one still waiting for inputs (no study
    chosen, a grade not yet possible) leaves the first sentence to the topic and is shown in its own section.  The
    pathway answers only the topics that ask what to image for the patient and how fast; a question on something
    else (steroids, gadolinium, an implant) keeps its topic's answer first and the patient's pathway after it."""
    if e.result is None:
        return False
    if e.name == "pathway":  # what holds for this patient whatever is missing beats a general answer
        return (topic.answered_by_pathway or which_study) and (
            any(r.role == "first_line" and r.study is not None for r in e.result.recommendations)
            or e.result.imaging_indicated is False)
    return e.result.status == "complete" or (topic.area == "scores" and given >= STATED_INPUTS)


def _reviewed_first(direct: list[Sentence], key: list[Sentence]) -> tuple[list[Sentence], list[Sentence]]:
    """Nothing draft opens an answer, whatever produced it: a reviewed sentence of the direct answer moves to the
    front; when every sentence of it is a draft, they become the first key points (flagged) and the answer says
    that no reviewed statement answers the question."""
    if not direct or not direct[0].draft:
        return direct, key
    reviewed = [s for s in direct if not s.draft]
    if reviewed:
        return [*reviewed, *(s for s in direct if s.draft)], key
    return [], [*direct, *(s for s in key if s not in direct)]


# Pathway notices saying what a negative earlier test stated in the question does not exclude.
_NEGATIVE_TEST_NOTICES = ("radiograph_not_enough", "bone_scan_not_enough")


def _negative_test_sentence(ran: list[_Engine]) -> Sentence | None:
    for e in ran:
        if e.name != "pathway":
            continue
        for n in getattr(e.result, "notices", []):
            if n.code in _NEGATIVE_TEST_NOTICES:
                return next((s for s in e.sentences if s.text == n.message), None)
    return None


def _patient_step(topic: AnswerTopic, ran: list[_Engine]) -> tuple[Sentence, Sentence] | None:
    """The pathway's sentence for the management step a topic is about (steroids, positioning...), and the same
    sentence as a first sentence (without its 'Now:'), when the pathway ran for the patient and gives that step."""
    if topic.pathway_step is None:
        return None
    for e in ran:
        if e.name != "pathway":
            continue
        for action in getattr(e.result, "actions", []):
            if action.step != topic.pathway_step:
                continue
            for sentence in e.sentences:
                if sentence.text == f"Now: {action.label}":
                    return sentence, sentence.model_copy(update={"text": action.label})
    return None


def _named_calculator(ran: list[_Engine], topic: AnswerTopic | None, parse: Parse) -> bool:
    """Does the question name a score ('NOMS for ...') while the matched topic is not about the scores?  Then the
    score answers, complete or still missing inputs, and the topic (which only shares some words, the primary
    tumour say) is not used."""
    return topic is not None and topic.area != "scores" and any(
        e.result is not None and e.name != "pathway" and e.name in parse.instruments for e in ran)


def _grade_only(parse: Parse) -> bool:
    """The question states an ESCC grade, no finding to grade, and asks about treatment: the grade engine would
    only repeat the grade, so a matched curated topic ('Bilsky 1c - surgery or radiotherapy?') answers first."""
    said = parse.fields("escc")
    return "escc.grade" in said and said <= {"escc.grade"} and bool(_TREATMENT_WORDS & set(parse.words))


# Words that ask what a grade means for treatment rather than what the grade is.
_TREATMENT_WORDS = frozenset({"surgery", "radiotherapy", "radiation", "treat", "treatment", "treated", "manage",
                              "management", "managed", "operate", "operation", "srs", "sbrt", "imply", "implies",
                              "implication", "implications", "decompression", "decompress"})


def _head_is_draft(result: Any) -> bool:
    """Does the headline rest on a draft item (the first-line study's statements or row)?  Drafts elsewhere in the
    result are flagged where they are shown, not on the headline."""
    first = next((r for r in result.recommendations if r.role == "first_line"), None)
    if first is None:
        return bool(result.draft_items)
    items = set(first.statements)
    if first.study is not None:
        items.add(f"imaging_studies.{first.study.id}")
    return bool(items & set(result.draft_items))


def _with_article(label: str) -> str:
    """'child or adolescent with back pain' -> 'a child or adolescent with back pain' (labels that read as a case)."""
    first = label.split()[0]
    if first in ("child", "known"):
        return f"a {label}"
    if first == "no":
        return f"a patient with {label}"
    return label


def _all_refs(result: Result) -> list[int]:
    return [r.number for r in result.references]


def _reviewed_lead(label: str, result: Result, refs: _Refs, name: str) -> list[Sentence]:
    """Nothing draft opens an answer: when a calculator's headline rests on items awaiting review, the answer
    opens with the parts that rest on reviewed items only and says that the rest is flagged below."""
    drafts = set(result.draft_items)
    sound = [c for c in result.components if c.value is not None and c.refs and not set(c.kb_items) & drafts]
    parts = "; ".join(f"{c.name}: {c.label or _show(c.value)}" for c in sound)
    text = (f"{label}: " + (f"{parts}; " if parts else "")
            + "the rest of the result rests on knowledge-base items still awaiting clinical review and is shown "
              "flagged as draft.")
    numbers = sorted({n for c in sound for n in c.refs}) or _all_refs(result)
    return [refs.sentence(text, numbers, name, [f"{name}:reviewed_parts"], False)]


def _engine_sentences(kb: KnowledgeBase, name: str, result: Result, cite: Citer) -> list[Sentence]:
    refs = _Refs(result, cite)
    out: list[Sentence] = []
    draft = bool(result.draft_items)
    if name == "pathway":
        from spinemets.pathway import PathwayResult

        assert isinstance(result, PathwayResult)
        out.append(refs.sentence(_pathway_head(result), _all_refs(result), name, [f"pathway:{result.scenario}"],
                                 _head_is_draft(result)))
        for action in result.actions:
            out.append(refs.sentence(f"Now: {action.label}", action.refs, name, list(action.statements)))
        if result.urgency and result.urgency.windows:
            numbers = sorted({n for w in result.urgency.windows for n in w.refs})
            items = [w.statement for w in result.urgency.windows]
            out.append(refs.sentence(f"Imaging urgency: {result.urgency.describe()}; the sources differ, each is shown.",
                                     numbers, name, items))
        for action in result.workup:
            out.append(refs.sentence(f"Work-up: {action.label}", action.refs, name, list(action.statements)))
        for rec in result.recommendations:
            role = _ROLE.get(rec.role, rec.role)
            if rec.study is None:
                text = f"{role}: " + (rec.rationale[0] if rec.rationale else "no imaging")
                items = list(rec.statements)
            else:
                text = f"{role}: {rec.study.label}"
                if rec.appropriateness:
                    variant = rec.acr_variant or "ACR"
                    variant = variant if variant.startswith("ACR") else f"ACR {variant}"
                    text += f" ({variant}: {rec.appropriateness.replace('_', ' ')})"
                items = [f"imaging_studies.{rec.study.id}", *rec.statements]
            out.append(refs.sentence(text, rec.refs, name, items))
        for n in result.notices:
            out.append(refs.sentence(n.message, n.refs, name, n.kb_items))
        return [s for s in out if s.refs]
    if name == "probability":
        from spinemets.interpret.probability import ProbabilityResult

        assert isinstance(result, ProbabilityResult)
        head = result.summary[:1].upper() + result.summary[1:]  # "Post-test probability 69.2% (pre-test 20.0%)"
        out.append(refs.sentence(head, _all_refs(result), name, [f"{name}:result"], draft))
        for sc in result.scenarios:
            steps = []
            numbers: list[int] = []
            for st in sc.steps:
                lr = st.lr_positive if st.result == "positive" else st.lr_negative
                lr_text = "infinite" if lr is None else f"{lr:.2f}"
                figures = "" if st.sensitivity is None else \
                    f"sensitivity {st.sensitivity:.3g}, specificity {st.specificity:.3g}, "
                steps.append(f"{st.modality or 'the test'} {st.result} ({figures}"
                             f"LR{'+' if st.result == 'positive' else '-'} {lr_text}): {st.pre_test:.1%} -> {st.post_test:.1%}")
                numbers.extend(st.refs)
            source = ", ".join(dict.fromkeys(st.source for st in sc.steps if st.source)) or (
                "given likelihood ratio" if all(st.sensitivity is None for st in sc.steps) else "given figures")
            words = ", ".join(dict.fromkeys(kb.sources[x].label() if x in kb.sources else x
                                            for x in source.split(", "))) if source not in (
                "given figures", "given likelihood ratio") else source
            out.append(refs.sentence(f"With {words}: " + "; then ".join(steps) + ".", numbers, name,
                                     [f"modality_accuracy:{source}"]))
    else:
        label = {"sins": "SINS", "escc": "ESCC", "noms": "NOMS"}[name]
        if draft:
            out.extend(_reviewed_lead(label, result, refs, name))
        out.append(refs.sentence(f"{label}: {result.summary}", _all_refs(result), name, [f"{name}:result"], draft))
        for c in result.components:
            if c.value is None or not c.refs:
                continue
            pts = "" if c.points is None else f" = {c.points} pt" + ("" if c.points == 1 else "s")
            shown = c.label or _show(c.value)
            extra = f" ({c.note})" if c.note else ""
            out.append(refs.sentence(f"{c.name}: {shown}{pts}{extra}", c.refs, name, c.kb_items))
        if name == "noms":
            for line in getattr(result, "framing", []):
                if line not in result.summary:
                    out.append(refs.sentence(line, _all_refs(result), name, []))
    for n in result.notices:
        if n.refs:
            out.append(refs.sentence(n.message, n.refs, name, n.kb_items))
        else:
            sid = _NOTICE_STATEMENTS.get((name, n.code))
            if sid:
                st = kb.statement(sid)
                out.append(Sentence(text=n.message, refs=cite.cite_statement(sid), kb_items=[sid],
                                    sources=list(st.sources), origin=name, draft=st.is_draft))
    return [s for s in out if s.refs]


__all__ = ["ask", "AskResult", "Sentence", "UnderstoodItem", "Composition", "MAX_QUESTION", "AUDIENCES"]
