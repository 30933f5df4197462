"""Osteoporotic vs malignant vertebral fracture: likelihood ratios checked by hand against the table rows.

Figures (tables/fracture_features.yaml, clinical-facts F1):
- convex_posterior_border: Cuénod 1996, 21/30 malignant vs 4/63 osteoporotic -> LR+ 0.700/0.0635 = 11.0, LR- 0.32
- pedicle_involvement: Cuénod, 24/30 vs 4/63 -> LR+ 0.800/0.0635 = 12.6, LR- 0.21
- diffuse_low_t1_signal: Cuénod, 23/30 vs 12/63 -> LR+ 4.0, LR- 0.29
- epidural_mass: Cuénod, 24/30 vs 0/63 -> LR+ not finite (null), LR- 0.20/1.0 = 0.20
- diffusion_restriction: Suh 2018 pooled Se 0.92 / Sp 0.91 -> LR+ 10.2, LR- 0.09
- retropulsed_fragment (favours osteoporosis): 10/63 vs 0/30 -> LR+ not finite, LR- 0.84
- spared_normal_marrow (favours osteoporosis): 43/63 vs 4/30 -> LR+ 5.1, LR- 0.37
- fluid_sign (favours osteoporosis): Baur 2002, 21/52 vs 2/35 -> LR+ 7.1, LR- 0.63
For a row favouring osteoporosis the ratio for malignancy is the reciprocal (the table's description).
"""

from __future__ import annotations

import math

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from spinemets.errors import ContradictoryInputError, InsufficientDataError, InvalidInputError, SpinemetsError
from spinemets.interpret.fracture import FractureInput, Presence, fracture_differential, post_test
from spinemets.knowledge.loader import load_kb
from tests.support import DISCLAIMER, check_arbitrary_input, cli, from_kb  # noqa: F401 (cli is a fixture)


def feature_ids(kb, favours: str | None = None) -> list[str]:
    """The features of the table, in its order (only those favouring *favours*, when given)."""
    return [r.id for r in kb.table("fracture_features").rows if favours is None or r["favours"] == favours]


def odds_to_p(pre: float, lr: float) -> float:
    odds = pre / (1 - pre) * lr
    return odds / (1 + odds)


def test_table_vocabulary(kb):
    rows = kb.table("fracture_features").rows
    with_lr = [r.id for r in rows if r.get("lr_positive") is not None or r.get("lr_negative") is not None]
    assert {r["favours"] for r in rows} == {"malignant", "osteoporotic"}
    assert {r["modality"] for r in rows} <= {"ct", "mri", "ct_or_mri"}
    assert sorted(with_lr) == sorted([
        "convex_posterior_border", "epidural_mass", "pedicle_involvement", "diffuse_low_t1_signal",
        "diffusion_restriction", "retropulsed_fragment", "spared_normal_marrow", "fluid_sign",
    ])


def test_worked_example_three_features_with_pre_test():
    # 11.0 (convex, LR+) x 12.6 (pedicle, LR+) x 1/0.63 (fluid sign absent: 1 / LR- for osteoporosis = 1.587)
    # = 220.0; pre-test 30%: odds 0.4286 x 220.0 = 94.29 -> 94.29/95.29 = 98.95%.
    r = fracture_differential({
        "convex_posterior_border": "present", "pedicle_involvement": True, "fluid_sign": "absent", "pre_test": 0.30,
    })
    assert r.status == "complete"
    assert r.combined_lr == pytest.approx(11.0 * 12.6 / 0.63)
    assert r.combined_lr == pytest.approx(220.0, abs=0.05)
    assert r.leaning == "malignant"
    assert r.post_test == pytest.approx(0.9895, abs=0.0001)
    assert r.features_with_lr == 3
    fluid = next(f for f in r.findings if f.feature == "fluid_sign")
    assert fluid.points_to == "malignant" and fluid.lr_malignant == pytest.approx(1.587, abs=0.001)
    assert fluid.lr_basis == "1 / LR- 0.63 for osteoporosis"
    assert any(n.code == "independence" for n in r.notices)
    # The independence caveat cites the Bayes statement's sources.
    ind = next(n for n in r.notices if n.code == "independence")
    assert ind.kb_items == ["performance.bayes.conditional_independence"] and ind.refs


def test_single_feature_post_test():
    # Restricted diffusion present, LR+ 10.2; pre-test 10%: odds 0.1111 x 10.2 = 1.1333 -> 53.1%.
    r = fracture_differential({"diffusion_restriction": "present", "pre_test": 0.10})
    assert r.combined_lr == pytest.approx(10.2)
    assert r.post_test == pytest.approx(0.53125, abs=0.00001)
    assert not any(n.code == "independence" for n in r.notices)  # one ratio: nothing multiplied


def test_osteoporotic_feature_reciprocal():
    # Spared normal marrow present: 1 / 5.1 = 0.196 for malignancy; pre-test 50% -> 0.196/1.196 = 16.4%.
    r = fracture_differential({"spared_normal_marrow": "present", "pre_test": 0.5})
    assert r.combined_lr == pytest.approx(1 / 5.1)
    assert r.leaning == "osteoporotic"
    assert r.post_test == pytest.approx(0.1639, abs=0.0001)
    assert r.findings[0].lr_basis == "1 / LR+ 5.1 for osteoporosis"
    assert any(s.statement == "fracture.osteoporotic_collapse_evolves" for s in r.next_steps)


