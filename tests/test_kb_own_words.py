"""The knowledge base is written in our own words: no statement repeats a long run of a seed's wording."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

SEEDS = Path(__file__).resolve().parents[2] / "shared" / "seeds"
MAX_RUN = 10  # words in a row shared with a seed; figures and names may repeat, sentences may not


def _words(text: str) -> list[str]:
    return re.sub(r"[^a-z0-9 ]", " ", text.lower()).split()


@pytest.mark.skipif(not SEEDS.is_dir(), reason="shared/seeds is not beside this checkout")
def test_no_statement_copies_a_seed_sentence(kb):
    seed_text = " " + " ".join(" ".join(_words(p.read_text())) for p in SEEDS.glob("*.txt")) + " "
    offenders = []
    for st in kb.statements.values():
        for field in (st.text, st.patient_text):
            w = _words(field)
            for i in range(len(w) - MAX_RUN + 1):
                run = " ".join(w[i : i + MAX_RUN])
                if f" {run} " in seed_text:
                    offenders.append(f"{st.id}: '{run}'")
                    break
    assert offenders == []
