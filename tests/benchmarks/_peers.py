"""The clients under test, and the measurements one worker process makes with one of them.

Every peer makes the same calls against the same server: a small generation, an edit that
uploads files given as paths, a large ``b64_json`` response decoded to bytes, and a
streamed generation. Peers:

- ``ours``: :class:`openai_images.AsyncImagesClient`;
- ``sdk-httpx``: the official SDK's ``AsyncOpenAI`` with its default HTTP client;
- ``sdk-aiohttp``: ``AsyncOpenAI`` with ``DefaultAioHttpClient``;
- ``raw-aiohttp``: a bare ``aiohttp.ClientSession`` with orjson, the floor to compare with;
- ``raw-aiohttp-json``: the same with the standard library's ``json``;
- sync peers for threads: ``ours-sync`` (:class:`openai_images.ImagesClient`) and
  ``sdk-sync`` (``OpenAI``).

A worker (``python -m tests.benchmarks._peers '<json spec>'``) measures one scenario with
one peer in a fresh process, so that peak memory and warm caches never mix between peers,
and prints one JSON line of figures. CPU is ``time.process_time()`` of this process (all
its threads; the server is another process). Peak RSS is this process's high-water mark,
reset through ``/proc/self/clear_refs`` just before the measured call, minus its RSS at
that moment. A stream is timed from the response headers (the stream object in hand) to
its last event parsed. Every worker first puts the C allocator in one state
(``settle_allocator``), so that no peer pays for what another's imports left behind.
"""

from __future__ import annotations

import base64
import contextlib
import gc
import json
import os
import resource
import statistics
import struct
import sys
import time
import zlib
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

import aiohttp
import anyio
import orjson
import psutil  # type: ignore[import-untyped]  # psutil ships no types

from tests.images import make_png

__all__ = ["ASYNC_PEERS", "SYNC_PEERS", "main", "make_sparse_png", "run_worker", "settle_allocator"]

API_KEY = "sk-bench-0123456789"
PROMPT = "a red fox in the snow, watercolor"
EDIT_PROMPT = "put them all in a gift basket"
MODEL = "gpt-image-1.5"
GENERATE: dict[str, Any] = {"prompt": PROMPT, "model": MODEL, "size": "1024x1024", "quality": "low"}
STREAM_PARTIALS = 3


class AsyncPeer(Protocol):
    """What every async client under test can do."""

    async def generate(self) -> None:
        """A small generation, its response parsed."""

    async def edit(self, paths: Sequence[str]) -> None:
        """An edit uploading ``paths``, its response parsed."""

    async def big(self) -> list[bytes]:
        """The large response, every image decoded to bytes."""

    async def stream(self) -> tuple[float, float, int]:
        """A streamed generation: when its headers came, when its last event did, events."""

    async def aclose(self) -> None:
        """Close the connections."""


class SyncPeer(Protocol):
    """What every sync client under test can do."""

    def generate(self) -> None:
        """A small generation, its response parsed."""

    def close(self) -> None:
        """Close the connections."""


# -- our client ----------------------------------------------------------------------------


class Ours:
    """``AsyncImagesClient``."""

    def __init__(self, root: str) -> None:
        from openai_images import AsyncImagesClient

        self._client = AsyncImagesClient(api_key=API_KEY, base_url=f"{root}/v1")

    async def generate(self) -> None:
        await self._client.generate(**GENERATE)

    async def edit(self, paths: Sequence[str]) -> None:
        await self._client.edit(image=list(paths), prompt=EDIT_PROMPT, model=MODEL)

    async def big(self) -> list[bytes]:
        response = await self._client.generate(**GENERATE, extra_query={"reply": "big"})
        return [image.content() for image in response.data]

    async def stream(self) -> tuple[float, float, int]:
        count = 0
        async with await self._client.generate(
            **GENERATE,
            stream=True,
            partial_images=STREAM_PARTIALS,
            extra_query={"reply": "stream"},
        ) as events:
            opened = time.perf_counter()
            async for _ in events:
                count += 1
        return opened, time.perf_counter(), count

    async def aclose(self) -> None:
        await self._client.aclose()


