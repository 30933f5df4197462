"""Imaging pathway: from a clinical scenario to what to image, how and how fast.

The rules below are named after the clinical situations the sources describe;
each rule only *selects* knowledge-base items (studies in
``tables/imaging_studies.yaml``, ratings in ``tables/acr_ratings.yaml``, time
limits in ``tables/urgency_windows.yaml``, red flags in
``tables/red_flags.yaml`` and statements); the wording and figures come from
there.

Scenarios, in order of precedence:

* ``suspected_mscc``: neurological deficit, suspected cord or cauda equina
  compression -> whole-spine MRI, emergency (seed 000: 12 h; NICE: 24 h).
* ``suspected_spinal_metastasis``: spinal pain with known cancer, unknown
  primary or a red flag -> MRI without and with contrast (whole spine when
  cancer is known), urgent (NICE: 1 week; seed 000: 2 weeks).
* ``known_lesion``: a lesion already found, imaged for a purpose
  (characterise, stage, plan treatment, follow up).
* ``asymptomatic_surveillance``: no routine imaging after curative treatment
  of breast cancer (ASCO); no recommendation held for other primaries.
* ``low_back_pain_without_red_flags``: no imaging (ACR variants 1-2).

Modifiers: MRI contraindications (CT with contrast, CT myelography,
dual-energy CT near metal), contrast concerns (unenhanced studies; the
sources give no criteria), breast cancer subtype (brain MRI), unknown primary
(full-body CT and urgent biopsy), earlier negative radiographs (never enough).
An input that would change the recommendation and is missing makes the
result ``insufficient_data`` naming it, with what holds either way.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from spinemets.knowledge.loader import KnowledgeBase, load_kb
from spinemets.knowledge.models import TableRow
from spinemets.results import Citer, Component, Result
from spinemets.validation import parse

STUDIES = "imaging_studies"
RATINGS = "acr_ratings"
WINDOWS = "urgency_windows"
RED_FLAGS = "red_flags"

NeuroDeficit = Literal["motor_weakness", "sensory_level", "sphincter", "gait", "radicular"]
MriContraindication = Literal["non_mr_conditional_device", "claustrophobia", "metal_artefact"]
ContrastConcern = Literal["reduced_renal_function", "prior_gadolinium_reaction", "pregnancy"]
Region = Literal["cervical", "thoracic", "lumbar", "sacral", "multiple"]
Purpose = Literal["characterise", "stage", "plan_treatment", "follow_up"]
# ACR Low Back Pain variants rate lumbar imaging; they are not applied to cervical or thoracic pain.
LUMBAR_VARIANTS = ("suspected_cancer", "cauda_equina", "lbp_no_red_flags")
URGENCY_ORDER = {"emergency": 0, "urgent": 1, "routine": 2, "none": 3}


class PriorImaging(BaseModel):
    model_config = ConfigDict(extra="forbid")

    modality: Literal["radiograph", "ct", "mri", "bone_scan", "fdg_pet_ct", "spect_ct"]
    result: Literal["negative", "positive", "equivocal"]


class PathwayInput(BaseModel):
    """A clinical scenario.  Lists given as ``[]`` mean 'assessed, none'; ``None`` means not known."""

    model_config = ConfigDict(extra="forbid")

    age: int | None = Field(default=None, ge=0, le=120)
    cancer_history: Literal["none", "current", "previous"] | None = Field(
        default=None, description="none; current (active) or previous (treated) cancer"
    )
    unknown_primary: bool | None = Field(default=None, description="malignancy suspected, no primary known")
    primary_site: str | None = Field(default=None, max_length=80, description="e.g. breast, prostate, lung, kidney")
    breast_her2_positive: bool | None = None
    breast_triple_negative: bool | None = None
    treatment_intent: Literal["curative", "palliative"] | None = None
    years_since_treatment: float | None = Field(default=None, ge=0, le=80)
    spinal_pain: bool | None = None
    pain_region: Region | None = None
    mechanical_pain: bool | None = None
    night_pain: bool | None = None
    pain_duration_weeks: float | None = Field(default=None, ge=0, le=2600)
    pain_progressive: bool | None = None
    red_flags: list[str] | None = Field(default=None, description="ids from tables/red_flags; [] = assessed, none")
    neuro_deficits: list[NeuroDeficit] | None = Field(default=None, description="[] = examined, no deficit")
    suspected_cord_compression: bool | None = None
    suspected_cauda_equina: bool | None = None
    asymptomatic_surveillance: bool | None = Field(default=None, description="imaging asked for routine follow-up, no symptoms")
    mri_contraindications: list[MriContraindication] = Field(default_factory=list)
    contrast_concerns: list[ContrastConcern] = Field(default_factory=list)
    prior_imaging: list[PriorImaging] = Field(default_factory=list)
    known_lesion_purpose: Purpose | None = Field(default=None, description="when a lesion is already known")

    @field_validator("primary_site")
    @classmethod
    def _site(cls, v: str | None) -> str | None:
        return v.strip().lower() if isinstance(v, str) and v.strip() else None

    @field_validator("red_flags")
    @classmethod
    def _flags(cls, v: list[str] | None) -> list[str] | None:
        if v is None:
            return None
        known = {r.id for r in load_kb().table(RED_FLAGS).rows}
        out = []
        for flag in v:
            key = flag.strip().lower().replace(" ", "_").replace("-", "_")
            if key not in known:
                raise ValueError(f"{flag!r} is not a known red flag; allowed values: {', '.join(sorted(known))}")
            out.append(key)
        return sorted(set(out))


class Window(BaseModel):
    hours: int
    label: str
    statement: str
    sources: list[str]
    refs: list[int]


class Urgency(BaseModel):
    level: Literal["emergency", "urgent", "routine", "none"]
    windows: list[Window] = Field(default_factory=list, description="time limits, one per source; sources differ")

    @property
    def earliest_hours(self) -> int | None:
        return min((w.hours for w in self.windows), default=None)


class Study(BaseModel):
    id: str
    modality: str
    region: str
    contrast: str
    label: str


class Recommendation(BaseModel):
    rank: int
    role: Literal["first_line", "alternative", "additional", "staging", "not_indicated"]
    study: Study | None
    appropriateness: Literal["usually_appropriate", "may_be_appropriate", "usually_not_appropriate"] | None = None
    acr_variant: str | None = None
    urgency: Urgency | None = None
    rationale: list[str] = Field(default_factory=list)
    statements: list[str] = Field(default_factory=list)
    refs: list[int] = Field(default_factory=list)


class PathwayResult(Result):
    instrument: str = "pathway"
    scenario: str
    imaging_indicated: bool | None
    urgency: Urgency | None = None
    recommendations: list[Recommendation] = Field(default_factory=list)
    understood: list[str] = Field(default_factory=list)

    @property
    def first_line(self) -> Recommendation | None:
        return next((r for r in self.recommendations if r.role == "first_line"), None)

    def extra_lines(self) -> list[str]:
        lines: list[str] = []
        if self.understood:
            lines.append("Understood: " + "; ".join(self.understood))
        if self.urgency and self.urgency.windows:
            lines.append(
                f"Urgency: {self.urgency.level} - "
                + "; ".join(f"{w.label} [{','.join(map(str, w.refs))}]" for w in self.urgency.windows)
                + " (sources differ; each shown with its source)"
            )
        for r in self.recommendations:
            name = r.study.label if r.study else "No imaging"
            rating = f" - ACR: {r.appropriateness.replace('_', ' ')}" if r.appropriateness else ""
            refs = f" [{','.join(map(str, r.refs))}]" if r.refs else ""
            lines.append(f"  {r.rank}. [{r.role.replace('_', ' ')}] {name}{rating}{refs}")
            for why in r.rationale:
                lines.append(f"       {why}")
        return lines


class _Builder:
    """Collects recommendations, citing every knowledge item it uses."""

    def __init__(self, kb: KnowledgeBase, cite: Citer, inp: PathwayInput) -> None:
        self.kb, self.cite, self.inp = kb, cite, inp
        self.recs: list[Recommendation] = []
        self.notices: list[Any] = []
        self.acr_variant: str | None = None

    def study(self, study_id: str) -> tuple[Study, TableRow]:
        row = self.kb.table(STUDIES).row(study_id)
        return Study(id=row.id, modality=row["modality"], region=row["region"], contrast=row["contrast"], label=row["label"]), row

    def add(self, study_id: str | None, role: str, statements: list[str] = (), urgency: Urgency | None = None) -> None:  # type: ignore[assignment]
        refs: list[int] = []
        study = None
        stmt_ids = list(statements)
        if study_id is not None:
            if any(r.study and r.study.id == study_id for r in self.recs):
                return
            study, row = self.study(study_id)
            refs.extend(self.cite.cite_row(STUDIES, row))
            stmt_ids = list(dict.fromkeys([*stmt_ids, *row["statements"]]))
        rationale = []
        for sid in stmt_ids:
            refs.extend(self.cite.cite_statement(sid))
            rationale.append(self.kb.statement(sid).text)
        appropriateness = acr = None
        lumbar_only = self.acr_variant in LUMBAR_VARIANTS and self.inp.pain_region in ("cervical", "thoracic")
        if study_id is not None and self.acr_variant is not None and not lumbar_only:
            rated = self.kb.table(RATINGS).where(variant=self.acr_variant, study=study_id)
            if rated:
                appropriateness, acr = rated[0]["appropriateness"], rated[0]["acr_variant"]
                refs.extend(self.cite.cite_row(RATINGS, rated[0]))
        self.recs.append(
            Recommendation(
                rank=len(self.recs) + 1, role=role, study=study, appropriateness=appropriateness,  # type: ignore[arg-type]
                acr_variant=acr, urgency=urgency, rationale=rationale, statements=stmt_ids, refs=sorted(set(refs)),
            )
        )

    def note(self, code: str, message: str, statements: list[str]) -> None:
        self.notices.append(self.cite.notice(code, message, kb_items=statements))

    def urgency(self, level: str, scenario: str | None) -> Urgency:
        windows = []
        if scenario is not None:
            for row in sorted(self.kb.table(WINDOWS).where(scenario=scenario), key=lambda r: r["hours"]):
                refs = self.cite.cite_row(WINDOWS, row) + self.cite.cite_statement(row["statement"])
                windows.append(Window(hours=row["hours"], label=row["label"], statement=row["statement"],
                                      sources=list(row.sources), refs=sorted(set(refs))))
        return Urgency(level=level, windows=windows)  # type: ignore[arg-type]


def _neuro(inp: PathwayInput) -> bool | None:
    """True with any deficit or suspected compression; None when not assessed at all."""
    signs = [bool(inp.neuro_deficits)] if inp.neuro_deficits is not None else []
    signs += [v for v in (inp.suspected_cord_compression, inp.suspected_cauda_equina) if v is not None]
    if any(signs):
        return True
    if inp.neuro_deficits is not None:
        return False
    return None


def _understood(inp: PathwayInput, kb: KnowledgeBase) -> list[str]:
    out = []
    if inp.age is not None:
        out.append(f"age {inp.age}")
    if inp.cancer_history in ("current", "previous"):
        site = f" ({inp.primary_site})" if inp.primary_site else ""
        out.append(f"{inp.cancer_history} cancer{site}")
    elif inp.cancer_history == "none":
        out.append("no cancer history")
    if inp.unknown_primary:
        out.append("malignancy suspected, primary unknown")
    if inp.breast_her2_positive:
        out.append("HER2-positive")
    if inp.breast_triple_negative:
        out.append("triple-negative")
    if inp.treatment_intent:
        out.append(f"treated with {inp.treatment_intent} intent")
    if inp.spinal_pain:
        region = f" ({inp.pain_region})" if inp.pain_region else ""
        out.append(f"spinal pain{region}")
    elif inp.spinal_pain is False:
        out.append("no spinal pain")
    if inp.red_flags:
        labels = {r.id: r["label"].lower() for r in kb.table(RED_FLAGS).rows}
        out.append("red flags: " + ", ".join(labels[f] for f in inp.red_flags))
    elif inp.red_flags == []:
        out.append("no red flags")
    if inp.neuro_deficits:
        out.append("neurological deficit: " + ", ".join(d.replace("_", " ") for d in inp.neuro_deficits))
    elif inp.neuro_deficits == []:
        out.append("no neurological deficit")
    if inp.suspected_cord_compression:
        out.append("suspected cord compression")
    if inp.suspected_cauda_equina:
        out.append("suspected cauda equina syndrome")
    if inp.asymptomatic_surveillance:
        out.append("asymptomatic surveillance")
    if inp.mri_contraindications:
        out.append("MRI problem: " + ", ".join(c.replace("_", " ") for c in inp.mri_contraindications))
    if inp.contrast_concerns:
        out.append("contrast concern: " + ", ".join(c.replace("_", " ") for c in inp.contrast_concerns))
    if inp.known_lesion_purpose:
        out.append(f"known lesion, purpose: {inp.known_lesion_purpose.replace('_', ' ')}")
    return out


def pathway(data: PathwayInput | dict[str, Any], kb: KnowledgeBase | None = None) -> PathwayResult:
    """Recommend imaging for a clinical scenario; see the module docstring."""
    kb = kb or load_kb()
    inp = parse(PathwayInput, data, "pathway")
    cite = Citer(kb)
    b = _Builder(kb, cite, inp)
    missing: list[str] = []

    cancer = inp.cancer_history in ("current", "previous") or bool(inp.unknown_primary)
    breast = inp.primary_site is not None and "breast" in inp.primary_site
    neuro = _neuro(inp)
    pain = inp.spinal_pain
    flags = inp.red_flags
    symptomatic = bool(pain) or bool(neuro)
    mri_ok = not inp.mri_contraindications
    contrast_ok = not inp.contrast_concerns
    urgency: Urgency | None = None
    indicated: bool | None = True

    if neuro:
        scenario = "suspected_mscc"
        b.acr_variant = "cauda_equina" if inp.suspected_cauda_equina else "myelopathy"
        urgency = b.urgency("emergency", "neuro")
        _spine_imaging(b, "mri-whole-spine-mscc", urgency, mri_ok, contrast_ok, inp)
        if cancer:
            b.note("mscc_emergency", kb.statement("redflags.nice.neurology_immediate").text, ["redflags.nice.neurology_immediate"])
        b.note("timing_differs", kb.statement("timing.caveat.sources_differ").text, ["timing.caveat.sources_differ"])
    elif pain and (cancer or flags):
        scenario = "suspected_spinal_metastasis"
        b.acr_variant = "suspected_cancer"
        if neuro is None:
            missing.append("pathway.neuro_deficits")
            urgency = b.urgency("urgent", None)
            urgency.windows = b.urgency("emergency", "neuro").windows + b.urgency("urgent", "no_neuro").windows
        else:
            urgency = b.urgency("urgent", "no_neuro")
        first = "mri-whole-spine-wwo" if cancer else "mri-region-wwo"
        _spine_imaging(b, first, urgency, mri_ok, contrast_ok, inp)
        if inp.cancer_history in ("current", "previous"):
            b.note("red_flag_pain", kb.statement("redflags.nice.pain_features_24h").text, ["redflags.nice.pain_features_24h"])
        b.note("timing_differs", kb.statement("timing.caveat.sources_differ").text, ["timing.caveat.sources_differ"])
    elif inp.known_lesion_purpose is not None:
        scenario = "known_lesion"
        urgency = b.urgency("routine", None)
        _known_lesion(b, inp, mri_ok, contrast_ok)
    elif inp.asymptomatic_surveillance and not symptomatic:
        scenario = "asymptomatic_surveillance"
        urgency = b.urgency("none", None)
        if pain is None or neuro is None:
            missing.extend(f for f, v in (("pathway.spinal_pain", pain), ("pathway.neuro_deficits", neuro)) if v is None)
        if breast and inp.treatment_intent == "curative":
            indicated = False
            b.acr_variant = "breast_stage1_asymptomatic"
            b.add(None, "not_indicated", ["breast.surveillance.no_routine_imaging"])
            for sid in ("bone-scan", "fdg-pet-ct"):
                rated = kb.table(RATINGS).where(variant="breast_stage1_asymptomatic", study=sid)
                if rated:
                    b.note("acr_rating", f"{rated[0]['acr_variant']}: {b.study(sid)[0].label} is usually not appropriate.",
                           [f"{RATINGS}.{rated[0].id}"])
        elif breast and inp.treatment_intent is None:
            indicated = None
            missing.append("pathway.treatment_intent")
        else:
            indicated = None
            b.note("no_recommendation",
                   "The knowledge base holds a surveillance recommendation only for breast cancer treated with curative "
                   "intent (ASCO); for this scenario it has none. Follow the oncology team's protocol.",
                   ["breast.surveillance.no_routine_imaging"])
    elif pain and not cancer and flags == [] and inp.cancer_history == "none" and neuro is False:
        scenario = "low_back_pain_without_red_flags"
        indicated = False
        urgency = b.urgency("none", None)
        b.acr_variant = "lbp_no_red_flags"
        b.add(None, "not_indicated", ["imaging.acr.lbp_no_red_flags"])
    else:
        scenario = "undetermined"
        indicated = None
        for name, value in (
            ("pathway.spinal_pain", pain),
            ("pathway.cancer_history", inp.cancer_history),
            ("pathway.red_flags", flags),
            ("pathway.neuro_deficits", neuro),
        ):
            if value is None:
                missing.append(name)
        if not missing:
            missing.append("pathway.spinal_pain or pathway.known_lesion_purpose")

    # Staging and work-up that apply on top of the spine study.
    if scenario in ("suspected_mscc", "suspected_spinal_metastasis"):
        if inp.unknown_primary:
            b.add("ct-full-body", "additional", urgency=urgency)
            b.add("ct-guided-biopsy", "additional", urgency=urgency)
        if breast and inp.cancer_history in ("current", "previous"):
            b.add("bone-scan", "staging")
            b.add("ct-cap-with", "staging")
            if (inp.breast_her2_positive or inp.breast_triple_negative) and neuro:
                b.add("brain-mri-with", "additional")
            elif neuro and inp.breast_her2_positive is None and inp.breast_triple_negative is None:
                missing.append("pathway.breast_her2_positive or pathway.breast_triple_negative")
        elif cancer:
            b.add("fdg-pet-ct", "staging")
            b.add("bone-scan", "staging")

    for prior in inp.prior_imaging:
        if prior.modality == "radiograph" and prior.result == "negative" and scenario != "low_back_pain_without_red_flags":
            b.note("radiograph_not_enough", kb.statement("imaging.radiograph.cannot_exclude").text, ["imaging.radiograph.cannot_exclude"])
    if inp.contrast_concerns and scenario not in ("low_back_pain_without_red_flags", "asymptomatic_surveillance"):
        b.note("contrast", kb.statement("contrast.caveat.safety_not_covered").text, ["contrast.caveat.safety_not_covered"])

    status = "insufficient_data" if missing else "complete"
    first = next((r for r in b.recs if r.role == "first_line"), None)
    if indicated is False:
        summary = "imaging not indicated"
    elif first is not None:
        when = ""
        if urgency and urgency.windows:
            when = " (" + " / ".join(f"{w.label}: {', '.join(w.sources)}" for w in urgency.windows) + ")"
        summary = f"{first.study.label if first.study else ''}; {urgency.level if urgency else ''}{when}"
    else:
        summary = "no recommendation"
    if missing:
        summary = "insufficient data: missing " + ", ".join(missing) + ("; holds either way: " + summary if first else "")

    components = [Component(name="scenario", value=scenario)]
    return PathwayResult(
        status=status,
        summary=summary,
        scenario=scenario,
        imaging_indicated=indicated,
        urgency=urgency,
        recommendations=b.recs,
        understood=_understood(inp, kb),
        components=components,
        missing=missing,
        notices=b.notices,
        **cite.common(),  # type: ignore[arg-type]
    )


def _spine_imaging(b: _Builder, mri_study: str, urgency: Urgency, mri_ok: bool, contrast_ok: bool, inp: PathwayInput) -> None:
    """First-line spine study and its alternatives, honouring MRI and contrast problems."""
    if not contrast_ok and mri_study in ("mri-region-wwo", "mri-whole-spine-wwo"):
        mri_study = "mri-region-wo"
    ct_study = "ct-region-with" if contrast_ok else "ct-region-wo"
    if mri_ok:
        b.add(mri_study, "first_line", urgency=urgency)
        if mri_study != "mri-region-wwo" and contrast_ok:
            b.add("mri-region-wwo", "alternative")
        if contrast_ok:
            b.add("mri-region-wo", "alternative", ["contrast.caveat.not_always_needed"])
        b.add(ct_study, "alternative", ["imaging.ct.when_mri_contraindicated"])
    else:
        if "metal_artefact" in inp.mri_contraindications and len(inp.mri_contraindications) == 1:
            b.add("ct-dual-energy", "first_line", urgency=urgency)
            b.add(ct_study, "alternative")
        else:
            b.add(ct_study, "first_line", urgency=urgency)
            if "metal_artefact" in inp.mri_contraindications:
                b.add("ct-dual-energy", "alternative")
        b.add("ct-myelography", "alternative")
    b.note("radiographs", b.kb.statement("imaging.radiograph.cannot_exclude").text, ["imaging.radiograph.cannot_exclude"])


def _known_lesion(b: _Builder, inp: PathwayInput, mri_ok: bool, contrast_ok: bool) -> None:
    purpose = inp.known_lesion_purpose
    if purpose == "characterise":
        if mri_ok:
            b.add("mri-region-wwo" if contrast_ok else "mri-region-wo", "first_line", ["imaging.mri.t1_stir_characterisation"])
        b.add("ct-region-wo", "first_line" if not mri_ok else "alternative", ["imaging.ct.osseous_integrity"])
    elif purpose == "stage":
        b.add("fdg-pet-ct", "first_line", ["imaging.pet.capabilities"])
        b.add("bone-scan", "alternative", ["nm.spect_ct_vs_planar"])
        b.add("ct-cap-with" if contrast_ok else "ct-region-wo", "additional")
    elif purpose == "plan_treatment":
        if mri_ok:
            b.add("mri-whole-spine-wwo" if contrast_ok else "mri-region-wo", "first_line", ["imaging.mri.compartment_localisation"])
        b.add("ct-region-wo", "first_line" if not mri_ok else "additional", ["imaging.ct.osseous_integrity"])
    elif purpose == "follow_up":
        b.add(None, "not_indicated", ["treatment.no_routine_imaging_after_palliation", "treatment.imaging_after_curative_treatment"])
