"""The server process: ``python -m llama_cpp.server`` behind a lifeline to its parent.

Run as ``python -m openai_structured.local._child [llama_cpp.server arguments]`` by
:class:`~openai_structured.local.LocalModelServer`, never by users.

Why a wrapper instead of starting ``llama_cpp.server`` directly:

* **The API key never appears on a command line.** ``ps`` and ``/proc/PID/cmdline`` show every
  process's arguments to every local user, so the parent writes the key as one JSON line to our
  stdin (a pipe only the two of us hold) and we hand it to llama_cpp.server in-process.
* **The parent can tell that it is us answering on the port.** Before it sends the key anywhere
  it asks ``GET`` :data:`~._model.PROOF_PATH` ``?challenge=<random>``, which needs no key; we
  answer with an HMAC of the challenge keyed by the API key (:func:`~._model.proof_of_key`).
  Another process that grabbed the port cannot compute it, and learns nothing from the question.
* **No orphans, even if the parent is SIGKILLed.** After that first line the parent holds the
  write end of the pipe and never writes to it again. When the parent dies for any reason the
  kernel closes that end, our read returns EOF and we exit at once. Linux's
  ``PR_SET_PDEATHSIG`` would fire when the *thread* that started us exits (a worker thread,
  ``asyncio.to_thread``), killing a healthy server; the pipe is tied to the process and also
  works on macOS and Windows.
* **A predictable configuration.** llama-cpp-python's settings are pydantic-settings models that
  also read environment variables named like their fields (``API_KEY``, ``N_CTX``, ``HOST``,
  ``CHAT_FORMAT``, ``CONFIG_FILE``...). Such variables in a user's shell would silently change the
  server, so they are removed here; everything is given on the command line instead (all but
  the key, which comes through stdin).
* **A Gemma 3 chat format that keeps the system prompt** (:data:`GEMMA3_CHAT_FORMAT`). The
  bundled GGUF carries no chat template, so llama-cpp-python would fall back to Llama 2's; its
  built-in ``gemma`` format silently drops system messages. Gemma 3 has no system role: its own
  template puts the system text at the top of the first user turn, and so do we.
* **Structured decoding that is valid, bounded and fast** (:mod:`._decoding`): a grammar that
  admits only valid JSON, lists and strings capped by the input, a derived output limit,
  greedy decoding by default, and the grammar checked against the chosen token only.
* **No crash on CPUs with AMX** (Intel Sapphire Rapids and later). A wheel built for such a CPU
  (the default, ``GGML_NATIVE``) routes matrix products through ggml's AMX kernels, which
  segfault on the first decode of this model (measured with llama-cpp-python 0.3.36:
  ``ggml_backend_amx_mul_mat``). On those builds we turn off the "extra buffer types" (AMX and
  weight repacking); plain AVX-512 kernels are used instead.
"""

from __future__ import annotations

import importlib
import json
import os
import runpy
import sys
import threading
from collections.abc import Mapping
from typing import Any

__all__ = ["GEMMA3_CHAT_FORMAT", "format_gemma3", "main", "read_private_config"]

from ._decoding import document_prompt
from ._decoding import install as install_structured_decoding
from ._model import GEMMA3_CHAT_FORMAT, PROOF_PATH, proof_of_key
from ._prompting import message_text

# The private first line is a small JSON object; anything longer is not from our parent.
_CONFIG_LIMIT = 64 * 1024


def read_private_config(fd: int = 0) -> dict[str, Any]:
    """The JSON object the parent wrote as the first line of our stdin (the private channel).

    Read byte by byte: whatever follows the line is the lifeline's, not ours. EOF before the
    line ends means the parent is already gone: exit.
    """
    line = bytearray()
    while not line.endswith(b"\n"):
        byte = os.read(fd, 1)
        if not byte:
            os._exit(0)
        if len(line) > _CONFIG_LIMIT:
            raise SystemExit("openai-structured: the private configuration line is too long")
        line += byte
    config = json.loads(line)
    if not isinstance(config, dict) or not isinstance(config.get("api_key"), str):
        raise SystemExit("openai-structured: the private configuration line has no api_key")
    return config


def _exit_when_parent_dies() -> None:
    """Block on stdin; EOF (or any error) means the parent is gone: exit immediately."""
    try:
        while os.read(0, 4096):
            pass
    except OSError:
        pass
    # os._exit: no clean-up handlers to wait for, the server holds nothing worth flushing.
    os._exit(0)


