"""``redact`` and ``redact_text`` on their own: every key shape, every way to name a secret,
every container, URL forms; what must stay (counters, ordinary text); hostile inputs (cycles,
depth, texts built to make a regex slow)."""

from __future__ import annotations

import time
from collections import namedtuple
from dataclasses import dataclass
from typing import Any

import pytest
from pydantic import BaseModel
from security_support import (
    AWS_SECRET_KEY,
    AZURE_KEY,
    BASIC_CREDENTIAL,
    JWT,
    OPAQUE,
    SHAPED,
    Recorder,
    leaks,
)

from openai_structured._logging import LogSink, redact, redact_text

R = "[REDACTED]"

# --- shapes -------------------------------------------------------------------------------------


@pytest.mark.parametrize("secret", SHAPED)
def test_every_key_shape_is_masked_inside_text(secret: str) -> None:
    assert redact_text(f"got {secret} back") == f"got {R} back"
    assert redact({"note": f"({secret})"}) == {"note": f"({R})"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"BEARER {OPAQUE}", f"BEARER {R}"),
        (f"Bearer\t{OPAQUE}", f"Bearer\t{R}"),
        (f"bearer    {OPAQUE}", f"bearer    {R}"),
        (f"Authorization: Bearer {OPAQUE}", f"Authorization: Bearer {R}"),
        (f"Basic {BASIC_CREDENTIAL}", f"Basic {R}"),
        (f"BASIC\t{BASIC_CREDENTIAL}", f"BASIC\t{R}"),
        (f"proxy said Bearer {JWT}", f"proxy said Bearer {R}"),
    ],
)
def test_http_credentials_are_masked_in_any_case_and_spacing(text: str, expected: str) -> None:
    assert redact_text(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"https://ada:{OPAQUE}@db.example.com/x", f"https://ada:{R}@db.example.com/x"),
        (f"postgres://u:{OPAQUE}@h:5432/db", f"postgres://u:{R}@h:5432/db"),
        (f"https://h/p?key={OPAQUE}&x=1", f"https://h/p?key={R}&x=1"),
        (f"https://h/p?x=1&api_key={OPAQUE}#top", f"https://h/p?x=1&api_key={R}#top"),
        (f"https://h/p?access_token={OPAQUE}", f"https://h/p?access_token={R}"),
        (f"https://acct.blob/c?sv=2024&sig={OPAQUE}", f"https://acct.blob/c?sv=2024&sig={R}"),
        (f"https://h/p?signature={OPAQUE}", f"https://h/p?signature={R}"),
        (f"https://app/cb?code={OPAQUE}&state=s1", f"https://app/cb?code={R}&state=s1"),
        (f"see <https://h/?X-Amz-Credential={OPAQUE}>", f"see <https://h/?X-Amz-Credential={R}>"),
    ],
)
def test_url_passwords_and_secret_query_parameters_are_masked(text: str, expected: str) -> None:
    assert redact_text(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"Ocp-Apim-Subscription-Key: {AZURE_KEY}", f"Ocp-Apim-Subscription-Key: {R}"),
        (f"aws_secret_access_key = {AWS_SECRET_KEY}", f"aws_secret_access_key = {R}"),
        (f'{{"accessToken": "{OPAQUE}", "n": 1}}', f'{{"accessToken": "{R}", "n": 1}}'),
        (f"{{'password': '{OPAQUE} x'}}", f"{{'password': '{R}'}}"),
        (f'{{"api_key": "cut-off {OPAQUE}', f'{{"api_key": "{R}'),
        (f"X-Api-Key: {OPAQUE}, retrying", f"X-Api-Key: {R}, retrying"),
        (f"client_secret={OPAQUE} sent", f"client_secret={R} sent"),
    ],
)
def test_secret_named_values_are_masked_in_text(text: str, expected: str) -> None:
    assert redact_text(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "max_tokens=100 total_tokens: 250 token_count=3",
        "#/properties/api_key: additionalProperties must be false",
        "items.3.password: Input should be a valid string",
        "Basic usage examples: see the docs",
        "http://localhost:8080/v1 and https://api.openai.com/v1/",
        "error code=invalid_api_key (param: api_key)",
        "task-abcdefgh and risk-assessment are not keys",
        "The author wrote keywords on the keyboard; the tokenizer counts tokens.",
        "front matter: expected 'key: value', got 'not a pair'.",
        "Export it (export MY_KEY=...) or drop --api-key-env.",
        "set api_key=$OPENAI_API_KEY or api_key=${OPENAI_API_KEY}; password: ***",
    ],
)
def test_ordinary_text_is_unchanged(text: str) -> None:
    assert redact_text(text) == text


