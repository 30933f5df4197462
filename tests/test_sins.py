"""SINS (Fisher 2010; table in seed 003 Table 3 and clinical-facts B1): hand-checked examples."""

from __future__ import annotations

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from spinemets import sins
from spinemets.errors import ContradictoryInputError, InvalidInputError, SpinemetsError
from spinemets.knowledge.loader import load_kb
from spinemets.levels import ORDER
from spinemets.scores.sins import COMPONENTS, ENUMS, Alignment, collapse_threshold_percent, location_of, normalise

FULL = dict(level="T12", pain="mechanical", lesion="lytic", alignment="normal", collapse="gt50", posterolateral="bilateral")

# Location points per level: junctional occiput-C2, C7-T2, T11-L1, L5-S1 = 3; mobile C3-C6, L2-L4 = 2;
# semi-rigid T3-T10 = 1; rigid S2-S5 = 0 (Fisher 2010).
EXPECTED_LOCATION = {
    **{lv: 3 for lv in ["C0", "C1", "C2", "C7", "T1", "T2", "T11", "T12", "L1", "L5", "S1"]},
    **{lv: 2 for lv in ["C3", "C4", "C5", "C6", "L2", "L3", "L4"]},
    **{f"T{i}": 1 for i in range(3, 11)},
    **{lv: 0 for lv in ["S2", "S3", "S4", "S5"]},
}


def test_every_level_is_mapped():
    assert sorted(EXPECTED_LOCATION) == sorted(ORDER)


@pytest.mark.parametrize("level,points", sorted(EXPECTED_LOCATION.items()))
def test_location_points_per_level(level, points):
    r = sins({"level": level})
    loc = next(c for c in r.components if c.name == "location")
    assert loc.points == points
    assert loc.refs  # cites Fisher 2010


# Constructed worked examples (clinical-facts.md B3, arithmetic from the B1 table).
WORKED = [
    (dict(level="T12", pain="mechanical", lesion="lytic", alignment="normal", collapse="gt50", posterolateral="bilateral"), 14, "unstable"),
    (dict(level="T6", pain="none", lesion="blastic", alignment="normal", collapse="none", posterolateral="none"), 1, "stable"),
    (dict(level="L3", pain="occasional", lesion="mixed", alignment="normal", collapse="involved_no_collapse", posterolateral="unilateral"), 6, "stable"),
    (dict(level="L3", pain="mechanical", lesion="mixed", alignment="normal", collapse="involved_no_collapse", posterolateral="unilateral"), 8, "potentially_unstable"),
    (dict(level="C7", pain="mechanical", lesion="lytic", alignment="deformity", collapse="lt50", posterolateral="unilateral"), 13, "unstable"),
    (dict(level="S3", pain="mechanical", lesion="lytic", alignment="normal", collapse="none", posterolateral="bilateral"), 8, "potentially_unstable"),
    (dict(level="C1", pain="mechanical", lesion="lytic", alignment="subluxation", collapse="gt50", posterolateral="bilateral"), 18, "unstable"),
    (dict(level="T10", pain="occasional", lesion="mixed", alignment="normal", collapse="lt50", posterolateral="unilateral"), 6, "stable"),
    (dict(level="T11", pain="occasional", lesion="mixed", alignment="normal", collapse="lt50", posterolateral="unilateral"), 8, "potentially_unstable"),
    (dict(location="rigid", pain="none", lesion="blastic", alignment="normal", collapse="none", posterolateral="none"), 0, "stable"),
]


@pytest.mark.parametrize("inputs,total,category", WORKED)
def test_worked_examples(inputs, total, category):
    r = sins(inputs)
    assert r.status == "complete"
    assert r.total == total
    assert r.category == category
    assert sum(c.points for c in r.components) == total
    assert r.surgical_consultation is (total >= 7)
    assert r.references and r.references[0].source_id == "fisher-2010"


@pytest.mark.parametrize(
    "total,category",
    [(0, "stable"), (6, "stable"), (7, "potentially_unstable"), (12, "potentially_unstable"), (13, "unstable"), (18, "unstable")],
)
def test_category_boundaries(kb, total, category):
    # Build a lesion with the wanted total from the table's points.
    from itertools import product

    rows = kb.table("sins_points").rows
    choices = [[(r["value"], r["points"]) for r in rows if r["component"] == c] for c in COMPONENTS]
    for combo in product(*choices):
        if sum(p for _, p in combo) == total:
            inputs = {c: v for c, (v, _) in zip(COMPONENTS, combo)}
            break
    r = sins(inputs)
    assert (r.total, r.category) == (total, category)


