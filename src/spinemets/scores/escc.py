"""Epidural spinal cord compression (ESCC) scale, Bilsky et al. 2010.

The grade comes from a stated grade or from five findings read on axial T2 at
the level of worst compression.  Each grade row of ``tables/escc_grades.yaml``
lists the value every finding has in that grade; the grades still possible are
the rows that agree with every finding given.  The findings form a chain (cord
compressed implies cord abutted implies thecal sac deformed implies epidural
disease, and no CSF visible around the cord implies a compressed cord), so
findings that no grade agrees with are an error naming the two fields that
clash, and a stated grade must agree with every finding given.  When more than
one grade remains the result is ``insufficient_data`` naming the first unknown
finding that would separate them; when the remaining grades share a severity
(all high grade, or all low grade) the result says so and what it implies.
"""

from __future__ import annotations

import functools
import re
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from spinemets.errors import ContradictoryInputError, InvalidInputError, KnowledgeBaseError
from spinemets.knowledge.loader import KnowledgeBase, load_kb
from spinemets.knowledge.models import TableRow
from spinemets.results import Citer, Component, Notice, Result, trusted
from spinemets.levels import level_range, parse_span
from spinemets.validation import parse

TABLE = "escc_grades"
LEVEL_NOTES = "escc_level_notes"
GRADES = ("0", "1a", "1b", "1c", "2", "3")
# The defining chain, in order: each finding is only reachable when the one before it is present.
CHAIN = ("epidural_disease", "thecal_sac_deformed", "cord_abutted", "cord_compressed")
FINDINGS = (*CHAIN, "csf_visible")
# Order in which pairs of findings are checked against each other: the CSF finding implies the whole chain,
# so it is named first; chain findings are named earlier one first.
PAIR_ORDER = ("csf_visible", *CHAIN)
LABELS = {
    "epidural_disease": "epidural disease",
    "thecal_sac_deformed": "thecal sac deformed",
    "cord_abutted": "spinal cord abutted",
    "cord_compressed": "spinal cord compressed",
    "csf_visible": "CSF visible around the cord",
}
_GRADE = re.compile(r"^\s*(?:grade\s*)?([0-3])\s*([abc])?\s*$", re.IGNORECASE)

Definitions = dict[str, dict[str, bool]]
"""grade -> the value each finding has in that grade."""


def parse_grade(value: Any) -> str:
    """Canonical ESCC grade from '2', 2, 'Grade 1B', ...; '1' alone is ambiguous and rejected."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError(f"{value!r} is not an ESCC grade; allowed values: {', '.join(GRADES)}")
    m = _GRADE.match(str(value))
    if not m:
        raise ValueError(f"{value!r} is not an ESCC grade; allowed values: {', '.join(GRADES)}")
    grade = m.group(1) + (m.group(2) or "").lower()
    if grade == "1":
        raise ValueError("'1' is not a complete ESCC grade; give 1a, 1b or 1c")
    if grade not in GRADES:
        raise ValueError(f"{value!r} is not an ESCC grade; allowed values: {', '.join(GRADES)}")
    return grade


def _optional_grade(v: Any) -> str | None:
    if v is None or (isinstance(v, str) and v.strip().lower() in ("", "unknown")):
        return None
    return parse_grade(v)


EsccGrade = Annotated[str | None, BeforeValidator(_optional_grade)]
"""An ESCC grade field: canonical grade, or None when not given or 'unknown'."""


class EsccInput(BaseModel):
    """A stated grade, the findings, or both (then they must agree).  Unknown findings stay None."""

    model_config = ConfigDict(extra="forbid")

    grade: EsccGrade = Field(default=None, description="0, 1a, 1b, 1c, 2 or 3")
    epidural_disease: bool | None = Field(default=None, description="any epidural tumour")
    thecal_sac_deformed: bool | None = None
    cord_abutted: bool | None = None
    cord_compressed: bool | None = None
    csf_visible: bool | None = Field(default=None, description="CSF visible around the cord at the worst level")
    level: str | None = Field(default=None, description="the level or range graded, e.g. 'T7' or 'L2-L3' (optional: "
                              "adds what the sources say about reading the grade there)")

    @field_validator("level", mode="before")
    @classmethod
    def _level(cls, v: Any) -> str | None:
        if v is None or (isinstance(v, str) and not v.strip()):
            return None
        try:
            return parse_span(v, "level") if isinstance(v, str) else parse_span("", "level")
        except InvalidInputError as exc:
            raise ValueError(exc.message) from None


class EsccResult(Result):
    instrument: str = "escc"
    grade: str | None = None
    possible_grades: list[str] = Field(default_factory=list)
    severity: str | None = Field(
        default=None, description="low or high grade; also set without a grade when every possible grade shares it"
    )
    high_grade: bool | None = None
    definition: str | None = None
    implication: str | None = None
    derived_from: str | None = Field(default=None, description="'grade' or 'findings'")
    level: str | None = Field(default=None, description="the level or range graded, when given")


def grade_row(grade: str, kb: KnowledgeBase | None = None) -> TableRow:
    kb = kb or load_kb()
    return next(r for r in kb.table(TABLE).rows if r["grade"] == grade)


@functools.lru_cache(maxsize=8)
def definitions(kb: KnowledgeBase) -> Definitions:
    """Each grade's finding pattern, from the ``findings`` column of the grade table."""
    return {g: {name: bool(grade_row(g, kb)["findings"][name]) for name in FINDINGS} for g in GRADES}


