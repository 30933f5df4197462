"""Imaging pathway: from a clinical scenario to what to do now, what to image, how and how fast.

The rules below are named after the clinical situations and patient groups the
sources describe; each rule only *selects* knowledge-base items (studies in
``tables/imaging_studies.yaml``, ratings in ``tables/acr_ratings.yaml``, time
limits in ``tables/urgency_windows.yaml``, management steps in
``tables/mscc_actions.yaml``, staging in ``tables/staging_by_histology.yaml``,
groups and their thresholds in ``tables/patient_groups.yaml``, red flags and
statements); the wording and figures come from there.

Scenarios, in order of precedence:

* ``suspected_mscc``: neurological deficit, suspected cord or cauda equina
  compression in an adult -> management first (contact, steroids,
  positioning, analgesia), then whole-spine MRI, emergency (NICE 24 h, Dutch
  guideline 12 h, each with its source).
* ``paediatric_neurological``: the same in a child: emergency, paediatric
  teams, no adult time limits.
* ``paediatric_back_pain``: a child with back pain: ACR Back Pain-Child
  (no red flags: no imaging; red flags: radiographs, then MRI).
* ``suspected_osteoporotic_fracture``: no known cancer, spinal pain and only
  fracture risk factors -> ACR Low Back Pain variant 6, not the metastasis
  pathway.
* ``suspected_spinal_metastasis``: spinal pain with known cancer, unknown
  primary or a red flag -> MRI, urgent; when neurology is not stated, the
  emergency and the routine time limits are given each with its condition.
* ``suspected_spinal_infection``: spinal pain without cancer whose red flags point to infection (fever,
  immunosuppression, IV drug use) and not to malignancy -> MRI (ACR Suspected Spine Infection, ACR Low Back
  Pain variant 7), without the cancer risk-factor ladder.
* ``known_lesion``: a lesion already found, imaged for a purpose
  (characterise, stage, plan treatment, follow up, assess response).
* ``asymptomatic_surveillance``; ``low_back_pain_without_red_flags``.

Modifiers: pregnancy (no gadolinium, no ionising staging without the
trade-off), myeloma and other histologies (staging table; bone scan avoided
where it fails), kidney function (eGFR thresholds per contrast agent),
implanted devices (MR Conditional, MR Unsafe, legacy cardiac devices), MRI
contraindications, unknown primary (work-up before biopsy), treatment given
(response criteria, pseudoprogression, fracture after SBRT).  An input that
would change the recommendation and is missing makes the result
``insufficient_data`` naming it, with what holds either way.
"""

from __future__ import annotations

import functools
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from spinemets.knowledge.loader import KnowledgeBase, load_kb
from spinemets.knowledge.models import TableRow
from spinemets.results import Citer, Component, Result, trusted
from spinemets.validation import parse
from spinemets.wording import missing_in_words

STUDIES = "imaging_studies"
RATINGS = "acr_ratings"
WINDOWS = "urgency_windows"
RED_FLAGS = "red_flags"
GROUPS = "patient_groups"
ACTIONS = "mscc_actions"
STAGING = "staging_by_histology"
SITES = "primary_sites"
KIDNEY = "contrast_kidney"
CHILD_FLAGS = "paediatric_red_flags"

NeuroDeficit = Literal["motor_weakness", "sensory_level", "sphincter", "gait", "radicular"]
MriContraindication = Literal["non_mr_conditional_device", "claustrophobia", "metal_artefact", "metallic_foreign_body",
                             "reason_not_given"]
ContrastConcern = Literal["reduced_renal_function", "prior_gadolinium_reaction", "pregnancy"]
ImplantedDevice = Literal["none", "mr_safe", "mr_conditional", "mr_unsafe", "non_mr_conditional_cardiac", "labelling_unknown"]
Region = Literal["cervical", "thoracic", "lumbar", "sacral", "multiple"]
Purpose = Literal["characterise", "stage", "plan_treatment", "follow_up", "response_assessment"]
TreatmentGiven = Literal["sbrt", "conventional_radiotherapy", "surgery", "systemic"]
Role = Literal["first_line", "alternative", "additional", "staging", "staging_alternative", "not_indicated", "avoid"]
LATER = ("staging", "staging_alternative", "avoid")  # roles shown after the spine study
# ACR Low Back Pain variants rate lumbar imaging; they are not applied to cervical or thoracic pain.
THORACIC_VARIANTS = ("tbp_no_red_flags", "tbp_radiculopathy")  # ACR Thoracic Back Pain: thoracic spine orders only
LUMBAR_VARIANTS = ("suspected_cancer", "cauda_equina", "lbp_no_red_flags", "osteoporotic_fracture", "prior_surgery",
                   "after_medical_management")
# Regions outside the ACR Low Back Pain criteria, which are written for the lumbar spine.
NOT_LUMBAR = ("cervical", "thoracic")
URGENCY_ORDER = {"emergency": 0, "depends_on_neurology": 0, "urgent": 1, "routine": 2, "none": 3}
# Contrast-free equivalents of contrast MRI studies (pregnancy; gadolinium avoided).
UNENHANCED = {
    "mri-region-wwo": "mri-region-wo",
    "mri-whole-spine-wwo": "mri-whole-spine-wo",
    "mri-whole-spine-mscc": "mri-whole-spine-wo",
    "mri-complete-spine-wwo-child": "mri-complete-spine-wo-child",
}

# Clinical words for the scenarios (the machine-readable id stays in PathwayResult.scenario).
SCENARIO_LABELS = {
    "suspected_mscc": "suspected spinal cord or cauda equina compression",
    "paediatric_neurological": "child with neurological symptoms or signs",
    "paediatric_back_pain": "child or adolescent with back pain",
    "suspected_osteoporotic_fracture": "no known cancer, suspected osteoporotic or insufficiency fracture",
    "suspected_spinal_metastasis": "spinal pain with suspected metastasis",
    "suspected_myeloma": "spinal pain with suspected myeloma",
    "suspected_spinal_infection": "spinal pain with suspected infection, no known cancer",
    "known_lesion": "known lesion",
    "asymptomatic_surveillance": "surveillance without symptoms",
    "low_back_pain_without_red_flags": "spinal pain without red flags",
    "root_pain_after_medical_management": "back pain with root pain persisting after treatment, no known cancer",
    "back_pain_after_spinal_surgery": "back pain after spinal surgery with instrumentation, no known cancer",
    "undetermined": "not enough information to choose a pathway",
    "thoracic_radicular_pain": "thoracic back pain with radicular symptoms, no red flags",
    "thoracic_pain_after_surgery": "thoracic back pain after thoracic spine surgery, no red flags",
}

class PriorImaging(BaseModel):
    model_config = ConfigDict(extra="forbid")

    modality: Literal["radiograph", "ct", "mri", "bone_scan", "fdg_pet_ct", "spect_ct"]
    result: Literal["negative", "positive", "equivocal"]


class PathwayInput(BaseModel):
    """A clinical scenario.  Lists given as ``[]`` mean 'assessed, none'; ``None`` means not known."""

    model_config = ConfigDict(extra="forbid")

    age: int | None = Field(default=None, ge=0, le=120, description="years; under 18 uses the paediatric criteria")
    adult: bool | None = Field(default=None, description="yes: an adult whose age is not given (the adult doses and "
                                                         "time limits apply); must agree with the age when both are given")
    sex: Literal["female", "male"] | None = None
    pregnant: bool | None = Field(default=None, description="yes: unenhanced MRI first, no routine ionising staging")
    egfr: float | None = Field(default=None, ge=0, le=200, description="eGFR in mL/min/1.73 m²")
    on_dialysis: bool | None = None
    cancer_history: Literal["none", "current", "previous"] | None = Field(
        default=None, description="none; current (active) or previous (treated) cancer"
    )
    unknown_primary: bool | None = Field(default=None, description="malignancy suspected, no primary known")
    primary_site: str | None = Field(default=None, max_length=80, description="e.g. breast, prostate, kidney, myeloma")
    primary_bone_tumour_possible: bool | None = Field(default=None, description="findings could be a primary bone tumour")
    breast_her2_positive: bool | None = None
    breast_triple_negative: bool | None = None
    brain_symptoms: bool | None = Field(default=None, description="a new headache or another symptom suggesting "
                                        "brain involvement")
    spinal_hardware: bool | None = Field(default=None, description="spinal instrumentation (screws, rods) near the "
                                         "region: MRI is adapted; 'metal_artefact' among the MRI contraindications "
                                         "says MRI cannot show it")
    treatment_intent: Literal["curative", "palliative"] | None = None
    years_since_treatment: float | None = Field(default=None, ge=0, le=80)
    treatment_given: TreatmentGiven | None = Field(default=None, description="treatment of the spinal lesion")
    months_since_treatment: float | None = Field(default=None, ge=0, le=600)
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
    implanted_device: ImplantedDevice | None = Field(default=None, description="implant and its MR labelling")
    mri_contraindications: list[MriContraindication] = Field(default_factory=list)
    contrast_concerns: list[ContrastConcern] = Field(default_factory=list)
    prior_imaging: list[PriorImaging] = Field(default_factory=list)
    known_lesion_purpose: Purpose | None = Field(default=None, description="when a lesion is already known")

    @model_validator(mode="after")
    def _adult_agrees_with_age(self) -> "PathwayInput":
        if self.age is not None and self.adult is not None:
            threshold = group_threshold("child")
            if (self.age >= threshold) != self.adult:
                raise ValueError(f"age {self.age} and 'adult: {'yes' if self.adult else 'no'}' contradict each other "
                                 f"(adult means {threshold:g} years or older); give one of them")
        return self

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
    """One source's time limit, with the condition it applies to."""

    hours: int
    label: str
    level: Literal["emergency", "urgent"]
    condition: str
    source_label: str
    statement: str
    sources: list[str]
    refs: list[int]
    draft: bool = False


