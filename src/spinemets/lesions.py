"""Several lesions in one case: each lesion's SINS and ESCC (and NOMS), the index lesions, the involved vertebrae.

A lesion is a vertebra ("T7") or an inclusive range ("T7-T9") with its own SINS components and ESCC findings.

* SINS scores the most affected level's location: a lesion of one vertebra gives it; for a range, a SINS level
  inside the range gives it, and a range whose vertebrae all lie in one SINS location category gives the category
  (certain without a single level); otherwise the location is missing, named in the result.
* A vertebra in two lesions, or a SINS level outside its lesion, is contradictory input.
* The index lesions are named by two stated rules, never merged into one: the highest SINS total (instability) and
  the highest ESCC grade (compression).  With incomplete scores, every lesion that could still be the highest is
  listed and the result says which inputs would decide it; ties are listed together.
* Every lesion gets a SINS and an ESCC result: one given only its levels is insufficient data, with every total and
  grade still possible, and so it can still be the highest.
* The involved vertebrae are counted once each, the occiput not (it takes a SINS location but is no vertebra).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from spinemets.errors import ContradictoryInputError, InvalidInputError
from spinemets.knowledge.loader import KnowledgeBase, load_kb
from spinemets.levels import INDEX, level_range, parse_span
from spinemets.results import Notice, Result, trusted
from spinemets.scores.escc import GRADES, EsccInput, EsccResult, escc
from spinemets.scores.noms import NomsInput, NomsResult, noms
from spinemets.scores.sins import SinsInput, SinsResult, location_of, sins

MAX_LESIONS = 30
OCCIPUT = "C0"  # the occiput takes a SINS location but is no vertebra: not counted as a vertebra with metastases


class LesionInput(BaseModel):
    """One lesion: where it is, and what is known of its stability and of the compression it causes."""

    model_config = ConfigDict(extra="forbid")

    levels: str = Field(description="the vertebra ('T7') or an inclusive range ('T7-T9') the lesion involves")
    sins: SinsInput | None = Field(default=None, description="SINS components of this lesion (its level, if given, "
                                   "is the most affected vertebra and lies in the lesion)")
    escc: EsccInput | None = Field(default=None, description="ESCC grade or findings at this lesion")

    @field_validator("levels", mode="before")
    @classmethod
    def _levels(cls, v: Any) -> str:
        try:
            return parse_span(v) if isinstance(v, str) else parse_span("")
        except InvalidInputError as exc:
            raise ValueError(exc.message) from None

    @property
    def vertebrae(self) -> list[str]:
        return level_range(self.levels)


class LesionResult(BaseModel):
    levels: str
    vertebrae: list[str]
    sins: SinsResult | None = None
    escc: EsccResult | None = None
    noms: NomsResult | None = None


class IndexLesion(BaseModel):
    by: str = Field(description="'sins' (highest SINS total) or 'escc' (highest ESCC grade)")
    rule: str
    lesions: list[str] = Field(description="the levels of the lesion or lesions that are, or may be, the highest")
    certain: bool
    summary: str


class LesionsResult(Result):
    instrument: str = "lesions"
    lesions: list[LesionResult] = Field(default_factory=list)
    involved_vertebrae: list[str] = Field(default_factory=list)
    index: list[IndexLesion] = Field(default_factory=list)

    def to_text(self) -> str:
        lines = [f"LESIONS: {self.summary}"]
        for ix in self.index:
            lines.append(f"  {ix.summary}")
        for lesion in self.lesions:
            for part in (lesion.sins, lesion.escc, lesion.noms):
                if part is not None:
                    text = part.to_text().split("\n")
                    lines += ["", f"[{lesion.levels}] " + text[0], *text[1:-2]]
        lines += ["", f"Knowledge base {self.kb_version}. {self.disclaimer}"]
        return "\n".join(lines)


def _sins_input(i: int, lesion: LesionInput, kb: KnowledgeBase) -> tuple[SinsInput, str | None]:
    """The lesion's SINS input with its level or location, and a note when the location is certain for a range."""
    given = lesion.sins or SinsInput()
    vertebrae = lesion.vertebrae
    where = [f"case.lesions[{i}].levels"]
    if given.level is not None:
        if given.level not in vertebrae:
            raise ContradictoryInputError(
                [*where, f"case.lesions[{i}].sins.level"],
                f"the SINS level {given.level} is outside the lesion {lesion.levels}",
            )
        return given, None
    if len(vertebrae) == 1:
        return given.model_copy(update={"level": vertebrae[0]}), None
    categories = {location_of(v, kb)[0] for v in vertebrae}
    words = " or ".join(sorted(c.value.replace("_", "-") for c in categories))
    if given.location is not None:
        if given.location not in categories:
            raise ContradictoryInputError(
                [*where, f"case.lesions[{i}].sins.location"],
                f"the lesion {lesion.levels} lies in the {words} spine, but its SINS location was given as "
                f"{given.location.value.replace('_', '-')}",
            )
        return given, None
    if len(categories) == 1:
        category = categories.pop()
        note = (f"Every vertebra of {lesion.levels} lies in the {category.value.replace('_', '-')} spine: the SINS "
                "location is certain without a single most affected level.")
        return given.model_copy(update={"location": category}), note
    return given, None


def _escc_input(i: int, lesion: LesionInput) -> EsccInput:
    """The lesion's ESCC input, read at the lesion's levels (a level given there must lie in the lesion)."""
    given = lesion.escc or EsccInput()
    if given.level is None:
        return given.model_copy(update={"level": lesion.levels})
    if not set(level_range(given.level)) <= set(lesion.vertebrae):
        raise ContradictoryInputError(
            [f"case.lesions[{i}].levels", f"case.lesions[{i}].escc.level"],
            f"the ESCC level {given.level} is outside the lesion {lesion.levels}",
        )
    return given