def test_absent_features():
    # Epidural mass absent: LR- 0.20; retropulsed fragment absent: 1/0.84 = 1.190. Product 0.238.
    r = fracture_differential({"epidural_mass": False, "retropulsed_fragment": "absent"})
    assert r.combined_lr == pytest.approx(0.20 / 0.84)
    assert r.leaning == "osteoporotic"
    assert r.post_test is None and r.pre_test is None and r.pre_test_source is None
    assert any(n.code == "no_pre_test" for n in r.notices)


def test_infinite_ratio_left_out():
    # Epidural mass present: 24/30 vs 0/63, no false positives -> no finite LR+; direction only.
    r = fracture_differential({"epidural_mass": "present", "pre_test": 0.2})
    f = r.findings[0]
    assert f.lr_malignant is None
    assert f.lr_basis == "no finite likelihood ratio (no false positives in the source study)"
    assert r.combined_lr is None and r.post_test is None
    assert r.leaning == "malignant"
    assert r.leaning_basis == "direction of present features without published likelihood ratios"
    assert [(n.code, n.message) for n in r.notices if n.code == "no_update"] == [("no_update", NO_UPDATE_TEXT)]
    assert "not in this figure" not in r.to_text()


def test_direction_only_feature():
    r = fracture_differential({"other_spinal_metastases": "present"})
    assert r.findings[0].lr_basis == "no published likelihood ratio"
    assert r.leaning == "malignant"
    r = fracture_differential({"other_spinal_metastases": "absent"})
    assert r.leaning == "indeterminate"  # absence of a sign without figures is not weighed
    assert r.findings[0].points_to == "osteoporotic"


def test_unweighable_sign_against_the_ratio_makes_it_indeterminate():
    # Cortical destruction (malignant, no finite ratio: Kubota 2005 100% accuracy) with spared marrow
    # (osteoporotic, 1/5.1): the ratio says osteoporotic, but a sign it cannot weigh says malignant.
    r = fracture_differential({"cortical_destruction": "present", "spared_normal_marrow": "present", "pre_test": 0.5})
    assert r.combined_lr == pytest.approx(1 / 5.1)
    assert r.leaning == "indeterminate"
    assert "cannot be weighed" in r.leaning_basis
    assert any(n.code == "signs_conflict" for n in r.notices)
    assert r.next_steps[-1].statement == "fracture.next_steps_when_indeterminate"
    assert "not in this figure (no likelihood ratio): cortical_destruction" in r.to_text()


def test_conflicting_ratios_are_weighed():
    # Pedicle 12.6 x fluid sign present 1/7.1 = 1.775 -> leaning malignant, with the conflict notice.
    r = fracture_differential({"pedicle_involvement": "present", "fluid_sign": "present"})
    assert r.combined_lr == pytest.approx(12.6 / 7.1)
    assert r.leaning == "malignant"
    # Two ratios multiplied: the independence caveat already applies.
    assert [n.code for n in r.notices] == ["independence", "no_pre_test", "signs_conflict", "caveat"]


def test_exactly_balanced_is_indeterminate():
    # No pair of table rows multiplies to exactly 1, so the boundary is checked on the leaning helper.
    from spinemets.interpret.fracture import _leaning

    assert _leaning(11.0 * (1 / 11.0), set())[0] == "indeterminate"
    assert _leaning(None, set())[0] == "indeterminate"
    assert _leaning(None, {"malignant", "osteoporotic"})[0] == "indeterminate"


def test_pre_test_from_kb_known_cancer():
    # Up to one-third of VCFs in known cancer are benign (BJR 2016) -> malignant at least 1 - 0.3333 = 0.6667.
    # Restricted diffusion absent: LR- 0.09; odds 2.0003 x 0.09 = 0.1800 -> at least 15.26%.
    r = fracture_differential({"diffusion_restriction": "absent", "known_cancer": True, "pre_test_from_kb": True})
    assert r.pre_test == pytest.approx(0.6667)
    assert r.post_test == pytest.approx(odds_to_p(0.6667, 0.09))
    assert r.post_test == pytest.approx(0.1526, abs=0.0001)
    assert r.post_test_is_lower_bound
    assert any(ref.source_id == "bjr-2016" for ref in r.references)
    assert any(n.code == "population_pre_test" for n in r.notices)
    text = r.to_text()
    assert "post-test probability of malignancy at least 15.3%" in text
    assert "pre-test at least 66.7%: up to one-third" in text


def test_malignant_leaning_without_known_cancer_points_to_histology():
    r = fracture_differential({"pedicle_involvement": "present", "known_cancer": False})
    ids = [s.statement for s in r.next_steps]
    assert ids == ["imaging.unknown_primary.histology", "imaging.unknown_primary.body_ct",
                   "fracture.next_steps_when_indeterminate"]
    assert all(s.refs for s in r.next_steps)
    assert any(n.kb_items == ["fracture.benign_collapse_mimicking_malignancy"] for n in r.notices)


def test_known_cancer_malignant_leaning_adds_caveat():
    r = fracture_differential({"convex_posterior_border": "present", "known_cancer": True})
    assert [(n.code, n.kb_items) for n in r.notices if n.code != "no_pre_test"] == [
        ("caveat", ["fracture.benign_collapse_mimicking_malignancy"]),
        ("caveat", ["fracture.benign_in_known_cancer"]),
    ]


