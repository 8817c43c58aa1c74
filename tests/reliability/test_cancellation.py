"""Stopping work part-way: cancelled calls, streams left early, cancelled batches, Ctrl-C.

Each case ends with every descriptor the work opened closed again (sockets of both ends,
since the server runs in this process, and upload files), no extra asyncio task and no
extra thread. Waits are bounded by a generous guard against hangs; nothing is timed.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import anyio
import pytest
from anyio.from_thread import BlockingPortal

from openai_images import AsyncImagesClient, BatchResult, GenerateRequest, ImagesClient
from openai_images.testing import Fault, LocalImagesServer
from tests.images import make_png
from tests.recorder import Recorder
from tests.resources import files_open

from .conftest import (
    HANG_GUARD,
    KEY,
    Snapshot,
    assert_released,
    assert_released_sync,
    wait_until,
    wait_until_sync,
)

UPLOAD_BYTES = 16 << 20
"""More than the loopback socket buffers hold, so an unread upload stays part-way."""


@pytest.fixture
def big_image(tmp_path: Path) -> Path:
    """A PNG header then 16 MiB: the client sniffs a PNG and streams the rest."""
    path = tmp_path / "big.png"
    path.write_bytes(make_png(64, 64) + b"\0" * UPLOAD_BYTES)
    return path


@pytest.fixture
async def server() -> AsyncIterator[LocalImagesServer]:
    """A local Images server."""
    async with LocalImagesServer(max_recorded=2000) as running:
        yield running


def _client(base_url: str) -> AsyncImagesClient:
    return AsyncImagesClient(api_key=KEY, base_url=base_url)


# -- the async client ---------------------------------------------------------------------


@pytest.mark.anyio
async def test_cancelling_mid_upload_closes_the_file_and_the_connection(
    server: LocalImagesServer, big_image: Path
) -> None:
    """A cancel while the body is going out returns; the file and both socket ends close.

    The file closes at once. The socket is handed to the kernel to close gracefully, which
    ends as soon as the server reads (here after its half-second pause) or goes away.
    """
    # The server sits on the request before reading its body, so the upload stalls.
    server.inject(Fault(kind="delay_headers", delay=0.5))
    before = Snapshot.take()
    async with _client(server.base_url) as client:
        with anyio.fail_after(HANG_GUARD):
            async with anyio.create_task_group() as group:
                group.start_soon(
                    lambda: client.edit(image=big_image, prompt="p", model="gpt-image-1.5")
                )
                await wait_until(lambda: files_open(big_image) > 0)
                await anyio.sleep(0.2)  # let the socket buffers fill
                group.cancel_scope.cancel()
        assert files_open(big_image) == 0
        await wait_until(lambda: len(server.requests) == 1)
        result = await client.generate(
            prompt="still usable", model="gpt-image-2.5-flare", size="256x256"
        )
        assert result.data
    await assert_released(before)


@pytest.mark.anyio
async def test_cancelling_mid_download_closes_the_connection(server: LocalImagesServer) -> None:
    """A cancel while the response body trickles in returns and drops the connection."""
    server.inject(Fault(kind="stall_body", delay=60.0))
    before = Snapshot.take()
    async with _client(server.base_url) as client:
        with anyio.fail_after(HANG_GUARD):
            async with anyio.create_task_group() as group:
                group.start_soon(
                    lambda: client.generate(prompt="p", model="gpt-image-2.5-flare", size="256x256")
                )
                # The server records a body it is about to send before sending any of it.
                await wait_until(lambda: len(server.requests) == 1)
                await anyio.sleep(0.1)
                group.cancel_scope.cancel()
        result = await client.generate(
            prompt="still usable", model="gpt-image-2.5-flare", size="256x256"
        )
        assert result.data
    await assert_released(before)


@pytest.mark.anyio
@pytest.mark.parametrize("how", ["break", "exception", "aclose-unread"])
async def test_leaving_a_stream_early_closes_it(server: LocalImagesServer, how: str) -> None:
    """A stream left after one event (by break, by an error, or unread) drops its connection."""
    before = Snapshot.take()
    async with _client(server.base_url) as client:
        stream = await client.generate(
            prompt="p", model="gpt-image-1.5", size="1024x1024", quality="low",
            stream=True, partial_images=3,
        )  # fmt: skip
        if how == "aclose-unread":
            await stream.aclose()
        else:
            with contextlib.suppress(LookupError):
                async with stream:
                    async for _event in stream:
                        if how == "break":
                            break
                        raise LookupError("the caller's own error")
        assert [event async for event in stream] == []
        result = await client.generate(
            prompt="still usable", model="gpt-image-2.5-flare", size="256x256"
        )
        assert result.data
    await assert_released(before)


@pytest.mark.anyio
async def test_cancelling_a_1000_request_batch_stops_everything(
    server: LocalImagesServer,
) -> None:
    """A batch of 1,000 cancelled after 40 results: no more requests, nothing left open.

    The input generator is closed (its ``finally`` runs), and the server saw only what
    was in flight.
    """
    closed = anyio.Event()

    def generations() -> Iterator[GenerateRequest]:
        try:
            for index in range(1000):
                yield GenerateRequest(
                    prompt=f"image {index}", model="gpt-image-2.5-flare", size="256x256"
                )
        finally:
            closed.set()

    before = Snapshot.take()
    received = 0
    async with _client(server.base_url) as client:
        with anyio.fail_after(HANG_GUARD), anyio.CancelScope() as scope:
            async with client.map(generations(), concurrency=16) as results:
                async for _result in results:
                    received += 1
                    if received == 40:
                        scope.cancel()
        assert scope.cancelled_caught
        assert closed.is_set()
    await assert_released(before)
    # Only what was in flight went out: at most one window of requests past the last result.
    sent = len(server.requests)
    assert sent <= received + 16
    await anyio.sleep(0.1)
    assert len(server.requests) == sent


# -- the sync client ----------------------------------------------------------------------


@contextlib.contextmanager
def ctrl_c_when(condition: Callable[[], bool]) -> Iterator[None]:
    """Send SIGINT to the main thread, as Ctrl-C does, once ``condition()`` holds."""
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    main = threading.main_thread().ident
    assert main == threading.get_ident(), "Ctrl-C reaches the main thread only"
    stop = threading.Event()

    def watch() -> None:
        while not stop.wait(0.005):
            if condition():
                assert main is not None
                signal.pthread_kill(main, signal.SIGINT)
                return

    watcher = threading.Thread(target=watch, name="ctrl-c")
    watcher.start()
    try:
        yield
    finally:
        stop.set()
        watcher.join()


def test_ctrl_c_mid_upload_in_the_sync_client(portal: BlockingPortal, big_image: Path) -> None:
    """KeyboardInterrupt during a blocking edit reaches the caller and cancels the upload:
    the file and the connection close, the background loop's thread ends with the client."""
    with portal.wrap_async_context_manager(Recorder()) as recorder:
        recorder.gate = anyio.Event()
        before = Snapshot.take()
        with ImagesClient(api_key=KEY, base_url=recorder.base_url) as client:
            with (
                pytest.raises(KeyboardInterrupt),
                ctrl_c_when(lambda: recorder.held > 0 and files_open(big_image) > 0),
            ):
                client.edit(image=big_image, prompt="p", model="gpt-image-1.5")
            wait_until_sync(lambda: files_open(big_image) == 0)
            portal.call(recorder.gate.set)
            wait_until_sync(lambda: recorder.unfinished == 1)
            recorder.gate = None
            assert client.generate(prompt="still usable").data
        assert_released_sync(before)
    assert len(recorder.requests) == 1


