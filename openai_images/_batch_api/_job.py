"""A Batch API job: submit, wait, collect, cancel and resume.

::

    requests -> drafts (checked, local images hashed; nothing sent yet)
             -> images uploaded once each (or inlined as data: URLs)
             -> shards (one endpoint each, within the line and byte limits)
             -> each shard uploaded, its batch created
    wait     -> polled with backoff until every batch is final
    results  -> output and error files streamed line by line -> images saved -> BatchResult

Every step is recorded in the state file, so ``BatchAPI.resume`` carries on after a crash
without uploading, submitting or downloading anything twice; every line is handed over
exactly once (the journal). HTTP goes through ``Remote`` only.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import os
import sys
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

import anyio
import anyio.to_thread
import attrs
import orjson

from openai_images._batch import BatchResult, KeyFunction, _write_outputs
from openai_images._errors import RequestValidationError, Violation
from openai_images._imagebytes import image_bytes
from openai_images._inputs import resolve_image
from openai_images._requests import EditRequest, GenerateRequest, ImageRef, ImageRequest
from openai_images._responses import Usage
from openai_images._send import Sender

from ._lines import (
    MAX_FILE_BYTES,
    MAX_LINES,
    URLS,
    BatchLineError,
    LocalImage,
    Sharder,
    draft_line,
    final_line,
    local_digests,
    parse_result_line,
)
from ._remote import Remote
from ._state import STATE_NAME, JobState, Journal, ShardState

__all__ = [
    "BatchAPI",
    "BatchAPIJob",
    "BatchAPIProgress",
    "BatchAPIReport",
    "RemoteBatch",
    "RequestCounts",
]

ImageStrategy = Literal["upload", "inline"]
FINAL = frozenset({"completed", "failed", "expired", "cancelled"})
DEFAULT_IMAGE_PURPOSE = "vision"
"""The purpose images uploaded for edits get (the API uses ``vision`` and ``user_data``)."""
INLINE_MAX_BYTES = 20 * 1024 * 1024
"""The largest ``data:`` URL an image reference may carry."""
_SPOOL_CHUNK = 256 * 1024
INPUTS = "inputs"  # the work folder's spool of input images, by digest


@attrs.frozen(kw_only=True)
class RequestCounts:
    """A batch's ``request_counts``."""

    total: int = 0
    completed: int = 0
    failed: int = 0


@attrs.frozen(kw_only=True)
class BatchProblem:
    """One entry of a batch's ``errors.data``: why (a line of) its input was refused."""

    code: str | None
    message: str | None
    line: int | None = None
    param: str | None = None


@attrs.frozen(kw_only=True)
class RemoteBatch:
    """A batch as the API describes it.

    Attributes:
        id: ``batch_...``.
        status: ``validating``, ``failed``, ``in_progress``, ``finalizing``, ``completed``,
            ``expired``, ``cancelling`` or ``cancelled``.
        endpoint: ``/v1/images/generations`` or ``/v1/images/edits``.
        request_counts: Lines in all, completed and failed.
        errors: Why the input was refused (status ``failed``).
        input_file_id: The uploaded JSONL.
        output_file_id: Successful lines, once final.
        error_file_id: Failed (and expired) lines, once final.
        created_at: Unix seconds; the other timestamps are ``None`` until reached.
        usage: Token totals, when the API reports them.
        metadata: As sent.
    """

    id: str
    status: str
    endpoint: str
    request_counts: RequestCounts
    errors: tuple[BatchProblem, ...] = ()
    input_file_id: str | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None
    created_at: int | None = None
    in_progress_at: int | None = None
    finalizing_at: int | None = None
    completed_at: int | None = None
    failed_at: int | None = None
    expired_at: int | None = None
    cancelling_at: int | None = None
    cancelled_at: int | None = None
    expires_at: int | None = None
    usage: Usage | None = None
    metadata: Mapping[str, str] | None = None

    @property
    def final(self) -> bool:
        """Whether the batch will not change any more."""
        return self.status in FINAL

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> RemoteBatch:
        """Read the API's batch object (unknown fields ignored)."""
        counts = data.get("request_counts") or {}
        errors = (data.get("errors") or {}).get("data") or []
        usage = data.get("usage")
        stamps = {
            name: _int_or_none(data.get(name))
            for name in (
                "created_at",
                "in_progress_at",
                "finalizing_at",
                "completed_at",
                "failed_at",
                "expired_at",
                "cancelling_at",
                "cancelled_at",
                "expires_at",
            )
        }
        return cls(
            id=str(data["id"]),
            status=str(data["status"]),
            endpoint=str(data.get("endpoint", "")),
            request_counts=RequestCounts(
                total=int(counts.get("total", 0)),
                completed=int(counts.get("completed", 0)),
                failed=int(counts.get("failed", 0)),
            ),
            errors=tuple(
                BatchProblem(
                    code=e.get("code"),
                    message=e.get("message"),
                    line=_int_or_none(e.get("line")),
                    param=e.get("param"),
                )
                for e in errors
                if isinstance(e, dict)
            ),
            input_file_id=data.get("input_file_id"),
            output_file_id=data.get("output_file_id"),
            error_file_id=data.get("error_file_id"),
            usage=Usage(
                input_tokens=int(usage.get("input_tokens", 0)),
                output_tokens=int(usage.get("output_tokens", 0)),
                total_tokens=int(usage.get("total_tokens", 0)),
            )
            if isinstance(usage, dict)
            else None,
            metadata=data.get("metadata"),
            **stamps,
        )


