"""The Batch API and the Files API, emulated: files, batches and their life cycle.

`BatchEmulator.handle()` takes one HTTP request (method, route, query, headers, body) and
the current time and returns the answer (`HttpAnswer`); it does no I/O itself. The only
thing it asks of the server is how to answer one batch line: `LineRunner` (at the bottom)
runs a line through the server's scripting exactly as if its body had been POSTed to its
URL, and renders the result into an output-file or error-file line.

Shapes follow the openai SDK's types (`FileObject`, `FileDeleted`, `Batch`, `BatchError`,
`BatchRequestCounts`, `BatchUsage`, the cursor pages) and OpenAI's documented batch output
line `{"id", "custom_id", "response": {"status_code", "request_id", "body"}, "error"}`.

A batch follows a `BatchPlan`: how many retrieves it stays in progress (or how many seconds),
how it ends (completed, expired, cancelled, failed), how many lines were done before an early
end, whether its output file is written, and faults of the create request itself. Lines are
answered at the moment the batch ends, in file order; the output and error files list them in
a shuffled order (seeded by the batch id), as OpenAI does not keep the input order.
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
import json
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from email.message import Message
from email.parser import BytesHeaderParser
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import parse_qs, unquote

from typing_extensions import Self

from . import _render as render
from ._script import Choices, Fault, Reply, Usage

if TYPE_CHECKING:
    from ._server import CapturedRequest, FakeOpenAIServer

__all__ = [
    "BATCH_ENDPOINTS",
    "BatchEmulator",
    "BatchEnd",
    "BatchPlan",
    "HttpAnswer",
    "LineError",
    "LineRunner",
    "line_error_from_dict",
]

BatchEnd = Literal["completed", "expired", "cancelled", "failed"]

#: The endpoints a batch may target (OpenAI has a few more; the fake renders these four).
BATCH_ENDPOINTS = ("/v1/chat/completions", "/v1/responses", "/v1/embeddings", "/v1/completions")
#: The purposes `POST /v1/files` accepts (`batch_output` and the like are the API's own).
UPLOAD_PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data", "evals")
COMPLETION_WINDOW_SECONDS = 24 * 3600
MAX_LINES = 50_000
MAX_FILE_BYTES = 200 * 1024 * 1024
#: At most this many errors are listed in a failed batch's `errors.data`.
MAX_LISTED_ERRORS = 1000

EXPIRED_ERROR = {
    "code": "batch_expired",
    "message": "This request could not be executed before the completion window expired.",
}
CANCELLED_ERROR = {
    "code": "batch_cancelled",
    "message": "This request was not executed because the batch was cancelled.",
}
_TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})
_ENDS = ("completed", "expired", "cancelled", "failed")


# -- script items and plans ----------------------------------------------------------------


@dataclass(frozen=True)
class LineError:
    """A batch line that comes back as an error without a normal HTTP error response.

    `status_code` None: the line is `{"response": null, "error": {"code", "message"}}` (a
    request that never got an HTTP answer). An int (0 included, as seen in the wild): the
    line has a `response` with that `status_code` and an `{"error": {...}}` body. Either way
    it goes to the error file and counts as failed. Queue it with `server.queue(...)` or
    return it from a `default_reply` function; it only has a meaning for batch lines (a live
    request that gets one is answered HTTP 500 saying so).
    """

    code: str = "server_error"
    message: str = "The server had an error while processing your request."
    status_code: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.code, str) or not isinstance(self.message, str):
            raise TypeError("LineError code and message are strings")
        status = self.status_code
        if status is not None and (
            isinstance(status, bool) or not isinstance(status, int) or not 0 <= status <= 599
        ):
            raise ValueError(f"status_code must be None or an int in 0..599, got {status!r}")


def line_error_from_dict(data: Mapping[str, Any]) -> LineError:
    """`{"line_error": {"code": ..., "message": ..., "status_code": ...}}` -> LineError."""
    params = data["line_error"]
    if not isinstance(params, Mapping):
        raise TypeError("line_error is an object with code, message and status_code")
    unknown = set(params) - {"code", "message", "status_code"}
    if unknown:
        raise ValueError(f"unknown line_error keys {sorted(unknown)}")
    return LineError(**params)


@dataclass(frozen=True)
class BatchPlan:
    """How one batch goes: when it ends, how, and what goes wrong on the way.

    - `polls`: retrieves (`GET /v1/batches/{id}`) that still see the batch unfinished; the
      next one ends it. 0: the first retrieve ends it. Unfinished is "in_progress" (it is
      "validating" until the first retrieve, and stays "validating" when it will fail).
    - `seconds`: instead of counting retrieves, end the first time the batch is looked at
      (retrieve or list) at least this many seconds after its creation.
    - `end`: "completed", "expired" (the 24 h window ran out), "cancelled" (by someone else,
      e.g. the dashboard) or "failed" (errors.data from `validation_errors`, or a default).
      A bad input file makes any plan end "failed".
    - `lines_done`: with "expired" or "cancelled" (and when the client cancels), how many
      lines, in file order, were answered before the end (None: 0). The others appear in the
      error file with `batch_expired` / `batch_cancelled` and count neither completed nor
      failed.
    - `output_file`: False: the batch ends without an output file (`output_file_id` null)
      although lines were answered; their answers are lost (the error file is still written).
    - `validation_errors`: `{"code", "message", "line", "param"}` dicts the batch fails with
      (forces `end="failed"`).
    - `create_error`: `POST /v1/batches` answers this HTTP status and creates nothing.
    - `create_disconnect`: the batch is created, then the connection is dropped before the
      answer (a client killed with the create request in flight).
    - `shuffle`: False keeps the output and error files in input order.
    """

    polls: int = 0
    seconds: float | None = None
    end: BatchEnd = "completed"
    lines_done: int | None = None
    output_file: bool = True
    validation_errors: Sequence[Mapping[str, Any]] = ()
    create_error: int | None = None
    create_disconnect: bool = False
    shuffle: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.polls, bool) or not isinstance(self.polls, int) or self.polls < 0:
            raise ValueError(f"polls must be an int >= 0, got {self.polls!r}")
        if self.seconds is not None and (
            isinstance(self.seconds, bool)
            or not isinstance(self.seconds, (int, float))
            or not self.seconds >= 0
        ):
            raise ValueError(f"seconds must be None or a number >= 0, got {self.seconds!r}")
        if self.end not in _ENDS:
            raise ValueError(f"end must be one of {list(_ENDS)}, got {self.end!r}")
        done = self.lines_done
        if done is not None and (isinstance(done, bool) or not isinstance(done, int) or done < 0):
            raise ValueError(f"lines_done must be None or an int >= 0, got {done!r}")
        errors = tuple(_batch_error(e) for e in self.validation_errors)
        object.__setattr__(self, "validation_errors", errors)
        if errors and self.end in ("expired", "cancelled"):
            raise ValueError(f"validation_errors make a batch fail; end={self.end!r} conflicts")
        if errors:
            object.__setattr__(self, "end", "failed")
        status = self.create_error
        if status is not None and (
            isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599
        ):
            raise ValueError(f"create_error must be None or a 4xx/5xx status, got {status!r}")
        if status is not None and self.create_disconnect:
            raise ValueError("give create_error or create_disconnect, not both")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BatchPlan:
        """The plan of a JSON object with the same keys (the control endpoint's form)."""
        if not isinstance(data, Mapping):
            raise TypeError(f"a batch plan is a JSON object, got {data!r}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"unknown batch plan keys {sorted(unknown)}; known: {sorted(names)}")
        return cls(**data)


def _batch_error(data: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(data, Mapping):
        raise TypeError(f"a validation error is a dict with code/message/line, got {data!r}")
    unknown = set(data) - {"code", "message", "line", "param"}
    if unknown:
        raise ValueError(f"unknown validation error keys {sorted(unknown)}")
    return {
        "code": data.get("code"),
        "message": data.get("message"),
        "param": data.get("param"),
        "line": data.get("line"),
    }


@dataclass(frozen=True)
class HttpAnswer:
    """What to send back: a status and a body, or a dropped connection (`disconnect`)."""

    status: int
    body: bytes
    content_type: str = "application/json"
    disconnect: bool = False

    @classmethod
    def json(cls, status: int, payload: Any) -> HttpAnswer:
        return cls(status, json.dumps(payload).encode())


def _error(
    status: int, message: str, code: str | None = None, param: str | None = None
) -> HttpAnswer:
    body = render.error_body(status, message, param=param)
    body["error"]["code"] = code  # error_body would default it (404: model_not_found)
    return HttpAnswer.json(status, body)


# -- state ------------------------------------------------------------------------------------


@dataclass
class _File:
    id: str
    filename: str
    purpose: str
    data: bytes
    created_at: int
    expires_at: int | None = None

    def obj(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "file",
            "bytes": len(self.data),
            "created_at": self.created_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
            "expires_at": self.expires_at,
            "status_details": None,
        }


@dataclass(frozen=True)
class BatchLine:
    """One valid line of a batch's input file (`number` counts from 1, as errors report)."""

    number: int
    custom_id: str
    url: str
    body: Mapping[str, Any]
    size: int


@dataclass(frozen=True)
class LineResult:
    """One answered line: the output-file (`ok`) or error-file record, and its usage."""

    ok: bool
    record: dict[str, Any]
    usage: Usage | None = None


@dataclass
class _Batch:
    id: str
    endpoint: str
    input_file_id: str
    completion_window: str
    metadata: Mapping[str, Any] | None
    plan: BatchPlan
    created_at: int
    created_exact: float
    lines: list[BatchLine]
    input_errors: list[dict[str, Any]]
    model: str | None
    output_expires_after: int | None
    status: str = "validating"
    retrieves: int = 0
    user_cancelled: bool = False
    times: dict[str, int | None] = field(
        default_factory=lambda: dict.fromkeys(
            (
                "in_progress_at",
                "finalizing_at",
                "completed_at",
                "failed_at",
                "expired_at",
                "cancelling_at",
                "cancelled_at",
            )
        )
    )
    errors: list[dict[str, Any]] | None = None
    counts: dict[str, int] = field(
        default_factory=lambda: {"total": 0, "completed": 0, "failed": 0}
    )
    usage: Usage = field(default_factory=lambda: Usage(0, 0))
    output_file_id: str | None = None
    error_file_id: str | None = None

    def obj(self) -> dict[str, Any]:
        u = self.usage
        return {
            "id": self.id,
            "object": "batch",
            "endpoint": self.endpoint,
            "errors": None if self.errors is None else {"object": "list", "data": self.errors},
            "input_file_id": self.input_file_id,
            "completion_window": self.completion_window,
            "status": self.status,
            "output_file_id": self.output_file_id,
            "error_file_id": self.error_file_id,
            "created_at": self.created_at,
            "in_progress_at": self.times["in_progress_at"],
            "expires_at": self.created_at + COMPLETION_WINDOW_SECONDS,
            "finalizing_at": self.times["finalizing_at"],
            "completed_at": self.times["completed_at"],
            "failed_at": self.times["failed_at"],
            "expired_at": self.times["expired_at"],
            "cancelling_at": self.times["cancelling_at"],
            "cancelled_at": self.times["cancelled_at"],
            "request_counts": dict(self.counts),
            "metadata": dict(self.metadata) if self.metadata is not None else None,
            "model": self.model,
            "usage": {
                "input_tokens": u.prompt_tokens,
                "input_tokens_details": {"cached_tokens": u.cached_tokens},
                "output_tokens": u.completion_tokens,
                "output_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
                "total_tokens": u.total_tokens,
            },
        }


def _new_counter_id(counter: Iterable[int]) -> Callable[[str], str]:
    numbers = iter(counter)
    return lambda prefix: f"{prefix}fake{next(numbers):06d}"


#: Answers one batch line (the server's scripting); called with the emulator's lock held.
LineAnswerer = Callable[[BatchLine, float], LineResult]


class BatchEmulator:
    """The Files API and the Batch API of one `FakeOpenAIServer` (`server.batches`).

    Thread-safe. Script batches with `plan(...)` (one plan per created batch, in order) and
    `default_plan`; inspect them with `created`, `get(id)`, `plan_for(id)`, `retrieves(id)`
    and the files with `file_ids`, `file(id)`, `file_content(id)`. `clock` is the time the
    server gives `handle()` (`time.time` unless replaced, e.g. by a test's fake clock).
    """

    def __init__(
        self,
        answer_line: LineAnswerer | None = None,
        new_id: Callable[[str], str] | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._answer_line = answer_line
        self._new_id = new_id if new_id is not None else _new_counter_id(itertools.count(1))
        self.clock = clock
        self._lock = threading.RLock()  # a default_reply function may call back in
        self._default_plan = BatchPlan()
        self._plans: collections.deque[BatchPlan] = collections.deque()
        self._files: dict[str, _File] = {}
        self._batches: dict[str, _Batch] = {}
        self._lines_processed = 0
        #: The biggest input file a batch accepts, and its most lines (OpenAI's limits).
        self.max_file_bytes = MAX_FILE_BYTES
        self.max_lines = MAX_LINES

    # -- scripting and inspection ------------------------------------------------------------

    def plan(self, *plans: BatchPlan) -> Self:
        """Queue plans: each batch created takes the oldest (then `default_plan`)."""
        for p in plans:
            if not isinstance(p, BatchPlan):
                raise TypeError(f"expected a BatchPlan, got {type(p).__name__}")
        with self._lock:
            self._plans.extend(plans)
        return self

    @property
    def default_plan(self) -> BatchPlan:
        """The plan of a batch created when no queued plan is left."""
        return self._default_plan

    @default_plan.setter
    def default_plan(self, plan: BatchPlan) -> None:
        if not isinstance(plan, BatchPlan):
            raise TypeError(f"default_plan must be a BatchPlan, got {type(plan).__name__}")
        self._default_plan = plan

    @property
    def pending_plans(self) -> int:
        """Queued plans no batch has taken yet."""
        with self._lock:
            return len(self._plans)

    @property
    def created(self) -> list[str]:
        """The ids of the batches created, oldest first."""
        with self._lock:
            return list(self._batches)

    def get(self, batch_id: str) -> dict[str, Any]:
        """The batch object as a retrieve would show it now, without advancing it."""
        with self._lock:
            return self._batch(batch_id).obj()

    def plan_for(self, batch_id: str) -> BatchPlan:
        """The plan batch `batch_id` follows."""
        with self._lock:
            return self._batch(batch_id).plan

    def retrieves(self, batch_id: str) -> int:
        """How many times batch `batch_id` was retrieved."""
        with self._lock:
            return self._batch(batch_id).retrieves

    @property
    def file_ids(self) -> list[str]:
        """The ids of the files stored (uploaded and produced, not deleted), oldest first."""
        with self._lock:
            return list(self._files)

    def file(self, file_id: str) -> dict[str, Any]:
        """The file object of `file_id` (KeyError when there is none)."""
        with self._lock:
            return self._files[file_id].obj()

    def file_content(self, file_id: str) -> bytes:
        """The bytes of file `file_id` (KeyError when there is none)."""
        with self._lock:
            return self._files[file_id].data

    def reset(self) -> None:
        """Forget files, batches and queued plans (`default_plan` stays)."""
        with self._lock:
            self._plans.clear()
            self._files.clear()
            self._batches.clear()
            self._lines_processed = 0

    def stats(self) -> dict[str, int]:
        """Counters for `/_fake/stats`."""
        with self._lock:
            return {
                "files": len(self._files),
                "batches_created": len(self._batches),
                "batch_lines_processed": self._lines_processed,
            }

    def _batch(self, batch_id: str) -> _Batch:
        try:
            return self._batches[batch_id]
        except KeyError:
            raise KeyError(f"no batch {batch_id!r}") from None

    # -- HTTP ---------------------------------------------------------------------------------

    def handle(
        self,
        method: str,
        route: str,
        query: str,
        headers: Mapping[str, str],
        body: bytes,
        now: float | None = None,
    ) -> HttpAnswer | None:
        """Answer one request to `/files...` or `/batches...` (`route` is the path without
        `/v1`); None when the route is not one of these APIs'."""
        at = self.clock() if now is None else now
        parts = [unquote(p) for p in route.strip("/").split("/")]
        params = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
        with self._lock:
            if parts[0] == "files":
                return self._files_route(method, parts[1:], params, headers, body, at)
            if parts[0] == "batches":
                return self._batches_route(method, parts[1:], params, body, at)
        return None

    def _files_route(
        self,
        method: str,
        rest: list[str],
        params: Mapping[str, str],
        headers: Mapping[str, str],
        body: bytes,
        now: float,
    ) -> HttpAnswer | None:
        if not rest:
            if method == "POST":
                return self._upload(headers, body, now)
            if method == "GET":
                return self._list_files(params)
            return None
        if len(rest) == 1 and method in ("GET", "DELETE"):
            content = False
        elif rest[1:] == ["content"] and method == "GET":
            content = True
        else:
            return None
        file = self._files.get(rest[0])
        if file is None:
            return _error(404, f"No such File object: {rest[0]}", param="id")
        if content:
            return HttpAnswer(200, file.data, "application/octet-stream")
        if method == "GET":
            return HttpAnswer.json(200, file.obj())
        del self._files[file.id]
        return HttpAnswer.json(200, {"id": file.id, "object": "file", "deleted": True})

    def _batches_route(
        self, method: str, rest: list[str], params: Mapping[str, str], body: bytes, now: float
    ) -> HttpAnswer | None:
        if not rest:
            if method == "POST":
                return self._create(body, now)
            if method == "GET":
                return self._list_batches(params, now)
            return None
        retrieve = len(rest) == 1 and method == "GET"
        if not retrieve and not (rest[1:] == ["cancel"] and method == "POST"):
            return None
        batch = self._batches.get(rest[0])
        if batch is None:
            return _error(404, f"No batch found with id '{rest[0]}'.", param="batch_id")
        if retrieve:
            batch.retrieves += 1
            self._advance(batch, now, retrieved=True)
            return HttpAnswer.json(200, batch.obj())
        return self._cancel(batch, now)

    # -- files --------------------------------------------------------------------------------

    def _upload(self, headers: Mapping[str, str], body: bytes, now: float) -> HttpAnswer:
        content_type = _header(headers, "content-type")
        try:
            fields = parse_multipart(content_type, body)
        except ValueError as exc:
            return _error(400, f"Could not parse multipart form: {exc}")
        purpose = fields.get("purpose")
        if purpose is None:
            return _error(
                400, "Missing required parameter: 'purpose'.", "missing_required_parameter",
                "purpose",
            )  # fmt: skip
        purpose_text = purpose[1].decode("utf-8", "replace")
        if purpose_text not in UPLOAD_PURPOSES:
            supported = ", ".join(f"'{p}'" for p in UPLOAD_PURPOSES)
            message = (
                f"Invalid value for 'purpose': '{purpose_text}'. Supported values are: {supported}."
            )
            return _error(400, message, "invalid_value", "purpose")
        upload = fields.get("file")
        if upload is None:
            return _error(
                400, "Missing required parameter: 'file'.", "missing_required_parameter", "file"
            )
        expires_at = None
        expiry = fields.get("expires_after[seconds]")
        if expiry is not None:
            try:
                expires_at = int(now) + int(expiry[1])
            except ValueError:
                return _error(
                    400, "expires_after[seconds] must be an integer.", param="expires_after"
                )
        file = self._store_file(upload[0] or "upload", purpose_text, upload[1], now, expires_at)
        return HttpAnswer.json(200, file.obj())

    def _store_file(
        self, filename: str, purpose: str, data: bytes, now: float, expires_at: int | None
    ) -> _File:
        file = _File(self._new_id("file-"), filename, purpose, data, int(now), expires_at)
        self._files[file.id] = file
        return file

    def _list_files(self, params: Mapping[str, str]) -> HttpAnswer:
        files = list(self._files.values())
        if "purpose" in params:
            files = [f for f in files if f.purpose == params["purpose"]]
        order = params.get("order", "desc")
        if order not in ("asc", "desc"):
            return _error(400, f"Invalid value for 'order': '{order}'.", "invalid_value", "order")
        if order == "desc":
            files.reverse()
        page = _page(files, params, default_limit=10_000, max_limit=10_000)
        if isinstance(page, HttpAnswer):
            return page
        return HttpAnswer.json(200, _list_body([f.obj() for f in page[0]], page[1]))

    # -- batches ------------------------------------------------------------------------------

    def _create(self, body: bytes, now: float) -> HttpAnswer:
        try:
            data: Any = json.loads(body) if body else None
        except ValueError:
            data = None
        if not isinstance(data, Mapping):
            return _error(400, "The request body is not a JSON object.")
        for name in ("input_file_id", "endpoint", "completion_window"):
            if name not in data:
                message = f"Missing required parameter: '{name}'."
                return _error(400, message, "missing_required_parameter", name)
        window, endpoint, file_id = (
            data["completion_window"],
            data["endpoint"],
            data["input_file_id"],
        )
        if window != "24h":
            message = f"Invalid value for 'completion_window': {window!r}. Supported values: '24h'."
            return _error(400, message, "invalid_value", "completion_window")
        if endpoint not in BATCH_ENDPOINTS:
            supported = ", ".join(f"'{e}'" for e in BATCH_ENDPOINTS)
            message = (
                f"Invalid value for 'endpoint': {endpoint!r}. FakeOpenAIServer's batches "
                f"support {supported}."
            )
            return _error(400, message, "invalid_value", "endpoint")
        metadata = data.get("metadata")
        problem = _metadata_problem(metadata)
        if problem is not None:
            return _error(400, problem, "invalid_value", "metadata")
        file = self._files.get(file_id) if isinstance(file_id, str) else None
        if file is None:
            return _error(404, f"No such File object: {file_id}", param="input_file_id")
        if file.purpose != "batch":
            message = (
                f"The input file {file_id} has purpose '{file.purpose}'; a batch needs a "
                "file uploaded with purpose 'batch'."
            )
            return _error(400, message, "invalid_value", "input_file_id")
        expires_after = data.get("output_expires_after")
        output_seconds = None
        if isinstance(expires_after, Mapping) and isinstance(expires_after.get("seconds"), int):
            output_seconds = int(expires_after["seconds"])
        plan = self._plans.popleft() if self._plans else self._default_plan
        if plan.create_error is not None:
            return HttpAnswer.json(plan.create_error, render.error_body(plan.create_error))
        lines, errors, model = self._parse_input(file.data, endpoint)
        batch = _Batch(
            id=self._new_id("batch_"),
            endpoint=endpoint,
            input_file_id=file.id,
            completion_window=window,
            metadata=metadata if isinstance(metadata, Mapping) else None,
            plan=plan,
            created_at=int(now),
            created_exact=now,
            lines=lines,
            input_errors=errors,
            model=model,
            output_expires_after=output_seconds,
        )
        self._batches[batch.id] = batch
        answer = HttpAnswer.json(200, batch.obj())
        if plan.create_disconnect:
            return dataclasses.replace(answer, disconnect=True)
        return answer

    def _parse_input(
        self, data: bytes, endpoint: str
    ) -> tuple[list[BatchLine], list[dict[str, Any]], str | None]:
        """The valid lines, the validation errors (line numbers from 1) and the model."""

        def err(code: str, message: str, line: int | None = None, param: str | None = None) -> None:
            if len(errors) < MAX_LISTED_ERRORS:
                errors.append({"code": code, "message": message, "param": param, "line": line})

        errors: list[dict[str, Any]] = []
        lines: list[BatchLine] = []
        if len(data) > self.max_file_bytes:
            err(
                "file_too_large",
                f"The input file is {len(data)} bytes, more than the {self.max_file_bytes} "
                "bytes a batch accepts.",
            )
            return [], errors, None
        raw_lines = data.split(b"\n")
        n_tasks = sum(1 for r in raw_lines if r.strip())
        if n_tasks == 0:
            err("empty_file", "The batch input file is empty: it holds no request.")
            return [], errors, None
        if n_tasks > self.max_lines:
            err(
                "too_many_tasks",
                f"The batch input file holds {n_tasks} requests, more than the maximum of "
                f"{self.max_lines} per batch.",
            )
            return [], errors, None
        seen: set[str] = set()
        model: str | None = None
        for number, raw in enumerate(raw_lines, start=1):
            if not raw.strip():
                continue
            try:
                item = json.loads(raw)
            except ValueError:
                item = None
            if not isinstance(item, dict):
                err("invalid_json_line", "This line is not parseable as valid JSON.", number)
                continue
            custom_id = item.get("custom_id")
            url = item.get("url")
            body = item.get("body")
            missing = [
                name
                for name, value, kind in (
                    ("custom_id", custom_id, str),
                    ("method", item.get("method"), str),
                    ("url", url, str),
                    ("body", body, dict),
                )
                if not isinstance(value, kind)
            ]
            if missing:
                message = f"Missing or invalid required parameter: '{missing[0]}'."
                err("missing_required_parameter", message, number, missing[0])
                continue
            assert isinstance(custom_id, str) and isinstance(url, str) and isinstance(body, dict)
            if item["method"] != "POST":
                message = f"Invalid method {item['method']!r}: batch requests use 'POST'."
                err("invalid_value", message, number, "method")
                continue
            if url != endpoint:
                message = (
                    f"The URL provided for this request ({url!r}) does not match the batch "
                    f"endpoint ({endpoint!r})."
                )
                err("url_mismatch", message, number, "url")
                continue
            if custom_id in seen:
                message = (
                    f"The custom_id {custom_id!r} is a duplicate of another request's: "
                    "custom_id must be unique within a batch."
                )
                err("duplicate_custom_id", message, number, "custom_id")
                continue
            seen.add(custom_id)
            line_model = body.get("model")
            if isinstance(line_model, str):
                if model is None:
                    model = line_model
                elif line_model != model:
                    message = (
                        f"The model {line_model!r} differs from the model {model!r} of the "
                        "batch's other requests: a batch uses one model."
                    )
                    err("model_mismatch", message, number, "body.model")
                    continue
            lines.append(BatchLine(number, custom_id, url, body, len(raw)))
        return lines, errors, model

    def _list_batches(self, params: Mapping[str, str], now: float) -> HttpAnswer:
        batches = list(reversed(self._batches.values()))  # newest first
        page = _page(batches, params, default_limit=20, max_limit=100)
        if isinstance(page, HttpAnswer):
            return page
        for batch in page[0]:
            self._advance(batch, now, retrieved=False)
        return HttpAnswer.json(200, _list_body([b.obj() for b in page[0]], page[1]))

    def _cancel(self, batch: _Batch, now: float) -> HttpAnswer:
        if batch.status in ("validating", "in_progress"):
            batch.status = "cancelling"
            batch.user_cancelled = True
            batch.times["cancelling_at"] = int(now)
        elif batch.status not in ("cancelling", "cancelled"):
            message = f"Cannot cancel a batch with status '{batch.status}'."
            return _error(409, message)
        return HttpAnswer.json(200, batch.obj())

    # -- the life cycle -----------------------------------------------------------------------

    def _advance(self, batch: _Batch, now: float, *, retrieved: bool) -> None:
        """Move `batch` on after it was looked at (a retrieve, or a list)."""
        if batch.status in _TERMINAL:
            return
        if batch.status == "cancelling":
            if retrieved:
                self._finish(batch, "cancelled", now)
            return
        plan = batch.plan
        if plan.seconds is not None:
            due = now - batch.created_exact >= plan.seconds
        else:
            if not retrieved:
                return
            due = batch.retrieves > plan.polls
        if due:
            self._finish(batch, "failed" if self._fails(batch) else plan.end, now)
        elif batch.status == "validating" and not self._fails(batch):
            self._start(batch, now)

    def _fails(self, batch: _Batch) -> bool:
        return bool(batch.input_errors) or batch.plan.end == "failed"

    def _start(self, batch: _Batch, now: float) -> None:
        batch.status = "in_progress"
        batch.times["in_progress_at"] = int(now)
        batch.counts["total"] = len(batch.lines)

    def _finish(self, batch: _Batch, end: str, now: float) -> None:
        t = int(now)
        if end == "failed":
            batch.status = "failed"
            batch.times["failed_at"] = t
            batch.errors = (
                batch.input_errors
                or [dict(e) for e in batch.plan.validation_errors]
                or [_enqueued_limit_error(batch.model)]
            )
            return
        if batch.user_cancelled and batch.times["in_progress_at"] is None:
            # Cancelled while validating: nothing ran, no file is written.
            batch.status = "cancelled"
            batch.times["cancelled_at"] = t
            return
        if batch.times["in_progress_at"] is None:
            self._start(batch, now)
        n_done = len(batch.lines) if end == "completed" else (batch.plan.lines_done or 0)
        outputs, failures = self._answer(batch, batch.lines[:n_done], now)
        skipped = CANCELLED_ERROR if end == "cancelled" else EXPIRED_ERROR
        failures.extend(
            {"id": self._new_id("batch_req_"), "custom_id": line.custom_id, "response": None,
             "error": dict(skipped)}
            for line in batch.lines[n_done:]
        )  # fmt: skip
        if batch.plan.shuffle:
            rng = random.Random(batch.id)
            rng.shuffle(outputs)
            rng.shuffle(failures)
        expires_at = None if batch.output_expires_after is None else t + batch.output_expires_after
        if outputs and batch.plan.output_file:
            name = f"{batch.id}_output.jsonl"
            batch.output_file_id = self._store_file(
                name, "batch_output", _jsonl(outputs), now, expires_at
            ).id
        if failures:
            name = f"{batch.id}_error.jsonl"
            batch.error_file_id = self._store_file(
                name, "batch_output", _jsonl(failures), now, expires_at
            ).id
        batch.status = end
        if end == "completed":
            batch.times["finalizing_at"] = t
            batch.times["completed_at"] = t
        elif end == "expired":
            batch.times["expired_at"] = t
        else:
            if batch.times["cancelling_at"] is None:
                batch.times["cancelling_at"] = t
            batch.times["cancelled_at"] = t

    def _answer(
        self, batch: _Batch, lines: Sequence[BatchLine], now: float
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        outputs: list[dict[str, Any]] = []
        failures: list[dict[str, Any]] = []
        if not lines:
            return outputs, failures
        if self._answer_line is None:
            raise RuntimeError("this BatchEmulator has no line answerer")
        prompt = completion = cached = reasoning = 0
        answer = self._answer_line
        for line in lines:
            result = answer(line, now)
            if result.ok:
                outputs.append(result.record)
                batch.counts["completed"] += 1
            else:
                failures.append(result.record)
                batch.counts["failed"] += 1
            u = result.usage
            if u is not None:
                prompt += u.prompt_tokens
                completion += u.completion_tokens
                cached += u.cached_tokens
                reasoning += u.reasoning_tokens
        self._lines_processed += len(lines)
        batch.usage = Usage(prompt, completion, cached, reasoning)
        return outputs, failures


def _enqueued_limit_error(model: str | None) -> dict[str, Any]:
    return {
        "code": "token_limit_exceeded",
        "message": (
            f"Enqueued token limit reached for {model or 'fake-model'} in organization "
            "org-fake. Limit: 2,000,000 enqueued tokens. Please try again once some "
            "in_progress batches have been completed."
        ),
        "param": None,
        "line": None,
    }


def _jsonl(records: list[dict[str, Any]]) -> bytes:
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    return "".join(dumps(r) + "\n" for r in records).encode()


def _list_body(data: list[dict[str, Any]], has_more: bool) -> dict[str, Any]:
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": has_more,
    }


def _page(
    items: list[Any], params: Mapping[str, str], *, default_limit: int, max_limit: int
) -> tuple[list[Any], bool] | HttpAnswer:
    """The items after `after` (an id), at most `limit`, and whether more follow."""
    try:
        limit = int(params.get("limit", default_limit))
    except ValueError:
        limit = -1
    if not 1 <= limit <= max_limit:
        message = f"Invalid 'limit': it must be an integer between 1 and {max_limit}."
        return _error(400, message, "invalid_value", "limit")
    after = params.get("after")
    if after:
        ids = [i.id for i in items]
        items = items[ids.index(after) + 1 :] if after in ids else []
    return items[:limit], len(items) > limit


def _metadata_problem(metadata: Any) -> str | None:
    if metadata is None:
        return None
    if not isinstance(metadata, Mapping):
        return "metadata must be an object of string keys and string values."
    if len(metadata) > 16:
        return "metadata holds at most 16 keys."
    for key, value in metadata.items():
        if not isinstance(value, str):
            return f"metadata values are strings; {key!r} is not."
        if len(key) > 64 or len(value) > 512:
            return "metadata keys are at most 64 characters, values at most 512."
    return None


def _header(headers: Mapping[str, str], name: str) -> str:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return ""


def parse_multipart(content_type: str, body: bytes) -> dict[str, tuple[str | None, bytes]]:
    """The fields of a multipart/form-data body: name -> (filename or None, raw bytes)."""
    header = Message()
    header["Content-Type"] = content_type
    if header.get_content_type() != "multipart/form-data":
        raise ValueError(f"expected multipart/form-data, got {content_type or 'nothing'!r}")
    boundary = header.get_param("boundary")
    if not isinstance(boundary, str) or not boundary:
        raise ValueError("the Content-Type has no boundary")
    delimiter = b"--" + boundary.encode("latin-1")
    fields: dict[str, tuple[str | None, bytes]] = {}
    chunks = body.split(b"\r\n" + delimiter)
    first = chunks[0]
    if not first.startswith(delimiter):
        raise ValueError("the body does not start with the boundary")
    chunks[0] = first[len(delimiter) :]
    parser = BytesHeaderParser()
    for chunk in chunks:
        if chunk.startswith(b"--"):
            break  # the closing delimiter
        chunk = chunk.removeprefix(b"\r\n")
        head, sep, content = chunk.partition(b"\r\n\r\n")
        if not sep:
            raise ValueError("a part has no blank line after its headers")
        part = parser.parsebytes(head + b"\r\n\r\n")
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            raise ValueError("a part has no name")
        fields[name] = (part.get_filename(), content)
    return fields


# -- answering lines through the server's scripting ---------------------------------------------


class LineRunner:
    """Answers batch lines with the server's script (queue, then `default_reply`).

    Each line consumes a script item exactly as a POST of its body to its URL would; a
    `default_reply` function gets a `CapturedRequest` (method POST, the line's URL as path,
    its body as `json`, no headers). Rate limits and latency do not apply.
    """

    def __init__(self, server: FakeOpenAIServer) -> None:
        from ._server import CapturedRequest, Headers, _ResponderError  # import cycle

        self._server = server
        self._record_type = CapturedRequest
        self._headers = Headers()
        self._responder_error = _ResponderError

    def __call__(self, line: BatchLine, now: float) -> LineResult:
        server = self._server
        queued = server._next_item()
        record: CapturedRequest | None = None

        def captured() -> CapturedRequest:
            nonlocal record
            if record is None:
                raw = json.dumps(line.body).encode()
                record = self._record_type("POST", line.url, "", self._headers, raw, line.body)
            return record

        try:
            if queued is None or isinstance(queued, (Reply, Fault, Choices, LineError)):
                item = queued
            else:
                item = server._resolve(queued, captured())
            if isinstance(item, Fault) and item.http_status is None:
                if item.stream_error_message is not None:
                    body = render.error_body(
                        500, item.stream_error_message, "server_error", item.error_code
                    )
                    return self._status_line(line, 500, body)
                # Timing and transport faults mean nothing inside a batch: the reply stands.
                item = server._fault_reply(item, captured(), from_responder=queued is not item)
        except self._responder_error as exc:
            return self._status_line(
                line, 500, render.error_body(500, str(exc), "fake_server_error")
            )
        if item is None:
            message = (
                f"FakeOpenAIServer has no scripted reply for batch line {line.custom_id!r} "
                f"(POST {line.url}): queue one with server.queue(...) or set a default_reply."
            )
            return self._status_line(
                line, 500, render.error_body(500, message, "fake_server_error")
            )
        if isinstance(item, LineError):
            return self._line_error(line, item)
        if isinstance(item, Fault):
            assert item.http_status is not None
            body = render.error_body(
                item.http_status, item.message, item.error_type, item.error_code
            )
            return self._status_line(line, item.http_status, body)
        return self._rendered(line, item, now)

    def _rendered(self, line: BatchLine, item: Reply | Choices, now: float) -> LineResult:
        server = self._server
        url = line.url
        if isinstance(item, Choices):
            if url == "/v1/responses":
                message = (
                    "Unknown parameter: 'n'. The Responses API has no `n` (several choices), "
                    "but FakeOpenAIServer was scripted with Choices for this request."
                )
                body = render.error_body(400, message, error_code="unknown_parameter", param="n")
                return self._status_line(line, 400, body)
            item = Choices(tuple(server._with_call_ids(r)[0] for r in item.replies))
            first = item.replies[0]
            tool_ids: tuple[str, ...] = ()
        else:
            item, tool_ids = server._with_call_ids(item)
            first = item
        prefixes = {
            "/v1/chat/completions": "chatcmpl-",
            "/v1/responses": "resp_",
            "/v1/completions": "cmpl-",
        }
        ctx = render.RenderContext(
            request=line.body,
            request_size=line.size,
            response_id=first.id or server._new_id(prefixes.get(url, "emb-")),
            item_id=server._new_id("msg_") if url == "/v1/responses" else "",
            created=int(now),
            tool_item_ids=tool_ids,
        )
        payload: dict[str, Any]
        if url == "/v1/chat/completions":
            payload = render.chat_completion(ctx, item)
            u = payload["usage"]
            usage = Usage(
                u["prompt_tokens"],
                u["completion_tokens"],
                u["prompt_tokens_details"]["cached_tokens"],
                u["completion_tokens_details"]["reasoning_tokens"],
            )
        elif url == "/v1/responses":
            assert isinstance(item, Reply)
            payload = render.response_object(ctx, item)
            u = payload["usage"]
            usage = Usage(
                u["input_tokens"],
                u["output_tokens"],
                u["input_tokens_details"]["cached_tokens"],
                u["output_tokens_details"]["reasoning_tokens"],
            )
        elif url == "/v1/completions":
            payload, usage = _text_completion(ctx, item)
        else:
            payload, usage = _embeddings(ctx, first)
        return LineResult(True, self._record(line, 200, payload), usage)

    def _record(self, line: BatchLine, status: int, body: Any) -> dict[str, Any]:
        new_id = self._server._new_id
        return {
            "id": new_id("batch_req_"),
            "custom_id": line.custom_id,
            "response": {"status_code": status, "request_id": new_id("req_"), "body": body},
            "error": None,
        }

    def _status_line(self, line: BatchLine, status: int, body: Any) -> LineResult:
        return LineResult(200 <= status < 300, self._record(line, status, body))

    def _line_error(self, line: BatchLine, error: LineError) -> LineResult:
        if error.status_code is None:
            record = {
                "id": self._server._new_id("batch_req_"),
                "custom_id": line.custom_id,
                "response": None,
                "error": {"code": error.code, "message": error.message},
            }
            return LineResult(False, record)
        kind = "invalid_request_error" if 400 <= error.status_code < 500 else "server_error"
        body = {
            "error": {"message": error.message, "type": kind, "param": None, "code": error.code}
        }
        return LineResult(False, self._record(line, error.status_code, body))


def _text_completion(
    ctx: render.RenderContext, item: Reply | Choices
) -> tuple[dict[str, Any], Usage]:
    replies = tuple(item.replies) if isinstance(item, Choices) else (item,)
    model = replies[0].model or ctx.request.get("model")
    prompt = max(1, ctx.request_size // 4)
    completion = sum((r.output_text_size + 3) // 4 for r in replies)
    if replies[0].usage is not None:
        prompt, completion = replies[0].usage.prompt_tokens, replies[0].usage.completion_tokens
    payload = {
        "id": ctx.response_id,
        "object": "text_completion",
        "created": ctx.created,
        "model": model if isinstance(model, str) else "fake-model",
        "system_fingerprint": "fp_fake",
        "choices": [
            {
                "text": r.streamed_text,
                "index": i,
                "logprobs": None,
                "finish_reason": r.finish_reason if r.finish_reason != "tool_calls" else "stop",
            }
            for i, r in enumerate(replies)
        ],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        },
    }
    return payload, Usage(prompt, completion)


def _embeddings(ctx: render.RenderContext, reply: Reply) -> tuple[dict[str, Any], Usage]:
    """One embedding per input: the reply's content when it is a JSON list of numbers, else
    a deterministic vector of `dimensions` (default 8) numbers drawn from the input."""
    raw = ctx.request.get("input")
    inputs: list[Any] = (
        raw if isinstance(raw, list) and raw and not isinstance(raw[0], int) else [raw]
    )
    given: list[float] | None = None
    try:
        value = json.loads(reply.content or "")
    except ValueError:
        value = None
    if (
        isinstance(value, list)
        and value
        and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in value)
    ):
        given = [float(x) for x in value]
    dims = ctx.request.get("dimensions")
    size = dims if isinstance(dims, int) and not isinstance(dims, bool) and dims > 0 else 8
    model = reply.model or ctx.request.get("model")
    model = model if isinstance(model, str) else "fake-model"
    data = []
    for i, text in enumerate(inputs):
        if given is None:
            rng = random.Random(f"{model}\n{json.dumps(text)}")
            vector = [round(rng.uniform(-1.0, 1.0), 6) for _ in range(size)]
        else:
            vector = given
        data.append({"object": "embedding", "index": i, "embedding": vector})
    prompt = reply.usage.prompt_tokens if reply.usage is not None else max(1, ctx.request_size // 4)
    payload = {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": prompt, "total_tokens": prompt},
    }
    return payload, Usage(prompt, 0)
