"""The extractor's rules: the knowledge-base phrasing tables, plus a site's own file.

``load_rules()`` reads ``tables/report_targets.yaml`` (findings and what they pre-fill),
``tables/report_context.yaml`` (ConText modifiers) and ``tables/report_terms.yaml`` (sections, spellings,
word groups), validates every row against the vocabularies of the instruments it pre-fills (the SINS
enums, the ESCC findings, the rows of ``fracture_features``, the marrow-signal vocabulary), expands the
placeholders of its phrases, and returns a frozen :class:`RuleSet`.  A site adds phrasings with a YAML or
JSON file of the same rows (``--rules FILE`` or ``$SPINEMETS_REPORT_RULES``)::

    targets:
      - {id: my-lytic, concept: lesion, value: lytic, phrases: [moth-eaten], sets: {sins.lesion: lytic}}
    context:
      - {id: my-hedge, category: POSSIBLE_EXISTENCE, direction: FORWARD, phrases: [cannot be confidently excluded]}
    terms:
      - {id: my-heading, kind: section, role: impression, headings: [radiologist's opinion]}

A site row whose id equals a knowledge-base row replaces it; its findings are labelled ``site:ID``.  Every
problem with the file is an :class:`~spinemets.errors.InvalidInputError` naming ``rules`` and the row.
"""

from __future__ import annotations

import functools
import itertools
import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from spinemets.errors import InvalidInputError
from spinemets.knowledge.loader import KnowledgeBase, load_kb

TARGETS = "report_targets"
CONTEXT = "report_context"
TERMS = "report_terms"
ENV_RULES = "SPINEMETS_REPORT_RULES"
MAX_RULES_BYTES = 2_000_000
LEVEL_NORM = "spinelevelx"  # the norm given to vertebral-level tokens; "{level}" in a phrase matches it

# ConText categories: the assertion pass (medspaCy's own) and the qualifier pass (read by the extractor).
ASSERTION_CATEGORIES = ("NEGATED_EXISTENCE", "POSSIBLE_EXISTENCE", "HISTORICAL", "HYPOTHETICAL", "PSEUDO", "TERMINATE")
QUALIFIER_CATEGORIES = ("SIDE", "DEGREE", "STATE", "SUBJECT")
DIRECTIONS = ("FORWARD", "BACKWARD", "BIDIRECTIONAL", "TERMINATE", "PSEUDO")
QUALIFIER_VALUES = {
    "SIDE": ("left", "right", "bilateral"),
    "DEGREE": ("minimal", "mild", "moderate", "severe", "complete", "partial"),
    "STATE": ("compress", "abut", "efface", "obliterate", "visible", "convex", "concave", "displace", "unaffected"),
    "SUBJECT": ("not_marrow", "not_tumour"),
}

# Target concepts: whether a present finding counts towards the levels involved, and its weight when choosing
# the index (most affected) level.  This is how the extractor reads a report, not a clinical rule.
CONCEPTS: dict[str, tuple[bool, int]] = {
    "lesion": (True, 2), "diagnosis": (True, 2), "collapse": (True, 3), "height": (False, 0), "extent": (False, 0),
    "posterior": (True, 2), "alignment": (False, 1), "malalignment": (False, 0), "epidural": (True, 3),
    "thecal_sac": (False, 1), "cord": (False, 1), "csf": (False, 0), "canal": (False, 0), "paravertebral": (True, 2),
    "posterior_wall": (False, 1), "feature": (True, 1), "signal": (True, 1), "oedema": (True, 1),
    "disc_crossing": (True, 1), "escc_grade": (False, 0), "other_lesions": (False, 0), "index_cue": (False, 5),
    "infection": (True, 1), "ignore": (False, 0),
}
SECTION_ROLES = ("history", "technique", "findings", "impression")
TERM_KINDS = ("section", "spelling", "group", "signal_templates", "sequence_cue", "level_exclusion", "fraction",
              "comparator", "percent_cue", "abbreviation", "cue")

_PLACEHOLDER = re.compile(r"\{(\w+)\}")
_MACRO = re.compile(r"^@(signal|pair)\(([^)]*)\)$")
_HYPHEN = re.compile(r"(?<=\w)[-\u2010\u2011\u2013](?=\w)")


def normalise_text(text: str) -> str:
    """The text the pipeline reads: same length as *text* (offsets carry over), hyphens inside words read as spaces."""
    text = _HYPHEN.sub(" ", text)
    return text.replace("\u00a0", " ").replace("\u2019", "'").replace("\u2018", "'")


# --- row models ---------------------------------------------------------------------------------------------


class _Row(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_\-]*$", max_length=80)
    sources: list[str] = Field(default_factory=list)
    verification: str | None = None
    review_status: str | None = None
    note: str | None = None


