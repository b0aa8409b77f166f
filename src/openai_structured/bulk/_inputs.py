"""The input side of bulk runs: the records of ``ostruct batch --input IN``, one at a time.

:func:`read_records` turns ``IN`` into an iterator of :class:`Record` (render the template
with ``record.variables``) and :class:`BadRecord` (report ``record.error`` for that record and
go on). Nothing is read before the first record is asked for, and nothing is kept after it is
handed over, so an input of any length streams in bounded memory.

Which format (:func:`detect_format`):

* ``-``: JSONL from ``stream`` (default: the binary stdin);
* a directory: one record per file, like ``ostruct run -d``;
* a path ending in ``.jsonl`` or ``.ndjson``: JSONL; ``.csv``: CSV (case-insensitive);
* anything else is an :class:`InputFileError` listing these forms, unless ``format=`` says
  which it is (``"jsonl"``, ``"csv"``, ``"dir"``; ``-`` may be ``"csv"`` too).

Records and ids:

* JSONL: each non-blank line is one JSON object; its keys are the variables. Its ``id`` (a
  string or an integer, kept as such) names it; without an ``id`` key, its physical line number
  (an ``int``: blank lines are skipped but still counted) does. A float, boolean, null, array or
  object id, an empty or blank string, or one with a control character or a lone surrogate is
  a per-record error. ``NaN``/``Infinity`` (which Python accepts) are refused: they are not
  JSON. Nesting deeper than ``MAX_DATA_DEPTH`` (200) levels and integers of more than 4,300
  digits are refused, as in ``-J`` data.
* CSV: the first non-blank row is the header (the variable names; an ``id`` column names the
  records); then one record per row, values kept as strings (an empty cell is ``""``, a
  missing trailing cell too). Without an ``id`` column a row's id is its data-row number: the
  first record is 1, blank lines are not counted, a cell spanning lines is one row. ``source``
  names the physical line the row starts on. Standard CSV (comma, ``"`` quotes doubled inside
  quoted cells), read strictly: text after a closing quote is an error, not guessed at.
* Directory: each regular file (same selection as ``-d``: ``pattern``, ``recursive``,
  ``include_hidden``; symlinked subdirectories are not followed) is one record; its variable
  ``file`` is the :class:`~openai_structured.templates.FileInfo` that ``ostruct run -f`` gives,
  with the same sandbox (symlinks out are refused), per-file size limit and text checks, applied
  when the template reads it. Its id is its path relative to the directory, ``/``-separated.
  Each record gets its own copy of ``policy``, so ``max_total_size`` bounds what one record's
  render reads, as it bounds one ``ostruct run``, not the whole batch. The names are listed and
  sorted before the first record (sorting needs them all: memory for names, not contents).
* Every record's variables are its fields exactly as written (a name that is not a template
  identifier, such as ``first name``, stays in the dict) plus ``record``, a dict of all of them,
  so ``{{ record["first name"] }}`` reaches any field; a field called ``record`` wins over it.
  The id is not added as a variable (an ``id`` field is one, being a field).
* Ids are unique: a repeated id (compared as text, so ``1`` and ``"1"`` clash; a line-number id
  can clash with an explicit one) makes the later record a :class:`DuplicateIdError`. This keeps
  a dict of the ids seen: about 100-150 bytes a record, ~150 MB for a million.

Per record or fatal: an error that spoils one record (not JSON, not an object, a bad or
repeated id, a line over ``policy.max_file_size`` (1 MiB by default, the per-file limit of
templates), bytes that are not UTF-8 or a NUL byte (the byte offset is named), a CSV row with
more cells than the header or broken quoting, a directory entry ``FileInfo`` refuses (a
symlink out of the allowed directories, a FIFO or device, a broken link) is a
:class:`BadRecord`, and reading goes on with the next record: JSONL lines are independent, and
UTF-8 resynchronises at every newline. An error after which nothing can be read sensibly is
raised (:class:`InputFileError`, or :class:`~openai_structured.templates.TemplateSecurityError`
for a path outside the allowed directories): the input is missing, not a regular file or
directory, of an unknown format, binary (a NUL byte on line 1) or UTF-16/32 (its byte-order
mark), unreadable (an I/O error), a CSV file without a usable header, or a CSV record over the
size limit (a CSV record's end cannot be found without parsing it, so reading stops there;
usually a quote that is never closed). Records already yielded stay valid. A UTF-8 BOM is
dropped; ``\\r\\n`` line endings are fine; lines are split on ``\\n`` only (a U+2028 inside a
string is not a line break).

CSV cells may be as large as the record limit: Python's ``csv`` module has a process-wide
limit of 128 KiB per cell, which reading a CSV input raises to ``max_file_size`` if lower.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import json
import os
import re
import stat
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any, Final, Literal, NamedTuple

from ..templates._limits import MAX_DATA_DEPTH, DataLimitError, check_int_text
from ..templates.errors import (
    BinaryFileError,
    FileTooLargeError,
    TemplateError,
    TemplateInputError,
)
from ..templates.files import FileInfo, _matches
from ..templates.security import PathPolicy, _human

__all__ = [
    "FORMATS",
    "RECORD_VARIABLE",
    "STDIN",
    "BadRecord",
    "BulkInputError",
    "CsvHeaderError",
    "DuplicateIdError",
    "InputEncodingError",
    "InputFileError",
    "InputFormat",
    "Record",
    "RecordEncodingError",
    "RecordError",
    "RecordIdError",
    "RecordLimitError",
    "RecordShapeError",
    "RecordSyntaxError",
    "RecordTooLargeError",
    "count_records",
    "detect_format",
    "read_records",
]

InputFormat = Literal["jsonl", "csv", "dir"]
FORMATS: Final[tuple[InputFormat, ...]] = ("jsonl", "csv", "dir")
STDIN: Final = "-"
"""The input name that means JSONL (or, with ``format="csv"``, CSV) from a stream."""
RECORD_VARIABLE: Final = "record"
"""The variable holding all of a record's fields, for names a template cannot spell."""

