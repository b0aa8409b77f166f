"""Where template inputs may come from, and what templates may touch.

Two guards live here, so that the sandboxed environment and the data filters share one policy:

* :class:`PathPolicy` confines every file a template can see to a set of allowed directories
  (the working directory and each ``--allow DIR``) after resolving symlinks, and enforces a size
  limit per file and for all files together.
* :func:`is_safe_template_attribute` decides which attributes template code (and the data
  filters, which look keys up on the user's behalf) may read: nothing private or internal to
  Python, and only the documented attributes of :class:`~.files.FileInfo`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from jinja2.sandbox import is_internal_attribute

from .errors import FileTooLargeError, TemplateSecurityError

__all__ = [
    "DEFAULT_MAX_FILE_SIZE",
    "DEFAULT_MAX_TOTAL_SIZE",
    "PathPolicy",
    "is_safe_template_attribute",
]

DEFAULT_MAX_FILE_SIZE = 1024 * 1024
"""Default limit for one file read by a template: 1 MiB."""

DEFAULT_MAX_TOTAL_SIZE = 10 * 1024 * 1024
"""Default limit for all files (and stdin) read during one run: 10 MiB."""

# Attribute names that reach interpreter internals even without a leading underscore. Jinja's
# own check covers functions, frames, generators and ``mro``; these are belt and braces for
# objects it does not know about.
_BLOCKED_NAMES = frozenset(
    {
        "mro",
        "func_globals",
        "func_code",
        "func_closure",
        "gi_frame",
        "gi_code",
        "cr_frame",
        "cr_code",
        "ag_frame",
        "ag_code",
        "f_globals",
        "f_locals",
        "f_builtins",
        "f_back",
        "tb_frame",
        "tb_next",
    }
)


def is_safe_template_attribute(obj: Any, attr: str) -> bool:
    """Whether template code may read ``obj.<attr>``.

    Refuses private and dunder names, Python internals (function globals, frames, ``mro``) and,
    for objects that declare ``_template_attributes``, anything not in that allow-list.
    """
    if not isinstance(attr, str) or attr.startswith("_") or attr in _BLOCKED_NAMES:
        return False
    if is_internal_attribute(obj, attr):
        return False
    allowed = getattr(type(obj), "_template_attributes", None)
    return not (allowed is not None and attr not in allowed)


def _is_within(path: str, directory: str) -> bool:
    """Whether the (already resolved) ``path`` is ``directory`` or inside it."""
    try:
        return os.path.commonpath([path, directory]) == directory
    except ValueError:  # different drives on Windows
        return False


@dataclass
class PathPolicy:
    """The directories template inputs may come from, and how much may be read.

    ``base_dir`` (default: the working directory) is always allowed; ``allowed_dirs`` adds more
    (the CLI's ``--allow DIR``). Paths are resolved with :func:`os.path.realpath`, so ``..`` and
    symlinks that lead outside every allowed directory are refused. One policy is meant for one
    run: it also counts the bytes read so far against ``max_total_size``.
    """

    base_dir: str | os.PathLike[str] | None = None
    allowed_dirs: Iterable[str | os.PathLike[str]] = ()
    max_file_size: int = DEFAULT_MAX_FILE_SIZE
    max_total_size: int = DEFAULT_MAX_TOTAL_SIZE
    bytes_read: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        base = os.fspath(self.base_dir) if self.base_dir is not None else os.getcwd()
        self.base_dir = os.path.abspath(base)
        roots = [self.base_dir, *(os.path.abspath(os.fspath(d)) for d in self.allowed_dirs)]
        # Resolved once: an allowed directory that is itself a symlink allows its target.
        self._roots: tuple[str, ...] = tuple(dict.fromkeys(os.path.realpath(r) for r in roots))
        self.allowed_dirs = tuple(roots[1:])
        if self.max_file_size <= 0 or self.max_total_size <= 0:
            raise ValueError("max_file_size and max_total_size must be positive")

    @property
    def roots(self) -> tuple[str, ...]:
        """The resolved allowed directories."""
        return self._roots

    def absolute(self, path: str | os.PathLike[str]) -> str:
        """``path`` made absolute against ``base_dir`` (symlinks not resolved)."""
        return os.path.abspath(os.path.join(str(self.base_dir), os.fspath(path)))

    def display_path(self, path: str | os.PathLike[str]) -> str:
        """How a path is shown to templates and in messages: relative to ``base_dir`` if inside."""
        absolute = self.absolute(path)
        base = str(self.base_dir)
        if _is_within(absolute, base):
            return os.path.relpath(absolute, base)
        return absolute

    def resolve(self, path: str | os.PathLike[str]) -> str:
        """Return the real path of ``path`` if it lies in an allowed directory.

        Raises :class:`TemplateSecurityError` naming the path, where it really leads, and the
        ``--allow`` option that would permit it.
        """
        absolute = self.absolute(path)
        real = os.path.realpath(absolute)
        if any(_is_within(real, root) for root in self._roots):
            return real
        shown = os.fspath(path)
        via = f" (it resolves to {real})" if real != absolute else ""
        allowed = ", ".join(self._roots)
        raise TemplateSecurityError(
            f"access denied: {shown}{via} is outside the allowed directories ({allowed}). "
            f"If this file is meant to be read, allow its directory with --allow "
            f"{os.path.dirname(real) or real}.",
            path=shown,
        )

    def check_size(self, display: str, size: int) -> None:
        """Refuse a file of ``size`` bytes if it breaks the per-file limit."""
        if size > self.max_file_size:
            raise FileTooLargeError(
                f"{display} is {_human(size)}, over the per-file limit of "
                f"{_human(self.max_file_size)}; raise it with --max-file-size or pass a "
                f"smaller file."
            )

    def consume(self, display: str, size: int) -> None:
        """Count ``size`` bytes against the total budget, refusing them if it would overflow."""
        self.check_size(display, size)
        if self.bytes_read + size > self.max_total_size:
            raise FileTooLargeError(
                f"reading {display} ({_human(size)}) would bring the inputs to "
                f"{_human(self.bytes_read + size)}, over the total limit of "
                f"{_human(self.max_total_size)}; raise it with --max-total-size or pass fewer "
                f"files."
            )
        self.bytes_read += size


def _human(size: int) -> str:
    """A byte count the way people read it (``1.5 MiB``), with the exact figure for small ones."""
    value = float(size)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{size} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} bytes"  # pragma: no cover
