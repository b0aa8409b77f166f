"""JSON Schema dicts through the strict compiler, and the public API's contract."""

from __future__ import annotations

import json
from typing import Any

import pytest
from schema_checker import assert_openai_strict, pointer_exists

from openai_structured.errors import SchemaError
from openai_structured.schema import (
    CompiledSchema,
    check_schema,
    compile_schema,
    to_strict_schema,
)


def obj(**props: Any) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": list(props)}


def error_of(schema: Any) -> SchemaError:
    with pytest.raises(SchemaError) as info:
        to_strict_schema(schema)
    return info.value


# --- objects ---------------------------------------------------------------------------------


def test_object_gets_closed_and_all_properties_required() -> None:
    schema = to_strict_schema({"type": "object", "properties": {"a": {"type": "string"}}})
    assert schema["additionalProperties"] is False
    assert schema["required"] == ["a"]
    assert schema["properties"]["a"]["anyOf"] == [{"type": "string"}, {"type": "null"}]


def test_optional_with_type_null_already_is_not_wrapped_again() -> None:
    schema = to_strict_schema({"type": "object", "properties": {"a": {"type": ["string", "null"]}}})
    assert schema["properties"]["a"] == {"anyOf": [{"type": "string"}, {"type": "null"}]}


def test_property_order_is_preserved() -> None:
    props = {name: {"type": "integer"} for name in ["z", "a", "m"]}
    assert list(to_strict_schema(obj(**props))["properties"]) == ["z", "a", "m"]


@pytest.mark.parametrize(
    ("schema", "path"),
    [
        (
            obj(m={"type": "object", "additionalProperties": {"type": "string"}}),
            "#/properties/m/additionalProperties",
        ),
        (
            obj(m={"type": "object", "additionalProperties": True}),
            "#/properties/m/additionalProperties",
        ),
        (obj(m={"type": "object"}), "#/properties/m"),
        (
            obj(
                m={
                    "type": "object",
                    "properties": {"a": {"type": "string"}},
                    "patternProperties": {"^x-": {"type": "string"}},
                }
            ),
            "#/properties/m/patternProperties",
        ),
        (
            obj(
                m={
                    "type": "object",
                    "properties": {"a": {"type": "string"}},
                    "unevaluatedProperties": {"type": "string"},
                }
            ),
            "#/properties/m/unevaluatedProperties",
        ),
    ],
    ids=["map-schema", "map-true", "no-properties", "patternProperties", "unevaluated"],
)
def test_open_objects_are_rejected_with_key_value_fix(schema: dict[str, Any], path: str) -> None:
    err = error_of(schema)
    assert err.path == path
    assert "key" in (err.fix or "")


def test_property_names_dropped_when_every_declared_name_passes() -> None:
    schema = {
        "type": "object",
        "properties": {"ab": {"type": "string"}},
        "propertyNames": {"pattern": "^[a-z]+$"},
    }
    assert "propertyNames" not in json.dumps(to_strict_schema(schema))
    bad = {**schema, "propertyNames": {"pattern": "^x"}}
    assert error_of(bad).path == "#/propertyNames"


def test_required_name_without_schema_is_rejected() -> None:
    err = error_of({"type": "object", "properties": {}, "required": ["ghost"]})
    assert "ghost" in err.reason and err.path == "#/required"


def test_false_property_is_dropped_when_optional_and_an_error_when_required() -> None:
    schema = to_strict_schema(
        {"type": "object", "properties": {"a": {"type": "string"}, "b": False}}
    )
    assert list(schema["properties"]) == ["a"]
    err = error_of({"type": "object", "properties": {"b": False}, "required": ["b"]})
    assert err.path == "#/properties/b"


def test_min_max_properties() -> None:
    fixed = {
        "type": "object",
        "properties": {"a": {"type": "string"}},
        "required": ["a"],
        "minProperties": 1,
    }
    to_strict_schema(fixed)
    assert error_of({**fixed, "minProperties": 2}).path == "#"


def test_dependent_required_becomes_a_hint_when_it_involves_optional_properties() -> None:
    schema = {
        "type": "object",
        "properties": {"card": {"type": "string"}, "cvc": {"type": "string"}},
        "dependentRequired": {"card": ["cvc"]},
    }
    compiled = compile_schema(schema)
    assert "If 'card' is given, also give 'cvc'." in compiled.schema["description"]
    assert any(c.lossy for c in compiled.changes)


def test_dependent_schemas_are_rejected() -> None:
    schema = {
        "type": "object",
        "properties": {"a": {"type": "string"}},
        "dependentSchemas": {"a": {"required": ["b"]}},
    }
    assert error_of(schema).path == "#/dependentSchemas"