def agreeing_grades(defs: Definitions, known: dict[str, bool]) -> list[str]:
    """The grades whose definition agrees with every known finding, in scale order."""
    return [g for g in GRADES if all(defs[g][name] == value for name, value in known.items())]


def _either(items: list[str], word: str = "or") -> str:
    """'2 or 3', '0, 1a, 1b or 1c' (or joined with *word*)."""
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} {word} {items[-1]}"


def _present(value: bool) -> str:
    return "present" if value else "absent"


def _clash_text(a: str, a_value: bool, b: str, b_value: bool) -> str:
    """Why two findings cannot both hold, in clinical words."""
    if a == "csf_visible" and not a_value and not b_value:
        text = "no CSF visible around the cord requires a compressed cord"
        return text if b == "cord_compressed" else f"{text}, which implies {LABELS[b]}, but it was given as absent"
    if a in CHAIN and b in CHAIN and not a_value and b_value:
        return f"{LABELS[b]} is present but {LABELS[a]} is absent"
    return (  # pragma: no cover - with the Bilsky definitions every clash is one of the two above
        f"{LABELS[a]} {_present(a_value)} and {LABELS[b]} {_present(b_value)} fit no ESCC grade"
    )


def _consistent_grades(defs: Definitions, known: dict[str, bool]) -> list[str]:
    """The grades the known findings allow; findings that no grade agrees with are an error naming two of them."""
    allowed = agreeing_grades(defs, known)
    if allowed:
        return allowed
    for i, a in enumerate(PAIR_ORDER):
        for b in PAIR_ORDER[i + 1 :]:
            if a in known and b in known and not agreeing_grades(defs, {a: known[a], b: known[b]}):
                raise ContradictoryInputError([f"escc.{a}", f"escc.{b}"], _clash_text(a, known[a], b, known[b]))
    raise ContradictoryInputError(  # pragma: no cover - the grades are intervals of one scale: two findings clash
        [f"escc.{k}" for k in known], "these findings fit no ESCC grade"
    )


def _check_stated_grade(defs: Definitions, grade: str, known: dict[str, bool], allowed: list[str]) -> None:
    """A stated grade must agree with every finding given; the error names the grade and each finding it contradicts."""
    wrong = [name for name, value in known.items() if defs[grade][name] != value]
    if wrong:
        needs = _either([f"{LABELS[name]} is {_present(defs[grade][name])}" for name in wrong], "and")
        raise ContradictoryInputError(
            ["escc.grade", *(f"escc.{name}" for name in wrong)],
            f"grade {grade} does not fit the findings, which allow {_either(allowed)}; in grade {grade}, {needs}",
        )


