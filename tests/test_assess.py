"""assess: one case document, every result the inputs allow."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from spinemets import assess
from spinemets.errors import ContradictoryInputError, InvalidInputError

ROOT = Path(__file__).resolve().parent.parent


def test_full_example_case():
    r = assess(json.loads((ROOT / "examples" / "full_case.json").read_text()))
    assert r.statuses == {"pathway": "complete", "sins": "complete", "escc": "complete", "noms": "complete", "probability": "complete"}
    assert r.pathway.first_line.study.id == "mri-whole-spine-wwo"
    # T12 junctional 3 + mechanical 3 + lytic 2 + normal 0 + <50% 2 + unilateral 1 = 11
    assert r.sins.total == 11 and r.sins.category == "potentially_unstable"
    assert r.escc.grade == "2"
    assert r.noms.treatment == ["surgical_consultation", "separation_surgery_then_srs"]
    assert r.probability.post_test_min < r.probability.post_test_max  # several sources side by side
    text = r.to_text()
    assert "Decision support for healthcare professionals" in text and r.kb_version in text


def test_empty_case():
    r = assess({})
    assert r.statuses == {} and r.complete
    assert "nothing to assess" in r.to_text()


def test_partial_case_reports_each_status():
    r = assess({"sins": {"level": "T4"}, "escc": {"grade": "1b"}})
    assert r.statuses == {"sins": "insufficient_data", "escc": "complete"}
    assert not r.complete


def test_invalid_case_names_field():
    with pytest.raises(InvalidInputError) as exc:
        assess({"sins": {"level": "L6"}})
    assert str(exc.value) == "case.sins.level: 'L6' is not a vertebral level: lumbar levels are L1 to L5"
    with pytest.raises(InvalidInputError) as exc:
        assess({"sinz": {}})
    assert str(exc.value).startswith("case.sinz: unknown field; allowed fields: case_id, escc, fracture, lesions, marrow, pathway, patient, primaries, probability, prognosis, quantitative, sins")


def test_contradictory_case():
    with pytest.raises(ContradictoryInputError):
        assess({"escc": {"epidural_disease": False, "cord_compressed": True}})


def test_public_functions_survive_submodule_imports():
    import importlib

    import spinemets

    importlib.import_module("spinemets.assess")
    importlib.import_module("spinemets.pathway")
    from spinemets import assess as fn
    from spinemets import pathway as pw

    assert callable(fn) and fn.__name__ == "assess"
    assert callable(pw) and pw.__name__ == "pathway"
    assert spinemets.assess is fn


# --- results built from the core's own values, without validating them again ------------------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from spinemets.levels import ORDER  # noqa: E402
from spinemets.scores.sins import COMPONENTS, ENUMS  # noqa: E402

_MAYBE = st.one_of(st.none(), st.booleans())
_PATHWAYS = st.fixed_dictionaries({}, optional={
    "age": st.integers(0, 100), "pregnant": st.booleans(), "egfr": st.floats(5, 120), "on_dialysis": st.booleans(),
    "cancer_history": st.sampled_from(["none", "current", "previous"]), "unknown_primary": st.booleans(),
    "primary_site": st.sampled_from(["breast", "prostate", "kidney", "myeloma", "lung", "thyroid", "melanoma",
                                     "lymphoma", "colon"]),
    "spinal_hardware": st.booleans(), "spinal_pain": st.booleans(),
    "pain_region": st.sampled_from(["cervical", "thoracic", "lumbar", "sacral", "multiple"]),
    "mechanical_pain": st.booleans(), "night_pain": st.booleans(), "red_flags": st.just([]),
    "neuro_deficits": st.lists(st.sampled_from(["motor_weakness", "sensory_level", "sphincter", "gait", "radicular"]),
                               max_size=2, unique=True),
    "suspected_cord_compression": st.booleans(), "asymptomatic_surveillance": st.booleans(),
    "known_lesion_purpose": st.sampled_from(["characterise", "stage", "plan_treatment", "follow_up",
                                             "response_assessment"]),
})
_CASES = st.fixed_dictionaries({}, optional={
    "pathway": _PATHWAYS,
    "patient": st.fixed_dictionaries({}, optional={
        "histology": st.sampled_from(["renal cell carcinoma", "prostate cancer", "breast cancer", "multiple myeloma",
                                      "melanoma", "lymphoma", "xyzoma"]),
        "myelopathy": st.booleans(), "fit_for_surgery": st.booleans()}),
    "sins": st.fixed_dictionaries({}, optional={
        "level": st.sampled_from(ORDER), **{c: st.sampled_from([m.value for m in ENUMS[c]]) for c in COMPONENTS
                                             if c != "location"}}),
    "escc": st.one_of(
        st.fixed_dictionaries({"grade": st.sampled_from(["0", "1a", "1b", "1c", "2", "3"])}),
        st.fixed_dictionaries({}, optional={k: st.booleans() for k in (
            "epidural_disease", "thecal_sac_deformed", "cord_abutted", "cord_compressed", "csf_visible")})),
    "probability": st.fixed_dictionaries({
        "pre_test": st.floats(0.01, 0.99),
        "tests": st.lists(st.fixed_dictionaries({"modality": st.sampled_from(["mri", "ct", "bone_scan", "pet_ct"]),
                                                 "result": st.sampled_from(["positive", "negative"])}),
                          min_size=1, max_size=2)}),
    "prognosis": st.fixed_dictionaries({}, optional={
        "primary": st.sampled_from(["breast", "lung", "kidney", "melanoma", "unknown primary"]),
        "karnofsky": st.sampled_from([10, 50, 80, 100]), "vertebral_metastases": st.integers(1, 5),
        "extraspinal_bone_metastases": st.integers(0, 4), "frankel": st.sampled_from("ABCDE"),
        "organ_metastases": st.sampled_from(["none", "removable", "unremovable"]),
        "ambulation": st.sampled_from(["independent", "assisted", "unable"]),
        "albumin_g_l": st.sampled_from([25.0, 35.0, 42.0])}),
})


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_CASES)
def test_results_of_random_cases_validate_back_to_the_same_values(case):
    _validates_back(case)


def test_the_full_example_case_validates_back_to_the_same_values():
    case = json.loads((ROOT / "examples" / "full_case.json").read_text(encoding="utf-8"))
    assert len(assess(case).results) >= 5
    _validates_back(case)


def _validates_back(case):
    """Components and notices are built without validating again (``results.trusted``): every result of a random
    case validates back to the same values, and serialising it raises no type warning."""
    import warnings

    from spinemets.errors import SpinemetsError

    try:
        result = assess(case)
    except SpinemetsError:
        return  # (a contradictory or insufficient case: refused with its message, tested elsewhere)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # (pydantic's serialiser warnings; not a library's deprecation)
        dumped = result.model_dump()
        # repr, not ==: a str-enum member equals its text but is not plain text (yaml, type checks)
        assert repr(type(result).model_validate(dumped).model_dump()) == repr(dumped)
        type(result).model_validate_json(result.model_dump_json())
        for sub in result.results:
            again = type(sub).model_validate(sub.model_dump())
            assert repr(again.model_dump()) == repr(sub.model_dump()) and again.to_text() == sub.to_text()


def test_a_row_citation_checks_its_sources_every_time_and_numbers_in_order_of_first_use():
    """Row citations are worked out once per row; a row citing an unknown source is refused each time (nothing is
    kept for it), and numbers follow the order of first use, as citing the sources one by one gives them."""
    from spinemets.errors import UnknownSourceError
    from spinemets.knowledge.loader import load_kb
    from spinemets.results import Citer

    kb = load_kb()
    rows = kb.table("sins_points").rows[:4]
    bad = rows[0].model_copy(update={"sources": ["nobody-1999"]})
    for _ in range(2):
        with pytest.raises(UnknownSourceError, match="nobody-1999"):
            Citer(kb).cite_row("sins_points", bad)
    by_rows, by_sources = Citer(kb), Citer(kb)
    for _ in range(2):
        for row in reversed(rows):
            assert by_rows.cite_row("sins_points", row) == by_sources.cite(f"sins_points.{row.id}", row)
    assert by_rows.references() == by_sources.references() and by_rows.draft_items == by_sources.draft_items


def test_statement_and_notice_citations_are_those_of_citing_item_by_item():
    """Statement and notice citations are worked out once per knowledge base and id: the same numbers, sources and
    draft items as citing each item anew; an unknown id is refused each time, in the words of its lookup."""
    from spinemets.errors import UnknownItemError
    from spinemets.knowledge.loader import load_kb
    from spinemets.results import Citer

    kb = load_kb()
    drafts = [sid for sid, st in kb.statements.items() if st.is_draft][:3]
    plain = [sid for sid, st in kb.statements.items() if not st.is_draft][:3]
    fast, slow = Citer(kb), Citer(kb)
    for _ in range(2):
        for sid in [*plain, *drafts]:
            assert fast.cite_statement(sid) == slow.cite(sid, kb.statement(sid))
    row_id = f"sins_points.{kb.table('sins_points').rows[0].id}"
    items = [drafts[0], row_id, "sins_points"]  # (a table cites nothing itself)
    extra = [kb.statement(plain[0]).sources[0]]
    notice = fast.notice("n", "message", kb_items=items, sources=extra)
    refs, sources = [], list(extra)
    for item_id in items[:2]:
        item = kb.find(item_id)
        refs += slow.cite(item_id, item)
        sources += [s for s in item.sources if s not in sources]
    refs += slow.cite_sources(extra)
    assert (notice.kb_items, notice.refs, notice.sources) == (items, sorted(set(refs)), sources)
    assert fast.references() == slow.references() and fast.draft_items == slow.draft_items
    assert fast.draft_items == drafts
    for _ in range(2):
        with pytest.raises(UnknownItemError, match="unknown statement id 'no.such.statement'"):
            Citer(kb).cite_statement("no.such.statement")
        with pytest.raises(UnknownItemError, match="unknown knowledge-base id 'no.such.item'"):
            Citer(kb).notice("n", "m", kb_items=["no.such.item"])


def test_sins_components_carry_plain_text_not_enum_members():
    """Found by review: built without validation, the SINS components kept the input's enum members (equal to their
    text, so JSON and text were right, but a YAML dump of the result failed)."""
    import yaml

    from spinemets import sins

    r = sins({"location": "mobile", "pain": "mechanical", "lesion": "lytic", "alignment": "normal",
              "collapse": "lt50", "posterolateral": "none"})
    assert all(type(c.value) is str for c in r.components) and r.components[1].value == "mechanical"
    assert "mechanical" in yaml.safe_dump(r.model_dump())


def test_values_kept_per_object_are_bound_to_that_object_and_bounded():
    from spinemets.results import KeptPerObject

    class Row:
        pass

    kept, a, b = KeptPerObject(2), Row(), Row()
    assert kept.get(a, "t") is KeptPerObject.MISSING
    assert kept.put(a, None, "t") is None and kept.get(a, "t") is None  # a kept None is not "nothing kept"
    kept.put(b, 1, "t")
    assert kept.get(b, "t") == 1 and kept.get(b, "other") is KeptPerObject.MISSING
    kept.put(a, 2, "u")  # the limit is reached: the store is emptied first
    assert kept.get(b, "t") is KeptPerObject.MISSING and kept.get(a, "u") == 2
