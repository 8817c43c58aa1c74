"""``AsyncImagesClient``: the three endpoints, validation, retries and streams.

A call travels: keyword arguments -> a request class -> the rules table -> the body (JSON,
or multipart streamed from the inputs) -> the transport, with retries -> a typed response
or a stream of typed events.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import warnings
from collections.abc import AsyncIterable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Literal, Protocol, overload

import anyio
import attrs
import orjson
from yarl import URL

from . import _jsonsplit
from ._batch import (
    AsyncBatchIterator,
    BatchReport,
    BatchSettings,
    KeyFunction,
    ProgressCallback,
    collect,
)
from ._config import Settings, Timeout
from ._converter import request_fields, structure_response
from ._errors import (
    APIConnectionError,
    APIError,
    APIResponseValidationError,
    APIStatusError,
    MissingAPIKeyError,
    RequestValidationError,
    Violation,
    error_from_payload,
)
from ._inputs import ImageSource, resolve_image, resolve_images
from ._multipart import build_multipart
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
    VariationRequest,
)
from ._responses import Image, ImageEditStreamEvent, ImageGenStreamEvent, ImagesResponse
from ._retry import RetryPolicy, retry_delay, should_retry
from ._rules import ensure_valid
from ._streaming import AsyncImageStream
from ._transport import Body, Exchange, ResponseTooLargeError, StreamingExchange, Transport

if TYPE_CHECKING:
    from types import TracebackType

__all__ = ["AsyncImagesClient", "ExchangeObserver", "RequestOptions"]

logger = logging.getLogger("openai_images")


@attrs.frozen(kw_only=True)
class RequestOptions:
    """Per-call settings that override the client's for one request."""

    timeout: float | Timeout | None = None
    max_retries: int | None = None
    extra_headers: Mapping[str, str] | None = None
    extra_query: Mapping[str, str] | None = None
    extra_body: Mapping[str, Any] | None = None


class ExchangeObserver(Protocol):
    """Hooks around every attempt of a request (the batch engine's shared rate limiter)."""

    async def before_attempt(self) -> None:
        """Wait, if needed, before an attempt goes out (or raise to give up)."""

    def after_attempt(
        self,
        *,
        status: int | None,
        headers: Mapping[str, str] | None,
        error: BaseException | None,
    ) -> bool:
        """Learn from an attempt's outcome (``status`` is ``None`` for a connection error);
        ``True`` takes charge of the failure: it is retried without spending a retry."""


_NO_OPTIONS = RequestOptions()


