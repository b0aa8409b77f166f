"""Chat Completions and Responses events reduce to the same deltas; oddities are reported."""

from __future__ import annotations

import json
from typing import Any

import pytest

from openai_structured.streaming.protocol import (
    ChatProtocol,
    ResponsesProtocol,
    StreamProtocolError,
    StreamServerError,
    make_protocol,
)

CHAT_HEAD = {
    "id": "chatcmpl-1",
    "object": "chat.completion.chunk",
    "created": 1,
    "model": "gpt-4o-2024-08-06",
    "system_fingerprint": "fp",
}


def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
    body = {
        **CHAT_HEAD,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        **extra,
    }
    return json.dumps(body).encode()


def test_chat_content_finish_usage_and_done() -> None:
    proto = ChatProtocol()
    proto.process(
        [
            chunk({"role": "assistant", "content": "", "refusal": None}),
            chunk({"content": '{"a"'}),
            chunk({"content": ": 1}"}),
            chunk({}, "stop"),
            json.dumps(
                {
                    **CHAT_HEAD,
                    "choices": [],
                    "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8},
                }
            ).encode(),
            b"[DONE]",
        ]
    )
    assert "".join(proto.content) == '{"a": 1}'
    assert proto.finish_reason == "stop"
    assert proto.usage == {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}
    assert proto.response_id == "chatcmpl-1"
    assert proto.done and proto.finished


def test_chat_refusal_and_other_choices() -> None:
    proto = ChatProtocol()
    proto.process([chunk({"refusal": "I can't"}), chunk({"refusal": " help."})])
    assert not proto.refusal_done
    other = json.dumps(
        {**CHAT_HEAD, "choices": [{"index": 1, "delta": {"content": "zzz"}, "finish_reason": None}]}
    ).encode()
    proto.process([other, chunk({}, "stop")])
    assert "".join(proto.refusal) == "I can't help."
    assert proto.content == [] and proto.refusal_done


@pytest.mark.parametrize("finish", ["length", "content_filter"])
def test_chat_finish_reasons(finish: str) -> None:
    proto = ChatProtocol()
    proto.process([chunk({"content": "{"}, finish)])
    assert proto.finish_reason == finish


def test_chat_error_payload_raises_server_error() -> None:
    proto = ChatProtocol()
    with pytest.raises(StreamServerError) as info:
        proto.process(
            [b'{"error": {"message": "overloaded", "type": "server_error", "code": "server_busy"}}']
        )
    assert info.value.code == "server_busy"
    assert "overloaded" in str(info.value)


@pytest.mark.parametrize("api", ["chat", "responses"])
@pytest.mark.parametrize("payload", [b"{not json", b"[1, 2]", b'"text"', b"null"])
def test_malformed_event_data_is_reported_not_skipped(api: str, payload: bytes) -> None:
    with pytest.raises(StreamProtocolError) as info:
        make_protocol(api).process([payload])
    assert info.value.data == payload


def test_chat_content_that_is_not_a_string_is_malformed() -> None:
    with pytest.raises(StreamProtocolError):
        ChatProtocol().process([chunk({"content": 12})])


def responses_event(kind: str, **fields: Any) -> bytes:
    return json.dumps({"type": kind, "sequence_number": 1, **fields}).encode()


def response_obj(status: str, **fields: Any) -> dict[str, Any]:
    return {
        "id": "resp_1",
        "object": "response",
        "status": status,
        "output": [],
        "usage": {"input_tokens": 4, "output_tokens": 2, "total_tokens": 6},
        **fields,
    }


def test_responses_text_completed_and_usage() -> None:
    proto = ResponsesProtocol()
    proto.process(
        [
            responses_event("response.created", response=response_obj("in_progress", usage=None)),
            responses_event("response.output_item.added", output_index=0, item={}),
            responses_event(
                "response.output_text.delta",
                item_id="m",
                output_index=0,
                content_index=0,
                delta='{"a": ',
                logprobs=[],
            ),
            responses_event(
                "response.output_text.delta",
                item_id="m",
                output_index=0,
                content_index=0,
                delta="1}",
                logprobs=[],
            ),
            responses_event("response.output_text.done", text='{"a": 1}'),
            responses_event("response.completed", response=response_obj("completed")),
        ]
    )
    assert "".join(proto.content) == '{"a": 1}'
    assert proto.response_id == "resp_1"
    assert proto.finish_reason == "stop" and proto.done
    assert proto.usage == {"input_tokens": 4, "output_tokens": 2, "total_tokens": 6}


