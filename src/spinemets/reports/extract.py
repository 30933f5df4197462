"""Read a spine MRI or CT report: findings with their spans and assertions, and pre-filled scores.

``extract(text)`` runs the pipeline (:mod:`spinemets.reports.pipeline`), then reads its output:

* **sections** from the headings of report_terms (findings in the clinical history are historical; the
  technique section and the title are not read);
* **levels** named in the text (single levels, ranges, disc levels, lists), each finding attached to the
  nearest level mention of its sentence, else to the last one of its section;
* each **finding** with its span, its ConText assertion (present, negated, uncertain, historical,
  hypothetical) and, once the index level is chosen, ``other_level`` when it is about another level;
* the **index level** (the most affected level: weighted count of the findings stated present there, a
  "dominant"/"largest" cue counting most; ties go to the level named first);
* **pre-filled** SINS, ESCC, fracture-differential and marrow-signal inputs for the index level
  (:mod:`spinemets.reports.prefill`), each value with the phrases it came from.

What the report does not state stays unknown.  The result is decision support for professionals: it carries
the knowledge-base version, the disclaimer and numbered references of the rows behind each finding.
"""

from __future__ import annotations

import functools
import re
from bisect import bisect_right
from dataclasses import dataclass
from collections.abc import Iterator, Sequence
from typing import Any, Literal

from pydantic import BaseModel, Field, PrivateAttr

from spinemets.errors import InvalidInputError
from spinemets.knowledge.loader import KnowledgeBase, load_kb
from spinemets.levels import INDEX, REGION_NAMES
from spinemets.reports.rules import RuleSet, TargetRow, load_rules
from spinemets.results import Citer, Result, trusted

MAX_CHARS = 20_000
Context = Literal["present", "negated", "uncertain", "historical", "hypothetical"]
Assertion = Literal["present", "negated", "uncertain", "historical", "hypothetical", "other_level"]
NEGATED, POSSIBLE, HISTORICAL, HYPOTHETICAL = "NEGATED_EXISTENCE", "POSSIBLE_EXISTENCE", "HISTORICAL", "HYPOTHETICAL"
ASSERTIONS = frozenset({NEGATED, POSSIBLE, HISTORICAL, HYPOTHETICAL})
_HEADING = re.compile(r"^[ \t]*([A-Za-z][A-Za-z '/&()-]{0,40}?)[ \t]*:", re.M)
# A stated grade after the scale's name: digits ('ESCC 2', 'Bilsky grade 1b', 'Bilsky classification: 3'), Roman
# numerals ('Bilsky IIIc' is not a grade; 'Bilsky I', 'Bilsky Ib') or words ('grade two', 'grade one A').
_GRADE_WORD = r"(?:[0-3]|0|iii|ii|i|zero|one|two|three)"
_GRADE_AFTER = re.compile(r"^\s*(?:grade|scale|score|grading|classification|category|type)?\s*(?:of\s+|is\s+|was\s+)?[:=]?\s*"
                          rf"(?:grade\s*)?({_GRADE_WORD})(?:\s*-?\s*|\s+)?([abcABC])?(?![0-9A-Za-z])", re.IGNORECASE)
# ... or before it: 'grade 2 ESCC', 'grade 1b Bilsky', 'a grade three epidural compression' is not read (the
# compression phrase names a finding, not the scale).
_GRADE_BEFORE = re.compile(rf"\b(?:grade|gr\.?)\s*({_GRADE_WORD})\s*-?\s*([abcABC])?\s*$", re.IGNORECASE)
# a second grade after the first ("2-3", "1c/2", "2 or 3", "1b to 1c", "2 or higher")
_GRADE_RANGE = re.compile(r"^\s*\(?\s*(?:-|\u2013|/|to|or|through|versus|vs\.?|possibly|probably|maybe|perhaps|"
                          r"or possibly|query|\?)\s*(?:grade\s*)?(?:[0-3][abcABC]?\b|higher|above|worse|more|greater)",
                          re.IGNORECASE)
_GRADE_AT_LEAST = re.compile(r"(?:at least|minimum of|more than|greater than|worse than|higher than|>=?|\u2265)\s*$",
                             re.IGNORECASE)
_GRADE_VALUES = {"0": "0", "zero": "0", "1": "1", "i": "1", "one": "1", "2": "2", "ii": "2", "two": "2", "3": "3",
                 "iii": "3", "three": "3"}
_DIGITS = re.compile(r"\d")
_KEY_VALUE_DIGIT = re.compile(r"(?::|\s-\s).*\d")  # "Level: T10", "Index level - L2"
_WHOLE_SPINE = re.compile(r"\b(throughout the (?:whole |entire )?(?:spine|skeleton|thoracic spine|lumbar spine|cervical spine|"
                          r"vertebral column|axial skeleton)|widespread|diffusely throughout|at multiple levels|"
                          r"at several levels|multilevel|multi-level)\b", re.IGNORECASE)
_DECISIVE = ("NEGATED_EXISTENCE", "STATE", "SIDE", "DEGREE")


# --- result models ---------------------------------------------------------------------------------------


class Cue(BaseModel):
    """A ConText modifier that applies to a finding."""

    category: str = Field(description="NEGATED_EXISTENCE, POSSIBLE_EXISTENCE, HISTORICAL, HYPOTHETICAL, SIDE, DEGREE, STATE, SUBJECT")
    text: str
    start: int
    end: int
    value: str | None = Field(default=None, description="side, degree or state, for qualifier cues")
    negated: bool | None = Field(default=None, description="for a state cue: inside the scope of a negation")
    uncertain: bool | None = Field(default=None, description="for a state cue: hedged ('may be compressed'); it fills nothing")
    rule: str


class Finding(BaseModel):
    """One finding of the report, with its span and assertion."""

    _row: Any = PrivateAttr(default=None)

    concept: str
    value: str
    text: str = Field(description="the words of the report, as written")
    start: int = Field(description="character offset in the report")
    end: int
    assertion: Assertion = Field(description="present, negated, uncertain, historical, hypothetical, or other_level "
                                 "(about another level than the index level)")
    context: Context = Field(description="the assertion from ConText alone, before the index level is chosen")
    levels: list[str] = Field(default_factory=list, description="levels the finding is attached to; empty = the whole study")
    section: str = Field(description="findings, impression or history")
    cues: list[Cue] = Field(default_factory=list)
    qualifiers: dict[str, Any] = Field(default_factory=dict, description="side, degree, states, percent, collapse ...")
    rule: str = Field(description="report_targets.ROW, or site:ROW for a site's own rule")
    kb_items: list[str] = Field(default_factory=list)
    sources: list[str] = Field(default_factory=list)
    refs: list[int] = Field(default_factory=list)


class Evidence(BaseModel):
    """Where a pre-filled value comes from."""

    text: str
    start: int
    end: int
    assertion: str
    rule: str


class Prefilled(BaseModel):
    """One pre-filled input: its value (None = unknown), the phrases it came from, how sure the reading is, and
    why.  ``confidence``: ``high`` when the findings section states it (and nothing in the report disagrees),
    ``moderate`` when only the impression states it or the findings section won over a disagreeing impression;
    None for an unknown value or one that is given rather than read (the level, the pain)."""

    value: str | bool | None = None
    evidence: list[Evidence] = Field(default_factory=list)
    confidence: Literal["high", "moderate"] | None = None
    note: str | None = None


class Prefill(BaseModel):
    """Inputs of SINS, ESCC, the fracture differential and the marrow-signal ranking, for the index level."""

    level: str | None = None
    applies: dict[str, bool] = Field(default_factory=dict, description="per instrument: whether it was pre-filled")
    why_not: dict[str, str] = Field(default_factory=dict, description="per instrument: why it was not pre-filled")
    sins: dict[str, Prefilled] = Field(default_factory=dict)
    escc: dict[str, Prefilled] = Field(default_factory=dict)
    fracture: dict[str, Prefilled] = Field(default_factory=dict)
    marrow: dict[str, Prefilled] = Field(default_factory=dict)
    escc_grade: str | None = Field(default=None, description="the grade the pre-filled ESCC input gives, if one")
    escc_possible_grades: list[str] = Field(default_factory=list)
    inputs: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="ready-made request bodies: sins, escc, fracture, marrow (known values only)")


class LevelPrefill(BaseModel):
    """The pre-filled inputs for one level of a report that describes several (see ``extract(..., every_level=True)``)."""

    level: str
    prefill: Prefill


class Impression(BaseModel):
    text: str
    start: int
    end: int


class ExtractResult(Result):
    """Findings of one report and the scores they pre-fill."""

    instrument: str = "extract"
    characters: int = 0
    levels: list[str] = Field(default_factory=list, description="levels with a finding stated present, in spine order")
    index_level: str | None = Field(default=None, description="the most affected level, for which the scores are pre-filled")
    index_level_given: bool = Field(default=False, description="the index level was chosen by the user")
    regions: list[str] = Field(default_factory=list)
    diagnoses: list[str] = Field(default_factory=list, description="diagnoses stated present")
    uncertain_diagnoses: list[str] = Field(default_factory=list)
    negated_diagnoses: list[str] = Field(default_factory=list)
    impression: Impression | None = None
    findings: list[Finding] = Field(default_factory=list)
    prefill: Prefill = Field(default_factory=Prefill)
    level_prefills: list[LevelPrefill] = Field(
        default_factory=list, description="with every_level: the pre-filled inputs for each level stated present, in "
        "spine order (the index level's are `prefill`'s)")
    rules_files: list[str] = Field(default_factory=list)

    def extra_lines(self) -> list[str]:
        lines = []
        if self.levels:
            idx = f"; index level {self.index_level}" + (" (given)" if self.index_level_given else "") if self.index_level else ""
            lines.append(f"  levels involved: {', '.join(self.levels)}{idx}")
        if self.diagnoses or self.uncertain_diagnoses or self.negated_diagnoses:
            parts = []
            if self.diagnoses:
                parts.append("stated " + ", ".join(_human(d) for d in self.diagnoses))
            if self.uncertain_diagnoses:
                parts.append("uncertain " + ", ".join(_human(d) for d in self.uncertain_diagnoses))
            if self.negated_diagnoses:
                parts.append("negated " + ", ".join(_human(d) for d in self.negated_diagnoses))
            lines.append("  diagnoses: " + "; ".join(parts))
        if self.impression:
            lines.append("  impression: " + " ".join(self.impression.text.split()))
        if self.prefill.escc_grade:
            lines.append(f"  ESCC grade from the pre-filled findings: {self.prefill.escc_grade}")
        if self.components:
            lines.append("  pre-filled for " + (self.index_level or "the study") + " (confirm or edit each value before scoring):")
        return lines

    def closing_lines(self) -> list[str]:
        if not self.findings:
            return []
        lines = ["Findings (assertion, levels, concept = value, words of the report):"]
        for f in self.findings:
            where = ",".join(f.levels) or "-"
            lines.append(f"  {f.assertion:<12} {where:<10} {f.concept} = {f.value}: \"{f.text}\"{_refs(f.refs)}")
        return lines


def _refs(numbers: list[int]) -> str:
    return f" [{','.join(map(str, numbers))}]" if numbers else ""


def _human(text: str) -> str:
    return text.replace("_", " ")


# --- reading ---------------------------------------------------------------------------------------------


@dataclass
class Section:
    role: str  # title, history, technique, findings, impression
    start: int
    end: int
    content_start: int




@functools.lru_cache(maxsize=8)
def _inline_heading(headings: tuple[str, ...]) -> re.Pattern[str] | None:
    names = [h for h in headings if len(h) > 2]
    if not names:
        return None
    return re.compile(r"(?<=[.;])[ \t]+(?:[/|][ \t]+)?(?=(?:" + "|".join(re.escape(h) for h in sorted(names, key=len, reverse=True))
                      + r")[ \t]*:)", re.IGNORECASE)


def _split_inline_headings(lines: list[str], headings: dict[str, str]) -> list[str]:
    """Lines cut where a findings or impression heading starts after a full stop ("Comparison: MRI 2024. Findings:
    lytic T11 metastasis" is two parts), so that a dictated one-line report keeps its findings; the parts keep every
    character. A history heading inside a line does not start a section ("MRI whole spine. Indication: back pain.
    Epidural tumour at T8 ..." would make the rest history)."""
    inline = _inline_heading(tuple(h for h, role in headings.items() if role in ("findings", "impression")))
    if inline is None:
        return lines
    out: list[str] = []
    for line in lines:
        cuts = [m.end() for m in inline.finditer(line)]
        if not cuts:
            out.append(line)
            continue
        prev = 0
        for c in cuts:
            out.append(line[prev:c])
            prev = c
        out.append(line[prev:])
    return out


