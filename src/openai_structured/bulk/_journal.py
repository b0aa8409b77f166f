"""The journal of a bulk run: exactly one output line per record, across ``kill -9`` and reruns.

A bulk run writes ``OUT.jsonl``, one line per input record::

    {"id": 7, "result": {...}}
    {"id": "b-3", "error": {"type": "RateLimitError", "message": "..."}}

Next to it live two files that ``ostruct`` owns:

``OUT.jsonl.ostruct-journal`` (SQLite, WAL mode; plus its ``-wal``/``-shm`` while open)
    The source of truth. Every finished record is a row holding its exact output line, usage,
    cost and attempts. The output is a *projection* of it: the current row of every id, in
    journal order. Delete the output and the next open writes it again from here, with no
    request sent.
``OUT.jsonl.ostruct-lock``
    Held with ``flock`` for the run's lifetime; it holds the holder's pid, for the message a
    second run gets. The kernel releases it when the process dies, however it dies. The file is
    never removed (removing a lock file races with the next locker).

Protocol for each finished record (:meth:`Journal.record_ok`, :meth:`Journal.record_failed`):

1. one SQLite transaction: the row, with the byte offset its line will have in the output, and
   any older row of the same id marked superseded; COMMIT. The paid-for answer is now safe.
2. one ``write()`` of the line and its newline to the output (opened ``O_APPEND``).

There is no third step ("mark written"): a row is in the output exactly when its line is at its
offset, and since records are finished one at a time, only the *last* row can be missing or torn.
So reopening checks one line, not the file: missing (a crash between 1 and 2) or a prefix of it
(a torn write) -> truncate to the offset and append it from the journal; all there, ending the
file, after a newline -> nothing to do (an edit before it that keeps every byte count is not
noticed; any other edit moves the last line). Anything else (the output deleted, shortened, or
written by someone else) -> the output is scanned once and rebuilt from the journal; lines with
an id the journal does not know are kept (imported into the journal, so the projection still
holds them; a record of that id replaces them later), lines that are not JSON objects
with an id are dropped, both counted in :class:`ResumeReport`.

Guarantees:

- Process crash (``kill -9``, OOM, a Python crash) at any instant: every record whose
  ``record_*`` call returned is in the journal and, after the next open, exactly once in the
  output; it is never requested again. A record whose call was interrupted is either fully
  recorded or not at all, so only requests in flight can be sent twice. Committing with
  ``synchronous=NORMAL`` in WAL mode loses nothing on a process crash: the data has reached the
  kernel before ``record_*`` returns.
- Power loss or a kernel crash, by default (``durable=False``): the last records (those not yet
  checkpointed by the OS) may be lost from the journal and are requested again; output lines
  without a journal row are kept as foreign lines and replaced when those records finish, so at
  the end of the run the output still has exactly one line per id. ``durable=True`` fsyncs every
  commit and append (an fsync per record: milliseconds, not microseconds). :meth:`Journal.close`
  always fsyncs the output, so a run that closed is durable.
- Two runs on one output never interleave: the second one gets :class:`JournalLockedError`.

Superseding: a record that finishes for an id that already has a line (a changed prompt gives a
new key; ``--retry-failed`` reruns the same key) supersedes that line; until :meth:`close` the
output holds both, and ``close()`` rewrites it (temporary file in the same directory, fsync,
``os.replace``), so it again has one line per id. Order of lines: completion order; after a
rewrite, journal order (the completion order of the lines kept). Records that leave the input
keep their lines: the output is the projection of everything the journal holds.

One thread: the runner calls this from its event loop thread. Every call is synchronous and a
few tens of microseconds (``record_ok`` about 40-55 us of CPU, ``is_done`` about 6 us: run
``python tests/bulk/journal_bench.py``); ``close()`` may rewrite the output (linear in its size).
POSIX only (``fcntl.flock``).
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, TypeAlias

from .._logging import redact, redact_text
from ..errors import OpenAIClientError
from ._ledger import BatchLedger, Part

if sys.platform != "win32":
    import fcntl

__all__ = [
    "JOURNAL_SUFFIX",
    "LOCK_SUFFIX",
    "SCHEMA_VERSION",
    "Journal",
    "JournalCorruptError",
    "JournalError",
    "JournalLockedError",
    "JournalVersionError",
    "OutputExistsError",
    "OutputPathError",
    "RecordId",
    "ResumeReport",
    "Status",
    "Summary",
    "Totals",
    "record_key",
]

JOURNAL_SUFFIX = ".ostruct-journal"
LOCK_SUFFIX = ".ostruct-lock"
_TMP_SUFFIX = ".ostruct-tmp"
#: Version of the tables below; a journal with a higher one was written by a newer ostruct.
SCHEMA_VERSION = 1
#: SQLite's header field for "which application's file is this": b"ostr".
_APPLICATION_ID = 0x6F737472

RecordId: TypeAlias = str | int
Status: TypeAlias = Literal["ok", "failed"]

# --- errors ------------------------------------------------------------------------------------


class JournalError(OpenAIClientError):
    """A bulk run's journal or output cannot be used; the message says what to do."""

    def __init__(self, message: str, *, path: str | os.PathLike[str] | None = None) -> None:
        super().__init__(message)
        self.path = Path(path) if path is not None else None


