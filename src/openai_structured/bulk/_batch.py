"""The OpenAI Batch API as the bulk runner's backend: half the price, its own rate limits.

``BulkRun(..., backend=OpenAIBatch())`` runs the same records into the same output as a live
run, through files and batches instead of one request per record::

    build lines -> upload (POST /v1/files) -> create (POST /v1/batches) -> poll (GET ...)
        -> download output and error files -> decode each line -> the journal and the output

Each request is built by the same request builder as a live call (``custom_id`` = the record
key) and each answer is decoded by the same outcome table (:class:`~.._call.CallRun`), so a
batch record fails with the same typed error a live one would; an invalid answer is re-asked
in a follow-up batch when ``max_validation_retries`` is set.

Every step is recorded in the journal before the next (:mod:`._ledger`): a process killed at
any point resumes where it was on the next run of the same command, polling the batches it
created and never creating one twice. A batch whose creation went out but whose answer never
came back (a crash, a dropped connection) is found in the account's batch list by its input
file. A batch that expires keeps its answered lines; the rest go into a new batch. A batch
cancelled (``ostruct batch --cancel``) stops the run; the rerun sends what it had not done.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import openai
from pydantic_core import to_jsonable_python

from .._call import CallRun
from .._logging import LogSink
from .._reask import check_retries
from .._request import PreparedCall
from .._usage import TokenUsage
from ..client import _call_run, _prepare, _sink
from ..errors import OpenAIClientError
from ..tokens import estimate_cost
from ._batch_lines import (
    MAX_FILE_BYTES,
    MAX_FILE_LINES,
    BatchLineError,
    PartBuilder,
    ResultLine,
    body_text,
    parse_result_lines,
    request_line,
)
from ._inputs import BadRecord, DuplicateIdError
from ._journal import Journal, RecordId
from ._ledger import LOCAL_TAG, BatchLedger, Part, Snapshot

if TYPE_CHECKING:
    from ._runner import BulkRun, Outcome

__all__ = [
    "BatchCancelledError",
    "BatchFailedError",
    "BatchFiles",
    "BatchSubmitError",
    "OpenAIBatch",
]

#: Batch statuses after which nothing more happens to a batch.
TERMINAL = frozenset({"completed", "expired", "cancelled", "failed"})
#: Account-wide conditions worth a wait and another try when creating a batch.
_CREATE_TRANSIENT: tuple[type[BaseException], ...] = (
    openai.APIConnectionError,
    openai.InternalServerError,
)
#: Failures of a status check or a download that the next check may not have.
_POLL_TRANSIENT: tuple[type[BaseException], ...] = (
    *_CREATE_TRANSIENT,
    openai.RateLimitError,
    openai.ConflictError,
)
_CREATE_TRIES = 5
_POLL_TRIES = 8  # status checks in a row that may fail (the network, 5xx) before the run stops
_YIELD_EVERY = 256  # records between two chances for the event loop to run other tasks
_LIST_PAGES = 50  # batches looked through (x100) for one whose creation was not recorded


class BatchSubmitError(OpenAIClientError):
    """A batch could not be created (or its file uploaded): nothing of it was recorded as
    done; rerun the same command once the cause is fixed."""


class BatchFailedError(OpenAIClientError):
    """The Batch API refused a batch's input file (``errors`` as it gave them)."""

    def __init__(self, message: str, *, batch_id: str, errors: list[Mapping[str, Any]]) -> None:
        super().__init__(message)
        self.batch_id = batch_id
        self.errors = errors


class BatchCancelledError(OpenAIClientError):
    """A batch of the run was cancelled: its answered lines are kept, the rest wait for the
    next run of the same command."""


def _step(name: str) -> None:
    """A seam between two steps of the batch protocol (the crash tests stop the process
    here)."""


