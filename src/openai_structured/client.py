"""The entry points: build the request, send it through the SDK, decide the outcome.

Sync and async differ only in the lines that move bytes (``create`` vs ``await create``); the
request builder (:mod:`._request`), the per-API objects (:mod:`._apis`) and the outcome table
(:mod:`._outcome`) are shared with the streams.

The seed's model helpers (``supports_structured_output``, ``get_context_window_limit``,
``get_default_token_limit``) are importable from here too, as the seed documented.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any, Literal, Protocol, TypeVar, overload

from typing_extensions import TypedDict, Unpack

from ._call import CallRun
from ._clients import PendingClient, check_client, default_client, pending_default_client
from ._logging import LogSink, OnLog, redact_text
from ._reask import Budget, check_retries
from ._request import SAMPLING_PARAMETERS, OutputType, PreparedCall, prepare_call
from ._stream import (
    AsyncEventStream,
    AsyncValueStream,
    EventStream,
    StreamRun,
    ValueStream,
    aiterate,
    avalues,
    iterate,
    stream_options,
    values,
)
from ._tools import ToolCall
from ._transport import DEFAULT_MAX_RESPONSE_BYTES, Deadline, aread_body, read_body
from ._usage import StructuredResult, UsageTotals
from .errors import OpenAIClientError
from .registry import TOKEN_PARAMETERS
from .servers import ServerProfile, profile_for
from .streaming import StreamConfig, StreamEvent
from .tokens import get_context_window_limit, get_default_token_limit, supports_structured_output

__all__ = [
    "AsyncStructuredClient",
    "CallOptions",
    "StreamOptions",
    "StructuredClient",
    "async_openai_structured_call",
    "async_openai_structured_call_result",
    "async_openai_structured_events",
    "async_openai_structured_stream",
    "get_context_window_limit",
    "get_default_token_limit",
    "openai_structured_call",
    "openai_structured_call_result",
    "openai_structured_events",
    "openai_structured_stream",
    "supports_structured_output",
]

T = TypeVar("T")


class CallOptions(TypedDict, total=False):
    """Everything a call takes besides the client, the model and the schema."""

    system_prompt: str | None
    user_prompt: str | None
    messages: Sequence[Mapping[str, Any]] | None
    temperature: float | None
    top_p: float | None
    frequency_penalty: float | None
    presence_penalty: float | None
    reasoning_effort: str | None
    max_output_tokens: int | None
    max_completion_tokens: int | None
    max_tokens: int | None
    #: Total seconds for the answer to arrive (a deadline, not a per-read timeout).
    timeout: float | None
    #: Largest non-streamed response body read (default 16 MiB); streams use stream_config.
    max_response_bytes: int | None
    on_log: OnLog | None
    api: Literal["chat", "responses"]
    validate_schema: bool
    #: Strict-mode schema compilation; None = what the server profile supports.
    strict: bool | None
    #: Server profile name ("openai", "azure", "compatible", "vllm", "ollama", "llama.cpp").
    server: str | ServerProfile | None
    #: Choices to ask for; a call returns one result per choice when above 1 (calls only).
    n: int | None
    #: Re-asks after an answer fails validation (the errors are sent back to the model).
    max_validation_retries: int | None
    #: A token budget across every attempt: a request that would pass it is not sent.
    max_total_tokens: int | None
    # Tools (besides tools= itself), passed through to the API unchanged:
    tool_choice: str | Mapping[str, Any] | None
    parallel_tool_calls: bool | None
    # Passed through to the SDK unchanged:
    seed: int | None
    stop: str | list[str] | None
    metadata: dict[str, str] | None
    store: bool | None
    service_tier: str | None
    user: str | None
    extra_headers: Mapping[str, str] | None
    extra_query: Mapping[str, object] | None
    extra_body: object | None


_OWN = frozenset(
    {
        "system_prompt",
        "user_prompt",
        "messages",
        "timeout",
        "on_log",
        "api",
        "validate_schema",
        "strict",
        "server",
        "max_response_bytes",
        "tools",
        "n",
        "max_validation_retries",
        "max_total_tokens",
    }
)
#: The sampling and token parameters, checked against the model's rules before sending.
_PARAMS = frozenset(SAMPLING_PARAMETERS) | frozenset(TOKEN_PARAMETERS)


def _prepare(
    profile: ServerProfile,
    model: str,
    output_schema: OutputType | None,
    schema: Mapping[str, Any] | None,
    options: Mapping[str, Any],
    *,
    stream: bool,
) -> PreparedCall:
    params = {k: v for k, v in options.items() if k in _PARAMS}
    extra = {k: v for k, v in options.items() if k not in _PARAMS and k not in _OWN}
    return prepare_call(
        model=model,
        profile=profile,
        api=options.get("api", "chat"),
        stream=stream,
        output_schema=output_schema,
        schema=schema,
        system_prompt=options.get("system_prompt"),
        user_prompt=options.get("user_prompt"),
        messages=options.get("messages"),
        validate_schema=options.get("validate_schema", True),
        strict=options.get("strict"),
        timeout=options.get("timeout"),
        params=params,
        extra={k: v for k, v in extra.items() if v is not None or k not in _TOOL_OPTIONS},
        tools=options.get("tools"),
        n=options.get("n"),
    )


#: Sent as given when set; not sent when None.
_TOOL_OPTIONS = frozenset({"tool_choice", "parallel_tool_calls"})


def _sink(client: Any, on_log: OnLog | None, *, asynchronous: bool) -> LogSink:
    sink = LogSink(on_log, async_mode=asynchronous)
    if on_log is not None:
        sink.add_secret(getattr(client, "api_key", None))
    return sink


def _log_start(log: LogSink, call: PreparedCall) -> None:
    log.emit(
        "request.start",
        model=call.model,
        api=call.api.name,
        stream=call.stream,
        parameters={
            k: v for k, v in call.kwargs.items() if k not in ("messages", "input", "model")
        },
    )


def _body_bounds(options: Mapping[str, Any]) -> tuple[Deadline, int]:
    limit = options.get("max_response_bytes")
    if limit is None:
        limit = DEFAULT_MAX_RESPONSE_BYTES
    elif isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise TypeError(f"max_response_bytes= must be a positive integer, got {limit!r}.")
    return Deadline(options.get("timeout")), limit


def _call_run(call: PreparedCall, options: Mapping[str, Any], log: LogSink) -> CallRun:
    retries = check_retries(options.get("max_validation_retries"))
    if retries and call.n > 1:
        raise OpenAIClientError(
            f"max_validation_retries works with n=1: with n={call.n} each re-ask would pay for "
            f"{call.n} answers again. Ask for one choice, or catch the choice's error "
            "(.choice_index, .choice_results)."
        )
    budget = Budget(options.get("max_total_tokens"), call.model, call.limit.requested)
    return CallRun(call, log, retries=retries, budget=budget)


def _call(
    client: Any,
    model: str,
    output_schema: OutputType | None,
    schema: Mapping[str, Any] | None,
    options: Mapping[str, Any],
    totals: UsageTotals | None = None,
) -> StructuredResult[Any]:
    client = check_client(client, asynchronous=False) or default_client(asynchronous=False)
    call = _prepare(
        profile_for(client, options.get("server")), model, output_schema, schema, options,
        stream=False,
    )  # fmt: skip
    deadline, limit = _body_bounds(options)
    log = _sink(client, options.get("on_log"), asynchronous=False)
    run: CallRun | None = None
    try:
        run = _call_run(call, options, log)
        if log:
            _log_start(log, call)
        endpoint = call.api.endpoint(client).with_streaming_response
        while True:
            kwargs = run.request()
            try:
                with endpoint.create(**kwargs) as raw:
                    body = read_body(raw, deadline, limit)
            except Exception as exc:
                run.request_failed(exc)
                raise
            if run.receive(body):
                return run.result()
    finally:
        if run is not None:
            run.count_in(totals)
        log.close()


async def _async_call(
    client: Any,
    model: str,
    output_schema: OutputType | None,
    schema: Mapping[str, Any] | None,
    options: Mapping[str, Any],
    totals: UsageTotals | None = None,
) -> StructuredResult[Any]:
    client = check_client(client, asynchronous=True)
    if client is None:
        # Off the event loop: the embedded model's server may have to start (~2 s).
        client = await asyncio.to_thread(default_client, asynchronous=True)
    call = _prepare(
        profile_for(client, options.get("server")), model, output_schema, schema, options,
        stream=False,
    )  # fmt: skip
    return await async_send(client, call, options, totals)


class Gate(Protocol):
    """What paces a call's requests (bulk runs: the rate limiter shared by all workers)."""

    async def acquire(self, kwargs: Mapping[str, Any]) -> object:
        """Wait until the request ``kwargs`` may be sent; a token for :meth:`sent`."""

    def sent(self, token: object, headers: Mapping[str, str] | None) -> None:
        """The request got an answer (``headers``: the response's)."""

    def failed(self, token: object, exc: BaseException) -> float | None:
        """The request failed: seconds to wait before sending it again, or None to give up."""


