"""The patient groups the pathway must recognise (issue: safe for every patient), their worked examples from
the sources, the safety properties, and regression tests for the knowledge-base defects a clinical review found."""

from __future__ import annotations

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from spinemets.knowledge.loader import check_kb, load_kb
from spinemets.pathway import LATER, URGENCY_ORDER, pathway, primary_group

ADULT_LIMIT_STATEMENTS = {"timing.nice.neuro_24_hours", "timing.nice.no_neuro_one_week", "timing.dutch.mescc_12_hours",
                          "timing.dutch.local_pain_two_weeks"}


def ids(r, *roles):
    return [x.study.id for x in r.recommendations if x.study and (not roles or x.role in roles)]


def gadolinium(rec):
    return rec.study is not None and rec.study.modality == "mri" and rec.study.contrast in ("with", "without_and_with")


# --- worked examples, one per group ---------------------------------------------------------------------------

def test_mscc_leads_with_management_in_order():
    # NICE NG234 / BMJ summary: contact immediately, dexamethasone 16 mg, immobilise if unstable, analgesia;
    # QS56: MRI and plan within 24 h; radiotherapy within 24 h of the decision.
    r = pathway({"age": 70, "cancer_history": "current", "primary_site": "lung", "spinal_pain": True,
                 "neuro_deficits": ["motor_weakness", "sphincter"]})
    assert r.scenario == "suspected_mscc"
    assert [a.step for a in r.actions] == ["contact", "steroids", "positioning", "analgesia", "imaging", "treatment"]
    assert r.summary.startswith("Suspected spinal cord compression, emergency. Now: Contact the MSCC coordinator")
    assert "dexamethasone 16 mg" in r.actions[1].label
    assert all(a.refs for a in r.actions)
    steroid = r.actions[1]
    assert "mscc.steroids.schedules_differ" in steroid.statements  # other schedules shown with their sources


def test_mscc_in_haematological_malignancy_involves_haematology():
    r = pathway({"cancer_history": "current", "primary_site": "diffuse large B-cell lymphoma", "spinal_pain": True,
                 "neuro_deficits": ["gait"]})
    steroid = next(a for a in r.actions if a.step == "steroids")
    assert "haematology team" in steroid.label


def test_suspected_compression_without_deficit_or_histology_may_hold_steroids_until_biopsy():
    r = pathway({"cancer_history": "none", "unknown_primary": True, "spinal_pain": True, "neuro_deficits": [],
                 "suspected_cord_compression": True})
    labels = [a.label for a in r.actions if a.step == "steroids"]
    assert any("holding steroids until biopsy" in label for label in labels)


def test_no_neuro_known_cancer_contact_within_24h_and_no_routine_steroids():
    r = pathway({"cancer_history": "current", "primary_site": "breast", "spinal_pain": True, "neuro_deficits": []})
    assert [a.label for a in r.actions][:2] == [
        "Contact the MSCC coordinator within 24 hours.",
        "No routine steroids without neurological symptoms or signs (consider them only for severe pain or a "
        "haematological malignancy).",
    ]


def test_myeloma_without_neurology_steroids_only_once_spinal_involvement_is_confirmed():
    r = pathway({"cancer_history": "current", "primary_site": "myeloma", "spinal_pain": True, "neuro_deficits": []})
    steroid = next(a for a in r.actions if a.step == "steroids")
    assert steroid.label.startswith("If MRI confirms spinal involvement")


def test_neurology_unknown_gives_each_limit_with_its_condition():
    r = pathway({"cancer_history": "previous", "primary_site": "prostate", "spinal_pain": True, "red_flags": []})
    assert r.urgency.level == "depends_on_neurology"
    by_level = {}
    for w in r.urgency.windows:
        by_level.setdefault(w.level, set()).add(w.condition)
    assert by_level["urgent"] == {"with spinal pain suggesting metastases and no neurological symptom or sign"}
    assert by_level["emergency"] == {
        "with any neurological symptom or sign, or suspected cord or cauda equina compression",
        "with suspected cord compression, Lhermitte's sign, or radicular pain or deficit on both sides"}
    assert ("with any neurological symptom or sign, or suspected cord or cauda equina compression: emergency, within 24 "
            "hours (NICE)") in r.summary
    assert "no neurological symptom or sign: urgent, within 1 week (NICE), within 2 weeks" in r.summary


