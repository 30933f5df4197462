"""Quantitative cut-offs (tables/quantitative_cutoffs.yaml, clinical-facts E1-E4), checked by hand.

Chemical shift: SIR = OP/IP, drop = (IP - OP)/IP x 100 = (1 - SIR) x 100 (Skeletal Radiol 2018 definition).
SIR rows (malignant side): Zajick 2005 >= 0.80*, Douis 2016 >= 0.8*, El-Samie 2015 > 1.0, Mijaljevic 2024 > 0.82,
Perry 2018 >= 0.856 (untreated / treated / irradiated).  Drop rows: seed 003 < 20, Ragab < 35*, Kenneally < 20,
Skeletal Radiol 2018 < 25, Eur Radiol Exp 2025 <= 19.8.  Dixon: Schmeel 2018a < 6.40, Eur Radiol Exp 2025
<= 18.3.  ADC: Mijaljevic <= 1.57, Park 2016 < 1.14, Kwack < 0.995, Geith < 1.7, Park (marrow) < 0.695,
Schmeel < 1.08, Pozzi < 0.952, Hajalioghli < 0.958.  CT: Ulano 2016 mean < 885 and max < 1060, PMID 31469323
mean < 881, Azar 2021 max 1060 (biopsied, half treated; did not transfer).  (* draft)
"""

from __future__ import annotations

import ast
import math
import re
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from spinemets.errors import ContradictoryInputError, InvalidInputError, SpinemetsError
from spinemets.interpret.quantitative import MEASURES, SYMBOLS, QuantitativeInput, quantitative
from spinemets.knowledge.loader import load_kb
from tests.support import check_arbitrary_input, DISCLAIMER


def cutoffs(kb):
    """The rows of the cut-off table."""
    return kb.table("quantitative_cutoffs").rows


def sides(r, measure):
    return {c.cutoff: c.side for c in r.comparisons if c.measure == measure}


def test_table_vocabulary(kb):
    for row in cutoffs(kb):
        assert row["measure"] in MEASURES, row.id
        assert row["malignant_if"] in SYMBOLS, row.id
        assert row.get("lesion_treatment") in (None, "untreated", "treated", "irradiated", "mixed"), row.id


def test_chemical_shift_from_intensities():
    # IP 200, OP 180: SIR 180/200 = 0.90; drop (200 - 180)/200 x 100 = 10%.
    r = quantitative({"in_phase": 200, "opposed_phase": 180})
    assert r.values == {"chemical_shift_sir": pytest.approx(0.9), "chemical_shift_drop_percent": pytest.approx(10.0)}
    assert sides(r, "chemical_shift_sir") == {
        "zajick-2005-sir": "malignant",        # 0.90 >= 0.80
        "douis-2016-sir": "malignant",         # 0.90 >= 0.8
        "el-samie-2015-sir": "benign",         # 0.90 not > 1.0
        "mijaljevic-2024-sir": "malignant",    # 0.90 > 0.82
        "perry-2018-sir-untreated": "malignant",  # 0.90 >= 0.856
        "perry-2018-sir-treated": "malignant",
        "perry-2018-sir-irradiated": "malignant",
    }
    assert set(sides(r, "chemical_shift_drop_percent").values()) == {"malignant"}  # 10 below 20, 35, 25, 19.8
    summary = {m.measure: (m.malignant_side, m.benign_side) for m in r.by_measure}
    assert summary == {"chemical_shift_sir": (6, 1), "chemical_shift_drop_percent": (5, 0)}
    assert r.summary == (
        "chemical-shift SIR 0.9: malignant side of 6 of 7 cut-offs; "
        "chemical-shift signal drop 10%: malignant side of 5 of 5 cut-offs"
    )
    assert any(n.code == "sources_differ" and "SIR 0.9" in n.message for n in r.notices)
    assert r.components[0].note == "computed from in-phase 200 and opposed-phase 180"
    assert r.components[0].kb_items == ["quant.chemical_shift.definitions"]
    # Draft rows (Zajick, Douis, Ragab) are flagged.
    assert {"quantitative_cutoffs.zajick-2005-sir", "quantitative_cutoffs.douis-2016-sir",
            "quantitative_cutoffs.ragab-2009-drop"} <= set(r.draft_items)
    assert next(c for c in r.comparisons if c.cutoff == "zajick-2005-sir").draft


def test_every_row_of_the_measure_is_compared_once(kb):
    r = quantitative({"sir": 0.5})
    for measure in ("chemical_shift_sir", "chemical_shift_drop_percent"):
        expected = [row.id for row in cutoffs(kb) if row["measure"] == measure]
        assert [c.cutoff for c in r.comparisons if c.measure == measure] == expected


