"""Marrow signal pattern matching against tables/marrow_signal.yaml (seed 003 prose, seed 004, primary studies).

Expected signal per tissue, as tabulated (draft cells marked *):
- fatty marrow: T1 hyper, STIR hypo*, opposed-phase drop, T1 Gd FS hypo* (= not enhancing)
- red marrow: T1 hyper (relative to muscle and disc), opposed-phase drop
- benign oedema: T1 hypo, T2 hyper, STIR hyper, opposed drop, DWI not restricted, ADC high, enhancing
- lytic metastasis: T1 hypo, T2 hyper, STIR hyper*, no drop, DWI restricted, ADC low, enhancing
- blastic metastasis: T1 hypo, T2 hypo, Gd variable
- typical haemangioma: T1 hyper, STIR variable, enhancing
- discogenic change: T1 variable*, STIR variable*
- discitis: T1 hypo, T2 hyper, STIR hyper, enhancing
Disc-space crossing (tables/disc_space_crossing.yaml): discitis crosses; lytic and blastic metastases do not.
"""

from __future__ import annotations

import re

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from spinemets.errors import ContradictoryInputError, InvalidInputError, SpinemetsError
from spinemets.interpret.marrow import SEQUENCES, VOCABULARY, MarrowInput, marrow_signal
from spinemets.knowledge.loader import load_kb
from tests.support import check_arbitrary_input, DISCLAIMER, from_kb


def tissues(kb) -> list[str]:
    """The tissues of the signal table, in its order."""
    return list(dict.fromkeys(r["tissue"] for r in kb.table("marrow_signal").rows))


LYTIC = dict(t1="hypointense", t2="hyperintense", stir="hyperintense", opposed_phase="no_drop",
             dwi="restricted", adc="hypointense", t1_gd_fs="enhancing")


def by_tissue(r):
    return {t.tissue: t for t in r.ranking}


def test_table_covers_the_eight_tissues_and_vocabulary(kb):
    assert tissues(kb) == ["fatty_marrow", "red_marrow", "benign_oedema", "lytic_metastasis", "blastic_metastasis",
                       "typical_haemangioma", "discogenic_change", "discitis"]
    for row in kb.table("marrow_signal").rows:
        assert row["sequence"] in SEQUENCES
    for row in kb.table("disc_space_crossing").rows:
        assert row["tissue"] in tissues(kb) and isinstance(row["crosses_disc_space"], bool)


def test_lytic_pattern_ranks_lytic_metastasis_first():
    r = marrow_signal(LYTIC)
    assert r.status == "complete"
    t = by_tissue(r)
    # Lytic metastasis matches all seven sequences.
    assert r.ranking[0].tissue == "lytic_metastasis" and r.ranking[0].rank == 1
    assert t["lytic_metastasis"].score == 7 and t["lytic_metastasis"].mismatches == []
    # Discitis: T1, T2, STIR, Gd match; no rows for opposed phase, DWI, ADC -> +4.
    assert t["discitis"].score == 4 and t["discitis"].no_data == ["opposed_phase", "dwi", "adc"]
    # Benign oedema: 4 matches, but opposed phase (drop), DWI (not restricted), ADC (high) mismatch -> +1.
    assert (t["benign_oedema"].score, t["benign_oedema"].mismatches) == (1, ["opposed_phase", "dwi", "adc"])
    # Fatty marrow: T1, STIR, opposed phase, Gd all mismatch -> -4.
    assert t["fatty_marrow"].score == -4 and r.ranking[-1].tissue == "fatty_marrow"
    assert "marrow_signal.lytic_metastasis-stir" in r.draft_items  # inferred cell flagged
    assert r.summary == ("best fit: lytic metastasis (7 of 7 compared findings match); "
                         "next: discitis (4 of 4 compared findings match)")


