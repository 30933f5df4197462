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
    assert str(exc.value).startswith("case.sinz: unknown field; allowed fields: case_id, escc, fracture, marrow, pathway, patient, primaries, probability, quantitative, sins")


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
