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
CURRENT = {"active", "recurrence", "relapse"}
CONFIRMED = {None, "confirmed"}  # verificationStatus: absent or confirmed (provisional, refuted ... are not read)
FINAL = {"final", "amended", "corrected", "appended"}
RECORD_TYPES = {"collection", "searchset", "document", "history", "batch-response", "transaction-response"}
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


@functools.lru_cache(maxsize=8)
def _words(kb: KnowledgeBase, row_id: str) -> re.Pattern[str]:
    words = [str(w) for r in kb.table(MALIGNANCY).rows if r.id == row_id for w in r["words"]]
    return re.compile(r"(?<![\w/])(?:" + "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
                      + r")(?![\w/])", re.IGNORECASE)


def _malignancy(kb: KnowledgeBase) -> re.Pattern[str]:
    return _words(kb, "malignancy")


def _icd10_malignant(code: str) -> bool:
    """ICD-10 chapter II malignant neoplasms, C00-C97 (ICD-10-CM's C4A, C7A and C7B among them), in any spelling of
    the code (C50.9, C509, C4A.9)."""
    m = re.match(r"^C(\d\d|4A|7A|7B)", code.strip().upper())
    return bool(m) and (not m.group(1).isdigit() or int(m.group(1)) <= 97)


def _when(res: dict[str, Any], *fields: str) -> dt.datetime | None:
    """The resource's time (the first of *fields* given; a period's end, else its start), as an aware datetime."""
    for name in fields:
        value = res.get(name)
        if isinstance(value, dict):
            value = value.get("end") or value.get("start")
        if not value:
            continue
        text = str(value).replace("Z", "+00:00")
        try:
            when = dt.datetime.fromisoformat(text) if "T" in text else dt.datetime.fromisoformat(text[:10])
        except ValueError:
            return None
        return when if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)
    return None


def _name(resource: dict[str, Any], i: int) -> str:
    kind = resource.get("resourceType")
    if not kind:
        return f"entry {i + 1}"
    return f"{kind}/{resource['id']}" if resource.get("id") else f"{kind} (entry {i + 1})"


