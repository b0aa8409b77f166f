"""The template error family (SPEC §5).

Every error the template engine and the input collectors raise derives from
:class:`TemplateError`, itself an :class:`~openai_structured.errors.OpenAIClientError`, so one
``except`` covers the whole family and a caller (the CLI) can map each subclass to its own exit
code. No raw Jinja or Python traceback reaches the user: syntax errors carry ``filename`` and
``lineno``; data errors name the filter and the offending value; security errors name what was
refused and how to allow it when that is legitimate.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..errors import OpenAIClientError

__all__ = [
    "BinaryFileError",
    "FileTooLargeError",
    "TemplateDataError",
    "TemplateError",
    "TemplateInputError",
    "TemplateLimitError",
    "TemplateNotFoundError",
    "TemplateRenderError",
    "TemplateSecurityError",
    "TemplateSyntaxError",
    "TemplateTimeoutError",
    "TemplateUndefinedError",
]


def _location(filename: str | None, lineno: int | None) -> str:
    if filename is None:
        return ""
    return f"{filename}:{lineno}: " if lineno else f"{filename}: "


class TemplateError(OpenAIClientError):
    """Base of every template and template-input error.

    ``filename`` and ``lineno`` point into the template when the error happened while rendering
    (``None`` when unknown); ``str(error)`` starts with ``file:line:`` when they are known.
    """

    def __init__(
        self, message: str, *, filename: str | None = None, lineno: int | None = None
    ) -> None:
        self.message = message
        self.filename = filename
        self.lineno = lineno
        super().__init__(_location(filename, lineno) + message)

    def at(self, filename: str | None, lineno: int | None) -> TemplateError:
        """Attach a template location if none is known yet (returns ``self``)."""
        if self.filename is None and filename is not None:
            self.filename = filename
            self.lineno = lineno
            self.args = (_location(filename, lineno) + self.message,)
        return self

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else self.message


class TemplateSyntaxError(TemplateError):
    """The template (or its front matter) is not valid; ``filename:lineno`` says where."""


class TemplateNotFoundError(TemplateError):
    """A template, or a file it includes/imports, does not exist where it was looked for."""


class TemplateUndefinedError(TemplateError):
    """The template used a variable (or key/attribute) that does not exist.

    ``name`` is the missing name; ``available`` lists the variables the template was given;
    ``owner`` is the type name of the value the attribute or key was looked up on
    (``"FileInfoList"`` for ``{{ docs.content }}`` on a directory input), None for a variable.
    """

    def __init__(
        self,
        message: str,
        *,
        name: str | None = None,
        available: Sequence[str] = (),
        owner: str | None = None,
        filename: str | None = None,
        lineno: int | None = None,
    ) -> None:
        self.name = name
        self.available = list(available)
        self.owner = owner
        super().__init__(message, filename=filename, lineno=lineno)


class TemplateDataError(TemplateError, ValueError):
    """A data filter got input it cannot use (non-numeric value, unhashable value, ...).

    ``filter`` names the filter, ``key`` the key it was working on (if any) and ``value`` the
    offending value, so the message can point at the record to fix.
    """

    def __init__(
        self,
        message: str,
        *,
        filter: str | None = None,
        key: Any = None,
        value: Any = None,
        filename: str | None = None,
        lineno: int | None = None,
    ) -> None:
        self.filter = filter
        self.key = key
        self.value = value
        super().__init__(message, filename=filename, lineno=lineno)


class TemplateRenderError(TemplateError):
    """Any other failure while rendering (a Python error raised by an expression)."""


class TemplateSecurityError(TemplateError):
    """The template or an input tried something the sandbox refuses.

    Raised for attribute access to Python internals (``__class__``, ``__globals__``, ...), for
    paths outside the allowed directories (``path`` is set then) and, as its subclass
    :class:`TemplateLimitError`, for going over a render limit.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        filename: str | None = None,
        lineno: int | None = None,
    ) -> None:
        self.path = path
        super().__init__(message, filename=filename, lineno=lineno)


class TemplateLimitError(TemplateSecurityError):
    """A render went over one of its :class:`~._limits.RenderLimits`.

    ``limit`` is the name of the field (``max_output_size``, ``max_loop_iterations``, ...) and
    ``value`` its value in this render; the message says what went over and how to raise it.
    """

    def __init__(
        self,
        message: str,
        *,
        limit: str,
        value: Any,
        filename: str | None = None,
        lineno: int | None = None,
    ) -> None:
        self.limit = limit
        self.value = value
        super().__init__(message, filename=filename, lineno=lineno)


class TemplateTimeoutError(TemplateLimitError):
    """The render was still running when its deadline (``RenderLimits.timeout``) passed."""


class TemplateInputError(TemplateError, ValueError):
    """A template input (``-f``, ``-d``, ``-V``, ``-J``, stdin) cannot be used as given."""


class FileTooLargeError(TemplateInputError):
    """A file (or the inputs together) exceed the configured size limit."""


class BinaryFileError(TemplateInputError):
    """A file is not UTF-8 text (it contains NUL bytes or cannot be decoded)."""