def test_fatty_marrow_pattern():
    r = marrow_signal({"t1": "hyperintense", "stir": "hypointense", "opposed_phase": "drop", "t1_gd_fs": "not_enhancing"})
    t = by_tissue(r)
    assert r.ranking[0].tissue == "fatty_marrow" and t["fatty_marrow"].score == 4
    # Red marrow: T1 and opposed phase match; no STIR or Gd rows -> +2.
    assert t["red_marrow"].score == 2 and t["red_marrow"].no_data == ["stir", "t1_gd_fs"]
    # Haemangioma: T1 matches, STIR variable (compatible), enhancing expected -> 1 - 1 = 0.
    assert (t["typical_haemangioma"].matches, t["typical_haemangioma"].compatible,
            t["typical_haemangioma"].mismatches) == (["t1"], ["stir"], ["t1_gd_fs"])
    # The table's 'hypointense' on fat-suppressed post-gadolinium T1 reads as not enhancing.
    check = next(c for c in t["fatty_marrow"].checks if c.finding == "t1_gd_fs")
    assert (check.expected, check.outcome, check.draft) == ("not_enhancing", "match", True)


def test_blastic_pattern():
    r = marrow_signal({"t1": "hypointense", "t2": "hypointense"})
    assert r.ranking[0].tissue == "blastic_metastasis" and r.ranking[0].score == 2
    assert r.ranking[0].rank == 1 and r.ranking[1].rank == 2


def test_disc_space_crossing_points_to_discitis():
    r = marrow_signal({"t1": "hypointense", "t2": "hyperintense", "stir": "hyperintense", "crosses_disc_space": True})
    t = by_tissue(r)
    assert r.ranking[0].tissue == "discitis" and t["discitis"].score == 4
    assert t["benign_oedema"].score == 3 and t["benign_oedema"].no_data == ["crosses_disc_space"]
    assert t["lytic_metastasis"].score == 2 and t["lytic_metastasis"].mismatches == ["crosses_disc_space"]
    notice = next(n for n in r.notices if n.code == "disc_space")
    assert notice.kb_items == ["ddx.metastases_respect_disc", "ddx.discitis_osteomyelitis"]
    assert "seed-003" in notice.sources and notice.refs
    assert "bone metastases do not usually cross the disc" in notice.message


def test_disc_space_respected():
    r = marrow_signal({"crosses_disc_space": False})
    t = by_tissue(r)
    assert t["lytic_metastasis"].matches == ["crosses_disc_space"]
    assert t["blastic_metastasis"].matches == ["crosses_disc_space"]
    assert t["discitis"].mismatches == ["crosses_disc_space"]
    assert not any(n.code == "disc_space" for n in r.notices)


def test_chemical_shift_alias():
    a = marrow_signal({"chemical_shift": "no_drop"})
    b = marrow_signal({"opposed_phase": "no_drop"})
    assert [t.tissue for t in a.ranking] == [t.tissue for t in b.ranking]
    assert a.observed == {"opposed_phase": "no_drop"}
    assert marrow_signal({"chemical_shift": "drop", "opposed_phase": "drop"}).status == "complete"


def test_contradictory_chemical_shift():
    with pytest.raises(ContradictoryInputError) as exc:
        marrow_signal({"opposed_phase": "drop", "chemical_shift": "no_drop"})
    assert str(exc.value) == (
        "contradictory input (marrow.opposed_phase, marrow.chemical_shift): "
        "opposed_phase is drop but chemical_shift is no_drop; they are the same finding"
    )


@pytest.mark.parametrize("field,value,canonical", [
    ("adc", "low", "hypointense"), ("adc", "High", "hyperintense"), ("t1", "Hypointense", "hypointense"),
    ("opposed_phase", "no drop", "no_drop"), ("opposed_phase", "signal-drop", "drop"),
    ("t1_gd_fs", "enhancement", "enhancing"), ("t1_gd_fs", "non-enhancing", "not_enhancing"),
    ("dwi", "unrestricted", "not_restricted"),
])
def test_spellings(field, value, canonical):
    assert marrow_signal({field: value}).observed[field] == canonical