_SUFFIXES: Final[Mapping[str, InputFormat]] = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}
_COMPRESSED: Final = frozenset({".gz", ".bz2", ".xz", ".zst", ".zip"})
_STDIN_NAME: Final = "<stdin>"
_UTF8_BOM: Final = b"\xef\xbb\xbf"
_CHUNK: Final = 64 * 1024  # how much of an over-long line is read at a time while skipping it
# Ids end up in output lines, logs and terminals: no control characters, no lone surrogates
# (which UTF-8 cannot encode, so the output line could not be written).
_BAD_ID_CHAR: Final = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")
# A string id that is an integer written canonically clashes with that integer.
_CANONICAL_INT: Final = re.compile(r"0|-?[1-9][0-9]{0,4299}")


# --- errors -------------------------------------------------------------------------------------


class BulkInputError(TemplateInputError):
    """Base of bulk-input errors; ``str()`` starts with ``source:line:`` when the line is known.

    ``source`` is the input's display name, ``line`` the physical line (1-based), ``column``
    the character column json reported, ``offset`` the byte offset in the input; each ``None``
    when it does not apply.
    """

    def __init__(
        self,
        message: str,
        *,
        source: str,
        line: int | None = None,
        column: int | None = None,
        offset: int | None = None,
    ) -> None:
        self.source = source
        self.line = line
        self.column = column
        self.offset = offset
        super().__init__(message, filename=source, lineno=line)


class InputFileError(BulkInputError):
    """The input as a whole cannot be read; raised, so the run stops (exit 3 in ``ostruct``)."""


class InputEncodingError(InputFileError, BinaryFileError):
    """The input is binary or UTF-16/32, not UTF-8 text."""


class CsvHeaderError(InputFileError):
    """A CSV input has no usable header row (empty file, unnamed or repeated column)."""


class RecordError(BulkInputError):
    """One record cannot be used; it arrives inside a :class:`BadRecord`, and reading goes on."""


class RecordSyntaxError(RecordError):
    """A line is not JSON (or uses NaN/Infinity), or a CSV row's quoting is broken."""


class RecordShapeError(RecordError):
    """A JSON line is not an object, or a CSV row has more cells than the header."""


class RecordLimitError(RecordError):
    """A record goes over a data limit: nesting depth, integer digits or size."""


class RecordTooLargeError(RecordLimitError, FileTooLargeError):
    """A line is longer than the per-record limit (``policy.max_file_size``)."""


class RecordEncodingError(RecordError, BinaryFileError):
    """A record holds bytes that are not UTF-8, or a NUL byte; ``offset`` says where."""


class RecordIdError(RecordError):
    """A record's id cannot be used (wrong type, empty, control characters)."""


class DuplicateIdError(RecordIdError):
    """A record repeats an id already used; ``first_line`` is where it was first used."""

    def __init__(self, message: str, *, first_line: int, source: str, line: int) -> None:
        self.first_line = first_line
        super().__init__(message, source=source, line=line)


