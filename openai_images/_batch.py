"""The batch engine behind ``client.map`` and ``client.run_batch``.

Many requests go through one client, a bounded number at a time::

    requests (an iterable or async iterable, pulled only when there is room)
      -> producer -> ``concurrency`` workers: sender.send() with the shared limiter,
                                            then the images written to disk (in threads)
      -> results stream -> the caller's ``async for`` (put back in input order if asked)

A window bounds what the batch holds: a request is pulled only while fewer than
``concurrency`` (``2 * concurrency`` when ordered) results are pulled but not yet handed
over. So a generator of a million edits is never materialized, at most ``concurrency``
uploads are open, and memory stays flat however long the batch; in order, a slow head of
the line stops new pulls instead of piling up results behind it.

The engine's tasks run in a task group the iterator enters (``async with``, or the first
``__anext__``) and leaves when it ends or is closed, which cancels whatever is in flight:
connections are dropped and upload files closed by the sender's own cancellation paths.
The engine takes a ``Sender`` (``openai_images._send``), never a client: it sits below them.
One item's failure is that item's ``BatchResult``; a programming error (a request of
the wrong type, a bad ``key``, a failing iterable, a full disk) ends the batch with that
exception.

Every attempt waits on the batch's ``BatchLimiter`` (``_ratelimit.py``), which absorbs
rate-limit 429s (the item asks it again, without spending a retry) and can stop the
batch: on an out-of-money 429, or when nothing but 429s came for ``rate_limit_patience``.
A stopped batch pulls no more requests; items already pulled end with the stopping error
(or finish, if they were on the wire) and the summary's ``stopped_by`` names it, so a
``resume`` run later picks up the rest.
"""

from __future__ import annotations

import enum
import math
import threading
import time
import warnings
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
)
from concurrent.futures import Future
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import anyio
import anyio.abc
import anyio.to_thread
import attrs
import orjson
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from ._errors import (
    OpenAIImagesError,
    RequestValidationError,
    Violation,
)
from ._imagebytes import image_bytes
from ._progress import ProgressBar, progress_bar
from ._ratelimit import DEFAULT_PATIENCE, BatchLimiter, ItemAttempts
from ._requests import EditRequest, GenerateRequest, ImageRequest, VariationRequest
from ._responses import ImagesResponse, write_atomically
from ._sniff import image_extension

if TYPE_CHECKING:
    from ._send import RequestOptions, Sender

__all__ = [
    "AsyncBatchIterator",
    "BatchIterator",
    "BatchProgress",
    "BatchReport",
    "BatchResult",
    "BatchSettings",
    "BatchSummary",
    "ProgressBar",
    "collect",
    "progress_bar",
]

T = TypeVar("T")

KeyFunction = Callable[[ImageRequest, int], str]
"""Names an item's output files: ``key(request, index)``."""

ProgressCallback = Callable[["BatchProgress"], object]
"""Called with a ``BatchProgress`` after each item."""

_REQUEST_TYPES = (GenerateRequest, EditRequest, VariationRequest)
_DONE = object()


@attrs.frozen(kw_only=True)
class BatchResult:
    """The outcome of one request of a batch.

    Attributes:
        index: The request's position in the input, from 0.
        request: The request itself.
        response: The API's answer, or ``None`` if it failed or was skipped.
        error: Why it failed (after the client's retries), or ``None``.
        retries: Attempts after the first.
        paths: The files written for it (with ``output_dir``), or found complete (resumed).
        skipped: Its outputs were already complete (``resume=True``); nothing was sent.
    """

    index: int
    request: ImageRequest = attrs.field(repr=False)
    response: ImagesResponse | None = attrs.field(default=None, repr=False)
    error: OpenAIImagesError | None = None
    retries: int = 0
    paths: tuple[Path, ...] = ()
    skipped: bool = False

    @property
    def ok(self) -> bool:
        """Whether it did not fail (a skipped item is ok)."""
        return self.error is None


