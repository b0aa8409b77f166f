"""Types other than BaseModel subclasses, through pydantic's TypeAdapter (SPEC §4, issue 9).

Dataclasses, TypedDicts and RootModels of a model have an object root and compile like models;
lists, scalars, maps and unions at the root are wrapped in an object with one property,
``value``, and unwrapped by ``restore()`` (issue 12), while ``strict=False`` passes their plain
schema through.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any, Optional

import pydantic
import pytest
from pydantic import BaseModel, RootModel, TypeAdapter
from typing_extensions import NotRequired, TypedDict

from openai_structured.schema import CompiledSchema, check_schema, compile_schema


class Item(BaseModel):
    name: str
    qty: int = 1


ITEM_STRICT: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "title": "Name"},
        "qty": {
            "title": "Qty",
            "description": "Default: 1.",
            "anyOf": [{"type": "integer"}, {"type": "null"}],
        },
    },
    "required": ["name", "qty"],
    "additionalProperties": False,
}


@pydantic.dataclasses.dataclass
class Point:
    x: int
    label: str = "origin"


@dataclasses.dataclass
class Basket:
    owner: str
    items: list[Item] = dataclasses.field(default_factory=list)


class Movie(TypedDict):
    title: str
    year: NotRequired[int]


class Wrapped(RootModel[Item]):
    pass


class Numbers(RootModel[list[int]]):
    pass


class Cat(BaseModel):
    meow: str


class Dog(BaseModel):
    bark: str


# --- object roots compile like models --------------------------------------------------------


def test_pydantic_dataclass_compiles_like_a_model() -> None:
    compiled = compile_schema(Point)
    assert compiled.name == "Point"
    assert compiled.schema == {
        "type": "object",
        "properties": {
            "x": {"type": "integer", "title": "X"},
            "label": {
                "title": "Label",
                "description": 'Default: "origin".',
                "anyOf": [{"type": "string"}, {"type": "null"}],
            },
        },
        "required": ["x", "label"],
        "additionalProperties": False,
        "title": "Point",
    }
    restored = compiled.restore({"x": 3, "label": None})
    assert restored == {"x": 3}
    assert TypeAdapter(Point).validate_python(restored) == Point(x=3, label="origin")


def test_stdlib_dataclass_with_a_nested_model_compiles() -> None:
    compiled = compile_schema(Basket)
    assert compiled.name == "Basket"
    assert compiled.schema == {
        "type": "object",
        "properties": {
            "owner": {"type": "string", "title": "Owner"},
            "items": {
                "title": "Items",
                "anyOf": [
                    {"type": "array", "items": {"$ref": "#/$defs/Item"}},
                    {"type": "null"},
                ],
            },
        },
        "required": ["owner", "items"],
        "additionalProperties": False,
        "title": "Basket",
        "$defs": {"Item": {**ITEM_STRICT, "title": "Item"}},
    }
    restored = compiled.restore({"owner": "ann", "items": [{"name": "pen", "qty": None}]})
    assert restored == {"owner": "ann", "items": [{"name": "pen"}]}
    basket = TypeAdapter(Basket).validate_python(restored)
    assert basket == Basket(owner="ann", items=[Item(name="pen", qty=1)])
    restored = compiled.restore({"owner": "bo", "items": None})
    assert restored == {"owner": "bo"}
    assert TypeAdapter(Basket).validate_python(restored) == Basket(owner="bo", items=[])


def test_typeddict_not_required_key_becomes_nullable_and_is_dropped_again() -> None:
    compiled = compile_schema(Movie)
    assert compiled.name == "Movie"
    assert compiled.schema == {
        "type": "object",
        "properties": {
            "title": {"type": "string", "title": "Title"},
            "year": {"title": "Year", "anyOf": [{"type": "integer"}, {"type": "null"}]},
        },
        "required": ["title", "year"],
        "additionalProperties": False,
        "title": "Movie",
    }
    restored = compiled.restore({"title": "Heat", "year": None})
    assert restored == {"title": "Heat"}
    assert TypeAdapter(Movie).validate_python(restored) == {"title": "Heat"}


def test_root_model_of_a_model_compiles_to_that_model() -> None:
    compiled = compile_schema(Wrapped)
    assert compiled.name == "Wrapped"
    assert compiled.schema == {**ITEM_STRICT, "title": "Wrapped"}
    restored = compiled.restore({"name": "pen", "qty": None})
    assert Wrapped.model_validate(restored).root == Item(name="pen", qty=1)


def _wrapper(value: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"value": value},
        "required": ["value"],
        "additionalProperties": False,
        **extra,
    }


def _wrapped(compiled: CompiledSchema) -> bool:
    return any(c.path == "#" and "wrapped" in c.action and not c.lossy for c in compiled.changes)


def test_optional_model_at_the_root_is_wrapped_and_keeps_its_null() -> None:
    compiled = compile_schema(Item | None)
    assert compiled.name == "Item_or_None"
    assert compiled.schema == _wrapper(
        {"anyOf": [{"$ref": "#/$defs/Item"}, {"type": "null"}]},
        **{"$defs": {"Item": {**ITEM_STRICT, "title": "Item"}}},
    )
    assert _wrapped(compiled)
    assert compile_schema(Optional[Item]).schema == compiled.schema  # noqa: UP045
    assert compiled.restore({"value": None}) is None
    restored = compiled.restore({"value": {"name": "pen", "qty": None}})
    assert restored == {"name": "pen"}
    assert TypeAdapter(Item | None).validate_python(restored) == Item(name="pen")


# --- non-object roots: wrapped in an object, unwrapped by restore() --------------------------


@pytest.mark.parametrize(
    ("root", "value", "answer", "expected"),
    [
        (
            list[Item],
            {"type": "array", "items": {"$ref": "#/$defs/Item"}},
            [{"name": "pen", "qty": None}, {"name": "ink", "qty": 2}],
            [Item(name="pen"), Item(name="ink", qty=2)],
        ),
        (
            Numbers,
            {"type": "array", "items": {"type": "integer"}, "title": "Numbers"},
            [3, 1],
            Numbers([3, 1]),
        ),
        (
            RootModel[list[int]],
            {"type": "array", "items": {"type": "integer"}, "title": "RootModel[list[int]]"},
            [],
            RootModel[list[int]]([]),
        ),
        (int, {"type": "integer"}, 7, 7),
        (str, {"type": "string"}, "s", "s"),
    ],
    ids=["list-of-models", "root-model-subclass", "root-model", "int", "str"],
)
def test_non_object_root_is_wrapped_in_a_value_property_and_unwrapped_on_restore(
    root: Any, value: dict[str, Any], answer: Any, expected: Any
) -> None:
    compiled = compile_schema(root)
    schema = compiled.schema
    defs = schema.pop("$defs", None)
    assert schema == _wrapper(value, **({"title": value["title"]} if "title" in value else {}))
    if defs is not None:
        assert defs == {"Item": {**ITEM_STRICT, "title": "Item"}}
    assert _wrapped(compiled)
    result = TypeAdapter(root).validate_python(compiled.restore({"value": answer}))
    assert result == expected and type(result) is type(expected)


def test_union_root_is_wrapped_and_restored_through_the_branch_that_matches() -> None:
    compiled = compile_schema(Cat | Dog)
    assert compiled.schema["properties"]["value"] == {
        "anyOf": [{"$ref": "#/$defs/Cat"}, {"$ref": "#/$defs/Dog"}]
    }
    assert _wrapped(compiled)
    dog = TypeAdapter(Cat | Dog).validate_python(compiled.restore({"value": {"bark": "woof"}}))
    assert dog == Dog(bark="woof")


def test_check_schema_reports_a_list_root_under_its_type_name() -> None:
    report = check_schema(list[Item])
    assert (report.ok, report.name, report.errors) == (True, "list_Item", [])
    assert report.schema is not None and report.schema["required"] == ["value"]
    assert any("wrapped" in str(c) for c in report.changes)


def test_a_dict_schema_with_an_array_root_is_wrapped_too() -> None:
    compiled = compile_schema({"type": "array", "items": {"type": "integer"}})
    assert compiled.schema == _wrapper({"type": "array", "items": {"type": "integer"}})
    assert compiled.restore({"value": [1, 2]}) == [1, 2]


def test_a_non_object_root_that_refers_to_itself_is_wrapped_with_the_root_as_a_definition() -> None:
    compiled = compile_schema({"type": "array", "items": {"$ref": "#"}})
    schema = compiled.schema
    value = schema["properties"]["value"]
    assert schema["required"] == ["value"]
    assert "$ref" in value  # the old root moved into $defs, and "#" still means the wrapper
    target = schema["$defs"][value["$ref"].split("/")[-1]]
    assert target == {"type": "array", "items": {"$ref": value["$ref"]}}
    assert _wrapped(compiled)
    assert compiled.restore({"value": [[], [[]]]}) == [[], [[]]]


# --- strict=False: the plain schema, any root ------------------------------------------------


@pytest.mark.parametrize(
    ("tp", "name"),
    [(list[Item], "list_Item"), (Numbers, "Numbers"), (Point, "Point"), (Movie, "Movie")],
    ids=["list-of-models", "root-model-list", "dataclass", "typeddict"],
)
def test_non_strict_passes_the_typeadapter_schema_through(tp: Any, name: str) -> None:
    compiled = compile_schema(tp, strict=False)
    assert (compiled.name, compiled.strict, compiled.changes) == (name, False, ())
    assert compiled.schema == TypeAdapter(tp).json_schema()
    assert compiled.needs_restore is False  # nothing was rewritten, so nothing to undo


# --- names and caching -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tp", "name"),
    [
        (list[Item], "list_Item"),
        (dict[str, Item], "dict_str_Item"),
        (tuple[int, ...], "tuple_int"),
        (Annotated[list[Item], "doc"], "list_Item"),
        (Cat | Dog | None, "Cat_or_Dog_or_None"),
        (RootModel[list[int]], "RootModel_list_int__"),
    ],
)
def test_schema_name_is_built_from_the_type(tp: Any, name: str) -> None:
    assert compile_schema(tp, strict=False).name == name


def test_schema_name_is_cut_to_openai_limit_of_64_characters() -> None:
    class Model_Whose_Name_Is_Long_Enough_To_Push_The_Schema_Name_Past_64(BaseModel):
        a: int

    name = compile_schema(
        list[Model_Whose_Name_Is_Long_Enough_To_Push_The_Schema_Name_Past_64], strict=False
    ).name
    assert name == "list_Model_Whose_Name_Is_Long_Enough_To_Push_The_Schema_Name_Pas"
    assert len(name) == 64


def test_equal_aliases_share_one_compilation() -> None:
    # ``list[Item]`` builds a new alias object each time; equal ones hit the same cache entry.
    assert compile_schema(list[Item], strict=False) is compile_schema(list[Item], strict=False)
    assert compile_schema(Point) is compile_schema(Point)


def test_unions_in_a_different_order_are_not_mixed_up_by_the_cache() -> None:
    # ``int | str == str | int``, but the schemas list their branches in the written order.
    first = compile_schema(int | str, strict=False).schema
    second = compile_schema(str | int, strict=False).schema
    assert first == {"anyOf": [{"type": "integer"}, {"type": "string"}]}
    assert second == {"anyOf": [{"type": "string"}, {"type": "integer"}]}


def test_unhashable_annotation_compiles_without_the_cache() -> None:
    unhashable = Annotated[Item, {"note": ["not", "hashable"]}]
    with pytest.raises(TypeError):
        hash(unhashable)
    first, second = compile_schema(unhashable), compile_schema(unhashable)
    assert first.schema == second.schema == {**ITEM_STRICT, "title": "Item"}
    assert first.name == "Item"