def _verification(resource: dict[str, Any]) -> str | None:
    codes = (resource.get("verificationStatus") or {}).get("coding") or []
    return str(codes[0].get("code")) if codes else None


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
    except RecursionError:
        raise InvalidInputError("bundle", "the Bundle is nested too deeply") from None
    if bundle.get("type") not in RECORD_TYPES:
        raise InvalidInputError("bundle", f"a {bundle.get('type')} Bundle is a request, not a record: send a "
                                          "collection, searchset or document Bundle")
    reference = as_of
    if reference is None and bundle.get("timestamp"):
        reference = dt.date.fromisoformat(str(bundle["timestamp"])[:10])
    reference = reference or dt.date.today()
    entries = bundle.get("entry") or []
    resources = [e.get("resource") or {} for e in entries]
    patients = [(i, r) for i, r in enumerate(resources) if r.get("resourceType") == "Patient"]
    if len(patients) > 1:
        raise InvalidInputError("bundle", f"the Bundle holds {len(patients)} patients: send one patient's record")
    out = ReadResult(case={}, as_of=reference.isoformat())
    refs: set[str] = set()
    if patients:
        i, patient = patients[0]
        if patient.get("id"):
            refs.add(f"Patient/{patient['id']}")
        if entries[i].get("fullUrl"):
            refs.add(str(entries[i]["fullUrl"]))
    pathway: dict[str, Any] = {}
    prognosis: dict[str, Any] = {}
    latest: dict[str, tuple[str | None, float, str]] = {}
    primaries: list[tuple[str, str, str]] = []  # (resource, primary row id, status)
    reports: list[tuple[dt.datetime | None, str, dict[str, Any]]] = []
    for i, res in enumerate(resources):
        name, kind = _name(res, i), res.get("resourceType")
        if not kind:
            out.not_used.append(Use(resource=name, note="an entry without a resource"))
            continue
        if res.get("contained"):
            out.not_used.append(Use(resource=name, note="its contained resources are not read"))
        subject = (res.get("subject") or {}).get("reference")
        if kind in ("Condition", "Observation", "DiagnosticReport") and subject not in refs:
            why = "no subject" if not subject else f"about {subject}, not this Bundle's patient"
            out.not_used.append(Use(resource=name, note=f"{why}: not read"))
            continue
        if kind == "Patient":
            _patient(res, name, reference, pathway, out)
        elif kind == "Condition":
            _condition(res, name, kb, pathway, primaries, out)
        elif kind == "Observation":
            _observation(res, name, kb, latest, out)
        elif kind == "DiagnosticReport" and read_reports:
            if res.get("status") not in FINAL:
                out.not_used.append(Use(resource=name, note=f"report status {res.get('status')}: not read"))
            else:
                reports.append((_when(res, "effectiveDateTime", "effectivePeriod", "issued"), name, res))
        else:
            out.not_used.append(Use(resource=name, note="not a resource spinemets reads"))
    floor = dt.datetime.min.replace(tzinfo=dt.timezone.utc)
    for n, (_, name, res) in enumerate(sorted(reports, key=lambda r: r[0] or floor, reverse=True)):
        if n == 0:
            _report(res, name, out)
        else:
            out.not_used.append(Use(resource=name, note="an older report: the most recent one was read"))
    for field, (name, value, when) in latest.items():
        section, key = field.split(".", 1)
        if name is None:
            continue  # conflicting values at the same time: listed, not used
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
    if res.get("deceasedBoolean") or res.get("deceasedDateTime"):
        out.not_used.append(Use(resource=name, note="the patient is recorded as deceased: the age is not counted"))
    elif birth and len(str(birth)) == 10:
        born = dt.date.fromisoformat(str(birth))
        age = reference.year - born.year - ((reference.month, reference.day) < (born.month, born.day))
        if 0 <= age <= 120:
            pathway["age"] = age
            out.used.append(Use(resource=name, input="pathway.age", value=age,
                                note=f"born {born.isoformat()}, age on {reference.isoformat()}"))
        else:
            out.not_used.append(Use(resource=name, note=f"birth date {born.isoformat()} gives an age of {age} on "
                                                        f"{reference.isoformat()}: not used"))
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
    words = " ; ".join(texts) or "no text"
    status, verification = _status(res), _verification(res)
    if verification not in CONFIRMED:
        out.not_used.append(Use(resource=name, note=f"{words}: verification status {verification}: not read"))
        return
    if status in CURRENT and (res.get("abatementDateTime") or res.get("abatementPeriod")
                              or res.get("abatementString") or res.get("abatementAge")):
        out.not_used.append(Use(resource=name, note=f"{words}: active with an abatement date, contradictory: "
                                                    "not read"))
        return
    icd = [str(c.get("code") or "") for c in (res.get("code") or {}).get("coding") or [] if c.get("system") in ICD10]
    malignant = any(_icd10_malignant(c) for c in icd) or bool(_malignancy(kb).search(words))
    if not malignant:
        if re.search(r"\bpregnan", words, re.IGNORECASE):
            _pregnancy(kb, words, status, name, pathway, out)
        else:
            out.not_used.append(Use(resource=name, note=f"not a malignancy by its code or words ({words})"))
        return
    hedge = _words(kb, "not_a_current_cancer").search(words)
    if hedge:
        out.not_used.append(Use(resource=name, note=f"{words}: '{hedge.group(0)}': not read as a cancer; give the "
                                                    "cancer history"))
        return
    when = "current" if status in CURRENT else ("previous" if status in PREVIOUS else "")
    rows = primary_groups(words, kb)
    site = rows[0].id if len(rows) == 1 else ""
    primaries.append((name, site, when))
    note = f"{words}: a malignancy" + (f", {when}" if when else ", clinical status not given")
    out.used.append(Use(resource=name, input="pathway.cancer_history", value=when or None,
                        note=note + (f"; primary {rows[0]['label']}" if site else "; primary not named")))