def test_aliases_and_case():
    r = sins(dict(level="t12", pain="Mechanical", lesion="sclerotic", alignment="kyphosis", collapse=">50%", posterolateral="Bilateral"))
    assert r.total == 3 + 3 + 0 + 2 + 3 + 3
    assert sins(dict(FULL, level="occiput")).components[0].points == 3


def test_missing_components_give_range_not_total():
    r = sins({"level": "T12", "pain": "mechanical"})
    assert r.status == "insufficient_data"
    assert r.total is None
    assert r.missing == ["sins.lesion", "sins.alignment", "sins.collapse", "sins.posterolateral"]
    assert (r.possible_min, r.possible_max) == (6, 6 + 2 + 4 + 3 + 3)
    assert r.category is None


def test_missing_but_category_certain(kb):
    r = sins(dict(FULL, posterolateral=None, pain="unknown"))
    # 3 + 2 + 0 + 3 = 8 known; pain 0-3 and posterolateral 0-3 -> 8..14, spans two categories
    assert (r.possible_min, r.possible_max) == (8, 14) and r.category is None
    r = sins(dict(FULL, alignment="subluxation", pain=None))
    assert (r.possible_min, r.possible_max) == (15, 18)
    assert r.category == "unstable" and r.total is None and r.status == "insufficient_data"
    # regression: the summary did not say that the category is certain, nor what it implies
    row = kb.table("sins_categories").row("unstable")
    assert r.summary == (
        f"insufficient data: 1 of 6 components missing; total unknown, but every possible total is 15-18: unstable. "
        f"{row['consultation']}"
    )
    assert (r.category_label, r.implication, r.surgical_consultation) == ("Unstable", row["implication"], True)
    assert [n.message for n in r.notices] == [row["implication"]]
    assert r.notices[0].kb_items == ["sins_categories.unstable"] and "fisher-2010" in r.notices[0].sources


def test_surgical_consultation_certain_across_categories(kb):
    # regression: 8..14 spans potentially unstable and unstable, both >= 7: a surgical consultation either way
    r = sins(dict(FULL, posterolateral=None, pain=None))
    rows = kb.table("sins_categories")
    consultation = rows.row("potentially_unstable")["consultation"]
    assert consultation == rows.row("unstable")["consultation"]
    assert (r.possible_min, r.possible_max, r.category, r.total) == (8, 14, None, None)
    assert r.surgical_consultation is True
    assert r.summary == (
        "insufficient data: 2 of 6 components missing; total unknown, but every possible total is 8-14: "
        f"potentially unstable (indeterminate) or unstable. {consultation}"
    )
    assert [n.message for n in r.notices] == [consultation]
    assert r.notices[0].kb_items == ["sins_categories.potentially_unstable", "sins_categories.unstable"]


def test_stable_whatever_the_missing_values(kb):
    r = sins(dict(level="T6", pain="none", lesion="blastic", alignment="normal", collapse="none"))
    row = kb.table("sins_categories").row("stable")
    assert (r.possible_min, r.possible_max, r.category, r.surgical_consultation) == (1, 4, "stable", False)
    assert r.summary == (
        f"insufficient data: 1 of 6 components missing; total unknown, but every possible total is 1-4: stable. "
        f"{row['consultation']}"
    )


def test_consultation_uncertain_keeps_the_range_only():
    r = sins({"level": "T6", "lesion": "blastic"})
    assert r.summary == "insufficient data: 4 of 6 components missing; total could be 1-14"
    assert r.surgical_consultation is None and r.category is None and r.notices == []


def test_complete_result_sets_surgical_consultation():
    assert sins(FULL).surgical_consultation is True
    assert sins(WORKED[1][0]).surgical_consultation is False


def test_consultation_threshold_is_read_from_the_table(kb_copy):
    # Move the consultation line to 13 in a copy of the table: 8..14 is then no longer certain.
    path = kb_copy / "tables" / "sins_categories.yaml"
    table = yaml.safe_load(path.read_text())
    row = next(r for r in table["rows"] if r["id"] == "potentially_unstable")
    row["surgical_consultation"] = False
    path.write_text(yaml.safe_dump(table, sort_keys=False))
    kb = load_kb(kb_copy)
    assert sins(dict(FULL, posterolateral=None, pain=None), kb).surgical_consultation is None
    assert sins(dict(FULL, alignment="subluxation", pain=None), kb).surgical_consultation is True
    assert sins(WORKED[3][0], kb).surgical_consultation is False  # total 8


