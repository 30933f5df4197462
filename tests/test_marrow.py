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

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spinemets.errors import ContradictoryInputError, InvalidInputError, SpinemetsError
from spinemets.interpret.marrow import SEQUENCES, VOCABULARY, MarrowInput, marrow_signal
from tests.support import DISCLAIMER, from_kb


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
    assert "marrow.t1" in r.missing


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
def test_arbitrary_input_raises_only_our_errors(data):
    try:
        r = marrow_signal(data)
    except SpinemetsError:
        return
    assert r.status in ("complete", "insufficient_data") and r.disclaimer
    r.to_text()
