"""Typed responses and stream events, built from the API's JSON by the converter.

Every class tolerates what a newer API may send: unknown fields are ignored and enum-like
fields are plain strings, so a new size or format never breaks parsing.
"""

from __future__ import annotations

import base64
import binascii
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeAlias

import attrs

from ._errors import InvalidImageDataError
from ._sniff import image_extension

__all__ = [
    "Image",
    "ImageEditCompletedEvent",
    "ImageEditPartialImageEvent",
    "ImageEditStreamEvent",
    "ImageGenCompletedEvent",
    "ImageGenPartialImageEvent",
    "ImageGenStreamEvent",
    "ImagesResponse",
    "InputTokensDetails",
    "OutputTokensDetails",
    "SvgUsage",
    "Usage",
    "write_atomically",
]


def _read_umask() -> int:
    # os.umask can only be read by setting it; done once, at import, before any threads.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_read_umask()


def write_atomically(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename.

    A crash part-way leaves either the old file or none, never half an image. The file
    gets the permissions a plain ``open(path, "wb")`` would give it.
    """
    target = Path(path)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as tmp:
            # mkstemp makes owner-only files; a saved image should not be.
            os.fchmod(tmp.fileno(), _FILE_MODE)
            tmp.write(data)
        os.replace(tmp_name, target)
    except BaseException:
        os.unlink(tmp_name)
        raise
    return target


def _b64_repr(value: str | None) -> str:
    # Megabytes of base64 would drown a repr; a url result has none at all.
    return "None" if value is None else f"<{len(value)} chars>"


class _HasImageData:
    """``content()``, ``text()`` and ``save()`` for anything that carries ``b64_json``."""

    b64_json: str | None
    output_format: str | None

    def content(self) -> bytes:
        """The image's bytes, decoded from ``b64_json`` (an SVG's UTF-8 text).

        Raises:
            ValueError: The result is a ``url`` (use ``await client.download(image)``).
            InvalidImageDataError: ``b64_json`` is not valid base64 (decoding is strict: a
                lenient decoder would drop the bad characters and return a broken image).
        """
        if self.b64_json is None:
            raise ValueError(
                "this image has no b64_json (it is a url result): fetch it with "
                "await client.download(image)"
            )
        try:
            return base64.b64decode(self.b64_json, validate=True)
        except (binascii.Error, ValueError) as exc:
            # ValueError: a str with non-ASCII characters. Neither error holds anything of
            # ours, but the text names the image, which they cannot.
            raise InvalidImageDataError(
                f"{type(self).__name__}.b64_json ({len(self.b64_json)} characters) is not "
                f"valid base64: {exc}",
                status_code=200,
                body=self.b64_json[:200].encode("utf-8", "replace"),
            ) from None

    def text(self) -> str:
        """An SVG result as the text it is.

        Example:
            >>> Image(b64_json="PHN2Zy8+", output_format="svg").text()
            '<svg/>'

        Raises:
            ValueError: The result is not an SVG document, or is a ``url`` result.
        """
        data = self.content()
        extension = self._extension_of(data)
        if extension != "svg":
            raise ValueError(f"this image is {extension}, not SVG text; use content()")
        return data.decode("utf-8")

    @property
    def extension(self) -> str:
        """The file extension its bytes call for (``png``, ``jpg``, ``webp``, ``gif``, ``svg``).

        Read from the bytes themselves, else from ``output_format``.

        Example:
            >>> Image(b64_json="R0lGODlh").extension
            'gif'
        """
        return self._extension_of(self.content())

    def _extension_of(self, data: bytes) -> str:
        # Callers that need the bytes too decode them once and pass them here.
        return image_extension(data, output_format=self.output_format)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the image to ``path`` atomically and return the path written.

        A path without a suffix gets the one the image calls for (``.png``, ``.gif``,
        ``.svg``...); an SVG is written as its text, byte for byte.

        Nothing is written when the data does not decode (see ``content``).

        Example:
            ```python
            Image(b64_json="aGk=").save(tmp_path / "out.png").read_bytes()
            # -> b'hi'
            response.data[0].save("poster")  # -> Path('poster.svg') for an SVG result
            ```
        """
        data = self.content()
        target = Path(path)
        if not target.suffix:
            target = target.with_name(f"{target.name}.{self._extension_of(data)}")
        return write_atomically(target, data)


