"""NOMS framing (Laufer 2013; Bilsky NOMS review 2010; Patchell 2005; seed 003; noms_framing and radiosensitivity
tables): each branch, the unfit patient, myelopathy in solid tumours, classifications by source, certain ESCC;
worked examples asserted in full and a revised knowledge-base copy (mutation testing: accepted equivalent mutants in
tests/data/mutation_equivalent/scores_noms.json)."""

from __future__ import annotations

import re

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from spinemets import noms
from spinemets.errors import InvalidInputError, SpinemetsError
from spinemets.scores.escc import EsccResult
from spinemets.knowledge.loader import load_kb
from spinemets.scores import noms as noms_module
from spinemets.scores.escc import escc
from spinemets.scores.noms import histology_row, input_label, known_histologies, views_differ
from spinemets.scores.sins import sins
from tests.support import from_kb

STABLE = 4      # SINS 0-6
POTENTIAL = 9   # SINS 7-12
UNSTABLE = 14   # SINS 13-18


@pytest.mark.parametrize(
    "grade,histology,total,treatment",
    [
        ("1a", "lymphoma", STABLE, ["cebrt"]),                       # low grade, radiosensitive
        ("0", "renal cell carcinoma", STABLE, ["srs"]),               # low grade, radioresistant
        ("3", "multiple myeloma", STABLE, ["cebrt"]),                 # high grade, radiosensitive
        ("2", "melanoma", STABLE, ["separation_surgery_then_srs"]),   # high grade, radioresistant
        ("1b", "seminoma", UNSTABLE, ["stabilisation", "cebrt"]),     # unstable adds stabilisation
        ("3", "RCC", UNSTABLE, ["stabilisation", "separation_surgery_then_srs"]),
        ("1c", "thyroid carcinoma", POTENTIAL, ["surgical_consultation", "srs"]),
    ],
)
def test_branches(grade, histology, total, treatment):
    r = noms({"escc_grade": grade, "histology": histology, "sins_total": total, "fit_for_surgery": True})
    assert r.status == "complete"
    assert r.treatment == treatment
    assert len(r.framing) == len(treatment)
    assert "laufer-2013" in [ref.source_id for ref in r.references]


def test_unfit_for_surgery_replaces_separation_surgery():
    r = noms({"escc_grade": "3", "histology": "melanoma", "sins_total": STABLE, "fit_for_surgery": False})
    assert r.treatment == ["srs", "surgery_not_offered"]  # the radiation a radioresistant tumour needs, no surgery
    assert r.systemic == "unfit for surgery"


def test_fitness_not_needed_when_no_surgery_in_framing():
    r = noms({"escc_grade": "1a", "histology": "lymphoma", "sins_total": STABLE})
    assert r.status == "complete" and r.treatment == ["cebrt"]


def test_fitness_missing_when_surgery_in_framing():
    r = noms({"escc_grade": "2", "histology": "melanoma", "sins_total": STABLE})
    assert r.status == "insufficient_data"
    assert r.missing == ["noms.fit_for_surgery"]
    assert r.treatment == ["separation_surgery_then_srs"]  # the framing if fit
    # The headline names the gap in clinical words and gives both branches, never a field path.
    assert "noms." not in r.summary and "fit_for_surgery" not in r.summary
    assert "missing fitness for surgery" in r.summary
    fit, unfit = r.summary.split("; if fit for surgery: ")[1].split(" If not: ")
    assert fit.startswith("Separation surgery") and unfit.startswith("Stereotactic radiosurgery")


def test_unknown_histology_is_insufficient_data():
    r = noms({"escc_grade": "2", "histology": "xyzoma", "sins_total": STABLE, "fit_for_surgery": True})
    assert r.status == "insufficient_data"
    assert "noms.histology" in r.missing
    onc = next(c for c in r.components if c.name == "oncologic")
    assert "not in the radiosensitivity table" in onc.note and "renal cell carcinoma" in onc.note


def test_everything_missing():
    r = noms({})
    assert r.missing == ["noms.escc_grade", "noms.histology", "noms.sins_total"]
    assert r.treatment == []


def test_draft_histology_is_flagged():
    r = noms({"escc_grade": "1a", "histology": "breast cancer", "sins_total": STABLE})
    assert r.histology_response == "radiosensitive"
    assert "radiosensitivity.breast" in r.draft_items
    assert "DRAFT" in r.to_text()


def test_from_escc_findings_and_sins_components():
    r = noms({
        "escc": {"cord_compressed": True, "csf_visible": False},
        "sins": {"level": "T12", "pain": "mechanical", "lesion": "lytic", "alignment": "normal",
                 "collapse": "gt50", "posterolateral": "bilateral"},
        "histology": "renal cell carcinoma", "fit_for_surgery": True,
    })
    assert (r.escc_grade, r.sins_total, r.mechanical) == ("3", 14, "unstable")
    assert r.treatment == ["stabilisation", "separation_surgery_then_srs"]


def test_sins_partial_but_category_certain():
    r = noms({"escc_grade": "0", "histology": "lymphoma", "fit_for_surgery": True,
              "sins": {"level": "C1", "lesion": "lytic", "alignment": "subluxation", "collapse": "gt50", "posterolateral": "bilateral"}})
    assert r.mechanical == "unstable" and r.sins_total is None
    mech = next(c for c in r.components if c.name == "mechanical")
    assert (mech.value, mech.label, mech.kb_items) == ("SINS range", "unstable", ["noms_framing.mechanical-unstable"])


