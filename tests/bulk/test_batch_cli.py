"""``ostruct batch`` end to end: the real command in a subprocess, against the loopback fake
server in this process.

Every record's prompt names the record (``record <ID> text <TEXT>``) and the server echoes both
back (:class:`batch_support.Echo`), so each output line is checked against its own record, and
the server's captured requests say how often each record was asked for: once, except those in
flight when a run was killed or interrupted.
"""

from __future__ import annotations

import bisect
import contextlib
import csv
import io
import json
import re
import signal
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from batch_proxy import SlowStart
from batch_support import (
    KEY,
    Echo,
    Process,
    Workdir,
    assert_all_ok,
    assert_each_once,
    batch_args,
    has_lines,
    ids,
    lines_of,
    mark_of,
    no_key,
    requested,
    run,
    text_of,
    wait_until,
    workdir,
    write_jsonl,
)

from openai_structured.testing import FakeOpenAIServer, Fault, Latency, RateLimits
from openai_structured.tokens import count_message_tokens, estimate_cost, get_default_token_limit

PARTIAL, BUDGET, API, LOCKED, INTERRUPTED = 10, 8, 6, 9, 130  # cli/exit_codes.py


@pytest.fixture
def work(tmp_path: Path) -> Workdir:
    return workdir(tmp_path)


@contextmanager
def serving(echo: Echo, **options: Any) -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(default_reply=echo, **options) as server:
        yield server
        assert not server.errors, server.errors


def finished_ids(out: Path, names: Sequence[str]) -> set[str]:
    """The records an output holds after a kill: complete lines only (a torn last line is not
    finished), each id at most once, each of them an input record with its own answer."""
    lines = lines_of(out, complete=False)
    counts = Counter(line["id"] for line in lines)
    assert all(n == 1 for n in counts.values()), counts.most_common(3)
    assert set(counts) <= set(names)
    for line in lines:
        assert line["result"] == {"rid": line["id"], "echo": text_of(line["id"])}, line
    return set(counts)


def no_key_in_files(directory: Path) -> None:
    """Neither the output, the journal (and its -wal/-shm), the lock nor any other file holds
    the key."""
    files = [p for p in directory.rglob("*") if p.is_file()]
    assert any(p.name.endswith(".ostruct-journal") for p in files), files
    for path in files:
        no_key(path.read_bytes())


# --- a large run -------------------------------------------------------------------------------


def test_2000_records_at_concurrency_32_give_each_record_one_line_with_its_own_answer(
    work: Workdir,
) -> None:
    names = write_jsonl(work.path / "in.jsonl", 2000)
    echo = Echo(delay=0.01)
    with serving(echo) as server:
        outcome = run(batch_args(server, "--concurrency", "32"), work.path)
        assert outcome.code == 0, outcome.stderr
        assert_all_ok(work.out, names)
        assert len(server.requests) == 2000
        assert {r.endpoint for r in server.requests} == {"chat"}
        assert set(requested(server).values()) == {1}
    assert 1 < echo.peak <= 32  # concurrent, never above --concurrency
    assert "2000 ok, 0 failed in the output" in outcome.stderr


# --- crashes and interruptions -----------------------------------------------------------------


