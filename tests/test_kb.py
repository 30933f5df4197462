"""Knowledge-base validation: the packaged KB passes; each kind of defect is reported naming the item."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from spinemets.errors import KnowledgeBaseError, UnknownItemError, UnknownSourceError
from spinemets.knowledge.loader import check_kb, load_kb
from tests.conftest import run_cli


def test_packaged_kb_is_valid():
    assert check_kb() == []


def test_kb_check_cli_ok():
    r = run_cli("kb", "check")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("kb check: ok - version ")


def test_every_item_cites_a_known_source(kb):
    for st in kb.statements.values():
        assert st.sources and all(s in kb.sources for s in st.sources), st.id
    for tab in kb.tables.values():
        for row in tab.rows:
            assert row.sources and all(s in kb.sources for s in row.sources), f"{tab.id}.{row.id}"


def test_unverified_items_are_drafts(kb):
    for st in kb.statements.values():
        if st.verification.value == "unverified":
            assert st.review_status.value == "draft", st.id


def test_every_statement_has_review_metadata(kb):
    for st in kb.statements.values():
        assert st.review_status and st.last_reviewed and st.patient_text, st.id


def _edit(path: Path, fn) -> None:
    data = yaml.safe_load(path.read_text())
    fn(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


def _add_statement(kb_copy: Path, **fields) -> None:
    item = {
        "id": "test.sample", "topics": ["test"], "text": "A sample statement for the tests.",
        "patient_text": "A sample statement for patients.", "sources": ["fisher-2010"],
        "evidence": "primary_study", "review_status": "reviewed", "last_reviewed": "2026-11-23",
    }
    item.update(fields)
    item = {k: v for k, v in item.items() if v is not None}
    (kb_copy / "statements" / "zz_test.yaml").write_text(yaml.safe_dump([item], sort_keys=False))


def test_statement_without_source(kb_copy):
    _add_statement(kb_copy, sources=[])
    problems = check_kb(kb_copy)
    assert "statement test.sample: has no source" in problems


def test_statement_with_unknown_source(kb_copy):
    _add_statement(kb_copy, sources=["fisher-2010", "nobody-1999"])
    assert check_kb(kb_copy) == ["statement test.sample: unknown source id 'nobody-1999'"]


def test_duplicate_statement_id(kb_copy):
    _add_statement(kb_copy)
    text = (kb_copy / "statements" / "zz_test.yaml").read_text()
    (kb_copy / "statements" / "zz_test2.yaml").write_text(text)
    assert check_kb(kb_copy) == [
        "test.sample: duplicate id (statements/zz_test2.yaml and statements/zz_test.yaml)"
    ]


def test_missing_review_status(kb_copy):
    _add_statement(kb_copy, review_status=None)
    assert check_kb(kb_copy) == ["statement test.sample: review_status: missing"]


def test_missing_last_reviewed(kb_copy):
    _add_statement(kb_copy, last_reviewed=None)
    assert check_kb(kb_copy) == ["statement test.sample: last_reviewed: missing"]


def test_unverified_statement_must_be_draft(kb_copy):
    _add_statement(kb_copy, verification="unverified")
    assert check_kb(kb_copy) == [
        "statement test.sample: an unverified statement must have review_status 'draft'"
    ]


def test_table_row_without_source(kb_copy):
    _edit(kb_copy / "tables" / "sins_points.yaml", lambda d: d["rows"][0].pop("sources"))
    problems = check_kb(kb_copy)
    assert "table sins_points row location-junctional: has no source" in problems


def test_table_row_unknown_source(kb_copy):
    _edit(kb_copy / "tables" / "escc_grades.yaml", lambda d: d["rows"][2].__setitem__("sources", ["ghost-2020"]))
    assert check_kb(kb_copy) == ["table escc_grades row g1b: unknown source id 'ghost-2020'"]


def test_duplicate_source_id(kb_copy):
    core = yaml.safe_load((kb_copy / "sources" / "core.yaml").read_text())
    (kb_copy / "sources" / "zz_dup.yaml").write_text(yaml.safe_dump([core[0]], sort_keys=False))
    assert check_kb(kb_copy) == ["seed-000: duplicate id (sources/zz_dup.yaml and sources/core.yaml)"]


def test_duplicate_row_id(kb_copy):
    _edit(kb_copy / "tables" / "escc_grades.yaml", lambda d: d["rows"][1].__setitem__("id", "g0"))
    assert check_kb(kb_copy) == ["escc_grades.g0: duplicate row id in table escc_grades"]


def test_source_missing_review_status(kb_copy):
    _edit(kb_copy / "sources" / "core.yaml", lambda d: d[0].pop("review_status"))
    assert check_kb(kb_copy)[0] == "source seed-000: review_status: missing"


def test_invalid_yaml(kb_copy):
    (kb_copy / "statements" / "zz_bad.yaml").write_text("- id: [unclosed\n")
    problems = check_kb(kb_copy)
    assert len(problems) == 1 and problems[0].startswith("zz_bad.yaml: not valid YAML")


def test_kb_check_cli_fails_naming_item(kb_copy):
    _add_statement(kb_copy, sources=["nobody-1999"])
    r = run_cli("kb", "check", "--path", str(kb_copy))
    assert r.returncode == 1
    assert "kb check: statement test.sample: unknown source id 'nobody-1999'" in r.stderr


def test_load_kb_raises_with_all_problems(kb_copy):
    _add_statement(kb_copy, sources=["nobody-1999"])
    with pytest.raises(KnowledgeBaseError) as exc:
        load_kb(kb_copy)
    assert exc.value.problems == ["statement test.sample: unknown source id 'nobody-1999'"]


def test_lookups(kb):
    assert kb.find("sins_points.pain-mechanical")["points"] == 3
    assert kb.find("fisher-2010").year == 2010
    with pytest.raises(UnknownSourceError) as exc:
        kb.source("nobody-1999")
    assert str(exc.value) == "unknown source id 'nobody-1999'"
    with pytest.raises(UnknownItemError) as exc2:
        kb.find("no.such.item")
    assert str(exc2.value) == "unknown knowledge-base id 'no.such.item'"


def test_version_is_reported_by_results(kb):
    from spinemets import sins

    assert sins({}).kb_version == kb.version


def test_kb_show_and_sources_cli():
    r = run_cli("kb", "show", "sins_points.lesion-lytic")
    assert r.returncode == 0 and "points=2" in r.stdout and "Fisher CG" in r.stdout
    r = run_cli("kb", "show", "nope")
    assert r.returncode == 2 and r.stderr.strip() == "error: unknown knowledge-base id 'nope'"
    r = run_cli("kb", "sources")
    assert r.returncode == 0 and "fisher-2010 (primary_study)" in r.stdout


def test_source_labels_name_the_author_year_or_the_journal_never_a_placeholder():
    # A label is what a clinician reads in place of the source id: every source gets a real name.
    kb = load_kb()
    for sid, source in kb.sources.items():
        label = source.label()
        assert sid not in label, (sid, label)
        assert not any(w in label.lower() for w in ("not captured", "not recorded", "unverified", "unknown")), (sid, label)
    assert kb.sources["surg-oncol-2013"].label() == "Surg Oncol 2013"  # authors not captured: the journal and year
    assert kb.sources["pmid-31469323"].label() == "PMID 31469323 2019"  # neither authors nor journal captured
    assert kb.sources["harlianto-2024"].label() == "Harlianto 2024"
    assert kb.sources["seed-001"].label() == "AI answer page"


# --- the parsed-data snapshot ------------------------------------------------------------------------------------


def _dump(kb):
    return (kb.manifest.model_dump(), {k: v.model_dump() for k, v in kb.sources.items()},
            {k: v.model_dump() for k, v in kb.statements.items()}, {k: v.model_dump() for k, v in kb.tables.items()},
            {k: v.model_dump() for k, v in kb.answer_topics.items()})


def test_the_parsed_snapshot_gives_the_same_knowledge_base_as_the_yaml(tmp_path, monkeypatch):
    import datetime

    from spinemets.knowledge import loader

    monkeypatch.setenv("SPINEMETS_CACHE_DIR", str(tmp_path))
    from_yaml, problems = loader._load(loader.DATA_DIR)
    assert not problems
    first = loader._parsed_snapshot(loader.DATA_DIR)  # parses the YAML and saves the snapshot
    (saved,) = tmp_path.glob("kb-parsed-*.json")
    second = loader._parsed_snapshot(loader.DATA_DIR)  # read back from the snapshot
    assert second == first and set(second) == set(loader.DATA_DIR.rglob("*.yaml"))
    monkeypatch.setattr(loader, "_PARSED", second)
    from_snapshot, problems = loader._load(loader.DATA_DIR)
    assert not problems and _dump(from_snapshot) == _dump(from_yaml)
    assert isinstance(from_snapshot.statements[next(iter(from_snapshot.statements))].last_reviewed, datetime.date)
    # a change to any data file is a new snapshot
    data = tmp_path / "data"
    import shutil

    shutil.copytree(loader.DATA_DIR, data)
    manifest = data / "manifest.yaml"
    manifest.write_text(manifest.read_text(encoding="utf-8") + "\n# edited\n", encoding="utf-8")
    loader._parsed_snapshot(data)
    assert len(list(tmp_path.glob("kb-parsed-*.json"))) == 2
    # a damaged snapshot is parsed again, not trusted
    saved.write_text("{not json", encoding="utf-8")
    assert loader._parsed_snapshot(loader.DATA_DIR) == first


def test_the_compiled_snapshot_is_the_validated_knowledge_base_and_only_trusted_when_private(tmp_path, monkeypatch):
    import os

    from spinemets.knowledge import loader

    monkeypatch.setenv("SPINEMETS_CACHE_DIR", str(tmp_path))
    loader._load_default.cache_clear()
    try:
        built = loader._load_default()  # validated from the files, then saved whole
        (saved,) = tmp_path.glob("kb-compiled-*.pickle")
        assert saved.stat().st_mode & 0o777 == 0o600
        loader._load_default.cache_clear()
        again = loader._load_default()  # read back from the compiled snapshot
        assert again is not built and _dump(again) == _dump(built)
        # one that others may write is never unpickled: the knowledge base is validated from the files instead
        os.chmod(saved, 0o666)
        assert loader._read_compiled(saved) is None
        loader._load_default.cache_clear()
        assert _dump(loader._load_default()) == _dump(built)
        # a damaged one is rebuilt, not trusted
        saved.write_bytes(b"not a pickle")
        os.chmod(saved, 0o600)
        assert loader._read_compiled(saved) is None
        loader._load_default.cache_clear()
        assert _dump(loader._load_default()) == _dump(built)
        assert loader._read_compiled(saved) is not None  # rewritten whole
        # an older snapshot renamed to the current name is refused (it carries its own name)
        other = saved.with_name("kb-compiled-00000000000000000000.pickle")
        os.rename(saved, other)
        os.rename(other, saved)
        assert loader._read_compiled(saved) is not None
        other.write_bytes(saved.read_bytes())
        os.chmod(other, 0o600)
        assert loader._read_compiled(other) is None
        # a cache folder others may write: nothing is unpickled from it
        os.chmod(tmp_path, 0o777)
        try:
            assert loader._read_compiled(saved) is None
        finally:
            os.chmod(tmp_path, 0o700)
    finally:
        loader._load_default.cache_clear()


def test_the_compiled_snapshot_is_keyed_on_the_data_and_the_code_that_builds_it(tmp_path, monkeypatch):
    import shutil

    from spinemets.knowledge import loader

    monkeypatch.setenv("SPINEMETS_CACHE_DIR", str(tmp_path))
    digest, _ = loader._data_digest(loader.DATA_DIR)
    data = tmp_path / "data"
    shutil.copytree(loader.DATA_DIR, data)
    (data / "manifest.yaml").write_text((data / "manifest.yaml").read_text(encoding="utf-8") + "\n# edited\n",
                                        encoding="utf-8")
    edited, _ = loader._data_digest(data)
    assert edited != digest and loader._compiled_path(edited) != loader._compiled_path(digest)
    # a change to the code that defines the objects is a new snapshot too
    before = loader._compiled_path(digest)
    models = loader.Path(loader.__file__).with_name("models.py")
    real_read = loader.Path.read_bytes
    monkeypatch.setattr(loader.Path, "read_bytes", lambda self: real_read(self) + (b"#" if self == models else b""))
    assert loader._compiled_path(digest) != before


def test_a_broken_yaml_file_is_not_snapshotted_and_is_reported(tmp_path, monkeypatch):
    import shutil

    from spinemets.knowledge import loader

    monkeypatch.setenv("SPINEMETS_CACHE_DIR", str(tmp_path / "cache"))
    data = tmp_path / "data"
    shutil.copytree(loader.DATA_DIR, data)
    (data / "statements" / "broken.yaml").write_text("- id: [unclosed\n", encoding="utf-8")
    assert loader._parsed_snapshot(data) == {} and not (tmp_path / "cache").exists()
    assert any("broken.yaml: not valid YAML" in p for p in loader.check_kb(data))


def test_a_cache_file_is_saved_whole_or_not_at_all(tmp_path):
    from spinemets.cachedir import save_atomically

    target = tmp_path / "sub" / "cache.json"
    assert save_atomically(target, lambda fh: fh.write("{}"), text=True) and target.read_text() == "{}"

    def broken(fh):
        fh.write("{half")
        raise TypeError("not JSON: set")

    assert not save_atomically(target, broken, text=True)
    assert target.read_text() == "{}" and list(target.parent.iterdir()) == [target]  # no temporary file left
    (tmp_path / "ro").write_text("a file, not a folder")
    assert not save_atomically(tmp_path / "ro" / "x.npy", lambda fh: fh.write(b"x"))


def _problems_after_edit(tmp_path, monkeypatch, table_file, old, new):
    """The knowledge-base check's problems for a copy of the data with *old* replaced by *new* in one table."""
    import shutil

    from spinemets.knowledge import loader

    monkeypatch.setenv("SPINEMETS_CACHE_DIR", str(tmp_path / "cache"))
    data = tmp_path / "data"
    shutil.copytree(loader.DATA_DIR, data)
    table = data / "tables" / table_file
    text = table.read_text(encoding="utf-8")
    assert old in text
    table.write_text(text.replace(old, new), encoding="utf-8")
    return loader.check_kb(data)