# --- records ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Record:
    """One record: its id, the variables its render gets, and where it came from.

    ``source`` is ``file:line`` for JSONL and CSV (the line a CSV row starts on) and the file's
    display path for a directory record.
    """

    id: str | int
    variables: Mapping[str, Any]
    source: str


@dataclass(frozen=True)
class BadRecord:
    """A record that cannot be used: report ``error`` for it and go on with the next.

    ``id`` is the record's own id when it could be read, else its line number (JSONL) or
    data-row number (CSV); ids of bad records are not checked for uniqueness (a duplicate's
    ``BadRecord`` carries the repeated id), so ``source`` is what tells two apart. ``error`` is
    a :class:`RecordError`, or for a directory record the
    :class:`~openai_structured.templates.TemplateError` the file loader raised.
    """

    id: str | int
    source: str
    error: TemplateError


Item = Record | BadRecord


def _variables(fields: dict[str, Any]) -> dict[str, Any]:
    if RECORD_VARIABLE in fields:
        return fields
    variables = dict(fields)
    variables[RECORD_VARIABLE] = fields
    return variables


# --- the input ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Input:
    format: InputFormat
    display: str
    path: str | None  # absolute; None for a stream
    stream: IO[Any] | None
    policy: PathPolicy


def detect_format(input: str | os.PathLike[str], format: str | None = None) -> InputFormat:
    """The format of ``input`` by the rules above; ``format`` overrides the suffix."""
    name = os.fspath(input)
    return _detect(name, name != STDIN and os.path.isdir(name), format, name)


def _detect(name: str, is_dir: bool, format: str | None, display: str) -> InputFormat:
    if format is not None:
        if format not in FORMATS:
            raise InputFileError(
                f"unknown input format {format!r}: use one of {', '.join(FORMATS)}.",
                source=display,
            )
        if format == "dir" and not is_dir:
            raise InputFileError(
                f"{display} is not a directory; format 'dir' reads one record per file of a "
                f"directory.",
                source=display,
            )
        if format != "dir" and is_dir:
            raise InputFileError(
                f"{display} is a directory, not a {format} file; to make one record per file, "
                f"use format 'dir' (the default for a directory).",
                source=display,
            )
        return next(f for f in FORMATS if f == format)
    if name == STDIN:
        return "jsonl"
    if is_dir:
        return "dir"
    suffix = os.path.splitext(name)[1].lower()
    found = _SUFFIXES.get(suffix)
    if found is not None:
        return found
    hint = ""
    if suffix == ".json":
        hint = (
            " A .json file holding an array of objects converts with "
            "jq -c '.[]' FILE.json > FILE.jsonl."
        )
    elif suffix in _COMPRESSED:
        hint = f" Decompress it first, e.g. pipe it in: gunzip -c {display} | ... --input -."
    raise InputFileError(
        f"cannot tell the format of {display}: the input must be a .jsonl or .ndjson file (one "
        f"JSON object per line), a .csv file (a header row, then one row per record), a "
        f"directory (one record per file) or - (JSONL on stdin); if it is JSONL or CSV under "
        f"another name, say which (format 'jsonl' or 'csv').{hint}",
        source=display,
    )


_KINDS: Final = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _not_regular(display: str, mode: int) -> InputFileError:
    kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
    return InputFileError(
        f"{display} is {kind}, not a regular file; to stream records from a pipe, use "
        f"--input - (JSONL on stdin).",
        source=display,
    )


def _prepare(
    input: str | os.PathLike[str],
    format: str | None,
    stream: IO[bytes] | IO[str] | None,
    policy: PathPolicy | None,
) -> _Input:
    """Every check that can be made before reading, made now (so errors come at once)."""
    policy = policy if policy is not None else PathPolicy()
    name = os.fspath(input)
    if stream is not None and name != STDIN:
        raise ValueError(f"stream= is only read for the input {STDIN!r}, not {name!r}")
    if name == STDIN:
        kind = _detect(name, False, format, _STDIN_NAME)
        if kind == "dir":  # pragma: no cover - _detect refuses it
            raise AssertionError
        if stream is None:
            stream = sys.stdin.buffer if sys.stdin is not None else None
        if stream is None:
            raise InputFileError("there is no stdin to read records from.", source=_STDIN_NAME)
        if stream.isatty():
            raise InputFileError(
                "input - reads records from stdin, but stdin is a terminal; pipe them in "
                "(cat records.jsonl | ostruct batch ...) or give a file.",
                source=_STDIN_NAME,
            )
        return _Input(kind, _STDIN_NAME, None, stream, policy)
    display = policy.display_path(name)
    real = policy.resolve(name)  # TemplateSecurityError outside the allowed directories
    try:
        mode = os.stat(real).st_mode  # stat, never open: a FIFO cannot block here
    except FileNotFoundError:
        raise InputFileError(f"{display} does not exist.", source=display) from None
    except OSError as exc:
        raise InputFileError(
            f"cannot read {display}: {exc.strerror or exc}.", source=display
        ) from None
    kind = _detect(name, stat.S_ISDIR(mode), format, display)
    if kind != "dir" and not stat.S_ISREG(mode):
        raise _not_regular(display, mode)
    return _Input(kind, display, policy.absolute(name), None, policy)


