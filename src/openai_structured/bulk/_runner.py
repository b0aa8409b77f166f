"""A bulk run: one call per record, bounded concurrency, the account's rate limits, a journal.

:class:`BulkRun` turns each record into a call (``request(record)`` gives the prompt) and runs
them on ``concurrency`` asyncio workers sharing one :class:`RateLimiter`. Every request waits
at the limiter (its offline token count plus its output budget), and every response teaches
it (``x-ratelimit-*`` headers, 429s with ``Retry-After``); the SDK's own retries are turned
off for the run so that the limiter sees every 429. With ``output=``, a :class:`Journal` next
to the output makes the run exactly-once and resumable: a record already finished (same id,
same request) is not requested again.

Failures are per record (an error line, the run goes on) except those that would fail every
record the same way: the key, the model, the schema, the budget. Those stop the run after
the requests in flight have finished and been written; :class:`BulkStopped` says why.

The sync :meth:`BulkRun.run` drives the same async core on a private event loop in a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import itertools
import json
import os
import queue
import random
import threading
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import openai
from pydantic_core import to_jsonable_python

from .._clients import check_client, default_client
from .._request import OutputType, PreparedCall
from .._usage import TokenUsage
from ..client import _prepare, async_send
from ..errors import (
    ModelNotSupportedError,
    ModelVersionError,
    NoProviderError,
    OpenAIClientError,
    SchemaError,
    TokenParameterError,
)
from ..servers import ServerProfile, profile_for
from ..tokens import count_message_tokens, count_tokens, estimate_cost
from ._batch import BatchFiles, OpenAIBatch
from ._inputs import BadRecord, DuplicateIdError, Record
from ._journal import Journal, RecordId, Summary, record_key
from ._limiter import RateLimiter, Reservation, Wait

__all__ = ["BudgetExhaustedError", "BulkRun", "BulkStopped", "Outcome"]

#: Errors that would fail every record the same way: they stop the run.
RUN_ERRORS: tuple[type[BaseException], ...] = (
    openai.AuthenticationError,
    openai.PermissionDeniedError,
    openai.NotFoundError,
    ModelNotSupportedError,
    ModelVersionError,
    NoProviderError,
    TokenParameterError,
    SchemaError,
)
#: Transport failures retried with backoff (``max_retries`` times), like the SDK's own retries.
TRANSIENT: tuple[type[BaseException], ...] = (
    openai.APIConnectionError,  # includes APITimeoutError
    openai.InternalServerError,
    openai.ConflictError,
)
_MAX_429 = 20  # 429s one request may get before the record fails with the last one
_DEFAULT_CONCURRENCY = 16
#: The keyword arguments of a call that are not part of what is asked (never in a record key).
_NOT_ASKED = frozenset({"messages", "input", "model", "extra_headers", "timeout", "stream"})


class FailedEarlier(OpenAIClientError):
    """A resumed record whose earlier run failed: its error line stands in the output."""


class BudgetExhaustedError(OpenAIClientError):
    """The next request would go over ``max_cost`` or ``max_requests``: the run stops first."""


#: What stops a run (after the requests in flight are done and written).
STOPS: tuple[type[BaseException], ...] = (*RUN_ERRORS, BudgetExhaustedError)


class BulkStopped(OpenAIClientError):
    """The run stopped before every record was done; ``cause`` says why, ``summary`` what was
    done. Rerun the same command (or :meth:`BulkRun.run` on the same output) to go on."""

    def __init__(self, message: str, *, cause: BaseException, summary: Summary | None) -> None:
        super().__init__(message)
        self.cause = cause
        self.summary = summary


@dataclass(frozen=True)
class Outcome:
    """What became of one record. ``position``: 1-based, in input order. ``resumed``: finished
    by an earlier run on the same output (not requested again; its line is in the output)."""

    id: RecordId
    position: int
    value: Any = None
    error: BaseException | None = None
    usage: TokenUsage = field(default_factory=TokenUsage)
    cost: float | None = None
    attempts: int = 0
    resumed: bool = False
    #: The journal's record key: a hash of what was asked (model, parameters, schema, prompt).
    key: str = ""

    @property
    def ok(self) -> bool:
        return self.error is None


def record_id(item: Any, position: int) -> RecordId:
    """A record's id: a :class:`Record`'s, a mapping's ``"id"`` (text or whole number), else its
    1-based position."""
    if isinstance(item, (Record, BadRecord)):
        return item.id
    if isinstance(item, Mapping):
        value = item.get("id")
        if isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool)):
            return value
    return position


def _check_unique(rid: RecordId, seen: set[str]) -> None:
    """Ids name records in the output: a repeat would replace another record's answer."""
    text = str(rid)
    if text in seen:
        raise DuplicateIdError(
            f"id {rid!r} is used by an earlier record of this input; give each record its own "
            "id (its output line is found by it)",
            first_line=0, source="input", line=0,
        )  # fmt: skip
    seen.add(text)


