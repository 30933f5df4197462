"""Imaging pathway: one worked example per branch (sources in comments) and the safety properties."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from spinemets.errors import InvalidInputError, SpinemetsError
from spinemets.pathway import URGENCY_ORDER, pathway

BASE = dict(cancer_history="previous", primary_site="prostate", spinal_pain=True, pain_region="lumbar",
            neuro_deficits=[], red_flags=[])


def studies(r, role=None):
    return [x.study.id for x in r.recommendations if x.study and (role is None or x.role == role)]


def test_known_cancer_new_back_pain():
    # seed 000 / NICE QS56: MRI w/wo contrast, whole spine when suspicion is high; NICE 1 week vs seed 2 weeks.
    r = pathway(BASE)
    assert r.status == "complete" and r.scenario == "suspected_spinal_metastasis"
    assert r.first_line.study.id == "mri-whole-spine-wwo"
    assert [(w.hours, w.source_label) for w in r.urgency.windows] == [(168, "NICE"), (336, "Dutch national guideline")]
    assert [w.sources for w in r.urgency.windows] == [["nice-qs56", "nice-ng234"], ["dutch-spinal-metastases-2015", "bollen-2018"]]
    # prostate: PSMA PET/CT (proPSMA), or bone scan and CT first (Scottish pathway); staging, never first line
    assert studies(r, "staging") == ["psma-pet-ct"]
    assert studies(r, "staging_alternative") == ["bone-scan", "ct-cap-with"]
    assert "fdg-pet-ct" not in studies(r)
    assert any(n.code == "timing_differs" for n in r.notices)


def test_neuro_deficit_is_emergency():
    # seed 000: 12 hours; NICE QS56: 24 hours; ACR Myelopathy 2021 rates MRI usually appropriate.
    r = pathway({**BASE, "neuro_deficits": ["motor_weakness"]})
    assert r.scenario == "suspected_mscc" and r.urgency.level == "emergency"
    assert [w.hours for w in r.urgency.windows] == [12, 24]
    assert r.first_line.study.id == "mri-whole-spine-mscc"
    assert r.first_line.appropriateness == "usually_appropriate"
    assert [a.step for a in r.actions][:2] == ["contact", "steroids"]


def test_cauda_equina_uses_lbp_variant_4():
    # ACR Low Back Pain 2021 variant 4: MRI without and with contrast usually appropriate (lumbar pain).
    r = pathway({**BASE, "suspected_cauda_equina": True})
    regional = next(x for x in r.recommendations if x.study and x.study.id == "mri-region-wwo")
    assert r.scenario == "suspected_mscc" and "variant 4" in regional.acr_variant
    assert regional.appropriateness == "usually_appropriate"


def test_mri_contraindicated_gives_ct_with_contrast():
    # NG234 summary / seed 000: CT when MRI is contraindicated, IV contrast for epidural disease; CT myelography.
    r = pathway({**BASE, "mri_contraindications": ["non_mr_conditional_device"]})
    assert r.first_line.study.id == "ct-whole-spine-with"  # a known cancer: the whole spine, as MRI would
    assert "ct-myelography" in studies(r, "alternative")
    assert not any(s.startswith("mri-") for s in studies(r))


def test_metal_instrumentation_gives_dual_energy_ct():
    r = pathway({**BASE, "mri_contraindications": ["metal_artefact"]})
    assert r.first_line.study.id == "ct-dual-energy"


def test_kidney_concern_without_egfr_gives_unenhanced_studies_and_asks_for_egfr():
    r = pathway({**BASE, "contrast_concerns": ["reduced_renal_function"]})
    assert r.first_line.study.id == "mri-whole-spine-wo"
    assert "ct-region-wo" in studies(r)  # the alternative when MRI turns out impossible
    assert r.status == "insufficient_data" and r.missing == ["pathway.egfr"]
    assert "missing the eGFR; holds either way" in r.summary


def test_prior_gadolinium_reaction_gives_unenhanced_studies_and_says_sources_are_silent():
    r = pathway({**BASE, "contrast_concerns": ["prior_gadolinium_reaction"]})
    assert r.first_line.study.id == "mri-whole-spine-wo"
    assert any(n.code == "contrast" for n in r.notices)


def test_breast_cancer_symptomatic_staging_and_brain_mri():
    # seed 002: bone scan + CT C/A/P with contrast; brain MRI for HER2+ or triple-negative with neuro symptoms.
    r = pathway({**BASE, "primary_site": "breast", "breast_her2_positive": True, "neuro_deficits": ["sensory_level"]})
    assert {"bone-scan", "ct-cap-with"} <= set(studies(r, "staging"))
    assert "brain-mri-with" in studies(r, "additional")
    r = pathway({**BASE, "primary_site": "breast", "breast_her2_positive": False, "breast_triple_negative": False,
                 "neuro_deficits": ["sensory_level"]})
    assert "brain-mri-with" not in studies(r)


def test_breast_subtype_missing_with_neurology_is_named():
    r = pathway({**BASE, "primary_site": "breast", "neuro_deficits": ["gait"]})
    assert r.status == "insufficient_data"
    assert r.missing == ["pathway.breast_her2_positive or pathway.breast_triple_negative"]
    assert r.first_line is not None  # holds either way


def test_asymptomatic_breast_survivor_no_routine_imaging():
    # ASCO (Khatcheressian 2013): no routine imaging after curative treatment without symptoms.
    r = pathway({"cancer_history": "previous", "primary_site": "breast", "treatment_intent": "curative",
                 "asymptomatic_surveillance": True, "spinal_pain": False, "neuro_deficits": []})
    assert r.imaging_indicated is False and r.status == "complete"
    assert r.recommendations[0].role == "not_indicated"
    assert "khatcheressian-2013" in [ref.source_id for ref in r.references]


def test_asymptomatic_other_primary_has_no_recommendation():
    r = pathway({"cancer_history": "previous", "primary_site": "colon", "treatment_intent": "curative",
                 "asymptomatic_surveillance": True, "spinal_pain": False, "neuro_deficits": []})
    assert r.imaging_indicated is None and r.recommendations == []
    assert any(n.code == "no_recommendation" for n in r.notices)


def test_unknown_primary_adds_body_ct_and_biopsy():
    # seed 003: full-body CT to find the primary; seed 000: urgent histology (CT-guided biopsy).
    r = pathway({"unknown_primary": True, "spinal_pain": True, "neuro_deficits": [], "red_flags": ["suspected_tumour"]})
    assert {"ct-full-body", "ct-guided-biopsy"} <= set(studies(r, "additional"))
    assert r.first_line.study.id == "mri-whole-spine-wwo"


def test_low_back_pain_without_red_flags_not_indicated():
    # ACR LBP 2021 variants 1-2: every procedure usually not appropriate.
    r = pathway({"cancer_history": "none", "spinal_pain": True, "pain_region": "lumbar", "red_flags": [], "neuro_deficits": []})
    assert r.scenario == "low_back_pain_without_red_flags"
    assert r.imaging_indicated is False and studies(r) == []


def test_red_flag_without_cancer_gives_regional_mri():
    r = pathway({"cancer_history": "none", "spinal_pain": True, "pain_region": "lumbar",
                 "red_flags": ["unexplained_weight_loss"], "neuro_deficits": []})
    assert r.first_line.study.id == "mri-region-wwo"
    assert r.first_line.appropriateness == "usually_appropriate"  # ACR LBP variant 7


def test_thoracic_pain_gets_no_lumbar_acr_rating():
    r = pathway({**BASE, "pain_region": "thoracic"})
    assert all(x.appropriateness is None for x in r.recommendations if x.study and x.study.id == "mri-region-wwo")


def test_neuro_status_missing_is_named_with_what_holds():
    r = pathway({k: v for k, v in BASE.items() if k != "neuro_deficits"})
    assert r.status == "insufficient_data"
    assert r.missing == ["pathway.neuro_deficits"]
    assert r.first_line.study.id == "mri-whole-spine-wwo"
    assert sorted(w.hours for w in r.urgency.windows) == [12, 24, 168, 336]


def test_negative_radiograph_never_enough():
    r = pathway({**BASE, "prior_imaging": [{"modality": "radiograph", "result": "negative"}]})
    assert any(n.code == "radiograph_not_enough" for n in r.notices)


@pytest.mark.parametrize("purpose,first", [("characterise", "mri-region-wwo"), ("stage", "fdg-pet-ct"), ("plan_treatment", "mri-whole-spine-wwo")])
def test_known_lesion_purposes(purpose, first):
    r = pathway({"cancer_history": "current", "known_lesion_purpose": purpose})
    assert r.scenario == "known_lesion" and r.first_line.study.id == first


def test_follow_up_purpose():
    r = pathway({"cancer_history": "current", "known_lesion_purpose": "follow_up"})
    assert r.recommendations[0].role == "not_indicated"


def test_nothing_known_names_missing():
    r = pathway({})
    assert r.status == "insufficient_data"
    assert r.missing == ["pathway.spinal_pain", "pathway.cancer_history", "pathway.red_flags", "pathway.neuro_deficits"]


@pytest.mark.parametrize(
    "data,message",
    [
        ({"age": 130}, "pathway.age: input should be less than or equal to 120 (got 130)"),
        ({"red_flags": ["purple"]}, "pathway.red_flags: 'purple' is not a known red flag; allowed values: "),
        ({"neuro_deficits": ["tingling"]}, "pathway.neuro_deficits[0]: 'tingling' is not allowed; allowed values: "),
        ({"cancer_history": "maybe"}, "pathway.cancer_history: 'maybe' is not allowed; allowed values: 'none', 'current' or 'previous'"),
    ],
)
def test_invalid(data, message):
    with pytest.raises(InvalidInputError) as exc:
        pathway(data)
    assert str(exc.value).startswith(message)


# --- properties -----------------------------------------------------------------------------------------

FLAGS = ["suspected_tumour", "nocturnal_pain", "unexplained_weight_loss", "localised_tenderness", "suspected_infection",
         "osteoporosis", "chronic_steroid_use", "low_velocity_trauma", "suspected_fracture"]
scenario = st.fixed_dictionaries({
    "cancer_history": st.sampled_from(["none", "current", "previous"]),
    "primary_site": st.sampled_from([None, "breast", "prostate", "lung", "multiple myeloma", "renal cell carcinoma", "thyroid", "melanoma"]),
    "unknown_primary": st.sampled_from([None, False, True]),
    "spinal_pain": st.booleans(),
    "pain_region": st.sampled_from([None, "cervical", "thoracic", "lumbar"]),
    "red_flags": st.lists(st.sampled_from(FLAGS), unique=True, max_size=3),
    "neuro_deficits": st.lists(st.sampled_from(["motor_weakness", "sensory_level", "sphincter", "gait", "radicular"]), unique=True, max_size=2),
    "mri_contraindications": st.lists(st.sampled_from(["non_mr_conditional_device", "claustrophobia", "metal_artefact"]), unique=True, max_size=2),
    "contrast_concerns": st.lists(st.sampled_from(["reduced_renal_function", "pregnancy"]), unique=True, max_size=1),
    "breast_her2_positive": st.sampled_from([None, True, False]),
    "age": st.sampled_from([None, 4, 12, 17, 18, 45, 80]),
    "pregnant": st.sampled_from([None, False, True]),
    "egfr": st.sampled_from([None, 12.0, 35.0, 90.0]),
    "implanted_device": st.sampled_from([None, "mr_conditional", "mr_unsafe", "non_mr_conditional_cardiac"]),
    "treatment_intent": st.sampled_from([None, "curative", "palliative"]),
    "asymptomatic_surveillance": st.sampled_from([None, False, True]),
})


def _rank(r):
    level = r.urgency.level if r.urgency else "none"
    return URGENCY_ORDER[level], (r.urgency.earliest_hours if r.urgency and r.urgency.earliest_hours is not None else 10**6)


@settings(max_examples=300, deadline=None)
@given(scenario, st.sampled_from(["motor_weakness", "sphincter", "gait"]))
def test_adding_neuro_deficit_never_delays(s, deficit):
    before = pathway(s)
    after = pathway({**s, "neuro_deficits": sorted(set(s["neuro_deficits"]) | {deficit})})
    if before.imaging_indicated is not False or before.urgency:
        assert _rank(after) <= _rank(before)


@settings(max_examples=300, deadline=None)
@given(scenario, st.sampled_from(["non_mr_conditional_device", "claustrophobia", "metal_artefact"]))
def test_mri_contraindication_never_leaves_mri_first(s, contra):
    r = pathway({**s, "mri_contraindications": sorted(set(s["mri_contraindications"]) | {contra})})
    for rec in r.recommendations:
        if rec.role == "first_line":
            assert rec.study.modality != "mri"


@settings(max_examples=300, deadline=None)
@given(scenario)
def test_removing_a_red_flag_never_makes_imaging_more_urgent(s):
    # Removing a malignancy flag may move a patient to another pathway (for example from the metastasis
    # work-up to the osteoporotic-fracture criteria, whose first study is a radiograph), but never to a more
    # urgent one, and never from "not indicated" to imaging.
    if not s["red_flags"]:
        return
    before = pathway(s)
    after = pathway({**s, "red_flags": s["red_flags"][1:]})
    assert _rank(after) >= _rank(before)
    if before.imaging_indicated is False:
        assert after.imaging_indicated is False


@settings(max_examples=200, deadline=None)
@given(scenario)
def test_every_recommendation_is_cited(s):
    r = pathway(s)
    for rec in r.recommendations:
        assert rec.refs, rec
    numbers = {ref.number for ref in r.references}
    assert all(n in numbers for rec in r.recommendations for n in rec.refs)


ARBITRARY_KEYS = ["age", "spinal_pain", "red_flags", "neuro_deficits", "cancer_history", "primary_site",
                  "suspected_cord_compression", "suspected_cauda_equina", "x"]
_BOOL = TypeAdapter(bool | None)


def _stated_true(value) -> bool:
    """The input's own reading of a yes/no field (pydantic's lax booleans: True, 1, 'yes', 'on', ...)."""
    try:
        return _BOOL.validate_python(value) is True
    except ValidationError:
        return False


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(
    st.sampled_from(ARBITRARY_KEYS),
    st.one_of(st.none(), st.text(max_size=5), st.integers(-5, 200), st.booleans(),
              st.sampled_from(["none", "current", "previous", "yes", "no", "lung"]),
              st.lists(st.one_of(st.text(max_size=4), st.sampled_from(["motor_weakness", "radicular", "gait", "nocturnal_pain"])),
                       max_size=2))))
def test_arbitrary_input_gives_our_error_or_a_cited_result_whose_urgency_fits_the_neurology(data):
    try:
        r = pathway(data)
    except SpinemetsError as exc:
        assert isinstance(exc, InvalidInputError), exc  # bad input is named, never contradicted or guessed
        assert exc.field.split(".")[0].split("[")[0] == "pathway" and exc.message, str(exc)
        assert str(exc).startswith(exc.field + ": ")
        return
    # every recommendation, action and time limit is cited, and every citation is in the reference list
    numbers = {ref.number for ref in r.references}
    for item in [*r.recommendations, *r.actions]:
        assert item.refs and set(item.refs) <= numbers, item
    windows = r.urgency.windows if r.urgency else []
    for w in windows:
        assert w.refs and set(w.refs) <= numbers and w.sources, w
    # the urgency follows the neurology: any deficit or suspected compression is an emergency, and only then
    neuro = bool(data.get("neuro_deficits")) or _stated_true(data.get("suspected_cord_compression")) \
        or _stated_true(data.get("suspected_cauda_equina"))
    if neuro:
        assert r.scenario in ("suspected_mscc", "paediatric_neurological"), r.scenario
        assert r.urgency is not None and r.urgency.level == "emergency"
        assert r.actions and r.actions[0].step == "contact"
        assert r.summary.startswith("Suspected spinal cord compression, emergency.")
        if r.scenario == "suspected_mscc":  # NICE: within 24 hours for any neurology; never the 1-2 week limits
            assert ("NICE", 24) in [(w.source_label, w.hours) for w in windows]
            assert r.urgency.earliest_hours <= 24 and all(w.hours <= 48 for w in windows)
    else:
        assert r.urgency is None or r.urgency.level != "emergency"
        assert r.scenario not in ("suspected_mscc", "paediatric_neurological")
    assert (r.status == "complete") == (not r.missing)
    assert all(m.startswith("pathway.") for m in r.missing)
    assert "pathway." not in r.summary and all("pathway." not in n.message for n in r.notices)


# --- planted-bug regression (issue 18): suspected compression on its own is the emergency -----------------------
# NICE QS56 / NG234: MRI within 24 hours with neurological symptoms or signs or suspected cord or cauda equina
# compression; Dutch guideline (Bollen 2018): within 12 hours with suspected cord compression.  A mutant that
# sent suspected compression without a recorded deficit to the 1-2 week limits passed every test before.


@pytest.mark.parametrize("flag", ["suspected_cord_compression", "suspected_cauda_equina"])
def test_suspected_compression_without_a_recorded_deficit_is_an_emergency_within_12_and_24_hours(flag):
    r = pathway({**BASE, flag: True})
    assert r.status == "complete" and r.scenario == "suspected_mscc"
    assert r.urgency.level == "emergency"
    assert [(w.hours, w.source_label, w.level) for w in r.urgency.windows] == [
        (12, "Dutch national guideline", "emergency"), (24, "NICE", "emergency")]
    assert r.first_line.study.id == "mri-whole-spine-mscc" and r.first_line.urgency.level == "emergency"
    assert [a.step for a in r.actions][:2] == ["contact", "steroids"]
    assert r.summary.startswith("Suspected spinal cord compression, emergency. Now: ")
    assert not any(w.hours >= 168 for w in r.urgency.windows)  # not the 1-week / 2-week limits of pain alone


def test_suspected_compression_is_more_urgent_than_the_same_patient_without_it():
    without = pathway(BASE)
    assert without.urgency.level == "urgent" and [w.hours for w in without.urgency.windows] == [168, 336]
    with_it = pathway({**BASE, "suspected_cord_compression": True})
    assert _rank(with_it) < _rank(without) and with_it.urgency.earliest_hours == 12