class OursSync:
    """``ImagesClient``, the sync facade over the async client."""

    def __init__(self, root: str) -> None:
        from openai_images import ImagesClient

        self._client = ImagesClient(api_key=API_KEY, base_url=f"{root}/v1")

    def generate(self) -> None:
        self._client.generate(**GENERATE)

    def close(self) -> None:
        self._client.close()


# -- the official SDK ----------------------------------------------------------------------


class Sdk:
    """``openai.AsyncOpenAI``, with its default HTTP client or with aiohttp."""

    def __init__(self, root: str, *, aiohttp_client: bool) -> None:
        import openai

        http_client = openai.DefaultAioHttpClient() if aiohttp_client else None
        self._client = openai.AsyncOpenAI(
            api_key=API_KEY, base_url=f"{root}/v1", http_client=http_client
        )

    async def generate(self) -> None:
        await self._client.images.generate(**GENERATE)

    async def edit(self, paths: Sequence[str]) -> None:
        # The SDK's own way to pass files by path.
        await self._client.images.edit(
            image=[Path(path) for path in paths], prompt=EDIT_PROMPT, model=MODEL
        )

    async def big(self) -> list[bytes]:
        response = await self._client.images.generate(**GENERATE, extra_query={"reply": "big"})
        return [base64.b64decode(image.b64_json or "") for image in response.data or ()]

    async def stream(self) -> tuple[float, float, int]:
        count = 0
        events = await self._client.images.generate(
            **GENERATE,
            stream=True,
            partial_images=STREAM_PARTIALS,
            extra_query={"reply": "stream"},
        )
        opened = time.perf_counter()
        async with events:
            async for _ in events:
                count += 1
        return opened, time.perf_counter(), count

    async def aclose(self) -> None:
        await self._client.close()


class SdkSync:
    """``openai.OpenAI`` with its default HTTP client."""

    def __init__(self, root: str) -> None:
        import openai

        self._client = openai.OpenAI(api_key=API_KEY, base_url=f"{root}/v1")

    def generate(self) -> None:
        self._client.images.generate(**GENERATE)

    def close(self) -> None:
        self._client.close()


# -- raw aiohttp ---------------------------------------------------------------------------


class RawAiohttp:
    """A bare ``aiohttp.ClientSession``: the least work a Python client can do."""

    def __init__(self, root: str, *, use_orjson: bool = True) -> None:
        self._url = f"{root}/v1/images"
        self._loads: Callable[[bytes], Any] = orjson.loads if use_orjson else json.loads
        self._dumps: Callable[[Any], bytes] = (
            orjson.dumps if use_orjson else lambda value: json.dumps(value).encode()
        )
        self._headers = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}
        self._session: aiohttp.ClientSession | None = None

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    async def _post_json(self, url: str) -> Any:
        async with self._get_session().post(
            url, data=self._dumps(GENERATE), headers=self._headers
        ) as response:
            response.raise_for_status()
            return self._loads(await response.read())

    async def generate(self) -> None:
        await self._post_json(f"{self._url}/generations")

    async def edit(self, paths: Sequence[str]) -> None:
        form = aiohttp.FormData()
        form.add_field("prompt", EDIT_PROMPT)
        form.add_field("model", MODEL)
        with contextlib.ExitStack() as stack:
            for path in paths:
                # Opening is instant; the peer is as plain as aiohttp users write it.
                file = stack.enter_context(open(path, "rb"))  # noqa: ASYNC230  # the raw-aiohttp peer, as users write it
                form.add_field(
                    "image[]", file, filename=os.path.basename(path), content_type="image/png"
                )
            async with self._get_session().post(
                f"{self._url}/edits",
                data=form,
                headers={"Authorization": f"Bearer {API_KEY}"},
            ) as response:
                response.raise_for_status()
                self._loads(await response.read())

    async def big(self) -> list[bytes]:
        payload = await self._post_json(f"{self._url}/generations?reply=big")
        return [base64.b64decode(image["b64_json"]) for image in payload["data"]]

    async def stream(self) -> tuple[float, float, int]:
        body = self._dumps({**GENERATE, "stream": True, "partial_images": STREAM_PARTIALS})
        count = 0
        async with self._get_session().post(
            f"{self._url}/generations?reply=stream",
            data=body,
            headers={**self._headers, "Accept": "text/event-stream"},
        ) as response:
            opened = time.perf_counter()
            response.raise_for_status()
            pending = bytearray()
            async for chunk in response.content.iter_any():
                pending += chunk
                while (end := pending.find(b"\n\n")) >= 0:
                    block = bytes(pending[:end])
                    del pending[: end + 2]
                    for line in block.split(b"\n"):
                        if line.startswith(b"data: "):
                            self._loads(line[6:])
                            count += 1
        return opened, time.perf_counter(), count

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


