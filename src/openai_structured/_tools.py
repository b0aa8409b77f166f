"""Function tools: what ``tools=`` takes, what is sent, and the typed calls that come back.

``tools=`` takes pydantic model classes (the tool is named after the class and described by its
docstring), the dicts ``openai.pydantic_function_tool(Model, ...)`` and
``openai.pydantic_responses_function_tool(...)`` return (they remember the model), and plain
function dicts in either API's form (``{"type": "function", "function": {...}}`` or the Responses
API's flat ``{"type": "function", "name": ..., "parameters": ...}``). Every function tool's
parameters go through the schema compiler, strict unless the dict says ``"strict": false``.
Built-in tools (``web_search``, ``file_search``, ...) pass through untouched. Each API object
(:mod:`._apis`) renders a :class:`FunctionTool` in its own form.

A call the model makes comes back as a :class:`RawToolCall` (what the API said) and is turned
into a :class:`ToolCall` (validated arguments) by :meth:`ToolSet.call`. Pure: no I/O.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import jiter

from ._outcome import RawToolCall, invalid_json_error
from ._validation import ResultValidator, is_model_class, validation_error
from .errors import APIResponseError, SchemaError, UnknownToolError, ValidationError
from .schema import CompiledSchema, compile_schema

__all__ = ["FunctionTool", "RawToolCall", "ToolCall", "ToolSet", "prepare_tools"]


@dataclass(frozen=True)
class ToolCall:
    """One call the model made. ``arguments`` is an instance of the tool's model (model tools),
    a dict validated against the tool's JSON Schema (dict tools, when ``validate_schema``), or
    the parsed dict (non-strict dict tools); ``raw_arguments`` is the JSON text as sent."""

    index: int
    id: str | None
    name: str
    arguments: Any
    raw_arguments: str = field(repr=False)


@dataclass(frozen=True)
class FunctionTool:
    """One function tool: what is sent, and how its arguments are validated."""

    name: str
    description: str | None
    compiled: CompiledSchema
    #: The tool's model class (model tools), else None.
    model: Any
    #: Validates the parsed arguments; None for non-strict dict tools (returned as parsed).
    validator: ResultValidator | None = field(repr=False)

    @property
    def strict(self) -> bool:
        return self.compiled.strict

    @property
    def parameters(self) -> dict[str, Any]:
        """The parameters schema to send."""
        return self.compiled.schema

    def validate_value(self, value: Any, raw: RawToolCall, *, response_id: str | None) -> Any:
        """The typed arguments of ``raw``, whose JSON is already parsed into ``value``."""
        if self.validator is None:
            return value
        try:
            return self.validator.validate_value(value, content=raw.arguments)
        except ValidationError as exc:
            raise self._invalid(exc, raw, response_id) from None

    def _invalid(
        self, exc: ValidationError, raw: RawToolCall, response_id: str | None
    ) -> ValidationError:
        errors = [{**e, "tool": self.name} for e in exc.errors()]
        error = validation_error(
            errors,
            what=f"The call to tool {self.name!r} (call {raw.index})",
            response_id=response_id,
            content=raw.arguments,
        )
        error.tool_name = self.name
        return error


@dataclass(frozen=True)
class ToolSet:
    """The request's tools: function tools by name, and the entries in the order given (a
    :class:`FunctionTool`, or a built-in tool's dict sent as is)."""

    entries: tuple[FunctionTool | Mapping[str, Any], ...]
    functions: Mapping[str, FunctionTool]

    def tool(
        self, name: str, *, response_id: str | None = None, usage: Mapping[str, Any] | None = None
    ) -> FunctionTool:
        """The function tool called ``name``; :class:`UnknownToolError` when there is none."""
        tool = self.functions.get(name)
        if tool is None:
            known = sorted(self.functions)
            names = ", ".join(repr(n) for n in known) if known else "none"
            raise UnknownToolError(
                f"The model called a tool named {name!r}, which the request does not have "
                f"(function tools given: {names}). Check tool_choice and the tool names.",
                tool_name=name,
                known=known,
                response_id=response_id,
                usage=usage,
            )
        return tool

    def call(
        self,
        raw: RawToolCall,
        *,
        response_id: str | None = None,
        usage: Mapping[str, Any] | None = None,
    ) -> ToolCall:
        """Parse and validate one call's arguments; a failure names the call
        (``tool_call_index``)."""
        try:
            tool = self.tool(raw.name, response_id=response_id, usage=usage)
            try:
                value = jiter.from_json(raw.arguments.encode())
            except ValueError:
                raise invalid_json_error(
                    raw.arguments,
                    response_id=response_id,
                    usage=usage,
                    what=f"The arguments of the call to tool {raw.name!r} (call {raw.index})",
                ) from None
            arguments = tool.validate_value(value, raw, response_id=response_id)
        except APIResponseError as exc:
            exc.usage = dict(usage) if usage is not None else None
            exc.tool_call_index = raw.index
            raise
        return ToolCall(raw.index, raw.id, raw.name, arguments, raw.arguments)

    def calls(
        self,
        raws: Sequence[RawToolCall],
        *,
        response_id: str | None = None,
        usage: Mapping[str, Any] | None = None,
    ) -> list[ToolCall]:
        return [self.call(raw, response_id=response_id, usage=usage) for raw in raws]


