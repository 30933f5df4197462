"""Quantitative MRI and CT measurements against every published cut-off, side by side.

Measures: chemical shift (in-phase and opposed-phase signal intensities, from which the signal intensity
ratio ``SIR = OP / IP`` and the signal drop ``(IP - OP) / IP x 100`` are computed; or ``sir`` or
``drop_percent`` given directly), Dixon fat fraction (%), ADC (x10^-3 mm2/s), and CT mean and maximum
attenuation (HU) of a sclerotic lesion.  Each value is compared with every row of
``tables/quantitative_cutoffs.yaml`` for its measure (a chemical-shift value with both the SIR and the
drop rows, since they are the same measurement): which side of the cut-off it falls on, with the
sensitivity, specificity, AUC or accuracy the source reports, its population, field strength and caveats.
No single verdict is formed, because the cut-offs come from different techniques and populations; where
the given treatment state differs from the lesions a cut-off was derived in (the table's
``lesion_treatment`` column), the row is marked not applicable.  Caveat statements come from
``statements/quantitative.yaml`` and ``statements/ct.yaml``.

Before any comparison each value is checked against the range it can take at all
(``tables/quantitative_ranges.yaml``: a ratio of magnitudes is not negative, a fat fraction lies within
0-100%, CT numbers within the 12-bit scale, ...); a value outside it is an error naming the field and
the range, never a classification.  An SIR computed from the two intensities is held to the SIR's range.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from spinemets.errors import ContradictoryInputError, InvalidInputError
from spinemets.knowledge.loader import KnowledgeBase, load_kb
from spinemets.knowledge.models import TableRow
from spinemets.results import Citer, Component, Notice, Result
from spinemets.validation import parse

TABLE = "quantitative_cutoffs"
RANGES = "quantitative_ranges"  # the range each measurement can take; checked before any comparison
SIR = "chemical_shift_sir"
DROP = "chemical_shift_drop_percent"
FAT = "dixon_fat_fraction_percent"
ADC = "adc"
CT_MEAN = "ct_mean_hu"
CT_MAX = "ct_max_hu"
MEASURES = (SIR, DROP, FAT, ADC, CT_MEAN, CT_MAX)
SIR_FIELD, DROP_FIELD = "sir", "drop_percent"  # input fields of the chemical-shift measures
LABELS = {
    SIR: "chemical-shift SIR",
    DROP: "chemical-shift signal drop",
    FAT: "Dixon fat fraction",
    ADC: "ADC",
    CT_MEAN: "CT mean attenuation",
    CT_MAX: "CT maximum attenuation",
}
UNITS = {SIR: "", DROP: "%", FAT: "%", ADC: " x10^-3 mm2/s", CT_MEAN: " HU", CT_MAX: " HU"}
SYMBOLS = {"below": "<", "at_or_below": "<=", "above": ">", "at_or_above": ">="}
PRECISION = 9  # decimals kept before comparing, so that 1 - 0.8 lands on 0.2 and not 0.19999999999999996
# Two spellings of one chemical-shift measurement agree if their SIRs differ by less than this
# (rounding to two decimals); arithmetic, not a clinical threshold.
AGREEMENT = 0.005
# ADC is asked for in x10^-3 mm2/s; a value this large is almost surely in x10^-6 mm2/s (a factor of 1000
# off).  A units guard, not a clinical cut-off.
ADC_UNIT_GUARD = 100.0

# Statements this module applies, per group of measures.
DEFINITIONS = "quant.chemical_shift.definitions"
CAVEATS: dict[str, tuple[str, ...]] = {
    "chemical_shift": ("quant.chemical_shift.cutoffs_differ", "quant.chemical_shift.treatment_degrades"),
    "dixon": ("quant.dixon.thresholds_differ",),
    "adc": ("quant.adc.sequence_dependent",),
    "ct": ("quant.ct.azar_limits",),
}
TREATED_CT = ("ct.enostosis_thresholds_untreated_only", "quant.ct.treated_lesions_sclerose")
GROUP = {SIR: "chemical_shift", DROP: "chemical_shift", FAT: "dixon", ADC: "adc", CT_MEAN: "ct", CT_MAX: "ct"}
UNTREATED = "untreated"
TREATMENT_WORDS = {"mixed": "treated and untreated"}


class QuantitativeInput(BaseModel):
    """Measurements of one lesion; give any of them.

    The range each measurement can take (``tables/quantitative_ranges.yaml``) is checked by
    :func:`quantitative` against the knowledge base it is given, and shown in the JSON Schema.
    """

    model_config = ConfigDict(extra="forbid", json_schema_extra=lambda schema: _schema_ranges(schema))

    in_phase: float | None = Field(default=None, gt=0, allow_inf_nan=False,
                                   description="in-phase signal intensity of the lesion (any unit, same ROI as opposed_phase)")
    opposed_phase: float | None = Field(default=None, ge=0, allow_inf_nan=False,
                                        description="opposed-phase signal intensity of the lesion")
    sir: float | None = Field(default=None, allow_inf_nan=False,
                              description="signal intensity ratio, opposed-phase / in-phase")
    drop_percent: float | None = Field(default=None, allow_inf_nan=False,
                                       description="signal drop on opposed-phase, % of in-phase")
    dixon_fat_fraction_percent: float | None = Field(default=None, allow_inf_nan=False, description="%")
    adc: float | None = Field(default=None, allow_inf_nan=False, description="x10^-3 mm2/s")
    ct_mean_hu: float | None = Field(default=None, allow_inf_nan=False, description="HU")
    ct_max_hu: float | None = Field(default=None, allow_inf_nan=False, description="HU")
    treated: bool | None = Field(default=None, description="the lesion has been treated (radiotherapy, systemic therapy)")

    @field_validator("in_phase", "opposed_phase", "sir", "drop_percent", "dixon_fat_fraction_percent", "adc",
                     "ct_mean_hu", "ct_max_hu", mode="before")
    @classmethod
    def _not_bool(cls, v: Any) -> Any:
        if isinstance(v, bool):
            raise ValueError(f"expected a number, got {v!r}")
        return v

    @field_validator("adc")
    @classmethod
    def _adc_units(cls, v: float | None) -> float | None:
        if v is not None and v >= ADC_UNIT_GUARD:
            raise ValueError(
                f"{v} looks like a value in x10^-6 mm2/s; give ADC in x10^-3 mm2/s (e.g. {v / 1000:g})"
            )
        return v

    @model_validator(mode="after")
    def _pairs(self) -> QuantitativeInput:
        if (self.in_phase is None) != (self.opposed_phase is None):
            raise ValueError(
                "give both in_phase and opposed_phase (signal intensities from the same region of interest), "
                "or sir or drop_percent"
            )
        return self


class CutoffComparison(BaseModel):
    """One measured value against one published cut-off."""

    measure: str
    value: float
    cutoff: str = Field(description="row id in quantitative_cutoffs")
    source_label: str = Field(default="", description="the cut-off's sources in words (author and year), as shown")
    threshold: float
    units: str
    malignant_if: str
    side: Literal["malignant", "benign"] = Field(
        description="malignant: on the side of the cut-off that favours malignancy; benign: the other side "
        "(favours the benign comparator named in `comparison`)"
    )
    at_threshold: bool = Field(description="the value equals the cut-off")
    applicable: bool = Field(description="False when the given treatment state differs from the source's lesions")
    not_applicable_reason: str | None = None
    comparison: str
    population: str | None = None
    field_strength: str | None = None
    lesion_treatment: str | None = None
    sensitivity: float | None = None
    specificity: float | None = None
    auc: float | None = None
    accuracy: float | None = None
    caveat: str | None = None
    draft: bool = False
    sources: list[str] = Field(default_factory=list)
    refs: list[int] = Field(default_factory=list)


class MeasureSummary(BaseModel):
    measure: str
    value: float
    malignant_side: int
    benign_side: int
    not_applicable: int


class QuantitativeResult(Result):
    instrument: str = "quantitative"
    values: dict[str, float] = Field(default_factory=dict, description="measure -> value compared")
    comparisons: list[CutoffComparison] = Field(default_factory=list)
    by_measure: list[MeasureSummary] = Field(default_factory=list)

    def extra_lines(self) -> list[str]:
        lines = []
        for m in self.by_measure:
            lines.append(f"  {LABELS[m.measure]} {_fmt(m.value)}{UNITS[m.measure]}:")
            for c in (c for c in self.comparisons if c.measure == m.measure):
                lines.extend("    " + line for line in _comparison_lines(c))
        return lines


def _fmt(x: float) -> str:
    return f"{x:.3g}" if abs(x) < 10 else f"{x:.1f}".rstrip("0").rstrip(".")


def _pct(x: float | None) -> str | None:
    return None if x is None else f"{x * 100:.3g}%"


def _comparison_lines(c: CutoffComparison) -> list[str]:
    side = "MALIGNANT side" if c.side == "malignant" else "benign side"
    if c.at_threshold:
        side += " (exactly at the cut-off)"
    figures = [f"{k} {v}" for k, v in (("Se", _pct(c.sensitivity)), ("Sp", _pct(c.specificity)),
                                        ("AUC", None if c.auc is None else f"{c.auc:g}"),
                                        ("accuracy", _pct(c.accuracy))) if v is not None]
    head = (f"malignant if {SYMBOLS[c.malignant_if]} {c.threshold:g} ({c.source_label or 'source not named'}): {side}; "
            + (", ".join(figures) if figures else "no accuracy figures"))
    if not c.applicable:
        head += f"; NOT APPLICABLE: {c.not_applicable_reason}"
    if c.draft:
        head += " DRAFT"
    head += f" [{','.join(map(str, c.refs))}]" if c.refs else ""
    context = [c.comparison]
    if c.field_strength:
        context.append(c.field_strength)
    if c.lesion_treatment:
        context.append(TREATMENT_WORDS.get(c.lesion_treatment, c.lesion_treatment) + " lesions")
    detail = ", ".join(context) + (f"; {c.population}" if c.population else "")
    if c.caveat:
        detail += f". Caveat: {c.caveat}"
    return [head, "  " + detail]


def _round(x: float) -> float:
    return round(x, PRECISION)


def _chemical_shift(inp: QuantitativeInput, kb: KnowledgeBase) -> tuple[float, float, str] | None:
    """(SIR, drop %, how it was obtained), checking that several spellings agree and the SIR is possible."""
    candidates: list[tuple[str, float, str]] = []
    if inp.in_phase is not None and inp.opposed_phase is not None:
        _check_computed_sir(inp, _round(inp.opposed_phase / inp.in_phase), kb)
        candidates.append((
            "quantitative.in_phase", inp.opposed_phase / inp.in_phase,
            f"computed from in-phase {inp.in_phase:g} and opposed-phase {inp.opposed_phase:g}",
        ))
    if inp.sir is not None:
        candidates.append(("quantitative.sir", inp.sir, "SIR as given"))
    if inp.drop_percent is not None:
        candidates.append(("quantitative.drop_percent", 1 - inp.drop_percent / 100, "drop as given"))
    if not candidates:
        return None
    first_field, sir, how = candidates[0]
    for field, other, _ in candidates[1:]:
        if abs(other - sir) >= AGREEMENT:
            raise ContradictoryInputError(
                [first_field, field],
                f"these give SIR {_fmt(sir)} and {_fmt(other)} (drop {_fmt((1 - sir) * 100)}% and "
                f"{_fmt((1 - other) * 100)}%); give one chemical-shift measurement, or consistent ones",
            )
    return _round(sir), _round((1 - sir) * 100), how


def _side(value: float, threshold: float, rule: str) -> bool:
    """True when the value is on the malignant side of the cut-off."""
    if rule == "below":
        return value < threshold
    if rule == "at_or_below":
        return value <= threshold
    if rule == "above":
        return value > threshold
    if rule == "at_or_above":
        return value >= threshold
    raise ValueError(f"unknown malignant_if {rule!r}")  # pragma: no cover - the table is checked by the tests


def _applicability(row: TableRow, treated: bool | None) -> str | None:
    state = row.get("lesion_treatment")
    if treated is True and state == UNTREATED:
        return "derived in untreated lesions; this lesion was treated"
    if treated is False and state is not None and state != UNTREATED and state != "mixed":
        return f"derived in {state} lesions; this lesion is untreated"
    return None


# --- possible ranges ----------------------------------------------------------------------------------


def _ranges(kb: KnowledgeBase, field: str) -> dict[str, TableRow]:
    """The bounds of one input field, keyed 'minimum' / 'maximum'."""
    return {str(r["bound"]): r for r in kb.table(RANGES).rows if r["field"] == field}


def _within(value: float, row: TableRow) -> bool:
    limit, inclusive = float(row["value"]), bool(row["inclusive"])
    if row["bound"] == "minimum":
        return value >= limit if inclusive else value > limit
    return value <= limit if inclusive else value < limit


def _range_text(bounds: Mapping[str, TableRow]) -> str:
    """'0 to 5', '-400 to 100%', 'above 0 and at most 4 x10^-3 mm2/s'."""
    lo, hi = bounds.get("minimum"), bounds.get("maximum")
    units = next((str(r["units"]) for r in bounds.values()), "")
    if lo is not None and hi is not None and lo["inclusive"] and hi["inclusive"]:
        return f"{float(lo['value']):g} to {float(hi['value']):g}{units}"
    parts = []
    if lo is not None:
        parts.append(("at least " if lo["inclusive"] else "above ") + f"{float(lo['value']):g}")
    if hi is not None:
        parts.append(("at most " if hi["inclusive"] else "below ") + f"{float(hi['value']):g}")
    return " and ".join(parts) + units


def _outside(value: float, bounds: Mapping[str, TableRow]) -> TableRow | None:
    """The bound *value* breaks, if any (an overflowed ratio, inf, breaks the maximum)."""
    for row in bounds.values():
        if not _within(value, row):
            return row
    return None


def _check_ranges(inp: QuantitativeInput, kb: KnowledgeBase) -> None:
    """Refuse any given value outside the range its measurement can take, naming field and range."""
    for field in (SIR_FIELD, DROP_FIELD, FAT, ADC, CT_MEAN, CT_MAX):
        value = getattr(inp, field)
        if value is None:
            continue
        bounds = _ranges(kb, field)
        broken = _outside(value, bounds)
        if broken is not None:
            units = str(broken["units"])
            raise InvalidInputError(
                f"quantitative.{field}",
                f"{value:g}{units} is outside the range this calculator accepts ({_range_text(bounds)}): "
                f"{_basis(broken)}",
            )


def _check_computed_sir(inp: QuantitativeInput, sir: float, kb: KnowledgeBase) -> None:
    """An SIR computed from the two intensities is held to the range of a given SIR."""
    bounds = _ranges(kb, SIR_FIELD)
    broken = _outside(sir, bounds)
    if broken is not None:
        raise InvalidInputError(
            "quantitative.opposed_phase",
            f"opposed-phase {inp.opposed_phase:g} over in-phase {inp.in_phase:g} gives an SIR of {sir:g}, outside "
            f"the range this calculator accepts ({_range_text(bounds)}): {_basis(broken)}; check both "
            "intensities come from the same region of interest",
        )


def _basis(row: TableRow) -> str:
    return " ".join(str(row["basis"]).split())


def _schema_ranges(schema: dict[str, Any]) -> None:
    """Write the packaged knowledge base's ranges into the JSON Schema (minimum, exclusiveMaximum, ...)."""
    properties = schema.get("properties", {})
    for row in load_kb().table(RANGES).rows:
        prop = properties.get(str(row["field"]))
        if prop is None:  # pragma: no cover - the tests check every row names a field
            continue
        key = ("minimum" if row["bound"] == "minimum" else "maximum")
        if not row["inclusive"]:
            key = "exclusive" + key[0].upper() + key[1:]
        for branch in prop.get("anyOf", [prop]):
            if branch.get("type") == "number":
                branch[key] = row["value"]


