"""Post-test probability: Bayes with sensitivity/specificity, checked against hand arithmetic."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spinemets import post_test_probability
from spinemets.errors import InvalidInputError, SpinemetsError
from spinemets.interpret.probability import histology_rule, likelihood_ratios, update


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
         "probability.tests[0]: give a modality to look up, sensitivity and specificity, or a likelihood ratio"),
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
def test_arbitrary_input_gives_our_error_or_a_range_spanning_its_scenarios(data):
    try:
        r = post_test_probability(data)
    except SpinemetsError as exc:
        fields = [exc.field] if isinstance(exc, InvalidInputError) else getattr(exc, "fields", [])
        assert fields and all(f.startswith("probability") for f in fields), str(exc)
        return
    posts = [s.post_test for s in r.scenarios]
    assert posts and all(0 <= p <= 1 and not math.isnan(p) for p in posts)
    assert r.post_test_min == min(posts) and r.post_test_max == max(posts)
    assert (r.status == "complete") == (not r.missing)
    if len(data["tests"]) == 1 and {"sensitivity", "specificity"} <= set(data["tests"][0]) and r.status == "complete" \
            and len(posts) == 1 and 0 < data["pre_test"] < 1:
        t = data["tests"][0]
        assert posts[0] == pytest.approx(update(data["pre_test"], t["sensitivity"], t["specificity"], t["result"] == "positive"))


# --- Where bone-scan figures fail: histology rule (rule rows of tables/modality_accuracy.yaml) ---------------
# special-groups notes 5-6: IMWG 2009 gives bone scintigraphy no place in myeloma staging (myeloma suppresses the
# osteoblasts the tracer needs); renal cell carcinoma: sensitivity 10-60% (Cancer 1999, 36 patients) against 94%
# (J Urol 2001, 205 patients; Sp 86%) and 93% (Urology 1985, 85 patients; Sp 86%); thyroid: Ito 2007 per segment
# bone scan 78.0% / 91.4%.

MYELOMA_SPELLINGS = ["myeloma", "Multiple Myeloma", "plasma cell myeloma", "plasmacytoma", "plasma-cell disorder",
                     "IgG kappa multiple myeloma", "solitary plasmacytoma of bone", "smouldering myeloma"]
MYELOMA_REASON = (
    "A bone scan is not a valid test for bone disease in myeloma or other plasma-cell disorders: the disease drives "
    "osteoclasts and suppresses osteoblasts, so its lytic lesions lack the bone-forming reaction the tracer depends "
    "on. The International Myeloma Working Group (IMWG) gives bone scintigraphy no place in routine myeloma staging "
    "(2009) and builds myeloma imaging on low-dose whole-body CT, MRI and PET/CT (2019)."
)


def bone_scan(result="negative", **kw):
    return {"modality": "bone_scan", "result": result, **kw}


def test_myeloma_bone_scan_refused_with_reason():
    # Regression: a negative bone scan used to lower the probability of myeloma (33% -> 7-12% with the pooled figures).
    with pytest.raises(InvalidInputError) as exc:
        post_test_probability({"pre_test": 0.33, "histology": "multiple myeloma", "tests": [bone_scan()]})
    assert exc.value.field == "probability.tests[0].modality"
    assert str(exc.value) == (
        "probability.tests[0].modality: a bone scan result cannot be used to estimate the probability for myeloma or "
        "another plasma-cell disorder (histology given: 'multiple myeloma'): " + MYELOMA_REASON
    )


@pytest.mark.parametrize("spelling", MYELOMA_SPELLINGS)
def test_myeloma_synonyms_refused(spelling):
    with pytest.raises(InvalidInputError, match=r"myeloma or another plasma-cell disorder .*\(IMWG\)"):
        post_test_probability({"pre_test": 0.2, "histology": spelling, "tests": [bone_scan("positive")]})


@settings(max_examples=200, deadline=None)
@given(
    pre=st.floats(0, 1), result=st.sampled_from(["positive", "negative"]), spelling=st.sampled_from(MYELOMA_SPELLINGS),
    modality=st.sampled_from(["bone_scan", "spect", "spect_ct"]), unit=st.sampled_from(["patient", "lesion"]),
    figures=st.one_of(st.none(), st.tuples(st.floats(0.01, 0.99), st.floats(0.01, 0.99))),
    before=st.lists(st.sampled_from([{"modality": "mri", "result": "positive", "source": "harlianto-2024"},
                                     {"sensitivity": 0.9, "specificity": 0.9, "result": "negative"}]), max_size=2),
    purely_lytic=st.one_of(st.none(), st.booleans()),
)
def test_any_bone_scan_result_in_myeloma_is_refused(pre, result, spelling, modality, unit, figures, before, purely_lytic):
    # For any pre-test probability and any bone-scan result (even with figures given), histology myeloma -> refused.
    test = {"modality": modality, "result": result, "unit": unit}
    if figures:
        test.update(sensitivity=figures[0], specificity=figures[1])
    data = {"pre_test": pre, "histology": spelling, "tests": [*before, test], "purely_lytic": purely_lytic}
    with pytest.raises(InvalidInputError) as exc:
        post_test_probability(data)
    assert exc.value.field == f"probability.tests[{len(before)}].modality"
    assert "International Myeloma Working Group (IMWG)" in str(exc.value)


def test_myeloma_other_modalities_still_computed():
    r = post_test_probability({"pre_test": 0.33, "histology": "myeloma",
                               "tests": [{"modality": "mri", "result": "positive", "source": "harlianto-2024"}]})
    assert r.post_test_min == pytest.approx(0.753, abs=0.0006)  # D6 Harlianto MRI at 33%
    assert r.histology == "myeloma" and "figures specific" not in r.summary
    assert not any(n.code == "bone_scan_histology" for n in r.notices)


def test_renal_figures_side_by_side_with_both_sources():
    r = post_test_probability({"pre_test": 0.33, "histology": "RCC", "tests": [bone_scan()]})
    assert r.histology == "renal_cell"
    assert [s.steps[0].source for s in r.scenarios] == ["koga-2001", "rcc-bone-scan-1985"]
    koga, urology = (s.steps[0] for s in r.scenarios)
    assert (koga.sensitivity, koga.specificity, urology.sensitivity, urology.specificity) == (0.94, 0.86, 0.93, 0.86)
    # Hand arithmetic: LR- 0.06/0.86 = 0.0698 -> odds 0.4925 x 0.0698 = 0.0344 -> 3.3%; 0.07/0.86 -> 3.9%.
    assert koga.post_test == pytest.approx(0.0332, abs=0.0002)
    assert urology.post_test == pytest.approx(0.0385, abs=0.0002)
    # The disagreeing study (sensitivity 10-60%, no specificity) is shown beside them with its own source.
    assert len(r.other_figures) == 1
    low = r.other_figures[0]
    assert (low.source, low.sensitivity_range) == ("staudenherz-1999", [0.10, 0.60])
    differ = next(n for n in r.notices if n.kb_items == ["performance.renal.bone_scan_disagreement"])
    assert differ.code == "sources_differ"
    assert {"staudenherz-1999", "koga-2001", "rcc-bone-scan-1985"} <= set(differ.sources)
    assert "10-60%" in differ.message and "94% and 93%" in differ.message
    text = r.to_text()
    assert "figures specific to renal cell carcinoma" in r.summary
    assert "bone_scan negative (Koga 2001)" in text and "bone_scan negative (Urology 1985)" in text
    assert "koga-2001" not in text  # sources are named for people, by author or journal and year
    assert "also published, no usable pair: bone scan (Staudenherz 1999)" in text and "Se 10%-60%, no specificity" in text
    cited = {ref.source_id for ref in r.references}
    assert {"koga-2001", "rcc-bone-scan-1985", "staudenherz-1999"} <= cited
    assert not any(n.code == "bone_scan_histology" for n in r.notices)
    # Mixed-primary figures are not used for renal cell carcinoma.
    assert "harlianto-2024" not in {s.steps[0].source for s in r.scenarios}


@pytest.mark.parametrize("spelling", ["renal cell carcinoma", "Kidney", "kidney cancer", "clear cell renal cell carcinoma"])
def test_renal_synonyms(spelling):
    assert post_test_probability({"pre_test": 0.1, "histology": spelling, "tests": [bone_scan()]}).histology == "renal_cell"


def test_renal_source_choice_and_errors():
    r = post_test_probability({"pre_test": 0.33, "histology": "renal cell carcinoma",
                               "tests": [bone_scan("positive", source="koga-2001")]})
    assert len(r.scenarios) == 1 and r.scenarios[0].steps[0].lr_positive == pytest.approx(0.94 / 0.14)
    assert r.other_figures == []  # a source was chosen
    with pytest.raises(InvalidInputError) as exc:
        post_test_probability({"pre_test": 0.33, "histology": "renal cell carcinoma",
                               "tests": [bone_scan(source="harlianto-2024")]})
    assert str(exc.value) == (
        "probability.tests[0].source: 'harlianto-2024' gives no patient-level figures for bone_scan in renal cell "
        "carcinoma; sources that do: Koga 2001 ('koga-2001'), Urology 1985 ('rcc-bone-scan-1985')"
    )
    with pytest.raises(InvalidInputError) as exc:
        post_test_probability({"pre_test": 0.33, "tests": [bone_scan(source="koga-2001")]})
    assert str(exc.value).endswith("(Koga 2001 reports figures for renal cell carcinoma only: give the histology)")
    with pytest.raises(InvalidInputError) as exc:  # no per-lesion renal figures
        post_test_probability({"pre_test": 0.33, "histology": "renal cell carcinoma", "tests": [bone_scan(unit="lesion")]})
    assert str(exc.value).startswith(
        "probability.tests[0].modality: the knowledge base holds no lesion-level bone scan figures for renal cell "
        "carcinoma (histology given: 'renal cell carcinoma'), and figures from mixed primaries do not apply: "
        "Studies disagree on the bone scan in renal cell carcinoma."
    )
    assert str(exc.value).endswith("Figures for renal cell carcinoma exist per patient: set the unit accordingly.")


def test_thyroid_uses_ito_per_lesion_and_refuses_per_patient():
    r = post_test_probability({"pre_test": 0.2, "histology": "papillary thyroid carcinoma",
                               "tests": [bone_scan("positive", unit="lesion")]})
    step = r.scenarios[0].steps[0]
    assert (step.source, step.sensitivity, step.specificity) == ("ito-2007", 0.78, 0.914)
    odds = 0.2 / 0.8 * (0.78 / 0.086)
    assert r.post_test_min == pytest.approx(odds / (1 + odds))
    assert any(n.kb_items == ["performance.thyroid.bone_scan_ito"] for n in r.notices)
    with pytest.raises(InvalidInputError) as exc:
        post_test_probability({"pre_test": 0.2, "histology": "thyroid", "tests": [bone_scan()]})
    message = str(exc.value)
    assert message.startswith(
        "probability.tests[0].modality: the knowledge base holds no patient-level bone scan figures for thyroid "
        "carcinoma (histology given: 'thyroid'), and figures from mixed primaries do not apply: In 47 patients"
    )
    assert message.endswith("Figures for thyroid carcinoma exist per lesion: set the unit accordingly.")


def test_purely_lytic_without_histology_refused():
    with pytest.raises(InvalidInputError) as exc:
        post_test_probability({"pre_test": 0.3, "purely_lytic": True, "tests": [bone_scan()]})
    assert str(exc.value) == (
        "probability.tests[0].modality: the knowledge base holds no patient-level bone scan figures for purely lytic "
        "lesions, and figures from mixed primaries do not apply: Bone scintigraphy can be falsely negative for purely "
        "osteolytic deposits, for lesions with slow bone turnover and for avascular lesions. Histology-specific "
        "figures exist for renal cell carcinoma, thyroid carcinoma: give the histology."
    )
    with pytest.raises(InvalidInputError):  # a histology without its own figures does not help
        post_test_probability({"pre_test": 0.3, "purely_lytic": True, "histology": "breast cancer", "tests": [bone_scan()]})
    # Purely lytic renal lesions: the renal figures, with the disagreement.
    r = post_test_probability({"pre_test": 0.3, "purely_lytic": True, "histology": "kidney", "tests": [bone_scan()]})
    assert [s.steps[0].source for s in r.scenarios] == ["koga-2001", "rcc-bone-scan-1985"]
    assert next(c for c in r.components if c.name == "purely_lytic").value == "yes"
    # Not purely lytic, or other tests: unchanged.
    base = post_test_probability({"pre_test": 0.3, "tests": [bone_scan()]})
    r = post_test_probability({"pre_test": 0.3, "purely_lytic": False, "tests": [bone_scan()]})
    assert [s.post_test for s in r.scenarios] == [s.post_test for s in base.scenarios]
    r = post_test_probability({"pre_test": 0.3, "purely_lytic": True, "tests": [{"modality": "mri", "result": "negative"}]})
    assert r.status == "complete"


def test_without_histology_nothing_changes_but_notice():
    r = post_test_probability({"pre_test": 0.33, "tests": [bone_scan()]})
    assert [s.steps[0].source for s in r.scenarios] == [
        "harlianto-2024", "yang-2011", "heindel-2014", "shen-2014", "surg-oncol-2013", "chang-2012"]
    assert r.scenarios[0].steps[0].post_test == pytest.approx(0.1180, abs=0.0006)  # D6 Harlianto bone scan
    notice = next(n for n in r.notices if n.code == "bone_scan_histology")
    assert notice.kb_items == ["performance.bone_scan.histology_limits"]
    assert "myeloma" in notice.message and "purely lytic metastases" in notice.message
    assert "renal cell or thyroid carcinoma" in notice.message and notice.refs
    assert r.histology is None and r.other_figures == []
    # No bone-scan family test: no notice.
    r = post_test_probability({"pre_test": 0.33, "tests": [{"modality": "mri", "result": "positive"}]})
    assert not any(n.code == "bone_scan_histology" for n in r.notices)


def test_other_histology_uses_pooled_figures_and_says_so():
    base = post_test_probability({"pre_test": 0.33, "tests": [bone_scan()]})
    r = post_test_probability({"pre_test": 0.33, "histology": "breast cancer", "tests": [bone_scan()]})
    assert [s.post_test for s in r.scenarios] == [s.post_test for s in base.scenarios]
    notice = next(n for n in r.notices if n.code == "bone_scan_histology")
    assert notice.message.startswith(
        "The histology given ('breast cancer') is not one for which bone-scan figures are restricted (myeloma or "
        "another plasma-cell disorder, renal cell carcinoma, thyroid carcinoma). Pooled bone-scan accuracy"
    )
    assert next(c for c in r.components if c.name == "histology").value == "breast cancer"


@pytest.mark.parametrize("histology,message", [
    ("myelom", "probability.histology: 'myelom' is not a recognised spelling; did you mean 'myeloma'?"),
    ("renal cell carcinoma and myeloma",
     "probability.histology: 'renal cell carcinoma and myeloma' names more than one primary (myeloma or another "
     "plasma-cell disorder and renal cell carcinoma); give the primary the lesions come from"),
    ("", "probability.histology: string should have at least 1 character (got '')"),
    (3, "probability.histology: input should be a valid string (got 3)"),
])
def test_histology_errors(histology, message):
    with pytest.raises(InvalidInputError) as exc:
        post_test_probability({"pre_test": 0.3, "histology": histology, "tests": [bone_scan()]})
    assert str(exc.value) == message


def test_rule_is_knowledge_base_data(kb_copy):
    # The histologies and modalities of the rule are table rows, not code: extend the myeloma rule to CT in a
    # copy of the knowledge base and CT is refused too; drop the rule and the bone scan is computed again.
    import yaml

    from spinemets.knowledge.loader import load_kb

    path = kb_copy / "tables" / "modality_accuracy.yaml"
    table = yaml.safe_load(path.read_text())
    rule = next(r for r in table["rows"] if r["id"] == "rule-myeloma")
    rule["modalities"].append("ct")
    path.write_text(yaml.safe_dump(table, sort_keys=False))
    with pytest.raises(InvalidInputError, match="a ct result cannot be used"):
        post_test_probability({"pre_test": 0.3, "histology": "myeloma", "tests": [{"modality": "ct", "result": "negative"}]},
                              load_kb(kb_copy))
    table["rows"] = [r for r in table["rows"] if r["id"] != "rule-myeloma"]
    path.write_text(yaml.safe_dump(table, sort_keys=False))
    r = post_test_probability({"pre_test": 0.3, "histology": "myeloma", "tests": [bone_scan()]}, load_kb(kb_copy))
    assert r.status == "complete"


@settings(max_examples=200, deadline=None)
@given(st.fixed_dictionaries({
    "pre_test": st.floats(0, 1),
    "histology": st.one_of(st.none(), st.text(max_size=30), st.sampled_from([*MYELOMA_SPELLINGS, "rcc", "thyroid", "breast"])),
    "purely_lytic": st.one_of(st.none(), st.booleans(), st.text(max_size=3)),
    "tests": st.lists(st.fixed_dictionaries({
        "modality": st.sampled_from(["bone_scan", "spect", "spect_ct", "mri", "ct", "fdg_pet"]),
        "result": st.sampled_from(["positive", "negative"]), "unit": st.sampled_from(["patient", "lesion"]),
    }), min_size=1, max_size=2),
}))
def test_histology_input_raises_only_our_errors(data):
    try:
        r = post_test_probability(data)
    except SpinemetsError:
        return
    assert all(0 <= s.post_test <= 1 for s in r.scenarios)
    if r.histology == "myeloma":
        assert not any(t["modality"] in ("bone_scan", "spect", "spect_ct") for t in data["tests"])


@pytest.mark.parametrize("histology", ["melanoma", "lymphoma", "renal pelvis urothelial carcinoma", "prostate"])
def test_similar_names_are_not_taken_for_a_ruled_histology(histology):
    # 'melanoma' is close to 'myeloma' in spelling but is another primary: pooled figures, with the notice.
    r = post_test_probability({"pre_test": 0.3, "histology": histology, "tests": [bone_scan()]})
    assert r.histology is None and len(r.scenarios) == 6
    assert any(n.code == "bone_scan_histology" for n in r.notices)


def test_renal_with_given_figures_keeps_them():
    r = post_test_probability({"pre_test": 0.2, "histology": "renal cell carcinoma",
                               "tests": [bone_scan("positive", sensitivity=0.5, specificity=0.9)]})
    assert r.scenarios[0].steps[0].source is None and r.post_test_min == pytest.approx(update(0.2, 0.5, 0.9, True))
    assert "figures specific" not in r.summary


# --- Whole results of worked examples: every line a clinician reads, every field behind it ------------------
# Each expected text is the hand-checked arithmetic of the case (comments) with the knowledge-base wording of the
# rows and statements it cites; the notices' messages are the statements' own text.

def _kb():
    from spinemets.knowledge.loader import load_kb

    return load_kb()


def _shown(r):
    """The text up to the references (the numbered references are checked as source ids)."""
    return r.to_text().split("\n\nReferences\n")[0]


def _notice_line(statement_id, refs):
    return f"! {_kb().statement(statement_id).text} [{','.join(map(str, refs))}]"


def _notices(r):
    return [(n.code, n.kb_items, n.sources, n.refs) for n in r.notices]


def _component(name, value, label=None, note=None, kb_items=(), sources=(), refs=()):
    return {"name": name, "value": value, "label": label, "points": None, "note": note,
            "kb_items": list(kb_items), "sources": list(sources), "refs": list(refs)}


PRE_TEST = _component("pre_test", None, note="pre-test probability as given")
RENAL_POPULATION = {
    "koga": "Renal cell carcinoma at presentation (205 patients; hot spots checked by radiograph, CT or surgery)",
    "urology": "Renal cell carcinoma, routine evaluation (85 patients)",
    "staudenherz": "Renal cell carcinoma with a high pre-test probability of bone metastases (36 patients, 14 confirmed "
                   "by CT, MRI or biopsy)",
}
STAUDENHERZ_NOTE = (
    "Planar scan sensitivity only 10-60% depending on the reading threshold, with the extent of disease underestimated "
    "in every patient; no specificity was reported, so no post-test probability can be computed from this study. Unit "
    "of analysis not stated in the abstract."
)


def test_renal_negative_bone_scan_whole_result():
    # Pre-test 33%, negative bone scan, renal cell carcinoma: Koga 2001 (Se 0.94, Sp 0.86) LR- 0.06/0.86 = 0.0698 ->
    # 3.3%; Urology 1985 (0.93, 0.86) LR- 0.07/0.86 = 0.0814 -> 3.9%; Staudenherz 1999 (Se 10-60%, no Sp) beside them.
    r = post_test_probability({"pre_test": 0.33, "histology": "RCC", "tests": [bone_scan()]})
    assert _shown(r) == "\n".join([
        "PROBABILITY: post-test probability 3.3% to 3.9% depending on the published figures (pre-test 33.0%; figures "
        "specific to renal cell carcinoma)",
        f"  bone_scan negative (Koga 2001) - population: {RENAL_POPULATION['koga']}",
        "    test 1: bone_scan negative (Se 0.94, Sp 0.86, LR- 0.07): 33.0% -> 3.3% [1]",
        f"  bone_scan negative (Urology 1985) - population: {RENAL_POPULATION['urology']}",
        "    test 1: bone_scan negative (Se 0.93, Sp 0.86, LR- 0.08): 33.0% -> 3.9% [2]",
        f"  also published, no usable pair: bone scan (Staudenherz 1999) - population: {RENAL_POPULATION['staudenherz']}: "
        f"Se 10%-60%, no specificity; {STAUDENHERZ_NOTE} [3]",
        "",
        "  pre_test: 0.33 - pre-test probability as given",
        "  histology: RCC (renal cell carcinoma) - Only renal cell carcinoma figures are used, the disagreeing studies "
        "side by side. [1,2,3]",
        _notice_line("performance.caveat.lr_depends_on_source", [4, 5]),
        _notice_line("performance.renal.bone_scan_disagreement", [1, 2, 3, 6]),
    ])
    assert [ref.source_id for ref in r.references] == [
        "koga-2001", "rcc-bone-scan-1985", "staudenherz-1999", "harlianto-2024", "yang-2011", "devita-2001"]
    assert [c.model_dump() for c in r.components] == [
        {**PRE_TEST, "value": "0.33"},
        _component("histology", "RCC", label="renal cell carcinoma",
                   note="Only renal cell carcinoma figures are used, the disagreeing studies side by side.",
                   kb_items=["modality_accuracy.rule-renal_cell"],
                   sources=["staudenherz-1999", "koga-2001", "rcc-bone-scan-1985"], refs=[1, 2, 3]),
    ]
    assert _notices(r) == [
        ("sources_differ", ["performance.caveat.lr_depends_on_source"], ["harlianto-2024", "yang-2011"], [4, 5]),
        ("sources_differ", ["performance.renal.bone_scan_disagreement"],
         ["staudenherz-1999", "koga-2001", "rcc-bone-scan-1985", "devita-2001"], [1, 2, 3, 6]),
    ]
    assert [f.model_dump() for f in r.other_figures] == [{
        "modality": "bone_scan", "unit": "patient", "source": "staudenherz-1999", "source_label": "Staudenherz 1999",
        "population": RENAL_POPULATION["staudenherz"], "sensitivity_range": [0.10, 0.60], "note": STAUDENHERZ_NOTE,
        "refs": [3],
    }]
    koga, urology = (s.steps[0] for s in r.scenarios)
    assert (koga.source, koga.refs, koga.population, koga.unit) == ("koga-2001", [1], RENAL_POPULATION["koga"], "patient")
    assert (urology.source, urology.refs, urology.population) == ("rcc-bone-scan-1985", [2], RENAL_POPULATION["urology"])
    assert (r.status, r.missing, r.draft_items, r.histology) == ("complete", [], [], "renal_cell")
    assert (r.post_test_min, r.post_test_max) == (koga.post_test, urology.post_test)


def test_thyroid_positive_per_lesion_whole_result():
    # Pre-test 20%, positive bone scan per lesion, thyroid carcinoma: Ito 2007 LR+ 0.78/0.086 = 9.07 ->
    # odds 0.25 x 9.07 = 2.27 -> 69.4%.  The rule's reason is a histology-figures notice (no disagreement).
    r = post_test_probability({"pre_test": 0.2, "histology": "papillary thyroid carcinoma",
                               "tests": [bone_scan("positive", unit="lesion")]})
    assert _shown(r) == "\n".join([
        "PROBABILITY: post-test probability 69.4% (pre-test 20.0%; figures specific to thyroid carcinoma)",
        "  bone_scan positive (Ito 2007) - population: Differentiated thyroid carcinoma after total thyroidectomy "
        "(47 patients; per skeletal segment, 11 segments each)",
        "    test 1: bone_scan positive (Se 0.78, Sp 0.914, LR+ 9.07): 20.0% -> 69.4% [1]",
        "",
        "  pre_test: 0.2 - pre-test probability as given",
        "  histology: papillary thyroid carcinoma (thyroid carcinoma) - Only the per-segment figures of Ito 2007 exist; "
        "per-patient questions are refused. [1]",
        _notice_line("performance.thyroid.bone_scan_ito", [1]),
    ])
    assert [ref.source_id for ref in r.references] == ["ito-2007"]
    assert _notices(r) == [("histology_figures", ["performance.thyroid.bone_scan_ito"], ["ito-2007"], [1])]
    assert r.components[1].kb_items == ["modality_accuracy.rule-thyroid"] and r.other_figures == []
    assert (r.histology, r.scenarios[0].steps[0].unit) == ("thyroid", "lesion")


def test_purely_lytic_with_given_figures_whole_result():
    # Purely lytic lesions of a histology without its own figures: the lytic rule applies (its reason is shown and
    # cited) but figures given by the user are kept.  Sp 1 -> LR+ infinite -> a positive result means 100%.
    r = post_test_probability({"pre_test": 0.3, "purely_lytic": True, "histology": "breast cancer",
                               "tests": [bone_scan("positive", sensitivity=0.8, specificity=1.0)]})
    lytic_sources = ["seed-003", "liu-2017", "cuccurullo-2013", "iagaru-2018"]
    lytic_note = ("Bone scintigraphy can miss purely osteolytic deposits; figures from mixed primaries are not applied "
                  "to them, only histology-specific figures.")
    restricted = ("The histology given ('breast cancer') is not one for which bone-scan figures are restricted (myeloma "
                  "or another plasma-cell disorder, renal cell carcinoma, thyroid carcinoma). ")
    assert _shown(r) == "\n".join([
        "PROBABILITY: post-test probability 100.0% (pre-test 30.0%)",
        "  bone_scan positive (given figures)",
        "    test 1: bone_scan positive (Se 0.8, Sp 1, LR+ infinite): 30.0% -> 100.0%",
        "",
        "  pre_test: 0.3 - pre-test probability as given",
        "  histology: breast cancer",
        f"  purely_lytic: yes - {lytic_note} [1,2,3,4]",
        _notice_line("nm.bone_scan_false_negatives", [1, 2, 3, 4]),
        "! " + restricted + _kb().statement("performance.bone_scan.histology_limits").text + " [1,5,6,7]",
    ])
    assert [c.model_dump() for c in r.components] == [
        {**PRE_TEST, "value": "0.3"},
        _component("histology", "breast cancer"),
        _component("purely_lytic", "yes", note=lytic_note, kb_items=["modality_accuracy.rule-purely_lytic"],
                   sources=lytic_sources, refs=[1, 2, 3, 4]),
    ]
    assert _notices(r) == [
        ("histology_figures", ["nm.bone_scan_false_negatives"], lytic_sources, [1, 2, 3, 4]),
        ("bone_scan_histology", ["performance.bone_scan.histology_limits"],
         ["imwg-2009", "imwg-wbldct-2018", "staudenherz-1999", "seed-003"], [1, 5, 6, 7]),
    ]
    step = r.scenarios[0].steps[0]
    assert (step.lr_positive, step.source, step.refs, step.population) == (None, None, [], None)
    assert step.lr_negative == pytest.approx(0.2)
    assert r.histology is None and r.post_test_min == r.post_test_max == 1.0


def test_chain_of_four_tests_whole_result():
    # Pre-test 20%: MRI positive (Harlianto 2024, LR+ 0.93/0.15 = 6.2) -> odds 0.25 x 6.2 = 1.55 -> 60.8%;
    # CT negative (Yang 2011, LR- 0.271/0.948 = 0.286) -> 0.443 -> 30.7%; given Se 0.9 Sp 0 positive (LR+ 0.9)
    # -> 28.5%; given Se 0.5 Sp 0 negative: no one without disease tests negative (LR- infinite) -> 100%.
    # A histology without a rule and 'not purely lytic' change nothing and carry no source.
    r = post_test_probability({"pre_test": 0.2, "histology": "melanoma", "purely_lytic": False, "tests": [
        {"modality": "mri", "result": "positive", "source": "harlianto-2024"},
        {"modality": "ct", "result": "negative", "source": "yang-2011"},
        {"sensitivity": 0.9, "specificity": 0.0, "result": "positive"},
        {"sensitivity": 0.5, "specificity": 0.0, "result": "negative"},
    ]})
    assert _shown(r) == "\n".join([
        "PROBABILITY: post-test probability 100.0% (pre-test 20.0%)",
        "  mri positive (Harlianto 2024) then ct negative (Yang 2011) then test positive (given figures) "
        "then test negative (given figures) - population: Bone metastases at any skeletal site, mixed primaries "
        "(meta-analysis, 145 studies); Suspected spinal metastases, mixed primaries (meta-analysis, 25 studies)",
        "    test 1: mri positive (Se 0.93, Sp 0.85, LR+ 6.20): 20.0% -> 60.8% [1]",
        "    test 2: ct negative (Se 0.729, Sp 0.948, LR- 0.29): 60.8% -> 30.7% [2]",
        "    test 3: given test positive (Se 0.9, Sp 0, LR+ 0.90): 30.7% -> 28.5%",
        "    test 4: given test negative (Se 0.5, Sp 0, LR- infinite): 28.5% -> 100.0%",
        "",
        "  pre_test: 0.2 - pre-test probability as given",
        "  histology: melanoma",
        "  purely_lytic: no",
        _notice_line("performance.bayes.conditional_independence", [1, 2]),
    ])
    # the commercial answer page that repeats Harlianto's pair is not cited beside the meta-analysis
    assert [ref.source_id for ref in r.references] == ["harlianto-2024", "yang-2011"]
    assert [c.model_dump() for c in r.components][1:] == [_component("histology", "melanoma"),
                                                         _component("purely_lytic", "no")]
    assert _notices(r) == [("independence", ["performance.bayes.conditional_independence"], ["harlianto-2024", "yang-2011"], [1, 2])]
    mri, ct, given_pos, given_neg = r.scenarios[0].steps
    assert (mri.source, mri.refs) == ("harlianto-2024", [1])
    assert (ct.source, ct.refs, ct.lr_negative) == ("yang-2011", [2], pytest.approx(0.271 / 0.948))
    assert (given_pos.lr_positive, given_pos.lr_negative, given_neg.lr_negative) == (0.9, None, None)
    assert [s.pre_test for s in r.scenarios[0].steps[1:]] == [s.post_test for s in r.scenarios[0].steps[:-1]]
    assert r.draft_items == [] and r.histology is None


def test_unsourced_mri_whole_result():
    # Pre-test 10%, positive MRI per patient, no source: each published pair once (a seed repeating a meta-analysis
    # is the same option): Harlianto 2024 LR+ 6.2 -> 40.8%; Yang 2011 LR+ 19.7 -> 68.6%; Shen 2014 LR+ 19.4 -> 68.3%.
    r = post_test_probability({"pre_test": 0.1, "tests": [{"modality": "mri", "result": "positive"}]})
    assert _shown(r) == "\n".join([
        "PROBABILITY: post-test probability 40.8% to 68.6% depending on the published figures (pre-test 10.0%)",
        "  mri positive (Harlianto 2024) - population: Suspected spinal metastases, mixed primaries "
        "(meta-analysis, 25 studies)",
        "    test 1: mri positive (Se 0.93, Sp 0.85, LR+ 6.20): 10.0% -> 40.8% [1]",
        "  mri positive (Yang 2011) - population: Bone metastases at any skeletal site, mixed primaries "
        "(meta-analysis, 145 studies)",
        "    test 1: mri positive (Se 0.906, Sp 0.954, LR+ 19.70): 10.0% -> 68.6% [2]",
        "  mri positive (Shen 2014) - population: Bone metastases in prostate cancer (meta-analysis)",
        "    test 1: mri positive (Se 0.97, Sp 0.95, LR+ 19.40): 10.0% -> 68.3% [3]",
        "",
        "  pre_test: 0.1 - pre-test probability as given",
        _notice_line("performance.caveat.lr_depends_on_source", [1, 2]),
    ])
    # the answer pages that repeat the meta-analyses' pairs are not cited beside them
    assert [ref.source_id for ref in r.references] == ["harlianto-2024", "yang-2011", "shen-2014"]
    assert [s.steps[0].source for s in r.scenarios] == ["harlianto-2024", "yang-2011", "shen-2014"]
    assert _notices(r) == [("sources_differ", ["performance.caveat.lr_depends_on_source"], ["harlianto-2024", "yang-2011"], [1, 2])]
    assert r.post_test_min == pytest.approx(0.4079, abs=5e-5) and r.post_test_max == pytest.approx(0.6864, abs=5e-5)


def test_other_figure_text_with_only_the_required_fields():
    # An unpaired figure without population, range, note or references still reads as a sentence.
    from spinemets.interpret.probability import OtherFigure

    r = post_test_probability({"pre_test": 0.33, "histology": "RCC", "tests": [bone_scan()]})
    bare = r.model_copy(update={"other_figures": [OtherFigure(modality="spect_ct", unit="lesion", source="x-2020")]})
    assert bare.extra_lines()[-1] == "  also published, no usable pair: spect ct (x-2020) - population: not stated"
    # a note alone follows the population after one colon, without a dangling separator
    noted = r.model_copy(update={"other_figures": [OtherFigure(modality="spect_ct", unit="lesion", source="x-2020",
                                                               note="planar only")]})
    assert noted.extra_lines()[-1] == "  also published, no usable pair: spect ct (x-2020) - population: not stated: planar only"


def test_other_figure_quoted_by_two_sources_without_range(kb_copy):
    # An unpaired (draft) histology row quoted by two sources (no range, population or note) names both, in words.
    import yaml

    from spinemets.knowledge.loader import load_kb

    path = kb_copy / "tables" / "modality_accuracy.yaml"
    table = yaml.safe_load(path.read_text())
    table["rows"].insert(0, {"id": "test-thyroid-unpaired", "modality": "bone_scan", "unit": "lesion", "histology": "thyroid",
                             "sensitivity": None, "specificity": None, "sources": ["ito-2007", "koga-2001"],
                             "verification": "unverified", "review_status": "draft"})
    path.write_text(yaml.safe_dump(table, sort_keys=False))
    r = post_test_probability({"pre_test": 0.2, "histology": "thyroid", "tests": [bone_scan("positive", unit="lesion")]},
                              load_kb(kb_copy))
    assert [f.model_dump() for f in r.other_figures] == [{
        "modality": "bone_scan", "unit": "lesion", "source": "ito-2007, koga-2001", "source_label": "Ito 2007, Koga 2001",
        "population": None, "sensitivity_range": None, "note": None, "refs": [1, 2],
    }]
    assert r.draft_items == ["modality_accuracy.test-thyroid-unpaired"]  # an unverified row is flagged as a draft
    assert r.extra_lines()[-1] == (
        "  also published, no usable pair: bone scan (Ito 2007, Koga 2001) - population: not stated [1,2]")


def test_impossible_negative_result_and_the_default_field():
    # Se 1 at certainty: no one with the disease tests negative and no one without it exists.
    with pytest.raises(InvalidInputError) as exc:
        post_test_probability({"pre_test": 1.0, "tests": [{"sensitivity": 1.0, "specificity": 0.9, "result": "negative"}]})
    assert str(exc.value) == (
        "probability.tests[0]: a negative result cannot occur with sensitivity 1.0 and specificity 0.9 at probability 1.0"
    )
    with pytest.raises(InvalidInputError) as exc:  # called on its own, the error names the test
        update(0.0, 0.9, 1.0, True)
    assert str(exc.value) == "test: a positive result cannot occur with sensitivity 0.9 and specificity 1.0 at probability 0.0"


# the value to give with the source in words; the AI answer page that repeats a pair is not offered
POOLED_BONE_SCAN_SOURCES = ("Chang 2012 ('chang-2012'), Harlianto 2024 ('harlianto-2024'), Heindel 2014 ('heindel-2014'), "
                            "Shen 2014 ('shen-2014'), Surg Oncol 2013 ('surg-oncol-2013'), Yang 2011 ('yang-2011')")


@pytest.mark.parametrize("test,message", [
    # A histology-only source without the histology: the sources that apply, and which histology the source covers.
    (bone_scan(source="koga-2001"),
     "probability.tests[1].source: 'koga-2001' gives no patient-level figures for bone_scan; sources that do: "
     f"{POOLED_BONE_SCAN_SOURCES} (Koga 2001 reports figures for renal cell carcinoma only: give the histology)"),
    # The hint is only given where the source has figures for this modality and unit.
    (bone_scan(source="koga-2001", unit="lesion"),
     "probability.tests[1].source: 'koga-2001' gives no lesion-level figures for bone_scan; sources that do: "
     "Harlianto 2024 ('harlianto-2024'), Shen 2014 ('shen-2014'), Yang 2011 ('yang-2011')"),
    ({"modality": "mri", "result": "negative", "source": "ito-2007", "unit": "lesion"},
     "probability.tests[1].source: 'ito-2007' gives no lesion-level figures for mri; sources that do: "
     "Harlianto 2024 ('harlianto-2024'), Yang 2011 ('yang-2011')"),
    (bone_scan(source="ito-2007"),
     f"probability.tests[1].source: 'ito-2007' gives no patient-level figures for bone_scan; sources that do: "
     f"{POOLED_BONE_SCAN_SOURCES}"),
    # No figures at all for the modality and unit.
    ({"modality": "whole_body_mri", "result": "negative", "unit": "lesion"},
     "probability.tests[1].modality: no lesion-level figures for 'whole_body_mri'; modalities with figures: bone_scan, "
     "choline_pet_ct, ct, fdg_pet, fdg_pet_ct, mri, spect, whole_body_mri"),
])
def test_lookup_errors_without_a_histology(test, message):
    with pytest.raises(InvalidInputError) as exc:
        post_test_probability({"pre_test": 0.3, "tests": [{"sensitivity": 0.9, "specificity": 0.9, "result": "positive"}, test]})
    assert str(exc.value) == message
    assert exc.value.field == message.split(":")[0]


def test_histology_given_but_its_rule_not_applied_is_shown_without_its_rule():
    # Myeloma with MRI only: the histology is recognised (label) but no rule applied (no rule row cited); MRI is
    # not a modality of the purely-lytic rule either.
    r = post_test_probability({"pre_test": 0.33, "histology": "myeloma", "purely_lytic": True,
                               "tests": [{"modality": "mri", "result": "positive", "source": "harlianto-2024"}]})
    assert [c.model_dump() for c in r.components][1:] == [
        _component("histology", "myeloma", label="myeloma or another plasma-cell disorder"),
        _component("purely_lytic", "yes"),
    ]
    assert r.notices == [] and [ref.source_id for ref in r.references] == ["harlianto-2024"]


def test_typo_check_length_limits(kb_copy):
    # Text matching, not a clinical threshold: with one-word spellings of four and five letters in a copy of the
    # knowledge base, a word of four letters or more one letter off a spelling is a typo; a shorter word never is.
    import yaml

    from spinemets.knowledge.loader import load_kb

    path = kb_copy / "tables" / "modality_accuracy.yaml"
    table = yaml.safe_load(path.read_text())
    rule = next(r for r in table["rows"] if r["id"] == "rule-myeloma")
    rule["aliases"] += ["mgus", "poems"]
    path.write_text(yaml.safe_dump(table, sort_keys=False))
    kb = load_kb(kb_copy)
    for text, meant in [("poms", "poems"), ("mgous", "mgus")]:
        with pytest.raises(InvalidInputError) as exc:
            post_test_probability({"pre_test": 0.3, "histology": text, "tests": [bone_scan()]}, kb)
        assert str(exc.value) == f"probability.histology: {text!r} is not a recognised spelling; did you mean {meant!r}?"
    assert post_test_probability({"pre_test": 0.3, "histology": "gus", "tests": [bone_scan()]}, kb).histology is None


def test_rule_variants_in_the_knowledge_base(kb_copy):
    # Copy of the knowledge base where (a) Koga 2001 also reports thyroid figures and (b) the renal rule no longer
    # covers SPECT, for which renal SPECT figures exist: purely lytic renal lesions on SPECT then fall under the
    # purely-lytic rule, which uses the renal figures and names itself 'for purely lytic lesions'.
    import yaml

    from spinemets.knowledge.loader import load_kb

    path = kb_copy / "tables" / "modality_accuracy.yaml"
    table = yaml.safe_load(path.read_text())
    next(r for r in table["rows"] if r["id"] == "rule-renal_cell")["modalities"] = ["bone_scan", "spect_ct"]
    table["rows"][:0] = [
        {"id": "test-koga-thyroid", "modality": "bone_scan", "unit": "patient", "histology": "thyroid",
         "sensitivity": 0.9, "specificity": 0.9, "population": "test row", "sources": ["koga-2001"], "verification": "verified"},
        {"id": "test-renal-spect", "modality": "spect", "unit": "patient", "histology": "renal_cell",
         "sensitivity": 0.9, "specificity": 0.8, "population": "test row", "sources": ["koga-2001"], "verification": "verified"},
    ]
    path.write_text(yaml.safe_dump(table, sort_keys=False))
    kb = load_kb(kb_copy)
    with pytest.raises(InvalidInputError) as exc:
        post_test_probability({"pre_test": 0.3, "tests": [bone_scan(source="koga-2001")]}, kb)
    assert str(exc.value).endswith(
        "(Koga 2001 reports figures for renal cell carcinoma, thyroid carcinoma only: give the histology)")
    lytic_renal = {"pre_test": 0.3, "histology": "kidney", "purely_lytic": True,
                   "tests": [{"modality": "spect", "result": "negative", "source": "harlianto-2024"}]}
    with pytest.raises(InvalidInputError) as exc:
        post_test_probability(lytic_renal, kb)
    assert str(exc.value) == (
        "probability.tests[0].source: 'harlianto-2024' gives no patient-level figures for spect for purely lytic "
        "lesions; sources that do: Koga 2001 ('koga-2001')"
    )
    del lytic_renal["tests"][0]["source"]
    r = post_test_probability(lytic_renal, kb)
    step = r.scenarios[0].steps[0]
    assert (step.source, step.sensitivity, step.specificity) == ("koga-2001", 0.9, 0.8)
    histology, lytic = r.components[1:]
    assert (histology.label, histology.kb_items, histology.note) == ("renal cell carcinoma", [], None)
    assert lytic.kb_items == ["modality_accuracy.rule-purely_lytic"]


def test_scenario_limit_and_the_sources_to_choose():
    # Four unsourced FDG-PET/CT tests: 2 published pairs each, 2^4 = 16 scenarios, the most shown.
    r = post_test_probability({"pre_test": 0.1, "tests": [{"modality": "fdg_pet_ct", "result": "positive"}] * 4})
    assert len(r.scenarios) == 16
    # FDG-PET/CT (2 pairs) x bone scan (6) x given figures (1) x MRI (3) = 36: choose a source for each test that
    # has more than one pair.
    from spinemets.errors import InsufficientDataError

    with pytest.raises(InsufficientDataError) as exc:
        post_test_probability({"pre_test": 0.1, "tests": [
            {"modality": "fdg_pet_ct", "result": "positive"}, bone_scan(),
            {"sensitivity": 0.9, "specificity": 0.9, "result": "positive"}, {"modality": "mri", "result": "positive"}]})
    assert exc.value.fields == ["probability.tests[0].source", "probability.tests[1].source", "probability.tests[3].source"]
    assert exc.value.what == "post-test probability (36 combinations of published figures; choose a source per test)"


def test_sources_that_agree_to_display_precision_give_one_figure():
    # Renal cell carcinoma, pre-test 1%, negative bone scan: Koga 2001 LR- 0.0698 -> 0.0705%, Urology 1985
    # LR- 0.0814 -> 0.0822%: the two differ by less than the 0.1% shown, so one figure is given.
    r = post_test_probability({"pre_test": 0.01, "histology": "renal cell carcinoma", "tests": [bone_scan()]})
    assert r.post_test_min == pytest.approx(0.000705, abs=1e-6) and r.post_test_max == pytest.approx(0.000822, abs=1e-6)
    assert r.summary == "post-test probability 0.1% (pre-test 1.0%; figures specific to renal cell carcinoma)"


def test_pairs_are_matched_within_modality_unit_and_source(kb_copy):
    # Copy of the knowledge base with (a) a CT row and a per-lesion MRI row holding the same pair as Harlianto 2024
    # per-patient MRI (0.93/0.85), the lesion row a draft, and (b) a second per-lesion CT pair from Yang 2011.
    import yaml

    from spinemets.knowledge.loader import load_kb

    path = kb_copy / "tables" / "modality_accuracy.yaml"
    table = yaml.safe_load(path.read_text())
    table["rows"][:0] = [
        {"id": "test-ct-same-pair", "modality": "ct", "unit": "patient", "sensitivity": 0.93, "specificity": 0.85,
         "population": "test row", "sources": ["shen-2014"], "verification": "verified"},
        {"id": "test-mri-lesion-same-pair", "modality": "mri", "unit": "lesion", "sensitivity": 0.93, "specificity": 0.85,
         "population": "test row", "sources": ["chang-2012"], "verification": "unverified", "review_status": "draft"},
        {"id": "test-yang-ct-lesion-second", "modality": "ct", "unit": "lesion", "sensitivity": 0.8, "specificity": 0.9,
         "population": "test row", "sources": ["yang-2011"], "verification": "verified"},
    ]
    path.write_text(yaml.safe_dump(table, sort_keys=False))
    kb = load_kb(kb_copy)
    # The same pair for another modality or unit is not the same figure: only the seed quoting Harlianto joins it.
    r = post_test_probability({"pre_test": 0.1, "tests": [{"modality": "mri", "result": "positive", "source": "harlianto-2024"}]}, kb)
    step = r.scenarios[0].steps[0]
    assert (step.source, step.refs, r.draft_items) == ("harlianto-2024", [1], [])
    # A draft pair used in a scenario is flagged by its table row.
    r = post_test_probability({"pre_test": 0.1, "tests": [{"modality": "mri", "unit": "lesion", "result": "positive",
                                                           "source": "chang-2012"}]}, kb)
    assert r.draft_items == ["modality_accuracy.test-mri-lesion-same-pair"]
    # Two pairs from the chosen source: both shown, without the caveat about choosing between meta-analyses.
    r = post_test_probability({"pre_test": 0.1, "tests": [{"modality": "ct", "unit": "lesion", "result": "positive",
                                                           "source": "yang-2011"}]}, kb)
    assert [(s.steps[0].sensitivity, s.steps[0].specificity) for s in r.scenarios] == [(0.8, 0.9), (0.771, 0.832)]
    assert r.notices == []


@pytest.mark.parametrize("histology,rule", [
    ("multiplemyeloma", "rule-myeloma"), ("plasmacell disorder", "rule-myeloma"), ("myelomatosis", "rule-myeloma"),
    ("plasma cell leukaemia", "rule-myeloma"), ("MGUS", "rule-myeloma"), ("kidneycancer", "rule-renal_cell"),
    ("renalcell carcinoma", "rule-renal_cell"), ("thyroidcarcinoma", "rule-thyroid"),
    ("breast cancer", None), ("renal pelvis urothelial carcinoma", None), ("melanoma", None),
])
def test_histology_run_together_or_by_another_name_is_recognised(histology, rule):
    # Regression: a name written without spaces, or a synonym missing from the spellings, was read as "no
    # restricted histology", so pooled bone-scan figures were applied to myeloma.
    found = histology_rule(histology)
    assert (found.id if found else None) == rule


def test_bone_scan_for_myeloma_written_run_together_is_refused():
    with pytest.raises(InvalidInputError) as exc:
        post_test_probability({"pre_test": 0.33, "histology": "multiplemyeloma",
                               "tests": [{"modality": "bone_scan", "result": "negative"}]})
    assert exc.value.field == "probability.tests[0].modality"
    assert str(exc.value).startswith("probability.tests[0].modality: a bone scan result cannot be used to estimate "
                                     "the probability for myeloma or another plasma-cell disorder")


@pytest.mark.parametrize("histology,suggestion", [
    ("multiple myelona", "multiple myeloma"), ("plasmacell disordr", "plasma cell disorder"), ("myelom", "myeloma"),
])
def test_a_near_miss_of_a_name_of_several_words_suggests_it_as_written(histology, suggestion):
    with pytest.raises(InvalidInputError) as exc:
        histology_rule(histology)
    assert str(exc.value) == (f"probability.histology: {histology!r} is not a recognised spelling; "
                              f"did you mean {suggestion!r}?")


def test_a_given_likelihood_ratio_multiplies_the_pre_test_odds():
    from spinemets.interpret.probability import post_test_probability

    r = post_test_probability({"pre_test": 0.2, "tests": [{"result": "positive", "likelihood_ratio": 9}]})
    assert r.post_test_min == pytest.approx(0.25 * 9 / (1 + 0.25 * 9))  # 69.2%
    step = r.scenarios[0].steps[0]
    assert step.sensitivity is None and step.lr_positive == 9 and step.refs  # cites the odds formula
    assert any(c.name == "method" and c.kb_items == ["performance.bayes.formulas"] for c in r.components)
    neg = post_test_probability({"pre_test": 0.5, "tests": [{"result": "negative", "likelihood_ratio": 0.1}]})
    assert neg.post_test_min == pytest.approx(0.1 / 1.1) and neg.scenarios[0].steps[0].lr_negative == 0.1


@pytest.mark.parametrize("test, message", [
    ({"result": "positive", "likelihood_ratio": 9, "sensitivity": 0.9, "specificity": 0.8}, "not both"),
    ({"result": "positive", "likelihood_ratio": 9, "source": "harlianto-2024"}, "with a given likelihood ratio"),
    ({"result": "positive", "likelihood_ratio": 0}, "greater than 0"),
])
def test_a_given_likelihood_ratio_with_figures_or_a_source_or_zero_is_an_error(test, message):
    from spinemets.errors import InvalidInputError
    from spinemets.interpret.probability import post_test_probability

    with pytest.raises(InvalidInputError) as e:
        post_test_probability({"pre_test": 0.2, "tests": [test]})
    assert message in str(e.value)


@given(st.floats(0.01, 0.99), st.floats(0.01, 0.99), st.floats(0.01, 0.99))
def test_a_ratio_computed_from_sensitivity_and_specificity_gives_the_same_post_test_probability(p, se, sp):
    from hypothesis import assume

    from spinemets.interpret.probability import post_test_probability

    assume(se / (1 - sp) >= 1)  # a stated LR+ below 1 for a positive result is refused as a mis-stated ratio

    figures = post_test_probability({"pre_test": p, "tests": [{"result": "positive", "sensitivity": se,
                                                                "specificity": sp}]})
    ratio = post_test_probability({"pre_test": p, "tests": [{"result": "positive", "likelihood_ratio": se / (1 - sp)}]})
    assert ratio.post_test_min == pytest.approx(figures.post_test_min, rel=1e-9, abs=1e-12)
