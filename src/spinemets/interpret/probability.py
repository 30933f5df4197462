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

Bone-scan figures come from mixed primaries and fail where the tracer has no
bone-forming reaction to show.  The rule rows of the same table (``rule-*``)
say where: for a matching histology (or purely lytic lesions) a covered
modality is either refused outright (myeloma and other plasma-cell
disorders: any result, even with given figures, so a negative scan can never
lower the probability of myeloma) or restricted to the figures published for
that histology, refused when there are none.  Figures of the histology that
give no usable pair (a sensitivity range only) are listed beside the
scenarios.  Without a histology nothing changes, but a covered modality
carries a notice saying where the figures do not apply.
"""

from __future__ import annotations

import difflib
import functools
import itertools
import math
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from spinemets.errors import InsufficientDataError, InvalidInputError
from spinemets.knowledge.loader import KnowledgeBase, load_kb
from spinemets.knowledge.models import NON_PRIMARY_KINDS, TableRow
from spinemets.results import Citer, Component, KeptPerObject, Notice, Result, citable, trusted
from spinemets.validation import parse

TABLE = "modality_accuracy"
INDEPENDENCE = "performance.bayes.conditional_independence"
FORMULAS = "performance.bayes.formulas"
SOURCES_DIFFER = "performance.caveat.lr_depends_on_source"
HISTOLOGY_LIMITS = "performance.bone_scan.histology_limits"
DISAGREEMENT_TOPIC = "source-disagreement"
MAX_SCENARIOS = 16
# Spelling tolerance for histology names (text matching, not a clinical threshold): 'melanoma' vs 'myeloma' is
# 0.80 and must not count as a typo; 'myelom' (0.92), 'kidny' (0.91) and 'thyroyd' (0.86) must.
TYPO_CUTOFF = 0.85
MIN_TYPO_LENGTH = 4


class TestInput(BaseModel):
    """One test: its result and either a modality (looked up) or its sensitivity and specificity."""

    model_config = ConfigDict(extra="forbid")

    result: Literal["positive", "negative"]
    modality: str | None = Field(default=None, description="e.g. mri, ct, fdg_pet_ct, bone_scan, spect")
    unit: Literal["patient", "lesion"] = Field(default="patient", description="per-patient or per-lesion figures")
    source: str | None = Field(default=None, description="source id of the figures, e.g. harlianto-2024")
    sensitivity: float | None = Field(default=None, ge=0, le=1)
    specificity: float | None = Field(default=None, ge=0, le=1)
    likelihood_ratio: float | None = Field(
        default=None, gt=0, le=10000,
        description="the likelihood ratio of this result (LR+ for a positive, LR- for a negative one), given instead "
        "of sensitivity and specificity; the modality, if named, is then only a label")

    @model_validator(mode="after")
    def _either(self) -> TestInput:
        given = (self.sensitivity is not None, self.specificity is not None)
        if self.likelihood_ratio is not None:
            if any(given):
                raise ValueError("give the likelihood ratio or sensitivity and specificity, not both")
            if (self.result == "positive") != (self.likelihood_ratio >= 1) and self.likelihood_ratio != 1:
                raise ValueError(f"a {self.result} result with a likelihood ratio of {self.likelihood_ratio:g} does not fit: "
                                 "a positive result has a ratio above 1 (LR+), a negative one below 1 (LR-)")
            if self.source is not None:
                raise ValueError("a source chooses published figures; with a given likelihood ratio there are none")
            return self
        if any(given) and not all(given):
            raise ValueError("give both sensitivity and specificity, or neither (then modality is looked up)")
        if not any(given) and self.modality is None:
            raise ValueError("give a modality to look up, sensitivity and specificity, or a likelihood ratio")
        return self


class ProbabilityInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pre_test: float = Field(ge=0, le=1, description="pre-test probability, 0-1")
    tests: list[TestInput] = Field(min_length=1, max_length=8)
    histology: str | None = Field(
        default=None, min_length=1, max_length=200,
        description="primary tumour histology or site, e.g. 'multiple myeloma', 'renal cell carcinoma', 'thyroid'; "
        "decides whether bone-scan figures apply",
    )
    purely_lytic: bool | None = Field(
        default=None, description="whether the lesions in question are purely lytic (osteolytic, no sclerosis)"
    )


class Step(BaseModel):
    test: int
    modality: str | None
    result: str
    unit: str
    source: str | None
    sensitivity: float | None = Field(description="None when the likelihood ratio was given instead")
    specificity: float | None = Field(description="None when the likelihood ratio was given instead")
    lr_positive: float | None = Field(description="None when infinite (specificity 1), or not given")
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


class OtherFigure(BaseModel):
    """Published figures for the histology that give no usable pair (e.g. a sensitivity range only)."""

    modality: str
    unit: str
    source: str
    source_label: str | None = Field(default=None, description="the source in words (the id stays in `source`)")
    population: str | None = None
    sensitivity_range: list[float] | None = None
    note: str | None = None
    refs: list[int] = Field(default_factory=list)


class ProbabilityResult(Result):
    instrument: str = "probability"
    pre_test: float
    scenarios: list[Scenario]
    post_test_min: float
    post_test_max: float
    histology: str | None = Field(default=None, description="histology group of the rule that applied, if any")
    other_figures: list[OtherFigure] = Field(default_factory=list)

    def extra_lines(self) -> list[str]:
        lines = []
        for sc in self.scenarios:
            pops = {st.population for st in sc.steps if st.population}
            lines.append(f"  {sc.label}" + (f" - population: {'; '.join(sorted(pops))}" if pops else ""))
            for st in sc.steps:
                lr = st.lr_positive if st.result == "positive" else st.lr_negative
                lr_text = "infinite" if lr is None else f"{lr:.2f}"
                refs = f" [{','.join(map(str, st.refs))}]" if st.refs else ""
                figures = "given likelihood ratio, " if st.sensitivity is None else \
                    f"Se {st.sensitivity:.3g}, Sp {st.specificity:.3g}, "
                lines.append(
                    f"    test {st.test}: {st.modality or 'given test'} {st.result} "
                    f"({figures}LR{'+' if st.result == 'positive' else '-'} {lr_text})"
                    f": {st.pre_test:.1%} -> {st.post_test:.1%}{refs}"
                )
        for f in self.other_figures:
            refs = f" [{','.join(map(str, f.refs))}]" if f.refs else ""
            span = ""
            if f.sensitivity_range:
                span = f"Se {f.sensitivity_range[0]:.0%}-{f.sensitivity_range[1]:.0%}, no specificity"
            detail = "; ".join(part for part in (span, f.note or "") if part)
            lines.append(
                f"  also published, no usable pair: {f.modality.replace('_', ' ')} ({f.source_label or f.source}) - population: "
                f"{f.population or 'not stated'}{': ' + detail if detail else ''}{refs}"
            )
        return lines


@functools.lru_cache(maxsize=1024)
def _source_words(kb: KnowledgeBase, source_ids: str) -> str:
    """'harlianto-2024, seed-001' -> 'Harlianto 2024, AI answer page' (text for people; ids stay in fields)."""
    out = []
    for sid in (s.strip() for s in source_ids.split(",")):
        out.append(kb.sources[sid].label() if sid in kb.sources else sid)
    return ", ".join(dict.fromkeys(out))


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


def update_by_ratio(pre: float, ratio: float) -> float:
    """One Bayes step with the result's likelihood ratio: post-test odds = pre-test odds x LR."""
    if pre in (0.0, 1.0):
        return pre
    odds = pre / (1 - pre) * ratio
    return odds / (1 + odds)