@attrs.frozen(kw_only=True)
class BatchAPIProgress:
    """Where a job stands, passed to ``wait``'s ``progress`` after each poll.

    Attributes:
        total: Lines in the job.
        completed: Lines answered with images so far (all batches).
        failed: Lines that failed so far.
        batches: Each batch as last seen.
    """

    total: int
    completed: int
    failed: int
    batches: tuple[RemoteBatch, ...]

    @property
    def done(self) -> int:
        """Lines finished either way."""
        return self.completed + self.failed


@attrs.frozen(kw_only=True)
class BatchAPIReport:
    """What a job did, once collected.

    Attributes:
        total: Lines in the job.
        completed: Lines whose images were saved (or handed over).
        failed: Lines answered with an error.
        expired: Lines the completion window ran out on.
        cancelled: Lines never run because their batch was cancelled (or failed validation).
        input_tokens: Usage totals of the completed lines.
        output_tokens: Usage totals of the completed lines.
        estimated_cost: In US dollars, from the usage at the given Batch API prices.
    """

    total: int
    completed: int
    failed: int
    expired: int
    cancelled: int
    input_tokens: int
    output_tokens: int
    estimated_cost: float


class BatchAPI:
    """The OpenAI Batch API for image requests: half the price, within 24 hours.

    Args:
        sender: The road of the client whose settings and connection are used (a client's
            ``batch_api`` property makes one for you).
        max_lines: Lines per input file (the API takes 50,000).
        max_bytes: Bytes per input file (the API takes 200 MB).

    Example:
        ```python
        job = await client.batch_api.submit(requests, output_dir="out")
        await job.wait(progress=print)
        async for result in job.results():
            print(result.index, result.paths or result.error)
        ```
    """

    def __init__(
        self,
        sender: Sender,
        *,
        max_lines: int = MAX_LINES,
        max_bytes: int = MAX_FILE_BYTES,
    ) -> None:
        if not 1 <= max_lines <= MAX_LINES:
            raise ValueError(f"max_lines must be from 1 to {MAX_LINES}, not {max_lines}")
        if not 1 <= max_bytes <= MAX_FILE_BYTES:
            raise ValueError(f"max_bytes must be from 1 to {MAX_FILE_BYTES}, not {max_bytes}")
        self._remote = Remote(sender)
        self._max_lines = max_lines
        self._max_bytes = max_bytes

    def with_limits(
        self, *, max_lines: int | None = None, max_bytes: int | None = None
    ) -> BatchAPI:
        """The same Batch API with lower per-file limits, to shard sooner (tests, or files
        of a size you prefer).

        Example:
            ```python
            smaller = client.batch_api.with_limits(max_lines=1_000)
            job = await smaller.submit(requests, output_dir="out")
            ```
        """
        return BatchAPI(
            self._remote.sender,
            max_lines=self._max_lines if max_lines is None else max_lines,
            max_bytes=self._max_bytes if max_bytes is None else max_bytes,
        )

    async def submit(
        self,
        requests: Iterable[ImageRequest] | AsyncIterable[ImageRequest],
        *,
        output_dir: str | os.PathLike[str],
        key: KeyFunction | None = None,
        metadata: Mapping[str, str] | None = None,
        images: ImageStrategy = "upload",
        image_purpose: str = DEFAULT_IMAGE_PURPOSE,
    ) -> BatchAPIJob:
        """Check every request, upload what is needed and create the batches.

        Args:
            requests: ``GenerateRequest`` and ``EditRequest`` objects, as ``map`` takes.
            output_dir: Where the images, the state file and the job's files go.
            key: Names each request's output files: ``key(request, index)``
                (default: the index, zero-padded to six digits).
            metadata: Sent with each batch (at most 16 string values).
            images: How an edit's local input images are referenced: ``"upload"``d to
                ``/v1/files`` (once per distinct image) and named by ``file_id``, or
                ``"inline"`` as ``data:`` URLs (each at most 20 MB, counted in the 200 MB).
            image_purpose: The purpose uploaded images get (``"vision"`` by default;
                ``"user_data"`` is the other one the API uses).

        Raises:
            RequestValidationError: A request the Batch API cannot take, or that breaks a
                rule, naming its line; raised before anything is uploaded.
            FileExistsError: ``output_dir`` already holds a job's state (resume it instead).
        """
        if images not in ("upload", "inline"):
            raise ValueError(f"images must be 'upload' or 'inline', not {images!r}")
        directory = Path(output_dir)
        if (directory / STATE_NAME).exists():
            raise FileExistsError(
                f"{directory / STATE_NAME} holds a job already: resume it with "
                "BatchAPI.resume(state_file)"
            )
        state = JobState(
            output_dir=str(directory),
            images=images,
            purpose=image_purpose,
            metadata=dict(metadata or {}),
        )
        work = state.work_dir
        await anyio.to_thread.run_sync(functools.partial(work.mkdir, parents=True, exist_ok=True))
        sources = await _write_drafts(requests, work, key=key, images=images)
        state.total = sources.total
        state.sources = sources.paths
        job = BatchAPIJob(self._remote, state, max_lines=self._max_lines, max_bytes=self._max_bytes)
        await job._save()
        await job._submit()
        return job

    async def resume(self, state_file: str | os.PathLike[str]) -> BatchAPIJob:
        """Carry on with a job from its state file: nothing done before is done again.

        Whatever step the job was at (uploading, submitting, waiting, collecting), it
        goes on from there; ``results`` hands over only the lines not handed over before.
        """
        job = await self.load(state_file)
        await job._submit()
        return job

    async def load(self, state_file: str | os.PathLike[str]) -> BatchAPIJob:
        """The job of a state file as it stands, without carrying it on: to look at it
        (``refresh``, ``progress``, ``report``) or ``cancel`` it. ``resume`` carries on.

        Raises:
            ValueError: The file is not a Batch API state file.
            OSError: It cannot be read.
        """
        state = await anyio.to_thread.run_sync(JobState.load, Path(state_file))
        limits = {"max_lines": self._max_lines, "max_bytes": self._max_bytes}
        return BatchAPIJob(self._remote, state, **limits)


