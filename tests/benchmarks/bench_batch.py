"""The batch engine against a slow server and a rate-limited one: ``client.map`` at scale.

Usage (from the repo root): ``python -m tests.benchmarks.bench_batch [--requests N]
[--concurrency C] [--latency S] [--rpm R] [--burst B] [--output PATH]``.

A minimal aiohttp server runs in another process (``... bench_batch serve ...``), so its
work never competes with the client's event loop. It reads each upload whole, waits
``--latency`` seconds and answers a tiny valid ``ImagesResponse``. The client sends
``--requests`` small edits (a 16x16 PNG from memory) through ``client.run_batch`` at
``--concurrency``. Rows:

1. ``latency``: no limit. Goal: wall time within 10% of ``requests / concurrency * latency``.
2. ``rate limit``: the server admits ``--rpm`` requests a minute from a bucket of
   ``--burst`` (429 with ``retry-after-ms`` beyond that) and sends the
   ``x-ratelimit-*-requests`` headers. Goal: at least 90% of the limit, no failed item.
3. ``rate limit, no headers``: the same limit, but only the 429 and its ``retry-after-ms``
   tell the client anything (the limiter's AIMD window does the pacing).

It prints a Markdown table and writes the figures to ``tests/benchmarks/results/batch.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import math
import os
import platform
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from openai_images import AsyncImagesClient, EditRequest
from tests.images import make_png

ROOT = Path(__file__).resolve().parents[2]
RESULTS = Path(__file__).resolve().parent / "results" / "batch.json"

_ANSWER = orjson.dumps(
    {"created": 1_700_000_000, "data": [{"b64_json": base64.b64encode(make_png(1, 1)).decode()}]}
)


# -- the server (its own process) ----------------------------------------------------------


class _Bucket:
    """``capacity`` requests, refilled at ``per_second``; it starts full."""

    def __init__(self, *, capacity: float, per_second: float) -> None:
        self.capacity = capacity
        self.per_second = per_second
        self.level = capacity
        self.updated = time.monotonic()

    def _refill(self) -> None:
        now = time.monotonic()
        self.level = min(self.capacity, self.level + (now - self.updated) * self.per_second)
        self.updated = now

    def take(self) -> float:
        """Take a request and return 0, or return the seconds until one is there."""
        self._refill()
        if self.level >= 1:
            self.level -= 1
            return 0.0
        return (1 - self.level) / self.per_second

    def headers(self) -> dict[str, str]:
        """The API's request rate-limit headers for this bucket."""
        self._refill()
        to_full = (self.capacity - self.level) / self.per_second
        return {
            "x-ratelimit-limit-requests": str(int(self.capacity)),
            "x-ratelimit-remaining-requests": str(max(0, math.floor(self.level))),
            "x-ratelimit-reset-requests": f"{math.ceil(to_full * 1000)}ms",
        }


def _app(*, latency: float, bucket: _Bucket | None, send_headers: bool) -> web.Application:
    async def answer(request: web.Request) -> web.Response:
        await request.read()
        if bucket is not None:
            wait = bucket.take()
            if wait:
                headers = {"retry-after-ms": str(math.ceil(wait * 1000))}
                if send_headers:
                    headers.update(bucket.headers())
                error = {"message": "Rate limit reached", "type": "requests", "param": None}
                body = orjson.dumps({"error": {**error, "code": "rate_limit_exceeded"}})
                return web.Response(
                    status=429, body=body, headers=headers, content_type="application/json"
                )
        await asyncio.sleep(latency)
        headers = bucket.headers() if bucket is not None and send_headers else {}
        return web.Response(body=_ANSWER, headers=headers, content_type="application/json")

    app = web.Application(client_max_size=1 << 24)
    app.router.add_post("/v1/images/edits", answer)
    return app


async def _serve(arguments: argparse.Namespace) -> None:
    bucket = None
    if arguments.rpm:
        bucket = _Bucket(capacity=arguments.burst, per_second=arguments.rpm / 60)
    app = _app(latency=arguments.latency, bucket=bucket, send_headers=not arguments.no_headers)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
    await site.start()
    print(f"PORT {runner.addresses[0][1]}", flush=True)
    # Serve until the parent closes our stdin.
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await runner.cleanup()