def test_source_disagreement_caveats():
    r = fracture_differential({"intense_enhancement": "present", "high_t2_signal": "present"})
    assert [(n.code, n.kb_items) for n in r.notices if n.code == "caveat"][:2] == [
        ("caveat", ["fracture.enhancement_evidence_differs"]),
        ("caveat", ["fracture.t2_signal_evidence_differs"]),
    ]
    r = fracture_differential({"diffuse_low_t1_signal": "present", "spared_normal_marrow": "absent"})
    assert [i for n in r.notices for i in n.kb_items].count("fracture.yuh_rule_limits") == 1


def test_nothing_known_is_insufficient_data(kb):
    ids = feature_ids(kb)
    r = fracture_differential({})
    assert r.status == "insufficient_data"
    assert r.missing == [f"fracture.{i}" for i in ids]
    assert r.combined_lr is None and r.post_test is None and r.leaning == "indeterminate"
    # Largest |ln LR| first: pedicle ln 12.6 = 2.53; diffusion ln(1/0.09) = 2.41; convex ln 11 = 2.40;
    # fluid ln 7.1 = 1.96; spared ln 5.1 = 1.63; epidural ln(1/0.2) = 1.61; diffuse T1 ln 4 = 1.39;
    # retropulsed ln 1.19 = 0.17.
    assert [u.feature for u in r.most_informative_unknown] == [
        "pedicle_involvement", "diffusion_restriction", "convex_posterior_border", "fluid_sign",
        "spared_normal_marrow", "epidural_mass", "diffuse_low_t1_signal", "retropulsed_fragment",
    ]
    assert r.summary == "insufficient data: no feature given as present or absent; give at least one of the 26 features"
    r = fracture_differential({f: "unknown" for f in ids} | {"pre_test": 0.3})
    assert r.status == "insufficient_data" and r.post_test is None and r.pre_test == 0.3


def test_informative_unknown_flags_a_change_of_leaning():
    # Current: convex present -> 11.0, malignant. Diffusion absent would give 11.0 x 0.09 = 0.99 -> osteoporotic.
    r = fracture_differential({"convex_posterior_border": "present"})
    d = next(u for u in r.most_informative_unknown if u.feature == "diffusion_restriction")
    assert (d.lr_if_present, d.lr_if_absent) == (pytest.approx(10.2), pytest.approx(0.09))
    assert d.leaning_if_absent == "osteoporotic" and d.changes_leaning
    p = next(u for u in r.most_informative_unknown if u.feature == "pedicle_involvement")
    assert p.leaning_if_absent == "malignant"  # 11.0 x 0.21 = 2.31
    assert not p.changes_leaning
    assert "convex_posterior_border" not in [u.feature for u in r.most_informative_unknown]


@pytest.mark.parametrize("value,expected", [
    (True, "present"), (False, "absent"), (None, "unknown"), ("Present", "present"), (" absent ", "absent"),
    ("UNKNOWN", "unknown"), (Presence.present, "present"),
])
def test_value_spellings(value, expected):
    r = fracture_differential({"fluid_sign": value})
    if expected == "unknown":
        assert r.status == "insufficient_data"
    else:
        assert r.findings[0].value.value == expected


def test_model_input():
    r = fracture_differential(FractureInput(features={"fluid_sign": Presence.present}, pre_test=0.5))
    assert r.combined_lr == pytest.approx(1 / 7.1)


def test_text_reads_well():
    text = fracture_differential({"convex_posterior_border": "present", "pre_test": 0.1}).to_text()
    lines = text.splitlines()
    assert lines[0] == "FRACTURE: leaning malignant: combined likelihood ratio 11.0 for malignancy from 1 feature with published ratios"
    # 0.1/0.9 x 11.0 = 1.222 -> 55.0%
    assert lines[1].startswith("  post-test probability of malignancy 55.0% [")
    assert "  convex_posterior_border: present (Convex (bulging) posterior border of the vertebral body) - favours malignant; LR 11.0 for malignancy (the table's LR+) [" in text
    assert "Next steps the sources give:" in text
    assert "Not yet assessed, largest likelihood ratios first" in text
    assert text.index("Next steps") > text.index("convex_posterior_border: present")
    assert "References" in text and DISCLAIMER in text


# --- errors -------------------------------------------------------------------------------------------


def test_unknown_feature_lists_allowed(kb):
    with pytest.raises(InvalidInputError) as exc:
        fracture_differential({"bulging_wall": "present"})
    assert str(exc.value) == (
        "fracture.bulging_wall: unknown feature; allowed features: " + ", ".join(sorted(feature_ids(kb)))
        + "; other fields: pre_test, known_cancer, pre_test_from_kb"
    )
    assert exc.value.field == "fracture.bulging_wall"
    with pytest.raises(InvalidInputError) as exc:
        fracture_differential(FractureInput(features={"nope": Presence.present}))
    assert str(exc.value).startswith("fracture.nope: unknown feature; allowed features: cancellous_destruction, ")


