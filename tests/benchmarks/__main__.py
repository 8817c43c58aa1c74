"""Run every benchmark row against one local server, print a Markdown table, save JSON.

Usage: ``python -m tests.benchmarks [--rounds N] [--only SCENARIO...] [--no-batch]
[--output PATH] [--check]`` from the repo root (``nox -s bench`` does it). With ``--check``
the exit status is 1 when a goal is missed. Unless told otherwise it then runs
``tests.benchmarks.bench_batch``.

Rows (each figure the median over ``--rounds`` rounds; in each round every peer measures
each scenario in a fresh worker process, peers taking turns so drift hits all alike):

1. ``generate`` with a small JSON answer, 64 at a time: requests/s and client CPU/request.
2. The same, one at a time: latency per call.
3. ``edit`` uploading 4 files of 50 MB given as paths: wall time and peak RSS increase.
4. An answer of 10 images of 4 MB of ``b64_json`` each: call plus decoding every image to
   bytes, and peak RSS increase.
5. The sync ``ImagesClient`` against the async client: per call, and from 8 threads.
6. A streamed generation of 3 partial images of 1 MB and the final one: from the response
   headers to the last event.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tests.benchmarks._peers import make_sparse_png, write_small_png
from tests.benchmarks._server import BIG_IMAGE_B64, BIG_IMAGES, STREAM_PARTIALS, running_server

ROOT = Path(__file__).resolve().parents[2]
RESULTS = Path(__file__).resolve().parent / "results"

UPLOAD_FILES = 4
UPLOAD_BYTES = 50_000_000  # 50 MB: under the API's 50 MiB limit per image
REQUESTS = 2000
SEQUENTIAL = 300
CONCURRENCY = 64
THREADS = 8
STREAM_REPEATS = 5
EDIT_REPEATS = 3

OURS, RAW, RAW_JSON, SDK_HTTPX, SDK_AIOHTTP = (
    "ours",
    "raw-aiohttp",
    "raw-aiohttp-json",
    "sdk-httpx",
    "sdk-aiohttp",
)
SDKS = (SDK_HTTPX, SDK_AIOHTTP)
LABELS = {
    OURS: "openai-images",
    RAW: "raw aiohttp + orjson",
    RAW_JSON: "raw aiohttp + json",
    SDK_HTTPX: "SDK (httpx)",
    SDK_AIOHTTP: "SDK (aiohttp)",
}
SCENARIO_PEERS = {
    "small": [OURS, RAW, RAW_JSON, SDK_HTTPX, SDK_AIOHTTP],
    "threads": ["ours-sync", "sdk-sync"],
    "edit": [OURS, RAW, SDK_HTTPX, SDK_AIOHTTP],
    "big": [OURS, RAW, RAW_JSON, SDK_HTTPX, SDK_AIOHTTP],
    "stream": [OURS, RAW, SDK_HTTPX, SDK_AIOHTTP],
}


def _read_through(path: Path) -> None:
    """Read a file once, so every peer finds it in the page cache, not only the later ones."""
    with open(path, "rb") as file:
        while file.read(1 << 20):
            pass


def _worker(spec: dict[str, Any]) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-m", "tests.benchmarks._peers", json.dumps(spec)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"worker {spec['scenario']}/{spec['peer']} failed:\n{done.stderr}")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _specs(files: Path) -> dict[str, dict[str, Any]]:
    paths = [str(files / f"input-{index}.png") for index in range(UPLOAD_FILES)]
    return {
        "small": {
            "warmup": 200,
            "requests": REQUESTS,
            "sequential": SEQUENTIAL,
            "concurrency": CONCURRENCY,
        },
        "threads": {
            "warmup": 50,
            "requests": REQUESTS,
            "sequential": SEQUENTIAL,
            "threads": THREADS,
        },
        "edit": {"warm_path": str(files / "small.png"), "paths": paths, "repeats": EDIT_REPEATS},
        "big": {"images": BIG_IMAGES},
        "stream": {"repeats": STREAM_REPEATS, "events": STREAM_PARTIALS + 1},
    }


def _measure(
    root: str, files: Path, *, rounds: int, scenarios: Sequence[str]
) -> dict[str, dict[str, list[dict[str, float]]]]:
    specs = _specs(files)
    runs: dict[str, dict[str, list[dict[str, float]]]] = {
        scenario: {peer: [] for peer in SCENARIO_PEERS[scenario]} for scenario in scenarios
    }
    for round_ in range(rounds):
        for scenario in scenarios:
            peers = SCENARIO_PEERS[scenario]
            # Peers take turns going first, so a slow start or drift is shared out.
            turn = round_ % len(peers)
            for peer in peers[turn:] + peers[:turn]:
                spec = {**specs[scenario], "scenario": scenario, "peer": peer, "root": root}
                runs[scenario][peer].append(_worker(spec))
            print(f"  round {round_ + 1}/{rounds}: {scenario} done", file=sys.stderr, flush=True)
    return runs


def _medians(
    runs: dict[str, dict[str, list[dict[str, float]]]],
) -> dict[str, dict[str, dict[str, float]]]:
    return {
        scenario: {
            peer: {key: statistics.median(run[key] for run in values) for key in values[0]}
            for peer, values in by_peer.items()
            if values
        }
        for scenario, by_peer in runs.items()
    }


def _row(
    medians: dict[str, dict[str, dict[str, float]]],
    *,
    row: str,
    measure: str,
    scenario: str,
    key: str,
    unit: str,
    higher_is_better: bool,
    goal: str | None,
    check: Callable[[float], bool] | None,
    on_ratio: bool = True,
    scale: float = 1.0,
) -> dict[str, Any]:
    """One table row; ``check`` judges ours ÷ raw, or our own figure if not ``on_ratio``."""
    by_peer = medians.get(scenario, {})
    values = {peer: figures[key] * scale for peer, figures in by_peer.items()}
    ours = values.get(OURS)
    sdk_values = [values[peer] for peer in SDKS if peer in values]
    best_sdk = (max if higher_is_better else min)(sdk_values) if sdk_values else None
    vs_raw = ours / values[RAW] if ours is not None and values.get(RAW) else None
    vs_sdk = ours / best_sdk if ours is not None and best_sdk else None
    return {
        "row": row,
        "measure": measure,
        "unit": unit,
        "values": values,
        "vs_raw": vs_raw,
        "vs_best_sdk": vs_sdk,
        "goal": goal,
        "met": _judge(check, vs_raw if on_ratio else ours),
    }


def _judge(check: Callable[[float], bool] | None, value: float | None) -> bool | None:
    return None if check is None or value is None else check(value)


def _rows(medians: dict[str, dict[str, dict[str, float]]]) -> list[dict[str, Any]]:
    response_mb = BIG_IMAGES * BIG_IMAGE_B64 / 2**20
    return [
        _row(
            medians,
            row="1",
            measure="generate, 64 at a time",
            scenario="small",
            key="rps",
            unit="req/s",
            higher_is_better=True,
            goal=">= 0.85x raw",
            check=lambda ratio: ratio >= 0.85,
        ),
        _row(
            medians,
            row="1",
            measure="generate, 64 at a time: client CPU",
            scenario="small",
            key="cpu_us",
            unit="µs/req",
            higher_is_better=False,
            goal="<= 1.25x raw",
            check=lambda ratio: ratio <= 1.25,
        ),
        _row(
            medians,
            row="2",
            measure="generate, one at a time",
            scenario="small",
            key="latency_ms",
            unit="ms/call",
            higher_is_better=False,
            goal="<= 1.2x raw",
            check=lambda ratio: ratio <= 1.2,
        ),
        _row(
            medians,
            row="3",
            measure="edit, 4 x 50 MB paths: wall",
            scenario="edit",
            key="wall_s",
            unit="ms",
            higher_is_better=False,
            goal="<= 1.2x raw",
            check=lambda ratio: ratio <= 1.2,
            scale=1e3,
        ),
        _row(
            medians,
            row="3",
            measure="edit, 4 x 50 MB paths: client CPU",
            scenario="edit",
            key="cpu_s",
            unit="ms",
            higher_is_better=False,
            goal=None,
            check=None,
            scale=1e3,
        ),
        _row(
            medians,
            row="3",
            measure="edit, 4 x 50 MB paths: peak RSS increase",
            scenario="edit",
            key="rss_mb",
            unit="MiB",
            higher_is_better=False,
            goal="< 10 MiB",
            check=lambda mib: mib < 10,
            on_ratio=False,
        ),
        _row(
            medians,
            row="4",
            measure=f"{BIG_IMAGES} x 4 MiB b64_json: call + decode",
            scenario="big",
            key="wall_s",
            unit="ms",
            higher_is_better=False,
            goal="<= 1.3x raw",
            check=lambda ratio: ratio <= 1.3,
            scale=1e3,
        ),
        _row(
            medians,
            row="4",
            measure=f"{BIG_IMAGES} x 4 MiB b64_json: client CPU",
            scenario="big",
            key="cpu_s",
            unit="ms",
            higher_is_better=False,
            goal=None,
            check=None,
            scale=1e3,
        ),
        _row(
            medians,
            row="4",
            measure=f"{BIG_IMAGES} x 4 MiB b64_json: peak RSS increase",
            scenario="big",
            key="rss_mb",
            unit="MiB",
            higher_is_better=False,
            goal=f"< 2.5x response ({2.5 * response_mb:.0f} MiB)",
            check=lambda mib: mib < 2.5 * response_mb,
            on_ratio=False,
        ),
        _row(
            medians,
            row="6",
            measure="stream, 3 partials of 1 MiB: first byte to last event",
            scenario="stream",
            key="first_byte_to_last_ms",
            unit="ms",
            higher_is_better=False,
            goal=None,
            check=None,
        ),
    ]


def _sync_rows(medians: dict[str, dict[str, dict[str, float]]]) -> list[dict[str, Any]]:
    small = medians.get("small", {}).get(OURS)
    threads = medians.get("threads", {})
    sync, sdk = threads.get("ours-sync"), threads.get("sdk-sync")
    if small is None or sync is None:
        return []
    latency = sync["latency_ms"] / small["latency_ms"]
    throughput = sync["threads_rps"] / small["rps8"]
    return [
        {
            "row": "5",
            "measure": "one at a time",
            "unit": "ms/call",
            "sync": sync["latency_ms"],
            "async": small["latency_ms"],
            "sdk_sync": sdk["latency_ms"] if sdk else None,
            "ratio": latency,
            "goal": "sync <= 1.1x async",
            "met": latency <= 1.1,
        },
        {
            "row": "5",
            "measure": f"{THREADS} threads (async: {THREADS} tasks)",
            "unit": "req/s",
            "sync": sync["threads_rps"],
            "async": small["rps8"],
            "sdk_sync": sdk["threads_rps"] if sdk else None,
            "ratio": throughput,
            "goal": "sync >= 0.55x async",
            "met": throughput >= 0.55,
        },
    ]


def _fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    if abs(value) >= 100:
        text = f"{value:,.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    else:
        text = f"{value:.2f}"
    return f"{text} {unit}".strip()


def _met(met: bool | None) -> str:
    return "-" if met is None else ("yes" if met else "**no**")


def _table(rows: list[dict[str, Any]], sync_rows: list[dict[str, Any]]) -> str:
    peers = [OURS, RAW, RAW_JSON, SDK_HTTPX, SDK_AIOHTTP]
    lines = [
        "| # | Measure | "
        + " | ".join(LABELS[p] for p in peers)
        + " | ours ÷ raw | ours ÷ best SDK | Goal | Met |",
        "|---|---|" + "---:|" * len(peers) + "---:|---:|---|---|",
    ]
    for row in rows:
        cells = [_fmt(row["values"].get(peer), row["unit"]) for peer in peers]
        lines.append(
            f"| {row['row']} | {row['measure']} | "
            + " | ".join(cells)
            + f" | {_fmt(row['vs_raw'])}x | {_fmt(row['vs_best_sdk'])}x"
            + f" | {row['goal'] or '-'} | {_met(row['met'])} |"
        )
    if sync_rows:
        lines += [
            "",
            "| # | Measure | ImagesClient (sync) | AsyncImagesClient | sync ÷ async "
            "| SDK OpenAI (sync) | Goal | Met |",
            "|---|---|---:|---:|---:|---:|---|---|",
        ]
        for row in sync_rows:
            unit = row["unit"]
            lines.append(
                f"| {row['row']} | {row['measure']} | {_fmt(row['sync'], unit)}"
                f" | {_fmt(row['async'], unit)} | {_fmt(row['ratio'])}x"
                f" | {_fmt(row['sdk_sync'], unit)} | {row['goal']} | {_met(row['met'])} |"
            )
    return "\n".join(lines)


def _machine() -> dict[str, Any]:
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions: dict[str, str | None] = {}
    for package in ("openai-images", "aiohttp", "orjson", "openai", "httpx2", "pydantic"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "versions": versions,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark, print the table and write the JSON; see the module's docstring."""
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks", description=__doc__)
    parser.add_argument("--rounds", type=int, default=5, help="runs per figure (median)")
    parser.add_argument(
        "--only", nargs="+", choices=list(SCENARIO_PEERS), default=list(SCENARIO_PEERS)
    )
    parser.add_argument("--output", type=Path, default=RESULTS / "latest.json")
    parser.add_argument(
        "--no-batch",
        action="store_true",
        help="skip the batch engine's benchmark (tests.benchmarks.bench_batch), which runs "
        "after these rows unless --only is given",
    )
    parser.add_argument("--check", action="store_true", help="exit 1 when a goal is missed")
    args = parser.parse_args(argv)
    run_batch = not args.no_batch and set(args.only) == set(SCENARIO_PEERS)

    started = time.perf_counter()
    load_before = os.getloadavg()[0]
    if load_before > 0.5:
        print(
            f"warning: load average {load_before:.1f} before starting; other work on this "
            "machine will make the figures noisy",
            file=sys.stderr,
        )
    with tempfile.TemporaryDirectory(prefix="openai-images-bench-") as tmp:
        files = Path(tmp)
        for index in range(UPLOAD_FILES):
            make_sparse_png(files / f"input-{index}.png", UPLOAD_BYTES)
            _read_through(files / f"input-{index}.png")
        write_small_png(files / "small.png")
        with running_server() as root:
            runs = _measure(root, files, rounds=args.rounds, scenarios=args.only)
    medians = _medians(runs)
    rows, sync_rows = _rows(medians), _sync_rows(medians)
    rows = [row for row in rows if row["values"]]
    table = _table(rows, sync_rows)
    print(table)
    elapsed = time.perf_counter() - started
    print(f"\n{args.rounds} rounds in {elapsed:.0f} s on {_machine()['cpu']}", file=sys.stderr)

    args.output.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "machine": _machine(),
        "settings": {
            "rounds": args.rounds,
            "requests": REQUESTS,
            "sequential": SEQUENTIAL,
            "concurrency": CONCURRENCY,
            "threads": THREADS,
            "upload": {"files": UPLOAD_FILES, "bytes_each": UPLOAD_BYTES, "repeats": EDIT_REPEATS},
            "big_response": {"images": BIG_IMAGES, "b64_chars_each": BIG_IMAGE_B64},
            "stream": {"partials": STREAM_PARTIALS, "repeats": STREAM_REPEATS},
        },
        "seconds": elapsed,
        "load_average": {"before": load_before, "after": os.getloadavg()[0]},
        "rows": rows,
        "sync_rows": sync_rows,
        "medians": medians,
        "runs": runs,
        "table": table,
    }
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"figures written to {args.output}", file=sys.stderr)
    if run_batch:
        from tests.benchmarks import bench_batch

        print("\nThe batch engine (tests.benchmarks.bench_batch):", flush=True)
        bench_batch.main([])
    missed = [row for row in rows + sync_rows if row["met"] is False]
    for row in missed:
        print(f"goal missed: row {row['row']}, {row['measure']}: {row['goal']}", file=sys.stderr)
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
