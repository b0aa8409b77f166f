"""Validation for streams: whole values, array items by path, and all-optional partial models.

* :func:`value_validator` turns a pydantic model class or a JSON Schema dict into a callable that
  validates one parsed value and raises :class:`~openai_structured.errors.ValidationError` with
  pydantic-style field paths.
* :class:`ItemValidators` finds the type of the array element at a path (``("items", 3)``) by
  walking the model's fields, list/tuple/set/dict item types, nested models, ``Optional`` and
  unions (when only one member fits), or a JSON Schema's ``properties``/``items``/
  ``prefixItems``/``$ref``/``anyOf``. The lookup is cached per path *shape* (indices ignored), so
  an item costs one dict lookup plus its own validation.
* :func:`partial_model` builds, once per model class, a twin whose fields are all optional
  (recursively, constraints dropped, a field whose partial value does not validate yet becomes
  None), for typed views of a value that is still streaming.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any, Literal, Union

import pydantic
import typing_extensions
from pydantic import BaseModel, RootModel, ValidationInfo, ValidatorFunctionWrapHandler

from .._validation import (
    ResultValidator,
    jsonschema_errors,
    jsonschema_validator,
    pydantic_errors,
    type_adapter,
    validation_error,
)
from ..errors import ValidationError
from .json_parser import PathItem

__all__ = [
    "ItemValidators",
    "OutputType",
    "Validator",
    "partial_model",
    "value_validator",
]

#: A type pydantic's ``TypeAdapter`` takes (model, dataclass, TypedDict...) or a JSON Schema dict.
OutputType = Any
Validator = Callable[[Any], Any]


def _dotted(loc: Sequence[Any]) -> str:
    return ".".join(str(p) for p in loc) or "<root>"


def value_validator(output: OutputType) -> Validator:
    """A callable validating one whole parsed value against ``output`` (a type pydantic can
    validate, or a JSON Schema dict); it returns the typed result and raises
    :class:`ValidationError`."""
    if isinstance(output, Mapping):
        return ResultValidator(schema=output).validate_value
    if output is None:
        raise TypeError("expected a type or a JSON Schema dict, not None")
    return ResultValidator(output_schema=output).validate_value


# --- resolving item types by path ------------------------------------------------------------

_NOT_FOUND: Any = object()
_MAX_SHAPES = 1024
_SEQUENCES = (list, set, frozenset, Sequence, typing.Sequence, typing.MutableSequence)
_UNION_TYPES: tuple[Any, ...] = (Union, types.UnionType)


def _strip(tp: Any) -> Any:
    """Drop ``Annotated`` metadata and the ``None`` of an ``Optional``."""
    while True:
        origin = typing.get_origin(tp)
        if origin is Annotated:
            tp = typing.get_args(tp)[0]
            continue
        if origin in _UNION_TYPES:
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            if len(args) == 1:
                tp = args[0]
                continue
        return tp


def _step_type(tp: Any, key: PathItem) -> Any:
    """The type found under ``key`` (field name/alias or index) in a value of type ``tp``."""
    tp = _strip(tp)
    origin = typing.get_origin(tp)
    if origin in _UNION_TYPES:
        found = {
            repr(t): t for a in typing.get_args(tp) if (t := _step_type(a, key)) is not _NOT_FOUND
        }
        return next(iter(found.values())) if len(found) == 1 else _NOT_FOUND
    args = typing.get_args(tp)
    if isinstance(key, int):
        if origin in _SEQUENCES:
            return args[0] if args else Any
        if origin is tuple:
            if len(args) == 2 and args[1] is Ellipsis:
                return args[0]
            return args[key] if 0 <= key < len(args) else _NOT_FOUND
        if tp is Any:
            return Any
        return _NOT_FOUND
    if isinstance(tp, type) and issubclass(tp, RootModel):
        return _step_type(tp.model_fields["root"].annotation, key)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        for name, field in tp.model_fields.items():
            alias = field.validation_alias if isinstance(field.validation_alias, str) else None
            if key in (field.alias, alias) or (key == name and field.alias is None):
                if not field.metadata:
                    return field.annotation
                # keep the field's constraints (they apply to the items' container)
                return Annotated.__class_getitem__((field.annotation, *field.metadata))  # type: ignore[attr-defined]
        return _NOT_FOUND
    if isinstance(tp, type) and (
        dataclasses.is_dataclass(tp) or typing_extensions.is_typeddict(tp)
    ):
        hints = typing.get_type_hints(tp, include_extras=True)
        return hints.get(key, _NOT_FOUND)
    if origin in (dict, Mapping, typing.Mapping):
        return args[1] if len(args) == 2 else Any
    if tp is Any:
        return Any
    return _NOT_FOUND


def _schema_step(root: Mapping[str, Any], schema: Any, key: PathItem) -> Any:
    schema = _deref(root, schema)
    if not isinstance(schema, Mapping):
        return _NOT_FOUND
    for combinator in ("anyOf", "oneOf"):
        options = schema.get(combinator)
        if isinstance(options, list):
            found = [s for o in options if (s := _schema_step(root, o, key)) is not _NOT_FOUND]
            unique = {repr(s): s for s in found}
            return next(iter(unique.values())) if len(unique) == 1 else _NOT_FOUND
    all_of = schema.get("allOf")
    if isinstance(all_of, list) and len(all_of) == 1:
        return _schema_step(root, all_of[0], key)
    if isinstance(key, int):
        prefix = schema.get("prefixItems")
        items = schema.get("items")
        if isinstance(prefix, list):
            if key < len(prefix):
                return prefix[key]
            return items if isinstance(items, Mapping) else _NOT_FOUND
        if isinstance(items, list):  # drafts 4-7 tuple form
            return items[key] if key < len(items) else schema.get("additionalItems", _NOT_FOUND)
        return items if isinstance(items, Mapping) else _NOT_FOUND
    props = schema.get("properties")
    if isinstance(props, Mapping) and key in props:
        return props[key]
    extra = schema.get("additionalProperties")
    return extra if isinstance(extra, Mapping) else _NOT_FOUND


def _deref(root: Mapping[str, Any], schema: Any) -> Any:
    for _ in range(32):  # $ref chains; a cycle gives up
        if not isinstance(schema, Mapping):
            return schema
        ref = schema.get("$ref")
        if not isinstance(ref, str) or not ref.startswith("#"):
            return schema
        target: Any = root
        for part in ref[1:].split("/")[1:] if ref != "#" else []:
            part = part.replace("~1", "/").replace("~0", "~")
            if isinstance(target, Mapping) and part in target:
                target = target[part]
            elif isinstance(target, list) and part.isdigit() and int(part) < len(target):
                target = target[int(part)]
            else:
                return _NOT_FOUND
        schema = target
    return _NOT_FOUND


class ItemValidators:
    """Validators for array items, looked up by path; cached per path shape.

    ``validate(path, value)`` returns ``(item, error)``: the validated item (or the raw value
    when its type cannot be resolved unambiguously) and None, or the raw value and the
    :class:`ValidationError` (field paths prefixed with the item's path).
    """

    __slots__ = ("_cache", "_output", "_root_validator")

    def __init__(self, output: OutputType | None) -> None:
        self._output = output
        self._cache: dict[tuple[Any, ...], Callable[[tuple[PathItem, ...], Any], Any] | None] = {}
        self._root_validator: Any = None
        if isinstance(output, Mapping):
            self._root_validator = jsonschema_validator(output)

    def validate(
        self, path: tuple[PathItem, ...], value: Any
    ) -> tuple[Any, ValidationError | None]:
        # Cache per shape: the path with every index replaced by -1.
        shape = tuple([-1 if type(p) is int else p for p in path])
        check = self._cache.get(shape, _NOT_FOUND)
        if check is _NOT_FOUND:
            check = self._build(path)
            if len(self._cache) < _MAX_SHAPES:  # map keys make shapes: keep the cache bounded
                self._cache[shape] = check
        if check is None:
            return value, None
        try:
            return check(path, value), None
        except ValidationError as exc:
            return value, exc

    def _build(
        self, path: tuple[PathItem, ...]
    ) -> Callable[[tuple[PathItem, ...], Any], Any] | None:
        output = self._output
        if output is None:
            return None
        if isinstance(output, Mapping):
            schema: Any = output
            for key in path:
                # a -1 stands for "any index": resolve with index 0 unless prefixItems differ
                schema = _schema_step(output, schema, key)
                if schema is _NOT_FOUND:
                    return None
            schema = _deref(output, schema)
            if schema is _NOT_FOUND or not isinstance(schema, (Mapping, bool)):
                return None
            sub = self._root_validator.evolve(schema=schema)

            def check_schema(where: tuple[PathItem, ...], value: Any) -> Any:
                errors = jsonschema_errors(sub, value, where)
                if errors:
                    raise validation_error(errors, what=f"Item {_dotted(where)}")
                return value

            return check_schema
        tp: Any = output
        for key in path:
            tp = _step_type(tp, key)
            if tp is _NOT_FOUND:
                return None
        if tp is Any:
            return None
        validate = type_adapter(tp).validate_python

        def check_model(where: tuple[PathItem, ...], value: Any) -> Any:
            try:
                return validate(value)
            except pydantic.ValidationError as exc:
                raise validation_error(
                    pydantic_errors(exc, where), what=f"Item {_dotted(where)}"
                ) from None

        return check_model


# --- partial (all-optional) models -------------------------------------------------------------


def _none_on_error(value: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo) -> Any:
    try:
        return handler(value)
    except pydantic.ValidationError:
        return None


_Lenient = pydantic.WrapValidator(_none_on_error)
_partials: dict[type[BaseModel], type[BaseModel]] = {}
_in_progress: set[type[BaseModel]] = set()


def _partial_type(tp: Any) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is Annotated:
        return _partial_type(args[0])  # constraints do not hold for unfinished values
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return Any if tp in _in_progress else partial_model(tp)
    if origin in _UNION_TYPES:
        return Union[tuple(_partial_type(a) for a in args)]  # noqa: UP007 - built at runtime
    if origin in _SEQUENCES or origin is tuple:
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            return list[Any]
        inner = _partial_type(args[0]) if args else Any
        return list[Annotated[inner | None, _Lenient]]  # type: ignore[valid-type]
    if origin in (dict, Mapping, typing.Mapping):
        value = _partial_type(args[1]) if len(args) == 2 else Any
        return dict[str, Annotated[value | None, _Lenient]]  # type: ignore[valid-type]
    if origin is Literal or tp is Any or isinstance(tp, type):
        return tp
    return Any


def partial_model(model: type[BaseModel]) -> type[BaseModel]:
    """The all-optional twin of ``model`` (cached): every field, at every depth, may be missing
    or None, and a field whose value does not validate yet reads as None."""
    cached = _partials.get(model)
    if cached is not None:
        return cached
    _in_progress.add(model)
    try:
        fields: dict[str, Any] = {}
        for name, field in model.model_fields.items():
            tp = _partial_type(field.annotation)
            fields[name] = (
                Annotated[tp | None, _Lenient],
                pydantic.Field(default=None, alias=field.alias),
            )
        partial = pydantic.create_model(
            f"Partial{model.__name__}",
            __config__=pydantic.ConfigDict(extra="ignore", populate_by_name=True),
            __doc__=f"All-optional view of {model.__name__} while it streams.",
            **fields,
        )
    finally:
        _in_progress.discard(model)
    _partials[model] = partial
    return partial  # type: ignore[no-any-return]
