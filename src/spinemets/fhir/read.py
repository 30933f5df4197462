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
  unit, or a coded answer of ``fhir_answers`` (pregnancy status; an answer that leaves it open is said, not read); the
  most recent one counts.  A pregnancy status that contradicts an active pregnancy condition leaves both out.  Any
  other Observation is not used.
* **Device** (the patient's, status active or not given) known to be implanted (an implant kind of ``fhir_answers``:
  pacemaker, defibrillator, cochlear implant; or the US Core Implantable Device profile): its MR safety
  (``Device.safety``, NCI Thesaurus codes of ``fhir_answers``), else labelling unknown; with several devices the most
  cautious labelling decides.  Any other device (a pump, a hearing aid, a sensor: taken off before a scan) is listed,
  not read.
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
ANSWERS = "fhir_answers"
IMPLANTABLE_PROFILE = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-implantable-device"  # US Core
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
    latest: dict[str, tuple[str | None, Any, str]] = {}
    devices: list[tuple[str, str, str]] = []  # (resource, implanted_device value, what it said)
    primaries: list[tuple[str, str, str]] = []  # (resource, primary row id, status)
    reports: list[tuple[dt.datetime | None, str, dict[str, Any]]] = []
    # the Patient first: what the conditions and observations mean may depend on the sex and age
    for i in sorted(range(len(resources)), key=lambda n: resources[n].get("resourceType") != "Patient"):
        res = resources[i]
        name, kind = _name(res, i), res.get("resourceType")
        if not kind:
            out.not_used.append(Use(resource=name, note="an entry without a resource"))
            continue
        if res.get("contained"):
            out.not_used.append(Use(resource=name, note="its contained resources are not read"))
        subject = (res.get("patient" if kind == "Device" else "subject") or {}).get("reference")
        if kind in ("Condition", "Observation", "DiagnosticReport", "Device") and subject not in refs:
            why = "no subject" if not subject else f"about {subject}, not this Bundle's patient"
            out.not_used.append(Use(resource=name, note=f"{why}: not read"))
            continue
        if kind == "Patient":
            _patient(res, name, reference, pathway, out)
        elif kind == "Condition":
            _condition(res, name, kb, pathway, primaries, out)
        elif kind == "Observation":
            _observation(res, name, kb, latest, out, reference)
        elif kind == "Device":
            _device(res, name, kb, devices, out)
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
        if field == "pathway.pregnant":
            if not _pregnancy_status(value, name, when, pathway, out):
                continue
        (pathway if section == "pathway" else prognosis)[key] = int(value) if key == "karnofsky" else value
        out.used.append(Use(resource=name, input=field, value=value, note=f"the most recent value ({when or 'no date'})"))
    if devices:
        _implants(devices, pathway, out)
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
            labels = {r.id: str(r["label"]) for r in kb.table("primary_sites").rows}
            named = ", ".join(sorted(labels[x] for x in sites - {""}))
            out.not_used.append(Use(resource=", ".join(n for n, _, _ in primaries), note="the conditions name "
                                    f"different primaries ({named}): the primary is left out, to be given"))
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
        if _words(kb, "pregnancy").search(words):
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
                 latest: dict[str, tuple[str | None, Any, str]], out: ReadResult,
                 reference: dt.date | None = None) -> None:
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
    if row["unit"] == "{answer}":
        answer = _answer(kb, res.get("valueCodeableConcept"), str(row["input"]))
        if answer is None:
            out.not_used.append(Use(resource=name, note=f"{label}: no answer spinemets reads (coded answers: table of "
                                                        "FHIR answers)"))
            return
        if answer["value"] is None:
            out.not_used.append(Use(resource=name, note=f"{label}: {answer['label']}: leaves it open, not read"))
            return
        when = _when(res, "effectiveDateTime", "effectiveInstant", "effectivePeriod", "issued")
        days = answer.get("valid_days")
        if days is not None and reference is not None and (when is None or (reference - when.date()).days > days):
            out.not_used.append(Use(resource=name, note=f"{label}: {answer['label']} "
                                                        f"({when.date().isoformat() if when else 'no date'}): too old "
                                                        "or undated to be read as current"))
            return
        _keep_latest(res, name, label, str(row["input"]), answer["value"], latest, out)
        return
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
    _keep_latest(res, name, label, field, float(value), latest, out)


def _keep_latest(res: dict[str, Any], name: str, label: str, field: str, value: Any,
                 latest: dict[str, tuple[str | None, Any, str]], out: ReadResult) -> None:
    """Keep the most recent value of *field*; two different values at the same time cancel each other (listed)."""
    when_dt = _when(res, "effectiveDateTime", "effectiveInstant", "effectivePeriod", "issued")
    when = when_dt.astimezone(dt.timezone.utc).isoformat() if when_dt else ""
    held = latest.get(field)
    if held is None or when > held[2]:
        if held is not None and held[0] is not None:
            out.not_used.append(Use(resource=held[0], note=f"{label}: a more recent value exists"))
        latest[field] = (name, value, when)
    elif when == held[2] and value != held[1]:
        for other in (held[0], name):
            if other is not None:
                out.not_used.append(Use(resource=other, note=f"{label}: two different values at the same time "
                                                             f"({when or 'no date'}): neither is used"))
        latest[field] = (None, value, when)
    else:
        out.not_used.append(Use(resource=name, note=f"{label}: a more recent value exists"))


