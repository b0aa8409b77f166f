"""openai-structured: a prompt and a schema in, a validated Python object (or a stream) out.

This module is the list of public names; everything else is private or lives in the public
submodules ``schema``, ``errors``, ``testing``, ``registry`` and ``tokens``.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .client import (
    AsyncStructuredClient,
    CallOptions,
    StructuredClient,
    async_openai_structured_call,
    openai_structured_call,
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
    OpenAIClientError,
    RefusalError,
    SchemaError,
    StreamBufferError,
    StreamInterruptedError,
    StreamParseError,
    TokenLimitError,
    TokenParameterError,
    ValidationError,
)
from .events import LogEvent, OnLog
from .schema import to_strict_schema

__all__ = [
    "APIResponseError",
    "AsyncStructuredClient",
    "BufferOverflowError",
    "CallOptions",
    "ContentFilterError",
    "EmptyResponseError",
    "InvalidDateError",
    "InvalidResponseFormatError",
    "LogEvent",
    "ModelNotSupportedError",
    "ModelVersionError",
    "OnLog",
    "OpenAIClientError",
    "RefusalError",
    "SchemaError",
    "StreamBufferError",
    "StreamInterruptedError",
    "StreamParseError",
    "StructuredClient",
    "TokenLimitError",
    "TokenParameterError",
    "ValidationError",
    "__version__",
    "async_openai_structured_call",
    "openai_structured_call",
    "to_strict_schema",
]
