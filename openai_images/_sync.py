"""``ImagesClient``: the async client, usable from synchronous code.

The methods are generated from ``AsyncImagesClient``'s by ``tools/unasync.py`` (the
regions between the ``GENERATED`` markers): each hands its call to a ``Runner``, which
runs it on the client's own event loop, driven by the calling thread when the loop is
free and by a helper thread when another thread is using it (see ``_runner``). So the
client works from plain scripts, from many threads at once, from code that is itself
inside a running event loop (a notebook cell), and in a process forked from one that used
it. If the waiting thread is interrupted (Ctrl-C), the call is cancelled, which closes
its connections and files.
"""

from __future__ import annotations

import functools
import warnings
import weakref
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast, overload

from ._batch import AsyncBatchIterator, BatchIterator
from ._client import AsyncImagesClient
from ._runner import Runner, abandon, fork_generation
from ._streaming import AsyncImageStream

# ---- BEGIN GENERATED IMPORTS (tools/unasync.py; do not edit by hand) ----
if TYPE_CHECKING:
    import os
    from collections.abc import AsyncIterable, Awaitable, Iterable, Mapping
    from typing import Literal

    from ._batch import BatchReport, KeyFunction, ProgressCallback
    from ._client import RequestOptions
    from ._config import Timeout
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
# ---- END GENERATED IMPORTS ----

__all__ = ["ImageStream", "ImagesClient"]

E = TypeVar("E")