async def async_send(
    client: Any,
    call: PreparedCall,
    options: Mapping[str, Any],
    totals: UsageTotals | None = None,
    gate: Gate | None = None,
) -> StructuredResult[Any]:
    """The async call loop for a prepared call; ``gate`` paces (and retries) each request."""
    deadline, limit = _body_bounds(options)
    log = _sink(client, options.get("on_log"), asynchronous=True)
    run: CallRun | None = None
    try:
        run = _call_run(call, options, log)
        if log:
            _log_start(log, call)
        endpoint = call.api.endpoint(client).with_streaming_response
        while True:
            kwargs = run.request()
            while True:
                token = None if gate is None else await gate.acquire(kwargs)
                try:
                    async with endpoint.create(**kwargs) as raw:
                        body = await aread_body(raw, deadline, limit)
                except Exception as exc:
                    wait = None if gate is None else gate.failed(token, exc)
                    if wait is None:
                        run.request_failed(exc)
                        raise
                    await asyncio.sleep(wait)
                    continue
                finally:
                    await log.flush()
                if gate is not None:
                    gate.sent(token, raw.headers)
                break
            if run.receive(body):
                return run.result()
    finally:
        if run is not None:
            run.count_in(totals)
        await log.flush()


# --- calls -------------------------------------------------------------------------------------


