"""The ``spinemets`` command line.

Readable output by default, ``--json`` for scripts.  Exit codes: 0 success,
2 invalid or contradictory input (the message names the field and the
allowed values), 3 insufficient data, 1 knowledge-base problems.  Whatever
goes wrong, the user gets one line on standard error, never a traceback:

* a case or scenario file that is not UTF-8, not JSON, too deeply nested or too
  large, or a JSON value that is not an object (``null``, a list): exit 2;
* a case with no section to assess (``{}``): exit 3 (insufficient data), the
  sections it could hold named;
* a database that cannot be opened or reached (``SPINEMETS_DATABASE_URL``), or a
  file that cannot be read or written: exit 2;
* standard output closed early (``spinemets kb sources | head``): no message,
  exit 141 (128 + SIGPIPE, what the shell reports for other tools).

Echoed values in error messages are cut short.  Heavy imports happen inside
the commands so that ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import sys
from collections.abc import Sequence
from typing import Any

EXIT_OK, EXIT_KB, EXIT_INVALID, EXIT_INSUFFICIENT = 0, 1, 2, 3
EXIT_PIPE = 128 + 13  # standard output closed by the reader (SIGPIPE), as the shell reports it
MAX_DOCUMENT_BYTES = 1 << 20  # a case or scenario document is a small JSON object
MAX_MESSAGE_CHARS = 1000  # an error message longer than this (an echoed value) is cut short
JSON_TYPES = {type(None): "null", list: "an array", str: "a string", bool: "a boolean", int: "a number", float: "a number"}

YES = {"yes", "y", "true", "1", "present"}
NO = {"no", "n", "false", "0", "absent"}


def _bool(text: str) -> bool | None:
    t = text.strip().lower()
    if t in YES:
        return True
    if t in NO:
        return False
    if t in ("unknown", "?"):
        return None
    raise argparse.ArgumentTypeError(f"{text!r}: use yes, no or unknown")


def _emit(result: Any, as_json: bool) -> None:
    if as_json:
        print(result.model_dump_json(indent=2))
    else:
        print(result.to_text())


def _status_code(status: str) -> int:
    return EXIT_OK if status == "complete" else EXIT_INSUFFICIENT


# --- commands -------------------------------------------------------------------------------------------


def cmd_sins(a: argparse.Namespace) -> int:
    from spinemets.scores.sins import COMPONENTS, sins

    data = {k: getattr(a, k) for k in ("level", *COMPONENTS) if getattr(a, k) is not None}
    r = sins(data)
    _emit(r, a.json)
    return _status_code(r.status)


def cmd_escc(a: argparse.Namespace) -> int:
    from spinemets.scores.escc import FINDINGS, escc

    data: dict[str, Any] = {k: getattr(a, k) for k in FINDINGS if getattr(a, k) is not None}
    if a.grade is not None:
        data["grade"] = a.grade
    if a.level is not None:
        data["level"] = a.level
    r = escc(data)
    _emit(r, a.json)
    return _status_code(r.status)


def cmd_noms(a: argparse.Namespace) -> int:
    from spinemets.scores.noms import noms

    data: dict[str, Any] = {
        "escc_grade": a.escc_grade, "histology": a.histology, "sins_total": a.sins_total,
        "fit_for_surgery": a.fit_for_surgery, "myelopathy": a.myelopathy,
    }
    r = noms({k: v for k, v in data.items() if v is not None})
    _emit(r, a.json)
    return _status_code(r.status)


PROGNOSIS_FIELDS = ("primary", "karnofsky", "vertebral_metastases", "extraspinal_bone_metastases", "organ_metastases",
                    "visceral_metastases", "frankel", "ambulation", "albumin_g_dl", "albumin_g_l")


def cmd_prognosis(a: argparse.Namespace) -> int:
    from spinemets.scores.prognosis import prognosis, score

    data = {k: getattr(a, k) for k in PROGNOSIS_FIELDS if getattr(a, k) is not None}
    r = prognosis(data) if a.score is None else score(a.score, data)
    _emit(r, a.json)
    return _status_code(r.status)


def _parse_test(spec: str) -> dict[str, Any]:
    """'modality=mri,result=positive,source=harlianto-2024' or 'se=0.9,sp=0.8,result=negative'."""
    out: dict[str, Any] = {}
    keys = {"se": "sensitivity", "sp": "specificity", "lr": "likelihood_ratio"}
    for part in spec.split(","):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        if not sep:
            raise argparse.ArgumentTypeError(f"--test {spec!r}: expected key=value pairs, e.g. modality=mri,result=positive")
        key = keys.get(key.strip(), key.strip())
        value = value.strip()
        if key in ("sensitivity", "specificity", "likelihood_ratio"):
            try:
                out[key] = float(value)
            except ValueError:
                what = "a positive number" if key == "likelihood_ratio" else "a number between 0 and 1"
                raise argparse.ArgumentTypeError(f"--test {key}={value!r}: expected {what}") from None
        else:
            out[key] = value
    return out


def cmd_probability(a: argparse.Namespace) -> int:
    from spinemets.interpret.probability import post_test_probability

    data: dict[str, Any] = {"pre_test": a.pre_test, "tests": a.test or []}
    if a.histology is not None:
        data["histology"] = a.histology
    if a.purely_lytic is not None:
        data["purely_lytic"] = a.purely_lytic
    r = post_test_probability(data)
    _emit(r, a.json)
    return _status_code(r.status)


def cmd_pathway(a: argparse.Namespace) -> int:
    from spinemets.pathway import pathway

    data: dict[str, Any] = _read_object(a.scenario, "scenario") if a.scenario else {}
    flags = {
        "age": a.age, "adult": a.adult, "cancer_history": a.cancer_history, "primary_site": a.primary_site,
        "unknown_primary": a.unknown_primary, "breast_her2_positive": a.her2_positive,
        "breast_triple_negative": a.triple_negative, "brain_symptoms": a.brain_symptoms,
        "spinal_hardware": a.spinal_hardware,
        "treatment_intent": a.treatment_intent,
        "spinal_pain": a.spinal_pain, "pain_region": a.pain_region, "asymptomatic_surveillance": a.surveillance,
        "suspected_cord_compression": a.suspected_cord_compression, "suspected_cauda_equina": a.suspected_cauda_equina,
        "known_lesion_purpose": a.purpose, "sex": a.sex, "pregnant": a.pregnant, "egfr": a.egfr,
        "on_dialysis": a.dialysis, "implanted_device": a.implant, "primary_bone_tumour_possible": a.primary_bone_tumour,
        "treatment_given": a.treatment_given, "months_since_treatment": a.months_since_treatment,
        "night_pain": a.night_pain, "pain_duration_weeks": a.pain_weeks, "pain_progressive": a.pain_progressive,
    }
    data.update({k: v for k, v in flags.items() if v is not None})
    if a.red_flag is not None or a.no_red_flags:
        data["red_flags"] = a.red_flag or []
    if a.neuro_deficit is not None or a.no_neuro_deficit:
        data["neuro_deficits"] = a.neuro_deficit or []
    for key, value in (("mri_contraindications", a.mri_contraindication), ("contrast_concerns", a.contrast_concern)):
        if value:
            data[key] = value
    r = pathway(data)
    _emit(r, a.json)
    return _status_code(r.status)


def _read_json(path: str, field: str = "case") -> Any:
    """The JSON document in *path* (``-``: standard input); every way it can be unusable is an error naming *field*."""
    from spinemets.errors import InvalidInputError

    try:
        if path == "-":
            raw = sys.stdin.buffer.read(MAX_DOCUMENT_BYTES + 1)
        else:
            with open(path, "rb") as f:
                raw = f.read(MAX_DOCUMENT_BYTES + 1)
    except OSError as exc:
        raise InvalidInputError(field, f"cannot read {path}: {exc.strerror or exc}") from None
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise InvalidInputError(field, f"larger than {MAX_DOCUMENT_BYTES // 1024} KiB; a {field} document is a small JSON object")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInputError(
            field, f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}); give a JSON document"
        ) from None

    def no_constant(name: str) -> Any:
        raise ValueError(f"{name} is not a JSON number")

    try:
        return json.loads(text, parse_constant=no_constant)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(field, f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except ValueError as exc:
        raise InvalidInputError(field, f"not valid JSON: {exc}") from None
    except RecursionError:
        raise InvalidInputError(field, "JSON nested too deeply to read") from None


def _read_object(path: str, field: str) -> dict[str, Any]:
    """A JSON document that must be an object (``null``, lists and numbers are errors)."""
    from spinemets.errors import InvalidInputError

    doc = _read_json(path, field)
    if not isinstance(doc, dict):
        raise InvalidInputError(field, f"expected a JSON object, got {JSON_TYPES.get(type(doc), type(doc).__name__)}")
    return doc


def cmd_assess(a: argparse.Namespace) -> int:
    from spinemets.assess import CaseDocument, assess

    r = assess(_read_object(a.case, "case"))
    _emit(r, a.json)
    if not r.statuses:
        sections = ", ".join(name for name in CaseDocument.model_fields if name != "case_id")
        print(f"insufficient data: the case has nothing to assess; give at least one of: {sections}", file=sys.stderr)
        return EXIT_INSUFFICIENT
    return EXIT_OK if r.complete else EXIT_INSUFFICIENT


def cmd_schema(a: argparse.Namespace) -> int:
    from spinemets.assess import case_schema

    print(json.dumps(case_schema(), indent=2))
    return EXIT_OK


def cmd_kb_check(a: argparse.Namespace) -> int:
    from spinemets.knowledge.loader import check_kb, load_kb

    problems = check_kb(a.path)
    if problems:
        for p in problems:
            print(f"kb check: {p}", file=sys.stderr)
        print(f"kb check: {len(problems)} problem(s)", file=sys.stderr)
        return EXIT_KB
    kb = load_kb(a.path)
    drafts = sum(1 for s in kb.statements.values() if s.is_draft)
    rows = sum(len(t.rows) for t in kb.tables.values())
    print(
        f"kb check: ok - version {kb.version}: {len(kb.sources)} sources, {len(kb.statements)} statements "
        f"({drafts} draft), {len(kb.tables)} tables ({rows} rows)"
    )
    return EXIT_OK


def cmd_kb_show(a: argparse.Namespace) -> int:
    from spinemets.knowledge.loader import load_kb
    from spinemets.knowledge.models import Source, Statement, Table, TableRow

    kb = load_kb()
    item = kb.find(a.id)
    if a.json:
        print(item.model_dump_json(indent=2))
        return EXIT_OK
    if isinstance(item, Statement):
        flag = "  [DRAFT - unverified]" if item.is_draft else ""
        print(f"{item.id}{flag}\n  {item.text}\n  For patients: {item.patient_text}")
        print(f"  kind: {item.kind}; evidence: {item.evidence.value}; verification: {item.verification.value}")
        print(f"  review: {item.review_status.value}, last reviewed {item.last_reviewed}; topics: {', '.join(item.topics)}")
        for i, sid in enumerate(item.sources, 1):
            print(f"  [{i}] {kb.source(sid).short()}")
    elif isinstance(item, Source):
        print(f"{item.id} ({item.kind.value}; citation {item.verification.value})\n  {item.short()}")
        if item.note:
            print(f"  note: {item.note}")
        print(f"  review: {item.review_status.value}, last reviewed {item.last_reviewed}")
    elif isinstance(item, Table):
        print(f"{item.id}: {item.title}\n  {item.description}\n  review: {item.review_status.value}, last reviewed {item.last_reviewed}")
        for row in item.rows:
            print(f"  - {row.id}: {_row_text(row)} [{', '.join(row.sources)}]")
    elif isinstance(item, TableRow):
        print(f"{a.id}: {_row_text(item)}")
        for sid in item.sources:
            print(f"  - {kb.source(sid).short()}")
    print(f"\nKnowledge base {kb.version}. {kb.manifest.disclaimer}")
    return EXIT_OK


def _row_text(row: Any) -> str:
    extra = row.model_extra or {}
    return "; ".join(f"{k}={v}" for k, v in extra.items() if k not in ("aliases",))


def cmd_kb_search(a: argparse.Namespace) -> int:
    from spinemets.knowledge.search import search

    from spinemets.knowledge.loader import load_kb

    kb = load_kb()
    hits = search(" ".join(a.words), kb, limit=a.limit)
    if a.json:
        print(json.dumps([{"id": h.id, "score": h.score, "text": h.text} for h in hits], indent=2))
        return EXIT_OK
    if not hits:
        print("no matching statements")
    for h in hits:
        draft = " [DRAFT]" if kb.statements[h.id].is_draft else ""
        print(f"{h.id}{draft}\n  {h.text}\n  sources: {', '.join(kb.statements[h.id].sources)}")
    return EXIT_OK


def cmd_kb_sources(a: argparse.Namespace) -> int:
    from spinemets.knowledge.loader import load_kb

    kb = load_kb()
    if a.json:
        print(json.dumps([s.model_dump(mode="json") for s in kb.sources.values()], indent=2))
        return EXIT_OK
    for s in sorted(kb.sources.values(), key=lambda s: s.id):
        flag = " [citation unverified]" if s.verification.value == "unverified" else ""
        print(f"{s.id} ({s.kind.value}){flag}\n  {s.short()}")
    return EXIT_OK


def cmd_version(a: argparse.Namespace) -> int:
    from spinemets import __version__
    from spinemets.knowledge.loader import load_kb

    print(f"spinemets {__version__}, knowledge base {load_kb().version}")
    return EXIT_OK


# --- parser ---------------------------------------------------------------------------------------------


class _HelpFormatter(argparse.HelpFormatter):
    """Help texts may carry a literal % ("signal drop %"): argparse would read it as a format code and crash."""

    def _expand_help(self, action: argparse.Action) -> str:
        if action.help and "%" in action.help:
            action = copy.copy(action)
            action.help = re.sub(r"%(%|\()?", lambda m: m.group(0) if m.group(1) else "%%", str(action.help))
        return super()._expand_help(action)


class _Parser(argparse.ArgumentParser):
    """Every parser and sub-parser (the adapters' too, through add_subparsers) formats help safely."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="spinemets",
        description="Decision support for the imaging diagnosis of vertebral metastases "
        "(for healthcare professionals; every result cites its sources).",
        epilog="Exit codes: 0 success; 1 knowledge-base problem; 2 invalid or contradictory input, or a database "
        "that cannot be used; 3 insufficient data (also a case with nothing to assess); 4 audit chain broken "
        "(audit verify); 141 output closed early (e.g. piped into head).",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, func: Any, help: str) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help, description=help)
        sp.set_defaults(func=func)
        sp.add_argument("--json", action="store_true", help="machine-readable output")
        return sp

    s = add("sins", cmd_sins, "Spinal Instability Neoplastic Score (Fisher 2010)")
    s.add_argument("--level", help="most affected level, C0 (occiput) to S5, e.g. T12")
    s.add_argument("--location", help="junctional / mobile / semi_rigid / rigid (if no level)")
    s.add_argument("--pain", help="mechanical / occasional / none")
    s.add_argument("--lesion", help="lytic / mixed / blastic")
    s.add_argument("--alignment", help="subluxation / deformity / normal")
    s.add_argument("--collapse", help="gt50 / lt50 / involved_no_collapse / none")
    s.add_argument("--posterolateral", help="bilateral / unilateral / none")

    e = add("escc", cmd_escc, "Epidural spinal cord compression grade (Bilsky 2010)")
    e.add_argument("--grade", help="a stated grade: 0, 1a, 1b, 1c, 2, 3")
    e.add_argument("--level", help="the level or range graded, e.g. T7 or L2-L3 (adds what the sources say there)")
    for name, text in (
        ("epidural_disease", "epidural tumour present"),
        ("thecal_sac_deformed", "thecal sac deformed"),
        ("cord_abutted", "spinal cord abutted"),
        ("cord_compressed", "spinal cord compressed"),
        ("csf_visible", "CSF visible around the cord"),
    ):
        e.add_argument("--" + name.replace("_", "-"), dest=name, type=_bool, metavar="yes|no", help=text)

    n = add("noms", cmd_noms, "NOMS treatment framing (Laufer 2013)")
    n.add_argument("--escc-grade", help="0, 1a, 1b, 1c, 2, 3")
    n.add_argument("--histology", help="primary tumour histology, e.g. 'renal cell carcinoma'")
    n.add_argument("--sins-total", type=int, help="SINS total 0-18")
    n.add_argument("--fit-for-surgery", type=_bool, metavar="yes|no")
    n.add_argument("--myelopathy", type=_bool, metavar="yes|no")

    for name, text in (("prognosis", "prognostic scores side by side: revised Tokuhashi, Tomita, modified Bauer, NESMS"),
                       ("tokuhashi", "revised Tokuhashi score (Tokuhashi 2005)"),
                       ("tomita", "Tomita score (Tomita 2001; points not yet confirmed in the paper)"),
                       ("bauer", "modified Bauer score (Leithner 2008)"),
                       ("nesms", "New England Spinal Metastasis Score (thresholds not yet confirmed in the paper)")):
        g = add(name, cmd_prognosis, text)
        g.set_defaults(score=None if name == "prognosis" else name)
        g.add_argument("--primary", help="primary tumour, e.g. breast, 'renal cell carcinoma', 'unknown primary'")
        g.add_argument("--karnofsky", type=int, help="Karnofsky performance status 10-100 (steps of 10)")
        g.add_argument("--vertebral-metastases", type=int, metavar="N", help="vertebrae with metastases")
        g.add_argument("--extraspinal-bone-metastases", type=int, metavar="N", help="bone metastases outside the spine")
        g.add_argument("--organ-metastases", help="major internal organs (Tokuhashi): none / removable / unremovable")
        g.add_argument("--visceral-metastases", help="visceral (Tomita, Bauer): none / treatable / untreatable")
        g.add_argument("--frankel", help="Frankel grade A-E")
        g.add_argument("--ambulation", help="independent / assisted / unable")
        g.add_argument("--albumin-g-dl", type=float, metavar="G_DL", help="serum albumin in g/dL")
        g.add_argument("--albumin-g-l", type=float, metavar="G_L", help="serum albumin in g/L")

    pr = add("probability", cmd_probability, "post-test probability of metastasis after one or more tests")
    pr.add_argument("--pre-test", type=float, required=True, help="pre-test probability 0-1")
    pr.add_argument(
        "--test", action="append", type=_parse_test, metavar="KEY=VALUE,...",
        help="a test in order: modality=mri,result=positive[,source=harlianto-2024][,unit=lesion] "
        "or se=0.9,sp=0.8,result=negative, or lr=9,result=positive (the result's likelihood ratio); repeat for a "
        "sequence",
    )
    pr.add_argument("--histology", help="primary tumour, e.g. 'multiple myeloma', 'renal cell carcinoma', 'thyroid'")
    pr.add_argument("--purely-lytic", type=_bool, metavar="yes|no", help="the lesions are purely lytic")

    pw = add("pathway", cmd_pathway, "what to image, how and how fast, for a clinical scenario")
    pw.add_argument("scenario", nargs="?", help="scenario JSON file or - (flags below add to it)")
    pw.add_argument("--age", type=int)
    pw.add_argument("--adult", type=_bool, metavar="yes|no", help="an adult whose age is not given (adult doses and time limits)")
    pw.add_argument("--cancer-history", help="none / current / previous")
    pw.add_argument("--primary-site", help="e.g. breast, prostate, lung")
    pw.add_argument("--unknown-primary", type=_bool, metavar="yes|no")
    pw.add_argument("--her2-positive", type=_bool, metavar="yes|no")
    pw.add_argument("--triple-negative", type=_bool, metavar="yes|no")
    pw.add_argument("--spinal-hardware", type=_bool, metavar="yes|no",
                    help="spinal instrumentation (screws, rods) near the region")
    pw.add_argument("--brain-symptoms", type=_bool, metavar="yes|no",
                    help="a new headache or another symptom suggesting brain involvement")
    pw.add_argument("--treatment-intent", help="curative / palliative")
    pw.add_argument("--spinal-pain", type=_bool, metavar="yes|no")
    pw.add_argument("--pain-region", help="cervical / thoracic / lumbar / sacral / multiple")
    pw.add_argument("--red-flag", action="append", help="a red flag id (repeat); see `spinemets kb show red_flags`")
    pw.add_argument("--no-red-flags", action="store_true", help="red flags assessed: none")
    pw.add_argument("--neuro-deficit", action="append", help="motor_weakness / sensory_level / sphincter / gait / radicular (repeat)")
    pw.add_argument("--no-neuro-deficit", action="store_true", help="examined: no neurological deficit")
    pw.add_argument("--suspected-cord-compression", type=_bool, metavar="yes|no")
    pw.add_argument("--suspected-cauda-equina", type=_bool, metavar="yes|no")
    pw.add_argument("--surveillance", type=_bool, metavar="yes|no", help="asymptomatic routine follow-up")
    pw.add_argument("--mri-contraindication", action="append", help="non_mr_conditional_device / claustrophobia / metal_artefact / metallic_foreign_body / reason_not_given")
    pw.add_argument("--contrast-concern", action="append", help="reduced_renal_function / prior_gadolinium_reaction / pregnancy")
    pw.add_argument("--purpose", help="for a known lesion: characterise / stage / plan_treatment / follow_up / response_assessment")
    pw.add_argument("--sex", help="female / male")
    pw.add_argument("--pregnant", type=_bool, metavar="yes|no")
    pw.add_argument("--egfr", type=float, help="eGFR in mL/min/1.73 m2")
    pw.add_argument("--dialysis", type=_bool, metavar="yes|no")
    pw.add_argument("--implant", help="none / mr_safe / mr_conditional / mr_unsafe / non_mr_conditional_cardiac / labelling_unknown")
    pw.add_argument("--primary-bone-tumour", type=_bool, metavar="yes|no", help="a primary bone tumour is possible")
    pw.add_argument("--treatment-given", help="sbrt / conventional_radiotherapy / surgery / systemic")
    pw.add_argument("--months-since-treatment", type=float)
    pw.add_argument("--night-pain", type=_bool, metavar="yes|no")
    pw.add_argument("--pain-weeks", type=float, help="duration of the pain in weeks")
    pw.add_argument("--pain-progressive", type=_bool, metavar="yes|no")

    a = add("assess", cmd_assess, "every result a case document allows")
    a.add_argument("case", help="case document: a JSON object, in a file or - for standard input "
                   "(see `spinemets schema`); a case with no section to assess exits 3")

    sch = sub.add_parser("schema", help="JSON Schema of the case document")
    sch.set_defaults(func=cmd_schema)

    kb = sub.add_parser("kb", help="the knowledge base: check, show, search, sources")
    kbsub = kb.add_subparsers(dest="kb_command", required=True, metavar="KB_COMMAND")
    c = kbsub.add_parser("check", help="validate every source, statement and table")
    c.add_argument("--path", help="knowledge-base folder to check (default: the packaged one)")
    c.set_defaults(func=cmd_kb_check)
    sh = kbsub.add_parser("show", help="show one item by id (TABLE.ROW for a table row)")
    sh.add_argument("id")
    sh.add_argument("--json", action="store_true")
    sh.set_defaults(func=cmd_kb_show)
    se = kbsub.add_parser("search", help="search statements")
    se.add_argument("words", nargs="+")
    se.add_argument("--limit", type=int, default=10)
    se.add_argument("--json", action="store_true")
    se.set_defaults(func=cmd_kb_search)
    so = kbsub.add_parser("sources", help="list the bibliography")
    so.add_argument("--json", action="store_true")
    so.set_defaults(func=cmd_kb_sources)

    v = sub.add_parser("version", help="package and knowledge-base versions")
    v.set_defaults(func=cmd_version)

    # Adapters register their own commands (kept in light modules so that --help stays fast).
    import importlib

    for module in PLUGIN_COMMANDS:
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name and (module == exc.name or module.startswith(exc.name + ".")):
                continue  # that adapter is not part of this installation
            raise
        mod.register(sub, add)
    return p


