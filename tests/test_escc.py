"""ESCC (Bilsky 2010; grade definitions in seed 003 and clinical-facts C1)."""

from __future__ import annotations

from decimal import Decimal

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

from spinemets import escc
from spinemets.errors import KnowledgeBaseError, ContradictoryInputError, InvalidInputError, SpinemetsError
from spinemets.knowledge.loader import load_kb
from spinemets.levels import parse_span
from spinemets.scores.escc import FINDINGS, GRADES

Y, N = True, False
# Each grade's finding pattern, written out by hand from Bilsky 2010 (independent of tables/escc_grades.yaml):
# 0 no epidural disease; 1a epidural disease, thecal sac not deformed; 1b deformed, cord not abutted;
# 1c abutted, not compressed; 2 compressed, CSF visible; 3 compressed, no CSF visible.
DEFINITION = {
    "0": dict(epidural_disease=N, thecal_sac_deformed=N, cord_abutted=N, cord_compressed=N, csf_visible=Y),
    "1a": dict(epidural_disease=Y, thecal_sac_deformed=N, cord_abutted=N, cord_compressed=N, csf_visible=Y),
    "1b": dict(epidural_disease=Y, thecal_sac_deformed=Y, cord_abutted=N, cord_compressed=N, csf_visible=Y),
    "1c": dict(epidural_disease=Y, thecal_sac_deformed=Y, cord_abutted=Y, cord_compressed=N, csf_visible=Y),
    "2": dict(epidural_disease=Y, thecal_sac_deformed=Y, cord_abutted=Y, cord_compressed=Y, csf_visible=Y),
    "3": dict(epidural_disease=Y, thecal_sac_deformed=Y, cord_abutted=Y, cord_compressed=Y, csf_visible=N),
}
HIGH = {"2", "3"}  # Bilsky 2010: grades 2 and 3 are high grade; 0, 1a, 1b (and 1c, per the table) low grade


def agrees(grade, findings):
    return all(DEFINITION[grade][k] == v for k, v in findings.items() if v is not None)


def test_table_patterns_match_the_definitions(kb):
    rows = {r["grade"]: r["findings"] for r in kb.table("escc_grades").rows}
    assert rows == DEFINITION

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
        # CSF visible around the cord rules out grade 3 only
        ({"csf_visible": True}, "escc.epidural_disease", ["0", "1a", "1b", "1c", "2"]),
        # regression: a finding given as absent rules out every grade above it (was: all six grades)
        ({"thecal_sac_deformed": False}, "escc.epidural_disease", ["0", "1a"]),
        ({"cord_abutted": False}, "escc.epidural_disease", ["0", "1a", "1b"]),
        ({"cord_compressed": False}, "escc.epidural_disease", ["0", "1a", "1b", "1c"]),
        ({"epidural_disease": True, "cord_compressed": False}, "escc.thecal_sac_deformed", ["1a", "1b", "1c"]),
        ({"cord_abutted": True, "csf_visible": True}, "escc.cord_compressed", ["1c", "2"]),
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
    # regression: the summary named the field paths escc.grade and escc.epidural_disease
    assert r.summary == (
        "insufficient data: give the ESCC grade or the findings (epidural disease, thecal sac deformed, "
        "spinal cord abutted, spinal cord compressed, CSF visible around the cord)"
    )


def test_high_grade_either_way(kb):
    # regression: cord compressed, CSF unknown -> grade 2 or 3, both high grade; high_grade was None
    r = escc({"cord_compressed": True})
    implication = kb.table("escc_grades").row("g2")["implication"]
    assert implication == kb.table("escc_grades").row("g3")["implication"]
    assert (r.status, r.grade, r.possible_grades) == ("insufficient_data", None, ["2", "3"])
    assert r.high_grade is True and r.severity == "high" and r.implication == implication
    assert r.summary == (
        "insufficient data: CSF visible around the cord unknown; grade could be 2 or 3; "
        f"high grade either way: {implication}"
    )
    assert [n.code for n in r.notices] == ["implication"]
    assert r.notices[0].kb_items == ["escc_grades.g2", "escc_grades.g3"] and "bilsky-2010" in r.notices[0].sources


