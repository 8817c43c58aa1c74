"""Peak memory of a Batch API job: 2,000 and 20,000 lines against the local server.

Usage (from the repo root): ``python -m tests.benchmarks.bench_batch_api [--sizes N ...]
[--edit-every K] [--max-lines L]``.

The local server runs in its own process (``... bench_batch_api serve``) with no delay
per line. Each size runs in a fresh client process (``... bench_batch_api job N``): a
generator of requests (gpt-image-2 generations at a custom 256x256, and every
``--edit-every``-th line a gpt-image-1.5 edit of one of 3 PNG files, so 3 uploads in all)
is submitted with ``--max-lines`` lines per input file, waited for and collected, every
image saved. The process reports its peak RSS (``ru_maxrss``). Goal: the 20,000-line job's
peak is less than 50 MB above the 2,000-line job's.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import anyio

from openai_images import AsyncImagesClient, EditRequest, GenerateRequest, ImageRequest
from openai_images.testing import LocalImagesServer
from tests.images import make_png

ROOT = Path(__file__).resolve().parents[2]
MB = 1024 * 1024


async def _serve() -> None:
    async with LocalImagesServer(max_recorded=0) as server:
        server.batch_api.concurrency = 8
        print(f"URL {server.base_url}", flush=True)
        # Serve until the parent closes our stdin.
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


def _requests(count: int, pictures: list[Path], edit_every: int) -> Iterator[ImageRequest]:
    for index in range(count):
        if index % edit_every == edit_every - 1:
            yield EditRequest(
                prompt=f"a hat {index}",
                image=[pictures[index % len(pictures)]],
                model="gpt-image-1.5",
                quality="low",
            )
        else:
            yield GenerateRequest(
                prompt=f"a fox {index}",
                model="gpt-image-2",
                size="256x256",  # a custom size: small images, as the results before had
                quality="low",
            )


async def _job(base_url: str, count: int, edit_every: int, max_lines: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        pictures = []
        for number in range(3):
            path = work / f"in{number}.png"
            path.write_bytes(make_png(64 + number, 64))
            pictures.append(path)
        started = time.perf_counter()
        async with AsyncImagesClient(api_key="k", base_url=base_url) as client:
            api = client.batch_api.with_limits(max_lines=max_lines)
            job = await api.submit(_requests(count, pictures, edit_every), output_dir=work / "out")
            await job.wait(poll_interval=0.2, max_interval=1.0)
            collected = 0
            async for result in job.results():
                collected += result.ok
            report = job.report()
        elapsed = time.perf_counter() - started
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
        print(
            f"RESULT {count} {collected} {len(job.batch_ids)} {peak} {elapsed:.1f} "
            f"{report.completed}",
            flush=True,
        )


def _run_job(base_url: str, count: int, edit_every: int, max_lines: int) -> dict[str, float]:
    command = [
        sys.executable,
        "-m",
        "tests.benchmarks.bench_batch_api",
        "job",
        str(count),
        "--url",
        base_url,
        "--edit-every",
        str(edit_every),
        "--max-lines",
        str(max_lines),
    ]
    output = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True).stdout
    line = next(row for row in output.splitlines() if row.startswith("RESULT "))
    _, lines, saved, batches, peak, seconds, completed = line.split()
    return {
        "lines": int(lines),
        "saved": int(saved),
        "batches": int(batches),
        "peak_rss_mb": int(peak) / MB,
        "seconds": float(seconds),
        "completed": int(completed),
    }


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark, or one of its processes (``serve``, ``job N``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("command", nargs="?", choices=["run", "serve", "job"], default="run")
    parser.add_argument("count", nargs="?", type=int, default=0)
    parser.add_argument("--sizes", type=int, nargs="+", default=[2_000, 20_000])
    parser.add_argument("--edit-every", type=int, default=10)
    parser.add_argument("--max-lines", type=int, default=5_000)
    parser.add_argument("--url", default="")
    arguments = parser.parse_args(argv)
    if arguments.command == "serve":
        anyio.run(_serve)
        return
    if arguments.command == "job":
        anyio.run(_job, arguments.url, arguments.count, arguments.edit_every, arguments.max_lines)
        return
    server = subprocess.Popen(
        [sys.executable, "-m", "tests.benchmarks.bench_batch_api", "serve"],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        first = server.stdout.readline()
        if not first.startswith("URL "):
            raise RuntimeError(f"the benchmark server did not start: {first!r}")
        base_url = first.split()[1]
        rows = [
            _run_job(base_url, size, arguments.edit_every, arguments.max_lines)
            for size in arguments.sizes
        ]
    finally:
        if server.stdin is not None:
            server.stdin.close()
        server.wait(timeout=30)
    print("| lines | batches | saved | seconds | peak RSS (MB) |")
    print("|---:|---:|---:|---:|---:|")
    for row in rows:
        print(
            f"| {row['lines']} | {row['batches']} | {row['saved']} | {row['seconds']:.1f} "
            f"| {row['peak_rss_mb']:.1f} |"
        )
    growth = rows[-1]["peak_rss_mb"] - rows[0]["peak_rss_mb"]
    verdict = "met" if growth < 50 else "MISSED"
    print(
        f"\nGrowth from {rows[0]['lines']} to {rows[-1]['lines']} lines: {growth:.1f} MB "
        f"(goal < 50 MB: {verdict})"
    )


if __name__ == "__main__":
    main()
