"""JSON Schema dicts through the strict compiler, and the public API's contract."""

from __future__ import annotations

import json
from typing import Any

import pytest
from schema_checker import assert_openai_strict, pointer_exists

from openai_structured._validation import ResultValidator
from openai_structured.errors import SchemaError, ValidationError
from openai_structured.schema import (
    Change,
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


MAP_ENTRIES = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {"key": {"type": "string"}, "value": {"type": "string"}},
        "required": ["key", "value"],
        "additionalProperties": False,
    },
}


def _without_descriptions(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _without_descriptions(v) for k, v in node.items() if k != "description"}
    if isinstance(node, list):
        return [_without_descriptions(v) for v in node]
    return node


def validate(doc: Any, answer: Any) -> Any:
    """What a call returns for ``answer`` (in the shape sent) under the dict schema ``doc``."""
    compiled = compile_schema(doc)
    validator = ResultValidator(
        schema=doc, restore=compiled.restore if compiled.needs_restore else None
    )
    return validator.validate_value(answer)


def rejected(doc: Any, answer: Any) -> list[dict[str, Any]]:
    with pytest.raises(ValidationError) as info:
        validate(doc, answer)
    return info.value.errors()


def change_at(compiled: CompiledSchema, path: str, words: str) -> Change:
    found = [c for c in compiled.changes if c.path == path and words in c.action]
    assert found, (path, words, [str(c) for c in compiled.changes])
    return found[0]


def test_a_map_is_sent_as_key_value_entries_and_restored_to_an_object() -> None:
    doc = obj(m={"type": "object", "additionalProperties": {"type": "string"}})
    compiled = compile_schema(doc)
    assert _without_descriptions(compiled.schema["properties"]["m"]) == MAP_ENTRIES
    assert not change_at(compiled, "#/properties/m", "{key, value}").lossy
    answer = {"m": [{"key": "a", "value": "x"}, {"key": "b", "value": "y"}]}
    assert compiled.restore(answer) == {"m": {"a": "x", "b": "y"}}
    assert validate(doc, answer) == {"m": {"a": "x", "b": "y"}}
    assert validate(doc, {"m": []}) == {"m": {}}
    twice = {"m": [{"key": "a", "value": "x"}, {"key": "a", "value": "y"}]}
    (error,) = rejected(doc, twice)
    assert (error["loc"], error["type"]) == (("m", "a"), "restore")
    assert "more than once" in error["msg"]


@pytest.mark.parametrize(
    "m",
    [
        {"type": "object", "additionalProperties": True},
        {"type": "object"},
        {"type": "object", "additionalProperties": {}},
    ],
    ids=["map-true", "no-properties", "map-any"],
)
def test_an_object_with_any_keys_is_sent_as_a_json_string(m: dict[str, Any]) -> None:
    doc = obj(m=m)
    compiled = compile_schema(doc)
    sent = compiled.schema["properties"]["m"]
    assert sent["type"] == "string" and "JSON-encoded string" in sent["description"]
    assert not change_at(compiled, "#/properties/m", "JSON-encoded string").lossy
    assert validate(doc, {"m": '{"k": [1, {"z": null}]}'}) == {"m": {"k": [1, {"z": None}]}}
    (error,) = rejected(doc, {"m": "{k: 1"})
    assert (error["loc"], error["type"], error["input"]) == (("m",), "restore", "{k: 1")
    # valid JSON, but not an object: the original schema says no
    assert [e["loc"] for e in rejected(doc, {"m": "[1]"})] == [("m",)]


