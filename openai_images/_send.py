"""The road of one request, below the clients: the ``Sender``.

Read top to bottom, a call goes::

    request (GenerateRequest, EditRequest, VariationRequest)
      -> headers: Auth (who we are) + default, custom and per-call headers
      -> files resolved (sniffed, not read), then the rules checked ONCE, files included
      -> body: JSON, or multipart streamed from the inputs
      -> Route (where it goes) -> transport, with retries and the observer's pacing
      -> typed response (ImagesResponse), or a stream of typed events

``call`` and ``open`` take the same road from "headers" down for any other API path
(files, batches): auth, route, retries and status errors, with the 2xx exchange returned.
The clients above build requests and hand them here; the batch engine takes a ``Sender``
too, so nothing below the clients imports them. Nothing here knows aiohttp: the transport
does.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import time
import warnings
from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any, Literal, Protocol, TypeVar, overload

import anyio
import attrs
import orjson
from yarl import URL

from . import _jsonsplit
from ._config import Settings, Timeout
from ._converter import request_fields, structure_response
from ._errors import (
    APIConnectionError,
    APIError,
    APIResponseValidationError,
    APIStatusError,
    ClientClosedError,
    MissingAPIKeyError,
    OpenAIImagesError,
    RequestValidationError,
    ResponseTooLargeError,
    Violation,
    error_from_response,
    request_id_of,
)
from ._inputs import ImageSource, resolve_image, resolve_images
from ._multipart import build_multipart
from ._requests import EditRequest, GenerateRequest, ImageRef, ImageRequest, VariationRequest
from ._responses import ImagesResponse
from ._retry import RetryPolicy, retry_delay, should_retry
from ._rules import check, check_images, legacy_model_note
from ._streaming import AsyncImageStream
from ._transport import Body, Exchange, StreamingExchange, Transport

__all__ = [
    "NO_OPTIONS",
    "AttemptObserver",
    "Auth",
    "BaseURLRoute",
    "BearerAuth",
    "Deployment",
    "RequestOptions",
    "Route",
    "Sender",
    "capture_exchange",
    "configure_logging",
    "parse_images_response",
]

logger = logging.getLogger("openai_images")

_R = TypeVar("_R", bound=ImageRequest)


@attrs.frozen(kw_only=True)
class RequestOptions:
    """Per-call settings that override the client's for one request."""

    timeout: float | Timeout | None = None
    max_retries: int | None = None
    extra_headers: Mapping[str, str] | None = None
    extra_query: Mapping[str, str] | None = None
    extra_body: Mapping[str, Any] | None = None


NO_OPTIONS = RequestOptions()


class Auth(Protocol):
    """How a request is authenticated (OpenAI's bearer key, Azure's ``api-key``...)."""

    async def headers(self) -> Mapping[str, str]:
        """The headers that authenticate one attempt: called before each attempt (so a
        token provider may refresh), and once before a request is prepared (so a missing
        key fails before any work). Raise ``MissingAPIKeyError`` if there is nothing to
        send. Return the same mapping while nothing changes: the sender then reuses its
        merge of the headers."""
        ...


class Route(Protocol):
    """Where a request goes."""

    def url(self, path: str, *, model: str | None = None) -> tuple[str, Mapping[str, str]]:
        """The absolute URL of an API-relative ``path`` (``"images/generations"``,
        ``"files"``, ``"batches/b_1/cancel"``) and the query parameters to add (Azure's
        ``api-version``...). ``model`` is the request's model, for routes that pick a
        deployment by it."""
        ...


class Deployment(Protocol):
    """What a service that serves models as named deployments (Azure) changes in an image
    request: the request as sent, and the model its rules are checked by."""

    def sent(self, request: _R) -> _R:
        """The request as it goes out (Azure's v1 route names the deployment in ``model``)."""
        ...

    def checked(self, request: _R) -> _R:
        """The request as the model rules see it: its ``model`` is the model that will
        run it (a deployment name that is no model name leaves the model rules out)."""
        ...