_LEVEL_LINE = re.compile(r"\s*[-*\u2022]?\s*(?!T[12]\s*[:\u2013])(?:[CTLS]|D|Th)\d{1,2}(?:\s*[-/\u2013]\s*(?:[CTLS]|D|Th)?\d{1,2})?\s*[:\u2013]",
                         re.IGNORECASE)


def find_sections(text: str, rules: RuleSet) -> list[Section]:
    """The parts of a report, from its headings (report_terms); history and technique end at a blank line."""
    headings = rules.terms.sections
    template_keys = frozenset(rules.terms.groups.get("template_keys", ()))
    sections: list[Section] = []
    pos = 0
    lines = _split_inline_headings(text.splitlines(keepends=True), headings)
    more_after = [False] * len(lines)  # is there a non-empty line after line i
    for i in range(len(lines) - 2, -1, -1):
        more_after[i] = more_after[i + 1] or bool(lines[i + 1].strip())
    # is a findings or impression heading still to come after line i (then a history keeps its level lines: "History:
    # lung cancer / T6: biopsy-proven metastasis / (blank) / Findings: ...")
    body_heading_after = [False] * (len(lines) + 1)
    for i in range(len(lines) - 1, -1, -1):
        hm = _HEADING.match(lines[i])
        key = hm.group(1).strip().lower() if hm else lines[i].strip().rstrip(":").strip().lower()
        body_heading_after[i] = body_heading_after[i + 1] or headings.get(key) in ("findings", "impression")
    role = "findings"
    current: Section | None = None
    first_content = True
    for li, line in enumerate(lines):
        stripped = line.strip()
        start = pos
        pos += len(line)
        if not stripped:
            if current is not None and current.role in ("history", "technique", "title"):
                current.end = start
                current = None
                role = "findings"
            continue
        m = _HEADING.match(line)
        heading = None
        if current is not None and current.role in ("history", "technique") and (
                (m and m.group(1).strip().lower() in template_keys)
                or (_LEVEL_LINE.match(line) and not body_heading_after[li + 1])):
            # a findings line of a template ("Level: D11", "Body collapse: 35%"), or a line opened by a level and a
            # colon ("T6: metastasis"; not "T1:" or "T2:", which may name sequences) when no findings or impression
            # heading follows, ends the history or technique above it, blank line or not; the line is read as findings
            current.end = start
            current = None
            role = "findings"
        if m and m.group(1).strip().lower() in headings:
            heading = m.group(1).strip().lower()
            content = start + m.end()
        elif stripped.rstrip(":").strip().lower() in headings and len(stripped) < 40:
            heading = stripped.rstrip(":").strip().lower()
            content = start + len(line)
        if heading is not None:
            # lines after a title that run on into a heading with no blank line are the report's body ("MRI THORACIC
            # SPINE / T8 lytic metastasis ... / IMPRESSION: ..."): the title keeps its own line only (a block the
            # title opens and a blank line closes is the header, as before)
            if current is not None and (current.role != "title" or headings[heading] != "impression"):
                current.end = start
            role = headings[heading]
            current = Section(role, start, len(text), content)
            sections.append(current)
            first_content = False
            continue
        if first_content:
            first_content = False
            # a short first line without a full stop is a title ("MRI WHOLE SPINE"), unless it is the whole report
            # ("Lytic metastasis at T8 with epidural tumour" dictated on one line)
            # ("Level: T10" or "Index level - L2" opening a template is a value, not a title)
            if (len(stripped) < 100 and not stripped.endswith(".") and not _DIGITS.search(stripped[:3] or "x")
                    and not _KEY_VALUE_DIGIT.search(stripped) and more_after[li]):
                sections.append(Section("title", start, pos, start))
                current = sections[-1]
                continue
        if current is None:
            current = Section(role, start, len(text), start)
            sections.append(current)
    for i, s in enumerate(sections[:-1]):
        s.end = min(s.end, sections[i + 1].start)
    return sections


def _section_at(sections: list[Section], starts: list[int], offset: int) -> Section | None:
    i = bisect_right(starts, offset) - 1
    if i < 0:
        return None
    s = sections[i]
    return s if offset < s.end else None


class _SentenceIndex:
    """Token index -> sentence index (a bisect over the sentence starts)."""

    def __init__(self, starts: list[int]) -> None:
        self.starts = starts

    def get(self, token: int, default: int = 0) -> int:
        i = bisect_right(self.starts, token) - 1
        return i if i >= 0 else default


@dataclass
class _Mention:
    start_tok: int
    end_tok: int
    sent: int
    levels: tuple[str, ...]
    start: int


def _context(categories: set[str]) -> Context:
    if POSSIBLE in categories:
        return "uncertain"  # an uncertain finding pre-fills nothing, whatever else modifies it
    if HYPOTHETICAL in categories:
        return "hypothetical"
    if NEGATED in categories:
        return "negated"
    if HISTORICAL in categories:
        return "historical"
    return "present"


# the spine named in the same clause as another bone ("metastases in the sternum and T4 to T8 vertebral bodies")
_SPINE_TOO = re.compile(r"(?<![A-Za-z0-9])(?:[CTLS]\d{1,2}|vertebra\w*|spine|spinal|sacrum|sacral|coccyx)(?![A-Za-z0-9])",
                        re.IGNORECASE)
# the findings a bone outside the spine can hold (not the posterior elements, the canal or the cord)
_BONE_CONCEPTS = frozenset({"lesion", "diagnosis", "signal", "feature", "collapse", "extent", "oedema"})


def _within(span: tuple[int, int], scope: tuple[int, int]) -> bool:
    return scope[0] <= span[0] and span[1] <= scope[1]


_LIST_WORDS = frozenset({"or", "and", "nor", "/", "either"})
_LIST_OPENERS = frozenset({"no", "without", "neither", "nor"})  # a negation that opens a list of findings


def _opens_denial(doc: Any, a: int, b: int) -> bool:
    """The negation phrase doc[a:b] denies what follows it as a list opener does ("no", "there is no", "without",
    "negative for")."""
    return any(doc[i].lower_ in _LIST_OPENERS or doc[i].lower_ in ("negative", "free") for i in range(a, b))


def _new_clause(doc: Any, start: int, end: int) -> bool:
    """Between a denial or hedge and a finding, ", and" after a single item starts a new statement ("with no
    fracture, and epidural extension indenting the sac"); after a list it ends the list ("no fracture, epidural
    disease, and cord compression")."""
    for i in range(start, end - 1):
        if doc[i].text == "," and doc[i + 1].lower_ == "and":
            return not any(doc[k].text == "," for k in range(start, i))
    return False


def _apposition_after_denial(doc: Any, start: int, end: int, after: int) -> bool:
    """A lesion named after one denied item and a comma, and not followed by more of a list ("T9: no collapse,
    lytic metastasis", "with no matrix, a lytic metastasis"): a new statement, not a second denied item. One comma
    only before it, and no comma, "or", "nor" or "and" after it in its sentence ("no fracture, metastasis or
    infection", "no fracture, dislocation, destructive lesion" stay denied)."""
    if sum(doc[i].text == "," for i in range(start, end)) != 1:
        return False
    for k in range(after, len(doc)):
        t = doc[k]
        if t.is_sent_start and k > after:
            break
        if t.text in (",", ";") or t.lower_ in ("or", "nor", "and", "/"):
            return False
        if t.text in (".", "!", "?"):
            break
    return True


_SOURCE_LINK = re.compile(r"\s*(?:[\w-]+\s+){0,2}?,?\s*(?:from|of|through|despite)"
                          r"\s+(?:the|this|that|the known)\s+(?:[\w/-]+\s+){0,2}$", re.IGNORECASE)


def _source_of_denied(text: str, doc: Any, cue_start: int, start_char: int, ends_between: Any) -> bool:
    """A lesion named, with "the" or "this", as the source or site of what a denial denies ("no cord compression from
    the lytic L1 metastasis", "no pathological fracture through the L3 lesion", "no kyphosis despite the T12
    metastasis"): the lesion is taken as present; only the other finding is denied. Not an indefinite one ("no
    collapse caused by a lytic metastasis", "no cord compression from metastatic disease")."""
    return any(_SOURCE_LINK.match(text[e:start_char]) for e in ends_between(cue_start, start_char))


def _closed_bracket_between(brackets: dict[int, str], a: int, b: int, start: int, end: int) -> bool:
    """Is the cue a..b, before the finding start..end, inside a bracket that closes before it? (A cue after a
    bracket still reaches into it: "posterior elements (pedicles and facets) unaffected".)"""
    lo, hi = (b, start) if b <= start else (0, 0)
    depth = 0
    for i in range(lo, hi):
        t = brackets.get(i)
        if t == "(":
            depth += 1
        elif t == ")":
            if depth == 0:
                return True
            depth -= 1
    return False


def _participle_after_denial(doc: Any, start: int, end: int, rules: RuleSet) -> bool:
    """How much of the body a lesion takes, told after one denied item and a comma and a participle, a bracket or a
    dash ("without collapse, replacing about 70% of the vertebral body", "no collapse (lesion 30% of body)"): what the
    lesion does, not a second denied item."""
    groups = rules.terms.groups
    free, other = frozenset(groups.get("free_share_words", ())), frozenset(groups.get("non_involving_participles", ()))
    if any(doc[i].lower_ in free for i in range(start, end)):
        return False  # "no marrow replacement (normal marrow in 90% of the body)": the free share
    if any(doc[i].text in ("(", "-", "\u2013", "\u2014") for i in range(start + 1, end)) or any(
            doc[i].lower_ == "despite" for i in range(max(start + 1, end - 3), end)):
        # "without collapse (lesion occupies less than half the body)", "no collapse - occupies <25% of VB", "no collapse
        # despite near-complete replacement of the body" ("despite" right before the share; not "despite radiotherapy
        # to the entire vertebral body")
        return True
    commas = [i for i in range(start, end) if doc[i].text == ","]
    if len(commas) != 1 or commas[0] + 1 >= end:
        return False
    word = doc[commas[0] + 1].lower_
    return word.endswith("ing") and word not in other


def _listed(doc: Any, start: int, end: int, after: int) -> bool:
    """doc[start:end] lists findings before the one at *end*, and that one belongs to the list: words, commas and
    list words only, with a list word after the last comma ("collapse, epidural disease or" before "cord
    compression") or right after the finding's state ("epidural extension, cord abutment or cord compression");
    "no collapse or fracture, cord compressed" lists nothing the cord belongs to."""
    words = [doc[i].lower_ for i in range(start, end)]
    if not all(w in _LIST_WORDS or w == "," or doc[start + k].is_alpha for k, w in enumerate(words)):
        return False
    last_comma = max((k for k, w in enumerate(words) if w == ","), default=-1)
    if any(w in _LIST_WORDS for w in words[last_comma + 1:]):
        return True
    return last_comma >= 0 and after < len(doc) and doc[after].lower_ in ("or", "nor", "and")


def _fillers(doc: Any, start: int, end: int, fillers: frozenset[str]) -> bool:
    """Only words that may stand between a denial and its finding ("there is no evidence of cord compression", the
    terms' ``denial_fillers`` group)."""
    return all(doc[i].lower_ in fillers for i in range(start, end))


def _state_negated(state: tuple[int, int], target: tuple[int, int], label: str, negations: list[Any],
                   doc: Any = None, fillers: frozenset[str] = frozenset()) -> bool:
    """A state ("compressed", "visible") is negated by a negation inside it ("not seen"), by one placed after it
    that closes its clause ("cord compression, since resolved"), or by one right before it or right before its
    finding ("no thecal sac deformity"), also when that finding is the last of a list the negation opens ("no cord
    or conus compression", "no cord/conus compression"); a negation further before belongs to another clause ("the
    cord is not contacted and CSF is preserved")."""
    for n in negations:
        if not n.allows(label):
            continue
        a, b = n.modifier_span
        if _within(state, (a, b)):
            return True
        if not _within(state, n.scope_span):
            continue
        if state[1] <= a and n.direction in ("BACKWARD", "BIDIRECTIONAL"):
            return True
        if b <= state[0] and state[0] - b <= 2:  # "without compression", "without compression or deformity"
            return True
        if state[1] <= a and a - state[1] <= 1:  # "cord compression: none"
            return True
        if b <= target[0] and target[0] - b <= 1 and target[0] < state[0]:
            return True
        if (doc is not None and b <= target[0] < state[0] and target[0] - b <= 4 and _opens_denial(doc, a, b)
                and _fillers(doc, b, target[0], fillers)):
            return True  # "there is no evidence of cord compression"
        if (doc is not None and b < target[0] < state[0] and target[0] - b <= 10 and state[0] == target[1]
                and _opens_denial(doc, a, b) and _listed(doc, b, target[0], state[1])):
            return True
    return False


