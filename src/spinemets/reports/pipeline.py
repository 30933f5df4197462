"""The NLP pipeline: a target matcher and medspaCy's ConText on ``spacy.blank("en")``.

No spaCy model is downloaded.  The text is tokenised by the blank English tokenizer after
:func:`~spinemets.reports.rules.normalise_text` (hyphens inside words read as spaces; offsets unchanged).
Then, in order:

1. ``mark`` sets sentence starts (full stops, question marks, semicolons and line breaks; not after the
   abbreviations of report_terms) and gives every vertebral-level token the norm that ``{level}`` matches;
2. the target matcher finds the phrases of report_targets (on the spelling-normalised norm) as medspaCy's
   ``TargetMatcher`` would, from a trie of the phrases' norms built without a document per phrase;
3. a first ``ConText`` pass applies the assertion modifiers (negation, uncertainty, history, hypothetical);
4. a second ``ConText`` pass applies the qualifiers (side, degree, state, subject), so that a word may be both
   (medspaCy keeps one rule per matched span within a pass).

Every phrase is matched as a literal (the trie for targets, spaCy's PhraseMatcher for ConText), which is much
faster than token patterns.
The pipeline is built once per rule set and cached.
"""

from __future__ import annotations

import contextlib
import functools
import operator
import re
import sys
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from spinemets.levels import INDEX, ORDER, parse_level
from spinemets.reports.rules import LEVEL_NORM, RuleSet, normalise_text

FINDINGS_GROUP = "spinemets_findings"
QUALIFIED_GROUP = "spinemets_qualified"
SEQUENCE_WORDS = frozenset({"t1", "t2", "stir", "flair", "dwi", "adc", "t1w", "t2w", "t1wi", "t2wi", "t2*", "pd"})
# "T12", and in dictation "T 12", "L-5" (a space or hyphen only after a capital letter)
_LEVEL = re.compile(r"(?<![A-Za-z0-9])(Th|TH|th|C|c|T|t|L|l|S|s|D)(?:(?<=[CTLSD])[-\u2013 ])?(\d{1,2})(?![0-9A-Za-z])")
_RANGE_TAIL = re.compile(r"\s*(?:-|\u2013|\u2014|/|to|through|thru)\s*(\d{1,2})(?![0-9A-Za-z/])")
_WORD = re.compile(r"[A-Za-z0-9*']+|[^\sA-Za-z0-9]")
_lock = threading.Lock()
# White-space chunks remembered per pipeline for the tokenizer's cache. Each costs about 300 bytes with what spaCy then
# caches for it (measured by review over 11,000 reports of new words), so about 30 MB per pipeline at most.
CHUNK_MEMORY = 100_000


@dataclass(frozen=True)
class LevelMention:
    """Vertebral levels named at one place of the text (a level, a range, a list or a disc level)."""

    start: int
    end: int
    levels: tuple[str, ...]
    text: str


# spaCy keeps the value of a span's extension attribute (``span._.name``) in ``doc.user_data`` under this key with
# the span's start and end characters; reading or writing it there is what ``span._`` does for an attribute with a
# default and no getter, setter or method, without building an ``Underscore`` object per access (the pipeline
# checks at start that the attributes it touches this way are such attributes).
EXTENSION_KEY = "._."
DIRECT_EXTENSIONS = ("modifiers", "target_rule", "is_negated", "is_uncertain", "is_historical", "is_hypothetical",
                     "is_family")


def span_extension(doc: Any, span: Any, name: str, default: Any = None) -> Any:
    """``span._.<name>`` (one of DIRECT_EXTENSIONS; *default* is the attribute's default) read where spaCy keeps it."""
    return doc.user_data.get((EXTENSION_KEY, name, span.start_char, span.end_char), default)


TEXT_KEY = "spinemets_text"


def doc_text(doc: Any) -> str:
    """``doc.text``, kept when the pipeline made the document."""
    text = doc.user_data.get(TEXT_KEY)
    return text if text is not None else doc.text


def release(doc: Any) -> None:
    """Drop what the pipeline keeps in *doc*'s user data once the document has been read: ConText's graph and
    modifiers and the span attributes hold the document in reference cycles (a modifier keeps its target spans, a
    span its document), which only the garbage collector frees, so each report's tokens, spans and modifiers stayed
    in memory until a collection came. Released, they are freed at once and their memory is reused by the next
    report. The document's tokens and span groups stay readable; its ConText attributes do not."""
    doc.user_data.clear()


