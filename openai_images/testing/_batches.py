"""The local server's ``/v1/batches``: Batch API jobs run in the background.

A batch goes the API's way::

    create -> validating (each line: JSON, a unique custom_id, POST to the batch's endpoint)
           -> failed (errors.data names the lines), or
           -> in_progress: each line answered by the server's own image road (the same
              request classes, rules and image maker as the live endpoints), a few at a time
           -> finalizing -> completed (output and error files), or expired / cancelled

Output lines go to the output file (2xx) or the error file (the rest, and lines never run)
as they finish, so in any order. ``BatchControl`` (the server's ``batch_api``) scripts the
speed, per-line failures, expiry and cancellation from Python.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import attrs
import orjson
from aiohttp import web
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from ._files import FileStore, lines_of, list_limit, page
from ._wire import Rejection, error_body

__all__ = ["BATCH_ENDPOINTS", "BatchControl", "BatchService", "LineAnswer", "LineFailure"]

BATCH_ENDPOINTS = ("/v1/images/generations", "/v1/images/edits")
"""The endpoints a batch of the local server may target."""

MAX_LINES = 50_000
MAX_INPUT_BYTES = 200 * 1024 * 1024

LineAnswer = Callable[[str, dict[str, Any], str], Awaitable[tuple[int, dict[str, Any]]]]
"""Answers one line: ``(endpoint name, body, origin) -> (status, body)``."""

_EXPIRED = {
    "code": "batch_expired",
    "message": "This request could not be executed before the completion window expired.",
}
_POLL = 0.01  # how often a paused batch looks again
_logger = logging.getLogger(__name__)


@attrs.frozen(kw_only=True)
class LineFailure:
    """A scripted failure of one line: its answer becomes this error.

    Example:
        >>> LineFailure(status=429, code="rate_limit_exceeded").status
        429
    """

    status: int = 500
    code: str | None = "server_error"
    message: str = "The server had an error while processing your request."
    type: str = "server_error"


@attrs.define
class BatchControl:
    """How the server's batches behave, set from Python (thread-safe to set).

    Attributes:
        line_delay: Seconds each line takes before it is answered.
        validation_delay: Seconds a batch stays ``validating``.
        concurrency: Lines answered at a time, per batch.
        paused: While true, no new line starts (a batch stays ``in_progress``).
        max_lines: Lines an input file may have.
        max_input_bytes: Bytes an input file may have.

    Example:
        ```python
        server.batch_api.fail("req-3", LineFailure(status=500))
        server.batch_api.paused = True
        server.batch_api.expire(batch_id)
        ```
    """

    line_delay: float = 0.0
    validation_delay: float = 0.0
    concurrency: int = 4
    paused: bool = False
    max_lines: int = MAX_LINES
    max_input_bytes: int = MAX_INPUT_BYTES
    _failures: dict[str, LineFailure] = attrs.field(factory=dict, alias="_failures")
    _expiring: set[str] = attrs.field(factory=set, alias="_expiring")

    def fail(self, custom_id: str, failure: LineFailure | None = None) -> None:
        """Make the line with this ``custom_id`` (in any batch) fail with ``failure``."""
        self._failures[custom_id] = failure or LineFailure()

    def expire(self, batch_id: str) -> None:
        """Let the batch's completion window run out now: unfinished lines expire."""
        self._expiring.add(batch_id)

    def failure_for(self, custom_id: str) -> LineFailure | None:
        """The scripted failure of a line, if any."""
        return self._failures.get(custom_id)

    def is_expiring(self, batch_id: str) -> bool:
        """Whether ``expire`` was called for the batch."""
        return batch_id in self._expiring