def read_report(text: str, rules: RuleSet, doc: Any, sections: list[Section] | None = None) -> list[Finding]:
    """The findings of *doc* (the pipeline's output for *text*), levels attached, ConText assertions read."""
    from spinemets.reports.pipeline import FINDINGS_GROUP, bracket_tokens, doc_text, span_extension

    sections = find_sections(text, rules) if sections is None else sections
    starts = [s.start for s in sections]
    sent_bounds = [(s.start, s.start_char) for s in doc.sents]
    sent_index = _SentenceIndex([b[0] for b in sent_bounds])
    sent_roles = [(_section_at(sections, starts, c), i) for i, (_, c) in enumerate(sent_bounds)]

    mentions: list[_Mention] = []
    for m in doc.user_data.get("spinemets_levels", ()):
        span = doc.char_span(m.start, m.end, alignment_mode="expand")
        if span is None:
            continue
        sec = _section_at(sections, starts, m.start)
        if sec is not None and sec.role in ("title", "technique"):
            continue
        mentions.append(_Mention(span.start, span.end, sent_index.get(span.start, 0), m.levels, m.start))
    by_sent: dict[int, list[_Mention]] = {}
    for m in mentions:
        by_sent.setdefault(m.sent, []).append(m)
    # A sentence without a level of its own continues the one just before it (same section), if that one named a
    # level: the one among them that the findings so far were about, else the first it names.
    # A sentence about every lesion ("The lesions are low on T1", "They enhance") continues all the levels its
    # section has named so far.
    spans = []
    for sp in doc.spans[FINDINGS_GROUP]:
        rid = span_extension(doc, sp, "target_rule").metadata["row"]
        spans.append((sp.start, sp, rid, rules.targets[rid]))
    spans.sort(key=lambda x: x[0])
    # the sentences that state a finding other than a benign diagnosis or a degenerative change: a sentence that names
    # the tumour without a level ("Tumour extends
    # into the right pedicle") continues the last of them, not an incidental sentence between ("Previous kyphoplasty
    # at L1.", "Disc bulge at L4-5.", "A haemangioma at T10.")
    tumour_sents = {sent_index.get(sp.start, 0) for _, sp, _, row in spans
                    if row.concept != "ignore" and not (row.concept == "extent" and sp.text.lower() in WEAK_EXTENT)
                    and not (row.concept == "diagnosis" and rules.neoplastic(row) is False)}
    subjects = rules.group_pattern("tumour_subjects")
    before: dict[int, list[_Mention]] = {}
    previous: list[_Mention] = []
    previous_tumour: list[_Mention] = []
    previous_at = -1
    so_far: list[_Mention] = []
    last_section: Section | None = None
    for sec, i in sent_roles:
        if sec is not last_section:
            previous, so_far, last_section, previous_tumour, previous_at = [], [], sec, [], -1
        a = sent_bounds[i][1]
        b = sent_bounds[i + 1][1] if i + 1 < len(sent_bounds) else len(text)
        # a sentence about the whole spine ("deposits throughout the spine") continues no level
        if not by_sent.get(i) and _WHOLE_SPINE.search(text[a:b]):
            before[i] = []
        elif not by_sent.get(i) and so_far and _PLURAL_SUBJECT.match(text, a, a + 40):
            union = tuple(dict.fromkeys(lv for m in so_far for lv in m.levels))
            before[i] = [_Mention(so_far[-1].start_tok, so_far[-1].end_tok, so_far[-1].sent, union, so_far[-1].start)]
        elif (not by_sent.get(i) and previous and previous_tumour and previous_at not in tumour_sents and subjects is not None
              and subjects.search(text, a, b)):
            before[i] = previous_tumour
        else:
            before[i] = previous
        previous = by_sent.get(i, [])
        if previous:
            previous_at = i
            if i in tumour_sents:
                previous_tumour = previous
        so_far.extend(previous)
    topic: set[str] = set()

    graph = doc._.assertion_graph
    negations = [m for m in (graph.modifiers if graph else []) if m.category == NEGATED
                 and m.direction not in ("TERMINATE", "PSEUDO")]
    hedges = [m for m in (graph.modifiers if graph else []) if m.category == POSSIBLE
              and m.direction not in ("TERMINATE", "PSEUDO")]
    cue_texts = rules.cue_texts

    organs = rules.elsewhere_in_organ
    bones = rules.in_other_bone
    # an alternative ("or") inside another finding's phrase ("epidural or paraspinal extension") and a denial, hedge
    # or history word inside a phrase that is read for nothing ("normal" in "loss of normal alignment") belong to
    # that phrase, not to the findings around it (a denial inside a phrase, "without collapse or epidural
    # extension", still reaches on; so does a subject word, "Modic type" in "Modic type 1")
    # ("normal" in "normal lordosis with 4 mm anterolisthesis" is the curve's, not a denial of the listhesis)
    phrases = [(sp.start, sp.end, row.concept == "ignore" or row.value == "curvature_normal")
               for _, sp, _, row in spans if sp.end - sp.start > 1]
    other_sentences = {sent_index.get(st, 0) for st, _, _, row in spans if row.concept == "other_lesions"}
    span_ends = sorted((sp.start, sp.end_char) for _, sp, _, row in spans if row.concept not in ("ignore", "lesion", "diagnosis"))

    def starts_after_cue(cue_start: int, before_char: int) -> list[int]:
        """The end characters of the findings (other than lesions) from a cue to a character (a finding phrase
        may hold its own denial: "no pathological fracture")."""
        return [e for st, e in span_ends if st >= cue_start and e <= before_char]

    released: dict[tuple[int, int], int] = {}  # a denial's span -> the lesion it names as a source (see below)
    # a bracket right after a level holds what is said of that level ("T3 (no collapse, 20% of the body) and T8
    # (vertebra plana with gibbus)"): the tokens inside it, by the level mention before it
    bracket_owner: dict[int, _Mention] = {}
    ends_at = {m.end_tok: m for m in mentions}
    mention_starts = {m.start_tok for m in mentions}
    in_bracket: set[int] = set()  # tokens inside brackets (a level named there is an aside: "L2 (not L3) with ...")
    open_at: list[tuple[int, _Mention | None]] = []
    # the bracket tokens (only a report with a bracket has them), and what happens at them and at sentence starts
    brackets = bracket_tokens(doc) if "(" in text else {}
    sent_starts = {st for st, _ in sent_bounds}
    for i in sorted(sent_starts.union(brackets)) if brackets else ():
        tok_text = brackets.get(i)
        if tok_text == "(":
            open_at.append((i, ends_at.get(i)))
        elif tok_text == ")" and open_at:
            start_i, owner = open_at.pop()
            if not open_at:
                in_bracket.update(range(start_i + 1, i))
                # a bracket that names a level of its own ("(unlike L5, which has no collapse)") is about that level
                if owner is not None and not any(k in mention_starts for k in range(start_i + 1, i)):
                    for k in range(start_i + 1, i):
                        bracket_owner[k] = owner
        elif i in sent_starts and open_at:
            open_at = []
    findings: list[Finding] = []
    token_pos: list[tuple[int, int, int]] = []  # start token, end token, sentence: for the percent pass
    sent_texts: dict[int, str] = {}
    for _, span, rid, row in spans:
        start_char, span_end_char = span.start_char, span.end_char
        sec = _section_at(sections, starts, start_char)
        role = sec.role if sec is not None else "findings"
        if role in ("title", "technique"):
            continue
        si = sent_index.get(span.start, 0)
        if row.requires_cue:
            if si not in sent_texts:
                a = sent_bounds[si][1]
                b = sent_bounds[si + 1][1] if si + 1 < len(sent_bounds) else len(text)
                sent_texts[si] = " " + " ".join(doc_text(doc)[a:b].lower().split()) + " "
            if not any(c in sent_texts[si] for c in cue_texts.get(row.requires_cue, ())):
                continue
        if bones is not None and row.concept in _BONE_CONCEPTS and (
                bones[0].match(text, span_end_char) or bones[1].search(text, max(0, start_char - 24), start_char)
        ) and not _SPINE_TOO.search(text, span_end_char, _sentence_bounds(text, start_char, span_end_char)[1]):
            continue  # "lytic lesion of the right 8th rib", "sternal metastasis": not the spine
        if row.concept == "other_lesions" and organs is not None:
            # "other metastases in the liver and lungs", "no other abnormality in the upper abdomen": not the spine
            if organs.match(text, span_end_char):
                continue
        cues: list[Cue] = []
        cue_mods: list[Any] = []  # the modifier of each cue
        categories: set[str] = set()
        modifiers = span_extension(doc, span, "modifiers", ())
        for mod in modifiers:
            a, b = mod.modifier_span
            if mod.direction == "FORWARD" and mod.category in ASSERTIONS and _new_clause(doc, b, span.start):
                continue
            if (mod.category == NEGATED and mod.direction in ("FORWARD", "BIDIRECTIONAL") and b <= span.start
                    and row.concept in ("lesion", "diagnosis") and _apposition_after_denial(doc, b, span.start, span.end)):
                continue
            if (mod.category == NEGATED and mod.direction in ("FORWARD", "BIDIRECTIONAL") and b <= span.start
                    and row.concept == "extent" and _participle_after_denial(doc, b, span.start, rules)):
                continue
            if (mod.category == POSSIBLE and b <= span.start and (mod.rule.metadata or {}).get("row") == "imaging-template-uncertain"
                    and (span.start - b > 2 or any(doc[k].text in (",", ";") for k in range(b, span.start)))):
                continue  # "Alignment: ?kyphosis" doubts the answer, not what follows it ("Epidural: possible, lytic T9 ...")
            if mod.category in ASSERTIONS and brackets and _closed_bracket_between(brackets, a, b, span.start, span.end):
                continue  # "T3 (no collapse) and T8 (vertebra plana)": the denial ends with its bracket
            if (mod.category == NEGATED and mod.direction in ("FORWARD", "BIDIRECTIONAL") and b <= span.start
                    and row.concept != "extent" and any(doc[k].lower_ == "despite" for k in range(b, span.start))):
                # "no cord compression despite 60% loss of height": what follows "despite" is stated (the body's share
                # only right after it: "despite radiotherapy to the entire body" is no extent)
                continue
            if mod.category == NEGATED and released.get((a, b), len(doc)) <= span.start:
                continue  # after the lesion a denial named as the source of what it denies ("... which shows 25% loss")
            if (mod.category == NEGATED and mod.direction in ("FORWARD", "BIDIRECTIONAL") and b <= span.start
                    and row.concept in ("lesion", "diagnosis")
                    and _source_of_denied(text, doc, a, span.start_char, starts_after_cue)):
                released[(a, b)] = span.start
                continue
            if mod.category in ASSERTIONS and any(
                    s0 <= a and b <= s1 and (s0, s1) != (span.start, span.end) and (ignore or mod.category == POSSIBLE)
                    for s0, s1, ignore in phrases):
                continue
            meta = mod.rule.metadata or {}
            last = doc[b - 1]
            cstart, cend = doc[a].idx, last.idx + len(last)
            cue = trusted(Cue, None, category=mod.category, text=text[cstart:cend], start=cstart, end=cend,
                          value=meta.get("value"), rule=rules.rule_name(meta.get("row", "")))
            if mod.category == "STATE":
                cue.negated = _state_negated((a, b), (span.start, span.end), span.label_, negations, doc,
                                             rules.denial_fillers)
                if _state_hedged((a, b), [h.modifier_span for h in hedges if h.allows(span.label_.upper())]):
                    cue.uncertain = True
            cues.append(cue)
            cue_mods.append(mod)
            categories.add(mod.category)
        verdicts = [c for c, mod in zip(cues, cue_mods) if c.category == "STATE"
                    and any(_within(mod.modifier_span, n.modifier_span) for n in negations)]
        if verdicts and len(verdicts) < sum(c.category == "STATE" for c in cues):
            # "CSF effacement is not present": the state word inside the verdict ("present") is the verdict on the
            # other state (the effacement), not a state of its own (CSF not visible)
            cues = [c for c in cues if not any(c is v for v in verdicts)]
        if row.concept == "escc_grade" and not _negates_grade(span, modifiers):
            categories.discard(NEGATED)  # a stated grade is not negated by a "without ..." earlier in the sentence
        context = _context(categories)
        if row.polarity == "negative":
            context = {"present": "negated", "negated": "present"}.get(context, context)  # type: ignore[assignment]
        if role == "history":
            context = "historical"
        hedged_dx = None
        if (context == "uncertain" and categories == {POSSIBLE} and rid in rules.lesion_and_diagnosis_parts
                and all(" ".join(c.text.lower().split()) in rules.nature_hedges for c in cues if c.category == POSSIBLE)):
            # "likely sclerotic metastasis at T8": the sclerotic lesion is seen, only its nature is doubted
            rid, dx_rid = rules.lesion_and_diagnosis_parts[rid]
            row, hedged_dx, context = rules.targets[rid], dx_rid, "present"
        qualifiers = _qualifiers(row, cues, text, span_end_char, start_char)
        levels: tuple[str, ...] = ()
        if row.scope == "level":
            carried = None
            if context != "negated" and before.get(si):
                carried = next((m for m in before[si] if topic & set(m.levels)), before[si][0])
            owner = bracket_owner.get(span.start)
            named = by_sent.get(si, [])
            if span.start not in in_bracket:  # a finding outside brackets goes to a level named outside them
                named = [m for m in named if m.start_tok not in in_bracket] or named
            levels = owner.levels if owner is not None else _attach(span.start, span.end, named, carried,
                                                                  after=row.concept == "index_cue")
            if levels and row.counts and context == "present":
                topic = set(levels)
            if not by_sent.get(si) and si in other_sentences:
                qualifiers["about_other_lesions"] = True
        elif row.concept == "other_lesions" and context == "present" and by_sent.get(si):
            # "other skeletal metastases at D9, L2 and S1": the levels it names are involved (not the index)
            named = [lv for m in by_sent[si] if m.start_tok >= span.end for lv in m.levels]
            if named:
                qualifiers["levels_named"] = list(dict.fromkeys(named))
        end_char = span_end_char + qualifiers.pop("grade_end", 0)
        start_char -= qualifiers.pop("grade_start", 0)
        near = [c for c in cues if c.category in _DECISIVE and (c.end >= start_char - 40 and c.start <= end_char + 40)]
        if near:  # the words that decided the value, for the evidence shown beside it
            a = min([start_char] + [c.start for c in near])
            b = max([end_char] + [c.end for c in near])
            if b - a <= 100:
                qualifiers["phrase"] = {"text": text[a:b], "start": a, "end": b}
        kb_item = rules.kb_item(rid)
        finding = trusted(
            Finding, {"_row": row},
            concept=row.concept, value=row.value, text=text[start_char:end_char], start=start_char,
            end=end_char, assertion=context, context=context, levels=list(levels),
            section=role if role in ("findings", "impression", "history") else "findings", cues=cues,
            qualifiers=qualifiers, rule=rules.rule_name(rid), kb_items=[kb_item] if kb_item else [],
            sources=list(row.sources),
        )
        findings.append(finding)
        token_pos.append((span.start, span.end, si))
        if hedged_dx is not None:  # the doubted diagnosis, beside the lesion
            dx_row, dx_item = rules.targets[hedged_dx], rules.kb_item(hedged_dx)
            doubted = finding.model_copy(update={
                "concept": dx_row.concept, "value": dx_row.value, "assertion": "uncertain", "context": "uncertain",
                "rule": rules.rule_name(hedged_dx), "kb_items": [dx_item] if dx_item else [],
                "sources": list(dx_row.sources), "qualifiers": {k: v for k, v in qualifiers.items() if k == "phrase"}})
            doubted.__pydantic_private__["_row"] = dx_row  # type: ignore[index]
            findings.append(doubted)
            token_pos.append((span.start, span.end, si))
    _percentages(text, doc, rules, findings, token_pos, sent_index)
    # CSF effaced in a sentence (or just after one) that says the cord is compressed: no CSF left around the cord
    # (read in prefill)
    compressed = {si for f, (_, _, si) in zip(findings, token_pos) if f.concept == "cord" and f.context == "present"
                  and (f.value == "cord_compression" or (f.qualifiers.get("states") or {}).get("compress") == "present")}
    cord_named = {si for f, (_, _, si) in zip(findings, token_pos) if f.concept == "cord"}
    for f, (_, _, si) in zip(findings, token_pos):
        if f.concept == "csf" and (si in compressed or (si - 1 in compressed and si not in cord_named)):
            f.qualifiers["cord_compressed_beside"] = True
    # A facet named among degenerative findings, with no lesion in the sentence, is degenerative, not posterolateral
    # tumour ("marked facet hypertrophy ... a synovial cyst anterior to the right facet", "facet joint uptake with a
    # degenerative pattern")
    degenerative = {si for f, (_, _, si) in zip(findings, token_pos) if f.value == "degenerative" and f.context == "present"}
    degenerative_levels: dict[int, set[str]] = {}
    degenerative_spans: dict[int, list[tuple[int, int]]] = {}
    modic_levels: dict[int, set[str]] = {}
    for f, (_, _, si) in zip(findings, token_pos):
        if f.value == "degenerative" and f.context == "present":
            degenerative_levels.setdefault(si, set()).update(f.levels)
            if "modic" in f.text.lower():
                modic_levels.setdefault(si, set()).update(f.levels)
            degenerative_spans.setdefault(si, []).append((f.start, f.end))
    lesion = {si for f, (_, _, si) in zip(findings, token_pos) if f.concept in ("lesion", "diagnosis", "epidural")
              and f.context in ("present", "uncertain") and f.value != "degenerative"}
    for f, (_, _, si) in zip(findings, token_pos):
        if f.concept == "posterior" and si in degenerative and si not in lesion:
            f.qualifiers["degenerative_context"] = True
        elif (f.concept in ("signal", "oedema", "feature") and si in degenerative and si not in lesion
              and set(f.levels) <= degenerative_levels.get(si, set())
              and (any(_clause_bounds(text, f.start, f.end) == _clause_bounds(text, a, b)
                       for a, b in degenerative_spans.get(si, ()))
                   # an endplate band or oedema at exactly the levels the sentence calls degenerative ("band-like
                   # endplate change on both sides of the disc, low on T1 and high on STIR - Modic type 1")
                   or f.concept in ("oedema", "feature") and f.levels
                   and set(f.levels) == degenerative_levels.get(si, set())
                   # marrow signal at exactly the levels a Modic change is named for ("Modic type 1 endplate change
                   # L4, low on T1 and high on STIR")
                   or f.concept == "signal" and f.levels and set(f.levels) == modic_levels.get(si, set()))):
            # endplate signal beside Modic change or disc degeneration at the same levels ("Modic type 1 change at
            # L4-5 with low T1 and high STIR endplate signal"): degenerative, not a level with a bone lesion (signal
            # at other levels, "disc degeneration at C5-6 and abnormal STIR in C7 and T1", still counts)
            f.qualifiers["degenerative_context"] = True
    _coordinated_negation(text, findings, token_pos)
    _sizes_other(text, findings, rules)
    _cord_signal(text, findings, rules)
    _collection_rim(text, findings, rules)
    _whole_body_low_t1(text, findings, rules)
    _elsewhere(text, findings, rules)
    _alternative_types(text, findings, rules)
    _changed_curves_and_spared_exceptions(text, findings, rules)
    _about_other_parts(text, findings, rules)
    _fat_signal(text, findings, rules)
    _old_deformity(text, findings, rules, doc.user_data.get("spinemets_levels"))
    _other_compressor(text, findings, rules)
    _csf_on_one_side(text, findings)
    _second_predicate(text, findings, rules)
    _graded_compression(text, findings, rules)
    findings = _without_disc_height(text, findings, token_pos, rules)
    return _without_heading_labels(text, findings, token_pos)