def bracket_tokens(doc: Any) -> dict[int, str]:
    """The tokens of *doc* that are a round bracket, "(" or ")", by index: the brackets of the text that are a token
    of their own (a character span of exactly one token)."""
    out: dict[int, str] = {}
    text = doc_text(doc)
    for char in ("(", ")"):
        at = text.find(char)
        while at != -1:
            span = doc.char_span(at, at + 1)
            if span is not None:
                out[span.start] = char
            at = text.find(char, at + 1)
    return out


def _check_direct_extensions() -> None:
    from spacy.tokens import Span
    from spacy.tokens.underscore import Underscore

    probe = Underscore(Underscore.span_extensions, _Probe(), start=1, end=2)
    for name in DIRECT_EXTENSIONS:
        ext = Span.get_extension(name)
        if ext is None or ext[1:] != (None, None, None) or probe._get_key(name) != (EXTENSION_KEY, name, 1, 2):
            raise RuntimeError(f"spaCy keeps the span attribute {name!r} otherwise than this pipeline reads it")


class _Probe:
    doc = None


# medspaCy pairs a token-pattern Matcher with its PhraseMatcher; every rule here is a literal phrase, so that
# Matcher would be empty and spaCy would warn (W036) on every document. One pattern that cannot match (report
# text never holds a NUL character: check_text rejects it) keeps it quiet.
NEVER = [{"ORTH": "\x00"}]


def _silence_logging() -> None:
    try:  # PyRuSH and friends log DEBUG lines through loguru when imported
        from loguru import logger

        for name in ("PyRuSH", "medspacy", "quickumls"):
            logger.disable(name)
    except ImportError:  # pragma: no cover - loguru comes with medspaCy
        pass


# --- levels ---------------------------------------------------------------------------------------------


def _words_before(text: str, start: int, n: int = 2) -> list[str]:
    return [w.lower() for w in _WORD.findall(text[max(0, start - 40):start])][-n:]


def _words_after(text: str, end: int, n: int = 2) -> list[str]:
    return [w.lower() for w in _WORD.findall(text[end:end + 40])][:n]


@functools.lru_cache(maxsize=512)
def _level(name: str) -> str | None:
    try:
        return parse_level(name)
    except Exception:  # not a level (T13, L6, C8 ...)
        return None


# only a measurement or a size word: an aside that says what the level has ("T4 (lytic)", "T9 (cord compressed)",
# "T4 (typical)") belongs to that level alone, and the list ends there
_ASIDE = re.compile(r"^\s*\(\s*(?:(?:about|approx\.?|approximately|~|c\.?)\s*)?\d+(?:\.\d+)?\s*(?:mm|cm|%)"
                    r"(?:\s*(?:x|by|\u00d7)\s*\d+(?:\.\d+)?\s*(?:mm|cm)?)*\s*\)|^\s*\(\s*(?:largest|dominant|biggest)\s*\)",
                    re.IGNORECASE)


def find_levels(text: str, rules: RuleSet) -> list[LevelMention]:
    """Every level mention of *text*: single levels, ranges (T10-L2, T11-12), disc levels (L4/5) and lists."""
    terms = rules.terms
    singles: list[tuple[int, int, str, bool]] = []  # start, end, level, ambiguous (T1/T2: maybe a sequence)
    for m in _LEVEL.finditer(text):
        prefix = m.group(1)
        if prefix == "th":
            continue
        level = _level(prefix + m.group(2))
        if level is None:
            continue
        singles.append((m.start(), m.end(), level, level in ("T1", "T2")))
    # Join ranges and lists.
    groups: list[tuple[int, int, list[str], list[bool]]] = []
    i = 0
    while i < len(singles):
        start, end, level, amb = singles[i]
        levels, ambiguous = [level], [amb]
        tail = _RANGE_TAIL.match(text, end)
        if tail and (i + 1 >= len(singles) or singles[i + 1][0] > tail.start(1)):
            last = _level(level[0] + tail.group(1))
            if last is not None and INDEX[last] > INDEX[level]:
                levels = list(ORDER[INDEX[level]:INDEX[last] + 1])
                ambiguous = [False] * len(levels)
                end = tail.end()
        j = i + 1
        while j < len(singles):
            # a short aside after a listed level ("T4 (6 mm), T9 (9 mm) and L1 (7 mm)") does not end the list
            between = _ASIDE.sub("", text[end:singles[j][0]], count=1).strip().lower()
            if between in ("-", "\u2013", "\u2014", "to", "through", "thru") and "(" in text[end:singles[j][0]]:
                break  # a range is never written across an aside
            if between in ("-", "\u2013", "\u2014", "to", "through", "thru"):
                a, b = INDEX[levels[-1]], INDEX[singles[j][2]]
                if b > a:
                    levels += list(ORDER[a + 1:b + 1])
                    ambiguous = [False] * len(levels)
                else:
                    levels.append(singles[j][2])
                    ambiguous.append(singles[j][3])
            elif between in ("/", ",", "and", "&", "or", ", and", "and at", ", at", "and in", ", and at"):
                levels.append(singles[j][2])
                ambiguous.append(singles[j][3])
            else:
                break
            end = singles[j][1]
            j += 1
        groups.append((start, end, levels, ambiguous))
        i = j
    # A level said to be spared ("T5-T8 (T7 spared)") leaves the ranges named elsewhere.
    spared = set()
    following = [_words_after(text, end, 3) for _, end, _, _ in groups]
    first_words = {w.split()[0] for w in terms.spared_words}
    for (start, end, levels, _), after in zip(groups, following):
        if len(levels) == 1 and after and after[0] in first_words:
            words = " ".join(after)
            if any(words == w or words.startswith(w + " ") for w in terms.spared_words):
                spared.add(levels[0])
    out: list[LevelMention] = []
    for (start, end, levels, ambiguous), after in zip(groups, following):
        if spared and len(levels) > 1:
            kept = [lv for lv in levels if lv not in spared]
            ambiguous = [a for lv, a in zip(levels, ambiguous) if lv not in spared]
            levels = kept or levels
        after = after[:2]
        if after and (after[0] in terms.level_exclusions or " ".join(after) in terms.level_exclusions):
            continue
        if all(ambiguous) and _is_sequence(text, start, end, terms):
            continue
        if len(levels) > 1 and ambiguous[-1] and _sequence_follows(text, end, terms):
            # "metastasis at T9, T2 hyperintense": the list's last T1/T2 is the sequence its signal word follows
            levels, ambiguous = levels[:-1], ambiguous[:-1]
        out.append(LevelMention(start, end, tuple(dict.fromkeys(levels)), text[start:end]))
    return out


