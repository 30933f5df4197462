"""Pre-filling SINS, ESCC, the fracture differential and the marrow signal from a report (reports/prefill.py).

Report sentences in radiologists' wording go through the public ``extract``; each test asserts the value
pre-filled, the note a clinician reads when it stays empty (a wrong pre-fill is worse than an empty one), the
phrases it came from and the notices exactly.  The thresholds are those of the sources: SINS collapse over or
under 50% (Fisher 2010; exactly 50% decides neither, ``sins.caveat.exactly_fifty_percent``), Genant grades
(mild and moderate under 40%, severe over 40%: ``fracture.genant_grading``), ESCC grades (Bilsky 2010).
"""

from __future__ import annotations

import pytest

from spinemets.errors import InvalidInputError
from spinemets.reports.extract import extract

CONFIRM = ("Every pre-filled value comes from the report's wording: confirm or edit each one before scoring; what "
           "the report does not state stays unknown.")
PAIN = "Pain is a clinical SINS component: it is never read from the report; give it to complete the score."
FIFTY = ("A collapse of 50% fits neither SINS category (more or less than 50%); it was left for you to decide.")
SEVERE = ("\"Severe\" height loss (Genant grade 3, over 40%) does not decide between less and more than 50% "
          "collapse; it was left for you to decide.")
BENIGN = "the report's diagnoses are benign (no neoplastic lesion stated or suspected); {} grades spinal neoplasms"
NOTHING = "the report describes no lesion or fracture to pre-fill for"
NO_FRACTURE = "no fracture or collapse is stated at the index level"


def got(r, instrument: str, field: str):
    """(value, note, the phrases it came from) of one pre-filled field; absent fields read as unknown."""
    p = getattr(r.prefill, instrument).get(field)
    return (None, None, []) if p is None else (p.value, p.note, [e.text for e in p.evidence])


def codes(r) -> list[str]:
    return [n.code for n in r.notices]


def notice(r, code: str):
    return next(n for n in r.notices if n.code == code)


def shown(r) -> list[tuple]:
    """The components a clinician reads: name, value and note, in order."""
    return [(c.name, c.value, c.note) for c in r.components]


def component(r, name: str):
    return next(c for c in r.components if c.name == name)


# --- SINS collapse ----------------------------------------------------------------------------------------------

DEGREE = "collapse stated without its degree"


@pytest.mark.parametrize("sentence,expected,extra", [
    # percentages of height lost, either side of the 50% cut-off
    (" with 60% loss of height.", ("gt50", None, ["60% loss of height"]), []),
    (" with 40% loss of height.", ("lt50", None, ["40% loss of height"]), []),
    (" with 50.5% loss of height.", ("gt50", None, ["50.5% loss of height"]), []),
    (" with 49.5% loss of height.", ("lt50", None, ["49.5% loss of height"]), []),
    # a comparison decides only when it lies wholly on one side of 50%
    (" with more than 50% collapse.", ("gt50", None, ["50% collapse"]), []),
    (" with less than 50% loss of height.", ("lt50", None, ["50% loss of height"]), []),
    (" with more than 40% collapse.", (None, DEGREE, ["40% collapse"]), []),
    (" with less than 70% loss of height.", (None, DEGREE, ["70% loss of height"]), []),
    (" with loss of more than two thirds of its height.", ("gt50", None, ["two thirds of its height"]), []),
    (" with more than half of the height lost.", ("gt50", None, ["half of the height"]), []),
    (" with 30-60% loss of height.", (None, DEGREE, ["30-60% loss of height"]), []),
    # a remaining height is turned into the height lost
    ("; the vertebral body height is reduced to 40%.", ("gt50", None, ["vertebral body height is reduced to 40%"]), []),
    # exactly 50% decides neither category
    (" with 50% collapse.", (None, "50% collapse: neither category", ["50% collapse"]), ["collapse_fifty"]),
    (" with about 50% loss of height.", (None, "50% collapse: neither category", ["50% loss of height"]),
     ["collapse_fifty"]),
    ("; the vertebral body height is reduced to 50%.",
     (None, "50% collapse: neither category", ["vertebral body height is reduced to 50%"]), ["collapse_fifty"]),
    # degrees: Genant mild and moderate are under 50%, complete collapse and vertebra plana over it
    (" with minimal height loss.", ("lt50", None, ["minimal height loss"]), []),
    (" with mild height loss.", ("lt50", None, ["mild height loss"]), []),
    (" with moderate height loss.", ("lt50", None, ["moderate height loss"]), []),
    (" with complete collapse.", ("gt50", None, ["complete collapse"]), []),
    (" with vertebra plana.", ("gt50", None, ["vertebra plana"]), []),
    (" with severe height loss.", (None, "severe: over 40%, which decides neither category", ["severe height loss"]),
     ["collapse_severe"]),
    # a stated percentage decides over "severe"; a stated 50% still decides nothing
    (" with severe height loss and 60% collapse.", ("gt50", None, ["60% collapse"]), []),
    (" with severe height loss and 50% collapse.", (None, "50% collapse: neither category", ["50% collapse"]),
     ["collapse_fifty"]),
    # both sides stated
    (" with moderate height loss and 60% collapse.",
     (None, "the report gives both more and less than 50%", ["60% collapse", "moderate height loss"]), []),
    # a collapse without its degree
    (" with a pathological fracture.", (None, DEGREE, ["pathological fracture"]), []),
    # an uncertain collapse pre-fills nothing
    (", possibly with 60% collapse.", (None, None, []), []),
])
def test_collapse(sentence, expected, extra):
    r = extract("Lytic metastasis at T7" + sentence)
    assert got(r, "sins", "collapse") == expected
    assert codes(r) == ["confirm", *extra, "pain"]
    assert r.prefill.inputs["sins"] == {"level": "T7", "lesion": "lytic",
                                        **({"collapse": expected[0]} if expected[0] else {})}
    assert ("sins.collapse" in r.missing) is (expected[0] is None)
    # a stated collapse or height loss at the index level opens the fracture differential
    assert r.prefill.applies["fracture"] is bool(expected[2])
    if expected[2]:
        words = "; ".join(f'"{w}"' for w in expected[2])
        note = f"from {words}" + (f" - {expected[1]}" if expected[1] else "")
        assert (component(r, "sins.collapse").value, component(r, "sins.collapse").note) == (expected[0], note)
    else:
        assert "sins.collapse" not in [c.name for c in r.components]


