"""Post-test probability from a pre-test probability and a test's accuracy (Bayes).

For a positive result ``p' = Se*p / (Se*p + (1-Sp)*(1-p))``; for a negative
result ``p' = (1-Se)*p / ((1-Se)*p + Sp*(1-p))``.  The likelihood ratios
``LR+ = Se/(1-Sp)`` and ``LR- = (1-Se)/Sp`` are shown.  For a sequence of
tests each post-test probability is the next pre-test probability, which
assumes the tests are conditionally independent given the disease; they
seldom are, and the result says so.

Sensitivity and specificity are given, or looked up in
``tables/modality_accuracy.yaml`` by modality, unit (patient / lesion) and
source.  Without a source every published pair is used side by side.
"""

from __future__ import annotations

import itertools
import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from spinemets.errors import InsufficientDataError, InvalidInputError
from spinemets.knowledge.loader import KnowledgeBase, load_kb
from spinemets.knowledge.models import TableRow
from spinemets.results import Citer, Component, Result
from spinemets.validation import parse

TABLE = "modality_accuracy"
INDEPENDENCE = "performance.bayes.conditional_independence"
SOURCES_DIFFER = "performance.caveat.lr_depends_on_source"
MAX_SCENARIOS = 16


class TestInput(BaseModel):
    """One test: its result and either a modality (looked up) or its sensitivity and specificity."""

    model_config = ConfigDict(extra="forbid")

    result: Literal["positive", "negative"]
    modality: str | None = Field(default=None, description="e.g. mri, ct, fdg_pet_ct, bone_scan, spect")
    unit: Literal["patient", "lesion"] = Field(default="patient", description="per-patient or per-lesion figures")
    source: str | None = Field(default=None, description="source id of the figures, e.g. harlianto-2024")
    sensitivity: float | None = Field(default=None, ge=0, le=1)
    specificity: float | None = Field(default=None, ge=0, le=1)

    @model_validator(mode="after")
    def _either(self) -> TestInput:
        given = (self.sensitivity is not None, self.specificity is not None)
        if any(given) and not all(given):
            raise ValueError("give both sensitivity and specificity, or neither (then modality is looked up)")
        if not any(given) and self.modality is None:
            raise ValueError("give a modality to look up, or sensitivity and specificity")
        return self


class ProbabilityInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pre_test: float = Field(ge=0, le=1, description="pre-test probability, 0-1")
    tests: list[TestInput] = Field(min_length=1, max_length=8)


class Step(BaseModel):
    test: int
    modality: str | None
    result: str
    unit: str
    source: str | None
    sensitivity: float
    specificity: float
    lr_positive: float | None = Field(description="None when infinite (specificity 1)")
    lr_negative: float | None = Field(description="None when infinite (specificity 0)")
    pre_test: float
    post_test: float
    refs: list[int] = Field(default_factory=list)
    population: str | None = None


class Scenario(BaseModel):
    """One chain of tests with one choice of figures per test."""

    label: str
    steps: list[Step]
    post_test: float


class ProbabilityResult(Result):
    instrument: str = "probability"
    pre_test: float
    scenarios: list[Scenario]
    post_test_min: float
    post_test_max: float

    def extra_lines(self) -> list[str]:
        lines = []
        for sc in self.scenarios:
            pops = {st.population for st in sc.steps if st.population}
            lines.append(f"  {sc.label}" + (f" - population: {'; '.join(sorted(pops))}" if pops else ""))
            for st in sc.steps:
                lr = st.lr_positive if st.result == "positive" else st.lr_negative
                lr_text = "infinite" if lr is None else f"{lr:.2f}"
                refs = f" [{','.join(map(str, st.refs))}]" if st.refs else ""
                lines.append(
                    f"    test {st.test}: {st.modality or 'given test'} {st.result} "
                    f"(Se {st.sensitivity:.3g}, Sp {st.specificity:.3g}, LR{'+' if st.result == 'positive' else '-'} {lr_text})"
                    f": {st.pre_test:.1%} -> {st.post_test:.1%}{refs}"
                )
        return lines


def likelihood_ratios(sensitivity: float, specificity: float) -> tuple[float | None, float | None]:
    """(LR+, LR-); None stands for an infinite ratio."""
    lr_pos = None if specificity == 1 else sensitivity / (1 - specificity)
    lr_neg = None if specificity == 0 else (1 - sensitivity) / specificity
    return lr_pos, lr_neg


def update(pre: float, sensitivity: float, specificity: float, positive: bool, field: str = "test") -> float:
    """One Bayes step; raises InvalidInputError when the result is impossible under the figures."""
    if positive:
        num, den = sensitivity * pre, sensitivity * pre + (1 - specificity) * (1 - pre)
    else:
        num, den = (1 - sensitivity) * pre, (1 - sensitivity) * pre + specificity * (1 - pre)
    if den == 0:
        raise InvalidInputError(
            field,
            f"a {'positive' if positive else 'negative'} result cannot occur with sensitivity {sensitivity} "
            f"and specificity {specificity} at probability {pre}",
        )
    return min(1.0, max(0.0, num / den))