def _sequence_follows(text: str, end: int, terms: Any) -> bool:
    """A weighting or signal word right after the span, on the same line ("T2 hyperintense", "T1 weighted")."""
    line_end = text.find("\n", end)
    after = _words_after(text[:line_end] if line_end >= 0 else text, end, 2)
    if after and after[0] == "-" and len(after) > 1:
        after = after[1:]
    return bool(after) and after[0] in terms.sequence_after_list


def _is_sequence(text: str, start: int, end: int, terms: Any) -> bool:
    """T1 / T2 read as an MRI sequence: a sequence word beside it, or joined to another sequence name."""
    after = _words_after(text, end, 3)
    before = _words_before(text, start, 2)
    if after and after[0] in ("-", ":") and len(after) > 1:  # "T1 - low", "T1: hypointense" (a template line)
        after = after[1:]
    if after and (after[0] in terms.sequence_after or after[0] in SEQUENCE_WORDS):
        return True
    if before and (before[-1] in terms.sequence_before or before[-1] in SEQUENCE_WORDS):
        return True
    joined = after[:2] + before[-2:]
    return any(w in SEQUENCE_WORDS for w in joined) and any(w in ("and", "or", "/", ",") for w in joined)


# --- the pipeline ---------------------------------------------------------------------------------------


@contextlib.contextmanager
def _light_imports() -> Iterator[None]:
    """Import spaCy and the two medspaCy components we use without what they would drag in and we never use.

    medspaCy's package ``__init__`` loads every component (QuickUMLS, nltk, scikit-learn, PyRuSH) and spaCy's
    thinc imports torch when it is installed: together 2-3 s and about 300 MB before the first report.  While
    importing, torch is hidden (thinc then runs without it; torch imports normally afterwards), QuickUMLS is a
    stub (medspaCy's util module names it but only its loader uses it), and the medspaCy package is entered
    without its ``__init__``; the span extensions that ``__init__`` would register are registered here.
    """
    import importlib.util
    import types

    added: list[str] = []
    if "torch" not in sys.modules:
        sys.modules["torch"] = None  # type: ignore[assignment]
        added.append("torch")
    if "quickumls" not in sys.modules:
        stub = types.ModuleType("quickumls")
        stub.spacy_component = types.ModuleType("quickumls.spacy_component")  # type: ignore[attr-defined]
        sys.modules["quickumls"] = stub
        added.append("quickumls")
    if "medspacy" not in sys.modules:
        spec = importlib.util.find_spec("medspacy")
        if spec is not None and spec.submodule_search_locations:
            package = types.ModuleType("medspacy")
            package.__path__ = list(spec.submodule_search_locations)
            package.__spec__ = spec
            sys.modules["medspacy"] = package
    try:
        yield
        from medspacy._extensions import set_extensions

        set_extensions()
    finally:
        for name in added:
            sys.modules.pop(name, None)


