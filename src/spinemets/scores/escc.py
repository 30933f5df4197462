"""Epidural spinal cord compression (ESCC) scale, Bilsky et al. 2010.

The grade comes from a stated grade or from five findings read on axial T2 at
the level of worst compression.  The findings form a chain (cord compressed
implies cord abutted implies thecal sac deformed implies epidural disease);
a finding that contradicts the chain is an error naming the fields.  Where the
chain stops at an unknown finding the result is ``insufficient_data`` naming
it, with the grades still possible.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from spinemets.errors import ContradictoryInputError, InvalidInputError
from spinemets.knowledge.loader import KnowledgeBase, load_kb
from spinemets.knowledge.models import TableRow
from spinemets.results import Citer, Component, Result
from spinemets.validation import parse

TABLE = "escc_grades"
GRADES = ("0", "1a", "1b", "1c", "2", "3")
# The defining chain, in order: each finding is only reachable when the one before it is present.
CHAIN = ("epidural_disease", "thecal_sac_deformed", "cord_abutted", "cord_compressed")
FINDINGS = (*CHAIN, "csf_visible")
LABELS = {
    "epidural_disease": "epidural disease",
    "thecal_sac_deformed": "thecal sac deformed",
    "cord_abutted": "spinal cord abutted",
    "cord_compressed": "spinal cord compressed",
    "csf_visible": "CSF visible around the cord",
}
_GRADE = re.compile(r"^\s*(?:grade\s*)?([0-3])\s*([abc])?\s*$", re.IGNORECASE)


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

class EsccResult(Result):
    instrument: str = "escc"
    grade: str | None = None
    possible_grades: list[str] = Field(default_factory=list)
    severity: str | None = Field(default=None, description="low or high grade")
    high_grade: bool | None = None
    definition: str | None = None
    implication: str | None = None
    derived_from: str | None = Field(default=None, description="'grade' or 'findings'")


def _check_chain(f: dict[str, bool | None]) -> dict[str, bool | None]:
    """Reject contradictions; fill what the chain implies (a present finding implies those before it)."""
    f = dict(f)
    for i, later in enumerate(CHAIN):
        if f[later]:
            for earlier in CHAIN[:i]:
                if f[earlier] is False:
                    raise ContradictoryInputError(
                        [f"escc.{earlier}", f"escc.{later}"],
                        f"{LABELS[later]} is present but {LABELS[earlier]} is absent",
                    )
    if f["csf_visible"] is False and f["cord_compressed"] is False:
        raise ContradictoryInputError(
            ["escc.csf_visible", "escc.cord_compressed"],
            "no CSF visible around the cord requires a compressed cord",
        )
    if f["csf_visible"] is False and f["epidural_disease"] is False:
        raise ContradictoryInputError(
            ["escc.csf_visible", "escc.epidural_disease"],
            "CSF effaced around the cord is not bone-only disease",
        )
    # A present finding implies each finding before it in the chain.
    for i, name in enumerate(CHAIN):
        if f[name]:
            for earlier in CHAIN[:i]:
                f[earlier] = True
    if f["csf_visible"] is False:
        for name in CHAIN:
            f[name] = True
    return f


def _grade_from_findings(f: dict[str, bool | None]) -> tuple[str | None, list[str], str | None]:
    """(grade, possible grades, first missing finding)."""
    if f["epidural_disease"] is None:
        return None, list(GRADES), "epidural_disease"
    if f["epidural_disease"] is False:
        return "0", ["0"], None
    if f["thecal_sac_deformed"] is None:
        return None, ["1a", "1b", "1c", "2", "3"], "thecal_sac_deformed"
    if not f["thecal_sac_deformed"]:
        return "1a", ["1a"], None
    if f["cord_abutted"] is None:
        return None, ["1b", "1c", "2", "3"], "cord_abutted"
    if not f["cord_abutted"]:
        return "1b", ["1b"], None
    if f["cord_compressed"] is None:
        return None, ["1c", "2", "3"], "cord_compressed"
    if not f["cord_compressed"]:
        return "1c", ["1c"], None
    if f["csf_visible"] is None:
        return None, ["2", "3"], "csf_visible"
    return ("2" if f["csf_visible"] else "3"), ["2" if f["csf_visible"] else "3"], None


def grade_row(grade: str, kb: KnowledgeBase | None = None) -> TableRow:
    kb = kb or load_kb()
    return next(r for r in kb.table(TABLE).rows if r["grade"] == grade)


def escc(data: EsccInput | dict[str, Any], kb: KnowledgeBase | None = None) -> EsccResult:
    """Grade epidural spinal cord compression; see the module docstring."""
    kb = kb or load_kb()
    inp = parse(EsccInput, data, "escc")
    cite = Citer(kb)
    given = {name: getattr(inp, name) for name in FINDINGS}
    any_finding = any(v is not None for v in given.values())

    if inp.grade is None and not any_finding:
        return EsccResult(
            status="insufficient_data",
            summary="insufficient data: give escc.grade or the findings (escc.epidural_disease, ...)",
            missing=["escc.grade or escc.epidural_disease"],
            possible_grades=list(GRADES),
            **cite.common(),  # type: ignore[arg-type]
        )

    findings = _check_chain(given)
    from_findings, possible, first_missing = _grade_from_findings(findings)

    if inp.grade is not None:
        if any_finding and inp.grade not in possible:
            named = [f"escc.{k}" for k, v in given.items() if v is not None]
            raise ContradictoryInputError(
                ["escc.grade", *named],
                f"grade {inp.grade} does not fit the findings, which allow {', '.join(possible)}",
            )
        grade, derived = inp.grade, "grade"
    elif from_findings is not None:
        grade, derived = from_findings, "findings"
    else:
        components = [_finding_component(name, findings[name], given[name]) for name in FINDINGS]
        return EsccResult(
            status="insufficient_data",
            summary=f"insufficient data: {LABELS[first_missing or '']} unknown; grade could be {', '.join(possible)}",
            components=components,
            missing=[f"escc.{first_missing}"],
            possible_grades=possible,
            **cite.common(),  # type: ignore[arg-type]
        )

    row = grade_row(grade, kb)
    refs = cite.cite_row(TABLE, row)
    components = [_finding_component(name, findings[name], given[name]) for name in FINDINGS] if any_finding else []
    for c in components:
        if c.value is not None:
            c.refs = refs
            c.kb_items = [f"{TABLE}.{row.id}"]
    severity = row["severity"]
    notices = [cite.notice("implication", row["implication"], kb_items=[f"{TABLE}.{row.id}"])]
    for view in row.get("severity_views") or []:
        notices.append(
            cite.notice("sources_differ", f"Sources differ on grade {grade}: {view['statement']}", sources=view["sources"])
        )
    return EsccResult(
        status="complete",
        summary=f"grade {grade} ({'high' if severity == 'high' else 'low'}-grade): {row['definition']}",
        components=components,
        notices=notices,
        grade=grade,
        possible_grades=[grade],
        severity=severity,
        high_grade=severity == "high",
        definition=row["definition"],
        implication=row["implication"],
        derived_from=derived,
        **cite.common(),  # type: ignore[arg-type]
    )


def _finding_component(name: str, value: bool | None, given: bool | None) -> Component:
    if value is None:
        return Component(name=name, value=None, label=LABELS[name], note="unknown")
    note = None if given is not None else "implied by the findings after it in the chain"
    return Component(name=name, value="yes" if value else "no", label=LABELS[name], note=note)
