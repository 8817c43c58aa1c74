"""``AsyncImagesClient``: the public face of the road a request takes.

The client is a thin facade: each keyword method builds a request (``_requests``) and
hands it to its ``Sender`` (``_send``), which owns the settings, the transport, the
retries and the road itself. The keyword methods (``generate``, ``edit``,
``create_variation``) are inherited from ``AsyncEndpoints`` (``_endpoints``), which
``tools/generate_client.py`` writes from the request classes.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import attrs
from typing_extensions import Self

from ._batch import AsyncBatchIterator, BatchReport, BatchSettings, KeyFunction, ProgressCallback
from ._batch import collect as _collect
from ._batch_api import BatchAPI
from ._config import ClientCertificate, Settings, Timeout, Verify, custom_headers, tls_setting
from ._endpoints import AsyncEndpoints
from ._ratelimit import DEFAULT_PATIENCE
from ._raw import AsyncRawResponses
from ._requests import EditRequest, GenerateRequest, ImageRequest
from ._responses import Image, ImagesResponse
from ._send import (
    NO_OPTIONS,
    Auth,
    BaseURLRoute,
    BearerAuth,
    RequestOptions,
    Route,
    Sender,
    configure_logging,
)
from ._streaming import AsyncImageStream
from ._transport import Transport

if TYPE_CHECKING:
    from types import TracebackType

__all__ = ["AsyncImagesClient", "RequestOptions"]


class AsyncImagesClient(AsyncEndpoints):
    """An asynchronous client for the OpenAI Images API.

    Settings you leave unset come from the environment: ``OPENAI_API_KEY``,
    ``OPENAI_BASE_URL`` (default ``https://api.openai.com/v1``), ``OPENAI_ORG_ID``,
    ``OPENAI_PROJECT_ID`` and ``OPENAI_CUSTOM_HEADERS``; ``OPENAI_LOG=info`` (or ``debug``)
    logs each request. Close the client when done (``async with`` does it for you).

    Args:
        api_key: The secret key. A missing key is an error at the first request.
        base_url: The API root, e.g. a local server's ``http://127.0.0.1:8000/v1``.
        organization: Sent as ``OpenAI-Organization``.
        project: Sent as ``OpenAI-Project``.
        timeout: Seconds for a whole request, or a ``Timeout``.
        max_retries: Retries after a connection error, a timeout, 408, 409, 429 or 5xx.
        default_headers: Headers added to every request.
        validate: Check requests against the contract's rules before sending them.
        max_connections: Connections open at once.
        trust_env: Send requests through the proxies in ``HTTPS_PROXY``/``HTTP_PROXY``
            (except to hosts in ``NO_PROXY``); ``False`` connects directly.
        max_response_bytes: A larger response fails rather than filling memory.
        verify: Check the server's certificate against the system's CAs (``True``), a
            CA bundle file, or your ``ssl.SSLContext``; ``False`` turns checks off (warns).
        client_cert: A client certificate for gateways that ask for one (mutual TLS).

    Example:
        ```python
        async with AsyncImagesClient() as client:
            result = await client.generate(prompt="a red fox", model="gpt-image-2")
            result.data[0].save("fox.png")
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
        trust_env: bool = True,
        max_response_bytes: int = 1 << 30,
        verify: Verify = True,
        client_cert: ClientCertificate | None = None,
    ) -> None:
        configure_logging()
        settings = Settings.from_arguments(
            api_key=api_key,
            base_url=base_url,
            organization=organization,
            project=project,
            timeout=timeout,
            max_retries=max_retries,
            default_headers={**custom_headers(), **(default_headers or {})},
        )
        transport = Transport(
            max_connections=max_connections,
            max_response_bytes=max_response_bytes,
            trust_env=trust_env,
            ssl=tls_setting(verify=verify, client_cert=client_cert),
        )
        self._sender = Sender(
            settings=settings,
            transport=transport,
            auth=self._auth_for(settings),
            route=self._route_for(settings),
            validate=validate,
        )
        self._owns_transport = True

    def _auth_for(self, settings: Settings) -> Auth:
        """How requests authenticate (a client for another service overrides this)."""
        return BearerAuth(settings)

    def _route_for(self, settings: Settings) -> Route:
        """Where requests go (a client for another service overrides this)."""
        return BaseURLRoute(settings.base_url)

    # -- settings ------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """The API root requests go to."""
        return self._sender.settings.base_url

    @property
    def max_retries(self) -> int:
        """How many times a failed request is retried by default."""
        return self._sender.settings.max_retries

    @property
    def timeout(self) -> Timeout:
        """The default timeout of every call."""
        return self._sender.settings.timeout

    def __repr__(self) -> str:
        return f"AsyncImagesClient(base_url={self.base_url!r})"

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
    ) -> AsyncImagesClient:
        """A copy of the client with some settings changed, sharing its connections.

        Unset arguments keep the client's value; ``default_headers`` are added to its own.
        Closing the copy or the original closes both (they share one connection pool).

        Example:
            ```python
            patient = client.with_options(timeout=600, max_retries=5)
            result = await patient.generate(prompt="a fox", model="gpt-image-2")
            ```
        """
        old = self._sender.settings
        if max_retries is not None and max_retries < 0:
            raise ValueError(f"max_retries must be 0 or more, not {max_retries}")
        settings = attrs.evolve(
            old,
            api_key=old.api_key if api_key is None else api_key,
            base_url=old.base_url if base_url is None else base_url.rstrip("/"),
            organization=old.organization if organization is None else organization,
            project=old.project if project is None else project,
            timeout=Timeout.coerce(timeout, default=old.timeout),
            max_retries=old.max_retries if max_retries is None else max_retries,
            default_headers={**old.default_headers, **(default_headers or {})},
        )
        copy = object.__new__(type(self))
        # Auth and route are remade only when what they are made from changed.
        reauth = (api_key, organization, project, base_url) != (None, None, None, None)
        copy._sender = self._sender.evolve(
            settings=settings,
            auth=self._auth_for(settings) if reauth else None,
            route=self._route_for(settings) if base_url is not None else None,
            validate=validate,
        )
        copy._owns_transport = False
        return copy

    @property
    def with_raw_response(self) -> AsyncRawResponses:
        """The same calls, returning the HTTP status, headers and body with the result.

        Example:
            ```python
            raw = await client.with_raw_response.generate(prompt="a fox", model="gpt-image-2")
            print(raw.status_code, raw.headers["x-request-id"], len(raw.content))
            result = raw.parse()
            ```
        """
        return AsyncRawResponses(self)

    @property
    def batch_api(self) -> BatchAPI:
        """OpenAI's Batch API for these requests: half the price, a separate rate-limit
        pool, results within 24 hours (see the "Batch API" docs page).

        Example:
            ```python
            job = await client.batch_api.submit(requests, output_dir="out")
            await job.wait(progress=print)
            async for result in job.results():
                print(result.index, result.paths or result.error)
            ```
        """
        return BatchAPI(self._sender)

    # -- life cycle ----------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close every connection; calls still running fail with ``ClientClosedError``.
        The client (and its ``with_options`` copies) cannot be used afterwards."""
        await self._sender.aclose()

    def __del__(self) -> None:
        sender = getattr(self, "_sender", None)
        if sender is not None and self._owns_transport:
            sender.transport.warn_if_open(self)

    # -- requests built beforehand -------------------------------------------------------

    async def send(
        self, request: ImageRequest, *, options: RequestOptions | None = None
    ) -> ImagesResponse:
        """Send a request built beforehand and return its response.

        Example:
            ```python
            request = GenerateRequest(prompt="a fox", model="gpt-image-2")
            response = await client.send(request)
            ```
        """
        if getattr(request, "stream", None):
            raise ValueError("send() returns a whole response; use send_stream() for stream=True")
        return await self._sender.send(request, options or NO_OPTIONS)

    async def send_stream(
        self,
        request: GenerateRequest | EditRequest,
        *,
        options: RequestOptions | None = None,
    ) -> AsyncImageStream[Any]:
        """Send a request built beforehand with ``stream=True`` and return its event stream."""
        return await self._sender.open_stream(request, options or NO_OPTIONS)

    async def download(
        self, image: Image | str, *, timeout: float | Timeout | None = None
    ) -> bytes:
        """Fetch a ``url`` result's bytes.

        Our ``Authorization`` header is never sent: the URL is signed, and its host is not
        the API's.

        Example:
            ```python
            data = await client.download(result.data[0])
            ```
        """
        url = image if isinstance(image, str) else image.url
        if not url:
            raise ValueError("this image has no url; use image.content() for b64_json results")
        return await self._sender.download(url, timeout=timeout)

    # -- batches -------------------------------------------------------------------------

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
    ) -> AsyncBatchIterator:
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
            async with client.map(requests, output_dir="out") as results:
                async for result in results:
                    print(result.index, result.paths if result.ok else result.error)
            ```
        """
        settings = BatchSettings(
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
        )
        return AsyncBatchIterator(
            self._sender, requests, settings=settings, options=options or NO_OPTIONS
        )

    async def run_batch(
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
            report = await client.run_batch(requests, output_dir="out")
            report.summary.failed
            # -> 0
            ```
        """
        batch = self.map(
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
        return await _collect(batch, keep_results=keep_results)