def _sentence_bounds(text: str, start: int, end: int) -> tuple[int, int]:
    a = max(text.rfind(".", 0, start), text.rfind("\n", 0, start)) + 1
    ends = [i for i in (text.find(".", end), text.find("\n", end)) if i >= 0]
    return a, (min(ends) if ends else len(text))


def _cord_signal(text: str, findings: list[Finding], rules: RuleSet) -> None:
    """Mark signal and oedema of the cord, roots or meninges ("Cord oedema from T8 to T10", "leptomeningeal
    enhancement along the cauda equina"): the cord is named before the finding in its sentence and no bone is
    named there, so the levels it spans are not vertebral levels with a finding."""
    pats = rules.cord_signal
    if pats is None:
        return
    cord, bone = pats
    for f in findings:
        if f.concept not in ("signal", "oedema"):
            continue
        a, b = _clause_bounds(text, f.start, f.end)
        if cord.search(text, a, f.start) and not bone.search(text[a:b]):
            f.qualifiers["cord_context"] = True


def _collection_rim(text: str, findings: list[Finding], rules: RuleSet) -> None:
    """Mark the enhancing rim or wall of a collection ("epidural collection from T6 to T8 with peripheral
    enhancement", "rim-enhancing psoas abscess"): its sentence names a collection or abscess, so the enhancement is
    not the marrow's; a bone lesion's rim enhancement ("lytic L1 lesion with rim enhancement") still counts."""
    pats = rules.collection_rim
    if pats is None:
        return
    rim, collection = pats
    for f in findings:
        if f.concept != "signal" or not rim.search(f.text):
            continue
        a, b = _sentence_bounds(text, f.start, f.end)
        if any(not _DENIED_BEFORE.search(text, max(a, m.start() - 12), m.start()) for m in collection.finditer(text, a, b)):
            f.qualifiers["not_marrow"] = True


def _whole_body_low_t1(text: str, findings: list[Finding], rules: RuleSet) -> None:
    """Mark low T1 signal that its sentence gives the whole body ("the whole vertebral body has been replaced by
    tumour of low T1 signal", "the body is entirely replaced - homogeneously low T1"): the diffuse low T1 signal of
    the fracture differential, unless the sentence also names a part of the body ("a band", "the rest of the
    body") - from the terms' ``whole_body`` and ``part_of_body`` groups."""
    whole, part = rules.group_pattern("whole_body"), rules.group_pattern("part_of_body")
    if whole is None or part is None:
        return
    for f in findings:
        if f.concept != "signal" or f.context != "present" or f.value != "t1_hypointense":
            continue
        a, b = _sentence_bounds(text, f.start, f.end)
        if whole.search(text, a, b) and not part.search(text, a, b):
            f.qualifiers["whole_body"] = True


_SEEN_AFTER = re.compile(r"\s*(?:is\s+|are\s+)?(?:also\s+)?(?:seen\s+|identified\s+|present\s+)?", re.IGNORECASE)


def _elsewhere(text: str, findings: list[Finding], rules: RuleSet) -> None:
    """Mark a lesion or diagnosis said to be elsewhere ("no focal marrow lesion elsewhere", "no lytic or sclerotic
    lesion elsewhere", "metastases are also seen elsewhere"): it is about the other levels of the spine, not the
    index lesion (the fracture differential's other spinal metastases, present or absent); the words are the terms'
    ``elsewhere`` group."""
    words = rules.group_pattern("elsewhere")
    if words is None:
        return
    for f in findings:
        if (f.concept in ("lesion", "diagnosis") or "lesion" in f.text.lower()) and words.match(
                text, _SEEN_AFTER.match(text, f.end).end()):  # type: ignore[union-attr]
            f.qualifiers["elsewhere"] = True


WEAK_EXTENT = frozenset({"small", "tiny"})  # bare size words: they may describe anything nearby
_CLAUSE_END = re.compile(r"\.(?:\s|$)|[;\n]")


def _clause_end(text: str, at: int) -> int:
    """The end of the sentence from *at* (a full stop followed by a space or the end, a semicolon, a line break)."""
    m = _CLAUSE_END.search(text, at)
    return m.start() if m else len(text)


@functools.lru_cache(maxsize=8)
def _after_patterns(changed: tuple[str, ...], exceptions: tuple[str, ...], tumour: tuple[str, ...]
                    ) -> tuple[re.Pattern[str], re.Pattern[str]]:
    """(a curve changed or queried right after it: "the normal lordosis is reversed", "normal kyphosis?"; an
    exception or tumour in another part, or a query, right after spared pedicles), from the terms' groups."""
    from spinemets.reports.rules import trie_alternation

    verbs = [w for w in changed if " " not in w]  # the participles of ``curve_changed`` ("reversed", "lost")
    return (re.compile(rf"\s*(?:\?|(?:is|has\s+been|was|are)\s+(?:now\s+)?(?:{trie_alternation(verbs)})\b)", re.IGNORECASE),
            re.compile(rf"\s*(?:\?|,?\s*(?:{trie_alternation(exceptions + tumour)}))", re.IGNORECASE))


def _changed_curves_and_spared_exceptions(text: str, findings: list[Finding], rules: RuleSet) -> None:
    """A normal curve named as lost or changed ("reversal of the normal cervical lordosis") is no normal curve (the
    terms' ``curve_changed``); pedicles said to be spared with an exception or a query after them ("pedicles spared
    except the right", "pedicles intact? assess on CT") are not both free."""
    groups = rules.terms.groups
    changed, exceptions = rules.group_pattern("curve_changed"), rules.group_pattern("exception_words")
    changed_after, exception_after = _after_patterns(tuple(groups.get("curve_changed", ())),
                                                     tuple(groups.get("exception_words", ())),
                                                     tuple(groups.get("exception_tumour", ())))
    for f in findings:
        if f.rule.endswith(".alignment-curvature-normal") and (
                (changed is not None and changed.search(text, max(0, f.start - 30), f.start))
                or changed_after.match(text, f.end)):
            f.qualifiers["curve_changed"] = True
        elif f.rule.endswith(".posterior-pedicles-spared") and (
                exception_after.match(text, f.end)
                or (exceptions is not None and exceptions.search(text, f.end, _clause_end(text, f.end)))):
            f.context = f.assertion = "uncertain"


