"""The one module of the client that speaks aiohttp.

It owns the connection pool (one ``aiohttp.ClientSession`` per client, made on first use
inside the running loop), bounds the wait for a free connection, picks the proxy from the
environment, keeps ``Timeout.read`` and ``total`` with one watch for every exchange in
flight (``_Deadlines``; aiohttp keeps only ``connect``), streams request bodies, and maps
every aiohttp failure onto ``openai_images._errors``, so no aiohttp type reaches the caller.
It knows nothing of retries or of the Images API.

No aiohttp exception is ever chained to ours (as ``__cause__`` or ``__context__``): some
hold the request's headers, the API key among them. What aiohttp said is kept as text in
an :class:`UnderlyingError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import ipaddress
import re
import ssl
import urllib.request
import warnings
import weakref
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import anyio
import attrs
from yarl import URL

from ._config import Timeout, user_agent
from ._errors import (
    APIConnectionError,
    APITimeoutError,
    ClientClosedError,
    OpenAIImagesError,
    ResponseTooLargeError,
    request_id_of,
)

__all__ = [
    "CREDENTIAL_HEADERS",
    "MAX_REDIRECTS",
    "Body",
    "Exchange",
    "StreamingExchange",
    "Transport",
    "UnderlyingError",
    "without_credential_headers",
]

CREDENTIAL_HEADERS = frozenset(
    {"authorization", "api-key", "ocp-apim-subscription-key", "x-api-key", "cookie"}
)
"""Headers that carry a credential (OpenAI's bearer key, Azure's ``api-key`` and its API
Management key...): never sent on to another origin by a redirect."""

MAX_REDIRECTS = 11
"""Responses one call reads at most: the first and ten redirects (aiohttp's limit)."""

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_NO_CONTENT_TYPE = ("Content-Type",)


def without_credential_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """``headers`` without the ones in ``CREDENTIAL_HEADERS`` (any case).

    Example:
        >>> without_credential_headers({"API-Key": "k", "Accept": "image/png"})
        {'Accept': 'image/png'}
    """
    return {
        name: value for name, value in headers.items() if name.lower() not in CREDENTIAL_HEADERS
    }


# A body is sent as is (bytes) or produced chunk by chunk, with its length if known.
StreamFactory = Callable[[], AsyncIterator[bytes]]


@attrs.frozen(kw_only=True)
class Body:
    """What to send: bytes, or a factory of chunk iterators (called once per attempt)."""

    content_type: str
    data: bytes | None = None
    stream: StreamFactory | None = None
    length: int | None = None


@attrs.frozen(kw_only=True)
class Exchange:
    """A finished HTTP exchange whose body was read whole."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    @property
    def request_id(self) -> str | None:
        """The response's request id (see :func:`request_id_of`)."""
        return request_id_of(self.headers)


class UnderlyingError(Exception):
    """What aiohttp (or the OS) reported, as text, chained to our error in its place.

    aiohttp's own exception is not chained: some hold the request's headers (the API key
    among them) or a proxy's credentials. This keeps what helps: its class and its text,
    with secrets and URL credentials blotted out.

    Attributes:
        kind: The original exception's class, e.g. ``"aiohttp.ClientPayloadError"``.
        errno: The ``errno`` of an ``OSError``, else ``None``.
    """

    def __init__(self, text: str, *, kind: str, errno: int | None = None) -> None:
        super().__init__(f"{kind}: {text}" if text else kind)
        self.kind = kind
        self.errno = errno


# Header values never shown in an error, whatever aiohttp puts in its text.
_SECRET_HEADERS = CREDENTIAL_HEADERS | {"proxy-authorization"}
_URL_CREDENTIALS = re.compile(r"(?<=//)[^/@\s'\"]+@")


def _scrub(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return _URL_CREDENTIALS.sub("***@", text)


def _secrets(headers: Mapping[str, str]) -> list[str]:
    """The values to blot out: whole header values, and their last word (a bare token)."""
    found: list[str] = []
    for name, value in headers.items():
        if name.lower() in _SECRET_HEADERS and value:
            found += [value, value.rsplit(" ", 1)[-1]]
    return found


def _underlying(exc: BaseException, secrets: Iterable[str]) -> UnderlyingError:
    module = type(exc).__module__
    module = "aiohttp" if module.startswith("aiohttp.") else module
    kind = type(exc).__qualname__ if module == "builtins" else f"{module}.{type(exc).__qualname__}"
    errno = exc.errno if isinstance(exc, OSError) else None
    return UnderlyingError(_scrub(str(exc), secrets), kind=kind, errno=errno)


def _seconds(value: float | None) -> str:
    return "no limit" if value is None else f"{value:g} s"


class _Attempt:
    """One request, as an error message names it (which, how and through what), and as
    ``_Deadlines`` watches it (when it began, what it has received, how to cut it).

    Made for every request, so it only stores; the words are put together on failure.
    """

    __slots__ = (
        "connection",
        "deadline",
        "expired",
        "headers",
        "method",
        "progress",
        "proxy",
        "read",
        "received",
        "response",
        "response_headers",
        "timeout",
        "url",
    )

    def __init__(
        self,
        method: str,
        url: str,
        timeout: Timeout,
        *,
        proxy: str | None,
        headers: Mapping[str, str],
    ) -> None:
        self.method = method
        self.url = url
        self.timeout = timeout
        self.proxy = proxy
        self.headers = headers
        self.response_headers: Mapping[str, str] | None = None
        # Set by the transport and _Deadlines (see there).
        self.response: aiohttp.ClientResponse | None = None
        self.connection: aiohttp.connector.Connection | None = None
        self.deadline: float | None = None
        self.read: float | None = None
        self.progress = 0.0
        self.received = -1
        self.expired: str | None = None

    @property
    def request_id(self) -> str | None:
        """The request id of the response, once its head arrived."""
        headers = self.response_headers
        return None if headers is None else request_id_of(headers)

    def error(self, exc: BaseException) -> APIConnectionError:
        """The library error for an aiohttp (or OS) failure, chained to a clean stand-in.

        Callers raise it outside their ``except`` block, so that the original is not
        attached as ``__context__`` either.
        """
        what = self._what()
        secrets = _secrets(self.headers)
        request_id = self.request_id
        error: APIConnectionError
        if self.expired is not None:
            error = self.timed_out()
        elif isinstance(exc, aiohttp.ConnectionTimeoutError):
            error = APITimeoutError(
                f"Timed out connecting (Timeout.connect = {_seconds(self.timeout.connect)}) {what}",
                request_id=request_id,
            )
        elif isinstance(exc, (asyncio.TimeoutError, TimeoutError)):  # not one of ours
            error = APITimeoutError(f"Timed out {what}", request_id=request_id)
        else:
            detail = _scrub(str(exc), secrets) or type(exc).__name__
            error = APIConnectionError(f"Connection error {what}: {detail}", request_id=request_id)
        error.__cause__ = _underlying(exc, secrets)
        return error

    def _what(self) -> str:
        reading = self.response_headers is not None
        target = f"{self.method} {_without_query(self.url)}"
        what = f"reading the response to {target}" if reading else f"sending {target}"
        if self.proxy:
            what += f" (through the proxy {self.proxy})"
        return what

    def timed_out(self) -> APITimeoutError:
        """The error for the limit ``_Deadlines`` found expired (``expired``)."""
        what = self._what()
        if self.expired == "read":
            message = (
                f"Timed out reading the response: no data for "
                f"{_seconds(self.timeout.read)} (Timeout.read) {what}"
            )
        else:
            reading = self.response_headers is not None
            phase = "reading the response" if reading else "waiting for the response"
            message = (
                f"Timed out {phase}: the exchange took longer than "
                f"{_seconds(self.timeout.total)} (Timeout.total) {what}"
            )
        return APITimeoutError(message, request_id=self.request_id)

    def overdue(self, now: float) -> bool:
        """Whether a limit has expired at ``now`` (then ``expired`` names it)."""
        if self.deadline is not None and now >= self.deadline:
            self.expired = "total"
            return True
        if self.read is None:
            return False
        response = self.response
        if response is not None:
            received = response.content.total_bytes
            if received != self.received:  # the head, or more of the body, came
                self.received, self.progress = received, now
                return False
        if now - self.progress >= self.read:
            self.expired = "read"
            return True
        return False

    def cut(self) -> None:
        """Drop the connection: whatever waits on it fails, and ``error`` says why."""
        connection = self.connection
        transport = connection.transport if connection is not None else None
        if transport is not None:
            transport.abort()


_MAPPED = (aiohttp.ClientError, OSError, asyncio.TimeoutError, TimeoutError)

# The request being opened in this task, for the connector to tell which connection it got.
_OPENING: contextvars.ContextVar[_Attempt | None] = contextvars.ContextVar(
    "openai_images_opening", default=None
)

_LONGEST_TICK = 1.0
_SHORTEST_TICK = 0.005


def _tick(timeout: Timeout) -> float | None:
    """How often ``_Deadlines`` looks at an exchange with these limits (``None``: never):
    a second, or a tenth of the shorter limit, so a limit fires at most 10% late."""
    limits = [limit for limit in (timeout.read, timeout.total) if limit is not None]
    if not limits:
        return None
    return max(_SHORTEST_TICK, min(_LONGEST_TICK, min(limits) / 10))


def _limits(timeout: Timeout) -> tuple[aiohttp.ClientTimeout, float | None]:
    """aiohttp's share of ``timeout`` (``connect``, within ``total``) and the tick of the
    rest (``_Deadlines`` keeps ``read`` and ``total``)."""
    connect = timeout.connect
    if timeout.total is not None:  # connecting is part of the exchange
        connect = timeout.total if connect is None else min(connect, timeout.total)
    return aiohttp.ClientTimeout(total=None, connect=connect, sock_read=None), _tick(timeout)


class _Deadlines:
    """``Timeout.read`` and ``Timeout.total`` of every exchange in flight, one timer for all.

    aiohttp's own ``total`` and ``sock_read`` make two timers for each request, rescheduled
    as data arrives: about 15 µs of CPU in a 110 µs request on the benchmark machine
    (``tools/bench_layers.py``, aiohttp with and without them). Here one timer looks at
    each exchange in flight once a tick and drops the connection of one past a limit;
    what waits on that connection then fails, and the attempt's ``expired`` makes its
    error an ``APITimeoutError`` naming the limit. A limit so fires up to one tick late
    (see ``_tick``). Progress is the response's bytes received, as seen at each tick.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._watched: set[_Attempt] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._every = _LONGEST_TICK

    def watch(self, attempt: _Attempt, tick: float) -> None:
        """Watch ``attempt`` from now on, with its ``read`` and ``total`` limits."""
        now = self._loop.time()
        timeout = attempt.timeout
        attempt.deadline = None if timeout.total is None else now + timeout.total
        attempt.read = timeout.read
        attempt.progress = now
        self._watched.add(attempt)
        if self._timer is None or tick < self._every:
            if self._timer is not None:
                self._timer.cancel()
            self._every = tick
            self._timer = self._loop.call_later(tick, self._look)

    def forget(self, attempt: _Attempt) -> None:
        """Stop watching ``attempt`` (done, or failed)."""
        self._watched.discard(attempt)

    def close(self) -> None:
        """Stop the timer."""
        self._watched.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _look(self) -> None:
        now = self._loop.time()
        every = _LONGEST_TICK
        for attempt in list(self._watched):
            if attempt.overdue(now):
                self._watched.discard(attempt)
                attempt.cut()
            else:
                every = min(every, _tick(attempt.timeout) or _LONGEST_TICK)
        self._every = every
        self._timer = self._loop.call_later(every, self._look) if self._watched else None


class _Connector(aiohttp.TCPConnector):
    """aiohttp's connector, telling the request being opened which connection it got, so
    that ``_Deadlines`` can drop it."""

    async def connect(self, *args: Any, **kwargs: Any) -> aiohttp.connector.Connection:
        connection = await super().connect(*args, **kwargs)
        attempt = _OPENING.get()
        if attempt is not None:
            attempt.connection = connection
            if attempt.expired is not None:  # a limit passed while it connected
                attempt.cut()
        return connection


class StreamingExchange:
    """An HTTP exchange whose body is read as it arrives; close it when done.

    Read by ``read_chunk``, a body (decompressed) longer than ``limit`` fails, so an endless
    stream, or an endless line in one, cannot fill memory; read by ``lines``, each line is
    capped instead. Every error after the head carries its request id.
    """

    def __init__(
        self,
        response: aiohttp.ClientResponse,
        *,
        limit: int,
        attempt: _Attempt,
        release: Callable[[], None],
    ) -> None:
        self._response = response
        self._limit = limit
        self._received = 0
        self._release: Callable[[], None] | None = release
        self.status = response.status
        self.headers: Mapping[str, str] = response.headers
        self.request_id = request_id_of(response.headers)
        self._attempt = attempt

    async def read_chunk(self) -> bytes:
        """The next bytes of the body as they arrive; ``b""`` at its end."""
        chunk = await self._next()
        self._received += len(chunk)
        if self._received <= self._limit:
            return chunk
        raise self._too_large(f"The response is larger than the limit of {self._limit} bytes")

    async def lines(self) -> AsyncIterator[bytes]:
        """The body line by line as it arrives (without the ``\\n``; blank lines too).

        Only the line being read is held, so the body as a whole is not capped (a Batch
        API result file may be many GB); each line is, by the same ``limit``.
        """
        pending = bytearray()
        while chunk := await self._next():
            pending += chunk
            start = 0
            while (end := pending.find(b"\n", start)) != -1:
                self._check_line(end - start)
                yield bytes(pending[start:end])
                start = end + 1
            del pending[:start]
            self._check_line(len(pending))  # a line without its end yet, as it grows
        if pending:
            yield bytes(pending)

    def _check_line(self, length: int) -> None:
        if length > self._limit:
            raise self._too_large(f"A line is longer than the limit of {self._limit} bytes")

    async def _next(self) -> bytes:
        failure: APIConnectionError
        try:
            chunk = await self._response.content.readany()
        except _MAPPED as exc:
            failure = self._attempt.error(exc)
        else:
            if chunk or self._attempt.expired is None:
                return chunk
            failure = self._attempt.timed_out()  # the end was the limit's cut
        raise failure

    def _too_large(self, message: str) -> ResponseTooLargeError:
        self._response.close()
        return ResponseTooLargeError(message, request_id=self.request_id)

    async def read(self, *, limit: int) -> bytes:
        """The whole body (for an error answer), at most ``limit`` bytes."""
        return await _read_limited(self._response, limit=limit, attempt=self._attempt)

    def fail_closed(self) -> None:
        """The client closes with this stream open: a read waiting now, and any later one,
        raise ``ClientClosedError`` (aiohttp, closing the connection, leaves them waiting)."""
        self._response.content.set_exception(ClientClosedError())

    async def aclose(self) -> None:
        """Drop the connection unless the body was read to its end."""
        self._response.close()
        release, self._release = self._release, None
        if release is not None:
            release()

    async def __aenter__(self) -> StreamingExchange:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


async def _read_limited(
    response: aiohttp.ClientResponse, *, limit: int, attempt: _Attempt
) -> bytes:
    length = response.content_length
    if length is not None and length > limit:
        response.close()
        raise ResponseTooLargeError(
            f"The response announces {length} bytes, more than the limit of {limit}",
            request_id=attempt.request_id,
        )
    failure: APIConnectionError
    try:
        if length is not None and "Content-Encoding" not in response.headers:
            # Announced, within the limit and not compressed: the parser stops at the
            # length, so the body is read in one go (one cut short fails in aiohttp).
            return await response.read()
        # Counted as it arrives: a compressed body's length says nothing of what it
        # inflates to.
        pieces: list[bytes] = []
        total = 0
        async for piece in response.content.iter_any():
            total += len(piece)
            if total > limit:
                response.close()
                raise ResponseTooLargeError(
                    f"The response is larger than the limit of {limit} bytes",
                    request_id=attempt.request_id,
                )
            pieces.append(piece)
        if attempt.expired is not None:  # the end was the limit's cut, not the body's
            raise attempt.timed_out()
        return b"".join(pieces)
    except _MAPPED as exc:
        failure = attempt.error(exc)
    raise failure


class Transport:
    """A pool of connections and the way requests go through it.

    Args:
        max_connections: Connections open at once, to all hosts together. A request
            waits up to ``Timeout.pool`` for one to be free.
        max_response_bytes: A larger response body fails instead of filling memory.
        trust_env: Send requests through the proxies named by ``HTTPS_PROXY``,
            ``HTTP_PROXY`` (or lowercase) except for hosts in ``NO_PROXY`` and this
            machine's own (``localhost``, loopback addresses), read once when the
            transport is made. Nothing else comes from the environment (no ``.netrc``
            credentials).
        ssl: TLS for every connection: ``True`` for the default checks, ``False`` for
            none, or a context (see ``openai_images._config.tls_setting``).
    """

    def __init__(
        self,
        *,
        max_connections: int = 100,
        max_response_bytes: int = 1 << 30,
        trust_env: bool = True,
        ssl: ssl.SSLContext | bool = True,
    ) -> None:
        self.max_response_bytes = max_response_bytes
        self.max_connections = max_connections
        self._ssl = ssl
        self._proxies = _environment_proxies() if trust_env else {}
        self._proxy_by_origin: dict[tuple[str, str], tuple[str | None, str | None]] = {}
        self._timeouts: dict[Timeout, tuple[aiohttp.ClientTimeout, float | None]] = {}
        default = Timeout()
        self._last_timeout = (default, _limits(default))
        self._session: aiohttp.ClientSession | None = None
        self._deadlines: _Deadlines | None = None
        self._slots: anyio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self._streams: weakref.WeakSet[StreamingExchange] = weakref.WeakSet()
        self.user_agent = user_agent(f"aiohttp/{aiohttp.__version__}")

    @property
    def is_open(self) -> bool:
        """Whether a session is open (and so must be closed)."""
        return self._session is not None and not self._session.closed

    def _get_session(self) -> tuple[aiohttp.ClientSession, anyio.Semaphore]:
        if self._closed:
            raise RuntimeError("this client is closed; make a new one")
        loop = asyncio.get_running_loop()
        if self._session is None or self._slots is None:
            connector = _Connector(
                limit=self.max_connections,
                limit_per_host=0,
                ttl_dns_cache=300,
                ssl=self._ssl,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                # Proxies come from _proxy_for: aiohttp's trust_env would also add
                # credentials from ~/.netrc, and look proxies up in a thread per request.
                trust_env=False,
                timeout=aiohttp.ClientTimeout(total=None),
                auto_decompress=True,
            )
            # The pool's slots are counted here, so that waiting for one has its own
            # limit and its own message; the connector's limit then never waits.
            self._slots = anyio.Semaphore(self.max_connections)
            self._deadlines = _Deadlines(loop)
            self._loop = loop
        elif self._loop is not loop:
            raise RuntimeError(
                "this client's connections belong to another event loop; make one client "
                "per event loop (or use ImagesClient from synchronous code)"
            )
        return self._session, self._slots

    def _client_timeout(self, timeout: Timeout) -> tuple[aiohttp.ClientTimeout, float | None]:
        """aiohttp's timeout for ``timeout`` (``connect`` alone: ``_Deadlines`` keeps
        ``read`` and ``total``), and how often ``_Deadlines`` looks at the exchange."""
        if timeout is self._last_timeout[0]:  # the client's default, most of the time
            return self._last_timeout[1]
        found = self._timeouts.get(timeout)
        if found is None:
            if len(self._timeouts) >= 32:  # per-call timeouts: keep the cache small
                self._timeouts.clear()
            found = self._timeouts[timeout] = _limits(timeout)
        self._last_timeout = (timeout, found)
        return found

    def _proxy_for(self, url: str) -> tuple[str | None, str | None]:
        """The proxy for ``url`` (or ``None``), and how to name it in errors."""
        if not self._proxies:
            return None, None
        parts = urlsplit(url)
        origin = (parts.scheme, parts.netloc)
        found = self._proxy_by_origin.get(origin)
        if found is None:
            proxy = self._proxies.get(parts.scheme)
            host = parts.hostname or ""
            # proxy_bypass_environment reads NO_PROXY from the mapping it is given.
            bypass = urllib.request.proxy_bypass_environment  # type: ignore[attr-defined]  # not in typeshed
            if proxy is not None and (
                _is_loopback(host)
                or bypass(f"{host}:{parts.port}" if parts.port else host, self._proxies)
            ):
                proxy = None
            found = (proxy, _without_credentials(proxy) if proxy else None)
            if len(self._proxy_by_origin) < 256:
                self._proxy_by_origin[origin] = found
        return found

    def _watch(self, attempt: _Attempt, tick: float) -> None:
        deadlines = self._deadlines
        assert deadlines is not None  # made with the session
        deadlines.watch(attempt, tick)

    def _finish(self, attempt: _Attempt) -> None:
        """Free the attempt's connection slot and stop watching its limits."""
        # Both made with the session, before any attempt.
        assert self._slots is not None
        assert self._deadlines is not None
        self._slots.release()
        self._deadlines.forget(attempt)

    async def _wait_for_slot(
        self, slots: anyio.Semaphore, timeout: Timeout, method: str, url: str
    ) -> None:
        with anyio.move_on_after(timeout.pool):
            await slots.acquire()
            if self._closed:  # closed while this call waited: its session is gone
                slots.release()
                raise RuntimeError("this client is closed; make a new one")
            return
        raise APITimeoutError(
            f"Timed out waiting for a free connection (Timeout.pool = "
            f"{_seconds(timeout.pool)}; all {self.max_connections} of max_connections "
            f"busy) for {method} {_without_query(url)}; nothing was sent"
        )

    async def _open(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        params: Mapping[str, str] | None,
        body: Body | None,
        timeout: Timeout,
    ) -> tuple[aiohttp.ClientResponse, _Attempt]:
        """Send the request; the response and its attempt (``_finish`` it when done).
        Redirects come back as they are: ``send`` follows them itself."""
        session, slots = self._get_session()
        try:
            slots.acquire_nowait()
        except anyio.WouldBlock:
            await self._wait_for_slot(slots, timeout, method, url)
        send_headers = {"User-Agent": self.user_agent, **headers}
        data: Any = None
        # Never a guessed Content-Type: aiohttp would call a POST without a body
        # application/octet-stream. Skipping it costs aiohttp a copy of the headers, so it
        # is asked only when there is no body (a body brings its own type).
        skip: tuple[str, ...] | None = _NO_CONTENT_TYPE
        if body is not None:
            skip = None
            send_headers["Content-Type"] = body.content_type
            if body.stream is not None:
                data = body.stream()
                if body.length is not None:
                    send_headers["Content-Length"] = str(body.length)
            else:
                data = body.data
        proxy, proxy_name = self._proxy_for(url)
        attempt = _Attempt(method, url, timeout, proxy=proxy_name, headers=send_headers)
        client_timeout, tick = self._client_timeout(timeout)
        if tick is not None:
            self._watch(attempt, tick)
        opening = _OPENING.set(attempt)
        failure: BaseException
        try:
            response = await session.request(
                method,
                url,
                headers=send_headers,
                params=params,
                data=data,
                proxy=proxy,
                timeout=client_timeout,
                allow_redirects=False,
                skip_auto_headers=skip,
            )
        except _MAPPED as exc:
            failure = _own_error(exc) or attempt.error(exc)
        except BaseException:
            self._finish(attempt)
            raise
        else:
            attempt.response = response
            attempt.response_headers = response.headers
            return response, attempt
        finally:
            _OPENING.reset(opening)
            # An upload cut short must close its files now, not when collected. While
            # aiohttp's writer is inside the generator, cancelling that writer closes it.
            streamed = body is not None and body.stream is not None
            if streamed and getattr(data, "ag_running", True) is False:
                await data.aclose()
        self._finish(attempt)
        # Raised here, outside the except block, so that aiohttp's exception is not its
        # __context__.
        raise failure

    async def send(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        params: Mapping[str, str] | None = None,
        body: Body | None = None,
        timeout: Timeout,
        allow_redirects: bool = False,
    ) -> Exchange:
        """Send a request and read the whole response.

        With ``allow_redirects``, redirects are followed here rather than by aiohttp, which
        drops only ``Authorization`` when one leads to another origin: every credential
        header (``CREDENTIAL_HEADERS``: Azure's ``api-key`` too) stays behind.
        """
        for _ in range(MAX_REDIRECTS):
            response, attempt = await self._open(
                method,
                url,
                headers=headers,
                params=params,
                body=body,
                timeout=timeout,
            )
            location = response.headers.get("Location") if allow_redirects else None
            if response.status not in _REDIRECTS or not location:
                break
            response.release()
            self._finish(attempt)
            target = response.url.join(URL(location))
            if target.origin() != response.url.origin():
                headers = without_credential_headers(headers)
            if response.status == 303 or (response.status in (301, 302) and method == "POST"):
                method, body = "GET", None
            url, params = str(target), None
        else:
            raise APIConnectionError(
                f"More than {MAX_REDIRECTS - 1} redirects for {method} {_without_query(url)}"
            )
        try:
            payload = await _read_limited(response, limit=self.max_response_bytes, attempt=attempt)
        finally:
            response.release()
            self._finish(attempt)
        return Exchange(status=response.status, headers=response.headers, body=payload)

    async def open_stream(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        params: Mapping[str, str] | None = None,
        body: Body | None = None,
        timeout: Timeout,
    ) -> StreamingExchange:
        """Send a request and return once the response headers have arrived."""
        response, attempt = await self._open(
            method,
            url,
            headers=headers,
            params=params,
            body=body,
            timeout=timeout,
        )
        stream = StreamingExchange(
            response,
            limit=self.max_response_bytes,
            attempt=attempt,
            release=functools.partial(self._finish, attempt),
        )
        self._streams.add(stream)
        return stream

    async def aclose(self) -> None:
        """Close every connection; the streams still open fail. Safe to call twice."""
        self._closed = True
        for stream in list(self._streams):
            stream.fail_closed()
        session, self._session = self._session, None
        if self._deadlines is not None:
            self._deadlines.close()
        if session is not None and not session.closed:
            await session.close()

    def warn_if_open(self, owner: object) -> None:
        """Warn (from ``__del__``) about a client that was never closed."""
        if self.is_open:
            with contextlib.suppress(Exception):
                warnings.warn(
                    f"{owner!r} was never closed: use 'async with' or 'await client.aclose()'",
                    ResourceWarning,
                    stacklevel=3,
                )


def _environment_proxies() -> dict[str, str]:
    """``HTTP_PROXY``, ``HTTPS_PROXY`` and ``NO_PROXY`` (lowercase first), as ``urllib``
    reads them; only http(s) proxies, the kind aiohttp speaks."""
    found = urllib.request.getproxies_environment()
    proxies = {
        scheme: url
        for scheme, url in found.items()
        if scheme in ("http", "https") and urlsplit(url).scheme in ("http", "https")
    }
    if proxies and "no" in found:
        proxies["no"] = found["no"]
    return proxies


def _is_loopback(host: str) -> bool:
    """Whether ``host`` is this machine, which a proxy elsewhere cannot reach."""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _without_credentials(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}"


def _own_error(exc: BaseException) -> OpenAIImagesError | None:
    """Our own error that the request body raised (a file gone), found under aiohttp's."""
    cause = exc.__cause__
    while cause is not None:
        if isinstance(cause, OpenAIImagesError):
            return cause
        cause = cause.__cause__
    return None


def _without_query(url: str) -> str:
    return url.split("?", 1)[0]