class ReportPipeline:
    """medspaCy target matching and ConText over a blank English spaCy pipeline, for one rule set."""

    def __init__(self, rules: RuleSet) -> None:
        _silence_logging()
        with _light_imports():
            import spacy
            from medspacy.context import ConText, ConTextRule
            from medspacy.target_matcher import TargetRule
            from spacy.tokens import Doc

        if not Doc.has_extension("assertion_graph"):
            Doc.set_extension("assertion_graph", default=None)
        self.rules = rules
        self.nlp = spacy.blank("en")
        vocab = self.nlp.vocab
        # Each of the ~30,000 phrase tokens becomes a lexeme, and spaCy computes every lexical attribute of each
        # (word shape, prefix, suffix, URL and e-mail tests, ...). Only these are read here or by ConText; dropping
        # the rest makes the first extraction faster with byte-identical results (bench/extract_scale_bench.py).
        from spacy.attrs import IDS
        keep = {IDS[a] for a in ("LANG", "LOWER", "NORM", "IS_ALPHA", "IS_DIGIT", "IS_LOWER", "IS_PUNCT", "IS_SPACE")}
        for attr in [a for a in vocab.lex_attr_getters if a not in keep]:
            del vocab.lex_attr_getters[attr]
        for variant, canonical in rules.terms.spellings.items():
            for form in {variant, variant.capitalize(), variant.upper()}:
                vocab[form].norm_ = canonical
        self.abbreviations = rules.terms.abbreviations
        self._busy = threading.Lock()
        import numpy as np
        from spacy.attrs import IS_DIGIT, IS_LOWER, IS_SPACE, LOWER, ORTH, SENT_START, SPACY

        strings = vocab.strings
        self._np = np
        self._ORTH, self._LOWER, self._IS_SPACE, self._IS_LOWER, self._IS_DIGIT = ORTH, LOWER, IS_SPACE, IS_LOWER, IS_DIGIT
        self._SENT_START, self._SPACY = SENT_START, SPACY
        self._QUERY = strings.add("?")
        self._ENDS = frozenset(strings.add(x) for x in (".", "!", "?", ";"))
        self._HEAD = frozenset(strings.add(x) for x in (".", ":", ";"))
        self._DOT = strings.add(".")
        self._ABBREV = frozenset(strings.add(x) for x in rules.terms.abbreviations)
        self._breaks: dict[int, bool] = {}  # orth of a white-space token -> holds a line break
        self._chunks_seen: set[str] = set()  # white-space chunks already in the tokenizer's cache (or not cacheable)

        # Every ConText rule gets its own match key, and spaCy makes a lexeme of each key (with all its lexical
        # attributes). The words of the phrases are made lexemes first, with their attributes; then the keys are
        # added with no attribute computed (they are never matched against text), and the getters are put back.
        for phrase in {w for phrases in (*rules.target_phrases.values(), *rules.context_phrases.values())
                       for text in phrases for w in text.split()}:
            self.nlp.make_doc(phrase)
        getters = dict(vocab.lex_attr_getters)
        vocab.lex_attr_getters.clear()
        tokenizer = self.nlp.tokenizer
        # medspaCy keeps the tokenizer it is built with to make each rule's phrase a Doc: the phrases share a few
        # hundred words, so each word is tokenised once (the same tokens, white-space chunk by chunk)
        self.nlp.tokenizer = _PhraseTokenizer(tokenizer)
        try:
            self._add_rules(rules, TargetRule, ConText, ConTextRule)
            _check_direct_extensions()
        finally:
            vocab.lex_attr_getters.update(getters)
            self.nlp.tokenizer = tokenizer

    def _add_rules(self, rules: RuleSet, TargetRule: Any, ConText: Any, ConTextRule: Any) -> None:
        """The target matcher and the two ConText passes, from the rule set."""
        self.targets = _TargetMatcher(self.nlp, rules, TargetRule)

        # The qualifier pass only looks at the target concepts some qualifier row may modify.
        self.qualified = frozenset(t for row in rules.context.values() if row.qualifier for t in (row.allowed_types or ()))
        if any(row.qualifier and not row.allowed_types for row in rules.context.values()):
            self.qualified = frozenset(r.label for r in rules.targets.values())

        def context(name: str, qualifier: bool) -> Any:
            ctx = ConText(self.nlp, name=name, rules=None, phrase_matcher_attr="NORM", input_span_type="group",
                          span_group_name=QUALIFIED_GROUP if qualifier else FINDINGS_GROUP,
                          span_attrs="default" if not qualifier else None)
            batch = [ConTextRule("never", "PSEUDO", pattern=NEVER, direction="PSEUDO", metadata={"row": None})]
            for rid, row in rules.context.items():
                if row.qualifier != qualifier and row.category not in ("TERMINATE", "PSEUDO"):
                    continue
                if qualifier and row.direction == "TERMINATE" and not row.ends_qualifiers:
                    continue
                for phrase in rules.context_phrases[rid]:
                    batch.append(ConTextRule(
                        phrase, row.category, direction=row.direction, max_scope=row.max_scope,
                        max_targets=row.max_targets, allowed_types=set(row.allowed_types) if row.allowed_types else None,
                        metadata={"row": rid, "value": row.value},
                    ))
            ctx.add(batch)
            return ctx

        self.assertions = context("spinemets_assertions", qualifier=False)
        self.qualifiers = context("spinemets_qualifiers", qualifier=True)
        # Every rule is a literal phrase: the token-pattern Matcher medspaCy runs beside the PhraseMatcher holds only
        # the never-matching pattern, yet costs a pass over every document. It is replaced by one that finds nothing.
        for component, owner in ((self.assertions, "ConText"), (self.qualifiers, "ConText")):
            matcher = getattr(component, f"_{owner}__matcher", None)
            if matcher is not None and hasattr(matcher, "_MedspacyMatcher__matcher"):
                matcher._MedspacyMatcher__matcher = _no_matches

    def _fill_tokenizer_cache(self, text: str) -> None:
        """Tokenise each white-space chunk not met before on its own, so that spaCy's tokenizer caches it.

        spaCy caches the tokens of each chunk it splits, but in a document it stops saving new chunks once one of
        its special cases ("e.g.", "vs.", "Dr.", "a.m.", a single letter with a full stop ...) has been met: every
        later chunk of that document is split anew by its prefix, suffix and infix rules, report after report
        (spaCy issue 1250). A chunk tokenised alone is cached unless it holds a special case itself, and the tokens
        are the same either way (a chunk's tokens do not depend on its neighbours; the special cases are applied to
        the whole document afterwards, as before). About two thirds of the tokenizer's time on the evaluation reports.
        Up to CHUNK_MEMORY chunks are remembered; beyond that, new chunks are tokenised as spaCy does."""
        seen = self._chunks_seen
        if len(seen) >= CHUNK_MEMORY:
            return
        fresh = set(text.split())
        fresh -= seen
        if fresh:
            tokenizer = self.nlp.tokenizer
            for chunk in fresh:
                tokenizer(chunk)
            seen |= fresh

    def make_doc(self, text: str) -> Any:
        normalised = normalise_text(text)
        self._fill_tokenizer_cache(normalised)
        doc = self.nlp.make_doc(normalised)
        doc.user_data[TEXT_KEY] = normalised  # (doc.text joins every token's text anew at each access)
        doc.user_data["spinemets_levels"] = find_levels(text, self.rules)
        return doc

    def _mark(self, doc: Any) -> Any:
        """Sentence starts and the level norm on level tokens (one pass over the token attributes)."""
        n = len(doc)
        if n:
            rows = doc.to_array([self._ORTH, self._LOWER, self._IS_SPACE, self._IS_LOWER, self._IS_DIGIT, self._SPACY]).tolist()
            ends, dot, head, abbrev, breaks = self._ENDS, self._DOT, self._HEAD, self._ABBREV, self._breaks
            strings = doc.vocab.strings
            starts = [-1] * n
            starts[0] = 1
            prev = prev_prev = prev_lower = -1  # orth of the last word, lower-case orth of the two last words
            prev_spaced = True  # was the last word followed by a space
            prev_at = 0  # the index of the last word
            newline = False
            for i, (orth, lower, space, is_lower, is_digit, spaced) in enumerate(rows):
                if space:
                    if not newline:
                        nl = breaks.get(orth)
                        if nl is None:
                            nl = breaks[orth] = "\n" in strings[orth]
                        newline = nl
                    continue
                if i and prev != -1:
                    if prev in ends:
                        # "?discitis": a query mark on the word, not the end of a sentence
                        # nor is a query mark that opens a sentence ("? subluxation at T5/6")
                        if not (prev == dot and prev_prev in abbrev and (is_lower or is_digit)) and not (
                                prev == self._QUERY and not newline and (not prev_spaced or starts[prev_at] == 1)):
                            starts[i] = 1
                    elif newline and not (is_lower and prev not in head):
                        starts[i] = 1
                prev_prev, prev, prev_lower, prev_spaced, newline = prev_lower, orth, lower, spaced, False
                prev_at = i
            doc.from_array([self._SENT_START], self._np.array(starts, dtype=self._np.int32).astype(self._np.uint64).reshape(-1, 1))
        for mention in doc.user_data.get("spinemets_levels", ()):
            span = doc.char_span(mention.start, mention.end, alignment_mode="expand")
            if span is None:
                continue
            for tok in span:
                if _LEVEL.search(tok.text):
                    tok.norm_ = LEVEL_NORM
        return doc

    def _process(self, doc: Any) -> Any:
        doc = self._mark(doc)
        doc = self.targets(doc)
        sentences = _sentence_bounds(doc)
        doc = _run_context(self.assertions, doc, sentences)
        doc._.assertion_graph = doc._.context_graph
        doc.spans[QUALIFIED_GROUP] = [sp for sp in doc.spans[FINDINGS_GROUP] if sp.label_ in self.qualified]
        doc = _run_context(self.qualifiers, doc, sentences)
        return doc

    def __call__(self, text: str) -> Any:
        with self._busy:  # spaCy's vocabulary grows as it reads: one text at a time per pipeline
            return self._process(self.make_doc(text))

    def pipe(self, texts: Iterable[str]) -> Iterator[Any]:
        for text in texts:
            yield self(text)


