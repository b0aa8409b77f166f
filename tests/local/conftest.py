"""Fixtures for the end-to-end tests against the embedded model (one server per module).

The tests marked ``local`` need the ``[local]`` extra. Without it they are skipped with the
reason, unless ``OPENAI_STRUCTURED_REQUIRE_LOCAL=1`` (set it in CI, which installs the extra)
turns the skip into a failure, so a broken install cannot pass silently.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from local_support import assert_gone, require_local_extra, server_processes

from openai_structured.local import LocalModelServer, ensure_model


@pytest.fixture(scope="session")
def vocab_model() -> Any:
    """The bundled model's vocabulary only (no weights): enough for grammars and tokens."""
    require_local_extra()
    import llama_cpp

    return llama_cpp.Llama(str(ensure_model()), vocab_only=True, verbose=False)


@pytest.fixture(scope="module")
def local_server() -> Iterator[LocalModelServer]:
    require_local_extra()
    before = set(server_processes())
    server = LocalModelServer()
    with server:
        pid = server.pid
        yield server
    assert pid is not None
    assert_gone(pid)
    assert set(server_processes()) <= before, "a server process outlived its module"
