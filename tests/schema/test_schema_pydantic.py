"""Pydantic models through the strict compiler (every result is also checked by conftest)."""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import pytest
from pydantic import AnyUrl, BaseModel, ConfigDict, Field, RootModel, TypeAdapter, WithJsonSchema
from typing_extensions import TypedDict

from openai_structured._validation import ResultValidator
from openai_structured.errors import SchemaError, ValidationError
from openai_structured.schema import (
    CompiledSchema,
    check_schema,
    compile_schema,
    to_strict_schema,
)


def _prop(schema: dict[str, Any], name: str) -> dict[str, Any]:
    return schema["properties"][name]


def _accepts_null(node: dict[str, Any]) -> bool:
    return any(b.get("type") == "null" for b in node.get("anyOf", []))


def _lossless(compiled: CompiledSchema, path: str, words: str) -> None:
    found = [c for c in compiled.changes if c.path == path and words in c.action]
    assert found, (path, words, [str(c) for c in compiled.changes])
    assert not any(c.lossy for c in found)


def _result(tp: Any, answer: Any) -> Any:
    """What a call returns for ``answer`` (in the shape sent) with ``output_schema=tp``."""
    compiled = compile_schema(tp)
    validator = ResultValidator(
        output_schema=tp, restore=compiled.restore if compiled.needs_restore else None
    )
    return validator.validate_value(answer)


ENTRY_INT = {
    "type": "object",
    "properties": {"key": {"type": "string"}, "value": {"type": "integer"}},
    "required": ["key", "value"],
    "additionalProperties": False,
}


class WithDefaults(BaseModel):
    name: str
    count: int = 5
    tags: list[str] = Field(default_factory=list)
    note: str | None = None


def test_optional_field_becomes_required_and_nullable() -> None:
    schema = to_strict_schema(WithDefaults)
    assert schema["required"] == ["name", "count", "tags", "note"]
    assert _accepts_null(_prop(schema, "count"))
    assert _accepts_null(_prop(schema, "tags"))
    assert _prop(schema, "name") == {"type": "string", "title": "Name"}


def test_default_is_moved_into_description_not_sent() -> None:
    count = _prop(to_strict_schema(WithDefaults), "count")
    assert "default" not in count
    assert "Default: 5." in count["description"]


def test_restore_drops_null_for_defaulted_fields_so_pydantic_applies_the_default() -> None:
    compiled = compile_schema(WithDefaults)
    produced = {"name": "a", "count": None, "tags": None, "note": None}
    restored = compiled.restore(produced)
    assert restored == {"name": "a", "note": None}
    model = WithDefaults.model_validate(restored)
    assert (model.count, model.tags, model.note) == (5, [], None)
    assert produced["count"] is None  # input untouched


def test_restore_keeps_given_values() -> None:
    compiled = compile_schema(WithDefaults)
    value = {"name": "a", "count": 2, "tags": ["x"], "note": "n"}
    assert compiled.restore(value) == value


def test_already_nullable_optional_field_keeps_its_null() -> None:
    compiled = compile_schema(WithDefaults)
    note = _prop(compiled.schema, "note")
    assert note["anyOf"] == [{"type": "string"}, {"type": "null"}]
    assert compiled.restore({"name": "a", "count": 1, "tags": [], "note": None})["note"] is None


class Scores(BaseModel):
    scores: dict[str, int]


def test_dict_field_is_sent_as_key_value_entries_and_comes_back_a_dict() -> None:
    compiled = compile_schema(Scores)
    scores = _prop(compiled.schema, "scores")
    assert scores["type"] == "array" and scores["items"] == ENTRY_INT
    _lossless(compiled, "#/properties/scores", "{key, value}")
    answer = {"scores": [{"key": "ann", "value": 3}, {"key": "bo", "value": 5}]}
    assert compiled.restore(answer) == {"scores": {"ann": 3, "bo": 5}}
    model = _result(Scores, answer)
    assert isinstance(model, Scores) and model.scores == {"ann": 3, "bo": 5}
    with pytest.raises(ValidationError) as info:
        _result(Scores, {"scores": [{"key": "ann", "value": 3}, {"key": "ann", "value": 4}]})
    assert [e["loc"] for e in info.value.errors()] == [("scores", "ann")]


class Cat(BaseModel):
    kind: Literal["cat"]
    lives: int = 9


class Dog(BaseModel):
    kind: Literal["dog"]
    good: bool = True


class Pets(BaseModel):
    pets: list[Annotated[Cat | Dog, Field(discriminator="kind")]]


def test_discriminated_union_becomes_anyof_without_discriminator() -> None:
    compiled = compile_schema(Pets)
    items = compiled.schema["properties"]["pets"]["items"]
    assert [b["$ref"] for b in items["anyOf"]] == ["#/$defs/Cat", "#/$defs/Dog"]
    assert "discriminator" not in str(compiled.schema)
    assert any("oneOf rewritten as anyOf" in str(c) for c in compiled.changes)