def test_a_known_secret_is_masked_also_url_encoded() -> None:
    key = "local/key+with=symbols"
    text = f"sent {key} and ?k=local%2Fkey%2Bwith%3Dsymbols"
    assert redact_text(text, [key]) == f"sent {R} and ?k={R}"


# --- names --------------------------------------------------------------------------------------

SECRET_NAMES = [
    "Ocp-Apim-Subscription-Key", "X-Goog-Api-Key", "x-api-key", "apikey", "api_key", "APIKey",
    "key", "accessToken", "access_token", "refresh_tokens", "id_token", "Authorization",
    "proxy-authorization", "X-Auth", "oauth", "client_secret", "SECRET", "password", "passwd",
    "pwd", "pass", "passphrase", "credentials", "signature", "sig", "subscription_id",
    "sessionId", "session", "Cookie", "set-cookie", "private_key", "aws_secret_access_key",
    "x-csrf-token",
]  # fmt: skip
COUNTER_NAMES = [
    "max_tokens", "max_completion_tokens", "max_output_tokens", "total_tokens",
    "prompt_tokens", "completion_tokens", "reasoning_tokens", "cached_tokens", "input_tokens",
    "output_tokens", "token_count", "tokenCount", "prompt_tokens_details", "tokens_per_minute",
    "x-ratelimit-remaining-tokens",
]  # fmt: skip
PLAIN_NAMES = ["author", "keyword", "tokenizer", "model", "code", "signal", "design", "type"]


@pytest.mark.parametrize("name", SECRET_NAMES)
def test_a_value_under_a_secret_name_is_masked_whatever_its_shape(name: str) -> None:
    assert redact({name: OPAQUE, "other": "kept"}) == {name: R, "other": "kept"}
    assert redact({name: 1234}) == {name: R}
    assert redact({name: b"raw"}) == {name: R.encode()}
    assert redact({name: {"user": "ada", "n": 7}}) == {name: {"user": R, "n": R}}
    # Booleans, None and empty strings say nothing secret.
    assert redact({name: True, "x": {name: None}, "y": {name: ""}}) == {
        name: True, "x": {name: None}, "y": {name: ""}
    }  # fmt: skip


@pytest.mark.parametrize("name", COUNTER_NAMES + PLAIN_NAMES)
def test_counters_and_ordinary_names_keep_their_values(name: str) -> None:
    data = {name: 100, "nested": {name: "visible", "list": [{name: 5}]}}
    assert redact(data) == data


def test_schema_property_names_are_names_not_secrets() -> None:
    schema = {
        "type": "object",
        "properties": {"password": {"type": "string", "minLength": 8}, "token": {"type": "string"}},
        "required": ["password", "token"],
    }
    assert redact(schema) == schema


# --- containers ---------------------------------------------------------------------------------


@dataclass
class Credentials:
    user: str
    api_key: str
    note: str


@dataclass(frozen=True)
class FrozenKey:
    name: str


class Settings(BaseModel):
    base_url: str
    token: str
    retries: int


Pair = namedtuple("Pair", "label value")


