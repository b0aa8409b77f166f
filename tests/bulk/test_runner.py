"""BulkRun through the loopback server: order, ids, resume, per-record failures, run-level stops,
budgets, rate limits, concurrency, early exit, secrets and lazy input.

Every test drives the real runner (sync ``run()`` and async ``arun()``) against
``FakeOpenAIServer`` and judges it by what the server received and what the output file holds.
The server answers with a function of the request: each record's prompt is ``record N``, so the
function knows which record it is answering (the first user message: re-asks append more).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import threading
import time
from collections import Counter
from collections.abc import AsyncGenerator, Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal, cast

import openai
import pytest
from pydantic import BaseModel

from openai_structured.bulk import (
    BudgetExhaustedError,
    BulkRun,
    BulkStopped,
    Journal,
    Outcome,
    Record,
    read_records,
)
from openai_structured.errors import RefusalError, ValidationError
from openai_structured.servers import PROFILE_HEADER
from openai_structured.templates import PathPolicy
from openai_structured.testing import (
    CapturedRequest,
    FakeOpenAIServer,
    Fault,
    RateLimits,
    Reply,
    Usage,
)
from openai_structured.tokens import count_message_tokens, estimate_cost

MODEL = "gpt-4o-mini"  # in the registry: it has prices (max_cost) and an output limit
#: Limits known up front, so the runner starts at full concurrency instead of probing with one
#: request until it has learned them.
KNOWN_LIMITS: dict[str, Any] = {"rpm": 100_000, "tpm": 10**9}
Mode = Literal["sync", "async"]
MODES = pytest.mark.parametrize("mode", ["sync", "async"])


class Answer(BaseModel):
    text: str


# --- helpers -------------------------------------------------------------------------------------


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as srv:
        yield srv


@pytest.fixture
def out(tmp_path: Path) -> Path:
    return tmp_path / "out.jsonl"


def prompt_of(request: CapturedRequest) -> str:
    """The record's prompt: the first user message (a re-ask appends more messages)."""
    return str(next(m["content"] for m in request.json["messages"] if m["role"] == "user"))


def record_of(request: CapturedRequest) -> int:
    match = re.fullmatch(r"record (\d+)(?: .*)?", prompt_of(request), re.S)
    assert match is not None, prompt_of(request)
    return int(match.group(1))


def echo(request: CapturedRequest) -> Reply:
    """The right answer: the prompt back."""
    return Reply.json({"text": prompt_of(request)})


def number(item: Any) -> int:
    """The record number of an input item (a Record, a mapping or a plain int)."""
    if isinstance(item, Record):
        return int(item.variables["n"])
    if isinstance(item, Mapping):
        return int(item["n"])
    return int(item)


def ask(item: Any) -> dict[str, Any]:
    prompt = f"record {number(item)}"
    if isinstance(item, Mapping) and "extra" in item:
        prompt += f" {item['extra']}"
    return {"user_prompt": prompt}


def bulk(fake: FakeOpenAIServer, /, **kwargs: Any) -> BulkRun:
    """A BulkRun on a fresh client of ``fake`` (the runner closes the client it is given)."""
    options: dict[str, Any] = {"model": MODEL, "output_schema": Answer, "request": ask}
    options.update(kwargs)
    options.setdefault("client", fake.async_client())
    return BulkRun(**options)


def collect(
    run: BulkRun, records: Iterable[Any], mode: Mode
) -> tuple[list[Outcome], BulkStopped | None]:
    """Every outcome, through ``run()`` or ``arun()``, and the BulkStopped that ended it."""
    outcomes: list[Outcome] = []

    async def consume() -> None:
        try:
            async for outcome in run.arun(records):
                outcomes.append(outcome)
        finally:  # arun leaves a client passed in open: close it on the loop it used
            if run.client is not None:
                await run.client.close()

    try:
        if mode == "sync":
            outcomes.extend(run.run(records))
        else:
            asyncio.run(consume())
    except BulkStopped as exc:
        return outcomes, exc
    return outcomes, None


def lines_of(path: Path) -> list[dict[str, Any]]:
    """The output's lines, parsed; it must end with a newline (no torn line)."""
    data = path.read_bytes()
    assert data == b"" or data.endswith(b"\n"), data[-80:]
    return [json.loads(line) for line in data.split(b"\n")[:-1]]