def test_sins_partial_uncertain_names_missing():
    r = noms({"escc_grade": "0", "histology": "lymphoma", "sins": {"level": "T6"}})
    # each open component, and not the total as well: the components were given
    assert r.missing == ["noms.sins.pain", "noms.sins.lesion", "noms.sins.alignment", "noms.sins.collapse",
                         "noms.sins.posterolateral"]
    assert r.summary == ("insufficient data for a full NOMS framing: missing SINS pain, SINS lesion, SINS alignment, "
                         "SINS collapse, SINS posterolateral; what holds already: "
                         + _framing("low-radiosensitive"))


@pytest.mark.parametrize(
    "data,message",
    [
        ({"sins_total": 19}, "noms.sins_total: input should be less than or equal to 18 (got 19)"),
        ({"escc_grade": "5"}, "noms.escc_grade: '5' is not an ESCC grade; allowed values: 0, 1a, 1b, 1c, 2, 3"),
        ({"fit_for_surgery": "maybe"}, "noms.fit_for_surgery: input should be a valid boolean, unable to interpret input (got 'maybe')"),
    ],
)
def test_invalid(data, message):
    with pytest.raises(InvalidInputError) as exc:
        noms(data)
    assert str(exc.value) == message


def test_escc_grade_validated_in_noms():
    with pytest.raises(SpinemetsError):
        noms({"escc_grade": "1"})


# --- clinical review 2026-12: unfit patients, myelopathy, radiosensitivity by source, certain ESCC --------------

ID_OR_PATH = re.compile(r"noms\.|escc\.|sins\.|radiosensitivity\.|noms_framing|[a-z]_[a-z]")


def histologies(kb, patchell_excluded: bool) -> list[str]:
    """The histologies of the radiosensitivity table that the Patchell trial excluded (or took in)."""
    return sorted(str(r["histology"]) for r in kb.table("radiosensitivity").rows
                  if r["patchell_excluded"] is patchell_excluded)


@pytest.fixture(scope="module")
def surgical(kb) -> set[str]:
    """The treatments of the framing table that are an operation."""
    return {r["treatment"] for r in kb.table("noms_framing").rows if r.get("needs_surgery")} | {"surgical_consultation"}


@pytest.fixture(scope="module")
def rarely_needed(kb) -> str:
    """The framing of a radiosensitive tumour (surgery rarely needed)."""
    return kb.table("noms_framing").row("high-radiosensitive")["framing"]


@pytest.fixture(scope="module")
def not_offered(kb) -> str:
    """The framing that says why surgery is not offered to an unfit patient."""
    return kb.table("noms_framing").row("systemic-unfit")["framing"]


def _options(summary: str) -> str:
    """The part of the headline that lists options (after the missing-data preamble, if any)."""
    for lead in ("; what holds already: ", "; if fit for surgery: "):
        if lead in summary:
            return summary.split(lead, 1)[1]
    return summary


def _patchell(r) -> list:
    return [n for n in r.notices if n.code == "patchell_trial" and "patchell-2005" in n.sources]


# 1. An unfit patient never sees surgery as the first option, and is told why surgery is not offered.

@pytest.mark.parametrize(
    "grade,histology,total,first",
    [
        ("3", "melanoma", UNSTABLE, "srs"),            # was: stabilisation, then separation surgery
        ("2", "renal cell carcinoma", POTENTIAL, "srs"),  # was: surgical consultation first
        ("3", "lymphoma", UNSTABLE, "cebrt"),
        ("3", "xyzoma", UNSTABLE, "radiotherapy_without_surgery"),  # radiation type unknown, still no surgery
    ],
)
def test_unfit_patient_leads_with_non_surgical_option(surgical, not_offered, grade, histology, total, first):
    r = noms({"escc_grade": grade, "histology": histology, "sins_total": total, "fit_for_surgery": False})
    assert r.treatment[0] == first and r.treatment[0] not in surgical
    assert _options(r.summary).startswith(r.framing[0])
    assert not _options(r.summary).startswith(("Separation surgery", "Mechanical instability", "Potential instability (SINS"))
    assert not_offered in r.summary and r.treatment[-1] == "surgery_not_offered"
    if total == UNSTABLE:  # the framework's alternative for instability without an operation
        assert "cement_augmentation" in r.treatment
        assert "bilsky-noms-2010" in [ref.source_id for ref in r.references]


def test_unfit_patient_with_missing_data_still_leads_without_surgery():
    r = noms({"histology": "melanoma", "sins_total": UNSTABLE, "fit_for_surgery": False})
    assert r.missing == ["noms.escc_grade"]
    assert _options(r.summary).startswith("Stereotactic radiosurgery")


# 2. Myelopathy is used: a solid tumour with high-grade compression and myelopathy carries the Patchell trial.