Candidate = tuple[float | None, float | None, TableRow | None]


def _key(text: str) -> str:
    """Lower-case words: 'Plasma-cell disorder' -> 'plasma cell disorder'."""
    return " ".join(re.sub(r"[^a-z0-9]+", " ", text.lower()).split())


# What the calculation reads from the knowledge base on every call is derived from it once per knowledge base (the
# knowledge base is immutable once loaded; the caches are keyed on the object).
@functools.lru_cache(maxsize=16)
def _rules(kb: KnowledgeBase, kind: str) -> tuple[TableRow, ...]:
    """The rule rows of one kind ('histology' or 'purely_lytic'), in table order."""
    return tuple(r for r in kb.table(TABLE).rows if r.get("rule") == kind)


@functools.lru_cache(maxsize=16)
def _all_spellings(kb: KnowledgeBase) -> dict[str, tuple[str, ...]]:
    """Each histology rule's spellings as lower-case words, by row id."""
    return {r.id: tuple(_key(str(s)) for s in (r["histology"], r["label"], *(r.get("aliases") or [])))
            for r in _rules(kb, "histology")}


def _spellings(rule: TableRow, kb: KnowledgeBase) -> tuple[str, ...]:
    return _all_spellings(kb)[rule.id]


def _compact_runs(key: str) -> set[str]:
    """Every run of consecutive words of *key*, spaces removed ("renal cell carcinoma" -> "renalcell", ...)."""
    words = key.split()
    return {"".join(words[i:j]) for i in range(len(words)) for j in range(i + 1, len(words) + 1)}


