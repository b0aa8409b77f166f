"""The bulk runner over a Ray Data dataset: one client per actor, rate limits shared by all.

    import ray
    from openai_structured.bulk.ray import extract

    ds = ray.data.read_json("reviews.jsonl")
    out = extract(
        ds,
        model="gpt-4o-mini",
        output_schema=Review,
        request=lambda row: {"user_prompt": row["text"]},
        rpm=500, tpm=200_000,        # the account's limits, kept by the whole cluster
        actors=4,
    )
    out.write_parquet("reviews.out/")

Each actor of ``Dataset.map_batches`` holds an :class:`Extract`: one ``AsyncOpenAI`` client
built in the actor (never pickled), one event loop on a thread of its own, and runs each batch
through :meth:`BulkRun.arun <openai_structured.bulk.BulkRun.arun>` with ``output=None``. The
outcome of each row becomes columns (:data:`OUTCOME_SCHEMA`). The requests of every actor wait
at one :class:`SharedLimiter`, a Ray actor that owns the :class:`RateLimiter`. A rerun skips
the rows whose record key is in ``done=`` (:func:`finished_keys` reads them from an earlier
output). There is no journal across the cluster: the output dataset is the result.

Needs the ``[ray]`` extra: ``pip install 'openai-structured[ray]'``. See docs/bulk.md.
"""

from __future__ import annotations

try:
    import pyarrow as pa  # type: ignore[import-untyped]
    import ray
    from ray.data.block import BlockAccessor
except ImportError as exc:  # pragma: no cover - exercised in a subprocess without ray
    raise ImportError(
        "openai_structured.bulk.ray needs Ray Data, which is not installed: "
        "pip install 'openai-structured[ray]'"
    ) from exc

import asyncio
import atexit
import contextlib
import copy
import itertools
import json
import os
import threading
import time
import uuid
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import openai
from pydantic_core import to_jsonable_python

from .._clients import check_client, default_client
from .._logging import redact_text
from ..client import _prepare
from ..errors import OpenAIClientError
from ..servers import profile_for
from ._inputs import Record
from ._limiter import LimiterStats, RateLimiter, RequestTooLargeError, Reservation, Wait
from ._runner import BulkRun, BulkStopped, Outcome, _key

__all__ = [
    "OUTCOME_COLUMNS",
    "OUTCOME_SCHEMA",
    "Extract",
    "ExtractStopped",
    "SharedLimiter",
    "extract",
    "finished_keys",
]

#: The columns :class:`Extract` adds to each row, in order, with their Arrow types.
OUTCOME_SCHEMA: pa.Schema = pa.schema(
    [
        pa.field("key", pa.string(), nullable=False),
        pa.field("result", pa.string()),
        pa.field("error_type", pa.string()),
        pa.field("error_message", pa.string()),
        pa.field("prompt_tokens", pa.int64(), nullable=False),
        pa.field("completion_tokens", pa.int64(), nullable=False),
        pa.field("cost", pa.float64()),
        pa.field("attempts", pa.int64(), nullable=False),
        pa.field("skipped", pa.bool_(), nullable=False),
    ]
)
OUTCOME_COLUMNS: tuple[str, ...] = tuple(OUTCOME_SCHEMA.names)

#: BulkRun arguments that have no meaning here: each batch is one BulkRun, without a journal.
_REFUSED = {
    "output": "there is no journal across the cluster: the output dataset is the result "
    "(write it with write_parquet; rerun with done=finished_keys(previous))",
    "max_cost": "a budget would be per batch, not per run; bound the run with the dataset's "
    "size (ds.limit(n)) instead",
    "max_requests": "a budget would be per batch, not per run; bound the run with the "
    "dataset's size (ds.limit(n)) instead",
    "retry_failed": "without a journal nothing failed earlier: every row not in done= is requested",
    "ordered": "rows always come out in their batch's order",
    "backend": "the Batch API backend needs a journal; each actor sends its rows live "
    "(for the Batch API on one machine use BulkRun(backend=OpenAIBatch()))",
}
#: Response headers the limiter reads (the others are not sent to its actor).
_LIMIT_HEADERS = ("x-ratelimit-", "retry-after")
_DEFAULT_LEASE = 900.0
#: How long a caller waits before asking again whether the limiter's actor has answered.
_POLL = 0.0005


