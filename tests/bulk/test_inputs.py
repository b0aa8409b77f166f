"""Bulk inputs: JSONL, CSV, directories and stdin as streams of records, with pointed errors."""

from __future__ import annotations

import csv
import io
import itertools
import json
import os
import sys
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from openai_structured.bulk._inputs import (
    BadRecord,
    CsvHeaderError,
    DuplicateIdError,
    InputEncodingError,
    InputFileError,
    Record,
    RecordEncodingError,
    RecordError,
    RecordIdError,
    RecordLimitError,
    RecordShapeError,
    RecordSyntaxError,
    RecordTooLargeError,
    count_records,
    detect_format,
    read_records,
)
from openai_structured.cli.exit_codes import ExitCode, classify
from openai_structured.templates import (
    BinaryFileError,
    FileInfo,
    FileTooLargeError,
    PathPolicy,
    TemplateInputError,
    TemplateSecurityError,
    collect_directory,
    render_template,
)
from openai_structured.templates._limits import DataLimitError, loads_bounded

Item = Record | BadRecord


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The working directory (the default sandbox), and a sibling directory outside it."""
    cwd = tmp_path / "work"
    cwd.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("TOP SECRET")
    monkeypatch.chdir(cwd)
    return cwd


def write(path: Path, data: str | bytes) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    path.write_bytes(data)
    return path.name if path.parent == Path.cwd() else str(path)


def read(source: str | os.PathLike[str], **options: Any) -> list[Item]:
    items = list(read_records(source, **options))
    # count_records promises the number of items read_records yields; check it everywhere.
    stream = options.get("stream")
    if stream is None:
        assert count_records(source, **options) == len(items)
    return items


def good(items: list[Item]) -> list[Record]:
    return [item for item in items if isinstance(item, Record)]


def bad(items: list[Item]) -> list[BadRecord]:
    return [item for item in items if isinstance(item, BadRecord)]


def fields(record: Item) -> dict[str, Any]:
    """A record's variables without the added ``record`` mapping."""
    assert isinstance(record, Record)
    return {k: v for k, v in record.variables.items() if k != "record"}


def stdin(text: str | bytes, **options: Any) -> list[Item]:
    stream: io.StringIO | io.BytesIO
    stream = io.StringIO(text) if isinstance(text, str) else io.BytesIO(text)
    return list(read_records("-", stream=stream, **options))


# --- format choice ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [("a.jsonl", "jsonl"), ("a.NDJSON", "jsonl"), ("dir/a.CSV", "csv"), ("-", "jsonl")],
)
def test_format_comes_from_the_suffix_or_dash(work: Path, name: str, expected: str):
    assert detect_format(name) == expected


def test_a_directory_is_the_dir_format_whatever_its_name(work: Path):
    (work / "looks.jsonl").mkdir()
    assert detect_format("looks.jsonl") == "dir"


@pytest.mark.parametrize(
    ("name", "hint"),
    [("data.json", "jq -c"), ("data.jsonl.gz", "Decompress"), ("notes.txt", "")],
)
def test_unknown_suffix_lists_the_accepted_forms(work: Path, name: str, hint: str):
    write(work / name, "{}\n")
    with pytest.raises(InputFileError) as info:
        read_records(name)
    message = str(info.value)
    for form in (".jsonl", ".ndjson", ".csv", "directory", "- (JSONL on stdin)", "format"):
        assert form in message
    assert hint in message


def test_format_override_reads_any_name_and_csv_from_stdin(work: Path):
    write(work / "records.txt", '{"a": 1}\n')
    assert fields(read("records.txt", format="jsonl")[0]) == {"a": 1}
    [record] = stdin("a,b\n1,2\n", format="csv")
    assert fields(record) == {"a": "1", "b": "2"}


def test_format_override_must_fit_the_path(work: Path):
    (work / "d").mkdir()
    write(work / "f.jsonl", "{}\n")
    with pytest.raises(InputFileError, match="is a directory"):
        read_records("d", format="jsonl")
    with pytest.raises(InputFileError, match="not a directory"):
        read_records("f.jsonl", format="dir")
    with pytest.raises(InputFileError, match="unknown input format 'xml'"):
        read_records("f.jsonl", format="xml")
    with pytest.raises(InputFileError, match="not a directory"):
        read_records("-", format="dir", stream=io.StringIO(""))


