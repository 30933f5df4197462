"""Pre-filling every level of a report that describes several lesions (``extract(..., every_level=True)``), the
multilevel case built from it, and the per-level evaluation.

Hold-out figures (reports written by other hands, never tuned on) are floors here, measured once; see the closing
notes for what was looked at."""

from __future__ import annotations

import json

import pytest

from spinemets.reports.evaluate import evaluate_levels
from spinemets.reports.extract import extract
from spinemets.reports.prefill import lesions_case

REPORT = ("MRI thoracolumbar spine. Lytic metastasis T8 with 30% height loss and epidural tumour deforming the thecal "
          "sac without cord contact; left pedicle involved. Sclerotic lesions at L2 and L3, no collapse, no epidural "
          "extension at L2. Typical haemangioma T11. No cord compression.")


def _by_level(result):
    out = {lp.level: lp.prefill for lp in result.level_prefills}
    out[result.index_level] = result.prefill
    return out


def test_off_by_default_and_the_index_level_unchanged():
    plain, every = extract(REPORT), extract(REPORT, every_level=True)
    assert plain.level_prefills == []
    assert plain.model_dump(exclude={"level_prefills"}) == every.model_dump(exclude={"level_prefills"})
    assert [lp.level for lp in every.level_prefills] == ["T11", "L2", "L3"]


def test_each_level_from_the_findings_that_name_it():
    pre = _by_level(extract(REPORT, every_level=True))
    assert pre["T8"].inputs["sins"] == {"level": "T8", "lesion": "lytic", "collapse": "lt50",
                                        "posterolateral": "unilateral"}
    assert pre["L2"].inputs["sins"] == {"level": "L2", "lesion": "blastic"}
    assert pre["L2"].inputs["escc"] == {"epidural_disease": False}
    # "no cord compression" names no level: the index lesion's, not L3's
    assert "escc" not in pre["L3"].inputs or "cord_compressed" not in pre["L3"].inputs["escc"]
    assert pre["T8"].escc["cord_compressed"].value is False


def test_a_benign_level_is_not_scored_and_says_why():
    t11 = _by_level(extract(REPORT, every_level=True))["T11"]
    assert (t11.applies["sins"], t11.applies["escc"]) == (False, False)
    assert t11.why_not["sins"] == "the report's diagnosis at T11 is benign (haemangioma)"
    assert "index level" not in " ".join(t11.why_not.values())


def test_the_multilevel_case_is_one_lesion_per_level_and_assesses():
    from spinemets.assess import assess

    case = lesions_case(extract(REPORT, every_level=True))
    assert [x["levels"] for x in case["lesions"]] == ["T8", "L2", "L3"]  # never joined by guess; T11 left out
    assert case["lesions"][1] == {"levels": "L2", "sins": {"lesion": "blastic"}, "escc": {"epidural_disease": False}}
    result = assess(case).lesions
    assert result.involved_vertebrae == ["T8", "L2", "L3"]
    assert lesions_case(extract("Lytic lesion at T7.", every_level=True)) is None  # one level: the single forms


def test_a_batch_refuses_every_level(cli, tmp_path):
    folder = tmp_path / "reports"
    folder.mkdir()
    (folder / "a.txt").write_text(REPORT)
    r = cli("extract", str(folder), "--every-level")
    assert r.returncode == 2 and "--every-level is for one report" in r.stderr


def test_cli_and_api(cli, tmp_path):
    path = tmp_path / "r.txt"
    path.write_text(REPORT)
    r = cli("extract", str(path), "--every-level", "--json")
    assert r.returncode == 0
    assert [lp["level"] for lp in json.loads(r.stdout)["level_prefills"]] == ["T11", "L2", "L3"]
    from fastapi.testclient import TestClient

    from spinemets.api.app import create_app

    client = TestClient(create_app())
    body = client.post("/api/v1/extract", json={"text": REPORT, "every_level": True}).json()
    assert [lp["level"] for lp in body["level_prefills"]] == ["T11", "L2", "L3"]
    page = client.post("/extract", data={"report": REPORT})
    assert page.status_code == 200 and 'data-testid="every-level"' in page.text
    assert "Assess these lesions" in page.text and "Decision support" in page.text


@pytest.mark.parametrize("name, max_wrong, min_f1", [
    # realho12ml: written blind before the per-level pre-fill; first measured at F1 0.848 with 75 of 414 values wrong,
    # when findings without a level pre-filled every level; the rule that keeps them to the index level was then
    # made after looking at that set's error counts by field (so the set is no longer blind for it): 8 of 316 wrong.
    ("realho12ml", 0.03, 0.85),
    # realho13ml: written blind by another hand while that rule was made, measured once after it: F1 0.852
    # (precision 0.955, recall 0.769), 17 of 291 values wrong (5.8 %); never looked at beyond these figures.
    ("realho13ml", 0.065, 0.84),
])
def test_per_level_prefill_holdout_floors(name, max_wrong, min_f1):
    r = evaluate_levels(name)
    assert r.wrong_prefills / r.prefilled <= max_wrong
    assert r.overall.f1 >= min_f1
