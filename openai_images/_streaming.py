"""Streamed generations and edits: response bytes in, typed events out.

The stream reads the body only as the caller asks for events, decodes it with the sans-I/O
``SSEDecoder``, and closes the connection when the caller leaves
early. The kind of each event comes from ``data.type``; the ``event:`` line is ignored, as
the contract asks.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Generic, TypeVar

import orjson

from ._converter import converter
from ._errors import (
    APIConnectionError,
    APIError,
    APIResponseValidationError,
    error_event_status,
    error_from_payload,
    request_id_of,
)
from ._responses import (
    EVENT_CLASSES,
    ImageEditCompletedEvent,
    ImageGenCompletedEvent,
)
from ._sse import SSEDecoder
from ._transport import StreamingExchange

__all__ = ["AsyncImageStream"]

E = TypeVar("E")

_COMPLETED = (ImageGenCompletedEvent, ImageEditCompletedEvent)


class AsyncImageStream(Generic[E]):
    """The events of a streamed generation or edit.

    Iterate it with ``async for``; use it as an async context manager (or call
    ``aclose``) to close the connection when you stop early.

    Attributes:
        request_id: The response's ``x-request-id`` (Azure: ``apim-request-id``); every
            error the stream raises carries it too.
        headers: The response headers.

    Example:
        ```python
        async with await client.generate(prompt="a fox", model="gpt-image-1.5",
                                         stream=True, partial_images=2) as stream:
            async for event in stream:
                event.save(f"fox-{event.type}.png")
        ```
    """

    def __init__(self, exchange: StreamingExchange) -> None:
        self._exchange = exchange
        self._decoder = SSEDecoder()
        self._pending: deque[Any] = deque()
        self._finished = False
        self._completed = False
        self._error: APIError | None = None
        self.request_id: str | None = request_id_of(exchange.headers)
        self.headers: Mapping[str, str] = exchange.headers

    def __aiter__(self) -> AsyncImageStream[E]:
        return self

    async def __anext__(self) -> E:
        while not self._pending:
            if self._finished:
                error, self._error = self._error, None
                if error is not None:
                    raise error
                raise StopAsyncIteration
            await self._fill()
        event: E = self._pending.popleft()
        return event

    async def _fill(self) -> None:
        try:
            chunk = await self._exchange.read_chunk()
        except BaseException:
            await self.aclose()
            raise
        sse_events = self._decoder.feed(chunk) if chunk else self._decoder.close()
        for sse in sse_events:
            if sse.data == "[DONE]":
                await self._end()
                return
            try:
                event = self._parse(sse.data)
            except APIError as exc:
                # Events before the failure are still delivered; the error comes after them.
                self._error = exc
                await self._close(keep_pending=True)
                return
            if event is not None:
                self._pending.append(event)
        if not chunk:
            await self._end()

    def _parse(self, data: str) -> Any:
        try:
            payload = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise APIResponseValidationError(
                f"A stream event is not JSON: {exc}",
                status_code=self._exchange.status,
                body=data.encode()[:2000],
                request_id=self.request_id,
            ) from exc
        if isinstance(payload, dict) and "error" in payload:
            error = payload["error"] if isinstance(payload["error"], dict) else {}
            status = error_event_status(error)
            raise error_from_payload(
                payload, status_code=status, request_id=self.request_id, headers=self.headers
            )
        kind = payload.get("type") if isinstance(payload, dict) else None
        cls = EVENT_CLASSES.get(kind) if isinstance(kind, str) else None
        if cls is None:
            # A newer API may add event kinds; they carry nothing this version understands.
            return None
        try:
            event = converter.structure(payload, cls)
        except Exception as exc:
            raise APIResponseValidationError(
                f"A {kind} event does not match the contract: {exc}",
                status_code=self._exchange.status,
                body=data.encode()[:2000],
                request_id=self.request_id,
            ) from exc
        if isinstance(event, _COMPLETED):
            self._completed = True
        return event

    async def _end(self) -> None:
        if not self._completed:
            self._error = APIConnectionError(
                "The stream ended before its completed event", request_id=self.request_id
            )
        await self._close(keep_pending=True)

    async def aclose(self) -> None:
        """Close the connection; the stream yields nothing more."""
        await self._close(keep_pending=False)

    async def _close(self, *, keep_pending: bool) -> None:
        self._finished = True
        if not keep_pending:
            self._pending.clear()
            self._error = None
        await self._exchange.aclose()

    async def __aenter__(self) -> AsyncImageStream[E]:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
