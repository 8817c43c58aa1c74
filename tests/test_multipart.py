"""Tests for openai_images._multipart: the sans-I/O encoder and the streaming body."""

from __future__ import annotations

import email.parser
import email.policy
import gc
import io
import tracemalloc
from email.message import EmailMessage
from pathlib import Path
from typing import IO, Any, cast

import anyio
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from PIL import Image

from openai_images._errors import RequestValidationError
from openai_images._inputs import resolve_image
from openai_images._multipart import MultipartBody, MultipartEncoder, build_multipart

from .resources import OneWayStream, open_fds


def encode(size: tuple[int, int], fmt: str = "PNG", mode: str = "RGBA") -> bytes:
    """A small image made with Pillow."""
    out = io.BytesIO()
    Image.new(mode, size).save(out, fmt)
    return out.getvalue()


PNG = encode((4, 4))
JPEG = encode((4, 4), "JPEG", "RGB")


def parse(content_type: str, body: bytes) -> list[EmailMessage]:
    """The parts of a multipart body, read back by the standard library's parser."""
    head = f"Content-Type: {content_type}\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    assert message.is_multipart()
    assert not message.defects
    return [cast(EmailMessage, part) for part in message.iter_parts()]


def disposition(part: EmailMessage) -> tuple[Any, Any]:
    """A part's form field name and filename."""
    return part.get_param("name", header="content-disposition"), part.get_filename()


async def collect(body: MultipartBody, chunk_size: int = 1024) -> bytes:
    """The whole streamed body, checking that no chunk is longer than asked."""
    out = bytearray()
    async for chunk in body.stream(chunk_size=chunk_size):
        assert 0 < len(chunk) <= chunk_size
        out += chunk
    return bytes(out)


def test_encoder_writes_the_expected_body() -> None:
    """Text parts, a file part and the close, byte for byte as written by hand."""
    enc = MultipartEncoder(boundary="XyZ")
    body = (
        enc.field("prompt", "a cat")
        + enc.field("n", 2)
        + enc.field("stream", True)
        + enc.file_header("image[]", "cat.png", "image/png")
        + b"PNGDATA"
        + enc.file_footer()
        + enc.close()
    )
    assert body == (
        b"--XyZ\r\n"
        b'Content-Disposition: form-data; name="prompt"\r\n'
        b"\r\n"
        b"a cat\r\n"
        b"--XyZ\r\n"
        b'Content-Disposition: form-data; name="n"\r\n'
        b"\r\n"
        b"2\r\n"
        b"--XyZ\r\n"
        b'Content-Disposition: form-data; name="stream"\r\n'
        b"\r\n"
        b"true\r\n"
        b"--XyZ\r\n"
        b'Content-Disposition: form-data; name="image[]"; filename="cat.png"\r\n'
        b"Content-Type: image/png\r\n"
        b"\r\n"
        b"PNGDATA\r\n"
        b"--XyZ--\r\n"
    )
    assert enc.content_type == "multipart/form-data; boundary=XyZ"
    parts = parse(enc.content_type, body)
    assert [disposition(part) for part in parts] == [
        ("prompt", None),
        ("n", None),
        ("stream", None),
        ("image[]", "cat.png"),
    ]
    assert parts[3].get_content_type() == "image/png"
    assert [part.get_payload(decode=True) for part in parts] == [
        b"a cat",
        b"2",
        b"true",
        b"PNGDATA",
    ]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (True, b"true"),
        (False, b"false"),
        (0, b"0"),
        (-12, b"-12"),
        (0.5, b"0.5"),
        ("caf\u00e9", "caf\u00e9".encode()),
        ("", b""),
    ],
)
def test_field_values(value: str | int | bool | float, text: bytes) -> None:
    """Booleans are true/false, numbers decimal text, strings UTF-8."""
    enc = MultipartEncoder(boundary="b")
    assert (
        enc.field("x", value)
        == b'--b\r\nContent-Disposition: form-data; name="x"\r\n\r\n' + text + b"\r\n"
    )


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ([1, 2], TypeError),
        (None, TypeError),
        (float("nan"), ValueError),
        ("a\r\n--b\r\n", ValueError),
    ],
)
def test_field_refuses(value: Any, error: type[Exception]) -> None:
    """Lists, None, NaN and a value containing the boundary cannot be a text part."""
    with pytest.raises(error):
        MultipartEncoder(boundary="b").field("x", value)