def test_exactly_at_the_cut_off():
    # IP 100, OP 80 -> SIR 0.80 and drop 20% exactly (float 1 - 0.8 = 0.19999999999999996 must not count as < 20).
    r = quantitative({"in_phase": 100, "opposed_phase": 80})
    z = next(c for c in r.comparisons if c.cutoff == "zajick-2005-sir")
    assert (z.side, z.at_threshold) == ("malignant", True)        # >= 0.80
    s = next(c for c in r.comparisons if c.cutoff == "seed-003-drop-20")
    assert (s.side, s.at_threshold) == ("benign", True)           # 20 is not < 20
    assert any(n.code == "at_threshold" for n in r.notices)
    assert quantitative({"sir": 0.8}).values == r.values
    assert quantitative({"drop_percent": 20}).values == r.values


def test_drop_given_directly():
    # Drop 30% -> SIR 0.70: every SIR cut-off on the benign side; among drops only Ragab's 35% calls it malignant.
    r = quantitative({"drop_percent": 30})
    assert r.values["chemical_shift_sir"] == pytest.approx(0.7)
    assert set(sides(r, "chemical_shift_sir").values()) == {"benign"}
    assert [k for k, v in sides(r, "chemical_shift_drop_percent").items() if v == "malignant"] == ["ragab-2009-drop"]


def test_signal_gain_is_allowed():
    # Kenneally 2015: two benign lesions gained signal. OP > IP -> SIR 1.25, drop -25%.
    r = quantitative({"in_phase": 100, "opposed_phase": 125})
    assert r.values == {"chemical_shift_sir": pytest.approx(1.25), "chemical_shift_drop_percent": pytest.approx(-25)}
    assert sides(r, "chemical_shift_sir")["el-samie-2015-sir"] == "malignant"  # 1.25 > 1.0


def test_consistent_spellings_accepted():
    r = quantitative({"in_phase": 200, "opposed_phase": 180, "sir": 0.9, "drop_percent": 10.2})
    assert r.values["chemical_shift_sir"] == pytest.approx(0.9)  # the intensities win


def test_dixon_fat_fraction():
    # 12%: above Schmeel's 6.40 (benign side), at or below 18.3 (malignant side).
    r = quantitative({"dixon_fat_fraction_percent": 12})
    assert sides(r, "dixon_fat_fraction_percent") == {"schmeel-2018a-pdff": "benign", "eur-radiol-exp-2025-fat": "malignant"}
    assert any(n.kb_items == ["quant.dixon.thresholds_differ"] for n in r.notices)
    r = quantitative({"dixon_fat_fraction_percent": 18.3})
    c = next(c for c in r.comparisons if c.cutoff == "eur-radiol-exp-2025-fat")
    assert (c.side, c.at_threshold) == ("malignant", True)  # <= 18.3


def test_adc():
    # ADC 1.0: <= 1.57 M; < 1.14 M; < 0.995 no; < 1.7 M; < 0.695 no; < 1.08 M; < 0.952 no; < 0.958 no.
    r = quantitative({"adc": 1.0})
    assert [k for k, v in sides(r, "adc").items() if v == "malignant"] == [
        "mijaljevic-2024-adc", "park-2016-adc", "geith-adc", "schmeel-adc"]
    assert r.by_measure[0].malignant_side == 4 and r.by_measure[0].benign_side == 4
    assert any(n.kb_items == ["quant.adc.sequence_dependent"] for n in r.notices)


def test_ct_attenuation_untreated_and_treated():
    # Mean 700 < 885 and < 881; max 900 < 1060.
    r = quantitative({"ct_mean_hu": 700, "ct_max_hu": 900, "treated": False})
    assert set(sides(r, "ct_mean_hu").values()) == {"malignant"}
    assert all(c.applicable for c in r.comparisons)
    assert any(n.kb_items == ["quant.ct.azar_limits"] for n in r.notices)
    azar = next(c for c in r.comparisons if c.cutoff == "azar-2021-max-hu")
    assert "did not transfer" in azar.caveat
    r = quantitative({"ct_mean_hu": 700, "ct_max_hu": 900, "treated": True})
    na = {c.cutoff for c in r.comparisons if not c.applicable}
    assert na == {"ulano-2016-mean-hu", "ulano-2016-max-hu", "pmid-31469323-mean-hu"}
    assert next(c for c in r.comparisons if c.cutoff == "ulano-2016-mean-hu").not_applicable_reason == (
        "derived in untreated lesions; this lesion was treated")
    assert r.summary == (
        "CT mean attenuation 700 HU: no applicable cut-off (2 derived in lesions of another treatment state); "
        "CT maximum attenuation 900 HU: malignant side of 1 of 1 cut-off (1 not applicable)"
    )
    items = [i for n in r.notices for i in n.kb_items]
    assert "ct.enostosis_thresholds_untreated_only" in items and "quant.ct.treated_lesions_sclerose" in items


def test_treatment_state_for_chemical_shift():
    r = quantitative({"sir": 0.9, "treated": False})
    assert {c.cutoff for c in r.comparisons if not c.applicable} == {"perry-2018-sir-treated", "perry-2018-sir-irradiated"}
    r = quantitative({"sir": 0.9, "treated": True})
    assert {c.cutoff for c in r.comparisons if not c.applicable} == {"perry-2018-sir-untreated"}
    r = quantitative({"sir": 0.9})
    assert all(c.applicable for c in r.comparisons)
    assert any(n.code == "treatment_unknown" for n in r.notices)