def by_id(path: Path) -> dict[Any, dict[str, Any]]:
    """The output's lines by id; each id must have exactly one line."""
    lines = lines_of(path)
    counts = Counter(line["id"] for line in lines)
    assert all(n == 1 for n in counts.values()), counts
    return {line["id"]: line for line in lines}


def requests_for(server: FakeOpenAIServer) -> Counter[int]:
    """How many requests the server got for each record."""
    return Counter(record_of(r) for r in server.requests if r.endpoint == "chat")


class Simultaneous:
    """A reply function that measures how many requests the server holds at once."""

    def __init__(self, hold: float = 0.03) -> None:
        self.hold = hold
        self.now = 0
        self.most = 0
        self._lock = threading.Lock()

    def __call__(self, request: CapturedRequest) -> Reply:
        with self._lock:
            self.now += 1
            self.most = max(self.most, self.now)
        try:
            time.sleep(self.hold)  # on this request's own handler thread
        finally:
            with self._lock:
                self.now -= 1
        return echo(request)


# --- order ---------------------------------------------------------------------------------------


@MODES
@pytest.mark.parametrize("ordered", [False, True], ids=["completion-order", "ordered"])
def test_outcomes_come_as_they_complete_or_in_input_order_when_ordered(
    server: FakeOpenAIServer, out: Path, mode: Mode, ordered: bool
) -> None:
    def slow_first(request: CapturedRequest) -> Reply | Fault:
        if record_of(request) == 1:
            return Fault.delay(0.4, reply=echo(request))
        return echo(request)

    server.default_reply = slow_first
    run = bulk(server, output=out, concurrency=4, ordered=ordered, **KNOWN_LIMITS)
    outcomes, stopped = collect(run, range(1, 6), mode)

    assert stopped is None
    # The output is written as records finish: records 2-5 finished while 1 was answered.
    finished = [line["id"] for line in lines_of(out)]
    assert sorted(finished) == [1, 2, 3, 4, 5] and finished[-1] == 1, finished
    positions = [o.position for o in outcomes]
    if ordered:
        assert positions == [1, 2, 3, 4, 5]
    else:
        assert positions == finished
    assert all(o.ok and o.value == Answer(text=f"record {o.id}") for o in outcomes)


# --- ids -----------------------------------------------------------------------------------------


def test_ids_come_from_the_record_the_mapping_id_or_the_position(
    server: FakeOpenAIServer, tmp_path: Path, out: Path
) -> None:
    source = tmp_path / "in.jsonl"
    # Line 1 is blank, so a line-number id (3) differs from the record's position (2).
    source.write_text('\n{"id": "a-1", "n": 1}\n{"n": 2}\n{"id": 70, "n": 3}\n{"id": "x", \n')
    records: list[Any] = list(read_records(source, policy=PathPolicy(allowed_dirs=[tmp_path])))
    records += [{"id": "m", "n": 4}, {"n": 5}, 6]
    server.default_reply = echo
    outcomes, stopped = collect(bulk(server, output=out), records, "sync")

    assert stopped is None
    ids = {o.position: o.id for o in outcomes}
    # Record ids ("a-1", line 3, 70, the broken line's number 5), a mapping's "id", positions.
    assert ids == {1: "a-1", 2: 3, 3: 70, 4: 5, 5: "m", 6: 6, 7: 7}
    bad = next(o for o in outcomes if o.position == 4)
    assert not bad.ok and type(bad.error).__name__ == "RecordSyntaxError"
    lines = by_id(out)
    assert set(lines) == {"a-1", 3, 70, 5, "m", 6, 7}
    assert lines[5]["error"]["type"] == "RecordSyntaxError"
    assert lines[70] == {"id": 70, "result": {"text": "record 3"}}
    assert sorted(requests_for(server)) == [1, 2, 3, 4, 5, 6]  # the broken line was not sent


# --- resume --------------------------------------------------------------------------------------


