"""Primaries by lesion pattern (tables/primaries_by_lesion_type.yaml; clinical-facts H; seed 003 and seed 004 prose).

Seed 003: lytic = breast, lung, colon, thyroid, kidney; blastic = prostate, neuroblastoma (and prostate, gastric,
myeloma, lymphoma as the commonest sclerotic); mixed = breast, lung.  Myeloma is nevertheless listed as lytic only
(IMWG Bone Group 2018; sclerotic myeloma is rare, Lacy 1997).  Oncopaedia (after Mundy 2002) and a
radiology teaching list add the rest; lytic-expansile = renal cell, thyroid, hepatocellular, melanoma,
phaeochromocytoma.  Sources disagree on myeloma, neuroblastoma and gastrointestinal cancers.
SINS bone lesion (Fisher 2010): lytic 2, mixed 1, blastic 0.
"""

from __future__ import annotations

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from spinemets.errors import InvalidInputError, SpinemetsError
from spinemets.interpret.primaries import LesionType, PrimariesInput, PrimariesResult, PrimaryEntry, likely_primaries
from spinemets.knowledge.loader import load_kb
from tests.support import check_arbitrary_input


def rows(kb):
    """The rows of the primaries-by-lesion-type table."""
    return kb.table("primaries_by_lesion_type").rows


def names(r):
    return [p.primary for p in r.primaries]


def test_see_also_statements_exist(kb):
    for row in rows(kb):
        assert row["lesion_type"] in {t.value for t in LesionType}, row.id
        for sid in row.get("see_also") or []:
            kb.statement(sid)  # raises if missing


def test_blastic():
    r = likely_primaries({"lesion_type": "blastic"})
    assert r.status == "complete" and r.lesion_type == LesionType.blastic
    assert names(r)[:4] == ["Prostate cancer", "Neuroblastoma", "Gastric cancer", "Lymphoma"]
    assert len(r.primaries) == 11
    sins_item = next(c for c in r.components if c.name == "sins_bone_lesion")
    assert (sins_item.value, sins_item.points) == ("blastic", 0)
    # Myeloma is lytic: not a listed blastic primary, but the sclerotic pattern carries the note that sclerotic
    # myeloma is rare (Lacy 1997), with seed 003's contrary listing beside it.
    assert "Multiple myeloma" not in names(r)
    differ = [n for n in r.notices if n.code == "sources_differ"]
    assert {i for n in differ for i in n.kb_items} == {
        "primaries.myeloma_pattern_disagreement", "primaries.neuroblastoma_pattern_disagreement",
        "primaries.gastrointestinal_pattern_disagreement",
    }
    my = next(n for n in differ if n.kb_items == ["primaries.myeloma_pattern_disagreement"])
    assert {"lacy-1997", "imwg-wbldct-2018", "seed-003"} <= set(my.sources)
    assert "Sclerotic myeloma is rare (osteosclerotic myeloma" in my.message
    # Bone island differential, and the tracer notes: FDG-PET may miss blastic deposits.
    assert any(n.kb_items == ["ddx.bone_island"] for n in r.notices)
    assert [n.statement for n in r.tracer_notes] == ["nm.fdg_lytic_vs_blastic", "nm.tracer_choice_by_lesion_type"]
    assert [n.statement for n in r.treatment_notes] == [
        "treatment.instability_indication", "primaries.treated_lytic_become_sclerotic", "ct.osteoblastic_flare"]


@pytest.mark.parametrize("spelling", ["sclerotic", "osteoblastic", "Osteoblastic", " blastic ", LesionType.blastic])
def test_blastic_aliases(spelling):
    assert likely_primaries({"lesion_type": spelling}).lesion_type == LesionType.blastic


def test_lytic():
    r = likely_primaries({"lesion_type": "osteolytic"})
    assert names(r) == [
        "Breast cancer", "Lung cancer", "Colon cancer", "Non-mucinous adenocarcinoma of the gastrointestinal tract",
        "Thyroid cancer", "Renal cell carcinoma", "Multiple myeloma", "Melanoma", "Non-Hodgkin lymphoma",
        "Langerhans cell histiocytosis",
    ]
    breast = r.primaries[0]
    assert breast.also_listed_as == ["blastic", "mixed"]
    assert breast.sources == ["seed-003", "oncopaedia-bone-metastases", "seekhealthz-skeletal-metastases"]
    assert next(c for c in r.components if c.name == "sins_bone_lesion").points == 2
    assert "nm.bone_scan_false_negatives" in [n.statement for n in r.tracer_notes]
    # Breast's treatment-effect statement moves to the treatment notes, not the warnings.
    assert "primaries.treated_lytic_become_sclerotic" in [n.statement for n in r.treatment_notes]
    assert not any("primaries.treated_lytic_become_sclerotic" in n.kb_items for n in r.notices)
    assert any(n.kb_items == ["primaries.lung_by_histology"] and n.code == "note" for n in r.notices)


