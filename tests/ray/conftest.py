"""One local Ray cluster (2 CPUs, no dashboard) for every test of the Ray Data integration.

The loopback server of each test runs in this process; the actors reach it over 127.0.0.1.
The test modules of this folder are importable in the workers (they name functions and
pydantic models the actors unpickle), through PYTHONPATH in the cluster's runtime env.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent

if importlib.util.find_spec("ray") is None:  # CI installs the [ray] extra: they run there
    collect_ignore = ["test_ray_extract.py", "test_ray_limits.py"]


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[Any]:
    ray = pytest.importorskip("ray")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # no token auth on a local cluster
    path = os.pathsep.join(p for p in (str(HERE), os.environ.get("PYTHONPATH", "")) if p)
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
        runtime_env={"env_vars": {"PYTHONPATH": path, "RAY_AUTH_MODE": "disabled"}},
    )
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    try:
        yield ray
    finally:
        ray.shutdown()