# --- physical lines -----------------------------------------------------------------------------


class _Line(NamedTuple):
    number: int  # physical line, 1-based
    offset: int  # byte offset of data[0] in the input
    data: bytes | None  # the line with its ending; None when over the limit (not kept)
    length: int  # bytes of the line without its ending


def _ending(data: bytes) -> int:
    return 2 if data.endswith(b"\r\n") else 1 if data.endswith(b"\n") else 0


@contextlib.contextmanager
def _opened(inp: _Input) -> Iterator[Callable[[int], bytes]]:
    """A bounded ``readline`` over the input, bytes whatever the stream gives."""
    if inp.stream is not None:
        yield _reader(inp.stream.readline, inp.display)
        return
    assert inp.path is not None
    real = inp.policy.resolve(inp.path)  # again: the file may have been swapped since
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(real, flags)  # non-blocking: a FIFO swapped in cannot hang the open
    except OSError as exc:
        raise InputFileError(
            f"cannot open {inp.display}: {exc.strerror or exc}.", source=inp.display
        ) from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise _not_regular(inp.display, mode)
        handle = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    with handle:
        yield _reader(handle.readline, inp.display)


def _reader(readline: Callable[[int], bytes | str], display: str) -> Callable[[int], bytes]:
    def read(size: int) -> bytes:
        try:
            data = readline(size)
        except UnicodeDecodeError as exc:  # a text stream that decodes strictly
            raise InputEncodingError(
                f"{display} is not UTF-8 text ({exc.reason}); pass UTF-8, or the binary "
                f"stream, so the byte offset can be named.",
                source=display,
            ) from None
        except OSError as exc:
            raise InputFileError(
                f"cannot read {display}: {exc.strerror or exc}.", source=display
            ) from None
        if isinstance(data, str):
            # Text streams are turned back into bytes; a lone surrogate becomes invalid UTF-8
            # and is reported like any other undecodable byte.
            return data.encode("utf-8", "surrogatepass")
        return data

    return read


def _check_start(raw: bytes, display: str) -> None:
    """Refuse, at once, an input that is not UTF-8 text at all."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise InputEncodingError(
            f"{display} is UTF-16 or UTF-32 text (it starts with that byte-order mark); "
            f"records must be UTF-8: convert it, e.g. iconv -f UTF-16 -t UTF-8.",
            source=display,
            line=1,
            offset=0,
        )
    nul = raw.find(b"\0")
    if nul != -1:
        raise InputEncodingError(
            f"{display} looks binary (NUL byte at offset {nul} on line 1); records must be "
            f"UTF-8 text. A compressed file must be decompressed first.",
            source=display,
            line=1,
            offset=nul,
        )


def _physical_lines(read: Callable[[int], bytes], display: str, limit: int) -> Iterator[_Line]:
    """The input's lines, split on ``\\n``; a line over ``limit`` bytes is skipped, not kept."""
    cap = limit + 2  # the line and a "\r\n"
    number = 0
    offset = 0
    while True:
        raw = read(cap)
        if not raw:
            return
        number += 1
        start, size = offset, len(raw)
        if number == 1:
            _check_start(raw, display)
            if raw.startswith(_UTF8_BOM):
                raw, start = raw[3:], start + 3
        data: bytes | None = raw
        last = tail = raw
        while not tail.endswith(b"\n"):  # cut at the cap, or the last line (then read gives b"")
            tail = read(_CHUNK)
            if not tail:
                break
            size, data, last = size + len(tail), None, tail
        offset += size
        length = (offset - start) - _ending(last)
        yield _Line(number, start, data if length <= limit else None, length)


def _too_large(display: str, line: _Line, limit: int) -> RecordTooLargeError:
    return RecordTooLargeError(
        f"line {line.number} is {_human(line.length)}, over the limit of {_human(limit)} for "
        f"one record (the per-file limit); raise it with --max-file-size (PathPolicy("
        f"max_file_size=...)) or shorten the record.",
        source=display,
        line=line.number,
        offset=line.offset,
    )


