"""Input images as sources that stream in chunks and, when they can, replay for a retry.

An input is a path, ``bytes``, a binary file object, or ``(filename, content[,
content_type])``. ``resolve_image`` looks at it once before any upload (in a worker
thread: stat, open, read the first ``HEAD_BYTES``) and refuses
what is not an image at all; the per-model rules judge the resulting
``ImageInfo`` elsewhere. Nothing here holds more than a chunk of a file in memory
(a file no bigger than a chunk is read whole, in one worker-thread hop), and every
blocking read runs in a worker thread.

Example:
    >>> import anyio
    >>> png = bytes.fromhex("89504e470d0a1a0a0000000d49484452000000100000000808060000001f")
    >>> source = anyio.run(lambda: resolve_image(png, param="image"))
    >>> (source.info.filename, source.info.content_type, source.info.size, source.replayable)
    ('image.png', 'image/png', 30, True)
"""

from __future__ import annotations

import errno
import io
import os
import stat
from collections.abc import AsyncGenerator, Callable, Sequence
from contextlib import aclosing
from typing import IO, Any, ClassVar, NoReturn, Protocol

import anyio
import anyio.to_thread
import attrs

from ._errors import RequestValidationError, Violation
from ._requests import FileContent, ImageInput
from ._sniff import EXTENSIONS, HEAD_BYTES, ImageInfo, sniff

__all__ = ["DEFAULT_CHUNK_SIZE", "ImageSource", "resolve_image", "resolve_images"]

DEFAULT_CHUNK_SIZE = 512 * 1024
"""How many bytes a source reads at a time unless told otherwise.

Each chunk costs a hop to a worker thread and back, so bigger chunks upload with less CPU
(about 10% less here than at 256 KiB); but each worker thread's allocator keeps a few
freed chunks, and at 1 MiB ten uploads in a row already held 9 MiB.
"""

# Opening and sniffing is mostly waiting on the disk; a few at a time is plenty.
_RESOLVE_CONCURRENCY = 8


class _Content(Protocol):
    @property
    def replayable(self) -> bool: ...

    def chunks(self, chunk_size: int) -> AsyncGenerator[bytes, None]: ...


@attrs.frozen(kw_only=True)
class ImageSource:
    """One input image, sniffed and ready to stream.

    Attributes:
        info: What the image is: filename, content type, size and, when the header says,
            dimensions and alpha.
        replayable: Whether ``chunks`` can start again from the beginning (false only
            for a file object that cannot seek, such as a pipe).
    """

    info: ImageInfo
    _content: _Content = attrs.field(alias="content", repr=False)
    replayable: bool = attrs.field(init=False)

    @replayable.default
    def _replayable(self) -> bool:
        return self._content.replayable

    async def chunks(self, *, chunk_size: int = DEFAULT_CHUNK_SIZE) -> AsyncGenerator[bytes, None]:
        """Yield the whole content from its start, at most ``chunk_size`` bytes at a time.

        A path is opened afresh and closed when the generator finishes, is closed early or
        is cancelled; a seekable file object is rewound to where it was when resolved.

        Raises:
            RuntimeError: The source is a one-shot stream that was already read, or a file
                changed size since it was resolved (the declared length would be wrong).
        """
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be at least 1, not {chunk_size}")
        async with aclosing(self._content.chunks(chunk_size)) as chunks:
            async for chunk in chunks:
                yield chunk