def _shared(defs: Definitions, grades: list[str]) -> dict[str, bool | None]:
    """The value every grade in *grades* gives each finding, or None where they differ."""
    out: dict[str, bool | None] = {}
    for name in FINDINGS:
        values = {defs[g][name] for g in grades}
        out[name] = values.pop() if len(values) == 1 else None
    return out


def _grading(inp: EsccInput, kb: KnowledgeBase) -> tuple[Definitions, list[str]]:
    """The grade table's definitions and the grades the given findings allow, once the findings are checked against
    each other and against a stated grade (a clash is an error naming the fields)."""
    known = {name: value for name in FINDINGS if (value := getattr(inp, name)) is not None}
    defs = definitions(kb)
    allowed = _consistent_grades(defs, known)
    if inp.grade is not None:
        _check_stated_grade(defs, inp.grade, known, allowed)
    return defs, allowed


def grades(data: EsccInput | dict[str, Any], kb: KnowledgeBase | None = None) -> tuple[str | None, list[str]]:
    """The grade and the grades still possible, as :func:`escc` gives them (the same checks, the same errors),
    without building the explained result: for callers that need only the grade (report pre-fill)."""
    kb = kb or load_kb()
    inp = parse(EsccInput, data, "escc")
    if inp.grade is None and all(getattr(inp, name) is None for name in FINDINGS):
        return None, list(GRADES)
    defs, allowed = _grading(inp, kb)
    if inp.grade is not None:
        return inp.grade, [inp.grade]
    if len(allowed) == 1:
        return allowed[0], [allowed[0]]
    _separating_finding(defs, allowed)  # (the same error as escc() for a grade table that cannot separate them)
    return None, allowed


def escc(data: EsccInput | dict[str, Any], kb: KnowledgeBase | None = None) -> EsccResult:
    """Grade epidural spinal cord compression; see the module docstring."""
    kb = kb or load_kb()
    inp = parse(EsccInput, data, "escc")
    cite = Citer(kb)
    given = {name: getattr(inp, name) for name in FINDINGS}
    known = {name: value for name, value in given.items() if value is not None}
    at = {"level": inp.level, "level_notes": _level_notes(kb, cite, inp.level)}

    if inp.grade is None and not known:
        return trusted(
            EsccResult, None,
            notices=at["level_notes"],
            level=inp.level,
            status="insufficient_data",
            summary="insufficient data: give the ESCC grade or the findings ("
            + ", ".join(LABELS[name] for name in FINDINGS)
            + ")",
            missing=["escc.grade or escc.epidural_disease"],
            possible_grades=list(GRADES),
            **cite.common(),  # type: ignore[arg-type]
        )

    defs, allowed = _grading(inp, kb)
    if inp.grade is not None:
        return _complete(kb, cite, inp.grade, "grade", _components(defs, given, allowed, inp.grade), at)
    if len(allowed) == 1:
        return _complete(kb, cite, allowed[0], "findings", _components(defs, given, allowed, None), at)
    return _undecided(kb, cite, defs, given, allowed, at)


@functools.lru_cache(maxsize=4)
def _note_rows(kb: KnowledgeBase) -> tuple[tuple[frozenset[str], TableRow], ...]:
    return tuple((frozenset(v for spec in row["levels"] for v in level_range(spec)), row)
                 for row in kb.table(LEVEL_NOTES).rows)


def _level_notes(kb: KnowledgeBase, cite: Citer, level: str | None) -> list[Notice]:
    """What the sources say about reading the grade at *level* (each statement once, in the table's order)."""
    if level is None:
        return []
    vertebrae = set(level_range(level))
    shown: list[str] = []
    for levels, row in _note_rows(kb):
        if levels & vertebrae and row["statement"] not in shown:
            shown.append(row["statement"])
    return [cite.notice("level", kb.statement(sid).text, kb_items=[sid]) for sid in shown]