def test_breast_high_grade_myelopathy_shows_both_positions(rarely_needed):
    r = noms({"escc_grade": "3", "histology": "breast cancer", "sins_total": STABLE, "myelopathy": True,
              "fit_for_surgery": True})
    assert r.status == "complete"
    assert "rarely needed" not in r.summary and rarely_needed not in r.framing  # was the whole framing
    assert r.treatment == ["cebrt_or_decompression_then_rt"]
    assert "NOMS review" in r.summary and "Patchell 2005" in r.summary  # both positions in the headline
    assert _patchell(r)
    cited = [ref.source_id for ref in r.references]
    assert {"bilsky-noms-2010", "patchell-2005"} <= set(cited)
    assert r.solid_tumour is True


def test_breast_high_grade_myelopathy_needs_fitness():
    r = noms({"escc_grade": "2", "histology": "breast", "sins_total": STABLE, "myelopathy": True})
    assert r.missing == ["noms.fit_for_surgery"]  # one of the two positions is an operation


def test_breast_high_grade_myelopathy_unstated_is_named():
    r = noms({"escc_grade": "3", "histology": "breast cancer", "sins_total": STABLE, "fit_for_surgery": True})
    assert r.status == "insufficient_data" and r.missing == ["noms.myelopathy"]
    assert "missing whether there is myelopathy" in r.summary
    assert "rarely needed" not in r.summary
    assert [c.model_dump(include={"name", "value", "note", "kb_items"}) for c in r.components][1] == {
        "name": "myelopathy", "value": None, "note": None, "kb_items": []}
    notice = next(n for n in r.notices if n.code == "myelopathy_missing")
    assert "could change the advice" in notice.message and "patchell-2005" in notice.sources
    assert _patchell(r)


def test_breast_high_grade_without_myelopathy_keeps_noms_framing(rarely_needed):
    r = noms({"escc_grade": "3", "histology": "breast cancer", "sins_total": STABLE, "myelopathy": False,
              "fit_for_surgery": True})
    assert r.status == "complete" and r.framing == [rarely_needed] and not _patchell(r)


def test_myelopathy_unstated_matters_not_for_an_unfit_patient():
    r = noms({"escc_grade": "3", "histology": "prostate", "sins_total": STABLE, "fit_for_surgery": False})
    assert r.status == "complete" and r.treatment == ["cebrt", "surgery_not_offered"]


@pytest.mark.parametrize("histology", ["lymphoma", "multiple myeloma", "leukaemia", "seminoma"])
def test_haematological_and_germ_cell_keep_radiotherapy_whatever_the_myelopathy(rarely_needed, histology):
    r = noms({"escc_grade": "3", "histology": histology, "sins_total": STABLE, "myelopathy": True})
    assert r.status == "complete" and r.framing == [rarely_needed]  # Patchell excluded these tumours
    assert not _patchell(r) and r.solid_tumour is False


def test_radioresistant_high_grade_myelopathy_unstated_is_certain():
    r = noms({"escc_grade": "3", "histology": "renal cell carcinoma", "sins_total": POTENTIAL, "fit_for_surgery": True})
    assert r.status == "complete"  # surgery then radiosurgery whether or not there is myelopathy
    myelo = next(c for c in r.components if c.name == "myelopathy")
    assert myelo.value is None and "would not change" in myelo.note


# 3. Radiosensitivity: each classification with its source; differences are shown; no guessed class.

def test_breast_sources_differ_each_view_with_its_source():
    r = noms({"escc_grade": "1a", "histology": "breast cancer", "sins_total": STABLE})
    differ = [n for n in r.notices if n.code == "sources_differ"]
    assert [n.sources[:1] for n in differ] == [["laufer-2013"], ["maranzano-1995"], ["ao-radiosensitivity"]]
    assert all(n.refs for n in differ)
    assert "patchell-2005" in differ[2].sources and "rades-oligometastases" in differ[1].sources
    assert all(n.message.startswith("Sources differ on whether breast carcinoma") for n in differ)


@pytest.mark.parametrize("histology", ["prostate cancer", "colorectal carcinoma", "ovarian carcinoma"])
def test_other_disagreements_are_shown(histology):
    r = noms({"escc_grade": "1a", "histology": histology, "sins_total": STABLE})
    assert len([n for n in r.notices if n.code == "sources_differ"]) >= 2


@pytest.mark.parametrize("histology", ["lymphoma", "melanoma", "renal cell carcinoma", "multiple myeloma"])
def test_agreeing_sources_show_no_disagreement(histology):
    r = noms({"escc_grade": "1a", "histology": histology, "sins_total": STABLE})
    assert not [n for n in r.notices if n.code == "sources_differ"]


@pytest.mark.parametrize("histology", ["small-cell lung cancer", "SCLC", "small cell"])
def test_small_cell_is_recognised_but_never_classed(histology):
    r = noms({"escc_grade": "1a", "histology": histology, "sins_total": STABLE, "fit_for_surgery": True})
    assert r.status == "insufficient_data" and r.missing == ["noms.histology"]
    assert r.histology_response == "unclassified" and r.oncologic is None and r.treatment == []
    onc = next(c for c in r.components if c.name == "oncologic")
    assert "no source" in onc.note and onc.refs
    assert "missing histology with a known radiation response" in r.summary