# --- JSONL --------------------------------------------------------------------------------------


def test_jsonl_records_keep_their_ids_values_and_sources(work: Path):
    name = write(
        work / "reviews.jsonl",
        '{"id": "r1", "text": "good", "stars": 5}\n'
        "\n"
        "   \n"
        '{"text": "no id", "tags": ["a"], "meta": {"x": null}}\n'
        '{"id": 42, "text": "int id"}\n',
    )
    items = read(name)
    assert [(r.id, r.source) for r in items] == [
        ("r1", "reviews.jsonl:1"),
        (4, "reviews.jsonl:4"),  # blank lines are skipped, numbering stays physical
        (42, "reviews.jsonl:5"),
    ]
    assert fields(items[0]) == {"id": "r1", "text": "good", "stars": 5}
    assert fields(items[1]) == {"text": "no id", "tags": ["a"], "meta": {"x": None}}
    assert isinstance(items[2].id, int)


def test_every_field_is_reachable_through_record_even_if_not_an_identifier(work: Path):
    [record] = stdin('{"first name": "Ann", "n-1": 2, "ok": true}\n')
    assert isinstance(record, Record)
    assert record.variables["first name"] == "Ann"
    rendered = render_template(
        '{{ record["first name"] }} {{ record["n-1"] }} {{ ok }}', record.variables
    )
    assert rendered.text == "Ann 2 True"


def test_a_field_named_record_wins_over_the_added_mapping():
    [record] = stdin('{"record": "mine", "x": 1}\n')
    assert isinstance(record, Record)
    assert dict(record.variables) == {"record": "mine", "x": 1}


def test_windows_line_endings_bom_and_a_last_line_without_newline(work: Path):
    name = write(work / "w.jsonl", b'\xef\xbb\xbf{"id": "a"}\r\n\r\n{"id": "b"}')
    assert [r.id for r in read(name)] == ["a", "b"]


def test_lines_split_on_newline_only_not_on_unicode_separators():
    text = json.dumps({"t": "one\u2028two\x85three\u2029"}, ensure_ascii=False) + "\n"
    [record] = stdin(text.encode("utf-8"))
    assert fields(record) == {"t": "one\u2028two\x85three\u2029"}


def test_empty_jsonl_has_no_records(work: Path):
    assert read(write(work / "e.jsonl", "")) == []
    assert read(write(work / "blank.jsonl", "\n \n\t\n")) == []


def _one_bad(line: str) -> BadRecord:
    items = stdin('{"id": "before"}\n' + line + '\n{"id": "after"}\n')
    assert [r.id for r in good(items)] == ["before", "after"]  # the rest is read
    [item] = bad(items)
    assert item.source == "<stdin>:2"
    assert isinstance(item.error, RecordError)
    assert item.error.line == 2
    assert str(item.error).startswith("<stdin>:2: ")
    return item


@pytest.mark.parametrize(
    ("line", "error", "words"),
    [
        ('{"a": 1,}', RecordSyntaxError, "not valid JSON at column 9"),
        ("not json", RecordSyntaxError, "fix the line or remove it"),
        ('{"a": "tab\there"}', RecordSyntaxError, "Invalid control character"),
        ('{"v": NaN}', RecordSyntaxError, "NaN is not JSON"),
        ('{"v": [Infinity]}', RecordSyntaxError, "Infinity is not JSON"),
        ('{"v": -Infinity}', RecordSyntaxError, "-Infinity is not JSON"),
        ("[1, 2]", RecordShapeError, "an array in JSON, not an object"),
        ('"text"', RecordShapeError, "a string in JSON, not an object"),
        ("3", RecordShapeError, "a number in JSON"),
        ("null", RecordShapeError, "null in JSON"),
        ('{"n": ' + "1" * 5000 + "}", RecordLimitError, "5,000 digits"),
        ('{"a": ' + "[" * 100_000 + "]" * 100_000 + "}", RecordLimitError, "nested"),
        ('{"a": ' + "[" * 200 + "]" * 200 + "}", RecordLimitError, "more than 200 levels"),
    ],
)
def test_a_bad_line_is_one_bad_record_naming_line_and_fix(line: str, error: type, words: str):
    item = _one_bad(line)
    assert type(item.error) is error
    assert words in str(item.error)
    assert item.id == 2


