"""Shared shape of every spinemets result: components, warnings, numbered references.

A result is a value.  It lists what was used (each part with its points or
weight and the knowledge-base items behind it), what is missing, warnings
(draft items, disagreements between sources), and numbered references
resolved from the bibliography.  ``to_text()`` renders the same explanation
for the CLI, the web page and ask.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from spinemets.knowledge.loader import KnowledgeBase
from spinemets.knowledge.models import SourceKind, Statement, TableRow
from spinemets.wording import NAME_LABELS, field_name, missing_in_words

M = TypeVar("M", bound=BaseModel)

Status = Literal["complete", "insufficient_data"]


@functools.cache
def _plan(cls: type[BaseModel]) -> tuple[dict[str, object], tuple[tuple[str, object], ...], frozenset[str], frozenset[str]]:
    template: dict[str, object] = {}
    factories, required = [], []
    for name, info in cls.model_fields.items():
        template[name] = None
        if info.default_factory is not None:
            factories.append((name, info.default_factory))
        elif info.is_required():
            required.append(name)
        elif isinstance(info.default, (list, dict, set)):
            # a shared mutable default would be one object for every instance (pydantic copies it)
            raise TypeError(f"{cls.__name__}.{name}: a mutable default; give it a default_factory to build it trusted")
        else:
            template[name] = info.default
    return template, tuple(factories), frozenset(required), frozenset(template)


def trusted(cls: type[M], private: dict[str, object] | None = None, /, **values: object) -> M:
    """An instance of the result model *cls* from values the core computed and typed itself, without validating them
    again (what ``model_construct`` does, at a fraction of its cost: report reading builds dozens per report).
    Validation stays at the boundary, where input arrives; a test checks that every result built this way
    survives validation unchanged (tests/test_extract.py). Fields left out take their defaults; a name that is no
    field is an error; *private* holds the model's private attributes (their defaults when not given)."""
    template, factories, required, names = _plan(cls)
    if not required <= values.keys():
        raise TypeError(f"{cls.__name__}: missing {sorted(required - values.keys())}")
    if not names.issuperset(values):
        raise TypeError(f"{cls.__name__}: no field {sorted(set(values) - names)}")
    data = template.copy()
    data.update(values)
    for name, factory in factories:
        if name not in values:
            data[name] = factory()  # type: ignore[operator]
    if private is None and cls.__private_attributes__:
        private = {name: attr.get_default() for name, attr in cls.__private_attributes__.items()}
    obj = cls.__new__(cls)
    _setattr(obj, "__dict__", data)
    _setattr(obj, "__pydantic_fields_set__", set(values))
    _setattr(obj, "__pydantic_extra__", None)
    _setattr(obj, "__pydantic_private__", private)
    return obj


_setattr = object.__setattr__


class Reference(BaseModel):
    """A numbered reference to a bibliography entry."""

    model_config = ConfigDict(frozen=True)

    number: int
    source_id: str
    citation: str
    link: str | None = None
    unverified_citation: bool = False


class Component(BaseModel):
    """One input of a score and what it contributed."""

    name: str
    value: str | None = None
    label: str | None = None
    points: int | None = None
    note: str | None = None
    kb_items: list[str] = Field(default_factory=list, description="knowledge-base item ids behind this part")
    sources: list[str] = Field(default_factory=list)
    refs: list[int] = Field(default_factory=list)


class Notice(BaseModel):
    """A warning or remark attached to a result."""

    code: str
    message: str
    kb_items: list[str] = Field(default_factory=list)
    sources: list[str] = Field(default_factory=list)
    refs: list[int] = Field(default_factory=list)


class Result(BaseModel):
    """Fields shared by every result."""

    instrument: str
    status: Status
    summary: str
    components: list[Component] = Field(default_factory=list)
    missing: list[str] = Field(default_factory=list, description="input fields that are needed but absent")
    notices: list[Notice] = Field(default_factory=list)
    draft_items: list[str] = Field(
        default_factory=list, description="knowledge items used that are drafts (unverified); shown as a flag"
    )
    draft_labels: list[str] = Field(
        default_factory=list, description="the draft items in words, for people (same order as draft_items)"
    )
    references: list[Reference] = Field(default_factory=list)
    kb_version: str
    disclaimer: str

    def headline(self) -> str:
        return self.summary

    def extra_lines(self) -> list[str]:
        """Instrument-specific lines placed after the headline."""
        return []

    def missing_labels(self) -> list[str]:
        """The missing inputs in clinical words (the ``missing`` list keeps the field paths)."""
        return missing_in_words(self.missing)

    def missing_text(self) -> str:
        return ", ".join(self.missing_labels())

    def closing_lines(self) -> list[str]:
        """Instrument-specific lines placed after the warnings, before the references (e.g. next steps)."""
        return []

    def to_text(self) -> str:
        lines = [f"{self.instrument.upper()}: {self.headline()}"]
        lines.extend(self.extra_lines())
        if self.components:
            lines.append("")
            for c in self.components:
                value = c.value if c.value is not None else "(missing)"
                pts = "" if c.points is None else f" = {c.points} pt" + ("" if c.points == 1 else "s")
                label = f" ({c.label})" if c.label and c.label != c.value else ""
                refs = _refs(c.refs)
                note = f" - {c.note}" if c.note else ""
                name = field_name(c.name) if "." in c.name or c.name in NAME_LABELS else c.name  # 'sins.level' -> 'SINS level'
                lines.append(f"  {name}: {value}{label}{pts}{note}{refs}")
        if self.missing:
            lines.append("")
            lines.append("Missing: " + self.missing_text())
        for n in self.notices:
            lines.append(f"! {n.message}{_refs(n.refs)}")
        if self.draft_items:
            lines.append(
                "! DRAFT: this result uses unverified knowledge-base items awaiting review: "
                + "; ".join(self.draft_labels or self.draft_items)
            )
        closing = self.closing_lines()
        if closing:
            lines.append("")
            lines.extend(closing)
        lines.extend(reference_lines(self.references, self.kb_version, self.disclaimer))
        return "\n".join(lines)


