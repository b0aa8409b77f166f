"""A Batch API run in a child process that kills itself with SIGKILL at the N-th time it
reaches a given step of the protocol (``_step`` seams in ``bulk._batch``).

    python batch_crash_child.py BASE_URL OUT N_RECORDS MAX_LINES [STEP OCCURRENCE]
"""

from __future__ import annotations

import os
import signal
import sys

import openai

from openai_structured.bulk import BulkRun, BulkStopped, OpenAIBatch, _batch

SCHEMA = {
    "type": "object",
    "properties": {"n": {"type": "integer"}},
    "required": ["n"],
    "additionalProperties": False,
}


def main() -> int:
    base_url, out, n, max_lines = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    if len(sys.argv) > 5:
        step, occurrence = sys.argv[5], int(sys.argv[6])
        seen = 0

        def crash(name: str) -> None:
            nonlocal seen
            if name == step:
                seen += 1
                if seen == occurrence:
                    os.kill(os.getpid(), signal.SIGKILL)

        _batch._step = crash
    client = openai.AsyncOpenAI(base_url=base_url, api_key="sk-fake-openai-structured-testing")
    run = BulkRun(
        model="gpt-4o-mini",
        schema=SCHEMA,
        request=lambda r: {"user_prompt": f"record {r['n']}"},
        client=client,
        output=out,
        backend=OpenAIBatch(poll_interval=0.0, max_poll_interval=0.01, max_lines=max_lines),
    )
    try:
        for _ in run.run([{"id": i, "n": i} for i in range(n)]):
            pass
    except BulkStopped as exc:
        print(exc, file=sys.stderr)
        return 10
    return 0


if __name__ == "__main__":
    sys.exit(main())
