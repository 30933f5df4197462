"""Likely primary tumours for a metastatic lesion pattern (lytic, blastic, mixed, lytic-expansile).

The primaries are the rows of ``tables/primaries_by_lesion_type.yaml`` for the pattern, each with its own
sources, typical-pattern note and the other patterns the same primary is listed under; a row's
``see_also`` statements (source disagreements on myeloma, neuroblastoma and gastrointestinal cancers,
lung histology, treatment effects) are shown with their sources.  Myeloma is listed as lytic only; a
blastic pattern carries the note that sclerotic myeloma is rare (and one review's contrary listing).  Tracer notes (bone scan versus FDG-PET
for lytic and blastic deposits) come from ``statements/nuclear_medicine.yaml``; treatment notes from
``statements/treatment.yaml`` and the treatment-effect statements of ``statements/primaries.yaml`` and
``statements/ct.yaml``; the SINS bone-lesion points of the pattern from ``tables/sins_points.yaml``
(whose aliases, such as sclerotic and osteoblastic, are accepted here).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from spinemets.knowledge.loader import KnowledgeBase, load_kb
from spinemets.results import Citer, Component, Notice, Result
from spinemets.validation import parse

TABLE = "primaries_by_lesion_type"
SINS_POINTS = "sins_points"
UNKNOWN = {"unknown", "indeterminate", "not_assessed", ""}


class LesionType(StrEnum):
    lytic = "lytic"
    blastic = "blastic"
    mixed = "mixed"
    lytic_expansile = "lytic_expansile"


# Spellings of the expansile pattern (the other patterns take their aliases from the SINS table).
EXPANSILE_ALIASES = ("expansile", "expansile_lytic", "lytic_and_expansile", "expansile_osteolytic", "osteolytic_expansile")
# The SINS bone-lesion category of each pattern: an expansile lytic lesion is lytic.
SINS_LESION = {LesionType.lytic: "lytic", LesionType.lytic_expansile: "lytic",
               LesionType.blastic: "blastic", LesionType.mixed: "mixed"}

# Statements this module applies.
WEAK_GUIDE = "primaries.mineralisation_poor_guide"
TRACER_NOTES: dict[LesionType, tuple[str, ...]] = {
    LesionType.lytic: ("nm.fdg_lytic_vs_blastic", "nm.tracer_choice_by_lesion_type", "nm.bone_scan_false_negatives"),
    LesionType.lytic_expansile: ("nm.fdg_lytic_vs_blastic", "nm.tracer_choice_by_lesion_type", "nm.bone_scan_false_negatives"),
    LesionType.blastic: ("nm.fdg_lytic_vs_blastic", "nm.tracer_choice_by_lesion_type"),
    LesionType.mixed: ("nm.fdg_lytic_vs_blastic", "nm.tracer_choice_by_lesion_type"),
}
INSTABILITY = "treatment.instability_indication"
TREATMENT_EFFECT = ("primaries.treated_lytic_become_sclerotic", "ct.osteoblastic_flare")
TREATMENT_NOTES: dict[LesionType, tuple[str, ...]] = {
    LesionType.lytic: (INSTABILITY,),
    LesionType.lytic_expansile: (INSTABILITY,),
    LesionType.blastic: (INSTABILITY, *TREATMENT_EFFECT),
    LesionType.mixed: (INSTABILITY, *TREATMENT_EFFECT),
}
# Myeloma is listed as lytic only; a sclerotic pattern gets the note that sclerotic myeloma is rare.
MYELOMA_NOTE = "primaries.myeloma_pattern_disagreement"
DIFFERENTIAL_NOTES: dict[LesionType, tuple[str, ...]] = {
    LesionType.blastic: (MYELOMA_NOTE, "ddx.bone_island", "ct.enostosis_thresholds_untreated_only"),
}
DISAGREEMENT_TOPIC = "source-disagreement"


def _norm(text: str) -> str:
    return text.strip().lower().replace("-", "_").replace(" ", "_").replace("/", "_")


@functools.lru_cache(maxsize=8)
def _aliases(kb: KnowledgeBase) -> dict[str, LesionType]:
    out: dict[str, LesionType] = {}
    for row in kb.table(SINS_POINTS).where(component="lesion"):
        for spelling in [row["value"], *(row.get("aliases") or [])]:
            out[_norm(str(spelling))] = LesionType(row["value"])
    for spelling in (LesionType.lytic_expansile.value, *EXPANSILE_ALIASES):
        out[_norm(spelling)] = LesionType.lytic_expansile
    return out


def normalise(value: Any, kb: KnowledgeBase | None = None) -> LesionType | None:
    """The pattern for a user's spelling (sclerotic, osteoblastic, osteolytic, expansile...); None when unknown."""
    if value is None:
        return None
    if isinstance(value, LesionType):
        return value
    allowed = ", ".join(repr(t.value) for t in LesionType)
    if not isinstance(value, str):
        raise ValueError(f"expected text, got {value!r}; allowed values: {allowed}")
    key = _norm(value)
    if key in UNKNOWN:
        return None
    found = _aliases(kb or load_kb()).get(key)
    if found is None:
        raise ValueError(
            f"{value!r} is not allowed; allowed values: {allowed} (also sclerotic, osteoblastic, osteolytic, "
            "expansile) or 'unknown'"
        )
    return found


class PrimariesInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lesion_type: LesionType | None = Field(
        default=None, description="lytic, blastic (sclerotic, osteoblastic), mixed or lytic_expansile"
    )

    @field_validator("lesion_type", mode="before")
    @classmethod
    def _lesion_type(cls, v: Any) -> LesionType | None:
        return normalise(v)


class PrimaryEntry(BaseModel):
    primary: str
    frequency_note: str | None = None
    note: str | None = None
    also_listed_as: list[str] = Field(default_factory=list, description="other patterns the same primary is listed under")
    kb_item: str
    verification: str
    sources: list[str] = Field(default_factory=list)
    refs: list[int] = Field(default_factory=list)


class KbNote(BaseModel):
    """A statement shown as advice next to the list, with its references."""

    statement: str
    text: str
    refs: list[int] = Field(default_factory=list)


class PrimariesResult(Result):
    instrument: str = "primaries"
    lesion_type: LesionType | None = None
    primaries: list[PrimaryEntry] = Field(default_factory=list)
    tracer_notes: list[KbNote] = Field(default_factory=list)
    treatment_notes: list[KbNote] = Field(default_factory=list)

    def extra_lines(self) -> list[str]:
        lines = []
        for p in self.primaries:
            parts = [p.primary]
            if p.frequency_note:
                parts.append(_lower_first(p.frequency_note.rstrip(".")))
            if p.also_listed_as and "also listed as" not in (p.frequency_note or "").lower():  # the note may say it already
                parts.append("also listed as " + ", ".join(t.replace("_", "-") for t in p.also_listed_as))
            flag = "" if p.verification == "verified" else " (secondary sources only)"
            lines.append(f"  - {': '.join(parts[:2])}" + "".join(f"; {x}" for x in parts[2:]) + flag + _refs(p.refs))
        return lines

    def closing_lines(self) -> list[str]:
        lines: list[str] = []
        for title, notes in (("Tracer choice", self.tracer_notes), ("Treatment and follow-up", self.treatment_notes)):
            if notes:
                if lines:
                    lines.append("")
                lines.append(f"{title}:")
                lines.extend(f"  - {n.text}{_refs(n.refs)}" for n in notes)
        return lines


def _lower_first(text: str) -> str:
    """'The commonest source' -> 'the commonest source', leaving acronyms and names ('NSCLC', 'Named') alone."""
    first = text.split(" ", 1)[0]
    return text[0].lower() + text[1:] if first in ("The", "A", "An", "Usually", "Often", "Tends", "Also", "In") else text


def _refs(numbers: list[int]) -> str:
    return f" [{','.join(map(str, numbers))}]" if numbers else ""


