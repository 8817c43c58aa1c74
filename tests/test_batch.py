"""``client.map`` and ``client.run_batch``: order, laziness, errors, outputs, resume, cancel."""

from __future__ import annotations

import gc
import io
import itertools
import math
import os
import sys
import weakref
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import orjson
import pytest
from aiohttp import web

from openai_images import (
    AsyncImagesClient,
    BadRequestError,
    BatchProgress,
    BatchResult,
    EditRequest,
    GenerateRequest,
    ImageRequest,
    ImagesClient,
    InsufficientQuotaError,
    InternalServerError,
    ModerationBlockedError,
    RateLimitError,
    RequestOptions,
    RequestValidationError,
    Violation,
    progress_bar,
)
from openai_images.testing import Fault, LocalImagesServer

from .images import make_png
from .recorder import OK_BODY, Recorder, Reply
from .resources import files_open, open_fds

pytestmark = pytest.mark.anyio

KEY = "test-key"


def generation(index: int, **fields: Any) -> GenerateRequest:
    """A cheap request: one small image (a custom size) from a current model."""
    settings: dict[str, Any] = {"model": "gpt-image-2.5-flare", "size": "256x256"}
    settings["quality"] = "low"
    settings.update(fields)
    return GenerateRequest(prompt=f"item {index}", **settings)


def invalid(index: int) -> GenerateRequest:
    """A request the rules refuse before sending (sides must be multiples of 16)."""
    return GenerateRequest(prompt=f"item {index}", model="gpt-image-2.5-flare", size="999x999")


@pytest.fixture
async def server() -> AsyncIterator[LocalImagesServer]:
    """A local Images server; legacy, so that a retired DALL·E model can still answer a url."""
    async with LocalImagesServer(legacy=True) as running:
        yield running


@pytest.fixture
async def client(server: LocalImagesServer) -> AsyncIterator[AsyncImagesClient]:
    """A client of the local server."""
    async with AsyncImagesClient(api_key=KEY, base_url=server.base_url) as opened:
        yield opened


class Count:
    """A number that tasks can wait on."""

    def __init__(self) -> None:
        self.value = 0
        self._changed = anyio.Event()

    def add(self) -> None:
        self.value += 1
        self._changed.set()
        self._changed = anyio.Event()

    async def reach(self, target: int) -> None:
        """Wait until the count is at least ``target`` (failing after a few seconds)."""
        with anyio.fail_after(10):
            while self.value < target:
                await self._changed.wait()


class Gate:
    """A recorder handler that holds the prompts in ``held`` until released, and counts."""

    def __init__(self, *held: str) -> None:
        self.held = set(held)
        self.released = anyio.Event()
        self.active = 0
        self.peak = 0
        self.answered = Count()

    async def __call__(self, request: web.Request) -> web.StreamResponse:
        self.active += 1
        self.peak = max(self.peak, self.active)
        try:
            if (await request.json())["prompt"] in self.held:
                await self.released.wait()
            else:
                await anyio.sleep(0.002)
        finally:
            self.active -= 1
        self.answered.add()
        return web.json_response(OK_BODY)


@pytest.fixture
async def gate() -> AsyncIterator[tuple[Gate, str]]:
    """A recorder answering through a :class:`Gate` (prompt ``item 0`` held), and its URL."""
    handler = Gate("item 0")
    async with Recorder() as recorder:
        recorder.reply(*[Reply(handler=handler)] * 1000)
        try:
            yield handler, recorder.base_url
        finally:
            handler.released.set()


def counted(requests: Iterator[ImageRequest]) -> tuple[list[int], Iterator[ImageRequest]]:
    """The requests, and a one-item list counting how many were pulled so far."""
    pulled = [0]

    def generate() -> Iterator[ImageRequest]:
        for request in requests:
            pulled[0] += 1
            yield request

    return pulled, generate()


# -- results, order and laziness -----------------------------------------------------------