def test_t1_notices():
    r = marrow_signal({"t1": "hyperintense"})
    codes = [n.code for n in r.notices]
    assert "t1_reference" in codes and "t1_pitfall" in codes
    assert "t1_pitfall" not in [n.code for n in marrow_signal({"t1": "hypointense"}).notices]


def test_sequence_without_table_rows_is_insufficient():
    r = marrow_signal({"in_phase": "hyperintense"})
    assert r.status == "insufficient_data"
    assert r.summary == "insufficient data: the table has no expected signal for in_phase in any tissue"
    assert {t.rank for t in r.ranking} == {1}
    assert r.missing == ["marrow.t1", "marrow.t2", "marrow.stir", "marrow.opposed_phase", "marrow.dwi", "marrow.adc",
                         "marrow.t1_gd_fs"]
    assert r.observed == {"in_phase": "hyperintense"}
    assert [(c.name, c.value) for c in r.components] == [("in_phase", "hyperintense")]
    assert r.notices == [] and r.references == []


def test_nothing_given():
    for data in ({}, None, {"t1": "unknown", "crosses_disc_space": None}):
        r = marrow_signal(data)
        assert r.status == "insufficient_data"
        assert r.summary == "insufficient data: no sequence signal and no disc-space finding given"
        assert r.missing == [f"marrow.{s}" for s in SEQUENCES] + ["marrow.crosses_disc_space"]
        assert r.ranking == []


def test_model_input_and_text():
    r = marrow_signal(MarrowInput(t1="hypointense", t2="hypointense"))
    text = r.to_text()
    assert text.splitlines()[0].startswith("MARROW: best fit: blastic metastasis (2 of 2 compared findings match)")
    assert "  1. blastic metastasis (score +2): 2 matches (t1, t2); 0 mismatches [" in text
    assert "t2 expected hyperintense" in text  # lytic metastasis' mismatch is spelled out
    assert DISCLAIMER in text


# --- the whole result of worked examples ---------------------------------------------------------------

METHOD = ("The ranking counts agreement with the expected signal in the knowledge-base table; it is not a probability, "
          "signal patterns of these tissues overlap, and tissues with fewer table rows can rank high on little evidence.")
DISC_CROSSING = ("The process crosses the disc space, which points to discitis/osteomyelitis: bone metastases do not "
                 "usually cross the disc.")


def tissue_lines(r) -> list[str]:
    """The per-tissue lines of the text, each checked to end with its tissue's reference numbers (when it cites
    any) and returned without them, so that the wording is compared exactly whatever the numbering."""
    lines = r.extra_lines()
    assert len(lines) == len(r.ranking)
    out = []
    for line, t in zip(lines, r.ranking, strict=True):
        refs = sorted({n for c in t.checks for n in c.refs})
        m = re.fullmatch(r"(.*?)( \[[0-9,]+\])?", line)
        assert m is not None
        assert m.group(2) == (f" [{','.join(map(str, refs))}]" if refs else None), line
        out.append(m.group(1))
    return out


