"""Prognostic (survival) scores for spinal metastases from one set of patient facts.

The revised Tokuhashi score (Tokuhashi 2005), the Tomita score (Tomita 2001), the modified Bauer score (Leithner
2008) and the New England Spinal Metastasis Score (NESMS; Ghori 2015) are computed side by side from what is known
of the patient: the primary tumour, the Karnofsky performance status, the counts of vertebral and extraspinal bone
metastases, metastases to internal organs, the Frankel grade, walking and the serum albumin.

* Every point, threshold and group is a row of ``tables/prognostic_scores.yaml`` (the points per category, with the
  Karnofsky, count and albumin ranges and the Frankel grades or primaries each category covers); the primaries are
  recognised by the words of ``tables/prognostic_primaries.yaml``.  This module holds only which input feeds which
  item.
* A missing input is never scored: the item keeps every category the known facts allow, and the result gives the
  range of totals and the groups still possible, and says when the group is certain all the same (as SINS does).
  Partial counts narrow the range (three vertebrae involved already mean "multiple bone metastases").
* A primary the words do not recognise is an error that lists the choices, never "others"; a recognised primary that
  a score does not classify by name is "others" where the score has that category (revised Tokuhashi) and unknown
  where it has none (Tomita).
* Each score carries what validation studies found (its discrimination in later cohorts), cited; the scores built
  on points not confirmed in their original paper (Tomita, NESMS) are flagged as drafts.

Survival scores estimate the prognosis of groups of patients; they inform, and do not replace, a multidisciplinary
decision.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from spinemets.errors import ContradictoryInputError, InvalidInputError
from spinemets.knowledge.loader import KnowledgeBase, load_kb
from spinemets.knowledge.models import TableRow
from spinemets.results import Citer, Component, Result, reference_lines, trusted
from spinemets.validation import parse
from spinemets.wording import missing_in_words

TABLE = "prognostic_scores"
PRIMARIES = "prognostic_primaries"
CEILING_CAVEAT = "prognosis.nesms.range_discrepancy"
GENERAL_CAVEATS = ("prognosis.scores.ceiling",)
VALIDATION_TOPICS = frozenset({"validation", "accuracy"})

OrganMetastases = Literal["none", "removable", "unremovable"]
VisceralMetastases = Literal["none", "treatable", "untreatable"]
Frankel = Literal["A", "B", "C", "D", "E"]
Ambulation = Literal["independent", "assisted", "unable"]


@dataclass(frozen=True)
class Score:
    """One prognostic score: its id in the table, its name for people, and the topic its evidence is filed under."""

    id: str
    name: str
    topic: str
    higher_is_better: bool


SCORES: tuple[Score, ...] = (
    Score("tokuhashi_revised", "Revised Tokuhashi score", "tokuhashi", True),
    Score("tomita", "Tomita score", "tomita", False),
    Score("bauer_modified", "Modified Bauer score", "bauer", True),
    Score("nesms", "New England Spinal Metastasis Score (NESMS)", "nesms", True),
)
SCORE_IDS = {s.id: s for s in SCORES}
# Short names accepted for a score (CLI, API paths).
ALIASES = {"tokuhashi": "tokuhashi_revised", "tomita": "tomita", "bauer": "bauer_modified", "nesms": "nesms"}

# Which input fields each item is scored from (what is named as missing when the item is open).
ITEM_INPUTS: dict[tuple[str, str], tuple[str, ...]] = {
    ("tokuhashi_revised", "general_condition"): ("karnofsky",),
    ("tokuhashi_revised", "extraspinal_bone_metastases"): ("extraspinal_bone_metastases",),
    ("tokuhashi_revised", "vertebral_body_metastases"): ("vertebral_metastases",),
    ("tokuhashi_revised", "internal_organ_metastases"): ("organ_metastases",),
    ("tokuhashi_revised", "primary_site"): ("primary",),
    ("tokuhashi_revised", "palsy"): ("frankel",),
    ("tomita", "primary_tumour"): ("primary",),
    ("tomita", "visceral_metastases"): ("visceral_metastases",),
    ("tomita", "bone_metastases"): ("vertebral_metastases", "extraspinal_bone_metastases"),
    ("bauer_modified", "visceral_metastases"): ("visceral_metastases",),
    ("bauer_modified", "lung_cancer"): ("primary",),
    ("bauer_modified", "favourable_primary"): ("primary",),
    ("bauer_modified", "skeletal_metastases"): ("vertebral_metastases", "extraspinal_bone_metastases"),
    ("nesms", "modified_bauer"): ("primary", "visceral_metastases", "vertebral_metastases",
                                  "extraspinal_bone_metastases"),
    ("nesms", "ambulation"): ("ambulation",),
    ("nesms", "albumin"): ("albumin_g_dl",),
}
ALBUMIN_G_L_PER_G_DL = 10.0  # unit conversion, not a clinical fact
MAX_VERTEBRAE = 33  # the vertebrae of the spine, occiput excluded (C1-C7, T1-T12, L1-L5, S1-S5, Co1-Co4)


class PrognosisInput(BaseModel):
    """What is known about the patient.  Every field may be missing; a missing field is never scored."""

    model_config = ConfigDict(extra="forbid")

    primary: str | None = Field(default=None, description="primary tumour, e.g. 'breast', 'renal cell carcinoma', "
                                "'unknown primary'; colorectal cancer as colon or rectum")
    karnofsky: int | None = Field(default=None, ge=10, le=100, multiple_of=10,
                                  description="Karnofsky performance status, 10-100 (%), in steps of 10")
    vertebral_metastases: int | None = Field(default=None, ge=1, le=MAX_VERTEBRAE,
                                             description="number of vertebral bodies with metastases")
    extraspinal_bone_metastases: int | None = Field(default=None, ge=0, le=1000,
                                                    description="number of bone metastases outside the spine")
    organ_metastases: OrganMetastases | None = Field(
        default=None, description="metastases to major internal organs (revised Tokuhashi): none / removable / unremovable")
    visceral_metastases: VisceralMetastases | None = Field(
        default=None, description="visceral metastases (Tomita, Bauer): none / treatable / untreatable")
    frankel: Frankel | None = Field(default=None, description="Frankel grade A-E (E: no neurological deficit)")
    ambulation: Ambulation | None = Field(default=None, description="walking: independent / assisted / unable")
    albumin_g_dl: float | None = Field(default=None, ge=0.5, le=7.0, description="serum albumin, g/dL (e.g. 3.8)")
    albumin_g_l: float | None = Field(default=None, ge=5.0, le=70.0, description="serum albumin, g/L (e.g. 38)")

    @field_validator("primary", mode="before")
    @classmethod
    def _primary(cls, v: Any) -> str | None:
        if v is None or (isinstance(v, str) and not v.strip()):
            return None
        if not isinstance(v, str):
            raise ValueError("give the primary tumour in words, e.g. 'breast'")
        try:
            return primary_id(v)
        except InvalidInputError as exc:
            raise ValueError(exc.message) from None

    @field_validator("albumin_g_dl", mode="before")
    @classmethod
    def _albumin_unit(cls, v: Any) -> Any:
        if isinstance(v, (int, float)) and not isinstance(v, bool) and 7.0 < v <= 70.0:
            raise ValueError(f"{v:g} g/dL is far above any serum albumin; if it is in g/L, give it as g/L")
        return v

    @field_validator("albumin_g_l", mode="before")
    @classmethod
    def _albumin_unit_l(cls, v: Any) -> Any:
        if isinstance(v, (int, float)) and not isinstance(v, bool) and 0.5 <= v <= 7.0:
            raise ValueError(f"{v:g} g/L is far below any serum albumin; if it is in g/dL, give it as g/dL")
        return v

    @property
    def albumin(self) -> float | None:
        """Serum albumin in g/dL, from whichever unit was given."""
        if self.albumin_g_dl is not None:
            return self.albumin_g_dl
        return None if self.albumin_g_l is None else self.albumin_g_l / ALBUMIN_G_L_PER_G_DL


def _check_consistent(inp: PrognosisInput) -> None:
    """Inputs that cannot all be true: two albumin values that disagree; no organ metastases by one name and some by
    the other."""
    g_dl, g_l = inp.albumin_g_dl, inp.albumin_g_l
    if g_dl is not None and g_l is not None and abs(g_dl * ALBUMIN_G_L_PER_G_DL - g_l) > 0.05:
        raise ContradictoryInputError(
            ["prognosis.albumin_g_dl", "prognosis.albumin_g_l"],
            f"serum albumin {g_dl:g} g/dL is {g_dl * ALBUMIN_G_L_PER_G_DL:g} g/L, but {g_l:g} g/L was given",
        )
    organ, visceral = inp.organ_metastases, inp.visceral_metastases
    if organ is not None and visceral is not None and (organ == "none") != (visceral == "none"):
        raise ContradictoryInputError(
            ["prognosis.organ_metastases", "prognosis.visceral_metastases"],
            f"metastases to major internal organs were given as '{organ}' but visceral metastases as '{visceral}'",
        )


# --- the primary tumour, from free text ----------------------------------------------------------------------------


@functools.lru_cache(maxsize=4)
def _primary_patterns(kb: KnowledgeBase) -> tuple[tuple[str, re.Pattern[str]], ...]:
    out = []
    for row in kb.table(PRIMARIES).rows:
        for word in row["synonyms"]:
            if any(ch.isalnum() for ch in word):
                out.append((row.id, re.compile(r"(?<![\w-])" + re.escape(word) + r"(?![\w-])")))
            else:  # a sign such as "?" counts wherever it stands
                out.append((row.id, re.compile(re.escape(word))))
    return tuple(out)


@functools.lru_cache(maxsize=4)
def _refused(kb: KnowledgeBase) -> frozenset[str]:
    return frozenset(row.id for row in kb.table(PRIMARIES).rows if row.get("refuse"))


def primary_id(text: str, kb: KnowledgeBase | None = None) -> str:
    """The prognostic-primaries row that *text* names (whole words; the longest phrase wins where two overlap).

    Raises InvalidInputError naming the choices when the text names none, or two different primaries."""
    kb = kb or load_kb()
    low = " ".join(text.lower().replace("_", " ").split())
    found: list[tuple[int, int, str]] = []
    for pid, pattern in _primary_patterns(kb):
        for m in pattern.finditer(low):
            found.append((m.start(), m.end(), pid))
    # a match inside a longer match of another phrase does not count ("uterine" inside "uterine cervix")
    kept = {pid for s, e, pid in found
            if not any(s2 <= s and e <= e2 and (e2 - s2) > (e - s) for s2, e2, _ in found)}
    labels = {row.id: row["label"] for row in kb.table(PRIMARIES).rows}
    refused = _refused(kb)
    if kept & refused:
        raise InvalidInputError(
            "prognosis.primary",
            f"{text!r} is {labels[next(iter(kept & refused))]}: the prognostic scores cannot place it by name; "
            "give a confirmed primary as the scores name it, or leave it out (the result then gives the range)",
        )
    if len(kept) == 1:
        return kept.pop()
    if kept:
        names = " and ".join(sorted(labels[p] for p in kept))
        raise InvalidInputError("prognosis.primary", f"{text!r} names more than one primary ({names}); give one")
    choices = ", ".join(sorted(v for k, v in labels.items() if k not in refused))
    raise InvalidInputError(
        "prognosis.primary",
        f"{text!r} is not a primary the prognostic scores recognise; give one of: {choices} "
        "(colorectal cancer as colon or rectum cancer)",
    )


def primary_label(pid: str, kb: KnowledgeBase | None = None) -> str:
    kb = kb or load_kb()
    return str(next(r["label"] for r in kb.table(PRIMARIES).rows if r.id == pid))


# --- results -------------------------------------------------------------------------------------------------------


class ScoreResult(Result):
    """One prognostic score: its total (or the range of totals still possible) and its prognostic group."""

    name: str = Field(description="the score's name")
    total: int | None = None
    possible_min: int
    possible_max: int
    scale_min: int
    scale_max: int
    higher_is_better: bool
    group: str | None = Field(default=None, description="the prognostic group of the total, as the paper words it")
    treatment: str | None = Field(default=None, description="the treatment the paper suggests for the group")
    possible_groups: list[str] = Field(default_factory=list, description="the groups the possible totals fall in")

    def headline(self) -> str:
        return self.summary

    def to_text(self) -> str:
        text = super().to_text()
        first, _, rest = text.partition("\n")
        return f"{self.name}: {first.split(': ', 1)[1]}\n{rest}"


class PrognosisResult(Result):
    instrument: str = "prognosis"
    scores: list[ScoreResult] = Field(default_factory=list)

    def to_text(self) -> str:
        lines = [f"Prognostic scores: {self.summary}"]
        for n in self.notices:
            lines.append(f"! {n.message}" + (f" [{','.join(map(str, n.refs))}]" if n.refs else ""))
        lines += reference_lines(self.references, self.kb_version, self.disclaimer)[:-2]
        for s in self.scores:
            lines += ["", *s.to_text().split("\n")[:-2]]  # each score's text without the closing line
        lines += reference_lines([], self.kb_version, self.disclaimer)
        return "\n".join(lines)


# --- scoring -------------------------------------------------------------------------------------------------------


def _rows(kb: KnowledgeBase, score: str, item: str) -> list[TableRow]:
    return kb.table(TABLE).where(score=score, item=item)


def _items(kb: KnowledgeBase, score: str) -> list[str]:
    """The scored items of *score*, in table order."""
    seen: list[str] = []
    for row in kb.table(TABLE).where(score=score):
        if row["item"] not in ("band", "ceiling") and row["item"] not in seen:
            seen.append(row["item"])
    return seen


def _in_range(row: TableRow, lo: float, hi: float) -> bool:
    """Whether the row's inclusive range meets [lo, hi] (hi may be infinite)."""
    low, high = row["range"]
    return lo <= (float("inf") if high is None else high) and hi >= low


