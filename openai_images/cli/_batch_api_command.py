"""The Batch API from the command line: ``batch FILE --via batch-api`` and ``batch-api``.

``openai-images batch jobs.jsonl --via batch-api -o out`` reads and checks the same batch
file as a live batch, submits it through ``client.batch_api`` (the job's state in
``out/batch_api.json``), waits with a progress bar fed by the batches' ``request_counts``,
saves every line's images as a live batch names them, and ends with a report: completed,
failed, expired, cancelled, tokens and a cost estimate. ``openai-images batch-api status
JOB``, ``collect JOB`` and ``cancel JOB`` take a job started earlier by its state file or
its output folder. Ctrl-C while waiting leaves the batches running; ``_main`` then prints
``interrupted_hint``: the exact commands that collect or cancel them.

Failed lines are named by their place in the batch file (``jobs.jsonl:42``): the job's
folder keeps a small map from request index to line (``.batch_api/cli-lines.json``). A job
submitted from Python has none, so its lines are named by index.
"""

from __future__ import annotations

import argparse
import functools
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import attrs
import orjson

from openai_images._batch import BatchProgress, BatchResult
from openai_images._batch_api import BatchAPIJob, BatchAPIProgress, BatchAPIReport, RemoteBatch
from openai_images._batch_api._lines import MAX_LINES, check_request
from openai_images._batch_api._state import STATE_NAME, WORK_DIR
from openai_images._client import AsyncImagesClient
from openai_images._errors import RequestValidationError
from openai_images._progress import ProgressDisplay, progress_display
from openai_images._responses import write_atomically

from ._commands import EXIT_ERROR, EXIT_OK, make_client
from ._failures import PROG, CommandError, describe_error
from ._jsonl import BatchLine, check_batch_outputs, read_batch_file
from ._output import print_json, usage_data
from ._parser import _connection_options

__all__ = [
    "batch_api",
    "batch_api_usage_problem",
    "batch_via_batch_api",
    "interrupted_hint",
]

LINES_NAME = "cli-lines.json"  # in the job's work folder: request index -> batch-file line
DEFAULT_POLL_INTERVAL = 5.0
_SHOWN_FAILURES = 20
_BATCH_API_OPTIONS = {
    "images": "--images",
    "image_purpose": "--image-purpose",
    "metadata": "--metadata",
    "poll_interval": "--poll-interval",
    "max_lines": "--max-lines",
    "no_wait": "--no-wait",
}


def batch_api_usage_problem(args: argparse.Namespace) -> str | None:
    """A mistake in the options of ``batch`` that argparse cannot see, or ``None``."""
    given = [flag for name, flag in _BATCH_API_OPTIONS.items() if getattr(args, name, None)]
    if args.command == "batch" and args.via == "live" and given:
        return f"{given[0]} goes with --via batch-api"
    if args.command == "batch" and args.via == "batch-api":
        if args.concurrency is not None or args.rpm is not None:
            return "--concurrency and --rpm are for live batches (the Batch API sets its own pace)"
        if args.ipm is not None or args.tpm is not None:
            # Not ignored: a cap the user set and the batch did not keep would surprise them.
            return "--ipm and --tpm are for live batches (the Batch API sets its own pace)"
        if args.max_lines is not None and not 1 <= args.max_lines <= MAX_LINES:
            return f"--max-lines must be from 1 to {MAX_LINES}"
        for pair in args.metadata or []:
            if "=" not in pair or pair.startswith("="):
                return f"--metadata takes KEY=VALUE, not {pair!r}"
        if len(args.metadata or []) > 16:
            return "--metadata: at most 16 pairs"
    if getattr(args, "poll_interval", None) is not None and args.poll_interval <= 0:
        return "--poll-interval must be more than 0"
    return None


# -- batch FILE --via batch-api ----------------------------------------------------------------