def test_json_syntax_errors_carry_the_column():
    item = _one_bad('{"a": 1 "b": 2}')
    assert item.error.column == 9  # type: ignore[attr-defined]


def test_nesting_limit_is_the_one_of_json_data_elsewhere():
    for depth in (199, 200):
        text = '{"a": ' + "[" * depth + "]" * depth + "}"
        accepted = bool(good(stdin(text)))
        try:
            loads_bounded(text)
            expected = True
        except DataLimitError:
            expected = False
        assert accepted is expected, depth
    assert accepted is False


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("1.5", "the number 1.5"),
        ("2.0", "the number 2.0"),
        ("true", "the id is true"),
        ("null", "the id is null"),
        ('""', "the id is empty"),
        ('"   "', "the id is blank"),
        ("[1]", "the id is an array"),
        ('{"a": 1}', "the id is an object"),
        ('"a\\nb"', "control character, U+000A"),
        ('"x\\u0000"', "control character, U+0000"),
        ('"\\ud800"', "lone surrogate, U+D800"),
    ],
)
def test_unusable_ids_are_refused_with_what_to_do(value: str, words: str):
    item = _one_bad('{"id": ' + value + ', "x": 1}')
    assert isinstance(item.error, RecordIdError)
    assert words in str(item.error)
    assert "remove the id key to use the line number" in str(item.error)


def test_negative_and_huge_int_ids_are_fine():
    assert [r.id for r in stdin('{"id": -3}\n{"id": ' + "9" * 100 + "}\n")] == [-3, int("9" * 100)]


def test_duplicate_ids_make_the_later_record_bad_and_name_the_first():
    items = stdin(
        '{"id": "a"}\n'  # 1
        '{"id": "a"}\n'  # 2: repeats "a"
        '{"id": 7}\n'  # 3
        '{"id": "7"}\n'  # 4: "7" and 7 clash
        '{"x": 1}\n'  # 5: no id, so 5
        '{"id": 5}\n'  # 6: clashes with line 5's number
        '{"id": 6}\n'  # 7
        '{"x": 2}\n'  # 8: no id, so 8: fine
        '{"id": "07"}\n'  # 9: "07" is not 7
    )
    assert [r.id for r in good(items)] == ["a", 7, 5, 6, 8, "07"]
    dups = bad(items)
    assert [(d.id, d.source) for d in dups] == [
        ("a", "<stdin>:2"),
        ("7", "<stdin>:4"),
        (5, "<stdin>:6"),
    ]
    assert all(isinstance(d.error, DuplicateIdError) for d in dups)
    assert [d.error.first_line for d in dups] == [1, 3, 5]  # type: ignore[attr-defined]
    assert "already used by the record on line 1" in str(dups[0].error)
    assert "named by its number" in str(dups[2].error)


def test_a_record_without_id_clashing_with_an_earlier_id_is_told_to_get_one():
    [_, dup] = stdin('{"id": 2}\n{"x": 1}\n')
    assert isinstance(dup, BadRecord)
    assert "has no id, so its number 2 is its id" in str(dup.error)


def test_line_over_the_size_limit_is_a_bad_record_and_reading_goes_on():
    policy = PathPolicy(max_file_size=100)
    long_line = '{"t": "' + "x" * 200 + '"}'
    items = stdin(f'{{"id": 1}}\n{long_line}\n{{"id": 3}}\n', policy=policy)
    assert [r.id for r in good(items)] == [1, 3]
    [item] = bad(items)
    assert isinstance(item.error, RecordTooLargeError)
    assert isinstance(item.error, FileTooLargeError)  # the family of template size errors
    assert "line 2 is 209 bytes, over the limit of 100 bytes" in str(item.error)
    assert "--max-file-size" in str(item.error)


