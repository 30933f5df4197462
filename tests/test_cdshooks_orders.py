"""A draft imaging order rated against the pathway's scenario (issue 13): the study the LOINC code is, the ACR rating,
the PAMA code where it is unambiguous, and no rating (with the reason) otherwise."""

from __future__ import annotations

import pytest

from spinemets.cdshooks.orders import match_order, rate
from spinemets.knowledge.loader import load_kb
from spinemets.pathway import pathway

LBP7 = "ACR Low Back Pain 2021, variant 7 (suspected cancer, infection or immunosuppression)"


def order(code, system="http://loinc.org"):
    return match_order({"resourceType": "ServiceRequest", "code": {"coding": [{"system": system, "code": code}]}})


CANCER_LUMBAR = {"age": 58, "sex": "female", "cancer_history": "current", "primary_site": "breast",
                 "spinal_pain": True, "pain_region": "lumbar", "red_flags": [], "neuro_deficits": []}
NO_RED_FLAGS = {"age": 40, "cancer_history": "none", "spinal_pain": True, "pain_region": "lumbar",
                "pain_duration_weeks": 2, "red_flags": [], "neuro_deficits": []}


def test_every_order_code_names_studies_of_the_pathway():
    kb = load_kb()
    studies = {r.id for r in kb.table("imaging_studies").rows}
    for row in kb.table("order_codes").rows:
        assert set(row["studies"]) <= studies, row.id
        assert (row["contrast"] == "unspecified") == (len(row["studies"]) > 1), row.id


def test_a_code_it_does_not_know_is_not_rated():
    assert order("24981-3", system="http://www.ama-assn.org/go/cpt") is None
    assert order("99999-9") is None
    assert order("24981-3").studies == ["mri-region-wwo"]


@pytest.mark.parametrize("code, appropriateness, pama", [
    ("24967-2", "usually_appropriate", "appropriate"),   # MR lumbar spine without and with contrast
    ("24968-0", "usually_appropriate", "appropriate"),   # contrast not stated: both MRI studies rated alike
    ("24972-2", "may_be_appropriate", None),             # radiographs: no PAMA code for "may be appropriate"
])
def test_cancer_and_new_low_back_pain(code, appropriateness, pama):
    rating = rate(order(code), pathway(CANCER_LUMBAR))
    assert (rating.appropriateness, rating.pama, rating.acr_variant) == (appropriateness, pama, LBP7)
    if pama is None:
        assert "no PAMA code" in rating.why


def test_low_back_pain_without_red_flags_radiographs_not_appropriate():
    rating = rate(order("24972-2"), pathway(NO_RED_FLAGS))
    assert (rating.appropriateness, rating.pama) == ("usually_not_appropriate", "not-appropriate")


def test_lumbar_criteria_do_not_rate_another_region():
    rating = rate(order("24981-3"), pathway(CANCER_LUMBAR))
    assert rating.not_rated and rating.pama is None and "the order is for the thoracic spine" in rating.why


def test_thoracic_pain_in_cancer_has_no_acr_variant_here():
    result = pathway({**CANCER_LUMBAR, "pain_region": "thoracic"})
    assert result.acr_scenario is None and result.status == "complete"
    rating = rate(order("24981-3"), result)
    assert rating.not_rated and rating.pama is None and rating.appropriateness is None


def test_an_unplaced_scenario_gives_no_rating_and_names_what_is_missing():
    rating = rate(order("24981-3"), pathway({"spinal_pain": True, "pain_region": "thoracic"}))
    assert rating.pama is None and rating.appropriateness is None
    assert "pathway.cancer_history" in rating.missing


def test_contrast_not_stated_and_ratings_that_differ_give_no_rating():
    # root pain persisting after medical management (ACR variant 3): MRI without contrast usually appropriate, MRI
    # without and with contrast may be appropriate, so "MR Lumbar spine" (contrast not stated) gets no rating
    result = pathway({**NO_RED_FLAGS, "red_flags": ["radicular_treatment_failure"], "neuro_deficits": ["radicular"]})
    assert result.acr_scenario == "after_medical_management"
    rating = rate(order("24968-0"), result)
    assert rating.pama is None and "does not say whether contrast is given" in rating.why
    assert rate(order("24967-2"), result).appropriateness == "may_be_appropriate"


