"""Run every benchmark, each against its peers in the same run.

    python benchmarks/run.py            # all of them
    python benchmarks/run.py call       # only bench_call.py (also: stream, parser, bulk, batch)
    python benchmarks/run.py local      # the embedded model (needs the [local] extra)

Each script takes its own options (``--help``) when run directly. Figures and the command
that produced them are recorded in docs/benchmarks.md.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
BENCHMARKS = {
    "call": "bench_call.py",
    "stream": "bench_stream.py",
    "parser": "bench_parser.py",
    "bulk": "bench_bulk.py",
    "batch": "bench_batch.py",
    # The embedded model (needs the [local] extra): grammar on/off, our server vs in-process.
    "local": "bench_local.py",
}


def main(argv: list[str]) -> int:
    names = argv or list(BENCHMARKS)
    status = 0
    for name in names:
        script = HERE / BENCHMARKS[name]
        print(f"\n=== {name}: {script.name} ===", flush=True)
        status |= subprocess.call([sys.executable, str(script)], cwd=HERE)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