@dataclass(frozen=True)
class OpenAIBatch:
    """The Batch API backend. ``poll_interval``: seconds before the first status check,
    growing by half each time up to ``max_poll_interval``. ``max_lines`` / ``max_bytes``: the
    size of one input file (the Batch API's limits by default). ``max_resubmits``: how many
    times a request that got no answer (its batch expired, its line failed with a server error
    or status 0) is sent again in a new batch. ``metadata``: added to each batch's own."""

    poll_interval: float = 10.0
    max_poll_interval: float = 300.0
    max_lines: int = MAX_FILE_LINES
    max_bytes: int = MAX_FILE_BYTES
    max_resubmits: int = 2
    completion_window: str = "24h"
    metadata: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 1 <= self.max_lines <= MAX_FILE_LINES:
            raise ValueError(f"max_lines must be 1..{MAX_FILE_LINES}, got {self.max_lines!r}")
        if not 1 <= self.max_bytes <= MAX_FILE_BYTES:
            raise ValueError(f"max_bytes must be 1..{MAX_FILE_BYTES}, got {self.max_bytes!r}")
        if self.poll_interval < 0 or self.max_poll_interval < self.poll_interval:
            raise ValueError("poll_interval must be >= 0 and <= max_poll_interval")
        if self.max_resubmits < 0:
            raise ValueError(f"max_resubmits must be >= 0, got {self.max_resubmits!r}")

    #: The backend talks to the server: BulkRun hands it a client.
    needs_client: ClassVar[bool] = True

    def arun(
        self, run: BulkRun, client: Any, records: Iterable[Any] | AsyncIterable[Any]
    ) -> AsyncIterator[Outcome]:
        profile = _profile(run, client)
        if not profile.supports_batch_api:
            raise OpenAIClientError(
                f"the {profile.name} server has no Batch API: run it live (no --backend), or "
                "write the requests to a file for its own batch runner (--write-requests, "
                "vllm run-batch; docs/bulk.md)"
            )
        return _BatchJob(self, run, client, "api").arun(records)


@dataclass(frozen=True)
class BatchFiles:
    """Batch files for another engine (``vllm run-batch`` reads and writes the OpenAI batch
    format): give ``write_requests`` to write the requests the records still need, or
    ``import_results`` to decode the result file the engine wrote into the output. The
    journal matches results to records by ``custom_id``, so the same input, template and
    model must be used for both; re-asks (``max_validation_retries``) take one more round of
    write, run, import. Nothing is sent anywhere."""

    write_requests: str | os.PathLike[str] | None = None
    import_results: str | os.PathLike[str] | None = None
    max_lines: int = 10**9  # one file: other engines have no limit on its size
    max_bytes: int = 2**62
    max_resubmits: int = 2
    needs_client: ClassVar[bool] = False

    def __post_init__(self) -> None:
        if (self.write_requests is None) == (self.import_results is None):
            raise ValueError("give write_requests= or import_results=, one of them")

    def arun(
        self, run: BulkRun, client: Any, records: Iterable[Any] | AsyncIterable[Any]
    ) -> AsyncIterator[Outcome]:
        if self.write_requests is not None:
            return _BatchJob(self, run, None, "write", Path(self.write_requests)).arun(records)
        assert self.import_results is not None
        return _BatchJob(self, run, None, "import", Path(self.import_results)).arun(records)


# --- what to do with one record --------------------------------------------------------------


@dataclass(frozen=True)
class _Finished:
    value: Any = None
    error: BaseException | None = None
    usage: TokenUsage = field(default_factory=TokenUsage)
    attempts: int = 1


@dataclass(frozen=True)
class _Submit:
    custom_id: str
    body: str


_WAITING = None


@dataclass
class _Pending:
    """Records waiting for the answer to one request (the same request for all of them)."""

    shape: PreparedCall  # the call without its kwargs: what decoding needs
    records: list[tuple[RecordId, int]]
    estimates: list[float] = field(default_factory=list)