@MODES
def test_a_second_run_resumes_finished_records_without_requesting_them(
    server: FakeOpenAIServer, out: Path, mode: Mode
) -> None:
    server.default_reply = echo
    first, _ = collect(bulk(server, output=out), [{"id": i, "n": i} for i in (1, 2, 3)], mode)
    assert [o.resumed for o in first] == [False] * 3
    assert requests_for(server) == {1: 1, 2: 1, 3: 1}

    second, stopped = collect(
        bulk(server, output=out), [{"id": i, "n": i} for i in (1, 2, 3, 4)], mode
    )

    assert stopped is None
    assert {o.id: o.resumed for o in second} == {1: True, 2: True, 3: True, 4: False}
    assert requests_for(server) == {1: 1, 2: 1, 3: 1, 4: 1}  # only the new record was sent
    assert by_id(out)[4] == {"id": 4, "result": {"text": "record 4"}}
    assert set(by_id(out)) == {1, 2, 3, 4}


def test_a_changed_prompt_for_the_same_id_is_requested_again_and_replaces_its_line(
    server: FakeOpenAIServer, out: Path
) -> None:
    server.default_reply = echo
    records = [{"id": "a", "n": 1}, {"id": "b", "n": 2}]
    collect(bulk(server, output=out), records, "sync")

    changed = [{"id": "a", "n": 1, "extra": "(shorter, please)"}, {"id": "b", "n": 2}]
    outcomes, stopped = collect(bulk(server, output=out), changed, "sync")

    assert stopped is None
    assert {o.id: o.resumed for o in outcomes} == {"a": False, "b": True}
    assert requests_for(server) == {1: 2, 2: 1}
    lines = lines_of(out)
    assert len(lines) == 2  # one line per id, the superseded answer is gone from the output
    assert by_id(out)["a"]["result"] == {"text": "record 1 (shorter, please)"}


def test_retry_failed_requests_the_failed_records_again(
    server: FakeOpenAIServer, out: Path
) -> None:
    broken = {"on": True}

    def flaky(request: CapturedRequest) -> Reply | Fault:
        if record_of(request) == 2 and broken["on"]:
            return Fault.status(500)
        return echo(request)

    server.default_reply = flaky
    records = [{"id": i, "n": i} for i in (1, 2, 3)]
    first, _ = collect(bulk(server, output=out, max_retries=0), records, "sync")
    assert [o.id for o in first if not o.ok] == [2]
    assert by_id(out)[2]["error"]["type"] == "InternalServerError"

    broken["on"] = False
    again, _ = collect(bulk(server, output=out), records, "sync")
    assert all(o.resumed for o in again)
    assert requests_for(server)[2] == 1  # a failure is final until --retry-failed

    retried, stopped = collect(bulk(server, output=out, retry_failed=True), records, "sync")

    assert stopped is None
    assert {o.id: o.resumed for o in retried} == {1: True, 2: False, 3: True}
    assert requests_for(server) == {1: 1, 2: 2, 3: 1}
    assert by_id(out)[2] == {"id": 2, "result": {"text": "record 2"}}
    assert len(lines_of(out)) == 3


def test_a_resumed_failure_is_not_reported_ok(server: FakeOpenAIServer, out: Path) -> None:
    server.default_reply = lambda request: Fault.status(500)
    collect(bulk(server, output=out, max_retries=0), [{"id": 1, "n": 1}], "sync")
    assert by_id(out)[1]["error"]["type"] == "InternalServerError"

    (again,), _ = collect(bulk(server, output=out), [{"id": 1, "n": 1}], "sync")

    assert again.resumed
    assert not again.ok  # its line in the output is an error line


def test_a_repeated_id_is_not_requested_again_on_every_rerun(
    server: FakeOpenAIServer, out: Path
) -> None:
    server.default_reply = echo
    # An explicit id repeated, and a position id (2) that clashes with an explicit one.
    records = [{"id": 2, "n": 1}, {"n": 2}, {"id": "x", "n": 3}, {"id": "x", "n": 4}]
    collect(bulk(server, output=out), records, "sync")
    sent = len(server.requests)

    collect(bulk(server, output=out), records, "sync")

    assert len(server.requests) == sent  # nothing changed, nothing is requested again


# --- per-record failures -------------------------------------------------------------------------


