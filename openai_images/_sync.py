"""``ImagesClient``: the async client, usable from synchronous code.

The async core runs on an event loop in a background thread (anyio's blocking portal),
started on first use. Each call hands a task to that loop and waits for its result, so
the client works from plain scripts, from many threads at once, and from code that is
itself inside a running event loop (a notebook cell), where ``asyncio.run`` would fail.
If the waiting thread is interrupted (Ctrl-C), the task on the loop is cancelled, which
closes its connections and files.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import contextvars
import functools
import os
import threading
import warnings
import weakref
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any, Generic, Literal, ParamSpec, TypeVar, overload

from anyio.from_thread import BlockingPortal, start_blocking_portal

from ._batch import BatchIterator, BatchReport, KeyFunction, ProgressCallback
from ._client import AsyncImagesClient, RequestOptions
from ._config import Timeout
from ._ratelimit import DEFAULT_PATIENCE
from ._requests import (
    Background,
    EditRequest,
    GenerateRequest,
    ImageInput,
    ImageRef,
    ImageRequest,
    InputFidelity,
    Moderation,
    OutputFormat,
    Quality,
    ResponseFormat,
    Style,
)
from ._responses import Image, ImageEditStreamEvent, ImageGenStreamEvent, ImagesResponse
from ._streaming import AsyncImageStream

__all__ = ["ImageStream", "ImagesClient"]

P = ParamSpec("P")
T = TypeVar("T")
E = TypeVar("E")


def _async_library_var() -> contextvars.ContextVar[str | None] | None:
    """sniffio's variable naming the running async library; anyio reads it when installed."""
    try:
        from sniffio import current_async_library_cvar
    except ImportError:  # anyio then takes a running asyncio loop as its own
        return None
    return current_async_library_cvar


_async_library = _async_library_var()


class _Runner:
    """Runs coroutines on the portal's loop and waits for them, cancelling on interrupt.

    The portal owns the loop and its thread. A call is handed to the loop with one wake-up
    and no reply: ``BlockingPortal.start_task_soon`` would also wait for the loop to confirm
    the task started, a second round trip between threads that cost a third of a small
    call's time.
    """

    def __init__(self, *, at_exit: Callable[[], Awaitable[None]] | None = None) -> None:
        self.at_exit = at_exit
        self._lock = threading.Lock()
        self._portal: BlockingPortal | None = None
        self._portal_cm: AbstractContextManager[BlockingPortal] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.closed = False

    @property
    def started(self) -> bool:
        return self._portal is not None

    def _get_portal(self) -> BlockingPortal:
        with self._lock:
            if self.closed:
                raise RuntimeError("this client is closed; make a new one")
            if self._portal is None:
                self._portal_cm = start_blocking_portal(name="openai-images")
                portal = self._portal_cm.__enter__()
                self._loop = portal.call(asyncio.get_running_loop)
                self._portal = portal
                _started_runners.add(self)
            return self._portal

    def submit(
        self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs
    ) -> concurrent.futures.Future[T]:
        """Start ``fn(*args, **kwargs)`` on the loop; cancelling the future cancels it."""
        self._get_portal()
        loop = self._loop
        assert loop is not None
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        # As the portal does: the task sees a copy of the caller's context variables, told
        # it runs on asyncio even if the calling thread belongs to another async library.
        context = contextvars.copy_context()
        if _async_library is not None:
            context.run(_async_library.set, "asyncio")
        call = functools.partial(fn, *args, **kwargs)
        loop.call_soon_threadsafe(self._spawn, loop, call, future, context=context)
        return future

    def run(self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs) -> T:
        future = self.submit(fn, *args, **kwargs)
        try:
            return future.result()
        except BaseException:
            # Ctrl-C (or any error of the waiting thread) cancels the task on the loop too.
            future.cancel()
            raise

    def _spawn(
        self,
        loop: asyncio.AbstractEventLoop,
        call: Callable[[], Awaitable[T]],
        future: concurrent.futures.Future[T],
    ) -> None:
        task = loop.create_task(_settle(call, future))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

        def cancel_task(done: concurrent.futures.Future[T]) -> None:
            if done.cancelled():
                with contextlib.suppress(RuntimeError):  # the loop is already closed
                    loop.call_soon_threadsafe(task.cancel)

        future.add_done_callback(cancel_task)

    async def _drain(self) -> None:
        """Wait for the calls still running (other threads' calls during close)."""
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    def stop(self, final: Callable[[], Awaitable[None]]) -> None:
        with self._lock:
            if self.closed:
                return
            self.closed = True
            _started_runners.discard(self)
            portal, cm = self._portal, self._portal_cm
            self._portal = self._portal_cm = None
        if portal is not None and cm is not None:
            try:
                portal.call(final)
                portal.call(self._drain)
            finally:
                cm.__exit__(None, None, None)


