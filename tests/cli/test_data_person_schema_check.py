"""``ostruct schema check`` says which server its verdict is for, takes --server/--base-url like
``ostruct run``, and without them judges for the server a run would use (issue 16)."""

from __future__ import annotations

import json

import pytest

#: Strict mode cannot express it; servers that take the schema as written can.
NO_TAGS = {
    "type": "object",
    "properties": {"title": {"type": "string"}, "tags": {"type": "array", "items": False}},
    "required": ["title", "tags"],
}
STRICT_NOTE = (
    "note: strict mode (the openai, azure and compatible profiles) cannot use it (1 problem(s)); "
    "ostruct schema check --server openai no_tags.json lists them."
)


@pytest.fixture
def schema_file(workdir):
    (workdir / "no_tags.json").write_text(json.dumps(NO_TAGS))
    return "no_tags.json"


@pytest.mark.parametrize(
    ("args", "env", "code", "head", "scope"),
    [
        ([], {}, 1, "FAILED: schema 'output' cannot be used in strict mode (1 problem(s))",
         "server: OpenAI (OPENAI_API_KEY) (profile openai)"),
        (["--server", "llama.cpp"], {}, 0,
         "OK: schema 'output' can be used as written (the llama.cpp profile sends plain JSON "
         "Schema: no strict-mode rewrites)",
         "server: OpenAI (OPENAI_API_KEY) (profile llama.cpp, from --server)"),
        (["--base-url", "http://localhost:11434/v1"], {}, 0,
         "OK: schema 'output' can be used as written (the ollama profile sends plain JSON "
         "Schema: no strict-mode rewrites)",
         "server: --base-url http://localhost:11434/v1 (profile ollama)"),
        ([], {"OPENAI_API_KEY": "", "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
              "OPENAI_STRUCTURED_SERVER": "vllm"}, 0,
         "OK: schema 'output' can be used as written (the vllm profile sends plain JSON Schema: "
         "no strict-mode rewrites)",
         "server: OPENAI_BASE_URL http://127.0.0.1:9/v1 (profile vllm)"),
        ([], {"OPENAI_API_KEY": ""}, 1,
         "FAILED: schema 'output' cannot be used in strict mode (1 problem(s))",
         "server: no server configured (a real run would fail); checked as for OpenAI "
         "(profile openai)"),
    ],
    ids=["openai-key", "server-flag", "base-url", "env-url", "none"],
)  # fmt: skip
def test_the_verdict_names_the_server_it_is_for(
    ostruct_process, schema_file, workdir, args, env, code, head, scope
):
    out = ostruct_process("schema", "check", schema_file, *args, cwd=workdir, env=env)
    assert out.code == code, out.stderr
    lines = out.stdout.splitlines()
    assert lines[:2] == [head, scope]
    if code == 0:
        assert lines[2] == STRICT_NOTE
    else:
        assert "  error  #/properties/tags/items: `items: false` allows only an empty array" in (
            lines
        )
    assert out.stderr == ""


def test_without_options_the_verdict_is_for_the_embedded_model_a_run_would_use(
    ostruct, schema_file, workdir, monkeypatch
):
    from openai_structured.local import is_installed

    if not is_installed():
        pytest.skip("the embedded model ([local] extra) is not installed")
    monkeypatch.delenv("OPENAI_API_KEY")
    monkeypatch.setenv("OPENAI_STRUCTURED_LOCAL", "1")
    out = ostruct("schema", "check", schema_file)
    assert out.code == 0, out.stderr
    assert out.stdout.splitlines()[1] == (
        "server: the embedded local model (not started: nothing is sent) (profile llama.cpp)"
    )
    # ... and a dry run (the same server) takes the schema.
    run = ostruct("run", "prompt.j2", schema_file, "-V", "who=Ada", "--dry-run")
    assert run.code == 0, run.stderr
    assert "(profile llama.cpp)" in run.stdout


@pytest.mark.parametrize(
    ("args", "code"), [([], 4), (["--server", "vllm"], 0)], ids=["openai", "vllm"]
)
def test_the_check_agrees_with_what_a_run_does(ostruct, schema_file, workdir, args, code):
    check = ostruct("schema", "check", schema_file, *args)
    run = ostruct("run", "prompt.j2", schema_file, "-V", "who=Ada", "--dry-run", *args)
    assert run.code == code, run.stderr
    assert check.code == (0 if code == 0 else 1)


def test_show_prints_the_schema_as_that_server_gets_it(ostruct, schema_file, workdir):
    out = ostruct("schema", "check", schema_file, "--server", "vllm", "--show")
    assert out.code == 0
    sent = json.loads(out.stdout.split("schema as sent:\n", 1)[1])
    assert sent == NO_TAGS


def test_a_schema_no_server_can_use_fails_everywhere(ostruct, workdir):
    remote = {"type": "object", "properties": {"a": {"$ref": "https://example.com/a.json"}}}
    (workdir / "remote.json").write_text(json.dumps(remote))
    out = ostruct("schema", "check", "remote.json", "--server", "ollama")
    assert out.code == 1
    assert out.stdout.startswith("FAILED: schema 'output' cannot be sent (1 problem(s))\n")
    assert "#/properties/a" in out.stdout


def test_an_unknown_profile_in_the_environment_is_a_config_error(ostruct, schema_file, workdir,
                                                                 monkeypatch):  # fmt: skip
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("OPENAI_STRUCTURED_SERVER", "bogus")
    out = ostruct("schema", "check", schema_file)
    assert out.code == 5
    assert out.stderr.startswith("Error (config): OPENAI_STRUCTURED_SERVER: Unknown server profile")
    assert ostruct("schema", "check", schema_file, "--server", "bogus").code == 2


def test_a_password_in_the_base_url_is_masked(ostruct, schema_file, workdir):
    out = ostruct("schema", "check", schema_file, "--base-url", "http://u:hunter2hunter2@h/v1")
    assert "hunter2hunter2" not in out.stdout + out.stderr
    assert "[REDACTED]" in out.stdout
