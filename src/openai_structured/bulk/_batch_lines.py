"""The Batch API's file formats, sans-I/O: request lines in, result lines out.

A request line is one call, as the OpenAI Batch API (and ``vllm run-batch``) reads it::

    {"custom_id": "<record key>", "method": "POST", "url": "/v1/chat/completions", "body": {...}}

``body`` is exactly what a live call sends (the request builder's keyword arguments, less the
client-side ones). Files are split at 50,000 lines and 200 MB, the Batch API's limits.

A result line comes back in the output file (``response.status_code`` 200, the API's response
object in ``response.body``) or in the error file (another status, 0 included, or ``response``
null and a top-level ``error`` such as ``batch_expired``). Lines are joined by ``custom_id``:
the Batch API does not keep the input's order.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import OpenAIClientError

__all__ = [
    "MAX_FILE_BYTES",
    "MAX_FILE_LINES",
    "BatchLineError",
    "PartBuilder",
    "ResultLine",
    "body_of",
    "body_text",
    "parse_result_lines",
    "request_line",
]

#: The Batch API's limits on one input file.
MAX_FILE_LINES = 50_000
MAX_FILE_BYTES = 200 * 1024 * 1024
#: Keyword arguments of ``create()`` that configure the client, not the request body.
_CLIENT_SIDE = frozenset({"timeout", "extra_headers", "extra_query", "stream"})
#: Result statuses worth sending again (the request never ran, or the server failed it).
_TRANSIENT_STATUS = frozenset({0, 408, 409, 429, 500, 502, 503, 504})
_TRANSIENT_CODES = frozenset({"batch_expired", "batch_cancelled", "server_error", "timeout"})


class BatchLineError(OpenAIClientError):
    """A batch request that came back without an answer: an error line of the batch's error
    file (``status_code`` the HTTP status it got, 0 when it never got one; ``code`` the API's
    error code such as ``batch_expired``)."""

    def __init__(
        self, message: str, *, custom_id: str, status_code: int | None, code: str | None
    ) -> None:
        super().__init__(message)
        self.custom_id = custom_id
        self.status_code = status_code
        self.code = code

    @property
    def transient(self) -> bool:
        """Whether sending the request again may well work (no answer was produced)."""
        return self.status_code in _TRANSIENT_STATUS or self.code in _TRANSIENT_CODES


def body_of(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON body a live ``create(**kwargs)`` would send."""
    body = {k: v for k, v in kwargs.items() if k not in _CLIENT_SIDE and k != "extra_body"}
    extra = kwargs.get("extra_body")
    if isinstance(extra, Mapping):
        body.update(extra)
    return body


def body_text(kwargs: Mapping[str, Any]) -> str:
    """:func:`body_of` as compact JSON (what the ledger keeps and the line carries)."""
    return json.dumps(body_of(kwargs), ensure_ascii=False, separators=(",", ":"))


def request_line(custom_id: str, url: str, body: str) -> bytes:
    """One line of a batch input file, newline included; ``body`` is JSON text."""
    head = json.dumps(custom_id, ensure_ascii=False)
    return f'{{"custom_id":{head},"method":"POST","url":"{url}","body":{body}}}\n'.encode()


@dataclass
class PartBuilder:
    """Request lines gathered into files within the Batch API's limits: :meth:`add` returns
    the finished file's ``(custom_id, line, body)`` triples when the next line would not fit."""

    url: str
    max_lines: int = MAX_FILE_LINES
    max_bytes: int = MAX_FILE_BYTES

    def __post_init__(self) -> None:
        if self.max_lines < 1 or self.max_bytes < 1:
            raise ValueError("a batch file holds at least one line")
        self._lines: list[tuple[str, bytes, str]] = []
        self._size = 0

    def add(self, custom_id: str, body: str) -> list[tuple[str, bytes, str]] | None:
        line = request_line(custom_id, self.url, body)
        if len(line) > self.max_bytes:
            raise OpenAIClientError(
                f"this record's request is {len(line):,} bytes, more than a batch file may "
                f"hold ({self.max_bytes:,}); shorten its prompt"
            )
        full = None
        if self._lines and (
            len(self._lines) >= self.max_lines or self._size + len(line) > self.max_bytes
        ):
            full = self.flush()
        self._lines.append((custom_id, line, body))
        self._size += len(line)
        return full

    def flush(self) -> list[tuple[str, bytes, str]]:
        """The lines gathered so far (possibly none), and start a new file."""
        lines, self._lines, self._size = self._lines, [], 0
        return lines

    def __len__(self) -> int:
        return len(self._lines)


@dataclass(frozen=True)
class ResultLine:
    """One line of an output or error file. ``body``: the API's response (JSON text) when the
    request got a 2xx answer; else ``error`` says why not."""

    custom_id: str
    status_code: int | None
    body: bytes | None
    error: BatchLineError | None


def parse_result_lines(data: bytes, source: str) -> Iterator[ResultLine]:
    """The result lines of a downloaded output or error file (``source`` names it in errors).
    A line that is not a result line raises: a file we cannot read is not silently skipped."""
    for number, raw in enumerate(data.splitlines(), 1):
        if not raw.strip():
            continue
        try:
            line = json.loads(raw)
        except ValueError:
            line = None
        custom_id = line.get("custom_id") if isinstance(line, dict) else None
        if not isinstance(custom_id, str):
            raise OpenAIClientError(
                f"{source} line {number} is not a batch result line (a JSON object with a "
                f"custom_id): {raw[:120].decode('utf-8', 'replace')!r}"
            )
        assert isinstance(line, dict)
        yield _result(custom_id, line)


def _result(custom_id: str, line: Mapping[str, Any]) -> ResultLine:
    response = line.get("response")
    error = line.get("error")
    status: int | None = None
    if isinstance(response, Mapping):
        code = response.get("status_code")
        status = code if isinstance(code, int) and not isinstance(code, bool) else 0
        body = response.get("body")
        if 200 <= status < 300 and isinstance(body, Mapping):
            data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
            return ResultLine(custom_id, status, data, None)
        if isinstance(body, Mapping) and isinstance(body.get("error"), Mapping):
            error = body["error"]
    if not isinstance(error, Mapping):
        error = {}
    code_text = error.get("code") if isinstance(error.get("code"), str) else None
    message = error.get("message") if isinstance(error.get("message"), str) else None
    where = "got no HTTP status" if status == 0 else f"got HTTP {status}"
    if status is None:
        where = "was not run"
    text = (
        f"the batch request {where}"
        + (f" ({code_text})" if code_text else "")
        + (f": {message}" if message else ": the error file gives no reason")
    )
    return ResultLine(
        custom_id, status, None,
        BatchLineError(text, custom_id=custom_id, status_code=status, code=code_text),
    )  # fmt: skip