# --- the shared limiter ----------------------------------------------------------------------


@dataclass(frozen=True)
class _TooLarge:
    """A :class:`RequestTooLargeError` on its way back from the limiter's actor (the exception
    itself does not pickle: its constructor takes keywords)."""

    message: str
    tokens: int
    limit: int
    source: str


class _LimiterActor:
    """The body of the limiter's Ray actor: one :class:`RateLimiter` on the actor's clock.

    Each reservation is held for an *owner* (one batch of one Extract actor). An owner that
    ends (its batch done, or its actor restarted after a crash) gives back what it still holds
    (:meth:`forget`), and any reservation held longer than ``lease`` seconds is dropped, so a
    process that died with requests in flight cannot keep their slots for ever.
    """

    def __init__(
        self,
        rpm: int | None,
        tpm: int | None,
        max_in_flight: int,
        window: float,
        margin: float,
        lease: float,
    ) -> None:
        self._limiter = RateLimiter(
            rpm, tpm, max_in_flight=max_in_flight, window=window, margin=margin
        )
        self._lease = lease
        self._held: dict[int, tuple[Reservation, str]] = {}
        self._next_expiry = 0.0

    def reserve(self, tokens: int, owner: str) -> Reservation | Wait | _TooLarge:
        now = time.monotonic()
        self._expire(now)
        try:
            got = self._limiter.reserve(tokens, now)
        except RequestTooLargeError as exc:
            return _TooLarge(str(exc), exc.tokens, exc.limit, exc.source)
        if isinstance(got, Reservation):
            self._held[got.id] = (got, owner)
        return got

    def release(
        self,
        reservation: Reservation,
        headers: Mapping[str, str] | None,
        actual_tokens: int | None,
    ) -> None:
        if self._held.pop(reservation.id, None) is None:
            return  # dropped already (its lease ran out, or its owner was forgotten)
        self._limiter.release(
            reservation, time.monotonic(), headers=headers, actual_tokens=actual_tokens
        )

    def rate_limited(
        self,
        reservation: Reservation,
        retry_after: float | str | None,
        headers: Mapping[str, str] | None,
    ) -> float:
        if self._held.pop(reservation.id, None) is None:
            return 1.0  # dropped already (after its lease): back off, teach nothing
        return self._limiter.rate_limited(
            reservation, time.monotonic(), retry_after=retry_after, headers=headers
        )

    def give_back(self, answer: Reservation | Wait | _TooLarge) -> None:
        """An answer to :meth:`reserve` that nobody took: its slot is freed."""
        if isinstance(answer, Reservation) and answer.id in self._held:
            self._drop(answer)

    def stats(self) -> LimiterStats:
        return self._limiter.stats(time.monotonic())

    def in_flight(self) -> int:
        return self._limiter.in_flight

    def forget(self, owner: str, prefix: bool = False) -> int:
        """Give back the reservations ``owner`` holds (every owner starting so, with
        ``prefix``); how many there were."""
        gone = [
            res
            for res, who in self._held.values()
            if who == owner or (prefix and who.startswith(owner))
        ]
        for res in gone:
            self._drop(res)
        return len(gone)

    def _expire(self, now: float) -> None:
        if now < self._next_expiry:
            return
        self._next_expiry = now + min(1.0, self._lease / 10)
        for res in [r for r, _ in self._held.values() if now - r.granted_at > self._lease]:
            self._drop(res)

    def _drop(self, res: Reservation) -> None:
        # Its grant stays in the window logs (the server may well have counted it); only its
        # slot in flight is given back. Not a success: latency and rate are not taught.
        self._held.pop(res.id, None)
        self._limiter._close(res)


_ACTOR_CLASS: Any = None


def _actor_class() -> Any:
    global _ACTOR_CLASS
    if _ACTOR_CLASS is None:
        remote: Any = ray.remote  # its overloads do not know max_concurrency
        _ACTOR_CLASS = remote(num_cpus=0, max_restarts=-1, max_task_retries=-1, max_concurrency=1)(
            _LimiterActor
        )
    return _ACTOR_CLASS


