"""spinemets' code system as a FHIR CodeSystem resource, so that an EHR or a terminology server can load the codes the
FHIR export uses (:mod:`spinemets.fhir.export`) with their meanings.

The concepts are built from the same knowledge-base rows the export codes its values by: the SINS categories
(``sins_points``), the ESCC grades, the prognostic score items and categories (``prognostic_scores``), the imaging
studies, and the fixed codes of the results (the SINS total, the pathway's roles ...).  A test exports random cases and
checks that every code they carry is a concept here, so the list is complete (``content: complete``).
"""

from __future__ import annotations

import functools
import re
from typing import Any

from spinemets.knowledge.loader import KnowledgeBase, load_kb


def _code(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.-]+", "-", text).strip("-").lower()


@functools.lru_cache(maxsize=4)
def concepts(kb: KnowledgeBase) -> list[dict[str, str]]:
    """Every code of spinemets' code system with its display and definition, in a stable order."""
    from spinemets.fhir.export import ROLES
    from spinemets.scores.prognosis import ALIASES, SCORE_IDS

    out: list[dict[str, str]] = []
    seen: set[str] = set()

    def add(code: str, display: str, definition: str) -> None:
        if code not in seen:
            seen.add(code)
            out.append({"code": code, "display": display, "definition": definition})

    add("decision-support", "Decision support for healthcare professionals",
        "Tag of every Bundle spinemets writes: decision support that a clinician confirms, not a signed report.")
    add("spinemets-assessment", "spinemets assessment of vertebral metastases", "The DiagnosticReport of an assessment.")
    add("sins-total", "Spinal Instability Neoplastic Score (SINS) total",
        "The SINS total (0-18), or the range of totals still possible when a component is not known.")
    for row in kb.table("sins_points").rows:
        component = str(row["component"])
        add(_code(f"sins-{component}"), f"SINS component: {component.replace('_', ' ')}",
            f"The SINS component {component.replace('_', ' ')}.")
    for row in kb.table("sins_points").rows:
        add(_code(row.id), str(row["label"]), f"SINS {str(row['component']).replace('_', ' ')}: {row['label']} "
                                              f"({row['points']} points).")
    add("escc-grade", "Epidural spinal cord compression (ESCC, Bilsky) grade", "The ESCC grade of a lesion.")
    for row in kb.table("escc_grades").rows:
        add(f"escc-grade-{row['grade']}", f"ESCC grade {row['grade']}", str(row["definition"]).strip())
    add("noms-framing", "NOMS treatment framing", "The NOMS framing of a lesion, in words.")
    alias_of = {v: k for k, v in ALIASES.items()}
    for score_id, score in SCORE_IDS.items():
        alias = alias_of[score_id]
        add(f"prognosis-{alias}", score.name, f"The {score.name} total, or the range still possible, and its group.")
        for row in kb.table("prognostic_scores").rows:
            if row["score"] != score_id or row.get("band_min") is not None or not row.get("item"):
                continue
            item = str(row["item"])
            add(_code(f"{alias}-{item}"), f"{score.name}: {item.replace('_', ' ')}",
                f"The {item.replace('_', ' ')} item of the {score.name}.")
        for row in kb.table("prognostic_scores").rows:
            if row["score"] != score_id or row.get("band_min") is not None or not row.get("item"):
                continue
            points = row.get("points")
            add(_code(row.id), str(row["label"]), f"{score.name}, {str(row['item']).replace('_', ' ')}: "
                                                  f"{row['label']}" + (f" ({points} points)." if points is not None
                                                                       else "."))
    add("imaging-pathway", "Imaging pathway for suspected or known vertebral metastases",
        "The pathway's first study (or that imaging is not indicated), its recommendations and urgency.")
    for role, words in ROLES.items():
        add(_code(f"pathway-{role}"), words, f"A study the pathway recommends as: {words}.")
    add("pathway-urgency", "imaging urgency", "The time limits for the imaging, each with its source and condition.")
    for row in kb.table("imaging_studies").rows:
        add(f"study-{row.id}", str(row["label"]), f"The imaging study: {row['label']}.")
    return out


def code_system_resource(base: str | None = None, kb: KnowledgeBase | None = None) -> dict[str, Any]:
    """The CodeSystem resource (R4B), validated by the fhir.resources models."""
    from fhir.resources.R4B.codesystem import CodeSystem

    from spinemets.fhir.export import code_system

    kb = kb or load_kb()
    listed = concepts(kb)
    resource = {
        "resourceType": "CodeSystem", "url": code_system(base), "version": kb.version, "name": "Spinemets",
        "title": "spinemets: scores, grades and imaging pathway of vertebral metastases", "status": "active",
        "experimental": False, "publisher": "spinemets",
        "description": "The codes of spinemets' FHIR results (SINS, ESCC, NOMS, prognostic scores, imaging "
                       f"pathway), version = knowledge base version. {kb.manifest.disclaimer}",
        "caseSensitive": True, "content": "complete", "count": len(listed), "concept": [dict(c) for c in listed],
    }
    CodeSystem.model_validate(resource)
    return resource