class Urgency(BaseModel):
    level: Literal["emergency", "depends_on_neurology", "urgent", "routine", "none"]
    windows: list[Window] = Field(default_factory=list, description="time limits, one per source and condition")

    @property
    def earliest_hours(self) -> int | None:
        return min((w.hours for w in self.windows), default=None)

    def describe(self) -> str:
        """The time limits in words, grouped by condition; never merged across conditions."""
        groups: dict[str, list[Window]] = {}
        for w in self.windows:
            groups.setdefault(w.condition, []).append(w)
        parts = []
        for condition, ws in groups.items():
            limits = ", ".join(f"{w.label} ({w.source_label}{', DRAFT' if w.draft else ''})" for w in ws)
            level = ws[0].level
            parts.append(f"{condition}: {level}, {limits}" if len(groups) > 1 else f"{level}, {limits}")
        return "; ".join(parts)


class Study(BaseModel):
    id: str
    modality: str
    region: str
    contrast: str
    label: str
    ionising: bool = False


class Recommendation(BaseModel):
    rank: int
    role: Role
    study: Study | None
    appropriateness: Literal["usually_appropriate", "may_be_appropriate", "usually_not_appropriate"] | None = None
    acr_variant: str | None = None
    urgency: Urgency | None = None
    rationale: list[str] = Field(default_factory=list)
    statements: list[str] = Field(default_factory=list)
    refs: list[int] = Field(default_factory=list)


class Action(BaseModel):
    """A management step that comes before (or instead of) imaging."""

    step: str
    label: str
    rationale: list[str] = Field(default_factory=list)
    statements: list[str] = Field(default_factory=list)
    refs: list[int] = Field(default_factory=list)


class PathwayResult(Result):
    instrument: str = "pathway"
    scenario: str
    patient_groups: list[str] = Field(default_factory=list, description="groups recognised (child, pregnancy, myeloma, ...)")
    imaging_indicated: bool | None
    acr_scenario: str | None = Field(default=None, description="the acr_ratings variant that applies to this scenario "
                                     "(None when no ACR Appropriateness Criteria variant in the knowledge base does)")
    urgency: Urgency | None = None
    actions: list[Action] = Field(default_factory=list, description="what to do now, before the imaging")
    recommendations: list[Recommendation] = Field(default_factory=list)
    workup: list[Action] = Field(default_factory=list, description="non-imaging work-up (tests, referral, biopsy)")
    understood: list[str] = Field(default_factory=list)

    @property
    def first_line(self) -> Recommendation | None:
        return next((r for r in self.recommendations if r.role == "first_line"), None)

    def extra_lines(self) -> list[str]:
        lines: list[str] = []
        if self.understood:
            lines.append("Understood: " + "; ".join(self.understood))
        if self.actions:
            lines.append("Now:")
            for i, a in enumerate(self.actions, 1):
                refs = f" [{','.join(map(str, a.refs))}]" if a.refs else ""
                lines.append(f"  {i}. {a.label}{refs}")
        if self.urgency and self.urgency.windows:
            lines.append("Imaging urgency: " + self.urgency.describe() + " (sources differ; each shown with its source)")
        spine = [r for r in self.recommendations if r.role not in LATER]
        later = [r for r in self.recommendations if r.role in LATER]
        for r in spine:
            lines.extend(_rec_lines(r))
        if self.workup:
            lines.append("Work-up:")
            for a in self.workup:
                refs = f" [{','.join(map(str, a.refs))}]" if a.refs else ""
                lines.append(f"  - {a.label}{refs}")
        if later:
            lines.append("Staging (after the spine study):")
            for r in later:
                lines.extend(_rec_lines(r))
        return lines


def _rec_lines(r: Recommendation) -> list[str]:
    name = r.study.label if r.study else "No imaging"
    rating = f" - ACR: {r.appropriateness.replace('_', ' ')}" if r.appropriateness else ""
    refs = f" [{','.join(map(str, r.refs))}]" if r.refs else ""
    lines = [f"  {r.rank}. [{r.role.replace('_', ' ')}] {name}{rating}{refs}"]
    lines.extend(f"       {why}" for why in r.rationale)
    return lines


class _Builder:
    """Collects recommendations and actions, citing every knowledge item it uses."""

    def __init__(self, kb: KnowledgeBase, cite: Citer, inp: PathwayInput) -> None:
        self.kb, self.cite, self.inp = kb, cite, inp
        self.recs: list[Recommendation] = []
        self.actions: list[Action] = []
        self.workup: list[Action] = []
        self.notices: list[Any] = []
        self.acr_variant: str | None = None

    def study(self, study_id: str) -> tuple[Study, TableRow]:
        row = self.kb.table(STUDIES).row(study_id)
        study = trusted(Study, None, id=row.id, modality=row["modality"], region=row["region"], contrast=row["contrast"],
                        label=row["label"], ionising=bool(row.get("ionising")))
        return study, row

    def has(self, study_id: str) -> bool:
        return any(r.study and r.study.id == study_id for r in self.recs)

    def add(self, study_id: str | None, role: str, statements: list[str] = (), urgency: Urgency | None = None,  # type: ignore[assignment]
            own: bool = True) -> None:
        """Add a study (or 'no imaging'); `own=False` leaves out the study's general statements, so that a
        rationale written for another patient group does not appear."""
        refs: list[int] = []
        study = None
        stmt_ids = list(statements)
        if study_id is not None:
            if self.has(study_id):
                return
            study, row = self.study(study_id)
            refs.extend(self.cite.cite_row(STUDIES, row))
            if own:
                stmt_ids = list(dict.fromkeys([*stmt_ids, *row["statements"]]))
        rationale = []
        for sid in stmt_ids:
            refs.extend(self.cite.cite_statement(sid))
            rationale.append(self.kb.statement(sid).text)
        appropriateness = acr = None
        lumbar_only = self.acr_variant in LUMBAR_VARIANTS and self.inp.pain_region in NOT_LUMBAR
        if study_id is not None and self.acr_variant is not None and not lumbar_only:
            rated = self.kb.table(RATINGS).where(variant=self.acr_variant, study=study_id)
            if rated:
                appropriateness, acr = rated[0]["appropriateness"], rated[0]["acr_variant"]
                refs.extend(self.cite.cite_row(RATINGS, rated[0]))
        self.recs.append(
            trusted(
                Recommendation, None, rank=len(self.recs) + 1, role=role, study=study, appropriateness=appropriateness,  # type: ignore[arg-type]
                acr_variant=acr, urgency=urgency, rationale=rationale, statements=stmt_ids, refs=sorted(set(refs)),
            )
        )

    def not_indicated(self, variant: str, statement: str, rated_studies: tuple[str, ...]) -> None:
        """'No imaging', with the ACR variant's 'usually not appropriate' ratings of the studies one might order."""
        self.acr_variant = variant
        self.add(None, "not_indicated", [statement])
        for sid in rated_studies:
            rated = self.kb.table(RATINGS).where(variant=variant, study=sid)
            if rated:
                self.note("acr_rating", f"{rated[0]['acr_variant']}: {self.study(sid)[0].label} is usually not appropriate.",
                          [f"{RATINGS}.{rated[0].id}"])

    def action(self, row: TableRow, target: list[Action] | None = None) -> None:
        refs = self.cite.cite_row(ACTIONS, row) if self.kb.table(ACTIONS).has_row(row.id) else []
        rationale = []
        for sid in row["statements"]:
            refs.extend(self.cite.cite_statement(sid))
            rationale.append(self.kb.statement(sid).text)
        (self.actions if target is None else target).append(
            trusted(Action, None, step=row["step"], label=row["label"], rationale=rationale,
                    statements=list(row["statements"]), refs=sorted(set(refs)))
        )

    def workup_item(self, label: str, statements: list[str]) -> None:
        refs: list[int] = []
        rationale = []
        for sid in statements:
            refs.extend(self.cite.cite_statement(sid))
            rationale.append(self.kb.statement(sid).text)
        self.workup.append(trusted(Action, None, step="work_up", label=label, rationale=rationale,
                                   statements=list(statements), refs=sorted(set(refs))))

    def note(self, code: str, message: str, statements: list[str]) -> None:
        self.notices.append(self.cite.notice(code, message, kb_items=statements))

    def note_statement(self, code: str, statement: str) -> None:
        self.note(code, self.kb.statement(statement).text, [statement])

    def windows(self, scenario: str) -> list[Window]:
        out = []
        for row in sorted(self.kb.table(WINDOWS).where(scenario=scenario), key=lambda r: r["hours"]):
            refs = self.cite.cite_row(WINDOWS, row) + self.cite.cite_statement(row["statement"])
            draft = row.is_draft or self.kb.statement(row["statement"]).is_draft
            out.append(Window(hours=row["hours"], label=row["label"], level=row["level"], condition=row["condition"],
                              source_label=row["source_label"], statement=row["statement"], sources=list(row.sources),
                              refs=sorted(set(refs)), draft=draft))
        return out


def group_threshold(group: str, kb: KnowledgeBase | None = None) -> float:
    """The number a patient-group rule uses (tables/patient_groups.yaml)."""
    value = (kb or load_kb()).table(GROUPS).row(group)["threshold"]
    return float(value)


