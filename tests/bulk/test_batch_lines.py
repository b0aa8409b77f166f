"""The Batch API's file formats, sans-I/O: request lines, splitting, result lines."""

from __future__ import annotations

import json

import pytest

from openai_structured.bulk import BatchLineError
from openai_structured.bulk._batch_lines import (
    PartBuilder,
    body_of,
    body_text,
    parse_result_lines,
    request_line,
)
from openai_structured.errors import OpenAIClientError


def test_the_body_is_what_a_live_call_sends() -> None:
    kwargs = {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "hi"}],
        "timeout": 30,
        "extra_headers": {"X-Trace": "1"},
        "extra_body": {"service_tier": "flex"},
    }
    assert body_of(kwargs) == {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "hi"}],
        "service_tier": "flex",
    }


def test_a_request_line_is_the_openai_batch_format() -> None:
    body = body_text({"model": "m", "messages": [{"role": "user", "content": 'é \n "q"'}]})
    line = request_line('key"1', "/v1/chat/completions", body)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert json.loads(line) == {
        "custom_id": 'key"1',
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {"model": "m", "messages": [{"role": "user", "content": 'é \n "q"'}]},
    }


def test_parts_split_at_the_line_limit() -> None:
    builder = PartBuilder("/v1/chat/completions", max_lines=3)
    full = [builder.add(f"k{i}", "{}") for i in range(7)]
    sizes = [len(f) for f in full if f]
    assert sizes == [3, 3]
    assert [cid for cid, _, _ in builder.flush()] == ["k6"]
    assert builder.flush() == []


def test_parts_split_at_the_byte_limit() -> None:
    one = len(request_line("k0", "/v1/responses", '{"x":1}'))
    builder = PartBuilder("/v1/responses", max_bytes=one * 2)
    outs = [builder.add(f"k{i}", '{"x":1}') for i in range(5)]
    parts = [p for p in outs if p] + [builder.flush()]
    assert [len(p) for p in parts] == [2, 2, 1]
    assert all(sum(len(line) for _, line, _ in p) <= one * 2 for p in parts)


def test_a_request_bigger_than_a_file_is_an_error_that_says_so() -> None:
    builder = PartBuilder("/v1/chat/completions", max_bytes=50)
    with pytest.raises(OpenAIClientError, match="more than a batch file may hold"):
        builder.add("k", json.dumps({"text": "x" * 100}))


def _lines(*objs: object) -> bytes:
    return b"".join(json.dumps(o).encode() + b"\n" for o in objs)


def test_an_answered_line_gives_the_response_body() -> None:
    body = {"id": "chatcmpl-1", "choices": [{"message": {"content": "{}"}}]}
    data = _lines({"id": "batch_req_1", "custom_id": "a",
                   "response": {"status_code": 200, "request_id": "r", "body": body},
                   "error": None})  # fmt: skip
    (result,) = parse_result_lines(data, "output file f")
    assert result.custom_id == "a" and result.status_code == 200 and result.error is None
    assert json.loads(result.body or b"") == body


@pytest.mark.parametrize(
    ("line", "status", "code", "transient", "words"),
    [
        ({"response": {"status_code": 400, "body": {"error": {"message": "bad model",
          "code": "model_not_found"}}}, "error": None}, 400, "model_not_found", False,
         "HTTP 400 (model_not_found): bad model"),
        ({"response": {"status_code": 0, "body": {"error": {"message": "x"}}}, "error": None},
         0, None, True, "got no HTTP status"),
        ({"response": {"status_code": 500, "body": {}}, "error": None}, 500, None, True,
         "the error file gives no reason"),
        ({"response": None, "error": {"code": "batch_expired", "message": "window"}}, None,
         "batch_expired", True, "was not run (batch_expired): window"),
        ({"response": {"status_code": 200, "body": "not an object"}, "error": None}, 200, None,
         False, "HTTP 200"),
    ],
)  # fmt: skip
def test_an_error_line_becomes_a_typed_error(
    line: dict[str, object], status: int | None, code: str | None, transient: bool, words: str
) -> None:
    (result,) = parse_result_lines(_lines({"custom_id": "c", **line}), "error file e")
    assert result.body is None
    assert isinstance(result.error, BatchLineError)
    assert (result.error.status_code, result.error.code) == (status, code)
    assert result.error.transient is transient
    assert words in str(result.error)
    assert result.error.custom_id == "c"


def test_a_line_that_is_not_a_result_line_is_an_error_naming_the_file_and_line() -> None:
    data = _lines({"custom_id": "a", "response": None, "error": None}) + b"garbage\n"
    with pytest.raises(OpenAIClientError, match="error file e line 2 is not a batch result"):
        list(parse_result_lines(data, "error file e"))


def test_blank_lines_are_skipped() -> None:
    data = b"\n" + _lines({"custom_id": "a", "response": None, "error": None}) + b"  \n"
    assert [r.custom_id for r in parse_result_lines(data, "f")] == ["a"]