async def test_unordered_results_cover_every_request_once(client: AsyncImagesClient) -> None:
    """Every request gives one successful result with its index and response."""
    requests = [generation(i) for i in range(20)]
    async with client.map(requests, concurrency=4) as results:
        got = [result async for result in results]
    assert sorted(result.index for result in got) == list(range(20))
    for result in got:
        assert result.ok
        assert result.request is requests[result.index]
        assert result.response is not None
        assert result.response.data[0].content().startswith(b"\x89PNG")
        assert (result.retries, result.paths, result.skipped, result.error) == (0, (), False, None)
    summary = results.summary()
    assert (summary.ok, summary.failed, summary.skipped, summary.rate_limited) == (20, 0, 0, 0)


async def test_unordered_results_come_as_they_finish(gate: tuple[Gate, str]) -> None:
    """A held first request does not hold back the others; it comes last."""
    handler, base_url = gate
    async with AsyncImagesClient(api_key=KEY, base_url=base_url) as client:
        got: list[int] = []
        async with client.map([generation(i) for i in range(10)], concurrency=3) as results:
            async for result in results:
                got.append(result.index)
                if len(got) == 9:
                    handler.released.set()
    assert got[-1] == 0
    assert sorted(got) == list(range(10))


async def test_ordered_results_follow_the_input_and_stop_pulling_behind_a_slow_head(
    gate: tuple[Gate, str],
) -> None:
    """In order, a held head of the line stops new pulls at twice the concurrency."""
    handler, base_url = gate
    pulled, requests = counted(generation(i) for i in range(30))
    async with (
        AsyncImagesClient(api_key=KEY, base_url=base_url) as client,
        client.map(requests, concurrency=4, ordered=True) as results,
    ):
        await handler.answered.reach(7)
        await anyio.sleep(0.05)
        assert pulled[0] <= 2 * 4
        assert handler.answered.value == 7
        handler.released.set()
        got = [result.index async for result in results]
    assert got == list(range(30))
    assert handler.peak <= 4


async def test_requests_are_pulled_lazily_and_at_most_concurrency_are_in_flight(
    gate: tuple[Gate, str],
) -> None:
    """An endless generator is pulled only as results are taken; the server sees <= 4."""
    handler, base_url = gate
    handler.held.clear()
    pulled, requests = counted(generation(i) for i in itertools.count(1))
    taken = 0
    async with (
        AsyncImagesClient(api_key=KEY, base_url=base_url) as client,
        client.map(requests, concurrency=4) as results,
    ):
        async for _ in results:
            taken += 1
            assert pulled[0] <= taken + 4 + 1
            await anyio.sleep(0.003)
            if taken == 40:
                break
    assert handler.peak <= 4
    assert pulled[0] <= 40 + 4 + 1


async def test_async_iterables_are_taken_and_closed_when_the_batch_stops(
    client: AsyncImagesClient,
) -> None:
    """An async generator is pulled lazily and closed when the batch is left early."""
    closed = anyio.Event()

    async def requests() -> AsyncIterator[ImageRequest]:
        try:
            for i in itertools.count():
                yield generation(i)
        finally:
            closed.set()

    async with client.map(requests(), concurrency=2) as results:
        got = []
        async for result in results:
            got.append(result)
            if len(got) == 5:
                break
    assert closed.is_set()
    assert all(result.ok for result in got)


async def test_a_bare_async_for_runs_to_the_end(client: AsyncImagesClient) -> None:
    """Without ``async with``, iterating to the end starts and finishes the batch."""
    got = [result.index async for result in client.map([generation(i) for i in range(6)])]
    assert sorted(got) == list(range(6))


async def test_a_bare_async_for_left_early_is_closed_with_aclose(
    client: AsyncImagesClient,
) -> None:
    """``aclose()`` after a ``break`` stops the batch; iterating again gives nothing."""
    results = client.map([generation(i) for i in range(50)], concurrency=2)
    async for _ in results:
        break
    await results.aclose()
    assert [result async for result in results] == []


