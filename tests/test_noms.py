"""NOMS framing (Laufer 2013; seed 003; noms_framing and radiosensitivity tables): each branch."""

from __future__ import annotations

import pytest

from spinemets import noms
from spinemets.errors import InvalidInputError, SpinemetsError

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
    assert r.treatment == ["radiotherapy_without_surgery"]
    assert r.systemic == "unfit for surgery"


def test_fitness_not_needed_when_no_surgery_in_framing():
    r = noms({"escc_grade": "1a", "histology": "lymphoma", "sins_total": STABLE})
    assert r.status == "complete" and r.treatment == ["cebrt"]


def test_fitness_missing_when_surgery_in_framing():
    r = noms({"escc_grade": "2", "histology": "melanoma", "sins_total": STABLE})
    assert r.status == "insufficient_data"
    assert r.missing == ["noms.fit_for_surgery"]
    assert r.treatment == ["separation_surgery_then_srs"]  # what holds either way is still shown


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


def test_sins_partial_uncertain_names_missing():
    r = noms({"escc_grade": "0", "histology": "lymphoma", "sins": {"level": "T6"}})
    assert "noms.sins.pain" in r.missing


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