@MODES
def test_a_record_that_fails_gets_its_error_line_and_the_run_goes_on(
    server: FakeOpenAIServer, out: Path, mode: Mode
) -> None:
    def answers(request: CapturedRequest) -> Reply | Fault:
        n = record_of(request)
        if n == 2:
            return Reply.json({"text": 42})  # not the schema
        if n == 3:
            return Reply.refusal("I can't help with record 3.")
        if n == 4:
            return Fault.status(500, message="the model is down")
        return echo(request)

    server.default_reply = answers
    run = bulk(server, output=out, max_retries=1, **KNOWN_LIMITS)
    outcomes, stopped = collect(run, [{"id": i, "n": i} for i in range(1, 6)], mode)

    assert stopped is None
    got = {o.id: o for o in outcomes}
    assert sorted(got) == [1, 2, 3, 4, 5]
    assert got[1].ok and got[5].ok
    assert isinstance(got[2].error, ValidationError)
    assert isinstance(got[3].error, RefusalError)
    assert isinstance(got[4].error, openai.InternalServerError)
    assert requests_for(server)[4] == 2  # one retry (max_retries=1), then recorded
    lines = by_id(out)
    assert lines[2]["error"]["type"] == "ValidationError"
    assert "text" in lines[2]["error"]["message"]  # names the failing field
    assert lines[3]["error"]["type"] == "RefusalError"
    assert lines[4]["error"] == {
        "type": "InternalServerError",
        "message": lines[4]["error"]["message"],
    }
    assert "the model is down" in lines[4]["error"]["message"]
    assert lines[5] == {"id": 5, "result": {"text": "record 5"}}
    assert run.summary is not None
    assert dict(run.summary.output.errors) == {
        "InternalServerError": 1,
        "RefusalError": 1,
        "ValidationError": 1,
    }


def test_validation_retries_reask_before_a_record_fails(
    server: FakeOpenAIServer, out: Path
) -> None:
    def answers(request: CapturedRequest) -> Reply:
        reasked = len(request.json["messages"]) > 1
        if record_of(request) == 1 and reasked:
            return echo(request)  # fixed on the re-ask
        return Reply.json({"text": 0})

    server.default_reply = answers
    run = bulk(server, output=out, max_validation_retries=1)
    outcomes, stopped = collect(run, [{"id": 1, "n": 1}, {"id": 2, "n": 2}], "sync")

    assert stopped is None
    got = {o.id: o for o in outcomes}
    assert got[1].ok and got[1].attempts == 2
    assert isinstance(got[2].error, ValidationError) and got[2].attempts == 2
    assert requests_for(server) == {1: 2, 2: 2}
    reasks = [r for r in server.requests if len(r.json["messages"]) > 1]
    assert {r.json["messages"][1]["role"] for r in reasks} == {"assistant"}
    assert by_id(out)[1] == {"id": 1, "result": {"text": "record 1"}}
    assert by_id(out)[2]["error"]["type"] == "ValidationError"


# --- run-level stops -----------------------------------------------------------------------------


def assert_output_matches_journal(out: Path, stopped: BulkStopped, ok: set[Any]) -> None:
    """The output holds exactly the finished records, and the journal agrees with it."""
    assert set(by_id(out)) == ok
    assert stopped.summary is not None and stopped.summary.output.ok == len(ok)
    with Journal.open(out) as journal:  # the lock was released
        assert journal.resumed.records == len(ok)
        assert not journal.resumed.rebuilt
        assert journal.resumed.appended == journal.resumed.torn_bytes == 0


@MODES
def test_an_authentication_error_mid_run_stops_it_and_the_rerun_finishes(
    server: FakeOpenAIServer, out: Path, mode: Mode
) -> None:
    revoked = {"on": True}

    def answers(request: CapturedRequest) -> Reply | Fault:
        if record_of(request) >= 4 and revoked["on"]:
            return Fault.status(401)
        return echo(request)

    server.default_reply = answers
    records = [{"id": i, "n": i} for i in range(1, 11)]
    outcomes, stopped = collect(bulk(server, output=out, concurrency=1), records, mode)

    assert stopped is not None
    assert isinstance(stopped.cause, openai.AuthenticationError)
    assert [o.id for o in outcomes] == [1, 2, 3] and all(o.ok for o in outcomes)
    assert max(requests_for(server)) == 4  # nothing was sent after the 401
    assert_output_matches_journal(out, stopped, {1, 2, 3})

    revoked["on"] = False
    rest, again = collect(bulk(server, output=out), records, mode)

    assert again is None
    assert sorted(o.id for o in rest if not o.resumed) == list(range(4, 11))
    assert set(requests_for(server).values()) == {1, 2} and requests_for(server)[4] == 2
    assert set(by_id(out)) == set(range(1, 11))