@dataclass
class _Spend:
    """Requests sent and money spent or committed, against the run's budget. Each request is
    admitted with its estimate (re-asks and retries are requests too); a record's actual cost,
    once known, replaces the estimates of its requests."""

    max_cost: float | None
    max_requests: int | None
    requests: int = 0
    spent: float = 0.0
    committed: float = 0.0  # estimates of the requests in flight

    def admit(self, estimate: float | None) -> float:
        if self.max_requests is not None and self.requests >= self.max_requests:
            raise BudgetExhaustedError(
                f"max_requests={self.max_requests} reached: no more requests are sent. Raise it "
                "and run again; finished records are not requested again."
            )
        if self.max_cost is not None and estimate is None:
            raise BudgetExhaustedError(
                f"max_cost=${self.max_cost:g} cannot be kept: the model registry has no prices "
                "for this model, so no request can be priced before it is sent. Leave max_cost "
                "out, or bound the run with max_requests."
            )
        cost = estimate or 0.0
        if self.max_cost is not None and self.spent + self.committed + cost > self.max_cost:
            raise BudgetExhaustedError(
                f"the next request (about ${cost:.4f}) would take the run over max_cost="
                f"${self.max_cost:g} (${self.spent:.4f} spent, ${self.committed:.4f} in flight). "
                "Raise it and run again; finished records are not requested again."
            )
        self.requests += 1
        self.committed += cost
        return cost

    def refund(self, estimate: float) -> None:
        """A request admitted but never sent (it could not be)."""
        self.requests -= 1
        self.committed -= estimate

    def answered(self, estimate: float) -> None:
        """A request ended: its estimate counts as spent until the record's cost is known."""
        self.committed -= estimate
        self.spent += estimate

    def correct(self, estimates: list[float] | None, actual: float | None) -> None:
        if estimates and actual is not None:
            self.spent += actual - sum(estimates)


#: The estimates charged for the record the current worker task is running.
_CHARGED: contextvars.ContextVar[list[float] | None] = contextvars.ContextVar(
    "ostruct_bulk_charged", default=None
)


class _Gate:
    """The limiter as the call loop's :class:`~openai_structured.client.Gate`: one waiter at a
    time at the limiter, the others queued behind it; 429s and transport errors retried."""

    def __init__(self, limiter: RateLimiter, model: str, max_retries: int, spend: _Spend) -> None:
        self.limiter = limiter
        self.model = model
        self.max_retries = max_retries
        self.spend = spend
        self._lock = asyncio.Lock()
        self._released = asyncio.Event()
        self._tries: dict[int, int] = {}  # id(kwargs) -> failures so far

    async def acquire(self, kwargs: Mapping[str, Any]) -> object:
        prompt, output = _prompt_tokens(self.model, kwargs), _output_budget(self.model, kwargs)
        estimate = self.spend.admit(_price(self.model, prompt, output))
        charged = _CHARGED.get()
        if charged is not None:
            charged.append(estimate)
        # What the tokens-per-minute limit counts: the prompt and the output limit the request
        # sets (OpenAI counts max_tokens up front), not the model's whole output maximum.
        counted = prompt + (_explicit_limit(kwargs) or 0)
        async with self._lock:
            while True:
                got = self.limiter.reserve(counted, time.monotonic())
                if isinstance(got, Reservation):
                    return (got, id(kwargs), estimate)
                await self._wait(got)

    async def _wait(self, wait: Wait) -> None:
        if wait.reason != "in_flight":
            await asyncio.sleep(wait.seconds)
            return
        self._released.clear()
        # a slot frees when a request ends: wake then, not at the estimate
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._released.wait(), wait.seconds)

    def sent(self, token: object, headers: Mapping[str, str] | None) -> None:
        reservation, key, estimate = _token(token)
        self.spend.answered(estimate)
        self._tries.pop(key, None)
        self.limiter.release(reservation, time.monotonic(), headers=headers)
        self._released.set()

    def failed(self, token: object, exc: BaseException) -> float | None:
        reservation, key, estimate = _token(token)
        self.spend.answered(estimate)
        tries = self._tries.get(key, 0) + 1
        headers = _headers(exc)
        now = time.monotonic()
        self._released.set()
        if isinstance(exc, openai.RateLimitError):
            pause = self.limiter.rate_limited(reservation, now, headers=headers)
            if tries > _MAX_429:
                self._tries.pop(key, None)
                return None
            self._tries[key] = tries
            return pause
        self.limiter.release(reservation, now, headers=headers)
        if isinstance(exc, TRANSIENT) and tries <= self.max_retries:
            self._tries[key] = tries
            return float(min(8.0, 0.5 * 2.0 ** (tries - 1)) * (0.75 + random.random() / 2))
        self._tries.pop(key, None)
        return None


