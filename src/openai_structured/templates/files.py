"""Template inputs: files, directories, plain and JSON values, and stdin.

Files reach templates as :class:`FileInfo` objects whose content is read on first use, so a
template that only lists file names never reads them (and never pays the size budget for them).
Every path goes through a :class:`~.security.PathPolicy` when the input is collected *and* again
when the content is read, so a symlink swapped in between cannot lead outside the allowed
directories.

The ``name=value`` parsers (:func:`parse_file_spec`, :func:`parse_value_spec`,
:func:`parse_json_spec`) and :func:`collect_inputs` are what the CLI's ``-f``/``-d``/``-V``/
``-J`` options call.
"""

from __future__ import annotations

import fnmatch
import json
import keyword
import os
import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from typing import IO, Any

from ._limits import DataLimitError, loads_bounded
from .errors import BinaryFileError, TemplateInputError
from .security import PathPolicy

__all__ = [
    "FileInfo",
    "FileInfoList",
    "collect_directory",
    "collect_file",
    "collect_inputs",
    "decode_text",
    "parse_file_spec",
    "parse_json_spec",
    "parse_value_spec",
    "read_stdin",
    "stdin_text",
    "validate_variable_name",
]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# Names Jinja parses as literals or operators: a variable with one of these names could never be
# referenced, so we refuse it up front instead of letting the template fail mysteriously.
_JINJA_RESERVED = frozenset(
    {"true", "false", "none", "True", "False", "None", "and", "or", "not", "in", "is", "if"}
    | {"else", "for", "recursive", "with", "without", "context", "import", "as", "loop"}
)


def validate_variable_name(name: str, *, option: str = "") -> str:
    """Return ``name`` if a template can refer to it, else raise :class:`TemplateInputError`."""
    where = f" in {option}" if option else ""
    if not _NAME.match(name):
        raise TemplateInputError(
            f"invalid variable name {name!r}{where}: use letters, digits and underscores, not "
            f"starting with a digit (e.g. my_file)."
        )
    if name.startswith("_"):
        raise TemplateInputError(
            f"invalid variable name {name!r}{where}: names starting with '_' are private in the "
            f"template sandbox and could not be used; drop the leading underscore."
        )
    if name in _JINJA_RESERVED or keyword.iskeyword(name):
        raise TemplateInputError(
            f"invalid variable name {name!r}{where}: it is a reserved word in templates; "
            f"choose another name."
        )
    return name


def _split_spec(spec: str, option: str, example: str) -> tuple[str, str]:
    name, sep, value = spec.partition("=")
    if not sep:
        raise TemplateInputError(
            f"{option} expects NAME=VALUE, got {spec!r} (no '='); for example {option} {example}."
        )
    return validate_variable_name(name.strip(), option=option), value


def parse_file_spec(spec: str, *, option: str = "-f") -> tuple[str, str]:
    """Split ``name=path`` (``-f``/``-d``) into the variable name and the path."""
    name, path = _split_spec(spec, option, "doc=notes.txt")
    if not path:
        raise TemplateInputError(f"{option} {spec!r}: the path after '=' is empty.")
    return name, path


def parse_value_spec(spec: str, *, option: str = "-V") -> tuple[str, str]:
    """Split ``name=value`` (``-V``): the value is the text after the first ``=``, verbatim."""
    return _split_spec(spec, option, "lang=en")


def parse_json_spec(spec: str, *, option: str = "-J") -> tuple[str, Any]:
    """Split ``name=json`` (``-J``) and parse the JSON, naming the position of a syntax error.

    Nesting deeper than :data:`~._limits.MAX_DATA_DEPTH` levels and integers of more than
    :data:`~._limits.MAX_DATA_INT_DIGITS` digits are refused too.
    """
    name, text = _split_spec(spec, option, "'cfg={\"limit\": 3}'")
    try:
        return name, loads_bounded(text)
    except DataLimitError as exc:
        raise TemplateInputError(f"{option} {name}: {exc}.") from None
    except json.JSONDecodeError as exc:
        raise TemplateInputError(
            f"{option} {name}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg} "
            f"(value was {text!r}). Quote the whole argument in the shell, and use double "
            f"quotes for JSON strings."
        ) from None


