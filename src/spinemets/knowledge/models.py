"""Pydantic schema of the knowledge base.

The knowledge base is data (YAML files under ``data/``); this module says what
a valid item looks like.  Cross-item rules (unknown source ids, duplicate ids)
live in :mod:`spinemets.knowledge.loader`.
"""

from __future__ import annotations

import datetime as dt
import functools
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

ID_PATTERN = r"^[a-z0-9][a-z0-9_\-]*(\.[a-z0-9][a-z0-9_\-]*)*$"


class ReviewStatus(StrEnum):
    """Clinical review state of an item.  ``draft`` items are flagged wherever used."""

    draft = "draft"
    reviewed = "reviewed"
    approved = "approved"


class Verification(StrEnum):
    """How the fact was checked (the [V] / [S] / [UNVERIFIED] tags of the research notes)."""

    verified = "verified"  # seen in a primary abstract or guideline page
    secondary = "secondary"  # seen only in a secondary source
    unverified = "unverified"  # background knowledge, not confirmed in a source


class SourceKind(StrEnum):
    guideline = "guideline"
    meta_analysis = "meta_analysis"
    primary_study = "primary_study"
    review = "review"
    reference_article = "reference_article"
    drug_label = "drug_label"
    textbook = "textbook"
    web_summary = "web_summary"
    ai_answer_page = "ai_answer_page"  # a commercial AI product's answer page: never the only source of a reviewed fact


#: Source kinds that can back a fact only together with a primary source (guideline, study, label, review).
NON_PRIMARY_KINDS = frozenset({SourceKind.web_summary, SourceKind.ai_answer_page})


class EvidenceKind(StrEnum):
    guideline_recommendation = "guideline_recommendation"
    meta_analysis = "meta_analysis"
    primary_study = "primary_study"
    review = "review"
    reference_article = "reference_article"
    expert_consensus = "expert_consensus"
    drug_label = "drug_label"
    derived = "derived"  # arithmetic or a definition derived from cited figures


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=False)


class Source(_Strict):
    """One bibliography entry."""

    id: str = Field(pattern=ID_PATTERN)
    kind: SourceKind
    authors: str = Field(min_length=1)
    title: str = Field(min_length=1)
    publisher: str = Field(min_length=1, description="Journal, publisher or website")
    year: int | None = Field(default=None, ge=1900, le=2100)
    citation: str | None = Field(default=None, description="Volume, issue and pages")
    doi: str | None = None
    pmid: str | None = None
    url: str | None = None
    verification: Verification = Verification.verified
    note: str | None = None
    review_status: ReviewStatus
    last_reviewed: dt.date

    def short(self) -> str:
        """One-line Vancouver-like citation."""
        text = ""
        for part in (self.authors, self.title, self.publisher):
            part = part.rstrip(".")
            if text:
                text += " " if text.endswith(("?", "!")) else ". "
            text += part
        if self.year:
            text += f" {self.year}"
        if self.citation:
            text += f";{self.citation}"
        text += "."
        if self.doi:
            text += f" doi:{self.doi}"
        elif self.url:
            text += f" {self.url}"
        return text

    def label(self) -> str:
        """A short name for people: 'Harlianto 2024', 'NICE 2023', 'AI answer page' (never the id)."""
        if self.kind is SourceKind.ai_answer_page:
            return "AI answer page"  # several such pages read as one label where they are listed together
        first = self.authors.split(",")[0].strip()
        name = first.split(" (")[0].strip()
        words = name.split()
        # "Harlianto NI" -> "Harlianto"; organisations keep their name ("National Institute ... (NICE)" -> NICE)
        inner = first[first.index("(") + 1:first.index(")")] if "(" in first and ")" in first else ""
        if inner.isupper() and len(inner) <= 8:  # an acronym: "National Institute ... (NICE)" -> NICE
            name = inner
        elif len(words) >= 2 and words[-1].isupper() and len(words[-1]) <= 4 or words[-1:] in (["Jr"], ["Jr."], ["Sr"]):
            # initials and suffixes after the surname: "Harlianto NI", "El-Samie HAEA", "Zajick DC Jr"
            while len(words) >= 2 and (words[-1].isupper() and len(words[-1]) <= 4 or words[-1] in ("Jr", "Jr.", "Sr")):
                words = words[:-1]
            name = " ".join(words)
        placeholder = ("not recorded", "not captured", "unverified", "unknown")
        if any(w in name.lower() for w in placeholder):
            name = self.publisher.split(" (")[0].strip()  # "Authors not recorded" says nothing: name the journal
            if any(w in name.lower() for w in placeholder):
                name = f"PMID {self.pmid}" if self.pmid else self.title.strip("[]").split(":")[0][:40]
        return f"{name} {self.year}" if self.year else name

    def link(self) -> str | None:
        if self.doi:
            return f"https://doi.org/{self.doi}"
        if self.pmid:
            return f"https://pubmed.ncbi.nlm.nih.gov/{self.pmid}/"
        return self.url