async def test_results_are_not_kept_once_handed_over(client: AsyncImagesClient) -> None:
    """The batch drops each result when it is handed over, so memory stays flat."""
    refs = []
    async with client.map((generation(i) for i in range(12)), concurrency=3) as results:
        async for result in results:
            refs.append(weakref.ref(result))
            del result
        gc.collect()
        assert all(ref() is None for ref in refs)


# -- failures ------------------------------------------------------------------------------


async def test_failed_items_are_results_and_the_rest_go_on(
    client: AsyncImagesClient, server: LocalImagesServer
) -> None:
    """An invalid request and two server faults fail alone; every other item succeeds."""
    requests = [generation(i) for i in range(10)]
    requests[4] = invalid(4)
    server.inject(Fault(kind="status", status=500, times=2))
    report = await client.run_batch(requests, concurrency=3, options=RequestOptions(max_retries=0))
    assert [result.index for result in report.results] == list(range(10))
    failed = [result for result in report.results if not result.ok]
    assert len(failed) == 3
    refused = report.results[4].error
    assert isinstance(refused, RequestValidationError)
    assert refused.param == "size"
    assert sum(isinstance(result.error, InternalServerError) for result in failed) == 2
    assert all(result.response is None for result in failed)
    assert (report.summary.ok, report.summary.failed) == (7, 3)


async def test_retries_and_429s_are_counted(
    client: AsyncImagesClient, server: LocalImagesServer
) -> None:
    """Retried faults end well, and the summary counts the retries and the 429 seen."""
    server.inject(
        Fault(kind="status", status=503, times=2, retry_after_ms=1),
        Fault(kind="status", status=429, times=1, retry_after_ms=1),
    )
    report = await client.run_batch([generation(i) for i in range(6)], concurrency=2)
    assert all(result.ok for result in report.results)
    assert sum(result.retries for result in report.results) == 3
    assert (report.summary.retries, report.summary.rate_limited) == (3, 1)


async def test_a_stream_request_is_refused_in_a_batch(client: AsyncImagesClient) -> None:
    """A batch takes whole responses: a ``stream=True`` item fails on its own."""
    streamed = GenerateRequest(prompt="p", model="gpt-image-1.5", stream=True)
    report = await client.run_batch([streamed, generation(1)])
    first, second = report.results
    assert isinstance(first.error, RequestValidationError)
    assert first.error.param == "stream"
    assert second.ok


@pytest.mark.parametrize("ordered", [False, True])
async def test_fail_fast_hands_over_the_failure_and_stops(
    client: AsyncImagesClient, server: LocalImagesServer, ordered: bool
) -> None:
    """The first failure is the last result; no further request goes out."""
    requests = [generation(i) for i in range(30)]
    requests[3] = invalid(3)
    async with client.map(requests, concurrency=2, fail_fast=True, ordered=ordered) as results:
        got = [result async for result in results]
    assert got[-1].index == 3
    assert isinstance(got[-1].error, RequestValidationError)
    assert all(result.ok for result in got[:-1])
    assert len(got) < 10
    if ordered:
        assert [result.index for result in got] == [0, 1, 2, 3]
    assert len(server.requests) < 10


async def test_a_failing_iterable_ends_the_batch_with_its_own_error(
    client: AsyncImagesClient,
) -> None:
    """An exception from the requests' generator comes out of the iteration unwrapped."""

    def requests() -> Iterator[ImageRequest]:
        yield generation(0)
        raise LookupError("the CSV ran dry")

    with pytest.raises(LookupError, match="ran dry"):
        await client.run_batch(requests())


async def test_an_item_of_the_wrong_type_is_a_type_error(client: AsyncImagesClient) -> None:
    """A batch refuses anything but the three request classes."""
    with pytest.raises(TypeError, match="at index 1"):
        await client.run_batch([generation(0), {"prompt": "a dict"}])  # type: ignore[list-item]  # on purpose


