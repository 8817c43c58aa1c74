"""Batch API jobs end to end against the local server: submit, wait, collect, resume."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import orjson
import pytest
from PIL import Image

from openai_images import (
    AsyncImagesClient,
    EditRequest,
    GenerateRequest,
    ImageRequest,
    InternalServerError,
    RequestValidationError,
    ResponseTooLargeError,
)
from openai_images._batch import BatchResult
from openai_images._batch_api import BatchAPIJob, BatchLineError
from openai_images._batch_api._remote import Remote
from openai_images.testing import LineFailure, LocalImagesServer

from .test_batch_api_lines import check_line

pytestmark = pytest.mark.anyio


class Crash(Exception):
    """Stands for the process dying at a chosen point."""


@pytest.fixture
async def server() -> AsyncIterator[LocalImagesServer]:
    """A local server."""
    async with LocalImagesServer() as running:
        yield running


@pytest.fixture
async def client(server: LocalImagesServer) -> AsyncIterator[AsyncImagesClient]:
    """Our client for the server."""
    async with AsyncImagesClient(api_key="k", base_url=server.base_url, max_retries=0) as made:
        yield made


@pytest.fixture
def pictures(tmp_path: Path) -> list[Path]:
    """Three distinct PNG files to edit."""
    paths = []
    for number, colour in enumerate([(200, 0, 0), (0, 200, 0), (0, 0, 200)]):
        buffer = io.BytesIO()
        Image.new("RGB", (64, 64), colour).save(buffer, format="PNG")
        path = tmp_path / f"in{number}.png"
        path.write_bytes(buffer.getvalue())
        paths.append(path)
    return paths


def mixed(count: int, pictures: list[Path]) -> list[ImageRequest]:
    """Generations and edits of the three pictures, alternating."""
    requests: list[ImageRequest] = []
    for index in range(count):
        if index % 2:
            requests.append(
                EditRequest(
                    prompt=f"a hat {index}",
                    image=[pictures[index % 3]],
                    model="gpt-image-1.5",
                    quality="low",
                )
            )
        else:
            requests.append(
                GenerateRequest(
                    prompt=f"a fox {index}",
                    model="gpt-image-1-mini",
                    size="1024x1024",
                    quality="low",
                )
            )
    return requests


def posts(server: LocalImagesServer, path: str) -> int:
    """How many POSTs the server saw to ``path`` (``/v1/files``, ``/v1/batches``)."""
    return sum(r.method == "POST" and r.path == path for r in server.requests)


async def collect(job: BatchAPIJob, stop_after: int | None = None) -> list[BatchResult]:
    """The job's results, stopping (as a crash would) after ``stop_after`` of them."""
    results = []
    async for result in job.results():
        results.append(result)
        if stop_after is not None and len(results) == stop_after:
            break
    return results


async def test_a_mixed_job_runs_end_to_end(
    client: AsyncImagesClient, server: LocalImagesServer, pictures: list[Path], tmp_path: Path
) -> None:
    """Sharded by endpoint and size, each picture uploaded once, every image saved."""
    out = tmp_path / "out"
    seen: list[int] = []
    job = await client.batch_api.with_limits(max_lines=4).submit(
        mixed(14, pictures), output_dir=out, metadata={"run": "t"}
    )
    batches = await job.wait(progress=lambda p: seen.append(p.done), poll_interval=0.01)
    assert len(batches) == 4  # 7 generations and 7 edits, 4 lines a file
    assert {b.endpoint for b in batches} == {"/v1/images/generations", "/v1/images/edits"}
    assert all(b.status == "completed" for b in batches)
    assert seen[-1] == 14
    assert posts(server, "/v1/files") == 3 + 4  # three pictures, four input files
    results = await collect(job)
    assert sorted(r.index for r in results) == list(range(14))
    assert all(r.ok for r in results)
    for result in results:
        assert result.paths == (out / f"{result.index:06d}.png",)
        assert result.paths[0].is_file()
        assert (out / f".{result.index:06d}.done").is_file()
    edit = next(r.request for r in results if r.index == 1)
    assert isinstance(edit, EditRequest)
    assert edit.images is not None
    assert edit.images[0].file_id is not None
    report = job.report()
    assert (report.total, report.completed, report.failed) == (14, 14, 0)
    assert report.output_tokens > 0
    assert report.estimated_cost > 0