@overload
def openai_structured_call(
    *,
    client: Any = ...,
    model: str,
    output_schema: type[T],
    schema: None = ...,
    tools: None = ...,
    **options: Unpack[CallOptions],
) -> T: ...
@overload
def openai_structured_call(
    *,
    client: Any = ...,
    model: str,
    output_schema: None = ...,
    schema: Mapping[str, Any],
    tools: None = ...,
    **options: Unpack[CallOptions],
) -> dict[str, Any]: ...
@overload
def openai_structured_call(
    *,
    client: Any = ...,
    model: str,
    output_schema: None = ...,
    schema: None = ...,
    tools: Sequence[Any],
    **options: Unpack[CallOptions],
) -> list[ToolCall]: ...
@overload
def openai_structured_call(
    *,
    client: Any = ...,
    model: str,
    output_schema: type[T],
    schema: None = ...,
    tools: Sequence[Any],
    **options: Unpack[CallOptions],
) -> T | list[ToolCall]: ...
@overload
def openai_structured_call(
    *,
    client: Any = ...,
    model: str,
    output_schema: OutputType | None = ...,
    schema: Mapping[str, Any] | None = ...,
    tools: Sequence[Any] | None = ...,
    **options: Unpack[CallOptions],
) -> Any: ...
def openai_structured_call(
    *,
    client: Any = None,
    model: str,
    output_schema: OutputType | None = None,
    schema: Mapping[str, Any] | None = None,
    tools: Sequence[Any] | None = None,
    **options: Unpack[CallOptions],
) -> Any:
    """One validated result: an ``output_schema`` instance, or a dict matching ``schema``.

    With ``tools=``: a ``list[ToolCall]`` when the model calls tools (always, without a
    schema). With ``n > 1``: a list with one result per choice.
    """
    return _call(client, model, output_schema, schema, {**options, "tools": tools}).value