def _token(token: object) -> tuple[Reservation, int, float]:
    assert isinstance(token, tuple)
    return token[0], token[1], token[2]


def _headers(exc: BaseException) -> Mapping[str, str] | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    return headers if isinstance(headers, Mapping) else None


def _prompt_tokens(model: str, kwargs: Mapping[str, Any]) -> int:
    """The prompt's tokens, counted offline (Chat messages, or Responses instructions + input);
    for a model whose tokenizer the registry does not know, about 4 characters a token."""
    try:
        return _counted(model, kwargs)
    except OpenAIClientError:
        text = json.dumps([kwargs.get(k) for k in ("messages", "instructions", "input")])
        return len(text) // 4 + 1


def _counted(model: str, kwargs: Mapping[str, Any]) -> int:
    messages = kwargs.get("messages")
    if isinstance(messages, list):
        return count_message_tokens(messages, model)
    total = 0
    for key in ("instructions", "input"):
        value = kwargs.get(key)
        if isinstance(value, str):
            total += count_tokens(value, model)
        elif isinstance(value, list):
            total += count_message_tokens([v for v in value if isinstance(v, Mapping)], model)
    return total


def _explicit_limit(kwargs: Mapping[str, Any]) -> int | None:
    for key in ("max_completion_tokens", "max_tokens", "max_output_tokens"):
        value = kwargs.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def _output_budget(model: str, kwargs: Mapping[str, Any]) -> int:
    """The most output tokens the request may use: its limit, else the model's (what a cost
    bound must assume)."""
    explicit = _explicit_limit(kwargs)
    if explicit is not None:
        return explicit
    from ..tokens import get_default_token_limit

    try:
        return get_default_token_limit(model)
    except OpenAIClientError:
        return 0


def _estimate(model: str, call: PreparedCall) -> float | None:
    """The most the request can cost, from offline counts and the registry's prices."""
    return _price(model, _prompt_tokens(model, call.kwargs), _output_budget(model, call.kwargs))


def _price(model: str, prompt: int, output: int) -> float | None:
    try:
        cost = estimate_cost(model, prompt, output)
    except OpenAIClientError:
        return None
    return None if cost is None else cost.total


def _key(model: str, call: PreparedCall) -> str:
    params = {k: v for k, v in call.kwargs.items() if k not in _NOT_ASKED}
    messages = call.kwargs.get("messages", call.kwargs.get("input"))
    return record_key(model, params, None, messages)