@attrs.define
class _Batch:
    id: str
    endpoint: str
    input_file_id: str
    metadata: dict[str, str] | None
    origin: str
    created_at: int = attrs.Factory(lambda: int(time.time()))
    status: str = "validating"
    times: dict[str, int] = attrs.Factory(dict)
    total: int = 0
    completed: int = 0
    failed: int = 0
    errors: list[dict[str, Any]] = attrs.Factory(list)
    output_file_id: str | None = None
    error_file_id: str | None = None
    model: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cancelling: bool = False

    def move(self, status: str) -> None:
        self.status = status
        stamp = {
            "in_progress": "in_progress_at",
            "finalizing": "finalizing_at",
            "completed": "completed_at",
            "failed": "failed_at",
            "expired": "expired_at",
            "cancelling": "cancelling_at",
            "cancelled": "cancelled_at",
        }.get(status)
        if stamp is not None:
            self.times[stamp] = int(time.time())

    def wire(self) -> dict[str, Any]:
        times = {
            name: self.times.get(name)
            for name in (
                "in_progress_at",
                "finalizing_at",
                "completed_at",
                "failed_at",
                "expired_at",
                "cancelling_at",
                "cancelled_at",
            )
        }
        return {
            "id": self.id,
            "object": "batch",
            "endpoint": self.endpoint,
            "model": self.model,
            "errors": {"object": "list", "data": self.errors} if self.errors else None,
            "input_file_id": self.input_file_id,
            "completion_window": "24h",
            "status": self.status,
            "output_file_id": self.output_file_id,
            "error_file_id": self.error_file_id,
            "created_at": self.created_at,
            "expires_at": self.created_at + 24 * 3600,
            **times,
            "request_counts": {
                "total": self.total,
                "completed": self.completed,
                "failed": self.failed,
            },
            "usage": {
                "input_tokens": self.input_tokens,
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens": self.output_tokens,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": self.input_tokens + self.output_tokens,
            },
            "metadata": self.metadata,
        }


class _Sink:
    """An output or error file, created at its first line."""

    def __init__(self, files: FileStore, *, name: str) -> None:
        self._files = files
        self._name = name
        self._out: Any = None
        self._reserved: tuple[str, Path] | None = None
        self._lock = anyio.Lock()  # lines finish concurrently; each is written whole

    async def write(self, line: dict[str, Any]) -> None:
        data = orjson.dumps(line) + b"\n"
        async with self._lock:
            if self._out is None:
                self._reserved = self._files.reserve()
                self._out = await anyio.open_file(self._reserved[1], "wb")
            await self._out.write(data)

    async def close(self) -> str | None:
        if self._out is None or self._reserved is None:
            return None
        await self._out.aclose()
        file_id, path = self._reserved
        self._files.create(file_id=file_id, filename=self._name, purpose="batch_output", path=path)
        return file_id