@attrs.define
class _Drafted:
    total: int
    paths: dict[str, str]


class BatchAPIJob:
    """One job of one or more batches (see ``BatchAPI.submit``)."""

    def __init__(self, remote: Remote, state: JobState, *, max_lines: int, max_bytes: int) -> None:
        self._remote = remote
        self._state = state
        self._max_lines = max_lines
        self._max_bytes = max_bytes
        self._batches: dict[int, RemoteBatch] = {}

    @property
    def state_file(self) -> Path:
        """The file ``BatchAPI.resume`` takes."""
        return self._state.path

    @property
    def batch_ids(self) -> tuple[str, ...]:
        """The job's batches, in shard order."""
        return tuple(s.batch_id for s in self._state.shards if s.batch_id is not None)

    @property
    def total(self) -> int:
        """Lines in the job."""
        return self._state.total

    # -- submitting --------------------------------------------------------------------------

    async def _save(self) -> None:
        await anyio.to_thread.run_sync(self._state.save)

    async def _submit(self) -> None:
        state = self._state
        if not state.prepared:
            if state.images == "upload":
                for digest in await anyio.to_thread.run_sync(self._digests):
                    if digest not in state.uploads:
                        path = state.work_dir / INPUTS / state.sources[digest]
                        state.uploads[digest] = await self._remote.upload(
                            path, purpose=state.purpose, filename=f"{digest[:16]}{path.suffix}"
                        )
                        await self._save()
            state.shards = await anyio.to_thread.run_sync(self._write_shards)
            state.prepared = True
            await self._save()
        for shard in state.shards:
            if shard.status == "cancelled" and shard.batch_id is None:
                continue
            if shard.input_file_id is None:
                shard.input_file_id = await self._remote.upload(
                    state.work_dir / shard.path, purpose="batch"
                )
                await self._save()
            if shard.batch_id is None:
                created = RemoteBatch.from_wire(
                    await self._remote.create_batch(
                        input_file_id=shard.input_file_id,
                        endpoint=URLS[shard.endpoint],
                        metadata=state.metadata or None,
                    )
                )
                shard.batch_id = created.id
                shard.status = created.status
                self._batches[shard.number] = created
                await self._save()

    def _digests(self) -> list[str]:
        """Each local image the drafts refer to, once, in first-use order (blocking)."""
        seen: dict[str, None] = {}
        with (self._state.work_dir / "draft.jsonl").open("rb") as drafts:
            for raw in drafts:
                for digest in local_digests(orjson.loads(raw)):
                    seen.setdefault(digest)
        return list(seen)

    def _write_shards(self) -> list[ShardState]:
        """The drafts with their references, split into input files (blocking)."""
        state = self._state
        work = state.work_dir
        sharder = Sharder(max_lines=self._max_lines, max_bytes=self._max_bytes)
        reference = self._reference()
        files: dict[int, Any] = {}
        try:
            with (work / "draft.jsonl").open("rb") as drafts:
                for raw in drafts:
                    draft = orjson.loads(raw)
                    endpoint = "edits" if draft["url"] == URLS["edits"] else "generations"
                    line = final_line(draft, reference)
                    try:
                        number = sharder.place(endpoint, len(line))
                    except ValueError as error:
                        violation = Violation(
                            param="body", message=f"line {draft['custom_id']}: {error}"
                        )
                        raise RequestValidationError([violation]) from error
                    if number not in files:
                        files[number] = (work / _shard_name(number, endpoint)).open("wb")
                    files[number].write(line)
        finally:
            for file in files.values():
                file.close()
        return [
            ShardState(
                number=number,
                endpoint=endpoint,
                path=_shard_name(number, endpoint),
                lines=lines,
                size=size,
            )
            for number, (endpoint, lines, size) in enumerate(sharder.shards)
        ]

    def _reference(self) -> Callable[[str], dict[str, str]]:
        state = self._state
        if state.images == "upload":
            return lambda digest: {"file_id": state.uploads[digest]}

        @functools.lru_cache(maxsize=8)
        def inline(digest: str) -> dict[str, str]:
            path = state.work_dir / INPUTS / state.sources[digest]
            data = path.read_bytes()
            content_type = _CONTENT_TYPES.get(path.suffix.lower(), "image/png")
            return {"image_url": f"data:{content_type};base64,{base64.b64encode(data).decode()}"}

        return inline

    # -- waiting -----------------------------------------------------------------------------

    async def refresh(self, *, every: bool = False) -> tuple[RemoteBatch, ...]:
        """Look at every batch not yet final once; each batch as last seen.

        Args:
            every: Look at the batches already final and collected too (to show them);
                by default they are not asked for again.
        """
        changed = False
        for shard in self._state.shards:
            if shard.batch_id is None:
                continue
            known = self._batches.get(shard.number)
            if known is not None and known.final:
                continue
            if known is None and shard.status in FINAL and shard.finished and not every:
                continue
            batch = RemoteBatch.from_wire(await self._remote.retrieve_batch(shard.batch_id))
            self._batches[shard.number] = batch
            if (shard.status, shard.output_file_id, shard.error_file_id) != (
                batch.status,
                batch.output_file_id,
                batch.error_file_id,
            ):
                shard.status = batch.status
                shard.output_file_id = batch.output_file_id
                shard.error_file_id = batch.error_file_id
                changed = True
        if changed:
            await self._save()
        return tuple(self._batches[n] for n in sorted(self._batches))

    def progress(self) -> BatchAPIProgress:
        """Where the job stands, from the batches as last seen."""
        batches = tuple(self._batches[n] for n in sorted(self._batches))
        return BatchAPIProgress(
            total=self._state.total,
            completed=sum(b.request_counts.completed for b in batches),
            failed=sum(b.request_counts.failed for b in batches),
            batches=batches,
        )

    @property
    def final(self) -> bool:
        """Whether every batch is final."""
        return all(
            shard.status in FINAL or (shard.batch_id is None and shard.status == "cancelled")
            for shard in self._state.shards
        )

    async def wait(
        self,
        *,
        progress: Callable[[BatchAPIProgress], object] | None = None,
        poll_interval: float = 5.0,
        max_interval: float = 60.0,
        interrupt_note: bool = True,
    ) -> tuple[RemoteBatch, ...]:
        """Poll until every batch is final, backing off while nothing moves.

        Interrupting it (``Ctrl-C``, a cancelled task) leaves the remote batches running;
        a note on stderr says how to resume or cancel.

        Args:
            progress: Called with a ``BatchAPIProgress`` after each poll.
            poll_interval: Seconds before the second poll; it grows by half each time
                nothing changed, up to ``max_interval``, and starts again after a change.
            max_interval: The longest wait between polls.
            interrupt_note: Print that note (``False`` for a caller that says it its own
                way, as the command line does).
        """
        interval = poll_interval
        last: tuple[int, int, tuple[str, ...]] | None = None
        try:
            while True:
                batches = await self.refresh()
                now = self.progress()
                if progress is not None:
                    progress(now)
                if self.final:
                    return batches
                seen = (now.completed, now.failed, tuple(b.status for b in batches))
                interval = poll_interval if seen != last else min(interval * 1.5, max_interval)
                last = seen
                await anyio.sleep(interval)
        except (KeyboardInterrupt, anyio.get_cancelled_exc_class()):
            if not interrupt_note:
                raise
            sys.stderr.write(
                f"Stopped waiting; the batches {', '.join(self.batch_ids)} keep running.\n"
                f"Resume with BatchAPI(client).resume({str(self.state_file)!r}), or cancel "
                "them with job.cancel().\n"
            )
            raise

    async def cancel(self) -> tuple[RemoteBatch, ...]:
        """Ask every batch not yet final to stop; what finished stays collectable."""
        for shard in self._state.shards:
            if shard.batch_id is None:
                shard.status = "cancelled"
                continue
            if shard.status in FINAL:
                continue
            batch = RemoteBatch.from_wire(await self._remote.cancel_batch(shard.batch_id))
            self._batches[shard.number] = batch
            shard.status = batch.status
        await self._save()
        return tuple(self._batches[n] for n in sorted(self._batches))

    # -- collecting --------------------------------------------------------------------------

    async def results(self) -> AsyncIterator[BatchResult]:
        """Each line's ``BatchResult`` (any order), its images saved; call after ``wait``.

        Lines handed over before (in this run or one before a crash) are not handed over
        again. A line of an expired or cancelled batch that never ran is a result with a
        ``BatchLineError``.
        """
        state = self._state
        out = Path(state.output_dir)
        journal = await anyio.to_thread.run_sync(Journal, state.work_dir / "collected.log")
        try:
            for shard in state.shards:
                if shard.finished:
                    continue
                if shard.status not in FINAL:
                    raise RuntimeError(
                        f"batch {shard.batch_id} is {shard.status}: wait for it before results()"
                    )
                index = await anyio.to_thread.run_sync(_line_index, state.work_dir / shard.path)
                for file_id in (shard.output_file_id, shard.error_file_id):
                    if file_id is None or file_id in shard.collected:
                        continue
                    async for raw in self._remote.lines(file_id):
                        outcome = parse_result_line(raw)
                        if outcome.custom_id in journal:
                            continue
                        request = await anyio.to_thread.run_sync(
                            _request_at, state.work_dir / shard.path, index[outcome.custom_id]
                        )
                        result = BatchResult(
                            index=outcome.index,
                            request=request,
                            response=outcome.response,
                            error=outcome.error,
                        )
                        if outcome.response is not None:
                            payloads = [
                                await image_bytes(image, downloader=self._remote, position=number)
                                for number, image in enumerate(outcome.response.data)
                            ]
                            paths = await anyio.to_thread.run_sync(
                                _write_outputs,
                                out,
                                outcome.key,
                                outcome.response.output_format,
                                payloads,
                            )
                            result = attrs.evolve(result, paths=paths)
                        await anyio.to_thread.run_sync(
                            journal.add, outcome.custom_id, *_journal_entry(result)
                        )
                        yield result
                    shard.collected.append(file_id)
                    await self._save()
                # Lines no file answered: the batch was cancelled or refused its input.
                for cid, offset in index.items():
                    if cid in journal:
                        continue
                    request = await anyio.to_thread.run_sync(
                        _request_at, state.work_dir / shard.path, offset
                    )
                    code = "batch_cancelled" if shard.status == "cancelled" else "batch_failed"
                    error = BatchLineError(
                        f"The line was not run: its batch {shard.batch_id} is {shard.status}.",
                        code=code,
                    )
                    number, _, _ = cid.partition(":")
                    result = BatchResult(index=int(number), request=request, error=error)
                    await anyio.to_thread.run_sync(journal.add, cid, *_journal_entry(result))
                    yield result
                shard.finished = True
                await self._save()
        finally:
            journal.close()

    def report(self, *, input_price: float = 5.0, output_price: float = 20.0) -> BatchAPIReport:
        """Counts and token totals of the lines collected so far (blocking: reads the journal).

        Args:
            input_price: US dollars per million input tokens at Batch API prices (default:
                gpt-image-1's image-input price, halved).
            output_price: US dollars per million output tokens (gpt-image-1's, halved).
        """
        counts = {"ok": 0, "failed": 0, "batch_expired": 0, "batch_cancelled": 0}
        tokens = [0, 0]
        path = self._state.work_dir / "collected.log"
        if path.exists():
            with path.open("rb") as journal:
                for raw in journal:
                    parts = raw.rstrip(b"\n").split(b"\t")
                    if len(parts) != 4:
                        continue
                    kind = parts[1].decode()
                    counts[kind if kind in counts else "failed"] += 1
                    tokens[0] += int(parts[2])
                    tokens[1] += int(parts[3])
        return BatchAPIReport(
            total=self._state.total,
            completed=counts["ok"],
            failed=counts["failed"],
            expired=counts["batch_expired"],
            cancelled=counts["batch_cancelled"],
            input_tokens=tokens[0],
            output_tokens=tokens[1],
            estimated_cost=(tokens[0] * input_price + tokens[1] * output_price) / 1_000_000,
        )