def test_myeloma_is_lytic_only(kb):
    # Regression: the table listed myeloma as a blastic primary on seed 003's word alone.  Myeloma is lytic
    # (IMWG Bone Group: osteoclasts driven, osteoblasts suppressed); sclerotic myeloma is rare (Lacy 1997).
    patterns = {row["lesion_type"] for row in rows(kb) if row["primary"] == "Multiple myeloma"}
    assert patterns == {"lytic"}
    r = likely_primaries({"lesion_type": "lytic"})
    myeloma = next(p for p in r.primaries if p.primary == "Multiple myeloma")
    assert myeloma.also_listed_as == [] and myeloma.verification == "verified"
    assert {"lacy-1997", "imwg-wbldct-2018", "devita-2001"} <= set(myeloma.sources)
    assert "sclerotic myeloma" in myeloma.frequency_note and "POEMS" in myeloma.frequency_note
    for kind in ("blastic", "mixed", "lytic_expansile"):
        assert "Multiple myeloma" not in names(likely_primaries({"lesion_type": kind})), kind


def test_web_summary_only_rows_and_statements_are_drafts(kb):
    # Regression: rows and statements resting only on web summaries (Oncopaedia, SeekhealthZ, the AI answer
    # pages) were marked reviewed.  Every such item is now a draft, and is flagged in the result.
    weak = {s for s, src in kb.sources.items() if src.kind.value in ("web_summary", "ai_answer_page")}
    for row in rows(kb):
        if set(row.sources) <= weak:
            assert row.is_draft, row.id
    for st in kb.statements.values():
        if st.id.startswith("primaries.") and set(st.sources) <= weak:
            assert st.is_draft, st.id
    assert kb.table("primaries_by_lesion_type").row("lytic-melanoma").is_draft
    assert kb.statement("primaries.lytic_expansile_list").is_draft
    r = likely_primaries({"lesion_type": "lytic_expansile"})
    assert set(r.draft_items) == {f"primaries_by_lesion_type.{p.kb_item.split('.')[1]}" for p in r.primaries}
    assert "! DRAFT: this result uses unverified knowledge-base items awaiting review" in r.to_text()
    # Rows backed by a primary source (seed 003 review, textbook) stay reviewed.
    assert not kb.table("primaries_by_lesion_type").row("blastic-prostate").is_draft
    assert "primaries_by_lesion_type.lytic-kidney" not in likely_primaries({"lesion_type": "lytic"}).draft_items


def test_lytic_expansile():
    r = likely_primaries({"lesion_type": "expansile lytic"})
    assert r.lesion_type == LesionType.lytic_expansile
    assert names(r) == ["Renal cell carcinoma", "Thyroid cancer", "Hepatocellular carcinoma", "Melanoma", "Phaeochromocytoma"]
    assert next(c for c in r.components if c.name == "sins_bone_lesion").points == 2  # scored as lytic
    assert all(p.verification == "secondary" for p in r.primaries)
    assert "(secondary sources only)" in r.to_text()


def test_mixed():
    r = likely_primaries({"lesion_type": "lytic/blastic"})
    assert r.lesion_type == LesionType.mixed
    assert names(r)[:2] == ["Breast cancer", "Lung cancer"]
    assert next(c for c in r.components if c.name == "sins_bone_lesion").points == 1


def test_weak_guide_caveat_always_first():
    for t in LesionType:
        r = likely_primaries({"lesion_type": t})
        assert r.notices[0].kb_items == ["primaries.mineralisation_poor_guide"]
        assert r.summary.endswith("(the pattern is only a weak guide to the primary)")


def test_missing_or_unknown_is_insufficient():
    for data in ({}, None, {"lesion_type": None}, {"lesion_type": "unknown"}):
        r = likely_primaries(data)
        assert r.status == "insufficient_data" and r.missing == ["primaries.lesion_type"]
        assert r.primaries == []