def test_one_sided_radicular_deficit_uses_the_dutch_grading_not_12_hours():
    # Dutch guideline: one-sided radicular deficit progressing within 7 days -> 24 h, over more than 7 days -> 48 h.
    r = pathway({"cancer_history": "current", "spinal_pain": True, "neuro_deficits": ["radicular"]})
    assert sorted((w.hours, w.source_label) for w in r.urgency.windows) == [
        (24, "Dutch national guideline"), (24, "NICE"), (48, "Dutch national guideline")]
    r = pathway({"cancer_history": "current", "spinal_pain": True, "neuro_deficits": ["motor_weakness"]})
    assert [w.hours for w in r.urgency.windows] == [12, 24]
    assert "pathway.neuro_deficits" not in r.summary  # clinical words, not field paths


def test_older_patient_on_steroids_with_low_energy_fall_is_not_the_metastasis_pathway():
    # ACR Low Back Pain 2021 variant 6: radiography, MRI and CT without contrast usually appropriate.
    r = pathway({"age": 78, "cancer_history": "none", "spinal_pain": True, "red_flags": ["chronic_steroid_use",
                 "low_velocity_trauma"], "neuro_deficits": []})
    assert r.scenario == "suspected_osteoporotic_fracture"
    assert r.first_line.study.id == "radiograph" and r.first_line.appropriateness == "usually_appropriate"
    assert "Low Back Pain 2021, variant 6" in r.first_line.acr_variant
    assert not any(gadolinium(x) for x in r.recommendations)
    assert r.urgency is None  # the sources give no time limit; the cancer limits do not apply
    assert "consider_myeloma" in {n.code for n in r.notices}  # age >= 60 (NICE NG12)
    # the metastasis rationale for radiographs is not shown to this patient
    assert not any("known cancer" in why for why in r.first_line.rationale)


def test_suspected_fracture_flag_alone_does_not_send_a_patient_without_cancer_to_the_metastasis_pathway():
    r = pathway({"age": 70, "cancer_history": "none", "spinal_pain": True, "red_flags": ["suspected_fracture"],
                 "neuro_deficits": []})
    assert r.scenario == "suspected_osteoporotic_fracture"


def test_fracture_seen_on_radiograph_acr_vcf_variant_1():
    r = pathway({"age": 70, "cancer_history": "none", "spinal_pain": True, "red_flags": ["osteoporosis"],
                 "neuro_deficits": [], "prior_imaging": [{"modality": "radiograph", "result": "positive"}]})
    assert r.first_line.study.id == "mri-region-wo"
    assert "Vertebral Compression Fractures" in r.first_line.acr_variant


def test_malignancy_flag_with_fracture_flags_keeps_the_metastasis_work_up():
    r = pathway({"age": 70, "cancer_history": "none", "spinal_pain": True,
                 "red_flags": ["osteoporosis", "unexplained_weight_loss"], "neuro_deficits": []})
    assert r.scenario == "suspected_spinal_metastasis"


def test_fracture_flags_with_cancer_history_unknown_names_it():
    r = pathway({"age": 70, "spinal_pain": True, "red_flags": ["osteoporosis"], "neuro_deficits": []})
    assert r.status == "insufficient_data" and r.missing == ["pathway.cancer_history"]
    assert "the cancer history" in r.summary


def test_child_with_night_pain_gets_paediatric_criteria():
    r = pathway({"age": 9, "spinal_pain": True, "night_pain": True, "neuro_deficits": []})
    assert r.scenario == "paediatric_back_pain" and "child" in r.patient_groups
    assert r.first_line.study.id == "radiograph-area-child"
    assert r.first_line.acr_variant.startswith("ACR Back Pain-Child, variant 2")
    assert r.urgency is None
    codes = {n.code for n in r.notices}
    assert {"adult_pathway", "child_differential", "child_red_flags"} <= codes
    differential = next(n for n in r.notices if n.code == "child_differential").message
    for disease in ("discitis", "leukaemia", "osteoid osteoma", "Ewing sarcoma", "Langerhans cell histiocytosis"):
        assert disease in differential


def test_child_without_red_flags_no_imaging():
    r = pathway({"age": 13, "cancer_history": "none", "spinal_pain": True, "night_pain": False,
                 "pain_duration_weeks": 2, "pain_progressive": False, "red_flags": [], "neuro_deficits": []})
    assert r.imaging_indicated is False and r.status == "complete"
    assert r.recommendations[0].role == "not_indicated"
    assert "ACR Back Pain-Child, variant 1" in r.recommendations[0].rationale[0]


def test_child_red_flags_not_stated_named_as_missing():
    r = pathway({"age": 10, "spinal_pain": True, "neuro_deficits": [], "red_flags": []})
    assert r.status == "insufficient_data" and r.imaging_indicated is None
    assert r.missing == ["pathway.night_pain", "pathway.pain_duration_weeks", "pathway.pain_progressive",
                         "pathway.cancer_history"]
    assert "whether there is night pain, how long the pain has lasted" in r.summary


