"""One benchmark row for two or more checkouts side by side: workers interleaved, one server.

``nox -s bench`` measures one tree; comparing two trees run minutes apart on a busy machine
measures the machine. Here every round runs each (tree, peer) pair once, in a fresh worker
process of that tree (``python -m tests.benchmarks._peers`` with the tree as its working
directory, so it imports that tree's package), the pairs taking turns going first. Prints
each figure's median and range over the rounds, and each tree's ratios to ``raw-aiohttp``
taken round by round (neighbours in time), with the load average before and after.

Usage, from a checkout's root (its benchmark server and worker code are used for all)::

    python tools/bench_trees.py /path/to/base . [--peers ours raw-aiohttp] [--rounds 7]
        [--scenario small|threads|big|stream]

To get a tree of another commit: ``git worktree add /tmp/base <commit>`` (or ``git archive``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path.cwd()))

from tests.benchmarks.__main__ import REQUESTS, SEQUENTIAL, _specs
from tests.benchmarks._server import running_server

RAW = "raw-aiohttp"
SCENARIOS = ["small", "threads", "big", "stream"]  # the edit row needs its input files


def _worker(tree: Path, spec: dict[str, Any]) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-m", "tests.benchmarks._peers", json.dumps(spec)],
        cwd=tree,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"worker {tree} {spec['peer']} failed:\n{done.stderr}")
    figures: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} [{min(values):.2f}-{max(values):.2f}]"


def main() -> None:
    """Run the rounds and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("trees", nargs="+", type=Path, help="checkouts to compare")
    parser.add_argument("--peers", nargs="+", default=["ours", RAW])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--scenario", default="small", choices=SCENARIOS)
    args = parser.parse_args()
    trees = [tree.resolve() for tree in args.trees]
    spec = _specs(Path(os.devnull))[args.scenario]
    pairs = [(tree, peer) for tree in trees for peer in args.peers]
    runs: dict[tuple[Path, str], list[dict[str, float]]] = {pair: [] for pair in pairs}
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    with running_server() as root:
        for round_ in range(args.rounds):
            turn = round_ % len(pairs)
            for tree, peer in pairs[turn:] + pairs[:turn]:
                figures = _worker(
                    tree, {**spec, "scenario": args.scenario, "peer": peer, "root": root}
                )
                runs[tree, peer].append(figures)
            print(f"  round {round_ + 1}/{args.rounds}", file=sys.stderr, flush=True)
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    print(f"{args.rounds} rounds of the {args.scenario!r} scenario")
    if args.scenario in ("small", "threads"):
        print(f"each: {REQUESTS} requests concurrently, then {SEQUENTIAL} one at a time")
    for (tree, peer), values in runs.items():
        cells = "  ".join(f"{key} {_spread([run[key] for run in values])}" for key in values[0])
        print(f"{tree.name:>12} {peer:<12} {cells}")
    for tree in trees:
        if RAW not in args.peers or args.scenario != "small":
            break
        raw = runs[tree, RAW]
        for peer in args.peers:
            if peer == RAW:
                continue
            ours = runs[tree, peer]
            rps = [mine["rps"] / theirs["rps"] for mine, theirs in zip(ours, raw, strict=True)]
            cpu = [
                mine["cpu_us"] / theirs["cpu_us"] for mine, theirs in zip(ours, raw, strict=True)
            ]
            print(
                f"{tree.name:>12} {peer} / {RAW}, round by round: "
                f"req/s {_spread(rps)}x, CPU/request {_spread(cpu)}x"
            )


if __name__ == "__main__":
    main()