@pytest.mark.parametrize("data,message", [
    ({"fluid_sign": "maybe"},
     "fracture.fluid_sign: 'maybe' is not allowed; allowed values: 'present', 'absent', 'unknown' (or true, false, null)"),
    ({"fluid_sign": 1},
     "fracture.fluid_sign: 1 is not allowed; allowed values: 'present', 'absent', 'unknown' (or true, false, null)"),
    ({"pre_test": 1.5}, "fracture.pre_test: input should be less than or equal to 1 (got 1.5)"),
    ({"pre_test": -0.1}, "fracture.pre_test: input should be greater than or equal to 0 (got -0.1)"),
    ({"pre_test": float("nan")}, "fracture.pre_test: input should be a finite number (got nan)"),
    ({"pre_test": "high"}, "fracture.pre_test: input should be a valid number, unable to parse string as a number (got 'high')"),
    ({"pre_test": True}, "fracture.pre_test: expected a probability between 0 and 1, got True"),
    ({"known_cancer": "maybe"}, "fracture.known_cancer: input should be a valid boolean, unable to interpret input (got 'maybe')"),
    ({"pre_test_from_kb": True, "known_cancer": False},
     "fracture.known_cancer: the knowledge base gives a pre-test figure only for these populations: known_cancer; "
     "set known_cancer to true or give pre_test"),
    ([1, 2], "fracture: expected an object, got list"),
])
def test_invalid_inputs(data, message):
    with pytest.raises(InvalidInputError) as exc:
        fracture_differential(data)
    assert str(exc.value) == message


def test_pre_test_from_kb_without_the_cancer_history_is_insufficient_data():
    # The figure is for patients with known cancer: not stated is missing (not a wrong value), and no figure is given.
    with pytest.raises(InsufficientDataError) as exc:
        fracture_differential({"pre_test_from_kb": True})
    assert exc.value.fields == ["fracture.known_cancer"]
    assert str(exc.value) == ("insufficient data for the knowledge-base pre-test probability (it is given only for "
                              "patients with known cancer): missing fracture.known_cancer")


def test_pre_test_given_and_from_kb_contradict():
    with pytest.raises(ContradictoryInputError) as exc:
        fracture_differential({"pre_test": 0.3, "pre_test_from_kb": True, "known_cancer": True})
    assert str(exc.value) == (
        "contradictory input (fracture.pre_test, fracture.pre_test_from_kb): "
        "give a pre-test probability or ask for the knowledge-base figure, not both"
    )


def test_none_is_nothing_known():
    assert fracture_differential(None).status == "insufficient_data"


# --- properties ---------------------------------------------------------------------------------------

values = st.sampled_from(["present", "absent", "unknown"])
# Drawn from the table when a test runs (never at import): a value for some of the features.
assignments = from_kb(lambda kb: st.dictionaries(st.sampled_from(feature_ids(kb)), values,
                                                 max_size=len(feature_ids(kb))))
malignant_features = from_kb(lambda kb: st.sampled_from(feature_ids(kb, "malignant")))
osteoporotic_features = from_kb(lambda kb: st.sampled_from(feature_ids(kb, "osteoporotic")))


@settings(max_examples=150, deadline=None)
@given(findings=assignments, pre=st.floats(0.01, 0.99), feature=malignant_features)
def test_adding_a_malignant_sign_never_lowers_malignancy(findings, pre, feature):
    before = dict(findings)
    before[feature] = "unknown"
    after = dict(before)
    after[feature] = "present"
    r0 = fracture_differential(before | {"pre_test": pre})
    r1 = fracture_differential(after | {"pre_test": pre})
    p0 = r0.post_test if r0.post_test is not None else pre
    p1 = r1.post_test if r1.post_test is not None else pre
    assert p1 >= p0 - 1e-12
    if r0.combined_lr is not None and r1.combined_lr is not None:
        assert r1.combined_lr >= r0.combined_lr * (1 - 1e-12)


@settings(max_examples=150, deadline=None)
@given(findings=assignments, pre=st.floats(0.01, 0.99), feature=osteoporotic_features)
def test_adding_an_osteoporotic_sign_never_raises_malignancy(findings, pre, feature):
    before = dict(findings) | {feature: "unknown"}
    after = dict(before) | {feature: "present"}
    p0 = fracture_differential(before | {"pre_test": pre}).post_test
    p1 = fracture_differential(after | {"pre_test": pre}).post_test
    if p0 is not None and p1 is not None:
        assert p1 <= p0 + 1e-12


@settings(max_examples=150, deadline=None)
@given(findings=assignments, pre=st.floats(0.0, 1.0))
def test_post_test_is_bayes_on_the_combined_ratio(findings, pre):
    r = fracture_differential(findings | {"pre_test": pre})
    ratios = [f.lr_malignant for f in r.findings if f.lr_malignant is not None]
    if not ratios:
        assert r.combined_lr is None and r.post_test is None
        return
    assert r.combined_lr == pytest.approx(math.prod(ratios))
    assert 0.0 <= r.post_test <= 1.0
    if 0 < pre < 1:
        assert r.post_test == pytest.approx(odds_to_p(pre, r.combined_lr))
        if r.combined_lr > 1:
            assert r.post_test >= pre - 1e-12
        else:
            assert r.post_test <= pre + 1e-12
    assert r.leaning in ("malignant", "osteoporotic", "indeterminate")


@settings(max_examples=100, deadline=None)
@given(findings=assignments)
def test_order_of_input_does_not_matter(findings):
    a = fracture_differential(findings)
    b = fracture_differential(dict(reversed(list(findings.items()))))
    assert (a.combined_lr, a.leaning, a.status) == (b.combined_lr, b.leaning, b.status)