def reference_lines(references: Sequence[Reference], kb_version: str, disclaimer: str) -> list[str]:
    """The numbered references and the closing line every text rendering ends with."""
    lines: list[str] = []
    if references:
        lines += ["", "References"]
        for r in references:
            flag = " [citation unverified]" if r.unverified_citation else ""
            lines.append(f"  [{r.number}] {r.citation}{flag}")
    lines += ["", f"Knowledge base {kb_version}. {disclaimer}"]
    return lines


def _refs(numbers: Sequence[int]) -> str:
    return f" [{','.join(str(n) for n in numbers)}]" if numbers else ""


@functools.lru_cache(maxsize=4096)
def _reference(kb: KnowledgeBase, source_id: str, number: int) -> Reference:
    """References are immutable values; the same source at the same number is built once."""
    src = kb.source(source_id)
    return Reference(
        number=number,
        source_id=source_id,
        citation=src.short(),
        link=src.link(),
        unverified_citation=src.verification.value == "unverified",
    )


@functools.lru_cache(maxsize=4096)
def citable(kb: KnowledgeBase, source_ids: tuple[str, ...]) -> tuple[str, ...]:
    """The sources a result cites for an item: a commercial AI answer page only when nothing else backs it.

    Such a page is what spinemets competes with, not evidence: an item with a guideline or study beside the page
    cites only those. An item whose only sources are such pages is a draft (the loader refuses it otherwise); it is
    shown flagged as a draft and its reference says where it comes from, so that it never looks better sourced
    than it is. Unknown ids are kept, so citing them still raises.
    """
    def page(s: str) -> bool:
        return s in kb.sources and kb.sources[s].kind is SourceKind.ai_answer_page

    kept = tuple(s for s in source_ids if not page(s))
    return kept or tuple(source_ids)


_MISSING = object()


class KeptPerObject:
    """Values worked out once per live object of a loaded knowledge base (a row, the knowledge base itself) and a
    short key. The object is kept with its value, so its id cannot be reused while the value is kept; the whole
    store is emptied when it reaches *limit* entries. Nothing refused is kept: a caller stores only what it built.
    ``get`` gives ``KeptPerObject.MISSING`` for nothing kept (a kept value may be None)."""

    MISSING = _MISSING

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._values: dict[tuple[Any, ...], tuple[object, Any]] = {}

    def get(self, obj: object, *key: Any) -> Any:
        entry = self._values.get((id(obj), *key))
        return entry[1] if entry is not None and entry[0] is obj else _MISSING

    def put(self, obj: object, value: Any, *key: Any) -> Any:
        if len(self._values) >= self.limit:
            self._values.clear()
        self._values[(id(obj), *key)] = (obj, value)
        return value


Citation = tuple[str, tuple[str, ...], bool]  # (item id, the sources to cite, draft)
_ROW_CITATIONS = KeptPerObject(20_000)  # per row and table id
_ITEM_CITATIONS = KeptPerObject(20_000)  # per knowledge base, item id and whether it must be a statement


def _citation(kb: KnowledgeBase, item_id: str, item: Statement | TableRow) -> Citation:
    """What citing *item* means, after checking that each of its sources exists (UnknownSourceError otherwise)."""
    sources = citable(kb, tuple(item.sources))
    for sid in sources:
        if sid not in kb.sources:
            kb.source(sid)  # raises UnknownSourceError
    return item_id, sources, item.is_draft


