"""ESCC (Bilsky 2010; grade definitions in seed 003 and clinical-facts C1)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spinemets import escc
from spinemets.errors import ContradictoryInputError, InvalidInputError, SpinemetsError
from spinemets.scores.escc import FINDINGS

Y, N = True, False
# (findings, grade, high grade?) hand-checked against the definitions.
BY_FINDINGS = [
    (dict(epidural_disease=N), "0", False),
    (dict(epidural_disease=Y, thecal_sac_deformed=N), "1a", False),
    (dict(epidural_disease=Y, thecal_sac_deformed=Y, cord_abutted=N), "1b", False),
    (dict(epidural_disease=Y, thecal_sac_deformed=Y, cord_abutted=Y, cord_compressed=N), "1c", False),
    (dict(epidural_disease=Y, thecal_sac_deformed=Y, cord_abutted=Y, cord_compressed=Y, csf_visible=Y), "2", True),
    (dict(epidural_disease=Y, thecal_sac_deformed=Y, cord_abutted=Y, cord_compressed=Y, csf_visible=N), "3", True),
    # implied findings: compression implies abutment, deformation and epidural disease
    (dict(cord_compressed=Y, csf_visible=Y), "2", True),
    (dict(csf_visible=N), "3", True),
]


@pytest.mark.parametrize("findings,grade,high", BY_FINDINGS)
def test_grade_from_findings(findings, grade, high):
    r = escc(findings)
    assert r.status == "complete"
    assert r.grade == grade and r.high_grade is high
    assert r.derived_from == "findings"
    assert "bilsky-2010" in [ref.source_id for ref in r.references]


@pytest.mark.parametrize("stated,grade", [("0", "0"), ("1a", "1a"), ("1B", "1b"), ("Grade 1c", "1c"), (2, "2"), ("3", "3")])
def test_stated_grade(stated, grade):
    r = escc({"grade": stated})
    assert r.grade == grade and r.derived_from == "grade"
    assert r.severity == ("high" if grade in ("2", "3") else "low")


def test_grade_and_findings_agree():
    assert escc({"grade": "2", "cord_compressed": True}).grade == "2"


def test_1c_shows_both_views_with_sources():
    r = escc({"grade": "1c"})
    differ = [n for n in r.notices if n.code == "sources_differ"]
    assert len(differ) == 2
    assert {s for n in differ for s in n.sources} == {"seed-003", "radiopaedia-escc"}


@pytest.mark.parametrize(
    "findings,missing,possible",
    [
        ({"epidural_disease": True}, "escc.thecal_sac_deformed", ["1a", "1b", "1c", "2", "3"]),
        ({"thecal_sac_deformed": True, "cord_abutted": True}, "escc.cord_compressed", ["1c", "2", "3"]),
        ({"cord_compressed": True}, "escc.csf_visible", ["2", "3"]),
        ({"csf_visible": True}, "escc.epidural_disease", ["0", "1a", "1b", "1c", "2", "3"]),
    ],
)
def test_insufficient_findings(findings, missing, possible):
    r = escc(findings)
    assert r.status == "insufficient_data"
    assert r.missing == [missing] and r.possible_grades == possible and r.grade is None


def test_nothing_given():
    r = escc({})
    assert r.status == "insufficient_data"
    assert r.missing == ["escc.grade or escc.epidural_disease"]


@pytest.mark.parametrize(
    "findings,message",
    [
        ({"epidural_disease": False, "cord_compressed": True},
         "contradictory input (escc.epidural_disease, escc.cord_compressed): spinal cord compressed is present but epidural disease is absent"),
        ({"thecal_sac_deformed": False, "cord_abutted": True},
         "contradictory input (escc.thecal_sac_deformed, escc.cord_abutted): spinal cord abutted is present but thecal sac deformed is absent"),
        ({"cord_compressed": False, "csf_visible": False},
         "contradictory input (escc.csf_visible, escc.cord_compressed): no CSF visible around the cord requires a compressed cord"),
        ({"grade": "2", "epidural_disease": False},
         "contradictory input (escc.grade, escc.epidural_disease): grade 2 does not fit the findings, which allow 0"),
        ({"grade": "1a", "cord_compressed": True},
         "contradictory input (escc.grade, escc.cord_compressed): grade 1a does not fit the findings, which allow 2, 3"),
    ],
)
def test_contradictions(findings, message):
    with pytest.raises(ContradictoryInputError) as exc:
        escc(findings)
    assert str(exc.value) == message


@pytest.mark.parametrize(
    "grade,message",
    [
        ("1", "escc.grade: '1' is not a complete ESCC grade; give 1a, 1b or 1c"),
        ("4", "escc.grade: '4' is not an ESCC grade; allowed values: 0, 1a, 1b, 1c, 2, 3"),
        ("2b", "escc.grade: '2b' is not an ESCC grade; allowed values: 0, 1a, 1b, 1c, 2, 3"),
        (True, "escc.grade: True is not an ESCC grade; allowed values: 0, 1a, 1b, 1c, 2, 3"),
    ],
)
def test_invalid_grade(grade, message):
    with pytest.raises(InvalidInputError) as exc:
        escc({"grade": grade})
    assert str(exc.value) == message


@settings(max_examples=300, deadline=None)
@given(st.fixed_dictionaries({k: st.sampled_from([True, False, None]) for k in FINDINGS}))
def test_findings_never_crash_and_grade_consistent(f):
    try:
        r = escc(f)
    except ContradictoryInputError:
        return
    if r.status == "complete":
        assert r.grade in r.possible_grades
        # the stated grade alone re-derives the same severity
        assert escc({"grade": r.grade}).high_grade == r.high_grade
        # and the grade agrees with the findings
        assert escc({**f, "grade": r.grade}).grade == r.grade


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["grade", *FINDINGS, "x"]),
                       st.one_of(st.none(), st.text(max_size=5), st.integers(-2, 5), st.booleans())))
def test_arbitrary_input_raises_only_our_errors(data):
    try:
        escc(data)
    except SpinemetsError:
        pass
