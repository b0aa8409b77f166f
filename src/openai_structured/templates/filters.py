"""Data filters for templates (SPEC §5): transform, aggregate, summarize and tabulate records.

Every function here is a plain Python function (usable and testable without Jinja) and is
registered in the template environment as a filter; ``summarize``, ``pivot_table``, ``table``
and ``align_table`` are also globals because that is how templates usually call them.

Shared rules, so that every filter behaves the same way on imperfect data:

* **Records** are mappings (dicts, e.g. from ``-J``) or objects with public attributes (such as
  :class:`~.files.FileInfo`). A *key* is a dict key, an attribute name, or a dotted path
  (``"user.age"``) tried when no key with the literal name exists. Private names (``_x``) are
  refused with :class:`~.errors.TemplateSecurityError`: filters look keys up on the template's
  behalf and must not become a way around the sandbox.
* **Missing keys and None** are treated alike as "no value": ``sort_by`` puts them last,
  ``group_by``/``pivot_table`` collect them under ``None`` (last), ``filter_by`` drops them,
  ``pluck`` yields ``None`` for them, ``aggregate``/``pivot_table`` skip them.
* **Typo guard**: when a non-empty list is given and *no* record has the key, the filter raises
  :class:`~.errors.TemplateDataError` listing the keys that do exist, instead of quietly
  producing an empty or unchanged result.
* **Non-numeric values** given to ``aggregate``/``pivot_table``/``summarize`` numbers raise
  :class:`~.errors.TemplateDataError` naming the filter, the key, the value and its position;
  booleans are not numbers here (summing flags is nearly always a mistake); numeric strings are
  not converted (convert first with ``map('float')``).
* **Mixed types** that cannot be ordered (``sort_by`` over ``3`` and ``"4"``) raise
  :class:`~.errors.TemplateDataError` naming both values.
* **Render limits** apply here too (:mod:`._limits`): tables, JSON and text are measured
  before they are built, and long loops over records check the render's deadline.
"""

from __future__ import annotations

import json
import math
import numbers
import textwrap
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from ._guards import text_of
from ._limits import DataLimitError, current_state, loads_bounded
from .errors import TemplateDataError, TemplateSecurityError
from .security import is_safe_template_attribute

__all__ = [
    "DATA_FILTERS",
    "DATA_GLOBALS",
    "TEXT_FILTERS",
    "aggregate",
    "align_table",
    "auto_table",
    "char_count",
    "dedent",
    "dict_to_table",
    "filter_by",
    "frequency",
    "from_json",
    "group_by",
    "list_to_table",
    "pivot_table",
    "pluck",
    "sort_by",
    "summarize",
    "table",
    "to_json",
    "unique",
    "word_count",
]


class _Missing:
    """Marker for a key that a record does not have (distinct from a key set to None)."""

    def __repr__(self) -> str:
        return "<missing>"


MISSING: Any = _Missing()

# Values we never look attributes up on: they are data, and their attributes are methods.
_PRIMITIVES = (str, bytes, int, float, bool, type(None), list, tuple, dict, set, frozenset)


def _describe(value: Any) -> str:
    """A value and its type, short enough for an error message."""
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({type(value).__name__})"


def _lookup_one(item: Any, key: Any, filter_name: str) -> Any:
    if isinstance(item, Mapping):
        try:
            return item.get(key, MISSING)
        except TypeError:  # unhashable key
            return MISSING
    if isinstance(key, int) and isinstance(item, Sequence) and not isinstance(item, str):
        return item[key] if -len(item) <= key < len(item) else MISSING
    if not isinstance(key, str) or isinstance(item, _PRIMITIVES):
        return MISSING
    if key.startswith("_"):
        raise TemplateSecurityError(
            f"{filter_name}: key {key!r} is private; templates cannot read names starting with '_'."
        )
    if not is_safe_template_attribute(item, key):
        return MISSING
    value = getattr(item, key, MISSING)
    # Methods are not data; returning them would let a filter hand out callables.
    return MISSING if callable(value) else value


