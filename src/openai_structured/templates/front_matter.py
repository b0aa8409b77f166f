"""Template front matter: a small, safe subset of YAML, parsed without a YAML library.

A template may start with a block between two ``---`` lines::

    ---
    system_prompt: |
      You are a careful analyst.
      Answer in {{ language }}.
    model: gpt-4o-mini
    temperature: 0.2
    tags: ["review", "code"]
    ---
    Review {{ file.path }}: ...

Supported (one flat mapping, keys at column 0):

* ``key: value`` where value is ``true``/``false``, ``null``/``~``/empty, an integer, a float,
  a ``"double-quoted"`` string (JSON escapes), a ``'single-quoted'`` string (``''`` for a
  quote), a JSON list or object (``[...]``/``{...}``), or else a plain string (a ``#`` after
  a space starts a comment);
* block scalars ``|`` (keep lines) and ``>`` (fold lines into one paragraph), with the
  ``-`` (strip the final newline) and ``+`` (keep all trailing newlines) suffixes;
* blank lines and ``#`` comment lines.

Anything else (nested mappings, ``- item`` lists, anchors, tags) is refused with a
:class:`~.errors.TemplateSyntaxError` naming the line, rather than guessed at; so are JSON
values nested deeper than :data:`~._limits.MAX_DATA_DEPTH` levels and integers of more than
:data:`~._limits.MAX_DATA_INT_DIGITS` digits. PyYAML is not a
dependency, and a safe subset means front matter can never construct Python objects.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ._limits import DataLimitError, check_int_text, loads_bounded
from .errors import TemplateSyntaxError

__all__ = ["split_front_matter"]

_FENCE = re.compile(r"---[ \t]*\Z")
_END = re.compile(r"(---|\.\.\.)[ \t]*\Z")
_KEY = re.compile(r"([A-Za-z_][A-Za-z0-9_.-]*)[ \t]*:(?:[ \t]+|\Z)(.*)\Z")
_BLOCK = re.compile(r"([|>])([+-]?)[ \t]*(?:#.*)?\Z")
_INT = re.compile(r"[-+]?(0|[1-9][0-9_]*)\Z")
_FLOAT = re.compile(r"[-+]?([0-9][0-9_]*)?\.?[0-9]+([eE][-+]?[0-9]+)?\Z")
_CONSTANTS: dict[str, Any] = {
    "true": True,
    "True": True,
    "TRUE": True,
    "false": False,
    "False": False,
    "FALSE": False,
    "null": None,
    "Null": None,
    "NULL": None,
    "~": None,
    "": None,
}


def split_front_matter(source: str, filename: str | None = None) -> tuple[dict[str, Any], str, int]:
    """Split ``source`` into ``(front_matter, body, body_line_offset)``.

    Front matter exists only when the very first line is ``---``; it ends at the next ``---``
    (or ``...``) line. ``body_line_offset`` is the number of lines before the body, so an error
    on body line *n* is at line *n + offset* of the file. Without front matter the result is
    ``({}, source, 0)``.
    """
    text = source.removeprefix("\ufeff")
    lines = text.split("\n")
    if not lines or not _FENCE.match(lines[0].rstrip("\r")):
        return {}, source, 0
    for end in range(1, len(lines)):
        if _END.match(lines[end].rstrip("\r")):
            break
    else:
        raise TemplateSyntaxError(
            "front matter opened with '---' on line 1 is never closed; end it with a '---' "
            "line (or remove the first line if it is not front matter).",
            filename=filename,
            lineno=1,
        )
    data = _parse([line.rstrip("\r") for line in lines[1:end]], filename)
    return data, "\n".join(lines[end + 1 :]), end + 1


def _error(message: str, filename: str | None, index: int) -> TemplateSyntaxError:
    # index is 0-based within the front matter, which starts on file line 2
    return TemplateSyntaxError(f"front matter: {message}", filename=filename, lineno=index + 2)


def _parse(lines: list[str], filename: str | None) -> dict[str, Any]:
    data: dict[str, Any] = {}
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            i += 1
            continue
        if line[0] in " \t":
            raise _error(
                "unexpected indentation; nested mappings are not supported (use a JSON object, "
                'e.g. key: {"a": 1}).',
                filename,
                i,
            )
        if stripped.startswith("- "):
            raise _error(
                '\'- item\' lists are not supported; use a JSON list, e.g. key: ["a", "b"].',
                filename,
                i,
            )
        match = _KEY.match(line)
        if match is None:
            raise _error(f"expected 'key: value', got {line!r}.", filename, i)
        key, raw = match.group(1), match.group(2).strip()
        if key in data:
            raise _error(f"key {key!r} is given twice.", filename, i)
        block = _BLOCK.match(raw)
        if block:
            value, i = _block(lines, i + 1, block.group(1), block.group(2), filename)
            data[key] = value
            continue
        following = lines[i + 1] if i + 1 < len(lines) else ""
        if raw == "" and following[:1] in (" ", "\t") and following.strip():
            raise _error(
                f"nested values under {key!r} are not supported; use a JSON object or a '|' block.",
                filename,
                i + 1,
            )
        data[key] = _scalar(raw, filename, i)
        i += 1
    return data


def _block(
    lines: list[str], start: int, style: str, chomp: str, filename: str | None
) -> tuple[str, int]:
    """Read an indented block scalar starting at ``lines[start]``; return (text, next index)."""
    body: list[str] = []
    indent: int | None = None
    i = start
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            body.append("")
            i += 1
            continue
        if "\t" in line[: len(line) - len(line.lstrip(" \t"))]:
            raise _error("use spaces, not tabs, to indent a block.", filename, i)
        width = len(line) - len(line.lstrip(" "))
        if width == 0:
            break
        if indent is None:
            indent = width
        elif width < indent:
            raise _error(
                f"line is indented less ({width} spaces) than the block it is in ({indent}).",
                filename,
                i,
            )
        body.append(line[indent:])
        i += 1
    # trailing blank lines belong to chomping, not to the content
    content_end = len(body)
    while content_end and body[content_end - 1] == "":
        content_end -= 1
    trailing = len(body) - content_end
    content = body[:content_end]
    if style == ">":
        paragraphs: list[str] = []
        current: list[str] = []
        for part in content:
            if part == "":
                paragraphs.append(" ".join(current))
                current = []
            else:
                current.append(part)
        paragraphs.append(" ".join(current))
        text = "\n".join(paragraphs)
    else:
        text = "\n".join(content)
    if not content:
        return "", i
    if chomp == "-":
        return text, i
    if chomp == "+":
        return text + "\n" * (1 + trailing), i
    return text + "\n", i


def _scalar(raw: str, filename: str | None, index: int) -> Any:
    if raw.startswith('"'):
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise _error(f"invalid double-quoted string: {exc.msg}.", filename, index) from None
        return value
    if raw.startswith("'"):
        if len(raw) < 2 or not raw.endswith("'"):
            raise _error("single-quoted string is not closed.", filename, index)
        inner = raw[1:-1]
        if "'" in inner.replace("''", ""):
            raise _error(
                "a quote inside a single-quoted string must be doubled ('').", filename, index
            )
        return inner.replace("''", "'")
    if raw.startswith(("[", "{")):
        try:
            return loads_bounded(raw)
        except json.JSONDecodeError as exc:
            raise _error(
                f"lists and maps must be written as JSON ({exc.msg} at column {exc.colno}).",
                filename,
                index,
            ) from None
        except DataLimitError as exc:
            raise _error(f"{exc}.", filename, index) from None
    if raw.startswith(("&", "*", "!", "%", "@", "`")):
        raise _error(
            f"values starting with {raw[0]!r} are not supported; quote the value.",
            filename,
            index,
        )
    comment = re.search(r"[ \t]#", raw)
    if comment:
        raw = raw[: comment.start()].rstrip()
    if raw in _CONSTANTS:
        return _CONSTANTS[raw]
    if _INT.match(raw):
        try:
            return check_int_text(raw.replace("_", ""))
        except DataLimitError as exc:
            raise _error(f"{exc}.", filename, index) from None
    if _FLOAT.match(raw) and any(c.isdigit() for c in raw):
        return float(raw.replace("_", ""))
    return raw