class AttemptObserver(Protocol):
    """Hooks around every attempt of one request (the batch engine's shared limiter).

    The contract:

    - ``before_attempt()`` runs before each attempt goes out. It may wait (pacing), or
      raise to give the request up: the exception reaches the caller as is.
    - ``after_attempt(status=..., headers=..., error=...)`` runs after each attempt with its
      status (``None`` for a connection error or a timeout), its response headers (``None``
      without a response) and the error the attempt ends with (``None`` on a 2xx).
    - When ``after_attempt`` returns ``True`` on a failure, the observer takes charge of it
      (a 429 it absorbs by re-pacing the batch): the attempt is tried again, after the next
      ``before_attempt``, WITHOUT spending one of the request's ``max_retries``. This is
      honoured only when the body can be sent again; otherwise the failure is raised.
      Returning ``False`` leaves the failure to the usual retry rules.
    """

    async def before_attempt(self) -> None:
        """Wait, if needed, before an attempt goes out; raise to give the request up."""
        ...

    def after_attempt(
        self,
        *,
        status: int | None,
        headers: Mapping[str, str] | None,
        error: APIError | None,
    ) -> bool:
        """Learn from an attempt; ``True`` takes charge of its failure (retried for free)."""
        ...


def _is_loopback(host: str | None) -> bool:
    if host is None or host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class BearerAuth:
    """OpenAI's authentication: ``Authorization: Bearer``, ``OpenAI-Organization`` and
    ``OpenAI-Project``. The headers are made once, at the first request.

    Args:
        settings: The client's resolved settings (key, organization, project, base URL).
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._headers: dict[str, str] | None = None

    def __repr__(self) -> str:
        return "BearerAuth()"

    async def headers(self) -> Mapping[str, str]:
        """The authentication headers; warns once when the key would go over plain http."""
        if self._headers is None:
            settings = self._settings
            if not settings.api_key:
                raise MissingAPIKeyError
            url = URL(settings.base_url)
            if url.scheme == "http" and not _is_loopback(url.host):
                warnings.warn(
                    f"Sending the API key over plain http:// to {url.host}; use https://",
                    stacklevel=2,
                )
            headers = {"Authorization": f"Bearer {settings.api_key}"}
            if settings.organization:
                headers["OpenAI-Organization"] = settings.organization
            if settings.project:
                headers["OpenAI-Project"] = settings.project
            self._headers = headers
        return self._headers


class BaseURLRoute:
    """OpenAI's routing: ``base_url`` joined with the path, no query parameters.

    Example:
        >>> BaseURLRoute("http://127.0.0.1:8000/v1").url("images/edits")
        ('http://127.0.0.1:8000/v1/images/edits', {})
    """

    def __init__(self, base_url: str) -> None:
        self._base = base_url.rstrip("/")
        self._no_params: Mapping[str, str] = {}

    def url(self, path: str, *, model: str | None = None) -> tuple[str, Mapping[str, str]]:
        """The absolute URL of ``path``; the model does not change it."""
        return f"{self._base}/{path}", self._no_params


class _Lifetime:
    """What copies of one client share: whether it is closed, and the wake-up call of
    calls sleeping before a retry.

    Closing does not wrap each call in a cancel scope (one costs about as much as the rest
    of the road above the transport): calls in flight fail as the transport closes their
    connections, calls asleep are woken, and both see ``closed`` and raise
    ``ClientClosedError``.
    """

    def __init__(self) -> None:
        self.closed = False
        self._closing: anyio.Event | None = None

    async def pause(self, seconds: float) -> None:
        """Sleep ``seconds``, or less if the client closes meanwhile."""
        if self._closing is None:
            self._closing = anyio.Event()
        with anyio.move_on_after(seconds):
            await self._closing.wait()

    def close(self) -> None:
        self.closed = True
        if self._closing is not None:
            self._closing.set()


# Set by ``capture_exchange`` around a call that wants its raw HTTP answer as well.
_CAPTURED: ContextVar[list[Exchange] | None] = ContextVar("openai_images_captured", default=None)


def capture_exchange() -> tuple[list[Exchange], Any]:
    """Start recording the 2xx exchanges of calls in this context; reset with the token.

    Returns the list they go to and the ``ContextVar`` token to pass to ``reset_capture``.
    """
    found: list[Exchange] = []
    return found, _CAPTURED.set(found)


def reset_capture(token: Any) -> None:
    """Stop recording (the token ``capture_exchange`` returned)."""
    _CAPTURED.reset(token)


_DEFAULT_POLICY = RetryPolicy()


class Sender:
    """The road of every request: headers, rules, body, route, transport with retries.

    Args:
        settings: Resolved client settings (timeout, retries, default headers...).
        transport: The connection pool (shared by copies made with ``evolve``).
        auth: Makes the authentication headers before each attempt.
        route: Turns an API path into a URL and query parameters.
        validate: Check image requests against the contract's rules before sending.
        policy: Backoff limits of the retries.
        deployment: How a service of named deployments (Azure) changes image requests.
    """

    def __init__(
        self,
        *,
        settings: Settings,
        transport: Transport,
        auth: Auth,
        route: Route,
        validate: bool = True,
        policy: RetryPolicy = _DEFAULT_POLICY,
        deployment: Deployment | None = None,
    ) -> None:
        self.settings = settings
        self.transport = transport
        self.auth = auth
        self.route = route
        self.validate = validate
        self.policy = policy
        self.deployment = deployment
        self._life = _Lifetime()
        # Made once: every request of this sender starts from these.
        self._base_headers: Mapping[str, str] = {
            "Accept": "application/json",
            **settings.default_headers,
        }
        self._merged: tuple[Mapping[str, str], Mapping[str, str], dict[str, str]] | None = None

    def evolve(
        self,
        *,
        settings: Settings | None = None,
        auth: Auth | None = None,
        route: Route | None = None,
        validate: bool | None = None,
    ) -> Sender:
        """A copy with some parts changed that shares this one's connections and lifetime
        (closing either closes both)."""
        copy = Sender(
            settings=settings or self.settings,
            transport=self.transport,
            auth=auth or self.auth,
            route=route or self.route,
            validate=self.validate if validate is None else validate,
            policy=self.policy,
            deployment=self.deployment,
        )
        copy._life = self._life
        return copy

    @property
    def closed(self) -> bool:
        """Whether ``aclose`` was called (on this sender or a copy)."""
        return self._life.closed

    # -- images --------------------------------------------------------------------------

    async def send(
        self,
        request: ImageRequest,
        options: RequestOptions = NO_OPTIONS,
        *,
        observer: AttemptObserver | None = None,
    ) -> ImagesResponse:
        """Send an image request and return its parsed response.

        ``observer`` hooks every attempt (see ``AttemptObserver``).
        """
        url, params, headers, body, replayable = await self._prepare(request, options)
        try:
            exchange = await self._attempts(
                "POST",
                url,
                headers=headers,
                params=params,
                body=body,
                options=options,
                replayable=replayable,
                observer=observer,
            )
        except APIStatusError as error:
            _note_retirement(error, request.model)
            raise
        return parse_images_response(exchange)

    async def open_stream(
        self, request: GenerateRequest | EditRequest, options: RequestOptions = NO_OPTIONS
    ) -> AsyncImageStream[Any]:
        """Send a streamed request (``stream=True`` is set) and return its event stream once
        the response has begun."""
        if not request.stream:
            request = attrs.evolve(request, stream=True)
        url, params, headers, body, replayable = await self._prepare(request, options)
        try:
            exchange = await self._attempts(
                "POST",
                url,
                headers={**headers, "Accept": "text/event-stream"},
                params=params,
                body=body,
                options=options,
                replayable=replayable,
                stream=True,
            )
        except APIStatusError as error:
            _note_retirement(error, request.model)
            raise
        return AsyncImageStream(exchange)

    async def download(self, url: str, *, timeout: float | Timeout | None = None) -> bytes:
        """GET a signed result URL; redirects are followed and no ``Authorization`` is sent
        (the URL carries its own signature, and its host is not the API's)."""
        exchange = await self._attempts(
            "GET",
            url,
            headers={},
            params=None,
            body=None,
            options=RequestOptions(timeout=timeout),
            replayable=True,
            allow_redirects=True,
            authenticate=False,
        )
        return exchange.body

    # -- any other API path --------------------------------------------------------------

    async def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        body: Body | None = None,
        params: Mapping[str, str] | None = None,
        options: RequestOptions = NO_OPTIONS,
        replayable: bool = True,
        model: str | None = None,
    ) -> Exchange:
        """Any API call (files, batches): auth, route, retries and status errors; the 2xx
        exchange, its body read whole.

        Args:
            method: ``"GET"``, ``"POST"``, ``"DELETE"``...
            path: API-relative, e.g. ``"batches/b_1/cancel"``.
            json: A body to send as JSON (or give ``body``).
            body: A ready body (multipart, say).
            params: Query parameters, added to the route's and the options' own.
            options: Per-call timeout, retries and extras.
            replayable: Whether ``body`` may be sent again; ``False`` disables retries.
            model: Passed to the route (Azure's deployments route picks by it).
        """
        url, headers, query, payload = await self._plain(
            path, json=json, body=body, params=params, options=options, model=model
        )
        return await self._attempts(
            method,
            url,
            headers=headers,
            params=query,
            body=payload,
            options=options,
            replayable=replayable,
        )

    async def open(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        body: Body | None = None,
        params: Mapping[str, str] | None = None,
        options: RequestOptions = NO_OPTIONS,
        replayable: bool = True,
        model: str | None = None,
    ) -> StreamingExchange:
        """Like ``call``, but the 2xx body is read as it arrives (close the exchange)."""
        url, headers, query, payload = await self._plain(
            path, json=json, body=body, params=params, options=options, model=model
        )
        return await self._attempts(
            method,
            url,
            headers=headers,
            params=query,
            body=payload,
            options=options,
            replayable=replayable,
            stream=True,
        )

    async def aclose(self) -> None:
        """Cancel the calls in flight (they raise ``ClientClosedError``), then close every
        connection. Safe to call twice."""
        self._life.close()
        await self.transport.aclose()

    # -- the road ------------------------------------------------------------------------

    def _headers(self, options: RequestOptions) -> Mapping[str, str]:
        """The request's own headers (defaults, then per-call); auth joins per attempt."""
        if options.extra_headers:
            return {**self._base_headers, **options.extra_headers}
        return self._base_headers

    async def _with_auth(self, headers: Mapping[str, str]) -> Mapping[str, str]:
        """``headers`` with this attempt's authentication: ``Auth.headers()`` runs before
        each attempt (a token provider may refresh), and the merge is kept while the auth
        headers and the request's stay the same objects."""
        auth = await self.auth.headers()
        cached = self._merged
        if cached is not None and cached[0] is auth and cached[1] is headers:
            return cached[2]
        merged = {**headers, **auth}
        self._merged = (auth, headers, merged)
        return merged

    def _params(
        self, route_params: Mapping[str, str], options: RequestOptions
    ) -> Mapping[str, str] | None:
        extra = options.extra_query
        if not route_params:
            return extra
        return {**route_params, **extra} if extra else route_params

    async def _prepare(
        self, request: ImageRequest, options: RequestOptions
    ) -> tuple[str, Mapping[str, str] | None, Mapping[str, str], Body, bool]:
        """Headers, files, rules (once), body and URL of an image request; no network I/O."""
        deployment = self.deployment
        if deployment is not None:
            request = deployment.sent(request)
        headers = self._headers(options)
        # The key is looked at (and a plain-http warning given) before anything else.
        await self.auth.headers()
        url, route_params = self.route.url(f"images/{request.endpoint}", model=request.model)
        params = self._params(route_params, options)
        fields = request_fields(request)
        if options.extra_body:
            fields.update(options.extra_body)
        if isinstance(request, GenerateRequest) or (
            isinstance(request, EditRequest) and request.is_json
        ):
            if self.validate:
                _refuse(check(request if deployment is None else deployment.checked(request)))
            try:
                data = orjson.dumps(fields)
            except TypeError as exc:
                raise _unencodable(fields) from exc
            return url, params, headers, Body(content_type="application/json", data=data), True

        files = await self._resolve_files(request)
        if self.validate:
            images = [source.info for name, source in files if name.startswith("image")]
            named = {name: source.info for name, source in files if name in ("mask", "markup")}
            checked = request if deployment is None else deployment.checked(request)
            found = check_images(checked, images, named.get("mask"), markup=named.get("markup"))
            _refuse(check(checked) + found)
        try:
            multipart = build_multipart(fields=fields, files=files)
        except UnicodeEncodeError as exc:
            raise _unencodable(fields) from exc
        body = Body(
            content_type=multipart.content_type,
            stream=multipart.stream,
            length=multipart.content_length,
        )
        return url, params, headers, body, multipart.replayable

    def _checked(self, request: _R) -> _R:
        """The request as the rules see it (the deployment's model, on Azure)."""
        deployment = self.deployment
        return request if deployment is None else deployment.checked(request)

    async def _resolve_files(
        self, request: EditRequest | VariationRequest
    ) -> list[tuple[str, ImageSource]]:
        """Sniff every upload (headers only: the bytes stream later). A refused file is
        reported together with the request's own broken rules, if any."""
        try:
            if isinstance(request, VariationRequest):
                return [("image", await resolve_image(request.image, param="image"))]
            listed = isinstance(request.image, list)
            sources = await resolve_images(request.image_inputs, param="image", listed=listed)
            files = [("image[]" if listed else "image", source) for source in sources]
            for name in ("mask", "markup"):
                value = getattr(request, name)
                if value is not None and not isinstance(value, ImageRef):
                    files.append((name, await resolve_image(value, param=name)))
        except RequestValidationError as refused:
            if self.validate:
                _refuse([*check(self._checked(request)), *refused.violations])
            raise
        return files

    async def _plain(
        self,
        path: str,
        *,
        json: Any,
        body: Body | None,
        params: Mapping[str, str] | None,
        options: RequestOptions,
        model: str | None,
    ) -> tuple[str, Mapping[str, str], Mapping[str, str] | None, Body | None]:
        headers = self._headers(options)
        await self.auth.headers()
        url, route_params = self.route.url(path, model=model)
        query = self._params(route_params, options)
        if params:
            query = {**(query or {}), **params}
        if json is not None:
            if body is not None:
                raise ValueError("give json or body, not both")
            body = Body(content_type="application/json", data=orjson.dumps(json))
        return url, headers, query, body

    @overload
    async def _attempts(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        params: Mapping[str, str] | None,
        body: Body | None,
        options: RequestOptions,
        replayable: bool,
        stream: Literal[True],
        observer: AttemptObserver | None = None,
        allow_redirects: bool = False,
        authenticate: bool = True,
    ) -> StreamingExchange: ...

    @overload
    async def _attempts(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        params: Mapping[str, str] | None,
        body: Body | None,
        options: RequestOptions,
        replayable: bool,
        stream: Literal[False] = False,
        observer: AttemptObserver | None = None,
        allow_redirects: bool = False,
        authenticate: bool = True,
    ) -> Exchange: ...

    async def _attempts(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        params: Mapping[str, str] | None,
        body: Body | None,
        options: RequestOptions,
        replayable: bool,
        stream: bool = False,
        observer: AttemptObserver | None = None,
        allow_redirects: bool = False,
        authenticate: bool = True,
    ) -> Exchange | StreamingExchange:
        """Every attempt of one request; a close meanwhile makes it ``ClientClosedError``."""
        life = self._life
        if life.closed:
            raise ClientClosedError("this client is closed; make a new one")
        if not replayable:
            max_retries = 0
        elif options.max_retries is not None:
            max_retries = options.max_retries
        else:
            max_retries = self.settings.max_retries
        timeout = (
            self.settings.timeout
            if options.timeout is None
            else Timeout.coerce(options.timeout, default=self.settings.timeout)
        )
        try:
            return await self._retrying(
                method,
                url,
                headers=headers,
                params=params,
                body=body,
                timeout=timeout,
                max_retries=max_retries,
                replayable=replayable,
                stream=stream,
                observer=observer,
                allow_redirects=allow_redirects,
                authenticate=authenticate,
            )
        except (OpenAIImagesError, RuntimeError):
            # Whatever the closing did to this call (a connection dropped, the pool gone
            # before the next attempt), the close is the reason.
            if life.closed:
                raise ClientClosedError from None
            raise

    async def _retrying(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        params: Mapping[str, str] | None,
        body: Body | None,
        timeout: Timeout,
        max_retries: int,
        replayable: bool,
        stream: bool,
        observer: AttemptObserver | None,
        allow_redirects: bool,
        authenticate: bool,
    ) -> Exchange | StreamingExchange:
        transport = self.transport
        retries = 0
        started = time.perf_counter()
        while True:
            if observer is not None:
                await observer.before_attempt()
            status: int | None = None
            answer_headers: Mapping[str, str] | None = None
            sent_headers = await self._with_auth(headers) if authenticate else headers
            try:
                if stream:
                    opened = await transport.open_stream(
                        method,
                        url,
                        headers=sent_headers,
                        params=params,
                        body=body,
                        timeout=timeout,
                    )
                    status, answer_headers = opened.status, opened.headers
                    if 200 <= status < 300:
                        if observer is not None:
                            observer.after_attempt(
                                status=status, headers=opened.headers, error=None
                            )
                        _log(method, url, status, answer_headers, retries, started)
                        return opened
                    async with opened:
                        content = await opened.read(limit=transport.max_response_bytes)
                else:
                    answer = await transport.send(
                        method,
                        url,
                        headers=sent_headers,
                        params=params,
                        body=body,
                        timeout=timeout,
                        allow_redirects=allow_redirects,
                    )
                    status, answer_headers = answer.status, answer.headers
                    if 200 <= status < 300:
                        if observer is not None:
                            observer.after_attempt(
                                status=status, headers=answer_headers, error=None
                            )
                        captured = _CAPTURED.get()
                        if captured is not None:
                            captured.append(answer)
                        if logger.isEnabledFor(logging.INFO):
                            _log(method, url, status, answer_headers, retries, started)
                        return answer
                    content = answer.body
                refused = error_from_response(status=status, headers=answer_headers, body=content)
                error: APIError = refused
                retry = should_retry(
                    status=status,
                    headers=answer_headers,
                    error_code=refused.code,
                    error_type=refused.type,
                )
            except APIConnectionError as exc:
                # An answer over our own size limit would only come back as large.
                error, retry = exc, not isinstance(exc, ResponseTooLargeError)
            absorbed = observer is not None and observer.after_attempt(
                status=status, headers=answer_headers, error=error
            )
            if absorbed and replayable:
                logger.debug("%s %s: the observer takes charge of %s", method, _bare(url), error)
                continue
            if not retry or retries >= max_retries:
                _log(method, url, status, answer_headers, retries, started, error=error)
                raise error
            delay = retry_delay(self.policy, attempt=retries, headers=answer_headers)
            logger.info(
                "Retrying %s %s in %.2fs (retry %d of %d): %s",
                method,
                _bare(url),
                delay,
                retries + 1,
                max_retries,
                error,
            )
            await self._life.pause(delay)
            if self._life.closed:
                raise ClientClosedError
            retries += 1