async def resolve_image(value: ImageInput, *, param: str) -> ImageSource:
    """Look at one input image and make it a source, refusing what is not an image.

    Args:
        value: A path, ``bytes``, a binary file object, or ``(filename, content)`` /
            ``(filename, content, content_type)`` where content is one of the former three.
            A given content type is kept as is, even when the bytes do not look like one.
        param: The request field named in errors (``"image"``, ``"image[2]"``, ``"mask"``).

    Raises:
        RequestValidationError: The file is missing, a directory, unreadable, or not a PNG,
            JPEG or WebP image.
        TypeError: ``value`` is none of the accepted kinds.

    Example:
        >>> import anyio
        >>> try:
        ...     anyio.run(lambda: resolve_image(b"hello", param="mask"))
        ... except RequestValidationError as error:
        ...     print(error)
        mask: the input (5 bytes) is not a PNG, JPEG or WebP image
    """
    filename: str | None = None
    content_type: str | None = None
    content: Any = value
    if isinstance(value, tuple):
        filename, content, content_type = _unpack(value)
    probe = await _probe(content, param=param)
    info = sniff(probe.head, filename="", size=probe.size)
    if content_type is None:
        if info.content_type is None:
            label = repr(filename) if filename is not None else probe.label
            _refuse(param, f"{label} is not a PNG, JPEG or WebP image")
        content_type = info.content_type
    if filename is None:
        filename = probe.name if probe.name is not None else "image." + EXTENSIONS[content_type]
    info = attrs.evolve(info, filename=filename, content_type=content_type)
    return ImageSource(info=info, content=probe.content)


async def resolve_images(
    values: Sequence[ImageInput], *, param: str, listed: bool
) -> list[ImageSource]:
    """Resolve several inputs concurrently (a few at a time), keeping their order.

    Inputs in memory, and a lone input read from disk, are resolved in this task: there
    is nothing to overlap, and a task per input would cost more than looking at it.

    Args:
        values: The inputs.
        param: The request field they belong to.
        listed: Whether the request gave a list, so errors say ``image[i]`` and not ``image``.

    Raises:
        RequestValidationError: One or more inputs are refused; it lists every one of them.
        TypeError: An input is none of the accepted kinds.
    """
    for value in values:
        _check_kind(value)
    sources: list[ImageSource | None] = [None] * len(values)
    violations: list[list[Violation]] = [[] for _ in values]

    async def resolve_one(index: int) -> None:
        try:
            sources[index] = await resolve_image(
                values[index], param=f"{param}[{index}]" if listed else param
            )
        except RequestValidationError as error:
            violations[index].extend(error.violations)

    on_disk = [index for index, value in enumerate(values) if not _in_memory(value)]
    if len(on_disk) < 2:
        on_disk = []  # nothing to overlap
    for index in range(len(values)):
        if index not in on_disk:
            await resolve_one(index)
    if on_disk:
        limiter = anyio.CapacityLimiter(_RESOLVE_CONCURRENCY)

        async def resolve_limited(index: int) -> None:
            async with limiter:
                await resolve_one(index)

        async with anyio.create_task_group() as group:
            for index in on_disk:
                group.start_soon(resolve_limited, index)
    refused = [violation for found in violations for violation in found]
    if refused:
        raise RequestValidationError(refused)
    return [source for source in sources if source is not None]


@attrs.frozen
class _Probe:
    head: bytes
    size: int | None
    content: _Content
    name: str | None  # the name the content itself carries: a path's or a file's
    label: str  # how errors name the input


class _SpecialFileError(OSError):
    """The path is a FIFO, socket or device: nothing to size, and opening it may block."""


def _refuse(param: str, message: str) -> NoReturn:
    raise RequestValidationError([Violation(param=param, message=message)])


def _unpack(value: tuple[Any, ...]) -> tuple[str, Any, str | None]:
    if len(value) not in (2, 3):
        raise TypeError(
            f"an image tuple is (filename, content) or (filename, content, content_type), "
            f"not {len(value)} items"
        )
    filename, content = value[0], value[1]
    content_type = value[2] if len(value) == 3 else None
    if not isinstance(filename, str):
        raise TypeError(f"an image tuple's filename must be a str, not {type(filename).__name__}")
    if content_type is not None and not isinstance(content_type, str):
        raise TypeError(
            f"an image tuple's content type must be a str, not {type(content_type).__name__}"
        )
    if isinstance(content, tuple):
        raise TypeError("an image tuple's content must be bytes, a file object or a path")
    return filename, content, content_type


def _check_kind(value: object) -> None:
    content = _unpack(value)[1] if isinstance(value, tuple) else value
    if not isinstance(content, (str, os.PathLike, bytes)) and not _is_file(content):
        raise TypeError(
            "an input image must be a path, bytes, a binary file object or a "
            f"(filename, content[, content_type]) tuple, not {type(content).__name__}"
        )
    if isinstance(content, io.TextIOBase):
        raise TypeError("the file object is open in text mode; open it with 'rb'")