def test_consultation_wording_matches_the_table_threshold(kb):
    rows = kb.table("sins_categories").rows
    threshold = min(int(r["min"]) for r in rows if r["surgical_consultation"])
    assert threshold == 7  # Fisher 2010 / Fourney 2011: 7-18 warrants a surgical consultation
    assert all(int(r["max"]) < threshold for r in rows if not r["surgical_consultation"])
    assert all(str(threshold) in r["consultation"] for r in rows)
    assert {k for r in rows for k in (r.model_extra or {})} <= set(kb.table("sins_categories").columns)


def test_nothing_known():
    r = sins({})
    assert r.missing[0] == "sins.level or sins.location"
    assert (r.possible_min, r.possible_max) == (0, 18)


@pytest.mark.parametrize(
    "level,message",
    [
        ("T13", "sins.level: 'T13' is not a vertebral level: thoracic levels are T1 to T12"),
        ("L6", "sins.level: 'L6' is not a vertebral level: lumbar levels are L1 to L5"),
        ("C9", "sins.level: 'C9' is not a vertebral level: cervical levels are C0 (occiput) to C7"),
        ("S6", "sins.level: 'S6' is not a vertebral level: sacral levels are S1 to S5"),
        ("X1", "sins.level: 'X1' is not a vertebral level; allowed: C0 (occiput) to C7, T1-T12, L1-L5, S1-S5"),
        ("T0", "sins.level: 'T0' is not a vertebral level: thoracic levels are T1 to T12"),
    ],
)
def test_invalid_levels(level, message):
    with pytest.raises(InvalidInputError) as exc:
        sins({"level": level})
    assert str(exc.value) == message
    assert exc.value.field == "sins.level"


def test_invalid_component_value_names_allowed_values():
    with pytest.raises(InvalidInputError) as exc:
        sins({"pain": "sometimes"})
    assert str(exc.value) == "sins.pain: 'sometimes' is not allowed; allowed values: 'mechanical', 'occasional', 'none' (or 'unknown')"


def test_unknown_field():
    with pytest.raises(InvalidInputError) as exc:
        sins({"painn": "none"})
    assert str(exc.value).startswith("sins.painn: unknown field; allowed fields: ")


def test_level_and_location_contradict():
    with pytest.raises(ContradictoryInputError) as exc:
        sins({"level": "T12", "location": "mobile"})
    assert str(exc.value) == (
        "contradictory input (sins.level, sins.location): level T12 is junctional spine, but location was given as mobile"
    )


def test_level_and_matching_location_accepted():
    assert sins(dict(FULL, location="junctional")).total == 14


def test_location_of():
    assert location_of("L5")[0].value == "junctional"


values = {c: st.sampled_from([m.value for m in ENUMS[c]] + [None]) for c in COMPONENTS}


@settings(max_examples=300, deadline=None)
@given(level=st.sampled_from(ORDER + [None]), **values)
def test_total_bounds_and_sum(level, **kw):
    if level is not None:
        kw.pop("location")
    r = sins({"level": level, **kw})
    assert 0 <= r.possible_min <= r.possible_max <= 18
    if r.status == "complete":
        assert r.total == sum(c.points for c in r.components)
        assert 0 <= r.total <= 18
        assert r.possible_min == r.possible_max == r.total
    else:
        assert r.total is None and r.missing


# Points per answer, written out by hand from Fisher 2010 (independent of tables/sins_points.yaml).
FISHER_POINTS = {
    "location": {"junctional": 3, "mobile": 2, "semi_rigid": 1, "rigid": 0},
    "pain": {"mechanical": 3, "occasional": 1, "none": 0},
    "lesion": {"lytic": 2, "mixed": 1, "blastic": 0},
    "alignment": {"subluxation": 4, "deformity": 2, "normal": 0},
    "collapse": {"gt50": 3, "lt50": 2, "involved_no_collapse": 1, "none": 0},
    "posterolateral": {"bilateral": 3, "unilateral": 1, "none": 0},
}
# Fisher 2010: 0-6 stable, 7-12 potentially unstable, 13-18 unstable; surgical consultation from 7.
FISHER_CATEGORY = [(0, 6, "stable", False), (7, 12, "potentially_unstable", True), (13, 18, "unstable", True)]


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(
    st.sampled_from(["level", "location", *COMPONENTS, "other"]),
    st.one_of(st.none(), st.text(max_size=8), st.integers(), st.booleans(), st.floats(),
              st.sampled_from([*ORDER[:3], "T12", "L3", "T6", "S3", *{v for c in FISHER_POINTS.values() for v in c}]))))