def test_vertebral_body_height_alone_says_nothing_about_collapse():
    r = extract("Lytic metastasis at T7. Vertebral body height is reduced.")
    assert got(r, "sins", "collapse") == (None, None, [])
    assert "sins.collapse" in r.missing and r.prefill.applies["fracture"] is False
    r = extract("Lytic metastasis at T7. Vertebral body height is reduced. There is 60% collapse.")
    assert got(r, "sins", "collapse") == ("gt50", None, ["60% collapse"])


def test_collapse_notices_say_why_the_value_stays_empty_and_cite_the_caveat():
    fifty = notice(extract("Lytic metastasis at T7 with 50% collapse."), "collapse_fifty")
    assert (fifty.message, fifty.kb_items) == (FIFTY, ["sins.caveat.exactly_fifty_percent"])
    severe = notice(extract("Lytic metastasis at T7 with severe height loss."), "collapse_severe")
    assert (severe.message, severe.kb_items) == (SEVERE, ["fracture.genant_grading"])


def test_collapse_at_another_level_or_in_doubt_prefills_nothing():
    r = extract("Lytic metastasis at T7. Compression fracture at L2 with 60% loss of height.", level="T7")
    assert got(r, "sins", "collapse") == (None, None, [])
    assert r.prefill.applies["fracture"] is False and r.prefill.why_not["fracture"] == NO_FRACTURE


@pytest.mark.parametrize("text,expected", [
    ("Lytic metastasis replacing the entire T7 vertebral body. No collapse.",
     ("involved_no_collapse", None, ["No collapse", "entire T7 vertebral body"])),
    ("Lytic metastasis at T7 occupying about 80% of the vertebral body. No collapse.",
     ("involved_no_collapse", None, ["No collapse", "80% of the vertebral body"])),
    ("Small lytic metastasis at T7. No collapse.", ("none", None, ["No collapse", "Small"])),
    ("Lytic metastasis at T7 occupying about 30% of the vertebral body. No collapse.",
     ("none", None, ["No collapse", "30% of the vertebral body"])),
    ("Lytic metastasis at T7 occupying 30% of the vertebral body. Small lytic metastasis. No collapse.",
     ("none", '"Small" not used: the report states how much of the body is involved',
      ["No collapse", "30% of the vertebral body"])),
    # how much of the body is involved is not stated, or is exactly half, or is given both ways
    ("Lytic metastasis at T7. No collapse.",
     (None, "no collapse stated, but not how much of the body is involved", ["No collapse"])),
    ("Lytic metastasis at T7 occupying 50% of the vertebral body. No collapse.",
     (None, "no collapse stated, but not how much of the body is involved", ["No collapse"])),
    ("Lytic metastasis at T7 occupying more than 40% of the vertebral body. No collapse.",
     (None, "no collapse stated, but not how much of the body is involved", ["No collapse"])),
    ("No epidural extension. Lytic metastasis replacing the entire T7 vertebral body. No collapse.",
     ("involved_no_collapse", None, ["No collapse", "entire T7 vertebral body"])),
    # an extent in doubt or denied is not used
    ("Lytic metastasis at T7, possibly replacing the entire vertebral body. No collapse.",
     (None, "no collapse stated, but not how much of the body is involved", ["No collapse"])),
    ("Lytic metastasis at T7, not involving the entire vertebral body. No collapse.",
     (None, "no collapse stated, but not how much of the body is involved", ["No collapse"])),
    # a bare size word ("small") gives way to a stated share of the body, with a note saying so
    ("Small lytic metastasis at T7. Lytic metastasis replacing the entire T7 vertebral body. No collapse.",
     ("involved_no_collapse", '"Small" not used: the report states how much of the body is involved',
      ["No collapse", "entire T7 vertebral body"])),
    # two stated shares that disagree decide nothing
    ("Lytic metastasis at T7 occupying a third of the body. Lytic metastasis replacing the entire T7 vertebral body. "
     "No collapse.",
     (None, 'the report states more than one value: lt50 ("a third of the body"); gt50 ("entire T7 vertebral body")',
      ["No collapse", "a third of the body", "entire T7 vertebral body"])),
])
def test_no_collapse_follows_how_much_of_the_body_is_involved(text, expected):
    r = extract(text)
    assert got(r, "sins", "collapse") == expected
    assert r.prefill.applies["fracture"] is False  # a share of the body involved is not a collapse
    assert codes(r) == ["confirm", "pain"]


def test_no_collapse_components_cite_the_extent_they_used():
    c = component(extract("Small lytic metastasis at T7. No collapse."), "sins.collapse")
    assert (c.value, c.note) == ("none", 'from "No collapse"; "Small"')
    assert c.kb_items == ["report_targets.no-collapse-phrase", "report_targets.extent-under-half"]
    assert c.sources == ["fisher-2010"] and c.refs == [1]


# --- SINS lesion, alignment, posterolateral ---------------------------------------------------------------------------