@functools.lru_cache(maxsize=8)
def _site_patterns(kb: KnowledgeBase) -> tuple[tuple[str, re.Pattern[str], TableRow], ...]:
    """Each synonym of the primary_sites table with its whole-word pattern, compiled once per knowledge base."""
    return tuple((syn, re.compile(rf"(?<= ){re.escape(syn)}(?= )"), row)
                 for row in kb.table(SITES).rows for syn in row["synonyms"])


def primary_groups(site: str | None, kb: KnowledgeBase | None = None) -> list[TableRow]:
    """Every primary_sites row the free-text site names (whole words); a match inside a longer one does not count
    ('small cell lung' inside 'non-small cell lung'), so two rows mean the text names two different primaries."""
    if not site:
        return []
    return list(_primary_groups(kb or load_kb(), site))


@functools.lru_cache(maxsize=4096)
def _primary_groups(kb: KnowledgeBase, site: str) -> tuple[TableRow, ...]:
    """:func:`primary_groups`, once per knowledge base and site text (the pathway asks it several times a call)."""
    text = " " + re.sub(r"[^a-z0-9\-]+", " ", site.lower()) + " "
    spans = [(m.start(), m.end(), row) for syn, pattern, row in _site_patterns(kb) if syn in text
             for m in pattern.finditer(text)]
    kept = [s for s in spans if not any(o[0] <= s[0] and s[1] <= o[1] and o[1] - o[0] > s[1] - s[0] for o in spans)]
    out: list[TableRow] = []
    for _, _, row in sorted(kept, key=lambda s: s[0]):
        if all(r.id != row.id for r in out):
            out.append(row)
    return tuple(out)


def primary_group(site: str | None, kb: KnowledgeBase | None = None) -> TableRow | None:
    """The primary_sites row the free-text site names, or None (no match, or more than one primary named)."""
    rows = primary_groups(site, kb)
    return rows[0] if len(rows) == 1 else None


def _neuro(inp: PathwayInput) -> bool | None:
    """True with any deficit or suspected compression; None when not assessed at all."""
    signs = [bool(inp.neuro_deficits)] if inp.neuro_deficits is not None else []
    signs += [v for v in (inp.suspected_cord_compression, inp.suspected_cauda_equina) if v is not None]
    if any(signs):
        return True
    if inp.neuro_deficits is not None:
        return False
    return None


# The pathway input each kind of paediatric red flag reads (tables/paediatric_red_flags.yaml, column `input`).
CHILD_FLAG_FIELDS = {
    "age_under": "pathway.age", "night_pain": "pathway.night_pain", "pain_duration_weeks_over": "pathway.pain_duration_weeks",
    "pain_progressive": "pathway.pain_progressive", "neuro": "pathway.neuro_deficits", "red_flag": "pathway.red_flags",
    "known_cancer": "pathway.cancer_history",
}


def _child_flag_states(inp: PathwayInput, kb: KnowledgeBase, neuro: bool | None) -> list[tuple[TableRow, bool | None]]:
    """Each paediatric red flag with True (present), False (absent) or None (not stated)."""
    known = None if inp.cancer_history is None else inp.cancer_history in ("current", "previous")
    values: dict[str, Any] = {"night_pain": inp.night_pain, "pain_progressive": inp.pain_progressive, "neuro": neuro,
                              "known_cancer": known}
    out: list[tuple[TableRow, bool | None]] = []
    for row in kb.table(CHILD_FLAGS).rows:
        kind, value = row["input"], row["value"]
        state: bool | None
        if kind == "age_under":
            state = inp.age is not None and inp.age < value
        elif kind == "pain_duration_weeks_over":
            state = None if inp.pain_duration_weeks is None else inp.pain_duration_weeks > value
        elif kind == "red_flag":
            state = None if inp.red_flags is None else value in inp.red_flags
        else:
            state = values.get(kind)
        if not state and row.get("red_flag_also") in (inp.red_flags or []):
            state = True  # the same flag given among the red flags ('nocturnal pain' for night pain)
        out.append((row, state))
    return out


def _child_flags(inp: PathwayInput, kb: KnowledgeBase, neuro: bool | None) -> tuple[list[str], list[str]]:
    """(red flags present in words, red flags not stated in words) for a child's back pain."""
    states = _child_flag_states(inp, kb, neuro)
    return [r["label"] for r, v in states if v], [r["label"] for r, v in states if v is None]


def unknown_fields(kb: KnowledgeBase, inp: PathwayInput, neuro: bool | None) -> list[str]:
    """The inputs whose paediatric red flag is not stated."""
    return list(dict.fromkeys(CHILD_FLAG_FIELDS[r["input"]] for r, v in _child_flag_states(inp, kb, neuro) if v is None))


def _understood(inp: PathwayInput, kb: KnowledgeBase, groups: list[str]) -> list[str]:
    out = []
    if inp.age is not None:
        out.append(f"age {inp.age}")
    elif inp.adult is not None:
        out.append("adult, age not given" if inp.adult else "not an adult, age not given")
    if inp.sex:
        out.append(inp.sex)
    if inp.pregnant:
        out.append("pregnant")
    if inp.egfr is not None:
        out.append(f"eGFR {inp.egfr:g} mL/min/1.73 m²" + (" on dialysis" if inp.on_dialysis else ""))
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
    if inp.brain_symptoms:
        out.append("new headache or brain symptoms")
    if inp.spinal_hardware:
        out.append("spinal instrumentation")
    if inp.treatment_intent:
        out.append(f"treated with {inp.treatment_intent} intent")
    if inp.treatment_given:
        since = f", {inp.months_since_treatment:g} months ago" if inp.months_since_treatment is not None else ""
        out.append(f"treated with {inp.treatment_given.replace('_', ' ').replace('sbrt', 'SBRT')}{since}")
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
    if inp.implanted_device and inp.implanted_device != "none":
        out.append("implant: " + inp.implanted_device.replace("_", " ").replace("mr ", "MR "))
    if inp.mri_contraindications:
        out.append("MRI problem: " + ", ".join(_CONTRAINDICATION_WORDS.get(c, c.replace("_", " "))
                                               for c in inp.mri_contraindications))
    if inp.contrast_concerns:
        out.append("contrast concern: " + ", ".join(c.replace("_", " ") for c in inp.contrast_concerns))
    if inp.known_lesion_purpose:
        out.append(f"known lesion, purpose: {inp.known_lesion_purpose.replace('_', ' ')}")
    labels = {r.id: r["label"] for r in kb.table(GROUPS).rows}
    if groups:
        out.append("patient group: " + ", ".join(labels.get(g, g) for g in groups))
    return out


def recognised_groups(inp: PathwayInput, kb: KnowledgeBase) -> list[str]:
    """The patient groups a scenario belongs to (child, pregnancy, myeloma, renal impairment, implant, ...)."""
    site = primary_group(inp.primary_site, kb)
    groups: list[str] = []
    if inp.age is not None and inp.age < group_threshold("child", kb):
        groups.append("child")
    if bool(inp.pregnant) or "pregnancy" in inp.contrast_concerns:
        groups.append("pregnancy")
    if site is not None and site.id == "myeloma":
        groups.append("myeloma")
    if inp.egfr is not None or inp.on_dialysis or "reduced_renal_function" in inp.contrast_concerns:
        groups.append("renal_impairment")
    if inp.implanted_device not in (None, "none"):
        groups.append("implant")
    if inp.unknown_primary:
        groups.append("unknown_primary")
    if inp.treatment_given or inp.known_lesion_purpose == "response_assessment":
        groups.append("after_treatment")
    return groups