class BatchService:
    """The ``/v1/batches`` routes and the background work behind them.

    Args:
        files: The server's file store (input files are read from it, results added to it).
        answer: The server's answer to one line (its image road).
        control: The scripted behaviour.
    """

    def __init__(self, *, files: FileStore, answer: LineAnswer, control: BatchControl) -> None:
        self._files = files
        self._answer = answer
        self._control = control
        self._batches: dict[str, _Batch] = {}
        self._queue: MemoryObjectSendStream[_Batch] | None = None

    async def background(self, app: web.Application) -> AsyncIterator[None]:
        """An aiohttp cleanup context: batches run while the application does.

        Its start and end may run in different tasks (``start`` and ``aclose``), so the
        work is an asyncio task of its own (aiohttp runs on asyncio only), not a task group.
        """
        send, receive = anyio.create_memory_object_stream[_Batch](1000)
        self._queue = send
        task = asyncio.get_running_loop().create_task(self._run(receive))
        try:
            yield
        finally:
            self._queue = None
            send.close()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # -- routes ------------------------------------------------------------------------------

    async def create(self, request: web.Request, data: dict[str, Any]) -> dict[str, Any]:
        """``POST /v1/batches``."""
        for name in ("input_file_id", "endpoint", "completion_window"):
            if name not in data:
                raise Rejection(
                    f"Missing required parameter: '{name}'.",
                    param=name,
                    code="missing_required_parameter",
                )
        extra = set(data) - {"input_file_id", "endpoint", "completion_window", "metadata"}
        if extra:
            name = sorted(extra)[0]
            raise Rejection(
                f"Unrecognized request argument supplied: {name}",
                param=name,
                code="unknown_parameter",
            )
        endpoint = data["endpoint"]
        if endpoint not in BATCH_ENDPOINTS:
            supported = ", ".join(f"'{e}'" for e in BATCH_ENDPOINTS)
            raise Rejection(
                f"Invalid value: '{endpoint}'. The local server batches {supported}.",
                param="endpoint",
                code="invalid_value",
            )
        if data["completion_window"] != "24h":
            raise Rejection(
                f"Invalid value: '{data['completion_window']}'. Supported values are: '24h'.",
                param="completion_window",
                code="invalid_value",
            )
        metadata = data.get("metadata")
        if metadata is not None and (
            not isinstance(metadata, dict)
            or len(metadata) > 16
            or not all(isinstance(v, str) for v in metadata.values())
        ):
            raise Rejection(
                "Invalid 'metadata': expected at most 16 string values.",
                param="metadata",
                code="invalid_value",
            )
        stored = self._files.get(str(data["input_file_id"]))
        if stored is None:
            raise Rejection(
                f"No such File object: {data['input_file_id']}",
                status=404,
                param="input_file_id",
            )
        if stored.purpose != "batch":
            raise Rejection(
                f"File {stored.id} has purpose '{stored.purpose}', not 'batch'.",
                param="input_file_id",
                code="invalid_value",
            )
        if stored.size > self._control.max_input_bytes:
            raise Rejection(
                f"File {stored.id} is over {self._control.max_input_bytes} bytes.",
                param="input_file_id",
                code="file_too_large",
            )
        if self._queue is None:
            raise Rejection("The server is shutting down.", status=503, type="server_error")
        batch = _Batch(
            id=f"batch_{secrets.token_hex(12)}",
            endpoint=endpoint,
            input_file_id=stored.id,
            metadata=metadata,
            origin=str(request.url.origin()),
        )
        self._batches[batch.id] = batch
        self._queue.send_nowait(batch)
        return batch.wire()

    def retrieve(self, batch_id: str) -> dict[str, Any]:
        """``GET /v1/batches/{id}``."""
        return self._find(batch_id).wire()

    def cancel(self, batch_id: str) -> dict[str, Any]:
        """``POST /v1/batches/{id}/cancel``: no new line starts; finished lines are kept."""
        batch = self._find(batch_id)
        if batch.status in ("validating", "in_progress"):
            batch.cancelling = True
            batch.move("cancelling")
        elif batch.status not in ("cancelling", "cancelled"):
            raise Rejection(
                f"Cannot cancel a batch with status '{batch.status}'.",
                status=409,
                code="invalid_state",
            )
        return batch.wire()

    def listing(self, request: web.Request) -> dict[str, Any]:
        """``GET /v1/batches``, newest first."""
        limit = list_limit(request, default=20, most=100)
        batches = sorted(self._batches.values(), key=lambda b: (b.created_at, b.id), reverse=True)
        return page([b.wire() for b in batches], limit=limit, after=request.query.get("after"))

    def _find(self, batch_id: str) -> _Batch:
        batch = self._batches.get(batch_id)
        if batch is None:
            raise Rejection(f"No batch found with id '{batch_id}'.", status=404)
        return batch

    # -- the work ----------------------------------------------------------------------------

    async def _run(self, batches: MemoryObjectReceiveStream[_Batch]) -> None:
        async with anyio.create_task_group() as group, batches:
            async for batch in batches:
                group.start_soon(self._guarded, batch)

    async def _guarded(self, batch: _Batch) -> None:
        """Process a batch; a bug fails that batch (logged), never the others."""
        try:
            await self._process(batch)
        except Exception:
            _logger.exception("the local server failed on batch %s", batch.id)
            batch.errors.append(_batch_error("server_error", "The server failed on the batch."))
            batch.move("failed")

    async def _process(self, batch: _Batch) -> None:
        stored = self._files.get(batch.input_file_id)
        if stored is None:
            batch.errors.append(_batch_error("file_not_found", "The input file was deleted."))
            batch.move("failed")
            return
        if self._control.validation_delay:
            await anyio.sleep(self._control.validation_delay)
        total, errors = await anyio.to_thread.run_sync(
            _validate, stored.path, batch.endpoint, self._control.max_lines
        )
        if errors:
            batch.errors.extend(errors)
            batch.move("failed")
            return
        batch.total = total
        if batch.cancelling:
            batch.move("cancelled")
            return
        batch.move("in_progress")
        outputs = _Sink(self._files, name="batch_output.jsonl")
        failures = _Sink(self._files, name="batch_errors.jsonl")
        kind = batch.endpoint.rsplit("/", 1)[-1]
        started = 0
        try:
            async with anyio.create_task_group() as group:
                limiter = anyio.Semaphore(max(1, self._control.concurrency))
                lines = _lines(stored.path)
                async with contextlib.aclosing(lines):
                    async for custom_id, body in lines:
                        await limiter.acquire()
                        if not await self._may_start(batch):
                            limiter.release()
                            break
                        started += 1
                        group.start_soon(
                            self._line, batch, kind, custom_id, body, outputs, failures, limiter
                        )
            if self._control.is_expiring(batch.id) and not batch.cancelling:
                # The lines never started are reported as expired, as the API does.
                lines = _lines(stored.path)
                async with contextlib.aclosing(lines):
                    index = 0
                    async for custom_id, _ in lines:
                        if index >= started:
                            batch.failed += 1
                            line = _result_line(custom_id, response=None, error=_EXPIRED)
                            await failures.write(line)
                        index += 1
        finally:
            with anyio.CancelScope(shield=True):
                batch.output_file_id = await outputs.close()
                batch.error_file_id = await failures.close()
        if batch.cancelling:
            batch.move("cancelled")
        elif self._control.is_expiring(batch.id):
            batch.move("expired")
        else:
            batch.move("finalizing")
            batch.move("completed")

    async def _may_start(self, batch: _Batch) -> bool:
        while self._control.paused and not batch.cancelling:
            if self._control.is_expiring(batch.id):
                return False
            await anyio.sleep(_POLL)
        return not batch.cancelling and not self._control.is_expiring(batch.id)

    async def _line(
        self,
        batch: _Batch,
        kind: str,
        custom_id: str,
        body: dict[str, Any],
        outputs: _Sink,
        failures: _Sink,
        limiter: anyio.Semaphore,
    ) -> None:
        try:
            if self._control.line_delay:
                await anyio.sleep(self._control.line_delay)
            failure = self._control.failure_for(custom_id)
            if failure is not None:
                status = failure.status
                answer = error_body(failure.message, type=failure.type, code=failure.code)
            else:
                status, answer = await self._answer(kind, body, batch.origin)
            response = {
                "status_code": status,
                "request_id": f"req_{secrets.token_hex(16)}",
                "body": answer,
            }
            line = _result_line(custom_id, response=response, error=None)
            if 200 <= status < 300:
                batch.completed += 1
                usage = answer.get("usage") or {}
                batch.input_tokens += int(usage.get("input_tokens", 0))
                batch.output_tokens += int(usage.get("output_tokens", 0))
                batch.model = batch.model or body.get("model")
                await outputs.write(line)
            else:
                batch.failed += 1
                await failures.write(line)
        finally:
            limiter.release()


