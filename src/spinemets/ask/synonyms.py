"""Clinicians' words: the synonym groups of ``tables/synonyms.yaml`` as concepts.

Every group becomes one concept token.  A statement that contains any word of
a group is indexed with that group's token, and so is a question, so "mets",
"plain film" or "bone island" reach statements written with "metastasis",
"radiograph" or "enostosis".
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass

from spinemets.ask.text import Match, PhraseMatcher, tokens
from spinemets.knowledge.loader import KnowledgeBase

TABLE = "synonyms"
_NON_ALNUM = re.compile(r"[^a-z0-9]")


@dataclass(frozen=True)
class Group:
    id: str
    term: str
    words: tuple[str, ...]
    sources: tuple[str, ...]

    @property
    def token(self) -> str:
        """The concept's index token (letters and digits only, so every tokenizer keeps it whole)."""
        return "zq" + _NON_ALNUM.sub("", self.id.lower())


class Synonyms:
    """The synonym groups of a knowledge base and a matcher over all their words."""

    def __init__(self, kb: KnowledgeBase) -> None:
        self.groups: dict[str, Group] = {}
        pairs: list[tuple[str, str]] = []
        text_pairs: list[tuple[str, str]] = []
        for row in kb.table(TABLE).rows:
            words = (str(row["term"]), *(str(s) for s in row.get("synonyms") or []))
            group = Group(row.id, str(row["term"]), words, tuple(row.sources))
            self.groups[row.id] = group
            question_only = {tuple(tokens(w)) for w in row.get("question_only") or []}
            pairs.extend((w, row.id) for w in words)
            text_pairs.extend((w, row.id) for w in words if tuple(tokens(w)) not in question_only)
        self.matcher = PhraseMatcher(pairs)
        self.text_matcher = PhraseMatcher(text_pairs)

    def find(self, words: Sequence[str]) -> list[Match]:
        """Synonym phrases in a question."""
        return self.matcher.find(words)

    def concept_tokens(self, text: str) -> list[str]:
        """The concept tokens of a statement's text, in order of appearance, without repeats."""
        found = self.text_matcher.find(tokens(text))
        return list(dict.fromkeys(self.groups[m.target].token for m in found))

    def expansion(self, matches: Sequence[Match]) -> list[str]:
        """The knowledge base's own term for each concept found (used to widen the dense query)."""
        out = []
        for m in matches:
            term = self.groups[m.target].term
            if tokens(term) != tokens(m.phrase):
                out.append(term)
        return list(dict.fromkeys(out))


@functools.lru_cache(maxsize=4)
def synonyms_for(kb: KnowledgeBase) -> Synonyms:
    return Synonyms(kb)
