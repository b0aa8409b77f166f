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
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from types import TracebackType
from typing import Any, Generic, TypeVar

import openai

from ._clients import PendingClient
from ._logging import LogSink, redact_text
from ._request import PreparedCall
from ._transport import Deadline
from .errors import OpenAIClientError, StreamServerError, ValidationError, interrupted
from .streaming import StreamConfig, StreamDecoder, StreamEvent, ValueCompleted
from .streaming.decoder import ItemValidator
from .streaming.validation import ItemValidators

__all__ = ["AsyncEventStream", "EventStream", "StreamRun"]

E = TypeVar("E")

# The SDK's own HTTP library (openai 3.x), whose errors can surface while reading a stream.
import httpx2 as _http  # noqa: E402


class StreamRun:
    """One stream's shared state: the decoder, the log, and the mapping of failures."""

    def __init__(
        self,
        call: PreparedCall,
        log: LogSink,
        *,
        partials: bool,
        items: bool,
        config: StreamConfig | None,
    ) -> None:
        self.call = call
        self.log = log
        compiled = call.compiled
        item_validator: ItemValidator | None = None
        if items:
            by_path = ItemValidators(call.output)
            if compiled.needs_restore:

                def restore_then_validate(
                    path: tuple[Any, ...], raw: Any
                ) -> tuple[Any, ValidationError | None]:
                    return by_path.validate(path, compiled.restore_at(path, raw))

                item_validator = restore_then_validate

            else:
                item_validator = by_path.validate
        self.decoder = StreamDecoder(
            protocol=call.api.protocol(),
            limit=call.limit,
            validate=call.validator.validate_value,
            output_type=call.output,
            partials=partials,
            items=items,
            config=config,
            log=log if log else None,
            item_validator=item_validator,
        )
        self.request: Any = None
        self.deadline = Deadline(call.kwargs.get("timeout"))
        self.started = time.perf_counter()
        self.chunks = 0

    def streaming_create(self, client: Any) -> Any:
        if self.log:
            self.log.emit("stream.start", model=self.call.model, api=self.call.api.name)
        endpoint = self.call.api.endpoint(client)
        return endpoint.with_streaming_response.create(**self.call.kwargs)

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
        try:
            events = self.decoder.close()
        except Exception as exc:
            self._log_error(exc)
            raise
        if self.log:
            self.log.emit(
                "stream.end",
                latency_s=time.perf_counter() - self.started,
                chunks=self.chunks,
                values=self.decoder.values_completed,
                usage=self.decoder.usage,
                response_id=self.decoder.response_id,
            )
        return events


def iterate(client: Any, run: StreamRun) -> Iterator[StreamEvent]:
    """The sync loop: bytes from the SDK into the decoder."""
    try:
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
    finally:
        run.log.close()


async def aiterate(client: Any, run: StreamRun) -> AsyncIterator[StreamEvent]:
    """The async loop: the same as :func:`iterate`, awaiting the transport."""
    if isinstance(client, PendingClient):
        client = await asyncio.to_thread(client.build)
        run.log.add_secret(getattr(client, "api_key", None))
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


def values(events: Iterator[StreamEvent]) -> Iterator[Any]:
    """Just the validated top-level values of an event stream."""
    for event in events:
        if type(event) is ValueCompleted:
            yield event.value


async def avalues(events: AsyncIterator[StreamEvent]) -> AsyncIterator[Any]:
    async for event in events:
        if type(event) is ValueCompleted:
            yield event.value


class EventStream(Generic[E]):
    """A structured stream's events (sync): use it in a ``with`` block and iterate.

    Leaving the block closes the HTTP response, also when you stop early. ``decoder`` gives the
    text received so far (``.content``), completed values (``.results``), usage and the partial
    object (``.parser.snapshot()``).
    """

    def __init__(self, events: Iterator[E], run: StreamRun) -> None:
        self._events = events
        self._run = run

    def __repr__(self) -> str:
        call = self._run.call  # no secret in it, but what a repr shows is always redacted
        return redact_text(f"{type(self).__name__}(model={call.model!r}, api={call.api.name!r})")

    @property
    def decoder(self) -> StreamDecoder:
        return self._run.decoder

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


class AsyncEventStream(Generic[E]):
    """The async twin of :class:`EventStream`: ``async with`` and ``async for``."""

    def __init__(self, events: AsyncIterator[E], run: StreamRun) -> None:
        self._events = events
        self._run = run

    def __repr__(self) -> str:
        call = self._run.call  # no secret in it, but what a repr shows is always redacted
        return redact_text(f"{type(self).__name__}(model={call.model!r}, api={call.api.name!r})")

    @property
    def decoder(self) -> StreamDecoder:
        return self._run.decoder

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