def _alternative_types(text: str, findings: list[Finding], rules: RuleSet) -> None:
    """Lesion types named as alternatives ("lytic versus sclerotic", "lytic or mixed", "either lytic or blastic", "not
    clearly lytic or sclerotic"): the report does not decide the type, so a type stated present becomes uncertain
    (the terms' ``lesion_type_words`` and ``alternative_words``; "lytic/sclerotic" is a mixed lesion, not a choice)."""
    types, alternatives = rules.group_pattern("lesion_type_words"), rules.group_pattern("alternative_words")
    if types is None or alternatives is None or not any(f.concept == "lesion" for f in findings):
        return
    if alternatives.search(text) is None:
        return  # (most reports: no "or", "versus" or "vs")
    spans: list[tuple[int, int]] = []
    # a list of types ending in "or" ("lytic, sclerotic or mixed"): every one of them is an option
    spans.extend((m.start(), m.end()) for m in _type_chain(types.pattern).finditer(text))
    for m in types.finditer(text):
        gap = _ALT_GAP.match(text, m.end())
        alt = alternatives.match(text, gap.end()) if gap else None
        if alt is None:
            continue
        nxt = types.match(text, _ALT_GAP.match(text, alt.end()).end())  # type: ignore[union-attr]
        if nxt is not None:
            spans.append((m.start(), nxt.end()))
    for f in findings:
        if f.concept == "lesion" and f.context == "present" and any(a < f.end and f.start < b for a, b in spans):
            f.context = f.assertion = "uncertain"
            f.qualifiers["alternative_types"] = True
        elif f.concept == "diagnosis" and f.context == "uncertain" and spans:
            # "T5 metastasis, lytic versus sclerotic": the "versus" offers two types, not two diagnoses
            doubts = [c for c in f.cues if c.category == POSSIBLE]
            if doubts and all(any(a <= c.start and c.end <= b for a, b in spans) for c in doubts):
                f.context = f.assertion = "present"


@functools.lru_cache(maxsize=8)
def _type_chain(types: str) -> re.Pattern[str]:
    return re.compile(rf"(?:{types})(?:\s*,\s*(?:{types}))+\s*,?\s*(?:or|and/or)\s+(?:{types})", re.IGNORECASE)


_ALT_GAP = re.compile(r"[\s,]*(?:(?:a|an|predominantly|purely)\s+)?")


def _about_other_parts(text: str, findings: list[Finding], rules: RuleSet) -> None:
    """A body said to be free of the lesion or a canal or epidural space said to be clear, in a sentence that puts
    it on other levels or parts ("no osseous lesion elsewhere", "above and below, the canal is clear", "preserved
    at all levels except T7"): it says nothing of the index level (the terms' ``other_parts``)."""
    other = rules.group_pattern("other_parts")
    if other is None:
        return
    for f in findings:
        if f.value not in ("uninvolved", "canal_clear", "epidural_space_clear"):
            continue
        a, b = _sentence_bounds(text, f.start, f.end)
        if other.search(text, a, b):
            f.qualifiers["about_other_parts"] = True


def _fat_signal(text: str, findings: list[Finding], rules: RuleSet) -> None:
    """Mark T1-bright marrow that its sentence calls fat ("uniformly high T1 marrow signal from C2 to T4 in keeping
    with post-radiotherapy fatty marrow"): no abnormal level; a T1-bright deposit ("T1 hyperintense foci suspicious
    for melanotic metastases") still counts."""
    fat = rules.fat_words
    if fat is None:
        return
    for f in findings:
        if f.concept == "signal" and f.value in ("t1_hyperintense", "t1_t2_hyperintense"):
            a, b = _sentence_bounds(text, f.start, f.end)
            if fat.search(text, a, b):
                f.qualifiers["fat_context"] = True


# a denial before a word in its clause ("no collection", "without a disc extrusion"): the word is denied
_DENIED_BEFORE = re.compile(r"\b(?:no|not|without|nor|negative for)\b[^,;:]*$", re.IGNORECASE)


def _old_deformity(text: str, findings: list[Finding], rules: RuleSet, mentions: Sequence[Any] | None = None) -> None:
    """Mark a deformity or subluxation its sentence calls old, developmental or degenerative ("scoliosis,
    longstanding and unchanged since 2015", "kyphosis secondary to previous osteoporotic fractures", "grade 1
    anterolisthesis due to facet arthropathy"): SINS scores a de novo deformity, so it fills nothing."""
    words, new = rules.group_pattern("not_de_novo"), rules.group_pattern("new_deformity")
    if words is None or not any(f.concept == "alignment" for f in findings):
        return
    if mentions is None:  # (the pipeline has found them already: the document's level mentions)
        from spinemets.reports.pipeline import find_levels

        mentions = find_levels(text, rules)

    def levels_in(a: int, b: int) -> set[str]:
        return {lv for m in mentions if a <= m.start < b for lv in m.levels}

    for f in findings:
        if f.concept != "alignment" or f.value not in ("deformity", "subluxation"):
            continue
        ca, cb = _clause_bounds(text, f.start, f.end)
        if new is not None and new.search(text, ca, cb):
            continue  # "new focal kyphosis", "progressive kyphotic deformity": de novo
        a, b = _sentence_bounds(text, f.start, f.end)
        semi = text.find(";", f.end, b)
        b = semi if semi >= 0 else b  # "... with focal kyphosis; the L1 fracture is stable since 2022"
        semi = text.rfind(";", a, f.start)
        a = semi + 1 if semi >= 0 else a
        own = levels_in(ca, cb) | set(f.levels)
        for m in words.finditer(text, a, b):
            wa, wb = _clause_bounds(text, m.start(), m.end())
            if (wa, wb) == (ca, cb) or not levels_in(wa, wb) - own:
                # in the deformity's own clause, or in one about no other level ("while T12 is unchanged since 2021"
                # is about T12)
                f.qualifiers["not_de_novo"] = True
                break


def _other_compressor(text: str, findings: list[Finding], rules: RuleSet) -> None:
    """Mark the sac, cord, CSF and epidural findings of a sentence that names a compressor other than tumour
    ("epidural lipomatosis compressing the thecal sac", "disc extrusion at T6/7 compresses the cord", "epidural
    haematoma"): the ESCC scale grades epidural tumour, so they fill nothing."""
    words = rules.group_pattern("other_compressor")
    if words is None:
        return
    low = text.lower()
    if not any(w in low for w in rules.terms.groups.get("other_compressor", ())):
        return  # (a substring test first: most reports name no other compressor)
    for f in findings:
        if f.concept not in ("epidural", "thecal_sac", "cord", "csf", "canal"):
            continue
        a, b = _clause_bounds(text, f.start, f.end)
        tumour = rules.group_pattern("tumour_words")
        if tumour is not None and tumour.search(text, a, b):
            continue  # "tumour effacing the epidural fat", "epidural tumour and a small disc bulge"
        found = [m for m in words.finditer(text, a, f.start)]
        after = words.match(text, f.end + 1) if f.concept == "epidural" else None  # "epidural haematoma"
        m = after or (found[-1] if found else None)
        if m is not None and not _DENIED_BEFORE.search(text, max(a, m.start() - 14), m.start()):
            f.qualifiers["not_tumour"] = True


_SIDE_WORD = r"(?:anteriorly|posteriorly|dorsally|ventrally|laterally|on the (?:left|right)|to the (?:left|right))"
_STILL_SEEN = re.compile(r"\b(?:but|though|although|while|whereas)\b(?:(?!\bno\b|\bnot\b|\bnone\b)[^.;])*?"
                         r"\b(?:seen|visible|preserved|present|maintained|remains?)\s+" + _SIDE_WORD, re.IGNORECASE)


def _second_predicate(text: str, findings: list[Finding], rules: RuleSet) -> None:
    """States stated as further predicates of a cord or thecal sac named as the subject ("The cord is displaced to
    the left and is in contact with the mass but is not compressed"): each "and" or "but" predicate in turn, with
    no clause break and no other cord, sac or CSF finding before it; a state the noun already has is kept."""
    owners = ("cord", "thecal_sac", "csf")
    for j, f in enumerate(findings):
        if f.context != "present" or f.concept not in ("cord", "thecal_sac"):
            continue
        row = rules.targets.get(f.rule.split(".", 1)[-1].removeprefix("site:"))
        pattern = rules.predicate_states.get(row.label) if row is not None and row.states else None
        if pattern is None:
            continue
        at = f.end
        for _ in range(3):
            m = pattern.match(text, at)
            if m is None or any(at <= e.start < m.end() and e.concept in owners for e in findings[j + 1:]):
                break
            at = m.end()
            group = next(k for k, v in m.groupdict().items() if k != "neg" and v is not None)
            rid = group.replace("_", "-")
            value = rules.context[rid].value
            states = f.qualifiers.setdefault("states", {})
            if value in states or value not in row.states:  # type: ignore[union-attr]
                continue
            negated = m.group("neg") is not None
            stated_fields = {k for st, v in states.items() if v == "present" for k in (row.states or {}).get(st, {})}
            if negated and stated_fields & set((row.negated_states or {}).get(value, {})):
                continue  # "indented but not effaced", "displaced but not compressed": the stated state stands
            states[value] = "negated" if negated else "present"
            f.cues = [*f.cues, Cue(category="STATE", text=text[m.start(group):m.end()], start=m.start(group),
                                   end=m.end(), value=value, negated=negated, rule=rules.rule_name(rid))]


def _graded_compression(text: str, findings: list[Finding], rules: RuleSet) -> None:
    """A grade written before the scale's full name ("grade 1c epidural spinal cord compression") states the ESCC
    grade; it does not say the cord is compressed (grades 0 to 1c leave it uncompressed)."""
    grade_row = rules.targets.get("escc-grade")
    if grade_row is None:
        return
    for f in findings:
        if f.concept != "cord" or f.value != "cord_compression":
            continue
        b = _GRADE_BEFORE.search(text[max(0, f.start - 16):f.start])
        if b is None or b.group(1).lower() in ("i", "ii", "iii") and not b.group(1).isupper():
            continue
        if _GRADE_AT_LEAST.search(text[max(0, f.start - 16) - 24:max(0, f.start - 16) + b.start()]):
            continue  # "at least grade 2 ...": more than one grade; the cord is compressed either way
        f.concept, f.value = grade_row.concept, grade_row.value
        f.rule = rules.rule_name("escc-grade")
        f._row = grade_row
        item = rules.kb_item("escc-grade")
        f.kb_items, f.sources = ([item] if item else []), list(grade_row.sources)
        f.qualifiers = {**f.qualifiers, "grade": _GRADE_VALUES[b.group(1).lower()] + (b.group(2) or "").lower()}
        f.start = max(0, f.start - 16) + b.start()
        f.text = text[f.start:f.end]


def _csf_on_one_side(text: str, findings: list[Finding]) -> None:
    """CSF denied on one side and seen on another in the same sentence ("CSF is not seen anteriorly but is seen
    posteriorly") is CSF still visible around the cord (grade 2, not 3)."""
    for f in findings:
        states = f.qualifiers.get("states") or {}
        if f.concept == "csf" and states.get("visible") == "negated":
            a, b = _sentence_bounds(text, f.start, f.end)
            if _STILL_SEEN.search(text, f.end, b):
                f.qualifiers["states"] = {**states, "visible": "present"}


def _clause_bounds(text: str, start: int, end: int) -> tuple[int, int]:
    """The clause around a span: the sentence cut at commas, semicolons, colons and brackets ("Cord compressed at
    T8 by a mass, which is T1 hypointense" puts the signal in the mass's clause, not the cord's)."""
    a, b = _sentence_bounds(text, start, end)
    cut = max((text.rfind(c, a, start) for c in ",;:("), default=-1)
    a = max(a, cut + 1)
    ends = [i for i in (text.find(c, end, b) for c in ",;:)") if i >= 0]
    return a, (min(ends) if ends else b)


_OF_DISC = re.compile(r"\s*(?:of|at|in)\s+(?:the\s+)?(?:[CTLS]\d{1,2}\s*[-/]\s*[CTLS]?\d{1,2}\s+)?"
                      r"(?:intervertebral\s+)?(?:disc|disk)s?\b", re.IGNORECASE)