def _phrases(v: Any) -> list[str]:
    if not isinstance(v, list) or not v:
        raise ValueError("give a non-empty list of phrases")
    out = []
    for p in v:
        if not isinstance(p, str) or not p.strip():
            raise ValueError(f"{p!r} is not a phrase (a non-empty text)")
        if len(p) > 200:
            raise ValueError(f"phrase {p[:40]!r}... is longer than 200 characters")
        out.append(p.strip().lower())
    return out


class TargetRow(_Row):
    """One row of report_targets (or of a site's ``targets``)."""

    concept: str
    value: str
    phrases: list[str]
    sets: dict[str, Any] = Field(default_factory=dict)
    negated: dict[str, Any] = Field(default_factory=dict)
    states: dict[str, dict[str, Any]] = Field(default_factory=dict)
    negated_states: dict[str, dict[str, Any]] = Field(default_factory=dict)
    complete_states: dict[str, dict[str, Any]] = Field(default_factory=dict)
    # the phrase itself states a value (its `sets`, or `negated` when its own denial reads as negation) and a state
    # cue may add another ("abuts the conus, which is not compressed": touched, and not compressed)
    sets_with_states: bool = False
    polarity: Literal["positive", "negative"] = "positive"
    part: str | None = None
    posterolateral: bool | None = None
    side: Literal["left", "right", "bilateral"] | None = None
    collapse: Literal["gt50", "lt50", "severe"] | None = None
    body_extent: Literal["gt50", "lt50"] | None = None
    diagnosis: str | None = None
    neoplastic: bool | None = None
    fracture: bool = False
    counts_level: bool | None = None
    # the row's weight when choosing the index level, instead of its concept's (for a site's rules file)
    index_weight: int | None = Field(default=None, ge=0, le=5)
    scope: Literal["level", "study"] = "level"
    requires_cue: str | None = None

    @field_validator("phrases", mode="before")
    @classmethod
    def _check_phrases(cls, v: Any) -> list[str]:
        return _phrases(v)

    @field_validator("concept")
    @classmethod
    def _concept(cls, v: str) -> str:
        if v not in CONCEPTS:
            raise ValueError(f"{v!r} is not a concept; allowed: {', '.join(CONCEPTS)}")
        return v

    @property
    def label(self) -> str:
        return self.concept.upper()

    @property
    def counts(self) -> bool:
        return CONCEPTS[self.concept][0] if self.counts_level is None else self.counts_level

    @property
    def weight(self) -> int:
        index_weight = getattr(self, "index_weight", None)
        return CONCEPTS[self.concept][1] if index_weight is None else index_weight


class ContextRow(_Row):
    """One row of report_context (or of a site's ``context``)."""

    category: str
    direction: Literal["FORWARD", "BACKWARD", "BIDIRECTIONAL", "TERMINATE", "PSEUDO"]
    phrases: list[str]
    value: str | None = None
    max_scope: int | None = Field(default=None, ge=1, le=50)
    max_targets: int | None = Field(default=None, ge=1, le=50)
    allowed_types: list[str] | None = None
    # a TERMINATE row ends the scopes of both passes unless this is false: then it ends only the assertions
    # (negation, uncertainty, history), and a side, degree or state still reaches over it
    ends_qualifiers: bool = True

    @field_validator("phrases", mode="before")
    @classmethod
    def _check_phrases(cls, v: Any) -> list[str]:
        return _phrases(v)

    @model_validator(mode="after")
    def _ends_qualifiers_only_for_terminate(self) -> "ContextRow":
        if not self.ends_qualifiers and self.direction != "TERMINATE":
            raise ValueError("ends_qualifiers: only a TERMINATE row can be limited to the assertions")
        return self

    @field_validator("category")
    @classmethod
    def _category(cls, v: str) -> str:
        if v not in ASSERTION_CATEGORIES + QUALIFIER_CATEGORIES:
            raise ValueError(f"{v!r} is not a category; allowed: {', '.join(ASSERTION_CATEGORIES + QUALIFIER_CATEGORIES)}")
        return v

    @field_validator("allowed_types")
    @classmethod
    def _types(cls, v: list[str] | None) -> list[str] | None:
        if v is None:
            return v
        known = {c.upper() for c in CONCEPTS}
        for t in v:
            if t not in known:
                raise ValueError(f"{t!r} is not a target concept; allowed: {', '.join(sorted(known))}")
        return v

    @property
    def qualifier(self) -> bool:
        return self.category in QUALIFIER_CATEGORIES


class TermRow(_Row):
    """One row of report_terms (or of a site's ``terms``)."""

    kind: str
    role: str | None = None
    headings: list[str] | None = None
    words: list[Any] | None = None
    name: str | None = None
    percent: int | None = Field(default=None, ge=0, le=100)
    meaning: str | None = None
    single: list[str] | None = None
    pair: list[str] | None = None
    after: list[str] | None = None
    before: list[str] | None = None
    # (sequence_cue) the words right after the last T1 or T2 of a level list that make it the sequence
    after_list: list[str] | None = None
    spared: list[str] | None = None

    @field_validator("kind")
    @classmethod
    def _kind(cls, v: str) -> str:
        if v not in TERM_KINDS:
            raise ValueError(f"{v!r} is not a kind; allowed: {', '.join(TERM_KINDS)}")
        return v