ASYNC_PEERS: dict[str, Callable[[str], AsyncPeer]] = {
    "ours": Ours,
    "sdk-httpx": lambda root: Sdk(root, aiohttp_client=False),
    "sdk-aiohttp": lambda root: Sdk(root, aiohttp_client=True),
    "raw-aiohttp": RawAiohttp,
    "raw-aiohttp-json": lambda root: RawAiohttp(root, use_orjson=False),
}
SYNC_PEERS: dict[str, Callable[[str], SyncPeer]] = {"ours-sync": OursSync, "sdk-sync": SdkSync}


# -- measuring -----------------------------------------------------------------------------

MB = 1024 * 1024


def make_sparse_png(path: Path, size: int) -> None:
    """Write ``size`` bytes at ``path``: a valid PNG signature and header, then a hole.

    The hole takes no disk space and reads as zeros, so large uploads cost no disk I/O.
    """
    header = struct.pack(">IIBBBBB", 1024, 1024, 8, 6, 0, 0, 0)
    ihdr = struct.pack(">I", len(header)) + b"IHDR" + header
    ihdr += struct.pack(">I", zlib.crc32(b"IHDR" + header))
    with open(path, "wb") as file:
        file.write(b"\x89PNG\r\n\x1a\n" + ihdr)
        file.truncate(size)


def write_small_png(path: Path) -> None:
    """A small real PNG, for warming up the upload path."""
    path.write_bytes(make_png(64, 64))


def _reset_peak() -> None:
    # Linux resets the process's peak RSS (VmHWM, and so ru_maxrss) on this write, so the
    # peak read afterwards belongs to the measured call alone, not to imports or warm-up.
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def _peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _rss() -> int:
    return int(psutil.Process().memory_info().rss)


async def _drive(call: Callable[[], Awaitable[Any]], *, total: int, concurrency: int) -> None:
    """Run ``call`` ``total`` times, ``concurrency`` at a time."""
    left = total

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            await call()

    async with anyio.create_task_group() as group:
        for _ in range(min(concurrency, total)):
            group.start_soon(worker)


async def _timed(
    call: Callable[[], Awaitable[Any]], *, total: int, concurrency: int
) -> tuple[float, float]:
    """Wall seconds and client CPU seconds (all threads) for ``total`` calls."""
    gc.collect()
    cpu, wall = time.process_time(), time.perf_counter()
    await _drive(call, total=total, concurrency=concurrency)
    return time.perf_counter() - wall, time.process_time() - cpu


async def _small(peer: AsyncPeer, spec: dict[str, Any]) -> dict[str, float]:
    requests, sequential = spec["requests"], spec["sequential"]
    await _drive(peer.generate, total=spec["warmup"], concurrency=spec["concurrency"])
    wall, cpu = await _timed(peer.generate, total=requests, concurrency=spec["concurrency"])
    seq_wall, seq_cpu = await _timed(peer.generate, total=sequential, concurrency=1)
    wall8, _ = await _timed(peer.generate, total=requests, concurrency=8)
    return {
        "rps": requests / wall,
        "cpu_us": cpu / requests * 1e6,
        "latency_ms": seq_wall / sequential * 1e3,
        "seq_cpu_us": seq_cpu / sequential * 1e6,
        "rps8": requests / wall8,
    }


