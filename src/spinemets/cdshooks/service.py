"""The CDS Hooks services (order-select and order-sign): each draft spine imaging order rated against the patient's
scenario, as cards.

For each draft ServiceRequest whose code ``tables/order_codes`` knows:

* the patient's facts come from the prefetched record (Patient, Conditions, Observations) read as
  :func:`spinemets.fhir.read.read_bundle` reads a Bundle, and the order's reason from the codes of spinemets'
  indication code system in its ``reasonCode`` (``tables/order_indications``); nothing else is read;
* the pathway places the scenario and :func:`spinemets.cdshooks.orders.rate` rates the order;
* one card says the rating (or that none can be given, and what is missing) with the reason and the source; an order
  rated *usually not appropriate* gets a suggestion: to remove it when the pathway finds no imaging indicated, or to
  replace it with the pathway's first study when an order code for that study and region exists.

No Argonaut PAMA system action is returned unless the site configures its CMS-qualified CDSM G-code
(``SPINEMETS_PAMA_GCODE``): spinemets does not claim to be a qualified mechanism.  What was not prefetched is fetched from the EHR's FHIR server when the
site allows that server for the calling client (:mod:`spinemets.cdshooks.fetch`); what is still missing is named on
the card.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence
from typing import Any

from spinemets.knowledge.loader import KnowledgeBase, load_kb

HOOKS = {"spinemets-order-select": "order-select", "spinemets-order-sign": "order-sign"}
INDICATIONS = "order_indications"
GCODE_ENV = "SPINEMETS_PAMA_GCODE"
PAMA_EXT = "http://fhir.org/argonaut/Extension/pama-rating"
PAMA_SYSTEM = "http://fhir.org/argonaut/CodeSystem/pama-rating"


class PreconditionError(Exception):
    """The record a rating needs was neither prefetched nor could be fetched, and no order could be rated without it:
    CDS Hooks 2.0 asks for HTTP 412 then.  ``detail`` says what is missing and why it was not fetched."""

    def __init__(self, detail: str) -> None:
        self.detail = detail
        super().__init__(detail)


class HookError(ValueError):
    """A malformed hook request; ``field`` names the part."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


PREFETCH_LABELS = {"patient": "the patient's age and sex", "conditions": "the patient's conditions (cancer, pregnancy)",
                   "observations": "the patient's eGFR, Karnofsky and pregnancy status results",
                   "devices": "the patient's implanted devices"}


def service_ids() -> list[str]:
    """Every CDS service of spinemets (the order services and the patient-view reminders)."""
    from spinemets.cdshooks.reminders import SERVICE_ID

    return [*HOOKS, SERVICE_ID]


def prefetch_templates() -> dict[str, str]:
    """The prefetch templates of the order services."""
    codes = ",".join(f"{r['system']}|{r['code']}" for r in load_kb().table("fhir_codes").rows)  # what the reader reads
    return {
        "patient": "Patient/{{context.patientId}}",
        "conditions": "Condition?patient={{context.patientId}}",
        "observations": f"Observation?patient={{{{context.patientId}}}}&code={codes}",
        "devices": "Device?patient={{context.patientId}}",
    }


def discovery() -> dict[str, Any]:
    """The discovery document (``GET /cds-services``)."""
    prefetch = prefetch_templates()
    from spinemets.cdshooks import reminders

    return {"services": [
        *({"hook": hook, "id": sid, "title": "Spine imaging appropriateness (spinemets)",
           "description": "Rates each draft spine imaging order (MRI, CT, radiographs) against the ACR Appropriateness "
                          "Criteria for the patient's scenario, or says what is missing. Decision support for "
                          "healthcare professionals.",
           "prefetch": prefetch}
          for sid, hook in HOOKS.items()),
        {**reminders.description(), "prefetch": reminders.templates(load_kb())}]}


def indication_system(base: str | None = None) -> str:
    from spinemets.fhir.export import code_system

    return code_system(base).replace("CodeSystem:spinemets", "CodeSystem:spinemets-indication").replace(
        "CodeSystem/spinemets", "CodeSystem/spinemets-indication")


def _record(prefetch: dict[str, Any]) -> dict[str, Any]:
    """The prefetched (and fetched) resources as one collection Bundle."""
    resources: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    for value in prefetch.values():
        if not isinstance(value, dict):
            continue
        if value.get("resourceType") == "Bundle":
            found = [e["resource"] for e in value.get("entry") or []
                     if isinstance(e, dict) and isinstance(e.get("resource"), dict)]
        elif value.get("resourceType"):
            found = [value]
        else:
            found = []
        for res in found:
            key = (str(res.get("resourceType")), str(res.get("id")))
            if res.get("id") and key in seen:
                continue  # the same resource in two searches (a Patient _included by a Condition search)
            seen.add(key)
            resources.append(res)
    return {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in resources]}