def test_low_grade_either_way(kb):
    r = escc({"cord_abutted": False})
    implication = kb.table("escc_grades").row("g0")["implication"]
    assert (r.grade, r.possible_grades, r.high_grade, r.severity) == (None, ["0", "1a", "1b"], False, "low")
    assert r.summary == (
        f"insufficient data: epidural disease unknown; grade could be 0, 1a or 1b; low grade either way: {implication}"
    )


def test_low_grade_either_way_with_1c_shows_each_implication_and_both_views(kb):
    r = escc({"cord_compressed": False})
    rows = kb.table("escc_grades")
    assert (r.possible_grades, r.high_grade, r.severity) == (["0", "1a", "1b", "1c"], False, "low")
    assert r.implication == f"Grades 0, 1a, 1b: {rows.row('g0')['implication']} Grade 1c: {rows.row('g1c')['implication']}"
    assert [n.code for n in r.notices] == ["implication", "sources_differ", "sources_differ"]


def test_mixed_severity_says_nothing_either_way():
    r = escc({"epidural_disease": True})
    assert r.high_grade is None and r.severity is None and r.implication is None and r.notices == []
    assert r.summary == "insufficient data: thecal sac deformed unknown; grade could be 1a, 1b, 1c, 2 or 3"


def test_severity_comes_from_the_table(kb_copy):
    path = kb_copy / "tables" / "escc_grades.yaml"
    table = yaml.safe_load(path.read_text())
    next(r for r in table["rows"] if r["id"] == "g1c")["severity"] = "borderline"
    path.write_text(yaml.safe_dump(table, sort_keys=False))
    kb = load_kb(kb_copy)
    assert escc({"cord_compressed": False}, kb).severity is None  # 0-1b low, 1c borderline: no common severity
    assert escc({"cord_abutted": False}, kb).severity == "low"
    # a grade read from the findings takes its row from the same table
    assert escc({"cord_abutted": True, "cord_compressed": False}, kb).severity == "borderline"
    r = escc({"grade": "1c"}, kb)
    assert (r.severity, r.high_grade) == ("borderline", False) and r.summary.startswith("grade 1c (borderline-grade)")


def test_two_grades_with_the_same_findings_are_a_knowledge_base_error(kb_copy):
    # A grade table whose rows 1b and 1c share their findings cannot tell them apart: a clear error naming the
    # table and the grades, not a crash and not one of the two picked silently.
    path = kb_copy / "tables" / "escc_grades.yaml"
    table = yaml.safe_load(path.read_text())
    rows = {r["id"]: r for r in table["rows"]}
    rows["g1c"]["findings"] = dict(rows["g1b"]["findings"])
    path.write_text(yaml.safe_dump(table, sort_keys=False))
    with pytest.raises(KnowledgeBaseError) as exc:
        escc({"epidural_disease": True, "thecal_sac_deformed": True, "cord_abutted": False, "cord_compressed": False,
              "csf_visible": True}, load_kb(kb_copy))
    assert exc.value.problems == [
        "tables/escc_grades: grades 1b and 1c have the same findings, so no finding can tell them apart"]


def test_implied_findings_are_shown_with_their_origin():
    r = escc({"csf_visible": False})
    assert [(c.value, c.note) for c in r.components] == [("yes", "implied by the other findings")] * 4 + [("no", None)]
    r = escc({"grade": "2", "csf_visible": True})
    assert [(c.value, c.note) for c in r.components] == [("yes", "implied by the stated grade")] * 4 + [("yes", None)]
    r = escc({"cord_abutted": False})
    assert [(c.value, c.note) for c in r.components] == [
        (None, "unknown"), (None, "unknown"), ("no", None), ("no", "implied by the other findings"),
        ("yes", "implied by the other findings"),
    ]