def _clean_environment() -> None:
    # Imported by name: mypy must pass whether or not the extra is installed.
    settings = importlib.import_module("llama_cpp.server.settings")
    names = {str(name).upper() for name in settings.Settings.model_fields} | {"CONFIG_FILE"}
    for key in list(os.environ):
        if key.upper() in names:
            del os.environ[key]


def format_gemma3(messages: list[Mapping[str, Any]]) -> tuple[str, list[str]]:
    """The Gemma 3 prompt for chat ``messages``, and its stop strings (pure)."""
    system = "\n\n".join(
        message_text(m.get("content")) for m in messages if m.get("role") in ("system", "developer")
    )
    turns: list[tuple[str, str]] = []
    for message in messages:
        role = message.get("role")
        if role in ("system", "developer"):
            continue
        turns.append(
            ("model" if role == "assistant" else "user", message_text(message.get("content")))
        )
    if system:
        if turns and turns[0][0] == "user":
            turns[0] = ("user", f"{system}\n\n{turns[0][1]}")
        else:
            turns.insert(0, ("user", system))
    prompt = "".join(f"<start_of_turn>{role}\n{text}<end_of_turn>\n" for role, text in turns)
    return prompt + "<start_of_turn>model\n", ["<end_of_turn>"]


def _register_gemma3() -> None:
    chat = importlib.import_module("llama_cpp.llama_chat_format")

    def formatter(messages: list[Mapping[str, Any]], **_: Any) -> Any:
        # A structured request is a document to continue, not chat turns (see _prompting).
        prompt, stop = document_prompt() or format_gemma3(messages)
        return chat.ChatFormatterResponse(prompt=prompt, stop=stop)

    chat.register_chat_format(GEMMA3_CHAT_FORMAT)(formatter)


def _avoid_amx_crash() -> None:
    bindings = importlib.import_module("llama_cpp.llama_cpp")
    info = bindings.llama_print_system_info()
    if b"AMX_INT8 = 1" not in info:
        return
    default_params = bindings.llama_model_default_params

    def without_extra_buffers() -> Any:
        params = default_params()
        if hasattr(params, "use_extra_bufts"):
            params.use_extra_bufts = False
        return params

    # llama_cpp.llama reads this through the module attribute at model load time.
    setattr(bindings, "llama_model_default_params", without_extra_buffers)  # noqa: B010
    print("openai-structured: AMX build, extra buffer types off (avoids a crash)", flush=True)


def _add_proof_route(api_key: str) -> None:
    """Make every app llama_cpp.server creates answer the parent's identity challenge."""
    app_module = importlib.import_module("llama_cpp.server.app")
    create_app = app_module.create_app

    async def proof(challenge: str = "") -> dict[str, str]:
        return {"proof": proof_of_key(api_key, challenge[:256])}

    def create_app_with_proof(*args: Any, **kwargs: Any) -> Any:
        app = create_app(*args, **kwargs)
        # No key needed (the parent asks before it sends the key anywhere); reveals nothing.
        app.add_api_route(PROOF_PATH, proof, methods=["GET"], include_in_schema=False)
        return app

    # llama_cpp.server's __main__ imports create_app from this module when it runs.
    setattr(app_module, "create_app", create_app_with_proof)  # noqa: B010


def main(argv: list[str]) -> None:
    """Read the private configuration, start the lifeline, run llama-cpp-python's server."""
    # numpy's BLAS threads spin-wait after each product the sampler computes (_head); beside
    # llama.cpp's threads on the same cores they made every decode 4-9x slower (measured).
    # One thread, set before numpy is first imported (nothing here imports it before).
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    config = read_private_config()
    threading.Thread(target=_exit_when_parent_dies, name="parent-lifeline", daemon=True).start()
    _clean_environment()
    _register_gemma3()
    _avoid_amx_crash()
    # Before llama_cpp.server.app is imported: it reads the request models at import.
    install_structured_decoding()
    api_key = config["api_key"]
    _add_proof_route(api_key)
    # sys.argv is this interpreter's own list: changing it does not change the process's
    # command line that ps shows. One argument, so a key starting with "-" stays the value.
    sys.argv = ["llama_cpp.server", *argv, f"--api_key={api_key}"]
    runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
