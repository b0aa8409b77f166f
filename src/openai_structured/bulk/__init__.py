"""Bulk runs: many records through one model, at the account's rate limits, resumable.

    from openai_structured.bulk import BulkRun, read_records

    run = BulkRun(
        model="gpt-4o-mini",
        output_schema=Review,
        request=lambda record: {"user_prompt": record.variables["text"]},
        output="reviews.out.jsonl",          # journaled: rerun the same code to resume
        rpm=500,
    )
    for outcome in run.run(read_records("reviews.jsonl")):
        print(outcome.id, outcome.value if outcome.ok else outcome.error)

The pieces, one module each: ``_inputs`` (JSONL, CSV, a directory or stdin, streamed, as
records), ``_limiter`` (requests and tokens per minute, sans-I/O), ``_journal`` (SQLite next to
the output: exactly one line per record across crashes), ``_runner`` (the async workers, and
the sync face). ``ostruct batch`` is the command line over them; see docs/bulk.md.
"""

from ._batch import (
    BatchCancelledError,
    BatchFailedError,
    BatchFiles,
    BatchSubmitError,
    OpenAIBatch,
)
from ._batch_lines import BatchLineError
from ._inputs import BadRecord, Record, count_records, read_records
from ._journal import (
    Journal,
    JournalCorruptError,
    JournalError,
    JournalLockedError,
    JournalVersionError,
    OutputExistsError,
    OutputPathError,
    Summary,
    Totals,
    record_key,
)
from ._limiter import LimiterStats, RateLimiter, RequestTooLargeError
from ._runner import BudgetExhaustedError, BulkRun, BulkStopped, FailedEarlier, Outcome

__all__ = [
    "BadRecord",
    "BatchCancelledError",
    "BatchFailedError",
    "BatchFiles",
    "BatchLineError",
    "BatchSubmitError",
    "BudgetExhaustedError",
    "BulkRun",
    "BulkStopped",
    "FailedEarlier",
    "Journal",
    "JournalCorruptError",
    "JournalError",
    "JournalLockedError",
    "JournalVersionError",
    "LimiterStats",
    "OpenAIBatch",
    "Outcome",
    "OutputExistsError",
    "OutputPathError",
    "RateLimiter",
    "Record",
    "RequestTooLargeError",
    "Summary",
    "Totals",
    "count_records",
    "read_records",
    "record_key",
]
