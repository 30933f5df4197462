"""Rating the hold-out order scenarios (tests/data/cds/*/scenarios.json, written by another hand from public ACR
material) with the real CDS Hooks service, and scoring the ratings: right (the expected rating or an acceptable
alternative), no rating where a rating was expected (abstained), and wrong (a rating that is neither)."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from spinemets.cdshooks.service import handle, indication_system
from spinemets.knowledge.loader import load_kb

DATA = Path(__file__).parent / "data" / "cds"
# the set's reason vocabulary -> spinemets' indication codes (a reason without one is not sent: the EHR's order
# questions can only send the codes the service publishes)
REASONS = {
    "neck_pain": "back-pain-cervical", "thoracic_pain": "back-pain-thoracic", "low_back_pain": "back-pain-lumbar",
    "no_spinal_pain": "no-back-pain", "red_flags_assessed_none": "no-red-flags",
    "examined_no_neurological_deficit": "no-neurological-deficit", "new_limb_weakness": "motor-weakness",
    "bladder_or_bowel_disturbance": "sphincter-disturbance", "suspected_cord_compression": "suspected-cord-compression",
    "no_cancer_history": "no-cancer-history",
}
SUMMARY = {"usually appropriate (ACR)": "usually_appropriate", "may be appropriate (ACR)": "may_be_appropriate",
           "usually not appropriate (ACR)": "usually_not_appropriate",
           "not rated (no ACR rating in spinemets)": "not_rated"}


def load(name: str) -> list[dict[str, Any]]:
    return json.loads((DATA / name / "scenarios.json").read_text(encoding="utf-8"))


def order_code(order: dict[str, Any]) -> str | None:
    """The LOINC code of the order (modality, region, contrast) in the service's order table, or None."""
    modality = {"MRI": "mr", "CT": "ct", "radiograph": "xr"}[order["modality"]]
    rows = [r for r in load_kb().table("order_codes").rows if r.id.startswith(modality + "-")
            and r["region"] == order["region"] and r["contrast"] == order["contrast"]]
    return str(rows[0]["code"]) if rows else None


def request(s: dict[str, Any], today: dt.date) -> dict[str, Any]:
    p = s["patient"]
    code = order_code(s["order"])
    reasons = [REASONS[r] for r in s["reasons"] if r in REASONS]
    sr = {"resourceType": "ServiceRequest", "id": "sr1", "status": "draft", "intent": "order",
          "subject": {"reference": "Patient/p1"},
          "code": {"coding": [{"system": "http://loinc.org", "code": code or "0000-0"}]},
          "reasonCode": [{"coding": [{"system": indication_system(), "code": r} for r in reasons]}]}
    body: dict[str, Any] = {"hook": "order-select", "hookInstance": str(uuid.uuid4()),
                            "context": {"userId": "Practitioner/1", "patientId": "p1",
                                        "draftOrders": {"resourceType": "Bundle", "type": "collection",
                                                        "entry": [{"resource": sr}]}}}
    if s["record_sent"]:
        born = today.replace(year=today.year - int(p["age"])) - dt.timedelta(days=30)
        conditions = []
        if p.get("cancer_history") in ("current", "previous"):
            status = "active" if p["cancer_history"] == "current" else "remission"
            what = p.get("primary") or "unknown primary"
            conditions.append({"resourceType": "Condition", "id": f"c{len(conditions)}",
                               "subject": {"reference": "Patient/p1"},
                               "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/"
                                                              "condition-clinical", "code": status}]},
                               "code": {"text": f"Malignant neoplasm: {what}" if what != "myeloma"
                                        else "Multiple myeloma"}})
        if p.get("pregnant"):
            conditions.append({"resourceType": "Condition", "id": "preg", "subject": {"reference": "Patient/p1"},
                               "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/"
                                                              "condition-clinical", "code": "active"}]},
                               "code": {"text": "Pregnancy"}})
        body["prefetch"] = {
            "patient": {"resourceType": "Patient", "id": "p1", "birthDate": born.isoformat(), "gender": p["sex"]},
            "conditions": {"resourceType": "Bundle", "type": "searchset",
                           "entry": [{"resource": c} for c in conditions]},
            "observations": {"resourceType": "Bundle", "type": "searchset", "entry": []}}
    return body


def rate(s: dict[str, Any], today: dt.date | None = None) -> str:
    """The service's answer for one scenario: a rating, 'no_rating_information_missing', or 'order_not_recognised'."""
    if order_code(s["order"]) is None:
        return "order_not_recognised"
    from spinemets.cdshooks.service import PreconditionError

    try:
        cards = handle("spinemets-order-select", request(s, today or dt.date.today()))["cards"]
    except PreconditionError:
        return "no_rating_record_needed"
    if not cards:
        return "order_not_recognised"
    summary = cards[0]["summary"].split(": ", 1)[1]
    return SUMMARY.get(summary, "no_rating_information_missing")


def score(name: str) -> dict[str, Any]:
    out: Counter[str] = Counter()
    rows = []
    for s in load(name):
        got = rate(s)
        exp = s["expected"]
        ok = {exp["rating"], *exp.get("acceptable_alternatives", [])}
        if "no_rating_information_missing" in ok:
            ok.add("no_rating_record_needed")
        if got in ok:
            verdict = "right"
        elif got in ("no_rating_information_missing", "order_not_recognised", "not_rated", "no_rating_record_needed"):
            verdict = "abstained"
        else:
            verdict = "wrong"
        out[verdict] += 1
        rows.append((s["id"], exp["rating"], got, verdict))
    return {"counts": dict(out), "rows": rows, "n": len(rows)}


if __name__ == "__main__":
    import sys

    result = score(sys.argv[1] if len(sys.argv) > 1 else "cdsho1")
    for row in result["rows"]:
        print(*row, sep="\t")
    print(result["counts"], "of", result["n"])