_START_END = operator.itemgetter(1, 2)  # a match's (start, end)


def prune_longest(matches: list[tuple[Any, int, int]]) -> list[tuple[Any, int, int]]:
    """medspaCy's ``prune_overlapping_matches`` (strategy "longest"), the same result in the same order, without
    its quadratic ``list.pop(0)`` and recursion: sort by (start, end); walk the matches pairwise, keeping the longer
    of two that overlap (the earlier on a tie) and taking the match after the pair as the next to compare; repeat
    until a pass removes nothing.  tests/test_report_matcher.py compares both on random match lists."""
    current = matches
    while current:
        ordered = sorted(current, key=_START_END)
        if not any(a[1] <= b[1] < a[2] or a[1] < b[2] <= a[2] for a, b in zip(ordered, ordered[1:])):
            return ordered  # no two overlap (the usual case): a pass would keep every one, in this order
        pruned = []
        n, i = len(ordered), 1
        curr = ordered[0]
        while True:
            if i >= n:
                pruned.append(curr)
                break
            nxt = ordered[i]
            i += 1
            if curr[1] <= nxt[1] < curr[2] or curr[1] < nxt[2] <= curr[2]:
                pruned.append(nxt if nxt[2] - nxt[1] > curr[2] - curr[1] else curr)
                if i >= n:
                    break
                curr = ordered[i]
                i += 1
            else:
                pruned.append(curr)
                curr = nxt
        if len(pruned) == len(current):
            return pruned
        current = pruned
    return current


