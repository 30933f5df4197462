"""NOMS framework (Laufer et al. 2013): neurologic, oncologic, mechanical, systemic.

* N: the ESCC grade (stated, or graded from findings) and myelopathy;
* O: the radiation response of the histology, looked up in
  ``tables/radiosensitivity.yaml`` (an unknown histology is insufficient data);
* M: the SINS category (from a total or from SINS components);
* S: whether the patient can tolerate surgery.

The combination rules are rows of ``tables/noms_framing.yaml``.  The result
is a treatment framing for a multidisciplinary discussion, not an order.
"""

from __future__ import annotations

import functools
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from spinemets.errors import InvalidInputError
from spinemets.knowledge.loader import KnowledgeBase, load_kb
from spinemets.knowledge.models import TableRow
from spinemets.results import Citer, Component, Result
from spinemets.scores.escc import EsccGrade, EsccInput, EsccResult, escc
from spinemets.scores.sins import SinsInput, SinsResult, sins
from spinemets.validation import parse

FRAMING = "noms_framing"
RADIOSENSITIVITY = "radiosensitivity"


class NomsInput(BaseModel):
    """The four NOMS assessments.  Give ESCC and SINS as values or as their own inputs."""

    model_config = ConfigDict(extra="forbid")

    escc_grade: EsccGrade = Field(default=None, description="ESCC grade 0, 1a, 1b, 1c, 2 or 3")
    escc: EsccInput | None = Field(default=None, description="ESCC findings, if no grade is given")
    myelopathy: bool | None = Field(default=None, description="clinical myelopathy or radiculopathy from compression")
    histology: str | None = Field(default=None, description="primary tumour histology, e.g. 'renal cell carcinoma'")
    sins_total: int | None = Field(default=None, ge=0, le=18, description="SINS total 0-18")
    sins: SinsInput | None = Field(default=None, description="SINS components, if no total is given")
    fit_for_surgery: bool | None = Field(default=None, description="can the patient tolerate surgery")


class NomsResult(Result):
    instrument: str = "noms"
    neurologic: str | None = None
    escc_grade: str | None = None
    oncologic: str | None = None
    histology_response: str | None = None
    mechanical: str | None = None
    sins_total: int | None = None
    systemic: str | None = None
    treatment: list[str] = Field(default_factory=list, description="treatment codes of the framing")
    framing: list[str] = Field(default_factory=list, description="the framing in words, in order")

    def extra_lines(self) -> list[str]:
        return [f"  - {line}" for line in self.framing]


def _key(text: str) -> str:
    return " ".join(text.lower().replace("-", " ").replace("_", " ").split())


@functools.cache
def _histologies() -> dict[str, str]:
    """spelling -> row id of the radiosensitivity table."""
    out: dict[str, str] = {}
    for row in load_kb().table(RADIOSENSITIVITY).rows:
        out[_key(row["histology"])] = row.id
        for alias in row.get("aliases") or []:
            out[_key(alias)] = row.id
    return out


def histology_row(histology: str, kb: KnowledgeBase | None = None) -> TableRow | None:
    """The radiosensitivity row for a histology, or None if the table does not know it."""
    kb = kb or load_kb()
    row_id = _histologies().get(_key(histology))
    return kb.table(RADIOSENSITIVITY).row(row_id) if row_id else None


def known_histologies(kb: KnowledgeBase | None = None) -> list[str]:
    kb = kb or load_kb()
    return sorted(str(r["histology"]) for r in kb.table(RADIOSENSITIVITY).rows)


def _framing_row(kb: KnowledgeBase, **criteria: Any) -> TableRow:
    rows = kb.table(FRAMING).where(**criteria)
    if len(rows) != 1:  # pragma: no cover - guarded by the knowledge-base tests
        raise LookupError(f"noms_framing has {len(rows)} rows for {criteria}")
    return rows[0]