def _is_loopback(host: str | None) -> bool:
    if host is None or host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class AsyncImagesClient:
    """An asynchronous client for the OpenAI Images API.

    Settings you leave unset come from the environment: ``OPENAI_API_KEY``,
    ``OPENAI_BASE_URL`` (default ``https://api.openai.com/v1``), ``OPENAI_ORG_ID`` and
    ``OPENAI_PROJECT_ID``. Close the client when done (``async with`` does it for you).

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
        trust_env: Take proxy settings from the environment (``HTTPS_PROXY``...).
        max_response_bytes: A larger response fails rather than filling memory.

    Example:
        ```python
        async with AsyncImagesClient() as client:
            result = await client.generate(prompt="a red fox", model="gpt-image-1")
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
        trust_env: bool = False,
        max_response_bytes: int = 1 << 30,
    ) -> None:
        self._settings = Settings.from_arguments(
            api_key=api_key,
            base_url=base_url,
            organization=organization,
            project=project,
            timeout=timeout,
            max_retries=max_retries,
            default_headers=default_headers,
        )
        self._validate = validate
        self._transport = Transport(
            max_connections=max_connections,
            max_response_bytes=max_response_bytes,
            trust_env=trust_env,
        )
        self._policy = RetryPolicy(max_retries=max_retries)
        self._headers: dict[str, str] | None = None

    # -- settings ------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """The API root requests go to."""
        return self._settings.base_url

    @property
    def max_retries(self) -> int:
        """How many times a failed request is retried by default."""
        return self._settings.max_retries

    @property
    def timeout(self) -> Timeout:
        """The default timeout of every call."""
        return self._settings.timeout

    def __repr__(self) -> str:
        return f"AsyncImagesClient(base_url={self.base_url!r})"

    def _auth_headers(self) -> dict[str, str]:
        if self._headers is None:
            key = self._settings.api_key
            if not key:
                raise MissingAPIKeyError
            url = URL(self.base_url)
            if url.scheme == "http" and not _is_loopback(url.host):
                warnings.warn(
                    f"Sending the API key over plain http:// to {url.host}; use https://",
                    stacklevel=4,
                )
            headers = {"Authorization": f"Bearer {key}", "Accept": "application/json"}
            if self._settings.organization:
                headers["OpenAI-Organization"] = self._settings.organization
            if self._settings.project:
                headers["OpenAI-Project"] = self._settings.project
            headers.update(self._settings.default_headers)
            self._headers = headers
        return self._headers

    # -- life cycle ----------------------------------------------------------------------

    async def __aenter__(self) -> AsyncImagesClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close every connection. The client cannot be used afterwards."""
        await self._transport.aclose()

    def __del__(self) -> None:
        transport = getattr(self, "_transport", None)
        if transport is not None:
            transport.warn_if_open(self)

    # -- endpoints -----------------------------------------------------------------------

    @overload
    async def generate(
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
    async def generate(
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
    ) -> AsyncImageStream[ImageGenStreamEvent]: ...

    async def generate(
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
    ) -> ImagesResponse | AsyncImageStream[ImageGenStreamEvent]:
        """Create images from a prompt (``POST /images/generations``).

        With ``stream=True`` (GPT image models) it returns an ``AsyncImageStream``
        of partial and completed events once the response has begun.

        Example:
            ```python
            result = await client.generate(
                prompt="a watercolor lighthouse", model="gpt-image-1", size="1024x1536"
            )
            result.data[0].save("lighthouse.png")
            ```
        """
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
            return await self.send_stream(request, options=options)
        return await self.send(request, options=options)

    @overload
    async def edit(
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
    async def edit(
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
    ) -> AsyncImageStream[ImageEditStreamEvent]: ...

    async def edit(
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
    ) -> ImagesResponse | AsyncImageStream[ImageEditStreamEvent]:
        """Edit or combine images (``POST /images/edits``).

        ``image`` takes one input or a list of up to 16: a path, bytes, a binary file, or
        ``(filename, content[, content_type])``. Files stream from disk as they upload.
        For an edit by reference, pass ``images=[ImageRef(...)]`` (and an ``ImageRef``
        mask) instead: that request goes as JSON.

        Example:
            ```python
            result = await client.edit(
                image=["soap.png", "candle.png"], prompt="a gift basket", model="gpt-image-1"
            )
            ```
        """
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
            return await self.send_stream(request, options=options)
        return await self.send(request, options=options)

    async def create_variation(
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
            result = await client.create_variation(image="cat.png", n=2)
            ```
        """
        request = VariationRequest(
            image=image, model=model, n=n, size=size, response_format=response_format, user=user
        )
        options = RequestOptions(
            timeout=timeout,
            max_retries=max_retries,
            extra_headers=extra_headers,
            extra_query=extra_query,
            extra_body=extra_body,
        )
        return await self._execute(request, options)

    async def send(
        self, request: ImageRequest, *, options: RequestOptions | None = None
    ) -> ImagesResponse:
        """Send a request built beforehand and return its response.

        Example:
            ```python
            request = GenerateRequest(prompt="a fox", model="gpt-image-1")
            response = await client.send(request)
            ```
        """
        if getattr(request, "stream", None):
            raise ValueError("send() returns a whole response; use send_stream() for stream=True")
        return await self._execute(request, options or _NO_OPTIONS)

    async def send_stream(
        self,
        request: GenerateRequest | EditRequest,
        *,
        options: RequestOptions | None = None,
    ) -> AsyncImageStream[Any]:
        """Send a request built beforehand with ``stream=True`` and return its event stream."""
        return await self._execute_stream(
            attrs.evolve(request, stream=True), options or _NO_OPTIONS
        )

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
        exchange = await self._exchange(
            "GET",
            url,
            headers={},
            body=None,
            params=None,
            timeout=Timeout.coerce(timeout, default=self._settings.timeout),
            max_retries=self._settings.max_retries,
            allow_redirects=True,
        )
        return exchange.body

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
            requests = (GenerateRequest(prompt=p, model="gpt-image-1") for p in prompts)
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
        return AsyncBatchIterator(self, requests, settings=settings, options=options or _NO_OPTIONS)

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
        return await collect(batch, keep_results=keep_results)

    # -- the road of a request -----------------------------------------------------------

    async def _execute(
        self,
        request: ImageRequest,
        options: RequestOptions,
        *,
        observer: ExchangeObserver | None = None,
    ) -> ImagesResponse:
        url, headers, body, replayable = await self._prepare(request, options)
        exchange = await self._exchange(
            "POST",
            url,
            headers=headers,
            params=options.extra_query,
            body=body,
            timeout=Timeout.coerce(options.timeout, default=self._settings.timeout),
            max_retries=self._retries(options, replayable),
            observer=observer,
            replayable=replayable,
        )
        return _parse_response(exchange)

    async def _execute_stream(
        self, request: GenerateRequest | EditRequest, options: RequestOptions
    ) -> AsyncImageStream[Any]:
        url, headers, body, replayable = await self._prepare(request, options)
        exchange = await self._exchange(
            "POST",
            url,
            headers={**headers, "Accept": "text/event-stream"},
            params=options.extra_query,
            body=body,
            timeout=Timeout.coerce(options.timeout, default=self._settings.timeout),
            max_retries=self._retries(options, replayable),
            stream=True,
        )
        return AsyncImageStream(exchange)

    def _retries(self, options: RequestOptions, replayable: bool) -> int:
        if not replayable:
            return 0
        if options.max_retries is not None:
            return options.max_retries
        return self._settings.max_retries

    async def _prepare(
        self, request: ImageRequest, options: RequestOptions
    ) -> tuple[str, dict[str, str], Body, bool]:
        """Check the request, then make its URL, headers and body (no network I/O)."""
        if self._validate:
            ensure_valid(request)
        headers = self._auth_headers()
        if options.extra_headers:
            headers = {**headers, **options.extra_headers}
        url = f"{self._settings.base_url}/images/{request.endpoint}"
        fields = request_fields(request)
        if options.extra_body:
            fields.update(options.extra_body)
        if isinstance(request, GenerateRequest) or (
            isinstance(request, EditRequest) and request.is_json
        ):
            try:
                data = orjson.dumps(fields)
            except TypeError as exc:
                raise _unencodable(fields) from exc
            return url, headers, Body(content_type="application/json", data=data), True

        files = await self._resolve_files(request)
        if self._validate:
            images = [source.info for name, source in files if name != "mask"]
            masks = [source.info for name, source in files if name == "mask"]
            ensure_valid(request, images, masks[0] if masks else None)
        try:
            multipart = build_multipart(fields=fields, files=files)
        except UnicodeEncodeError as exc:
            raise _unencodable(fields) from exc
        body = Body(
            content_type=multipart.content_type,
            stream=multipart.stream,
            length=multipart.content_length,
        )
        return url, headers, body, multipart.replayable

    async def _resolve_files(
        self, request: EditRequest | VariationRequest
    ) -> list[tuple[str, ImageSource]]:
        if isinstance(request, VariationRequest):
            return [("image", await resolve_image(request.image, param="image"))]
        listed = isinstance(request.image, list)
        sources = await resolve_images(request.image_inputs, param="image", listed=listed)
        files = [("image[]" if listed else "image", source) for source in sources]
        if request.mask is not None and not isinstance(request.mask, ImageRef):
            files.append(("mask", await resolve_image(request.mask, param="mask")))
        return files

    @overload
    async def _exchange(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        params: Mapping[str, str] | None,
        body: Body | None,
        timeout: Timeout,
        max_retries: int,
        stream: Literal[True],
        observer: ExchangeObserver | None = None,
        replayable: bool = True,
        allow_redirects: bool = False,
    ) -> StreamingExchange: ...

    @overload
    async def _exchange(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        params: Mapping[str, str] | None,
        body: Body | None,
        timeout: Timeout,
        max_retries: int,
        stream: Literal[False] = False,
        observer: ExchangeObserver | None = None,
        replayable: bool = True,
        allow_redirects: bool = False,
    ) -> Exchange: ...

    async def _exchange(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        params: Mapping[str, str] | None,
        body: Body | None,
        timeout: Timeout,
        max_retries: int,
        stream: bool = False,
        observer: ExchangeObserver | None = None,
        replayable: bool = True,
        allow_redirects: bool = False,
    ) -> Exchange | StreamingExchange:
        """One request with retries: the successful exchange, or the last error raised."""
        transport = self._transport
        attempt = 0
        while True:
            if observer is not None:
                await observer.before_attempt()
            status: int | None = None
            response_headers: Mapping[str, str] | None = None
            try:
                if stream:
                    opened = await transport.open_stream(
                        method, url, headers=headers, params=params, body=body, timeout=timeout
                    )
                    if 200 <= opened.status < 300:
                        if observer is not None:
                            observer.after_attempt(
                                status=opened.status, headers=opened.headers, error=None
                            )
                        return opened
                    async with opened:
                        failed = Exchange(
                            status=opened.status,
                            headers=opened.headers,
                            body=await opened.read(limit=transport.max_response_bytes),
                        )
                else:
                    failed = await transport.send(
                        method,
                        url,
                        headers=headers,
                        params=params,
                        body=body,
                        timeout=timeout,
                        allow_redirects=allow_redirects,
                    )
                    if 200 <= failed.status < 300:
                        if observer is not None:
                            observer.after_attempt(
                                status=failed.status, headers=failed.headers, error=None
                            )
                        return failed
                status, response_headers = failed.status, failed.headers
                refused = _status_error(failed)
                error: APIError = refused
                retry = should_retry(
                    status=status,
                    headers=response_headers,
                    error_code=refused.code,
                    error_type=refused.type,
                )
            except APIConnectionError as exc:
                # An answer over our own size limit would only come back as large.
                error, retry = exc, not isinstance(exc, ResponseTooLargeError)
            if (
                observer is not None
                and observer.after_attempt(status=status, headers=response_headers, error=error)
                and replayable
            ):
                continue  # the observer paces this retry; it spends none of max_retries
            if not retry or attempt >= max_retries:
                raise error
            delay = retry_delay(self._policy, attempt=attempt, headers=response_headers)
            logger.info(
                "Retrying %s %s in %.2fs (attempt %d of %d): %s",
                method,
                url.split("?", 1)[0],
                delay,
                attempt + 1,
                max_retries,
                error,
            )
            await anyio.sleep(delay)
            attempt += 1


def _unencodable(fields: Mapping[str, Any]) -> Exception:
    """Why a body could not be encoded: text that is not Unicode, whether checked or not."""
    violations = _unencodable_text(fields)
    if violations:
        return RequestValidationError(violations)
    return TypeError("the request's fields cannot be encoded (see the cause)")


def _unencodable_text(value: Any, param: str = "") -> list[Violation]:
    """The fields holding lone surrogates: not Unicode, so neither JSON nor UTF-8 can carry
    them (a path's undecodable bytes become such surrogates)."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            bad = value[exc.start : exc.end]
            return [Violation(param=param, message=f"{param} holds {bad!r}, not valid Unicode")]
        return []
    if isinstance(value, Mapping):
        return [
            found
            for key, item in value.items()
            for found in _unencodable_text(item, f"{param}.{key}" if param else str(key))
        ]
    if isinstance(value, (list, tuple)):
        return [
            found
            for index, item in enumerate(value)
            for found in _unencodable_text(item, f"{param}[{index}]")
        ]
    return []


def _status_error(exchange: Exchange) -> APIStatusError:
    payload: Any
    try:
        payload = orjson.loads(exchange.body) if exchange.body else None
    except orjson.JSONDecodeError:
        payload = exchange.body.decode("utf-8", "replace")
    return error_from_payload(
        payload,
        status_code=exchange.status,
        request_id=exchange.headers.get("x-request-id"),
        headers=exchange.headers,
    )


def _parse_response(exchange: Exchange) -> ImagesResponse:
    request_id = exchange.headers.get("x-request-id")
    try:
        data = _jsonsplit.loads(exchange.body)
    except orjson.JSONDecodeError as exc:
        raise APIResponseValidationError(
            f"The response body is not valid JSON: {exc}",
            status_code=exchange.status,
            body=exchange.body,
            request_id=request_id,
        ) from exc
    try:
        return structure_response(data, request_id=request_id, headers=exchange.headers)
    except Exception as exc:
        raise APIResponseValidationError(
            f"The response does not match the Images API's shape: {exc}",
            status_code=exchange.status,
            body=exchange.body,
            request_id=request_id,
        ) from exc