async def batch_via_batch_api(args: argparse.Namespace) -> int:
    """``openai-images batch FILE --via batch-api``: submit, wait, collect; 1 if a line failed."""
    items = await anyio.to_thread.run_sync(_read_for_batch_api, args.file)
    out: Path = args.output_dir
    state_file = out / STATE_NAME
    resuming = await anyio.Path(state_file).exists()
    if resuming and not args.resume:
        raise CommandError(
            f"{out} holds a Batch API job already: collect it with "
            f"'{_command(args, 'collect', out)}' (or add --resume)"
        )
    if not resuming and not args.overwrite:
        await anyio.to_thread.run_sync(check_batch_outputs, out, [item.key for item in items])
    async with make_client(args) as client:
        api = client.batch_api
        if args.max_lines is not None:
            api = api.with_limits(max_lines=args.max_lines)
        if resuming:
            job = await api.resume(state_file)
            if job.total != len(items):
                raise CommandError(
                    f"the job in {out} has {job.total} requests, {args.file} has {len(items)}: "
                    f"collect it with '{_command(args, 'collect', out)}'"
                )
        else:
            await anyio.to_thread.run_sync(_write_lines, out, args.file, items)
            keys = [item.key for item in items]
            job = await api.submit(
                [item.request for item in items],
                output_dir=out,
                key=lambda request, index: keys[index],
                metadata=dict(pair.split("=", 1) for pair in args.metadata or []),
                images=args.images or "upload",
                image_purpose=args.image_purpose or "vision",
            )
        if args.no_wait or not args.no_progress:
            batches = f"{_batches(len(job.batch_ids))}: {', '.join(job.batch_ids)}"
            print(f"{job.total} requests in {batches}", file=sys.stderr)
        if args.no_wait:
            print(
                f"submitted; see how they do with '{_command(args, 'status', out)}' and save "
                f"the results with '{_command(args, 'collect', out)}'",
                file=sys.stderr,
            )
            if args.json:
                print_json({"state_file": str(job.state_file), "batch_ids": list(job.batch_ids)})
            return EXIT_OK
        return await _wait_and_collect(args, job)


def _read_for_batch_api(path: Path) -> list[BatchLine]:
    """The batch file's lines, each checked for the Batch API too (blocking)."""
    items = read_batch_file(path)
    for item in items:
        try:
            check_request(item.request)
        except RequestValidationError as error:
            raise CommandError(f"{path}:{item.line}: {error} (with --via batch-api)") from error
    return items


def _write_lines(out: Path, source: Path, items: Sequence[BatchLine]) -> None:
    """Remember which line of which file each request came from (blocking)."""
    work = out / WORK_DIR
    work.mkdir(parents=True, exist_ok=True)
    data = {"file": str(source), "lines": [item.line for item in items]}
    write_atomically(work / LINES_NAME, orjson.dumps(data))


# -- batch-api status | collect | cancel JOB ---------------------------------------------------


async def batch_api(args: argparse.Namespace) -> int:
    """``openai-images batch-api ACTION JOB``."""
    state_file = await anyio.to_thread.run_sync(_state_file, args.job)
    async with make_client(args) as client:
        if args.action == "collect":
            job = await client.batch_api.resume(state_file)
            return await _wait_and_collect(args, job)
        job = await _load(client, state_file)
        if args.action == "cancel":
            batches = await job.cancel()
            if args.json:
                print_json({"batches": [_batch_data(batch) for batch in batches]})
            else:
                _print_batches(batches)
                print(
                    "lines that finished stay saved; collect them with "
                    f"'{_command(args, 'collect', args.job)}'",
                    file=sys.stderr,
                )
            return EXIT_OK
        batches = await job.refresh(every=True)
        report = await anyio.to_thread.run_sync(job.report)
    if args.json:
        print_json(
            {
                "state_file": str(state_file),
                "total": job.total,
                "final": job.final,
                "batches": [_batch_data(batch) for batch in batches],
                "collected": attrs.asdict(report),
            }
        )
        return EXIT_OK
    print(f"{state_file}: {job.total} requests in {_batches(len(job.batch_ids))}")
    _print_batches(batches)
    collected = report.completed + report.failed + report.expired + report.cancelled
    print(f"collected {collected} of {report.total}: {_counts(report)}")
    if not job.final:
        print(f"to wait and save the results: {_command(args, 'collect', args.job)}")
    elif collected < report.total:
        print(f"every batch is done; save the results with: {_command(args, 'collect', args.job)}")
    return EXIT_OK