# --- references ------------------------------------------------------------------------------


def test_draft7_definitions_move_to_defs_and_refs_are_rewritten() -> None:
    schema = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "definitions": {"item": obj(n={"type": "integer"}), "unused": {"type": "string"}},
        **obj(items={"type": "array", "items": {"$ref": "#/definitions/item"}}),
    }
    out = to_strict_schema(schema)
    assert out["properties"]["items"]["items"] == {"$ref": "#/$defs/item"}
    assert set(out["$defs"]) == {"item"}  # unused definition pruned
    assert "$schema" not in out


def test_root_ref_is_inlined_and_self_refs_point_to_root() -> None:
    schema = {
        "$ref": "#/definitions/Main",
        "definitions": {
            "Main": obj(kids={"type": "array", "items": {"$ref": "#/definitions/Main"}})
        },
    }
    out = to_strict_schema(schema)
    assert out["properties"]["kids"]["items"] == {"$ref": "#"}
    assert "$defs" not in out


def test_ref_to_arbitrary_pointer_and_anchor_and_id() -> None:
    schema = {
        "$id": "https://example.com/root.json",
        "$defs": {
            "a": {"$anchor": "A", "type": "string"},
            "b": {"$id": "b.json", "type": "integer"},
        },
        **obj(
            x={"$ref": "#A"},
            y={"$ref": "b.json"},
            z={"$ref": "#/properties/x"},
            w={"$ref": "https://example.com/root.json#/$defs/a"},
        ),
    }
    out = to_strict_schema(schema)
    defs = out["$defs"]
    assert defs[out["properties"]["y"]["$ref"].split("/")[-1]] == {"type": "integer"}
    assert out["properties"]["x"] == out["properties"]["w"]


def test_remote_ref_is_rejected_with_bundle_fix() -> None:
    err = error_of(obj(a={"$ref": "https://example.com/other.json#/x"}))
    assert err.path == "#/properties/a"
    assert "$defs" in (err.fix or "")


def test_unresolvable_local_ref_is_rejected() -> None:
    assert "does not resolve" in error_of(obj(a={"$ref": "#/$defs/missing"})).reason


def test_ref_with_description_is_inlined_and_ref_with_constraints_is_merged() -> None:
    schema = {
        "$defs": {"s": {"type": "string"}, "o": obj(a={"type": "string"})},
        **obj(
            d={"$ref": "#/$defs/s", "description": "described"},
            m={"$ref": "#/$defs/o", "properties": {"b": {"type": "integer"}}, "required": ["b"]},
        ),
    }
    out = to_strict_schema(schema)
    assert out["properties"]["d"] == {"type": "string", "description": "described"}
    assert out["properties"]["m"]["required"] == ["a", "b"]
    assert "$defs" not in out


def test_ref_cycle_without_content_is_rejected_not_looping() -> None:
    schema = {
        "$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"$ref": "#/$defs/a"}},
        **obj(x={"$ref": "#/$defs/a"}),
    }
    assert "cycle" in error_of(schema).reason


# --- combinators -----------------------------------------------------------------------------


def test_one_of_becomes_any_of() -> None:
    compiled = compile_schema(obj(v={"oneOf": [{"type": "string"}, {"type": "integer"}]}))
    assert compiled.schema["properties"]["v"] == {
        "anyOf": [{"type": "string"}, {"type": "integer"}]
    }
    assert any("oneOf" in str(c) for c in compiled.changes)


def test_all_of_objects_are_merged() -> None:
    schema = obj(v={"allOf": [obj(a={"type": "string"}), obj(b={"type": "integer", "minimum": 0})]})
    v = to_strict_schema(schema)["properties"]["v"]
    assert v["required"] == ["a", "b"] and v["properties"]["b"]["minimum"] == 0


def test_all_of_with_closed_part_extended_by_another_is_rejected() -> None:
    closed = {**obj(a={"type": "string"}), "additionalProperties": False}
    err = error_of(obj(v={"allOf": [closed, obj(b={"type": "string"})]}))
    assert err.path == "#/properties/v" and "closed" in err.reason


def test_all_of_with_conflicting_types_is_rejected() -> None:
    assert (
        "contradict" in error_of(obj(v={"allOf": [{"type": "string"}, {"type": "integer"}]})).reason
    )