def _sentence_bounds(doc: Any) -> list[tuple[int, int]]:
    """For every token, the (start, end) of its sentence, as ``doc[i].sent`` gives them."""
    from spacy.attrs import SENT_START

    n = len(doc)
    starts = doc.to_array(SENT_START).tolist() if n else []
    bounds: list[tuple[int, int]] = []
    begin = 0
    for i in range(1, n + 1):
        if i == n or starts[i] == 1:
            bounds.extend([(begin, i)] * (i - begin))
            begin = i
    return bounds


@functools.cache
def _context_classes() -> tuple[Any, Any]:
    """medspaCy's modifier and graph classes (imported on first use, not when this module is)."""
    from medspacy.context import ConTextModifier
    from medspacy.context.context_graph import ConTextGraph

    return ConTextModifier, ConTextGraph


def _run_context(ctx: Any, doc: Any, sentences: list[tuple[int, int]]) -> Any:
    """What medspaCy's ``ConText.__call__`` does (``ConTextGraph.update_scopes`` and ``apply_modifiers``), with the
    same modifiers, scopes, edges and order, but without re-reading every rule attribute through a property for each
    of the quadratic modifier-modifier and target-modifier pairs, and with the sentence of each modifier from one
    pass over the sentence starts: ConText was the largest single cost of an extraction.
    tests/test_report_matcher.py checks the result against ``ConText.__call__`` on every report."""
    ConTextModifier, ConTextGraph = _context_classes()
    if ctx.input_span_type != "group" or ctx.prune_on_target_overlap or ctx.max_scope:
        return ctx(doc)  # a configuration this pipeline never builds: medspaCy's own code
    targets = doc.spans[ctx.span_group_name]
    matcher = ctx._ConText__matcher
    rule_map, strings = matcher.rule_map, doc.vocab.strings
    modifiers = []
    info = []  # per modifier: [scope start, scope end, start, end, direction, category, rule]
    # what ``MedspacyMatcher.__call__`` returns: its token-pattern matcher finds nothing here (replaced when the
    # pipeline is built) and it holds no regular expressions, so the phrase matches, pruned as it prunes them
    if matcher._MedspacyMatcher__matcher is _no_matches and not matcher._MedspacyMatcher__regex_matcher._patterns:
        found = matcher._MedspacyMatcher__phrase_matcher(doc)
        found = prune_longest(found) if matcher._prune and found else found
    else:  # (a matcher this pipeline never builds: medspaCy's own call)
        found = matcher(doc)
    for match_id, start, end in found:
        rule = rule_map[strings[match_id]]
        direction = rule.direction
        sent_start, sent_end = sentences[start]
        limit = rule.max_scope
        if direction.lower() == "forward":
            s0, s1 = end, sent_end
            if limit is not None and s1 - s0 > limit:
                s1 = end + limit
        elif direction.lower() == "backward":
            s0, s1 = sent_start, start
            if limit is not None and s1 - s0 > limit:
                s0 = start - limit
        else:
            s0, s1 = sent_start, sent_end
            if limit is not None and start - s0 > limit:
                s0 = start - limit
            if limit is not None and s1 - end > limit:
                s1 = end + limit
        modifiers.append(ConTextModifier(rule, start, end, doc, scope_start=s0, scope_end=s1))
        info.append([s0, s1, start, end, direction, rule.category, rule])

    # ConTextGraph.update_scopes: each pair, in order, limits the other's scope (ConTextModifier.limit_scope)
    def limit(a: list[Any], b: list[Any]) -> None:
        if not (a[0] <= b[0] < a[1] or a[0] < b[1] <= a[1]):
            return
        dir_a = a[4].upper()
        if dir_a == "TERMINATE":
            return
        rule_a, rule_b = a[6], b[6]
        if b[4].upper() != "TERMINATE" and b[5].upper() not in rule_a.terminated_by and b[5].upper() != a[5].upper():
            return
        if a[5] == b[5] and (rule_a.allowed_types != rule_b.allowed_types
                             or rule_a.excluded_types != rule_b.excluded_types):
            return
        dir_a = dir_a.lower()
        if dir_a in ("forward", "bidirectional") and b[2] > a[2]:
            a[1] = min(a[1], b[2])
        if dir_a in ("backward", "bidirectional") and b[3] < a[3]:
            a[0] = max(a[0], b[3])

    # a scope never leaves its modifier's sentence, so only the pairs of one sentence can limit each other; they are
    # taken in the same order as ConTextGraph takes all pairs (pairs of two sentences change nothing)
    by_sentence: dict[int, list[list[Any]]] = {}
    for row in info:
        by_sentence.setdefault(sentences[row[2]][0], []).append(row)
    for group in by_sentence.values():
        m = len(group)
        for i in range(m - 1):
            a = group[i]
            for j in range(i + 1, m):
                b = group[j]
                limit(a, b)
                limit(b, a)
    for mod, (s0, s1, *_rest) in zip(modifiers, info):
        mod._scope_start, mod._scope_end = s0, s1

    # ConTextGraph.apply_modifiers (ConTextModifier.modifies), target by target, modifier by modifier
    active = [(mod, s0, s1, start, end, rule.allowed_types, rule.excluded_types, rule.on_modifies)
              for mod, (s0, s1, start, end, direction, _cat, rule) in zip(modifiers, info)
              if direction not in ("TERMINATE", "PSEUDO")]
    # a scope never leaves its modifier's sentence: a target meets only the modifiers of the sentences it lies in
    # (taken in the same order as all of them)
    in_sentence: dict[int, list[tuple[Any, ...]]] = {}
    for item in active:
        in_sentence.setdefault(sentences[item[3]][0], []).append(item)
    n_tokens = len(sentences)
    for target in targets:
        t0, t1 = target.start, target.end
        first = sentences[t0][0] if t0 < n_tokens else -1
        last = sentences[t1 - 1][0] if 0 < t1 <= n_tokens else first
        if first == last:
            candidates = in_sentence.get(first, ())
        else:  # (a target across sentences: every modifier, as before)
            candidates = active
        label = None
        for mod, s0, s1, start, end, allowed, excluded, on_modifies in candidates:
            if start <= t0 < end or start < t1 <= end:
                continue
            if not (s0 <= t0 < s1 or s0 < t1 <= s1):
                continue
            if label is None:
                label = target.label_.upper()
            if allowed is not None:
                if label not in allowed:
                    continue
            elif excluded is not None and label in excluded:
                continue
            if on_modifies is not None and not mod.on_modifies(target):
                continue
            mod.modify(target)
    edges = []
    for mod in modifiers:
        mod.reduce_targets()
        for target in mod._targets:
            edges.append((target, mod))
    graph = ConTextGraph(prune_on_modifier_overlap=False)
    graph.targets, graph.modifiers, graph.edges = targets, modifiers, edges
    # ``target._.modifiers += (mod,)`` and ``ConText.set_context_attributes``, where spaCy keeps span attributes
    data = doc.user_data
    mapping = ctx.context_attributes_mapping
    for target, mod in edges:
        start_char, end_char = target.start_char, target.end_char
        key = (EXTENSION_KEY, "modifiers", start_char, end_char)
        data[key] = data.get(key, ()) + (mod,)
        if mapping and mod.category in mapping:
            for attr_name, attr_value in mapping[mod.category].items():
                data[(EXTENSION_KEY, attr_name, start_char, end_char)] = attr_value
    doc._.context_graph = graph
    return doc


