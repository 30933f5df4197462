"""Input names in clinical words, for everything a person reads.

Field paths (``pathway.neuro_deficits``, ``probability.tests[0].result``) stay in the machine-readable parts of
results and errors (``missing``, ``fields``); the text a clinician reads names the same input in words.  This
module is presentation only: it holds no clinical fact.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# Inputs whose absence a result names: what is missing, phrased as what to find out.
MISSING_LABELS = {
    "pathway.neuro_deficits": "whether there is any neurological symptom or sign",
    "fracture.known_cancer": "whether the patient has known cancer",
    "pathway.spinal_pain": "whether there is spinal pain",
    "pathway.cancer_history": "the cancer history",
    "pathway.red_flags": "the red flags (assessed, none, or which)",
    "pathway.treatment_intent": "the treatment intent (curative or palliative)",
    "pathway.egfr": "the eGFR",
    "pathway.primary_site": "the primary tumour (one site)",
    "pathway.implanted_device": "the implant's MR labelling",
    "pathway.age": "the patient's age",
    "pathway.adult": "whether the patient is an adult",
    "pathway.breast_her2_positive": "the HER2 status",
    "pathway.breast_triple_negative": "whether the breast cancer is triple-negative",
    "pathway.brain_symptoms": "whether there is a new headache or another brain symptom",
    "pathway.spinal_hardware": "whether there is spinal instrumentation near the region",
    "pathway.known_lesion_purpose": "the purpose of imaging a known lesion",
    "pathway.primary_bone_tumour_possible": "whether a primary bone tumour is possible",
    "pathway.months_since_treatment": "the months since treatment",
    "pathway.night_pain": "whether there is night pain",
    "pathway.pain_duration_weeks": "how long the pain has lasted",
    "pathway.pain_progressive": "whether the pain is getting worse",
    "prognosis.primary": "the primary tumour",
    "prognosis.karnofsky": "the Karnofsky performance status",
    "prognosis.vertebral_metastases": "the number of vertebrae with metastases",
    "prognosis.extraspinal_bone_metastases": "the number of bone metastases outside the spine",
    "prognosis.organ_metastases": "whether there are metastases to major internal organs, and whether removable",
    "prognosis.visceral_metastases": "whether there are visceral metastases, and whether treatable",
    "prognosis.frankel": "the Frankel grade",
    "prognosis.ambulation": "whether the patient walks independently",
    "prognosis.albumin_g_dl": "the serum albumin",
}
# Short names of inputs, for "understood from the question" and other lists of values.
NAME_LABELS = {
    # measurements and findings named by their code in results (quantitative, marrow)
    "sir": "signal intensity ratio (opposed/in phase)",
    "drop_percent": "signal drop (%)",
    "dixon_fat_fraction_percent": "Dixon fat fraction (%)",
    "adc": "ADC",
    "ct_mean_hu": "CT mean attenuation (HU)",
    "ct_max_hu": "CT maximum attenuation (HU)",
    "crosses_disc_space": "crosses the disc space",
    "opposed_phase": "opposed-phase signal",
    "in_phase": "in-phase signal",
    "t1_gd_fs": "fat-suppressed T1 after gadolinium",
    "pathway.neuro_deficits": "neurological deficits",
    "pathway.egfr": "eGFR",
    "pathway.breast_her2_positive": "HER2-positive",
    "pathway.breast_triple_negative": "triple-negative",
    "pathway.brain_symptoms": "new headache or brain symptoms",
    "pathway.spinal_hardware": "spinal instrumentation",
    "pathway.mri_contraindications": "MRI contraindications",
    "pathway.implanted_device": "implanted device",
    "pathway.treatment_given": "treatment given",
    "probability.pre_test": "pre-test probability",
    "noms.escc_grade": "ESCC grade",
    "noms.sins_total": "SINS total",
    "noms.fit_for_surgery": "fit for surgery",
    # items of the prognostic scores
    "general_condition": "general condition",
    "extraspinal_bone_metastases": "extraspinal bone metastases",
    "vertebral_body_metastases": "vertebral body metastases",
    "internal_organ_metastases": "metastases to major internal organs",
    "primary_site": "primary site",
    "palsy": "palsy",
    "primary_tumour": "primary tumour",
    "visceral_metastases": "visceral metastases",
    "bone_metastases": "bone metastases",
    "lung_cancer": "lung cancer",
    "favourable_primary": "favourable primary",
    "skeletal_metastases": "skeletal metastases",
    "modified_bauer": "modified Bauer score",
    "ambulation": "walking",
    "albumin": "serum albumin",
}
INSTRUMENTS = {
    "sins": "SINS", "escc": "ESCC", "noms": "NOMS", "probability": "post-test probability", "fracture": "fracture",
    "marrow": "marrow signal", "quantitative": "quantitative", "primaries": "likely primaries", "extract": "report",
    "prognosis": "prognostic scores",
}
_INDEX = re.compile(r"\[(\d+)\]")


def _plain(path: str) -> str:
    """'probability.tests[0].result' -> 'post-test probability test 1 result'; 'pathway.primary_site' -> 'primary site'."""
    head, _, rest = path.partition(".")
    if not rest:
        return path.replace("_", " ")
    rest = _INDEX.sub(lambda m: f" {int(m.group(1)) + 1}", rest)
    rest = rest.replace("tests ", "test ").replace(".", " ").replace("_", " ")
    rest = re.sub(r"\s+", " ", rest).strip()
    label = INSTRUMENTS.get(head)
    return f"{label} {rest}" if label else rest


def field_name(path: str) -> str:
    """The short name of an input, in words."""
    return NAME_LABELS.get(path) or _plain(path)


def missing_in_words(missing: Iterable[str]) -> list[str]:
    """Each missing input (a field path, or 'a or b') in words."""
    out = []
    for item in missing:
        parts = [p.strip() for p in item.split(" or ")]
        out.append(" or ".join(MISSING_LABELS.get(p) or _plain(p) for p in parts))
    return out


# --- internal identifiers: what must never reach a person ---------------------------------------------------

_FIELD_PATH = re.compile(r"\b(pathway|sins|escc|noms|probability|fracture|marrow|quantitative|prognosis|case|spinemets)\.[a-z_]+\b")
_SEED = re.compile(r"\bseeds? ?-?0\d\d\b", re.I)
_ID_TOKEN = re.compile(r"[a-z0-9_]+(?:\.[a-z0-9_\-]+)+")


def internal_ids(text: str, kb: object) -> list[str]:
    """Field paths, knowledge-base ids (statements, table rows, answer topics) and seed numbers found in *text*."""
    ids = _kb_ids(kb)
    found = [m.group(0) for m in _FIELD_PATH.finditer(text)]
    found += [t for t in _ID_TOKEN.findall(text) if t in ids]
    found += _SEED.findall(text)
    return found


_ID_CACHE: dict[int, frozenset[str]] = {}


def _kb_ids(kb: object) -> frozenset[str]:
    key = id(kb)
    if key not in _ID_CACHE:
        ids = set(getattr(kb, "statements", {})) | set(getattr(kb, "answer_topics", {}))
        for tid, table in getattr(kb, "tables", {}).items():
            ids.update(f"{tid}.{r.id}" for r in table.rows)
        _ID_CACHE[key] = frozenset(ids)
    return _ID_CACHE[key]
