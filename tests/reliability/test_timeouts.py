"""Which limit ran out: waiting for a free connection is not connecting, nor reading.

``Timeout.pool`` bounds the wait for one of ``max_connections`` to be free; ``connect``
bounds opening a socket; ``read`` a stall; ``total`` the exchange. Each error says which
one expired. The tests use ``max_connections=1`` and a server that holds its answer until
the test lets it go, so nothing depends on how fast this machine is.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator, Iterator

import anyio
import pytest
from aiohttp import web

from openai_images import APIConnectionError, APITimeoutError, AsyncImagesClient, Timeout
from tests.recorder import Recorder, Reply

from .conftest import HANG_GUARD, KEY, wait_until
from .hostile import STALL, RawServer, http_response

PROMPT = {"prompt": "a fox", "model": "dall-e-2", "size": "256x256"}


@contextlib.asynccontextmanager
async def held_server() -> AsyncIterator[tuple[Recorder, anyio.Event]]:
    """A server whose answers wait until the event is set."""
    release = anyio.Event()

    async def hold(request: web.Request) -> web.Response:
        await release.wait()
        return web.Response(
            body=b'{"created": 1, "data": [{"b64_json": "aGk="}]}',
            content_type="application/json",
        )

    async with Recorder() as server:
        server.reply(*[Reply(handler=hold)] * 4)
        yield server, release


def waiting_for_a_slot(client: AsyncImagesClient) -> int:
    """How many calls of ``client`` wait for a free connection."""
    slots = client._sender.transport._slots
    return 0 if slots is None else slots.statistics().tasks_waiting


@pytest.mark.anyio
async def test_a_full_pool_times_out_on_pool_and_sends_nothing() -> None:
    """With the only connection busy, a call waits ``Timeout.pool`` and fails saying so;
    the server never hears of it, and the busy call still succeeds."""
    async with (
        held_server() as (server, release),
        AsyncImagesClient(api_key=KEY, base_url=server.base_url, max_connections=1) as client,
        anyio.create_task_group() as tasks,
    ):
        results: list[object] = []

        async def first() -> None:
            results.append(await client.generate(**PROMPT))

        tasks.start_soon(first)
        await wait_until(lambda: len(server.requests) == 1)
        quick_pool = Timeout(connect=10.0, read=10.0, total=10.0, pool=0.05)
        with pytest.raises(APITimeoutError, match=r"waiting for a free connection \(Timeout\.pool"):
            await client.generate(**PROMPT, timeout=quick_pool, max_retries=0)
        assert len(server.requests) == 1
        release.set()
    assert len(results) == 1


@pytest.mark.anyio
async def test_waiting_for_the_pool_does_not_count_against_connect() -> None:
    """A call that waits for a busy connection longer than its ``connect`` limit still
    goes through once the connection is free (before, it failed as a connect timeout)."""
    async with (
        held_server() as (server, release),
        AsyncImagesClient(api_key=KEY, base_url=server.base_url, max_connections=1) as client,
        anyio.create_task_group() as tasks,
    ):
        results: list[object] = []

        async def call(timeout: Timeout | None) -> None:
            results.append(await client.generate(**PROMPT, timeout=timeout, max_retries=0))

        tasks.start_soon(call, None)
        await wait_until(lambda: len(server.requests) == 1)
        tasks.start_soon(call, Timeout(connect=0.01, read=10.0, total=10.0))
        await wait_until(lambda: waiting_for_a_slot(client) == 1)
        await anyio.sleep(0.1)  # ten times its connect limit
        release.set()
    assert len(results) == 2


def test_a_number_keeps_the_default_pool_limit() -> None:
    """``timeout=30`` bounds the exchange; the wait for a free connection keeps its own
    generous default."""
    assert Timeout.coerce(30, default=Timeout()).pool == Timeout().pool == 600.0


@contextlib.contextmanager
def unanswered_listener() -> Iterator[int]:
    """A port whose accept queue is full: a new connection is never completed."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port: int = listener.getsockname()[1]
        fillers = []
        try:
            for _ in range(4):
                filler = socket.socket()
                filler.setblocking(False)
                with contextlib.suppress(BlockingIOError):
                    filler.connect(("127.0.0.1", port))
                fillers.append(filler)
            yield port
        finally:
            for filler in fillers:
                filler.close()


@pytest.mark.anyio
async def test_a_connect_timeout_says_connecting() -> None:
    """A host that never completes the handshake: "Timed out connecting (Timeout.connect"."""
    with unanswered_listener() as port:
        async with AsyncImagesClient(
            api_key=KEY, base_url=f"http://127.0.0.1:{port}/v1", max_retries=0
        ) as client:
            with pytest.raises(APITimeoutError, match=r"connecting \(Timeout\.connect = 0\.2 s\)"):
                await client.generate(**PROMPT, timeout=Timeout(connect=0.2, read=10.0, total=10.0))


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("timeout", "message"),
    [
        (Timeout(connect=5.0, read=0.1, total=10.0), r"no data for 0\.1 s \(Timeout\.read\)"),
        (Timeout(connect=5.0, read=10.0, total=0.2), r"longer than 0\.2 s \(Timeout\.total\)"),
    ],
    ids=["read", "total"],
)
async def test_a_stalled_answer_names_read_or_total(timeout: Timeout, message: str) -> None:
    """A server that never answers: the error names the limit that expired."""
    async with (
        RawServer([STALL]) as server,
        AsyncImagesClient(api_key=KEY, base_url=server.base_url, max_retries=0) as client,
    ):
        with pytest.raises(APITimeoutError, match=message):
            await client.generate(**PROMPT, timeout=timeout)


@pytest.mark.anyio
async def test_a_stalled_body_says_reading() -> None:
    """A head, then nothing: the read limit expired while reading the response."""
    script = [http_response("HTTP/1.1 200 OK\nContent-Length: 10", b"{"), STALL]
    async with (
        RawServer(script) as server,
        AsyncImagesClient(api_key=KEY, base_url=server.base_url, max_retries=0) as client,
    ):
        with pytest.raises(APITimeoutError, match="reading the response") as caught:
            await client.generate(**PROMPT, timeout=Timeout(connect=5, read=0.1, total=10))
    assert "Timeout.read" in str(caught.value)


@pytest.mark.anyio
async def test_closing_the_client_ends_the_wait_for_a_connection() -> None:
    """A call waiting for a free connection when the client closes fails as a closed
    client's call, once the busy call's connection is dropped; it does not wait out
    ``Timeout.pool``."""
    async with held_server() as (server, release):
        client = AsyncImagesClient(
            api_key=KEY, base_url=server.base_url, max_connections=1, max_retries=0
        )
        errors: list[BaseException] = []

        async def call() -> None:
            try:
                await client.generate(**PROMPT)
            except (RuntimeError, APIConnectionError) as error:
                errors.append(error)

        with anyio.fail_after(HANG_GUARD):
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(call)
                await wait_until(lambda: len(server.requests) == 1)
                tasks.start_soon(call)
                await wait_until(lambda: waiting_for_a_slot(client) == 1)
                await client.aclose()
        release.set()
    assert len(server.requests) == 1
    # The call in flight and the one waiting for its connection both end as a closed
    # client's calls.
    assert [type(error).__name__ for error in errors] == ["ClientClosedError"] * 2