def test_mixed_pattern_whole_text():
    """T1 low, STIR high, no opposed-phase drop and a respected disc, with an isointense T2 that fits no tissue."""
    r = marrow_signal({"t1": "hypointense", "t2": "isointense", "stir": "hyperintense", "opposed_phase": "no_drop",
                       "crosses_disc_space": False})
    assert r.status == "complete"
    assert r.summary == ("best fit: lytic metastasis (4 of 5 compared findings match); "
                         "next: blastic metastasis (2 of 3 compared findings match)")
    assert tissue_lines(r) == [
        "  1. lytic metastasis (score +3): 4 matches (t1, stir, opposed_phase, crosses_disc_space); "
        "1 mismatch (t2 expected hyperintense) DRAFT",
        "  2. blastic metastasis (score +1): 2 matches (t1, crosses_disc_space); 1 mismatch (t2 expected hypointense); "
        "no data for stir, opposed_phase",
        "  3. discogenic change (score +0): 0 matches; 0 mismatches; variable on t1, stir; "
        "no data for t2, opposed_phase, crosses_disc_space DRAFT",
        "  4. benign oedema (score +0): 2 matches (t1, stir); 2 mismatches (t2 expected hyperintense, "
        "opposed_phase expected drop); no data for crosses_disc_space",
        "  4. discitis (score +0): 2 matches (t1, stir); 2 mismatches (t2 expected hyperintense, "
        "crosses_disc_space expected yes); no data for opposed_phase",
        "  6. typical haemangioma (score -1): 0 matches; 1 mismatch (t1 expected hyperintense); variable on stir; "
        "no data for t2, opposed_phase, crosses_disc_space",
        "  7. red marrow (score -2): 0 matches; 2 mismatches (t1 expected hyperintense, opposed_phase expected drop); "
        "no data for t2, stir, crosses_disc_space",
        "  8. fatty marrow (score -3): 0 matches; 3 mismatches (t1 expected hyperintense, stir expected hypointense, "
        "opposed_phase expected drop); no data for t2, crosses_disc_space DRAFT",
    ]
    assert [(c.name, c.value) for c in r.components] == [
        ("t1", "hypointense"), ("t2", "isointense"), ("stir", "hyperintense"), ("opposed_phase", "no_drop"),
        ("crosses_disc_space", "no"),
    ]
    assert "  crosses the disc space: no" in r.to_text().splitlines()
    assert [n.code for n in r.notices] == ["method", "t1_reference", "quantitative"]  # T1 low: no pitfall notice
    assert r.notices[0].message == METHOD
    assert r.draft_items == ["marrow_signal.fatty_marrow-stir", "marrow_signal.lytic_metastasis-stir",
                             "marrow_signal.discogenic_change-t1", "marrow_signal.discogenic_change-stir"]
    lytic = by_tissue(r)["lytic_metastasis"]
    disc = next(c for c in lytic.checks if c.finding == "crosses_disc_space")
    assert disc.model_dump() == {
        "finding": "crosses_disc_space", "observed": "no", "expected": "no", "outcome": "match",
        "kb_item": "disc_space_crossing.lytic_metastasis", "draft": False, "refs": disc.refs,
    } and disc.refs


def test_disc_space_crossing_alone_whole_text(kb):
    r = marrow_signal({"crosses_disc_space": True})
    assert r.status == "complete"
    assert r.summary == ("best fit: discitis (1 of 1 compared finding match); "
                         "next: fatty marrow (0 of 0 compared findings match)")
    # Tissues without a disc-space row cite nothing: their lines carry no reference brackets.
    assert tissue_lines(r) == [
        "  1. discitis (score +1): 1 match (crosses_disc_space); 0 mismatches",
        "  2. fatty marrow (score +0): 0 matches; 0 mismatches; no data for crosses_disc_space",
        "  2. red marrow (score +0): 0 matches; 0 mismatches; no data for crosses_disc_space",
        "  2. benign oedema (score +0): 0 matches; 0 mismatches; no data for crosses_disc_space",
        "  2. typical haemangioma (score +0): 0 matches; 0 mismatches; no data for crosses_disc_space",
        "  2. discogenic change (score +0): 0 matches; 0 mismatches; no data for crosses_disc_space",
        "  7. lytic metastasis (score -1): 0 matches; 1 mismatch (crosses_disc_space expected no)",
        "  7. blastic metastasis (score -1): 0 matches; 1 mismatch (crosses_disc_space expected no)",
    ]
    assert [(c.name, c.value) for c in r.components] == [("crosses_disc_space", "yes")]
    assert "  crosses the disc space: yes" in r.to_text().splitlines()
    t = by_tissue(r)
    rows = {row["tissue"]: row for row in kb.table("disc_space_crossing").rows}
    for tissue, expected, outcome in (("discitis", "yes", "match"), ("lytic_metastasis", "no", "mismatch"),
                                      ("blastic_metastasis", "no", "mismatch")):
        (check,) = t[tissue].checks
        assert (check.finding, check.observed, check.expected, check.outcome, check.kb_item, check.draft) == (
            "crosses_disc_space", "yes", expected, outcome, f"disc_space_crossing.{tissue}", False)
        assert [r.references[n - 1].source_id for n in check.refs] == list(rows[tissue].sources)
    (check,) = t["fatty_marrow"].checks
    assert (check.observed, check.expected, check.outcome, check.kb_item, check.refs) == (
        "yes", None, "no_data", None, [])
    assert [(n.code, n.message) for n in r.notices] == [("method", METHOD), ("disc_space", DISC_CROSSING)]
    assert r.draft_items == []


