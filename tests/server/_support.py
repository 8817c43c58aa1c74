"""Helpers for the local server's tests: images to upload, contract checks, SSE parsing."""

from __future__ import annotations

import base64
import functools
import io
import struct
import zlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import aiohttp
import attrs
import orjson
import yaml
from jsonschema import Draft202012Validator
from PIL import Image

SCHEMA_FILE = Path(__file__).parent.parent / "data" / "images.schema.yaml"

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "additionalProperties": False,
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type", "param", "code"],
            "additionalProperties": False,
            "properties": {
                "message": {"type": "string", "minLength": 1},
                "type": {"type": "string"},
                "param": {"type": ["string", "null"]},
                "code": {"type": ["string", "null"]},
            },
        }
    },
}

AUTH = {"Authorization": "Bearer test-key"}


@functools.cache
def _components() -> dict[str, Any]:
    document = yaml.safe_load(SCHEMA_FILE.read_text(encoding="utf-8"))
    components: dict[str, Any] = document["components"]
    return components


@functools.cache
def validator(name: str) -> Draft202012Validator:
    """A validator for one component of the contract (``"ImagesResponse"``...) or ``"Error"``."""
    if name == "Error":
        return Draft202012Validator(ERROR_SCHEMA)
    schema = {"$ref": f"#/components/schemas/{name}", "components": _components()}
    return Draft202012Validator(schema)


def assert_matches(body: Any, name: str) -> None:
    """Fail with every schema violation if ``body`` is not a valid ``name``."""
    problems = [f"{list(e.absolute_path)}: {e.message}" for e in validator(name).iter_errors(body)]
    assert not problems, f"not a valid {name}: {problems}"


def assert_error(body: Any, *, param: str | None, code: str | None = None) -> None:
    """``body`` is the API's error shape, naming ``param`` (and ``code`` when given)."""
    assert_matches(body, "Error")
    assert body["error"]["param"] == param, body
    if code is not None:
        assert body["error"]["code"] == code, body


def picture(
    width: int,
    height: int,
    *,
    fmt: str = "PNG",
    alpha: bool = False,
    colour: tuple[int, int, int] = (30, 144, 255),
) -> bytes:
    """An encoded image of one colour; with ``alpha``, fully transparent (a mask that edits all)."""
    mode = "RGBA" if alpha else "RGB"
    fill = (*colour, 0) if alpha else colour
    buffer = io.BytesIO()
    Image.new(mode, (width, height), fill).save(buffer, format=fmt)
    return buffer.getvalue()


def bomb_png(width: int = 20_000, height: int = 20_000) -> bytes:
    """A tiny PNG whose header claims a huge image (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\0" * 1024)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def data_url(data: bytes, content_type: str = "image/png") -> str:
    """``data`` as a base64 ``data:`` URL."""
    return f"data:{content_type};base64,{base64.b64encode(data).decode()}"


@attrs.frozen
class Decoded:
    """What an answered image really is."""

    format: str
    size: tuple[int, int]
    mode: str


def decode(data: bytes | str) -> Decoded:
    """Open an image (bytes, or base64 text) with Pillow and report its format and size."""
    raw = base64.b64decode(data) if isinstance(data, str) else data
    with Image.open(io.BytesIO(raw)) as image:
        image.load()
        return Decoded(format=image.format or "", size=image.size, mode=image.mode)


def form(
    fields: Mapping[str, str] | None = None,
    files: Iterable[tuple[str, str, bytes, str]] = (),
) -> aiohttp.FormData:
    """A multipart form: text fields, then ``(part, filename, bytes, content type)`` files."""
    data = aiohttp.FormData(default_to_multipart=True)
    for name, value in (fields or {}).items():
        data.add_field(name, value)
    for part, filename, content, content_type in files:
        data.add_field(part, content, filename=filename, content_type=content_type)
    return data


def parse_sse(text: str) -> list[tuple[str | None, Any]]:
    """A server-sent-events body as ``(event name, decoded data)`` pairs."""
    events = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        name = None
        data = []
        for line in block.split("\n"):
            if line.startswith("event:"):
                name = line.removeprefix("event:").strip()
            elif line.startswith("data:"):
                data.append(line.removeprefix("data:").strip())
        if data:
            events.append((name, orjson.loads("\n".join(data))))
    return events