@functools.lru_cache(maxsize=4)
def _cached(rules: RuleSet) -> ReportPipeline:
    pipeline = ReportPipeline(rules)
    return pipeline


def _no_matches(doc: Any) -> list[tuple[int, int, int]]:
    return []


_END = None  # the trie key under which a node lists the rows whose phrase ends there (norms are never None)


class _TargetMatcher:
    """The target concepts of a report: every rule phrase found by the tokens' norms, overlaps pruned to the longest.

    It finds what medspaCy's TargetMatcher finds with spaCy's PhraseMatcher on the NORM attribute (the same tokens,
    the same pruning, the same span group and rule attribute), but its phrases are a trie of norm hashes built
    from the phrases' words, not ~38,000 phrase documents: the first extraction no longer pays for building them.
    Two rows whose phrases share the norms both match, in the rule set's order (the rule set keeps phrases unique
    by text)."""

    def __init__(self, nlp: Any, rules: RuleSet, TargetRule: Any) -> None:
        from spacy.attrs import NORM
        from spacy.tokens import Span

        self._prune, self._NORM, self._Span = prune_longest, NORM, Span
        vocab, tokenizer = nlp.vocab, nlp.tokenizer
        self._label = {rid: row.label for rid, row in rules.targets.items()}
        self._rule = {rid: TargetRule(rid, row.label, metadata={"row": rid}) for rid, row in rules.targets.items()}
        self._trie: dict[Any, Any] = {}
        norms: dict[str, list[int]] = {}  # white-space chunk -> the norms of its tokens
        for rid in rules.targets:
            for phrase in rules.target_phrases[rid]:
                node = self._trie
                for chunk in phrase.split():
                    chunk_norms = norms.get(chunk)
                    if chunk_norms is None:
                        chunk_norms = norms[chunk] = [t.norm for t in tokenizer(chunk)]
                    for norm in chunk_norms:
                        node = node.setdefault(norm, {})
                if node is self._trie:
                    continue
                ends = node.setdefault(_END, [])
                if rid not in ends:
                    ends.append(rid)

    def matches(self, doc: Any) -> list[tuple[str, int, int]]:
        """(row, start, end) of every phrase found, by start and then end, overlaps not yet pruned."""
        norms = doc.to_array(self._NORM).tolist()
        trie, n, found = self._trie, len(norms), []
        for i in range(n):
            node = trie.get(norms[i])
            j = i + 1
            while node is not None:
                ends = node.get(_END)
                if ends:
                    found.extend((rid, i, j) for rid in ends)
                if j >= n:
                    break
                node = node.get(norms[j])
                j += 1
        return found

    def __call__(self, doc: Any) -> Any:
        found = self.matches(doc)
        spans = []
        data = doc.user_data
        for rid, start, end in self._prune(found) if found else ():
            span = self._Span(doc, start, end, label=self._label[rid])
            data[(EXTENSION_KEY, "target_rule", span.start_char, span.end_char)] = self._rule[rid]  # span._.target_rule
            spans.append(span)
        if FINDINGS_GROUP in doc.spans:
            doc.spans[FINDINGS_GROUP] += spans
        else:
            doc.spans[FINDINGS_GROUP] = spans
        return doc


class _PhraseTokenizer:
    """The tokenizer for rule phrases: a phrase's white-space chunks are tokenised once each and cached."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.vocab = tokenizer.vocab
        self._chunks: dict[str, list[str]] = {}

    def __call__(self, text: str) -> Any:
        from spacy.tokens import Doc

        words: list[str] = []
        for chunk in text.split():
            tokens = self._chunks.get(chunk)
            if tokens is None:
                tokens = self._chunks[chunk] = [t.text for t in self.tokenizer(chunk)]
            words.extend(tokens)
        return Doc(self.vocab, words=words)


def get_pipeline(rules: RuleSet) -> ReportPipeline:
    """The pipeline of *rules*, built once (thread-safe: the web app serves requests from a thread pool)."""
    with _lock:
        return _cached(rules)


def sentence_spans(doc: Any) -> Sequence[Any]:
    return list(doc.sents)