# a height-loss phrase that names no vertebra itself (the sentence decides whose height it is)
_BARE_HEIGHT_LOSS = frozenset({"loss of height", "height loss", "reduced height", "reduction in height",
                               "decreased height", "loss of height of"})


def _without_disc_height(text: str, findings: list[Finding], token_pos: list[tuple[int, int, int]],
                         rules: RuleSet) -> list[Finding]:
    """Drop a bare height loss that belongs to a disc ("All lumbar discs are desiccated, with moderate loss of
    height at L5-S1", "loss of height of the L4/5 disc"): its sentence names a disc and no vertebral body,
    collapse or fracture."""
    pats = rules.disc_height
    if pats is None:
        return findings
    disc, body = pats
    out = []
    for f in findings:
        if f.concept == "collapse" and " ".join(f.text.lower().split()) in _BARE_HEIGHT_LOSS:
            start, stop = _sentence_bounds(text, f.start, f.end)
            sentence = text[start:stop]
            # the disc named right after the height loss ("loss of height of the L4/5 disc"), or a disc level
            # (two adjacent levels, "at L5-S1") in a sentence about discs that names no vertebral body
            of_disc = _OF_DISC.match(text, f.end) is not None
            disc_level = (len(f.levels) == 2 and abs(INDEX[f.levels[0]] - INDEX[f.levels[1]]) == 1
                          and disc.search(sentence) is not None and body.search(sentence) is None)
            if of_disc or disc_level:
                continue
        out.append(f)
    kept = {id(f) for f in out}
    token_pos[:] = [tp for f, tp in zip(findings, token_pos) if id(f) in kept]
    return out


def _sizes_other(text: str, findings: list[Finding], rules: RuleSet) -> None:
    """A bare size word followed by what it sizes, when that is not the lesion ("small sheets of extraosseous soft
    tissue", "a small disc protrusion"): marked, so that it says nothing about how much of the body is involved."""
    other = rules.sized_other
    if not other:
        return
    for f in findings:
        if f.concept != "extent" or len(f.text.split()) != 1:
            continue
        if text[max(0, f.start - 4):f.start].lower().endswith(("non-", "non ")):
            f.qualifiers["sizes_other"] = "non-small"  # "non-small cell lung cancer"
            continue
        # the next words up to a clause break ("small left pleural effusion", "small sheets of soft tissue")
        clause = re.split(r"[.,;:()]", text[f.end:f.end + 60], maxsplit=1)[0]
        words = [w.lower() for w in re.findall(r"[A-Za-z][A-Za-z-]*", clause)[:3]]
        hit = next((w for w in words if w in other), None)
        if hit is not None:
            f.qualifiers["sizes_other"] = hit


# A list of parts that one plural state after it denies ("The pedicles, laminae and spinous process of C2 are
# intact"): ConText's scope, counted in tokens, reaches the nearest parts only. The words between two parts of the
# list are list words (commas, and, or, the, of, a level); a verb or a clause break ends the list.
_PLURAL_STATE = re.compile(r"(?:are|were|remain|appear)\s", re.IGNORECASE)
_LIST_BREAK = re.compile(r"[;:.()]|\b(?:is|are|was|were|shows?|showing|involv\w*|extend\w*|with|without|but|which|"
                         r"while|whereas|although|has|have|demonstrat\w*|contain\w*|abnormal|destroy\w*|"
                         r"infiltrat\w*|replac\w*|lesion|tumou?r|deposit|metasta\w*|expan\w*|erod\w*|signal)\b",
                         re.IGNORECASE)


def _coordinated_negation(text: str, findings: list[Finding], token_pos: list[tuple[int, int, int]]) -> None:
    """A part listed before a denied part, in one list that a plural state denies, is denied too."""
    for j, f in enumerate(findings):
        if f.context != "negated" or f.concept not in ("posterior", "paravertebral"):
            continue
        cue = next((c for c in f.cues if c.category == NEGATED and c.start >= f.end
                    and _PLURAL_STATE.match(c.text)), None)
        if cue is None:
            continue
        if _LIST_BREAK.search(text[f.end:cue.start]):
            continue
        listed: list[Finding] = []
        k = j
        while k > 0:
            e = findings[k - 1]
            gap = text[e.end:findings[k].start]
            if (token_pos[k - 1][2] != token_pos[j][2] or e.context != "present" or e.concept != f.concept
                    or len(gap) > 40 or _LIST_BREAK.search(gap) or not re.search(r",|\band\b|\bor\b", gap)):
                break
            listed.append(e)
            k -= 1
        # the list must open its clause: "Tumour extends into the left pedicle, the lamina and spinous process are
        # intact" says the pedicle has tumour, and only the parts after it are intact
        if listed and not _LIST_BREAK.search(text[_clause_start(text, listed[-1].start):listed[-1].start]):
            for e in listed:
                e.assertion = e.context = "negated"
                e.cues = [*e.cues, cue]


def _clause_start(text: str, at: int) -> int:
    """Where the clause holding *at* begins: after the last full stop, semicolon, colon or line break before it."""
    return max(text.rfind(mark, 0, at) for mark in (". ", ";", ":", "\n")) + 1


# A part named as the label of a line ("- Pedicles: abnormal signal extends into the left pedicle"): the line says
# what it is, so the label is not a finding of its own when the same line names the part again.
_LABEL_END = re.compile(r"\s*:")
_LABEL_START = re.compile(r"\s*(?:[-*\u2022]\s*)?")
_BOTH_SIDES = re.compile(r"\b(?:both|bilateral\w*|either side|each side|left and right|right and left)\b", re.IGNORECASE)


def _without_heading_labels(text: str, findings: list[Finding], token_pos: list[tuple[int, int, int]]) -> list[Finding]:
    out = []
    for f in findings:
        if _LABEL_END.match(text, f.end) is None:  # (most findings: no colon after them)
            out.append(f)
            continue
        line_start = text.rfind("\n", 0, f.start) + 1
        line_end = text.find("\n", f.end)
        line_end = len(text) if line_end < 0 else line_end
        label = _LABEL_START.fullmatch(text, line_start, f.start) is not None
        # a label whose line puts the part on both sides ("Pedicles: both expanded by tumour, the left more than
        # the right") keeps its side: the later mention names one side only to compare
        again = label and not _BOTH_SIDES.search(text, f.end, line_end) and any(
            g is not f and g.concept == f.concept and g.value == f.value and f.end < g.start < line_end for g in findings)
        if not again:
            out.append(f)
    kept = {id(f) for f in out}
    token_pos[:] = [tp for f, tp in zip(findings, token_pos) if id(f) in kept]
    return out


# A sentence about every lesion ("The lesions are low on T1"): see the level carrying in read_report.
_PLURAL_SUBJECT = re.compile(r"\s*(?:[-*\u2022]\s*)?(?:the|all|these|both|all the|all of the|all these)\s+"
                             r"(?:lesions|deposits|metastases|foci|lesion sites)\b|\s*(?:they|all of them)\b",
                             re.IGNORECASE)


def _attach(a: int, b: int, mentions: list[_Mention], carried: _Mention | None, after: bool = False
            ) -> tuple[str, ...]:
    """Levels of the nearest level mention in the sentence (a preceding one wins a tie; with *after*, a following
    one: 'at T5 and T6, bulkiest at T6'), else the carried one."""
    best = None
    for m in mentions:
        if m.end_tok <= a:
            d, later = a - m.end_tok, 1 if after else 0
        elif m.start_tok >= b:
            d, later = m.start_tok - b, 0 if after else 1
        else:
            d, later = 0, 0
        key = (d, later)
        if best is None or key < best[0]:
            best = (key, m)
    if best is not None:
        return best[1].levels
    return carried.levels if carried is not None else ()


def _state_hedged(state: tuple[int, int], hedges: list[tuple[int, int]]) -> bool:
    """A state is hedged by an uncertainty right before it or inside it: "the cord may be compressed", "possibly
    (mildly) compressing the cord", "probable cord compression" (the hedge of the finding itself is its assertion)."""
    a, b = state
    return any(a <= ha and hb <= b or hb <= a and a - hb <= 1 for ha, hb in hedges)


def _negates_grade(span: Any, modifiers: Any) -> bool:
    """Whether a negation bears on the stated grade itself: right before it ("no ESCC grade 3", "not Bilsky 3")
    or after it ("grade 3 is excluded"), not a "without cord compression" earlier in the sentence."""
    for mod in modifiers:
        if mod.category != NEGATED:
            continue
        a, b = mod.modifier_span
        if b == span.start or a >= span.end:
            return True
    return False


_ONE_SIDE_ANSWER = re.compile(r"[ \t]*:[ \t]*(left|right)(?:[ \t]+(?:only|involved|side|side only))?[ \t]*(?:[.;]|\n|$)",
                               re.IGNORECASE)


def _qualifiers(row: TargetRow, cues: list[Cue], text: str, end: int, start: int | None = None) -> dict[str, Any]:
    q: dict[str, Any] = {}
    sides = {c.value for c in cues if c.category == "SIDE" and c.value}
    # a plural part is both sides ("pedicles"), unless a template line answers it with one side alone ("Pedicles: left
    # only"; a side word before it, "right lamina and pedicles", may be another part's)
    answered = {c.value for c in cues if c.category == "SIDE" and c.value and c.text.lstrip()[:1] in (":", "-")}
    if row.side == "bilateral" and not sides:
        one = _ONE_SIDE_ANSWER.match(text, end)  # "Pedicles: left" ending its template line
        if one is not None:
            answered = sides = {one.group(1).lower()}
    if row.side and not (row.side == "bilateral" and len(answered) == 1 and sides == answered <= {"left", "right"}):
        sides.add(row.side)
    if sides:
        q["side"] = sorted(sides)
    degrees = sorted({c.value for c in cues if c.category == "DEGREE" and c.value})
    if degrees:
        q["degree"] = degrees
    states = {}
    for c in cues:
        if c.category == "STATE" and c.value and not c.uncertain:
            states[c.value] = bool(c.negated) and states.get(c.value, True)
    if states:
        q["states"] = {k: ("negated" if v else "present") for k, v in states.items()}
    for c in cues:
        if c.category == "SUBJECT":
            q[c.value or "not_marrow"] = True  # not_marrow: about the disc or cord; not_tumour: cement, disc, gas
    if row.concept == "escc_grade":
        m = _GRADE_AFTER.match(text[end:end + 32])
        if m and m.group(1).lower() in ("i", "ii", "iii") and not m.group(1).isupper():
            m = None  # Roman numerals are written in capitals; 'i' is not a grade
        if m:
            q["grade"] = _GRADE_VALUES[m.group(1).lower()] + (m.group(2) or "").lower()
            q["grade_end"] = m.end()
            gend = m.end(2) if m.group(2) else m.end(1)  # the grade itself ("2 - 3": not the dash after it)
            more = _GRADE_RANGE.match(text[end + gend:end + gend + 24])
            before = text[max(0, (start or end) - 24):(start if start is not None else end)]
            if more or _GRADE_AT_LEAST.search(before):
                # "ESCC 2-3", "grade 1c/2", "at least ESCC 2": more than one grade, none of them stated
                q["grade_range"] = " ".join(text[start if start is not None else end:end + (
                    gend + more.end() if more else m.end())].split())
                if _GRADE_AT_LEAST.search(before):
                    q["grade_range"] = " ".join(_GRADE_AT_LEAST.search(before).group(0).split()) + " " + q["grade_range"]
                del q["grade"]
        elif start is not None:
            b = _GRADE_BEFORE.search(text[max(0, start - 16):start])
            if b:
                q["grade"] = _GRADE_VALUES[b.group(1).lower()] + (b.group(2) or "").lower()
                q["grade_start"] = len(text[max(0, start - 16):start]) - b.start()
    return q


# --- percentages and fractions of height ------------------------------------------------------------------------


def _percent_regex(rules: RuleSet) -> tuple[_Amounts, re.Pattern[str], re.Pattern[str]]:
    """(a percentage or fraction of height, a comparison word just before it, an earlier study's cue before it)."""
    comparators = sorted(rules.terms.comparators, key=len, reverse=True)
    from spinemets.reports.rules import trie_alternation

    fractions = trie_alternation(w for w, _ in rules.terms.fractions)
    number = r"\d{1,3}(?:\.\d+)?"
    figure = rf"(?<![\d.])(?P<a>{number})\s*(?:(?:-|\u2013|to)\s*(?P<b>{number})\s*)?(?:%|\s?per\s?cent\b|\s?percent\b)"
    fraction = rf"(?<![A-Za-z])(?P<frac>{fractions})(?![A-Za-z])"
    amount = _Amounts(re.compile(rf"{figure}|{fraction}", re.IGNORECASE),
                      re.compile(rf"(?=\d){figure}", re.IGNORECASE), re.compile(fraction, re.IGNORECASE),
                      tuple({re.split(r"[\s-]", w.lower())[-1] for w, _ in rules.terms.fractions}),
                      all(w.isascii() for w, _ in rules.terms.fractions))
    before = re.compile(rf"(?P<cmp>{'|'.join(re.escape(c) for c in comparators)})\s*(?:of\s+)?$", re.IGNORECASE)
    # a figure of an earlier study: "(previously 30%)", "prior: ~15%"
    earlier = re.compile(
        rf"\b(?:{'|'.join(re.escape(w) for w in sorted(rules.terms.percent_earlier, key=len, reverse=True))})\b"
        rf"[\s:]*(?:(?:{'|'.join(re.escape(c) for c in comparators)})\s*)?$", re.IGNORECASE)
    return amount, before, earlier