def test_a_phrase_that_yaml_reads_as_something_else_is_a_knowledge_base_error(tmp_path, monkeypatch):
    # "? myeloma" in a YAML list is a mapping, not text: it passed the check and broke ask at run time.
    problems = _problems_after_edit(tmp_path, monkeypatch, "ask_phrases.yaml", "concern for myeloma]",
                                    "concern for myeloma, ?myeloma]")
    assert any("phrases: every phrase must be non-empty text, not {'myeloma': None} (quote it in YAML)" in p
               for p in problems), problems


def test_a_value_split_by_an_unquoted_comma_is_a_knowledge_base_error(tmp_path, monkeypatch):
    # {label: examined, no neurological deficit} is the label "examined" and an empty key: it passed the check and
    # showed clinicians half a label (found in order_indications and synonyms; both quoted now).
    problems = _problems_after_edit(tmp_path, monkeypatch, "order_indications.yaml",
                                    'label: "examined, no neurological deficit"',
                                    "label: examined, no neurological deficit")
    assert any("row no-neurological-deficit: 'no neurological deficit' has no value and is not a column of the "
               "table: a comma inside an unquoted value? Quote the value" in p for p in problems), problems


@pytest.mark.parametrize("table,column", [("escc_grades", "severity"), ("escc_grades", "definition"),
                                          ("escc_grades", "findings"), ("sins_points", "points"),
                                          ("sins_categories", "surgical_consultation"),
                                          ("sins_categories", "consultation")])