def test_fatty_marrow_whole_text_and_tie(kb):
    """Normal fatty marrow: T1 bright and losing signal out of phase; fatty and red marrow tie on these two."""
    r = marrow_signal({"t1": "hyperintense", "opposed_phase": "drop"})
    assert r.summary == ("tie between fatty marrow and red marrow (2 of 2 compared findings match); "
                         "next: typical haemangioma (1 of 1 compared finding match)")
    assert tissue_lines(r) == [
        "  1. fatty marrow (score +2): 2 matches (t1, opposed_phase); 0 mismatches",
        "  1. red marrow (score +2): 2 matches (t1, opposed_phase); 0 mismatches",
        "  3. typical haemangioma (score +1): 1 match (t1); 0 mismatches; no data for opposed_phase",
        "  4. discogenic change (score +0): 0 matches; 0 mismatches; variable on t1; no data for opposed_phase DRAFT",
        "  5. benign oedema (score +0): 1 match (opposed_phase); 1 mismatch (t1 expected hypointense)",
        "  6. blastic metastasis (score -1): 0 matches; 1 mismatch (t1 expected hypointense); "
        "no data for opposed_phase",
        "  6. discitis (score -1): 0 matches; 1 mismatch (t1 expected hypointense); no data for opposed_phase",
        "  8. lytic metastasis (score -2): 0 matches; 2 mismatches (t1 expected hypointense, "
        "opposed_phase expected no_drop)",
    ]
    assert [n.code for n in r.notices] == ["method", "t1_reference", "t1_pitfall", "quantitative"]
    method, reference, pitfall, quantitative = r.notices
    assert (method.message, method.kb_items, method.refs) == (METHOD, [], [])
    for notice, statement in ((reference, "mri.t1_metastasis_below_muscle_and_disc"),
                              (pitfall, "mri.t1_diffuse_infiltration_pitfall")):
        assert (notice.message, notice.kb_items) == (kb.statement(statement).text, [statement])
        assert notice.sources == list(kb.statement(statement).sources)
        assert [r.references[n - 1].source_id for n in notice.refs] == sorted(
            notice.sources, key=[ref.source_id for ref in r.references].index)
    assert quantitative.message == (
        "A measured opposed-phase signal drop can be compared with each published cut-off in the quantitative "
        "interpretation.")
    assert (quantitative.kb_items, quantitative.refs) == ([], [])


def test_only_mismatches_is_still_a_result():
    """An isointense T2 fits no tissue's expected T2: every tissue with a T2 row mismatches; the rest tie at 0."""
    r = marrow_signal({"t2": "isointense"})
    assert r.status == "complete"
    assert r.summary == ("tie between fatty marrow and red marrow and typical haemangioma and discogenic change "
                         "(0 of 0 compared findings match); next: benign oedema (0 of 1 compared finding match)")
    assert [n.code for n in r.notices] == ["method"]  # no T1, no opposed phase, no disc crossing


def test_chemical_shift_alone_brings_the_quantitative_pointer():
    r = marrow_signal({"chemical_shift": "drop"})
    assert [n.code for n in r.notices] == ["method", "quantitative"]


