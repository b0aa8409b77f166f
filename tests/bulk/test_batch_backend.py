"""The Batch API backend of BulkRun, through the loopback server's Batch API emulator.

Each record's prompt is ``record N``; the server's default reply answers ``{"n": N}`` (or
whatever the test's function decides), so every output line can be checked against its
record. Every test judges the run by the output file, the journal and what the emulator saw:
batches created, lines processed (each one paid for), the request lines themselves.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from openai_structured.bulk import (
    BatchCancelledError,
    BatchFailedError,
    BatchLineError,
    BatchSubmitError,
    BudgetExhaustedError,
    BulkRun,
    BulkStopped,
    Journal,
    OpenAIBatch,
    Outcome,
)
from openai_structured.errors import OpenAIClientError, RefusalError, ValidationError
from openai_structured.testing import (
    BatchPlan,
    CapturedRequest,
    FakeOpenAIServer,
    Fault,
    LineError,
    Reply,
)
from openai_structured.tokens import estimate_cost

MODEL = "gpt-4o-mini"
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"n": {"type": "integer"}},
    "required": ["n"],
    "additionalProperties": False,
}
FAST = {"poll_interval": 0.0, "max_poll_interval": 0.01}


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as srv:
        srv.default_reply = answer
        yield srv


@pytest.fixture
def out(tmp_path: Path) -> Path:
    return tmp_path / "out.jsonl"


def number_of(request: CapturedRequest) -> int:
    first = next(m["content"] for m in request.json["messages"] if m["role"] == "user")
    match = re.fullmatch(r"record (\d+)", first)
    assert match is not None, first
    return int(match.group(1))


def answer(request: CapturedRequest) -> Reply:
    return Reply.json({"n": number_of(request)})


def records(n: int, start: int = 0) -> list[dict[str, int]]:
    return [{"id": i, "n": i} for i in range(start, start + n)]


def batch_run(
    server: FakeOpenAIServer, out: Path, /, *, max_lines: int = 50_000, **kwargs: Any
) -> BulkRun:
    backend = kwargs.pop("backend", None) or OpenAIBatch(max_lines=max_lines, **FAST)
    options: dict[str, Any] = {
        "model": MODEL,
        "schema": SCHEMA,
        "request": lambda r: {"user_prompt": f"record {r['n']}"},
        "client": server.async_client(),
        "output": out,
        "backend": backend,
    }
    options.update(kwargs)
    return BulkRun(**options)


def run_all(run: BulkRun, items: list[Any]) -> tuple[list[Outcome], BulkStopped | None]:
    outcomes: list[Outcome] = []
    try:
        outcomes.extend(run.run(items))
    except BulkStopped as exc:
        return outcomes, exc
    return outcomes, None


def output(out: Path) -> dict[Any, dict[str, Any]]:
    """The output by id; each id exactly once."""
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    ids = Counter(line["id"] for line in lines)
    assert all(n == 1 for n in ids.values()), ids
    return {line["id"]: line for line in lines}


def all_ok(out: Path, n: int, start: int = 0) -> None:
    assert output(out) == {i: {"id": i, "result": {"n": i}} for i in range(start, start + n)}


def input_lines(server: FakeOpenAIServer, batch_id: str) -> list[dict[str, Any]]:
    file_id = server.batches.get(batch_id)["input_file_id"]
    return [json.loads(line) for line in server.batches.file_content(file_id).splitlines()]


def processed(server: FakeOpenAIServer) -> int:
    return server.batches.stats()["batch_lines_processed"]


# --- the protocol --------------------------------------------------------------------------


def test_records_go_through_files_and_batches_into_the_same_output(
    server: FakeOpenAIServer, out: Path
) -> None:
    server.batches.default_plan = BatchPlan(polls=2)
    outcomes, stopped = run_all(batch_run(server, out, max_lines=4), records(10))
    assert stopped is None
    assert sorted(o.id for o in outcomes) == list(range(10))
    assert all(o.ok and o.attempts == 1 and o.cost and o.cost > 0 for o in outcomes)
    all_ok(out, 10)
    created = server.batches.created
    assert len(created) == 3  # 4 + 4 + 2 lines
    assert [len(input_lines(server, b)) for b in created] == [4, 4, 2]
    assert processed(server) == 10  # each request answered (and paid for) once
    for batch_id in created:
        batch = server.batches.get(batch_id)
        assert batch["endpoint"] == "/v1/chat/completions"
        assert batch["completion_window"] == "24h"
        assert batch["metadata"]["ostruct_journal"]
        assert server.batches.retrieves(batch_id) >= 3  # polled until it ended


def test_request_lines_are_what_a_live_call_sends_keyed_by_the_record_key(
    server: FakeOpenAIServer, out: Path, tmp_path: Path
) -> None:
    outcomes, _ = run_all(batch_run(server, out), records(3))
    lines = {line["custom_id"]: line for line in input_lines(server, server.batches.created[0])}
    assert set(lines) == {o.key for o in outcomes}
    live = BulkRun(
        model=MODEL, schema=SCHEMA, request=lambda r: {"user_prompt": f"record {r['n']}"},
        client=server.async_client(), output=tmp_path / "live.jsonl",
    )  # fmt: skip
    live_outcomes = list(live.run(records(3)))
    assert {o.key for o in live_outcomes} == set(lines)  # the same key: the same request
    sent = {number_of(r): r.json for r in server.requests if r.endpoint == "chat"}
    for outcome in outcomes:
        line = lines[outcome.key]
        assert (line["method"], line["url"]) == ("POST", "/v1/chat/completions")
        assert line["body"] == sent[outcome.id]
        assert line["body"]["response_format"]["json_schema"]["strict"] is True


def test_the_responses_api_goes_to_its_own_endpoint(server: FakeOpenAIServer, out: Path) -> None:
    def responses_answer(request: CapturedRequest) -> Reply:
        text = request.json["input"][0]["content"]
        return Reply.json({"n": int(text.split()[1])})

    server.default_reply = responses_answer
    outcomes, stopped = run_all(batch_run(server, out, api="responses"), records(3))
    assert stopped is None and all(o.ok for o in outcomes)
    all_ok(out, 3)
    (batch_id,) = server.batches.created
    assert server.batches.get(batch_id)["endpoint"] == "/v1/responses"
    assert {line["url"] for line in input_lines(server, batch_id)} == {"/v1/responses"}


def test_the_same_request_in_two_records_is_sent_and_paid_for_once(
    server: FakeOpenAIServer, out: Path
) -> None:
    items = [{"id": "a", "n": 1}, {"id": "b", "n": 1}, {"id": "c", "n": 2}]
    outcomes, _ = run_all(batch_run(server, out), items)
    assert processed(server) == 2
    assert output(out) == {
        "a": {"id": "a", "result": {"n": 1}},
        "b": {"id": "b", "result": {"n": 1}},
        "c": {"id": "c", "result": {"n": 2}},
    }
    costs = sorted((o.cost or 0.0) > 0 for o in outcomes)
    assert costs == [False, True, True]  # the shared answer is counted once


def test_a_finished_run_run_again_sends_nothing(server: FakeOpenAIServer, out: Path) -> None:
    run_all(batch_run(server, out), records(5))
    again, stopped = run_all(batch_run(server, out), records(5))
    assert stopped is None
    assert all(o.resumed for o in again) and len(again) == 5
    assert len(server.batches.created) == 1 and processed(server) == 5
    all_ok(out, 5)


def test_new_records_added_to_the_input_get_a_batch_of_their_own(
    server: FakeOpenAIServer, out: Path
) -> None:
    run_all(batch_run(server, out), records(5))
    run_all(batch_run(server, out), records(8))
    assert [len(input_lines(server, b)) for b in server.batches.created] == [5, 3]
    all_ok(out, 8)


def test_costs_are_at_batch_prices(server: FakeOpenAIServer, out: Path) -> None:
    outcomes, _ = run_all(batch_run(server, out), records(2))
    for outcome in outcomes:
        usage = outcome.usage
        batch = estimate_cost(MODEL, usage.prompt_tokens, usage.completion_tokens, batch=True)
        live = estimate_cost(MODEL, usage.prompt_tokens, usage.completion_tokens)
        assert batch is not None and live is not None
        assert outcome.cost == pytest.approx(batch.total)
        assert outcome.cost == pytest.approx(live.total / 2)


def test_a_batch_needs_an_output_file(server: FakeOpenAIServer) -> None:
    run = batch_run(server, Path("unused"), output=None)
    with pytest.raises(ValueError, match="batch runs need output="):
        list(run.run(records(1)))
    assert server.batches.created == []


def test_the_async_face_gives_the_same_outcomes(server: FakeOpenAIServer, out: Path) -> None:
    run = batch_run(server, out, max_lines=2)

    async def go() -> list[Outcome]:
        got = [o async for o in run.arun(records(5))]
        assert run.client is not None
        await run.client.close()
        return got

    outcomes = asyncio.run(go())
    assert sorted(o.id for o in outcomes) == list(range(5))
    all_ok(out, 5)


# --- what goes wrong -----------------------------------------------------------------------


def test_an_expired_batch_keeps_its_answers_and_sends_the_rest_again(
    server: FakeOpenAIServer, out: Path
) -> None:
    server.batches.plan(BatchPlan(end="expired", lines_done=3))
    outcomes, stopped = run_all(batch_run(server, out), records(8))
    assert stopped is None and all(o.ok for o in outcomes)
    all_ok(out, 8)
    first, second = server.batches.created
    assert server.batches.get(first)["status"] == "expired"
    assert len(input_lines(server, second)) == 5  # only the lines the expired batch lacked
    assert processed(server) == 8  # nothing answered twice


def test_a_cancelled_batch_stops_the_run_and_the_rerun_sends_the_rest(
    server: FakeOpenAIServer, out: Path
) -> None:
    server.batches.plan(BatchPlan(end="cancelled", lines_done=2))
    outcomes, stopped = run_all(batch_run(server, out), records(6))
    assert stopped is not None and isinstance(stopped.cause, BatchCancelledError)
    assert "rerun the same command" in str(stopped)
    assert len(outcomes) == 2 and len(output(out)) == 2  # the answered lines are kept
    assert len(server.batches.created) == 1
    again, stopped = run_all(batch_run(server, out), records(6))
    assert stopped is None
    assert sum(o.resumed for o in again) == 2
    assert len(input_lines(server, server.batches.created[1])) == 4
    all_ok(out, 6)
    assert processed(server) == 6


@pytest.mark.parametrize(
    "failure",
    [LineError(status_code=0, code="server_error"), LineError(code="timeout"),
     Fault(http_status=500, message="boom"), Fault(http_status=429, message="slow down")],
    ids=["status-0", "no-response", "http-500", "http-429"],
)  # fmt: skip
def test_a_line_that_failed_without_an_answer_is_sent_again(
    server: FakeOpenAIServer, out: Path, failure: Any
) -> None:
    server.queue(failure)  # the first line processed fails
    outcomes, stopped = run_all(batch_run(server, out), records(4))
    assert stopped is None and all(o.ok for o in outcomes)
    all_ok(out, 4)
    first, second = server.batches.created
    assert len(input_lines(server, second)) == 1
    assert server.batches.get(first)["request_counts"]["failed"] == 1


def test_a_line_that_keeps_failing_fails_its_record_after_max_resubmits(
    server: FakeOpenAIServer, out: Path
) -> None:
    def answers(request: CapturedRequest) -> Reply | LineError:
        if number_of(request) == 2:
            return LineError(status_code=0, code="server_error", message="no answer")
        return answer(request)

    server.default_reply = answers
    backend = OpenAIBatch(max_resubmits=2, **FAST)
    outcomes, stopped = run_all(batch_run(server, out, backend=backend), records(4))
    assert stopped is None
    failed = [o for o in outcomes if not o.ok]
    assert [o.id for o in failed] == [2]
    assert isinstance(failed[0].error, BatchLineError)
    assert failed[0].error.status_code == 0
    assert len(server.batches.created) == 3  # the first sending and two more
    lines = output(out)
    assert lines[2]["error"]["type"] == "BatchLineError"
    assert "got no HTTP status" in lines[2]["error"]["message"]


def test_a_line_the_api_refused_is_the_records_error_line(
    server: FakeOpenAIServer, out: Path
) -> None:
    def answers(request: CapturedRequest) -> Reply | Fault:
        if number_of(request) == 1:
            return Fault(http_status=400, message="Invalid value for 'seed'.")
        return answer(request)

    server.default_reply = answers
    outcomes, stopped = run_all(batch_run(server, out), records(3))
    assert stopped is None
    assert len(server.batches.created) == 1  # not sent again: it would fail the same way
    (bad,) = [o for o in outcomes if not o.ok]
    assert isinstance(bad.error, BatchLineError) and bad.error.status_code == 400
    assert output(out)[1]["error"]["message"].startswith("the batch request got HTTP 400")


def test_answers_decode_with_the_same_outcome_table_as_a_live_call(
    server: FakeOpenAIServer, out: Path
) -> None:
    def answers(request: CapturedRequest) -> Reply:
        n = number_of(request)
        if n == 0:
            return Reply.refusal("I can't help with that.")
        if n == 1:
            return Reply.json({"n": "not a number"})
        return answer(request)

    server.default_reply = answers
    outcomes, _ = run_all(batch_run(server, out), records(3))
    errors = {o.id: o.error for o in outcomes}
    assert isinstance(errors[0], RefusalError)
    assert isinstance(errors[1], ValidationError)
    assert errors[2] is None
    assert output(out)[1]["error"]["type"] == "ValidationError"


def test_invalid_answers_are_re_asked_in_a_follow_up_batch(
    server: FakeOpenAIServer, out: Path
) -> None:
    def answers(request: CapturedRequest) -> Reply:
        if len(request.json["messages"]) == 1 and number_of(request) % 2:
            return Reply.json({"n": "wrong"})  # odd records: wrong the first time
        return answer(request)

    server.default_reply = answers
    outcomes, stopped = run_all(batch_run(server, out, max_validation_retries=1), records(6))
    assert stopped is None and all(o.ok for o in outcomes)
    all_ok(out, 6)
    assert {o.id: o.attempts for o in outcomes} == {0: 1, 1: 2, 2: 1, 3: 2, 4: 1, 5: 2}
    _first, follow_up = server.batches.created
    lines = input_lines(server, follow_up)
    assert len(lines) == 3
    keys = {o.id: o.key for o in outcomes}
    assert {line["custom_id"] for line in lines} == {f"{keys[i]}~2" for i in (1, 3, 5)}
    for line in lines:
        messages = line["body"]["messages"]
        assert messages[1]["role"] == "assistant" and '"wrong"' in messages[1]["content"]
        assert "n" in messages[2]["content"]  # the feedback names the field
    assert processed(server) == 9


def test_a_completed_batch_without_an_output_file_sends_its_lines_again(
    server: FakeOpenAIServer, out: Path
) -> None:
    server.batches.plan(BatchPlan(output_file=False))
    outcomes, stopped = run_all(batch_run(server, out), records(3))
    assert stopped is None and all(o.ok for o in outcomes)
    all_ok(out, 3)
    assert len(server.batches.created) == 2
    (first, *_) = Journal.read_batch_parts(out)
    assert first.detail is not None and "no output file" in first.detail


@pytest.mark.parametrize("status", [400, 401, 429])
def test_a_refused_batch_creation_stops_with_nothing_recorded_as_done(
    server: FakeOpenAIServer, out: Path, status: int
) -> None:
    server.batches.plan(BatchPlan(create_error=status))
    outcomes, stopped = run_all(batch_run(server, out), records(3))
    assert stopped is not None and isinstance(stopped.cause, BatchSubmitError)
    assert "nothing was recorded as done" in str(stopped)
    assert outcomes == [] and out.read_text() == ""
    assert server.batches.created == []
    _again, stopped = run_all(batch_run(server, out), records(3))
    assert stopped is None and len(server.batches.created) == 1
    all_ok(out, 3)


def test_a_server_error_on_create_is_tried_again_after_looking_for_the_batch(
    server: FakeOpenAIServer, out: Path
) -> None:
    server.batches.plan(BatchPlan(create_error=500))
    _outcomes, stopped = run_all(batch_run(server, out), records(3))
    assert stopped is None and len(server.batches.created) == 1
    all_ok(out, 3)
    lists = [r for r in server.requests if r.method == "GET" and r.path == "/v1/batches"]
    assert lists  # it looked before creating again


def test_a_create_whose_answer_was_lost_is_found_not_created_twice(
    server: FakeOpenAIServer, out: Path
) -> None:
    server.batches.plan(BatchPlan(create_disconnect=True))
    _outcomes, stopped = run_all(batch_run(server, out), records(4))
    assert stopped is None
    assert len(server.batches.created) == 1
    creates = [r for r in server.requests if r.method == "POST" and r.path == "/v1/batches"]
    assert len(creates) == 1
    all_ok(out, 4)
    assert processed(server) == 4


def test_a_batch_the_api_failed_stops_with_its_errors_and_nothing_done(
    server: FakeOpenAIServer, out: Path
) -> None:
    problem = {"code": "invalid_request", "message": "model not available", "line": 2}
    server.batches.plan(BatchPlan(validation_errors=[problem]))
    outcomes, stopped = run_all(batch_run(server, out), records(3))
    assert stopped is not None and isinstance(stopped.cause, BatchFailedError)
    assert "line 2: model not available" in str(stopped)
    assert stopped.cause.errors[0]["line"] == 2
    assert outcomes == [] and out.read_text() == ""
    _again, stopped = run_all(batch_run(server, out), records(3))
    assert stopped is None
    all_ok(out, 3)


def test_max_cost_is_kept_at_batch_prices(server: FakeOpenAIServer, out: Path) -> None:
    probe = batch_run(server, out.with_name("probe.jsonl"))
    from openai_structured.bulk._batch import _batch_estimate
    from openai_structured.bulk._runner import _estimate
    from openai_structured.client import _prepare
    from openai_structured.servers import profile_for

    call = _prepare(
        profile_for(probe.client), MODEL, None, SCHEMA, {"user_prompt": "record 1"},
        stream=False,
    )  # fmt: skip
    each = _batch_estimate(MODEL, call)
    assert each is not None and each == pytest.approx((_estimate(MODEL, call) or 0) / 2)
    run = batch_run(server, out, max_cost=each * 3.5)
    outcomes, stopped = run_all(run, records(6))
    assert stopped is not None and isinstance(stopped.cause, BudgetExhaustedError)
    assert len(outcomes) == 3 and len(output(out)) == 3
    assert len(input_lines(server, server.batches.created[0])) == 3


def test_the_api_key_is_never_written(tmp_path: Path, out: Path) -> None:
    key = "sk-canary-BATCH-0123456789"
    with FakeOpenAIServer(require_api_key=key) as srv:
        srv.default_reply = lambda r: Fault(http_status=400, message=f"bad key {key}")
        run = batch_run(srv, out, client=srv.async_client(api_key=key))
        outcomes, _ = run_all(run, records(2))
    assert all(not o.ok and key not in str(o.error) for o in outcomes)
    for path in tmp_path.iterdir():
        assert key.encode() not in path.read_bytes(), path


def test_parts_and_counts_are_readable_while_a_run_holds_the_journal(
    server: FakeOpenAIServer, out: Path
) -> None:
    seen: list[Any] = []

    def answers(request: CapturedRequest) -> Reply:
        seen.append(Journal.read_batch_parts(out))  # from the server thread, mid-run
        return answer(request)

    server.default_reply = answers
    run_all(batch_run(server, out, max_lines=2), records(4))
    parts = Journal.read_batch_parts(out)
    assert [p.state for p in parts] == ["ended", "ended"]
    assert all(p.batch_id and p.file_id and p.status == "completed" for p in parts)
    assert [p.counts for p in parts] == [{"total": 2, "completed": 2, "failed": 0}] * 2
    assert seen and all(s[0].state == "submitted" for s in seen[:2])


@pytest.mark.parametrize("name", ["llama.cpp", "vllm", "ollama"])
def test_a_server_without_a_batch_api_is_refused_before_anything_is_sent(
    server: FakeOpenAIServer, out: Path, name: str
) -> None:
    run = batch_run(server, out, **{"server": name})
    with pytest.raises(OpenAIClientError, match=f"the {re.escape(name)} server has no Batch API"):
        list(run.run(records(2)))
    assert server.requests == [] and not out.exists()
