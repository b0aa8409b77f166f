"""Every Python example in the docs that promise runnable examples runs, as written.

The examples drive the library through the loopback server and assert what they show, so a
change that breaks one breaks this test.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"
RUNNABLE = ("tools.md", "retries-and-usage.md")
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def _examples() -> list[tuple[str, int, str]]:
    found = []
    for name in RUNNABLE:
        text = (DOCS / name).read_text(encoding="utf-8")
        for number, match in enumerate(_BLOCK.finditer(text), 1):
            found.append((name, number, match.group(1)))
    return found


EXAMPLES = _examples()


def test_every_runnable_doc_has_examples() -> None:
    assert {name for name, _, _ in EXAMPLES} == set(RUNNABLE)


@pytest.mark.parametrize(
    ("name", "number", "code"), EXAMPLES, ids=[f"{n}-{i}" for n, i, _ in EXAMPLES]
)
def test_doc_example_runs(name: str, number: int, code: str) -> None:
    compiled = compile(code, f"docs/{name} example {number}", "exec")
    exec(compiled, {"__name__": f"doc_example_{number}"})