@pytest.mark.parametrize(
    ("filename", "quoted"),
    [
        ('say "cheese".png', b'say \\"cheese\\".png'),
        ("back\\slash.png", b"back\\\\slash.png"),
        ("two\r\nlines.png", b"two%0D%0Alines.png"),
        ("caf\u00e9 \u732b.png", "caf\u00e9 \u732b.png".encode()),
        ("semi;colon=1.png", b"semi;colon=1.png"),
    ],
)
def test_filename_quoting(filename: str, quoted: bytes) -> None:
    """Quotes and backslashes are escaped, line breaks percent-encoded, the rest UTF-8."""
    enc = MultipartEncoder(boundary="b")
    header = enc.file_header("image", filename, "image/png")
    assert b'; filename="' + quoted + b'"\r\n' in header
    assert header.count(b"\r\n") == 4
    if "\r" not in filename:
        body = header + b"data" + enc.file_footer() + enc.close()
        assert disposition(parse(enc.content_type, body)[0]) == ("image", filename)


def test_field_names_are_quoted_too() -> None:
    """A field name cannot break out of its quotes or its header line."""
    header = MultipartEncoder(boundary="b").field('a"\r\nb', 1)
    assert b'name="a\\"%0D%0Ab"\r\n' in header


@pytest.mark.parametrize("boundary", ["", "a" * 71, "ends in space ", "semi;colon", "new\nline"])
def test_invalid_boundary(boundary: str) -> None:
    """A boundary must be 1..70 allowed characters not ending in a space."""
    with pytest.raises(ValueError, match="boundary"):
        MultipartEncoder(boundary=boundary)


def test_default_boundary_is_random() -> None:
    """Two encoders get different random boundaries."""
    first, second = MultipartEncoder(), MultipartEncoder()
    assert first.boundary != second.boundary
    assert len(first.boundary) == 32


def test_content_type_with_a_line_break_is_refused() -> None:
    """A content type cannot inject headers."""
    with pytest.raises(ValueError, match="content type"):
        MultipartEncoder().file_header("image", "a.png", "image/png\r\nX-Evil: 1")


def test_content_length_is_unknown_with_an_unsized_file() -> None:
    """One file of unknown size makes the whole length unknown."""
    enc = MultipartEncoder()
    header = enc.file_header("image", "a.png", "image/png")
    assert enc.content_length(fields=[], files=[(header, 10), (header, None)]) is None


# Line breaks are percent-encoded (a one-way trip); the email parser strips the spaces
# around a parameter, and unquotes a value once more than the quoting we add (a filename
# '""' or '<a>' reads back as ''/'a'): none of these reads back as given, so names here
# have none (a quirk of the oracle: email.utils.unquote, not of the encoder).
NAMES = st.text(st.characters(exclude_categories=("Cs", "Cc")), min_size=1, max_size=12).filter(
    lambda name: (
        name == name.strip()
        and not (len(name) > 1 and (name[0], name[-1]) in {('"', '"'), ("<", ">")})
    )
)
VALUES = st.one_of(NAMES, st.integers(), st.booleans())
FILES = st.lists(
    st.tuples(
        st.sampled_from(["image", "image[]", "mask"]),
        NAMES,
        st.sampled_from(["image/png", "image/jpeg", "image/webp"]),
        st.binary(max_size=500),
    ),
    max_size=4,
)


@given(fields=st.lists(st.tuples(NAMES, VALUES), max_size=6), files=FILES)
def test_encoder_round_trips_through_the_email_parser(
    fields: list[tuple[str, str | int | bool]], files: list[tuple[str, str, str, bytes]]
) -> None:
    """Any fields and files: content_length is the body's length, and the parts read back."""
    assume(fields or files)  # a multipart body has at least one part
    enc = MultipartEncoder()
    text_parts = [enc.field(name, value) for name, value in fields]
    headers = [enc.file_header(name, filename, kind) for name, filename, kind, _ in files]
    body = b"".join(text_parts)
    for header, (_, _, _, content) in zip(headers, files, strict=True):
        body += header + content + enc.file_footer()
    body += enc.close()
    sizes = [(header, len(file[3])) for header, file in zip(headers, files, strict=True)]
    assert enc.content_length(fields=text_parts, files=sizes) == len(body)

    parts = parse(enc.content_type, body)
    assert len(parts) == len(fields) + len(files)
    for part, (name, value) in zip(parts, fields, strict=False):
        assert disposition(part) == (name, None)
        assert "Content-Type" not in part
        expected = str(value).lower() if isinstance(value, bool) else str(value)
        assert part.get_payload(decode=True) == expected.encode()
    for part, (name, filename, kind, content) in zip(parts[len(fields) :], files, strict=True):
        assert disposition(part) == (name, filename)
        assert part.get_content_type() == kind
        assert part.get_payload(decode=True) == content


