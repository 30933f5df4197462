"""The report pipeline's target matcher against medspaCy's TargetMatcher (spaCy's PhraseMatcher on NORM), which it
replaced for speed: the same rows at the same tokens on every report of every evaluation set, and on edge cases."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spinemets.reports.pipeline import FINDINGS_GROUP, get_pipeline, prune_longest
from spinemets.reports.rules import load_rules
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def pipelines():
    """Our pipeline, and medspaCy's TargetMatcher built from the same rules over the same vocabulary."""
    from medspacy.target_matcher import TargetMatcher, TargetRule

    rules = load_rules()
    ours = get_pipeline(rules)
    theirs = TargetMatcher(ours.nlp, name="reference_targets", phrase_matcher_attr="NORM", result_type=None)
    theirs.add([TargetRule(phrase, row.label, metadata={"row": rid})
                for rid, row in rules.targets.items() for phrase in rules.target_phrases[rid]])
    return ours, theirs


def _found(ours, theirs, text):
    doc = ours._mark(ours.make_doc(text))
    reference = [(sp._.target_rule.metadata["row"], sp.start, sp.end, sp.label_) for sp in theirs(doc)]
    doc = ours.targets(doc)
    got = [(sp._.target_rule.metadata["row"], sp.start, sp.end, sp.label_) for sp in doc.spans[FINDINGS_GROUP]]
    return got, reference


def test_the_same_targets_as_medspacy_on_every_evaluation_report(pipelines):
    texts = [p.read_text(encoding="utf-8") for p in sorted((ROOT / "tests" / "data" / "reports").glob("*/*.txt"))]
    assert len(texts) > 700
    differ = []
    total = 0
    for text in texts:
        got, reference = _found(*pipelines, text)
        total += len(got)
        if got != reference:
            differ.append(text[:80])
    assert not differ, differ[:3]
    assert total > 5000  # the comparison saw real findings


@pytest.mark.parametrize("text", [
    "",
    "   \n\n  ",
    "T7",
    "lytic",  # a phrase at the very end of the text
    "Lytic lesion at T7.",
    "Tumour tumor TUMOUR: lesion lesion lesion",  # spelling variants share one norm
    "No epidural extension; epidural soft tissue at T11-T12 abutting the cord, cord compression at T12.",
    "Vertebra plana of L1 with retropulsion\n\nand\tlytic   destruction of the pedicle.",
])
def test_the_same_targets_as_medspacy_on_edge_cases(pipelines, text):
    got, reference = _found(*pipelines, text)
    assert got == reference


def test_a_finding_span_carries_its_row(pipelines):
    ours, _ = pipelines
    doc = ours("Lytic lesion at T7.")
    rows = [sp._.target_rule.metadata["row"] for sp in doc.spans[FINDINGS_GROUP]]
    assert rows and all(r in load_rules().targets for r in rows)


# --- ConText: the pipeline runs medspaCy's ConText algorithm itself (faster, same result) -----------------------

def _context_by_medspacy(ours, text):
    """The pipeline's two ConText passes run by medspaCy's own ``ConText.__call__``."""
    from spinemets.reports.pipeline import QUALIFIED_GROUP

    doc = ours.targets(ours._mark(ours.make_doc(text)))
    doc = ours.assertions(doc)
    doc._.assertion_graph = doc._.context_graph
    doc.spans[QUALIFIED_GROUP] = [sp for sp in doc.spans[FINDINGS_GROUP] if sp.label_ in ours.qualified]
    return ours.qualifiers(doc)


def _graph(doc):
    """Every modifier (rule row, span, scope, category) and edge of both passes, and what each finding carries."""
    def graph(g):
        mods = [(m.rule.metadata.get("row"), m.modifier_span, m.scope_span, m.category) for m in g.modifiers]
        edges = [((t.start, t.end, t.label_), m.rule.metadata.get("row"), m.modifier_span) for t, m in g.edges]
        return mods, edges

    spans = [(sp.start, sp.end, sp.label_, sp._.is_negated, sp._.is_uncertain, sp._.is_historical,
              sp._.is_hypothetical, sp._.is_family,
              [(m.rule.metadata.get("row"), m.modifier_span, m.scope_span) for m in sp._.modifiers])
             for sp in doc.spans[FINDINGS_GROUP]]
    return graph(doc._.assertion_graph), graph(doc._.context_graph), spans