@pytest.mark.parametrize(
    "spelling,row_id",
    [
        ("SCLC", "sclc"), ("small cell", "sclc"), ("Small-cell lung cancer", "sclc"),
        ("RCC", "renal-cell"), ("kidney", "renal-cell"), ("plasma cell", "myeloma"), ("myeloma", "myeloma"),
        ("plasmacytoma", "plasmacytoma"), ("NSCLC", "nsclc"), ("non-small cell", "nsclc"), ("seminoma", "seminoma"),
        ("germ cell tumour", "germ-cell"), ("leukemia", "leukaemia"), ("carcinoid", "neuroendocrine"),
        ("ovarian cancer", "ovarian"), ("HCC", "hepatocellular"), ("osteosarcoma", "sarcoma"),
        ("colon cancer", "colorectal"), ("thyroid", "thyroid"), ("malignant melanoma", "melanoma"),
        ("renal_cell_carcinoma", "renal-cell"), ("  Non_Small-Cell  LUNG cancer ", "nsclc"),
    ],
)
def test_histology_synonyms(spelling, row_id):
    assert histology_row(spelling).id == row_id


def test_plasmacytoma_is_a_draft_by_analogy():
    r = noms({"escc_grade": "1a", "histology": "plasmacytoma", "sins_total": STABLE})
    assert r.histology_response == "radiosensitive" and "radiosensitivity.plasmacytoma" in r.draft_items


def test_radiosensitivity_table_stores_every_classification_with_its_source(kb):
    radio = kb.table("radiosensitivity")
    classes = {r["response"] for r in kb.table("noms_framing").rows if r.get("axis") == "oncologic_class"}
    for row in radio.rows:
        assert row["response"] in classes | {"unclassified"}, row.id
        assert isinstance(row["patchell_excluded"], bool), row.id
        assert row["response"] == "unclassified" or row["views"], row.id
        for view in row["views"]:
            assert view["response"] in classes | {"not_radiosensitive"}, row.id
            assert view["statement"] and view["verification"] in ("verified", "secondary", "unverified"), row.id
            assert view["sources"] and all(s in kb.sources for s in view["sources"]), row.id
        if views_differ(row):
            assert row["disagreement"].startswith("Sources differ"), row.id
        if row["views"] and all(v["verification"] == "unverified" for v in row["views"]):
            assert row.is_draft, row.id  # resting only on the unconfirmed Laufer list
    assert histologies(kb, patchell_excluded=True) == ["germ-cell tumour", "leukaemia", "lymphoma", "multiple myeloma", "plasmacytoma", "seminoma"]
    for rid in ("breast", "prostate"):  # favourable in Maranzano, absent from the Patchell and AO lists
        views = radio.row(rid)["views"]
        assert any("maranzano-1995" in v["sources"] and v["verification"] == "verified" for v in views)
        assert any(v["response"] == "not_radiosensitive" and "patchell-2005" in v["sources"] for v in views)
        assert radio.row(rid).is_draft


# 4. A certain ESCC severity is used like a certain SINS category.

def _escc_result(kb, possible: list[str], missing: tuple[str, ...] = ("escc.csf_visible",)) -> EsccResult:
    """An insufficient ESCC result as another version of escc() might return it (no high_grade set)."""
    return EsccResult(status="insufficient_data", summary="insufficient data", missing=list(missing),
                      possible_grades=possible, kb_version=kb.version, disclaimer=kb.manifest.disclaimer)


def test_high_grade_either_way():
    r = noms({"escc": {"cord_compressed": True}, "histology": "melanoma", "sins_total": STABLE, "fit_for_surgery": True})
    assert r.status == "complete" and r.missing == []  # was: missing the CSF finding
    assert r.neurologic == "high-grade ESCC" and r.escc_grade is None
    assert r.treatment == ["separation_surgery_then_srs"]
    neuro = r.components[0]
    assert neuro.value == "ESCC 2 or 3" and neuro.note.startswith("High grade either way")


@pytest.mark.parametrize(
    "possible,severity,treatment",
    [(["2", "3"], "high", ["separation_surgery_then_srs"]), (["0", "1a", "1b"], "low", ["srs"])],
)
def test_certain_severity_from_possible_grades_alone(kb, possible, severity, treatment):
    r = noms({"escc": {"epidural_disease": True}, "histology": "melanoma", "sins_total": STABLE, "fit_for_surgery": True},
             escc_result=_escc_result(kb, possible))
    assert r.status == "complete" and r.neurologic == f"{severity}-grade ESCC" and r.treatment == treatment
    assert r.components[0].note.lower().startswith(f"{severity} grade either way")


def test_uncertain_severity_names_the_finding(kb):
    r = noms({"escc": {"epidural_disease": True}, "histology": "melanoma", "sins_total": STABLE, "fit_for_surgery": True},
             escc_result=_escc_result(kb, ["1c", "2", "3"]))
    assert r.status == "insufficient_data" and r.missing == ["noms.escc.csf_visible"]
    assert "ESCC finding: CSF visible around the cord" in r.summary and r.neurologic is None
    assert r.components[0].note == "ESCC not known: missing ESCC finding: CSF visible around the cord; grade could be 1c, 2, 3"


def test_uncertain_severity_names_every_open_finding(kb):
    r = noms({"escc": {"epidural_disease": True}, "histology": "melanoma", "sins_total": STABLE, "fit_for_surgery": True},
             escc_result=_escc_result(kb, ["1b", "1c", "2", "3"], ("escc.cord_abutted", "escc.csf_visible")))
    assert r.missing == ["noms.escc.cord_abutted", "noms.escc.csf_visible"]
    assert r.components[0].note == ("ESCC not known: missing ESCC finding: spinal cord abutted, "
                                    "ESCC finding: CSF visible around the cord; grade could be 1b, 1c, 2, 3")
    assert r.summary == ("insufficient data for a full NOMS framing: missing ESCC finding: spinal cord abutted, "
                         "ESCC finding: CSF visible around the cord")