@pytest.mark.parametrize(
    "settings",
    [
        {"concurrency": 0},
        {"resume": True},
        {"requests_per_minute": 0},
        {"concurrency": 1.5},
        {"images_per_minute": -1},
        {"tokens_per_minute": math.inf},
        {"rate_limit_patience": 0},
    ],
)
async def test_bad_settings_are_refused_at_once(
    client: AsyncImagesClient, settings: dict[str, Any]
) -> None:
    """Impossible settings raise ValueError when the batch is made, before any work."""
    with pytest.raises(ValueError, match=next(iter(settings))):
        client.map([], **settings)


# -- outputs and resume --------------------------------------------------------------------


def leftovers(directory: Path) -> list[str]:
    """Temporary files a write left behind."""
    return [path.name for path in directory.iterdir() if path.name.endswith(".part")]


def listed_by_markers(directory: Path) -> tuple[int, set[str]]:
    """How many ``.done`` markers there are, and the files they list together."""
    markers = list(directory.glob(".*.done"))
    return len(markers), {name for marker in markers for name in orjson.loads(marker.read_bytes())}


def images_in(directory: Path) -> list[str]:
    """The names of the PNG files in ``directory``, sorted."""
    return sorted(path.name for path in directory.glob("*.png"))


async def test_outputs_are_named_by_index_or_key_and_marked_done(
    client: AsyncImagesClient, tmp_path: Path
) -> None:
    """One image is ``{key}.{ext}``, several are ``{key}-{i}.{ext}``, then ``.{key}.done``."""
    requests = [generation(0), generation(1, n=2)]
    report = await client.run_batch(requests, output_dir=tmp_path / "out")
    out = tmp_path / "out"
    first, second = report.results
    assert [path.name for path in first.paths] == ["000000.png"]
    assert [path.name for path in second.paths] == ["000001-0.png", "000001-1.png"]
    assert orjson.loads((out / ".000001.done").read_bytes()) == ["000001-0.png", "000001-1.png"]
    assert first.response is not None
    assert (out / "000000.png").read_bytes() == first.response.data[0].content()
    assert leftovers(out) == []

    named = await client.run_batch(
        [generation(7)], output_dir=out, key=lambda request, index: f"fox-{index}"
    )
    assert [path.name for path in named.results[0].paths] == ["fox-0.png"]


async def test_url_results_are_downloaded_and_formats_give_the_extension(
    client: AsyncImagesClient, tmp_path: Path
) -> None:
    """A ``url`` result is fetched and sniffed (png); jpeg is ``.jpg``, gif and svg their own."""
    requests = [
        GenerateRequest(prompt="a url", model="dall-e-2", size="256x256"),
        GenerateRequest(
            prompt="a jpeg", model="gpt-image-1-mini", quality="low", output_format="jpeg"
        ),
        generation(2, output_format="gif", frame_count=2, quality=None),
        generation(3, output_format="svg", quality=None),
    ]
    report = await client.run_batch(requests, output_dir=tmp_path)
    url, jpeg, gif, svg = report.results
    assert [path.name for path in gif.paths] == ["000002.gif"]
    assert [path.name for path in svg.paths] == ["000003.svg"]
    assert svg.paths[0].read_text().startswith("<?xml")
    assert url.response is not None
    assert url.response.data[0].url
    assert [path.name for path in url.paths] == ["000000.png"]
    assert url.paths[0].read_bytes().startswith(b"\x89PNG")
    assert [path.name for path in jpeg.paths] == ["000001.jpg"]
    assert jpeg.paths[0].read_bytes().startswith(b"\xff\xd8")
    assert report.summary.total_tokens > 0
    assert report.summary.total_tokens == (
        report.summary.input_tokens + report.summary.output_tokens
    )