def test_the_same_context_as_medspacy_on_every_evaluation_report(pipelines):
    ours, _ = pipelines
    texts = [p.read_text(encoding="utf-8") for p in sorted((ROOT / "tests" / "data" / "reports").glob("*/*.txt"))]
    differ, edges = [], 0
    for text in texts:
        got, reference = _graph(ours(text)), _graph(_context_by_medspacy(ours, text))
        edges += len(got[0][1]) + len(got[1][1])
        if got != reference:
            differ.append(text[:80])
    assert not differ, differ[:3]
    assert edges > 3000  # the comparison saw real modifications


@pytest.mark.parametrize("text", [
    "T7",
    "No",
    "No epidural extension; epidural soft tissue at T11-T12 abutting the cord, cord compression at T12.",
    "No fracture, no epidural tumour, but there is a lytic lesion at T9 which is likely a metastasis.",
    "Neither collapse nor epidural extension. Possible pedicle involvement on the left? Previous fracture at L1.",
    "Cord compression - not seen. Epidural disease - none. Lytic lesion at T4 other than at T9.",
])
def test_the_same_context_as_medspacy_on_edge_cases(pipelines, text):
    ours, _ = pipelines
    assert _graph(ours(text)) == _graph(_context_by_medspacy(ours, text))


_matches = st.lists(st.tuples(st.integers(0, 5), st.integers(0, 30), st.integers(0, 8)).map(
    lambda m: (m[0], m[1], m[1] + m[2])), max_size=40)


@settings(max_examples=400, deadline=None)
@given(_matches)
def test_pruning_keeps_what_medspacys_pruning_keeps(matches):
    from medspacy.common.util import prune_overlapping_matches

    assert prune_longest(list(matches)) == prune_overlapping_matches(list(matches))


def test_pruning_keeps_the_longest_and_the_earlier_on_a_tie():
    assert prune_longest([(1, 0, 2), (2, 1, 5), (3, 6, 7)]) == [(2, 1, 5), (3, 6, 7)]
    assert prune_longest([(1, 0, 2), (2, 1, 3)]) == [(1, 0, 2)]
    assert prune_longest([]) == []


def test_span_attributes_read_where_spacy_keeps_them(pipelines):
    """The direct reads of span attributes give what ``span._`` gives, on reports with and without brackets."""
    from spinemets.reports.pipeline import DIRECT_EXTENSIONS, bracket_tokens, span_extension

    ours, _ = pipelines
    texts = [p.read_text(encoding="utf-8") for p in sorted((ROOT / "tests" / "data" / "reports").glob("*/*.txt"))][:200]
    seen = 0
    for text in texts + ["T3 (no collapse) and T8 (vertebra plana (old)). No cord compression (see above)."]:
        doc = ours(text)
        for sp in doc.spans[FINDINGS_GROUP]:
            for name in DIRECT_EXTENSIONS:
                default = () if name == "modifiers" else None if name == "target_rule" else False
                assert span_extension(doc, sp, name, default) == getattr(sp._, name), name
            seen += len(span_extension(doc, sp, "modifiers", ()))
        assert bracket_tokens(doc) == {t.i: t.text for t in doc if t.text in ("(", ")")}
    assert seen > 300


# --- the tokenizer's cache, filled chunk by chunk ----------------------------------------------------------------

_CHUNKS = st.sampled_from(["e.g.", "vs.", "Dr.", "a.m.", "T7.", "L1-L2", "(T9)", "cord,", "50%", "loss", "don't",
                           "C++", ":)", "U.S.", "T2-bright", "3.5cm", "\u2026", "'s", "no.", "St.", "x", "(", ")"])
_SPACES = st.sampled_from([" ", "  ", "\n", "\n\n", "\t", " \n "])


def _spacy_reading(text):
    """Tokens and spaces of a fresh blank English tokenizer (its own cache, special cases and all)."""
    import spacy

    from spinemets.reports.pipeline import normalise_text

    return [(t.text, t.whitespace_) for t in spacy.blank("en").tokenizer(normalise_text(text))]


def _read(pipeline, text):
    return [(t.text, t.whitespace_) for t in pipeline.make_doc(text)]


@given(st.lists(st.tuples(_CHUNKS, _SPACES), min_size=1, max_size=25))
@settings(max_examples=150, deadline=None)
def test_chunks_tokenised_alone_give_the_tokens_of_spacys_own_reading(pairs):
    """Filling the cache chunk by chunk changes no token: the same words and spaces as a fresh blank English
    tokenizer reading the whole text, special cases anywhere in it; and again once every chunk is cached."""
    ours = get_pipeline(load_rules())
    text = "".join(chunk + space for chunk, space in pairs)
    expected = _spacy_reading(text)
    assert _read(ours, text) == expected
    assert _read(ours, text) == expected


