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
* Every operation that can build something big is bounded by the render's
  :class:`~._limits.RenderLimits`: operators (``+ - * / // % **``) and ``~``, calls (string
  methods such as ``ljust`` or ``replace`` are wrapped when they are looked up, so they are
  checked however they are called), every filter, list and dict literals, ``range`` and every
  ``{% for %}`` loop. The code generator is extended for the last three (and ``~``), since
  Jinja compiles them to plain Python the sandbox never sees. Output is joined by a checked
  ``concat``, so the rendered text, ``{% set %}`` blocks and macro output are bounded too, and
  the render's deadline is checked at all of these points.
"""

from __future__ import annotations

import os
import types
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, cast

from jinja2 import BaseLoader, Environment, FileSystemLoader, StrictUndefined, Undefined, nodes
from jinja2.compiler import CodeGenerator, Frame, optimizeconst
from jinja2.environment import Template
from jinja2.exceptions import UndefinedError
from jinja2.runtime import Context, LoopContext, Macro
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import missing
from markupsafe import Markup

from ._guards import (
    FEW_BITS,
    GROWING,
    GUARDED_METHODS,
    NUMBERS,
    check_result,
    checked_binop,
    digits_of,
    guard_filters,
    guard_method,
    guarded_format,
    guarded_range,
    text_of,
)
from ._limits import (
    _STATE,
    CLOCK_MASK,
    DEFAULT_RENDER_LIMITS,
    RenderLimits,
    RenderState,
    activate,
    active_state,
    current_state,
    is_container,
)
from .errors import TemplateNotFoundError, TemplateSecurityError, TemplateUndefinedError
from .files import FileInfo, FileInfoList
from .filters import DATA_FILTERS, DATA_GLOBALS, TEXT_FILTERS
from .security import is_safe_template_attribute

__all__ = ["TemplateEnvironment", "create_environment"]

_SMALL = 1 << FEW_BITS
_PRINTED_AS_IS = frozenset({str, int, float, bool, type(None), Markup})


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
            elif isinstance(obj, FileInfoList):
                message = _file_list_message(name)
            else:
                message = f"{type(obj).__name__} value has no attribute or key {name!r}"
        elif self._undefined_hint is None:
            message = f"variable {name!r} is not defined"
        owner = None if obj is missing else type(obj).__name__
        error = TemplateUndefinedError(message, name=name, owner=owner)
        error.is_variable = obj is missing  # type: ignore[attr-defined]
        return error


def _file_list_message(name: str | None) -> str:
    """A file's attribute asked of a list of files (a directory input): say how to loop."""
    if name in FileInfo._template_attributes:
        return (
            f"a list of files (a directory input) has no attribute {name!r}; each file in it "
            f"has: loop over the list, {{% for f in files %}}{{{{ f.{name} }}}}{{% endfor %}}"
        )
    shown = ", ".join(sorted(FileInfoList._template_attributes))
    return f"a list of files (a directory input) has no attribute {name!r} (it has {shown})"


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


class _CountedLoop:
    """A loop's iterable that counts every iteration against the render's limits.

    It keeps ``len()`` when the iterable has one, so ``loop.length`` and ``loop.last`` work as
    before.
    """

    __slots__ = ("_items", "_state")

    def __init__(self, items: Any, state: RenderState) -> None:
        self._items = items
        self._state = state

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Any]:
        state = self._state
        limit = state.limits.max_loop_iterations
        for item in self._items:
            state.iterations += 1  # iterate(), inlined: this runs for every iteration
            state.ops += 1
            if state.iterations > limit or not state.ops & CLOCK_MASK:
                state.ops -= 1
                state.iterations -= 1
                state.iterate()
            yield item


