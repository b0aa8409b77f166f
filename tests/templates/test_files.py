"""File inputs: FileInfo, directories, -V/-J specs, stdin, path policy, size limits, binary."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import pytest

from openai_structured.templates import (
    BinaryFileError,
    FileInfo,
    FileInfoList,
    FileTooLargeError,
    PathPolicy,
    TemplateInputError,
    TemplateSecurityError,
    collect_directory,
    collect_file,
    collect_inputs,
    parse_file_spec,
    parse_json_spec,
    parse_value_spec,
    read_stdin,
    render_template,
    stdin_text,
)


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory (cwd) with a few files, and a sibling directory outside it."""
    cwd = tmp_path / "work"
    (cwd / "docs" / "sub").mkdir(parents=True)
    (cwd / "docs" / "a.md").write_text("# A\nalpha\n")
    (cwd / "docs" / "b.txt").write_text("beta")
    (cwd / "docs" / ".hidden.md").write_text("hidden")
    (cwd / "docs" / "sub" / "c.md").write_text("gamma")
    (cwd / "notes.tar.gz").write_text("x")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("TOP SECRET")
    monkeypatch.chdir(cwd)
    return cwd


# --- FileInfo --------------------------------------------------------------------------------


def test_fileinfo_attributes(work: Path):
    info = collect_file("docs/a.md", PathPolicy())
    assert info.path == os.path.join("docs", "a.md")
    assert info.abs_path == str(work / "docs" / "a.md")
    assert (info.name, info.stem, info.extension) == ("a.md", "a", "md")
    assert info.size == len("# A\nalpha\n")
    assert info.content == "# A\nalpha\n"
    assert info.lines == ["# A", "alpha"]
    assert str(info) == info.content
    assert repr(info) == f"FileInfo({info.path!r})"


def test_fileinfo_extension_of_multi_suffix_and_none(work: Path):
    info = collect_file("notes.tar.gz", PathPolicy())
    assert (info.stem, info.extension) == ("notes.tar", "gz")
    (work / "Makefile").write_text("all:")
    assert collect_file("Makefile", PathPolicy()).extension == ""


def test_content_is_not_read_until_used(work: Path, monkeypatch: pytest.MonkeyPatch):
    policy = PathPolicy()
    info = collect_file("docs/a.md", policy)
    calls = []
    original = FileInfo._read

    def counting(self: FileInfo) -> str:
        calls.append(self.path)
        return original(self)

    monkeypatch.setattr(FileInfo, "_read", counting)
    assert render_template("{{ f.name }} {{ f.size }}", {"f": info}).text == "a.md 10"
    assert calls == [] and policy.bytes_read == 0
    assert render_template("{{ f.content }}{{ f }}{{ f.lines|length }}", {"f": info}).text
    assert calls == [os.path.join("docs", "a.md")]  # read once, then cached
    assert policy.bytes_read == 10


def test_unreadable_file_only_fails_when_content_is_used(work: Path):
    path = work / "docs" / "locked.md"
    path.write_text("x")
    info = collect_file(path, PathPolicy())
    path.unlink()  # the read would now fail
    assert render_template("{{ f.name }}", {"f": info}).text == "locked.md"
    with pytest.raises(TemplateInputError, match="cannot read"):
        render_template("{{ f.content }}", {"f": info})


def test_missing_file_and_directory_given_as_file(work: Path):
    with pytest.raises(TemplateInputError, match=r"file not found: nope.txt"):
        collect_file("nope.txt", PathPolicy())
    with pytest.raises(TemplateInputError, match="-d NAME=DIR"):
        collect_file("docs", PathPolicy())


def test_fileinfo_in_template_exposes_only_documented_attributes(work: Path):
    info = collect_file("docs/a.md", PathPolicy())
    for attribute in ("_policy", "_read", "__init__", "__class__", "_abs"):
        with pytest.raises(TemplateSecurityError):
            render_template(f"{{{{ f.{attribute} }}}}", {"f": info})


def test_fileinfo_tojson_gives_path_and_content(work: Path):
    info = collect_file("docs/b.txt", PathPolicy())
    assert render_template("{{ f|tojson(None) }}", {"f": info}).text == (
        '{"path": "' + os.path.join("docs", "b.txt") + '", "content": "beta"}'
    )


def test_fileinfo_in_table_cell_shows_path(work: Path):
    info = collect_file("docs/b.txt", PathPolicy())
    out = render_template("{{ table(['file'], [[f]]) }}", {"f": info}).text
    assert "docs" in out and "beta" not in out


# --- directories -----------------------------------------------------------------------------


def test_directory_lists_files_sorted_skipping_hidden_and_subdirs(work: Path):
    files = collect_directory("docs", PathPolicy())
    assert isinstance(files, FileInfoList)
    assert files.names == ["a.md", "b.txt"]