class JournalLockedError(JournalError):
    """Another run holds the output's lock; ``pid`` is its process id, when it could be read."""

    def __init__(self, message: str, *, path: Path, pid: int | None) -> None:
        super().__init__(message, path=path)
        self.pid = pid


class JournalCorruptError(JournalError):
    """The journal file is not an ostruct journal, or is damaged."""


class JournalVersionError(JournalError):
    """The journal was written by a newer ostruct (``version`` > :data:`SCHEMA_VERSION`)."""

    def __init__(self, message: str, *, path: Path, version: int) -> None:
        super().__init__(message, path=path)
        self.version = version


class OutputPathError(JournalError):
    """The output path cannot hold a bulk run's output (a directory, no such directory, ...)."""


class OutputExistsError(OutputPathError):
    """The output exists, is not empty and has no journal: it is not a bulk run's output."""


# --- the record key ----------------------------------------------------------------------------

_canonical = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
).encode
#: Client and transport settings: never part of what is asked, and they can carry credentials.
_NOT_REQUEST = frozenset({"api_key", "extra_headers", "default_headers", "client"})


def record_key(model: str, params: Mapping[str, Any], schema: Any, messages: Any) -> str:
    """The identity of a request: SHA-256 (hex) of its canonical JSON; any change, a new key.

    Canonical: sorted keys, no whitespace, UTF-8 as is (``ensure_ascii=False``). The key hashes
    what is sent, so ``1`` and ``1.0`` differ as their request bodies do; NaN and infinities
    (not JSON) raise ``ValueError``, other values JSON cannot hold raise ``TypeError``.
    ``params`` are the request's parameters: the API key is never part of a key (rotating it
    must not make every record new, and no secret reaches a file we write), so ``api_key`` and
    header settings in ``params`` raise ``ValueError``.
    """
    bad = _NOT_REQUEST.intersection(params)
    if bad:
        raise ValueError(
            f"record_key: {', '.join(sorted(bad))} is a client setting, not a request parameter;"
            " leave it out of params"
        )
    payload = {"v": 1, "model": model, "params": params, "schema": schema, "messages": messages}
    try:
        text = _canonical(payload)
    except ValueError as exc:
        raise ValueError(f"record_key: {exc} (NaN and infinities are not JSON)") from None
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# --- values ------------------------------------------------------------------------------------


def _no_errors() -> Mapping[str, int]:
    return MappingProxyType({})


@dataclass(frozen=True)
class Totals:
    """Figures over a set of records. ``cost`` sums the records whose price was known (None:
    none was); ``errors`` counts the failed records by error class."""

    ok: int = 0
    failed: int = 0
    errors: Mapping[str, int] = field(default_factory=_no_errors)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float | None = None
    attempts: int = 0

    @property
    def records(self) -> int:
        return self.ok + self.failed


@dataclass(frozen=True)
class Summary:
    """What the output holds and what this run did.

    ``output``: the records whose line is in the output (one per id). ``run``: those this run
    finished, i.e. paid for (a retried failure counts in both its runs; in ``output`` only the
    last outcome counts). ``foreign_lines``: lines kept that no run wrote. ``superseded``:
    answers kept in the journal whose id now has another key's line (a retry of the same key
    replaces its row instead). ``records_per_second``: ``run.records`` over ``elapsed``, the
    seconds from opening the journal to the last record this run finished.
    """

    output: Totals
    run: Totals
    foreign_lines: int
    superseded: int
    started_at: float
    elapsed: float
    records_per_second: float