def test_discriminated_union_restore_follows_the_matching_branch() -> None:
    compiled = compile_schema(Pets)
    produced = {"pets": [{"kind": "cat", "lives": None}, {"kind": "dog", "good": None}]}
    model = Pets.model_validate(compiled.restore(produced))
    assert isinstance(model.pets[0], Cat) and model.pets[0].lives == 9
    assert isinstance(model.pets[1], Dog) and model.pets[1].good is True


class Tree(BaseModel):
    value: int
    label: str = "leaf"
    children: list[Tree] = Field(default_factory=list)


def test_recursive_model_refers_to_the_root() -> None:
    schema = to_strict_schema(Tree)
    children = _prop(schema, "children")
    assert children["anyOf"][0] == {"type": "array", "items": {"$ref": "#"}}
    assert "$defs" not in schema  # the root definition is not sent twice


def test_recursive_model_restore_applies_defaults_at_every_depth() -> None:
    compiled = compile_schema(Tree)
    leaf = {"value": 3, "label": None, "children": None}
    produced = {
        "value": 1,
        "label": None,
        "children": [{"value": 2, "label": "x", "children": [leaf]}],
    }
    tree = Tree.model_validate(compiled.restore(produced))
    assert tree.label == "leaf"
    assert tree.children[0].children[0].label == "leaf"
    assert tree.children[0].children[0].children == []


class Address(BaseModel):
    street: str
    zip: str | None = None


class Person(BaseModel):
    name: str
    home: Address = Field(description="Where they live")
    work: Address | None = None
    past: list[Address] = []


def test_nested_model_with_description_is_inlined_because_ref_allows_no_siblings() -> None:
    schema = to_strict_schema(Person)
    home = _prop(schema, "home")
    assert home["type"] == "object" and home["description"] == "Where they live"
    assert home["additionalProperties"] is False
    assert _prop(schema, "work")["anyOf"][0] == {"$ref": "#/$defs/Address"}


def test_nested_model_restore() -> None:
    compiled = compile_schema(Person)
    produced = {"name": "n", "home": {"street": "s", "zip": None}, "work": None, "past": None}
    person = Person.model_validate(compiled.restore(produced))
    assert person.work is None and person.past == [] and person.home.zip is None


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Paint(BaseModel):
    color: Color
    finish: Literal["matte", "gloss"] = "matte"
    level: Literal[1, 2, 3]
    flag: Literal["on"]


def test_enums_and_literals_keep_their_values() -> None:
    schema = to_strict_schema(Paint)
    assert schema["$defs"]["Color"]["enum"] == ["red", "green"]
    assert schema["$defs"]["Color"]["type"] == "string"
    assert _prop(schema, "finish")["anyOf"][0]["enum"] == ["matte", "gloss"]
    assert _prop(schema, "level")["enum"] == [1, 2, 3]
    assert _prop(schema, "level")["type"] == "integer"
    assert _prop(schema, "flag")["const"] == "on"


def test_homogeneous_tuple_becomes_list_with_fixed_length() -> None:
    class Point(BaseModel):
        xy: tuple[float, float]

    xy = _prop(to_strict_schema(Point), "xy")
    assert xy == {
        "type": "array",
        "items": {"type": "number"},
        "minItems": 2,
        "maxItems": 2,
        "title": "Xy",
    }


def test_heterogeneous_tuple_is_sent_as_an_object_by_position_and_comes_back_a_tuple() -> None:
    class Pair(BaseModel):
        pair: tuple[int, str]

    compiled = compile_schema(Pair)
    pair = _prop(compiled.schema, "pair")
    assert pair["type"] == "object"
    assert pair["properties"] == {"0": {"type": "integer"}, "1": {"type": "string"}}
    assert pair["required"] == ["0", "1"] and pair["additionalProperties"] is False
    _lossless(compiled, "#/properties/pair", "tuple")
    assert compiled.restore({"pair": {"0": 7, "1": "x"}}) == {"pair": [7, "x"]}
    assert _result(Pair, {"pair": {"0": 7, "1": "x"}}).pair == (7, "x")


class Constrained(BaseModel):
    code: str = Field(min_length=2, max_length=5, pattern=r"^[A-Z]+$")
    age: int = Field(ge=0, lt=150)
    ratio: float = Field(multiple_of=0.5)
    items: list[int] = Field(min_length=1, max_length=3)
    unique: set[int]