def _by_value(rows: list[TableRow], value: float | None) -> list[TableRow]:
    if value is None:
        return rows
    return [r for r in rows if _in_range(r, value, value)]


def _bone_total(inp: PrognosisInput) -> tuple[float, float]:
    """The lowest and highest possible number of bone metastases, spine included (a vertebra is involved: these
    scores are for patients with spinal metastases)."""
    vertebral, extra = inp.vertebral_metastases, inp.extraspinal_bone_metastases
    lo = (1 if vertebral is None else vertebral) + (0 if extra is None else extra)
    hi = float("inf") if vertebral is None or extra is None else vertebral + extra
    return lo, hi


def _primary_rows(rows: list[TableRow], primary: str | None) -> list[TableRow]:
    """The primary-site categories *primary* falls in: the one that names it, else the 'others' category where the
    score has one, else every category (the score does not classify it)."""
    if primary is None:
        return rows
    named = [r for r in rows if primary in (r.get("includes") or ())]
    if named:
        return named
    others = [r for r in rows if "others" in (r.get("includes") or ())]
    return others or rows


def _candidates(kb: KnowledgeBase, score: str, item: str, inp: PrognosisInput,
                bauer_range: tuple[int, int] | None) -> list[TableRow]:
    """The categories of *item* the known facts allow (one when the item is decided)."""
    rows = _rows(kb, score, item)
    key = (score, item)
    if key == ("tokuhashi_revised", "general_condition"):
        return _by_value(rows, inp.karnofsky)
    if key == ("tokuhashi_revised", "extraspinal_bone_metastases"):
        return _by_value(rows, inp.extraspinal_bone_metastases)
    if key == ("tokuhashi_revised", "vertebral_body_metastases"):
        return _by_value(rows, inp.vertebral_metastases)
    if key == ("tokuhashi_revised", "internal_organ_metastases"):
        return rows if inp.organ_metastases is None else [r for r in rows if r["value"] == inp.organ_metastases]
    if key in (("tokuhashi_revised", "primary_site"), ("tomita", "primary_tumour")):
        return _primary_rows(rows, inp.primary)
    if key == ("tokuhashi_revised", "palsy"):
        return rows if inp.frankel is None else [r for r in rows if inp.frankel in r["includes"]]
    if key == ("tomita", "visceral_metastases"):
        value = inp.visceral_metastases
        return rows if value is None else [r for r in rows if r["value"] == value]
    if key in (("tomita", "bone_metastases"), ("bauer_modified", "skeletal_metastases")):
        lo, hi = _bone_total(inp)
        return [r for r in rows if _in_range(r, lo, hi)]
    if key == ("bauer_modified", "visceral_metastases"):
        status = inp.visceral_metastases or inp.organ_metastases
        return rows if status is None else [r for r in rows if r["value"] == ("absent" if status == "none" else "present")]
    if key == ("bauer_modified", "lung_cancer"):
        if inp.primary is None or inp.primary == "unidentified":
            return rows
        return [r for r in rows if r["value"] == ("present" if inp.primary == "lung" else "absent")]
    if key == ("bauer_modified", "favourable_primary"):
        if inp.primary is None or inp.primary == "unidentified":
            return rows
        named = [r for r in rows if inp.primary in (r.get("includes") or ())]
        return named or [r for r in rows if not r.get("includes")]
    if key == ("nesms", "modified_bauer"):
        assert bauer_range is not None
        lo, hi = bauer_range
        return [r for r in rows if (r["value"] == "ge3" and hi >= 3) or (r["value"] == "lt3" and lo < 3)]
    if key == ("nesms", "ambulation"):
        return rows if inp.ambulation is None else [r for r in rows if inp.ambulation in r["includes"]]
    if key == ("nesms", "albumin"):
        albumin = inp.albumin
        if albumin is None:
            return rows
        return [r for r in rows if (r.get("at_least") is not None and albumin >= r["at_least"])
                or (r.get("below") is not None and albumin < r["below"])]
    raise KeyError(f"{score}.{item}: no rule says which input scores this item")  # pragma: no cover - test_kb checks