def _batch_error(code: str, message: str, *, line: int | None = None) -> dict[str, Any]:
    return {"code": code, "message": message, "param": None, "line": line}


def _result_line(
    custom_id: str, *, response: dict[str, Any] | None, error: dict[str, Any] | None
) -> dict[str, Any]:
    return {
        "id": f"batch_req_{secrets.token_hex(12)}",
        "custom_id": custom_id,
        "response": response,
        "error": error,
    }


def _validate(path: Path, endpoint: str, max_lines: int) -> tuple[int, list[dict[str, Any]]]:
    """Check every line's shape; the line count and the problems (at most 100)."""
    errors: list[dict[str, Any]] = []
    seen: set[str] = set()
    count = 0
    for number, raw in enumerate(lines_of(path), start=1):
        if not raw.strip():
            continue
        count += 1
        problem = _line_problem(raw, endpoint, seen)
        if problem is not None:
            errors.append(_batch_error(problem[0], problem[1], line=number))
            if len(errors) >= 100:
                break
    if count == 0:
        errors.append(_batch_error("empty_file", "The input file has no lines."))
    elif count > max_lines:
        errors.append(
            _batch_error(
                "too_many_lines", f"The input file has {count} lines; at most {max_lines}."
            )
        )
    return count, errors


def _line_problem(raw: bytes, endpoint: str, seen: set[str]) -> tuple[str, str] | None:
    try:
        line = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return "invalid_json_line", "This line is not valid JSON."
    if not isinstance(line, dict):
        return "invalid_request", "A line must be a JSON object."
    custom_id = line.get("custom_id")
    if not isinstance(custom_id, str) or not custom_id:
        return "missing_required_parameter", "The line has no 'custom_id'."
    if custom_id in seen:
        return "duplicate_custom_id", f"The custom_id '{custom_id}' is used more than once."
    seen.add(custom_id)
    if line.get("method") != "POST":
        return "invalid_method", "The 'method' of a line must be 'POST'."
    if line.get("url") != endpoint:
        return "mismatched_url", f"The line's 'url' is not the batch's endpoint '{endpoint}'."
    if not isinstance(line.get("body"), dict):
        return "invalid_request", "The line's 'body' must be a JSON object."
    return None


async def _lines(path: Path) -> AsyncGenerator[tuple[str, dict[str, Any]], None]:
    """The (custom_id, body) of each line, read in a thread a few at a time."""
    reader = lines_of(path)
    with contextlib.closing(reader):
        while chunk := await anyio.to_thread.run_sync(_take, reader, 16):
            for raw in chunk:
                if raw.strip():
                    line = orjson.loads(raw)
                    body = {key: value for key, value in line["body"].items() if value is not None}
                    yield line["custom_id"], body


def _take(reader: Iterator[bytes], count: int) -> list[bytes]:
    taken: list[bytes] = []
    for raw in reader:
        taken.append(raw)
        if len(taken) == count:
            break
    return taken