@MODES
def test_a_wrong_api_key_stops_the_run_at_once(out: Path, mode: Mode) -> None:
    with FakeOpenAIServer(default_reply=echo, require_api_key="sk-right-key-0123456789") as srv:
        run = bulk(srv, output=out, concurrency=2, client=srv.async_client(api_key="sk-wrong"))
        outcomes, stopped = collect(run, range(1, 21), mode)

        assert stopped is not None
        assert isinstance(stopped.cause, openai.AuthenticationError)
        assert outcomes == []
        assert 1 <= len(srv.requests) <= 2  # those in flight; not one request per record
        assert_output_matches_journal(out, stopped, set())


@MODES
def test_max_requests_stops_the_run_after_the_requests_in_flight(
    server: FakeOpenAIServer, out: Path, mode: Mode
) -> None:
    server.default_reply = echo
    server.latency = 0.1  # so that several are in flight when the budget runs out
    run = bulk(server, output=out, concurrency=3, max_requests=5, **KNOWN_LIMITS)
    outcomes, stopped = collect(run, [{"id": i, "n": i} for i in range(1, 13)], mode)

    assert stopped is not None
    assert isinstance(stopped.cause, BudgetExhaustedError)
    assert len(server.requests) == 5
    assert len(outcomes) == 5 and all(o.ok for o in outcomes)  # in flight: finished, yielded
    assert_output_matches_journal(out, stopped, {o.id for o in outcomes})


def offline_estimate(messages: list[dict[str, Any]], output_tokens: int) -> float:
    """What a request can cost at most: offline prompt count, whole output budget."""
    cost = estimate_cost(MODEL, count_message_tokens(messages, MODEL), output_tokens)
    assert cost is not None
    return cost.total


def billed_as_estimated(budget: int) -> Callable[[CapturedRequest], Reply]:
    """Echo, reporting the usage the runner estimates: the offline prompt count and the whole
    output budget, so that what a request costs is exactly its estimate."""

    def reply(request: CapturedRequest) -> Reply:
        prompt = count_message_tokens(request.json["messages"], MODEL)
        return echo(request).with_options(usage=Usage(prompt, budget))

    return reply


@MODES
def test_max_cost_stops_before_a_request_would_go_over_it(
    server: FakeOpenAIServer, out: Path, mode: Mode
) -> None:
    budget = 200
    each = offline_estimate([{"role": "user", "content": "record 1"}], budget)
    server.default_reply = billed_as_estimated(budget)
    server.latency = 0.05
    run = bulk(
        server, output=out, concurrency=4, max_cost=3.5 * each, max_output_tokens=budget,
        **KNOWN_LIMITS,
    )  # fmt: skip
    outcomes, stopped = collect(run, [{"id": i, "n": i} for i in range(1, 10)], mode)

    assert stopped is not None
    assert isinstance(stopped.cause, BudgetExhaustedError)
    assert len(server.requests) == 3  # a fourth would have taken the run over max_cost
    assert all(r.json["max_completion_tokens"] == budget for r in server.requests)
    assert all(offline_estimate(r.json["messages"], budget) == each for r in server.requests)
    assert len(outcomes) == 3
    assert sum(o.cost or 0.0 for o in outcomes) == pytest.approx(3 * each)
    assert_output_matches_journal(out, stopped, {o.id for o in outcomes})


@pytest.mark.parametrize("limit", ["max_requests", "max_cost"])
def test_budgets_count_every_request_a_record_sends(server: FakeOpenAIServer, limit: str) -> None:
    budget = 200
    each = offline_estimate([{"role": "user", "content": "record 1"}], budget)
    fixed_on_reask = billed_as_estimated(budget)

    def answers(request: CapturedRequest) -> Reply:
        if len(request.json["messages"]) == 1:  # every first answer is wrong
            return Reply.json({"text": 0}).with_options(usage=Usage(10, budget))
        return fixed_on_reask(request)

    server.default_reply = answers
    limits = {"max_requests": 2} if limit == "max_requests" else {"max_cost": 1.5 * each}
    run = bulk(server, concurrency=1, max_validation_retries=1, max_output_tokens=budget, **limits)
    outcomes, stopped = collect(run, [{"id": i, "n": i} for i in range(1, 6)], "sync")

    assert stopped is not None and isinstance(stopped.cause, BudgetExhaustedError)
    if limit == "max_requests":
        assert len(server.requests) <= 2
    else:
        assert sum(o.cost or 0.0 for o in outcomes) <= 1.5 * each