def _limit_headers(headers: Mapping[str, str] | None) -> dict[str, str] | None:
    """The headers that teach the limiter, as a plain dict (an httpx ``Headers`` does not
    need to cross the process boundary, and the rest of the response stays here)."""
    if headers is None:
        return None
    out: dict[str, str] = {}
    try:
        for name, value in headers.items():
            if isinstance(name, str) and isinstance(value, str):
                low = name.lower()
                if low.startswith(_LIMIT_HEADERS) or low == "date":
                    out[low] = value
    except (AttributeError, TypeError, ValueError):
        return None
    return out


class SharedLimiter(RateLimiter):
    """A :class:`RateLimiter` that lives in a Ray actor, for every actor of a dataset's run.

    Construct it in the driver (it starts the actor: Ray must be initialised, or is then) and
    pass it as ``limiter=`` to :class:`Extract` or :func:`extract`. It pickles: each copy talks
    to the same actor. The arguments are :class:`RateLimiter`'s: ``rpm``/``tpm`` the account's
    limits (None: learned from the server's headers), ``max_in_flight`` the requests in flight
    over the whole cluster, ``window`` the seconds the limits are per. ``lease``: a reservation
    not given back after that many seconds (its process died) frees its slot. ``name``: a named
    actor (``get_if_exists``), so that several jobs in one Ray namespace share the limits (the
    first to create it sets them).

    The ``now`` its methods take is ignored: the time is the actor's, read there, since a
    caller's clock is another machine's. ``reserve`` never blocks (it answers a short
    :class:`Wait` until the actor's answer is back), ``release`` is not waited for; the others
    block for a round trip (about 2 ms on one node).
    """

    def __init__(
        self,
        rpm: int | None = None,
        tpm: int | None = None,
        *,
        max_in_flight: int = 32,
        window: float = 60.0,
        margin: float = 0.02,
        lease: float = _DEFAULT_LEASE,
        name: str | None = None,
    ) -> None:
        # Not RateLimiter.__init__: the state is the actor's. Checked here, not in the actor.
        RateLimiter(rpm, tpm, max_in_flight=max_in_flight, window=window, margin=margin)
        if not lease > 0:
            raise ValueError("lease must be a positive number of seconds")
        self.window = float(window)
        self.max_in_flight = max_in_flight
        self._owner = ""
        self._pending: tuple[Any, int] | None = None  # (answer ref, tokens asked)
        options: dict[str, Any] = {}
        if name is not None:
            options.update(name=name, get_if_exists=True)
        self._actor: Any = (
            _actor_class()
            .options(**options)
            .remote(rpm, tpm, max_in_flight, float(window), margin, float(lease))
        )

    def _for_owner(self, owner: str) -> SharedLimiter:
        """This limiter, holding its reservations for ``owner``."""
        view = copy.copy(self)
        view._owner = owner
        return view

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_pending": None}

    def reserve(self, tokens: int, now: float = 0.0) -> Reservation | Wait:
        """As :meth:`RateLimiter.reserve`, without blocking: the question goes to the actor,
        and until its answer is back the answer is a short :class:`Wait` (ask again then).
        An event loop calling it is never held up by the round trip."""
        pending = self._pending
        if pending is None or pending[1] != tokens:
            if pending is not None:  # the answer to an earlier question: not wanted now
                self._actor.give_back.remote(pending[0])
            pending = self._pending = (self._actor.reserve.remote(tokens, self._owner), tokens)
        ready, _ = ray.wait([pending[0]], timeout=0)
        if not ready:
            return Wait(_POLL, "requests")
        self._pending = None
        got = ray.get(pending[0])
        if isinstance(got, _TooLarge):
            raise RequestTooLargeError(
                got.message, tokens=got.tokens, limit=got.limit, source=got.source
            )
        assert isinstance(got, (Reservation, Wait))
        return got

    def release(
        self,
        reservation: Reservation,
        now: float = 0.0,
        *,
        headers: Mapping[str, str] | None = None,
        actual_tokens: int | None = None,
    ) -> None:
        # Not waited for: calls from one process to an actor run in the order they were made,
        # so this caller's next reserve() comes after it.
        self._actor.release.remote(reservation, _limit_headers(headers), actual_tokens)

    def rate_limited(
        self,
        reservation: Reservation,
        now: float = 0.0,
        *,
        retry_after: float | str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> float:
        pause = ray.get(
            self._actor.rate_limited.remote(reservation, retry_after, _limit_headers(headers))
        )
        return float(pause)

    @property
    def in_flight(self) -> int:
        return int(ray.get(self._actor.in_flight.remote()))

    def stats(self, now: float = 0.0) -> LimiterStats:
        """As :meth:`RateLimiter.stats`; ``paused_until`` is on the actor's monotonic clock."""
        got = ray.get(self._actor.stats.remote())
        assert isinstance(got, LimiterStats)
        return got

    def forget(self, owner: str | None = None, *, prefix: bool = False) -> int:
        """Give back every reservation held for ``owner`` (default: this copy's)."""
        return int(
            ray.get(self._actor.forget.remote(self._owner if owner is None else owner, prefix))
        )


# --- the map_batches callable ----------------------------------------------------------------


class ExtractStopped(OpenAIClientError):
    """A batch's run stopped: an error that would fail every row the same way (the key, the
    model, the schema). ``cause_type`` names it (``AuthenticationError``, ...); the message is
    the :class:`~openai_structured.bulk.BulkStopped`'s, without the API key. It pickles, so it
    reaches the driver inside Ray's error."""

    def __init__(self, message: str, cause_type: str = "") -> None:
        super().__init__(message)
        self.cause_type = cause_type

    def __reduce__(self) -> tuple[Any, tuple[str, str]]:
        return (type(self), (str(self.args[0]) if self.args else "", self.cause_type))


ClientFactory = Callable[[], Any]


def _check_options(options: Mapping[str, Any]) -> None:
    for name, why in _REFUSED.items():
        if name in options:
            raise TypeError(f"Extract does not take {name}=: {why}")


def _native(value: Any) -> Any:
    """A numpy value as the Python one."""
    tolist = getattr(value, "tolist", None)
    return tolist() if callable(tolist) else value


def _to_arrow(batch: Any) -> Any:
    """A batch in any of Ray Data's formats (pyarrow, pandas, dict of numpy) as a pyarrow
    Table."""
    if isinstance(batch, pa.Table):
        return batch
    if isinstance(batch, Mapping):
        batch = {k: [_native(v) for v in column] for k, column in batch.items()}
        return pa.Table.from_pydict(batch)
    return BlockAccessor.for_block(BlockAccessor.batch_to_block(batch)).to_arrow()


class Extract:
    """The callable class for ``Dataset.map_batches``: each batch of rows through a BulkRun.

    Pass the class, with its arguments as ``fn_constructor_kwargs`` (or use :func:`extract`,
    which does that)::

        ds.map_batches(Extract, fn_constructor_kwargs={...}, concurrency=4, batch_size=64,
                       batch_format="pyarrow")

    Arguments are :class:`~openai_structured.bulk.BulkRun`'s: ``model``, ``request`` (called
    with each row as a dict of its columns; returns the call's prompt), ``output_schema`` /
    ``schema``, ``concurrency`` (requests in flight *per actor*), ``max_retries`` and
    ``**options`` (``max_validation_retries``, ``max_output_tokens``, ``temperature``, ...).
    ``rpm``/``tpm``/``rate_window`` without ``limiter`` give each actor a limiter of its own at
    those limits (so the cluster may send ``actors`` times as much): pass a
    :class:`SharedLimiter` as ``limiter`` to keep the whole cluster within them.

    The client: ``client`` is a function that builds it (called once in each actor: e.g.
    ``lambda: openai.AsyncOpenAI(base_url=...)``); else ``base_url`` / ``api_key``; else the
    actor's environment, as :class:`BulkRun` does. A key read from the environment of the
    actors never travels with the task; one passed as ``api_key`` does.

    The output: the input columns (``keep_columns``: True, False for none but the id, or the
    names to keep; an input column named as an outcome column is replaced), the id column
    (``id_column``; a row's 1-based position in its batch when the dataset has no such
    column), then :data:`OUTCOME_SCHEMA`. ``done``: record keys not to request again (the
    row comes out with ``skipped`` True, no result and no error).
    """

    def __init__(
        self,
        *,
        model: str,
        request: Callable[[dict[str, Any]], Mapping[str, Any]],
        output_schema: Any = None,
        schema: Mapping[str, Any] | None = None,
        client: ClientFactory | None = None,
        base_url: str | None = None,
        api_key: str | None = None,
        concurrency: int | None = None,
        rpm: int | None = None,
        tpm: int | None = None,
        rate_window: float = 60.0,
        max_retries: int = 2,
        limiter: RateLimiter | None = None,
        id_column: str = "id",
        keep_columns: bool | Sequence[str] = True,
        done: Collection[str] | None = None,
        **options: Any,
    ) -> None:
        _check_options(options)
        if limiter is not None and (rpm is not None or tpm is not None):
            raise ValueError("rpm/tpm are the limiter's business: give them to SharedLimiter")
        if id_column in OUTCOME_COLUMNS:
            raise ValueError(f"id_column {id_column!r} is the name of an outcome column")
        if client is not None and not callable(client):
            raise TypeError(_CLIENT_FACTORY)
        self.model = model
        self._request = request
        self._options = options
        self._run_args: dict[str, Any] = {
            "model": model,
            "output_schema": output_schema,
            "schema": schema,
            "concurrency": concurrency,
            "max_retries": max_retries,
            **options,
        }
        BulkRun(request=request, **self._run_args)  # the same checks, before any batch
        self.id_column = id_column
        self.keep_columns = keep_columns
        self.done: frozenset[str] = frozenset(done or ())
        self._client = check_client(_build_client(client, base_url, api_key), asynchronous=True)
        self._secret: str | None = getattr(self._client, "api_key", None)
        self._owner = _owner_name()
        self._batches = itertools.count(1)
        if isinstance(limiter, SharedLimiter):
            # After a crash Ray restarts this actor under the same id: what the dead process
            # still held is given back now rather than when its lease runs out.
            limiter.forget(self._owner + ":", prefix=True)
            self._limiter: RateLimiter = limiter
        elif limiter is not None:
            self._limiter = limiter
        else:  # one per actor, for all its batches (its loop is the only thread using it)
            self._limiter = RateLimiter(
                rpm, tpm, max_in_flight=concurrency or 16, window=rate_window
            )
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="ostruct-ray-loop", daemon=True
        )
        self._thread.start()
        # At exit, stop the loop first: a daemon thread still running when the interpreter
        # finalizes can crash it (Ray ends an actor's process with sys.exit).
        atexit.register(_stop_loop, self._loop, self._thread)

    def __reduce__(self) -> Any:
        raise TypeError(
            "an Extract holds a client and an event loop and is not sent anywhere: pass the "
            "class to map_batches (map_batches(Extract, fn_constructor_kwargs={...})), or use "
            "openai_structured.bulk.ray.extract()"
        )

    def __call__(self, batch: Any) -> Any:
        table = _to_arrow(batch)
        rows = table.to_pylist()
        keys = self._done_keys(rows) if self.done else {}
        todo = [i for i in range(len(rows)) if i not in keys]
        future = asyncio.run_coroutine_threadsafe(
            self._outcomes([rows[i] for i in todo]), self._loop
        )
        try:
            outcomes = future.result()
        except BulkStopped as stop:
            raise ExtractStopped(self._clean(str(stop)), type(stop.cause).__name__) from None
        by_row: dict[int, Outcome] = {todo[o.position - 1]: o for o in outcomes}
        if len(by_row) != len(todo):  # BulkRun yields one outcome per record, or raises
            raise RuntimeError(f"{len(todo) - len(by_row)} rows of the batch got no outcome")
        return self._table(table, keys, by_row)

    # -- internals ----------------------------------------------------------------------------

    def _done_keys(self, rows: list[dict[str, Any]]) -> dict[int, str]:
        """The rows whose record key is in ``done``: the key BulkRun would give them."""
        profile = profile_for(self._client, self._options.get("server"))
        options = self._options
        found: dict[int, str] = {}
        for i, row in enumerate(rows):
            try:
                call = _prepare(
                    profile, self.model, self._run_args["output_schema"],
                    self._run_args["schema"], {**options, **self._request(row)}, stream=False,
                )  # fmt: skip
                key = _key(self.model, call)
            except Exception:
                continue  # BulkRun reports it
            if key in self.done:
                found[i] = key
        return found

    async def _outcomes(self, rows: list[dict[str, Any]]) -> list[Outcome]:
        if not rows:
            return []
        limiter = self._limiter
        owner = f"{self._owner}:{next(self._batches)}"
        if isinstance(limiter, SharedLimiter):
            limiter = limiter._for_owner(owner)
        run = BulkRun(
            request=self._row_request, client=self._client, output=None, limiter=limiter,
            **self._run_args,
        )  # fmt: skip
        records = [Record(id=i, variables=row, source=f"row {i}") for i, row in enumerate(rows, 1)]
        try:
            return [outcome async for outcome in run.arun(records)]
        finally:
            if isinstance(limiter, SharedLimiter):
                await asyncio.to_thread(limiter.forget)

    def _row_request(self, record: Record) -> Mapping[str, Any]:
        return self._request(dict(record.variables))

    def _clean(self, text: str) -> str:
        return redact_text(text, [self._secret])

    def _result(self, value: Any) -> str:
        text = json.dumps(to_jsonable_python(value), ensure_ascii=False)
        key = self._secret
        if isinstance(key, str) and len(key) >= 8:
            text = text.replace(key, "[REDACTED]")
        return text

    def _table(
        self, table: Any, skipped: Mapping[int, str], outcomes: Mapping[int, Outcome]
    ) -> Any:
        names = table.column_names
        if self.keep_columns is True:
            kept = list(names)
        elif self.keep_columns is False:
            kept = [self.id_column] if self.id_column in names else []
        else:
            missing = [c for c in self.keep_columns if c not in names]
            if missing:
                raise ValueError(f"keep_columns: the dataset has no column {missing[0]!r}")
            kept = list(self.keep_columns)
            if self.id_column in names and self.id_column not in kept:
                kept.insert(0, self.id_column)
        arrays: dict[str, Any] = {c: table.column(c) for c in kept if c not in OUTCOME_COLUMNS}
        n = table.num_rows
        if self.id_column not in names:
            arrays[self.id_column] = pa.array(range(1, n + 1), type=pa.int64())
        cols: dict[str, list[Any]] = {name: [] for name in OUTCOME_COLUMNS}
        for i in range(n):
            outcome = outcomes.get(i)
            if outcome is None:  # skipped: in done
                values: tuple[Any, ...] = (skipped[i], None, None, None, 0, 0, None, 0, True)
            else:
                error = outcome.error
                values = (
                    outcome.key,
                    None if error is not None else self._result(outcome.value),
                    None if error is None else type(error).__name__,
                    None if error is None else self._clean(str(error)),
                    outcome.usage.prompt_tokens,
                    outcome.usage.completion_tokens,
                    outcome.cost,
                    outcome.attempts,
                    False,
                )
            for name, value in zip(OUTCOME_COLUMNS, values, strict=True):
                cols[name].append(value)
        for field in OUTCOME_SCHEMA:
            arrays[field.name] = pa.array(cols[field.name], type=field.type)
        return pa.table(arrays)