# --- the rule set -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Terms:
    sections: dict[str, str]
    spellings: dict[str, str]
    groups: dict[str, tuple[str, ...]]
    single_templates: tuple[str, ...]
    pair_templates: tuple[str, ...]
    sequence_after: frozenset[str]
    sequence_before: frozenset[str]
    sequence_after_list: frozenset[str]
    level_exclusions: frozenset[str]
    spared_words: tuple[str, ...]
    fractions: tuple[tuple[str, int], ...]
    comparators: dict[str, str]
    percent_remaining: tuple[str, ...]
    percent_earlier: tuple[str, ...]
    abbreviations: frozenset[str]
    cues: dict[str, tuple[str, ...]]


@dataclass(frozen=True, eq=False)
class RuleSet:
    """Validated rules with expanded phrases; built once per knowledge base and rules file."""

    targets: dict[str, TargetRow]
    context: dict[str, ContextRow]
    terms: Terms
    target_phrases: dict[str, tuple[str, ...]]
    context_phrases: dict[str, tuple[str, ...]]
    origin: dict[str, str]  # row id -> "report_targets" / "report_context" / "site:<file name>"
    files: tuple[str, ...] = ()
    kb_version: str = ""
    notes: tuple[str, ...] = field(default=())

    def rule_name(self, row_id: str) -> str:
        origin = self.origin.get(row_id, TARGETS)
        return f"site:{row_id}" if origin.startswith("site:") else f"{origin}.{row_id}"

    def kb_item(self, row_id: str) -> str | None:
        origin = self.origin.get(row_id, TARGETS)
        return None if origin.startswith("site:") else f"{origin}.{row_id}"

    @functools.cached_property
    def height_left_patterns(self) -> tuple[re.Pattern[str] | None, re.Pattern[str] | None]:
        """Words of height left right after a figure (then "height" or the end of the clause: "80% of normal",
        "a third of its previous height", not "30% of normal marrow"), and right before it, at most two words
        between and no sentence end ("compressed to about 30%")."""
        after, before = self.terms.groups.get("height_left_after", ()), self.terms.groups.get("height_left_before", ())
        alt = trie_alternation
        return (
            re.compile(rf"\s*(?:{alt(after)})(?:\s+(?:vertebral\s+|body\s+)*height\b|\s*(?=[.,;:()]|$))", re.IGNORECASE)
            if after else None,
            re.compile(rf"\b(?:{alt(before)})\s+(?:[^\s.,;:]+\s+){{0,2}}$", re.IGNORECASE) if before else None,
        )

    @functools.cached_property
    def cue_texts(self) -> dict[str, tuple[str, ...]]:
        """Each cue group's words padded with spaces, for a search in a sentence's padded lower-case text."""
        return {name: tuple(f" {c} " for c in words) for name, words in self.terms.cues.items()}

    @functools.cached_property
    def _dx_neoplastic(self) -> dict[str, bool]:
        return {r.value: bool(r.neoplastic) for r in self.targets.values() if r.concept == "diagnosis"}

    def neoplastic(self, row: TargetRow) -> bool | None:
        """Whether a row names a neoplasm: its own flag, else its diagnosis's; None when it says neither."""
        if row.neoplastic is not None:
            return row.neoplastic
        return self._dx_neoplastic.get(row.diagnosis) if row.diagnosis else None

    @functools.cached_property
    def disc_height(self) -> tuple[re.Pattern[str], re.Pattern[str]] | None:
        """Words naming a disc, and words naming a vertebral body or its collapse: a height loss whose sentence
        names the first and not the second is the disc's (from the terms' ``disc_words`` and ``body_words``)."""
        disc, body = self.terms.groups.get("disc_words", ()), self.terms.groups.get("body_words", ())
        if not disc or not body:
            return None

        return _word_pattern(disc), _word_pattern(body)

    @functools.cached_property
    def cord_signal(self) -> tuple[re.Pattern[str], re.Pattern[str]] | None:
        """Words naming the cord, roots or meninges, and words naming bone: a signal finding after the first and
        with none of the second in its sentence is about the cord (``cord_words`` and ``bone_words``)."""
        cord, bone = self.terms.groups.get("cord_words", ()), self.terms.groups.get("bone_words", ())
        if not cord or not bone:
            return None
        return _word_pattern(cord), _word_pattern(bone)

    @functools.cached_property
    def predicate_states(self) -> dict[str, re.Pattern[str]]:
        """Per target label, a state stated as a second predicate of its noun ("the cord is displaced to the left and
        is not compressed", "... but is in contact with the mass"): "and" or "but", an optional "is", "was" or
        "remains", an optional "not" or "no longer", then a past participle or a multi-word phrase of a STATE row
        that the label allows (the row's own phrases; the group ``state`` names the row)."""
        out: dict[str, re.Pattern[str]] = {}
        labels = {t for row in self.context.values() if row.category == "STATE" for t in (row.allowed_types or ())}
        for label in sorted(labels):
            alts = []
            for rid, row in self.context.items():
                if row.category != "STATE" or label not in (row.allowed_types or ()):
                    continue
                words = sorted({p for p in row.phrases if p.endswith("ed") or " " in p}, key=len, reverse=True)
                if words:
                    alts.append(f"(?P<{rid.replace('-', '_')}>" + "|".join(re.escape(w) for w in words) + ")")
            if alts:
                out[label] = re.compile(r"[^.;:,()]*?\b(?:and|but)\s+(?:(?:is|was|remains|appears)\s+)?"
                                        r"(?P<neg>not\s+|no\s+longer\s+)?(?:" + "|".join(alts) + r")\b", re.IGNORECASE)
        return out

    @functools.cached_property
    def lesion_and_diagnosis_parts(self) -> dict[str, tuple[str, str]]:
        """For each row naming a lesion type and a diagnosis in one phrase ("lytic metastasis"), the rows of its two
        parts (a lesion row of the same type that names no diagnosis, and the diagnosis row), by row id: a hedge
        on such a phrase doubts the diagnosis, not the lesion seen ("likely sclerotic metastasis at T8")."""
        lesions: dict[str, str] = {}
        for rid, r in self.targets.items():  # the plain row of each type: the first that states nothing more
            if (r.concept == "lesion" and not r.diagnosis and r.polarity == "positive" and r.sets
                    and not r.body_extent and not r.collapse):
                lesions.setdefault(r.value, rid)
        diagnoses = {r.value: rid for rid, r in self.targets.items() if r.concept == "diagnosis" and r.polarity == "positive"}
        return {rid: (lesions[r.value], diagnoses[r.diagnosis]) for rid, r in self.targets.items()
                if r.concept == "lesion" and r.diagnosis and r.value in lesions and r.diagnosis in diagnoses}

    @functools.cached_property
    def nature_hedges(self) -> frozenset[str]:
        """Hedges that doubt a lesion's nature, not its presence (``nature_hedges``)."""
        return frozenset(self.terms.groups.get("nature_hedges", ()))

    @functools.cached_property
    def collection_rim(self) -> tuple[re.Pattern[str], re.Pattern[str]] | None:
        """Words of a rim or wall, and words naming a collection or abscess: enhancement of a rim in a sentence about
        a collection is the collection's wall, not the marrow (``rim_words`` and ``collection_words``)."""
        rim, collection = self.terms.groups.get("rim_words", ()), self.terms.groups.get("collection_words", ())
        if not rim or not collection:
            return None
        return _word_pattern(rim), _word_pattern(collection)

    @functools.cached_property
    def fat_words(self) -> re.Pattern[str] | None:
        """Words calling T1-bright marrow fat (``fat_words``): built once per rule set, not per report."""
        words = self.terms.groups.get("fat_words", ())
        return _word_pattern(words) if words else None

    @functools.cached_property
    def sized_other(self) -> frozenset[str]:
        """Words that, right after a bare size word ("small"), show it sizes something other than the lesion."""
        return frozenset(self.terms.groups.get("sized_other", ()))

    @functools.cached_property
    def elsewhere_in_organ(self) -> re.Pattern[str] | None:
        """Words right after a finding that place it in another organ ("in the liver", "within the upper abdomen"),
        from the terms' ``organ`` group; None without the group."""
        words = self.terms.groups.get("organ", ())
        if not words:
            return None
        names = "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
        return re.compile(r"\s*(?:(?:is|are|was|were|seen|noted|identified|present)\s+)*(?:in|within|involving|of)\s+"
                          r"(?:the\s+|both\s+)?(?:[a-z]+\s+){0,2}?(?:" + names + r")\b", re.IGNORECASE)

    def group_pattern(self, name: str) -> re.Pattern[str] | None:
        """The words of the terms' group *name* as one whole-word pattern, built once per rule set; None without the
        group. Used for ``other_compressor`` (compressors other than tumour), ``tumour_words``, ``new_deformity``
        (what makes a deformity de novo) and ``not_de_novo`` (old, developmental or degenerative)."""
        cache: dict[str, re.Pattern[str] | None] = self.__dict__.setdefault("_group_patterns", {})
        if name not in cache:
            words = self.terms.groups.get(name, ())
            cache[name] = _word_pattern(words) if words else None
        return cache[name]

    @functools.cached_property
    def denial_fillers(self) -> frozenset[str]:
        """Words between a denial and its finding that open no clause ("no evidence of", "no definite sign of")."""
        return frozenset(self.terms.groups.get("denial_fillers", ()))

    @functools.cached_property
    def in_other_bone(self) -> tuple[re.Pattern[str], re.Pattern[str]] | None:
        """(words right after a finding, words right before it) that place it in a bone outside the spine ("of the
        right 8th rib", "in the left iliac bone"; "sternal", "rib"), from the terms' ``other_bone`` group."""
        words = self.terms.groups.get("other_bone", ())
        if not words:
            return None
        names = "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
        after = re.compile(r"\s*(?:(?:is|are|was|were|seen|noted|identified|present)\s+)*(?:in|within|involving|of)\s+"
                           r"(?:the\s+|both\s+|a\s+)?(?:(?:[a-z]+|\d{1,2}(?:st|nd|rd|th))\s+){0,3}?(?:" + names + r")\b(?!\s+heads?\b)", re.IGNORECASE)
        before = re.compile(r"\b(?:" + names + r")\s+(?!heads?\b)(?:[a-z]+\s+)?$", re.IGNORECASE)  # not the rib head
        return after, before