@attrs.frozen(kw_only=True)
class BatchProgress:
    """Where a batch stands, passed to ``on_progress`` after each item.

    Attributes:
        done: Items handed over so far (ok, failed and skipped).
        ok: Items that succeeded.
        failed: Items that failed.
        skipped: Items resumed from complete outputs.
        in_flight: Items being worked on now.
        retries: Retries so far, all items together.
        elapsed: Seconds since the batch started.
        rate: Items sent and finished per second (skipped ones are not counted).
    """

    done: int = 0
    ok: int = 0
    failed: int = 0
    skipped: int = 0
    in_flight: int = 0
    retries: int = 0
    elapsed: float = 0.0
    rate: float = 0.0


@attrs.frozen(kw_only=True)
class BatchSummary:
    """What a batch did, in numbers.

    Attributes:
        ok: Items that succeeded.
        failed: Items that failed.
        skipped: Items resumed from complete outputs.
        retries: Retries, all items together.
        wall_time: Seconds from start to end.
        requests_per_second: Items sent and finished per second of wall time.
        input_tokens: The sum of ``usage.input_tokens`` (GPT image models report usage).
        output_tokens: The sum of ``usage.output_tokens``.
        total_tokens: The sum of ``usage.total_tokens``.
        rate_limited: 429 answers seen, retried ones included.
        limited_by: The limit the batch waited on longest: a cap (``"requests_per_minute"``,
            ``"images_per_minute"``, ``"tokens_per_minute"``), the server's
            ``"server_requests"``, ``"server_images"`` or ``"server_tokens"`` (its headers
            or its 429s), ``"first_wave"``; ``None`` if no limit held it back.
        limit_waits: Seconds the batch waited on each of those limits.
        stopped_by: The error that stopped the batch early, or ``None``: an
            ``InsufficientQuotaError`` (its ``code`` says which budget), or the
            ``RateLimitError`` after ``rate_limit_patience`` passed with only 429s.
    """

    ok: int = 0
    failed: int = 0
    skipped: int = 0
    retries: int = 0
    wall_time: float = 0.0
    requests_per_second: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    rate_limited: int = 0
    limited_by: str | None = None
    limit_waits: Mapping[str, float] = attrs.field(factory=dict)
    stopped_by: OpenAIImagesError | None = None


@attrs.frozen(kw_only=True)
class BatchReport:
    """What ``run_batch`` returns.

    Attributes:
        results: Every result in input order (empty with ``keep_results=False``).
        summary: The counts.
    """

    results: list[BatchResult]
    summary: BatchSummary


