"""One result image as bytes: its ``b64_json`` decoded, or its ``url`` downloaded.

The batch engine, the command line and the demo all save results through ``image_bytes``,
so a response that carries neither, or base64 that does not decode, fails the same way
everywhere: as an ``APIResponseValidationError``.
"""

from __future__ import annotations

from typing import Protocol

import anyio.to_thread

from ._errors import APIResponseValidationError
from ._responses import Image

__all__ = ["Downloader", "image_bytes"]

# Decoding 512 KiB of base64 takes about half a millisecond; past that, a worker thread
# keeps the event loop free for the other requests in flight.
_DECODE_IN_THREAD_AT = 512 * 1024


class Downloader(Protocol):
    """What fetches a ``url`` result: the client's (or sender's) download road, which
    retries and never sends the ``Authorization`` header."""

    async def download(self, url: str, /) -> bytes:
        """The bytes at ``url``."""
        ...


async def image_bytes(image: Image, *, downloader: Downloader, position: int = 0) -> bytes:
    """The bytes of one result image.

    Args:
        image: A result of ``response.data``.
        downloader: Fetches ``url`` results (an ``AsyncImagesClient`` will do).
        position: The image's place in its response, for error messages.

    Raises:
        APIResponseValidationError: The image has neither ``b64_json`` nor ``url``, or
            its base64 does not decode.

    Example:
        ```python
        data = await image_bytes(response.data[0], downloader=client)
        ```
    """
    if image.b64_json is None:
        if not image.url:
            raise APIResponseValidationError(
                f"image {position} of the response has neither b64_json nor url",
                status_code=200,
            )
        return await downloader.download(image.url)
    if len(image.b64_json) < _DECODE_IN_THREAD_AT:
        return image.content()
    return await anyio.to_thread.run_sync(image.content)