@attrs.frozen(kw_only=True)
class Image(_HasImageData):
    """One result image: ``b64_json`` (GPT image models, or when asked) or a ``url``.

    Example:
        >>> Image(b64_json="aGk=").content()
        b'hi'
    """

    b64_json: str | None = attrs.field(default=None, repr=_b64_repr)
    url: str | None = None
    revised_prompt: str | None = None
    output_format: str | None = attrs.field(default=None, repr=False)
    """The response's ``output_format``, copied here so the image knows its file type."""


@attrs.frozen(kw_only=True)
class InputTokensDetails:
    """How the input tokens split between text and images."""

    text_tokens: int = 0
    image_tokens: int = 0


@attrs.frozen(kw_only=True)
class OutputTokensDetails:
    """How the output tokens split between text and images."""

    text_tokens: int = 0
    image_tokens: int = 0


@attrs.frozen(kw_only=True)
class Usage:
    """Token counts, sent by GPT image models."""

    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    input_tokens_details: InputTokensDetails | None = None
    output_tokens_details: OutputTokensDetails | None = None


@attrs.frozen(kw_only=True)
class SvgUsage:
    """Token counts of the SVG author (``output_format="svg"``), apart from ``usage``."""

    model: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    total_tokens: int = 0


@attrs.frozen(kw_only=True)
class ImagesResponse:
    """The answer of all three endpoints.

    Attributes:
        created: When the images were made, in Unix seconds.
        data: The images, in order.
        usage: Token counts (GPT image models).
        svg_usage: The SVG author's token counts (SVG output).
        safety_identifier: The end-user id the API used: the request's
            ``safety_identifier``, else its ``user``.
        request_id: The response's ``x-request-id``, for support tickets and logs.
        headers: All response headers, rate-limit headers included.
        raw: The JSON body as it arrived, for fields this library does not model yet.

    Example:
        ```python
        response = await client.generate(prompt="a fox", model="gpt-image-2.5-flare")
        response.raw.get("a_field_from_next_year")
        ```
    """

    created: int
    data: tuple[Image, ...] = ()
    background: str | None = None
    output_format: str | None = None
    quality: str | None = None
    size: str | None = None
    usage: Usage | None = None
    svg_usage: SvgUsage | None = None
    safety_identifier: str | None = None
    request_id: str | None = attrs.field(default=None, eq=False)
    headers: Mapping[str, str] = attrs.field(factory=dict, eq=False, repr=False)
    raw: Mapping[str, Any] = attrs.field(factory=dict, eq=False, repr=False)


@attrs.frozen(kw_only=True)
class _StreamEventBase(_HasImageData):
    type: str
    b64_json: str | None = attrs.field(default=None, repr=_b64_repr)
    created_at: int | None = None
    size: str | None = None
    quality: str | None = None
    background: str | None = None
    output_format: str | None = None


@attrs.frozen(kw_only=True)
class ImageGenPartialImageEvent(_StreamEventBase):
    """A partial image of a streamed generation (``image_generation.partial_image``)."""

    type: str = "image_generation.partial_image"
    partial_image_index: int = 0


@attrs.frozen(kw_only=True)
class ImageGenCompletedEvent(_StreamEventBase):
    """The final image of a streamed generation (``image_generation.completed``)."""

    type: str = "image_generation.completed"
    usage: Usage | None = None
    safety_identifier: str | None = None


@attrs.frozen(kw_only=True)
class ImageEditPartialImageEvent(_StreamEventBase):
    """A partial image of a streamed edit (``image_edit.partial_image``)."""

    type: str = "image_edit.partial_image"
    partial_image_index: int = 0


@attrs.frozen(kw_only=True)
class ImageEditCompletedEvent(_StreamEventBase):
    """The final image of a streamed edit (``image_edit.completed``)."""

    type: str = "image_edit.completed"
    usage: Usage | None = None
    safety_identifier: str | None = None


ImageGenStreamEvent: TypeAlias = ImageGenPartialImageEvent | ImageGenCompletedEvent
"""An event of a streamed generation: a partial image or the completed one."""

ImageEditStreamEvent: TypeAlias = ImageEditPartialImageEvent | ImageEditCompletedEvent
"""An event of a streamed edit: a partial image or the completed one."""

EVENT_CLASSES: dict[str, type[_StreamEventBase]] = {
    "image_generation.partial_image": ImageGenPartialImageEvent,
    "image_generation.completed": ImageGenCompletedEvent,
    "image_edit.partial_image": ImageEditPartialImageEvent,
    "image_edit.completed": ImageEditCompletedEvent,
}
