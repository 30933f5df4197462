"""One case document in, every result its inputs allow out.

A case carries whatever is known (SINS components, ESCC findings or grade,
the patient's histology and fitness for surgery, test results).  ``assess``
runs each instrument that has any input and reports its status; NOMS is
framed from the same SINS and ESCC sections, so each fact is entered once.
Invalid or contradictory input raises (the whole case is rejected with the
field named); missing input is reported per instrument.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from spinemets.errors import ContradictoryInputError, InvalidInputError
from spinemets.knowledge.loader import KnowledgeBase, load_kb
from spinemets.results import Notice, trusted
from spinemets.interpret.probability import ProbabilityInput, ProbabilityResult, post_test_probability
from spinemets.interpret.fracture import FractureResult, fracture_differential
from spinemets.interpret.marrow import MarrowInput, MarrowResult, marrow_signal
from spinemets.interpret.primaries import PrimariesInput, PrimariesResult, likely_primaries
from spinemets.interpret.quantitative import QuantitativeInput, QuantitativeResult, quantitative
from spinemets.pathway import PathwayInput, PathwayResult, pathway, primary_group
from spinemets.scores.escc import EsccInput, EsccResult, escc
from spinemets.scores.noms import NomsInput, NomsResult, noms
from spinemets.lesions import LesionInput, LesionsResult, lesions as assess_lesions
from spinemets.scores.prognosis import PrognosisInput, PrognosisResult, primary_id, prognosis
from spinemets.scores.sins import SinsInput, SinsResult, sins
from spinemets.validation import parse


class PatientInput(BaseModel):
    """Clinical facts used by NOMS (and later the pathway)."""

    model_config = ConfigDict(extra="forbid")

    histology: str | None = Field(default=None, description="primary tumour histology")
    myelopathy: bool | None = None
    fit_for_surgery: bool | None = None


class CaseDocument(BaseModel):
    """Everything known about one case; every section is optional."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"title": "spinemets case document"})

    case_id: str | None = Field(default=None, max_length=200, description="your reference; never patient-identifying")
    patient: PatientInput | None = None
    sins: SinsInput | None = None
    escc: EsccInput | None = None
    probability: ProbabilityInput | None = None
    pathway: PathwayInput | None = Field(default=None, description="clinical scenario for the imaging pathway")
    fracture: dict[str, str | bool | float | None] | None = Field(
        default=None,
        description="fracture-differential features (feature id -> present/absent/unknown) and pre_test / known_cancer",
    )
    marrow: MarrowInput | None = None
    quantitative: QuantitativeInput | None = None
    primaries: PrimariesInput | None = None
    prognosis: PrognosisInput | None = Field(
        default=None, description="facts for the prognostic scores (the patient's histology fills in the primary)")
    lesions: list[LesionInput] | None = Field(
        default=None, description="several lesions, each a vertebra or range with its own SINS and ESCC (instead of "
        "the single sins and escc sections)")


Outcome = Literal["complete", "insufficient_data"]


class AssessResult(BaseModel):
    case_id: str | None
    kb_version: str
    disclaimer: str
    statuses: dict[str, Outcome]
    sins: SinsResult | None = None
    escc: EsccResult | None = None
    noms: NomsResult | None = None
    probability: ProbabilityResult | None = None
    pathway: PathwayResult | None = None
    fracture: FractureResult | None = None
    marrow: MarrowResult | None = None
    quantitative: QuantitativeResult | None = None
    primaries: PrimariesResult | None = None
    prognosis: PrognosisResult | None = None
    lesions: LesionsResult | None = None

    @property
    def results(self) -> list[Any]:
        order = (self.pathway, self.sins, self.escc, self.noms, self.lesions, self.prognosis, self.fracture, self.marrow, self.quantitative,
                 self.primaries, self.probability)
        return [r for r in order if r is not None]

    @property
    def complete(self) -> bool:
        return all(s == "complete" for s in self.statuses.values())

    def to_text(self) -> str:
        head = f"Assessment{' of ' + self.case_id if self.case_id else ''}: " + (
            ", ".join(f"{k} {v.replace('_', ' ')}" for k, v in self.statuses.items()) or "nothing to assess"
        )
        parts = [head] + [r.to_text() for r in self.results]
        if not self.results:
            parts.append(f"Knowledge base {self.kb_version}. {self.disclaimer}")
        return "\n\n".join(parts)


def _primary(text: str, kb: KnowledgeBase) -> str:
    """The primary-site group of a free-text histology (the text itself when no group matches)."""
    row = primary_group(text, kb)
    return row.id if row is not None else text.strip().lower()


