"""The report pipeline's target matcher against medspaCy's TargetMatcher (spaCy's PhraseMatcher on NORM), which it
replaced for speed: the same rows at the same tokens on every report of every evaluation set, and on edge cases."""
from __future__ import annotations

import pytest

from spinemets.reports.pipeline import FINDINGS_GROUP, get_pipeline
from spinemets.reports.rules import load_rules
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def pipelines():
    """Our pipeline, and medspaCy's TargetMatcher built from the same rules over the same vocabulary."""
    from medspacy.target_matcher import TargetMatcher, TargetRule

    rules = load_rules()
    ours = get_pipeline(rules)
    theirs = TargetMatcher(ours.nlp, name="reference_targets", phrase_matcher_attr="NORM", result_type=None)
    theirs.add([TargetRule(phrase, row.label, metadata={"row": rid})
                for rid, row in rules.targets.items() for phrase in rules.target_phrases[rid]])
    return ours, theirs


def _found(ours, theirs, text):
    doc = ours._mark(ours.make_doc(text))
    reference = [(sp._.target_rule.metadata["row"], sp.start, sp.end, sp.label_) for sp in theirs(doc)]
    doc = ours.targets(doc)
    got = [(sp._.target_rule.metadata["row"], sp.start, sp.end, sp.label_) for sp in doc.spans[FINDINGS_GROUP]]
    return got, reference


def test_the_same_targets_as_medspacy_on_every_evaluation_report(pipelines):
    texts = [p.read_text(encoding="utf-8") for p in sorted((ROOT / "tests" / "data" / "reports").glob("*/*.txt"))]
    assert len(texts) > 700
    differ = []
    total = 0
    for text in texts:
        got, reference = _found(*pipelines, text)
        total += len(got)
        if got != reference:
            differ.append(text[:80])
    assert not differ, differ[:3]
    assert total > 5000  # the comparison saw real findings


@pytest.mark.parametrize("text", [
    "",
    "   \n\n  ",
    "T7",
    "lytic",  # a phrase at the very end of the text
    "Lytic lesion at T7.",
    "Tumour tumor TUMOUR: lesion lesion lesion",  # spelling variants share one norm
    "No epidural extension; epidural soft tissue at T11-T12 abutting the cord, cord compression at T12.",
    "Vertebra plana of L1 with retropulsion\n\nand\tlytic   destruction of the pedicle.",
])
def test_the_same_targets_as_medspacy_on_edge_cases(pipelines, text):
    got, reference = _found(*pipelines, text)
    assert got == reference


def test_a_finding_span_carries_its_row(pipelines):
    ours, _ = pipelines
    doc = ours("Lytic lesion at T7.")
    rows = [sp._.target_rule.metadata["row"] for sp in doc.spans[FINDINGS_GROUP]]
    assert rows and all(r in load_rules().targets for r in rows)