def _complete(kb: KnowledgeBase, cite: Citer, grade: str, derived: str, components: list[Component],
              at: dict[str, Any]) -> EsccResult:
    row = grade_row(grade, kb)
    item = f"{TABLE}.{row.id}"
    refs = cite.cite_row(TABLE, row)
    for c in components:
        if c.value is not None:
            c.refs = refs
            c.kb_items = [item]
    severity = row["severity"]
    notices = [cite.notice("implication", row["implication"], kb_items=[item]), *_severity_views(cite, [row]),
               *at["level_notes"]]
    return trusted(
        EsccResult, None,
        status="complete",
        summary=f"grade {grade} ({severity}-grade): {row['definition']}",
        components=components,
        notices=notices,
        grade=grade,
        possible_grades=[grade],
        severity=severity,
        high_grade=severity == "high",
        definition=row["definition"],
        implication=row["implication"],
        derived_from=derived,
        level=at["level"],
        **cite.common(),  # type: ignore[arg-type]
    )


def _separating_finding(defs: Definitions, allowed: list[str]) -> str:
    """The first finding whose value differs between the grades still possible (the one to ask for)."""
    shared = _shared(defs, allowed)
    first_missing = next((name for name in FINDINGS if shared[name] is None), None)
    if first_missing is None:  # two rows of the grade table with the same findings: the table is wrong
        raise KnowledgeBaseError([f"tables/{TABLE}: grades {_either(allowed, 'and')} have the same findings, so no "
                                  "finding can tell them apart"])
    return first_missing


def _undecided(
    kb: KnowledgeBase, cite: Citer, defs: Definitions, given: dict[str, bool | None], allowed: list[str],
    at: dict[str, Any],
) -> EsccResult:
    """More than one grade fits: name the finding that would separate them; say what holds for all of them."""
    first_missing = _separating_finding(defs, allowed)
    summary = f"insufficient data: {LABELS[first_missing]} unknown; grade could be {_either(allowed)}"
    rows = [grade_row(g, kb) for g in allowed]
    severities = {row["severity"] for row in rows}
    severity = severities.pop() if len(severities) == 1 else None
    implication = None
    notices: list[Notice] = []
    if severity is not None:
        implication = _implication_of(rows)
        summary += f"; {severity} grade either way: {implication}"
        items = [f"{TABLE}.{row.id}" for row in rows]
        notices = [cite.notice("implication", implication, kb_items=items), *_severity_views(cite, rows)]
    notices += at["level_notes"]
    return trusted(
        EsccResult, None,
        status="insufficient_data",
        summary=summary,
        components=_components(defs, given, allowed, None),
        notices=notices,
        missing=[f"escc.{first_missing}"],
        possible_grades=allowed,
        severity=severity,
        high_grade=None if severity is None else severity == "high",
        implication=implication,
        level=at["level"],
        **cite.common(),  # type: ignore[arg-type]
    )


def _implication_of(rows: list[TableRow]) -> str:
    """The rows' implication; when they differ, each one prefixed with the grades it belongs to."""
    groups: dict[str, list[str]] = {}
    for row in rows:
        groups.setdefault(row["implication"], []).append(str(row["grade"]))
    if len(groups) == 1:
        return next(iter(groups))
    return " ".join(
        f"{'Grades' if len(grades) > 1 else 'Grade'} {', '.join(grades)}: {text}" for text, grades in groups.items()
    )


def _severity_views(cite: Citer, rows: list[TableRow]) -> list[Notice]:
    """One notice per differing source view on a grade's severity (grade 1c)."""
    return [
        cite.notice(
            "sources_differ", f"Sources differ on grade {row['grade']}: {view['statement']}", sources=view["sources"]
        )
        for row in rows
        for view in row.get("severity_views") or []
    ]


def _components(
    defs: Definitions, given: dict[str, bool | None], allowed: list[str], grade: str | None
) -> list[Component]:
    """One component per finding: as given, implied by the other findings, implied by the stated grade, or unknown."""
    if all(value is None for value in given.values()):
        return []
    shared = _shared(defs, allowed)
    out: list[Component] = []
    for name in FINDINGS:
        value, note = given[name], None
        if value is None and shared[name] is not None:
            value, note = shared[name], "implied by the other findings"
        elif value is None and grade is not None:
            value, note = defs[grade][name], "implied by the stated grade"
        if value is None:
            out.append(trusted(Component, None, name=name, value=None, label=LABELS[name], note="unknown"))
        else:
            out.append(trusted(Component, None, name=name, value="yes" if value else "no", label=LABELS[name], note=note))
    return out
