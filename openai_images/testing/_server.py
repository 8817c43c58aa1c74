"""The local Images server: real HTTP on 127.0.0.1 that answers like the OpenAI Images API.

One aiohttp application serves the three endpoints (``POST /v1/images/generations``,
``/v1/images/edits``, and with ``legacy=True`` the retired ``/v1/images/variations``),
the ``url`` results of DALL·E models (``GET /v1/_files/{name}``, until they expire) and,
when asked for, a control route for faults. Every image request goes the same road::

    request fault? -> key -> rate limit -> latency -> read (JSON, or multipart spooled to disk)
    -> structure into the shared request class -> rules.check -> inspect files -> check_images
    -> render off the event loop -> ImagesResponse / events -> JSON or server-sent events

Refusals use the API's error shape and status; nothing a client sends can make it answer
500 (only a fault does). Every answer carries ``x-request-id``, ``openai-processing-ms``
and the six ``x-ratelimit-*`` headers.

A stream (``stream: true``, GPT image models) carries one image: ``n`` is accepted, and
the first image is streamed, its partial images first, then its completed event with the
usage of that one image.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import secrets
import shutil
import tempfile
import time
from collections import deque
from collections.abc import Awaitable, Callable, Collection, Iterator, Sequence
from http import HTTPStatus
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import anyio
import anyio.from_thread
import attrs
from aiohttp import web
from aiohttp.log import access_logger

from openai_images._requests import (
    EditRequest,
    GenerateRequest,
    ImageRef,
    ImageRequest,
    VariationRequest,
)
from openai_images._rules import MODELS, check, check_images, legacy_model_note
from openai_images._sniff import ImageInfo

from ._azure import AzureMode, Placement, own_name_deployments
from ._batches import BatchControl, BatchService
from ._faults import Fault, FaultQueue, fault_error, fault_from_json
from ._files import FileStore, StoredFile, list_limit
from ._images import (
    MAX_REQUEST_PIXELS,
    ImageDecodeError,
    inspect_image,
    render,
    render_partials,
)
from ._intake import (
    Upload,
    check_declared_type,
    check_reference_shapes,
    read_json,
    read_json_value,
    read_multipart,
    request_workdir,
    spool_reference,
    structure_request,
)
from ._ratelimit import Admission, Clock, RateLimiter, format_duration
from ._results import InputImage, Plan, images_response, make_plan, stream_events, wire_body
from ._wire import Rejection, dumps

__all__ = ["DEFAULT_MAX_BODY_BYTES", "LocalImagesServer", "RecordedRequest", "serve_forever"]

_logger = logging.getLogger(__name__)

MiB = 1024 * 1024
DEFAULT_MAX_BODY_BYTES = 16 * 50 * MiB + 16 * MiB
"""Sixteen 50 MB images, a mask and the text fields fit under the default body limit."""

_ENDPOINTS = ("generations", "edits", "variations")
_JSON = "application/json"
_R = TypeVar("_R", bound=web.StreamResponse)
_PROXY_PAGE = (
    "<html>\r\n<head><title>{status}</title></head>\r\n<body>\r\n"
    "<center><h1>{status}</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)
_BLOB_NOT_FOUND = (
    '<?xml version="1.0" encoding="utf-8"?><Error><Code>BlobNotFound</Code>'
    "<Message>The specified blob does not exist.\nRequestId:{request_id}</Message></Error>"
)


def redact_key(key: str) -> str:
    """An API key with its middle hidden, as the API shows keys in its messages.

    Example:
        >>> redact_key("sk-proj-abcdefghijklmnop1234")
        'sk-*********************1234'
        >>> redact_key("test-key")
        '****-key'
    """
    head = key[:3] if len(key) >= 16 else ""
    tail = key[-4:] if len(key) >= 8 else ""
    return head + "*" * (len(key) - len(head) - len(tail)) + tail


@attrs.frozen(kw_only=True)
class RecordedRequest:
    """One request the server received, as tests want to look at it.

    Attributes:
        method: ``"POST"``, ``"GET"``...
        path: The URL path, e.g. ``"/v1/images/edits"``.
        endpoint: ``"generations"``, ``"edits"``, ``"variations"``, ``"files"`` (a ``url``
            download), ``"file_api"`` (``/v1/files``), ``"batch_api"`` (``/v1/batches``),
            or ``None`` for an unknown route.
        content_type: The request's ``Content-Type`` header as sent.
        fields: The body's fields as parsed: the JSON object, or the multipart text fields
            coerced to their types (empty when the body was never read).
        files: Each uploaded file as ``(part name, filename, declared content type, size)``.
        api_key: The bearer key (in Azure mode, the ``api-key`` or the Entra token),
            redacted (the middle hidden), or ``None`` if none passed.
        request_id: The request id the server answered with (``x-request-id``; in Azure
            mode ``apim-request-id``).
        status: The HTTP status answered; ``None`` if the connection was cut first.
    """

    method: str
    path: str
    endpoint: str | None
    content_type: str | None
    fields: dict[str, Any] = attrs.field(factory=dict)
    files: tuple[tuple[str, str, str | None, int], ...] = ()
    api_key: str | None = None
    request_id: str
    status: int | None = None


@attrs.define
class _Exchange:
    """What the server learns about one request while answering it."""

    request: web.Request
    endpoint: str | None
    request_id: str = attrs.Factory(lambda: f"req_{secrets.token_hex(16)}")
    started: float = attrs.Factory(time.monotonic)
    api_key: str | None = None
    fields: dict[str, Any] = attrs.Factory(dict)
    files: list[tuple[str, str, str | None, int]] = attrs.Factory(list)
    status: int | None = None
    recorded: bool = False

    def record(self) -> RecordedRequest:
        return RecordedRequest(
            method=self.request.method,
            path=self.request.path,
            endpoint=self.endpoint,
            content_type=self.request.headers.get("Content-Type"),
            fields=self.fields,
            files=tuple(self.files),
            api_key=self.api_key,
            request_id=self.request_id,
            status=self.status,
        )


class _FileStore:
    """The ``url`` results: image bytes by name, each until its expiry."""

    def __init__(self, *, ttl: float, clock: Clock) -> None:
        self._ttl = ttl
        self._clock = clock
        self._files: dict[str, tuple[bytes, float]] = {}

    def put(self, data: bytes) -> str:
        now = self._clock()
        self._files = {name: kept for name, kept in self._files.items() if kept[1] > now}
        name = f"img-{secrets.token_urlsafe(18)}.png"
        self._files[name] = (data, now + self._ttl)
        return name

    def get(self, name: str) -> bytes | None:
        kept = self._files.get(name)
        if kept is None or kept[1] <= self._clock():
            return None
        return kept[0]


class LocalImagesServer:
    """A real HTTP server that answers like the OpenAI Images API, with real images.

    Use it as an async context manager, or with ``start`` and ``aclose``; from
    synchronous code, use ``in_thread``.

    Args:
        host: The address to listen on.
        port: The port; 0 picks a free one (see ``base_url``).
        api_keys: The keys that pass; ``None`` lets any non-empty bearer key through.
        latency: Seconds added before each image request is answered.
        requests_per_minute: An enforced request limit (a token bucket holding a minute's
            worth, so bursts of that size pass); ``None`` for none.
        tokens_per_minute: An enforced token limit, charged with each answer's usage.
        images_per_minute: An enforced image limit: each request counts its ``n`` once its
            body is read (with ``x-ratelimit-*-images`` headers).
        burst: The request bucket's size, if smaller than a minute's worth.
        slice_seconds: Enforce the limits over slices this long (60 a minute as one a
            second) while the headers describe the per-minute buckets.
        count_refused: Count each refused request (429) against the request limit, as the
            API does, so a storm of 429s eats the budget it waits for (the default);
            ``False`` makes refusals free.
        control_route: Serve ``/_control/faults`` (GET, POST a fault or a list, DELETE).
        max_body_bytes: Larger bodies get a 413.
        url_ttl: Seconds a ``url`` result stays downloadable.
        access_log: Log each request through aiohttp's access logger.
        shutdown_timeout: Seconds ``aclose`` lets unfinished requests run.
        max_recorded: How many requests ``requests`` keeps (the newest).
        clock: The monotonic clock of the rate limits and ``url`` expiry (for tests).
        tmp_dir: Where uploads are spooled; the system's temporary folder by default.
        azure: Answer like an Azure OpenAI resource instead (``True``, or an ``AzureMode``
            naming deployments, tokens, versions and filtered words): the deployments and
            v1 routes, ``api-key`` or Entra token auth, Azure's errors and request id header.
            ``True`` deploys each model served under its own name (with ``legacy``, the
            retired ones too).
        legacy: Also serve the retired models (``gpt-image-1``, ``dall-e-2``, ``dall-e-3``)
            and ``/v1/images/variations``, for code that still targets them; by default
            they are refused as the API refuses them today, naming the successor.

    Example:
        ```python
        async with LocalImagesServer() as server:
            client = openai.AsyncOpenAI(api_key="k", base_url=server.base_url)
            server.inject(Fault(kind="status", status=503))
        ```
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        api_keys: Collection[str] | None = None,
        latency: float = 0.0,
        requests_per_minute: int | None = None,
        tokens_per_minute: int | None = None,
        images_per_minute: int | None = None,
        burst: int | None = None,
        slice_seconds: float | None = None,
        count_refused: bool = True,
        control_route: bool = False,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        url_ttl: float = 3600.0,
        access_log: bool = False,
        shutdown_timeout: float = 1.0,
        max_recorded: int = 10_000,
        clock: Clock = time.monotonic,
        tmp_dir: str | Path | None = None,
        azure: bool | AzureMode = False,
        legacy: bool = False,
    ) -> None:
        if latency < 0:
            raise ValueError(f"latency must be 0 or more, got {latency}")
        self._host = host
        self._port = port
        self._api_keys = frozenset(api_keys) if api_keys is not None else None
        self._latency = latency
        self._limiter = RateLimiter(
            requests_per_minute=requests_per_minute,
            tokens_per_minute=tokens_per_minute,
            images_per_minute=images_per_minute,
            burst=burst,
            slice_seconds=slice_seconds,
            count_refused=count_refused,
            clock=clock,
        )
        self._control_route = control_route
        self._max_body_bytes = max_body_bytes
        self._files = _FileStore(ttl=url_ttl, clock=clock)
        self._access_log = access_log
        self._shutdown_timeout = shutdown_timeout
        self._tmp_dir = Path(tmp_dir) if tmp_dir is not None else None
        self._legacy = legacy
        self._faults = FaultQueue()
        self._recorded: deque[RecordedRequest] = deque(maxlen=max_recorded)
        self._runner: web.AppRunner | None = None
        self._url: str | None = None
        if azure is True:
            azure = AzureMode(deployments=own_name_deployments(legacy=legacy))
        self._azure = azure or None
        # /v1/files and /v1/batches keep their files in a folder of their own (from start).
        self._stored = FileStore(max_bytes=512 * MiB)
        self.batch_api = BatchControl()
        """The Batch API's scripted behaviour: speed, line failures, expiry (``BatchControl``)."""
        self._batches = BatchService(
            files=self._stored, answer=self._answer_line, control=self.batch_api
        )

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Start listening; ``base_url`` is known from then on."""
        if self._runner is not None:
            raise RuntimeError("the server is already running")
        runner = web.AppRunner(
            self._make_app(),
            handle_signals=False,
            access_log=access_logger if self._access_log else None,
            shutdown_timeout=self._shutdown_timeout,
            # A client that hangs up (a timeout, a reset) cancels its request's handler.
            handler_cancellation=True,
        )
        self._stored.directory = Path(
            tempfile.mkdtemp(prefix="openai-images-files-", dir=self._tmp_dir)
        )
        await runner.setup()
        try:
            site = web.TCPSite(runner, self._host, self._port)
            await site.start()
        except BaseException:
            with anyio.CancelScope(shield=True):
                await runner.cleanup()
            raise
        self._runner = runner
        host, port = runner.addresses[0][:2]
        shown = f"[{host}]" if ":" in host else host
        self._url = f"http://{shown}:{port}"

    async def aclose(self) -> None:
        """Stop listening and finish (or, after ``shutdown_timeout``, cancel) open requests."""
        runner, self._runner = self._runner, None
        if runner is not None:
            with anyio.CancelScope(shield=True):
                await runner.cleanup()
            shutil.rmtree(self._stored.directory, ignore_errors=True)

    async def __aenter__(self) -> LocalImagesServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    @classmethod
    @contextlib.contextmanager
    def in_thread(cls, **kwargs: Any) -> Iterator[LocalImagesServer]:
        """Run a server on its own event loop in a background thread, for synchronous code.

        Takes the same keyword arguments as the class. ``requests``, ``inject``
        and ``clear`` are safe to use from the calling thread.

        Example:
            ```python
            with LocalImagesServer.in_thread(latency=0.1) as server:
                openai.OpenAI(api_key="k", base_url=server.base_url).images.generate(...)
            ```
        """
        server = cls(**kwargs)
        with (
            anyio.from_thread.start_blocking_portal(backend="asyncio") as portal,
            portal.wrap_async_context_manager(server) as running,
        ):
            yield running

    # -- what tests use ----------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The server's root, e.g. ``http://127.0.0.1:54321``."""
        if self._url is None:
            raise RuntimeError("the server is not running: use 'async with' or start()")
        return self._url

    @property
    def base_url(self) -> str:
        """The API's base URL for clients, e.g. ``http://127.0.0.1:54321/v1``."""
        return f"{self.url}/v1"

    @property
    def requests(self) -> list[RecordedRequest]:
        """The requests received so far, oldest first (control requests are not kept)."""
        # Iterating a deque that the server's thread appends to can raise; copy() is one
        # step under the GIL.
        return list(self._recorded.copy())

    @property
    def faults(self) -> tuple[Fault, ...]:
        """The faults still waiting, each with the uses it has left in ``times``."""
        return self._faults.pending()

    def inject(self, *faults: Fault) -> None:
        """Queue faults for the next matching requests (thread-safe).

        Example:
            ```python
            server.inject(Fault(kind="status", status=503, times=2))
            ```
        """
        for fault in faults:
            self._faults.add(fault)

    def clear(self) -> None:
        """Forget the recorded requests and drop the waiting faults."""
        self._recorded.clear()
        self._faults.clear()

    # -- the application ---------------------------------------------------------------------

    def _make_app(self) -> web.Application:
        app = web.Application(client_max_size=self._max_body_bytes)
        prefixes: tuple[str, ...] = ("/v1",)
        if self._azure is not None:
            prefixes = ("/openai/deployments/{deployment}", "/openai/v1")
        for prefix in prefixes:
            for endpoint in _ENDPOINTS:
                route = f"{prefix}/images/{endpoint}"
                app.router.add_route("*", route, self._endpoint_handler(endpoint))
        app.router.add_get("/v1/_files/{name}", self._download)
        self._add_batch_api(app)
        if self._control_route:
            app.router.add_route("*", "/_control/faults", self._control)
        app.router.add_route("*", "/{tail:.*}", self._not_found)
        return app

    def _endpoint_handler(
        self, endpoint: str
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handle(request: web.Request) -> web.StreamResponse:
            exchange = _Exchange(request=request, endpoint=endpoint)
            try:
                return await self._answer(exchange, endpoint)
            finally:
                self._keep(exchange)

        return handle

    async def _not_found(self, request: web.Request) -> web.StreamResponse:
        exchange = _Exchange(request=request, endpoint=None)
        try:
            return self._error(exchange, _invalid_url(request))
        finally:
            self._keep(exchange)

    async def _download(self, request: web.Request) -> web.StreamResponse:
        exchange = _Exchange(request=request, endpoint="files")
        try:
            data = self._files.get(request.match_info["name"])
            if data is None:
                # What the blob storage behind the API's URLs says about an expired link.
                body = _BLOB_NOT_FOUND.format(request_id=exchange.request_id)
                return self._finish(
                    exchange, web.Response(status=404, text=body, content_type="application/xml")
                )
            return self._finish(exchange, web.Response(body=data, content_type="image/png"))
        finally:
            self._keep(exchange)

    # -- /v1/files and /v1/batches -----------------------------------------------------------

    def _add_batch_api(self, app: web.Application) -> None:
        app.cleanup_ctx.append(self._batches.background)
        files, batches = self._stored, self._batches
        route = self._api_route

        async def upload(request: web.Request) -> Any:
            return (await files.receive(request)).wire()

        async def list_files(request: web.Request) -> Any:
            limit = list_limit(request, default=10_000, most=10_000)
            purpose = request.query.get("purpose")
            return files.listing(purpose=purpose, limit=limit, after=request.query.get("after"))

        async def retrieve_file(request: web.Request) -> Any:
            return _stored_file(files, request).wire()

        async def delete_file(request: web.Request) -> Any:
            stored = _stored_file(files, request)
            files.delete(stored.id)
            return {"id": stored.id, "object": "file", "deleted": True}

        async def content(request: web.Request) -> Any:
            stored = _stored_file(files, request)
            # A FileResponse closes its file however the download ends (a client that
            # stops reading half-way included).
            return web.FileResponse(
                stored.path, headers={"Content-Type": "application/octet-stream"}
            )

        async def create_batch(request: web.Request) -> Any:
            data = await read_json(request, max_bytes=MiB)
            return await batches.create(request, data)

        async def retrieve_batch(request: web.Request) -> Any:
            return batches.retrieve(request.match_info["id"])

        async def cancel_batch(request: web.Request) -> Any:
            return batches.cancel(request.match_info["id"])

        async def list_batches(request: web.Request) -> Any:
            return batches.listing(request)

        app.router.add_post("/v1/files", route("file_api", upload))
        app.router.add_get("/v1/files", route("file_api", list_files))
        app.router.add_get("/v1/files/{id}", route("file_api", retrieve_file))
        app.router.add_delete("/v1/files/{id}", route("file_api", delete_file))
        app.router.add_get("/v1/files/{id}/content", route("file_api", content))
        app.router.add_post("/v1/batches", route("batch_api", create_batch))
        app.router.add_get("/v1/batches", route("batch_api", list_batches))
        app.router.add_get("/v1/batches/{id}", route("batch_api", retrieve_batch))
        app.router.add_post("/v1/batches/{id}/cancel", route("batch_api", cancel_batch))

    def _api_route(
        self, endpoint: str, handler: Callable[[web.Request], Awaitable[Any]]
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        """A files or batches route: authenticated, recorded, JSON or a streamed answer."""

        async def handle(request: web.Request) -> web.StreamResponse:
            exchange = _Exchange(request=request, endpoint=endpoint)
            try:
                self._authenticate(exchange, None)
                answer = await handler(request)
                if isinstance(answer, web.StreamResponse):
                    return self._finish(exchange, answer)
                return self._json(exchange, answer)
            except Rejection as rejection:
                return self._error(exchange, rejection)
            finally:
                self._keep(exchange)

        return handle

    async def _answer_line(
        self, endpoint: str, body: dict[str, Any], origin: str
    ) -> tuple[int, dict[str, Any]]:
        """One Batch API line through the image road: its status and body."""
        try:
            async with contextlib.AsyncExitStack() as stack:
                plan = await self._plan_json(endpoint, body, stack)
                if plan.stream:
                    raise Rejection(
                        "Streaming is not supported in the Batch API.",
                        param="stream",
                        code="invalid_value",
                    )
                images = await _render(plan)
        except Rejection as rejection:
            return rejection.status, rejection.body()
        urls = None
        if plan.response_format == "url":
            urls = [f"{origin}/v1/_files/{self._files.put(image)}" for image in images]
        answer = images_response(plan, images, created=int(time.time()), urls=urls)
        data: dict[str, Any] = wire_body(answer)
        return 200, data

    async def _control(self, request: web.Request) -> web.StreamResponse:
        exchange = _Exchange(request=request, endpoint=None)
        try:
            if request.method == "DELETE":
                self._faults.clear()
            elif request.method == "POST":
                data = await read_json_value(request, max_bytes=MiB)
                items = data if isinstance(data, list) else [data]
                try:
                    faults = [fault_from_json(item) for item in items]
                except ValueError as error:
                    raise Rejection(f"Invalid fault: {error}") from error
                self.inject(*faults)
            elif request.method != "GET":
                raise _invalid_url(request)
            pending = [attrs.asdict(fault) for fault in self._faults.pending()]
            return self._json(exchange, {"faults": pending})
        except Rejection as rejection:
            return self._error(exchange, rejection)

    # -- one image request -------------------------------------------------------------------

    async def _answer(self, exchange: _Exchange, endpoint: str) -> web.StreamResponse:
        request = exchange.request
        try:
            if request.method != "POST":
                raise _invalid_url(request)
            placement = None
            if self._azure is not None:
                placement = self._azure.place(
                    endpoint=endpoint,
                    deployment=request.match_info.get("deployment"),
                    query=request.query,
                )
            fault = self._faults.take(endpoint=endpoint, stage="request")
            if fault is not None:
                faulted = await self._request_fault(exchange, fault)
                if faulted is not None:
                    return faulted
            self._authenticate(exchange, placement)
            if endpoint == "variations" and not self._legacy:
                raise _variations_retired()
            self._admit()
            if self._latency:
                await anyio.sleep(self._latency)
            async with contextlib.AsyncExitStack() as stack:
                return await self._make_images(exchange, endpoint, stack, placement)
        except Rejection as rejection:
            return self._error(exchange, rejection)
        except ConnectionError:
            # The client hung up while a fault or a stream was being written: nobody is
            # left to answer, and it is no error of the server's.
            return web.Response()
        except Exception:
            # A bug, not bad input: say so in the API's shape, and keep the traceback.
            _logger.exception("the local Images server failed on %s", request.path)
            return self._error(
                exchange,
                Rejection(
                    "The server had an error while processing your request. Sorry about that!",
                    status=500,
                    type="server_error",
                ),
            )

    async def _request_fault(self, exchange: _Exchange, fault: Fault) -> web.StreamResponse | None:
        request = exchange.request
        if fault.kind == "delay_headers":
            await anyio.sleep(fault.delay)
            return None
        if fault.kind == "reset":
            self._keep(exchange)
            _cut(request)
            return web.Response()  # never sent: the connection is already closed
        headers = {**self._headers(exchange), **fault.response_headers()}
        if fault.kind == "non_json":
            page = _PROXY_PAGE.format(status=f"{fault.status} {HTTPStatus(fault.status).phrase}")
            response = web.Response(
                status=fault.status, text=page, content_type="text/html", headers=headers
            )
        else:
            response = web.Response(
                status=fault.status,
                body=dumps(fault_error(fault)),
                content_type=_JSON,
                headers=headers,
            )
        exchange.status = response.status
        return response

    def _authenticate(self, exchange: _Exchange, placement: Placement | None) -> None:
        if self._azure is not None and placement is not None:
            credential = self._azure.authenticate(
                exchange.request.headers, api_keys=self._api_keys, placement=placement
            )
            exchange.api_key = redact_key(credential)
            return
        scheme, _, key = exchange.request.headers.get("Authorization", "").partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            raise Rejection(
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                status=401,
            )
        exchange.api_key = redact_key(key)
        if self._api_keys is not None and key not in self._api_keys:
            raise Rejection(
                f"Incorrect API key provided: {redact_key(key)}. You can find your API key at "
                "https://platform.openai.com/account/api-keys.",
                status=401,
                code="invalid_api_key",
            )

    def _admit(self, admission: Admission | None = None) -> None:
        admission = admission or self._limiter.admit()
        if admission.allowed:
            return
        wait = admission.retry_after
        kind = admission.limit or "requests"
        unit = {"requests": "RPM", "images": "IPM"}.get(kind, "TPM")
        limit = self._limiter.capacity(kind)
        raise Rejection(
            f"Rate limit reached for images in organization org-local on {kind} per min "
            f"({unit}): Limit {int(limit)}. Please try again in {format_duration(wait)}.",
            status=429,
            type=kind,
            code="rate_limit_exceeded",
            headers={
                "retry-after": str(max(1, math.ceil(wait))),
                "retry-after-ms": str(max(1, math.ceil(wait * 1000))),
            },
        )

    async def _make_images(
        self,
        exchange: _Exchange,
        endpoint: str,
        stack: contextlib.AsyncExitStack,
        placement: Placement | None = None,
    ) -> web.StreamResponse:
        request = exchange.request
        # Azure's deployment decides the model: the fields as sent are recorded, as placed read.
        place = placement.apply if placement is not None else dict
        if endpoint == "generations" or (
            endpoint == "edits" and request.content_type != "multipart/form-data"
        ):
            data = await read_json(request, max_bytes=self._max_body_bytes)
            exchange.fields = data
            plan = await self._plan_json(endpoint, place(data), stack)
        else:
            if request.content_type != "multipart/form-data":
                raise Rejection(
                    f"Invalid Content-Type header ({request.content_type}): image {endpoint} "
                    "take multipart/form-data.",
                    code="invalid_content_type",
                )
            cls = EditRequest if endpoint == "edits" else VariationRequest
            workdir = await stack.enter_async_context(request_workdir(self._tmp_dir))
            arrival = await read_multipart(
                request, cls=cls, workdir=workdir, max_bytes=self._max_body_bytes
            )
            exchange.fields = arrival.fields
            exchange.files = [
                (upload.part, upload.filename, upload.content_type, upload.size)
                for upload in arrival.uploads
            ]
            plan = await self._plan_upload(cls, place(arrival.fields), arrival.uploads)
        self._admit(self._limiter.admit_images(plan.job.n))
        prompt = exchange.fields.get("prompt")
        fault = self._faults.take(endpoint=endpoint, stage="prompt", prompt=prompt)
        if fault is not None:
            return self._json(exchange, fault_error(fault), status=fault.status)
        if plan.stream:
            return await self._stream(exchange, plan)
        images = await _render(plan)
        if plan.usage is not None:
            self._limiter.charge_tokens(plan.usage.total_tokens)
        urls = None
        if plan.response_format == "url":
            origin = request.url.origin()
            urls = [f"{origin}/v1/_files/{self._files.put(image)}" for image in images]
        answer = images_response(plan, images, created=int(time.time()), urls=urls)
        return await self._send_body(exchange, endpoint, dumps(wire_body(answer)))

    async def _plan_json(
        self, endpoint: str, data: dict[str, Any], stack: contextlib.AsyncExitStack
    ) -> Plan:
        """The plan of a JSON request: a generation, or an edit by reference."""
        if endpoint == "generations":
            parsed = structure_request(GenerateRequest, data)
            self._check_rules(parsed)
            return make_plan(parsed)
        check_reference_shapes(data)
        edit = structure_request(EditRequest, data)
        if edit.images is None:
            raise Rejection(
                "Missing required parameter: 'images'.",
                param="images",
                code="missing_required_parameter",
            )
        self._check_rules(edit)
        workdir = await stack.enter_async_context(request_workdir(self._tmp_dir))
        return await self._plan_json_edit(edit, workdir)

    async def _plan_upload(
        self,
        cls: type[EditRequest] | type[VariationRequest],
        fields: dict[str, Any],
        uploads: Sequence[Upload],
    ) -> Plan:
        images = [upload for upload in uploads if upload.field == "image"]
        masks = [upload for upload in uploads if upload.field == "mask"]
        markups = [upload for upload in uploads if upload.field == "markup"]
        for extra in (masks, markups):
            if len(extra) > 1:
                param = extra[0].field
                raise Rejection(
                    f"Only one {param} may be given.", param=param, code="invalid_value"
                )
        if cls is VariationRequest and len(images) > 1:
            raise Rejection(
                "A variation takes exactly one image.", param="image", code="invalid_value"
            )
        listed = len(images) > 1 or any(upload.part.endswith("[]") for upload in images)
        data = dict(fields)
        if images:
            data["image"] = [image.path for image in images] if listed else images[0].path
        if masks:
            data["mask"] = masks[0].path
        if markups:
            data["markup"] = markups[0].path
        parsed = structure_request(cls, data)
        self._check_rules(parsed)
        params = [f"image[{index}]" if listed else "image" for index in range(len(images))]
        return await self._plan_with_inputs(
            parsed,
            parsed,
            images,
            params,
            masks[0] if masks else None,
            markups[0] if markups else None,
        )

    async def _plan_json_edit(self, edit: EditRequest, workdir: Path) -> Plan:
        refs = edit.images or ()
        params = [f"images[{index}]" for index in range(len(refs))]
        images = [
            await spool_reference(
                ref, param=param, field="image", path=workdir / param, files=self._stored.path_of
            )
            for ref, param in zip(refs, params, strict=True)
        ]
        mask = None
        if isinstance(edit.mask, ImageRef):
            mask = await spool_reference(
                edit.mask,
                param="mask",
                field="mask",
                path=workdir / "mask",
                files=self._stored.path_of,
            )
        # check_images names listed uploads image[i]; the same rules, as uploads, then renamed.
        as_uploads = attrs.evolve(edit, images=None, mask=None, image=[i.path for i in images])
        return await self._plan_with_inputs(edit, as_uploads, images, params, mask)

    async def _plan_with_inputs(
        self,
        parsed: ImageRequest,
        probe: ImageRequest,
        images: Sequence[Upload],
        params: Sequence[str],
        mask: Upload | None,
        markup: Upload | None = None,
    ) -> Plan:
        for upload, param in zip(images, params, strict=True):
            check_declared_type(upload, param=param)
        if mask is not None:
            check_declared_type(mask, param="mask")
        if markup is not None:
            check_declared_type(markup, param="markup")
        infos = [
            await _inspect(upload, param) for upload, param in zip(images, params, strict=True)
        ]
        mask_info = await _inspect(mask, "mask") if mask is not None else None
        markup_info = await _inspect(markup, "markup") if markup is not None else None
        _check_pixels([info for info in (*infos, mask_info, markup_info) if info is not None])
        violations = check_images(probe, infos, mask_info, markup=markup_info)
        if violations:
            first = violations[0]
            param = first.param
            if param.startswith("image[") and params and params[0].startswith("images["):
                param = "images" + param.removeprefix("image")
            raise Rejection(first.message, param=param, code=first.code)
        inputs = [
            InputImage(
                path=upload.path,
                width=info.width or 0,
                height=info.height or 0,
                digest=upload.digest,
            )
            for upload, info in zip(images, infos, strict=True)
        ]
        return make_plan(
            parsed,
            inputs=inputs,
            mask=mask.path if mask is not None else None,
            markup=markup.path if markup is not None else None,
        )

    def _check_rules(self, request: ImageRequest) -> None:
        """Refuse unknown and (unless legacy) retired models, then the table's first broken rule."""
        model = request.model
        if model is not None:
            rules = MODELS.get(model)
            served = [
                name for name, known in MODELS.items() if self._legacy or known.retired is None
            ]
            if rules is not None and rules.retired is not None and not self._legacy:
                note = legacy_model_note(model)
                raise Rejection(
                    f"The model '{model}' is no longer available: {note}.",
                    status=404,
                    param="model",
                    code="model_not_found",
                )
            if rules is None:
                supported = ", ".join(f"'{name}'" for name in served)
                raise Rejection(
                    f"Invalid value: '{model}'. Supported values are: {supported}.",
                    param="model",
                    code="invalid_value",
                )
        violations = check(request)
        if violations:
            first = violations[0]
            raise Rejection(first.message, param=first.param, code=first.code)

    # -- answering ---------------------------------------------------------------------------

    async def _send_body(
        self, exchange: _Exchange, endpoint: str, body: bytes
    ) -> web.StreamResponse:
        fault = self._faults.take(endpoint=endpoint, stage="body")
        if fault is None:
            return self._finish(exchange, web.Response(body=body, content_type=_JSON))
        if fault.kind == "truncated_json":
            # The Content-Length is the short body's own, so only the JSON is broken.
            cut = web.Response(body=body[: len(body) // 2], content_type=_JSON)
            return self._finish(exchange, cut)
        response = web.StreamResponse(headers={**self._headers(exchange), **fault.headers})
        response.content_type = _JSON
        response.content_length = len(body)
        exchange.status = response.status
        self._keep(exchange)
        await response.prepare(exchange.request)
        half = len(body) // 2
        await response.write(body[:half])
        if fault.kind == "reset_mid_body":
            _cut(exchange.request)
            return response
        await anyio.sleep(fault.delay)
        await response.write(body[half:])
        await response.write_eof()
        return response

    async def _stream(self, exchange: _Exchange, plan: Plan) -> web.StreamResponse:
        partials: list[bytes] = []
        if plan.partial_images:
            partials = await _render(plan, partials=True)
        final = (await _render(plan))[0]
        if plan.usage is not None:
            self._limiter.charge_tokens(plan.usage.total_tokens)
        events = stream_events(plan, partials, final, created=int(time.time()))
        fault = self._faults.take(endpoint=plan.endpoint, stage="stream")
        response = web.StreamResponse(
            headers={**self._headers(exchange), "Cache-Control": "no-cache"}
        )
        response.content_type = "text/event-stream"
        response.charset = "utf-8"
        exchange.status = response.status
        self._keep(exchange)
        await response.prepare(exchange.request)
        stop = len(events) if fault is None else min(fault.after_events, len(partials))
        for event in events[:stop]:
            await response.write(_sse(event.type, wire_body(event)))
        if fault is not None and fault.kind == "stream_error":
            await response.write(_sse("error", fault_error(fault)))
        await response.write_eof()
        return response

    def _keep(self, exchange: _Exchange) -> None:
        """Record the exchange once; streamed answers do it before the client can see the end."""
        if not exchange.recorded:
            exchange.recorded = True
            self._recorded.append(exchange.record())

    def _headers(self, exchange: _Exchange) -> dict[str, str]:
        elapsed = round((time.monotonic() - exchange.started) * 1000)
        headers = {
            "x-request-id": exchange.request_id,
            "openai-processing-ms": str(elapsed),
            "openai-version": "2020-10-01",
            **self._limiter.headers(),
        }
        return self._azure.headers(headers) if self._azure is not None else headers

    def _finish(self, exchange: _Exchange, response: _R) -> _R:
        response.headers.update(self._headers(exchange))
        exchange.status = response.status
        return response

    def _json(self, exchange: _Exchange, data: Any, status: int = 200) -> web.Response:
        return self._finish(
            exchange, web.Response(status=status, body=dumps(data), content_type=_JSON)
        )

    def _error(self, exchange: _Exchange, rejection: Rejection) -> web.Response:
        body = self._azure.error_body(rejection) if self._azure is not None else rejection.body()
        response = self._json(exchange, body, status=rejection.status)
        response.headers.update(rejection.headers)
        return response


def _stored_file(files: FileStore, request: web.Request) -> StoredFile:
    stored = files.get(request.match_info["id"])
    if stored is None:
        raise Rejection(f"No such File object: {request.match_info['id']}", status=404)
    return stored


def _check_pixels(infos: Sequence[ImageInfo]) -> None:
    """Refuse a request whose inputs would decode to more than ``MAX_REQUEST_PIXELS``."""
    total = sum((info.width or 0) * (info.height or 0) for info in infos)
    if total > MAX_REQUEST_PIXELS:
        raise Rejection(
            f"The input images hold {total:,} pixels together; this server decodes at most "
            f"{MAX_REQUEST_PIXELS:,} per request.",
            param="image",
            code="invalid_value",
        )


async def _inspect(upload: Upload, param: str) -> ImageInfo:
    try:
        content_type, width, height, has_alpha = await anyio.to_thread.run_sync(
            inspect_image, upload.path
        )
    except ImageDecodeError as error:
        raise Rejection(
            f"Invalid image file '{upload.filename}': {error}",
            param=param,
            code="invalid_image_file",
        ) from error
    return ImageInfo(
        filename=upload.filename,
        content_type=content_type,
        size=upload.size,
        width=width,
        height=height,
        has_alpha=has_alpha,
    )


async def _render(plan: Plan, *, partials: bool = False) -> list[bytes]:
    """Make the plan's images (or its stream's partial images) off the event loop."""
    try:
        if partials:
            make = functools.partial(render_partials, plan.job, index=0, count=plan.partial_images)
            return await anyio.to_thread.run_sync(make)
        return await anyio.to_thread.run_sync(render, plan.job)
    except ImageDecodeError as error:
        # inspect_image passed it, but its pixels do not decode (a truncated file).
        raise Rejection(
            f"Invalid image file: {error}", param="image", code="invalid_image_file"
        ) from error


def _variations_retired() -> Rejection:
    return Rejection(
        "Image variations (POST /v1/images/variations) are no longer available: edit the "
        "image with a GPT image model instead (POST /v1/images/edits, e.g. model "
        "'gpt-image-1.5').",
        status=404,
        code="endpoint_retired",
    )


def _cut(request: web.Request) -> None:
    """Close the connection under the request (what a reset looks like to the client)."""
    if request.transport is not None:
        request.transport.close()


def _invalid_url(request: web.Request) -> Rejection:
    return Rejection(f"Invalid URL ({request.method} {request.path})", status=404)


def _sse(event: str, data: Any) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + dumps(data) + b"\n\n"


async def serve_forever(
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    api_keys: Collection[str] | None = None,
    latency: float = 0.0,
    requests_per_minute: int | None = None,
    tokens_per_minute: int | None = None,
    control_route: bool = True,
    url_ttl: float = 3600.0,
    access_log: bool = True,
    legacy: bool = False,
    azure: bool | AzureMode = False,
    on_ready: Callable[[LocalImagesServer], object] | None = None,
) -> None:
    """Run a server until cancelled (the command line's ``openai-images serve``).

    Nothing is recorded (a long-running server would grow without end); the control route
    is on, so faults can be scripted over HTTP.

    Args:
        legacy: Also serve the retired models and the variations endpoint.
        azure: Answer like an Azure OpenAI resource (see ``LocalImagesServer``).
        on_ready: Called with the running server once it listens, e.g. to print its
            ``base_url``.

    Example:
        ```python
        anyio.run(functools.partial(serve_forever, port=8000, on_ready=print))
        ```
    """
    server = LocalImagesServer(
        host=host,
        port=port,
        api_keys=api_keys,
        latency=latency,
        requests_per_minute=requests_per_minute,
        tokens_per_minute=tokens_per_minute,
        control_route=control_route,
        url_ttl=url_ttl,
        access_log=access_log,
        max_recorded=0,
        legacy=legacy,
        azure=azure,
    )
    async with server:
        if on_ready is not None:
            on_ready(server)
        await anyio.sleep_forever()
