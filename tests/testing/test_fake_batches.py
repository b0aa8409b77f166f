"""The fake server's Files API and Batch API, driven through the real openai SDK and plain HTTP."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any, Final

import httpx2
import openai
import pytest
from openai import OpenAI
from openai.types import Batch, Completion, CreateEmbeddingResponse
from openai.types.chat import ChatCompletion
from openai.types.responses import Response

from openai_structured.testing import (
    BatchPlan,
    CapturedRequest,
    FakeOpenAIServer,
    Fault,
    LineError,
    RateLimits,
    Reply,
)
from openai_structured.testing.__main__ import _parser, build_server

CHAT: Final = "/v1/chat/completions"


def line(
    custom_id: str,
    content: str = "hi",
    *,
    url: str = CHAT,
    model: str = "gpt-4o",
    **body: Any,
) -> dict[str, Any]:
    if url == "/v1/responses":
        payload: dict[str, Any] = {"model": model, "input": content}
    elif url == "/v1/embeddings":
        payload = {"model": model, "input": content}
    elif url == "/v1/completions":
        payload = {"model": model, "prompt": content}
    else:
        payload = {"model": model, "messages": [{"role": "user", "content": content}]}
    return {"custom_id": custom_id, "method": "POST", "url": url, "body": {**payload, **body}}


def jsonl(lines: Sequence[dict[str, Any] | str]) -> bytes:
    return "".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines).encode()


def records(client: OpenAI, file_id: str | None) -> list[dict[str, Any]]:
    assert file_id is not None
    return [json.loads(x) for x in client.files.content(file_id).text.splitlines()]


def submit(
    client: OpenAI, lines: Sequence[dict[str, Any] | str], endpoint: str = CHAT, **kwargs: Any
) -> Batch:
    file = client.files.create(file=("input.jsonl", jsonl(lines)), purpose="batch")
    return client.batches.create(
        input_file_id=file.id,
        endpoint=endpoint,  # type: ignore[arg-type]
        completion_window="24h",
        **kwargs,
    )


def echo(request: CapturedRequest) -> Reply:
    """Answer each line with the text of its prompt."""
    body = request.json
    text = body.get("input") or body["messages"][-1]["content"]
    return Reply.json({"echo": text})


@pytest.fixture
def client(server: FakeOpenAIServer) -> Iterator[OpenAI]:
    yield server.client(_strict_response_validation=True)


# -- files ----------------------------------------------------------------------------------


def test_files_upload_retrieve_list_content_delete(
    server: FakeOpenAIServer, client: OpenAI
) -> None:
    data = b'{"a": 1}\r\n\xff\xfe not utf-8\n'
    batch_file = client.files.create(file=("in.jsonl", data), purpose="batch")
    other = client.files.create(file=("notes.txt", b"x"), purpose="user_data")
    assert batch_file.model_dump() == {
        "id": batch_file.id,
        "object": "file",
        "bytes": len(data),
        "created_at": batch_file.created_at,
        "filename": "in.jsonl",
        "purpose": "batch",
        "status": "processed",
        "expires_at": None,
        "status_details": None,
    }
    assert batch_file.id.startswith("file-") and abs(batch_file.created_at - time.time()) < 5
    assert client.files.retrieve(batch_file.id) == batch_file
    assert client.files.content(batch_file.id).content == data  # byte for byte
    assert [f.id for f in client.files.list()] == [other.id, batch_file.id]  # newest first
    assert [f.id for f in client.files.list(purpose="batch")] == [batch_file.id]
    assert [f.id for f in client.files.list(order="asc")] == [batch_file.id, other.id]
    page = client.files.list(limit=1)
    assert [f.id for f in page.data] == [other.id] and page.has_more is True
    assert server.batches.file_content(batch_file.id) == data

    deleted = client.files.delete(batch_file.id)
    assert deleted.model_dump() == {"id": batch_file.id, "object": "file", "deleted": True}
    for call in (client.files.retrieve, client.files.content, client.files.delete):
        with pytest.raises(openai.NotFoundError) as err:
            call(batch_file.id)
        body = err.value.response.json()
        assert body["error"]["message"] == f"No such File object: {batch_file.id}"
        assert body["error"]["type"] == "invalid_request_error"
    assert server.batches.file_ids == [other.id]


def test_files_expires_after(client: OpenAI) -> None:
    file = client.files.create(
        file=("in.jsonl", b"{}\n"),
        purpose="batch",
        expires_after={"anchor": "created_at", "seconds": 3600},
    )
    assert file.expires_at == file.created_at + 3600


def test_upload_rejects_an_unknown_purpose_and_a_missing_file(
    server: FakeOpenAIServer, client: OpenAI
) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        client.files.create(file=("a.jsonl", b"{}"), purpose="batch_output")  # type: ignore[arg-type]
    error = err.value.response.json()["error"]
    assert (error["param"], error["code"]) == ("purpose", "invalid_value")
    assert "'batch_output'" in error["message"]
    response = httpx2.post(
        f"{server.base_url}/files",
        files={"purpose": (None, "batch")},
        headers={"Authorization": "Bearer x"},
    )
    assert response.status_code == 400 and response.json()["error"]["param"] == "file"
    assert server.batches.file_ids == []


def test_plain_http_multipart_upload_and_raw_content(server: FakeOpenAIServer) -> None:
    content = jsonl([line("a")])
    uploaded = httpx2.post(
        f"{server.base_url}/files",
        data={"purpose": "batch"},
        files={"file": ("plain.jsonl", content, "application/jsonl")},
    ).json()
    assert uploaded["filename"] == "plain.jsonl" and uploaded["bytes"] == len(content)
    raw = httpx2.get(f"{server.base_url}/files/{uploaded['id']}/content")
    assert raw.status_code == 200 and raw.content == content
    assert raw.headers["content-type"] == "application/octet-stream"
    assert httpx2.put(f"{server.base_url}/files/{uploaded['id']}").json()["error"]["code"] == (
        "unknown_url"
    )


# -- the life cycle -------------------------------------------------------------------------


def test_polls_then_completed_with_every_batch_field(
    server: FakeOpenAIServer, client: OpenAI
) -> None:
    server.default_reply = Reply.json({"ok": True}).with_usage(10, 3, cached_tokens=2)
    server.batches.plan(BatchPlan(polls=2))
    created = submit(client, [line("a"), line("b")], metadata={"run": "r1"})
    assert set(created.model_dump()) == set(Batch.model_fields)
    assert created.id.startswith("batch_") and created.object == "batch"
    assert created.status == "validating"
    assert created.expires_at == created.created_at + 24 * 3600
    assert created.metadata == {"run": "r1"} and created.errors is None
    assert created.request_counts is not None and created.request_counts.total == 0
    seen = [client.batches.retrieve(created.id) for _ in range(3)]
    assert [b.status for b in seen] == ["in_progress", "in_progress", "completed"]
    assert seen[0].in_progress_at is not None and seen[0].completed_at is None
    assert seen[0].request_counts is not None and seen[0].request_counts.total == 2
    done = seen[-1]
    assert done.completed_at is not None and done.finalizing_at is not None
    assert (done.failed_at, done.expired_at, done.cancelled_at) == (None, None, None)
    assert done.request_counts is not None
    assert done.request_counts.model_dump() == {"total": 2, "completed": 2, "failed": 0}
    assert done.model == "gpt-4o" and done.error_file_id is None
    assert done.usage is not None
    assert (done.usage.input_tokens, done.usage.output_tokens, done.usage.total_tokens) == (
        20,
        6,
        26,
    )
    assert done.usage.input_tokens_details.cached_tokens == 4
    out = records(client, done.output_file_id)
    output_file = client.files.retrieve(done.output_file_id or "")
    assert output_file.purpose == "batch_output"
    assert output_file.filename == f"{done.id}_output.jsonl"
    for record in out:
        assert set(record) == {"id", "custom_id", "response", "error"}
        assert record["id"].startswith("batch_req_") and record["error"] is None
        assert record["response"]["status_code"] == 200
        assert record["response"]["request_id"].startswith("req_")
        completion = ChatCompletion.model_validate(record["response"]["body"])
        assert completion.choices[0].message.content == '{"ok":true}'
    assert sorted(r["custom_id"] for r in out) == ["a", "b"]
    # Later retrieves change nothing; the inspection helpers agree.
    assert client.batches.retrieve(done.id) == done
    assert server.batches.get(done.id) == done.model_dump(mode="json")
    assert server.batches.retrieves(done.id) == 4
    assert server.batches.created == [done.id]


def test_default_plan_ends_at_the_first_retrieve(server: FakeOpenAIServer, client: OpenAI) -> None:
    server.default_reply = Reply.json({"ok": True})
    batch = submit(client, [line("a")])
    assert batch.status == "validating"
    assert client.batches.retrieve(batch.id).status == "completed"
    assert server.batches.plan_for(batch.id) == BatchPlan()


def test_lines_go_through_the_script_in_file_order_and_come_back_shuffled(
    server: FakeOpenAIServer, client: OpenAI
) -> None:
    calls: list[CapturedRequest] = []

    def answer(request: CapturedRequest) -> Reply:
        calls.append(request)
        return echo(request)

    server.queue(Reply.text("first"), Reply.text("second"))
    server.default_reply = answer
    ids = [f"q{i}" for i in range(30)]
    batch = client.batches.retrieve(submit(client, [line(c, f"prompt {c}") for c in ids]).id)
    out = records(client, batch.output_file_id)
    assert [r["custom_id"] for r in out] != ids  # shuffled
    by_id = {r["custom_id"]: r["response"]["body"]["choices"][0]["message"]["content"] for r in out}
    assert by_id["q0"] == "first" and by_id["q1"] == "second"  # the queue first, in file order
    assert all(
        by_id[c] == json.dumps({"echo": f"prompt {c}"}, separators=(",", ":")) for c in ids[2:]
    )
    assert [r.json["messages"][0]["content"] for r in calls] == [f"prompt {c}" for c in ids[2:]]
    request = calls[0]
    assert (request.method, request.path, dict(request.headers)) == ("POST", CHAT, {})
    assert request.json == line("q2", "prompt q2")["body"]
    assert all(r.path != CHAT for r in server.requests)  # lines are not captured
    assert server.accepted_times == []

    # The order is seeded by the batch: the same on every run, and shuffle=False keeps it.
    server.batches.plan(BatchPlan(shuffle=False))
    kept = client.batches.retrieve(submit(client, [line(c) for c in ids]).id)
    assert [r["custom_id"] for r in records(client, kept.output_file_id)] == ids


async def test_async_client_end_to_end(server: FakeOpenAIServer) -> None:
    server.default_reply = echo
    server.batches.plan(BatchPlan(polls=1))
    async with server.async_client(_strict_response_validation=True) as client:
        file = await client.files.create(
            file=("in.jsonl", jsonl([line("x", "one"), line("y", "two")])), purpose="batch"
        )
        batch = await client.batches.create(
            input_file_id=file.id, endpoint=CHAT, completion_window="24h"
        )
        statuses = [batch.status]
        while batch.status not in ("completed", "failed", "expired", "cancelled"):
            batch = await client.batches.retrieve(batch.id)
            statuses.append(batch.status)
        assert statuses == ["validating", "in_progress", "completed"]
        assert batch.output_file_id is not None
        content = await client.files.content(batch.output_file_id)
        out = {json.loads(x)["custom_id"]: json.loads(x) for x in content.text.splitlines()}
        assert out["y"]["response"]["body"]["choices"][0]["message"]["content"] == (
            '{"echo":"two"}'
        )
        listed = [b.id async for b in client.batches.list()]
        assert listed == [batch.id]


def test_responses_embeddings_and_completions_lines(
    server: FakeOpenAIServer, client: OpenAI
) -> None:
    server.default_reply = echo
    url = "/v1/responses"
    lines = [line("r1", "alpha", url=url), line("r2", "beta", url=url, max_output_tokens=50)]
    batch = client.batches.retrieve(submit(client, lines, endpoint=url).id)
    assert batch.status == "completed" and batch.endpoint == url
    out = {r["custom_id"]: r for r in records(client, batch.output_file_id)}
    response = Response.model_validate(out["r2"]["response"]["body"])
    assert response.output_text == '{"echo":"beta"}' and response.max_output_tokens == 50
    assert batch.usage is not None and batch.usage.output_tokens > 0

    server.default_reply = Reply.json([0.25, -0.5])
    emb = client.batches.retrieve(
        submit(client, [line("e", "text", url="/v1/embeddings")], "/v1/embeddings").id
    )
    body = records(client, emb.output_file_id)[0]["response"]["body"]
    assert CreateEmbeddingResponse.model_validate(body).data[0].embedding == [0.25, -0.5]

    server.default_reply = Reply.length("partial")
    comp = client.batches.retrieve(
        submit(client, [line("c", "say", url="/v1/completions")], "/v1/completions").id
    )
    body = records(client, comp.output_file_id)[0]["response"]["body"]
    choice = Completion.model_validate(body).choices[0]
    assert (choice.text, choice.finish_reason) == ("partial", "length")


def test_faults_and_line_errors_go_to_the_error_file(
    server: FakeOpenAIServer, client: OpenAI
) -> None:
    def answer(request: CapturedRequest) -> Reply | LineError:
        if "responder" in request.json["messages"][0]["content"]:
            return LineError("request_timeout", "The request timed out.")
        return Reply.json({"ok": True})

    server.default_reply = answer
    server.queue(
        Reply.json({"n": 1}),
        Fault.status(500, message="boom"),
        LineError("server_error", "no answer"),
        LineError("upstream_error", "status zero", status_code=0),
        Fault.delay(0.0),  # timing faults mean nothing in a batch: the reply stands
        Fault.stream_error("mid-stream"),
    )
    lines = [line(f"l{i}") for i in range(6)] + [line("l6", "from the responder")]
    batch = client.batches.retrieve(submit(client, lines).id)
    assert batch.status == "completed"
    assert batch.request_counts is not None
    assert batch.request_counts.model_dump() == {"total": 7, "completed": 2, "failed": 5}
    out = {r["custom_id"]: r for r in records(client, batch.output_file_id)}
    errors = {r["custom_id"]: r for r in records(client, batch.error_file_id)}
    assert sorted(out) == ["l0", "l4"] and sorted(errors) == ["l1", "l2", "l3", "l5", "l6"]
    l1 = errors["l1"]
    assert l1["error"] is None and l1["response"]["status_code"] == 500
    assert l1["response"]["body"] == {
        "error": {"message": "boom", "type": "server_error", "param": None, "code": None}
    }
    assert errors["l2"] == {
        "id": errors["l2"]["id"],
        "custom_id": "l2",
        "response": None,
        "error": {"code": "server_error", "message": "no answer"},
    }
    l3 = errors["l3"]["response"]
    assert l3["status_code"] == 0 and l3["body"]["error"]["code"] == "upstream_error"
    assert l3["body"]["error"]["message"] == "status zero" and errors["l3"]["error"] is None
    assert errors["l5"]["response"]["body"]["error"]["message"] == "mid-stream"
    assert errors["l6"]["error"] == {"code": "request_timeout", "message": "The request timed out."}
    assert client.files.retrieve(batch.error_file_id or "").filename == f"{batch.id}_error.jsonl"


def test_unscripted_lines_and_choices_on_responses(
    server: FakeOpenAIServer, client: OpenAI
) -> None:
    batch = client.batches.retrieve(submit(client, [line("a")]).id)
    assert batch.output_file_id is None  # nothing succeeded: no output file
    (error,) = records(client, batch.error_file_id)
    assert error["response"]["status_code"] == 500
    assert "no scripted reply for batch line 'a'" in error["response"]["body"]["error"]["message"]

    server.queue(Reply.choices(Reply.text("x"), Reply.text("y")))
    url = "/v1/responses"
    batch = client.batches.retrieve(submit(client, [line("r", url=url)], endpoint=url).id)
    (error,) = records(client, batch.error_file_id)
    assert error["response"]["status_code"] == 400
    assert error["response"]["body"]["error"]["param"] == "n"


def test_a_line_error_on_a_live_request_is_a_500(server: FakeOpenAIServer, client: OpenAI) -> None:
    server.queue(LineError("x", "y"))
    with pytest.raises(openai.InternalServerError, match="LineError is for batch lines"):
        client.chat.completions.create(model="gpt-4o", messages=[])


def test_expired_keeps_the_done_lines_and_reports_the_rest(
    server: FakeOpenAIServer, client: OpenAI
) -> None:
    server.default_reply = Reply.json({"ok": True})
    server.batches.plan(BatchPlan(polls=1, end="expired", lines_done=2))
    batch = submit(client, [line(f"e{i}") for i in range(5)])
    assert client.batches.retrieve(batch.id).status == "in_progress"
    batch = client.batches.retrieve(batch.id)
    assert batch.status == "expired" and batch.expired_at is not None
    assert batch.completed_at is None
    assert batch.request_counts is not None
    assert batch.request_counts.model_dump() == {"total": 5, "completed": 2, "failed": 0}
    assert sorted(r["custom_id"] for r in records(client, batch.output_file_id)) == ["e0", "e1"]
    errors = records(client, batch.error_file_id)
    assert sorted(r["custom_id"] for r in errors) == ["e2", "e3", "e4"]
    for record in errors:
        assert record["response"] is None
        assert record["error"] == {
            "code": "batch_expired",
            "message": "This request could not be executed before the completion window expired.",
        }


def test_cancelled_elsewhere(server: FakeOpenAIServer, client: OpenAI) -> None:
    server.default_reply = Reply.json({"ok": True})
    server.batches.plan(BatchPlan(end="cancelled", lines_done=1))
    batch = client.batches.retrieve(submit(client, [line("a"), line("b")]).id)
    assert batch.status == "cancelled"
    assert batch.cancelled_at is not None and batch.cancelling_at is not None
    assert [r["custom_id"] for r in records(client, batch.output_file_id)] == ["a"]
    (skipped,) = records(client, batch.error_file_id)
    assert skipped["custom_id"] == "b" and skipped["error"]["code"] == "batch_cancelled"


def test_client_cancel(server: FakeOpenAIServer, client: OpenAI) -> None:
    server.default_reply = Reply.json({"ok": True})
    server.batches.plan(BatchPlan(polls=5, lines_done=2))
    batch = submit(client, [line(f"c{i}") for i in range(4)])
    assert client.batches.retrieve(batch.id).status == "in_progress"
    cancelling = client.batches.cancel(batch.id)
    assert cancelling.status == "cancelling" and cancelling.cancelling_at is not None
    assert cancelling.output_file_id is None
    cancelled = client.batches.retrieve(batch.id)
    assert cancelled.status == "cancelled" and cancelled.cancelled_at is not None
    assert cancelled.request_counts is not None
    assert cancelled.request_counts.model_dump() == {"total": 4, "completed": 2, "failed": 0}
    assert sorted(r["custom_id"] for r in records(client, cancelled.output_file_id)) == ["c0", "c1"]
    assert len(records(client, cancelled.error_file_id)) == 2
    assert client.batches.cancel(batch.id).status == "cancelled"  # again: no change

    # Cancelled before it started: nothing ran.
    early = submit(client, [line("z")])
    assert client.batches.cancel(early.id).status == "cancelling"
    early = client.batches.retrieve(early.id)
    assert early.status == "cancelled" and early.in_progress_at is None
    assert (early.output_file_id, early.error_file_id) == (None, None)
    assert early.request_counts is not None and early.request_counts.total == 0

    done = client.batches.retrieve(submit(client, [line("d")]).id)
    with pytest.raises(openai.ConflictError, match="Cannot cancel a batch with status 'completed'"):
        client.batches.cancel(done.id)


def test_completed_without_an_output_file(server: FakeOpenAIServer, client: OpenAI) -> None:
    server.queue(Reply.json({"ok": True}), Fault.status(400), Reply.json({"ok": True}))
    server.batches.plan(BatchPlan(output_file=False))
    batch = client.batches.retrieve(submit(client, [line("a"), line("b"), line("c")]).id)
    assert batch.status == "completed" and batch.output_file_id is None
    assert batch.request_counts is not None
    assert batch.request_counts.model_dump() == {"total": 3, "completed": 2, "failed": 1}
    assert [r["custom_id"] for r in records(client, batch.error_file_id)] == ["b"]


# -- validation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "code", "line_number"),
    [
        ([line("a"), "{not json", line("c")], "invalid_json_line", 2),
        ([line("a"), line("b"), line("a")], "duplicate_custom_id", 3),
        ([line("a"), line("b", url="/v1/responses")], "url_mismatch", 2),
        ([line("a"), line("b", model="gpt-4o-mini")], "model_mismatch", 2),
        ([line("a"), {"method": "POST", "url": CHAT, "body": {}}], "missing_required_parameter", 2),
        ([{**line("a"), "method": "GET"}], "invalid_value", 1),
        (["", "  "], "empty_file", None),
    ],
)
def test_bad_input_files_fail_with_line_numbers(
    server: FakeOpenAIServer,
    client: OpenAI,
    content: list[dict[str, Any] | str],
    code: str,
    line_number: int | None,
) -> None:
    server.default_reply = Reply.json({"ok": True})
    server.batches.plan(BatchPlan(polls=1))
    batch = submit(client, content)
    assert batch.status == "validating"
    assert client.batches.retrieve(batch.id).status == "validating"
    failed = client.batches.retrieve(batch.id)
    assert failed.status == "failed" and failed.failed_at is not None
    assert failed.in_progress_at is None and failed.output_file_id is None
    assert failed.errors is not None and failed.errors.object == "list"
    assert failed.errors.data is not None
    (error,) = failed.errors.data
    assert (error.code, error.line) == (code, line_number)
    assert error.message
    assert failed.request_counts is not None and failed.request_counts.total == 0
    assert server.stats()["batch_lines_processed"] == 0


def test_size_limits(server: FakeOpenAIServer, client: OpenAI) -> None:
    server.batches.max_lines = 3
    failed = client.batches.retrieve(submit(client, [line(f"t{i}") for i in range(4)]).id)
    assert failed.errors is not None and failed.errors.data is not None
    assert [(e.code, e.line) for e in failed.errors.data] == [("too_many_tasks", None)]
    server.batches.max_file_bytes = 100
    failed = client.batches.retrieve(submit(client, [line("big", "x" * 200)]).id)
    assert failed.errors is not None and failed.errors.data is not None
    assert [e.code for e in failed.errors.data] == ["file_too_large"]


def test_planned_failures(server: FakeOpenAIServer, client: OpenAI) -> None:
    error = {"code": "invalid_request", "message": "Bad line.", "line": 7}
    server.batches.plan(BatchPlan(validation_errors=[error]), BatchPlan(end="failed"))
    first = client.batches.retrieve(submit(client, [line("a")]).id)
    assert first.status == "failed" and first.errors is not None
    assert first.errors.model_dump()["data"] == [{**error, "param": None}]
    second = client.batches.retrieve(submit(client, [line("a")]).id)
    assert second.errors is not None and second.errors.data is not None
    assert second.errors.data[0].code == "token_limit_exceeded"


# -- create ---------------------------------------------------------------------------------


def test_create_rejects_bad_requests_synchronously(
    server: FakeOpenAIServer, client: OpenAI
) -> None:
    server.batches.plan(BatchPlan(polls=3))
    good = client.files.create(file=("in.jsonl", jsonl([line("a")])), purpose="batch")
    notes = client.files.create(file=("n.txt", jsonl([line("a")])), purpose="user_data")
    cases: list[tuple[type[openai.APIStatusError], dict[str, Any], str]] = [
        (openai.NotFoundError, {"input_file_id": "file-nope"}, "input_file_id"),
        (openai.BadRequestError, {"input_file_id": notes.id}, "input_file_id"),
        (openai.BadRequestError, {"completion_window": "48h"}, "completion_window"),
        (openai.BadRequestError, {"endpoint": "/v1/moderations"}, "endpoint"),
        (openai.BadRequestError, {"metadata": {"k": 1}}, "metadata"),
    ]
    for error_type, change, param in cases:
        args: dict[str, Any] = {
            "input_file_id": good.id,
            "endpoint": CHAT,
            "completion_window": "24h",
            **change,
        }
        with pytest.raises(error_type) as err:
            client.batches.create(**args)
        assert err.value.response.json()["error"]["param"] == param
    assert server.batches.created == [] and server.batches.pending_plans == 1


def test_create_error_creates_nothing_and_uses_up_its_plan(
    server: FakeOpenAIServer, client: OpenAI
) -> None:
    server.batches.plan(
        BatchPlan(create_error=500), BatchPlan(create_error=429), BatchPlan(polls=1)
    )
    file = client.files.create(file=("in.jsonl", jsonl([line("a")])), purpose="batch")
    args: dict[str, Any] = {"input_file_id": file.id, "endpoint": CHAT, "completion_window": "24h"}
    with pytest.raises(openai.InternalServerError):
        client.batches.create(**args)
    with pytest.raises(openai.RateLimitError):
        client.batches.create(**args)
    assert server.batches.created == []
    batch = client.batches.create(**args)
    assert server.batches.created == [batch.id]
    assert server.batches.plan_for(batch.id) == BatchPlan(polls=1)


def test_create_disconnect_creates_the_batch_but_drops_the_answer(
    server: FakeOpenAIServer, client: OpenAI
) -> None:
    server.default_reply = Reply.json({"ok": True})
    server.batches.plan(BatchPlan(create_disconnect=True))
    file = client.files.create(file=("in.jsonl", jsonl([line("a")])), purpose="batch")
    with pytest.raises(openai.APIConnectionError):
        client.batches.create(
            input_file_id=file.id,
            endpoint=CHAT,
            completion_window="24h",
            metadata={"job": "nightly-7"},
        )
    (found,) = [b for b in client.batches.list() if (b.metadata or {}).get("job") == "nightly-7"]
    assert found.status == "validating" and found.input_file_id == file.id
    assert client.batches.retrieve(found.id).status == "completed"


# -- listing, auth, control -----------------------------------------------------------------


def test_list_pagination(server: FakeOpenAIServer, client: OpenAI) -> None:
    file = client.files.create(file=("in.jsonl", jsonl([line("a")])), purpose="batch")
    ids = [
        client.batches.create(input_file_id=file.id, endpoint=CHAT, completion_window="24h").id
        for _ in range(5)
    ]
    newest_first = ids[::-1]
    page = client.batches.list(limit=2)
    assert [b.id for b in page.data] == newest_first[:2] and page.has_more is True
    raw = httpx2.get(f"{server.base_url}/batches?limit=2&after={newest_first[1]}").json()
    assert [b["id"] for b in raw["data"]] == newest_first[2:4]
    assert (raw["object"], raw["first_id"], raw["last_id"], raw["has_more"]) == (
        "list",
        newest_first[2],
        newest_first[3],
        True,
    )
    last = client.batches.list(limit=2, after=newest_first[3])
    assert [b.id for b in last.data] == newest_first[4:] and last.has_more is False
    assert [b.id for b in client.batches.list(limit=2)] == newest_first  # auto-pagination
    # Listing does not advance a batch (retrieves do).
    assert {b.status for b in client.batches.list()} == {"validating"}
    with pytest.raises(openai.BadRequestError):
        client.batches.list(limit=101)
    with pytest.raises(openai.NotFoundError, match="No batch found"):
        client.batches.retrieve("batch_nope")


def test_auth_is_required_when_set() -> None:
    with FakeOpenAIServer(require_api_key="sk-right") as server:
        wrong = server.client(api_key="sk-wrong")
        with pytest.raises(openai.AuthenticationError):
            wrong.files.create(file=("in.jsonl", jsonl([line("a")])), purpose="batch")
        with pytest.raises(openai.AuthenticationError):
            wrong.batches.list()
        assert server.batches.file_ids == []
        right = server.client(api_key="sk-right")
        file = right.files.create(file=("in.jsonl", jsonl([line("a")])), purpose="batch")
        assert right.batches.create(input_file_id=file.id, endpoint=CHAT, completion_window="24h")


def test_rate_limits_and_latency_do_not_apply_to_batch_lines() -> None:
    with FakeOpenAIServer(
        default_reply=Reply.json({"ok": True}),
        rate_limits=RateLimits(requests_per_minute=1),
        latency=5.0,
    ) as server:
        client = server.client()
        start = time.monotonic()
        batch = client.batches.retrieve(submit(client, [line(f"r{i}") for i in range(20)]).id)
        assert time.monotonic() - start < 4.0  # 20 lines at 5 s each would take 100 s
        assert batch.request_counts is not None and batch.request_counts.completed == 20
        assert server.rate_limited == 0 and server.accepted_times == []


def test_seconds_plan_with_a_controlled_clock(server: FakeOpenAIServer, client: OpenAI) -> None:
    now = [1_000_000.0]
    server.batches.clock = lambda: now[0]
    server.default_reply = Reply.json({"ok": True})
    server.batches.plan(BatchPlan(seconds=60))
    batch = submit(client, [line("a")])
    assert batch.created_at == 1_000_000
    now[0] += 30
    assert client.batches.retrieve(batch.id).status == "in_progress"
    assert client.batches.retrieve(batch.id).status == "in_progress"
    now[0] += 30
    assert [b.status for b in client.batches.list()] == ["completed"]  # a list sees it too
    assert client.batches.retrieve(batch.id).completed_at == 1_000_060


def test_control_endpoints_stats_and_reset(server: FakeOpenAIServer, client: OpenAI) -> None:
    url = server.url
    answer = httpx2.post(f"{url}/_fake/batch-plan", json=[{"polls": 1}, {"end": "expired"}])
    assert answer.json() == {"pending_plans": 2}
    assert server.batches.pending_plans == 2
    bad = httpx2.post(f"{url}/_fake/batch-plan", json={"polls": -1})
    assert bad.status_code == 400
    queued = httpx2.post(
        f"{url}/_fake/queue",
        json=[{"line_error": {"code": "c", "message": "m", "status_code": 0}}, {"json": {"a": 1}}],
    )
    assert queued.json() == {"pending": 2}
    batch = submit(client, [line("a"), line("b")])
    client.batches.retrieve(batch.id)
    batch = client.batches.retrieve(batch.id)
    assert batch.request_counts is not None
    assert (batch.request_counts.completed, batch.request_counts.failed) == (1, 1)
    stats = httpx2.get(f"{url}/_fake/stats").json()
    assert (stats["files"], stats["batches_created"], stats["batch_lines_processed"]) == (3, 1, 2)

    server.reset()
    assert server.batches.created == [] and server.batches.file_ids == []
    assert server.batches.pending_plans == 0
    assert server.stats()["batch_lines_processed"] == 0
    with pytest.raises(openai.NotFoundError):
        client.batches.retrieve(batch.id)


def test_command_line_default_plan() -> None:
    server = build_server(_parser().parse_args(["--batch-polls", "3"]))
    assert server.batches.default_plan == BatchPlan(polls=3)
    server = build_server(_parser().parse_args(["--batch-seconds", "1.5"]))
    assert server.batches.default_plan == BatchPlan(seconds=1.5)


def test_batch_plan_checks_its_fields() -> None:
    assert BatchPlan(validation_errors=[{"code": "x", "message": "y"}]).end == "failed"
    assert BatchPlan.from_dict({"polls": 2, "end": "expired"}) == BatchPlan(polls=2, end="expired")
    for bad in (
        {"polls": -1},
        {"seconds": -1.0},
        {"end": "done"},
        {"lines_done": -2},
        {"create_error": 200},
        {"create_error": 500, "create_disconnect": True},
        {"end": "expired", "validation_errors": [{"code": "x"}]},
        {"nope": 1},
    ):
        with pytest.raises(ValueError):
            BatchPlan.from_dict(bad)
    with pytest.raises(TypeError):
        FakeOpenAIServer().batches.plan("polls=1")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        LineError("c", "m", status_code=700)


def test_twenty_thousand_lines(server: FakeOpenAIServer, client: OpenAI) -> None:
    server.default_reply = Reply.json({"label": "ok"})
    n = 20_000
    batch = client.batches.retrieve(
        submit(client, [line(f"id-{i}", f"text {i}") for i in range(n)]).id
    )
    assert batch.status == "completed"
    assert batch.request_counts is not None
    assert batch.request_counts.model_dump() == {"total": n, "completed": n, "failed": 0}
    assert batch.output_file_id is not None
    text = client.files.content(batch.output_file_id).text
    ids = [re.search(r'"custom_id":"([^"]+)"', x).group(1) for x in text.splitlines()]  # type: ignore[union-attr]
    assert len(ids) == n and set(ids) == {f"id-{i}" for i in range(n)}
    assert server.stats()["batch_lines_processed"] == n


def test_concurrent_clients(server: FakeOpenAIServer) -> None:
    server.default_reply = Reply.json({"ok": True})
    server.batches.default_plan = BatchPlan(polls=2)
    found: list[tuple[str, str]] = []
    failures: list[BaseException] = []

    def run(k: int) -> None:
        try:
            client = server.client()
            batch = submit(client, [line(f"t{k}-{i}") for i in range(50)])
            while batch.status != "completed":
                batch = client.batches.retrieve(batch.id)
            assert batch.request_counts is not None and batch.request_counts.completed == 50
            found.append((batch.id, batch.output_file_id or ""))
        except BaseException as exc:  # reported below
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    assert len({b for b, _ in found}) == 8 and len({f for _, f in found}) == 8
    assert server.stats()["batch_lines_processed"] == 400