@dataclass(frozen=True)
class ResumeReport:
    """What opening the journal found and repaired.

    ``records``: records already in the journal (their lines in the output). ``appended``: the
    last record's line written again from the journal (a crash between commit and write).
    ``torn_bytes``: an incomplete last line removed. ``rebuilt``: the output was rewritten from
    the journal (it was missing or did not match). ``foreign_lines``: lines no run of this journal
    wrote, kept; ``dropped_lines``: lines that were not JSON objects with an id, removed.
    """

    records: int = 0
    appended: int = 0
    torn_bytes: int = 0
    rebuilt: bool = False
    foreign_lines: int = 0
    dropped_lines: int = 0


class _RunTotals:
    """Mutable counters of this run, cheap to update per record."""

    __slots__ = ("attempts", "completion", "cost", "errors", "failed", "last", "ok", "prompt")

    def __init__(self) -> None:
        self.ok = self.failed = self.prompt = self.completion = self.attempts = 0
        self.cost: float | None = None
        self.errors: dict[str, int] = {}
        self.last = 0.0

    def freeze(self) -> Totals:
        errors = MappingProxyType(dict(sorted(self.errors.items())))
        return Totals(
            self.ok, self.failed, errors, self.prompt, self.completion, self.cost, self.attempts
        )


# --- the journal -------------------------------------------------------------------------------

_encode = json.JSONEncoder(ensure_ascii=False, allow_nan=False).encode
_encode_ascii = json.JSONEncoder(allow_nan=False).encode


def _line(value: dict[str, Any]) -> tuple[str, bytes]:
    """One output line, and its bytes with the newline.

    A lone surrogate (JSON can escape one: ``"\\ud800"``) has no UTF-8 form, so such a line is
    written with ASCII escapes instead: the same JSON value.
    """
    line = _encode(value)
    try:
        return line, line.encode("utf-8") + b"\n"
    except UnicodeEncodeError:
        line = _encode_ascii(value)
        return line, line.encode("ascii") + b"\n"


_SCHEMA = f"""
CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE runs (
    run INTEGER PRIMARY KEY,
    started_at REAL NOT NULL,
    ended_at REAL,
    pid INTEGER NOT NULL,
    params TEXT,
    ok INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    prompt_tokens INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    cost REAL,
    attempts INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE records (
    seq INTEGER PRIMARY KEY,
    key TEXT,
    id TEXT,
    status TEXT NOT NULL CHECK (status IN ('ok', 'failed', 'foreign')),
    error_type TEXT,
    line TEXT NOT NULL,
    offset INTEGER,
    prompt_tokens INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    cost REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    finished_at REAL NOT NULL,
    run INTEGER,
    superseded INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX records_id_key ON records (id, key);
INSERT INTO meta VALUES ('format', 'ostruct bulk journal');
INSERT INTO meta VALUES ('stale', '0');
INSERT INTO meta VALUES ('rebuild', '0');
PRAGMA application_id = {_APPLICATION_ID};
PRAGMA user_version = {SCHEMA_VERSION};
"""

_SUPERSEDE = "UPDATE records SET superseded = 1, offset = NULL WHERE id = ? AND superseded = 0"
_INSERT = (
    "INSERT OR REPLACE INTO records (key, id, status, error_type, line, offset, prompt_tokens,"
    " completion_tokens, cost, attempts, finished_at, run) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"
)
_SET_META = "UPDATE meta SET value = ? WHERE name = ?"
_STATUS = "SELECT status FROM records WHERE id = ? AND key = ? AND superseded = 0"
_CHUNK = 2000


def _id_json(record_id: RecordId) -> str:
    if isinstance(record_id, bool) or not isinstance(record_id, (str, int)):
        raise TypeError(f"a record id is a str or an int, not {type(record_id).__name__}")
    return _encode(record_id)


def _valid_id(value: Any) -> bool:
    return isinstance(value, (str, int)) and not isinstance(value, bool)