def histology_rule(histology: str | None, kb: KnowledgeBase | None = None) -> TableRow | None:
    """The rule row whose histology the text names (any spelling, as whole words), or None.

    Text naming two ruled histologies at once, or a near miss of a spelling (a likely typo), is an error:
    guessing either way could apply bone-scan figures where they fail.
    """
    if histology is None:
        return None
    return _histology_rule(kb or load_kb(), histology)


@functools.lru_cache(maxsize=2048)
def _histology_rule(kb: KnowledgeBase, histology: str) -> TableRow | None:
    """:func:`histology_rule`, once per knowledge base and spelling (the near-miss test compares every run of
    words with every spelling; an error is not kept, so a refused spelling is refused again each time)."""
    key = _key(histology)
    rules = _rules(kb, "histology")
    # a spelling as whole words, or run together ("multiplemyeloma", "renalcell carcinoma")
    runs = _compact_runs(key)
    found = [r for r in rules
             if any(f" {s} " in f" {key} " or s.replace(" ", "") in runs for s in _spellings(r, kb))]
    if len(found) > 1:
        raise InvalidInputError(
            "probability.histology",
            f"{histology!r} names more than one primary ({' and '.join(str(r['label']) for r in found)}); "
            "give the primary the lesions come from",
        )
    if found:
        return found[0]
    # A near miss of a name (myelom, plasmocytoma, kidny, multiple myelona, plasmacell disordr) is a typo, not
    # another primary: each run of words is compared with each spelling, spaces removed.
    names = {s.replace(" ", ""): s for r in rules for s in _spellings(r, kb) if len(s.replace(" ", "")) >= MIN_TYPO_LENGTH}
    for word in sorted(runs):
        if len(word) >= MIN_TYPO_LENGTH and word not in names:
            close = difflib.get_close_matches(word, sorted(names), n=1, cutoff=TYPO_CUTOFF)
            if close:
                raise InvalidInputError(
                    "probability.histology",
                    f"{histology!r} is not a recognised spelling; did you mean {names[close[0]]!r}?",
                )
    return None


def _covering(t: TestInput, group: TableRow | None, purely_lytic: bool | None, kb: KnowledgeBase) -> TableRow | None:
    """The rule that governs this test's modality: the histology's rule first, then the purely-lytic rule."""
    if t.modality is None:
        return None
    if group is not None and t.modality in group["modalities"]:
        return group
    if purely_lytic:
        return next((r for r in _rules(kb, "purely_lytic") if t.modality in r["modalities"]), None)
    return None


def _who(rule: TableRow, histology: str | None) -> str:
    label = str(rule["label"])
    return f"{label} (histology given: {histology!r})" if rule.get("rule") == "histology" else label


