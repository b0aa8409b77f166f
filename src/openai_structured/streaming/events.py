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
ToolCallPartial    like PartialUpdate, for a function call's arguments (at most one per call
                   per fed chunk, only with ``partials=True``).
ToolCallCompleted  one per function call, when its arguments close; validated once.
Retrying           once per re-ask (``max_validation_retries``): the attempt that failed and
                   its errors; the next attempt's events follow.
Finished           once, from ``close()``, with the result, usage and finish reason.
=================  ==========================================================================
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import OpenAIClientError, ValidationError
from .json_parser import PathItem

if TYPE_CHECKING:
    from pydantic import BaseModel

    from .._tools import ToolCall
    from .._usage import StructuredResult
    from .json_parser import JSONStreamParser

__all__ = [
    "Finished",
    "ItemCompleted",
    "PartialUpdate",
    "Refusal",
    "RefusalDelta",
    "Retrying",
    "StalePartialError",
    "StreamEvent",
    "ToolCallCompleted",
    "ToolCallPartial",
    "ValueCompleted",
]


class StalePartialError(RuntimeError):
    """A :class:`PartialUpdate` was read after the stream moved on past it."""


class _LivePartial:
    """A view of a value the parser is building (see :class:`PartialUpdate`)."""

    __slots__ = ("_model", "_parser", "_position", "_view")

    def __init__(
        self,
        position: int,
        parser: JSONStreamParser,
        model: type[BaseModel] | None = None,
        view: Callable[[Any], Any] | None = None,
    ) -> None:
        self._position = position
        self._parser = parser
        self._model = model
        self._view = view  # the sent shape -> the declared one, when they differ

    def __repr__(self) -> str:
        return f"{type(self).__name__}(position={self._position})"

    @property
    def position(self) -> int:
        """Characters of the text consumed when this was emitted."""
        return self._position

    @property
    def path(self) -> tuple[PathItem, ...]:
        """Where the value is being written: the innermost open container."""
        self._check()
        return self._parser.path

    def _check(self) -> None:
        if self._parser.position != self._position:
            raise StalePartialError(
                f"This {type(self).__name__} is stale: the stream has moved on. Call "
                "snapshot() or as_model() when the event arrives, and keep that copy."
            )

    @property
    def value(self) -> Any:
        """The live value (mutated in place as the stream continues); no unfinished string. It
        is in the shape sent, which differs from the declared one when the schema compiler
        rewrote it (maps as entries, ...): ``snapshot()`` gives the declared shape."""
        return self._parser.value

    def snapshot(self) -> Any:
        """A deep copy of the value so far, including the unfinished trailing string, in the
        declared shape (a map given as entries is a dict, a wrapped root unwrapped)."""
        self._check()
        value = self._parser.snapshot()
        return value if self._view is None else self._view(value)

    def as_model(self) -> BaseModel:
        """The value so far as the all-optional twin of the model (every field may be None; a
        field whose partial value does not validate yet is None)."""
        if self._model is None:
            raise TypeError(
                "as_model() needs a pydantic output model; with a JSON Schema use snapshot()"
            )
        from .validation import partial_model

        data = self.snapshot()
        return partial_model(self._model).model_validate(data if isinstance(data, dict) else {})


class PartialUpdate(_LivePartial):
    """The value so far, after one chunk of the stream.

    The parser builds the value *in place*, so this event holds no copy: read it (``value``,
    ``snapshot()``, ``as_model()``) when you receive it. ``snapshot()``, ``as_model()`` and
    ``path`` raise :class:`StalePartialError` once the stream has consumed more text, rather
    than silently showing a later state; to keep a partial, keep its ``snapshot()``.

    Immutable like the other events, but a plain slotted class rather than a frozen dataclass:
    it is created once per chunk, and a frozen dataclass costs three times as much to build.
    """

    __slots__ = ()


class ToolCallPartial(_LivePartial):
    """A function call's arguments so far (``index``, ``id``, ``name`` of the call), after one
    chunk: ``value``/``snapshot()``/``as_model()`` as for :class:`PartialUpdate` (``as_model()``
    needs a model tool), with the same cost and staleness rules."""

    __slots__ = ("id", "index", "name")

    def __init__(
        self,
        position: int,
        parser: JSONStreamParser,
        model: type[BaseModel] | None,
        index: int,
        id: str | None,
        name: str,
        view: Callable[[Any], Any] | None = None,
    ) -> None:
        super().__init__(position, parser, model, view)
        self.index = index
        self.id = id
        self.name = name

    def __repr__(self) -> str:
        return f"ToolCallPartial(index={self.index}, name={self.name!r}, position={self.position})"


@dataclass(frozen=True, slots=True)
class ToolCallCompleted:
    """A function call's arguments closed and validated: ``call`` is the :class:`ToolCall`."""

    call: ToolCall


@dataclass(frozen=True, slots=True)
class Retrying:
    """An attempt failed validation and the conversation is sent again
    (``max_validation_retries``): ``attempt`` is the failed attempt's number (1, 2, ...),
    ``error`` its error and ``errors`` its field errors (empty when it was not JSON). Discard
    what that attempt's events said; the next attempt's events follow."""

    attempt: int
    error: OpenAIClientError
    errors: tuple[dict[str, Any], ...] = ()


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
    one), or the list of :class:`ToolCall` when the model called tools instead of answering;
    ``results`` the values still kept (the most recent ones within the stream's memory budget,
    see ``StreamDecoder.results``); ``tool_calls`` the calls made; ``usage`` this response's;
    ``summary`` (from the entry points) the :class:`StructuredResult` with usage and cost summed
    over every attempt."""

    result: Any
    usage: dict[str, Any] | None = None
    finish_reason: str | None = None
    response_id: str | None = None
    results: tuple[Any, ...] = ()
    tool_calls: tuple[ToolCall, ...] = ()
    summary: StructuredResult[Any] | None = None


StreamEvent = (
    PartialUpdate
    | ItemCompleted
    | ValueCompleted
    | RefusalDelta
    | Refusal
    | ToolCallPartial
    | ToolCallCompleted
    | Retrying
    | Finished
)