def test_an_input_that_fails_part_way_keeps_the_answers_in_flight(
    server: FakeOpenAIServer, out: Path
) -> None:
    def records() -> Iterator[dict[str, int]]:
        yield from ({"id": i, "n": i} for i in range(1, 5))
        raise OSError("the input's disk failed")

    def answers(request: CapturedRequest) -> Reply | Fault:
        if record_of(request) == 1:
            return echo(request)  # done first: its worker asks for the next record
        return Fault.delay(0.3, reply=echo(request))

    server.default_reply = answers
    _, stopped = collect(bulk(server, output=out, concurrency=4, **KNOWN_LIMITS), records(), "sync")
    assert stopped is not None and isinstance(stopped.cause, OSError)
    assert "disk failed" in str(stopped)

    assert len(server.requests) == 4
    assert set(by_id(out)) == {1, 2, 3, 4}  # every answer paid for is in the output


# --- leaving early -------------------------------------------------------------------------------


class Pulled:
    """A generator input that remembers how far it was read."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.count = 0
        self.reached: dict[int, threading.Event] = {}

    def __iter__(self) -> Iterator[dict[str, int]]:
        for i in range(1, self.total + 1):
            self.count = i
            if i in self.reached:
                self.reached[i].set()
            yield {"id": i, "n": i}


def test_breaking_out_of_run_stops_its_thread_and_closes_the_journal(
    server: FakeOpenAIServer, out: Path
) -> None:
    server.default_reply = echo
    server.latency = 0.05
    source = Pulled(500)
    run = bulk(server, output=out, concurrency=4, **KNOWN_LIMITS)
    taken = []
    for outcome in run.run(source):
        taken.append(outcome.id)
        if len(taken) == 3:
            break

    assert not [t for t in threading.enumerate() if t.name == "ostruct-bulk"]
    sent = len(server.requests)
    assert source.count < 500
    with Journal.open(out) as journal:  # the lock is free: the run closed its journal
        assert journal.resumed.records >= 3
        assert not journal.resumed.rebuilt
    assert set(taken) <= set(by_id(out))
    assert len(server.requests) == sent  # and nothing was sent after


# --- rate limits ---------------------------------------------------------------------------------


class Wire:
    """Client-side event hooks: when each request went out and what each response said."""

    def __init__(self) -> None:
        self.events: list[tuple[float, str, int, str | None]] = []

    async def request(self, request: Any) -> None:
        self.events.append((time.monotonic(), "sent", _record_in(request.content), None))

    async def response(self, response: Any) -> None:
        record = _record_in(response.request.content)
        retry = response.headers.get("retry-after-ms")
        self.events.append((time.monotonic(), str(response.status_code), record, retry))

    def client(self, server: FakeOpenAIServer) -> openai.AsyncOpenAI:
        http = openai.DefaultAsyncHttpxClient(
            verify=False,
            trust_env=False,
            event_hooks={"request": [self.request], "response": [self.response]},
        )
        return server.async_client(http_client=http)


def _record_in(body: bytes) -> int:
    messages = json.loads(body)["messages"]
    content = next(m["content"] for m in messages if m["role"] == "user")
    return int(content.split()[1])


def test_a_429_is_retried_after_its_retry_after_and_the_record_succeeds(
    server: FakeOpenAIServer,
) -> None:
    # The user believes in 1,000 requests per window; the server allows 2 per 0.5 s.
    server.default_reply = echo
    server.rate_limits = RateLimits(requests_per_minute=2, window=0.5)
    wire = Wire()
    run = bulk(
        server, client=wire.client(server), concurrency=3, rpm=1000, tpm=10**9,
        rate_window=0.5,
    )  # fmt: skip
    outcomes, stopped = collect(run, range(1, 4), "sync")

    assert stopped is None
    assert sorted(o.id for o in outcomes) == [1, 2, 3] and all(o.ok for o in outcomes)
    assert server.rate_limited >= 1
    assert len(server.requests) == 3 + server.rate_limited
    for at, status, record, retry_ms in wire.events:
        if status != "429":
            continue
        assert retry_ms is not None
        resent = [t for t, kind, r, _ in wire.events if kind == "sent" and r == record and t > at]
        assert resent and resent[0] >= at + int(retry_ms) / 1000
    assert run.limiter is not None
    stats = run.limiter.stats(time.monotonic())
    assert stats.rpm == 2  # learned from x-ratelimit-limit-requests, below the user's 1,000
    assert stats.rate_limited == server.rate_limited


def test_the_limiter_learns_the_limits_from_the_servers_headers(
    server: FakeOpenAIServer,
) -> None:
    server.default_reply = echo
    server.rate_limits = RateLimits(requests_per_minute=600, tokens_per_minute=200_000, window=1.0)
    run = bulk(server, rate_window=1.0, max_output_tokens=50)
    assert run.limiter is None
    outcomes, stopped = collect(run, range(1, 7), "sync")

    assert stopped is None and all(o.ok for o in outcomes)
    assert run.limiter is not None
    stats = run.limiter.stats(time.monotonic())
    assert (stats.rpm, stats.tpm) == (600, 200_000)
    assert stats.granted == 6 and stats.rate_limited == 0
    assert server.rate_limited == 0


# --- concurrency ---------------------------------------------------------------------------------


@MODES
def test_the_server_never_holds_more_than_concurrency_requests(
    server: FakeOpenAIServer, mode: Mode
) -> None:
    held = Simultaneous()
    server.default_reply = held
    outcomes, stopped = collect(bulk(server, concurrency=3, **KNOWN_LIMITS), range(1, 25), mode)

    assert stopped is None and len(outcomes) == 24
    assert held.most == 3  # the bound, and reached: the measurement sees concurrency


@pytest.mark.parametrize("how", ["server-option", "client-header", "no-profile"])
def test_the_llama_cpp_profile_sends_one_request_at_a_time(
    server: FakeOpenAIServer, how: str
) -> None:
    held = Simultaneous()
    server.default_reply = held
    options: dict[str, Any] = dict(KNOWN_LIMITS)
    if how == "server-option":
        options["server"] = "llama.cpp"
    elif how == "client-header":
        options["client"] = server.async_client(default_headers={PROFILE_HEADER: "llama.cpp"})
    outcomes, stopped = collect(bulk(server, **options), range(1, 9), "sync")

    assert stopped is None and all(o.ok for o in outcomes)
    formats = {r.json["response_format"]["type"] for r in server.requests}
    if how == "no-profile":
        assert formats == {"json_schema"}
        assert held.most > 1  # the runner's default concurrency, for contrast
    else:
        assert formats == {"json_object"}  # llama.cpp's form: the profile was applied
        assert held.most == 1


@pytest.mark.parametrize("profile", ["vllm", "llama.cpp", "compatible"])
def test_a_model_the_registry_does_not_know_runs_on_its_own_server(
    server: FakeOpenAIServer, profile: str
) -> None:
    server.default_reply = echo
    run = bulk(server, model="llama-3.1-8b-instruct", server=profile)
    outcomes, stopped = collect(run, range(1, 4), "sync")

    assert stopped is None, stopped.cause if stopped else None
    assert sorted(o.id for o in outcomes) == [1, 2, 3] and all(o.ok for o in outcomes)


def test_an_ordered_run_that_stops_on_its_first_record_ends(server: FakeOpenAIServer) -> None:
    source = Pulled(40)
    waiting = source.reached[9] = threading.Event()  # concurrency 2: a window of 8 records

    def answers(request: CapturedRequest) -> Reply | Fault:
        if record_of(request) == 1:
            # Answer record 1 once another worker waits for the ordered window to move.
            waiting.wait(10)
            return Fault.status(404)
        return echo(request)

    server.default_reply = answers
    run = bulk(server, concurrency=2, ordered=True, **KNOWN_LIMITS)
    result: dict[str, Any] = {}

    def consume() -> None:
        result["outcomes"], result["stopped"] = collect(run, source, "async")

    # A daemon thread and a hang guard: the deadlock, if any, must not hang the test session.
    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    thread.join(5)

    assert not thread.is_alive(), "the run hung"
    assert isinstance(result["stopped"].cause, openai.NotFoundError)
    assert [o.position for o in result["outcomes"]] == list(range(2, 9))


# --- the caller's client -------------------------------------------------------------------------


async def test_a_client_passed_in_is_still_usable_after_the_run(
    server: FakeOpenAIServer, out: Path
) -> None:
    server.default_reply = echo
    client = server.async_client()
    async for _ in bulk(server, client=client).arun(range(1, 3)):
        pass

    outcomes = [o async for o in bulk(server, client=client, output=out).arun(range(1, 3))]

    assert all(o.ok for o in outcomes), [o.error for o in outcomes]
    assert not client.is_closed()
    await client.close()


# --- secrets -------------------------------------------------------------------------------------

OPENAI_KEY = "sk-proj-" + "Q7mXb2LpV9rT4wZk" * 3
AZURE_KEY = "3f9a1c0be27d4e85a6b3c1d0f4e29a7b"  # Azure keys are 32 hex digits, no prefix


def quoting(key: str) -> Callable[[CapturedRequest], Reply | Fault]:
    """A server that quotes the API key back in an error, as some gateways do."""

    def answers(request: CapturedRequest) -> Reply | Fault:
        if record_of(request) == 2:
            return Fault.status(500, message=f"upstream refused the key {key}")
        return echo(request)

    return answers


@pytest.mark.parametrize(
    "key",
    [
        pytest.param(OPENAI_KEY, id="openai-key"),
        pytest.param(
            AZURE_KEY,
            id="azure-key",
        ),
    ],
)
def test_the_api_key_never_reaches_the_output_or_the_journal(
    tmp_path: Path, out: Path, key: str
) -> None:
    with FakeOpenAIServer(default_reply=quoting(key), require_api_key=key) as srv:
        run = bulk(srv, output=out, client=srv.async_client(api_key=key), max_retries=0)
        outcomes, stopped = collect(run, range(1, 4), "sync")

    assert stopped is None
    assert [o.id for o in outcomes if not o.ok] == [2]
    assert "upstream refused the key" in by_id(out)[2]["error"]["message"]
    files = sorted(tmp_path.iterdir())
    assert out.with_name(out.name + ".ostruct-journal") in files
    for path in files:
        assert key.encode() not in path.read_bytes(), path.name


def test_the_api_key_never_reaches_an_outcomes_error_text(server: FakeOpenAIServer) -> None:
    server.default_reply = quoting(OPENAI_KEY)
    run = bulk(server, client=server.async_client(api_key=OPENAI_KEY), max_retries=0)
    outcomes, _ = collect(run, range(1, 4), "sync")

    errors = [o.error for o in outcomes if o.error is not None]
    assert len(errors) == 1
    assert OPENAI_KEY not in str(errors[0]) and OPENAI_KEY not in repr(errors[0])


# --- memory --------------------------------------------------------------------------------------


def test_a_generator_input_is_read_lazily(server: FakeOpenAIServer) -> None:
    server.default_reply = echo
    server.latency = 0.2
    source = Pulled(5000)
    concurrency = 4
    pulled_at_first = None
    for _ in bulk(server, concurrency=concurrency, **KNOWN_LIMITS).run(source):
        pulled_at_first = source.count
        break

    assert pulled_at_first is not None
    assert pulled_at_first <= 2 * concurrency  # one record per worker, and the next ones
    assert source.count < 100


async def test_async_run_reads_no_further_ahead_of_a_slow_consumer(
    server: FakeOpenAIServer,
) -> None:
    server.default_reply = echo
    source = Pulled(5000)
    concurrency = 4
    run = bulk(server, concurrency=concurrency, **KNOWN_LIMITS)
    ahead: list[int] = []
    outcomes = cast(AsyncGenerator[Outcome, None], run.arun(source))
    async with contextlib.aclosing(outcomes):
        async for _ in outcomes:
            await asyncio.sleep(0.05)  # the caller does something with each outcome
            ahead.append(source.count - len(ahead) - 1)
            if len(ahead) == 8:
                break

    assert max(ahead) <= 2 * concurrency, ahead