def test_supported_constraints_are_kept_and_others_become_hints() -> None:
    compiled = compile_schema(Constrained)
    schema = compiled.schema
    code = _prop(schema, "code")
    assert code["pattern"] == "^[A-Z]+$"
    assert "minLength" not in code and "At least 2 characters." in code["description"]
    assert "At most 5 characters." in code["description"]
    assert _prop(schema, "age")["minimum"] == 0
    assert _prop(schema, "age")["exclusiveMaximum"] == 150
    assert _prop(schema, "ratio")["multipleOf"] == 0.5
    assert (_prop(schema, "items")["minItems"], _prop(schema, "items")["maxItems"]) == (1, 3)
    assert "Items must be unique." in _prop(schema, "unique")["description"]
    assert any(c.lossy for c in compiled.changes)


def test_examples_are_moved_into_description() -> None:
    class Ex(BaseModel):
        city: str = Field(examples=["Paris", "Oslo"], description="A city")

    city = _prop(to_strict_schema(Ex), "city")
    assert "examples" not in city
    assert city["description"] == 'A city Examples: "Paris", "Oslo".'


class Formats(BaseModel):
    when: dt.datetime
    day: dt.date
    span: dt.timedelta
    ident: uuid.UUID
    site: AnyUrl
    blob: bytes


def test_supported_formats_are_kept_and_unsupported_ones_described() -> None:
    schema = to_strict_schema(Formats)
    assert _prop(schema, "when")["format"] == "date-time"
    assert _prop(schema, "day")["format"] == "date"
    assert _prop(schema, "span")["format"] == "duration"
    assert _prop(schema, "ident")["format"] == "uuid"
    site = _prop(schema, "site")
    assert "format" not in site and "Format: uri." in site["description"]
    assert "Format: binary." in _prop(schema, "blob")["description"]


def test_datetime_and_uuid_values_validate_after_restore() -> None:
    compiled = compile_schema(Formats)
    ident = uuid.uuid4()
    value = {
        "when": "2024-01-02T03:04:05Z",
        "day": "2024-01-02",
        "span": "PT1H",
        "ident": str(ident),
        "site": "https://x.org/",
        "blob": "YQ==",
    }
    restored = compiled.restore(value)
    assert restored == value  # every field is required: nothing to drop
    model = Formats.model_validate(restored)
    assert model.when == dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
    assert model.day == dt.date(2024, 1, 2)
    assert model.span == dt.timedelta(hours=1)
    assert model.ident == ident
    assert str(model.site) == "https://x.org/"
    assert model.blob == b"YQ=="  # pydantic's bytes are UTF-8 text, not base64, by default


def test_extra_allow_with_fields_is_closed_and_reported() -> None:
    class Loose(BaseModel):
        model_config = ConfigDict(extra="allow")
        a: int

    compiled = compile_schema(Loose)
    assert compiled.schema["additionalProperties"] is False
    assert any("additionalProperties: true replaced by false" in str(c) for c in compiled.changes)


def test_extra_allow_without_fields_is_any_object_sent_as_a_json_string() -> None:
    class Bag(BaseModel):
        model_config = ConfigDict(extra="allow")

    compiled = compile_schema(Bag)
    value = _prop(compiled.schema, "value")  # not an object any more: the root is wrapped
    assert value["type"] == "string" and "JSON-encoded string" in value["description"]
    _lossless(compiled, "#", "JSON-encoded string")
    _lossless(compiled, "#", "wrapped")
    bag = _result(Bag, {"value": '{"colour": "red", "n": 2}'})
    assert isinstance(bag, Bag) and bag.model_extra == {"colour": "red", "n": 2}
    with pytest.raises(ValidationError) as info:
        _result(Bag, {"value": "colour=red"})
    assert [(e["loc"], e["type"]) for e in info.value.errors()] == [((), "restore")]


@pytest.mark.parametrize(
    ("root", "sent", "answer", "expected"),
    [
        (list[int], {"type": "array", "items": {"type": "integer"}}, [1, 2], [1, 2]),
        (
            RootModel[list[int]],
            {"type": "array", "items": {"type": "integer"}, "title": "RootModel[list[int]]"},
            [1, 2],
            RootModel[list[int]]([1, 2]),
        ),
        (int, {"type": "integer"}, 4, 4),
        (str | None, {"anyOf": [{"type": "string"}, {"type": "null"}]}, None, None),
    ],
    ids=["list", "root-model", "int", "optional-str"],
)
def test_non_object_root_is_wrapped_in_an_object_and_unwrapped_again(
    root: Any, sent: dict[str, Any], answer: Any, expected: Any
) -> None:
    compiled = compile_schema(root)
    schema = compiled.schema
    assert schema["type"] == "object" and schema["required"] == ["value"]
    assert schema["additionalProperties"] is False
    assert schema["properties"]["value"] == sent
    _lossless(compiled, "#", "wrapped")
    assert compiled.restore({"value": answer}) == answer
    result = _result(root, {"value": answer})
    assert result == expected and type(result) is type(expected)