def test_post_test_extremes():
    assert post_test(0.0, 50.0) == 0.0 and post_test(1.0, 0.01) == 1.0
    assert post_test(0.5, 1.0) == pytest.approx(0.5)


@settings(max_examples=300, deadline=None)
@given(st.one_of(
    st.none(), st.integers(), st.text(max_size=5), st.lists(st.integers(), max_size=2),
    st.dictionaries(
        st.one_of(from_kb(lambda kb: st.sampled_from([*feature_ids(kb), "pre_test", "known_cancer",
                                                      "pre_test_from_kb"])), st.text(max_size=8)),
        st.one_of(st.none(), st.booleans(), st.floats(allow_nan=True, allow_infinity=True), st.integers(),
                  st.text(max_size=8), st.sampled_from(["present", "absent", "unknown"])),
        max_size=6,
    ),
))
def test_arbitrary_input_gives_our_error_naming_the_field_or_a_bounded_probability(kb, data):
    r = check_arbitrary_input(fracture_differential, data, "fracture", kb)
    if r is not None and r.post_test is not None:
        assert 0 <= r.post_test <= 1 and not math.isnan(r.post_test)
        assert r.combined_lr == pytest.approx(math.prod(f.lr_malignant for f in r.findings if f.lr_malignant is not None))


# --- worked examples asserted whole (every line a clinician reads) -------------------------------------------

INDEPENDENCE_TEXT = (
    "The combined likelihood ratio multiplies the ratios of several features, which assumes they are conditionally "
    "independent; features of the same fracture are not (several describe the same tumour tissue), so the combined "
    "figure overstates the evidence."
)
NO_PRE_TEST_TEXT = (
    "No pre-test probability given, so no post-test probability: the combined likelihood ratio and the leaning are "
    "reported alone."
)
NO_UPDATE_TEXT = "No known feature has a likelihood ratio, so the pre-test probability cannot be updated."
POPULATION_TEXT = (
    "The pre-test probability is a population figure (an upper bound on the benign share), not this patient's "
    "probability; the post-test probability computed from it is a lower bound."
)
CONFLICT_TEXT = "Present features point both ways (some favour malignancy, some osteoporosis)."


def numbers(r, source_ids) -> list[int]:
    """The reference numbers a result gives to these sources (each must be in its numbered references)."""
    by_id = {ref.source_id: ref.number for ref in r.references}
    return sorted({by_id[s] for s in source_ids})


def shown(refs: list[int]) -> str:
    """Reference numbers as the text shows them (after asserting there are some)."""
    assert refs
    return f" [{','.join(map(str, refs))}]"


def statement_refs(r, kb, statement_id: str) -> list[int]:
    return numbers(r, kb.statement(statement_id).sources)


def row_refs(r, kb, row_id: str, table: str = "fracture_features") -> list[int]:
    return numbers(r, kb.table(table).row(row_id).sources)


def unknown_line(r, kb, feature: str, ratios: str, flip: bool = False) -> str:
    row = kb.table("fracture_features").row(feature)
    tail = "; would change the leaning" if flip else ""
    return f"  - {feature} ({row['modality']}): {ratios}{tail}{shown(row_refs(r, kb, feature))}"


def assert_references_complete(r) -> None:
    """Every reference number the result shows resolves to a numbered reference, numbered 1..n in order."""
    listed = [ref.number for ref in r.references]
    assert listed == list(range(1, len(listed) + 1))
    used = {n for part in (*r.components, *r.notices, *r.next_steps, *r.most_informative_unknown) for n in part.refs}
    used |= set(r.post_test_refs) | set(r.pre_test_refs) | {n for f in r.findings for n in f.refs}
    assert used and used <= set(listed)


