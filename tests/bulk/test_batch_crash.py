"""kill -9 at every step of the Batch API protocol, then the same command again: no batch is
created twice, no request is answered (paid for) twice, every record is once in the output.

The child process (batch_crash_child.py) runs 6 records in 2 batch files of 3 and kills itself
with SIGKILL the N-th time it reaches a step; the loopback server lives in this process and
keeps its state across the crash, as the real Batch API would.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from openai_structured.bulk import Journal
from openai_structured.testing import BatchPlan, CapturedRequest, FakeOpenAIServer, Reply

CHILD = Path(__file__).with_name("batch_crash_child.py")
RECORDS, LINES = 6, 3
#: Every seam of the protocol, in the order a part goes through them. Each is killed the first
#: time it is reached (the first part); two more kill the second part's creation (the first
#: part then has a batch, the second only a file) and the middle of writing the records.
STEPS = (
    "upload",  # before uploading a file
    "uploaded",  # uploaded, file id not recorded yet
    "create",  # file id recorded, before creating the batch
    "created",  # created (the answer came back), batch id not recorded yet
    "submitted",  # batch id recorded
    "download",  # ended and downloaded, results not recorded yet
    "ended",  # results recorded, records not yet written
    "record",  # a record written to the journal and the output
)
CASES = [(step, 1) for step in STEPS] + [("created", 2), ("record", 4)]


def answer(request: CapturedRequest) -> Reply:
    text = request.json["messages"][-1]["content"]
    return Reply.json({"n": int(text.split()[1])})


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as srv:
        srv.default_reply = answer
        srv.batches.default_plan = BatchPlan(polls=1)
        yield srv


def child(server: FakeOpenAIServer, out: Path, *crash: str) -> subprocess.CompletedProcess[str]:
    args = [sys.executable, str(CHILD), server.base_url, str(out), str(RECORDS), str(LINES)]
    return subprocess.run([*args, *crash], capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize(("step", "occurrence"), CASES, ids=[f"{s}-{n}" for s, n in CASES])
def test_a_run_killed_at_any_step_resumes_without_paying_twice(
    server: FakeOpenAIServer, tmp_path: Path, step: str, occurrence: int
) -> None:
    out = tmp_path / "out.jsonl"
    killed = child(server, out, step, str(occurrence))
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    resumed = child(server, out)
    assert resumed.returncode == 0, resumed.stderr

    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(line["id"] for line in lines) == list(range(RECORDS))
    assert all(line["result"] == {"n": line["id"]} for line in lines)
    batches = [server.batches.get(b) for b in server.batches.created]
    inputs = Counter(b["input_file_id"] for b in batches)
    assert all(n == 1 for n in inputs.values()), "a file was made into two batches"
    assert len(batches) == RECORDS // LINES, "a batch was created twice"
    assert server.batches.stats()["batch_lines_processed"] == RECORDS, "a request paid twice"
    parts = Journal.read_batch_parts(out)
    assert [p.state for p in parts] == ["ended"] * len(parts)
    assert {p.batch_id for p in parts} == set(server.batches.created)
