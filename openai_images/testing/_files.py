"""The local server's ``/v1/files``: uploads kept on disk, listed, read back and deleted.

An upload (multipart ``purpose`` and ``file``) is streamed to a file in the store's
folder as it arrives, never held whole; its content is sent back in chunks. The batch
side adds its output and error files through ``FileStore.create``. Objects follow the
API's ``file`` shape.
"""

from __future__ import annotations

import secrets
import tempfile
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

import anyio
import attrs
from aiohttp import BodyPartReader, web

from ._intake import too_large
from ._wire import Rejection

__all__ = ["FILE_PURPOSES", "FileStore", "StoredFile"]

FILE_PURPOSES = frozenset(
    {"assistants", "batch", "fine-tune", "vision", "user_data", "evals", "batch_output"}
)
"""The purposes an upload may declare (``batch_output`` is the server's own)."""

_CHUNK = 256 * 1024


@attrs.frozen(kw_only=True)
class StoredFile:
    """One file the server keeps.

    Attributes:
        id: ``file-...``.
        filename: The name it was uploaded with.
        purpose: What it is for (``batch``, ``vision``, ``user_data``, ``batch_output``...).
        size: Its size in bytes.
        created_at: Unix seconds.
        path: Where its bytes are.
    """

    id: str
    filename: str
    purpose: str
    size: int
    created_at: int
    path: Path

    def wire(self) -> dict[str, Any]:
        """The API's ``file`` object."""
        return {
            "id": self.id,
            "object": "file",
            "bytes": self.size,
            "created_at": self.created_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
            "expires_at": None,
            "status_details": None,
        }


def new_file_id() -> str:
    """A fresh file id in the API's style."""
    return f"file-{secrets.token_hex(12)}"


class FileStore:
    """The files of one server, in one folder.

    Args:
        max_bytes: The largest upload accepted (the API takes 512 MB; a batch input 200 MB).

    Attributes:
        directory: Where the bytes go (the server sets it when it starts, and removes it).
    """

    def __init__(self, *, max_bytes: int) -> None:
        self.directory = Path(tempfile.gettempdir())
        self._max_bytes = max_bytes
        self._files: dict[str, StoredFile] = {}

    def get(self, file_id: str) -> StoredFile | None:
        """The file, or ``None`` if there is none by that id."""
        return self._files.get(file_id)

    def path_of(self, file_id: str) -> Path | None:
        """Where a file's bytes are, or ``None`` (JSON edits resolve ``file_id`` with it)."""
        stored = self._files.get(file_id)
        return stored.path if stored is not None else None

    def reserve(self) -> tuple[str, Path]:
        """A fresh id and the path its bytes go to (for ``create``)."""
        file_id = new_file_id()
        return file_id, self.directory / file_id

    def create(self, *, file_id: str, filename: str, purpose: str, path: Path) -> StoredFile:
        """Keep a file already written at ``path`` (from ``reserve``)."""
        stored = StoredFile(
            id=file_id,
            filename=filename,
            purpose=purpose,
            size=path.stat().st_size,
            created_at=int(time.time()),
            path=path,
        )
        self._files[file_id] = stored
        return stored

    def delete(self, file_id: str) -> bool:
        """Forget a file and remove its bytes; whether it existed."""
        stored = self._files.pop(file_id, None)
        if stored is None:
            return False
        stored.path.unlink(missing_ok=True)
        return True

    def listing(self, *, purpose: str | None, limit: int, after: str | None) -> dict[str, Any]:
        """A page of the API's file list, newest first."""
        files = sorted(self._files.values(), key=lambda f: (f.created_at, f.id), reverse=True)
        if purpose is not None:
            files = [f for f in files if f.purpose == purpose]
        return page([f.wire() for f in files], limit=limit, after=after)

    async def receive(self, request: web.Request) -> StoredFile:
        """Read an upload (multipart ``purpose`` and ``file``), streaming the file to disk.

        Raises:
            Rejection: The form lacks either field, names an unknown purpose, or is too large.
        """
        if request.content_type != "multipart/form-data":
            raise Rejection(
                f"Invalid Content-Type header ({request.content_type}): uploads take "
                "multipart/form-data.",
                code="invalid_content_type",
            )
        purpose: str | None = None
        received: tuple[str, Path] | None = None
        reader = await request.multipart()
        try:
            while (part := await reader.next()) is not None:
                if not isinstance(part, BodyPartReader):
                    raise Rejection("Nested multipart bodies are not supported.")
                if part.name == "purpose" and part.filename is None:
                    purpose = (await part.read_chunk(1024)).decode("utf-8", "replace").strip()
                elif part.name == "file" and part.filename is not None and received is None:
                    file_id, path = self.reserve()
                    received = (file_id, path)
                    await self._spool(part, path)
                    filename = part.filename
                else:
                    raise Rejection(
                        f"Unrecognized request argument supplied: {part.name}",
                        param=part.name,
                        code="unknown_parameter",
                    )
            if received is None:
                raise Rejection(
                    "Missing required parameter: 'file'.",
                    param="file",
                    code="missing_required_parameter",
                )
            if purpose is None:
                raise Rejection(
                    "Missing required parameter: 'purpose'.",
                    param="purpose",
                    code="missing_required_parameter",
                )
            if purpose not in FILE_PURPOSES - {"batch_output"}:
                raise Rejection(
                    f"Invalid value: '{purpose}'. Supported values are: "
                    + ", ".join(f"'{p}'" for p in sorted(FILE_PURPOSES - {"batch_output"}))
                    + ".",
                    param="purpose",
                    code="invalid_value",
                )
        except BaseException:
            if received is not None:
                received[1].unlink(missing_ok=True)
            raise
        return self.create(
            file_id=received[0], filename=filename, purpose=purpose, path=received[1]
        )

    async def _spool(self, part: BodyPartReader, path: Path) -> None:
        size = 0
        async with await anyio.open_file(path, "wb") as out:
            while chunk := await part.read_chunk(_CHUNK):
                size += len(chunk)
                if size > self._max_bytes:
                    raise too_large(self._max_bytes)
                await out.write(chunk)


def page(items: list[dict[str, Any]], *, limit: int, after: str | None) -> dict[str, Any]:
    """The API's list object: ``items`` after the one whose id is ``after``, ``limit`` of them.

    Example:
        >>> page([{"id": "a"}, {"id": "b"}, {"id": "c"}], limit=1, after="a")["data"]
        [{'id': 'b'}]
    """
    if after is not None:
        ids = [item["id"] for item in items]
        items = items[ids.index(after) + 1 :] if after in ids else []
    shown = items[:limit]
    return {
        "object": "list",
        "data": shown,
        "first_id": shown[0]["id"] if shown else None,
        "last_id": shown[-1]["id"] if shown else None,
        "has_more": len(items) > limit,
    }


def list_limit(request: web.Request, *, default: int, most: int) -> int:
    """The ``limit`` query parameter, checked."""
    text = request.query.get("limit")
    if text is None:
        return default
    try:
        limit = int(text)
    except ValueError:
        limit = 0
    if not 1 <= limit <= most:
        raise Rejection(
            f"Invalid 'limit': expected an integer from 1 to {most}.",
            param="limit",
            code="invalid_value",
        )
    return limit


def lines_of(path: Path) -> Generator[bytes, None, None]:
    """A file's lines, one at a time (blocking: run it in a thread)."""
    with path.open("rb") as source:
        yield from source
