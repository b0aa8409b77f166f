"""The strict-mode schema compiler (SPEC §4).

``compile_schema`` turns a pydantic model (or any type pydantic's ``TypeAdapter`` accepts) or a
JSON Schema dict (drafts 4, 6, 7, 2019-09, 2020-12; OpenAPI's ``nullable``) into what OpenAI's
Structured Outputs strict mode accepts, or raises :class:`SchemaError` naming the JSON pointer
of the culprit and a fix. ``check_schema`` reports every problem at once (``ostruct schema
check``). Which keywords strict mode supports, and its size limits, are listed with their
source in ``_keywords.py``.

The passes, one module each: ``_refs`` (where each ``$ref`` points; ``$defs`` names),
``_allof`` (``allOf`` parts merged into one schema), ``_compiler`` (pass 1: the strict form of
every node), ``_finalize`` (pass 2: nullable optionals, inlining, limits) and ``_restore``
(undoing the optional-to-nullable rewrite on an answer).

What happens to each construct. "error" = ``SchemaError``. "lossless" = rewritten, and
``CompiledSchema.restore`` turns the answer back into the declared shape. "lossy" = left out of
what is sent (at most a hint in ``description``) and checked after the answer against the
*original* schema (pydantic for types, ``jsonschema`` for dicts): a violation is a
``ValidationError``, re-asked with ``max_validation_retries``. Every rewrite is a ``Change`` in
``CompiledSchema.changes``.

================================================  ===========================================
input                                             result
================================================  ===========================================
object                                            ``additionalProperties: false``; every
                                                  property ``required``
optional property (not in ``required``)           required and nullable; ``restore()`` drops
                                                  the null again so defaults apply
``additionalProperties: true`` / ``extra="allow"``  with declared properties: closed (every
                                                  strict output is valid for the original)
map: ``additionalProperties: <schema>``,          lossless: a list of ``{key, value}`` entries
``dict[str, X]``, ``patternProperties``           (the key's ``pattern`` kept), restored to a
                                                  dict; a key twice is a ``ValidationError``;
                                                  declared properties stay properties and the
                                                  rest go under ``additional_properties``
any value: ``true``, ``{}``, annotations only,    lossless: a string holding the JSON value,
``type: "any"``, ``Any``, untyped ``items``,      parsed by ``restore()`` (not JSON: a
an object without properties, a ``required``      ``ValidationError`` at that path)
name without a schema
heterogeneous tuple (``prefixItems`` /            lossless: an object with properties "0",
``items: [...]``, ``tuple[int, str]``)            "1", ..., restored to a list; identical
                                                  positions: a list with ``min/maxItems``
root that is not one object (array, scalar,       lossless: wrapped in an object with one
union, ``list[Model]``, a map)                    property, ``value``; ``restore()`` unwraps
``enum`` / ``const`` with object or array values  lossless: the enum of their JSON texts
``not``, ``if``/``then``/``else``,                lossy (checked after the answer)
``dependentSchemas``, ``contains``,
``propertyNames`` the declared names fail
``propertyNames`` every declared name passes      dropped
property schema ``false``                         optional: property dropped; required: error
``min/maxProperties``                             dropped when always true; hint when they
                                                  depend on optional properties or a map;
                                                  impossible for the declared properties: error
``dependentRequired`` / ``dependencies`` (list)   dropped when always true, else hint
``oneOf``                                         ``anyOf`` (exclusivity is not enforced)
``discriminator``                                 dropped
``allOf``                                         merged into one schema (``$ref``s inlined,
                                                  keywords intersected); conflicting or
                                                  closed-vs-extended parts: error; a
                                                  recursion through it: a ``$ref`` to the
                                                  recursive part, the rest lossy
keywords beside ``anyOf``/``oneOf``               distributed into each branch
``anyOf`` branch ``false``                        dropped
local ``$ref``                                    kept; targets go to ``$defs`` (from
                                                  ``definitions``, any pointer, ``$id``,
                                                  ``$anchor``); unused definitions pruned
``$ref`` + description/title/default              the reference is inlined (keywords beside
                                                  ``$ref`` are rejected); inside its own
                                                  recursion the annotation is dropped
``$ref`` + other keywords                         treated as ``allOf`` and merged
remote ``$ref`` (another document)                error; ``bundle(schema, documents)``
                                                  embeds the documents you have
root ``$ref``                                     the target becomes the root
``type`` list                                     ``anyOf`` of one branch per type
no ``type``                                       inferred from the keywords present
``enum`` / ``const`` (scalars)                    kept, typed; mixed types split into
                                                  ``anyOf``
``items: false``                                  error (only an empty array)
``uniqueItems``, ``minLength``, ``maxLength``,    lossy (hint, checked after the answer)
unsupported ``format``, ``content*``, a
``pattern`` only ECMAScript reads (``\\p{L}``)
draft 4 ``exclusiveMaximum: true``                numeric ``exclusiveMaximum``
``default``, ``examples``, ``deprecated``         into the description
``$schema``, ``$id``, ``$comment``, ``readOnly``,  dropped
unknown keywords (``x-...``)
objects nested over 10 levels                     lossy: the reference crossing the limit
                                                  is a JSON-encoded string
string enums over 1000 values in all (or 15,000   lossy: plain strings, largest enums first
characters in one of over 250 values)
more than 5000 properties, other enums over       error
1000 values, 120,000 name/enum characters
================================================  ===========================================
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import types
import typing
import weakref
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any

from ..errors import SchemaError
from ._bundle import bundle
from ._checks import invalid_keywords, outside_references
from ._compiler import Change, Compiler
from ._finalize import Finalizer, root_node
from ._keywords import Schema, copy_json
from ._restore import NodeRestore, RestoreError, Restorer

__all__ = [
    "Change",
    "CompiledSchema",
    "RestoreError",
    "SchemaReport",
    "bundle",
    "check_schema",
    "compile_schema",
    "to_strict_schema",
]

_NAME_RE = re.compile(r"[^a-zA-Z0-9_-]")


@dataclass(frozen=True, eq=False)
class CompiledSchema:
    """A schema ready for ``response_format``; ``schema``/``original`` return fresh copies."""

    name: str
    strict: bool
    changes: tuple[Change, ...]
    _schema: Schema = field(repr=False)
    _original: Schema = field(repr=False)
    _table: Mapping[str, NodeRestore] = field(repr=False, default_factory=dict)
    _restorer: Restorer | None = field(repr=False, init=False, default=None)

    def __post_init__(self) -> None:
        if self.strict and self._table:
            object.__setattr__(self, "_restorer", Restorer(self._schema, self._table))

    @property
    def schema(self) -> Schema:
        """The schema to send (a copy: the compiled one is cached and shared)."""
        copied: Schema = copy_json(self._schema)
        return copied

    @property
    def original(self) -> Schema:
        """The input as a JSON Schema dict (pydantic's ``model_json_schema()`` for models)."""
        copied: Schema = copy_json(self._original)
        return copied

    @property
    def needs_restore(self) -> bool:
        """False when :meth:`restore` is the identity (validators may then skip it)."""
        return self._restorer is not None

    def declared_item(
        self, path: tuple[str | int, ...], raw: Any, root: Any
    ) -> tuple[tuple[str | int, ...], Any] | None:
        """A streamed array element in the declared shape (see ``Restorer.declared_item``)."""
        if self._restorer is None:
            return path, raw
        return self._restorer.declared_item(path, raw, root)

    def restore_partial(self, value: Any) -> Any:
        """A value still streaming, in the declared shape (nothing raises)."""
        return value if self._restorer is None else self._restorer.restore(value, lenient=True)

    def restore_at(self, path: tuple[str | int, ...], value: Any) -> Any:
        """:meth:`restore` for a part of the answer found at ``path`` (a stream's array item)."""
        return value if self._restorer is None else self._restorer.restore_at(path, value)

    def restore(self, value: Any) -> Any:
        """The answer in the declared shape: the nulls that stand for "not given" dropped (so
        the original's defaults apply), maps, tuples, "any" values and a wrapped root turned
        back (see ``_restore``).

        ``value`` is what the model produced under ``schema``; the result is a new value (the
        input is not modified) to validate against the original model or schema. Raises
        ``RestoreError`` (a ``ValueError`` with the path) for an answer with no value in the
        declared shape, such as a map key given twice.
        """
        return value if self._restorer is None else self._restorer.restore(value)


@dataclass(frozen=True)
class SchemaReport:
    """What ``ostruct schema check`` prints: every problem and every rewrite."""

    name: str
    ok: bool
    errors: list[SchemaError]
    changes: list[Change]
    schema: Schema | None = None

    def format(self) -> str:
        lines: list[str] = []
        if self.ok:
            lines.append(
                f"OK: schema {self.name!r} can be used in strict mode "
                f"({len(self.changes)} rewrite(s))"
            )
        else:
            lines.append(
                f"FAILED: schema {self.name!r} cannot be used in strict mode "
                f"({len(self.errors)} problem(s))"
            )
            for err in self.errors:
                lines.append(f"  error  {err.path}: {err.reason}")
                if err.fix:
                    lines.append(f"         fix: {err.fix}")
        if self.changes:
            lossy = sum(c.lossy for c in self.changes)
            lines.append(
                f"rewrites ({len(self.changes) - lossy} lossless: restored after the answer; "
                f"{lossy} lossy: checked against the original schema after the answer):"
            )
            lines.extend(
                f"  {'lossy   ' if c.lossy else 'lossless'}  {c.path}: {c.action}"
                for c in self.changes
            )
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.format()


@dataclass(frozen=True)
class _Outcome:
    compiled: CompiledSchema | None
    errors: tuple[SchemaError, ...]
    changes: tuple[Change, ...]
    name: str


# --- inputs ----------------------------------------------------------------------------------


def _schema_name(raw: Any) -> str:
    name = _NAME_RE.sub("_", raw)[:64] if isinstance(raw, str) else ""
    return name if name.strip("_") else "output"


def _type_name(tp: Any) -> str | None:
    """A readable name for a type: ``Item``, ``list_Item``, ``Item_or_None``; None if it has none.

    ``list[Item].__name__`` is just ``"list"`` (aliases forward attributes to their origin), so
    parameterised types are named from their origin and arguments instead.
    """
    if tp is None or tp is type(None):
        return "None"
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is Annotated:
        return _type_name(args[0])
    if origin is typing.Union or origin is types.UnionType:
        names = [_type_name(a) for a in args]
        return "_or_".join(n for n in names if n) or None
    if origin is not None:
        parts = [_type_name(origin), *(_type_name(a) for a in args if a is not ...)]
        return "_".join(n for n in parts if n) or None
    name = getattr(tp, "__name__", None)
    return name if isinstance(name, str) else None


def _is_class(tp: Any) -> bool:
    """A real class (on Python 3.10 ``isinstance(list[int], type)`` is True)."""
    return isinstance(tp, type) and typing.get_origin(tp) is None


def _to_document(x: Any) -> tuple[Any, str]:
    """The JSON Schema of ``x`` and a default name; TypeError when ``x`` is not a schema."""
    from pydantic import BaseModel, TypeAdapter
    from pydantic.errors import PydanticUserError

    try:
        if isinstance(x, Mapping):
            return x, _schema_name(x.get("title"))
        if isinstance(x, bool):
            return x, "output"
        if _is_class(x) and issubclass(x, BaseModel):
            return x.model_json_schema(), _schema_name(x.__name__)
        if isinstance(x, TypeAdapter):
            return x.json_schema(), "output"
    except PydanticUserError as exc:
        raise SchemaError(
            f"pydantic cannot produce a JSON schema: {exc}",
            fix="use field types that have a JSON form",
        ) from exc
    if isinstance(x, (str, bytes, int, float, list, tuple)) or x is None:
        raise TypeError(
            "expected a pydantic model class, a type pydantic can validate, or a JSON Schema "
            f"dict; got {type(x).__name__} (parse JSON text with json.loads first)"
        )
    try:
        adapter: TypeAdapter[Any] = TypeAdapter(x)
    except Exception as exc:
        raise TypeError(
            "expected a pydantic model class, a type pydantic can validate, or a JSON Schema "
            f"dict; got {x!r}"
        ) from exc
    try:
        return adapter.json_schema(), _schema_name(_type_name(x))
    except PydanticUserError as exc:
        raise SchemaError(
            f"pydantic cannot produce a JSON schema: {exc}",
            fix="use field types that have a JSON form",
        ) from exc


def _dump(doc: Any) -> str:
    """Canonical JSON text (key order kept: property order is the output order)."""
    try:
        return json.dumps(doc, allow_nan=False, separators=(",", ":"), ensure_ascii=False)
    except RecursionError:
        raise SchemaError("the schema is nested too deeply to process", fix="flatten it") from None
    except (TypeError, ValueError) as exc:
        raise SchemaError(
            f"the schema is not a JSON document: {exc}",
            fix="use only JSON values (dicts with string keys, lists, strings, "
            "finite numbers, booleans, null)",
        ) from None


# --- compilation -----------------------------------------------------------------------------


def _compile_document(doc: Any, name: str, strict: bool) -> _Outcome:
    """Compile one JSON document (already a plain JSON tree)."""
    invalid = invalid_keywords(doc)
    if invalid:
        return _Outcome(None, tuple(invalid), (), name)
    if not strict:
        outside = outside_references(doc)
        if outside:
            return _Outcome(None, tuple(outside), (), name)
        original = doc if isinstance(doc, dict) else {}
        compiled = CompiledSchema(
            name=name, strict=False, changes=(), _schema=original, _original=original
        )
        return _Outcome(compiled, (), (), name)
    comp = Compiler(doc)
    result = None
    try:
        root = comp.run()
        aliases: set[str] = set()
        start = root_node(comp, root, aliases) if not isinstance(doc, bool) else None
        if isinstance(doc, bool):
            comp.errors.insert(
                0,
                SchemaError(
                    "the root must be an object; this schema is a boolean",
                    path="#",
                    fix="give it a type",
                ),
            )
        if start is not None and not comp.errors:
            result = Finalizer(comp).run(start, aliases)
    except RecursionError:
        comp.error("#", "the schema is nested too deeply to process", "flatten it")
    changes = tuple(dict.fromkeys(comp.changes))
    # Remote references inside the keywords that are not sent are refused too.
    reported = {e.path for e in comp.errors}
    comp.errors += [e for e in outside_references(doc) if e.path not in reported]
    if comp.errors or result is None:
        errors = tuple(comp.errors) or (SchemaError("the schema could not be compiled"),)
        return _Outcome(None, errors, changes, name)
    schema, table = result
    compiled = CompiledSchema(
        name=name,
        strict=True,
        changes=changes,
        _schema=schema,
        _original=doc,
        _table=table,
    )
    return _Outcome(compiled, (), changes, name)


_lock = threading.Lock()
# Classes, weakly (a model defined in a function must be able to go away).
_by_type: weakref.WeakKeyDictionary[Any, dict[bool, _Outcome]] = weakref.WeakKeyDictionary()
# Hashable inputs that are not classes: ``list[Item]``, ``Item | None``, ``Annotated[...]``,
# TypeAdapters. Keyed with their repr too: ``int | str == str | int``, but the schemas differ
# in branch order.
_by_annotation: OrderedDict[tuple[Any, str, bool], _Outcome] = OrderedDict()
# Every input, by its JSON text.
_by_key: OrderedDict[Any, _Outcome] = OrderedDict()
_CACHE_SIZE = 512


def _cached(x: Any, strict: bool) -> _Outcome | None:
    if isinstance(x, Mapping):
        return None
    try:
        with _lock:
            if _is_class(x):
                return _by_type.get(x, {}).get(strict)
            key = (x, repr(x), strict)
            hit = _by_annotation.get(key)
            if hit is not None:
                _by_annotation.move_to_end(key)
            return hit
    except TypeError:  # unhashable, e.g. Annotated[X, {"a": 1}]: compiled every time
        return None


def _remember(x: Any, strict: bool, outcome: _Outcome) -> None:
    if isinstance(x, Mapping):
        return
    with _lock, contextlib.suppress(TypeError):  # unhashable, or a class without weakrefs
        if _is_class(x):
            _by_type.setdefault(x, {})[strict] = outcome
        else:
            _by_annotation[(x, repr(x), strict)] = outcome
            if len(_by_annotation) > _CACHE_SIZE:
                _by_annotation.popitem(last=False)


def _outcome(x: Any, strict: bool) -> _Outcome:
    """Compile ``x`` once per (schema, strict); later calls return the cached outcome."""
    hit = _cached(x, strict)
    if hit is not None:
        return hit
    doc, name = _to_document(x)
    text = _dump(doc)
    key = (strict, name, text)
    with _lock:
        hit = _by_key.get(key)
        if hit is not None:
            _by_key.move_to_end(key)
    if hit is None:
        hit = _compile_document(json.loads(text), name, strict)
        with _lock:
            _by_key[key] = hit
            if len(_by_key) > _CACHE_SIZE:
                _by_key.popitem(last=False)
    _remember(x, strict, hit)
    return hit


def _raise_for(outcome: _Outcome) -> None:
    if outcome.errors:
        first = outcome.errors[0]
        if len(outcome.errors) == 1:
            raise first
        more = len(outcome.errors) - 1
        raise SchemaError(
            f"{first.reason} (and {more} more problem(s); `ostruct schema check` lists them all)",
            path=first.path,
            fix=first.fix,
        )


# --- public API ------------------------------------------------------------------------------


def compile_schema(x: Any, *, strict: bool = True) -> CompiledSchema:
    """Compile a pydantic model, a pydantic-validatable type or a JSON Schema dict.

    Besides ``BaseModel`` subclasses and dicts, ``x`` may be anything pydantic's
    ``TypeAdapter`` takes (pydantic and stdlib dataclasses, ``TypedDict``, ``RootModel``,
    ``list[Item]``, ...); its schema is ``TypeAdapter(x).json_schema()`` and its name the type's
    (``list_Item`` for ``list[Item]``). A root that is not one object (a list, a scalar, a
    union) is wrapped in an object with one property and unwrapped by ``restore``; maps, tuples
    and "any" values are rewritten too (the table above), so the answer comes back in the
    declared shape.

    ``strict=False`` is for servers without strict mode: the plain JSON schema, no rewrites, and
    any root, arrays and scalars included. Those servers (vLLM, llama.cpp, Ollama) constrain
    the output by plain JSON Schema, which allows any root; OpenAI itself wants an object root,
    and it is always sent strict. Raises ``SchemaError`` (strict mode cannot express it) or
    ``TypeError`` (not a schema).
    """
    outcome = _outcome(x, strict)
    _raise_for(outcome)
    assert outcome.compiled is not None
    return outcome.compiled


def to_strict_schema(model_class_or_schema_dict: Any) -> dict[str, Any]:
    """The strict-mode JSON schema for a pydantic model or JSON Schema dict (a fresh copy)."""
    return compile_schema(model_class_or_schema_dict).schema


def check_schema(x: Any) -> SchemaReport:
    """Every problem and rewrite for ``x`` in strict mode, without raising for schema problems."""
    try:
        outcome = _outcome(x, True)
    except SchemaError as exc:
        return SchemaReport(name="output", ok=False, errors=[exc], changes=[])
    return SchemaReport(
        name=outcome.name,
        ok=not outcome.errors,
        errors=list(outcome.errors),
        changes=list(outcome.changes),
        schema=outcome.compiled.schema if outcome.compiled else None,
    )
