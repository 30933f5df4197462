"""The patient-view service: reminders for an adult with spinal metastases on the problem list.

When a patient's record is opened, the service reads the Patient, the Conditions and spinemets' own results in the
record (Observations coded in spinemets' code system, as its FHIR export writes them).  For an adult with a current,
confirmed condition naming spinal metastases (the ``spinal_metastasis`` phrases of ``fhir_malignancy_words``, not
negated, not hedged by the words of ``not_a_current_cancer``, not intradural), opened by a practitioner, each score of ``cds_reminders`` that the record does not hold gives
one card: the score is not recorded, why it matters (the knowledge base's statements with their sources), and a link
to the page that computes it.

* No card for a child: SINS and ESCC were built on adult series, and the knowledge base has no source on their use in
  children (said in docs/cds-hooks.md).
* The record must be available (prefetched, or fetched as :mod:`spinemets.cdshooks.fetch` allows): without the
  Patient, the Conditions or the results the service cannot tell, and answers 412 (CDS Hooks 2.0).
* A score recorded under another code (a RadElement, a local code) is not seen: the card says that it looks only for
  spinemets' results.
* Follow-up imaging "due" is not computed: no source in the knowledge base gives an imaging interval after treatment.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from typing import Any

from spinemets.knowledge.loader import KnowledgeBase

SERVICE_ID = "spinemets-patient-view"
HOOK = "patient-view"
REMINDERS = "cds_reminders"
LABELS = {"patient": "the patient's age", "conditions": "the patient's problem list",
          "results": "spinemets' results in the record (SINS, ESCC)"}
RESULT_STATUSES = {"final", "amended", "corrected", "preliminary"}
PROFESSIONAL_USERS = ("Practitioner/", "PractitionerRole/")


def templates(kb: KnowledgeBase, base: str | None = None) -> dict[str, str]:
    from spinemets.fhir.export import code_system

    system = code_system(base)
    codes = ",".join(f"{system}|{r['result_code']}" for r in kb.table(REMINDERS).rows)
    return {"patient": "Patient/{{context.patientId}}", "conditions": "Condition?patient={{context.patientId}}",
            "results": f"Observation?patient={{{{context.patientId}}}}&code={codes}"}


def description() -> dict[str, Any]:
    return {"hook": HOOK, "id": SERVICE_ID, "title": "Spinal metastases: scores not yet recorded (spinemets)",
            "description": "For an adult with spinal metastases on the problem list, reminds that no SINS or ESCC "
                           "result of spinemets is in the record, and why they matter. Decision support for "
                           "healthcare professionals."}


def handle(request: dict[str, Any], kb: KnowledgeBase, *, base: str | None, site_url: str | None,
           fhir_servers: Sequence[str], transport: Any) -> dict[str, Any]:
    from spinemets.cdshooks.fetch import FHIR_ID
    from spinemets.cdshooks.service import HookError, PreconditionError, _card, _record, gather, read_record
    from spinemets.fhir.export import code_system

    context = request.get("context")
    if not isinstance(context, dict) or not isinstance(context.get("patientId"), str) \
            or not FHIR_ID.fullmatch(context["patientId"]):
        raise HookError("context.patientId", "required: the id of the patient whose record is open")
    patient_id = context["patientId"]
    user = str(context.get("userId") or "")
    if not user.startswith(PROFESSIONAL_USERS):
        return {"cards": []}  # a patient or a relative opening the record: decision support is for professionals
    wanted = templates(kb, base)
    record, problems = gather(request, wanted, LABELS, kb, fhir_servers=fhir_servers, transport=transport)
    read_record(record, kb)  # a malformed prefetch is the caller's: 400
    absent = [k for k in wanted if k not in record]
    if absent:
        why = "; ".join(problems) if problems else "the call names no FHIR server (fhirServer) to fetch it from"
        raise PreconditionError(f"{', '.join(LABELS[k] for k in absent)}: neither prefetched nor fetched ({why}); "
                                "the reminders need them")
    resources = [r for r in _record(record)["entry"]]
    patient = next((e["resource"] for e in resources if e["resource"].get("resourceType") == "Patient"
                    and e["resource"].get("id") == patient_id), None)
    if patient is None:
        raise PreconditionError(f"the Patient resource of patient {patient_id} is not in the record sent or fetched")
    age = _age(patient)
    metastases = _spinal_metastases(resources, patient_id, kb)
    if not metastases:
        return {"cards": []}
    from spinemets.pathway import group_threshold

    if age is None or age < group_threshold("child", kb):
        return {"cards": []}  # no source on SINS or ESCC in children; an age not known is not taken for an adult
    system = code_system(base)
    recorded = _recorded(resources, patient_id, system)
    cards = []
    for row in kb.table(REMINDERS).rows:
        if row["result_code"] in recorded:
            continue
        lines = [f"**Problem list:** {'; '.join(metastases)}",
                 "**Not in the record:** a spinemets result for this score (results recorded under other codes are "
                 "not looked for)"]
        for sid in row["statements"]:
            statement = kb.statement(sid)
            cited = [kb.source(s).short() for s in statement.sources if not _secondary(kb, s)]
            lines.append(f"{statement.text.strip()} ({'; '.join(cited)})")
        link = f"{site_url.rstrip('/')}{row['page']}" if site_url else None
        cards.append(_card(str(row["summary"]), "\n\n".join(lines), "info", kb, None))
        if link:
            cards[-1]["links"] = [{"label": "Compute it in spinemets", "url": link, "type": "absolute"}]
    return {"cards": cards}


def _secondary(kb: KnowledgeBase, source_id: str) -> bool:
    from spinemets.knowledge.models import NON_PRIMARY_KINDS

    return kb.source(source_id).kind in NON_PRIMARY_KINDS


def _age(patient: dict[str, Any]) -> int | None:
    birth = str(patient.get("birthDate") or "")
    if not re.fullmatch(r"\d{4}-\d\d-\d\d", birth) or patient.get("deceasedBoolean") or patient.get("deceasedDateTime"):
        return None
    born = dt.date.fromisoformat(birth)
    today = dt.date.today()
    age = today.year - born.year - ((today.month, today.day) < (born.month, born.day))
    return age if 0 <= age <= 120 else None


def _spinal_metastases(entries: list[dict[str, Any]], patient_id: str, kb: KnowledgeBase) -> list[str]:
    """The words of the patient's current, confirmed conditions that name spinal metastases."""
    from spinemets.fhir.read import CONFIRMED, CURRENT, _status, _texts, _verification, _words

    found = []
    for e in entries:
        res = e["resource"]
        if res.get("resourceType") != "Condition" or not _about(res, patient_id):
            continue
        if _status(res) not in CURRENT or _verification(res) not in CONFIRMED:
            continue
        if res.get("abatementDateTime") or res.get("abatementPeriod") or res.get("abatementString") or \
                res.get("abatementAge"):
            continue  # active with an abatement: contradictory, as the FHIR reader treats it
        words = " ; ".join(_texts(res.get("code")))
        if _names_spinal_metastases(words, kb):
            found.append(words)
    return found