def _refusal(t: TestInput, i: int, rule: TableRow, histology: str | None, kb: KnowledgeBase,
             histology_key: str | None) -> InvalidInputError:
    """The error for a test the rule does not allow, with the rule's reason in clinical words."""
    modality = str(t.modality).replace("_", " ")
    reason = kb.statement(str(rule["reason"])).text
    if rule["action"] == "refuse":
        message = f"a {modality} result cannot be used to estimate the probability for {_who(rule, histology)}: {reason}"
    else:
        label = str(rule["label"])
        message = (
            f"the knowledge base holds no {t.unit}-level {modality} figures for {_who(rule, histology)}, and "
            f"figures from mixed primaries do not apply: {reason}"
        )
        units = sorted({str(r["unit"]) for r in _specific_rows(kb, t.modality, None, histology_key) if _paired(r)})
        if units:
            message += f" Figures for {label} exist per {' and per '.join(units)}: set the unit accordingly."
        elif rule.get("rule") == "purely_lytic":
            with_figures = [str(r["label"]) for r in _rules(kb, "histology")
                            if any(_paired(x) for x in _specific_rows(kb, t.modality, None, str(r["histology"])))]
            if with_figures:
                message += f" Histology-specific figures exist for {', '.join(with_figures)}: give the histology."
    return InvalidInputError(f"probability.tests[{i}].modality", message)


def _paired(row: TableRow) -> bool:
    return row.get("sensitivity") is not None and row.get("specificity") is not None


def _specific_rows(kb: KnowledgeBase, modality: str | None, unit: str | None, histology_key: str | None) -> list[TableRow]:
    """Figure rows of one histology (all units when unit is None); none without a histology."""
    if histology_key is None:
        return []
    return [r for r in kb.table(TABLE).rows
            if r.get("histology") == histology_key and r.get("rule") is None and r.get("modality") == modality
            and (unit is None or r.get("unit") == unit)]


def _candidates(t: TestInput, i: int, kb: KnowledgeBase, rule: TableRow | None = None,
                histology: str | None = None, histology_key: str | None = None) -> tuple[list[Candidate], list[TableRow]]:
    """(sensitivity, specificity, row) options for one test, and the histology's rows without a usable pair."""
    if rule is not None and rule["action"] == "refuse":
        raise _refusal(t, i, rule, histology, kb, histology_key)
    if t.sensitivity is not None and t.specificity is not None:
        return [(t.sensitivity, t.specificity, None)], []
    if t.likelihood_ratio is not None:
        return [(None, None, None)], []
    table = kb.table(TABLE)
    unpaired: list[TableRow] = []
    if rule is None and t.source is None:
        options = _general_options(kb, t.modality, t.unit)
        if options:
            return list(options), []
    if rule is None:
        rows = [r for r in table.where(modality=t.modality, unit=t.unit) if r.get("histology") is None and _paired(r)]
        scope = ""
    else:
        specific = _specific_rows(kb, t.modality, t.unit, histology_key)
        rows = [r for r in specific if _paired(r)]
        unpaired = [r for r in specific if not _paired(r)]
        scope = f" in {rule['label']}" if rule.get("rule") == "histology" else f" for {rule['label']}"
        if not rows:
            raise _refusal(t, i, rule, histology, kb, histology_key)
    if not rows:
        modalities = sorted({str(r["modality"]) for r in table.rows if r.get("sensitivity") is not None})
        raise InvalidInputError(
            f"probability.tests[{i}].modality",
            f"no {t.unit}-level figures for {t.modality!r}; modalities with figures: {', '.join(modalities)}",
        )
    if t.source is not None:
        chosen = [r for r in rows if t.source in r.sources]
        if not chosen:
            # the value to give, with the source in words; answer pages and web summaries are not offered as a choice
            options = sorted({s for r in rows for s in r.sources
                              if s not in kb.sources or kb.sources[s].kind not in NON_PRIMARY_KINDS})
            named = ", ".join(f"{kb.sources[s].label()} ('{s}')" if s in kb.sources else repr(s) for s in options)
            message = f"{t.source!r} gives no {t.unit}-level figures for {t.modality}{scope}; sources that do: {named}"
            only = sorted({str(r["histology"]) for r in table.where(modality=t.modality, unit=t.unit)
                           if t.source in r.sources and r.get("histology") is not None})
            if only and rule is None:
                labels = [str(r["label"]) for r in _rules(kb, "histology") if r["histology"] in only]
                who = kb.sources[t.source].label() if t.source in kb.sources else repr(t.source)
                message += f" ({who} reports figures for {', '.join(labels)} only: give the histology)"
            raise InvalidInputError(f"probability.tests[{i}].source", message)
        rows, unpaired = chosen, []
    return _options(rows), unpaired


