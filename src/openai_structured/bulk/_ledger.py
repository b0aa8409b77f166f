"""What a Batch API run has sent and received, in the run's journal (the same SQLite file).

Every step of the batch protocol is recorded before the next one starts, so a process killed
anywhere resumes without creating a batch twice:

=========  ==================================================  ===================================
state      recorded                                            on resume
=========  ==================================================  ===================================
built      the part's request lines (custom id, body)          upload them (an earlier upload that
                                                               died unrecorded is an unused file)
uploaded   + the input file id                                 look for a batch of that file in
                                                               the account's batches, else create
submitted  + the batch id                                      poll it
ended      + every result line, status and counts              decode: nothing is downloaded again
=========  ==================================================  ===================================

A request is named by its ``custom_id``: the record key for a record's first request,
``<key>~<n>`` for its n-th attempt (a validation re-ask). Results are kept per custom id (the
latest), with the part they came from, so a request sent again after an expired batch is told
apart from its earlier, lost, sending.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

from ._batch_lines import BatchLineError, ResultLine

__all__ = ["LOCAL_TAG", "BatchLedger", "Part", "PartState", "Snapshot", "StoredResult"]

#: The tag of parts written to a file for another engine instead of sent to the Batch API.
LOCAL_TAG = "local"

PartState: TypeAlias = Literal["built", "uploaded", "submitted", "ended"]

_TABLES = """
CREATE TABLE IF NOT EXISTS batch_parts (
    part INTEGER PRIMARY KEY,
    tag TEXT NOT NULL,
    url TEXT NOT NULL,
    lines INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    state TEXT NOT NULL,
    file_id TEXT,
    batch_id TEXT,
    status TEXT,
    counts TEXT,
    detail TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS batch_requests (
    custom_id TEXT NOT NULL,
    part INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (custom_id, part)
);
CREATE INDEX IF NOT EXISTS batch_requests_by_part ON batch_requests (part);
CREATE INDEX IF NOT EXISTS records_by_key ON records (key);
CREATE TABLE IF NOT EXISTS batch_results (
    custom_id TEXT PRIMARY KEY,
    part INTEGER NOT NULL,
    status_code INTEGER,
    body BLOB,
    error TEXT
);
"""


@dataclass(frozen=True)
class Part:
    """One input file and its batch."""

    part: int
    tag: str
    url: str
    lines: int
    bytes: int
    state: PartState
    file_id: str | None
    batch_id: str | None
    status: str | None
    counts: Mapping[str, int] | None
    detail: str | None
    created_at: float

    @property
    def name(self) -> str:
        """The input file's name (also in the batch's metadata): unique per journal and part."""
        return f"ostruct-{self.tag}-part{self.part}.jsonl"


@dataclass(frozen=True)
class StoredResult:
    part: int
    status_code: int | None
    body: bytes | None
    error: BatchLineError | None


_PART_COLUMNS = (
    "part, tag, url, lines, bytes, state, file_id, batch_id, status, counts, detail, created_at"
)


class BatchLedger:
    """The batch tables of one journal; used from the run's one thread."""

    def __init__(self, db: sqlite3.Connection, *, create: bool = True) -> None:
        self._db = db
        if create:
            db.executescript(f"BEGIN; {_TABLES} COMMIT;")

    # --- parts ---------------------------------------------------------------------------------

    def add_part(self, tag: str, url: str, lines: Iterable[tuple[str, bytes, str]]) -> Part:
        """Record a new part: its ``(custom_id, line, body)`` triples, in one transaction."""
        rows = list(lines)
        size = sum(len(line) for _, line, _ in rows)
        now = time.time()
        db = self._db
        db.execute("BEGIN")
        try:
            cursor = db.execute(
                "INSERT INTO batch_parts (tag, url, lines, bytes, state, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, 'built', ?, ?)",
                (tag, url, len(rows), size, now, now),
            )
            part = cursor.lastrowid
            assert part is not None
            db.executemany(
                "INSERT INTO batch_requests (custom_id, part, body) VALUES (?, ?, ?)",
                ((cid, part, body) for cid, _, body in rows),
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return self.part(part)

    def part(self, part: int) -> Part:
        row = self._db.execute(
            f"SELECT {_PART_COLUMNS} FROM batch_parts WHERE part = ?", (part,)
        ).fetchone()
        if row is None:
            raise KeyError(part)
        return _part(row)

    def parts(self) -> list[Part]:
        rows = self._db.execute(f"SELECT {_PART_COLUMNS} FROM batch_parts ORDER BY part")
        return [_part(row) for row in rows]

    def uploaded(self, part: int, file_id: str) -> None:
        self._update(part, state="uploaded", file_id=file_id)

    def submitted(self, part: int, batch_id: str, status: str | None = None) -> None:
        self._update(part, state="submitted", batch_id=batch_id, status=status)

    def polled(self, part: int, status: str, counts: Mapping[str, int] | None) -> None:
        self._update(part, status=status, counts=json.dumps(dict(counts or {})))

    def ended(
        self,
        part: int,
        status: str,
        counts: Mapping[str, int] | None,
        results: Iterable[ResultLine],
        detail: str | None = None,
    ) -> int:
        """Store a finished batch's result lines and mark the part ended, in one transaction.
        Returns how many lines were stored."""
        db = self._db
        db.execute("BEGIN")
        try:
            n = self._insert(part, results)
            db.execute(
                "UPDATE batch_parts SET state = 'ended', status = ?, counts = ?, detail = ?,"
                " updated_at = ? WHERE part = ?",
                (status, json.dumps(dict(counts or {})), detail, time.time(), part),
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return n

    def _update(self, part: int, **fields: Any) -> None:
        names = ", ".join(f"{name} = ?" for name in fields)
        self._db.execute(
            f"UPDATE batch_parts SET {names}, updated_at = ? WHERE part = ?",
            (*fields.values(), time.time(), part),
        )

    # --- requests and results ------------------------------------------------------------------

    def lines(self, part: int) -> Iterator[tuple[str, str]]:
        """``(custom_id, body)`` of a part's requests."""
        yield from self._db.execute(
            "SELECT custom_id, body FROM batch_requests WHERE part = ? ORDER BY rowid", (part,)
        )

    def custom_ids(self, part: int) -> list[str]:
        rows = self._db.execute("SELECT custom_id FROM batch_requests WHERE part = ?", (part,))
        return [cid for (cid,) in rows]

    def sendings(self, custom_id: str) -> list[tuple[int, str, bool]]:
        """``(part, state, counted)`` of every part that holds this request, oldest first.
        ``counted``: a sending to the Batch API that could have run the request (not a file
        written for another engine, nor a batch that failed, was cancelled or abandoned)."""
        rows = self._db.execute(
            "SELECT r.part, p.state, p.tag, p.status FROM batch_requests r"
            " JOIN batch_parts p USING (part) WHERE r.custom_id = ? ORDER BY r.part",
            (custom_id,),
        )
        return [(part, state, _counted(tag, status)) for part, state, tag, status in rows]

    def abandon(self, part: int, why: str) -> None:
        """A part that will never be sent (its records changed, or were sent again in another
        part): ended, with no results."""
        self._update(part, state="ended", status="abandoned", detail=why)

    def forget(self, key: str) -> None:
        """The requests and results of a record's ended parts (``--retry-failed``): the
        record is then new, and sent again."""
        like = key.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "~%"
        where = "(custom_id = ? OR custom_id LIKE ? ESCAPE '\\')"
        db = self._db
        db.execute("BEGIN")
        try:
            db.execute(f"DELETE FROM batch_results WHERE {where}", (key, like))
            db.execute(
                f"DELETE FROM batch_requests WHERE {where} AND part IN"
                " (SELECT part FROM batch_parts WHERE state = 'ended')",
                (key, like),
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def drop_requests(self, part: int, custom_ids: Iterable[str]) -> None:
        db = self._db
        db.executemany(
            "DELETE FROM batch_requests WHERE part = ? AND custom_id = ?",
            ((part, cid) for cid in custom_ids),
        )

    def written(self, part: int, path: str) -> None:
        """A local part's lines were written to ``path``: it waits for ``--import-results``
        (ended, no results: each line without a result is written again next time)."""
        self._update(part, state="ended", status="written", detail=path)

    def body(self, custom_id: str) -> str | None:
        """The body this request was last sent with."""
        row = self._db.execute(
            "SELECT body FROM batch_requests WHERE custom_id = ? ORDER BY part DESC LIMIT 1",
            (custom_id,),
        ).fetchone()
        return None if row is None else str(row[0])

    def result(self, custom_id: str) -> StoredResult | None:
        row = self._db.execute(
            "SELECT part, status_code, body, error FROM batch_results WHERE custom_id = ?",
            (custom_id,),
        ).fetchone()
        return None if row is None else _stored(custom_id, *row)

    def store_results(self, results: Iterable[tuple[int, ResultLine]]) -> int:
        """Results that come from outside the Batch API (``--import-results``), each under the
        part it answers."""
        db = self._db
        n = 0
        db.execute("BEGIN")
        try:
            for part, result in results:
                n += self._insert(part, (result,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return n

    def _insert(self, part: int, results: Iterable[ResultLine]) -> int:
        n = 0
        for result in results:
            error = result.error
            # A request answered twice (a result file with a line twice) keeps its answer: an
            # error line never replaces one.
            self._db.execute(
                "INSERT INTO batch_results VALUES (?, ?, ?, ?, ?) ON CONFLICT (custom_id) DO"
                " UPDATE SET part = excluded.part, status_code = excluded.status_code,"
                " body = excluded.body, error = excluded.error"
                " WHERE excluded.body IS NOT NULL OR batch_results.body IS NULL",
                (
                    result.custom_id, part, result.status_code, result.body,
                    None if error is None else json.dumps([str(error), error.code]),
                ),
            )  # fmt: skip
            n += 1
        return n

    def snapshot(self, custom_ids: Iterable[str]) -> Snapshot:
        """The sendings, bodies and results of these requests, read in a few queries (deciding
        thousands of records after a batch ends would otherwise ask four times each)."""
        return Snapshot(self, custom_ids)


class Snapshot:
    """What the ledger holds about some requests, read at once; asking about another request
    asks the ledger. Valid until the ledger changes (one round of decisions)."""

    def __init__(self, ledger: BatchLedger, custom_ids: Iterable[str]) -> None:
        self._ledger = ledger
        ids = list(dict.fromkeys(custom_ids))
        self._known = set(ids)
        self._sendings: dict[str, list[tuple[int, str, bool]]] = {}
        self._bodies: dict[str, str] = {}
        self._results: dict[str, StoredResult] = {}
        db = ledger._db
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = db.execute(
                "SELECT r.custom_id, r.part, p.state, p.tag, p.status, r.body FROM"
                f" batch_requests r JOIN batch_parts p USING (part) WHERE r.custom_id IN"
                f" ({marks}) ORDER BY r.part",
                chunk,
            )
            for cid, part, state, tag, status, body in rows:
                sent = (part, state, _counted(tag, status))
                self._sendings.setdefault(cid, []).append(sent)
                self._bodies[cid] = body
            rows = db.execute(
                "SELECT custom_id, part, status_code, body, error FROM batch_results"
                f" WHERE custom_id IN ({marks})",
                chunk,
            )
            for cid, *row in rows:
                self._results[cid] = _stored(cid, *row)

    def sendings(self, custom_id: str) -> list[tuple[int, str, bool]]:
        if custom_id in self._known:
            return self._sendings.get(custom_id, [])
        return self._ledger.sendings(custom_id)

    def body(self, custom_id: str) -> str | None:
        if custom_id in self._known:
            return self._bodies.get(custom_id)
        return self._ledger.body(custom_id)

    def result(self, custom_id: str) -> StoredResult | None:
        if custom_id in self._known:
            return self._results.get(custom_id)
        return self._ledger.result(custom_id)


_CHUNK = 500  # SQLite's limit on parameters is 999 in older builds
#: Batch statuses under which a request was not run (sending it again is free of doubt).
_NOT_RUN = frozenset({"failed", "cancelled", "abandoned"})


def _counted(tag: str, status: str | None) -> bool:
    return tag != LOCAL_TAG and status not in _NOT_RUN


def _stored(
    custom_id: str, part: int, status: int | None, body: Any, error: str | None
) -> StoredResult:
    failure = None
    if error is not None:
        message, code = json.loads(error)
        failure = BatchLineError(message, custom_id=custom_id, status_code=status, code=code)
    return StoredResult(part, status, None if body is None else bytes(body), failure)


def _part(row: tuple[Any, ...]) -> Part:
    (part, tag, url, lines, size, state, file_id, batch_id, status, counts, detail, created) = row
    return Part(
        part, tag, url, lines, size, state, file_id, batch_id, status,
        None if counts is None else json.loads(counts), detail, created,
    )  # fmt: skip