def decode_text(data: bytes, display: str) -> str:
    """Decode UTF-8 text (a leading BOM is dropped), refusing binary data with a clear error."""
    nul = data.find(b"\0")
    if nul != -1:
        raise BinaryFileError(
            f"{display} looks binary (NUL byte at offset {nul}); templates accept UTF-8 text "
            f"files only."
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BinaryFileError(
            f"{display} is not UTF-8 text (undecodable byte at offset {exc.start}); convert it "
            f"to UTF-8 (e.g. iconv -t utf-8) or pass a text file."
        ) from None
    return text.removeprefix("\ufeff")


class FileInfo:
    """A file given to a template, with its content read on first use.

    Template-visible attributes (nothing else is reachable from a template):

    * ``content``: the text (UTF-8), read on first access and then cached; reading checks the
      path policy again, the per-file and total size limits, and refuses binary data.
    * ``path``: the path for display, relative to the working directory when inside it.
    * ``abs_path``: the absolute path (symlinks not resolved).
    * ``name`` (``report.md``), ``stem`` (``report``), ``extension`` (``md``, no dot, ``""``
      when there is none), ``size`` (bytes, from the file system, no read).
    * ``lines``: the content split into lines, without line endings.

    ``str(file)`` (so ``{{ file }}``) is the content: the common case in a prompt is to paste
    the file in. Use ``{{ file.path }}`` for its name.
    """

    _template_attributes = frozenset(
        {"content", "path", "abs_path", "name", "stem", "extension", "size", "lines"}
    )
    __slots__ = ("_abs", "_content", "_display", "_policy", "_size")

    def __init__(self, path: str | os.PathLike[str], policy: PathPolicy) -> None:
        """Check ``path`` against ``policy`` now; the content is read later, on first use."""
        self._policy = policy
        self._abs = policy.absolute(path)
        self._display = policy.display_path(path)
        real = policy.resolve(path)
        if not os.path.exists(real):
            raise TemplateInputError(f"file not found: {self._display}")
        if not os.path.isfile(real):
            raise TemplateInputError(
                f"{self._display} is not a regular file; pass directories with -d NAME=DIR."
            )
        self._content: str | None = None
        self._size: int | None = None

    @property
    def path(self) -> str:
        """The path for display: relative to the working directory when inside it."""
        return self._display

    @property
    def abs_path(self) -> str:
        """The absolute path (symlinks not resolved)."""
        return self._abs

    @property
    def name(self) -> str:
        """The file name with its extension."""
        return os.path.basename(self._abs)

    @property
    def stem(self) -> str:
        """The file name without its last extension."""
        return os.path.splitext(self.name)[0]

    @property
    def extension(self) -> str:
        """The last extension without the dot (``"md"``), or ``""``."""
        return os.path.splitext(self.name)[1].removeprefix(".")

    @property
    def size(self) -> int:
        """The size in bytes, from the file system (reading the content is not needed)."""
        if self._size is None:
            self._size = os.stat(self._policy.resolve(self._abs)).st_size
        return self._size

    @property
    def content(self) -> str:
        """The text of the file, read (and checked) on first access, then cached."""
        if self._content is None:
            self._content = self._read()
        return self._content

    @property
    def lines(self) -> list[str]:
        """The content split into lines, without the line endings."""
        return self.content.splitlines()

    def _read(self) -> str:
        real = self._policy.resolve(self._abs)  # again: the file may have been swapped
        limit = self._policy.max_file_size
        try:
            with open(real, "rb") as handle:
                data = handle.read(limit + 1)  # never load more than the limit allows
        except OSError as exc:
            raise TemplateInputError(f"cannot read {self._display}: {exc.strerror}") from None
        if len(data) > limit:
            # Report the real size, not the truncated read.
            try:
                actual = max(len(data), os.stat(real).st_size)
            except OSError:
                actual = len(data)
            self._policy.check_size(self._display, actual)
        self._policy.consume(self._display, len(data))
        return decode_text(data, self._display)

    def __str__(self) -> str:
        return self.content

    def __repr__(self) -> str:
        return f"FileInfo({self._display!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FileInfo) and other._abs == self._abs

    def __hash__(self) -> int:
        return hash(self._abs)


class FileInfoList(list[FileInfo]):
    """The files of a directory input: a plain list of :class:`FileInfo`, sorted by path.

    ``str(files)`` joins the contents, each preceded by a ``# path`` line, which is what a
    prompt usually wants when a whole directory is pasted in with ``{{ docs }}``.
    """

    _template_attributes = frozenset({"paths", "names", "contents"})

    @property
    def paths(self) -> list[str]:
        """The display paths of the files, in order."""
        return [f.path for f in self]

    @property
    def names(self) -> list[str]:
        """The file names, in order."""
        return [f.name for f in self]

    @property
    def contents(self) -> list[str]:
        """The file contents, in order (reads every file)."""
        return [f.content for f in self]

    def __str__(self) -> str:
        return "\n\n".join(f"# {f.path}\n{f.content}" for f in self)


def collect_file(path: str | os.PathLike[str], policy: PathPolicy) -> FileInfo:
    """A :class:`FileInfo` for one file (``-f``), checked against ``policy``; not read yet."""
    return FileInfo(path, policy)


def collect_directory(
    directory: str | os.PathLike[str],
    policy: PathPolicy,
    *,
    pattern: str | Sequence[str] = "*",
    recursive: bool = False,
    include_hidden: bool = False,
) -> FileInfoList:
    """The files of ``directory`` (``-d``) matching ``pattern``, sorted by path; none read yet.

    ``pattern`` is an ``fnmatch`` pattern (or several) matched against the file name, or
    against the path relative to ``directory`` when it contains a ``/``. Subdirectories are
    searched only when ``recursive``; hidden files and directories (name starting with ``.``)
    are skipped unless ``include_hidden``; symlinked directories are not followed. A file that
    resolves outside the allowed directories (a symlink out) is refused, not silently skipped.
    """
    patterns = [pattern] if isinstance(pattern, str) else list(pattern)
    display = policy.display_path(directory)
    root = policy.resolve(directory)
    if not os.path.isdir(root):
        what = "does not exist" if not os.path.exists(root) else "is not a directory"
        raise TemplateInputError(f"directory {display} {what}; pass single files with -f.")
    found: list[FileInfo] = []
    top = policy.absolute(directory)
    for current, dirnames, filenames in os.walk(top, followlinks=False):
        if not include_hidden:
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        dirnames.sort()
        for filename in sorted(filenames):
            if not include_hidden and filename.startswith("."):
                continue
            full = os.path.join(current, filename)
            relative = os.path.relpath(full, top).replace(os.sep, "/")
            if not any(_matches(relative, filename, p) for p in patterns):
                continue
            if os.path.isdir(full):
                continue
            found.append(FileInfo(full, policy))
        if not recursive:
            break
    found.sort(key=lambda f: f.path)
    return FileInfoList(found)


def _matches(relative: str, filename: str, pattern: str) -> bool:
    if "/" in pattern:
        return fnmatch.fnmatchcase(relative, pattern)
    return fnmatch.fnmatchcase(filename, pattern)


def stdin_text(data: str | bytes, policy: PathPolicy | None = None) -> str:
    """Turn piped stdin into the ``stdin`` variable, under the same size and text rules as files."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    if policy is not None:
        policy.consume("stdin", len(raw))
    return decode_text(raw, "stdin")


def read_stdin(
    stream: IO[bytes] | IO[str] | None = None, policy: PathPolicy | None = None
) -> str | None:
    """Read stdin when it is piped (``None`` when it is a terminal), checked by :func:`stdin_text`.

    Reads at most the per-file limit plus one byte, so a huge pipe fails fast with a clear
    error instead of filling memory.
    """
    if stream is None:
        stream = sys.stdin.buffer if sys.stdin is not None else None
        if stream is None:
            return None
    if stream.isatty():
        return None
    limit = policy.max_file_size + 1 if policy is not None else -1
    data = stream.read(limit)
    if policy is not None:
        size = len(data.encode("utf-8")) if isinstance(data, str) else len(data)
        policy.check_size("stdin", size)
    return stdin_text(data, policy)


def _pairs(items: Iterable[str] | None) -> Iterator[str]:
    yield from items or ()


def collect_inputs(
    *,
    files: Iterable[str] | None = None,
    dirs: Iterable[str] | None = None,
    values: Iterable[str] | None = None,
    json_values: Iterable[str] | None = None,
    stdin: str | None = None,
    policy: PathPolicy | None = None,
    pattern: str | Sequence[str] = "*",
    recursive: bool = False,
) -> dict[str, Any]:
    """Build the template variables from the CLI's ``-f``/``-d``/``-V``/``-J`` specs and stdin.

    Each spec is ``NAME=...``; a name given twice (in any options) is an error rather than a
    silent override. ``stdin`` is text already checked by :func:`read_stdin` or
    :func:`stdin_text` and becomes the variable ``stdin``. Nothing is read from disk here
    except directory listings; file contents load when a template uses them.
    """
    policy = policy if policy is not None else PathPolicy()
    variables: dict[str, Any] = {}
    origin: dict[str, str] = {}

    def put(name: str, value: Any, option: str) -> None:
        if name in variables:
            raise TemplateInputError(
                f"variable {name!r} is given twice ({origin[name]} and {option}); each name "
                f"must be unique."
            )
        variables[name] = value
        origin[name] = option

    for spec in _pairs(files):
        name, path = parse_file_spec(spec, option="-f")
        put(name, collect_file(path, policy), "-f")
    for spec in _pairs(dirs):
        name, path = parse_file_spec(spec, option="-d")
        put(name, collect_directory(path, policy, pattern=pattern, recursive=recursive), "-d")
    for spec in _pairs(values):
        name, text = parse_value_spec(spec)
        put(name, text, "-V")
    for spec in _pairs(json_values):
        name, value = parse_json_spec(spec)
        put(name, value, "-J")
    if stdin is not None:
        put("stdin", stdin, "stdin")
    return variables