class _LimitedCodeGenerator(CodeGenerator):
    """Jinja's code generator, routing the constructs it compiles to plain Python (loops,
    ``~``, literals) through the environment's guards."""

    def visit_Template(self, node: nodes.Template, frame: Frame | None = None) -> None:
        for loop in list(node.find_all(nodes.For)):
            guard = nodes.EnvironmentAttribute("guard_loop", lineno=loop.iter.lineno)
            loop.iter = nodes.Call(guard, [loop.iter], [], None, None, lineno=loop.iter.lineno)
        super().visit_Template(node, frame)

    @optimizeconst
    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        if frame.eval_ctx.volatile:
            join = "(markup_join if context.eval_ctx.volatile else str_join)"
        elif frame.eval_ctx.autoescape:
            join = "markup_join"
        else:
            join = "str_join"
        self.write(f"environment.guard_concat({join}, (")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")

    def visit_List(self, node: nodes.List, frame: Frame) -> None:
        self.write("environment.guard_literal(")
        super().visit_List(node, frame)
        self.write(")")

    def visit_Dict(self, node: nodes.Dict, frame: Frame) -> None:
        self.write("environment.guard_literal(")
        super().visit_Dict(node, frame)
        self.write(")")

    def visit_Tuple(self, node: nodes.Tuple, frame: Frame) -> None:
        if node.ctx != "load":  # an assignment target such as {% for a, b in ... %}
            super().visit_Tuple(node, frame)
            return
        self.write("environment.guard_literal(")
        super().visit_Tuple(node, frame)
        self.write(")")


class _LimitedTemplate(Template):
    """A template whose :meth:`render` runs under the environment's limits (unless a render
    with its own limits, such as :func:`~._render.render_template`, is already running)."""

    def render(self, *args: Any, **kwargs: Any) -> str:
        """Render under the limits; see :meth:`jinja2.Template.render`."""
        limits = cast("TemplateEnvironment", self.environment).limits
        with activate(limits):
            return super().render(*args, **kwargs)

    def generate(self, *args: Any, **kwargs: Any) -> Iterator[str]:
        """Yield the output piece by piece, each piece produced under the limits."""
        state = active_state() or RenderState(cast("TemplateEnvironment", self.environment).limits)
        pieces = super().generate(*args, **kwargs)
        total = 0
        while True:
            token = _STATE.set(state)
            try:
                piece = next(pieces)
                total += len(piece)
                state.check_size(total, "the template's output")
            except StopIteration:
                return
            finally:
                _STATE.reset(token)
            yield piece