def test_nothing_given():
    r = quantitative({})
    assert r.status == "insufficient_data"
    assert r.missing[0] == "quantitative.in_phase and quantitative.opposed_phase, or quantitative.sir, or quantitative.drop_percent"
    assert quantitative(None).status == "insufficient_data"
    assert quantitative({"treated": True}).status == "insufficient_data"


def test_text():
    r = quantitative(QuantitativeInput(in_phase=200, opposed_phase=180))
    text = r.to_text()
    assert "  chemical-shift SIR 0.9:" in text
    assert "    malignant if > 0.82 (Mijaljevic 2024): MALIGNANT side; Se 93.6%, Sp 88.5%, AUC 0.953 [" in text
    assert "      benign versus malignant vertebral bone marrow lesions, 1.5 T; 102 oncology patients" in text
    assert "Caveat: Single centre." in text
    assert "DRAFT" in text and DISCLAIMER in text


# --- errors -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("data,message", [
    ({"in_phase": 0, "opposed_phase": 10}, "quantitative.in_phase: input should be greater than 0 (got 0)"),
    ({"in_phase": -5, "opposed_phase": 10}, "quantitative.in_phase: input should be greater than 0 (got -5)"),
    ({"in_phase": 10, "opposed_phase": -1}, "quantitative.opposed_phase: input should be greater than or equal to 0 (got -1)"),
    ({"in_phase": 100},
     "quantitative: give both in_phase and opposed_phase (signal intensities from the same region of interest), or sir or drop_percent"),
    ({"opposed_phase": 100},
     "quantitative: give both in_phase and opposed_phase (signal intensities from the same region of interest), or sir or drop_percent"),
    ({"sir": -0.1}, "quantitative.sir: -0.1 is outside the range this calculator accepts (0 to 5): "
                    "the SIR divides one signal magnitude by another, so it cannot be negative"),
    ({"drop_percent": 150}, "quantitative.drop_percent: 150% is outside the range this calculator accepts (-400 to 100%): "
                            "the opposed-phase signal cannot be negative, so the signal cannot drop by more than 100%"),
    ({"dixon_fat_fraction_percent": 120},
     "quantitative.dixon_fat_fraction_percent: 120% is outside the range this calculator accepts (0 to 100%): "
     "a fat fraction is the fat share of the signal, so it lies between 0 and 100%"),
    ({"dixon_fat_fraction_percent": -1},
     "quantitative.dixon_fat_fraction_percent: -1% is outside the range this calculator accepts (0 to 100%): "
     "a fat fraction is the fat share of the signal, so it lies between 0 and 100%"),
    ({"adc": 0}, "quantitative.adc: 0 x10^-3 mm2/s is outside the range this calculator accepts "
                 "(above 0 and at most 4 x10^-3 mm2/s): an apparent diffusion coefficient is positive; zero or less "
                 "means a failed fit or a wrong number"),
    ({"adc": 1570}, "quantitative.adc: 1570.0 looks like a value in x10^-6 mm2/s; give ADC in x10^-3 mm2/s (e.g. 1.57)"),
    ({"ct_mean_hu": float("inf")}, "quantitative.ct_mean_hu: input should be a finite number (got inf)"),
    ({"in_phase": True, "opposed_phase": 1}, "quantitative.in_phase: expected a number, got True"),
    ({"ct_max_hu": "dense"}, "quantitative.ct_max_hu: input should be a valid number, unable to parse string as a number (got 'dense')"),
    ({"hu": 800}, "quantitative.hu: unknown field; allowed fields: adc, ct_max_hu, ct_mean_hu, dixon_fat_fraction_percent, "
                  "drop_percent, in_phase, opposed_phase, sir, treated"),
    ([200, 180], "quantitative: expected an object, got list"),
])
def test_invalid_inputs(data, message):
    with pytest.raises(InvalidInputError) as exc:
        quantitative(data)
    assert str(exc.value) == message


@pytest.mark.parametrize("data,message", [
    ({"in_phase": 200, "opposed_phase": 180, "sir": 0.5},
     "contradictory input (quantitative.in_phase, quantitative.sir): these give SIR 0.9 and 0.5 (drop 10% and 50%); "
     "give one chemical-shift measurement, or consistent ones"),
    ({"sir": 0.9, "drop_percent": 30},
     "contradictory input (quantitative.sir, quantitative.drop_percent): these give SIR 0.9 and 0.7 (drop 10% and 30%); "
     "give one chemical-shift measurement, or consistent ones"),
    ({"ct_mean_hu": 900, "ct_max_hu": 800},
     "contradictory input (quantitative.ct_mean_hu, quantitative.ct_max_hu): the maximum (800 HU) is below the mean (900 HU)"),
])
def test_contradictions(data, message):
    with pytest.raises(ContradictoryInputError) as exc:
        quantitative(data)
    assert str(exc.value) == message


