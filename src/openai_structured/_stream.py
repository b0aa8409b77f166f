"""Streams: the thin loops that move bytes from the SDK into the sans-I/O :class:`StreamDecoder`.

The SDK still does auth, base URL, retries and HTTP status errors (through its raw streaming
response); we read the raw SSE bytes ourselves, because building the SDK's pydantic chunk object
per delta alone costs 15x the floor (SPEC §9). Everything but the two loops is shared.

Failures while streaming (status errors, dropped connections, timeouts, error events) are raised
as a class that is both :class:`StreamInterruptedError` and the SDK's own class, carrying what
was received so far.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from types import TracebackType
from typing import Any, Generic, TypeVar

import openai

from ._call import attach_attempts
from ._clients import PendingClient
from ._logging import LogSink, redact_text
from ._outcome import Answer
from ._reask import RETRYABLE, Budget, exhausted, reask
from ._request import PreparedCall
from ._transport import Deadline
from ._usage import StructuredResult, result_of
from .errors import (
    APIResponseError,
    OpenAIClientError,
    StreamServerError,
    ValidationError,
    interrupted,
)
from .streaming import (
    Finished,
    Retrying,
    StreamConfig,
    StreamDecoder,
    StreamEvent,
    ToolCallCompleted,
    ValueCompleted,
)
from .streaming.decoder import ItemValidator
from .streaming.validation import ItemValidators

__all__ = [
    "AsyncEventStream",
    "AsyncValueStream",
    "EventStream",
    "StreamRun",
    "ValueStream",
]

E = TypeVar("E")

# The SDK's own HTTP library (openai 3.x), whose errors can surface while reading a stream.
import httpx2 as _http  # noqa: E402


class StreamRun:
    """One stream's shared state: the attempts (a re-ask starts a new decoder), the log, and the
    mapping of failures. :meth:`close` ends an attempt: its events, then either the end
    (``Finished`` with the summary) or a :class:`Retrying` and ``again`` set."""

    def __init__(
        self,
        call: PreparedCall,
        log: LogSink,
        *,
        partials: bool,
        items: bool,
        config: StreamConfig | None,
        retries: int = 0,
        budget: Budget | None = None,
        on_summary: Callable[[StructuredResult[Any]], None] | None = None,
    ) -> None:
        self.call = call
        self.log = log
        self.partials = partials
        self.items = items
        self.config = config
        self.retries = retries
        self.budget = budget if budget is not None else Budget(None, call.model, None)
        self.on_summary = on_summary
        self.kwargs: dict[str, Any] = call.kwargs
        self.errors: list[APIResponseError] = []  # each failed attempt's error
        self.usages: list[dict[str, Any] | None] = []
        self.response_ids: list[str | None] = []
        self.summary: StructuredResult[Any] | None = None
        self.again = False  # the attempt failed validation and a re-ask is to be sent
        self._recorded = False
        self.decoder = self._decoder()
        self.request: Any = None
        self.deadline = Deadline(call.kwargs.get("timeout"))
        self.started = time.perf_counter()
        self.chunks = 0

    def _decoder(self) -> StreamDecoder:
        call = self.call
        compiled = call.compiled
        item_validator: ItemValidator | None = None
        if self.items and compiled is not None:
            item_validator = ItemValidators(call.output).validate
        validator = call.validator
        return StreamDecoder(
            protocol=call.api.protocol(),
            limit=call.limit,
            validate=validator.validate_value if validator is not None else None,
            output_type=call.output,
            partials=self.partials,
            items=self.items and compiled is not None,
            config=self.config,
            log=self.log if self.log else None,
            item_validator=item_validator,
            tools=call.tools,
            parse_content=validator is not None,
            declared=compiled if compiled is not None and compiled.needs_restore else None,
        )

    def streaming_create(self, client: Any) -> Any:
        self.budget.check(self.kwargs, self.errors)
        if self.log:
            self.log.emit("stream.start", model=self.call.model, api=self.call.api.name)
        endpoint = self.call.api.endpoint(client)
        return endpoint.with_streaming_response.create(**self.kwargs)

    def record(self) -> None:
        """Count this attempt's usage and id (once per attempt)."""
        if not self._recorded:
            self._recorded = True
            decoder = self.decoder
            self.usages.append(decoder.usage)
            self.response_ids.append(decoder.response_id)
            self.budget.add(decoder.usage)

    def report(self, value: Any) -> StructuredResult[Any]:
        """The summary of the stream so far (every attempt), handed to ``on_summary`` once
        when a request was made."""
        summary = self.summary = result_of(value, self.call.model, self.usages, self.response_ids)
        if self.on_summary is not None and self.usages:
            self.on_summary(summary)
            self.on_summary = None
        return summary

    def failure(self, exc: Exception) -> BaseException:
        """The exception to raise for ``exc``: ours pass through, transport/API failures become
        dual ``StreamInterruptedError`` + SDK class, with what was received attached."""
        decoder = self.decoder
        if isinstance(exc, StreamServerError):
            sdk: Exception = openai.APIError(str(exc), self.request, body=exc.body)
            sdk.__cause__ = exc
        elif isinstance(exc, OpenAIClientError):
            error: BaseException = exc
            self._log_error(error)
            if self.request is not None:  # this attempt's request was answered
                self.record()
            self.report(None)  # e.g. the token budget stopped a re-ask: what was spent counts
            return error
        elif isinstance(exc, _http.TimeoutException):
            sdk = openai.APITimeoutError(request=exc.request)
            sdk.__cause__ = exc
        elif isinstance(exc, _http.HTTPError):
            request = getattr(exc, "_request", None) or self.request
            sdk = openai.APIConnectionError(
                message=f"Connection error while streaming: {exc}", request=request
            )
            sdk.__cause__ = exc
        elif isinstance(exc, openai.APIError):
            sdk = exc
        else:
            return exc
        error = interrupted(sdk, content=decoder.content, results=decoder.results)
        error.__cause__ = sdk
        self._log_error(error)
        self.record()
        self.report(None)
        return error

    def _log_error(self, error: BaseException) -> None:
        if self.log:
            self.log.emit("error", "error", stage="stream", error=error)

    def feed(self, chunk: bytes) -> list[StreamEvent]:
        self.chunks += 1
        events = self.decoder.feed(chunk)
        if self.deadline.at is not None and self.deadline.passed():
            raise self.deadline.error(self.request)
        return events

    def close(self) -> list[StreamEvent]:
        """End of an attempt's body. A failure the model can fix, with re-asks left, returns the
        attempt's last events and a :class:`Retrying` (``again`` is then set and the next
        request is ready); otherwise the last events and ``Finished``, or the typed error."""
        self.again = False
        decoder = self.decoder
        try:
            try:
                events = decoder.close()
            finally:
                self.record()
        except RETRYABLE as exc:
            if len(self.errors) < self.retries and decoder.answer is not None:
                return self._retry(exc, decoder.answer)
            self.errors.append(exc)
            final = exhausted(self.errors)
            self._log_error(final)
            self.report(None)
            if final is exc:
                raise
            raise final from None
        except Exception as exc:
            attach_attempts(exc, self.errors)
            self._log_error(exc)
            self.report(None)
            raise
        last = events[-1]
        if type(last) is Finished:
            self.summary = self.report(last.result)
            events[-1] = dataclasses.replace(last, summary=self.summary)
        if self.log:
            self.log.emit(
                "stream.end",
                latency_s=time.perf_counter() - self.started,
                chunks=self.chunks,
                values=self.decoder.values_completed,
                usage=self.decoder.usage,
                response_id=self.decoder.response_id,
                attempts=len(self.usages),
            )
        return events

    def _retry(self, exc: APIResponseError, answer: Answer) -> list[StreamEvent]:
        self.errors.append(exc)
        attempt = len(self.errors)
        self.kwargs = reask(
            self.call.api, self.kwargs, answer, exc,
            attempt=attempt, retries=self.retries, log=self.log,
        )  # fmt: skip
        errors = tuple(exc.errors()) if isinstance(exc, ValidationError) else ()
        self.decoder = self._decoder()
        self._recorded = False
        self.request = None
        self.again = True
        return [Retrying(attempt, exc, errors)]


