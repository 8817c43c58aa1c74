"""Closing a client while calls run (issue 13, finding 3): calls waiting on a retry or on
an answer and streams waiting for their next event end at once with
``ClientClosedError``; sync batches waiting for their next result end (as their own
``close`` ends them); nothing is left open. A closed sync client refuses every call with
the same error.

Waits are bounded by a hang guard far shorter than the server's ``retry-after`` of 20 s;
nothing is timed.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable, Iterator

import anyio
import pytest
from anyio.from_thread import BlockingPortal

from openai_images import AsyncImagesClient, ClientClosedError, GenerateRequest, ImagesClient
from openai_images.testing import Fault, LocalImagesServer

from .conftest import (
    HANG_GUARD,
    KEY,
    Snapshot,
    assert_released,
    assert_released_sync,
    wait_until,
    wait_until_sync,
)
from .hostile import STALL, RawServer, chunk, http_response, sse_event

GENERATION = {"prompt": "p", "model": "gpt-image-1-mini", "quality": "low"}


@pytest.fixture
async def server() -> AsyncIterator[LocalImagesServer]:
    """A local Images server."""
    async with LocalImagesServer() as running:
        yield running


async def _close_during_a_call(client: AsyncImagesClient, server: LocalImagesServer) -> list[str]:
    """Start a call, close the client once the server has it; the call's outcome."""
    outcome: list[str] = []

    async def call() -> None:
        try:
            await client.generate(**GENERATION)
        except ClientClosedError:
            outcome.append("closed")

    with anyio.fail_after(HANG_GUARD):
        async with anyio.create_task_group() as group:
            group.start_soon(call)
            await wait_until(lambda: len(server.requests) == 1)
            await anyio.sleep(0.05)  # the answer read, the call waits on its retry
            await client.aclose()
    return outcome


@pytest.mark.anyio
async def test_aclose_ends_a_call_sleeping_before_a_retry(server: LocalImagesServer) -> None:
    """A call told ``retry-after: 20`` fails with ClientClosedError as the client closes."""
    server.inject(Fault(kind="status", status=503, retry_after=20))
    before = Snapshot.take()
    client = AsyncImagesClient(api_key=KEY, base_url=server.base_url)
    assert await _close_during_a_call(client, server) == ["closed"]
    assert len(server.requests) == 1
    await assert_released(before)


@pytest.mark.anyio
async def test_aclose_ends_a_call_in_flight(server: LocalImagesServer) -> None:
    """A call waiting for its answer fails with ClientClosedError as the client closes; a
    call after that is refused with the same error, before any I/O."""
    server.inject(Fault(kind="delay_headers", delay=2.0))
    client = AsyncImagesClient(api_key=KEY, base_url=server.base_url)
    outcome: list[str] = []

    async def call() -> None:
        try:
            await client.generate(**GENERATION)
        except ClientClosedError:
            outcome.append("closed")

    with anyio.fail_after(HANG_GUARD):
        async with anyio.create_task_group() as group:
            group.start_soon(call)
            await anyio.sleep(0.3)  # sent; the server sits on it for two seconds
            await client.aclose()
    assert outcome == ["closed"]
    with pytest.raises(ClientClosedError, match="closed"):
        await client.generate(**GENERATION)


@pytest.fixture
def server_thread() -> Iterator[LocalImagesServer]:
    with LocalImagesServer.in_thread() as running:
        yield running


def test_close_ends_a_sync_call_sleeping_before_a_retry(server_thread: LocalImagesServer) -> None:
    """``ImagesClient.close()`` from another thread ends a call waiting out ``retry-after``."""
    server_thread.inject(Fault(kind="status", status=503, retry_after=20))
    before = Snapshot.take()
    client = ImagesClient(api_key=KEY, base_url=server_thread.base_url)
    outcome: list[str] = []

    def call() -> None:
        try:
            client.generate(**GENERATION)
        except ClientClosedError:
            outcome.append("closed")

    worker = threading.Thread(target=call)
    worker.start()
    wait_until_sync(lambda: len(server_thread.requests) == 1)
    threading.Event().wait(0.05)
    client.close()
    worker.join(timeout=HANG_GUARD)
    assert not worker.is_alive()
    assert outcome == ["closed"]
    assert_released_sync(before)


# -- the sync client's other roads: its streams, its batches, calls after close ------------

_PARTIAL = sse_event(
    {"type": "image_generation.partial_image", "b64_json": "aGk=", "partial_image_index": 0,
     "created_at": 1, "size": "1024x1024", "quality": "low", "background": "opaque",
     "output_format": "png"}
)  # fmt: skip
_STREAM_HEAD = http_response(
    "HTTP/1.1 200 OK\nContent-Type: text/event-stream\nTransfer-Encoding: chunked\n"
    "x-request-id: req_closing"
)


