"""The spinemets exception hierarchy.

Every error a user can provoke with bad input is one of these, with an exact
message that names the field.  Adapters map them to exit codes (CLI) or
problem+json responses (REST).
"""

from __future__ import annotations

from collections.abc import Sequence


class SpinemetsError(Exception):
    """Base class of every error spinemets raises on purpose."""


class InvalidInputError(SpinemetsError, ValueError):
    """A value is not one of the allowed values or is out of range.

    Parameters
    ----------
    field:
        Dotted name of the offending field.
    message:
        What is wrong, including the allowed values where there is a closed set.
    """

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


class InsufficientDataError(SpinemetsError, ValueError):
    """A result cannot be given because named inputs are missing."""

    def __init__(self, fields: Sequence[str], what: str) -> None:
        self.fields = list(fields)
        self.what = what
        super().__init__(f"insufficient data for {what}: missing {', '.join(self.fields)}")


class ContradictoryInputError(SpinemetsError, ValueError):
    """Two or more inputs cannot all be true at once."""

    def __init__(self, fields: Sequence[str], message: str) -> None:
        self.fields = list(fields)
        self.message = message
        super().__init__(f"contradictory input ({', '.join(self.fields)}): {message}")


class UnknownSourceError(SpinemetsError, KeyError):
    """A knowledge-base item cites a source id that is not in the bibliography."""

    def __init__(self, source_id: str, item_id: str | None = None) -> None:
        self.source_id = source_id
        self.item_id = item_id
        where = f" (cited by {item_id})" if item_id else ""
        super().__init__(f"unknown source id {source_id!r}{where}")

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return str(self.args[0])


class UnknownItemError(SpinemetsError, KeyError):
    """A knowledge-base id (statement, table, source) does not exist."""

    def __init__(self, kind: str, item_id: str) -> None:
        self.kind = kind
        self.item_id = item_id
        super().__init__(f"unknown {kind} id {item_id!r}")

    def __str__(self) -> str:
        return str(self.args[0])


class KnowledgeBaseError(SpinemetsError):
    """The knowledge base failed validation; `problems` lists each finding."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("knowledge base invalid:\n" + "\n".join(f"- {p}" for p in self.problems))