def test_child_with_known_cancer_and_back_pain_is_never_ordinary_back_pain():
    r = pathway({"age": 10, "cancer_history": "current", "primary_site": "neuroblastoma", "spinal_pain": True,
                 "night_pain": False, "pain_duration_weeks": 1, "pain_progressive": False, "red_flags": [],
                 "neuro_deficits": []})
    assert r.imaging_indicated is not False
    assert r.first_line.study.id == "mri-complete-spine-wwo-child"
    assert r.first_line.statements == ["child.known_cancer_back_pain"]


def test_child_with_known_cancer_and_deficit_is_emergency_without_adult_limits():
    r = pathway({"age": 6, "cancer_history": "current", "primary_site": "neuroblastoma", "spinal_pain": True,
                 "neuro_deficits": ["gait"]})
    assert r.scenario == "paediatric_neurological" and r.urgency.level == "emergency"
    assert r.urgency.windows == []
    assert r.actions[0].label.startswith("Contact the paediatric spinal team, and paediatric oncology")
    assert "dexamethasone" not in " ".join(a.label for a in r.actions)  # adult steroid advice is not transferred


def test_pregnant_patient_unenhanced_mri_and_staging_without_radiation_first():
    r = pathway({"age": 31, "pregnant": True, "cancer_history": "current", "primary_site": "breast",
                 "spinal_pain": True, "neuro_deficits": [], "red_flags": []})
    assert r.first_line.study.id == "mri-whole-spine-wo"
    assert ids(r, "staging")[0] == "wb-mri-dwi"
    assert {"pregnancy_mri", "pregnancy_gadolinium"} <= {n.code for n in r.notices}


def test_pregnancy_as_a_contrast_concern_is_recognised_too():
    r = pathway({"cancer_history": "current", "spinal_pain": True, "neuro_deficits": [], "contrast_concerns": ["pregnancy"]})
    assert "pregnancy" in r.patient_groups and r.first_line.study.id == "mri-whole-spine-wo"


@pytest.mark.parametrize("site", ["myeloma", "multiple myeloma", "Plasmacytoma", "plasma-cell disorder", "MGUS"])
def test_myeloma_synonyms(site):
    assert primary_group(site).id == "myeloma"


def test_myeloma_staging_and_no_bone_scan():
    r = pathway({"cancer_history": "current", "primary_site": "multiple myeloma", "spinal_pain": True,
                 "neuro_deficits": []})
    assert ids(r, "staging") == ["wbldct", "wb-mri-myeloma"]
    assert ids(r, "avoid") == ["bone-scan"]
    assert "myeloma_no_bone_scan" in {n.code for n in r.notices}


def test_myeloma_known_lesion_staging_never_bone_scan():
    r = pathway({"cancer_history": "current", "primary_site": "myeloma", "known_lesion_purpose": "stage"})
    assert r.first_line.study.id == "wbldct"
    assert "bone-scan" not in ids(r, "first_line", "alternative", "additional", "staging", "staging_alternative")


@pytest.mark.parametrize("site,staging,alternative,avoid", [
    ("prostate", ["psma-pet-ct"], ["bone-scan", "ct-cap-with"], []),
    ("renal cell carcinoma", ["ct-cap-with"], ["bone-scan"], []),  # sources differ on the bone scan in RCC
    ("papillary thyroid cancer", ["fdg-pet-ct-staging", "radioiodine-wbs"], ["bone-scan"], []),
    ("neuroendocrine tumour", ["ssr-pet-ct"], [], []),
    ("NSCLC", ["ct-chest-lung", "fdg-pet-ct-staging"], [], []),
    ("Hodgkin lymphoma", ["fdg-pet-ct-staging"], [], []),
    ("breast", ["bone-scan", "ct-cap-with"], [], []),
])
def test_staging_by_histology(site, staging, alternative, avoid):
    r = pathway({"cancer_history": "current", "primary_site": site, "spinal_pain": True, "neuro_deficits": [],
                 "breast_her2_positive": False, "breast_triple_negative": False})
    assert ids(r, "staging") == staging
    assert ids(r, "staging_alternative") == alternative
    assert ids(r, "avoid") == avoid


def test_unlisted_histology_staging_is_draft():
    r = pathway({"cancer_history": "current", "primary_site": "bladder", "spinal_pain": True, "neuro_deficits": []})
    assert ids(r, "staging") == ["fdg-pet-ct", "bone-scan"]
    assert "staging_by_histology.other-fdg" in r.draft_items


def test_melanoma_is_staged_with_ct_including_the_brain():
    # NICE NG14 1.5.3-1.5.5: CT staging, the brain included for suspected stage IV; whole-body MRI considered up to 24.
    r = pathway({"age": 60, "cancer_history": "current", "primary_site": "melanoma", "spinal_pain": True,
                 "neuro_deficits": []})
    assert ids(r, "staging") == ["ct-cap-with", "ct-head-with"]
    assert ids(r, "staging_alternative") == ["wb-mri-dwi"]
    assert not any(i.startswith("staging_by_histology.other") for i in r.draft_items)