def test_a_line_exactly_at_the_limit_is_fine_line_ending_not_counted():
    text = '{"t": "' + "x" * 91 + '"}'
    assert len(text) == 100
    assert good(stdin(text + "\r\n", policy=PathPolicy(max_file_size=100)))
    assert bad(stdin(text + " \r\n", policy=PathPolicy(max_file_size=100)))


def test_undecodable_bytes_are_a_bad_record_with_the_byte_offset(work: Path):
    first = b'{"id": 1}\n'
    name = write(work / "l.jsonl", first + b'{"t": "caf\xe9"}\n{"id": 3}\n')
    items = read(name)
    assert [r.id for r in good(items)] == [1, 3]
    [item] = bad(items)
    assert isinstance(item.error, RecordEncodingError)
    assert isinstance(item.error, BinaryFileError)
    assert item.error.offset == len(first) + 10
    assert f"0xe9 at offset {len(first) + 10}" in str(item.error)


def test_a_nul_byte_after_the_first_line_is_a_bad_record(work: Path):
    name = write(work / "n.jsonl", b'{"id": 1}\n{"t": "a\x00"}\n')
    [item] = bad(read(name))
    assert isinstance(item.error, RecordEncodingError)
    assert "NUL byte at offset 18" in str(item.error)  # 10 + len('{"t": "a')


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ('{"a": 1}\n'.encode("utf-16"), "UTF-16"),
        (b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03{}\n", "looks binary (NUL byte at offset 3"),
    ],
)
def test_binary_or_utf16_input_is_fatal(work: Path, data: bytes, words: str):
    name = write(work / "b.jsonl", data)
    with pytest.raises(InputEncodingError, match=words.replace("(", r"\(")):
        list(read_records(name))
    with pytest.raises(InputEncodingError):
        count_records(name)


# --- stdin ---------------------------------------------------------------------------------------


def test_stdin_text_and_binary_streams_give_the_same_records():
    text = '\ufeff{"id": "a", "t": "é"}\r\n{"t": 2}\n'
    from_text = stdin(text)
    from_bytes = stdin(text.encode("utf-8"))
    assert from_text == from_bytes
    assert [r.id for r in from_text] == ["a", 2]


def test_stdin_defaults_to_the_binary_sys_stdin(monkeypatch: pytest.MonkeyPatch):
    fake = io.TextIOWrapper(io.BytesIO(b'{"id": 1}\n'), encoding="utf-8")
    monkeypatch.setattr(sys, "stdin", fake)
    assert [r.id for r in read_records("-")] == [1]


def test_stdin_is_not_closed_and_a_terminal_is_refused():
    stream = io.BytesIO(b'{"id": 1}\n')
    list(read_records("-", stream=stream))
    assert not stream.closed

    class Terminal(io.BytesIO):
        def isatty(self) -> bool:
            return True

    with pytest.raises(InputFileError, match="stdin is a terminal"):
        read_records("-", stream=Terminal())


def test_a_lone_surrogate_in_a_text_stream_is_an_encoding_error_not_a_crash():
    [item] = stdin('{"t": "\ud800"}\n')
    assert isinstance(item, BadRecord)
    assert isinstance(item.error, RecordEncodingError)


def test_a_strict_text_stream_that_cannot_decode_is_fatal():
    stream = io.TextIOWrapper(io.BytesIO(b'{"a": "\xff"}\n'), encoding="utf-8")
    with pytest.raises(InputEncodingError, match="not UTF-8 text"):
        list(read_records("-", stream=stream))


def test_an_io_error_while_reading_is_fatal():
    class Broken(io.BytesIO):
        def readline(self, size: int | None = -1) -> bytes:
            raise OSError(5, "Input/output error")

    with pytest.raises(InputFileError, match="cannot read <stdin>: Input/output error"):
        list(read_records("-", stream=Broken()))


def test_stream_is_only_for_dash(work: Path):
    write(work / "a.jsonl", "{}\n")
    with pytest.raises(ValueError, match="stream="):
        read_records("a.jsonl", stream=io.StringIO("{}"))


# --- CSV ----------------------------------------------------------------------------------------


