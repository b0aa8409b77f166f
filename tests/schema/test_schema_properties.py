"""Property tests: random JSON Schemas never crash the compiler, and compiled schemas keep
the original's meaning (what strict mode produces, once restored, the original accepts)."""

from __future__ import annotations

import math
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from schema_checker import assert_openai_strict, pointer_exists

from openai_structured.schema import check_schema

NAMES = st.sampled_from(["a", "b", "c", "id", "x/y", "t~1", "name", "é"])
REFS = ["#", "#/$defs/d0", "#/$defs/d1", "#/definitions/old"]
WILD_REFS = [
    *REFS,
    "#/$defs/missing",
    "https://example.com/s.json",
    "#/properties/a",
    "#anc",
    "#/$defs/d0/properties/a",
]
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.sampled_from(["x", "y", ""]))
TAME_SETTINGS = settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def _annotations() -> dict[str, st.SearchStrategy[Any]]:
    return {
        "description": st.just("d"),
        "title": st.just("T"),
        "default": SCALARS,
        "examples": st.lists(SCALARS, max_size=2),
        "x-vendor": st.just(1),
    }


def _leaf(wild: bool) -> st.SearchStrategy[Any]:
    string = st.fixed_dictionaries(
        {"type": st.just("string")},
        optional={
            "maxLength": st.integers(0, 5),
            "format": st.sampled_from(["date-time", "uuid", "uri", "email"]),
            **({"pattern": st.sampled_from(["^a", "[", "x$"])} if wild else {}),
            **_annotations(),
        },
    )
    number = st.fixed_dictionaries(
        {"type": st.sampled_from(["integer", "number"])},
        optional={
            "minimum": st.integers(-5, 5),
            "maximum": st.integers(-5, 5),
            "exclusiveMaximum": st.integers(-5, 5) | (st.booleans() if wild else st.nothing()),
            "multipleOf": st.sampled_from([2, 3, 0.5]),
            **_annotations(),
        },
    )
    simple = st.fixed_dictionaries(
        {"type": st.sampled_from(["boolean", "null"])}, optional=_annotations()
    )
    enum = st.fixed_dictionaries(
        {"enum": st.lists(SCALARS, min_size=1 if not wild else 0, max_size=4)},
        optional={"type": st.sampled_from(["string", "integer", "null"]), **_annotations()},
    )
    const = st.fixed_dictionaries({"const": SCALARS}, optional=_annotations())
    ref = st.fixed_dictionaries(
        {"$ref": st.sampled_from(WILD_REFS if wild else REFS)},
        optional={"description": st.just("see ref")},
    )
    options = [string, number, simple, enum, const, ref]
    if wild:
        options += [
            st.sampled_from([True, False, {}, {"description": "any"}, {"type": "any"}, [], 3]),
            st.fixed_dictionaries({"type": st.just("string"), "nullable": st.booleans()}),
        ]
    return st.one_of(options)