SECRET = "sk-proj-LEAKcontainer0123456789"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param({"a": [SECRET, "ok"]}, {"a": [R, "ok"]}, id="list"),
        pytest.param(("ok", SECRET), ("ok", R), id="tuple"),
        pytest.param(Pair("x", SECRET), Pair("x", R), id="named-tuple"),
        pytest.param({SECRET, "ok"}, {R, "ok"}, id="set"),
        pytest.param(frozenset({SECRET}), frozenset({R}), id="frozenset"),
        pytest.param({SECRET: "value"}, {R: "value"}, id="dict-key"),
        pytest.param({(1, SECRET): "v"}, {(1, R): "v"}, id="tuple-dict-key"),
        pytest.param(f"a {SECRET}".encode(), f"a {R}".encode(), id="bytes"),
        pytest.param(bytearray(SECRET.encode()), bytearray(R.encode()), id="bytearray"),
        pytest.param(memoryview(SECRET.encode()), R.encode(), id="memoryview"),
        pytest.param(b"\xff\xfe " + SECRET.encode(), b"\xff\xfe " + R.encode(), id="binary"),
        pytest.param(
            Credentials("ada", OPAQUE, SECRET),
            {"user": "ada", "api_key": R, "note": R},
            id="dataclass",
        ),
        pytest.param(
            Settings(base_url=f"https://u:{OPAQUE}@h/v1", token=OPAQUE, retries=2),
            {"base_url": f"https://u:{R}@h/v1", "token": R, "retries": 2},
            id="pydantic",
        ),
        pytest.param({FrozenKey(SECRET)}, {f"FrozenKey(name='{R}')"}, id="unhashable-member"),
        pytest.param(
            [("Authorization", f"Basic {BASIC_CREDENTIAL}"), ("X-Api-Key", OPAQUE), ("A", "b")],
            [("Authorization", R), ("X-Api-Key", R), ("A", "b")],
            id="header-pairs",
        ),
        pytest.param(
            {"l1": [{"l2": ({"l3": {"l4": [{"password": OPAQUE}]}},)}]},
            {"l1": [{"l2": ({"l3": {"l4": [{"password": R}]}},)}]},
            id="nested",
        ),
        pytest.param(ValueError(f"bad {SECRET}"), f"ValueError: bad {R}", id="exception"),
    ],
)
def test_every_container_type_is_searched(value: Any, expected: Any) -> None:
    out = redact(value)
    assert out == expected
    assert type(out) is type(expected)


def test_an_unknown_object_whose_repr_shows_a_secret_is_replaced_by_the_redacted_repr() -> None:
    class Conn:
        def __repr__(self) -> str:
            return f"Conn(dsn='postgres://app:{OPAQUE}@db/x')"

    class Quiet:
        pass

    quiet = Quiet()
    assert redact({"conn": Conn(), "quiet": quiet}) == {
        "conn": f"Conn(dsn='postgres://app:{R}@db/x')",
        "quiet": quiet,
    }


def test_events_with_any_container_type_reach_on_log_redacted() -> None:
    recorder = Recorder()
    sink = LogSink(recorder, secrets=[OPAQUE])
    sink.emit(
        "request.start",
        parameters={
            "extra_body": {
                "creds": Credentials("ada", OPAQUE, "n"),
                "settings": Settings(base_url="http://h", token=OPAQUE, retries=1),
                "blob": OPAQUE.encode(),
                "tags": {f"x {OPAQUE}"},
                "pair": ("k", OPAQUE),
            },
            "max_tokens": 100,
        },
    )
    assert leaks(recorder.text(), OPAQUE) == []
    assert recorder.first("request.start")["parameters"]["max_tokens"] == 100


# --- bounds -------------------------------------------------------------------------------------


def test_cycles_are_cut_and_shared_parts_kept() -> None:
    loop: list[Any] = [SECRET]
    loop.append(loop)
    loop.append(loop)
    mapping: dict[str, Any] = {"token": OPAQUE}
    mapping["self"] = mapping
    shared = {"k": "v"}
    out = redact({"loop": loop, "map": mapping, "a": shared, "b": shared})
    assert out["loop"][0] == R and all(isinstance(x, str) for x in out["loop"])
    assert out["map"]["token"] == R and isinstance(out["map"]["self"], str)
    assert out["a"] == out["b"] == {"k": "v"}


def test_nesting_deeper_than_the_bound_is_cut_without_recursion_errors() -> None:
    deep: Any = {"password": OPAQUE}
    for _ in range(10_000):
        deep = [deep]
    started = time.perf_counter()
    out = redact(deep)
    assert time.perf_counter() - started < 1.0
    assert OPAQUE not in repr(out)[:100_000]
    depth = 0
    while isinstance(out, list):
        out, depth = out[0], depth + 1
    assert isinstance(out, str) and 10 <= depth < 10_000


@pytest.mark.parametrize(
    "unit",
    ["a:", "a=", "https://", "a.b:", "x://a:", "eyJaaaa.", "Bearer ", "basic ", '"a":', "k=a:"],
)
def test_hostile_text_costs_linear_time(unit: str) -> None:
    text = unit * 20_000
    started = time.perf_counter()
    redact_text(text)
    assert time.perf_counter() - started < 0.5