class BulkRun:
    """Many records through one model: bounded concurrency, rate limits, exactly-once output.

    ``request(record)`` returns the call's prompt for one record: a mapping with
    ``user_prompt`` / ``system_prompt`` or ``messages`` (and any per-record call option).
    ``output_schema`` / ``schema`` / ``tools`` and ``**options`` are those of
    :func:`~openai_structured.openai_structured_call`. ``output``: the JSONL file to write (one
    line per record, journaled: rerun to resume); None keeps nothing on disk.
    ``concurrency``: requests in flight at most (default: the server profile's
    ``bulk_concurrency``, 1 for llama.cpp and so the embedded model; else 16). ``rpm`` /
    ``tpm``: the account's limits if known (they are also learned from the server's headers);
    ``rate_window``: the seconds those limits are per (60; shorter for a test server).
    ``max_cost`` (USD, estimated before each request) and ``max_requests`` stop the run before
    a request would exceed them. ``retry_failed``:
    records that failed in an earlier run are requested again. ``ordered``: outcomes in input
    order (held back until the earlier ones are done) instead of completion order.
    ``max_retries``: transport failures retried per request (429s are retried as the server
    says, up to 20 times). ``limiter``: a :class:`RateLimiter` shared with other runs (the Ray
    integration passes one that lives in a Ray actor); ``rpm``/``tpm`` are then its business.
    ``backend``: :class:`~._batch.OpenAIBatch` sends the records through the Batch API (half
    the price, within 24 hours) instead of one request each; :class:`~._batch.BatchFiles`
    writes them to a file for another engine and imports its results. ``output`` is then
    required.
    """

    def __init__(
        self,
        *,
        model: str,
        request: Callable[[Any], Mapping[str, Any]],
        output_schema: OutputType | None = None,
        schema: Mapping[str, Any] | None = None,
        client: Any = None,
        output: str | Path | None = None,
        concurrency: int | None = None,
        rpm: int | None = None,
        tpm: int | None = None,
        rate_window: float = 60.0,
        max_cost: float | None = None,
        max_requests: int | None = None,
        retry_failed: bool = False,
        ordered: bool = False,
        max_retries: int = 2,
        limiter: RateLimiter | None = None,
        backend: OpenAIBatch | BatchFiles | None = None,
        **options: Any,
    ) -> None:
        if concurrency is not None and (not isinstance(concurrency, int) or concurrency < 1):
            raise ValueError(f"concurrency must be a whole number >= 1, got {concurrency!r}")
        if max_cost is not None and not max_cost >= 0:
            raise ValueError(f"max_cost must be a number of dollars >= 0, got {max_cost!r}")
        if max_requests is not None and max_requests < 0:
            raise ValueError(f"max_requests must be >= 0, got {max_requests!r}")
        if ordered and backend is not None:
            raise ValueError(
                "ordered=True is for the live backend: a batch backend's outcomes come as its "
                "batches end; sort them by Outcome.position"
            )
        self.model = model
        self.request = request
        self.output_schema = output_schema
        self.schema = schema
        self.client = client
        self.output = output
        self.concurrency = concurrency
        self.rpm, self.tpm, self.rate_window = rpm, tpm, rate_window
        self.retry_failed = retry_failed
        self.ordered = ordered
        self.max_retries = max_retries
        self.options = options
        self._spend = _Spend(max_cost, max_requests)
        self._shared_limiter = limiter
        self.backend = backend
        #: What the run has to tell beyond its outcomes (a batch backend's notes).
        self.notes: list[str] = []
        #: Records left without an outcome (batch files: waiting for their results).
        self.waiting = 0
        self.limiter: RateLimiter | None = limiter
        self.summary: Summary | None = None
        self.in_flight = 0
        #: Records left out because their id repeats an earlier one's (not in the output).
        self.duplicates = 0
        self._secret: str | None = None
        self._private_loop = False

    # --- the sync face -----------------------------------------------------------------------

    def run(self, records: Iterable[Any]) -> Iterator[Outcome]:
        """Each record's :class:`Outcome` as it completes (see ``ordered``); raises
        :class:`BulkStopped` after the last one if the run had to stop. The run has an event
        loop of its own, on a thread: an async client passed in is closed at the end (its
        connections belong to that loop); ``arun`` leaves it open."""
        out: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=64)
        running: list[tuple[asyncio.AbstractEventLoop, asyncio.Task[None]]] = []

        async def drive() -> None:
            task = asyncio.current_task()
            assert task is not None
            running.append((asyncio.get_running_loop(), task))
            self._private_loop = True
            try:
                async for outcome in self.arun(records):
                    while True:  # never block the loop: requests are in flight on it
                        try:
                            out.put_nowait(("outcome", outcome))
                            break
                        except queue.Full:
                            await asyncio.sleep(0.005)
            except asyncio.CancelledError:  # the caller stopped iterating (or Ctrl-C)
                return
            except BaseException as exc:  # handed to the caller's thread, raised there
                out.put(("error", exc))
                return
            out.put(("done", None))

        thread = threading.Thread(target=asyncio.run, args=(drive(),), name="ostruct-bulk")
        thread.start()
        try:
            while True:
                kind, value = out.get()
                if kind == "outcome":
                    yield value
                elif kind == "error":
                    raise value
                else:
                    return
        finally:
            # Leaving early (break, an exception, Ctrl-C): cancel the run now rather than at
            # its next outcome; the journal stays consistent, requests in flight are dropped.
            cancelled = False
            while thread.is_alive():
                if running and not cancelled:
                    loop, task = running[0]
                    with contextlib.suppress(RuntimeError):  # the loop may have just closed
                        loop.call_soon_threadsafe(task.cancel)
                    cancelled = True
                with contextlib.suppress(queue.Empty):
                    out.get(timeout=0.05)
            thread.join()

    # --- the async core ----------------------------------------------------------------------

    async def arun(self, records: Iterable[Any] | AsyncIterable[Any]) -> AsyncIterator[Outcome]:
        """The async :meth:`run`."""
        if self.backend is not None and not self.backend.needs_client:
            # No client: the key this process would use is what must not reach a file.
            self._secret = self._secret or os.environ.get("OPENAI_API_KEY")
            async for outcome in self.backend.arun(self, None, records):
                yield outcome
            return
        given = check_client(self.client, asynchronous=True)
        if given is None:
            given = await asyncio.to_thread(default_client, asynchronous=True)
        # A client the caller passed in stays open for them, except under the sync run():
        # its connections belong to run()'s private loop, which ends with the run.
        owned = self.client is None or self._private_loop
        self._secret = getattr(given, "api_key", None)
        if self.backend is not None:
            try:
                async for outcome in self.backend.arun(self, given, records):
                    yield outcome
            finally:
                if owned:
                    await _close(given)
            return
        client = given.with_options(max_retries=0)  # the gate retries: the limiter sees 429s
        profile = profile_for(client, self.options.get("server"))
        width = self.concurrency or profile.bulk_concurrency or _DEFAULT_CONCURRENCY
        self.limiter = self._shared_limiter or RateLimiter(
            self.rpm, self.tpm, max_in_flight=width, window=self.rate_window
        )
        gate = _Gate(self.limiter, self.model, self.max_retries, self._spend)
        journal = Journal.open(self.output, params=self._params()) if self.output else None
        if journal is not None and journal.running_batches():
            running = journal.running_batches()
            journal.close()
            raise OpenAIClientError(
                f"{self.output} has {running} Batch API batch file(s) still running: go on "
                "with the batch backend (--backend openai-batch), or cancel them (ostruct batch "
                "--cancel OUT) and collect what they answered first; a live run now would pay "
                "for their records again"
            )
        done: asyncio.Queue[Outcome | None] = asyncio.Queue(maxsize=width)
        source = _Source(records)
        stopped: list[BaseException] = []
        ahead = _Window(width * 4 if self.ordered else None)
        seen: set[str] = set()

        async def worker() -> None:
            while not stopped:
                try:
                    got = await source.next()
                    if got is None:
                        return
                    position, item = got
                    await ahead.admit(position)
                    if stopped:
                        return
                    outcome = await self._one(client, profile, gate, journal, item, position, seen)
                except (Exception, asyncio.CancelledError) as exc:
                    # A stop (auth, model, budget) or a failure of the input itself: no new
                    # record starts; those in flight in other workers finish and are written.
                    stopped.append(exc)
                    await ahead.close()
                    return
                await done.put(outcome)

        async def supervise() -> None:
            try:
                await asyncio.gather(*(worker() for _ in range(width)))
            except asyncio.CancelledError:  # the caller left: nobody reads `done` any more
                with contextlib.suppress(asyncio.QueueFull):
                    done.put_nowait(None)
                raise
            await done.put(None)

        task = asyncio.create_task(supervise())
        try:
            async for outcome in _in_order(done, self.ordered, ahead):
                yield outcome
            await task
        finally:
            if not task.done():
                stopped.append(asyncio.CancelledError())
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            if journal is not None:
                self.summary = journal.summary()
                journal.close()
            if owned:
                await _close(given)
        if stopped and not isinstance(stopped[0], asyncio.CancelledError):
            cause = self._scrub(stopped[0])
            raise BulkStopped(
                f"the run stopped: {type(cause).__name__}: {self._redact(str(cause))}",
                cause=cause, summary=self.summary,
            ) from cause  # fmt: skip

    def _redact(self, text: str) -> str:
        """``text`` without the client's API key (an SDK error can quote it back)."""
        key = self._secret
        if isinstance(key, str) and len(key) >= 8:
            text = text.replace(key, "[REDACTED]")
        return text

    def _scrub(self, exc: BaseException) -> BaseException:
        """``exc`` with the API key taken out of its text (a server may quote it back), so an
        outcome's error can be printed or logged."""
        exc.args = tuple(self._redact(a) if isinstance(a, str) else a for a in exc.args)
        if isinstance(getattr(exc, "message", None), str):
            with contextlib.suppress(AttributeError):
                exc.message = self._redact(exc.message)  # type: ignore[attr-defined]
        return exc

    def _params(self) -> dict[str, Any]:
        """What the journal keeps about the run (no client, no key)."""
        return {
            "model": self.model,
            "concurrency": self.concurrency,
            "rpm": self.rpm,
            "tpm": self.tpm,
            "options": {k: repr(v) for k, v in self.options.items() if k != "on_log"},
        }

    async def _one(
        self,
        client: Any,
        profile: ServerProfile,
        gate: _Gate,
        journal: Journal | None,
        item: Any,
        position: int,
        seen: set[str],
    ) -> Outcome:
        rid = record_id(item, position)
        try:
            _check_unique(rid, seen)
            if isinstance(item, BadRecord):
                raise item.error
            call = _prepare(
                profile, self.model, self.output_schema, self.schema,
                {**self.options, **self.request(item)}, stream=False,
            )  # fmt: skip
        except RUN_ERRORS:
            raise
        except DuplicateIdError as exc:
            # Its line would replace the earlier record's (lines are found by id): reported
            # in the outcome and the summary, never written under the id it repeats.
            self.duplicates += 1
            return self._failed(None, rid, position, "", exc)
        except Exception as exc:  # this record: unreadable, not renderable, too long, ...
            bad = _bad_key(self.model, item)
            earlier = self._earlier(journal, rid, bad, position)
            return earlier or self._failed(journal, rid, position, bad, exc)
        key = _key(self.model, call)
        earlier = self._earlier(journal, rid, key, position)
        if earlier is not None:
            return earlier
        self.in_flight += 1
        _CHARGED.set([])
        try:
            result = await async_send(client, call, self.options, gate=gate)
        except STOPS:
            raise
        except Exception as exc:
            usage = getattr(exc, "usage", None)
            tokens = TokenUsage.from_api(usage) if isinstance(usage, Mapping) else TokenUsage()
            cost = _cost(self.model, tokens)
            self._spend.correct(_CHARGED.get(), cost)
            attempts = len(getattr(exc, "attempts", None) or ()) or 1
            return self._failed(journal, rid, position, key, exc, tokens, cost, attempts)
        finally:
            self.in_flight -= 1
        self._spend.correct(_CHARGED.get(), result.cost_usd)
        value = to_jsonable_python(result.value)
        if journal is not None:
            journal.record_ok(
                rid, key, value, prompt_tokens=result.usage.prompt_tokens,
                completion_tokens=result.usage.completion_tokens, cost=result.cost_usd,
                attempts=result.attempts,
            )  # fmt: skip
        return Outcome(
            rid, position, result.value, None, result.usage, result.cost_usd, result.attempts,
            key=key,
        )  # fmt: skip

    def _earlier(
        self, journal: Journal | None, rid: RecordId, key: str, position: int
    ) -> Outcome | None:
        """The outcome of an earlier run, if it stands (a failure only without retry_failed)."""
        status = None if journal is None else journal.status(rid, key)
        if status == "ok":
            return Outcome(rid, position, resumed=True, key=key)
        if status == "failed" and not self.retry_failed:
            error = FailedEarlier(
                "this record failed in an earlier run (its error line is in the output); "
                "retry_failed=True (ostruct batch --retry-failed) requests it again"
            )
            return Outcome(rid, position, error=error, resumed=True, key=key)
        return None

    def _failed(
        self,
        journal: Journal | None,
        rid: RecordId,
        position: int,
        key: str,
        exc: BaseException,
        usage: TokenUsage | None = None,
        cost: float | None = None,
        attempts: int = 0,
    ) -> Outcome:
        usage = usage or TokenUsage()
        if journal is not None:
            journal.record_failed(
                rid, key, type(exc).__name__, self._redact(str(exc)),
                prompt_tokens=usage.prompt_tokens,
                completion_tokens=usage.completion_tokens, cost=cost, attempts=attempts,
            )  # fmt: skip
        return Outcome(rid, position, None, self._scrub(exc), usage, cost, attempts, key=key)


