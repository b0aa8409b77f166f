"""Known template-injection payloads must fail with a security error and read nothing outside.

The payloads are the usual Jinja SSTI ones: climbing from a literal to ``object`` via
``__class__``/``__mro__``/``__subclasses__``, reaching ``os`` through a global's
``__init__.__globals__``, smuggling names through ``attr()``, ``[]`` or ``str.format``, and
escaping the template directory with ``include``/``import``. An audit hook records every file
opened while rendering, so the tests prove no file outside the allowed directories was read,
not only that the output looks clean.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from openai_structured.templates import (
    PathPolicy,
    TemplateError,
    TemplateSecurityError,
    TemplateUndefinedError,
    collect_file,
    render_template,
)

_opened: list[str] | None = None


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if _opened is not None and event == "open" and isinstance(args[0], (str, bytes)):
        _opened.append(args[0] if isinstance(args[0], str) else args[0].decode())


sys.addaudithook(_audit)  # hooks cannot be removed; it only records while a test enables it


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """cwd with a template dir and one input file; a secret file outside; open() recorded."""
    global _opened
    cwd = tmp_path / "cwd"
    (cwd / "tpl").mkdir(parents=True)
    (cwd / "input.txt").write_text("public input")
    secret_dir = tmp_path / "secret"
    secret_dir.mkdir()
    (secret_dir / "key.txt").write_text("CANARY-SECRET")
    monkeypatch.chdir(cwd)
    variables = {"f": collect_file("input.txt", PathPolicy()), "x": 1, "items": [1, 2]}
    _opened = []
    try:
        yield {"cwd": cwd, "tpl": cwd / "tpl", "secret": secret_dir, "vars": variables}
    finally:
        opened, _opened = _opened, None
        leaked = [p for p in opened if str(secret_dir) in p or "passwd" in p]
        assert leaked == [], f"files outside the allowed directories were opened: {leaked}"


def _render(sandbox: dict[str, Any], source: str) -> str:
    path = sandbox["tpl"] / "payload.j2"
    path.write_text(source)
    return render_template(path, sandbox["vars"]).text


PAYLOADS = [
    "{{ ''.__class__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ ''.__class__.__base__.__subclasses__() }}",
    "{{ [].__class__.__base__.__subclasses__() }}",
    "{{ ().__class__.__bases__[0].__subclasses__() }}",
    "{{ {}.__class__.__base__.__subclasses__() }}",
    "{{ x.__class__.mro() }}",
    "{{ dict.mro() }}",
    "{{ dict.__subclasses__() }}",
    "{{ ''.__class__.__mro__[1].__subclasses__()[0].__init__.__globals__ }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ joiner.__init__.__globals__.os.popen('id').read() }}",
    "{{ namespace.__init__.__globals__.os.popen('id').read() }}",
    "{{ range.__class__ }}",
    "{{ range.__globals__ }}",
    "{{ range.__self__ }}",
    "{{ self.__init__.__globals__.__builtins__ }}",
    "{{ self._TemplateReference__context }}",
    "{{ self._TemplateReference__context.cycler.__init__.__globals__.os }}",
    "{{ ''['__class__'] }}",
    "{{ ''|attr('__class__') }}",
    "{{ ''|attr('\\x5f\\x5fclass\\x5f\\x5f') }}",
    "{{ (''|attr('__class__')|attr('__mro__'))[1] }}",
    "{{ '{0.__class__}'.format('') }}",
    "{{ '{0.__class__.__mro__}'.format(x) }}",
    "{{ '{x.__class__}'.format_map({'x': 1}) }}",
    "{{ '%s'|format(''.__class__) }}",
    "{{ ''.join.__self__ }}",
    "{{ items.__iter__ }}",
    "{{ items.pop() }}",
    "{{ items.append(3) }}",
    "{{ {}.update({'a': 1}) }}",
    "{% set c = ''.__class__ %}{{ c }}",
    "{% for i in items %}{{ loop.__class__ }}{% endfor %}",
    "{{ f.__class__ }}",
    "{{ f.__init__.__globals__ }}",
    "{{ f._policy }}",
    "{{ f._read() }}",
    "{{ f|attr('_policy') }}",
    "{{ f.__class__._read }}",
    "{{ f.content.__class__ }}",
    "{{ f.__slots__ }}",
    "{{ x.__dict__ }}",
    "{{ x._private }}",
    "{{ x['__dict__'] }}",
    "{{ x.real.__class__ }}",
    "{{ 'a' * 100000000 }}",
    "{{ 9 ** 999999 }}",
    "{{ 2 ** (9 ** 9) }}",
    "{{ [1] * 100000000 }}",
]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_payload_is_a_security_error(sandbox: dict[str, Any], payload: str):
    with pytest.raises(TemplateSecurityError) as info:
        _render(sandbox, payload)
    assert info.value.filename is not None and info.value.lineno == 1
    assert "CANARY" not in str(info.value)


@pytest.mark.parametrize(
    "payload",
    [
        "{{ config.items() }}",
        "{{ request.application.__globals__ }}",
        "{{ lipsum.__globals__.os }}",
        "{{ url_for.__globals__ }}",
        "{{ get_flashed_messages.__globals__ }}",
        "{{ __builtins__ }}",
        "{{ os.popen('id') }}",
    ],
)
def test_framework_globals_do_not_exist(sandbox: dict[str, Any], payload: str):
    with pytest.raises(TemplateUndefinedError, match="is not defined"):
        _render(sandbox, payload)


@pytest.mark.parametrize(
    "payload",
    [
        "{% include '../../secret/key.txt' %}",
        "{% include '/etc/passwd' %}",
        "{% import '../input.txt' as m %}",
        "{% from '/etc/passwd' import x %}",
        "{% extends '../../secret/key.txt' %}",
        "{% include 'sub/../../input.txt' %}",
        "{% include '..\\\\input.txt' %}",
    ],
)
def test_include_escapes_are_refused(sandbox: dict[str, Any], payload: str):
    with pytest.raises(TemplateSecurityError):
        _render(sandbox, payload)


def test_include_of_a_file_inputs_absolute_path_is_refused(sandbox: dict[str, Any]):
    with pytest.raises(TemplateSecurityError):
        _render(sandbox, "{% include f.abs_path %}")


def test_include_symlink_to_secret_is_refused(sandbox: dict[str, Any]):
    (sandbox["tpl"] / "key.j2").symlink_to(sandbox["secret"] / "key.txt")
    with pytest.raises(TemplateSecurityError):
        _render(sandbox, "{% include 'key.j2' %}")


def test_huge_range_is_refused(sandbox: dict[str, Any]):
    with pytest.raises(TemplateError, match=r"[Rr]ange too big"):
        _render(sandbox, "{% for i in range(10**9) %}{% endfor %}")


def test_filters_cannot_be_used_to_reach_internals(sandbox: dict[str, Any]):
    for source in (
        "{{ [f]|pluck('_policy') }}",
        "{{ [f]|sort_by('__class__') }}",
        "{{ [f]|group_by('__init__') }}",
    ):
        with pytest.raises(TemplateSecurityError):
            _render(sandbox, source)


def test_legitimate_templates_still_work(sandbox: dict[str, Any]):
    source = (
        "{{ f.name }}:{{ f.content|upper }}|{{ '{} {}'.format('a', 1) }}|{{ '%03d'|format(7) }}"
        "|{{ items|map('string')|join(',') }}|{% set ns = namespace(n=0) %}"
        "{% for i in items %}{% set ns.n = ns.n + i %}{% endfor %}{{ ns.n }}|{{ 2 ** 10 }}"
        "|{{ 'ab' * 3 }}|{{ dict(a=1).items()|list }}"
    )
    assert _render(sandbox, source) == (
        "input.txt:PUBLIC INPUT|a 1|007|1,2|3|1024|ababab|[('a', 1)]"
    )


def test_dict_keys_starting_with_underscore_are_data(sandbox: dict[str, Any]):
    sandbox["vars"]["d"] = {"_id": 7}
    assert _render(sandbox, "{{ d._id }} {{ d['_id'] }} {{ [d]|pluck('_id') }}") == "7 7 [7]"
    with pytest.raises(TemplateUndefinedError):
        _render(sandbox, "{{ d._missing }}")