def test_a_calculator_table_row_without_a_column_it_reads_is_refused(kb_copy, table, column):
    """The ESCC grading and SINS read these columns from every row; a row without one is a load problem naming the
    row and the column, not a failure in the middle of a calculation (or a grade without its wording)."""
    path = kb_copy / "tables" / f"{table}.yaml"
    removed = {}

    def drop(d):
        row = d["rows"][1]
        removed["id"] = row["id"]
        row.pop(column)

    _edit(path, drop)
    problems = check_kb(kb_copy)
    assert len(problems) == 1 and problems[0].startswith(f"{table}.{removed['id']}: missing {column} ")


@pytest.mark.parametrize("table,row_index,column,value,why", [
    ("acr_ratings", 0, "appropriateness", "usualy_appropriate", "'usualy_appropriate' is not one of may_be_appropriate, "
     "usually_appropriate, usually_not_appropriate"),
    ("sins_points", 1, "label", 12, "12 is not str"),
    ("sins_points", 1, "points", "2", "'2' is not int"),
    ("sins_categories", 0, "surgical_consultation", "no", "'no' is not bool"),
    ("imaging_studies", 0, "ionising", "yes", "'yes' is not bool"),
    ("urgency_windows", 0, "hours", True, "True is a yes/no, not int"),
])
def test_a_value_of_the_wrong_type_in_a_calculator_table_is_refused(kb_copy, table, row_index, column, value, why):
    """Found by review: results are built without validating them again, so a table value of the wrong type (a
    misspelt ACR rating, a number as a label) reached a result that no longer validates. The load refuses it."""
    path = kb_copy / "tables" / f"{table}.yaml"
    seen = {}

    def change(d):
        row = d["rows"][row_index]
        seen["id"] = row["id"]
        row[column] = value

    _edit(path, change)
    assert check_kb(kb_copy) == [f"{table}.{seen['id']}: {column}: {why}"]


def test_the_loaders_allowed_values_are_those_of_the_result_models_they_feed(kb):
    """The load checks table values against fixed sets; each set must be the one the result model allows (no twin
    that could drift), and every ESCC grade row must name a grade the ESCC calculator knows."""
    import typing

    from spinemets.knowledge.loader import APPROPRIATENESS, URGENCY_LEVELS
    from spinemets.pathway import Recommendation, Window
    from spinemets.scores.escc import GRADES

    def allowed(model, field):
        return {a for arg in typing.get_args(model.model_fields[field].annotation)
                for a in (typing.get_args(arg) or (arg,)) if isinstance(a, str)}

    assert APPROPRIATENESS == allowed(Recommendation, "appropriateness")
    assert URGENCY_LEVELS == allowed(Window, "level")
    assert sorted(r["grade"] for r in kb.table("escc_grades").rows) == sorted(GRADES)