def test_text():
    text = likely_primaries(PrimariesInput(lesion_type=LesionType.blastic)).to_text()
    lines = text.splitlines()
    assert lines[0] == "PRIMARIES: blastic pattern: 11 primaries listed by the sources (the pattern is only a weak guide to the primary)"
    assert lines[1].startswith("  - Prostate cancer: the commonest source of osteoblastic metastases; mainly blastic [")
    assert "Tracer choice:" in text and "Treatment and follow-up:" in text
    assert "  sins_bone_lesion: blastic (Blastic) = 0 pts - the SINS bone-lesion item for this pattern [" in text
    assert text.index("Tracer choice:") > text.index("! Whether a deposit")


@pytest.mark.parametrize("data,message", [
    ({"lesion_type": "cystic"},
     "primaries.lesion_type: 'cystic' is not allowed; allowed values: 'lytic', 'blastic', 'mixed', 'lytic_expansile' "
     "(also sclerotic, osteoblastic, osteolytic, expansile) or 'unknown'"),
    ({"lesion_type": 3},
     "primaries.lesion_type: expected text, got 3; allowed values: 'lytic', 'blastic', 'mixed', 'lytic_expansile'"),
    ({"type": "lytic"}, "primaries.type: unknown field; allowed fields: lesion_type"),
    ("lytic", "primaries: expected an object, got str"),
])
def test_invalid_inputs(data, message):
    with pytest.raises(InvalidInputError) as exc:
        likely_primaries(data)
    assert str(exc.value) == message


@settings(max_examples=100, deadline=None)
@given(st.sampled_from([*(t.value for t in LesionType), "sclerotic", "osteoblastic", "osteolytic", "expansile",
                        "mixed_lytic_blastic", "Lytic-Expansile"]))
def test_every_spelling_gives_exactly_the_table_rows(kb, spelling):
    r = likely_primaries({"lesion_type": spelling})
    expected = [row for row in rows(kb) if row["lesion_type"] == r.lesion_type.value]
    assert [p.kb_item for p in r.primaries] == [f"primaries_by_lesion_type.{row.id}" for row in expected]
    assert all(p.refs for p in r.primaries)
    assert {ref.source_id for ref in r.references} >= {s for row in expected for s in row.sources}


@settings(max_examples=200, deadline=None)
@given(st.one_of(
    st.none(), st.integers(), st.text(max_size=5),
    st.dictionaries(st.one_of(st.just("lesion_type"), st.text(max_size=5)),
                    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=12)),
                    max_size=3),
))
def test_arbitrary_input_gives_our_error_naming_the_field_or_the_table_rows(kb, data):
    r = check_arbitrary_input(likely_primaries, data, "primaries", kb)
    if r is not None:
        assert (r.status == "complete") == bool(r.primaries)
        if r.primaries:
            assert [p.kb_item for p in r.primaries] == [
                f"primaries_by_lesion_type.{row.id}" for row in rows(kb) if row["lesion_type"] == r.lesion_type.value]


def test_lytic_list_as_a_clinician_reads_it():
    # Worked example, seed 003 / Oncopaedia / DeVita / Lacy / IMWG rows: each primary with its frequency note
    # (leading 'Usually', 'Often', 'Tends' lower-cased after the colon, 'Non-small-cell' kept), the other
    # patterns it is listed under (hyphenated, comma-separated; not repeated when the note already says so),
    # the flag on rows resting on secondary sources only, and its numbered references.
    r = likely_primaries({"lesion_type": "lytic"})
    assert r.extra_lines() == [
        "  - Breast cancer: usually lytic; can also be mixed, or sclerotic particularly after treatment; "
        "also listed as blastic, mixed [1,2,3]",
        "  - Lung cancer: Non-small-cell histology is lytic; small-cell lung cancer is listed as blastic; "
        "also listed as mixed [1,2,3]",
        "  - Colon cancer [1]",
        "  - Non-mucinous adenocarcinoma of the gastrointestinal tract (secondary sources only) [3]",
        "  - Thyroid cancer: often lytic and expansile; also listed as lytic-expansile [1,2,3]",
        "  - Renal cell carcinoma: tends to be purely lytic; often expansile; also listed as lytic-expansile [1,2,4]",
        "  - Multiple myeloma: tends to be purely lytic; sclerotic myeloma (osteosclerotic myeloma, POEMS syndrome) "
        "is rare [2,3,4,5,6]",
        "  - Melanoma: also listed as lytic-expansile and as mixed (secondary sources only) [2]",
        "  - Non-Hodgkin lymphoma (secondary sources only) [2]",
        "  - Langerhans cell histiocytosis (secondary sources only) [2]",
    ]
    assert [ref.source_id for ref in r.references][:6] == [
        "seed-003", "oncopaedia-bone-metastases", "seekhealthz-skeletal-metastases", "devita-2001", "lacy-1997",
        "imwg-wbldct-2018",
    ]
    assert [(c.name, c.value, c.label, c.points, c.kb_items) for c in r.components] == [
        ("lesion_type", "lytic", "lytic", None, []),
        ("sins_bone_lesion", "lytic", "Lytic", 2, ["sins_points.lesion-lytic"]),
    ]
    # Only the sclerotic pattern points to the CT attenuation cut-offs.
    assert [(n.code, n.kb_items) for n in r.notices] == [
        ("weak_guide", ["primaries.mineralisation_poor_guide"]),
        ("note", ["primaries.lung_by_histology"]),
        ("sources_differ", ["primaries.gastrointestinal_pattern_disagreement"]),
        ("note", ["primaries.pure_lytic_and_hypercalcaemia"]),
        ("sources_differ", ["primaries.myeloma_pattern_disagreement"]),
    ]


