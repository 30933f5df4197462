"""Osteoporotic versus pathological (malignant) vertebral compression fracture, from CT and MRI features.

Each feature is a row of ``tables/fracture_features.yaml``; the input says, per feature, ``present``,
``absent`` or ``unknown``.  A row's likelihood ratios are stated for the diagnosis it favours, so for a
feature favouring osteoporosis the likelihood ratio *for malignancy* is the reciprocal (the rule in the
table's description).  Where the table has no ratio (none published, or not finite because the study had
no false positives) the feature contributes its direction only, never a number.

The ratios of the features that have one are multiplied into a combined likelihood ratio for malignancy,
which assumes the features are conditionally independent (they are not; the result says so).  The
leaning follows the combined ratio, unless a present feature without a ratio points the other way, in
which case it is ``indeterminate``: the tool cannot weigh a sign it has no figure for.  A pre-test
probability is used only when given, or, with ``pre_test_from_kb``, taken from
``tables/fracture_pre_test.yaml`` (a sourced population figure, a lower bound).  Next steps and caveats
are statements of ``statements/fracture_differential.yaml`` (and the CT, imaging-choice and performance
files), named below.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from enum import StrEnum
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from spinemets.errors import ContradictoryInputError, InsufficientDataError, InvalidInputError
from spinemets.knowledge.loader import KnowledgeBase, load_kb
from spinemets.knowledge.models import TableRow
from spinemets.results import Citer, Component, Notice, Result
from spinemets.validation import parse

TABLE = "fracture_features"
PRE_TEST_TABLE = "fracture_pre_test"
MALIGNANT: Final = "malignant"
OSTEOPOROTIC: Final = "osteoporotic"
INDETERMINATE: Final = "indeterminate"
OPTIONS = ("pre_test", "known_cancer", "pre_test_from_kb")

# Knowledge items this module applies (statement ids).
BAYES = "performance.bayes.formulas"
INDEPENDENCE = "performance.bayes.conditional_independence"
NEXT_STEP_UNCERTAIN = "fracture.next_steps_when_indeterminate"
NEXT_STEP_FIND_PRIMARY = "imaging.unknown_primary.body_ct"
NEXT_STEP_HISTOLOGY = "imaging.unknown_primary.histology"
OSTEOPOROTIC_EVOLVES = "fracture.osteoporotic_collapse_evolves"
BENIGN_IN_CANCER = "fracture.benign_in_known_cancer"
BENIGN_MIMICS = "fracture.benign_collapse_mimicking_malignancy"
CAVEATS_BY_FEATURE = {
    "intense_enhancement": "fracture.enhancement_evidence_differs",
    "return_to_normal_after_gadolinium": "fracture.enhancement_evidence_differs",
    "high_t2_signal": "fracture.t2_signal_evidence_differs",
    "t2_isointense_vertebra": "fracture.t2_signal_evidence_differs",
    "diffuse_low_t1_signal": "fracture.yuh_rule_limits",
    "spared_normal_marrow": "fracture.yuh_rule_limits",
}


class Presence(StrEnum):
    present = "present"
    absent = "absent"
    unknown = "unknown"


Leaning = Literal["malignant", "osteoporotic", "indeterminate"]
Direction = Literal["malignant", "osteoporotic"]


def _direction(value: Any) -> Direction:
    """The table's `favours` value (checked by the tests to be one of the two)."""
    return MALIGNANT if value == MALIGNANT else OSTEOPOROTIC


class FractureOptions(BaseModel):
    """The inputs besides the features."""

    model_config = ConfigDict(extra="forbid")

    pre_test: float | None = Field(
        default=None, ge=0, le=1, allow_inf_nan=False, description="pre-test probability of malignancy, 0-1"
    )
    known_cancer: bool | None = Field(default=None, description="the patient has a known cancer")
    pre_test_from_kb: bool = Field(
        default=False, description="take the pre-test probability from tables/fracture_pre_test.yaml"
    )

    @field_validator("pre_test", mode="before")
    @classmethod
    def _not_bool(cls, v: Any) -> Any:
        if isinstance(v, bool):
            raise ValueError(f"expected a probability between 0 and 1, got {v!r}")
        return v


class FractureInput(FractureOptions):
    """Findings for one fractured vertebra: feature id -> present / absent / unknown."""

    features: dict[str, Presence] = Field(default_factory=dict)


