"""Rendering: front matter, compile, render, and one place that turns failures into our errors."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import jinja2
from jinja2.exceptions import SecurityError

from ._environment import TemplateEnvironment, create_environment
from ._limits import RenderLimits, activate
from .errors import (
    TemplateError,
    TemplateNotFoundError,
    TemplateRenderError,
    TemplateSecurityError,
    TemplateSyntaxError,
    TemplateUndefinedError,
)
from .files import decode_text
from .front_matter import split_front_matter

__all__ = ["RenderedTemplate", "render_template"]

STRING_TEMPLATE_NAME = "<template>"


@dataclass(frozen=True)
class RenderedTemplate:
    """The result of :func:`render_template`.

    ``text`` is the rendered body (the user prompt; front matter is never part of it),
    ``front_matter`` the parsed front matter (``{}`` if none), ``system_prompt`` the rendered
    ``system_prompt`` front-matter value (``None`` if absent), ``filename`` the template's
    display name.
    """

    text: str
    front_matter: dict[str, Any] = field(default_factory=dict)
    system_prompt: str | None = None
    filename: str = STRING_TEMPLATE_NAME


def render_template(
    source_or_path: str | os.PathLike[str],
    variables: Mapping[str, Any] | None = None,
    *,
    base_dir: str | os.PathLike[str] | None = None,
    environment: TemplateEnvironment | None = None,
    limits: RenderLimits | None = None,
) -> RenderedTemplate:
    """Render a template in the sandbox; every failure is a :class:`TemplateError`.

    A ``str`` is template *text*; a path object (``pathlib.Path``) is a template *file*, read as
    UTF-8, whose directory becomes ``base_dir`` (the only place ``include``/``import`` look)
    unless one is given. Front matter is split off first; its ``system_prompt`` value, if any,
    is rendered with the same variables. Error locations are lines of the original file,
    front matter included.

    ``limits`` (default: the environment's, normally
    :data:`~._limits.DEFAULT_RENDER_LIMITS`) bound the whole call, body and ``system_prompt``
    together: its deadline, output size, loop iterations and integer sizes. Going over one
    raises :class:`~.errors.TemplateLimitError` (:class:`~.errors.TemplateTimeoutError` for
    the deadline) naming the limit and how to raise it.
    """
    variables = dict(variables or {})
    if isinstance(source_or_path, str):
        source, filename = source_or_path, STRING_TEMPLATE_NAME
    else:
        path = os.fspath(source_or_path)
        source = _read_template(path)
        filename = path
        if base_dir is None:
            base_dir = os.path.dirname(os.path.abspath(path))
    env = environment if environment is not None else create_environment(base_dir)
    front_matter, body, offset = split_front_matter(source, filename)
    system_prompt = front_matter.get("system_prompt")
    if system_prompt is not None and not isinstance(system_prompt, str):
        raise TemplateSyntaxError(
            f"front matter: system_prompt must be text, got {type(system_prompt).__name__}.",
            filename=filename,
        )
    with activate(limits if limits is not None else env.limits):
        text = _render(env, body, variables, filename, offset)
        if system_prompt is not None:
            system_prompt = _render(env, system_prompt, variables, f"{filename} (system_prompt)", 0)
    return RenderedTemplate(text, front_matter, system_prompt, filename)


def _read_template(path: str) -> str:
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        raise TemplateNotFoundError(f"template file not found: {path}") from None
    except OSError as exc:
        raise TemplateNotFoundError(f"cannot read template {path}: {exc.strerror}") from None
    return decode_text(data, path)


def _render(
    env: TemplateEnvironment,
    source: str,
    variables: dict[str, Any],
    filename: str,
    offset: int,
) -> str:
    def fix(lineno: int | None, where: str | None) -> tuple[str | None, int | None]:
        # Lines in the main template move down by the front matter we cut off.
        if where in (None, filename) and lineno is not None:
            return filename, lineno + offset
        return where, lineno

    try:
        code = env.compile(source, name=os.path.basename(filename), filename=filename)
        template = env.template_class.from_code(env, code, env.make_globals(None), None)
        return template.render(variables)
    except TemplateError as exc:
        where, line = fix(*_location(exc.__traceback__))
        if isinstance(exc, TemplateUndefinedError) and getattr(exc, "is_variable", False):
            names = ", ".join(sorted(variables)) or "none"
            exc.available = sorted(variables)
            exc.message = f"{exc.message}; available variables: {names}"
            exc.args = (exc.message,)
        # Without a template line (the output as a whole went over a limit), name the file.
        raise exc.at(where or filename, line).with_traceback(None) from None
    except jinja2.TemplateSyntaxError as exc:
        where, line = fix(exc.lineno, exc.filename or filename)
        raise TemplateSyntaxError(
            exc.message or "invalid syntax", filename=where, lineno=line
        ) from None
    except jinja2.TemplateNotFound as exc:
        where, line = fix(*_location(exc.__traceback__))
        raise TemplateNotFoundError(
            f"template {exc.name!r} not found", filename=where, lineno=line
        ) from None
    except SecurityError as exc:
        where, line = fix(*_location(exc.__traceback__))
        raise TemplateSecurityError(
            f"blocked by the template sandbox: {exc}", filename=where, lineno=line
        ) from None
    except jinja2.UndefinedError as exc:  # pragma: no cover - our undefined raises ours
        where, line = fix(*_location(exc.__traceback__))
        raise TemplateUndefinedError(str(exc), filename=where, lineno=line) from None
    except (jinja2.TemplateError, Exception) as exc:
        where, line = fix(*_location(exc.__traceback__))
        raise TemplateRenderError(
            f"{type(exc).__name__}: {exc}", filename=where, lineno=line
        ) from None


def _location(tb: TracebackType | None) -> tuple[int | None, str | None]:
    """The innermost template line in a traceback Jinja has rewritten (``lineno``, ``file``)."""
    found: tuple[int | None, str | None] = (None, None)
    while tb is not None:
        frame = tb.tb_frame
        if "__jinja_exception__" in frame.f_globals:  # a frame Jinja made to point at a template
            found = (tb.tb_lineno, frame.f_code.co_filename)
        tb = tb.tb_next
    return found
