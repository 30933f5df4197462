"""Nothing internal reaches a person: no field paths, statement or table ids, or seed numbers in the text of
answers and results (CLI text, ask answers, web pages).  Machine-readable members (``missing``, ``fields``,
``kb_items``) keep their ids."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
import yaml

from spinemets import assess
from spinemets.ask import ask
from spinemets.pathway import pathway
from tests.support import ROOT

FIELD_PATH = re.compile(r"\b(pathway|sins|escc|noms|probability|fracture|marrow|quantitative|case)\.[a-z_]+\b")
SEED = re.compile(r"\bseeds? ?-?0\d\d\b", re.I)


ID_TOKEN = re.compile(r"[a-z0-9_]+(?:\.[a-z0-9_\-]+)+")


@pytest.fixture(scope="module")
def internal(kb) -> Callable[[str], list[str]]:
    """What in a text is internal: field paths, statement and table-row ids of the knowledge base, seed numbers."""
    ids = set(kb.statements)
    for tid, table in kb.tables.items():
        ids.update(f"{tid}.{r.id}" for r in table.rows)

    def find(text: str) -> list[str]:
        found = FIELD_PATH.findall(text) and [m.group(0) for m in FIELD_PATH.finditer(text)]
        found = list(found or [])
        found += [t for t in ID_TOKEN.findall(text) if t in ids]
        found += SEED.findall(text)
        return found

    return find


def _questions(name: str) -> list[str]:
    data = yaml.safe_load((ROOT / "tests" / "data" / name).read_text())
    items = data["questions"] if isinstance(data, dict) else data
    out = []
    for q in items:
        text = q.get("q") if isinstance(q, dict) else None
        if text and not q.get("context"):
            out.append(text)
    return out


QUESTIONS = _questions("ask_dev.yaml") + _questions("ask_holdout.yaml")


def test_the_question_sets_were_read():
    assert len(QUESTIONS) >= 100


@pytest.mark.parametrize("question", QUESTIONS)
def test_ask_answers_show_no_internal_ids(internal, question):
    r = ask(question, lexical=True)
    assert internal(r.to_text()) == [], r.to_text()


@pytest.mark.parametrize("case", [
    {"cancer_history": "previous", "primary_site": "breast", "spinal_pain": True},
    {"age": 10, "spinal_pain": True, "neuro_deficits": []},
    {"cancer_history": "current", "primary_site": "melanoma", "spinal_pain": True, "neuro_deficits": []},
    {"spinal_pain": True, "neuro_deficits": ["gait"]},
    {"unknown_primary": True, "cancer_history": "none", "spinal_pain": True, "neuro_deficits": [],
     "implanted_device": "labelling_unknown"},
])
def test_pathway_text_shows_no_internal_ids(internal, case):
    assert internal(pathway(case).to_text()) == []


def test_assess_text_shows_no_internal_ids(internal):
    case = {"sins": {"level": "T6", "lesion": "blastic"}, "escc": {"cord_compressed": True},
            "probability": {"pre_test": 0.2, "tests": [{"modality": "bone_scan", "result": "negative"}]},
            "pathway": {"cancer_history": "current", "spinal_pain": True}}
    assert internal(assess(case).to_text()) == []


@pytest.mark.parametrize("path", [
    "/ask?q=breast+cancer+survivor+with+new+back+pain%2C+what+imaging%3F",
    "/pathway?_=1&cancer_history=previous&primary_site=breast&spinal_pain=yes",
    "/sins?level=T6&lesion=blastic",
    "/pathway?_=1&cancer_history=current&primary_site=melanoma&spinal_pain=yes&neuro_deficits=__none__",
])
def test_web_pages_show_no_internal_ids(internal, path):
    from fastapi.testclient import TestClient

    from spinemets.api.app import create_app

    html = TestClient(create_app()).get(path).text
    visible = re.sub(r"<[^>]+>", " ", re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", html, flags=re.S))
    visible = re.sub(r'\b(href|id|name|for|value|class|data-[a-z-]+)="[^"]*"', " ", visible)
    assert internal(visible) == []


def test_no_statement_or_shown_table_column_names_an_internal_id(kb, internal):
    bad = []
    for st in kb.statements.values():
        for text in (st.text, st.patient_text):
            if internal(text):
                bad.append((st.id, internal(text)))
    for tid, table in kb.tables.items():
        if table.content != "clinical":
            continue
        for row in table.rows:
            for column in ("label", "condition", "definition", "implication", "source_label"):
                value = row.get(column)
                if isinstance(value, str) and internal(value):
                    bad.append((f"{tid}.{row.id}", internal(value)))
    assert bad == []


def test_report_reading_names_prefilled_inputs_in_words(internal):
    from spinemets.reports.extract import extract

    r = extract("MRI thoracic spine. Lytic lesion T8 with 30% loss of height. Epidural disease abutting the cord "
                "without compression. Impression: metastasis.")
    text = r.to_text()
    assert "SINS lesion: lytic" in text and internal(text) == []
