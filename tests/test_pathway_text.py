"""The imaging pathway as a clinician reads it: the whole text of worked examples, word for word.

Each case below is a scenario from the sources (named in its comment) run through ``pathway()``; the test asserts
the status, the headline (``summary``) and every line ``PathwayResult.extra_lines()`` renders under it (what was
understood, what to do now, the time limits with their sources and conditions, each recommended study with its
role, ACR rating, reference numbers and rationale, the work-up and the staging), and that ``to_text()`` puts them
in that order above the scenario line.  The studies, actions and time limits are written out; a rationale line is
the knowledge-base statement the recommendation cites, looked up by its id (``why``) when the test runs, so the
test pins which statements are shown, in which order, without copying their wording here.

The draft tests edit a copy of the knowledge base: a time limit awaiting review must be flagged DRAFT wherever it
is shown and left out of the headline.

This file kills the mutants of the rendering code in ``spinemets.pathway`` (``PathwayResult.extra_lines``,
``_rec_lines``, ``Urgency.describe``, ``_summary``, ``_understood``); the mutants accepted as equivalent are in
tests/data/mutation_equivalent/pathway_text.json.
"""

from __future__ import annotations

import pytest
import yaml

from spinemets.knowledge.loader import KnowledgeBase, load_kb
from spinemets.pathway import pathway

RATIONALE_INDENT = " " * 7


class why:  # noqa: N801 - reads as a phrase in the expected lines
    """The rationale lines of a recommendation: the text of the statements it cites, indented under the study.

    Resolved when the test runs (``expand``), so that a knowledge base that does not load fails the test, not the
    collection."""

    def __init__(self, *statement_ids: str) -> None:
        self.ids = statement_ids

    def lines(self, kb: KnowledgeBase) -> list[str]:
        return [RATIONALE_INDENT + kb.statement(sid).text for sid in self.ids]


# What every adult with suspected cord compression and known cancer is told, from 'Now:' to the staging header
# (the management steps, the time limits per source and the spine studies with their reasons).
ADULT_MSCC_LINES = [
    "Now:",
    ("  1. Contact the MSCC coordinator or acute spinal team immediately: this is an oncological "
     "emergency. [3,4,5]"),
    ("  2. Give dexamethasone 16 mg as soon as possible, then 16 mg a day until surgery or radiotherapy; "
     "stop it if MRI rules out compression. [1,4,6,7,8]"),
    ("  3. If instability is possible, keep the patient flat and log-roll until the MRI is reported, and "
     "get specialist advice within 24 hours to keep immobilisation short. [4,5,6,7,9]"),
    "  4. Give analgesia promptly, escalating along the WHO ladder. [4,5,10]",
    ("  5. MRI of the whole spine as soon as possible, out of hours if treatment depends on it; never rely "
     "on radiographs. [1,3,4,8]"),
    ("  6. Agree definitive treatment with the spinal and oncology specialists; when surgery is not "
     "suitable, start radiotherapy within 24 hours of the decision. [3,6,10,11]"),
    ("Imaging urgency: with suspected cord compression, Lhermitte's sign, or radicular pain or deficit on "
     "both sides: emergency, within 12 hours (Dutch national guideline); with any neurological symptom or "
     "sign, or suspected cord or cauda equina compression: emergency, within 24 hours (NICE) (sources "
     "differ; each shown with its source)"),
    ("  1. [first line] MRI of the whole spine (sagittal T1 and/or STIR, sagittal T2, axial images through "
     "abnormalities), with IV contrast where it does not delay the study - ACR: usually appropriate "
     "[1,3,4,8,12]"),
    why("imaging.mri.nice_mscc_protocol", "contrast.caveat.nice_protocol_unenhanced",
        "imaging.mri.whole_spine_high_suspicion"),
    "  2. [alternative] MRI of the symptomatic spinal region without and with IV contrast [13,14]",
    why("imaging.mri.first_line"),
    "  3. [alternative] MRI of the symptomatic spinal region without IV contrast [13,14]",
    why("contrast.caveat.not_always_needed", "imaging.mri.noncontrast_low_epidural_risk",
        "imaging.acr.lbp_v7_usually_appropriate"),
    ("  4. [alternative] CT of the symptomatic spinal region with IV contrast (epidural disease) - ACR: "
     "may be appropriate [4,8,12,13]"),
    why("imaging.ct.when_mri_contraindicated"),
    "Staging (after the spine study):",
]

def expand(expected: list[str | why], kb: KnowledgeBase) -> list[str]:
    """The expected lines with each ``why`` replaced by its rationale lines."""
    return [line for item in expected for line in (item.lines(kb) if isinstance(item, why) else [item])]


