"""What ``on_log`` sees through the loopback server: the credentials a call sends in
``extra_headers``/``extra_query``/``extra_body`` (Azure API Management, Google, AWS, OAuth...)
reach the server but never an event; counters stay readable. Sync and async, chat and
responses, call and stream."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel
from security_support import (
    AWS_ACCESS_KEY_ID,
    AWS_SECRET_KEY,
    AZURE_KEY,
    BASIC_CREDENTIAL,
    GITHUB_TOKENS,
    GOOGLE_KEY,
    JWT,
    OPAQUE,
    OPENAI_KEY,
    SLACK_TOKEN,
    Call,
    Recorder,
    leaks,
)

from openai_structured.testing import FakeOpenAIServer, Reply


class Person(BaseModel):
    name: str
    age: int


ADA = {"name": "Ada", "age": 36}

# (option, value, the secret in it): each leaked into request.start before.
SENT_SECRETS = [
    pytest.param(
        "extra_headers", {"Ocp-Apim-Subscription-Key": AZURE_KEY}, AZURE_KEY, id="azure-apim"
    ),
    pytest.param("extra_headers", {"X-Goog-Api-Key": OPAQUE}, OPAQUE, id="x-goog-api-key"),
    pytest.param("extra_headers", {"X-Auth": OPAQUE}, OPAQUE, id="x-auth"),
    pytest.param("extra_headers", {"X-Session-Id": OPAQUE}, OPAQUE, id="x-session-id"),
    pytest.param("extra_headers", {"X-Forward": f"BEARER {OPAQUE}"}, OPAQUE, id="BEARER"),
    pytest.param("extra_headers", {"X-Forward": f"Bearer\t{OPAQUE}"}, OPAQUE, id="bearer-tab"),
    pytest.param("extra_headers", {"X-Forward": f"bearer   {OPAQUE}"}, OPAQUE, id="bearer-spaces"),
    pytest.param(
        "extra_headers", {"X-Upstream": f"Basic {BASIC_CREDENTIAL}"}, BASIC_CREDENTIAL, id="basic"
    ),
    pytest.param("extra_query", {"key": OPAQUE}, OPAQUE, id="query-key"),
    pytest.param("extra_query", {"signature": OPAQUE}, OPAQUE, id="query-signature"),
    pytest.param("extra_query", {"sig": OPAQUE}, OPAQUE, id="query-sas-sig"),
    pytest.param("extra_body", {"accessToken": OPAQUE}, OPAQUE, id="body-camel-case"),
    pytest.param(
        "extra_body", {"auth": {"user": "ada", "pass": OPAQUE}}, OPAQUE, id="body-nested-auth"
    ),
    pytest.param(
        "extra_body",
        {"aws": [("aws_secret_access_key", AWS_SECRET_KEY)]},
        AWS_SECRET_KEY,
        id="body-aws-secret-pair",
    ),
    pytest.param(
        "extra_body", {"upstreams": [["x-api-key", OPAQUE]]}, OPAQUE, id="body-header-pair"
    ),
    pytest.param("extra_body", {"note": f"use {GOOGLE_KEY}"}, GOOGLE_KEY, id="google-key"),
    pytest.param("extra_body", {"note": AWS_ACCESS_KEY_ID}, AWS_ACCESS_KEY_ID, id="aws-key-id"),
    pytest.param("extra_body", {"note": GITHUB_TOKENS[0]}, GITHUB_TOKENS[0], id="github"),
    pytest.param("extra_body", {"note": SLACK_TOKEN}, SLACK_TOKEN, id="slack"),
    pytest.param("extra_body", {"note": JWT}, JWT, id="jwt"),
    pytest.param(
        "extra_body",
        {"hook": f"https://ada:{OPAQUE}@hooks.example.com/in"},
        OPAQUE,
        id="url-password",
    ),
    pytest.param(
        "extra_body",
        {"hook": f"https://hooks.example.com/in?x=1&api_key={OPAQUE}"},
        OPAQUE,
        id="url-query-key",
    ),
    pytest.param("extra_body", {"by_owner": {OPENAI_KEY: "ada"}}, OPENAI_KEY, id="dict-key"),
]


@pytest.mark.parametrize(("option", "value", "secret"), SENT_SECRETS)
def test_a_credential_sent_with_the_request_appears_in_no_event(
    server: FakeOpenAIServer,
    call: Call,
    recorder: Recorder,
    option: str,
    value: dict[str, Any],
    secret: str,
) -> None:
    server.queue(Reply.json(ADA))
    assert call(output_schema=Person, user_prompt="Ada", on_log=recorder, **{option: value})
    request = server.last_request
    sent = request.body.decode() + request.query + repr(dict(request.headers))
    assert secret in sent  # the server got it: only the log masks it
    assert "request.start" in recorder.types()
    assert leaks(recorder.text(), secret) == []
    assert "[REDACTED]" in repr(recorder.first("request.start")["parameters"][option])


def test_masked_headers_keep_their_names_and_other_values(
    server: FakeOpenAIServer, call: Call, recorder: Recorder
) -> None:
    server.queue(Reply.json(ADA))
    headers = {"Ocp-Apim-Subscription-Key": AZURE_KEY, "X-Trace": "trace-1"}
    call(output_schema=Person, user_prompt="Ada", on_log=recorder, extra_headers=headers)
    logged = recorder.first("request.start")["parameters"]["extra_headers"]
    assert logged == {"Ocp-Apim-Subscription-Key": "[REDACTED]", "X-Trace": "trace-1"}


def test_token_counters_stay_visible_in_events(
    server: FakeOpenAIServer, call: Call, recorder: Recorder
) -> None:
    server.queue(Reply.json(ADA).with_usage(12, 7))
    call(output_schema=Person, user_prompt="Ada", on_log=recorder, max_output_tokens=100)
    parameters = recorder.first("request.start")["parameters"]
    counters = {
        k: v
        for k, v in parameters.items()
        if k in ("max_tokens", "max_completion_tokens", "max_output_tokens")
    }
    assert list(counters.values()) == [100]
    end = recorder.first("request.end" if "request.end" in recorder.types() else "stream.end")
    usage = end["usage"]
    prompt = usage.get("prompt_tokens", usage.get("input_tokens"))
    completion = usage.get("completion_tokens", usage.get("output_tokens"))
    assert (prompt, completion) == (12, 7)
    assert "[REDACTED]" not in recorder.text()
