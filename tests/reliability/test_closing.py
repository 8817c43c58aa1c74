"""Closing a client while calls run (issue 13, finding 3): calls waiting on a retry or on
an answer end at once with ``ClientClosedError``, and nothing is left open.

Waits are bounded by a hang guard far shorter than the server's ``retry-after`` of 20 s;
nothing is timed.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator

import anyio
import pytest

from openai_images import AsyncImagesClient, ClientClosedError, ImagesClient
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