@pytest.mark.parametrize("text,expected", [
    ("Lytic metastasis at T7.", ("lytic", None, ["Lytic metastasis"])),
    ("Sclerotic metastasis at T7.", ("blastic", None, ["Sclerotic metastasis"])),
    ("Lytic and sclerotic metastasis at T7.", ("mixed", None, ["Lytic and sclerotic"])),
    ("Lytic lesion at T7. Sclerotic lesion at T7.",
     ("mixed", "lytic and blastic both stated", ["Lytic lesion", "Sclerotic lesion"])),
    ("Mixed lytic/sclerotic lesion at T7. Lytic component at T7.",
     ("mixed", None, ["Mixed lytic/sclerotic", "Lytic component"])),
    ("Mixed lytic/sclerotic lesion at T7. Lytic component at T7. Sclerotic component at T7.",
     ("mixed", None, ["Mixed lytic/sclerotic", "Lytic component", "Sclerotic"])),
])
def test_lesion(text, expected):
    assert got(extract(text), "sins", "lesion") == expected


def test_lesion_both_stated_component():
    r = extract("Lytic lesion at T7. Sclerotic lesion at T7.")
    c = component(r, "sins.lesion")
    assert (c.value, c.note) == ("mixed", 'from "Lytic lesion"; "Sclerotic lesion" - lytic and blastic both stated')
    assert c.kb_items == ["report_targets.lesion-lytic", "report_targets.lesion-blastic"]
    assert c.sources == ["fisher-2010", "seed-003"]


@pytest.mark.parametrize("text,expected", [
    ("Lytic metastasis at T7. Alignment is normal.", ("normal", None, ["Alignment is normal"])),
    ("Lytic metastasis at T7 with focal kyphosis.", ("deformity", None, ["focal kyphosis"])),
    ("Lytic metastasis at T7 with focal kyphosis. Alignment is normal.",
     ("deformity", "normal alignment also stated", ["focal kyphosis"])),
    ("Lytic metastasis at T7 with anterolisthesis and kyphosis.", ("subluxation", None, ["anterolisthesis"])),
    ("Lytic metastasis at T7 with anterolisthesis. Alignment is normal.",
     ("subluxation", "normal alignment also stated", ["anterolisthesis"])),
])
def test_alignment_takes_the_worst_stated(text, expected):
    assert got(extract(text), "sins", "alignment") == expected


@pytest.mark.parametrize("text,expected", [
    ("Lytic metastasis at T7 extending into the left pedicle and left facet joint.",
     ("unilateral", None, ["left pedicle", "left facet joint"])),
    ("Lytic metastasis at T7 involving the left pedicle and the right facet joint.",
     ("bilateral", None, ["left pedicle", "right facet joint"])),
    ("Lytic metastasis at T7 extending into both pedicles.", ("bilateral", None, ["both pedicles"])),
    ("Lytic metastasis at T7 with pedicle involvement.",
     (None, "posterolateral involvement stated without its side", ["pedicle involvement"])),
    ("Lytic metastasis at T7 with pedicle involvement. The posterior elements are spared.",
     (None, "posterolateral involvement stated without its side", ["pedicle involvement"])),
    ("Lytic metastasis at T7. The posterior elements are spared.", ("none", None, ["posterior elements are spared"])),
    ("Lytic metastasis at T7. The pedicles are spared.",
     ("none", "read from both pedicles stated free; the facets and costovertebral joints are not named",
      ["pedicles are spared"])),
    ("Lytic metastasis at T7, possibly extending into the left pedicle.", (None, None, [])),
])
def test_posterolateral(text, expected):
    r = extract(text)
    assert got(r, "sins", "posterolateral") == expected
    assert ("sins.posterolateral" in r.missing) is (expected[0] is None)


def test_posterolateral_component_cites_its_rows():
    c = component(extract("Lytic metastasis at T7 extending into the left pedicle and left facet joint."),
                  "sins.posterolateral")
    assert (c.value, c.note) == ("unilateral", 'from "left pedicle"; "left facet joint"')
    assert c.kb_items == ["report_targets.posterior-pedicle", "report_targets.posterior-facet"]
    assert c.sources == ["fisher-2010", "cuenod-1996", "seed-003"]


# --- SINS level and pain --------------------------------------------------------------------------------------------


def test_whole_sins_prefill_of_a_worked_sentence():
    r = extract("Lytic metastasis at T7 with 60% loss of height, focal kyphosis and extension into both pedicles.",
                pain="Mechanical")
    assert r.prefill.inputs["sins"] == {"level": "T7", "pain": "mechanical", "lesion": "lytic", "collapse": "gt50",
                                        "alignment": "deformity", "posterolateral": "bilateral"}
    assert got(r, "sins", "level") == ("T7", None, []) and got(r, "sins", "pain") == ("mechanical", "given", [])
    assert shown(r)[:6] == [
        ("sins.level", "T7", "index level"), ("sins.pain", "mechanical", "given"),
        ("sins.lesion", "lytic", 'from "Lytic metastasis"'), ("sins.collapse", "gt50", 'from "60% loss of height"'),
        ("sins.alignment", "deformity", 'from "focal kyphosis"'),
        ("sins.posterolateral", "bilateral", 'from "both pedicles"')]
    assert [c.kb_items for c in r.components[:2]] == [[], []]
    assert codes(r) == ["confirm"] and "sins.pain" not in r.missing
    assert (notice(r, "confirm").message, notice(r, "confirm").kb_items) == (CONFIRM, [])
    assert [m for m in r.missing if m.startswith("sins.")] == []


def test_pain_is_given_never_read_and_blank_pain_counts_as_not_given():
    r = extract("Lytic metastasis at T7 with 40% loss of height.", pain="  ")
    assert got(r, "sins", "pain") == (None, "clinical: not in the report", [])
    assert "sins.pain" not in [c.name for c in r.components]
    assert (notice(r, "pain").message, notice(r, "pain").kb_items) == (PAIN, ["sins.component.pain"])
    assert r.missing == ["sins.pain", "sins.alignment", "sins.posterolateral", "escc.epidural_disease"]
    with pytest.raises(InvalidInputError) as e:
        extract("Lytic metastasis at T7.", pain="sometimes")
    assert (e.value.field, e.value.message) == (
        "pain", "'sometimes' is not allowed; allowed values: 'mechanical', 'occasional', 'none' (or 'unknown')")


