"""Read a clinical question: the patient scenario and calculator inputs it carries.

Phrases come from ``tables/ask_phrases.yaml`` (which words set which input);
this module holds the reading logic: longest-phrase matching, negation,
defaults, weak values that give way, notes for a patient described without a
value the pathway needs (a child without an age), conflicts, and patterns for
numbers (age and sex as in "62F", vertebral level, collapse percentage,
pre-test probability, stated SINS total and ESCC grade, eGFR, time since
treatment).

Every input understood keeps the words that set it, so the answer can show
the user what was understood.  Conflicting phrases for the same input are
reported as a contradiction naming the field (only if that input is used).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from spinemets.ask.synonyms import synonyms_for
from spinemets.ask.text import (
    Match, PhraseMatcher, age_in, clause_starts, is_follow_up, mentions_patient, negated, normalise, post_negated,
    quote,
    token_spans, tokens,
)
from spinemets.errors import ContradictoryInputError, InvalidInputError
from spinemets.knowledge.loader import KnowledgeBase
from spinemets.knowledge.models import TableRow

TABLE = "ask_phrases"
RADIOSENSITIVITY = "radiosensitivity"
MODALITY_ACCURACY = "modality_accuracy"
LIST_FIELDS = {"pathway.red_flags", "pathway.neuro_deficits", "pathway.mri_contraindications",
               "pathway.contrast_concerns", "pathway.prior_imaging"}
# Pain in two regions is "multiple", not a contradiction.
MERGE_TO = {"pathway.pain_region": "multiple"}
# Two readings that agree, one stricter: "an old pacemaker that cardiology calls MR Unsafe" is one device, and its
# labelling (MR Unsafe: no MRI) decides over the device kind. Not a contradiction.
STRICTER = {"pathway.implanted_device": {("non_mr_conditional_cardiac", "mr_unsafe"): "mr_unsafe"}}
INSTRUMENTS = ("sins", "escc", "noms", "probability")
APPLIES_WINDOW = 4

_LEVEL = re.compile(r"\b(occiput|[ctls]\s?-?\s?\d{1,2})\b(?!\s*(?:-\s*)?(?:weighted|w\b|wi\b|signal|hypo|hyper|image|sequence|fs\b|stir|fat|post|pre|and t\d))", re.I)
_SEQUENCE_NEAR = re.compile(r"\b(weighted|signal|hypointense|hyperintense|sequence|images?)\b", re.I)
_COMPARATOR = r"(>=|<=|>|<|more than|less than|greater than|over|under|above|below|at least|exactly)?"
_COLLAPSE_AFTER = re.compile(
    _COMPARATOR + r"\s*(\d{1,3}(?:\.\d+)?)\s*(?:%|percent|per cent)\s*(?:of\s+(?:the\s+)?)?(?:vertebral\s+)?(?:body\s+)?"
    r"(?:height\s+)?(collapse|collapsed|height loss|loss of height|loss of vertebral height|compression)", re.I)
_COLLAPSE_BEFORE = re.compile(
    r"(collapse|collapsed|height loss|loss of height)\s*(?:of|by|is|was|:)?\s*" + _COMPARATOR
    + r"\s*(\d{1,3}(?:\.\d+)?)\s*(?:%|percent|per cent)", re.I)
_PRETEST = re.compile(
    r"\b(?:pre\s?-?\s?test|pretest|prior|baseline|starting)\s*(?:probability|prob|likelihood|risk|chance|odds)?"
    r"\s*(?:of|=|:|is|at|was|about|around|~)?\s*(\d{1,3}(?:\.\d+)?)\s*(%|percent|per cent)?"
    # "pre-test probability of malignant collapse 20%": the condition named between, the number a percentage
    r"|\b(?:pre\s?-?\s?test|pretest|prior)\s*(?:probability|likelihood|chance|risk)\s+(?:of|for|that)\s+"
    r"(?:[a-z-]+\s+){1,5}?(?:is|=|:|of|at|about|around|~)?\s*(\d{1,3}(?:\.\d+)?)\s*(%|percent|per cent)", re.I)
_SINS_TOTAL = re.compile(r"\bsins\s*\)?\s*(?:score|total)?\s*(?:of|=|:|is|was|came to|comes to)?\s*(\d{1,2})\b(?!\s*%)", re.I)
_ESCC_GRADE = re.compile(
    r"\b(?:escc|bilsky)\s*(?:grade|score)?\s*(?:of|=|:|is|was)?\s*([0-3]\s?[abc]?)\b"
    r"|\bgrade\s*([0-3]\s?[abc]?)\s*(?:escc|bilsky|epidural|cord compression|mscc)\b", re.I)
_RESULT_WORDS = {"positive": "positive", "pos": "positive", "abnormal": "positive", "suspicious": "positive",
                 "negative": "negative", "neg": "negative", "normal": "negative", "unremarkable": "negative",
                 "clear": "negative"}
_RESULT_WINDOW = 3
# Inputs a denial written after the finding ("... excluded") never sets: they stay unstated instead (safety).
_POST_NEGATION_UNSAFE = frozenset({"pathway.suspected_cord_compression", "pathway.suspected_cauda_equina",
                                   "pathway.neuro_deficits", "escc.cord_compressed", "noms.myelopathy"})
# Words that make a clause a question ("has ... been excluded", "is ... ruled out?", "whether").
_QUESTION_WORDS = frozenset({"has", "have", "is", "was", "were", "are", "been", "whether", "if", "can", "could", "does",
                             "did"})


def _asked_about(words: Sequence[str], start: int, end: int) -> bool:
    """Is the phrase put as a question or an alternative ("is it MR Unsafe, or can he ...", "whether it is MR
    Unsafe") rather than stated ("cardiology says it is MR Unsafe")?"""
    before = [w.lower() for w in words[max(0, start - 3):start]]
    after = words[end].lower() if end < len(words) else ""
    if after == "or" or "whether" in before or "if" in before:
        return True
    return any(a == "is" and b in ("it", "he", "she", "this", "that", "the") for a, b in zip(before, before[1:]))


def _asks(words: Sequence[str], end: int) -> bool:
    """Is the denial after a finding part of a question ("has cord compression been excluded?")?"""
    start = max(0, end - 8)
    return bool(_QUESTION_WORDS & set(words[start:end]))
# A likelihood ratio stated in the question ("LR+ 9", "LR- of 0.1", "likelihood ratio of 4.5"): the ratio of the
# result it belongs to, used instead of looked-up sensitivity and specificity.
_STATED_LR = re.compile(
    r"\b(?:(?:positive|negative)\s+)?(?:lr\s*(?P<sign>[+-])?|likelihood[- ]ratio(?:\s*\(lr\))?)"
    r"(?:\s*(?:of|=|:|is|was|about|around|approximately|~))*\s*(?P<value>\d+(?:\.\d+)?)(?![\d.]*\s*%)",
    re.I)
_EGFR = re.compile(
    r"\b(?:e\s?gfr|gfr)\s*(?:of|=|:|is|was|at|about|around|approximately|~)?\s*" + _COMPARATOR
    + r"\s*(\d{1,3}(?:\.\d+)?)\b(?!\s*%)", re.I)
_BELOW = ("<", "<=", "less than", "under", "below")
EGFR_BOUND_NOTE = ("An eGFR given as a bound ({phrase!r}) is not used as a value: contrast advice depends on the "
                   "measured eGFR, so give the number.")
EGFR_BOUND_ITEMS = ["contrast.kidney.thresholds_differ"]
_DURATION = r"(\d{1,3}(?:\.\d+)?)\s*(months?|mos?|weeks?|wks?|years?|yrs?)"
# "after SBRT (to T8) 3 months ago" / "3 months after SBRT"
_SINCE_AFTER = re.compile(r"^[^.;]{0,30}?\b" + _DURATION + r"\s+(?:ago|earlier|previously|before)\b", re.I)
_SINCE_BEFORE = re.compile(r"\b" + _DURATION + r"\s*$", re.I)
_MONTHS_PER = {"m": 1.0, "w": 12 / 52, "y": 12.0}  # calendar units, keyed by the unit's first letter
# "6 weeks of back pain", "back pain for 3 months", "a 2-week history of neck pain"
_NUMBER_WORDS = {w: n for n, w in enumerate(
    "one two three four five six seven eight nine ten eleven twelve".split(), start=1)}
_QUANTITY = r"(\d{1,3}(?:\.\d+)?|" + "|".join(_NUMBER_WORDS) + ")"
_PAIN_FOR = re.compile(
    r"\b" + _QUANTITY + r"\s*-?\s*(days?|weeks?|wks?|months?)\s+(?:history\s+)?of\s+"
    r"(?:(?:new|worsening|increasing|progressive|persistent|constant|severe|low|lower|mid|middle|upper|back|neck|"
    r"spinal|spine|thoracic|lumbar|cervical|sacral)\s+){0,3}pain\b"
    r"|\bpain\s+(?:for|over|since)\s+(?:the\s+(?:last|past)\s+)?" + _QUANTITY + r"\s*(days?|weeks?|wks?|months?)\b",
    re.I)
_WEEKS_PER = {"d": 1 / 7, "w": 1.0, "m": 52 / 12}  # calendar units, keyed by the unit's first letter
_AGE_SEX = re.compile(r"\d{1,3}\s*([fm])", re.I)
_SEX = {"f": "female", "m": "male"}


@dataclass(frozen=True)
class Understood:
    """One input read from the question, with the words that set it."""

    field: str
    value: Any
    phrase: str
    rule: str  # ask_phrases row id, or the pattern that matched (age, level, ...)
    negated: bool = False
    default: bool = False
    weak: bool = False  # gives way to any other phrase that sets the same input
    asked: bool = False  # the phrase is asked about ("is it MR Unsafe, or ...?"), not stated


@dataclass
class Parse:
    """Everything read from one question."""

    question: str
    words: list[str]
    items: list[Understood] = field(default_factory=list)
    conflicts: dict[str, list[Understood]] = field(default_factory=dict)
    instruments: set[str] = field(default_factory=set)
    patient: bool = False
    follow_up: bool = False
    spans: list[tuple[int, int]] = field(default_factory=list)
    tests: list[dict[str, Any]] = field(default_factory=list)
    notes: list[tuple[str, list[str]]] = field(default_factory=list)  # (message, kb items)
    unstated: set[str] = field(default_factory=set)  # inputs the words imply but do not give (a child's age)
    described: set[str] = field(default_factory=set)  # patient groups the words imply without an age ("my dad")
    described_by: dict[str, str] = field(default_factory=dict)  # group -> the words that imply it

    def values(self, prefix: str) -> dict[str, Any]:
        """Inputs of one instrument (``pathway``, ``sins``, ...), list fields merged."""
        out: dict[str, Any] = {}
        explicit = {u.field for u in self.items if not u.default}
        for u in self.items:
            if not u.field.startswith(prefix + "."):
                continue
            if u.default and u.field in explicit:
                continue
            name = u.field[len(prefix) + 1:]
            if u.field in LIST_FIELDS:
                current = out.setdefault(name, [])
                if u.value != [] and u.value not in current:
                    current.append(u.value)
            else:
                out[name] = u.value
        return out

    def fields(self, prefix: str) -> set[str]:
        return {u.field for u in self.items if u.field.startswith(prefix + ".") and not u.default}

    def check(self, prefix: str) -> None:
        """Raise a contradiction naming the field when the question set one input of *prefix* two ways."""
        for name, items in self.conflicts.items():
            if name.startswith(prefix + "."):
                said = " and ".join(f"'{u.phrase}' ({_show(u.value)})" for u in items)
                raise ContradictoryInputError([name], f"the question says both {said}")


def _number(value: str | float) -> int | float:
    """A number as understood: one decimal at most, whole numbers as int (shown as '25', not '25.0')."""
    rounded = round(float(value), 1)
    return int(rounded) if rounded.is_integer() else rounded


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in value.items())
    if value == []:
        return "none"
    return str(value)


