"""The raw HTTP answer next to the parsed one: ``client.with_raw_response``.

Like the official SDK's ``with_raw_response``: the same calls, returning a ``RawResponse``
that holds the status, the headers and the body bytes as they arrived, and the parsed
result. The body is the one already read for parsing, so nothing is fetched twice.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar

import attrs

from ._send import capture_exchange, reset_capture

if TYPE_CHECKING:
    from ._batch import RunToCompletion
    from ._client import AsyncImagesClient
    from ._requests import ImageRequest
    from ._responses import ImagesResponse

__all__ = ["AsyncRawResponses", "RawResponse", "RawResponses"]

P = ParamSpec("P")
T = TypeVar("T")


@attrs.frozen(kw_only=True)
class RawResponse(Generic[T]):
    """An HTTP answer as it arrived, with its parsed result.

    Attributes:
        status_code: The HTTP status (2xx: errors raise as usual).
        headers: The response headers.
        content: The body bytes.
        parsed: What the plain call returns.

    Example:
        ```python
        raw = await client.with_raw_response.generate(prompt="a fox", model="gpt-image-2")
        raw.headers["x-request-id"], raw.parse().data[0]
        ```
    """

    status_code: int
    headers: Mapping[str, str]
    content: bytes = attrs.field(repr=lambda content: f"<{len(content)} bytes>")
    parsed: T

    def parse(self) -> T:
        """The parsed result (as the official SDK's ``parse()``)."""
        return self.parsed


def _raw(call: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[RawResponse[T]]]:
    async def with_raw(*args: P.args, **kwargs: P.kwargs) -> RawResponse[T]:
        found, token = capture_exchange()
        try:
            parsed = await call(*args, **kwargs)
        finally:
            reset_capture(token)
        if not found:
            aclose = getattr(parsed, "aclose", None)
            if aclose is not None:
                await aclose()
            raise ValueError("with_raw_response takes whole responses, not streams")
        exchange = found[-1]
        return RawResponse(
            status_code=exchange.status,
            headers=exchange.headers,
            content=exchange.body,
            parsed=parsed,
        )

    with_raw.__doc__ = call.__doc__
    return with_raw


class AsyncRawResponses:
    """The client's whole-response calls, each returning a ``RawResponse``."""

    def __init__(self, client: AsyncImagesClient) -> None:
        self.generate: Callable[..., Awaitable[RawResponse[ImagesResponse]]] = _raw(client.generate)
        self.edit: Callable[..., Awaitable[RawResponse[ImagesResponse]]] = _raw(client.edit)
        self.create_variation: Callable[..., Awaitable[RawResponse[ImagesResponse]]] = _raw(
            client.create_variation
        )
        self.send: Callable[..., Awaitable[RawResponse[ImagesResponse]]] = _raw(client.send)


class RawResponses:
    """``ImagesClient.with_raw_response``: the whole-response calls, run to completion.

    Example:
        ```python
        raw = client.with_raw_response.generate(prompt="a fox", model="gpt-image-2")
        print(raw.status_code, raw.headers["x-request-id"], len(raw.content))
        ```
    """

    def __init__(self, calls: AsyncRawResponses, run: RunToCompletion) -> None:
        self._calls = calls
        self._run = run

    def generate(self, **kwargs: Any) -> RawResponse[ImagesResponse]:
        """``ImagesClient.generate``, with the raw answer (streams are refused)."""
        return self._run(functools.partial(self._calls.generate, **kwargs))

    def edit(self, **kwargs: Any) -> RawResponse[ImagesResponse]:
        """``ImagesClient.edit``, with the raw answer (streams are refused)."""
        return self._run(functools.partial(self._calls.edit, **kwargs))

    def create_variation(self, **kwargs: Any) -> RawResponse[ImagesResponse]:
        """``ImagesClient.create_variation`` (retired at OpenAI), with the raw answer."""
        return self._run(functools.partial(self._calls.create_variation, **kwargs))

    def send(self, request: ImageRequest, **kwargs: Any) -> RawResponse[ImagesResponse]:
        """``ImagesClient.send``, with the raw answer."""
        return self._run(functools.partial(self._calls.send, request, **kwargs))
