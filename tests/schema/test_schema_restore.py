"""``CompiledSchema.restore``: nulls that stand for "not given" go, everything else stays."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import BaseModel

from openai_structured.schema import compile_schema
from openai_structured.schema._restore import Restorer


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


def test_restore_is_exact_for_values_far_deeper_than_the_python_stack() -> None:
    # 2000 levels of {"next": ..., "v": null}: a recursive walk would need ~4000 frames.
    # (``==`` on such values would itself hit the recursion limit, hence the loop below.)
    compiled = compile_schema(opt_obj(next={"$ref": "#"}, v={"type": "integer"}))
    value: Any = None
    for _ in range(2000):
        value = {"next": value, "v": None}
    node = compiled.restore(value)
    for _ in range(1999):
        assert list(node) == ["next"]
        node = node["next"]
    assert node == {}  # the innermost link: both nulls stood for "not given"
    assert value["v"] is None  # the input is untouched


class Link(BaseModel):
    label: str = "x"
    next: Link | None = None


def _chain(depth: int) -> Any:
    """An answer of ``depth`` links as the model writes it: every ``label`` null."""
    value: Any = None
    for _ in range(depth):
        value = {"label": None, "next": value}
    return value


def _restored_chain(depth: int) -> Any:
    """What restore must give for ``_chain(depth)``: the labels gone, the real nulls kept."""
    value: Any = None
    for _ in range(depth):
        value = {"next": value}
    return value


def test_restore_of_a_model_nested_500_deep_is_exact() -> None:
    # The old walk counted depth again from 0 at every union and gave up after 256 steps
    # (about 128 links), leaving the nulls in place: pydantic then failed on label=None.
    compiled = compile_schema(Link)
    restored = compiled.restore(_chain(500))
    assert restored == _restored_chain(500)
    node, depth = restored, 0
    while node is not None:
        assert set(node) == {"next"}
        node, depth = node["next"], depth + 1
    assert depth == 500


def test_restored_deep_model_validates_with_every_default() -> None:
    # 200 links: well past where the old walk stopped restoring (~128), and under
    # pydantic-core's own recursion limit (about 255 nested models; deeper data is refused
    # with recursion_depth_exceeded whatever restore does), so the model can check the result.
    compiled = compile_schema(Link)
    model = Link.model_validate(compiled.restore(_chain(200)))
    labels = []
    node: Link | None = model
    while node is not None:
        labels.append(node.label)
        node = node.next
    assert labels == ["x"] * 200


def test_restore_work_grows_linearly_with_depth(monkeypatch: pytest.MonkeyPatch) -> None:
    # Each (value, schema node) pair is matched once per call; the old walk matched the whole
    # remaining chain again at every level (quadratic: ~60 ms for 120 links).
    calls = 0
    shallow = Restorer._shallow

    def counting(self: Restorer, value: Any, node: Any) -> Any:
        nonlocal calls
        calls += 1
        return shallow(self, value, node)

    monkeypatch.setattr(Restorer, "_shallow", counting)
    compiled = compile_schema(Link)
    work = {}
    for depth in (150, 300, 600):
        calls = 0
        assert compiled.restore(_chain(depth)) == _restored_chain(depth)
        work[depth] = calls
    assert work[600] <= 2.1 * work[300] <= 4.41 * work[150]
    assert work[600] <= 3 * 600


def test_restore_through_a_union_that_lists_itself_picks_its_real_branch() -> None:
    # A = anyOf[A, object]: the old walk recursed into A forever (RecursionError).
    schema = {
        "type": "object",
        "properties": {"x": {"$ref": "#/$defs/A"}},
        "$defs": {"A": {"anyOf": [{"$ref": "#/$defs/A"}, opt_obj(v={"type": "integer"})]}},
    }
    compiled = compile_schema(schema)
    assert compiled.restore({"x": {"v": None}}) == {"x": {}}
    assert compiled.restore({"x": {"v": 2}}) == {"x": {"v": 2}}
    assert compiled.restore({"x": None}) == {}
    assert compiled.restore_at(("x",), {"v": None}) == {}


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