class Statement(_Strict):
    """An atomic clinical fact or recommendation, in our own words."""

    id: str = Field(pattern=ID_PATTERN)
    topics: list[str] = Field(min_length=1)
    text: str = Field(min_length=10)
    patient_text: str = Field(min_length=10)
    sources: list[str] = Field(min_length=1)
    evidence: EvidenceKind
    kind: str = Field(default="fact", pattern=r"^(fact|recommendation|definition|caveat)$")
    verification: Verification = Verification.verified
    review_status: ReviewStatus
    last_reviewed: dt.date

    @model_validator(mode="after")
    def _unverified_is_draft(self) -> Statement:
        if self.verification is Verification.unverified and self.review_status is not ReviewStatus.draft:
            raise ValueError("an unverified statement must have review_status 'draft'")
        return self

    @property
    def is_draft(self) -> bool:
        return self.review_status is ReviewStatus.draft or self.verification is Verification.unverified


#: Patient groups an answer topic can be written for (``populations``) or must not be used for (``not_for``).
POPULATIONS = frozenset({
    "any", "adult", "child", "pregnancy", "known_cancer", "no_cancer", "myeloma", "renal_impairment", "implant",
})


class AnswerTopic(_Strict):
    """A curated answer to one clinical question: phrasings, a cited bottom line, ordered key points.

    ``answer`` is the first sentence(s) ask gives: our own words, backed by ``answer_sources`` (primary
    sources only, each also a source of one of the key points, so the bottom line never outruns the facts).
    ``key_points`` and ``caveats`` are statement ids in the order they are shown.
    """

    id: str = Field(pattern=ID_PATTERN)
    area: str = Field(min_length=3)
    title: str = Field(min_length=5)
    phrasings: list[str] = Field(min_length=2)
    examples: list[str] = Field(
        default_factory=list,
        description="questions as people wrote them (development question sets, typing slips kept): they teach "
                    "routing only and, unlike the phrasings, never count as the knowledge base's own words "
                    "(spelling, known words)")
    answer: str = Field(min_length=20, max_length=420)
    patient_answer: str | None = Field(default=None, min_length=20, max_length=420)
    answer_sources: list[str] = Field(min_length=1)
    key_points: list[str] = Field(min_length=1, max_length=6)
    caveats: list[str] = Field(default_factory=list, max_length=4)
    populations: list[str] = Field(default_factory=lambda: ["any"], min_length=1)
    not_for: list[str] = Field(default_factory=list)
    primaries: list[str] = Field(
        default_factory=list,
        description="primary tumours (primary_sites rows) the topic is written for; empty for any. A question that "
                    "names another primary does not get this topic's bottom line")
    answered_by_pathway: bool = Field(
        default=False,
        description="the question is what to image for a patient and how fast: when it describes a patient, the "
                    "imaging pathway's recommendation answers it (other topics keep their bottom line first and "
                    "show the pathway after it)")
    pathway_step: Literal["contact", "steroids", "positioning", "analgesia", "treatment"] | None = Field(
        default=None,
        description="the management step of suspected cord compression this topic is about: when the question "
                    "describes a patient and the pathway gives that step, the patient's step answers first and the "
                    "general bottom line follows")
    verification: Verification = Verification.verified
    review_status: ReviewStatus
    last_reviewed: dt.date

    @field_validator("populations", "not_for")
    @classmethod
    def _known_population(cls, v: list[str]) -> list[str]:
        unknown = sorted(set(v) - POPULATIONS)
        if unknown:
            raise ValueError(f"unknown population(s) {', '.join(unknown)}; use {', '.join(sorted(POPULATIONS))}")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> AnswerTopic:
        if self.verification is Verification.unverified and self.review_status is not ReviewStatus.draft:
            raise ValueError("an unverified answer topic must have review_status 'draft'")
        if set(self.populations) & set(self.not_for):
            raise ValueError("a population cannot be both in populations and in not_for")
        overlap = set(self.key_points) & set(self.caveats)
        if overlap:
            raise ValueError(f"statement(s) both key point and caveat: {', '.join(sorted(overlap))}")
        return self

    @property
    def is_draft(self) -> bool:
        return self.review_status is ReviewStatus.draft or self.verification is Verification.unverified