PLUGIN_COMMANDS = (
    "spinemets.interpret.commands",
    "spinemets.ask.commands",
    "spinemets.api.commands",
    "spinemets.reports.commands",
    "spinemets.store.commands",
    "spinemets.fhir.commands",
    "spinemets.dicom.commands",
)


def _short(message: str) -> str:
    """The message, cut short when it echoes a long value (a pasted report, a megabyte of JSON)."""
    if len(message) <= MAX_MESSAGE_CHARS:
        return message
    return f"{message[:MAX_MESSAGE_CHARS]}... [{len(message) - MAX_MESSAGE_CHARS} more characters]"


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), text.strip())


def _database_url() -> str:
    try:
        from spinemets.store.db import database_url, safe_url

        return safe_url(database_url())
    except Exception:  # the URL itself is unusable: the message below still says what failed
        return "(SPINEMETS_DATABASE_URL)"


def _environment_error(exc: BaseException) -> str | None:
    """One line for a database or file-system failure (no traceback), or None for anything else."""
    sa = sys.modules.get("sqlalchemy.exc")  # imported only if a command touched the database
    if sa is not None and (isinstance(exc, (sa.OperationalError, sa.InterfaceError)) or type(exc) is sa.DatabaseError):
        orig = getattr(exc, "orig", None)
        return f"database {_database_url()}: cannot use it: {_first_line(str(orig if orig is not None else exc))}"
    if isinstance(exc, OSError) and not isinstance(exc, BrokenPipeError):
        detail = exc.strerror or str(exc)
        return f"{exc.filename}: {detail}" if exc.filename else detail
    if isinstance(exc, RecursionError):
        return "the input is nested too deeply"
    return None


def _run(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from spinemets.errors import InsufficientDataError, KnowledgeBaseError, SpinemetsError

    try:
        return int(args.func(args))
    except InsufficientDataError as exc:
        from spinemets.wording import missing_in_words

        print(_short(f"insufficient data for {exc.what}: missing {', '.join(missing_in_words(exc.fields))}"),
              file=sys.stderr)
        return EXIT_INSUFFICIENT
    except KnowledgeBaseError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_KB
    except SpinemetsError as exc:
        print(_short(f"error: {exc}"), file=sys.stderr)
        return EXIT_INVALID
    except BrokenPipeError:
        raise
    except Exception as exc:
        message = _environment_error(exc)
        if message is None:
            raise
        print(_short(f"error: {message}"), file=sys.stderr)
        return EXIT_INVALID


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; the exit code is returned (or raised by argparse for --help and usage errors)."""
    try:
        try:
            return _run(argv)
        finally:
            sys.stdout.flush()  # a reader that has gone away shows here at the latest
    except BrokenPipeError:
        # `spinemets ... | head`: the reader has what it wanted.  Point stdout at /dev/null so that the
        # interpreter's own flush at exit does not complain, and exit as a tool killed by SIGPIPE would.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_PIPE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