def _options(rows: list[TableRow]) -> list[Candidate]:
    """One option per (sensitivity, specificity) pair: the same pair quoted by several sources (a seed repeating a
    meta-analysis) is one option, its first row."""
    seen: dict[tuple[float, float], TableRow] = {}
    for r in rows:
        seen.setdefault((float(r["sensitivity"]), float(r["specificity"])), r)
    return [(se, sp, r) for (se, sp), r in seen.items()]


@functools.lru_cache(maxsize=256)
def _general_options(kb: KnowledgeBase, modality: str | None, unit: str) -> tuple[Candidate, ...]:
    """The options of a test without a histology rule and without a chosen source, once per knowledge base,
    modality and unit (empty: none, and the caller explains why)."""
    rows = [r for r in kb.table(TABLE).where(modality=modality, unit=unit) if r.get("histology") is None and _paired(r)]
    return tuple(_options(rows))


_SAME_FIGURES = KeptPerObject(4096)  # per row, modality and unit


def _same_figures(kb: KnowledgeBase, modality: str | None, unit: str, row: TableRow) -> tuple[tuple[TableRow, ...], str]:
    """The rows giving the same figures as *row* for the modality and unit (a pair quoted by several sources), and
    their sources as cited, once per row (a row belongs to one knowledge base)."""
    kept = _SAME_FIGURES.get(row, modality, unit)
    if kept is not KeptPerObject.MISSING:
        return kept  # type: ignore[no-any-return]
    same = tuple(r for r in kb.table(TABLE).where(modality=modality, unit=unit, sensitivity=row.get("sensitivity"),
                                                  specificity=row.get("specificity"))
                 if r.get("histology") == row.get("histology"))
    source = ", ".join(citable(kb, tuple(dict.fromkeys(s for r in same for s in r.sources))))
    return _SAME_FIGURES.put(row, (same, source), modality, unit)  # type: ignore[no-any-return]


@functools.lru_cache(maxsize=16)
def _covered_modalities(kb: KnowledgeBase) -> frozenset[str]:
    return frozenset(str(m) for r in _rules(kb, "histology") for m in r["modalities"])


def _histology_notices(inp: ProbabilityInput, group: TableRow | None, applied: list[TableRow],
                       kb: KnowledgeBase, cite: Citer) -> list[Notice]:
    """The reason of each rule applied; without a (recognised) histology, where bone-scan figures fail."""
    notices = []
    for rule in applied:
        sid = str(rule["reason"])
        code = "sources_differ" if DISAGREEMENT_TOPIC in kb.statement(sid).topics else "histology_figures"
        notices.append(cite.notice(code, kb.statement(sid).text, kb_items=[sid]))
    if any(t.modality in _covered_modalities(kb) for t in inp.tests) and group is None:
        text = kb.statement(HISTOLOGY_LIMITS).text
        if inp.histology is not None:
            labels = ", ".join(str(r["label"]) for r in _rules(kb, "histology"))
            text = f"The histology given ({inp.histology!r}) is not one for which bone-scan figures are restricted ({labels}). " + text
        notices.append(cite.notice("bone_scan_histology", text, kb_items=[HISTOLOGY_LIMITS]))
    return notices


def _histology_components(inp: ProbabilityInput, group: TableRow | None, applied: list[TableRow],
                          cite: Citer) -> list[Component]:
    out = []
    if inp.histology is not None:
        rule = group if group is not None and group.id in {r.id for r in applied} else None
        out.append(cite.component(
            "histology", TABLE, rule, value=inp.histology, label=str(group["label"]) if group is not None else None,
            note=rule.note if rule is not None else None,
        ))
    if inp.purely_lytic is not None:
        lytic = next((r for r in applied if r.get("rule") == "purely_lytic"), None)
        out.append(cite.component("purely_lytic", TABLE, lytic, value="yes" if inp.purely_lytic else "no",
                                  note=lytic.note if lytic is not None else None))
    return out


def _other_figure(row: TableRow, cite: Citer) -> OtherFigure:
    rng = row.get("sensitivity_range")
    source = ", ".join(citable(cite.kb, tuple(row.sources)))
    return OtherFigure(
        modality=str(row["modality"]), unit=str(row["unit"]), source=source, source_label=_source_words(cite.kb, source),
        population=row.get("population"), sensitivity_range=[float(x) for x in rng] if rng else None,
        note=row.note, refs=cite.cite_row(TABLE, row),
    )


