"""Small valid image files for tests, made without Pillow (so client tests need no extra)."""

from __future__ import annotations

import struct
import zlib


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def make_png(width: int, height: int, *, alpha: bool = False, shade: int = 0) -> bytes:
    """A valid PNG of one flat colour (RGBA with alpha 0 when ``alpha``)."""
    channels = 4 if alpha else 3
    pixel = bytes([shade % 256, 100, 200, 0][:channels])
    raw = b"".join(b"\x00" + pixel * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 6 if alpha else 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(raw))
        + _chunk(b"IEND", b"")
    )
