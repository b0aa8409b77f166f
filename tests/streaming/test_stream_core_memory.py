"""Memory is bounded by ``StreamConfig.max_buffer_size`` end to end (issue 10, item 3).

Each attack runs in a child process that feeds a ``StreamDecoder`` directly (no server) in 64 KiB
reads generated lazily, each read a fresh bytes object (the child never holds the whole answer),
and measures its peak RSS (``resource.getrusage(RUSAGE_SELF).ru_maxrss``) before and after. With
``max_buffer_size`` = 1 MiB the growth must stay under ``4 x 1 MiB + 16 MiB``: 4x the limit (the
SSE event bound is ``4 * max_buffer_size + 64 KiB``) plus a fixed 16 MiB allowance for the
interpreter's allocator, the few transient copies of one bounded event (joined, sliced, decoded)
and the error's own copies. The child is started through a tiny launcher, so that its
``ru_maxrss`` starts at its own size, not at the test runner's peak (see ``LAUNCHER``).

Measured (this change; before it, in brackets): one 100 MB event 3.9 MiB (199 MiB), a 100 MB
line that never ends 3.2 MiB (199 MiB), 100 MB of comment lines without a blank line 3.9 MiB
(299 MiB), 4 MiB deltas 15.9 MiB (496 MiB), a 50 MB refusal 0.6 MiB (100 MiB) in either API, a
100 MB Responses ``output_text.done`` 3.2 MiB (199 MiB), 4.2 million small values 7.5 MiB
(432 MiB).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from typing import Any

import pytest

MiB = 1024 * 1024
LIMIT = 1 * MiB
ALLOWANCE = 16 * MiB
BOUND = 4 * LIMIT + ALLOWANCE

CHILD = textwrap.dedent(
    """
    import json, resource, sys
    from openai_structured.errors import BufferOverflowError
    from openai_structured.streaming import StreamConfig, StreamDecoder

    READ = 64 * 1024
    case, total = sys.argv[1], int(sys.argv[2])

    def filler(n, i):
        # A fresh object per read, so a decoder that keeps reads really holds their bytes.
        return (b"%08d" % i + b"a" * n)[:n]

    def endless(head, total):
        yield head
        i = 0
        sent = len(head)
        while sent < total:
            yield filler(READ, i)
            sent += READ
            i += 1

    def events(make, total):
        # Events of one read each: make(i) is the event's data, padded to ~READ bytes.
        sent = i = 0
        while sent < total:
            data = make(i)
            sent += len(data)
            i += 1
            yield data

    def chat(key, text):
        return b'data: {"choices":[{"index":0,"delta":{"%s":"%s"}}]}\\n\\n' % (key, text)

    def responses(kind, text):
        return b'data: {"type":"%s","delta":"%s"}\\n\\n' % (kind, text)

    # The data of a chat event whose content opens a string value: {"a": "...
    OPEN_ANSWER = b'data: {"choices":[{"index":0,"delta":{"content":"{\\\\"a\\\\": \\\\"'
    api = "chat"
    if case == "one_event_answer":  # one SSE event whose content never closes
        reads = endless(OPEN_ANSWER, total)
    elif case == "endless_line":  # one line that never ends
        reads = endless(b"data: ", total)
    elif case == "endless_comment_lines":  # an event that never ends: lines, no blank line
        reads = endless(b": x", total)
        reads = (r.replace(b"a", b"\\n: ", 1) for r in reads)
    elif case == "many_events_answer":  # one answer value spread over many normal deltas
        def make(i):
            head = b'{\\\\"a\\\\": \\\\"' if i == 0 else b""
            return chat(b"content", head + filler(READ - 64, i))
        reads = events(make, total)
    elif case == "big_delta_answer":  # deltas just under the SSE event limit, never closing
        def make(i):
            return (OPEN_ANSWER if i == 0 else b'data: {"choices":[{"index":0,"delta":'
                    b'{"content":"') + b"a" * (4 * 1024 * 1024) + b'"}}]}\\n\\n'
        reads = (r[j : j + READ] for r in events(make, total) for j in range(0, len(r), READ))
    elif case == "chat_refusal":
        reads = events(lambda i: chat(b"refusal", filler(READ - 64, i)), total)
    elif case == "responses_refusal":
        api = "responses"
        reads = events(lambda i: responses(b"response.refusal.delta", filler(READ - 64, i)), total)
    elif case == "responses_final_event":  # a *.done event repeating a huge text
        api = "responses"
        reads = endless(b'event: response.output_text.done\\ndata: {"type":'
                        b'"response.output_text.done","text":"', total)
    elif case == "many_values":  # every completed value used to stay in decoder.results
        def make(i):
            return chat(b"content", b"[0] " * ((READ - 64) // 4))
        reads = events(make, total)
    else:
        raise SystemExit("unknown case " + case)

    decoder = StreamDecoder(api=api, config=StreamConfig(max_buffer_size=@LIMIT@))
    decoder.feed(b"")  # warm up every code path's imports
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with open("/proc/self/statm") as f:
        now = int(f.read().split()[1]) * resource.getpagesize() // 1024
    outcome = "no error"
    fed = 0
    try:
        for chunk in reads:
            fed += len(chunk)
            decoder.feed(chunk)
        if case != "many_values":  # (that one is cut off: only its values are measured)
            decoder.close()
    except BufferOverflowError as exc:
        outcome = "BufferOverflowError"
    except Exception as exc:
        outcome = type(exc).__name__ + ": " + str(exc)[:200]
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({
        "outcome": outcome,
        "growth": (after - before) * 1024,
        "before": before * 1024,
        "rss_at_start": now * 1024,
        "fed": fed,
        "state": decoder.state.value,
        "results": len(decoder.results),
        "values": getattr(decoder, "values_completed", len(decoder.results)),
    }))
    """
).replace("@LIMIT@", str(LIMIT))


# On Linux a process's ru_maxrss starts at the peak of the process it was exec'ed from (the
# kernel carries it over), so a child of the test runner would start at pytest's own peak and
# hide any growth. A tiny launcher in between gives the measured child a clean start.
LAUNCHER = "import subprocess, sys; sys.exit(subprocess.run(sys.argv[1:]).returncode)"


def run_child(case: str, total: int) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-c", LAUNCHER, sys.executable, "-c", CHILD, case, str(total)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    # The baseline is the child's own peak (not inherited): close to its resident size then.
    assert result["before"] < result["rss_at_start"] + 16 * MiB, result
    return result


@pytest.mark.parametrize(
    ("case", "total"),
    [
        ("one_event_answer", 100 * MiB),
        ("endless_line", 100 * MiB),
        ("endless_comment_lines", 100 * MiB),
        ("many_events_answer", 100 * MiB),
        ("big_delta_answer", 100 * MiB),
        ("chat_refusal", 50 * MiB),
        ("responses_refusal", 50 * MiB),
        ("responses_final_event", 100 * MiB),
    ],
)
def test_a_hostile_stream_overflows_within_a_small_multiple_of_the_limit(
    case: str, total: int
) -> None:
    result = run_child(case, total)
    assert result["outcome"] == "BufferOverflowError", result
    assert result["state"] == "error"
    assert isinstance(result["growth"], int)
    assert result["growth"] < BOUND, result
    # It stopped reading near the limit, not at the end of the attack.
    assert isinstance(result["fed"], int)
    assert result["fed"] < 4 * LIMIT + 2 * MiB, result


def test_many_completed_values_keep_bounded_results() -> None:
    result = run_child("many_values", 16 * MiB)
    assert result["outcome"] == "no error", result  # the values are fine, just many
    assert isinstance(result["values"], int) and result["values"] > 4_000_000
    assert isinstance(result["results"], int) and result["results"] < (LIMIT + 64 * 1024) // 64
    assert isinstance(result["growth"], int) and result["growth"] < BOUND, result