@pytest.mark.parametrize(
    ("reason", "finish"),
    [
        ("max_output_tokens", "length"),
        ("content_filter", "content_filter"),
        ("max_messages", "length"),
    ],
)
def test_responses_incomplete(reason: str, finish: str) -> None:
    proto = ResponsesProtocol()
    proto.process(
        [
            responses_event(
                "response.incomplete",
                response=response_obj("incomplete", incomplete_details={"reason": reason}),
            )
        ]
    )
    assert proto.finish_reason == finish and proto.incomplete_reason == reason


def test_responses_refusal() -> None:
    proto = ResponsesProtocol()
    proto.process(
        [
            responses_event(
                "response.refusal.delta", item_id="m", output_index=0, content_index=0, delta="No."
            ),
            responses_event(
                "response.refusal.done", item_id="m", output_index=0, content_index=0, refusal="No."
            ),
        ]
    )
    assert proto.refusal == ["No."] and proto.refusal_done


def test_responses_failed_and_error_events_raise() -> None:
    with pytest.raises(StreamServerError) as info:
        ResponsesProtocol().process(
            [
                responses_event(
                    "response.failed",
                    response=response_obj(
                        "failed", error={"code": "server_error", "message": "boom"}
                    ),
                )
            ]
        )
    assert info.value.code == "server_error"
    with pytest.raises(StreamServerError) as info:
        ResponsesProtocol().process(
            [responses_event("error", code="rate_limit_exceeded", message="slow down", param=None)]
        )
    assert "slow down" in str(info.value)


def test_unknown_api() -> None:
    with pytest.raises(ValueError):
        make_protocol("completions")


# --- the learnt envelope (ChatProtocol's fastest path) ---------------------------------------

TRICKY = [
    "",
    "plain",
    'a "quote"',
    "back\\slash",
    "line\nbreak\ttab",
    "é東京",
    "😀",
    "\u2028",
    "}]",
]


def test_chunks_of_a_learnt_envelope_decode_exactly_as_a_full_parse() -> None:
    proto = ChatProtocol()
    payloads = [chunk({"content": text}) for text in ["first", *TRICKY]]
    # ensure_ascii=False too: the same strings as raw UTF-8 in the token
    payloads += [
        json.dumps(
            {
                **CHAT_HEAD,
                "choices": [
                    {
                        "index": 0,
                        "delta": {"content": text},
                        "logprobs": None,
                        "finish_reason": None,
                    }
                ],
            },
            ensure_ascii=False,
        ).encode()
        for text in TRICKY
    ]
    assert proto.process(payloads) is False
    assert proto.content == ["first", *TRICKY, *TRICKY]
    assert proto._head.endswith(b'"content": ')  # the envelope was learnt from the first chunk


def test_a_learnt_envelope_around_anything_but_one_string_takes_the_full_path() -> None:
    proto = ChatProtocol()
    proto.process([chunk({"content": "a"})])
    head, tail = proto._head, proto._tail
    assert proto.process([head + b'"b", "refusal": "no"' + tail]) is True
    assert proto.content == ["a", "b"] and proto.refusal == ["no"]
    proto.process([head + b"null" + tail])  # no content: nothing added
    assert proto.content == ["a", "b"]
    with pytest.raises(StreamProtocolError):
        proto.process([head + b"12" + tail])
    with pytest.raises(StreamProtocolError):
        proto.process([head + b'"c"}, "x": "y' + tail])  # not JSON


def test_a_finish_in_the_same_shape_is_not_taken_for_text() -> None:
    proto = ChatProtocol()
    proto.process([chunk({"content": "a"}), chunk({"content": "b"}, "length")])
    assert proto.content == ["a", "b"] and proto.finish_reason == "length"


def test_other_content_keys_never_become_the_envelope() -> None:
    # logprobs carry a "content" key after the delta: the envelope must not be cut there.
    def with_logprobs(text: str, logprobs: Any) -> bytes:
        choice = {"index": 0, "delta": {"content": text}, "logprobs": logprobs}
        return json.dumps({**CHAT_HEAD, "choices": [choice]}).encode()

    for logprobs in ({"content": "same every time"}, {"content": [{"token": "t"}]}):
        proto = ChatProtocol()
        texts = ["one", "two", "three", "four", "five"]
        proto.process([with_logprobs(text, logprobs) for text in texts])
        assert proto.content == texts
        assert proto._head == b"\xff"  # nothing learnt: every chunk took the full decode
