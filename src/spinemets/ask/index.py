"""Retrieval over the knowledge-base statements: SQLite FTS5 (BM25) plus optional dense embeddings.

Lexical side: an in-memory FTS5 table with the porter tokenizer holds, per
statement, its id words, topics, clinician text, plain-language text and the
concept tokens of the synonym groups it mentions (see
:mod:`spinemets.ask.synonyms`).  A question is matched with an OR of its
content words and concept tokens and ranked with ``bm25()``.

Dense side: cosine similarity between the question and the statements
embedded with MiniLM (:mod:`spinemets.ask.dense`).

Fusion: ``ALPHA * bm25 / best_bm25 + (1 - ALPHA) * cosine / best_cosine``.

Support (is the question inside the knowledge base?): every content word of
the question (or synonym phrase) is weighed by its inverse document
frequency; words the statements never use count at the highest weight, and
words the scenario reader consumed ("survivor") are left out.  ``coverage``
is the share of that weight the knowledge base knows, ``best_match`` the
share the best statement contains.  A question is declined when none of its
words is known, when coverage is below ``min_coverage`` or when the best
statement matches less than ``min_best_match``.  In hybrid mode a question
whose best statement is close in meaning (cosine >= ``rescue_cosine``) is
kept despite a few unknown words (coverage >= ``rescue_coverage``).  The
thresholds were calibrated on the development set (``tests/data/ask_dev.yaml``);
see ``docs/ask.md`` for the figures and for a held-out check.
"""

from __future__ import annotations

import functools
import math
import re
import sqlite3
import threading
from dataclasses import dataclass, field
from typing import Any

from spinemets.ask.synonyms import Synonyms, synonyms_for
from spinemets.ask.text import STOPWORDS, Match, tokens
from spinemets.knowledge.loader import KnowledgeBase

# Column weights of bm25(): id words, topics, text, patient_text, concepts.
WEIGHTS = (0.0, 2.0, 1.5, 1.0, 0.5, 1.0)
ALPHA = 0.4  # weight of the lexical score in the fused score
COS_FLOOR = 0.0  # cosines are rescaled to (cos - floor) / (best - floor) before fusion
CANDIDATES = 60
ORDINARY_SHARE = 4  # an unknown ordinary word weighs like a term found in a quarter of the statements
DEFINITION_BOOST = 0.1  # "what is X?" prefers definitions
_DEFINITION_Q = re.compile(
    r"^\s*(what\s+is|what's|whats|what\s+are|what\s+does\s+\S+(\s+\S+)?\s+(mean|stand\s+for)|define|definition\s+of|meaning\s+of|explain)\b",
    re.I)


@dataclass(frozen=True)
class Thresholds:
    """When to decline (calibrated on the development set; see docs/ask.md)."""

    min_coverage: float = 0.75  # share of the question's weight that the knowledge base knows
    min_best_match: float = 0.25  # share of the question's weight that the best statement contains
    # Hybrid only: a question with some unknown words is still answered when a statement is this close in meaning,
    rescue_cosine: float = 0.60
    rescue_coverage: float = 0.50  # ... provided at least this share of it is known.


THRESHOLDS = Thresholds()


@dataclass
class Hit:
    id: str
    score: float
    lexical: float = 0.0
    dense: float | None = None


@dataclass
class _Unit:
    """A unit of the question: one content word or one synonym phrase."""

    surface: str
    terms: tuple[str, ...]  # index terms (stems or concept tokens) that stand for it
    idf: float
    known: bool


@dataclass
class Retrieval:
    question: str
    mode: str  # "lexical" | "hybrid"
    hits: list[Hit]
    content_words: list[str]
    unknown_words: list[str]
    concepts: list[Match]
    coverage: float
    best_match: float
    best_cosine: float | None
    supported: bool
    reason: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    units: list[_Unit] = field(default_factory=list, repr=False)  # the analysed question (topic routing reuses it)
    vector: Any = field(default=None, repr=False)  # the question's embedding in hybrid mode

    @property
    def ids(self) -> list[str]:
        return [h.id for h in self.hits]


