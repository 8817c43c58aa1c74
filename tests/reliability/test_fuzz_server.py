"""Fuzzing the local server with malformed multipart forms, JSON bodies and image bytes.

The requests are built part by part and then broken on purpose: headers dropped or
garbled, fields repeated or mistyped, text that is not UTF-8, bodies cut short, boundaries
that do not match, images truncated, corrupted, or claiming billions of pixels. Whatever
arrives, the server answers a success or a 4xx in the API's error shape, never a 5xx, logs
no error, keeps serving, and its memory stays bounded while it reads large hostile bodies.
"""

from __future__ import annotations

import base64
import gc
import io
import logging
import struct
import tracemalloc
import zlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from PIL import Image as PILImage

from openai_images.testing import LocalImagesServer

pytestmark = pytest.mark.anyio

FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
AUTH = {"Authorization": "Bearer sk-fuzz"}


def _encode(fmt: str, size: tuple[int, int] = (16, 16), mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    PILImage.new(mode, size, (200, 40, 40)).save(buffer, format=fmt)
    return buffer.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _bomb_png(width: int, height: int) -> bytes:
    """A small PNG whose header claims ``width`` x ``height`` pixels."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(b"\0" * 4096))
        + _chunk(b"IEND", b"")
    )


PNG = _encode("PNG")
MASK = _encode("PNG", mode="RGBA")

_image_kinds = {
    "png": PNG,
    "jpeg": _encode("JPEG"),
    "webp": _encode("WEBP"),
    "gif": _encode("GIF"),
    "png-truncated": PNG[: len(PNG) // 2],
    "png-signature-only": PNG[:8],
    "png-bad-crc": PNG[:30] + bytes([PNG[30] ^ 0xFF]) + PNG[31:],
    "png-bomb": _bomb_png(50_000, 50_000),
    "png-zero-size": _bomb_png(0, 0),
    "jpeg-header-only": _encode("JPEG")[:20],
    "webp-riff-garbage": b"RIFF\xff\xff\xff\x7fWEBPVP8 " + bytes(16),
    "empty": b"",
}


@st.composite
def image_bytes(draw: st.DrawFn) -> bytes:
    """A real image, a broken one, or random bytes, sometimes with bytes flipped."""
    data = draw(st.one_of(st.sampled_from(sorted(_image_kinds)).map(_image_kinds.get),
                          st.binary(max_size=200)))  # fmt: skip
    assert data is not None
    if data and draw(st.booleans()):
        at = draw(st.integers(0, len(data) - 1))
        data = data[:at] + bytes([data[at] ^ draw(st.integers(1, 255))]) + data[at + 1 :]
    return data


TEXT_VALUES = st.one_of(
    st.sampled_from(["a fox", "dall-e-2", "gpt-image-1.5", "256x256", "1", "2", "true", "url"]),
    st.sampled_from(["", "-1", "1e3", "0x10", "yes", "nan", "256X256", "null", "[]"]),
    st.text(max_size=20),
)
FIELD_NAMES = st.sampled_from(
    ["prompt", "model", "n", "size", "response_format", "user", "quality", "stream",
     "partial_images", "output_format", "background", "input_fidelity", "image", "image[]",
     "mask", "images", "unknown", "", "prompt[]", 'na"me', "na\\me", "é"]
)  # fmt: skip


@st.composite
def part(draw: st.DrawFn) -> bytes:
    """One multipart part, its headers possibly broken."""
    name = draw(FIELD_NAMES)
    is_file = draw(st.booleans())
    lines = []
    disposition = draw(st.sampled_from(["normal", "no-name", "missing", "garbled", "star"]))
    filename = draw(st.sampled_from(["a.png", "", "../../etc/passwd", "x\r\ny", "é.png"]))
    quoted = name.replace('"', '\\"')
    file_part = f'; filename="{filename}"' if is_file else ""
    if disposition == "normal":
        lines.append(f'Content-Disposition: form-data; name="{quoted}"{file_part}')
    elif disposition == "no-name":
        lines.append(f"Content-Disposition: form-data{file_part}")
    elif disposition == "garbled":
        lines.append(f"Content-Disposition: form-data; name={name}; ;; filename")
    elif disposition == "star":
        lines.append(f"Content-Disposition: form-data; name=\"{quoted}\"; filename*=UTF-8''{name}")
    if is_file or draw(st.booleans()):
        kind = draw(st.sampled_from(["image/png", "image/jpeg", "image/webp", "", "text/plain",
                                     "application/octet-stream", "image/png; charset=klingon",
                                     "multipart/mixed; boundary=inner"]))  # fmt: skip
        lines.append(f"Content-Type: {kind}")
    if draw(st.integers(0, 9)) == 0:
        lines.append("Content-Transfer-Encoding: base64")
    head = "\r\n".join(lines).encode("utf-8", "surrogateescape")
    if is_file:
        content = draw(image_bytes())
    else:
        content = draw(TEXT_VALUES).encode("utf-8", "surrogatepass")
        if draw(st.integers(0, 9)) == 0:
            content += b"\xff\xfe not utf-8"
    return head + b"\r\n\r\n" + content


@st.composite
def multipart_body(draw: st.DrawFn) -> tuple[str, bytes]:
    """A form of several parts, then one framing mistake or none; with its Content-Type."""
    boundary = draw(st.sampled_from(["fuzzboundary", "a" * 70, "b" * 71, "x y", "--"]))
    parts = draw(st.one_of(st.just([]), st.lists(part(), min_size=1, max_size=6)))
    if draw(st.booleans()):  # a well-formed core, so that the checks past the parser run
        parts = [
            b'Content-Disposition: form-data; name="prompt"\r\n\r\na fox',
            b'Content-Disposition: form-data; name="model"\r\n\r\ngpt-image-2.5-flare',
            b'Content-Disposition: form-data; name="size"\r\n\r\n256x256',
            b'Content-Disposition: form-data; name="image"; filename="a.png"\r\n'
            b"Content-Type: image/png\r\n\r\n" + draw(image_bytes()),
            *parts,
        ]
    delimiter = b"--" + boundary.encode()
    body = b"".join(delimiter + b"\r\n" + p + b"\r\n" for p in parts) + delimiter + b"--\r\n"
    mistake = draw(
        st.sampled_from(["none", "none", "cut", "no-close", "lf-only", "preamble", "other-boundary",
                         "no-boundary-param", "quoted-boundary"])
    )  # fmt: skip
    content_type = f"multipart/form-data; boundary={boundary}"
    if mistake == "cut" and body:
        body = body[: draw(st.integers(0, len(body) - 1))]
    elif mistake == "no-close":
        body = body[: -len(delimiter) - 4]
    elif mistake == "lf-only":
        body = body.replace(b"\r\n", b"\n")
    elif mistake == "preamble":
        body = b"junk before the first part\r\n" + body + b"junk after"
    elif mistake == "other-boundary":
        content_type = "multipart/form-data; boundary=somethingelse"
    elif mistake == "no-boundary-param":
        content_type = "multipart/form-data"
    elif mistake == "quoted-boundary":
        content_type = f'multipart/form-data; boundary="{boundary}"'
    event(f"mistake: {mistake}")
    return content_type, body


def _data_url(data: bytes, media: str = "image/png") -> str:
    return f"data:{media};base64,{base64.b64encode(data).decode()}"


REFERENCES = st.one_of(
    image_bytes().map(lambda data: {"image_url": _data_url(data)}),
    st.sampled_from([
        {"image_url": "data:image/png;base64,!!!not base64!!!"},
        {"image_url": "data:image/png,%89PNG%0D%0A"},
        {"image_url": "data:;base64,"},
        {"image_url": "data:image/png;base64"},
        {"image_url": _data_url(PNG, "text/html")},
        {"image_url": "https://example.invalid/a.png"},
        {"image_url": "file:///etc/passwd"},
        {"file_id": "file-abc"},
        {"file_id": ""},
        {"image_url": _data_url(PNG), "file_id": "file-abc"},
        {},
        {"image_url": 7},
        [],
        "data:image/png;base64,AAAA",
    ]),
)  # fmt: skip

JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1),
              st.floats(allow_nan=False), TEXT_VALUES),
    lambda children: st.one_of(st.lists(children, max_size=3),
                               st.dictionaries(st.text(max_size=8), children, max_size=3)),
    max_leaves=8,
)  # fmt: skip


@st.composite
def json_body(draw: st.DrawFn) -> tuple[str, bytes]:
    """A JSON edit or generation, its fields possibly mistyped, its bytes possibly broken."""
    body: dict[str, Any] = {"prompt": draw(st.one_of(st.just("a fox"), JSON_VALUES))}
    for name in draw(st.lists(FIELD_NAMES, max_size=4, unique=True)):
        body[name] = draw(st.one_of(TEXT_VALUES, JSON_VALUES))
    if draw(st.booleans()):
        body["model"] = "gpt-image-1.5"
        body["images"] = draw(st.lists(REFERENCES, max_size=3))
        if draw(st.booleans()):
            body["mask"] = draw(st.one_of(st.just({"image_url": _data_url(MASK)}), REFERENCES))
    raw = orjson.dumps(body)
    mistake = draw(st.sampled_from(["none", "none", "cut", "bom", "utf-16", "nan", "deep",
                                    "duplicate-key", "trailing", "not-utf8", "empty",
                                    "huge-number"]))  # fmt: skip
    if mistake == "cut":
        raw = raw[: draw(st.integers(0, len(raw)))]
    elif mistake == "bom":
        raw = b"\xef\xbb\xbf" + raw
    elif mistake == "utf-16":
        raw = raw.decode().encode("utf-16")
    elif mistake == "nan":
        raw = raw[:-1] + b', "n": NaN}'
    elif mistake == "deep":
        raw = b"[" * 5000 + b"]" * 5000
    elif mistake == "duplicate-key":
        raw = raw[:-1] + b', "prompt": 5}'
    elif mistake == "trailing":
        raw += b" {}"
    elif mistake == "not-utf8":
        raw = raw[:-1] + b', "user": "\xff\xfe"}'
    elif mistake == "empty":
        raw = b""
    elif mistake == "huge-number":
        raw = raw[:-1] + b', "n": 123456789012345678901234567890, "output_compression": 1e400}'
    event(f"mistake: {mistake}")
    content_type = draw(st.sampled_from(["application/json", "application/json; charset=utf-8",
                                         "text/plain", ""]))  # fmt: skip
    return content_type, raw


@pytest.fixture
async def server() -> AsyncIterator[LocalImagesServer]:
    """A local server that keeps few records (the fuzz sends many requests)."""
    async with LocalImagesServer(max_recorded=10) as running:
        yield running


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """A raw aiohttp session: no client-side checks stand between the fuzz and the server."""
    async with aiohttp.ClientSession(headers=AUTH) as session:
        yield session


@pytest.fixture
def no_errors_logged(caplog: pytest.LogCaptureFixture) -> Any:
    """Fail if the server (or aiohttp under it) logs an error: nothing is a server bug."""
    caplog.set_level(logging.WARNING)
    yield
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]


async def _post(
    http: aiohttp.ClientSession, url: str, content_type: str, body: bytes
) -> tuple[int, bytes]:
    headers = {"Content-Type": content_type} if content_type else {}
    async with http.post(url, data=body, headers=headers, skip_auto_headers=["Content-Type"]) as r:
        return r.status, await r.read()


async def _post_streamed(
    http: aiohttp.ClientSession, url: str, content_type: str, body: bytes
) -> tuple[int, bytes]:
    """Send a large body in slices of itself, so that the sender copies nothing."""

    async def slices() -> AsyncIterator[memoryview]:
        view = memoryview(body)
        for start in range(0, len(body), 64 << 10):
            yield view[start : start + (64 << 10)]

    headers = {"Content-Type": content_type}
    async with http.post(url, data=slices(), headers=headers) as response:
        return response.status, await response.read()


def _check_answer(status: int, payload: bytes) -> None:
    event(f"status {status}")
    assert status < 500, payload[:300]
    if status >= 400:
        error = orjson.loads(payload)["error"]
        assert isinstance(error["message"], str)
        assert error["message"]
        assert set(error) == {"message", "type", "param", "code"}


@FUZZ
@given(form=multipart_body(), endpoint=st.sampled_from(["edits", "variations"]))
async def test_malformed_multipart_is_never_a_server_error(
    server: LocalImagesServer,
    http: aiohttp.ClientSession,
    no_errors_logged: None,
    form: tuple[str, bytes],
    endpoint: str,
) -> None:
    """Broken forms, parts and images get a 4xx in the API's shape (or a success)."""
    content_type, body = form
    _check_answer(*await _post(http, f"{server.base_url}/images/{endpoint}", content_type, body))


@FUZZ
@given(request=json_body(), endpoint=st.sampled_from(["generations", "edits"]))
async def test_malformed_json_is_never_a_server_error(
    server: LocalImagesServer,
    http: aiohttp.ClientSession,
    no_errors_logged: None,
    request: tuple[str, bytes],
    endpoint: str,
) -> None:
    """Broken JSON, mistyped fields and bad ``data:`` URLs get a 4xx (or a success)."""
    content_type, body = request
    _check_answer(*await _post(http, f"{server.base_url}/images/{endpoint}", content_type, body))


async def test_hostile_bodies_are_refused_with_bounded_memory(
    server: LocalImagesServer, http: aiohttp.ClientSession, no_errors_logged: None
) -> None:
    """Large hostile bodies are refused; an upload is spooled to disk, not held in memory.

    A 32 MiB upload of noise and a PNG claiming 50,000 x 50,000 pixels get 4xx answers while
    the traced memory of the process (client and server) peaks at a few MiB; a JSON edit
    with an 8 MiB ``data:`` URL of noise (read whole, as JSON is) gets a 4xx too. The server
    then answers a valid request.
    """
    noise = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * (32 << 12)
    boundary = "memoryboundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="prompt"\r\n\r\np\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="n.png"'
        "\r\nContent-Type: image/png\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    form_type = f"multipart/form-data; boundary={boundary}"
    edits = f"{server.base_url}/images/edits"
    upload, bomb = head + noise + tail, head + _bomb_png(50_000, 50_000) + tail
    gc.collect()
    tracemalloc.start()
    try:
        answers = [
            await _post_streamed(http, edits, form_type, upload),
            await _post_streamed(http, edits, form_type, bomb),
        ]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    for status, payload in answers:
        assert 400 <= status < 500, payload[:300]
    assert peak < len(noise) // 4, f"peak {peak} bytes"
    reference = {"image_url": _data_url(noise[: 8 << 20])}
    body = {"prompt": "p", "model": "gpt-image-1.5", "images": [reference]}
    status, payload = await _post_streamed(http, edits, "application/json", orjson.dumps(body))
    assert 400 <= status < 500, payload[:300]
    valid = {"prompt": "after the fuzz", "model": "gpt-image-2.5-flare", "size": "256x256"}
    generations = f"{server.base_url}/images/generations"
    status, payload = await _post(http, generations, "application/json", orjson.dumps(valid))
    assert status == 200, payload[:300]
