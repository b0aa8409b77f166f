"""The sans-I/O streaming core: SSE decoding, the two OpenAI stream protocols, an incremental
JSON parser, validation by path, and the stream decoder that composes them (SPEC §2.4, §8).

Nothing here does I/O: feed bytes or text, get events. The sync and async client loops around
:class:`StreamDecoder` are a few lines each. The decoder is a state machine
(:class:`StreamState`: RECEIVING, DONE, CLOSED, ERROR; the table is in :mod:`.decoder`).
"""

from __future__ import annotations

from .buffer import StreamBuffer, StreamConfig
from .decoder import StreamDecoder, StreamState, StreamStateError
from .events import (
    Finished,
    ItemCompleted,
    PartialUpdate,
    Refusal,
    RefusalDelta,
    Retrying,
    StalePartialError,
    StreamEvent,
    ToolCallCompleted,
    ToolCallPartial,
    ValueCompleted,
)
from .json_parser import JSONParseError, JSONStreamParser, ParsedItem, ParsedValue
from .protocol import StreamProtocolError, StreamServerError
from .sse import SSEDecoder, SSEEvent
from .validation import ItemValidators, partial_model, value_validator

__all__ = [
    "Finished",
    "ItemCompleted",
    "ItemValidators",
    "JSONParseError",
    "JSONStreamParser",
    "ParsedItem",
    "ParsedValue",
    "PartialUpdate",
    "Refusal",
    "RefusalDelta",
    "Retrying",
    "SSEDecoder",
    "SSEEvent",
    "StalePartialError",
    "StreamBuffer",
    "StreamConfig",
    "StreamDecoder",
    "StreamEvent",
    "StreamProtocolError",
    "StreamServerError",
    "StreamState",
    "StreamStateError",
    "ToolCallCompleted",
    "ToolCallPartial",
    "ValueCompleted",
    "partial_model",
    "value_validator",
]