# -- helpers (blocking ones run in threads) ----------------------------------------------------

_CONTENT_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}
_CONTENT_TYPES[".webp"] = "image/webp"
_EXTENSIONS = {"image/png": ".png", "image/jpeg": ".jpg", "image/webp": ".webp"}


def _shard_name(number: int, endpoint: str) -> str:
    return f"shard-{number:03d}-{endpoint}.jsonl"


def _journal_entry(result: BatchResult) -> tuple[str, str, str]:
    """A line's journal details: its outcome, input and output tokens."""
    if result.error is None:
        kind = "ok"
    elif isinstance(result.error, BatchLineError) and result.error.code in (
        "batch_expired",
        "batch_cancelled",
    ):
        kind = result.error.code
    else:
        kind = "failed"
    usage = result.response.usage if result.response is not None else None
    used = (usage.input_tokens, usage.output_tokens) if usage is not None else (0, 0)
    return kind, str(used[0]), str(used[1])


def _line_index(path: Path) -> dict[str, int]:
    """The byte offset of each line of a shard, by custom_id."""
    index: dict[str, int] = {}
    offset = 0
    with path.open("rb") as shard:
        for raw in shard:
            head = raw[:200]
            start = head.find(b'"custom_id":"') + len(b'"custom_id":"')
            end = head.find(b'"', start)
            index[head[start:end].decode()] = offset
            offset += len(raw)
    return index


