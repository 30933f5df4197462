"""Load and validate the knowledge base.

``load_kb()`` reads the packaged data once per process and raises
:class:`~spinemets.errors.KnowledgeBaseError` listing every problem;
``check_kb(path)`` returns the problems without raising (``spinemets kb check``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import ValidationError

from spinemets.errors import KnowledgeBaseError, UnknownItemError, UnknownSourceError
from spinemets.knowledge.models import (
    NON_PRIMARY_KINDS,
    AnswerTopic,
    Manifest,
    ReviewStatus,
    Source,
    Statement,
    Table,
    TableRow,
)

DATA_DIR = Path(__file__).parent / "data"
# The columns the calculators read from their tables, with the type (or the allowed values) each must have. Results
# are built from the core's own values without validating them again (results.trusted), so a wrong type is refused
# here, when the knowledge base is loaded, not carried into a result; a column marked required must be in every row
# (a row without it would fail in the middle of a calculation). The allowed values are those of the result models
# the column feeds (tests/test_kb.py compares them).
_TEXT, _WHOLE, _FLAG = (str,), (int,), (bool,)
APPROPRIATENESS = frozenset({"usually_appropriate", "may_be_appropriate", "usually_not_appropriate"})
URGENCY_LEVELS = frozenset({"emergency", "urgent"})
REQUIRED = "required"
COLUMNS: dict[str, dict[str, tuple[tuple[type, ...] | frozenset[str], str | None]]] = {
    "acr_ratings": {"appropriateness": (APPROPRIATENESS, None), "acr_variant": (_TEXT, None), "study": (_TEXT, None),
                    "variant": (_TEXT, None)},
    "sins_points": {"component": (_TEXT, REQUIRED), "value": (_TEXT, REQUIRED), "points": (_WHOLE, REQUIRED),
                    "label": (_TEXT, REQUIRED)},
    "sins_categories": {"min": (_WHOLE, REQUIRED), "max": (_WHOLE, REQUIRED), "category": (_TEXT, REQUIRED),
                        "label": (_TEXT, REQUIRED), "implication": (_TEXT, REQUIRED),
                        "consultation": (_TEXT, REQUIRED), "surgical_consultation": (_FLAG, REQUIRED)},
    "escc_grades": {"grade": (_TEXT, REQUIRED), "severity": (_TEXT, REQUIRED), "definition": (_TEXT, REQUIRED),
                    "implication": (_TEXT, REQUIRED), "findings": ((dict,), REQUIRED)},
    "imaging_studies": {"modality": (_TEXT, None), "region": (_TEXT, None), "contrast": (_TEXT, None),
                        "label": (_TEXT, None), "ionising": (_FLAG, None), "statements": ((list,), None)},
    "mscc_actions": {"step": (_TEXT, None), "label": (_TEXT, None), "statements": ((list,), None)},
    "noms_framing": {"framing": (_TEXT, None), "treatment": (_TEXT, None), "needs_surgery": (_FLAG, None)},
    "radiosensitivity": {"histology": (_TEXT, None), "response": (_TEXT, None), "aliases": ((list,), None),
                         "patchell_excluded": (_FLAG, None)},
    "urgency_windows": {"hours": (_WHOLE, None), "label": (_TEXT, None), "level": (URGENCY_LEVELS, None),
                        "condition": (_TEXT, None), "source_label": (_TEXT, None), "statement": (_TEXT, None)},
}


def _column_problem(value: Any, expected: tuple[type, ...] | frozenset[str]) -> str | None:
    """Why *value* does not fit its column, or None (an absent value is the required-columns check's matter)."""
    if value is None:
        return None
    if isinstance(expected, frozenset):
        return None if value in expected else f"{value!r} is not one of {', '.join(sorted(expected))}"
    if isinstance(value, bool) and bool not in expected:
        return f"{value!r} is a yes/no, not {' or '.join(t.__name__ for t in expected)}"
    if not isinstance(value, expected):
        return f"{value!r} is not {' or '.join(t.__name__ for t in expected)}"
    return None
_M = TypeVar("_M", Source, AnswerTopic)

try:  # the C loader is ~10x faster; fall back to pure Python where libyaml is absent
    _Loader: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - depends on the PyYAML build
    _Loader = yaml.SafeLoader


@dataclass(frozen=True, eq=False)
class KnowledgeBase:
    """The validated knowledge base: look items up by id."""

    manifest: Manifest
    sources: dict[str, Source]
    statements: dict[str, Statement]
    tables: dict[str, Table]
    path: Path = field(default=DATA_DIR)
    answer_topics: dict[str, AnswerTopic] = field(default_factory=dict)

    @property
    def version(self) -> str:
        return self.manifest.version

    def source(self, source_id: str) -> Source:
        try:
            return self.sources[source_id]
        except KeyError:
            raise UnknownSourceError(source_id) from None

    def statement(self, statement_id: str) -> Statement:
        try:
            return self.statements[statement_id]
        except KeyError:
            raise UnknownItemError("statement", statement_id) from None

    def table(self, table_id: str) -> Table:
        try:
            return self.tables[table_id]
        except KeyError:
            raise UnknownItemError("table", table_id) from None

    def answer_topic(self, topic_id: str) -> AnswerTopic:
        try:
            return self.answer_topics[topic_id]
        except KeyError:
            raise UnknownItemError("answer topic", topic_id) from None

    def find(self, item_id: str) -> Source | Statement | Table | TableRow | AnswerTopic:
        """Any item by id; table rows as ``TABLE.ROW``."""
        if item_id in self.statements:
            return self.statements[item_id]
        if item_id in self.sources:
            return self.sources[item_id]
        if item_id in self.tables:
            return self.tables[item_id]
        if item_id in self.answer_topics:
            return self.answer_topics[item_id]
        for table_id, table in self.tables.items():
            prefix = table_id + "."
            if item_id.startswith(prefix):
                return table.row(item_id[len(prefix):])
        raise UnknownItemError("knowledge-base", item_id)


_PARSED: dict[Path, Any] | None = None  # the parsed files of the packaged data, while _load_default() runs


def _read_yaml(path: Path) -> Any:
    if _PARSED is not None and path in _PARSED:
        return _PARSED[path]
    with path.open(encoding="utf-8") as fh:
        return yaml.load(fh, Loader=_Loader)


# --- the parsed-data snapshot ---------------------------------------------------------------------------------------
# Parsing the YAML is nearly all of the load time; the same data as JSON parse about 30 times faster.  The snapshot
# holds the parsed files only: every item is still validated on each load, as from the YAML.  It is keyed on a hash of
# every data file's bytes, so any change to the data makes a new one.
SNAPSHOT_FORMAT = 1


def _json_default(value: Any) -> Any:
    import datetime

    if isinstance(value, datetime.datetime):
        return {"__datetime__": value.isoformat()}
    if isinstance(value, datetime.date):
        return {"__date__": value.isoformat()}
    raise TypeError(f"not JSON: {type(value).__name__}")


def _json_hook(obj: dict[str, Any]) -> Any:
    import datetime

    if len(obj) == 1:
        if "__date__" in obj:
            return datetime.date.fromisoformat(obj["__date__"])
        if "__datetime__" in obj:
            return datetime.datetime.fromisoformat(obj["__datetime__"])
    return obj


def _data_digest(path: Path) -> tuple[str, dict[Path, bytes]]:
    """A hash of every data file's name and bytes (and of the YAML reader), with the bytes read for it."""
    import hashlib

    h = hashlib.sha256(f"{SNAPSHOT_FORMAT}|{yaml.__version__}".encode())
    blobs = {}
    for f in sorted(path.rglob("*.yaml")):
        blob = f.read_bytes()
        blobs[f] = blob
        h.update(str(f.relative_to(path)).encode() + b"\0" + blob + b"\0")
    return h.hexdigest()[:20], blobs


def _parsed_snapshot(path: Path, digest: str | None = None, blobs: dict[Path, bytes] | None = None) -> dict[Path, Any]:
    """Every YAML file under *path*, parsed: from the snapshot in the cache folder, or parsed and saved there."""
    import json

    from spinemets.cachedir import cache_dir, save_atomically

    if digest is None or blobs is None:
        digest, blobs = _data_digest(path)
    files = sorted(blobs)
    snapshot = cache_dir() / f"kb-parsed-{digest}.json"
    try:
        raw = json.loads(snapshot.read_text(encoding="utf-8"), object_hook=_json_hook)
        if sorted(raw) == sorted(str(f.relative_to(path)) for f in files):
            return {path / rel: data for rel, data in raw.items()}
    except (OSError, ValueError):
        pass
    parsed: dict[Path, Any] = {}
    for f in files:
        try:
            parsed[f] = yaml.load(blobs[f].decode("utf-8"), Loader=_Loader)
        except (yaml.YAMLError, UnicodeDecodeError):
            return {}  # a broken file: the normal load reports it, and nothing is saved
    save_atomically(snapshot, lambda fh: json.dump({str(f.relative_to(path)): data for f, data in parsed.items()}, fh,
                                                   default=_json_default), text=True)  # if not saved: parsed next time
    return parsed


def _name(raw: Any, file: Path, index: int) -> str:
    if isinstance(raw, dict) and isinstance(raw.get("id"), str):
        return str(raw["id"])
    return f"{file.name}[{index}]"


def _errors(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        msg = err["msg"]
        if err["type"] == "missing":
            msg = "missing"
        elif err["type"] == "value_error":
            msg = str((err.get("ctx") or {}).get("error", msg))
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts)


def _items(files: Iterable[Path], kind: str, problems: list[str]) -> list[tuple[Path, int, Any]]:
    out: list[tuple[Path, int, Any]] = []
    for f in files:
        try:
            data = _read_yaml(f)
        except yaml.YAMLError as exc:
            problems.append(f"{f.name}: not valid YAML: {exc}")
            continue
        if data is None:
            continue
        if not isinstance(data, list):
            problems.append(f"{f.name}: a {kind} file must hold a list of {kind}s")
            continue
        out.extend((f, i, raw) for i, raw in enumerate(data))
    return out


def _validated(path: Path, folder: str, kind: str, model: type[_M], claim: Callable[[str, str], None],
               problems: list[str]) -> dict[str, _M]:
    """Every item of the YAML files in *folder*, validated with *model*; problems are collected, not raised."""
    out: dict[str, _M] = {}
    for f, i, raw in _items(sorted((path / folder).glob("*.yaml")), kind, problems):
        try:
            item = model.model_validate(raw)
        except ValidationError as exc:
            problems.append(f"{kind} {_name(raw, f, i)}: {_errors(exc)}")
            continue
        claim(item.id, f"{folder}/{f.name}")  # type: ignore[attr-defined]
        out.setdefault(item.id, item)  # type: ignore[attr-defined]
    return out


def _load(path: Path) -> tuple[KnowledgeBase | None, list[str]]:
    problems: list[str] = []
    manifest: Manifest | None = None
    mpath = path / "manifest.yaml"
    if not mpath.exists():
        problems.append("manifest.yaml: missing")
    else:
        try:
            manifest = Manifest.model_validate(_read_yaml(mpath))
        except ValidationError as exc:
            problems.append(f"manifest.yaml: {_errors(exc)}")

    seen: dict[str, str] = {}

    def claim(item_id: str, where: str) -> None:
        if item_id in seen:
            problems.append(f"{item_id}: duplicate id ({where} and {seen[item_id]})")
        else:
            seen[item_id] = where

    sources = _validated(path, "sources", "source", Source, claim, problems)

    statements: dict[str, Statement] = {}
    for f, i, raw in _items(sorted((path / "statements").glob("*.yaml")), "statement", problems):
        name = _name(raw, f, i)
        if isinstance(raw, dict) and not raw.get("sources"):
            problems.append(f"statement {name}: has no source")
        try:
            st = Statement.model_validate(raw)
        except ValidationError as exc:
            problems.append(f"statement {name}: {_errors(exc)}")
            continue
        claim(st.id, f"statements/{f.name}")
        statements.setdefault(st.id, st)

    tables: dict[str, Table] = {}
    for f in sorted((path / "tables").glob("*.yaml")):
        try:
            raw = _read_yaml(f)
        except yaml.YAMLError as exc:
            problems.append(f"{f.name}: not valid YAML: {exc}")
            continue
        name = _name(raw, f, 0)
        if isinstance(raw, dict):
            for j, row in enumerate(raw.get("rows") or []):
                if isinstance(row, dict) and not row.get("sources"):
                    problems.append(f"table {name} row {row.get('id', j)}: has no source")
        try:
            tab = Table.model_validate(raw)
        except ValidationError as exc:
            problems.append(f"table {name}: {_errors(exc)}")
            continue
        claim(tab.id, f"tables/{f.name}")
        row_ids: set[str] = set()
        columns = COLUMNS.get(tab.id, {})
        needed = [c for c, (_, required) in columns.items() if required]
        for row in tab.rows:
            if row.id in row_ids:
                problems.append(f"{tab.id}.{row.id}: duplicate row id in table {tab.id}")
            row_ids.add(row.id)
            absent = [c for c in needed if row.get(c) in (None, "")]
            if absent:
                problems.append(f"{tab.id}.{row.id}: missing {', '.join(absent)} (the calculators read every row's "
                                f"{', '.join(needed)})")
            for column, (expected, _) in columns.items():
                why = _column_problem(row.get(column), expected)
                if why:
                    problems.append(f"{tab.id}.{row.id}: {column}: {why}")
        tables.setdefault(tab.id, tab)

    answer_topics = _validated(path, "topics", "answer topic", AnswerTopic, claim, problems)
    problems.extend(_answer_topic_problems(answer_topics, statements, sources))
    sites = {row.id for row in tables["primary_sites"].rows} if "primary_sites" in tables else set()
    for t in answer_topics.values():
        for site in t.primaries:
            if site not in sites:
                problems.append(f"answer topic {t.id}: primary {site!r} is not a row of the primary sites table")

    # Cross references: every cited source must exist.
    for st in statements.values():
        for sid in st.sources:
            if sid not in sources:
                problems.append(f"statement {st.id}: unknown source id {sid!r}")
    for tab in tables.values():
        for row in tab.rows:
            for sid in row.sources:
                if sid not in sources:
                    problems.append(f"table {tab.id} row {row.id}: unknown source id {sid!r}")
    # A fact whose only sources are web summaries or commercial AI answer pages stays a draft.
    for item, what in _non_primary_only(statements, tables, sources):
        problems.append(
            f"{what} {item}: every source is a web summary or AI answer page; it must be review_status 'draft' "
            "until a primary source (guideline, study, label, review) is added"
        )
    # Topics a statement is tagged with must be lower-case words, so search and ask can rely on them.
    for st in statements.values():
        for t in st.topics:
            if t != t.strip().lower() or " " in t:
                problems.append(f"statement {st.id}: topic {t!r} must be lower-case without spaces")

    if problems or manifest is None:
        return None, problems
    return KnowledgeBase(manifest, sources, statements, tables, path, answer_topics), []


def _answer_topic_problems(
    topics: dict[str, AnswerTopic], statements: dict[str, Statement], sources: dict[str, Source]
) -> list[str]:
    """Cross-item rules of answer topics: known statements, primary sources behind every bottom line."""
    problems: list[str] = []
    for t in topics.values():
        for sid in [*t.key_points, *t.caveats]:
            if sid not in statements:
                problems.append(f"answer topic {t.id}: unknown statement id {sid!r}")
        backing = {s for sid in t.key_points if sid in statements for s in statements[sid].sources}
        for src in t.answer_sources:
            if src not in sources:
                problems.append(f"answer topic {t.id}: unknown source id {src!r}")
            elif sources[src].kind in NON_PRIMARY_KINDS:
                problems.append(
                    f"answer topic {t.id}: the bottom line cites {src!r}, a web summary or AI answer page; "
                    "cite the guideline or study instead"
                )
            elif src not in backing:
                problems.append(
                    f"answer topic {t.id}: bottom-line source {src!r} backs none of its key points; add the key "
                    "point that carries the fact, or cite the source of one that does"
                )
        if not t.is_draft:
            first = t.key_points[0]
            if first in statements and statements[first].is_draft:
                problems.append(
                    f"answer topic {t.id}: its first key point {first!r} is a draft; a reviewed topic must lead "
                    "with a reviewed fact (reorder, or mark the topic draft)"
                )
        phrasings = [p.strip().lower() for p in t.phrasings]
        if len(set(phrasings)) != len(phrasings):
            problems.append(f"answer topic {t.id}: repeated phrasing")
    return problems


def _non_primary_only(
    statements: dict[str, Statement], tables: dict[str, Table], sources: dict[str, Source]
) -> list[tuple[str, str]]:
    """Reviewed or approved items whose every source is a non-primary page."""

    def weak(ids: list[str]) -> bool:
        return all(s in sources and sources[s].kind in NON_PRIMARY_KINDS for s in ids)

    out = [(st.id, "statement") for st in statements.values() if not st.is_draft and weak(st.sources)]
    for tab in tables.values():
        if tab.content != "clinical":
            continue
        for row in tab.rows:
            status = row.review_status or tab.review_status
            if status is not ReviewStatus.draft and not row.is_draft and weak(row.sources):
                out.append((f"{tab.id}.{row.id}", "table row"))
    return out


def check_kb(path: Path | str | None = None) -> list[str]:
    """Validate the knowledge base at *path* (default: the packaged one); return the problems."""
    _, problems = _load(Path(path) if path else DATA_DIR)
    return problems


def load_kb(path: Path | str | None = None) -> KnowledgeBase:
    """Load and validate a knowledge base; the packaged one is loaded once per process."""
    if path is None:
        return _load_default()
    kb, problems = _load(Path(path))
    if kb is None:
        raise KnowledgeBaseError(problems)
    return kb


# --- the compiled snapshot ------------------------------------------------------------------------------------------
# The packaged knowledge base, validated, is also kept whole (pickled) in the cache folder: loading it takes about a
# third of validating the parsed files again.  Its name carries a hash of the data files and of the code that
# defines and builds the objects (this module and the models), so that a change to either makes a new one; it is
# written only after a load that found no problem.  A pickle runs code when read, so one is read only if this user
# owns it and its folder and nobody else may write either (the cache folder's files are created 0600), and only if
# it carries its own name (a renamed older one is refused); otherwise the knowledge base is validated from the files.
COMPILED_FORMAT = 2


def _compiled_path(digest: str) -> Path:
    import hashlib
    import sys

    import pydantic

    from spinemets.cachedir import cache_dir

    h = hashlib.sha256(f"{COMPILED_FORMAT}|{digest}|{pydantic.VERSION}|{sys.version_info[:2]}".encode())
    for module in (Path(__file__), Path(__file__).with_name("models.py")):
        h.update(module.read_bytes())
    return cache_dir() / f"kb-compiled-{h.hexdigest()[:20]}.pickle"


def _private(path: Path) -> bool:
    """Is *path* this user's, and writable by nobody else (its folder too: else a file could be swapped in)?"""
    import os
    import stat

    try:
        folder = os.stat(path.parent)
    except OSError:
        return False
    return folder.st_uid == os.getuid() and not folder.st_mode & 0o022 and stat.S_ISDIR(folder.st_mode)


def _read_compiled(path: Path) -> KnowledgeBase | None:
    import os
    import pickle
    import stat

    if not _private(path):
        return None
    try:
        with open(path, "rb") as fh:
            info = os.fstat(fh.fileno())
            if not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o022:
                return None  # not ours alone: never unpickled
            key, kb = pickle.load(fh)
    except Exception:  # noqa: BLE001 - a missing, truncated or stale snapshot is rebuilt from the files
        return None
    # the file carries the name it was written under: one renamed from an older snapshot is not this one
    return kb if key == path.name and isinstance(kb, KnowledgeBase) else None


def _write_compiled(path: Path, kb: KnowledgeBase) -> None:
    import pickle

    from spinemets.cachedir import save_atomically

    if not _private(path) and path.parent.exists():
        return  # a folder others may write: no snapshot (the files are validated each time instead)
    save_atomically(path, lambda fh: pickle.dump((path.name, kb), fh, protocol=pickle.HIGHEST_PROTOCOL))


@functools.cache
def _load_default() -> KnowledgeBase:
    global _PARSED
    digest, blobs = _data_digest(DATA_DIR)
    compiled = _compiled_path(digest)
    kb = _read_compiled(compiled)
    if kb is not None:
        return kb
    _PARSED = _parsed_snapshot(DATA_DIR, digest, blobs)
    try:
        kb, problems = _load(DATA_DIR)
    finally:
        _PARSED = None
    if kb is None:
        raise KnowledgeBaseError(problems)
    _write_compiled(compiled, kb)
    return kb