def pathway(data: PathwayInput | dict[str, Any], kb: KnowledgeBase | None = None) -> PathwayResult:
    """Recommend what to do and what to image for a clinical scenario; see the module docstring."""
    kb = kb or load_kb()
    inp = parse(PathwayInput, data, "pathway")
    cite = Citer(kb)
    b = _Builder(kb, cite, inp)
    missing: list[str] = []

    named = primary_groups(inp.primary_site, kb)
    site = named[0] if len(named) == 1 else None
    if len(named) > 1:
        # Two primaries in one answer: staging, steroid advice and the studies to avoid differ by histology.
        missing.append("pathway.primary_site")
        b.note("primary_site_ambiguous",
               f"The primary site names more than one tumour ({', '.join(r['label'] for r in named)}): staging, the "
               "steroid advice and the studies to avoid differ by histology, so none is applied. State the primary "
               "the spinal lesion is thought to come from.", ["myeloma.no_bone_scan"])
    histology = site.id if site else ("other" if inp.primary_site and not named else None)
    haematological = site is not None and site["group"] == "haematological"
    cancer = inp.cancer_history in ("current", "previous") or bool(inp.unknown_primary)
    known_cancer = inp.cancer_history in ("current", "previous")
    no_cancer = inp.cancer_history == "none" and not inp.unknown_primary
    # Root pain or a one-sided root deficit alone, in a patient without cancer and without suspected cord or cauda
    # equina compression, is a back-pain presentation (ACR low back pain, with or without radiculopathy), not the
    # cord-compression emergency, which the sources write for patients with cancer or with signs of compression.
    flag_groups_given = {r.id: r["group"] for r in kb.table(RED_FLAGS).rows}
    serious_flag = any(flag_groups_given.get(f) in ("malignancy", "infection") for f in inp.red_flags or [])
    # ... unless a malignancy or infection flag comes with it (root signs with fever: think of an epidural abscess).
    root_only = no_cancer and _radicular_only(inp) and not serious_flag
    neuro = False if root_only else _neuro(inp)
    pain = True if root_only and inp.spinal_pain is None else inp.spinal_pain
    # a patient stated not to be an adult is a child even without the age (the paediatric criteria, the age asked)
    child = inp.age < group_threshold("child", kb) if inp.age is not None else inp.adult is False
    flags = inp.red_flags
    symptomatic = bool(pain) or bool(neuro)
    pregnant = bool(inp.pregnant) or "pregnancy" in inp.contrast_concerns
    # Claustrophobia alone does not make MRI impossible: an open scanner or sedation usually gets the study done,
    # so MRI stays first and CT is the alternative (notes below).
    mri_ok = not (set(inp.mri_contraindications) - {"claustrophobia"}) and inp.implanted_device != "mr_unsafe"
    contrast_ok = not (set(inp.contrast_concerns) - {"reduced_renal_function"}) and not pregnant
    if "reduced_renal_function" in inp.contrast_concerns and inp.egfr is None and not inp.on_dialysis:
        contrast_ok = False
    flag_groups = {r.id: r["group"] for r in kb.table(RED_FLAGS).rows}
    # Fracture risk factors without a malignancy or infection flag (pain-pattern flags do not decide it).
    fracture_only = any(flag_groups[f] == "fracture" for f in flags or []) and not any(
        flag_groups[f] in ("malignancy", "infection") for f in flags or [])
    groups = recognised_groups(inp, kb)
    urgency: Urgency | None = None
    indicated: bool | None = True

    if neuro and child:
        scenario = "paediatric_neurological"
        urgency = Urgency(level="emergency")
        _mscc_actions(b, "neuro_child", inp, haematological, histology, mri_ok)
        if mri_ok:
            b.add(UNENHANCED["mri-complete-spine-wwo-child"] if not contrast_ok else "mri-complete-spine-wwo-child",
                  "first_line", ["child.neuroblastoma_recovery"], urgency=urgency, own=False)
        else:
            b.add("ct-whole-spine-with" if contrast_ok else "ct-whole-spine-wo", "first_line", urgency=urgency)
            b.add("ct-myelography", "alternative", ["implant.ct_myelography_when_mri_impossible"], own=False)
        b.note_statement("child_differential", "child.differential")
    elif neuro:
        scenario = "suspected_mscc"
        b.acr_variant = "cauda_equina" if inp.suspected_cauda_equina else "myelopathy"
        if no_cancer:
            # The cancer guidelines' time limits are for compression by cancer; suspected cauda equina syndrome
            # without cancer has its own national standard, and lumbar MRI (ACR Low Back Pain variant 4).
            ces = bool(inp.suspected_cauda_equina) and not inp.suspected_cord_compression
            urgency = Urgency(level="emergency", windows=b.windows("ces_no_cancer") if ces else [])
            _mscc_actions(b, "neuro_no_cancer", inp, haematological, histology, mri_ok)
            b.note_statement("cancer_limits_not_applied", "timing.no_cancer_compression_no_cancer_limits")
            if ces:
                _spine_imaging(b, "mri-region-wo", urgency, mri_ok, contrast_ok, inp,
                               first_statements=["imaging.acr.lbp_v4_cauda_equina", "timing.ces.no_cancer_4_hours"])
            else:
                _spine_imaging(b, "mri-whole-spine-mscc", urgency, mri_ok, contrast_ok, inp)
        else:
            urgency = Urgency(level="emergency", windows=_neuro_windows(b, inp))
            if inp.cancer_history is None and not inp.unknown_primary:
                missing.append("pathway.cancer_history")
            if inp.age is None and not inp.adult:
                # The steroid dose and time limits below are adult ones; a child is managed by the paediatric teams.
                missing.append("pathway.age")
                b.note_statement("age_unknown", "child.adult_pathway_not_applicable")
            _mscc_actions(b, "neuro_adult", inp, haematological, histology, mri_ok)
            _spine_imaging(b, "mri-whole-spine-mscc", urgency, mri_ok, contrast_ok, inp)
            b.note_statement("timing_differs", "timing.caveat.sources_differ")
    elif child and (pain or inp.known_lesion_purpose is None):
        scenario = "paediatric_back_pain"
        present, unknown = _child_flags(inp, kb, True if root_only else neuro)
        b.note_statement("adult_pathway", "child.adult_pathway_not_applicable")
        if pain is None:
            missing.append("pathway.spinal_pain")
            indicated = None
        elif present and known_cancer:
            b.acr_variant = "child_red_flags"
            b.note("child_red_flags", "Red flags present: " + "; ".join(present) + ".",
                   [f"{CHILD_FLAGS}.{r.id}" for r in kb.table(CHILD_FLAGS).rows if r["label"] in present])
            if mri_ok:
                b.add("mri-complete-spine-wwo-child" if contrast_ok else "mri-complete-spine-wo-child", "first_line",
                      ["child.known_cancer_back_pain"], own=False)
            else:
                b.add("ct-whole-spine-with" if contrast_ok else "ct-whole-spine-wo", "first_line")
            b.add("radiograph-area-child", "alternative", ["child.acr_red_flags"], own=False)
            b.note_statement("child_differential", "child.differential")
        elif present:
            b.acr_variant = "child_red_flags"  # the paediatric criteria give no time limit; adult limits do not apply
            b.note("child_red_flags", "Red flags present: " + "; ".join(present) + ".", [f"{CHILD_FLAGS}.{r.id}" for r in kb.table(CHILD_FLAGS).rows if r["label"] in present])
            if mri_ok:
                b.add("radiograph-area-child", "first_line")
                b.add(UNENHANCED["mri-complete-spine-wwo-child"] if not contrast_ok else "mri-complete-spine-wwo-child",
                      "alternative")
                if contrast_ok:
                    b.add("mri-complete-spine-wo-child", "alternative")
            else:
                b.add("radiograph-area-child", "first_line")
                b.add("ct-region-wo", "alternative", ["imaging.ct.when_mri_contraindicated"])
            b.note_statement("child_differential", "child.differential")
        elif unknown:
            indicated = None
            missing.extend(unknown_fields(kb, inp, neuro))
            b.note("child_flags_unknown", "Not stated, and any of them would call for imaging: " + "; ".join(unknown) + ".",
                   ["child.red_flags"])
        else:
            indicated = False
            urgency = Urgency(level="none")
            b.not_indicated("child_no_red_flags", "child.acr_no_red_flags", ("radiograph-area-child", "mri-complete-spine-wwo-child"))
    elif pain and fracture_only and inp.cancer_history == "none" and not inp.unknown_primary:
        scenario = "suspected_osteoporotic_fracture"
        fracture_seen = any(p.result == "positive" and p.modality in ("radiograph", "ct") for p in inp.prior_imaging)
        b.acr_variant = "vcf_no_cancer" if fracture_seen else "osteoporotic_fracture"  # no time limit in the sources
        if neuro is None:
            missing.append("pathway.neuro_deficits")
        lumbar_rule = not fracture_seen and inp.pain_region not in NOT_LUMBAR
        first_statements = ["fracture.acr_lbp_variant6"] if lumbar_rule else ["fracture.acr_vcf_no_cancer"]
        if fracture_seen and mri_ok:
            b.add("mri-region-wo", "first_line", first_statements, own=False)
            b.add("ct-region-wo", "alternative", first_statements, own=False)
        elif mri_ok:
            b.add("radiograph", "first_line", first_statements, own=False)
            b.add("mri-region-wo", "alternative", first_statements, own=False)
            b.add("ct-region-wo", "alternative", first_statements, own=False)
        elif fracture_seen:
            # The fracture is already shown and MRI is impossible: CT characterises it (ACR VCF variant 1).
            b.add("ct-region-wo", "first_line", first_statements, own=False)
            b.add("bone-scan", "alternative", first_statements, own=False)
        else:
            b.add("radiograph", "first_line", first_statements, own=False)
            b.add("ct-region-wo", "alternative", first_statements, own=False)
        b.note_statement("not_metastasis_pathway", "fracture.metastasis_workup_when_flags")
        if inp.age is None or inp.age >= group_threshold("osteoporotic_fracture", kb):
            b.note_statement("consider_myeloma", "fracture.consider_myeloma")
        groups.append("osteoporotic_fracture")
    elif pain and flags is not None and fracture_only and inp.cancer_history is None and not inp.unknown_primary:
        scenario = "undetermined"
        indicated = None
        missing.append("pathway.cancer_history")
        b.note("cancer_history_decides",
               "With only fracture risk factors, a patient without cancer follows the osteoporotic-fracture criteria "
               "and a patient with cancer the metastasis pathway: the cancer history decides.",
               ["fracture.metastasis_workup_when_flags"])
    elif pain and not cancer and inp.cancer_history == "none" and flags == ["radicular_treatment_failure"] \
            and not inp.spinal_hardware and (neuro is False or root_only) and inp.pain_region not in NOT_LUMBAR:
        # Root pain that persists despite treatment is ACR variant 3 (a candidate for surgery or an intervention
        # after 6 weeks of medical management): MRI without contrast, not the work-up for a metastasis.
        scenario = "root_pain_after_medical_management"
        urgency = Urgency(level="routine")
        b.acr_variant = "after_medical_management"
        _spine_imaging(b, "mri-region-wo", urgency, mri_ok, contrast_ok, inp,
                       first_statements=["imaging.acr.lbp_v3_after_medical_management"])
        for study in ("radiograph", "ct-region-wo"):
            b.add(study, "alternative", ["imaging.acr.lbp_v3_after_medical_management"], own=False)
        if neuro is None:
            missing.append("pathway.neuro_deficits")
        b.note_statement("severe_deficit", "redflags.acp.immediate_mri")
    elif pain and (cancer or flags):
        scenario = "suspected_spinal_metastasis"
        b.acr_variant = "suspected_cancer"
        myeloma_suspected = not cancer and "suspected_myeloma" in flags
        # Without cancer, infection flags and no malignancy flag: the question is infection (ACR Suspected Spine
        # Infection), not the cancer risk-factor ladder.
        infection_only = not cancer and any(flag_groups[f] == "infection" for f in flags) and not any(
            flag_groups[f] == "malignancy" for f in flags)
        if infection_only:
            scenario = "suspected_spinal_infection"
        if not cancer and any(flag_groups[f] == "infection" for f in flags):
            urgency = Urgency(level="urgent")  # ACP/APS: image at once with risk factors for spinal infection
            b.note_statement("infection_image_now", "redflags.acp.immediate_mri")
        if not cancer:
            # The time limits for suspected spinal metastases were written for people with cancer.
            if neuro is None:
                missing.append("pathway.neuro_deficits")
            if inp.cancer_history is None:
                # A known cancer would change the extent (whole spine) and bring the time limits: ask, do not assume.
                missing.append("pathway.cancer_history")
                b.note("cancer_history_decides",
                       "The cancer history is not stated. With a known cancer: "
                       + kb.statement("imaging.mri.whole_spine_high_suspicion").text,
                       ["imaging.mri.whole_spine_high_suspicion"])
            if not myeloma_suspected and not infection_only:  # the myeloma work-up replaces the ladder
                b.note_statement("no_cancer_flags", "fracture.nocancer_weaker_flags_acp")
                if inp.age is None or inp.age >= group_threshold("osteoporotic_fracture", kb):
                    b.note_statement("consider_myeloma", "fracture.consider_myeloma")
        elif neuro is None:
            missing.append("pathway.neuro_deficits")
            urgency = Urgency(level="depends_on_neurology",
                              windows=sorted(b.windows("neuro") + b.windows("neuro_mescc"), key=lambda w: w.hours)
                              + b.windows("no_neuro"))
        else:
            urgency = Urgency(level="urgent", windows=b.windows("no_neuro"))
        if known_cancer and neuro is False:
            _mscc_actions(b, "no_neuro_cancer", inp, haematological, histology)
        elif known_cancer:
            b.note_statement("neurology_decides", "redflags.nice.neurology_immediate")
        if myeloma_suspected:
            scenario = "suspected_myeloma"
            _suspected_myeloma(b, mri_ok, pregnant)
        else:
            first = "mri-whole-spine-wwo" if cancer else "mri-region-wwo"
            _spine_imaging(b, first, urgency, mri_ok, contrast_ok, inp,
                           first_statements=["imaging.acr.spine_infection"] if infection_only else None)
        if cancer:
            b.note_statement("timing_differs", "timing.caveat.sources_differ")
    elif inp.known_lesion_purpose is not None:
        scenario = "known_lesion"
        urgency = Urgency(level="routine")
        indicated = _known_lesion(b, inp, mri_ok, contrast_ok, histology, missing)
        if indicated is not True:
            urgency = Urgency(level="none") if indicated is False else None
    elif inp.asymptomatic_surveillance and not symptomatic:
        scenario = "asymptomatic_surveillance"
        urgency = Urgency(level="none")
        breast = histology == "breast"
        if pain is None or neuro is None:
            missing.extend(f for f, v in (("pathway.spinal_pain", pain), ("pathway.neuro_deficits", neuro)) if v is None)
        if breast and inp.treatment_intent == "curative":
            indicated = False
            b.not_indicated("breast_stage1_asymptomatic", "breast.surveillance.no_routine_imaging", ("bone-scan", "fdg-pet-ct"))
        elif breast and inp.treatment_intent is None:
            indicated = None
            missing.append("pathway.treatment_intent")
        else:
            indicated = None
            b.note("no_recommendation",
                   "The knowledge base holds a surveillance recommendation only for breast cancer treated with curative "
                   "intent (ASCO); for this scenario it has none. Follow the oncology team's protocol.",
                   ["breast.surveillance.no_routine_imaging"])
    elif pain and not cancer and flags == [] and inp.cancer_history == "none" and neuro is False and inp.spinal_hardware \
            and inp.pain_region not in NOT_LUMBAR:
        # Prior surgery is its own ACR variant (5): new or worsening pain after it is imaged, red flags or not.
        scenario = "back_pain_after_spinal_surgery"
        urgency = Urgency(level="routine")
        b.acr_variant = "prior_surgery"
        _spine_imaging(b, "mri-region-wwo", urgency, mri_ok, contrast_ok, inp,
                       first_statements=["imaging.acr.lbp_v5_prior_surgery"])
        b.add("radiograph", "alternative", ["imaging.acr.lbp_v5_prior_surgery"], own=False)
        b.add("ct-region-wo", "alternative", ["imaging.acr.lbp_v5_prior_surgery"], own=False)
        if root_only:
            b.note_statement("severe_deficit", "redflags.acp.immediate_mri")
    elif pain and not cancer and flags == [] and inp.cancer_history == "none" and neuro is False:
        scenario = "low_back_pain_without_red_flags"
        if inp.age is None and inp.adult is None:
            # "No imaging" holds for adults: a child's back pain has red flags of its own (age, night pain,
            # duration), so without the age the answer is not given.
            indicated = None
            missing.append("pathway.age")
            b.note_statement("age_unknown", "child.adult_pathway_not_applicable")
        elif inp.pain_region == "thoracic" and inp.spinal_hardware:
            # ACR's Thoracic Back Pain criteria rate prior thoracic spine surgery separately (a variant the knowledge
            # base does not hold): no answer rather than the "no imaging" of pain without surgery.
            scenario = "thoracic_pain_after_surgery"
            indicated = None
            b.note_statement("thoracic_surgery_not_covered", "imaging.acr.tbp_prior_surgery_not_held")
        elif inp.pain_region == "thoracic" and root_only:
            scenario = "thoracic_radicular_pain"
            indicated = True
            urgency = Urgency(level="routine")
            b.acr_variant = "tbp_radiculopathy"
            _spine_imaging(b, "mri-region-wo", urgency, mri_ok, contrast_ok, inp,
                           first_statements=["imaging.acr.tbp_radiculopathy"])
            b.add("radiograph", "alternative", ["imaging.acr.tbp_radiculopathy"], own=False)
        elif inp.pain_region == "thoracic":
            indicated = False
            urgency = Urgency(level="none")
            b.acr_variant = "tbp_no_red_flags"
            b.add(None, "not_indicated", ["imaging.acr.tbp_no_red_flags"])
        else:
            indicated = False
            urgency = Urgency(level="none")
            b.acr_variant = "lbp_no_red_flags"
            b.add(None, "not_indicated", ["imaging.acr.lbp_no_red_flags"])
        if root_only and scenario == "low_back_pain_without_red_flags":
            _root_pain_notes(b)
    elif root_only and flags is None:
        # No cancer, root symptoms only, red flags not assessed: the red flags decide between no imaging and MRI.
        scenario = "undetermined"
        indicated = None
        missing.append("pathway.red_flags")
        _root_pain_notes(b, flags_unknown=True)
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
        if known_cancer and neuro is False and not haematological and not inp.brain_symptoms:
            # Whatever the missing inputs decide about imaging, a patient with a solid cancer and no neurological
            # symptoms or signs gets no routine steroids: that step is certain and is said. (Not in a haematological
            # cancer, where steroids follow a confirmed spinal involvement, nor with brain symptoms.)
            _mscc_actions(b, "no_neuro_cancer", inp, haematological, histology, steps={"steroids"})

    # Work-up and staging follow the spine study.
    if scenario in ("suspected_mscc", "suspected_spinal_metastasis", "paediatric_neurological"):
        if inp.unknown_primary:
            _unknown_primary(b, inp, urgency, missing)
        if known_cancer and histology is not None and not child:
            _staging(b, histology, inp, neuro, missing)
        elif known_cancer and histology is None and not child and len(named) < 2:
            b.note("staging_histology",
                   "Staging depends on the primary tumour, which is not stated: the studies differ by histology "
                   "(for example PSMA PET/CT in prostate cancer, no bone scan in myeloma).", ["myeloma.no_bone_scan"])
    if histology == "myeloma" and scenario != "known_lesion":
        b.note_statement("myeloma_no_bone_scan", "myeloma.no_bone_scan")
    if inp.treatment_given == "sbrt" and scenario in ("suspected_mscc", "suspected_spinal_metastasis"):
        _after_sbrt(b, inp, missing)

    if "claustrophobia" in inp.mri_contraindications and mri_ok:
        _claustrophobia_notes(b, urgency, child, no_cancer, contrast_ok)
    if inp.brain_symptoms and not b.has("brain-mri-with") and not b.has("ct-head-with"):
        # The input was given: say what it changes (nothing held here for this patient) rather than drop it.
        b.note_statement("brain_symptoms_no_rule", "imaging.brain_symptoms_no_rule")
    _modifiers(b, inp, scenario, pregnant, missing)

    for prior in inp.prior_imaging:
        if prior.modality == "radiograph" and prior.result == "negative" and scenario not in (
                "low_back_pain_without_red_flags", "paediatric_back_pain"):
            b.note_statement("radiograph_not_enough", "imaging.radiograph.cannot_exclude")
            break
    if any(p.modality == "bone_scan" and p.result == "negative" for p in inp.prior_imaging) and indicated is not False:
        # A negative bone scan does not settle it: never in myeloma (no bone-forming response), and not for purely
        # lytic, slowly remodelling or avascular deposits in any cancer.
        b.note_statement("bone_scan_not_enough",
                         "myeloma.no_bone_scan" if histology == "myeloma" or scenario == "suspected_myeloma"
                         else "nm.bone_scan_false_negatives")

    if scenario == "paediatric_back_pain" and inp.age is None and "pathway.age" not in missing:
        missing.append("pathway.age")  # a child stated without the age: the criteria include being under 5
        if indicated is False:
            indicated = None
    status = "insufficient_data" if missing else "complete"
    summary = _summary(b, scenario, indicated, urgency, missing, kb)
    components = [Component(name="scenario", value=SCENARIO_LABELS.get(scenario, scenario))]
    return trusted(
        PathwayResult, None,
        status=status,
        summary=summary,
        scenario=scenario,
        patient_groups=list(dict.fromkeys(groups)),
        imaging_indicated=indicated,
        acr_scenario=None if b.acr_variant in LUMBAR_VARIANTS and inp.pain_region in NOT_LUMBAR else b.acr_variant,
        urgency=urgency,
        actions=b.actions,
        recommendations=b.recs,
        workup=b.workup,
        understood=_understood(inp, kb, list(dict.fromkeys(groups))),
        components=components,
        missing=list(dict.fromkeys(missing)),
        notices=b.notices,
        **cite.common(),  # type: ignore[arg-type]
    )