class FeatureFinding(BaseModel):
    """One feature as observed, with what it says about malignancy."""

    feature: str
    label: str
    modality: str
    value: Presence
    favours: str = Field(description="the diagnosis the feature favours when present (the table's column)")
    points_to: str | None = Field(default=None, description="the diagnosis this observed value points to")
    lr_malignant: float | None = Field(
        default=None, description="likelihood ratio for malignancy of the observed value; None when there is none"
    )
    lr_basis: str = Field(description="where the ratio comes from, or why there is none")
    kb_item: str
    sources: list[str] = Field(default_factory=list)
    refs: list[int] = Field(default_factory=list)


class UnknownFeature(BaseModel):
    """A feature not yet assessed that has a likelihood ratio, and what finding it would do."""

    feature: str
    label: str
    modality: str
    lr_if_present: float | None
    lr_if_absent: float | None
    leaning_if_present: Leaning
    leaning_if_absent: Leaning
    changes_leaning: bool
    refs: list[int] = Field(default_factory=list)


class NextStep(BaseModel):
    statement: str
    text: str
    refs: list[int] = Field(default_factory=list)


class FractureResult(Result):
    instrument: str = "fracture"
    leaning: Leaning
    leaning_basis: str
    combined_lr: float | None = Field(
        default=None, description="product of the likelihood ratios for malignancy of the known features that have one"
    )
    features_with_lr: int = 0
    pre_test: float | None = None
    pre_test_source: str | None = Field(default=None, description="'given', or the wording of the knowledge-base figure")
    pre_test_refs: list[int] = Field(default_factory=list)
    post_test: float | None = None
    post_test_refs: list[int] = Field(default_factory=list, description="references of the Bayes formula used")
    post_test_is_lower_bound: bool = False
    findings: list[FeatureFinding] = Field(default_factory=list)
    unknown_features: list[str] = Field(default_factory=list)
    most_informative_unknown: list[UnknownFeature] = Field(default_factory=list)
    next_steps: list[NextStep] = Field(default_factory=list)

    def extra_lines(self) -> list[str]:
        if self.post_test is None or self.pre_test is None:
            return []
        bound = "at least " if self.post_test_is_lower_bound else ""
        origin = f": {self.pre_test_source}" if self.pre_test_source != "given" else " as given"
        lines = [
            f"  post-test probability of malignancy {bound}{self.post_test:.1%}{_refs(self.post_test_refs)} "
            f"(pre-test {bound}{self.pre_test:.1%}{origin}{_refs(self.pre_test_refs)})"
        ]
        left_out = [f.feature for f in self.findings if f.lr_malignant is None]
        if left_out:
            lines.append(f"  not in this figure (no likelihood ratio): {', '.join(left_out)}")
        return lines

    def closing_lines(self) -> list[str]:
        lines = []
        if self.next_steps:
            lines.append("Next steps the sources give:")
            for step in self.next_steps:
                lines.append(f"  - {step.text}{_refs(step.refs)}")
        if self.most_informative_unknown:
            if lines:
                lines.append("")
            lines.append("Not yet assessed, largest likelihood ratios first (ratio for malignancy if present / if absent):")
            for u in self.most_informative_unknown:
                flip = "; would change the leaning" if u.changes_leaning else ""
                lines.append(
                    f"  - {u.feature} ({u.modality}): {_num(u.lr_if_present)} / {_num(u.lr_if_absent)}{flip}{_refs(u.refs)}"
                )
        return lines


def _refs(numbers: list[int]) -> str:
    return f" [{','.join(map(str, numbers))}]" if numbers else ""


def _num(value: float | None) -> str:
    """A likelihood ratio for display: 220, 12.6, 4.0, 0.32, 0.196."""
    if value is None:
        return "no ratio"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    text = f"{value:.3g}"
    return text if "." in text or "e" in text else text + ".0"


def _presence(field: str, value: Any) -> Presence:
    allowed = "allowed values: 'present', 'absent', 'unknown' (or true, false, null)"
    if value is None:
        return Presence.unknown
    if isinstance(value, bool):
        return Presence.present if value else Presence.absent
    if isinstance(value, str):
        key = value.strip().lower()
        for p in Presence:
            if key == p.value:
                return p
    raise InvalidInputError(field, f"{value!r} is not allowed; {allowed}")


