"""Routing a question to a curated answer topic (``knowledge/data/topics``).

Each topic is indexed as several small documents: its title, each phrasing, and its bottom line.  A question
is compared with every document two ways:

* lexical: the share of the question's weight (the same content words and synonym phrases, weighed by the same
  inverse document frequency as the statement search of :mod:`spinemets.ask.index`) whose index terms the
  document contains;
* dense (hybrid mode): the cosine between the question and the document, with MiniLM.

A topic's score is its best document's ``LEXICAL_WEIGHT * lexical + (1 - LEXICAL_WEIGHT) * cosine`` (lexical
alone in lexical mode).  In hybrid mode the topics are ranked by that score plus ``CLASSIFIER_WEIGHT`` times the
log-probability of the topic under a small classifier (softmax regression over the MiniLM vectors of every topic
document, trained once per knowledge-base version and cached): nearest-document matching follows one phrasing,
the classifier weighs all of a topic's phrasings against those of its neighbours.  The question goes to the best topic when that score reaches the threshold of its mode
and leads the next topic by ``margin``; otherwise ask falls back to the closest statements and says that no
curated answer matched.  Thresholds are calibrated on the development set (``tests/data/ask_dev.yaml``).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

from spinemets.ask.index import Index, _Unit, index_for
from spinemets.ask.text import tokens
from spinemets.knowledge.loader import KnowledgeBase
from spinemets.knowledge.models import AnswerTopic

LEXICAL_WEIGHT = 0.3  # calibrated on the development set (0.1-0.6 tried; docs/ask.md)
# A bottom line is long and shares words with many questions: its lexical match counts for less than a phrasing's.
DOC_WEIGHT = {"title": 1.0, "phrasing": 1.0, "example": 0.5, "answer": 0.7}
# The weight of a topic's second-best document in its score (0.3-1.0 tried on the second development set; 0.5
# routed 87 % of its questions to their topic against 82 % for the best document alone; docs/ask.md).
SECOND_DOC_WEIGHT = 0.5
# The classifier's share in the ranking (hybrid mode).  Added on the second and third development sets with the
# classifier trained on the topic documents only: 0.01-0.03 routed 88-90 % of dev2 and 87-89 % of dev3 to their
# topic, against 86 % and 87 % without it (docs/ask.md).
CLASSIFIER_WEIGHT = 0.02
# A topic the classifier is sure of (probability at least CONFIDENT_P) is used a little below the floor.
CONFIDENT_P = 0.5
CONFIDENT_LOG_P = math.log(CONFIDENT_P)
CONFIDENT_SLACK = 0.07
CLASSIFIER_STEPS = 200  # full-batch gradient steps (200 and 400 routed the same)
CLASSIFIER_FORMAT = 1
_TEMPERATURE, _STEP, _L2 = 20.0, 0.5, 1e-4


@dataclass(frozen=True)
class RouteThresholds:
    """When a question counts as asking a curated topic (calibrated on the development set; see docs/ask.md)."""

    hybrid: float = 0.45
    lexical: float = 0.45
    margin: float = 0.0  # the best topic must lead the runner-up by at least this much
    # A question some of whose words no statement uses is still in scope when a topic matches this well.
    rescue_hybrid: float = 0.55
    rescue_lexical: float = 0.75


ROUTE_THRESHOLDS = RouteThresholds()
SPECIFIC_GROUPS = frozenset({"renal_impairment", "pregnancy", "implant", "child"})
GROUP_TIE = 0.15  # how close a topic for the patient's group must score to the best to be preferred (safety first)


@dataclass
class TopicHit:
    id: str
    score: float
    lexical: float
    dense: float | None
    via: str  # which document matched best: "title", "phrasing", "example", "answer"
    precision: float = 0.0  # share of that document's terms the question used (breaks ties)
    log_p: float = 0.0  # log-probability of the topic under the classifier (hybrid mode)

    @property
    def rank(self) -> float:
        """What orders the topics: the score, plus the classifier's opinion in hybrid mode."""
        return self.score + CLASSIFIER_WEIGHT * self.log_p


@dataclass
class Route:
    """The topics ranked for a question and the one chosen (``None``: no curated answer matched)."""

    hits: list[TopicHit]
    chosen: TopicHit | None
    rescue: bool = False  # matched well enough to keep a question whose words the statements do not all know

    @property
    def topic_id(self) -> str | None:
        return self.chosen.id if self.chosen else None