def test_anyof_with_object_siblings_is_distributed() -> None:
    schema = obj(
        v={
            "type": "object",
            "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
            "anyOf": [{"required": ["a"]}, {"required": ["b"]}],
        }
    )
    compiled = compile_schema(schema)
    branches = compiled.schema["properties"]["v"]["anyOf"]
    assert len(branches) == 2
    assert branches[0]["properties"]["a"] == {"type": "string"}
    assert branches[1]["properties"]["b"] == {"type": "string"}
    assert compiled.restore({"v": {"a": None, "b": "x"}}) == {"v": {"b": "x"}}


# --- values ----------------------------------------------------------------------------------


@pytest.mark.parametrize("schema", [True, {}, {"description": "anything"}, {"type": "any"}])
def test_any_value_is_rejected_with_type_fix(schema: Any) -> None:
    err = error_of(obj(a=schema))
    assert err.path.startswith("#/properties/a") and "type" in (err.fix or "")


def test_not_and_if_then_else_are_rejected() -> None:
    assert error_of(obj(a={"type": "string", "not": {"enum": ["x"]}})).path == "#/properties/a/not"
    conditional = obj(a={"type": "string", "if": {"minLength": 1}, "then": {"pattern": "x"}})
    assert error_of(conditional).path == "#/properties/a/if"


def test_type_list_becomes_anyof() -> None:
    schema = to_strict_schema(obj(a={"type": ["string", "integer"], "minimum": 1}))
    assert schema["properties"]["a"] == {
        "anyOf": [{"type": "string"}, {"type": "integer", "minimum": 1}]
    }


def test_enum_of_mixed_types_is_split_and_object_values_rejected() -> None:
    schema = to_strict_schema(obj(a={"enum": ["x", 1, None]}))
    assert schema["properties"]["a"] == {
        "anyOf": [
            {"type": "string", "enum": ["x"]},
            {"type": "integer", "enum": [1]},
            {"type": "null"},
        ]
    }
    assert error_of(obj(a={"enum": [{"k": 1}]})).path == "#/properties/a"


def test_anyof_false_branch_is_dropped() -> None:
    out = to_strict_schema(obj(a={"anyOf": [False, {"type": "string"}]}))
    assert out["properties"]["a"] == {"type": "string"}


def test_real_error_in_a_branch_is_kept_after_an_impossible_branch_was_dropped() -> None:
    # Branches no value can match are dropped silently, others must fail. The compiler used to
    # tell them apart by id() of the error, and a dropped error's id was reused by the next
    # one: the object branch of "b" then vanished without a word and "b" became string-only.
    schema = obj(
        a={"anyOf": [{"type": "string", "enum": [1]}, {"type": "integer"}]},
        b={"anyOf": [{"type": "object", "properties": {}, "minProperties": 1}, {"type": "string"}]},
    )
    report = check_schema(schema)
    assert not report.ok
    assert [(e.path, e.reason) for e in report.errors] == [
        (
            "#/properties/b/anyOf/0",
            "minProperties/maxProperties cannot hold: strict mode always produces all 0 properties",
        )
    ]


def test_draft4_boolean_exclusive_maximum() -> None:
    out = to_strict_schema(
        obj(
            a={
                "type": "number",
                "maximum": 5,
                "exclusiveMaximum": True,
                "minimum": 1,
                "exclusiveMinimum": False,
            }
        )
    )
    assert out["properties"]["a"] == {"type": "number", "exclusiveMaximum": 5, "minimum": 1}


def test_openapi_nullable() -> None:
    out = to_strict_schema(obj(a={"type": "string", "nullable": True}))
    assert out["properties"]["a"] == {"anyOf": [{"type": "string"}, {"type": "null"}]}


def test_array_without_items_is_rejected() -> None:
    assert error_of(obj(a={"type": "array"})).path == "#/properties/a"


def test_type_inferred_from_keywords() -> None:
    out = to_strict_schema(obj(a={"properties": {"b": {"pattern": "^x"}}, "required": ["b"]}))
    assert out["properties"]["a"]["properties"]["b"] == {"type": "string", "pattern": "^x"}


# --- limits ----------------------------------------------------------------------------------


def test_too_many_properties() -> None:
    props = {f"p{i}": {"type": "integer"} for i in range(5001)}
    assert "5000" in error_of(obj(**props)).reason


def test_too_deep() -> None:
    node: dict[str, Any] = {"type": "string"}
    for _ in range(11):
        node = obj(x=node)
    assert "nested 11 levels" in error_of(node).reason
    to_strict_schema(node["properties"]["x"])  # 10 levels is fine


def test_too_many_enum_values_and_too_long_enum() -> None:
    assert "1000" in error_of(obj(a={"enum": list(range(1001))})).reason
    long = [f"{i:03d}" + "x" * 60 for i in range(251)]
    assert error_of(obj(a={"type": "string", "enum": long})).path == "#/properties/a"


