"""Turning the model's JSON text (or an already parsed value) into the caller's typed result.

One validator per call, shared by the non-streaming decoder and the stream decoder. Errors point
at the exact field (``items.3.price``), pydantic style, and keep the raw content.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from functools import lru_cache
from typing import Any

import jiter
import jsonschema
import pydantic
import referencing
import referencing.exceptions

from ._outcome import invalid_json_error
from .errors import SchemaError, ValidationError
from .schema import RestoreError
from .schema._checks import invalid_keywords, validator_class
from .schema._regex import regex_aware

__all__ = [
    "ResultValidator",
    "is_model_class",
    "jsonschema_errors",
    "jsonschema_validator",
    "pydantic_errors",
    "validation_error",
]

_MAX_INPUT_REPR = 80


def _path(loc: Iterable[Any]) -> str:
    return ".".join(str(part) for part in loc) or "<root>"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _MAX_INPUT_REPR else text[: _MAX_INPUT_REPR - 3] + "..."


def is_model_class(tp: Any) -> bool:
    """True for a pydantic ``BaseModel`` subclass (the fast, cached paths take these)."""
    return isinstance(tp, type) and issubclass(tp, pydantic.BaseModel)


@lru_cache(maxsize=256)
def _cached_adapter(tp: Any) -> pydantic.TypeAdapter[Any]:
    return pydantic.TypeAdapter(tp)


def type_adapter(tp: Any) -> pydantic.TypeAdapter[Any]:
    """A ``TypeAdapter`` for ``tp``, cached when ``tp`` is hashable."""
    try:
        return _cached_adapter(tp)
    except TypeError:  # an unhashable annotation
        return pydantic.TypeAdapter(tp)


def validation_error(
    errors: list[dict[str, Any]],
    *,
    what: str = "The model's answer",
    response_id: str | None = None,
    content: str | None = None,
) -> ValidationError:
    """A :class:`ValidationError` listing each failing field (``loc``/``path``/``msg``/...)."""
    count = len(errors)
    lines = [f"{what} does not match the schema ({count} error{'s' * (count != 1)}):"]
    lines += [f"  {e['path']}: {e['msg']} (got {_short(e.get('input'))})" for e in errors]
    lines.append(
        "Make the schema's field descriptions clearer, or catch ValidationError and read "
        ".content for the raw answer."
    )
    return ValidationError(
        "\n".join(lines), errors=errors, response_id=response_id, content=content
    )


def pydantic_errors(
    exc: pydantic.ValidationError, prefix: tuple[Any, ...] = ()
) -> list[dict[str, Any]]:
    """A pydantic error's entries, pydantic style, with ``prefix`` before every location."""
    out: list[dict[str, Any]] = []
    for e in exc.errors(include_url=False):
        loc = (*prefix, *e["loc"])
        out.append(
            {
                "loc": loc,
                "path": _path(loc),
                "msg": e["msg"],
                "type": e["type"],
                "input": e.get("input"),
            }
        )
    return out


def _refuse_retrieval(uri: str) -> referencing.Resource[Any]:
    """No ``$ref`` is ever fetched or read: not over the network, not from a file."""
    raise referencing.exceptions.NoSuchResource(ref=uri)  # type: ignore[call-arg]


#: The registry every validator resolves ``$ref`` with: the schema's own resources only.
_NO_RETRIEVAL: referencing.Registry[Any] = referencing.Registry(retrieve=_refuse_retrieval)  # type: ignore[call-arg]


@lru_cache(maxsize=256)
def _cached_validator(schema_json: str) -> jsonschema.protocols.Validator:
    schema = json.loads(schema_json)
    invalid = invalid_keywords(schema)  # the compiler's own check, for direct users too
    if invalid:
        raise invalid[0]
    cls = regex_aware(validator_class(schema))  # the draft the compiler read it as
    _allow_openapi_null(schema)
    validator: jsonschema.protocols.Validator = cls(schema, registry=_NO_RETRIEVAL)
    return validator


def _allow_openapi_null(schema: Any) -> None:
    """OpenAPI's ``nullable: true`` (which ``jsonschema`` ignores) as the null it allows, in
    place: the compiler sends it as a null alternative, so the check must accept that null."""
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
            continue
        if not isinstance(node, dict):
            continue
        if node.get("nullable") is True:
            kind = node.get("type")
            if isinstance(kind, str) and kind != "null":
                node["type"] = [kind, "null"]
            elif isinstance(kind, list) and "null" not in kind:
                node["type"] = [*kind, "null"]
            if isinstance(node.get("enum"), list) and None not in node["enum"]:
                node["enum"] = [*node["enum"], None]
        stack.extend(node.values())


def jsonschema_validator(schema: Mapping[str, Any]) -> jsonschema.protocols.Validator:
    """A cached ``jsonschema`` validator for ``schema`` (the draft is read from ``$schema``).

    It resolves ``$ref`` only inside ``schema``: retrieval of anything else is refused."""
    return _cached_validator(json.dumps(schema, sort_keys=True))