def _prognosis_facts(facts: PrognosisInput, histology: str | None,
                     kb: KnowledgeBase) -> tuple[PrognosisInput, str | None]:
    """The prognostic facts, with the primary taken from the patient's histology when the section leaves it out, and
    what to tell the reader when the histology could not be used (the primary then stays missing, named in the
    result); a different primary in the two places is a contradiction."""
    if histology is None:
        return facts, None
    try:
        from_histology: str | None = primary_id(histology, kb)
    except InvalidInputError as exc:
        from_histology, why = None, exc.message
    if facts.primary is None:
        if from_histology is None:
            return facts, (f"The patient's histology was not used for the prognostic scores: {why[:1].lower()}"
                           f"{why[1:]}")
        return facts.model_copy(update={"primary": from_histology}), None
    if from_histology is not None and from_histology != facts.primary:
        raise ContradictoryInputError(
            ["case.patient.histology", "case.prognosis.primary"],
            f"the patient's histology ({histology!r}) and the prognostic scores' primary differ",
        )
    return facts, None


def _counted(facts: PrognosisInput, found: LesionsResult) -> tuple[PrognosisInput, str | None]:
    """The number of vertebrae with metastases from the lesions, when the prognostic facts leave it out (said in the
    result: other vertebrae may be involved that the case does not describe); a smaller number given there than the
    lesions involve is a contradiction."""
    count = len(found.involved_vertebrae)
    given = facts.vertebral_metastases
    if given is None:
        if count == 0:
            return facts, None
        note = (f"The number of vertebrae with metastases ({count}) is counted from the lesions of this case; give it "
                "with the prognostic facts if other vertebrae are involved.")
        return facts.model_copy(update={"vertebral_metastases": count}), note
    if given < count:
        raise ContradictoryInputError(
            ["case.prognosis.vertebral_metastases", "case.lesions"],
            f"{given} vertebra{'e' if given != 1 else ''} with metastases given, but the lesions involve {count}",
        )
    return facts, None


def assess(data: CaseDocument | dict[str, Any], kb: KnowledgeBase | None = None) -> AssessResult:
    """Run every instrument the case has input for."""
    kb = kb or load_kb()
    case = parse(CaseDocument, data, "case")
    out: dict[str, Any] = {}
    p = case.patient
    histology = p.histology if p is not None else None
    if case.pathway is not None:
        scenario = case.pathway
        if histology is not None:
            site = scenario.primary_site
            if site is None:
                scenario = scenario.model_copy(update={"primary_site": histology.strip().lower()})
            elif _primary(site, kb) != _primary(histology, kb):
                raise ContradictoryInputError(
                    ["case.patient.histology", "case.pathway.primary_site"],
                    f"the patient's histology ({histology!r}) and the pathway's primary site ({site!r}) differ",
                )
        out["pathway"] = pathway(scenario, kb)
    if case.sins is not None:
        out["sins"] = sins(case.sins, kb)
    if case.escc is not None:
        out["escc"] = escc(case.escc, kb)
    if case.lesions is not None:
        if case.sins is not None or case.escc is not None:
            raise ContradictoryInputError(
                ["case.lesions", "case.sins" if case.sins is not None else "case.escc"],
                "give one lesion in the SINS and ESCC sections, or several in the lesions list, not both",
            )
        out["lesions"] = assess_lesions(
            case.lesions, kb, histology=histology, myelopathy=p.myelopathy if p is not None else None,
            fit_for_surgery=p.fit_for_surgery if p is not None else None)
    elif p is not None and (p.histology is not None or p.fit_for_surgery is not None or p.myelopathy is not None):
        out["noms"] = noms(
            NomsInput(
                escc=case.escc, sins=case.sins, histology=p.histology,
                myelopathy=p.myelopathy, fit_for_surgery=p.fit_for_surgery,
            ),
            kb,
            sins_result=out.get("sins"),
            escc_result=out.get("escc"),
        )
    if case.prognosis is not None:
        facts, note = _prognosis_facts(case.prognosis, histology, kb)
        counted = None
        if "lesions" in out:
            facts, counted = _counted(facts, out["lesions"])
        result = prognosis(facts, kb)
        told = [trusted(Notice, None, code=code, message=text)
                for code, text in (("histology_not_used", note), ("counted_from_lesions", counted)) if text]
        if told:
            result = result.model_copy(update={"notices": [*told, *result.notices]})
        out["prognosis"] = result
    if case.fracture is not None:
        out["fracture"] = fracture_differential(case.fracture, kb)
    if case.marrow is not None:
        out["marrow"] = marrow_signal(case.marrow, kb)
    if case.quantitative is not None:
        out["quantitative"] = quantitative(case.quantitative, kb)
    if case.primaries is not None:
        out["primaries"] = likely_primaries(case.primaries, kb)
    if case.probability is not None:
        prob = case.probability
        if prob.histology is None and histology is not None:
            prob = prob.model_copy(update={"histology": histology})
        out["probability"] = post_test_probability(prob, kb)
    return trusted(
        AssessResult, None,
        case_id=case.case_id,
        kb_version=kb.version,
        disclaimer=kb.manifest.disclaimer,
        statuses={k: v.status for k, v in out.items()},
        **out,
    )


def case_schema() -> dict[str, Any]:
    """JSON Schema of the case document."""
    return CaseDocument.model_json_schema()