def _bare(url: str) -> str:
    """A URL without its query (signed download URLs carry their signature there)."""
    return url.split("?", 1)[0]


def _log(
    method: str,
    url: str,
    status: int | None,
    headers: Mapping[str, str] | None,
    retries: int,
    started: float,
    *,
    error: APIError | None = None,
) -> None:
    """One line per request: never a header value but the request id, never a body."""
    if not logger.isEnabledFor(logging.INFO):
        return
    request_id = request_id_of(headers) if headers is not None else None
    logger.log(
        logging.WARNING if error is not None else logging.INFO,
        "HTTP %s %s -> %s (request id %s, %d retries, %.3fs)%s",
        method,
        _bare(url),
        status if status is not None else type(error).__name__,
        request_id,
        retries,
        time.perf_counter() - started,
        f": {error}" if error is not None else "",
    )


def _refuse(violations: list[Violation]) -> None:
    if violations:
        raise RequestValidationError(violations)


def parse_images_response(exchange: Exchange) -> ImagesResponse:
    """An ``ImagesResponse`` from a 2xx exchange, or ``APIResponseValidationError``."""
    request_id = request_id_of(exchange.headers)
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


_LOG_LEVELS = {"info": logging.INFO, "debug": logging.DEBUG}
_logging_configured = False