def test_mixed_list_and_closing_notes(kb):
    r = likely_primaries({"lesion_type": "mixed"})
    assert r.summary == (
        "mixed pattern: 10 primaries listed by the sources (the pattern is only a weak guide to the primary)")
    assert r.extra_lines() == [
        "  - Breast cancer: also listed as lytic, blastic [1,2]",
        "  - Lung cancer: also listed as lytic [1,2]",
        "  - Gastrointestinal cancers (secondary sources only) [3]",
        "  - Squamous cell cancers (secondary sources only) [3]",
        "  - Lymphoma: also listed as blastic (secondary sources only) [2]",
        "  - Cervical cancer (secondary sources only) [2]",
        "  - Testicular cancer (secondary sources only) [2]",
        "  - Transitional cell (urothelial) carcinoma: also listed as blastic (secondary sources only) [2]",
        "  - Melanoma: also listed as lytic, lytic-expansile (secondary sources only) [2]",
        "  - Neuroblastoma: in children; also listed as blastic (secondary sources only) [2]",
    ]
    # Tracer and treatment notes: each statement with its own references, the two blocks a blank line apart.
    number = {ref.source_id: ref.number for ref in r.references}

    def refs(sid):
        return sorted({number[s] for s in kb.statement(sid).sources})

    assert [(n.statement, n.refs) for n in r.tracer_notes] == [
        ("nm.fdg_lytic_vs_blastic", [1, 6, 7]), ("nm.tracer_choice_by_lesion_type", [1, 7, 8])]
    assert [(n.statement, n.refs) for n in r.treatment_notes] == [
        ("treatment.instability_indication", [1]), ("primaries.treated_lytic_become_sclerotic", [1, 2, 5]),
        ("ct.osteoblastic_flare", [1, 9])]
    assert all(n.refs == refs(n.statement) for n in (*r.tracer_notes, *r.treatment_notes))
    text = kb.statement
    assert r.closing_lines() == [
        "Tracer choice:",
        f"  - {text('nm.fdg_lytic_vs_blastic').text} [1,6,7]",
        f"  - {text('nm.tracer_choice_by_lesion_type').text} [1,7,8]",
        "",
        "Treatment and follow-up:",
        f"  - {text('treatment.instability_indication').text} [1]",
        f"  - {text('primaries.treated_lytic_become_sclerotic').text} [1,2,5]",
        f"  - {text('ct.osteoblastic_flare').text} [1,9]",
    ]


def test_blastic_notices_in_order():
    r = likely_primaries({"lesion_type": "sclerotic"})
    assert [(n.code, n.kb_items) for n in r.notices] == [
        ("weak_guide", ["primaries.mineralisation_poor_guide"]),
        ("note", ["primaries.pure_lytic_and_hypercalcaemia"]),
        ("sources_differ", ["primaries.neuroblastoma_pattern_disagreement"]),
        ("sources_differ", ["primaries.gastrointestinal_pattern_disagreement"]),
        ("note", ["primaries.lung_by_histology"]),
        ("sources_differ", ["primaries.myeloma_pattern_disagreement"]),
        ("differential", ["ddx.bone_island"]),
        ("differential", ["ct.enostosis_thresholds_untreated_only"]),
        ("quantitative", []),
    ]
    assert r.notices[-1].message == (
        "For an untreated sclerotic lesion, measure its mean and maximum CT attenuation (HU) and compare them "
        "with the published bone-island cut-offs in the quantitative interpretation."
    )
    assert [(c.name, c.value, c.points, c.kb_items) for c in r.components] == [
        ("lesion_type", "blastic", None, []), ("sins_bone_lesion", "blastic", 0, ["sins_points.lesion-blastic"])]