def _extend(wild: bool) -> Any:
    def extend(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        props = st.dictionaries(NAMES, children, max_size=4)
        closed = st.just(False) if not wild else st.one_of(st.booleans(), children)
        obj = st.fixed_dictionaries(
            {"type": st.just("object"), "properties": props},
            optional={
                **({"required": st.lists(NAMES, max_size=3, unique=True)} if wild else {}),
                "additionalProperties": closed,
                "minProperties": st.integers(0, 2),
                "dependentRequired": st.dictionaries(
                    NAMES, st.lists(NAMES, max_size=2), max_size=1
                ),
                **_annotations(),
                **(
                    {
                        "patternProperties": st.dictionaries(st.just("^x"), children, max_size=1),
                        "propertyNames": st.sampled_from([{"pattern": "^[a-z]"}, {"maxLength": 1}]),
                        "dependentSchemas": st.dictionaries(NAMES, children, max_size=1),
                    }
                    if wild
                    else {}
                ),
            },
        )
        array = st.fixed_dictionaries(
            {"type": st.just("array"), "items": children}
            if not wild
            else {"type": st.just("array")},
            optional={
                **({"items": st.one_of(children, st.lists(children, max_size=2))} if wild else {}),
                "prefixItems": st.lists(children, min_size=1, max_size=2),
                "minItems": st.integers(0, 2),
                "maxItems": st.integers(0, 3) if wild else st.integers(2, 3),
                "uniqueItems": st.booleans(),
                **({"contains": children, "additionalItems": children} if wild else {}),
            },
        )
        combos = st.one_of(
            [
                st.fixed_dictionaries(
                    {key: st.lists(children, min_size=1, max_size=3)},
                    optional={
                        **({"type": st.just("object"), "properties": props} if wild else {}),
                        **_annotations(),
                    },
                )
                for key in ("anyOf", "oneOf", "allOf")
            ]
        )
        if not wild:  # required names drawn from the declared ones
            obj = obj.flatmap(
                lambda o: st.lists(
                    st.sampled_from(sorted(o["properties"]) or ["a"]), unique=True, max_size=3
                ).map(lambda r: {**o, "required": r} if r and o["properties"] else o)
            )
        options = [obj, array, combos]
        if wild:
            options += [
                st.fixed_dictionaries({"not": children}),
                st.fixed_dictionaries(
                    {"if": children, "then": children}, optional={"else": children}
                ),
                st.fixed_dictionaries(
                    {
                        "type": st.lists(
                            st.sampled_from(["string", "object", "null", "integer", "number"]),
                            min_size=1,
                            max_size=3,
                        )
                    },
                    optional={"properties": props},
                ),
                st.fixed_dictionaries(
                    {"$ref": st.sampled_from(WILD_REFS)},
                    optional={"properties": props, "minimum": st.just(1)},
                ),
                st.fixed_dictionaries(
                    {"$dynamicRef": st.just("#meta"), "$recursiveRef": st.just("#")}
                ),
            ]
        return st.one_of(options)

    return extend


def schema_documents(wild: bool) -> st.SearchStrategy[dict[str, Any]]:
    """Random documents: a root object with $defs (d0, d1) and draft-7 definitions (old)."""
    nodes = st.recursive(_leaf(wild), _extend(wild), max_leaves=10)
    root = st.fixed_dictionaries(
        {
            "type": st.just("object") if not wild else st.sampled_from(["object", "array"]),
            "properties": st.dictionaries(NAMES, nodes, min_size=1, max_size=4),
            "$defs": st.fixed_dictionaries({"d0": nodes, "d1": nodes}),
            "definitions": st.fixed_dictionaries({"old": nodes}),
        },
        optional={
            "required": st.lists(NAMES, max_size=3, unique=True),
            "title": st.just("R"),
            "$anchor": st.just("anc") if wild else st.nothing(),
        },
    )
    if wild:
        return st.one_of(root, nodes.filter(lambda n: isinstance(n, dict)))
    return root


@given(schema_documents(wild=True))
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_random_schemas_compile_or_raise_schema_error_at_an_existing_path(doc: Any) -> None:
    report = check_schema(doc)  # any other exception fails the test
    if report.ok:
        assert report.schema is not None
        assert_openai_strict(report.schema)
    else:
        assert report.errors
        for err in report.errors:
            assert pointer_exists(doc, err.path), (err.path, err.reason)
            assert err.fix, err.reason


# --- meaning preservation --------------------------------------------------------------------


class _GiveUp(Exception):
    pass


def _instance(node: dict[str, Any], root: dict[str, Any], data: st.DataObject, depth: int) -> Any:
    """Draw a value valid under a strict schema (the subset the compiler emits)."""
    if depth > 8:
        raise _GiveUp
    if "$ref" in node:
        ref = node["$ref"]
        target = root if ref == "#" else root["$defs"][ref.split("/")[-1]]
        return _instance(target, root, data, depth + 1)
    if "anyOf" in node:
        branches = node["anyOf"]
        if depth > 5:  # steer recursion towards null, the usual way out
            branches = [b for b in branches if b.get("type") == "null"] or branches
        return _instance(data.draw(st.sampled_from(branches)), root, data, depth + 1)
    if "const" in node:
        return node["const"]
    if "enum" in node:
        return data.draw(st.sampled_from(node["enum"]))
    kind = node["type"]
    if kind == "null":
        return None
    if kind == "boolean":
        return data.draw(st.booleans())
    if kind in ("integer", "number"):
        lo, hi = -20.0, 20.0
        if "minimum" in node:
            lo = max(lo, node["minimum"])
        if "exclusiveMinimum" in node:
            lo = max(lo, math.floor(node["exclusiveMinimum"]) + 1)
        if "maximum" in node:
            hi = min(hi, node["maximum"])
        if "exclusiveMaximum" in node:
            hi = min(hi, math.ceil(node["exclusiveMaximum"]) - 1)
        step = node.get("multipleOf", 1)
        low, high = math.ceil(lo / step), math.floor(hi / step)
        if low > high:
            raise _GiveUp
        value = data.draw(st.integers(low, high)) * step
        return int(value) if kind == "integer" or float(value).is_integer() else value
    if kind == "string":
        if "pattern" in node:
            raise _GiveUp
        fixed = {
            "date-time": "2024-01-01T00:00:00Z",
            "uuid": "6f1d0a56-0a4f-4a58-9d0e-1b2c3d4e5f60",
            "email": "a@b.co",
        }
        if node.get("format") in fixed:
            return fixed[node["format"]]
        return data.draw(st.sampled_from(["", "a", "xyz"]))
    if kind == "array":
        low = node.get("minItems", 0)
        high = min(node.get("maxItems", low + 2), low + 2)
        if low > high:
            raise _GiveUp
        n = data.draw(st.integers(low, high))
        return [_instance(node["items"], root, data, depth + 1) for _ in range(n)]
    return {k: _instance(v, root, data, depth + 1) for k, v in node["properties"].items()}


def _one_of_as_any_of(value: Any) -> Any:
    if isinstance(value, dict):
        return {("anyOf" if k == "oneOf" else k): _one_of_as_any_of(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_one_of_as_any_of(v) for v in value]
    return value


@given(schema_documents(wild=False), st.data())
@TAME_SETTINGS
def test_restored_instances_of_the_strict_schema_are_valid_for_the_original(
    doc: dict[str, Any], data: st.DataObject
) -> None:
    report = check_schema(doc)
    if not report.ok or any(c.lossy for c in report.changes):
        return
    strict = report.schema
    assert strict is not None
    from openai_structured.schema import compile_schema

    compiled = compile_schema(doc)
    try:
        value = _instance(strict, strict, data, 0)
    except _GiveUp:
        return
    Draft202012Validator(strict).validate(value)  # the generator itself is right
    restored = compiled.restore(value)
    # oneOf -> anyOf is a documented rewrite: exclusivity is not enforced by strict mode.
    Draft202012Validator(_one_of_as_any_of(doc)).validate(restored)
