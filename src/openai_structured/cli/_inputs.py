"""The files ostruct reads for itself: TEMPLATE, SCHEMA and ``--system-prompt-file``.

They get the checks ``-f`` files get, from the templates package's :class:`PathPolicy` and
:class:`FileInfo`: regular files only (checked with ``stat`` before anything is opened, so a
FIFO cannot block the run and ``/dev/zero`` cannot fill memory), at most ``--max-file-size``,
UTF-8 text. ``--system-prompt-file`` is also confined to the allowed directories (the working
directory and ``--allow``) and counts toward ``--max-total-size``, exactly like a ``-f`` file;
TEMPLATE and SCHEMA are the program, not input data, and may live anywhere.
"""

from __future__ import annotations

import json
import os
import re
import stat
from typing import Any

from ..templates import DEFAULT_MAX_FILE_SIZE, FileInfo, PathPolicy, TemplateError
from ._report import CliError
from .exit_codes import ExitCode

__all__ = [
    "check_template_file",
    "find_lone_surrogate",
    "load_schema",
    "read_system_prompt_file",
]

_SURROGATE = re.compile("[\ud800-\udfff]")

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _require_regular(label: str, path: str, code: ExitCode) -> None:
    """``stat`` (never ``open``) ``path``: a missing or special file fails here, at once."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise CliError(f"{label} {path}: file not found.", code) from None
    except OSError as exc:
        raise CliError(f"{label} {path}: cannot read it: {exc.strerror or exc}", code) from None
    if not stat.S_ISREG(st.st_mode):
        kind = next((name for test, name in _KINDS if test(st.st_mode)), "not a regular file")
        raise CliError(
            f"{label} {path} is {kind}, not a regular file.\n"
            "ostruct reads TEMPLATE, SCHEMA and --system-prompt-file whole: give a file (to use "
            "piped data, read it in the template as {{ stdin }}).",
            code,
        )


def _own_policy(path: str, max_file_size: int) -> PathPolicy:
    """A policy that allows ``path``'s own (real) directory: the size and text checks of -f
    files, without the confinement (TEMPLATE and SCHEMA may live anywhere)."""
    home = os.path.dirname(os.path.realpath(path))
    return PathPolicy(
        allowed_dirs=[home], max_file_size=max_file_size, max_total_size=max_file_size
    )


def _read(label: str, path: str, policy: PathPolicy, code: ExitCode) -> str:
    _require_regular(label, path, code)
    try:
        return FileInfo(path, policy).content
    except TemplateError as exc:
        raise CliError(f"{label}: {exc}", code) from None


def check_template_file(path: str, max_file_size: int) -> None:
    """TEMPLATE is a regular file within the size limit (the renderer reads it afterwards)."""
    _require_regular("TEMPLATE", path, ExitCode.INPUT)
    policy = _own_policy(path, max_file_size)
    try:
        info = FileInfo(path, policy)
        policy.check_size(info.path, info.size)
    except TemplateError as exc:
        raise CliError(f"TEMPLATE: {exc}", ExitCode.INPUT) from None


def read_system_prompt_file(path: str, policy: PathPolicy) -> str:
    """The text of ``--system-prompt-file``, checked and counted like a ``-f`` file."""
    return _read("--system-prompt-file", path, policy, ExitCode.INPUT)


def _pointer(parent: str, key: str | int) -> str:
    return f"{parent}/{str(key).replace('~', '~0').replace('/', '~1')}"


def _shown(text: str) -> str:
    """``text`` quoted with non-ASCII escaped: safe to print whatever it holds."""
    return json.dumps(text)


def find_lone_surrogate(doc: Any) -> str | None:
    """Where in ``doc`` a string (or property name) holds a lone surrogate, as a sentence; the
    first in document order. A loop, not recursion: any depth json.loads returns is fine."""
    stack: list[tuple[Any, str]] = [(doc, "#")]
    while stack:
        value, where = stack.pop()
        if isinstance(value, str):
            if _SURROGATE.search(value):
                return f"the string at {where} ({_shown(value)})"
        elif isinstance(value, dict):
            for key in value:
                if _SURROGATE.search(key):
                    return f"the property name {_shown(key)} in {where}"
            stack.extend((value[k], _pointer(where, k)) for k in reversed(list(value)))
        elif isinstance(value, list):
            stack.extend((value[i], _pointer(where, i)) for i in reversed(range(len(value))))
    return None


def load_schema(path: str, max_file_size: int = DEFAULT_MAX_FILE_SIZE) -> dict[str, Any]:
    """The JSON Schema in ``path``; every way it can be unusable is a :class:`CliError` with
    code :attr:`ExitCode.SCHEMA` (4)."""
    code = ExitCode.SCHEMA
    text = _read("SCHEMA", path, _own_policy(path, max_file_size), code)
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CliError(
            f"SCHEMA {path}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}.\n"
            "The schema must be a JSON Schema document in JSON.",
            code,
        ) from None
    except RecursionError:
        raise CliError(
            f"SCHEMA {path}: nested too deeply for the JSON parser (about 1,000 levels).\n"
            "No usable schema needs that depth; a server would refuse it too.",
            code,
        ) from None
    except ValueError:  # the only other failure of json.loads: Python's limit on int digits
        raise CliError(
            f"SCHEMA {path}: an integer in it has more than 4,300 digits, more than Python "
            f"reads (sys.get_int_max_str_digits()).\nNo usable schema needs such a number.",
            code,
        ) from None
    if not isinstance(doc, dict):
        raise CliError(
            f"SCHEMA {path}: the schema must be a JSON object, got {type(doc).__name__}.\n"
            'Wrap the answer in an object: {"type": "object", "properties": {...}}.',
            code,
        )
    where = find_lone_surrogate(doc)
    if where is not None:
        raise CliError(
            f"SCHEMA {path}: {where} holds a lone surrogate, which is not Unicode text.\n"
            "A \\uD800-\\uDFFF escape must be the first half of a pair followed by the second "
            "(\\ud83d\\ude00 is one character); fix or remove it.",
            code,
        )
    return doc
