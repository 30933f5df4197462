"""The hold-out order scenarios (tests/data/cds/cdsho1, written by another hand from public ACR material): the CDS
service never gives a wrong rating on them, and keeps at least the right ones it had (docs/cds-hooks.md)."""

from __future__ import annotations

from tests.cds_holdout import score


def test_cdsho1_no_wrong_rating_and_the_right_ones_kept():
    result = score("cdsho1")
    assert result["n"] == 36
    wrong = [row for row in result["rows"] if row[3] == "wrong"]
    assert wrong == []
    assert result["counts"]["right"] >= 7