# --- properties ---------------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(ip=st.floats(0.001, 1e6), op=st.floats(0, 1e6))
def test_sir_and_drop_are_consistent(ip, op):
    assume(op / ip <= 5)  # beyond the SIR's accepted range: refused (test_impossible_values_are_refused)
    r = quantitative({"in_phase": ip, "opposed_phase": op})
    sir, drop = r.values["chemical_shift_sir"], r.values["chemical_shift_drop_percent"]
    assert sir == pytest.approx(op / ip, rel=1e-6, abs=1e-9)
    assert drop == pytest.approx((1 - sir) * 100, rel=1e-6, abs=1e-6)
    assert drop == pytest.approx((ip - op) / ip * 100, rel=1e-6, abs=1e-6)


RULES = {"below": lambda v, t: v < t, "at_or_below": lambda v, t: v <= t,
         "above": lambda v, t: v > t, "at_or_above": lambda v, t: v >= t}


@settings(max_examples=300, deadline=None)
@given(st.fixed_dictionaries({}, optional={
    "sir": st.floats(0, 3), "dixon_fat_fraction_percent": st.floats(0, 100), "adc": st.floats(0.01, 4),
    "ct_mean_hu": st.floats(-100, 2000), "treated": st.one_of(st.none(), st.booleans()),
}))
def test_each_side_follows_its_rule(data):
    r = quantitative(data)
    for c in r.comparisons:
        assert (c.side == "malignant") == RULES[c.malignant_if](c.value, c.threshold)
        assert c.refs and c.sources
    for m in r.by_measure:
        assert m.malignant_side + m.benign_side + m.not_applicable == len([c for c in r.comparisons if c.measure == m.measure])


@settings(max_examples=200, deadline=None)
@given(a=st.floats(0.01, 4), b=st.floats(0.01, 4))
def test_lower_adc_never_looks_less_malignant(a, b):
    # Every ADC cut-off puts low values on the malignant side.
    assume(a != b)
    lo, hi = sorted((a, b))
    n_lo = quantitative({"adc": lo}).by_measure[0].malignant_side
    n_hi = quantitative({"adc": hi}).by_measure[0].malignant_side
    assert n_lo >= n_hi


@settings(max_examples=300, deadline=None)
@given(st.one_of(
    st.none(), st.integers(), st.text(max_size=4),
    st.dictionaries(
        st.one_of(st.sampled_from(list(QuantitativeInput.model_fields)), st.text(max_size=6)),
        st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True, allow_infinity=True),
                  st.text(max_size=6)),
        max_size=6,
    ),
))
def test_arbitrary_input_gives_our_error_naming_the_field_or_finite_values(kb, data):
    r = check_arbitrary_input(quantitative, data, "quantitative", kb)
    if r is not None:
        assert all(math.isfinite(v) for v in r.values.values())


# --- possible ranges (tables/quantitative_ranges.yaml) ---------------------------------------------------

RANGE_FIELDS = ("sir", "drop_percent", "dixon_fat_fraction_percent", "adc", "ct_mean_hu", "ct_max_hu")


def ranges(kb):
    """The rows of the possible-range table."""
    return kb.table("quantitative_ranges").rows


def bounds(kb, field):
    return {r["bound"]: r for r in ranges(kb) if r["field"] == field}


def test_every_measured_field_has_both_bounds_with_a_basis(kb):
    assert {r["field"] for r in ranges(kb)} == set(RANGE_FIELDS)
    for field in RANGE_FIELDS:
        b = bounds(kb, field)
        assert set(b) == {"minimum", "maximum"}, field
        assert b["minimum"]["value"] < b["maximum"]["value"], field
    for row in ranges(kb):
        assert row["evidence"] == "derived" and row["basis"] and row.sources, row.id
        assert isinstance(row["inclusive"], bool), row.id
        # A limit that is a judgement (unverified) is a draft; one that follows from a definition is reviewed.
        assert row.is_draft == (row.verification.value == "unverified"), row.id


def test_drop_limits_are_the_sir_limits_written_as_a_drop(kb):
    # drop = (1 - SIR) x 100: SIR 0..5 <-> drop 100..-400.
    sir, drop = bounds(kb, "sir"), bounds(kb, "drop_percent")
    assert drop["maximum"]["value"] == (1 - sir["minimum"]["value"]) * 100
    assert drop["minimum"]["value"] == (1 - sir["maximum"]["value"]) * 100


def test_every_published_cut_off_lies_inside_its_range(kb):
    field = {"chemical_shift_sir": "sir", "chemical_shift_drop_percent": "drop_percent"}
    for row in cutoffs(kb):
        b = bounds(kb, field.get(row["measure"], row["measure"]))
        assert b["minimum"]["value"] <= row["threshold"] <= b["maximum"]["value"], row.id