def decide(
    shape: PreparedCall,
    key: str,
    ledger: BatchLedger | Snapshot,
    options: Mapping[str, Any],
    log: LogSink,
    max_resubmits: int,
) -> _Finished | _Submit | None:
    """Where a record stands, from what the ledger holds: finished, a request to send, or
    waiting for a batch. Pure but for the ledger's reads: replaying the stored answers gives
    the same decision every time (after a crash too)."""
    first = ledger.body(key)
    assert first is not None, "decide() is for records whose first request was recorded"
    # Re-asks already sent are followed whatever this run's max_validation_retries: their
    # answers are paid for.
    retries, sent_reasks = check_retries(options.get("max_validation_retries")), 0
    while ledger.sendings(f"{key}~{sent_reasks + 2}"):
        sent_reasks += 1
    if sent_reasks > retries:
        options = {**options, "max_validation_retries": sent_reasks}
    run: CallRun = _call_run(dataclasses.replace(shape, kwargs=json.loads(first)), options, log)
    custom_id = key
    while True:
        sendings = ledger.sendings(custom_id)
        result = ledger.result(custom_id)
        if not sendings:  # a re-ask not sent yet
            try:
                return _Submit(custom_id, body_text(run.request()))
            except OpenAIClientError as exc:  # max_total_tokens reached
                return _finished(run, exc)
        latest, state, _ = sendings[-1]
        # Counted: sendings that could have run it (not files for another engine, nor
        # batches that failed or were cancelled as a whole).
        sent = sum(counted for _, _, counted in sendings)
        body = ledger.body(custom_id)
        assert body is not None
        if result is None or result.part < latest:
            if state != "ended":
                return _WAITING
            if sent > max_resubmits:
                return _finished(run, BatchLineError(
                    f"no answer after {sent} batches (each ended without this request's line)",
                    custom_id=custom_id, status_code=None, code=None,
                ))  # fmt: skip
            return _Submit(custom_id, body)  # its batch expired or lost it: send it again
        if result.error is not None:
            if result.error.transient and sent <= max_resubmits:
                return _Submit(custom_id, body)
            return _finished(run, result.error)
        assert result.body is not None
        try:
            done = run.receive(result.body)
        except Exception as exc:
            return _finished(run, exc)
        if done:
            outcome = run.result()
            return _Finished(outcome.value, None, outcome.usage, outcome.attempts)
        custom_id = f"{key}~{len(run.errors) + 1}"  # a validation re-ask: the next attempt


def _finished(run: CallRun, exc: BaseException) -> _Finished:
    usage = TokenUsage()
    if run.usages:
        usage = run.result().usage
    return _Finished(None, exc, usage, max(len(run.usages), 1))


# --- the job -------------------------------------------------------------------------------