def _summary(b: _Builder, scenario: str, indicated: bool | None, urgency: Urgency | None, missing: list[str],
             kb: KnowledgeBase) -> str:
    first = next((r for r in b.recs if r.role == "first_line"), None)
    if indicated is False:
        text = "imaging not indicated"
    elif first is not None and first.study is not None:
        studies = first_line_label(b.recs)
        when = ""
        if urgency is not None:
            headline = [w for w in urgency.windows if not w.draft]
            shown = Urgency(level=urgency.level, windows=headline)
            when = f"; {shown.describe()}" if headline else f"; {urgency.level.replace('_', ' ')}"
        text = f"{studies}{when}"
    else:
        text = "no recommendation"
    if b.actions and scenario in ("suspected_mscc", "paediatric_neurological"):
        # The emergency leads even when an input is missing; what is missing follows.
        what = "cauda equina" if b.acr_variant == "cauda_equina" and not b.inp.suspected_cord_compression else \
            "spinal cord"
        text = f"Suspected {what} compression, emergency. Now: " + " ".join(a.label for a in b.actions[:2]) + \
            f" Imaging: {text}"
        if missing:
            text += ". Insufficient data for the rest: missing " + ", ".join(missing_in_words(list(dict.fromkeys(missing))))
        return text
    if missing:
        either = "; holds either way: "
        if "pathway.implanted_device" in missing:
            either = "; if MRI is possible: "
        elif "pathway.cancer_history" in missing and scenario == "suspected_spinal_metastasis":
            either = "; without a cancer history: "
        elif any(n.code == "red_flags_decide" for n in b.notices):
            # Root pain without cancer: no red flag means no initial imaging; it is not the compression emergency.
            text = "imaging not indicated"
            either = "; without red flags: "
        if first is None and b.actions and indicated is None and either == "; holds either way: ":
            text = " ".join(a.label for a in b.actions)  # no study yet, but a step that holds whatever is missing
            text = text[:1].lower() + text[1:]
        text = "insufficient data: missing " + ", ".join(missing_in_words(list(dict.fromkeys(missing)))) + \
            (either + text if first or b.actions or either == "; without red flags: " else "")
    return text