def test_arbitrary_input_gives_our_error_or_a_total_from_the_fisher_table(data):
    try:
        r = sins(data)
    except SpinemetsError as exc:
        assert isinstance(exc, (InvalidInputError, ContradictoryInputError)), exc
        fields = [exc.field] if isinstance(exc, InvalidInputError) else exc.fields
        assert fields and all(f.startswith("sins.") for f in fields) and exc.message, str(exc)
        return
    assert 0 <= r.possible_min <= r.possible_max <= 18
    scored = {c.name: c for c in r.components if c.points is not None}
    for c in scored.values():
        assert c.points == FISHER_POINTS[c.name][c.value] and c.refs, c
    unknown = [name for name in COMPONENTS if name not in scored]
    assert r.possible_min == sum(c.points for c in scored.values())
    assert r.possible_max == r.possible_min + sum(max(FISHER_POINTS[name].values()) for name in unknown)
    assert r.missing == [("sins.level or sins.location" if name == "location" else f"sins.{name}") for name in unknown]
    if r.status == "complete":
        assert not unknown and r.total == r.possible_min
        ((category, consult),) = [(c, s) for lo, hi, c, s in FISHER_CATEGORY if lo <= r.total <= hi]
        assert r.category == category and r.surgical_consultation is consult
    else:
        assert r.status == "insufficient_data" and unknown and r.total is None and r.missing
    assert "sins." not in r.summary


def _drop(full, hidden):
    return {k: (None if k in hidden or (k == "level" and "location" in hidden) else v) for k, v in full.items()}


@settings(max_examples=300, deadline=None)
@given(
    level=st.sampled_from(ORDER),
    hidden=st.sets(st.sampled_from(COMPONENTS), min_size=1),
    **{c: st.sampled_from([m.value for m in ENUMS[c]]) for c in COMPONENTS if c != "location"},
)
def test_partial_result_holds_for_every_completion(kb, level, hidden, **kw):
    full = {"level": level, **kw}
    partial, complete = sins(_drop(full, hidden)), sins(full)
    assert complete.status == "complete" and partial.status == "insufficient_data"
    assert partial.possible_min <= complete.total <= partial.possible_max
    if partial.surgical_consultation is not None:
        assert complete.surgical_consultation is partial.surgical_consultation
    if partial.category is not None:
        assert complete.category == partial.category
    # and it is stated whenever the lowest and the highest possible totals agree (the flag rises with the total)
    rows = kb.table("sins_categories").rows
    ends = {bool(r["surgical_consultation"]) for r in rows for t in (partial.possible_min, partial.possible_max)
            if int(r["min"]) <= t <= int(r["max"])}
    assert partial.surgical_consultation == (ends.pop() if len(ends) == 1 else None)
    assert "sins." not in partial.summary and "_" not in partial.summary


# --- the whole result a clinician reads (mutation testing) --------------------------------------------------------
# References are numbered in order of first use: the level's row and the points rows cite Fisher 2010 and seed 003
# ([1], [2]); the category row adds Fourney 2011 ([3]).
POINT_SOURCES = ["fisher-2010", "seed-003"]
CATEGORY_SOURCES = ["fisher-2010", "fourney-2011", "seed-003"]


def _components(r):
    return [(c.name, c.value, c.label, c.points, c.note, c.kb_items, c.sources, c.refs) for c in r.components]


def _notices(r):
    return [(n.code, n.message, n.kb_items, n.sources, n.refs) for n in r.notices]


def _scored(kb, inputs, location_note=None):
    """The expected component rows of a fully given lesion (points by hand from Fisher 2010)."""
    out = []
    for name in COMPONENTS:
        value = inputs[name]
        label = kb.table("sins_points").row(f"{name}-{value}")["label"]
        note = location_note if name == "location" else None
        out.append((name, value, label, FISHER_POINTS[name][value], note, [f"sins_points.{name}-{value}"],
                    POINT_SOURCES, [1, 2]))
    return out


