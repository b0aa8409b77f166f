"""``ostruct``'s output never shows a secret: the dry run (a password in ``--base-url`` or
``OPENAI_BASE_URL``, a ``-V`` variable with a secret-like name), ``--verbose`` tracebacks of a
server that echoes keys of any shape, and the error report."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from security_support import (
    AWS_ACCESS_KEY_ID,
    CANARY_KEY,
    GITHUB_TOKENS,
    GOOGLE_KEY,
    OPAQUE,
    CliOutcome,
    leaks,
)

from openai_structured.cli._report import Secrets, report
from openai_structured.testing import FakeOpenAIServer, Fault

Ostruct = Callable[..., CliOutcome]


def _dry_run(ostruct: Ostruct, *extra: str) -> CliOutcome:
    out = ostruct("run", "prompt.j2", "schema.json", "-V", "who=Ada", "--dry-run", *extra)
    assert out.code == 0, out.stderr
    assert "nothing was sent" in out.stdout
    return out


def test_dry_run_does_not_print_a_password_in_the_base_url(ostruct: Ostruct, workdir: Path) -> None:
    out = _dry_run(ostruct, "--base-url", f"http://ada:{OPAQUE}@127.0.0.1:9/v1")
    assert "http://ada:[REDACTED]@127.0.0.1:9/v1" in out.stdout
    assert leaks(out.stdout + out.stderr, OPAQUE, CANARY_KEY) == []


def test_dry_run_does_not_print_a_password_in_openai_base_url(
    ostruct: Ostruct, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", f"https://gw:{OPAQUE}@gateway.example.com/v1")
    out = _dry_run(ostruct)
    assert "https://gw:[REDACTED]@gateway.example.com/v1" in out.stdout
    assert leaks(out.stdout + out.stderr, OPAQUE, CANARY_KEY) == []


def test_dry_run_does_not_print_a_secret_named_variable(ostruct: Ostruct, workdir: Path) -> None:
    (workdir / "keyed.j2").write_text("Use {{ vendor_api_key }} to look up {{ who }}.\n")
    out = ostruct(
        "run", "keyed.j2", "schema.json", "-V", "who=Ada", "-V", f"vendor_api_key={OPAQUE}",
        "--dry-run",
    )  # fmt: skip
    assert out.code == 0, out.stderr
    assert "Use [REDACTED] to look up Ada." in out.stdout
    assert leaks(out.stdout + out.stderr, OPAQUE) == []


def test_a_secret_named_variable_echoed_by_the_server_is_masked(
    ostruct: Ostruct, server: FakeOpenAIServer, workdir: Path
) -> None:
    server.queue(Fault.status(400, message=f"unexpected text {OPAQUE} in the prompt"))
    out = ostruct(
        "run", "prompt.j2", "schema.json", "--base-url", server.base_url, "--max-retries", "0",
        "-V", "who=Ada", "-V", f"session_token={OPAQUE}", "--verbose",
    )  # fmt: skip
    assert out.code != 0
    assert leaks(out.stdout + out.stderr, OPAQUE) == []


@pytest.mark.parametrize("stream", [False, True], ids=["call", "stream"])
def test_verbose_failures_mask_keys_of_any_shape_the_server_echoes(
    ostruct: Ostruct, server: FakeOpenAIServer, workdir: Path, stream: bool
) -> None:
    echoed = (GOOGLE_KEY, AWS_ACCESS_KEY_ID, GITHUB_TOKENS[0])
    server.queue(Fault.status(401, message=f"rejected {' and '.join(echoed)}"))
    out = ostruct(
        "run", "prompt.j2", "schema.json", "--base-url", server.base_url, "--max-retries", "0",
        "-V", "who=Ada", "--verbose", *(["--stream"] if stream else []),
    )  # fmt: skip
    assert out.code == 6, out.stderr
    assert "Traceback" in out.stderr
    assert "rejected [REDACTED] and [REDACTED] and [REDACTED]" in out.stderr
    assert leaks(out.stdout + out.stderr, *echoed, CANARY_KEY) == []


def test_the_report_masks_the_url_password_query_secrets_and_secret_variables(
    capsys: pytest.CaptureFixture[str], cli_env: None
) -> None:
    secrets = Secrets()
    secrets.add_url(f"https://gw:{OPAQUE}@gw.example.com/v1?api-version=2024&sig=sig{OPAQUE}")
    secrets.add_variables(
        [f"vendor_api_key=var{OPAQUE}", "who=Ada Lovelace"],
        [f'cfg={{"db": {{"password": "json{OPAQUE}"}}, "name": "Ada Lovelace"}}'],
    )
    exc = RuntimeError(
        f"boom: {OPAQUE} sig{OPAQUE} var{OPAQUE} json{OPAQUE} for Ada Lovelace, api-version 2024"
    )
    code = report(exc, secrets=secrets, verbose=True)
    err = capsys.readouterr().err
    assert int(code) == 1
    assert "boom: [REDACTED] [REDACTED] [REDACTED] [REDACTED] for Ada Lovelace" in err
    assert leaks(err, OPAQUE) == []