def test_csv_values_stay_strings_and_ids_are_data_row_numbers(work: Path):
    name = write(
        work / "people.csv",
        "name,age,note\r\n"
        "Ann,31,\r\n"  # line 2, row 1
        "\r\n"  # blank: skipped, not counted
        'Bob,007,"two\r\nlines"\r\n'  # lines 4-5, row 2
        "Cy,1e3\r\n",  # line 6, row 3: a missing trailing cell is ""
    )
    items = read(name)
    assert [(r.id, r.source) for r in items] == [
        (1, "people.csv:2"),
        (2, "people.csv:4"),
        (3, "people.csv:6"),
    ]
    assert [fields(r) for r in items] == [
        {"name": "Ann", "age": "31", "note": ""},
        {"name": "Bob", "age": "007", "note": "two\r\nlines"},
        {"name": "Cy", "age": "1e3", "note": ""},
    ]


def test_csv_id_column_names_records_as_strings_through_a_bom(work: Path):
    name = write(work / "r.csv", b"\xef\xbb\xbfid,first name\n17,Ann\nx-2,Bob\n")
    items = read(name)
    assert [r.id for r in items] == ["17", "x-2"]
    assert isinstance(items[0], Record)
    assert render_template('{{ record["first name"] }}', items[0].variables).text == "Ann"


def test_csv_cells_larger_than_the_csv_modules_default_limit_are_read(work: Path):
    big = "x" * 300_000  # csv's own default is 131,072 characters a cell
    name = write(work / "big.csv", f"a,b\n{big},1\n")
    [record] = read(name)
    assert fields(record) == {"a": big, "b": "1"}


@pytest.mark.parametrize(
    ("row", "error", "words"),
    [
        ("1,2,3", RecordShapeError, "row 2 has 3 cells but the header names 2 columns"),
        ('"a"b,c', RecordSyntaxError, "text follows the closing quote"),
        ("a\rb,c", RecordSyntaxError, "carriage return"),
    ],
)
def test_a_bad_csv_row_is_one_bad_record_and_reading_goes_on(row: str, error: type, words: str):
    items = stdin(f"a,b\nfirst,1\n{row}\nlast,3\n", format="csv")
    assert [fields(r)["a"] for r in good(items)] == ["first", "last"]
    assert [r.id for r in good(items)] == [1, 3]  # the bad row still counts as a row
    [item] = bad(items)
    assert type(item.error) is error
    assert (item.id, item.source) == (2, "<stdin>:3")
    assert words in str(item.error)


def test_csv_quote_never_closed_at_the_end_is_a_bad_record():
    items = stdin('a,b\n1,2\n3,"open\n4,5\n', format="csv")
    assert len(good(items)) == 1
    [item] = bad(items)
    assert item.source == "<stdin>:3"
    assert "never closed" in str(item.error)


def test_csv_record_over_the_limit_stops_the_run_because_its_end_is_unknown():
    body = "".join(f"{i},filler text for the record\n" for i in range(200))
    records = read_records(
        "-",
        format="csv",
        stream=io.StringIO('a,b\n1,2\n3,"never closed\n' + body),
        policy=PathPolicy(max_file_size=1000),
    )
    assert isinstance(next(records), Record)
    with pytest.raises(InputFileError) as info:
        next(records)
    assert info.value.line == 3
    message = str(info.value)
    assert "starting on line 3" in message and "never closed" in message


def test_csv_undecodable_byte_spoils_its_row_only(work: Path):
    name = write(work / "l.csv", b"a,b\nok,1\ncaf\xe9,2\nok,3\n")
    items = read(name)
    assert len(good(items)) == 2
    [item] = bad(items)
    assert isinstance(item.error, RecordEncodingError)
    assert item.error.offset == 12
    assert "0xe9 at offset 12" in str(item.error)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "has no header row"),
        ("\n  \n\r\n", "has no header row"),
        ("a,,b\n1,2,3\n", "column 2 of the header row has no name"),
        ("a,b,\n1,2,\n", "column 3 of the header row has no name"),
        ("a,b,a\n1,2,3\n", "names column 'a' twice (columns 1 and 3)"),
        ('"a"x,b\n', "header row cannot be read"),
    ],
)
def test_csv_without_a_usable_header_is_fatal(text: str, words: str):
    with pytest.raises(CsvHeaderError, match=words.replace("(", r"\(").replace(")", r"\)")):
        stdin(text, format="csv")