@pytest.mark.parametrize(
    "inputs,location,note,total,category,label,consult",
    [
        (FULL, "junctional", "T12 lies in the junctional spine", 14, "unstable", "Unstable", True),
        (WORKED[1][0], "semi_rigid", "T6 lies in the semi-rigid spine", 1, "stable", "Stable", False),
        (WORKED[3][0], "mobile", "L3 lies in the mobile spine", 8, "potentially_unstable",
         "Potentially unstable (indeterminate)", True),
        (WORKED[-1][0], "rigid", None, 0, "stable", "Stable", False),
    ],
)
def test_worked_example_whole_result(kb, inputs, location, note, total, category, label, consult):
    r = sins(inputs)
    row = kb.table("sins_categories").row(category)
    assert (r.instrument, r.status, r.summary) == ("sins", "complete", f"total {total}/18: {label.lower()}")
    assert _components(r) == _scored(kb, {**inputs, "location": location}, note)
    assert (r.total, r.possible_min, r.possible_max, r.missing) == (total, total, total, [])
    assert (r.category, r.category_label, r.implication, r.surgical_consultation) == (
        category, label, row["implication"], consult)
    assert _notices(r) == [("implication", row["implication"], [f"sins_categories.{category}"], CATEGORY_SOURCES,
                            [1, 2, 3])]
    assert [(ref.number, ref.source_id) for ref in r.references] == [(1, "fisher-2010"), (2, "seed-003"),
                                                                   (3, "fourney-2011")]
    assert (r.level, r.draft_items, r.kb_version, r.disclaimer) == (
        inputs.get("level"), [], kb.version, kb.manifest.disclaimer)
    assert r.headline() == r.summary


def test_partial_whole_result_keeps_the_level_and_leaves_the_category_open(kb):
    r = sins({"level": "T12", "pain": "mechanical"})
    points = kb.table("sins_points")
    assert _components(r) == [
        ("location", "junctional", points.row("location-junctional")["label"], 3, "T12 lies in the junctional spine",
         ["sins_points.location-junctional"], POINT_SOURCES, [1, 2]),
        ("pain", "mechanical", points.row("pain-mechanical")["label"], 3, None, ["sins_points.pain-mechanical"],
         POINT_SOURCES, [1, 2]),
        *[(name, None, None, None, "not given: not scored", [], [], []) for name in COMPONENTS[2:]],
    ]
    assert r.summary == "insufficient data: 4 of 6 components missing; total could be 6-18"
    assert (r.status, r.level, r.total, r.category, r.category_label, r.implication, r.surgical_consultation) == (
        "insufficient_data", "T12", None, None, None, None, None)
    assert r.notices == []
    assert [ref.source_id for ref in r.references] == POINT_SOURCES


@pytest.mark.parametrize(
    "inputs,lo,hi,certain,rows",
    [
        # 7..10: potentially unstable whatever the pain (lo is the category's lowest total)
        (dict(location="mobile", lesion="lytic", alignment="deformity", collapse="involved_no_collapse",
              posterolateral="none"), 7, 10, "potentially_unstable", ["potentially_unstable"]),
        # 8..12: potentially unstable whatever the alignment (hi is the category's highest total)
        (dict(location="junctional", pain="occasional", lesion="lytic", collapse="lt50", posterolateral="none"),
         8, 12, "potentially_unstable", ["potentially_unstable"]),
        # 9..13: the top total reaches the unstable category: consultation either way, category open
        (dict(location="junctional", pain="occasional", lesion="lytic", collapse="gt50", posterolateral="none"),
         9, 13, None, ["potentially_unstable", "unstable"]),
        # 13..16: unstable whatever the pain
        (dict(location="junctional", lesion="lytic", alignment="subluxation", collapse="involved_no_collapse",
              posterolateral="bilateral"), 13, 16, "unstable", ["unstable"]),
        # 3..6: stable whatever the pain
        (dict(location="rigid", lesion="mixed", alignment="deformity", collapse="none", posterolateral="none"),
         3, 6, "stable", ["stable"]),
    ],
)
def test_partial_with_the_consultation_decided(kb, inputs, lo, hi, certain, rows):
    r = sins(inputs)
    table = kb.table("sins_categories")
    first = table.row(rows[0])
    labels = " or ".join(table.row(x)["label"].lower() for x in rows)
    assert (r.possible_min, r.possible_max, r.category) == (lo, hi, certain)
    assert r.summary == (
        f"insufficient data: 1 of 6 components missing; total unknown, but every possible total is {lo}-{hi}: "
        f"{labels}. {first['consultation']}"
    )
    assert r.surgical_consultation is first["surgical_consultation"]
    message = first["implication"] if certain else first["consultation"]
    assert _notices(r) == [("implication", message, [f"sins_categories.{x}" for x in rows], CATEGORY_SOURCES,
                            [1, 2, 3])]
    assert (r.category_label, r.implication) == ((first["label"], first["implication"]) if certain else (None, None))


