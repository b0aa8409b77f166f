"""The ``[ray]`` extra: ``openai_structured.bulk`` never imports ray, and the Ray module says
how to install it when ray is missing. Each check in a fresh interpreter."""

from __future__ import annotations

import subprocess
import sys

import pytest


def run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )


def test_the_bulk_package_does_not_import_ray() -> None:
    done = run(
        "import sys, openai_structured.bulk, openai_structured.cli\n"
        "assert 'ray' not in sys.modules and 'pyarrow' not in sys.modules, 'imported'"
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("missing", ["ray", "pyarrow"])
def test_without_ray_the_module_says_how_to_install_it(missing: str) -> None:
    done = run(
        f"import sys; sys.modules[{missing!r}] = None\n"
        "try:\n"
        "    import openai_structured.bulk.ray\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
        "else:\n"
        "    raise SystemExit('imported')"
    )
    assert done.returncode == 0, done.stderr
    assert "pip install 'openai-structured[ray]'" in done.stdout