@pytest.mark.parametrize("data,field,fragment", [
    # The security review's probes: both were classified (SIR 1e308 even printed "-inf %").
    ({"ct_max_hu": -1e12}, "quantitative.ct_max_hu", "-1e+12 HU is outside the range this calculator accepts (-1024 to 3071 HU)"),
    ({"sir": 1e308}, "quantitative.sir", "1e+308 is outside the range this calculator accepts (0 to 5)"),
    ({"ct_mean_hu": 3071.5}, "quantitative.ct_mean_hu", "(-1024 to 3071 HU)"),
    ({"ct_mean_hu": -1025}, "quantitative.ct_mean_hu", "(-1024 to 3071 HU)"),
    ({"drop_percent": -1e300}, "quantitative.drop_percent", "(-400 to 100%)"),
    ({"drop_percent": -401}, "quantitative.drop_percent", "(-400 to 100%)"),
    ({"sir": 5.01}, "quantitative.sir", "(0 to 5)"),
    ({"adc": 4.5}, "quantitative.adc", "(above 0 and at most 4 x10^-3 mm2/s)"),
    ({"adc": -1}, "quantitative.adc", "(above 0 and at most 4 x10^-3 mm2/s)"),
    # A computed SIR is held to the same range, also when the division overflows.
    ({"in_phase": 100, "opposed_phase": 600}, "quantitative.opposed_phase",
     "opposed-phase 600 over in-phase 100 gives an SIR of 6, outside the range this calculator accepts (0 to 5)"),
    ({"in_phase": 1e-300, "opposed_phase": 1e300}, "quantitative.opposed_phase", "gives an SIR of inf, outside"),
])
def test_impossible_values_are_refused(data, field, fragment):
    """Finding (security review, issue 16): impossible quantitative values were classified, never refused."""
    with pytest.raises(InvalidInputError) as exc:
        quantitative(data)
    assert exc.value.field == field
    assert fragment in str(exc.value)


def test_draft_limits_say_so_in_the_error():
    for data in ({"sir": 9}, {"adc": 7}, {"ct_max_hu": 4000}, {"drop_percent": -900}):
        with pytest.raises(InvalidInputError) as exc:
            quantitative(data)
        assert str(exc.value).endswith("awaiting review"), data
    with pytest.raises(InvalidInputError) as exc:  # a definition, not a judgement: no such remark
        quantitative({"sir": -1})
    assert "awaiting review" not in str(exc.value)


@pytest.mark.parametrize("data", [
    {"sir": 0}, {"sir": 5}, {"drop_percent": 100}, {"drop_percent": -400}, {"dixon_fat_fraction_percent": 0},
    {"dixon_fat_fraction_percent": 100}, {"adc": 4}, {"adc": 1e-9}, {"ct_mean_hu": -1024, "ct_max_hu": 3071},
    {"in_phase": 1, "opposed_phase": 5}, {"in_phase": 1, "opposed_phase": 0},
])
def test_the_limits_themselves_are_accepted(data):
    assert quantitative(data).status == "complete"


def test_schema_states_the_ranges():
    props = QuantitativeInput.model_json_schema()["properties"]

    def number(field):
        return next(b for b in props[field]["anyOf"] if b.get("type") == "number")

    assert number("ct_max_hu") == {"type": "number", "minimum": -1024, "maximum": 3071}
    assert number("adc") == {"type": "number", "exclusiveMinimum": 0, "maximum": 4}
    assert number("sir") == {"type": "number", "minimum": 0, "maximum": 5}
    assert number("drop_percent") == {"type": "number", "minimum": -400, "maximum": 100}
    assert number("in_phase") == {"type": "number", "exclusiveMinimum": 0}


def test_ranges_come_from_the_knowledge_base_given(kb_copy):
    """The limits are data: a knowledge base with another limit refuses by that limit."""
    import yaml

    path = kb_copy / "tables" / "quantitative_ranges.yaml"
    table = yaml.safe_load(path.read_text())
    next(r for r in table["rows"] if r["id"] == "ct-max-maximum")["value"] = 2000
    path.write_text(yaml.safe_dump(table, sort_keys=False))
    other = load_kb(kb_copy)
    assert quantitative({"ct_max_hu": 2500}).status == "complete"
    with pytest.raises(InvalidInputError, match=r"\(-1024 to 2000 HU\)"):
        quantitative({"ct_max_hu": 2500}, other)