def _read_input(data: Any, kb: KnowledgeBase) -> FractureInput:
    ids = [r.id for r in kb.table(TABLE).rows]
    unknown_msg = f"unknown feature; allowed features: {', '.join(sorted(ids))}; other fields: {', '.join(OPTIONS)}"
    if isinstance(data, FractureInput):
        for key in data.features:
            if key not in ids:
                raise InvalidInputError(f"fracture.{key}", unknown_msg)
        return data
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise InvalidInputError("fracture", f"expected an object, got {type(data).__name__}")
    features: dict[str, Presence] = {}
    options: dict[str, Any] = {}
    for key, value in data.items():
        if key in OPTIONS:
            options[key] = value
            continue
        if not isinstance(key, str) or key not in ids:
            raise InvalidInputError(f"fracture.{key}", unknown_msg)
        features[key] = _presence(f"fracture.{key}", value)
    opts = parse(FractureOptions, options, "fracture")
    return FractureInput(features=features, **opts.model_dump())


def _lr_for_malignancy(row: TableRow, value: Presence) -> tuple[float | None, str]:
    """The likelihood ratio for malignancy of an observed value, and its basis."""
    positive = value is Presence.present
    key = "lr_positive" if positive else "lr_negative"
    sign = "LR+" if positive else "LR-"
    raw = row.get(key)
    if raw is None or float(raw) <= 0:
        edge = row.get("specificity") if positive else row.get("sensitivity")
        if edge is not None and float(edge) == 1.0:
            why = "no false positives" if positive else "no false negatives"
            return None, f"no finite likelihood ratio ({why} in the source study)"
        return None, "no published likelihood ratio"
    lr = float(raw)
    if row["favours"] == MALIGNANT:
        return lr, f"the table's {sign}"
    return 1 / lr, f"1 / {sign} {_num(lr)} for osteoporosis"


def _other(direction: Direction) -> Direction:
    return OSTEOPOROTIC if direction == MALIGNANT else MALIGNANT


def _leaning(lr: float | None, directions: set[Direction]) -> tuple[Leaning, str]:
    """Leaning from the combined ratio and the directions of present features that have no ratio."""
    if lr is None:
        if len(directions) == 1:
            only = next(iter(directions))
            return only, "direction of present features without published likelihood ratios"
        if directions:
            return INDETERMINATE, "present features without likelihood ratios point both ways"
        return INDETERMINATE, "no known feature carries a likelihood ratio or a direction"
    if math.isclose(lr, 1.0, rel_tol=1e-9):
        return INDETERMINATE, "the combined likelihood ratio is 1"
    by_lr: Direction = MALIGNANT if lr > 1 else OSTEOPOROTIC
    if _other(by_lr) in directions:
        return INDETERMINATE, (
            f"the combined likelihood ratio favours {by_lr}, but a present feature without a published "
            f"ratio favours {_other(by_lr)} and cannot be weighed"
        )
    return by_lr, "combined likelihood ratio"


def _combine(ratios: list[float]) -> float | None:
    return math.prod(ratios) if ratios else None


def post_test(pre: float, lr: float) -> float:
    """Post-test probability from a pre-test probability and a likelihood ratio (odds form)."""
    if pre in (0.0, 1.0):
        return pre
    odds = pre / (1 - pre) * lr
    if math.isinf(odds):
        return 1.0
    return min(1.0, max(0.0, odds / (1 + odds)))