def test_csv_header_not_utf8_is_fatal(work: Path):
    name = write(work / "h.csv", b"caf\xe9,b\n1,2\n")
    with pytest.raises(CsvHeaderError, match="offset 3"):
        list(read_records(name))


def test_csv_ids_must_be_present_and_unique():
    items = stdin("id,t\na,1\n,2\n  ,3\na,4\nb,5\n", format="csv")
    assert [r.id for r in good(items)] == ["a", "b"]
    empty, blank, dup = bad(items)
    assert "the id is empty" in str(empty.error)
    assert "every row needs one" in str(empty.error)
    assert "the id is blank" in str(blank.error)
    assert isinstance(dup.error, DuplicateIdError)
    assert (dup.id, dup.source) == ("a", "<stdin>:5")


# --- directories ---------------------------------------------------------------------------------


@pytest.fixture
def docs(work: Path) -> Path:
    for name, text in {
        "a.md": "# A",
        "a-c.md": "dash",  # sorts before a/b.md: "-" < "/"
        "b.txt": "beta",
        ".hidden.md": "hidden",
        "a/b.md": "inner",
        "a/.d.md": "hidden inner",
        ".git/config": "x",
    }.items():
        write(work / "docs" / name, text)
    return work / "docs"


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"recursive": True},
        {"recursive": True, "include_hidden": True},
        {"pattern": "*.md", "recursive": True},
        {"pattern": ["a/*", "*.txt"], "recursive": True},
    ],
)
def test_directory_records_are_the_files_ostruct_run_gives(docs: Path, options: dict[str, Any]):
    policy = PathPolicy()
    items = read("docs", policy=policy, **options)
    expected = collect_directory("docs", PathPolicy(), **options)
    assert all(isinstance(r, Record) for r in items)
    files = [r.variables["file"] for r in items]
    assert all(type(f) is FileInfo for f in files)
    assert files == list(expected)  # same files (FileInfo compares paths), same order
    assert [f.path for f in files] == expected.paths
    assert [r.id for r in items] == [
        os.path.relpath(f.abs_path, docs).replace(os.sep, "/") for f in files
    ]
    assert [r.source for r in items] == expected.paths


def test_directory_ids_and_rendering(docs: Path):
    items = read("docs", recursive=True)
    assert [r.id for r in items] == ["a-c.md", "a.md", "a/b.md", "b.txt"]
    record = items[2]
    assert isinstance(record, Record)
    assert render_template("{{ file.name }}: {{ file }}", record.variables).text == "b.md: inner"


def test_directory_symlink_out_is_a_bad_record_and_never_read(work: Path, tmp_path: Path):
    write(work / "d" / "a.txt", "a")
    (work / "d" / "leak.txt").symlink_to(tmp_path / "outside" / "secret.txt")
    items = read("d")
    assert [r.id for r in good(items)] == ["a.txt"]
    [item] = bad(items)
    assert item.id == "leak.txt"
    assert isinstance(item.error, TemplateSecurityError)
    assert "TOP SECRET" not in str(item.error)


def test_symlinked_subdirectories_are_not_followed(work: Path, tmp_path: Path):
    write(work / "d" / "a.txt", "a")
    (work / "d" / "out").symlink_to(tmp_path / "outside")
    assert [r.id for r in read("d", recursive=True)] == ["a.txt"]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_in_a_directory_is_a_bad_record_and_does_not_hang(work: Path):
    write(work / "d" / "a.txt", "a")
    os.mkfifo(work / "d" / "pipe")
    items = read("d")
    [item] = bad(items)
    assert item.id == "pipe"
    assert isinstance(item.error, TemplateInputError)
    assert "not a regular file" in str(item.error)


def test_file_name_with_a_control_character_is_a_bad_record(work: Path):
    write(work / "d" / "a\nb.txt", "x")
    [item] = read("d")
    assert isinstance(item, BadRecord)
    assert isinstance(item.error, RecordIdError)
    assert "rename the file" in str(item.error)


