"""``openai_structured.bulk.ray``: a dataset through Extract actors against the loopback server.

Judged against the single-machine BulkRun over the same rows (same outcomes, same record
keys), by what the server received, and by the output dataset: every row exactly once, after
an actor was killed mid-batch too.
"""

from __future__ import annotations

import json
import pickle
import traceback
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import openai
import pandas as pd
import pyarrow as pa
import pytest
import ray
from ray_support import MODEL, Answer, answer, ask, expected, killing_ask, record_of, rows

from openai_structured.bulk import BulkRun
from openai_structured.bulk.ray import (
    OUTCOME_COLUMNS,
    Extract,
    SharedLimiter,
    extract,
    finished_keys,
)
from openai_structured.testing import FakeOpenAIServer, Fault, Reply

pytestmark = pytest.mark.usefixtures("ray_cluster")


@pytest.fixture
def server() -> Any:
    with FakeOpenAIServer(default_reply=answer) as srv:
        yield srv


def by_id(table: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    ids = Counter(row["id"] for row in table)
    assert all(count == 1 for count in ids.values()), [i for i, c in ids.items() if c > 1]
    return {row["id"]: row for row in table}


# --- the same outcomes as BulkRun -----------------------------------------------------------


def test_same_outcomes_as_the_single_machine_run(server: FakeOpenAIServer) -> None:
    data = rows(2000)
    single = BulkRun(
        model=MODEL, output_schema=Answer, request=ask, client=server.async_client(),
        max_validation_retries=1,
    )  # fmt: skip
    alone = {o.id: o for o in single.run(data)}
    requests_alone = len(server.requests)
    server.reset()

    ds = ray.data.from_items(data, override_num_blocks=8)
    out = extract(
        ds, model=MODEL, output_schema=Answer, request=ask, base_url=server.base_url,
        actors=2, batch_size=125, concurrency=16, max_validation_retries=1,
    )  # fmt: skip
    table = by_id(out.take_all())

    assert sorted(table) == sorted(alone) == list(range(1, 2001))
    assert len(server.requests) == requests_alone  # the same requests, none twice
    errors: Counter[str] = Counter()
    for n, row in table.items():
        outcome = alone[n]
        assert row["key"] == outcome.key and len(row["key"]) == 64
        assert row["text"] == f"row number {n}"  # the input columns are kept
        assert row["skipped"] is False
        assert row["attempts"] == outcome.attempts
        assert row["prompt_tokens"] == outcome.usage.prompt_tokens > 0
        assert row["completion_tokens"] == outcome.usage.completion_tokens
        assert row["cost"] == pytest.approx(outcome.cost)
        if outcome.ok:
            assert row["error_type"] is None and row["error_message"] is None
            assert json.loads(row["result"]) == outcome.value.model_dump() == expected(n)
        else:
            assert expected(n) is None
            assert row["result"] is None
            assert row["error_type"] == type(outcome.error).__name__
            assert row["error_message"] == str(outcome.error)
            errors[row["error_type"]] += 1
    assert errors == {"InvalidResponseFormatError": 285, "ValidationError": 156}
    # a schema mismatch was asked again once (max_validation_retries=1)
    assert {table[n]["attempts"] for n in (11, 22, 33)} == {2}


# --- an actor killed mid-run ----------------------------------------------------------------


def test_an_actor_killed_mid_batch_is_restarted_and_every_row_comes_once(
    server: FakeOpenAIServer, tmp_path: Path
) -> None:
    marker = tmp_path / "killed"
    limiter = SharedLimiter(max_in_flight=32)
    ds = ray.data.from_items(rows(300), override_num_blocks=6)
    out = extract(
        ds, model=MODEL, output_schema=Answer, request=killing_ask(str(marker), 130),
        base_url=server.base_url, limiter=limiter, actors=2, batch_size=25, concurrency=8,
    )  # fmt: skip
    table = by_id(out.take_all())

    assert marker.exists()  # the actor did die on row 130
    assert sorted(table) == list(range(1, 301))
    for n, row in table.items():
        if expected(n) is None:
            assert row["error_type"] in ("InvalidResponseFormatError", "ValidationError")
        else:
            assert row["error_type"] is None, row
            assert json.loads(row["result"]) == expected(n)
    # The block that died (50 rows: its two batches) was requested again; nothing else was.
    sent = Counter(record_of(r) for r in server.requests)
    assert set(sent) == set(range(1, 301))
    assert {n for n, count in sent.items() if count > 1} <= set(range(101, 151))
    # What the dead process held in the limiter was given back when its actor restarted.
    assert limiter.in_flight == 0


# --- reruns: done= --------------------------------------------------------------------------


def test_a_rerun_skips_the_rows_a_previous_parquet_output_finished(
    server: FakeOpenAIServer, tmp_path: Path
) -> None:
    url = server.base_url
    ds = ray.data.from_items(rows(60), override_num_blocks=3)
    first = extract(
        ds, model=MODEL, output_schema=Answer, request=ask,
        client=lambda: openai.AsyncOpenAI(base_url=url, api_key="sk-from-the-factory-1234"),
    )  # fmt: skip
    first.write_parquet(str(tmp_path / "out1"))
    assert {r.headers["authorization"] for r in server.requests} == {
        "Bearer sk-from-the-factory-1234"  # the client the factory built in the actors
    }
    previous = ray.data.read_parquet(str(tmp_path / "out1"))
    schema = previous.schema()
    assert schema is not None and list(schema.names) == ["id", "text", *OUTCOME_COLUMNS]
    types = dict(zip(schema.names, schema.types, strict=True))
    assert types["key"] == types["result"] == types["error_type"] == pa.string()
    assert types["prompt_tokens"] == types["attempts"] == pa.int64()
    assert (types["cost"], types["skipped"]) == (pa.float64(), pa.bool_())
    done = finished_keys(previous)
    failed = {n for n in range(1, 61) if expected(n) is None}
    assert len(done) == 60 - len(failed)
    server.reset()

    again = extract(
        ds, model=MODEL, output_schema=Answer, request=ask, base_url=url, done=done
    ).materialize()
    table = by_id(again.take_all())

    assert sorted(record_of(r) for r in server.requests) == sorted(failed)  # only those
    first_rows = by_id(previous.take_all())
    for n, row in table.items():
        assert row["key"] == first_rows[n]["key"]  # another client, the same request
        if n in failed:
            assert row["skipped"] is False and row["error_type"] is not None
        else:
            assert row["skipped"] is True
            assert row["result"] is None and row["error_type"] is None
            assert (row["attempts"], row["prompt_tokens"], row["cost"]) == (0, 0, None)
    # A third run over the second's output: skipped rows count as finished too.
    assert finished_keys(again) == done


def test_finished_keys_of_rows() -> None:
    out = [
        {"key": "a", "error_type": None},
        {"key": "b", "error_type": "ValidationError"},
        {"key": "c", "error_type": None, "skipped": True},
    ]
    assert finished_keys(out) == {"a", "c"}


# --- the API key ----------------------------------------------------------------------------

CANARY = "sk-canary-7f3a9c21d4e8b6f0a1c5e9d2"


def quoting(request: Any) -> Reply | Fault:
    """Answers that quote the key back: in text that is not JSON, in a 400, in an answer."""
    n = record_of(request)
    if n % 3 == 0:
        return Reply.text(f"not json, your key is {CANARY}")
    if n % 3 == 1:
        return Fault.status(400, message=f"bad request for key {CANARY}")
    return Reply.json({"n": n, "text": f"the key is {CANARY}"})


def test_the_api_key_is_in_no_column_and_no_error(tmp_path: Path) -> None:
    with FakeOpenAIServer(default_reply=quoting, require_api_key=CANARY) as server:
        ds = ray.data.from_items(rows(30), override_num_blocks=2)
        out = extract(
            ds, model=MODEL, output_schema=Answer, request=ask, base_url=server.base_url,
            api_key=CANARY,
        )  # fmt: skip
        table = by_id(out.take_all())
        assert len(server.requests) == 30 and server.errors == []
        assert all(r.headers["authorization"] == f"Bearer {CANARY}" for r in server.requests)

        assert Counter(row["error_type"] for row in table.values()) == {
            "InvalidResponseFormatError": 10,
            "BadRequestError": 10,
            None: 10,
        }
        for row in table.values():
            for value in row.values():
                assert CANARY not in str(value)
        assert "[REDACTED]" in table[1]["error_message"]
        assert json.loads(table[2]["result"])["text"] == "the key is [REDACTED]"

        # A stop (404: the model) quoting the key: the dataset fails, without the key.
        server.default_reply = Fault.status(404, message=f"no such model for {CANARY}")
        stopped = extract(
            ds, model=MODEL, output_schema=Answer, request=ask, base_url=server.base_url,
            api_key=CANARY,
        )  # fmt: skip
        with pytest.raises(Exception) as caught:
            stopped.take_all()
    # Ray's error (RayTaskError, UserCodeException) carries the actor's traceback as text.
    assert isinstance(caught.value, ray.exceptions.RayTaskError)
    text = "".join(traceback.format_exception(caught.value))
    assert "ExtractStopped: the run stopped: NotFoundError" in str(caught.value)
    assert CANARY not in text and CANARY not in repr(caught.value)
    logs = Path(ray._private.worker._global_node.get_logs_dir_path())
    for log in logs.rglob("*"):
        if log.is_file():
            assert CANARY.encode() not in log.read_bytes(), log


# --- Extract in this process: batch formats, columns ----------------------------------------


def extract_here(server: FakeOpenAIServer, **kwargs: Any) -> Extract:
    options: dict[str, Any] = {
        "model": MODEL, "output_schema": Answer, "request": ask, "base_url": server.base_url,
    }  # fmt: skip
    options.update(kwargs)
    return Extract(**options)


def test_every_batch_format_gives_the_same_table(server: FakeOpenAIServer) -> None:
    fn = extract_here(server)
    data = rows(8)
    tables = [
        fn(pa.Table.from_pylist(data)),
        fn(pd.DataFrame(data)),
        fn({"id": np.array([r["id"] for r in data]), "text": np.array([r["text"] for r in data])}),
    ]
    first = tables[0].to_pylist()
    assert [r["id"] for r in first] == list(range(1, 9))
    assert first[6]["error_type"] == "InvalidResponseFormatError"
    assert json.loads(first[0]["result"]) == expected(1)
    assert all(type(r["id"]) is int for r in first)
    for table in tables[1:]:
        assert table.to_pylist() == first


def test_keep_columns_and_the_id_column(server: FakeOpenAIServer) -> None:
    data = [{"doc": f"d{i}", "id": i, "text": f"row number {i}", "result": "old"} for i in (1, 2)]
    batch = pa.Table.from_pylist(data)

    kept = extract_here(server, id_column="doc")(batch)
    assert kept.column_names == ["doc", "id", "text", *OUTCOME_COLUMNS]  # "result" replaced
    assert json.loads(kept.column("result")[0].as_py()) == expected(1)

    only_id = extract_here(server, id_column="doc", keep_columns=False)(batch)
    assert only_id.column_names == ["doc", *OUTCOME_COLUMNS]
    assert only_id.column("doc").to_pylist() == ["d1", "d2"]

    some = extract_here(server, id_column="doc", keep_columns=["text"])(batch)
    assert some.column_names == ["doc", "text", *OUTCOME_COLUMNS]

    # No id column: the row's position in its batch.
    positions = extract_here(server, keep_columns=False, request=lambda r: ask({"id": 1, **r}))(
        pa.Table.from_pylist([{"text": "row number 1"}, {"text": "row number 1"}])
    )
    assert positions.column("id").to_pylist() == [1, 2]
    assert positions.column("error_type").to_pylist() == [None, None]


def test_a_batch_that_is_all_done_sends_nothing(server: FakeOpenAIServer) -> None:
    fn = extract_here(server)
    table = fn(pa.Table.from_pylist(rows(3)))
    keys = table.column("key").to_pylist()
    again = extract_here(server, done=keys)(pa.Table.from_pylist(rows(3)))
    assert again.column("skipped").to_pylist() == [True, True, True]
    assert again.column("key").to_pylist() == keys
    assert len(server.requests) == 3


def test_what_extract_refuses(server: FakeOpenAIServer) -> None:
    for name in ("output", "max_cost", "max_requests", "retry_failed", "ordered"):
        with pytest.raises(TypeError, match=f"does not take {name}="):
            extract_here(server, **{name: 1})
    with pytest.raises(TypeError, match="takes a function that builds the client"):
        extract_here(server, client=server.async_client())
    with pytest.raises(ValueError, match="limiter's business"):
        extract_here(server, limiter=SharedLimiter(), rpm=10)
    with pytest.raises(ValueError, match="outcome column"):
        extract_here(server, id_column="key")
    with pytest.raises(ValueError, match="concurrency"):
        extract_here(server, concurrency=0)
    fn = extract_here(server)
    with pytest.raises(TypeError, match="pass the class to map_batches"):
        pickle.dumps(fn)