def fracture_differential(data: FractureInput | Mapping[str, Any] | None, kb: KnowledgeBase | None = None) -> FractureResult:
    """Weigh CT/MRI features of a vertebral compression fracture; see the module docstring."""
    kb = kb or load_kb()
    inp = _read_input(data, kb)
    cite = Citer(kb)
    table = kb.table(TABLE)
    rows = {r.id: r for r in table.rows}

    pre, pre_source, pre_refs, lower_bound = _pre_test(inp, kb, cite)

    findings: list[FeatureFinding] = []
    ratios: list[float] = []
    no_lr_directions: set[Direction] = set()
    present_directions: set[Direction] = set()
    for row in table.rows:
        value = inp.features.get(row.id, Presence.unknown)
        if value is Presence.unknown:
            continue
        lr, basis = _lr_for_malignancy(row, value)
        favours = _direction(row["favours"])
        points_to = favours if value is Presence.present else _other(favours)
        if lr is not None:
            ratios.append(lr)
        elif value is Presence.present:
            no_lr_directions.add(favours)
        if value is Presence.present:
            present_directions.add(favours)
        refs = cite.cite_row(TABLE, row)
        findings.append(
            FeatureFinding(
                feature=row.id, label=str(row["label"]), modality=str(row["modality"]), value=value,
                favours=favours, points_to=points_to, lr_malignant=lr, lr_basis=basis,
                kb_item=f"{TABLE}.{row.id}", sources=list(row.sources), refs=refs,
            )
        )

    combined = _combine(ratios)
    leaning, basis = _leaning(combined, no_lr_directions)
    unknown = [r.id for r in table.rows if inp.features.get(r.id, Presence.unknown) is Presence.unknown]
    informative = _informative_unknown(unknown, rows, ratios, no_lr_directions, leaning, cite)

    components = [
        Component(
            name=f.feature, value=f.value.value, label=f.label, note=_finding_note(f),
            kb_items=[f.kb_item], sources=f.sources, refs=f.refs,
        )
        for f in findings
    ]
    post, post_refs = None, []
    if pre is not None and combined is not None:
        post = post_test(pre, combined)
        post_refs = cite.cite_statement(BAYES)

    if not findings:
        result = FractureResult(
            status="insufficient_data",
            summary=(
                "insufficient data: no feature given as present or absent; "
                f"give at least one of the {len(rows)} features"
            ),
            missing=[f"fracture.{r}" for r in rows],
            leaning=INDETERMINATE,
            leaning_basis=basis,
            pre_test=pre,
            pre_test_source=pre_source,
            pre_test_refs=pre_refs,
            unknown_features=unknown,
            most_informative_unknown=informative,
            **cite.common(),  # type: ignore[arg-type]
        )
        return result.model_copy(update=cite.common())

    summary = _summary(leaning, basis, combined, len(ratios), findings)
    result = FractureResult(
        status="complete",
        summary=summary,
        components=components,
        leaning=leaning,
        leaning_basis=basis,
        combined_lr=combined,
        features_with_lr=len(ratios),
        pre_test=pre,
        pre_test_source=pre_source,
        pre_test_refs=pre_refs,
        post_test=post,
        post_test_refs=post_refs,
        post_test_is_lower_bound=lower_bound and post is not None,
        findings=findings,
        unknown_features=unknown,
        most_informative_unknown=informative,
        **cite.common(),  # type: ignore[arg-type]
    )
    result.notices.extend(_notices(inp, findings, ratios, present_directions, leaning, pre, combined, cite))
    result.next_steps.extend(_next_steps(leaning, inp.known_cancer, cite))
    return result.model_copy(update=cite.common())


def _pre_test(inp: FractureInput, kb: KnowledgeBase, cite: Citer) -> tuple[float | None, str | None, list[int], bool]:
    """(pre-test probability, where it came from, its references, whether it is a lower bound)."""
    if not inp.pre_test_from_kb:
        return inp.pre_test, ("given" if inp.pre_test is not None else None), [], False
    if inp.pre_test is not None:
        raise ContradictoryInputError(
            ["fracture.pre_test", "fracture.pre_test_from_kb"],
            "give a pre-test probability or ask for the knowledge-base figure, not both",
        )
    table = kb.table(PRE_TEST_TABLE)
    if inp.known_cancer is None:
        # Not stated: the knowledge-base figure is for patients with known cancer, so whether there is one decides.
        raise InsufficientDataError(["fracture.known_cancer"], "the knowledge-base pre-test probability "
                                    "(it is given only for patients with known cancer)")
    if inp.known_cancer is not True:
        populations = ", ".join(sorted(str(r["population"]) for r in table.rows))
        raise InvalidInputError(
            "fracture.known_cancer",
            f"the knowledge base gives a pre-test figure only for these populations: {populations}; "
            "set known_cancer to true or give pre_test",
        )
    row = next(r for r in table.rows if r["population"] == "known_cancer")
    refs = cite.cite_row(PRE_TEST_TABLE, row)
    return 1 - float(row["benign_share_up_to"]), str(row["wording"]), refs, True


def _finding_note(f: FeatureFinding) -> str:
    if f.value is Presence.present:
        direction = f"favours {f.points_to}"
    else:
        direction = f"absence points to {f.points_to}" + ("" if f.lr_malignant is not None else " (strength unknown)")
    if f.lr_malignant is None:
        return f"{direction}; {f.lr_basis}"
    return f"{direction}; LR {_num(f.lr_malignant)} for malignancy ({f.lr_basis})"