def test_each_directory_record_has_its_own_total_budget_but_the_file_limit_holds(work: Path):
    for name in ("a.txt", "b.txt", "c.txt"):
        write(work / "d" / name, "x" * 100)
    write(work / "d" / "z.txt", "x" * 300)
    write(work / "d" / "zz.bin", b"\x00\x01")
    policy = PathPolicy(max_file_size=200, max_total_size=150)
    items = read("d", policy=policy)
    contents = [r.variables["file"].content for r in items[:3]]  # type: ignore[union-attr]
    assert contents == ["x" * 100] * 3  # 300 bytes in all, over 150: one budget per record
    assert policy.bytes_read == 0
    with pytest.raises(FileTooLargeError):
        _ = items[3].variables["file"].content  # type: ignore[union-attr]
    with pytest.raises(BinaryFileError):
        _ = items[4].variables["file"].content  # type: ignore[union-attr]


# --- fatal input errors -------------------------------------------------------------------------


def test_missing_input_fails_at_the_call_not_at_the_first_record(work: Path):
    with pytest.raises(InputFileError, match=r"missing\.jsonl does not exist"):
        read_records("missing.jsonl")
    with pytest.raises(InputFileError, match="does not exist"):
        count_records("missing.csv")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_input_is_refused_without_opening_it(work: Path):
    os.mkfifo(work / "p.jsonl")
    with pytest.raises(InputFileError, match="is a FIFO"):
        read_records("p.jsonl")


@pytest.mark.skipif(not os.path.exists("/dev/null"), reason="needs /dev/null")
def test_a_device_input_is_refused(work: Path):
    with pytest.raises(InputFileError, match="is a character device"):
        read_records("/dev/null", format="jsonl", policy=PathPolicy(allowed_dirs=["/dev"]))


def test_inputs_outside_the_allowed_directories_are_refused(work: Path, tmp_path: Path):
    write(tmp_path / "outside" / "r.jsonl", "{}\n")
    with pytest.raises(TemplateSecurityError, match="--allow"):
        read_records("../outside/r.jsonl")
    with pytest.raises(TemplateSecurityError):
        read_records(str(tmp_path / "outside"))
    allowed = PathPolicy(allowed_dirs=[tmp_path / "outside"])
    assert len(read("../outside/r.jsonl", policy=allowed)) == 1


def test_every_input_error_is_an_input_error_exit_code_3():
    errors = [
        InputFileError("x", source="a"),
        CsvHeaderError("x", source="a"),
        RecordSyntaxError("x", source="a", line=1),
        RecordTooLargeError("x", source="a", line=1),
        DuplicateIdError("x", first_line=1, source="a", line=2),
    ]
    assert {classify(e) for e in errors} == {ExitCode.INPUT}
    assert all(isinstance(e, TemplateInputError) and isinstance(e, ValueError) for e in errors)


# --- streaming and memory -----------------------------------------------------------------------


class EndlessRecords(io.RawIOBase):
    """A stream of JSONL that never ends, counting what was read: reading it all never returns."""

    def __init__(self) -> None:
        self.served = 0
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while len(self._pending) < len(buffer):
            self._pending += b'{"text": "%d"}\n' % self.served
        n = len(buffer)
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        self.served += n
        return n


def test_records_stream_from_an_endless_input():
    raw = EndlessRecords()
    records = read_records("-", stream=io.BufferedReader(raw))
    first = list(itertools.islice(records, 5))
    assert [r.id for r in first] == [1, 2, 3, 4, 5]
    assert raw.served <= 64 * 1024  # a buffer's worth, not the whole input


