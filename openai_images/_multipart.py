"""``multipart/form-data`` bodies that stream their files instead of loading them.

``MultipartEncoder`` is sans-I/O: it only turns names, values and file headers into
bytes, so it is tested byte for byte. ``build_multipart`` lays a request's fields and
``ImageSource`` files out as a ``MultipartBody``, whose
``stream`` reads each file in chunks while the body is sent, and can
start again for a retry when every source can.

Example:
    >>> enc = MultipartEncoder(boundary="b")
    >>> enc.field("n", 2) + enc.close()
    b'--b\\r\\nContent-Disposition: form-data; name="n"\\r\\n\\r\\n2\\r\\n--b--\\r\\n'
"""

from __future__ import annotations

import math
import re
import secrets
from collections.abc import AsyncGenerator, Iterator, Mapping, Sequence
from contextlib import aclosing
from typing import Any

import attrs

from ._errors import RequestValidationError, Violation
from ._inputs import DEFAULT_CHUNK_SIZE, ImageSource

__all__ = ["MultipartBody", "MultipartEncoder", "build_multipart", "flatten_fields"]

# RFC 2046 bchars, at most 70 of them, not ending in a space.
_BOUNDARY = re.compile(r"[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]")
_QUOTED = str.maketrans({"\\": "\\\\", '"': '\\"', "\r": "%0D", "\n": "%0A"})


class MultipartEncoder:
    """Encodes the pieces of one ``multipart/form-data`` body (sans-I/O).

    A body is the text parts from ``field``, then for each file ``file_header``,
    the file's bytes and ``file_footer``, and last ``close``.

    Args:
        boundary: The part delimiter; random unless given (tests pin it).

    Example:
        >>> enc = MultipartEncoder(boundary="xyz")
        >>> for line in enc.file_header("image", "cat.png", "image/png").split(b"\\r\\n"):
        ...     print(line.decode())
        --xyz
        Content-Disposition: form-data; name="image"; filename="cat.png"
        Content-Type: image/png
        <BLANKLINE>
        <BLANKLINE>
    """

    def __init__(self, *, boundary: str | None = None) -> None:
        if boundary is None:
            boundary = secrets.token_hex(16)
        elif not _BOUNDARY.fullmatch(boundary):
            raise ValueError(f"{boundary!r} is not a valid multipart boundary")
        self.boundary = boundary
        self._delimiter = f"--{boundary}".encode("ascii")

    @property
    def content_type(self) -> str:
        """The body's ``Content-Type`` header value, boundary included."""
        return f"multipart/form-data; boundary={self.boundary}"

    def field(self, name: str, value: str | int | bool | float) -> bytes:
        """A whole text part: no ``Content-Type``; ints in decimal, bools ``true``/``false``.

        Raises:
            ValueError: The value is a NaN or an infinity, or contains the boundary.
            TypeError: The value is not a str, int, bool or float.
        """
        text = _field_text(name, value).encode("utf-8")
        if self._delimiter in text:
            raise ValueError(f"the value of {name!r} contains the multipart boundary")
        return self._part_head(name) + b"\r\n" + text + b"\r\n"

    def file_header(self, name: str, filename: str, content_type: str) -> bytes:
        """A file part's delimiter line and headers, up to and including the blank line."""
        if "\r" in content_type or "\n" in content_type:
            raise ValueError(f"{content_type!r} is not a valid content type")
        return self._part_head(
            name, filename=filename
        ) + f"Content-Type: {content_type}\r\n\r\n".encode("ascii")

    def file_footer(self) -> bytes:
        """What ends a file part's content: the line break before the next delimiter."""
        return b"\r\n"

    def close(self) -> bytes:
        """The closing delimiter that ends the body."""
        return self._delimiter + b"--\r\n"

    def content_length(
        self, *, fields: Sequence[bytes], files: Sequence[tuple[bytes, int | None]]
    ) -> int | None:
        """The whole body's length, or ``None`` when some file's size is unknown.

        Args:
            fields: The encoded text parts (from ``field``).
            files: Each file part's encoded header (from ``file_header``) and its
                content's size.

        Example:
            >>> enc = MultipartEncoder(boundary="b")
            >>> enc.content_length(fields=[enc.field("n", 1)], files=[])
            59
        """
        total = sum(len(part) for part in fields) + len(self.close())
        for header, size in files:
            if size is None:
                return None
            total += len(header) + size + len(self.file_footer())
        return total

    def _part_head(self, name: str, *, filename: str | None = None) -> bytes:
        disposition = f'form-data; name="{_quote(name)}"'
        if filename is not None:
            disposition += f'; filename="{_quote(filename)}"'
        # "replace": a file name from a path whose bytes are not UTF-8 holds lone surrogates.
        head = f"\r\nContent-Disposition: {disposition}\r\n"
        return self._delimiter + head.encode("utf-8", "replace")


def _quote(text: str) -> str:
    # As browsers do: UTF-8 inside the quotes, and line breaks percent-encoded so that a
    # name can never end the header; quotes and backslashes escaped as RFC 9110 quoted-pairs.
    return text.translate(_QUOTED)


def _field_text(name: str, value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int)):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{name} cannot be {value}")
        return repr(value)
    raise TypeError(
        f"{name} must be a str, int, bool or float in a multipart body, not {type(value).__name__}"
    )