def _mscc_actions(b: _Builder, situation: str, inp: PathwayInput, haematological: bool, histology: str | None,
                  mri_ok: bool = True, steps: set[str] | None = None) -> None:
    """The management steps for the situation, in the table's order (only the named steps when ``steps`` is given)."""
    known = inp.cancer_history in ("current", "previous")
    wanted = {situation, "any"}
    if situation == "neuro_adult":
        if inp.neuro_deficits == []:
            # Compression suspected but the examination found no deficit: the no-neurology steroid advice applies.
            wanted.add("haematological_no_neuro" if haematological and known else "no_neuro_steroids")
            if histology is None and not known:
                wanted.add("unproven_no_deficit")
        else:
            aged = inp.age is not None or bool(inp.adult)
            solid = "solid_or_unknown_neuro" if aged else "solid_or_unknown_neuro_age_unknown"
            wanted.add(("haematological" if aged else "haematological_age_unknown") if haematological and known else solid)
    skip_steroids = situation == "no_neuro_cancer" and haematological
    if skip_steroids:
        wanted.add("haematological_no_neuro")  # NG234: steroids in haematological malignancy with or without neurology
    conditional = _mri_conditional_on_implant(inp)
    imaging = "impossible" if not mri_ok else ("conditional" if conditional else "possible")
    for row in sorted(b.kb.table(ACTIONS).rows, key=lambda r: r["order"]):
        when = row["when"]
        if when == "no_neuro_cancer" and row["step"] == "steroids" and "no_neuro_steroids" in wanted:
            when = "no_neuro_steroids"
        if when not in wanted:
            continue
        if skip_steroids and row["step"] == "steroids" and row["when"] == "no_neuro_cancer":
            continue
        if row.get("when_mri") not in (None, imaging):
            continue
        if steps is not None and row["step"] not in steps:
            continue
        b.action(row)


def _mri_conditional_on_implant(inp: PathwayInput) -> bool:
    """MRI is possible only once the implant allows it: labelling unknown, or a non-MR-Conditional cardiac device."""
    return inp.implanted_device in ("labelling_unknown", "non_mr_conditional_cardiac")


def _radicular_only(inp: PathwayInput) -> bool:
    """Root symptoms (radicular pain or a one-sided root deficit) are the only neurology, and neither cord nor
    cauda equina compression is suspected."""
    return inp.neuro_deficits == ["radicular"] and not inp.suspected_cord_compression \
        and not inp.suspected_cauda_equina


def _root_pain_notes(b: _Builder, flags_unknown: bool = False) -> None:
    """Root pain without cancer: why it is not the cord-compression pathway, and when imaging does come in."""
    if flags_unknown:
        b.note_statement("red_flags_decide", "imaging.acr.lbp_no_red_flags")
        b.note_statement("red_flags_cancer_infection", "imaging.acr.lbp_v7_usually_appropriate")
    b.note_statement("root_pain_not_mscc", "imaging.acr.radicular_without_cancer_not_mscc")
    b.note_statement("severe_deficit", "redflags.acp.immediate_mri")
    b.note_statement("after_medical_management", "imaging.acr.lbp_v3_after_medical_management")
    if b.inp.suspected_cauda_equina is None:
        # sciatica is where cauda equina syndrome is missed: when it was not stated either way, what applies if it is
        b.note_statement("if_cauda_equina", "timing.ces.no_cancer_4_hours")


def _neuro_windows(b: _Builder, inp: PathwayInput) -> list[Window]:
    """NICE's limit for any neurology; the Dutch grading by what the neurology is."""
    dutch = b.windows("radicular") if _radicular_only(inp) else b.windows("neuro_mescc")
    return sorted(b.windows("neuro") + dutch, key=lambda w: w.hours)


def _spine_imaging(b: _Builder, mri_study: str, urgency: Urgency, mri_ok: bool, contrast_ok: bool, inp: PathwayInput,
                   first_statements: list[str] | None = None) -> None:
    """First-line spine study and its alternatives, honouring MRI and contrast problems and implants;
    *first_statements* replace the first-line MRI's general rationale (written for another situation)."""
    if not contrast_ok:
        mri_study = UNENHANCED.get(mri_study, mri_study)
    ct_study = "ct-region-with" if contrast_ok else "ct-region-wo"
    conditional = _mri_conditional_on_implant(inp)
    uncertain = conditional or "claustrophobia" in inp.mri_contraindications
    if (not mri_ok or uncertain) and b.kb.table(STUDIES).row(mri_study)["region"] == "whole_spine":
        # MRI impossible, or possible only once the implant or the patient's tolerance allows it: CT must still cover
        # the whole spine (compression is often at several levels).
        ct_study = "ct-whole-spine-with" if contrast_ok else "ct-whole-spine-wo"
    if mri_ok:
        if first_statements is None:
            b.add(mri_study, "first_line", urgency=urgency)
        else:
            b.add(mri_study, "first_line", first_statements, urgency=urgency, own=False)
        # The alternatives' general rationale is written for suspected metastasis; another situation (cauda
        # equina or infection without cancer) keeps its own statements for them too.
        own = first_statements is None
        if mri_study not in ("mri-region-wwo", "mri-complete-spine-wwo-child") and contrast_ok:
            b.add("mri-region-wwo", "alternative", list(first_statements or []), own=own)
        if contrast_ok:
            b.add("mri-region-wo", "alternative", ["contrast.caveat.not_always_needed", *(first_statements or [])],
                  own=own)
        b.add(ct_study, "alternative", ["imaging.ct.when_mri_contraindicated"])
    else:
        if set(inp.mri_contraindications) - {"claustrophobia"} == {"metal_artefact"} \
                and inp.implanted_device != "mr_unsafe":  # claustrophobia does not change the CT chosen
            b.add("ct-dual-energy", "first_line", urgency=urgency)
            b.add(ct_study, "alternative")
        else:
            b.add(ct_study, "first_line", urgency=urgency)
            if "metallic_foreign_body" in inp.mri_contraindications:
                b.note_statement("metal_fragment", "implant.metal_fragment_screen")
            if "claustrophobia" in inp.mri_contraindications:  # with another reason MRI is impossible
                b.note_statement("claustrophobia_options", "mri.claustrophobia_not_a_bar")
            if "metal_artefact" in inp.mri_contraindications:
                b.add("ct-dual-energy", "alternative")
        b.add("ct-myelography", "alternative", ["implant.ct_myelography_when_mri_impossible"])
    if b.acr_variant not in ("prior_surgery", "after_medical_management"):  # radiographs are rated there
        b.note_statement("radiographs", "imaging.radiograph.cannot_exclude")


