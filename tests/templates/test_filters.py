"""Every data filter: normal and empty input, missing keys, None, mixed and non-numeric values."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from openai_structured.templates import (
    TemplateDataError,
    TemplateSecurityError,
    create_environment,
)
from openai_structured.templates import filters as f

# --- sort_by ---------------------------------------------------------------------------------


def test_sort_by_orders_by_key_and_puts_missing_and_none_last(records: list[dict[str, Any]]):
    ordered = f.sort_by(records, "rating")
    assert [r["name"] for r in ordered] == ["mug", "pen", "lamp", "clip"]


def test_sort_by_reverse_keeps_missing_last_and_is_stable():
    items = [{"k": 1, "i": 0}, {"i": 1}, {"k": 2, "i": 2}, {"k": 1, "i": 3}]
    assert [r["i"] for r in f.sort_by(items, "k", reverse=True)] == [2, 0, 3, 1]


def test_sort_by_empty_list_is_empty():
    assert f.sort_by([], "k") == []


def test_sort_by_mixed_numbers_and_strings_raises_naming_both_values():
    with pytest.raises(TemplateDataError) as info:
        f.sort_by([{"k": 3}, {"k": "4"}], "k")
    assert info.value.filter == "sort_by"
    assert "3 (int)" in str(info.value) and "'4' (str)" in str(info.value)


def test_sort_by_ints_and_floats_sort_together():
    assert f.pluck(f.sort_by([{"k": 2.5}, {"k": 1}, {"k": 3}], "k"), "k") == [1, 2.5, 3]


def test_sort_by_unorderable_values_raise_data_error():
    with pytest.raises(TemplateDataError, match="cannot be ordered"):
        f.sort_by([{"k": {"a": 1}}, {"k": {"b": 2}}], "k")


def test_sort_by_key_no_item_has_raises_listing_existing_keys(records: list[dict[str, Any]]):
    with pytest.raises(TemplateDataError, match=r"no item has the key 'amout'.*amount"):
        f.sort_by(records, "amout")


def test_sort_by_dotted_path_reaches_nested_values():
    items = [{"user": {"age": 40}}, {"user": {"age": 30}}, {"user": {}}]
    assert f.pluck(f.sort_by(items, "user.age"), "user") == [{"age": 30}, {"age": 40}, {}]


def test_sort_by_literal_dotted_key_wins_over_path():
    assert f.pluck([{"a.b": 1, "a": {"b": 2}}], "a.b") == [1]


def test_sort_by_none_input_raises_data_error():
    with pytest.raises(TemplateDataError, match="got None"):
        f.sort_by(None, "k")  # type: ignore[arg-type]


def test_sort_by_dict_input_raises_with_hint():
    with pytest.raises(TemplateDataError, match="dictsort"):
        f.sort_by({"a": 1}, "k")


def test_sort_by_in_template(render: Any, records: list[dict[str, Any]]):
    out = render("{{ items|sort_by('amount')|map(attribute='name')|join(',') }}", items=records)
    assert out == "clip,pen,mug,lamp"


# --- group_by --------------------------------------------------------------------------------


def test_group_by_groups_in_first_seen_order(records: list[dict[str, Any]]):
    groups = f.group_by(records, "category")
    assert list(groups) == ["office", "home"]
    assert [r["name"] for r in groups["home"]] == ["lamp", "mug"]


def test_group_by_missing_and_none_go_under_none_last():
    groups = f.group_by([{"k": None}, {"k": "a"}, {}], "k")
    assert list(groups) == ["a", None]
    assert len(groups[None]) == 2


def test_group_by_unhashable_value_raises_naming_it():
    with pytest.raises(TemplateDataError, match=r"\[1\] \(list\)") as info:
        f.group_by([{"k": [1]}], "k")
    assert info.value.key == "k"


def test_group_by_empty_is_empty_dict():
    assert f.group_by([], "k") == {}


def test_group_by_in_template_as_reference_shows(render: Any, records: list[dict[str, Any]]):
    source = (
        "{% for category, items in data|group_by('category') %}"
        "{{ category }}={{ items|length }};{% endfor %}"
    )
    # group_by returns a dict, so iteration needs .items() as in the reference
    source = source.replace("data|group_by('category')", "(data|group_by('category')).items()")
    assert render(source, data=records) == "office=2;home=2;"


# --- filter_by -------------------------------------------------------------------------------


def test_filter_by_keeps_equal_values(records: list[dict[str, Any]]):
    assert f.pluck(f.filter_by(records, "category", "home"), "name") == ["lamp", "mug"]


def test_filter_by_drops_missing_keys_and_matches_none_explicitly(records):
    assert f.pluck(f.filter_by(records, "rating", None), "name") == ["lamp"]


def test_filter_by_no_match_is_empty_list(records):
    assert f.filter_by(records, "category", "garden") == []


def test_filter_by_typo_key_raises(records):
    with pytest.raises(TemplateDataError, match="filter_by"):
        f.filter_by(records, "categroy", "home")


def test_filter_by_in_template(render: Any, records):
    assert render("{{ d|filter_by('category', 'home')|length }}", d=records) == "2"


# --- pluck -----------------------------------------------------------------------------------


def test_pluck_returns_values_aligned_with_none_for_missing(records):
    assert f.pluck(records, "rating") == [4.5, None, None, 3.0]


def test_pluck_empty_list():
    assert f.pluck([], "x") == []


def test_pluck_index_key_on_rows():
    assert f.pluck([[1, 2], [3, 4], [5]], 1) == [2, 4, None]


def test_pluck_refuses_private_keys():
    class Record:
        def __init__(self) -> None:
            self._secret = 1

    with pytest.raises(TemplateSecurityError, match="private"):
        f.pluck([Record()], "_secret")


def test_pluck_does_not_hand_out_methods():
    with pytest.raises(TemplateDataError, match="no item has the key 'upper'"):
        f.pluck(["a", "b"], "upper")


def test_pluck_reads_public_object_attributes():
    class Point:
        def __init__(self, x: int) -> None:
            self.x = x

    assert f.pluck([Point(1), Point(2)], "x") == [1, 2]


# --- unique ----------------------------------------------------------------------------------


def test_unique_preserves_first_occurrence_order():
    assert f.unique(["b", "a", "b", "A"]) == ["b", "a", "A"]


def test_unique_handles_unhashable_values():
    assert f.unique([{"a": 1}, {"a": 1}, [1], [1], 2]) == [{"a": 1}, [1], 2]


def test_unique_by_key_keeps_first_record(records):
    assert f.pluck(f.unique(records, "category"), "name") == ["pen", "lamp"]


def test_unique_empty_and_none_values():
    assert f.unique([]) == []
    assert f.unique([None, None, 1]) == [None, 1]


def test_unique_in_template_is_case_sensitive(render: Any):
    assert render("{{ ['a', 'A', 'a']|unique|join(',') }}") == "a,A"


# --- frequency -------------------------------------------------------------------------------


def test_frequency_counts_most_frequent_first_ties_in_first_seen_order():
    assert list(f.frequency(["x", "y", "y", "z", "x", "y"]).items()) == [
        ("y", 3),
        ("x", 2),
        ("z", 1),
    ]


def test_frequency_with_key_counts_missing_as_none(records):
    assert f.frequency(records, "rating") == {None: 2, 4.5: 1, 3.0: 1}


def test_frequency_unhashable_raises():
    with pytest.raises(TemplateDataError, match="frequency"):
        f.frequency([[1], [1]])


def test_frequency_empty():
    assert f.frequency([]) == {}


def test_pluck_then_frequency_in_template(render: Any, records):
    out = render("{{ d|pluck('category')|frequency|dictsort|list }}", d=records)
    assert out == "[('home', 2), ('office', 2)]"


# --- aggregate -------------------------------------------------------------------------------


def test_aggregate_computes_count_sum_avg_min_max(records):
    assert f.aggregate(records, "amount") == {
        "count": 4,
        "sum": 21,
        "avg": 5.25,
        "min": 1,
        "max": 10,
    }


def test_aggregate_skips_none_and_missing(records):
    stats = f.aggregate(records, "rating")
    assert stats["count"] == 2 and stats["avg"] == 3.75


def test_aggregate_empty_list():
    assert f.aggregate([], "x") == {"count": 0, "sum": 0, "avg": None, "min": None, "max": None}


def test_aggregate_all_none_values():
    assert f.aggregate([{"x": None}], "x")["count"] == 0


def test_aggregate_plain_numbers_without_key():
    assert f.aggregate([1, 2.5, None])["sum"] == 3.5


def test_aggregate_non_numeric_names_filter_key_value_and_position(records):
    with pytest.raises(TemplateDataError) as info:
        f.aggregate([{"x": 1}, {"x": "2"}], "x")
    error = info.value
    assert (error.filter, error.key, error.value) == ("aggregate", "x", "2")
    assert "key 'x' of item 1 is '2' (str), not a number" in str(error)
    assert "map('float')" in str(error)


def test_aggregate_refuses_booleans():
    with pytest.raises(TemplateDataError, match="True"):
        f.aggregate([True, 1])


def test_aggregate_in_template_gives_location(render: Any):
    with pytest.raises(TemplateDataError) as info:
        render("ok\n{{ d|aggregate('x') }}", d=[{"x": "a"}])
    assert info.value.lineno == 2
    assert str(info.value).startswith("<template>:2: aggregate:")


def test_aggregate_then_dict_to_table_in_template(render: Any, records):
    out = render("{{ d|aggregate('amount')|dict_to_table }}", d=records)
    assert "| avg   | 5.25  |" in out


# --- summarize -------------------------------------------------------------------------------


def test_summarize_reports_types_counts_and_numeric_stats(records):
    summary = f.summarize(records)
    assert summary["total_records"] == 4
    assert list(summary["fields"]) == ["name", "category", "amount", "rating"]
    category = summary["fields"]["category"]
    assert category == {"type": "string", "count": 4, "null_count": 0, "unique_values": 2}
    rating = summary["fields"]["rating"]
    assert rating["type"] == "number" and rating["null_count"] == 2
    assert (rating["min"], rating["max"], rating["avg"]) == (3.0, 4.5, 3.75)
    assert summary["fields"]["amount"]["type"] == "integer"


def test_summarize_mixed_and_null_types():
    summary = f.summarize([{"a": 1, "b": None, "c": [1]}, {"a": "x", "c": [1]}])
    assert summary["fields"]["a"]["type"] == "mixed"
    assert summary["fields"]["b"] == {
        "type": "null",
        "count": 0,
        "null_count": 2,
        "unique_values": 0,
    }
    assert summary["fields"]["c"]["unique_values"] == 1


def test_summarize_empty():
    assert f.summarize([]) == {"total_records": 0, "fields": {}}


def test_summarize_refuses_non_records():
    with pytest.raises(TemplateDataError, match="item 1 is 5"):
        f.summarize([{"a": 1}, 5])


def test_summarize_as_global_and_as_filter(render: Any, records):
    source = "{% set s = summarize(d) %}{{ s.total_records }} {{ s.fields.amount.sum }}"
    assert render(source, d=records) == "4 21"
    assert render("{{ (d|summarize).total_records }}", d=records) == "4"


# --- pivot_table -----------------------------------------------------------------------------


def test_pivot_table_sum_and_mean(records):
    assert f.pivot_table(records, "category", "amount") == {"office": 4, "home": 17}
    assert f.pivot_table(records, "category", "amount", "mean") == {"office": 2, "home": 8.5}


def test_pivot_table_count_min_max(records):
    assert f.pivot_table(records, "category", aggfunc="count") == {"office": 2, "home": 2}
    assert f.pivot_table(records, "category", "rating", "count") == {"office": 1, "home": 1}
    assert f.pivot_table(records, "category", "amount", "max") == {"office": 3, "home": 10}
    assert f.pivot_table(records, "category", "amount", "min") == {"office": 1, "home": 7}


def test_pivot_table_missing_index_goes_under_none_and_empty_groups():
    data = [{"g": "a", "v": None}, {"v": 2}]
    assert f.pivot_table(data, "g", "v", "sum") == {"a": 0, None: 2}
    assert f.pivot_table(data, "g", "v", "avg") == {"a": None, None: 2}


def test_pivot_table_non_numeric_and_bad_aggfunc():
    with pytest.raises(TemplateDataError, match="pivot_table: key 'v' of item 0 is 'x'"):
        f.pivot_table([{"g": 1, "v": "x"}], "g", "v")
    with pytest.raises(TemplateDataError, match="unknown aggfunc 'median'"):
        f.pivot_table([], "g", "v", "median")
    with pytest.raises(TemplateDataError, match="needs values"):
        f.pivot_table([], "g")


def test_pivot_table_empty():
    assert f.pivot_table([], "g", "v") == {}


def test_pivot_table_as_global_with_keywords_and_as_filter(render: Any, records):
    source = (
        "{% set p = pivot_table(d, index='category', values='amount', aggfunc='sum') %}"
        "{{ p|dict_to_table }}"
    )
    assert "| office | 4     |" in render(source, d=records)
    assert render("{{ d|pivot_table('category', 'amount')|tojson(None) }}", d=records) == (
        '{"office": 4, "home": 17}'
    )


# --- tables ----------------------------------------------------------------------------------


def test_table_renders_padded_markdown():
    assert f.table(["Name", "Age"], [["Alice", 25], ["Bob", 30]]) == (
        "| Name  | Age |\n| ----- | --- |\n| Alice | 25  |\n| Bob   | 30  |"
    )


def test_table_cells_none_pipes_newlines_floats_and_containers():
    out = f.table(["a", "b", "c", "d"], [[None, "x|y", "l1\nl2", 1 / 3], [[1], {"k": 1}]])
    assert "|     | x\\|y    | l1 l2 | 0.333333 |" in out
    assert '| [1] | {"k":1} |       |          |' in out


def test_table_short_rows_padded_long_rows_raise():
    assert f.table(["a", "b"], [[1]]).endswith("| 1   |     |")
    with pytest.raises(TemplateDataError, match="row 1 has 3 cells but there are 2 headers"):
        f.table(["a", "b"], [[1, 2, 3]])


def test_table_rows_as_dicts_and_empty_rows():
    assert f.table(["a"], [{"a": 1}, {}]).splitlines()[2:] == ["| 1   |", "|     |"]
    assert f.table(["a"], []) == "| a   |\n| --- |"


def test_table_headers_must_be_a_list():
    with pytest.raises(TemplateDataError, match="headers must be a list"):
        f.table("ab", [])


def test_align_table_alignments():
    out = f.align_table(["Name", "Age", "X"], [["Al", 5, "c"]], ["left", "right", "center"])
    assert out.splitlines() == [
        "| Name | Age |  X  |",
        "| :--- | --: | :-: |",
        "| Al   |   5 |  c  |",
    ]


def test_align_table_default_left_and_errors():
    assert f.align_table(["a"], [[1]]).splitlines()[1] == "| :-- |"
    with pytest.raises(TemplateDataError, match="2 alignments for 1 headers"):
        f.align_table(["a"], [], ["l", "r"])
    with pytest.raises(TemplateDataError, match="unknown alignment 'up'"):
        f.align_table(["a"], [], ["up"])


def test_table_and_align_table_as_globals(render: Any):
    assert render("{{ table(['Name', 'Age'], [['Alice', 25]]) }}").startswith("| Name  | Age |")
    out = render("{{ align_table(['N', 'Age'], [['Bob', 30]], ['left', 'right']) }}")
    assert "| Bob |  30 |" in out


def test_dict_to_table_and_errors():
    assert f.dict_to_table({"a": 1, "b": None}).splitlines() == [
        "| Key | Value |",
        "| --- | ----- |",
        "| a   | 1     |",
        "| b   |       |",
    ]
    assert f.dict_to_table({}, headers=["K", "V"]) == "| K   | V   |\n| --- | --- |"
    with pytest.raises(TemplateDataError, match="expected a dict"):
        f.dict_to_table([1])
    with pytest.raises(TemplateDataError, match="exactly two"):
        f.dict_to_table({}, headers=["a"])


def test_list_to_table_headers_select_keys_case_insensitively():
    users = [{"name": "Al", "age": 3, "extra": 1}, {"name": "Bo"}]
    assert f.list_to_table(users, headers=["Name", "Age"]).splitlines() == [
        "| Name | Age |",
        "| ---- | --- |",
        "| Al   | 3   |",
        "| Bo   |     |",
    ]


def test_list_to_table_without_headers_uses_all_keys_in_order():
    out = f.list_to_table([{"a": 1}, {"b": 2}])
    assert out.splitlines()[0] == "| a   | b   |"


def test_list_to_table_rows_scalars_empty_and_errors():
    assert f.list_to_table([[1, 2]]).splitlines()[0] == "| Column 1 | Column 2 |"
    assert f.list_to_table(["x"]).splitlines()[0] == "| Value |"
    assert f.list_to_table([]) == ""
    assert f.list_to_table([], headers=["a"]) == "| a   |\n| --- |"
    with pytest.raises(TemplateDataError, match="header 'Nmae' matches no key"):
        f.list_to_table([{"name": 1}], headers=["Nmae"])
    with pytest.raises(TemplateDataError, match="mixes records"):
        f.list_to_table([{"a": 1}, 2])


def test_list_to_table_as_filter_with_keyword(render: Any):
    out = render("{{ u|list_to_table(headers=['Name']) }}", u=[{"name": "Al"}])
    assert out.splitlines()[2] == "| Al   |"


def test_auto_table_picks_the_shape():
    assert f.auto_table({"a": 1}).startswith("| Key")
    assert f.auto_table([{"a": 1}]).startswith("| a")
    assert f.auto_table([1, 2]).startswith("| Value")
    assert f.auto_table(None) == ""
    assert f.auto_table("text") == "text"
    assert f.auto_table(5) == "5"
    assert f.auto_table([]) == ""


def test_auto_table_in_template(render: Any, records):
    assert render("{{ d|auto_table }}", d=records).startswith("| name | category |")


# --- text and JSON helpers -------------------------------------------------------------------


def test_tojson_is_pretty_and_not_html_escaped(render: Any):
    assert render("{{ {'a': '<b> & é'}|tojson }}") == '{\n  "a": "<b> & é"\n}'
    assert render("{{ [1]|to_json(None) }}") == "[1]"


def test_to_json_unserializable_raises_data_error():
    with pytest.raises(TemplateDataError, match="to_json: cannot serialize"):
        f.to_json(object())


def test_from_json_parses_and_reports_position(render: Any):
    assert render("{{ ('{\"a\": [1, 2]}'|from_json).a[1] }}") == "2"
    with pytest.raises(TemplateDataError, match="line 1 column 2"):
        f.from_json("{x")


def test_word_count_char_count_dedent(render: Any):
    assert render("{{ 'a b  c\\nd'|word_count }} {{ 'héllo'|char_count }}") == "4 5"
    assert f.dedent("  a\n    b") == "a\n  b"


def test_every_spec_filter_is_registered_as_a_filter():
    # Filters are wrapped by the render limits; the function inside is the public one.
    env = create_environment()
    names = ["sort_by", "group_by", "filter_by", "pluck", "unique", "frequency", "aggregate"]
    names += ["summarize", "pivot_table", "table", "align_table", "dict_to_table"]
    names += ["list_to_table", "auto_table"]
    for name in names:
        assert inspect.unwrap(env.filters[name]) is f.DATA_FILTERS[name]
    for name in ["summarize", "pivot_table", "table", "align_table"]:
        assert env.globals[name] is f.DATA_FILTERS[name]