def _missing_fields(score: str, item: str, inp: PrognosisInput, bauer_missing: Sequence[str]) -> list[str]:
    """The absent inputs that leave *item* open (none when the inputs are given but the score does not decide them)."""
    if item == "modified_bauer":
        return list(bauer_missing)
    if item == "visceral_metastases" and score == "bauer_modified":
        either = inp.visceral_metastases or inp.organ_metastases
        return [] if either is not None else ["prognosis.visceral_metastases"]
    absent = [f for f in ITEM_INPUTS[(score, item)] if getattr(inp, "albumin" if f == "albumin_g_dl" else f) is None]
    return [f"prognosis.{f}" for f in absent]


def _unclassified(kb: KnowledgeBase, sc: Score, item: str, inp: PrognosisInput) -> str | None:
    """Why a given primary leaves *item* open, in words (None when it does not)."""
    if inp.primary is None or item not in ("primary_tumour", "lung_cancer", "favourable_primary"):
        return None
    label = primary_label(inp.primary, kb)
    if inp.primary == "unidentified":
        return f"The primary is not identified, so the {sc.name} cannot say whether it is one its categories name."
    return f"The {sc.name} does not place {label} in any of its primary-tumour categories."


def score(name: str, data: PrognosisInput | dict[str, Any], kb: KnowledgeBase | None = None) -> ScoreResult:
    """One prognostic score (``tokuhashi``, ``tomita``, ``bauer`` or ``nesms``, or its table id) from *data*."""
    kb = kb or load_kb()
    inp = parse(PrognosisInput, data, "prognosis")
    _check_consistent(inp)
    sid = ALIASES.get(name, name)
    if sid not in SCORE_IDS:
        raise InvalidInputError("score", f"{name!r} is not a prognostic score; choose one of: {', '.join(ALIASES)}")
    return _score(kb, SCORE_IDS[sid], inp)