def trie_alternation(words: Iterable[str]) -> str:
    """A regular expression matching any of the words (lower case; use with IGNORECASE), written as a trie of
    their letters: the same matches as the longest-first alternation of the words, and about twice as fast to
    search with, since the engine no longer tries every word at every position."""
    trie: dict[str, Any] = {}
    for w in words:
        node = trie
        for ch in w.lower():
            node = node.setdefault(ch, {})
        node[""] = {}

    def build(node: dict[str, Any]) -> str:
        alts = [re.escape(ch) + build(sub) for ch, sub in sorted(node.items()) if ch]
        if not alts:
            return ""
        if len(alts) == 1 and "" not in node:
            return alts[0]
        return "(?:" + "|".join(alts) + ")" + ("?" if "" in node else "")

    return build(trie)


def _word_pattern(words: tuple[str, ...]) -> re.Pattern[str]:
    """Any of the words, as whole words, ignoring case."""
    return re.compile(r"\b(?:" + trie_alternation(words) + r")\b", re.IGNORECASE)


def _rows(kb: KnowledgeBase, table: str) -> list[dict[str, Any]]:
    out = []
    for r in kb.table(table).rows:
        d = dict(r.model_extra or {})
        d.update(id=r.id, sources=list(r.sources))
        if r.note:
            d["note"] = r.note
        out.append(d)
    return out


