"""``openai-images batch FILE.jsonl``: every line of a batch file through the batch engine
(``--via batch-api``: through OpenAI's Batch API instead, in ``_batch_api_command``).

Every line is read and checked first (``_jsonl``); then the requests go through
``client.map`` with the output folder, so each line's images are written as it finishes
and ``--resume`` skips the lines already saved. A summary (or, with ``--json``, every
line's result) follows, then the failed lines, by line number.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import anyio
import attrs

from openai_images._batch import BatchResult, BatchSummary
from openai_images._errors import MissingAPIKeyError
from openai_images._progress import progress_display

from ._batch_api_command import batch_via_batch_api
from ._commands import EXIT_ERROR, EXIT_OK, make_client
from ._failures import describe_error
from ._jsonl import BatchLine, check_batch_outputs, read_batch_file
from ._output import print_json, usage_data

__all__ = ["batch"]

DEFAULT_CONCURRENCY = 16
_SHOWN_FAILURES = 20


async def batch(args: argparse.Namespace) -> int:
    """Send every line of ``args.file``; 1 if any failed."""
    if args.via == "batch-api":
        return await batch_via_batch_api(args)
    items = await anyio.to_thread.run_sync(read_batch_file, args.file)
    keys = [item.key for item in items]
    if not args.resume and not args.overwrite:
        await anyio.to_thread.run_sync(check_batch_outputs, args.output_dir, keys)
    failures: list[tuple[BatchLine, BatchResult]] = []
    records: list[dict[str, Any]] = []
    async with make_client(args) as client:
        progress = progress_display(total=len(items), desc="batch", enabled=not args.no_progress)
        try:
            results = client.map(
                [item.request for item in items],
                concurrency=args.concurrency or DEFAULT_CONCURRENCY,
                requests_per_minute=args.rpm,
                images_per_minute=args.ipm,
                tokens_per_minute=args.tpm,
                output_dir=args.output_dir,
                resume=args.resume,
                key=lambda request, index: keys[index],
                on_progress=progress,
            )
            async with results:
                async for result in results:
                    if isinstance(result.error, MissingAPIKeyError):
                        # Every line would fail the same way: say it once.
                        raise result.error
                    line = items[result.index]
                    if result.error is not None:
                        failures.append((line, result))
                    records.append(_record(line, result))
        finally:
            progress.close()
        summary = results.summary()
    if args.json:
        records.sort(key=lambda record: int(record["line"]))
        print_json({"summary": attrs.asdict(summary), "results": records})
    else:
        _print_summary(summary, total=len(items), output_dir=args.output_dir)
    failures.sort(key=lambda failure: failure[0].line)
    for line, result in failures[:_SHOWN_FAILURES]:
        assert result.error is not None
        print(f"error: {args.file}:{line.line}: {describe_error(result.error)}", file=sys.stderr)
    if len(failures) > _SHOWN_FAILURES:
        print(f"error: and {len(failures) - _SHOWN_FAILURES} more failures", file=sys.stderr)
    return EXIT_ERROR if failures else EXIT_OK


def _record(line: BatchLine, result: BatchResult) -> dict[str, Any]:
    response = result.response
    error = result.error
    return {
        "line": line.line,
        "name": line.key,
        "ok": result.ok,
        "skipped": result.skipped,
        "retries": result.retries,
        "paths": [str(path) for path in result.paths],
        "request_id": response.request_id
        if response is not None
        else getattr(error, "request_id", None),
        "usage": usage_data(response.usage) if response is not None else None,
        "error": describe_error(error) if error is not None else None,
    }


def _print_summary(summary: BatchSummary, *, total: int, output_dir: Path) -> None:
    print(
        f"{total} requests: {summary.ok} ok, {summary.failed} failed, "
        f"{summary.skipped} skipped (already done), {summary.retries} retries, "
        f"{summary.rate_limited} rate-limited"
    )
    tokens = f", {summary.total_tokens:,} tokens" if summary.total_tokens else ""
    print(
        f"{summary.wall_time:.2f} s, {summary.requests_per_second:.1f} requests/s{tokens}; "
        f"images in {output_dir}"
    )