def test_breast_staging_sentence_only_for_breast_cancer():
    breast = pathway({"cancer_history": "current", "primary_site": "breast", "spinal_pain": True, "neuro_deficits": [],
                      "breast_her2_positive": False, "breast_triple_negative": False})
    prostate = pathway({"cancer_history": "current", "primary_site": "prostate", "spinal_pain": True,
                        "neuro_deficits": []})
    melanoma = pathway({"cancer_history": "current", "primary_site": "melanoma", "spinal_pain": True,
                        "neuro_deficits": []})
    assert any("breast.back_pain.complete_staging" in x.statements for x in breast.recommendations)
    for r in (prostate, melanoma):
        assert not any("breast.back_pain.complete_staging" in x.statements for x in r.recommendations)
        assert not any("Breast cancer" in why for x in r.recommendations for why in x.rationale)


def test_no_statement_says_the_patient_is_symptomatic(kb):
    assert not [s.id for s in kb.statements.values() if "because the patient is symptomatic" in s.text.lower()]


def test_egfr_below_30_keeps_needed_contrast_mri_with_group_ii_advice():
    r = pathway({"cancer_history": "current", "primary_site": "lung", "spinal_pain": True, "neuro_deficits": [],
                 "egfr": 24})
    assert r.first_line.study.id == "mri-whole-spine-wwo"
    gad = next(n for n in r.notices if n.code == "kidney_gadolinium")
    assert "group II" in gad.message and "weinreb-2021" in gad.sources
    iodinated = [n for n in r.notices if n.code == "kidney_iodinated"]
    assert {s for n in iodinated for s in n.sources} >= {"davenport-2020", "kdigo-aki-2012"}  # thresholds differ


def test_egfr_between_30_and_45_only_kdigo_threshold_applies():
    r = pathway({"cancer_history": "current", "primary_site": "lung", "spinal_pain": True, "neuro_deficits": [],
                 "egfr": 38})
    codes = [n.code for n in r.notices]
    assert "kidney_gadolinium" not in codes and codes.count("kidney_iodinated") == 1


def test_normal_egfr_no_kidney_advice():
    r = pathway({"cancer_history": "current", "spinal_pain": True, "neuro_deficits": [], "egfr": 90})
    assert not [n for n in r.notices if n.code.startswith("kidney")]


def test_mr_conditional_device_keeps_mri_with_conditions():
    r = pathway({"cancer_history": "current", "spinal_pain": True, "neuro_deficits": [],
                 "implanted_device": "mr_conditional"})
    assert r.first_line.study.modality == "mri"
    assert "implant_conditional" in {n.code for n in r.notices}


def test_mr_unsafe_device_ct_then_ct_myelography():
    r = pathway({"cancer_history": "current", "spinal_pain": True, "neuro_deficits": [], "implanted_device": "mr_unsafe"})
    assert r.first_line.study.modality == "ct"
    assert "ct-myelography" in ids(r, "alternative")


def test_legacy_cardiac_device_mri_under_protocol():
    r = pathway({"cancer_history": "current", "spinal_pain": True, "neuro_deficits": [],
                 "implanted_device": "non_mr_conditional_cardiac"})
    assert r.first_line.study.modality == "mri" and "implant_legacy" in {n.code for n in r.notices}


def test_implant_labelling_unknown_is_named():
    r = pathway({"cancer_history": "current", "spinal_pain": True, "neuro_deficits": [],
                 "implanted_device": "labelling_unknown"})
    assert r.status == "insufficient_data" and "pathway.implanted_device" in r.missing
    assert "the implant's MR labelling" in r.summary


def test_unknown_primary_work_up_before_biopsy():
    r = pathway({"unknown_primary": True, "cancer_history": "none", "spinal_pain": True, "neuro_deficits": [],
                 "primary_bone_tumour_possible": False})
    assert {"ct-full-body", "ct-guided-biopsy"} <= set(ids(r, "additional"))
    assert r.workup[0].label.startswith("Before biopsy")
    assert "PSA in men" in r.workup[0].label and "myeloma screen" in r.workup[0].label


def test_unknown_primary_possible_bone_sarcoma_goes_to_a_sarcoma_centre_before_biopsy():
    r = pathway({"unknown_primary": True, "cancer_history": "none", "spinal_pain": True, "neuro_deficits": [],
                 "primary_bone_tumour_possible": True})
    assert "ct-guided-biopsy" not in ids(r)
    assert r.workup[-1].label == "Refer to a bone sarcoma centre before any biopsy"


