"""The bulk journal: exactly-once output across SIGKILL, resume, the lock, superseding, errors.

The crash tests run ``journal_worker.py`` in a subprocess and kill it (it kills itself at exact
points of the protocol, or the test kills it by time), then resume in this process and check
that every id is in the output exactly once and that records finished before the kill were not
requested again.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from journal_worker import key_of, result_of

from openai_structured.bulk._journal import (
    SCHEMA_VERSION,
    Journal,
    JournalCorruptError,
    JournalError,
    JournalLockedError,
    JournalVersionError,
    OutputExistsError,
    OutputPathError,
    record_key,
)
from openai_structured.errors import OpenAIClientError

WORKER = Path(__file__).with_name("journal_worker.py")
CANARY = "sk-proj-CANARYcanary0123456789abcdefXYZ"


# --- helpers -----------------------------------------------------------------------------------


@pytest.fixture
def out(tmp_path: Path) -> Path:
    return tmp_path / "out.jsonl"


def lines_of(path: Path) -> list[dict[str, Any]]:
    """The output's lines, parsed; it must end with a newline (no torn line)."""
    data = path.read_bytes()
    assert data == b"" or data.endswith(b"\n"), data[-80:]
    return [json.loads(line) for line in data.split(b"\n")[:-1]]


def assert_exactly_once(path: Path, ids: range, variant: str = "a") -> None:
    lines = lines_of(path)
    counts = Counter(line["id"] for line in lines)
    assert set(counts) == set(ids)
    assert [i for i, n in counts.items() if n != 1] == []
    for line in lines:
        assert line["result"] == result_of(line["id"], variant)


