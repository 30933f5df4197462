"""What a result may cite: the guideline or study behind an item, never a commercial AI answer page beside it.

Seeds 000-002 are the answers of a commercial AI product: what spinemets must beat, not evidence. An item that lists
such a page beside a guideline or a study cites only those; an item whose only sources are such pages is a draft,
and its reference then says where it comes from (flagged, never a headline).
"""

from __future__ import annotations

from spinemets.knowledge.loader import load_kb
from spinemets.results import Citer, citable


def _pages(kb):
    return {sid for sid, src in kb.sources.items() if src.kind == "ai_answer_page"}


def test_an_answer_page_beside_a_primary_source_is_not_cited():
    kb = load_kb()
    page = sorted(_pages(kb))[0]
    assert citable(kb, ("nice-ng234", page)) == ("nice-ng234",)
    assert citable(kb, (page, "nice-ng234", "seed-003")) == ("nice-ng234", "seed-003")


def test_an_item_with_only_answer_pages_keeps_them_so_it_never_looks_unsourced():
    kb = load_kb()
    pages = tuple(sorted(_pages(kb)))
    assert citable(kb, pages) == pages
    assert citable(kb, ()) == ()


def test_every_reviewed_item_with_an_answer_page_cites_something_else():
    kb = load_kb()
    pages = _pages(kb)
    mixed = [st for st in kb.statements.values() if set(st.sources) & pages and not set(st.sources) <= pages]
    assert mixed  # the knowledge base has such items: the rule is exercised
    for st in mixed:
        cite = Citer(kb)
        refs = cite.cite_statement(st.id)
        cited = {ref.source_id for ref in cite.references()}
        assert refs and cited == set(st.sources) - pages, st.id
    only = [st for st in kb.statements.values() if st.sources and set(st.sources) <= pages]
    assert only and all(st.is_draft for st in only)


def test_a_notice_lists_the_same_sources_it_numbers():
    kb = load_kb()
    pages = _pages(kb)
    st = next(st for st in kb.statements.values() if set(st.sources) & pages and not set(st.sources) <= pages)
    cite = Citer(kb)
    notice = cite.notice("x", "text", kb_items=[st.id], sources=["nice-ng234", sorted(pages)[0]])
    assert set(notice.sources) == (set(st.sources) - pages) | {"nice-ng234"}
    assert {ref.source_id for ref in cite.references()} == set(notice.sources)
