"""Shared benchmark plumbing: a loopback server in its own process, and CPU timing.

The server runs as a separate process (``python -m openai_structured.testing``) so that only
the client's work is measured. Times are CPU seconds of the measuring thread
(``time.thread_time``), the figure that does not depend on the server or the other core.
"""

from __future__ import annotations

import contextlib
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator


@contextlib.contextmanager
def served(*args: str) -> Iterator[str]:
    """Start the loopback server with these arguments; yield its base URL."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "openai_structured.testing", *args],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        if not url.startswith("http"):
            raise RuntimeError(f"the loopback server did not start (said {url!r})")
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def cpu(fn: Callable[[], object]) -> float:
    """CPU seconds this thread spent running ``fn`` once."""
    start = time.thread_time()
    fn()
    return time.thread_time() - start


def compare(contenders: dict[str, Callable[[], object]], *, rounds: int) -> dict[str, float]:
    """Median CPU seconds per contender; rounds are interleaved so drift hits all alike."""
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, fn in contenders.items():
            samples[name].append(cpu(fn))
    return {name: statistics.median(values) for name, values in samples.items()}
