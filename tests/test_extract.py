"""Report extraction: worked reports with exact fields, assertions, what stays unknown, every error path,
site rules, batch runs, the CLI and the evaluation floors.

Everything runs in process (the CLI through ``main``) except one console-script call, so that the medspaCy
pipeline is built once per test worker.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest

from spinemets.cli import main
from spinemets.errors import InvalidInputError
from spinemets.reports.extract import MAX_CHARS, extract
from spinemets.reports.rules import load_rules
from tests.conftest import ROOT, run_cli

REPORTS = ROOT / "tests" / "data" / "reports"
DEV = REPORTS / "dev"
MAIN_FIELDS = ("index_level", "levels", "diagnoses", "sins.lesion", "sins.collapse", "sins.alignment",
               "sins.posterolateral", "escc", "escc_grade", "fracture", "marrow")


def value(result, instrument: str, field: str):
    return getattr(result.prefill, instrument)[field].value


def finding(result, concept: str, text: str):
    return next(f for f in result.findings if f.concept == concept and f.text == text)


# --- worked reports ---------------------------------------------------------------------------------------


def test_worked_metastasis_report():
    r = extract((DEV / "d01-breast-t7-lytic.txt").read_text())
    assert (r.status, r.index_level, r.levels, r.regions) == ("complete", "T7", ["T7", "T11"], ["thoracic"])
    assert r.diagnoses == ["metastasis", "haemangioma"] or sorted(r.diagnoses) == ["haemangioma", "metastasis"]
    assert r.prefill.inputs["sins"] == {"level": "T7", "lesion": "lytic", "collapse": "lt50", "alignment": "normal",
                                        "posterolateral": "unilateral"}
    assert r.prefill.inputs["escc"] == {"grade": "1b", "epidural_disease": True, "thecal_sac_deformed": True,
                                        "cord_abutted": False, "cord_compressed": False, "csf_visible": True}
    assert r.prefill.escc_grade == "1b"
    assert r.prefill.inputs["fracture"] == {"epidural_mass": "present", "pedicle_involvement": "present",
                                            "retropulsed_fragment": "absent", "lumbar_location": "absent"}
    assert r.prefill.inputs["marrow"] == {"t1": "hypointense", "stir": "hyperintense", "t1_gd_fs": "enhancing"}
    assert r.impression is not None and r.impression.text.startswith("1. Lytic metastasis at T7")
    # Every value shows the words it came from, at their place in the report.
    text = (DEV / "d01-breast-t7-lytic.txt").read_text()
    for instrument in ("sins", "escc", "fracture", "marrow"):
        for name, p in getattr(r.prefill, instrument).items():
            for e in p.evidence:
                assert text[e.start:e.end] == e.text, (instrument, name)
    assert [e.text for e in r.prefill.sins["posterolateral"].evidence] == ["left pedicle", "left pedicle involvement"]
    assert "without cord compression" in [e.text for e in r.prefill.escc["cord_compressed"].evidence][0]
    # The other level's finding is labelled, and pre-fills nothing.
    assert finding(r, "diagnosis", "haemangioma").assertion == "other_level"
    # Decision support: version, disclaimer, numbered references.
    assert r.kb_version and "Decision support for healthcare professionals" in r.disclaimer
    assert r.references and all(f.refs for f in r.findings if f.sources)
    assert "sins.pain" in r.missing
    text_out = r.to_text()
    assert text_out.startswith("EXTRACT: ") and "Decision support for healthcare professionals" in text_out


def test_worked_osteoporotic_report_prefills_the_fracture_differential_only():
    r = extract((DEV / "d29-osteoporotic-l2.txt").read_text())
    assert (r.index_level, r.diagnoses) == ("L2", ["osteoporotic_fracture"])
    assert r.prefill.applies == {"sins": False, "escc": False, "fracture": True, "marrow": True}
    assert "benign" in r.prefill.why_not["sins"] and not r.prefill.sins and not r.prefill.escc
    assert r.prefill.inputs["fracture"] == {
        "low_signal_band": "present", "fluid_sign": "present", "spared_normal_marrow": "present",
        "retropulsed_fragment": "present", "chemical_shift_no_drop": "absent", "pedicle_involvement": "absent",
        "paraspinal_mass": "absent", "epidural_mass": "absent", "lumbar_location": "present"}
    assert r.prefill.inputs["marrow"] == {"opposed_phase": "drop"}
    assert any(n.code == "sins_not_prefilled" for n in r.notices)


def test_prefilled_inputs_score_with_the_calculators():
    from spinemets.interpret.fracture import fracture_differential
    from spinemets.scores.escc import escc
    from spinemets.scores.sins import sins

    r = extract((DEV / "d03-lung-t10-plana.txt").read_text(), pain="mechanical")
    assert sins(r.prefill.inputs["sins"]).total == 1 + 3 + 2 + 2 + 3 + 3  # semi-rigid T10, mechanical pain, lytic,
    # deformity, more than 50% collapse, bilateral
    assert escc(r.prefill.inputs["escc"]).grade == "3"
    assert fracture_differential(r.prefill.inputs["fracture"]).leaning == "malignant"


def test_normal_study_prefills_nothing():
    r = extract((DEV / "d56-normal-whole-spine.txt").read_text())
    assert (r.index_level, r.levels, r.diagnoses) == (None, [], [])
    assert r.negated_diagnoses == ["metastasis"]
    assert not any(r.prefill.applies.values())
    assert r.prefill.inputs == {} and r.components == []


# --- assertions -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text,concept,words,assertion", [
    ("Lytic lesion at T7. No epidural extension.", "epidural", "epidural extension", "negated"),
    ("Lytic lesion at T7 without cord compression.", "cord", "cord", "negated"),
    ("Lytic lesion at T7. Epidural extension: none.", "epidural", "Epidural extension", "negated"),
    ("Lytic lesion at T7. Possible epidural extension.", "epidural", "epidural extension", "uncertain"),
    ("Lytic lesion at T7. Epidural extension cannot be excluded.", "epidural", "Epidural extension", "uncertain"),
    ("Lytic lesion at T7, suspicious for metastasis.", "diagnosis", "metastasis", "uncertain"),
    ("History: breast cancer with known metastases.\n\nLytic lesion at T7.", "diagnosis", "metastases", "historical"),
    ("Previous vertebroplasty for an osteoporotic fracture. Lytic lesion at T7.", "diagnosis", "osteoporotic fracture", "historical"),
    ("Lytic lesion at T7, ESCC 1a if confirmed.", "escc_grade", "ESCC 1a", "hypothetical"),
    ("Lytic lesion at T7 with epidural extension. Haemangioma at L2.", "diagnosis", "Haemangioma", "other_level"),
])
def test_assertions(text, concept, words, assertion):
    r = extract(text)
    assert finding(r, concept, words).assertion == assertion


def test_uncertain_historical_and_other_level_findings_prefill_nothing():
    r = extract("Lytic lesion at T7. Possible epidural extension. Previous cord compression at T7, since resolved. "
                "Lytic lesion at L2 with cord compression and 80% collapse.", level="T7")
    assert r.index_level == "T7" and r.index_level_given
    assert r.prefill.escc.get("epidural_disease") is None or r.prefill.escc["epidural_disease"].value is None
    assert r.prefill.inputs["escc"] == {"cord_compressed": False}  # "since resolved"; L2's compression is another level
    assert r.prefill.sins["collapse"].value is None
    assert finding(r, "collapse", "collapse").assertion == "other_level"


def test_state_negation_belongs_to_its_clause():
    r = extract("T9 metastasis with ventral epidural extension indenting the thecal sac. The spinal cord is not "
                "contacted and CSF is preserved around it.")
    assert r.prefill.inputs["escc"] == {"epidural_disease": True, "thecal_sac_deformed": True, "cord_abutted": False,
                                        "csf_visible": True}
    assert r.prefill.escc_grade == "1b"


def test_what_the_report_does_not_state_stays_unknown():
    r = extract("There is a lytic lesion in the T7 vertebral body.")
    assert r.index_level == "T7"
    assert {k: v.value for k, v in r.prefill.sins.items()} == {
        "level": "T7", "pain": None, "lesion": "lytic", "collapse": None, "alignment": None, "posterolateral": None}
    assert r.prefill.inputs["sins"] == {"level": "T7", "lesion": "lytic"}
    assert r.prefill.inputs["escc"] == {} and r.prefill.escc_grade is None
    assert all(p.value is None for p in r.prefill.escc.values())
    assert r.prefill.applies["fracture"] is False and r.prefill.fracture == {}
    assert r.prefill.marrow == {}
    assert set(r.missing) >= {"sins.pain", "sins.collapse", "sins.alignment", "sins.posterolateral", "escc.epidural_disease"}


# --- levels ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text,levels", [
    ("Sclerotic metastases from T10\u2013L2.", ["T10", "T11", "T12", "L1", "L2"]),
    ("Sclerotic metastases T10 to L2.", ["T10", "T11", "T12", "L1", "L2"]),
    ("Discitis at L4/5.", ["L4", "L5"]),
    ("Lytic metastases T11-12.", ["T11", "T12"]),
    ("Lytic lesion involving the T7 vertebral body.", ["T7"]),
    ("Lytic lesion of Th12.", ["T12"]),
    ("Lytic lesion of D12.", ["T12"]),
    ("Lytic metastases at C6 and C7, and L2.", ["C6", "C7", "L2"]),
    ("Kyphotic angulation and a lytic metastasis at C7-T1.", ["C7", "T1"]),
    ("Metastases T5-T8 (T7 spared).", ["T5", "T6", "T8"]),
    ("Lytic metastasis at L5 compressing the right S1 nerve root.", ["L5"]),
])
def test_levels(text, levels):
    assert extract(text).levels == levels


def test_t1_and_t2_as_sequences_are_not_levels():
    r = extract("The L3 lesion is hypointense on T1 and hyperintense on T2-weighted images; T1/T2 hyperintense "
                "haemangioma in L1 with low T1 signal elsewhere.")
    assert r.levels == ["L1", "L3"]
    r = extract("The L3 lesion is hypointense on T1 and hyperintense on T2-weighted images.")
    assert r.prefill.inputs["marrow"] == {"t1": "hypointense", "t2": "hyperintense"}


def test_index_level_follows_a_dominant_cue_and_can_be_given():
    text = "Metastases at T5, T6 and T8; the dominant lesion is at T8 with 60% collapse."
    assert extract(text).index_level == "T8"
    r = extract(text, level="t6")
    assert (r.index_level, r.prefill.sins["collapse"].value) == ("T6", None)
    with pytest.raises(InvalidInputError) as e:
        extract(text, level="T13")
    assert e.value.field == "level" and "thoracic levels are T1 to T12" in e.value.message


# --- SINS components ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("text,collapse,notice", [
    ("Lytic metastasis at T7 with 60% loss of height.", "gt50", None),
    ("Lytic metastasis at T7; the vertebral body height is reduced to 40%.", "gt50", None),
    ("Lytic metastasis at T7 with <50% collapse.", "lt50", None),
    ("Lytic metastasis at T7 with loss of about one third of its height.", "lt50", None),
    ("Lytic metastasis at T7 with mild height loss.", "lt50", None),
    ("Lytic metastasis at T7 with vertebra plana.", "gt50", None),
    ("Lytic metastasis at T7 with 50% loss of height.", None, "collapse_fifty"),
    ("Lytic metastasis at T7 with severe height loss.", None, "collapse_severe"),
    ("Lytic metastasis at T7 with a pathological fracture.", None, None),
    ("Lytic metastasis replacing the entire T7 vertebral body. No collapse.", "involved_no_collapse", None),
    ("Small lytic metastasis at T7. No collapse.", "none", None),
    ("Lytic metastasis at T7. No collapse.", None, None),
])
def test_collapse(text, collapse, notice):
    r = extract(text)
    assert value(r, "sins", "collapse") == collapse
    if notice:
        assert notice in [n.code for n in r.notices]
    if collapse is None:
        assert r.prefill.sins["collapse"].note  # says why it stays unknown


@pytest.mark.parametrize("text,expected", [
    ("Lytic metastasis at T7 extending into the left pedicle.", "unilateral"),
    ("Lytic metastasis at T7 extending into both pedicles.", "bilateral"),
    ("Lytic metastasis at T7 involving the left pedicle and the right facet joint.", "bilateral"),
    ("Lytic metastasis at T7 with bilat. pedicle involvement.", "bilateral"),
    ("Lytic metastasis at T7 with R pedicle invol.", "unilateral"),
    ("Lytic metastasis at T7 extending into the pedicle.", None),
    ("Lytic metastasis at T7. The posterior elements are spared.", "none"),
    ("Lytic metastasis at T7 confined to the vertebral body.", "none"),
    ("Lytic metastasis at T7. The pedicles are spared.", "none"),
])
def test_posterolateral(text, expected):
    assert value(extract(text), "sins", "posterolateral") == expected


@pytest.mark.parametrize("text,lesion,alignment", [
    ("Osteolytic metastasis at T7. Alignment is maintained.", "lytic", "normal"),
    ("Sclerotic metastasis at T7 with focal kyphosis.", "blastic", "deformity"),
    ("Mixed lytic/sclerotic met at T7 with anterolisthesis of T7 on T8.", "mixed", "subluxation"),
    ("Lytic and sclerotic components at T7. Normal alignment.", "mixed", "normal"),
    ("Lytic metastasis at T7. No listhesis.", "lytic", None),
])
def test_lesion_and_alignment(text, lesion, alignment):
    r = extract(text)
    assert (value(r, "sins", "lesion"), value(r, "sins", "alignment")) == (lesion, alignment)


def test_pain_is_given_never_read():
    r = extract("Lytic metastasis at T7 causing mechanical pain.")
    assert value(r, "sins", "pain") is None and "pain" in [n.code for n in r.notices]
    assert value(extract("Lytic metastasis at T7.", pain="Mechanical"), "sins", "pain") == "mechanical"
    with pytest.raises(InvalidInputError) as e:
        extract("Lytic metastasis at T7.", pain="sometimes")
    assert e.value.field == "pain" and "allowed values" in e.value.message


# --- spelling and abbreviations ------------------------------------------------------------------------------


@pytest.mark.parametrize("british,american", [
    ("Typical haemangioma in L2, bright on T1 and T2.", "Typical hemangioma in L2, bright on T1 and T2."),
    ("Fracture of L1 with marrow oedema on STIR.", "Fracture of L1 with marrow edema on STIR."),
    ("Lytic metastasis at T7 with epidural tumour.", "Lytic metastasis at T7 with epidural tumor."),
])
def test_british_and_american_spellings_read_alike(british, american):
    a, b = extract(british), extract(american)
    assert (a.diagnoses, a.prefill.inputs) == (b.diagnoses, b.prefill.inputs)
    assert a.prefill.inputs


def test_abbreviations():
    r = extract((DEV / "d18-abbreviations.txt").read_text())
    assert (r.levels, r.index_level, r.diagnoses) == (["L1", "L3"], "L3", ["metastasis"])
    assert r.prefill.inputs["sins"] == {"level": "L3", "lesion": "lytic", "collapse": "lt50", "posterolateral": "unilateral"}


def test_chemical_shift_and_diffusion():
    r = extract((DEV / "d22-dwi-chemshift.txt").read_text())
    assert r.prefill.inputs["marrow"] == {"t1": "hypointense", "opposed_phase": "no_drop", "dwi": "restricted",
                                          "adc": "hypointense"}
    assert r.prefill.inputs["fracture"]["chemical_shift_no_drop"] == "present"
    # "signal drop" means nothing without an opposed-phase cue in the sentence
    assert "opposed_phase" not in extract("Typical L3 haemangioma with signal drop on fat-suppressed images.").prefill.marrow


def test_escc_stated_grade_and_contradictions():
    r = extract("Lytic metastasis at T7 with epidural disease, Bilsky 1c.")
    assert (value(r, "escc", "grade"), r.prefill.escc_grade) == ("1c", "1c")
    r = extract("Lytic metastasis at T7 with epidural disease, ESCC 1.")
    assert value(r, "escc", "grade") is None and "escc_grade_unclear" in [n.code for n in r.notices]
    r = extract("Lytic metastasis at T7. No epidural disease. ESCC grade 3.")
    assert r.prefill.escc_grade is None and "escc_contradiction" in [n.code for n in r.notices]


# --- error paths -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text,message", [
    ("", "the report is empty"),
    ("   \n\t ", "the report is empty"),
    ("x" * (MAX_CHARS + 1), f"the limit is {MAX_CHARS}"),
    ("Lytic lesion at T7\x00", "NUL characters"),
    (42, "expected the report as text"),
])
def test_bad_text(text, message):
    with pytest.raises(InvalidInputError) as e:
        extract(text)
    assert e.value.field == "text" and message in e.value.message


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    p = tmp_path / name
    p.write_bytes(content if isinstance(content, bytes) else content.encode())
    return p


@pytest.mark.parametrize("name,content,message", [
    ("rules.txt", "targets: []", "must be .yaml, .yml or .json"),
    ("rules.yaml", "targets: [unclosed", "not valid YAML"),
    ("rules.json", "{not json", "not valid JSON"),
    ("rules.yaml", "- a list", "expected a mapping"),
    ("rules.yaml", "targets: []\nphrases: []", "unknown key 'phrases'"),
    ("rules.yaml", "targets: []", "holds no rows"),
    ("rules.yaml", "targets: {a: 1}", "targets must be a list"),
    ("rules.yaml", "targets:\n  - {id: x, concept: tumourish, value: v, phrases: [p]}", "'tumourish' is not a concept"),
    ("rules.yaml", "targets:\n  - {id: x, concept: lesion, value: v, phrases: []}", "non-empty list of phrases"),
    ("rules.yaml", "targets:\n  - {id: x, concept: lesion, value: v, phrases: [p], colour: red}", "unknown column"),
    ("rules.yaml", "targets:\n  - {id: x, concept: lesion, value: v, phrases: [p], sets: {sins.lesion: purple}}",
     "'purple' is not allowed; allowed values: 'lytic', 'mixed', 'blastic'"),
    ("rules.yaml", "targets:\n  - {id: x, concept: lesion, value: v, phrases: [p], sets: {sins.colour: red}}",
     "'sins.colour' is not a field that can be pre-filled"),
    ("rules.yaml", "targets:\n  - {id: x, concept: feature, value: v, phrases: [p], sets: {fracture.wobble: present}}",
     "'fracture.wobble' is not a field"),
    ("rules.yaml", "targets:\n  - {id: x, concept: lesion, value: v, phrases: [lytic]}", "phrase 'lytic' is already in targets.lesion-lytic"),
    ("rules.yaml", "targets:\n  - {id: x, concept: lesion, value: v, phrases: ['{nothing} lesion']}", "unknown placeholder {nothing}"),
    ("rules.yaml", "targets:\n  - {id: x, concept: lesion, value: v, phrases: [p], sources: [nobody-1999]}", "unknown source id 'nobody-1999'"),
    ("rules.yaml", "context:\n  - {id: y, category: MAYBE, direction: FORWARD, phrases: [p]}", "'MAYBE' is not a category"),
    ("rules.yaml", "context:\n  - {id: y, category: SIDE, direction: FORWARD, phrases: [sinister], value: up}", "'up' is not allowed for SIDE"),
    ("rules.yaml", "terms:\n  - {id: z, kind: section, role: epilogue, headings: [addendum]}", "a section needs role"),
    ("rules.yaml", b"targets: \xff\xfe", "not UTF-8 text"),
])
def test_bad_rules_file(tmp_path, name, content, message):
    path = write(tmp_path, name, content)
    with pytest.raises(InvalidInputError) as e:
        extract("Lytic lesion at T7.", rules=str(path))
    assert e.value.field == "rules" and message in e.value.message, e.value.message


def test_missing_rules_file(tmp_path):
    with pytest.raises(InvalidInputError) as e:
        extract("Lytic lesion at T7.", rules=str(tmp_path / "absent.yaml"))
    assert e.value.field == "rules" and "no such file" in e.value.message


SITE_RULES = """
targets:
  - {id: punched-out, concept: lesion, value: lytic, phrases: [punched-out, punched out], sets: {sins.lesion: lytic}}
context:
  - {id: not-convincingly, category: POSSIBLE_EXISTENCE, direction: FORWARD, phrases: [not convincingly], max_scope: 5}