def test_worked_example_whole_text(kb):
    # Convex border 11.0 x pedicle 12.6 x fluid sign absent 1/0.63 = 220; other spinal metastases absent has no
    # ratio (direction only). Pre-test 30%: odds 0.4286 x 220 = 94.3 -> 99.0%.
    r = fracture_differential({
        "convex_posterior_border": "present", "pedicle_involvement": "present", "fluid_sign": "absent",
        "other_spinal_metastases": "absent", "pre_test": 0.30,
    })
    assert (r.status, r.leaning, r.leaning_basis) == ("complete", "malignant", "combined likelihood ratio")
    assert r.summary == (
        "leaning malignant: combined likelihood ratio 220 for malignancy from 3 features with published ratios; "
        "1 further feature by direction only"
    )
    assert (r.pre_test, r.pre_test_source, r.pre_test_refs, r.post_test_is_lower_bound) == (0.30, "given", [], False)
    assert r.post_test_refs == statement_refs(r, kb, "performance.bayes.formulas")
    assert r.extra_lines() == [
        f"  post-test probability of malignancy 99.0%{shown(r.post_test_refs)} (pre-test 30.0% as given)",
        "  not in this figure (no likelihood ratio): other_spinal_metastases",
    ]
    # Each finding, and its component, names its table row and all the row's sources.
    rows = {row.id: row for row in kb.table("fracture_features").rows}
    assert [f.feature for f in r.findings] == [
        "convex_posterior_border", "pedicle_involvement", "other_spinal_metastases", "fluid_sign"]
    for f, c in zip(r.findings, r.components, strict=True):
        row = rows[f.feature]
        assert (f.label, f.modality, f.sources, f.kb_item) == (
            row["label"], row["modality"], row.sources, f"fracture_features.{row.id}")
        assert (c.name, c.kb_items, c.sources, c.refs) == (f.feature, [f.kb_item], row.sources, f.refs)
        assert f.refs == row_refs(r, kb, f.feature)
    assert [c.note for c in r.components] == [
        "favours malignant; LR 11.0 for malignancy (the table's LR+)",
        "favours malignant; LR 12.6 for malignancy (the table's LR+)",
        "absence points to osteoporotic (strength unknown); no published likelihood ratio",
        "absence points to malignant; LR 1.59 for malignancy (1 / LR- 0.63 for osteoporosis)",
    ]
    mimics = "fracture.benign_collapse_mimicking_malignancy"
    assert [(n.code, n.message, n.kb_items) for n in r.notices] == [
        ("independence", INDEPENDENCE_TEXT, ["performance.bayes.conditional_independence"]),
        ("caveat", kb.statement(mimics).text, [mimics]),
    ]
    # Malignant leaning, known cancer not stated: no histology / primary search step (that is for known_cancer false).
    assert [s.statement for s in r.next_steps] == ["fracture.next_steps_when_indeterminate"]
    step = r.next_steps[0]
    assert step.refs == statement_refs(r, kb, step.statement)
    assert r.unknown_features == [
        "epidural_mass", "encasing_epidural_mass", "diffuse_low_t1_signal", "paraspinal_mass", "cortical_destruction",
        "cancellous_destruction", "endplate_destruction", "intense_enhancement", "high_t2_signal",
        "diffusion_restriction", "chemical_shift_no_drop", "lumbar_location", "retropulsed_fragment",
        "spared_normal_marrow", "low_signal_band", "return_to_normal_after_gadolinium", "t2_isointense_vertebra",
        "multiple_compression_fractures", "cortical_fracture_without_destruction", "cancellous_fracture_lines",
        "intravertebral_vacuum", "thin_paraspinal_haematoma",
    ]
    # Largest |ln LR| first; retropulsed fragment present (no finite ratio, favours osteoporosis) would make the
    # leaning indeterminate; spared marrow present would give 220/5.1 = 43, still malignant.
    assert r.closing_lines() == [
        "Next steps the sources give:",
        f"  - {kb.statement(step.statement).text}{shown(step.refs)}",
        "",
        "Not yet assessed, largest likelihood ratios first (ratio for malignancy if present / if absent):",
        unknown_line(r, kb, "diffusion_restriction", "10.2 / 0.09"),
        unknown_line(r, kb, "spared_normal_marrow", "0.196 / 2.7"),
        unknown_line(r, kb, "epidural_mass", "no ratio / 0.2"),
        unknown_line(r, kb, "diffuse_low_t1_signal", "4.0 / 0.29"),
        unknown_line(r, kb, "retropulsed_fragment", "no ratio / 1.19", flip=True),
    ]
    u = next(u for u in r.most_informative_unknown if u.feature == "retropulsed_fragment")
    assert (u.label, u.modality, u.refs) == (
        rows[u.feature]["label"], "ct_or_mri", row_refs(r, kb, u.feature))
    assert_references_complete(r)


def test_pre_test_from_kb_whole_text(kb):
    # Population pre-test: at least 1 - 0.3333 = 66.7% malignant in known cancer; restricted diffusion absent
    # (LR- 0.09) -> at least 15.3%. The epidural mass (no finite LR+) cannot enter the figure and points the other way.
    r = fracture_differential({
        "diffusion_restriction": "absent", "epidural_mass": "present", "known_cancer": True, "pre_test_from_kb": True,
    })
    pre_row = kb.table("fracture_pre_test").row("known_cancer")
    assert r.pre_test_source == pre_row["wording"]
    assert r.pre_test_refs == row_refs(r, kb, "known_cancer", table="fracture_pre_test")
    assert r.post_test_is_lower_bound
    assert r.extra_lines() == [
        f"  post-test probability of malignancy at least 15.3%{shown(r.post_test_refs)} "
        f"(pre-test at least 66.7%: {pre_row['wording']}{shown(r.pre_test_refs)})",
        "  not in this figure (no likelihood ratio): epidural_mass",
    ]
    assert r.leaning == "indeterminate"
    assert r.leaning_basis == (
        "the combined likelihood ratio favours osteoporotic, but a present feature without a published ratio "
        "favours malignant and cannot be weighed"
    )
    assert [(n.code, n.message, n.kb_items) for n in r.notices] == [
        ("population_pre_test", POPULATION_TEXT, ["fracture.benign_in_known_cancer"]),
    ]
    assert r.notices[0].refs == statement_refs(r, kb, "fracture.benign_in_known_cancer")
    assert_references_complete(r)


def test_two_left_out_features_are_listed():
    r = fracture_differential({"epidural_mass": "present", "cortical_destruction": "present",
                               "convex_posterior_border": "present", "pre_test": 0.2})
    assert r.extra_lines()[1] == "  not in this figure (no likelihood ratio): epidural_mass, cortical_destruction"