@pytest.mark.parametrize("months,pseudo", [(3, True), (6, True), (9, False)])
def test_after_sbrt_pseudoprogression_window(months, pseudo):
    # Amini 2016: pseudoprogression peaks at about 10-24 weeks; apparent progression at 3-6 months.
    r = pathway({"cancer_history": "current", "primary_site": "renal", "known_lesion_purpose": "response_assessment",
                 "treatment_given": "sbrt", "months_since_treatment": months})
    codes = {n.code for n in r.notices}
    assert ("pseudoprogression" in codes) is pseudo
    assert "vcf_after_sbrt" in codes  # Sahgal 2013


def test_after_sbrt_months_unknown_is_named_and_warns():
    r = pathway({"cancer_history": "current", "known_lesion_purpose": "response_assessment", "treatment_given": "sbrt"})
    assert r.missing == ["pathway.months_since_treatment"] and "pseudoprogression" in {n.code for n in r.notices}


# --- the knowledge-base defects ---------------------------------------------------------------------------------

def test_dual_energy_ct_cites_the_review_that_describes_it(kb):
    row = kb.table("imaging_studies").row("ct-dual-energy")
    assert "seed-003" in row.sources and "seed-000" not in row.sources


def test_adult_time_limits_never_rest_on_an_ai_answer_page(kb):
    for row in kb.table("urgency_windows").rows:
        kinds = {kb.source(s).kind.value for s in row.sources}
        assert kinds - {"ai_answer_page", "web_summary"}, row.id
        assert not row.is_draft


def test_kb_check_rejects_a_reviewed_fact_whose_only_source_is_an_ai_answer_page(kb_copy):
    path = kb_copy / "statements" / "timing.yaml"
    items = yaml.safe_load(path.read_text())
    item = next(i for i in items if i["id"] == "timing.seed000.neuro_deficit_12_hours")
    assert item["review_status"] == "draft"
    item["review_status"] = "reviewed"
    path.write_text(yaml.safe_dump(items, sort_keys=False, allow_unicode=True))
    problems = check_kb(kb_copy)
    assert problems == [
        "statement timing.seed000.neuro_deficit_12_hours: every source is a web summary or AI answer page; it "
        "must be review_status 'draft' until a primary source (guideline, study, label, review) is added"
    ]


def test_kb_check_rejects_such_a_table_row_but_not_language_data(kb, kb_copy):
    path = kb_copy / "tables" / "urgency_windows.yaml"
    table = yaml.safe_load(path.read_text())
    table["rows"][0]["sources"] = ["seed-000"]
    path.write_text(yaml.safe_dump(table, sort_keys=False, allow_unicode=True))
    problems = check_kb(kb_copy)
    assert len(problems) == 1 and problems[0].startswith("table row urgency_windows.neuro-dutch: every source")
    assert kb.table("synonyms").content == "language"


def test_patient_group_thresholds_are_data(kb):
    assert kb.table("patient_groups").row("child")["threshold"] == 18
    assert kb.table("patient_groups").row("osteoporotic_fracture")["threshold"] == 60


# --- properties --------------------------------------------------------------------------------------------------

SITES = [None, "breast", "prostate", "lung", "multiple myeloma", "plasmacytoma", "renal cell carcinoma", "thyroid",
         "melanoma", "lymphoma", "neuroendocrine"]
FLAGS = ["suspected_tumour", "nocturnal_pain", "unexplained_weight_loss", "localised_tenderness", "suspected_infection",
         "osteoporosis", "chronic_steroid_use", "low_velocity_trauma", "suspected_fracture"]
patient = st.fixed_dictionaries({
    "age": st.sampled_from([None, 2, 9, 15, 17, 18, 30, 55, 75]),
    "pregnant": st.sampled_from([None, False, True]),
    "egfr": st.sampled_from([None, 10.0, 28.0, 40.0, 95.0]),
    "cancer_history": st.sampled_from([None, "none", "current", "previous"]),
    "primary_site": st.sampled_from(SITES),
    "unknown_primary": st.sampled_from([None, False, True]),
    "spinal_pain": st.sampled_from([None, True, False]),
    "night_pain": st.sampled_from([None, True, False]),
    "red_flags": st.one_of(st.none(), st.lists(st.sampled_from(FLAGS), unique=True, max_size=3)),
    "neuro_deficits": st.one_of(st.none(), st.lists(st.sampled_from(["motor_weakness", "sphincter", "gait", "radicular"]),
                                                    unique=True, max_size=2)),
    "suspected_cord_compression": st.sampled_from([None, False, True]),
    "implanted_device": st.sampled_from([None, "none", "mr_conditional", "mr_unsafe", "non_mr_conditional_cardiac"]),
    "mri_contraindications": st.lists(st.sampled_from(["claustrophobia", "metal_artefact"]), unique=True, max_size=1),
    "known_lesion_purpose": st.sampled_from([None, None, "stage", "characterise", "plan_treatment", "response_assessment"]),
    "treatment_given": st.sampled_from([None, "sbrt", "conventional_radiotherapy"]),
    "months_since_treatment": st.sampled_from([None, 2.0, 12.0]),
})
EXAMPLES = 300


