"""``ostruct run``: every flag reaches the request the server received (or the output)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cli_support import ADA, CANARY, run_args

from openai_structured.testing import FakeOpenAIServer, Reply


def _messages(server: FakeOpenAIServer) -> list[dict[str, Any]]:
    body = server.last_request.json
    assert body is not None
    messages: list[dict[str, Any]] = body["messages"]
    return messages


def _user_text(server: FakeOpenAIServer) -> str:
    users = [m for m in _messages(server) if m["role"] == "user"]
    assert len(users) == 1
    text: str = users[0]["content"]
    return text


def test_result_is_pretty_json_on_stdout_and_nothing_on_stderr(ostruct, server, workdir):
    server.queue(Reply.json(ADA))
    out = ostruct(*run_args(server))
    assert out.code == 0, out.stderr
    assert out.json() == ADA
    assert out.stdout == json.dumps(ADA, indent=2) + "\n"
    assert out.stderr == ""
    assert _messages(server) == [{"role": "user", "content": "Who is Ada?\n"}]


@pytest.mark.parametrize(("indent", "expected"), [("0", '{"name":"Ada","age":36}'), ("4", None)])
def test_indent_controls_the_json_layout(ostruct, server, workdir, indent, expected):
    server.queue(Reply.json(ADA))
    out = ostruct(*run_args(server, "--indent", indent))
    assert out.stdout.rstrip("\n") == (expected or json.dumps(ADA, indent=4))


def test_every_sampling_flag_is_sent(ostruct, server, workdir):
    server.queue(Reply.json(ADA))
    out = ostruct(
        *run_args(server, "--model", "my-model", "--temperature", "0.3", "--top-p", "0.9",
                  "--frequency-penalty", "0.1", "--presence-penalty", "-0.2", "--seed", "7",
                  "--max-output-tokens", "123", "--reasoning-effort", "low"),
    )  # fmt: skip
    assert out.code == 0, out.stderr
    body = server.last_request.json
    assert body["model"] == "my-model"
    assert body["temperature"] == 0.3
    assert body["top_p"] == 0.9
    assert body["frequency_penalty"] == 0.1
    assert body["presence_penalty"] == -0.2
    assert body["seed"] == 7
    assert body["reasoning_effort"] == "low"
    # A custom server gets the token limit under the name local servers accept.
    assert body["max_tokens"] == 123


def test_flags_not_given_are_not_sent(ostruct, server, workdir):
    server.queue(Reply.json(ADA))
    assert ostruct(*run_args(server)).code == 0
    body = server.last_request.json
    for name in ("temperature", "top_p", "frequency_penalty", "presence_penalty", "seed",
                 "reasoning_effort", "max_tokens", "max_completion_tokens", "stream"):  # fmt: skip
        assert name not in body
    assert body["model"] == "gpt-4o-mini"  # the documented default
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["strict"] is True


def test_responses_api_sends_its_own_parameter_shapes(ostruct, server, workdir):
    server.queue(Reply.json(ADA))
    out = ostruct(
        # A name the registry does not know: the server decides (gpt-4o-mini would refuse
        # reasoning_effort before sending, as on OpenAI).
        *run_args(server, "--api", "responses", "-m", "gateway-model", "--temperature", "0.5",
                  "--top-p", "0.8", "--reasoning-effort", "medium", "--max-output-tokens", "50"),
    )  # fmt: skip
    assert out.code == 0, out.stderr
    request = server.last_request
    assert request.endpoint == "responses"
    assert request.json["temperature"] == 0.5
    assert request.json["top_p"] == 0.8
    assert request.json["reasoning"] == {"effort": "medium"}
    assert request.json["max_output_tokens"] == 50
    assert request.json["text"]["format"]["type"] == "json_schema"
    assert out.json() == ADA


def test_model_comes_from_front_matter_unless_the_flag_is_given(ostruct, server, workdir):
    (workdir / "fm.j2").write_text("---\nmodel: fm-model\n---\nHi {{ who }}\n")
    server.queue(Reply.json(ADA), Reply.json(ADA))
    assert ostruct(*run_args(server, template="fm.j2")).code == 0
    assert server.last_request.json["model"] == "fm-model"
    assert ostruct(*run_args(server, "-m", "flag-model", template="fm.j2")).code == 0
    assert server.last_request.json["model"] == "flag-model"


def test_timeout_flag_is_applied(ostruct, server, workdir):
    from openai_structured.testing import Fault

    server.queue(Fault.delay(3, reply=Reply.json(ADA)))
    out = ostruct(*run_args(server, "--timeout", "0.3"))
    assert out.code == 6
    assert "timed out" in out.stderr.lower()
    assert "--timeout" in out.stderr


def test_max_retries_retries_a_rate_limit(ostruct, server, workdir):
    from openai_structured.testing import Fault

    server.queue(Fault.rate_limit(retry_after=0), Reply.json(ADA))
    args = run_args(server)
    args[args.index("--max-retries") + 1] = "1"
    out = ostruct(*args)
    assert out.code == 0, out.stderr
    assert len(server.requests) == 2


# --- inputs reach the prompt -------------------------------------------------------------------


def test_file_dir_glob_recursive_var_json_and_stdin_reach_the_prompt(ostruct, server, workdir):
    (workdir / "note.txt").write_text("NOTE BODY")
    docs = workdir / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "a.md").write_text("A")
    (docs / "b.txt").write_text("B")
    (docs / "sub" / "c.md").write_text("C")
    (workdir / "all.j2").write_text(
        "file={{ note.content }} name={{ note.name }}\n"
        "docs={{ docs.names|join(',') }}\n"
        "who={{ who }} n={{ cfg.n }} tags={{ cfg.tags|join('+') }}\n"
        "stdin={{ stdin }}\n"
    )
    server.queue(Reply.json(ADA))
    out = ostruct(
        *run_args(server, "-f", "note=note.txt", "-d", "docs=docs", "--glob", "*.md",
                  "--recursive", "-J", 'cfg={"n": 2, "tags": ["x", "y"]}', template="all.j2"),
        input="PIPED TEXT",
    )  # fmt: skip
    assert out.code == 0, out.stderr
    assert _user_text(server) == (
        "file=NOTE BODY name=note.txt\ndocs=a.md,c.md\nwho=Ada n=2 tags=x+y\nstdin=PIPED TEXT\n"
    )


def test_directory_without_recursive_or_glob_lists_only_its_own_files(ostruct, server, workdir):
    docs = workdir / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "a.md").write_text("A")
    (docs / "b.txt").write_text("B")
    (docs / "sub" / "c.md").write_text("C")
    (workdir / "d.j2").write_text("{{ docs.names|join(',') }}")
    server.queue(Reply.json(ADA))
    assert ostruct(*run_args(server, "-d", "docs=docs", template="d.j2")).code == 0
    assert _user_text(server) == "a.md,b.txt"


def test_allow_admits_a_directory_outside_the_working_directory(
    ostruct, server, workdir, tmp_path_factory
):
    outside = tmp_path_factory.mktemp("outside")
    (outside / "data.txt").write_text("FROM OUTSIDE")
    (workdir / "f.j2").write_text("{{ data.content }}")
    server.queue(Reply.json(ADA))
    out = ostruct(*run_args(server, "-f", f"data={outside / 'data.txt'}", "--allow",
                            str(outside), template="f.j2"))  # fmt: skip
    assert out.code == 0, out.stderr
    assert _user_text(server) == "FROM OUTSIDE"


# --- system prompt: a separate message --------------------------------------------------------


def test_front_matter_system_prompt_is_a_separate_message(ostruct, server, workdir):
    (workdir / "sys.j2").write_text("---\nsystem_prompt: You help {{ who }}.\n---\nUser text\n")
    server.queue(Reply.json(ADA))
    assert ostruct(*run_args(server, template="sys.j2")).code == 0
    assert _messages(server) == [
        {"role": "system", "content": "You help Ada."},
        {"role": "user", "content": "User text\n"},
    ]


def test_system_prompt_flag_overrides_front_matter(ostruct, server, workdir):
    (workdir / "sys.j2").write_text("---\nsystem_prompt: FROM FRONT MATTER\n---\nUser text\n")
    server.queue(Reply.json(ADA))
    assert ostruct(*run_args(server, "--system-prompt", "FROM FLAG", template="sys.j2")).code == 0
    messages = _messages(server)
    assert messages[0] == {"role": "system", "content": "FROM FLAG"}
    assert "FROM" not in messages[1]["content"]


def test_system_prompt_file_is_sent_as_the_system_message(ostruct, server, workdir):
    (workdir / "system.txt").write_text("SYSTEM FROM FILE")
    server.queue(Reply.json(ADA))
    assert ostruct(*run_args(server, "--system-prompt-file", "system.txt")).code == 0
    assert _messages(server) == [
        {"role": "system", "content": "SYSTEM FROM FILE"},
        {"role": "user", "content": "Who is Ada?\n"},
    ]


def test_empty_system_prompt_flag_sends_no_system_message(ostruct, server, workdir):
    (workdir / "sys.j2").write_text("---\nsystem_prompt: FROM FRONT MATTER\n---\nUser text\n")
    server.queue(Reply.json(ADA))
    assert ostruct(*run_args(server, "--system-prompt", "", template="sys.j2")).code == 0
    assert [m["role"] for m in _messages(server)] == ["user"]


def test_system_prompt_and_file_together_are_a_usage_error(ostruct, server, workdir):
    (workdir / "system.txt").write_text("x")
    out = ostruct(*run_args(server, "--system-prompt", "a", "--system-prompt-file", "system.txt"))
    assert out.code == 2
    assert "not both" in out.stderr
    assert server.requests == []


# --- output ------------------------------------------------------------------------------------


def test_output_file_gets_the_json_and_stdout_stays_empty(ostruct, server, workdir):
    server.queue(Reply.json(ADA))
    out = ostruct(*run_args(server, "--output-file", "result.json"))
    assert out.code == 0, out.stderr
    assert out.stdout == ""
    assert "result.json" in out.stderr
    assert json.loads((workdir / "result.json").read_text()) == ADA
    assert not [p for p in workdir.iterdir() if p.name.startswith(".ostruct-")]


def test_output_file_in_a_missing_directory_is_an_input_error(ostruct, server, workdir):
    server.queue(Reply.json(ADA))
    out = ostruct(*run_args(server, "-o", "missing/dir/result.json"))
    assert out.code == 3
    assert "--output-file" in out.stderr


def test_stream_without_a_terminal_prints_only_the_final_json(ostruct, server, workdir):
    server.queue(Reply.json(ADA, chunk_size=2))
    out = ostruct(*run_args(server, "--stream"))
    assert out.code == 0, out.stderr
    assert out.json() == ADA
    assert out.stderr == ""
    assert server.last_request.json["stream"] is True


def test_stream_with_the_responses_api(ostruct, server, workdir):
    server.queue(Reply.json(ADA, chunk_size=3))
    out = ostruct(*run_args(server, "--stream", "--api", "responses"))
    assert out.code == 0, out.stderr
    assert out.json() == ADA
    assert server.last_request.endpoint == "responses"


def test_verbose_logs_request_and_usage_to_stderr(ostruct, server, workdir):
    server.queue(Reply.json(ADA).with_usage(120, 30))
    out = ostruct(*run_args(server, "--verbose", "--temperature", "0.1"))
    assert out.code == 0
    assert out.json() == ADA
    assert "request: model=gpt-4o-mini" in out.stderr
    assert '"temperature": 0.1' in out.stderr
    # A gateway serving a model the registry knows is priced like OpenAI (issue 9).
    assert "usage: 120 prompt + 30 completion tokens; estimated cost $0.000036" in out.stderr
    server.queue(Reply.json(ADA).with_usage(120, 30))
    out = ostruct(*run_args(server, "--verbose", "--server", "openai"))
    assert out.code == 0
    assert "usage: 120 prompt + 30 completion tokens; estimated cost $0.000036" in out.stderr
    # A name the registry does not know may be anything: no price is claimed.
    server.queue(Reply.json(ADA).with_usage(120, 30))
    out = ostruct(*run_args(server, "--verbose", "-m", "house-model"))
    assert out.code == 0
    assert "usage: 120 prompt + 30 completion tokens\n" in out.stderr
    assert "cost" not in out.stderr


# --- client selection --------------------------------------------------------------------------


def test_api_key_env_names_the_variable_with_the_key(ostruct, workdir, monkeypatch):
    monkeypatch.setenv("MY_SERVER_KEY", "sk-my-server-key-123456")
    with FakeOpenAIServer(require_api_key="sk-my-server-key-123456") as server:
        server.queue(Reply.json(ADA))
        out = ostruct(*run_args(server, "--api-key-env", "MY_SERVER_KEY"))
        assert out.code == 0, out.stderr
        assert server.last_request.headers["Authorization"] == "Bearer sk-my-server-key-123456"


def test_base_url_uses_openai_api_key_by_default(ostruct, server, workdir):
    server.queue(Reply.json(ADA))
    assert ostruct(*run_args(server)).code == 0
    assert server.last_request.headers["Authorization"] == f"Bearer {CANARY}"


def test_server_profile_llama_cpp_changes_the_response_format(ostruct, server, workdir):
    server.queue(Reply.json(ADA))
    out = ostruct(*run_args(server, "--server", "llama.cpp"))
    assert out.code == 0, out.stderr
    response_format = server.last_request.json["response_format"]
    assert response_format["type"] == "json_object"
    assert response_format["schema"]["properties"]["name"] == {"type": "string"}


def test_default_client_comes_from_the_environment(ostruct, server, workdir, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    server.queue(Reply.json(ADA))
    out = ostruct("run", "prompt.j2", "schema.json", "-V", "who=Ada", "--max-retries", "0")
    assert out.code == 0, out.stderr
    assert out.json() == ADA


def test_example_folder_runs(ostruct, server, monkeypatch):
    example = Path(__file__).resolve().parents[2] / "examples" / "cli" / "extract_person"
    monkeypatch.chdir(example)
    answer = {"name": "Ada Lovelace", "birth_year": 1815, "occupation": "mathematician",
              "city": "London"}  # fmt: skip
    server.queue(Reply.json(answer))
    out = ostruct("run", "template.j2", "schema.json", "-f", "source=input.txt",
                  "--base-url", server.base_url)  # fmt: skip
    assert out.code == 0, out.stderr
    assert out.json() == answer
    system, user = _messages(server)
    assert system["role"] == "system" and "extract" in system["content"]
    assert "Ada Lovelace was born in 1815" in user["content"]
    assert "extract facts" not in user["content"]