def iterate(client: Any, run: StreamRun) -> Iterator[StreamEvent]:
    """The sync loop: bytes from the SDK into the decoder."""
    try:
        while True:
            try:
                with run.streaming_create(client) as response:
                    run.request = response.http_response.request
                    for chunk in response.iter_bytes():
                        yield from run.feed(chunk)
                        if run.decoder.done:
                            break
            except Exception as exc:
                error = run.failure(exc)
                if error is exc:
                    raise
                raise error from error.__cause__
            yield from run.close()
            if not run.again:
                break
    finally:
        run.log.close()


async def aiterate(client: Any, run: StreamRun) -> AsyncIterator[StreamEvent]:
    """The async loop: the same as :func:`iterate`, awaiting the transport."""
    if isinstance(client, PendingClient):
        client = await asyncio.to_thread(client.build)
        run.log.add_secret(getattr(client, "api_key", None))
    while True:
        try:
            async with run.streaming_create(client) as response:
                run.request = response.http_response.request
                async for chunk in response.iter_bytes():
                    for event in run.feed(chunk):
                        yield event
                    if run.log:
                        await run.log.flush()
                    if run.decoder.done:
                        break
        except Exception as exc:
            if run.log:
                await run.log.flush()
            error = run.failure(exc)
            if error is exc:
                raise
            raise error from error.__cause__
        try:
            for event in run.close():
                yield event
        finally:
            if run.log:
                await run.log.flush()
        if not run.again:
            break