def _in_lesion(i: int, run: Any) -> Any:
    """Run *run*, naming the lesion in the fields of any error (case.lesions[i].sins.pain, not sins.pain)."""
    try:
        return run()
    except ContradictoryInputError as exc:
        raise ContradictoryInputError([_field(i, f) for f in exc.fields], exc.message) from None
    except InvalidInputError as exc:
        raise InvalidInputError(_field(i, exc.field), exc.message) from None


def _field(i: int, name: str) -> str:
    return name if name.startswith("case.") else f"case.lesions[{i}].{name}"


def _grade_rank(result: EsccResult) -> tuple[int, int]:
    """The lowest and highest rank (in the order of the grades) the lesion's ESCC grade may have."""
    grades = [result.grade] if result.grade is not None else list(result.possible_grades or GRADES)
    ranks = [GRADES.index(g) for g in grades]
    return min(ranks), max(ranks)


def _index(by: str, rule: str, ranges: list[tuple[str, int, int, bool]], shown: Any) -> IndexLesion | None:
    """The lesions that are, or may be, highest, from each lesion's (levels, lowest, highest, complete): a single
    candidate is the highest whatever its missing inputs; several are a tie only when all are complete and equal."""
    if not ranges:
        return None
    floor = max(lo for _, lo, _, _ in ranges)
    candidates = [r for r in ranges if r[2] >= floor]
    names = [r[0] for r in candidates]
    if len(candidates) == 1:
        _, lo, hi, complete = candidates[0]
        value = shown(lo) if lo == hi else f"{shown(lo)} to {hi if by == 'sins' else GRADES[hi]}"
        tail = "" if complete else ", whatever its missing inputs"
        return IndexLesion(by=by, rule=rule, lesions=names, certain=True, summary=f"{rule}: {names[0]} ({value}{tail})")
    if all(r[3] for r in candidates) and len({r[1] for r in candidates}) == 1:
        return IndexLesion(by=by, rule=rule, lesions=names, certain=True,
                           summary=f"{rule}: {', '.join(names)}, tied ({shown(candidates[0][1])})")
    summary = (f"{rule}: not yet decided, {' or '.join(names)} could be the highest; completing their "
               f"{'SINS' if by == 'sins' else 'ESCC'} decides it")
    return IndexLesion(by=by, rule=rule, lesions=names, certain=False, summary=summary)


def lesions(items: list[LesionInput], kb: KnowledgeBase | None = None, *, histology: str | None = None,
            myelopathy: bool | None = None, fit_for_surgery: bool | None = None) -> LesionsResult:
    """Assess each lesion of a case with several; see the module docstring.  The patient facts, when any is given,
    frame NOMS for each lesion."""
    kb = kb or load_kb()
    if not items:
        raise InvalidInputError("case.lesions", "give at least one lesion, or leave the list out")
    if len(items) > MAX_LESIONS:
        raise InvalidInputError("case.lesions", f"at most {MAX_LESIONS} lesions, one per vertebra or range")
    owner: dict[str, str] = {}
    for lesion in items:
        for v in lesion.vertebrae:
            if v in owner:
                raise ContradictoryInputError(
                    ["case.lesions"], f"{v} is in two lesions ({owner[v]} and {lesion.levels}); give each vertebra once")
            owner[v] = lesion.levels
    framed = any(x is not None for x in (histology, myelopathy, fit_for_surgery))
    out: list[LesionResult] = []
    for i, lesion in enumerate(items):
        sins_in, note = _sins_input(i, lesion, kb)
        escc_in = _escc_input(i, lesion)
        s = _in_lesion(i, lambda: sins(sins_in, kb))
        if note is not None:
            s = s.model_copy(update={"notices": [*s.notices, trusted(Notice, None, code="location", message=note)]})
        e = _in_lesion(i, lambda: escc(escc_in, kb))
        n = None
        if framed:
            n = _in_lesion(i, lambda: noms(NomsInput(escc=escc_in, sins=sins_in, histology=histology,
                                                     myelopathy=myelopathy, fit_for_surgery=fit_for_surgery),
                                           kb, sins_result=s, escc_result=e))
        out.append(trusted(LesionResult, None, levels=lesion.levels, vertebrae=lesion.vertebrae, sins=s, escc=e,
                           noms=n))
    involved = [v for v in sorted(owner, key=INDEX.__getitem__) if v != OCCIPUT]
    index = [ix for ix in (
        _index("sins", "Highest SINS total",
               [(r.levels, r.sins.possible_min, r.sins.possible_max, r.sins.status == "complete")
                for r in out if r.sins is not None], lambda t: f"SINS {t}"),
        _index("escc", "Highest ESCC grade",
               [(r.levels, *_grade_rank(r.escc), r.escc.grade is not None) for r in out if r.escc is not None],
               lambda rank: f"grade {GRADES[rank]}"),
    ) if ix is not None]
    parts = [p for lesion in out for p in (lesion.sins, lesion.escc, lesion.noms) if p is not None]
    complete = all(p.status == "complete" for p in parts) and all(ix.certain for ix in index)
    summary = (f"{len(out)} lesion{'s' if len(out) != 1 else ''}, {len(involved)} vertebra"
               f"{'e' if len(involved) != 1 else ''} involved ({', '.join(r.levels for r in out)})")
    return trusted(
        LesionsResult, None,
        status="complete" if complete else "insufficient_data",
        summary=summary,
        lesions=out,
        involved_vertebrae=involved,
        index=index,
        kb_version=kb.version,
        disclaimer=kb.manifest.disclaimer,
    )