def _validate(model: type[BaseModel], raw: Any, where: str) -> Any:
    if not isinstance(raw, Mapping):
        raise InvalidInputError("rules", f"{where}: each row must be a mapping, got {type(raw).__name__}")
    try:
        return model.model_validate(dict(raw))
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        msg = err["msg"]
        if err["type"] == "value_error":
            msg = str((err.get("ctx") or {}).get("error", msg))
        elif err["type"] == "extra_forbidden":
            allowed = ", ".join(sorted(model.model_fields))
            msg = f"unknown column; allowed columns: {allowed}"
        elif err["type"] == "missing":
            msg = "missing"
        raise InvalidInputError("rules", f"{where}.{loc}: {msg}" if loc else f"{where}: {msg}") from None


# --- what a row may pre-fill -------------------------------------------------------------------------------


@functools.lru_cache(maxsize=8)
def _prefill_vocabulary(kb: KnowledgeBase) -> dict[str, tuple[Any, ...]]:
    """Field -> allowed values, taken from the instruments themselves (one source of truth)."""
    from spinemets.interpret.fracture import TABLE as FRACTURE_TABLE
    from spinemets.interpret.marrow import DISC, VOCABULARY
    from spinemets.scores.escc import FINDINGS
    from spinemets.scores.sins import ENUMS

    vocab: dict[str, tuple[Any, ...]] = {}
    for comp in ("lesion", "alignment", "collapse", "posterolateral"):
        values = tuple(m.value for m in ENUMS[comp])
        if comp == "collapse":
            values += ("no_collapse",)  # read with the extent of the lesion: involved_no_collapse or none
        if comp == "alignment":
            values += ("no_subluxation", "no_deformity")  # both denied: normal alignment
        vocab[f"sins.{comp}"] = values
    for name in FINDINGS:
        vocab[f"escc.{name}"] = (True, False)
    for row in kb.table(FRACTURE_TABLE).rows:
        vocab[f"fracture.{row.id}"] = ("present", "absent")
    for seq, words in VOCABULARY.items():
        vocab[f"marrow.{seq}"] = tuple(words)
    vocab[f"marrow.{DISC}"] = (True, False)
    return vocab


def _check_sets(row: TargetRow, where: str, vocab: Mapping[str, tuple[Any, ...]]) -> None:
    mappings: list[tuple[str, Mapping[str, Any]]] = [("sets", row.sets), ("negated", row.negated)]
    for key in ("states", "negated_states", "complete_states"):
        for state, m in getattr(row, key).items():
            if state not in QUALIFIER_VALUES["STATE"]:
                raise InvalidInputError("rules", f"{where}.{key}: {state!r} is not a state; allowed: "
                                        f"{', '.join(QUALIFIER_VALUES['STATE'])}")
            mappings.append((f"{key}.{state}", m))
    for name, m in mappings:
        for fld, value in m.items():
            allowed = vocab.get(fld)
            if allowed is None:
                raise InvalidInputError("rules", f"{where}.{name}: {fld!r} is not a field that can be pre-filled; "
                                        f"allowed: sins.*, escc.*, fracture.<feature>, marrow.*")
            if value not in allowed or isinstance(value, bool) != isinstance(allowed[0], bool):
                raise InvalidInputError("rules", f"{where}.{name}.{fld}: {value!r} is not allowed; allowed values: "
                                        f"{', '.join(repr(a) for a in allowed)}")