@settings(max_examples=EXAMPLES, deadline=None)
@given(patient)
def test_pregnancy_never_gets_gadolinium_or_radiation_without_the_trade_off(s):
    r = pathway({**s, "pregnant": True})
    for rec in r.recommendations:
        if rec.study is None or rec.role == "avoid":
            continue
        if gadolinium(rec):
            assert rec.statements[0] == "pregnancy.gadolinium_only_if_essential", rec.study.id
        if rec.study.ionising:
            assert rec.statements[0] == "pregnancy.ionising_trade_off", rec.study.id
    first = r.first_line
    if first is not None and first.study is not None:
        assert not gadolinium(first)


@settings(max_examples=EXAMPLES, deadline=None)
@given(patient, st.integers(0, 17))
def test_a_child_never_gets_the_adult_time_limits(s, age):
    r = pathway({**s, "age": age})
    if r.urgency is not None:
        assert not {w.statement for w in r.urgency.windows} & ADULT_LIMIT_STATEMENTS
    assert r.scenario not in ("suspected_mscc", "suspected_spinal_metastasis", "suspected_osteoporotic_fracture")
    assert "child" in r.patient_groups


@settings(max_examples=EXAMPLES, deadline=None)
@given(patient, st.sampled_from(["myeloma", "multiple myeloma", "plasmacytoma", "smouldering myeloma", "MGUS"]))
def test_myeloma_never_gets_a_bone_scan(s, site):
    r = pathway({**s, "primary_site": site})
    for rec in r.recommendations:
        if rec.study is not None and rec.study.modality == "bone_scan":
            assert rec.role == "avoid"


@settings(max_examples=EXAMPLES, deadline=None)
@given(patient, st.lists(st.sampled_from(["osteoporosis", "chronic_steroid_use", "low_velocity_trauma",
                                          "suspected_fracture"]), unique=True, min_size=1, max_size=3))
def test_no_cancer_with_suspected_osteoporotic_fracture_never_gets_the_metastasis_pathway(s, flags):
    r = pathway({**s, "age": 70, "cancer_history": "none", "unknown_primary": False, "primary_site": None,
                 "spinal_pain": True, "red_flags": flags, "known_lesion_purpose": None})
    assert r.scenario != "suspected_spinal_metastasis"
    assert not {"mri-whole-spine-wwo", "ct-full-body", "fdg-pet-ct", "bone-scan"} & set(ids(r, "first_line", "staging"))


@settings(max_examples=EXAMPLES, deadline=None)
@given(patient)
def test_suspected_mscc_always_leads_with_management(s):
    r = pathway({**s, "neuro_deficits": ["motor_weakness"]})
    assert r.scenario in ("suspected_mscc", "paediatric_neurological")
    assert r.actions and r.actions[0].step == "contact"
    assert r.summary.startswith("Suspected spinal cord compression, emergency. Now:")
    roles = [x.role for x in r.recommendations]
    if any(role in LATER for role in roles):
        first_later = min(i for i, role in enumerate(roles) if role in LATER)
        assert all(role not in ("first_line", "alternative") for role in roles[first_later:])


@settings(max_examples=EXAMPLES, deadline=None)
@given(patient)
def test_emergency_and_routine_limits_are_never_merged(s):
    r = pathway(s)
    if r.urgency is None:
        return
    by_condition: dict[str, set[str]] = {}
    for w in r.urgency.windows:
        by_condition.setdefault(w.condition, set()).add(w.level)
    assert all(len(levels) == 1 for levels in by_condition.values())
    if len(by_condition) > 1:
        text = r.urgency.describe()
        assert all(condition in text for condition in by_condition)
    assert URGENCY_ORDER[r.urgency.level] <= 3


@settings(max_examples=EXAMPLES, deadline=None)
@given(patient)
def test_no_field_paths_or_internal_ids_in_the_summary(s):
    r = pathway(s)
    assert "pathway." not in r.summary and "seed" not in r.summary.lower()
    for a in [*r.actions, *r.workup]:
        assert "pathway." not in a.label


# --- assess: one patient, one histology -------------------------------------------------------------------------

