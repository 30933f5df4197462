"""``spinemets fhir export CASE.json``: a case document assessed and printed as a FHIR Bundle."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def cmd_fhir_export(a: argparse.Namespace) -> int:
    from spinemets.assess import assess
    from spinemets.cli import EXIT_INSUFFICIENT, EXIT_OK, _read_object
    from spinemets.fhir.export import assessment_bundle

    result = assess(_read_object(a.case, "case"))
    if not result.statuses:
        print("insufficient data: the case has nothing to assess", file=sys.stderr)
        return EXIT_INSUFFICIENT
    print(json.dumps(assessment_bundle(result, base=a.base), indent=2))
    return EXIT_OK


def register(sub: Any, add: Any) -> None:
    f = sub.add_parser("fhir", help="FHIR: a case's assessment as a FHIR Bundle")
    fsub = f.add_subparsers(dest="fhir_command", required=True, metavar="FHIR_COMMAND")
    e = fsub.add_parser("export", help="assess a case document and print it as a FHIR R4B Bundle (JSON)",
                        description="Assess a case document and print a FHIR Bundle: a DiagnosticReport, one Observation "
                        "per result, the Device and a Provenance naming the knowledge-base version. Decision support "
                        "for healthcare professionals.")
    e.add_argument("case", help="case document: a JSON object, in a file or - for standard input")
    e.add_argument("--base", help="canonical base of spinemets' code system (default $SPINEMETS_FHIR_BASE or "
                                  "urn:spinemets)")
    e.set_defaults(func=cmd_fhir_export)
