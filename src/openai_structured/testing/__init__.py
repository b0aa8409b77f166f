"""A scriptable OpenAI-compatible server on loopback, for tests and benchmarks.

    from openai_structured.testing import FakeOpenAIServer, Fault, Reply

    with FakeOpenAIServer() as server:
        server.queue(Reply.json({"name": "Ada"}), Fault.rate_limit(retry_after=1))
        server.queue(Reply.tool_call("get_weather", {"city": "Paris"}))
        client = server.client()
        ...
        assert server.requests[0].json["model"] == "gpt-4o"

See docs/testing.md.
"""

from ._script import (
    Choices,
    Fault,
    FinishReason,
    MalformedKind,
    Reply,
    ReplyOptions,
    ScriptItem,
    ToolCallReply,
    Usage,
)
from ._server import DEFAULT_API_KEY, CapturedRequest, FakeOpenAIServer, Headers

__all__ = [
    "DEFAULT_API_KEY",
    "CapturedRequest",
    "Choices",
    "FakeOpenAIServer",
    "Fault",
    "FinishReason",
    "Headers",
    "MalformedKind",
    "Reply",
    "ReplyOptions",
    "ScriptItem",
    "ToolCallReply",
    "Usage",
]