def gather(request: dict[str, Any], templates: dict[str, str], labels: dict[str, str], kb: KnowledgeBase, *,
           fhir_servers: Sequence[str], transport: Any, fetch: bool = True) -> tuple[dict[str, Any], list[str]]:
    """The patient's record for a hook call: the prefetched keys (null is "no data": an empty search; an
    OperationOutcome is said, not fetched again), then what was left out fetched as :mod:`spinemets.cdshooks.fetch`
    allows (*fetch*).  An invalid answer of the EHR's server is said and left out; the caller's own prefetch is
    checked when the record is read (:func:`read_record`).  Returns the record by key and the problems in words."""
    from spinemets.cdshooks.fetch import fetch_missing
    from spinemets.errors import SpinemetsError
    from spinemets.fhir.read import read_bundle

    prefetch = request.get("prefetch")
    if prefetch is not None and not isinstance(prefetch, dict):
        raise HookError("prefetch", "must be an object of the prefetched resources")
    problems: list[str] = []
    record: dict[str, Any] = {}
    for key, value in (prefetch or {}).items():
        if key not in templates:
            continue
        if value is None and "?" in templates[key]:  # CDS Hooks: null is "the EHR has no data": an empty search
            record[key] = {"resourceType": "Bundle", "type": "searchset", "entry": []}
        elif isinstance(value, dict) and value.get("resourceType") == "OperationOutcome":
            problems.append(f"{labels[key]}: the EHR could not prefetch it (it sent an error)")
        elif isinstance(value, dict):
            record[key] = value
        elif value is not None:
            raise HookError(f"prefetch.{key}", "must be a FHIR resource, or null when the EHR has no data")
    if not fetch:
        return record, problems
    fetched = fetch_missing(request, templates, fhir_servers, labels, transport=transport)
    problems += fetched.problems
    for key, value in fetched.resources.items():
        try:
            read_bundle(_record({key: value}), kb)
        except SpinemetsError as exc:  # the EHR's server answered something invalid: missing, and said
            problems.append(f"{labels[key]}: the EHR's FHIR server's answer is not valid FHIR")
            continue
        record[key] = value
    return record, problems


def _in_words(exc: Exception) -> str:
    """An error for a card: the input named in words, never its field path."""
    from spinemets.wording import field_name

    field, message = getattr(exc, "field", None), getattr(exc, "message", None)
    if isinstance(field, str) and isinstance(message, str):
        return f"{field_name(field)}: {message}"
    fields = getattr(exc, "fields", None)
    if fields:
        return "These facts do not fit together: " + ", ".join(field_name(f) for f in fields) + "."
    return "The facts of the order and the record do not fit together."


def _why_missing(request: dict[str, Any], problems: list[str]) -> str:
    if problems:
        return "; ".join(problems)
    if not request.get("fhirServer"):
        return "the call names no FHIR server (fhirServer) to fetch it from"
    return "the EHR sent it as empty (null)"


def read_record(record: dict[str, Any], kb: KnowledgeBase) -> Any:
    """The record read as :func:`spinemets.fhir.read.read_bundle` reads a Bundle (validated once); an invalid record
    is the caller's prefetch (fetched answers were checked one by one): HookError."""
    from spinemets.errors import SpinemetsError
    from spinemets.fhir.read import read_bundle

    try:
        return read_bundle(_record(record), kb)
    except SpinemetsError as exc:
        raise HookError("prefetch", str(exc)) from None


def _indications(order: dict[str, Any], kb: KnowledgeBase, base: str | None) -> tuple[dict[str, Any], list[str]]:
    """The pathway inputs the order's reason codes state, and the reasons in words.  Findings add up (two pain
    regions are pain in several regions); two answers that contradict each other ("no neurological deficit" and
    "new limb weakness", "no spinal pain" and "low back pain") are said and every input of both rows is left out."""
    system = indication_system(base)
    table = {r.id: r for r in kb.table(INDICATIONS).rows}
    rows = []
    for concept in order.get("reasonCode") or []:
        for coding in (concept.get("coding") or []) if isinstance(concept, dict) else []:
            row = table.get(coding.get("code")) if isinstance(coding, dict) and coding.get("system") == system else None
            if row is not None and row not in rows:
                rows.append(row)
    said = [str(r["label"]) for r in rows]
    conflicting: set[str] = set()
    for key in {k for r in rows for k in r["inputs"]}:
        having = [r for r in rows if key in r["inputs"]]
        values = [r["inputs"][key] for r in having]
        if all(isinstance(v, list) for v in values):
            clash = any(v == [] for v in values) and any(v for v in values)  # "none" beside a finding
        else:
            clash = len({repr(v) for v in values}) > 1 and key != "pain_region"
        if clash:
            conflicting |= {r.id for r in having}
            said.append(f"({' and '.join(str(r['label']) for r in having)} both answered: contradictory, not read)")
    inputs: dict[str, Any] = {}
    for r in rows:
        if r.id in conflicting:
            continue
        for key, value in r["inputs"].items():
            if isinstance(value, list):
                inputs[key] = sorted(set(inputs.get(key, [])) | set(value))
            elif key == "pain_region" and key in inputs and inputs[key] != value:
                inputs[key] = "multiple"  # pain in two regions
            else:
                inputs[key] = value
    return inputs, said