class _Values:
    """Picks the values (and tool calls) out of a stream's events. With re-asks possible, an
    attempt's values are held until it ends well (``Finished``) and dropped at ``Retrying``,
    so only the values of the attempt that validated are yielded."""

    __slots__ = ("held", "hold")

    def __init__(self, hold: bool) -> None:
        self.hold = hold
        self.held: list[Any] = []

    def take(self, event: StreamEvent) -> list[Any]:
        kind = type(event)
        if kind is ValueCompleted:
            value = event.value  # type: ignore[union-attr]
        elif kind is ToolCallCompleted:
            value = event.call  # type: ignore[union-attr]
        elif kind is Retrying:
            self.held.clear()
            return []
        elif kind is Finished and self.held:
            out, self.held = self.held, []
            return out
        else:
            return []
        if self.hold:
            self.held.append(value)
            return []
        return [value]


def values(events: Iterator[StreamEvent], *, hold: bool = False) -> Iterator[Any]:
    """Just the validated top-level values (and tool calls) of an event stream."""
    picker = _Values(hold)
    for event in events:
        yield from picker.take(event)


async def avalues(events: AsyncIterator[StreamEvent], *, hold: bool = False) -> AsyncIterator[Any]:
    picker = _Values(hold)
    async for event in events:
        for value in picker.take(event):
            yield value


class _RunView:
    """What the four stream objects share: the run behind them, a redacted repr, the current
    attempt's decoder and the summary."""

    _run: StreamRun

    def __repr__(self) -> str:
        call = self._run.call  # no secret in it, but what a repr shows is always redacted
        return redact_text(f"{type(self).__name__}(model={call.model!r}, api={call.api.name!r})")

    @property
    def decoder(self) -> StreamDecoder:
        """The decoder of the current attempt: text so far (``.content``), completed values
        (``.results``), usage, the partial object (``.parser.snapshot()``)."""
        return self._run.decoder

    @property
    def summary(self) -> StructuredResult[Any] | None:
        """Usage and cost of every attempt (a :class:`StructuredResult`); None until the stream
        ended (its ``value`` is None when it failed)."""
        return self._run.summary


class ValueStream(_RunView, Iterator[Any]):
    """The validated values (and ``ToolCall`` objects) of a stream, as they close. Once it is
    exhausted, ``summary`` is the :class:`StructuredResult`: usage and cost of every attempt."""

    def __init__(self, run: StreamRun, values: Iterator[Any]) -> None:
        self._run = run
        self._values = values

    def __iter__(self) -> ValueStream:
        return self

    def __next__(self) -> Any:
        return next(self._values)

    def close(self) -> None:
        close = getattr(self._values, "close", None)
        if close is not None:
            close()


class AsyncValueStream(_RunView, AsyncIterator[Any]):
    """The async twin of :class:`ValueStream`."""

    def __init__(self, run: StreamRun, values: AsyncIterator[Any]) -> None:
        self._run = run
        self._values = values

    def __aiter__(self) -> AsyncValueStream:
        return self

    async def __anext__(self) -> Any:
        return await self._values.__anext__()

    async def aclose(self) -> None:
        aclose = getattr(self._values, "aclose", None)
        if aclose is not None:
            await aclose()


class EventStream(_RunView, Generic[E]):
    """A structured stream's events (sync): use it in a ``with`` block and iterate.

    Leaving the block closes the HTTP response, also when you stop early. ``decoder`` gives the
    text received so far (``.content``), completed values (``.results``), usage and the partial
    object (``.parser.snapshot()``).
    """

    def __init__(self, events: Iterator[E], run: StreamRun) -> None:
        self._events = events
        self._run = run

    def __iter__(self) -> Iterator[E]:
        return self._events

    def __next__(self) -> E:
        return next(self._events)

    def __enter__(self) -> EventStream[E]:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        close = getattr(self._events, "close", None)
        if close is not None:
            close()


class AsyncEventStream(_RunView, Generic[E]):
    """The async twin of :class:`EventStream`: ``async with`` and ``async for``."""

    def __init__(self, events: AsyncIterator[E], run: StreamRun) -> None:
        self._events = events
        self._run = run

    def __aiter__(self) -> AsyncIterator[E]:
        return self._events

    async def __anext__(self) -> E:
        return await self._events.__anext__()

    async def __aenter__(self) -> AsyncEventStream[E]:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        aclose = getattr(self._events, "aclose", None)
        if aclose is not None:
            await aclose()


def stream_options(options: Mapping[str, Any]) -> tuple[dict[str, Any], StreamConfig | None]:
    """Split the stream-only options off the call options."""
    rest = dict(options)
    config = rest.pop("stream_config", None)
    if config is not None and not isinstance(config, StreamConfig):
        raise TypeError(f"stream_config= must be a StreamConfig, got {type(config).__name__}.")
    return rest, config