def _positive_int(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{attribute.name} must be an int of at least 1, not {value!r}")


def _positive(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is None and attribute.name != "rate_limit_patience":
        return
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not (value > 0 and math.isfinite(value))
    ):
        raise ValueError(f"{attribute.name} must be a number above 0, not {value!r}")


@attrs.frozen(kw_only=True)
class BatchSettings:
    """The options of one batch; see ``map``."""

    concurrency: int = attrs.field(default=16, validator=_positive_int)
    ordered: bool = False
    requests_per_minute: float | None = attrs.field(default=None, validator=_positive)
    images_per_minute: float | None = attrs.field(default=None, validator=_positive)
    tokens_per_minute: float | None = attrs.field(default=None, validator=_positive)
    rate_limit_patience: float = attrs.field(default=DEFAULT_PATIENCE, validator=_positive)
    output_dir: Path | None = attrs.field(default=None, converter=attrs.converters.optional(Path))
    resume: bool = False
    key: KeyFunction | None = None
    on_progress: ProgressCallback | None = None
    fail_fast: bool = False

    def __attrs_post_init__(self) -> None:
        if self.resume and self.output_dir is None:
            raise ValueError("resume=True needs an output_dir to find finished outputs in")

    @property
    def window(self) -> int:
        """How many requests may be pulled and not yet handed over."""
        return self.concurrency * (2 if self.ordered else 1)


@attrs.define
class _Tally:
    ok: int = 0
    failed: int = 0
    skipped: int = 0
    retries: int = 0
    in_flight: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0

    @property
    def done(self) -> int:
        return self.ok + self.failed + self.skipped

    def count(self, result: BatchResult) -> None:
        self.retries += result.retries
        if result.skipped:
            self.skipped += 1
        elif result.error is not None:
            self.failed += 1
        else:
            self.ok += 1
        usage = result.response.usage if result.response is not None else None
        if usage is not None:
            self.input_tokens += usage.input_tokens
            self.output_tokens += usage.output_tokens
            self.total_tokens += usage.total_tokens


class _Requests:
    """Pulls requests one at a time from an iterable or an async iterable."""

    def __init__(self, requests: Iterable[ImageRequest] | AsyncIterable[ImageRequest]) -> None:
        self._async: AsyncIterator[ImageRequest] | None = None
        self._sync: Iterator[ImageRequest] | None = None
        if isinstance(requests, AsyncIterable):
            self._async = aiter(requests)
        else:
            self._sync = iter(requests)

    async def next(self) -> object:
        """The next request, or ``_DONE``."""
        if self._async is not None:
            try:
                return await anext(self._async)
            except StopAsyncIteration:
                return _DONE
        assert self._sync is not None
        return next(self._sync, _DONE)

    async def aclose(self) -> None:
        """Close a generator left part-way, so its ``finally`` blocks run now."""
        closer = getattr(self._async, "aclose", None)
        if closer is not None:
            with anyio.CancelScope(shield=True):
                await closer()
        close = getattr(self._sync, "close", None)
        if close is not None:
            close()


class _State(enum.Enum):
    """Where a batch iterator is in its life; it only moves down this list."""

    NEW = enum.auto()
    RUNNING = enum.auto()
    FINISHED = enum.auto()  # the iteration is over; the task group may still be held
    CLOSED = enum.auto()


class AsyncBatchIterator:
    """The results of ``map``, as they finish.

    Use it with ``async with``: leaving the block (a ``break``, an exception, a cancel)
    stops the batch at once and closes every connection and file. A bare ``async for``
    works too when it runs to the end; to stop one early, call ``aclose``.

    With ``fail_fast=True`` the first failed result is handed over and then the iteration
    ends, the rest cancelled (no exception: the failure is in the result).

    Example:
        ```python
        async with client.map(requests, concurrency=8) as results:
            async for result in results:
                print(result.index, result.ok)
        results.summary()
        ```
    """

    def __init__(
        self,
        sender: Sender,
        requests: Iterable[ImageRequest] | AsyncIterable[ImageRequest],
        *,
        settings: BatchSettings,
        options: RequestOptions,
    ) -> None:
        self._sender = sender
        self._requests = requests
        self._settings = _within_pool(settings, sender.transport.max_connections)
        self._options = options
        self._state = _State.NEW
        self._managed = False
        self._group: anyio.abc.TaskGroup | None = None
        self._work_scope: anyio.CancelScope | None = None
        self._results: MemoryObjectReceiveStream[BatchResult] | None = None
        self._results_send: MemoryObjectSendStream[BatchResult] | None = None
        self._limiter: BatchLimiter | None = None
        self._window: anyio.Semaphore | None = None
        self._tally = _Tally()
        self._pending: dict[int, BatchResult] = {}
        self._next_index = 0
        self._halted = False
        self._failure: Exception | None = None
        self._started_at: float | None = None
        self._ended_at: float | None = None

    # -- the caller's side ---------------------------------------------------------------

    async def __aenter__(self) -> AsyncBatchIterator:
        if self._state is not _State.NEW:
            raise RuntimeError("a batch can be entered once, before iterating it")
        self._managed = True
        await self._start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __aiter__(self) -> AsyncBatchIterator:
        return self

    async def __anext__(self) -> BatchResult:
        if self._state is _State.NEW:
            await self._start()
        if self._state is not _State.RUNNING:
            raise StopAsyncIteration
        try:
            result = await self._next_result()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            if self._closed():  # by another task while this one waited
                raise StopAsyncIteration from None
            await self._end()
            if self._failure is not None:
                raise self._failure from None
            raise StopAsyncIteration from None
        except BaseException:
            if not self._managed:
                await self.aclose()
            raise
        assert self._window is not None
        self._window.release()
        self._tally.count(result)
        if self._settings.on_progress is not None:
            self._settings.on_progress(self.progress())
        if self._settings.fail_fast and result.error is not None:
            await self._end()
        return result

    async def aclose(self) -> None:
        """Stop the batch: cancel what is in flight and wait until it has let go."""
        if self._state is _State.CLOSED:
            return
        self._state = _State.CLOSED
        group, self._group = self._group, None
        try:
            if group is not None:
                group.cancel_scope.cancel()
                await group.__aexit__(None, None, None)
        finally:
            self._stop_clock()
            for stream in (self._results_send, self._results):
                if stream is not None:
                    stream.close()

    def _closed(self) -> bool:
        return self._state is _State.CLOSED

    def __del__(self) -> None:
        if getattr(self, "_group", None) is not None:
            warnings.warn(
                "a batch from client.map() was left running: use 'async with' or "
                "'await results.aclose()'",
                ResourceWarning,
                stacklevel=2,
            )

    def progress(self) -> BatchProgress:
        """Where the batch stands now."""
        tally = self._tally
        elapsed = self._elapsed()
        sent = tally.ok + tally.failed
        return BatchProgress(
            done=tally.done,
            ok=tally.ok,
            failed=tally.failed,
            skipped=tally.skipped,
            in_flight=tally.in_flight,
            retries=tally.retries,
            elapsed=elapsed,
            rate=sent / elapsed if elapsed > 0 else 0.0,
        )

    def summary(self) -> BatchSummary:
        """The counts of what was handed over so far (all of it, once the batch is over)."""
        tally = self._tally
        limiter = self._limiter
        wall_time = self._elapsed()
        sent = tally.ok + tally.failed
        return BatchSummary(
            ok=tally.ok,
            failed=tally.failed,
            skipped=tally.skipped,
            retries=tally.retries,
            wall_time=wall_time,
            requests_per_second=sent / wall_time if wall_time > 0 else 0.0,
            input_tokens=tally.input_tokens,
            output_tokens=tally.output_tokens,
            total_tokens=tally.total_tokens,
            rate_limited=limiter.pacer.rate_limited if limiter is not None else 0,
            limited_by=limiter.bound_by() if limiter is not None else None,
            limit_waits=dict(limiter.waited) if limiter is not None else {},
            stopped_by=limiter.stopped_by if limiter is not None else None,
        )

    def _elapsed(self) -> float:
        if self._started_at is None:
            return 0.0
        end = self._ended_at if self._ended_at is not None else time.monotonic()
        return end - self._started_at

    def _stop_clock(self) -> None:
        if self._started_at is not None and self._ended_at is None:
            self._ended_at = time.monotonic()

    async def _start(self) -> None:
        settings = self._settings
        if settings.output_dir is not None:
            await anyio.to_thread.run_sync(_make_dir, settings.output_dir)
        self._limiter = BatchLimiter(
            requests_per_minute=settings.requests_per_minute,
            images_per_minute=settings.images_per_minute,
            tokens_per_minute=settings.tokens_per_minute,
            patience=settings.rate_limit_patience,
        )
        # Without a round trip through the event loop while there is room (the producer
        # yields when it hands the request over).
        self._window = anyio.Semaphore(settings.window, fast_acquire=True)
        self._results_send, self._results = anyio.create_memory_object_stream[BatchResult](
            settings.window
        )
        self._started_at = time.monotonic()
        group = anyio.create_task_group()
        await group.__aenter__()
        self._group = group
        self._state = _State.RUNNING
        group.start_soon(self._engine, self._results_send)

    async def _next_result(self) -> BatchResult:
        assert self._results is not None
        if not self._settings.ordered:
            return await self._results.receive()
        while self._next_index not in self._pending:
            result = await self._results.receive()
            self._pending[result.index] = result
        self._next_index += 1
        return self._pending.pop(self._next_index - 1)

    async def _end(self) -> None:
        """The iteration is over: stop the work, and leave the task group if we entered it."""
        self._state = _State.FINISHED
        self._halted = True
        self._stop_clock()
        if self._work_scope is not None:
            self._work_scope.cancel()
        if not self._managed:
            await self.aclose()

    # -- the engine's side ---------------------------------------------------------------

    async def _engine(self, results: MemoryObjectSendStream[BatchResult]) -> None:
        work_send, work_receive = anyio.create_memory_object_stream[tuple[int, ImageRequest]]()
        async with results, anyio.create_task_group() as group:
            self._work_scope = group.cancel_scope
            with work_receive:
                for _ in range(self._settings.concurrency):
                    group.start_soon(self._work, work_receive.clone(), results)
            group.start_soon(self._produce, work_send)
        self._stop_clock()

    def _fail(self, error: Exception) -> None:
        if self._failure is None:
            self._failure = error
        self._halted = True
        if self._work_scope is not None:
            self._work_scope.cancel()

    async def _produce(self, work: MemoryObjectSendStream[tuple[int, ImageRequest]]) -> None:
        assert self._window is not None
        assert self._limiter is not None
        source = _Requests(self._requests)
        async with work:
            try:
                index = 0
                while True:
                    await self._window.acquire()
                    if self._halted or self._limiter.stopped_by is not None:
                        return
                    request = await source.next()
                    if request is _DONE or self._halted:
                        return
                    if not isinstance(request, _REQUEST_TYPES):
                        raise TypeError(
                            f"a batch takes GenerateRequest, EditRequest or VariationRequest "
                            f"items, not {type(request).__name__} (at index {index})"
                        )
                    await work.send((index, request))
                    index += 1
            except Exception as error:
                self._fail(error)
            finally:
                await source.aclose()

    async def _work(
        self,
        work: MemoryObjectReceiveStream[tuple[int, ImageRequest]],
        results: MemoryObjectSendStream[BatchResult],
    ) -> None:
        tally = self._tally
        async with work:
            async for index, request in work:
                tally.in_flight += 1
                try:
                    result = await self._process(index, request)
                except Exception as error:
                    self._fail(error)
                    return
                finally:
                    tally.in_flight -= 1
                if self._settings.fail_fast and result.error is not None:
                    self._halted = True
                await results.send(result)

    async def _process(self, index: int, request: ImageRequest) -> BatchResult:
        settings = self._settings
        directory = settings.output_dir
        key = self._key(request, index) if directory is not None else ""
        if settings.resume and directory is not None:
            found = await anyio.to_thread.run_sync(_complete_outputs, directory, key)
            if found is not None:
                return BatchResult(index=index, request=request, paths=found, skipped=True)
        assert self._limiter is not None
        attempts = ItemAttempts(self._limiter, images=request.n or 1)
        try:
            if getattr(request, "stream", None):
                refusal = Violation(param="stream", message="a batch takes whole responses")
                raise RequestValidationError([refusal])
            response = await self._sender.send(request, self._options, observer=attempts)
            if response.usage is not None:
                attempts.used(response.usage.total_tokens)
            paths = await self._save(directory, key, response) if directory is not None else ()
        except OpenAIImagesError as error:
            return BatchResult(index=index, request=request, error=error, retries=attempts.retries)
        finally:
            attempts.close()
        return BatchResult(
            index=index, request=request, response=response, paths=paths, retries=attempts.retries
        )

    def _key(self, request: ImageRequest, index: int) -> str:
        make = self._settings.key
        key = make(request, index) if make is not None else f"{index:06d}"
        if (
            not isinstance(key, str)
            or key in ("", ".", "..")
            or "/" in key
            or "\\" in key
            or "\0" in key
        ):
            raise ValueError(f"the key of request {index} is {key!r}, not a plain file name")
        return key

    async def _save(self, directory: Path, key: str, response: ImagesResponse) -> tuple[Path, ...]:
        payloads = [
            await image_bytes(image, downloader=self._sender, position=position)
            for position, image in enumerate(response.data)
        ]
        return await anyio.to_thread.run_sync(
            _write_outputs, directory, key, response.output_format, payloads
        )


def _within_pool(settings: BatchSettings, pool: int) -> BatchSettings:
    """The settings, with ``concurrency`` held to the client's connection pool (warning)."""
    if settings.concurrency <= pool:
        return settings
    warnings.warn(
        f"concurrency={settings.concurrency} is more than the client's {pool} connections, "
        f"so the batch runs {pool} requests at a time; for {settings.concurrency}, make the "
        f"client with max_connections={settings.concurrency}",
        UserWarning,
        stacklevel=4,
    )
    return attrs.evolve(settings, concurrency=pool)


def _make_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)