def quantitative(data: QuantitativeInput | Mapping[str, Any] | None, kb: KnowledgeBase | None = None) -> QuantitativeResult:
    """Compare quantitative measurements with every published cut-off; see the module docstring."""
    kb = kb or load_kb()
    inp = parse(QuantitativeInput, data, "quantitative")
    _check_ranges(inp, kb)
    if inp.ct_mean_hu is not None and inp.ct_max_hu is not None and inp.ct_max_hu < inp.ct_mean_hu:
        raise ContradictoryInputError(
            ["quantitative.ct_mean_hu", "quantitative.ct_max_hu"],
            f"the maximum ({inp.ct_max_hu:g} HU) is below the mean ({inp.ct_mean_hu:g} HU)",
        )
    cite = Citer(kb)
    table = kb.table(TABLE)

    values: dict[str, float] = {}
    components: list[Component] = []
    shift = _chemical_shift(inp, kb)
    if shift is not None:
        sir, drop, how = shift
        values[SIR], values[DROP] = sir, drop
        refs = cite.cite_statement(DEFINITIONS)
        components.append(Component(name="sir", value=_fmt(sir), note=how, kb_items=[DEFINITIONS],
                                    sources=list(kb.statement(DEFINITIONS).sources), refs=refs))
        components.append(Component(name="drop_percent", value=_fmt(drop), note="signal drop = (1 - SIR) x 100",
                                    kb_items=[DEFINITIONS], sources=list(kb.statement(DEFINITIONS).sources), refs=refs))
    for measure in (FAT, ADC, CT_MEAN, CT_MAX):
        value = getattr(inp, measure)
        if value is not None:
            values[measure] = _round(value)
            components.append(Component(name=measure, value=_fmt(value), note="as given"))

    if not values:
        return QuantitativeResult(
            status="insufficient_data",
            summary="insufficient data: no measurement given",
            missing=[
                "quantitative.in_phase and quantitative.opposed_phase, or quantitative.sir, or quantitative.drop_percent",
                f"quantitative.{FAT}", f"quantitative.{ADC}", f"quantitative.{CT_MEAN}", f"quantitative.{CT_MAX}",
            ],
            **cite.common(),  # type: ignore[arg-type]
        )

    comparisons: list[CutoffComparison] = []
    by_measure: list[MeasureSummary] = []
    for measure in MEASURES:
        if measure not in values:
            continue
        value = values[measure]
        rows = [r for r in table.rows if r["measure"] == measure]
        group = []
        for row in rows:
            threshold = float(row["threshold"])
            reason = _applicability(row, inp.treated)
            group.append(CutoffComparison(
                measure=measure, value=value, cutoff=row.id, threshold=threshold, units=str(row["units"]),
                source_label=", ".join(dict.fromkeys(kb.sources[s].label() for s in row.sources if s in kb.sources)),
                malignant_if=str(row["malignant_if"]),
                side="malignant" if _side(value, threshold, str(row["malignant_if"])) else "benign",
                at_threshold=value == threshold, applicable=reason is None, not_applicable_reason=reason,
                comparison=str(row["comparison"]), population=row.get("population"),
                field_strength=row.get("field_strength"), lesion_treatment=row.get("lesion_treatment"),
                sensitivity=row.get("sensitivity"), specificity=row.get("specificity"), auc=row.get("auc"),
                accuracy=row.get("accuracy"), caveat=row.get("caveat"), draft=row.is_draft,
                sources=list(row.sources), refs=cite.cite_row(TABLE, row),
            ))
        comparisons.extend(group)
        usable = [c for c in group if c.applicable]
        by_measure.append(MeasureSummary(
            measure=measure, value=value,
            malignant_side=sum(c.side == "malignant" for c in usable),
            benign_side=sum(c.side == "benign" for c in usable),
            not_applicable=len(group) - len(usable),
        ))

    result = QuantitativeResult(
        status="complete",
        summary=_summary(by_measure),
        components=components,
        values=values,
        comparisons=comparisons,
        by_measure=by_measure,
        **cite.common(),  # type: ignore[arg-type]
    )
    result.notices.extend(_notices(inp, by_measure, comparisons, cite))
    return result.model_copy(update=cite.common())


