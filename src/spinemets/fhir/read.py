"""A FHIR Bundle read into a case document (issue 13, part 2 "in").

What is read, and from where (each use is listed in the result with the resource it came from; whatever is not used
is listed with the reason, never read by guess):

* **Patient**: the age in whole years on the reference date (the Bundle's timestamp, else the date given, else
  today) from ``birthDate``; the sex from ``gender`` (female or male only).
* **Condition**: a cancer when it is coded in ICD-10 chapter II (C00-C97) or its words name a malignancy (the
  ``fhir_malignancy_words`` table); its primary from the words the pathway recognises (``primary_sites``); *current*
  when its clinical status is active, recurrence or relapse, *previous* when remission or resolved.  Two conditions
  naming different primaries leave the primary out (named as not used).  A pregnancy condition that is active makes
  ``pregnant`` true.
* **Observation**: a value whose LOINC code is a row of ``fhir_codes`` (eGFR, the Karnofsky score), in that row's
  unit; the most recent one counts.  Any other Observation is not used.
* **DiagnosticReport**: its text (a text/plain ``presentedForm`` or the ``conclusion``) is read by the report reader,
  whose SINS and ESCC pre-fills for the index level become the case's SINS and ESCC sections.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import functools
import re
from typing import Any

from pydantic import BaseModel, Field

from spinemets.errors import InvalidInputError
from spinemets.knowledge.loader import KnowledgeBase, load_kb

CODES = "fhir_codes"
MALIGNANCY = "fhir_malignancy_words"
ICD10 = ("http://hl7.org/fhir/sid/icd-10", "http://hl7.org/fhir/sid/icd-10-cm")
_ICD10_MALIGNANT = re.compile(r"^C(?:[0-8]\d|9[0-7])(?:\.|$)", re.IGNORECASE)
CURRENT = {"active", "recurrence", "relapse"}
PREVIOUS = {"remission", "resolved", "inactive"}


class Use(BaseModel):
    resource: str = Field(description="ResourceType/id, or ResourceType[position] when it has no id")
    input: str | None = Field(default=None, description="the case input it filled (a field path), or None")
    value: Any = None
    note: str = Field(description="what was read, or why nothing was")


class ReadResult(BaseModel):
    case: dict[str, Any]
    used: list[Use] = Field(default_factory=list)
    not_used: list[Use] = Field(default_factory=list)
    as_of: str = Field(description="the reference date of the age")


@functools.lru_cache(maxsize=4)
def _codes(kb: KnowledgeBase) -> dict[tuple[str, str], Any]:
    return {(str(r["system"]), str(r["code"])): r for r in kb.table(CODES).rows}


@functools.lru_cache(maxsize=4)
def _malignancy(kb: KnowledgeBase) -> re.Pattern[str]:
    words = [str(w) for r in kb.table(MALIGNANCY).rows for w in r["words"]]
    return re.compile(r"\b(?:" + "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True)) + r")\b",
                      re.IGNORECASE)


def _name(resource: dict[str, Any], i: int) -> str:
    kind = resource.get("resourceType", "?")
    return f"{kind}/{resource['id']}" if resource.get("id") else f"{kind}[{i}]"


def _texts(concept: dict[str, Any] | None) -> list[str]:
    if not concept:
        return []
    out = [concept.get("text") or ""]
    out += [c.get("display") or "" for c in concept.get("coding") or []]
    return [t for t in out if t]


def _status(resource: dict[str, Any]) -> str | None:
    codes = (resource.get("clinicalStatus") or {}).get("coding") or []
    return str(codes[0].get("code")) if codes else None


def read_bundle(bundle: dict[str, Any], kb: KnowledgeBase | None = None, *,
                as_of: dt.date | None = None, read_reports: bool = True) -> ReadResult:
    """The case document a Bundle gives, with what was used and what was not (see the module docstring).  The Bundle
    is validated by the ``fhir.resources`` R4B models first (InvalidInputError naming the problem)."""
    from fhir.resources.R4B.bundle import Bundle
    from pydantic import ValidationError

    kb = kb or load_kb()
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise InvalidInputError("bundle", "expected a FHIR Bundle (a JSON object with resourceType Bundle)")
    try:
        Bundle.model_validate(bundle)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first["loc"])
        raise InvalidInputError("bundle", f"not a valid FHIR R4 Bundle: {where}: {first['msg']}") from None
    reference = as_of
    if reference is None and bundle.get("timestamp"):
        reference = dt.date.fromisoformat(str(bundle["timestamp"])[:10])
    reference = reference or dt.date.today()
    resources = [e.get("resource") or {} for e in bundle.get("entry") or []]
    out = ReadResult(case={}, as_of=reference.isoformat())
    pathway: dict[str, Any] = {}
    prognosis: dict[str, Any] = {}
    latest: dict[str, tuple[str, float, str]] = {}
    primaries: list[tuple[str, str, str]] = []  # (resource, primary row id, status)
    for i, res in enumerate(resources):
        name, kind = _name(res, i), res.get("resourceType")
        if kind == "Patient":
            _patient(res, name, reference, pathway, out)
        elif kind == "Condition":
            _condition(res, name, kb, pathway, primaries, out)
        elif kind == "Observation":
            _observation(res, name, kb, latest, out)
        elif kind == "DiagnosticReport" and read_reports:
            _report(res, name, out)
        else:
            out.not_used.append(Use(resource=name, note="not a resource spinemets reads"))
    for field, (name, value, when) in latest.items():
        section, key = field.split(".", 1)
        (pathway if section == "pathway" else prognosis)[key] = int(value) if key == "karnofsky" else value
        out.used.append(Use(resource=name, input=field, value=value, note=f"the most recent value ({when or 'no date'})"))
    sites = {p for _, p, _ in primaries}
    statuses = {s for _, _, s in primaries}
    if primaries:
        pathway["cancer_history"] = "current" if "current" in statuses else (
            "previous" if statuses == {"previous"} else None)
        if pathway["cancer_history"] is None:
            del pathway["cancer_history"]
        if len(sites - {""}) == 1:
            pathway["primary_site"] = next(iter(sites - {""}))
        elif len(sites - {""}) > 1:
            out.not_used.append(Use(resource=", ".join(n for n, _, _ in primaries), note="the conditions name "
                                    f"different primaries ({', '.join(sorted(sites - {''}))}): the primary is left "
                                    "out, to be given"))
    if pathway:
        out.case["pathway"] = pathway
    if prognosis:
        out.case["prognosis"] = prognosis
    return out


def _patient(res: dict[str, Any], name: str, reference: dt.date, pathway: dict[str, Any], out: ReadResult) -> None:
    birth = res.get("birthDate")
    if birth and len(str(birth)) == 10:
        born = dt.date.fromisoformat(str(birth))
        age = reference.year - born.year - ((reference.month, reference.day) < (born.month, born.day))
        if 0 <= age <= 120:
            pathway["age"] = age
            out.used.append(Use(resource=name, input="pathway.age", value=age,
                                note=f"born {born.isoformat()}, age on {reference.isoformat()}"))
    elif birth:
        out.not_used.append(Use(resource=name, note=f"birth date {birth} is not a full date: the age is left out"))
    gender = res.get("gender")
    if gender in ("female", "male"):
        pathway["sex"] = gender
        out.used.append(Use(resource=name, input="pathway.sex", value=gender, note="administrative gender"))


def _condition(res: dict[str, Any], name: str, kb: KnowledgeBase, pathway: dict[str, Any],
               primaries: list[tuple[str, str, str]], out: ReadResult) -> None:
    from spinemets.pathway import primary_groups

    texts = _texts(res.get("code"))
    words = " ; ".join(texts)
    status = _status(res)
    if re.search(r"\bpregnan", words, re.IGNORECASE):
        if status in CURRENT:
            pathway["pregnant"] = True
            out.used.append(Use(resource=name, input="pathway.pregnant", value=True, note=f"{words} ({status})"))
        else:
            out.not_used.append(Use(resource=name, note=f"pregnancy condition not active ({status or 'no status'})"))
        return
    icd = [c for c in (res.get("code") or {}).get("coding") or [] if c.get("system") in ICD10]
    malignant = any(_ICD10_MALIGNANT.match(str(c.get("code") or "")) for c in icd) or bool(
        _malignancy(kb).search(words))
    if not malignant:
        out.not_used.append(Use(resource=name, note=f"not a malignancy by its code or words ({words or 'no text'})"))
        return
    when = "current" if status in CURRENT else ("previous" if status in PREVIOUS else "")
    rows = primary_groups(words, kb)
    site = rows[0].id if len(rows) == 1 else ""
    primaries.append((name, site, when))
    note = f"{words}: a malignancy" + (f", {when}" if when else ", clinical status not given")
    out.used.append(Use(resource=name, input="pathway.cancer_history", value=when or None,
                        note=note + (f"; primary {rows[0]['label']}" if site else "; primary not named")))


def _observation(res: dict[str, Any], name: str, kb: KnowledgeBase, latest: dict[str, tuple[str, float, str]],
                 out: ReadResult) -> None:
    codes = _codes(kb)
    row = next((codes[(c.get("system"), c.get("code"))] for c in (res.get("code") or {}).get("coding") or []
                if (c.get("system"), c.get("code")) in codes), None)
    if row is None:
        out.not_used.append(Use(resource=name, note="an observation whose code spinemets does not read"))
        return
    if res.get("status") in ("entered-in-error", "cancelled", "preliminary"):
        out.not_used.append(Use(resource=name, note=f"status {res.get('status')}: not used"))
        return
    quantity = res.get("valueQuantity") or {}
    value = quantity.get("value", res.get("valueInteger"))
    unit = quantity.get("code") or quantity.get("unit")
    if value is None:
        out.not_used.append(Use(resource=name, note=f"{row['label']}: no value"))
        return
    if quantity and unit not in (row["unit"], None) and not (row["unit"] == "{score}" and unit in ("", "%")):
        out.not_used.append(Use(resource=name, note=f"{row['label']}: unit {unit!r}, not {row['unit']}: not converted"))
        return
    when = str(res.get("effectiveDateTime") or res.get("issued") or "")
    field = str(row["input"])
    if field not in latest or when > latest[field][2]:
        if field in latest:
            out.not_used.append(Use(resource=latest[field][0], note=f"{row['label']}: a more recent value exists"))
        latest[field] = (name, float(value), when)
    else:
        out.not_used.append(Use(resource=name, note=f"{row['label']}: a more recent value exists"))


def _report_text(res: dict[str, Any]) -> str | None:
    for form in res.get("presentedForm") or []:
        if str(form.get("contentType", "")).startswith("text/plain") and form.get("data"):
            try:
                return base64.b64decode(form["data"]).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                return None
    return res.get("conclusion")


def _report(res: dict[str, Any], name: str, out: ReadResult) -> None:
    from spinemets.reports.extract import extract

    text = _report_text(res)
    if not text or not text.strip():
        out.not_used.append(Use(resource=name, note="no report text (text/plain presentedForm or conclusion)"))
        return
    result = extract(text)
    pre = result.prefill
    took = False
    for section in ("sins", "escc"):
        inputs = pre.inputs.get(section)
        if inputs and pre.applies.get(section) and section not in out.case:
            out.case[section] = dict(inputs)
            took = True
            out.used.append(Use(resource=name, input=f"case.{section}", value=dict(inputs),
                                note=f"read from the report text (index level {result.index_level or 'none'})"))
    if not took:
        why = "; ".join(sorted(set(pre.why_not.values()))) or "nothing to pre-fill"
        out.not_used.append(Use(resource=name, note=f"report read: {why}"))