@pytest.mark.parametrize(
    ("extra", "key"),
    [
        ({"patternProperties": {"^x-": {"type": "string"}}}, {"type": "string", "pattern": "^x-"}),
        ({"unevaluatedProperties": {"type": "string"}}, {"type": "string"}),
        ({"additionalProperties": {"type": "string"}}, {"type": "string"}),
    ],
    ids=["patternProperties", "unevaluated", "additional-schema"],
)
def test_declared_properties_stay_and_the_other_keys_go_under_additional_properties(
    extra: dict[str, Any], key: dict[str, Any]
) -> None:
    doc = obj(m={"type": "object", "properties": {"a": {"type": "string"}}, **extra})
    compiled = compile_schema(doc)
    m = compiled.schema["properties"]["m"]
    assert list(m["properties"]) == ["a", "additional_properties"]
    assert m["required"] == ["a", "additional_properties"]
    assert m["properties"]["a"] == {"anyOf": [{"type": "string"}, {"type": "null"}]}
    entries = m["properties"]["additional_properties"]
    assert entries["items"]["properties"]["key"] == key
    assert not change_at(compiled, "#/properties/m", "additional_properties").lossy
    answer = {"m": {"a": "A", "additional_properties": [{"key": "x-1", "value": "v"}]}}
    assert validate(doc, answer) == {"m": {"a": "A", "x-1": "v"}}
    assert validate(doc, {"m": {"a": None, "additional_properties": []}}) == {"m": {}}
    clash = {"m": {"a": "A", "additional_properties": [{"key": "a", "value": "v"}]}}
    assert [e["loc"] for e in rejected(doc, clash)] == [("m", "a")]


def test_a_name_used_by_a_declared_property_is_not_taken_for_the_other_keys() -> None:
    doc = {
        "type": "object",
        "properties": {"additional_properties": {"type": "integer"}},
        "required": ["additional_properties"],
        "additionalProperties": {"type": "string"},
    }
    compiled = compile_schema(doc)
    assert list(compiled.schema["properties"]) == [
        "additional_properties",
        "_additional_properties",
    ]
    answer = {"additional_properties": 1, "_additional_properties": [{"key": "k", "value": "v"}]}
    assert validate(doc, answer) == {"additional_properties": 1, "k": "v"}


def test_property_names_dropped_when_every_declared_name_passes() -> None:
    schema = {
        "type": "object",
        "properties": {"ab": {"type": "string"}},
        "propertyNames": {"pattern": "^[a-z]+$"},
    }
    compiled = compile_schema(schema)
    assert "propertyNames" not in json.dumps(compiled.schema)
    assert not change_at(compiled, "#", "propertyNames").lossy
    # a name that fails is left out of what is sent and checked after the answer
    bad = {**schema, "propertyNames": {"pattern": "^x"}}
    compiled = compile_schema(bad)
    assert "propertyNames" not in json.dumps(compiled.schema)
    assert change_at(compiled, "#", "propertyNames").lossy
    assert validate(bad, {"ab": None}) == {}
    (error,) = rejected(bad, {"ab": "v"})
    assert error["loc"] == () and "'ab' does not match '^x'" in error["msg"]


def test_required_name_without_schema_is_any_value_sent_as_a_json_string() -> None:
    doc = {"type": "object", "properties": {}, "required": ["ghost"]}
    compiled = compile_schema(doc)
    assert compiled.schema["properties"]["ghost"]["type"] == "string"
    assert compiled.schema["required"] == ["ghost"]
    assert not change_at(compiled, "#/required", "JSON-encoded string").lossy
    assert validate(doc, {"ghost": "[1, 2]"}) == {"ghost": [1, 2]}


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


@pytest.mark.parametrize(
    ("key", "draft"),
    [
        ("dependentSchemas", "https://json-schema.org/draft/2020-12/schema"),
        ("dependencies", "http://json-schema.org/draft-07/schema#"),
    ],
)
def test_dependent_schemas_are_not_sent_and_checked_after_the_answer(key: str, draft: str) -> None:
    schema = {
        "$schema": draft,
        "type": "object",
        "properties": {"a": {"type": "string"}, "b": {"type": "integer"}},
        key: {"a": {"required": ["b"]}},
    }
    compiled = compile_schema(schema)
    assert key not in json.dumps(compiled.schema)
    assert change_at(compiled, "#", key).lossy
    assert validate(schema, {"a": "x", "b": 1}) == {"a": "x", "b": 1}
    assert validate(schema, {"a": None, "b": None}) == {}
    assert [e["type"] for e in rejected(schema, {"a": "x", "b": None})] == ["required"]


def test_draft7_dependencies_without_dollar_schema_are_checked_after_the_answer() -> None:
    schema = {
        "type": "object",
        "properties": {"a": {"type": "string"}, "b": {"type": "integer"}},
        "dependencies": {"a": {"required": ["b"]}},
    }
    assert change_at(compile_schema(schema), "#", "dependencies").lossy
    assert [e["type"] for e in rejected(schema, {"a": "x", "b": None})] == ["required"]


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