def _claustrophobia_notes(b: _Builder, urgency: Urgency | None, child: bool, no_cancer: bool,
                          contrast_ok: bool) -> None:
    """Claustrophobia with MRI still possible: CT stays among the alternatives (if MRI still fails), the ways
    through the MRI (an open scanner; sedation, from adult figures), and in suspected compression by cancer that
    they must fit NICE's time limit (other emergencies keep their own limit, shown with them)."""
    mri = [r for r in b.recs if r.study is not None and r.study.modality == "mri"]
    if not mri:
        return
    if not any(r.study is not None and r.study.modality in ("ct", "ct_myelography") for r in b.recs):
        whole = any(r.study.region == "whole_spine" for r in mri if r.study is not None)
        ct = ("ct-whole-spine-" if whole else "ct-region-") + ("with" if contrast_ok else "wo")
        b.add(ct, "alternative", ["imaging.ct.when_mri_contraindicated"])
    b.note_statement("claustrophobia_options", "mri.claustrophobia_not_a_bar")
    if not child:  # the sedation figures are from adults; children are sedated under their own protocols
        b.note_statement("claustrophobia_sedation", "mri.sedation_for_anxiety")
    if urgency is not None and urgency.level == "emergency" and not child and not no_cancer:
        b.note_statement("claustrophobia_no_delay", "mri.no_delay_in_mscc")


# How an MRI contraindication reads in the case summary (the others read as their own words).
_CONTRAINDICATION_WORDS = {
    "non_mr_conditional_device": "device that is not MR Conditional",
    "metallic_foreign_body": "metal fragment in the eye or orbit",
    "reason_not_given": "MRI not possible (reason not given)",
}


# The condition an implant puts on a first-line MRI, keyed by the statement that leads its rationale.
_MRI_CONDITIONS = {
    "implant.identify_before_mri": "once the implant is identified and its MR labelling allows it (otherwise CT)",
    "implant.legacy_cardiac_protocol_only": "under a cardiac-device protocol in a centre that provides it "
                                            "(otherwise CT)",
}


def first_line_label(recommendations: list[Recommendation]) -> str:
    """The first-line studies in words, joined by 'or' when sources put different studies first; an MRI an implant
    puts a condition on says it."""
    labels = []
    for r in recommendations:
        if r.role == "first_line" and r.study is not None:
            condition = next((_MRI_CONDITIONS[s] for s in r.statements if s in _MRI_CONDITIONS), None)
            labels.append(f"{r.study.label}, {condition}" if condition else r.study.label)
    return " or ".join([*labels[:1], *(x[0].lower() + x[1:] if x[1:2].islower() else x for x in labels[1:])])


def _suspected_myeloma(b: _Builder, mri_ok: bool, pregnant: bool = False) -> None:
    """Spinal pain with suspected (not proven) myeloma: whole-body cross-sectional imaging, each guideline's first
    test shown (IMWG whole-body low-dose CT, NICE whole-body MRI), never a bone scan, and the blood and urine tests.
    In pregnancy whole-body MRI (no ionising radiation) comes first and the low-dose CT is an alternative with its
    trade-off."""
    if pregnant and mri_ok:
        b.add("wb-mri-myeloma", "first_line", ["myeloma.nice_wbmri_first", "pregnancy.mri_preferred"], own=False)
        b.add("wbldct", "alternative", ["myeloma.imwg_wbldct_first", "pregnancy.ionising_trade_off"], own=False)
    else:
        trade_off = ["pregnancy.ionising_trade_off"] if pregnant else []
        b.add("wbldct", "first_line", ["myeloma.imwg_wbldct_first", *trade_off], own=False)
        if mri_ok:
            b.add("wb-mri-myeloma", "first_line", ["myeloma.nice_wbmri_first"], own=False)
    b.add("bone-scan", "avoid", ["myeloma.no_bone_scan"], own=False)
    b.workup_item("Serum protein electrophoresis, serum free light chains and urine Bence Jones protein.",
                  ["fracture.consider_myeloma"])
    b.note_statement("myeloma_cord_compression", "myeloma.cord_compression_mri")


def _staging(b: _Builder, histology: str, inp: PathwayInput, neuro: bool | None, missing: list[str]) -> None:
    """Histology-specific staging after the spine study; studies the sources advise against are shown as such."""
    rows = b.kb.table(STAGING).where(histology=histology)
    site = b.kb.table(SITES).row(histology) if histology in {r.id for r in b.kb.table(SITES).rows} else None
    if not rows and site is not None and site.get("staging_note"):
        # The sources give this primary its own staging (uveal melanoma): say so; no generic set is offered.
        b.note_statement("staging_own_guideline", str(site["staging_note"]))
        return
    if not rows and site is not None and site["group"] == "haematological":
        b.note_statement("staging_haematology", "staging.haematological_by_team")
        return
    rows = rows or b.kb.table(STAGING).where(histology="other")
    order = {"staging": 0, "alternative": 1, "avoid": 2}

    def row_role(row: TableRow) -> str:
        """The row's role for this patient: some differ below an age (whole-body MRI for the young in melanoma)."""
        young = row.get("under_age") is not None and inp.age is not None and inp.age < row["under_age"]
        return str(row["role_under_age"] if young else row["role"])

    for row in sorted(rows, key=lambda r: order[row_role(r)]):
        role = {"staging": "staging", "alternative": "staging_alternative", "avoid": "avoid"}[row_role(row)]
        b.cite.cite_row(STAGING, row)
        b.add(row["study"], role, list(row["statements"]), own=False)  # only this histology's rationale
    if histology == "breast":
        if inp.breast_her2_positive and inp.brain_symptoms:
            # ASCO 2022 (HER2-positive): a low threshold for brain MRI with any symptom suggesting brain involvement.
            b.add("brain-mri-with", "additional", ["breast.her2_brain_mri_low_threshold"], own=False)
        elif (inp.breast_her2_positive or inp.breast_triple_negative) and neuro:
            b.add("brain-mri-with", "additional")
        elif neuro and inp.breast_her2_positive is None and inp.breast_triple_negative is None:
            missing.append("pathway.breast_her2_positive or pathway.breast_triple_negative")


def _unknown_primary(b: _Builder, inp: PathwayInput, urgency: Urgency | None, missing: list[str]) -> None:
    b.add("ct-full-body", "additional", urgency=urgency)
    b.workup_item("Before biopsy: history and examination, blood tests, a myeloma screen when the lesions are "
                  "lytic, and PSA in men", ["unknown_primary.initial_workup"])
    if inp.primary_bone_tumour_possible:
        b.workup_item("Refer to a bone sarcoma centre before any biopsy", ["unknown_primary.sarcoma_centre_first"])
    elif inp.primary_bone_tumour_possible is None:
        missing.append("pathway.primary_bone_tumour_possible")
        b.workup_item("If a primary bone tumour is possible, refer to a bone sarcoma centre before any biopsy",
                      ["unknown_primary.sarcoma_centre_first"])
        b.add("ct-guided-biopsy", "additional", ["unknown_primary.sarcoma_centre_first", "unknown_primary.biopsy_yield"],
              urgency=urgency)
    if inp.primary_bone_tumour_possible is False:
        b.add("ct-guided-biopsy", "additional", ["unknown_primary.biopsy_yield"], urgency=urgency)