class TemplateEnvironment(ImmutableSandboxedEnvironment):
    """The sandboxed environment with this project's filters, globals and stricter checks.

    ``limits`` (default :data:`~._limits.DEFAULT_RENDER_LIMITS`) bound every render that does
    not bring its own (``render_template(..., limits=...)`` does).
    """

    intercepted_binops = frozenset({"+", "-", "*", "/", "//", "%", "**"})
    code_generator_class = _LimitedCodeGenerator
    template_class = _LimitedTemplate

    def __init__(self, *args: Any, limits: RenderLimits | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits = limits if limits is not None else DEFAULT_RENDER_LIMITS
        self.finalize = self.finalize_value
        self.globals["range"] = guarded_range

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
        """Every arithmetic operator, with the size and integer limits checked first."""
        native = self.binop_table[operator]
        if (
            type(left) in NUMBERS
            and type(right) in NUMBERS
            and (
                operator not in GROWING
                or (operator == "*" and abs(left) < _SMALL and abs(right) < _SMALL)
            )
        ):
            # + - / // % and small * on plain numbers (most arithmetic in templates): only
            # an integer result can be too big, and then only a little at a time.
            result = native(left, right)
            if type(result) is int and result.bit_length() > FEW_BITS:
                self._state().check_digits(digits_of(result.bit_length()), "this result")
            return result
        return checked_binop(self._state(), operator, left, right, native)

    def wrap_str_format(self, value: Any) -> Callable[..., Any] | None:
        """Sandboxed ``format``; ``ljust``, ``replace``, ``join``, ... wrapped in size checks.

        Jinja calls this for every attribute it looks up, so a method is guarded however it is
        called later (directly, stored in a variable or passed to a filter).
        """
        if not isinstance(value, (types.MethodType, types.BuiltinMethodType)):
            return None
        owner = getattr(value, "__self__", None)
        name = value.__name__
        if isinstance(owner, str) and name in ("format", "format_map"):
            return guarded_format(self, value)
        if isinstance(owner, (str, bytes)) and name in GUARDED_METHODS:
            return guard_method(value)
        return None

    def call(
        __self,  # named like Jinja's, so a template may pass any keyword argument
        __context: Context,
        __obj: Any,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        """Call from template code: counted, and its result checked against the limits."""
        state = __self._state()
        state.tick()
        if isinstance(__obj, LoopContext) and args:  # loop(children) in a recursive loop
            args = (__self.guard_loop(args[0]), *args[1:])
        result = super().call(__context, __obj, *args, **kwargs)
        if isinstance(__obj, Macro):
            state.check_size(len(result), "a macro's output")  # already counted by concat()
        elif isinstance(result, (str, bytes, list, tuple, dict, set, frozenset)):
            name = getattr(__obj, "__name__", None) or type(__obj).__name__
            check_result(state, result, f"the result of {name}()")
        return result

    # -- hooks called by the generated code (see _LimitedCodeGenerator) --

    def guard_loop(self, iterable: Any) -> Any:
        """The iterable of a ``{% for %}`` loop, counting each iteration."""
        return _CountedLoop(iterable, self._state())

    def guard_concat(self, join: Callable[[Iterable[Any]], str], parts: tuple[Any, ...]) -> str:
        """``a ~ b ~ c``: each part's text measured before it is joined."""
        state = self._state()
        state.tick()
        texts = [
            p if isinstance(p, str) or hasattr(p, "__html__") else text_of(state, p, "~")
            for p in parts
        ]
        state.check_size(sum(len(t) for t in texts if isinstance(t, str)), "joining with ~")
        result = join(texts)
        state.add_built(len(result), "~")
        return result

    def guard_literal(self, value: Any) -> Any:
        """A list, tuple or dict literal: measured with everything it holds."""
        state = self._state()
        state.check_size(state.data_size(value), f"this {type(value).__name__} literal")
        state.add_built(len(value), "a literal", items=True)
        return value

    def concat(self, pieces: Iterable[str]) -> str:
        """Join output (the render, ``{% set %}`` blocks, macros), refusing it over the limit.

        The pieces are collected first (references to strings that exist already: every new
        one was checked when it was made) and measured before the one big join.
        """
        state = active_state()
        collected = pieces if isinstance(pieces, list) else list(pieces)
        if state is None:
            return "".join(collected)
        total = sum(map(len, collected))
        state.check_size(total, "the template's output")
        state.add_built(total, "the template's output")
        return "".join(collected)

    def finalize_value(self, value: Any) -> Any:
        """What ``{{ value }}`` prints: a list or dict is measured before it becomes text."""
        if type(value) in _PRINTED_AS_IS or not is_container(value):
            return value
        state = self._state()
        text = text_of(state, value, "printing this value")
        state.add_built(len(text), "printing a value")
        return text

    def _state(self) -> RenderState:
        return current_state(self.limits)


def create_environment(
    base_dir: str | os.PathLike[str] | None = None, *, limits: RenderLimits | None = None
) -> TemplateEnvironment:
    """A fresh sandboxed environment; ``include``/``import`` resolve inside ``base_dir`` only.

    Without ``base_dir`` the template has no directory and ``include``/``import`` fail with
    :class:`TemplateNotFoundError`. Output is not HTML-escaped (prompts are not HTML) and the
    template's final newline is kept. ``limits`` bound its renders (default
    :data:`~._limits.DEFAULT_RENDER_LIMITS`); every filter is wrapped to respect them, so a
    filter added to ``env.filters`` later is not.
    """
    loader: BaseLoader
    if base_dir is None:
        loader = _NoIncludes()
    else:
        loader = _ConfinedLoader(os.path.abspath(os.fspath(base_dir)))
    env = TemplateEnvironment(
        limits=limits,
        loader=loader,
        undefined=_UndefinedName,
        autoescape=False,
        keep_trailing_newline=True,
        extensions=["jinja2.ext.loopcontrols"],
    )
    env.globals.pop("lipsum", None)  # a lorem-ipsum generator has no use in prompts
    env.filters.update(DATA_FILTERS)
    env.filters.update(TEXT_FILTERS)
    guard_filters(env.filters)
    env.globals.update(DATA_GLOBALS)
    return env
