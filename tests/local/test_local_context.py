"""The embedded model's context setting, its figures as data, and when its notice is shown.

Pure checks: no server is started (``LocalModelServer()`` only reads its settings).
"""

from __future__ import annotations

import io
import logging
import os
from pathlib import Path

import pytest

from openai_structured.errors import OpenAIClientError
from openai_structured.local import (
    CONTEXT_ENV_VAR,
    MODEL_ENV_VAR,
    LocalContextError,
    LocalModelError,
    LocalModelServer,
    served_context,
)
from openai_structured.local import _shared as shared
from openai_structured.local._shared import notice_due
from openai_structured.registry import embedded_model


def test_the_embedded_models_figures_are_data_with_sources():
    model = embedded_model()
    assert model.name == "gemma-3-270m"
    assert (model.served_context, model.trained_context) == (4096, 32768)
    assert model.input_price == model.output_price == 0
    assert model.tokenizer == "gguf"
    for figure in ("served_context", "trained_context", "max_output_tokens", "tokenizer", "prices"):
        assert model.sources[figure]["ref"], figure


def test_the_context_defaults_to_the_data_file_and_follows_the_variable():
    assert served_context({}) == 4096
    assert served_context({CONTEXT_ENV_VAR: "  "}) == 4096
    assert served_context({CONTEXT_ENV_VAR: "8192"}) == 8192
    assert served_context({CONTEXT_ENV_VAR: "32768"}) == 32768


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("32769", "more than the 32,768 the embedded model was trained with"),
        ("0", "not a context size"),
        ("-5", "not a context size"),
        ("4k", "not a context size"),
        ("1e4", "not a context size"),
    ],
)
def test_an_unusable_context_is_a_typed_pointed_error(value, says):
    with pytest.raises(LocalContextError, match=says) as caught:
        served_context({CONTEXT_ENV_VAR: value})
    error = caught.value
    assert isinstance(error, ValueError) and isinstance(error, LocalModelError)
    assert isinstance(error, OpenAIClientError)
    assert CONTEXT_ENV_VAR in str(error) and "4,096" in str(error)  # the name and the default
    assert error.value == value


def test_another_gguf_is_not_held_to_the_bundled_models_trained_context():
    env = {CONTEXT_ENV_VAR: "65536", MODEL_ENV_VAR: "/models/other.gguf"}
    assert served_context(env) == 65536


def test_the_server_takes_its_default_context_from_the_same_place(monkeypatch):
    monkeypatch.delenv(MODEL_ENV_VAR, raising=False)
    monkeypatch.delenv(CONTEXT_ENV_VAR, raising=False)
    assert LocalModelServer().n_ctx == 4096
    monkeypatch.setenv(CONTEXT_ENV_VAR, "12288")
    assert LocalModelServer().n_ctx == 12288
    assert LocalModelServer(n_ctx=2048).n_ctx == 2048  # an explicit n_ctx= wins
    with pytest.raises(LocalContextError, match="n_ctx= is 40,000 tokens"):
        LocalModelServer(n_ctx=40_000)
    monkeypatch.setenv(CONTEXT_ENV_VAR, "big")
    with pytest.raises(LocalContextError, match=CONTEXT_ENV_VAR):
        LocalModelServer()


def test_the_notice_is_never_due_in_a_pipe_or_a_file(tmp_path: Path):
    assert notice_due(io.StringIO(), marker_dir=tmp_path) is False
    read, write = os.pipe()
    with os.fdopen(write, "w") as pipe:
        assert notice_due(pipe, marker_dir=tmp_path) is False
    os.close(read)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_the_notice_is_due_once_per_terminal_session(tmp_path: Path):
    master, slave = os.openpty()
    try:
        with os.fdopen(slave, "w", closefd=False) as terminal:
            assert notice_due(terminal, marker_dir=tmp_path) is True
            assert notice_due(terminal, marker_dir=tmp_path) is False
            # Another session on the same terminal (a new login) sees it again.
            (marker,) = tmp_path.iterdir()
            marker.write_text("1\n", encoding="utf-8")
            assert notice_due(terminal, marker_dir=tmp_path) is True
    finally:
        os.close(slave)
        os.close(master)


def test_the_notice_is_a_warning_only_when_due(monkeypatch, caplog):
    server = LocalModelServer(n_ctx=4096)
    for due, level in ((True, logging.WARNING), (False, logging.INFO)):
        monkeypatch.setattr(shared, "notice_due", lambda due=due: due)
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="openai_structured.local"):
            shared._notice(server)
        (record,) = caplog.records
        assert record.levelno == level
        assert "using the embedded local model (gemma-3-270m" in record.getMessage()
        assert "context 4,096 tokens" in record.getMessage()