class TableRow(BaseModel):
    """A row of a table.  Every row names its own sources; other columns are free."""

    model_config = ConfigDict(extra="allow", frozen=True)

    id: str = Field(pattern=ID_PATTERN)
    sources: list[str] = Field(min_length=1)
    verification: Verification = Verification.verified
    review_status: ReviewStatus | None = None
    note: str | None = None

    @field_validator("sources")
    @classmethod
    def _no_blank_sources(cls, v: list[str]) -> list[str]:
        if any(not s or not s.strip() for s in v):
            raise ValueError("blank source id")
        return v

    @model_validator(mode="after")
    def _phrases_are_words(self) -> TableRow:
        # A phrase list is matched as words: anything else (YAML reads "? word" in a list as a mapping) would break
        # the reader at run time, so it is an error when the knowledge base is loaded.
        for key, value in (self.model_extra or {}).items():
            if key == "phrases" or key.endswith("_phrases"):
                if not isinstance(value, list) or any(not isinstance(x, str) or not x.strip() for x in value):
                    bad = value if not isinstance(value, list) else next(
                        x for x in value if not isinstance(x, str) or not x.strip())
                    raise ValueError(f"{key}: every phrase must be non-empty text, not {bad!r} (quote it in YAML)")
        return self

    @model_validator(mode="after")
    def _unverified_is_draft(self) -> TableRow:
        if self.verification is Verification.unverified and self.review_status not in (None, ReviewStatus.draft):
            raise ValueError("an unverified row must have review_status 'draft'")
        return self

    # The row's columns are the model's extra fields; read them from pydantic's own attribute (the `model_extra`
    # property costs a call, and rows are read on every calculation).
    def get(self, key: str, default: Any = None) -> Any:
        extra = self.__pydantic_extra__
        return extra.get(key, default) if extra else default

    def __getitem__(self, key: str) -> Any:
        extra = self.__pydantic_extra__
        if not extra or key not in extra:
            raise KeyError(key)
        return extra[key]

    @property
    def is_draft(self) -> bool:
        return self.review_status is ReviewStatus.draft or self.verification is Verification.unverified


class Table(_Strict):
    """A table of points, grades, figures or cut-offs."""

    id: str = Field(pattern=ID_PATTERN)
    content: str = Field(
        default="clinical",
        pattern=r"^(clinical|language)$",
        description="clinical facts, or language data (synonyms, phrasings) that carries no clinical claim",
    )
    title: str
    description: str
    columns: dict[str, str] = Field(default_factory=dict, description="column name -> meaning")
    review_status: ReviewStatus
    last_reviewed: dt.date
    rows: list[TableRow] = Field(min_length=1)

    @model_validator(mode="after")
    def _no_split_values(self) -> Table:
        # YAML reads {term: CT of the chest, abdomen and pelvis} as the term "CT of the chest" and an empty key
        # "abdomen and pelvis": a key the table does not declare, with no value, is that mistake.
        for r in self.rows:
            for key, value in (r.model_extra or {}).items():
                if value is None and key not in self.columns:
                    raise ValueError(f"row {r.id}: {key!r} has no value and is not a column of the table: a comma "
                                     "inside an unquoted value? Quote the value")
        return self

    def row(self, row_id: str) -> TableRow:
        r = self._by_id.get(row_id)
        if r is not None:
            return r
        from spinemets.errors import UnknownItemError

        raise UnknownItemError("table row", f"{self.id}.{row_id}")

    def has_row(self, row_id: str) -> bool:
        return row_id in self._by_id

    @functools.cached_property
    def _by_id(self) -> dict[str, TableRow]:
        out: dict[str, TableRow] = {}
        for r in self.rows:
            out.setdefault(r.id, r)  # the first row of an id, as a scan finds it
        return out

    def where(self, **criteria: Any) -> list[TableRow]:
        """Rows whose columns equal every criterion (indexed on first use of a set of columns)."""
        keys = tuple(sorted(criteria))
        index = self._indexes.get(keys)
        if index is None:
            index = {}
            for r in self.rows:
                index.setdefault(tuple(_hashable(r.get(k)) for k in keys), []).append(r)
            self._indexes[keys] = index
        return list(index.get(tuple(_hashable(criteria[k]) for k in keys), ()))

    @functools.cached_property
    def _indexes(self) -> dict[tuple[str, ...], dict[tuple[Any, ...], list[TableRow]]]:
        return {}


def _hashable(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _hashable(v)) for k, v in value.items()))
    return value


class Manifest(_Strict):
    version: str = Field(pattern=r"^\d{4}\.\d{1,2}\.\d+$")
    released: dt.date
    title: str
    disclaimer: str = Field(min_length=20)