def _fraction_value(found: str, fractions: dict[str, Any]) -> Any:
    """The value of a fraction word as the pattern found it. The pattern ignores case the way Python's regular
    expressions do, which also folds some letters of other alphabets onto ASCII ones (a long s, a dotless i), so
    a found word that is not a lower-cased entry is matched against each entry the same way."""
    value = fractions.get(found.lower())
    if value is None:
        value = next(v for w, v in fractions.items() if re.fullmatch(re.escape(w), found, re.IGNORECASE))
    return value


@dataclass(frozen=True)
class _Amounts:
    """The percentages and fractions of a text, as ``pattern.finditer`` finds them, faster: the pattern is a figure
    or a fraction word, and Python's regular expressions try both at every character. Here each part finds its own
    next match (the figure part only where a digit is; the fraction part only in a text holding the last word of
    some fraction, "cent", "quarter", "third" ...), and the whole pattern is matched where the earlier of the two
    begins, the figure first on a tie as in the alternation: the same matches (a property test compares them)."""

    pattern: re.Pattern[str]
    figure: re.Pattern[str]
    fraction: re.Pattern[str]
    fraction_tails: tuple[str, ...]
    ascii_words: bool = True  # every fraction word is ASCII (else a folded letter may match without its tail)

    def finditer(self, text: str, low: str) -> Iterator[re.Match[str]]:
        pattern, figure, fraction = self.pattern, self.figure, self.fraction
        # (a text with other characters than ASCII: case-insensitive matching may fold them onto the words)
        fractions = not (text.isascii() and self.ascii_words) or any(tail in low for tail in self.fraction_tails)
        at = 0
        next_figure = figure.search(text)
        next_fraction = fraction.search(text) if fractions else None
        while next_figure is not None or next_fraction is not None:
            if next_fraction is None or (next_figure is not None and next_figure.start() <= next_fraction.start()):
                start = next_figure.start()  # type: ignore[union-attr]
            else:
                start = next_fraction.start()
            m = pattern.match(text, start)
            if m is None:  # pragma: no cover - one of the two parts matches at start
                raise AssertionError("percent pattern parts disagree")
            yield m
            at = m.end()
            if next_figure is not None and next_figure.start() < at:
                next_figure = figure.search(text, at)
            if next_fraction is not None and next_fraction.start() < at:
                next_fraction = fraction.search(text, at)


_PCT_CACHE: dict[int, tuple[_Amounts, re.Pattern[str], re.Pattern[str]]] = {}


def _percentages(text: str, doc: Any, rules: RuleSet, findings: list[Finding], pos: list[tuple[int, int, int]],
                 sent_index: Any) -> None:
    """Attach each percentage or fraction of height to the nearest collapse finding of its sentence."""
    regexes = _PCT_CACHE.get(id(rules))
    if regexes is None:
        regexes = _PCT_CACHE.setdefault(id(rules), _percent_regex(rules))
    regex, before, earlier = regexes
    if not any(f.concept in ("collapse", "height") for f in findings):
        return
    fractions = dict(rules.terms.fractions)
    remaining = rules.terms.percent_remaining
    low = text.lower()
    if "%" not in text and "cent" not in low and not any(w in low for w, _ in rules.terms.fractions):
        return
    for m in regex.finditer(text, low):
        span = doc.char_span(m.start(), m.end(), alignment_mode="expand")
        if span is None:
            continue
        si = sent_index.get(span.start, -1)
        best = None
        # a figure that names the height after it ("one third of its previous height", "75% of its expected height")
        # is the height's, even if a phrase about the body is as near
        names_height = _of_height(tuple(rules.terms.groups.get("height_reference_words", ()))).match(text, m.end()) is not None
        for i, (a, b, s) in enumerate(pos):
            if s != si:
                continue
            d = a - span.end if a >= span.end else (span.start - b if b <= span.start else 0)
            # at the same distance a height or collapse finding wins ("T6 metastasis, reduced to a quarter of its
            # original height")
            key = (d if not (names_height and findings[i].concept == "height" and d <= 10) else -1,
                   findings[i].concept not in ("collapse", "height", "extent"))
            if best is None or key < best[0]:
                best = (key, i)
        if best is None or best[0][0] > 10:
            continue
        f = findings[best[1]]
        if f.concept not in ("collapse", "height", "extent"):
            continue
        if f.concept != "extent" and _EXTENT_AFTER.match(low, m.end()):
            continue  # ">50% body involved", "40% of the body replaced": how much is involved, not height
        if rules.terms.percent_earlier and earlier.search(text, max(0, m.start() - 30), m.start()):
            continue  # "now 55% (previously 30%)": the earlier study's figure is not the height now
        if m.group("frac"):
            a_val = b_val = float(_fraction_value(m.group("frac"), fractions))
        else:
            a_val = float(m.group("a"))
            b_val = float(m.group("b")) if m.group("b") else a_val
        near = " ".join(low[max(0, m.start() - 40):m.end() + 30].split())
        # "reduced to 40%", "height of 40%": 60% lost; but "loss of height of roughly a quarter" is a quarter lost
        left = _remaining_cue(near, " ".join(low[max(0, m.start() - 70):m.start()].split()), remaining,
                              low[m.end():m.end() + 12]) or _height_left_here(text, m.start(), m.end(), rules)
        if left:
            a_val, b_val = 100 - b_val, 100 - a_val
            if f.concept == "height" and f.context in ("negated", "historical") and _measured_height(
                    text, f, m.start(), m.end(), frozenset(rules.terms.groups.get("height_reference_words", ()))):
                # "reduced to one third of its normal height", "height: 70% of normal": "normal" names the reference
                # of a measured height, it does not say the height is normal
                f.context = f.assertion = "present"
        cm = before.search(text, max(0, m.start() - 25), m.start())
        cmp = cm.group("cmp").lower() if cm else ""
        meaning = rules.terms.comparators.get(cmp, "")
        if left:
            meaning = {"above": "below", "below": "above"}.get(meaning, meaning)
        f.qualifiers.setdefault("percent", []).append(
            {"text": text[m.start():m.end()].strip(), "low": min(a_val, b_val), "high": max(a_val, b_val), "comparator": meaning})
        phrase = f.qualifiers.get("phrase") or {"start": f.start, "end": f.end}
        a, b = min(phrase["start"], m.start()), max(phrase["end"], m.end())
        if b - a <= 100:  # the evidence shows the measurement with its words
            f.qualifiers["phrase"] = {"text": text[a:b], "start": a, "end": b}


_EXTENT_AFTER = re.compile(r"\s*(?:of\s+)?(?:the\s+)?(?:vertebral\s+)?(?:body\s+|marrow\s+)?"
                           r"(?:is\s+|was\s+)?(?:involved|involvement|replaced|replacement|infiltrat\w*|occupied)\b")
_LOSS_BEFORE = re.compile(r"(?:loss|lost|losing|reduction|decrease|diminution)\s+(?:in\s+|of\s+)?(?:the\s+)?"
                          r"(?:vertebral\s+|body\s+|anterior\s+|posterior\s+|central\s+)*$")


def _height_left_here(text: str, a: int, b: int, rules: RuleSet) -> bool:
    """Is the figure at a..b the height left, by words right after it ("80% of normal", "one third of its previous
    height") or right before it ("compressed to 30%")? (``height_left_after`` and ``height_left_before``.)"""
    after, before = rules.height_left_patterns
    if after is not None and after.match(text, b):
        # not after a loss word ("height loss amounting to 30% of the normal height")
        return not _LOSS_NEAR.search(" ".join(text[max(0, a - 40):a].lower().split()))
    return before is not None and before.search(text, max(0, a - 60), a) is not None


@functools.lru_cache(maxsize=8)
def _of_height(references: tuple[str, ...]) -> re.Pattern[str]:
    """A figure followed by "of (its) [reference] (vertebral) (body) height" (``height_reference_words``)."""
    from spinemets.reports.rules import trie_alternation

    return re.compile(rf"\s*of\s+(?:(?:its|the)\s+)?(?:(?:{trie_alternation(references)})\s+)?(?:vertebral\s+)?(?:body\s+)?"
                      r"height\b", re.IGNORECASE)


def _measured_height(text: str, f: Finding, a: int, b: int, references: frozenset[str]) -> bool:
    """Is every denial of this height finding a reference word ("normal", "original") just after the figure at
    *a*..*b* ("70% of (its) normal height", "a third of normal"), not a statement that the height is normal?"""
    denials = [c for c in f.cues if c.category in (NEGATED, HISTORICAL)]
    return bool(denials) and all(
        c.text.lower() in references and b <= c.start <= b + 12 and re.fullmatch(
            r"\s*(?:of\s+)?(?:(?:its|the)\s+)?", text[b:c.start], re.IGNORECASE) is not None
        for c in denials)


def _remaining_cue(near: str, before: str, cues: Sequence[str], near_after: str = "") -> bool:
    """Does a cue of height remaining ('reduced to', 'height of') govern the figure (*near* is the figure with a few
    words around it, *before* the words before it), rather than a loss word just before the cue ('loss of height of
    roughly a quarter', 'loss of vertebral body height of 60%')?"""
    for cue in cues:
        if cue not in near:
            continue
        if cue.startswith("height"):
            at = before.rfind(cue)
            if at >= 0 and _LOSS_BEFORE.search(before[:at]):
                continue
        if cue != "reduced to" and (_LOSS_NEAR.search(before[-32:]) or _LOSS_AFTER.match(near_after)):
            continue  # "30% loss of normal height", "height loss of 30% of the adjacent level": a loss
        return True
    return False


# a loss word governing the figure: right after it, or before it with no comma between ("reduced by approx 60%";
# not "with loss of height, now 35% of normal height")
_LOSS_WORD = r"\b(?:loss|lost|losing|reduction|reduced by|decrease|decreased by|collapsed? by)\b"
_LOSS_NEAR = re.compile(_LOSS_WORD + r"(?=[^,;]*$)")
_LOSS_AFTER = re.compile(r"\s*" + _LOSS_WORD)


# --- the index level --------------------------------------------------------------------------------------------


def choose_index_level(findings: list[Finding], rules: RuleSet) -> str | None:
    """The level with the largest weighted count of findings stated present; ties go to the level named first.  A
    cue ("largest", "worst at") adds weight only to a level that has a finding: "degenerative disease, most
    pronounced at L4-5" names no lesion level."""
    weights: dict[str, int] = {}
    first: dict[str, int] = {}
    cues: list[tuple[Finding, int]] = []
    for f in findings:
        if f.context != "present" or not f.levels:
            continue
        row = row_of(f, rules)
        if row is None:
            continue
        if row.concept == "index_cue":
            cues.append((f, row.weight))
            continue
        if not row.counts or any(f.qualifiers.get(k) for k in ("degenerative_context", "cord_context", "fat_context")):
            continue  # degenerative, cord or fat signal points to no lesion level
        for lv in f.levels:
            weights[lv] = weights.get(lv, 0) + row.weight
            first.setdefault(lv, f.start)
    for f, weight in cues:
        for lv in f.levels:
            if lv in weights:
                weights[lv] += weight
    if not weights:
        return None
    # SINS is scored for the neoplastic lesion: a level the report puts down to a benign cause (stated or favoured:
    # "T12 fracture, favoured to be osteoporotic") gives way to a level with a neoplasm stated at it.
    benign, neoplastic, raised = set(), set(), set()
    for f in findings:
        row = row_of(f, rules) if f.levels else None
        if row is None:
            continue
        tumour = rules.neoplastic(row)
        if tumour and f.context == "present":
            neoplastic.update(f.levels)
        if tumour and f.context in ("present", "uncertain"):
            raised.update(f.levels)
        elif tumour is False and row.concept == "diagnosis" and f.context in ("present", "uncertain"):
            benign.update(f.levels)
    # only a level about which nothing neoplastic is said, even as a possibility ("favoured osteoporotic, though a
    # metastasis cannot be excluded" keeps the fracture in question as the index)
    settled = {lv for lv in benign if lv not in raised}
    tumour = [lv for lv in weights if lv in neoplastic and lv not in benign]
    if tumour and any(lv in settled for lv in weights):
        weights = {lv: w for lv, w in weights.items() if lv not in settled}
    return min(weights, key=lambda lv: (-weights[lv], first[lv]))