def lookup(item: Any, key: Any, filter_name: str = "lookup") -> Any:
    """Value of ``key`` in ``item`` (dict key, public attribute or dotted path), or ``MISSING``."""
    value = _lookup_one(item, key, filter_name)
    if value is MISSING and isinstance(key, str) and "." in key:
        value = item
        for part in key.split("."):
            step: Any = int(part) if part.lstrip("-").isdigit() else part
            if isinstance(value, Mapping) and part in value:
                step = part  # a dict key that looks like a number is still a key
            value = _lookup_one(value, step, filter_name)
            if value is MISSING:
                break
    return value


def _records(value: Any, filter_name: str) -> list[Any]:
    """The input of a list filter as a list, refusing what is clearly not a list."""
    if value is None:
        raise TemplateDataError(
            f"{filter_name}: got None instead of a list; check the variable is set.",
            filter=filter_name,
            value=value,
        )
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
        hint = " (use |dictsort or .items() for a dict)" if isinstance(value, Mapping) else ""
        raise TemplateDataError(
            f"{filter_name}: expected a list, got {_describe(value)}{hint}.",
            filter=filter_name,
            value=value,
        )
    return list(value)


def _keys_hint(items: list[Any]) -> str:
    first = items[0]
    if isinstance(first, Mapping):
        keys = ", ".join(map(str, list(first)[:20])) or "none"
        return f"the first item's keys are: {keys}"
    allowed = getattr(type(first), "_template_attributes", None)
    if allowed is not None:
        return f"the first item's attributes are: {', '.join(sorted(allowed))}"
    return f"the items are {type(first).__name__} values, not records"


def _values(items: list[Any], key: Any, filter_name: str) -> list[Any]:
    """``key`` looked up in every item, with the typo guard applied."""
    values = [lookup(item, key, filter_name) for item in items]
    current_state().tick_many(len(items))
    if items and all(v is MISSING for v in values):
        raise TemplateDataError(
            f"{filter_name}: no item has the key {key!r}; {_keys_hint(items)}.",
            filter=filter_name,
            key=key,
        )
    return values


def _absent(value: Any) -> bool:
    return value is MISSING or value is None


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _sort_kind(value: Any) -> str:
    if isinstance(value, numbers.Real):
        return "number"
    if isinstance(value, str):
        return "string"
    return type(value).__name__


def _hashable(value: Any, filter_name: str, key: Any) -> Any:
    try:
        hash(value)
    except TypeError:
        where = f" of key {key!r}" if key is not None else ""
        raise TemplateDataError(
            f"{filter_name}: cannot use the value {_describe(value)}{where}: lists and dicts "
            f"cannot be grouped or counted; pick a scalar key.",
            filter=filter_name,
            key=key,
            value=value,
        ) from None
    return value


# --- transformation -------------------------------------------------------------------------


def sort_by(items: Iterable[Any], key: Any, reverse: bool = False) -> list[Any]:
    """Records sorted by ``key`` (stable); records without the key or with None come last.

    Numbers sort among numbers and strings among strings (case-sensitive, Python order); a
    mix of kinds raises :class:`TemplateDataError` naming one value of each.
    """
    records = _records(items, "sort_by")
    values = _values(records, key, "sort_by")
    present = [(v, r) for v, r in zip(values, records, strict=True) if not _absent(v)]
    absent = [r for v, r in zip(values, records, strict=True) if _absent(v)]
    kinds: dict[str, Any] = {}
    for value, _ in present:
        kinds.setdefault(_sort_kind(value), value)
    if len(kinds) > 1:
        (k1, v1), (k2, v2) = list(kinds.items())[:2]
        raise TemplateDataError(
            f"sort_by: key {key!r} mixes {k1} and {k2} values ({_describe(v1)} and "
            f"{_describe(v2)}), which cannot be ordered; make them one type first.",
            filter="sort_by",
            key=key,
            value=v2,
        )
    try:
        ordered = sorted(present, key=lambda pair: pair[0], reverse=bool(reverse))
    except TypeError:
        sample = present[0][0]
        raise TemplateDataError(
            f"sort_by: values of key {key!r} like {_describe(sample)} cannot be ordered.",
            filter="sort_by",
            key=key,
            value=sample,
        ) from None
    return [r for _, r in ordered] + absent