def test_union_root_of_models_is_wrapped_and_restored_through_the_matching_branch() -> None:
    compiled = compile_schema(Cat | Dog)
    value = _prop(compiled.schema, "value")
    assert value["anyOf"] == [{"$ref": "#/$defs/Cat"}, {"$ref": "#/$defs/Dog"}]
    assert compiled.restore({"value": {"kind": "dog", "good": None}}) == {"kind": "dog"}
    dog = _result(Cat | Dog, {"value": {"kind": "dog", "good": None}})
    assert isinstance(dog, Dog) and dog.good is True


def test_optional_model_root_keeps_its_null() -> None:
    compiled = compile_schema(Cat | None)
    assert _prop(compiled.schema, "value")["anyOf"] == [
        {"$ref": "#/$defs/Cat"},
        {"type": "null"},
    ]
    assert _result(Cat | None, {"value": None}) is None
    cat = _result(Cat | None, {"value": {"kind": "cat", "lives": None}})
    assert isinstance(cat, Cat) and cat.lives == 9


def test_recursive_field_with_description_keeps_a_plain_ref() -> None:
    class Node(BaseModel):
        name: str
        next: Node | None = Field(default=None, description="following node")
        first: Node = Field(description="a required child")  # infinite, but valid

    compiled = compile_schema(Node)
    schema = compiled.schema
    # the description survives on the nullable wrapper, never beside a $ref
    assert _prop(schema, "next")["description"] == "following node"
    assert _prop(schema, "first")["properties"]["first"] == {"$ref": "#"}


def test_any_field_is_sent_as_a_json_encoded_string() -> None:
    class Loose(BaseModel):
        data: Any

    compiled = compile_schema(Loose)
    data = _prop(compiled.schema, "data")
    assert data["type"] == "string" and "JSON-encoded string" in data["description"]
    _lossless(compiled, "#/properties/data", "JSON-encoded string")
    assert _result(Loose, {"data": '{"a": [1, null]}'}).data == {"a": [1, None]}
    assert _result(Loose, {"data": '"text"'}).data == "text"
    with pytest.raises(ValidationError) as info:
        _result(Loose, {"data": "text"})
    assert [e["loc"] for e in info.value.errors()] == [("data",)]


def test_typeddict_and_dataclass_via_typeadapter() -> None:
    class Movie(TypedDict):
        title: str
        year: int

    @dataclass
    class Book:
        title: str
        pages: int = 1

    assert to_strict_schema(Movie)["required"] == ["title", "year"]
    compiled = compile_schema(Book)
    assert compiled.name == "Book"
    assert compiled.restore({"title": "t", "pages": None}) == {"title": "t"}


def test_name_comes_from_the_model_class() -> None:
    assert compile_schema(WithDefaults).name == "WithDefaults"


def test_check_schema_lists_all_problems_of_a_model() -> None:
    class Bad(BaseModel):
        a: Annotated[dict[str, Any], WithJsonSchema({"$ref": "https://example.com/a.json"})]
        b: Annotated[list[int], WithJsonSchema({"type": "array", "items": False, "minItems": 1})]
        c: dict[str, int]

    report = check_schema(Bad)
    assert not report.ok
    assert [e.path for e in report.errors] == ["#/properties/a", "#/properties/b/items"]
    text = report.format()
    assert "FAILED" in text and "#/properties/b" in text and "fix:" in text


def test_check_schema_lists_the_rewrites_of_a_model_strict_mode_could_not_take_before() -> None:
    class Wide(BaseModel):
        a: dict[str, int]
        b: Any
        c: tuple[int, str]

    report = check_schema(Wide)
    assert report.ok and report.errors == []
    rewritten = {c.path for c in report.changes if not c.lossy}
    assert {"#/properties/a", "#/properties/b", "#/properties/c"} <= rewritten
    answer = {"a": [{"key": "k", "value": 1}], "b": "[true]", "c": {"0": 1, "1": "s"}}
    wide = _result(Wide, answer)
    assert (wide.a, wide.b, wide.c) == ({"k": 1}, [True], (1, "s"))
    assert TypeAdapter(Wide).validate_python(compile_schema(Wide).restore(answer)) == wide


def test_model_pydantic_cannot_describe_raises_schema_error() -> None:
    from collections.abc import Callable

    class WithCallable(BaseModel):
        fn: Callable[[int], int]

    with pytest.raises(SchemaError, match="pydantic cannot produce a JSON schema"):
        compile_schema(WithCallable)


def test_model_schema_is_cached_per_class() -> None:
    assert compile_schema(WithDefaults) is compile_schema(WithDefaults)
    assert compile_schema(WithDefaults, strict=False) is not compile_schema(WithDefaults)
    assert compile_schema(WithDefaults, strict=False).schema == WithDefaults.model_json_schema()
