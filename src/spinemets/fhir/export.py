"""An assessment as a FHIR Bundle: a DiagnosticReport, one Observation per result, the Device that computed them and
a Provenance naming the knowledge-base version.

* **Observations**: SINS (total, or the range of totals still possible as ``valueRange``; each component with the
  value found and its points), ESCC (the grade, or the grades still possible as text), NOMS (the framing in words),
  each prognostic score (total or range, and its group), and for a case with several lesions one SINS and one ESCC
  Observation per lesion with the lesion's levels as its body site.  A missing component carries
  ``dataAbsentReason`` *unknown*, never a guessed value.
* **Codes**: no LOINC code exists for these scores (LOINC has none for the SINS total, the ESCC grade or the
  Tokuhashi and Tomita scores), and the RadElement element identifiers for SINS and ESCC are not confirmed (see
  docs/interop-sources.md), so the scores are coded in spinemets' own code system, whose canonical URL is
  ``$SPINEMETS_FHIR_BASE/CodeSystem/spinemets`` (default base ``urn:spinemets``: set it to a URL your organisation
  controls).  Values keep the knowledge base's words as their display.
* **Status**: the Observations and the DiagnosticReport are *preliminary*: decision support that a clinician
  confirms, not a signed report.  Every resource is validated by the ``fhir.resources`` models before it is
  returned; an invalid one is a programming error, raised.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import uuid
from typing import Any

from pydantic import BaseModel

from spinemets import __version__

BASE_ENV = "SPINEMETS_FHIR_BASE"
DEFAULT_BASE = "urn:spinemets"
CATEGORIES = {"imaging": "Imaging", "survey": "Survey"}
FHIR_VERSION = "4.3.0"  # R4B: the Observation, DiagnosticReport, Device, Provenance and Bundle of R4


def code_system(base: str | None = None) -> str:
    """The canonical URL of spinemets' code system under *base* (default ``$SPINEMETS_FHIR_BASE``, else
    ``urn:spinemets``); a base must be an absolute http(s) URL without spaces (InvalidInputError otherwise)."""
    from spinemets.errors import InvalidInputError

    base = (base or os.environ.get(BASE_ENV) or DEFAULT_BASE).strip()
    if base.rstrip("/").endswith("/CodeSystem/spinemets"):
        base = base.rstrip("/")[: -len("/CodeSystem/spinemets")]
    if base == DEFAULT_BASE:
        return f"{DEFAULT_BASE}:CodeSystem:spinemets"
    if not re.fullmatch(r"https?://[^\s/]+(/[^\s]*)?", base):
        raise InvalidInputError("base", f"{base!r} is not an absolute http(s) URL: give the canonical base your "
                                        "organisation controls, e.g. https://terminology.example.org/fhir")
    return f"{base.rstrip('/')}/CodeSystem/spinemets"


class _Builder:
    def __init__(self, base: str | None, now: dt.datetime) -> None:
        self.system = code_system(base)
        self.now = now.isoformat()
        self.entries: list[dict[str, Any]] = []
        self.issued = self.now
        self.subject: dict[str, Any] | None = None
        self.effective: str | None = None

    def coding(self, code: str, display: str | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {"system": self.system, "code": code}
        if display:
            out["display"] = display
        return out

    def concept(self, code: str, display: str) -> dict[str, Any]:
        return {"coding": [self.coding(code, display)], "text": display}

    def add(self, resource: dict[str, Any]) -> str:
        full_url = f"urn:uuid:{uuid.uuid4()}"
        self.entries.append({"fullUrl": full_url, "resource": resource})
        return full_url

    def observation(self, code: str, display: str, *, value: dict[str, Any], components: list[dict[str, Any]] = (),
                    interpretation: str | None = None, note: str | None = None, body_site: str | None = None,
                    device: str, category: str | None = "imaging") -> str:
        obs: dict[str, Any] = {
            "resourceType": "Observation",
            "status": "preliminary",
            "code": self.concept(code, display),
            "issued": self.issued,  # when computed; the imaging time is not known here
            "device": {"reference": device},
            **value,
        }
        if self.subject is not None:
            obs["subject"] = self.subject
        if self.effective is not None:
            obs["effectiveDateTime"] = self.effective
        if category:
            obs["category"] = [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                            "code": category, "display": CATEGORIES[category]}]}]
        if components:
            obs["component"] = list(components)
        if interpretation:
            obs["interpretation"] = [{"text": interpretation}]
        if note:
            obs["note"] = [{"text": note}]
        if body_site:
            obs["bodySite"] = {"text": f"vertebral level {body_site}"}
        return self.add(obs)


_UNKNOWN = {"dataAbsentReason": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/data-absent-reason",
                                             "code": "unknown", "display": "Unknown"}]}}


def _total(result: Any) -> dict[str, Any]:
    """The score as an Observation value: the total, or the range of totals still possible."""
    if result.total is not None:
        return {"valueInteger": result.total}
    return {"valueRange": {"low": {"value": result.possible_min}, "high": {"value": result.possible_max}}}


def _components(b: _Builder, prefix: str, result: Any) -> list[dict[str, Any]]:
    out = []
    for c in result.components:
        code = b.concept(f"{prefix}-{c.name}".replace("_", "-"), c.name.replace("_", " "))
        if c.value is None:
            out.append({"code": code, **_UNKNOWN})
            continue
        label = c.label or c.value
        shown = label if c.points is None else f"{label} ({c.points} point{'s' if c.points != 1 else ''})"
        # the knowledge-base row behind the value names it stably; a value without one keeps its own key
        key = c.kb_items[0].split(".", 1)[1] if c.kb_items else f"{prefix}-{c.name}-{c.value}"
        out.append({"code": code, "valueCodeableConcept": {
            "coding": [b.coding(re.sub(r"[^A-Za-z0-9.-]+", "-", key).strip("-").lower(), shown)], "text": shown}})
    return out


def _missing(result: Any) -> str | None:
    words = result.missing_labels() if result.missing else []
    return ("Not known: " + "; ".join(words) + ".") if words else None


def _sins(b: _Builder, result: Any, device: str, site: str | None = None) -> str:
    return b.observation("sins-total", "Spinal Instability Neoplastic Score (SINS) total", value=_total(result),
                         components=_components(b, "sins", result), interpretation=result.category_label,
                         note=_missing(result) or result.summary, body_site=site or result.level, device=device)


def _escc(b: _Builder, result: Any, device: str, site: str | None = None) -> str:
    if result.grade is not None:
        value = {"valueCodeableConcept": b.concept(f"escc-grade-{result.grade}", f"ESCC grade {result.grade}")}
    else:
        value = {"valueString": "grade " + " or ".join(result.possible_grades) + " (not yet decided)"}
    return b.observation("escc-grade", "Epidural spinal cord compression (ESCC, Bilsky) grade", value=value,
                         interpretation=None if result.severity is None else f"{result.severity} grade",
                         note=_missing(result) or result.summary, body_site=site or result.level, device=device)


def _noms(b: _Builder, result: Any, device: str, site: str | None = None) -> str:
    text = " ".join(result.framing) if result.framing else result.summary
    return b.observation("noms-framing", "NOMS treatment framing", value={"valueString": text},
                         note=_missing(result), body_site=site, device=device, category=None)


def _prognostic(b: _Builder, score: Any, device: str) -> str:
    note = _missing(score) or score.summary
    if score.draft_items:
        note += " Draft: the points of this score are not yet confirmed in its original paper."
    return b.observation(f"prognosis-{score.instrument}", score.name, value=_total(score),
                         components=_components(b, score.instrument, score), interpretation=score.group, note=note,
                         device=device, category="survey")


ROLES = {"first_line": "first study", "alternative": "alternative", "additional": "additional study",
         "staging": "staging", "staging_alternative": "staging alternative", "not_indicated": "not indicated",
         "avoid": "avoid"}


def _pathway(b: _Builder, result: Any, device: str) -> str:
    """The imaging pathway as one Observation: the first study (or that imaging is not indicated) as its value, each
    recommendation and the urgency as components."""
    first = next((r for r in result.recommendations if r.role == "first_line" and r.study is not None), None)
    if result.imaging_indicated is False:
        value: dict[str, Any] = {"valueString": "imaging not indicated"}
    elif first is not None:
        value = {"valueCodeableConcept": b.concept(f"study-{first.study.id}", first.study.label)}
    else:
        value = {"valueString": "no study recommended yet"}
    components: list[dict[str, Any]] = []
    for r in result.recommendations:
        if r.study is None:
            continue
        label = ROLES.get(r.role, r.role.replace("_", " "))
        shown = r.study.label + (f" ({r.appropriateness.replace('_', ' ')}, ACR)" if r.appropriateness else "")
        components.append({"code": b.concept(f"pathway-{r.role}".replace("_", "-"), label),
                           "valueCodeableConcept": {"coding": [b.coding(f"study-{r.study.id}", r.study.label)],
                                                    "text": shown}})
    if result.urgency is not None:
        components.append({"code": b.concept("pathway-urgency", "imaging urgency"),
                           "valueString": result.urgency.describe() or result.urgency.level.replace("_", " ")})
    actions = "; ".join(a.label for a in result.actions)
    note = (f"What to do now: {actions}. " if actions else "") + (_missing(result) or "")
    return b.observation("imaging-pathway", "Imaging pathway for suspected or known vertebral metastases",
                         value=value, components=components, note=note.strip() or None, device=device,
                         category="imaging")


class Stored(BaseModel):
    """What a stored assessment adds to its Bundle: its id, the pseudonymous patient reference, the study date and
    when it was assessed."""

    assessment_id: str
    patient_ref: str
    study_date: dt.date
    assessed_at: dt.datetime


def naming_system(name: str, base: str | None = None) -> str:
    """The identifier system *name* of spinemets (``spinemets-patient-ref``, ``spinemets-assessment``) under the same
    canonical base as its code system."""
    system = code_system(base)
    if system.startswith(f"{DEFAULT_BASE}:"):
        return f"{DEFAULT_BASE}:NamingSystem:{name}"
    return system[: -len("/CodeSystem/spinemets")] + f"/NamingSystem/{name}"


def assessment_bundle(result: Any, *, base: str | None = None, now: dt.datetime | None = None,
                      stored: Stored | None = None) -> dict[str, Any]:
    """A FHIR R4B ``collection`` Bundle of one assessment (see the module docstring); validated before it is
    returned.  A *stored* assessment's Bundle names its patient reference (as the subject's identifier), its study
    date (as each Observation's effective time), its id (the DiagnosticReport's identifier) and when it was
    assessed."""
    from spinemets.errors import InsufficientDataError

    if not result.statuses:
        raise InsufficientDataError(["case"], "a FHIR Bundle: the case has nothing to assess")
    now = now or dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    if now.tzinfo is None:
        now = now.replace(tzinfo=dt.timezone.utc)
    b = _Builder(base, now)
    if stored is not None:
        b.subject = {"identifier": {"system": naming_system("spinemets-patient-ref", base), "value": stored.patient_ref}}
        b.effective = stored.study_date.isoformat()
        b.issued = stored.assessed_at.isoformat()  # the results were issued when assessed, not when exported
    device = b.add({
        "resourceType": "Device",
        "deviceName": [{"name": "spinemets", "type": "manufacturer-name"}],
        "version": [{"type": {"text": "software" if stored is None else "software that exported this Bundle"},
                     "value": __version__},
                    {"type": {"text": "knowledge base"}, "value": result.kb_version}],
        "note": [{"text": result.disclaimer}],
    })
    observations: list[str] = []
    if result.sins is not None:
        observations.append(_sins(b, result.sins, device))
    if result.escc is not None:
        observations.append(_escc(b, result.escc, device))
    if result.noms is not None:
        observations.append(_noms(b, result.noms, device))
    if result.lesions is not None:
        for lesion in result.lesions.lesions:
            observations.append(_sins(b, lesion.sins, device, lesion.levels))
            observations.append(_escc(b, lesion.escc, device, lesion.levels))
            if lesion.noms is not None:
                observations.append(_noms(b, lesion.noms, device, lesion.levels))
    if result.prognosis is not None:
        observations += [_prognostic(b, s, device) for s in result.prognosis.scores]
    if result.pathway is not None:
        observations.append(_pathway(b, result.pathway, device))
    lines = [f"{r.instrument}: {r.summary}" for r in result.results]
    diagnostic: dict[str, Any] = {
        "resourceType": "DiagnosticReport",
        "status": "preliminary",
        "code": b.concept("spinemets-assessment", "spinemets assessment of vertebral metastases"),
        "issued": b.issued,
        "result": [{"reference": ref} for ref in observations],
        "conclusion": "\n".join([*lines, f"Knowledge base {result.kb_version}. {result.disclaimer}"]),
    }
    if stored is not None:
        diagnostic.update(subject=b.subject, effectiveDateTime=b.effective,
                          identifier=[{"system": naming_system("spinemets-assessment", base),
                                       "value": stored.assessment_id}])
    report = b.add(diagnostic)
    b.add({
        "resourceType": "Provenance",
        "target": [{"reference": report}, *({"reference": ref} for ref in observations)],
        "recorded": b.now,
        "agent": [{"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type",
                                        "code": "performer", "display": "Performer"}]},
                   "who": {"reference": device, "display": f"spinemets {__version__}, knowledge base "
                                                           f"{result.kb_version}"}}],
    })
    bundle = {"resourceType": "Bundle", "type": "collection", "timestamp": b.now, "entry": b.entries,
              "meta": {"tag": [b.coding("decision-support", "Decision support for healthcare professionals")]}}
    validate(bundle)
    return bundle


def validate(bundle: dict[str, Any]) -> None:
    """Validate *bundle* and every resource in it with the ``fhir.resources`` R4B models (raises on the first error)."""
    from fhir.resources.R4B.bundle import Bundle

    Bundle.model_validate(bundle)
