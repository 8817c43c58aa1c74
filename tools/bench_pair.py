"""Two trees' clients in one process, taking turns in short blocks against one server.

``tools/bench_trees.py`` runs each tree in worker processes of its own, a few seconds
apart; on this machine the drift between two processes is often larger than the
difference sought. Here both trees' packages are imported into one process under names of
their own (``pair_base``, ``pair_new``: the package's modules import each other
relatively), and their clients take turns, block by block, so each per-round ratio
compares neighbours in time::

    python tools/bench_pair.py /path/to/base [/path/to/new] [--rounds 15] [--only async|sync]

``async``: client CPU per small generation, 64 at a time (``AsyncImagesClient``), with a
bare ``aiohttp`` session as the floor. ``sync``: requests per second of ``ImagesClient``
shared by 8 threads, and its time per call one at a time. Prints each figure's median and
range, and the median and range of the new tree's per-round ratio to the base's.

To get a tree of another commit: ``git worktree add --detach /tmp/base <commit>``.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType
from typing import Any

sys.path.insert(0, str(Path.cwd()))
sys.path.insert(0, str(Path(__file__).parent))

import aiohttp
import orjson
from bench_layers import Call, taking_turns

from tests.benchmarks._peers import API_KEY, GENERATE, settle_allocator
from tests.benchmarks._server import running_server

THREADS = 8
ASYNC_CALLS = 4000
SYNC_CALLS = 400
SEQUENTIAL = 200


def _import_trees(trees: dict[str, Path], into: Path) -> dict[str, ModuleType]:
    """Each tree's package, imported as ``pair_<tag>`` through a link in ``into``."""
    sys.path.insert(0, str(into))
    packages = {}
    for tag, tree in trees.items():
        (into / f"pair_{tag}").symlink_to(tree.resolve() / "openai_images")
        packages[tag] = importlib.import_module(f"pair_{tag}")
    return packages


def _report(figures: dict[str, list[float]], unit: str, *, higher_is_better: bool) -> None:
    for name, values in figures.items():
        spread = f"[{min(values):.1f}-{max(values):.1f}]"
        print(f"  {name:<12} {statistics.median(values):8.1f} {unit} {spread}")
    ratios = [new / base for new, base in zip(figures["new"], figures["base"], strict=True)]
    better = "higher" if higher_is_better else "lower"
    print(
        f"  new/base per round: median {statistics.median(ratios):.3f} "
        f"[{min(ratios):.3f}-{max(ratios):.3f}] ({better} is better)"
    )


async def _async_rounds(root: str, packages: dict[str, ModuleType], rounds: int) -> None:
    url = f"{root}/v1/images/generations"
    headers = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}
    session = aiohttp.ClientSession()
    clients = {
        tag: package.AsyncImagesClient(api_key=API_KEY, base_url=f"{root}/v1")
        for tag, package in packages.items()
    }

    async def raw() -> None:
        async with session.post(url, data=orjson.dumps(GENERATE), headers=headers) as response:
            response.raise_for_status()
            orjson.loads(await response.read())

    def ours(client: Any) -> Call:
        async def call() -> None:
            await client.generate(**GENERATE)

        return call

    calls: dict[str, Call] = {"raw-aiohttp": raw}
    calls.update({tag: ours(client) for tag, client in clients.items()})
    try:
        figures = await taking_turns(calls, rounds=rounds, requests=ASYNC_CALLS)
    finally:
        await session.close()
        for client in clients.values():
            await client.aclose()
    print(f"client CPU per small generation, {ASYNC_CALLS} calls 64 at a time:")
    _report(figures, "µs", higher_is_better=False)


def _sync_rounds(root: str, packages: dict[str, ModuleType], rounds: int) -> None:
    clients = {
        tag: package.ImagesClient(api_key=API_KEY, base_url=f"{root}/v1")
        for tag, package in packages.items()
    }
    pool = ThreadPoolExecutor(THREADS)

    def shared(client: Any) -> float:
        def share() -> None:
            for _ in range(SYNC_CALLS // THREADS):
                client.generate(**GENERATE)

        started = time.perf_counter()
        for future in [pool.submit(share) for _ in range(THREADS)]:
            future.result()
        return SYNC_CALLS / (time.perf_counter() - started)

    def sequential(client: Any) -> float:
        started = time.perf_counter()
        for _ in range(SEQUENTIAL):
            client.generate(**GENERATE)
        return (time.perf_counter() - started) / SEQUENTIAL * 1e6

    measures: dict[str, Callable[[Any], float]] = {"threads": shared, "one": sequential}
    figures: dict[str, dict[str, list[float]]] = {
        measure: {tag: [] for tag in clients} for measure in measures
    }
    try:
        for client in clients.values():
            shared(client)
            sequential(client)
        tags = list(clients)
        for round_ in range(rounds):
            for tag in tags if round_ % 2 == 0 else tags[::-1]:
                for measure, run in measures.items():
                    figures[measure][tag].append(run(clients[tag]))
    finally:
        pool.shutdown()
        for client in clients.values():
            client.close()
    print(f"sync client shared by {THREADS} threads, requests per second:")
    _report(figures["threads"], "req/s", higher_is_better=True)
    print("sync client, one call at a time:")
    _report(figures["one"], "µs", higher_is_better=False)


def main() -> None:
    """Parse the arguments, import both trees and run the rounds."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("base", type=Path)
    parser.add_argument("new", type=Path, nargs="?", default=Path.cwd())
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--only", choices=["async", "sync"])
    args = parser.parse_args()
    settle_allocator()  # as the benchmark's workers do
    with tempfile.TemporaryDirectory() as links, running_server() as root:
        packages = _import_trees({"base": args.base, "new": args.new}, Path(links))
        if args.only in (None, "async"):
            asyncio.run(_async_rounds(root, packages, args.rounds))
        if args.only in (None, "sync"):
            _sync_rounds(root, packages, args.rounds)


if __name__ == "__main__":
    main()