def _informative_unknown(
    unknown: list[str], rows: dict[str, TableRow], ratios: list[float], directions: set[Direction],
    leaning: Leaning, cite: Citer,
) -> list[UnknownFeature]:
    out = []
    for fid in unknown:
        row = rows[fid]
        lr_p, _ = _lr_for_malignancy(row, Presence.present)
        lr_a, _ = _lr_for_malignancy(row, Presence.absent)
        if lr_p is None and lr_a is None:
            continue
        favours = _direction(row["favours"])
        lean_p = _leaning(_combine(ratios + [lr_p]) if lr_p is not None else _combine(ratios),
                          directions if lr_p is not None else directions | {favours})[0]
        lean_a = _leaning(_combine(ratios + [lr_a]) if lr_a is not None else _combine(ratios), directions)[0]
        out.append(
            UnknownFeature(
                feature=fid, label=str(row["label"]), modality=str(row["modality"]),
                lr_if_present=lr_p, lr_if_absent=lr_a, leaning_if_present=lean_p, leaning_if_absent=lean_a,
                changes_leaning=leaning != lean_p or leaning != lean_a,
                refs=cite.cite_row(TABLE, row),
            )
        )

    def weight(u: UnknownFeature) -> float:
        return max(abs(math.log(x)) for x in (u.lr_if_present, u.lr_if_absent) if x is not None)

    return sorted(out, key=weight, reverse=True)


def _summary(leaning: Leaning, basis: str, combined: float | None, n_lr: int, findings: list[FeatureFinding]) -> str:
    if combined is None:
        head = f"leaning {leaning}: {basis}; no known feature has a published likelihood ratio"
    else:
        head = (
            f"leaning {leaning}: combined likelihood ratio {_num(combined)} for malignancy "
            f"from {n_lr} feature{'s' if n_lr != 1 else ''} with published ratios"
        )
        if basis != "combined likelihood ratio":
            head += f" ({basis})"
    without = len(findings) - n_lr
    if without:
        further = "further " if n_lr else ""
        head += f"; {without} {further}feature{'s' if without != 1 else ''} by direction only"
    return head


def _notices(
    inp: FractureInput, findings: list[FeatureFinding], ratios: list[float], present: set[Direction],
    leaning: Leaning, pre: float | None, combined: float | None, cite: Citer,
) -> list[Notice]:
    notices = []
    if len(ratios) > 1:
        notices.append(cite.notice(
            "independence",
            "The combined likelihood ratio multiplies the ratios of several features, which assumes they are "
            "conditionally independent; features of the same fracture are not (several describe the same tumour "
            "tissue), so the combined figure overstates the evidence.",
            kb_items=[INDEPENDENCE],
        ))
    if pre is None:
        notices.append(cite.notice(
            "no_pre_test",
            "No pre-test probability given, so no post-test probability: the combined likelihood ratio and the "
            "leaning are reported alone.",
        ))
    elif combined is None:
        notices.append(cite.notice(
            "no_update",
            "No known feature has a likelihood ratio, so the pre-test probability cannot be updated.",
        ))
    if inp.pre_test_from_kb and pre is not None:
        notices.append(cite.notice(
            "population_pre_test",
            "The pre-test probability is a population figure (an upper bound on the benign share), not this "
            "patient's probability; the post-test probability computed from it is a lower bound.",
            kb_items=[BENIGN_IN_CANCER],
        ))
    if len(present) > 1:
        notices.append(cite.notice(
            "signs_conflict",
            "Present features point both ways (some favour malignancy, some osteoporosis).",
            kb_items=[NEXT_STEP_UNCERTAIN],
        ))
    known = {f.feature for f in findings}
    for statement in dict.fromkeys(CAVEATS_BY_FEATURE[f] for f in CAVEATS_BY_FEATURE if f in known):
        notices.append(cite.notice("caveat", cite.kb.statement(statement).text, kb_items=[statement]))
    if leaning == MALIGNANT:
        notices.append(cite.notice("caveat", cite.kb.statement(BENIGN_MIMICS).text, kb_items=[BENIGN_MIMICS]))
        if inp.known_cancer:
            notices.append(cite.notice("caveat", cite.kb.statement(BENIGN_IN_CANCER).text, kb_items=[BENIGN_IN_CANCER]))
    return notices


def _next_steps(leaning: Leaning, known_cancer: bool | None, cite: Citer) -> list[NextStep]:
    ids: list[str] = []
    if leaning == MALIGNANT and known_cancer is False:
        ids += [NEXT_STEP_HISTOLOGY, NEXT_STEP_FIND_PRIMARY]
    if leaning == OSTEOPOROTIC:
        ids.append(OSTEOPOROTIC_EVOLVES)
    ids.append(NEXT_STEP_UNCERTAIN)
    steps = []
    for sid in ids:
        st = cite.kb.statement(sid)
        steps.append(NextStep(statement=sid, text=st.text, refs=cite.cite_statement(sid)))
    return steps
