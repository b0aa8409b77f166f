"""openai-structured: a prompt and a schema in, a validated Python object (or a stream) out.

This module is the list of public names; everything else is private or lives in the public
submodules ``schema``, ``errors``, ``testing``, ``registry`` and ``tokens``.
"""

from __future__ import annotations

__version__ = "0.1.0"

from ._stream import AsyncEventStream, EventStream
from .client import (
    AsyncStructuredClient,
    CallOptions,
    StreamOptions,
    StructuredClient,
    async_openai_structured_call,
    async_openai_structured_events,
    async_openai_structured_stream,
    openai_structured_call,
    openai_structured_events,
    openai_structured_stream,
)
from .errors import (
    APIResponseError,
    BufferOverflowError,
    ContentFilterError,
    EmptyResponseError,
    InvalidDateError,
    InvalidResponseFormatError,
    ModelNotSupportedError,
    ModelVersionError,
    NoProviderError,
    OpenAIClientError,
    RefusalError,
    SchemaError,
    StreamBufferError,
    StreamInterruptedError,
    StreamParseError,
    TokenLimitError,
    TokenParameterError,
    ValidationError,
    VersionTooOldError,
)
from .events import LogEvent, OnLog
from .registry import ModelCapabilities, ModelRegistry, get_registry
from .schema import to_strict_schema
from .streaming import (
    Finished,
    ItemCompleted,
    PartialUpdate,
    Refusal,
    RefusalDelta,
    StreamBuffer,
    StreamConfig,
    StreamEvent,
    ValueCompleted,
)
from .tokens import (
    estimate_cost,
    get_context_window_limit,
    get_default_token_limit,
    supports_structured_output,
    validate_token_limits,
)

__all__ = [
    "APIResponseError",
    "AsyncEventStream",
    "AsyncStructuredClient",
    "BufferOverflowError",
    "CallOptions",
    "ContentFilterError",
    "EmptyResponseError",
    "EventStream",
    "Finished",
    "InvalidDateError",
    "InvalidResponseFormatError",
    "ItemCompleted",
    "LogEvent",
    "ModelCapabilities",
    "ModelNotSupportedError",
    "ModelRegistry",
    "ModelVersionError",
    "NoProviderError",
    "OnLog",
    "OpenAIClientError",
    "PartialUpdate",
    "Refusal",
    "RefusalDelta",
    "RefusalError",
    "SchemaError",
    "StreamBuffer",
    "StreamBufferError",
    "StreamConfig",
    "StreamEvent",
    "StreamInterruptedError",
    "StreamOptions",
    "StreamParseError",
    "StructuredClient",
    "TokenLimitError",
    "TokenParameterError",
    "ValidationError",
    "ValueCompleted",
    "VersionTooOldError",
    "__version__",
    "async_openai_structured_call",
    "async_openai_structured_events",
    "async_openai_structured_stream",
    "estimate_cost",
    "get_context_window_limit",
    "get_default_token_limit",
    "get_registry",
    "openai_structured_call",
    "openai_structured_events",
    "openai_structured_stream",
    "supports_structured_output",
    "to_strict_schema",
    "validate_token_limits",
]
