"""The async client's resources: closing, forgetting to close, event loops, cancellation."""

from __future__ import annotations

import gc
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import anyio
import anyio.to_thread
import pytest

from openai_images import AsyncImagesClient

from .images import make_png
from .recorder import Recorder

pytestmark = pytest.mark.anyio


def _forget(objects: list[object]) -> None:
    """Drop the last references to ``objects`` and collect them, cycles included."""
    objects.clear()
    gc.collect()


@pytest.fixture
async def recorder() -> AsyncIterator[Recorder]:
    async with Recorder() as rec:
        yield rec


def _open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


async def _eventually(condition: Callable[[], bool]) -> None:
    """Wait for something another task, or the kernel, makes true (callers bound the wait)."""
    while True:
        if condition():
            return
        await anyio.sleep(0.01)


async def test_a_used_client_never_closed_warns(recorder: Recorder) -> None:
    """Dropping a client with open connections gives a ResourceWarning naming the fix."""
    client = AsyncImagesClient(api_key="sk-test", base_url=recorder.base_url)
    await client.generate(prompt="p")
    # Kept to close the connections properly once the warning is seen.
    transport = client._sender.transport
    dropped = [client]
    del client
    with pytest.warns(ResourceWarning, match="never closed"):
        _forget(dropped)
    await transport.aclose()


async def test_an_unused_client_needs_no_closing() -> None:
    """A client that never sent anything holds nothing, so dropping it is silent."""
    client = AsyncImagesClient(api_key="sk-test", base_url="http://127.0.0.1:9/v1")
    del client
    gc.collect()


async def test_aclose_twice_is_fine(recorder: Recorder) -> None:
    """``aclose()`` may be called again, and after ``async with``."""
    async with AsyncImagesClient(api_key="sk-test", base_url=recorder.base_url) as client:
        await client.generate(prompt="p")
        await client.aclose()
    await client.aclose()


async def test_a_closed_client_refuses_requests(recorder: Recorder) -> None:
    """After closing, a call raises RuntimeError and sends nothing."""
    client = AsyncImagesClient(api_key="sk-test", base_url=recorder.base_url)
    await client.aclose()
    with pytest.raises(RuntimeError, match="closed"):
        await client.generate(prompt="p")
    assert recorder.requests == []


async def test_a_client_used_from_two_event_loops_says_so(recorder: Recorder) -> None:
    """A second event loop gets a clear RuntimeError; the first loop keeps working."""
    async with AsyncImagesClient(api_key="sk-test", base_url=recorder.base_url) as client:
        await client.generate(prompt="first loop")

        async def from_another_loop() -> None:
            await client.generate(prompt="second loop")

        with pytest.raises(RuntimeError, match="another event loop"):
            await anyio.to_thread.run_sync(anyio.run, from_another_loop)
        await client.generate(prompt="first loop again")
    assert [r.json["prompt"] for r in recorder.requests] == ["first loop", "first loop again"]


async def test_cancelling_an_upload_frees_everything(recorder: Recorder, tmp_path: Path) -> None:
    """Cancelling a 20 MB edit mid-upload returns, closing the file and the connection."""
    path = tmp_path / "large.png"
    path.write_bytes(make_png(64, 64) + b"\0" * (20 * 1024 * 1024))
    recorder.gate = anyio.Event()
    async with AsyncImagesClient(api_key="sk-test", base_url=recorder.base_url) as client:
        before = _open_fds()
        with anyio.fail_after(30):  # a guard against hanging, not a timing check
            async with anyio.create_task_group() as group:

                async def upload() -> None:
                    await client.edit(image=path, prompt="p", model="gpt-image-1.5")

                group.start_soon(upload)
                await _eventually(lambda: recorder.held > 0)
                # Let the client write until the unread socket buffers are full.
                await anyio.sleep(0.2)
                group.cancel_scope.cancel()
            recorder.gate.set()
            await _eventually(lambda: recorder.unfinished > 0)
            # The server closes its side of the socket just after its handler returns.
            await _eventually(lambda: _open_fds() == before)
        assert recorder.requests == []
    gc.collect()


async def test_a_cancelled_upload_leaves_the_client_usable(
    recorder: Recorder, tmp_path: Path
) -> None:
    """After a cancelled upload the same client sends the next request normally."""
    path = tmp_path / "large.png"
    path.write_bytes(make_png(64, 64) + b"\0" * (8 * 1024 * 1024))
    recorder.gate = anyio.Event()
    async with AsyncImagesClient(api_key="sk-test", base_url=recorder.base_url) as client:
        with anyio.move_on_after(0.3):
            await client.edit(image=path, prompt="p", model="gpt-image-1.5")
        recorder.gate.set()
        recorder.gate = None
        response = await client.generate(prompt="after")
    assert [r.json for r in recorder.requests] == [{"prompt": "after"}]
    assert response.request_id == "req_1"