# --- ids ----------------------------------------------------------------------------------------


def _shown(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


_JSON_KINDS: Final = {
    dict: "an object",
    list: "an array",
    str: "a string",
    float: "a number",
    int: "a number",
    bool: "a boolean",
    type(None): "null",
}


def _id_problem(value: Any) -> str | None:
    """What makes ``value`` unusable as an id, or ``None`` when it is a good one."""
    if isinstance(value, bool) or value is None:
        return f"the id is {json.dumps(value)}"
    if isinstance(value, int):
        return None
    if isinstance(value, str):
        if not value.strip():
            return f"the id is {'empty' if not value else 'blank'} ({_shown(value)})"
        bad = _BAD_ID_CHAR.search(value)
        if bad is None:
            return None
        char = ord(bad.group())
        what = "a lone surrogate" if char >= 0xD800 else "a control character"
        return f"the id {_shown(value)} holds {what}, U+{char:04X}, at character {bad.start()}"
    if isinstance(value, float):
        return f"the id is the number {value!r}, which has a fraction or an exponent"
    return f"the id is {_JSON_KINDS.get(type(value), type(value).__name__)}"


def _id_error(problem: str, hint: str, *, source: str, line: int | None) -> RecordIdError:
    return RecordIdError(
        f"{problem}: an id must be a non-empty string of printable characters or an integer; "
        f"{hint}.",
        source=source,
        line=line,
    )


def _check_id(value: Any, hint: str, *, source: str, line: int) -> str | int:
    """``value`` as an id, or a :class:`RecordIdError` saying what is wrong and what to do."""
    problem = _id_problem(value)
    if problem is not None:
        raise _id_error(problem, hint, source=source, line=line)
    return value  # type: ignore[no-any-return]  # a str or an int: _id_problem checked it


def _id_key(rid: str | int) -> str | int:
    if isinstance(rid, str) and _CANONICAL_INT.fullmatch(rid):
        return int(rid)
    return rid


def _duplicate(rid: str | int, seen: int, line: int, source: str, *, own: bool) -> DuplicateIdError:
    """The error for a repeated id; ``seen`` is the first user's line, negative when that
    record had no id of its own (its number was its id)."""
    first = abs(seen)
    if not own:
        what = (
            f"this record has no id, so its number {rid} is its id, which the record on line "
            f"{first} already uses"
        )
    elif seen < 0:
        what = (
            f"the id {_shown(rid)} is already the id of the record on line {first}, which has "
            f"no id of its own and is named by its number"
        )
    else:
        what = f"the id {_shown(rid)} is already used by the record on line {first}"
    return DuplicateIdError(
        f"{what}; ids must be unique (they name the records in the output): give this record "
        f"its own id.",
        first_line=first,
        source=source,
        line=line,
    )


# --- JSONL --------------------------------------------------------------------------------------


class _NotJSON(ValueError):
    """NaN, Infinity or -Infinity: Python reads them, JSON does not have them."""


def _refuse_constant(name: str) -> Any:
    raise _NotJSON(name)


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether ``value`` nests lists and dicts more than ``limit`` deep (a loop, no recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        children = node.values() if isinstance(node, dict) else node
        stack.extend((c, depth + 1) for c in children if isinstance(c, (dict, list)))
    return False


def _parse_line(text: str, display: str, number: int) -> dict[str, Any]:
    """The JSON object on one line, or a :class:`RecordError` that points into it."""
    where: dict[str, Any] = {"source": display, "line": number}
    what_to_do = "each line must hold one JSON object; fix the line or remove it"
    try:
        value = json.loads(text, parse_int=check_int_text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise RecordSyntaxError(
            f"not valid JSON at column {exc.colno}: {exc.msg}; {what_to_do}.",
            column=exc.colno,
            **where,
        ) from None
    except _NotJSON as exc:
        raise RecordSyntaxError(
            f"{exc} is not JSON (Python reads it, JSON has no such value); write null or a "
            f'string such as "{exc}" instead.',
            **where,
        ) from None
    except DataLimitError as exc:
        raise RecordLimitError(f"{exc}.", **where) from None
    except RecursionError:
        raise RecordLimitError(
            f"lists and objects are nested too deeply (the limit is {MAX_DATA_DEPTH} levels); "
            f"flatten the data.",
            **where,
        ) from None
    except ValueError as exc:  # pragma: no cover - json.loads raises nothing else
        raise RecordSyntaxError(f"not valid JSON: {exc}; {what_to_do}.", **where) from None
    if not isinstance(value, dict):
        raise RecordShapeError(
            f"the line is {_JSON_KINDS.get(type(value), 'a value')} in JSON, not an object; each "
            f'line must be an object whose keys are the template variables, such as {{"id": 1, '
            f'"text": "..."}}.',
            **where,
        )
    if text.count("[") + text.count("{") > MAX_DATA_DEPTH and _deeper_than(value, MAX_DATA_DEPTH):
        raise RecordLimitError(
            f"lists and objects are nested more than {MAX_DATA_DEPTH} levels deep, over the "
            f"limit for data; flatten the data.",
            **where,
        )
    return value


def _decode(data: bytes, offset: int, display: str, number: int) -> str:
    nul = data.find(b"\0")
    if nul != -1:
        raise RecordEncodingError(
            f"NUL byte at offset {offset + nul}: records must be text; remove it (or write "
            f"\\u0000 inside a JSON string).",
            source=display,
            line=number,
            offset=offset + nul,
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RecordEncodingError(
            f"not UTF-8: undecodable byte 0x{data[exc.start]:02x} at offset {offset + exc.start}; "
            f"convert the file to UTF-8 (e.g. iconv -f latin1 -t utf-8).",
            source=display,
            line=number,
            offset=offset + exc.start,
        ) from None


def _jsonl_records(lines: Iterator[_Line], display: str, limit: int) -> Iterator[Item]:
    seen: dict[str | int, int] = {}
    for line in lines:
        source = f"{display}:{line.number}"
        if line.data is None:
            yield BadRecord(line.number, source, _too_large(display, line, limit))
            continue
        if not line.data.strip():
            continue
        try:
            fields = _parse_line(
                _decode(line.data, line.offset, display, line.number), display, line.number
            )
            own = "id" in fields
            rid = (
                _check_id(
                    fields["id"],
                    "or remove the id key to use the line number",
                    source=display,
                    line=line.number,
                )
                if own
                else line.number
            )
        except RecordError as exc:
            yield BadRecord(line.number, source, exc)
            continue
        key = _id_key(rid)
        first = seen.get(key)
        if first is not None:
            yield BadRecord(rid, source, _duplicate(rid, first, line.number, display, own=own))
            continue
        seen[key] = line.number if own else -line.number
        yield Record(rid, _variables(fields), source)


# --- CSV ----------------------------------------------------------------------------------------


class _CsvFeed:
    """The lines of one CSV record at a time, for :func:`csv.reader`, with what they hold.

    The reader pulls a line only when it needs one and resets at every record, so between two
    records this knows exactly which lines the last one took: where it started, how big it is
    (over the limit is fatal: its end is unknown), and the first undecodable byte or NUL.
    """

    def __init__(self, lines: Iterator[_Line], display: str, limit: int) -> None:
        self._lines = lines
        self._display = display
        self._limit = limit
        self.start_record()

    def start_record(self) -> None:
        self.first: int | None = None
        self.last = 0
        self.size = 0
        self.blank = True
        self.bad: tuple[int, str] | None = None  # (offset, what)

    def __iter__(self) -> _CsvFeed:
        return self

    def __next__(self) -> str:
        line = next(self._lines)
        if self.first is None:
            self.first = line.number
        self.last = line.number
        if line.data is None or self.size + line.length > self._limit:
            size = self.size + line.length
            raise InputFileError(
                f"the CSV record starting on line {self.first} is over {_human(size)} by line "
                f"{line.number}, over the limit of {_human(self._limit)} for one record (the "
                f"per-file limit); reading stops, because where a CSV record ends cannot be "
                f'known without reading it. Look for a quote (") that is never closed, or '
                f"raise the limit with --max-file-size (PathPolicy(max_file_size=...)).",
                source=self._display,
                line=self.first,
            )
        data = line.data
        self.size += len(data)
        self.blank = self.blank and self.first == line.number and not data.strip()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            if self.bad is None:
                self.bad = (line.offset + exc.start, f"undecodable byte 0x{data[exc.start]:02x}")
            text = data.decode("utf-8", "replace")  # same line structure; the row is refused
        if "\0" in text:
            if self.bad is None:
                self.bad = (line.offset + data.find(b"\0"), "NUL byte")
            text = text.replace("\0", "\ufffd")  # csv before 3.11 refuses NUL outright
        return text


def _csv_error(exc: csv.Error, feed: _CsvFeed, display: str) -> RecordSyntaxError:
    message = str(exc)
    first = feed.first or feed.last
    at = f" (found on line {feed.last})" if feed.last != first else ""
    if "unexpected end of data" in message:
        text = (
            f"the quote opened in the record on line {first} is never closed, so the rest of "
            f"the file was read as one cell; close it (a quote inside a quoted cell is written "
            f'twice: "5"" screen")'
        )
    elif "expected after" in message:
        text = (
            f"not valid CSV{at}: text follows the closing quote of a cell; a quote inside a "
            f'quoted cell is written twice ("5"" screen")'
        )
    elif "new-line character" in message:
        text = (
            f"not valid CSV{at}: a carriage return (\\r) inside an unquoted cell; lines must "
            f"end with \\n or \\r\\n, and cells holding line breaks must be quoted"
        )
    else:  # pragma: no cover - the strict excel dialect has no other errors on text input
        text = f"not valid CSV{at}: {message}"
    return RecordSyntaxError(text + ".", source=display, line=first)


def _csv_header(reader: Iterator[list[str]], feed: _CsvFeed, display: str) -> list[str]:
    while True:
        feed.start_record()
        try:
            row = next(reader)
        except StopIteration:
            raise CsvHeaderError(
                f"{display} has no header row: a CSV input starts with a row naming the columns "
                f"(the template variables), then one row per record.",
                source=display,
            ) from None
        except csv.Error as exc:
            error = _csv_error(exc, feed, display)
            raise CsvHeaderError(
                f"the header row cannot be read: {error.message}", source=display, line=error.line
            ) from None
        if not feed.blank:
            break
    where: dict[str, Any] = {"source": display, "line": feed.first}
    if feed.bad is not None:
        offset, what = feed.bad
        raise CsvHeaderError(
            f"the header row is not UTF-8 text ({what} at offset {offset}); convert the file to "
            f"UTF-8.",
            offset=offset,
            **where,
        )
    seen: dict[str, int] = {}
    for index, name in enumerate(row, 1):
        if not name.strip():
            raise CsvHeaderError(
                f"column {index} of the header row has no name (a trailing comma?); name it or "
                f"remove the column.",
                **where,
            )
        if name in seen:
            raise CsvHeaderError(
                f"the header names column {name!r} twice (columns {seen[name]} and {index}); "
                f"column names become the template variables and must be unique.",
                **where,
            )
        seen[name] = index
    return row


def _csv_records(lines: Iterator[_Line], display: str, limit: int) -> Iterator[Item]:
    if csv.field_size_limit() < limit:
        csv.field_size_limit(limit)  # process-wide; only ever raised (see the module docstring)
    feed = _CsvFeed(lines, display, limit)
    reader = csv.reader(feed, strict=True)
    header = _csv_header(reader, feed, display)
    width = len(header)
    has_id = "id" in header
    seen: dict[str | int, int] = {}
    row_number = 0
    error: RecordError
    while True:
        feed.start_record()
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            row_number += 1
            error = _csv_error(exc, feed, display)
            yield BadRecord(row_number, f"{display}:{error.line}", error)
            continue
        if feed.blank:
            continue
        row_number += 1
        line = feed.first or feed.last
        source = f"{display}:{line}"
        if feed.bad is not None:
            offset, what = feed.bad
            error = RecordEncodingError(
                f"not UTF-8 text: {what} at offset {offset}; convert the file to UTF-8 (e.g. "
                f"iconv -f latin1 -t utf-8) and remove NUL bytes.",
                source=display,
                line=line,
                offset=offset,
            )
            yield BadRecord(row_number, source, error)
            continue
        if len(row) > width:
            error = RecordShapeError(
                f"row {row_number} has {len(row)} cells but the header names {width} columns; "
                f'quote cells that hold a comma ("a, b") or name the extra columns.',
                source=display,
                line=line,
            )
            yield BadRecord(row_number, source, error)
            continue
        if len(row) < width:
            row.extend([""] * (width - len(row)))
        fields = dict(zip(header, row, strict=True))
        rid: str | int = row_number
        if has_id:
            try:
                rid = _check_id(
                    fields["id"],
                    "every row needs one, as the header has an id column",
                    source=display,
                    line=line,
                )
            except RecordIdError as exc:
                yield BadRecord(row_number, source, exc)
                continue
        key = _id_key(rid)
        first = seen.get(key)
        if first is not None:
            yield BadRecord(rid, source, _duplicate(rid, first, line, display, own=has_id))
            continue
        seen[key] = line if has_id else -line
        yield Record(rid, _variables(fields), source)


# --- directories --------------------------------------------------------------------------------


def _directory_names(
    top: str, patterns: Sequence[str], recursive: bool, include_hidden: bool
) -> list[str]:
    """The relative paths ``collect_directory`` would list, in its order (by path)."""
    found: list[str] = []
    for current, dirnames, filenames in os.walk(top, followlinks=False):
        if not include_hidden:
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        dirnames.sort()
        for filename in filenames:
            if not include_hidden and filename.startswith("."):
                continue
            full = os.path.join(current, filename)
            relative = os.path.relpath(full, top).replace(os.sep, "/")
            if not any(_matches(relative, filename, p) for p in patterns):
                continue
            if os.path.isdir(full):
                continue
            found.append(relative)
        if not recursive:
            break
    found.sort()
    return found


def _directory_records(inp: _Input, names: list[str]) -> Iterator[Item]:
    assert inp.path is not None
    for relative in names:
        full = os.path.join(inp.path, *relative.split("/"))
        # One render's budget, as in `ostruct run`: a fresh byte count for every record.
        policy = copy.copy(inp.policy)
        policy.bytes_read = 0
        source = policy.display_path(full)
        problem = _id_problem(relative)  # a file name may hold anything but "/" and NUL
        if problem is not None:
            yield BadRecord(
                relative, source, _id_error(problem, "rename the file", source=source, line=None)
            )
            continue
        try:
            info = FileInfo(full, policy)
        except TemplateError as exc:
            yield BadRecord(relative, source, exc)
            continue
        yield Record(relative, _variables({"file": info}), source)


# --- entry points -------------------------------------------------------------------------------


def _patterns(pattern: str | Sequence[str]) -> list[str]:
    return [pattern] if isinstance(pattern, str) else list(pattern)


def _generate(
    inp: _Input, pattern: str | Sequence[str], recursive: bool, include_hidden: bool
) -> Iterator[Item]:
    """The items, produced only when asked for: nothing is listed or opened before."""
    if inp.format == "dir":
        assert inp.path is not None
        names = _directory_names(inp.path, _patterns(pattern), recursive, include_hidden)
        yield from _directory_records(inp, names)
        return
    limit = inp.policy.max_file_size
    with _opened(inp) as read:
        lines = _physical_lines(read, inp.display, limit)
        if inp.format == "csv":
            yield from _csv_records(lines, inp.display, limit)
        else:
            yield from _jsonl_records(lines, inp.display, limit)


def read_records(
    input: str | os.PathLike[str],
    *,
    format: str | None = None,
    stream: IO[bytes] | IO[str] | None = None,
    policy: PathPolicy | None = None,
    pattern: str | Sequence[str] = "*",
    recursive: bool = False,
    include_hidden: bool = False,
) -> Iterator[Record | BadRecord]:
    """The records of ``input``, one at a time, in bounded memory (see the module docstring).

    The checks that need no reading (format, existence, file type, sandbox) run now and raise;
    the file is opened when the first record is asked for and closed when the iterator ends or
    is closed. ``stream`` is read for ``-`` (default: ``sys.stdin.buffer``; a text stream works
    too) and is not closed. ``policy`` (default: the working directory, 1 MiB per record)
    confines the input and a directory's files and sets the size limit of one record.
    ``pattern``, ``recursive`` and ``include_hidden`` select a directory's files, as for ``-d``.
    """
    inp = _prepare(input, format, stream, policy)
    return _generate(inp, pattern, recursive, include_hidden)


def count_records(
    input: str | os.PathLike[str],
    *,
    format: str | None = None,
    stream: IO[bytes] | IO[str] | None = None,
    policy: PathPolicy | None = None,
    pattern: str | Sequence[str] = "*",
    recursive: bool = False,
    include_hidden: bool = False,
) -> int:
    """How many items :func:`read_records` yields (good and bad), for ``--dry-run``.

    JSONL counts non-blank lines and a directory its names, building no record; CSV is read
    record by record, as only parsing tells where a row ends (a quoted cell can span lines).
    Reading ``-`` consumes the stream: count or run, not both. Errors that
    :func:`read_records` raises are raised here too.
    """
    inp = _prepare(input, format, stream, policy)
    if inp.format == "dir":
        assert inp.path is not None
        return len(_directory_names(inp.path, _patterns(pattern), recursive, include_hidden))
    if inp.format == "csv":
        return sum(1 for _ in _generate(inp, pattern, recursive, include_hidden))
    with _opened(inp) as read:
        lines = _physical_lines(read, inp.display, inp.policy.max_file_size)
        return sum(1 for line in lines if line.data is None or line.data.strip())