_CLIENT_FACTORY = (
    "client= takes a function that builds the client, called once in each actor (a client "
    "cannot travel to the actors): e.g. client=lambda: openai.AsyncOpenAI(base_url=...)"
)


def _stop_loop(loop: asyncio.AbstractEventLoop, thread: threading.Thread) -> None:
    with contextlib.suppress(RuntimeError):  # closed already
        loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=2.0)


def _build_client(factory: ClientFactory | None, base_url: str | None, api_key: str | None) -> Any:
    if factory is not None:
        client = factory()
        if client is None:
            raise TypeError(_CLIENT_FACTORY)
        return client
    if base_url is not None or api_key is not None:
        key = api_key or os.environ.get("OPENAI_API_KEY") or "not-needed"
        return openai.AsyncOpenAI(base_url=base_url, api_key=key)
    return default_client(asynchronous=True)


def _owner_name() -> str:
    """This actor's id (the same after Ray restarts it), else a name of this process's own."""
    try:
        actor = ray.get_runtime_context().get_actor_id()
    except Exception:
        actor = None
    return str(actor) if actor else f"pid{os.getpid()}-{uuid.uuid4().hex[:12]}"


# --- the one-call face -----------------------------------------------------------------------


def extract(
    dataset: ray.data.Dataset,
    *,
    model: str,
    request: Callable[[dict[str, Any]], Mapping[str, Any]],
    output_schema: Any = None,
    schema: Mapping[str, Any] | None = None,
    actors: int = 2,
    batch_size: int = 64,
    concurrency: int | None = None,
    rpm: int | None = None,
    tpm: int | None = None,
    rate_window: float = 60.0,
    max_in_flight: int | None = None,
    limiter: SharedLimiter | None = None,
    client: ClientFactory | None = None,
    base_url: str | None = None,
    api_key: str | None = None,
    id_column: str = "id",
    keep_columns: bool | Sequence[str] = True,
    done: Collection[str] | None = None,
    max_retries: int = 2,
    num_cpus: float = 0.5,
    ray_remote_args: Mapping[str, Any] | None = None,
    **options: Any,
) -> ray.data.Dataset:
    """``dataset`` through :class:`Extract` on ``actors`` actors, within one shared limit.

    A :class:`SharedLimiter` at ``rpm``/``tpm`` per ``rate_window`` seconds (None: learned from
    the server) with ``max_in_flight`` requests in flight over the cluster (default: ``actors``
    times ``concurrency``, 16 a actor) is made unless ``limiter`` is given. Batches of
    ``batch_size`` rows, as pyarrow; the actors take ``num_cpus`` each (the work is mostly
    waiting) and are restarted by Ray if they die, their batch retried. ``ray_remote_args``
    goes to ``map_batches`` as well (``max_restarts``, ``runtime_env``, ...). The rest is
    :class:`Extract`'s. Lazy, as Ray Data is: nothing is sent before the dataset is consumed.
    """
    _check_options(options)
    if not (isinstance(actors, int) and actors >= 1):
        raise ValueError(f"actors must be a whole number >= 1, got {actors!r}")
    if limiter is None:
        width = max_in_flight or actors * (concurrency or 16)
        limiter = SharedLimiter(rpm, tpm, max_in_flight=width, window=rate_window)
    elif rpm is not None or tpm is not None or max_in_flight is not None:
        raise ValueError("rpm/tpm/max_in_flight are the limiter's business: give them to it")
    kwargs: dict[str, Any] = {
        "model": model,
        "request": request,
        "output_schema": output_schema,
        "schema": schema,
        "client": client,
        "base_url": base_url,
        "api_key": api_key,
        "concurrency": concurrency,
        "max_retries": max_retries,
        "limiter": limiter,
        "id_column": id_column,
        "keep_columns": keep_columns,
        "done": frozenset(done) if done else None,
        **options,
    }
    # Ray Data restarts a dead actor (max_restarts=-1) and retries its batch
    # (max_task_retries=-1) unless ray_remote_args says otherwise.
    return dataset.map_batches(
        Extract,
        fn_constructor_kwargs=kwargs,
        batch_size=batch_size,
        batch_format="pyarrow",
        compute=ray.data.ActorPoolStrategy(size=actors),
        num_cpus=num_cpus,
        **dict(ray_remote_args or {}),
    )


def finished_keys(output: ray.data.Dataset | Iterable[Mapping[str, Any]]) -> frozenset[str]:
    """The record keys of the rows of an earlier output that need no new request: those
    without an error (answered then, or skipped then because answered before). ``output``: a
    dataset (``ray.data.read_parquet(...)``) or rows."""
    keys: set[str] = set()
    if isinstance(output, ray.data.Dataset):
        batches: Iterable[Any] = output.select_columns(["key", "error_type"]).iter_batches(
            batch_format="pyarrow", batch_size=65_536
        )
        for batch in batches:
            key_column, errors = batch.column("key"), batch.column("error_type")
            pairs = zip(key_column.to_pylist(), errors.to_pylist(), strict=True)
            keys.update(key for key, error in pairs if error is None and key)
        return frozenset(keys)
    for row in output:
        if row.get("error_type") is None and row.get("key"):
            keys.add(str(row["key"]))
    return frozenset(keys)