def _edit_yaml(path, change) -> None:
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


def _make_draft(item: dict) -> None:
    item["review_status"] = "draft"
    item["verification"] = "unverified"


def test_draft_disc_row_is_flagged_and_notice_sources_are_listed(kb_copy):
    """A draft disc-space row is flagged like a draft signal cell; a source cited only by a notice (here added to
    the T1 pitfall statement) is still in the numbered references."""
    _edit_yaml(kb_copy / "tables" / "disc_space_crossing.yaml",
               lambda t: _make_draft(next(r for r in t["rows"] if r["id"] == "discitis")))
    _edit_yaml(kb_copy / "statements" / "mri.yaml",
               lambda items: next(s for s in items if s["id"] == "mri.t1_diffuse_infiltration_pitfall")["sources"]
               .append("cuenod-1996"))
    kb = load_kb(kb_copy)
    r = marrow_signal({"t1": "hyperintense", "crosses_disc_space": True}, kb=kb)
    check = next(c for c in by_tissue(r)["discitis"].checks if c.finding == "crosses_disc_space")
    assert (check.outcome, check.draft) == ("match", True)
    assert r.draft_items == ["marrow_signal.discogenic_change-t1", "disc_space_crossing.discitis"]
    line = next(line for line in tissue_lines(r) if " discitis " in line)
    assert line.endswith(
        ". discitis (score +0): 1 match (crosses_disc_space); 1 mismatch (t1 expected hypointense) DRAFT")
    pitfall = next(n for n in r.notices if n.code == "t1_pitfall")
    cited = [ref.source_id for ref in r.references]
    assert "cuenod-1996" in cited
    assert [cited[n - 1] for n in pitfall.refs] == sorted(pitfall.sources, key=cited.index)


def test_findings_without_rows_are_named_and_not_asked_for(kb_copy):
    """With no DWI rows in the table, DWI is as uninformative as in-phase: the summary names both given findings,
    and neither is listed as missing (the table could not use them)."""
    _edit_yaml(kb_copy / "tables" / "marrow_signal.yaml",
               lambda t: t.update(rows=[r for r in t["rows"] if r["sequence"] != "dwi"]))
    kb = load_kb(kb_copy)
    r = marrow_signal({"in_phase": "hyperintense", "dwi": "restricted"}, kb=kb)
    assert r.status == "insufficient_data"
    assert r.summary == "insufficient data: the table has no expected signal for in_phase, dwi in any tissue"
    assert r.missing == ["marrow.t1", "marrow.t2", "marrow.stir", "marrow.opposed_phase", "marrow.adc",
                         "marrow.t1_gd_fs"]
    assert r.observed == {"in_phase": "hyperintense", "dwi": "restricted"}
    r = marrow_signal({"dwi": "restricted"}, kb=kb)
    assert r.missing == ["marrow.t1", "marrow.t2", "marrow.stir", "marrow.opposed_phase", "marrow.adc",
                         "marrow.t1_gd_fs"]