# Words, not ids: the headline and the notices never show a field path or an item id.

@pytest.mark.parametrize(
    "path,label",
    [
        ("noms.fit_for_surgery", "fitness for surgery"), ("noms.myelopathy", "whether there is myelopathy"),
        ("noms.escc.csf_visible", "ESCC finding: CSF visible around the cord"), ("noms.sins.pain", "SINS pain"),
        ("noms.escc.grade or noms.escc.epidural_disease", "ESCC grade (or its findings)"),
        ("noms.sins.level or noms.sins.location", "SINS level"), ("noms.sins_total", "SINS (total or components)"),
        ("noms.histology", "histology with a known radiation response"), ("noms.escc_grade", "ESCC grade (or its findings)"),
        # a field no table names is still shown in words, under its instrument
        ("noms.escc.new_finding", "ESCC new finding"), ("noms.sins.new_component", "SINS new component"),
        ("noms.new_field", "new field"), ("noms.other.some_field", "some field"),
        ("noms.other.fit_for_surgery", "fitness for surgery"),
    ],
)
def test_input_labels(path, label):
    assert input_label(path) == label


def test_invalid_myelopathy():
    with pytest.raises(InvalidInputError) as exc:
        noms({"myelopathy": "maybe"})
    assert str(exc.value) == "noms.myelopathy: input should be a valid boolean, unable to interpret input (got 'maybe')"


# Properties.

HISTOLOGIES = st.one_of(st.none(), from_kb(lambda kb: st.sampled_from(sorted(
    h for r in kb.table("radiosensitivity").rows for h in [r["histology"], *r["aliases"]]))), st.just("xyzoma"))
GRADES = st.one_of(st.none(), st.sampled_from(["0", "1a", "1b", "1c", "2", "3"]))
TOTALS = st.one_of(st.none(), st.integers(0, 18))
TRISTATE = st.one_of(st.none(), st.booleans())


def _case(grade, histology, total, myelopathy, fit) -> dict:
    data = {"escc_grade": grade, "histology": histology, "sins_total": total, "myelopathy": myelopathy,
            "fit_for_surgery": fit}
    return {k: v for k, v in data.items() if v is not None}


@settings(max_examples=300, deadline=None)
@given(GRADES, HISTOLOGIES, TOTALS, TRISTATE)
def test_property_unfit_never_first_surgical(kb, surgical, not_offered, grade, histology, total, myelopathy):
    r = noms(_case(grade, histology, total, myelopathy, False))
    assert r.treatment and r.treatment[0] not in surgical
    assert _options(r.summary).startswith(r.framing[0])
    first_rows = [row for row in kb.table("noms_framing").rows if row.get("framing") == r.framing[0]]
    assert first_rows and not any(row.get("needs_surgery") for row in first_rows)
    assert not_offered in r.summary


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["2", "3"]), from_kb(lambda kb: st.sampled_from(histologies(kb, patchell_excluded=False))),
       TOTALS, TRISTATE)
def test_property_solid_high_grade_myelopathy_always_carries_patchell(rarely_needed, grade, histology, total, fit):
    r = noms(_case(grade, histology, total, True, fit))
    assert _patchell(r)
    assert rarely_needed not in r.framing and "rarely needed" not in r.summary


@settings(max_examples=300, deadline=None)
@given(GRADES, HISTOLOGIES, TOTALS, TRISTATE, TRISTATE)
def test_property_no_ids_in_words(grade, histology, total, myelopathy, fit):
    r = noms(_case(grade, histology, total, myelopathy, fit))
    for text in [r.summary, *(n.message for n in r.notices)]:
        assert not ID_OR_PATH.search(text), text


# --- Whole results of worked examples: every component as a clinician reads it, with what it cites -------------

def _framing(*row_ids: str) -> str:
    """The framing rows of the NOMS table, in words, as the headline joins them."""
    table = load_kb().table("noms_framing")
    return " ".join(table.row(row_id)["framing"] for row_id in row_ids)


def _part(name: str, value: str | None = None, label: str | None = None, note: str | None = None,
          items: tuple[str, ...] = ()) -> dict:
    """A component as expected: its words, and the knowledge-base items behind it with their sources."""
    kb = load_kb()
    sources = list(dict.fromkeys(s for item in items for s in kb.find(item).sources))
    return {"name": name, "value": value, "label": label, "points": None, "note": note, "kb_items": list(items),
            "sources": sources}


def _parts(r) -> list[dict]:
    """The components of a result, each checked to carry the reference numbers of exactly its sources."""
    numbers = {ref.source_id: ref.number for ref in r.references}
    for c in [*r.components, *r.notices]:
        assert c.refs == sorted({numbers[s] for s in c.sources}), c
    return [c.model_dump(exclude={"refs"}) for c in r.components]