class Reader:
    """The phrase tables of one knowledge base, ready to read questions."""

    def __init__(self, kb: KnowledgeBase) -> None:
        self.kb = kb
        self.rows: dict[str, TableRow] = {r.id: r for r in kb.table(TABLE).rows}
        pairs = [(p, r.id) for r in self.rows.values() for p in r.get("phrases") or []]
        self.matcher = PhraseMatcher(pairs)
        # Phrases inside a 'history of'-type phrase that does not apply ("after surgery" in "after surgery for a
        # T11 metastasis") are read with the rows that need no following phrase.
        self.fallback = PhraseMatcher([(p, rid) for p, rid in pairs if not self.rows[rid].get("applies_before")])
        hist = []
        for r in kb.table(RADIOSENSITIVITY).rows:
            hist.append((str(r["histology"]), str(r["histology"])))
            hist.extend((str(a), str(r["histology"])) for a in r.get("aliases") or [])
        self.histologies = PhraseMatcher(hist)
        self.accuracy_sources = sorted({s for r in kb.table(MODALITY_ACCURACY).rows for s in r.sources})
        self.accuracy_modalities = frozenset(str(r["modality"]) for r in kb.table(MODALITY_ACCURACY).rows
                                             if r.get("sensitivity") is not None)
        self.synonyms = synonyms_for(kb)

    def duplicates(self) -> list[str]:
        """Phrases listed by more than one row (a data error: only the first row would ever match)."""
        seen: dict[tuple[str, ...], str] = {}
        out = []
        for r in self.rows.values():
            for p in r.get("phrases") or []:
                k = tuple(tokens(p))
                if k in seen and seen[k] != r.id:
                    out.append(f"{p!r} in {seen[k]} and {r.id}")
                seen.setdefault(k, r.id)
        return out

    def read(self, question: str) -> Parse:
        text = normalise(question)
        words = tokens(question)
        p = Parse(question=question, words=words)
        p.patient = mentions_patient(text, words)
        p.follow_up = is_follow_up(text, words)
        prepared, spans = token_spans(question)
        matches = [Match(m.start, m.end, quote(prepared, spans, m.start, m.end) or m.phrase, m.target)
                   for m in self._resolve(self.matcher.find(words), words)]
        self._phrases(p, matches, words, clause_starts(question))
        self._patterns(p, text)
        self._since_treatment(p, matches, prepared, spans)
        self._row_notes(p, matches)
        self._tests(p, matches, words, text)
        self._instruments(p, words)
        return p

    # --- phrases --------------------------------------------------------------------------------------------

    def _resolve(self, matches: list[Match], words: Sequence[str]) -> list[Match]:
        """Replace each row with `applies_before` that has no such phrase just after it by the phrases inside it."""
        out: list[Match] = []
        for k, m in enumerate(matches):
            needs = self.rows[m.target].get("applies_before")
            if needs and not any(
                needs in (self.rows[n.target].get("sets") or {}) and 0 <= n.start - m.end <= APPLIES_WINDOW
                for n in matches[k + 1:]
            ):
                out.extend(Match(m.start + f.start, m.start + f.end, f.phrase, f.target)
                           for f in self.fallback.find(words[m.start:m.end]))
                continue
            out.append(m)
        return out

    def _phrases(self, p: Parse, matches: list[Match], words: Sequence[str], breaks: set[int]) -> None:
        for m in matches:
            row = self.rows[m.target]
            sets: dict[str, Any] = dict(row.get("sets") or {})
            if all(f.startswith("probability.") for f in sets) and sets:
                continue  # tests are read with their results in _tests
            neg = negated(words, m.start, breaks)
            if not neg and post_negated(words, m.end) and not (_POST_NEGATION_UNSAFE & set(sets) or _asks(words, m.end)):
                # "myeloma excluded" denies it; but "has cord compression been excluded?" asks, and a denial written
                # after the name never clears compression or a deficit (the finding is read as stated: the safe side)
                neg = True
            if neg:
                sets = dict(row.get("negated") or {})
                if not sets:
                    continue
            p.spans.append((m.start, m.end))
            if row.get("describes") and not neg:
                p.described.add(str(row["describes"]))
                p.described_by.setdefault(str(row["describes"]), " ".join(words[m.start:m.end]))
            weak = bool(row.get("weak")) and not neg
            for name, value in sets.items():
                self._add(p, Understood(name, value, m.phrase, row.id, negated=neg, weak=weak,
                                        asked=_asked_about(words, m.start, m.end)))
            if not neg:
                for name, value in (row.get("defaults") or {}).items():
                    p.items.append(Understood(name, value, m.phrase, row.id, default=True))

    def _add(self, p: Parse, u: Understood) -> None:
        if u.field in LIST_FIELDS:
            same = next((x for x in p.items if (x.field, x.value, x.negated, x.default) == (u.field, u.value, u.negated,
                                                                                          u.default)), None)
            if same is not None:  # one line for one value, with every phrase that gave it
                if u.phrase not in same.phrase.split(", "):
                    p.items[p.items.index(same)] = replace(same, phrase=f"{same.phrase}, {u.phrase}")
                return
        else:
            earlier = [x for x in p.items if x.field == u.field and not x.default]
            if earlier and u.weak and any(not x.weak for x in earlier):
                return  # "pacemaker" gives way to "MR Conditional"
            if earlier and not u.weak and all(x.weak for x in earlier):
                p.items = [x for x in p.items if x not in earlier]
                p.conflicts.pop(u.field, None)
                earlier = []
            pairs = STRICTER.get(u.field, {})
            if pairs and earlier and u.asked:
                return  # "an old pacemaker: is it MR Unsafe?" - the device is stated, its labelling asked
            if pairs and earlier and all(x.asked for x in earlier):
                p.items = [x for x in p.items if x not in earlier]
                earlier = []
            if earlier and not u.asked and not any(x.asked for x in earlier) and all(
                    (x.value, u.value) in pairs or (u.value, x.value) in pairs for x in earlier):
                winner = pairs.get((earlier[0].value, u.value)) or pairs[(u.value, earlier[0].value)]
                keep = u if u.value == winner else earlier[0]
                p.items = [x for x in p.items if x.field != u.field]
                p.items.append(Understood(u.field, winner, ", ".join([*(x.phrase for x in earlier), u.phrase]),
                                          keep.rule))
                return
            if any(x.value != u.value for x in earlier):
                if u.field in MERGE_TO:
                    p.items = [x for x in p.items if x.field != u.field]
                    u = Understood(u.field, MERGE_TO[u.field], ", ".join([*(x.phrase for x in earlier), u.phrase]), u.rule)
                else:
                    p.conflicts.setdefault(u.field, [earlier[0]]).append(u)
                    return
            if any(x.value == u.value for x in earlier):
                return
        p.items.append(u)

    # --- numbers --------------------------------------------------------------------------------------------

    def _patterns(self, p: Parse, text: str) -> None:
        age = age_in(text)
        if age is not None:
            p.items.append(Understood("pathway.age", age[0], age[1], "age"))
            sex = _AGE_SEX.fullmatch(age[1])
            if sex:
                self._add(p, Understood("pathway.sex", _SEX[sex.group(1).lower()], age[1], "age"))
        self._egfr(p, text)
        self._pain_duration(p, text)
        m = _PRETEST.search(text)
        pretest_span = (m.start(), m.end()) if m else None
        if m:
            number, percent = (m.group(1), m.group(2)) if m.group(1) is not None else (m.group(3), m.group(4))
            value = float(number)
            if percent or value > 1:
                value /= 100
            if not 0 <= value <= 1:
                raise InvalidInputError("probability.pre_test", f"{m.group(0).strip()!r} is not a probability between 0 and 100%")
            p.items.append(Understood("probability.pre_test", round(value, 6), m.group(0).strip(), "pre-test"))
        m = _SINS_TOTAL.search(text)
        if m:
            p.items.append(Understood("noms.sins_total", int(m.group(1)), m.group(0).strip(), "sins-total"))
        m = _ESCC_GRADE.search(text)
        if m:
            grade = (m.group(1) or m.group(2)).replace(" ", "")
            p.items.append(Understood("escc.grade", grade, m.group(0).strip(), "escc-grade"))
            p.items.append(Understood("noms.escc_grade", grade, m.group(0).strip(), "escc-grade"))
        for rx in (_COLLAPSE_AFTER, _COLLAPSE_BEFORE):
            m = rx.search(text)
            if m and pretest_span and pretest_span[0] <= m.start() < pretest_span[1]:
                continue  # the percentage is the pre-test probability of a collapse, not a collapse
            if m:
                groups = m.groups()
                comparator, number = (groups[0], groups[1]) if rx is _COLLAPSE_AFTER else (groups[1], groups[2])
                self._collapse(p, (comparator or "").lower(), float(number), m.group(0).strip())
                break
        for m in self.histologies.find(p.words):
            p.items.append(Understood("noms.histology", m.target, m.phrase, "histology"))
            break

    def _egfr(self, p: Parse, text: str) -> None:
        """An eGFR stated as a number; a bound ("eGFR < 30") is not turned into a value."""
        m = _EGFR.search(text)
        if not m:
            return
        comparator, number, phrase = (m.group(1) or "").lower(), _number(m.group(2)), m.group(0).strip()
        if comparator in ("", "exactly"):
            self._add(p, Understood("pathway.egfr", number, phrase, "egfr"))
            return
        if comparator in _BELOW:
            self._add(p, Understood("pathway.contrast_concerns", "reduced_renal_function", phrase, "egfr"))
        p.notes.append((EGFR_BOUND_NOTE.format(phrase=phrase), list(EGFR_BOUND_ITEMS)))

    def _pain_duration(self, p: Parse, text: str) -> None:
        """How long the spinal pain has lasted, in weeks (a red flag in a child when long)."""
        m = _PAIN_FOR.search(text)
        if not m:
            return
        number, unit = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
        quantity = _NUMBER_WORDS.get(number.lower()) or float(number)  # "six weeks" as "6 weeks"
        weeks = _number(quantity * _WEEKS_PER[unit[0].lower()])
        self._add(p, Understood("pathway.pain_duration_weeks", weeks, m.group(0).strip(), "pain-duration"))

    def _since_treatment(self, p: Parse, matches: Sequence[Match], prepared: str,
                         spans: Sequence[tuple[int, int]]) -> None:
        """Months since the treatment a phrase named ("after SBRT 3 months ago", "3 months after SBRT")."""
        given = {u.rule for u in p.items if u.field == "pathway.treatment_given" and not u.negated}
        for m in matches:
            if m.target not in given or not spans:
                continue
            start, end = spans[m.start][0], spans[m.end - 1][1]
            found = _SINCE_AFTER.match(prepared[end:]) or _SINCE_BEFORE.search(prepared[max(0, start - 30):start])
            if found:
                months = _number(float(found.group(1)) * _MONTHS_PER[found.group(2)[0].lower()])
                phrase = found.string[found.start(1):found.end()].strip()
                self._add(p, Understood("pathway.months_since_treatment", months, phrase, "since-treatment"))
                return

    def _row_notes(self, p: Parse, matches: Sequence[Match]) -> None:
        """Notes of rows that describe the patient without the value the pathway needs (a child without an age)."""
        for m in matches:
            row = self.rows[m.target]
            note, unless = row.get("unstated_note"), row.get("unstated_input")
            if not note or not unless or any(u.field == unless for u in p.items):
                continue
            if not any(u.field.startswith("pathway.") and not u.default and u.rule != row.id for u in p.items):
                continue  # no patient scenario: nothing the note could qualify
            entry = (str(note).strip(), list(row.get("unstated_items") or []))
            p.unstated.add(str(unless))
            if entry not in p.notes:
                p.notes.append(entry)

    def _collapse(self, p: Parse, comparator: str, number: float, phrase: str) -> None:
        from spinemets.scores.sins import collapse_threshold_percent

        cut = collapse_threshold_percent()
        if comparator in (">", "more than", "greater than", "over", "above") and number >= cut:
            value = "gt50"
        elif comparator in ("<", "less than", "under", "below") and number <= cut and number > 0:
            value = "lt50"
        elif number == cut:
            p.notes.append(
                ("A collapse of exactly 50% falls between the published SINS categories; give more or less than 50%.",
                 ["sins.caveat.exactly_fifty_percent"]))
            return
        elif number > cut:
            value = "gt50"
        elif number > 0:
            value = "lt50"
        else:
            # No collapse: SINS then depends on whether more than half the body is involved, which the
            # question does not say; leave the component unknown rather than guess 'none'.
            return
        self._add(p, Understood("sins.collapse", value, phrase, "collapse-percent"))

    def levels(self, text: str) -> list[tuple[str, str]]:
        """Vertebral levels named in the text, skipping T1/T2 used as MRI sequence names."""
        from spinemets.levels import parse_level

        out = []
        for m in _LEVEL.finditer(text):
            raw = m.group(1)
            tail = text[m.end():m.end() + 25]
            if raw.lower().replace(" ", "").replace("-", "") in ("t1", "t2") and _SEQUENCE_NEAR.match(tail.strip()):
                continue
            try:
                out.append((parse_level(raw.replace(" ", "").replace("-", "")), raw))
            except InvalidInputError:
                out.append((raw.upper().replace(" ", ""), raw))  # invalid levels are reported by SINS itself
        return out

    # --- tests for post-test probability --------------------------------------------------------------------

    def _tests(self, p: Parse, matches: list[Match], words: Sequence[str], text: str) -> None:
        for m in matches:
            sets = self.rows[m.target].get("sets") or {}
            modality = sets.get("probability.modality")
            prior = sets.get("pathway.prior_imaging")
            if modality is None and isinstance(prior, dict) and prior.get("modality") in self.accuracy_modalities:
                # "bone scan negative" is also a test result for a post-test probability
                test = {"modality": prior["modality"], "result": prior["result"]}
                p.tests.append(test)
                p.items.append(Understood("probability.tests", f"{prior['modality'].replace('_', ' ')} {prior['result']}",
                                          m.phrase, m.target))
                continue
            if modality is None:
                continue
            result = at = None
            for j in [*range(m.start - 1, max(-1, m.start - 1 - _RESULT_WINDOW), -1),
                      *range(m.end, min(len(words), m.end + _RESULT_WINDOW))]:
                if words[j] in _RESULT_WORDS:
                    result, at = _RESULT_WORDS[words[j]], j
                    break
            if result is None or at is None:
                continue
            test: dict[str, Any] = {"modality": modality, "result": result}
            p.tests.append(test)
            lo, hi = min(at, m.start), max(at + 1, m.end)
            prepared, spans = token_spans(p.question)
            phrase = quote(prepared, spans, lo, hi) or " ".join(words[lo:hi])
            p.items.append(Understood("probability.tests", f"{modality} {result}", phrase, m.target))
        self._stated_ratios(p, text)
        if p.tests:
            unit = "lesion" if re.search(r"\bper[- ]lesion\b|\blesion[- ]level\b", text) else None
            source = [s for s in self.accuracy_sources if s.split("-")[0] in p.words]
            for t in p.tests:
                if unit:
                    t["unit"] = unit
                if len(source) == 1:
                    t["source"] = source[0]

    def _stated_ratios(self, p: Parse, text: str) -> None:
        """Likelihood ratios given in the question: one beside a single named test belongs to it; otherwise each
        is a test of its own (a ratio above 1 is a positive result's, below 1 a negative result's)."""
        stated = [m for m in _STATED_LR.finditer(text) if float(m.group("value")) > 0]
        if not stated:
            return
        ratios = []
        for m in stated:
            value = float(m.group("value"))
            sign = m.group("sign")
            words = m.group(0).lower()
            result = "negative" if sign == "-" or "negative" in words or (sign is None and value < 1) else "positive"
            ratios.append((result, value, m.group(0).strip()))
        if p.tests:
            # A named test keeps its stated result: only the ratio of that result is attached to it (LR- to a negative
            # MRI), and no ratio becomes a test of its own beside named tests.
            if len(p.tests) == 1:
                match = [r for r in ratios if r[0] == p.tests[0]["result"]]
                if len(match) == 1:
                    result, value, phrase = match[0]
                    p.tests[0]["likelihood_ratio"] = value
                    p.items.append(Understood("probability.tests", f"likelihood ratio {value:g}", phrase,
                                              "likelihood-ratio"))
            return
        for result, value, phrase in ratios:
            p.tests.append({"result": result, "likelihood_ratio": value})
            p.items.append(Understood("probability.tests", f"{result} result, likelihood ratio {value:g}", phrase,
                                      "likelihood-ratio"))

    # --- which calculators ----------------------------------------------------------------------------------

    def _instruments(self, p: Parse, words: Sequence[str]) -> None:
        concepts = {m.target for m in self.synonyms.find(words)}
        if "sins" in concepts:
            p.instruments.add("sins")
        if "escc" in concepts or ("grade" in words and p.fields("escc")):
            p.instruments.add("escc")
        if "noms" in concepts:
            p.instruments.add("noms")
        if any(u.field == "probability.pre_test" for u in p.items) or (
            p.tests and concepts & {"post-test", "likelihood-ratio"}
        ):
            p.instruments.add("probability")
        if p.instruments & {"sins", "noms"}:
            for level, raw in self.levels(normalise(p.question))[:1]:
                p.items.append(Understood("sins.level", level, raw, "level"))


@functools.lru_cache(maxsize=4)
def reader_for(kb: KnowledgeBase) -> Reader:
    return Reader(kb)
