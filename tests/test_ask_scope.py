"""The second scope check of ask: a question that resembles the questions ask declines more than its curated answer
topics is declined (hybrid mode), except where safety keeps it answered."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from spinemets.ask import ask
from spinemets.ask.scope import EXAMPLES, declined_examples, leave_out
from spinemets.knowledge.loader import load_kb
from spinemets.wording import internal_ids

ROOT = Path(__file__).resolve().parents[1]


def test_examples_file_is_what_the_build_script_gives():
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "build_scope_examples.py"), "--check"])
    assert done.returncode == 0, "run scripts/build_scope_examples.py: the file differs from the development sets"


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def test_examples_come_from_development_sets_only_never_a_hold_out():
    entries = yaml.safe_load(EXAMPLES.read_text(encoding="utf-8"))
    assert len(entries) >= 400
    assert {e["set"] for e in entries} <= {p.name for p in (ROOT / "tests" / "data").glob("ask_dev*.yaml")}
    held = {_norm(x["q"]) for p in (ROOT / "tests" / "data").glob("ask_holdout*.yaml")
            for x in yaml.safe_load(p.read_text(encoding="utf-8"))}
    assert not held & {_norm(e["q"]) for e in entries}


# Outside the scope in words no scope rule lists: lexical mode answers them, hybrid mode declines them.
NOVEL_OUTSIDE = [
    "How should I set up my desk to avoid back strain at work?",
    "Which running shoes reduce lower back impact?",
    "How long does recovery take after a lumbar spinal fusion for spondylolisthesis?",
    "How do I become a spine surgeon in the UK?",
]


@pytest.mark.parametrize("question", NOVEL_OUTSIDE)
def test_a_question_like_the_declined_ones_is_declined_in_hybrid_mode(question):
    assert not ask(question, lexical=True).declined  # the words alone do not place it outside
    r = ask(question)
    assert r.declined and "most like the questions ask does not cover" in r.decline_reason
    assert not internal_ids(r.to_text(), load_kb())
    assert r.nearest_topics  # what ask does cover, in words


@pytest.mark.parametrize("question", [
    # a deficit, cancer with a spinal symptom, or a child with spinal symptoms is always answered
    "How should I set up my desk? My back hurts and since yesterday both legs are weak and numb.",
    "Which running shoes reduce lower back impact? I had breast cancer and my back pain is getting worse at night.",
    "Which backpack should my 8 year old use? She wakes at night with back pain.",
    # the disease named
    "How long does recovery take after separation surgery for a spinal metastasis?",
])
def test_resemblance_never_declines_a_deficit_cancer_with_symptoms_a_child_or_the_disease(question):
    assert not ask(question).declined, question


@pytest.mark.parametrize("question", [
    "What is the role of MRI in suspected spinal metastases?",
    "Is an MRI needed for a new vertebral compression fracture in a woman with breast cancer?",
    "How is SINS calculated?",
    "Which imaging for a child with back pain at night?",
    "Can pregnant women have spine MRI?",
    "What does T1 hypointense marrow mean?",
    "Do I need dye for my scan?",
])
def test_in_scope_questions_are_not_declined_by_resemblance(question):
    assert not ask(question).declined, question


def test_leave_out_removes_a_sets_own_examples():
    from spinemets.ask.dense import Encoder
    from spinemets.ask.topics import topic_index_for

    ex = declined_examples()
    i = ex.sets.index("ask_dev10.yaml")
    vector = Encoder.encode([ex.questions[i]])[0]
    inside = topic_index_for(load_kb()).dense_matrix()
    seen = ex.resemblance(vector, inside)
    assert seen.outside > 0.6  # its own entry is among the nearest
    with leave_out("ask_dev10.yaml"):
        unseen = ex.resemblance(vector, inside)
    assert unseen.outside < seen.outside
    assert ex.resemblance(vector, inside).outside == seen.outside  # restored after the block


@pytest.mark.parametrize("question, topic", [
    # everyday words for the disease's words (development set 12): a caved-in vertebra, a sugar scan, a magnet scan,
    # a squashed cord, bone-marrow cancer
    ("If someone with cancer has a vertebra that's caved in, is it always the cancer that did it?",
     "fracture.known_cancer_fracture_malignant"),
    ("Glowing sugar scan or the magnet scan - which one is better at catching cancer in the spine?",
     "modalities.pet_vs_mri"),
    ("Oncology patient, suspected cord squash from their cancer. What steroid and how much before the scan?",
     "urgency.dexamethasone"),
    ("For staging bone-marrow cancer (plasma cells), what has replaced the old skeletal survey of X-rays?",
     "special_groups.myeloma_staging"),
])
def test_everyday_words_reach_their_answer(question, topic):
    for r in (ask(question), ask(question, lexical=True)):
        assert not r.declined and r.answer_topic == topic, (r.declined, r.answer_topic)


@pytest.mark.parametrize("question", [
    "Typical kVp for a lateral lumbar spine radiograph, and where do we centre?",
    "How do you position a patient for a swimmer's view of the cervicothoracic junction?",
    "Colorectal liver metastases: what is the maximum size for microwave ablation rather than resection?",
])
def test_radiography_technique_and_other_organs_metastases_are_declined_in_both_modes(question):
    assert ask(question).declined and ask(question, lexical=True).declined


@pytest.mark.parametrize("question", [
    "A small-bowel neuroendocrine tumour with liver metastases needs assessment for bone metastases. Which scan?",
    "Breast cancer with liver metastases and new back pain: what imaging for the spine?",
])
def test_metastases_elsewhere_beside_bone_or_spinal_ones_are_answered(question):
    assert not ask(question).declined and not ask(question, lexical=True).declined


# Found by the second review of the resemblance check: a symptom in everyday words was declined as "most like the
# questions ask does not cover" (a stated symptom now always skips it), and a deficit stated alone in the first person
# was declined for coverage before (the pathway now runs for it).
@pytest.mark.parametrize("question", [
    "Back pain after lifting at the gym and now my leg is dragging.",
    "Hurt my back at work and my leg keeps giving way.",
    "My back pain is unbearable and my legs don't work properly.",
    "My neck hurts after sleeping funny and now my arms are weak.",
    "I work at a desk and now my back hurts and I keep dropping things.",
    "Which mattress is best? My back hurts and I have started wetting the bed.",
    "My back hurts after gardening and my foot is slapping the ground when I walk.",
    "Trouble peeing and back pain, what now?",
    "Which stretches for back pain? My legs are getting weaker every day.",
    "My legs feel heavy and clumsy and I have a tight band round my chest.",
])
def test_a_deficit_in_everyday_words_gets_the_emergency_answer(question):
    r = ask(question)
    assert not r.declined, r.decline_reason
    assert "emergency" in r.direct_answer[0].text.lower()


def test_the_name_of_the_condition_in_a_first_person_errand_is_not_a_symptom():
    assert ask("Translate 'metastatic spinal cord compression' into Spanish and French for my leaflet.").declined


@pytest.mark.parametrize("question", [
    "What is the best scan to see if lung cancer has spread?",  # a close curated answer (declined by the first version)
])
def test_a_close_curated_answer_is_not_declined_by_resemblance(question):
    assert not ask(question).declined


@pytest.mark.parametrize("question, start, has, lacks", [
    # a deficit told in the first person now runs the pathway alone: its emergency answer must still fit the patient
    ("I have never had cancer. My back hurts and my leg is dragging.",
     "Suspected spinal cord compression is an emergency", ["acute spinal team"], ["MSCC coordinator"]),
    ("I am 30 weeks pregnant and my legs feel heavy and clumsy.",
     "Suspected spinal cord compression is an emergency", ["without IV contrast"], ["with IV contrast where"]),
    ("I am 15 and my legs feel weak and I keep tripping.",
     "Suspected spinal cord compression is an emergency", ["paediatric spinal team"], []),
    ("I have myeloma and my legs feel heavy and clumsy.",
     "Suspected spinal cord compression is an emergency", ["MSCC coordinator"], []),
])
def test_a_first_person_deficit_gets_the_emergency_answer_for_its_patient(question, start, has, lacks):
    r = ask(question)
    assert not r.declined
    first = r.direct_answer[0].text
    assert first.startswith(start), first
    for words in has:
        assert words in first, (words, first)
    for words in lacks:
        assert words not in first, (words, first)