HIGH = "high-grade epidural compression"
LOW = "low-grade epidural compression"
NOT_GIVEN = [_part("neurologic", note="ESCC grade not given"), _part("oncologic", note="histology not given"),
             _part("mechanical", note="SINS not known"), _part("systemic", note="fitness for surgery not given")]


def test_nothing_given_is_named_part_by_part():
    r = noms({})
    assert _parts(r) == NOT_GIVEN
    assert r.summary == ("insufficient data for a full NOMS framing: missing ESCC grade (or its findings), "
                         "histology with a known radiation response, SINS (total or components)")
    assert (r.neurologic, r.oncologic, r.mechanical, r.systemic, r.solid_tumour) == (None, None, None, None, None)


def test_fit_patient_radioresistant_high_grade_unstable_worked_example():
    # Laufer 2013: high-grade ESCC from a radioresistant tumour -> separation surgery then SRS; SINS 13-18 ->
    # stabilisation first.  Myelopathy stated (yes), so no myelopathy row; melanoma is a Patchell solid tumour.
    r = noms({"escc_grade": "3", "histology": "melanoma", "sins_total": UNSTABLE, "myelopathy": True,
              "fit_for_surgery": True})
    assert _parts(r) == [
        _part("neurologic", "ESCC 3", HIGH, items=("escc_grades.g3",)),
        _part("myelopathy", "yes"),
        _part("oncologic", "melanoma", "radioresistant", _framing("class-radioresistant"),
              ("radiosensitivity.melanoma", "noms_framing.class-radioresistant")),
        _part("mechanical", f"SINS {UNSTABLE}", "unstable", _framing("mechanical-unstable"),
              ("noms_framing.mechanical-unstable",)),
        _part("systemic", "fit for surgery"),
    ]
    assert r.status == "complete" and r.summary == _framing("mechanical-unstable", "high-radioresistant")
    assert r.framing == [_framing("mechanical-unstable"), _framing("high-radioresistant")]
    assert (r.neurologic, r.escc_grade, r.oncologic, r.histology_response, r.solid_tumour) == (
        "high-grade ESCC", "3", "radioresistant", "radioresistant", True)
    assert (r.mechanical, r.sins_total, r.systemic) == ("unstable", UNSTABLE, "fit for surgery")
    assert [n.code for n in r.notices] == ["patchell_trial"]


def test_unfit_patient_worked_example():
    # Cannot tolerate surgery: the radiation for a radioresistant tumour, cement augmentation for the unstable
    # spine, then why surgery is not offered.  Myelopathy stated (no).
    r = noms({"escc_grade": "3", "histology": "melanoma", "sins_total": UNSTABLE, "myelopathy": False,
              "fit_for_surgery": False})
    assert _parts(r) == [
        _part("neurologic", "ESCC 3", HIGH, items=("escc_grades.g3",)),
        _part("myelopathy", "no"),
        _part("oncologic", "melanoma", "radioresistant", _framing("class-radioresistant"),
              ("radiosensitivity.melanoma", "noms_framing.class-radioresistant")),
        _part("mechanical", f"SINS {UNSTABLE}", "unstable", _framing("mechanical-unstable"),
              ("noms_framing.mechanical-unstable",)),
        _part("systemic", "unfit for surgery", items=("noms_framing.systemic-unfit",)),
    ]
    plan = ("unfit-radiation-radioresistant", "unfit-mechanical-unstable", "systemic-unfit")
    assert r.status == "complete" and r.summary == _framing(*plan)
    assert r.treatment == ["srs", "cement_augmentation", "surgery_not_offered"]
    assert (r.systemic, r.oncologic) == ("unfit for surgery", "radioresistant")


def test_unfit_patient_with_two_options_worked_example():
    r = noms({"escc_grade": "1a", "histology": "lymphoma", "sins_total": STABLE, "fit_for_surgery": False})
    assert _parts(r)[-1] == _part("systemic", "unfit for surgery", items=("noms_framing.systemic-unfit",))
    assert r.summary == _framing("unfit-radiation-radiosensitive", "systemic-unfit")


def test_fitness_open_gives_both_plans_in_full():
    r = noms({"escc_grade": "2", "histology": "melanoma", "sins_total": UNSTABLE})
    assert r.missing == ["noms.fit_for_surgery"] and r.systemic is None
    assert _parts(r) == [
        _part("neurologic", "ESCC 2", HIGH, items=("escc_grades.g2",)),
        _part("myelopathy", note=_framing("myelopathy-either-way"), items=("noms_framing.myelopathy-either-way",)),
        _part("oncologic", "melanoma", "radioresistant", _framing("class-radioresistant"),
              ("radiosensitivity.melanoma", "noms_framing.class-radioresistant")),
        _part("mechanical", f"SINS {UNSTABLE}", "unstable", _framing("mechanical-unstable"),
              ("noms_framing.mechanical-unstable",)),
        _part("systemic", note="fitness for surgery not given"),
    ]
    assert r.summary == (
        "insufficient data for a full NOMS framing: missing fitness for surgery; if fit for surgery: "
        + _framing("mechanical-unstable", "high-radioresistant") + " If not: "
        + _framing("unfit-radiation-radioresistant", "unfit-mechanical-unstable", "systemic-unfit"))