def test_no_level_stated():
    r = extract("Lytic lesion. Mild height loss.")
    assert got(r, "sins", "level") == (None, "no level stated", [])
    assert r.missing == ["sins.level", "sins.pain", "sins.alignment", "sins.posterolateral", "escc.epidural_disease"]
    assert shown(r) == [("sins.lesion", "lytic", 'from "Lytic lesion"'),
                        ("sins.collapse", "lt50", 'from "Mild height loss"')]
    assert r.prefill.inputs["sins"] == {"lesion": "lytic", "collapse": "lt50"}


# --- ESCC -------------------------------------------------------------------------------------------------------------


def test_escc_findings_and_stated_grade():
    r = extract("Lytic metastasis at T7 with epidural extension indenting the thecal sac, Bilsky 1b.")
    assert {k: got(r, "escc", k) for k in r.prefill.escc} == {
        "grade": ("1b", None, ["Bilsky 1b"]),
        "epidural_disease": (True, None, ["epidural extension"]),
        "thecal_sac_deformed": (True, None, ["indenting the thecal sac"]),
        "cord_abutted": (None, None, []), "cord_compressed": (None, None, []), "csf_visible": (None, None, [])}
    assert r.prefill.inputs["escc"] == {"grade": "1b", "epidural_disease": True, "thecal_sac_deformed": True}
    assert (r.prefill.escc_grade, r.prefill.escc_possible_grades) == ("1b", ["1b"])
    assert shown(r)[2:] == [("escc.grade", "1b", 'from "Bilsky 1b"'),
                            ("escc.epidural_disease", "yes", 'from "epidural extension"'),
                            ("escc.thecal_sac_deformed", "yes", 'from "indenting the thecal sac"')]
    grade = component(r, "escc.grade")
    assert (grade.kb_items, grade.sources) == (["report_targets.escc-grade"], ["bilsky-2010", "radiopaedia-escc"])
    assert "escc.epidural_disease" not in r.missing and codes(r) == ["confirm", "pain"]


@pytest.mark.parametrize("text,findings,grade,possible", [
    ("Lytic metastasis at T7. No epidural disease.", {"epidural_disease": False}, "0", ["0"]),
    ("Lytic metastasis at T7 with epidural extension abutting the cord.",
     {"epidural_disease": True, "cord_abutted": True}, None, ["1c", "2", "3"]),
    ("Sclerotic metastasis at T7 with complete effacement of the CSF around the cord.", {"csf_visible": False}, "3",
     ["3"]),
    ("T9 metastasis with ventral epidural extension indenting the thecal sac. The spinal cord is not contacted and CSF "
     "is preserved around it.",
     {"epidural_disease": True, "thecal_sac_deformed": True, "cord_abutted": False, "csf_visible": True}, "1b", ["1b"]),
    ("Lytic metastasis at T7, possibly abutting the cord.", {}, None, []),
])
def test_escc_grade_follows_from_the_findings(text, findings, grade, possible):
    r = extract(text)
    assert r.prefill.inputs["escc"] == findings
    assert (r.prefill.escc_grade, r.prefill.escc_possible_grades) == (grade, possible)
    assert ("escc.epidural_disease" in r.missing) is (not findings)


def test_escc_grade_without_its_letter_is_not_used():
    r = extract("Lytic metastasis at T7 with epidural disease, ESCC 1.")
    assert got(r, "escc", "grade") == (None, None, [])
    n = notice(r, "escc_grade_unclear")
    # the report's words are quoted once (they used to repeat the grade: "ESCC 1 1")
    assert (n.message, n.kb_items) == (
        'The stated ESCC grade "ESCC 1" is incomplete (1a, 1b or 1c?); it was not used.', ["escc.method.axial_t2"])
    assert codes(r) == ["confirm", "pain", "escc_grade_unclear"]
    assert r.prefill.escc_possible_grades == ["1a", "1b", "1c", "2", "3"] and r.prefill.escc_grade is None


@pytest.mark.parametrize("text,quoted", [
    ("T7 metastasis, Bilsky 1 (epidural).", "Bilsky 1"),  # once "Bilsky 1  1": the span ended in a space
    ("T7 metastasis, epidural spinal cord compression grade 1.", "epidural spinal cord compression grade 1"),
])
def test_incomplete_grade_is_quoted_as_written_with_the_grade_once(text, quoted):
    n = notice(extract(text), "escc_grade_unclear")
    assert n.message == f'The stated ESCC grade "{quoted}" is incomplete (1a, 1b or 1c?); it was not used.'


def test_incomplete_grade_whose_words_lack_the_number_adds_it():
    # A span that names the grade only through its qualifier (no rule writes one today) still shows the grade.
    from spinemets.knowledge.loader import load_kb
    from spinemets.reports.extract import Finding
    from spinemets.reports.prefill import prefill
    from spinemets.reports.rules import load_rules
    from spinemets.results import Citer

    kb = load_kb()
    base = next(f for f in extract("T7 metastasis, Bilsky 1.").findings if "grade" in f.qualifiers)
    finding = base.model_copy(update={"text": "Bilsky grade"})
    _, _, _, notices = prefill([finding], "T7", load_rules(kb), kb, Citer(kb))
    n = next(x for x in notices if x.code == "escc_grade_unclear")
    assert n.message == 'The stated ESCC grade "Bilsky grade 1" is incomplete (1a, 1b or 1c?); it was not used.'


