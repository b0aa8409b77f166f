"""A scriptable OpenAI-compatible server on loopback, for tests and benchmarks.

    from openai_structured.testing import BatchPlan, FakeOpenAIServer, Fault, RateLimits, Reply

    with FakeOpenAIServer() as server:
        server.queue(Reply.json({"name": "Ada"}), Fault.rate_limit(retry_after=1))
        server.queue(Reply.tool_call("get_weather", {"city": "Paris"}))
        server.rate_limits = RateLimits(requests_per_minute=5, window=1.0)  # 429 beyond
        server.batches.plan(BatchPlan(polls=2))  # Files and Batch APIs too
        client = server.client()
        ...
        assert server.requests[0].json["model"] == "gpt-4o"

See docs/testing.md.
"""

from ._batches import BatchEmulator, BatchEnd, BatchPlan, LineError
from ._latency import Latency
from ._limits import RateLimits
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
from ._server import DEFAULT_API_KEY, CapturedRequest, FakeOpenAIServer, Headers, Responder

__all__ = [
    "DEFAULT_API_KEY",
    "BatchEmulator",
    "BatchEnd",
    "BatchPlan",
    "CapturedRequest",
    "Choices",
    "FakeOpenAIServer",
    "Fault",
    "FinishReason",
    "Headers",
    "Latency",
    "LineError",
    "MalformedKind",
    "RateLimits",
    "Reply",
    "ReplyOptions",
    "Responder",
    "ScriptItem",
    "ToolCallReply",
    "Usage",
]