class Index:
    """The statements of one knowledge base, indexed for lexical and dense search."""

    def __init__(self, kb: KnowledgeBase) -> None:
        self.kb = kb
        self.synonyms: Synonyms = synonyms_for(kb)
        self.ids: list[str] = list(kb.statements)
        self._row = {sid: i for i, sid in enumerate(self.ids)}
        self._lock = threading.Lock()
        self.db = sqlite3.connect(":memory:", check_same_thread=False)
        self.db.execute(
            "CREATE VIRTUAL TABLE docs USING fts5(sid UNINDEXED, head, topics, body, patient, concepts, "
            "tokenize='porter unicode61 remove_diacritics 2')"
        )
        rows = []
        for sid in self.ids:
            st = kb.statements[sid]
            head = sid.replace(".", " ").replace("_", " ").replace("-", " ")
            topics = " ".join(t.replace("-", " ") for t in st.topics)
            concepts = " ".join(self.synonyms.concept_tokens(" ".join((head, topics, st.text, st.patient_text))))
            rows.append((sid, head, topics, st.text, st.patient_text, concepts))
        self.db.executemany("INSERT INTO docs (sid, head, topics, body, patient, concepts) VALUES (?,?,?,?,?,?)", rows)
        self.db.execute("CREATE VIRTUAL TABLE docs_vocab USING fts5vocab(docs, 'row')")
        self.db.execute("CREATE VIRTUAL TABLE docs_terms USING fts5vocab(docs, 'instance')")
        self.df: dict[str, int] = dict(self.db.execute("SELECT term, doc FROM docs_vocab"))
        self.n_docs = len(self.ids)
        self.doc_terms: list[set[str]] = [set() for _ in self.ids]
        for term, rowid in self.db.execute("SELECT term, doc FROM docs_terms"):
            self.doc_terms[rowid - 1].add(term)
        # A scratch table with the same tokenizer turns question words into index terms.
        self.db.execute("CREATE VIRTUAL TABLE scratch USING fts5(x, tokenize='porter unicode61 remove_diacritics 2')")
        self.db.execute("CREATE VIRTUAL TABLE scratch_terms USING fts5vocab(scratch, 'instance')")
        self.max_idf = self._idf(0)
        self.ordinary_idf = self._idf(self.n_docs // ORDINARY_SHARE)
        # Words of the curated answer topics (titles, phrasings, bottom lines) count as known: a question in the
        # words of a topic is in scope even where no statement uses them.
        self.topic_vocab: set[str] = set()
        for t in kb.answer_topics.values():
            text = " ".join([t.title, *t.phrasings, t.answer, t.patient_answer or ""])
            words = tokens(text)
            concept_tokens = [self.synonyms.groups[m.target].token for m in self.synonyms.find(words)]
            self.topic_vocab.update(x for x in self._stems([w.rstrip("+") for w in words] + concept_tokens) if x)
        self._dense: Any = None
        self.dense_how: str | None = None

    # --- analysis -------------------------------------------------------------------------------------------

    def _idf(self, df: int) -> float:
        return math.log(1 + (self.n_docs - df + 0.5) / (df + 0.5))

    def _stems(self, words: list[str]) -> list[str]:
        """Index term of each word (same tokenizer as the index; '' when the tokenizer drops it)."""
        if not words:
            return []
        self.db.execute("DELETE FROM scratch")
        self.db.execute("INSERT INTO scratch (rowid, x) VALUES (1, ?)", (" ".join(words),))
        out = [""] * len(words)
        for term, offset in self.db.execute("SELECT term, offset FROM scratch_terms"):
            if offset < len(out):
                out[offset] = term
        return out

    def _units(self, words: list[str], concepts: list[Match], neutral: set[int] = frozenset()) -> list[_Unit]:
        """Content words and synonym phrases of the question, each with its index terms and weight.

        Words in *neutral* (read by the scenario reader) are dropped when the statements do not use them.
        """
        covered = {i for m in concepts for i in range(m.start, m.end)}
        plain_at = [i for i, w in enumerate(words) if i not in covered and _content(w)]
        plain = [words[i].rstrip("+") for i in plain_at]
        phrases = [m for m in concepts if any(_content(w) for w in words[m.start:m.end])]
        # Surface words of multi-word phrases also match literally ("winking owl"); a single abbreviation
        # ("mets", "gad") stands only for its concept, so its letters cannot match unrelated words ("are met").
        concept_words = [[w.rstrip("+") for w in words[m.start:m.end] if _content(w)] if m.end - m.start > 1 else []
                         for m in phrases]
        flat = plain + [self.synonyms.groups[m.target].token for m in phrases] + [w for ws in concept_words for w in ws]
        stems = self._stems(flat)
        units: list[_Unit] = []
        for i, w, stem in zip(plain_at, plain, stems):
            if stem:
                df = self.df.get(stem, 0)
                if not df and i in neutral:
                    continue
                units.append(_Unit(w, (stem,), self._idf(df) if df else self._unknown_weight(w),
                                   df > 0 or stem in self.topic_vocab))
        pos = len(plain) + len(phrases)
        for k, m in enumerate(phrases):
            token = stems[len(plain) + k]
            surface = [t for t in stems[pos:pos + len(concept_words[k])] if t]
            pos += len(concept_words[k])
            df = self.df.get(token, 0)
            if not df and all(i in neutral for i in range(m.start, m.end)):
                continue
            terms = tuple(dict.fromkeys([token, *(t for t in surface if self.df.get(t))]))
            units.append(_Unit(m.phrase, terms, self._idf(df) if df else self.max_idf, df > 0 or token in self.topic_vocab))
        return units

    def _unknown_weight(self, word: str) -> float:
        """Weight of a word no statement uses: an ordinary English word ("mandatory", "suddenly") weighs like a
        common term, so it cannot make an in-scope question look foreign; a technical one weighs the most."""
        return self.ordinary_idf if word in ordinary_words() else self.max_idf

    # --- search ---------------------------------------------------------------------------------------------

    def search(self, question: str, dense: bool = False, limit: int = 30,
               thresholds: Thresholds = THRESHOLDS, neutral: set[int] = frozenset()) -> Retrieval:
        import time

        t0 = time.perf_counter()
        words = tokens(question)
        concepts = self.synonyms.find(words)
        with self._lock:
            units = self._units(words, concepts, neutral)
            terms = list(dict.fromkeys(t for u in units if u.known for t in u.terms))
            lexical: dict[str, float] = {}
            if terms:
                query = " OR ".join(f'"{t}"' for t in terms)
                sql = f"SELECT sid, -bm25(docs, {', '.join(map(str, WEIGHTS))}) FROM docs WHERE docs MATCH ? ORDER BY rank"
                try:
                    lexical = {sid: float(s) for sid, s in self.db.execute(sql, (query,))}
                except sqlite3.OperationalError:  # pragma: no cover - terms are stems, never FTS syntax
                    lexical = {}
        t1 = time.perf_counter()

        cosines: dict[str, float] = {}
        vector = None
        if dense:
            cosines, vector = self._dense_scores(question, concepts)
        t2 = time.perf_counter()

        best_lex = max(lexical.values(), default=0.0)
        best_cos = max(cosines.values(), default=0.0)
        candidates = set(sorted(lexical, key=lexical.__getitem__, reverse=True)[:CANDIDATES])
        if cosines:
            candidates |= set(sorted(cosines, key=cosines.__getitem__, reverse=True)[:CANDIDATES])
        hits = []
        for sid in candidates:
            lex = lexical.get(sid, 0.0)
            lex_norm = lex / best_lex if best_lex > 0 else 0.0
            if cosines:
                cos = cosines.get(sid, 0.0)
                cos_norm = max(0.0, cos - COS_FLOOR) / (best_cos - COS_FLOOR) if best_cos > COS_FLOOR else 0.0
                score = ALPHA * lex_norm + (1 - ALPHA) * cos_norm
                hits.append(Hit(sid, score, lex, cos))
            else:
                hits.append(Hit(sid, lex_norm, lex, None))
        if _DEFINITION_Q.match(question):
            for h in hits:
                if self.kb.statements[h.id].kind == "definition" and h.score > 0:
                    h.score += DEFINITION_BOOST
        hits.sort(key=lambda h: (-h.score, h.id))
        hits = hits[:limit]

        total = sum(u.idf for u in units)
        known = sum(u.idf for u in units if u.known)
        coverage = known / total if total else 0.0
        best_match = 0.0
        if hits and total:
            top_terms = self.doc_terms[self._row[hits[0].id]]
            best_match = sum(u.idf for u in units if u.known and set(u.terms) & top_terms) / total
        best_cosine = max(cosines.values()) if cosines else None

        supported, reason = True, None
        unknown = [u.surface for u in units if not u.known]
        content = [u.surface for u in units]
        rescued = best_cosine is not None and best_cosine >= thresholds.rescue_cosine
        if not units:
            supported, reason = False, "the question has no words the knowledge base could look up"
        elif not any(u.known for u in units):
            supported, reason = False, "none of its words occur in the knowledge base"
        elif coverage < thresholds.min_coverage and not (rescued and coverage >= thresholds.rescue_coverage):
            supported, reason = False, "too much of the question lies outside the knowledge base"
        elif best_match < thresholds.min_best_match and not rescued:
            supported, reason = False, "no statement of the knowledge base answers enough of the question"
        if reason and unknown:
            reason += " (not covered: " + ", ".join(repr(w) for w in unknown[:5]) + ")"
        return Retrieval(
            question=question, mode="hybrid" if dense else "lexical", hits=hits, content_words=content,
            unknown_words=unknown, concepts=concepts, coverage=round(coverage, 4), best_match=round(best_match, 4),
            best_cosine=None if best_cosine is None else round(best_cosine, 4), supported=supported, reason=reason,
            timings={"lexical_ms": (t1 - t0) * 1000, "dense_ms": (t2 - t1) * 1000}, units=units, vector=vector,
        )

    # --- dense ----------------------------------------------------------------------------------------------

    def dense_text(self, sid: str) -> str:
        st = self.kb.statements[sid]
        return st.text

    def dense_matrix(self) -> Any:
        """Statement embeddings (computed or read from the cache on first use)."""
        if self._dense is None:
            from spinemets.ask import dense

            with self._lock:
                if self._dense is None:
                    matrix, how = dense.document_matrix(self.kb.version, self.ids, [self.dense_text(i) for i in self.ids])
                    self._dense, self.dense_how = matrix, how
        return self._dense

    def _dense_scores(self, question: str, concepts: list[Match]) -> tuple[dict[str, float], Any]:
        from spinemets.ask.dense import Encoder

        matrix = self.dense_matrix()
        extra = self.synonyms.expansion(concepts)
        text = question if not extra else f"{question} ({'; '.join(extra)})"
        q = Encoder.encode([text])[0]
        sims = matrix @ q
        return {sid: float(s) for sid, s in zip(self.ids, sims)}, q


@functools.cache
def ordinary_words() -> frozenset[str]:
    """Common English words (``data/ordinary_words.txt``, from wordfreq; see scripts/make_ordinary_words.py) and
    note-taking shorthand that is not a clinical term (``data/shorthand_words.txt``: "defs", "b4", "approx") and
    the frame of a clinical question (``data/clinical_frame_words.txt``: "MDT", "FY1", "SBA", "letrozole")."""
    from pathlib import Path

    words: set[str] = set()
    for name in ("ordinary_words.txt", "shorthand_words.txt", "clinical_frame_words.txt"):
        lines = (Path(__file__).with_name("data") / name).read_text(encoding="utf-8").splitlines()
        words.update(w for w in lines if w and not w.startswith("#"))
    return frozenset(words)


_LEVEL_WORD = re.compile(r"^[ctls]\d{1,2}$")
# A number written with its unit ("1.5cm" gives "5cm", "15mm", "8gy"): read by patterns, never looked up.
_MEASURE_WORD = re.compile(r"^\d+(?:mm|cm|ml|mg|kg|g|h|hr|hrs|d|wk|wks|yr|yrs|yo|gy|t|m|f|y)$")  # "24m": age and sex


def level_word(word: str) -> bool:
    """A vertebral level as one word ("l4", "c7", "s1"); T1 and T2 are left out: they usually name a sequence."""
    return bool(_LEVEL_WORD.match(word)) and word not in ("t1", "t2")


def _content(word: str) -> bool:
    """Is the word worth looking up?  Numbers and vertebral levels are read by patterns, not looked up."""
    w = word.rstrip("+")
    if w in STOPWORDS or len(w) < 2 or w.isdigit() or _LEVEL_WORD.match(w) or _MEASURE_WORD.match(w):
        return False
    return True


@functools.lru_cache(maxsize=4)
def index_for(kb: KnowledgeBase) -> Index:
    return Index(kb)
