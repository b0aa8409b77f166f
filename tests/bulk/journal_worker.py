"""A bulk run in miniature for the journal's crash tests: run as a script, killed with SIGKILL.

    python journal_worker.py OUTPUT --count N [--variant V] [--fail-every M] [--sleep S]
                             [--crash MODE --at K] [--hold]

For every record it prints ``done <id>`` (flushed) once ``record_*`` has returned, so the test
knows which records were finished before the kill. ``--crash`` makes the process kill itself at
an exact point of the protocol, through the journal's seams (``_append``, ``_replace``):

- ``after-records``: after the K-th finished record;
- ``before-append``: in the K-th record, after the journal commit, before the output write;
- ``torn``: in the K-th record, after writing half of its line;
- ``after-append``: in the K-th record, after the output write, before ``record_*`` returns;
- ``before-replace`` / ``after-replace``: around the ``os.replace`` of the rewrite in ``close()``.

``--hold`` opens the journal, prints ``ready`` and sleeps (the lock tests).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from typing import Any

from openai_structured.bulk._journal import Journal, record_key


def key_of(record_id: int, variant: str = "a") -> str:
    """The key the runner would compute: the prompt changes with the variant."""
    messages = [{"role": "user", "content": f"record {record_id} ({variant})"}]
    return record_key("gpt-4o", {"temperature": 0}, {"type": "object"}, messages)


def result_of(record_id: int, variant: str = "a") -> dict[str, Any]:
    return {"n": record_id, "variant": variant, "text": "é\u2028" * (record_id % 5)}


def die() -> None:
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


class CrashingJournal(Journal):
    crash = ""
    at = 0
    appends = 0

    def _append(self, data: bytes) -> None:
        self.appends += 1
        if self.appends != self.at:
            super()._append(data)
        elif self.crash == "before-append":
            die()
        elif self.crash == "torn":
            os.write(self._out_fd, data[: len(data) // 2])
            die()
        elif self.crash == "after-append":
            super()._append(data)
            die()
        else:
            super()._append(data)

    def _replace(self) -> None:
        if self.crash == "before-replace":
            die()
        super()._replace()
        if self.crash == "after-replace":
            die()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("output")
    p.add_argument("--count", type=int, default=20)
    p.add_argument("--variant", default="a")
    p.add_argument("--fail-every", type=int, default=0)
    p.add_argument("--sleep", type=float, default=0.0)
    p.add_argument("--crash", default="")
    p.add_argument("--at", type=int, default=0)
    p.add_argument("--hold", action="store_true")
    args = p.parse_args()
    CrashingJournal.crash, CrashingJournal.at = args.crash, args.at
    journal = CrashingJournal.open(args.output)
    if args.hold:
        print("ready", flush=True)
        time.sleep(60)
        return
    done = 0
    for i in range(args.count):
        key = key_of(i, args.variant)
        if journal.is_done(i, key):
            continue
        if args.fail_every and i % args.fail_every == 0:
            journal.record_failed(i, key, "RateLimitError", "slow down", attempts=3)
        else:
            journal.record_ok(i, key, result_of(i, args.variant), prompt_tokens=10)
        print(f"done {i}", flush=True)
        done += 1
        if args.crash == "after-records" and done == args.at:
            die()
        if args.sleep:
            time.sleep(args.sleep)
    journal.close()
    print("closed", flush=True)


if __name__ == "__main__":
    main()