def test_assess_passes_the_patients_histology_to_the_pathway_and_probability():
    from spinemets import assess

    r = assess({"patient": {"histology": "multiple myeloma"},
                "pathway": {"cancer_history": "current", "spinal_pain": True, "neuro_deficits": []}})
    assert "myeloma" in r.pathway.patient_groups and ids(r.pathway, "avoid") == ["bone-scan"]
    from spinemets.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="myeloma"):
        assess({"patient": {"histology": "myeloma"},
                "probability": {"pre_test": 0.3, "tests": [{"modality": "bone_scan", "result": "negative"}]}})


def test_assess_rejects_a_histology_that_contradicts_the_pathway_primary():
    from spinemets import assess
    from spinemets.errors import ContradictoryInputError

    with pytest.raises(ContradictoryInputError) as err:
        assess({"patient": {"histology": "myeloma"},
                "pathway": {"cancer_history": "current", "primary_site": "breast", "spinal_pain": True}})
    assert err.value.fields == ["case.patient.histology", "case.pathway.primary_site"]
    # the same primary in other words is not a contradiction
    r = assess({"patient": {"histology": "renal cell carcinoma"},
                "pathway": {"cancer_history": "current", "primary_site": "kidney", "spinal_pain": True,
                            "neuro_deficits": []}})
    assert r.pathway.status == "complete"


# --- second review: unsafe or wrong outputs it found ---------------------------------------------------------------

def test_mr_unsafe_implant_with_cord_compression_images_the_whole_spine_by_ct():
    r = pathway({"cancer_history": "current", "spinal_pain": True, "neuro_deficits": ["motor_weakness"],
                 "implanted_device": "mr_unsafe"})
    assert r.first_line.study.id == "ct-whole-spine-with"
    imaging = next(a for a in r.actions if a.step == "imaging")
    assert imaging.label.startswith("MRI is not possible: CT of the whole spine")
    assert "ct-myelography" in ids(r, "alternative")


def test_suspected_compression_without_deficit_does_not_get_dexamethasone():
    r = pathway({"cancer_history": "current", "primary_site": "lung", "spinal_pain": True, "neuro_deficits": [],
                 "suspected_cord_compression": True})
    steroids = [a.label for a in r.actions if a.step == "steroids"]
    assert steroids == ["No routine steroids without neurological symptoms or signs (consider them only for severe "
                        "pain or a haematological malignancy)."]


def test_deficit_without_any_cancer_is_a_spinal_emergency_not_an_oncological_one():
    r = pathway({"age": 80, "cancer_history": "none", "spinal_pain": True, "red_flags": ["osteoporosis"],
                 "neuro_deficits": ["motor_weakness"]})
    labels = " ".join(a.label for a in r.actions)
    assert "acute spinal team" in labels and "oncological emergency" not in labels
    assert "dexamethasone 16 mg" not in labels


def test_neurology_with_cancer_history_unknown_names_it_but_keeps_the_emergency_first():
    r = pathway({"spinal_pain": True, "neuro_deficits": ["gait"]})
    assert r.summary.startswith("Suspected spinal cord compression, emergency. Now:")
    assert "pathway.cancer_history" in r.missing


def test_unknown_primary_biopsy_waits_for_the_sarcoma_question():
    r = pathway({"unknown_primary": True, "cancer_history": "none", "spinal_pain": True, "neuro_deficits": []})
    assert "pathway.primary_bone_tumour_possible" in r.missing
    biopsy = next(x for x in r.recommendations if x.study and x.study.id == "ct-guided-biopsy")
    assert biopsy.statements[0] == "unknown_primary.sarcoma_centre_first"


def test_leukaemia_gets_no_generic_bone_scan_staging():
    r = pathway({"cancer_history": "current", "primary_site": "acute myeloid leukaemia", "spinal_pain": True,
                 "neuro_deficits": []})
    assert not ids(r, *LATER) and "staging_haematology" in {n.code for n in r.notices}


def test_new_pain_after_sbrt_shows_fracture_and_pseudoprogression():
    r = pathway({"cancer_history": "current", "primary_site": "renal cell carcinoma", "spinal_pain": True,
                 "neuro_deficits": [], "treatment_given": "sbrt", "months_since_treatment": 3})
    assert {"vcf_after_sbrt", "pseudoprogression"} <= {n.code for n in r.notices}


def test_no_cancer_with_weight_loss_gets_no_cancer_time_limits_and_the_acp_ladder():
    r = pathway({"age": 72, "cancer_history": "none", "spinal_pain": True, "red_flags": ["unexplained_weight_loss"],
                 "neuro_deficits": []})
    assert r.scenario == "suspected_spinal_metastasis" and r.urgency is None
    assert {"no_cancer_flags", "consider_myeloma"} <= {n.code for n in r.notices}