def _inferred(inp: PrognosisInput) -> PrognosisInput:
    """No metastases to internal organs by one name means none by the other (anything else is refused as
    contradictory), so 'none' given under one name answers both."""
    if inp.organ_metastases is None and inp.visceral_metastases == "none":
        return inp.model_copy(update={"organ_metastases": "none"})
    if inp.visceral_metastases is None and inp.organ_metastases == "none":
        return inp.model_copy(update={"visceral_metastases": "none"})
    return inp


def _score(kb: KnowledgeBase, sc: Score, inp: PrognosisInput) -> ScoreResult:
    inp = _inferred(inp)
    cite = Citer(kb)
    bauer_range: tuple[int, int] | None = None
    bauer_missing: list[str] = []
    open_reasons: list[str] = []
    if sc.id == "nesms":
        bauer = _score(kb, SCORE_IDS["bauer_modified"], inp)
        bauer_range = (bauer.possible_min, bauer.possible_max)
        bauer_missing = bauer.missing
    components: list[Component] = []
    missing: list[str] = []
    totals = {0}
    scale_lo = scale_hi = 0
    for item in _items(kb, sc.id):
        all_rows = _rows(kb, sc.id, item)
        scale_lo += min(int(r["points"]) for r in all_rows)
        scale_hi += max(int(r["points"]) for r in all_rows)
        rows = _candidates(kb, sc.id, item, inp, bauer_range)
        points = sorted({int(r["points"]) for r in rows})
        totals = {t + p for t in totals for p in points}
        if len(rows) == 1:
            row = rows[0]
            components.append(cite.component(item, TABLE, row, value=str(row["label"]), points=int(row["points"])))
            continue
        missing.extend(m for m in _missing_fields(sc.id, item, inp, bauer_missing) if m not in missing)
        why = _unclassified(kb, sc, item, inp)
        if why and len(points) > 1 and why not in open_reasons:
            open_reasons.append(why)
        note = "not known: not scored" if len(points) > 1 else "not known, but every possibility scores the same"
        label = " or ".join(str(r["label"]) for r in rows) if len(rows) < len(all_rows) else None
        components.append(trusted(Component, None, name=item, value=None, label=label, note=note))
    notices = [cite.notice("unclassified", why, kb_items=[f"{PRIMARIES}"]) for why in open_reasons]
    ceiling = _rows(kb, sc.id, "ceiling")
    if ceiling:
        top = int(ceiling[0]["band_max"])
        if max(totals) > top:
            may = "add up" if min(totals) > top else "may add up"
            notices.append(cite.notice("ceiling", f"The points {may} to more than {top} here; totals above {top} are "
                                       f"counted as {top}, the top of the published scale.",
                                       kb_items=[f"{TABLE}.{ceiling[0].id}", CEILING_CAVEAT]))
        totals = {min(t, top) for t in totals}
        scale_hi = min(scale_hi, top)
    lo, hi = min(totals), max(totals)
    bands = [r for r in _rows(kb, sc.id, "band")
             if any(int(r["band_min"]) <= t <= int(r["band_max"]) for t in totals)]
    for row in bands:
        cite.cite_row(TABLE, row)
    complete = lo == hi
    band = bands[0] if len(bands) == 1 else None
    if complete:
        summary = f"total {lo} (scale {scale_lo}-{scale_hi})" + (f": {band['meaning']}" if band else "")
        if missing:
            summary += f"; certain although {missing_in_words_joined(missing)} not given"
    else:
        lead = f"insufficient data: total between {lo} and {hi} (scale {scale_lo}-{scale_hi})"
        if band is not None:
            summary = f"{lead}, but every possible total falls in one group: {band['meaning']}"
        else:
            summary = f"{lead}; possible groups: " + "; ".join(str(b["meaning"]) for b in bands)
    for sid in GENERAL_CAVEATS:
        notices.append(cite.notice("caveat", _sentence(kb, sid), kb_items=[sid]))
    for st in _evidence(kb, sc.topic):
        notices.append(cite.notice("validation", st.text, kb_items=[st.id]))
    return trusted(
        ScoreResult, None,
        instrument=ALIASES_BY_ID[sc.id],
        name=sc.name,
        status="complete" if complete else "insufficient_data",
        summary=summary,
        components=components,
        missing=missing,
        notices=notices,
        total=lo if complete else None,
        possible_min=lo,
        possible_max=hi,
        scale_min=scale_lo,
        scale_max=scale_hi,
        higher_is_better=sc.higher_is_better,
        group=None if band is None else str(band["meaning"]),
        treatment=None if band is None or band.get("treatment") is None else str(band["treatment"]),
        possible_groups=[str(b["meaning"]) for b in bands],
        **cite.common(),  # type: ignore[arg-type]
    )