def _batches(count: int) -> str:
    return f"{count} batch" if count == 1 else f"{count} batches"


def _state_file(job: Path) -> Path:
    """The state file a ``JOB`` argument names: the file, or the one in the folder."""
    path = job / STATE_NAME if job.is_dir() else job
    if not path.is_file():
        raise CommandError(f"{job}: no Batch API job here (no {STATE_NAME})")
    return path


async def _load(client: AsyncImagesClient, state_file: Path) -> BatchAPIJob:
    try:
        return await client.batch_api.load(state_file)
    except ValueError as error:
        raise CommandError(str(error)) from error


def _print_batches(batches: Sequence[RemoteBatch]) -> None:
    for batch in batches:
        counts = batch.request_counts
        done = counts.completed + counts.failed
        print(
            f"  {batch.id}  {batch.endpoint.rsplit('/', 1)[-1]:<11}  {batch.status:<11}  "
            f"{done}/{counts.total} done ({counts.failed} failed)"
        )


def _batch_data(batch: RemoteBatch) -> dict[str, Any]:
    data: dict[str, Any] = attrs.asdict(batch)
    data["metadata"] = dict(batch.metadata) if batch.metadata is not None else None
    return data


# -- waiting and collecting --------------------------------------------------------------------


async def _wait_and_collect(args: argparse.Namespace, job: BatchAPIJob) -> int:
    """Wait for every batch (with progress), save every line, report; 1 if any failed."""
    # A job whose batches are all done already has nothing to show progress of.
    shown = not args.no_progress and not job.final
    display = progress_display(total=job.total, desc="batch-api", enabled=shown)
    try:
        await job.wait(
            progress=_Progress(display),
            poll_interval=args.poll_interval or DEFAULT_POLL_INTERVAL,
            interrupt_note=False,
        )
    finally:
        display.close()
    where = await anyio.to_thread.run_sync(_line_names, job.state_file.parent)
    records: list[dict[str, Any]] = []
    failures: list[BatchResult] = []
    async for result in job.results():
        records.append(_record(result, where(result.index)))
        if result.error is not None:
            failures.append(result)
    report = await anyio.to_thread.run_sync(job.report)
    if args.json:
        records.sort(key=lambda record: int(record["index"]))
        print_json({"report": attrs.asdict(report), "results": records})
    else:
        print(f"{report.total} requests via the Batch API: {_counts(report)}")
        print(
            f"{report.input_tokens:,} input and {report.output_tokens:,} output tokens, "
            f"about ${report.estimated_cost:.2f} at gpt-image-1's Batch API prices; "
            f"images in {job.state_file.parent}"
        )
    failures.sort(key=lambda result: result.index)
    for result in failures[:_SHOWN_FAILURES]:
        assert result.error is not None
        print(f"error: {where(result.index)}: {describe_error(result.error)}", file=sys.stderr)
    if len(failures) > _SHOWN_FAILURES:
        print(f"error: and {len(failures) - _SHOWN_FAILURES} more failures", file=sys.stderr)
    unfinished = report.failed + report.expired + report.cancelled
    return EXIT_ERROR if unfinished else EXIT_OK


def _counts(report: BatchAPIReport) -> str:
    return (
        f"{report.completed} completed, {report.failed} failed, {report.expired} expired, "
        f"{report.cancelled} cancelled"
    )