def group_by(items: Iterable[Any], key: Any) -> dict[Any, list[Any]]:
    """Records grouped by the value of ``key``: ``{value: [records]}`` in first-seen order.

    Records without the key (or with None) are grouped under ``None``, which comes last.
    """
    records = _records(items, "group_by")
    values = _values(records, key, "group_by")
    groups: dict[Any, list[Any]] = {}
    absent: list[Any] = []
    for value, record in zip(values, records, strict=True):
        if _absent(value):
            absent.append(record)
        else:
            groups.setdefault(_hashable(value, "group_by", key), []).append(record)
    if absent:
        groups[None] = absent
    return groups


def filter_by(items: Iterable[Any], key: Any, value: Any) -> list[Any]:
    """Records whose ``key`` equals ``value`` (Python equality); records without the key drop."""
    records = _records(items, "filter_by")
    values = _values(records, key, "filter_by")
    return [r for v, r in zip(values, records, strict=True) if v is not MISSING and v == value]


def pluck(items: Iterable[Any], key: Any) -> list[Any]:
    """The value of ``key`` in each record; ``None`` where a record lacks it (so lists align)."""
    records = _records(items, "pluck")
    return [None if v is MISSING else v for v in _values(records, key, "pluck")]


def unique(items: Iterable[Any], key: Any = None) -> list[Any]:
    """Distinct values (or records distinct by ``key``), first occurrence kept, order preserved.

    Comparison is Python equality, so ``1``, ``1.0`` and ``True`` count as one value and strings
    are case-sensitive. Lists and dicts work too (compared by equality).
    """
    records = _records(items, "unique")
    keys = (
        records
        if key is None
        else [None if v is MISSING else v for v in _values(records, key, "unique")]
    )
    seen_hashable: set[Any] = set()
    seen_other: list[Any] = []
    result: list[Any] = []
    # Unhashable values are compared one by one: quadratic, so each step counts for the
    # deadline.
    state = current_state()
    for k, record in zip(keys, records, strict=True):
        try:
            if k in seen_hashable:
                continue
            seen_hashable.add(k)
        except TypeError:
            state.tick_many(len(seen_other))
            if k in seen_other:
                continue
            seen_other.append(k)
        result.append(record)
    return result