def test_directory_glob_and_recursive(work: Path):
    assert collect_directory("docs", PathPolicy(), pattern="*.md").names == ["a.md"]
    recursive = collect_directory("docs", PathPolicy(), pattern="*.md", recursive=True)
    assert recursive.paths == [os.path.join("docs", "a.md"), os.path.join("docs", "sub", "c.md")]
    only_sub = collect_directory("docs", PathPolicy(), pattern="sub/*", recursive=True)
    assert only_sub.names == ["c.md"]
    several = collect_directory("docs", PathPolicy(), pattern=["*.txt", "a.*"])
    assert several.names == ["a.md", "b.txt"]


def test_directory_include_hidden(work: Path):
    files = collect_directory("docs", PathPolicy(), include_hidden=True)
    assert files.names == [".hidden.md", "a.md", "b.txt"]


def test_directory_in_template_iterates_and_str_joins(work: Path):
    files = collect_directory("docs", PathPolicy())
    out = render_template(
        "{% for f in d %}{{ f.name }}={{ f.content|length }};{% endfor %}", {"d": files}
    ).text
    assert out == "a.md=10;b.txt=4;"
    joined = render_template("{{ d }}", {"d": files}).text
    assert joined == f"# {files[0].path}\n# A\nalpha\n\n\n# {files[1].path}\nbeta"
    assert render_template("{{ d.names|join(',') }}", {"d": files}).text == "a.md,b.txt"


def test_directory_errors(work: Path):
    with pytest.raises(TemplateInputError, match="does not exist"):
        collect_directory("nope", PathPolicy())
    with pytest.raises(TemplateInputError, match="is not a directory"):
        collect_directory("notes.tar.gz", PathPolicy())


def test_directory_with_symlink_out_is_refused(work: Path, tmp_path: Path):
    (work / "docs" / "leak.md").symlink_to(tmp_path / "outside" / "secret.txt")
    with pytest.raises(TemplateSecurityError, match=r"leak.md"):
        collect_directory("docs", PathPolicy())


def test_symlinked_subdirectory_is_not_followed(work: Path, tmp_path: Path):
    (work / "docs" / "linkdir").symlink_to(tmp_path / "outside")
    files = collect_directory("docs", PathPolicy(), recursive=True)
    assert "secret.txt" not in files.names


# --- path policy -----------------------------------------------------------------------------


def test_dotdot_escape_is_refused_with_allow_hint(work: Path, tmp_path: Path):
    with pytest.raises(TemplateSecurityError) as info:
        collect_file("../outside/secret.txt", PathPolicy())
    message = str(info.value)
    assert "outside the allowed directories" in message
    assert f"--allow {tmp_path / 'outside'}" in message
    assert info.value.path == "../outside/secret.txt"


def test_absolute_path_elsewhere_is_refused(work: Path):
    with pytest.raises(TemplateSecurityError):
        collect_file("/etc/passwd", PathPolicy())


def test_symlink_leading_out_is_refused(work: Path, tmp_path: Path):
    (work / "innocent.txt").symlink_to(tmp_path / "outside" / "secret.txt")
    with pytest.raises(TemplateSecurityError, match="resolves to"):
        collect_file("innocent.txt", PathPolicy())


def test_symlink_inside_allowed_dir_is_fine(work: Path):
    (work / "alias.md").symlink_to(work / "docs" / "a.md")
    assert collect_file("alias.md", PathPolicy()).content.startswith("# A")


def test_allowed_dirs_permit_outside_files(work: Path, tmp_path: Path):
    policy = PathPolicy(allowed_dirs=[tmp_path / "outside"])
    info = collect_file(tmp_path / "outside" / "secret.txt", policy)
    assert info.path == str(tmp_path / "outside" / "secret.txt")  # absolute: outside cwd
    assert info.content == "TOP SECRET"


def test_prefix_sibling_directory_is_not_allowed(work: Path, tmp_path: Path):
    sibling = tmp_path / "work2"
    sibling.mkdir()
    (sibling / "x.txt").write_text("x")
    with pytest.raises(TemplateSecurityError):
        collect_file(sibling / "x.txt", PathPolicy())


def test_file_swapped_for_symlink_after_collection_is_refused_on_read(work: Path, tmp_path: Path):
    target = work / "swap.txt"
    target.write_text("fine")
    info = collect_file("swap.txt", PathPolicy())
    target.unlink()
    target.symlink_to(tmp_path / "outside" / "secret.txt")
    with pytest.raises(TemplateSecurityError):
        render_template("{{ f.content }}", {"f": info})


def test_policy_rejects_non_positive_limits():
    with pytest.raises(ValueError):
        PathPolicy(max_file_size=0)


# --- size limits and binary ------------------------------------------------------------------


def test_per_file_size_limit(work: Path):
    (work / "big.txt").write_text("x" * 2000)
    info = collect_file("big.txt", PathPolicy(max_file_size=1000))
    assert info.size == 2000  # knowing the size does not need a read
    with pytest.raises(FileTooLargeError, match=r"big.txt is 2\.0 KiB, over the per-file limit"):
        render_template("{{ f }}", {"f": info})