def _candidates(t: TestInput, i: int, kb: KnowledgeBase) -> list[tuple[float, float, TableRow | None]]:
    if t.sensitivity is not None and t.specificity is not None:
        return [(t.sensitivity, t.specificity, None)]
    table = kb.table(TABLE)
    rows = table.where(modality=t.modality, unit=t.unit)
    rows = [r for r in rows if r.get("sensitivity") is not None and r.get("specificity") is not None]
    if not rows:
        modalities = sorted({str(r["modality"]) for r in table.rows if r.get("sensitivity") is not None})
        raise InvalidInputError(
            f"probability.tests[{i}].modality",
            f"no {t.unit}-level figures for {t.modality!r}; modalities with figures: {', '.join(modalities)}",
        )
    if t.source is not None:
        chosen = [r for r in rows if t.source in r.sources]
        if not chosen:
            options = sorted({s for r in rows for s in r.sources})
            raise InvalidInputError(
                f"probability.tests[{i}].source",
                f"{t.source!r} gives no {t.unit}-level figures for {t.modality}; sources that do: {', '.join(options)}",
            )
        rows = chosen
    # The same pair quoted by several sources (a seed repeating a meta-analysis) is one option.
    seen: dict[tuple[float, float], TableRow] = {}
    for r in rows:
        seen.setdefault((float(r["sensitivity"]), float(r["specificity"])), r)
    return [(se, sp, r) for (se, sp), r in seen.items()]


def post_test_probability(data: ProbabilityInput | dict[str, Any], kb: KnowledgeBase | None = None) -> ProbabilityResult:
    """Post-test probability after one or more tests; see the module docstring."""
    kb = kb or load_kb()
    inp = parse(ProbabilityInput, data, "probability")
    cite = Citer(kb)
    options = [_candidates(t, i, kb) for i, t in enumerate(inp.tests)]
    n = math.prod(len(o) for o in options)
    if n > MAX_SCENARIOS:
        raise InsufficientDataError(
            [f"probability.tests[{i}].source" for i, o in enumerate(options) if len(o) > 1],
            f"post-test probability ({n} combinations of published figures; choose a source per test)",
        )
    scenarios = []
    for combo in itertools.product(*options):
        p = inp.pre_test
        steps = []
        for i, (t, (se, sp, row)) in enumerate(zip(inp.tests, combo)):
            post = update(p, se, sp, t.result == "positive", f"probability.tests[{i}]")
            lr_pos, lr_neg = likelihood_ratios(se, sp)
            refs, source, population = [], None, None
            if row is not None:
                same = kb.table(TABLE).where(modality=t.modality, unit=t.unit, sensitivity=row.get("sensitivity"),
                                             specificity=row.get("specificity"))
                for r in same:
                    refs.extend(cite.cite_row(TABLE, r))
                source = ", ".join(dict.fromkeys(s for r in same for s in r.sources))
                population = row.get("population")
                refs = sorted(set(refs))
            steps.append(
                Step(
                    test=i + 1, modality=t.modality, result=t.result, unit=t.unit, source=source,
                    sensitivity=se, specificity=sp, lr_positive=lr_pos, lr_negative=lr_neg,
                    pre_test=p, post_test=post, refs=refs, population=population,
                )
            )
            p = post
        label = " then ".join(
            f"{s.modality or 'test'} {s.result}" + (f" ({s.source})" if s.source else " (given figures)") for s in steps
        )
        scenarios.append(Scenario(label=label, steps=steps, post_test=p))

    lo = min(s.post_test for s in scenarios)
    hi = max(s.post_test for s in scenarios)
    summary = (
        f"post-test probability {lo:.1%}" if math.isclose(lo, hi, abs_tol=5e-4)
        else f"post-test probability {lo:.1%} to {hi:.1%} depending on the published figures"
    ) + f" (pre-test {inp.pre_test:.1%})"
    components = [
        Component(name="pre_test", value=f"{inp.pre_test:.3g}", note="pre-test probability as given"),
    ]
    notices = []
    if len(inp.tests) > 1:
        notices.append(cite.notice("independence", kb.statement(INDEPENDENCE).text, kb_items=[INDEPENDENCE]))
    if len(scenarios) > 1 and any(t.source is None and t.sensitivity is None for t in inp.tests):
        notices.append(cite.notice("sources_differ", kb.statement(SOURCES_DIFFER).text, kb_items=[SOURCES_DIFFER]))
    return ProbabilityResult(
        status="complete",
        summary=summary,
        components=components,
        notices=notices,
        pre_test=inp.pre_test,
        scenarios=scenarios,
        post_test_min=lo,
        post_test_max=hi,
        **cite.common(),  # type: ignore[arg-type]
    )