def _bad_key(model: str, item: Any) -> str:
    """The key of a record that never became a request: its content, so that a fixed record
    is tried again and an unchanged one is not."""
    if isinstance(item, BadRecord):
        return record_key(model, {"bad": True}, None, [item.source, str(item.error)])
    try:
        content = to_jsonable_python(item)
    except Exception:
        content = repr(item)
    return record_key(model, {"bad": True}, None, content)


def _cost(model: str, usage: TokenUsage) -> float | None:
    try:
        cost = estimate_cost(
            model, usage.prompt_tokens, usage.completion_tokens,
            cached_input_tokens=min(usage.cached_tokens, usage.prompt_tokens),
        )  # fmt: skip
    except OpenAIClientError:
        return None
    return None if cost is None else cost.total


async def _close(client: Any) -> None:
    close = getattr(client, "close", None)
    if close is not None:  # best effort: the run's outcome is already decided
        with contextlib.suppress(Exception):
            await close()


class _Source:
    """Records, one at a time, from an iterable or an async iterable (never all in memory)."""

    def __init__(self, records: Iterable[Any] | AsyncIterable[Any]) -> None:
        self._positions = itertools.count(1)
        self._sync: Iterator[Any] | None = None
        self._async: AsyncIterator[Any] | None = None
        if isinstance(records, AsyncIterable):
            self._async = records.__aiter__()
        else:
            self._sync = iter(records)
        self._lock = asyncio.Lock()
        self._ended = False

    async def next(self) -> tuple[int, Any] | None:
        async with self._lock:
            if self._ended:
                return None
            try:
                if self._sync is not None:
                    item = next(self._sync)
                else:
                    assert self._async is not None
                    item = await self._async.__anext__()
            except (StopIteration, StopAsyncIteration):
                self._ended = True
                return None
            return next(self._positions), item


class _Window:
    """With ``ordered``: a record starts only within ``size`` of the first not yet yielded,
    so the outcomes held back stay bounded."""

    def __init__(self, size: int | None) -> None:
        self.size = size
        self.first = 1
        self._moved = asyncio.Condition()
        self.closed = False

    async def admit(self, position: int) -> None:
        if self.size is None:
            return
        size = self.size
        async with self._moved:
            await self._moved.wait_for(lambda: self.closed or position < self.first + size)

    async def close(self) -> None:
        """The run stops: nobody waits for the window any more."""
        async with self._moved:
            self.closed = True
            self._moved.notify_all()

    async def advance(self, first: int) -> None:
        async with self._moved:
            self.first = first
            self._moved.notify_all()


async def _in_order(
    done: asyncio.Queue[Outcome | None], ordered: bool, window: _Window
) -> AsyncIterator[Outcome]:
    held: dict[int, Outcome] = {}
    first = 1
    while True:
        outcome = await done.get()
        if outcome is None:
            break
        if not ordered:
            yield outcome
            continue
        held[outcome.position] = outcome
        while first in held:
            yield held.pop(first)
            first += 1
        await window.advance(first)
    for position in sorted(held):  # after a stop: what finished, in order
        yield held[position]