def worker(out: Path, *args: str | int, timeout: float = 30) -> tuple[int, set[int]]:
    """Run the worker to its end (or its self-kill): (return code, ids it reported done)."""
    proc = subprocess.run(
        [sys.executable, str(WORKER), str(out), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return proc.returncode, done_ids(proc.stdout)


def done_ids(stdout: str) -> set[int]:
    return {int(line.split()[1]) for line in stdout.splitlines() if line.startswith("done ")}


def resume(out: Path, count: int, variant: str = "a", **kw: Any) -> tuple[Journal, list[int]]:
    """Reopen and finish every record not done, like the runner; (journal closed, requested)."""
    journal = Journal.open(out, **kw)
    requested = []
    with journal:
        for i in range(count):
            key = key_of(i, variant)
            if not journal.is_done(i, key):
                requested.append(i)
                journal.record_ok(i, key, result_of(i, variant), prompt_tokens=10)
    return journal, requested


def crash(journal: Journal) -> None:
    """What SIGKILL leaves of an open journal in this process: descriptors closed, nothing else."""
    journal._db.close()
    os.close(journal._out_fd)
    os.close(journal._lock_fd)
    journal._closed = True


def fill(out: Path, ids: range, variant: str = "a") -> None:
    with Journal.open(out) as journal:
        for i in ids:
            journal.record_ok(i, key_of(i, variant), result_of(i, variant))


# --- record_key --------------------------------------------------------------------------------

MESSAGES = [{"role": "system", "content": "Extract."}, {"role": "user", "content": "Ada, 1815 é"}]
SCHEMA = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
PARAMS = {"temperature": 0.2, "max_output_tokens": 100}


def test_record_key_has_a_fixed_value_so_journals_stay_valid_across_versions() -> None:
    # Changing the canonical form makes every existing journal's records new (requested again):
    # this value changes only on purpose.
    key = record_key("gpt-4o", PARAMS, SCHEMA, MESSAGES)
    assert key == "b8a057883441a4bc6cc08032c86f6a26a1f2ebac18429d5dd2e5b02acb2dffd0"


def test_record_key_ignores_dict_order() -> None:
    params = dict(reversed(PARAMS.items()))
    schema = {"required": ["name"], "properties": {"name": {"type": "string"}}, "type": "object"}
    messages = [{"content": m["content"], "role": m["role"]} for m in MESSAGES]
    assert record_key("gpt-4o", params, schema, messages) == record_key(
        "gpt-4o", PARAMS, SCHEMA, MESSAGES
    )


@pytest.mark.parametrize(
    "change",
    [
        {"model": "gpt-4o-mini"},
        {"params": {**PARAMS, "temperature": 0.3}},
        {"params": {**PARAMS, "seed": 1}},
        {"params": {**PARAMS, "max_output_tokens": 100.0}},  # what is sent differs
        {"schema": {**SCHEMA, "required": []}},
        {"messages": [MESSAGES[0], {"role": "user", "content": "Ada, 1816 é"}]},
        {"messages": MESSAGES[1:]},
    ],
    ids=["model", "param value", "param added", "int vs float", "schema", "prompt", "messages"],
)
def test_record_key_changes_with_any_part_of_the_request(change: dict[str, Any]) -> None:
    parts: dict[str, Any] = {
        "model": "gpt-4o", "params": PARAMS, "schema": SCHEMA, "messages": MESSAGES
    }  # fmt: skip
    assert record_key(**{**parts, **change}) != record_key(**parts)


def test_record_key_refuses_client_settings_and_values_that_are_not_json() -> None:
    with pytest.raises(ValueError, match="api_key is a client setting"):
        record_key("gpt-4o", {"api_key": CANARY}, SCHEMA, MESSAGES)
    with pytest.raises(ValueError, match="extra_headers"):
        record_key("gpt-4o", {"extra_headers": {"Authorization": "Bearer x"}}, SCHEMA, MESSAGES)
    with pytest.raises(ValueError, match="NaN"):
        record_key("gpt-4o", {"temperature": float("nan")}, SCHEMA, MESSAGES)
    with pytest.raises(TypeError):
        record_key("gpt-4o", PARAMS, SCHEMA, [object()])


# --- the basic protocol ------------------------------------------------------------------------


def test_each_finished_record_is_one_line_and_is_done_on_reopen(out: Path) -> None:
    with Journal.open(out) as journal:
        assert journal.resumed.records == 0
        journal.record_ok(1, "k1", {"name": "Ada"}, prompt_tokens=5, completion_tokens=2)
        journal.record_failed(2, "k2", "RateLimitError", "slow down", attempts=3)
        journal.record_ok("1", "k1", [1, 2])  # the string id "1" is not the int id 1
        assert journal.status(1, "k1") == "ok"
        assert journal.status(2, "k2") == "failed"
        assert journal.status(1, "other key") is None
        assert out.read_text().count("\n") == 3  # written as it goes, not at close
    assert lines_of(out) == [
        {"id": 1, "result": {"name": "Ada"}},
        {"id": 2, "error": {"type": "RateLimitError", "message": "slow down"}},
        {"id": "1", "result": [1, 2]},
    ]
    with Journal.open(out) as journal:
        assert journal.resumed.records == 3
        assert journal.is_done(1, "k1") and journal.is_done(2, "k2") and journal.is_done("1", "k1")
        assert not journal.is_done("2", "k2")
        assert list(journal.failed_keys()) == [(2, "k2")]


def test_record_ids_must_be_str_or_int_and_keys_non_empty(out: Path) -> None:
    with Journal.open(out) as journal:
        with pytest.raises(TypeError):
            journal.record_ok(True, "k", 1)
        with pytest.raises(TypeError):
            journal.is_done(1.5, "k")  # type: ignore[arg-type]
        with pytest.raises(ValueError):
            journal.record_ok(1, "", 1)
        with pytest.raises(ValueError):  # NaN is not JSON: never in the output
            journal.record_ok(1, "k", float("nan"))
        journal.record_ok(1, "k", 1)  # the refusals left the journal usable
    assert lines_of(out) == [{"id": 1, "result": 1}]


def test_secrets_in_error_messages_and_params_never_reach_the_files(out: Path) -> None:
    with Journal.open(out, params={"model": "gpt-4o", "api_key": CANARY}) as journal:
        journal.record_failed(1, "k", "AuthenticationError", f"Incorrect API key: {CANARY}")
    files = [p for p in out.parent.iterdir() if p.is_file()]
    assert len(files) >= 3
    for path in files:
        assert CANARY.encode() not in path.read_bytes(), path
    assert "Incorrect API key" in lines_of(out)[0]["error"]["message"]


def test_the_output_is_written_again_from_the_journal_when_deleted(out: Path) -> None:
    fill(out, range(5))
    before = out.read_bytes()
    out.unlink()
    journal, requested = resume(out, 5)
    assert requested == []
    assert journal.resumed.rebuilt and journal.resumed.records == 5
    assert out.read_bytes() == before


# --- crashes (real processes, SIGKILL) ----------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "at", "appended", "torn"),
    [
        ("after-records", 7, 0, False),
        ("before-append", 8, 1, False),  # between commit and write
        ("torn", 8, 1, True),  # in the middle of the write
        ("after-append", 8, 0, False),  # after the write, before record_*() returned
    ],
)
def test_sigkill_at_each_step_loses_nothing_and_duplicates_nothing(
    out: Path, mode: str, at: int, appended: int, torn: bool
) -> None:
    code, done = worker(out, "--count", 20, "--crash", mode, "--at", at)
    assert code == -signal.SIGKILL
    assert len(done) == 7 if mode == "after-records" else at - 1

    journal, requested = resume(out, 20)

    assert journal.resumed.appended == appended
    assert (journal.resumed.torn_bytes > 0) is torn
    assert not journal.resumed.rebuilt
    assert set(requested).isdisjoint(done)  # finished before the kill: not requested again
    in_flight = set(range(20)) - done - set(requested)
    assert len(in_flight) == (0 if mode == "after-records" else 1)  # journaled, then killed
    assert_exactly_once(out, range(20))


def test_sigkill_at_random_moments_over_several_runs(out: Path) -> None:
    finished: set[int] = set()
    for delay in (0.0, 0.03, 0.08):
        proc = subprocess.Popen(
            [sys.executable, str(WORKER), str(out), "--count", "100000"],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        first = proc.stdout.readline()  # the worker is recording
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        rest = proc.stdout.read()
        proc.wait()
        assert proc.returncode == -signal.SIGKILL
        done = done_ids(first + rest)
        assert done and done.isdisjoint(finished)  # never requested twice
        finished |= done
    count = max(finished) + 50
    _, requested = resume(out, count)
    assert set(requested).isdisjoint(finished)
    assert len(set(range(count)) - finished - set(requested)) <= 3  # one in flight per kill
    assert_exactly_once(out, range(count))


@pytest.mark.parametrize("mode", ["before-replace", "after-replace"])
def test_sigkill_during_the_rewrite_leaves_one_line_per_id(out: Path, mode: str) -> None:
    fill(out, range(12))
    code, done = worker(out, "--count", 12, "--variant", "b", "--crash", mode)
    assert code == -signal.SIGKILL and done == set(range(12))  # the prompt changed: all new

    journal, requested = resume(out, 12, variant="b")

    assert requested == []
    assert journal.resumed.rebuilt
    assert_exactly_once(out, range(12), variant="b")
    assert not list(out.parent.glob(".*ostruct-tmp*"))


def test_a_write_error_keeps_the_answer_for_the_next_open(
    out: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = Journal.open(out)
    journal.record_ok(0, key_of(0), result_of(0))

    def full_disk(data: bytes) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(journal, "_append", full_disk)
    with pytest.raises(JournalError, match="safe in the journal"):
        journal.record_ok(1, key_of(1), result_of(1))
    with pytest.raises(JournalError, match="rerun the same command"):
        journal.record_ok(2, key_of(2), result_of(2))
    journal.close()

    journal, requested = resume(out, 3)
    assert requested == [2] and journal.resumed.appended == 1
    assert_exactly_once(out, range(3))


# --- torn and foreign lines --------------------------------------------------------------------


@pytest.mark.parametrize("cut", [1, 5, 30], ids=["only the newline", "5 bytes", "30 bytes"])
def test_a_torn_last_line_of_ours_is_completed_from_the_journal(out: Path, cut: int) -> None:
    fill(out, range(3))
    whole = out.read_bytes()
    out.write_bytes(whole[:-cut])  # the last write stopped short (a complete JSON line at cut=1)

    journal, requested = resume(out, 3)

    assert requested == []
    assert journal.resumed.appended == 1 and not journal.resumed.rebuilt
    assert journal.resumed.torn_bytes == len(whole.split(b"\n")[2]) + 1 - cut
    assert out.read_bytes() == whole


def test_a_torn_fragment_nobody_journaled_is_removed(out: Path) -> None:
    fill(out, range(3))
    whole = out.read_bytes()
    with out.open("ab") as f:
        f.write(b'{"id": 99, "res')

    journal, _ = resume(out, 3)

    assert journal.resumed.rebuilt and journal.resumed.torn_bytes == 15
    assert out.read_bytes() == whole


def test_foreign_lines_are_kept_and_junk_is_dropped(out: Path) -> None:
    fill(out, range(3))
    with out.open("ab") as f:
        f.write(b'{"id": "x", "result": "hand-written"}\nnot json\n{"no": "id"}\n\n')
        f.write(b'{"id": 100, "result": "no newline"}')  # complete JSON: kept, newline added

    journal, _ = resume(out, 3)

    assert journal.resumed.foreign_lines == 2 and journal.resumed.dropped_lines == 2
    assert journal.resumed.torn_bytes == 0
    lines = lines_of(out)
    assert [line["id"] for line in lines] == [0, 1, 2, "x", 100]
    # Still there after another open: the journal imported them.
    with Journal.open(out) as journal:
        assert journal.summary().foreign_lines == 2
        journal.record_ok(100, "k100", "from a run")  # a record with that id replaces it
    assert [line["id"] for line in lines_of(out)] == [0, 1, 2, "x", 100]
    assert lines_of(out)[-1] == {"id": 100, "result": "from a run"}


def test_line_separators_inside_results_do_not_split_lines(out: Path) -> None:
    text = "a\u2028b\u2029c\x85d\r\ne\n"
    with Journal.open(out) as journal:
        journal.record_ok(1, "k", text)
    with out.open("ab") as f:
        f.write(b'{"id": 2, "result": 2}\n')  # a foreign line: forces the full scan
    journal, _ = resume(out, 0)
    assert journal.resumed.foreign_lines == 1 and journal.resumed.dropped_lines == 0
    assert lines_of(out) == [{"id": 1, "result": text}, {"id": 2, "result": 2}]


# --- superseding -------------------------------------------------------------------------------


def test_a_changed_prompt_supersedes_the_old_line_and_close_rewrites(out: Path) -> None:
    with Journal.open(out) as journal:
        journal.record_ok(1, "prompt-a", "a")
        journal.record_ok(2, "k2", "two")
        journal.record_ok(1, "prompt-b", "b")
        assert len(lines_of(out)) == 3  # both lines until close
        assert journal.status(1, "prompt-a") is None
        assert journal.status(1, "prompt-b") == "ok"
        assert journal.summary().superseded == 1
    assert lines_of(out) == [{"id": 2, "result": "two"}, {"id": 1, "result": "b"}]
    with Journal.open(out) as journal:
        assert not journal.resumed.rebuilt
        journal.record_ok(3, "k3", "three")  # appends go on after a rewrite
    assert [line["id"] for line in lines_of(out)] == [2, 1, 3]


def test_retry_failed_replaces_the_error_line(out: Path) -> None:
    with Journal.open(out) as journal:
        journal.record_failed(1, "k1", "RateLimitError", "slow down")
        journal.record_ok(2, "k2", "two")
        journal.record_failed(3, "k3", "APITimeoutError", "timed out")
    with Journal.open(out) as journal:
        failed = list(journal.failed_keys())
        assert failed == [(1, "k1"), (3, "k3")]
        for record_id, key in journal.failed_keys():  # a snapshot: a retry failing again is
            journal.record_failed(record_id, key, "RateLimitError", "again")  # not yielded
        assert list(journal.failed_keys()) == failed
        journal.record_ok(1, "k1", "one")
        assert list(journal.failed_keys()) == [(3, "k3")]
    assert lines_of(out) == [
        {"id": 2, "result": "two"},
        {"id": 3, "error": {"type": "RateLimitError", "message": "again"}},
        {"id": 1, "result": "one"},
    ]


def test_superseded_lines_left_by_a_crash_are_removed_by_the_next_close(out: Path) -> None:
    journal = Journal.open(out)
    journal.record_ok(1, "a", "a")
    journal.record_ok(1, "b", "b")
    crash(journal)
    assert len(lines_of(out)) == 2
    with Journal.open(out) as journal:
        assert not journal.resumed.rebuilt
    assert lines_of(out) == [{"id": 1, "result": "b"}]


# --- the lock ----------------------------------------------------------------------------------


def test_a_second_run_is_refused_until_the_holder_is_killed(out: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, str(WORKER), str(out), "--hold"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "ready\n"
        with pytest.raises(JournalLockedError) as caught:
            Journal.open(out)
        assert caught.value.pid == holder.pid
        assert f"another ostruct batch run is writing {out} (pid {holder.pid})" in str(caught.value)
        assert "choose another --output" in str(caught.value)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    with Journal.open(out) as journal:  # the kernel released the lock
        journal.record_ok(1, "k", 1)


def test_the_lock_holds_within_one_process_and_through_symlinks(out: Path) -> None:
    link = out.parent / "alias.jsonl"
    link.symlink_to(out)
    with Journal.open(link) as journal:
        assert journal.output == out.resolve()
        assert journal.journal_path == out.resolve().with_name("out.jsonl.ostruct-journal")
        with pytest.raises(JournalLockedError, match=f"pid {os.getpid()}"):
            Journal.open(out)
    with Journal.open(out):
        pass


# --- hostile paths and files -------------------------------------------------------------------


def test_output_paths_that_cannot_be_used(tmp_path: Path) -> None:
    with pytest.raises(OutputPathError, match="is a directory"):
        Journal.open(tmp_path)
    with pytest.raises(OutputPathError, match="does not exist"):
        Journal.open(tmp_path / "missing" / "out.jsonl")
    existing = tmp_path / "mine.jsonl"
    existing.write_text('{"precious": true}\n')
    with pytest.raises(OutputExistsError, match="has no journal"):
        Journal.open(existing)
    assert existing.read_text() == '{"precious": true}\n'  # untouched, also on the next try
    with pytest.raises(OutputExistsError):
        Journal.open(existing)
    empty = tmp_path / "empty.jsonl"
    empty.touch()
    with Journal.open(empty):
        pass
    assert issubclass(OutputPathError, JournalError) and issubclass(JournalError, OpenAIClientError)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_an_unwritable_directory_is_a_typed_error(tmp_path: Path) -> None:
    locked = tmp_path / "ro"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        with pytest.raises(OutputPathError, match="writable"):
            Journal.open(locked / "out.jsonl")
    finally:
        locked.chmod(0o755)


def test_a_journal_that_is_not_ours_is_refused_with_what_to_do(out: Path) -> None:
    journal_path = out.with_name(out.name + ".ostruct-journal")
    journal_path.write_text("hello, I am a text file, not a database\n" * 100)
    with pytest.raises(JournalCorruptError, match=r"is not an ostruct journal.*remove it"):
        Journal.open(out)

    journal_path.unlink()
    other = sqlite3.connect(journal_path)
    other.execute("CREATE TABLE t (x)")
    other.commit()
    other.close()
    with pytest.raises(JournalCorruptError, match="SQLite file but not an ostruct journal"):
        Journal.open(out)

    journal_path.unlink()
    journal_path.mkdir()
    with pytest.raises(JournalCorruptError, match="is a directory"):
        Journal.open(out)


def test_a_journal_from_a_newer_version_is_refused(out: Path) -> None:
    fill(out, range(2))
    db = sqlite3.connect(out.with_name(out.name + ".ostruct-journal"))
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(JournalVersionError, match=r"newer ostruct.*upgrade") as caught:
        Journal.open(out)
    assert caught.value.version == SCHEMA_VERSION + 1


def test_a_stale_wal_of_a_deleted_journal_is_not_replayed(out: Path) -> None:
    journal = Journal.open(out)
    journal.record_ok(1, "k", 1)
    wal = out.with_name(out.name + ".ostruct-journal-wal").read_bytes()
    journal.close()
    out.with_name(out.name + ".ostruct-journal").unlink()
    out.unlink()
    out.with_name(out.name + ".ostruct-journal-wal").write_bytes(wal)
    with Journal.open(out) as journal:
        assert journal.resumed.records == 0 and not journal.is_done(1, "k")


# --- accounting --------------------------------------------------------------------------------


def test_summary_counts_the_output_and_this_run(out: Path) -> None:
    with Journal.open(out) as journal:
        journal.record_ok(1, "k1", 1, prompt_tokens=100, completion_tokens=20, cost=0.25)
        journal.record_failed(2, "k2", "RateLimitError", "x", prompt_tokens=0, attempts=4)
        journal.record_failed(3, "k3", "ValidationError", "y", prompt_tokens=50, cost=0.5)
        first = journal.summary()
    assert first.output == first.run
    assert (first.run.ok, first.run.failed, first.run.records) == (1, 2, 3)
    assert dict(first.run.errors) == {"RateLimitError": 1, "ValidationError": 1}
    assert (first.run.prompt_tokens, first.run.completion_tokens) == (150, 20)
    assert first.run.cost == pytest.approx(0.75) and first.run.attempts == 6
    assert first.elapsed > 0 and first.records_per_second == pytest.approx(3 / first.elapsed)

    with Journal.open(out) as journal:
        journal.record_ok(2, "k2", 2, prompt_tokens=10)  # --retry-failed
        second = journal.summary()
    assert (second.run.ok, second.run.failed, second.run.cost) == (1, 0, None)
    assert (second.output.ok, second.output.failed) == (2, 1)
    assert dict(second.output.errors) == {"ValidationError": 1}
    assert second.output.prompt_tokens == 160 and second.output.cost == pytest.approx(0.75)
    with pytest.raises(JournalError, match="closed"):
        journal.summary()


def test_runs_are_recorded_in_the_journal(out: Path) -> None:
    with Journal.open(out, params={"model": "gpt-4o", "concurrency": 8}) as journal:
        journal.record_ok(1, "k", 1, prompt_tokens=3)
    db = sqlite3.connect(out.with_name(out.name + ".ostruct-journal"))
    (row,) = db.execute("SELECT pid, params, ok, prompt_tokens, ended_at FROM runs").fetchall()
    db.close()
    assert row[0] == os.getpid() and json.loads(row[1]) == {"model": "gpt-4o", "concurrency": 8}
    assert row[2:4] == (1, 3) and row[4] is not None


def test_durable_mode_works_the_same(out: Path) -> None:
    with Journal.open(out, durable=True) as journal:
        journal.record_ok(1, "k", 1)
    resume(out, 0, durable=True)
    assert lines_of(out) == [{"id": 1, "result": 1}]


def test_a_lone_surrogate_in_a_result_is_written_as_an_escape(out: Path) -> None:
    value = json.loads('"bad \\ud800 text é"')  # a model can send this escape
    with Journal.open(out) as journal:
        journal.record_ok(1, "k", {"text": value})
        journal.record_ok(2, "k", "é")
    assert lines_of(out) == [{"id": 1, "result": {"text": value}}, {"id": 2, "result": "é"}]
    assert "é".encode() in out.read_bytes()  # only the line that needs it is escaped


def test_a_refused_output_gets_no_journal_file(tmp_path: Path) -> None:
    existing = tmp_path / "mine.jsonl"
    existing.write_text("data\n")
    with pytest.raises(OutputExistsError):
        Journal.open(existing)
    assert not existing.with_name("mine.jsonl.ostruct-journal").exists()