# --- errors -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("data,message", [
    ({"t1": "bright"}, "marrow.t1: 'bright' is not allowed; allowed values: 'hyperintense', 'hypointense', 'isointense' (or 'unknown')"),
    ({"t1": 5}, "marrow.t1: expected a signal word, got 5; allowed values: 'hyperintense', 'hypointense', 'isointense' (or 'unknown')"),
    ({"dwi": "hyperintense"}, "marrow.dwi: 'hyperintense' is not allowed; allowed values: 'restricted', 'not_restricted' (or 'unknown')"),
    ({"opposed_phase": "hypointense"}, "marrow.opposed_phase: 'hypointense' is not allowed; allowed values: 'drop', 'no_drop' (or 'unknown')"),
    ({"chemical_shift": "yes"}, "marrow.chemical_shift: 'yes' is not allowed; allowed values: 'drop', 'no_drop' (or 'unknown')"),
    ({"t1_gd_fs": "bright"}, "marrow.t1_gd_fs: 'bright' is not allowed; allowed values: 'enhancing', 'not_enhancing' (or 'unknown')"),
    ({"crosses_disc_space": "sometimes"}, "marrow.crosses_disc_space: expected true, false or null, got 'sometimes'"),
    ({"flair": "hyperintense"},
     "marrow.flair: unknown field; allowed fields: adc, chemical_shift, crosses_disc_space, dwi, in_phase, "
     "opposed_phase, stir, t1, t1_gd_fs, t2"),
    ({"2": "hyperintense"},  # a key that looks like a number is named as given, not as a list position
     "marrow.2: unknown field; allowed fields: adc, chemical_shift, crosses_disc_space, dwi, in_phase, "
     "opposed_phase, stir, t1, t1_gd_fs, t2"),
    ("t1 hypointense", "marrow: expected an object, got str"),
])
def test_invalid_inputs(data, message):
    with pytest.raises(InvalidInputError) as exc:
        marrow_signal(data)
    assert str(exc.value) == message


# --- properties ---------------------------------------------------------------------------------------

patterns = st.fixed_dictionaries(
    {},
    optional={**{s: st.sampled_from([*VOCABULARY[s], "unknown"]) for s in SEQUENCES},
              "crosses_disc_space": st.one_of(st.none(), st.booleans())},
)


@settings(max_examples=200, deadline=None)
@given(patterns)
def test_ranking_is_a_permutation_of_all_tissues(kb, data):
    r = marrow_signal(data)
    if not r.ranking:
        assert r.status == "insufficient_data"
        return
    assert sorted(t.tissue for t in r.ranking) == sorted(tissues(kb))
    ranks = [t.rank for t in r.ranking]
    assert ranks == sorted(ranks) and ranks[0] == 1
    scores = [t.score for t in r.ranking]
    assert scores == sorted(scores, reverse=True)
    findings = [k for k in r.components]
    for t in r.ranking:
        assert t.score == len(t.matches) - len(t.mismatches)
        assert len(t.checks) == len(findings)
        assert sorted(t.matches + t.mismatches + t.compatible + t.no_data) == sorted(c.finding for c in t.checks)
        for c in t.checks:
            assert (c.outcome == "no_data") == (c.kb_item is None)
            assert (c.outcome == "no_data") or c.refs


@settings(max_examples=200, deadline=None)
@given(patterns, from_kb(lambda kb: st.sampled_from(tissues(kb))))
def test_adding_a_matching_finding_never_lowers_a_tissue(kb, data, tissue):
    rows = [r for r in kb.table("marrow_signal").rows if r["tissue"] == tissue and r["signal"] in VOCABULARY[r["sequence"]]]
    if not rows:
        return
    row = rows[0]
    base = {k: v for k, v in data.items() if k != row["sequence"]}
    before = marrow_signal(base)
    after = marrow_signal(base | {row["sequence"]: row["signal"]})
    score_before = next((t.score for t in before.ranking if t.tissue == tissue), 0)
    score_after = next(t.score for t in after.ranking if t.tissue == tissue)
    assert score_after == score_before + 1


@settings(max_examples=300, deadline=None)
@given(st.one_of(
    st.none(), st.integers(), st.text(max_size=5),
    st.dictionaries(
        st.one_of(st.sampled_from([*SEQUENCES, "chemical_shift", "crosses_disc_space"]), st.text(max_size=6)),
        st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=8),
                  st.sampled_from(["hypointense", "drop", "no_drop", "restricted", "enhancing", "low"])),
        max_size=6,
    ),
))
def test_arbitrary_input_gives_our_error_naming_the_field_or_a_readable_ranking(kb, data):
    r = check_arbitrary_input(marrow_signal, data, "marrow", kb)
    if r is not None and r.ranking:
        assert sorted(t.tissue for t in r.ranking) == sorted(tissues(kb))