# --- phrase expansion ---------------------------------------------------------------------------------------


def _expand(phrase: str, terms: Terms, where: str) -> list[str]:
    m = _MACRO.match(phrase)
    if m:
        args = [a.strip() for a in m.group(2).split(",")]
        if m.group(1) == "signal" and len(args) == 2:
            seq, sig = args
            shapes = [t.replace("{seq}", "{" + seq + "}").replace("{sig}", "{" + sig + "}") for t in terms.single_templates]
        elif m.group(1) == "pair" and len(args) == 3:
            a, b, sig = args
            shapes = []
            for first, second in ((a, b), (b, a)):
                shapes += [t.replace("{seq2}", "{" + second + "}").replace("{seq}", "{" + first + "}")
                           .replace("{sig}", "{" + sig + "}") for t in terms.pair_templates]
        else:
            raise InvalidInputError("rules", f"{where}: {phrase!r}: use @signal(SEQUENCE, SIGNAL) or @pair(SEQ1, SEQ2, SIGNAL)")
        out: list[str] = []
        for s in shapes:
            out.extend(_expand(s, terms, where))
        return out
    names = _PLACEHOLDER.findall(phrase)
    if not names:
        return [normalise_text(phrase)]
    choices = []
    for name in names:
        if name == "level":
            choices.append((LEVEL_NORM,))
            continue
        words = terms.groups.get(name)
        if words is None:
            raise InvalidInputError("rules", f"{where}: {phrase!r}: unknown placeholder {{{name}}}; "
                                    f"known: {', '.join(sorted(['level', *terms.groups]))}")
        choices.append(words)
    out = []
    parts = _PLACEHOLDER.split(phrase)  # text, name, text, name, ..., text
    for combo in itertools.product(*choices):
        text = parts[0]
        for i, word in enumerate(combo):
            text += word + parts[2 * i + 2]
        out.append(normalise_text(" ".join(text.split())))
    return out


def _terms(rows: Sequence[TermRow]) -> Terms:
    sections: dict[str, str] = {}
    spellings: dict[str, str] = {}
    groups: dict[str, tuple[str, ...]] = {}
    single: tuple[str, ...] = ()
    pair: tuple[str, ...] = ()
    after: set[str] = set()
    before: set[str] = set()
    after_list: set[str] = set()
    exclusions: set[str] = set()
    spared: list[str] = []
    fractions: list[tuple[str, int]] = []
    comparators: dict[str, str] = {}
    remaining: list[str] = []
    earlier: list[str] = []
    abbreviations: set[str] = set()
    cues: dict[str, tuple[str, ...]] = {}
    for r in rows:
        where = f"terms.{r.id}"
        words = [str(w).strip().lower() for w in (r.words or [])]
        if r.kind == "section":
            if r.role not in SECTION_ROLES or not r.headings:
                raise InvalidInputError("rules", f"{where}: a section needs role ({', '.join(SECTION_ROLES)}) and headings")
            for h in r.headings:
                sections[h.strip().lower()] = r.role
        elif r.kind == "spelling":
            if len(words) < 2:
                raise InvalidInputError("rules", f"{where}.words: give the form to read and at least one other spelling")
            for w in words[1:]:
                spellings[w] = words[0]
        elif r.kind == "group":
            if not r.name or not words:
                raise InvalidInputError("rules", f"{where}: a group needs a name and words")
            groups[r.name] = tuple(dict.fromkeys(groups.get(r.name, ()) + tuple(words)))
        elif r.kind == "signal_templates":
            single = tuple(r.single or single)
            pair = tuple(r.pair or pair)
        elif r.kind == "sequence_cue":
            after.update(w.lower() for w in r.after or [])
            before.update(w.lower() for w in r.before or [])
            after_list.update(w.lower() for w in r.after_list or [])
        elif r.kind == "level_exclusion":
            exclusions.update(w.lower() for w in r.after or [])
            spared.extend(w.lower() for w in r.spared or [])
        elif r.kind == "fraction":
            if r.percent is None or not words:
                raise InvalidInputError("rules", f"{where}: a fraction needs words and percent")
            fractions.extend((w, r.percent) for w in words)
        elif r.kind == "comparator":
            if r.meaning not in ("above", "below", "about"):
                raise InvalidInputError("rules", f"{where}.meaning: {r.meaning!r} is not allowed; allowed values: above, below, about")
            comparators.update({w: r.meaning for w in words})
        elif r.kind == "percent_cue":
            if r.meaning not in ("remaining", "earlier"):
                raise InvalidInputError("rules", f"{where}.meaning: {r.meaning!r} is not allowed; allowed values: remaining, earlier")
            (remaining if r.meaning == "remaining" else earlier).extend(words)
        elif r.kind == "abbreviation":
            abbreviations.update(words)
        elif r.kind == "cue":
            if not r.name or not words:
                raise InvalidInputError("rules", f"{where}: a cue needs a name and words")
            cues[r.name] = tuple(dict.fromkeys(cues.get(r.name, ()) + tuple(normalise_text(w) for w in words)))
    return Terms(
        sections=sections, spellings=spellings, groups=groups, single_templates=single, pair_templates=pair,
        sequence_after=frozenset(after), sequence_before=frozenset(before), sequence_after_list=frozenset(after_list),
        level_exclusions=frozenset(exclusions),
        spared_words=tuple(sorted(set(spared), key=len, reverse=True)),
        fractions=tuple(sorted(fractions, key=lambda x: -len(x[0]))), comparators=comparators,
        percent_remaining=tuple(remaining), percent_earlier=tuple(earlier), abbreviations=frozenset(abbreviations), cues=cues,
    )