def post_test_probability(data: ProbabilityInput | dict[str, Any], kb: KnowledgeBase | None = None) -> ProbabilityResult:
    """Post-test probability after one or more tests; see the module docstring."""
    kb = kb or load_kb()
    inp = parse(ProbabilityInput, data, "probability")
    cite = Citer(kb)
    group = histology_rule(inp.histology, kb)
    key = str(group["histology"]) if group is not None else None
    rules = [_covering(t, group, inp.purely_lytic, kb) for t in inp.tests]
    options, unpaired = [], []
    for i, (t, rule) in enumerate(zip(inp.tests, rules)):
        cands, others = _candidates(t, i, kb, rule, inp.histology, key)
        options.append(cands)
        unpaired.extend(r for r in others if r not in unpaired)
    applied = list({r.id: r for r in rules if r is not None}.values())
    looked_up = dict.fromkeys(str(r["label"]) for r, t in zip(rules, inp.tests)
                              if r is not None and r.get("rule") == "histology" and t.sensitivity is None)
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
            if t.likelihood_ratio is not None:
                post = update_by_ratio(p, t.likelihood_ratio)
                lr_pos, lr_neg = (t.likelihood_ratio, None) if t.result == "positive" else (None, t.likelihood_ratio)
            else:
                post = update(p, se, sp, t.result == "positive", f"probability.tests[{i}]")
                lr_pos, lr_neg = likelihood_ratios(se, sp)
            refs, source, population = [], None, None
            if t.likelihood_ratio is not None:  # a given ratio: the arithmetic is what is cited
                refs = cite.cite_statement(FORMULAS)
            elif row is not None:
                same, source = _same_figures(kb, t.modality, t.unit, row)
                for r in same:
                    refs.extend(cite.cite_row(TABLE, r))
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
            f"{s.modality or 'test'} {s.result}" + (f" ({_source_words(kb, s.source)})" if s.source else
                                                    " (given likelihood ratio)" if s.sensitivity is None else
                                                    " (given figures)")
            for s in steps
        )
        scenarios.append(Scenario(label=label, steps=steps, post_test=p))

    lo = min(s.post_test for s in scenarios)
    hi = max(s.post_test for s in scenarios)
    summary = (
        f"post-test probability {lo:.1%}" if math.isclose(lo, hi, abs_tol=5e-4)
        else f"post-test probability {lo:.1%} to {hi:.1%} depending on the published figures"
    ) + f" (pre-test {inp.pre_test:.1%}" + "".join(f"; figures specific to {label}" for label in looked_up) + ")"
    components = [
        trusted(Component, None, name="pre_test", value=f"{inp.pre_test:.3g}", note="pre-test probability as given"),
        *_histology_components(inp, group, applied, cite),
    ]
    if any(t.likelihood_ratio is not None for t in inp.tests):
        # a ratio given, not looked up: the arithmetic is what the result rests on
        components.append(trusted(Component, None, name="method", value="pre-test odds x likelihood ratio", kb_items=[FORMULAS],
                                    refs=cite.cite_statement(FORMULAS), note="Bayes' theorem in odds form"))
    notices = []
    if len(inp.tests) > 1:
        notices.append(cite.notice("independence", kb.statement(INDEPENDENCE).text, kb_items=[INDEPENDENCE]))
    if len(scenarios) > 1 and any(t.source is None and t.sensitivity is None for t in inp.tests):
        notices.append(cite.notice("sources_differ", kb.statement(SOURCES_DIFFER).text, kb_items=[SOURCES_DIFFER]))
    notices.extend(_histology_notices(inp, group, applied, kb, cite))
    other_figures = [_other_figure(r, cite) for r in unpaired]
    return trusted(
        ProbabilityResult, None,
        status="complete",
        summary=summary,
        components=components,
        notices=notices,
        pre_test=inp.pre_test,
        scenarios=scenarios,
        post_test_min=lo,
        post_test_max=hi,
        histology=key,
        other_figures=other_figures,
        **cite.common(),  # type: ignore[arg-type]
    )
