"""``spinemets fhir export CASE.json``: a case document assessed and printed as a FHIR Bundle."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def _is_assessment_id(text: str) -> bool:
    import os
    import re

    return bool(re.fullmatch(r"[0-9a-f]{32}", text)) and not os.path.exists(text)


def cmd_fhir_export(a: argparse.Namespace) -> int:
    from spinemets.assess import assess
    from spinemets.cli import EXIT_INSUFFICIENT, EXIT_OK, _read_object
    from spinemets.fhir.export import Stored, assessment_bundle

    stored = None
    if _is_assessment_id(a.case):
        from spinemets.store.commands import stored_result

        saved = stored_result(a.case, a.user)
        result = saved.pop("result")
        stored = Stored(**saved)
    else:
        result = assess(_read_object(a.case, "case"))
    if not result.statuses:
        print("insufficient data: the case has nothing to assess", file=sys.stderr)
        return EXIT_INSUFFICIENT
    print(json.dumps(assessment_bundle(result, base=a.base, stored=stored), indent=2))
    return EXIT_OK


def cmd_fhir_codesystem(a: argparse.Namespace) -> int:
    from spinemets.cli import EXIT_OK
    from spinemets.fhir.codesystem import code_system_resource

    print(json.dumps(code_system_resource(a.base), indent=2, ensure_ascii=False))
    return EXIT_OK


def cmd_fhir_import(a: argparse.Namespace) -> int:
    import datetime as dt

    from spinemets.cli import EXIT_INSUFFICIENT, EXIT_OK, _read_object
    from spinemets.errors import InvalidInputError
    from spinemets.fhir.read import read_bundle

    as_of = None
    if a.as_of:
        try:
            as_of = dt.date.fromisoformat(a.as_of)
        except ValueError:
            raise InvalidInputError("as_of", f"{a.as_of!r} is not a date (YYYY-MM-DD)") from None
    read = read_bundle(_read_object(a.bundle, "bundle"), as_of=as_of, read_reports=not a.no_reports)
    if a.assess:
        from spinemets.assess import assess

        result = assess(read.case)
        print(result.model_dump_json(indent=2) if a.json else result.to_text())
        if not result.statuses:
            print("insufficient data: nothing in the Bundle gave a case to assess", file=sys.stderr)
            return EXIT_INSUFFICIENT
        return EXIT_OK
    if a.json:
        print(read.model_dump_json(indent=2))
        return EXIT_OK
    print(json.dumps(read.case, indent=2))
    for use in read.used:
        print(f"used     {use.resource}: {use.note}", file=sys.stderr)
    for use in read.not_used:
        print(f"not used {use.resource}: {use.note}", file=sys.stderr)
    return EXIT_OK


def register(sub: Any, add: Any) -> None:
    f = sub.add_parser("fhir", help="FHIR: a case's assessment as a FHIR Bundle")
    fsub = f.add_subparsers(dest="fhir_command", required=True, metavar="FHIR_COMMAND")
    e = fsub.add_parser("export", help="a saved assessment, or a case document assessed, as a FHIR R4B Bundle (JSON)",
                        description="Print a FHIR Bundle of a saved assessment (by its id: the result as it was "
                        "computed, with its patient reference and study date) or of a case document assessed now: a "
                        "DiagnosticReport, one Observation per result, the Device and a Provenance naming the "
                        "knowledge-base version. Decision support for healthcare professionals.")
    e.add_argument("case", metavar="ASSESSMENT_ID|CASE.json", help="a saved assessment's id (32 hex characters; read "
                   "from the store as --user), or a case document: a JSON file or - for standard input")
    e.add_argument("--user", help="for a saved assessment: act as this user (default $SPINEMETS_USER)")
    e.add_argument("--base", help="canonical base of spinemets' code system (default $SPINEMETS_FHIR_BASE or "
                                  "urn:spinemets)")
    e.set_defaults(func=cmd_fhir_export)
    c = fsub.add_parser("codesystem", help="print spinemets' code system as a FHIR CodeSystem (JSON)",
                        description="Print the FHIR CodeSystem of the codes spinemets' FHIR results use (SINS, ESCC, "
                        "NOMS, prognostic scores, imaging pathway), versioned by the knowledge base, for a "
                        "terminology server or an EHR.")
    c.add_argument("--base", help="canonical base of the code system (default $SPINEMETS_FHIR_BASE or urn:spinemets)")
    c.set_defaults(func=cmd_fhir_codesystem)
    i = fsub.add_parser("import", help="read a FHIR Bundle (Patient, Condition, Observation, DiagnosticReport) into a case",
                        description="Read a FHIR Bundle into a case document: the age and sex, cancers from the "
                        "conditions, eGFR and Karnofsky from coded observations, SINS and ESCC from a report's text. "
                        "Prints the case (what was used and what was not on standard error), or with --assess the "
                        "assessment.")
    i.add_argument("bundle", help="FHIR Bundle: a JSON file or - for standard input")
    i.add_argument("--as-of", metavar="YYYY-MM-DD", help="the date the age is counted on (default: the Bundle's "
                   "timestamp, else today)")
    i.add_argument("--no-reports", action="store_true", help="do not read the reports' text")
    i.add_argument("--assess", action="store_true", help="assess the case read")
    i.add_argument("--json", action="store_true", help="machine-readable output (with what was used and not)")
    i.set_defaults(func=cmd_fhir_import)