def configure_logging(environ: Mapping[str, str] = os.environ) -> None:
    """Turn on request logging when ``OPENAI_LOG`` is ``info`` or ``debug``, as the official
    SDK does (a stderr handler on the ``openai_images`` logger; once per process)."""
    global _logging_configured
    level = _LOG_LEVELS.get(environ.get("OPENAI_LOG", "").strip().lower())
    if level is None or _logging_configured:
        return
    _logging_configured = True
    handler = logging.StreamHandler()
    handler.setFormatter(
        logging.Formatter(
            "[%(asctime)s - %(name)s:%(lineno)d - %(levelname)s] %(message)s",
            datefmt="%Y-%m-%d %H:%M:%S",
        )
    )
    logger.addHandler(handler)
    logger.setLevel(level)


def _note_retirement(error: APIStatusError, model: str | None) -> None:
    """A server's refusal of a retired model says when it retired and what replaced it
    (the request still goes out: Azure deployments and compatible servers may serve it).

    Called from a plain ``try``/``except``, which costs nothing until a status error: a
    ``contextlib`` context manager around every call cost about 0.7 µs.
    """
    note = legacy_model_note(model) if model is not None else None
    about_the_model = error.status_code == 404 or error.param == "model"
    if note is not None and about_the_model and note not in error.message:
        error.message = f"{error.message} ({note})"
        error.args = (error.message,)