def test_what_holds_already_is_given_in_full():
    r = noms({"histology": "melanoma", "sins_total": UNSTABLE, "fit_for_surgery": False})
    assert r.summary == (
        "insufficient data for a full NOMS framing: missing ESCC grade (or its findings); what holds already: "
        + _framing("unfit-radiation-radioresistant", "unfit-mechanical-unstable", "systemic-unfit"))


def test_potentially_unstable_worked_example():
    r = noms({"escc_grade": "3", "histology": "renal cell carcinoma", "sins_total": POTENTIAL, "fit_for_surgery": True})
    assert _parts(r)[3] == _part("mechanical", f"SINS {POTENTIAL}", "potentially unstable",
                                 _framing("mechanical-potentially_unstable"),
                                 ("noms_framing.mechanical-potentially_unstable",))
    assert r.summary == _framing("mechanical-potentially_unstable", "high-radioresistant")


@pytest.mark.parametrize(
    "data",
    [
        {"escc_grade": "1a", "histology": "lymphoma", "sins_total": STABLE},   # low grade: myelopathy is not asked
        {"escc_grade": "3", "sins_total": STABLE, "fit_for_surgery": True},    # high grade, histology open
    ],
)
def test_no_myelopathy_part_where_it_is_not_in_question(data):
    r = noms(data)
    assert [c.name for c in r.components] == ["neurologic", "oncologic", "mechanical", "systemic"]


def test_certain_severity_part_in_full():
    r = noms({"escc": {"cord_compressed": True}, "histology": "melanoma", "sins_total": STABLE, "fit_for_surgery": True})
    assert _parts(r)[0] == _part("neurologic", "ESCC 2 or 3", HIGH, _framing("escc-high-either-way"),
                                 ("noms_framing.escc-high-either-way", "escc_grades.g2", "escc_grades.g3"))
    r = noms({"escc": {"cord_abutted": False}, "histology": "melanoma", "sins_total": STABLE, "fit_for_surgery": True})
    assert _parts(r)[0] == _part("neurologic", "ESCC 0 or 1a or 1b", LOW, _framing("escc-low-either-way"),
                                 ("noms_framing.escc-low-either-way", "escc_grades.g0", "escc_grades.g1a",
                                  "escc_grades.g1b"))
    assert r.summary == _framing("low-radioresistant")


def test_uncertain_grade_part_in_full():
    r = noms({"escc": {"epidural_disease": True}, "histology": "nsclc", "sins_total": STABLE, "fit_for_surgery": True})
    assert _parts(r)[:2] == [
        _part("neurologic", note="ESCC not known: missing ESCC finding: thecal sac deformed; grade could be 1a, 1b, 1c, 2, 3"),
        _part("oncologic", "nsclc", "moderately radioresistant", _framing("class-moderately_radioresistant"),
              ("radiosensitivity.nsclc", "noms_framing.class-moderately_radioresistant")),
    ]
    assert r.summary == "insufficient data for a full NOMS framing: missing ESCC finding: thecal sac deformed"


def test_oncologic_part_for_unclassified_and_unknown_histology(kb):
    r = noms({"escc_grade": "1a", "histology": "sclc", "sins_total": STABLE})
    sclc = kb.table("radiosensitivity").row("sclc")
    assert _parts(r)[1] == _part("oncologic", "sclc", "unclassified", sclc.note, ("radiosensitivity.sclc",))
    known = sorted(str(row["histology"]) for row in kb.table("radiosensitivity").rows)
    assert known_histologies() == known_histologies(kb) == known and "melanoma" in known
    r = noms({"escc_grade": "1a", "histology": "xyzoma", "sins_total": STABLE})
    assert _parts(r)[1] == _part(
        "oncologic", "xyzoma",
        note="histology not in the radiosensitivity table: radiation response unknown; known: " + ", ".join(known))


def test_framing_table_lookup_fails_loudly(kb):
    with pytest.raises(LookupError) as exc:
        noms_module._framing_row(kb, axis="no_such_axis")
    assert str(exc.value) == "noms_framing has 0 rows for {'axis': 'no_such_axis'}"


def test_results_given_by_the_caller_are_not_scored_again(kb, monkeypatch):
    data = {"escc": {"cord_compressed": True, "csf_visible": False}, "histology": "melanoma", "fit_for_surgery": True,
            "sins": {"level": "T12", "pain": "mechanical", "lesion": "lytic", "alignment": "normal", "collapse": "gt50",
                     "posterolateral": "bilateral"}}
    expected = noms(data)
    given = {"escc_result": escc(data["escc"]), "sins_result": sins(data["sins"])}

    def scored_again(*args, **kwargs):
        raise AssertionError("scored again")

    monkeypatch.setattr(noms_module, "escc", scored_again)
    monkeypatch.setattr(noms_module, "sins", scored_again)
    assert noms(data, **given) == expected


# --- A knowledge base that differs from the packaged one is followed throughout --------------------------------

def _edit(path, change) -> None:
    table = yaml.safe_load(path.read_text())
    change(table)
    path.write_text(yaml.safe_dump(table, sort_keys=False))


def _row(table: dict, row_id: str) -> dict:
    return next(r for r in table["rows"] if r["id"] == row_id)


