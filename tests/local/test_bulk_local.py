"""Bulk runs on the embedded model (no key set): one request at a time, every record answered.

The embedded server answers one request at a time on this machine's cores; the runner takes
its concurrency from the llama.cpp profile (1) instead of flooding it. ``ostruct batch`` runs
as a real process with no provider variables set, as a user without a key would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from local_support import require_local_extra
from pydantic import BaseModel

from openai_structured.bulk import BulkRun
from openai_structured.errors import OpenAIClientError
from openai_structured.local import LocalModelServer
from openai_structured.local import _shared as shared

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "bulk"
PROVIDER_VARS = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "AZURE_OPENAI_ENDPOINT")


class City(BaseModel):
    city: str


def test_a_bulk_run_without_a_client_runs_one_request_at_a_time_on_the_embedded_model(
    local_server: LocalModelServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in (*PROVIDER_VARS, "OPENAI_STRUCTURED_LOCAL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(shared, "_server", local_server)  # no second model loaded
    texts = {"a": "I live in Paris.", "b": "She moved to Berlin last year.", "c": "Rome, 1990."}
    run = BulkRun(
        model="gpt-4o-mini",
        output_schema=City,
        request=lambda r: {"user_prompt": f"Which city? {r['text']}"},
        temperature=0,
        max_output_tokens=60,
    )
    outcomes = list(run.run({"id": k, "text": v} for k, v in texts.items()))
    assert run.limiter is not None and run.limiter.max_in_flight == 1
    assert sorted(o.id for o in outcomes) == ["a", "b", "c"]
    # The 270M model sometimes rambles past the limit: a typed per-record error, not a stop.
    assert all(
        isinstance(o.value, City) if o.ok else isinstance(o.error, OpenAIClientError)
        for o in outcomes
    ), outcomes
    assert any(o.ok for o in outcomes), outcomes


def test_ostruct_batch_with_no_key_set_runs_the_example_on_the_embedded_model(
    tmp_path: Path,
) -> None:
    require_local_extra()
    records = (EXAMPLE / "reviews.jsonl").read_text(encoding="utf-8").splitlines()[:3]
    (tmp_path / "in.jsonl").write_text("\n".join(records) + "\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in PROVIDER_VARS}
    env.pop("OPENAI_STRUCTURED_LOCAL", None)
    out = subprocess.run(
        [
            sys.executable, "-m", "openai_structured.cli", "batch",
            str(EXAMPLE / "template.j2"), str(EXAMPLE / "schema.json"),
            "-i", "in.jsonl", "-o", "out.jsonl", "--max-output-tokens", "120",
            "--temperature", "0",
        ],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert out.returncode in (0, 10), out.stderr  # 10: a record the small model got wrong
    lines = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert sorted(line["id"] for line in lines) == ["r-101", "r-102", "r-103"]
    ok = [line["result"] for line in lines if "result" in line]
    assert ok, out.stderr  # the embedded model answers at least some in the declared shape
    assert all(r["sentiment"] in ("positive", "negative", "mixed", "neutral") for r in ok)
    assert "ostruct batch:" in out.stderr