class Citer:
    """Numbers the sources a result cites, in order of first use, and collects draft items."""

    def __init__(self, kb: KnowledgeBase) -> None:
        self.kb = kb
        self._order: dict[str, int] = {}
        self._draft: list[str] = []

    def _number(self, sources: Iterable[str]) -> list[int]:
        order = self._order
        numbers = set()
        for sid in sources:
            number = order.get(sid)
            if number is None:
                number = order[sid] = len(order) + 1
            numbers.add(number)
        return sorted(numbers)

    def cite_sources(self, source_ids: Iterable[str]) -> list[int]:
        sources = citable(self.kb, tuple(source_ids))
        for sid in sources:
            if sid not in self.kb.sources:
                self.kb.source(sid)  # raises UnknownSourceError
        return self._number(sources)

    def cite(self, item_id: str, item: Statement | TableRow) -> list[int]:
        return self.cite_known(_citation(self.kb, item_id, item))

    def cite_known(self, citation: Citation) -> list[int]:
        """The reference numbers of a citation whose sources are already checked; a draft item is noted."""
        item_id, sources, draft = citation
        if draft and item_id not in self._draft:
            self._draft.append(item_id)
        return self._number(sources)

    def cite_row(self, table_id: str, row: TableRow) -> list[int]:
        return self.cite_known(self._row_citation(table_id, row))

    def _row_citation(self, table_id: str, row: TableRow) -> Citation:
        """A table row's citation, worked out once per row object (rows are immutable in a loaded knowledge base)."""
        citation = _ROW_CITATIONS.get(row, table_id)
        if citation is _MISSING:
            citation = _ROW_CITATIONS.put(row, _citation(self.kb, f"{table_id}.{row.id}", row), table_id)
        return citation  # type: ignore[no-any-return]

    def cite_statement(self, statement_id: str) -> list[int]:
        return self.cite_known(self._item_citation(statement_id, statement=True))  # type: ignore[arg-type]

    def _item_citation(self, item_id: str, statement: bool = False) -> Citation | None:
        """The citation of a statement or table row named by id, once per knowledge base and id (None for an item
        that cites nothing: a source, a table). With *statement*, the id must name a statement, as
        ``kb.statement`` requires; an unknown id is refused each time, in its lookup's words."""
        kb = self.kb
        citation = _ITEM_CITATIONS.get(kb, item_id, statement)
        if citation is _MISSING:
            item = kb.statement(item_id) if statement else kb.find(item_id)
            found = _citation(kb, item_id, item) if isinstance(item, (Statement, TableRow)) else None
            citation = _ITEM_CITATIONS.put(kb, found, item_id, statement)
        return citation  # type: ignore[no-any-return]

    def component(self, name: str, table_id: str, row: TableRow | None, **kw: object) -> Component:
        """A component of a result, citing *row* (built without validating again: the values are the core's own;
        tests/test_assess.py validates random whole results back to the same values)."""
        if row is None:
            return trusted(Component, None, name=name, **kw)
        citation = self._row_citation(table_id, row)
        refs = self.cite_known(citation)
        return trusted(Component, None, name=name, kb_items=[citation[0]], sources=list(citation[1]), refs=refs, **kw)

    def notice(self, code: str, message: str, kb_items: Sequence[str] = (), sources: Sequence[str] = ()) -> Notice:
        refs: list[int] = []
        srcs = list(citable(self.kb, tuple(sources))) if sources else []
        for item_id in kb_items:
            citation = self._item_citation(item_id)
            if citation is not None:
                refs.extend(self.cite_known(citation))
                srcs.extend(s for s in citation[1] if s not in srcs)
        if sources:
            refs.extend(self.cite_sources(sources))
        return trusted(Notice, None, code=code, message=message, kb_items=list(kb_items), sources=srcs,
                       refs=sorted(set(refs)))

    @property
    def draft_items(self) -> list[str]:
        return list(self._draft)

    def draft_labels(self) -> list[str]:
        """Each draft item in words: a statement's opening words, or a table's title and the row's label."""
        out = []
        for item_id in self._draft:
            item = self.kb.find(item_id)
            if isinstance(item, Statement):
                words = item.text.split()
                out.append(" ".join(words[:12]) + (" ..." if len(words) > 12 else ""))
            elif isinstance(item, TableRow):
                table_id = item_id.split(".", 1)[0]
                label = item.get("label")  # words as written; a study or row id put in words
                name = str(label) if label else str(item.get("study") or item.id).replace("-", " ").replace("_", " ")
                out.append(f"{self.kb.table(table_id).title}: {name}")
            else:
                out.append(item_id)
        return out

    def references(self) -> list[Reference]:
        return [_reference(self.kb, sid, number) for sid, number in sorted(self._order.items(), key=lambda kv: kv[1])]

    def common(self) -> dict[str, object]:
        """Keyword arguments every result needs: references, draft items, version, disclaimer."""
        return {
            "references": self.references(),
            "draft_items": self.draft_items,
            "draft_labels": self.draft_labels(),
            "kb_version": self.kb.version,
            "disclaimer": self.kb.manifest.disclaimer,
        }