def _request_at(path: Path, offset: int) -> ImageRequest:
    """The request of the shard line at ``offset``, as sent (images by reference)."""
    with path.open("rb") as shard:
        shard.seek(offset)
        line = orjson.loads(shard.readline())
    body = dict(line["body"])
    if line["url"] == URLS["generations"]:
        return GenerateRequest(**body)
    body["images"] = [ImageRef(**ref) for ref in body.get("images", [])]
    if isinstance(body.get("mask"), dict):
        body["mask"] = ImageRef(**body["mask"])
    return EditRequest(**body)


def _check_key(key: object, index: int) -> str:
    if not isinstance(key, str) or key in ("", ".", "..") or any(c in key for c in "/\\\0"):
        raise ValueError(f"the key of request {index} is {key!r}, not a plain file name")
    return key


async def _write_drafts(
    requests: Iterable[ImageRequest] | AsyncIterable[ImageRequest],
    work: Path,
    *,
    key: KeyFunction | None,
    images: ImageStrategy,
) -> _Drafted:
    """Check every request and write its draft line; local images hashed (and spooled)."""
    inputs = work / INPUTS
    await anyio.to_thread.run_sync(functools.partial(inputs.mkdir, exist_ok=True))
    paths: dict[str, str] = {}
    by_path: dict[tuple[str, int, int], LocalImage] = {}
    total = 0
    async with await anyio.open_file(work / "draft.jsonl", "wb") as drafts:
        async for index, request in _enumerate(requests):
            made = key(request, index) if key is not None else f"{index:06d}"
            name = _check_key(made, index)
            local: list[LocalImage] = []
            mask: LocalImage | None = None
            if isinstance(request, EditRequest) and not request.is_json:
                inputs_list = request.image_inputs
                listed = isinstance(request.image, list)
                for number, value in enumerate(inputs_list):
                    param = f"image[{number}]" if listed else "image"
                    local.append(await _local(value, param, inputs, paths, by_path))
                if request.mask is not None and not isinstance(request.mask, ImageRef):
                    mask = await _local(request.mask, "mask", inputs, paths, by_path)
                if images == "inline":
                    for image in (*local, *([mask] if mask else [])):
                        if (image.size + 2) // 3 * 4 + 40 > INLINE_MAX_BYTES:
                            violation = Violation(
                                param="image",
                                message=f"line {index}: an image of {image.size} bytes is over "
                                "the 20 MB of a data: URL; use images='upload'",
                            )
                            raise RequestValidationError([violation])
            draft = draft_line(request, index=index, key=name, images=local, mask=mask)
            await drafts.write(orjson.dumps(draft) + b"\n")
            total += 1
    return _Drafted(total=total, paths=paths)