def likely_primaries(data: PrimariesInput | Mapping[str, Any] | None, kb: KnowledgeBase | None = None) -> PrimariesResult:
    """Primary tumours behind a lesion pattern, with tracer and treatment notes; see the module docstring."""
    kb = kb or load_kb()
    inp = parse(PrimariesInput, data, "primaries")
    cite = Citer(kb)
    if inp.lesion_type is None:
        return PrimariesResult(
            status="insufficient_data",
            summary="insufficient data: give the lesion pattern (lytic, blastic, mixed or lytic_expansile)",
            missing=["primaries.lesion_type"],
            **cite.common(),  # type: ignore[arg-type]
        )
    kind = inp.lesion_type
    table = kb.table(TABLE)
    rows = table.where(lesion_type=kind.value)
    listed: dict[str, list[str]] = {}
    for r in table.rows:
        listed.setdefault(str(r["primary"]), []).append(str(r["lesion_type"]))

    entries = []
    see_also: list[str] = []
    for row in rows:
        entries.append(PrimaryEntry(
            primary=str(row["primary"]), frequency_note=row.get("frequency_note"), note=row.note,
            also_listed_as=[t for t in dict.fromkeys(listed[str(row["primary"])]) if t != kind.value],
            kb_item=f"{TABLE}.{row.id}", verification=row.verification.value, sources=list(row.sources),
            refs=cite.cite_row(TABLE, row),
        ))
        see_also.extend(s for s in row.get("see_also") or [] if s not in see_also)

    sins_row = next(r for r in kb.table(SINS_POINTS).where(component="lesion") if r["value"] == SINS_LESION[kind])
    components = [
        Component(name="lesion_type", value=kind.value, label=kind.value.replace("_", "-")),
        cite.component("sins_bone_lesion", SINS_POINTS, sins_row, value=str(sins_row["value"]),
                       label=str(sins_row["label"]), points=int(sins_row["points"]),
                       note="the SINS bone-lesion item for this pattern"),
    ]
    treatment_ids = list(TREATMENT_NOTES[kind])
    notices: list[Notice] = [cite.notice("weak_guide", kb.statement(WEAK_GUIDE).text, kb_items=[WEAK_GUIDE])]
    for sid in see_also:
        if sid in TREATMENT_EFFECT:
            if sid not in treatment_ids:
                treatment_ids.append(sid)
            continue
        st = kb.statement(sid)
        code = "sources_differ" if DISAGREEMENT_TOPIC in st.topics else "note"
        notices.append(cite.notice(code, st.text, kb_items=[sid]))
    for sid in DIFFERENTIAL_NOTES.get(kind, ()):
        if sid in see_also:
            continue
        code = "sources_differ" if DISAGREEMENT_TOPIC in kb.statement(sid).topics else "differential"
        notices.append(cite.notice(code, kb.statement(sid).text, kb_items=[sid]))
    if kind is LesionType.blastic:
        notices.append(cite.notice(
            "quantitative",
            "For an untreated sclerotic lesion, measure its mean and maximum CT attenuation (HU) and compare them "
            "with the published bone-island cut-offs in the quantitative interpretation.",
        ))

    tracer = [KbNote(statement=s, text=kb.statement(s).text, refs=cite.cite_statement(s)) for s in TRACER_NOTES[kind]]
    treatment = [KbNote(statement=s, text=kb.statement(s).text, refs=cite.cite_statement(s)) for s in treatment_ids]

    result = PrimariesResult(
        status="complete",
        summary=(
            f"{kind.value.replace('_', '-')} pattern: {len(entries)} primaries listed by the sources "
            "(the pattern is only a weak guide to the primary)"
        ),
        components=components,
        notices=notices,
        lesion_type=kind,
        primaries=entries,
        tracer_notes=tracer,
        treatment_notes=treatment,
        **cite.common(),  # type: ignore[arg-type]
    )
    return result.model_copy(update=cite.common())
