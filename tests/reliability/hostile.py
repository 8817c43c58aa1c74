"""Hostile and in-between servers on 127.0.0.1: raw bytes, a proxy, a TLS server with its
own CA.

:class:`RawServer` answers each connection with scripted bytes, so a test can send what no
well-behaved HTTP server would (a status line ``HTTP/1.1 abc``, a header without a colon,
a stream that stalls after its first event). :class:`Proxy` is a forwarding and
``CONNECT`` proxy that records every byte clients send it. :func:`make_pki` makes a CA, a
server certificate for 127.0.0.1 and a client certificate with the ``openssl`` command
(neither ``cryptography`` nor ``trustme`` is a test dependency), and :class:`TLSServer`
serves a small JSON answer over HTTPS with them.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import subprocess
from collections.abc import Sequence
from pathlib import Path

import attrs
import orjson
from aiohttp import web

PROXIED_HOST = "images.test"
"""A name that is not this machine's, for requests a :class:`Proxy` takes to 127.0.0.1."""

STALL = object()
"""In a :class:`RawServer` script: send nothing more until the client goes away."""

OK_JSON = orjson.dumps({"created": 1, "data": [{"b64_json": "aGk="}]})


def http_response(head: str, body: bytes = b"") -> bytes:
    """Raw response bytes: ``head`` (status line and headers, ``\\n``-separated) and body."""
    return head.strip().replace("\n", "\r\n").encode() + b"\r\n\r\n" + body


def sse_event(data: dict[str, object]) -> bytes:
    """One server-sent event carrying ``data`` as JSON."""
    return b"data: " + orjson.dumps(data) + b"\n\n"


def chunk(data: bytes) -> bytes:
    """One chunk of a ``Transfer-Encoding: chunked`` body."""
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


class RawServer:
    """A TCP server that reads one request per connection and plays a script of bytes.

    Each item of the script is bytes to send or :data:`STALL`; after the last item the
    connection is closed. ``received`` holds every byte the clients sent.
    """

    def __init__(self, script: Sequence[bytes | object]) -> None:
        self.script = list(script)
        self.received = bytearray()
        self.connections = 0
        self.base_url = ""
        self._server: asyncio.Server | None = None
        self._stalled: list[asyncio.Future[None]] = []

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            head = await reader.readuntil(b"\r\n\r\n")
            self.received += head
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    self.received += await reader.readexactly(int(line.split(b":")[1]))
            for item in self.script:
                if item is STALL:
                    # Until the client hangs up (or the server closes).
                    await reader.read()
                    continue
                assert isinstance(item, bytes)
                writer.write(item)
                await writer.drain()
        writer.close()

    async def __aenter__(self) -> RawServer:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.base_url = f"http://127.0.0.1:{port}/v1"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        with contextlib.suppress(Exception):
            self._server.close_clients()  # type: ignore[attr-defined]  # Python 3.13+
        await self._server.wait_closed()


class Proxy:
    """An HTTP proxy: absolute-form requests are forwarded, ``CONNECT`` makes a tunnel.

    Every host name is taken for 127.0.0.1 (the proxy does the lookups, not the client),
    so clients can name a host that is not this machine: loopback targets are never
    proxied.

    Attributes:
        seen: Every byte clients sent the proxy (tunnelled bytes included, as they pass).
        request_lines: The first line of each connection (``CONNECT host:port HTTP/1.1``...).
        refuse: Answer every request with this raw response instead (a 407, a 502).
    """

    def __init__(self, *, refuse: bytes | None = None) -> None:
        self.seen = bytearray()
        self.request_lines: list[str] = []
        self.refuse = refuse
        self.url = ""
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, record: bool
    ) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                if record:
                    self.seen += data
                writer.write(data)
                await writer.drain()
        with contextlib.suppress(Exception):
            writer.write_eof()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()
            return
        self.seen += head
        line = head.split(b"\r\n", 1)[0].decode()
        self.request_lines.append(line)
        if self.refuse is not None:
            writer.write(self.refuse)
            writer.close()
            return
        method, target, _ = line.split(" ", 2)
        if method == "CONNECT":
            port = target.rsplit(":", 1)[1]
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", int(port))
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await writer.drain()
        else:
            authority = target.split("//", 1)[1].split("/", 1)[0]
            port = authority.rsplit(":", 1)[1]
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", int(port))
            up_writer.write(head)
        await asyncio.gather(
            self._pipe(reader, up_writer, record=True),
            self._pipe(up_reader, writer, record=False),
        )
        writer.close()
        up_writer.close()

    async def __aenter__(self) -> Proxy:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        with contextlib.suppress(Exception):
            self._server.close_clients()  # type: ignore[attr-defined]  # Python 3.13+
        await self._server.wait_closed()


@attrs.frozen(kw_only=True)
class PKI:
    """A CA and the certificates it signed, as PEM files."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    client_key_password: str
    other_ca: Path


def _openssl(*args: str | Path, cwd: Path) -> None:
    subprocess.run(["openssl", *map(str, args)], cwd=cwd, check=True, capture_output=True)


def _issue(folder: Path, name: str, *, subject: str, extensions: str, key_args: list[str]) -> None:
    _openssl(
        "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        *key_args, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subject,
        cwd=folder,
    )  # fmt: skip
    (folder / f"{name}.ext").write_text(extensions)
    _openssl(
        "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "2", "-out", f"{name}.pem", "-extfile", f"{name}.ext",
        cwd=folder,
    )  # fmt: skip


def _make_ca(folder: Path, name: str) -> None:
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "2",
        "-subj", f"/CN=openai-images {name}",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=folder,
    )  # fmt: skip


def make_pki(folder: Path) -> PKI:
    """A test CA, a server certificate for 127.0.0.1 (and ``images.test``, the name tests
    reach it by through a proxy) and a client certificate whose key is encrypted; and a
    second CA that signed neither."""
    _make_ca(folder, "ca")
    _make_ca(folder, "other-ca")
    _issue(
        folder,
        "server",
        subject="/CN=127.0.0.1",
        extensions="subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:images.test\nbasicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
        key_args=["-nodes"],
    )
    _issue(
        folder,
        "client",
        subject="/CN=images-client",
        extensions="basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=clientAuth\n",
        key_args=["-passout", "pass:client-key-pw"],
    )
    return PKI(
        ca=folder / "ca.pem",
        server_cert=folder / "server.pem",
        server_key=folder / "server.key",
        client_cert=folder / "client.pem",
        client_key=folder / "client.key",
        client_key_password="client-key-pw",
        other_ca=folder / "other-ca.pem",
    )


class TLSServer:
    """An HTTPS server on 127.0.0.1 that answers every request with a small generation.

    Attributes:
        headers: The headers of each request that arrived.
        peer_certs: The client certificate's subject of each request (``None`` without).
    """

    def __init__(self, pki: PKI, *, require_client_cert: bool = False) -> None:
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.load_cert_chain(pki.server_cert, pki.server_key)
        if require_client_cert:
            self.context.verify_mode = ssl.CERT_REQUIRED
            self.context.load_verify_locations(pki.ca)
        self.headers: list[dict[str, str]] = []
        self.peer_certs: list[object] = []
        self.base_url = ""
        self._runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.Response:
        await request.read()
        self.headers.append(dict(request.headers))
        ssl_object = request.transport.get_extra_info("ssl_object") if request.transport else None
        self.peer_certs.append(ssl_object.getpeercert() if ssl_object else None)
        return web.Response(body=OK_JSON, content_type="application/json")

    async def __aenter__(self) -> TLSServer:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=self.context)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base_url = f"https://127.0.0.1:{port}/v1"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()