async def _edit(peer: AsyncPeer, spec: dict[str, Any]) -> dict[str, float]:
    await peer.edit([spec["warm_path"]])
    gc.collect()
    _reset_peak()
    before = _rss()
    walls, cpus = [], []
    for _ in range(spec["repeats"]):
        wall, cpu = time.perf_counter(), time.process_time()
        await peer.edit(spec["paths"])
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return {
        "wall_s": statistics.median(walls),
        "cpu_s": statistics.median(cpus),
        "rss_mb": (_peak_rss() - before) / MB,
    }


async def _big(peer: AsyncPeer, spec: dict[str, Any]) -> dict[str, float]:
    await peer.generate()
    gc.collect()
    _reset_peak()
    before = _rss()
    wall, cpu = time.perf_counter(), time.process_time()
    images = await peer.big()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    peak = _peak_rss()
    if len(images) != spec["images"]:
        raise RuntimeError(f"expected {spec['images']} images, got {len(images)}")
    return {"wall_s": wall, "cpu_s": cpu, "rss_mb": (peak - before) / MB}


async def _stream(peer: AsyncPeer, spec: dict[str, Any]) -> dict[str, float]:
    await peer.stream()
    spans = []
    for _ in range(spec["repeats"]):
        gc.collect()
        opened, last, count = await peer.stream()
        if count != spec["events"]:
            raise RuntimeError(f"expected {spec['events']} events, got {count}")
        spans.append(last - opened)
    spans.sort()
    return {"first_byte_to_last_ms": spans[len(spans) // 2] * 1e3}


_SCENARIOS = {"small": _small, "edit": _edit, "big": _big, "stream": _stream}


async def _run_async(spec: dict[str, Any]) -> dict[str, float]:
    peer = ASYNC_PEERS[spec["peer"]](spec["root"])
    try:
        return await _SCENARIOS[spec["scenario"]](peer, spec)
    finally:
        await peer.aclose()


def _threads(spec: dict[str, Any]) -> dict[str, float]:
    peer = SYNC_PEERS[spec["peer"]](spec["root"])
    try:
        for _ in range(spec["warmup"]):
            peer.generate()
        sequential, requests, threads = spec["sequential"], spec["requests"], spec["threads"]
        gc.collect()
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(sequential):
            peer.generate()
        seq_wall, seq_cpu = time.perf_counter() - wall, time.process_time() - cpu

        def share(calls: int) -> None:
            for _ in range(calls):
                peer.generate()

        gc.collect()
        wall = time.perf_counter()
        with ThreadPoolExecutor(threads) as pool:
            for future in [pool.submit(share, requests // threads) for _ in range(threads)]:
                future.result()
        threads_wall = time.perf_counter() - wall
    finally:
        peer.close()
    return {
        "latency_ms": seq_wall / sequential * 1e3,
        "seq_cpu_us": seq_cpu / sequential * 1e6,
        "threads_rps": requests // threads * threads / threads_wall,
    }


def settle_allocator() -> None:
    """Put the C allocator in the same state in every worker, whatever it imported.

    asyncio reads a socket into a fresh 256 KiB buffer, then shrinks it to what arrived.
    glibc serves a block that size from its heap when the heap has room or once its
    ``mmap`` threshold has risen (it rises when a larger mapped block is freed), and
    otherwise maps and unmaps it for every read: three system calls and a page fault,
    about 12 µs of a small request's 65-80 here. Which state a process is in depends on
    what it happened to import: a worker of this package's client was in the cheap one,
    a bare aiohttp worker in the dear one, which flattered every ratio to raw aiohttp.
    Freeing one 1 MiB block raises the threshold, so every peer reads in the cheap state
    (the state of most programs, which free large blocks sooner or later).
    """
    block = bytes(1 << 20)
    del block


def run_worker(spec: dict[str, Any]) -> dict[str, float]:
    """Measure one scenario with one peer in this process and return the figures."""
    settle_allocator()
    if spec["peer"] in SYNC_PEERS:
        return _threads(spec)
    return anyio.run(_run_async, spec)


def main() -> None:
    """Worker entry point: the spec is the first argument, figures go to stdout as JSON."""
    print(json.dumps(run_worker(json.loads(sys.argv[1]))), flush=True)


if __name__ == "__main__":
    main()