def _in_memory(value: ImageInput) -> bool:
    """Whether resolving ``value`` reads nothing from a file (its content is ``bytes``)."""
    content = value[1] if isinstance(value, tuple) else value
    return isinstance(content, bytes)


def _is_file(value: object) -> bool:
    return callable(getattr(value, "read", None))


async def _probe(content: FileContent, *, param: str) -> _Probe:
    _check_kind(content)
    if isinstance(content, bytes):
        return _Probe(
            content[:HEAD_BYTES],
            len(content),
            _BytesContent(content),
            None,
            f"the input ({len(content)} bytes)",
        )
    if isinstance(content, (str, os.PathLike)):
        return await _probe_path(os.fsdecode(content), param=param)
    return await _probe_file(content, param=param)


async def _probe_path(path: str, *, param: str) -> _Probe:
    try:
        head, size = await anyio.to_thread.run_sync(_read_path_head, path)
    except FileNotFoundError:
        _refuse(param, f"no such file: {path!r}")
    except IsADirectoryError:
        _refuse(param, f"{path!r} is a directory, not an image file")
    except PermissionError:
        _refuse(param, f"cannot read {path!r}: permission denied")
    except _SpecialFileError:
        _refuse(param, f"{path!r} is not a regular file; pass an open binary file instead")
    except OSError as error:
        _refuse(param, f"cannot read {path!r}: {error.strerror or error}")
    return _Probe(head, size, _PathContent(path, size), os.path.basename(path), repr(path))


def _read_path_head(path: str) -> tuple[bytes, int]:
    # Stat first: opening a FIFO would block until a writer appears.
    mode = os.stat(path).st_mode
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
    if not stat.S_ISREG(mode):
        raise _SpecialFileError(errno.EINVAL, "not a regular file", path)
    with open(path, "rb") as file:
        size = os.fstat(file.fileno()).st_size
        return _read_head(file.read), size


async def _probe_file(file: IO[bytes], *, param: str) -> _Probe:
    raw_name = getattr(file, "name", None)
    name = (os.path.basename(raw_name) or None) if isinstance(raw_name, str) else None
    label = f"the file object {raw_name!r}" if isinstance(raw_name, str) else "the file object"
    if getattr(file, "closed", False) is True:
        _refuse(param, f"{label} is closed")
    try:
        if _is_seekable(file):
            head, start, size = await anyio.to_thread.run_sync(_read_seekable_head, file)
            return _Probe(head, size, _SeekableContent(file, start, size, label), name, label)
        head = await anyio.to_thread.run_sync(_read_head, file.read)
    except io.UnsupportedOperation:
        _refuse(param, f"{label} is not open for reading")
    except PermissionError:
        _refuse(param, f"cannot read {label}: permission denied")
    except OSError as error:
        _refuse(param, f"cannot read {label}: {error.strerror or error}")
    return _Probe(head, None, _OneShotContent(file, head, label), name, label)


def _is_seekable(file: IO[bytes]) -> bool:
    try:
        return bool(file.seekable())
    except (AttributeError, OSError, ValueError):
        return False


def _read_seekable_head(file: IO[bytes]) -> tuple[bytes, int, int]:
    start = file.tell()
    end = file.seek(0, os.SEEK_END)
    file.seek(start)
    head = _read_head(file.read)
    file.seek(start)
    return head, start, max(end - start, 0)


def _read_head(read: Callable[[int], bytes]) -> bytes:
    # Unbuffered (raw) readers may return less than asked for before the end.
    parts: list[bytes] = []
    got = 0
    while got < HEAD_BYTES:
        part = read(HEAD_BYTES - got)
        if isinstance(part, str):
            raise TypeError("the file object is open in text mode; open it with 'rb'")
        if not part:
            break
        parts.append(part)
        got += len(part)
    return b"".join(parts)


