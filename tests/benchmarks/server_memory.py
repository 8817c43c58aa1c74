"""Measure the local server's memory for edits of small files that claim many pixels.

Run ``python -m tests.benchmarks.server_memory`` from the repo root. A PNG of 6000x6000
pixels of one colour is a few kilobytes; the server must decode it to draw the edit. The
server runs in a child process (``openai-images serve``); four edits of one such image are
sent at once, twice, and the child's peak RSS (sampled every 10 ms) and its RSS a second
after the last answer are printed in MiB, with its RSS when idle before. Nothing is asserted:
the figures go in a change's notes.
"""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import threading
import time

import aiohttp
import anyio
import psutil
from PIL import Image

SIDE = 6000
CONCURRENT = 4
ROUNDS = 2


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (SIDE, SIDE), (200, 120, 40)).save(buffer, format="PNG")
    return buffer.getvalue()


async def _edits(base_url: str, png: bytes) -> list[int]:
    statuses: list[int] = []

    async def one(session: aiohttp.ClientSession) -> None:
        form = aiohttp.FormData()
        form.add_field("prompt", "a basket")
        form.add_field("model", "gpt-image-1.5")
        form.add_field("size", "1024x1024")
        form.add_field("image", png, filename="big.png", content_type="image/png")
        async with session.post(f"{base_url}/images/edits", data=form) as reply:
            await reply.read()
            statuses.append(reply.status)

    headers = {"Authorization": "Bearer test-key"}
    async with aiohttp.ClientSession(headers=headers) as session:
        for _ in range(ROUNDS):
            async with anyio.create_task_group() as group:
                for _ in range(CONCURRENT):
                    group.start_soon(one, session)
    return statuses


def main() -> int:
    """Start the server, send the edits, print idle, peak and after RSS in MiB."""
    png = _png()
    port = _free_port()
    child = subprocess.Popen(
        [sys.executable, "-m", "openai_images", "serve", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    try:
        process = psutil.Process(child.pid)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        idle = process.memory_info().rss
        peak = idle
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, process.memory_info().rss)
                time.sleep(0.01)

        sampler = threading.Thread(target=sample)
        sampler.start()
        statuses = anyio.run(_edits, f"http://127.0.0.1:{port}/v1", png)
        time.sleep(1.0)
        done.set()
        sampler.join()
        after = process.memory_info().rss
    finally:
        child.terminate()
        child.wait(10)
    mib = 1024 * 1024
    print(
        f"{len(png)} B PNG of {SIDE}x{SIDE}, {CONCURRENT} concurrent edits x {ROUNDS}: "
        f"statuses {sorted(set(statuses))}; server RSS idle {idle / mib:.0f} MiB, "
        f"peak {peak / mib:.0f} MiB, a second after {after / mib:.0f} MiB"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