def frequency(items: Iterable[Any], key: Any = None) -> dict[Any, int]:
    """How often each value occurs: ``{value: count}``, most frequent first (ties: first seen).

    With ``key``, counts that key's values (a record without it counts as ``None``). Lists and
    dicts cannot be counted and raise :class:`TemplateDataError`.
    """
    records = _records(items, "frequency")
    values = (
        records
        if key is None
        else [None if v is MISSING else v for v in _values(records, key, "frequency")]
    )
    counts: dict[Any, int] = {}
    for value in values:
        counted = _hashable(value, "frequency", key)
        counts[counted] = counts.get(counted, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


# --- aggregation ----------------------------------------------------------------------------


def _numbers(values: list[Any], filter_name: str, key: Any) -> list[Any]:
    """The numeric values, None/missing skipped, anything else refused with its position."""
    result = []
    for index, value in enumerate(values):
        if _absent(value):
            continue
        if not _is_number(value):
            where = f" key {key!r} of item {index}" if key is not None else f" item {index}"
            hint = " (convert it first, e.g. |map('float'))" if isinstance(value, str) else ""
            raise TemplateDataError(
                f"{filter_name}:{where} is {_describe(value)}, not a number{hint}.",
                filter=filter_name,
                key=key,
                value=value,
            )
        result.append(value)
    return result


def _stats(values: list[Any]) -> dict[str, Any]:
    total = sum(values)
    return {
        "count": len(values),
        "sum": total,
        "avg": total / len(values) if values else None,
        "min": min(values) if values else None,
        "max": max(values) if values else None,
    }


def aggregate(items: Iterable[Any], key: Any = None) -> dict[str, Any]:
    """``{count, sum, avg, min, max}`` of ``key`` over the records (or of the items themselves).

    None and missing values are skipped and not counted; an empty input gives count 0, sum 0
    and None for avg/min/max; a non-numeric value raises :class:`TemplateDataError`.
    """
    records = _records(items, "aggregate")
    values = records if key is None else _values(records, key, "aggregate")
    return _stats(_numbers(values, "aggregate", key))


_JSON_TYPES: tuple[tuple[type, str], ...] = (
    (bool, "boolean"),
    (numbers.Integral, "integer"),
    (numbers.Real, "number"),
    (str, "string"),
    (Mapping, "object"),
    (list, "array"),
    (tuple, "array"),
)


def _type_name(value: Any) -> str:
    for cls, name in _JSON_TYPES:
        if isinstance(value, cls):
            return name
    return type(value).__name__


def _distinct_key(value: Any) -> Any:
    try:
        hash(value)
        return (0, value)
    except TypeError:
        state = current_state()
        state.check_size(state.json_size(value), "summarize: a list or dict value as JSON")
        return (1, json.dumps(value, sort_keys=True, default=repr, ensure_ascii=False))


def summarize(data: Iterable[Any]) -> dict[str, Any]:
    """An overview of a list of records: ``{total_records, fields}``.

    ``fields`` maps each key (first-seen order) to ``type`` (JSON type name: integer, number,
    string, boolean, object, array; ``number`` for integers mixed with floats, ``mixed`` for
    other mixes, ``null`` when no record has a value), ``count`` (records with a value),
    ``null_count`` (records where it is None or missing), ``unique_values`` and, for numeric
    fields, ``min``, ``max``, ``avg`` and ``sum``.
    """
    records = _records(data, "summarize")
    for index, record in enumerate(records):
        if not isinstance(record, Mapping):
            raise TemplateDataError(
                f"summarize: expects a list of records (dicts); item {index} is "
                f"{_describe(record)}.",
                filter="summarize",
                value=record,
            )
    names: dict[Any, None] = {}
    for record in records:
        names.update(dict.fromkeys(record))
    fields: dict[Any, dict[str, Any]] = {}
    for name in names:
        present = [r[name] for r in records if r.get(name) is not None]
        types = {_type_name(v) for v in present}
        if not types:
            kind = "null"
        elif len(types) == 1:
            kind = types.pop()
        elif types <= {"integer", "number"}:
            kind = "number"
        else:
            kind = "mixed"
        stats: dict[str, Any] = {
            "type": kind,
            "count": len(present),
            "null_count": len(records) - len(present),
            "unique_values": len({_distinct_key(v) for v in present}),
        }
        if kind in ("integer", "number"):
            numeric = _stats(present)
            stats.update(min=numeric["min"], max=numeric["max"], avg=numeric["avg"])
            stats["sum"] = numeric["sum"]
        fields[name] = stats
    return {"total_records": len(records), "fields": fields}


_AGGFUNCS: dict[str, str] = {
    "sum": "sum",
    "mean": "avg",
    "avg": "avg",
    "average": "avg",
    "count": "count",
    "min": "min",
    "max": "max",
}


def pivot_table(
    data: Iterable[Any], index: Any, values: Any = None, aggfunc: str = "sum"
) -> dict[Any, Any]:
    """``{index value: aggregate of values}`` over the records, in first-seen order.

    ``aggfunc`` is ``sum``, ``mean`` (or ``avg``), ``count``, ``min`` or ``max``. ``count``
    counts the records with a non-None ``values`` (every record when ``values`` is omitted);
    the others need numbers and skip None/missing values. Records without an index value are
    collected under ``None`` (last). A group with no numbers gets 0 for ``sum`` and None for
    the others.
    """
    func = _AGGFUNCS.get(str(aggfunc).lower())
    if func is None:
        raise TemplateDataError(
            f"pivot_table: unknown aggfunc {aggfunc!r}; use one of sum, mean, count, min, max.",
            filter="pivot_table",
            value=aggfunc,
        )
    if values is None and func != "count":
        raise TemplateDataError(
            f"pivot_table: aggfunc {aggfunc!r} needs values='<key to aggregate>'.",
            filter="pivot_table",
        )
    records = _records(data, "pivot_table")
    index_values = _values(records, index, "pivot_table")
    value_values = [1] * len(records) if values is None else _values(records, values, "pivot_table")
    groups: dict[Any, list[Any]] = {}
    absent: list[Any] = []
    for group, value in zip(index_values, value_values, strict=True):
        if _absent(group):
            absent.append(value)
        else:
            groups.setdefault(_hashable(group, "pivot_table", index), []).append(value)
    if absent:
        groups[None] = absent
    result: dict[Any, Any] = {}
    for group, members in groups.items():
        if func == "count":
            result[group] = sum(1 for v in members if not _absent(v))
        else:
            result[group] = _stats(_numbers(members, "pivot_table", values))[func]
    return result


# --- tables ---------------------------------------------------------------------------------

_ALIGNMENTS = {"left": "left", "l": "left", "right": "right", "r": "right"}
_ALIGNMENTS.update({"center": "center", "centre": "center", "c": "center"})


def _format_cell(value: Any) -> str:
    """One value as table-cell text: None empty, floats short, containers as compact JSON."""
    if isinstance(value, str):
        text = value
    elif value is None or value is MISSING:
        text = ""
    elif isinstance(value, float):
        if math.isfinite(value) and 1e-4 <= abs(value) < 1e15:
            text = f"{value:.6f}".rstrip("0").rstrip(".")
        else:
            text = repr(value)
    elif isinstance(value, (Mapping, list, tuple)):
        state = current_state()
        state.check_size(state.json_size(value), "a table cell")
        text = json.dumps(value, ensure_ascii=False, default=str, separators=(",", ":"))
    elif hasattr(type(value), "_template_attributes") and hasattr(value, "path"):
        text = str(value.path)  # a FileInfo in a cell: its path, not its whole content
    else:
        text = text_of(current_state(), value, "a table cell")
    # A cell must stay on one line and must not close itself.
    return text.replace("\r\n", " ").replace("\n", " ").replace("|", "\\|")


def _as_list(value: Any, what: str, filter_name: str) -> list[Any]:
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
        raise TemplateDataError(
            f"{filter_name}: {what} must be a list, got {_describe(value)}.",
            filter=filter_name,
            value=value,
        )
    return list(value)


def _render_table(
    headers: list[Any], rows: list[list[Any]], alignments: list[str], explicit: bool
) -> str:
    state = current_state()
    head = [_format_cell(h) for h in headers]
    body: list[list[str]] = []
    cells = sum(map(len, head))
    for row in rows:
        body.append([_format_cell(c) for c in row])
        cells += sum(map(len, body[-1]))
        state.check_size(cells, "the table's cells")
    state.tick_many(len(body))
    widths = [max([3, len(h), *(len(r[i]) for r in body)]) for i, h in enumerate(head)]
    # Every cell is padded to its column's width: one long cell widens every row.
    state.check_size((sum(widths) + 3 * len(widths) + 2) * (len(body) + 2), "this table")

    def line(cells: list[str]) -> str:
        padded = []
        for cell, width, align in zip(cells, widths, alignments, strict=True):
            if align == "right":
                padded.append(cell.rjust(width))
            elif align == "center":
                padded.append(cell.center(width))
            else:
                padded.append(cell.ljust(width))
        return "| " + " | ".join(padded) + " |"

    rules = []
    for width, align in zip(widths, alignments, strict=True):
        if not explicit:
            rules.append("-" * width)
        elif align == "right":
            rules.append("-" * (width - 1) + ":")
        elif align == "center":
            rules.append(":" + "-" * (width - 2) + ":")
        else:
            rules.append(":" + "-" * (width - 1))
    lines = [line(head), "| " + " | ".join(rules) + " |"]
    lines.extend(line(r) for r in body)
    return "\n".join(lines)


def _rows(headers: list[Any], rows: Any, filter_name: str) -> list[list[Any]]:
    result = []
    for number, row in enumerate(_as_list(rows, "rows", filter_name), start=1):
        if isinstance(row, Mapping):
            cells = [row.get(h) for h in headers]
        elif isinstance(row, (str, bytes)) or not isinstance(row, Iterable):
            cells = [row]
        else:
            cells = list(row)
        if len(cells) > len(headers):
            raise TemplateDataError(
                f"{filter_name}: row {number} has {len(cells)} cells but there are "
                f"{len(headers)} headers ({_describe(row)}).",
                filter=filter_name,
                value=row,
            )
        result.append(cells + [None] * (len(headers) - len(cells)))
    return result


def align_table(headers: Any, rows: Any, alignments: Any = None) -> str:
    """A Markdown table with each column aligned ``left``, ``right`` or ``center``.

    ``alignments`` has one entry per header (default: all left); rows may be lists (shorter
    ones are padded with empty cells, longer ones raise) or dicts (looked up by header).
    """
    head = _as_list(headers, "headers", "align_table")
    if alignments is None:
        aligns = ["left"] * len(head)
    else:
        given = _as_list(alignments, "alignments", "align_table")
        if len(given) != len(head):
            raise TemplateDataError(
                f"align_table: {len(given)} alignments for {len(head)} headers; give one per "
                f"column.",
                filter="align_table",
                value=alignments,
            )
        aligns = []
        for align in given:
            name = _ALIGNMENTS.get(str(align).lower())
            if name is None:
                raise TemplateDataError(
                    f"align_table: unknown alignment {align!r}; use left, right or center.",
                    filter="align_table",
                    value=align,
                )
            aligns.append(name)
    return _render_table(head, _rows(head, rows, "align_table"), aligns, explicit=True)


def table(headers: Any, rows: Any) -> str:
    """A Markdown table (columns padded to equal width) from headers and rows.

    Rows may be lists (shorter ones are padded with empty cells, longer ones raise) or dicts
    (looked up by header). None shows as an empty cell; ``|`` and newlines are escaped.
    """
    head = _as_list(headers, "headers", "table")
    return _render_table(head, _rows(head, rows, "table"), ["left"] * len(head), explicit=False)


def dict_to_table(data: Any, headers: Any = ("Key", "Value")) -> str:
    """A two-column Markdown table of a dict's items (e.g. the output of ``aggregate``)."""
    if not isinstance(data, Mapping):
        raise TemplateDataError(
            f"dict_to_table: expected a dict, got {_describe(data)}; use list_to_table or "
            f"auto_table for lists.",
            filter="dict_to_table",
            value=data,
        )
    head = _as_list(headers, "headers", "dict_to_table")
    if len(head) != 2:
        raise TemplateDataError(
            "dict_to_table: headers must name exactly two columns (key and value).",
            filter="dict_to_table",
            value=headers,
        )
    return table(head, [[k, v] for k, v in data.items()])


def _match_header(header: Any, keys: list[Any]) -> Any:
    if header in keys:
        return header
    folded = str(header).casefold()
    for key in keys:
        if str(key).casefold() == folded:
            return key
    return MISSING


def list_to_table(items: Any, headers: Any = None) -> str:
    """A Markdown table from a list of records, of rows, or of plain values.

    For records (dicts), each header selects a key (exact match, else case-insensitive, so
    ``Name`` finds ``name``); without headers every key becomes a column, in first-seen order.
    A missing key is an empty cell; a header that matches no key at all raises. For lists of
    rows, ``headers`` labels the columns (default ``Column 1``...). Plain values make one
    column (``Value``). An empty list gives only the header row (or ``""`` with no headers).
    """
    records = _records(items, "list_to_table")
    head = None if headers is None else _as_list(headers, "headers", "list_to_table")
    if not records:
        return table(head, []) if head else ""
    mappings = [isinstance(r, Mapping) for r in records]
    if any(mappings) and not all(mappings):
        bad = records[mappings.index(False)]
        raise TemplateDataError(
            f"list_to_table: mixes records (dicts) with {_describe(bad)}; give one kind.",
            filter="list_to_table",
            value=bad,
        )
    if all(mappings):
        keys: list[Any] = list(dict.fromkeys(k for r in records for k in r))
        if head is None:
            columns, labels = keys, keys
        else:
            columns = []
            for header in head:
                column = _match_header(header, keys)
                if column is MISSING:
                    raise TemplateDataError(
                        f"list_to_table: header {header!r} matches no key; the keys are: "
                        f"{', '.join(map(str, keys))}.",
                        filter="list_to_table",
                        key=header,
                    )
                columns.append(column)
            labels = head
        return table(labels, [[r.get(c) for c in columns] for r in records])
    sequences = [not isinstance(r, (str, bytes)) and isinstance(r, Sequence) for r in records]
    if all(sequences):
        width = max(len(r) for r in records)
        labels = head if head is not None else [f"Column {i + 1}" for i in range(width)]
        return table(labels, records)
    labels = head if head is not None else ["Value"]
    return table(labels, [[r] for r in records])


def auto_table(data: Any) -> str:
    """The table that fits ``data``: a dict as key/value rows, a list via ``list_to_table``.

    Anything else is shown as text (None as ``""``), so ``auto_table`` never fails on shape.
    """
    if isinstance(data, Mapping):
        return dict_to_table(data)
    if isinstance(data, Iterable) and not isinstance(data, (str, bytes)):
        return list_to_table(list(data))
    return "" if data is None else str(data)


# --- text and JSON --------------------------------------------------------------------------


def _json_default(value: Any) -> Any:
    allowed = getattr(type(value), "_template_attributes", None)
    if allowed is not None and "content" in allowed:
        return {"path": value.path, "content": value.content}
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(type(value).__name__)


def to_json(value: Any, indent: int | None = 2) -> str:
    """``value`` as JSON, pretty by default, non-ASCII kept and nothing HTML-escaped.

    Files serialize as ``{"path", "content"}``; a value JSON cannot represent raises
    :class:`TemplateDataError` naming its type. The JSON's size is checked against the render
    limit before it is written.
    """
    state = current_state()
    state.check_size(state.json_size(value, indent), "to_json")
    try:
        return json.dumps(value, indent=indent, ensure_ascii=False, default=_json_default)
    except (TypeError, ValueError) as exc:
        raise TemplateDataError(
            f"to_json: cannot serialize a value of type {exc}; convert it to a string, number, "
            f"list or dict first.",
            filter="to_json",
        ) from None


def from_json(text: Any) -> Any:
    """Parse a JSON string (or a file's content), naming the position of a syntax error.

    Nesting deeper than :data:`~._limits.MAX_DATA_DEPTH` levels and integers of more than
    :data:`~._limits.MAX_DATA_INT_DIGITS` digits raise :class:`TemplateDataError` too.
    """
    source = text_of(current_state(), text, "from_json")
    try:
        return loads_bounded(source)
    except json.JSONDecodeError as exc:
        raise TemplateDataError(
            f"from_json: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}.",
            filter="from_json",
            value=source[:200],
        ) from None
    except DataLimitError as exc:
        raise TemplateDataError(
            f"from_json: {exc}.", filter="from_json", value=source[:200]
        ) from None


def word_count(text: Any) -> int:
    """Number of whitespace-separated words."""
    return len(text_of(current_state(), text, "word_count").split())


def char_count(text: Any) -> int:
    """Number of characters (not bytes)."""
    return len(text_of(current_state(), text, "char_count"))


def dedent(text: Any) -> str:
    """Remove the common leading indentation of all lines."""
    return textwrap.dedent(text_of(current_state(), text, "dedent"))


DATA_FILTERS: dict[str, Callable[..., Any]] = {
    "sort_by": sort_by,
    "group_by": group_by,
    "filter_by": filter_by,
    "pluck": pluck,
    "unique": unique,
    "frequency": frequency,
    "aggregate": aggregate,
    "summarize": summarize,
    "pivot_table": pivot_table,
    "table": table,
    "align_table": align_table,
    "dict_to_table": dict_to_table,
    "list_to_table": list_to_table,
    "auto_table": auto_table,
}
"""The SPEC §5 data filters, by template name."""

TEXT_FILTERS: dict[str, Callable[..., Any]] = {
    "to_json": to_json,
    "tojson": to_json,
    "from_json": from_json,
    "word_count": word_count,
    "char_count": char_count,
    "dedent": dedent,
}
"""Text and JSON helpers (``tojson`` replaces Jinja's HTML-escaping one)."""

DATA_GLOBALS: dict[str, Callable[..., Any]] = {
    name: DATA_FILTERS[name] for name in ("summarize", "pivot_table", "table", "align_table")
}
"""The filters templates usually call as functions: ``summarize(data)``, ``table(h, rows)``."""