# --- loading ----------------------------------------------------------------------------------------------


def read_rules_file(path: str | Path) -> dict[str, list[Any]]:
    """Read a site's rules file (YAML or JSON): a mapping with ``targets``, ``context`` and/or ``terms`` lists."""
    p = Path(path)
    if p.suffix.lower() not in (".yaml", ".yml", ".json"):
        raise InvalidInputError("rules", f"{p.name}: a rules file must be .yaml, .yml or .json")
    try:
        size = p.stat().st_size
        if size > MAX_RULES_BYTES:
            raise InvalidInputError("rules", f"{p.name}: {size} bytes; the limit is {MAX_RULES_BYTES}")
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidInputError("rules", f"{path}: no such file") from None
    except IsADirectoryError:
        raise InvalidInputError("rules", f"{path}: is a folder, not a rules file") from None
    except UnicodeDecodeError:
        raise InvalidInputError("rules", f"{p.name}: not UTF-8 text") from None
    except OSError as exc:
        raise InvalidInputError("rules", f"{path}: cannot read it: {exc.strerror}") from None
    try:
        data = json.loads(text) if p.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InvalidInputError("rules", f"{p.name}: not valid {'JSON' if p.suffix.lower() == '.json' else 'YAML'}: {first}") from None
    if not isinstance(data, Mapping):
        raise InvalidInputError("rules", f"{p.name}: expected a mapping with targets, context and/or terms")
    unknown = set(data) - {"targets", "context", "terms"}
    if unknown:
        raise InvalidInputError("rules", f"{p.name}: unknown key {sorted(unknown)[0]!r}; allowed keys: targets, context, terms")
    out: dict[str, list[Any]] = {}
    for key in ("targets", "context", "terms"):
        rows = data.get(key) or []
        if not isinstance(rows, list):
            raise InvalidInputError("rules", f"{p.name}: {key} must be a list of rows")
        out[key] = rows
    if not any(out.values()):
        raise InvalidInputError("rules", f"{p.name}: the file holds no rows")
    return out


def rules_path(rules: str | Path | None) -> str | None:
    """The rules file to use: the argument, else $SPINEMETS_REPORT_RULES, else none."""
    if rules:
        return str(rules)
    env = os.environ.get(ENV_RULES, "").strip()
    return env or None


def load_rules(kb: KnowledgeBase | None = None, rules: str | Path | None = None) -> RuleSet:
    """The rule set of *kb* (default: the packaged one) extended by a site's rules file."""
    kb = kb or load_kb()
    path = rules_path(rules)
    stamp = None
    if path:
        try:
            st = Path(path).stat()
            stamp = (st.st_mtime_ns, st.st_size)
        except OSError:
            stamp = None
    return _load_rules(kb, path, stamp)


