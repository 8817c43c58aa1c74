"""The one place a Batch API job talks HTTP: files and batches, nothing else.

``Remote`` offers exactly the calls the job needs, on the client's own road (its
``Sender``: settings, auth, route, transport, retries and error mapping); no other module
of the job knows a URL, a header or a status code.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import attrs
import orjson

from openai_images._config import Timeout
from openai_images._errors import APIResponseValidationError
from openai_images._send import RequestOptions, Sender
from openai_images._transport import Body

__all__ = ["Remote"]

_CHUNK = 256 * 1024


class Remote:
    """Files and batches over one client's connection.

    Args:
        client: The client whose settings, transport and retries are used.
    """

    def __init__(self, sender: Sender) -> None:
        self.sender = sender

    def _transfer(self) -> RequestOptions:
        """The client's timeout without its total: a file of 200 MB (or an output file of
        many GB) takes as long as it takes, while a stalled connection still fails."""
        timeout: Timeout = attrs.evolve(self.sender.settings.timeout, total=None)
        return RequestOptions(timeout=timeout)

    async def _json(self, method: str, path: str, *, data: Any = None) -> dict[str, Any]:
        exchange = await self.sender.call(method, path, json=data)
        return _object(exchange.body, exchange.status)

    async def upload(self, path: Path, *, purpose: str, filename: str | None = None) -> str:
        """Upload a file from disk (streamed, its length known up front); its ``file_id``."""
        boundary = f"openai-images-{secrets.token_hex(12)}"
        name = (filename or path.name).replace('"', "")
        content_type = _content_type(name)
        head = (
            f"--{boundary}\r\n"
            'Content-Disposition: form-data; name="purpose"\r\n\r\n'
            f"{purpose}\r\n"
            f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="file"; filename="{name}"\r\n'
            f"Content-Type: {content_type}\r\n\r\n"
        ).encode()
        tail = f"\r\n--{boundary}--\r\n".encode()
        size = (await anyio.Path(path).stat()).st_size

        async def chunks() -> AsyncIterator[bytes]:
            yield head
            async with await anyio.open_file(path, "rb") as source:
                while chunk := await source.read(_CHUNK):
                    yield chunk
            yield tail

        exchange = await self.sender.call(
            "POST",
            "files",
            body=Body(
                content_type=f"multipart/form-data; boundary={boundary}",
                stream=chunks,
                length=len(head) + size + len(tail),
            ),
            options=self._transfer(),
        )
        data = _object(exchange.body, exchange.status)
        file_id = data.get("id")
        if not isinstance(file_id, str):
            raise APIResponseValidationError(
                "The uploaded file's object has no id", status_code=exchange.status
            )
        return file_id

    async def create_batch(
        self, *, input_file_id: str, endpoint: str, metadata: dict[str, str] | None
    ) -> dict[str, Any]:
        """Create a batch (``completion_window`` 24h); the batch object."""
        data: dict[str, Any] = {
            "input_file_id": input_file_id,
            "endpoint": endpoint,
            "completion_window": "24h",
        }
        if metadata:
            data["metadata"] = metadata
        return await self._json("POST", "batches", data=data)

    async def retrieve_batch(self, batch_id: str) -> dict[str, Any]:
        """The batch object."""
        return await self._json("GET", f"batches/{batch_id}")

    async def cancel_batch(self, batch_id: str) -> dict[str, Any]:
        """Ask for the batch to stop; the batch object (``cancelling``)."""
        return await self._json("POST", f"batches/{batch_id}/cancel")

    async def download(self, url: str) -> bytes:
        """A ``url`` result's bytes (dall-e models answer with URLs unless told otherwise)."""
        return await self.sender.download(url)

    async def lines(self, file_id: str) -> AsyncIterator[bytes]:
        """A file's non-blank lines as they arrive: the file is never held whole nor capped
        as a whole; each line is capped by the client's ``max_response_bytes``, as a live
        answer would be."""
        exchange = await self.sender.open(
            "GET",
            f"files/{file_id}/content",
            options=attrs.evolve(
                self._transfer(), extra_headers={"Accept": "application/octet-stream"}
            ),
        )
        async with exchange:
            async for line in exchange.lines():
                if line.strip():
                    yield line


def _content_type(name: str) -> str:
    extension = name.rsplit(".", 1)[-1].lower()
    return {
        "jsonl": "application/jsonl",
        "png": "image/png",
        "jpg": "image/jpeg",
        "jpeg": "image/jpeg",
        "webp": "image/webp",
    }.get(extension, "application/octet-stream")


def _object(body: bytes, status: int) -> dict[str, Any]:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise APIResponseValidationError(
            f"The response body is not valid JSON: {exc}", status_code=status, body=body
        ) from exc
    if not isinstance(data, dict):
        raise APIResponseValidationError(
            "The response body is not a JSON object", status_code=status, body=body
        )
    return data