ALIASES_BY_ID = {v: k for k, v in ALIASES.items()}


def missing_in_words_joined(missing: Sequence[str]) -> str:
    words = missing_in_words(missing)
    return ", ".join(words[:-1]) + f" and {words[-1]} are" if len(words) > 1 else f"{words[0]} is"


def _sentence(kb: KnowledgeBase, statement_id: str) -> str:
    return kb.statement(statement_id).text


@functools.lru_cache(maxsize=16)
def _evidence_ids(kb: KnowledgeBase, topic: str) -> tuple[str, ...]:
    return tuple(st.id for st in kb.statements.values()
                 if topic in st.topics and VALIDATION_TOPICS & set(st.topics) and st.kind == "fact")


def _evidence(kb: KnowledgeBase, topic: str) -> list[Any]:
    """What validation studies found for the score filed under *topic* (the knowledge base's order)."""
    return [kb.statement(i) for i in _evidence_ids(kb, topic)]


def prognosis(data: PrognosisInput | dict[str, Any], kb: KnowledgeBase | None = None,
              scores: Sequence[str] = ()) -> PrognosisResult:
    """Every prognostic score (or those named in *scores*) from one set of patient facts, side by side."""
    kb = kb or load_kb()
    inp = parse(PrognosisInput, data, "prognosis")
    _check_consistent(inp)
    chosen = [SCORE_IDS[ALIASES.get(s, s)] for s in scores] if scores else list(SCORES)
    results = [_score(kb, sc, inp) for sc in chosen]
    cite = Citer(kb)
    done = [r for r in results if r.status == "complete"]
    parts = [f"{r.name} {r.total}" + (f" ({r.group[:1].lower()}{r.group[1:]})" if r.group else "") for r in done]
    open_ = [r.name for r in results if r.status != "complete"]
    summary = "; ".join(parts) if parts else "no score complete"
    if open_:
        summary += "; insufficient data for " + ", ".join(open_)
    missing = list(dict.fromkeys(m for r in results for m in r.missing))
    notice = cite.notice("sorg", _sentence(kb, "prognosis.sorg.not_reimplemented"),
                         kb_items=["prognosis.sorg.not_reimplemented"])
    return trusted(
        PrognosisResult, None,
        status="complete" if not open_ else "insufficient_data",
        summary=summary,
        missing=missing,
        notices=[notice],
        scores=results,
        **cite.common(),  # type: ignore[arg-type]
    )


def tokuhashi(data: PrognosisInput | dict[str, Any], kb: KnowledgeBase | None = None) -> ScoreResult:
    """Revised Tokuhashi score (Tokuhashi 2005): six items, 0-15; higher is better."""
    return score("tokuhashi", data, kb)


def tomita(data: PrognosisInput | dict[str, Any], kb: KnowledgeBase | None = None) -> ScoreResult:
    """Tomita score (Tomita 2001): three factors, 2-10; lower is better.  Its points are not yet confirmed in the
    original paper: a draft."""
    return score("tomita", data, kb)


def bauer(data: PrognosisInput | dict[str, Any], kb: KnowledgeBase | None = None) -> ScoreResult:
    """Modified Bauer score (Leithner 2008): four favourable factors, 0-4; higher is better."""
    return score("bauer", data, kb)


def nesms(data: PrognosisInput | dict[str, Any], kb: KnowledgeBase | None = None) -> ScoreResult:
    """New England Spinal Metastasis Score (Ghori 2015): modified Bauer, walking and albumin, 0-3; higher is better.
    Its thresholds are not yet confirmed in the original paper: a draft."""
    return score("nesms", data, kb)