CASES = [
    # Suspected cord compression with deficits in an adult with lung cancer: management first (NICE NG234 / BMJ
    # summary: contact, dexamethasone 16 mg, positioning, analgesia), whole-spine MRI within 24 h (NICE QS56) or
    # 12 h (Dutch guideline, Bollen 2018), each limit with its condition; ACR Myelopathy 2021; lung staging NICE NG122.
    pytest.param(
        {"age": 70, "sex": "male", "cancer_history": "current", "primary_site": "lung", "spinal_pain": True,
          "pain_region": "thoracic", "red_flags": [], "neuro_deficits": ["motor_weakness", "sphincter"],
          "suspected_cord_compression": True},
        "complete",
        "suspected spinal cord or cauda equina compression",
        ("Suspected spinal cord compression, emergency. Now: Contact the MSCC coordinator or acute spinal team "
         "immediately: this is an oncological emergency. Give dexamethasone 16 mg as soon as possible, then 16 "
         "mg a day until surgery or radiotherapy; stop it if MRI rules out compression. Imaging: MRI of the "
         "whole spine (sagittal T1 and/or STIR, sagittal T2, axial images through abnormalities), with IV "
         "contrast where it does not delay the study; with suspected cord compression, Lhermitte's sign, or "
         "radicular pain or deficit on both sides: emergency, within 12 hours (Dutch national guideline); with "
         "any neurological symptom or sign, or suspected cord or cauda equina compression: emergency, within "
         "24 hours (NICE)"),
        [
            ("Understood: age 70; male; current cancer (lung); spinal pain (thoracic); no red flags; neurological "
             "deficit: motor weakness, sphincter; suspected cord compression"),
            *ADULT_MSCC_LINES,
            "  5. [staging] Contrast-enhanced CT of the chest including the liver, adrenals and lower neck [15]",
            why("staging.lung.nice"),
            "  6. [staging] FDG-PET/CT [15,16,17]",
            why("staging.lung.nice"),
        ],
        id="cord_compression",
    ),
    # A one-sided radicular deficit: NICE gives 24 h for any neurology, the Dutch guideline grades it (24 h when
    # progressing within 7 days, 48 h over more than 7 days); three conditions, three limits.  Histology not stated.
    pytest.param(
        {"age": 64, "cancer_history": "current", "spinal_pain": True, "neuro_deficits": ["radicular"]},
        "complete",
        "suspected spinal cord or cauda equina compression",
        ("Suspected spinal cord compression, emergency. Now: Contact the MSCC coordinator or acute spinal team "
         "immediately: this is an oncological emergency. Give dexamethasone 16 mg as soon as possible, then 16 "
         "mg a day until surgery or radiotherapy; stop it if MRI rules out compression. Imaging: MRI of the "
         "whole spine (sagittal T1 and/or STIR, sagittal T2, axial images through abnormalities), with IV "
         "contrast where it does not delay the study; with any neurological symptom or sign, or suspected cord "
         "or cauda equina compression: emergency, within 24 hours (NICE); with a one-sided radicular deficit "
         "progressing within 7 days: emergency, within 24 hours (Dutch national guideline); with a one-sided "
         "radicular deficit progressing over more than 7 days: urgent, within 48 hours (Dutch national "
         "guideline)"),
        [
            "Understood: age 64; current cancer; spinal pain; neurological deficit: radicular",
            "Now:",
            ("  1. Contact the MSCC coordinator or acute spinal team immediately: this is an oncological "
             "emergency. [3,4,5]"),
            ("  2. Give dexamethasone 16 mg as soon as possible, then 16 mg a day until surgery or radiotherapy; "
             "stop it if MRI rules out compression. [1,4,6,7,8]"),
            ("  3. If instability is possible, keep the patient flat and log-roll until the MRI is reported, and "
             "get specialist advice within 24 hours to keep immobilisation short. [4,5,6,7,9]"),
            "  4. Give analgesia promptly, escalating along the WHO ladder. [4,5,10]",
            ("  5. MRI of the whole spine as soon as possible, out of hours if treatment depends on it; never rely "
             "on radiographs. [1,3,4,8]"),
            ("  6. Agree definitive treatment with the spinal and oncology specialists; when surgery is not "
             "suitable, start radiotherapy within 24 hours of the decision. [3,6,10,11]"),
            ("Imaging urgency: with any neurological symptom or sign, or suspected cord or cauda equina "
             "compression: emergency, within 24 hours (NICE); with a one-sided radicular deficit progressing "
             "within 7 days: emergency, within 24 hours (Dutch national guideline); with a one-sided radicular "
             "deficit progressing over more than 7 days: urgent, within 48 hours (Dutch national guideline) "
             "(sources differ; each shown with its source)"),
            ("  1. [first line] MRI of the whole spine (sagittal T1 and/or STIR, sagittal T2, axial images through "
             "abnormalities), with IV contrast where it does not delay the study - ACR: usually appropriate "
             "[1,3,4,8,12]"),
            why("imaging.mri.nice_mscc_protocol", "contrast.caveat.nice_protocol_unenhanced",
                "imaging.mri.whole_spine_high_suspicion"),
            "  2. [alternative] MRI of the symptomatic spinal region without and with IV contrast [13,14]",
            why("imaging.mri.first_line"),
            "  3. [alternative] MRI of the symptomatic spinal region without IV contrast [13,14]",
            why("contrast.caveat.not_always_needed", "imaging.mri.noncontrast_low_epidural_risk",
                "imaging.acr.lbp_v7_usually_appropriate"),
            ("  4. [alternative] CT of the symptomatic spinal region with IV contrast (epidural disease) - ACR: "
             "may be appropriate [4,8,12,13]"),
            why("imaging.ct.when_mri_contraindicated"),
        ],
        id="one_sided_radicular",
    ),
    # A new gait disturbance in breast cancer treated with spine SBRT: the emergency leads although inputs are
    # missing (NG234); the HER2 / triple-negative status (brain MRI) and the months since SBRT (pseudoprogression,
    # Amini 2016; fracture after SBRT, Sahgal 2013) are named.  No implant.
    pytest.param(
        {"age": 49, "sex": "female", "cancer_history": "current", "primary_site": "breast",
          "treatment_given": "sbrt", "spinal_pain": True, "pain_region": "thoracic", "red_flags": [],
          "neuro_deficits": ["gait"], "implanted_device": "none"},
        "insufficient_data",
        "suspected spinal cord or cauda equina compression",
        ("Suspected spinal cord compression, emergency. Now: Contact the MSCC coordinator or acute spinal team "
         "immediately: this is an oncological emergency. Give dexamethasone 16 mg as soon as possible, then 16 "
         "mg a day until surgery or radiotherapy; stop it if MRI rules out compression. Imaging: MRI of the "
         "whole spine (sagittal T1 and/or STIR, sagittal T2, axial images through abnormalities), with IV "
         "contrast where it does not delay the study; with suspected cord compression, Lhermitte's sign, or "
         "radicular pain or deficit on both sides: emergency, within 12 hours (Dutch national guideline); with "
         "any neurological symptom or sign, or suspected cord or cauda equina compression: emergency, within "
         "24 hours (NICE). Insufficient data for the rest: missing the HER2 status or whether the breast "
         "cancer is triple-negative, the months since treatment"),
        [
            ("Understood: age 49; female; current cancer (breast); treated with SBRT; spinal pain (thoracic); no "
             "red flags; neurological deficit: gait; patient group: After treatment of a spinal metastasis"),
            *ADULT_MSCC_LINES,
            "  5. [staging] Whole-body bone scan (add SPECT/CT for equivocal spinal findings) [15,16]",
            why("breast.back_pain.complete_staging"),
            "  6. [staging] CT of the chest, abdomen and pelvis with IV contrast [15,16]",
            why("breast.back_pain.complete_staging"),
        ],
        id="cord_compression_after_sbrt",
    ),
    # A child with neuroblastoma and a new deficit: emergency with the paediatric teams, no adult time limits
    # (SIOPEN, Sorrentino 2022; NG234 is written for adults).
    pytest.param(
        {"age": 6, "cancer_history": "current", "primary_site": "neuroblastoma", "spinal_pain": True,
          "neuro_deficits": ["gait"]},
        "complete",
        "child with neurological symptoms or signs",
        ("Suspected spinal cord compression, emergency. Now: Contact the paediatric spinal team, and "
         "paediatric oncology when cancer is known or possible, immediately and image at once; adult time "
         "limits are no reason to wait. Give analgesia promptly, escalating along the WHO ladder. Imaging: MRI "
         "of the complete spine without and with IV contrast; emergency"),
        [
            ("Understood: age 6; current cancer (neuroblastoma); spinal pain; neurological deficit: gait; patient "
             "group: Children and adolescents"),
            "Now:",
            ("  1. Contact the paediatric spinal team, and paediatric oncology when cancer is known or possible, "
             "immediately and image at once; adult time limits are no reason to wait. [1,2,3,4]"),
            "  2. Give analgesia promptly, escalating along the WHO ladder. [4,5,6]",
            "  1. [first line] MRI of the complete spine without and with IV contrast [1,2,3]",
            why("child.neuroblastoma_recovery"),
        ],
        id="child_neurological",
    ),
    # ACR Back Pain-Child, variant 1: no red flags, no initial imaging.
    pytest.param(
        {"age": 13, "sex": "male", "cancer_history": "none", "spinal_pain": True, "night_pain": False,
          "pain_duration_weeks": 2, "pain_progressive": False, "red_flags": [], "neuro_deficits": []},
        "complete",
        "child or adolescent with back pain",
        "imaging not indicated",
        [
            ("Understood: age 13; male; no cancer history; spinal pain; no red flags; no neurological deficit; "
             "patient group: Children and adolescents"),
            "  1. [not indicated] No imaging [1]",
            why("child.acr_no_red_flags"),
        ],
        id="child_no_red_flags",
    ),
    # ACR Back Pain-Child: the red flags decide, so each one not stated is named; nothing is recommended yet.
    pytest.param(
        {"age": 10, "spinal_pain": True, "neuro_deficits": [], "red_flags": []},
        "insufficient_data",
        "child or adolescent with back pain",
        ("insufficient data: missing whether there is night pain, how long the pain has lasted, whether the "
         "pain is getting worse, the cancer history"),
        [
            ("Understood: age 10; spinal pain; no red flags; no neurological deficit; patient group: Children and "
             "adolescents"),
        ],
        id="child_red_flags_not_stated",
    ),
    # Pregnancy (ACOG Committee Opinion 723, ACR on gadolinium in pregnancy): unenhanced MRI, no routine
    # gadolinium; staging by whole-body DWI MRI (Vandecaveye 2021) ahead of the ionising studies and their trade-off.
    pytest.param(
        {"age": 31, "sex": "female", "pregnant": True, "cancer_history": "current", "primary_site": "breast",
          "breast_triple_negative": True, "spinal_pain": True, "pain_region": "thoracic", "neuro_deficits": [],
          "red_flags": []},
        "complete",
        "spinal pain with suspected metastasis",
        ("MRI of the whole spine without IV contrast (sagittal T1 and STIR or T2, axial images through "
         "abnormalities); urgent, within 1 week (NICE), within 2 weeks (Dutch national guideline)"),
        [
            ("Understood: age 31; female; pregnant; current cancer (breast); triple-negative; spinal pain "
             "(thoracic); no red flags; no neurological deficit; patient group: Pregnancy"),
            "Now:",
            "  1. Contact the MSCC coordinator within 24 hours. [5]",
            ("  2. No routine steroids without neurological symptoms or signs (consider them only for severe pain "
             "or a haematological malignancy). [2,3,6]"),
            "  3. Give analgesia promptly, escalating along the WHO ladder. [2,7,8]",
            ("Imaging urgency: urgent, within 1 week (NICE), within 2 weeks (Dutch national guideline) (sources "
             "differ; each shown with its source)"),
            ("  1. [first line] MRI of the whole spine without IV contrast (sagittal T1 and STIR or T2, axial "
             "images through abnormalities) [2,3,6,9]"),
            why("imaging.mri.nice_mscc_protocol"),
            ("  2. [alternative] CT of the symptomatic spinal region without IV contrast (osseous integrity) "
             "[2,6,9,10,11,12,13,17,18,19]"),
            why("pregnancy.ionising_trade_off", "imaging.ct.when_mri_contraindicated",
                "imaging.ct.osseous_integrity"),
            "Staging (after the spine study):",
            "  3. [staging] Whole-body MRI with diffusion-weighted imaging, without gadolinium [19]",
            why("pregnancy.whole_body_dwi_staging"),
            ("  4. [staging alternative] Whole-body bone scan (add SPECT/CT for equivocal spinal findings) "
             "[9,14,15,17,18,19]"),
            why("pregnancy.ionising_trade_off", "breast.back_pain.complete_staging"),
            "  5. [staging alternative] CT of the chest, abdomen and pelvis with IV contrast [9,14,15,17,18,19]",
            why("pregnancy.ionising_trade_off", "breast.back_pain.complete_staging"),
        ],
        id="pregnancy",
    ),
    # No known cancer, steroids and a low-energy fall: ACR Low Back Pain 2021 variant 6, not the metastasis
    # pathway; the neurology is not recorded, and the radiograph-first result holds either way.
    pytest.param(
        {"age": 78, "sex": "female", "cancer_history": "none", "spinal_pain": True, "pain_region": "lumbar",
          "red_flags": ["chronic_steroid_use", "low_velocity_trauma"]},
        "insufficient_data",
        "no known cancer, suspected osteoporotic or insufficiency fracture",
        ("insufficient data: missing whether there is any neurological symptom or sign; holds either way: "
         "Radiographs of the spine"),
        [
            ("Understood: age 78; female; no cancer history; spinal pain (lumbar); red flags: chronic "
             "corticosteroid use, low-velocity trauma (for example a fall from standing height); patient group: No "
             "known cancer, suspected osteoporotic or insufficiency fracture"),
            "  1. [first line] Radiographs of the spine - ACR: usually appropriate [1,2,3]",
            why("fracture.acr_lbp_variant6"),
            ("  2. [alternative] MRI of the symptomatic spinal region without IV contrast - ACR: usually "
             "appropriate [1,3]"),
            why("fracture.acr_lbp_variant6"),
            ("  3. [alternative] CT of the symptomatic spinal region without IV contrast (osseous integrity) - "
             "ACR: usually appropriate [1,3,4]"),
            why("fracture.acr_lbp_variant6"),
        ],
        id="osteoporotic_fracture",
    ),
    # Myeloma: IMWG 2019 (whole-body low-dose CT) and NICE NG35 (whole-body MRI) first, no bone scan; steroids
    # once MRI confirms involvement (NG234); eGFR 38 is below the KDIGO threshold for iodinated contrast.
    pytest.param(
        {"age": 66, "cancer_history": "current", "primary_site": "multiple myeloma", "spinal_pain": True,
          "pain_region": "lumbar", "red_flags": [], "neuro_deficits": [], "egfr": 38},
        "complete",
        "spinal pain with suspected metastasis",
        ("MRI of the whole spine without and with IV contrast; urgent, within 1 week (NICE), within 2 weeks "
         "(Dutch national guideline)"),
        [
            ("Understood: age 66; eGFR 38 mL/min/1.73 m²; current cancer (multiple myeloma); spinal pain (lumbar); "
             "no red flags; no neurological deficit; patient group: Myeloma and plasma-cell disorders, Reduced "
             "kidney function"),
            "Now:",
            "  1. Contact the MSCC coordinator within 24 hours. [5]",
            ("  2. If MRI confirms spinal involvement by the haematological malignancy, give dexamethasone 16 mg "
             "as soon as possible (also without neurology) and agree further steroids with the haematology team. "
             "[2,6]"),
            "  3. Give analgesia promptly, escalating along the WHO ladder. [2,7,8]",
            ("Imaging urgency: urgent, within 1 week (NICE), within 2 weeks (Dutch national guideline) (sources "
             "differ; each shown with its source)"),
            "  1. [first line] MRI of the whole spine without and with IV contrast [1,2,9,10]",
            why("imaging.mri.whole_spine_high_suspicion", "imaging.mri.first_line"),
            ("  2. [alternative] MRI of the symptomatic spinal region without and with IV contrast - ACR: usually "
             "appropriate [9,10]"),
            why("imaging.mri.first_line"),
            ("  3. [alternative] MRI of the symptomatic spinal region without IV contrast - ACR: usually "
             "appropriate [9,10]"),
            why("contrast.caveat.not_always_needed", "imaging.mri.noncontrast_low_epidural_risk",
                "imaging.acr.lbp_v7_usually_appropriate"),
            ("  4. [alternative] CT of the symptomatic spinal region with IV contrast (epidural disease) - ACR: "
             "may be appropriate [2,6,9,10,11]"),
            why("imaging.ct.when_mri_contraindicated"),
            "Staging (after the spine study):",
            "  5. [staging] Whole-body low-dose CT [12,13]",
            why("myeloma.imwg_wbldct_first"),
            "  6. [staging] Whole-body MRI (or spine and pelvis MRI) for marrow and focal lesions [12,14]",
            why("myeloma.nice_wbmri_first"),
            "  7. [staging alternative] FDG-PET/CT (myeloma: solitary plasmacytoma work-up and response) [12,15,16,17]",
            why("myeloma.pet_for_response", "myeloma.plasmacytoma_whole_body"),
            "  8. [avoid] Whole-body bone scan (add SPECT/CT for equivocal spinal findings) [13,17,18,19]",
            why("myeloma.no_bone_scan"),
        ],
        id="myeloma",
    ),
    # Kidney failure on dialysis (ACR-NKF, Weinreb 2021 and Davenport 2020): every contrast threshold applies;
    # HER2-positive breast cancer without neurology, so no brain MRI.
    pytest.param(
        {"age": 58, "sex": "female", "cancer_history": "previous", "primary_site": "breast",
          "breast_her2_positive": True, "spinal_pain": True, "red_flags": [], "neuro_deficits": [], "egfr": 8,
          "on_dialysis": True},
        "complete",
        "spinal pain with suspected metastasis",
        ("MRI of the whole spine without and with IV contrast; urgent, within 1 week (NICE), within 2 weeks "
         "(Dutch national guideline)"),
        [
            ("Understood: age 58; female; eGFR 8 mL/min/1.73 m² on dialysis; previous cancer (breast); "
             "HER2-positive; spinal pain; no red flags; no neurological deficit; patient group: Reduced kidney "
             "function"),
            "Now:",
            "  1. Contact the MSCC coordinator within 24 hours. [5]",
            ("  2. No routine steroids without neurological symptoms or signs (consider them only for severe pain "
             "or a haematological malignancy). [2,3,6]"),
            "  3. Give analgesia promptly, escalating along the WHO ladder. [2,7,8]",
            ("Imaging urgency: urgent, within 1 week (NICE), within 2 weeks (Dutch national guideline) (sources "
             "differ; each shown with its source)"),
            "  1. [first line] MRI of the whole spine without and with IV contrast [1,2,9,10]",
            why("imaging.mri.whole_spine_high_suspicion", "imaging.mri.first_line"),
            ("  2. [alternative] MRI of the symptomatic spinal region without and with IV contrast - ACR: usually "
             "appropriate [9,10]"),
            why("imaging.mri.first_line"),
            ("  3. [alternative] MRI of the symptomatic spinal region without IV contrast - ACR: usually "
             "appropriate [9,10]"),
            why("contrast.caveat.not_always_needed", "imaging.mri.noncontrast_low_epidural_risk",
                "imaging.acr.lbp_v7_usually_appropriate"),
            ("  4. [alternative] CT of the symptomatic spinal region with IV contrast (epidural disease) - ACR: "
             "may be appropriate [2,6,9,10,11]"),
            why("imaging.ct.when_mri_contraindicated"),
            "Staging (after the spine study):",
            "  5. [staging] Whole-body bone scan (add SPECT/CT for equivocal spinal findings) [12,13]",
            why("breast.back_pain.complete_staging"),
            "  6. [staging] CT of the chest, abdomen and pelvis with IV contrast [12,13]",
            why("breast.back_pain.complete_staging"),
        ],
        id="dialysis",
    ),
    # An implant whose MR labelling is unknown (ASTM F2503: MR Conditional or MR Unsafe decides): the MRI-based
    # result is given only 'if MRI is possible'.
    pytest.param(
        {"age": 72, "sex": "male", "cancer_history": "previous", "primary_site": "prostate",
          "spinal_pain": True, "pain_region": "lumbar", "red_flags": [], "neuro_deficits": [],
          "implanted_device": "labelling_unknown"},
        "insufficient_data",
        "spinal pain with suspected metastasis",
        ("insufficient data: missing the implant's MR labelling; if MRI is possible: MRI of the whole spine "
         "without and with IV contrast, once the implant is identified and its MR labelling allows it (otherwise "
         "CT); urgent, within 1 week (NICE), within 2 weeks (Dutch national guideline)"),
        [
            ("Understood: age 72; male; previous cancer (prostate); spinal pain (lumbar); no red flags; no "
             "neurological deficit; implant: labelling unknown; patient group: Implanted devices"),
            "Now:",
            "  1. Contact the MSCC coordinator within 24 hours. [5]",
            ("  2. No routine steroids without neurological symptoms or signs (consider them only for severe pain "
             "or a haematological malignancy). [2,3,6]"),
            "  3. Give analgesia promptly, escalating along the WHO ladder. [2,7,8]",
            ("Imaging urgency: urgent, within 1 week (NICE), within 2 weeks (Dutch national guideline) (sources "
             "differ; each shown with its source)"),
            "  1. [first line] MRI of the whole spine without and with IV contrast [1,2,9,10,11,16]",
            why("implant.identify_before_mri", "imaging.mri.whole_spine_high_suspicion", "imaging.mri.first_line"),
            ("  2. [alternative] MRI of the symptomatic spinal region without and with IV contrast - ACR: usually "
             "appropriate [9,10,11,16]"),
            why("implant.identify_before_mri", "imaging.mri.first_line"),
            ("  3. [alternative] MRI of the symptomatic spinal region without IV contrast - ACR: usually "
             "appropriate [9,10,11,16]"),
            why("implant.identify_before_mri", "contrast.caveat.not_always_needed", "imaging.mri.noncontrast_low_epidural_risk",
                "imaging.acr.lbp_v7_usually_appropriate"),
            "  4. [alternative] CT of the whole spine with IV contrast (MRI not possible) [2,6,11]",
            why("imaging.ct.when_mri_contraindicated", "implant.ct_myelography_when_mri_impossible"),
            "Staging (after the spine study):",
            "  5. [staging] PSMA PET/CT [12]",
            why("staging.prostate.psma"),
            ("  6. [staging alternative] Whole-body bone scan (add SPECT/CT for equivocal spinal findings) "
             "[13,14,15]"),
            why("staging.prostate.conventional_first"),
            "  7. [staging alternative] CT of the chest, abdomen and pelvis with IV contrast [13,14]",
            why("staging.prostate.conventional_first"),
        ],
        id="implant_labelling_unknown",
    ),
    # An MR Conditional device: MRI within its conditions; cervical pain, so the lumbar ACR ratings are not shown.
    pytest.param(
        {"age": 67, "sex": "male", "cancer_history": "current", "primary_site": "lung", "spinal_pain": True,
          "pain_region": "cervical", "red_flags": [], "neuro_deficits": [],
          "implanted_device": "mr_conditional"},
        "complete",
        "spinal pain with suspected metastasis",
        ("MRI of the whole spine without and with IV contrast; urgent, within 1 week (NICE), within 2 weeks "
         "(Dutch national guideline)"),
        [
            ("Understood: age 67; male; current cancer (lung); spinal pain (cervical); no red flags; no "
             "neurological deficit; implant: MR conditional; patient group: Implanted devices"),
            "Now:",
            "  1. Contact the MSCC coordinator within 24 hours. [5]",
            ("  2. No routine steroids without neurological symptoms or signs (consider them only for severe pain "
             "or a haematological malignancy). [2,3,6]"),
            "  3. Give analgesia promptly, escalating along the WHO ladder. [2,7,8]",
            ("Imaging urgency: urgent, within 1 week (NICE), within 2 weeks (Dutch national guideline) (sources "
             "differ; each shown with its source)"),
            "  1. [first line] MRI of the whole spine without and with IV contrast [1,2,9,10]",
            why("imaging.mri.whole_spine_high_suspicion", "imaging.mri.first_line"),
            "  2. [alternative] MRI of the symptomatic spinal region without and with IV contrast [9,10]",
            why("imaging.mri.first_line"),
            "  3. [alternative] MRI of the symptomatic spinal region without IV contrast [9,10]",
            why("contrast.caveat.not_always_needed", "imaging.mri.noncontrast_low_epidural_risk",
                "imaging.acr.lbp_v7_usually_appropriate"),
            "  4. [alternative] CT of the symptomatic spinal region with IV contrast (epidural disease) [2,6,9,11]",
            why("imaging.ct.when_mri_contraindicated"),
            "Staging (after the spine study):",
            "  5. [staging] Contrast-enhanced CT of the chest including the liver, adrenals and lower neck [12]",
            why("staging.lung.nice"),
            "  6. [staging] FDG-PET/CT [12,13,14]",
            why("staging.lung.nice"),
        ],
        id="mr_conditional_device",
    ),
    # MRI impossible (reason not given, spinal instrumentation): CT of the whole spine (NG234 as summarised),
    # dual-energy CT near metal, CT myelography; earlier gadolinium reaction; renal cancer staging; eGFR 25.
    pytest.param(
        {"age": 64, "cancer_history": "current", "primary_site": "kidney", "spinal_pain": True,
          "red_flags": [], "neuro_deficits": [], "mri_contraindications": ["reason_not_given", "metal_artefact"],
          "contrast_concerns": ["reduced_renal_function", "prior_gadolinium_reaction"], "egfr": 25},
        "complete",
        "spinal pain with suspected metastasis",
        ("CT of the whole spine without IV contrast (MRI not possible); urgent, within 1 week (NICE), within 2 "
         "weeks (Dutch national guideline)"),
        [
            ("Understood: age 64; eGFR 25 mL/min/1.73 m²; current cancer (kidney); spinal pain; no red flags; no "
             "neurological deficit; MRI problem: MRI not possible (reason not given), metal artefact; contrast "
             "concern: reduced renal "
             "function, prior gadolinium reaction; patient group: Reduced kidney function"),
            "Now:",
            "  1. Contact the MSCC coordinator within 24 hours. [5]",
            ("  2. No routine steroids without neurological symptoms or signs (consider them only for severe pain "
             "or a haematological malignancy). [2,3,6]"),
            "  3. Give analgesia promptly, escalating along the WHO ladder. [2,7,8]",
            ("Imaging urgency: urgent, within 1 week (NICE), within 2 weeks (Dutch national guideline) (sources "
             "differ; each shown with its source)"),
            "  1. [first line] CT of the whole spine without IV contrast (MRI not possible) [2,6,9]",
            why("implant.ct_myelography_when_mri_impossible"),
            "  2. [alternative] Dual-energy CT or CT with metal-artefact reduction around the instrumentation [10,11]",
            why("imaging.ct.dual_energy_metal_artefact"),
            "  3. [alternative] CT myelography - ACR: may be appropriate [2,6,9,10,12,13,14]",
            why("implant.ct_myelography_when_mri_impossible", "imaging.ct_myelography.role",
                "imaging.ct_myelography.nice_rarely"),
            "Staging (after the spine study):",
            "  4. [staging] CT of the chest, abdomen and pelvis with IV contrast [15,16,17]",
            why("staging.lytic_bone_scan_misses"),
            ("  5. [staging alternative] Whole-body bone scan (add SPECT/CT for equivocal spinal findings) "
             "[15,16,17,18]"),
            why("staging.renal.bone_scan_with_pain", "staging.lytic_bone_scan_misses"),
        ],
        id="mri_impossible",
    ),
    # ASCO (Khatcheressian 2013): no routine imaging after curative treatment of breast cancer without symptoms.
    pytest.param(
        {"age": 55, "sex": "female", "cancer_history": "previous", "primary_site": "breast",
          "treatment_intent": "curative", "asymptomatic_surveillance": True, "spinal_pain": False,
          "neuro_deficits": []},
        "complete",
        "surveillance without symptoms",
        "imaging not indicated",
        [
            ("Understood: age 55; female; previous cancer (breast); treated with curative intent; no spinal pain; "
             "no neurological deficit; asymptomatic surveillance"),
            "  1. [not indicated] No imaging [1,2]",
            why("breast.surveillance.no_routine_imaging"),
        ],
        id="breast_survivor",
    ),
    # Surveillance without symptoms after another cancer: the knowledge base holds no recommendation.
    pytest.param(
        {"cancer_history": "previous", "primary_site": "colon", "treatment_intent": "curative",
          "asymptomatic_surveillance": True, "spinal_pain": False, "neuro_deficits": []},
        "complete",
        "surveillance without symptoms",
        "no recommendation",
        [
            ("Understood: previous cancer (colon); treated with curative intent; no spinal pain; no neurological "
             "deficit; asymptomatic surveillance"),
        ],
        id="colon_survivor",
    ),
    # Suspected cauda equina compression without a deficit and no known primary: the emergency leads; work-up
    # before biopsy (NICE CG104), bone sarcoma centre first when a primary bone tumour is possible (Gerrand 2016),
    # CT-guided biopsy (Michalopoulos 2021); ACR Low Back Pain 2021 variant 4 for the regional MRI.
    pytest.param(
        {"age": 62, "sex": "male", "unknown_primary": True, "spinal_pain": True,
          "red_flags": ["suspected_tumour", "unexplained_weight_loss"], "neuro_deficits": [],
          "suspected_cauda_equina": True},
        "insufficient_data",
        "suspected spinal cord or cauda equina compression",
        ("Suspected cauda equina compression, emergency. Now: Contact the MSCC coordinator or acute spinal team "
         "immediately: this is an oncological emergency. Without a deficit and without a tissue diagnosis, "
         "consider holding steroids until biopsy when lymphoma or another very steroid-sensitive tumour is "
         "possible. Imaging: MRI of the whole spine (sagittal T1 and/or STIR, sagittal T2, axial images "
         "through abnormalities), with IV contrast where it does not delay the study; with suspected cord "
         "compression, Lhermitte's sign, or radicular pain or deficit on both sides: emergency, within 12 "
         "hours (Dutch national guideline); with any neurological symptom or sign, or suspected cord or cauda "
         "equina compression: emergency, within 24 hours (NICE). Insufficient data for the rest: missing "
         "whether a primary bone tumour is possible"),
        [
            ("Understood: age 62; male; malignancy suspected, primary unknown; spinal pain; red flags: clinical "
             "suspicion of tumour involvement, unexplained weight loss; no neurological deficit; suspected cauda "
             "equina syndrome; patient group: Unknown primary"),
            "Now:",
            ("  1. Contact the MSCC coordinator or acute spinal team immediately: this is an oncological "
             "emergency. [3,4,5]"),
            ("  2. Without a deficit and without a tissue diagnosis, consider holding steroids until biopsy when "
             "lymphoma or another very steroid-sensitive tumour is possible. [6,7]"),
            ("  3. No routine steroids without neurological symptoms or signs (consider them only for severe pain "
             "or a haematological malignancy). [1,4,8]"),
            ("  4. If instability is possible, keep the patient flat and log-roll until the MRI is reported, and "
             "get specialist advice within 24 hours to keep immobilisation short. [4,5,6,9,10]"),
            "  5. Give analgesia promptly, escalating along the WHO ladder. [4,5,11]",
            ("  6. MRI of the whole spine as soon as possible, out of hours if treatment depends on it; never rely "
             "on radiographs. [1,3,4,8]"),
            ("  7. Agree definitive treatment with the spinal and oncology specialists; when surgery is not "
             "suitable, start radiotherapy within 24 hours of the decision. [3,9,11,12]"),
            ("Imaging urgency: with suspected cord compression, Lhermitte's sign, or radicular pain or deficit on "
             "both sides: emergency, within 12 hours (Dutch national guideline); with any neurological symptom or "
             "sign, or suspected cord or cauda equina compression: emergency, within 24 hours (NICE) (sources "
             "differ; each shown with its source)"),
            ("  1. [first line] MRI of the whole spine (sagittal T1 and/or STIR, sagittal T2, axial images through "
             "abnormalities), with IV contrast where it does not delay the study [1,3,4,8,13]"),
            why("imaging.mri.nice_mscc_protocol", "contrast.caveat.nice_protocol_unenhanced",
                "imaging.mri.whole_spine_high_suspicion"),
            ("  2. [alternative] MRI of the symptomatic spinal region without and with IV contrast - ACR: usually "
             "appropriate [14,15]"),
            why("imaging.mri.first_line"),
            ("  3. [alternative] MRI of the symptomatic spinal region without IV contrast - ACR: usually "
             "appropriate [14,15]"),
            why("contrast.caveat.not_always_needed", "imaging.mri.noncontrast_low_epidural_risk",
                "imaging.acr.lbp_v7_usually_appropriate"),
            "  4. [alternative] CT of the symptomatic spinal region with IV contrast (epidural disease) [4,8,13,14]",
            why("imaging.ct.when_mri_contraindicated"),
            "  5. [additional] Full-body CT (chest, abdomen and pelvis) to find the primary tumour [16]",
            why("imaging.unknown_primary.body_ct"),
            "  6. [additional] CT-guided biopsy for urgent histology [16,17,19,20,21]",
            why("unknown_primary.sarcoma_centre_first", "unknown_primary.biopsy_yield",
                "imaging.unknown_primary.histology", "imaging.unknown_primary.ct_guided_biopsy"),
            "Work-up:",
            ("  - Before biopsy: history and examination, blood tests, a myeloma screen when the lesions are "
             "lytic, and PSA in men [17,18]"),
            "  - If a primary bone tumour is possible, refer to a bone sarcoma centre before any biopsy [19]",
        ],
        id="unknown_primary",
    ),
    # Response after SBRT at 3 months (Costelloe 2010 response criteria; pseudoprogression, Amini 2016).
    pytest.param(
        {"cancer_history": "current", "primary_site": "kidney", "known_lesion_purpose": "response_assessment",
          "treatment_given": "sbrt", "months_since_treatment": 3, "treatment_intent": "palliative"},
        "complete",
        "known lesion",
        "MRI of the symptomatic spinal region without and with IV contrast; routine",
        [
            ("Understood: current cancer (kidney); treated with palliative intent; treated with SBRT, 3 months "
             "ago; known lesion, purpose: response assessment; patient group: After treatment of a spinal "
             "metastasis"),
            "  1. [first line] MRI of the symptomatic spinal region without and with IV contrast [1,2,3,4]",
            why("after_treatment.response_criteria", "imaging.mri.first_line"),
        ],
        id="after_sbrt",
    ),
    # Follow-up after conventional radiotherapy: response imaging, no SBRT-specific notices.
    pytest.param(
        {"cancer_history": "current", "primary_site": "breast", "known_lesion_purpose": "follow_up",
          "treatment_given": "conventional_radiotherapy"},
        "complete",
        "known lesion",
        "MRI of the symptomatic spinal region without and with IV contrast; routine",
        [
            ("Understood: current cancer (breast); treated with conventional radiotherapy; known lesion, purpose: "
             "follow up; patient group: After treatment of a spinal metastasis"),
            "  1. [first line] MRI of the symptomatic spinal region without and with IV contrast [1,2,3,4]",
            why("after_treatment.response_criteria", "imaging.mri.first_line"),
        ],
        id="after_radiotherapy",
    ),
]


