"""What an image file is, read from its first bytes (sans-I/O).

The API wants a real image content type on every file part and refuses
``application/octet-stream``, and several rules (square PNGs for dall-e-2, a mask the size
of the image) need the dimensions. Both come from the header, so nobody has to decode a
50 MB upload, and the client does not need Pillow.
"""

from __future__ import annotations

import re
import struct

import attrs

__all__ = [
    "EXTENSIONS",
    "HEAD_BYTES",
    "ImageInfo",
    "format_extension",
    "image_extension",
    "sniff",
]

HEAD_BYTES = 64 * 1024
"""How much of a file ``sniff`` wants to see: enough for JPEG's EXIF before its SOF."""

EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}
"""The file extension (without its dot) for each image type the API takes."""

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# An SVG document: optional BOM, XML declaration, comments or doctype, then <svg.
_SVG_START = re.compile(
    rb"^(?:\xef\xbb\xbf)?\s*(?:<\?xml[^>]*>\s*)?(?:<!--.*?-->\s*|<!DOCTYPE[^>]*>\s*)*<svg[\s>/]",
    re.S,
)
# JPEG start-of-frame markers carry the dimensions; C4 (DHT), C8 and CC are not frames.
_JPEG_SOF = frozenset(
    {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
)


@attrs.frozen(kw_only=True)
class ImageInfo:
    """The facts about one input image that the rules need.

    Attributes:
        filename: The name sent in the part's ``Content-Disposition``.
        content_type: ``image/png``, ``image/jpeg`` or ``image/webp``; ``None`` if not an image.
        size: The size in bytes, when known before reading it all.
        width: Pixels across, when the header says.
        height: Pixels down, when the header says.
        has_alpha: Whether the image has an alpha channel, when the header says.
    """

    filename: str
    content_type: str | None
    size: int | None = None
    width: int | None = None
    height: int | None = None
    has_alpha: bool | None = None


@attrs.frozen
class _Sniffed:
    content_type: str | None
    width: int | None = None
    height: int | None = None
    has_alpha: bool | None = None


def sniff(head: bytes, *, filename: str, size: int | None = None) -> ImageInfo:
    """Describe an image from its first bytes (ideally ``HEAD_BYTES`` of them).

    Example:
        >>> png = bytes.fromhex("89504e470d0a1a0a0000000d49484452000000100000000808060000001f")
        >>> info = sniff(png, filename="a.png")
        >>> (info.content_type, info.width, info.height, info.has_alpha)
        ('image/png', 16, 8, True)
    """
    if head.startswith(_PNG_SIGNATURE):
        found = _sniff_png(head)
    elif head.startswith(b"\xff\xd8\xff"):
        found = _sniff_jpeg(head)
    elif head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        found = _sniff_webp(head)
    else:
        found = _Sniffed(None)
    return ImageInfo(
        filename=filename,
        content_type=found.content_type,
        size=size,
        width=found.width,
        height=found.height,
        has_alpha=found.has_alpha,
    )


def _sniff_png(head: bytes) -> _Sniffed:
    if len(head) < 26 or head[12:16] != b"IHDR":
        return _Sniffed("image/png")
    width, height = struct.unpack(">II", head[16:24])
    color_type = head[25]
    has_alpha: bool | None = color_type in (4, 6)
    if not has_alpha:
        # Palette and grey images get transparency from a tRNS chunk before the first IDAT.
        has_alpha = _png_has_trns(head)
    return _Sniffed("image/png", width, height, has_alpha)


def _png_has_trns(head: bytes) -> bool | None:
    pos = 8
    while pos + 8 <= len(head):
        (length,) = struct.unpack(">I", head[pos : pos + 4])
        kind = head[pos + 4 : pos + 8]
        if kind == b"tRNS":
            return True
        if kind in (b"IDAT", b"IEND"):
            return False
        pos += 12 + length
    return None


def _sniff_jpeg(head: bytes) -> _Sniffed:
    pos = 2
    while pos + 4 <= len(head):
        if head[pos] != 0xFF:
            return _Sniffed("image/jpeg")
        marker = head[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # markers without a length
            pos += 2
            continue
        (length,) = struct.unpack(">H", head[pos + 2 : pos + 4])
        if marker in _JPEG_SOF and pos + 9 <= len(head):
            height, width = struct.unpack(">HH", head[pos + 5 : pos + 9])
            return _Sniffed("image/jpeg", width, height, False)
        if marker == 0xDA:  # start of scan: no frame header came first
            break
        pos += 2 + length
    return _Sniffed("image/jpeg")


def _sniff_webp(head: bytes) -> _Sniffed:
    chunk = head[12:16]
    body = head[20:]
    if chunk == b"VP8X" and len(body) >= 10:
        has_alpha = bool(body[0] & 0x10)
        width = 1 + int.from_bytes(body[4:7], "little")
        height = 1 + int.from_bytes(body[7:10], "little")
        return _Sniffed("image/webp", width, height, has_alpha)
    if chunk == b"VP8L" and len(body) >= 5 and body[0] == 0x2F:
        bits = int.from_bytes(body[1:5], "little")
        width = (bits & 0x3FFF) + 1
        height = ((bits >> 14) & 0x3FFF) + 1
        has_alpha = bool((bits >> 28) & 1)
        return _Sniffed("image/webp", width, height, has_alpha)
    if chunk == b"VP8 " and len(body) >= 10 and body[3:6] == b"\x9d\x01\x2a":
        width = int.from_bytes(body[6:8], "little") & 0x3FFF
        height = int.from_bytes(body[8:10], "little") & 0x3FFF
        return _Sniffed("image/webp", width, height, False)
    return _Sniffed("image/webp")


def format_extension(output_format: str | None, *, fallback: str = "png") -> str:
    """The file extension for the API's ``output_format`` (``"jpeg"`` is ``"jpg"``).

    Example:
        >>> format_extension("jpeg"), format_extension(None)
        ('jpg', 'png')
    """
    if not output_format:
        return fallback
    name = output_format.lower()
    known = EXTENSIONS.get(f"image/{name}")
    if known is not None:
        return known
    # A format newer than this library: its name is the best guess, if it is a safe one.
    return name if name.isascii() and name.isalnum() else fallback


def image_extension(data: bytes, *, output_format: str | None = None, fallback: str = "png") -> str:
    """The file extension for an image's bytes: from their header, else the API's format.

    Example:
        >>> image_extension(b"\\xff\\xd8\\xff\\xe0")
        'jpg'
        >>> image_extension(b"?", output_format="webp")
        'webp'
        >>> image_extension(b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>')
        'svg'
    """
    content_type = sniff(data[:HEAD_BYTES], filename="").content_type
    if content_type is not None:
        return EXTENSIONS[content_type]
    # Output formats that are never inputs: an animated GIF, an SVG document.
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if _SVG_START.match(data[:1024]):
        return "svg"
    return format_extension(output_format, fallback=fallback)
