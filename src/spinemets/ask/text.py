"""Text handling for ask: normalisation, word tokens, phrase matching, negation, instruction-like text.

This module knows English, not medicine: which words are function words,
which words negate, what an instruction to a chatbot looks like.  The
clinical vocabulary (synonyms, phrases that set inputs) lives in the
knowledge base.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

_DASHES = dict.fromkeys(map(ord, "\u2010\u2011\u2012\u2013\u2014\u2015\u2212"), "-")
_QUOTES = dict.fromkeys(map(ord, "\u2018\u2019\u201b\u2032"), "'") | dict.fromkeys(map(ord, "\u201c\u201d\u201f"), '"')
_TOKEN = re.compile(r"[a-z0-9]+\+?")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

# Words that carry no topic: function words and the frame of a clinical question.
STOPWORDS = frozenset(
    """
    a about above after again against all also am an and any are aren as at be because been before being below
    between both but by can cannot could did do does doing don down during each either else ever every few for from
    further get gets getting give given gives go goes going got had has have having he her here hers herself him
    himself his how however i if in into is isn it its itself just let like ll may me might mine more most much must
    my myself neither nor now of off on once one only or other otherwise our ours ourselves out over own per please
    quite rather re really s same shall she should so some such than that the their theirs them themselves then there
    these they this those though through thus to too under until up upon us ve very via was wasn we were weren what
    whatever when whenever where whereas whether which while who whom whose why will with within would yes yet you
    your yours yourself yourselves
    hasn haven hadn doesn didn wasn weren won wouldn shouldn couldn mightn mustn needn shan ain
    tell know known show shows shown explain describe define definition meaning mean means means say says said
    want wants wanted think use used using uses help helps useful best good better right correct
    ok okay thanks thank hi hello dear question questions answer answers ask asking regarding regards re concerning
    patient patients pt pts person people someone somebody woman women man men lady gentleman female male girl boy
    year years yr yrs old aged age yo y o mrs mr
    doctor doctors clinician clinicians physician colleague team
    should would recommend recommended recommendation recommendations suggest suggested advise advised guidance
    guideline guidelines order ordering request requested get obtain perform performed do done
    case cases scenario situation setting context
    look looking looks see seeing check checking wondering wonder stand stands
    proportion proportions percentage percentages fraction share often frequently usually typically much many
    new now currently today recently recent
    thing things way ways kind type types something anything everything
    """.split()
)

NEGATORS = frozenset({"no", "not", "without", "denies", "denied", "deny", "never", "absent", "negative", "free", "nor",
                      "non", "none", "lacks", "lacking"})
# Words that end the reach of a negation ("no fever but weight loss").
NEGATION_BREAKS = frozenset({"but", "with", "has", "have", "having", "had", "and", "although", "though", "yet",
                             "however", "who", "which", "that", "presents", "presenting", "reports", "complains"})
NEGATION_WINDOW = 4
# A receptor status ("HER2-negative", "ER negative", "triple-negative") describes the cancer; it negates nothing.
RECEPTOR_WORDS = frozenset({"her2", "her", "2", "er", "pr", "pgr", "oestrogen", "estrogen", "progesterone",
                            "receptor", "receptors", "hormone", "triple", "egfr", "alk", "kras", "braf", "psma", "brca"})

# Follow-up cues: a question that refines the previous turn.
FOLLOW_UP_START = re.compile(r"^\s*(and|also|but|what if|what about|how about|if|now|plus|suppose|then|same)\b", re.I)
PRONOUNS = frozenset({"she", "he", "her", "him", "his", "hers", "they", "them", "their"})
PATIENT_WORDS = frozenset({"patient", "pt", "woman", "man", "lady", "gentleman", "female", "male", "girl", "boy",
                           "survivor", "she", "he", "her", "his", "mrs", "mr", "yo", "husband", "wife", "mother",
                           "father", "son", "daughter", "client", "schoolgirl", "schoolboy", "child", "teenager",
                           "adolescent", "toddler", "infant"})
_AGE = re.compile(
    r"\b(\d{1,3})\s*(?:-|\s)?\s*(?:year|yr)s?\s*(?:-|\s)?\s*old\b|\b(\d{1,3})\s*(?:yo|y/o|y\.o\.|yrs?)\b"
    r"|\baged?\s+(\d{1,3})\b|\b(\d{1,3})\s*(?:f|m)\b(?=[\s,.;:]|$)"
    # "I am 70", "my son is 12", "she is 45" (not "28 weeks", "5 cm", "2 days"), "my daughter (9)"
    r"|\b(?:i am|i'm|(?:son|daughter|boy|girl|child|kid|he|she)\s+is)\s+(\d{1,3})\b"
    r"(?!\s*(?:-\s*)?(?:weeks?|wks?|months?|mos?|days?|hours?|hrs?|%|percent|mm|cm|kg|mg|points?|/|\.\d))"
    r"|\b(?:son|daughter|boy|girl|child|kid)\s*\((\d{1,3})\)",
    re.I,
)

# Text that tries to instruct the system instead of asking about the knowledge base.
_INSTRUCTION = re.compile(
    r"\b(ignore|disregard|forget|override|bypass)\b.{0,40}\b(instruction|instructions|prompt|rules|previous|above|"
    r"earlier|prior|everything|guidelines|context|system|sources|evidence|knowledge base|safety|restrictions|"
    r"filters|policy|policies|references)\b"
    r"|\byou are (now|no longer|an?|the)\b|\bact as\b|\bpretend( to be| you)?\b|\brole[- ]?play\b|\bjailbreak\b"
    r"|\bsystem prompt\b|\bdeveloper mode\b|\bdo anything now\b|\bnew (instructions|rules|persona)\b"
    r"|\b(write|compose|draft|generate|create)\b.{0,20}\b(poem|story|essay|song|joke|code|script|email|letter|"
    r"haiku|limerick|sonnet|summary of yourself|program|function|python|javascript|sql|regex|spreadsheet formula)\b"
    r"|\b(in|using) (python|javascript|java|sql|r code|excel)\b|\bdecode (this|the following)\b"
    r"|\b(print|reveal|show|repeat|output)\b.{0,20}\b(your|the) (instructions|prompt|system|configuration|rules)\b"
    r"|\b(paste|dump|print|reveal|output|export|copy|show)\b.{0,40}\b(knowledge base|configuration|config|source code|"
    r"files|database|your prompt|your instructions)\b"
    r"|\b(from now on|respond only|answer only with|always answer|only say|say that|just say|just tell me)\b"
    r"|\b(api keys?|(api|access|auth|bearer) tokens?|secret keys?|passwords?|credentials|environment variables|"
    r"file ?names|you were configured with|your configuration)\b",
    re.I,
)


def normalise(text: str) -> str:
    """Unicode-normalised, lower-case text with ASCII dashes and quotes and no control characters."""
    text = unicodedata.normalize("NFKC", text).translate(_DASHES).translate(_QUOTES)
    text = _CONTROL.sub(" ", text)
    return text.lower()


def _strip_accents(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def tokens(text: str) -> list[str]:
    """Word tokens of normalised text: letters and digits; a trailing '+' is kept (HER2+, LR+)."""
    return _TOKEN.findall(_strip_accents(normalise(text)))


def token_spans(text: str) -> tuple[str, list[tuple[int, int]]]:
    """The normalised text and the character span of each of its tokens (to quote the words a phrase matched)."""
    prepared = _strip_accents(normalise(text))
    return prepared, [m.span() for m in _TOKEN.finditer(prepared)]


def quote(prepared: str, spans: Sequence[tuple[int, int]], start: int, end: int) -> str:
    """The words of tokens start..end as written (e.g. 'h/o', '>50%' stays as typed)."""
    if not spans or start >= end:
        return ""
    return prepared[spans[start][0]:spans[end - 1][1]]


_CLAUSE = re.compile(r"[,;.:!?()\[\]/]|\s[-\u2013\u2014]+\s")


def clause_starts(text: str) -> set[int]:
    """Token indices that begin a new clause (after a comma, full stop, dash, bracket ...)."""
    starts: set[int] = set()
    count = 0
    for part in _CLAUSE.split(text):
        starts.add(count)
        count += len(tokens(part))
    return starts


def singular(token: str) -> str:
    """A light plural folding used only for phrase matching (both sides folded alike)."""
    if len(token) > 4 and token.endswith("s") and not token.endswith(("ss", "is", "us", "ous")):
        return token[:-1]
    return token


def key(words: Iterable[str]) -> tuple[str, ...]:
    return tuple(singular(w) for w in words)


@dataclass(frozen=True)
class Match:
    start: int  # token index
    end: int  # exclusive
    phrase: str  # the words of the question that matched
    target: str  # what the phrase stands for (a synonym group or a phrase row)
    negated: bool = False


class PhraseMatcher:
    """Longest-match, non-overlapping phrase finder over word tokens."""

    def __init__(self, phrases: Iterable[tuple[str, str]]) -> None:
        self._index: dict[tuple[str, ...], str] = {}
        self.max_len = 1
        for phrase, target in phrases:
            k = key(tokens(phrase))
            if not k:
                continue
            self._index.setdefault(k, target)
            self.max_len = max(self.max_len, len(k))

    def __contains__(self, phrase: str) -> bool:
        return key(tokens(phrase)) in self._index

    def find(self, words: Sequence[str]) -> list[Match]:
        folded = [singular(w) for w in words]
        out: list[Match] = []
        i = 0
        n = len(words)
        while i < n:
            for length in range(min(self.max_len, n - i), 0, -1):
                target = self._index.get(tuple(folded[i:i + length]))
                if target is not None:
                    out.append(Match(i, i + length, " ".join(words[i:i + length]), target))
                    i += length
                    break
            else:
                i += 1
        return out


def negated(words: Sequence[str], start: int, breaks: set[int] | frozenset[int] = frozenset()) -> bool:
    """Is the phrase starting at token *start* negated by a word shortly before it (in the same clause)?"""
    for j in range(start - 1, max(-1, start - 1 - NEGATION_WINDOW), -1):
        if j + 1 in breaks:
            return False
        w = words[j]
        if w in NEGATION_BREAKS:
            return False
        if w in NEGATORS:
            if w in ("negative", "non") and j > 0 and words[j - 1] in RECEPTOR_WORDS:
                return False  # "HER2-negative breast cancer" is a breast cancer
            return True
    return False


# Words after a finding that deny it ("myeloma excluded", "compression ruled out", "deficit absent"); "negative"
# is left out: after a test it is the test's result ("bone scan negative"), read with the test.
POST_NEGATORS = frozenset({"excluded", "absent"})


def post_negated(words: Sequence[str], end: int) -> bool:
    """Is the phrase ending before token *end* denied by the words right after it ("myeloma excluded",
    "cord compression ruled out", "cauda equina syndrome was excluded")?"""
    after = list(words[end:end + 5])
    if after[:1] in (["was"], ["is"], ["has"], ["been"]):
        after = after[1:] if after[:2] != ["has", "been"] else after[2:]
    if after[:1] == ["been"]:
        after = after[1:]
    return bool(after) and (after[0] in POST_NEGATORS or after[:2] == ["ruled", "out"])


def instruction_like(text: str) -> bool:
    """Does the text try to give the system instructions (prompt injection, role play, tasks)?"""
    return bool(_INSTRUCTION.search(normalise(text)))


def age_in(text: str) -> tuple[int, str] | None:
    """(age, the words that gave it) from '62-year-old', '62 yo', 'aged 62', '62F'."""
    m = _AGE.search(text)
    if not m:
        return None
    value = next(g for g in m.groups() if g is not None)
    return int(value), m.group(0).strip()


def mentions_patient(text: str, words: Sequence[str]) -> bool:
    return bool(PATIENT_WORDS.intersection(words)) or age_in(text) is not None


def is_follow_up(text: str, words: Sequence[str]) -> bool:
    return bool(FOLLOW_UP_START.match(text)) or bool(PRONOUNS.intersection(words))
