"""A scripted HTTP server on 127.0.0.1 that records what arrives, for wire-format tests.

Unlike the package's local Images server, it checks nothing and makes no images: each
request is recorded whole (headers, raw body, parsed multipart parts or JSON) and answered
with the next scripted :class:`Reply`, or a small valid response once the script is empty.
"""

from __future__ import annotations

import email.parser
import email.policy
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import anyio
import attrs
import orjson
from aiohttp import web

OK_BODY = {"created": 1, "data": [{"b64_json": "aGk="}]}


@attrs.frozen(kw_only=True)
class Part:
    """One multipart part as a server sees it."""

    name: str
    filename: str | None
    content_type: str | None
    content: bytes


@attrs.frozen(kw_only=True)
class Recorded:
    """One request as it arrived."""

    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return orjson.loads(self.body)

    @property
    def parts(self) -> list[Part]:
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + self.headers["Content-Type"].encode() + b"\r\n\r\n" + self.body
        )
        parts = []
        for item in message.iter_parts():
            raw_type = item.get("Content-Type")
            parts.append(
                Part(
                    name=item.get_param("name", header="content-disposition"),
                    filename=item.get_filename(),
                    content_type=str(raw_type) if raw_type is not None else None,
                    content=item.get_payload(decode=True),
                )
            )
        return parts

    @property
    def fields(self) -> dict[str, str]:
        return {p.name: p.content.decode() for p in self.parts if p.filename is None}


@attrs.define(kw_only=True)
class Reply:
    """A scripted answer: a status with a JSON or raw body, or a custom handler."""

    status: int = 200
    json: Any = attrs.Factory(lambda: OK_BODY)
    body: bytes | None = None
    headers: Mapping[str, str] = attrs.Factory(dict)
    content_type: str = "application/json"
    delay: float = 0.0
    handler: Callable[[web.Request], Any] | None = None


class Recorder:
    """The server: ``async with Recorder() as rec: ... rec.base_url ... rec.requests``."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.script: deque[Reply] = deque()
        self.gate: anyio.Event | None = None
        """When set to an unset event, requests wait for it before their body is read."""
        self.held = 0
        """How many requests have waited at the gate."""
        self.unfinished = 0
        """How many requests went away before their body arrived whole."""
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    def reply(self, *replies: Reply) -> None:
        self.script.extend(replies)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if self.gate is not None:
            # Not reading fills the socket buffers, so the client's upload blocks mid-body.
            self.held += 1
            await self.gate.wait()
        try:
            body = await request.read()
        except ConnectionError:
            self.unfinished += 1
            return web.Response(status=400)
        self.requests.append(
            Recorded(
                method=request.method,
                path=request.path,
                query=dict(request.query),
                headers=dict(request.headers),
                body=body,
            )
        )
        reply = self.script.popleft() if self.script else Reply()
        if reply.delay:
            await anyio.sleep(reply.delay)
        if reply.handler is not None:
            result: web.StreamResponse = await reply.handler(request)
            return result
        headers = {"x-request-id": f"req_{len(self.requests)}", **reply.headers}
        payload = reply.body if reply.body is not None else orjson.dumps(reply.json)
        return web.Response(
            status=reply.status, body=payload, headers=headers, content_type=reply.content_type
        )

    async def __aenter__(self) -> Recorder:
        app = web.Application(client_max_size=1 << 30)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}/v1"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()


def sse_handler(events: list[bytes]) -> Callable[[web.Request], Any]:
    """A handler that streams the given raw SSE byte chunks."""

    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "x-request-id": "req_stream"}
        )
        await response.prepare(request)
        for chunk in events:
            await response.write(chunk)
        await response.write_eof()
        return response

    return handler


async def iterate(stream: AsyncIterator[Any]) -> list[Any]:
    """Every item of an async iterator."""
    return [item async for item in stream]