def test_ctrl_c_while_waiting_for_an_answer_in_the_sync_client(portal: BlockingPortal) -> None:
    """KeyboardInterrupt while the server thinks cancels the call and drops the connection."""
    with portal.wrap_async_context_manager(Recorder()) as recorder:
        recorder.gate = anyio.Event()
        before = Snapshot.take()
        with ImagesClient(api_key=KEY, base_url=recorder.base_url) as client:
            with pytest.raises(KeyboardInterrupt), ctrl_c_when(lambda: recorder.held > 0):
                client.generate(prompt="p")
            portal.call(recorder.gate.set)
        assert_released_sync(before)


def test_ctrl_c_in_a_sync_batch_cancels_the_rest(portal: BlockingPortal) -> None:
    """KeyboardInterrupt while iterating ``ImagesClient.map`` stops the whole batch."""
    with portal.wrap_async_context_manager(LocalImagesServer(latency=0.02)) as server:
        requests = (
            GenerateRequest(prompt=f"image {index}", model="gpt-image-2.5-flare", size="256x256")
            for index in range(1000)
        )
        before = Snapshot.take()
        received: list[BatchResult] = []
        with (
            ImagesClient(api_key=KEY, base_url=server.base_url) as client,
            pytest.raises(KeyboardInterrupt),
            ctrl_c_when(lambda: len(received) >= 20),
            client.map(requests, concurrency=8) as results,
        ):
            received.extend(results)
        assert_released_sync(before)
        # Only what was in flight went out: at most one window past the results handed over.
        assert len(server.requests) <= len(received) + 8 + 1
    assert all(result.ok for result in received)


def test_leaving_a_sync_stream_early_closes_it(portal: BlockingPortal) -> None:
    """Breaking out of a sync stream's ``with`` drops its connection."""
    with portal.wrap_async_context_manager(LocalImagesServer()) as server:
        before = Snapshot.take()
        with ImagesClient(api_key=KEY, base_url=server.base_url) as client:
            stream = client.generate(
                prompt="p", model="gpt-image-1.5", size="1024x1024", quality="low",
                stream=True, partial_images=3,
            )  # fmt: skip
            with stream:
                for _event in stream:
                    break
            assert list(stream) == []
        assert_released_sync(before)