def prepare_tools(tools: Sequence[Any], *, strict: bool, validate_schema: bool = True) -> ToolSet:
    """Check and compile ``tools=``. ``strict`` is what the server supports (or the caller's
    ``strict=``); a dict's ``"strict": false`` turns it off for that tool."""
    if isinstance(tools, (str, bytes, Mapping)) or not isinstance(tools, Sequence):
        raise TypeError(
            "tools= must be a list of tools: pydantic model classes, "
            "openai.pydantic_function_tool(...) dicts or function tool dicts."
        )
    entries: list[FunctionTool | Mapping[str, Any]] = []
    functions: dict[str, FunctionTool] = {}
    for index, given in enumerate(tools):
        entry = _tool(given, index, strict=strict, validate_schema=validate_schema)
        if isinstance(entry, FunctionTool):
            if entry.name in functions:
                raise TypeError(
                    f"tools[{index}]: a second tool is named {entry.name!r}; tool names must "
                    "be unique (pass name= to openai.pydantic_function_tool)."
                )
            functions[entry.name] = entry
        entries.append(entry)
    return ToolSet(tuple(entries), functions)


def _tool(
    given: Any, index: int, *, strict: bool, validate_schema: bool
) -> FunctionTool | Mapping[str, Any]:
    where = f"tools[{index}]"
    if is_model_class(given):
        return _model_tool(given, given.__name__, _doc(given), strict=strict)
    if not isinstance(given, Mapping):
        raise TypeError(f"{where} must be a pydantic model class or a tool dict, got {given!r}.")
    if given.get("type") != "function":
        if not isinstance(given.get("type"), str):
            raise TypeError(f"{where} has no 'type': a tool dict needs one ('function', ...).")
        return given  # a built-in tool: the API's business
    # The Chat Completions form nests the function; the Responses form is flat.
    function = given.get("function", given)
    if not isinstance(function, Mapping):
        raise TypeError(f"{where}['function'] must be a dict with 'name' and 'parameters'.")
    name = function.get("name")
    if not isinstance(name, str) or not name:
        raise TypeError(f"{where} needs a non-empty 'name'.")
    description = function.get("description")
    if description is not None and not isinstance(description, str):
        raise TypeError(f"{where}: 'description' must be a string.")
    model = getattr(function, "model", None) or getattr(given, "model", None)
    tool_strict = strict and function.get("strict", True) is not False
    if is_model_class(model):  # openai.pydantic_function_tool(...) remembers the model
        return _model_tool(model, name, description, strict=tool_strict)
    parameters = function.get("parameters", {"type": "object", "properties": {}})
    if not isinstance(parameters, Mapping):
        raise TypeError(f"{where}: 'parameters' must be a JSON Schema dict.")
    compiled = _compile(parameters, name, strict=tool_strict)
    validator = None
    if function.get("strict", True) is not False:
        validator = ResultValidator(
            schema=compiled.original,
            validate_schema=validate_schema,
            restore=compiled.restore if compiled.needs_restore else None,
        )
    return FunctionTool(name, description, compiled, None, validator)


def _model_tool(model: Any, name: str, description: str | None, *, strict: bool) -> FunctionTool:
    compiled = _compile(model, name, strict=strict)
    validator = ResultValidator(
        output_schema=model, restore=compiled.restore if compiled.needs_restore else None
    )
    return FunctionTool(name, description, compiled, model, validator)


def _compile(parameters: Any, name: str, *, strict: bool) -> CompiledSchema:
    try:
        return compile_schema(parameters, strict=strict)
    except SchemaError as exc:
        raise SchemaError(
            f"the parameters of tool {name!r}: {exc.reason}", path=exc.path, fix=exc.fix
        ) from None


def _doc(model: Any) -> str | None:
    doc = model.__doc__  # the class's own docstring, not pydantic's (which __doc__ skips)
    return inspect.cleandoc(doc) if isinstance(doc, str) and doc.strip() else None
