"""Property tests: random JSON Schemas never crash the compiler, and compiled schemas keep
the original's meaning (what strict mode produces, once restored, the original accepts)."""

from __future__ import annotations

from typing import Any

from answers import DrawChooser, Generator, GiveUp, entry_lists, esc, json_slots
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError as SchemaValidationError
from schema_checker import assert_openai_strict, pointer_exists

from openai_structured._validation import ResultValidator
from openai_structured.errors import ValidationError
from openai_structured.schema import check_schema, compile_schema

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


def _valid_for(strict: dict[str, Any], value: Any) -> bool:
    """Asserts that the generated answer is valid for the schema sent; False when jsonschema
    cannot tell: a union that is one of its own branches (a known bug: a node that refers to
    itself without going into the value, see test_schema_contract.py) makes it recurse."""
    try:
        Draft202012Validator(strict).validate(value)
    except RecursionError:
        return False
    return True


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
    """The contract of the compiler: any answer valid for the schema sent either restores to
    a value valid for the original schema, or is a ValidationError; never a wrong value."""
    report = check_schema(doc)
    if not report.ok:
        return
    strict = report.schema
    assert strict is not None
    compiled = compile_schema(doc)
    try:
        value = Generator(
            strict, DrawChooser(data), slots=json_slots(compiled), entries=entry_lists(compiled)
        ).answer()
    except GiveUp:
        return
    if not _valid_for(strict, value):  # the generator itself is right
        return
    # oneOf -> anyOf is a documented rewrite: exclusivity is not enforced by strict mode.
    original = _one_of_as_any_of(doc)
    validator = ResultValidator(
        schema=original,
        restore=compiled.restore if compiled.needs_restore else None,
    )
    try:
        restored = validator.validate_value(value)
    except ValidationError:
        # valid for what was sent, not for the original: rejected, never returned; only a
        # constraint left out of what was sent (a lossy change) can do that
        assert any(c.lossy for c in compiled.changes) or _hits_a_known_bug(doc), compiled.changes
        return
    Draft202012Validator(original).validate(restored)


def _ambiguous_string_union(strict: dict[str, Any], slots: frozenset[str]) -> bool:
    """An anyOf of the schema sent with a JSON-encoded-string branch beside another string
    branch: restore() takes any string for the first (known bug, see test_schema_rewrites.py)."""
    defs = strict.get("$defs", {})
    stack: list[tuple[Any, str]] = [(strict, "#")]
    stack.extend((node, f"#/$defs/{esc(name)}") for name, node in defs.items())
    while stack:
        node, ptr = stack.pop()
        if not isinstance(node, dict):
            continue
        branches = node.get("anyOf")
        if isinstance(branches, list):
            strings = [
                f"{ptr}/anyOf/{i}"
                for i, b in enumerate(branches)
                if isinstance(b, dict) and b.get("type") == "string"
            ]
            if len(strings) > 1 and slots & set(strings):
                return True
            stack.extend((b, f"{ptr}/anyOf/{i}") for i, b in enumerate(branches))
        for key in ("properties",):
            for name, sub in (node.get(key) or {}).items():
                stack.append((sub, f"{ptr}/properties/{esc(name)}"))
        if isinstance(node.get("items"), dict):
            stack.append((node["items"], f"{ptr}/items"))
    return False


_DROPPED = ("not", "if", "then", "else", "contains", "dependentSchemas", "propertyNames")


def _hits_a_known_bug(doc: Any) -> bool:
    """Documents a known bug makes crash after the answer (see the xfail reproductions in
    test_schema_contract.py and test_schema_dicts.py): a document only an older draft accepts
    (``type: "any"``, tuple ``items: [...]``) checked as 2020-12, a ``$ref`` inside a subschema
    strict mode drops (never resolved before sending), OpenAPI ``nullable: true`` (sent as a
    null alternative, then refused by the check), and a tuple whose ``uniqueItems``,
    ``contains``, ``minItems`` or ``maxItems`` the tuple rewrite drops without a lossy change
    (test_schema_rewrites.py)."""
    if isinstance(doc, dict) and "$schema" not in doc:
        try:
            Draft202012Validator.check_schema(doc)
        except SchemaValidationError:
            return True
    stack: list[tuple[Any, bool]] = [(doc, False)]
    while stack:
        node, dropped = stack.pop()
        if isinstance(node, list):
            stack.extend((v, dropped) for v in node)
        elif isinstance(node, dict):
            if dropped and any(k in node for k in ("$ref", "$dynamicRef", "$recursiveRef")):
                return True
            if node.get("nullable") is True:
                return True
            tuple_form = "prefixItems" in node or isinstance(node.get("items"), list)
            if tuple_form and {"uniqueItems", "contains", "minItems", "maxItems"} & set(node):
                return True
            stack.extend((v, dropped or k in _DROPPED) for k, v in node.items())
    return False


@given(schema_documents(wild=True), st.data())
@settings(TAME_SETTINGS, max_examples=500)
def test_answers_for_wild_schemas_come_back_valid_for_the_original_or_are_rejected(
    doc: Any, data: st.DataObject
) -> None:
    """The same contract for the wild documents: maps, patternProperties, tuples, any-value
    nodes, not/if/then/else, dependentSchemas... whatever compiles."""
    report = check_schema(doc)
    if not report.ok or not isinstance(doc, dict) or _hits_a_known_bug(doc):
        return
    compiled = compile_schema(doc)
    strict = compiled.schema
    slots = json_slots(compiled)
    broken = bool(slots) and data.draw(st.booleans())
    try:
        value = Generator(
            strict,
            DrawChooser(data),
            slots=slots,
            entries=entry_lists(compiled),
            broken_json=broken,
        ).answer()
    except GiveUp:
        return
    if not _valid_for(strict, value):
        return
    original = _one_of_as_any_of(doc)
    validator = ResultValidator(
        schema=original, restore=compiled.restore if compiled.needs_restore else None
    )
    try:
        restored = validator.validate_value(value)
    except ValidationError as exc:
        # only a constraint left out of what was sent, or a string that is not JSON
        known = _ambiguous_string_union(strict, slots) or _hits_a_known_bug(doc)
        assert broken or known or any(c.lossy for c in compiled.changes), exc.errors()
        return
    except BaseException as exc:
        # known bug: a node that refers to itself without going into the value (see the
        # reproductions in test_schema_contract.py) makes jsonschema recurse without end
        if isinstance(exc, RecursionError) or type(exc).__name__ == "PanicException":
            return
        raise
    Draft202012Validator(original).validate(restored)
