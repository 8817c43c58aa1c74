"""The batch engine against the API's kinds of rate limits: ``client.run_batch`` at scale.

Usage (from the repo root): ``python -m tests.benchmarks.bench_batch [--runs N]
[--scale S] [--modes MODE...] [--output PATH]``.

A minimal aiohttp server runs in another process (``... bench_batch serve ...``), so its
work never competes with the client's event loop. It enforces its limits with the local
server's own ``openai_images.testing._ratelimit.RateLimiter`` (the same buckets, slices and
headers), waits ``latency`` seconds per admitted request and answers a tiny valid
``ImagesResponse`` (with ``usage`` when tokens are limited). Modes:

1. ``unlimited``: no limit (truthful headers of a huge one), 2,000 small edits at
   concurrency 64, 0.1 s each. Goal: within 1.10x of ``requests / 64 * 0.1``.
2. ``one per second``: a bucket of one request refilled once a second, images after a
   second, concurrency 64. Goal: at most 5 429s in the first 2 s, nothing failed.
3. ``truthful bucket``: 1,200 a minute from a bucket of 20, headers telling the truth.
4. ``quantized``: 1,200 a minute enforced as 20 in each one-second slice, headers showing
   the per-minute bucket (room the server refuses).
5. ``images n=4``: 4,800 images a minute (its bucket spent at the start), ``n=4``.
6. ``tokens``: 1,200,000 tokens a minute (spent at the start), 1,000 tokens an image.
7. ``two processes``: two client processes, half the requests each, sharing the quantized
   limit.

Every limited mode counts refused requests against the request limit, as the API does
and as the local server does by default (``count_refused``: a 429 takes a request too);
a mode with ``count_refused=False`` would say so in the table's "429s counted" column.

Goals for 3-7: at least 0.90 of the enforced rate (ideal time / wall time), no failed item,
429s under 5% of the requests after the first 10 s (counted by the server). ``--scale``
shrinks the request counts (each limited mode runs about 25 s at scale 1).

It prints a Markdown table per run and writes the figures to
``tests/benchmarks/results/batch.json``.
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

import attrs
import orjson
from aiohttp import web

from openai_images import AsyncImagesClient, EditRequest, GenerateRequest, ImageRequest
from openai_images.testing._ratelimit import RateLimiter, format_duration
from tests.images import make_png

ROOT = Path(__file__).resolve().parents[2]
RESULTS = Path(__file__).resolve().parent / "results" / "batch.json"

_IMAGE = base64.b64encode(make_png(1, 1)).decode()
_WARMUP = 10.0  # seconds after the first request before 429s are counted against the goal


@attrs.frozen(kw_only=True)
class Mode:
    """One server setting and the batch sent against it."""

    name: str
    requests: int
    concurrency: int = 64
    latency: float = 0.5
    n: int = 1
    edits: bool = False
    processes: int = 1
    rpm: int | None = None
    burst: int | None = None
    slice_seconds: float | None = None
    ipm: int | None = None
    tpm: int | None = None
    tokens_per_image: int = 0
    # Whether a refused request takes a request from the limit (as at the API).
    count_refused: bool = True
    # Requests a second the limit allows (for the share of the rate), and what a client
    # may take at once before it binds (a bucket's burst, the first slice).
    rate: float | None = None
    head_start: int = 0

    def server_options(self) -> list[str]:
        options = ["--latency", str(self.latency)]
        for flag, value in (
            ("--rpm", self.rpm),
            ("--burst", self.burst),
            ("--slice", self.slice_seconds),
            ("--ipm", self.ipm),
            ("--tpm", self.tpm),
        ):
            if value is not None:
                options += [flag, str(value)]
        if not self.count_refused:
            options.append("--free-refusals")
        return [*options, "--tokens-per-image", str(self.tokens_per_image)]

    def ideal(self) -> float:
        if self.rate is None:
            return self.requests / self.concurrency * self.latency
        return max(self.requests - self.head_start, 0) / self.rate + self.latency


def modes(scale: float) -> list[Mode]:
    """The modes, their limited request counts multiplied by ``scale``."""

    def count(base: int) -> int:
        return max(20, round(base * scale))

    return [
        Mode(name="unlimited", requests=2000, latency=0.1, edits=True),
        Mode(
            name="one per second", requests=8, latency=1.0, rpm=60, burst=1, rate=1.0, head_start=1
        ),
        Mode(
            name="truthful bucket", requests=count(500), rpm=1200, burst=20, rate=20, head_start=20
        ),
        Mode(
            name="quantized",
            requests=count(500),
            rpm=1200,
            slice_seconds=1.0,
            rate=20,
            head_start=20,
        ),
        Mode(name="images n=4", requests=count(500), n=4, ipm=4800, rate=20),
        Mode(name="tokens", requests=count(500), tpm=1_200_000, tokens_per_image=1000, rate=20),
        Mode(
            name="two processes",
            requests=count(500),
            processes=2,
            rpm=1200,
            slice_seconds=1.0,
            rate=20,
            head_start=20,
        ),
    ]


# -- the server (its own process) ----------------------------------------------------------


def _app(arguments: argparse.Namespace) -> web.Application:
    limiter = RateLimiter(
        requests_per_minute=arguments.rpm,
        tokens_per_minute=arguments.tpm,
        images_per_minute=arguments.ipm,
        burst=arguments.burst,
        slice_seconds=arguments.slice,
        count_refused=not arguments.free_refusals,
    )
    # Images and tokens start spent, as after earlier work: the refill is what limits.
    if limiter.images is not None:
        limiter.images.charge(limiter.images.capacity)
    if arguments.tpm:
        limiter.tokens.charge(limiter.tokens.capacity)
    unlimited = not (arguments.rpm or arguments.tpm or arguments.ipm)
    events: list[tuple[float, int]] = []
    began: list[float] = []

    def refuse(limit: str, wait: float) -> web.Response:
        headers = {**limiter.headers(), "retry-after-ms": str(max(1, math.ceil(wait * 1000)))}
        message = f"Rate limit reached on {limit}. Please try again in {format_duration(wait)}."
        body = {"error": {"message": message, "type": limit, "param": None}}
        body["error"]["code"] = "rate_limit_exceeded"
        return web.Response(
            status=429, body=orjson.dumps(body), headers=headers, content_type="application/json"
        )

    async def answer(request: web.Request) -> web.Response:
        now = time.monotonic()
        if not began:
            began.append(now)
        at = now - began[0]
        n = 1
        if request.content_type == "application/json":
            n = int((await request.json()).get("n") or 1)
        else:
            await request.read()
        admission = limiter.admit()
        if admission.allowed:
            admission = limiter.admit_images(n)
        if not admission.allowed:
            events.append((at, 429))
            return refuse(admission.limit or "requests", admission.retry_after)
        events.append((at, 200))
        await asyncio.sleep(arguments.latency)
        payload: dict[str, Any] = {"created": 1_700_000_000, "data": [{"b64_json": _IMAGE}] * n}
        if arguments.tokens_per_image:
            tokens = arguments.tokens_per_image * n
            limiter.charge_tokens(tokens)
            payload["usage"] = {"input_tokens": 50, "output_tokens": tokens - 50}
            payload["usage"]["total_tokens"] = tokens
        headers = limiter.headers()
        if unlimited:
            headers = {name: value for name, value in headers.items() if "images" not in name}
        return web.Response(
            body=orjson.dumps(payload), headers=headers, content_type="application/json"
        )

    async def stats(request: web.Request) -> web.Response:
        return web.json_response({"events": events})

    app = web.Application(client_max_size=1 << 24)
    app.router.add_post("/v1/images/edits", answer)
    app.router.add_post("/v1/images/generations", answer)
    app.router.add_get("/stats", stats)
    return app


async def _serve(arguments: argparse.Namespace) -> None:
    runner = web.AppRunner(_app(arguments), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
    await site.start()
    print(f"PORT {runner.addresses[0][1]}", flush=True)
    # Serve until the parent closes our stdin.
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await runner.cleanup()


class _Process:
    """A child process of this module, given a command line, stopped on exit."""

    def __init__(self, *arguments: str) -> None:
        self._command = [sys.executable, "-m", "tests.benchmarks.bench_batch", *arguments]
        self.process: subprocess.Popen[str] | None = None

    def __enter__(self) -> subprocess.Popen[str]:
        self.process = subprocess.Popen(
            self._command, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        return self.process

    def __exit__(self, *exc_info: object) -> None:
        assert self.process is not None
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(timeout=60)
        if self.process.stdout is not None:
            self.process.stdout.close()


# -- the client ----------------------------------------------------------------------------


def _requests(mode: Mode, count: int, tag: str) -> Iterator[ImageRequest]:
    image = make_png(16, 16)
    for index in range(count):
        if mode.edits:
            yield EditRequest(
                image=image,
                prompt=f"edit {tag}{index}",
                model="gpt-image-2.5-flare",
                size="256x256",
                quality="low",
            )
        else:
            yield GenerateRequest(
                prompt=f"item {tag}{index}", model="gpt-image-1-mini", quality="low", n=mode.n
            )


async def _run(base_url: str, mode: Mode, count: int, tag: str = "") -> dict[str, Any]:
    async with AsyncImagesClient(
        api_key="bench", base_url=base_url, max_connections=mode.concurrency
    ) as client:
        cpu = time.process_time()
        report = await client.run_batch(
            _requests(mode, count, tag), concurrency=mode.concurrency, keep_results=False
        )
        cpu = time.process_time() - cpu
    summary = report.summary
    return {
        "wall_time": summary.wall_time,
        "ok": summary.ok,
        "failed": summary.failed,
        "rate_limited": summary.rate_limited,
        "retries": summary.retries,
        "limited_by": summary.limited_by,
        "client_cpu_per_request_ms": cpu / max(count, 1) * 1000,
    }


def _client_main(arguments: argparse.Namespace) -> None:
    """A client process of the ``two processes`` mode: run, print the figures as JSON."""
    mode = next(m for m in modes(arguments.scale) if m.name == arguments.mode)
    sys.stdin.readline()  # start together, when the parent says so
    figures = asyncio.run(_run(arguments.base_url, mode, arguments.count, arguments.tag))
    print(json.dumps(figures), flush=True)


def _stats(base_url: str) -> list[tuple[float, int]]:
    import urllib.request

    with urllib.request.urlopen(base_url.removesuffix("/v1") + "/stats") as answer:
        return [(float(at), int(status)) for at, status in json.load(answer)["events"]]


def _measure(mode: Mode, scale: float) -> dict[str, Any]:
    with _Process("serve", *mode.server_options()) as server:
        assert server.stdout is not None
        line = server.stdout.readline()
        if not line.startswith("PORT "):
            raise RuntimeError(f"the benchmark server did not start: {line!r}")
        base_url = f"http://127.0.0.1:{int(line.split()[1])}/v1"
        if mode.processes == 1:
            figures = asyncio.run(_run(base_url, mode, mode.requests))
        else:
            figures = _run_processes(base_url, mode, scale)
        events = _stats(base_url)
    ideal = mode.ideal()
    late = [status for at, status in events if at >= _WARMUP]
    early = [status for at, status in events if at < 2.0]
    row = {
        "mode": mode.name,
        "requests": mode.requests,
        "n": mode.n,
        "enforced_per_second": mode.rate,
        "count_refused": mode.count_refused,
        "ideal_wall_time": ideal,
        "share_of_rate": ideal / figures["wall_time"] if mode.rate else None,
        "of_ideal": figures["wall_time"] / ideal,
        "sent": len(events),
        "429_first_2s": early.count(429),
        "429_after_10s": late.count(429),
        "sent_after_10s": len(late),
        **figures,
    }
    late_share = row["429_after_10s"] / row["sent_after_10s"] if late else 0.0
    row["429_share_after_10s"] = late_share
    if mode.rate is None:
        row["goal"] = "within 1.10x of ideal"
        row["met"] = figures["wall_time"] <= 1.10 * ideal and figures["failed"] == 0
    elif mode.name == "one per second":
        row["goal"] = "<= 5 429s in the first 2 s, 0 failed"
        row["met"] = row["429_first_2s"] <= 5 and figures["failed"] == 0
    else:
        row["goal"] = ">= 0.90 of the rate, 0 failed, 429s < 5% after 10 s"
        row["met"] = row["share_of_rate"] >= 0.90 and figures["failed"] == 0 and late_share < 0.05
    return row


def _run_processes(base_url: str, mode: Mode, scale: float) -> dict[str, Any]:
    share = mode.requests // mode.processes
    clients = [
        _Process(
            "client",
            "--base-url",
            base_url,
            "--mode",
            mode.name,
            "--count",
            str(share),
            "--tag",
            f"p{number}-",
            "--scale",
            str(scale),
        )
        for number in range(mode.processes)
    ]
    processes = [client.__enter__() for client in clients]
    try:
        for process in processes:
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.flush()
        results = []
        for process in processes:
            assert process.stdout is not None
            results.append(json.loads(process.stdout.readline()))
    finally:
        for client in clients:
            client.__exit__()
    limits = sorted({str(result["limited_by"]) for result in results})
    return {
        "wall_time": max(result["wall_time"] for result in results),
        "ok": sum(result["ok"] for result in results),
        "failed": sum(result["failed"] for result in results),
        "rate_limited": sum(result["rate_limited"] for result in results),
        "retries": sum(result["retries"] for result in results),
        "limited_by": "/".join(limits),
        "client_cpu_per_request_ms": sum(r["client_cpu_per_request_ms"] for r in results) / 2,
    }


def _table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| mode | requests | wall (s) | ideal (s) | share of rate | failed | 429s "
        "| 429s in first 2 s | 429s after 10 s | 429s counted | limited by | goal met |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---|",
    ]
    for row in rows:
        share = row["share_of_rate"]
        share_text = f"{share:.2f}" if share is not None else f"{row['of_ideal']:.2f}x ideal"
        lines.append(
            f"| {row['mode']} | {row['requests']} | {row['wall_time']:.2f} "
            f"| {row['ideal_wall_time']:.2f} | {share_text} | {row['failed']} "
            f"| {row['rate_limited']} | {row['429_first_2s']} "
            f"| {row['429_after_10s']}/{row['sent_after_10s']} "
            f"({row['429_share_after_10s']:.1%}) "
            f"| {'yes' if row['count_refused'] else 'no'} | {row['limited_by']} "
            f"| {'yes' if row['met'] else 'NO'} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark (or, with ``serve`` or ``client``, be one of its processes)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("command", nargs="?", choices=["run", "serve", "client"], default="run")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--modes", nargs="*", help="only these modes (by name)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    # The server's and the client processes' own options.
    parser.add_argument("--latency", type=float, default=0.1, help=argparse.SUPPRESS)
    parser.add_argument("--rpm", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--burst", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--slice", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--ipm", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--tpm", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--tokens-per-image", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--free-refusals", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--mode", help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--tag", default="", help=argparse.SUPPRESS)
    arguments = parser.parse_args(argv)
    if arguments.command == "serve":
        asyncio.run(_serve(arguments))
        return
    if arguments.command == "client":
        _client_main(arguments)
        return
    chosen = [m for m in modes(arguments.scale) if not arguments.modes or m.name in arguments.modes]
    runs = []
    for run in range(arguments.runs):
        rows = []
        for mode in chosen:
            rows.append(_measure(mode, arguments.scale))
            print(f"  {mode.name}: {rows[-1]['wall_time']:.1f} s", file=sys.stderr, flush=True)
        print(f"\nRun {run + 1} of {arguments.runs}:\n{_table(rows)}", flush=True)
        runs.append(rows)
    result = {
        "benchmark": "batch",
        "scale": arguments.scale,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
        "runs": runs,
    }
    arguments.output.parent.mkdir(parents=True, exist_ok=True)
    arguments.output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