@pytest.mark.parametrize(
    "schema",
    [True, {}, {"description": "anything"}],
    ids=["true", "empty", "annotations-only"],
)
def test_any_value_is_sent_as_a_json_encoded_string(schema: Any) -> None:
    doc = obj(a=schema)
    compiled = compile_schema(doc)
    sent = compiled.schema["properties"]["a"]
    assert sent["type"] == "string"
    assert "Any JSON value, written as a JSON-encoded string." in sent["description"]
    if isinstance(schema, dict) and "description" in schema:
        assert sent["description"].startswith("anything")  # the user's words come first
    assert not change_at(compiled, "#/properties/a", "JSON-encoded string").lossy
    for value in [None, 3, "s", [1, "x"], {"k": {"n": None}}]:
        assert validate(doc, {"a": json.dumps(value)}) == {"a": value}
    (error,) = rejected(doc, {"a": "not json"})
    assert (error["loc"], error["type"]) == (("a",), "restore")


def test_draft3_type_any_is_any_value_sent_as_a_json_encoded_string() -> None:
    doc = {"type": "object", "properties": {"a": {"type": "any"}}}  # draft 3: no required list
    compiled = compile_schema(doc)
    sent = compiled.schema["properties"]["a"]
    assert sent["anyOf"] == [{"type": "string"}, {"type": "null"}]  # optional: nullable
    assert "JSON-encoded string" in sent["description"]
    assert validate(doc, {"a": None}) == {}
    assert validate(doc, {"a": '{"x": 1}'}) == {"a": {"x": 1}}


def test_not_and_if_then_else_are_not_sent_and_checked_after_the_answer() -> None:
    negated = obj(a={"type": "string", "not": {"enum": ["x"]}})
    compiled = compile_schema(negated)
    assert compiled.schema["properties"]["a"] == {"type": "string"}
    assert change_at(compiled, "#/properties/a", "`not`").lossy
    assert validate(negated, {"a": "y"}) == {"a": "y"}
    assert [e["type"] for e in rejected(negated, {"a": "x"})] == ["not"]

    conditional = obj(a={"type": "string", "if": {"minLength": 1}, "then": {"pattern": "x"}})
    compiled = compile_schema(conditional)
    assert compiled.schema["properties"]["a"] == {"type": "string"}
    assert change_at(compiled, "#/properties/a", "`if`/`then`").lossy
    assert validate(conditional, {"a": ""}) == {"a": ""}
    assert validate(conditional, {"a": "axb"}) == {"a": "axb"}
    assert [e["type"] for e in rejected(conditional, {"a": "abc"})] == ["pattern"]


def test_type_list_becomes_anyof() -> None:
    schema = to_strict_schema(obj(a={"type": ["string", "integer"], "minimum": 1}))
    assert schema["properties"]["a"] == {
        "anyOf": [{"type": "string"}, {"type": "integer", "minimum": 1}]
    }


def test_enum_of_mixed_types_is_split_and_object_values_sent_as_json_texts() -> None:
    schema = to_strict_schema(obj(a={"enum": ["x", 1, None]}))
    assert schema["properties"]["a"] == {
        "anyOf": [
            {"type": "string", "enum": ["x"]},
            {"type": "integer", "enum": [1]},
            {"type": "null"},
        ]
    }
    doc = obj(a={"enum": [{"k": 1}, [2, "x"], "plain"]})
    compiled = compile_schema(doc)
    sent = compiled.schema["properties"]["a"]
    assert (sent["type"], sent["enum"]) == ("string", ['{"k":1}', '[2,"x"]', '"plain"'])
    assert not change_at(compiled, "#/properties/a", "JSON texts").lossy
    assert validate(doc, {"a": '[2,"x"]'}) == {"a": [2, "x"]}
    assert validate(doc, {"a": '"plain"'}) == {"a": "plain"}
    const = obj(a={"const": {"k": 1}})
    assert compile_schema(const).schema["properties"]["a"]["enum"] == ['{"k":1}']
    assert validate(const, {"a": '{"k":1}'}) == {"a": {"k": 1}}


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


def test_openapi_nullable_accepts_the_null_it_allows() -> None:
    doc = obj(a={"type": "string", "nullable": True})
    assert validate(doc, {"a": "s"}) == {"a": "s"}
    assert validate(doc, {"a": None}) == {"a": None}
    (error,) = rejected(doc, {"a": 3})
    assert error["loc"] == ("a",)


