"""Tests for openai_images._sniff: type, dimensions and alpha from real files' first bytes."""

from __future__ import annotations

import io
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image, PngImagePlugin

from openai_images._sniff import HEAD_BYTES, sniff


def encode(image: Image.Image, fmt: str, **options: Any) -> bytes:
    """Save a Pillow image to bytes."""
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def facts(data: bytes) -> tuple[str | None, int | None, int | None, bool | None]:
    """What sniff reads from the first HEAD_BYTES of ``data``."""
    info = sniff(data[:HEAD_BYTES], filename="x", size=len(data))
    return info.content_type, info.width, info.height, info.has_alpha


RGB = Image.new("RGB", (7, 5), (10, 20, 30))
RGBA = Image.new("RGBA", (7, 5), (10, 20, 30, 0))


@pytest.mark.parametrize(
    ("image", "options", "alpha"),
    [
        pytest.param(RGB, {}, False, id="rgb"),
        pytest.param(RGBA, {}, True, id="rgba"),
        pytest.param(Image.new("L", (7, 5)), {}, False, id="grey"),
        pytest.param(Image.new("LA", (7, 5)), {}, True, id="grey-alpha"),
        pytest.param(Image.new("P", (7, 5)), {}, False, id="palette"),
        pytest.param(Image.new("P", (7, 5)), {"transparency": 0}, True, id="palette-trns"),
        pytest.param(RGB, {"transparency": (10, 20, 30)}, True, id="rgb-trns"),
    ],
)
def test_png(image: Image.Image, options: dict[str, Any], alpha: bool) -> None:
    """PNGs of every colour type give their size, and alpha from the type or a tRNS chunk."""
    assert facts(encode(image, "PNG", **options)) == ("image/png", 7, 5, alpha)


def test_png_alpha_unknown_when_the_head_ends_before_the_pixels() -> None:
    """A text chunk longer than the head hides whether a tRNS follows: alpha is unknown."""
    text = PngImagePlugin.PngInfo()
    text.add_text("comment", "y" * (HEAD_BYTES + 1000))
    assert facts(encode(RGB, "PNG", pnginfo=text)) == ("image/png", 7, 5, None)


def test_png_signature_without_header() -> None:
    """A bare PNG signature is a PNG of unknown size."""
    assert facts(b"\x89PNG\r\n\x1a\n") == ("image/png", None, None, None)


@pytest.mark.parametrize(
    ("image", "options"),
    [
        pytest.param(RGB, {}, id="baseline"),
        pytest.param(RGB, {"progressive": True}, id="progressive"),
        pytest.param(Image.new("L", (7, 5)), {}, id="grey"),
        pytest.param(Image.new("CMYK", (7, 5)), {}, id="cmyk"),
    ],
)
def test_jpeg(image: Image.Image, options: dict[str, Any]) -> None:
    """Baseline, progressive, grey and CMYK JPEGs give their size and no alpha."""
    assert facts(encode(image, "JPEG", **options)) == ("image/jpeg", 7, 5, False)


def test_jpeg_with_a_big_exif_block_before_the_frame() -> None:
    """A 60 KB EXIF block before the start-of-frame is skipped, inside the 64 KiB head."""
    exif = Image.Exif()
    exif[0x010E] = "x" * 60_000  # ImageDescription
    data = encode(RGB, "JPEG", exif=exif)
    assert 60_000 < data.find(b"\xff\xc0") < HEAD_BYTES
    assert facts(data) == ("image/jpeg", 7, 5, False)


def test_jpeg_frame_beyond_the_head() -> None:
    """When the head ends inside the EXIF block, it is still a JPEG, of unknown size."""
    exif = Image.Exif()
    exif[0x010E] = "x" * 60_000
    data = encode(RGB, "JPEG", exif=exif)
    assert sniff(data[:30_000], filename="x").content_type == "image/jpeg"
    assert sniff(data[:30_000], filename="x").width is None


@pytest.mark.parametrize(
    ("image", "options", "chunk", "alpha"),
    [
        pytest.param(RGB, {"lossless": False}, b"VP8 ", False, id="lossy"),
        pytest.param(RGB, {"lossless": True}, b"VP8L", False, id="lossless"),
        pytest.param(RGBA, {"lossless": True}, b"VP8L", True, id="lossless-alpha"),
        pytest.param(RGBA, {"lossless": False}, b"VP8X", True, id="lossy-alpha"),
    ],
)
def test_webp(image: Image.Image, options: dict[str, Any], chunk: bytes, alpha: bool) -> None:
    """Lossy (VP8), lossless (VP8L) and extended (VP8X) WebPs give size and alpha."""
    data = encode(image, "WEBP", **options)
    assert data[12:16] == chunk
    assert facts(data) == ("image/webp", 7, 5, alpha)


@pytest.mark.parametrize(
    "data",
    [b"", b"hello, world", b"GIF89a\x07\x00\x05\x00", b"RIFF\x00\x00\x00\x00WAVEfmt ", b"\xff\xd8"],
)
def test_not_an_image(data: bytes) -> None:
    """Text, GIF, WAV and a cut JPEG marker are not images the API takes."""
    info = sniff(data, filename="notes.txt", size=len(data))
    assert info.content_type is None
    assert (info.filename, info.size) == ("notes.txt", len(data))


@given(st.binary(max_size=300))
def test_sniff_never_raises_on_arbitrary_bytes(data: bytes) -> None:
    """Any bytes at all give an ImageInfo, never an exception."""
    sniff(data, filename="x")


@given(
    st.sampled_from(
        [
            b"\x89PNG\r\n\x1a\n",
            b"\xff\xd8\xff",
            b"RIFF\x00\x00\x00\x00WEBPVP8 ",
            b"RIFF\x00\x00\x00\x00WEBPVP8L",
            b"RIFF\x00\x00\x00\x00WEBPVP8X",
        ]
    ),
    st.binary(max_size=300),
)
def test_sniff_never_raises_after_a_signature(signature: bytes, rest: bytes) -> None:
    """Garbage after a real signature reaches the format parsers and still never raises."""
    info = sniff(signature + rest, filename="x")
    assert info.content_type is not None