def _modifiers(b: _Builder, inp: PathwayInput, scenario: str, pregnant: bool, missing: list[str]) -> None:
    """Pregnancy, kidney function, implants and contrast concerns, applied to the studies chosen."""
    imaging = [r for r in b.recs if r.study is not None]
    if pregnant and imaging:
        b.note_statement("pregnancy_mri", "pregnancy.mri_preferred")
        b.note_statement("pregnancy_gadolinium", "pregnancy.gadolinium_only_if_essential")
        for r in imaging:
            assert r.study is not None
            if r.role == "avoid":  # advised against for its histology already; no trade-off to weigh
                continue
            if r.study.ionising:
                _lead(b, r, ["pregnancy.ionising_trade_off"])
                if r.role == "staging":
                    r.role = "staging_alternative"  # behind the unenhanced whole-body MRI
            elif r.study.modality == "mri" and r.study.contrast in ("with", "without_and_with"):
                _lead(b, r, ["pregnancy.gadolinium_only_if_essential"])
        first = next((r for r in imaging if r.role == "first_line"), None)
        stage_first = scenario == "known_lesion" and inp.known_lesion_purpose == "stage"
        if stage_first and first is not None and first.study is not None and first.study.ionising:
            # Staging a known lesion in pregnancy: the unenhanced whole-body MRI is the first study (the histology's
            # own when it has one), the ionising one its alternative with the trade-off.
            first.role = "alternative"
            own = next((r for r in imaging if _unenhanced_whole_body_mri(r.study)), None)
            if own is not None:
                own.role = "first_line"
            else:
                b.add("wb-mri-dwi", "first_line")
        staging = [r for r in imaging if r.role in LATER and r.role != "avoid"]
        if staging or stage_first:
            # An unenhanced whole-body MRI leads the staging section (the histology's own when it has one, as in
            # myeloma); ionising studies follow with their trade-off.
            if not any(_unenhanced_whole_body_mri(r.study) for r in b.recs):
                b.add("wb-mri-dwi", "staging")
            b.recs.sort(key=lambda r: (r.role in LATER, r.role == "avoid",
                                       not _unenhanced_whole_body_mri(r.study), r.rank))
            for i, r in enumerate(b.recs, 1):
                r.rank = i
    uses_gbca = any(r.study and r.study.modality == "mri" and r.study.contrast in ("with", "without_and_with") for r in imaging)
    uses_iodinated = any(r.study and r.study.modality in ("ct",) and r.study.contrast in ("with", "without_and_with")
                         for r in imaging)
    site = primary_group(inp.primary_site, b.kb)
    if uses_iodinated and site is not None and site.id == "myeloma":
        b.note_statement("myeloma_contrast", "myeloma.iodinated_contrast")
    if (inp.egfr is not None or inp.on_dialysis) and (uses_gbca or uses_iodinated):
        for row in b.kb.table(KIDNEY).rows:
            relevant = (row["agent"] == "gadolinium" and uses_gbca) or (row["agent"] == "iodinated" and uses_iodinated)
            # Maintenance dialysis is kidney failure: every threshold applies.
            below = bool(inp.on_dialysis) or (inp.egfr is not None and inp.egfr < row["below_egfr"])
            if relevant and below:
                b.note("kidney_" + row["agent"], b.kb.statement(row["statement"]).text,
                       [f"{KIDNEY}.{row.id}", row["statement"]])
    elif "reduced_renal_function" in inp.contrast_concerns and inp.egfr is None and imaging:
        missing.append("pathway.egfr")
        b.note("kidney_unknown",
               "Kidney function is flagged but the eGFR is not given: contrast advice depends on it, so the spine "
               "studies are listed without contrast until it is known, and a contrast study that has no unenhanced "
               "equivalent opens with the kidney advice.",
               ["contrast.kidney.gbca_group2", "contrast.kidney.iodinated_high_risk"])
        # A contrast study kept because it has no unenhanced equivalent (staging CT, brain MRI) leads with the rule.
        for r in imaging:
            assert r.study is not None
            if r.study.contrast in ("with", "without_and_with") and r.role != "avoid":
                agent = "contrast.kidney.gbca_group2" if r.study.modality == "mri" else "contrast.kidney.iodinated_high_risk"
                _lead(b, r, [agent])
    if "prior_gadolinium_reaction" in inp.contrast_concerns:
        # No source gives criteria after a reaction; a gadolinium study still listed says so first.
        for r in imaging:
            assert r.study is not None
            if r.study.modality == "mri" and r.study.contrast in ("with", "without_and_with") and r.role != "avoid":
                _lead(b, r, ["contrast.caveat.safety_not_covered"])
    if inp.spinal_hardware and imaging and "metal_artefact" not in inp.mri_contraindications:
        # Instrumentation: the MRI is adapted (STIR) and CT with artefact reduction follows if the region stays hidden.
        firsts = [r for r in imaging if r.role == "first_line" and r.study is not None and r.study.modality == "mri"]
        for r in firsts:
            _lead(b, r, ["imaging.instrumentation_adapt_mri"])
        if firsts:
            b.add("ct-dual-energy", "alternative", ["imaging.instrumentation_adapt_mri"], own=False)
    device = inp.implanted_device
    if device == "mr_conditional" and imaging:
        b.note_statement("implant_conditional", "implant.mr_conditional")
    elif device == "non_mr_conditional_cardiac" and imaging:
        b.note_statement("implant_legacy", "implant.legacy_cardiac_devices")
        _lead_mri(b, imaging, "implant.legacy_cardiac_protocol_only")
    elif device == "mr_unsafe" and imaging:
        b.note_statement("implant_unsafe", "implant.ct_myelography_when_mri_impossible")
    elif device == "labelling_unknown" and imaging:
        missing.append("pathway.implanted_device")
        b.note("implant_unknown", "The implant's MR labelling is not known: MRI is possible for an MR Conditional "
               "device within its conditions and not for an MR Unsafe one.", ["implant.mr_conditional"])
        _lead_mri(b, imaging, "implant.identify_before_mri")
    if inp.contrast_concerns and set(inp.contrast_concerns) - {"reduced_renal_function", "pregnancy"} and scenario not in (
            "low_back_pain_without_red_flags", "asymptomatic_surveillance"):
        b.note_statement("contrast", "contrast.caveat.safety_not_covered")


def _unenhanced_whole_body_mri(study: Study | None) -> bool:
    return study is not None and study.modality == "mri" and study.region == "whole_body" and study.contrast == "without"


def _after_sbrt(b: _Builder, inp: PathwayInput, missing: list[str]) -> None:
    """Pseudoprogression within the window after SBRT, and fracture after SBRT."""
    if inp.months_since_treatment is None:
        missing.append("pathway.months_since_treatment")
        b.note_statement("pseudoprogression", "after_treatment.pseudoprogression")
    elif inp.months_since_treatment <= group_threshold("after_treatment", b.kb):
        b.note_statement("pseudoprogression", "after_treatment.pseudoprogression")
    b.note_statement("vcf_after_sbrt", "after_treatment.vcf_after_sbrt")


def _lead_mri(b: _Builder, imaging: list[Recommendation], statement: str) -> None:
    """Every MRI study listed (not one advised against) opens with the implant's condition for it."""
    for r in imaging:
        if r.study is not None and r.study.modality == "mri" and r.role != "avoid":
            _lead(b, r, [statement])


def _lead(b: _Builder, r: Recommendation, statements: list[str]) -> None:
    """Put statements first in a recommendation's rationale (for example a pregnancy trade-off)."""
    new = [s for s in statements if s not in r.statements]
    for sid in new:
        r.refs = sorted(set(r.refs) | set(b.cite.cite_statement(sid)))
    r.rationale = [b.kb.statement(s).text for s in new] + r.rationale
    r.statements = new + r.statements


def _known_lesion(b: _Builder, inp: PathwayInput, mri_ok: bool, contrast_ok: bool, histology: str | None,
                  missing: list[str]) -> bool | None:
    """The studies for a known lesion's purpose; returns whether imaging is indicated (None: it depends on a
    missing input)."""
    purpose = inp.known_lesion_purpose
    mri = "mri-region-wwo" if contrast_ok else "mri-region-wo"
    if purpose == "characterise":
        if mri_ok:
            b.add(mri, "first_line", ["imaging.mri.t1_stir_characterisation"])
        b.add("ct-region-wo", "first_line" if not mri_ok else "alternative", ["imaging.ct.osseous_integrity"])
    elif purpose == "stage":
        if histology is not None:
            _staging(b, histology, inp, None, missing)
            first = next((r for r in b.recs if r.role == "staging"), None)
            if first is not None:
                first.role = "first_line"
        else:
            b.add("fdg-pet-ct", "first_line", ["imaging.pet.capabilities"])
            b.add("bone-scan", "alternative", ["nm.spect_ct_vs_planar"])
            b.add("ct-cap-with" if contrast_ok else "ct-region-wo", "additional")
            if "pathway.primary_site" not in missing:  # two primaries named: their own notice says so
                b.note("staging_histology",
                       "Staging depends on the primary tumour, which is not stated: for example PSMA PET/CT in "
                       "prostate cancer and no bone scan in myeloma.", ["myeloma.no_bone_scan", "staging.prostate.psma"])
    elif purpose == "plan_treatment":
        if mri_ok:
            b.add("mri-whole-spine-wwo" if contrast_ok else "mri-whole-spine-wo", "first_line",
                  ["imaging.mri.compartment_localisation"])
        b.add("ct-region-wo", "first_line" if not mri_ok else "additional", ["imaging.ct.osseous_integrity"])
    elif purpose == "response_assessment" or (purpose == "follow_up" and inp.treatment_given):
        if mri_ok:
            b.add(mri, "first_line", ["after_treatment.response_criteria"])
        else:
            b.add("ct-region-wo", "first_line", ["after_treatment.response_criteria"])
        if inp.treatment_given == "sbrt":
            _after_sbrt(b, inp, missing)
    elif inp.treatment_intent == "palliative":  # follow-up, no treatment of the lesion stated
        b.add(None, "not_indicated", ["treatment.no_routine_imaging_after_palliation"])
        return False
    elif inp.treatment_intent == "curative":
        b.add(mri if mri_ok else "ct-region-wo", "first_line", ["treatment.imaging_after_curative_treatment"], own=False)
    else:
        # Follow-up depends on the aim of treatment: none after palliation without new symptoms, regular after
        # curative treatment.
        missing.append("pathway.treatment_intent")
        for sid in ("treatment.no_routine_imaging_after_palliation", "treatment.imaging_after_curative_treatment"):
            b.note_statement("follow_up_intent", sid)
        return None
    return True