def test_total_size_limit_counts_across_files(work: Path):
    policy = PathPolicy(max_file_size=100, max_total_size=12)
    files = collect_directory("docs", policy)
    with pytest.raises(FileTooLargeError, match="over the total limit of 12 bytes") as info:
        render_template("{% for f in d %}{{ f }}{% endfor %}", {"d": files})
    assert "b.txt" in str(info.value)


def test_default_limits():
    policy = PathPolicy()
    assert (policy.max_file_size, policy.max_total_size) == (1024 * 1024, 10 * 1024 * 1024)


def test_binary_files_refused(work: Path):
    (work / "nul.bin").write_bytes(b"abc\0def")
    (work / "latin1.txt").write_bytes("café".encode("latin-1"))
    with pytest.raises(BinaryFileError, match="NUL byte at offset 3"):
        collect_file("nul.bin", PathPolicy()).content  # noqa: B018
    with pytest.raises(BinaryFileError, match=r"not UTF-8 text.*offset 3"):
        collect_file("latin1.txt", PathPolicy()).content  # noqa: B018


def test_utf8_bom_is_dropped(work: Path):
    (work / "bom.txt").write_bytes(b"\xef\xbb\xbfhi")
    assert collect_file("bom.txt", PathPolicy()).content == "hi"


# --- -V / -J / -f specs ----------------------------------------------------------------------


def test_value_spec_keeps_everything_after_first_equals():
    assert parse_value_spec("q=a=b ") == ("q", "a=b ")
    assert parse_value_spec("empty=") == ("empty", "")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("noequals", "expects NAME=VALUE"),
        ("1x=a", "invalid variable name '1x'"),
        ("my-var=a", "invalid variable name 'my-var'"),
        ("_x=a", "starting with '_'"),
        ("true=a", "reserved word"),
        ("for=a", "reserved word"),
        ("=a", "invalid variable name ''"),
    ],
)
def test_value_spec_errors(spec: str, message: str):
    with pytest.raises(TemplateInputError, match=message):
        parse_value_spec(spec)


def test_json_spec_parses_values():
    assert parse_json_spec('cfg={"limit": 3, "tags": ["a"]}') == (
        "cfg",
        {"limit": 3, "tags": ["a"]},
    )
    assert parse_json_spec("n=1.5") == ("n", 1.5)


def test_json_spec_error_gives_position_and_hint():
    with pytest.raises(TemplateInputError) as info:
        parse_json_spec("cfg={'a': 1}")
    message = str(info.value)
    assert "-J cfg: invalid JSON at line 1 column 2" in message
    assert "double quotes" in message


def test_file_spec_requires_path():
    assert parse_file_spec("doc=a.md") == ("doc", "a.md")
    with pytest.raises(TemplateInputError, match="path after '=' is empty"):
        parse_file_spec("doc=")


# --- stdin and collect_inputs ----------------------------------------------------------------


def test_read_stdin_returns_none_for_a_terminal():
    class Tty(io.BytesIO):
        def isatty(self) -> bool:
            return True

    assert read_stdin(Tty(b"x")) is None


def test_read_stdin_reads_piped_text_and_counts_it():
    policy = PathPolicy()
    assert read_stdin(io.BytesIO("héllo".encode()), policy) == "héllo"
    assert policy.bytes_read == 6
    assert read_stdin(io.StringIO("text")) == "text"


def test_read_stdin_limits_and_binary():
    with pytest.raises(FileTooLargeError, match="stdin"):
        read_stdin(io.BytesIO(b"x" * 50), PathPolicy(max_file_size=10))
    with pytest.raises(BinaryFileError, match="stdin"):
        stdin_text(b"\0")


def test_collect_inputs_builds_all_variables(work: Path):
    policy = PathPolicy()
    variables = collect_inputs(
        files=["doc=docs/a.md"],
        dirs=["all=docs"],
        values=["lang=en"],
        json_values=['cfg={"n": 2}'],
        stdin=stdin_text("piped", policy),
        policy=policy,
        pattern="*.txt",
    )
    assert set(variables) == {"doc", "all", "lang", "cfg", "stdin"}
    assert isinstance(variables["doc"], FileInfo)
    assert variables["all"].names == ["b.txt"]
    source = "{{ doc.name }} {{ all|length }} {{ lang }} {{ cfg.n }} {{ stdin }}"
    assert render_template(source, variables).text == "a.md 1 en 2 piped"


def test_collect_inputs_refuses_duplicate_names(work: Path):
    with pytest.raises(TemplateInputError, match=r"'x' is given twice \(-f and -V\)"):
        collect_inputs(files=["x=docs/a.md"], values=["x=1"])


def test_collect_inputs_defaults_to_cwd_policy(work: Path):
    with pytest.raises(TemplateSecurityError):
        collect_inputs(files=["s=../outside/secret.txt"])


def test_collect_inputs_nothing_given() -> None:
    assert collect_inputs() == {}


def test_template_values_are_plain(render: Any):
    assert render("{{ v|upper }}", v="x") == "X"