def test_thoracic_pain_without_red_flags_is_rated_by_the_thoracic_back_pain_criteria():
    from spinemets.cdshooks.orders import match_order, rate
    from spinemets.pathway import pathway

    scenario = pathway({"age": 50, "cancer_history": "none", "spinal_pain": True, "pain_region": "thoracic",
                        "red_flags": [], "neuro_deficits": []})
    assert scenario.imaging_indicated is False and scenario.acr_scenario == "tbp_no_red_flags"

    def order(code):
        return match_order({"resourceType": "ServiceRequest",
                            "code": {"coding": [{"system": "http://loinc.org", "code": code}]}})

    mri = rate(order("24981-3"), scenario)  # MR Thoracic spine WO and W contrast IV
    assert (mri.appropriateness, mri.pama) == ("usually_not_appropriate", "not-appropriate")
    assert mri.acr_variant.startswith("ACR Thoracic Back Pain 2024")
    # thoracic radiographs differ between the two variants (usually not / may be appropriate): not rated
    assert rate(order("24983-9"), scenario).not_rated
    # a lumbar order in a thoracic scenario: the thoracic criteria do not rate it
    lumbar = rate(order("24967-2"), scenario)
    assert lumbar.not_rated and "about the thoracic spine" in lumbar.why


def test_thoracic_radicular_pain_and_pain_after_thoracic_surgery_are_not_rated_as_pain_without_red_flags():
    from spinemets.cdshooks.orders import match_order, rate
    from spinemets.pathway import pathway

    base = {"age": 50, "cancer_history": "none", "spinal_pain": True, "pain_region": "thoracic", "red_flags": []}
    mri = match_order({"resourceType": "ServiceRequest",
                       "code": {"coding": [{"system": "http://loinc.org", "code": "24980-5"}]}})  # MR Thoracic spine
    radicular = pathway({**base, "neuro_deficits": ["radicular"]})
    assert radicular.acr_scenario == "tbp_radiculopathy" and radicular.imaging_indicated is True
    first = next(r for r in radicular.recommendations if r.role == "first_line")
    assert (first.study.id, first.appropriateness) == ("mri-region-wo", "usually_appropriate")
    wwo = match_order({"resourceType": "ServiceRequest",
                       "code": {"coding": [{"system": "http://loinc.org", "code": "24981-3"}]}})
    assert rate(wwo, radicular).not_rated  # variant 3's rating of MRI with contrast is not in the knowledge base
    assert rate(mri, radicular).appropriateness is None  # "MR Thoracic spine" may be either: rated only if alike
    operated = pathway({**base, "neuro_deficits": [], "spinal_hardware": True})
    assert operated.acr_scenario is None and operated.imaging_indicated is None
    assert rate(wwo, operated).not_rated



@pytest.mark.parametrize("extra, group, first", [
    ({"pregnant": True}, "pregnancy", "mri-region-wo"),          # no gadolinium: the unenhanced MRI stays first
    ({"implanted_device": "mr_unsafe"}, "implant", "ct-region-with"),  # no MRI: CT first
    ({"age": 12}, "child", "radiograph-area-child"),                # a child: the paediatric pathway, not ACR TBP
])
def test_thoracic_radicular_pain_in_the_groups_it_could_be_wrong_for(extra, group, first):
    from spinemets.pathway import pathway

    r = pathway({"age": 30, "sex": "female", "cancer_history": "none", "spinal_pain": True, "pain_region": "thoracic",
                 "red_flags": [], "neuro_deficits": ["radicular"], **extra})
    assert group in r.patient_groups
    assert next(x for x in r.recommendations if x.role == "first_line").study.id == first