def _about(res: dict[str, Any], patient_id: str) -> bool:
    ref = str((res.get("subject") or {}).get("reference") or "")
    return ref == f"Patient/{patient_id}" or ref.endswith(f"/Patient/{patient_id}")


def _names_spinal_metastases(words: str, kb: KnowledgeBase) -> bool:
    """The words name spinal (vertebral) metastases: a spinal_metastasis phrase not negated before it ("no", "without")
    or after it ("excluded"), not hedged (not_a_current_cancer) and not inside the dura (not_vertebral_metastasis)."""
    from spinemets.fhir.read import _words

    if _words(kb, "not_a_current_cancer").search(words) or _words(kb, "not_vertebral_metastasis").search(words):
        return False
    before, after = _words(kb, "negation_before"), _words(kb, "negation_after")
    for m in _words(kb, "spinal_metastasis").finditer(words):
        lead = words[max(0, m.start() - 40):m.start()]
        if re.search(r"(?:" + before.pattern + r")\W+(?:\w+\W+){0,2}$", lead, re.IGNORECASE):
            continue
        if after.search(words[m.end():m.end() + 30]):
            continue
        return True
    return False


def _recorded(entries: list[dict[str, Any]], patient_id: str, system: str) -> set[str]:
    """The spinemets result codes the record holds for the patient."""
    out = set()
    for e in entries:
        res = e["resource"]
        if res.get("resourceType") != "Observation" or res.get("status") not in RESULT_STATUSES:
            continue
        if not _about(res, patient_id):
            continue
        for coding in (res.get("code") or {}).get("coding") or []:
            if isinstance(coding, dict) and coding.get("system") == system:
                out.add(str(coding.get("code")))
    return out