def handle(service_id: str, request: dict[str, Any], kb: KnowledgeBase | None = None, *,
           base: str | None = None, page_url: str | None = None, fhir_servers: Sequence[str] = (),
           transport: Any = None, site_url: str | None = None) -> dict[str, Any]:
    """The response to a hook call (cards and, when a PAMA G-code is configured, system actions).  *fhir_servers*
    are the FHIR servers the site allows for the calling client: what was not prefetched is fetched from the call's
    ``fhirServer`` only when it is one of them."""
    from spinemets.cdshooks.orders import match_order, rate
    from spinemets.errors import SpinemetsError
    from spinemets.fhir.read import read_bundle
    from spinemets.pathway import pathway
    from spinemets.wording import missing_in_words

    from spinemets.cdshooks import reminders

    kb = kb or load_kb()
    hook = {**HOOKS, reminders.SERVICE_ID: reminders.HOOK}.get(service_id)
    if hook is None:
        raise HookError("service", f"no CDS service {service_id!r}; the services are "
                                   f"{', '.join([*HOOKS, reminders.SERVICE_ID])}")
    if not isinstance(request, dict) or request.get("hook") != hook:
        raise HookError("hook", f"this service answers the {hook} hook")
    if not request.get("hookInstance"):
        raise HookError("hookInstance", "required")
    if service_id == reminders.SERVICE_ID:
        return reminders.handle(request, kb, base=base, site_url=site_url, fhir_servers=fhir_servers,
                                transport=transport)
    context = request.get("context") or {}
    if not isinstance(context, dict):
        raise HookError("context", "must be an object")
    drafts = context.get("draftOrders") or {}
    if not isinstance(drafts, dict) or drafts.get("resourceType") != "Bundle":
        raise HookError("context.draftOrders", "a Bundle of the draft orders is required")
    orders = [e.get("resource") for e in drafts.get("entry") or [] if isinstance(e, dict)]
    orders = [o for o in orders if isinstance(o, dict) and o.get("resourceType") == "ServiceRequest"]
    templates = prefetch_templates()
    spine = [(o, m) for o in orders if (m := match_order(o, kb)) is not None]
    record, problems = gather(request, templates, PREFETCH_LABELS, kb, fhir_servers=fhir_servers, transport=transport,
                              fetch=bool(spine))
    still = [k for k in templates if k not in record]
    read = read_record(record, kb) if record else None
    facts = read.case.get("pathway", {}) if read is not None else {}
    # what the record said of pregnancy and implants but could not be read as such, shown on the cards
    record_notes = [u.note for u in (read.not_used if read is not None else [])
                    if u.resource.startswith("Device") or "pregnan" in u.note.lower()]
    if len(still) == len(templates):
        absent = ["the patient's record (neither prefetched nor fetched)"]
    else:
        absent = [f"{PREFETCH_LABELS[k]} (neither prefetched nor fetched)" for k in still]
    cards: list[dict[str, Any]] = []
    actions: list[dict[str, Any]] = []
    any_rated = False
    gcode = os.environ.get(GCODE_ENV)
    for order, match in spine:
        inputs, said = _indications(order, kb, base)
        scenario = {**facts, **inputs}
        try:
            result = pathway(scenario, kb)
        except SpinemetsError as exc:
            cards.append(_card(f"{match.label}: no rating: the order's facts do not fit together",
                               _in_words(exc), "warning", kb, page_url))
            continue
        rating = rate(match, result, kb)
        rated = bool(rating.appropriateness or rating.pama or rating.not_rated)
        any_rated = any_rated or rated
        cards.append(_rating_card(match, rating, result, said, kb, page_url, order, base,
                                  [*([] if rated else absent), *missing_in_words(rating.missing)],
                                  problems + ([f"{', '.join(absent)}: not needed for this answer"] if rated and absent
                                              else []) + record_notes))
        if gcode and rating.pama:
            actions.append(_pama_action(order, rating, gcode))
    if cards and len(still) == len(templates) and not any_rated:
        raise PreconditionError(f"the patient's record (Patient, Conditions, Observations, Devices) was not "
                                f"prefetched and could not be fetched ({_why_missing(request, problems)}); no draft "
                                "order can be rated without it")
    response: dict[str, Any] = {"cards": cards}
    if actions:
        response["systemActions"] = actions
    return response