def test_deeply_nested_input_is_an_error_not_a_recursion_error() -> None:
    node: Any = {"type": "string"}
    for _ in range(3000):
        node = {"type": "array", "items": node}
    report = check_schema(obj(a=node))
    assert not report.ok


# --- API contract ----------------------------------------------------------------------------


def test_check_schema_collects_every_problem() -> None:
    report = check_schema(obj(a={}, b={"type": "array"}, c={"type": "object"}))
    assert [e.path for e in report.errors] == ["#/properties/a", "#/properties/b", "#/properties/c"]
    assert all(pointer_exists(obj(a={}, b={}, c={}), e.path) for e in report.errors)
    assert "3 problem(s)" in str(report)


def test_to_strict_schema_raises_first_error_mentioning_the_rest() -> None:
    err = error_of(obj(a={}, b={"type": "array"}))
    assert err.path == "#/properties/a" and "1 more problem" in err.reason


def test_ok_report_lists_rewrites() -> None:
    report = check_schema({"type": "object", "properties": {"a": {"type": "string"}}})
    assert report.ok and report.schema is not None
    assert "optional property made required and nullable" in report.format()


def test_compilation_is_cached_and_returned_schemas_are_copies() -> None:
    schema = obj(a={"type": "string"})
    first = compile_schema(schema)
    assert compile_schema(json.loads(json.dumps(schema))) is first
    out = first.schema
    out["properties"]["a"]["type"] = "integer"
    assert first.schema["properties"]["a"]["type"] == "string"
    assert to_strict_schema(schema)["properties"]["a"]["type"] == "string"
    schema["properties"]["a"]["type"] = "boolean"  # the caller's dict is not aliased either
    assert first.schema["properties"]["a"]["type"] == "string"


def test_non_strict_mode_sends_the_plain_schema() -> None:
    schema = {
        "type": "object",
        "properties": {"m": {"type": "object", "additionalProperties": {"type": "integer"}}},
    }
    compiled = compile_schema(schema, strict=False)
    assert isinstance(compiled, CompiledSchema) and not compiled.strict
    assert compiled.schema == schema and compiled.changes == ()
    value = {"m": None}
    assert compiled.restore(value) is value


def test_name_from_title_sanitised_or_output() -> None:
    assert compile_schema({**obj(a={"type": "string"}), "title": "My schema!"}).name == "My_schema_"
    assert compile_schema(obj(a={"type": "string"})).name == "output"
    assert len(compile_schema({**obj(a={"type": "string"}), "title": "x" * 99}).name) == 64


@pytest.mark.parametrize("bad", [5, "{}", None, [1]])
def test_non_schema_inputs_raise_type_error(bad: Any) -> None:
    with pytest.raises(TypeError, match="pydantic model class"):
        compile_schema(bad)


def test_non_json_values_raise_schema_error() -> None:
    with pytest.raises(SchemaError, match="not a JSON document"):
        compile_schema({"type": "object", "properties": {"a": {"enum": [float("nan")]}}})


def test_boolean_root_is_rejected() -> None:
    assert error_of(True).path == "#"


def test_a_definition_that_only_refers_to_itself_is_a_schema_error() -> None:
    # Found by hypothesis: a description beside a self-reference used to hide the cycle.
    doc = {
        "type": "object",
        "properties": {"a": {"type": "array", "items": {"$ref": "#/$defs/d1"}}},
        "$defs": {"d1": {"$ref": "#/$defs/d1", "description": "see ref"}},
    }
    with pytest.raises(SchemaError, match=r"\$ref cycle") as info:
        compile_schema(doc)
    assert info.value.path == "#/properties/a/items"


@pytest.mark.parametrize(
    "doc",
    [
        # Found by hypothesis: the description beside the reference was kept next to the
        # reference its target reduces to.
        {
            "type": "object",
            "properties": {
                "a": {"type": "array", "items": {"$ref": "#/definitions/old", "description": "x"}}
            },
            "definitions": {"old": {"anyOf": [{"$ref": "#"}], "description": "d"}},
        },
        {
            "type": "object",
            "properties": {"a": {"$ref": "#/$defs/d0", "description": "x"}},
            "$defs": {"d0": {"anyOf": [{"$ref": "#"}], "description": "d"}},
        },
    ],
)
def test_a_description_beside_a_reference_to_a_reference_is_dropped(doc: dict[str, Any]) -> None:
    compiled = compile_schema(doc)
    assert_openai_strict(compiled.schema)
    assert any("its target is itself a $ref" in str(c) for c in compiled.changes)
