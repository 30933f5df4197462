"""Typing slips in questions: a word the knowledge base does not know is read as the knowledge-base word it most
probably misspells ('metastsis' -> 'metastasis', 'myelogrm' -> 'myelogram'), so that a slip never makes an
in-scope question look foreign.

The vocabulary is every word of the knowledge base a question can be matched on: statements (both texts),
answer topics (titles, phrasings, bottom lines), the synonym groups and the phrase tables.  A word is corrected
only when it is unknown to that vocabulary and is not an ordinary English word, has at least ``MIN_LENGTH``
letters, and one vocabulary word is nearest to it: at most one edit (insertion, deletion, substitution or
swap of neighbours) away, or two for words of ``LONG`` letters or more.  Ties are broken by how often the
knowledge base uses the word; when the nearest words tie on that too, the word is left as written.
Corrections are shown to the reader ("read 'metastsis' as 'metastasis'").

Candidates come from a symmetric-delete index (each vocabulary word under every string obtained by deleting
up to two of its letters), so a lookup costs a few dictionary probes rather than a scan of the vocabulary.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from dataclasses import dataclass
from itertools import combinations

from spinemets.ask.text import STOPWORDS, tokens
from spinemets.knowledge.loader import KnowledgeBase

MIN_LENGTH = 5  # shorter words are too often abbreviations or another real word one letter away
LONG = 8  # words this long may be two edits away
_WORD = re.compile(r"[A-Za-z][A-Za-z'\-]*[A-Za-z]|[A-Za-z]")


@dataclass(frozen=True)
class Correction:
    written: str
    read_as: str


def _deletes(word: str, depth: int) -> set[str]:
    out = {word}
    for k in range(1, depth + 1):
        for idx in combinations(range(len(word)), k):
            out.add("".join(c for i, c in enumerate(word) if i not in idx))
    return out


def distance(a: str, b: str) -> int:
    """Optimal-string-alignment distance: insertions, deletions, substitutions and swaps of neighbours."""
    d = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a) + 1):
        d[i][0] = i
    for j in range(len(b) + 1):
        d[0][j] = j
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
    return d[len(a)][len(b)]


class Speller:
    """Corrects typing slips against one knowledge base's vocabulary."""

    def __init__(self, kb: KnowledgeBase) -> None:
        from spinemets.ask.index import ordinary_words

        self.kb = kb
        texts: list[str] = []
        for st in kb.statements.values():
            texts += [st.text, st.patient_text, " ".join(st.topics).replace("-", " ")]
        for t in kb.answer_topics.values():
            texts += [t.title, *t.phrasings, t.answer, t.patient_answer or ""]
        for name in ("synonyms", "ask_phrases", "ask_scope"):
            if name in kb.tables:
                for row in kb.tables[name].rows:
                    for key in ("term", "synonyms", "question_only", "phrases"):
                        value = row.get(key)
                        texts += [str(v) for v in value] if isinstance(value, list) else [str(value or "")]
        self.counts: Counter[str] = Counter(w for text in texts for w in tokens(text) if w.isalpha())
        self.ordinary = ordinary_words()
        self._index: dict[str, set[str]] | None = None  # built on the first unknown word

    def _candidates_index(self) -> dict[str, set[str]]:
        if self._index is None:
            index: dict[str, set[str]] = {}
            for word in self.counts:
                if len(word) >= MIN_LENGTH - 1:
                    for key in _deletes(word, 2 if len(word) >= LONG - 1 else 1):
                        index.setdefault(key, set()).add(word)
            self._index = index
        return self._index

    def known(self, word: str) -> bool:
        return word in self.counts or word in self.ordinary or word in STOPWORDS or self._known_stem(word)

    def _known_stem(self, word: str) -> bool:
        """Another form of a known word ('embolise' beside 'embolisation') is known, not a slip."""
        from spinemets.ask.index import index_for

        index = index_for(self.kb)
        with index._lock:
            stem = index._stems([word])[0]
        return bool(stem) and (stem in index.df or stem in index.topic_vocab)

    def suggest(self, word: str) -> str | None:
        """The vocabulary word *word* most probably misspells, or None (known, too short, or ambiguous)."""
        word = word.lower()
        if len(word) < MIN_LENGTH or not word.isalpha() or self.known(word):
            return None
        limit = 2 if len(word) >= LONG else 1
        candidates: set[str] = set()
        index = self._candidates_index()
        for key in _deletes(word, limit):
            candidates |= index.get(key, set())
        scored = sorted(((distance(word, c), -self.counts[c], c) for c in candidates), key=lambda x: (x[0], x[1]))
        scored = [s for s in scored if s[0] <= limit]
        if not scored:
            return None
        best = scored[0]
        if len(scored) > 1 and scored[1][:2] == best[:2]:
            return None  # two words equally near and equally common: leave it as written
        return best[2]

    def correct(self, question: str) -> tuple[str, list[Correction]]:
        """The question with its slips corrected, and what was changed (in order)."""
        found: list[Correction] = []

        def repl(m: re.Match[str]) -> str:
            written = m.group(0)
            parts = re.split(r"(['\-])", written)
            out = []
            for part in parts:
                fixed = self.suggest(part) if part.isalpha() else None
                if fixed is not None:
                    found.append(Correction(part, fixed))
                    out.append(fixed)
                else:
                    out.append(part)
            return "".join(out)

        corrected = _WORD.sub(repl, question) if question else question
        return (corrected if found else question), found


@functools.lru_cache(maxsize=4)
def speller_for(kb: KnowledgeBase) -> Speller:
    return Speller(kb)
