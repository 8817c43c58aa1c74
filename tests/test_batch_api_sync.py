"""``ImagesClient.batch_api`` from synchronous code: submit, wait, results, cancel, resume."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from openai_images import (
    BatchAPIProgress,
    EditRequest,
    GenerateRequest,
    ImageRequest,
    ImagesClient,
    InternalServerError,
)
from openai_images._batch_api import BatchLineError, SyncBatchAPIJob
from openai_images.testing import LineFailure, LocalImagesServer
from tests.images import make_png


@pytest.fixture
def server() -> Iterator[LocalImagesServer]:
    """A local server on its own loop in a background thread."""
    with LocalImagesServer.in_thread() as running:
        yield running


@pytest.fixture
def client(server: LocalImagesServer) -> Iterator[ImagesClient]:
    """A synchronous client of the local server."""
    with ImagesClient(api_key="k", base_url=server.base_url, max_retries=0) as opened:
        yield opened


def requests(count: int, picture: Path) -> list[ImageRequest]:
    """Generations and edits of one picture, alternating."""
    made: list[ImageRequest] = []
    for index in range(count):
        if index % 2:
            made.append(EditRequest(prompt=f"a hat {index}", image=picture, model="gpt-image-1.5"))
        else:
            made.append(GenerateRequest(prompt=f"a fox {index}", model="gpt-image-1.5"))
    return made


@pytest.fixture
def picture(tmp_path: Path) -> Path:
    """A PNG to edit."""
    path = tmp_path / "in.png"
    path.write_bytes(make_png(64, 64))
    return path


def posts(server: LocalImagesServer, path: str) -> int:
    """How many POSTs the server saw to ``path``."""
    return sum(r.method == "POST" and r.path == path for r in server.requests)


def test_submit_wait_with_progress_and_results(
    client: ImagesClient, server: LocalImagesServer, picture: Path, tmp_path: Path
) -> None:
    """A plain-Python job: sharded, polled with progress, every line saved and reported."""
    seen: list[BatchAPIProgress] = []
    job = client.batch_api.with_limits(max_lines=2).submit(
        requests(6, picture), output_dir=tmp_path / "out", metadata={"run": "sync"}
    )
    assert isinstance(job, SyncBatchAPIJob)
    assert job.total == 6
    assert len(job.batch_ids) == 4  # 3 generations and 3 edits, 2 lines a file
    batches = job.wait(progress=seen.append, poll_interval=0.01)
    assert {b.status for b in batches} == {"completed"}
    assert job.final
    assert seen[-1].done == seen[-1].total == 6
    results = list(job.results())
    assert sorted(r.index for r in results) == list(range(6))
    assert all(r.ok and r.paths[0].is_file() for r in results)
    assert posts(server, "/v1/files") == 1 + 4  # the picture once, four input files
    report = job.report()
    assert (report.completed, report.failed) == (6, 0)
    assert report.estimated_cost > 0


def test_a_failed_line_has_the_live_error_class(
    client: ImagesClient, server: LocalImagesServer, picture: Path, tmp_path: Path
) -> None:
    """A line the server fails is a result with InternalServerError; the others are saved."""
    server.batch_api.fail("0:000000", LineFailure(status=500, message="boom"))
    job = client.batch_api.submit(requests(2, picture), output_dir=tmp_path / "out")
    job.wait(poll_interval=0.01)
    results = {r.index: r for r in job.results()}
    assert isinstance(results[0].error, InternalServerError)
    assert results[1].ok


def wait_for(job: SyncBatchAPIJob, status: str) -> None:
    """Poll until every batch has ``status`` (within 10 s)."""
    deadline = time.monotonic() + 10
    while {b.status for b in job.refresh()} != {status}:
        assert time.monotonic() < deadline, [b.status for b in job.refresh()]
        time.sleep(0.01)


def test_cancel_reports_every_line_not_run(
    client: ImagesClient, server: LocalImagesServer, picture: Path, tmp_path: Path
) -> None:
    """Cancelled while paused: every line comes back as batch_cancelled."""
    server.batch_api.paused = True
    job = client.batch_api.submit(requests(4, picture), output_dir=tmp_path / "out")
    wait_for(job, "in_progress")
    assert {b.status for b in job.cancel()} == {"cancelling"}
    job.wait(poll_interval=0.01)
    results = list(job.results())
    assert sorted(r.index for r in results) == [0, 1, 2, 3]
    codes = {r.error.code for r in results if isinstance(r.error, BatchLineError)}
    assert codes == {"batch_cancelled"}
    assert job.report().cancelled == 4


def test_resume_after_stopping_half_way_through_the_results(
    client: ImagesClient, server: LocalImagesServer, picture: Path, tmp_path: Path
) -> None:
    """Leaving results() early, then resuming: each line is handed over exactly once,
    nothing is uploaded or submitted again."""
    out = tmp_path / "out"
    job = client.batch_api.submit(requests(6, picture), output_dir=out)
    job.wait(poll_interval=0.01)
    first = []
    for result in job.results():
        first.append(result.index)
        if len(first) == 2:
            break
    uploads, batches = posts(server, "/v1/files"), posts(server, "/v1/batches")
    resumed = client.batch_api.resume(job.state_file)
    assert resumed.batch_ids == job.batch_ids
    resumed.wait(poll_interval=0.01)
    second = [result.index for result in resumed.results()]
    assert sorted(first + second) == list(range(6))
    assert (posts(server, "/v1/files"), posts(server, "/v1/batches")) == (uploads, batches)
    assert list(client.batch_api.resume(out / "batch_api.json").results()) == []


def test_load_looks_without_carrying_on(
    client: ImagesClient, server: LocalImagesServer, picture: Path, tmp_path: Path
) -> None:
    """load() reads the job as it stands: refresh(every=True) shows the finished batches."""
    job = client.batch_api.submit(requests(2, picture), output_dir=tmp_path / "out")
    job.wait(poll_interval=0.01)
    list(job.results())
    server.clear()
    loaded = client.batch_api.load(tmp_path / "out" / "batch_api.json")
    assert loaded.refresh() == ()  # finished and collected: not asked for again
    assert {b.status for b in loaded.refresh(every=True)} == {"completed"}
    assert loaded.report().completed == 2
    assert all(r.method == "GET" for r in server.requests)
