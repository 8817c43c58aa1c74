"""A minimal HTTP/1.1 server with canned Images API answers, for the benchmarks.

It runs in its own process (``python -m tests.benchmarks._server``), so its work never
shows in a client's CPU time, and it does as little as it can: no routing table, no JSON
parsing, every answer built once at start-up. A request body is read and thrown away as
it arrives (``Content-Length`` or chunked), and the answer goes out once the whole body is
in. The request line's query picks the answer:

- no ``reply=``: a small generation result (one tiny ``b64_json`` image and ``usage``);
- ``reply=big``: :data:`BIG_IMAGES` images of :data:`BIG_IMAGE_B64` base64 characters each;
- ``reply=stream``: a ``text/event-stream`` of :data:`STREAM_PARTIALS` partial images of
  about :data:`STREAM_IMAGE_B64` characters each and a completed event, one chunk each.

The process prints ``PORT <n>`` on its first line and serves until its stdin closes.
"""

from __future__ import annotations

import asyncio
import base64
import random
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

import orjson

from tests.images import make_png

__all__ = [
    "BIG_IMAGES",
    "BIG_IMAGE_B64",
    "STREAM_IMAGE_B64",
    "STREAM_PARTIALS",
    "main",
    "running_server",
]

BIG_IMAGES: Final = 10
BIG_IMAGE_B64: Final = 4 * 1024 * 1024
STREAM_PARTIALS: Final = 3
STREAM_IMAGE_B64: Final = 1024 * 1024

_USAGE: Final = {
    "input_tokens": 50,
    "input_tokens_details": {"text_tokens": 50, "image_tokens": 0},
    "output_tokens": 272,
    "total_tokens": 322,
}
_META: Final = {
    "background": "opaque",
    "output_format": "png",
    "quality": "low",
    "size": "1024x1024",
}


