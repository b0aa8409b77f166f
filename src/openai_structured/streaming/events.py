"""The events a structured stream yields (SPEC §2.4), and what each costs.

=================  ==========================================================================
event              cost
=================  ==========================================================================
PartialUpdate      O(1) to emit: at most one per fed chunk of bytes, only with
                   ``partials=True``. It refers to the live value being built; ``.value`` is
                   that live view (O(1)), ``.snapshot()`` a deep copy with the unfinished string
                   (O(size)), ``.as_model()`` a validated all-optional model (O(size)); both
                   only when called.
ItemCompleted      one per array element at any depth, only with ``items=True``; the item is
                   validated against its own type (O(item size)).
ValueCompleted     one per top-level value; the value is validated once (O(value size)).
RefusalDelta       one per fed chunk that carried refusal text.
Refusal            once, when the refusal is complete (the stream then ends in RefusalError).
Finished           once, from ``close()``, with the result, usage and finish reason.
=================  ==========================================================================
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import ValidationError
from .json_parser import PathItem

if TYPE_CHECKING:
    from pydantic import BaseModel

    from .json_parser import JSONStreamParser

__all__ = [
    "Finished",
    "ItemCompleted",
    "PartialUpdate",
    "Refusal",
    "RefusalDelta",
    "StalePartialError",
    "StreamEvent",
    "ValueCompleted",
]


class StalePartialError(RuntimeError):
    """A :class:`PartialUpdate` was read after the stream moved on past it."""


class PartialUpdate:
    """The value so far, after one chunk of the stream.

    The parser builds the value *in place*, so this event holds no copy: read it (``value``,
    ``snapshot()``, ``as_model()``) when you receive it. ``snapshot()``, ``as_model()`` and
    ``path`` raise :class:`StalePartialError` once the stream has consumed more text, rather
    than silently showing a later state; to keep a partial, keep its ``snapshot()``.

    Immutable like the other events, but a plain slotted class rather than a frozen dataclass:
    it is created once per chunk, and a frozen dataclass costs three times as much to build.
    """

    __slots__ = ("_model", "_parser", "_position")

    def __init__(
        self, position: int, parser: JSONStreamParser, model: type[BaseModel] | None = None
    ) -> None:
        self._position = position
        self._parser = parser
        self._model = model

    def __repr__(self) -> str:
        return f"PartialUpdate(position={self._position})"

    @property
    def position(self) -> int:
        """Characters of the answer consumed when this was emitted."""
        return self._position

    @property
    def path(self) -> tuple[PathItem, ...]:
        """Where the answer is being written: the innermost open container."""
        self._check()
        return self._parser.path

    def _check(self) -> None:
        if self._parser.position != self._position:
            raise StalePartialError(
                "This PartialUpdate is stale: the stream has moved on. Call snapshot() or "
                "as_model() when the event arrives, and keep that copy."
            )

    @property
    def value(self) -> Any:
        """The live value (mutated in place as the stream continues); no unfinished string."""
        return self._parser.value

    def snapshot(self) -> Any:
        """A deep copy of the value so far, including the unfinished trailing string."""
        self._check()
        return self._parser.snapshot()

    def as_model(self) -> BaseModel:
        """The value so far as the all-optional twin of the output model (every field may be
        None; a field whose partial value does not validate yet is None)."""
        if self._model is None:
            raise TypeError(
                "as_model() needs a pydantic output model; with a JSON Schema use snapshot()"
            )
        from .validation import partial_model

        data = self.snapshot()
        return partial_model(self._model).model_validate(data if isinstance(data, dict) else {})


@dataclass(frozen=True, slots=True)
class ItemCompleted:
    """An array element (at any depth) closed. ``item`` is validated against its type from the
    schema (or is the raw value when the type at ``path`` is not known); ``raw`` is the parsed
    JSON; ``error`` is the item's :class:`ValidationError` when it does not match (then ``item``
    is the raw value and the final result will fail validation too)."""

    path: tuple[PathItem, ...]
    item: Any
    raw: Any = field(repr=False, default=None)
    error: ValidationError | None = None


@dataclass(frozen=True, slots=True)
class ValueCompleted:
    """A top-level JSON value closed; ``value`` is the validated result, ``raw`` the JSON."""

    value: Any
    raw: Any = field(repr=False, default=None)
    index: int = 0
    """0 for the first value of the stream, 1 for the next, ..."""


@dataclass(frozen=True, slots=True)
class RefusalDelta:
    """More of the model's refusal text."""

    text: str


@dataclass(frozen=True, slots=True)
class Refusal:
    """The model's whole refusal (the stream then ends with ``RefusalError``)."""

    text: str


@dataclass(frozen=True, slots=True)
class Finished:
    """The stream ended normally. ``result`` is the last validated value (usually the only
    one); ``results`` the values still kept (the most recent ones within the stream's memory
    budget, see ``StreamDecoder.results``)."""

    result: Any
    usage: dict[str, Any] | None = None
    finish_reason: str | None = None
    response_id: str | None = None
    results: tuple[Any, ...] = ()


StreamEvent = PartialUpdate | ItemCompleted | ValueCompleted | RefusalDelta | Refusal | Finished