@pytest.mark.parametrize(
    "findings,message",
    [
        ({"epidural_disease": False, "cord_compressed": True},
         "contradictory input (escc.epidural_disease, escc.cord_compressed): spinal cord compressed is present but epidural disease is absent"),
        ({"thecal_sac_deformed": False, "cord_abutted": True},
         "contradictory input (escc.thecal_sac_deformed, escc.cord_abutted): spinal cord abutted is present but thecal sac deformed is absent"),
        ({"cord_compressed": False, "csf_visible": False},
         "contradictory input (escc.csf_visible, escc.cord_compressed): no CSF visible around the cord requires a compressed cord"),
        # regression: "no CSF visible" overwrote findings given as absent (these returned grade 3)
        ({"cord_abutted": False, "csf_visible": False},
         ("contradictory input (escc.csf_visible, escc.cord_abutted): no CSF visible around the cord requires a compressed cord, "
          "which implies spinal cord abutted, but it was given as absent")),
        ({"thecal_sac_deformed": False, "csf_visible": False},
         ("contradictory input (escc.csf_visible, escc.thecal_sac_deformed): no CSF visible around the cord requires a "
          "compressed cord, which implies thecal sac deformed, but it was given as absent")),
        ({"epidural_disease": False, "csf_visible": False},
         ("contradictory input (escc.csf_visible, escc.epidural_disease): no CSF visible around the cord requires a "
          "compressed cord, which implies epidural disease, but it was given as absent")),
        ({"grade": "2", "epidural_disease": False},
         ("contradictory input (escc.grade, escc.epidural_disease): grade 2 does not fit the findings, which allow 0; "
          "in grade 2, epidural disease is present")),
        ({"grade": "1a", "cord_compressed": True},
         ("contradictory input (escc.grade, escc.cord_compressed): grade 1a does not fit the findings, which allow 2 or 3; "
          "in grade 1a, spinal cord compressed is absent")),
        # regression: a stated grade was only checked against the findings above the first unknown one
        ({"grade": "2", "cord_compressed": False},
         ("contradictory input (escc.grade, escc.cord_compressed): grade 2 does not fit the findings, which allow 0, 1a, 1b "
          "or 1c; in grade 2, spinal cord compressed is present")),
        ({"grade": "1b", "epidural_disease": True, "cord_abutted": True, "csf_visible": True},
         ("contradictory input (escc.grade, escc.cord_abutted): grade 1b does not fit the findings, which allow 1c or 2; "
          "in grade 1b, spinal cord abutted is absent")),
        ({"grade": "0", "thecal_sac_deformed": True, "csf_visible": False},
         ("contradictory input (escc.grade, escc.thecal_sac_deformed, escc.csf_visible): grade 0 does not fit the findings, "
          "which allow 3; in grade 0, thecal sac deformed is absent and CSF visible around the cord is present")),
        ({"grade": "3", "csf_visible": True},
         ("contradictory input (escc.grade, escc.csf_visible): grade 3 does not fit the findings, which allow 0, 1a, 1b, 1c "
          "or 2; in grade 3, CSF visible around the cord is absent")),
    ],
)
def test_contradictions(findings, message):
    with pytest.raises(ContradictoryInputError) as exc:
        escc(findings)
    assert str(exc.value) == message
    assert "escc." not in exc.value.message and "_" not in exc.value.message  # the human part is clinical words


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


@settings(max_examples=500, deadline=None)
@given(
    st.fixed_dictionaries({k: st.sampled_from([True, False, None]) for k in FINDINGS}),
    st.sampled_from([None, *GRADES]),
)
def test_every_possible_grade_agrees_with_every_finding(f, stated):
    fitting = [g for g in GRADES if agrees(g, f) and stated in (None, g)]
    data = {**f, "grade": stated} if stated else f
    try:
        r = escc(data)
    except ContradictoryInputError as exc:
        assert not fitting  # a contradiction only when no grade fits everything given
        assert set(exc.fields) <= {f"escc.{k}" for k, v in data.items() if v is not None}
        assert len(exc.fields) >= 2
        return
    assert r.possible_grades and all(agrees(g, f) for g in r.possible_grades)
    if stated:
        assert r.possible_grades == [stated]
    elif any(v is not None for v in f.values()):
        assert r.possible_grades == fitting  # every grade that fits is listed
    if r.status == "complete":
        assert r.grade in r.possible_grades and len(r.possible_grades) == 1
        assert escc({"grade": r.grade}).high_grade == r.high_grade
    else:
        assert r.grade is None and len(r.possible_grades) > 1
        # the finding named is the first that separates the grades still possible
        (missing,) = r.missing
        if any(v is not None for v in f.values()):
            name = missing.removeprefix("escc.")
            assert f[name] is None
            assert len({DEFINITION[g][name] for g in r.possible_grades}) == 2
            before = FINDINGS[: FINDINGS.index(name)]
            assert all(len({DEFINITION[g][k] for g in r.possible_grades}) == 1 for k in before)
        high = {g in HIGH for g in r.possible_grades}
        assert r.high_grade == (high.pop() if len(high) == 1 else None)
    assert "escc." not in r.summary and "_" not in r.summary


