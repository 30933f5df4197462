"""NOMS framework (Laufer et al. 2013): neurologic, oncologic, mechanical, systemic.

* N: the ESCC grade (stated, or graded from findings) and myelopathy.  When the
  findings leave several grades open but all of them share a severity (per
  ``tables/escc_grades.yaml``), that severity is used ("high grade either way").
* O: the radiation response of the histology, looked up in
  ``tables/radiosensitivity.yaml``.  An unknown or unclassified histology is
  insufficient data, never a guessed class; when the sources classify a
  histology differently, each view is shown with its source.
* M: the SINS category (from a total or from SINS components).
* S: whether the patient can tolerate surgery.  For a patient who cannot, the
  framing leads with the non-surgical options and says surgery is not offered.

A solid tumour (one the Patchell 2005 trial did not exclude as radiosensitive)
with high-grade compression and myelopathy always carries the Patchell trial
beside the NOMS framing; when such a tumour is classed as radiosensitive the
two positions are shown side by side, and a missing myelopathy status is named
as input that could change the advice.

The combination rules and their wording are rows of ``tables/noms_framing.yaml``.
The result is a treatment framing for a multidisciplinary discussion, not an order.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from spinemets.errors import InvalidInputError
from spinemets.knowledge.loader import KnowledgeBase, load_kb
from spinemets.knowledge.models import TableRow
from spinemets.results import Citer, Component, Notice, Result, trusted
from spinemets.scores.escc import LABELS as ESCC_LABELS
from spinemets.scores.escc import EsccGrade, EsccInput, EsccResult, escc
from spinemets.scores.sins import SinsInput, SinsResult, sins
from spinemets.validation import parse

FRAMING = "noms_framing"
RADIOSENSITIVITY = "radiosensitivity"
ESCC_GRADES = "escc_grades"
PATCHELL_STATEMENT = "noms.patchell.solid_tumours"
UNSTABLE = ("unstable", "potentially_unstable")
# How a missing input is named to a clinician (the machine-readable `missing` keeps the field paths).
INPUT_LABELS = {
    "escc_grade": "ESCC grade (or its findings)",
    "histology": "histology with a known radiation response",
    "sins_total": "SINS (total or components)",
    "fit_for_surgery": "fitness for surgery",
    "myelopathy": "whether there is myelopathy",
}


class NomsInput(BaseModel):
    """The four NOMS assessments.  Give ESCC and SINS as values or as their own inputs."""

    model_config = ConfigDict(extra="forbid")

    escc_grade: EsccGrade = Field(default=None, description="ESCC grade 0, 1a, 1b, 1c, 2 or 3")
    escc: EsccInput | None = Field(default=None, description="ESCC findings, if no grade is given")
    myelopathy: bool | None = Field(
        default=None,
        description="clinical myelopathy or radiculopathy from compression (neurological deficit); empty = not stated",
    )
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
    solid_tumour: bool | None = Field(
        default=None, description="a histology the Patchell 2005 trial enrolled (not excluded as radiosensitive)"
    )
    mechanical: str | None = None
    sins_total: int | None = None
    systemic: str | None = None
    treatment: list[str] = Field(default_factory=list, description="treatment codes of the framing")
    framing: list[str] = Field(default_factory=list, description="the framing in words, in order")

    def extra_lines(self) -> list[str]:
        return [f"  - {line}" for line in self.framing]


def _key(text: str) -> str:
    return " ".join(text.lower().replace("-", " ").replace("_", " ").split())


_HISTOLOGIES: dict[int, tuple[KnowledgeBase, dict[str, str]]] = {}


def _histologies(kb: KnowledgeBase) -> dict[str, str]:
    """spelling -> row id of the radiosensitivity table of *kb* (built once per knowledge base)."""
    cached = _HISTOLOGIES.get(id(kb))
    if cached is not None and cached[0] is kb:
        return cached[1]
    out: dict[str, str] = {}
    for row in kb.table(RADIOSENSITIVITY).rows:
        out[_key(row["histology"])] = row.id
        for alias in row.get("aliases") or []:
            out[_key(alias)] = row.id
    _HISTOLOGIES[id(kb)] = (kb, out)
    return out


def histology_row(histology: str, kb: KnowledgeBase | None = None) -> TableRow | None:
    """The radiosensitivity row for a histology, or None if the table does not know it."""
    kb = kb or load_kb()
    row_id = _histologies(kb).get(_key(histology))
    return kb.table(RADIOSENSITIVITY).row(row_id) if row_id else None


def known_histologies(kb: KnowledgeBase | None = None) -> list[str]:
    kb = kb or load_kb()
    return sorted(str(r["histology"]) for r in kb.table(RADIOSENSITIVITY).rows)


def views_differ(row: TableRow) -> bool:
    """Whether the sources of a radiosensitivity row classify the histology differently."""
    return len({v["response"] for v in row.get("views") or []}) > 1


def _framing_row(kb: KnowledgeBase, **criteria: Any) -> TableRow:
    rows = kb.table(FRAMING).where(**criteria)
    if len(rows) != 1:  # pragma: no cover - guarded by the knowledge-base tests
        raise LookupError(f"noms_framing has {len(rows)} rows for {criteria}")
    return rows[0]


def _severity(kb: KnowledgeBase, grade: str) -> str:
    """'high' or 'low' for an ESCC grade, from the severity column of tables/escc_grades."""
    row = next(r for r in kb.table(ESCC_GRADES).rows if r["grade"] == grade)
    return "high" if row["severity"] == "high" else "low"


def input_label(path: str) -> str:
    """A missing field path (``noms.escc.csf_visible``) in clinical words."""
    if " or " in path:  # 'escc.grade or escc.epidural_disease': either names the same gap
        return input_label(path.split(" or ")[0])
    parts = path.removeprefix("noms.").split(".")
    if len(parts) == 2 and parts[0] == "escc":
        if parts[1] in ESCC_LABELS:
            return "ESCC finding: " + ESCC_LABELS[parts[1]]
        return INPUT_LABELS.get(f"escc_{parts[1]}", "ESCC " + parts[1].replace("_", " "))
    if len(parts) == 2 and parts[0] == "sins":
        return "SINS " + parts[1].replace("_", " ")
    return INPUT_LABELS.get(parts[-1], parts[-1].replace("_", " "))


# --- N: neurologic -------------------------------------------------------------------------------------------


def _neurologic(
    inp: NomsInput, kb: KnowledgeBase, cite: Citer, escc_result: EsccResult | None
) -> tuple[str | None, str | None, Component, list[str]]:
    """(severity, grade, component, missing).  A severity every still-possible grade shares is used."""
    if inp.escc_grade is None and inp.escc is None:
        return None, None, trusted(Component, None, name="neurologic", value=None, note="ESCC grade not given"), ["noms.escc_grade"]
    e_in = dict(inp.escc.model_dump(exclude_none=True)) if inp.escc else {}
    if inp.escc_grade is not None:
        e_in["grade"] = inp.escc_grade
    e = escc_result if escc_result is not None and inp.escc_grade is None else escc(e_in, kb)
    if e.status == "complete" and e.grade is not None:
        severity = _severity(kb, e.grade)
        row = next(r for r in kb.table(ESCC_GRADES).rows if r["grade"] == e.grade)
        comp = cite.component(
            "neurologic", ESCC_GRADES, row, value=f"ESCC {e.grade}", label=f"{severity}-grade epidural compression"
        )
        return severity, e.grade, comp, []
    possible = list(e.possible_grades)
    severities = {_severity(kb, g) for g in possible}
    if len(severities) == 1:
        severity = severities.pop()
        return severity, None, _certain_severity(kb, cite, severity, possible), []
    missing = [m.replace("escc.", "noms.escc.") for m in e.missing]
    note = "ESCC not known: missing " + ", ".join(input_label(m) for m in missing)
    if possible:
        note += "; grade could be " + ", ".join(possible)
    return None, None, trusted(Component, None, name="neurologic", value=None, note=note), missing


def _certain_severity(kb: KnowledgeBase, cite: Citer, severity: str, possible: list[str]) -> Component:
    """The neurologic component when every possible grade has the same severity."""
    crow = _framing_row(kb, axis="neurologic_certain", escc=severity)
    grade_rows = [r for r in kb.table(ESCC_GRADES).rows if r["grade"] in possible]
    refs = cite.cite_row(FRAMING, crow)
    for r in grade_rows:
        refs += cite.cite_row(ESCC_GRADES, r)
    return trusted(
        Component, None,
        name="neurologic",
        value="ESCC " + " or ".join(possible),
        label=f"{severity}-grade epidural compression",
        note=crow["framing"],
        kb_items=[f"{FRAMING}.{crow.id}", *(f"{ESCC_GRADES}.{r.id}" for r in grade_rows)],
        sources=list(dict.fromkeys([*crow.sources, *(s for r in grade_rows for s in r.sources)])),
        refs=sorted(set(refs)),
    )


# --- O: oncologic --------------------------------------------------------------------------------------------


def _oncologic(
    inp: NomsInput, kb: KnowledgeBase, cite: Citer
) -> tuple[TableRow | None, str | None, Component, list[str], list[Notice]]:
    """(histology row, oncologic class, component, missing, notices)."""
    if inp.histology is None:
        return None, None, trusted(Component, None, name="oncologic", value=None, note="histology not given"), ["noms.histology"], []
    hrow = histology_row(inp.histology, kb)
    if hrow is None:
        note = "histology not in the radiosensitivity table: radiation response unknown; known: " + ", ".join(
            known_histologies(kb)
        )
        return None, None, trusted(Component, None, name="oncologic", value=inp.histology, note=note), ["noms.histology"], []
    response = hrow["response"]
    classes = kb.table(FRAMING).where(axis="oncologic_class", response=response)
    if not classes:  # recognised, but no source classifies it: never a guessed class
        comp = cite.component(
            "oncologic", RADIOSENSITIVITY, hrow, value=inp.histology, label=response.replace("_", " "), note=hrow.note
        )
        return hrow, None, comp, ["noms.histology"], []
    crow = classes[0]
    refs = cite.cite_row(RADIOSENSITIVITY, hrow) + cite.cite_row(FRAMING, crow)
    comp = trusted(
        Component, None,
        name="oncologic",
        value=inp.histology,
        label=response.replace("_", " "),
        note=crow["framing"],
        kb_items=[f"{RADIOSENSITIVITY}.{hrow.id}", f"{FRAMING}.{crow.id}"],
        sources=list(dict.fromkeys([*hrow.sources, *crow.sources])),
        refs=sorted(set(refs)),
    )
    return hrow, crow["oncologic"], comp, [], _view_notices(cite, hrow)


def _view_notices(cite: Citer, hrow: TableRow) -> list[Notice]:
    """One 'sources differ' notice per classification, with its sources, when the sources disagree."""
    if not views_differ(hrow):
        return []
    return [
        cite.notice("sources_differ", f"{hrow['disagreement']} {view['statement']}", sources=view["sources"])
        for view in hrow["views"]
    ]


# --- M: mechanical -------------------------------------------------------------------------------------------


def _mechanical(
    inp: NomsInput, kb: KnowledgeBase, cite: Citer, sins_result: SinsResult | None
) -> tuple[str | None, int | None, Component, list[str]]:
    """(SINS category, total, component, missing)."""
    mechanical = None
    missing: list[str] = []
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
        return None, total, trusted(Component, None, name="mechanical", value=None, note="SINS not known"), missing
    mrow = _framing_row(kb, axis="mechanical", mechanical=mechanical)
    comp = cite.component(
        "mechanical", FRAMING, mrow,
        value=f"SINS {total}" if total is not None else "SINS range",
        label=mechanical.replace("_", " "), note=mrow["framing"],
    )
    return mechanical, total, comp, missing


# --- plans ---------------------------------------------------------------------------------------------------


def _fit_plan(
    kb: KnowledgeBase, severity: str | None, oncologic: str | None, mechanical: str | None,
    myelopathy: bool | None, conflict: bool,
) -> list[TableRow]:
    """The framing rows for a patient who can have surgery (or whose fitness is not stated)."""
    rows: list[TableRow] = []
    if mechanical in UNSTABLE:
        rows.append(_framing_row(kb, axis="mechanical", mechanical=mechanical))
    if severity and oncologic:
        if conflict and myelopathy is True:
            rows.append(_framing_row(kb, axis="myelopathy_solid", escc=severity, oncologic=oncologic))
        elif not (conflict and myelopathy is None):  # a missing myelopathy leaves this open
            rows.append(_framing_row(kb, axis="neurologic_oncologic", escc=severity, oncologic=oncologic))
    return rows


def _unfit_plan(kb: KnowledgeBase, oncologic: str | None, mechanical: str | None) -> list[TableRow]:
    """Non-surgical options first (radiotherapy by radiation response, cement augmentation), then 'not offered'."""
    rows = [_framing_row(kb, axis="systemic_unfit_radiation", oncologic=oncologic or "unknown")]
    if mechanical in UNSTABLE:
        rows.append(_framing_row(kb, axis="systemic_unfit_mechanical", mechanical=mechanical))
    rows.append(_framing_row(kb, axis="systemic", fit_for_surgery=False))
    return rows


def _summary(missing: list[str], framing: list[str], alternative: list[str]) -> str:
    """The headline; *alternative* is the framing for an unfit patient when fitness is the open question."""
    if not missing:
        return " ".join(framing) if framing else "no framing"
    summary = "insufficient data for a full NOMS framing: missing " + ", ".join(input_label(m) for m in missing)
    if alternative:
        return summary + "; if fit for surgery: " + " ".join(framing) + " If not: " + " ".join(alternative)
    if framing:
        summary += "; what holds already: " + " ".join(framing)
    return summary


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
    notices: list[Notice] = []

    severity, grade, n_comp, missing = _neurologic(inp, kb, cite, escc_result)
    components = [n_comp]
    hrow, oncologic, o_comp, o_missing, o_notices = _oncologic(inp, kb, cite)
    solid = hrow is not None and hrow.get("patchell_excluded") is False
    unfit = inp.fit_for_surgery is False
    conflict = severity == "high" and solid and oncologic == "radiosensitive"

    # Myelopathy: part of N; it decides between the NOMS review and the Patchell trial for a solid tumour.
    if inp.myelopathy is not None:
        components.append(trusted(Component, None, name="myelopathy", value="yes" if inp.myelopathy else "no"))
    elif conflict and not unfit:
        missing.append("noms.myelopathy")
        components.append(trusted(Component, None, name="myelopathy", value=None))
        row = _framing_row(kb, axis="myelopathy_missing")
        notices.append(cite.notice("myelopathy_missing", row["framing"], kb_items=[f"{FRAMING}.{row.id}"]))
    elif severity == "high" and oncologic:
        row = _framing_row(kb, axis="myelopathy_either_way")
        components.append(cite.component("myelopathy", FRAMING, row, value=None, note=row["framing"]))
    if severity == "high" and solid and inp.myelopathy is not False:
        st = kb.statement(PATCHELL_STATEMENT)
        notices.append(cite.notice("patchell_trial", st.text, kb_items=[PATCHELL_STATEMENT]))

    components.append(o_comp)
    missing.extend(o_missing)
    notices.extend(o_notices)
    mechanical, total, m_comp, m_missing = _mechanical(inp, kb, cite, sins_result)
    components.append(m_comp)
    missing.extend(m_missing)

    # S: systemic, and the plan it allows.
    alternative: list[TableRow] = []
    if unfit:
        plan = _unfit_plan(kb, oncologic, mechanical)
        srow = plan[-1]
        components.append(cite.component("systemic", FRAMING, srow, value="unfit for surgery"))
    else:
        plan = _fit_plan(kb, severity, oncologic, mechanical, inp.myelopathy, conflict)
        needs_surgery = any(bool(r.get("needs_surgery")) for r in plan)
        if inp.fit_for_surgery:
            components.append(trusted(Component, None, name="systemic", value="fit for surgery"))
        else:
            components.append(trusted(Component, None, name="systemic", value=None, note="fitness for surgery not given"))
            if needs_surgery:
                missing.append("noms.fit_for_surgery")
                alternative = _unfit_plan(kb, oncologic, mechanical)
    for r in [*plan, *alternative]:
        cite.cite_row(FRAMING, r)
    framing = [r["framing"] for r in plan]

    return trusted(
        NomsResult, None,
        status="insufficient_data" if missing else "complete",
        summary=_summary(missing, framing, [r["framing"] for r in alternative]),
        components=components,
        missing=missing,
        notices=notices,
        neurologic=f"{severity}-grade ESCC" if severity else None,
        escc_grade=grade,
        oncologic=oncologic,
        histology_response=hrow["response"] if hrow is not None else None,
        solid_tumour=(hrow.get("patchell_excluded") is False) if hrow is not None else None,
        mechanical=mechanical,
        sins_total=total,
        systemic=None if inp.fit_for_surgery is None else ("fit for surgery" if inp.fit_for_surgery else "unfit for surgery"),
        treatment=[r["treatment"] for r in plan],
        framing=framing,
        **cite.common(),  # type: ignore[arg-type]
    )


__all__ = [
    "NomsInput", "NomsResult", "noms", "histology_row", "known_histologies", "views_differ", "input_label",
    "InvalidInputError",
]
