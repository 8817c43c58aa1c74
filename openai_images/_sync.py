"""``ImagesClient``: the async client, usable from synchronous code.

The methods are generated from ``AsyncImagesClient``'s by ``tools/unasync.py`` (the
regions between the ``GENERATED`` markers here; the keyword methods are inherited from
``SyncEndpoints``, generated likewise): each hands its call to a ``Runner``, which
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
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any

from typing_extensions import Self

from ._batch import AsyncBatchIterator, BatchIterator
from ._batch_api import SyncBatchAPI
from ._client import AsyncImagesClient
from ._raw import RawResponses
from ._runner import Runner, abandon, fork_generation
from ._sync_endpoints import SyncEndpoints
from ._sync_streaming import ImageStream

# isort: split
# ---- BEGIN GENERATED IMPORTS (tools/unasync.py; do not edit by hand) ----
from ._ratelimit import DEFAULT_PATIENCE

if TYPE_CHECKING:
    import os
    from collections.abc import AsyncIterable, Iterable, Mapping

    from ._batch import BatchReport, KeyFunction, ProgressCallback
    from ._config import ClientCertificate, Timeout, Verify
    from ._requests import EditRequest, GenerateRequest, ImageRequest
    from ._responses import Image, ImagesResponse
    from ._send import RequestOptions
# ---- END GENERATED IMPORTS ----

__all__ = ["ImageStream", "ImagesClient"]


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


class ImagesClient(SyncEndpoints):
    """A synchronous client for the OpenAI Images API, with the async client's methods.

    It takes the same arguments as ``AsyncImagesClient`` and is safe to share
    between threads, and to use on both sides of ``os.fork()`` (the child makes its
    own connections). Close it when done (``with`` does it for you).

    Example:
        ```python
        with ImagesClient() as client:
            client.generate(prompt="a red fox", model="gpt-image-1.5").data[0].save("fox.png")
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
        trust_env: bool = True,
        max_response_bytes: int = 1 << 30,
        verify: Verify = True,
        client_cert: ClientCertificate | None = None,
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
                verify=verify,
                client_cert=client_cert,
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

    def with_options(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        organization: str | None = None,
        project: str | None = None,
        timeout: float | Timeout | None = None,
        max_retries: int | None = None,
        default_headers: Mapping[str, str] | None = None,
        validate: bool | None = None,
    ) -> ImagesClient:
        """A copy of the client with some settings changed, sharing its connections.

        Unset arguments keep the client's value; ``default_headers`` are added to its own.
        Closing the copy or the original closes both (they share one connection pool).

        Example:
            ```python
            patient = client.with_options(timeout=600, max_retries=5)
            result = patient.generate(prompt="a fox", model="gpt-image-2")
            ```
        """
        return self._derive(
            lambda client: client.with_options(
                api_key=api_key,
                base_url=base_url,
                organization=organization,
                project=project,
                timeout=timeout,
                max_retries=max_retries,
                default_headers=default_headers,
                validate=validate,
            )
        )

    @property
    def with_raw_response(self) -> RawResponses:
        """The same calls, returning the HTTP status, headers and body with the result.

        Example:
            ```python
            raw = client.with_raw_response.generate(prompt="a fox", model="gpt-image-2")
            print(raw.status_code, raw.headers["x-request-id"], len(raw.content))
            result = raw.parse()
            ```
        """
        return RawResponses(self._async.with_raw_response, self._runner.run)

    @property
    def batch_api(self) -> SyncBatchAPI:
        """OpenAI's Batch API for these requests: half the price, a separate rate-limit
        pool, results within 24 hours (see the "Batch API" docs page).

        Example:
            ```python
            job = client.batch_api.submit(requests, output_dir="out")
            job.wait(progress=print)
            for result in job.results():
                print(result.index, result.paths or result.error)
            ```
        """
        return SyncBatchAPI(self._async.batch_api, self._runner.run)

    def send(
        self,
        request: ImageRequest,
        *,
        options: RequestOptions | None = None,
    ) -> ImagesResponse:
        """Send a request built beforehand and return its response.

        Example:
            ```python
            request = GenerateRequest(prompt="a fox", model="gpt-image-2")
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
        """Send many requests, ``concurrency`` at a time, and yield each result as it ends.

        ``requests`` is pulled lazily, only when there is room, so it may be a generator of
        any length. Every attempt waits on one rate limiter shared by the batch: it caps
        ``requests_per_minute``, paces by the server's rate-limit headers and slows the
        whole batch on a 429. A failed item is a result with an ``error``; the rest go on.

        Args:
            requests: Generate, edit or variation requests, an iterable or async iterable.
                A plain iterable is advanced on the event loop, so keep it quick (give
                images as paths: the files are read later, in worker threads).
            concurrency: Requests in flight at once; more than the client's
                ``max_connections`` warns and is held to it.
            ordered: Yield in input order (holding at most ``2 * concurrency`` results).
            requests_per_minute: A cap on attempts per minute, retries included.
            images_per_minute: A cap on images asked for (``n``) per minute.
            tokens_per_minute: A cap on tokens per minute (by the answers' ``usage``).
            rate_limit_patience: Seconds the batch may get nothing but 429s before its
                items give up and the batch stops. A 429 the batch's limiter absorbs does
                not spend an item's retries.
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
            requests = (GenerateRequest(prompt=p, model="gpt-image-2") for p in prompts)
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
        )

    def run_batch(
        self,
        requests: Iterable[ImageRequest] | AsyncIterable[ImageRequest],
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

    # ---- END GENERATED METHODS ----

    def _setup(self, make: Callable[[], AsyncImagesClient]) -> None:
        self._client = _AsyncClient(make)
        self._runner = Runner(at_exit=self._client.aclose)
        self._batches: weakref.WeakSet[BatchIterator] = weakref.WeakSet()
        self._owns_runner = True

    @property
    def _async(self) -> AsyncImagesClient:
        return self._client.get()

    def _derive(self, make: Callable[[AsyncImagesClient], AsyncImagesClient]) -> ImagesClient:
        """A client whose async twin is ``make(this one's)`` (``with_options``): it shares
        this client's loop and pool, and after a fork is remade from this one's new twin."""
        copy = object.__new__(type(self))  # an Azure client's copy is an Azure client
        copy._client = _AsyncClient(lambda: make(self._async))
        copy._runner = self._runner
        copy._batches = self._batches  # closing either closes both, batches included
        copy._owns_runner = False  # a dropped copy is no unclosed client: the original is
        return copy

    @property
    def async_client(self) -> AsyncImagesClient:
        """The async client this one drives (a new one in a child process after a fork)."""
        return self._client.get()

    def __repr__(self) -> str:
        return f"ImagesClient(base_url={self.base_url!r})"

    def __enter__(self) -> Self:
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
        owner = getattr(self, "_owns_runner", False)
        if runner is not None and owner and runner.started and not runner.closed:
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
