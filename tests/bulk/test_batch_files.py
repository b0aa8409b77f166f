"""Batch files for another engine: ``BatchFiles(write_requests=...)`` writes the OpenAI batch
format (what ``vllm run-batch`` reads), ``BatchFiles(import_results=...)`` decodes the result
file it writes. The engine here is a small stand-in for ``vllm run-batch``: it sends each
request line to the loopback server and writes the result lines in the OpenAI batch output
format, in an order of its own."""

from __future__ import annotations

import json
import random
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_batch_backend import SCHEMA, all_ok, answer, number_of, records

from openai_structured.bulk import BatchFiles, BulkRun, Outcome
from openai_structured.testing import CapturedRequest, FakeOpenAIServer, Reply

MODEL = "gpt-4o-mini"


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as srv:
        srv.default_reply = answer
        yield srv


def files_run(out: Path, **kwargs: Any) -> BulkRun:
    return BulkRun(
        model=MODEL, schema=SCHEMA, request=lambda r: {"user_prompt": f"record {r['n']}"},
        output=out, **kwargs,
    )  # fmt: skip


def write(out: Path, requests: Path, n: int, **kwargs: Any) -> list[Outcome]:
    return list(files_run(out, backend=BatchFiles(write_requests=requests), **kwargs).run(
        records(n)
    ))  # fmt: skip


def import_(out: Path, results: Path, n: int, **kwargs: Any) -> tuple[list[Outcome], BulkRun]:
    run = files_run(out, backend=BatchFiles(import_results=results), **kwargs)
    return list(run.run(records(n))), run


def engine(server: FakeOpenAIServer, requests: Path, results: Path, only: int | None = None) -> int:
    """``vllm run-batch -i requests -o results``, against the loopback server."""
    lines = [json.loads(line) for line in requests.read_text().splitlines()]
    if only is not None:
        lines = lines[:only]
    out = []
    for n, line in enumerate(lines):
        assert line["method"] == "POST"
        sent = urllib.request.Request(
            server.url + line["url"], data=json.dumps(line["body"]).encode(),
            headers={"Content-Type": "application/json", "Authorization": "Bearer x"},
        )  # fmt: skip
        with urllib.request.urlopen(sent) as got:
            status, body = got.status, json.loads(got.read())
        out.append({"id": f"vllm-{n}", "custom_id": line["custom_id"],
                    "response": {"status_code": status, "request_id": f"r{n}", "body": body},
                    "error": None})  # fmt: skip
    random.Random(7).shuffle(out)
    results.write_text("".join(json.dumps(o) + "\n" for o in out))
    return len(out)


def test_write_then_import_fills_the_output_and_sends_nothing_itself(
    server: FakeOpenAIServer, tmp_path: Path
) -> None:
    out, req, res = tmp_path / "out.jsonl", tmp_path / "req.jsonl", tmp_path / "res.jsonl"
    assert write(out, req, 5) == []
    assert server.requests == [] and out.read_text() == ""
    lines = [json.loads(line) for line in req.read_text().splitlines()]
    assert len(lines) == 5
    assert {line["url"] for line in lines} == {"/v1/chat/completions"}
    assert engine(server, req, res) == 5
    outcomes, run = import_(out, res, 5)
    assert sorted(o.id for o in outcomes) == list(range(5)) and all(o.ok for o in outcomes)
    assert {o.key for o in outcomes} == {line["custom_id"] for line in lines}
    all_ok(out, 5)
    assert run.waiting == 0
    assert run.notes == [f"imported 5 result lines from {res}"]
    assert len(server.requests) == 5  # only the engine's


def test_records_without_a_result_line_are_written_again_until_answered(
    server: FakeOpenAIServer, tmp_path: Path
) -> None:
    out, req, res = tmp_path / "out.jsonl", tmp_path / "req.jsonl", tmp_path / "res.jsonl"
    write(out, req, 6)
    engine(server, req, res, only=4)
    outcomes, run = import_(out, res, 6)
    assert len(outcomes) == 4 and run.waiting == 2
    assert any("2 records need another request" in note for note in run.notes)
    write(out, req, 6)
    assert len(req.read_text().splitlines()) == 2
    engine(server, req, res)
    outcomes, run = import_(out, res, 6)
    assert run.waiting == 0
    assert sum(not o.resumed for o in outcomes) == 2
    all_ok(out, 6)


def test_re_asks_take_one_more_round(server: FakeOpenAIServer, tmp_path: Path) -> None:
    def answers(request: CapturedRequest) -> Reply:
        if len(request.json["messages"]) == 1 and number_of(request) == 1:
            return Reply.json({"n": "wrong"})
        return answer(request)

    server.default_reply = answers
    out, req, res = tmp_path / "out.jsonl", tmp_path / "req.jsonl", tmp_path / "res.jsonl"
    write(out, req, 3, max_validation_retries=1)
    engine(server, req, res)
    outcomes, run = import_(out, res, 3, max_validation_retries=1)
    assert len(outcomes) == 2 and run.waiting == 1
    write(out, req, 3, max_validation_retries=1)
    (line,) = [json.loads(x) for x in req.read_text().splitlines()]
    assert line["custom_id"].endswith("~2")
    assert line["body"]["messages"][1]["role"] == "assistant"
    engine(server, req, res)
    outcomes, run = import_(out, res, 3, max_validation_retries=1)
    (reasked,) = [o for o in outcomes if not o.resumed]
    assert reasked.id == 1 and reasked.attempts == 2
    all_ok(out, 3)


def test_result_lines_of_other_requests_are_left_out_and_counted(
    server: FakeOpenAIServer, tmp_path: Path
) -> None:
    out, req, res = tmp_path / "out.jsonl", tmp_path / "req.jsonl", tmp_path / "res.jsonl"
    write(out, req, 2)
    engine(server, req, res)
    stranger = {"custom_id": "not-ours", "response": {"status_code": 200, "body": {}}}
    res.write_text(res.read_text() + json.dumps(stranger) + "\n")
    _, run = import_(out, res, 2)
    assert any("1 line of" in note and "match no request" in note for note in run.notes)
    all_ok(out, 2)


def test_an_error_line_from_the_engine_is_the_records_error(
    server: FakeOpenAIServer, tmp_path: Path
) -> None:
    out, req, res = tmp_path / "out.jsonl", tmp_path / "req.jsonl", tmp_path / "res.jsonl"
    write(out, req, 2)
    lines = [json.loads(x) for x in req.read_text().splitlines()]
    bad = {
        "custom_id": lines[0]["custom_id"],
        "response": {
            "status_code": 400,
            "body": {"error": {"message": "context too long", "code": "context_length_exceeded"}},
        },
    }
    res.write_text(json.dumps(bad) + "\n")
    outcomes, run = import_(out, res, 2)
    (failed,) = outcomes
    assert not failed.ok and "context too long" in str(failed.error)
    assert run.waiting == 1  # the other one has no line yet


def test_a_results_file_that_is_not_batch_results_is_a_clear_error(tmp_path: Path) -> None:
    out, req, res = tmp_path / "out.jsonl", tmp_path / "req.jsonl", tmp_path / "res.jsonl"
    write(out, req, 1)
    res.write_text("this is not json\n")
    with pytest.raises(Exception, match=r"res.jsonl line 1 is not a batch result line"):
        import_(out, res, 1)
    assert out.read_text() == ""


def test_batch_files_need_one_direction() -> None:
    with pytest.raises(ValueError, match="one of them"):
        BatchFiles()
