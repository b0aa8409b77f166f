"""The sandboxed Jinja environment templates run in.

Why each piece is here:

* :class:`jinja2.sandbox.ImmutableSandboxedEnvironment`: template code cannot reach Python
  internals and cannot mutate the inputs it is given (``list.append``, ``dict.update``, ...), so
  a template cannot change what another part of the run sees.
* Unsafe attribute access *raises* :class:`TemplateSecurityError` at once, instead of Jinja's
  default of returning an undefined value that only fails when printed: a template probing
  ``__class__`` is an attack or a bug, and either way it should stop.
* Strict undefined: a misspelt variable is an error naming it, not an empty string in a prompt
  sent to a paid model.
* The loader is confined to the template's own directory: ``include``/``import`` cannot climb
  out with ``..``, absolute names or symlinks.
* ``*`` and ``**`` are checked so that ``"x" * 10**10`` or ``9 ** 9 ** 9`` cannot exhaust memory.
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Callable, Mapping
from typing import Any

from jinja2 import BaseLoader, Environment, FileSystemLoader, StrictUndefined, Undefined
from jinja2.exceptions import UndefinedError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import missing

from .errors import TemplateNotFoundError, TemplateSecurityError, TemplateUndefinedError
from .filters import DATA_FILTERS, DATA_GLOBALS, TEXT_FILTERS
from .security import is_safe_template_attribute

__all__ = ["TemplateEnvironment", "create_environment"]

# Results larger than this from ``*`` on strings/lists are refused (characters or items).
MAX_REPEAT = 10_000_000
# Exponents larger than this are refused: big-integer powers can take minutes.
MAX_EXPONENT = 10_000


class _UndefinedName(StrictUndefined):
    """Strict undefined whose failure is a :class:`TemplateUndefinedError` naming the name."""

    __slots__ = ()

    def __init__(
        self,
        hint: str | None = None,
        obj: Any = missing,
        name: str | None = None,
        exc: type[Exception] = UndefinedError,
    ) -> None:
        super().__init__(hint, obj, name, exc)  # type: ignore[arg-type]
        # Jinja raises ``self._undefined_exception(message)``; route that through a factory that
        # knows the missing name and, for a missing key, which keys do exist.
        if exc in (TemplateUndefinedError, UndefinedError):
            self._undefined_exception = self._make_error  # type: ignore[assignment]

    def _make_error(self, message: str) -> TemplateUndefinedError:
        obj = self._undefined_obj
        name = self._undefined_name
        if self._undefined_hint is None and obj is not missing:
            if isinstance(obj, Mapping):
                keys = ", ".join(sorted(map(str, obj))) or "none"
                message = f"key {name!r} does not exist (the keys are: {keys})"
            else:
                message = f"{type(obj).__name__} value has no attribute or key {name!r}"
        elif self._undefined_hint is None:
            message = f"variable {name!r} is not defined"
        error = TemplateUndefinedError(message, name=name)
        error.is_variable = obj is missing  # type: ignore[attr-defined]
        return error


class _NoIncludes(BaseLoader):
    """The loader of a template given as a string: there is no directory to include from."""

    def get_source(
        self, environment: Environment, template: str
    ) -> tuple[str, str | None, Callable[[], bool] | None]:
        raise TemplateNotFoundError(
            f"cannot include or import {template!r}: the template was given as text, so it has "
            f"no directory; render it from a file (or pass base_dir) to use include/import."
        )


def _within(path: str, root: str) -> bool:
    try:
        return os.path.commonpath([path, root]) == root
    except ValueError:
        return False


class _ConfinedLoader(FileSystemLoader):
    """A file-system loader that refuses any name that would leave its directory."""

    def __init__(self, root: str) -> None:
        super().__init__(root, followlinks=False)
        self._root = os.path.realpath(root)

    def get_source(
        self, environment: Environment, template: str
    ) -> tuple[str, str, Callable[[], bool]]:
        parts = template.replace("\\", "/").split("/")
        if template.startswith(("/", "\\")) or os.path.isabs(template) or ".." in parts:
            raise TemplateSecurityError(
                f"cannot include or import {template!r}: templates may only include files from "
                f"their own directory ({self._root}), by a relative name without '..'.",
                path=template,
            )
        try:
            source, filename, uptodate = super().get_source(environment, template)
        except OSError:  # TemplateNotFound is an OSError too
            raise TemplateNotFoundError(
                f"cannot include or import {template!r}: no such file in the template "
                f"directory {self._root}."
            ) from None
        if not _within(os.path.realpath(filename), self._root):
            raise TemplateSecurityError(
                f"cannot include or import {template!r}: it is a symlink leading outside the "
                f"template directory ({self._root}).",
                path=template,
            )
        return source, filename, uptodate


class TemplateEnvironment(ImmutableSandboxedEnvironment):
    """The sandboxed environment with this project's filters, globals and stricter checks."""

    intercepted_binops = frozenset({"*", "**"})

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        """Jinja's immutable-sandbox rules plus :func:`is_safe_template_attribute`."""
        return super().is_safe_attribute(obj, attr, value) and is_safe_template_attribute(obj, attr)

    def unsafe_undefined(self, obj: Any, attribute: str) -> Any:
        """Refuse at once (Jinja would return an undefined that fails only when printed)."""
        kind = type(obj).__name__
        if is_safe_template_attribute(obj, attribute):  # refused by the immutable sandbox
            raise TemplateSecurityError(
                f"calling {attribute!r} on a {kind!r} is not allowed: templates cannot modify "
                f"their inputs; build a new value instead (e.g. items + [x], "
                f"dict(d, key=value))."
            )
        allowed = getattr(type(obj), "_template_attributes", None)
        if allowed is not None and not attribute.startswith("_"):
            raise TemplateSecurityError(
                f"{kind} has no template attribute {attribute!r}; use one of: "
                f"{', '.join(sorted(allowed))}."
            )
        raise TemplateSecurityError(
            f"access to {attribute!r} on a {kind!r} is not allowed: templates cannot use "
            f"private attributes or Python internals."
        )

    def getattr(self, obj: Any, attribute: str) -> Any:
        """Jinja's sandboxed lookup, but a private name that is not data is refused loudly."""
        return self._refuse_private(obj, attribute, super().getattr(obj, attribute))

    def getitem(self, obj: Any, argument: Any) -> Any:
        """Jinja's sandboxed subscript, with the same loud refusal as :meth:`getattr`."""
        return self._refuse_private(obj, argument, super().getitem(obj, argument))

    def _refuse_private(self, obj: Any, name: Any, value: Any) -> Any:
        # ``x.__dict__`` on an object without one would otherwise be a mere "undefined"; a
        # probe for private names should stop with a security error whether or not it exists.
        # Dict keys starting with "_" are data and stay reachable (and undefined if absent).
        if (
            isinstance(value, Undefined)
            and isinstance(name, str)
            and name.startswith("_")
            and not isinstance(obj, (Mapping, Undefined))
        ):
            self.unsafe_undefined(obj, name)
        return value

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        """``*`` and ``**`` with limits on result size; other operators as usual."""
        if (
            operator == "**"
            and isinstance(right, numbers.Integral)
            and (
                abs(int(right)) > MAX_EXPONENT
                and isinstance(left, (int, float, complex))
                and left not in (0, 1, -1)
            )
        ):
            raise TemplateSecurityError(
                f"exponent {right} is too large (limit {MAX_EXPONENT}) for template arithmetic."
            )
        if operator == "*":
            for seq, count in ((left, right), (right, left)):
                if (
                    isinstance(seq, (str, list, tuple))
                    and isinstance(count, int)
                    and len(seq) * count > MAX_REPEAT
                ):
                    raise TemplateSecurityError(
                        f"repeating a {type(seq).__name__} {count} times would make "
                        f"{len(seq) * count} items (limit {MAX_REPEAT})."
                    )
        return super().call_binop(context, operator, left, right)


def create_environment(base_dir: str | os.PathLike[str] | None = None) -> TemplateEnvironment:
    """A fresh sandboxed environment; ``include``/``import`` resolve inside ``base_dir`` only.

    Without ``base_dir`` the template has no directory and ``include``/``import`` fail with
    :class:`TemplateNotFoundError`. Output is not HTML-escaped (prompts are not HTML) and the
    template's final newline is kept.
    """
    loader: BaseLoader
    if base_dir is None:
        loader = _NoIncludes()
    else:
        loader = _ConfinedLoader(os.path.abspath(os.fspath(base_dir)))
    env = TemplateEnvironment(
        loader=loader,
        undefined=_UndefinedName,
        autoescape=False,
        keep_trailing_newline=True,
        extensions=["jinja2.ext.loopcontrols"],
    )
    env.globals.pop("lipsum", None)  # a lorem-ipsum generator has no use in prompts
    env.filters.update(DATA_FILTERS)
    env.filters.update(TEXT_FILTERS)
    env.globals.update(DATA_GLOBALS)
    return env