_started_runners: weakref.WeakSet[_Runner] = weakref.WeakSet()


@atexit.register
def _stop_started_runners() -> None:
    # A portal still open at interpreter exit would be closed while the interpreter is
    # finalizing, when its daemon thread can no longer run: waiting on it would hang the
    # exit. atexit still runs while threads do, so close what users left open here.
    for runner in list(_started_runners):
        runner.stop(runner.at_exit or _nothing)


async def _nothing() -> None:
    pass


async def _settle(call: Callable[[], Awaitable[T]], future: concurrent.futures.Future[T]) -> None:
    """Run ``call`` and hand its outcome to ``future`` (the future stays pending until then,
    so that the waiting thread can still cancel it)."""
    try:
        value = await call()
    except asyncio.CancelledError:
        future.cancel()
        future.set_running_or_notify_cancel()
    except BaseException as exc:
        if future.set_running_or_notify_cancel():
            future.set_exception(exc)
        if not isinstance(exc, Exception):
            raise
    else:
        if future.set_running_or_notify_cancel():
            future.set_result(value)


class ImageStream(Generic[E]):
    """A streamed generation or edit for synchronous code: iterate it, then close it.

    Example:
        ```python
        with client.generate(prompt="a fox", model="gpt-image-1", stream=True,
                             partial_images=2) as stream:
            for event in stream:
                print(event.type)
        ```
    """

    def __init__(self, stream: AsyncImageStream[E], runner: _Runner) -> None:
        self._stream = stream
        self._runner = runner
        self.request_id = stream.request_id
        self.headers = stream.headers

    def __iter__(self) -> Iterator[E]:
        return self

    def __next__(self) -> E:
        try:
            return self._runner.run(self._stream.__anext__)
        except StopAsyncIteration:
            raise StopIteration from None

    def close(self) -> None:
        """Close the connection; the stream yields nothing more."""
        self._runner.run(self._stream.aclose)

    def __enter__(self) -> ImageStream[E]:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class ImagesClient:
    """A synchronous client for the OpenAI Images API, with the async client's methods.

    It takes the same arguments as ``AsyncImagesClient`` and is safe to share
    between threads. Close it when done (``with`` does it for you).

    Example:
        ```python
        with ImagesClient() as client:
            client.generate(prompt="a red fox", model="gpt-image-1").data[0].save("fox.png")
        ```
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        organization: str | None = None,
        project: str | None = None,
        timeout: float | Timeout | None = None,
        max_retries: int = 2,
        default_headers: Mapping[str, str] | None = None,
        validate: bool = True,
        max_connections: int = 100,
        trust_env: bool = False,
        max_response_bytes: int = 1 << 30,
    ) -> None:
        self._async = AsyncImagesClient(
            api_key=api_key,
            base_url=base_url,
            organization=organization,
            project=project,
            timeout=timeout,
            max_retries=max_retries,
            default_headers=default_headers,
            validate=validate,
            max_connections=max_connections,
            trust_env=trust_env,
            max_response_bytes=max_response_bytes,
        )
        self._runner = _Runner(at_exit=self._async.aclose)
        self._batches: weakref.WeakSet[BatchIterator] = weakref.WeakSet()

    @property
    def async_client(self) -> AsyncImagesClient:
        """The async client this one drives (its loop runs in a background thread)."""
        return self._async

    @property
    def base_url(self) -> str:
        """The API root requests go to."""
        return self._async.base_url

    def __repr__(self) -> str:
        return f"ImagesClient(base_url={self.base_url!r})"

    def __enter__(self) -> ImagesClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close every connection and stop the background loop. Safe to call twice."""
        for batch in list(self._batches):
            batch.close()
        self._runner.stop(self._async.aclose)

    def __del__(self) -> None:
        runner = getattr(self, "_runner", None)
        if runner is not None and runner.started and not runner.closed:
            warnings.warn(
                f"{self!r} was never closed: use 'with' or call client.close()",
                ResourceWarning,
                stacklevel=2,
            )

    @overload
    def generate(
        self,
        *,
        prompt: str,
        model: str | None = None,
        n: int | None = None,
        size: str | None = None,
        quality: Quality | None = None,
        background: Background | None = None,
        moderation: Moderation | None = None,
        output_format: OutputFormat | None = None,
        output_compression: int | None = None,
        response_format: ResponseFormat | None = None,
        style: Style | None = None,
        user: str | None = None,
        stream: Literal[False] = False,
        partial_images: int | None = None,
        timeout: float | Timeout | None = None,
        max_retries: int | None = None,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, str] | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> ImagesResponse: ...

    @overload
    def generate(
        self,
        *,
        prompt: str,
        model: str | None = None,
        n: int | None = None,
        size: str | None = None,
        quality: Quality | None = None,
        background: Background | None = None,
        moderation: Moderation | None = None,
        output_format: OutputFormat | None = None,
        output_compression: int | None = None,
        response_format: ResponseFormat | None = None,
        style: Style | None = None,
        user: str | None = None,
        stream: Literal[True],
        partial_images: int | None = None,
        timeout: float | Timeout | None = None,
        max_retries: int | None = None,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, str] | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> ImageStream[ImageGenStreamEvent]: ...

    def generate(
        self,
        *,
        prompt: str,
        model: str | None = None,
        n: int | None = None,
        size: str | None = None,
        quality: Quality | None = None,
        background: Background | None = None,
        moderation: Moderation | None = None,
        output_format: OutputFormat | None = None,
        output_compression: int | None = None,
        response_format: ResponseFormat | None = None,
        style: Style | None = None,
        user: str | None = None,
        stream: bool = False,
        partial_images: int | None = None,
        timeout: float | Timeout | None = None,
        max_retries: int | None = None,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, str] | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> ImagesResponse | ImageStream[ImageGenStreamEvent]:
        """Create images from a prompt; see ``AsyncImagesClient.generate``."""
        request = GenerateRequest(
            prompt=prompt,
            model=model,
            n=n,
            size=size,
            quality=quality,
            background=background,
            moderation=moderation,
            output_format=output_format,
            output_compression=output_compression,
            response_format=response_format,
            style=style,
            user=user,
            partial_images=partial_images,
        )
        options = RequestOptions(
            timeout=timeout,
            max_retries=max_retries,
            extra_headers=extra_headers,
            extra_query=extra_query,
            extra_body=extra_body,
        )
        if stream:
            return self.send_stream(request, options=options)
        return self.send(request, options=options)

    @overload
    def edit(
        self,
        *,
        prompt: str,
        image: ImageInput | list[ImageInput] | None = None,
        images: list[ImageRef] | None = None,
        mask: ImageInput | ImageRef | None = None,
        model: str | None = None,
        n: int | None = None,
        size: str | None = None,
        quality: Quality | None = None,
        background: Background | None = None,
        moderation: Moderation | None = None,
        input_fidelity: InputFidelity | None = None,
        output_format: OutputFormat | None = None,
        output_compression: int | None = None,
        response_format: ResponseFormat | None = None,
        user: str | None = None,
        stream: Literal[False] = False,
        partial_images: int | None = None,
        timeout: float | Timeout | None = None,
        max_retries: int | None = None,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, str] | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> ImagesResponse: ...

    @overload
    def edit(
        self,
        *,
        prompt: str,
        image: ImageInput | list[ImageInput] | None = None,
        images: list[ImageRef] | None = None,
        mask: ImageInput | ImageRef | None = None,
        model: str | None = None,
        n: int | None = None,
        size: str | None = None,
        quality: Quality | None = None,
        background: Background | None = None,
        moderation: Moderation | None = None,
        input_fidelity: InputFidelity | None = None,
        output_format: OutputFormat | None = None,
        output_compression: int | None = None,
        response_format: ResponseFormat | None = None,
        user: str | None = None,
        stream: Literal[True],
        partial_images: int | None = None,
        timeout: float | Timeout | None = None,
        max_retries: int | None = None,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, str] | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> ImageStream[ImageEditStreamEvent]: ...

    def edit(
        self,
        *,
        prompt: str,
        image: ImageInput | list[ImageInput] | None = None,
        images: list[ImageRef] | None = None,
        mask: ImageInput | ImageRef | None = None,
        model: str | None = None,
        n: int | None = None,
        size: str | None = None,
        quality: Quality | None = None,
        background: Background | None = None,
        moderation: Moderation | None = None,
        input_fidelity: InputFidelity | None = None,
        output_format: OutputFormat | None = None,
        output_compression: int | None = None,
        response_format: ResponseFormat | None = None,
        user: str | None = None,
        stream: bool = False,
        partial_images: int | None = None,
        timeout: float | Timeout | None = None,
        max_retries: int | None = None,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, str] | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> ImagesResponse | ImageStream[ImageEditStreamEvent]:
        """Edit or combine images; see ``AsyncImagesClient.edit``."""
        request = EditRequest(
            prompt=prompt,
            image=image,
            images=images,
            mask=mask,
            model=model,
            n=n,
            size=size,
            quality=quality,
            background=background,
            moderation=moderation,
            input_fidelity=input_fidelity,
            output_format=output_format,
            output_compression=output_compression,
            response_format=response_format,
            user=user,
            partial_images=partial_images,
        )
        options = RequestOptions(
            timeout=timeout,
            max_retries=max_retries,
            extra_headers=extra_headers,
            extra_query=extra_query,
            extra_body=extra_body,
        )
        if stream:
            return self.send_stream(request, options=options)
        return self.send(request, options=options)

    def create_variation(
        self,
        *,
        image: ImageInput,
        model: str | None = None,
        n: int | None = None,
        size: str | None = None,
        response_format: ResponseFormat | None = None,
        user: str | None = None,
        timeout: float | Timeout | None = None,
        max_retries: int | None = None,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, str] | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> ImagesResponse:
        """Make variations of an image; see ``AsyncImagesClient.create_variation``."""
        return self._runner.run(
            self._async.create_variation,
            image=image,
            model=model,
            n=n,
            size=size,
            response_format=response_format,
            user=user,
            timeout=timeout,
            max_retries=max_retries,
            extra_headers=extra_headers,
            extra_query=extra_query,
            extra_body=extra_body,
        )

    def send(
        self, request: ImageRequest, *, options: RequestOptions | None = None
    ) -> ImagesResponse:
        """Send a request built beforehand; see ``AsyncImagesClient.send``."""
        return self._runner.run(self._async.send, request, options=options)

    def send_stream(
        self,
        request: GenerateRequest | EditRequest,
        *,
        options: RequestOptions | None = None,
    ) -> ImageStream[Any]:
        """Send a streamed request built beforehand; see ``AsyncImagesClient.send_stream``."""
        stream = self._runner.run(self._async.send_stream, request, options=options)
        return ImageStream(stream, self._runner)

    def download(self, image: Image | str, *, timeout: float | Timeout | None = None) -> bytes:
        """Fetch a ``url`` result's bytes; see ``AsyncImagesClient.download``."""
        return self._runner.run(self._async.download, image, timeout=timeout)

    def map(
        self,
        requests: Iterable[ImageRequest],
        *,
        concurrency: int = 16,
        ordered: bool = False,
        requests_per_minute: float | None = None,
        images_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
        rate_limit_patience: float = DEFAULT_PATIENCE,
        output_dir: str | os.PathLike[str] | None = None,
        resume: bool = False,
        key: KeyFunction | None = None,
        on_progress: ProgressCallback | None = None,
        fail_fast: bool = False,
        options: RequestOptions | None = None,
    ) -> BatchIterator:
        """Send many requests at once and iterate the results; see ``AsyncImagesClient.map``.

        The batch runs on the background loop (``requests`` is pulled, and ``on_progress``
        called, from its thread). Close the iterator, or use ``with``: leaving early or
        Ctrl-C cancels the rest of the batch.

        Example:
            ```python
            with client.map(requests, output_dir="out") as results:
                for result in results:
                    print(result.index, result.ok)
            ```
        """
        batch = functools.partial(
            self._async.map,
            requests,
            concurrency=concurrency,
            ordered=ordered,
            requests_per_minute=requests_per_minute,
            images_per_minute=images_per_minute,
            tokens_per_minute=tokens_per_minute,
            rate_limit_patience=rate_limit_patience,
            output_dir=output_dir,
            resume=resume,
            key=key,
            on_progress=on_progress,
            fail_fast=fail_fast,
            options=options,
        )
        iterator = BatchIterator(batch=batch, portal=self._runner._get_portal, run=self._runner.run)
        self._batches.add(iterator)
        return iterator

    def run_batch(
        self,
        requests: Iterable[ImageRequest],
        *,
        concurrency: int = 16,
        ordered: bool = False,
        requests_per_minute: float | None = None,
        images_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
        rate_limit_patience: float = DEFAULT_PATIENCE,
        output_dir: str | os.PathLike[str] | None = None,
        resume: bool = False,
        key: KeyFunction | None = None,
        on_progress: ProgressCallback | None = None,
        fail_fast: bool = False,
        options: RequestOptions | None = None,
        keep_results: bool = True,
    ) -> BatchReport:
        """Run a whole batch; see ``AsyncImagesClient.run_batch``."""
        return self._runner.run(
            self._async.run_batch,
            requests,
            concurrency=concurrency,
            ordered=ordered,
            requests_per_minute=requests_per_minute,
            images_per_minute=images_per_minute,
            tokens_per_minute=tokens_per_minute,
            rate_limit_patience=rate_limit_patience,
            output_dir=output_dir,
            resume=resume,
            key=key,
            on_progress=on_progress,
            fail_fast=fail_fast,
            options=options,
            keep_results=keep_results,
        )