def openai_structured_call_result(
    *,
    client: Any = None,
    model: str,
    output_schema: OutputType | None = None,
    schema: Mapping[str, Any] | None = None,
    tools: Sequence[Any] | None = None,
    **options: Unpack[CallOptions],
) -> StructuredResult[Any]:
    """:func:`openai_structured_call` with what it cost: a :class:`StructuredResult` (``value``,
    ``usage`` summed over every attempt, estimated ``cost``, ``response_ids``, ``attempts``)."""
    return _call(client, model, output_schema, schema, {**options, "tools": tools})


@overload
async def async_openai_structured_call(
    *,
    client: Any = ...,
    model: str,
    output_schema: type[T],
    schema: None = ...,
    tools: None = ...,
    **options: Unpack[CallOptions],
) -> T: ...
@overload
async def async_openai_structured_call(
    *,
    client: Any = ...,
    model: str,
    output_schema: None = ...,
    schema: Mapping[str, Any],
    tools: None = ...,
    **options: Unpack[CallOptions],
) -> dict[str, Any]: ...
@overload
async def async_openai_structured_call(
    *,
    client: Any = ...,
    model: str,
    output_schema: None = ...,
    schema: None = ...,
    tools: Sequence[Any],
    **options: Unpack[CallOptions],
) -> list[ToolCall]: ...
@overload
async def async_openai_structured_call(
    *,
    client: Any = ...,
    model: str,
    output_schema: type[T],
    schema: None = ...,
    tools: Sequence[Any],
    **options: Unpack[CallOptions],
) -> T | list[ToolCall]: ...
@overload
async def async_openai_structured_call(
    *,
    client: Any = ...,
    model: str,
    output_schema: OutputType | None = ...,
    schema: Mapping[str, Any] | None = ...,
    tools: Sequence[Any] | None = ...,
    **options: Unpack[CallOptions],
) -> Any: ...
async def async_openai_structured_call(
    *,
    client: Any = None,
    model: str,
    output_schema: OutputType | None = None,
    schema: Mapping[str, Any] | None = None,
    tools: Sequence[Any] | None = None,
    **options: Unpack[CallOptions],
) -> Any:
    """The async twin of :func:`openai_structured_call`."""
    opts = {**options, "tools": tools}
    return (await _async_call(client, model, output_schema, schema, opts)).value


async def async_openai_structured_call_result(
    *,
    client: Any = None,
    model: str,
    output_schema: OutputType | None = None,
    schema: Mapping[str, Any] | None = None,
    tools: Sequence[Any] | None = None,
    **options: Unpack[CallOptions],
) -> StructuredResult[Any]:
    """The async twin of :func:`openai_structured_call_result`."""
    return await _async_call(client, model, output_schema, schema, {**options, "tools": tools})


class StructuredClient:
    """Object style: holds a client and default options; same behaviour as the functions.

    ``totals`` (a :class:`UsageTotals`) adds up every call and stream made through it: calls,
    attempts, token usage and estimated cost, failed calls included (their tokens were paid).
    """

    def __init__(self, client: Any = None, **defaults: Unpack[CallOptions]) -> None:
        client = check_client(client, asynchronous=False)
        self.client = client if client is not None else default_client(asynchronous=False)
        self.defaults: dict[str, Any] = dict(defaults)
        self.totals = UsageTotals()

    def __repr__(self) -> str:
        # A base URL can carry a secret (user:password@host, ?key=...): shown redacted.
        key = getattr(self.client, "api_key", None)
        url = redact_text(str(getattr(self.client, "base_url", "")), [key])
        return f"{type(self).__name__}(base_url={url!r})"

    def complete(
        self,
        model: str,
        *,
        output_schema: OutputType | None = None,
        schema: Mapping[str, Any] | None = None,
        tools: Sequence[Any] | None = None,
        **options: Unpack[CallOptions],
    ) -> Any:
        """One validated result (see :func:`openai_structured_call`)."""
        return self.complete_result(
            model, output_schema=output_schema, schema=schema, tools=tools, **options
        ).value

    def complete_result(
        self,
        model: str,
        *,
        output_schema: OutputType | None = None,
        schema: Mapping[str, Any] | None = None,
        tools: Sequence[Any] | None = None,
        **options: Unpack[CallOptions],
    ) -> StructuredResult[Any]:
        """The result with its usage and cost (see :func:`openai_structured_call_result`)."""
        merged = {**self.defaults, **options, "tools": tools}
        return _call(self.client, model, output_schema, schema, merged, self.totals)

    def stream(
        self,
        model: str,
        *,
        output_schema: OutputType | None = None,
        schema: Mapping[str, Any] | None = None,
        tools: Sequence[Any] | None = None,
        **options: Unpack[StreamOptions],
    ) -> ValueStream:
        """Each validated top-level value (see :func:`openai_structured_stream`)."""
        merged = {**self.defaults, **options, "tools": tools}
        return _values(self.client, model, output_schema, schema, merged, self.totals)


