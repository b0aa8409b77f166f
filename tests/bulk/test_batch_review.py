"""A review of the Batch API backend (``BulkRun(backend=OpenAIBatch())``, ``BatchFiles`` and
``ostruct batch --backend openai-batch / --status / --cancel / --write-requests /
--import-results``), against the loopback server's Files and Batch API emulator.

Tests that pass verify a behaviour; a test marked ``xfail(strict=True)`` shows a bug (its
reason says what is wrong): once fixed, it passes and the marker must go.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sqlite3
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from pydantic import BaseModel
from test_batch_backend import (
    FAST,
    MODEL,
    SCHEMA,
    all_ok,
    answer,
    input_lines,
    number_of,
    output,
    processed,
    records,
    run_all,
)

from openai_structured.bulk import (
    BatchCancelledError,
    BatchFailedError,
    BatchFiles,
    BatchLineError,
    BudgetExhaustedError,
    BulkRun,
    Journal,
    OpenAIBatch,
    Outcome,
    _batch,
)
from openai_structured.bulk._batch import _batch_estimate
from openai_structured.bulk._inputs import DuplicateIdError
from openai_structured.cli import cli
from openai_structured.client import _prepare
from openai_structured.servers import profile_for
from openai_structured.testing import (
    BatchPlan,
    CapturedRequest,
    Choices,
    FakeOpenAIServer,
    Fault,
    LineError,
    Reply,
    Usage,
)
from openai_structured.testing._batches import HttpAnswer

#: Never in a file or stream a run writes. Hex, as Azure OpenAI keys are: no "sk-" prefix for
#: the pattern-based redaction to catch, only the client's own key can.
HEX_KEY = "3f9a1c7e5b2d4f60a8e9c1b3d5f7a9c2"


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as srv:
        srv.default_reply = answer
        yield srv


@pytest.fixture
def out(tmp_path: Path) -> Path:
    return tmp_path / "out.jsonl"


def prompt(r: dict[str, Any]) -> dict[str, Any]:
    return {"user_prompt": f"record {r['n']}"}


def make_run(server: FakeOpenAIServer, out: Path, **kwargs: Any) -> BulkRun:
    """A batch run of ``records()``; ``client=`` defaults to the server's, ``backend=`` to a
    fast-polling OpenAIBatch (``max_lines=`` and friends go to it)."""
    backend_options = {
        k: kwargs.pop(k) for k in ("max_lines", "max_bytes", "max_resubmits") if k in kwargs
    }
    options: dict[str, Any] = {
        "model": MODEL,
        "schema": SCHEMA,
        "request": prompt,
        "client": kwargs.pop("client", None) or server.async_client(),
        "output": out,
        "backend": kwargs.pop("backend", None) or OpenAIBatch(**FAST, **backend_options),
    }
    options.update(kwargs)
    return BulkRun(**options)


class Crash(BaseException):
    """Stands in for a kill: raised at a protocol seam, it ends the run there."""


def crash_at(monkeypatch: pytest.MonkeyPatch, step: str, occurrence: int = 1) -> None:
    seen = 0

    def seam(name: str) -> None:
        nonlocal seen
        if name == step:
            seen += 1
            if seen == occurrence:
                raise Crash(step)

    monkeypatch.setattr(_batch, "_step", seam)


def crashed_run(run: BulkRun, items: list[Any]) -> list[Outcome]:
    got: list[Outcome] = []
    with pytest.raises(Crash):
        for outcome in run.run(items):
            got.append(outcome)
    return got


def odd_wrong_first(request: CapturedRequest) -> Reply:
    """Odd records answer wrong on their first attempt (a re-ask fixes them)."""
    if len(request.json["messages"]) == 1 and number_of(request) % 2:
        return Reply.json({"n": "wrong"})
    return answer(request)


def estimate_of_one(server: FakeOpenAIServer) -> float:
    call = _prepare(
        profile_for(server.async_client()), MODEL, None, SCHEMA, {"user_prompt": "record 1"},
        stream=False,
    )  # fmt: skip
    each = _batch_estimate(MODEL, call)
    assert each is not None
    return each


def closed_port_url() -> str:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}/v1"


@pytest.fixture
def ostruct(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """``ostruct ARGS`` in-process, in ``tmp_path``, with a canary key in the environment."""
    for name in ("OPENAI_BASE_URL", "AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_API_KEY",
                 "AZURE_OPENAI_AD_TOKEN", "OPENAI_STRUCTURED_SERVER"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", HEX_KEY)
    monkeypatch.setenv("OPENAI_STRUCTURED_LOCAL", "0")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "t.j2").write_text("record {{ n }}", encoding="utf-8")
    (tmp_path / "s.json").write_text(json.dumps(SCHEMA), encoding="utf-8")
    runner = CliRunner()

    def invoke(*args: str) -> Any:
        result = runner.invoke(cli, list(args), catch_exceptions=False)
        assert HEX_KEY not in result.stdout + result.stderr
        return result

    return invoke


def write_input(path: Path, n: int) -> None:
    path.write_text("".join(json.dumps({"id": i, "n": i}) + "\n" for i in range(n)))


# --- exactly once, never paid twice ------------------------------------------------------------


def test_same_request_under_two_ids_is_one_paid_line_also_when_a_later_run_adds_a_third(
    server: FakeOpenAIServer, out: Path
) -> None:
    items = [{"id": "a", "n": 1}, {"id": "b", "n": 1}, {"id": "c", "n": 2}]
    _, stopped = run_all(make_run(server, out), items)
    assert stopped is None and processed(server) == 2
    again, stopped = run_all(make_run(server, out), [*items, {"id": "d", "n": 1}])
    assert stopped is None
    assert len(server.batches.created) == 1 and processed(server) == 2  # d reuses a's answer
    (new,) = [o for o in again if not o.resumed]
    assert new.id == "d" and new.ok and new.value == {"n": 1}
    assert output(out) == {
        "a": {"id": "a", "result": {"n": 1}},
        "b": {"id": "b", "result": {"n": 1}},
        "c": {"id": "c", "result": {"n": 2}},
        "d": {"id": "d", "result": {"n": 1}},
    }


def test_an_answer_reused_from_an_earlier_run_costs_this_run_nothing(
    server: FakeOpenAIServer, out: Path
) -> None:
    items = [{"id": "a", "n": 1}]
    (first,), _ = run_all(make_run(server, out), items)
    run = make_run(server, out)
    again, _ = run_all(run, [*items, {"id": "d", "n": 1}])
    assert processed(server) == 1  # nothing was sent for d
    (new,) = [o for o in again if not o.resumed]
    assert run.summary is not None
    assert not new.cost and not run.summary.run.cost  # nothing was paid in this run
    assert run.summary.output.cost == pytest.approx(first.cost)  # one answer, paid once


def test_duplicate_ids_are_reported_and_never_written_or_sent(
    server: FakeOpenAIServer, out: Path
) -> None:
    items = [{"id": 1, "n": 1}, {"id": 1, "n": 5}, {"id": 2, "n": 2}]
    run = make_run(server, out)
    outcomes, stopped = run_all(run, items)
    assert stopped is None and run.duplicates == 1
    (dup,) = [o for o in outcomes if not o.ok]
    assert dup.position == 2 and isinstance(dup.error, DuplicateIdError)
    assert output(out) == {1: {"id": 1, "result": {"n": 1}}, 2: {"id": 2, "result": {"n": 2}}}
    assert processed(server) == 2
    assert all(number_of_line(line) != 5 for line in input_lines(server, server.batches.created[0]))


def number_of_line(line: dict[str, Any]) -> int:
    text = line["body"]["messages"][-1]["content"]
    return int(text.split()[1])


def test_a_changed_prompt_supersedes_the_answer_of_its_old_request_still_in_a_batch(
    server: FakeOpenAIServer, out: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Run 1: one batch per record, then "killed" with all three running.
    server.batches.plan(BatchPlan(polls=1), BatchPlan(polls=4), BatchPlan(polls=1))
    crash_at(monkeypatch, "submitted", 3)
    crashed_run(make_run(server, out, max_lines=1), records(3))
    monkeypatch.setattr(_batch, "_step", lambda name: None)
    # Run 2: record 1 now asks something else while its old request is still running.
    changed = [{"id": 0, "n": 0}, {"id": 1, "n": 7}, {"id": 2, "n": 2}]
    outcomes, stopped = run_all(make_run(server, out, max_lines=1), changed)
    assert stopped is None and all(o.ok for o in outcomes)
    assert output(out) == {0: {"id": 0, "result": {"n": 0}}, 1: {"id": 1, "result": {"n": 7}},
                           2: {"id": 2, "result": {"n": 2}}}  # fmt: skip
    assert processed(server) == 3  # the old request's batch was not waited for
    # Run 3: back to the old prompt: its batch (sent, and paid for, in run 1) is collected.
    again, stopped = run_all(make_run(server, out, max_lines=1), records(3))
    assert stopped is None and processed(server) == 4 and len(server.batches.created) == 4
    (back,) = [o for o in again if not o.resumed]
    assert back.id == 1 and back.value == {"n": 1}
    all_ok(out, 3)


def test_a_batch_no_record_needs_any_more_does_not_hold_the_run(
    server: FakeOpenAIServer, out: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.batches.plan(BatchPlan(polls=0), BatchPlan(polls=10**9))
    crash_at(monkeypatch, "submitted", 2)
    crashed_run(make_run(server, out, max_lines=1), records(2))
    monkeypatch.setattr(_batch, "_step", lambda name: None)
    stale = server.batches.created[1]
    # A watchdog so that the test ends either way: it cancels the stale batch after 3 s.
    fired: list[bool] = []

    def cancel_stale() -> None:
        fired.append(True)
        server.client().batches.cancel(stale)

    watchdog = threading.Timer(3.0, cancel_stale)
    watchdog.start()
    try:
        _outcomes, stopped = run_all(
            make_run(server, out, max_lines=1), [{"id": 0, "n": 0}, {"id": 1, "n": 9}]
        )
    finally:
        watchdog.cancel()
    assert output(out) == {0: {"id": 0, "result": {"n": 0}}, 1: {"id": 1, "result": {"n": 9}}}
    assert not fired, "the run waited for a batch whose answers no record of it needs"
    assert server.batches.get(stale)["status"] in ("validating", "in_progress")
    assert stopped is None


@pytest.mark.parametrize("kind", ["http-400", "validation"])
def test_retry_failed_sends_the_failed_records_again(
    server: FakeOpenAIServer, out: Path, kind: str
) -> None:
    def first_time(request: CapturedRequest) -> Reply | Fault:
        if number_of(request) == 1:
            if kind == "http-400":
                return Fault(http_status=400, message="temporarily invalid")
            return Reply.json({"n": "wrong"})
        return answer(request)

    server.default_reply = first_time
    outcomes, _ = run_all(make_run(server, out), records(3))
    assert [o.id for o in outcomes if not o.ok] == [1]
    server.default_reply = answer  # the cause is gone
    _again, stopped = run_all(make_run(server, out, retry_failed=True), records(3))
    assert stopped is None
    assert len(server.batches.created) == 2, "the failed record was not sent again"
    all_ok(out, 3)


def test_a_crash_in_the_middle_of_writing_a_batchs_records_resumes_exactly_once(
    server: FakeOpenAIServer, out: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.default_reply = odd_wrong_first
    items = [*records(5), {"id": 5, "n": 0}]  # 5 asks what 0 asks
    crash_at(monkeypatch, "record", 2)
    written = crashed_run(make_run(server, out, max_validation_retries=1), items)
    assert len(written) == 1 and len(output(out)) == 2  # the second line is in; then killed
    monkeypatch.setattr(_batch, "_step", lambda name: None)
    outcomes, stopped = run_all(make_run(server, out, max_validation_retries=1), items)
    assert stopped is None and all(o.ok for o in outcomes)
    assert output(out) == {i: {"id": i, "result": {"n": i % 5}} for i in range(6)}
    assert processed(server) == 5 + 2  # five first attempts, two re-asks: none twice


def test_a_re_ask_answered_before_a_crash_is_used_whatever_the_reruns_retries(
    server: FakeOpenAIServer, out: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.default_reply = odd_wrong_first
    crash_at(monkeypatch, "ended", 2)  # the re-asks' batch is stored, nothing of it written
    crashed_run(make_run(server, out, max_validation_retries=1), records(4))
    monkeypatch.setattr(_batch, "_step", lambda name: None)
    # --max-validation-retries is not part of what is asked (docs: resume rules): left out.
    outcomes, stopped = run_all(make_run(server, out), records(4))
    assert stopped is None and processed(server) == 6
    assert {o.id: (o.ok, o.attempts) for o in outcomes if not o.resumed} == {
        1: (True, 2), 3: (True, 2),
    }  # fmt: skip
    all_ok(out, 4)


def test_a_live_rerun_while_batches_run_does_not_pay_for_their_records_again(
    server: FakeOpenAIServer, out: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.batches.plan(BatchPlan(polls=10**6))
    crash_at(monkeypatch, "submitted")
    crashed_run(make_run(server, out), records(3))
    live = BulkRun(model=MODEL, schema=SCHEMA, request=prompt, client=server.async_client(),
                   output=out)  # fmt: skip
    try:
        list(live.run(records(3)))
    except Exception as exc:  # refused, naming the batches: fine
        assert "batch" in str(exc)
    chat = [r for r in server.requests if r.path.endswith("/chat/completions")]
    assert chat == [], "the records of a running batch were requested (and paid for) again"


# --- batches that end badly -------------------------------------------------------------------


def test_a_failed_batch_among_completed_ones_stops_and_the_rerun_sends_only_its_lines(
    server: FakeOpenAIServer, out: Path
) -> None:
    problem = {"code": "invalid_request", "message": "no", "line": 1}
    server.batches.plan(
        BatchPlan(), BatchPlan(polls=1, validation_errors=[problem]), BatchPlan(polls=3)
    )
    outcomes, stopped = run_all(make_run(server, out, max_lines=2), records(6))
    assert stopped is not None and isinstance(stopped.cause, BatchFailedError)
    assert sorted(o.id for o in outcomes) == [0, 1, 4, 5]  # the completed batches' records
    assert sorted(output(out)) == [0, 1, 4, 5]
    _again, stopped = run_all(make_run(server, out, max_lines=2), records(6))
    assert stopped is None
    assert len(server.batches.created) == 4
    assert len(input_lines(server, server.batches.created[3])) == 2
    all_ok(out, 6)
    assert processed(server) == 6


def test_a_failed_batch_says_what_to_do(server: FakeOpenAIServer, out: Path) -> None:
    server.batches.plan(BatchPlan(end="failed"))
    _, stopped = run_all(make_run(server, out), records(1))
    assert stopped is not None and isinstance(stopped.cause, BatchFailedError)
    assert "rerun the same command" in str(stopped), str(stopped)


def test_a_batch_failing_again_and_again_never_turns_its_records_into_error_lines(
    server: FakeOpenAIServer, out: Path
) -> None:
    for _ in range(3):  # e.g. the enqueued-token limit, three days running
        server.batches.plan(BatchPlan(end="failed"))
        _, stopped = run_all(make_run(server, out), records(2))
        assert stopped is not None and isinstance(stopped.cause, BatchFailedError)
        assert out.read_text() == ""  # "nothing of it was recorded as done"
    outcomes, stopped = run_all(make_run(server, out), records(2))
    assert stopped is None and all(o.ok for o in outcomes)
    all_ok(out, 2)


def test_a_cancelled_batch_with_another_still_running_then_the_rerun(
    server: FakeOpenAIServer, out: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.batches.plan(BatchPlan(polls=1, end="cancelled", lines_done=1), BatchPlan(polls=6))
    crash_at(monkeypatch, "submitted", 2)
    crashed_run(make_run(server, out, max_lines=2), records(4))
    monkeypatch.setattr(_batch, "_step", lambda name: None)
    outcomes, stopped = run_all(make_run(server, out, max_lines=2), records(4))
    assert stopped is not None and isinstance(stopped.cause, BatchCancelledError)
    assert sorted(o.id for o in outcomes) in ([0, 2, 3], [1, 2, 3])  # the running one's too
    _again, stopped = run_all(make_run(server, out, max_lines=2), records(4))
    assert stopped is None and len(server.batches.created) == 3
    assert len(input_lines(server, server.batches.created[2])) == 1
    all_ok(out, 4)
    assert processed(server) == 4


def test_cancelling_three_times_still_lets_the_same_command_send_the_rest(
    server: FakeOpenAIServer, out: Path
) -> None:
    for _ in range(3):
        server.batches.plan(BatchPlan(end="cancelled", lines_done=0))
        _, stopped = run_all(make_run(server, out), records(2))
        assert stopped is not None and isinstance(stopped.cause, BatchCancelledError)
    outcomes, stopped = run_all(make_run(server, out), records(2))
    assert stopped is None and all(o.ok for o in outcomes)
    all_ok(out, 2)


def test_a_passing_server_error_while_polling_does_not_end_a_24h_wait(
    server: FakeOpenAIServer, out: Path
) -> None:
    server.batches.default_plan = BatchPlan(polls=3)
    handle = server.batches.handle
    failures = {"left": 2}

    def flaky(method: str, route: str, *args: Any, **kwargs: Any) -> Any:
        if method == "GET" and route.startswith("/batches/") and failures["left"]:
            failures["left"] -= 1
            return HttpAnswer.json(
                502, {"error": {"message": "bad gateway", "type": "server_error"}}
            )
        return handle(method, route, *args, **kwargs)

    server.batches.handle = flaky  # type: ignore[method-assign]
    run = make_run(server, out, client=server.async_client(max_retries=1))
    outcomes, stopped = run_all(run, records(2))
    assert stopped is None and all(o.ok for o in outcomes)
    all_ok(out, 2)


def test_the_cancel_message_counts_only_the_answered_lines(
    server: FakeOpenAIServer, out: Path
) -> None:
    server.batches.plan(BatchPlan(end="cancelled", lines_done=2))
    outcomes, stopped = run_all(make_run(server, out), records(6))
    assert stopped is not None and len(outcomes) == 2
    assert "its 2 answered lines are kept" in str(stopped), str(stopped)


def test_a_completed_batch_without_its_output_file_is_told_not_silently_resent(
    server: FakeOpenAIServer, out: Path
) -> None:
    server.batches.plan(BatchPlan(output_file=False))
    run = make_run(server, out)
    outcomes, stopped = run_all(run, records(3))
    assert stopped is None and all(o.ok for o in outcomes)
    assert processed(server) == 6  # each answer paid twice: the user must be told
    assert any("no output file" in note for note in run.notes), run.notes


def test_a_run_error_in_a_later_record_stops_after_collecting_the_batches_sent(
    server: FakeOpenAIServer, out: Path
) -> None:
    def request(r: dict[str, Any]) -> dict[str, Any]:
        both = {"max_output_tokens": 50, "max_tokens": 50}  # two spellings: a run error
        return {**prompt(r), **(both if r["n"] == 3 else {})}

    run = make_run(server, out, request=request, max_lines=2)
    try:
        outcomes, stopped = run_all(run, records(4))
    finally:
        sent = sorted(number_of_line(line) for b in server.batches.created
                      for line in input_lines(server, b))  # fmt: skip
    assert stopped is not None and type(stopped.cause).__name__ == "TokenParameterError"
    assert sent in ([], [0, 1])  # records 0 and 1 may have gone before record 3 was read
    assert sorted(o.id for o in outcomes) == sent  # as live: what was sent is collected
    assert sorted(output(out)) == sent


# --- inputs that changed, budgets --------------------------------------------------------------


def test_parts_built_by_an_earlier_run_are_sent_when_the_input_is_the_same(
    out: Path,
) -> None:
    with FakeOpenAIServer(require_api_key=HEX_KEY) as srv:
        srv.default_reply = answer
        _, stopped = run_all(make_run(srv, out, client=srv.async_client(api_key="wrong")),
                             records(3))  # fmt: skip
        assert stopped is not None  # the upload was refused: the part stays "built"
        assert [p.state for p in Journal.read_batch_parts(out)] == ["built"]
        _, stopped = run_all(make_run(srv, out, client=srv.async_client(api_key=HEX_KEY)),
                             records(3))  # fmt: skip
        assert stopped is None
        assert len(srv.batches.created) == 1 and processed(srv) == 3
        all_ok(out, 3)


def test_a_built_part_whose_records_changed_is_not_sent_and_paid_for(out: Path) -> None:
    with FakeOpenAIServer(require_api_key=HEX_KEY) as srv:
        srv.default_reply = answer
        run_all(make_run(srv, out, client=srv.async_client(api_key="wrong")), records(3))
        # The key is fixed, and the template was edited meanwhile: every prompt is new.
        run = make_run(srv, out, client=srv.async_client(api_key=HEX_KEY),
                       request=lambda r: {"user_prompt": f"record {r['n'] + 10}"})  # fmt: skip
        outcomes, stopped = run_all(run, records(3))
        assert stopped is None and all(o.ok for o in outcomes)
        assert output(out) == {i: {"id": i, "result": {"n": i + 10}} for i in range(3)}
        assert processed(srv) == 3, "the old prompts' requests were sent and paid for"


def test_max_requests_zero_sends_nothing_even_for_a_part_built_earlier(out: Path) -> None:
    with FakeOpenAIServer(require_api_key=HEX_KEY) as srv:
        srv.default_reply = answer
        run_all(make_run(srv, out, client=srv.async_client(api_key="wrong")), records(3))
        run = make_run(srv, out, client=srv.async_client(api_key=HEX_KEY), max_requests=0)
        _, stopped = run_all(run, records(3))
        assert srv.batches.created == [], "max_requests=0 and a batch of 3 requests was created"
        assert stopped is not None and isinstance(stopped.cause, BudgetExhaustedError)


def test_max_cost_counts_re_asks_and_the_rerun_sends_only_them(
    server: FakeOpenAIServer, out: Path
) -> None:
    each = estimate_of_one(server)

    def costly(request: CapturedRequest) -> Reply:
        reply = odd_wrong_first(request)  # answers that use their whole output budget
        return Reply(content=reply.content, usage=Usage(12, 16_384))

    server.default_reply = costly
    run = make_run(server, out, max_validation_retries=1, max_cost=each * 4.5)
    outcomes, stopped = run_all(run, records(4))
    assert stopped is not None and isinstance(stopped.cause, BudgetExhaustedError)
    assert sorted(o.id for o in outcomes) == [0, 2] and sorted(output(out)) == [0, 2]
    assert len(server.batches.created) == 1  # the re-asks were not sent
    assert run.summary is not None and (run.summary.run.cost or 0) <= each * 4.5
    again, stopped = run_all(make_run(server, out, max_validation_retries=1), records(4))
    assert stopped is None
    assert [len(input_lines(server, b)) for b in server.batches.created] == [4, 2]
    assert {o.id: o.attempts for o in again if not o.resumed} == {1: 2, 3: 2}
    all_ok(out, 4)


def test_max_requests_counts_a_resubmitted_line(server: FakeOpenAIServer, out: Path) -> None:
    server.queue(LineError(status_code=0, code="server_error"))  # the first line: no answer
    outcomes, stopped = run_all(make_run(server, out, max_requests=3), records(3))
    assert stopped is not None and isinstance(stopped.cause, BudgetExhaustedError)
    assert len(outcomes) == 2 and len(server.batches.created) == 1
    _, stopped = run_all(make_run(server, out), records(3))
    assert stopped is None and [len(input_lines(server, b)) for b in server.batches.created] == [
        3, 1,
    ]  # fmt: skip
    all_ok(out, 3)


def test_a_record_too_big_for_a_batch_file_fails_alone(server: FakeOpenAIServer, out: Path) -> None:
    def request(r: dict[str, Any]) -> dict[str, Any]:
        return {"user_prompt": f"record {r['n']}" + (" pad" * 2000 if r["n"] == 1 else "")}

    run = make_run(server, out, request=request, max_bytes=4000)
    outcomes, stopped = run_all(run, records(3))
    assert stopped is None
    errors = {o.id: o.error for o in outcomes}
    assert errors[0] is None and errors[2] is None
    assert "more than a batch file may hold" in str(errors[1])
    assert output(out)[1]["error"]["message"].startswith("this record's request is")


# --- APIs, choices, tools ---------------------------------------------------------------------


def test_the_responses_api_with_re_asks(server: FakeOpenAIServer, out: Path) -> None:
    def responses_answer(request: CapturedRequest) -> Reply:
        items = request.json["input"]
        n = int(items[0]["content"].split()[1])
        if len(items) == 1 and n % 2:
            return Reply.json({"n": "wrong"})
        return Reply.json({"n": n})

    server.default_reply = responses_answer
    run = make_run(server, out, api="responses", max_validation_retries=1)
    outcomes, stopped = run_all(run, records(4))
    assert stopped is None and all(o.ok for o in outcomes)
    assert {o.id: o.attempts for o in outcomes} == {0: 1, 1: 2, 2: 1, 3: 2}
    all_ok(out, 4)
    follow_up = input_lines(server, server.batches.created[1])
    assert {line["url"] for line in follow_up} == {"/v1/responses"}
    assert all(line["body"]["input"][1]["role"] == "assistant" for line in follow_up)


def test_n_choices_in_a_batch_give_a_list_per_record(server: FakeOpenAIServer, out: Path) -> None:
    def two(request: CapturedRequest) -> Choices:
        n = number_of(request)
        return Choices((Reply.json({"n": n}), Reply.json({"n": n + 100})))

    server.default_reply = two
    outcomes, stopped = run_all(make_run(server, out, n=2), records(2))
    assert stopped is None
    assert {o.id: o.value for o in outcomes} == {
        0: [{"n": 0}, {"n": 100}],
        1: [{"n": 1}, {"n": 101}],
    }
    assert all(line["body"]["n"] == 2 for line in input_lines(server, server.batches.created[0]))


def test_n_choices_with_re_asks_is_refused_before_anything_is_sent(
    server: FakeOpenAIServer, out: Path
) -> None:
    run = make_run(server, out, n=2, max_validation_retries=1)
    try:
        outcomes, _ = run_all(run, records(2))
    finally:
        sent = list(server.batches.created)
    assert sent == [], "the batch was created (and paid for) with requests it cannot decode"
    assert all(not o.ok and "max_validation_retries works with n=1" in str(o.error)
               for o in outcomes)  # fmt: skip


class Lookup(BaseModel):
    """Look a record up."""

    query: str


def test_tools_in_a_batch_give_the_same_line_as_a_live_run(
    server: FakeOpenAIServer, out: Path, tmp_path: Path
) -> None:
    def call(request: CapturedRequest) -> Reply:
        n = number_of(request)
        return Reply.tool_call("Lookup", {"query": f"q{n}"}, id=f"call_{n}")

    server.default_reply = call
    options = {"model": MODEL, "request": prompt, "tools": [Lookup]}
    batched = BulkRun(**options, client=server.async_client(), output=out,
                      backend=OpenAIBatch(**FAST))  # fmt: skip
    outcomes = list(batched.run(records(2)))
    live = BulkRun(**options, client=server.async_client(), output=tmp_path / "live.jsonl")
    list(live.run(records(2)))
    assert all(o.ok for o in outcomes)
    assert sorted(out.read_text().splitlines()) == sorted(
        (tmp_path / "live.jsonl").read_text().splitlines()
    )
    assert output(out)[1]["result"][0]["arguments"] == {"query": "q1"}


# --- order, async records ---------------------------------------------------------------------


def test_ordered_outcomes_come_in_input_order_or_the_option_is_refused(
    server: FakeOpenAIServer, out: Path
) -> None:
    server.batches.plan(BatchPlan(polls=5), BatchPlan(polls=0))  # the second batch ends first
    try:
        run = make_run(server, out, max_lines=2, ordered=True)
        outcomes, _ = run_all(run, records(4))
    except (ValueError, TypeError) as exc:  # refused, saying why: fine
        assert "ordered" in str(exc)
        return
    assert [o.position for o in outcomes] == [1, 2, 3, 4]


def test_an_async_iterable_of_records(server: FakeOpenAIServer, out: Path) -> None:
    async def items() -> AsyncIterator[dict[str, int]]:
        for item in records(5):
            await asyncio.sleep(0)
            yield item

    run = make_run(server, out, max_lines=2)

    async def go() -> list[Outcome]:
        got = [o async for o in run.arun(items())]
        await run.client.close()
        return got

    outcomes = asyncio.run(go())
    assert sorted(o.id for o in outcomes) == list(range(5)) and all(o.ok for o in outcomes)
    assert sorted(o.position for o in outcomes) == [1, 2, 3, 4, 5]
    all_ok(out, 5)


def test_the_event_loop_runs_while_records_are_read_and_a_batch_is_decoded(
    server: FakeOpenAIServer, out: Path
) -> None:
    server.default_reply = Reply.json({"n": 1})
    ticks = 0
    seen_reading: list[int] = []
    seen_decoding: list[int] = []

    def items() -> Iterator[dict[str, int]]:
        for item in records(3000):
            seen_reading.append(ticks)
            yield item

    async def go() -> None:
        nonlocal ticks
        done = False

        async def ticker() -> None:
            nonlocal ticks
            while not done:
                ticks += 1
                await asyncio.sleep(0)

        task = asyncio.create_task(ticker())
        await asyncio.sleep(0)
        run = make_run(server, out)
        async for _ in run.arun(items()):
            seen_decoding.append(ticks)
        done = True
        await task
        await run.client.close()

    asyncio.run(go())
    assert len(seen_decoding) == 3000
    assert seen_reading[-1] > seen_reading[0], "3000 records read without yielding once"
    assert seen_decoding[-1] > seen_decoding[0], "3000 answers decoded without yielding once"


# --- the API key --------------------------------------------------------------------------------


def test_a_key_quoted_back_by_an_error_line_is_in_no_file(tmp_path: Path, out: Path) -> None:
    with FakeOpenAIServer(require_api_key=HEX_KEY) as srv:
        srv.default_reply = lambda r: Fault(
            http_status=400, message=f"Incorrect API key provided: {HEX_KEY}"
        )
        run = make_run(srv, out, client=srv.async_client(api_key=HEX_KEY))
        outcomes, _ = run_all(run, records(2))
    assert all(not o.ok and HEX_KEY not in str(o.error) for o in outcomes)
    assert HEX_KEY not in out.read_text()
    for path in tmp_path.iterdir():
        assert HEX_KEY.encode() not in path.read_bytes(), path.name


def test_the_key_is_in_no_file_of_a_write_import_round(
    server: FakeOpenAIServer, tmp_path: Path, ostruct: Any
) -> None:
    write_input(tmp_path / "in.jsonl", 2)
    base = ("batch", "t.j2", "s.json", "-i", "in.jsonl", "-o", "out.jsonl", "-m", MODEL)
    assert ostruct(*base, "--write-requests", "req.jsonl").exit_code == 0
    lines = [json.loads(x) for x in (tmp_path / "req.jsonl").read_text().splitlines()]
    results = [{"custom_id": line["custom_id"], "response": {"status_code": 400, "body": {
        "error": {"message": f"bad key {HEX_KEY}"}}}} for line in lines]  # fmt: skip
    (tmp_path / "res.jsonl").write_text("".join(json.dumps(r) + "\n" for r in results))
    done = ostruct(*base, "--import-results", "res.jsonl")
    assert done.exit_code == 10
    for path in tmp_path.iterdir():
        if path.name != "res.jsonl":
            assert HEX_KEY.encode() not in path.read_bytes(), path.name


# --- --status and --cancel --------------------------------------------------------------------


def running_parts(
    server: FakeOpenAIServer, out: Path, monkeypatch: pytest.MonkeyPatch, *plans: BatchPlan
) -> None:
    """A journal whose batches (one per record) were all created, then the run "killed"."""
    server.batches.plan(*plans)
    crash_at(monkeypatch, "submitted", len(plans))
    crashed_run(make_run(server, out, max_lines=1), records(len(plans)))
    monkeypatch.setattr(_batch, "_step", lambda name: None)


def test_status_when_the_server_cannot_be_reached_is_a_clear_api_error(
    server: FakeOpenAIServer, out: Path, monkeypatch: pytest.MonkeyPatch, ostruct: Any
) -> None:
    running_parts(server, out, monkeypatch, BatchPlan(polls=10**6))
    done = ostruct("batch", "--status", "out.jsonl", "--base-url", closed_port_url(),
                   "--max-retries", "0")  # fmt: skip
    assert done.exit_code == 6, done.stderr
    assert "Traceback" not in done.stderr
    assert "the server could not be reached" in done.stderr
    # the journal's view is still shown, marked as such
    assert "in_progress (last seen)" in done.stdout or "validating (last seen)" in done.stdout


def test_status_of_a_finished_run_needs_no_server(
    server: FakeOpenAIServer, out: Path, ostruct: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_all(make_run(server, out, max_lines=1), records(2))
    monkeypatch.delenv("OPENAI_API_KEY")  # another machine: the journal is all there is
    done = ostruct("batch", "--status", "out.jsonl")
    assert done.exit_code == 0, done.stderr
    assert [row.split()[2] for row in done.stdout.splitlines()[2:]] == ["completed"] * 2


def test_cancel_on_a_finished_run_says_nothing_to_cancel(
    server: FakeOpenAIServer, out: Path, ostruct: Any
) -> None:
    run_all(make_run(server, out), records(2))
    done = ostruct("batch", "--cancel", "out.jsonl", "--base-url", server.base_url)
    assert done.exit_code == 0 and "nothing to cancel" in done.stdout


def test_cancel_skips_a_batch_that_ended_unseen_and_cancels_the_running_one(
    server: FakeOpenAIServer, out: Path, monkeypatch: pytest.MonkeyPatch, ostruct: Any
) -> None:
    running_parts(server, out, monkeypatch, BatchPlan(polls=0), BatchPlan(polls=10**6))
    first, second = server.batches.created
    server.client().batches.retrieve(first)  # it completes; the journal still says submitted
    done = ostruct("batch", "--cancel", "out.jsonl", "--base-url", server.base_url)
    assert server.batches.get(second)["status"] == "cancelling", done.stderr
    assert done.exit_code == 0, done.stderr


def test_status_shows_the_servers_word_for_batches_the_journal_thinks_running(
    server: FakeOpenAIServer, out: Path, monkeypatch: pytest.MonkeyPatch, ostruct: Any
) -> None:
    running_parts(server, out, monkeypatch, BatchPlan(polls=0), BatchPlan(polls=10**6))
    first, _second = server.batches.created
    server.client().batches.retrieve(first)
    done = ostruct("batch", "--status", "out.jsonl", "--base-url", server.base_url)
    assert done.exit_code == 0, done.stderr
    statuses = [row.split()[2] for row in done.stdout.splitlines()[2:]]
    assert statuses == ["completed", "in_progress"]


# --- files for other engines ----------------------------------------------------------------


def test_write_requests_into_a_directory_that_does_not_exist_is_a_clear_error(
    tmp_path: Path, ostruct: Any
) -> None:
    write_input(tmp_path / "in.jsonl", 2)
    done = ostruct("batch", "t.j2", "s.json", "-i", "in.jsonl", "-o", "out.jsonl", "-m", MODEL,
                   "--write-requests", "missing/req.jsonl")  # fmt: skip
    assert "bug in ostruct" not in done.stderr, done.stderr
    assert done.exit_code in (3, 9), done.stderr
    assert "missing" in done.stderr


def files_run(out: Path, backend: BatchFiles, **kwargs: Any) -> BulkRun:
    return BulkRun(model=MODEL, schema=SCHEMA, request=prompt, output=out, backend=backend,
                   **kwargs)  # fmt: skip


def chat_body(n: Any) -> dict[str, Any]:
    return {"id": "chatcmpl-x", "object": "chat.completion", "created": 0, "model": MODEL,
            "choices": [{"index": 0, "finish_reason": "stop", "message": {
                "role": "assistant", "content": json.dumps({"n": n})}}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}}  # fmt: skip


def ok_line(custom_id: str, n: Any) -> dict[str, Any]:
    return {"custom_id": custom_id, "response": {"status_code": 200, "body": chat_body(n)}}


def error_line(custom_id: str) -> dict[str, Any]:
    return {"custom_id": custom_id, "response": {"status_code": 400, "body": {
        "error": {"message": "engine hiccup"}}}}  # fmt: skip


def written_requests(tmp_path: Path, out: Path, n: int, **kwargs: Any) -> list[str]:
    req = tmp_path / "req.jsonl"
    list(files_run(out, BatchFiles(write_requests=req), **kwargs).run(records(n)))
    return [json.loads(line)["custom_id"] for line in req.read_text().splitlines()]


def imported(tmp_path: Path, out: Path, lines: list[dict[str, Any]], n: int,
             **kwargs: Any) -> tuple[list[Outcome], BulkRun]:  # fmt: skip
    res = tmp_path / "res.jsonl"
    res.write_text("".join(json.dumps(line) + "\n" for line in lines))
    run = files_run(out, BatchFiles(import_results=res), **kwargs)
    return list(run.run(records(n))), run


def test_import_keeps_the_answer_when_a_custom_id_also_has_a_later_error_line(
    tmp_path: Path, out: Path
) -> None:
    (cid,) = written_requests(tmp_path, out, 1)
    outcomes, _ = imported(tmp_path, out, [ok_line(cid, 0), error_line(cid)], 1)
    assert [o.ok for o in outcomes] == [True]
    all_ok(out, 1)


def test_import_takes_the_answer_after_an_earlier_error_line(tmp_path: Path, out: Path) -> None:
    (cid,) = written_requests(tmp_path, out, 1)
    outcomes, _ = imported(tmp_path, out, [error_line(cid), ok_line(cid, 0)], 1)
    assert [o.ok for o in outcomes] == [True]
    all_ok(out, 1)


def test_import_of_a_re_ask_line_without_its_first_attempt_is_left_out(
    tmp_path: Path, out: Path
) -> None:
    (cid,) = written_requests(tmp_path, out, 1, max_validation_retries=1)
    outcomes, run = imported(tmp_path, out, [ok_line(f"{cid}~2", 0)], 1,
                             max_validation_retries=1)  # fmt: skip
    assert outcomes == [] and run.waiting == 1 and out.read_text() == ""
    assert any("match no request" in note for note in run.notes)
    # The first attempt's line, then the re-ask's: the record takes two rounds, as documented.
    outcomes, run = imported(tmp_path, out, [ok_line(cid, "wrong")], 1, max_validation_retries=1)
    assert outcomes == [] and run.waiting == 1
    (reask,) = written_requests(tmp_path, out, 1, max_validation_retries=1)
    assert reask == f"{cid}~2"
    outcomes, run = imported(tmp_path, out, [ok_line(reask, 0)], 1, max_validation_retries=1)
    assert [(o.ok, o.attempts) for o in outcomes] == [(True, 2)]
    all_ok(out, 1)


def test_an_error_line_of_an_imported_file_is_the_records_error_not_resent(
    tmp_path: Path, out: Path
) -> None:
    (cid,) = written_requests(tmp_path, out, 1)
    outcomes, run = imported(tmp_path, out, [error_line(cid)], 1)
    assert len(outcomes) == 1 and isinstance(outcomes[0].error, BatchLineError)
    assert written_requests(tmp_path, out, 1) == []  # final, as a live 400 would be
    assert run.waiting == 0


def test_the_ledger_is_in_the_journal_file_not_beside_it(
    server: FakeOpenAIServer, out: Path
) -> None:
    run_all(make_run(server, out), records(1))
    db = sqlite3.connect(f"{out}.ostruct-journal")
    tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master")}
    db.close()
    assert {"batch_parts", "batch_requests", "batch_results", "records"} <= tables