def _pregnancy(kb: KnowledgeBase, words: str, status: str | None, name: str, pathway: dict[str, Any],
               out: ReadResult) -> None:
    hedge = _words(kb, "not_a_pregnancy").search(words)
    if hedge or status not in CURRENT:
        why = f"'{hedge.group(0)}'" if hedge else f"status {status or 'not given'}"
        out.not_used.append(Use(resource=name, note=f"{words}: {why}: not read as a current pregnancy"))
        return
    if pathway.get("sex") == "male":
        out.not_used.append(Use(resource=name, note=f"{words}: recorded for a patient of male sex: not read"))
        return
    pathway["pregnant"] = True
    out.used.append(Use(resource=name, input="pathway.pregnant", value=True, note=f"{words} ({status})"))


def _observation(res: dict[str, Any], name: str, kb: KnowledgeBase,
                 latest: dict[str, tuple[str | None, float, str]], out: ReadResult) -> None:
    codes = _codes(kb)
    row = next((codes[(c.get("system"), c.get("code"))] for c in (res.get("code") or {}).get("coding") or []
                if (c.get("system"), c.get("code")) in codes), None)
    if row is None:
        out.not_used.append(Use(resource=name, note="an observation whose code spinemets does not read"))
        return
    label = row["label"]
    if res.get("status") not in FINAL:
        out.not_used.append(Use(resource=name, note=f"{label}: status {res.get('status')}: not used"))
        return
    quantity = res.get("valueQuantity")
    if quantity is None and res.get("valueInteger") is not None and row["unit"] == "{score}":
        value, unit = res["valueInteger"], "{score}"
    elif quantity is not None:
        value, unit = quantity.get("value"), quantity.get("code") or quantity.get("unit")
        if quantity.get("comparator"):
            out.not_used.append(Use(resource=name, note=f"{label}: {quantity['comparator']}{value} is a bound, not a "
                                                        "value: not used"))
            return
    else:
        out.not_used.append(Use(resource=name, note=f"{label}: no value"))
        return
    if value is None:
        out.not_used.append(Use(resource=name, note=f"{label}: no value"))
        return
    if unit != row["unit"] and not (row["unit"] == "{score}" and unit in ("{score}", "%")):
        out.not_used.append(Use(resource=name, note=f"{label}: unit {unit!r}, not {row['unit']}: not converted"))
        return
    field = str(row["input"])
    if field == "prognosis.karnofsky" and (float(value) != int(value) or int(value) % 10 or not 10 <= value <= 100):
        out.not_used.append(Use(resource=name, note=f"{label}: {value} is not a Karnofsky score (10-100 in steps of "
                                                    "10): not used"))
        return
    if field == "pathway.egfr" and not 0 <= float(value) <= 200:
        out.not_used.append(Use(resource=name, note=f"{label}: {value} is outside 0-200: not used"))
        return
    when_dt = _when(res, "effectiveDateTime", "effectiveInstant", "effectivePeriod", "issued")
    when = when_dt.astimezone(dt.timezone.utc).isoformat() if when_dt else ""
    held = latest.get(field)
    if held is None or when > held[2]:
        if held is not None and held[0] is not None:
            out.not_used.append(Use(resource=held[0], note=f"{label}: a more recent value exists"))
        latest[field] = (name, float(value), when)
    elif when == held[2] and float(value) != held[1]:
        for other in (held[0], name):
            if other is not None:
                out.not_used.append(Use(resource=other, note=f"{label}: two different values at the same time "
                                                             f"({when or 'no date'}): neither is used"))
        latest[field] = (None, float(value), when)
    else:
        out.not_used.append(Use(resource=name, note=f"{label}: a more recent value exists"))


def _report_text(res: dict[str, Any]) -> str | None:
    """A text/plain attachment (in its charset), else the conclusion."""
    for form in res.get("presentedForm") or []:
        ctype = str(form.get("contentType", ""))
        if not ctype.startswith("text/plain") or not form.get("data"):
            continue
        charset = re.search(r"charset=([\w.-]+)", ctype)
        try:
            text = base64.b64decode(form["data"], validate=True).decode(charset.group(1) if charset else "utf-8")
        except (binascii.Error, UnicodeDecodeError, LookupError):
            continue
        if text.strip():
            return text
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