class TopicIndex:
    """The answer topics of one knowledge base, as small documents for lexical and dense matching."""

    def __init__(self, kb: KnowledgeBase, index: Index) -> None:
        self.kb = kb
        self.index = index
        self.topic_ids: list[str] = list(kb.answer_topics)
        docs: list[tuple[str, str, str]] = []  # (topic id, kind, text)
        for tid in self.topic_ids:
            t = kb.answer_topics[tid]
            docs.append((tid, "title", t.title))
            docs.extend((tid, "phrasing", p) for p in t.phrasings)
            docs.extend((tid, "example", p) for p in t.examples)
            docs.append((tid, "answer", t.answer))
        self.docs = docs
        self.doc_terms: list[set[str]] = [self._terms(text) for _, _, text in docs]
        self._dense: Any = None
        self._classifier: Any = None
        self._incidence: Any = None  # (term -> column, docs x terms boolean matrix, terms per doc, doc weights)

    def _terms(self, text: str) -> set[str]:
        """Index terms of a text: stems of its words plus the concept tokens of its synonym phrases."""
        words = tokens(text)
        syn = self.index.synonyms
        concepts = syn.find(words)
        flat = [w.rstrip("+") for w in words] + [syn.groups[m.target].token for m in concepts]
        with self.index._lock:
            stems = self.index._stems(flat)
        return {s for s in stems if s}

    def dense_matrix(self) -> Any:
        if self._dense is None:
            from spinemets.ask import dense

            ids = [f"topic:{tid}:{kind}:{i}" for i, (tid, kind, _) in enumerate(self.docs)]
            matrix, _how = dense.document_matrix(self.kb.version, ids, [text for _, _, text in self.docs])
            self._dense = matrix
        return self._dense

    def classifier(self) -> tuple[Any, Any]:
        """Weights and biases of the topic classifier, from the cache or trained (about a second) and cached."""
        if self._classifier is None:
            self._classifier = _trained_classifier(self.kb.version, self.docs, self.topic_ids, self.dense_matrix())
        return self._classifier

    def route(self, question: str, units: list[_Unit], cosine_of: Any = None,
              thresholds: RouteThresholds = ROUTE_THRESHOLDS, groups: frozenset[str] = frozenset()) -> Route:
        """Rank topics for a question whose analysed units are *units*; *cosine_of* is the question vector."""
        total = sum(u.idf for u in units)
        asked = {t for u in units for t in u.terms}
        best: dict[str, TopicHit] = {}
        sims = None
        if cosine_of is not None and self.docs:
            sims = self.dense_matrix() @ cosine_of
        scores: dict[str, list[float]] = {}
        lexical, precisions = self._lexical(units, asked, total)
        for k, (tid, kind, _) in enumerate(self.docs):
            lex = float(lexical[k])
            cos = float(sims[k]) if sims is not None else None
            score = lex if cos is None else LEXICAL_WEIGHT * lex + (1 - LEXICAL_WEIGHT) * cos
            scores.setdefault(tid, []).append(score)
            # Ties (several documents hold every word of the question) go to the document with fewest other words.
            precision = float(precisions[k])
            if tid not in best or (score, precision) > (best[tid].score, best[tid].precision):
                best[tid] = TopicHit(tid, score, lex, cos, kind, precision)
        for tid, hit in best.items() if sims is not None else ():
            # A topic two of whose documents are close in meaning is more likely the one asked than a topic one
            # document of which happens to be: the second-best document counts SECOND_DOC_WEIGHT of the best one
            # (hybrid mode; in lexical mode it lowered the direct answers, so the best document decides alone).
            first, second = (sorted(scores[tid], reverse=True) + [0.0])[:2]
            hit.score = (first + SECOND_DOC_WEIGHT * second) / (1 + SECOND_DOC_WEIGHT)
        if sims is not None:
            import numpy as np

            weights, bias = self.classifier()
            z = (np.asarray(cosine_of, dtype=np.float32) @ weights + bias) * _TEMPERATURE
            z -= z.max()
            log_p = z - np.log(np.exp(z).sum())
            for i, tid in enumerate(self.topic_ids):
                if tid in best:
                    best[tid].log_p = float(log_p[i])
        hits = sorted(best.values(), key=lambda h: (-h.rank, -h.precision, h.id))
        special = groups & SPECIFIC_GROUPS
        promoted = False  # a topic for the patient's own group moved ahead of a better-scoring general one
        if special and hits and not special & set(self.kb.answer_topics[hits[0].id].populations):
            # A topic written for the patient's own group (kidney function, pregnancy, an implant, a child) wins a
            # near tie against a general one: 'eGFR 25, can we give gadolinium?' is the renal topic.
            floor = thresholds.lexical if sims is None else thresholds.hybrid
            near = [h for h in hits if hits[0].rank - h.rank <= GROUP_TIE and h.score >= floor and
                    special & set(self.kb.answer_topics[h.id].populations)]
            # among several topics for the group, the closest in meaning (the question's own words may be shared
            # with a sibling: 'eGFR' with the iodinated-contrast topic of a gadolinium question)
            near.sort(key=lambda h: -(h.dense if h.dense is not None else h.score))
            if near and near[0] is not hits[0]:
                hits.remove(near[0])
                hits.insert(0, near[0])
                promoted = True
        chosen = None
        if hits:
            floor = thresholds.lexical if sims is None else thresholds.hybrid
            runner_up = max((h.rank for h in hits[1:]), default=0.0)
            confident = sims is not None and hits[0].log_p >= CONFIDENT_LOG_P and hits[0].score >= floor - CONFIDENT_SLACK
            if (hits[0].score >= floor or confident) and (promoted or hits[0].rank - runner_up >= thresholds.margin):
                chosen = hits[0]
        rescue_floor = thresholds.rescue_lexical if sims is None else thresholds.rescue_hybrid
        return Route(hits=hits[:10], chosen=chosen, rescue=chosen is not None and chosen.score >= rescue_floor)

    def _lexical(self, units: list[_Unit], asked: set[str], total: float) -> tuple[Any, Any]:
        """Every document's lexical score (the weighted share of the question's units it matches, see
        :func:`_matches`) and precision (share of its terms the question used), as arrays over the documents."""
        import numpy as np

        if self._incidence is None:
            vocab = sorted({t for terms in self.doc_terms for t in terms})
            column = {t: i for i, t in enumerate(vocab)}
            matrix = np.zeros((len(self.docs), len(vocab)), dtype=bool)
            for k, terms in enumerate(self.doc_terms):
                matrix[k, [column[t] for t in terms]] = True
            sizes = np.array([len(t) for t in self.doc_terms], dtype=np.float64)
            weights = np.array([DOC_WEIGHT[kind] for _, kind, _ in self.docs], dtype=np.float64)
            self._incidence = (column, matrix, sizes, weights)
        column, matrix, sizes, weights = self._incidence
        n = len(self.docs)
        absent = np.zeros(n, dtype=bool)

        def has(term: str) -> Any:
            i = column.get(term)
            return absent if i is None else matrix[:, i]

        matched = np.zeros(n, dtype=np.float64)
        for u in units:
            head, *words = u.terms
            hit = has(head)
            if words:
                both = np.ones(n, dtype=bool)
                for w in words:
                    both &= has(w)
                hit = hit | both
            matched += u.idf * hit
        lexical = weights * matched / total if total else np.zeros(n)
        used = [column[t] for t in asked if t in column]
        overlap = matrix[:, used].sum(axis=1) if used else np.zeros(n)
        precision = np.divide(overlap, sizes, out=np.zeros(n), where=sizes > 0)
        return lexical, precision

    def topic(self, topic_id: str) -> AnswerTopic:
        return self.kb.answer_topic(topic_id)