@functools.lru_cache(maxsize=4)
def _answers(kb: KnowledgeBase) -> dict[tuple[str, str], Any]:
    return {(str(r["system"]), str(r["code"])): r for r in kb.table(ANSWERS).rows}


def _answer(kb: KnowledgeBase, concept: Any, field: str) -> Any:
    """The fhir_answers row a CodeableConcept names for *field* (None: no coding spinemets reads)."""
    if not isinstance(concept, dict):
        return None
    answers = _answers(kb)
    rows = [answers[(c.get("system"), c.get("code"))] for c in concept.get("coding") or []
            if isinstance(c, dict) and (c.get("system"), c.get("code")) in answers]
    rows = [r for r in rows if r["input"] == field]
    if not rows:
        return None
    if len({repr(r["value"]) for r in rows}) > 1:  # two codings saying different things: the fact stays open
        return {"value": None, "label": " and ".join(str(r["label"]) for r in rows) + " both coded"}
    return rows[0]


def _pregnancy_status(value: Any, name: str, when: str, pathway: dict[str, Any], out: ReadResult) -> bool:
    """Whether a pregnancy status observation may set ``pregnant`` (False: said why, left out)."""
    if value is True and pathway.get("sex") == "male":
        out.not_used.append(Use(resource=name, note="pregnancy status: pregnant, recorded for a patient of male sex: "
                                                    "not read"))
        return False
    if "pregnant" in pathway and pathway["pregnant"] != value:
        # an active pregnancy condition and a "not pregnant" status: the pregnancy is kept (the cautious reading: no
        # gadolinium, no ionising staging), and the contradiction is said to be confirmed
        out.not_used.append(Use(resource=name, note=f"pregnancy status 'not pregnant' ({when or 'no date'}) "
                                                    "contradicts an active pregnancy condition: read as pregnant, "
                                                    "the cautious reading; confirm the pregnancy status"))
        return False
    return True


ORDER_OF_CAUTION = ("mr_unsafe", "labelling_unknown", "non_mr_conditional_cardiac", "mr_conditional", "mr_safe")


def _device(res: dict[str, Any], name: str, kb: KnowledgeBase, devices: list[tuple[str, str, str]],
            out: ReadResult) -> None:
    status = res.get("status")
    if status not in (None, "active"):
        out.not_used.append(Use(resource=name, note=f"device status {status}: not read as an implant in place"))
        return
    field = "pathway.implanted_device"
    kind = _answer(kb, res.get("type"), field)
    profiles = [str(p) for p in (res.get("meta") or {}).get("profile") or []]
    if kind is None and not any(p.split("|")[0] == IMPLANTABLE_PROFILE for p in profiles):
        # the patient's devices include pumps, hearing aids and glucose sensors taken off before a scan: only a
        # device known to be implanted (an implant kind, or the US Core Implantable Device profile) is read
        out.not_used.append(Use(resource=name, note="a device not known to be implanted (not an implant kind "
                                                    "spinemets reads, not an implantable-device profile): give the "
                                                    "implant and its MR labelling"))
        return
    safety = [_answer(kb, c, field) for c in res.get("safety") or []]
    safety = [a for a in safety if a is not None]
    if safety:
        if any(a["value"] is None for a in safety) or len({a["value"] for a in safety}) > 1:
            devices.append((name, "labelling_unknown", "its MR safety codes disagree"))
        else:
            devices.append((name, str(safety[0]["value"]), str(safety[0]["label"])))
        return
    if kind is not None and kind["value"] is not None:
        devices.append((name, str(kind["value"]), str(kind["label"])))
        return
    devices.append((name, "labelling_unknown", "an implanted device whose MR safety is not given"))


def _implants(devices: list[tuple[str, str, str]], pathway: dict[str, Any], out: ReadResult) -> None:
    """The most cautious MR labelling of the patient's implants decides (MR Unsafe before labelling unknown, before
    MR Conditional, before MR Safe)."""
    name, value, said = min(devices, key=lambda d: ORDER_OF_CAUTION.index(d[1]))
    pathway["implanted_device"] = value
    out.used.append(Use(resource=name, input="pathway.implanted_device", value=value,
                        note=f"{said}" + (f"; the most cautious of {len(devices)} devices" if len(devices) > 1 else "")))
    for other, other_value, text in devices:
        if other != name:
            why = "the same MR labelling as" if other_value == value else "a more cautious MR labelling on"
            out.not_used.append(Use(resource=other, note=f"{text}: {why} {name} decides"))


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