class _BatchJob:
    """One run of a BulkRun through batch files: the Batch API (``mode="api"``), or files for
    another engine (``"write"``: write the requests still needed; ``"import"``: decode the
    results it wrote)."""

    def __init__(
        self,
        backend: OpenAIBatch | BatchFiles,
        run: BulkRun,
        client: Any,
        mode: str = "api",
        path: Path | None = None,
    ) -> None:
        self.backend = backend
        self.run = run
        self.client = client
        self.mode = mode
        self.path = path
        self.pending: dict[str, _Pending] = {}
        self.stops: list[BaseException] = []
        self.log = _sink(client, run.options.get("on_log"), asynchronous=True)
        self._local: list[tuple[str, bytes, str]] = []  # write/import: the requests still needed
        self.profile = _profile(run, client)
        self._shapes: dict[tuple[Any, ...], PreparedCall] = {}
        self._halted = False  # a stop that sends nothing more (a refused batch, a run error)
        self._poll_failed = False
        self._poll_errors = 0

    async def arun(self, records: Iterable[Any] | AsyncIterable[Any]) -> AsyncIterator[Outcome]:
        from ._runner import BulkStopped

        run = self.run
        if run.output is None:
            raise ValueError(
                "batch runs need output=: its journal is what keeps a batch from being created "
                "(and paid for) twice, and what matches answers to records"
            )
        journal = Journal.open(run.output, params={**run._params(), "backend": self.mode})
        self.journal = journal
        self.ledger = journal.batch_ledger()
        self.tag = journal.batch_tag()
        self.url = _url(run)
        try:
            known: list[str] = []
            async for outcome in self._read(records, known):
                yield outcome
            if self.mode == "api":
                async for outcome in self._through_api(known):
                    yield outcome
            elif self.mode == "write":
                async for outcome in self._settle(known):
                    yield outcome
                self._write_file()
            else:
                async for outcome in self._import(known):
                    yield outcome
        finally:
            run.summary = journal.summary()
            run.waiting = len(self.pending)
            journal.close()
            await self.log.flush()
        if self.stops:
            cause = run._scrub(self.stops[0])
            raise BulkStopped(
                f"the run stopped: {type(cause).__name__}: {run._redact(str(cause))}",
                cause=cause, summary=run.summary,
            ) from cause  # fmt: skip

    async def _read(self, records: Any, known: list[str]) -> AsyncIterator[Outcome]:
        """Every record: finished before (its outcome), or a request: new (into files of the
        backend's size, sent as each fills) or sent by an earlier run (``known``)."""
        from ._runner import RUN_ERRORS, _Source

        builder = PartBuilder(self.url, self.backend.max_lines, self.backend.max_bytes)
        self._full: list[list[tuple[str, bytes, str]]] = []
        source = _Source(records)
        seen: set[str] = set()
        while (got := await source.next()) is not None:
            position, item = got
            try:
                outcome = self._admit(item, position, seen, known, builder)
            except RUN_ERRORS as exc:  # every record would fail so: send no more
                self.stops.append(exc)
                self._halted = True
                return
            if outcome is not None:
                yield outcome
            while self._full:
                await self._dispatch(self._full.pop(0))
            if position % _YIELD_EVERY == 0:
                await asyncio.sleep(0)  # a sync input never awaits: let the loop run
        if len(builder):
            await self._dispatch(builder.flush())

    async def _dispatch(self, lines: list[tuple[str, bytes, str]]) -> None:
        """Requests ready to go: a batch of their own, or the file for another engine."""
        if self.mode != "api":
            self._local.extend(lines)
        elif not self._halted:  # else not recorded: the rerun builds them again
            await self._send(self.ledger.add_part(self.tag, self.url, lines))

    async def _through_api(self, known: list[str]) -> AsyncIterator[Outcome]:
        # parts an earlier run left before their batch was recorded
        for part in self.ledger.parts():
            if part.state in ("built", "uploaded") and part.tag != LOCAL_TAG:
                await self._resume(part)
        # what the ledger already answers (a resumed run), then poll until done
        async for outcome in self._settle(known):
            yield outcome
        assert isinstance(self.backend, OpenAIBatch)
        interval = self.backend.poll_interval
        while active := self._active():
            await asyncio.sleep(interval)
            interval = min(interval * 1.5, self.backend.max_poll_interval)
            for part in active:
                ended = await self._poll(part)
                if ended:
                    async for outcome in self._settle(self._keys_of(part)):
                        yield outcome
        if self.pending and not self.stops:
            raise OpenAIClientError(
                f"{len(self.pending)} records were left waiting for a batch that is not "
                "running; rerun the same command (their requests are recorded)"
            )

    async def _resume(self, part: Part) -> None:
        """A part an earlier run built or uploaded but did not make a batch of: send it if
        every line is still wanted (within this run's budget), else send only those."""
        if self._halted:
            return
        if part.state == "uploaded":
            batch = await self._find(part)  # its creation may have gone out unrecorded
            if batch is not None:
                self.ledger.submitted(part.part, batch.id, batch.status)
                return
        lines = list(self.ledger.lines(part.part))
        wanted = [(cid, body) for cid, body in lines if cid.split("~", 1)[0] in self.pending]
        estimates: list[float] = []
        for cid, body in wanted:
            try:
                estimate = self.run._spend.admit(_batch_estimate_body(self.run, body))
            except Exception as exc:  # the budget: what is not admitted waits for the rerun
                self.stops.append(exc)
                for spent in estimates:
                    self.run._spend.refund(spent)
                return
            estimates.append(estimate)
            self.pending[cid.split("~", 1)[0]].estimates.append(estimate)
        if len(wanted) == len(lines):
            await self._send(part)
            return
        # Some of its records changed since: the part is not sent; its wanted lines go into
        # a new one (a file already uploaded is left unused).
        self.ledger.abandon(part.part, f"{len(lines) - len(wanted)} of its records changed")
        if wanted:
            builder = PartBuilder(part.url, self.backend.max_lines, self.backend.max_bytes)
            parts = [p for p in (builder.add(cid, body) for cid, body in wanted) if p]
            for lines_ in [*parts, builder.flush()]:
                await self._dispatch(lines_)

    # --- files for other engines ----------------------------------------------------------

    def _write_file(self) -> None:
        """Write the requests still needed to the file, and record them (as a local part)."""
        from ._journal import OutputPathError

        assert self.path is not None
        lines = self._local
        tmp = self.path.with_name(f".{self.path.name}.ostruct-tmp")
        try:
            with open(tmp, "wb") as handle:
                for _, line, _ in lines:
                    handle.write(line)
            part = self.ledger.add_part(LOCAL_TAG, self.url, lines) if lines else None
            os.replace(tmp, self.path)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise OutputPathError(
                f"cannot write {self.path}: {exc.strerror}; choose another --write-requests "
                "(nothing was recorded as written)",
                path=self.path,
            ) from exc
        if part is not None:
            self.ledger.written(part.part, str(self.path))
        self.run.notes.append(
            f"wrote {len(lines)} request{'s' if len(lines) != 1 else ''} to {self.path}"
            + (f" ({len(self.pending) - len(lines)} more wait for earlier files' results)"
               if len(self.pending) > len(lines) else "")
        )  # fmt: skip

    async def _import(self, known: list[str]) -> AsyncIterator[Outcome]:
        """Decode the result lines of a file another engine wrote from our requests."""
        assert self.path is not None
        try:
            data = self.path.read_bytes()
        except OSError as exc:
            raise OpenAIClientError(f"cannot read {self.path}: {exc.strerror}") from exc
        matched: list[tuple[int, ResultLine]] = []
        unknown = 0
        for result in parse_result_lines(data, str(self.path)):
            sendings = self.ledger.sendings(result.custom_id)
            if not sendings:
                unknown += 1
                continue
            matched.append((sendings[-1][0], self._redacted(result)))
        self.ledger.store_results(matched)
        never = len(self._local)  # records whose request was never written
        self._local = []
        async for outcome in self._settle(known):
            yield outcome
        notes = self.run.notes
        notes.append(f"imported {len(matched)} result line{'s' if len(matched) != 1 else ''}"
                     f" from {self.path}")  # fmt: skip
        if unknown:
            notes.append(
                f"{unknown} line{'s' if unknown != 1 else ''} of {self.path} match no request "
                "of this output (another input, template or model?); they were left out"
            )
        again = len(self._local) + never
        if again:
            notes.append(
                f"{again} record{'s need' if again != 1 else ' needs'} another request (a "
                "re-ask, or no line in the results): run --write-requests again, then import "
                "its results"
            )

    # --- building ---------------------------------------------------------------------------

    def _admit(
        self, item: Any, position: int, seen: set[str], known: list[str], builder: PartBuilder
    ) -> Outcome | None:
        """One input record: its outcome if it needs no request, else None (it waits)."""
        from ._runner import RUN_ERRORS, _bad_key, _check_unique, _key, record_id

        run = self.run
        rid = record_id(item, position)
        try:
            _check_unique(rid, seen)
            if isinstance(item, BadRecord):
                raise item.error
            merged = {**run.options, **run.request(item)}
            call = _prepare(
                self.profile, run.model, run.output_schema, run.schema, merged, stream=False
            )
        except RUN_ERRORS:
            raise
        except DuplicateIdError as exc:
            run.duplicates += 1
            return run._failed(None, rid, position, "", exc)
        except Exception as exc:
            bad = _bad_key(run.model, item)
            earlier = run._earlier(self.journal, rid, bad, position)
            return earlier or run._failed(self.journal, rid, position, bad, exc)
        key = _key(run.model, call)
        earlier = run._earlier(self.journal, rid, key, position)
        if earlier is not None:
            return earlier
        if run.retry_failed and self.journal.status(rid, key) == "failed":
            self.ledger.forget(key)  # its stored answer failed: ask again
        try:
            _call_run(call, merged, self.log)  # what a live call checks before sending
        except OpenAIClientError as exc:
            return run._failed(self.journal, rid, position, key, exc)
        pending = self.pending.get(key)
        if pending is not None:  # the same request as an earlier record: one answer for both
            pending.records.append((rid, position))
            return None
        pending = self.pending[key] = _Pending(self._shape(call, merged), [(rid, position)])
        if self.ledger.sendings(key):
            known.append(key)  # sent by an earlier run
            return None
        if self.stops:  # the budget ran out: not sent (the rerun sends it)
            return None
        try:
            estimate = run._spend.admit(_batch_estimate(run.model, call))
        except Exception as exc:
            self.stops.append(exc)
            return None
        try:
            full = builder.add(key, body_text(call.kwargs))
        except OpenAIClientError as exc:  # too big for a batch file: this record fails alone
            run._spend.refund(estimate)
            del self.pending[key]
            return run._failed(self.journal, rid, position, key, exc)
        pending.estimates.append(estimate)
        if full:
            self._full.append(full)
        return None

    def _shape(self, call: PreparedCall, options: Mapping[str, Any]) -> PreparedCall:
        """The call without its kwargs, shared by the records whose calls differ only in
        them (most runs: one for all), so that waiting records hold little."""
        if call.tools is not None:
            return dataclasses.replace(call, kwargs={})
        # The compiled schema and the output type live as long as the shape that holds them,
        # so their ids cannot be reused while it is in the table.
        sig = (call.limit, call.n, id(call.compiled), id(call.output),
               bool(options.get("validate_schema", True)))  # fmt: skip
        shape = self._shapes.get(sig)
        if shape is None:
            shape = self._shapes[sig] = dataclasses.replace(call, kwargs={})
        return shape

    # --- the protocol -----------------------------------------------------------------------

    async def _send(self, part: Part) -> None:
        """Upload the part's file and create its batch, recording each step first. A refusal
        stops the run (no more parts are sent; those sent before are still collected)."""
        try:
            await self._submit(part)
        except BatchSubmitError as exc:
            self.stops.append(exc)
            self._halted = True

    async def _submit(self, part: Part) -> None:
        client = self.client
        if part.state == "built":
            data = b"".join(
                request_line(cid, part.url, body) for cid, body in self.ledger.lines(part.part)
            )
            _step("upload")
            try:
                uploaded = await client.files.create(
                    file=(part.name, data, "application/jsonl"), purpose="batch"
                )
            except openai.APIError as exc:
                raise BatchSubmitError(
                    f"uploading {part.name} ({part.lines} requests) failed: {exc}; nothing "
                    "was sent for these records: rerun the same command to try again"
                ) from exc
            _step("uploaded")
            self.ledger.uploaded(part.part, uploaded.id)
            part = self.ledger.part(part.part)
        if part.state == "uploaded":
            batch = await self._find(part) if part.created_at < self.journal.started_at else None
            if batch is None:
                batch = await self._create(part)
            self.ledger.submitted(part.part, batch.id, batch.status)
            _step("submitted")

    async def _create(self, part: Part) -> Any:
        assert part.file_id is not None
        backend = self.backend
        assert isinstance(backend, OpenAIBatch)
        client = self.client.with_options(max_retries=0)  # a blind retry could create it twice
        metadata = {**backend.metadata, "ostruct_journal": self.tag}
        metadata["ostruct_part"] = str(part.part)
        for attempt in range(1, _CREATE_TRIES + 1):
            _step("create")
            try:
                batch = await client.batches.create(
                    input_file_id=part.file_id,
                    endpoint=part.url,
                    completion_window=backend.completion_window,
                    metadata=metadata,
                )
            except _CREATE_TRANSIENT as exc:
                # It may have been created all the same: look before creating another.
                found = await self._find(part)
                if found is not None:
                    return found
                if attempt == _CREATE_TRIES:
                    raise BatchSubmitError(
                        f"creating the batch of {part.name} failed {attempt} times ({exc}); "
                        "nothing was recorded as done: rerun the same command to try again"
                    ) from exc
                await asyncio.sleep(min(30.0, 0.5 * 2**attempt))
                continue
            except openai.APIError as exc:
                raise BatchSubmitError(
                    f"the Batch API refused to create the batch of {part.name}: {exc}; nothing "
                    "was recorded as done: fix the cause and rerun the same command"
                ) from exc
            _step("created")
            return batch
        raise AssertionError("unreachable")  # pragma: no cover

    async def _find(self, part: Part) -> Any:
        """The batch created from this part's file by a request whose answer was lost."""
        pages = 0
        async for batch in self.client.batches.list(limit=100):
            if batch.input_file_id == part.file_id:
                return batch
            if batch.created_at < part.created_at - 86_400:
                return None  # older than the part itself (a day of clock skew allowed)
            pages += 1
            if pages > _LIST_PAGES * 100:
                return None
        return None

    def _active(self) -> list[Part]:
        """The batches still running that a record of this run waits for (a batch nobody
        needs any more, e.g. of a prompt since changed, is left for ``--status``)."""
        if self._poll_failed:
            return []
        return [p for p in self.ledger.parts() if p.state == "submitted" and self._keys_of(p)]

    async def _poll(self, part: Part) -> bool:
        """Check one batch; when it is over, store its results (True). Checking and
        downloading can be repeated, so a passing network or server error is only counted:
        the run stops after several in a row (and the rerun polls on)."""
        assert part.batch_id is not None
        try:
            batch = await self.client.batches.retrieve(part.batch_id)
            counts = _counts(batch)
            if batch.status not in TERMINAL:
                self.ledger.polled(part.part, batch.status, counts)
                self._poll_errors = 0
                return False
            output = await self._download(batch.output_file_id)
            errors = await self._download(batch.error_file_id)
        except _POLL_TRANSIENT as exc:
            self._poll_errors += 1
            if self._poll_errors >= _POLL_TRIES:
                self.stops.append(exc)
                self._poll_failed = True
            return False
        self._poll_errors = 0
        results = [
            self._redacted(result)
            for data, name in ((output, "output"), (errors, "error"))
            for result in parse_result_lines(data, f"{name} file of batch {batch.id}")
        ]
        detail = self._detail(part, batch, counts, results)
        _step("download")
        self.ledger.ended(part.part, batch.status, counts, results, detail)
        _step("ended")
        return True

    def _redacted(self, result: ResultLine) -> ResultLine:
        """An error line's text without the client's key (a server may quote it back)."""
        error = result.error
        if error is None:
            return result
        text = self.run._redact(str(error))
        if text == str(error):
            return result
        clean = BatchLineError(
            text, custom_id=error.custom_id, status_code=error.status_code, code=error.code
        )
        return dataclasses.replace(result, error=clean)

    async def _download(self, file_id: str | None) -> bytes:
        if not file_id:
            return b""
        content = await self.client.files.content(file_id)
        return bytes(content.content)

    def _detail(
        self, part: Part, batch: Any, counts: Mapping[str, int], results: list[ResultLine]
    ) -> str | None:
        """What the run must say about an ended batch (and whether it stops the run)."""
        if batch.status == "failed":
            errors = [e.model_dump() for e in (getattr(batch.errors, "data", None) or [])]
            words = self.run._redact("; ".join(
                (f"line {e['line']}: " if e.get("line") is not None else "")
                + f"{e.get('message')} ({e.get('code')})"
                for e in errors[:5]
            ))  # fmt: skip
            self.stops.append(BatchFailedError(
                f"batch {batch.id} ({part.name}) failed: {words or 'no reason given'}; nothing "
                "of it was recorded as done: fix the cause and rerun the same command",
                batch_id=batch.id, errors=errors,
            ))  # fmt: skip
            return words
        if batch.status == "cancelled":
            answered = sum(r.body is not None for r in results)
            self.stops.append(BatchCancelledError(
                f"batch {batch.id} ({part.name}) was cancelled: its {answered} answered "
                f"line{'s are' if answered != 1 else ' is'} kept; rerun the same command to "
                "send the rest"
            ))  # fmt: skip
            return "cancelled"
        done = counts.get("completed", 0)
        if batch.status == "completed" and not batch.output_file_id and done:
            note = (
                f"batch {batch.id} reports {done} completed requests but has no output file: "
                "their answers cannot be read, and they are sent again (and paid for again)"
            )
            self.run.notes.append(note)
            return note
        return None

    # --- decoding ---------------------------------------------------------------------------

    def _keys_of(self, part: Part) -> list[str]:
        keys = {cid.split("~", 1)[0] for cid in self.ledger.custom_ids(part.part)}
        return [k for k in keys if k in self.pending]

    async def _settle(self, keys: Iterable[str]) -> AsyncIterator[Outcome]:
        """Decide each record waiting on ``keys``: write the finished, send the follow-ups."""
        run = self.run
        builder = PartBuilder(self.url, self.backend.max_lines, self.backend.max_bytes)
        parts: list[list[tuple[str, bytes, str]]] = []
        keys = list(keys)
        retries = int(run.options.get("max_validation_retries") or 0)
        reasks = (f"{key}~{n}" for key in keys for n in range(2, retries + 2))
        ledger = self.ledger.snapshot([*keys, *reasks])
        for n, key in enumerate(keys, 1):
            if n % _YIELD_EVERY == 0:
                await asyncio.sleep(0)  # thousands of decisions: let the loop run between
            pending = self.pending[key]
            decision = decide(
                pending.shape, key, ledger, run.options, self.log, self.backend.max_resubmits
            )
            if decision is _WAITING:
                continue
            if isinstance(decision, _Submit):
                if self.stops:
                    continue  # the run is stopping: the rerun sends it
                try:
                    estimate = run._spend.admit(_batch_estimate_body(run, decision.body))
                except Exception as exc:
                    self.stops.append(exc)
                    continue
                try:
                    full = builder.add(decision.custom_id, decision.body)
                except OpenAIClientError as exc:  # a re-ask grown too big for a batch file
                    run._spend.refund(estimate)
                    decision = _Finished(error=exc)
                else:
                    pending.estimates.append(estimate)
                    if full:
                        parts.append(full)
                    continue
            assert isinstance(decision, _Finished)
            del self.pending[key]
            for outcome in self._write(key, pending, decision):
                yield outcome
        if len(builder):
            parts.append(builder.flush())
        for lines in parts:
            await self._dispatch(lines)
        await self.log.flush()

    def _write(self, key: str, pending: _Pending, done: _Finished) -> Iterable[Outcome]:
        from ._runner import Outcome

        run = self.run
        cost = _batch_cost(run.model, done.usage)
        for estimate in pending.estimates:
            run._spend.answered(estimate)
        run._spend.correct(pending.estimates, cost)
        usage = done.usage
        # One answer serves every record of the same request and is paid for once: by the
        # first record written with it (an earlier run's, when one reused it then).
        paid = self.journal.has_key(key)
        for n, (rid, position) in enumerate(pending.records):
            first = n == 0 and not paid
            share = (cost, usage) if first else (0.0 if cost is not None else None, TokenUsage())
            if done.error is not None:
                failed = run._failed(
                    self.journal, rid, position, key, done.error, share[1], share[0],
                    done.attempts,
                )  # fmt: skip
                _step("record")
                yield failed
                continue
            value = to_jsonable_python(done.value)
            self.journal.record_ok(
                rid, key, value, prompt_tokens=share[1].prompt_tokens,
                completion_tokens=share[1].completion_tokens, cost=share[0],
                attempts=done.attempts,
            )  # fmt: skip
            _step("record")
            yield Outcome(
                rid, position, done.value, None, share[1], share[0], done.attempts, key=key
            )