terms:
  - {id: opinion-heading, kind: section, role: impression, headings: [radiologist's opinion]}
"""


def test_site_rules_extend_the_phrasings(tmp_path, monkeypatch):
    path = write(tmp_path, "site.yaml", SITE_RULES)
    text = ("Punched-out lesion at T7, not convincingly epidural extension.\n\n"
            "Radiologist's opinion: T7 metastasis.")
    plain = extract(text)
    assert value(plain, "sins", "lesion") is None
    r = extract(text, rules=str(path))
    assert value(r, "sins", "lesion") == "lytic"
    f = finding(r, "lesion", "Punched-out")
    assert (f.rule, f.kb_items, f.refs) == ("site:punched-out", [], [])
    assert finding(r, "epidural", "epidural extension").assertion == "uncertain"
    assert r.impression is not None and r.impression.text == "T7 metastasis."
    assert r.rules_files == [str(path)] and "site_rules" in [n.code for n in r.notices]
    monkeypatch.setenv("SPINEMETS_REPORT_RULES", str(path))
    assert value(extract(text), "sins", "lesion") == "lytic"


def test_app_refuses_to_start_with_a_bad_site_rules_file(tmp_path, monkeypatch):
    from spinemets.api.app import create_app

    monkeypatch.setenv("SPINEMETS_REPORT_RULES", str(write(tmp_path, "site.yaml", "targets: [")))
    with pytest.raises(InvalidInputError) as e:
        create_app(web=False)
    assert e.value.field == "rules" and "not valid YAML" in e.value.message


def test_the_knowledge_base_rules_are_valid_and_sourced(kb):
    rules = load_rules(kb)
    assert len(rules.targets) > 80 and len(rules.context) > 30
    for table in ("report_targets", "report_context", "report_terms"):
        for row in kb.table(table).rows:
            assert row.sources and all(s in kb.sources for s in row.sources), f"{table}.{row.id}"
    assert "medspacy-context-rules" in kb.sources and kb.source("harkema-2009").doi


# --- the command line ---------------------------------------------------------------------------------------------


def test_cli_single_report(capsys):
    assert main(["extract", str(DEV / "d12-severe-t8.txt")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("EXTRACT: ") and "SINS posterolateral: unilateral" in out and "sins.posterolateral" not in out
    assert "Decision support for healthcare professionals" in out
    assert main(["extract", str(DEV / "d12-severe-t8.txt"), "--json", "--pain", "none"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["prefill"]["inputs"]["sins"]["pain"] == "none" and doc["kb_version"]


def test_cli_stdin_and_exit_codes(capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"Lytic lesion at T7.")))
    assert main(["extract", "-"]) == 0
    assert "index level T7" in capsys.readouterr().out
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"The patient attended on time.")))
    assert main(["extract"]) == 3  # no spine finding: insufficient data
    assert "no spine finding recognised" in capsys.readouterr().out


@pytest.mark.parametrize("name,content,message", [
    ("scan.pdf", b"%PDF-1.4", ".pdf is not a text report"),
    ("report.docx", b"PK\x03\x04", ".docx is not a text report"),
    ("report.txt", b"Lytic\x00\x01lesion", "a binary file, not a text report"),
    ("report.txt", b"Lytic lesion \xff at T7", "not UTF-8 text"),
    ("report.txt", b"   ", "the report is empty"),
])
def test_cli_bad_file(tmp_path, capsys, name, content, message):
    path = write(tmp_path, name, content)
    assert main(["extract", str(path)]) == 2
    assert message in capsys.readouterr().err


def test_cli_missing_file_and_bad_rules(tmp_path, capsys):
    assert main(["extract", str(tmp_path / "nothing.txt")]) == 2
    assert "no such file" in capsys.readouterr().err
    bad = write(tmp_path, "bad.yaml", "targets: [")
    assert main(["extract", str(DEV / "d01-breast-t7-lytic.txt"), "--rules", str(bad)]) == 2
    assert "error: rules: bad.yaml: not valid YAML" in capsys.readouterr().err


# --- batch -------------------------------------------------------------------------------------------------------------


def test_batch_folder_to_jsonl(tmp_path, capsys):
    folder = tmp_path / "reports"
    folder.mkdir()
    for name in ("d01-breast-t7-lytic", "d29-osteoporotic-l2", "d56-normal-whole-spine"):
        (folder / f"{name}.txt").write_text((DEV / f"{name}.txt").read_text())
    (folder / "empty.txt").write_text("")
    (folder / "notes.md").write_text("not read")
    out = tmp_path / "out.jsonl"
    assert main(["extract", str(folder), "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert "4 reports" in err and "1 with errors" in err and "report" in err  # tqdm's bar went to stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == ["d01-breast-t7-lytic", "d29-osteoporotic-l2", "d56-normal-whole-spine", "empty"]
    assert rows[0]["index_level"] == "T7" and rows[0]["prefill"]["escc_grade"] == "1b" and rows[0]["error"] is None
    assert rows[3]["error"] == "text: the report is empty" and rows[3]["disclaimer"]
    assert all(r["kb_version"] for r in rows)


def test_batch_csv_in_csv_out(tmp_path, capsys):
    src = tmp_path / "reports.csv"
    with src.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["accession", "report"])
        w.writerow(["A1", (DEV / "d03-lung-t10-plana.txt").read_text()])
        w.writerow(["A2", "Typical haemangioma in L2, bright on T1 and T2."])
    out = tmp_path / "out.csv"
    assert main(["extract", str(src), "-o", str(out), "--text-column", "report", "--id-column", "accession",
                 "--no-progress"]) == 0
    assert capsys.readouterr().err.strip() == f"extract: 2 reports to {out}, 0 with errors"
    rows = list(csv.DictReader(out.open()))
    assert [r["id"] for r in rows] == ["A1", "A2"]
    assert (rows[0]["sins_collapse"], rows[0]["escc_grade"], rows[0]["escc_csf_visible"]) == ("gt50", "3", "no")
    assert rows[0]["fracture_paraspinal_mass"] == "present" and rows[1]["diagnoses"] == "haemangioma"
    assert rows[1]["marrow_t1"] == "hyperintense" and rows[1]["sins_lesion"] == ""
    assert "Decision support" in rows[0]["disclaimer"]


def test_batch_jsonl_lines_and_errors(tmp_path, capsys):
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join([
        json.dumps({"id": "r1", "text": "Lytic lesion at T7 with epidural extension."}),
        json.dumps("Sclerotic metastasis at L2."),
        "{broken",
        json.dumps({"id": "r4", "body": "no text key"}),
        "",
    ]))
    from spinemets.reports.batch import run_batch

    buf = io.StringIO()
    summary = run_batch(src, buf, "jsonl", progress=False)
    rows = [json.loads(line) for line in buf.getvalue().splitlines()]
    assert (summary.reports, summary.errors) == (4, 2)
    assert [r["id"] for r in rows] == ["r1", "2", "3", "r4"]
    assert rows[1]["prefill"]["inputs"]["sins"]["lesion"] == "blastic"
    assert "not valid JSON" in rows[2]["error"] and "no text in 'text'" in rows[3]["error"]


def test_batch_on_several_processes_gives_the_same_rows_in_the_same_order(tmp_path):
    from spinemets.reports.batch import WINDOW, run_batch

    folder = tmp_path / "reports"
    folder.mkdir()
    sources = sorted(DEV.glob("*.txt"))
    n = 2 * WINDOW * 2 + 7  # more than one window of two workers, and a remainder
    for i in range(n):
        (folder / f"r{i:04d}.txt").write_text(sources[i % len(sources)].read_text() + f"\nSerial {i}.\n")
    (folder / "r9999.txt").write_text("")
    outs = {}
    for workers in (1, 2):
        buf = io.StringIO()
        summary = run_batch(folder, buf, "jsonl", progress=False, workers=workers)
        assert (summary.reports, summary.errors) == (n + 1, 1)
        outs[workers] = buf.getvalue()
    assert outs[1] == outs[2]
    assert [json.loads(line)["id"] for line in outs[2].splitlines()][:3] == ["r0000", "r0001", "r0002"]


def test_batch_workers_must_be_positive(tmp_path, capsys):
    src = write(tmp_path, "in.csv", "id,text\n1,Lytic lesion at T7.\n")
    assert main(["extract", str(src), "--no-progress", "--workers", "0"]) == 2
    assert "workers: 0 is not allowed; give 1 or more" in capsys.readouterr().err


def test_batch_streams(tmp_path):
    from spinemets.reports.batch import iter_reports

    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"text": "Lytic lesion at T7."}) + "\n" + "{broken\n")
    reports = iter_reports(src)
    assert next(reports) == ("1", "Lytic lesion at T7.", None)  # read lazily, one at a time
    assert next(reports)[2].startswith("line 2: not valid JSON")


@pytest.mark.parametrize("args,message", [
    (["--text-column", "body"], "has no column 'body'"),
    (["--pain", "often"], "pain: 'often' is not allowed"),
    (["--level", "T7"], "--level is for one report"),
])
def test_batch_bad_arguments(tmp_path, capsys, args, message):
    src = write(tmp_path, "in.csv", "id,text\n1,Lytic lesion at T7.\n")
    assert main(["extract", str(src), "--no-progress", *args]) == 2
    assert message in capsys.readouterr().err


# --- evaluation --------------------------------------------------------------------------------------------------


def test_development_set_is_large_and_annotated():
    from spinemets.reports.evaluate import load_set

    folder, gold = load_set("dev")
    assert len(gold) >= 60 and len(list(folder.glob("*.txt"))) == len(gold)
    kinds = " ".join(gold)
    for word in ("osteoporotic", "haemangioma", "bone-island", "discitis", "normal", "abbrev", "uk-spelling", "us-"):
        assert word in kinds
    _, holdout = load_set("holdout")
    assert len(holdout) >= 15 and not set(holdout) & set(gold)


# F1 per field as measured with `spinemets extract-eval --set NAME` (KB 2026.12.54, 2026-12-05, second session).
# The floors sit a small margin under them: one more miss in a small field or a systematic error (issue 18: an ESCC
# error took 1.000 to 0.931 and passed the old 0.90 floor) falls below its floor. realho and realho2 are the blind
# hold-outs of real-style reports (never tuned on, never inspected report by report; a floor only guards them).
MEASURED = {
    "dev": {"index_level": 1.000, "levels": 0.990, "diagnoses": 1.000, "sins.lesion": 1.000, "sins.collapse": 1.000,
            "sins.alignment": 1.000, "sins.posterolateral": 1.000, "escc": 1.000, "escc_grade": 1.000,
            "fracture": 0.995, "marrow": 0.991, "all fields": 0.996, "negation": 0.992},
    "holdout": {"index_level": 1.000, "levels": 0.949, "diagnoses": 1.000, "sins.lesion": 1.000,
                "sins.collapse": 0.957, "sins.alignment": 0.947, "sins.posterolateral": 1.000, "escc": 1.000,
                "escc_grade": 1.000, "fracture": 0.970, "marrow": 0.974, "all fields": 0.976, "negation": 0.960},
    "realdev": {"index_level": 0.926, "levels": 0.917, "diagnoses": 0.892, "sins.lesion": 0.907,
                "sins.collapse": 0.885, "sins.alignment": 0.968, "sins.posterolateral": 0.896, "escc": 0.866,
                "escc_grade": 0.922, "fracture": 0.844, "marrow": 0.780, "all fields": 0.876, "negation": 0.878},
    "realdev2": {"index_level": 0.890, "levels": 0.926, "diagnoses": 0.913, "sins.lesion": 0.983,
                 "sins.collapse": 0.918, "sins.alignment": 0.923, "sins.posterolateral": 0.937, "escc": 0.872,
                 "escc_grade": 0.931, "fracture": 0.847, "marrow": 0.853, "all fields": 0.892, "negation": 0.938},
    "realdev3": {"index_level": 0.907, "levels": 0.903, "diagnoses": 0.885, "sins.lesion": 0.933,
                 "sins.collapse": 0.854, "sins.alignment": 0.947, "sins.posterolateral": 0.938, "escc": 0.927,
                 "escc_grade": 0.946, "fracture": 0.844, "marrow": 0.802, "all fields": 0.884, "negation": 0.935},
    "realho": {"index_level": 0.898, "levels": 0.914, "diagnoses": 0.901, "sins.lesion": 0.880,
               # posterolateral 0.939 -> 0.920 (2026-12-06, ninth session) when "myeloma screen" stopped being read as
               # myeloma: one report of this set lost its SINS and ESCC pre-fill (3 values) and 3 wrong values went
               # elsewhere, all fields unchanged at 0.917; on the development sets the same rule is right 17 of 17
               "sins.collapse": 0.852, "sins.alignment": 0.957, "sins.posterolateral": 0.920, "escc": 0.936,
               "escc_grade": 0.926, "fracture": 0.846, "all fields": 0.890, "negation": 0.882,
               # 0.862 -> 0.851 when the pattern "{signal} {sequence} and {sequence}" was removed after the fourth
               # session's safety review (it read "low T1 and STIR hyperintense" as STIR low): recall given up for a
               # wrong pre-fill; measured in aggregate, the report not inspected
               "marrow": 0.851},
    "realho2": {"index_level": 0.925, "levels": 0.961, "diagnoses": 0.944, "sins.lesion": 0.958,
                "sins.collapse": 0.871, "sins.alignment": 0.970, "sins.posterolateral": 0.983, "escc": 0.873,
                "escc_grade": 0.898, "fracture": 0.854, "marrow": 0.879, "all fields": 0.913, "negation": 0.850},
    # third blind hold-out, written at the end of the third session of 2026-12-05 and measured once, before changes
    # escc_grade lowered 0.851 -> 0.833 in the tenth session (2026-12-06): reading "the cord is no longer compressed"
    # as not compressed (a cord-compression wrong value found by the second review) costs one grade here; the floor
    # was traced in aggregate to that row and the row was kept (disclosed in docs/extract.md)
    "realho3": {"index_level": 0.851, "levels": 0.957, "diagnoses": 0.897, "sins.lesion": 0.917,
                "sins.collapse": 0.889, "sins.alignment": 0.897, "sins.posterolateral": 0.979, "escc": 0.933,
                "escc_grade": 0.833, "fracture": 0.832, "marrow": 0.780, "all fields": 0.883, "negation": 0.849},
    # fourth blind hold-out (40 reports), written at the start of the fifth session of 2026-12-05 before its
    # changes; figures at the end of the session, measured in aggregate three times in all (before: all fields 0.909,
    # negation 0.904, wrong pre-fills 0.032; the second review's fixes cost one wrong pre-fill: 0.016 -> 0.024)
    "realho4": {"index_level": 0.928, "levels": 0.912, "diagnoses": 1.000, "sins.lesion": 1.000,
                "sins.collapse": 0.952, "sins.alignment": 1.000, "sins.posterolateral": 0.968, "escc": 0.974,
                "escc_grade": 0.895, "fracture": 0.819, "marrow": 0.897, "all fields": 0.916, "negation": 0.912},
    # measured at the end of the eighth session (2026-12-06, KB 2026.12.127), in aggregate: the fourth development
    # set, and the fifth to seventh blind hold-outs (never inspected report by report; a floor only guards them)
    "realdev4": {"index_level": 0.990, "levels": 0.944, "diagnoses": 0.944, "sins.lesion": 1.000,
                 "sins.collapse": 0.857, "sins.alignment": 0.947, "sins.posterolateral": 0.893, "escc": 0.940,
                 "escc_grade": 1.000, "fracture": 0.939, "marrow": 0.852, "all fields": 0.929, "negation": 0.938},
    "realho5": {"index_level": 0.897, "levels": 0.954, "diagnoses": 0.897, "sins.lesion": 0.966,
                "sins.collapse": 0.837, "sins.alignment": 0.941, "sins.posterolateral": 0.920, "escc": 0.939,
                "escc_grade": 0.980, "fracture": 0.881, "marrow": 0.890, "all fields": 0.917, "negation": 0.902},
    "realho6": {"index_level": 0.923, "levels": 0.941, "diagnoses": 0.947, "sins.lesion": 0.857,
                "sins.collapse": 0.821, "sins.alignment": 0.872, "sins.posterolateral": 0.913, "escc": 0.920,
                "escc_grade": 0.894, "fracture": 0.901, "marrow": 0.933, "all fields": 0.915, "negation": 0.884},
    "realho7": {"index_level": 0.961, "levels": 0.929, "diagnoses": 0.966, "sins.lesion": 0.923,
                "sins.collapse": 0.905, "sins.alignment": 0.919, "sins.posterolateral": 0.909, "escc": 0.925,
                "escc_grade": 0.947, "fracture": 0.894, "marrow": 0.910, "all fields": 0.921, "negation": 0.869},
    # eighth blind hold-out (40 reports), written at the start of the ninth session (2026-12-06) before its changes;
    # figures at the end of the session (fifth aggregate look; before: all fields 0.900, negation 0.901)
    "realho8": {"index_level": 0.961, "levels": 0.878, "diagnoses": 0.941, "sins.lesion": 0.974,
                "sins.collapse": 0.757, "sins.alignment": 0.846, "sins.posterolateral": 0.857, "escc": 0.871,
                "escc_grade": 0.821, "fracture": 0.941, "marrow": 0.888, "all fields": 0.897, "negation": 0.892},
    # ninth blind hold-out (50 reports), written at the start of the tenth session (2026-12-06) before its changes;
    # figures at the end of the session (fifth aggregate look; before: all fields 0.898, negation 0.883)
    "realho9": {"index_level": 0.947, "levels": 0.980, "diagnoses": 0.914, "sins.lesion": 0.923,
                "sins.collapse": 0.755, "sins.alignment": 0.976, "sins.posterolateral": 0.776, "escc": 0.914,
                "escc_grade": 0.926, "fracture": 0.886, "marrow": 0.891, "all fields": 0.907, "negation": 0.905},
    # eleventh session: the tenth hold-out at the end (eighth aggregate look; before: all fields 0.900, negation 0.864)
    "realho10": {"index_level": 0.901, "levels": 0.931, "diagnoses": 0.918, "sins.lesion": 0.833,
                 "sins.collapse": 0.893, "sins.alignment": 0.895, "sins.posterolateral": 0.902, "escc": 0.935,
                 "escc_grade": 0.909, "fracture": 0.919, "marrow": 0.919, "all fields": 0.916, "negation": 0.915},
    # a development set written this session (before tuning: all fields 0.889)
    "realdev5": {"index_level": 0.903, "levels": 0.938, "diagnoses": 0.943, "sins.lesion": 0.933,
                 "sins.collapse": 0.867, "sins.alignment": 0.898, "sins.posterolateral": 0.897, "escc": 0.936,
                 "escc_grade": 0.929, "fracture": 0.894, "marrow": 0.866, "all fields": 0.910, "negation": 0.900},
    # twelfth session: the eleventh hold-out at the end (fourth aggregate look; before any change: all fields 0.937,
    # negation 0.941, collapse 0.896), and the sixth development set (before tuning: all fields 0.936)
    "realho11": {"index_level": 0.948, "levels": 0.927, "diagnoses": 0.937, "sins.lesion": 0.982,
                 "sins.collapse": 0.912, "sins.alignment": 0.958, "sins.posterolateral": 0.921, "escc": 0.973,
                 "escc_grade": 0.947, "fracture": 0.948, "marrow": 0.919, "all fields": 0.941, "negation": 0.946},
    "realdev6": {"index_level": 0.949, "levels": 0.934, "diagnoses": 0.925, "sins.lesion": 0.963,
                 "sins.collapse": 0.928, "sins.alignment": 0.986, "sins.posterolateral": 1.000, "escc": 0.951,
                 "escc_grade": 0.983, "fracture": 0.918, "marrow": 0.921, "all fields": 0.939, "negation": 0.921},
}
# Wrong pre-fill rate of SINS components and ESCC findings (a ceiling, measured plus a margin) and negation F1.
WRONG_PREFILL = {"dev": 0.000, "holdout": 0.036, "realdev": 0.068, "realdev2": 0.031, "realdev3": 0.030,
                 "realho": 0.034, "realho2": 0.056, "realho3": 0.074, "realho4": 0.024, "realdev4": 0.019,
                 "realho5": 0.043, "realho6": 0.082, "realho7": 0.056, "realho8": 0.094,
                 "realho9": 0.049, "realho10": 0.027, "realdev5": 0.045, "realho11": 0.035, "realdev6": 0.020}
NEGATION = {name: m["negation"] for name, m in MEASURED.items()}
MARGIN = 0.01


@pytest.mark.parametrize("name", list(MEASURED))
def test_quality_floors_at_the_measured_values(name):
    from spinemets.reports.evaluate import evaluate

    report = evaluate(name)
    assert [f.field for f in report.fields] == list(MAIN_FIELDS)
    # a hold-out's failure shows its figures only, never its reports (they are read in aggregate)
    detail = report.to_text(not name.startswith("realho") and name != "holdout")
    for f in [*report.fields, report.overall]:
        assert f.f1 is not None and f.f1 >= MEASURED[name][f.field] - MARGIN, (name, f.field, f.f1, detail)
    assert report.negation.f1 >= NEGATION[name] - MARGIN, (name, report.negation.f1)
    assert report.prefill_accuracy.wrong_rate <= WRONG_PREFILL[name] + MARGIN, (name, report.prefill_accuracy.wrong_rate)


# Report by report, the grade fields against their annotations (read straight from the extractor, not through the
# scoring code).  The only accepted disagreements: a normal study whose report says "no collapse" and "alignment
# normal" in words the annotation leaves unknown (holdout h04).
GRADE_FIELDS = ("lesion", "collapse", "alignment", "posterolateral")
ACCEPTED = {("holdout", "h04-normal-lumbar", "sins.collapse"): (None, "none"),
            ("holdout", "h04-normal-lumbar", "sins.alignment"): (None, "normal")}


@pytest.mark.parametrize("name", ["dev", "holdout"])
def test_escc_grade_and_sins_components_match_the_annotation_of_every_report(name):
    from spinemets.reports.evaluate import load_set

    folder, gold = load_set(name)
    rs = load_rules()
    compared = {"escc_grade": 0, "sins": 0, "escc": 0}
    wrong = {}
    for rid in sorted(gold):
        g = gold[rid] or {}
        pre = extract((folder / f"{rid}.txt").read_text(encoding="utf-8"), rule_set=rs).prefill
        pairs = {"escc_grade": (None if g.get("escc_grade") is None else str(g["escc_grade"]), pre.escc_grade)}
        for c in GRADE_FIELDS:
            pairs[f"sins.{c}"] = ((g.get("sins") or {}).get(c), pre.sins[c].value if c in pre.sins else None)
        findings = {k: v.value for k, v in pre.escc.items() if k != "grade" and v.value is not None}
        pairs["escc"] = (g.get("escc") or {}, findings)
        for field, (expected, got) in pairs.items():
            compared[field.split(".")[0]] += expected not in (None, {})
            if expected != got and ACCEPTED.get((name, rid, field)) != (expected, got):
                wrong[(rid, field)] = (expected, got)
    assert not wrong, wrong
    assert all(compared.values()), compared  # the set does annotate every kind of field compared


def test_extract_eval_command(capsys):
    assert main(["extract-eval", "--fail-under", "0.9"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("extract-eval: dev set, ") and "sins.collapse" in out and "all fields" in out
    assert main(["extract-eval", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert {f["field"] for f in doc["fields"]} == set(MAIN_FIELDS)
    assert main(["extract-eval", "--set", "nothing"]) == 2
    assert "no annotated set 'nothing'" in capsys.readouterr().err


def test_extract_eval_verbose_lists_each_wrong_prefill_with_the_phrase_read(capsys):
    assert main(["extract-eval", "--set", "realdev4", "--verbose"]) == 0
    out = capsys.readouterr().out
    listed = out.split("Wrong pre-fills (report, component: gold / pre-filled, phrase read):\n", 1)[1]
    listed = listed.split("\n\n", 1)[0].splitlines()
    tally = re.search(r"wrong pre-fills: (\d+) of", out)
    assert tally and len(listed) == int(tally.group(1)) > 0
    # e.g. "  rd4_006  ESCC cord_compressed: None / False  ('No cord compression')"
    assert all(re.fullmatch(r"  rd4_\d{3}  (SINS|ESCC) \w+: .+ / .+  \(.*\)", line) for line in listed), listed


def test_console_script_help_stays_light():
    r = run_cli("extract", "--help")
    assert r.returncode == 0 and "--rules" in r.stdout and "batch" in r.stdout


@pytest.mark.parametrize("text,grade", [
    ("Lytic metastasis at T7 without cord compression, ESCC grade 1b.", "1b"),  # "without" bears on the cord
    ("Epidural tumour at T7 without cord compression (Bilsky 1c).", "1c"),
    ("Lytic metastasis at T7 with epidural disease. No ESCC grade 3.", None),  # the grade itself is negated
    ("Lytic metastasis at T7 with epidural disease, not Bilsky 3.", None),
    ("Lytic metastasis at T7 with epidural disease. ESCC grade 3 is excluded.", None),
])
def test_a_negation_cancels_a_stated_grade_only_when_it_bears_on_the_grade(text, grade):
    r = extract(text)
    assert r.prefill.escc_grade == grade


def test_extraction_imports_only_what_it_uses():
    """A fresh process reads a report without torch, QuickUMLS, nltk or scikit-learn (medspaCy's package and
    thinc would load them: seconds and hundreds of MB before the first report), and torch still imports after."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from spinemets.reports.extract import extract\n"
        "r = extract('Lytic lesion at T7 with epidural extension. No cord compression.')\n"
        "assert r.index_level == 'T7'\n"
        "print(sorted(m for m in ('torch', 'quickumls', 'nltk', 'sklearn', 'PyRuSH') if m in sys.modules))\n"
        "import importlib.util\n"
        "if importlib.util.find_spec('torch') is not None:\n"
        "    import torch\n"
        "    print('torch', bool(torch.tensor([1]).sum() == 1))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.splitlines()
    assert out[0] == "[]"
    assert out[1:] in ([], ["torch True"])


@pytest.mark.parametrize("text, grade, words", [
    ("Lytic metastasis at T7 with epidural tumour. ESCC 2.", "2", "ESCC 2"),
    ("Lytic metastasis at T7. Bilsky classification: 3.", "3", "Bilsky classification: 3"),
    ("Lytic metastasis at T7. Bilsky grade two.", "2", "Bilsky grade two"),
    ("Lytic metastasis at T7. Bilsky Ic.", "1c", "Bilsky Ic"),
    ("Lytic metastasis at T7. Grade 1b ESCC.", "1b", "Grade 1b ESCC"),
    ("Lytic metastasis at T7, grade 2 Bilsky.", "2", "grade 2 Bilsky"),
    ("Lytic metastasis at T7. Bilsky grade 0.", "0", "Bilsky grade 0"),
])
def test_a_stated_escc_grade_in_other_wordings(text, grade, words):
    r = extract(text)
    stated = [f for f in r.findings if f.concept == "escc_grade"]
    assert [(f.text, f.qualifiers.get("grade")) for f in stated] == [(words, grade)]
    assert r.prefill.escc_grade == grade


@pytest.mark.parametrize("text", ["Lytic metastasis at T7. Bilsky I.", "Lytic metastasis at T7. ESCC 1.",
                                  "Lytic metastasis at T7. Bilsky grade one."])
def test_grade_one_without_its_subgrade_is_not_prefilled(text):
    r = extract(text)
    assert [f.qualifiers.get("grade") for f in r.findings if f.concept == "escc_grade"] == ["1"]
    assert r.prefill.escc_grade is None


def test_a_lower_case_i_after_the_scale_is_not_a_grade():
    r = extract("Lytic metastasis at T7. ESCC i think low.")
    assert [f.qualifiers.get("grade") for f in r.findings if f.concept == "escc_grade"] == [None]


def test_each_prefilled_value_says_how_sure_the_reading_is():
    r = extract("FINDINGS: Lytic lesion of T7 with 30% loss of height.\n\nIMPRESSION: Lytic metastasis at T7.")
    assert (r.prefill.sins["lesion"].value, r.prefill.sins["lesion"].confidence) == ("lytic", "high")
    assert (r.prefill.sins["collapse"].value, r.prefill.sins["collapse"].confidence) == ("lt50", "high")
    assert r.prefill.sins["alignment"].value is None and r.prefill.sins["alignment"].confidence is None
    assert r.prefill.sins["level"].confidence is None  # a level is chosen, not read with a confidence
    only_impression = extract("FINDINGS: Abnormal marrow at T7.\n\nIMPRESSION: Lytic metastasis at T7.")
    assert (only_impression.prefill.sins["lesion"].value, only_impression.prefill.sins["lesion"].confidence) == \
        ("lytic", "moderate")
    assert 'from "Lytic metastasis" - moderate confidence: the impression only' in only_impression.to_text()
    disagree = extract("FINDINGS: Lytic metastasis at T7 with epidural tumour compressing the cord.\n\n"
                       "IMPRESSION: Lytic metastasis at T7, epidural tumour without cord compression.")
    cord = disagree.prefill.escc["cord_compressed"]
    assert (cord.value, cord.confidence) == (True, "moderate") and cord.note.startswith(
        "the findings section says so; the impression says otherwise")
    assert disagree.prefill.escc["epidural_disease"].confidence == "high"


@pytest.mark.parametrize("text, levels", [
    ("Lytic lesion at L3, dark on TSE T1 and fat-suppressed T2 bright.", ["L3"]),
    ("L2 vertebral body shows T1 hypointense marrow and T2 mixed signal.", ["L2"]),
    ("Lytic metastasis at T6 with intense enhancement on post-contrast fat-saturated T1.", ["T6"]),
    ("Lytic metastasis at L2. Diffuse enhancement on axial contrast-enhanced T1.", ["L2"]),
])
def test_sequence_names_in_radiologists_wording_are_not_levels(text, levels):
    assert extract(text).levels == levels


@pytest.mark.parametrize("text, field", [
    ("Lytic lesion at T9. At T9 there is neither epidural extension nor cord compression.", "epidural_disease"),
    ("Lytic lesion at T9. At T9 there is neither epidural extension nor cord compression.", "cord_compressed"),
    ("Lytic lesion at T9. Epidural tumour was not seen.", "epidural_disease"),
    ("Lytic lesion at T9. Epidural extension were not identified.", "epidural_disease"),
])
def test_negation_in_neither_nor_and_at_the_end_of_the_sentence(text, field):
    assert extract(text).prefill.escc[field].value is False


def test_a_revised_opinion_and_a_differential_list_are_not_diagnoses():
    r = extract("L1 lesion, at first reported as malignant, is in keeping with a typical haemangioma.")
    assert r.diagnoses == ["haemangioma"] and not r.prefill.applies.get("sins")
    r = extract("Focus of sclerosis at L4 differs from lymphoma or a sclerotic deposit; not like a metastasis.")
    assert r.diagnoses == [] and r.prefill.sins["lesion"].value == "blastic"


def test_a_metastasis_of_another_organ_is_not_a_spinal_diagnosis():
    r = extract("Adrenal metastasis. Liver metastases. T10 vertebral body normal.")
    assert r.diagnoses == [] and r.index_level is None


@pytest.mark.parametrize("text, diagnosis", [
    ("Benign (old) wedge fracture of T8 with 20% height loss.", "osteoporotic_fracture"),
    ("Paget disease of L3 with cortical thickening.", "paget_disease"),
    ("Osteonecrosis with intravertebral cleft at T12.", "osteoporotic_fracture"),
])
def test_benign_conclusions_explain_the_lesion_and_nothing_is_prefilled(text, diagnosis):
    r = extract(text)
    assert diagnosis in r.diagnoses and not r.prefill.applies.get("sins") and not r.prefill.applies.get("escc")


@pytest.mark.parametrize("words", ["soft tissue extending into the canal", "tumour occupying half of the canal",
                                   "extradural soft tissue", "soft tissue tumour in the anterior epidural space",
                                   "a soft tissue mass in the canal", "soft tissue that bulges into the ventral canal"])
def test_epidural_disease_in_other_words(words):
    assert extract(f"Lytic metastasis at T10 with {words}.").prefill.escc["epidural_disease"].value is True


def test_extract_eval_reports_negation_and_wrong_prefills(tmp_path):
    from spinemets.reports.evaluate import evaluate

    (tmp_path / "mini").mkdir()
    (tmp_path / "mini" / "a.txt").write_text("# source: a public case\nLytic metastasis at T7 with epidural tumour. "
                                             "No cord compression. Alignment is maintained.", encoding="utf-8")
    (tmp_path / "mini.gold.yaml").write_text(
        "a:\n  index_level: T7\n  levels: [T7]\n  diagnoses: [metastasis]\n  sins: {lesion: blastic}\n"
        "  escc: {epidural_disease: true, cord_compressed: false}\n", encoding="utf-8")
    r = evaluate("mini", data_dir=tmp_path)
    assert (r.negation.tp, r.negation.fp, r.negation.fn) == (1, 0, 0)
    # lytic read where the gold says blastic, and alignment filled where the gold says unknown: 2 of 4 wrong
    assert (r.prefill_accuracy.prefilled, r.prefill_accuracy.wrong) == (4, 2)
    assert r.prefill_accuracy.by_confidence == {"high": [4, 2]}
    assert "wrong pre-fills: 2 of 4 pre-filled SINS components and ESCC findings (0.500)" in r.to_text()
    # how each is wrong: another value than the gold (lytic for blastic), a component the gold leaves unknown
    assert r.prefill_accuracy.by_kind == {"contradicts": 1, "unstated": 1}
    assert "of which 1 give another value than the gold, 0 fill an instrument" in r.to_text()


def test_extract_eval_counts_a_prefill_for_a_report_the_gold_scores_nothing_for(tmp_path):
    from spinemets.reports.evaluate import evaluate

    (tmp_path / "mini").mkdir()
    (tmp_path / "mini" / "a.txt").write_text("# source: a public case\nLytic lesion at T7. No cord compression.",
                                             encoding="utf-8")
    (tmp_path / "mini.gold.yaml").write_text("a:\n  index_level: T7\n  levels: [T7]\n  diagnoses: []\n",
                                             encoding="utf-8")
    r = evaluate("mini", data_dir=tmp_path)
    assert r.prefill_accuracy.by_kind == {"not_scored": 2}
    assert r.as_dict()["wrong_prefill"]["by_kind"] == {"not_scored": 2}


@pytest.mark.parametrize("text", [
    "L4/5: degenerate disc. Band-like endplate marrow change on both sides of the disc, low on T1 and high on T2 and "
    "STIR - Modic type 1. No restricted diffusion in the marrow or the disc. No paravertebral or epidural soft "
    "tissue.\nIMPRESSION: Modic type 1 degenerative endplate change at L4/5. No features of discitis.",
])
def test_a_modic_band_and_normal_diffusion_are_not_a_lesion_to_score(text):
    # before: the band and "no restricted diffusion" counted as a lesion, and "no epidural soft tissue" pre-filled ESCC
    r = extract(text)
    assert not r.prefill.applies["sins"] and not r.prefill.applies["escc"]
    assert "degenerative disease" in r.prefill.why_not["escc"]


def test_a_lesion_beside_modic_change_is_still_scored():
    r = extract("Modic type 1 change at L4/5. Separate lytic metastasis at T10 with epidural extension.")
    assert r.prefill.applies["sins"] and r.prefill.escc["epidural_disease"].value is True


@pytest.mark.parametrize("text", [
    "Insufficiency fracture at T8, though a deposit cannot be fully excluded.",
    "Lesion at L2; metastasis cannot be completely ruled out.",
    "Metastasis at L2 cannot be excluded with certainty.",
    "Fracture at T12; an underlying metastasis is not entirely excluded.",
])
def test_a_hedge_with_an_adverb_leaves_the_diagnosis_uncertain(text):
    found = [f for f in extract(text).findings if f.concept == "diagnosis" and f.value == "metastasis"]
    assert found and all(f.context == "uncertain" for f in found), [(f.text, f.context) for f in found]


@pytest.mark.parametrize(("annotation", "message"), [
    ("sins: {alignment: de_novo_deformity}", "sins.alignment: 'de_novo_deformity' is not one of subluxation, deformity"),
    ("sins: {pain: mechanical}", "sins: unknown component 'pain'"),
    ("marrow: {adc: restricted}", "marrow.adc: 'restricted' is not one of hyperintense, hypointense, isointense"),
    ("marrow: {dwi: hyperintense}", "marrow.dwi: 'hyperintense' is not one of restricted, not_restricted"),
    ("marrow: {t3: hypointense}", "marrow: unknown sequence 't3'"),
    ("marrow: {crosses_disc_space: sometimes}", "marrow.crosses_disc_space: 'sometimes' (expected true or false)"),
    ("escc: {cord_touched: true}", "escc: cord_touched: True (expected one of"),
    ("escc_grade: '4'", "escc_grade: '4' is not one of 0, 1a, 1b, 1c, 2, 3"),
    ("fracture: {convex_posterior_border: yes}", "fracture: convex_posterior_border: True (expected a fracture feature"),
    ("diagnoses: [lymphoma]", "diagnoses: 'lymphoma' is not one of metastasis"),
])
def test_an_annotation_outside_the_vocabulary_is_an_error_naming_it(tmp_path, annotation, message):
    from spinemets.reports.evaluate import load_set

    (tmp_path / "mini").mkdir()
    (tmp_path / "mini" / "a.txt").write_text("Lytic metastasis at T7.", encoding="utf-8")
    (tmp_path / "mini.gold.yaml").write_text(f"a:\n  index_level: T7\n  {annotation}\n", encoding="utf-8")
    with pytest.raises(InvalidInputError) as err:
        load_set("mini", data_dir=tmp_path)
    assert f"mini.gold.yaml: a: {message}" in str(err.value)


@pytest.mark.parametrize("text", [
    "L5/S1: disc protrusion with slight posterior disc height loss. Vertebral body heights are preserved.",
    "Multilevel disc degeneration with loss of disc height at L4/5 and disc space narrowing at L5/S1.",
    "Severe canal stenosis at C4-5 with compression of the cord and intramedullary T2 hyperintensity from C4 to C6. "
    "No destructive lesion.",
])
def test_disc_height_and_cord_signal_are_not_a_vertebral_lesion(text):
    r = extract(text)
    assert r.index_level is None and not any(r.prefill.applies.values()), (r.index_level, r.prefill.applies)


def test_a_postoperative_infection_is_current_and_an_abscess_explains_what_it_compresses():
    r = extract("L4 and L5 are T1 hypointense and enhance, with 20% height loss of L5. "
                "Impression: postoperative L4-5 pyogenic discitis-osteomyelitis with an epidural abscess.")
    assert "discitis" in r.diagnoses and not r.prefill.applies["sins"] and not r.prefill.applies["escc"]
    r = extract("Posterior epidural abscess from T6 to T8 with cord compression and cord oedema.")
    assert not r.prefill.applies["escc"] and "benign" in r.prefill.why_not["escc"]
    r = extract("Lytic metastasis at T7 with an epidural abscess at T7 compressing the cord.")  # a neoplasm is stated
    assert r.prefill.applies["escc"]


def test_clear_posterior_elements_degenerative_facets_and_a_generic_caveat_are_not_findings():
    r = extract("Sclerotic metastasis at L1 occupying well under half of the body. The pedicles and posterior elements "
                "are clear.")
    assert r.prefill.sins["posterolateral"].value == "none"
    r = extract("No lytic or sclerotic lesion. Mild L4-5 facet degenerative change. CT is insensitive to marrow "
                "infiltration that has not yet destroyed trabecular bone.")
    assert r.index_level is None and r.levels == [] and not any(r.prefill.applies.values())


@pytest.mark.parametrize("text", ["No cord or conus compression.", "No cord/conus compression.",
                                  "No thecal sac or cord compression."])
def test_a_negation_that_opens_a_list_covers_the_state_of_its_last_finding(text):
    r = extract(f"Lytic metastasis at T12 with epidural tumour. {text}")
    assert r.prefill.escc["cord_compressed"].value is False


def test_a_negation_before_another_clause_does_not_reach_the_csf():
    r = extract("Epidural tumour at C6 contacts the cord without compressing it and CSF is preserved around the cord.")
    assert r.prefill.escc["csf_visible"].value is True and r.prefill.escc["cord_abutted"].value is True


def test_a_templated_collapse_none_with_the_share_of_the_body_involved():
    r = extract("T12: lytic lesion replacing more than half of the body. SINS components: lesion lytic; collapse none "
                "with >50% body involved.")
    assert r.prefill.sins["collapse"].value == "involved_no_collapse"  # before: >50% read as height lost (gt50)


@pytest.mark.parametrize("impression", [
    "Expansile lytic T9 lesion: hypervascular metastasis (thyroid, renal) or plasmacytoma.",
    "Destructive lesion at T9. Neoplasm likely - metastasis or myeloma.",
    "Destructive lesion at T9; a metastasis is most likely.",
    "Sclerotic lesion at T9; this is most likely a sclerotic prostate metastasis.",
])
def test_a_diagnosis_offered_as_one_of_two_or_as_most_likely_is_not_stated(impression):
    r = extract(impression)
    assert "metastasis" not in r.diagnoses and "myeloma" not in r.diagnoses, r.diagnoses
    assert r.prefill.applies["sins"]  # the lesion stays a suspected neoplasm: SINS still applies


def test_a_stated_diagnosis_beside_a_negated_alternative_stays_stated():
    r = extract("Lytic metastasis at T9. No fracture or cord compression.")
    assert r.diagnoses == ["metastasis"]


@pytest.mark.parametrize("text, index", [
    ("Epidural lymphoma from C4 to C7, maximal at C6, contacting the cord.", "C6"),
    ("Epidural tumour from T5 to T11 compresses the cord at T9 and T10, worst at T10.", "T10"),
    ("Lytic metastases at T2, T7 and T9; the largest at T7.", "T7"),
])
def test_the_worst_or_largest_level_is_the_index(text, index):
    assert extract(text).index_level == index


def test_a_cue_without_a_lesion_at_its_level_names_no_index():
    r = extract("No marrow replacing lesion. Negative for epidural tumor. Multilevel degenerative disc disease, most "
                "pronounced at L4-L5 with moderate spinal canal stenosis.")
    assert r.index_level is None and not r.prefill.applies["escc"]


@pytest.mark.parametrize("text, collapse", [
    ("Diffuse marrow infiltration replaces most of the L5 vertebral body. No loss of height.", "involved_no_collapse"),
    ("Metastasis at C6, where most of the body is involved; the C5/6 disc contains a small enhancing focus. "
     "No collapse.", "involved_no_collapse"),
    ("Small lytic lesion at T8. No collapse.", "none"),
    ("Lymphoma at L3, the whole body being replaced, without collapse.", "involved_no_collapse"),
    ("Metastasis at T12: the T12 body is entirely replaced but keeps its height.", "involved_no_collapse"),
    ("Mixed lesion occupying approximately 60% of the D12 body; no fracture.", "involved_no_collapse"),
    ("Sclerotic metastasis at T3; on CT the T3 body is densely sclerotic throughout. No vertebral collapse.",
     "involved_no_collapse"),
])
def test_the_share_of_the_body_involved_decides_a_collapse_that_is_absent(text, collapse):
    assert extract(text).prefill.sins["collapse"].value == collapse


@pytest.mark.parametrize("text", [
    "Expansile lytic lesion of T6. Small sheets of extraosseous soft tissue paravertebrally. No loss of vertebral height.",
    "Lytic metastasis at L2 with a small left pleural effusion. No collapse.",
    "Non-small cell lung cancer. Lytic lesion at L3. No collapse.",
    "Lytic lesion at T9 and a small disc protrusion at T9/10. No collapse.",
])
def test_a_size_word_about_something_else_does_not_decide_how_much_of_the_body_is_involved(text):
    # "small" sizes the soft tissue, an effusion, a disc or the cancer's cell type, not the lesion: the extent is
    # not stated, so a collapse that is absent stays unknown (before: "none", less than half of the body)
    pre = extract(text).prefill.sins["collapse"]
    assert pre.value is None and pre.note == "no collapse stated, but not how much of the body is involved"


@pytest.mark.parametrize("words", ["No epidural or paraspinal disease.", "No epidural or prevertebral soft tissue."])
def test_a_negated_pair_of_compartments_negates_epidural_disease(words):
    r = extract(f"Sclerotic metastasis at C2. {words}")
    assert r.prefill.escc["epidural_disease"].value is False and r.prefill.escc_grade == "0"


@pytest.mark.parametrize("words, absent", [
    ("The remaining thoracic vertebrae are normal in signal and no other deposit is seen.",
     {"other_spinal_metastases", "multiple_compression_fractures"}),
    ("No other vertebral abnormality.", {"other_spinal_metastases"}),
    ("The remaining vertebral heights are preserved.", {"multiple_compression_fractures"}),
    ("Other levels: no further fracture.", {"multiple_compression_fractures"}),
])
def test_nothing_elsewhere_is_read_as_the_absence_of_other_lesions_or_fractures(words, absent):
    r = extract(f"Pathological fracture of T5 due to a lytic metastasis, with 30% loss of height. {words}")
    stated = {k for k, v in r.prefill.fracture.items() if v.value == "absent"}
    assert absent <= stated, stated
    if "other_spinal_metastases" not in absent:
        assert r.prefill.fracture.get("other_spinal_metastases") is None or \
            r.prefill.fracture["other_spinal_metastases"].value is None


def test_a_finding_that_cannot_be_assessed_stays_unknown():
    r = extract("Lymphoma at T5 and T12 with epidural extension compressing the cord, more severely at T12. Without "
                "axial images the residual CSF around the cord cannot be assessed.")
    assert r.index_level == "T12"
    assert r.prefill.escc["csf_visible"].value is None and r.prefill.escc_grade is None  # 2 or 3: not decided


def test_a_query_mark_on_a_word_hedges_it():
    r = extract("58M, chronic low back pain. ?discitis. Modic type 1 change at L4/5.")
    assert "discitis" not in r.diagnoses and any(f.value == "discitis" and f.assertion == "uncertain"
                                                 for f in r.findings)


def test_ankylosing_spondylitis_is_not_an_infection_and_epidural_fat_is_not_a_lesion():
    r = extract("Transverse fracture through the C5-C6 disc space in ankylosing spondylitis.")
    assert "discitis" not in r.diagnoses and not r.prefill.applies["sins"]
    r = extract("Epidural lipomatosis from L4 to S1 narrows the thecal sac. No marrow lesion.")
    assert r.index_level is None and not any(r.prefill.applies.values())


def test_a_sequence_after_post_contrast_is_not_a_level_and_the_lesions_are_all_of_them():
    r = extract("Lytic metastasis at T9 with epidural tumour. Low T1, high T2 and STIR, enhancing on fat-sat "
                "post-contrast T1.")
    assert r.levels == ["T9"] and r.prefill.marrow["t1"].value == "hypointense"
    r = extract("Large lytic metastasis at T4 compressing the cord. Further smaller deposits at T2, T7 and L1. "
                "The lesions are low on T1 and high on STIR.")
    assert r.index_level == "T4"
    assert r.prefill.marrow["t1"].value == "hypointense" and r.prefill.marrow["stir"].value == "hyperintense"


@pytest.mark.parametrize("words, csf, grade", [
    ("compresses the cord at T9 and the CSF is effaced.", False, "3"),
    ("compresses the cord with effacement of the CSF around the cord.", False, "3"),
    ("compresses the cord; CSF is effaced on the right but a thin rim of CSF remains on the left.", True, "2"),
    ("compresses the cord with partial effacement of the ventral CSF.", None, None),
])
def test_csf_effaced_without_a_partial_word_leaves_no_csf_around_the_cord(words, csf, grade):
    r = extract(f"Lytic metastasis at T9; the epidural component {words}")
    assert r.prefill.escc["csf_visible"].value is csf and r.prefill.escc_grade == grade


def test_findings_that_argue_against_a_diagnosis_negate_it():
    r = extract("T11 lesion with an epidural mass compressing the cord. The normal discs argue against pyogenic "
                "infection.")
    assert "discitis" not in r.diagnoses and r.prefill.applies["escc"]


def test_a_clinical_question_to_exclude_a_disease_does_not_state_it():
    r = extract("Breast carcinoma, high risk. Exclude occult marrow infiltration. Normal vertebral body heights and "
                "alignment. No focal lesion. Conclusion: no MRI evidence of spinal metastatic disease.")
    assert not any(f.value == "malignancy" and f.assertion == "present" for f in r.findings)
    assert not any(r.prefill.applies.values())


@pytest.mark.parametrize("words, epidural", [
    ("a small posterior cement leak passes through a cortical defect into the ventral epidural space.", None),
    ("a disc fragment lies in the ventral epidural space.", None),
    ("tumour extends into the ventral epidural space.", True),
])
def test_what_lies_in_the_epidural_space_is_not_always_tumour(words, epidural):
    r = extract(f"Osteolytic T12 metastasis treated with vertebroplasty; {words}")
    assert r.prefill.escc["epidural_disease"].value is epidural


def test_a_cord_that_is_not_reached_is_not_abutted():
    r = extract("Lytic metastasis at C5. A mild posterior epidural soft tissue bulge effaces the ventral subarachnoid "
                "space; the cord is not reached.")
    assert r.prefill.escc["cord_abutted"].value is False


def test_a_facet_among_degenerative_findings_is_not_posterolateral_tumour():
    r = extract("Ill-defined marrow lesion at L4, possibly a metastasis. L4-5: marked facet hypertrophy with joint "
                "effusions; a degenerative synovial cyst lies anterior to the right facet.")
    assert r.prefill.sins.get("posterolateral") is None or r.prefill.sins["posterolateral"].value is None
    r = extract("Lytic metastasis at L4 extending into the right facet.")  # a lesion in the sentence: tumour
    assert r.prefill.sins["posterolateral"].value == "unilateral"


def test_csf_effaced_in_the_clause_after_a_compressed_cord():
    r = extract("T11: lytic metastasis with epidural extension compressing the cord; CSF effaced at T11.")
    assert r.prefill.escc["csf_visible"].value is False and r.prefill.escc_grade == "3"


def test_a_withdrawn_impression_and_a_contact_that_ended_are_not_stated():
    r = extract("Lytic lesion at T7. The original impression of metastatic disease is therefore withdrawn; "
                "final diagnosis: aggressive vertebral haemangioma.")
    assert "metastasis" not in r.diagnoses and "haemangioma" in r.diagnoses
    r = extract("Lytic metastasis at T9. Epidural tumour still indents the thecal sac but no longer contacts the cord.")
    assert r.prefill.escc["cord_abutted"].value is False


def test_a_schmorl_node_explains_the_lesion_without_being_a_level():
    r = extract("Acute Schmorl node at L3 with surrounding oedema; lucent defect of the endplate.")
    assert "schmorl_node" in r.diagnoses and not r.prefill.applies.get("sins")


def test_negation_stops_at_a_new_noun_phrase_and_signal_drops_in_verb_form():
    r = extract("Island in T10, not an osteoblastic metastasis - the lack of sclerosis on CT and the signal drop on "
                "opposed phase are reassuring.")
    assert r.prefill.marrow["opposed_phase"].value == "drop"
    r = extract("Focus at T10, moderately hypointense on T1. Signal drops on opposed-phase imaging.")
    assert r.prefill.marrow["opposed_phase"].value == "drop"


@pytest.mark.parametrize("text, collapse", [
    ("Lytic metastasis at L2 with anterior wedging - loss of height of roughly a quarter anteriorly.", "lt50"),
    ("Lytic metastasis at T12 with loss of vertebral body height of 60%.", "gt50"),
    ("Lytic metastasis at T12; the body is reduced to 70 % of its height.", "lt50"),
    ("Lytic metastasis at T12; the body is reduced to 30 % of its height.", "gt50"),
])
def test_height_lost_is_not_read_as_height_left(text, collapse):
    assert extract(text).prefill.sins["collapse"].value == collapse


@pytest.mark.parametrize("text, collapse", [
    # the earlier study's figure is not the height now (before: both read, "more and less than 50%", unknown)
    ("Lytic metastasis at L3, progression of the fracture, now 55% height loss (previously 30%).", "gt50"),
    ("L2 metastasis: vertebral height now reduced by about 55% (previously ~15%).", "gt50"),
    ("L2 metastasis with interval collapse, now 40% loss of height (prior: 10%).", "lt50"),
    # a figure with no earlier-study cue still counts, and 'height of C2 is reduced by 60%' is height lost
    ("Lytic metastasis of C2; the height of C2 is reduced by approx 60%.", "gt50"),
])
def test_a_figure_of_an_earlier_study_is_not_the_collapse_now(text, collapse):
    assert extract(text).prefill.sins["collapse"].value == collapse


def test_a_percent_cue_with_an_unknown_meaning_is_a_rules_error(tmp_path):
    from spinemets.errors import InvalidInputError
    from spinemets.knowledge.loader import load_kb
    from spinemets.reports.rules import load_rules

    f = tmp_path / "site.yaml"
    f.write_text("terms:\n  - {id: x, kind: percent_cue, meaning: later, words: [afterwards]}\n", encoding="utf-8")
    with pytest.raises(InvalidInputError, match="remaining, earlier"):
        load_rules(load_kb(), str(f))


def test_a_solitary_plasmacytoma_is_a_neoplasm_but_not_myeloma():
    r = extract("Solitary plasmacytoma of T9 with 30% collapse.")
    assert r.diagnoses == ["plasmacytoma"] and r.prefill.applies["sins"] and r.prefill.applies["escc"]


@pytest.mark.parametrize("sentence", ["The epidural mass enhances avidly.", "Paravertebral mass, hyperintense on T2."])
def test_the_signal_of_an_epidural_or_paravertebral_mass_is_not_the_marrows(sentence):
    r = extract(f"Lytic metastasis at T6. {sentence}")
    assert {k: v.value for k, v in r.prefill.marrow.items() if v.value} == {}


def test_a_less_favoured_or_initially_suggested_neoplasm_does_not_outweigh_the_final_benign_diagnosis():
    r = extract("L5: acute compression fracture with 20% loss of height.\n\nImpression: Acute osteoporotic compression "
                "fracture of L5. A pathological fracture is less favoured given the enhancement pattern.")
    assert not r.prefill.applies["sins"] and not r.prefill.applies["escc"]
    r = extract("Initial report suggested solitary plasmacytoma at L1. Final diagnosis: atypical vertebral haemangioma "
                "at L1.")
    assert "plasmacytoma" not in r.diagnoses and "haemangioma" in r.diagnoses


def test_both_the_anterior_and_posterior_elements_is_not_a_side():
    r = extract("Lytic metastasis at L2 involving both the anterior and posterior elements, with the left pedicle.")
    assert r.prefill.sins["posterolateral"].value == "unilateral"


def test_a_negation_covers_two_coordinated_states():
    r = extract("Lytic metastasis at L1. The conus is abutted ventrally by the bulging wall, without compression or "
                "deformity of the conus.")
    assert (r.prefill.escc["cord_abutted"].value, r.prefill.escc["cord_compressed"].value) == (True, False)
    r = extract("Lytic metastasis at T9 without epidural tumour, cord compressed by bone.")
    assert r.prefill.escc["cord_compressed"].value is True  # a new clause after the comma is not negated


def test_the_index_cue_takes_the_level_after_it_and_whole_spine_findings_carry_no_level():
    r = extract("Large enhancing extradural soft tissue mass at T5 and T6, bulkiest at T6, displacing the thecal sac.")
    assert r.index_level == "T6"
    r = extract("T5: pathological compression fracture with almost complete loss of anterior height.\n"
                "Mild compression fractures of T4 and T6.\n"
                "Mixed sclerotic and lytic deposits throughout the spine, extending into the posterior elements.")
    assert r.index_level == "T5"


@pytest.mark.parametrize("text, level", [
    ("L-5: acute compression fracture with 20 % loss of height.", "L5"),
    ("T 12: lytic lesion.", "T12"),
    ("Sagittal T 1 shows a lytic lesion at L3.", "L3"),  # a sequence written with a space is still a sequence
])
def test_dictated_levels_with_a_space_or_hyphen(text, level):
    r = extract(text)
    assert r.index_level == level and r.levels == [level]


def test_a_destroyed_segment_is_a_lesion_without_a_type():
    r = extract("A large mass destroys the S4 and S5 segments and the coccyx.")
    assert r.index_level == "S4" and r.prefill.sins["lesion"].value is None
    r = extract("Discitis at L2/3 with endplate destruction. L4 destroyed by infection; L2 fracture with 30% collapse.",
                level="L2")
    assert r.prefill.fracture.get("other_spinal_metastases") is None  # destruction is not a metastasis elsewhere


def test_degenerative_signal_is_not_the_lesions_marrow():
    r = extract("Lytic metastasis at L4, degenerative signal hyperintense on T2.")
    assert {k: v.value for k, v in r.prefill.marrow.items() if v.value} == {}


def test_normal_vertebrae_elsewhere_mean_no_other_lesion_or_fracture():
    r = extract("Pathological fracture of L2 with 40% collapse. Other vertebrae normal.")
    assert r.prefill.fracture["other_spinal_metastases"].value == "absent"
    assert r.prefill.fracture["multiple_compression_fractures"].value == "absent"
    r = extract("Pathological fracture of L2 with 40% collapse. No other fracture.")
    assert r.prefill.fracture["multiple_compression_fractures"].value == "absent"


@pytest.mark.parametrize("words", ["enhances avidly", "vivid enhancement", "marked enhancement"])
def test_intense_enhancement_in_other_words(words):
    r = extract(f"Pathological fracture of T9 with 40% collapse, hypointense on T1 and {words}.")
    assert r.prefill.fracture["intense_enhancement"].value == "present"


def test_a_lesion_confined_to_a_third_of_the_body_without_collapse_scores_none():
    r = extract("Abnormal marrow signal confined to the posterior third of the L4 body adjacent to the pedicle; "
                "no collapse. Lytic metastasis at L4.")
    assert r.prefill.sins["collapse"].value == "none"


def test_a_displaced_thecal_sac_is_deformed_but_a_displaced_cord_is_left_unread():
    r = extract("Lytic metastasis at T6 with epidural tumour displacing the thecal sac.")
    assert r.prefill.escc["thecal_sac_deformed"].value is True
    r = extract("Lytic metastasis at T6 with epidural tumour; the cord is displaced to the left.")
    assert r.prefill.escc["cord_abutted"].value is None and r.prefill.escc["cord_compressed"].value is None


@pytest.mark.parametrize("text, expected", [
    # signal stated for three sequences at once, in signal words, relative to disc, oedematous on STIR, TIRM
    ("T10 metastasis, low in signal on T1, T2 and STIR.", {"t1": "hypointense", "t2": "hypointense", "stir": "hypointense"}),
    # "high T2 and STIR" is not read for STIR: the same pattern misread "low T1 and STIR hyperintense" (safety first)
    ("T9 metastasis: low T1, high T2 and STIR.", {"t1": "hypointense", "t2": "hyperintense"}),
    ("There is a lesion in the T8 vertebral body which is low T1 and STIR hyperintense.",
     {"t1": "hypointense", "stir": "hyperintense"}),
    ("L3 metastasis, hypointense to disc on T1 and hyperintense on STIR.", {"t1": "hypointense", "stir": "hyperintense"}),
    ("Pathological fracture of L1 from a metastasis; the body is oedematous on STIR.", {"stir": "hyperintense"}),
    ("T3 metastasis with abnormal signal, low on T1 and high on TIRM.", {"t1": "hypointense", "stir": "hyperintense"}),
])
def test_marrow_signal_wordings_of_real_reports(text, expected):
    got = extract(text).prefill.inputs.get("marrow", {})
    assert {k: got.get(k) for k in expected} == expected, got


def test_a_cord_said_to_be_contacted_a_few_words_later_is_abutted():
    # "the cord is displaced backwards and contacted, but there is no cord indentation or compression" (grade 1c)
    r = extract("C6 metastasis with enhancing epidural soft tissue. The thecal sac is indented and the cord is "
                "displaced backwards and contacted, but there is no cord indentation or compression.")
    assert r.prefill.inputs["escc"].get("cord_abutted") is True
    assert r.prefill.inputs["escc"].get("cord_compressed") is False and r.prefill.escc_grade == "1c"


@pytest.mark.parametrize("text", [
    "T9 metastasis. Epidural tumour contacts the dorsal surface of the cord, which is not compressed.",
    "T9 metastasis. The mass indents the thecal sac; it touches the cord but does not compress it.",
    "T11 metastasis. The epidural component deforms the thecal sac and abuts the cord, which is not compressed.",
])
def test_a_cord_touched_and_then_denied_compression_is_grade_1c(text):
    # the denial comes after the cord (relative clause, "but does not compress it"): touched and not compressed
    r = extract(text)
    assert r.prefill.inputs["escc"]["cord_abutted"] is True and r.prefill.inputs["escc"]["cord_compressed"] is False
    assert r.prefill.escc_grade == "1c"


def test_a_cord_compressed_with_a_relative_clause_is_still_compressed():
    r = extract("T9 metastasis. Epidural tumour compresses the cord, which is displaced to the left.")
    assert r.prefill.inputs["escc"].get("cord_compressed") is True


def test_the_pipeline_computes_only_the_lexical_attributes_it_reads():
    # Dropping the unused lexical attributes (shape, prefix, suffix, URL/e-mail tests, ...) speeds up building the
    # ~38,000 phrase matchers; the attributes the reader and ConText use are still computed.
    from spacy.attrs import IDS

    from spinemets.reports.pipeline import get_pipeline
    from spinemets.reports.rules import load_rules

    nlp = get_pipeline(load_rules()).nlp
    kept = {name for name, i in IDS.items() if i in nlp.vocab.lex_attr_getters}
    assert kept == {"LANG", "LOWER", "NORM", "IS_ALPHA", "IS_DIGIT", "IS_LOWER", "IS_PUNCT", "IS_SPACE"}
    doc = nlp("T12 lesion, 3 cm.")
    assert [t.is_digit for t in doc] == [False, False, False, True, False, False]
    assert [t.is_punct for t in doc] == [False, False, True, False, False, True]


def _break_json(entry):
    entry.write_text("{not json", encoding="utf-8")


def _break_shape(entry):
    data = json.loads(entry.read_text(encoding="utf-8"))
    data["dx-metastasis"] = [{"not": "text"}]  # valid JSON, not phrases
    entry.write_text(json.dumps(data), encoding="utf-8")


@pytest.mark.parametrize("damage", [_break_json, _break_shape], ids=["not JSON", "wrong shape"])
def test_expanded_phrases_are_cached_as_data_and_rebuilt_when_broken(tmp_path, monkeypatch, damage):
    from spinemets.knowledge.loader import load_kb
    from spinemets.reports import rules

    monkeypatch.setenv("SPINEMETS_CACHE_DIR", str(tmp_path))
    kb = load_kb()
    rules._load_rules.cache_clear()
    try:
        first = rules._load_rules(kb, None, None)
        [entry] = tmp_path.glob("report-phrases-*.json")
        rules._load_rules.cache_clear()
        assert rules._load_rules(kb, None, None).target_phrases == first.target_phrases  # from the cache
        damage(entry)
        rules._load_rules.cache_clear()
        assert rules._load_rules(kb, None, None).target_phrases == first.target_phrases  # rebuilt, not trusted
        saved = json.loads(entry.read_text(encoding="utf-8"))["dx-metastasis"][0]
        assert saved == first.target_phrases["dx-metastasis"][0]  # and saved again whole
    finally:
        rules._load_rules.cache_clear()


@pytest.mark.parametrize("text", ["Lytic lesion at T12. DDx: aggressive vertebral haemangioma, metastasis, plasmacytoma.",
                                  "Lytic lesion at T12. Differential diagnoses: metastasis, myeloma."])
def test_a_differential_list_written_ddx_states_no_diagnosis(text):
    r = extract(text)
    assert r.diagnoses == [] and all(f.context == "uncertain" for f in r.findings if f.concept == "diagnosis")




# --- sixth-session dev set (realdev4): a denied list, a line label, the neoplastic index, a traumatic fracture ----


@pytest.mark.parametrize("text", [
    "Lytic lesion destroying the C2 body. The pedicles, laminae and spinous process of C2 are intact.",
    "Lytic lesion of the C2 body. The pedicles and laminae of C2 are preserved.",
])
def test_a_list_of_posterior_parts_denied_by_one_plural_state_is_denied_throughout(text):
    r = extract(text)
    parts = [f for f in r.findings if f.concept == "posterior"]
    assert len(parts) >= 2 and all(f.assertion == "negated" for f in parts)
    assert r.prefill.sins["posterolateral"].value != "bilateral"


@pytest.mark.parametrize("text", [
    pytest.param("Lytic lesion of the C2 body extending into the left pedicle, lamina intact.", marks=pytest.mark.xfail(
        strict=True, reason="known: the two-way 'intact' reaches back over the pedicle (left unknown, not wrong)")),
    "Lytic lesion of the C2 body. Tumour involves the left pedicle; the laminae are intact.",
    "Lytic lesion of the C2 body with tumour in the left pedicle and lamina. The facets are intact.",
])
def test_a_part_with_tumour_is_not_denied_by_a_state_of_another_part(text):
    r = extract(text)
    assert r.prefill.sins["posterolateral"].value == "unilateral"


def test_a_part_named_as_the_label_of_a_line_is_not_a_finding_of_its_own():
    text = ("MRI lumbar spine. L1 lytic metastasis with 30% height loss.\n"
            "- Pedicles: abnormal low T1 signal extends into the left pedicle; the right pedicle is normal.\n")
    r = extract(text)
    assert r.prefill.sins["posterolateral"].value == "unilateral"
    # a label that is the only mention still counts ("Pedicles: involved on both sides")
    both = extract("MRI lumbar spine. L1 lytic metastasis.\n- Pedicles: involved on both sides.\n")
    assert both.prefill.sins["posterolateral"].value == "bilateral"


def test_the_index_level_is_the_neoplasm_not_a_fracture_the_report_favours_as_benign():
    text = ("PET-CT. T12: new compression fracture with about 30% height loss, no lytic destruction.\n"
            "L4: new FDG-avid lytic lesion extending into the right pedicle. No fracture of L4.\n"
            "Conclusion: lytic L4 lesion consistent with an osseous metastasis. T12 compression fracture, favoured "
            "to be a benign osteoporotic fracture.")
    r = extract(text)
    assert r.index_level == "L4"
    assert r.prefill.sins["collapse"].value != "lt50"  # the T12 height loss is not the metastasis's
    # without a neoplasm named at another level, the fracture stays the index
    alone = extract("T12 compression fracture with 30% height loss, favoured to be osteoporotic. L4 is normal.")
    assert alone.index_level == "T12"


@pytest.mark.parametrize("text,applies", [
    ("CT: acute traumatic T11 burst fracture with about 50% height loss and retropulsion after a fall; posterior "
     "elements intact. Mild kyphosis.", False),
    ("CT: T11 burst fracture with retropulsion. Lytic destruction of the body, suspicious for metastasis.", True),
    ("CT: traumatic T11 fracture after a fall, and a lytic metastasis destroying the T11 body.", True),
])
def test_a_fracture_put_down_to_trauma_alone_gets_no_sins(text, applies):
    r = extract(text)
    assert r.prefill.applies["sins"] is applies, r.prefill.why_not.get("sins")


def _scoped_set(tmp_path, scope: str | None):
    (tmp_path / "mini").mkdir()
    (tmp_path / "mini" / "a.txt").write_text(
        "T12 lytic metastasis with 30% height loss. No epidural tumour. Fluid sign present.", encoding="utf-8")
    (tmp_path / "mini.gold.yaml").write_text(
        "# fracture: only epidural_mass and lumbar_location were recorded (fluid_sign too, as a check)\n"
        "a:\n  index_level: T12\n  fracture: {epidural_mass: absent, lumbar_location: absent}\n", encoding="utf-8")
    if scope is not None:
        (tmp_path / "mini.scope.yaml").write_text(scope, encoding="utf-8")


def test_a_set_scored_on_the_fracture_features_its_annotators_recorded(tmp_path):
    from spinemets.reports.evaluate import evaluate

    _scoped_set(tmp_path, None)
    every = evaluate("mini", data_dir=tmp_path)
    assert "fluid_sign=present" in {x for m in every.misses if m.field == "fracture" for x in m.predicted}
    assert every.fracture_scope is None and "fracture features scored" not in every.to_text()
    (tmp_path / "mini.scope.yaml").write_text(
        "fracture_features: [epidural_mass, lumbar_location]\nstated_in: the gold header\n", encoding="utf-8")
    scoped = evaluate("mini", data_dir=tmp_path)
    assert scoped.score("fracture").fp == 0 and scoped.score("fracture").tp == 2
    assert ("fracture features scored: the 2 this set's annotators recorded (epidural_mass, lumbar_location); 1 "
            "predicted values of other features were not scored") in scoped.to_text()
    assert scoped.as_dict()["fracture_scope"] == ["epidural_mass", "lumbar_location"]
    assert scoped.as_dict()["unscored"] == scoped.unscored == 1


@pytest.mark.parametrize("scope,message", [
    ("fracture_features: [epidural_mass]\n", "expected fracture_features (a list of rows) and stated_in"),
    ("fracture_features: []\nstated_in: x\n", "expected fracture_features (a list of rows) and stated_in"),
    ("fracture_features: [fluid_sine]\nstated_in: x\n", "'fluid_sine' is not a fracture feature"),
    ("fracture_features: [epidural_mass, paraspinal_mass]\nstated_in: x\n",
     "'paraspinal_mass' is not named in the header of mini.gold.yaml"),
    ("fracture_features: [fluid_sign]\nstated_in: x\n",
     "mini.gold.yaml: a: epidural_mass=absent is outside the set's declared fracture features"),
])
def test_a_bad_scope_file_is_an_error_naming_it(tmp_path, scope, message):
    from spinemets.reports.evaluate import evaluate

    _scoped_set(tmp_path, scope)
    with pytest.raises(InvalidInputError) as err:
        evaluate("mini", data_dir=tmp_path)
    assert message in str(err.value)


@pytest.mark.parametrize("sentence", [
    "No further vertebral lesion from T11 to S1.", "No other lytic or sclerotic lesion is seen in the imaged skeleton.",
    "No other osseous metastasis identified.", "No other suspicious osseous lesion.",
    "No other spinal lesion.", "No additional bone lesions.",
])
def test_lesions_denied_elsewhere_in_any_words_give_no_other_spinal_metastases(sentence):
    r = extract(f"L2 lytic metastasis with a pathological fracture and 20% height loss. {sentence}")
    assert r.prefill.fracture["other_spinal_metastases"].value == "absent"
    assert r.levels == ["L2"]


def test_metastases_named_at_other_levels_count_those_levels_and_the_feature():
    r = extract("Metastatic collapse of D4 with epidural extension causing cord compression. "
                "Other skeletal metastases at D9, L2 and S1.")
    assert r.index_level == "T4" and r.levels == ["T4", "T9", "L2", "S1"]
    assert r.prefill.fracture["other_spinal_metastases"].value == "present"
    r = extract("Sclerotic lesions in L1 and L2 with a 20% wedge fracture of L2. Further sclerotic foci in S1.")
    assert "S1" in r.levels and r.prefill.fracture["other_spinal_metastases"].value == "present"


# --- second review of the session's rules: each probe that had turned a value wrong --------------------------------


def test_a_part_with_tumour_opening_the_clause_is_not_denied_by_the_parts_after_it():
    r = extract("L3 pathological fracture with 40% height loss from a lytic metastasis. Tumour extends into the left "
                "pedicle, the lamina and spinous process are intact.")
    assert r.prefill.fracture["pedicle_involvement"].value == "present"
    assert r.prefill.sins["posterolateral"].value == "unilateral"


@pytest.mark.parametrize("line", ["- Pedicles: both expanded by tumour, the left pedicle more than the right.",
                                  "Pedicles: infiltrated bilaterally (left pedicle > right)."])
def test_a_label_whose_line_puts_the_part_on_both_sides_keeps_both(line):
    r = extract(f"L3 lytic metastasis.\n{line}\n")
    assert r.prefill.sins["posterolateral"].value == "bilateral"


@pytest.mark.parametrize("hedge", [
    "though an underlying metastasis cannot be excluded",
    pytest.param("osteoporotic versus pathological", marks=pytest.mark.xfail(strict=True, reason=(
        "known: a bare 'pathological' after 'versus' is not read, so the stated metastasis elsewhere becomes the index; "
        "its own values are right for its level, the open fracture is not pre-filled"))),
])
def test_a_fracture_whose_cause_is_left_open_stays_the_index(hedge):
    r = extract(f"Known breast cancer. T12 fracture with 40% height loss, favoured osteoporotic, {hedge}. "
                "Sclerotic metastasis at L4.")
    assert r.index_level == "T12" and r.prefill.sins["collapse"].value == "lt50"


@pytest.mark.parametrize("sentence", ["Another focus of Modic type 1 change at L4/5.",
                                      "Other foci at T8 and T10 are typical haemangiomas.",
                                      "No other abnormality in the upper abdomen.",
                                      "Other metastases in the liver and lungs."])
def test_other_findings_that_are_not_spinal_metastases_set_nothing(sentence):
    r = extract(f"L2 lytic metastasis with a pathological fracture and 20% height loss. {sentence}")
    assert r.prefill.fracture.get("other_spinal_metastases") is None or r.prefill.fracture["other_spinal_metastases"].value is None
    assert "L4" not in r.levels and "L5" not in r.levels


def test_metastases_named_elsewhere_are_read_as_one_finding_with_their_levels():
    r = extract("L2 lytic metastasis with a pathological fracture and 20% height loss. "
                "Other skeletal metastases at T9 and S1.")
    other = [f for f in r.findings if f.concept == "other_lesions"]
    assert [f.qualifiers.get("levels_named") for f in other] == [["T9", "S1"]]
    assert r.levels == ["T9", "L2", "S1"] and "metastasis" in r.diagnoses


def test_a_fracture_dislocation_keeps_its_subluxation():
    r = extract("T12 fracture-dislocation with 60% height loss through an expansile lytic lesion, likely pathological.")
    assert r.prefill.applies["sins"] and r.prefill.sins["alignment"].value == "subluxation"


def test_a_primary_named_after_metastases_elsewhere_does_not_take_them_to_another_organ():
    r = extract("L2 lytic metastasis with a pathological fracture and 20% height loss. "
                "Other skeletal metastases at T9 and S1 from the known prostate cancer.")
    assert r.prefill.fracture["other_spinal_metastases"].value == "present" and r.levels == ["T9", "L2", "S1"]
    r = extract("L2 lytic metastasis with a pathological fracture. No other bone lesion or paraspinal soft tissue mass.")
    assert r.prefill.fracture["other_spinal_metastases"].value == "absent"


def test_a_scope_row_must_be_named_as_a_word_of_the_header_not_inside_another(tmp_path):
    from spinemets.reports.evaluate import evaluate

    _scoped_set(tmp_path, "fracture_features: [epidural_mass]\nstated_in: x\n")
    (tmp_path / "mini.gold.yaml").write_text(
        "# fracture: only encasing_epidural_mass was recorded\na:\n  index_level: T12\n", encoding="utf-8")
    with pytest.raises(InvalidInputError) as err:
        evaluate("mini", data_dir=tmp_path)
    assert "'epidural_mass' is not named in the header of mini.gold.yaml" in str(err.value)


@pytest.mark.parametrize("text, collapse", [
    # a height loss in a sentence about discs is the disc's: not a vertebral collapse
    ("Lytic lesion at L5. All lumbar discs are desiccated, with moderate loss of height at L5-S1.", None),
    ("Sclerotic metastasis at L4. Loss of height of the L4/5 disc.", None),
    # the vertebral body named, or no disc named: a collapse
    ("Lytic lesion at L5. The L5 vertebral body shows moderate loss of height; the discs are preserved.", "lt50"),
    ("Lytic lesion at T9 with moderate loss of height.", "lt50"),
])
def test_a_height_loss_in_a_sentence_about_discs_is_not_a_collapse(text, collapse):
    assert extract(text).prefill.sins["collapse"].value == collapse


@pytest.mark.parametrize("text, levels", [
    # T1-bright fatty marrow after radiotherapy is no abnormal level; the lesion counts by its own words
    ("Uniformly high T1 marrow signal from T8 to T12 in keeping with post-radiotherapy fatty marrow. Lytic "
     "metastasis at L2.", ["L2"]),
    # endplate signal beside Modic change is degenerative
    ("Modic type 1 change at L4-5 with low T1 and high STIR endplate signal. Sclerotic metastasis at T10.", ["T10"]),
    # cord oedema and root enhancement span cord levels, not vertebrae
    ("Lytic metastasis at T9 with epidural tumour compressing the cord. Cord oedema from T8 to T10.", ["T9"]),
    ("Lytic lesion at L3. Leptomeningeal enhancement along the cauda equina from L1 to S1.", ["L3"]),
])
def test_levels_count_bone_findings_not_fat_modic_or_cord_signal(text, levels):
    assert extract(text).levels == levels


def test_cord_oedema_is_not_the_lesions_marrow_signal():
    r = extract("Lytic metastasis at T9. The spinal cord shows T2 hyperintense oedema at T9.")
    assert "t2" not in r.prefill.marrow or r.prefill.marrow["t2"].value is None
    r = extract("Lytic metastasis at T9 which is T2 hyperintense.")
    assert r.prefill.marrow["t2"].value == "hyperintense"


@pytest.mark.parametrize("text, deformed", [
    ("Lytic lesion at L4. No epidural extension; thecal sac and roots unaffected.", False),
    ("Lytic lesion at L4 with epidural tumour; the thecal sac is of normal calibre.", False),
    ("Lytic lesion at L4 deforming the thecal sac; the roots are unaffected.", True),
])
def test_a_thecal_sac_said_to_be_unaffected_is_not_deformed(text, deformed):
    assert extract(text).prefill.escc["thecal_sac_deformed"].value is deformed


def test_other_lesions_denied_in_a_coordinated_list_are_absent():
    r = extract("Lytic metastasis at T9 with collapse. No other marrow-replacing or suspicious osseous lesion in the "
                "thoracic or lumbar spine.")
    assert r.prefill.fracture["other_spinal_metastases"].value == "absent"


@pytest.mark.parametrize("text", [
    "T9 pathological fracture. The T9 marrow is entirely replaced by low T1 signal.",
    "L1 collapse. The normal T1-bright marrow is completely replaced by low signal.",
    # ("low T1 signal throughout" was read too, until the second review found "throughout the superior third")
    "T7: severe collapse of the vertebral body. Entire T7 body low T1, high STIR.",
])
def test_diffuse_low_t1_signal_in_the_words_reports_use(text):
    assert extract(text).prefill.fracture["diffuse_low_t1_signal"].value == "present"


@pytest.mark.parametrize("text, convex", [
    # (a convex border six words after the wall was read too, until the second review found "posterior margin
    # intact, the adjacent disc bulging": the reach is back to five words)
    ("T7 collapse. Post border convex into canal.", "present"),
    ("T7 collapse. The posterior wall is straight.", "absent"),
])
def test_a_convex_posterior_border_said_a_few_words_later_or_abbreviated(text, convex):
    assert extract(text).prefill.fracture["convex_posterior_border"].value == convex


@pytest.mark.parametrize("text, abutted, compressed", [
    ("L1 metastasis. The epidural component deforms the thecal sac and abuts the conus, which is not compressed; CSF "
     "visible around the conus.", True, False),
    ("C5 collapse indenting the ventral thecal sac. The cord is not contacted or compressed and is normal in signal.",
     False, False),
])
def test_the_conus_and_a_cord_neither_contacted_nor_compressed(text, abutted, compressed):
    escc = extract(text).prefill.escc
    assert (escc["cord_abutted"].value, escc["cord_compressed"].value) == (abutted, compressed)


def test_a_bare_adverb_or_a_canal_phrase_does_not_make_a_compartment():
    # second look at the session's last rules: "paravertebrally" and "soft tissue component in the canal" were read
    # as tumour compartments whatever their subject (oedema, effusion, nodes, a disc extrusion); both withdrawn
    for text in ("Acute compression fracture of L2 with 30% height loss. Soft tissue oedema paraspinally; no mass.",
                 "Acute compression fracture of T10. Small bilateral pleural effusions layering paravertebrally."):
        f = extract(text).prefill.fracture
        assert "paraspinal_mass" not in f or f["paraspinal_mass"].value != "present"
    r = extract("Compression fracture of L1 with 30% collapse. The pedicles are normal. Fluid in the facet joints.")
    assert "pedicle_involvement" not in r.prefill.fracture or r.prefill.fracture["pedicle_involvement"].value != "present"


@pytest.mark.parametrize("text, levels, collapse, sac", [
    # second review: each lost a real finding or gained a wrong one with the first version of the session's rules
    ("Epidural soft tissue at L1 narrowing the thecal sac, nerve roots spared.", ["L1"], None, True),
    ("Cord compressed at T8 by a mass, which is T1 hypointense and enhancing, extending from T7 to T9.",
     ["T7", "T8", "T9"], None, None),
    ("Tumour encases the cauda equina at L3, with abnormal low T1 signal at L2, L3 and L4.", ["L2", "L3", "L4"], None,
     None),
    ("L2 metastasis. Moderate loss of height at L2 with intact intervertebral discs.", ["L2"], "lt50", None),
    ("Lytic lesion at T9. Height loss at T9 of approximately 40 percent, the adjacent discs unremarkable.", ["T9"],
     "lt50", None),
    ("Multilevel degenerative change, with abnormal low T1 and high STIR signal throughout the T12 and L1 vertebral "
     "bodies.", ["T12", "L1"], None, None),
    ("Melanoma. Multiple T1 hyperintense foci at T4, T7 and L1 suspicious for melanotic metastases.", ["T4", "T7", "L1"],
     None, None),
])
def test_second_review_findings_are_kept(text, levels, collapse, sac):
    r = extract(text)
    assert r.levels == levels
    assert r.prefill.sins["collapse"].value == collapse if "collapse" in r.prefill.sins else collapse is None
    if sac is not None:
        assert r.prefill.escc["thecal_sac_deformed"].value is sac


@pytest.mark.parametrize("text, feature", [
    ("T12 compression fracture. Low T1 signal throughout the superior third of the body, sparing the rest.",
     "diffuse_low_t1_signal"),
    ("L4 fracture; posterior margin intact, the adjacent disc bulging.", "convex_posterior_border"),
])
def test_a_partial_or_neighbouring_finding_is_not_a_malignant_fracture_sign(text, feature):
    assert extract(text).prefill.fracture.get(feature) is None or extract(text).prefill.fracture[feature].value != "present"


def test_paraspinal_and_epidural_tissue_in_one_phrase_sets_both():
    r = extract("L1 collapse with confluent left paraspinal and ventral epidural soft tissue extension.")
    f = r.prefill.fracture
    assert (f["paraspinal_mass"].value, f["epidural_mass"].value) == ("present", "present")
    assert r.prefill.escc["epidural_disease"].value is True


@pytest.mark.parametrize("text, levels", [
    ("Lytic metastasis at T9, T2 hyperintense.", ["T9"]),
    ("Lytic metastasis at T9, T1 hypointense and T2 hyperintense.", ["T9"]),
    ("Sclerotic metastases at T1, T2 and T3.", ["T1", "T2", "T3"]),
    # second look: a level followed by other words stays a level
    ("Known metastases at C7 and T1 post radiotherapy, stable.", ["C7", "T1"]),
    ("Metastatic deposits at C7, T1 and T2 bright on STIR.", ["C7", "T1", "T2"]),
    ("FINDINGS:\nLytic metastases at T11, T12 and T1\nAxial images show no epidural disease.", ["T1", "T11", "T12"]),
])
def test_a_sequence_at_the_end_of_a_level_list_is_not_a_level(text, levels):
    assert extract(text).levels == levels


@pytest.mark.parametrize("hedge", ["may be involved", "is possibly involved", "might be involved", "may be infiltrated"])
def test_a_hedge_after_the_part_leaves_its_involvement_unknown(hedge):
    # "the left pedicle may be involved" was read as involvement (a definite pre-fill from a hedge)
    r = extract(f"Compression fracture of T11. The left pedicle {hedge}.")
    assert "pedicle_involvement" not in r.prefill.fracture or r.prefill.fracture["pedicle_involvement"].value is None
    assert r.prefill.sins["posterolateral"].value is None
    assert extract("Compression fracture of T11. The left pedicle is involved.").prefill.sins["posterolateral"].value \
        == "unilateral"


@pytest.mark.parametrize("text", [
    "L1 sclerotic focus with attenuation above the published thresholds for metastasis (mean >885 HU, maximum "
    ">1060 HU) - in keeping with a bone island rather than an osteoblastic metastasis.",
    "Sclerotic focus in T9 below the CT cut-off for metastasis; typical bone island.",
])
def test_a_threshold_named_for_a_diagnosis_does_not_state_it(text):
    # before: "thresholds for metastasis" was read as a metastasis, and a bone island got a SINS pre-fill
    r = extract(text)
    assert r.diagnoses == ["bone_island"] and not r.prefill.applies["sins"]


@pytest.mark.parametrize("text", [
    "Tuberculous spondylitis of L2, disc-sparing, with a psoas cold abscess.",
    "Osteomyelitis of the T10 body sparing the adjacent discs.",
    "In keeping with brucellar spondylitis at T8-T9, without disc involvement.",
])
def test_vertebral_osteomyelitis_without_the_disc_is_an_infection_not_discitis(text):
    # before: read as discitis, which the annotation guides reserve for infection of the disc
    r = extract(text)
    assert "discitis" not in r.diagnoses and "spinal_infection" in r.diagnoses
    assert not r.prefill.applies["sins"]  # an infection is not a lesion SINS scores


def test_discitis_is_still_discitis():
    r = extract("L4-5 spondylodiscitis with an epidural abscess.")
    assert "discitis" in r.diagnoses and not r.prefill.applies["sins"]


@pytest.mark.parametrize("text, uncertain", [
    ("Lytic lesion at T7. Metastases from an occult primary are most likely; myeloma and lymphoma are differentials.",
     {"metastasis", "myeloma", "lymphoma"}),
    ("Lytic lesion at L2; lymphoma and myeloma are in the differential. Recommend CT.", {"lymphoma", "myeloma"}),
])
def test_diagnoses_named_as_differentials_are_uncertain(text, uncertain):
    r = extract(text)
    assert r.diagnoses == [] and uncertain <= set(r.uncertain_diagnoses)


@pytest.mark.parametrize("text", ["Lytic lesion at L2. Myeloma screen advised.",
                                  "Destructive lesion of T11; CT-guided biopsy and myeloma work-up recommended."])
def test_a_myeloma_screen_is_a_test_not_myeloma(text):
    r = extract(text)
    assert "myeloma" not in r.diagnoses + r.uncertain_diagnoses


def test_no_cauda_equina_compression_says_nothing_of_the_thecal_sac():
    assert extract("L4 metastasis. No cauda equina compression.").prefill.escc["thecal_sac_deformed"].value is None


@pytest.mark.parametrize("text", [
    "Mildly increased uptake at the lower lumbar facet joints bilaterally (L4/5, L5/S1), with a degenerative pattern.",
    "Mildly increased uptake in the L4/5 facet joints bilaterally, of degenerative pattern.",
])
def test_uptake_with_a_degenerative_pattern_is_no_lesion(text):
    r = extract(text)
    assert r.levels == [] and r.index_level is None
    assert not r.prefill.applies.get("sins")  # no lesion to score, so no facet involvement pre-filled


def test_a_level_list_with_asides_keeps_every_level():
    r = extract("Spine: multiple punched-out osteolytic lesions: T4 (6 mm), T9 (9 mm), L1 (7 mm), L3 (22 mm) and "
                "L5 (5 mm).")
    assert set(r.levels) == {"T4", "T9", "L1", "L3", "L5"}  # before: T4 only
    assert set(extract("Metastases T5-T8 (T7 spared).").levels) == {"T5", "T6", "T8"}


@pytest.mark.parametrize("text", [
    "Marrow-replacing lesions at L2, L3 (largest) and L5 consistent with metastases from prostate carcinoma, occult "
    "on bone scan (pre-osteoblastic phase).",
    "Metastasis at L4 in the preosteoblastic phase, not yet visible on CT.",
])
def test_a_pre_osteoblastic_phase_is_not_a_blastic_lesion(text):
    assert extract(text).prefill.sins["lesion"].value is None


def test_degenerative_uptake_is_no_lesion_even_when_metastasis_is_the_question():
    r = extract("BONE SCAN\nClinical: breast cancer, ?metastatic disease.\nFindings: mildly increased uptake in the L4/5 "
                "facet joints bilaterally, of degenerative pattern.\nConclusion: no scintigraphic evidence of skeletal "
                "metastases. Degenerative uptake at the L4/5 facets.")
    assert not r.prefill.applies["sins"] and not r.prefill.applies["escc"]  # before: posterolateral 'bilateral'


def test_differentials_named_after_a_finding_leave_the_finding_stated():
    r = extract("Lytic lesion of T9 extending into the left pedicle; metastasis and myeloma are the differentials.")
    assert r.prefill.sins["posterolateral"].value == "unilateral" and r.prefill.sins["lesion"].value == "lytic"
    assert r.diagnoses == [] and {"metastasis", "myeloma"} <= set(r.uncertain_diagnoses)


@pytest.mark.parametrize("text", [
    "Incidental 2 cm left adrenal lesion at the level of T12. The vertebrae are normal.",
    "Right lower lobe lung lesion abutting the T9 vertebral body without bone destruction.",
    "Increased uptake in the left kidney at the level of L2 (physiological).",
    "Comparison is made with the PET of 2022, which showed avid foci at T5 and L2. Today no avid bone lesion.",
])
def test_a_lesion_of_another_organ_or_a_prior_study_marks_no_level(text):
    # a generic 'lesion / focus / uptake' row was tried and withdrawn after the second review: it read these as levels
    r = extract(text)
    assert r.levels == [] and not r.prefill.applies.get("sins")


def test_a_rules_file_can_set_a_rows_index_weight_within_bounds(tmp_path):
    from spinemets.errors import InvalidInputError
    from spinemets.knowledge.loader import load_kb
    from spinemets.reports.rules import load_rules

    f = tmp_path / "site.yaml"
    f.write_text("targets:\n  - {id: x, concept: lesion, value: odd, phrases: [odd thing], index_weight: 9}\n",
                 encoding="utf-8")
    with pytest.raises(InvalidInputError, match="index_weight"):
        load_rules(load_kb(), str(f))


@pytest.mark.parametrize("text, value", [
    # both pedicles spared is 'none' (read so by the real-style sets' annotators; a first try was withdrawn after a
    # review found one-sided statements read as 'none': a side named with it now leaves the component unknown)
    ("Lytic metastasis at T3. The pedicles are spared.", "none"),
    ("Lytic metastasis at T9. The pedicles are unremarkable on the left, infiltrated on the right.", None),
    ("Lytic metastasis at T3. Pedicles intact. Tumour extends into the left facet joint.", "unilateral"),
])
def test_spared_pedicles_and_one_sided_statements(text, value):
    assert extract(text).prefill.sins["posterolateral"].value == value


@pytest.mark.parametrize("text, value", [
    ("Lytic metastasis at L2. Alignment nl.", "normal"),
    ("Lytic metastasis at L2. No listhesis.", None),  # no subluxation says nothing of a deformity
    ("Lytic metastasis at L2. Alignment is not anatomic.", None),  # "anatomic" was tried as normal and withdrawn
    ("Lytic metastasis at L4. No progression of the known grade 1 anterolisthesis of L4 on L5.", None),
])
def test_alignment_in_shorthand(text, value):
    assert extract(text).prefill.sins["alignment"].value == value


def test_no_suspicious_marrow_lesion_is_a_negation():
    # before: "suspicious marrow lesion" was one phrase that the negation did not reach; a normal study got SINS
    r = extract("Bone marrow signal is normal throughout; no suspicious marrow lesion.")
    assert not r.prefill.applies["sins"] and r.levels == []


@pytest.mark.parametrize("text, index, lesion", [
    # an aside that says what the level has belongs to that level alone (second review)
    ("Metastases at T4 (lytic) and T9 (sclerotic). Pathological fracture of T9.", "T9", "blastic"),
    ("Known myeloma. Lesions at T4 (sclerotic post treatment), T9 (lytic) and L1 (lytic). T9 collapse 70%.",
     "T9", "lytic"),
])
def test_an_aside_with_a_finding_ends_the_level_list(text, index, lesion):
    r = extract(text)
    assert (r.index_level, r.prefill.sins["lesion"].value) == (index, lesion)


def test_an_aside_with_a_finding_does_not_carry_to_the_next_level():
    r = extract("Epidural tumour at T4 (cord abutted) and T9 (cord compressed).")
    assert r.index_level == "T4" and r.prefill.escc["cord_compressed"].value is None  # T9's compression is not T4's


@pytest.mark.parametrize("text, diagnosis", [
    ("Lesion at T11 fulfils the MRI criteria for a typical haemangioma.", "haemangioma"),
    ("Sclerotic focus at L2 meeting criteria for a bone island.", "bone_island"),
])
def test_meeting_the_criteria_for_a_diagnosis_states_it(text, diagnosis):
    r = extract(text)
    assert diagnosis in r.diagnoses and not r.prefill.applies["sins"]


def test_loss_of_definition_of_a_pedicle_is_still_a_sign():
    assert extract("Loss of definition of the left T10 pedicle due to metastasis.").prefill.sins[
        "posterolateral"].value == "unilateral"


@pytest.mark.parametrize("text", ["Lytic metastasis L1: height loss unchanged from prior (60%).",
                                  "Lytic metastasis L1, now 55% height loss (previously 30%)."])
def test_the_current_figure_after_a_prior_word_in_brackets_is_read(text):
    assert extract(text).prefill.sins["collapse"].value == "gt50"


def test_a_benign_diagnosis_elsewhere_does_not_explain_an_aggressive_lesion():
    r = extract("Chronic osteoporotic wedge fracture of L1. Destructive lytic lesion at T9 with epidural extension "
                "compressing the cord; metastasis is in the differential.")
    assert r.index_level == "T9" and r.prefill.applies["sins"] and r.prefill.sins["lesion"].value == "lytic"
    assert r.prefill.escc["epidural_disease"].value is True and r.prefill.escc["cord_compressed"].value is True


@pytest.mark.parametrize("text", [
    # without an aggressive sign at the index level, a benign diagnosis named elsewhere still explains it (its levels
    # may be read incompletely); found by the third look
    "Lytic lesion in the T11 vertebral body. This is an atypical haemangioma, as seen at T12.",
    "Osteoporotic compression fracture of L1. Small well-defined lytic lesion at T10 with a sclerotic rim, benign "
    "appearances.",
])
def test_a_plain_lytic_lesion_beside_a_benign_diagnosis_is_not_prefilled(text):
    assert not extract(text).prefill.applies["sins"]


def test_a_benign_fracture_whose_levels_are_read_incompletely_still_explains_the_index():
    r = extract("Incidental osteoporotic wedge fractures, moderate T12 and mild L1.")
    assert not r.prefill.applies["sins"]


def test_a_lesion_at_a_degenerate_level_is_still_scored():
    r = extract("Lytic metastasis at L4 with low T1 signal. Degenerative disc disease at L4-5.")
    assert r.prefill.applies["sins"] and r.prefill.sins["lesion"].value == "lytic"


@pytest.mark.parametrize("text", [
    # a spaced dash as the end of a negation scope was tried and withdrawn: structured reports put the verdict after it
    "Lytic metastasis at T9. Epidural tumour - not seen. Cord compression - not seen.",
    "Lytic metastasis at T9. Cord compression \u2013 none seen.",
])
def test_a_verdict_after_a_dash_is_not_lost(text):
    r = extract(text)
    assert r.prefill.escc["cord_compressed"].value is not True and r.prefill.escc["epidural_disease"].value is not True


def test_a_malignancy_screen_is_a_test():
    r = extract("Multiple T1 hypointense marrow foci. Malignancy screen negative. Conclusion: red marrow hyperplasia.")
    assert "malignancy" not in r.diagnoses + r.uncertain_diagnoses + r.negated_diagnoses


@pytest.mark.parametrize("text, epidural, cord", [
    # a verdict after a dash in a structured report (found by the third look; before: both read as present)
    ("Lytic metastasis at T9. Epidural disease - none. Cord compression - not seen.", False, False),
    ("Lytic metastasis at T9. Epidural disease \u2013 nil.", False, None),
    ("Lytic metastasis at T9. Cord compression - no. Epidural extension - yes.", True, False),
    # "- no" that starts a new finding does not deny the one before it
    ("Lytic metastasis at T9. Epidural tumour - no cord compression.", True, False),
])
def test_a_verdict_after_a_dash_denies_the_finding_before_it(text, epidural, cord):
    e = extract(text).prefill.escc
    assert (e["epidural_disease"].value, e["cord_compressed"].value) == (epidural, cord)


@pytest.mark.parametrize("text", ["No suspicious marrow lesion other than at T9, where there is a lytic metastasis.",
                                  "No lesion other than the known T9 metastasis."])
def test_other_than_ends_a_negation(text):
    r = extract(text)  # before: the metastasis at T9 was negated with the rest
    assert r.diagnoses == ["metastasis"] and r.levels == ["T9"]


@pytest.mark.parametrize("text", ["Lytic metastasis at T9 without collapse or epidural extension.",
                                  "Lytic metastasis at T9. No fracture or epidural tumour."])
def test_a_negation_inside_a_findings_phrase_still_denies_the_coordinated_finding(text):
    # guards the obvious fix for "show no signal drop on opposed phase, and enhance" (enhancement negated): letting a
    # phrase that opens with "no" or "without" keep its negation to itself made these epidural tumour (tried, withdrawn)
    assert extract(text).prefill.escc["epidural_disease"].value is not True


@pytest.mark.parametrize("text, enhancement", [
    # the denial inside "no signal drop" ended at the second verb ("and enhance"): enhancement was read as absent
    ("Lytic lesion at T9. The lesion shows no signal drop on the opposed-phase images compared with in-phase, and "
     "enhances on fat-suppressed post-contrast T1.", "enhancing"),
    ("Lytic lesion at T9 which shows no signal drop on opposed phase and enhances avidly.", "enhancing"),
    ("Lytic lesion at T9, not enhancing.", "not_enhancing"),
    ("Lytic lesion at T9. No enhancement and no signal drop on opposed phase.", "not_enhancing"),
])
def test_a_second_verb_ends_the_denial_of_the_first(text, enhancement):
    assert extract(text).prefill.marrow["t1_gd_fs"].value == enhancement


@pytest.mark.parametrize("text", ["Epidural tumour at T9 and is compressing the cord.",
                                  "Epidural soft tissue at T9 extends into the canal and is compressing the cord."])
def test_the_clause_end_leaves_a_state_reaching_back(text):
    # the clause end stops negation, uncertainty and history only: the cord compression still belongs to the tumour
    e = extract(text).prefill.escc
    assert (e["epidural_disease"].value, e["cord_compressed"].value) == (True, True)


def test_only_a_terminate_row_can_be_limited_to_the_assertions(tmp_path):
    from spinemets.errors import InvalidInputError
    from spinemets.knowledge.loader import load_kb
    from spinemets.reports.rules import load_rules

    f = tmp_path / "site.yaml"
    f.write_text("context:\n  - {id: x, category: NEGATED_EXISTENCE, direction: FORWARD, phrases: [nope], "
                 "ends_qualifiers: false}\n", encoding="utf-8")
    with pytest.raises(InvalidInputError, match="only a TERMINATE row"):
        load_rules(load_kb(), str(f))


@pytest.mark.parametrize("text", ["Lytic metastasis at T9 with epidural tumour. Marrow hyperplasia after G-CSF.",
                                  "Lytic metastasis at T9 with epidural tumour; the patient receives GM-CSF."])
def test_a_colony_stimulating_factor_is_not_cerebrospinal_fluid(text):
    r = extract(text)  # before: "G-CSF" was read as CSF, a finding of the ESCC scale
    assert not [f for f in r.findings if f.concept == "csf"]
    assert r.prefill.escc["csf_visible"].value is None


@pytest.mark.parametrize("text, field", [
    # before: "there is no" ended two words before the finding, and its state (compression, abutment) read as present
    ("T8 lytic metastasis. There is no evidence of cord compression.", "cord_compressed"),
    ("T8 lytic metastasis. There is no evidence of cord abutment.", "cord_abutted"),
    ("T8 lytic metastasis. There is no definite sign of cord compression.", "cord_compressed"),
    ("L2 sclerotic metastasis. No evidence of epidural disease or cord compression.", "cord_compressed"),
    ("There is no evidence of vertebral collapse, epidural disease or cord compression. L2 sclerotic metastasis.",
     "cord_compressed"),
])
def test_a_denial_reaches_its_finding_over_filler_words(text, field):
    assert extract(text).prefill.escc[field].value is False


@pytest.mark.parametrize("text", ["L2 lytic metastasis. No collapse or fracture, cord compressed.",
                                  "L2 lytic metastasis. No collapse, no fracture, cord compressed."])
def test_a_list_closed_by_a_comma_does_not_deny_the_next_finding(text):
    assert extract(text).prefill.escc["cord_compressed"].value is True


@pytest.mark.parametrize("text, stated", [
    # before: the first grade of a range or a bound was pre-filled as the grade
    ("Lytic metastasis T11. ESCC 2-3.", "ESCC 2-3"),
    ("Lytic metastasis T11. ESCC grade 2 or 3.", "ESCC grade 2 or 3"),
    ("Lytic metastasis T11. Bilsky grade 1c/2.", "Bilsky grade 1c/2"),
    ("Lytic metastasis T11. ESCC grade 1b to 1c.", "ESCC grade 1b to 1c"),
    ("Lytic metastasis T11. At least ESCC 2.", "At least ESCC 2"),
    ("Lytic metastasis T11. ESCC grade 2 or higher.", "ESCC grade 2 or higher"),
])
def test_a_range_of_escc_grades_fills_no_grade(text, stated):
    r = extract(text)
    assert r.prefill.escc["grade"].value is None and r.prefill.escc_grade is None
    notice = next(n for n in r.notices if n.code == "escc_grade_unclear")
    assert f'"{stated}"' in notice.message and "none was used" in notice.message


@pytest.mark.parametrize("text, grade", [("Lytic metastasis T11. ESCC 2, cord compressed.", "2"),
                                         ("Lytic metastasis T11 (ESCC 1b), T12 and L1.", "1b"),
                                         ("Lytic metastasis T11. Bilsky 3.", "3")])
def test_a_single_escc_grade_is_still_read(text, grade):
    assert extract(text).prefill.escc_grade == grade


@pytest.mark.parametrize("text, expected", [
    # before: a hedged state filled the finding ("the cord may be compressed" -> cord compressed)
    ("Lytic metastasis T11. Epidural tumour; the cord may be compressed.", {"epidural_disease": True}),
    ("Lytic metastasis T11. Epidural tumour, cord probably compressed.", {"epidural_disease": True}),
    ("Lytic metastasis T11. Epidural tumour which possibly compresses the cord.", {"epidural_disease": True}),
    ("Lytic metastasis T11. Epidural tumour; the cord abutted, possibly compressed.",
     {"epidural_disease": True, "cord_abutted": True}),
    ("Lytic metastasis T11. Epidural tumour; the cord is compressed.", {"epidural_disease": True, "cord_compressed": True}),
])
def test_a_hedged_state_fills_nothing(text, expected):
    e = extract(text).prefill.escc
    assert {k: v.value for k, v in e.items() if v.value is not None and k != "grade"} == expected


@pytest.mark.parametrize("text, escc, collapse", [
    # before: the earlier study's cord compression and height loss were pre-filled as today's (second review)
    ("T4 vertebral metastasis with spinal cord compression was treated with radiotherapy in 2021. Current study: the "
     "T4 lesion is sclerotic. No residual epidural disease.", {"epidural_disease": False}, None),
    ("New lytic lesion at T9 with 20% height loss previously, now 60% height loss.", {}, None),
    ("Lytic metastasis at T9. Height loss 60%, previously 20%.", {}, "gt50"),
    ("Lytic metastasis at T9 compressing the cord.", {"cord_compressed": True}, None),
])
def test_an_earlier_state_is_not_todays(text, escc, collapse):
    r = extract(text)
    assert {k: v.value for k, v in r.prefill.escc.items() if v.value is not None and k != "grade"} == escc
    assert r.prefill.sins["collapse"].value == collapse


@pytest.mark.parametrize("text, field, value", [
    # before: "is not" took the words as a forward negation and the finding before it stood (second review)
    ("T8 lytic metastasis. Epidural extension is not present.", "epidural_disease", False),
    ("T8 lytic metastasis. Epidural disease is not identified.", "epidural_disease", False),
    ("T8 lytic metastasis. Epidural disease ruled out.", "epidural_disease", False),
    ("T8 lytic metastasis. Epidural tumour is not demonstrated.", "epidural_disease", False),
    ("T8 lytic metastasis. Epidural extension is not evident.", "epidural_disease", False),
    ("T8 lytic metastasis. Thecal sac deformity is not present.", "thecal_sac_deformed", False),
    ("T8 lytic metastasis. Cord compression is not present.", "cord_compressed", False),
    ("T8 lytic metastasis. Cord abutment is not present.", "cord_abutted", False),
    # the verdict's own "present" is not a second state: no effacement leaves the CSF visible
    ("T8 lytic metastasis. CSF effacement is not present.", "csf_visible", True),
    ("T8 lytic metastasis. CSF is not seen around the cord.", "csf_visible", False),
])
def test_a_verdict_after_the_finding_with_is_not(text, field, value):
    e = extract(text).prefill.escc
    assert e[field].value is value
    assert all(v.value is None for k, v in e.items() if k not in (field, "grade"))


def test_a_pedicle_not_visualised_is_still_not_denied():
    r = extract("The left pedicle of L1 is not visualised on the AP view, indicating lytic destruction (winking owl).")
    assert r.prefill.sins["posterolateral"].value == "unilateral"


@pytest.mark.parametrize("text, field", [
    ("T8 lytic metastasis. No epidural extension, thecal sac deformity, cord abutment or cord compression.", "cord_abutted"),
    ("T8 lytic metastasis. Negative for epidural disease and cord compression.", "cord_compressed"),
    ("T8 lytic metastasis. Free of epidural disease and cord compression.", "cord_compressed"),
])
def test_a_denial_covers_a_state_inside_its_list(text, field):
    assert extract(text).prefill.escc[field].value is False  # before: abutted, compressed (second review)


@pytest.mark.parametrize("text, expected", [
    # before: the denial of the single item before ", and" reached the next statement (second review)
    ("T10 lytic metastasis with no fracture, and epidural extension indenting the thecal sac.",
     {"epidural_disease": True, "thecal_sac_deformed": True}),
    ("T10 lytic metastasis with 30% collapse, no retropulsion, and epidural tumour compressing the cord.",
     {"epidural_disease": True, "cord_compressed": True}),
    # a list still ends with ", and"
    ("T10 lytic metastasis. No fracture, epidural disease, and cord compression.",
     {"epidural_disease": False, "cord_compressed": False}),
])
def test_comma_and_after_one_denied_item_starts_a_new_statement(text, expected):
    e = extract(text).prefill.escc
    assert {k: v.value for k, v in e.items() if v.value is not None and k != "grade"} == expected


def test_comma_and_ends_the_denial_of_a_signal():
    r = extract("L3 lytic metastasis. The lesions show no signal drop on opposed phase, and restrict on DWI with low ADC.")
    assert r.prefill.marrow["dwi"].value == "restricted"


@pytest.mark.parametrize("text", [
    # before: each filled a finding (second review); a request, a limit of the study, a threat or a weak hedge is
    # no finding
    "Lytic metastasis at L3. MRI is recommended to assess epidural extension.",
    "Lytic metastasis at L3. Further assessment of cord compression with MRI advised.",
    "Lytic metastasis at L3. Please correlate for signs of cord compression.",
    "Lytic metastasis at L3. CT is insensitive for epidural disease.",
    "Lytic metastasis at L3. MRI recommended to exclude cord compression.",
    "T6 lytic metastasis. Impending cord compression.",
    "T6 lytic metastasis. Suggestion of cord abutment.",
    "T6 lytic metastasis. Hint of cord abutment.",
])
def test_a_request_a_threat_or_a_weak_hedge_fills_no_escc_finding(text):
    e = extract(text).prefill.escc
    assert all(v.value is None for v in e.values())


@pytest.mark.parametrize("text", ["T6 lytic metastasis. No suggestion of cord compression.",
                                  "T6 lytic metastasis. Cord compression excluded."])
def test_a_denial_still_fills_false(text):
    assert extract(text).prefill.escc["cord_compressed"].value is False


@pytest.mark.parametrize("text, collapse", [
    # height left, not lost (second review): 30-40% lost is under half
    ("T10 lytic metastasis. The vertebral body height is 70% of the adjacent levels.", "lt50"),
    ("T10 lytic metastasis. Residual vertebral height 70%.", "lt50"),
    ("T10 lytic metastasis. The anterior height measures 60% of the posterior height.", "lt50"),
    ("T10 lytic metastasis. The vertebral body height is 30% of the adjacent levels.", "gt50"),
    # a loss word before the figure keeps it a loss
    ("T10 lytic metastasis with height loss of 30% of the adjacent levels.", "lt50"),
    ("T10 lytic metastasis, height reduced to 40%.", "gt50"),
    ("T10 lytic metastasis, height reduced by 40%.", "lt50"),
])
def test_height_left_against_height_lost(text, collapse):
    assert extract(text).prefill.sins["collapse"].value == collapse


def test_a_loss_of_normal_height_is_not_read_as_height_left():
    # before: "of normal height" made 30% lost into 70% lost (more than half)
    assert extract("T10 lytic metastasis with 30% loss of normal height.").prefill.sins["collapse"].value != "gt50"


@pytest.mark.parametrize("text", [
    # before: bilateral posterolateral involvement (second review)
    "T10 lytic metastasis. The facet joints show degenerative arthropathy bilaterally.",
    "T10 lytic metastasis. The facet joints show hypertrophic change on the left.",
])
def test_degenerate_facets_in_other_words_are_not_tumour(text):
    assert extract(text).prefill.sins["posterolateral"].value is None


def test_a_facet_with_tumour_is_still_involved_beside_degenerate_discs():
    r = extract("Lytic metastasis at T10 extending into both facet joints. Degenerate discs at L4-5.")
    assert r.prefill.sins["posterolateral"].value == "bilateral"


@pytest.mark.parametrize("text, lesion", [
    # before: the rib's, pelvis's or femur's lesion type filled the vertebra's SINS lesion (second review)
    ("T8 vertebral metastasis with 60% collapse. Lytic lesion of the right 8th rib.", None),
    ("Sclerotic T8 metastasis. Lytic metastasis in the right iliac bone.", "blastic"),
    ("T8 metastasis. Lytic lesion in the left femoral neck.", None),
    ("Rib metastasis. Lytic T8 metastasis.", "lytic"),
    # the rib head and a lesion that reaches a rib from the vertebra stay
    ("Lytic metastasis at T8 involving the rib head and costovertebral joint.", "lytic"),
    ("Lytic metastasis at T8 into the rib.", "lytic"),
    ("Lytic metastasis of the T8 vertebral body and the adjacent rib.", "lytic"),
])
def test_a_lesion_of_another_bone_is_not_the_vertebras(text, lesion):
    assert extract(text).prefill.sins["lesion"].value == lesion


@pytest.mark.parametrize("text", ["Sclerotic metastasis in the sternum. Spine normal.",
                                  "Lytic lesion in the right 6th rib. Spine: no definite vertebral lesion."])
def test_a_lesion_of_another_bone_alone_is_no_spinal_lesion(text):
    r = extract(text)
    assert r.levels == [] and r.index_level is None and "lesion" not in r.prefill.inputs.get("sins", {})


@pytest.mark.parametrize("text, alignment", [
    # before: deformity or subluxation (second review); SINS scores a de novo deformity
    ("T10 metastasis. Scoliosis convex to the right, longstanding and unchanged since 2015.", None),
    ("L4 lytic lesion, low T1 and high STIR. Grade 1 anterolisthesis of L4 on L5 due to facet arthropathy.", None),
    ("T8 lytic metastasis with kyphosis secondary to previous osteoporotic fractures at T6 and T7.", None),
    ("T8 lytic metastasis with new focal kyphosis.", "deformity"),
    ("L4 lytic metastasis with anterolisthesis of L4 on L5 and destruction of the pars.", "subluxation"),
])
def test_an_old_or_degenerative_deformity_is_not_de_novo(text, alignment):
    assert extract(text).prefill.sins["alignment"].value == alignment


@pytest.mark.parametrize("text, expected", [
    # template answers (second review): before, each line below was read as the finding present
    ("T7 metastasis. Epidural disease: -ve. Cord compression: neg.", {"epidural_disease": False, "cord_compressed": False}),
    ("T7 metastasis. Epidural disease: NAD. Cord compression: unremarkable.",
     {"epidural_disease": False, "cord_compressed": False}),
    ("T7 metastasis. Epidural disease: ?. Cord compression: suspected.", {}),
    ("T7 metastasis. Epidural disease: not assessed. Cord compression: indeterminate.", {}),
    ("T7 metastasis. Epidural disease - possible. Cord abutment - equivocal.", {}),
    ("T7 metastasis. Epidural disease: present. Cord compression: yes.", {"epidural_disease": True, "cord_compressed": True}),
    # no longer, resolution, ", with" and the earlier study
    ("Lytic metastasis T8 with epidural tumour. The cord is no longer compressed and CSF is visible.",
     {"epidural_disease": True, "cord_compressed": False, "csf_visible": True}),
    ("Lytic metastasis T8. Resolution of epidural disease.", {"epidural_disease": False}),
    ("Lytic metastasis at T10 without collapse or cortical destruction, with epidural tumour compressing the cord.",
     {"epidural_disease": True, "cord_compressed": True}),
    ("Lytic metastasis T8 with epidural tumour compressing the cord. The CSF is no longer visible.",
     {"epidural_disease": True, "cord_compressed": True}),
])
def test_template_answers_and_changed_states(text, expected):
    e = extract(text).prefill.escc
    assert {k: v.value for k, v in e.items() if v.value is not None and k != "grade"} == expected


def test_an_earlier_studys_grade_is_not_todays():
    assert extract("Lytic metastasis T8. ESCC grade 3 on the prior study is now grade 1b.").prefill.escc_grade != "3"


@pytest.mark.parametrize("text", [
    # before: each filled an ESCC finding (second review); the scale grades epidural tumour
    "Sclerotic T6 metastasis. Epidural haematoma at T6 compressing the cord.",
    "Sclerotic T6 metastasis without soft tissue component. Extensive epidural lipomatosis from T4 to T9 compressing "
    "the thecal sac.",
    "Sclerotic T6 metastasis. Disc extrusion at T6/7 compresses the cord.",
    "Sclerotic T6 metastasis. Epidural abscess at T6 abutting the cord.",
])
def test_another_compressor_fills_no_escc_finding(text):
    assert all(v.value is None for v in extract(text).prefill.escc.values())


def test_tumour_compression_stays_beside_a_disc_bulge_elsewhere():
    e = extract("Lytic T6 metastasis with epidural tumour compressing the cord. Small disc bulge at L4-5.").prefill.escc
    assert (e["epidural_disease"].value, e["cord_compressed"].value) == (True, True)


@pytest.mark.parametrize("text", ["Lytic metastasis T8. ESCC 2 (possibly 3).", "Lytic metastasis T8. ESCC grade 2 - 3."])
def test_a_grade_with_its_alternative_fills_no_grade(text):
    assert extract(text).prefill.escc_grade is None  # before: 2 (second review)


def test_height_retained_is_height_left():
    # before: more than half lost (second review); 30% lost is under half
    assert extract("T10 lytic metastasis. The vertebra retains 70% of its height.").prefill.sins["collapse"].value == "lt50"


@pytest.mark.parametrize("text", ["T8 lytic metastasis. Epidural disease is not visualised.",
                                  "T8 lytic metastasis. Epidural tumour is not visualized."])
def test_not_visualised_denies_a_finding_other_than_a_pedicle(text):
    assert extract(text).prefill.escc["epidural_disease"].value is False


@pytest.mark.parametrize("text", ["T8 lytic lesion. Metastasis versus myeloma.", "T8 lesion: haemangioma versus metastasis."])
def test_versus_states_neither_diagnosis(text):
    assert extract(text).diagnoses == []  # before: both stated (second review)


@pytest.mark.parametrize("text, csf, grade", [
    # before: no CSF, grade 3 (second review)
    ("Lytic metastasis T8. Epidural tumour compresses the cord. CSF is not seen anteriorly but is seen posteriorly.",
     True, "2"),
    ("Lytic metastasis T8. Epidural tumour compresses the cord. CSF is not seen around the cord.", False, "3"),
    ("Lytic metastasis T8. Epidural tumour compresses the cord. CSF is not seen anteriorly, but no CSF is seen "
     "posteriorly either.", False, "3"),
])
def test_csf_seen_on_one_side_is_csf_visible(text, csf, grade):
    r = extract(text)
    assert (r.prefill.escc["csf_visible"].value, r.prefill.escc_grade) == (csf, grade)


@pytest.mark.parametrize("text, level", [
    # before: the only line, without a full stop, was taken for the report's title and nothing was read
    ("Lytic metastasis at T8 with epidural tumour", "T8"),
    ("\U0001F642 T8 lytic metastasis \U0001F642", "T8"),
    # a heading after a full stop on the same line starts its section ("Comparison:" swallowed the findings)
    ("Comparison: MRI 14/02/2024. Findings: Lytic T11 metastasis with epidural tumour.", "T11"),
    # a title still is one
    ("MRI WHOLE SPINE\nLytic metastasis at T8.", "T8"),
])
def test_a_one_line_report_is_read(text, level):
    assert extract(text).index_level == level


def test_a_title_naming_sequences_is_still_a_title():
    r = extract("WHOLE BODY MRI (T1, STIR, DWI) - response\nLytic metastasis at T9, low on T1.")
    assert r.index_level == "T9" and not [f for f in r.findings if f.start < 40]


@pytest.mark.xfail(strict=True, reason="known (second review, tenth session): a canal statement that names no level "
                   "goes to the index level; keeping it off the index when the canal findings are at another level "
                   "was tried and withdrawn (a synoptic template's level-less lines and a sequence read as a level)")
def test_a_level_less_canal_statement_after_another_level_is_not_the_index_levels():
    r = extract("Metastases at T4 and T9. T9 is the dominant lesion, lytic, with 60% collapse. At T4 there is epidural "
                "tumour compressing the cord. No CSF is seen around the cord.")
    assert r.index_level == "T9" and r.prefill.escc["csf_visible"].value is None


@pytest.mark.xfail(strict=True, reason="known (tenth session): 'which showed' after an earlier study is not history; the "
                   "row was withdrawn because 'MRI was performed, which showed a lytic metastasis' is today's study")
def test_what_an_earlier_study_showed_is_not_todays():
    r = extract("Compared with the MRI of 2022, which showed cord compression at T4, there has been interval "
                "decompression. The T4 metastasis is stable.")
    assert r.prefill.escc["cord_compressed"].value is None


@pytest.mark.parametrize("text, alignment", [
    # second review of the tenth session: old-deformity words about another level, or a new deformity
    ("Since the MRI of March, there is new kyphotic deformity at T8 from progressive collapse, while T12 is unchanged "
     "since 2021.", "deformity"),
    ("New 20% collapse of T7 with focal kyphosis; the L1 fracture is stable since 2022.", "deformity"),
    ("Pathological fracture of L1 with 40% collapse and new focal kyphosis; degenerative disc disease at L4/5.",
     "deformity"),
])
def test_a_new_deformity_beside_an_old_one_elsewhere_is_de_novo(text, alignment):
    assert extract(text).prefill.sins["alignment"].value == alignment


@pytest.mark.parametrize("text, expected", [
    # second review of the tenth session: each of these lost a stated finding to a new rule
    ("MRI thoracic spine. Findings: Lytic metastasis at T8 with 40% collapse and ventral epidural tumour compressing "
     "the cord; incidental small disc bulge at T11/12.", {"epidural_disease": True, "cord_compressed": True}),
    ("Following vertebroplasty at L1, there is epidural tumour at T12 compressing the cord without epidural haematoma.",
     {"epidural_disease": True, "cord_compressed": True}),
    ("Lytic metastasis at T8 with epidural tumour effacing the epidural fat and compressing the cord.",
     {"epidural_disease": True, "cord_compressed": True}),
    ("Metastatic epidural disease at T9 compressing the cord, with intramedullary metastasis ruled out.",
     {"epidural_disease": True, "cord_compressed": True}),
    ("Epidural tumour at T8 is not currently compressing the cord.", {"epidural_disease": True, "cord_compressed": False}),
    ("MRI whole spine was performed, which showed a lytic metastasis at T9 with epidural extension compressing the "
     "cord.", {"epidural_disease": True, "cord_compressed": True}),
    ("MRI whole spine. Indication: breast cancer, back pain. Epidural tumour at T8 compresses the spinal cord.",
     {"epidural_disease": True, "cord_compressed": True}),
    ("Circumferential epidural tumour at T7 with no CSF visible around the cord, although cord signal remains normal.",
     {"epidural_disease": True, "csf_visible": False}),
    ("There is epidural tumour at T11 compressing the conus, which was treated with dexamethasone on admission.",
     {"epidural_disease": True, "cord_compressed": True}),
    ("The T6 epidural disease has been treated with radiotherapy and is now smaller but still compresses the cord.",
     {"epidural_disease": True, "cord_compressed": True}),
    ("Comparison: MRI 3 months ago. / Findings: The lytic metastasis at T8 with epidural tumour compressing the cord "
     "is larger than on the prior study.", {"epidural_disease": True, "cord_compressed": True}),
    ("Urgent MRI to assess MSCC: epidural tumour at T6 compresses the spinal cord.",
     {"epidural_disease": True, "cord_compressed": True}),
    ("Post-radiotherapy follow-up. Partial resolution of the epidural disease at T9, which still abuts the cord.",
     {"epidural_disease": True, "cord_abutted": True}),
    ("The cord is threatened by epidural tumour at T9 which deforms the thecal sac.",
     {"epidural_disease": True, "thecal_sac_deformed": True}),
    ("Lytic metastasis at T9 with epidural tumour compressing the cord; CSF is not visible around the cord.",
     {"epidural_disease": True, "cord_compressed": True, "csf_visible": False}),
])
def test_a_stated_canal_finding_survives_the_tenth_sessions_rules(text, expected):
    e = extract(text).prefill.escc
    assert {k: v.value for k, v in e.items() if v.value is not None and k != "grade"} == expected


@pytest.mark.parametrize("text, lesion", [
    ("Sclerotic metastases are present in the sternum and T4 to T8 vertebral bodies.", "blastic"),
    ("Diffuse sclerotic metastases involving the ribs, pelvis and thoracolumbar spine, with 30% collapse of L1.", "blastic"),
])
def test_another_bone_listed_with_the_spine_keeps_the_lesion(text, lesion):
    assert extract(text).prefill.sins["lesion"].value == lesion


@pytest.mark.parametrize("text, collapse", [
    ("Lytic metastasis at L1 with 55% collapse; height preserved at L2.", "gt50"),
    ("Collapse of L1 with loss of height, now 35% of normal height.", "gt50"),
])
def test_height_cues_of_the_second_review(text, collapse):
    assert extract(text).prefill.sins["collapse"].value == collapse


def test_a_stated_grade_with_further_levels_is_read():
    r = extract("Lytic metastasis at T11 with epidural tumour, ESCC grade 3 and 2 further levels of disease below.")
    assert r.prefill.escc_grade == "3"


def test_a_verdict_after_a_finding_does_not_reach_the_one_before_the_comma():
    r = extract("Lytic lesion at T6 with 30% height loss, epidural extension is not apparent.")
    assert (r.prefill.sins["collapse"].value, r.prefill.escc["epidural_disease"].value) == ("lt50", False)


@pytest.mark.parametrize("text, field, value", [
    # first review of the tenth session: the value the addendum corrects was kept
    ("T10 lytic metastasis with 60% collapse. ADDENDUM: The percentage of collapse was incorrectly reported; it is "
     "30%, not 60%.", "collapse", None),
    ("T10 lytic metastasis with bilateral pedicle involvement. ADDENDUM: Correction - only the left pedicle is "
     "involved.", "posterolateral", "unilateral"),
    ("L2 lytic lesion. Report amended: the lesion is sclerotic, not lytic.", "lesion", "blastic"),
    # an addendum that adds replaces nothing
    ("T10 lytic metastasis with 60% collapse. ADDENDUM: biopsy confirms metastasis.", "collapse", "gt50"),
])
def test_an_addendum_that_corrects_replaces_the_earlier_value(text, field, value):
    assert extract(text).prefill.sins[field].value == value


def test_an_addendum_that_revises_the_grade_leaves_no_grade_it_cannot_read():
    r = extract("T10 lytic metastasis with epidural tumour. ESCC grade 2. ADDENDUM: Grade revised to 3 after review of "
                "the axial images.")
    assert r.prefill.escc_grade is None and r.prefill.escc["epidural_disease"].value is True


def test_an_addendum_that_adds_another_level_replaces_nothing():
    r = extract("Lytic T9 metastasis with epidural tumour compressing the cord. ADDENDUM: epidural tumour also at T4, "
                "not previously mentioned.")
    e = r.prefill.escc
    assert (r.index_level, e["epidural_disease"].value, e["cord_compressed"].value) == ("T9", True, True)


def test_marrow_signal_at_the_levels_of_a_modic_change_is_not_a_lesion():
    # first review of the tenth session: a Modic type 1 change filled the marrow signal of a lesion
    r = extract("Modic type 1 endplate change L4, low on T1 and high on STIR. No other lesion.")
    assert r.index_level is None and all(v.value is None for v in r.prefill.marrow.values())


# --- eleventh session: marrow signal that is not the lesion's, discs a lesion spares ----------------------------


@pytest.mark.parametrize("sentence", [
    "A smooth extradural mass at T6 enhances avidly.",
    "Enhancing extradural soft tissue at T6 narrows the canal.",
    "Epidural disease at T6 enhances.",
])
def test_the_signal_of_extradural_tissue_is_not_the_marrows(sentence):
    r = extract(f"Lytic metastasis at T6. {sentence}")
    assert not {k for k in ("t1_gd_fs", "t2") if k in r.prefill.inputs.get("marrow", {})}


@pytest.mark.parametrize("text, expected", [
    # the wall of a collection enhances, not the marrow; a bone lesion's rim enhancement is its own
    ("Lytic metastasis at T7. Posterior epidural collection from T6 to T8, rim enhancing.", None),
    ("Lytic metastasis at T7. A paravertebral abscess at T7 shows thick peripheral enhancement.", None),
    ("Lytic lesion in the T7 body with rim enhancement.", "enhancing"),
    # a change against an earlier study says nothing of the enhancement now
    ("Treated metastasis at L2: smaller, with less enhancement than before.", None),
    ("Treated metastasis at L2 no longer enhances.", None),
    ("Treated metastasis at L2: reduced enhancement compared with the prior study.", None),
    # the discs' own enhancement is not the lesion's
    ("Lytic metastasis at C5 with vivid enhancement. The C4/5 and C5/6 discs show no enhancement of the discs.",
     "enhancing"),
])
def test_enhancement_that_is_not_the_lesions_marrow(text, expected):
    assert extract(text).prefill.inputs.get("marrow", {}).get("t1_gd_fs") == expected


@pytest.mark.parametrize("text, expected", [
    ("Lytic metastasis at L2. The adjacent disc spaces are preserved.", False),
    ("Lytic metastasis at L2; the adjacent discs are normal.", False),
    ("Lytic metastasis at L2 with sparing of the discs.", False),
    # ("disc involvement" alone is no longer read: "degenerative disc involvement at L5/S1", second review)
    ("Lytic metastasis at L2.", None),
])
def test_discs_a_lesion_spares(text, expected):
    r = extract(text)
    assert r.prefill.inputs.get("marrow", {}).get("crosses_disc_space") == expected


def test_spared_discs_are_no_abnormal_level():
    r = extract("Lytic metastasis at C7. The C6/7 and C7/T1 disc spaces are preserved.")
    assert r.levels == ["C7"]


@pytest.mark.parametrize("text, expected", [
    ("Abnormal marrow at C6, dark on TSE T1 and bright on STIR.", {"t1": "hypointense", "stir": "hyperintense"}),
    ("A mass lesion replaces the T10 body, hypointense to marrow on T1 and hyperintense on T2.",
     {"t1": "hypointense", "t2": "hyperintense"}),
    ("Myeloma: marrow signal of L2 is diffusely reduced on T1.", {"t1": "hypointense"}),
])
def test_more_marrow_signal_wordings(text, expected):
    got = extract(text).prefill.inputs.get("marrow", {})
    assert {k: got.get(k) for k in expected} == expected, got


@pytest.mark.parametrize("sentence, expected", [
    # a state stated as a further predicate of the cord or sac named as the subject
    ("The cord is displaced to the left and is not compressed.", {"cord_compressed": False}),
    ("The cord is displaced to the left but not compressed.", {"cord_compressed": False}),
    ("The cord is displaced to the left and is in contact with the mass but is not compressed.",
     {"cord_abutted": True, "cord_compressed": False}),
    ("The cord is abutted by epidural tumour and is compressed.", {"cord_abutted": True, "cord_compressed": True}),
    ("The thecal sac is displaced and indented.", {"thecal_sac_deformed": True}),
    # the predicate of another noun, or a hedge, is not the cord's
    ("The cord is normal and the thecal sac is not compressed.", {"thecal_sac_deformed": False}),
    ("The cord is displaced and may be compressed.", {}),
])
def test_a_state_stated_as_a_further_predicate(sentence, expected):
    escc = extract(f"Lytic metastasis at T6. {sentence}").prefill.escc
    got = {k: v.value for k, v in escc.items() if k in ("cord_abutted", "cord_compressed", "thecal_sac_deformed")
           and v.value is not None}
    assert got == expected


@pytest.mark.parametrize("sentence, expected", [
    ("The canal is clear.", False),
    ("No soft tissue density within the canal.", False),
    # only the central canal clear: the lateral epidural tumour stands
    ("Tumour extends into the right lateral epidural space, but the central canal is clear.", True),
])
def test_a_clear_canal_is_no_epidural_disease(sentence, expected):
    escc = extract(f"Lytic metastasis at T8. {sentence}").prefill.escc
    assert escc["epidural_disease"].value is expected


@pytest.mark.parametrize("text, expected", [
    # one lesion over the index level and the next is not disease elsewhere in the spine
    ("Osteolytic destruction of the C2 and C3 vertebral bodies with collapse of C2 by 60%.", None),
    # two metastases named, a longer run of infiltration, a lesion at a distant level: disease elsewhere
    ("Lytic C3 and C4 metastases with collapse of C4 by 60%.", "present"),
    ("Diffuse marrow infiltration from T10 to L5 with a pathological fracture of L1, 60% height loss.", "present"),
    ("Pathological fracture of L1 with 60% height loss. Sclerotic metastasis at T4.", "present"),
])
def test_other_spinal_metastases_are_lesions_beyond_the_index_lesion(text, expected):
    got = extract(text).prefill.fracture.get("other_spinal_metastases")
    assert (got.value if got else None) == expected


FRACTURE_T5 = "Pathological fracture of T5 with 40% height loss from a metastasis. "


@pytest.mark.parametrize("sentence, row, expected", [
    ("Tumour invades the canal and flattens the cord.", "epidural_mass", "present"),
    ("Soft tissue tumour fills the ventral canal.", "epidural_mass", "present"),
    ("There is epidural and left foraminal extension.", "epidural_mass", "present"),
    ("The posterior vertebral cortex bulges into the canal.", "convex_posterior_border", "present"),
    ("The collapsed body bulges posteriorly.", "convex_posterior_border", "present"),
    ("A mild posterior bulge of the T5 body effaces the ventral CSF.", "convex_posterior_border", "present"),
    ("The entire T5 body is low signal on T1.", "diffuse_low_t1_signal", "present"),
    ("The body shows low T1 signal throughout the body.", "diffuse_low_t1_signal", "present"),
    ("Low T1 signal throughout the superior third of the body.", "diffuse_low_t1_signal", None),
    ("Enhancing perivertebral soft tissue surrounds the body.", "paraspinal_mass", "present"),
    ("Soft tissue extends into the left paravertebral space.", "paraspinal_mass", "present"),
    # a disc bulge is not the body's posterior border; a low T1 focus is not diffuse low signal
    ("The L4/5 disc bulges into the canal.", "convex_posterior_border", None),
    ("The lesion is low signal on sagittal T1.", "diffuse_low_t1_signal", None),
])
def test_fracture_features_in_other_words(sentence, row, expected):
    got = extract(FRACTURE_T5 + sentence).prefill.fracture.get(row)
    assert (got.value if got else None) == expected


# --- found by the eleventh session's review: wrong values -------------------------------------------------------


@pytest.mark.parametrize("sentence, field, expected", [
    # hedges are not denials; a denial in the present perfect or "no longer any" is a denial
    ("Cord compression is not likely.", "cord_compressed", None),
    ("Cord compression is unlikely.", "cord_compressed", None),
    ("Cord compression has not occurred.", "cord_compressed", False),
    ("There is no longer any cord compression.", "cord_compressed", False),
    # ("previous MRI showed" as history was withdrawn: its reach ran over "now ..." and commas, second review)
    # the epidural space said to be clear or normal
    ("The epidural space is clear.", "epidural_disease", False),
    ("Epidural space: normal.", "epidural_disease", False),
    ("Tumour in the ventral epidural space.", "epidural_disease", True),
])
def test_hedges_denials_and_clear_spaces(sentence, field, expected):
    escc = extract(f"Lytic metastasis at T6. {sentence}").prefill.escc
    assert escc[field].value is expected if expected is not None else escc[field].value is None


@pytest.mark.parametrize("sentence, field, expected", [
    ("The lesion involves the body, sparing the pedicles.", "posterolateral", "none"),
    ("The lesion spares both pedicles.", "posterolateral", "none"),
    ("The lesion spares the body but involves the left pedicle.", "posterolateral", "unilateral"),
    ("Subluxation is not likely.", "alignment", None),
    ("Loss of normal alignment.", "alignment", None),
    ("Alignment is normal.", "alignment", "normal"),
])
def test_spared_parts_hedged_deformity_and_lost_alignment_fill_nothing_wrong(sentence, field, expected):
    assert extract(f"Lytic metastasis at T6. {sentence}").prefill.sins[field].value == expected


def test_normal_marrow_named_as_the_reference_is_not_the_lesions_signal():
    r = extract("Lytic metastasis at T6. Low signal replaces the normal T1 bright fatty marrow.")
    assert r.prefill.inputs.get("marrow", {}).get("t1") != "hyperintense"


@pytest.mark.parametrize("sentence, expected", [
    # no collapse, and the body free of the lesion: SINS collapse 0 (under half of the body involved)
    ("No osseous involvement. No collapse.", "none"),
    ("The T10 body is uninvolved and of normal height.", "none"),
    # no collapse, extent unstated: unknown; a body free at another level says nothing of this one
    ("No collapse.", None),
])
def test_no_collapse_with_the_body_free_of_the_lesion(sentence, expected):
    r = extract(f"Dorsal epidural mass at T10 compressing the cord. {sentence}")
    assert r.prefill.sins["collapse"].value == expected


def test_a_title_running_on_into_the_body_and_an_impression_keeps_the_body():
    r = extract("MRI THORACIC SPINE\nT8 lytic metastasis with 30% collapse and epidural tumour compressing the cord.\n"
                "IMPRESSION: T8 metastasis.")
    assert r.prefill.inputs["sins"]["collapse"] == "lt50" and r.prefill.inputs["escc"]["cord_compressed"] is True


@pytest.mark.parametrize("first", ["Level: T10", "Index level - T10"])
def test_a_template_opening_with_its_level_is_not_a_title(first):
    r = extract(f"{first}\nLytic metastasis with 30% collapse.")
    assert r.prefill.level == "T10" and r.prefill.inputs["sins"]["collapse"] == "lt50"


@pytest.mark.parametrize("text, check", [
    # the "or" of "epidural or paraspinal extension" does not make the metastasis before it a possibility
    ("T9 metastasis without epidural or paraspinal extension.", lambda r: "metastasis" in r.diagnoses
     and r.prefill.escc["epidural_disease"].value is False),
    # the "normal" of "loss of normal alignment" does not deny the kyphosis beside it
    ("Lytic metastasis at T6. Loss of normal alignment with focal kyphosis.",
     lambda r: r.prefill.sins["alignment"].value == "deformity"),
])
def test_a_trigger_inside_another_findings_phrase_stays_there(text, check):
    assert check(extract(text))


@pytest.mark.parametrize("text, field, expected", [
    # wordings found by the session's review (its own texts)
    ("Lytic metastasis at L3: DWI high signal with low ADC.", ("marrow", "dwi"), "restricted"),
    ("Lytic metastasis at L3. No restriction on DWI.", ("marrow", "dwi"), "not_restricted"),
    ("Lytic metastasis at L3. STIR: high signal.", ("marrow", "stir"), "hyperintense"),
    ("Lytic metastasis at L3 with heterogeneously increased T2 signal.", ("marrow", "t2"), "hyperintense"),
    ("Lytic metastasis at L3 with heterogeneous contrast uptake.", ("marrow", "t1_gd_fs"), "enhancing"),
    ("Lytic metastasis at L3. It does not cross the disc.", ("marrow", "crosses_disc_space"), False),
    ("Metastasis at L3. Lesion type: mixed.", ("sins", "lesion"), "mixed"),
    ("Metastasis at L3 with patchy sclerosis of the L3 vertebral body.", ("sins", "lesion"), "blastic"),
    ("Metastasis at L3; the vertebral body is flattened.", ("sins", "collapse"), "gt50"),
    ("Metastasis at L3 with a step-off at L3/4.", ("sins", "alignment"), "subluxation"),
    # a hypodense lesion of another organ is no lytic bone lesion
    ("CT: hypodense lesion in the liver. Sclerotic focus in T9.", ("sins", "lesion"), "blastic"),
])
def test_wordings_found_by_the_eleventh_review(text, field, expected):
    r = extract(text)
    assert r.prefill.inputs.get(field[0], {}).get(field[1]) == expected


@pytest.mark.parametrize("text, expected", [
    ("Pathological fracture of T9 with 40% height loss. Similar lesions at T4 and L2.", "present"),
    ("Pathological fracture of T9 with 40% height loss. No lesions elsewhere in the spine.", "absent"),
    ("Pathological fracture of T9 with 40% height loss; solitary lesion.", "absent"),
    ("Pathological fracture of T9 with 40% height loss, epidural tumour encasing the dural sac.", "present"),
])
def test_other_lesions_and_encasing_in_other_words(text, expected):
    fr = extract(text).prefill.fracture
    row = "encasing_epidural_mass" if "encasing" in text else "other_spinal_metastases"
    assert fr[row].value == expected


@pytest.mark.parametrize("sentence, escc, grade", [
    # a grade before the scale's full name states the grade; it does not say the cord is compressed
    ("Grade 1c epidural spinal cord compression at T6.", {}, "1c"),
    ("Grade 3 metastatic epidural spinal cord compression.", {}, "3"),
    ("Epidural spinal cord compression at T6.", {"cord_compressed": True}, None),
    # the verb before the cord: touched, not compressed
    ("Epidural tumour abuts but does not compress the cord.", {"epidural_disease": True, "cord_abutted": True,
                                                               "cord_compressed": False}, "1c"),
])
def test_graded_compression_and_abutment_before_the_cord(sentence, escc, grade):
    pre = extract(f"Lytic metastasis at T6. {sentence}").prefill
    assert {k: v.value for k, v in pre.escc.items() if k != "grade" and v.value is not None} == escc
    assert pre.escc_grade == grade


def test_an_ellipsis_between_two_levels_is_not_a_range():
    # a dictation pause ("Compression fracture L1 ... L2 normal") is not a range (tried and withdrawn this session)
    assert extract("Compression fracture L1 ... L2 normal.").levels == ["L1"]


@pytest.mark.parametrize("text, lesion", [
    # a hedge on "lytic metastasis" doubts the diagnosis, not the lytic lesion seen
    ("Likely sclerotic metastasis at T8.", "blastic"),
    ("Findings suspicious for a lytic metastasis at T8.", "lytic"),
    ("Probable osteoblastic metastases at T8 and T10.", "blastic"),
    ("No lytic metastasis.", None),
])
def test_a_hedged_diagnosis_keeps_the_lesion_seen(text, lesion):
    r = extract(text)
    assert r.prefill.inputs.get("sins", {}).get("lesion") == lesion
    if lesion:
        assert r.prefill.level == "T8" and "metastasis" not in r.diagnoses
        assert any(f.concept == "diagnosis" and f.assertion == "uncertain" for f in r.findings)


@pytest.mark.parametrize("sentence, expected", [
    ("Alignment is anatomic.", "normal"),
    ("The vertebral bodies are normally aligned.", "normal"),
    ("Alignment satisfactory.", "normal"),
    # both subluxation and deformity denied: normal alignment; one of them denied decides nothing
    ("There is no listhesis and no focal kyphosis.", "normal"),
    ("No subluxation or kyphosis.", "normal"),
    ("No listhesis.", None),
    ("Alignment is not anatomic.", None),
])
def test_normal_alignment_in_other_words(sentence, expected):
    assert extract(f"Lytic metastasis at T6. {sentence}").prefill.sins["alignment"].value == expected


def test_a_template_findings_line_ends_the_history_above_it():
    r = extract("Indication: increasing back pain, renal cell carcinoma.\nLevel: D11\nLesion: osteolytic, expansile\n"
                "Body collapse: about 35% height loss\nPosterior elements: both pedicles\n")
    assert r.prefill.inputs["sins"] == {"level": "T11", "lesion": "lytic", "collapse": "lt50",
                                        "posterolateral": "bilateral"}
    # a history line that is not a findings label stays history
    r = extract("Indication: lytic metastasis at T4 with cord compression on an outside study.\n\nNo abnormality.")
    assert r.prefill.level is None


@pytest.mark.parametrize("sentence, expected", [
    ("The whole vertebral body has been replaced by tumour of low T1 signal.", "present"),
    ("The body is entirely replaced - homogeneously low T1, high STIR.", "present"),
    ("The marrow of the whole vertebral body is low on T1 and high on STIR.", "present"),
    # a part of the body named: not diffuse; normal marrow kept is not read as its denial (an inference)
    ("Low T1 signal in a band beneath the endplate; the rest of the body is fatty.", None),
    ("Low T1 signal in the T12 body.", None),
])
def test_low_t1_signal_given_the_whole_body_is_diffuse(sentence, expected):
    fr = extract(f"Pathological fracture of T12 with 40% collapse. {sentence}").prefill.fracture
    got = fr.get("diffuse_low_t1_signal")
    assert (got.value if got else None) == expected


# --- the session's second review: wrong values the session's own rules gave, now fixed ----------------------------


@pytest.mark.parametrize("text, check", [
    ("T8 metastasis with epidural tumour. The thecal sac is indented but not effaced.",
     lambda p: p.escc["thecal_sac_deformed"].value is True),
    ("T8 metastasis with epidural tumour. The thecal sac is displaced but not compressed.",
     lambda p: p.escc["thecal_sac_deformed"].value is True),
    ("MRI THORACIC SPINE\nPatient with metastatic renal cancer and cord compression symptoms\nFINDINGS: Lytic T7 "
     "metastasis with epidural tumour; CSF visible around the cord.", lambda p: p.escc["cord_compressed"].value is None),
    ("Query lytic metastasis at T10. On review no lesion is seen.", lambda p: p.level is None),
    ("A lytic metastasis at L1 cannot be excluded.", lambda p: p.level is None),
    ("Metastatic disease throughout the spine, worst at L1 with 70% collapse. Incidental L4 haemangioma.",
     lambda p: p.sins["collapse"].value == "gt50"),
    ("Lytic metastasis T7. The epidural space is preserved at all levels except T7 where tumour compresses the cord.",
     lambda p: p.escc["epidural_disease"].value is not False),
    ("Lytic metastasis T3 with epidural disease. Above and below, the canal is clear.",
     lambda p: p.escc["epidural_disease"].value is True),
    ("T12 lytic metastasis involving 80% of the body. No collapse. No bone lesion elsewhere.",
     lambda p: p.sins["collapse"].value == "involved_no_collapse"),
    ("T8 lytic metastasis with epidural disease. At least grade 2 epidural spinal cord compression.",
     lambda p: p.escc_grade is None and p.escc["cord_compressed"].value is True),
    ("T9 metastasis shows increased enhancement and new epidural extension.",
     lambda p: p.marrow["t1_gd_fs"].value == "enhancing"),
    ("L1 lytic metastasis with peripheral enhancement; no collection.", lambda p: p.marrow["t1_gd_fs"].value == "enhancing"),
    ("L4 metastasis. Full range of movement, no restriction. DWI shows restricted diffusion in the lesion.",
     lambda p: p.marrow["dwi"].value == "restricted"),
    ("L3 spondylodiscitis with destruction of the L3/4 disc. Other discs are normal.",
     lambda p: p.marrow["crosses_disc_space"].value is True),
])
def test_wrong_values_found_by_the_second_review_stay_fixed(text, check):
    assert check(extract(text).prefill)


@pytest.mark.parametrize("text, levels", [
    ("L1 compression fracture with 40% height loss. Posterior bulge of the L1/2 disc.", ["L1"]),
    ("L4 metastasis. Degenerative disc involvement at L5/S1.", ["L4"]),
])
def test_disc_findings_are_not_the_lesions(text, levels):
    r = extract(text)
    assert r.levels == levels and "convex_posterior_border" not in r.prefill.inputs.get("fracture", {})


@pytest.mark.parametrize("text, field, expected", [
    ("T8 metastasis. Posterolateral involvement: bilateral.", "posterolateral", "bilateral"),
    ("T8 metastasis. Posterolateral involvement: unilateral (left).", "posterolateral", "unilateral"),
    ("T9 metastasis. Alignment is not disturbed.", "alignment", "normal"),
    ("T12 metastasis. Mild loss of the normal thoracolumbar alignment with segmental kyphosis at T12.", "alignment",
     "deformity"),
])
def test_sins_components_written_out(text, field, expected):
    assert extract(text).prefill.sins[field].value == expected


def test_a_grade_stated_with_is():
    assert extract("T10 metastasis. ESCC grade is 1a.").prefill.escc_grade == "1a"


@pytest.mark.parametrize("text, lesion", [
    # a lesion named after one denied item and a comma is a new statement ...
    ("T9: no collapse, lytic metastasis.", "lytic"),
    ("CT: L2 shows an area of bone destruction with no matrix, a lytic metastasis.", "lytic"),
    # ... but not inside a list of denied items
    ("No evidence of fracture, metastasis or infection at T9.", None),
    ("No fracture, dislocation, destructive lesion at T9.", None),
])
def test_a_lesion_after_one_denied_item_and_a_comma(text, lesion):
    assert extract(text).prefill.inputs.get("sins", {}).get("lesion") == lesion


@pytest.mark.parametrize("text, levels", [
    # "T1:" opening a template line of signal values is the sequence, not the first thoracic vertebra
    ("Lytic lesion at L4. T1: hypointense T2: hyperintense STIR: hyperintense Post contrast: enhancing", ["L4"]),
    ("Lytic lesion at L4.\nT1: hypointense\nT2: hyperintense", ["L4"]),
    ("T1: lytic lesion with 30% collapse.", ["T1"]),
])
def test_a_sequence_name_before_a_colon_is_not_a_level(text, levels):
    assert extract(text).levels == levels


@pytest.mark.parametrize("text, applies", [
    # a fracture called pathological beside a stated infection of the spine is the infection's
    ("T11: severe pathological compression fracture. Marrow oedema and enhancement T10-T12, in keeping with "
     "osteomyelitis.", False),
    ("Pathological fracture of T11 from a lytic metastasis, 60% height loss.", True),
])
def test_a_pathological_fracture_beside_an_infection_is_not_a_neoplasm(text, applies):
    assert extract(text).prefill.applies["sins"] is applies


@pytest.mark.parametrize("sentence, escc", [
    # the denial of a passive state is the cord's or the sac's, not the tumour's after "by"
    ("The cord is not compressed by the epidural tumour.", {"epidural_disease": True, "cord_compressed": False}),
    ("The thecal sac is not indented by the epidural tumour.", {"epidural_disease": True, "thecal_sac_deformed": False}),
    # a canal or epidural space now clear (after treatment)
    ("The epidural space is now clear.", {"epidural_disease": False}),
])
def test_passive_denials_and_spaces_now_clear(sentence, escc):
    pre = extract(f"T8 lytic metastasis. {sentence}").prefill
    assert {k: v.value for k, v in pre.escc.items() if k != "grade" and v.value is not None} == escc


def test_an_infection_at_another_level_leaves_a_pathological_fracture_neoplastic():
    assert extract("L4/5 discitis. T8 pathological fracture with 40% height loss.").prefill.applies["sins"] is True


@pytest.mark.parametrize("text, collapse", [
    # a height given as a share of the normal or original height is the height left, not a normal height
    ("Lytic metastasis replacing the entire T9 vertebral body, which is reduced to one third of its normal height.", "gt50"),
    ("T7 lytic metastasis occupying less than a quarter of the body. The vertebral body is 80% of its normal height.",
     "lt50"),
    ("Lytic T8 metastasis. Height: 80% of normal.", "lt50"),
    ("Lytic T12 metastasis with compression to 25% of normal height.", "gt50"),
    ("Entire L1 body replaced by metastasis, compressed to half its normal height.", None),  # 50%: neither
    ("T6 metastasis, reduced to a quarter of its original height.", "gt50"),
    ("Lytic T12 metastasis, collapsed down to 20% of original height.", "gt50"),
    # ... but a normal height is still a normal height
    ("Lytic T8 metastasis occupying less than half of the body. Vertebral body height is normal.", "none"),
    # a loss told as a share of the body's height
    ("Lytic lesion in L4. There is loss of two thirds of the vertebral body height. Metastasis.", "gt50"),
    ("Lytic metastasis at T8 with 30% loss of body height.", "lt50"),
    # percentages in words
    ("Seventy per cent collapse of L1 with lytic destruction. Metastasis.", "gt50"),
    ("Twenty-five per cent loss of height of the T9 vertebral body secondary to a lytic deposit.", "lt50"),
    ("Height loss of about a fifth at T8 (sclerotic metastasis).", "lt50"),
    ("Lytic T8 metastasis with fifty percent loss of height.", None),  # 50%: neither
    # no height lost is no collapse (here with the body's share stated)
    ("Sclerotic metastasis at L3 occupying less than half of the body; height loss 0%.", "none"),
    ("Sclerotic metastasis L3; height loss 0%.", None),  # no collapse, share of the body not stated
    # the share of the body after "without collapse," and a participle is stated, not denied
    ("Lytic metastasis at L1 without collapse, replacing approximately 70% of the vertebral body.", "involved_no_collapse"),
    ("Lytic metastasis at T8 without collapse, occupying less than a quarter of the body.", "none"),
    ("Level: T6\nLesion: lytic\nVertebral body height: no collapse; >50% of body involved\nImpression: metastasis.",
     "involved_no_collapse"),
])
def test_height_left_percentages_in_words_and_no_loss(text, collapse):
    assert extract(text).prefill.sins["collapse"].value == collapse


@pytest.mark.parametrize("text, field", [
    # a query mark or a doubt answering a template line doubts the answer too
    ("Lytic T5 metastasis. Alignment: ?kyphosis.", "alignment"),
    ("Lytic T5 metastasis. Alignment: possible mild kyphosis.", "alignment"),
    ("T5 metastasis. Lesion: query lytic.", "lesion"),
    ("T5 metastasis. Lesion: ?sclerotic.", "lesion"),
    # a query mark opening a sentence doubts what follows it
    ("Lytic T5 metastasis. ? subluxation at T5/6.", "alignment"),
])
def test_a_doubted_template_answer_or_query_mark_fills_nothing(text, field):
    assert extract(text).prefill.sins[field].value is None


@pytest.mark.parametrize("text, field, value", [
    ("T5 metastasis. Lesion: lytic.", "lesion", "lytic"),
    ("MRI thoracic spine.\nFindings: lytic T5 metastasis.\nCord compression: ?\nAlignment: kyphosis.", "alignment",
     "deformity"),
])
def test_a_plain_template_answer_still_fills(text, field, value):
    assert extract(text).prefill.sins[field].value == value


@pytest.mark.parametrize("text, lesion", [
    # lesion types named as alternatives leave the type undecided
    ("T5 metastasis, lytic versus sclerotic, CT recommended.", None),
    ("T5 metastasis. Lesion type: indeterminate (lytic vs blastic).", None),
    ("T8 metastasis, not clearly lytic or sclerotic.", None),
    # ... a mixed lesion written with a slash is not a choice, and a denied pair leaves a stated type alone
    ("Lytic/sclerotic metastasis at T8.", "mixed"),
    ("No lytic or sclerotic lesion elsewhere. T8 lytic metastasis.", "lytic"),
])
def test_lesion_types_named_as_alternatives(text, lesion):
    assert extract(text).prefill.sins["lesion"].value == lesion


@pytest.mark.parametrize("text, side", [
    # a plural part answered with one side in a template line is that side
    ("Lytic T9 metastasis. Pedicles: right only.", "unilateral"),
    ("Lytic T9 metastasis. Pedicles: right.", "unilateral"),
    ("MRI thoracic spine.\nLytic T9 metastasis.\nPedicles: left\nFacets: normal", "unilateral"),
    ("Lytic T9 metastasis. Pedicles: left > right.", "bilateral"),  # a comparison, not one side
    ("Lytic T9 metastasis. Posterolateral: left pedicle.", "unilateral"),
    ("Lytic T9 metastasis. Facets: left involved.", "unilateral"),
    ("Lytic T9 metastasis. Costovertebral joints: right involved.", "unilateral"),
    ("Lytic T9 metastasis extending into the pedicles.", "bilateral"),
    ("Lytic T9 metastasis involving both pedicles, left more than right.", "bilateral"),
    # the shape of normal pedicles, degenerate facets and sclerosis of the facet joints are not tumour
    ("Lytic L4 metastasis. Congenitally short pedicles with canal narrowing.", None),
    ("Lytic L3 metastasis. Degenerative facets at L3/4.", None),
    ("Enhancing metastasis in T11. Subchondral sclerosis at the T11/12 facet joints.", None),
])
def test_posterolateral_sides_in_templates_and_parts_that_are_not_tumour(text, side):
    assert extract(text).prefill.sins["posterolateral"].value == side


@pytest.mark.parametrize("text", [
    # lucency around metalwork or gas in a disc is not a lytic lesion
    "Enhancing metastasis in L1. Lucency around the L4 pedicle screws.",
    "MRI: metastasis at T6. Lucency within the disc (vacuum phenomenon) at L4/5.",
])
def test_lucency_that_is_not_a_bone_lesion(text):
    result = extract(text)
    assert result.prefill.sins["lesion"].value is None
    assert result.index_level in ("L1", "T6")


def test_a_side_word_before_another_part_leaves_plural_pedicles_both_sides():
    # "right" names the lamina; the pedicles (plural) stay both sides
    assert extract("Lytic T9 metastasis involving the right lamina and pedicles.").prefill.sins["posterolateral"].value \
        == "bilateral"


@pytest.mark.parametrize("text, lesion, collapse", [
    # a lesion named as the source or site of what a denial denies is present, and so is what is said of it after
    ("There is no evidence of cord compression from the lytic L1 metastasis, which shows 25% loss of height.",
     "lytic", "lt50"),
    ("No evidence of epidural extension of the lytic T8 metastasis, which has collapsed by 30%.", "lytic", "lt50"),
    ("No kyphosis despite the T12 lytic metastasis with 40% height loss.", "lytic", "lt50"),
    ("No fracture of the lytic T10 lesion, which occupies about 20% of the body.", "lytic", "none"),
])
def test_a_lesion_named_as_the_source_of_a_denied_finding(text, lesion, collapse):
    sins = extract(text).prefill.sins
    assert (sins["lesion"].value, sins["collapse"].value) == (lesion, collapse)


@pytest.mark.parametrize("text", [
    # ... but a lesion listed among the denied items stays denied
    "No fracture or lytic lesion at T8.",
    "No evidence of metastasis at T8.",
    "No collapse or lytic metastasis of the spine.",
])
def test_a_lesion_denied_with_other_items_stays_denied(text):
    assert extract(text).index_level is None


@pytest.mark.parametrize("text, lesion", [
    ("Breast primary. Heterogeneous lesion with areas of lysis and sclerosis in T8. Metastasis.", "mixed"),
    ("Sclerosis of the entire T10 vertebral body (metastasis).", "blastic"),
])
def test_more_lesion_type_wordings(text, lesion):
    assert extract(text).prefill.sins["lesion"].value == lesion


@pytest.mark.parametrize("text, value", [
    # both pedicles said to be free, in so many words: no posterolateral involvement
    ("Lytic T10 metastasis. The pedicles are intact.", "none"),
    ("Lytic T8 metastasis; both pedicles are spared.", "none"),
    ("Lytic T8 metastasis. Pedicles: intact.", "none"),
    ("The T8 lytic metastasis does not extend into the pedicles and there is no loss of height.", "none"),
    ("Lytic T8 metastasis. Posterolateral: None", "none"),
    # ... a side named with it leaves the component open; a part involved elsewhere decides
    ("Lytic T8 metastasis. The pedicles are intact on the left.", None),
    ("Lytic T8 metastasis. The pedicles are intact but the right facet is infiltrated.", "unilateral"),
    # more names of the posterolateral parts; a procedure through the pedicles is not tumour
    ("Lytic T5 metastasis involving the costovertebral junctions on both sides.", "bilateral"),
    ("Lytic T10 metastasis with transpedicular extension on the left.", "unilateral"),
    ("Lytic L3 metastasis extending into the left zygapophyseal joint.", "unilateral"),
    ("Lytic L1 metastasis treated by bilateral transpedicular kyphoplasty.", None),
])
def test_pedicles_spared_and_more_posterolateral_words(text, value):
    assert extract(text).prefill.sins["posterolateral"].value == value


@pytest.mark.parametrize("text, alignment", [
    # the normal sagittal curves deny a deformity; with no subluxation stated too, the alignment is normal
    ("Lytic L2 metastasis. The lumbar lordosis is preserved and there is no listhesis.", "normal"),
    ("Lytic C5 metastasis. Cervical lordosis preserved; no listhesis.", "normal"),
    ("Lytic L2 metastasis. Lumbar lordosis is maintained.", None),  # subluxation not addressed
    ("Lytic T8 metastasis with focal kyphosis. Normal lumbar lordosis.", "deformity"),
    # one vertebra displaced on the next
    ("Lytic L3 metastasis. L3 is anteriorly displaced on L4 by 6 mm.", "subluxation"),
])
def test_normal_curves_and_displacement(text, alignment):
    assert extract(text).prefill.sins["alignment"].value == alignment


@pytest.mark.parametrize("text, collapse", [
    # mild, minimal and moderate compression or wedging in other words, and the semiquantitative grades
    ("Mild (grade 1) anterior wedge fracture of L1 through a lytic lesion.", "lt50"),
    ("Moderate (grade 2) wedge fracture of T9 with underlying metastasis.", "lt50"),
    ("Minimal superior endplate compression of T11 (lytic metastasis).", "lt50"),
    ("The T10 vertebral body is mildly compressed; underlying lytic metastasis.", "lt50"),
    ("Pathological vertebral fracture of L1, semiquantitative grade 1. Sclerotic metastasis.", "lt50"),
    ("Destructive lesion at L1 with mild wedge and no malalignment. Metastasis.", "lt50"),
    ("Mild compression of the T4 vertebral body, which is diffusely sclerotic from metastatic prostate cancer.", "lt50"),
    ("Level: C4\nLesion: lytic\nVertebral body height: mild loss\nImpression: metastasis at C4.", "lt50"),
    ("Lytic T8 metastasis. Mild (grade 1) anterolisthesis of T8 on T9.", None),  # a listhesis, not a collapse
    ("Lytic L2 metastasis with mild compression of the thecal sac.", None),  # the sac, not the body
    ("Lung cancer, wedge resection 2020. Lytic T8 metastasis.", None),
    # more or less than half of the height lost, and the height left against an earlier or expected height
    ("Lytic L1 lesion with loss of more than half of the vertebral body height.", "gt50"),
    ("Lytic L1 lesion with loss of less than half of the vertebral body height.", "lt50"),
    ("Lytic T11 lesion; vertebral body flattened to less than half of its normal height.", "gt50"),
    ("Interval collapse of the T10 vertebral body, which now measures one third of its previous height. Lytic metastasis.",
     "gt50"),
    ("Sclerotic L3 metastasis throughout the vertebral body, which is 75% of its expected height.", "lt50"),
    # the body's share given in brackets or after a dash beside "no collapse"
    ("Lytic T9 metastasis without collapse (lesion occupies less than half the body).", "none"),
    ("T7 sclerotic lesion - no collapse - occupies <25% of VB.", "none"),
    # "tumour replaces the body" is a neoplasm
    ("The tumour replaces the entire L3 vertebral body; no collapse.", "involved_no_collapse"),
])
def test_more_collapse_wordings(text, collapse):
    assert extract(text).prefill.sins["collapse"].value == collapse


def test_a_figure_before_height_loss_stays_with_the_loss():
    # "40% height loss" is the loss, even with a preserved height named nearby
    text = "Lytic T8 metastasis with 40% height loss anteriorly; the posterior height is preserved."
    assert extract(text).prefill.sins["collapse"].value == "lt50"


@pytest.mark.parametrize("text, index, collapse", [
    # what a bracket right after a level says is that level's, and a denial inside the bracket ends with it
    ("Lytic metastases at T3 (no collapse, occupying 20% of the body) and T8 (vertebra plana with gibbus).", "T8", "gt50"),
    ("Metastases: T5 (sclerotic, no collapse), T11 (lytic, 25% loss of height, left pedicle involved), L3 (sclerotic).",
     "T11", "lt50"),
    ("Metastases at T4 (lytic, no collapse, 20% of body) and L1 (sclerotic, 60% collapse).", "L1", "gt50"),
])
def test_brackets_after_levels_in_a_list(text, index, collapse):
    result = extract(text)
    assert (result.index_level, result.prefill.sins["collapse"].value) == (index, collapse)


def test_a_denial_after_a_bracket_still_reaches_into_it():
    text = "Lytic L2 metastasis, 30% loss of height. Posterior elements (pedicles and facets) unaffected."
    assert extract(text).prefill.sins["posterolateral"].value == "none"



@pytest.mark.parametrize("text, field, value", [
    # found by a second reader of the session's rules: each must stay as it is here
    ("MRI whole spine for MSCC. No cord compression from metastatic disease. No spinal metastases.", "index", None),
    ("Acute osteoporotic L2 fracture with 30% loss of height. No collapse caused by a lytic metastasis.", "lesion", None),
    ("Lytic T8 metastasis without collapse. Replacement of normal marrow in 30% of the vertebral body.", "collapse", "none"),
    ("The cord is compressed to 5 mm. There is 30% height loss at T8 from a lytic metastasis.", "collapse", "lt50"),
    ("Progression of collapse to 40% at T10 from lytic metastasis.", "collapse", "lt50"),
    ("Lytic C4 metastasis. Reversal of the normal cervical lordosis at C4. No listhesis.", "alignment", None),
    ("Lytic L2 metastasis. Normal lordosis with 4 mm anterolisthesis of L2 on L3.", "alignment", "subluxation"),
    ("Lytic T8 metastasis. Pedicles spared except the right.", "posterolateral", None),
    ("Lytic T8 metastasis. Pedicles intact? Assess on CT.", "posterolateral", None),
    ("MRI thoracic spine.\nEpidural disease: possible, lytic T9 metastasis with 30% collapse.", "collapse", "lt50"),
    ("Lytic metastasis at T9 involving the pedicles - right neural foramen is narrowed.", "posterolateral", "bilateral"),
    ("Lytic T9 metastasis. Bilateral zygapophyseal joint arthropathy.", "posterolateral", None),
    ("Lytic T9 metastasis without collapse, sparing 70% of the vertebral body.", "collapse", None),
    ("Haemangioma at L1 with tumour involving the whole body.", "applies", False),
])
def test_second_review_regressions(text, field, value):
    r = extract(text)
    if field == "index":
        assert r.index_level == value
    elif field == "applies":
        assert r.prefill.applies["sins"] is value
    else:
        component = r.prefill.sins.get(field)
        assert (component.value if component is not None else None) == value


@pytest.mark.parametrize("text, index, field, value", [
    # a sentence that names the tumour without a level continues the last sentence with a finding, not an incidental
    # one between them
    ("Lytic metastasis at T9. Previous kyphoplasty at L1. Tumour extends into the right pedicle.", "T9",
     "posterolateral", "unilateral"),
    ("Destructive lytic lesion of L3. Facet arthropathy at L4-5. The tumour involves the right pedicle and facet.", "L3",
     "posterolateral", "unilateral"),
    ("Sclerotic metastasis at T4. Haemangioma at T8. There is 30% loss of vertebral body height due to the metastasis.",
     "T4", "collapse", "lt50"),
])
def test_a_tumour_sentence_after_an_incidental_one(text, index, field, value):
    r = extract(text)
    assert (r.index_level, r.prefill.sins[field].value) == (index, value)


def test_a_sentence_without_a_tumour_word_still_continues_the_one_before():
    # the oedema after a Modic change is at the Modic change's levels, not the metastasis's
    r = extract("Lytic metastasis at T9. Modic type 1 change at L4-5. There is marrow oedema.")
    oedema = [f for f in r.findings if f.concept == "oedema"]
    assert oedema and all("T9" not in f.levels for f in oedema)


def test_a_template_line_naming_tumour_after_a_line_without_a_level_continues_nothing():
    # "Epidural disease: right ventral epidural tumour ..." after a level-less line is about the index lesion, not a
    # deposit named lines before
    text = ("MRI whole spine.\nLevel survey: T12 lesion. Small enhancing deposit in the L4 spinous process.\n"
            "INDEX LESION: T12\n- Bone lesion quality: lytic\n- Alignment: de novo kyphosis, 10 degrees at T11-L1\n"
            "- Posterior wall: bulges convexly into the canal\n"
            "- Epidural disease: right ventral epidural tumour abutting but not deforming the thecal sac\n"
            "CONCLUSION: T12 lytic metastasis.")
    assert extract(text).prefill.escc["epidural_disease"].value is True


@pytest.mark.parametrize("text, collapse", [
    ("Plasmacytoma. No collapse of D6 despite near-complete replacement of the body.", "involved_no_collapse"),
    # "despite" right before the share only; "of it" and "the majority of the body" were withdrawn after a review
    # ("the majority of the body is spared", "effaces 75% of it")
    ("No collapse of T8 despite radiotherapy to the entire vertebral body. Lytic metastasis.", None),
    ("Lytic T8 metastasis without collapse; the majority of the body is spared.", None),
    ("Lytic T8 metastasis without collapse. Epidural tumour surrounds the cord and effaces 75% of it.", None),
])
def test_more_ways_to_say_how_much_of_the_body_is_involved(text, collapse):
    assert extract(text).prefill.sins["collapse"].value == collapse


def test_a_line_opened_by_a_level_ends_a_history_line_without_a_blank_line():
    text = "MRI T-spine\nIndication: Melanoma\nT6: metastasis. Height: 70% of normal. Alignment: normal."
    r = extract(text)
    assert (r.index_level, r.prefill.sins["collapse"].value, r.prefill.sins["alignment"].value) == ("T6", "lt50", "normal")
    # a history line naming a level stays history
    assert extract("MRI T-spine\nClinical history: breast cancer, previous T8 fracture.\nT2: normal; no lesion.").index_level \
        is None



@pytest.mark.parametrize("text, index, field, value", [
    # found by a third reader: a level named inside a bracket is an aside; a finding after the bracket is the first
    # level's
    ("Lytic metastasis at L2 (not L3) with 30% collapse.", "L2", "collapse", "lt50"),
    ("Lytic metastasis at L2 (unlike L5, which has no collapse) with 30% collapse.", "L2", "collapse", "lt50"),
    # a sentence stating cord compression is not incidental: "the tumour" after it is the cord-compressing lesion's
    ("Lytic metastasis at T4. Cord compression at T9. The tumour extends into the left pedicle.", "T4", "posterolateral",
     None),
    # a history whose level lines come before a findings heading stays history
    ("MRI spine\nHistory: lung cancer\nT6: biopsy-proven metastasis, 30% collapse\n\nFindings: Lytic metastasis at T8 "
     "with vertebra plana.", "T8", "collapse", "gt50"),
])
def test_third_review_regressions(text, index, field, value):
    r = extract(text)
    assert (r.index_level, r.prefill.sins[field].value) == (index, value)


@pytest.mark.parametrize("text, field, value", [
    # more corrections after the second and third reviews
    ("T8 metastasis. Height loss amounting to 30% of the normal height.", "collapse", None),  # a loss: never over 50%
    ("Thecal sac compressed to 6 mm, 30% height loss of T12 (metastasis).", "collapse", "lt50"),
    ("Lytic T10 metastasis. Vertebral body height: 60% of normal (tumour throughout the body).", "collapse", "lt50"),
    # the normal marrow's share is not the lesion's ("small" gives the lesion's)
    ("No collapse or marrow replacement (normal marrow in 90% of the body). Small L2 metastasis.", "collapse", "none"),
    ("Lesion type - lytic, sclerotic or mixed: mixed. T5 metastasis.", "lesion", None),
    ("L1 metastasis. The normal lordosis is reversed at L1. No listhesis.", "alignment", None),
    ("T10 metastasis. Normal kyphosis? No listhesis.", "alignment", None),
    ("T7 metastasis with collapse. Exaggeration of the normal thoracic kyphosis. No listhesis.", "alignment", None),
    ("Pedicles intact. Possible early involvement of the left facet at L1 (metastasis).", "posterolateral", None),
    ("T11 metastasis. Pedicles are spared on MRI but CT shows early cortical breach on the left.", "posterolateral", None),
    ("L4 lytic metastasis. Degenerative zygapophyseal joints.", "posterolateral", None),
    ("L3 lytic metastasis. L3 is anteriorly displaced on L4 by 3 mm (degenerative).", "alignment", None),
])
def test_later_review_corrections(text, field, value):
    assert extract(text).prefill.sins[field].value == value


@pytest.mark.parametrize("text, collapse, confidence", [
    # a body said to be free of the lesion, with no collapse stated: none, at moderate confidence
    ("Lytic metastasis of the C2 posterior arch. The C2 body is uninvolved.", "none", "moderate"),
    ("Lytic metastasis of the L3 lamina. The L3 vertebral body is normal in signal and height.", "none", "moderate"),
    ("Metastasis of the T4 spinous process. The T4 body is largely spared and has not collapsed.", "none", "high"),
    # ... not when the other bodies are the ones said to be normal, nor beside a stated fracture
    ("Lytic T8 metastasis, no collapse. The other vertebral bodies are normal in height and signal.", None, None),
    ("Lytic metastasis of the C2 posterior arch with a fracture of the body. The C2 body is uninvolved by tumour.", None,
     None),
])
def test_a_body_free_of_the_lesion(text, collapse, confidence):
    p = extract(text).prefill.sins["collapse"]
    assert (p.value, p.confidence) == (collapse, confidence)


def test_what_follows_despite_is_stated():
    text = "Lytic T9 metastasis occupying the entire body; no cord compression despite 60% loss of height."
    pre = extract(text).prefill
    assert (pre.sins["collapse"].value, pre.escc["cord_compressed"].value) == ("gt50", False)


def test_results_built_without_validation_survive_validation_unchanged():
    """Findings, cues, evidence and pre-filled values are built from values the reader computed itself, without
    validating them again (``results.trusted``): on every evaluation report the result validates back to the same
    values, and serialising it raises no type warning (a tuple where a list belongs, a wrong literal)."""
    import warnings

    from spinemets.reports.extract import ExtractResult

    texts = [p.read_text(encoding="utf-8") for p in sorted((ROOT / "tests" / "data" / "reports").glob("*/*.txt"))]
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # (pydantic's serialiser warnings; not a library's deprecation)
        for text in texts:
            dumped = extract(text).model_dump()
            assert ExtractResult.model_validate(dumped).model_dump() == dumped
            ExtractResult.model_validate_json(extract(text).model_dump_json())
    assert len(texts) > 1000


def test_a_trusted_model_still_needs_its_required_fields():
    from spinemets.reports.extract import Cue
    from spinemets.results import trusted

    with pytest.raises(TypeError, match=r"Cue: missing \['rule'\]"):
        trusted(Cue, None, category="NEGATED_EXISTENCE", text="no", start=0, end=2)
    with pytest.raises(TypeError, match=r"Cue: no field \['uncertian'\]"):
        trusted(Cue, None, category="NEGATED_EXISTENCE", text="no", start=0, end=2, rule="r", uncertian=True)
    cue = trusted(Cue, None, category="NEGATED_EXISTENCE", text="no", start=0, end=2, rule="r")
    assert cue == Cue(category="NEGATED_EXISTENCE", text="no", start=0, end=2, rule="r")
    assert cue.model_fields_set == {"category", "text", "start", "end", "rule"}


def test_a_trusted_model_gets_its_private_defaults_and_no_shared_mutable_default():
    from pydantic import BaseModel, PrivateAttr

    from spinemets.reports.extract import Finding
    from spinemets.results import trusted

    f = trusted(Finding, None, concept="lesion", value="lytic", text="lytic", start=0, end=5, assertion="present",
                context="present", section="findings", rule="r")
    assert f.__pydantic_private__ == {"_row": None} and f.levels == [] and f.levels is not trusted(
        Finding, None, concept="lesion", value="lytic", text="lytic", start=0, end=5, assertion="present",
        context="present", section="findings", rule="r").levels

    class Shared(BaseModel):
        _hidden: int = PrivateAttr(default=3)
        items: list[int] = []

    with pytest.raises(TypeError, match="Shared.items: a mutable default"):
        trusted(Shared)



def test_a_fraction_word_with_a_folded_letter_is_read_not_a_crash():
    """Found by review: a long s ("\u017feventy per cent") matches the fraction words ignoring case, as Python folds
    it, but the value lookup by the lower-cased text failed (a server error on the page)."""
    r = extract("T7 compression fracture with \u017feventy per cent loss of height.")
    assert r.prefill.sins["collapse"].value == "gt50"


def test_a_site_fraction_word_outside_ascii_is_found_in_an_ascii_text(tmp_path):
    """Found by review: the shortcut that skips the fraction search when no fraction word's last word is in the text
    missed a site word with a dotless i ("yar\u0131s\u0131") written with a plain i, which the pattern itself matches."""
    path = tmp_path / "site.yaml"
    path.write_text('terms:\n  - {id: site-yarisi, kind: fraction, words: ["yar\u0131s\u0131"], percent: 50}\n',
                    encoding="utf-8")
    from spinemets.reports.extract import _percent_regex

    amounts = _percent_regex(load_rules(None, str(path)))[0]
    text = "loss of yarisi of the height (previously 10%)"
    assert [m.group(0) for m in amounts.finditer(text, text.lower())] == [
        m.group(0) for m in amounts.pattern.finditer(text)] == ["yarisi", "10%"]
    extract("T7 wedge fracture with loss of yarisi of the height.", rules=str(path))  # read, not a crash
