"""Simple lexical search over statements, for ``spinemets kb search``.

Terms are matched against a statement's id, topics and text; a match in the
id or topics weighs more.  (Ask, with BM25 and synonyms, builds its own index.)
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from spinemets.knowledge.loader import KnowledgeBase

_WORD = re.compile(r"[a-z0-9]+")


@dataclass(frozen=True)
class Hit:
    id: str
    score: float
    text: str


def _terms(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def search(query: str, kb: KnowledgeBase, limit: int = 10) -> list[Hit]:
    terms = [t for t in _terms(query) if len(t) > 1]
    if not terms:
        return []
    hits = []
    for st in kb.statements.values():
        head = set(_terms(st.id + " " + " ".join(st.topics)))
        body = _terms(st.text)
        score = 0.0
        for t in terms:
            if t in head:
                score += 2.0
            n = sum(1 for w in body if w == t or (len(t) > 3 and w.startswith(t)))
            if n:
                score += 1.0 + 0.2 * min(n, 3)
        if score and all(any(t == w or w.startswith(t) for w in head | set(body)) for t in terms[:1]):
            hits.append(Hit(st.id, round(score, 2), st.text))
    hits.sort(key=lambda h: (-h.score, h.id))
    return hits[:limit]