def test_sigkill_at_10_50_and_90_percent_then_resume_never_requests_a_finished_record_again(
    work: Workdir,
) -> None:
    n, width = 400, 16
    names = write_jsonl(work.path / "in.jsonl", n)
    kills: list[tuple[set[str], Counter[str], set[str]]] = []
    # The last records' answers wait until the kills are over: no run can end before its kill.
    tail = threading.Event()
    echo = Echo(hold=tail, held=names[-n // 20 :])
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(serving(echo, latency=Latency.uniform(0.001, 0.01, seed=3)))
        stack.callback(tail.set)  # before the server stops, also after a failed assertion
        args = batch_args(server, "--concurrency", str(width))
        for fraction in (0.1, 0.5, 0.9):
            before = requested(server)
            with Process(args, work.path) as proc:
                target = fraction * n
                wait_until(has_lines(work.out, target), proc, what=f"{target:.0f} lines")
                proc.signal(signal.SIGKILL)
                assert proc.wait().code == -signal.SIGKILL
            finished = finished_ids(work.out, names)
            assert len(finished) >= fraction * n
            counts = requested(server)
            # Asked for in this run and not in the output: in flight at the kill.
            in_flight = {rid for rid in counts - before if rid not in finished}
            assert len(in_flight) <= width, sorted(in_flight)
            kills.append((finished, counts, in_flight))
            no_key_in_files(work.path)  # the journal's -wal too, left by the kill
        tail.set()
        resumed = run(args, work.path)
        assert resumed.code == 0, resumed.stderr
        assert_all_ok(work.out, names)
        final = requested(server)
    assert set(final) == set(names)
    for finished, counts, _ in kills:
        again = {rid: (counts[rid], final[rid]) for rid in finished if final[rid] != counts[rid]}
        assert not again, again  # (requests at the kill, at the end) of finished records
    twice = {rid for rid, count in final.items() if count > 1}
    assert twice <= set().union(*(in_flight for _, _, in_flight in kills))
    assert max(final.values()) <= 1 + len(kills)


def test_ctrl_c_mid_run_exits_130_and_a_rerun_finishes_with_each_record_once(
    work: Workdir,
) -> None:
    n, width = 300, 8
    names = write_jsonl(work.path / "in.jsonl", n)
    tail = threading.Event()  # the last answers wait until the interrupt: it comes mid-run
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(serving(Echo(hold=tail, held=names[-10:]), latency=0.01))
        stack.callback(tail.set)
        args = batch_args(server, "--concurrency", str(width))
        with Process(args, work.path) as proc:
            wait_until(has_lines(work.out, n // 3), proc, what="a third of the lines")
            proc.signal(signal.SIGINT)
            interrupted = proc.wait()
        tail.set()
        assert interrupted.code == INTERRUPTED, interrupted.stderr
        assert "run the same command" in interrupted.stderr
        assert interrupted.stdout == ""
        lines_of(work.out)  # closed cleanly: no torn line
        finished = finished_ids(work.out, names)
        assert n // 3 <= len(finished) < n
        before = requested(server)
        resumed = run(args, work.path)
        assert resumed.code == 0, resumed.stderr
        assert_all_ok(work.out, names)
        after = requested(server)
    assert {rid: after[rid] for rid in finished} == dict.fromkeys(finished, 1)
    in_flight = {rid for rid in before if rid not in finished}
    assert len(in_flight) <= width
    assert {rid for rid, count in after.items() if count > 1} <= in_flight


def test_ctrl_c_does_not_wait_for_the_requests_in_flight(work: Workdir) -> None:
    names = write_jsonl(work.path / "in.jsonl", 10)
    hold = threading.Event()
    echo = Echo(hold=hold, hold_timeout=2.0)  # answers wait for the test (2 s: a guard)
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(serving(echo))
        stack.callback(hold.set)
        args = batch_args(server)
        with Process(args, work.path) as proc:
            wait_until(lambda: len(server.requests) >= 1, proc, what="the first request")
            proc.signal(signal.SIGINT)
            interrupted = proc.wait()
        expired = echo.expired
        held = lines_of(work.out)
        hold.set()
        resumed = run(args, work.path)
    assert interrupted.code == INTERRUPTED, interrupted.stderr
    assert expired == 0  # it exited while the answer was still held
    assert held == []  # and so wrote none
    assert resumed.code == 0, resumed.stderr
    assert_all_ok(work.out, names)


# --- per-record failures -----------------------------------------------------------------------


def test_an_answer_that_fails_the_schema_is_a_validation_error_line_and_the_run_goes_on(
    work: Workdir,
) -> None:
    names = write_jsonl(work.path / "in.jsonl", 8)
    with serving(Echo(bad={"r0002"})) as server:
        outcome = run(batch_args(server, "--concurrency", "1"), work.path)
        order = [mark_of(r)[0] for r in server.requests]  # type: ignore[index]
    assert outcome.code == PARTIAL, outcome.stderr
    by_id = assert_each_once(work.out, names)
    assert by_id["r0002"].keys() == {"id", "error"}
    assert by_id["r0002"]["error"]["type"] == "ValidationError"
    assert "'echo' is a required property" in by_id["r0002"]["error"]["message"]
    assert all("result" in by_id[rid] for rid in names if rid != "r0002")
    # One request at a time: the records after the bad one were asked for after it failed.
    assert order == names
    assert "1 failed (1 ValidationError)" in outcome.stderr
    assert "--retry-failed" in outcome.stderr


def test_retry_failed_requests_again_only_the_records_that_failed(work: Workdir) -> None:
    names = write_jsonl(work.path / "in.jsonl", 12)
    bad = {"r0003", "r0007", "r0010"}
    echo = Echo(bad=bad)
    with serving(echo) as server:
        args = batch_args(server)
        first = run(args, work.path)
        assert first.code == PARTIAL, first.stderr
        by_id = assert_each_once(work.out, names)
        assert {rid for rid, line in by_id.items() if "error" in line} == bad
        rerun = run(args, work.path)  # without --retry-failed a failure is finished too
        assert rerun.code == PARTIAL, rerun.stderr
        assert len(server.requests) == 12
        echo.bad.clear()  # the model answers properly now
        before = requested(server)
        retried = run([*args, "--retry-failed"], work.path)
        assert retried.code == 0, retried.stderr
        assert_all_ok(work.out, names)  # the error lines replaced, not added to
        assert requested(server) - before == Counter(dict.fromkeys(bad, 1))


def test_a_repeated_id_fails_the_later_record_and_keeps_the_earlier_answer_across_reruns(
    work: Workdir,
) -> None:
    records = [
        {"id": "r0000", "text": text_of("r0000")},
        {"id": "r0001", "text": text_of("r0001")},
        {"id": "r0000", "text": "a second r0000"},
    ]
    (work.path / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    answer = {"id": "r0000", "result": {"rid": "r0000", "echo": text_of("r0000")}}
    with serving(Echo()) as server:
        args = batch_args(server, "--concurrency", "1")
        first = run(args, work.path)
        assert first.code == PARTIAL, first.stderr
        assert "DuplicateIdError" in first.stderr
        assert requested(server) == Counter({"r0000": 1, "r0001": 1})
        assert answer in lines_of(work.out)
        again = run(args, work.path)
        assert again.code == PARTIAL, again.stderr
        assert requested(server) == Counter({"r0000": 1, "r0001": 1})  # nothing paid twice
        assert answer in lines_of(work.out)


# --- inputs ------------------------------------------------------------------------------------


def test_csv_input_gives_one_line_per_row_named_by_its_id_column(work: Workdir) -> None:
    texts = {
        "r0000": "plain",
        "r0001": "a, comma",
        "r0002": 'say "hi"',
        "r0003": "two\nlines",
        "r0004": "",
    }
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["id", "text"])
    writer.writerows(texts.items())
    (work.path / "in.csv").write_text(buffer.getvalue(), encoding="utf-8")
    with serving(Echo()) as server:
        outcome = run(batch_args(server, input="in.csv"), work.path)
        assert outcome.code == 0, outcome.stderr
        assert requested(server) == Counter(dict.fromkeys(texts, 1))
    assert_all_ok(work.out, texts)


def test_directory_input_gives_one_line_per_file_named_by_its_relative_path(
    tmp_path: Path,
) -> None:
    work = workdir(tmp_path, template="{{ file.content }}")
    wanted = ["a.txt", "b.txt", "sub/c.txt", "sub/deeper/d.txt"]
    for rel in [*wanted, "notes.md", "sub/skip.md"]:
        path = tmp_path / "docs" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"record <{rel}> text <content of {rel}>\n", encoding="utf-8")
    with serving(Echo()) as server:
        args = batch_args(server, "--glob", "*.txt", "--recursive", input="docs")
        outcome = run(args, work.path)
        assert outcome.code == 0, outcome.stderr
        assert requested(server) == Counter(dict.fromkeys(wanted, 1))
    assert_all_ok(work.out, {rel: f"content of {rel}" for rel in wanted})


def test_stdin_input_is_read_as_jsonl(work: Workdir) -> None:
    names = ids(30)
    data = "".join(json.dumps({"id": r, "text": text_of(r)}) + "\n" for r in names)
    with serving(Echo()) as server:
        outcome = run(batch_args(server, input="-"), work.path, input=data)
        assert outcome.code == 0, outcome.stderr
        assert len(server.requests) == 30
    assert_all_ok(work.out, names)


# --- budgets -----------------------------------------------------------------------------------


def test_a_budget_stops_the_run_exit_8_and_a_rerun_without_it_requests_only_the_rest(
    work: Workdir,
) -> None:
    names = write_jsonl(work.path / "in.jsonl", 20)
    with serving(Echo()) as server:
        args = batch_args(server)
        stopped = run([*args, "--max-requests", "5"], work.path)
        assert stopped.code == BUDGET, stopped.stderr
        assert "max_requests=5" in stopped.stderr
        assert "run the same command to go on" in stopped.stderr
        first = finished_ids(work.out, names)
        lines_of(work.out)  # no torn line
        assert len(first) == 5
        assert requested(server) == Counter(dict.fromkeys(first, 1))

        kept = work.out.read_bytes()
        priced = run([*args, "--max-cost", "0.000001"], work.path)
        assert priced.code == BUDGET, priced.stderr
        assert "max_cost" in priced.stderr
        assert "run the same command to go on" in priced.stderr
        assert len(server.requests) == 5  # not one request over the budget
        assert work.out.read_bytes() == kept

        finished = run(args, work.path)
        assert finished.code == 0, finished.stderr
        assert_all_ok(work.out, names)
        assert requested(server) == Counter(dict.fromkeys(names, 1))


# --- the lock ----------------------------------------------------------------------------------


def test_a_second_run_on_the_same_output_is_refused_exit_9_naming_the_first(
    work: Workdir,
) -> None:
    names = write_jsonl(work.path / "in.jsonl", 6)
    hold = threading.Event()  # the first run's answers wait: it is running while the second tries
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(serving(Echo(hold=hold)))
        stack.callback(hold.set)
        args = batch_args(server)
        with Process(args, work.path) as first:
            wait_until(lambda: len(server.requests) >= 1, first, what="the first request")
            second = run(args, work.path)
            hold.set()
            done = first.wait()
        requests = len(server.requests)
    assert second.code == LOCKED, second.stderr
    assert f"another ostruct batch run is writing {work.out.resolve()}" in second.stderr
    assert f"pid {first.proc.pid}" in second.stderr
    assert done.code == 0, done.stderr
    assert_all_ok(work.out, names)  # nothing of the second run in it
    assert requests == 6  # the second sent nothing


# --- the dry run -------------------------------------------------------------------------------


def test_dry_run_prints_the_records_tokens_and_cost_of_the_run_and_sends_nothing(
    work: Workdir,
) -> None:
    names = write_jsonl(work.path / "in.jsonl", 12)
    with serving(Echo()) as server:
        args = batch_args(server)
        dry = run([*args, "--dry-run"], work.path)
        assert dry.code == 0, dry.stderr
        assert server.requests == []
        assert not work.out.exists() and not work.journal.exists()
        real = run(args, work.path)  # what the run then sends, to check the figures against
        assert real.code == 0, real.stderr
        sent = [r.json["messages"] for r in server.requests]
    assert len(sent) == len(names)
    prompt = sum(count_message_tokens(messages, "gpt-4o") for messages in sent)
    output = len(names) * get_default_token_limit("gpt-4o")
    cost = estimate_cost("gpt-4o", prompt, output)
    assert cost is not None
    assert "nothing was sent" in dry.stdout
    assert "records: 12\n" in dry.stdout
    assert f"prompt tokens: {prompt:,} " in dry.stdout
    assert f"output tokens: at most {output:,}\n" in dry.stdout
    shown = re.search(r"estimated cost: at most \$([\d,.]+) USD", dry.stdout)
    assert shown is not None, dry.stdout
    assert float(shown.group(1).replace(",", "")) == pytest.approx(cost.total, abs=0.005)


# --- rate limits -------------------------------------------------------------------------------


class FirstRefusal:
    """Watches the server for its first 429. ``accepted``: requests accepted when it was seen
    (read under the server's lock with the 429 count), so every accepted request after that
    index arrived after the first 429."""

    def __init__(self, server: FakeOpenAIServer) -> None:
        self.accepted: int | None = None
        self._server = server
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(0.001):
            stats = self._server.stats()
            if stats["rate_limited"]:
                self.accepted = stats["accepted"]
                return

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def max_in_window(times: Sequence[float], seconds: float) -> int:
    """The most of ``times`` in any half-open interval ``[t, t + seconds)``."""
    ordered = sorted(times)
    return max(
        (bisect.bisect_left(ordered, t + seconds, lo=i) - i for i, t in enumerate(ordered)),
        default=0,
    )


def test_a_429_storm_still_finishes_every_record_and_keeps_the_server_limit_after_it(
    work: Workdir,
) -> None:
    limit, window, n = 40, 2.0, 80
    names = write_jsonl(work.path / "in.jsonl", n)
    limits = RateLimits(requests_per_minute=limit, window=window)
    with serving(Echo(), rate_limits=limits, latency=0.01) as server:
        # The user's limits are far above the server's: 64 requests leave at once, and the
        # run learns the real limit from the 429s.
        args = batch_args(
            server, "--concurrency", "64", "--rpm", "100000", "--tpm", "100000000",
            "--rate-window", str(window),
        )  # fmt: skip
        watch = FirstRefusal(server)
        try:
            outcome = run(args, work.path)
        finally:
            watch.stop()
        assert outcome.code == 0, outcome.stderr
        assert_all_ok(work.out, names)
        assert server.rate_limited >= 10  # a storm (64 at once for a limit of 40), not one 429
        accepted = server.accepted_times
        assert len(accepted) == n  # each record answered once
    assert watch.accepted is not None
    after = accepted[watch.accepted :]
    assert len(after) >= n - limit - 2
    # The requests accepted after the first 429 never make more than the limit in a window.
    # (Windows that also hold the burst accepted before it: the next test.)
    assert max_in_window(after, window) <= limit


def test_after_a_429_no_window_of_the_servers_holds_more_than_its_limit(work: Workdir) -> None:
    limit, window, width = 20, 1.0, 32
    names = write_jsonl(work.path / "in.jsonl", width)  # every first attempt in the burst
    echo = Echo()
    limits = RateLimits(requests_per_minute=limit, window=window)
    with (
        serving(echo, rate_limits=limits) as server,
        # New connections take 100 ms to reach the server, as a distant server's do.
        SlowStart(server.port, delay=0.1, slow=width) as network,
    ):
        args = batch_args(
            server, "--concurrency", str(width), "--rpm", "100000", "--tpm", "100000000",
            "--rate-window", str(window), base_url=network.base_url,
        )  # fmt: skip
        outcome = run(args, work.path)
        assert outcome.code == 0, outcome.stderr
        assert_all_ok(work.out, names)
        assert server.rate_limited >= 1
        sent = requested(server)
    # Echo's times are the admissions (no latency). A record asked for twice got a 429 first:
    # its accepted request left after the run had a 429, and the window that ends with it
    # (the burst included) holds no more than the limit.
    accepted = sorted(t for t, _ in echo.times)
    retries = [t for t, rid in echo.times if sent[rid] > 1]
    assert retries
    most = max(
        bisect.bisect_right(accepted, t) - bisect.bisect_right(accepted, t - window)
        for t in retries
    )
    assert most <= limit


def test_a_server_tokens_limit_below_the_models_output_maximum_fails_no_request_that_fits(
    work: Workdir,
) -> None:
    names = write_jsonl(work.path / "in.jsonl", 20)
    tokens = 10_000
    limits = RateLimits(tokens_per_minute=tokens)  # per 60 s: room for all 20 many times over
    with serving(Echo(), rate_limits=limits) as server:
        outcome = run(batch_args(server), work.path)
        first = server.requests[0].json
        assert "max_tokens" not in first and "max_completion_tokens" not in first
        assert len(names) * limits.token_cost(first) < tokens  # all of them fit
        assert outcome.code == 0, outcome.stderr
        assert_all_ok(work.out, names)
        assert server.rate_limited == 0


# --- the key -----------------------------------------------------------------------------------


def test_the_api_key_is_in_no_output_line_journal_file_stdout_or_stderr(work: Workdir) -> None:
    names = write_jsonl(work.path / "in.jsonl", 10)
    # A server that quotes the key back in an error, per record and on the 401 that stops a run.
    faults = {"r0004": Fault.status(400, message=f"key {KEY} may not ask this")}
    with serving(Echo(bad={"r0006"}, faults=faults), require_api_key=KEY) as server:
        args = batch_args(server)
        first = run(args, work.path)
        assert first.code == PARTIAL, first.stderr
        assert server.requests[0].headers["Authorization"] == f"Bearer {KEY}"  # it was sent
        by_id = assert_each_once(work.out, names)
        assert by_id["r0004"]["error"]["type"] == "BadRequestError"
        assert "may not ask this" in by_id["r0004"]["error"]["message"]
        server.queue(Fault.status(401, message=f"Incorrect API key provided: {KEY}."))
        denied = run([*args, "--retry-failed", "-v"], work.path)  # -v: with the traceback
        assert denied.code == API, denied.stderr
        assert "Incorrect API key provided" in denied.stderr
    # run() checked stdout and stderr of both runs.
    no_key_in_files(work.path)