_BOOL = TypeAdapter(bool | None)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["grade", *FINDINGS, "x"]),
                       st.one_of(st.none(), st.text(max_size=5), st.integers(-2, 5), st.booleans(),
                                 st.sampled_from(["1a", "1b", "1c", "2", "3", "Grade 2", "yes", "no", "unknown"]))))
def test_arbitrary_input_gives_our_error_or_a_grade_that_fits_every_finding(data):
    try:
        r = escc(data)
    except SpinemetsError as exc:
        assert isinstance(exc, (InvalidInputError, ContradictoryInputError)), exc
        fields = [exc.field] if isinstance(exc, InvalidInputError) else exc.fields
        assert fields and all(f.startswith("escc.") for f in fields) and exc.message, str(exc)
        assert set(fields) <= {f"escc.{k}" for k in data}  # the error names what was given
        return
    # the findings as the input reads them (lax booleans: 'yes', 1, 'off', ...)
    given = {k: _BOOL.validate_python(data[k]) for k in FINDINGS if k in data}
    known = {k: v for k, v in given.items() if v is not None}
    assert r.possible_grades and all(agrees(g, known) for g in r.possible_grades)
    fitting = [g for g in GRADES if agrees(g, known)]
    assert set(r.possible_grades) <= set(fitting)
    if r.status == "complete":
        assert r.grade in GRADES and r.possible_grades == [r.grade] and not r.missing
        assert r.high_grade is (r.grade in HIGH)
        assert r.severity == ("high" if r.grade in HIGH else "low")
    else:
        assert r.status == "insufficient_data" and r.grade is None and len(r.missing) == 1
        assert r.possible_grades == (fitting if known else list(GRADES))
    assert "escc." not in r.summary and "_" not in r.summary


# --- planted-bug regression (issue 18): no epidural disease but the CSF effaced --------------------------------
# Bilsky 2010: CSF gone around the cord (grade 3) needs a compressed cord, which needs epidural disease; grade 0 has
# no epidural disease and CSF all round the cord.  No grade has both, so the input contradicts itself; a mutant
# that dropped this check graded it 3 silently.


@pytest.mark.parametrize("findings", [
    {"epidural_disease": False, "csf_visible": False},
    {"epidural_disease": False, "thecal_sac_deformed": False, "cord_abutted": False, "cord_compressed": False,
     "csf_visible": False},
    {"epidural_disease": False, "csf_visible": False, "grade": None},
])
def test_no_epidural_disease_with_csf_effaced_is_a_contradiction_never_grade_3(findings):
    with pytest.raises(ContradictoryInputError) as exc:
        escc(findings)
    assert exc.value.fields == ["escc.csf_visible", "escc.epidural_disease"]
    assert exc.value.message == ("no CSF visible around the cord requires a compressed cord, which implies epidural "
                                 "disease, but it was given as absent")


@pytest.mark.parametrize("grade", ["0", "3"])
def test_no_epidural_disease_with_csf_effaced_contradicts_a_stated_grade_too(grade):
    with pytest.raises(ContradictoryInputError) as exc:
        escc({"grade": grade, "epidural_disease": False, "csf_visible": False})
    # the findings clash among themselves before any grade is compared with them
    assert exc.value.fields == ["escc.csf_visible", "escc.epidural_disease"]
    assert "requires a compressed cord, which implies epidural disease" in exc.value.message