def _marker(directory: Path, key: str) -> Path:
    return directory / f".{key}.done"


def _complete_outputs(directory: Path, key: str) -> tuple[Path, ...] | None:
    """The outputs of ``key`` if its marker lists them and they all exist, else ``None``."""
    try:
        names = orjson.loads(_marker(directory, key).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    if not isinstance(names, list) or not all(
        isinstance(name, str) and name and Path(name).name == name for name in names
    ):
        return None
    paths = tuple(directory / name for name in names)
    return paths if all(path.is_file() for path in paths) else None


def _write_outputs(
    directory: Path, key: str, output_format: str | None, payloads: list[bytes]
) -> tuple[Path, ...]:
    """Write each image atomically, then the marker that says they are all there."""
    paths: list[Path] = []
    for number, data in enumerate(payloads):
        extension = image_extension(data, output_format=output_format)
        name = f"{key}.{extension}" if len(payloads) == 1 else f"{key}-{number}.{extension}"
        paths.append(write_atomically(directory / name, data))
    write_atomically(_marker(directory, key), orjson.dumps([path.name for path in paths]))
    return tuple(paths)


async def collect(batch: AsyncBatchIterator, *, keep_results: bool) -> BatchReport:
    """Run a batch to its end and report on it."""
    results: list[BatchResult] = []
    async with batch:
        async for result in batch:
            if keep_results:
                results.append(result)
    results.sort(key=lambda result: result.index)
    return BatchReport(results=results, summary=batch.summary())


# -- synchronous code ----------------------------------------------------------------------


class RunToCompletion(Protocol):
    """Runs a coroutine function to completion for synchronous code (the sync runner's
    ``run``): what the sync twins of async objects are given."""

    def __call__(self, fn: Callable[[], Awaitable[T]], /) -> T: ...


class _TaskStarter(Protocol):
    """Starts a task on the loop, as ``BlockingPortal.start_task`` does (the sync runner)."""

    def start_task(self, fn: Callable[..., Awaitable[Any]], /) -> tuple[Future[Any], Any]: ...


class BatchIterator:
    """The results of ``map``, for synchronous code.

    The batch runs on the client's background loop and each ``next()`` waits for one
    result (nothing is fetched ahead of the async batch's own window). Use it with
    ``with`` (or call ``close``): leaving early, an exception or Ctrl-C while waiting
    cancels the batch and closes its connections and files. ``requests`` is pulled, and
    ``on_progress`` called, on the background loop's thread.

    Example:
        ```python
        with client.map(requests, output_dir="out") as results:
            for result in results:
                print(result.index, result.paths)
        ```
    """

    def __init__(
        self,
        *,
        batch: Callable[[], AsyncBatchIterator],
        portal: Callable[[], _TaskStarter],
        run: RunToCompletion,
    ) -> None:
        self._make_batch = batch
        self._portal = portal
        self._run = run
        self._batch: AsyncBatchIterator | None = None
        # The task that holds the batch open (its task group) until close() cancels it.
        self._holder: Future[None] | None = None
        self._released = threading.Event()
        self._closed = False

    def __iter__(self) -> BatchIterator:
        return self

    def __next__(self) -> BatchResult:
        if self._closed:
            raise StopIteration
        batch = self._batch if self._batch is not None else self._begin()
        try:
            return self._run(batch.__anext__)
        except StopAsyncIteration:
            self.close()
            raise StopIteration from None
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> BatchIterator:
        if self._batch is None and not self._closed:
            self._begin()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Cancel the batch if it is still running and wait until it has let go."""
        if self._closed:
            return
        self._closed = True
        if self._holder is not None:
            self._holder.cancel()
            self._released.wait()

    def progress(self) -> BatchProgress:
        """Where the batch stands now."""
        return self._batch.progress() if self._batch is not None else BatchProgress()

    def summary(self) -> BatchSummary:
        """The counts of what was handed over so far (all of it, once the batch is over)."""
        return self._batch.summary() if self._batch is not None else BatchSummary()

    def _begin(self) -> AsyncBatchIterator:
        batch: AsyncBatchIterator
        self._holder, batch = self._portal().start_task(self._hold)
        self._batch = batch
        return batch

    async def _hold(self, *, task_status: anyio.abc.TaskStatus[AsyncBatchIterator]) -> None:
        # The batch's task group must be entered and left by one task: this one. Each
        # next() awaits __anext__ in a task of its own, which only reads the results.
        try:
            async with self._make_batch() as batch:
                task_status.started(batch)
                await anyio.sleep_forever()
        finally:
            self._released.set()
