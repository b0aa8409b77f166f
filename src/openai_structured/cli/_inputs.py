"""The files ostruct reads for itself: TEMPLATE, SCHEMA and ``--system-prompt-file``.

They get the checks ``-f`` files get, from the templates package's :class:`PathPolicy` and
:class:`FileInfo`: regular files only (checked with ``stat`` before anything is opened, so a
FIFO cannot block the run and ``/dev/zero`` cannot fill memory), at most ``--max-file-size``,
UTF-8 text. ``--system-prompt-file`` is also confined to the allowed directories (the working
directory and ``--allow``) and counts toward ``--max-total-size``, exactly like a ``-f`` file;
TEMPLATE and SCHEMA are the program, not input data, and may live anywhere.

Before anything is sent, the inputs are also checked for making sense as a prompt: a ``-d``
that matches no file and a template that renders to no text are refused (``--allow-empty``
permits them: :func:`check_dir_inputs`, :func:`check_prompt_text`), a ``-d`` list used as one
file gets the loop to write (:func:`file_list_error`), and a SCHEMA that is not JSON says
when TEMPLATE and SCHEMA look swapped.
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Mapping, Sequence
from typing import Any

from ..templates import (
    DEFAULT_MAX_FILE_SIZE,
    FileInfo,
    FileInfoList,
    PathPolicy,
    TemplateError,
    TemplateUndefinedError,
    parse_file_spec,
)
from ._report import CliError
from .exit_codes import ExitCode

__all__ = [
    "check_dir_inputs",
    "check_prompt_text",
    "check_template_file",
    "file_list_error",
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


_TEMPLATE_MARKS = ("{{", "{%", "{#")
_TEMPLATE_SUFFIXES = (".j2", ".jinja", ".jinja2", ".tmpl", ".tpl")


def _is_json_object_file(path: str, limit: int) -> bool:
    try:
        with open(path, "rb") as handle:
            data = handle.read(limit + 1)
        return len(data) <= limit and isinstance(json.loads(data), dict)
    except (OSError, ValueError, RecursionError):
        return False


def _swap_hint(path: str, text: str, template: str | None, limit: int) -> str:
    """Why SCHEMA (not JSON) may be the template: the arguments swapped, or a template given."""
    if template is not None and _is_json_object_file(template, limit):
        return (
            f"TEMPLATE and SCHEMA look swapped: {template} is JSON and {path} is not. The "
            f"template comes first: ostruct run {path} {template} ..."
        )
    if path.lower().endswith(_TEMPLATE_SUFFIXES) or any(m in text for m in _TEMPLATE_MARKS):
        return (
            f"{path} looks like a template. ostruct run takes TEMPLATE first, then SCHEMA (a JSON "
            "Schema document in JSON)."
        )
    return "The schema must be a JSON Schema document in JSON."


def load_schema(
    path: str, max_file_size: int = DEFAULT_MAX_FILE_SIZE, *, template: str | None = None
) -> dict[str, Any]:
    """The JSON Schema in ``path``; every way it can be unusable is a :class:`CliError` with
    code :attr:`ExitCode.SCHEMA` (4). ``template``, the TEMPLATE argument of the same command,
    lets the message say when the two look swapped."""
    code = ExitCode.SCHEMA
    text = _read("SCHEMA", path, _own_policy(path, max_file_size), code)
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CliError(
            f"SCHEMA {path}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}.\n"
            + _swap_hint(path, text, template, max_file_size),
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


# --- -d inputs and the rendered prompt ---------------------------------------------------------

_ALLOW_EMPTY = "--allow-empty"
#: Files of a directory named in a message, at most.
_SHOWN = 3


def _dir_specs(dirs: Sequence[str]) -> list[tuple[str, str, str]]:
    """``(name, path, spec)`` of each ``-d NAME=DIR`` (already validated by collect_inputs)."""
    out = []
    for spec in dirs:
        name, path = parse_file_spec(spec, option="-d")
        out.append((name, path, spec))
    return out


def _what_is_there(path: str, recursive: bool) -> str:
    """What a -d directory does hold (the files the pattern left out), for the message."""
    files: list[str] = []
    subdirs = hidden = 0
    for current, dirnames, filenames in os.walk(path):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        if not recursive:
            subdirs, dirnames[:] = len(dirnames), []
        hidden += sum(f.startswith(".") for f in filenames)
        files += [
            os.path.relpath(os.path.join(current, f), path)
            for f in sorted(filenames)
            if not f.startswith(".")
        ]
    if len(files) > _SHOWN:
        more = len(files) - _SHOWN
        held = f"{', '.join(files[:_SHOWN])} and {more} more file{'s' * (more != 1)}"
    else:
        held = ", ".join(files)
    if subdirs:
        dirs = f"{subdirs} subdirector{'ies' if subdirs != 1 else 'y'}"
        held = f"{held} and {dirs}" if held else dirs
        held += " (not searched without --recursive)"
    if hidden:
        hidden_files = f"{hidden} hidden file{'s' * (hidden != 1)}"
        held = f"{held} and {hidden_files}" if held else hidden_files
        held += " (skipped, like hidden directories)"
    return f"it holds {held}" if held else "it is empty"


def check_dir_inputs(
    dirs: Sequence[str],
    variables: Mapping[str, Any],
    *,
    globs: Sequence[str],
    recursive: bool,
) -> None:
    """Refuse a ``-d`` that matched no file: a prompt made of an empty list gets an answer made
    up from nothing (unless --allow-empty says an empty list is meant)."""
    for name, path, spec in _dir_specs(dirs):
        found = variables.get(name)
        if not isinstance(found, FileInfoList) or found:
            continue
        if globs:
            which = " or ".join(repr(g) for g in globs)
            matched = f"no file in {path} matches --glob {which}"
        else:
            matched = f"no file to read in {path}"
        raise CliError(
            f"-d {spec}: {matched}; {_what_is_there(path, recursive)}. Nothing was sent.\n"
            "Check the directory and --glob"
            + ("" if recursive else " (--recursive includes subdirectories)")
            + f", or give {_ALLOW_EMPTY} if an empty list is what you mean.",
            ExitCode.INPUT,
        )


def check_prompt_text(text: str, template: str) -> None:
    """Refuse a rendered prompt with no letter or digit in it (empty, only whitespace or only
    punctuation): there is nothing in it to answer (unless --allow-empty)."""
    if any(ch.isalnum() for ch in text):
        return
    shown = text.strip()
    if shown:
        what = f"renders to a prompt with no letter or digit in it ({json.dumps(shown[:40])})"
    else:
        what = "renders to an empty prompt"
    raise CliError(
        f"TEMPLATE {template} {what}: there is nothing to answer. Nothing was sent.\n"
        "Check what it uses (an empty file or list, a condition that is never true), or give "
        f"{_ALLOW_EMPTY} to send it anyway.",
        ExitCode.INPUT,
    )


def _uses(source: str, name: str, attr: str) -> bool:
    """Whether ``source`` reads ``name.attr`` (or ``name['attr']``)."""
    key, field = re.escape(name), re.escape(attr)
    pattern = rf"\b{key}\s*(?:\.\s*{field}\b|\[\s*['\"]{field}['\"])"
    return re.search(pattern, source) is not None


def file_list_error(
    exc: TemplateUndefinedError, *, dirs: Sequence[str], template: str, schema: str
) -> CliError | None:
    """For a file's attribute asked of a ``-d`` list (``{{ emails.content }}``): that -d gives a
    list, the loop to write, and ``ostruct batch`` for one answer per file. None otherwise."""
    attr = exc.name
    if exc.owner != FileInfoList.__name__ or attr not in FileInfo._template_attributes:
        return None
    specs = _dir_specs(dirs)
    try:
        with open(template, encoding="utf-8", errors="replace") as handle:
            source = handle.read(DEFAULT_MAX_FILE_SIZE)
    except OSError:
        source = ""
    used = [spec for spec in specs if _uses(source, spec[0], attr)]
    name, path, spec = (used or specs or [("NAME", "DIR", "NAME=DIR")])[0]
    where = f"{exc.filename}:{exc.lineno}: " if exc.filename and exc.lineno else ""
    return CliError(
        f"{where}{name} is the list of the files of -d {spec}, not one file: it has no "
        f"attribute {attr!r}.\n"
        "-d puts every file in one prompt. Loop over them: "
        f"{{% for f in {name} %}}{{{{ f.{attr} }}}}{{% endfor %}} ({{{{ {name} }}}} pastes "
        "them all, each under a '# path' line).\n"
        f"For one answer per file, use ostruct batch: ostruct batch {template} {schema} -i "
        f"{path} -o answers.jsonl, where each file is the variable file "
        f"({{{{ file.{attr} }}}}; see docs/bulk.md).",
        ExitCode.INPUT,
    )