@pytest.fixture
def png_path(tmp_path: Path) -> Path:
    """A small PNG on disk."""
    path = tmp_path / "cat.png"
    path.write_bytes(PNG)
    return path


@pytest.mark.anyio
async def test_body_streams_files_and_replays(png_path: Path, tmp_path: Path) -> None:
    """A body over two files and a mask streams in small chunks, and again the same."""
    second = tmp_path / "dog.jpg"
    second.write_bytes(JPEG)
    sources = [await resolve_image(path, param="image") for path in (png_path, second)]
    mask = await resolve_image(PNG, param="mask")
    body = build_multipart(
        fields={"prompt": "two pets", "n": 2, "size": None, "stream": False},
        files=[("image[]", sources[0]), ("image[]", sources[1]), ("mask", mask)],
        boundary="b0undary",
    )
    expected = (
        b'--b0undary\r\nContent-Disposition: form-data; name="prompt"\r\n\r\ntwo pets\r\n'
        b'--b0undary\r\nContent-Disposition: form-data; name="n"\r\n\r\n2\r\n'
        b'--b0undary\r\nContent-Disposition: form-data; name="stream"\r\n\r\nfalse\r\n'
        b'--b0undary\r\nContent-Disposition: form-data; name="image[]"; filename="cat.png"\r\n'
        b"Content-Type: image/png\r\n\r\n" + PNG + b"\r\n"
        b'--b0undary\r\nContent-Disposition: form-data; name="image[]"; filename="dog.jpg"\r\n'
        b"Content-Type: image/jpeg\r\n\r\n" + JPEG + b"\r\n"
        b'--b0undary\r\nContent-Disposition: form-data; name="mask"; filename="image.png"\r\n'
        b"Content-Type: image/png\r\n\r\n" + PNG + b"\r\n"
        b"--b0undary--\r\n"
    )
    assert body.content_type == "multipart/form-data; boundary=b0undary"
    assert body.content_length == len(expected)
    assert body.replayable
    assert await collect(body, chunk_size=33) == expected
    assert await collect(body, chunk_size=100_000) == expected


@pytest.mark.anyio
async def test_a_body_that_fits_in_a_chunk_is_one_piece(png_path: Path) -> None:
    """No longer than a chunk, the body is one piece (one write); a byte longer, several."""
    source = await resolve_image(png_path, param="image")
    body = build_multipart(fields={"prompt": "p"}, files=[("image", source)])
    assert body.content_length is not None
    whole = [chunk async for chunk in body.stream(chunk_size=body.content_length)]
    assert len(whole) == 1
    pieces = [chunk async for chunk in body.stream(chunk_size=body.content_length - 1)]
    assert len(pieces) > 1
    assert b"".join(pieces) == whole[0]


@pytest.mark.anyio
@pytest.mark.parametrize("chunk_size", [10, 100_000], ids=["chunked", "whole"])
async def test_a_file_gone_since_it_was_checked_is_the_callers_error(
    png_path: Path, tmp_path: Path, chunk_size: int
) -> None:
    """A file deleted after the check fails the upload as a validation error naming its
    field, not as a connection error to retry."""
    second = tmp_path / "second.png"
    second.write_bytes(PNG)
    sources = [await resolve_image(path, param="image") for path in (png_path, second)]
    body = build_multipart(fields={}, files=[("image[]", source) for source in sources])
    second.unlink()
    with pytest.raises(RequestValidationError) as caught:
        await collect(body, chunk_size=chunk_size)
    [violation] = caught.value.violations
    assert violation.param == "image[1]"
    assert "'second.png' could not be read for the upload" in violation.message


@pytest.mark.anyio
async def test_body_over_a_file_object_seeks_back() -> None:
    """A body over a seekable file object streams from the same position each time."""
    file = io.BytesIO(b"junk" + PNG)
    file.seek(4)
    source = await resolve_image(file, param="image")
    body = build_multipart(fields={"prompt": "p"}, files=[("image", source)])
    first = await collect(body, chunk_size=50)
    file.seek(0)
    assert await collect(body, chunk_size=50) == first
    assert len(first) == body.content_length
    assert [part.get_payload(decode=True) for part in parse(body.content_type, first)] == [
        b"p",
        PNG,
    ]