def _floats(obj):
    if isinstance(obj, float):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _floats(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from _floats(v)


FINITE = st.floats(allow_nan=False, allow_infinity=False)


@settings(max_examples=400, deadline=None)
@given(st.fixed_dictionaries({}, optional={
    **{name: st.one_of(FINITE, st.floats(-10, 10), st.floats(-2000, 4000)) for name in (
        "in_phase", "opposed_phase", "sir", "drop_percent", "dixon_fat_fraction_percent", "adc", "ct_mean_hu",
        "ct_max_hu")},
    "treated": st.one_of(st.none(), st.booleans()),
}))
def test_no_finite_input_gives_a_non_finite_number(data):
    """Finding (issue 16): `sir: 1e308` gave "-inf %" and a JSON null where the schema says number."""
    try:
        r = quantitative(data)
    except SpinemetsError:
        return
    assert all(math.isfinite(x) for x in _floats(r.model_dump())), data
    # JSON null in place of a number fails this round trip (a non-finite float is written as null).
    assert type(r).model_validate_json(r.model_dump_json()).model_dump() == r.model_dump()
    assert not re.search(r"(?<!\w)[-+]?(inf|nan)\b", r.to_text()), data  # as "-inf %" was printed


# --- no clinical numbers in the interpretation code ---------------------------------------------------

MODULES = ["fracture", "marrow", "quantitative", "primaries"]
# Arithmetic and formatting constants (0, 1, percent 100, display thresholds, the rounding of 2 decimals).
ALLOWED = {0, 1, 2, 10, 100, 1000, 1e-9, 8}


@pytest.mark.parametrize("name", MODULES)
def test_no_clinical_numbers_in_interpretation_code(name):
    path = Path(__file__).resolve().parent.parent / "src" / "spinemets" / "interpret" / f"{name}.py"
    tree = ast.parse(path.read_text())
    named_constants = set()
    for node in tree.body:  # module-level UPPER_CASE constants are named, commented and reviewed
        if isinstance(node, ast.Assign) and all(isinstance(t, ast.Name) and t.id.isupper() for t in node.targets):
            named_constants.update(id(n) for n in ast.walk(node))
    bare = [
        node.value for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool)
        and id(node) not in named_constants and node.value not in ALLOWED
    ]
    assert bare == [], f"numbers in {name}.py: {bare}"


# --- worked examples asserted in full (mutation testing: tests/data/mutation_equivalent) ----------------

WORKED = {"in_phase": 1000, "opposed_phase": 856, "dixon_fat_fraction_percent": 12, "adc": 1.0,
          "ct_mean_hu": 885.5, "ct_max_hu": 1234.5, "treated": False}


def _line(r, cutoff):
    """The two text lines of one comparison (head, detail) as extra_lines() renders them."""
    from spinemets.interpret.quantitative import _comparison_lines

    lines = r.extra_lines()
    c = next(c for c in r.comparisons if c.cutoff == cutoff)
    head, detail = ("    " + line for line in _comparison_lines(c)[:2])
    i = lines.index(head)  # shown in the result, in this order
    assert lines[i + 1] == detail
    return lines[i], lines[i + 1], f" [{','.join(map(str, c.refs))}]"


def test_worked_example_every_measure():
    # IP 1000, OP 856: SIR 0.856 (exactly Perry's cut-off), drop 14.4%; fat fraction 12%; ADC 1.0;
    # CT mean 885.5 HU (just above Ulano's 885 and 881) and max 1234.5 HU (above 1060); untreated lesion.
    r = quantitative(WORKED)
    assert r.status == "complete"
    assert r.summary == (
        "chemical-shift SIR 0.856: malignant side of 4 of 5 cut-offs (2 not applicable); "
        "chemical-shift signal drop 14.4%: malignant side of 5 of 5 cut-offs; "
        "Dixon fat fraction 12%: malignant side of 1 of 2 cut-offs; "
        "ADC 1 x10^-3 mm2/s: malignant side of 4 of 8 cut-offs; "
        "CT mean attenuation 885.5 HU: malignant side of 0 of 2 cut-offs; "
        "CT maximum attenuation 1234.5 HU: malignant side of 0 of 2 cut-offs"
    )
    definitions = load_kb().statement("quant.chemical_shift.definitions")
    sir, drop, *given = r.components
    assert (sir.name, sir.value, sir.note, sir.kb_items, sir.sources) == (
        "sir", "0.856", "computed from in-phase 1000 and opposed-phase 856",
        ["quant.chemical_shift.definitions"], list(definitions.sources))
    assert (drop.name, drop.value, drop.note, drop.kb_items, drop.sources) == (
        "drop_percent", "14.4", "signal drop = (1 - SIR) x 100",
        ["quant.chemical_shift.definitions"], list(definitions.sources))
    assert sir.refs and drop.refs == sir.refs
    assert [(c.name, c.value, c.note, c.kb_items, c.sources, c.refs) for c in given] == [
        ("dixon_fat_fraction_percent", "12", "as given", [], [], []), ("adc", "1", "as given", [], [], []),
        ("ct_mean_hu", "885.5", "as given", [], [], []), ("ct_max_hu", "1234.5", "as given", [], [], []),
    ]
    perry = next(c for c in r.comparisons if c.cutoff == "perry-2018-sir-untreated")
    assert (perry.units, perry.accuracy, perry.sensitivity, perry.side, perry.at_threshold) == (
        "ratio (opposed/in-phase)", 0.88, None, "malignant", True)
    assert next(c for c in r.comparisons if c.cutoff == "ulano-2016-mean-hu").units == "HU"
    # One notice where the cut-offs of a measure disagree (not for the drop, 5-0, nor CT, 0-2), then the caveats.
    assert [n.code for n in r.notices] == ["sources_differ"] * 3 + ["at_threshold"] + ["caveat"] * 5
    assert r.notices[0].message == (
        "The cut-offs disagree for chemical-shift SIR 0.856: 4 place it on the malignant side and 1 on the benign "
        "side; each is shown with its source.")
    at = r.notices[3].message
    assert at == ("A value lies exactly at a cut-off; the sources do not always say on which side equality "
                  "falls (the side shown follows the direction in which each study stated its cut-off).")
    assert [n.kb_items for n in r.notices[4:]] == [
        ["quant.chemical_shift.cutoffs_differ"], ["quant.chemical_shift.treatment_degrades"],
        ["quant.dixon.thresholds_differ"], ["quant.adc.sequence_dependent"], ["quant.ct.azar_limits"]]
    # Sources cited only by a caveat notice (bjr-2016, by the ADC one) are in the references too.
    numbers = {ref.number for ref in r.references}
    cited = {n for part in (*r.notices, *r.components, *r.comparisons) for n in part.refs}
    assert cited == numbers == set(range(1, len(numbers) + 1))
    assert "bjr-2016" in {ref.source_id for ref in r.references}