def _trained_classifier(kb_version: str, docs: list[tuple[str, str, str]], topic_ids: list[str],
                        matrix: Any) -> tuple[Any, Any]:
    """Softmax regression from a document's vector to its topic (L2-regularised, full-batch gradient descent from
    zero weights, so the same documents always give the same weights), cached beside the embeddings."""
    import hashlib

    import numpy as np

    from spinemets.ask import dense
    from spinemets.cachedir import save_atomically

    # trained on the embeddings of one model's weights: the backend's model tag is part of the key
    h = hashlib.sha256(f"{CLASSIFIER_FORMAT}|{CLASSIFIER_STEPS}|{_TEMPERATURE}|{_STEP}|{_L2}|"
                       f"{dense.MODEL_TAGS[dense.backend()]}".encode())
    for tid, kind, text in docs:
        h.update(f"{tid}\t{kind}\t{text}\n".encode())
    path = dense.cache_dir() / f"ask-topic-classifier-{kb_version}-{h.hexdigest()[:16]}.npz"
    try:
        with np.load(path, allow_pickle=False) as cached:
            weights, bias = cached["weights"], cached["bias"]
        if weights.shape == (matrix.shape[1], len(topic_ids)) and bias.shape == (len(topic_ids),):
            return weights, bias
    except (OSError, ValueError, KeyError):
        pass
    column = {tid: i for i, tid in enumerate(topic_ids)}
    x = np.asarray(matrix, dtype=np.float32)
    target = np.zeros((len(docs), len(topic_ids)), dtype=np.float32)
    target[np.arange(len(docs)), [column[tid] for tid, _, _ in docs]] = 1.0
    weights = np.zeros((x.shape[1], len(topic_ids)), dtype=np.float32)
    bias = np.zeros(len(topic_ids), dtype=np.float32)
    for _ in range(CLASSIFIER_STEPS):
        z = (x @ weights + bias) * _TEMPERATURE
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        grad = (p - target) / len(docs)
        weights -= _STEP * (x.T @ grad * _TEMPERATURE + _L2 * weights)
        bias -= _STEP * grad.sum(axis=0) * _TEMPERATURE
    save_atomically(path, lambda fh: np.savez(fh, weights=weights, bias=bias))  # if not saved: trained next time
    return weights, bias


def _matches(unit: _Unit, terms: set[str]) -> bool:
    """A word matches by its stem; a synonym phrase by its concept, or by all of its own words ("prostate cancer"
    is not matched by any text that says "cancer")."""
    head, *words = unit.terms
    return head in terms or bool(words) and all(w in terms for w in words)


@functools.lru_cache(maxsize=4)
def topic_index_for(kb: KnowledgeBase) -> TopicIndex:
    return TopicIndex(kb, index_for(kb))