@attrs.frozen(kw_only=True)
class MultipartBody:
    """A ``multipart/form-data`` body whose files are read only while it is sent.

    Attributes:
        content_type: The ``Content-Type`` header value, boundary included.
        content_length: The body's length in bytes, or ``None`` when a file's size is
            unknown (then it goes with chunked transfer encoding).
        replayable: Whether ``stream`` can run again (for a retry).
    """

    content_type: str
    content_length: int | None
    replayable: bool
    # Encoded text (delimiters, headers, text parts) and, between them, file sources with
    # the request field each belongs to ("image", "image[2]", "mask").
    _parts: tuple[bytes | tuple[str, ImageSource], ...] = attrs.field(alias="parts", repr=False)

    async def stream(self, *, chunk_size: int = DEFAULT_CHUNK_SIZE) -> AsyncGenerator[bytes, None]:
        """Yield the whole body, no chunk longer than ``chunk_size``.

        Consecutive text pieces go out together, so a small field does not cost a write,
        and a body no longer than ``chunk_size`` goes out whole, in one.

        Raises:
            RequestValidationError: A file can no longer be read (deleted or unreadable
                since it was checked).
            RuntimeError: The body holds a one-shot stream that was already sent, or a file
                changed size since it was checked.
        """
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be at least 1, not {chunk_size}")
        if self.content_length is not None and self.content_length <= chunk_size:
            # Each chunk costs the sender a system call and a pass through its writer: for
            # a small edit, that was most of what sending the body cost.
            whole: list[bytes] = []
            for part in self._parts:
                if isinstance(part, bytes):
                    whole.append(part)
                    continue
                async with aclosing(_file_chunks(*part, chunk_size=chunk_size)) as chunks:
                    async for chunk in chunks:
                        whole.append(chunk)
            yield b"".join(whole)
            return
        pending: list[bytes] = []
        for part in self._parts:
            if isinstance(part, bytes):
                pending.append(part)
                continue
            for piece in _slices(b"".join(pending), chunk_size):
                yield piece
            pending.clear()
            async with aclosing(_file_chunks(*part, chunk_size=chunk_size)) as chunks:
                async for chunk in chunks:
                    yield chunk
        for piece in _slices(b"".join(pending), chunk_size):
            yield piece


async def _file_chunks(
    param: str, source: ImageSource, *, chunk_size: int
) -> AsyncGenerator[bytes, None]:
    """A file part's content; a file that fails to read is the caller's, named by ``param``."""
    try:
        async with aclosing(source.chunks(chunk_size=chunk_size)) as chunks:
            async for chunk in chunks:
                yield chunk
    except OSError as error:
        # The caller's file, not the connection, failed: say so, and do not retry.
        message = f"{source.info.filename!r} could not be read for the upload: {error}"
        raise RequestValidationError([Violation(param=param, message=message)]) from error


def _slices(data: bytes, size: int) -> Iterator[bytes]:
    return (data[start : start + size] for start in range(0, len(data), size))


def flatten_fields(fields: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    """A request's wire fields as form fields: nested objects become bracketed names.

    ``None`` values are left out at every level, as the official SDK does.

    Example:
        >>> list(flatten_fields({"n": 1, "svg": {"model": "m", "reasoning": {"effort": "low"}}}))
        [('n', 1), ('svg[model]', 'm'), ('svg[reasoning][effort]', 'low')]
    """
    for name, value in fields.items():
        if value is None:
            continue
        if isinstance(value, Mapping):
            yield from flatten_fields({f"{name}[{key}]": item for key, item in value.items()})
        else:
            yield name, value


def build_multipart(
    *,
    fields: Mapping[str, Any],
    files: Sequence[tuple[str, ImageSource]],
    boundary: str | None = None,
) -> MultipartBody:
    """Lay out a request's text fields and files as a streaming multipart body.

    Args:
        fields: The request's wire fields (``request_fields(request)``); ``None`` values
            are left out, nested objects go as bracketed fields (``svg[model]``).
        files: ``(part name, source)`` pairs in order: ``image`` for a single input,
            ``image[]`` for each of a list, ``mask``, ``markup``.
        boundary: A fixed boundary (for tests); random otherwise.

    Example:
        >>> body = build_multipart(fields={"prompt": "a cat", "n": 1}, files=[], boundary="b")
        >>> (body.content_type, body.content_length, body.replayable)
        ('multipart/form-data; boundary=b', 120, True)
    """
    encoder = MultipartEncoder(boundary=boundary)
    text_parts = [encoder.field(name, value) for name, value in flatten_fields(fields)]
    parts: list[bytes | tuple[str, ImageSource]] = list(text_parts)
    file_parts: list[tuple[bytes, int | None]] = []
    listed = 0
    for name, source in files:
        content_type = source.info.content_type
        if content_type is None:
            raise ValueError(f"{source.info.filename!r} has no content type")
        header = encoder.file_header(name, source.info.filename, content_type)
        file_parts.append((header, source.info.size))
        param = name
        if name.endswith("[]"):
            param, listed = f"{name[:-2]}[{listed}]", listed + 1
        parts += [header, (param, source), encoder.file_footer()]
    parts.append(encoder.close())
    return MultipartBody(
        content_type=encoder.content_type,
        content_length=encoder.content_length(fields=text_parts, files=file_parts),
        replayable=all(source.replayable for _, source in files),
        parts=tuple(parts),
    )
