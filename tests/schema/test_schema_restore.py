"""``CompiledSchema.restore``: nulls that stand for "not given" go, everything else stays."""

from __future__ import annotations

import copy
from typing import Any

from pydantic import BaseModel

from openai_structured.schema import compile_schema


def opt_obj(**props: Any) -> dict[str, Any]:
    """An object whose properties are all optional."""
    return {"type": "object", "properties": props}


def test_restore_through_arrays_of_nested_objects() -> None:
    compiled = compile_schema(
        opt_obj(rows={"type": "array", "items": opt_obj(x={"type": "integer"})})
    )
    value = {"rows": [{"x": None}, {"x": 1}]}
    assert compiled.restore(value) == {"rows": [{}, {"x": 1}]}


def test_restore_through_defs_and_root_recursion() -> None:
    schema = {
        "$defs": {"leaf": opt_obj(v={"type": "string"})},
        **opt_obj(leaf={"$ref": "#/$defs/leaf"}, again={"$ref": "#"}),
    }
    compiled = compile_schema(schema)
    value = {
        "leaf": {"v": None},
        "again": {"leaf": None, "again": {"leaf": {"v": "x"}, "again": None}},
    }
    assert compiled.restore(value) == {"leaf": {}, "again": {"again": {"leaf": {"v": "x"}}}}


def test_restore_picks_the_union_branch_matching_the_value_shape() -> None:
    a = {**opt_obj(kind={"const": "a"}, n={"type": "integer"}), "required": ["kind"]}
    b = {
        **opt_obj(kind={"const": "b"}, s={"type": "string"}, n={"type": ["integer", "null"]}),
        "required": ["kind"],
    }
    compiled = compile_schema(opt_obj(item={"anyOf": [a, b]}))
    assert compiled.restore({"item": {"kind": "a", "n": None}}) == {"item": {"kind": "a"}}
    # in branch b, n was nullable already: its null is a real value and stays
    assert compiled.restore({"item": {"kind": "b", "s": None, "n": None}}) == {
        "item": {"kind": "b", "n": None}
    }


def test_restore_leaves_values_that_match_no_branch_alone() -> None:
    compiled = compile_schema(
        opt_obj(item={"anyOf": [opt_obj(a={"type": "string"}), {"type": "integer"}]})
    )
    odd = {"item": {"zzz": None}}
    assert compiled.restore(odd) == odd
    assert compiled.restore(["not", "an", "object"]) == ["not", "an", "object"]
    assert compiled.restore(None) is None


def test_restore_does_not_modify_its_input() -> None:
    compiled = compile_schema(opt_obj(a={"type": "string"}, b=opt_obj(c={"type": "integer"})))
    value = {"a": None, "b": {"c": None}}
    before = copy.deepcopy(value)
    compiled.restore(value)
    assert value == before


def test_restore_keeps_unknown_keys_and_required_nulls() -> None:
    schema = {**opt_obj(a={"type": ["string", "null"]}, b={"type": "string"}), "required": ["a"]}
    compiled = compile_schema(schema)
    assert compiled.restore({"a": None, "b": None, "extra": None}) == {"a": None, "extra": None}


def test_restore_survives_very_deep_values() -> None:
    compiled = compile_schema(opt_obj(next={"$ref": "#"}, v={"type": "integer"}))
    value: Any = None
    for _ in range(2000):
        value = {"next": value, "v": None}
    compiled.restore(value)  # no RecursionError


class Settings(BaseModel):
    retries: int = 3
    verbose: bool = False
    name: str | None = "default"


def test_model_validate_after_restore_gets_every_default() -> None:
    compiled = compile_schema(Settings)
    restored = compiled.restore({"retries": None, "verbose": None, "name": None})
    assert restored == {"name": None}  # name is nullable: null is a real answer
    assert Settings.model_validate(restored) == Settings(name=None)
    assert compiled.restore({"retries": 1, "verbose": True, "name": "x"}) == {
        "retries": 1,
        "verbose": True,
        "name": "x",
    }