class _AsyncClient:
    """The async client a sync one drives: one per process, remade after ``fork()``."""

    def __init__(self, make: Callable[[], AsyncImagesClient]) -> None:
        self._make = make
        self._client = make()
        self._generation = fork_generation()

    def get(self) -> AsyncImagesClient:
        if self._generation != fork_generation():
            # Made in the parent: its connections are the parent's. Never closed here.
            abandon(self._client)
            self._client, self._generation = self._make(), fork_generation()
        return self._client

    async def aclose(self) -> None:
        await self.get().aclose()


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

    def __init__(self, stream: AsyncImageStream[E], runner: Runner) -> None:
        self._stream = stream
        self._runner = runner
        self._generation = runner.generation
        self.request_id = stream.request_id
        self.headers = stream.headers

    def _forked(self) -> bool:
        if self._generation == fork_generation():
            return False
        if self._generation >= 0:
            abandon(self._stream)  # the parent's connection: never read or closed here
            self._generation = -1
        return True

    def __iter__(self) -> Iterator[E]:
        return self

    def __next__(self) -> E:
        if self._forked():
            raise RuntimeError("this stream was opened before fork(); open it again here")
        try:
            return self._runner.run(self._stream.__anext__)
        except StopAsyncIteration:
            raise StopIteration from None

    def close(self) -> None:
        """Close the connection; the stream yields nothing more."""
        if not self._forked():
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
    between threads, and to use on both sides of ``os.fork()`` (the child makes its
    own connections). Close it when done (``with`` does it for you).

    Example:
        ```python
        with ImagesClient() as client:
            client.generate(prompt="a red fox", model="gpt-image-1").data[0].save("fox.png")
        ```
    """

    # ---- BEGIN GENERATED METHODS (tools/unasync.py; do not edit by hand) ----

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
        self._setup(
            functools.partial(
                AsyncImagesClient,
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
        )

    @property
    def base_url(self) -> str:
        """The API root requests go to."""
        return self._async.base_url

    @property
    def max_retries(self) -> int:
        """How many times a failed request is retried by default."""
        return self._async.max_retries

    @property
    def timeout(self) -> Timeout:
        """The default timeout of every call."""
        return self._async.timeout

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
        """Create images from a prompt (``POST /images/generations``).

        With ``stream=True`` (GPT image models) it returns an ``ImageStream``
        of partial and completed events once the response has begun.

        Example:
            ```python
            result = client.generate(
                prompt="a watercolor lighthouse", model="gpt-image-1", size="1024x1536"
            )
            result.data[0].save("lighthouse.png")
            ```
        """
        generate = cast(
            "Callable[..., Awaitable[ImagesResponse | AsyncImageStream[ImageGenStreamEvent]]]",
            self._async.generate,
        )
        result = self._runner.run(
            generate,
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
            stream=stream,
            partial_images=partial_images,
            timeout=timeout,
            max_retries=max_retries,
            extra_headers=extra_headers,
            extra_query=extra_query,
            extra_body=extra_body,
        )
        if isinstance(result, AsyncImageStream):
            return ImageStream(result, self._runner)
        return result

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
        """Edit or combine images (``POST /images/edits``).

        ``image`` takes one input or a list of up to 16: a path, bytes, a binary file, or
        ``(filename, content[, content_type])``. Files stream from disk as they upload.
        For an edit by reference, pass ``images=[ImageRef(...)]`` (and an ``ImageRef``
        mask) instead: that request goes as JSON.

        Example:
            ```python
            result = client.edit(
                image=["soap.png", "candle.png"], prompt="a gift basket", model="gpt-image-1"
            )
            ```
        """
        edit = cast(
            "Callable[..., Awaitable[ImagesResponse | AsyncImageStream[ImageEditStreamEvent]]]",
            self._async.edit,
        )
        result = self._runner.run(
            edit,
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
            stream=stream,
            partial_images=partial_images,
            timeout=timeout,
            max_retries=max_retries,
            extra_headers=extra_headers,
            extra_query=extra_query,
            extra_body=extra_body,
        )
        if isinstance(result, AsyncImageStream):
            return ImageStream(result, self._runner)
        return result

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
        """Make variations of an image (``POST /images/variations``, dall-e-2).

        Example:
            ```python
            result = client.create_variation(image="cat.png", n=2)
            ```
        """
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
        self,
        request: ImageRequest,
        *,
        options: RequestOptions | None = None,
    ) -> ImagesResponse:
        """Send a request built beforehand and return its response.

        Example:
            ```python
            request = GenerateRequest(prompt="a fox", model="gpt-image-1")
            response = client.send(request)
            ```
        """
        return self._runner.run(
            self._async.send,
            request,
            options=options,
        )

    def send_stream(
        self,
        request: GenerateRequest | EditRequest,
        *,
        options: RequestOptions | None = None,
    ) -> ImageStream[Any]:
        """Send a request built beforehand with ``stream=True`` and return its event stream."""
        return ImageStream(
            self._runner.run(
                self._async.send_stream,
                request,
                options=options,
            ),
            self._runner,
        )

    def download(
        self,
        image: Image | str,
        *,
        timeout: float | Timeout | None = None,
    ) -> bytes:
        """Fetch a ``url`` result's bytes.

        Our ``Authorization`` header is never sent: the URL is signed, and its host is not
        the API's.

        Example:
            ```python
            data = client.download(result.data[0])
            ```
        """
        return self._runner.run(
            self._async.download,
            image,
            timeout=timeout,
        )

    def map(
        self,
        requests: Iterable[ImageRequest] | AsyncIterable[ImageRequest],
        *,
        concurrency: int = 16,
        ordered: bool = False,
        requests_per_minute: float | None = None,
        output_dir: str | os.PathLike[str] | None = None,
        resume: bool = False,
        key: KeyFunction | None = None,
        on_progress: ProgressCallback | None = None,
        fail_fast: bool = False,
        options: RequestOptions | None = None,
    ) -> BatchIterator:
        """Send many requests, ``concurrency`` at a time, and yield each result as it ends.

        ``requests`` is pulled lazily, only when there is room, so it may be a generator of
        any length. Every attempt waits on one rate limiter shared by the batch: it caps
        ``requests_per_minute``, paces by the server's rate-limit headers and slows the
        whole batch on a 429. A failed item is a result with an ``error``; the rest go on.

        Args:
            requests: Generate, edit or variation requests, an iterable or async iterable.
                A plain iterable is advanced on the event loop, so keep it quick (give
                images as paths: the files are read later, in worker threads).
            concurrency: Requests in flight at once.
            ordered: Yield in input order (holding at most ``2 * concurrency`` results).
            requests_per_minute: A cap on attempts per minute, retries included.
            output_dir: Write each result's images here as they arrive, atomically:
                ``{key}.{ext}``, or ``{key}-{i}.{ext}`` for several (``url`` results are
                downloaded), then a marker ``.{key}.done`` listing them.
            resume: Skip (yield as ``skipped``) the items whose marker and files exist.
            key: ``key(request, index)`` names the files; the index as ``000042`` if unset.
            on_progress: Called with a ``BatchProgress`` after each item.
            fail_fast: End after the first failed result (the rest is cancelled).
            options: Per-request settings (timeout, retries, extra headers...).

        Example:
            ```python
            requests = (GenerateRequest(prompt=p, model="gpt-image-1") for p in prompts)
            with client.map(requests, output_dir="out") as results:
                for result in results:
                    print(result.index, result.paths if result.ok else result.error)
            ```
        """
        return self._batch_iterator(
            functools.partial(
                self._async.map,
                requests,
                concurrency=concurrency,
                ordered=ordered,
                requests_per_minute=requests_per_minute,
                output_dir=output_dir,
                resume=resume,
                key=key,
                on_progress=on_progress,
                fail_fast=fail_fast,
                options=options,
            )
        )

    def run_batch(
        self,
        requests: Iterable[ImageRequest] | AsyncIterable[ImageRequest],
        *,
        concurrency: int = 16,
        ordered: bool = False,
        requests_per_minute: float | None = None,
        output_dir: str | os.PathLike[str] | None = None,
        resume: bool = False,
        key: KeyFunction | None = None,
        on_progress: ProgressCallback | None = None,
        fail_fast: bool = False,
        options: RequestOptions | None = None,
        keep_results: bool = True,
    ) -> BatchReport:
        """Run ``map`` to its end and return every result (in input order) and a summary.

        With ``keep_results=False`` only the summary is kept, so memory stays flat.

        Example:
            ```python
            report = client.run_batch(requests, output_dir="out")
            report.summary.failed
            # -> 0
            ```
        """
        return self._runner.run(
            self._async.run_batch,
            requests,
            concurrency=concurrency,
            ordered=ordered,
            requests_per_minute=requests_per_minute,
            output_dir=output_dir,
            resume=resume,
            key=key,
            on_progress=on_progress,
            fail_fast=fail_fast,
            options=options,
            keep_results=keep_results,
        )

    # ---- END GENERATED METHODS ----

    def _setup(self, make: Callable[[], AsyncImagesClient]) -> None:
        self._client = _AsyncClient(make)
        self._runner = Runner(at_exit=self._client.aclose)
        self._batches: weakref.WeakSet[BatchIterator] = weakref.WeakSet()

    @property
    def _async(self) -> AsyncImagesClient:
        return self._client.get()

    @property
    def async_client(self) -> AsyncImagesClient:
        """The async client this one drives (a new one in a child process after a fork)."""
        return self._client.get()

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
        """Close every connection and stop the event loop. Safe to call twice."""
        for batch in list(self._batches):
            batch.close()
        self._runner.stop(self._client.aclose)

    def __del__(self) -> None:
        runner = getattr(self, "_runner", None)
        if runner is not None and runner.started and not runner.closed:
            warnings.warn(
                f"{self!r} was never closed: use 'with' or call client.close()",
                ResourceWarning,
                stacklevel=2,
            )

    def _batch_iterator(self, batch: Callable[[], AsyncBatchIterator]) -> BatchIterator:
        """A sync iterator over the batch ``batch()`` makes (on the loop, when first used)."""
        iterator = BatchIterator(batch=batch, portal=lambda: self._runner, run=self._runner.run)
        self._batches.add(iterator)
        return iterator