async def _enumerate(
    requests: Iterable[ImageRequest] | AsyncIterable[ImageRequest],
) -> AsyncIterator[tuple[int, ImageRequest]]:
    index = 0
    if isinstance(requests, AsyncIterable):
        async for request in requests:
            yield index, request
            index += 1
    else:
        for request in requests:
            yield index, request
            index += 1


async def _local(
    value: Any,
    param: str,
    inputs: Path,
    paths: dict[str, str],
    by_path: dict[tuple[str, int, int], LocalImage],
) -> LocalImage:
    """Hash one local input image into the spool; a path is read once however often used."""
    stat: os.stat_result | None = None
    if isinstance(value, (str, os.PathLike)):
        try:
            stat = await anyio.to_thread.run_sync(os.stat, value)
        except OSError:
            stat = None
        if stat is not None:
            cache_key = (os.fspath(value), stat.st_size, stat.st_mtime_ns)
            known = by_path.get(cache_key)
            if known is not None:
                return known
    source = await resolve_image(value, param=param)
    content_type = source.info.content_type or "image/png"
    spool = inputs / f".incoming-{time.monotonic_ns()}"
    digest = hashlib.blake2b(digest_size=20)
    size = 0
    async with await anyio.open_file(spool, "wb") as out:
        async for chunk in source.chunks(chunk_size=_SPOOL_CHUNK):
            digest.update(chunk)
            size += len(chunk)
            await out.write(chunk)
    hexdigest = digest.hexdigest()
    target = inputs / f"{hexdigest}{_EXTENSIONS.get(content_type, '.png')}"
    if target.name in paths.values() or target.exists():
        await anyio.to_thread.run_sync(spool.unlink)
    else:
        await anyio.to_thread.run_sync(spool.rename, target)
    paths[hexdigest] = target.name
    image = LocalImage(digest=hexdigest, content_type=content_type, size=size)
    if stat is not None:
        by_path[(os.fspath(value), stat.st_size, stat.st_mtime_ns)] = image
    return image


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
