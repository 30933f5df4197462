"""Imaging pathway: one worked example per branch (sources in comments) and the safety properties."""

from __future__ import annotations

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from spinemets.errors import InvalidInputError, SpinemetsError
from spinemets.knowledge.loader import load_kb
from spinemets.pathway import LATER, URGENCY_ORDER, pathway

BASE = dict(age=68, cancer_history="previous", primary_site="prostate", spinal_pain=True, pain_region="lumbar",
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


def test_low_back_pain_without_red_flags_needs_the_age():
    # "no imaging" holds for adults; a child's back pain has its own red flags: without the age, no answer
    r = pathway({"cancer_history": "none", "spinal_pain": True, "pain_region": "lumbar", "red_flags": [],
                 "neuro_deficits": []})
    assert r.status == "insufficient_data" and r.missing == ["pathway.age"] and r.imaging_indicated is None
    assert r.acr_scenario is None
    assert pathway({"adult": True, "cancer_history": "none", "spinal_pain": True, "pain_region": "lumbar",
                    "red_flags": [], "neuro_deficits": []}).imaging_indicated is False


def test_low_back_pain_without_red_flags_not_indicated():
    # ACR LBP 2021 variants 1-2: every procedure usually not appropriate.
    r = pathway({"age": 45, "cancer_history": "none", "spinal_pain": True, "pain_region": "lumbar", "red_flags": [], "neuro_deficits": []})
    assert r.scenario == "low_back_pain_without_red_flags"
    assert r.imaging_indicated is False and studies(r) == []


def test_red_flag_without_cancer_gives_regional_mri():
    r = pathway({"age": 45, "cancer_history": "none", "spinal_pain": True, "pain_region": "lumbar",
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


def test_follow_up_purpose_depends_on_the_treatment_intent():
    # Follow-up imaging is not routine after palliation and is after curative treatment: unstated intent is asked for.
    r = pathway({"cancer_history": "current", "known_lesion_purpose": "follow_up"})
    assert r.status == "insufficient_data" and r.missing == ["pathway.treatment_intent"]
    assert r.imaging_indicated is None and r.recommendations == [] and r.urgency is None
    assert r.summary == "insufficient data: missing the treatment intent (curative or palliative)"


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
    "mri_contraindications": st.lists(st.sampled_from(["non_mr_conditional_device", "claustrophobia", "metal_artefact",
                                                       "metallic_foreign_body", "reason_not_given"]), unique=True, max_size=2),
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
@given(scenario, st.sampled_from(["non_mr_conditional_device", "metal_artefact", "metallic_foreign_body",
                                  "reason_not_given"]))
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
    compression = _stated_true(data.get("suspected_cord_compression")) or _stated_true(data.get("suspected_cauda_equina"))
    no_cancer = data.get("cancer_history") == "none" and not _stated_true(data.get("unknown_primary"))
    # root pain alone without cancer is a back-pain presentation (ACR Low Back Pain), not the emergency
    root_only = no_cancer and data.get("neuro_deficits") == ["radicular"] and not compression
    neuro = (bool(data.get("neuro_deficits")) or compression) and not root_only
    if neuro:
        assert r.scenario in ("suspected_mscc", "paediatric_neurological"), r.scenario
        assert r.urgency is not None and r.urgency.level == "emergency"
        assert r.actions and r.actions[0].step == "contact"
        assert r.summary.startswith(("Suspected spinal cord compression, emergency.",
                                     "Suspected cauda equina compression, emergency.")), r.summary
        if r.scenario == "suspected_mscc" and no_cancer:  # the cancer limits do not apply; cauda equina: 4 hours
            assert all(w.hours <= 4 for w in windows)
        elif r.scenario == "suspected_mscc":  # NICE: within 24 hours for any neurology; never the 1-2 week limits
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
    what = "cauda equina" if flag == "suspected_cauda_equina" else "spinal cord"
    assert r.summary.startswith(f"Suspected {what} compression, emergency. Now: ")
    assert not any(w.hours >= 168 for w in r.urgency.windows)  # not the 1-week / 2-week limits of pain alone


def test_suspected_compression_is_more_urgent_than_the_same_patient_without_it():
    without = pathway(BASE)
    assert without.urgency.level == "urgent" and [w.hours for w in without.urgency.windows] == [168, 336]
    with_it = pathway({**BASE, "suspected_cord_compression": True})
    assert _rank(with_it) < _rank(without) and with_it.urgency.earliest_hours == 12


# === Mutation-testing section: whole decisions for worked examples (decision logic of spinemets.pathway) ========
# Each test below asserts the WHOLE decision for a case: scenario, status, missing fields, imaging indicated,
# patient groups, urgency (level and each source's limit), management actions, every recommendation (rank, role,
# study, ACR rating, the statements behind it, its urgency), the work-up and every notice (code and knowledge-base
# items).  Run them alone with `-k decision`.  Accepted equivalent mutants: tests/data/mutation_equivalent/pathway.json.


ACTION_ROWS = {row["label"]: row.id for row in load_kb().table("mscc_actions").rows}


def decision(r):
    """A result reduced to everything a clinician acts on (wording of statements is fixed by their ids)."""
    u = r.urgency
    return {
        "scenario": r.scenario,
        "status": r.status,
        "missing": r.missing,
        "indicated": r.imaging_indicated,
        "groups": r.patient_groups,
        "urgency": None if u is None else (u.level, [(w.hours, w.source_label) for w in u.windows]),
        "actions": [ACTION_ROWS[a.label] for a in r.actions],  # the mscc_actions row (step, label, statements)
        "recs": [(x.rank, x.role, x.study.id if x.study else None, x.appropriateness, x.statements,
                  x.urgency.level if x.urgency else None) for x in r.recommendations],
        "workup": [(a.label, a.statements) for a in r.workup],
        "notices": [(n.code, n.kb_items) for n in r.notices],
    }


def expected(**over):
    """The decision of a routine, complete case, with the given parts replaced."""
    base = {"scenario": "known_lesion", "status": "complete", "missing": [], "indicated": True, "groups": [],
            "urgency": ("routine", []), "actions": [], "recs": [], "workup": [], "notices": []}
    return {**base, **over}


def cited_as_built(r):
    """The result cites what it shows: each recommendation exactly the sources of its study, its statements and its
    ACR rating; each management step those of its mscc_actions row and statements; each work-up item those of its
    statements; each notice those of the items it names.  Rationales are the statements' texts, and every draft item
    used is flagged under its own id (and only drafts are).  A commercial AI answer page is cited for an item only
    when it is the item's only source (a draft, flagged), never beside the item's guideline or study."""
    kb = load_kb()
    by_number = {ref.number: ref.source_id for ref in r.references}
    answer_pages = {sid for sid, src in kb.sources.items() if src.kind == "ai_answer_page"}
    assert answer_pages

    def shown(ids):
        return (set(ids) - answer_pages) or set(ids)

    def cited(item, want):
        assert {by_number[n] for n in item.refs} == want, item
        assert [kb.statement(s).text for s in item.statements] == item.rationale, item

    def sources_of(statements):
        return {src for sid in statements for src in shown(kb.statement(sid).sources)}

    for rec in r.recommendations:
        want = sources_of(rec.statements)
        if rec.study is not None:
            want |= shown(kb.table("imaging_studies").row(rec.study.id).sources)
        if rec.acr_variant is not None:
            want |= shown(kb.table("acr_ratings").where(acr_variant=rec.acr_variant, study=rec.study.id)[0].sources)
        cited(rec, want)
    rows = {row["label"]: row for row in kb.table("mscc_actions").rows}
    for a in r.actions:
        row = rows[a.label]
        assert (a.step, a.statements) == (row["step"], row["statements"]), a
        cited(a, shown(row.sources) | sources_of(a.statements))
    for w in r.workup:
        assert w.step == "work_up", w
        cited(w, sources_of(w.statements))
    for n in r.notices:
        want = {src for kid in n.kb_items for src in shown(kb.find(kid).sources)}
        assert set(n.sources) == want and {by_number[x] for x in n.refs} == want, n
    # an answer page in the references is there only for a draft that has nothing else
    for page in answer_pages & set(by_number.values()):
        assert any(kb.find(d).sources and set(kb.find(d).sources) <= answer_pages and page in kb.find(d).sources
                   for d in r.draft_items), page
    drafts = set(r.draft_items)
    assert all(kb.find(d).is_draft for d in drafts), drafts
    for rec in r.recommendations:
        if rec.study is not None and kb.table("imaging_studies").row(rec.study.id).is_draft:
            assert f"imaging_studies.{rec.study.id}" in drafts, rec
        assert all(s in drafts for s in rec.statements if kb.statement(s).is_draft), rec


MRI_REGION = ["imaging.mri.first_line"]
CT_WO = ["imaging.ct.osseous_integrity", "imaging.ct.when_mri_contraindicated"]
CURRENT = {"cancer_history": "current"}


# --- known lesion: characterise (MRI T1/STIR; CT for osseous integrity; CT first when MRI is impossible) ---------

def test_decision_known_lesion_characterise_mri_then_ct():
    r = pathway({**CURRENT, "known_lesion_purpose": "characterise"})
    assert decision(r) == expected(recs=[
        (1, "first_line", "mri-region-wwo", None, ["imaging.mri.t1_stir_characterisation", *MRI_REGION], None),
        (2, "alternative", "ct-region-wo", None, CT_WO, None)])
    assert r.summary == "MRI of the symptomatic spinal region without and with IV contrast; routine"
    cited_as_built(r)


def test_decision_known_lesion_characterise_without_mri_is_ct_first_line():
    r = pathway({**CURRENT, "known_lesion_purpose": "characterise", "mri_contraindications": ["reason_not_given"]})
    assert decision(r) == expected(recs=[(1, "first_line", "ct-region-wo", None, CT_WO, None)])


def test_decision_known_lesion_characterise_in_pregnancy_is_unenhanced_mri():
    # ACOG CO 723 / ACR: MRI preferred in pregnancy, gadolinium only if essential; CT with its trade-off.
    r = pathway({**CURRENT, "known_lesion_purpose": "characterise", "pregnant": True})
    assert decision(r) == expected(groups=["pregnancy"], recs=[
        (1, "first_line", "mri-region-wo", None, ["imaging.mri.t1_stir_characterisation",
                                                  "imaging.mri.noncontrast_low_epidural_risk",
                                                  "imaging.acr.lbp_v7_usually_appropriate"], None),
        (2, "alternative", "ct-region-wo", None, ["pregnancy.ionising_trade_off", *CT_WO], None)],
        notices=[("pregnancy_mri", ["pregnancy.mri_preferred"]),
                 ("pregnancy_gadolinium", ["pregnancy.gadolinium_only_if_essential"])])
    cited_as_built(r)


# --- known lesion: staging (histology table; without histology FDG-PET/CT first, bone scan, CT) ------------------

STAGING_UNKNOWN = ("Staging depends on the primary tumour, which is not stated: for example PSMA PET/CT in prostate "
                   "cancer and no bone scan in myeloma.")


def test_decision_known_lesion_stage_without_histology():
    r = pathway({**CURRENT, "known_lesion_purpose": "stage"})
    assert decision(r) == expected(recs=[
        (1, "first_line", "fdg-pet-ct", None, ["imaging.pet.capabilities", "imaging.pet.not_first_line"], None),
        (2, "alternative", "bone-scan", None, ["nm.spect_ct_vs_planar", "imaging.bone_scan.not_first_line"], None),
        (3, "additional", "ct-cap-with", None, [], None)],
        notices=[("staging_histology", ["myeloma.no_bone_scan", "staging.prostate.psma"])])
    assert r.notices[0].message == STAGING_UNKNOWN
    cited_as_built(r)


def test_decision_known_lesion_stage_without_histology_or_contrast():
    r = pathway({**CURRENT, "known_lesion_purpose": "stage", "contrast_concerns": ["prior_gadolinium_reaction"]})
    assert decision(r)["recs"][2] == (3, "additional", "ct-region-wo", None, CT_WO, None)


def test_decision_known_lesion_stage_breast_uses_the_breast_rows():
    # NCCN breast / ACR: bone scan and contrast CT of chest, abdomen and pelvis; the first becomes first line.
    r = pathway({**CURRENT, "primary_site": "breast", "known_lesion_purpose": "stage"})
    assert decision(r) == expected(recs=[
        (1, "first_line", "bone-scan", None, ["breast.back_pain.complete_staging"], None),
        (2, "staging", "ct-cap-with", None, ["breast.back_pain.complete_staging"], None)])
    cited_as_built(r)


def test_decision_known_lesion_stage_myeloma_low_dose_ct_first_and_no_bone_scan():
    # IMWG 2019: whole-body low-dose CT; NICE NG35: whole-body MRI; bone scan avoided (IMWG 2009).
    r = pathway({**CURRENT, "primary_site": "myeloma", "known_lesion_purpose": "stage"})
    assert decision(r) == expected(groups=["myeloma"], recs=[
        (1, "first_line", "wbldct", None, ["myeloma.imwg_wbldct_first"], None),
        (2, "staging", "wb-mri-myeloma", None, ["myeloma.nice_wbmri_first"], None),
        (3, "staging_alternative", "fdg-pet-ct-myeloma", None, ["myeloma.pet_for_response",
                                                              "myeloma.plasmacytoma_whole_body"], None),
        (4, "avoid", "bone-scan", None, ["myeloma.no_bone_scan"], None)])


MYELOMA_WORKUP = [("Serum protein electrophoresis, serum free light chains and urine Bence Jones protein.",
                   ["fracture.consider_myeloma"])]


def test_decision_suspected_myeloma_is_whole_body_imaging_each_guideline_first_never_a_bone_scan():
    r = pathway({"spinal_pain": True, "red_flags": ["suspected_myeloma"], "cancer_history": "none",
                 "neuro_deficits": [], "age": 67})
    assert decision(r) == expected(scenario="suspected_myeloma", urgency=None, recs=[
        (1, "first_line", "wbldct", None, ["myeloma.imwg_wbldct_first"], None),
        (2, "first_line", "wb-mri-myeloma", None, ["myeloma.nice_wbmri_first"], None),
        (3, "avoid", "bone-scan", None, ["myeloma.no_bone_scan"], None)],
        workup=MYELOMA_WORKUP, notices=[("myeloma_cord_compression", ["myeloma.cord_compression_mri"])])
    # sources differ on which comes first: both are named, joined, never one chosen silently
    assert r.summary == ("Whole-body low-dose CT or whole-body MRI (or spine and pelvis MRI) for marrow and focal "
                         "lesions")
    cited_as_built(r)


def test_decision_suspected_myeloma_without_mri_keeps_low_dose_ct():
    r = pathway({"spinal_pain": True, "red_flags": ["suspected_myeloma"], "cancer_history": "none",
                 "neuro_deficits": [], "implanted_device": "mr_unsafe"})
    assert [(x.role, x.study.id) for x in r.recommendations] == [("first_line", "wbldct"), ("avoid", "bone-scan")]
    assert r.summary == "Whole-body low-dose CT"


def test_suspected_myeloma_in_pregnancy_puts_whole_body_mri_first():
    base = {"spinal_pain": True, "red_flags": ["suspected_myeloma"], "cancer_history": "none", "neuro_deficits": [],
            "pregnant": True}
    r = pathway(base)
    assert [(x.role, x.study.id, x.statements) for x in r.recommendations if x.study][:2] == [
        ("first_line", "wb-mri-myeloma", ["myeloma.nice_wbmri_first", "pregnancy.mri_preferred"]),
        ("alternative", "wbldct", ["myeloma.imwg_wbldct_first", "pregnancy.ionising_trade_off"])]
    assert r.summary.startswith("Whole-body MRI")
    cited_as_built(r)
    r = pathway({**base, "implanted_device": "mr_unsafe"})  # no MRI: the CT, with its trade-off stated
    assert r.first_line.study.id == "wbldct" and "pregnancy.ionising_trade_off" in r.first_line.statements


def test_suspected_myeloma_with_a_deficit_is_cord_compression_and_with_cancer_the_metastasis_pathway():
    r = pathway({"spinal_pain": True, "red_flags": ["suspected_myeloma"], "cancer_history": "none",
                 "neuro_deficits": ["motor_weakness"]})
    assert r.scenario == "suspected_mscc" and r.first_line.study.id == "mri-whole-spine-mscc"
    r = pathway({"spinal_pain": True, "red_flags": ["suspected_myeloma"], "cancer_history": "current",
                 "primary_site": "breast", "neuro_deficits": []})
    assert r.scenario == "suspected_spinal_metastasis" and r.first_line.study.id == "mri-whole-spine-wwo"
    r = pathway({"spinal_pain": True, "red_flags": ["suspected_myeloma"], "neuro_deficits": []})
    assert r.scenario == "suspected_myeloma" and r.missing == ["pathway.cancer_history"]


def test_decision_known_lesion_stage_leukaemia_defers_to_the_haematology_team():
    r = pathway({**CURRENT, "primary_site": "leukaemia", "known_lesion_purpose": "stage"})
    assert decision(r) == expected(notices=[("staging_haematology", ["staging.haematological_by_team"])])


# --- known lesion: treatment planning (whole-spine MRI for compartments; CT for bone integrity) ------------------

def test_decision_known_lesion_plan_treatment():
    r = pathway({**CURRENT, "known_lesion_purpose": "plan_treatment"})
    assert decision(r) == expected(recs=[
        (1, "first_line", "mri-whole-spine-wwo", None, ["imaging.mri.compartment_localisation",
                                                        "imaging.mri.whole_spine_high_suspicion", *MRI_REGION], None),
        (2, "additional", "ct-region-wo", None, CT_WO, None)])
    cited_as_built(r)


def test_decision_known_lesion_plan_treatment_without_contrast():
    r = pathway({**CURRENT, "known_lesion_purpose": "plan_treatment", "contrast_concerns": ["prior_gadolinium_reaction"]})
    assert decision(r) == expected(recs=[
        (1, "first_line", "mri-whole-spine-wo", None, ["imaging.mri.compartment_localisation",
                                                       "imaging.mri.nice_mscc_protocol"], None),
        (2, "additional", "ct-region-wo", None, CT_WO, None)],
        notices=[("contrast", ["contrast.caveat.safety_not_covered"])])


def test_decision_known_lesion_plan_treatment_with_an_mr_unsafe_implant_is_ct_first_line():
    r = pathway({**CURRENT, "known_lesion_purpose": "plan_treatment", "implanted_device": "mr_unsafe"})
    assert decision(r) == expected(groups=["implant"], recs=[(1, "first_line", "ct-region-wo", None, CT_WO, None)],
                                   notices=[("implant_unsafe", ["implant.ct_myelography_when_mri_impossible"])])


# --- after treatment: response criteria; after SBRT pseudoprogression up to 6 months (patient_groups threshold) ---

RESPONSE_MRI = (1, "first_line", "mri-region-wwo", None, ["after_treatment.response_criteria", *MRI_REGION], None)
SBRT_NOTICES = [("pseudoprogression", ["after_treatment.pseudoprogression"]),
                ("vcf_after_sbrt", ["after_treatment.vcf_after_sbrt"])]


@pytest.mark.parametrize("months", [0, 3, 6])
def test_decision_response_after_sbrt_within_six_months_warns_of_pseudoprogression(months):
    # Amini 2016 / Sahgal 2013: apparent growth at 3-6 months after SBRT may be pseudoprogression; fracture risk.
    r = pathway({**CURRENT, "primary_site": "breast", "known_lesion_purpose": "response_assessment",
                 "treatment_given": "sbrt", "months_since_treatment": months})
    assert decision(r) == expected(groups=["after_treatment"], recs=[RESPONSE_MRI], notices=SBRT_NOTICES)
    cited_as_built(r)


@pytest.mark.parametrize("months", [6.5, 12])
def test_decision_response_after_sbrt_beyond_six_months_only_the_fracture_risk(months):
    r = pathway({**CURRENT, "known_lesion_purpose": "response_assessment", "treatment_given": "sbrt",
                 "months_since_treatment": months})
    assert decision(r) == expected(groups=["after_treatment"], recs=[RESPONSE_MRI], notices=SBRT_NOTICES[1:])


def test_decision_follow_up_after_sbrt_without_the_months_names_them():
    r = pathway({**CURRENT, "known_lesion_purpose": "follow_up", "treatment_given": "sbrt"})
    assert decision(r) == expected(groups=["after_treatment"], recs=[RESPONSE_MRI], notices=SBRT_NOTICES,
                                   status="insufficient_data", missing=["pathway.months_since_treatment"])


def test_decision_follow_up_after_surgery_without_mri_is_ct_with_response_criteria():
    r = pathway({**CURRENT, "known_lesion_purpose": "follow_up", "treatment_given": "surgery",
                 "mri_contraindications": ["reason_not_given"]})
    assert decision(r) == expected(groups=["after_treatment"], recs=[
        (1, "first_line", "ct-region-wo", None, ["after_treatment.response_criteria", *CT_WO], None)])


def test_decision_follow_up_without_treatment_or_intent_is_insufficient_data():
    # Regression: once 'no imaging' was shown beside 'imaging indicated' and the headline 'no recommendation'.
    r = pathway({**CURRENT, "known_lesion_purpose": "follow_up"})
    assert decision(r) == expected(
        status="insufficient_data", missing=["pathway.treatment_intent"], indicated=None, urgency=None,
        notices=[("follow_up_intent", ["treatment.no_routine_imaging_after_palliation"]),
                 ("follow_up_intent", ["treatment.imaging_after_curative_treatment"])])
    cited_as_built(r)


def test_decision_follow_up_after_palliative_intent_is_no_routine_imaging():
    r = pathway({**CURRENT, "known_lesion_purpose": "follow_up", "treatment_intent": "palliative"})
    assert decision(r) == expected(indicated=False, urgency=("none", []), recs=[
        (1, "not_indicated", None, None, ["treatment.no_routine_imaging_after_palliation"], None)])
    assert r.summary == "imaging not indicated"
    cited_as_built(r)


@pytest.mark.parametrize("mri_problem,study", [([], "mri-region-wwo"), (["reason_not_given"], "ct-region-wo")])
def test_decision_follow_up_after_curative_intent_images_the_lesion(mri_problem, study):
    r = pathway({**CURRENT, "known_lesion_purpose": "follow_up", "treatment_intent": "curative",
                 "mri_contraindications": mri_problem})
    assert decision(r)["recs"] == [(1, "first_line", study, None, ["treatment.imaging_after_curative_treatment"], None)]
    assert r.imaging_indicated is True and r.urgency.level == "routine" and r.status == "complete"
    cited_as_built(r)


# --- 'no imaging' with the ACR ratings of the studies one might order --------------------------------------------

def test_decision_asymptomatic_breast_survivor_names_the_acr_ratings():
    # ASCO 2013: no routine imaging; ACR Stage I Breast Cancer variant 1: bone scan and FDG-PET/CT usually not appropriate.
    r = pathway({"cancer_history": "previous", "primary_site": "breast", "treatment_intent": "curative",
                 "asymptomatic_surveillance": True, "spinal_pain": False, "neuro_deficits": []})
    assert decision(r) == expected(
        scenario="asymptomatic_surveillance", indicated=False, urgency=("none", []),
        recs=[(1, "not_indicated", None, None, ["breast.surveillance.no_routine_imaging"], None)],
        notices=[("acr_rating", ["acr_ratings.breast1-bone-scan"]), ("acr_rating", ["acr_ratings.breast1-pet"])])
    variant = "ACR Stage I Breast Cancer, variant 1 (asymptomatic, rule out bone metastases)"
    assert [n.message for n in r.notices] == [
        f"{variant}: Whole-body bone scan (add SPECT/CT for equivocal spinal findings) is usually not appropriate.",
        f"{variant}: FDG-PET/CT (skull base to mid-thigh or whole body) is usually not appropriate."]
    assert r.summary == "imaging not indicated"
    cited_as_built(r)


CHILD_ALL_STATED = {"age": 10, "spinal_pain": True, "night_pain": False, "pain_duration_weeks": 2,
                    "pain_progressive": False, "neuro_deficits": [], "red_flags": [], "cancer_history": "none"}


def test_decision_child_without_red_flags_needs_no_imaging():
    # ACR Back Pain-Child variant 1: radiographs and MRI usually not appropriate.
    r = pathway(CHILD_ALL_STATED)
    assert decision(r) == expected(
        scenario="paediatric_back_pain", indicated=False, urgency=("none", []), groups=["child"],
        recs=[(1, "not_indicated", None, None, ["child.acr_no_red_flags"], None)],
        notices=[("adult_pathway", ["child.adult_pathway_not_applicable"]),
                 ("acr_rating", ["acr_ratings.child1-radiograph"]), ("acr_rating", ["acr_ratings.child1-mri-wwo"])])
    variant = "ACR Back Pain-Child, variant 1 (no red flags, initial imaging)"
    assert [n.message for n in r.notices][1:] == [
        f"{variant}: Radiographs of the painful area of the spine is usually not appropriate.",
        f"{variant}: MRI of the complete spine without and with IV contrast is usually not appropriate."]


# --- unknown primary: work-up before biopsy (NICE CG104), sarcoma centre first (Gerrand 2016), CT-guided biopsy ----

NO_NEURO_LIMITS = ("urgent", [(168, "NICE"), (336, "Dutch national guideline")])
SPINE_ALTERNATIVES_LBP7 = [
    (2, "alternative", "mri-region-wwo", "usually_appropriate", MRI_REGION, None),
    (3, "alternative", "mri-region-wo", "usually_appropriate", ["contrast.caveat.not_always_needed",
                                                              "imaging.mri.noncontrast_low_epidural_risk",
                                                              "imaging.acr.lbp_v7_usually_appropriate"], None),
    (4, "alternative", "ct-region-with", "may_be_appropriate", ["imaging.ct.when_mri_contraindicated"], None)]
INITIAL_WORKUP = ("Before biopsy: history and examination, blood tests, a myeloma screen when the lesions are lytic, "
                  "and PSA in men", ["unknown_primary.initial_workup"])
METASTASIS_NOTICES = [("radiographs", ["imaging.radiograph.cannot_exclude"]),
                      ("timing_differs", ["timing.caveat.sources_differ"])]
UNKNOWN_PRIMARY = {"unknown_primary": True, "spinal_pain": True, "neuro_deficits": [], "red_flags": ["suspected_tumour"]}


def test_decision_unknown_primary_bone_tumour_not_considered_names_it_and_keeps_both_paths():
    r = pathway(UNKNOWN_PRIMARY)
    assert decision(r) == expected(
        scenario="suspected_spinal_metastasis", status="insufficient_data",
        missing=["pathway.primary_bone_tumour_possible"], groups=["unknown_primary"], urgency=NO_NEURO_LIMITS,
        recs=[(1, "first_line", "mri-whole-spine-wwo", None, ["imaging.mri.whole_spine_high_suspicion", *MRI_REGION],
               "urgent"),
              *SPINE_ALTERNATIVES_LBP7,
              (5, "additional", "ct-full-body", None, ["imaging.unknown_primary.body_ct"], "urgent"),
              (6, "additional", "ct-guided-biopsy", None, ["unknown_primary.sarcoma_centre_first",
                                                           "unknown_primary.biopsy_yield",
                                                           "imaging.unknown_primary.histology",
                                                           "imaging.unknown_primary.ct_guided_biopsy"], "urgent")],
        workup=[INITIAL_WORKUP, ("If a primary bone tumour is possible, refer to a bone sarcoma centre before any biopsy",
                                 ["unknown_primary.sarcoma_centre_first"])],
        notices=METASTASIS_NOTICES)
    cited_as_built(r)


def test_decision_unknown_primary_no_bone_tumour_goes_to_biopsy():
    r = pathway({**UNKNOWN_PRIMARY, "cancer_history": "none", "primary_bone_tumour_possible": False})
    assert decision(r) == expected(
        scenario="suspected_spinal_metastasis", groups=["unknown_primary"], urgency=NO_NEURO_LIMITS,
        recs=[(1, "first_line", "mri-whole-spine-wwo", None, ["imaging.mri.whole_spine_high_suspicion", *MRI_REGION],
               "urgent"),
              *SPINE_ALTERNATIVES_LBP7,
              (5, "additional", "ct-full-body", None, ["imaging.unknown_primary.body_ct"], "urgent"),
              (6, "additional", "ct-guided-biopsy", None, ["unknown_primary.biopsy_yield",
                                                           "imaging.unknown_primary.histology",
                                                           "imaging.unknown_primary.ct_guided_biopsy"], "urgent")],
        workup=[INITIAL_WORKUP], notices=METASTASIS_NOTICES)
    cited_as_built(r)


def test_decision_unknown_primary_possible_bone_tumour_with_compression_refers_before_any_biopsy():
    r = pathway({"age": 35, "unknown_primary": True, "primary_bone_tumour_possible": True, "spinal_pain": True,
                 "neuro_deficits": ["motor_weakness"], "cancer_history": "none"})
    d = decision(r)
    assert (d["scenario"], d["status"], d["missing"], d["groups"]) == ("suspected_mscc", "complete", [], ["unknown_primary"])
    assert d["urgency"] == ("emergency", [(12, "Dutch national guideline"), (24, "NICE")])
    assert d["actions"] == ["contact-now", "steroids-neuro", "position", "analgesia", "mri-now", "treatment"]
    assert d["recs"][4:] == [(5, "additional", "ct-full-body", None, ["imaging.unknown_primary.body_ct"], "emergency")]
    assert "ct-guided-biopsy" not in studies(r)  # the sarcoma centre decides on the biopsy
    assert d["workup"] == [INITIAL_WORKUP, ("Refer to a bone sarcoma centre before any biopsy",
                                            ["unknown_primary.sarcoma_centre_first"])]
    cited_as_built(r)


def test_decision_thresholds_come_from_the_knowledge_base_it_is_given(kb_copy):
    # patient_groups holds the thresholds (child under 18, myeloma screen from 60, SBRT window 6 months); a revised
    # knowledge base passed to pathway() is the one whose thresholds apply.
    path = kb_copy / "tables" / "patient_groups.yaml"
    table = yaml.safe_load(path.read_text())
    for row in table["rows"]:
        row["threshold"] = {"child": 16, "osteoporotic_fracture": 70, "after_treatment": 3}.get(row["id"], row["threshold"])
    path.write_text(yaml.safe_dump(table, sort_keys=False))
    # a solid primary without staging rows of its own falls back to the general rows (histology "other")
    path = kb_copy / "tables" / "staging_by_histology.yaml"
    table = yaml.safe_load(path.read_text())
    table["rows"] = [row for row in table["rows"] if row["histology"] != "neuroendocrine"]
    table["rows"].reverse()  # the staging section is ordered by role (staging, alternative, avoid), not by row order
    path.write_text(yaml.safe_dump(table, sort_keys=False))
    # a new synonym for myeloma (primary_sites), a rating and a management step under review (drafts)
    for name, row_id, change in (("primary_sites", "myeloma", {"synonyms": ["kahler disease"]}),
                                 ("acr_ratings", "lbp7-mri-wwo", {"review_status": "draft"}),
                                 ("mscc_actions", "contact-24h", {"review_status": "draft"})):
        path = kb_copy / "tables" / f"{name}.yaml"
        table = yaml.safe_load(path.read_text())
        row = next(r for r in table["rows"] if r["id"] == row_id)
        row.update({k: row.get(k, []) + v if isinstance(v, list) else v for k, v in change.items()})
        path.write_text(yaml.safe_dump(table, sort_keys=False))
    revised = load_kb(kb_copy)
    kahler = {"cancer_history": "current", "primary_site": "Kahler disease", "spinal_pain": True, "neuro_deficits": []}
    assert pathway(kahler).patient_groups == [] and studies(pathway(kahler), "staging") == ["fdg-pet-ct", "bone-scan"]
    r = pathway(kahler, revised)
    assert r.patient_groups == ["myeloma"] and set(studies(r, "staging")) == {"wbldct", "wb-mri-myeloma"}
    assert [a.label for a in r.actions][1].startswith("If MRI confirms spinal involvement by the haematological malignancy")
    assert {"acr_ratings.lbp7-mri-wwo", "mscc_actions.contact-24h"} <= set(r.draft_items)
    assert not {"acr_ratings.lbp7-mri-wwo", "mscc_actions.contact-24h"} & set(pathway(kahler).draft_items)
    teen_pain = {"age": 17, "cancer_history": "current", "spinal_pain": True, "neuro_deficits": [], "red_flags": []}
    assert pathway(teen_pain).scenario == "paediatric_back_pain"
    assert pathway(teen_pain, revised).scenario == "suspected_spinal_metastasis"
    net = {"cancer_history": "current", "primary_site": "neuroendocrine tumour", "spinal_pain": True, "neuro_deficits": []}
    assert studies(pathway(net), "staging") == ["ssr-pet-ct"]
    assert studies(pathway(net, revised), "staging") == ["bone-scan", "fdg-pet-ct"]
    myeloma = {"cancer_history": "current", "primary_site": "myeloma", "spinal_pain": True, "neuro_deficits": []}
    for kb_used in (None, revised):
        later = [x.role for x in pathway(myeloma, kb_used).recommendations if x.role in LATER]
        assert later == ["staging", "staging", "staging_alternative", "avoid"]
    sbrt = {**CURRENT, "known_lesion_purpose": "response_assessment", "treatment_given": "sbrt", "months_since_treatment": 4}
    assert [n.code for n in pathway(sbrt).notices] == ["pseudoprogression", "vcf_after_sbrt"]
    assert [n.code for n in pathway(sbrt, revised).notices] == ["vcf_after_sbrt"]
    teen = {"age": 17, "cancer_history": "current", "known_lesion_purpose": "characterise"}
    assert pathway(teen).patient_groups == ["child"] and pathway(teen, revised).patient_groups == []
    fracture = {"age": 65, "cancer_history": "none", "spinal_pain": True, "red_flags": ["osteoporosis"], "neuro_deficits": []}
    assert "consider_myeloma" in [n.code for n in pathway(fracture).notices]
    assert "consider_myeloma" not in [n.code for n in pathway(fracture, revised).notices]
    weight_loss = {**fracture, "red_flags": ["unexplained_weight_loss"]}
    assert "consider_myeloma" in [n.code for n in pathway(weight_loss).notices]
    assert "consider_myeloma" not in [n.code for n in pathway(weight_loss, revised).notices]
    assert {"myeloma_no_bone_scan", "myeloma_contrast"} <= {n.code for n in r.notices}  # the Kahler case, revised KB


# --- spine study when MRI or contrast is not possible (NICE NG234: CT, whole spine when MRI would be; CT myelography
# --- rarely, in a spinal centre; dual-energy CT around instrumentation, Cavallaro 2022) ------------------------------

KNOWN_CANCER_PAIN = {"cancer_history": "current", "spinal_pain": True, "neuro_deficits": [], "red_flags": []}
NO_NEURO_ACTIONS = ["contact-24h", "steroids-no-neuro", "analgesia"]  # NICE NG234 / CG75 without neurology
HISTOLOGY_UNKNOWN_NOTICES = [*METASTASIS_NOTICES, ("staging_histology", ["myeloma.no_bone_scan"])]
CT_MYELO = ["implant.ct_myelography_when_mri_impossible", "imaging.ct_myelography.role", "imaging.ct_myelography.nice_rarely"]
CT_WHOLE = ["implant.ct_myelography_when_mri_impossible"]
DUAL = ["imaging.ct.dual_energy_metal_artefact"]
# Claustrophobia with another MRI problem: the options that often make MRI possible are shown (Enders 2011), CT first.
CLAUSTRO = ("claustrophobia_options", ["mri.claustrophobia_not_a_bar"])


def metastasis(recs, **over):
    return expected(**{"scenario": "suspected_spinal_metastasis", "urgency": NO_NEURO_LIMITS, "actions": NO_NEURO_ACTIONS,
                       "notices": HISTOLOGY_UNKNOWN_NOTICES, "recs": recs, **over})


def test_decision_mri_not_possible_whole_spine_ct_with_contrast_then_ct_myelography():
    r = pathway({**KNOWN_CANCER_PAIN, "mri_contraindications": ["reason_not_given"]})
    assert decision(r) == metastasis([(1, "first_line", "ct-whole-spine-with", None, CT_WHOLE, "urgent"),
                                      (2, "alternative", "ct-myelography", "may_be_appropriate", CT_MYELO, None)],
                                     notices=HISTOLOGY_UNKNOWN_NOTICES)
    cited_as_built(r)


# --- claustrophobia alone does not make MRI impossible (Enders 2011: an open scanner; Murphy 1997: sedation) ---------

CLAUSTRO_NOTES = [CLAUSTRO, ("claustrophobia_sedation", ["mri.sedation_for_anxiety"])]


def _notice_codes(r):
    return [n.code for n in r.notices]


def test_claustrophobia_keeps_whole_spine_mri_first_with_the_ways_through_and_whole_spine_ct_as_alternative():
    r = pathway({**KNOWN_CANCER_PAIN, "mri_contraindications": ["claustrophobia"]})
    recs = decision(r)["recs"]
    assert recs[0][1:3] == ("first_line", "mri-whole-spine-wwo")
    assert ("alternative", "ct-whole-spine-with") in [x[1:3] for x in recs]
    assert not any(x[2] == "ct-myelography" for x in recs)
    notices = decision(r)["notices"]
    i = notices.index(CLAUSTRO)
    assert notices[i:i + 2] == CLAUSTRO_NOTES
    assert "claustrophobia_no_delay" not in _notice_codes(r)  # no neurology: not the 24-hour emergency
    assert "open or short-bore scanner" in r.notices[i].message
    cited_as_built(r)


def test_claustrophobia_in_suspected_cord_compression_mri_now_within_the_limit_ct_if_it_cannot_be_arranged():
    r = pathway({"age": 60, "cancer_history": "current", "primary_site": "lung", "spinal_pain": True,
                 "neuro_deficits": ["motor_weakness"], "mri_contraindications": ["claustrophobia"]})
    d = decision(r)
    assert d["recs"][0][1:3] == ("first_line", "mri-whole-spine-mscc")
    assert ("alternative", "ct-whole-spine-with") in [x[1:3] for x in d["recs"]]
    assert "mri-now" in d["actions"] and "ct-now" not in d["actions"]
    i = _notice_codes(r).index("claustrophobia_options")
    assert _notice_codes(r)[i:i + 3] == ["claustrophobia_options", "claustrophobia_sedation", "claustrophobia_no_delay"]
    assert "24 hours" in r.notices[i + 2].message
    cited_as_built(r)


def test_claustrophobia_in_pregnancy_with_cancer_and_back_pain_is_unenhanced_mri_not_ct():
    # Regression: claustrophobia once counted as 'MRI impossible', and a pregnant patient was sent to CT first.
    r = pathway({**KNOWN_CANCER_PAIN, "age": 32, "pregnant": True, "primary_site": "breast",
                 "mri_contraindications": ["claustrophobia"]})
    first = r.first_line
    assert first.study.modality == "mri" and first.study.contrast == "without"
    assert "MRI not possible" not in r.summary
    assert "claustrophobia_options" in _notice_codes(r)


def test_claustrophobia_in_a_child_with_compression_mri_first_whole_spine_ct_beside_it_no_adult_sedation_figures():
    r = pathway({"age": 10, "suspected_cord_compression": True, "cancer_history": "current",
                 "mri_contraindications": ["claustrophobia"]})
    assert r.first_line.study.id == "mri-complete-spine-wwo-child"
    assert ("alternative", "ct-whole-spine-with") in [x[1:3] for x in decision(r)["recs"]]  # if MRI cannot be done
    codes = _notice_codes(r)
    assert "claustrophobia_options" in codes
    assert "claustrophobia_sedation" not in codes and "claustrophobia_no_delay" not in codes


def test_claustrophobia_without_cancer_in_cauda_equina_keeps_its_own_4_hours_not_the_cancer_24():
    r = pathway({"age": 45, "cancer_history": "none", "spinal_pain": True, "suspected_cauda_equina": True,
                 "neuro_deficits": ["sphincter"], "mri_contraindications": ["claustrophobia"]})
    assert r.first_line.study.modality == "mri" and r.urgency.level == "emergency"
    assert "claustrophobia_no_delay" not in _notice_codes(r)  # its NICE 24 hours is for compression by cancer
    assert any(x[2].startswith("ct-") for x in decision(r)["recs"])


def test_claustrophobia_after_sbrt_response_assessment_keeps_a_ct_alternative():
    r = pathway({**CURRENT, "known_lesion_purpose": "response_assessment", "treatment_given": "sbrt",
                 "months_since_treatment": 3, "mri_contraindications": ["claustrophobia"]})
    assert r.first_line.study.modality == "mri"
    assert any(x[1] == "alternative" and x[2].startswith("ct-") for x in decision(r)["recs"])


def test_claustrophobia_without_any_mri_in_the_answer_adds_no_note():
    # no imaging indicated: nothing to get through
    r = pathway({"age": 40, "cancer_history": "none", "spinal_pain": True, "red_flags": [], "neuro_deficits": [],
                 "mri_contraindications": ["claustrophobia"]})
    assert r.imaging_indicated is False
    assert not any(c.startswith("claustrophobia") for c in _notice_codes(r))


@settings(max_examples=300, deadline=None)
@given(scenario)
def test_claustrophobia_alone_never_changes_the_first_line_study(s):
    base = {**s, "mri_contraindications": []}
    before, after = pathway(base), pathway({**base, "mri_contraindications": ["claustrophobia"]})
    first = lambda r: [x.study.id if x.study else None for x in r.recommendations if x.role == "first_line"]
    assert first(after) == first(before)
    if any(x.study is not None and x.study.modality == "mri" for x in after.recommendations):
        assert "claustrophobia_options" in _notice_codes(after)


def test_decision_no_mri_and_no_contrast_is_unenhanced_whole_spine_ct():
    r = pathway({**KNOWN_CANCER_PAIN, "mri_contraindications": ["reason_not_given"],
                 "contrast_concerns": ["prior_gadolinium_reaction"]})
    assert decision(r) == metastasis([(1, "first_line", "ct-whole-spine-wo", None, CT_WHOLE, "urgent"),
                                      (2, "alternative", "ct-myelography", "may_be_appropriate", CT_MYELO, None)],
                                     notices=[*HISTOLOGY_UNKNOWN_NOTICES,
                                              ("contrast", ["contrast.caveat.safety_not_covered"])])


def test_decision_no_contrast_with_mri_possible_is_unenhanced_mri_and_unenhanced_ct():
    r = pathway({**KNOWN_CANCER_PAIN, "contrast_concerns": ["prior_gadolinium_reaction"]})
    assert decision(r) == metastasis(
        [(1, "first_line", "mri-whole-spine-wo", None, ["imaging.mri.nice_mscc_protocol"], "urgent"),
         (2, "alternative", "ct-region-wo", "may_be_appropriate", ["imaging.ct.when_mri_contraindicated",
                                                                 "imaging.ct.osseous_integrity"], None)],
        notices=[*HISTOLOGY_UNKNOWN_NOTICES, ("contrast", ["contrast.caveat.safety_not_covered"])])
    cited_as_built(r)


def test_decision_metal_artefact_alone_dual_energy_ct_first():
    r = pathway({**KNOWN_CANCER_PAIN, "mri_contraindications": ["metal_artefact"]})
    assert decision(r) == metastasis([(1, "first_line", "ct-dual-energy", None, DUAL, "urgent"),
                                      (2, "alternative", "ct-whole-spine-with", None, CT_WHOLE, None),
                                      (3, "alternative", "ct-myelography", "may_be_appropriate", CT_MYELO, None)])
    cited_as_built(r)


@pytest.mark.parametrize("extra", [{"implanted_device": "mr_unsafe"}, {"mri_contraindications": ["metal_artefact",
                                                                                                  "reason_not_given"]}])
def test_decision_metal_artefact_with_another_mri_problem_whole_spine_ct_first_dual_energy_second(extra):
    r = pathway({**KNOWN_CANCER_PAIN, "mri_contraindications": ["metal_artefact"], **extra})
    unsafe = "implanted_device" in extra
    assert decision(r) == metastasis(
        [(1, "first_line", "ct-whole-spine-with", None, CT_WHOLE, "urgent"),
         (2, "alternative", "ct-dual-energy", None, DUAL, None),
         (3, "alternative", "ct-myelography", "may_be_appropriate", CT_MYELO, None)],
        groups=["implant"] if unsafe else [],
        notices=HISTOLOGY_UNKNOWN_NOTICES + ([("implant_unsafe", CT_WHOLE)] if unsafe else []))


def test_decision_metal_artefact_and_claustrophobia_dual_energy_ct_first_as_for_metal_alone():
    # claustrophobia does not make MRI impossible, so it does not change the CT chosen for the artefact either
    r = pathway({**KNOWN_CANCER_PAIN, "mri_contraindications": ["metal_artefact", "claustrophobia"]})
    assert decision(r)["recs"] == decision(pathway({**KNOWN_CANCER_PAIN, "mri_contraindications": ["metal_artefact"]}))["recs"]
    assert "claustrophobia_options" not in _notice_codes(r)  # no MRI is offered: nothing to get through


# --- child or adolescent with back pain: ACR Back Pain-Child and the paediatric red flags (tables/paediatric_red_flags:
# --- age under 5, night pain, pain for more than 4 weeks, worsening pain, neurology, red flags, known cancer) --------

CHILD_NOTICE = ("adult_pathway", ["child.adult_pathway_not_applicable"])
CHILD_DIFFERENTIAL = ("child_differential", ["child.differential"])
CHILD_RED = ["child.acr_red_flags"]


def child(**over):
    return expected(**{"scenario": "paediatric_back_pain", "groups": ["child"], "urgency": None, **over})


def test_decision_child_at_the_flag_boundaries_age_5_and_4_weeks_of_pain_has_no_red_flag():
    # the flags are 'under 5 years' and 'more than 4 weeks': exactly 5 years and exactly 4 weeks are not flags
    r = pathway({**CHILD_ALL_STATED, "age": 5, "pain_duration_weeks": 4})
    assert (r.imaging_indicated, r.status, r.recommendations[0].role) == (False, "complete", "not_indicated")


def test_decision_child_under_5_radiographs_first_then_complete_spine_mri():
    # ACR Back Pain-Child variant 2: radiographs usually appropriate, MRI of the complete spine may be appropriate.
    r = pathway({**CHILD_ALL_STATED, "age": 4})
    assert decision(r) == child(
        recs=[(1, "first_line", "radiograph-area-child", "usually_appropriate", CHILD_RED, None),
              (2, "alternative", "mri-complete-spine-wwo-child", "may_be_appropriate", CHILD_RED, None),
              # the child's own unenhanced study: the adult whole-spine protocol is not cited for a child
              (3, "alternative", "mri-complete-spine-wo-child", "may_be_appropriate", CHILD_RED, None)],
        notices=[CHILD_NOTICE, ("child_red_flags", ["paediatric_red_flags.young-age"]), CHILD_DIFFERENTIAL])
    assert r.notices[1].message == "Red flags present: Age under 5 years."
    assert r.summary == "Radiographs of the painful area of the spine"
    cited_as_built(r)


def test_decision_child_with_known_cancer_and_long_pain_complete_spine_mri_first():
    # child.known_cancer_back_pain (ACR Back Pain-Child; Sorrentino 2022): MRI of the complete spine, radiographs after.
    r = pathway({**CHILD_ALL_STATED, "pain_duration_weeks": 4.5, "cancer_history": "current"})
    assert decision(r) == child(
        recs=[(1, "first_line", "mri-complete-spine-wwo-child", "may_be_appropriate", ["child.known_cancer_back_pain"], None),
              (2, "alternative", "radiograph-area-child", "usually_appropriate", CHILD_RED, None)],
        notices=[CHILD_NOTICE, ("child_red_flags", ["paediatric_red_flags.duration", "paediatric_red_flags.known-cancer"]),
                 CHILD_DIFFERENTIAL])
    assert r.notices[1].message == "Red flags present: Pain for more than 4 weeks; Known cancer."
    cited_as_built(r)


def test_decision_child_with_known_cancer_without_mri_or_contrast():
    base = {**CHILD_ALL_STATED, "cancer_history": "current"}
    r = pathway({**base, "mri_contraindications": ["reason_not_given"]})
    assert decision(r)["recs"] == [(1, "first_line", "ct-whole-spine-with", None, CT_WHOLE, None),
                                   (2, "alternative", "radiograph-area-child", "usually_appropriate", CHILD_RED, None)]
    r = pathway({**base, "mri_contraindications": ["reason_not_given"], "contrast_concerns": ["prior_gadolinium_reaction"]})
    assert decision(r)["recs"][0] == (1, "first_line", "ct-whole-spine-wo", None, CT_WHOLE, None)
    r = pathway({**base, "contrast_concerns": ["prior_gadolinium_reaction"]})
    assert decision(r)["recs"] == [
        (1, "first_line", "mri-complete-spine-wo-child", "may_be_appropriate", ["child.known_cancer_back_pain"], None),
        (2, "alternative", "radiograph-area-child", "usually_appropriate", CHILD_RED, None)]


def test_decision_child_with_suspected_infection_and_no_mri_radiographs_then_ct():
    r = pathway({**CHILD_ALL_STATED, "red_flags": ["suspected_infection"], "mri_contraindications": ["reason_not_given"]})
    assert decision(r) == child(
        recs=[(1, "first_line", "radiograph-area-child", "usually_appropriate", CHILD_RED, None),
              (2, "alternative", "ct-region-wo", None, ["imaging.ct.when_mri_contraindicated",
                                                        "imaging.ct.osseous_integrity"], None)],
        notices=[CHILD_NOTICE, ("child_red_flags", ["paediatric_red_flags.infection"]), CHILD_DIFFERENTIAL])


def test_decision_pregnant_adolescent_with_worsening_pain_unenhanced_mri_only():
    r = pathway({**CHILD_ALL_STATED, "age": 16, "pain_progressive": True, "pregnant": True})
    assert decision(r) == child(
        groups=["child", "pregnancy"],
        recs=[(1, "first_line", "radiograph-area-child", "usually_appropriate",
               ["pregnancy.ionising_trade_off", *CHILD_RED], None),
              (2, "alternative", "mri-complete-spine-wo-child", "may_be_appropriate", CHILD_RED, None)],
        notices=[CHILD_NOTICE, ("child_red_flags", ["paediatric_red_flags.progressive"]), CHILD_DIFFERENTIAL,
                 ("pregnancy_mri", ["pregnancy.mri_preferred"]),
                 ("pregnancy_gadolinium", ["pregnancy.gadolinium_only_if_essential"])])
    cited_as_built(r)


def test_decision_child_with_flags_not_stated_names_each_input():
    r = pathway({"age": 12, "spinal_pain": True})
    assert decision(r) == child(
        indicated=None, status="insufficient_data",
        missing=["pathway.night_pain", "pathway.pain_duration_weeks", "pathway.pain_progressive",
                 "pathway.neuro_deficits", "pathway.red_flags", "pathway.cancer_history"],
        notices=[CHILD_NOTICE, ("child_flags_unknown", ["child.red_flags"])])
    assert r.notices[1].message == (
        "Not stated, and any of them would call for imaging: Night pain; Pain for more than 4 weeks; Worsening pain; "
        "Neurological symptoms or signs, or bladder or bowel dysfunction; Fever or suspected infection; Weight loss or "
        "malaise; Suspected tumour (mass, lymphadenopathy, bruising); Localised spinal tenderness; Known cancer.")
    r = pathway({"age": 12, "spinal_pain": True, "night_pain": False, "pain_progressive": False, "red_flags": [],
                 "neuro_deficits": []})
    assert r.missing == ["pathway.pain_duration_weeks", "pathway.cancer_history"]
    assert r.notices[1].message == "Not stated, and any of them would call for imaging: Pain for more than 4 weeks; Known cancer."


def test_decision_child_with_pain_not_stated():
    r = pathway({"age": 12, "cancer_history": "none"})
    assert decision(r) == child(indicated=None, status="insufficient_data", missing=["pathway.spinal_pain"],
                                notices=[CHILD_NOTICE])


# --- suspected cord or cauda equina compression (NICE NG234 / QS56, Dutch guideline; ACR Myelopathy 2021) ----------

MSCC_ACTIONS = ["contact-now", "steroids-neuro", "position", "analgesia", "mri-now", "treatment"]
MSCC_LIMITS = ("emergency", [(12, "Dutch national guideline"), (24, "NICE")])
MSCC_SPINE = [
    (1, "first_line", "mri-whole-spine-mscc", "usually_appropriate", ["imaging.mri.nice_mscc_protocol",
                                                                     "contrast.caveat.nice_protocol_unenhanced",
                                                                     "imaging.mri.whole_spine_high_suspicion"], "emergency"),
    (2, "alternative", "mri-region-wwo", None, MRI_REGION, None),
    (3, "alternative", "mri-region-wo", None, ["contrast.caveat.not_always_needed", "imaging.mri.noncontrast_low_epidural_risk",
                                               "imaging.acr.lbp_v7_usually_appropriate"], None),
    (4, "alternative", "ct-region-with", "may_be_appropriate", ["imaging.ct.when_mri_contraindicated"], None)]


def mscc(**over):
    return expected(**{"scenario": "suspected_mscc", "urgency": MSCC_LIMITS, "actions": MSCC_ACTIONS,
                       "notices": METASTASIS_NOTICES, "recs": MSCC_SPINE, **over})


def test_decision_lung_cancer_with_weakness_and_sphincter_disturbance():
    # NG234: contact, dexamethasone 16 mg, flat if unstable, analgesia, MRI, definitive treatment; NG122: lung staging.
    r = pathway({"age": 70, "cancer_history": "current", "primary_site": "lung", "spinal_pain": True,
                 "neuro_deficits": ["motor_weakness", "sphincter"]})
    assert decision(r) == mscc(recs=[*MSCC_SPINE, (5, "staging", "ct-chest-lung", None, ["staging.lung.nice"], None),
                                     (6, "staging", "fdg-pet-ct-staging", None, ["staging.lung.nice"], None)])
    cited_as_built(r)


def test_decision_compression_without_cancer_is_a_spinal_emergency_without_the_cancer_steroid_regimen():
    r = pathway({"age": 50, "cancer_history": "none", "spinal_pain": True, "neuro_deficits": ["gait"], "red_flags": []})
    # NICE and the Dutch guideline time limits are for compression by cancer: an emergency without them.
    assert decision(r) == mscc(actions=["contact-spinal", "steroids-no-cancer", "analgesia"], urgency=("emergency", []),
                               notices=[("cancer_limits_not_applied", ["timing.no_cancer_compression_no_cancer_limits"]),
                                        ("radiographs", ["imaging.radiograph.cannot_exclude"])])
    cited_as_built(r)


def test_decision_cauda_equina_without_cancer_lumbar_mri_within_4_hours():
    # England's national standard (RCR / GIRFT, as measured by Stoddart et al.): MRI within 4 hours of the request;
    # ACR Low Back Pain variant 4: lumbar MRI without (or without and with) contrast usually appropriate.
    r = pathway({"age": 40, "cancer_history": "none", "spinal_pain": True, "neuro_deficits": ["sphincter"],
                 "suspected_cauda_equina": True, "red_flags": []})
    assert decision(r) == mscc(
        actions=["contact-spinal", "steroids-no-cancer", "analgesia"],
        urgency=("emergency", [(4, "England national standard (RCR and GIRFT)")]),
        notices=[("cancer_limits_not_applied", ["timing.no_cancer_compression_no_cancer_limits"]),
                 ("radiographs", ["imaging.radiograph.cannot_exclude"])],
        recs=[(1, "first_line", "mri-region-wo", "usually_appropriate",
               ["imaging.acr.lbp_v4_cauda_equina", "timing.ces.no_cancer_4_hours"], "emergency"),
              (2, "alternative", "mri-region-wwo", "usually_appropriate",
               ["imaging.acr.lbp_v4_cauda_equina", "timing.ces.no_cancer_4_hours"], None),
              (3, "alternative", "ct-region-with", None, ["imaging.ct.when_mri_contraindicated"], None)])
    assert r.summary.startswith("Suspected cauda equina compression, emergency.")
    cited_as_built(r)


def test_decision_compression_with_cancer_history_unknown_and_no_mri_names_it():
    r = pathway({"age": 60, "spinal_pain": True, "neuro_deficits": ["sensory_level"], "mri_contraindications": ["reason_not_given"]})
    assert decision(r) == mscc(
        status="insufficient_data", missing=["pathway.cancer_history"],
        actions=["contact-now", "steroids-neuro", "position", "analgesia", "ct-now", "treatment"],
        recs=[(1, "first_line", "ct-whole-spine-with", None, CT_WHOLE, "emergency"),
              (2, "alternative", "ct-myelography", "may_be_appropriate", CT_MYELO, None)],
        notices=METASTASIS_NOTICES)
    cited_as_built(r)


@pytest.mark.parametrize("extra,steroids", [({"neuro_deficits": ["gait"]}, "steroids-haematological"),
                                            ({"neuro_deficits": [], "suspected_cord_compression": True},
                                             "steroids-haematological-if-confirmed")])
def test_decision_compression_in_lymphoma_involves_haematology(extra, steroids):
    # NG234: dexamethasone in haematological malignancy, agreed with the haematology team; Lugano FDG-PET/CT staging.
    r = pathway({"age": 55, "cancer_history": "current", "primary_site": "diffuse large B-cell lymphoma", "spinal_pain": True, **extra})
    assert decision(r) == mscc(actions=["contact-now", steroids, "position", "analgesia", "mri-now", "treatment"],
                               recs=[*MSCC_SPINE, (5, "staging", "fdg-pet-ct-staging", None, ["staging.lymphoma.lugano"], None)])


def test_decision_suspected_compression_without_deficit_or_histology_may_hold_steroids_until_biopsy():
    r = pathway({"age": 66, "cancer_history": "none", "unknown_primary": True, "spinal_pain": True, "neuro_deficits": [],
                 "suspected_cord_compression": True, "primary_bone_tumour_possible": False})
    assert decision(r) == mscc(
        groups=["unknown_primary"],
        actions=["contact-now", "steroids-unproven", "steroids-no-neuro", "position", "analgesia", "mri-now", "treatment"],
        recs=[*MSCC_SPINE, (5, "additional", "ct-full-body", None, ["imaging.unknown_primary.body_ct"], "emergency"),
              (6, "additional", "ct-guided-biopsy", None, ["unknown_primary.biopsy_yield", "imaging.unknown_primary.histology",
                                                           "imaging.unknown_primary.ct_guided_biopsy"], "emergency")],
        workup=[INITIAL_WORKUP])
    cited_as_built(r)


def test_decision_suspected_compression_without_deficit_in_known_solid_cancer_no_routine_steroids():
    r = pathway({"age": 58, "cancer_history": "current", "spinal_pain": True, "neuro_deficits": [], "suspected_cord_compression": True})
    assert decision(r) == mscc(actions=["contact-now", "steroids-no-neuro", "position", "analgesia", "mri-now", "treatment"],
                               notices=HISTOLOGY_UNKNOWN_NOTICES)
    assert r.notices[2].message == ("Staging depends on the primary tumour, which is not stated: the studies differ by "
                                    "histology (for example PSMA PET/CT in prostate cancer, no bone scan in myeloma).")


def test_no_routine_steroids_holds_for_cancer_without_neurology_while_the_pain_is_not_stated():
    # Whatever the missing pain decides about imaging, a patient with cancer and no neurological symptoms or signs
    # gets no routine steroids: the step is given, and the summary says it holds either way.
    r = pathway({"age": 54, "cancer_history": "current", "primary_site": "lung", "neuro_deficits": []})
    assert r.status == "insufficient_data" and "pathway.spinal_pain" in r.missing
    assert [(a.step, a.label[:40]) for a in r.actions] == [("steroids", "No routine steroids without neurological")]
    assert r.summary.endswith("holds either way: no routine steroids without neurological symptoms or signs "
                              "(consider them only for severe pain or a haematological malignancy).")
    assert not r.recommendations
    # with neurology not stated, nothing is said about steroids
    assert pathway({"age": 54, "cancer_history": "current"}).actions == []
    # not in a haematological cancer (steroids follow a confirmed spinal involvement, which needs the imaging the
    # missing inputs decide), nor with brain symptoms (second review)
    for extra in ({"primary_site": "lymphoma"}, {"primary_site": "myeloma", "spinal_pain": False, "red_flags": []},
                  {"brain_symptoms": True}):
        r = pathway({"age": 54, "cancer_history": "current", "neuro_deficits": [], **extra})
        assert not [a for a in r.actions if a.step == "steroids"], extra
    # the other groups it could be wrong for: a child gets no adult step (the paediatric team decides), no cancer gets
    # no cancer step, and pregnancy changes nothing about steroids without neurology
    base = {"cancer_history": "current", "primary_site": "lung", "neuro_deficits": []}
    assert pathway({**base, "age": 10}).actions == []
    assert pathway({**base, "age": 54, "cancer_history": "none"}).actions == []
    assert [a.step for a in pathway({**base, "age": 30, "pregnant": True}).actions] == ["steroids"]


PROSTATE_STAGING = [("staging", "psma-pet-ct", ["staging.prostate.psma"]),
                    ("staging_alternative", "bone-scan", ["staging.prostate.conventional_first"]),
                    ("staging_alternative", "ct-cap-with", ["staging.prostate.conventional_first"])]


def staged(first_rank, rows=PROSTATE_STAGING):
    return [(first_rank + i, role, study, None, stmts, None) for i, (role, study, stmts) in enumerate(rows)]


def test_decision_lumbar_cauda_equina_rated_by_acr_low_back_pain_variant_4():
    # ACR Low Back Pain 2021 variant 4 (suspected cauda equina): MRI with or without contrast usually appropriate;
    # the whole-spine MSCC study has no rating in that variant.  Prostate: PSMA PET/CT (proPSMA), conventional second.
    r = pathway({**BASE, "suspected_cauda_equina": True})
    spine = [(1, "first_line", "mri-whole-spine-mscc", None, MSCC_SPINE[0][4], "emergency"),
             (2, "alternative", "mri-region-wwo", "usually_appropriate", MRI_REGION, None),
             (3, "alternative", "mri-region-wo", "usually_appropriate", MSCC_SPINE[2][4], None),
             (4, "alternative", "ct-region-with", None, ["imaging.ct.when_mri_contraindicated"], None)]
    assert decision(r) == mscc(actions=["contact-now", "steroids-no-neuro", "position", "analgesia", "mri-now", "treatment"],
                               recs=[*spine, *staged(5)])
    assert [x.acr_variant for x in r.recommendations[1:3]] == ["ACR Low Back Pain 2021, variant 4 (suspected cauda equina "
                                                               "syndrome)"] * 2
    cited_as_built(r)


def test_decision_thoracic_cauda_equina_gets_no_lumbar_rating():
    r = pathway({**BASE, "suspected_cauda_equina": True, "pain_region": "thoracic"})
    assert [x.appropriateness for x in r.recommendations] == [None] * 7
    assert [x.acr_variant for x in r.recommendations] == [None] * 7


@pytest.mark.parametrize("region", ["cervical", "thoracic"])
def test_decision_neck_or_chest_pain_in_cancer_gets_no_lumbar_rating(region):
    r = pathway({**BASE, "pain_region": region})
    assert [x.appropriateness for x in r.recommendations] == [None] * 7


def test_decision_one_sided_radicular_deficit_dutch_24_and_48_hours():
    r = pathway({"age": 63, "cancer_history": "current", "spinal_pain": True, "neuro_deficits": ["radicular"]})
    assert decision(r) == mscc(urgency=("emergency", [(24, "NICE"), (24, "Dutch national guideline"),
                                                      (48, "Dutch national guideline")]),
                               notices=HISTOLOGY_UNKNOWN_NOTICES)
    assert [w.level for w in r.urgency.windows] == ["emergency", "emergency", "urgent"]


@pytest.mark.parametrize("extra", [{"neuro_deficits": ["radicular", "gait"]}, {"neuro_deficits": ["radicular"],
                                                                              "suspected_cord_compression": True},
                                   {"neuro_deficits": ["radicular"], "suspected_cauda_equina": True}])
def test_decision_radicular_deficit_with_more_is_12_hours(extra):
    r = pathway({"cancer_history": "current", "spinal_pain": True, **extra})
    assert decision(r)["urgency"] == MSCC_LIMITS


# --- spinal pain with suspected metastasis (ACR Low Back Pain 2021 variant 7; NICE CG75 / NG234; NICE NG12) ---------

LBP7_SPINE = [(1, "first_line", "mri-region-wwo", "usually_appropriate", MRI_REGION, None),
              (2, "alternative", "mri-region-wo", "usually_appropriate", MSCC_SPINE[2][4], None),
              (3, "alternative", "ct-region-with", "may_be_appropriate", ["imaging.ct.when_mri_contraindicated"], None)]
NO_CANCER_FLAGS = ("no_cancer_flags", ["fracture.nocancer_weaker_flags_acp"])
CONSIDER_MYELOMA = ("consider_myeloma", ["fracture.consider_myeloma"])
RADIOGRAPHS = ("radiographs", ["imaging.radiograph.cannot_exclude"])


def test_decision_no_cancer_weight_loss_at_60_regional_mri_and_myeloma_screen():
    # ACP (Chou 2011): weaker flags without cancer; NICE NG12: myeloma screen from 60 years with bone pain.
    r = pathway({"age": 60, "cancer_history": "none", "spinal_pain": True, "pain_region": "lumbar",
                 "red_flags": ["unexplained_weight_loss"], "neuro_deficits": []})
    assert decision(r) == expected(scenario="suspected_spinal_metastasis", urgency=None, recs=LBP7_SPINE,
                                   notices=[NO_CANCER_FLAGS, CONSIDER_MYELOMA, RADIOGRAPHS])
    cited_as_built(r)


def test_decision_no_cancer_weight_loss_at_59_without_neurology_stated():
    r = pathway({"age": 59, "cancer_history": "none", "spinal_pain": True, "pain_region": "lumbar",
                 "red_flags": ["unexplained_weight_loss"]})
    assert decision(r) == expected(scenario="suspected_spinal_metastasis", urgency=None, recs=LBP7_SPINE,
                                   status="insufficient_data", missing=["pathway.neuro_deficits"],
                                   notices=[NO_CANCER_FLAGS, RADIOGRAPHS])


def test_decision_known_cancer_neurology_not_stated_gives_each_limit():
    r = pathway({k: v for k, v in BASE.items() if k != "neuro_deficits"})
    spine = [(1, "first_line", "mri-whole-spine-wwo", None, ["imaging.mri.whole_spine_high_suspicion", *MRI_REGION],
              "depends_on_neurology"),
             (2, "alternative", "mri-region-wwo", "usually_appropriate", MRI_REGION, None),
             (3, "alternative", "mri-region-wo", "usually_appropriate", MSCC_SPINE[2][4], None),
             (4, "alternative", "ct-region-with", "may_be_appropriate", ["imaging.ct.when_mri_contraindicated"], None)]
    assert decision(r) == expected(
        scenario="suspected_spinal_metastasis", status="insufficient_data", missing=["pathway.neuro_deficits"],
        urgency=("depends_on_neurology", [(12, "Dutch national guideline"), (24, "NICE"), (168, "NICE"),
                                          (336, "Dutch national guideline")]),
        recs=[*spine, *staged(5)],
        notices=[("neurology_decides", ["redflags.nice.neurology_immediate"]), *METASTASIS_NOTICES])
    cited_as_built(r)


def test_decision_myeloma_without_neurology():
    # NG234: steroids in haematological malignancy once MRI confirms involvement; IMWG: low-dose CT, no bone scan;
    # iodinated contrast in myeloma has its own caveat.
    r = pathway({"cancer_history": "current", "primary_site": "myeloma", "spinal_pain": True, "neuro_deficits": []})
    spine = [(1, "first_line", "mri-whole-spine-wwo", None, ["imaging.mri.whole_spine_high_suspicion", *MRI_REGION], "urgent"),
             (2, "alternative", "mri-region-wwo", "usually_appropriate", MRI_REGION, None),
             (3, "alternative", "mri-region-wo", "usually_appropriate", MSCC_SPINE[2][4], None),
             (4, "alternative", "ct-region-with", "may_be_appropriate", ["imaging.ct.when_mri_contraindicated"], None)]
    myeloma_rows = [("staging", "wbldct", ["myeloma.imwg_wbldct_first"]),
                    ("staging", "wb-mri-myeloma", ["myeloma.nice_wbmri_first"]),
                    ("staging_alternative", "fdg-pet-ct-myeloma", ["myeloma.pet_for_response",
                                                                   "myeloma.plasmacytoma_whole_body"]),
                    ("avoid", "bone-scan", ["myeloma.no_bone_scan"])]
    assert decision(r) == expected(
        scenario="suspected_spinal_metastasis", groups=["myeloma"], urgency=NO_NEURO_LIMITS,
        actions=["contact-24h", "steroids-haematological-if-confirmed", "analgesia"],
        recs=[*spine, *staged(5, myeloma_rows)],
        notices=[*METASTASIS_NOTICES, ("myeloma_no_bone_scan", ["myeloma.no_bone_scan"]),
                 ("myeloma_contrast", ["myeloma.iodinated_contrast"])])
    cited_as_built(r)


@pytest.mark.parametrize("extra,missing", [({"neuro_deficits": [], "months_since_treatment": 2}, []),
                                           ({"neuro_deficits": ["gait"]}, ["pathway.months_since_treatment"])])
def test_decision_new_pain_after_sbrt_warns_of_pseudoprogression_and_fracture(extra, missing):
    r = pathway({"age": 61, "cancer_history": "current", "spinal_pain": True, "treatment_given": "sbrt", **extra})
    d = decision(r)
    assert (d["groups"], d["missing"]) == (["after_treatment"], missing)
    assert d["notices"] == [*HISTOLOGY_UNKNOWN_NOTICES, *SBRT_NOTICES]


def test_decision_a_negative_radiograph_is_not_enough_said_once():
    negative = {"modality": "radiograph", "result": "negative"}
    r = pathway({**BASE, "prior_imaging": [negative, negative]})
    assert [n.code for n in r.notices].count("radiograph_not_enough") == 1
    r = pathway({**BASE, "prior_imaging": [{"modality": "radiograph", "result": "positive"},
                                           {"modality": "ct", "result": "negative"}]})
    assert "radiograph_not_enough" not in [n.code for n in r.notices]
    r = pathway({**CHILD_ALL_STATED, "age": 4, "prior_imaging": [negative]})
    assert "radiograph_not_enough" not in [n.code for n in r.notices]


# --- no known cancer and only fracture risk factors (ACR Low Back Pain variant 6; ACR VCF 2018 variant 1; NICE NG12) --

FRACTURE_NOTICE = ("not_metastasis_pathway", ["fracture.metastasis_workup_when_flags"])
LBP6 = ["fracture.acr_lbp_variant6"]
VCF = ["fracture.acr_vcf_no_cancer"]


def fracture(**over):
    return expected(**{"scenario": "suspected_osteoporotic_fracture", "groups": ["osteoporotic_fracture"],
                       "urgency": None, **over})


def test_decision_lumbar_pain_on_steroids_after_a_fall_radiographs_first():
    r = pathway({"age": 78, "cancer_history": "none", "spinal_pain": True, "pain_region": "lumbar",
                 "red_flags": ["chronic_steroid_use", "low_velocity_trauma"], "neuro_deficits": []})
    assert decision(r) == fracture(
        recs=[(1, "first_line", "radiograph", "usually_appropriate", LBP6, None),
              (2, "alternative", "mri-region-wo", "usually_appropriate", LBP6, None),
              (3, "alternative", "ct-region-wo", "usually_appropriate", LBP6, None)],
        notices=[FRACTURE_NOTICE, CONSIDER_MYELOMA])
    cited_as_built(r)


def test_decision_thoracic_pain_with_osteoporosis_under_60_no_lumbar_rating_and_no_myeloma_screen():
    r = pathway({"age": 55, "cancer_history": "none", "spinal_pain": True, "pain_region": "thoracic",
                 "red_flags": ["osteoporosis"]})
    assert decision(r) == fracture(
        status="insufficient_data", missing=["pathway.neuro_deficits"],
        recs=[(1, "first_line", "radiograph", None, VCF, None), (2, "alternative", "mri-region-wo", None, VCF, None),
              (3, "alternative", "ct-region-wo", None, VCF, None)],
        notices=[FRACTURE_NOTICE])


def test_decision_fracture_seen_on_a_radiograph_unenhanced_mri_then_ct():
    r = pathway({"age": 70, "cancer_history": "none", "spinal_pain": True, "red_flags": ["osteoporosis"],
                 "neuro_deficits": [], "prior_imaging": [{"modality": "radiograph", "result": "positive"}]})
    assert decision(r) == fracture(
        recs=[(1, "first_line", "mri-region-wo", "usually_appropriate", VCF, None),
              (2, "alternative", "ct-region-wo", "usually_appropriate", VCF, None)],
        notices=[FRACTURE_NOTICE, CONSIDER_MYELOMA])
    assert "Vertebral Compression Fractures 2018, variant 1" in r.first_line.acr_variant
    cited_as_built(r)


def test_decision_fracture_risk_without_mri_radiographs_then_ct():
    # a pain-pattern flag (night pain) does not decide between the pathways
    r = pathway({"age": 70, "cancer_history": "none", "spinal_pain": True, "red_flags": ["osteoporosis", "nocturnal_pain"],
                 "neuro_deficits": [], "mri_contraindications": ["reason_not_given"]})
    assert decision(r) == fracture(
        recs=[(1, "first_line", "radiograph", "usually_appropriate", LBP6, None),
              (2, "alternative", "ct-region-wo", "usually_appropriate", LBP6, None)],
        notices=[FRACTURE_NOTICE, CONSIDER_MYELOMA])


@pytest.mark.parametrize("flag, scenario", [("unexplained_weight_loss", "suspected_spinal_metastasis"),
                                            ("suspected_infection", "suspected_spinal_infection")])
def test_decision_a_malignancy_or_infection_flag_keeps_the_mri_work_up(flag, scenario):
    r = pathway({"age": 70, "cancer_history": "none", "spinal_pain": True, "red_flags": ["osteoporosis", flag],
                 "neuro_deficits": []})
    assert r.scenario == scenario and r.first_line.study.id == "mri-region-wwo"


@pytest.mark.parametrize("flags", [["suspected_infection"], ["immunosuppression"], ["suspected_infection", "nocturnal_pain"]])
def test_infection_flags_without_cancer_are_an_infection_question_not_the_cancer_ladder(flags):
    # ACR Suspected Spine Infection 2021 variant 1 and ACR Low Back Pain variant 7: MRI; the ACP/APS ladder for
    # weaker cancer risk factors and the myeloma screen do not answer an infection question.
    r = pathway({"age": 70, "cancer_history": "none", "spinal_pain": True, "red_flags": flags, "neuro_deficits": []})
    assert r.scenario == "suspected_spinal_infection" and r.first_line.study.id == "mri-region-wwo"
    assert r.first_line.statements == ["imaging.acr.spine_infection"]
    assert r.components[0].value == "spinal pain with suspected infection, no known cancer"
    assert not {"no_cancer_flags", "consider_myeloma"} & {n.code for n in r.notices}
    with_weight_loss = pathway({"age": 70, "cancer_history": "none", "spinal_pain": True, "neuro_deficits": [],
                                "red_flags": [*flags, "unexplained_weight_loss"]})
    assert with_weight_loss.scenario == "suspected_spinal_metastasis"  # a malignancy flag keeps the cancer work-up


def test_decision_fracture_risk_with_cancer_history_unknown_is_undetermined():
    r = pathway({"age": 70, "spinal_pain": True, "red_flags": ["osteoporosis"], "neuro_deficits": []})
    assert decision(r) == expected(scenario="undetermined", indicated=None, urgency=None, status="insufficient_data",
                                   missing=["pathway.cancer_history"],
                                   notices=[("cancer_history_decides", ["fracture.metastasis_workup_when_flags"])])
    assert r.notices[0].message == (
        "With only fracture risk factors, a patient without cancer follows the osteoporotic-fracture criteria and a "
        "patient with cancer the metastasis pathway: the cancer history decides.")
    assert r.summary == "insufficient data: missing the cancer history"


# --- surveillance without symptoms (ASCO 2013 for breast cancer only), low back pain without red flags, undetermined --

SURVEILLANCE = {"cancer_history": "previous", "asymptomatic_surveillance": True, "spinal_pain": False, "neuro_deficits": []}


def test_decision_asymptomatic_breast_survivor_intent_not_stated_names_it():
    r = pathway({**SURVEILLANCE, "primary_site": "breast"})
    assert decision(r) == expected(scenario="asymptomatic_surveillance", indicated=None, urgency=("none", []),
                                   status="insufficient_data", missing=["pathway.treatment_intent"])


@pytest.mark.parametrize("extra", [{"primary_site": "breast", "treatment_intent": "palliative"},
                                   {"primary_site": "colon", "treatment_intent": "curative"}])
def test_decision_asymptomatic_surveillance_outside_the_asco_rule_has_no_recommendation(extra):
    r = pathway({**SURVEILLANCE, **extra})
    assert decision(r) == expected(scenario="asymptomatic_surveillance", indicated=None, urgency=("none", []),
                                   notices=[("no_recommendation", ["breast.surveillance.no_routine_imaging"])])
    assert r.notices[0].message == (
        "The knowledge base holds a surveillance recommendation only for breast cancer treated with curative intent "
        "(ASCO); for this scenario it has none. Follow the oncology team's protocol.")


def test_decision_asymptomatic_surveillance_with_pain_and_neurology_not_stated_names_both():
    r = pathway({"cancer_history": "previous", "primary_site": "colon", "treatment_intent": "curative",
                 "asymptomatic_surveillance": True})
    assert (r.status, r.missing) == ("insufficient_data", ["pathway.spinal_pain", "pathway.neuro_deficits"])
    r = pathway({**SURVEILLANCE, "primary_site": "breast", "treatment_intent": "curative", "neuro_deficits": None})
    assert (r.status, r.missing, r.imaging_indicated) == ("insufficient_data", ["pathway.neuro_deficits"], False)


def test_decision_low_back_pain_without_red_flags_no_imaging_and_no_contrast_or_radiograph_notices():
    r = pathway({"age": 45, "cancer_history": "none", "spinal_pain": True, "pain_region": "lumbar", "red_flags": [],
                 "neuro_deficits": [], "prior_imaging": [{"modality": "radiograph", "result": "negative"}],
                 "contrast_concerns": ["prior_gadolinium_reaction"]})
    assert decision(r) == expected(scenario="low_back_pain_without_red_flags", indicated=False, urgency=("none", []),
                                   recs=[(1, "not_indicated", None, None, ["imaging.acr.lbp_no_red_flags"], None)])
    assert r.summary == "imaging not indicated"
    cited_as_built(r)


def test_decision_no_pain_and_no_lesion_purpose_is_undetermined():
    r = pathway({"cancer_history": "none", "spinal_pain": False, "red_flags": [], "neuro_deficits": []})
    assert decision(r) == expected(scenario="undetermined", indicated=None, urgency=None, status="insufficient_data",
                                   missing=["pathway.spinal_pain or pathway.known_lesion_purpose"])


# --- child with neurological symptoms or signs: emergency, paediatric teams, no adult time limits -----------------

def paed_neuro(**over):
    return expected(**{"scenario": "paediatric_neurological", "groups": ["child"], "urgency": ("emergency", []),
                       "actions": ["contact-child", "analgesia"], "notices": [CHILD_DIFFERENTIAL], **over})


def test_decision_child_with_gait_disturbance_complete_spine_mri_at_once():
    # neuroblastoma with canal invasion: recovery far more frequent when symptoms lasted 4 weeks or less
    r = pathway({"age": 8, "spinal_pain": True, "neuro_deficits": ["gait"]})
    assert decision(r) == paed_neuro(recs=[(1, "first_line", "mri-complete-spine-wwo-child", None,
                                            ["child.neuroblastoma_recovery"], "emergency")])
    assert r.summary.startswith("Suspected spinal cord compression, emergency. Now: Contact the paediatric spinal team")
    cited_as_built(r)


def test_decision_child_with_compression_and_no_contrast_unenhanced_whole_spine_mri():
    r = pathway({"age": 15, "suspected_cord_compression": True, "contrast_concerns": ["prior_gadolinium_reaction"]})
    assert decision(r) == paed_neuro(
        recs=[(1, "first_line", "mri-complete-spine-wo-child", None, ["child.neuroblastoma_recovery"], "emergency")],
        notices=[CHILD_DIFFERENTIAL, ("contrast", ["contrast.caveat.safety_not_covered"])])


@pytest.mark.parametrize("extra,ct", [({"implanted_device": "mr_unsafe"}, "ct-whole-spine-with"),
                                      ({"mri_contraindications": ["reason_not_given"],
                                        "contrast_concerns": ["prior_gadolinium_reaction"]}, "ct-whole-spine-wo")])
def test_decision_child_with_compression_and_no_mri_whole_spine_ct_then_ct_myelography(extra, ct):
    r = pathway({"age": 15, "suspected_cord_compression": True, "cancer_history": "current", "primary_site": "breast",
                 **extra})
    unsafe = "implanted_device" in extra
    assert decision(r) == paed_neuro(
        groups=["child", "implant"] if unsafe else ["child"],
        recs=[(1, "first_line", ct, None, CT_WHOLE, "emergency"), (2, "alternative", "ct-myelography", None, CT_WHOLE, None)],
        notices=[CHILD_DIFFERENTIAL, ("implant_unsafe", CT_WHOLE) if unsafe else ("contrast",
                                                                                   ["contrast.caveat.safety_not_covered"])])
    cited_as_built(r)


# --- modifiers: pregnancy (ACOG CO 723, ACR gadolinium in pregnancy, whole-body DWI staging), kidney function
# --- (ACR-NKF below 30 for gadolinium and iodinated contrast, KDIGO below 45 for iodinated), implants (ASTM F2503) ---

KNOWN_SPINE = [(1, "first_line", "mri-whole-spine-wwo", None, ["imaging.mri.whole_spine_high_suspicion", *MRI_REGION], "urgent"),
               (2, "alternative", "mri-region-wwo", "usually_appropriate", MRI_REGION, None),
               (3, "alternative", "mri-region-wo", "usually_appropriate", MSCC_SPINE[2][4], None),
               (4, "alternative", "ct-region-with", "may_be_appropriate", ["imaging.ct.when_mri_contraindicated"], None)]
PREGNANCY_NOTICES = [("pregnancy_mri", ["pregnancy.mri_preferred"]),
                     ("pregnancy_gadolinium", ["pregnancy.gadolinium_only_if_essential"])]
TRADE_OFF = "pregnancy.ionising_trade_off"
GBCA_30 = ("kidney_gadolinium", ["contrast_kidney.gbca-acr-nkf", "contrast.kidney.gbca_group2"])
IODINATED_30 = ("kidney_iodinated", ["contrast_kidney.iodinated-acr-nkf", "contrast.kidney.iodinated_high_risk"])
IODINATED_45 = ("kidney_iodinated", ["contrast_kidney.iodinated-kdigo", "contrast.kidney.thresholds_differ"])


def test_decision_pregnant_with_breast_cancer_unenhanced_mri_and_whole_body_dwi_leads_staging():
    r = pathway({"cancer_history": "current", "primary_site": "breast", "spinal_pain": True, "neuro_deficits": [],
                 "pregnant": True})
    breast = ["breast.back_pain.complete_staging"]
    assert decision(r) == metastasis(
        groups=["pregnancy"], notices=[*METASTASIS_NOTICES, *PREGNANCY_NOTICES],
        recs=[(1, "first_line", "mri-whole-spine-wo", None, ["imaging.mri.nice_mscc_protocol"], "urgent"),
              (2, "alternative", "ct-region-wo", "may_be_appropriate", [TRADE_OFF, "imaging.ct.when_mri_contraindicated",
                                                                      "imaging.ct.osseous_integrity"], None),
              (3, "staging", "wb-mri-dwi", None, ["pregnancy.whole_body_dwi_staging"], None),
              (4, "staging_alternative", "bone-scan", None, [TRADE_OFF, *breast], None),
              (5, "staging_alternative", "ct-cap-with", None, [TRADE_OFF, *breast], None)])
    cited_as_built(r)


def test_decision_pregnancy_as_a_contrast_concern_in_myeloma_keeps_the_bone_scan_last():
    # Myeloma has its own gadolinium-free whole-body MRI (NICE NG35): it leads the staging, no second whole-body MRI
    # is added, the ionising studies follow with the pregnancy trade-off, and the avoided bone scan carries no trade-off
    # (it is advised against in myeloma whatever the pregnancy).
    r = pathway({"cancer_history": "current", "primary_site": "myeloma", "spinal_pain": True, "neuro_deficits": [],
                 "contrast_concerns": ["pregnancy"]})
    d = decision(r)
    assert d["groups"] == ["pregnancy", "myeloma"]
    assert [x[0] for x in d["recs"]] == list(range(1, 7))  # ranks renumbered after the re-ordering
    assert [x[1:3] for x in d["recs"]][:3] == [("first_line", "mri-whole-spine-wo"), ("alternative", "ct-region-wo"),
                                               ("staging", "wb-mri-myeloma")]
    assert d["recs"][-1][1:3] == ("avoid", "bone-scan") and d["recs"][-1][4] == ["myeloma.no_bone_scan"]
    assert {x[2] for x in d["recs"] if x[1] == "staging_alternative"} == {"wbldct", "fdg-pet-ct-myeloma"}
    assert all(x[4][0] == TRADE_OFF for x in d["recs"] if x[2] in ("ct-region-wo", "wbldct", "fdg-pet-ct-myeloma"))
    assert "contrast" not in [n[0] for n in d["notices"]]  # pregnancy has its own sourced advice
    cited_as_built(r)


@pytest.mark.parametrize("egfr,kidney", [(25, [GBCA_30, IODINATED_30, IODINATED_45]), (29.9, [GBCA_30, IODINATED_30,
                                                                                              IODINATED_45]),
                                         (30, [IODINATED_45]), (44.9, [IODINATED_45]), (45, [])])
def test_decision_egfr_thresholds_per_contrast_agent(egfr, kidney):
    r = pathway({**KNOWN_CANCER_PAIN, "egfr": egfr})
    assert decision(r) == metastasis(groups=["renal_impairment"], recs=KNOWN_SPINE,
                                     notices=[*HISTOLOGY_UNKNOWN_NOTICES, *kidney])
    kb = load_kb()
    assert [n.message for n in r.notices[3:]] == [kb.statement(items[1]).text for _, items in kidney]
    cited_as_built(r)


@pytest.mark.parametrize("extra", [{"on_dialysis": True}, {"on_dialysis": True, "egfr": 60},
                                   {"on_dialysis": True, "contrast_concerns": ["reduced_renal_function"]}])
def test_decision_dialysis_is_kidney_failure_every_threshold_applies(extra):
    r = pathway({**KNOWN_CANCER_PAIN, **extra})
    assert decision(r) == metastasis(groups=["renal_impairment"], recs=KNOWN_SPINE,
                                     notices=[*HISTOLOGY_UNKNOWN_NOTICES, GBCA_30, IODINATED_30, IODINATED_45])


def test_decision_egfr_below_30_without_mri_only_the_iodinated_advice():
    r = pathway({**KNOWN_CANCER_PAIN, "egfr": 20, "mri_contraindications": ["reason_not_given"]})
    assert decision(r)["notices"] == [*HISTOLOGY_UNKNOWN_NOTICES, IODINATED_30, IODINATED_45]


def test_decision_egfr_below_30_with_unenhanced_studies_no_kidney_advice():
    r = pathway({**KNOWN_CANCER_PAIN, "egfr": 20, "contrast_concerns": ["prior_gadolinium_reaction"]})
    assert decision(r)["notices"] == [*HISTOLOGY_UNKNOWN_NOTICES, ("contrast", ["contrast.caveat.safety_not_covered"])]


def test_decision_kidney_concern_without_egfr_unenhanced_studies_and_egfr_named():
    r = pathway({**KNOWN_CANCER_PAIN, "contrast_concerns": ["reduced_renal_function"]})
    assert decision(r) == metastasis(
        groups=["renal_impairment"], status="insufficient_data", missing=["pathway.egfr"],
        recs=[(1, "first_line", "mri-whole-spine-wo", None, ["imaging.mri.nice_mscc_protocol"], "urgent"),
              (2, "alternative", "ct-region-wo", "may_be_appropriate", ["imaging.ct.when_mri_contraindicated",
                                                                      "imaging.ct.osseous_integrity"], None)],
        notices=[*HISTOLOGY_UNKNOWN_NOTICES, ("kidney_unknown", ["contrast.kidney.gbca_group2",
                                                                 "contrast.kidney.iodinated_high_risk"])])
    assert r.notices[3].message == (
        "Kidney function is flagged but the eGFR is not given: contrast advice depends on it, so the spine studies are "
        "listed without contrast until it is known, and a contrast study that has no unenhanced equivalent opens with "
        "the kidney advice.")
    cited_as_built(r)


def _implant_spine(statement):
    """The known-cancer spine studies with an implant's condition leading every MRI, and CT of the whole spine."""
    out = []
    for rank, role, study, rating, statements, urgency in KNOWN_SPINE:
        if study.startswith("mri-"):
            statements = [statement, *statements]
        elif study == "ct-region-with":
            study, rating = "ct-whole-spine-with", None
            statements = [*statements, "implant.ct_myelography_when_mri_impossible"]
        out.append((rank, role, study, rating, statements, urgency))
    return out


@pytest.mark.parametrize("device,notice", [("mr_conditional", ("implant_conditional", ["implant.mr_conditional"])),
                                           ("non_mr_conditional_cardiac", ("implant_legacy",
                                                                           ["implant.legacy_cardiac_devices"])),
                                           ("mr_safe", None)])
def test_decision_implants_mri_stays_first_with_the_device_advice(device, notice):
    r = pathway({**KNOWN_CANCER_PAIN, "implanted_device": device})
    spine = _implant_spine("implant.legacy_cardiac_protocol_only") if device == "non_mr_conditional_cardiac" else KNOWN_SPINE
    assert decision(r) == metastasis(groups=["implant"], recs=spine,
                                     notices=HISTOLOGY_UNKNOWN_NOTICES + ([notice] if notice else []))
    cited_as_built(r)


def test_decision_implant_labelling_unknown_is_named():
    r = pathway({**KNOWN_CANCER_PAIN, "implanted_device": "labelling_unknown"})
    assert decision(r) == metastasis(groups=["implant"], recs=_implant_spine("implant.identify_before_mri"),
                                     status="insufficient_data",
                                     missing=["pathway.implanted_device"],
                                     notices=[*HISTOLOGY_UNKNOWN_NOTICES, ("implant_unknown", ["implant.mr_conditional"])])
    assert r.notices[3].message == ("The implant's MR labelling is not known: MRI is possible for an MR Conditional "
                                    "device within its conditions and not for an MR Unsafe one.")
    assert r.summary.startswith("insufficient data: missing the implant's MR labelling; if MRI is possible: MRI of the")
    assert "once the implant is identified and its MR labelling allows it (otherwise CT)" in r.summary


@pytest.mark.parametrize("extra", [{"implanted_device": "labelling_unknown"}, {"implanted_device": "mr_conditional"},
                                   {"implanted_device": "non_mr_conditional_cardiac"}, {"implanted_device": "mr_unsafe"},
                                   {"contrast_concerns": ["reduced_renal_function"]}, {"egfr": 20}, {"pregnant": True}])
def test_decision_no_imaging_no_device_kidney_or_pregnancy_advice(extra):
    r = pathway({"age": 45, "cancer_history": "none", "spinal_pain": True, "pain_region": "lumbar", "red_flags": [],
                 "neuro_deficits": [], **extra})
    assert (r.status, r.missing, r.notices, r.imaging_indicated) == ("complete", [], [], False)


# --- recognising the patient and the primary ---------------------------------------------------------------------

def test_decision_child_treated_for_cancer_before_has_the_known_cancer_red_flag():
    r = pathway({**CHILD_ALL_STATED, "cancer_history": "previous", "primary_site": "leukaemia"})
    assert decision(r)["notices"][1] == ("child_red_flags", ["paediatric_red_flags.known-cancer"])
    assert r.first_line.study.id == "mri-complete-spine-wwo-child"


def test_decision_age_18_is_adult():
    # patient_groups: the paediatric criteria apply under 18 years
    adult = pathway({**CHILD_ALL_STATED, "age": 18})
    assert (adult.scenario, adult.patient_groups) == ("low_back_pain_without_red_flags", [])
    assert pathway({**CHILD_ALL_STATED, "age": 17}).scenario == "paediatric_back_pain"


def test_decision_no_implant_is_not_the_implant_group():
    r = pathway({**KNOWN_CANCER_PAIN, "implanted_device": "none"})
    assert decision(r) == metastasis(recs=KNOWN_SPINE)


def test_decision_response_assessment_is_after_treatment_even_when_the_treatment_is_not_named():
    r = pathway({**CURRENT, "known_lesion_purpose": "response_assessment"})
    assert decision(r) == expected(groups=["after_treatment"], recs=[RESPONSE_MRI])


@pytest.mark.parametrize("site", ["Breast, ER-positive", "breast (ductal)", "BREAST/ductal carcinoma"])
def test_decision_primary_site_read_as_whole_words_despite_punctuation(site):
    r = pathway({**KNOWN_CANCER_PAIN, "primary_site": site})
    assert studies(r, "staging") == ["bone-scan", "ct-cap-with"]


def test_decision_colon_cancer_falls_back_to_the_general_staging_rows_flagged_as_drafts():
    r = pathway({**KNOWN_CANCER_PAIN, "primary_site": "colon"})
    assert decision(r) == metastasis(recs=[*KNOWN_SPINE, (5, "staging", "fdg-pet-ct", None, ["imaging.pet.capabilities"], None),
                                           (6, "staging", "bone-scan", None, ["imaging.bone_scan.not_first_line"], None)],
                                     notices=METASTASIS_NOTICES)
    assert r.draft_items == ["staging_by_histology.other-fdg", "staging_by_histology.other-bone-scan",
                             "imaging.bone_scan.not_first_line"]
    cited_as_built(r)


def test_decision_her2_positive_breast_cancer_with_neurology_adds_brain_mri_flagged_as_draft():
    r = pathway({**KNOWN_CANCER_PAIN, "primary_site": "breast", "breast_her2_positive": True, "neuro_deficits": ["gait"]})
    assert decision(r)["recs"][4:] == [
        (5, "staging", "bone-scan", None, ["breast.back_pain.complete_staging"], None),
        (6, "staging", "ct-cap-with", None, ["breast.back_pain.complete_staging"], None),
        (7, "additional", "brain-mri-with", None, ["breast.back_pain.brain_mri_subtypes"], None)]
    assert r.draft_items == ["breast.back_pain.brain_mri_subtypes"]  # the neurology trigger rests on a draft
    cited_as_built(r)


def test_decision_surveillance_asked_for_a_patient_with_pain_follows_the_pain():
    r = pathway({"age": 45, "cancer_history": "none", "asymptomatic_surveillance": True, "spinal_pain": True, "red_flags": [],
                 "neuro_deficits": [], "pain_region": "lumbar"})
    assert (r.scenario, r.imaging_indicated) == ("low_back_pain_without_red_flags", False)


def test_decision_child_with_two_red_flags_lists_both():
    r = pathway({**CHILD_ALL_STATED, "age": 4, "night_pain": True})
    assert decision(r)["notices"][1] == ("child_red_flags", ["paediatric_red_flags.young-age",
                                                             "paediatric_red_flags.night-pain"])
    assert r.notices[1].message == "Red flags present: Age under 5 years; Night pain."


OSTEOPOROSIS = {"age": 70, "cancer_history": "none", "spinal_pain": True, "red_flags": ["osteoporosis"], "neuro_deficits": []}
LBP6_RECS = [(1, "first_line", "radiograph", "usually_appropriate", LBP6, None),
             (2, "alternative", "mri-region-wo", "usually_appropriate", LBP6, None),
             (3, "alternative", "ct-region-wo", "usually_appropriate", LBP6, None)]


def test_decision_a_negative_radiograph_does_not_count_as_a_fracture_seen():
    r = pathway({**OSTEOPOROSIS, "prior_imaging": [{"modality": "radiograph", "result": "negative"}]})
    assert decision(r) == fracture(recs=LBP6_RECS, notices=[FRACTURE_NOTICE, CONSIDER_MYELOMA,
                                                            ("radiograph_not_enough", ["imaging.radiograph.cannot_exclude"])])


def test_decision_a_fracture_seen_on_ct_is_acr_vcf_variant_1():
    r = pathway({**OSTEOPOROSIS, "prior_imaging": [{"modality": "ct", "result": "positive"}]})
    assert decision(r)["recs"] == [(1, "first_line", "mri-region-wo", "usually_appropriate", VCF, None),
                                   (2, "alternative", "ct-region-wo", "usually_appropriate", VCF, None)]


def test_decision_neck_pain_with_fracture_risk_is_not_rated_by_the_low_back_pain_variant():
    r = pathway({**OSTEOPOROSIS, "pain_region": "cervical"})
    assert decision(r)["recs"] == [(1, "first_line", "radiograph", None, VCF, None),
                                   (2, "alternative", "mri-region-wo", None, VCF, None),
                                   (3, "alternative", "ct-region-wo", None, VCF, None)]


def test_decision_myeloma_screen_from_60_with_fracture_risk():
    # NICE NG12: blood tests for myeloma at 60 or over with persistent bone pain or an unexplained fracture
    assert decision(pathway({**OSTEOPOROSIS, "age": 60}))["notices"] == [FRACTURE_NOTICE, CONSIDER_MYELOMA]
    assert decision(pathway({**OSTEOPOROSIS, "age": 59}))["notices"] == [FRACTURE_NOTICE]


def test_decision_weight_loss_with_cancer_history_not_stated_is_the_metastasis_work_up():
    r = pathway({"spinal_pain": True, "red_flags": ["unexplained_weight_loss"], "neuro_deficits": [], "pain_region": "lumbar"})
    assert r.scenario == "suspected_spinal_metastasis"
    assert pathway({"known_lesion_purpose": "characterise"}).scenario == "known_lesion"


def test_decision_named_primary_is_a_tissue_diagnosis_no_holding_steroids_for_biopsy():
    r = pathway({"primary_site": "breast", "spinal_pain": True, "neuro_deficits": [], "suspected_cord_compression": True,
                 "breast_her2_positive": False, "breast_triple_negative": False})
    assert decision(r)["actions"] == ["contact-now", "steroids-no-neuro", "position", "analgesia", "mri-now", "treatment"]


def test_decision_previous_lymphoma_with_suspected_compression_steroids_once_involvement_is_confirmed():
    r = pathway({"cancer_history": "previous", "primary_site": "lymphoma", "spinal_pain": True, "neuro_deficits": [],
                 "suspected_cord_compression": True})
    assert decision(r)["actions"] == ["contact-now", "steroids-haematological-if-confirmed", "position", "analgesia",
                                      "mri-now", "treatment"]


def test_decision_child_with_neurology_and_unknown_primary_gets_the_unknown_primary_work_up():
    r = pathway({"age": 10, "unknown_primary": True, "neuro_deficits": ["gait"], "primary_bone_tumour_possible": True})
    assert decision(r) == paed_neuro(
        groups=["child", "unknown_primary"],
        recs=[(1, "first_line", "mri-complete-spine-wwo-child", None, ["child.neuroblastoma_recovery"], "emergency"),
              (2, "additional", "ct-full-body", None, ["imaging.unknown_primary.body_ct"], "emergency")],
        workup=[INITIAL_WORKUP, ("Refer to a bone sarcoma centre before any biopsy", ["unknown_primary.sarcoma_centre_first"])])


def test_decision_surveillance_with_pain_not_stated_names_it():
    r = pathway({"cancer_history": "previous", "primary_site": "colon", "asymptomatic_surveillance": True,
                 "neuro_deficits": []})
    assert (r.scenario, r.missing) == ("asymptomatic_surveillance", ["pathway.spinal_pain"])


def test_decision_surveillance_after_a_contrast_reaction_has_no_contrast_notice():
    r = pathway({**SURVEILLANCE, "primary_site": "breast", "treatment_intent": "curative",
                 "contrast_concerns": ["prior_gadolinium_reaction"]})
    assert [n.code for n in r.notices] == ["acr_rating", "acr_rating"]


def test_decision_pregnant_with_her2_positive_breast_cancer_and_neurology_brain_mri_only_if_essential():
    # ACR / ACOG: gadolinium in pregnancy only when essential; the brain MRI keeps gadolinium, with that caveat first,
    # and its kidney advice applies (eGFR below 30: group II agent, ACR-NKF).
    r = pathway({**KNOWN_CANCER_PAIN, "primary_site": "breast", "breast_her2_positive": True, "neuro_deficits": ["gait"],
                 "pregnant": True, "egfr": 20})
    brain = next(x for x in r.recommendations if x.study.id == "brain-mri-with")
    assert (brain.role, brain.statements) == ("additional", ["pregnancy.gadolinium_only_if_essential",
                                                             "breast.back_pain.brain_mri_subtypes"])
    assert brain.rationale[0] == load_kb().statement("pregnancy.gadolinium_only_if_essential").text
    assert "kidney_gadolinium" in [n.code for n in r.notices]
    cited_as_built(r)


@pytest.mark.parametrize("data,words", [
    ({**CURRENT, "known_lesion_purpose": "stage"}, "known lesion"),
    (BASE, "spinal pain with suspected metastasis"),
    ({**BASE, "neuro_deficits": ["gait"]}, "suspected spinal cord or cauda equina compression"),
    (CHILD_ALL_STATED, "child or adolescent with back pain"),
    ({"age": 8, "neuro_deficits": ["gait"]}, "child with neurological symptoms or signs"),
    (OSTEOPOROSIS, "no known cancer, suspected osteoporotic or insufficiency fracture"),
    ({**SURVEILLANCE, "primary_site": "breast"}, "surveillance without symptoms"),
    ({**CHILD_ALL_STATED, "age": 40}, "spinal pain without red flags"),
    ({}, "not enough information to choose a pathway"),
])
def test_decision_the_scenario_is_named_in_clinical_words(data, words):
    from spinemets.results import Component

    assert pathway(data).components == [Component(name="scenario", value=words)]


def test_decision_understood_names_the_patient_groups():
    r = pathway({**KNOWN_CANCER_PAIN, "pregnant": True, "egfr": 50})
    assert r.understood[-1] == "patient group: Pregnancy, Reduced kidney function"


# --- regressions found by the mutation review (each was a wrong or silent answer) ---------------------------------

@pytest.mark.parametrize("site,named", [("prostate lymphoma", "prostate cancer, lymphoma"),
                                        ("breast and lung cancer", "breast cancer, lung cancer"),
                                        ("Myeloma; renal cell carcinoma", "myeloma or another plasma-cell disorder, "
                                                                          "renal cell carcinoma")])
def test_two_primaries_in_the_site_are_insufficient_data_not_one_of_them(site, named):
    # Once 'prostate lymphoma' was staged as prostate cancer and 'breast and lung cancer' as lung cancer alone.
    r = pathway({**KNOWN_CANCER_PAIN, "primary_site": site})
    assert r.status == "insufficient_data" and r.missing == ["pathway.primary_site"]
    assert [x.role for x in r.recommendations if x.role in LATER] == []  # no histology's staging applied
    assert "myeloma" not in r.patient_groups
    note = next(n for n in r.notices if n.code == "primary_site_ambiguous")
    assert note.message == (
        f"The primary site names more than one tumour ({named}): staging, the steroid advice and the studies to avoid "
        "differ by histology, so none is applied. State the primary the spinal lesion is thought to come from.")
    assert "staging_histology" not in [n.code for n in r.notices]
    assert r.summary.startswith("insufficient data: missing the primary tumour (one site); holds either way: MRI of the "
                                "whole spine")


@pytest.mark.parametrize("site,row", [("non-small cell lung", "lung"), ("clear cell renal cell carcinoma", "renal"),
                                      ("plasma cell myeloma", "myeloma"), ("non-hodgkin lymphoma", "lymphoma"),
                                      ("lung, lung cancer", "lung")])
def test_one_primary_written_with_nested_synonyms_is_one_primary(site, row):
    from spinemets.pathway import primary_group, primary_groups
    assert [r.id for r in primary_groups(site)] == [row] and primary_group(site).id == row
    assert pathway({**KNOWN_CANCER_PAIN, "primary_site": site}).status == "complete"


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_any_two_different_primaries_joined_are_never_resolved_to_one(data):
    rows = load_kb().table("primary_sites").rows
    a, b = data.draw(st.lists(st.sampled_from(rows), min_size=2, max_size=2, unique_by=lambda r: r.id))
    text = f"{data.draw(st.sampled_from(a['synonyms']))} {data.draw(st.sampled_from(['and', 'with', ',', '/']))} " \
           f"{data.draw(st.sampled_from(b['synonyms']))}"
    r = pathway({**KNOWN_CANCER_PAIN, "primary_site": text})
    assert "pathway.primary_site" in r.missing, text


def test_malignancy_red_flag_with_cancer_history_not_stated_asks_for_it():
    # Once read as 'no cancer': regional MRI, no time limit and nothing missing.
    r = pathway({"spinal_pain": True, "red_flags": ["unexplained_weight_loss"], "neuro_deficits": []})
    assert r.scenario == "suspected_spinal_metastasis"
    assert r.status == "insufficient_data" and r.missing == ["pathway.cancer_history"]
    assert r.summary == ("insufficient data: missing the cancer history; without a cancer history: MRI of the "
                         "symptomatic spinal region without and with IV contrast")
    note = next(n for n in r.notices if n.code == "cancer_history_decides")
    assert note.message == "The cancer history is not stated. With a known cancer: " + \
        load_kb().statement("imaging.mri.whole_spine_high_suspicion").text
    # stated 'none' is complete and says nothing about a known cancer
    none = pathway({"spinal_pain": True, "red_flags": ["unexplained_weight_loss"], "neuro_deficits": [],
                    "cancer_history": "none"})
    assert none.status == "complete" and "cancer_history_decides" not in [n.code for n in none.notices]


def test_fracture_seen_on_radiographs_and_mri_impossible_ct_first_as_acr_rates_it():
    # ACR VCF variant 1: CT without contrast usually appropriate, bone scan may be appropriate; once radiographs led.
    r = pathway({"age": 70, "cancer_history": "none", "spinal_pain": True, "red_flags": ["osteoporosis"],
                 "neuro_deficits": [], "mri_contraindications": ["reason_not_given"],
                 "prior_imaging": [{"modality": "radiograph", "result": "positive"}]})
    assert decision(r)["recs"] == [
        (1, "first_line", "ct-region-wo", "usually_appropriate", ["fracture.acr_vcf_no_cancer"], None),
        (2, "alternative", "bone-scan", "may_be_appropriate", ["fracture.acr_vcf_no_cancer"], None)]
    assert r.status == "complete"
    cited_as_built(r)


def test_contrast_studies_without_an_unenhanced_equivalent_lead_with_the_contrast_advice():
    # Once the contrast staging CT and the gadolinium brain MRI were listed after a kidney or gadolinium concern
    # with nothing said.
    kidney = pathway({**KNOWN_CANCER_PAIN, "primary_site": "breast", "contrast_concerns": ["reduced_renal_function"]})
    ct = next(x for x in kidney.recommendations if x.study and x.study.id == "ct-cap-with")
    assert ct.statements[0] == "contrast.kidney.iodinated_high_risk"
    assert all(x.study.contrast in ("without", "none") for x in kidney.recommendations if x.role in ("first_line",))
    reaction = pathway({"cancer_history": "current", "primary_site": "breast", "breast_her2_positive": True,
                        "spinal_pain": True, "neuro_deficits": ["motor_weakness"],
                        "contrast_concerns": ["prior_gadolinium_reaction"]})
    brain = next(x for x in reaction.recommendations if x.study and x.study.id == "brain-mri-with")
    assert brain.statements[0] == "contrast.caveat.safety_not_covered"
    both = pathway({"cancer_history": "current", "primary_site": "breast", "breast_her2_positive": True,
                    "spinal_pain": True, "neuro_deficits": ["motor_weakness"],
                    "contrast_concerns": ["reduced_renal_function", "prior_gadolinium_reaction"]})
    brain = next(x for x in both.recommendations if x.study and x.study.id == "brain-mri-with")
    assert brain.statements[:2] == ["contrast.caveat.safety_not_covered", "contrast.kidney.gbca_group2"]
    cited_as_built(both)
    # no concern: nothing leads
    plain = pathway({**KNOWN_CANCER_PAIN, "primary_site": "breast"})
    ct = next(x for x in plain.recommendations if x.study and x.study.id == "ct-cap-with")
    assert ct.statements == ["breast.back_pain.complete_staging"]


def test_a_synonym_inside_a_longer_one_of_another_primary_does_not_count(kb_copy):
    # Whatever the table holds: a match that lies inside a longer match (at its start, its end or its middle) is part
    # of that longer phrase, not a second primary; the same words standing alone are one.
    import yaml

    from spinemets.pathway import primary_groups
    path = kb_copy / "tables" / "primary_sites.yaml"
    table = yaml.safe_load(path.read_text())
    table["rows"].append({"id": "nested-test", "label": "nested test", "group": "solid",
                          "synonyms": ["clear cell", "cell carcinoma", "cell", "cell cancer"], "sources": ["koga-2001"]})
    table["rows"].append({"id": "same-word-test", "label": "same word test", "group": "solid",
                          "synonyms": ["osteosarcoma"], "sources": ["koga-2001"]})
    table["rows"].append({"id": "same-word-test-2", "label": "same word test 2", "group": "solid",
                          "synonyms": ["osteosarcoma"], "sources": ["koga-2001"]})
    path.write_text(yaml.safe_dump(table, sort_keys=False))
    kb = load_kb(kb_copy)

    def ids(text):
        return [r.id for r in primary_groups(text, kb)]

    assert ids("clear cell renal cell carcinoma") == ["renal"]  # 'clear cell' at its start, 'cell carcinoma' at its end
    assert ids("renal cell") == ["renal"]  # 'cell' at the end of 'renal cell'
    assert ids("clear cell") == ["nested-test"] and ids("cell") == ["nested-test"]
    assert ids("cell carcinoma of the kidney") == ["nested-test", "renal"]  # in the order written
    assert ids("kidney; cell carcinoma") == ["renal", "nested-test"]
    assert ids("") == [] and ids(None) == [] and ids("sarcoma") == []
    # phrases that overlap without one containing the other are two primaries, in the order written
    assert ids("renal cell cancer") == ["renal", "nested-test"]
    # the same word in two rows names both, in the table's order
    assert ids("osteosarcoma") == ["same-word-test", "same-word-test-2"]


@pytest.mark.parametrize("site,first,ionising", [
    ("breast", "wb-mri-dwi", "bone-scan"), (None, "wb-mri-dwi", "fdg-pet-ct"), ("myeloma", "wb-mri-myeloma", "wbldct")])
def test_staging_a_known_lesion_in_pregnancy_starts_with_the_unenhanced_whole_body_mri(site, first, ionising):
    # Once a bone scan (or PET/CT) was the first-line staging study of a pregnant patient, the whole-body MRI second.
    r = pathway({"pregnant": True, "cancer_history": "current", "primary_site": site, "known_lesion_purpose": "stage"})
    recs = [(x.role, x.study.id) for x in r.recommendations]
    assert recs[0] == ("first_line", first) and recs[1] == ("alternative", ionising)
    assert sum(1 for _, sid in recs if sid in ("wb-mri-dwi", "wb-mri-myeloma")) == 1  # one whole-body MRI
    assert r.recommendations[1].statements[0] == "pregnancy.ionising_trade_off"
    assert [x.rank for x in r.recommendations] == list(range(1, len(recs) + 1))
    assert r.summary.startswith(r.recommendations[0].study.label)
    cited_as_built(r)
    # not pregnant: the histology's own first study stays first
    plain = pathway({"cancer_history": "current", "primary_site": site, "known_lesion_purpose": "stage"})
    assert plain.recommendations[0].study.id == {"breast": "bone-scan", None: "fdg-pet-ct", "myeloma": "wbldct"}[site]


def test_staging_a_known_lesion_with_two_primaries_names_the_ambiguity_not_a_missing_primary():
    r = pathway({"cancer_history": "current", "primary_site": "breast and lung cancer", "known_lesion_purpose": "stage"})
    codes = [n.code for n in r.notices]
    assert "primary_site_ambiguous" in codes and "staging_histology" not in codes
    assert r.missing == ["pathway.primary_site"] and r.status == "insufficient_data"
    # one primary not stated at all: the staging note says so
    plain = pathway({"cancer_history": "current", "known_lesion_purpose": "stage"})
    assert "staging_histology" in [n.code for n in plain.notices]


# --- Root pain (sciatica) without cancer is a back-pain presentation, not the compression emergency -------------
# ACR Low Back Pain 2021, variants 1-2: "with or without radiculopathy", no red flags, no imaging at first;
# NICE CG75 makes radicular pain an emergency for people with cancer.
NO_CANCER_SCIATICA = {"age": 55, "cancer_history": "none", "neuro_deficits": ["radicular"]}


def _not_emergency(r):
    assert r.scenario not in ("suspected_mscc", "paediatric_neurological")
    assert r.actions == [] and "emergency" not in r.summary.lower()
    assert r.urgency is None or r.urgency.level in ("none", "routine")


def test_sciatica_without_cancer_red_flags_unknown_asks_for_them():
    r = pathway(NO_CANCER_SCIATICA)
    _not_emergency(r)
    assert (r.status, r.scenario, r.imaging_indicated) == ("insufficient_data", "undetermined", None)
    assert r.missing == ["pathway.red_flags"]
    assert r.summary == "insufficient data: missing the red flags (assessed, none, or which); " \
                        "without red flags: imaging not indicated"
    codes = [n.code for n in r.notices]
    assert codes == ["red_flags_decide", "red_flags_cancer_infection", "root_pain_not_mscc", "severe_deficit",
                     "after_medical_management", "if_cauda_equina"]
    assert "pathway" not in " ".join(n.message for n in r.notices)
    # cauda equina syndrome, not stated either way, is the miss to guard against in sciatica: its standard is shown;
    # stated absent, it is not repeated
    assert "within 4 hours" in r.notices[-1].message
    assert "if_cauda_equina" not in [n.code for n in pathway({**NO_CANCER_SCIATICA,
                                                              "suspected_cauda_equina": False}).notices]


@pytest.mark.parametrize("extra", [{}, {"pregnant": True}, {"spinal_pain": True, "pain_region": "lumbar"},
                                   {"egfr": 20.0}, {"implanted_device": "mr_conditional"}])
def test_sciatica_without_cancer_or_red_flags_is_not_imaged(extra):
    r = pathway({**NO_CANCER_SCIATICA, "red_flags": [], **extra})
    _not_emergency(r)
    assert (r.status, r.scenario, r.imaging_indicated) == ("complete", "low_back_pain_without_red_flags", False)
    assert studies(r) == [] and r.summary == "imaging not indicated"
    notes = {n.code: n.message for n in r.notices}
    # when imaging does come in: a severe or progressive deficit (ACP), or 6 weeks of failed treatment (ACR variant 3)
    assert "severe or progressive neurological deficits" in notes["severe_deficit"]
    assert "6 weeks of optimal medical" in notes["after_medical_management"]
    assert "Usually Appropriate" in notes["after_medical_management"]


def test_sciatica_without_cancer_in_a_child_is_a_red_flag_not_an_emergency():
    # ACR Back Pain-Child: neurological symptoms are a red flag (radiographs first, MRI may be appropriate).
    r = pathway({**NO_CANCER_SCIATICA, "age": 12, "spinal_pain": True, "night_pain": False,
                 "pain_duration_weeks": 1, "pain_progressive": False, "red_flags": []})
    _not_emergency(r)
    assert r.scenario == "paediatric_back_pain" and r.first_line.study.id == "radiograph-area-child"
    assert any(n.code == "child_red_flags" and "Neurological" in n.message for n in r.notices)


@pytest.mark.parametrize("case", [
    {"cancer_history": "current"},                                   # NICE: radicular pain is an emergency with cancer
    {"cancer_history": "previous", "primary_site": "myeloma"},
    {"cancer_history": None},                                        # not known: the emergency stands, history asked
    {"unknown_primary": True},
    {"cancer_history": "none", "suspected_cauda_equina": True},
    {"cancer_history": "none", "suspected_cord_compression": True},
    {"cancer_history": "none", "neuro_deficits": ["radicular", "motor_weakness"]},
])
def test_root_symptoms_stay_an_emergency_with_cancer_or_signs_of_compression(case):
    r = pathway({**NO_CANCER_SCIATICA, **case})
    assert r.scenario == "suspected_mscc" and r.urgency.level == "emergency" and r.actions
    what = "cauda equina" if case.get("suspected_cauda_equina") else "spinal cord"
    assert r.summary.startswith(f"Suspected {what} compression, emergency."), r.summary


@settings(max_examples=300, deadline=None)
@given(scenario)
def test_root_pain_alone_without_cancer_is_never_the_compression_emergency(s):
    kb = load_kb()
    serious = {r.id for r in kb.table("red_flags").rows if r["group"] in ("malignancy", "infection")}
    s = {**s, "cancer_history": "none", "unknown_primary": None, "neuro_deficits": ["radicular"],
         "red_flags": [f for f in s["red_flags"] if f not in serious]}
    r = pathway(s)
    assert r.scenario not in ("suspected_mscc", "paediatric_neurological")
    assert not r.actions


def test_compression_without_an_age_names_it_the_adult_dose_and_limits_may_not_apply():
    # A child is managed by the paediatric teams without the adult limits (ACR Back Pain-Child, NICE NG234 scope):
    # an adult steroid dose for a possible child must not pass silently.
    r = pathway({"cancer_history": "current", "primary_site": "neuroblastoma", "spinal_pain": True,
                 "neuro_deficits": ["motor_weakness"]})
    assert r.scenario == "suspected_mscc" and r.status == "insufficient_data" and "pathway.age" in r.missing
    assert r.summary.startswith("Suspected spinal cord compression, emergency.")  # the emergency still leads
    assert r.summary.endswith("Insufficient data for the rest: missing the patient's age")
    assert any(n.code == "age_unknown" and "paediatric" in n.message for n in r.notices)
    child = pathway({"age": 6, "cancer_history": "current", "primary_site": "neuroblastoma", "spinal_pain": True,
                     "neuro_deficits": ["motor_weakness"]})
    assert child.scenario == "paediatric_neurological" and "pathway.age" not in child.missing


@pytest.mark.parametrize("device, statement, words", [
    ("labelling_unknown", "implant.identify_before_mri", "once the implant is identified and its MR labelling allows it"),
    ("non_mr_conditional_cardiac", "implant.legacy_cardiac_protocol_only", "under a cardiac-device protocol"),
])
def test_compression_with_an_implant_puts_its_condition_on_the_mri(device, statement, words):
    # ASTM F2503: an MR Conditional device only within its conditions; UK CIED consensus 2024 / Nazarian 2017:
    # non-conditional cardiac devices under a protocol. An unconditional "MRI as soon as possible" was wrong here.
    r = pathway({**BASE, "neuro_deficits": ["motor_weakness"], "implanted_device": device})
    steps = [row for row in r.actions if row.step == "imaging"]
    assert len(steps) == 1 and "identify the device and its MR labelling first" in steps[0].label
    assert "otherwise CT" in r.summary and words in r.summary
    assert r.first_line.study.modality == "mri" and r.first_line.statements[0] == statement
    assert any(x.study.id == "ct-whole-spine-with" for x in r.recommendations if x.role == "alternative")  # not one region
    assert ("pathway.implanted_device" in r.missing) == (device == "labelling_unknown")


@pytest.mark.parametrize("device", ["mr_conditional", "none", None])
def test_compression_with_a_known_mr_status_keeps_the_unconditional_mri_step(device):
    r = pathway({**BASE, "neuro_deficits": ["motor_weakness"], "implanted_device": device})
    assert [a.label for a in r.actions if a.step == "imaging"] == [
        "MRI of the whole spine as soon as possible, out of hours if treatment depends on it; never rely on radiographs."]
    assert "otherwise CT" not in r.summary


def test_a_child_with_night_pain_given_as_a_red_flag_has_a_red_flag():
    # ACR Back Pain-Child: night pain is a red flag; stated among the red flags it must count (it asked for it before).
    r = pathway({"age": 10, "cancer_history": "none", "spinal_pain": True, "red_flags": ["nocturnal_pain"]})
    assert r.scenario == "paediatric_back_pain" and r.status == "complete"
    assert r.first_line.study.id == "radiograph-area-child"
    assert any(n.code == "child_red_flags" and "Night pain" in n.message for n in r.notices)


@pytest.mark.parametrize("her2, brain, expected", [(True, True, True), (True, False, False), (False, True, False),
                                                   (None, True, False)])
def test_her2_positive_breast_cancer_with_a_new_headache_adds_brain_mri(her2, brain, expected):
    # ASCO 2022 (HER2-positive advanced breast cancer), recommendation 10.2: a low threshold for brain MRI with any
    # symptom suggesting brain involvement, such as a new headache; no routine brain MRI without symptoms (10.1).
    r = pathway({"age": 52, "cancer_history": "current", "primary_site": "breast", "spinal_pain": True,
                 "neuro_deficits": [], "red_flags": [], "breast_her2_positive": her2, "breast_triple_negative": False,
                 "brain_symptoms": brain})
    added = [x for x in r.recommendations if x.study and x.study.id == "brain-mri-with"]
    assert bool(added) == expected
    if expected:
        assert added[0].statements == ["breast.her2_brain_mri_low_threshold"]
        assert "brain MRI" in added[0].rationale[0] and "new headache or brain symptoms" in r.understood
        assert not r.draft_items


def test_spinal_instrumentation_keeps_mri_first_and_adapts_it():
    # The Montoya-Bordon review, Cavallaro 2022, Kuah 2022: STIR near metal; CT with artefact reduction when the
    # region stays hidden. Hardware being present is not an MRI contraindication ('metal_artefact' says that).
    r = pathway({**BASE, "neuro_deficits": ["motor_weakness"], "spinal_hardware": True})
    assert r.first_line.study.modality == "mri"
    assert r.first_line.statements[0] == "imaging.instrumentation_adapt_mri"
    assert any(x.study.id == "ct-dual-energy" and x.role == "alternative" for x in r.recommendations if x.study)
    spoilt = pathway({**BASE, "neuro_deficits": ["motor_weakness"], "spinal_hardware": True,
                      "mri_contraindications": ["metal_artefact"]})
    assert spoilt.first_line.study.id == "ct-dual-energy"  # MRI stated to be spoilt by the metal: CT first


@pytest.mark.parametrize("flag", ["suspected_infection", "unexplained_weight_loss"])
def test_root_signs_with_an_infection_or_malignancy_flag_stay_an_emergency(flag):
    # Sciatica with fever can be an epidural abscess: the root signs are not set aside when a serious flag comes
    # with them (a first version of the sciatica rule lost them and gave routine MRI).
    r = pathway({"age": 40, "cancer_history": "none", "neuro_deficits": ["radicular"], "red_flags": [flag]})
    assert r.scenario == "suspected_mscc" and r.urgency.level == "emergency" and r.actions


def test_infection_flags_without_neurology_are_imaged_urgently():
    # ACP/APS: image at once with MRI when there are risk factors for spinal infection.
    r = pathway({"age": 40, "cancer_history": "none", "spinal_pain": True, "neuro_deficits": [],
                 "red_flags": ["suspected_infection"]})
    assert r.scenario == "suspected_spinal_infection" and r.urgency.level == "urgent"
    assert any(n.code == "infection_image_now" for n in r.notices)


@pytest.mark.parametrize("problem, words", [("metallic_foreign_body", "metal fragment in the eye or orbit"),
                                            ("reason_not_given", "MRI not possible (reason not given)")])
def test_compression_with_a_metal_fragment_or_mri_said_impossible_is_ct_of_the_whole_spine(problem, words):
    # A metal fragment in the orbit is screened for before MRI (Seidenwurm 2000 policy); until it is excluded, CT.
    # Even with a legacy pacemaker (which alone allows MRI under a protocol), the fragment keeps MRI out.
    r = pathway({**BASE, "neuro_deficits": ["motor_weakness"], "mri_contraindications": [problem],
                 "implanted_device": "non_mr_conditional_cardiac"})
    assert r.first_line.study.id == "ct-whole-spine-with" and "cardiac-device protocol" not in r.summary
    assert [a.label for a in r.actions if a.step == "imaging"][0].startswith("MRI is not possible: CT of the whole spine")
    assert any(u.startswith("MRI problem: ") and words in u for u in r.understood)
    fragment = [n for n in r.notices if n.code == "metal_fragment"]
    assert bool(fragment) == (problem == "metallic_foreign_body")
    if fragment:
        assert fragment[0].sources == ["seidenwurm-2000"] and "orbital radiographs" in fragment[0].message


def test_back_pain_after_spinal_surgery_without_cancer_or_red_flags_is_imaged_as_acr_variant_5():
    # ACR Low Back Pain 2021 variant 5 (RadiologyInfo summary): after lumbar surgery, new or worsening pain is imaged:
    # radiographs, MRI without and with contrast and MRI without contrast Usually Appropriate; CT without contrast
    # May Be Appropriate. Before, instrumentation without red flags fell to "imaging not indicated" (variants 1-2).
    base = {"age": 60, "cancer_history": "none", "spinal_pain": True, "pain_region": "lumbar", "red_flags": [],
            "neuro_deficits": []}
    assert pathway(base).imaging_indicated is False
    r = pathway({**base, "spinal_hardware": True})
    assert r.scenario == "back_pain_after_spinal_surgery" and r.imaging_indicated is not False
    assert r.first_line.study.id == "mri-region-wwo" and r.first_line.appropriateness == "usually_appropriate"
    assert "imaging.acr.lbp_v5_prior_surgery" in r.first_line.statements
    rated = {x.study.id: x.appropriateness for x in r.recommendations if x.study is not None}
    assert rated["radiograph"] == "usually_appropriate" and rated["ct-region-wo"] == "may_be_appropriate"
    assert not any(n.code == "radiographs" for n in r.notices)  # radiographs are a first study here
    assert r.urgency.level == "routine"
    # a thoracic or cervical region is outside the lumbar variant: it is not applied there
    for region in ("thoracic", "cervical"):
        assert pathway({**base, "spinal_hardware": True, "pain_region": region}).scenario != "back_pain_after_spinal_surgery"


def test_root_pain_persisting_after_treatment_without_cancer_is_acr_variant_3_not_a_metastasis_work_up():
    # ACR Low Back Pain 2021 variant 3: after 6 weeks of medical management, in a candidate for surgery or an
    # intervention, lumbar MRI without contrast is Usually Appropriate; radiographs, MRI with and without contrast
    # and CT without contrast May Be Appropriate. It was read as a malignancy work-up (contrast MRI).
    base = {"age": 45, "cancer_history": "none", "spinal_pain": True, "pain_region": "lumbar",
            "red_flags": ["radicular_treatment_failure"], "neuro_deficits": ["radicular"]}
    r = pathway(base)
    assert r.scenario == "root_pain_after_medical_management" and r.urgency.level == "routine"
    assert r.first_line.study.id == "mri-region-wo" and r.first_line.appropriateness == "usually_appropriate"
    rated = {x.study.id: x.appropriateness for x in r.recommendations if x.study is not None}
    assert rated["mri-region-wwo"] == rated["radiograph"] == rated["ct-region-wo"] == "may_be_appropriate"
    # with a cancer history, or another flag beside it, it stays the metastasis work-up
    assert pathway({**base, "cancer_history": "current", "primary_site": "breast"}).scenario != r.scenario
    assert pathway({**base, "red_flags": ["radicular_treatment_failure", "unexplained_weight_loss"]}).scenario \
        == "suspected_mscc"  # root signs with a malignancy flag stay the emergency
    assert "pathway.neuro_deficits" in pathway({**base, "neuro_deficits": None}).missing


def test_without_an_age_the_steroid_step_is_the_adult_dose_only_for_an_adult():
    # NICE NG234's dexamethasone 16 mg is an adult dose; with the age unknown the step says so and names the child's
    # route (paediatric oncology), and an adult whose age is not given ("my dad") gets the plain adult step.
    base = {"cancer_history": "current", "primary_site": "lung", "spinal_pain": True, "neuro_deficits": ["motor_weakness"]}
    r = pathway(base)
    step = [a.label for a in r.actions if a.step == "steroids"][0]
    assert step.startswith("If the patient is an adult, give dexamethasone 16 mg") and "paediatric oncology" in step
    assert "pathway.age" in r.missing
    r = pathway({**base, "adult": True})
    step = [a.label for a in r.actions if a.step == "steroids"][0]
    assert step.startswith("Give dexamethasone 16 mg") and "pathway.age" not in r.missing
    assert "adult, age not given" in r.understood
    assert pathway({**base, "age": 70}).actions == r.actions


@pytest.mark.parametrize("age, adult", [(12, True), (40, False), (17, True)])
def test_an_age_that_contradicts_adult_is_an_error_naming_both(age, adult):
    with pytest.raises(SpinemetsError) as e:
        pathway({"age": age, "adult": adult, "spinal_pain": True})
    assert "contradict" in str(e.value) and f"age {age}" in str(e.value)


@pytest.mark.parametrize("age, first, other", [(20, ["wb-mri-dwi"], ["ct-cap-with", "ct-head-with"]),
                                               (60, ["ct-cap-with", "ct-head-with"], ["wb-mri-dwi"]),
                                               (None, ["ct-cap-with", "ct-head-with"], ["wb-mri-dwi"])])
def test_melanoma_staging_is_whole_body_mri_below_25_and_ct_with_the_head_above(age, first, other):
    # NICE NG14: stage suspected distant spread with CT including the brain; consider whole-body MRI up to 24 years.
    r = pathway({"age": age, "cancer_history": "current", "primary_site": "melanoma", "spinal_pain": True,
                 "neuro_deficits": [], "red_flags": []})
    assert [x.study.id for x in r.recommendations if x.role == "staging"] == first
    assert [x.study.id for x in r.recommendations if x.role == "staging_alternative"] == other


def test_uveal_melanoma_is_not_staged_as_skin_melanoma_nor_with_a_generic_set():
    # Uveal melanoma has its own UK guideline (managed differently, NICE news 2015): no NG14 staging, no draft set.
    r = pathway({"age": 60, "cancer_history": "current", "primary_site": "uveal melanoma", "spinal_pain": True,
                 "neuro_deficits": [], "red_flags": []})
    assert not [x for x in r.recommendations if x.role in ("staging", "staging_alternative")]
    note = [n for n in r.notices if n.code == "staging_own_guideline"]
    assert note and note[0].sources == ["uveal-melanoma-uk-2015"] and "uveal melanoma team" in note[0].message
    assert "current cancer (uveal melanoma)" in r.understood


@pytest.mark.parametrize("site, extra, noted", [("lung", {}, True), ("breast", {"breast_her2_positive": True}, False),
                                                ("melanoma", {}, False), ("prostate", {}, True)])
def test_a_brain_symptom_is_never_silently_dropped(site, extra, noted):
    r = pathway({"age": 60, "cancer_history": "current", "primary_site": site, "spinal_pain": True, "neuro_deficits": [],
                 "red_flags": [], "brain_symptoms": True, **extra})
    note = [n for n in r.notices if n.code == "brain_symptoms_no_rule"]
    assert bool(note) == noted
    if noted:
        assert "treating team to decide" in note[0].message
    else:
        assert any(x.study.id in ("brain-mri-with", "ct-head-with") for x in r.recommendations)


def test_a_patient_stated_not_to_be_an_adult_is_a_child_and_the_age_is_asked():
    # adult "no" without an age ran the adult pathway ("imaging not indicated"; the adult cord-compression steps)
    r = pathway({"adult": False, "cancer_history": "none", "spinal_pain": True, "pain_region": "lumbar",
                 "red_flags": [], "neuro_deficits": []})
    assert r.scenario == "paediatric_back_pain" and "pathway.age" in r.missing and r.imaging_indicated is not False
    r = pathway({"adult": False, "cancer_history": "current", "primary_site": "neuroblastoma", "spinal_pain": True,
                 "neuro_deficits": ["motor_weakness"]})
    assert r.scenario == "paediatric_neurological" and r.urgency.level == "emergency"


def test_root_pain_after_treatment_with_neurology_unexamined_is_not_claimed_routine():
    r = pathway({"age": 55, "cancer_history": "none", "spinal_pain": True, "pain_region": "lumbar",
                 "red_flags": ["radicular_treatment_failure"]})
    assert r.scenario != "root_pain_after_medical_management"
