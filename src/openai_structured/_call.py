"""The attempts of one non-streamed call, sans-I/O: what to send, what each answer means.

The sync and async loops in ``client.py`` are the same few lines around it::

    run = CallRun(call, log, retries=..., budget=...)
    while True:
        body = send(run.request())      # the only line that differs (await or not)
        if run.receive(body):
            return run.result()

:meth:`CallRun.receive` reads the body (one :class:`~._outcome.Answer` per choice), applies the
outcome table, and either keeps the result or, when the answer failed in a way the model can
fix and re-asks are left (``max_validation_retries``), builds the next request: the
conversation, the model's answer and the errors (:mod:`._reask`).
"""

from __future__ import annotations

import time
from typing import Any

from ._logging import LogSink
from ._outcome import Answer, resolve
from ._reask import RETRYABLE, Budget, exhausted, reask
from ._request import PreparedCall
from ._usage import StructuredResult, UsageTotals, result_of
from .errors import APIResponseError, OpenAIClientError, TokenLimitError

__all__ = ["CallRun", "attach_attempts"]


def attach_attempts(exc: BaseException, errors: list[APIResponseError]) -> None:
    """An outcome that ends a re-asked call (a refusal on attempt 2...) carries the earlier
    attempts' errors too."""
    if errors and isinstance(exc, (APIResponseError, TokenLimitError)) and not exc.attempts:
        exc.attempts = tuple(errors)


class CallRun:
    """One call's attempts. ``request()`` is what to send next; ``receive(body)`` returns True
    when the result is ready (:meth:`result`), False when a re-ask is to be sent, or raises the
    outcome's typed error."""

    def __init__(self, call: PreparedCall, log: LogSink, *, retries: int, budget: Budget) -> None:
        self.call = call
        self.log = log
        self.retries = retries
        self.budget = budget
        self.kwargs: dict[str, Any] = call.kwargs
        self.errors: list[APIResponseError] = []  # each failed attempt's error
        self.usages: list[dict[str, Any] | None] = []
        self.response_ids: list[str | None] = []
        self.value: Any = None
        self.started = time.perf_counter()

    def request(self) -> dict[str, Any]:
        """The keyword arguments of the next ``create()``; raises ``TokenBudgetError`` (and
        sends nothing) when ``max_total_tokens`` would be passed."""
        self.budget.check(self.kwargs, self.errors)
        return self.kwargs

    def receive(self, body: bytes) -> bool:
        call = self.call
        log = self.log
        try:
            answers = call.api.read_answers(body)
            first = answers[0]
            self.usages.append(first.usage)
            self.response_ids.append(first.response_id)
            self.budget.add(first.usage)
            if call.n > 1:
                self.value = self._choices(answers)
            else:
                self.value = resolve(first, call.limit, validator=call.validator, tools=call.tools)
        except RETRYABLE as exc:
            if len(self.errors) < self.retries:
                self._retry(exc, first)
                return False
            self.errors.append(exc)
            final = exhausted(self.errors)
            self._log_failure(final)
            if final is exc:
                raise
            raise final from None
        except Exception as exc:
            attach_attempts(exc, self.errors)
            self._log_failure(exc)
            raise
        if log:
            log.emit("validation", ok=True, response_id=first.response_id)
            log.emit(
                "request.end",
                latency_s=time.perf_counter() - self.started,
                response_id=first.response_id,
                usage=first.usage,
                attempts=len(self.usages),
            )
        return True

    def result(self) -> StructuredResult[Any]:
        return result_of(self.value, self.call.model, self.usages, self.response_ids)

    def request_failed(self, exc: BaseException) -> None:
        """The transport raised (the SDK's own error passes through): attach the earlier
        attempts and log it; the caller re-raises."""
        attach_attempts(exc, self.errors)
        if self.log:
            self.log.emit("error", "error", stage="request", error=exc)

    def count_in(self, totals: UsageTotals | None) -> None:
        """Add what the attempts spent (failed ones too) to a client's running totals."""
        if totals is not None and self.usages:
            totals.add(self.result())

    def _retry(self, exc: APIResponseError, answer: Answer) -> None:
        self.errors.append(exc)
        self.kwargs = reask(
            self.call.api, self.kwargs, answer, exc,
            attempt=len(self.errors), retries=self.retries, log=self.log,
        )  # fmt: skip

    def _choices(self, answers: list[Answer]) -> list[Any]:
        """``n > 1``: one result per choice, in choice order; a failing choice raises its error
        with the other choices' results (``choice_results``) and its ``choice_index``."""
        call = self.call
        results: dict[int, Any] = {}
        failures: list[tuple[int, OpenAIClientError]] = []
        for index, answer in enumerate(answers):
            try:
                results[index] = resolve(
                    answer, call.limit, validator=call.validator, tools=call.tools
                )
            except OpenAIClientError as exc:
                failures.append((index, exc))
        if failures:
            index, error = failures[0]
            error.choice_index = index
            error.choice_results = results
            raise error
        if len(answers) != call.n and self.log:
            self.log.emit("validation", "warning", ok=True, choices=len(answers), requested=call.n)
        return [results[i] for i in range(len(answers))]

    def _log_failure(self, exc: BaseException) -> None:
        if self.log:
            self.log.emit("validation", "error", ok=False, error=exc)
            self.log.emit("error", "error", stage="decode", error=exc)
