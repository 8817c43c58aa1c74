"""The one module of the client that speaks aiohttp.

It owns the connection pool (one ``aiohttp.ClientSession`` per client, made on first use
inside the running loop), turns our ``Timeout`` into aiohttp's, streams request bodies,
and maps every aiohttp failure onto ``openai_images._errors``, so no aiohttp type
reaches the caller. It knows nothing of retries or of the Images API.
"""

from __future__ import annotations

import asyncio
import contextlib
import warnings
from collections.abc import AsyncIterator, Callable, Mapping
from types import TracebackType
from typing import Any, NoReturn

import aiohttp
import attrs

from ._config import Timeout, user_agent
from ._errors import (
    APIConnectionError,
    APITimeoutError,
    OpenAIImagesError,
    ResponseTooLargeError,
)

__all__ = ["Body", "Exchange", "StreamingExchange", "Transport"]

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


def _aiohttp_timeout(timeout: Timeout) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(
        total=timeout.total, connect=timeout.connect, sock_read=timeout.read
    )


def _raise_mapped(exc: BaseException, *, what: str) -> NoReturn:
    """Raise the library error for an aiohttp (or OS) failure, chained to it."""
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        raise APITimeoutError(f"Timed out {what}") from exc
    detail = str(exc) or type(exc).__name__
    raise APIConnectionError(f"Connection error {what}: {detail}") from exc


_MAPPED = (aiohttp.ClientError, OSError, asyncio.TimeoutError, TimeoutError)


class StreamingExchange:
    """An HTTP exchange whose body is read as it arrives; close it when done.

    A body (decompressed) longer than ``limit`` fails, so an endless stream, or an endless
    line in one, cannot fill memory.
    """

    def __init__(self, response: aiohttp.ClientResponse, *, limit: int) -> None:
        self._response = response
        self._limit = limit
        self._received = 0
        self.status = response.status
        self.headers: Mapping[str, str] = response.headers

    async def read_chunk(self) -> bytes:
        """The next bytes of the body as they arrive; ``b""`` at its end."""
        try:
            chunk = await self._response.content.readany()
        except _MAPPED as exc:
            _raise_mapped(exc, what="while reading the response")
        self._received += len(chunk)
        if self._received > self._limit:
            self._response.close()
            raise ResponseTooLargeError(
                f"The response is larger than the limit of {self._limit} bytes"
            )
        return chunk

    async def read(self, *, limit: int) -> bytes:
        """The whole body (for an error answer), at most ``limit`` bytes."""
        return await _read_limited(self._response, limit=limit)

    async def aclose(self) -> None:
        """Drop the connection unless the body was read to its end."""
        self._response.close()

    async def __aenter__(self) -> StreamingExchange:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


async def _read_limited(response: aiohttp.ClientResponse, *, limit: int) -> bytes:
    length = response.content_length
    if length is not None and length > limit:
        response.close()
        raise ResponseTooLargeError(
            f"The response announces {length} bytes, more than the limit of {limit}"
        )
    try:
        # Counted as it arrives even when announced: a compressed body's length says
        # nothing of what it inflates to.
        pieces: list[bytes] = []
        total = 0
        async for piece in response.content.iter_any():
            total += len(piece)
            if total > limit:
                response.close()
                raise ResponseTooLargeError(
                    f"The response is larger than the limit of {limit} bytes"
                )
            pieces.append(piece)
        return b"".join(pieces)
    except _MAPPED as exc:
        _raise_mapped(exc, what="while reading the response")


class Transport:
    """A pool of connections and the way requests go through it.

    Args:
        max_connections: Connections open at once, to all hosts together.
        max_response_bytes: A larger response body fails instead of filling memory.
        trust_env: Take proxies from ``HTTPS_PROXY`` and friends.
    """

    def __init__(
        self,
        *,
        max_connections: int = 100,
        max_response_bytes: int = 1 << 30,
        trust_env: bool = False,
    ) -> None:
        self.max_response_bytes = max_response_bytes
        self._max_connections = max_connections
        self._trust_env = trust_env
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self.user_agent = user_agent(f"aiohttp/{aiohttp.__version__}")

    @property
    def is_open(self) -> bool:
        """Whether a session is open (and so must be closed)."""
        return self._session is not None and not self._session.closed

    def _get_session(self) -> aiohttp.ClientSession:
        if self._closed:
            raise RuntimeError("this client is closed; make a new one")
        loop = asyncio.get_running_loop()
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self._max_connections, limit_per_host=0, ttl_dns_cache=300
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                trust_env=self._trust_env,
                timeout=aiohttp.ClientTimeout(total=None),
                auto_decompress=True,
                skip_auto_headers=("Content-Type",),
            )
            self._loop = loop
        elif self._loop is not loop:
            raise RuntimeError(
                "this client's connections belong to another event loop; make one client "
                "per event loop (or use ImagesClient from synchronous code)"
            )
        return self._session

    async def _open(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        params: Mapping[str, str] | None,
        body: Body | None,
        timeout: Timeout,
        allow_redirects: bool,
    ) -> aiohttp.ClientResponse:
        session = self._get_session()
        send_headers = {"User-Agent": self.user_agent, **headers}
        data: Any = None
        if body is not None:
            send_headers["Content-Type"] = body.content_type
            if body.stream is not None:
                data = body.stream()
                if body.length is not None:
                    send_headers["Content-Length"] = str(body.length)
            else:
                data = body.data
        try:
            return await session.request(
                method,
                url,
                headers=send_headers,
                params=params,
                data=data,
                timeout=_aiohttp_timeout(timeout),
                allow_redirects=allow_redirects,
            )
        except _MAPPED as exc:
            own = _own_error(exc)
            if own is not None:
                raise own from own.__cause__
            _raise_mapped(exc, what=f"sending {method} {_without_query(url)}")
        finally:
            # An upload cut short must close its files now, not when collected. While
            # aiohttp's writer is inside the generator, cancelling that writer closes it.
            if getattr(data, "ag_running", True) is False:
                await data.aclose()

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
        """Send a request and read the whole response."""
        response = await self._open(
            method,
            url,
            headers=headers,
            params=params,
            body=body,
            timeout=timeout,
            allow_redirects=allow_redirects,
        )
        try:
            payload = await _read_limited(response, limit=self.max_response_bytes)
        finally:
            response.release()
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
        response = await self._open(
            method,
            url,
            headers=headers,
            params=params,
            body=body,
            timeout=timeout,
            allow_redirects=False,
        )
        return StreamingExchange(response, limit=self.max_response_bytes)

    async def aclose(self) -> None:
        """Close every connection. Safe to call twice."""
        self._closed = True
        session, self._session = self._session, None
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