def test_ratio_against_an_unweighable_osteoporotic_sign():
    # Pedicle 12.6 says malignant; a retropulsed fragment (no finite LR+, favours osteoporosis) says otherwise.
    r = fracture_differential({"pedicle_involvement": "present", "retropulsed_fragment": "present"})
    assert r.leaning == "indeterminate"
    assert r.summary == (
        "leaning indeterminate: combined likelihood ratio 12.6 for malignancy from 1 feature with published ratios "
        "(the combined likelihood ratio favours malignant, but a present feature without a published ratio favours "
        "osteoporotic and cannot be weighed); 1 further feature by direction only"
    )
    assert [(n.code, n.message, n.kb_items) for n in r.notices] == [
        ("no_pre_test", NO_PRE_TEST_TEXT, []),
        ("signs_conflict", CONFLICT_TEXT, ["fracture.next_steps_when_indeterminate"]),
    ]


def test_two_further_features_by_direction_only():
    r = fracture_differential({"convex_posterior_border": "present", "other_spinal_metastases": "present",
                               "lumbar_location": "present"})
    assert r.summary == (
        "leaning malignant: combined likelihood ratio 11.0 for malignancy from 1 feature with published ratios; "
        "2 further features by direction only"
    )


def test_direction_only_signs_both_ways():
    r = fracture_differential({"cortical_destruction": "present", "retropulsed_fragment": "present",
                               "other_spinal_metastases": "present"})
    assert r.summary == (
        "leaning indeterminate: present features without likelihood ratios point both ways; no known feature has a "
        "published likelihood ratio; 3 features by direction only"
    )
    r = fracture_differential({"other_spinal_metastases": "present"})
    assert r.summary == (
        "leaning malignant: direction of present features without published likelihood ratios; no known feature "
        "has a published likelihood ratio; 1 feature by direction only"
    )


def test_absent_sign_without_a_ratio_says_nothing():
    r = fracture_differential({"other_spinal_metastases": "absent"})
    assert r.summary == (
        "leaning indeterminate: no known feature carries a likelihood ratio or a direction; no known feature has a "
        "published likelihood ratio; 1 feature by direction only"
    )


def test_absence_of_a_sign_with_no_false_negatives(kb):
    # Cortical destruction: Kubota 2005, 100% accuracy -> sensitivity 1.0: absent has no finite LR- either.
    # Restricted diffusion absent: LR- 0.09 -> osteoporotic; known_cancer false does not matter when not malignant.
    r = fracture_differential({"cortical_destruction": "absent", "diffusion_restriction": "absent",
                               "known_cancer": False})
    cortical = r.findings[0]
    assert (cortical.feature, cortical.lr_malignant, cortical.points_to) == (
        "cortical_destruction", None, "osteoporotic")
    assert cortical.lr_basis == "no finite likelihood ratio (no false negatives in the source study)"
    assert [c.note for c in r.components] == [
        "absence points to osteoporotic (strength unknown); no finite likelihood ratio (no false negatives in the "
        "source study)",
        "absence points to osteoporotic; LR 0.09 for malignancy (the table's LR-)",
    ]
    assert r.leaning == "osteoporotic"
    assert [s.statement for s in r.next_steps] == [
        "fracture.osteoporotic_collapse_evolves", "fracture.next_steps_when_indeterminate"]
    assert [n.code for n in r.notices] == ["no_pre_test"]


def test_every_ratio_sign_against_malignancy():
    # 0.32 x 0.21 x 0.29 x 0.20 x 0.09 (absent convex, pedicle, diffuse T1, epidural, diffusion)
    # x 1/5.1 x 1/7.1 (spared marrow, fluid sign present) = 9.69e-06: shown with three significant figures.
    r = fracture_differential({
        "convex_posterior_border": "absent", "pedicle_involvement": "absent", "diffuse_low_t1_signal": "absent",
        "epidural_mass": "absent", "diffusion_restriction": "absent", "spared_normal_marrow": "present",
        "fluid_sign": "present",
    })
    assert r.combined_lr == pytest.approx(0.32 * 0.21 * 0.29 * 0.20 * 0.09 / 5.1 / 7.1)
    assert r.summary == (
        "leaning osteoporotic: combined likelihood ratio 9.69e-06 for malignancy from 7 features with published ratios"
    )


def test_ratio_display():
    from spinemets.interpret.fracture import _num

    assert [_num(x) for x in (220.0, 100.0, 12.6, 11.0, 4.0, 0.32, 1 / 5.1, 9.69e-6, 2e-5, None)] == [
        "220", "100", "12.6", "11.0", "4.0", "0.32", "0.196", "9.69e-06", "2e-05", "no ratio"]


def test_leaning_basis_wording():
    from spinemets.interpret.fracture import _leaning

    assert _leaning(1.0, set()) == ("indeterminate", "the combined likelihood ratio is 1")
    assert _leaning(1.0, {"malignant"}) == ("indeterminate", "the combined likelihood ratio is 1")


def test_post_test_with_an_infinite_ratio():
    assert post_test(0.5, math.inf) == 1.0


def test_informative_unknown_leanings_with_nothing_known():
    # Nothing known: each feature alone decides the leaning; a sign without a ratio by its direction.
    r = fracture_differential({})
    lean = {u.feature: (u.leaning_if_present, u.leaning_if_absent) for u in r.most_informative_unknown}
    assert lean == {
        "pedicle_involvement": ("malignant", "osteoporotic"),
        "diffusion_restriction": ("malignant", "osteoporotic"),
        "convex_posterior_border": ("malignant", "osteoporotic"),
        "fluid_sign": ("osteoporotic", "malignant"),
        "spared_normal_marrow": ("osteoporotic", "malignant"),
        "epidural_mass": ("malignant", "osteoporotic"),
        "diffuse_low_t1_signal": ("malignant", "osteoporotic"),
        "retropulsed_fragment": ("osteoporotic", "malignant"),
    }
    assert all(u.changes_leaning for u in r.most_informative_unknown)