class _Server:
    """The server process, started with the given mode and stopped on exit."""

    def __init__(self, *options: str) -> None:
        self._command = [sys.executable, "-m", "tests.benchmarks.bench_batch", "serve", *options]
        self._process: subprocess.Popen[str] | None = None
        self.base_url = ""

    def __enter__(self) -> _Server:
        self._process = subprocess.Popen(
            self._command, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line.startswith("PORT "):
            raise RuntimeError(f"the benchmark server did not start: {line!r}")
        self.base_url = f"http://127.0.0.1:{int(line.split()[1])}/v1"
        return self

    def __exit__(self, *exc_info: object) -> None:
        assert self._process is not None
        assert self._process.stdin is not None
        self._process.stdin.close()
        self._process.wait(timeout=30)
        if self._process.stdout is not None:
            self._process.stdout.close()


# -- the client ----------------------------------------------------------------------------


def _edits(count: int) -> Iterator[EditRequest]:
    image = make_png(16, 16)
    for index in range(count):
        yield EditRequest(
            image=image,
            prompt=f"edit {index}",
            model="gpt-image-2.5-flare",
            size="256x256",
            quality="low",
        )


async def _run(base_url: str, *, requests: int, concurrency: int) -> dict[str, Any]:
    async with AsyncImagesClient(
        api_key="bench", base_url=base_url, max_connections=concurrency
    ) as client:
        cpu = time.process_time()
        report = await client.run_batch(
            _edits(requests), concurrency=concurrency, keep_results=False
        )
        cpu = time.process_time() - cpu
    summary = report.summary
    return {
        "wall_time": summary.wall_time,
        "requests_per_second": summary.requests_per_second,
        "ok": summary.ok,
        "failed": summary.failed,
        "rate_limited": summary.rate_limited,
        "retries": summary.retries,
        "client_cpu_per_request_ms": cpu / requests * 1000,
    }


def _measure(arguments: argparse.Namespace) -> list[dict[str, Any]]:
    n, c, latency = arguments.requests, arguments.concurrency, arguments.latency
    rows = []
    with _Server("--latency", str(latency), "--rpm", "0") as server:
        figures = asyncio.run(_run(server.base_url, requests=n, concurrency=c))
    ideal = n / c * latency
    rows.append(
        {
            "mode": "latency",
            "ideal_wall_time": ideal,
            "goal": "wall time within 10% of ideal",
            "score": ideal / figures["wall_time"],
            "met": figures["wall_time"] <= ideal * 1.1 and figures["failed"] == 0,
            **figures,
        }
    )
    limit = arguments.rpm / 60
    for mode, extra in (("rate limit", []), ("rate limit, no headers", ["--no-headers"])):
        options = ["--latency", str(latency), "--rpm", str(arguments.rpm)]
        with _Server(*options, "--burst", str(arguments.burst), *extra) as server:
            figures = asyncio.run(_run(server.base_url, requests=n, concurrency=c))
        rows.append(
            {
                "mode": mode,
                "limit_per_second": limit,
                "ideal_wall_time": (n - arguments.burst) / limit,
                "goal": ">= 90% of the limit, no failed item",
                "score": figures["requests_per_second"] / limit,
                "met": figures["requests_per_second"] >= 0.9 * limit and figures["failed"] == 0,
                **figures,
            }
        )
    return rows


def _table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| mode | wall time (s) | ideal (s) | requests/s | of goal | failed | 429s | retries "
        "| client CPU/request (ms) | goal met |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['mode']} | {row['wall_time']:.2f} | {row['ideal_wall_time']:.2f} "
            f"| {row['requests_per_second']:.1f} | {row['score']:.1%} | {row['failed']} "
            f"| {row['rate_limited']} | {row['retries']} "
            f"| {row['client_cpu_per_request_ms']:.2f} | {'yes' if row['met'] else 'NO'} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark (or, with ``serve``, be its server)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("command", nargs="?", choices=["run", "serve"], default="run")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--rpm", type=int, default=12_000, help="requests a minute (row 2, 3)")
    parser.add_argument("--burst", type=int, default=20, help="the server's bucket (row 2, 3)")
    parser.add_argument("--no-headers", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--output", type=Path, default=RESULTS)
    arguments = parser.parse_args(argv)
    if arguments.command == "serve":
        asyncio.run(_serve(arguments))
        return
    rows = _measure(arguments)
    print(_table(rows))
    result = {
        "benchmark": "batch",
        "requests": arguments.requests,
        "concurrency": arguments.concurrency,
        "latency": arguments.latency,
        "rpm": arguments.rpm,
        "burst": arguments.burst,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "rows": rows,
    }
    arguments.output.parent.mkdir(parents=True, exist_ok=True)
    arguments.output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
