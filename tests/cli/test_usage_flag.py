"""``ostruct run --usage``, the totals line of ``--verbose``, ``--max-validation-retries`` and
``--max-total-tokens``, against the loopback server (figures scripted with ``with_usage``)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from cli_support import ADA, CANARY, run_args

from openai_structured import estimate_cost
from openai_structured.testing import FakeOpenAIServer, Fault, Reply

#: Fails the CLI's schema (``age`` is required): a re-ask can fix it.
NO_AGE = {"name": "Ada"}
PRETTY = json.dumps(ADA, indent=2) + "\n"
_COST = re.compile(r"estimated cost \$(\d+\.\d+) \(gpt-4o prices from the model registry\)$")


def _usage_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("ostruct: usage")]


def _the_usage_line(stderr: str) -> str:
    lines = _usage_lines(stderr)
    assert len(lines) == 1, stderr
    return lines[0]


def _cost_in(line: str) -> float:
    match = _COST.search(line)
    assert match, line
    return float(match.group(1))


def _gpt4o_cost(prompt: int, completion: int, cached: int = 0) -> float:
    cost = estimate_cost("gpt-4o", prompt, completion, cached_input_tokens=cached)
    assert cost is not None
    return cost.total


def _gpt4o(server: FakeOpenAIServer, *extra: str) -> list[str]:
    return run_args(server, "-m", "gpt-4o", *extra)


# --- the line --------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", [(), ("--stream",), ("--api", "responses")])
def test_usage_line_has_the_servers_figures_and_the_registry_cost(ostruct, server, workdir, mode):
    server.queue(Reply.json(ADA).with_usage(1234, 56, cached_tokens=200, reasoning_tokens=7))
    out = ostruct(*_gpt4o(server, "--usage", *mode))
    assert out.code == 0, out.stderr
    assert out.stdout == PRETTY
    line = _the_usage_line(out.stderr)
    assert line.startswith(
        "ostruct: usage: 1 request (1 attempt), 1,234 prompt tokens (200 cached), "
        "56 completion tokens (7 reasoning), 1,290 total; estimated cost $"
    ), line
    assert _cost_in(line) == pytest.approx(_gpt4o_cost(1234, 56, 200), abs=5e-7)
    # The line is all there is on stderr (no spinner or live view off a terminal).
    assert out.stderr == line + "\n"


@pytest.mark.parametrize("mode", [(), ("--stream",), ("--indent", "0"), ("--api", "responses")])
def test_stdout_is_byte_for_byte_the_same_with_and_without_the_flag(ostruct, server, workdir, mode):
    reply = Reply.json(ADA).with_usage(10, 5)
    server.queue(reply, reply)
    plain = ostruct(*_gpt4o(server, *mode))
    counted = ostruct(*_gpt4o(server, *mode, "--usage"))
    assert plain.code == counted.code == 0, counted.stderr
    assert counted.stdout == plain.stdout
    assert json.loads(plain.stdout) == ADA
    assert plain.stderr == ""
    assert _usage_lines(counted.stderr) != []


def test_usage_with_output_file_goes_after_the_note(ostruct, server, workdir):
    server.queue(Reply.json(ADA).with_usage(10, 5))
    out = ostruct(*_gpt4o(server, "--usage", "-o", "out.json"))
    assert out.code == 0, out.stderr
    assert out.stdout == ""
    assert (workdir / "out.json").read_text(encoding="utf-8") == PRETTY
    note, line = out.stderr.splitlines()
    assert note == "ostruct: wrote the result to out.json"
    assert line.startswith("ostruct: usage: 1 request (1 attempt), 10 prompt tokens (0 cached)")


def test_a_model_without_prices_says_the_cost_is_unknown(ostruct, server, workdir):
    server.queue(Reply.json(ADA).with_usage(120, 30))
    out = ostruct(*run_args(server, "--usage", "-m", "house-model"))
    assert out.code == 0, out.stderr
    assert _the_usage_line(out.stderr) == (
        "ostruct: usage: 1 request (1 attempt), 120 prompt tokens (0 cached), 30 completion "
        "tokens (0 reasoning), 150 total; price unknown (no prices for house-model)"
    )


def test_a_server_outside_the_registry_gets_no_price_even_for_an_openai_name(
    ostruct, server, workdir
):
    server.queue(Reply.json(ADA).with_usage(120, 30))
    out = ostruct(*_gpt4o(server, "--usage", "--server", "vllm"))
    assert out.code == 0, out.stderr
    line = _the_usage_line(out.stderr)
    assert line.endswith("; price unknown (the vllm profile does not use the registry's prices)")
    assert "$" not in line


def test_dry_run_prints_no_usage_line(ostruct, server, workdir):
    out = ostruct(*_gpt4o(server, "--usage", "--dry-run"))
    assert out.code == 0, out.stderr
    assert _usage_lines(out.stderr) == []
    assert server.requests == []


# --- re-asks ---------------------------------------------------------------------------------


def test_verbose_shows_the_retry_and_the_totals_of_both_attempts(ostruct, server, workdir):
    server.queue(Reply.json(NO_AGE).with_usage(100, 10), Reply.json(ADA).with_usage(150, 12))
    out = ostruct(*_gpt4o(server, "--verbose", "--max-validation-retries", "1"))
    assert out.code == 0, out.stderr
    assert out.stdout == PRETTY
    assert len(server.requests) == 2
    # The re-ask carries the failed answer and the errors back to the model.
    second = server.requests[1].json
    assert second is not None
    assert "'age' is a required property" in json.dumps(second["messages"])
    retry = [line for line in out.stderr.splitlines() if line.startswith("[ostruct] retry")]
    assert len(retry) == 1, out.stderr
    assert retry[0].startswith("[ostruct] retry 1 of 1: attempt 1 failed validation (response ")
    assert "asking again with the errors: ValidationError: " in retry[0]
    assert "<root>: 'age' is a required property" in retry[0]
    # The totals line comes last, after the per-request lines.
    last = out.stderr.splitlines()[-1]
    assert last == _the_usage_line(out.stderr)
    assert last.startswith(
        "ostruct: usage: 2 requests (2 attempts), 250 prompt tokens (0 cached), "
        "22 completion tokens (0 reasoning), 272 total; estimated cost $"
    )
    assert _cost_in(last) == pytest.approx(_gpt4o_cost(250, 22), abs=5e-7)


def test_verbose_stream_shows_the_retry_and_the_totals(ostruct, server, workdir):
    server.queue(Reply.json(NO_AGE).with_usage(100, 10), Reply.json(ADA).with_usage(150, 12))
    out = ostruct(*_gpt4o(server, "--stream", "-v", "--max-validation-retries", "2"))
    assert out.code == 0, out.stderr
    assert out.stdout == PRETTY
    assert "[ostruct] retry 1 of 2: attempt 1 failed validation" in out.stderr
    assert _the_usage_line(out.stderr).startswith(
        "ostruct: usage: 2 requests (2 attempts), 250 prompt tokens (0 cached), "
        "22 completion tokens (0 reasoning), 272 total;"
    )


def test_without_the_option_an_invalid_answer_is_not_re_asked(ostruct, server, workdir):
    server.queue(Reply.json(NO_AGE).with_usage(100, 10), Reply.json(ADA))
    out = ostruct(*_gpt4o(server, "--usage"))
    assert out.code == 7
    assert out.stdout == ""
    assert len(server.requests) == 1
    assert "'age' is a required property" in out.stderr
    # What the failed attempt cost is still reported.
    assert _the_usage_line(out.stderr).startswith(
        "ostruct: usage: 1 request (1 attempt), 100 prompt tokens (0 cached), "
        "10 completion tokens (0 reasoning), 110 total;"
    )


def test_usage_counts_every_attempt_when_the_retries_run_out(ostruct, server, workdir):
    server.queue(Reply.json(NO_AGE).with_usage(100, 10), Reply.json(NO_AGE).with_usage(150, 12))
    out = ostruct(*_gpt4o(server, "--usage", "--max-validation-retries", "1"))
    assert out.code == 7
    assert out.stdout == ""
    assert "Error (response): No valid answer after 2 attempts" in out.stderr
    line = out.stderr.splitlines()[-1]
    assert line == _the_usage_line(out.stderr)
    assert line.startswith(
        "ostruct: usage: 2 requests (2 attempts), 250 prompt tokens (0 cached), "
        "22 completion tokens (0 reasoning), 272 total; estimated cost $"
    )
    assert _cost_in(line) == pytest.approx(_gpt4o_cost(250, 22), abs=5e-7)


def test_a_failed_stream_after_re_asks_reports_every_attempt(ostruct, server, workdir):
    server.queue(Reply.json(NO_AGE).with_usage(100, 10), Reply.json(NO_AGE).with_usage(150, 12))
    out = ostruct(*_gpt4o(server, "--stream", "--usage", "--max-validation-retries", "1"))
    assert out.code == 7
    assert _the_usage_line(out.stderr).startswith(
        "ostruct: usage: 2 requests (2 attempts), 250 prompt tokens (0 cached), "
        "22 completion tokens (0 reasoning), 272 total;"
    )


def test_no_usage_line_without_the_flags(ostruct, server, workdir):
    server.queue(Reply.json(NO_AGE).with_usage(100, 10))
    out = ostruct(*_gpt4o(server))
    assert out.code == 7
    assert _usage_lines(out.stderr) == []


# --- the token budget ------------------------------------------------------------------------


@pytest.mark.parametrize("mode", [(), ("--stream",)])
def test_a_budget_too_small_for_the_first_request_sends_nothing(ostruct, server, workdir, mode):
    server.queue(Reply.json(ADA))
    out = ostruct(*_gpt4o(server, "--usage", "--max-total-tokens", "5", *mode))
    assert out.code == 8
    assert out.stdout == ""
    assert server.requests == []
    first = out.stderr.splitlines()[0]
    assert first.startswith(
        "Error (token limit): --max-total-tokens 5 would be exceeded by attempt 1"
    )
    assert "Nothing was sent." in first
    assert "Raise --max-total-tokens" in out.stderr
    assert _the_usage_line(out.stderr) == "ostruct: usage: nothing was sent (0 tokens)"


@pytest.mark.parametrize("mode", [(), ("--stream",)])
def test_the_budget_stops_a_re_ask_and_reports_what_was_spent(ostruct, server, workdir, mode):
    server.queue(Reply.json(NO_AGE).with_usage(100, 10), Reply.json(ADA).with_usage(150, 12))
    args = _gpt4o(server, "--usage", "--max-validation-retries", "3", "--max-total-tokens", "200")
    out = ostruct(*args, *mode)
    assert out.code == 8
    assert len(server.requests) == 1  # the re-ask would pass the budget: not sent
    budget = "Error (token limit): --max-total-tokens 200 would be exceeded by attempt 2"
    assert budget in out.stderr
    assert "110 tokens spent so far" in out.stderr
    assert _the_usage_line(out.stderr).startswith(
        "ostruct: usage: 1 request (1 attempt), 100 prompt tokens (0 cached), "
        "10 completion tokens (0 reasoning), 110 total; estimated cost $"
    )


def test_a_budget_that_is_enough_changes_nothing(ostruct, server, workdir):
    server.queue(Reply.json(ADA).with_usage(100, 10))
    out = ostruct(*_gpt4o(server, "--max-total-tokens", "100000", "--max-validation-retries", "2"))
    assert out.code == 0, out.stderr
    assert out.stdout == PRETTY
    assert out.stderr == ""


@pytest.mark.parametrize(
    "option", [("--max-total-tokens", "0"), ("--max-validation-retries", "-1")]
)
def test_out_of_range_values_are_usage_errors(ostruct, server, workdir, option):
    out = ostruct(*_gpt4o(server, *option))
    assert out.code == 2
    assert option[0] in out.stderr
    assert server.requests == []


# --- failures and secrets --------------------------------------------------------------------


def test_an_http_error_reports_no_tokens(ostruct, server, workdir):
    server.queue(Fault.status(500))
    out = ostruct(*_gpt4o(server, "--usage"))
    assert out.code == 6
    assert _the_usage_line(out.stderr) == (
        "ostruct: usage: no tokens reported (no answer was received)"
    )


@pytest.mark.parametrize("mode", [(), ("--stream",)])
def test_the_api_key_never_reaches_stderr(ostruct, workdir, mode):
    echo = f"Incorrect API key provided: {CANARY}. You can find your API key at ..."
    with FakeOpenAIServer(require_api_key=CANARY) as server:
        server.queue(
            Reply.json(NO_AGE).with_usage(100, 10),
            Reply.json(ADA).with_usage(150, 12),
            Fault.status(401, message=echo),
        )
        ok = ostruct(*_gpt4o(server, "-v", "--usage", "--max-validation-retries", "1", *mode))
        assert ok.code == 0, ok.stderr
        assert server.last_request.headers["Authorization"] == f"Bearer {CANARY}"
        failed = ostruct(*_gpt4o(server, "-v", "--usage", *mode))
        assert failed.code == 6
        assert "[REDACTED]" in failed.stderr
    outcomes: list[Any] = [ok, failed]
    for out in outcomes:
        assert CANARY not in out.stderr
        assert "CANARY0123" not in out.stdout + out.stderr
        assert _usage_lines(out.stderr) != []