@pytest.mark.parametrize("text", [
    "Lytic metastasis at T7 with epidural disease. No ESCC grade 3.",
    "Lytic metastasis at T7 with epidural disease, not Bilsky 3.",
    "Lytic metastasis at T7 with epidural disease. ESCC grade 3 is excluded.",
])
def test_a_negated_escc_grade_is_not_prefilled(text):
    # these used to pre-fill grade 3: the negation was dropped for every stated grade
    r = extract(text)
    assert got(r, "escc", "grade") == (None, None, [])
    assert r.prefill.inputs["escc"] == {"epidural_disease": True}
    assert (r.prefill.escc_grade, r.prefill.escc_possible_grades) == (None, ["1a", "1b", "1c", "2", "3"])
    assert "escc.grade" not in [c.name for c in r.components]


def test_a_without_earlier_in_the_sentence_leaves_the_grade_stated():
    r = extract("Lytic metastasis at T7 with epidural disease without cord compression, ESCC 1b.")
    assert r.prefill.inputs["escc"] == {"grade": "1b", "epidural_disease": True, "cord_compressed": False}
    assert (r.prefill.escc_grade, r.prefill.escc_possible_grades) == ("1b", ["1b"])


def test_escc_findings_that_contradict_the_stated_grade_are_not_graded():
    r = extract("Lytic metastasis at T7. No epidural disease. ESCC grade 3.")
    assert r.prefill.inputs["escc"] == {"grade": "3", "epidural_disease": False}
    assert (r.prefill.escc_grade, r.prefill.escc_possible_grades) == (None, [])
    n = notice(r, "escc_contradiction")
    assert n.message == ("The ESCC findings read from the report do not fit together (grade 3 does not fit the "
                         "findings, which allow 0; in grade 3, epidural disease is present); check them before "
                         "grading.")
    assert n.kb_items == ["escc.method.axial_t2"]
    assert codes(r) == ["confirm", "pain", "escc_contradiction"]


def test_escc_findings_section_wins_over_the_impression():
    r = extract("Lytic metastasis at T7 with epidural disease.\n\nImpression: T7 metastasis without epidural disease. "
                "No cord compression.")
    assert got(r, "escc", "epidural_disease") == (
        True, 'the findings section says so; the impression says otherwise ("epidural disease")', ["epidural disease"])
    assert got(r, "escc", "cord_compressed") == (False, None, ["No cord compression"])
    assert r.prefill.escc_possible_grades == ["1a", "1b", "1c"]
    assert component(r, "escc.epidural_disease").note == (
        'from "epidural disease" - moderate confidence: the findings section says so; the impression says otherwise '
        '("epidural disease")')


def test_escc_two_values_in_one_section_leave_the_finding_unknown():
    r = extract("Lytic metastasis at T7 compressing the cord. The cord is not compressed.")
    note = 'the report states more than one value: yes ("the cord"); no ("The cord")'
    assert got(r, "escc", "cord_compressed") == (None, note, ["compressing the cord", "The cord is not compressed"])
    assert r.prefill.inputs["escc"] == {} and r.prefill.escc_grade is None
    assert "escc.epidural_disease" in r.missing
    c = component(r, "escc.cord_compressed")
    assert (c.value, c.note) == (None, f'from "compressing the cord"; "The cord is not compressed" - {note}')


# --- when SINS and ESCC apply ----------------------------------------------------------------------------------------


def test_benign_diagnosis_prefills_neither_sins_nor_escc():
    r = extract("Typical haemangioma at L2.")
    assert r.prefill.applies == {"sins": False, "escc": False, "fracture": False, "marrow": True}
    assert r.prefill.why_not == {"sins": BENIGN.format("SINS"), "escc": BENIGN.format("ESCC"), "fracture": NO_FRACTURE}
    assert r.prefill.sins == {} and r.prefill.escc == {} and r.missing == [] and r.components == []
    assert [(n.code, n.message, n.kb_items) for n in r.notices] == [
        ("sins_not_prefilled", f"SINS not pre-filled: {BENIGN.format('SINS')}.",
         ["sins.definition.instability", "ddx.main_mimics"]),
        ("escc_not_prefilled", f"ESCC not pre-filled: {BENIGN.format('ESCC')}.",
         ["escc.method.axial_t2", "ddx.main_mimics"])]


def test_a_neoplasm_only_raised_beside_a_stated_benign_diagnosis_prefills_nothing():
    # The annotation guide's rule, followed by the three annotators of the real-style sets: SINS and ESCC are for a
    # stated neoplastic or an unexplained lesion; a stated benign diagnosis outweighs a neoplasm raised as possible.
    r = extract("Typical haemangioma at L2. Lytic lesion at L2, possibly metastasis.")
    assert r.prefill.applies == {"sins": False, "escc": False, "fracture": False, "marrow": True}
    assert r.prefill.why_not["sins"] == ("the report states a benign diagnosis and raises a neoplasm only as a "
                                         "possibility; SINS grades spinal neoplasms: give the findings if a neoplasm is "
                                         "confirmed")
    assert "sins" not in r.prefill.inputs or r.prefill.inputs["sins"] == {}
    # a neoplasm raised without any stated benign diagnosis is still graded
    r = extract("Lytic lesion at L2, possibly metastasis.")
    assert r.prefill.applies["sins"] and r.prefill.inputs["sins"] == {"level": "L2", "lesion": "lytic"}


def test_a_lesion_without_a_diagnosis_is_graded_as_possibly_neoplastic():
    r = extract("Lytic lesion at T7 with 60% collapse.")
    assert r.prefill.applies == {"sins": True, "escc": True, "fracture": True, "marrow": True}
    assert r.prefill.why_not == {}
    assert r.prefill.inputs["sins"] == {"level": "T7", "lesion": "lytic", "collapse": "gt50"}