def test_openapi_nullable_enum_accepts_null_and_still_checks_the_values() -> None:
    doc = obj(a={"type": "string", "enum": ["x", "y"], "nullable": True})
    assert validate(doc, {"a": None}) == {"a": None}
    assert validate(doc, {"a": "y"}) == {"a": "y"}
    assert rejected(doc, {"a": "z"})


def test_array_without_items_has_any_value_items_sent_as_json_strings() -> None:
    doc = obj(a={"type": "array"})
    compiled = compile_schema(doc)
    items = compiled.schema["properties"]["a"]["items"]
    assert items["type"] == "string" and "JSON-encoded string" in items["description"]
    assert not change_at(compiled, "#/properties/a/items", "JSON-encoded string").lossy
    assert validate(doc, {"a": ["1", '{"b": 2}', "null"]}) == {"a": [1, {"b": 2}, None]}
    (error,) = rejected(doc, {"a": ["1", "oops"]})
    assert error["loc"] == ("a", 1)


def test_array_with_items_false_is_still_rejected() -> None:
    assert error_of(obj(a={"type": "array", "items": False})).path == "#/properties/a/items"


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


def test_too_many_enum_values_that_are_not_strings() -> None:
    # enums that are not all strings cannot be sent as a plain string: still refused
    assert "1000" in error_of(obj(a={"enum": list(range(1001))})).reason


def test_string_enums_over_the_limits_are_sent_as_strings_and_checked_after() -> None:
    long = [f"{i:03d}" + "x" * 60 for i in range(251)]  # over 15,000 characters
    small = [f"v{i}" for i in range(600)]
    doc = obj(
        a={"type": "string", "enum": long},
        b={"type": "string", "enum": small},
        c={"type": "string", "enum": [f"w{i}" for i in range(600)]},
    )
    compiled = compile_schema(doc)
    sent = compiled.schema["properties"]
    assert "enum" not in sent["a"] and "of 251 values" in sent["a"]["description"]
    # 1,200 values in all: the largest enum goes first, one is enough
    assert ("enum" in sent["b"]) != ("enum" in sent["c"])
    assert {c.path for c in compiled.changes if c.lossy and "enum" in c.action} == {
        "#/properties/a",
        "#/properties/b" if "enum" not in sent["b"] else "#/properties/c",
    }
    validator = ResultValidator(schema=doc, restore=compiled.restore)
    good = {"a": long[7], "b": "v1", "c": "w2"}
    assert validator.validate_value(good) == good
    with pytest.raises(ValidationError) as info:
        validator.validate_value({"a": "not listed", "b": "v1", "c": "nope"})
    assert sorted(e["path"] for e in info.value.errors()) == ["a", "c"]


def test_deeply_nested_input_is_an_error_not_a_recursion_error() -> None:
    node: Any = {"type": "string"}
    for _ in range(3000):
        node = {"type": "array", "items": node}
    report = check_schema(obj(a=node))
    assert not report.ok


# --- API contract ----------------------------------------------------------------------------


REMOTE = {"$ref": "https://example.com/other.json"}


def test_check_schema_collects_every_problem() -> None:
    doc = obj(a=REMOTE, b=False, c={"type": "array", "items": False, "minItems": 1})
    report = check_schema(doc)
    assert not report.ok and report.schema is None
    assert [e.path for e in report.errors] == [
        "#/properties/a",
        "#/properties/b",
        "#/properties/c/items",
    ]
    assert all(pointer_exists(doc, e.path) for e in report.errors)
    assert all(e.fix for e in report.errors)
    assert "3 problem(s)" in str(report)


def test_check_schema_lists_rewrites_as_lossless_or_lossy() -> None:
    doc = obj(
        m={"type": "object", "additionalProperties": {"type": "integer"}},
        n={"type": "string", "not": {"const": "x"}},
    )
    report = check_schema(doc)
    assert report.ok and report.errors == []
    lossless = [c for c in report.changes if not c.lossy]
    lossy = [c for c in report.changes if c.lossy]
    assert any(c.path == "#/properties/m" for c in lossless)
    assert [c.path for c in lossy] == ["#/properties/n"]
    text = report.format()
    assert "lossless" in text and "lossy" in text


def test_to_strict_schema_raises_first_error_mentioning_the_rest() -> None:
    err = error_of(obj(a=REMOTE, b=False))
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