@pytest.mark.anyio
async def test_aclose_ends_a_stream_waiting_for_its_next_event() -> None:
    """A task reading a stream that stalls after its first event gets ClientClosedError as
    the client closes (aiohttp, closing the connection, would leave it waiting); the
    stream then ends, as after any error."""
    async with RawServer([_STREAM_HEAD, chunk(_PARTIAL), STALL]) as server:
        client = AsyncImagesClient(api_key=KEY, base_url=server.base_url)
        stream = await client.generate(
            prompt="p", model="gpt-image-1.5", stream=True, partial_images=2
        )
        await stream.__anext__()
        outcome: list[str] = []

        async def read() -> None:
            try:
                await stream.__anext__()
            except ClientClosedError:
                outcome.append("closed")

        with anyio.fail_after(HANG_GUARD):
            async with anyio.create_task_group() as group:
                group.start_soon(read)
                await anyio.sleep(0.1)  # the task waits on the stalled stream
                await client.aclose()
        assert outcome == ["closed"]
        assert [event async for event in stream] == []


def _in_thread(work: Callable[[], object]) -> tuple[threading.Thread, list[object]]:
    """Run ``work`` in a thread; the list gets what it returned or the error it raised."""
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(work())
        except Exception as error:
            outcome.append(error)

    worker = threading.Thread(target=run)
    worker.start()
    return worker, outcome


def test_close_ends_a_sync_stream_waiting_for_its_next_event(portal: BlockingPortal) -> None:
    """A thread reading a stream that stalls after its first event gets ClientClosedError
    as another thread closes the client; closing the stream afterwards is harmless."""
    script = [_STREAM_HEAD, chunk(_PARTIAL), STALL]
    with portal.wrap_async_context_manager(RawServer(script)) as server:
        before = Snapshot.take()
        client = ImagesClient(api_key=KEY, base_url=server.base_url)
        stream = client.generate(prompt="p", model="gpt-image-1.5", stream=True, partial_images=2)
        first = next(stream)
        assert first.type == "image_generation.partial_image"
        worker, outcome = _in_thread(lambda: next(stream))
        threading.Event().wait(0.1)  # the worker waits on the stalled stream
        client.close()
        worker.join(timeout=HANG_GUARD)
        assert not worker.is_alive()
        (error,) = outcome
        assert isinstance(error, ClientClosedError)
        stream.close()
        with pytest.raises(ClientClosedError):
            next(stream)
        assert_released_sync(before)


def test_close_ends_a_copys_sync_batch_waiting_for_its_next_result(
    server_thread: LocalImagesServer,
) -> None:
    """A thread iterating the ``map`` of a ``with_options`` copy, every request sitting on
    the server, sees the batch end as another thread closes the original (the copy shares
    its connections, so closing either closes both); nothing is left open."""
    server_thread.inject(Fault(kind="delay_headers", delay=20, times=4))
    before = Snapshot.take()
    client = ImagesClient(api_key=KEY, base_url=server_thread.base_url)
    results = client.with_options(max_retries=0).map(
        [GenerateRequest(**GENERATION)] * 4, concurrency=4
    )
    worker, outcome = _in_thread(lambda: list(results))
    wait_until_sync(lambda: results.progress().in_flight == 4)
    threading.Event().wait(0.1)  # sent; the server sits on them for twenty seconds
    client.close()
    worker.join(timeout=HANG_GUARD)
    assert not worker.is_alive()
    assert outcome == [[]]
    assert_released_sync(before)


def test_a_closed_sync_client_refuses_every_call(server_thread: LocalImagesServer) -> None:
    """After ``close()``: calls, calls of a copy, new batches and a stream opened before
    raise ClientClosedError, and batches made before have ended; closing twice, and
    closing the stream or a batch afterwards, is harmless."""
    client = ImagesClient(api_key=KEY, base_url=server_thread.base_url)
    stream = client.generate(prompt="p", model="gpt-image-1.5", stream=True)
    copy = client.with_options(max_retries=0)
    batches = [
        client.map([GenerateRequest(**GENERATION)]),
        copy.map([GenerateRequest(**GENERATION)]),
    ]
    client.close()
    client.close()
    calls: list[Callable[[], object]] = [
        lambda: client.generate(**GENERATION),
        lambda: copy.generate(**GENERATION),
        lambda: client.download("http://127.0.0.1:1/image.png"),
        lambda: client.with_raw_response.generate(**GENERATION),
        lambda: next(stream),
        lambda: next(iter(client.map([GenerateRequest(**GENERATION)]))),
        lambda: client.run_batch([GenerateRequest(**GENERATION)]),
    ]
    for call in calls:
        with pytest.raises(ClientClosedError, match="closed"):
            call()
    assert [next(batch, None) for batch in batches] == [None, None]
    stream.close()
    for batch in batches:
        batch.close()