def test_worked_example_text_lines():
    r = quantitative(WORKED)
    head, detail, refs = _line(r, "zajick-2005-sir")
    assert head == "    malignant if >= 0.8 (Zajick 2005): MALIGNANT side; Se 95%, Sp 89% DRAFT" + refs
    head, detail, refs = _line(r, "douis-2016-sir")
    assert head == "    malignant if >= 0.8 (Douis 2016): MALIGNANT side; no accuracy figures DRAFT" + refs
    head, detail, refs = _line(r, "el-samie-2015-sir")
    assert head == "    malignant if > 1 (El-Samie 2015): benign side; Se 96.8%, Sp 93.7%" + refs
    head, detail, refs = _line(r, "perry-2018-sir-untreated")
    assert head == ("    malignant if >= 0.856 (Perry 2018): MALIGNANT side (exactly at the cut-off); "
                    "accuracy 88%" + refs)
    assert detail.startswith("      benign lesions versus untreated metastases, untreated lesions; "
                             "25 benign lesions and 25 untreated metastases. Caveat: ")
    head, detail, refs = _line(r, "perry-2018-sir-treated")
    assert head == ("    malignant if >= 0.856 (Perry 2018): MALIGNANT side (exactly at the cut-off); "
                    "accuracy 77.5%; NOT APPLICABLE: derived in treated lesions; this lesion is untreated" + refs)
    head, detail, refs = _line(r, "eur-radiol-exp-2025-drop")
    assert head == ("    malignant if <= 19.8 (Eur Radiol Exp 2025): MALIGNANT side; Se 95.3%, Sp 73.8%, "
                    "accuracy 87.2%" + refs)
    head, detail, refs = _line(r, "park-2016-adc")  # two sources: both numbers
    assert refs.count(",") == 1
    assert head == "    malignant if < 1.14 (Mijaljevic 2024, Park 2016): MALIGNANT side; no accuracy figures" + refs
    head, detail, refs = _line(r, "azar-2021-max-hu")  # lesion_treatment 'mixed' in words
    assert detail.startswith("      benign sclerotic lesions versus osteoblastic metastases at biopsy, "
                             "treated and untreated lesions; 280 biopsied patients")
    # Under each measure's heading its own cut-offs, in table order, and nothing else.
    grouped: dict[str, list[str]] = {}
    for line in r.extra_lines():
        if not line.startswith("   "):
            heading = line
            grouped[heading] = []
        elif not line.startswith("      "):
            grouped[heading].append(line.split("(", 1)[1].split(")", 1)[0])
    assert list(grouped) == [
        "  chemical-shift SIR 0.856:", "  chemical-shift signal drop 14.4%:", "  Dixon fat fraction 12%:",
        "  ADC 1 x10^-3 mm2/s:", "  CT mean attenuation 885.5 HU:", "  CT maximum attenuation 1234.5 HU:"]
    assert list(grouped.values()) == [
        [c.source_label for c in r.comparisons if c.measure == m] for m in MEASURES]


def test_how_the_chemical_shift_was_given_is_noted():
    assert [(c.name, c.value, c.note) for c in quantitative({"sir": 0.9}).components] == [
        ("sir", "0.9", "SIR as given"), ("drop_percent", "10", "signal drop = (1 - SIR) x 100")]
    assert [(c.name, c.value, c.note) for c in quantitative({"drop_percent": 30}).components] == [
        ("sir", "0.7", "drop as given"), ("drop_percent", "30", "signal drop = (1 - SIR) x 100")]


def test_strict_cut_offs_exactly_at_the_threshold():
    # El-Samie: malignant if SIR > 1.0; Mijaljevic: > 0.82.  Equality is the benign side.
    for sir, cutoff in ((1.0, "el-samie-2015-sir"), (0.82, "mijaljevic-2024-sir")):
        c = next(c for c in quantitative({"sir": sir}).comparisons if c.cutoff == cutoff)
        assert (c.side, c.at_threshold) == ("benign", True), cutoff


