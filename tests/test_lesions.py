"""Several lesions in one case: per-lesion SINS and ESCC, the index lesions by their stated rules, the vertebrae
counted for the prognostic scores, and every error path."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spinemets.assess import assess
from spinemets.errors import ContradictoryInputError, InvalidInputError
from spinemets.levels import ORDER

# SINS T12 (junctional 3), mechanical 3, lytic 2, normal 0, gt50 3, bilateral 3 = 14
UNSTABLE = {"pain": "mechanical", "lesion": "lytic", "alignment": "normal", "collapse": "gt50",
            "posterolateral": "bilateral"}
# semi-rigid 1, none 0, blastic 0, normal 0, none 0, none 0 = 1
STABLE = {"pain": "none", "lesion": "blastic", "alignment": "normal", "collapse": "none", "posterolateral": "none"}


def case(*lesions, **extra):
    return {"lesions": list(lesions), **extra}


def test_each_lesion_is_scored_and_the_index_lesions_named():
    r = assess(case({"levels": "T12", "sins": UNSTABLE, "escc": {"grade": "1b"}},
                    {"levels": "T5-T6", "sins": STABLE, "escc": {"grade": "3"}})).lesions
    assert [x.sins.total for x in r.lesions] == [14, 1]
    assert r.lesions[1].sins.components[0].value == "semi_rigid"  # T5 and T6 are both semi-rigid: location certain
    by = {ix.by: ix for ix in r.index}
    assert (by["sins"].lesions, by["sins"].certain) == (["T12"], True)
    assert (by["escc"].lesions, by["escc"].certain) == (["T5-T6"], True)
    assert by["sins"].summary == "Highest SINS total: T12 (SINS 14)"
    assert by["escc"].summary == "Highest ESCC grade: T5-T6 (grade 3)"
    assert r.involved_vertebrae == ["T5", "T6", "T12"]


def test_ties_are_listed_together():
    r = assess(case({"levels": "T4", "sins": STABLE}, {"levels": "T8", "sins": STABLE})).lesions
    assert r.index[0].lesions == ["T4", "T8"] and r.index[0].certain
    assert "tied" in r.index[0].summary


def test_an_incomplete_score_leaves_the_index_open_and_says_so():
    partial = {k: v for k, v in UNSTABLE.items() if k != "pain"}  # 11 known, 11-14 possible
    r = assess(case({"levels": "T12", "sins": partial}, {"levels": "L1", "sins": {**UNSTABLE, "pain": "none"}})).lesions
    ix = r.index[0]
    assert ix.certain is False and ix.lesions == ["T12", "L1"]
    assert "could be the highest" in ix.summary
    assert r.status == "insufficient_data"


def test_a_range_across_location_categories_needs_its_level():
    r = assess(case({"levels": "T10-L2", "sins": UNSTABLE})).lesions
    s = r.lesions[0].sins
    assert s.status == "insufficient_data" and "sins.level or sins.location" in s.missing
    with_level = assess(case({"levels": "T10-L2", "sins": {**UNSTABLE, "level": "T12"}})).lesions
    assert with_level.lesions[0].sins.total == 14


def test_the_vertebrae_feed_the_prognostic_scores():
    lesions = [{"levels": "T7-T9", "sins": STABLE}, {"levels": "L3"}]
    r = assess(case(*lesions, prognosis={"primary": "breast"}))
    tokuhashi = r.prognosis.scores[0]
    assert next(c for c in tokuhashi.components if c.name == "vertebral_body_metastases").points == 0  # 4 vertebrae
    assert "prognosis.vertebral_metastases" not in tokuhashi.missing
    more = assess(case(*lesions, prognosis={"primary": "breast", "vertebral_metastases": 6}))  # others not described
    assert more.prognosis.scores[0].status == "insufficient_data"
    with pytest.raises(ContradictoryInputError) as exc:
        assess(case(*lesions, prognosis={"vertebral_metastases": 2}))
    assert exc.value.fields == ["case.prognosis.vertebral_metastases", "case.lesions"]


def test_noms_is_framed_for_each_lesion_when_patient_facts_are_given():
    r = assess(case({"levels": "T12", "sins": UNSTABLE, "escc": {"grade": "3"}}, {"levels": "L4", "escc": {"grade": "0"}},
                    patient={"histology": "renal cell carcinoma", "myelopathy": True, "fit_for_surgery": True}))
    assert r.noms is None
    assert [x.noms is not None for x in r.lesions.lesions] == [True, True]
    assert r.lesions.lesions[0].noms.escc_grade == "3"


@pytest.mark.parametrize("lesions, extra, error, fields", [
    ([{"levels": "T7-T9"}, {"levels": "T9"}], {}, ContradictoryInputError, ["case.lesions"]),
    ([{"levels": "T7-T9", "sins": {"level": "T10"}}], {}, ContradictoryInputError,
     ["case.lesions[0].levels", "case.lesions[0].sins.level"]),
    ([{"levels": "T7"}], {"sins": STABLE}, ContradictoryInputError, ["case.lesions", "case.sins"]),
    ([], {}, InvalidInputError, None),
    ([{"levels": "T13"}], {}, InvalidInputError, None),
    ([{"levels": ""}], {}, InvalidInputError, None),
    ([{"level": "T7"}], {}, InvalidInputError, None),
])
def test_errors_name_the_field(lesions, extra, error, fields):
    with pytest.raises(error) as exc:
        assess(case(*lesions, **extra))
    if fields is not None:
        assert exc.value.fields == fields
    else:
        assert exc.value.field.startswith("case.lesions")


def test_a_reversed_range_is_read_in_order():
    r = assess(case({"levels": "T9-T7"})).lesions
    assert r.lesions[0].levels == "T7-T9" and r.lesions[0].vertebrae == ["T7", "T8", "T9"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(1, len(ORDER) - 1), st.integers(0, 2),
                          st.sampled_from(["0", "1a", "1b", "1c", "2", "3", None]),
                          st.fixed_dictionaries({}, optional={k: st.sampled_from(v) for k, v in {
                              "pain": ["mechanical", "occasional", "none"], "lesion": ["lytic", "mixed", "blastic"],
                              "collapse": ["gt50", "lt50", "involved_no_collapse", "none"]}.items()})),
                min_size=1, max_size=5))
def test_index_lesions_hold_for_every_completion(specs):
    """The lesions named as possibly highest include the highest of any completion; a certain index is the
    highest outright; the vertebrae are counted once each."""
    used: set[int] = set()
    lesions = []
    for start, length, grade, comps in specs:
        span = list(range(start, min(start + length, len(ORDER) - 1) + 1))
        if used & set(span):
            continue
        used |= set(span)
        levels = ORDER[span[0]] if len(span) == 1 else f"{ORDER[span[0]]}-{ORDER[span[-1]]}"
        lesion = {"levels": levels, "sins": {**comps, "level": ORDER[span[0]]}}
        if grade is not None:
            lesion["escc"] = {"grade": grade}
        lesions.append(lesion)
    r = assess(case(*lesions)).lesions
    assert len(r.involved_vertebrae) == len(used)
    sins_ix = next(ix for ix in r.index if ix.by == "sins")
    highest_possible = max(x.sins.possible_max for x in r.lesions)
    assert any(x.sins.possible_max == highest_possible and x.levels in sins_ix.lesions for x in r.lesions)
    if sins_ix.certain:  # the named lesions' lowest totals reach every other lesion's highest
        named = [x for x in r.lesions if x.levels in sins_ix.lesions]
        floor = min(x.sins.possible_min for x in named)
        assert all(x.sins.possible_max <= floor for x in r.lesions if x.levels not in sins_ix.lesions)
        if len(named) > 1:
            assert len({x.sins.total for x in named}) == 1 and named[0].sins.total is not None


def test_a_lesion_given_only_its_levels_is_scored_as_unknown_and_can_be_highest():
    r = assess(case({"levels": "T5", "sins": STABLE, "escc": {"grade": "1a"}}, {"levels": "L4"})).lesions
    assert r.status == "insufficient_data"
    l4 = r.lesions[1]
    assert l4.sins.status == "insufficient_data" and l4.escc.status == "insufficient_data"
    by = {ix.by: ix for ix in r.index}
    # L4 is mobile (2 points): at least 2, above T5's 1 whatever its missing components
    assert (by["sins"].lesions, by["sins"].certain) == (["L4"], True)
    assert by["sins"].summary == "Highest SINS total: L4 (SINS 2 to 17, whatever its missing inputs)"
    assert by["escc"].certain is False and by["escc"].lesions == ["T5", "L4"]


def test_one_incomplete_lesion_above_every_other_is_certain():
    partial = {k: v for k, v in UNSTABLE.items() if k != "pain"}  # T12: 11 to 14
    r = assess(case({"levels": "T12", "sins": partial}, {"levels": "T5", "sins": STABLE})).lesions
    ix = r.index[0]
    assert ix.certain and ix.lesions == ["T12"]
    assert ix.summary == "Highest SINS total: T12 (SINS 11 to 14, whatever its missing inputs)"


def test_the_occiput_is_not_counted_as_a_vertebra():
    r = assess(case({"levels": "C0-C2"}, prognosis={"vertebral_metastases": 2}))
    assert r.lesions.involved_vertebrae == ["C1", "C2"]
    counted = assess(case({"levels": "T7-T8"}, prognosis={"primary": "breast"})).prognosis
    assert counted.notices[0].code == "counted_from_lesions"
    assert "(2) is counted from the lesions" in counted.notices[0].message
    alone = assess(case({"levels": "C0"}, prognosis={"primary": "breast"})).prognosis
    assert "prognosis.vertebral_metastases" in alone.missing


def test_a_range_location_is_checked_and_said():
    r = assess(case({"levels": "T7-T9", "sins": STABLE})).lesions.lesions[0].sins
    assert any("Every vertebra of T7-T9 lies in the semi-rigid spine" in n.message for n in r.notices)
    with pytest.raises(ContradictoryInputError) as exc:
        assess(case({"levels": "T3-T5", "sins": {**STABLE, "location": "junctional"}}))
    assert exc.value.fields == ["case.lesions[0].levels", "case.lesions[0].sins.location"]
    assert "semi-rigid spine" in exc.value.message and "semi_rigid" not in exc.value.message
    ok = assess(case({"levels": "T10-T12", "sins": {**STABLE, "location": "junctional"}})).lesions.lesions[0].sins
    assert ok.status == "complete"


@pytest.mark.parametrize("lesion, field", [
    ({"levels": "T5", "escc": {"grade": "3", "csf_visible": True}}, "case.lesions[0].escc.grade"),
    ({"levels": "T5", "sins": {"pain": "sharp"}}, "case.lesions[0].sins.pain"),
])
def test_errors_inside_a_lesion_name_it(lesion, field):
    with pytest.raises((InvalidInputError, ContradictoryInputError)) as exc:
        assess(case({"levels": "L1"}, lesion))
    names = getattr(exc.value, "fields", None) or [exc.value.field]
    assert any(n.startswith("case.lesions[") for n in names), names


@pytest.mark.parametrize("text, levels", [("T-7", "T7"), ("occiput", "C0"), ("O-C0", "C0"), ("T7\u2014T9", "T7-T9"),
                                          ("c7 - t1", "C7-T1"), ("occiput-C2", "C0-C2")])
def test_level_spellings(text, levels):
    assert assess(case({"levels": text})).lesions.lesions[0].levels == levels


def test_each_lesion_is_graded_at_its_levels():
    r = assess(case({"levels": "T5", "escc": {"grade": "1b"}}, {"levels": "L3-L4", "escc": {"grade": "2"}})).lesions
    t5, lumbar = r.lesions
    assert (t5.escc.level, lumbar.escc.level) == ("T5", "L3-L4")
    assert any("cauda equina" in n.message for n in lumbar.escc.notices)
    assert not any("cauda equina" in n.message for n in t5.escc.notices)
    with pytest.raises(ContradictoryInputError) as exc:
        assess(case({"levels": "T5", "escc": {"grade": "1b", "level": "T6"}}))
    assert exc.value.fields == ["case.lesions[0].levels", "case.lesions[0].escc.level"]