@pytest.mark.parametrize(
    "inputs,lo,hi",
    [
        # 6..9: the lowest total is the top of 'stable', the others call for a consultation: nothing is certain
        (dict(location="rigid", lesion="mixed", alignment="deformity", collapse="lt50", posterolateral="unilateral"),
         6, 9),
        # 4..7: the top total is the lowest that calls for a consultation
        (dict(location="rigid", lesion="mixed", alignment="deformity", collapse="involved_no_collapse",
              posterolateral="none"), 4, 7),
    ],
)
def test_partial_straddling_the_consultation_line(inputs, lo, hi):
    r = sins(inputs)
    assert r.summary == f"insufficient data: 1 of 6 components missing; total could be {lo}-{hi}"
    assert (r.surgical_consultation, r.category, r.category_label, r.implication, r.notices) == (
        None, None, None, None, [])


@pytest.mark.parametrize(
    "component,value,canonical",
    [
        ("location", "Semi-Rigid", "semi_rigid"), ("location", "semirigid", "semi_rigid"),
        ("location", " JUNCTIONAL ", "junctional"), ("pain", "Non-Mechanical", "occasional"),
        ("pain", "yes", "mechanical"), ("pain", "Pain free", "none"), ("lesion", "LYTIC", "lytic"),
        ("lesion", "lytic/blastic", "mixed"), ("alignment", "Scoliosis", "deformity"),
        ("collapse", "<50%", "lt50"), ("collapse", "Involved-No-Collapse", "involved_no_collapse"),
        ("posterolateral", "Unilateral", "unilateral"), ("posterolateral", "none of the above", "none"),
    ],
)
def test_spellings_map_to_the_published_value(component, value, canonical):
    r = sins({component: value})
    (scored,) = [c for c in r.components if c.points is not None]
    assert (scored.name, scored.value, scored.points) == (component, canonical, FISHER_POINTS[component][canonical])


@pytest.mark.parametrize("value", ["unknown", " Unknown ", "indeterminate", "not assessed", "Not-Assessed",
                                   "not_assessed", "", "  "])
def test_unknown_spellings_leave_a_component_unscored(value):
    r = sins({"pain": value, "location": value})
    assert r.missing[:2] == ["sins.level or sins.location", "sins.pain"]
    assert (r.possible_min, r.possible_max) == (0, 18)


@pytest.mark.parametrize("value", ["unknown", " Unknown ", "indeterminate", "not assessed", "not_assessed", "", "  "])
def test_level_given_as_unknown_is_not_given(value):
    r = sins({"level": value, "location": "mobile"})
    assert (r.level, r.components[0].value, r.components[0].note) == (None, "mobile", None)


@pytest.mark.parametrize(
    "data,message",
    [
        ({"pain": True}, "sins.pain: give one of: mechanical, occasional, none"),
        ({"collapse": False}, "sins.collapse: give one of: gt50, lt50, involved_no_collapse, none"),
        ({"pain": 3}, "sins.pain: expected text, got 3"),
        ({"lesion": "dense"}, "sins.lesion: 'dense' is not allowed; allowed values: 'lytic', 'mixed', 'blastic' (or 'unknown')"),
    ],
)
def test_component_errors(data, message):
    with pytest.raises(InvalidInputError) as exc:
        sins(data)
    assert str(exc.value) == message


def test_component_given_as_its_enum():
    assert normalise("alignment", Alignment.subluxation) == "subluxation"
    assert normalise("alignment", None) is None
    assert sins({"alignment": Alignment.subluxation}).possible_min == 4


def test_collapse_threshold_is_50_percent(kb):
    # Fisher 2010: the collapse categories are divided at 50% loss of vertebral body height
    assert collapse_threshold_percent() == 50.0 and isinstance(collapse_threshold_percent(), float)
    assert collapse_threshold_percent(kb) == 50.0