def _revise_framing(table: dict) -> None:
    _row(table, "escc-high-either-way")["review_status"] = "draft"
    _row(table, "escc-high-either-way")["sources"].append("laufer-2013")
    _row(table, "class-radioresistant")["review_status"] = "draft"
    _row(table, "high-radioresistant")["review_status"] = "draft"
    _row(table, "unfit-radiation-radioresistant")["fit_for_surgery"] = False
    text = "A revised row of this knowledge-base copy."
    table["rows"] += [
        {"id": "myelopathy-solid-radioresistant", "axis": "myelopathy_solid", "escc": "high", "oncologic": "radioresistant",
         "treatment": "revised", "framing": text, "needs_surgery": True, "sources": ["patchell-2005"]},
        {"id": "myelopathy-solid-low", "axis": "myelopathy_solid", "escc": "low", "oncologic": "radiosensitive",
         "treatment": "revised", "framing": text, "needs_surgery": False, "sources": ["patchell-2005"]},
        {"id": "systemic-fit", "axis": "systemic", "fit_for_surgery": True, "treatment": "revised", "framing": text,
         "needs_surgery": False, "sources": ["laufer-2013"]},
    ]


def _revise_radiosensitivity(table: dict) -> None:
    sclc = _row(table, "sclc")
    sclc["response"] = "radiosensitive"
    sclc["views"] = [{"response": "radiosensitive", "statement": "A revised classification.",
                      "sources": ["ao-radiosensitivity"], "verification": "unverified"}]
    _row(table, "prostate")["response"] = "not_radiosensitive"  # a response the framing table has no class for
    table["rows"].append({"id": "mesothelioma", "histology": "mesothelioma", "aliases": [], "response": "radioresistant",
                          "patchell_excluded": False, "views": [], "sources": ["laufer-2013"],
                          "verification": "unverified", "review_status": "draft"})


def _revise_escc(table: dict) -> None:
    _row(table, "g1a")["findings"]["csf_visible"] = False  # 'no CSF visible' no longer means grade 3 alone
    _row(table, "g3")["review_status"] = "draft"


def test_noms_follows_the_knowledge_base_it_is_given(kb_copy):
    _edit(kb_copy / "tables" / "noms_framing.yaml", _revise_framing)
    _edit(kb_copy / "tables" / "radiosensitivity.yaml", _revise_radiosensitivity)
    _edit(kb_copy / "tables" / "escc_grades.yaml", _revise_escc)
    _edit(kb_copy / "tables" / "sins_points.yaml", lambda t: _row(t, "pain-mechanical").update(points=1))
    revised = load_kb(kb_copy)
    base = {"sins_total": STABLE, "fit_for_surgery": True}

    # ESCC graded with the revised findings: no CSF visible allows 1a or 3, a low and a high grade
    findings = {"csf_visible": False}
    assert noms({"escc": findings, "histology": "melanoma", **base}).escc_grade == "3"
    r = noms({"escc": findings, "histology": "melanoma", **base}, revised)
    assert (r.escc_grade, r.neurologic, r.status) == (None, None, "insufficient_data")
    assert r.components[0].note.endswith("; grade could be 1a, 3")

    # draft rows are flagged by their ids, and every source of a part is cited
    r = noms({"escc": {"cord_compressed": True}, "histology": "renal cell carcinoma", **base}, revised)
    assert r.draft_items == ["noms_framing.escc-high-either-way", "escc_grades.g3", "noms_framing.class-radioresistant",
                             "noms_framing.high-radioresistant"]
    assert "laufer-2013" in _parts(r)[0]["sources"]

    # the revised radiation response, and the revised list of known histologies
    r = noms({"escc_grade": "1a", "histology": "small cell lung cancer", **base}, revised)
    assert (r.status, r.oncologic, r.treatment) == ("complete", "radiosensitive", ["cebrt"])
    r = noms({"escc_grade": "1a", "histology": "xyzoma", **base}, revised)
    assert r.components[1].note.endswith(", ".join(sorted(str(row["histology"])
                                                          for row in revised.table("radiosensitivity").rows)))
    assert "mesothelioma" in r.components[1].note
    # a histology the revised table adds is recognised (it was looked up in the packaged table only)
    assert histology_row("mesothelioma", revised).id == "mesothelioma" and histology_row("mesothelioma") is None
    r = noms({"escc_grade": "1a", "histology": "mesothelioma", **base}, revised)
    assert (r.status, r.oncologic, r.missing) == ("complete", "radioresistant", [])
    r = noms({"escc_grade": "1a", "histology": "prostate", **base}, revised)  # recognised, no class: left open
    assert (r.missing, r.oncologic, r.components[1].label) == (["noms.histology"], None, "not radiosensitive")

    # SINS scored with the revised points (mechanical pain 1 instead of 3)
    components = {"level": "T12", "pain": "mechanical", "lesion": "lytic", "alignment": "normal", "collapse": "gt50",
                  "posterolateral": "bilateral"}
    assert noms({"sins": components}).sins_total == 14
    assert noms({"sins": components}, revised).sins_total == 12

    # each framing row is chosen by all of its criteria, also where the table has more rows on the same axis
    r = noms({"escc_grade": "3", "histology": "breast cancer", "myelopathy": True, **base}, revised)
    assert r.treatment == ["cebrt_or_decompression_then_rt"]
    r = noms({"escc_grade": "3", "histology": "renal cell carcinoma", "sins_total": STABLE, "fit_for_surgery": False},
             revised)
    assert r.treatment == ["srs", "surgery_not_offered"]