def test_each_chunk_is_tokenised_alone_once_and_the_memory_is_bounded(monkeypatch):
    """After "e.g." spaCy stops saving the document's new chunks; each is tokenised alone once (and so cached) and
    remembered. Once the memory is full nothing more is remembered, and the tokens stay spaCy's own."""
    from spinemets.reports import pipeline as module

    ours = module.ReportPipeline(load_rules())
    text = "Lesion, e.g. sclerotic: T7-T8 (posterior elements), 40% loss."
    assert _read(ours, text) == _spacy_reading(text)
    from spinemets.reports.pipeline import normalise_text

    assert set(normalise_text(text).split()) <= ours._chunks_seen
    size = len(ours._chunks_seen)
    assert _read(ours, text) == _spacy_reading(text)
    assert len(ours._chunks_seen) == size  # nothing new to remember
    monkeypatch.setattr(module, "CHUNK_MEMORY", size)
    longer = text + " Zygapophyseal joints, e.g. facets."
    assert _read(ours, longer) == _spacy_reading(longer)
    assert "Zygapophyseal" not in ours._chunks_seen and len(ours._chunks_seen) == size


# --- percentages and fractions: the split pattern finds what the whole pattern finds -----------------------------

_PIECES = st.sampled_from(["1/3", "3/4%", "50%", "50 %", "20-30%", "20 to 30 per cent", "20\u201330 percent", "a half",
                           "half", "one-third", "two thirds", "seventy-five per cent", "\u017feventy per cent", "T7",
                           "1.5%", ".5%", "12/3", "x", "HALF", "quarter", "three quarters%", "3", "%", "per cent",
                           "\u0130", "\u212a", "reduced to", "by", "(", ")", "loss", "2/3rds", "1/4th"])


@given(st.lists(_PIECES, min_size=1, max_size=12), st.sampled_from([" ", "", "\n", ", "]))
@settings(max_examples=400, deadline=None)
def test_percentages_found_part_by_part_are_the_whole_patterns_matches(pieces, joiner):
    """The figure part and the fraction part, each finding its next match, give the whole pattern's matches (same
    spans, same groups), non-ASCII letters that fold onto the words included."""
    from spinemets.reports.extract import _percent_regex

    amounts = _percent_regex(load_rules())[0]
    text = joiner.join(pieces)
    expected = [(m.span(), m.groups()) for m in amounts.pattern.finditer(text)]
    assert [(m.span(), m.groups()) for m in amounts.finditer(text, text.lower())] == expected


def test_percentages_on_every_evaluation_report_are_the_whole_patterns_matches():
    from spinemets.reports.extract import _percent_regex

    amounts = _percent_regex(load_rules())[0]
    texts = [p.read_text(encoding="utf-8") for p in sorted((ROOT / "tests" / "data" / "reports").glob("*/*.txt"))]
    found = 0
    for text in texts:
        expected = [(m.span(), m.groups()) for m in amounts.pattern.finditer(text)]
        assert [(m.span(), m.groups()) for m in amounts.finditer(text, text.lower())] == expected, text[:80]
        found += len(expected)
    assert found > 300  # the comparison saw real figures and fractions


def test_a_read_report_leaves_nothing_for_the_garbage_collector():
    """extract() releases the document it read: no report leaves a reference cycle behind (before, each report's
    document, spans and ConText modifiers waited in cycles for a collection), and the batch runner does the same."""
    import gc
    import io

    from spinemets.reports.batch import run_batch
    from spinemets.reports.extract import extract

    texts = [p.read_text(encoding="utf-8") for p in sorted((ROOT / "tests" / "data" / "reports").glob("*/*.txt"))][:60]
    for text in texts:
        extract(text)  # (first-use caches: patterns compiled once, some by a recursive helper)
    gc.collect()
    gc.disable()
    try:
        for text in texts:
            extract(text)
        assert gc.collect() == 0
    finally:
        gc.enable()
    folder = ROOT / "tests" / "data" / "reports" / "dev"
    run_batch(folder, io.StringIO(), "csv", progress=False)
    gc.collect()
    gc.disable()
    try:
        run_batch(folder, io.StringIO(), "csv", progress=False)
        assert gc.collect() == 0
    finally:
        gc.enable()


def test_a_released_document_keeps_its_tokens_and_spans():
    from spinemets.reports.pipeline import release

    doc = get_pipeline(load_rules())("Lytic lesion at T7 without epidural extension.")
    assert doc._.context_graph is not None
    release(doc)
    assert [t.text for t in doc][:3] == ["Lytic", "lesion", "at"]
    assert [sp.text for sp in doc.spans[FINDINGS_GROUP]]
    assert doc._.context_graph is None