# --- the whole result a clinician reads (mutation testing: every field of each Bilsky 2010 grade) ----------------
# Severity by hand from Bilsky 2010 (0, 1a, 1b low; 2, 3 high; 1c grouped with the low grades by the table).
SEVERITY = {"0": "low", "1a": "low", "1b": "low", "1c": "low", "2": "high", "3": "high"}
ESCC_SOURCES = ["bilsky-2010", "radiopaedia-escc", "seed-003"]  # every grade row, cited as [1, 2, 3]
LABEL = {
    "epidural_disease": "epidural disease",
    "thecal_sac_deformed": "thecal sac deformed",
    "cord_abutted": "spinal cord abutted",
    "cord_compressed": "spinal cord compressed",
    "csf_visible": "CSF visible around the cord",
}


def _notices(r):
    return [(n.code, n.message, n.kb_items, n.sources, n.refs) for n in r.notices]


def _components(r):
    return [(c.name, c.value, c.label, c.note, c.points, c.kb_items, c.refs) for c in r.components]


def _views_1c(kb):
    """The two differing source views on grade 1c, as notices (seed-003 is reference 3, radiopaedia 2)."""
    views = kb.table("escc_grades").row("g1c")["severity_views"]
    number = {"bilsky-2010": 1, "radiopaedia-escc": 2, "seed-003": 3}
    return [("sources_differ", f"Sources differ on grade 1c: {v['statement']}", [], v["sources"],
             [number[s] for s in v["sources"]]) for v in views]


def _expected_complete(kb, grade, derived, components):
    row = next(r for r in kb.table("escc_grades").rows if r["grade"] == grade)
    severity = SEVERITY[grade]
    notices = [("implication", row["implication"], [f"escc_grades.{row.id}"], ESCC_SOURCES, [1, 2, 3])]
    return dict(
        instrument="escc", status="complete", summary=f"grade {grade} ({severity}-grade): {row['definition']}",
        grade=grade, possible_grades=[grade], severity=severity, high_grade=severity == "high",
        definition=row["definition"], implication=row["implication"], derived_from=derived, missing=[],
        notices=notices + (_views_1c(kb) if grade == "1c" else []), components=components,
        references=[(i + 1, s) for i, s in enumerate(ESCC_SOURCES)], draft_items=[], kb_version=kb.version,
        disclaimer=kb.manifest.disclaimer,
    )


def _actual(r):
    return dict(
        instrument=r.instrument, status=r.status, summary=r.summary, grade=r.grade, possible_grades=r.possible_grades,
        severity=r.severity, high_grade=r.high_grade, definition=r.definition, implication=r.implication,
        derived_from=r.derived_from, missing=r.missing, notices=_notices(r), components=_components(r),
        references=[(ref.number, ref.source_id) for ref in r.references], draft_items=r.draft_items,
        kb_version=r.kb_version, disclaimer=r.disclaimer,
    )


@pytest.mark.parametrize("grade", GRADES)
def test_stated_grade_whole_result(kb, grade):
    # a stated grade alone: no findings to show, everything else from the grade's row
    assert _actual(escc({"grade": grade})) == _expected_complete(kb, grade, "grade", [])


@pytest.mark.parametrize("grade", GRADES)
def test_grade_from_all_five_findings_whole_result(kb, grade):
    row_id = "g" + grade
    components = [(name, "yes" if DEFINITION[grade][name] else "no", LABEL[name], None, None,
                   [f"escc_grades.{row_id}"], [1, 2, 3]) for name in FINDINGS]
    assert _actual(escc(DEFINITION[grade])) == _expected_complete(kb, grade, "findings", components)