@pytest.mark.parametrize("bad", ["", "..", "a/b", "c\\d"])
async def test_a_key_that_is_not_a_file_name_is_refused(
    client: AsyncImagesClient, tmp_path: Path, bad: str
) -> None:
    """A key must name a file inside ``output_dir``."""
    with pytest.raises(ValueError, match="plain file name"):
        await client.run_batch([generation(0)], output_dir=tmp_path, key=lambda r, i: bad)


async def test_resume_skips_what_an_interrupted_run_finished(
    client: AsyncImagesClient, server: LocalImagesServer, tmp_path: Path
) -> None:
    """Stop part-way, run again with resume: finished items are skipped, nothing is half."""
    requests = [generation(i) for i in range(12)]
    taken = 0
    async with client.map(requests, output_dir=tmp_path, concurrency=4) as results:
        async for _ in results:
            taken += 1
            if taken == 5:
                break
    assert leftovers(tmp_path) == []
    done, listed = listed_by_markers(tmp_path)
    assert listed == set(images_in(tmp_path))
    assert 5 <= done < 12

    # Requests the break cut short may reach the server's record later, so the second run
    # is told apart by its key rather than by counting.
    async with AsyncImagesClient(api_key="resumed-run-0002", base_url=server.base_url) as again:
        report = await again.run_batch(requests, output_dir=tmp_path, resume=True, concurrency=4)
    summary = report.summary
    assert (summary.skipped, summary.ok, summary.failed) == (done, 12 - done, 0)
    assert sum(str(r.api_key).endswith("0002") for r in server.requests) == 12 - done
    assert all(result.ok and len(result.paths) == 1 for result in report.results)
    assert images_in(tmp_path) == [f"{i:06d}.png" for i in range(12)]
    assert leftovers(tmp_path) == []


async def test_resume_redoes_an_item_whose_files_are_gone(
    client: AsyncImagesClient, tmp_path: Path
) -> None:
    """A marker is trusted only when every file it lists is there."""
    await client.run_batch([generation(0), generation(1)], output_dir=tmp_path)
    (tmp_path / "000001.png").unlink()
    report = await client.run_batch(
        [generation(0), generation(1)], output_dir=tmp_path, resume=True
    )
    assert [result.skipped for result in report.results] == [True, False]
    assert report.results[0].paths == (tmp_path / "000000.png",)
    assert (tmp_path / "000001.png").is_file()


# -- cancellation --------------------------------------------------------------------------