def _profile(run: BulkRun, client: Any) -> Any:
    from ..servers import profile_for

    return profile_for(client, run.options.get("server"))


def _url(run: BulkRun) -> str:
    from .._apis import get_api

    return get_api(run.options.get("api", "chat")).batch_url


def _counts(batch: Any) -> dict[str, int]:
    counts = getattr(batch, "request_counts", None)
    if counts is None:
        return {}
    return {k: int(getattr(counts, k, 0) or 0) for k in ("total", "completed", "failed")}


def _batch_cost(model: str, usage: TokenUsage) -> float | None:
    """What the answer cost at the Batch API's prices (None when the registry has none)."""
    try:
        cost = estimate_cost(
            model, usage.prompt_tokens, usage.completion_tokens,
            cached_input_tokens=min(usage.cached_tokens, usage.prompt_tokens), batch=True,
        )  # fmt: skip
    except OpenAIClientError:
        return None
    return None if cost is None else cost.total


def _batch_price(model: str, prompt: int, output: int) -> float | None:
    try:
        cost = estimate_cost(model, prompt, output, batch=True)
    except OpenAIClientError:
        return None
    return None if cost is None else cost.total


def _batch_estimate(model: str, call: PreparedCall) -> float | None:
    from ._runner import _output_budget, _prompt_tokens

    return _batch_price(
        model, _prompt_tokens(model, call.kwargs), _output_budget(model, call.kwargs)
    )


def _batch_estimate_body(run: BulkRun, body: str) -> float | None:
    from ._runner import _output_budget, _prompt_tokens

    kwargs = json.loads(body)
    return _batch_price(
        run.model, _prompt_tokens(run.model, kwargs), _output_budget(run.model, kwargs)
    )