def test_stated_grade_with_some_findings_shows_the_rest_as_implied_by_the_grade(kb):
    r = escc({"grade": "3", "cord_abutted": True})
    implied = "implied by the stated grade"
    # cord abutted alone allows 1c, 2 or 3: the findings 1c and 3 share are implied by the other findings
    notes = {"epidural_disease": "implied by the other findings", "thecal_sac_deformed": "implied by the other findings",
             "cord_abutted": None, "cord_compressed": implied, "csf_visible": implied}
    components = [(name, "yes" if DEFINITION["3"][name] else "no", LABEL[name], notes[name], None,
                   ["escc_grades.g3"], [1, 2, 3]) for name in FINDINGS]
    assert _actual(r) == _expected_complete(kb, "3", "grade", components)


def test_nothing_given_whole_result(kb):
    r = escc({"grade": None})
    assert (r.status, r.grade, r.possible_grades, r.severity, r.high_grade, r.implication, r.definition) == (
        "insufficient_data", None, list(GRADES), None, None, None, None)
    assert (r.derived_from, r.components, r.notices, r.references) == (None, [], [], [])
    assert (r.kb_version, r.disclaimer) == (kb.version, kb.manifest.disclaimer)


def test_undecided_high_grade_whole_result(kb):
    r = escc({"cord_compressed": True})
    implication = kb.table("escc_grades").row("g2")["implication"]
    assert _components(r) == [
        ("epidural_disease", "yes", "epidural disease", "implied by the other findings", None, [], []),
        ("thecal_sac_deformed", "yes", "thecal sac deformed", "implied by the other findings", None, [], []),
        ("cord_abutted", "yes", "spinal cord abutted", "implied by the other findings", None, [], []),
        ("cord_compressed", "yes", "spinal cord compressed", None, None, [], []),
        ("csf_visible", None, "CSF visible around the cord", "unknown", None, [], []),
    ]
    assert _notices(r) == [("implication", implication, ["escc_grades.g2", "escc_grades.g3"], ESCC_SOURCES, [1, 2, 3])]
    assert [(ref.number, ref.source_id) for ref in r.references] == [(1, "bilsky-2010"), (2, "radiopaedia-escc"),
                                                                   (3, "seed-003")]
    assert (r.derived_from, r.definition, r.missing) == (None, None, ["escc.csf_visible"])


def test_undecided_low_grade_with_1c_whole_result(kb):
    # epidural disease present, cord not compressed: 1a, 1b or 1c, all low grade; 1a and 1b share their implication
    rows = kb.table("escc_grades")
    r = escc({"epidural_disease": True, "cord_compressed": False})
    implication = f"Grades 1a, 1b: {rows.row('g1a')['implication']} Grade 1c: {rows.row('g1c')['implication']}"
    assert (r.status, r.grade, r.possible_grades, r.severity, r.high_grade) == (
        "insufficient_data", None, ["1a", "1b", "1c"], "low", False)
    assert r.implication == implication
    assert r.summary == (
        f"insufficient data: thecal sac deformed unknown; grade could be 1a, 1b or 1c; low grade either way: {implication}"
    )
    assert _notices(r) == [
        ("implication", implication, ["escc_grades.g1a", "escc_grades.g1b", "escc_grades.g1c"], ESCC_SOURCES, [1, 2, 3]),
        *_views_1c(kb),
    ]
    assert _components(r) == [
        ("epidural_disease", "yes", "epidural disease", None, None, [], []),
        ("thecal_sac_deformed", None, "thecal sac deformed", "unknown", None, [], []),
        ("cord_abutted", None, "spinal cord abutted", "unknown", None, [], []),
        ("cord_compressed", "no", "spinal cord compressed", None, None, [], []),
        ("csf_visible", "yes", "CSF visible around the cord", "implied by the other findings", None, [], []),
    ]


def test_1b_or_1c_each_implication_under_its_own_grade(kb):
    rows = kb.table("escc_grades")
    r = escc({"thecal_sac_deformed": True, "cord_compressed": False})
    assert r.possible_grades == ["1b", "1c"] and r.missing == ["escc.cord_abutted"]
    assert r.implication == f"Grade 1b: {rows.row('g1b')['implication']} Grade 1c: {rows.row('g1c')['implication']}"


