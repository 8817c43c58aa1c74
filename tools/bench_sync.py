"""The sync client against the async one, paired: blocks taking turns in one process.

``nox -s bench`` row 5 measures the two clients in separate worker processes, minutes
apart; on a busy machine the drift between them swamps the difference. Here short blocks
alternate (async one at a time, sync one at a time, async 8 tasks, sync 8 threads) against
the benchmark server, so each ratio compares neighbours. Prints each ratio's median and
quartiles over the rounds.

Usage, from the repository root: ``python tools/bench_sync.py [--rounds 15] [--calls 200]``
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path.cwd()))  # the package and tests of the tree it runs from

from openai_images import AsyncImagesClient, ImagesClient
from tests.benchmarks._peers import API_KEY, GENERATE, settle_allocator
from tests.benchmarks._server import running_server

THREADS = 8


def main() -> None:
    """Run the paired blocks and print the ratios."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--calls", type=int, default=200, help="calls per block")
    args = parser.parse_args()
    calls = args.calls - args.calls % THREADS
    settle_allocator()  # as the benchmark's workers do
    with running_server() as root:
        base_url = f"{root}/v1"
        loop = asyncio.new_event_loop()
        aclient = AsyncImagesClient(api_key=API_KEY, base_url=base_url)
        client = ImagesClient(api_key=API_KEY, base_url=base_url)

        async def one_at_a_time() -> float:
            start = time.perf_counter()
            for _ in range(calls):
                await aclient.generate(**GENERATE)
            return time.perf_counter() - start

        async def tasks() -> float:
            async def share() -> None:
                for _ in range(calls // THREADS):
                    await aclient.generate(**GENERATE)

            start = time.perf_counter()
            await asyncio.gather(*(share() for _ in range(THREADS)))
            return time.perf_counter() - start

        def sync_one_at_a_time() -> float:
            start = time.perf_counter()
            for _ in range(calls):
                client.generate(**GENERATE)
            return time.perf_counter() - start

        def share() -> None:
            for _ in range(calls // THREADS):
                client.generate(**GENERATE)

        pool = ThreadPoolExecutor(THREADS)

        def threads() -> float:
            start = time.perf_counter()
            for future in [pool.submit(share) for _ in range(THREADS)]:
                future.result()
            return time.perf_counter() - start

        # Warm both up: connections, imports, code paths.
        loop.run_until_complete(one_at_a_time())
        sync_one_at_a_time()
        latency, throughput = [], []
        for _ in range(args.rounds):
            async_seq = loop.run_until_complete(one_at_a_time())
            sync_seq = sync_one_at_a_time()
            async_par = loop.run_until_complete(tasks())
            sync_par = threads()
            latency.append(sync_seq / async_seq)
            throughput.append(async_par / sync_par)  # sync req/s over async req/s
        pool.shutdown()
        client.close()
        loop.run_until_complete(aclient.aclose())
        loop.close()
    for name, ratios in (
        ("sync / async time per call, one at a time", latency),
        (f"sync {THREADS} threads / async {THREADS} tasks, requests per second", throughput),
    ):
        q1, median, q3 = statistics.quantiles(ratios, n=4)
        print(f"{name}: median {median:.2f}x (quartiles {q1:.2f}-{q3:.2f}, {len(ratios)} rounds)")


if __name__ == "__main__":
    main()