def _summary(by_measure: list[MeasureSummary]) -> str:
    parts = []
    for m in by_measure:
        applicable = m.malignant_side + m.benign_side
        text = f"{LABELS[m.measure]} {_fmt(m.value)}{UNITS[m.measure]}: "
        if applicable:
            text += f"malignant side of {m.malignant_side} of {applicable} cut-off" + ("" if applicable == 1 else "s")
            if m.not_applicable:
                text += f" ({m.not_applicable} not applicable)"
        else:
            text += f"no applicable cut-off ({m.not_applicable} derived in lesions of another treatment state)"
        parts.append(text)
    return "; ".join(parts)


def _notices(
    inp: QuantitativeInput, by_measure: list[MeasureSummary], comparisons: list[CutoffComparison], cite: Citer
) -> list[Notice]:
    notices = []
    for m in by_measure:
        if m.malignant_side and m.benign_side:
            notices.append(cite.notice(
                "sources_differ",
                f"The cut-offs disagree for {LABELS[m.measure]} {_fmt(m.value)}{UNITS[m.measure]}: "
                f"{m.malignant_side} place it on the malignant side and {m.benign_side} on the benign side; "
                "each is shown with its source.",
            ))
    if any(c.at_threshold for c in comparisons):
        notices.append(cite.notice(
            "at_threshold",
            "A value lies exactly at a cut-off; the sources do not always say on which side equality falls "
            "(the side shown follows the direction in which each study stated its cut-off).",
        ))
    groups = list(dict.fromkeys(GROUP[m.measure] for m in by_measure))
    for group in groups:
        for sid in CAVEATS[group]:
            notices.append(cite.notice("caveat", cite.kb.statement(sid).text, kb_items=[sid]))
    if "ct" in groups and inp.treated:
        for sid in TREATED_CT:
            notices.append(cite.notice("treated", cite.kb.statement(sid).text, kb_items=[sid]))
    if inp.treated is None and any(c.lesion_treatment for c in comparisons):
        notices.append(cite.notice(
            "treatment_unknown",
            "Treatment status not given (whether the lesion was treated): cut-offs derived in untreated lesions do not "
            "transfer to treated ones.",
        ))
    return notices