class Journal:
    """The journal of one bulk run's output; open it with :meth:`open`, use it as a context
    manager (or call :meth:`close`).

    Opening takes the output's lock, then repairs the output from the journal (see
    :attr:`resumed`). Then, per input record: :meth:`status` / :meth:`is_done` to skip what is
    finished, and :meth:`record_ok` / :meth:`record_failed` when an answer arrives.
    """

    output: Path
    journal_path: Path
    lock_path: Path
    resumed: ResumeReport
    started_at: float
    run_id: int
    _stale: bool
    _rebuild_pending: bool
    _created_journal: bool

    @classmethod
    def open(
        cls,
        output: str | os.PathLike[str],
        *,
        params: Mapping[str, Any] | None = None,
        durable: bool = False,
    ) -> Journal:
        """Lock ``output``, open (or create) its journal and bring the output in line with it.

        ``params`` is a summary of the command (model, flags) kept in the journal's ``runs``
        table, redacted first. ``durable``: fsync every record (survives power loss, slower).
        """
        return cls(output, params=params, durable=durable)

    def __init__(
        self,
        output: str | os.PathLike[str],
        *,
        params: Mapping[str, Any] | None = None,
        durable: bool = False,
    ) -> None:
        if sys.platform == "win32":
            raise JournalError(
                "bulk runs need POSIX file locks (Linux, macOS); Windows is not supported yet"
            )
        self.output = _output_path(output)
        self.journal_path = self.output.with_name(self.output.name + JOURNAL_SUFFIX)
        self.lock_path = self.output.with_name(self.output.name + LOCK_SUFFIX)
        self._tmp_path = self.output.with_name("." + self.output.name + _TMP_SUFFIX)
        self._durable = durable
        self._closed = False
        self._broken: BaseException | None = None
        self._out_fd = -1
        self._size = 0
        self._totals = _RunTotals()
        self.started_at = time.time()
        self._lock_fd = _lock(self.lock_path, self.output)
        try:
            self._db = self._connect()
            try:
                self._start_run(params)
                self.resumed = self._reconcile()
            except BaseException:
                self._db.close()
                raise
        except BaseException:
            if self._out_fd >= 0:
                os.close(self._out_fd)
            os.close(self._lock_fd)
            raise

    # --- per record ----------------------------------------------------------------------------

    def status(self, record_id: RecordId, key: str) -> Status | None:
        """``"ok"``/``"failed"`` when this record (id and key) has the id's line, else None."""
        row = self._db.execute(_STATUS, (_id_json(record_id), key)).fetchone()
        return None if row is None else row[0]

    def is_done(self, record_id: RecordId, key: str) -> bool:
        """Whether this record is finished (either way): an indexed lookup, no state kept."""
        return self._db.execute(_STATUS, (_id_json(record_id), key)).fetchone() is not None

    def record_ok(
        self,
        record_id: RecordId,
        key: str,
        result: Any,
        *,
        prompt_tokens: int = 0,
        completion_tokens: int = 0,
        cost: float | None = None,
        attempts: int = 1,
    ) -> None:
        """Journal and write ``{"id": record_id, "result": result}``; ``result`` is JSON data
        (a pydantic model: pass ``model_dump(mode="json")``). Safe once it returns."""
        id_json = _id_json(record_id)
        line, data = _line({"id": record_id, "result": result})
        self._finish(
            id_json, key, "ok", None, line, data, prompt_tokens, completion_tokens, cost, attempts
        )

    def record_failed(
        self,
        record_id: RecordId,
        key: str,
        error_type: str,
        message: str,
        *,
        prompt_tokens: int = 0,
        completion_tokens: int = 0,
        cost: float | None = None,
        attempts: int = 1,
    ) -> None:
        """Journal and write ``{"id": ..., "error": {"type": ..., "message": ...}}``.

        ``error_type`` is the error's class name; ``message`` is redacted before it is stored
        (an SDK error can quote the API key back).
        """
        id_json = _id_json(record_id)
        error = {"type": error_type, "message": redact_text(message)}
        line, data = _line({"id": record_id, "error": error})
        self._finish(
            id_json, key, "failed", error_type, line, data, prompt_tokens, completion_tokens, cost,
            attempts,
        )  # fmt: skip

    def _finish(
        self,
        id_json: str,
        key: str,
        status: str,
        error_type: str | None,
        line: str,
        data: bytes,
        prompt_tokens: int,
        completion_tokens: int,
        cost: float | None,
        attempts: int,
    ) -> None:
        if self._closed or self._broken is not None:
            raise self._unusable()
        if not isinstance(key, str) or not key:
            raise ValueError("a record key is a non-empty string (see record_key())")
        offset = self._size
        now = time.time()
        db = self._db
        committed = False
        try:
            db.execute("BEGIN")
            stale = db.execute(_SUPERSEDE, (id_json,)).rowcount
            db.execute(
                _INSERT,
                (key, id_json, status, error_type, line, offset, prompt_tokens,
                 completion_tokens, cost, attempts, now, self.run_id),
            )  # fmt: skip
            if stale and not self._stale:
                db.execute(_SET_META, ("1", "stale"))
            db.execute("COMMIT")
            committed = True
            self._append(data)
        except BaseException as exc:
            # After a failed commit SQLite may or may not have kept the row, and after a failed
            # write the output lacks it: either way the next open knows, this object does not.
            self._broken = exc
            if not committed and db.in_transaction:
                db.execute("ROLLBACK")
            if isinstance(exc, (OSError, sqlite3.Error)):
                where = self.output if committed else self.journal_path
                raise JournalError(
                    f"cannot write {where}: {exc}; "
                    + (
                        "the answer is safe in the journal: rerun the same command to resume"
                        if committed
                        else "this record was not saved: rerun the same command to resume"
                    ),
                    path=where,
                ) from exc
            raise
        self._size = offset + len(data)
        if stale:
            self._stale = True
        t = self._totals
        if status == "ok":
            t.ok += 1
        else:
            t.failed += 1
            t.errors[error_type or ""] = t.errors.get(error_type or "", 0) + 1
        t.prompt += prompt_tokens
        t.completion += completion_tokens
        t.attempts += attempts
        if cost is not None:
            t.cost = cost if t.cost is None else t.cost + cost
        t.last = now

    def _append(self, data: bytes) -> None:
        """Step 2: the line to the output (a seam: the crash tests stop the process around it)."""
        written = os.write(self._out_fd, data)
        while written < len(data):  # short writes happen only near a full disk, but do happen
            written += os.write(self._out_fd, data[written:])
        if self._durable:
            os.fsync(self._out_fd)

    # --- the Batch API backend's tables ------------------------------------------------------

    def batch_ledger(self) -> BatchLedger:
        """The tables of the Batch API backend, in this journal (created on first use)."""
        self._check_open()
        return BatchLedger(self._db)

    def has_key(self, key: str) -> bool:
        """Whether a record with this key was written (an answer for it was paid for)."""
        return (
            self._db.execute("SELECT 1 FROM records WHERE key = ? LIMIT 1", (key,)).fetchone()
            is not None
        )

    def running_batches(self) -> int:
        """Batch API parts of this output not yet ended (sent, or about to be)."""
        tables = self._db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'batch_parts'"
        ).fetchone()
        if tables is None:
            return 0
        row = self._db.execute(
            "SELECT count(*) FROM batch_parts WHERE state != 'ended' AND tag != 'local'"
        ).fetchone()
        return int(row[0])

    def batch_tag(self) -> str:
        """A random name of this journal, in its batch files' names and batches' metadata: how
        a batch whose creation was never recorded is found again."""
        row = self._db.execute("SELECT value FROM meta WHERE name = 'batch_tag'").fetchone()
        if row is not None:
            return str(row[0])
        tag = os.urandom(6).hex()
        self._db.execute("INSERT INTO meta VALUES ('batch_tag', ?)", (tag,))
        return tag

    @staticmethod
    def read_batch_parts(output: str | os.PathLike[str]) -> list[Part]:
        """The batch parts of ``output``'s journal, read without taking its lock (a run may be
        polling them): for ``ostruct batch --status`` and ``--cancel``."""
        path = _output_path(output)
        journal = path.with_name(path.name + JOURNAL_SUFFIX)
        if not journal.is_file():
            raise JournalError(
                f"{path} has no journal ({journal.name}): it was not written by a bulk run",
                path=journal,
            )
        db = sqlite3.connect(f"{journal.resolve().as_uri()}?mode=ro", uri=True)
        try:
            tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master")}
            if "batch_parts" not in tables:
                return []
            return BatchLedger(db, create=False).parts()
        except sqlite3.DatabaseError as exc:
            raise JournalCorruptError(f"cannot read {journal}: {exc}", path=journal) from exc
        finally:
            db.close()

    # --- queries -------------------------------------------------------------------------------

    def failed_keys(self) -> Iterator[tuple[RecordId, str]]:
        """``(record id, key)`` of every record whose line is an error, in journal order.

        A snapshot taken at the call: records finished while iterating (a retry that fails
        again) are not yielded again. Reads in pages, so memory stays bounded.
        """
        top = self._db.execute("SELECT coalesce(max(seq), 0) FROM records").fetchone()[0]
        after = 0
        while True:
            rows = self._db.execute(
                "SELECT seq, id, key FROM records WHERE status = 'failed' AND superseded = 0"
                " AND seq > ? AND seq <= ? ORDER BY seq LIMIT ?",
                (after, top, _CHUNK),
            ).fetchall()
            if not rows:
                return
            for seq, id_json, key in rows:
                # Superseded since the page was read: its line is no longer an error.
                if self._db.execute(_STATUS, (id_json, key)).fetchone() == ("failed",):
                    yield json.loads(id_json), key
                after = seq

    def summary(self) -> Summary:
        """Totals of the output (one query over the journal) and of this run (kept in memory)."""
        self._check_open()
        ok = failed = prompt = completion = attempts = foreign = 0
        cost: float | None = None
        errors: dict[str, int] = {}
        rows = self._db.execute(
            "SELECT status, error_type, count(*), sum(prompt_tokens), sum(completion_tokens),"
            " sum(cost), sum(attempts) FROM records WHERE superseded = 0"
            " GROUP BY status, error_type ORDER BY error_type"
        )
        for status, error_type, n, p, c, money, a in rows:
            if status == "foreign":
                foreign += n
                continue
            if status == "ok":
                ok += n
            else:
                failed += n
                errors[error_type or ""] = n
            prompt, completion, attempts = prompt + p, completion + c, attempts + a
            if money is not None:
                cost = money if cost is None else cost + money
        superseded = self._db.execute(
            "SELECT count(*) FROM records WHERE superseded = 1 AND status != 'foreign'"
        ).fetchone()[0]
        run = self._totals.freeze()
        elapsed = max(self._totals.last - self.started_at, 0.0) if run.records else 0.0
        return Summary(
            output=Totals(ok, failed, MappingProxyType(errors), prompt, completion, cost, attempts),
            run=run,
            foreign_lines=foreign,
            superseded=superseded,
            started_at=self.started_at,
            elapsed=elapsed,
            records_per_second=run.records / elapsed if elapsed > 0 else 0.0,
        )

    # --- the end -------------------------------------------------------------------------------

    def close(self) -> None:
        """Rewrite the output if lines were superseded, make it durable, release the lock.

        After a write error the output is left for the next open to repair.
        """
        if self._closed:
            return
        self._closed = True
        try:
            if self._broken is None:
                if self._stale:
                    self._rewrite()
                os.fsync(self._out_fd)
                self._end_run()
        finally:
            self._db.close()
            os.close(self._out_fd)
            os.close(self._lock_fd)  # releases the flock, last

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- opening -------------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        path = self.journal_path
        if path.is_dir():
            raise JournalCorruptError(
                f"{path} is a directory, not an ostruct journal; remove it or choose another"
                " --output",
                path=path,
            )
        self._created_journal = not path.exists()
        if not path.exists() or path.stat().st_size == 0:
            # A WAL left by a deleted journal would be replayed into the new one.
            for suffix in ("-wal", "-shm"):
                Path(str(path) + suffix).unlink(missing_ok=True)
        try:
            db = sqlite3.connect(path, isolation_level=None)
        except sqlite3.Error as exc:
            raise JournalError(f"cannot open {path}: {exc}", path=path) from exc
        try:
            self._check_format(db)
        except BaseException as exc:
            db.close()
            if isinstance(exc, OutputExistsError) and self._created_journal:
                path.unlink(missing_ok=True)  # leave no empty journal next to someone's file
            raise
        return db

    def _check_format(self, db: sqlite3.Connection) -> None:
        path = self.journal_path
        try:
            app = db.execute("PRAGMA application_id").fetchone()[0]
            version = db.execute("PRAGMA user_version").fetchone()[0]
            tables = db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise JournalCorruptError(
                f"{path} is not an ostruct journal ({exc}); remove it (its records will be"
                " requested again) or choose another --output",
                path=path,
            ) from exc
        fresh = app == 0 and tables == 0
        if not fresh and app != _APPLICATION_ID:
            raise JournalCorruptError(
                f"{path} is an SQLite file but not an ostruct journal; remove it or choose"
                " another --output",
                path=path,
            )
        if not fresh and version > SCHEMA_VERSION:
            raise JournalVersionError(
                f"{path} was written by a newer ostruct (journal version {version}, this one"
                f" reads {SCHEMA_VERSION}); upgrade ostruct or choose another --output",
                path=path,
                version=version,
            )
        if fresh and _size_of(self.output):
            raise OutputExistsError(
                f"{self.output} exists and has no journal ({path.name}): it was not written by"
                " a bulk run, or its journal was removed; move it away or choose another"
                " --output",
                path=self.output,
            )
        try:
            db.execute("PRAGMA busy_timeout = 2000")
            db.execute(
                "PRAGMA journal_mode = WAL"
            )  # where WAL is unavailable: rollback, still safe
            db.execute(f"PRAGMA synchronous = {'FULL' if self._durable else 'NORMAL'}")
            if fresh:
                db.executescript(f"BEGIN; {_SCHEMA} COMMIT;")
                db.execute("INSERT INTO meta VALUES ('created_at', ?)", (repr(time.time()),))
            meta = dict(db.execute("SELECT name, value FROM meta").fetchall())
            if meta.get("format") != "ostruct bulk journal":
                raise sqlite3.DatabaseError("no format record")
        except sqlite3.DatabaseError as exc:
            raise JournalCorruptError(
                f"{path} is damaged ({exc}); move it away to start over (its records will be"
                " requested again) or choose another --output",
                path=path,
            ) from exc
        self._stale = meta.get("stale") == "1"
        self._rebuild_pending = meta.get("rebuild") == "1"

    def _start_run(self, params: Mapping[str, Any] | None) -> None:
        text = None if params is None else json.dumps(redact(dict(params)), default=str)
        cursor = self._db.execute(
            "INSERT INTO runs (started_at, pid, params) VALUES (?, ?, ?)",
            (self.started_at, os.getpid(), text),
        )
        self.run_id = cursor.lastrowid or 0

    def _end_run(self) -> None:
        t = self._totals
        self._db.execute(
            "UPDATE runs SET ended_at = ?, ok = ?, failed = ?, prompt_tokens = ?,"
            " completion_tokens = ?, cost = ?, attempts = ? WHERE run = ?",
            (time.time(), t.ok, t.failed, t.prompt, t.completion, t.cost, t.attempts,
             self.run_id),
        )  # fmt: skip

    def _reconcile(self) -> ResumeReport:
        """Make the output the journal's projection: check the last line, else rebuild."""
        self._tmp_path.unlink(missing_ok=True)  # a rewrite that died before its replace
        records = self._db.execute(
            "SELECT count(*) FROM records WHERE superseded = 0 AND status != 'foreign'"
        ).fetchone()[0]
        try:
            self._out_fd = os.open(
                self.output, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644
            )
        except OSError as exc:
            raise OutputPathError(
                f"cannot write {self.output}: {exc.strerror}; choose another --output",
                path=self.output,
            ) from exc
        if self._rebuild_pending:
            self._rewrite()
            return ResumeReport(records=records, rebuilt=True)
        tail = self._repair_tail()
        if tail is not None:
            self._size = os.fstat(self._out_fd).st_size
            return ResumeReport(records=records, appended=tail[0], torn_bytes=tail[1])
        foreign, dropped, torn = self._import_output()
        self._rewrite()
        return ResumeReport(
            records=records, torn_bytes=torn, rebuilt=True, foreign_lines=foreign,
            dropped_lines=dropped,
        )  # fmt: skip

    def _repair_tail(self) -> tuple[int, int] | None:
        """(lines appended, torn bytes removed) when the output is the journal's up to its last
        line, which may be missing or torn; None when the output needs a rebuild."""
        size = os.fstat(self._out_fd).st_size
        last = self._db.execute(
            "SELECT offset, line FROM records ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        if last is None:
            return (0, 0) if size == 0 else None
        offset, line = last
        data = line.encode("utf-8") + b"\n"
        if offset is None or offset > size:
            return None
        with open(self.output, "rb") as f:
            f.seek(max(offset - 1, 0))
            if offset > 0 and f.read(1) != b"\n":
                return None
            tail = f.read(len(data) + 1)
        if tail == data:
            return (0, 0)
        if len(tail) < len(data) and data.startswith(tail):
            os.ftruncate(self._out_fd, offset)
            self._append(data)
            return (1, len(tail))
        return None

    def _import_output(self) -> tuple[int, int, int]:
        """Scan the output once: lines whose id the journal holds are its own (it writes them
        again); other lines with an id are imported as foreign rows; the rest is dropped.

        Commits with the ``rebuild`` flag, so a crash before the rewrite finishes it next time.
        """
        foreign = dropped = torn = 0
        db = self._db
        top = db.execute("SELECT coalesce(max(seq), 0) FROM records").fetchone()[0]
        known = "SELECT 1 FROM records WHERE id = ? AND superseded = 0 AND seq <= ? LIMIT 1"
        now = time.time()
        db.execute("BEGIN")
        try:
            with open(self.output, "rb") as f:
                for raw in f:  # bytes split at b"\n" only (not at U+2028 and friends)
                    complete = raw.endswith(b"\n")
                    try:
                        text = raw.decode("utf-8").rstrip("\r\n")
                        value = json.loads(text) if text.strip() else None
                    except ValueError:  # UnicodeDecodeError and JSONDecodeError
                        value = None
                    if not (isinstance(value, dict) and _valid_id(value.get("id"))):
                        if complete:
                            dropped += bool(raw.strip())
                        else:
                            torn += len(raw)
                        continue
                    id_json = _encode(value["id"])
                    if db.execute(known, (id_json, top)).fetchone() is not None:
                        continue
                    db.execute(
                        "INSERT INTO records (id, status, line, finished_at, run)"
                        " VALUES (?, 'foreign', ?, ?, ?)",
                        (id_json, text, now, self.run_id),
                    )
                    foreign += 1
            db.execute(_SET_META, ("1", "rebuild"))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return foreign, dropped, torn

    # --- the rewrite ---------------------------------------------------------------------------

    def _rewrite(self) -> None:
        """Replace the output with the journal's projection, atomically.

        Order: the ``rebuild`` flag is committed first, so a crash anywhere below makes the
        next open rewrite again; the new offsets are committed after ``os.replace``.
        """
        db = self._db
        db.execute(_SET_META, ("1", "rebuild"))
        try:
            mode = os.stat(self.output).st_mode & 0o777
        except FileNotFoundError:
            mode = 0o644
        fd = os.open(self._tmp_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
        size = 0
        try:
            with os.fdopen(fd, "wb", buffering=1 << 20) as f:
                os.fchmod(f.fileno(), mode)
                db.execute("BEGIN")
                after = 0
                while True:
                    rows = db.execute(
                        "SELECT seq, line FROM records WHERE superseded = 0 AND seq > ?"
                        " ORDER BY seq LIMIT ?",
                        (after, _CHUNK),
                    ).fetchall()
                    if not rows:
                        break
                    offsets = []
                    for seq, line in rows:
                        data = line.encode("utf-8") + b"\n"
                        f.write(data)
                        offsets.append((size, seq))
                        size += len(data)
                    db.executemany("UPDATE records SET offset = ? WHERE seq = ?", offsets)
                    after = rows[-1][0]
                f.flush()
                os.fsync(f.fileno())
            self._replace()
            db.execute(_SET_META, ("0", "stale"))
            db.execute(_SET_META, ("0", "rebuild"))
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            self._tmp_path.unlink(missing_ok=True)
            raise
        self._stale = self._rebuild_pending = False
        # The old descriptor points at the replaced file.
        new_fd = os.open(self.output, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
        os.close(self._out_fd)
        self._out_fd = new_fd
        self._size = size

    def _replace(self) -> None:
        """The atomic step of a rewrite (a seam: the crash tests stop the process around it)."""
        os.replace(self._tmp_path, self.output)
        directory = os.open(self.output.parent, os.O_RDONLY)
        try:
            os.fsync(directory)  # the rename itself, on power loss
        finally:
            os.close(directory)

    # --- helpers -------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise JournalError(f"the journal of {self.output} is closed", path=self.output)

    def _unusable(self) -> JournalError:
        if self._closed:
            return JournalError(f"the journal of {self.output} is closed", path=self.output)
        return JournalError(
            f"the journal of {self.output} stopped after an error ({self._broken!r}); rerun the"
            " same command to resume",
            path=self.output,
        )


def _size_of(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _output_path(output: str | os.PathLike[str]) -> Path:
    """The real path of the output (a symlink is followed, so every alias shares one lock)."""
    path = Path(os.path.realpath(output))
    if path.is_dir():
        raise OutputPathError(
            f"{path} is a directory; the output is a file (e.g. {path / 'out.jsonl'})", path=path
        )
    if not path.parent.is_dir():
        raise OutputPathError(
            f"the directory {path.parent} does not exist; create it or choose another --output",
            path=path,
        )
    if path.exists() and not path.is_file():
        raise OutputPathError(f"{path} is not a regular file; choose another --output", path=path)
    return path


def _lock(lock_path: Path, output: Path) -> int:
    """Take the output's lock (exclusive, non-blocking) and write our pid into it."""
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise OutputPathError(
            f"cannot create {lock_path}: {exc.strerror}; choose a writable --output directory",
            path=lock_path,
        ) from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        pid = _read_pid(fd)
        os.close(fd)
        holder = f"pid {pid}" if pid is not None else "pid unknown"
        raise JournalLockedError(
            f"another ostruct batch run is writing {output} ({holder}); wait for it to finish"
            " or choose another --output",
            path=output,
            pid=pid,
        ) from None
    except OSError as exc:
        os.close(fd)
        raise JournalError(
            f"cannot lock {lock_path}: {exc.strerror}; the output's filesystem must support"
            " file locks",
            path=lock_path,
        ) from exc
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii").strip()
        return int(text) if text else None
    except (OSError, ValueError):
        return None