def test_a_report_without_a_lesion_prefills_nothing():
    r = extract("The patient attended on time.")
    assert r.prefill.applies == {"sins": False, "escc": False, "fracture": False, "marrow": False}
    assert r.prefill.why_not == {k: NOTHING for k in ("sins", "escc", "fracture", "marrow")}
    assert r.notices == []
    assert r.prefill.inputs == {} and r.components == []


def test_osteoporotic_fracture_prefills_the_fracture_differential_only():
    r = extract("Osteoporotic compression fracture of L2 with 30% loss of height. No retropulsion.")
    assert r.prefill.applies == {"sins": False, "escc": False, "fracture": True, "marrow": True}
    assert r.prefill.why_not == {"sins": BENIGN.format("SINS"), "escc": BENIGN.format("ESCC")}
    assert got(r, "fracture", "retropulsed_fragment") == ("absent", None, ["No retropulsion"])
    assert codes(r) == ["confirm", "sins_not_prefilled", "escc_not_prefilled"]


# --- the fracture differential ---------------------------------------------------------------------------------------


def test_fracture_differential_uses_findings_at_other_levels():
    r = extract("Lytic metastasis at T7 with 60% collapse. No retropulsion. Metastases at L1 and L2. "
                "Compression fractures at L3 and L4.")
    assert r.prefill.inputs["fracture"] == {"other_spinal_metastases": "present", "retropulsed_fragment": "absent",
                                            "multiple_compression_fractures": "present", "lumbar_location": "absent"}
    assert got(r, "fracture", "lumbar_location")[:2] == ("absent", "the fracture is at T7")
    assert got(r, "fracture", "other_spinal_metastases") == ("present", "from findings at other levels", ["Metastases"])
    assert got(r, "fracture", "multiple_compression_fractures") == (
        "present", "from findings at other levels", ["Compression fractures"])
    c = component(r, "fracture.other_spinal_metastases")
    assert (c.note, c.kb_items, c.sources) == ('from "Metastases" - from findings at other levels',
                                               ["report_targets.dx-metastasis"], ["seed-003", "seed-004"])


def test_fracture_differential_only_at_a_fractured_index_level():
    r = extract("Lytic metastasis at T7. Metastases at L1 and L2.", level="T7")
    assert r.prefill.applies["fracture"] is False and r.prefill.fracture == {}
    assert "fracture" not in r.prefill.inputs


# --- marrow signal ------------------------------------------------------------------------------------------------------


def test_marrow_signal_of_the_lesion_not_of_the_cord():
    r = extract("Lytic metastasis at T7, hypointense on T1 and hyperintense on STIR. The cord is hyperintense on T2.")
    assert r.prefill.inputs["marrow"] == {"t1": "hypointense", "stir": "hyperintense"}
    assert got(r, "marrow", "t1") == ("hypointense", None, ["hypointense on T1"])
    c = component(r, "marrow.t1")
    assert (c.value, c.note, c.kb_items) == ("hypointense", 'from "hypointense on T1"', ["report_targets.signal-t1-low"])


# --- states of the thecal sac, cord and CSF (ESCC) -------------------------------------------------------------------


@pytest.mark.parametrize("text,findings,possible", [
    # effacement of the CSF deforms the sac; only complete effacement says the CSF is gone (grade 3)
    ("Lytic metastasis at T7 with effacement of the CSF.", {"thecal_sac_deformed": True}, ["1b", "1c", "2", "3"]),
    ("Lytic metastasis at T7 with total effacement of the CSF.", {"csf_visible": False}, ["3"]),
    ("Lytic metastasis at T7 with circumferential CSF preserved around the cord.", {"csf_visible": True},
     ["0", "1a", "1b", "1c", "2"]),
])
def test_escc_degree_of_csf_effacement(text, findings, possible):
    r = extract(text)
    assert r.prefill.inputs["escc"] == findings
    assert r.prefill.escc_possible_grades == possible


SITE_RULES = """
targets:
  - {id: flattened-cord, concept: cord, value: flattened_cord, phrases: [flattened cord, cord flattening],
     sets: {escc.cord_compressed: true}}
  - {id: thecal-outline, concept: thecal_sac, value: thecal_sac, phrases: [thecal outline],
     states: {compress: {escc.thecal_sac_deformed: true}}}
  - {id: wafer-vertebra, concept: feature, value: wafer_vertebra, phrases: [wafer vertebra],
     sets: {sins.collapse: gt50}}
context:
  - {id: height-moderately-reduced, category: DEGREE, direction: BACKWARD, value: moderate,
     phrases: [moderately reduced], allowed_types: [HEIGHT], max_scope: 4}
"""