def _peak(run: Any) -> tuple[Any, int]:
    tracemalloc.start()
    try:
        result = run()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_200_mb_file_streams_in_bounded_memory(work: Path):
    path = work / "big.jsonl"
    with path.open("wb") as handle:
        for i in range(1000):  # 30 KB of records, then a 200 MB hole with no newline
            handle.write(b'{"text": "record number %05d"}\n' % i)
        handle.truncate(200 * 1024 * 1024)

    def first() -> Item:
        return next(read_records("big.jsonl"))

    record, peak = _peak(first)
    assert isinstance(record, Record) and record.id == 1
    assert peak < 256 * 1024

    def everything() -> tuple[int, Item]:
        count, last = 0, None
        for item in read_records("big.jsonl"):
            count, last = count + 1, item
        assert last is not None
        return count, last

    (count, last), peak = _peak(everything)
    assert count == 1001
    assert isinstance(last, BadRecord) and isinstance(last.error, RecordTooLargeError)
    assert "200.0 MiB" in str(last.error)
    assert peak < 4 * 1024 * 1024  # the 1 MiB line cap and a chunk, whatever the line's size


# --- round trips ---------------------------------------------------------------------------------

_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | _TEXT,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(_TEXT, children, max_size=3),
    max_leaves=8,
)
_OBJECTS = st.lists(
    st.dictionaries(_TEXT.filter(lambda k: k != "id"), _JSON, max_size=4), max_size=8
)


def _expected_variables(obj: dict[str, Any]) -> dict[str, Any]:
    return obj if "record" in obj else {**obj, "record": obj}


@given(
    objects=_OBJECTS,
    ascii_only=st.booleans(),
    ending=st.sampled_from(["\n", "\r\n"]),
    blanks=st.lists(st.booleans(), max_size=8),
)
def test_jsonl_round_trip(
    objects: list[dict[str, Any]], ascii_only: bool, ending: str, blanks: list[bool]
):
    lines: list[str] = []
    numbers: list[int] = []
    for i, obj in enumerate(objects):
        if i < len(blanks) and blanks[i]:
            lines.append("")
        lines.append(json.dumps(obj, ensure_ascii=ascii_only))
        numbers.append(len(lines))
    data = "".join(line + ending for line in lines).encode("utf-8")
    items = list(read_records("-", stream=io.BytesIO(data)))
    assert [r.id for r in items] == numbers
    assert [dict(r.variables) for r in items] == [_expected_variables(o) for o in objects]  # type: ignore[union-attr]
    assert count_records("-", stream=io.BytesIO(data)) == len(items)


_CELL = st.text(st.characters(blacklist_characters="\0", blacklist_categories=("Cs",)), max_size=10)
_NAME = _CELL.filter(lambda n: bool(n.strip()) and n != "id" and not n.startswith("\ufeff"))


@st.composite
def _tables(draw: Any) -> tuple[list[str], list[list[str]]]:
    header = draw(st.lists(_NAME, min_size=1, max_size=4, unique=True))
    cell = _CELL
    if len(header) == 1:
        # A one-column row of only spaces is written unquoted: a blank line, which is skipped.
        cell = _CELL.filter(lambda c: c == "" or bool(c.encode().strip()))
    rows = draw(st.lists(st.lists(cell, min_size=len(header), max_size=len(header)), max_size=6))
    return header, rows


@given(table=_tables(), ending=st.sampled_from(["\n", "\r\n"]), with_ids=st.booleans())
def test_csv_round_trip(table: tuple[list[str], list[list[str]]], ending: str, with_ids: bool):
    header, rows = table
    if ending == "\n":
        # Python's csv writer quotes a cell holding "\r" only when "\r" ends its lines: it
        # writes malformed CSV otherwise (which the reader refuses, as it should).
        assume(not any("\r" in cell for cell in [*header, *itertools.chain(*rows)]))
    if with_ids:
        header = ["id", *header]
        rows = [[f"r{i}", *row] for i, row in enumerate(rows)]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator=ending)
    writer.writerow(header)
    writer.writerows(rows)
    data = out.getvalue().encode("utf-8")
    items = list(read_records("-", format="csv", stream=io.BytesIO(data)))
    assert all(isinstance(r, Record) for r in items)
    assert [fields(r) for r in items] == [dict(zip(header, row, strict=True)) for row in rows]
    expected_ids = [row[0] for row in rows] if with_ids else list(range(1, len(rows) + 1))
    assert [r.id for r in items] == expected_ids
    assert count_records("-", format="csv", stream=io.BytesIO(data)) == len(items)