class AsyncStructuredClient:
    """Async object style (see :class:`StructuredClient`, ``totals`` included)."""

    def __init__(self, client: Any = None, **defaults: Unpack[CallOptions]) -> None:
        client = check_client(client, asynchronous=True)
        self.client = client if client is not None else default_client(asynchronous=True)
        self.defaults: dict[str, Any] = dict(defaults)
        self.totals = UsageTotals()

    def __repr__(self) -> str:
        # A base URL can carry a secret (user:password@host, ?key=...): shown redacted.
        key = getattr(self.client, "api_key", None)
        url = redact_text(str(getattr(self.client, "base_url", "")), [key])
        return f"{type(self).__name__}(base_url={url!r})"

    async def complete(
        self,
        model: str,
        *,
        output_schema: OutputType | None = None,
        schema: Mapping[str, Any] | None = None,
        tools: Sequence[Any] | None = None,
        **options: Unpack[CallOptions],
    ) -> Any:
        """One validated result (see :func:`async_openai_structured_call`)."""
        result = await self.complete_result(
            model, output_schema=output_schema, schema=schema, tools=tools, **options
        )
        return result.value

    async def complete_result(
        self,
        model: str,
        *,
        output_schema: OutputType | None = None,
        schema: Mapping[str, Any] | None = None,
        tools: Sequence[Any] | None = None,
        **options: Unpack[CallOptions],
    ) -> StructuredResult[Any]:
        """The result with its usage and cost (see :func:`openai_structured_call_result`)."""
        merged = {**self.defaults, **options, "tools": tools}
        return await _async_call(self.client, model, output_schema, schema, merged, self.totals)

    def stream(
        self,
        model: str,
        *,
        output_schema: OutputType | None = None,
        schema: Mapping[str, Any] | None = None,
        tools: Sequence[Any] | None = None,
        **options: Unpack[StreamOptions],
    ) -> AsyncValueStream:
        """Each validated top-level value (see :func:`async_openai_structured_stream`)."""
        merged = {**self.defaults, **options, "tools": tools}
        return _avalues(self.client, model, output_schema, schema, merged, self.totals)


# --- streams -----------------------------------------------------------------------------------


class StreamOptions(CallOptions, total=False):
    """Call options plus the stream's memory and parse limits."""

    stream_config: StreamConfig | None


def _start_stream(
    client: Any,
    model: str,
    output_schema: OutputType | None,
    schema: Mapping[str, Any] | None,
    options: Mapping[str, Any],
    *,
    asynchronous: bool,
    partials: bool,
    items: bool,
    totals: UsageTotals | None = None,
) -> tuple[Any, StreamRun]:
    client = check_client(client, asynchronous=asynchronous)
    if client is None:
        # Async: the embedded model's server start would block the event loop, so it is
        # started off the loop when iteration begins (the request is checked now).
        client = pending_default_client() if asynchronous else default_client(asynchronous=False)
    rest, config = stream_options(options)
    server = rest.get("server")
    if isinstance(client, PendingClient) and server is None:
        profile = client.profile
    else:
        profile = profile_for(client, server)
    call = _prepare(profile, model, output_schema, schema, rest, stream=True)
    retries = check_retries(rest.get("max_validation_retries"))
    budget = Budget(rest.get("max_total_tokens"), call.model, call.limit.requested)
    log = _sink(client, rest.get("on_log"), asynchronous=asynchronous)
    if log:
        _log_start(log, call)
    run = StreamRun(
        call, log, partials=partials, items=items, config=config, retries=retries,
        budget=budget, on_summary=totals.add if totals is not None else None,
    )  # fmt: skip
    return client, run