@pytest.mark.anyio
async def test_body_over_a_one_shot_stream() -> None:
    """A non-seekable stream makes a body of unknown length that streams only once."""
    data = PNG + bytes(5000)
    source = await resolve_image(cast("IO[bytes]", OneWayStream(data)), param="image")
    body = build_multipart(fields={"prompt": "p"}, files=[("image", source)])
    assert (body.content_length, body.replayable) == (None, False)
    parts = parse(body.content_type, await collect(body))
    assert parts[1].get_payload(decode=True) == data
    with pytest.raises(RuntimeError, match="cannot be replayed"):
        await collect(body)


@pytest.mark.anyio
async def test_fields_only_body() -> None:
    """Without files the body is the text parts and the close, and never unknown in length."""
    body = build_multipart(fields={"prompt": "p", "user": None}, files=[], boundary="b")
    data = await collect(body)
    assert data == b'--b\r\nContent-Disposition: form-data; name="prompt"\r\n\r\np\r\n--b--\r\n'
    assert body.content_length == len(data)


@pytest.mark.anyio
async def test_chunk_size_must_be_positive() -> None:
    """A chunk size of zero is refused."""
    body = build_multipart(fields={"prompt": "p"}, files=[])
    with pytest.raises(ValueError, match="chunk_size"):
        await collect(body, chunk_size=0)


@pytest.mark.anyio
@given(
    fields=st.dictionaries(NAMES, st.one_of(VALUES, st.none()), max_size=5),
    contents=st.lists(st.binary(max_size=3000), max_size=3),
    chunk_size=st.integers(min_value=1, max_value=4096),
)
async def test_streamed_body_matches_the_encoder(
    fields: dict[str, str | int | bool | None], contents: list[bytes], chunk_size: int
) -> None:
    """For any fields and files, the stream is exactly the encoder's pieces in order."""
    sources = [await resolve_image(("f.png", PNG + content), param="image") for content in contents]
    files = [("image[]", source) for source in sources]
    body = build_multipart(fields=fields, files=files, boundary="fixed")
    enc = MultipartEncoder(boundary="fixed")
    expected = b"".join(
        enc.field(name, value) for name, value in fields.items() if value is not None
    )
    for content in contents:
        expected += enc.file_header("image[]", "f.png", "image/png") + PNG + content + b"\r\n"
    expected += enc.close()
    streamed = await collect(body, chunk_size=chunk_size)
    assert streamed == expected
    assert body.content_length == len(expected)


@pytest.fixture
def big_png(tmp_path: Path) -> Path:
    """A 50 MB sparse file that sniffs as a PNG (its header, then zeros)."""
    path = tmp_path / "big.png"
    with path.open("wb") as file:
        file.write(PNG[:33])
        file.truncate(50 * 1024 * 1024)
    return path


@pytest.mark.anyio
async def test_streaming_50_mb_stays_small_in_memory(big_png: Path) -> None:
    """A 50 MB file streams in chunks no bigger than asked, in a few MB of memory at most."""
    chunk_size = 256 * 1024
    source = await resolve_image(big_png, param="image")
    body = build_multipart(fields={"prompt": "big"}, files=[("image", source)])
    assert body.content_length is not None
    assert body.content_length > 50 * 1024 * 1024
    gc.collect()
    tracemalloc.start()
    try:
        total = 0
        biggest = 0
        async for chunk in body.stream(chunk_size=chunk_size):
            total += len(chunk)
            biggest = max(biggest, len(chunk))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total == body.content_length
    assert biggest == chunk_size
    assert peak < 4 * 1024 * 1024


@pytest.mark.anyio
async def test_closing_the_stream_early_closes_the_file(png_path: Path) -> None:
    """Closing the body's generator part-way through a file closes that file."""
    before = open_fds()
    source = await resolve_image(png_path, param="image")
    body = build_multipart(fields={}, files=[("image", source)], boundary="b")
    stream = body.stream(chunk_size=10)
    while await stream.__anext__() != PNG[:10]:  # the part header comes first
        pass
    assert open_fds() == before + 1
    await stream.aclose()
    assert open_fds() == before


@pytest.mark.anyio
async def test_cancelling_the_stream_closes_the_file(png_path: Path) -> None:
    """A consumer cancelled mid-file leaves no file open behind it."""
    before = open_fds()
    source = await resolve_image(png_path, param="image")
    body = build_multipart(fields={}, files=[("image", source)])
    with anyio.CancelScope() as scope:
        stream = body.stream(chunk_size=10)
        async for chunk in stream:
            if chunk == PNG[10:20]:
                scope.cancel()
                await stream.__anext__()
    assert scope.cancelled_caught
    assert open_fds() == before