class Stall:
    """A server that reads the start of each request's body (past the multipart preamble,
    into the file) and then waits forever."""

    def __init__(self) -> None:
        self.uploading = Count()
        self.base_url = ""
        app = web.Application()
        app.router.add_post("/v1/images/edits", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        await request.content.readexactly(1 << 16)
        self.uploading.add()
        await anyio.sleep(60)
        return web.json_response(OK_BODY)

    async def __aenter__(self) -> Stall:
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.base_url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/v1"
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._runner.cleanup()


def large_png(path: Path) -> Path:
    """A PNG header then 32 MB of noise: more than the socket buffers hold (several MB each
    way on loopback), so it stays open."""
    path.write_bytes(make_png(64, 64) + os.urandom(32 << 20))
    return path


async def test_cancelling_a_batch_of_uploads_closes_every_connection_and_file(
    tmp_path: Path,
) -> None:
    """Uploads stuck mid-body are cut when the batch is cancelled; the fd count comes back."""
    image = large_png(tmp_path / "in.png")
    baseline = open_fds()
    async with Stall() as stall:
        async with AsyncImagesClient(api_key=KEY, base_url=stall.base_url) as client:
            requests = (
                EditRequest(image=image, prompt=f"edit {i}", model="gpt-image-1.5")
                for i in range(1000)
            )
            with anyio.CancelScope() as scope:
                async with client.map(requests, concurrency=6) as results:
                    await stall.uploading.reach(6)
                    assert files_open(image) == 6
                    scope.cancel()
                    async for _ in results:
                        pass
            assert scope.cancelled_caught
            assert files_open(image) == 0
        assert stall.uploading.value == 6
    # A socket closed with unsent data is let go once the loop sees the peer's reset.
    with anyio.fail_after(5):
        while open_fds() > baseline:
            await anyio.sleep(0.01)
            gc.collect()


async def test_leaving_the_block_stops_the_rest_at_once(
    client: AsyncImagesClient, server: LocalImagesServer
) -> None:
    """A break out of the ``async with`` cancels what is in flight; nothing more is sent."""
    requests = [generation(i) for i in range(200)]
    async with client.map(requests, concurrency=4) as results:
        async for _ in results:
            break
    await anyio.sleep(0.05)
    assert len(server.requests) <= 1 + 4 + 1


# -- progress ------------------------------------------------------------------------------


async def test_progress_is_reported_after_each_item(
    client: AsyncImagesClient, tmp_path: Path
) -> None:
    """``on_progress`` sees every item counted once, with skipped and failed ones apart."""
    await client.run_batch([generation(0), generation(1)], output_dir=tmp_path)
    seen: list[BatchProgress] = []
    requests = [generation(i) for i in range(6)]
    requests[5] = invalid(5)
    await client.run_batch(
        requests, output_dir=tmp_path, resume=True, concurrency=2, on_progress=seen.append
    )
    assert [progress.done for progress in seen] == [1, 2, 3, 4, 5, 6]
    last = seen[-1]
    assert (last.ok, last.failed, last.skipped, last.in_flight) == (3, 1, 2, 0)
    assert all(progress.in_flight <= 2 for progress in seen)
    assert all(progress.elapsed >= 0 and progress.rate >= 0 for progress in seen)


async def test_a_progress_bar_draws_the_batch(client: AsyncImagesClient) -> None:
    """``progress_bar()`` is an ``on_progress`` callback that moves a tqdm bar."""
    out = io.StringIO()
    with progress_bar(total=5, file=out, mininterval=0) as bar:
        await client.run_batch([generation(i) for i in range(5)], on_progress=bar)
    text = out.getvalue()
    assert "5/5" in text
    assert "ok=5" in text


def test_the_progress_bar_names_the_extra_when_tqdm_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without tqdm, the error says which extra to install."""
    monkeypatch.setitem(sys.modules, "tqdm", None)
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    with pytest.raises(ImportError, match=r"openai-images\[progress\]"):
        progress_bar()


# -- the shared rate limiter ---------------------------------------------------------------


async def test_a_server_rate_limit_slows_the_whole_batch_without_failures() -> None:
    """With a nearly spent budget, the batch paces itself: no failures and few 429s."""
    async with LocalImagesServer(requests_per_minute=1200) as server:
        await spend_budget(server.base_url, leave=12)
        async with AsyncImagesClient(api_key=KEY, base_url=server.base_url) as client:
            report = await client.run_batch(
                [generation(i) for i in range(60)], concurrency=16, keep_results=False
            )
    assert report.results == []
    assert (report.summary.ok, report.summary.failed) == (60, 0)
    assert report.summary.rate_limited < 10


async def spend_budget(base_url: str, *, leave: int) -> None:
    """Send requests the server refuses (they still count) until ``leave`` or fewer are left."""
    async with AsyncImagesClient(
        api_key=KEY, base_url=base_url, validate=False, max_retries=0
    ) as unchecked:
        remaining = await refused(unchecked)
        while remaining > leave:
            async with anyio.create_task_group() as group:
                for _ in range(remaining - leave - 1):
                    group.start_soon(refused, unchecked)
            remaining = await refused(unchecked)


async def refused(client: AsyncImagesClient) -> int:
    """Send an empty prompt, which the server refuses; return its remaining request budget."""
    with pytest.raises(BadRequestError) as caught:
        await client.send(GenerateRequest(prompt=""))
    return int(caught.value.headers["x-ratelimit-remaining-requests"])


async def test_absorbed_429s_spend_no_retries_against_a_sliced_limit() -> None:
    """Per-minute headers over one-second slices, ``max_retries=0``: nothing fails, since
    the limiter, not the item, handles the 429s."""
    async with (
        LocalImagesServer(requests_per_minute=600, slice_seconds=1.0) as server,
        AsyncImagesClient(api_key=KEY, base_url=server.base_url, max_retries=0) as client,
    ):
        report = await client.run_batch([generation(i) for i in range(40)], concurrency=16)
    assert (report.summary.ok, report.summary.failed) == (40, 0)
    assert report.summary.rate_limited > 0
    assert report.summary.limited_by == "server_requests"
    assert report.summary.stopped_by is None


async def test_the_first_wave_against_one_request_a_second_is_no_storm() -> None:
    """A bucket of one request refilled ten times a second, 64 at once allowed: the first
    wave starts small, so only a few 429s come before the limiter has heard."""
    async with (
        LocalImagesServer(requests_per_minute=600, burst=1, latency=0.1) as server,
        AsyncImagesClient(api_key=KEY, base_url=server.base_url, max_retries=0) as client,
    ):
        report = await client.run_batch([generation(i) for i in range(12)], concurrency=64)
    assert (report.summary.ok, report.summary.failed) == (12, 0)
    assert report.summary.rate_limited <= 12


async def test_images_and_tokens_limits_pace_the_batch_without_failures() -> None:
    """An images-per-minute limit with ``n=2`` and a tokens-per-minute limit: all succeed."""
    async with (
        LocalImagesServer(images_per_minute=1200, tokens_per_minute=200_000) as server,
        AsyncImagesClient(api_key=KEY, base_url=server.base_url, max_retries=0) as client,
    ):
        requests = [
            GenerateRequest(prompt=f"item {i}", model="gpt-image-1-mini", quality="low", n=2)
            for i in range(16)
        ]
        report = await client.run_batch(requests, concurrency=8)
    assert (report.summary.ok, report.summary.failed) == (16, 0)
    assert report.summary.total_tokens > 0


async def test_a_cap_is_named_as_the_limit_that_bound(client: AsyncImagesClient) -> None:
    """A requests-per-minute cap below what the server allows is what the report names."""
    report = await client.run_batch(
        [generation(i) for i in range(6)], requests_per_minute=3000, images_per_minute=6000
    )
    assert report.summary.limited_by == "requests_per_minute"
    assert set(report.summary.limit_waits) <= {
        "requests_per_minute",
        "images_per_minute",
        "first_wave",
    }


async def test_out_of_money_stops_the_batch_and_resume_finishes_it(
    client: AsyncImagesClient, server: LocalImagesServer, tmp_path: Path
) -> None:
    """An out-of-money 429 ends the batch: nothing more is sent, the report names the
    cause; once billing is fixed, ``resume`` sends only what is left."""
    requests = [generation(i) for i in range(40)]
    await client.run_batch(requests[:3], output_dir=tmp_path)
    server.inject(Fault(kind="quota", code="credit_balance_exhausted", times=1000))
    report = await client.run_batch(requests, output_dir=tmp_path, resume=True, concurrency=4)
    summary = report.summary
    assert isinstance(summary.stopped_by, InsufficientQuotaError)
    assert summary.stopped_by.code == "credit_balance_exhausted"
    assert summary.ok == 0
    assert summary.skipped == 3
    assert 1 <= summary.failed <= 4 + 1
    assert all(isinstance(r.error, InsufficientQuotaError) for r in report.results if not r.ok)
    assert all(r.retries == 0 for r in report.results)
    assert len(server.requests) - 3 <= 4

    server.clear()
    again = await client.run_batch(requests, output_dir=tmp_path, resume=True, concurrency=4)
    assert (again.summary.skipped, again.summary.ok, again.summary.failed) == (3, 37, 0)
    assert again.summary.stopped_by is None


async def test_a_moderation_block_fails_that_item_only_and_is_not_retried(
    client: AsyncImagesClient, server: LocalImagesServer
) -> None:
    """The blocked prompt's item fails with the details; the rest succeed."""
    server.inject(Fault(kind="moderation", prompts=["item 3"], categories=["violence"]))
    report = await client.run_batch([generation(i) for i in range(8)], concurrency=4)
    blocked = report.results[3]
    assert isinstance(blocked.error, ModerationBlockedError)
    assert blocked.error.moderation_details is not None
    assert blocked.error.moderation_details.categories == ("violence",)
    assert blocked.retries == 0
    assert [r.ok for r in report.results] == [True] * 3 + [False] + [True] * 4
    assert sum(r.fields.get("prompt") == "item 3" for r in server.requests) == 1
    assert report.summary.stopped_by is None


async def test_items_give_up_when_nothing_but_429s_come_for_the_patience(
    client: AsyncImagesClient, server: LocalImagesServer
) -> None:
    """A server that only refuses: the batch stops after ``rate_limit_patience`` and says
    why; the items that were pulled fail with a rate-limit error, the rest are not sent."""
    server.inject(Fault(kind="status", status=429, times=10_000, retry_after_ms=20))
    report = await client.run_batch(
        (generation(i) for i in range(1000)), concurrency=4, rate_limit_patience=0.3
    )
    summary = report.summary
    assert isinstance(summary.stopped_by, RateLimitError)
    assert summary.ok == 0
    assert 1 <= summary.failed <= 4 + 1
    assert all(isinstance(r.error, RateLimitError) for r in report.results)


async def test_concurrency_beyond_the_pool_warns_and_is_held_to_it(
    gate: tuple[Gate, str],
) -> None:
    """``concurrency=8`` on a pool of 3 connections says so, and 3 are out at once."""
    handler, base_url = gate
    handler.held.clear()
    async with AsyncImagesClient(api_key=KEY, base_url=base_url, max_connections=3) as client:
        with pytest.warns(UserWarning, match="max_connections=8"):
            batch = client.map([generation(i) for i in range(30)], concurrency=8)
        async with batch as results:
            got = [result async for result in results]
    assert len(got) == 30
    assert handler.peak <= 3


async def test_two_batches_sharing_one_limit_both_finish_without_failures() -> None:
    """Two clients (as two processes would) share one sliced limit; each is paced by the
    429s and headers it sees, and neither loses an item."""
    async with LocalImagesServer(requests_per_minute=900, slice_seconds=1.0) as server:
        reports = []

        async def run(name: str) -> None:
            async with AsyncImagesClient(
                api_key=name, base_url=server.base_url, max_retries=0
            ) as client:
                reports.append(
                    await client.run_batch([generation(i) for i in range(25)], concurrency=8)
                )

        async with anyio.create_task_group() as group:
            group.start_soon(run, "first-key")
            group.start_soon(run, "second-key")
    assert [(r.summary.ok, r.summary.failed) for r in reports] == [(25, 0), (25, 0)]


def test_the_sync_client_takes_the_same_limits() -> None:
    """``ImagesClient.run_batch`` passes the caps and the patience on."""
    with (
        LocalImagesServer.in_thread() as server,
        ImagesClient(api_key=KEY, base_url=server.base_url) as client,
    ):
        report = client.run_batch(
            [generation(i) for i in range(3)],
            requests_per_minute=6000,
            images_per_minute=6000,
            tokens_per_minute=10**6,
            rate_limit_patience=5,
        )
    assert report.summary.ok == 3


def test_a_result_knows_whether_it_is_ok() -> None:
    """``ok`` is false only with an error; a skipped result is ok."""
    request = generation(0)
    error = RequestValidationError([Violation(param="n", message="n is wrong")])
    assert BatchResult(index=0, request=request, skipped=True).ok
    assert not BatchResult(index=0, request=request, error=error).ok