def test_spellings_exactly_the_agreement_limit_apart_disagree():
    # OP/IP = 5/1000 = 0.005 and SIR 0: they differ by exactly 0.005, which no longer rounds to the same two decimals.
    with pytest.raises(ContradictoryInputError) as exc:
        quantitative({"in_phase": 1000, "opposed_phase": 5, "sir": 0})
    assert str(exc.value) == (
        "contradictory input (quantitative.in_phase, quantitative.sir): these give SIR 0.005 and 0 "
        "(drop 99.5% and 100%); give one chemical-shift measurement, or consistent ones")


def test_ct_maximum_equal_to_the_mean_is_accepted():
    # A uniform lesion: the maximum equals the mean; only a maximum below the mean is contradictory.
    r = quantitative({"ct_mean_hu": 700, "ct_max_hu": 700})
    assert r.status == "complete" and r.values == {"ct_mean_hu": 700, "ct_max_hu": 700}


def test_nothing_given_says_so():
    r = quantitative({})
    assert (r.status, r.summary, r.comparisons, r.values) == (
        "insufficient_data", "insufficient data: no measurement given", [], {})
    assert r.missing == [
        "quantitative.in_phase and quantitative.opposed_phase, or quantitative.sir, or quantitative.drop_percent",
        "quantitative.dixon_fat_fraction_percent", "quantitative.adc", "quantitative.ct_mean_hu",
        "quantitative.ct_max_hu"]


def test_computed_sir_error_message_in_full():
    with pytest.raises(InvalidInputError) as exc:
        quantitative({"in_phase": 100, "opposed_phase": 600})
    basis = " ".join(str(bounds(load_kb(), "sir")["maximum"]["basis"]).split())
    assert str(exc.value) == (
        "quantitative.opposed_phase: opposed-phase 600 over in-phase 100 gives an SIR of 6, outside the range this "
        f"calculator accepts (0 to 5): {basis}; check both intensities come from the same region of interest")


def test_treatment_notices_only_where_they_apply():
    # Treated lesion, chemical shift only: no CT notices about treated sclerotic lesions.
    r = quantitative({"sir": 0.9, "treated": True})
    assert [n.code for n in r.notices] == ["sources_differ", "caveat", "caveat"]
    # Treated lesion with CT: the two statements on treated sclerotic lesions, coded 'treated'.
    r = quantitative({"ct_mean_hu": 700, "ct_max_hu": 900, "treated": True})
    assert [(n.code, n.kb_items) for n in r.notices] == [
        ("caveat", ["quant.ct.azar_limits"]), ("treated", ["ct.enostosis_thresholds_untreated_only"]),
        ("treated", ["quant.ct.treated_lesions_sclerose"])]
    # Treatment unknown: the warning only where some cut-off was derived in lesions of a stated treatment state.
    r = quantitative({"sir": 0.9})
    msg = next(n.message for n in r.notices if n.code == "treatment_unknown")
    assert msg.startswith("Treatment status not given")
    assert msg.endswith(": cut-offs derived in untreated lesions do not transfer to treated ones.")
    assert [n.code for n in quantitative({"adc": 1.0}).notices] == ["sources_differ", "caveat"]


def test_exclusive_maximum_and_missing_population_from_the_knowledge_base(kb_copy):
    """The range text and the comparison lines follow the data: an exclusive upper limit, a row without population."""
    import yaml

    path = kb_copy / "tables" / "quantitative_ranges.yaml"
    table = yaml.safe_load(path.read_text())
    next(r for r in table["rows"] if r["id"] == "ct-max-maximum")["inclusive"] = False
    path.write_text(yaml.safe_dump(table, sort_keys=False))
    path = kb_copy / "tables" / "quantitative_cutoffs.yaml"
    table = yaml.safe_load(path.read_text())
    next(r for r in table["rows"] if r["id"] == "azar-2021-max-hu")["population"] = None
    path.write_text(yaml.safe_dump(table, sort_keys=False))
    other = load_kb(kb_copy)
    with pytest.raises(InvalidInputError) as exc:
        quantitative({"ct_max_hu": 3071}, other)
    assert "3071 HU is outside the range this calculator accepts (at least -1024 and below 3071 HU): " in str(exc.value)
    r = quantitative({"ct_max_hu": 3070.5}, other)
    _, detail, _ = _line(r, "azar-2021-max-hu")
    assert detail.startswith(
        "      benign sclerotic lesions versus osteoblastic metastases at biopsy, treated and untreated lesions. Caveat: ")


@pytest.mark.parametrize("data", [WORKED, {"sir": 0}, {"drop_percent": 100}, {"ct_mean_hu": 500, "ct_max_hu": 900}])
def test_cut_offs_are_named_by_their_sources_never_by_row_ids(data):
    # The text once named each cut-off by its table row ("seed-003-drop-20", "zajick-2005-sir").
    from spinemets.knowledge.loader import load_kb
    r = quantitative(data)
    text = r.to_text()
    rows = {row.id for row in load_kb().table("quantitative_cutoffs").rows}
    assert not [i for i in rows if i in text]
    assert all(c.source_label and f"({c.source_label}):" in text for c in r.comparisons)