def _card(summary: str, detail: str, indicator: str, kb: KnowledgeBase, page_url: str | None,
          suggestions: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    card: dict[str, Any] = {
        "uuid": str(uuid.uuid4()),
        "summary": summary if len(summary) < 140 else summary[:136].rstrip() + "...",
        "indicator": indicator,
        "detail": f"{detail}\n\n_Knowledge base {kb.version}. {kb.manifest.disclaimer}_",
        "source": {"label": f"spinemets (knowledge base {kb.version})"},
    }
    if page_url:
        card["links"] = [{"label": "Open the imaging pathway in spinemets", "url": page_url, "type": "absolute"}]
    if suggestions:
        card["suggestions"] = suggestions
        card["selectionBehavior"] = "at-most-one"
    return card


def _rating_card(match: Any, rating: Any, result: Any, said: list[str], kb: KnowledgeBase, page_url: str | None,
                 order: dict[str, Any], base: str | None, missing: list[str],
                 problems: list[str]) -> dict[str, Any]:
    lines = [f"**Order:** {match.label}"]
    if said:
        lines.append("**Reason given:** " + "; ".join(said))
    lines.append(f"**Why:** {rating.why}")
    if missing:
        lines.append("**Missing:** " + "; ".join(missing))
    if problems:
        lines.append("**About the record:** " + "; ".join(problems))
    suggestions: list[dict[str, Any]] = []
    if rating.appropriateness == "usually_appropriate":
        summary, indicator = f"{match.label}: usually appropriate (ACR)", "info"
    elif rating.appropriateness == "usually_not_appropriate":
        summary, indicator = f"{match.label}: usually not appropriate (ACR)", "warning"
        suggestions = _suggestions(match, result, order, kb)
    elif rating.appropriateness == "may_be_appropriate":
        summary, indicator = f"{match.label}: may be appropriate (ACR)", "info"
    elif rating.not_rated:
        summary, indicator = f"{match.label}: not rated (no ACR rating in spinemets)", "info"
        first = next((r for r in result.recommendations if r.role == "first_line"), None)
        if first is not None:
            lines.append(f"**The pathway recommends:** {first.study.label}")
    else:
        summary, indicator = f"{match.label}: no rating yet, information missing", "info"
    return _card(summary, "\n\n".join(lines), indicator, kb, page_url, suggestions)


def _suggestions(match: Any, result: Any, order: dict[str, Any], kb: KnowledgeBase) -> list[dict[str, Any]]:
    if result.imaging_indicated is False and order.get("id"):
        return [{"label": f"Remove the order for {match.label}", "uuid": str(uuid.uuid4()), "isRecommended": True,
                 "actions": [{"type": "delete", "description": f"Remove the draft order for {match.label}",
                              "resourceId": f"ServiceRequest/{order['id']}"}]}]
    first = next((r for r in result.recommendations if r.role == "first_line"), None)
    if first is None:
        return []
    rows = [r for r in kb.table("order_codes").rows if r["region"] == match.region and list(r["studies"]) == [first.study.id]]
    if not rows:
        return []
    row = rows[0]
    replacement = {**order, "code": {"coding": [{"system": row["system"], "code": row["code"],
                                                 "display": row["label"]}], "text": row["label"]}}
    return [{"label": f"Order {row['label']} instead", "uuid": str(uuid.uuid4()), "isRecommended": True,
             "actions": [{"type": "update", "description": f"Replace {match.label} with {row['label']}",
                          "resource": replacement}]}]


def _pama_action(order: dict[str, Any], rating: Any, gcode: str) -> dict[str, Any]:
    rated = dict(order)
    rated["extension"] = [*(order.get("extension") or []), {
        "url": PAMA_EXT, "valueCodeableConcept": {"coding": [{"system": PAMA_SYSTEM, "code": rating.pama}]}}]
    rated["extension"] += [
        {"url": "http://fhir.org/argonaut/Extension/pama-rating-qcdsm-consulted", "valueString": gcode},
        {"url": "http://fhir.org/argonaut/Extension/pama-rating-consult-id", "valueUri": f"urn:uuid:{uuid.uuid4()}"},
    ]
    criteria = rating.acr_variant or "ACR Appropriateness Criteria"
    return {"type": "update", "description": f"Appropriateness rating: {rating.pama} ({criteria})", "resource": rated}