def jsonschema_errors(
    validator: jsonschema.protocols.Validator, value: Any, prefix: tuple[Any, ...] = ()
) -> list[dict[str, Any]]:
    """Every ``jsonschema`` error for ``value`` as pydantic-style dicts, sorted by path."""
    errors: list[dict[str, Any]] = []
    try:
        found = list(validator.iter_errors(value))
    except referencing.exceptions.Unresolvable as exc:
        raise SchemaError(
            f"the schema refers to {getattr(exc, 'ref', exc)!r}, which is not inside it "
            "(references are never fetched)",
            fix="inline the referenced schema under $defs and refer to it as #/$defs/...",
        ) from None
    except (RecursionError, jsonschema.exceptions.UnknownType) as exc:
        # A schema that refers to itself without end, or names a type jsonschema lacks: the
        # answer cannot be checked against it.
        raise SchemaError(
            f"the answer cannot be checked against this schema: {type(exc).__name__}: "
            f"{str(exc)[:200]}",
            fix="remove the self-reference that does not go into the value (e.g. "
            '{"not": {"$ref": "#"}}), or give every type a standard name',
        ) from None
    for error in found:
        loc = (*prefix, *error.absolute_path)
        errors.append(
            {
                "loc": loc,
                "path": _path(loc),
                "msg": error.message,
                "type": str(error.validator),
                "input": error.instance,
            }
        )
    errors.sort(key=lambda e: [str(part) for part in e["loc"]])
    return errors


class ResultValidator:
    """Validates one answer against the caller's type or JSON Schema dict.

    The type is anything pydantic's ``TypeAdapter`` takes (a ``BaseModel`` subclass, a
    dataclass, a ``TypedDict``, ``list[Model]``, a ``RootModel``...). ``restore`` undoes the
    compiler's strict-mode rewrites (it drops the nulls that stand for omitted optional fields)
    so that field defaults apply. When it is None the fast path ``validate_json`` parses and
    validates in one pass.
    """

    __slots__ = ("_json_validator", "_restore", "_validate_json", "_validate_python", "schema")

    def __init__(
        self,
        *,
        output_schema: Any = None,
        schema: Mapping[str, Any] | None = None,
        validate_schema: bool = True,
        restore: Callable[[Any], Any] | None = None,
    ) -> None:
        if (output_schema is None) == (schema is None):
            raise TypeError("give exactly one of output_schema= or schema=")
        self._validate_json: Callable[[str], Any] | None = None
        self._validate_python: Callable[[Any], Any] | None = None
        if is_model_class(output_schema):
            self._validate_json = output_schema.model_validate_json
            self._validate_python = output_schema.model_validate
        elif output_schema is not None:
            adapter = type_adapter(output_schema)
            self._validate_json = adapter.validate_json
            self._validate_python = adapter.validate_python
        self.schema = schema
        self._restore = restore
        self._json_validator = (
            jsonschema_validator(schema) if schema is not None and validate_schema else None
        )

    def validate_json(self, content: str, *, response_id: str | None = None) -> Any:
        """Parse and validate the model's whole answer."""
        if self._validate_json is not None and self._restore is None:
            try:
                return self._validate_json(content)
            except pydantic.ValidationError as exc:
                if any(e["type"] == "json_invalid" for e in exc.errors()):
                    raise invalid_json_error(content, response_id=response_id) from None
                raise self._from_pydantic(exc, response_id, content) from None
        try:
            value = jiter.from_json(content.encode())
        except ValueError:
            raise invalid_json_error(content, response_id=response_id) from None
        return self.validate_value(value, response_id=response_id, content=content)

    def validate_value(
        self, value: Any, *, response_id: str | None = None, content: str | None = None
    ) -> Any:
        """Validate an already parsed value (streams parse incrementally)."""
        if self._restore is not None:
            try:
                value = self._restore(value)
            except RestoreError as exc:
                loc = exc.path
                error = {
                    "loc": loc,
                    "path": _path(loc),
                    "msg": exc.message,
                    "type": "restore",
                    "input": exc.value,
                }
                raise validation_error([error], response_id=response_id, content=content) from None
        if self._validate_python is not None:
            try:
                return self._validate_python(value)
            except pydantic.ValidationError as exc:
                raise self._from_pydantic(exc, response_id, content) from None
        if self._json_validator is not None:
            errors = jsonschema_errors(self._json_validator, value)
            if errors:
                raise validation_error(errors, response_id=response_id, content=content)
        return value

    @staticmethod
    def _from_pydantic(
        exc: pydantic.ValidationError, response_id: str | None, content: str | None
    ) -> ValidationError:
        return validation_error(pydantic_errors(exc), response_id=response_id, content=content)