@pytest.mark.parametrize("data,status,scenario,summary,lines", CASES)
def test_worked_example_reads_word_for_word(data, status, scenario, summary, lines):
    lines = expand(lines, load_kb())
    r = pathway(data)
    assert r.status == status
    assert r.summary == summary
    assert r.extra_lines() == lines
    assert r.to_text().startswith("\n".join([f"PATHWAY: {summary}", *lines, "", f"  scenario: {scenario}", ""]))


# --- draft time limits (an edited copy of the knowledge base) ---------------------------------------------------

PROSTATE_NO_NEURO = {"cancer_history": "previous", "primary_site": "prostate", "spinal_pain": True,
                     "pain_region": "lumbar", "red_flags": [], "neuro_deficits": []}
WINDOW_ROWS = ("neuro-dutch", "neuro-nice", "no_neuro-nice", "no_neuro-dutch", "radicular-progressing-fast-dutch",
               "radicular-progressing-slow-dutch")


def _kb_with_draft_windows(kb_copy, row_ids):
    path = kb_copy / "tables" / "urgency_windows.yaml"
    table = yaml.safe_load(path.read_text(encoding="utf-8"))
    rows = [r for r in table["rows"] if r["id"] in row_ids]
    assert len(rows) == len(row_ids)  # the rows this test edits still exist
    for row in rows:
        row["review_status"] = "draft"
    path.write_text(yaml.safe_dump(table, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return load_kb(kb_copy)


def test_a_draft_time_limit_is_flagged_in_the_detail_and_left_out_of_the_headline(kb_copy):
    kb = _kb_with_draft_windows(kb_copy, {"no_neuro-dutch"})
    r = pathway(PROSTATE_NO_NEURO, kb)
    assert r.summary == "MRI of the whole spine without and with IV contrast; urgent, within 1 week (NICE)"
    assert [line for line in r.extra_lines() if line.startswith("Imaging urgency")] == [
        "Imaging urgency: urgent, within 1 week (NICE), within 2 weeks (Dutch national guideline, DRAFT) "
        "(sources differ; each shown with its source)"]


def test_with_every_time_limit_a_draft_the_headline_names_the_urgency_in_words(kb_copy):
    kb = _kb_with_draft_windows(kb_copy, set(WINDOW_ROWS))
    r = pathway({k: v for k, v in PROSTATE_NO_NEURO.items() if k != "neuro_deficits"}, kb)
    assert r.summary == ("insufficient data: missing whether there is any neurological symptom or sign; holds "
                         "either way: MRI of the whole spine without and with IV contrast; depends on neurology")
    assert [line for line in r.extra_lines() if line.startswith("Imaging urgency")] == [
        "Imaging urgency: with suspected cord compression, Lhermitte's sign, or radicular pain or deficit on both "
        "sides: emergency, within 12 hours (Dutch national guideline, DRAFT); with any neurological symptom or "
        "sign, or suspected cord or cauda equina compression: emergency, within 24 hours (NICE, DRAFT); with "
        "spinal pain suggesting metastases and no neurological symptom or sign: urgent, within 1 week (NICE, "
        "DRAFT), within 2 weeks (Dutch national guideline, DRAFT) (sources differ; each shown with its source)"]