@functools.lru_cache(maxsize=16)
def _load_rules(kb: KnowledgeBase, path: str | None, stamp: Any) -> RuleSet:
    raw_targets: list[tuple[Any, str]] = [(r, TARGETS) for r in _rows(kb, TARGETS)]
    raw_context: list[tuple[Any, str]] = [(r, CONTEXT) for r in _rows(kb, CONTEXT)]
    raw_terms: list[tuple[Any, str]] = [(r, TERMS) for r in _rows(kb, TERMS)]
    files: tuple[str, ...] = ()
    if path:
        site = read_rules_file(path)
        tag = f"site:{Path(path).name}"
        raw_targets += [(r, tag) for r in site["targets"]]
        raw_context += [(r, tag) for r in site["context"]]
        raw_terms += [(r, tag) for r in site["terms"]]
        files = (str(path),)

    origin: dict[str, str] = {}

    def where(kind: str, raw: Any, index: int, org: str) -> str:
        name = raw.get("id") if isinstance(raw, Mapping) and isinstance(raw.get("id"), str) else f"[{index}]"
        return f"{kind}.{name}" + (f" ({org.removeprefix('site:')})" if org.startswith("site:") else "")

    term_rows: dict[str, TermRow] = {}
    for i, (raw, org) in enumerate(raw_terms):
        row = _validate(TermRow, raw, where("terms", raw, i, org))
        term_rows[row.id] = row
    terms = _terms(list(term_rows.values()))

    vocab = _prefill_vocabulary(kb)
    targets: dict[str, TargetRow] = {}
    for i, (raw, org) in enumerate(raw_targets):
        w = where("targets", raw, i, org)
        row = _validate(TargetRow, raw, w)  # a site's row may have no sources: its findings are labelled site:ID
        _check_sets(row, w, vocab)
        if row.requires_cue and row.requires_cue not in terms.cues:
            raise InvalidInputError("rules", f"{w}.requires_cue: {row.requires_cue!r} is not a cue; known: {', '.join(terms.cues)}")
        for sid in row.sources:
            if sid not in kb.sources:
                raise InvalidInputError("rules", f"{w}.sources: unknown source id {sid!r}")
        targets[row.id] = row
        origin[row.id] = org

    context: dict[str, ContextRow] = {}
    for i, (raw, org) in enumerate(raw_context):
        w = where("context", raw, i, org)
        row = _validate(ContextRow, raw, w)
        if row.qualifier:
            allowed = QUALIFIER_VALUES[row.category]
            if row.value not in allowed:
                raise InvalidInputError("rules", f"{w}.value: {row.value!r} is not allowed for {row.category}; "
                                        f"allowed values: {', '.join(allowed)}")
        for sid in row.sources:
            if sid not in kb.sources:
                raise InvalidInputError("rules", f"{w}.sources: unknown source id {sid!r}")
        context[row.id] = row
        origin[row.id] = org

    target_phrases = _expanded_phrases(targets, terms, raw_targets, raw_terms)
    context_phrases = {rid: tuple(dict.fromkeys(normalise_text(p) for p in r.phrases)) for rid, r in context.items()}
    _check_unique(target_phrases, context, context_phrases, origin)
    return RuleSet(targets=targets, context=context, terms=terms, target_phrases=target_phrases,
                   context_phrases=context_phrases, origin=origin, files=files, kb_version=kb.version)


# Expanding the placeholders ("{sig} on {seq}" by every signal and sequence word) is most of the rule set's build
# time. The expanded phrases are kept in the cache folder as JSON (data only, never code), keyed on a hash of the
# rows, the term rows and this module's source: any change to either makes a new entry.
PHRASES_FORMAT = 1


def _expanded_phrases(targets: Mapping[str, TargetRow], terms: Terms, raw_targets: list[tuple[Any, str]],
                      raw_terms: list[tuple[Any, str]]) -> dict[str, tuple[str, ...]]:
    import hashlib

    from spinemets.cachedir import cache_dir, save_atomically

    h = hashlib.sha256(f"{PHRASES_FORMAT}|".encode() + Path(__file__).read_bytes())
    h.update(json.dumps([[r for r, _ in raw_targets], [r for r, _ in raw_terms]], sort_keys=True, default=str).encode())
    path = cache_dir() / f"report-phrases-{h.hexdigest()[:20]}.json"
    try:
        cached = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(cached, dict) and list(cached) == list(targets) and all(
                isinstance(v, list) and all(isinstance(x, str) and x for x in v) for v in cached.values()):
            return {rid: tuple(cached[rid]) for rid in targets}
    except (OSError, ValueError):
        pass
    phrases = {rid: tuple(dict.fromkeys(p for ph in r.phrases for p in _expand(ph, terms, f"targets.{rid}")))
               for rid, r in targets.items()}
    save_atomically(path, lambda fh: json.dump({rid: list(v) for rid, v in phrases.items()}, fh), text=True)
    return phrases


def _check_unique(target_phrases: Mapping[str, Iterable[str]], context: Mapping[str, ContextRow],
                  context_phrases: Mapping[str, Iterable[str]], origin: Mapping[str, str]) -> None:
    """A phrase names one target row, and within a ConText pass one modifier row: otherwise which wins is arbitrary."""

    def key(p: str) -> str:
        return " ".join(p.split())

    seen: dict[str, str] = {}
    for rid, phrases in target_phrases.items():
        for p in phrases:
            other = seen.setdefault(key(p), rid)
            if other != rid:
                raise InvalidInputError("rules", f"targets.{rid}: phrase {p!r} is already in targets.{other}")
    for qualifier in (False, True):
        seen = {}
        for rid, phrases in context_phrases.items():
            row = context[rid]
            if row.qualifier != qualifier and row.category != "TERMINATE":
                continue
            for p in phrases:
                other = seen.setdefault(key(p), rid)
                if other != rid:
                    raise InvalidInputError("rules", f"context.{rid}: phrase {p!r} is already in context.{other}")