def test_location_of_returns_the_category_and_its_row(kb):
    category, row = location_of("T6", kb)
    assert (category, row.id) == ("semi_rigid", "semi_rigid")
    assert location_of("S2")[0] == "rigid" and location_of("C7")[0] == "junctional"


def test_level_map_and_collapse_threshold_come_from_the_knowledge_base_given(kb_copy):
    # In a copy of the tables L4 is moved to the junctional spine and the collapse line to 40%: the copy decides.
    tables = kb_copy / "tables"
    levels = yaml.safe_load((tables / "sins_location_levels.yaml").read_text())
    rows = {r["id"]: r for r in levels["rows"]}
    rows["mobile"]["levels"] = ["C3-C6", "L2-L3"]
    rows["junctional"]["levels"] = ["C0-C2", "C7-T2", "T11-L1", "L4-S1"]
    (tables / "sins_location_levels.yaml").write_text(yaml.safe_dump(levels, sort_keys=False))
    points = yaml.safe_load((tables / "sins_points.yaml").read_text())
    next(r for r in points["rows"] if r["id"] == "collapse-gt50")["above_percent"] = 40
    (tables / "sins_points.yaml").write_text(yaml.safe_dump(points, sort_keys=False))
    kb = load_kb(kb_copy)
    assert collapse_threshold_percent(kb) == 40.0
    assert location_of("L4", kb)[0] == "junctional" and location_of("L4")[0] == "mobile"
    r = sins({"level": "L4"}, kb)
    assert (r.components[0].value, r.components[0].points, r.components[0].note) == (
        "junctional", 3, "L4 lies in the junctional spine")


def test_draft_rows_are_flagged_once_in_order_of_use(kb_copy):
    tables = kb_copy / "tables"
    for name, row_id in [("sins_location_levels", "junctional"), ("sins_points", "pain-mechanical"),
                         ("sins_categories", "unstable")]:
        table = yaml.safe_load((tables / f"{name}.yaml").read_text())
        next(r for r in table["rows"] if r["id"] == row_id)["review_status"] = "draft"
        (tables / f"{name}.yaml").write_text(yaml.safe_dump(table, sort_keys=False))
    kb = load_kb(kb_copy)
    r = sins(FULL, kb)
    assert r.draft_items == ["sins_location_levels.junctional", "sins_points.pain-mechanical", "sins_categories.unstable"]
    # a partial result certain to be unstable flags the category row it reports
    assert sins(dict(FULL, alignment="subluxation", pain=None), kb).draft_items == [
        "sins_location_levels.junctional", "sins_categories.unstable"]
    assert sins(WORKED[1][0], kb).draft_items == []


def test_location_of_a_name_outside_the_table_is_an_error():
    # sins() only passes parsed levels, all in the table; a direct caller may pass anything
    with pytest.raises(InvalidInputError) as exc:
        location_of("T13")
    assert (exc.value.field, exc.value.message) == ("level", "'T13' is in no SINS location category")


def test_lowest_possible_total_adds_the_lowest_points_of_each_missing_component(kb_copy):
    # Every Fisher component has a 0-point answer; in a copy where a pain-free lesion scores 1, a missing pain
    # raises the lowest possible total by 1.
    path = kb_copy / "tables" / "sins_points.yaml"
    table = yaml.safe_load(path.read_text())
    next(r for r in table["rows"] if r["id"] == "pain-none")["points"] = 1
    path.write_text(yaml.safe_dump(table, sort_keys=False))
    r = sins({"level": "T12"}, load_kb(kb_copy))
    assert (r.possible_min, r.possible_max) == (3 + 1, 18)


def test_a_total_in_no_category_is_an_error_never_a_category(kb_copy):
    # The Fisher categories cover every total the points table can give (0-18); a copy whose subluxation scores 5
    # can reach 19, which no category holds: an error, not a silent category.
    path = kb_copy / "tables" / "sins_points.yaml"
    table = yaml.safe_load(path.read_text())
    next(r for r in table["rows"] if r["id"] == "alignment-subluxation")["points"] = 5
    path.write_text(yaml.safe_dump(table, sort_keys=False))
    with pytest.raises(InvalidInputError) as exc:
        sins(WORKED[6][0], load_kb(kb_copy))  # C1, all worst answers: 18 + 1
    assert str(exc.value) == "sins.total: 19 is outside 0-18"