def noms(
    data: NomsInput | dict[str, Any],
    kb: KnowledgeBase | None = None,
    *,
    sins_result: SinsResult | None = None,
    escc_result: EsccResult | None = None,
) -> NomsResult:
    """Frame treatment with NOMS; see the module docstring.

    ``sins_result`` / ``escc_result`` let a caller that already scored the same
    inputs (``assess``) pass the results instead of scoring them again.
    """
    kb = kb or load_kb()
    inp = parse(NomsInput, data, "noms")
    cite = Citer(kb)
    components: list[Component] = []
    missing: list[str] = []
    notices = []

    # N: neurologic
    severity = grade = None
    if inp.escc_grade is not None or inp.escc is not None:
        e_in = dict(inp.escc.model_dump(exclude_none=True)) if inp.escc else {}
        if inp.escc_grade is not None:
            e_in["grade"] = inp.escc_grade
        e = escc_result if escc_result is not None and inp.escc_grade is None else escc(e_in, kb)
        if e.status == "complete":
            grade, severity = e.grade, ("high" if e.high_grade else "low")
            row = next(r for r in kb.table("escc_grades").rows if r["grade"] == grade)
            components.append(cite.component("neurologic", "escc_grades", row, value=f"ESCC {grade}", label=f"{severity}-grade epidural compression"))
        else:
            missing.extend(m.replace("escc.", "noms.escc.") for m in e.missing)
            components.append(Component(name="neurologic", value=None, note=e.summary))
    else:
        missing.append("noms.escc_grade")
        components.append(Component(name="neurologic", value=None, note="ESCC grade not given"))
    if inp.myelopathy:
        components.append(Component(name="myelopathy", value="yes", note="clinical myelopathy or radiculopathy reported (part of the neurologic assessment)"))
    elif inp.myelopathy is False:
        components.append(Component(name="myelopathy", value="no"))

    # O: oncologic
    oncologic = response = None
    if inp.histology is None:
        missing.append("noms.histology")
        components.append(Component(name="oncologic", value=None, note="histology not given"))
    else:
        hrow = histology_row(inp.histology, kb)
        if hrow is None:
            missing.append("noms.histology")
            components.append(
                Component(
                    name="oncologic",
                    value=inp.histology,
                    note="histology not in the radiosensitivity table: radiation response unknown; known: "
                    + ", ".join(known_histologies(kb)),
                )
            )
        else:
            response = hrow["response"]
            crow = _framing_row(kb, axis="oncologic_class", response=response)
            oncologic = crow["oncologic"]
            refs = cite.cite_row(RADIOSENSITIVITY, hrow) + cite.cite_row(FRAMING, crow)
            components.append(
                Component(
                    name="oncologic",
                    value=inp.histology,
                    label=response.replace("_", " "),
                    note=crow["framing"],
                    kb_items=[f"{RADIOSENSITIVITY}.{hrow.id}", f"{FRAMING}.{crow.id}"],
                    sources=list(dict.fromkeys([*hrow.sources, *crow.sources])),
                    refs=sorted(set(refs)),
                )
            )

    # M: mechanical
    mechanical = None
    total = inp.sins_total
    if total is None and inp.sins is not None:
        s = sins_result if sins_result is not None else sins(inp.sins, kb)
        if s.status == "complete":
            total = s.total
        elif s.category is not None:
            mechanical = s.category  # every possible total falls in one category
        else:
            missing.extend(m.replace("sins.", "noms.sins.") for m in s.missing)
    if total is not None:
        mechanical = next(r["category"] for r in kb.table("sins_categories").rows if r["min"] <= total <= r["max"])
    if mechanical is None:
        if inp.sins is None and inp.sins_total is None:
            missing.append("noms.sins_total")
        components.append(Component(name="mechanical", value=None, note="SINS not known"))
    else:
        mrow = _framing_row(kb, axis="mechanical", mechanical=mechanical)
        components.append(
            cite.component(
                "mechanical", FRAMING, mrow,
                value=f"SINS {total}" if total is not None else "SINS range",
                label=mechanical.replace("_", " "), note=mrow["framing"],
            )
        )

    # Combine N and O.
    treatment: list[str] = []
    framing: list[str] = []
    needs_surgery = False
    if severity and oncologic:
        nrow = _framing_row(kb, axis="neurologic_oncologic", escc=severity, oncologic=oncologic)
        cite.cite_row(FRAMING, nrow)
        treatment.append(nrow["treatment"])
        framing.append(nrow["framing"])
        needs_surgery = needs_surgery or bool(nrow["needs_surgery"])
    if mechanical in ("unstable", "potentially_unstable"):
        mrow = _framing_row(kb, axis="mechanical", mechanical=mechanical)
        treatment.insert(0, mrow["treatment"])
        framing.insert(0, mrow["framing"])
        needs_surgery = needs_surgery or bool(mrow["needs_surgery"])

    # S: systemic
    systemic = None
    if inp.fit_for_surgery is False:
        systemic = "unfit for surgery"
        srow = _framing_row(kb, axis="systemic", fit_for_surgery=False)
        components.append(cite.component("systemic", FRAMING, srow, value="unfit for surgery", note=srow["framing"]))
        if needs_surgery:
            treatment = [t for t in treatment if t not in ("separation_surgery_then_srs",)]
            treatment.append(srow["treatment"])
            framing.append(srow["framing"])
    elif inp.fit_for_surgery is True:
        systemic = "fit for surgery"
        components.append(Component(name="systemic", value="fit for surgery"))
    else:
        components.append(Component(name="systemic", value=None, note="fitness for surgery not given"))
        if needs_surgery:
            missing.append("noms.fit_for_surgery")

    status = "insufficient_data" if missing else "complete"
    if missing:
        summary = "insufficient data for a full NOMS framing: missing " + ", ".join(missing)
        if framing:
            summary += "; what holds already: " + " ".join(framing)
    else:
        summary = " ".join(framing) if framing else "no framing"
    return NomsResult(
        status=status,
        summary=summary,
        components=components,
        missing=missing,
        notices=notices,
        neurologic=f"{severity}-grade ESCC" if severity else None,
        escc_grade=grade,
        oncologic=oncologic,
        histology_response=response,
        mechanical=mechanical,
        sins_total=total,
        systemic=systemic,
        treatment=treatment,
        framing=framing,
        **cite.common(),  # type: ignore[arg-type]
    )


__all__ = ["NomsInput", "NomsResult", "noms", "histology_row", "known_histologies", "InvalidInputError"]