def test_informative_unknown_leanings_weigh_the_known_ratios():
    # Spared marrow and fluid sign present: 1/5.1 x 1/7.1 = 0.0276. Pedicle present would give 0.0276 x 12.6 =
    # 0.35, still osteoporotic; an epidural mass (no finite ratio, favours malignancy) would leave the figure
    # osteoporotic against a sign it cannot weigh: indeterminate.
    r = fracture_differential({"spared_normal_marrow": "present", "fluid_sign": "present"})
    assert r.leaning == "osteoporotic"
    pedicle = next(u for u in r.most_informative_unknown if u.feature == "pedicle_involvement")
    assert (pedicle.leaning_if_present, pedicle.leaning_if_absent, pedicle.changes_leaning) == (
        "osteoporotic", "osteoporotic", False)
    epidural = next(u for u in r.most_informative_unknown if u.feature == "epidural_mass")
    assert (epidural.leaning_if_present, epidural.leaning_if_absent, epidural.changes_leaning) == (
        "indeterminate", "osteoporotic", True)


def test_insufficient_data_keeps_the_pre_test(kb):
    r = fracture_differential({"fluid_sign": "unknown", "pre_test": 0.3})
    assert (r.status, r.pre_test, r.pre_test_source, r.pre_test_refs) == ("insufficient_data", 0.3, "given", [])
    assert r.unknown_features == feature_ids(kb)
    r = fracture_differential({"known_cancer": True, "pre_test_from_kb": True})
    assert r.status == "insufficient_data"
    assert r.pre_test == pytest.approx(1 - 0.3333)
    assert r.pre_test_source == kb.table("fracture_pre_test").row("known_cancer")["wording"]
    assert r.pre_test_refs == row_refs(r, kb, "known_cancer", table="fracture_pre_test")
    assert_references_complete(r)


# --- the rules follow the tables (edited copies of the knowledge base) -------------------------------------------


def _edit_yaml(path, change) -> None:
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


def _row(table: dict, row_id: str) -> dict:
    return next(r for r in table["rows"] if r["id"] == row_id)


def test_edge_rows_of_the_table(kb_copy):
    """A ratio of 0 is not a usable ratio; a sensitivity of 1.0 without LR- means no finite LR-; a row with LR+
    but no LR- still weighs the known ratios when its absence is considered; draft rows are flagged."""

    def change(t: dict) -> None:
        _row(t, "convex_posterior_border")["lr_negative"] = 0
        t1 = _row(t, "diffuse_low_t1_signal")
        t1.update(lr_negative=None, sensitivity=1.0)  # specificity stays 0.81
        _row(t, "pedicle_involvement").update(review_status="draft", verification="unverified")
        _row(t, "diffusion_restriction").update(review_status="draft", verification="unverified")

    _edit_yaml(kb_copy / "tables" / "fracture_features.yaml", change)
    _edit_yaml(kb_copy / "tables" / "fracture_pre_test.yaml",
               lambda t: t["rows"][0].update(review_status="draft", verification="unverified"))
    edited = load_kb(kb_copy)

    r = fracture_differential({"convex_posterior_border": "absent", "diffuse_low_t1_signal": "absent"}, kb=edited)
    assert [(f.lr_malignant, f.lr_basis) for f in r.findings] == [
        (None, "no published likelihood ratio"),
        (None, "no finite likelihood ratio (no false negatives in the source study)"),
    ]
    assert r.combined_lr is None

    r = fracture_differential({"pedicle_involvement": "present", "known_cancer": True, "pre_test_from_kb": True},
                              kb=edited)
    t1 = next(u for u in r.most_informative_unknown if u.feature == "diffuse_low_t1_signal")
    assert (t1.lr_if_present, t1.lr_if_absent) == (4.0, None)
    assert (t1.leaning_if_present, t1.leaning_if_absent) == ("malignant", "malignant")  # 12.6 either way
    assert r.draft_items == ["fracture_pre_test.known_cancer", "fracture_features.pedicle_involvement",
                             "fracture_features.diffusion_restriction"]


def test_pre_test_populations_are_listed_from_the_table(kb_copy):
    _edit_yaml(kb_copy / "tables" / "fracture_pre_test.yaml",
               lambda t: t["rows"].append({**t["rows"][0], "id": "general", "population": "general"}))
    with pytest.raises(InvalidInputError) as exc:
        fracture_differential({"pre_test_from_kb": True, "known_cancer": False}, kb=load_kb(kb_copy))
    assert str(exc.value) == (
        "fracture.known_cancer: the knowledge base gives a pre-test figure only for these populations: general, "
        "known_cancer; set known_cancer to true or give pre_test"
    )


def test_the_cli_names_the_missing_cancer_history_in_words(cli):
    run = cli("fracture", "--pre-test-from-kb", "--feature", "pedicle_involvement=present")
    assert run.returncode != 0 and run.stderr.strip() == ("insufficient data for the knowledge-base pre-test probability (it is given only for "
                           "patients with known cancer): missing whether the patient has known cancer")