def test_mixed_severity_whole_result():
    r = escc({"cord_abutted": True, "csf_visible": True})
    assert (r.status, r.possible_grades, r.severity, r.high_grade, r.implication) == (
        "insufficient_data", ["1c", "2"], None, None, None)
    assert r.summary == "insufficient data: spinal cord compressed unknown; grade could be 1c or 2"
    assert (r.notices, r.references, r.missing) == ([], [], ["escc.cord_compressed"])


@pytest.mark.parametrize("unknown", ["unknown", " Unknown ", "UNKNOWN", "", "   "])
def test_grade_given_as_unknown_or_blank_is_not_given(unknown):
    assert escc({"grade": unknown}).possible_grades == list(GRADES)
    r = escc({"grade": unknown, "cord_compressed": True, "csf_visible": False})
    assert (r.status, r.grade, r.derived_from) == ("complete", "3", "findings")


@pytest.mark.parametrize(
    "grade,message",
    [
        (Decimal("2"), "escc.grade: Decimal('2') is not an ESCC grade; allowed values: 0, 1a, 1b, 1c, 2, 3"),
        (2.0, "escc.grade: 2.0 is not an ESCC grade; allowed values: 0, 1a, 1b, 1c, 2, 3"),
        (False, "escc.grade: False is not an ESCC grade; allowed values: 0, 1a, 1b, 1c, 2, 3"),
        (" grade 1 ", "escc.grade: '1' is not a complete ESCC grade; give 1a, 1b or 1c"),
        ("1d", "escc.grade: '1d' is not an ESCC grade; allowed values: 0, 1a, 1b, 1c, 2, 3"),
        ("0a", "escc.grade: '0a' is not an ESCC grade; allowed values: 0, 1a, 1b, 1c, 2, 3"),
        ("3c", "escc.grade: '3c' is not an ESCC grade; allowed values: 0, 1a, 1b, 1c, 2, 3"),
        ("grade", "escc.grade: 'grade' is not an ESCC grade; allowed values: 0, 1a, 1b, 1c, 2, 3"),
    ],
)
def test_only_text_or_a_whole_number_is_read_as_a_grade(grade, message):
    # a number that is not an integer is never read as a grade, even when its text looks like one
    with pytest.raises(InvalidInputError) as exc:
        escc({"grade": grade})
    assert str(exc.value) == message


@pytest.mark.parametrize("text,grade", [(" GRADE 1C ", "1c"), ("grade3", "3"), ("1 b", "1b"), (0, "0"), ("Grade 0", "0")])
def test_grade_spellings(text, grade):
    assert escc({"grade": text}).grade == grade


@pytest.mark.parametrize(
    "row_id,finding,value,given,message",
    [
        ("g3", "csf_visible", True, {"csf_visible": False, "epidural_disease": True},
         "CSF visible around the cord absent and epidural disease present fit no ESCC grade"),
        ("g1a", "thecal_sac_deformed", True, {"epidural_disease": True, "thecal_sac_deformed": False},
         "epidural disease present and thecal sac deformed absent fit no ESCC grade"),
    ],
)
def test_a_pair_that_fits_no_grade_of_an_altered_table_is_named_with_both_values(
    kb_copy, row_id, finding, value, given, message
):
    # Defensive path: with the Bilsky patterns every clash is 'absent below present' or 'no CSF without compression'.
    # A table whose grade 3 kept CSF visible leaves 'no CSF visible' in no grade, one whose grade 1a deformed the
    # thecal sac leaves 'epidural disease without a deformed sac' in none: the error names both findings and gives
    # each one's value in words.
    path = kb_copy / "tables" / "escc_grades.yaml"
    table = yaml.safe_load(path.read_text())
    next(r for r in table["rows"] if r["id"] == row_id)["findings"][finding] = value
    path.write_text(yaml.safe_dump(table, sort_keys=False))
    kb = load_kb(kb_copy)
    with pytest.raises(ContradictoryInputError) as exc:
        escc(given, kb)
    assert exc.value.fields == [f"escc.{name}" for name in given]
    assert exc.value.message == message