async def test_inline_images_upload_nothing_but_the_lines(
    client: AsyncImagesClient, server: LocalImagesServer, pictures: list[Path], tmp_path: Path
) -> None:
    """With images='inline', edits carry data: URLs and only the JSONL is uploaded."""
    job = await client.batch_api.submit(
        mixed(4, pictures), output_dir=tmp_path / "out", images="inline"
    )
    await job.wait(poll_interval=0.01)
    assert posts(server, "/v1/files") == 2
    assert all(r.ok for r in await collect(job))


async def test_refusals_come_before_any_upload(
    client: AsyncImagesClient, server: LocalImagesServer, pictures: list[Path], tmp_path: Path
) -> None:
    """A request the Batch API cannot take stops the job before anything is sent."""
    requests = mixed(6, pictures)
    requests.append(GenerateRequest(prompt="p", model="gpt-image-1.5", stream=True))
    with pytest.raises(RequestValidationError, match="line 6"):
        await client.batch_api.submit(requests, output_dir=tmp_path / "out")
    assert server.requests == []


@pytest.mark.parametrize("crash_at", ["upload", "create"])
async def test_resume_after_a_crash_while_submitting(
    client: AsyncImagesClient,
    server: LocalImagesServer,
    pictures: list[Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    crash_at: str,
) -> None:
    """A crash after some uploads or batches resumes without repeating any of them."""
    calls = {"upload": 0, "create": 0}
    real_upload, real_create = Remote.upload, Remote.create_batch

    async def upload(self: Remote, path: Path, **kwargs: Any) -> str:
        calls["upload"] += 1
        if crash_at == "upload" and calls["upload"] == 5:
            raise Crash
        return await real_upload(self, path, **kwargs)

    async def create(self: Remote, **kwargs: Any) -> dict[str, Any]:
        calls["create"] += 1
        if crash_at == "create" and calls["create"] == 2:
            raise Crash
        return await real_create(self, **kwargs)

    monkeypatch.setattr(Remote, "upload", upload)
    monkeypatch.setattr(Remote, "create_batch", create)
    out = tmp_path / "out"
    with pytest.raises(Crash):
        await client.batch_api.with_limits(max_lines=4).submit(mixed(14, pictures), output_dir=out)
    monkeypatch.setattr(Remote, "upload", real_upload)
    monkeypatch.setattr(Remote, "create_batch", real_create)
    job = await client.batch_api.with_limits(max_lines=4).resume(out / "batch_api.json")
    await job.wait(poll_interval=0.01)
    assert posts(server, "/v1/files") == 7
    assert posts(server, "/v1/batches") == 4
    results = await collect(job)
    assert sorted(r.index for r in results) == list(range(14))


async def test_resume_mid_collect_hands_each_line_over_once(
    client: AsyncImagesClient, server: LocalImagesServer, pictures: list[Path], tmp_path: Path
) -> None:
    """Lines collected before a crash are not handed over again, nor downloaded again."""
    out = tmp_path / "out"
    job = await client.batch_api.with_limits(max_lines=4).submit(
        mixed(14, pictures), output_dir=out
    )
    await job.wait(poll_interval=0.01)
    first = await collect(job, stop_after=6)
    downloads = sum(r.path.endswith("/content") for r in server.requests)
    resumed = await client.batch_api.with_limits(max_lines=4).resume(out / "batch_api.json")
    await resumed.wait(poll_interval=0.01)
    second = await collect(resumed)
    indexes = [r.index for r in first + second]
    assert sorted(indexes) == list(range(14))
    assert posts(server, "/v1/files") == 7
    assert posts(server, "/v1/batches") == 4
    # Only the file read when the crash came is fetched again; finished files are not.
    assert sum(r.path.endswith("/content") for r in server.requests) - downloads <= 3
    again = await client.batch_api.resume(out / "batch_api.json")
    assert await collect(again) == []
    assert again.report().completed == 14


async def test_a_second_submit_to_the_same_folder_is_refused(
    client: AsyncImagesClient, pictures: list[Path], tmp_path: Path
) -> None:
    """A folder holding a job's state is resumed, never overwritten."""
    await client.batch_api.submit(mixed(2, pictures), output_dir=tmp_path / "out")
    with pytest.raises(FileExistsError, match="resume"):
        await client.batch_api.submit(mixed(2, pictures), output_dir=tmp_path / "out")


async def test_partial_failure_is_reported_line_by_line(
    client: AsyncImagesClient, server: LocalImagesServer, pictures: list[Path], tmp_path: Path
) -> None:
    """A failed line is a result with the live call's error class; the rest are saved."""
    server.batch_api.fail("2:000002", LineFailure(status=500, message="boom"))
    job = await client.batch_api.submit(mixed(4, pictures), output_dir=tmp_path / "out")
    await job.wait(poll_interval=0.01)
    results = {r.index: r for r in await collect(job)}
    assert isinstance(results[2].error, InternalServerError)
    assert "boom" in str(results[2].error)
    assert [i for i, r in sorted(results.items()) if r.ok] == [0, 1, 3]
    report = job.report()
    assert (report.completed, report.failed) == (3, 1)


async def wait_until(job: BatchAPIJob, status: str) -> None:
    """Poll until every batch of the job has ``status``."""
    with anyio.fail_after(10):
        statuses = {b.status for b in await job.refresh()}
        while statuses != {status}:
            await anyio.sleep(0.01)
            statuses = {b.status for b in await job.refresh()}


async def test_cancel_reports_every_line_not_run(
    client: AsyncImagesClient, server: LocalImagesServer, pictures: list[Path], tmp_path: Path
) -> None:
    """A cancelled job's lines that never ran come back as batch_cancelled."""
    server.batch_api.paused = True
    job = await client.batch_api.submit(mixed(4, pictures), output_dir=tmp_path / "out")
    await wait_until(job, "in_progress")
    cancelling = await job.cancel()
    assert {b.status for b in cancelling} == {"cancelling"}
    await job.wait(poll_interval=0.01)
    results = await collect(job)
    assert sorted(r.index for r in results) == [0, 1, 2, 3]
    assert all(isinstance(r.error, BatchLineError) for r in results)
    assert {r.error.code for r in results if isinstance(r.error, BatchLineError)} == {
        "batch_cancelled"
    }
    assert job.report().cancelled == 4


async def test_expiry_reports_every_line_not_run(
    client: AsyncImagesClient, server: LocalImagesServer, pictures: list[Path], tmp_path: Path
) -> None:
    """An expired batch's unfinished lines come back as batch_expired."""
    server.batch_api.paused = True
    job = await client.batch_api.submit(mixed(3, pictures), output_dir=tmp_path / "out")
    for batch_id in job.batch_ids:
        server.batch_api.expire(batch_id)
    await job.wait(poll_interval=0.01)
    results = await collect(job)
    codes = {r.error.code for r in results if isinstance(r.error, BatchLineError)}
    assert codes == {"batch_expired"}
    assert len(results) == 3
    assert job.report().expired == 3


async def test_interrupted_wait_leaves_the_batches_running(
    client: AsyncImagesClient,
    server: LocalImagesServer,
    pictures: list[Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Stopping wait() says how to resume or cancel, and cancels nothing remotely."""
    server.batch_api.paused = True
    job = await client.batch_api.submit(mixed(2, pictures), output_dir=tmp_path / "out")
    with anyio.move_on_after(0.1):
        await job.wait(poll_interval=0.01)
    note = capsys.readouterr().err
    assert "resume" in note
    assert str(job.state_file) in note
    assert not any(r.path.endswith("/cancel") for r in server.requests)
    assert {b.status for b in await job.refresh()} == {"in_progress"}


async def test_wait_backs_off_while_nothing_moves(
    client: AsyncImagesClient,
    server: LocalImagesServer,
    pictures: list[Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Polls grow apart by half each time nothing changed, up to max_interval."""
    server.batch_api.paused = True
    job = await client.batch_api.submit(mixed(1, pictures), output_dir=tmp_path / "out")
    sleeps: list[float] = []

    real_sleep = anyio.sleep

    async def fake_sleep(seconds: float) -> None:
        if seconds < 1:  # the server's own short pauses run on the real clock
            await real_sleep(seconds)
            return
        sleeps.append(seconds)
        if len(sleeps) == 6:
            server.batch_api.paused = False
        await anyio.lowlevel.checkpoint()

    monkeypatch.setattr(anyio, "sleep", fake_sleep)
    with anyio.fail_after(10):
        while not job.final or len(sleeps) < 6:
            await job.wait(poll_interval=1.0, max_interval=3.0)
    assert sleeps[:5] == [1.0, 1.5, 2.25, 3.0, 3.0]


def jsonl_lines(path: Path) -> list[dict[str, Any]]:
    """A JSONL file's objects."""
    return [orjson.loads(raw) for raw in path.read_bytes().splitlines()]


async def test_state_file_records_uploads_and_batches(
    client: AsyncImagesClient, pictures: list[Path], tmp_path: Path
) -> None:
    """The state names every upload and batch; the shards are the contract's lines."""
    out = tmp_path / "out"
    job = await client.batch_api.with_limits(max_lines=2).submit(mixed(4, pictures), output_dir=out)
    state = orjson.loads((out / "batch_api.json").read_bytes())
    assert len(state["uploads"]) == 2  # the pictures of lines 1 and 3
    assert [s["batch_id"] for s in state["shards"]] == list(job.batch_ids)
    shard_lines = [jsonl_lines(out / ".batch_api" / s["path"]) for s in state["shards"]]
    for lines in shard_lines:
        for line in lines:
            check_line(line)
    assert sorted(line["custom_id"] for lines in shard_lines for line in lines) == [
        "0:000000",
        "1:000001",
        "2:000002",
        "3:000003",
    ]


async def test_url_results_are_downloaded_and_saved(tmp_path: Path) -> None:
    """A line answered with a url (dall-e's default, legacy server) has its image fetched
    and saved."""
    requests = [GenerateRequest(prompt="a fox", model="dall-e-2", size="256x256")]
    async with (
        LocalImagesServer(legacy=True) as legacy,
        AsyncImagesClient(api_key="k", base_url=legacy.base_url, max_retries=0) as client,
    ):
        job = await client.batch_api.submit(requests, output_dir=tmp_path / "out")
        await job.wait(poll_interval=0.01)
        [result] = await collect(job)
    assert result.response is not None
    assert result.response.data[0].url is not None
    assert result.paths == (tmp_path / "out" / "000000.png",)
    assert result.paths[0].read_bytes().startswith(b"\x89PNG")


async def test_a_moved_job_resumes_from_its_new_folder(
    client: AsyncImagesClient,
    server: LocalImagesServer,
    pictures: list[Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The state names the job's files relative to its folder: moved, it still resumes."""
    real_create = Remote.create_batch

    async def crash(self: Remote, **kwargs: Any) -> dict[str, Any]:
        raise Crash

    monkeypatch.setattr(Remote, "create_batch", crash)
    with pytest.raises(Crash):
        await client.batch_api.submit(mixed(4, pictures), output_dir=tmp_path / "first")
    monkeypatch.setattr(Remote, "create_batch", real_create)
    (tmp_path / "first").rename(tmp_path / "moved")
    job = await client.batch_api.resume(tmp_path / "moved" / "batch_api.json")
    await job.wait(poll_interval=0.01)
    results = await collect(job)
    assert all(r.ok for r in results)
    assert {p.parent for r in results for p in r.paths} == {tmp_path / "moved"}
    assert posts(server, "/v1/files") == 2 + 2  # two pictures, one file per endpoint


async def test_result_files_are_capped_per_line_not_as_a_whole(
    server: LocalImagesServer, tmp_path: Path
) -> None:
    """A file read line by line may be far over max_response_bytes; one line may not."""
    lines = tmp_path / "lines.jsonl"
    lines.write_bytes(b"".join(b'{"n":"' + b"x" * 900 + b'"}\n' for _ in range(50)))
    long_line = tmp_path / "long.jsonl"
    long_line.write_bytes(b'{"n":"' + b"x" * 5000 + b'"}\n')
    async with AsyncImagesClient(
        api_key="k", base_url=server.base_url, max_response_bytes=4096
    ) as small:
        remote = Remote(small._sender)
        file_id = await remote.upload(lines, purpose="batch")
        got = [line async for line in remote.lines(file_id)]
        assert len(got) == 50  # 45 KB in all, over the 4 KB limit
        assert got[0] == lines.read_bytes().split(b"\n")[0]
        file_id = await remote.upload(long_line, purpose="batch")
        with pytest.raises(ResponseTooLargeError, match="line is longer than the limit of 4096"):
            async for _ in remote.lines(file_id):
                pass
