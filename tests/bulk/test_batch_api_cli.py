"""``ostruct batch --backend openai-batch`` end to end: the real command in a subprocess against
the loopback server's Batch API emulator; ``--status``, ``--cancel`` and the dry run."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from batch_support import (
    KEY,
    Echo,
    Process,
    assert_each_once,
    batch_args,
    no_key,
    run,
    wait_until,
    workdir,
    write_jsonl,
)

from openai_structured.bulk import Journal
from openai_structured.testing import BatchPlan, FakeOpenAIServer

BATCH = ("--backend", "openai-batch", "--poll-interval", "0.01")


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as srv:
        srv.default_reply = Echo()
        yield srv


def test_a_batch_run_writes_the_same_output_as_a_live_one(
    server: FakeOpenAIServer, tmp_path: Path
) -> None:
    wd = workdir(tmp_path)
    names = write_jsonl(tmp_path / "in.jsonl", 7)
    done = run(batch_args(server, *BATCH, "--batch-lines", "3"), tmp_path)
    assert done.code == 0, done.stderr
    assert_each_once(wd.out, names)
    assert len(server.batches.created) == 3
    assert "7 ok, 0 failed" in done.stderr
    assert done.stdout == ""
    live_dir = tmp_path / "live"
    live_dir.mkdir()
    lwd = workdir(live_dir)
    write_jsonl(live_dir / "in.jsonl", 7)
    live = run(batch_args(server), live_dir)
    assert live.code == 0, live.stderr
    assert sorted(wd.out.read_text().splitlines()) == sorted(lwd.out.read_text().splitlines())
    for path in tmp_path.iterdir():
        if path.is_file():
            no_key(path.read_bytes())


def test_a_failed_record_exits_partial_with_its_error_line(
    server: FakeOpenAIServer, tmp_path: Path
) -> None:
    wd = workdir(tmp_path)
    names = write_jsonl(tmp_path / "in.jsonl", 4)
    server.default_reply = Echo(bad=[names[1]])
    done = run(batch_args(server, *BATCH), tmp_path)
    assert done.code == 10, done.stderr
    lines = assert_each_once(wd.out, names)
    assert lines[names[1]]["error"]["type"] == "ValidationError"


def test_the_dry_run_prices_at_batch_prices_and_counts_files(
    server: FakeOpenAIServer, tmp_path: Path
) -> None:
    workdir(tmp_path)
    write_jsonl(tmp_path / "in.jsonl", 5)
    live = run(batch_args(server, "--dry-run"), tmp_path)
    batched = run(batch_args(server, "--dry-run", *BATCH, "--batch-lines", "2"), tmp_path)
    assert live.code == batched.code == 0, (live.stderr, batched.stderr)
    assert "backend: OpenAI Batch API (3 batch files of at most 2 requests" in batched.stdout

    def usd(text: str) -> float:
        line = next(x for x in text.splitlines() if x.startswith("estimated cost"))
        return float(line.split("$")[1].split()[0].replace(",", ""))

    assert "at Batch API prices" in batched.stdout
    assert usd(batched.stdout) == pytest.approx(usd(live.stdout) / 2, rel=0.01)
    assert server.requests == []


def test_status_shows_the_batches_and_cancel_stops_the_run_then_it_resumes(
    server: FakeOpenAIServer, tmp_path: Path
) -> None:
    wd = workdir(tmp_path)
    names = write_jsonl(tmp_path / "in.jsonl", 6)
    server.batches.default_plan = BatchPlan(polls=10**9, lines_done=2)  # runs until cancelled
    with Process(batch_args(server, *BATCH, "--batch-lines", "3"), tmp_path) as proc:
        wait_until(lambda: len(server.batches.created) == 2, proc, what="two batches")
        status = run(["batch", "--status", "out.jsonl", "--base-url", server.base_url], tmp_path)
        assert status.code == 0, status.stderr
        rows = status.stdout.splitlines()
        assert rows[0] == "out.jsonl: 2 batch files"
        head = ["part", "batch", "status", "completed", "failed", "total", "file"]
        assert rows[1].split() == head
        assert [r.split()[1:3] for r in rows[2:]] == [
            [b, "in_progress"] for b in server.batches.created
        ]
        cancel = run(["batch", "--cancel", "out.jsonl", "--base-url", server.base_url], tmp_path)
        assert cancel.code == 0, cancel.stderr
        assert cancel.stdout.count("cancelling batch_") == 2
        stopped = proc.wait()
    assert stopped.code == 10, stopped.stderr
    assert "BatchCancelledError" in stopped.stderr and "rerun the same command" in stopped.stderr
    assert len(assert_each_once_partial(wd.out)) == 4  # two answered lines of each batch
    server.batches.default_plan = BatchPlan()
    again = run(batch_args(server, *BATCH, "--batch-lines", "3"), tmp_path)
    assert again.code == 0, again.stderr
    assert_each_once(wd.out, names)
    assert len(server.batches.created) == 3  # the 2 records left, in one new batch
    after = run(["batch", "--status", "out.jsonl", "--base-url", server.base_url], tmp_path)
    statuses = [r.split()[2] for r in after.stdout.splitlines()[2:]]
    assert statuses == ["cancelled", "cancelled", "completed"]


def assert_each_once_partial(out: Path) -> list[str]:
    ids = [json.loads(line)["id"] for line in out.read_text().splitlines()]
    assert len(ids) == len(set(ids))
    return ids


def test_status_and_cancel_on_an_output_without_batches_say_so(
    server: FakeOpenAIServer, tmp_path: Path
) -> None:
    workdir(tmp_path)
    write_jsonl(tmp_path / "in.jsonl", 2)
    assert run(batch_args(server), tmp_path).code == 0
    status = run(["batch", "--status", "out.jsonl"], tmp_path)
    assert status.code == 0 and "no Batch API batches" in status.stdout
    missing = run(["batch", "--status", "nothing.jsonl"], tmp_path)
    assert missing.code == 9 and "has no journal" in missing.stderr


def test_without_template_and_schema_only_status_and_cancel_work(tmp_path: Path) -> None:
    done = run(["batch", "-i", "in.jsonl", "-o", "out.jsonl"], tmp_path)
    assert done.code == 2 and "Missing argument 'TEMPLATE'" in done.stderr


def test_a_killed_batch_run_resumes_from_its_journal(
    server: FakeOpenAIServer, tmp_path: Path
) -> None:
    wd = workdir(tmp_path)
    names = write_jsonl(tmp_path / "in.jsonl", 5)
    server.batches.default_plan = BatchPlan(polls=12)
    with Process(batch_args(server, *BATCH, "--batch-lines", "2"), tmp_path) as proc:
        wait_until(lambda: len(server.batches.created) == 3, proc, what="the batches")
        time.sleep(0.05)
        proc.signal(signal.SIGKILL)
        proc.wait()
    parts = Journal.read_batch_parts(wd.out)
    assert [p.state for p in parts] == ["submitted"] * 3
    done = run(batch_args(server, *BATCH, "--batch-lines", "2"), tmp_path)
    assert done.code == 0, done.stderr
    assert len(server.batches.created) == 3
    assert_each_once(wd.out, names)
    assert KEY not in wd.journal.read_text(errors="replace")


def test_write_requests_then_import_results_for_another_engine(
    server: FakeOpenAIServer, tmp_path: Path
) -> None:
    from test_batch_files import engine

    wd = workdir(tmp_path)
    names = write_jsonl(tmp_path / "in.jsonl", 4)
    wrote = run([*batch_args(server), "--write-requests", "req.jsonl"], tmp_path)
    assert wrote.code == 0, wrote.stderr
    assert "wrote 4 requests to req.jsonl" in wrote.stderr
    assert server.requests == []
    engine(server, tmp_path / "req.jsonl", tmp_path / "res.jsonl", only=3)
    partial = run([*batch_args(server), "--import-results", "res.jsonl"], tmp_path)
    assert partial.code == 10, partial.stderr  # one record has no result yet
    assert "1 record needs another request" in partial.stderr
    assert len(assert_each_once_partial(wd.out)) == 3
    run([*batch_args(server), "--write-requests", "req.jsonl"], tmp_path)
    engine(server, tmp_path / "req.jsonl", tmp_path / "res.jsonl")
    done = run([*batch_args(server), "--import-results", "res.jsonl"], tmp_path)
    assert done.code == 0, done.stderr
    assert_each_once(wd.out, names)
    both = run([*batch_args(server), "--write-requests", "a", "--import-results", "res.jsonl"],
               tmp_path)  # fmt: skip
    assert both.code == 2 and "not both" in both.stderr