@pytest.fixture(scope="module")
def site_rules(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("site") / "site.yaml"
    path.write_text(SITE_RULES)
    return str(path)


@pytest.mark.parametrize("text,inputs,fracture", [
    # a row without states pre-fills what it sets, whatever state word stands beside it
    ("Lytic metastasis at T7; the flattened cord is compressed.",
     {"sins": {"level": "T7", "lesion": "lytic"}, "escc": {"cord_compressed": True}, "marrow": {}}, False),
    # a row with states only: the state decides
    ("Lytic metastasis at T7 with epidural tumour indenting the thecal outline.",
     {"sins": {"level": "T7", "lesion": "lytic"}, "escc": {"epidural_disease": True, "thecal_sac_deformed": True},
      "marrow": {}}, False),
    # a degree of the height (Genant moderate: under 50%) is a collapse, so the fracture differential applies
    ("Lytic metastasis at T7; the vertebral body height is moderately reduced.",
     {"sins": {"level": "T7", "lesion": "lytic", "collapse": "lt50"}, "escc": {},
      "fracture": {"lumbar_location": "absent"}, "marrow": {}}, True),
])
def test_site_rows_prefill_as_their_columns_say(site_rules, text, inputs, fracture):
    r = extract(text, rules=site_rules)
    assert r.prefill.inputs == inputs
    assert r.prefill.applies["fracture"] is fracture
    assert codes(r) == ["confirm", "pain", "site_rules"]


def test_a_site_row_that_sets_the_collapse_category(site_rules):
    r = extract("Lytic metastasis at T7 with a wafer vertebra.", rules=site_rules)
    assert got(r, "sins", "collapse") == ("gt50", None, ["wafer vertebra"])
    r = extract("Lytic metastasis at T7 with a wafer vertebra. No collapse.", rules=site_rules)
    assert got(r, "sins", "collapse") == (
        None, 'the report states more than one value: gt50 ("wafer vertebra"); no_collapse ("No collapse")',
        ["wafer vertebra", "No collapse"])


# --- more than one statement -----------------------------------------------------------------------------------------


def test_findings_section_wins_and_the_note_quotes_every_other_statement():
    r = extract("Findings: Lytic metastasis at T7, hypointense on T1.\n\n"
                "Impression: T7 metastasis, hyperintense on T1 and isointense on T1.")
    note = 'the findings section says so; the impression says otherwise ("hyperintense on T1"; "isointense on T1")'
    assert got(r, "marrow", "t1") == ("hypointense", note, ["hypointense on T1"])
    assert component(r, "marrow.t1").note == f'from "hypointense on T1" - moderate confidence: {note}'


def test_one_phrase_with_both_degrees_is_shown_once():
    r = extract("Lytic metastasis at T7 with a moderate 60% collapse.")
    assert got(r, "sins", "collapse") == (None, "the report gives both more and less than 50%", ["moderate 60% collapse"])
    assert component(r, "sins.collapse").note == (
        'from "moderate 60% collapse" - the report gives both more and less than 50%')


def test_component_note_quotes_the_first_three_phrases():
    r = extract("Lytic lesion at T7. Lytic focus at T7. Lucent area at T7. Osteolysis at T7.")
    assert got(r, "sins", "lesion") == ("lytic", None, ["Lytic lesion", "Lytic focus", "Lucent", "Osteolysis"])
    assert component(r, "sins.lesion").note == 'from "Lytic lesion"; "Lytic focus"; "Lucent"'


def test_alignment_component_cites_its_row():
    c = component(extract("Lytic metastasis at T7 with focal kyphosis."), "sins.alignment")
    assert (c.value, c.note, c.kb_items, c.sources) == (
        "deformity", 'from "focal kyphosis"', ["report_targets.alignment-deformity"], ["fisher-2010", "seed-003"])


# --- applicability, continued -------------------------------------------------------------------------------------------


def test_a_lytic_metastasis_beside_a_benign_diagnosis_is_neoplastic():
    r = extract("Typical haemangioma at L2. Lytic metastasis at L2.")
    assert r.prefill.applies == {"sins": True, "escc": True, "fracture": False, "marrow": True}
    assert r.prefill.level == "L2" and r.prefill.inputs["sins"] == {"level": "L2", "lesion": "lytic"}


@pytest.mark.parametrize("text", ["Alignment is normal. No fracture.", "No vertebral metastases. No fracture."])
def test_normal_statements_alone_prefill_nothing(text):
    r = extract(text)
    assert r.prefill.applies == {"sins": False, "escc": False, "fracture": False, "marrow": False}
    assert r.prefill.why_not == {k: NOTHING for k in ("sins", "escc", "fracture", "marrow")}
    assert r.prefill.inputs == {} and r.components == [] and r.missing == []


def test_escc_table_that_cannot_tell_grades_apart_gives_a_notice_not_a_grade(tmp_path):
    import shutil

    import yaml

    from spinemets.knowledge.loader import DATA_DIR, load_kb
    from spinemets.reports.rules import load_rules

    shutil.copytree(DATA_DIR, tmp_path / "kb")
    path = tmp_path / "kb" / "tables" / "escc_grades.yaml"
    table = yaml.safe_load(path.read_text())
    rows = {row["id"]: row for row in table["rows"]}
    rows["g1c"]["findings"] = dict(rows["g1b"]["findings"])
    path.write_text(yaml.safe_dump(table, sort_keys=False))
    r = extract("T9 metastasis with ventral epidural extension indenting the thecal sac. The spinal cord is not "
                "contacted and CSF is preserved around it.", kb=load_kb(tmp_path / "kb"), rule_set=load_rules())
    assert (r.prefill.escc_grade, r.prefill.escc_possible_grades) == (None, [])
    assert r.prefill.inputs["escc"] == {"epidural_disease": True, "thecal_sac_deformed": True, "cord_abutted": False,
                                        "csf_visible": True}
    assert [(n.code, n.message) for n in r.notices if n.code.startswith("escc")] == [
        ("escc_invalid", "knowledge base invalid:\n- tables/escc_grades: grades 1b and 1c have the same findings, so no "
                         "finding can tell them apart")]


# --- the fracture differential, continued -----------------------------------------------------------------------------


@pytest.mark.parametrize("elsewhere,expected", [
    ("Lytic lesion at L2.", ("present", "from findings at other levels", ["Lytic lesion"])),
    ("Haemangioma at L2.", (None, None, [])),
    ("No other metastases. Metastases at L1 and L2.",
     (None, "stated absent, but findings at other levels suggest present", ["No other metastases", "Metastases"])),
    ("No other metastases. Other metastases are present. Metastases at L1 and L2.",
     (None, 'the report states more than one value: absent ("other metastases"); present ("Other metastases")',
      ["No other metastases", "Other metastases"])),
])
def test_other_spinal_metastases(elsewhere, expected):
    r = extract("Lytic metastasis at T7 with 60% collapse. " + elsewhere)
    assert got(r, "fracture", "other_spinal_metastases") == expected
    assert r.prefill.inputs["fracture"].get("other_spinal_metastases") == expected[0]


DEGENERATIVE = ("the report describes degenerative disease and no bone lesion, fracture or abnormal marrow signal; "
                "{} grades spinal neoplasms")


@pytest.mark.parametrize(("text", "why"), [
    ("L4-5: broad disc protrusion narrowing the thecal sac. Extradural enhancing granulation tissue. Normal alignment.",
     DEGENERATIVE),
    ("L5-S1 disc extrusion, sequestered, narrowing the thecal sac; reactive enhancement of the adjacent extradural "
     "tissue.", DEGENERATIVE),
    # with no epidural word there is no anchor at all: nothing to pre-fill for
    ("C5-6 disc osteophyte complex indents the thecal sac and abuts the cord. Facet arthropathy bilaterally.",
     "the report describes no lesion or fracture to pre-fill for"),
])
def test_degenerative_disease_alone_prefills_neither_sins_nor_escc(text, why):
    # A disc or facet narrowing the sac is not an epidural tumour: nothing to score, and the reason is given.
    r = extract(text)
    assert r.prefill.applies["sins"] is False and r.prefill.applies["escc"] is False
    assert r.prefill.why_not["sins"] == why.format("SINS")
    assert r.prefill.why_not["escc"] == why.format("ESCC")
    assert r.prefill.sins == {} and r.prefill.escc == {}


@pytest.mark.parametrize("text", [
    "Disc protrusion at L4-5. Lytic lesion at L2 with epidural extension deforming the thecal sac.",
    "Degenerative change at C5-6. T8 compression fracture with 30% loss of height, no diagnosis given.",
    "Facet arthropathy L4-5. Epidural metastasis at T10 compressing the cord.",
    # second review: epidural tissue, a stated grade or abnormal marrow signal is never the disc's, and a
    # degenerative word without a level, or at another level, explains nothing
    "Circumferential epidural soft tissue at T4 with cord compression, ESCC grade 3. Mild cervical spondylosis.",
    "Prostate cancer. Epidural tumour at L3 severely compressing the cauda equina. Degenerative disc disease at L3-4.",
    "Diffuse low T1 marrow signal at T9. Epidural extension at T9 abutting the cord. Degenerative change at T9-10.",
    "Disc protrusion at L4-5. Extradural tissue at T11 compresses the thecal sac.",
])
def test_degenerative_disease_beside_a_lesion_keeps_the_lesion_scored(text):
    r = extract(text)
    assert r.prefill.applies["sins"] is True and r.prefill.applies["escc"] is True


@pytest.mark.parametrize("text", [
    "Lytic metastasis at L1. No definite extraosseous extension. Epidural disease cannot be excluded.",
    "Lytic metastasis at L1 with no extraosseous extension. Epidural enhancement is seen.",
    "Lytic metastasis at L1. No extraosseous extension except a small epidural component abutting the thecal sac.",
    "Lytic metastasis at T8. Cortex intact, no extraosseous extension, no fracture.",
])
def test_a_denied_extraosseous_extension_never_fills_epidural_disease_as_absent(text):
    # Reports qualify the denial (hedged, with an exception, into one compartment): a wrong ESCC 0 is worse than an
    # empty field, so the epidural finding is left to the words that name it (second review).
    r = extract(text)
    assert r.prefill.inputs["escc"].get("epidural_disease") is not False and r.prefill.escc_grade != "0"


def test_tumour_outside_the_bone_alone_does_not_say_where():
    # Present, it may be paraspinal or epidural: ESCC waits for the report to say which.
    r = extract("Lytic metastasis at T8. Extraosseous soft tissue mass on the left.")
    assert r.prefill.inputs["escc"] == {} and r.prefill.escc_grade is None


@pytest.mark.parametrize(("text", "crosses"), [
    ("Spondylodiscitis at L2-L3 with endplate destruction. Paravertebral abscess.", True),
    ("T8/9 discitis-osteomyelitis, STIR hyperintense.", True),
    # osteomyelitis or spondylitis without the disc named says nothing of the disc (tuberculosis may spare it)
    ("Tuberculous spondylitis of L2 with a cold abscess.", None),
    # a denied discitis says nothing about the lesion's relation to the disc
    ("Lytic metastasis at L2. No discitis.", None),
])
def test_a_stated_discitis_involves_the_disc_space(text, crosses):
    pre = extract(text).prefill
    assert pre.inputs.get("marrow", {}).get("crosses_disc_space") is crosses, pre.inputs


@pytest.mark.parametrize(("text", "marrow"), [
    # a treated lesion still present: its signal now is a finding of this study, not history
    ("Metastasis at T9. Treated T9 lesion remains T1 hypointense throughout most of the body.", {"t1": "hypointense"}),
    # the imaging plane before the sequence
    ("Plasmacytoma of C2: the mass is low signal on sagittal T1 and high on T2.",
     {"t1": "hypointense", "t2": "hyperintense"}),
    ("Metastasis at L2, hyperintense on sagittal STIR and low on axial T1.", {"t1": "hypointense", "stir": "hyperintense"}),
])
def test_marrow_signal_of_a_treated_lesion_and_with_the_imaging_plane_named(text, marrow):
    assert extract(text).prefill.inputs["marrow"] == marrow


def test_the_posterior_arch_named_as_a_landmark_is_not_involved():
    # "compresses the cord against the posterior arch": the arch is where the cord is pushed, not tumour or fracture
    r = extract("Metastasis at T12 with 60% collapse; retropulsion compresses the cord against the posterior arch.")
    assert "posterolateral" not in r.prefill.inputs["sins"]
    assert "pedicle_involvement" not in r.prefill.inputs.get("fracture", {})
    r = extract("Metastasis at T12 with 60% collapse extending into the posterior arch on both sides.")
    assert r.prefill.inputs["sins"]["posterolateral"] == "bilateral"