def test_staging_rationale_is_only_the_histologys_own():
    r = pathway({"cancer_history": "current", "primary_site": "lung", "spinal_pain": True, "neuro_deficits": []})
    pet = next(x for x in r.recommendations if x.study and x.study.id == "fdg-pet-ct-staging")
    assert pet.statements == ["staging.lung.nice"]


def test_pregnancy_ionising_staging_is_only_the_other_position():
    r = pathway({"pregnant": True, "cancer_history": "current", "primary_site": "breast", "spinal_pain": True,
                 "neuro_deficits": [], "breast_her2_positive": False, "breast_triple_negative": False})
    assert ids(r, "staging") == ["wb-mri-dwi"]
    assert set(ids(r, "staging_alternative")) == {"bone-scan", "ct-cap-with"}


def test_primary_site_matching_is_not_fooled_by_common_words():
    assert primary_group("not known at all") is None
    assert primary_group("renal pelvis urothelial carcinoma") is None
    assert primary_group("kidney").id == "renal"


def test_missing_inputs_are_in_words_in_the_text():
    text = pathway({"age": 10, "spinal_pain": True, "neuro_deficits": [], "red_flags": []}).to_text()
    assert "Missing: whether there is night pain" in text and "pathway." not in text


def test_a_draft_time_limit_is_flagged_and_never_in_the_headline(kb_copy):
    path = kb_copy / "tables" / "urgency_windows.yaml"
    table = yaml.safe_load(path.read_text())
    row = next(r for r in table["rows"] if r["id"] == "no_neuro-dutch")
    row["review_status"] = "draft"
    path.write_text(yaml.safe_dump(table, sort_keys=False, allow_unicode=True))
    kb = load_kb(kb_copy)
    r = pathway({"cancer_history": "current", "spinal_pain": True, "neuro_deficits": []}, kb)
    assert "within 2 weeks" not in r.summary and "within 1 week (NICE)" in r.summary
    assert "within 2 weeks (Dutch national guideline, DRAFT)" in r.to_text()
    assert "urgency_windows.no_neuro-dutch" in r.draft_items


def test_dialysis_counts_as_kidney_failure_for_contrast_and_needs_no_egfr():
    r = pathway({"cancer_history": "current", "spinal_pain": True, "neuro_deficits": [], "on_dialysis": True,
                 "contrast_concerns": ["reduced_renal_function"]})
    assert r.status == "complete" and r.first_line.study.id == "mri-whole-spine-wwo"
    assert "kidney_gadolinium" in {n.code for n in r.notices}


def test_implant_labelling_unknown_does_not_claim_the_mri_holds_either_way():
    r = pathway({"cancer_history": "current", "spinal_pain": True, "neuro_deficits": [],
                 "implanted_device": "labelling_unknown"})
    assert "holds either way" not in r.summary and "; if MRI is possible: MRI" in r.summary


def _primary_groups_reference(site, kb):
    """The plain reading primary_groups replaced (a pattern per synonym compiled on every call)."""
    import re

    if not site:
        return []
    text = " " + re.sub(r"[^a-z0-9\-]+", " ", site.lower()) + " "
    spans = [(m.start(), m.end(), row) for row in kb.table("primary_sites").rows for syn in row["synonyms"]
             for m in re.finditer(rf"(?<= ){re.escape(syn)}(?= )", text)]
    kept = [s for s in spans if not any(o[0] <= s[0] and s[1] <= o[1] and o[1] - o[0] > s[1] - s[0] for o in spans)]
    out = []
    for _, _, row in sorted(kept, key=lambda s: s[0]):
        if all(r.id != row.id for r in out):
            out.append(row)
    return out


_SYNONYMS = [s for r in load_kb().table("primary_sites").rows for s in r["synonyms"]]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_SYNONYMS + ["cancer", "of the", "non", "small", "cell", "-", "/", "carcinoma",
                                             "metastatic", "and", "CA", "Lung", "BREAST", ""]), max_size=4))
def test_primary_sites_read_as_the_plain_reading_reads_them(words):
    from spinemets.pathway import primary_groups

    kb = load_kb()
    site = " ".join(words)
    assert [r.id for r in primary_groups(site, kb)] == [r.id for r in _primary_groups_reference(site, kb)]


def test_primary_groups_are_remembered_per_site_but_given_as_a_fresh_list(kb):
    from spinemets.pathway import primary_groups

    first = primary_groups("renal cell carcinoma", kb)
    assert [r.id for r in first] == [r.id for r in _primary_groups_reference("renal cell carcinoma", kb)] and first
    first.clear()  # a caller changing its list changes nothing for the next
    assert [r.id for r in primary_groups("renal cell carcinoma", kb)] == [
        r.id for r in _primary_groups_reference("renal cell carcinoma", kb)]