def _image_b64(chars: int, *, seed: int) -> str:
    """Base64 of a PNG-looking blob whose encoding is ``chars`` long (random, so incompressible)."""
    raw = b"\x89PNG\r\n\x1a\n" + random.Random(seed).randbytes(chars * 3 // 4 - 8)
    return base64.b64encode(raw).decode("ascii")


def _json_answer(payload: object) -> bytes:
    body = orjson.dumps(payload)
    head = (
        "HTTP/1.1 200 OK\r\n"
        "content-type: application/json\r\n"
        f"content-length: {len(body)}\r\n"
        "x-request-id: req_bench\r\n"
        "openai-processing-ms: 1\r\n"
        "x-ratelimit-limit-requests: 5000\r\n"
        "x-ratelimit-remaining-requests: 4999\r\n"
        "x-ratelimit-reset-requests: 12ms\r\n"
        "\r\n"
    )
    return head.encode("ascii") + body


def _stream_answer() -> bytes:
    events = []
    for index in range(STREAM_PARTIALS):
        data = {
            "type": "image_generation.partial_image",
            "b64_json": _image_b64(STREAM_IMAGE_B64, seed=100 + index),
            "created_at": 1_700_000_000,
            "partial_image_index": index,
            **_META,
        }
        events.append(("image_generation.partial_image", data))
    done = {
        "type": "image_generation.completed",
        "b64_json": _image_b64(STREAM_IMAGE_B64, seed=200),
        "created_at": 1_700_000_000,
        "usage": _USAGE,
        **_META,
    }
    events.append(("image_generation.completed", done))
    chunks = []
    for kind, data in events:
        text = b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"
        chunks.append(f"{len(text):x}\r\n".encode() + text + b"\r\n")
    head = (
        b"HTTP/1.1 200 OK\r\n"
        b"content-type: text/event-stream\r\n"
        b"transfer-encoding: chunked\r\n"
        b"x-request-id: req_bench\r\n"
        b"\r\n"
    )
    return head + b"".join(chunks) + b"0\r\n\r\n"


class _Answers:
    def __init__(self) -> None:
        tiny = base64.b64encode(make_png(1, 1)).decode("ascii")
        created = 1_700_000_000
        self.small = _json_answer(
            {"created": created, "data": [{"b64_json": tiny}], **_META, "usage": _USAGE}
        )
        images = [{"b64_json": _image_b64(BIG_IMAGE_B64, seed=i)} for i in range(BIG_IMAGES)]
        self.big = _json_answer({"created": created, "data": images, **_META, "usage": _USAGE})
        self.stream = _stream_answer()


_HEAD, _BODY, _CHUNK_SIZE, _CHUNK_DATA, _TRAILER = range(5)


class _Connection(asyncio.Protocol):
    """One keep-alive connection: parse heads, skip bodies, write the canned answer."""

    def __init__(self, answers: _Answers) -> None:
        self._answers = answers
        self._transport: asyncio.Transport | None = None
        self._pending = bytearray()  # an unfinished head or chunk-size line
        self._state = _HEAD
        self._left = 0
        self._answer = b""
        self._close = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        if self._pending:
            self._pending += data
            data = bytes(self._pending)
            self._pending.clear()
        pos, end = 0, len(data)
        while pos < end:
            if self._state in (_BODY, _CHUNK_DATA):
                taken = min(self._left, end - pos)
                pos += taken
                self._left -= taken
                if self._left == 0:
                    if self._state == _BODY:
                        self._reply()
                    else:
                        self._state = _CHUNK_SIZE
                continue
            marker = b"\r\n\r\n" if self._state == _HEAD else b"\r\n"
            found = data.find(marker, pos)
            if found < 0:
                self._pending += data[pos:]
                return
            line = data[pos:found]
            pos = found + len(marker)
            if self._state == _HEAD:
                self._start(line)
            elif self._state == _CHUNK_SIZE:
                size = int(line.split(b";", 1)[0], 16)
                self._state, self._left = (_CHUNK_DATA, size + 2) if size else (_TRAILER, 0)
            elif not line:  # the blank line that ends the trailers
                self._reply()

    def _start(self, head: bytes) -> None:
        request_line, _, fields = head.partition(b"\r\n")
        lowered = fields.lower()
        if b"reply=big" in request_line:
            self._answer = self._answers.big
        elif b"reply=stream" in request_line:
            self._answer = self._answers.stream
        else:
            self._answer = self._answers.small
        self._close = b"connection: close" in lowered
        assert self._transport is not None
        if b"expect: 100-continue" in lowered:
            self._transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        if b"transfer-encoding: chunked" in lowered:
            self._state = _CHUNK_SIZE
            return
        length = 0
        at = lowered.find(b"content-length:")
        if at >= 0:
            stop = lowered.find(b"\r\n", at)
            length = int(lowered[at + 15 : stop if stop >= 0 else None])
        if length:
            self._state, self._left = _BODY, length
        else:
            self._reply()

    def _reply(self) -> None:
        assert self._transport is not None
        self._state = _HEAD
        self._transport.write(self._answer)
        if self._close:
            self._transport.close()


async def _serve() -> None:
    answers = _Answers()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _Connection(answers), "127.0.0.1", 0, backlog=1024)
    port = server.sockets[0].getsockname()[1]
    print(f"PORT {port}", flush=True)
    # The parent ends the server by closing our stdin (or by dying, which closes it too).
    await loop.run_in_executor(None, sys.stdin.buffer.read)
    server.close()


def main() -> None:
    """Serve until stdin closes."""
    asyncio.run(_serve())


@contextmanager
def running_server() -> Iterator[str]:
    """Start the server in its own process; yield its root URL (``http://127.0.0.1:<port>``)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.benchmarks._server"],
        cwd=Path(__file__).resolve().parents[2],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().decode()
        if not line.startswith("PORT "):
            raise RuntimeError(f"the benchmark server did not start: {line!r}")
        yield f"http://127.0.0.1:{int(line.split()[1])}"
    finally:
        assert process.stdin is not None
        process.stdin.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


if __name__ == "__main__":
    main()