def test_a_single_finding_that_fits_no_grade_of_an_altered_table_is_an_error(kb_copy):
    # With the Bilsky patterns every single finding fits some grade; a table without 'no CSF visible' leaves that
    # finding alone in no grade, and there is no second finding to name.
    path = kb_copy / "tables" / "escc_grades.yaml"
    table = yaml.safe_load(path.read_text())
    next(r for r in table["rows"] if r["id"] == "g3")["findings"]["csf_visible"] = True
    path.write_text(yaml.safe_dump(table, sort_keys=False))
    with pytest.raises(ContradictoryInputError) as exc:
        escc({"csf_visible": False}, load_kb(kb_copy))
    assert (exc.value.fields, exc.value.message) == (["escc.csf_visible"], "these findings fit no ESCC grade")


def test_a_draft_grade_row_is_flagged_once_on_every_result_that_uses_it(kb_copy):
    path = kb_copy / "tables" / "escc_grades.yaml"
    table = yaml.safe_load(path.read_text())
    next(r for r in table["rows"] if r["id"] == "g3")["review_status"] = "draft"
    path.write_text(yaml.safe_dump(table, sort_keys=False))
    kb = load_kb(kb_copy)
    for data in ({"grade": "3"}, {"csf_visible": False}, {"cord_compressed": True}):
        r = escc(data, kb)
        assert r.draft_items == ["escc_grades.g3"], data
        assert r.draft_labels == [f"{kb.table('escc_grades').title}: g3"]
    assert escc({"grade": "2"}, kb).draft_items == []


_maybe = st.sampled_from([True, False, None])


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([None, "0", "1a", "1b", "1c", "2", "3", "unknown"]), _maybe, _maybe, _maybe, _maybe, _maybe)
def test_the_lean_grading_gives_the_grade_and_errors_of_the_full_one(grade, epi, sac, abut, comp, csf):
    """grades() (what report pre-fill uses) against escc(): the same grade, the same possible grades, the same error."""
    from spinemets.scores.escc import grades

    data = {"grade": grade, "epidural_disease": epi, "thecal_sac_deformed": sac, "cord_abutted": abut,
            "cord_compressed": comp, "csf_visible": csf}
    try:
        full = escc(data)
    except SpinemetsError as exc:
        with pytest.raises(type(exc)) as lean_error:
            grades(data)
        assert str(lean_error.value) == str(exc)
        return
    assert grades(data) == (full.grade, full.possible_grades)


# --- reading the grade at a level (issue 15) -------------------------------------------------------------------------

@pytest.mark.parametrize("level, statements", [
    ("C5", ["escc.level.paralysis_by_level"]),
    ("T7", ["escc.level.paralysis_by_level"]),
    ("T11", ["escc.level.paralysis_by_level", "escc.level.conus"]),
    ("L2", ["escc.level.paralysis_by_level", "escc.level.conus", "escc.level.below_conus"]),
    ("L4-L5", ["escc.level.paralysis_by_level", "escc.level.below_conus"]),
    ("S2", ["escc.level.below_conus"]),
    ("C0", []),
])
def test_what_the_sources_say_at_a_level(level, statements):
    r = escc({"grade": "2", "level": level})
    assert r.level == parse_span(level)
    assert [n.kb_items[0] for n in r.notices if n.code == "level"] == statements
    assert r.grade == "2"  # the grade itself is the same at every level: no source gives another scale


def test_below_the_conus_the_caution_is_said_and_cited():
    r = escc({"cord_compressed": True, "csf_visible": False, "level": "L3"})
    text = next(n.message for n in r.notices if n.code == "level" and "cauda equina" in n.message)
    assert "cervical and thoracic tumours only" in text
    assert {ref.source_id for ref in r.references} >= {"bilsky-2010", "nakashima-2021"}
    plain = escc({"cord_compressed": True, "csf_visible": False})
    assert not any(n.code == "level" for n in plain.notices) and plain.level is None


@pytest.mark.parametrize("level, words", [("T13", "thoracic levels are T1 to T12"), ("X4", "not a vertebral level")])
def test_a_bad_level_is_refused(level, words):
    with pytest.raises(InvalidInputError) as exc:
        escc({"grade": "1a", "level": level})
    assert exc.value.field == "escc.level" and words in exc.value.message