def test_lytic_expansile_summary_and_components():
    r = likely_primaries({"lesion_type": "lytic_expansile"})
    assert r.summary == (
        "lytic-expansile pattern: 5 primaries listed by the sources (the pattern is only a weak guide to the primary)")
    assert [(c.name, c.value, c.label, c.points, c.kb_items) for c in r.components] == [
        ("lesion_type", "lytic_expansile", "lytic-expansile", None, []),
        ("sins_bone_lesion", "lytic", "Lytic", 2, ["sins_points.lesion-lytic"]),
    ]
    assert "  lesion_type: lytic_expansile (lytic-expansile)" in r.to_text().splitlines()
    assert [(n.code, n.kb_items) for n in r.notices] == [("weak_guide", ["primaries.mineralisation_poor_guide"])]
    assert r.extra_lines()[3] == "  - Melanoma: also listed as lytic, mixed (secondary sources only) [1]"


def test_insufficient_summary_names_the_patterns():
    r = likely_primaries({"lesion_type": "not assessed"})
    assert r.summary == "insufficient data: give the lesion pattern (lytic, blastic, mixed or lytic_expansile)"
    assert (r.components, r.notices, r.tracer_notes, r.treatment_notes) == ([], [], [], [])


def _entry(primary, note=None, refs=(), verification="verified", also=()):
    return PrimaryEntry(primary=primary, frequency_note=note, also_listed_as=list(also), kb_item="t.r",
                        verification=verification, refs=list(refs))


def test_entry_line_rendering():
    # Rendering rules on entries the packaged table does not (yet) contain: a note that ends in a capital
    # letter loses only its full stop; leading 'A'/'An' are lower-cased after the colon; a line without
    # references carries no empty brackets.
    r = PrimariesResult(status="complete", summary="s", kb_version="v", disclaimer="d", primaries=[
        _entry("Langerhans cell histiocytosis", "Formerly called histiocytosis X."),
        _entry("Breast cancer", "A lytic pattern is usual.", refs=[1, 2]),
        _entry("Thyroid cancer", "An expansile lytic deposit.", verification="secondary", also=["lytic_expansile"]),
    ])
    assert r.extra_lines() == [
        "  - Langerhans cell histiocytosis: Formerly called histiocytosis X",
        "  - Breast cancer: a lytic pattern is usual [1,2]",
        "  - Thyroid cancer: an expansile lytic deposit; also listed as lytic-expansile (secondary sources only)",
    ]
    assert r.closing_lines() == []


def test_differential_notes_shown_once_and_all_kept(kb_copy):
    # A blastic row that already cites the myeloma note in see_also: the note is shown once, and the bone
    # island and enostosis differentials that follow it are still shown.
    path = kb_copy / "tables" / "primaries_by_lesion_type.yaml"
    table = yaml.safe_load(path.read_text())
    next(r for r in table["rows"] if r["id"] == "blastic-prostate")["see_also"].append(
        "primaries.myeloma_pattern_disagreement")
    path.write_text(yaml.safe_dump(table, sort_keys=False, allow_unicode=True))
    r = likely_primaries({"lesion_type": "blastic"}, load_kb(kb_copy))
    items = [i for n in r.notices for i in n.kb_items]
    assert items.count("primaries.myeloma_pattern_disagreement") == 1
    assert items[-2:] == ["ddx.bone_island", "ct.enostosis_thresholds_untreated_only"]


def test_row_notes_reach_the_entry(kb):
    """Regression: the table rows' notes were dropped (read as an extra column instead of the declared field)."""
    r = likely_primaries({"lesion_type": "lytic"})
    notes = {p.primary: p.note for p in r.primaries}
    assert notes["Colon cancer"] == kb.table("primaries_by_lesion_type").row("lytic-colon").note
    assert notes["Multiple myeloma"].startswith("A 2023 spine imaging review names myeloma among the commonest")
    assert notes["Breast cancer"] is None
