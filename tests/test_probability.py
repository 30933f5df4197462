"""Post-test probability: Bayes with sensitivity/specificity, checked against hand arithmetic."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spinemets import post_test_probability
from spinemets.errors import InvalidInputError, SpinemetsError
from spinemets.interpret.probability import likelihood_ratios, update


def test_positive_mri_harlianto_hand_checked():
    # clinical-facts D6: Se 0.93, Sp 0.85 -> LR+ 6.20; at 10% pre-test, positive -> 40.8%.
    r = post_test_probability({"pre_test": 0.10, "tests": [{"sensitivity": 0.93, "specificity": 0.85, "result": "positive"}]})
    step = r.scenarios[0].steps[0]
    assert step.lr_positive == pytest.approx(6.2, abs=0.005)
    assert step.lr_negative == pytest.approx(0.0824, abs=0.0005)
    assert r.post_test_min == pytest.approx(0.408, abs=0.0005)


@pytest.mark.parametrize(
    "se,sp,pre,result,expected",
    [
        (0.93, 0.85, 0.10, "negative", 0.0091),   # D6 Harlianto MRI
        (0.93, 0.85, 0.33, "positive", 0.753),
        (0.906, 0.954, 0.10, "positive", 0.686),  # D6 Yang MRI
        (0.75, 0.92, 0.33, "negative", 0.1180),   # D6 Harlianto bone scan
        (0.897, 0.968, 0.33, "positive", 0.932),  # D6 Yang FDG-PET
    ],
)
def test_formula_against_table_d6(se, sp, pre, result, expected):
    r = post_test_probability({"pre_test": pre, "tests": [{"sensitivity": se, "specificity": sp, "result": result}]})
    assert r.post_test_min == pytest.approx(expected, abs=0.0006)


def test_odds_form_equals_direct_form():
    pre, se, sp = 0.2, 0.8, 0.9
    lr_pos, _ = likelihood_ratios(se, sp)
    odds = pre / (1 - pre) * lr_pos
    assert update(pre, se, sp, True) == pytest.approx(odds / (1 + odds))


def test_sequence_chains_probabilities():
    r = post_test_probability({
        "pre_test": 0.10,
        "tests": [
            {"sensitivity": 0.93, "specificity": 0.85, "result": "positive"},
            {"sensitivity": 0.75, "specificity": 0.92, "result": "positive"},
        ],
    })
    s1, s2 = r.scenarios[0].steps
    assert s2.pre_test == pytest.approx(s1.post_test)
    odds = 0.1 / 0.9 * (0.93 / 0.15) * (0.75 / 0.08)
    assert r.post_test_min == pytest.approx(odds / (1 + odds))
    assert any(n.code == "independence" for n in r.notices)


def test_infinite_likelihood_ratio():
    assert likelihood_ratios(0.5, 1.0) == (None, 0.5)
    assert likelihood_ratios(0.5, 0.0) == (0.5, None)


def test_extremes_stay_put():
    for pre in (0.0, 1.0):
        r = post_test_probability({"pre_test": pre, "tests": [{"sensitivity": 0.9, "specificity": 0.9, "result": "positive"}]})
        assert r.post_test_min == pre


def test_impossible_result():
    with pytest.raises(InvalidInputError) as exc:
        post_test_probability({"pre_test": 0.0, "tests": [{"sensitivity": 0.9, "specificity": 1.0, "result": "positive"}]})
    assert str(exc.value) == (
        "probability.tests[0]: a positive result cannot occur with sensitivity 0.9 and specificity 1.0 at probability 0.0"
    )


@pytest.mark.parametrize(
    "data,message",
    [
        ({"pre_test": 1.5, "tests": [{"sensitivity": 0.9, "specificity": 0.9, "result": "positive"}]},
         "probability.pre_test: input should be less than or equal to 1 (got 1.5)"),
        ({"pre_test": -0.1, "tests": [{"sensitivity": 0.9, "specificity": 0.9, "result": "positive"}]},
         "probability.pre_test: input should be greater than or equal to 0 (got -0.1)"),
        ({"pre_test": 0.5, "tests": [{"sensitivity": 1.2, "specificity": 0.9, "result": "positive"}]},
         "probability.tests[0].sensitivity: input should be less than or equal to 1 (got 1.2)"),
        ({"pre_test": 0.5, "tests": [{"sensitivity": 0.9, "result": "positive"}]},
         "probability.tests[0]: give both sensitivity and specificity, or neither (then modality is looked up)"),
        ({"pre_test": 0.5, "tests": [{"result": "positive"}]},
         "probability.tests[0]: give a modality to look up, or sensitivity and specificity"),
        ({"pre_test": 0.5, "tests": [{"sensitivity": 0.9, "specificity": 0.9, "result": "maybe"}]},
         "probability.tests[0].result: 'maybe' is not allowed; allowed values: 'positive' or 'negative'"),
        ({"pre_test": 0.5, "tests": []},
         "probability.tests: list should have at least 1 item after validation, not 0 (got [])"),
        ({"tests": [{"sensitivity": 0.9, "specificity": 0.9, "result": "positive"}]}, "probability.pre_test: field required"),
    ],
)
def test_invalid_inputs(data, message):
    with pytest.raises(InvalidInputError) as exc:
        post_test_probability(data)
    assert str(exc.value) == message


@settings(max_examples=200, deadline=None)
@given(
    p1=st.floats(0.001, 0.999), p2=st.floats(0.001, 0.999),
    se=st.floats(0.01, 0.99), sp=st.floats(0.01, 0.99), positive=st.booleans(),
)
def test_monotonic_in_pre_test(p1, p2, se, sp, positive):
    lo, hi = sorted((p1, p2))
    assert update(lo, se, sp, positive) <= update(hi, se, sp, positive) + 1e-12


@settings(max_examples=200, deadline=None)
@given(pre=st.floats(0.001, 0.999), se=st.floats(0.01, 0.99), sp=st.floats(0.01, 0.99))
def test_informative_test_moves_probability_the_right_way(pre, se, sp):
    post_pos, post_neg = update(pre, se, sp, True), update(pre, se, sp, False)
    if se + sp > 1:  # LR+ > 1 > LR-
        assert post_neg <= pre + 1e-12 <= post_pos + 2e-12
    assert 0 <= post_neg <= 1 and 0 <= post_pos <= 1


@settings(max_examples=200, deadline=None)
@given(st.fixed_dictionaries({
    "pre_test": st.one_of(st.floats(allow_nan=True), st.integers(), st.text(max_size=3), st.none()),
    "tests": st.lists(st.dictionaries(
        st.sampled_from(["result", "modality", "sensitivity", "specificity", "source", "unit"]),
        st.one_of(st.floats(allow_nan=True), st.text(max_size=6), st.none(), st.sampled_from(["positive", "negative", "mri"]))), max_size=3),
}))
def test_arbitrary_input_raises_only_our_errors(data):
    try:
        r = post_test_probability(data)
        assert all(0 <= s.post_test <= 1 and not math.isnan(s.post_test) for s in r.scenarios)
    except SpinemetsError:
        pass