def _values(
    client: Any,
    model: str,
    output_schema: OutputType | None,
    schema: Mapping[str, Any] | None,
    options: Mapping[str, Any],
    totals: UsageTotals | None = None,
) -> ValueStream:
    client, run = _start_stream(
        client, model, output_schema, schema, options, asynchronous=False, partials=False,
        items=False, totals=totals,
    )  # fmt: skip
    return ValueStream(run, values(iterate(client, run), hold=run.retries > 0))


def _avalues(
    client: Any,
    model: str,
    output_schema: OutputType | None,
    schema: Mapping[str, Any] | None,
    options: Mapping[str, Any],
    totals: UsageTotals | None = None,
) -> AsyncValueStream:
    client, run = _start_stream(
        client, model, output_schema, schema, options, asynchronous=True, partials=False,
        items=False, totals=totals,
    )  # fmt: skip
    return AsyncValueStream(run, avalues(aiterate(client, run), hold=run.retries > 0))


def openai_structured_stream(
    *,
    client: Any = None,
    model: str,
    output_schema: OutputType | None = None,
    schema: Mapping[str, Any] | None = None,
    tools: Sequence[Any] | None = None,
    **options: Unpack[StreamOptions],
) -> ValueStream:
    """Yield each complete top-level value as soon as it closes, validated (and, with
    ``tools=``, each :class:`ToolCall` as soon as its arguments close).

    The request is checked (and the schema compiled) when this is called, before iterating.
    Once the stream is exhausted its ``summary`` has the usage and cost of every attempt.
    """
    return _values(client, model, output_schema, schema, {**options, "tools": tools})


def async_openai_structured_stream(
    *,
    client: Any = None,
    model: str,
    output_schema: OutputType | None = None,
    schema: Mapping[str, Any] | None = None,
    tools: Sequence[Any] | None = None,
    **options: Unpack[StreamOptions],
) -> AsyncValueStream:
    """The async twin of :func:`openai_structured_stream` (use ``async for``)."""
    return _avalues(client, model, output_schema, schema, {**options, "tools": tools})


def openai_structured_events(
    *,
    client: Any = None,
    model: str,
    output_schema: OutputType | None = None,
    schema: Mapping[str, Any] | None = None,
    tools: Sequence[Any] | None = None,
    partials: bool = True,
    items: bool = True,
    **options: Unpack[StreamOptions],
) -> EventStream[StreamEvent]:
    """A stream of typed events: ``PartialUpdate``, ``ItemCompleted``, ``ValueCompleted``,
    ``RefusalDelta``/``Refusal``, ``ToolCallPartial``/``ToolCallCompleted``, ``Retrying`` and
    a final ``Finished`` with the result, usage and ``summary``.

    Use as ``with openai_structured_events(...) as stream: for event in stream: ...``.
    """
    client, run = _start_stream(
        client, model, output_schema, schema, {**options, "tools": tools},
        asynchronous=False, partials=partials, items=items,
    )  # fmt: skip
    return EventStream(iterate(client, run), run)


def async_openai_structured_events(
    *,
    client: Any = None,
    model: str,
    output_schema: OutputType | None = None,
    schema: Mapping[str, Any] | None = None,
    tools: Sequence[Any] | None = None,
    partials: bool = True,
    items: bool = True,
    **options: Unpack[StreamOptions],
) -> AsyncEventStream[StreamEvent]:
    """The async twin of :func:`openai_structured_events` (``async with`` / ``async for``)."""
    client, run = _start_stream(
        client, model, output_schema, schema, {**options, "tools": tools},
        asynchronous=True, partials=partials, items=items,
    )  # fmt: skip
    return AsyncEventStream(aiterate(client, run), run)