async def _read_sized(
    read: Callable[[int], bytes], size: int, chunk_size: int, label: str
) -> AsyncGenerator[bytes, None]:
    # The body's Content-Length was computed from the size seen when resolving: sending
    # fewer or more bytes would corrupt the request, so a changed file is an error.
    left = size
    while left > 0:
        chunk = await anyio.to_thread.run_sync(read, min(chunk_size, left))
        if not chunk:
            raise RuntimeError(f"{label} shrank from {size} to {size - left} bytes while uploading")
        left -= len(chunk)
        yield chunk
    if await anyio.to_thread.run_sync(read, 1):
        raise RuntimeError(f"{label} grew beyond {size} bytes while uploading")


def _read_exactly(read: Callable[[int], bytes], size: int, label: str) -> bytes:
    """All ``size`` bytes at once, with ``_read_sized``'s checks (in a worker thread)."""
    parts: list[bytes] = []
    left = size
    while left > 0:
        part = read(left)
        if not part:
            raise RuntimeError(f"{label} shrank from {size} to {size - left} bytes while uploading")
        parts.append(part)
        left -= len(part)
    if read(1):
        raise RuntimeError(f"{label} grew beyond {size} bytes while uploading")
    return b"".join(parts)


@attrs.frozen
class _BytesContent:
    data: bytes = attrs.field(repr=False)
    replayable: ClassVar[bool] = True

    async def chunks(self, chunk_size: int) -> AsyncGenerator[bytes, None]:
        # A full-length slice of bytes is the object itself; shorter ones copy one chunk.
        for start in range(0, len(self.data), chunk_size):
            yield self.data[start : start + chunk_size]


@attrs.frozen
class _PathContent:
    path: str
    size: int
    replayable: ClassVar[bool] = True

    async def chunks(self, chunk_size: int) -> AsyncGenerator[bytes, None]:
        if self.size <= chunk_size:
            # Opened, read and closed in one worker-thread hop instead of three or more:
            # the hops, not the reading, are what a small file costs.
            data = await anyio.to_thread.run_sync(self._read_small)
            if data:
                yield data
            return
        # A cancellation that lands while the worker thread is opening the file discards
        # run_sync's result once the thread is done, so the thread leaves the file here.
        opened: list[IO[bytes]] = []

        def open_file() -> None:
            opened.append(open(self.path, "rb"))  # noqa: SIM115  # closed in finally below

        try:
            await anyio.to_thread.run_sync(open_file)
            async with aclosing(
                _read_sized(opened[0].read, self.size, chunk_size, repr(self.path))
            ) as chunks:
                async for chunk in chunks:
                    yield chunk
        finally:
            # Closing a file opened for reading does not block, and it must happen even
            # when the generator is cancelled, where awaiting a worker thread is not possible.
            for file in opened:
                file.close()

    def _read_small(self) -> bytes:
        with open(self.path, "rb") as file:
            return _read_exactly(file.read, self.size, repr(self.path))


@attrs.frozen
class _SeekableContent:
    file: IO[bytes] = attrs.field(repr=False)
    start: int
    size: int
    label: str
    replayable: ClassVar[bool] = True

    async def chunks(self, chunk_size: int) -> AsyncGenerator[bytes, None]:
        if self.size <= chunk_size:
            # One worker-thread hop for a small file, as for a path.
            data = await anyio.to_thread.run_sync(self._read_small)
            if data:
                yield data
            return
        await anyio.to_thread.run_sync(self.file.seek, self.start)
        async with aclosing(
            _read_sized(self.file.read, self.size, chunk_size, self.label)
        ) as chunks:
            async for chunk in chunks:
                yield chunk

    def _read_small(self) -> bytes:
        self.file.seek(self.start)
        return _read_exactly(self.file.read, self.size, self.label)


@attrs.define
class _OneShotContent:
    file: IO[bytes] = attrs.field(repr=False)
    head: bytes = attrs.field(repr=False)
    label: str
    replayable: ClassVar[bool] = False
    _used: bool = False

    async def chunks(self, chunk_size: int) -> AsyncGenerator[bytes, None]:
        if self._used:
            raise RuntimeError(
                f"{self.label} is a one-shot stream and cannot be replayed; pass a path, "
                "bytes or a seekable file to allow retries"
            )
        self._used = True
        for start in range(0, len(self.head), chunk_size):
            yield self.head[start : start + chunk_size]
        while chunk := await anyio.to_thread.run_sync(self.file.read, chunk_size):
            yield chunk