# --- the entry point ----------------------------------------------------------------------------------------------


def check_text(text: Any, field: str = "text", max_chars: int = MAX_CHARS) -> str:
    """A report's text, or an InvalidInputError naming *field*: not text, empty, too long, or binary."""
    if not isinstance(text, str):
        raise InvalidInputError(field, f"expected the report as text, got {type(text).__name__}")
    if not text.strip():
        raise InvalidInputError(field, "the report is empty")
    if len(text) > max_chars:
        raise InvalidInputError(field, f"the report has {len(text)} characters; the limit is {max_chars} (one report at a time)")
    if "\x00" in text:
        raise InvalidInputError(field, "the report contains NUL characters: give plain text, not a binary file")
    return text


def extract(
    text: str,
    pain: str | None = None,
    kb: KnowledgeBase | None = None,
    *,
    level: str | None = None,
    rules: str | None = None,
    rule_set: RuleSet | None = None,
    every_level: bool = False,
) -> ExtractResult:
    """Findings of one spine report and the SINS, ESCC, fracture and marrow inputs they pre-fill.

    ``pain`` (mechanical / occasional / none) is the clinical SINS component, never read from the report.
    ``level`` chooses the index level instead of the most affected one.  ``rules`` is a site's extra rules
    file (default ``$SPINEMETS_REPORT_RULES``).  ``every_level`` also pre-fills each other level the report states a
    finding at (``level_prefills``), as if it were the index level but from the findings that name that level only
    (a finding that names no level belongs to the index lesion or to the whole study, and pre-fills no other level).  Raises InvalidInputError for an empty or too long
    text, a bad level or pain value, or a bad rules file.
    """
    from spinemets.reports.pipeline import get_pipeline

    text = check_text(text)
    kb = kb or load_kb()
    rs = rule_set or load_rules(kb, rules)
    return read_text(text, get_pipeline(rs), rs, kb, pain=pain, level=level, every_level=every_level)


def read_text(text: str, pipe: Any, rs: RuleSet, kb: KnowledgeBase, *, pain: str | None = None,
              level: str | None = None, every_level: bool = False) -> ExtractResult:
    """The result for a checked *text* read by *pipe* (shared by :func:`extract` and the batch runner); the document
    is released once read, so that its memory is freed at once (see ``pipeline.release``)."""
    from spinemets.reports.pipeline import release

    doc = pipe(text)
    try:
        return build_result(text, doc, rs, kb, pain=pain, level=level, every_level=every_level)
    finally:
        release(doc)


_ADDENDUM = re.compile(r"(?im)(?:^|[.;]\s+)\s*(?:addendum|amendment|amended report|report amended|correction|"
                       r"corrected report|erratum)\b")
_CORRECTING = re.compile(r"\b(?:incorrect\w*|correct(?:ed|ion)|revised|should read|amended|erroneous\w*|in error|"
                         r"rather than|instead)\b|,\s*not\s+(?!previously|already|mentioned|reported|described|seen|noted)",
                         re.IGNORECASE)  # ("sclerotic, not lytic"; not "also at T4, not previously mentioned")
_GRADE_TOPIC = re.compile(r"\b(?:grade|escc|bilsky)\b", re.IGNORECASE)
# findings that an addendum's correction of one of them replaces
_TOPICS = {"collapse": "collapse", "height": "collapse", "lesion": "lesion", "posterior": "posterior",
           "alignment": "alignment", "malalignment": "alignment", "epidural": "canal", "thecal_sac": "canal",
           "cord": "canal", "csf": "canal", "canal": "canal", "escc_grade": "grade"}


def _corrected_by_addendum(text: str, findings: list[Finding]) -> None:
    """An addendum that corrects the report ("ADDENDUM: the collapse was incorrectly reported; it is 30%, not 60%",
    "Grade revised to 3", "Report amended: the lesion is sclerotic, not lytic") replaces what the report said before it
    on the same topic: those earlier findings become history, and the addendum's own words decide (or nothing does,
    when it names the topic without a value the reader can take)."""
    low = text.lower()
    if not any(w in low for w in ("addend", "amend", "correct", "errat")):
        return  # (most reports: no addendum)
    m = _ADDENDUM.search(text)
    if m is None:
        return
    addendum = text[m.end():]
    if not _CORRECTING.search(addendum):
        return  # an addendum that adds ("ADDENDUM: biopsy confirms metastasis") replaces nothing
    # only the topics of the addendum's sentences that correct ("the collapse was incorrectly reported", "grade
    # revised to 3"), not those it adds to
    topics: set[str] = set()
    for f in findings:
        if f.start >= m.end() and f.concept in _TOPICS:
            a, b = _sentence_bounds(text, f.start, f.end)
            if _CORRECTING.search(text, max(a, m.start()), b):
                topics.add(_TOPICS[f.concept])
    for g in _GRADE_TOPIC.finditer(addendum):
        a, b = _sentence_bounds(text, m.end() + g.start(), m.end() + g.end())
        if _CORRECTING.search(text, max(a, m.start()), b):
            topics.add("grade")
    for f in findings:
        if f.start < m.start() and _TOPICS.get(f.concept) in topics:
            f.context = f.assertion = "historical"
            f.qualifiers["corrected_by_addendum"] = True


def _assert_for(findings: list[Finding], base: list[tuple[str, bool]], index: str | None) -> None:
    """Each finding's assertion once *index* is the index level: about another level when it names levels and not
    this one, or when it is about the other lesions; else its own (from ConText and the addendum)."""
    for f, (own, other_lesions) in zip(findings, base, strict=True):
        if f.levels and index is not None and index not in f.levels:
            f.assertion = "other_level"
        elif other_lesions and f.concept != "other_lesions":
            f.assertion = "other_level"
        else:
            f.assertion = own  # type: ignore[assignment]


def _benign_at(findings: list[Finding], level: str, rs: RuleSet) -> str | None:
    """The benign diagnosis the report states at *level* (a haemangioma, an osteoporotic fracture), when no neoplastic
    one is stated or raised there; else None.  A diagnosis stated for another level does not count here."""
    benign, neoplastic = None, False
    for f in findings:
        if level not in f.levels or f.context not in ("present", "uncertain"):
            continue
        row = row_of(f, rs)
        if row is None or row.concept != "diagnosis":
            continue
        flag = rs.neoplastic(row)
        if flag:
            neoplastic = True
        elif flag is False and f.context == "present":
            benign = str(row.value).replace("_", " ")
    return None if neoplastic else benign


def _without_scores(pre: Prefill, why: str) -> Prefill:
    """*pre* with SINS and ESCC not pre-filled, saying why."""
    return pre.model_copy(update={
        "applies": {**pre.applies, "sins": False, "escc": False},
        "why_not": {**pre.why_not, "sins": why, "escc": why},
        "sins": {}, "escc": {}, "escc_grade": None, "escc_possible_grades": [],
        "inputs": {k: v for k, v in pre.inputs.items() if k not in ("sins", "escc")},
    })


def build_result(text: str, doc: Any, rs: RuleSet, kb: KnowledgeBase, *, pain: str | None = None,
                 level: str | None = None, every_level: bool = False) -> ExtractResult:
    """The result for a document the pipeline made of *text* (see :func:`read_text`)."""
    from spinemets.levels import parse_level
    from spinemets.reports.prefill import prefill

    chosen = None
    if level is not None and str(level).strip():
        chosen = parse_level(str(level), field="level")
    sections = find_sections(text, rs)
    findings = read_report(text, rs, doc, sections)
    _corrected_by_addendum(text, findings)
    index = chosen or choose_index_level(findings, rs)
    base = [(f.assertion, bool(f.qualifiers.get("about_other_lesions"))) for f in findings]
    _assert_for(findings, base, index)
    for f in findings:  # the mark is spent once the finding is not about another level anyway (what it was for)
        if not (f.levels and index is not None and index not in f.levels):
            f.qualifiers.pop("about_other_lesions", None)
    cite = Citer(kb)
    refs: dict[tuple[str, ...], list[int]] = {}
    for f in findings:
        if f.sources:
            key = tuple(f.sources)
            if key not in refs:
                refs[key] = cite.cite_sources(f.sources)
            f.refs = refs[key]
    pre, components, missing, notices = prefill(findings, index, rs, kb, cite, pain=pain)
    if rs.files:
        notices.append(cite.notice(
            "site_rules", f"Site rules were used ({', '.join(rs.files)}); findings labelled site:ID come from them, "
            "not from the reviewed knowledge base."))

    present_levels = sorted({lv for f in findings if f.context == "present" and _counts(f, rs)
                             and not f.qualifiers.get("degenerative_context") and not f.qualifiers.get("cord_context")
                             and not f.qualifiers.get("fat_context")
                             for lv in f.levels}
                            | {lv for f in findings if f.context == "present" for lv in f.qualifiers.get("levels_named", ())},
                            key=INDEX.__getitem__)
    level_prefills: list[LevelPrefill] = []
    if every_level:
        for other in present_levels:
            if other == index:
                continue
            _assert_for(findings, base, other)
            for f in findings:  # a finding that names no level is the index lesion's (or the whole study's): it
                if not f.levels and f.assertion in ("present", "negated"):  # pre-fills no other level
                    f.assertion = "other_level"
            other_pre = prefill(findings, other, rs, kb, Citer(kb), pain=pain)[0]
            other_pre = other_pre.model_copy(update={"why_not": {
                k: v.replace("the index level", other) for k, v in other_pre.why_not.items()}})
            benign = _benign_at(findings, other, rs)
            if benign is not None:
                other_pre = _without_scores(other_pre, f"the report's diagnosis at {other} is benign ({benign})")
            level_prefills.append(trusted(LevelPrefill, None, level=other, prefill=other_pre))
        _assert_for(findings, base, index)
    regions = sorted({REGION_NAMES[lv[0]] for lv in present_levels}, key=["cervical", "thoracic", "lumbar", "sacral"].index)
    dx_present, dx_uncertain, dx_negated = _diagnoses(findings, rs)
    imp = [s for s in sections if s.role == "impression"]
    impression = None
    if imp:
        a = imp[0].content_start
        b = imp[-1].end
        body = text[a:b].strip()
        if body:
            a = text.index(body, a)
            impression = Impression(text=body, start=a, end=a + len(body))

    n_present = sum(1 for f in findings if f.context == "present")
    filled = [c for c in components if c.value is not None]
    summary = (f"{len(findings)} findings ({n_present} stated present)"
               + (f"; index level {index}" if index else "; no lesion level found")
               + (f"; {len(filled)} values pre-filled" if filled else "; nothing to pre-fill"))
    status = "complete" if findings else "insufficient_data"
    if not findings:
        summary = "no spine finding recognised in the report"
    return ExtractResult(
        status=status, summary=summary, components=components, missing=missing, notices=notices,
        characters=len(text), levels=present_levels, index_level=index, index_level_given=chosen is not None,
        regions=regions, diagnoses=dx_present, uncertain_diagnoses=dx_uncertain, negated_diagnoses=dx_negated,
        impression=impression, findings=findings, prefill=pre, level_prefills=level_prefills,
        rules_files=list(rs.files), **cite.common(),  # type: ignore[arg-type]
    )


def row_of(f: Finding, rs: RuleSet) -> TargetRow | None:
    """The rule row behind a finding."""
    private = f.__pydantic_private__
    row = private.get("_row") if private else None
    if row is not None:
        return row  # type: ignore[no-any-return]
    rid = f.rule[5:] if f.rule.startswith("site:") else f.rule.split(".", 1)[-1]
    return rs.targets.get(rid)


def _counts(f: Finding, rs: RuleSet) -> bool:
    row = row_of(f, rs)
    return bool(row and row.counts)


def _diagnoses(findings: list[Finding], rs: RuleSet) -> tuple[list[str], list[str], list[str]]:
    out: dict[str, list[str]] = {"present": [], "uncertain": [], "negated": []}
    for f in findings:
        row = row_of(f, rs)
        if row is None:
            continue
        dx = row.value if row.concept == "diagnosis" else row.diagnosis
        if not dx or f.context not in out:
            continue
        if dx not in out[f.context]:
            out[f.context].append(dx)
    present = out["present"]
    return present, [d for d in out["uncertain"] if d not in present], [d for d in out["negated"] if d not in present]


__all__ = ["ExtractResult", "Finding", "Prefill", "Prefilled", "Evidence", "Cue", "Impression", "extract", "build_result", "read_text",
           "check_text", "MAX_CHARS"]