class _Progress:
    """Feeds the live batches' progress display from the batches' ``request_counts``."""

    def __init__(self, display: ProgressDisplay) -> None:
        self._display = display
        self._started = time.monotonic()

    def __call__(self, progress: BatchAPIProgress) -> None:
        elapsed = time.monotonic() - self._started
        self._display(
            BatchProgress(
                done=progress.done,
                ok=progress.completed,
                failed=progress.failed,
                in_flight=progress.total - progress.done,
                elapsed=elapsed,
                rate=progress.done / elapsed if elapsed > 0 else 0.0,
            )
        )


def _line_names(folder: Path) -> Callable[[int], str]:
    """``index -> "jobs.jsonl:42"`` from the job's line map, else ``"request 41"`` (blocking)."""
    path = folder / WORK_DIR / LINES_NAME
    try:
        data = orjson.loads(path.read_bytes())
        source, lines = str(data["file"]), list(data["lines"])
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError):
        return lambda index: f"request {index}"

    def name(index: int) -> str:
        return f"{source}:{lines[index]}" if 0 <= index < len(lines) else f"request {index}"

    return name


def _record(result: BatchResult, where: str) -> dict[str, Any]:
    response = result.response
    return {
        "index": result.index,
        "line": where,
        "ok": result.ok,
        "paths": [str(path) for path in result.paths],
        "usage": usage_data(response.usage) if response is not None else None,
        "error": describe_error(result.error) if result.error is not None else None,
    }


# -- after Ctrl-C ------------------------------------------------------------------------------


def interrupted_hint(args: argparse.Namespace) -> str:
    """What to run after an interrupted Batch API command: collect or cancel the job."""
    folder: Path = args.output_dir if args.command == "batch" else args.job
    state_file = folder / STATE_NAME if folder.is_dir() or args.command == "batch" else folder
    if not state_file.is_file():
        return "nothing was submitted; run the same command again to start"
    note = "the batches keep running on OpenAI's side (any not yet created, once you carry on)"
    return (
        f"{note}. To wait for them and save the results, run:\n"
        f"  {_command(args, 'collect', folder)}\n"
        f"To stop them instead:\n"
        f"  {_command(args, 'cancel', folder)}" + _secrets_note(args)
    )


def _command(args: argparse.Namespace, action: str, job: Path) -> str:
    """``openai-images batch-api ACTION JOB`` with the connection options given, keys left
    out (they are never printed)."""
    return shlex.join([PROG, "batch-api", action, str(job), *_connection_argv(args)])


@functools.cache
def _connection_actions() -> tuple[argparse.Action, ...]:
    return tuple(
        action
        for action in _connection_options()._actions
        if action.option_strings and action.dest != "help"
    )


def _is_secret(action: argparse.Action) -> bool:
    return any(word in action.dest for word in ("key", "token", "secret", "password"))


def _given(args: argparse.Namespace, action: argparse.Action) -> bool:
    value = getattr(args, action.dest, action.default)
    return value is not None and value != action.default


def _secrets_note(args: argparse.Namespace) -> str:
    """A reminder of the secret options given, which the printed commands leave out."""
    flags = [
        a.option_strings[-1] for a in _connection_actions() if _is_secret(a) and _given(args, a)
    ]
    return f"\n(give {' and '.join(flags)} again)" if flags else ""


def _connection_argv(args: argparse.Namespace) -> list[str]:
    """The connection options given on the command line, as arguments again (not secrets)."""
    argv: list[str] = []
    for action in _connection_actions():
        if not _given(args, action) or _is_secret(action):
            continue
        value = getattr(args, action.dest)
        flag = action.option_strings[-1]
        if action.nargs == 0:
            argv.append(flag)
        elif isinstance(value, list):
            for item in value:
                argv += [flag, str(item)]
        else:
            argv += [flag, str(value)]
    return argv
