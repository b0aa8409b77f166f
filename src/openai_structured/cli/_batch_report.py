"""What ``ostruct batch`` shows: the progress bar (a terminal only), the final summary line and
the dry run's totals."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import Any

from ..bulk import BadRecord, BulkRun, Outcome, Summary
from ..bulk._runner import RUN_ERRORS, _estimate, _output_budget, _prompt_tokens
from ..client import _prepare
from ..servers import ServerProfile

__all__ = ["Progress", "dry_run_totals", "summary_line"]

#: Failures of the input itself: requesting them again cannot help.
_INPUT_ERRORS = frozenset(
    {"RecordSyntaxError", "RecordShapeError", "RecordLimitError", "RecordTooLargeError",
     "RecordEncodingError", "RecordIdError", "DuplicateIdError"}
)  # fmt: skip


def _usd(value: float | None) -> str:
    if value is None:
        return "cost unknown"
    return f"${value:.4f}" if value < 1 else f"${value:,.2f}"


def summary_line(summary: Summary, *, stopped: bool, now: float) -> str:
    """One line: what this run did, and what the output holds."""
    run, out = summary.run, summary.output
    errors = ", ".join(f"{n} {name}" for name, n in sorted(out.errors.items()))
    failed = f"{out.failed} failed ({errors})" if out.failed else "0 failed"
    tokens = run.prompt_tokens + run.completion_tokens
    head = "ostruct batch stopped" if stopped else "ostruct batch"
    tail = "; run the same command to go on" if stopped else ""
    if out.failed and not stopped and set(out.errors) - _INPUT_ERRORS:
        tail = "; --retry-failed requests the failed records again"
    records = "1 record" if run.records == 1 else f"{run.records} records"
    return (
        f"{head}: {out.ok} ok, {failed} in the output; this run: {records}, "
        f"{tokens:,} tokens, {_usd(run.cost)}, {summary.records_per_second:.1f} records/s{tail}"
    )


class Progress:
    """A Rich progress bar on stderr: done, failed, in flight, rate, tokens, cost, ETA."""

    def __init__(self, run: BulkRun, total: int | None, *, enabled: bool) -> None:
        self.run = run
        self.total = total
        self.enabled = enabled
        self.done = self.failed = self.resumed = 0
        self.tokens = 0
        self.cost = 0.0
        self._bar: Any = None
        self._task: Any = None
        self._start = time.monotonic()

    def __enter__(self) -> Progress:
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, TextColumn, TimeRemainingColumn
            from rich.progress import Progress as Bar

            self._bar = Bar(
                TextColumn("[bold]batch"),
                BarColumn(),
                TextColumn("{task.completed}/{task.total}" if self.total else "{task.completed}"),
                TextColumn("{task.fields[detail]}"),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self._bar.__enter__()
            self._task = self._bar.add_task("batch", total=self.total, detail="")
        return self

    def advance(self, outcome: Outcome) -> None:
        self.done += 1
        self.failed += not outcome.ok
        self.resumed += outcome.resumed
        self.tokens += outcome.usage.total_tokens
        self.cost += outcome.cost or 0.0
        if self._bar is None:
            return
        elapsed = max(time.monotonic() - self._start, 1e-6)
        rate = (self.done - self.resumed) / elapsed
        detail = (
            f"{self.failed} failed · {self.run.in_flight} in flight · {rate:.1f}/s · "
            f"{self.tokens:,} tokens · ${self.cost:.4f}"
        )
        self._bar.update(self._task, completed=self.done, detail=detail)

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.__exit__(kind, exc, tb)


def dry_run_totals(
    records: Iterable[Any],
    request: Callable[[Any], Mapping[str, Any]],
    *,
    model: str,
    schema: Mapping[str, Any],
    profile: ServerProfile,
    where: str,
    options: Mapping[str, Any],
    batch_lines: int | None = None,
) -> str:
    """Every record rendered and counted offline; nothing sent. ``batch_lines``: the run goes
    through the Batch API, in files of that many requests, at its prices."""
    from ..bulk._batch import _batch_estimate

    count = bad = 0
    prompt = output = 0
    cost: float | None = 0.0
    reasons: dict[str, int] = {}
    for record in records:
        count += 1
        try:
            if isinstance(record, BadRecord):
                raise record.error
            call = _prepare(profile, model, None, schema, {**options, **request(record)},
                            stream=False)  # fmt: skip
        except RUN_ERRORS:  # the same for every record: the real run would stop here too
            raise
        except Exception as exc:
            bad += 1
            reasons[type(exc).__name__] = reasons.get(type(exc).__name__, 0) + 1
            continue
        prompt += _prompt_tokens(model, call.kwargs)
        output += _output_budget(model, call.kwargs)
        each = _estimate(model, call) if batch_lines is None else _batch_estimate(model, call)
        cost = None if cost is None or each is None else cost + each
    failing = ", ".join(f"{n} {name}" for name, n in sorted(reasons.items()))
    prices = "" if batch_lines is None else " at Batch API prices"
    lines = [
        "ostruct batch dry run: nothing was sent.",
        f"model:   {model}",
        f"server:  {where} (profile {profile.name})",
        f"records: {count:,}" + (f" ({bad} would fail before sending: {failing})" if bad else ""),
        f"prompt tokens: {prompt:,} (offline count, chat framing included)",
        f"output tokens: at most {output:,}",
        "estimated cost: "
        + (f"unknown (the registry has no{prices or ''} prices for this model)" if cost is None
           else f"at most {_usd(cost)} USD{prices} (every output budget used in full)"),
    ]  # fmt: skip
    if batch_lines is not None:
        sendable = count - bad
        files = -(-sendable // batch_lines) if sendable else 0
        lines.insert(
            3, f"backend: OpenAI Batch API ({files} batch file{'s' if files != 1 else ''} of at"
            f" most {batch_lines:,} requests; answers within 24 h)",
        )  # fmt: skip
    return "\n".join(lines)
