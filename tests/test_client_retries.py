"""Which failures the async client retries, how often, how long it waits, and what it resends.

Scripted failures carry ``retry-after-ms: 1`` unless a test is about waiting, so the
suite does not sit through the exponential backoff.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from openai_images import (
    APIConnectionError,
    APIStatusError,
    AsyncImagesClient,
    BadRequestError,
    ImageRef,
    InternalServerError,
    RateLimitError,
)

from .images import make_png
from .recorder import Recorder, Reply

pytestmark = pytest.mark.anyio

FAST = {"retry-after-ms": "1"}


@pytest.fixture
async def recorder() -> AsyncIterator[Recorder]:
    async with Recorder() as rec:
        yield rec


def _client(recorder: Recorder, *, max_retries: int = 2) -> AsyncImagesClient:
    return AsyncImagesClient(api_key="sk-test", base_url=recorder.base_url, max_retries=max_retries)


def _failure(status: int, *, code: str | None = None, **headers: str) -> Reply:
    body = {"error": {"message": f"status {status}", "type": "t", "param": None, "code": code}}
    return Reply(status=status, json=body, headers={**FAST, **headers})


async def test_two_failures_then_success_takes_three_requests(recorder: Recorder) -> None:
    """With max_retries=2, 500, 500, 200 ends in success after exactly three requests."""
    recorder.reply(_failure(500), _failure(500), Reply())
    async with _client(recorder, max_retries=2) as client:
        response = await client.generate(prompt="p")
    assert len(recorder.requests) == 3
    assert response.request_id == "req_3"


async def test_retries_run_out_and_the_last_error_is_raised(recorder: Recorder) -> None:
    """When every attempt fails, the caller gets the last attempt's error."""
    recorder.reply(_failure(500), _failure(502), _failure(503))
    async with _client(recorder, max_retries=2) as client:
        with pytest.raises(InternalServerError) as caught:
            await client.generate(prompt="p")
    assert len(recorder.requests) == 3
    assert caught.value.status_code == 503
    assert caught.value.request_id == "req_3"


async def test_max_retries_zero_sends_once(recorder: Recorder) -> None:
    """A client made with max_retries=0 never retries."""
    recorder.reply(_failure(500), Reply())
    async with _client(recorder, max_retries=0) as client:
        with pytest.raises(InternalServerError):
            await client.generate(prompt="p")
    assert len(recorder.requests) == 1


async def test_per_call_max_retries_overrides_the_client(recorder: Recorder) -> None:
    """``max_retries=`` on a call wins over the client's setting, both up and down."""
    async with _client(recorder, max_retries=0) as client:
        recorder.reply(_failure(500), _failure(500), Reply())
        await client.generate(prompt="p", max_retries=2)
        assert len(recorder.requests) == 3
    async with _client(recorder, max_retries=5) as client:
        recorder.reply(_failure(500), Reply())
        with pytest.raises(InternalServerError):
            await client.generate(prompt="p", max_retries=0)
    assert len(recorder.requests) == 4


async def test_retry_after_ms_is_honoured(recorder: Recorder) -> None:
    """The client waits at least as long as ``retry-after-ms`` says before retrying."""
    recorder.reply(_failure(429, **{"retry-after-ms": "50"}), Reply())
    async with _client(recorder) as client:
        started = time.monotonic()
        await client.generate(prompt="p")
        waited = time.monotonic() - started
    assert len(recorder.requests) == 2
    assert waited >= 0.05


async def test_should_retry_false_stops_a_retryable_status(recorder: Recorder) -> None:
    """``x-should-retry: false`` on a 503 means one request only."""
    recorder.reply(_failure(503, **{"x-should-retry": "false"}), Reply())
    async with _client(recorder) as client:
        with pytest.raises(InternalServerError):
            await client.generate(prompt="p")
    assert len(recorder.requests) == 1


async def test_should_retry_true_retries_a_client_error(recorder: Recorder) -> None:
    """``x-should-retry: true`` on a 400 makes it worth another try."""
    recorder.reply(_failure(400, **{"x-should-retry": "true"}), Reply())
    async with _client(recorder) as client:
        await client.generate(prompt="p")
    assert len(recorder.requests) == 2


async def test_a_plain_bad_request_is_not_retried(recorder: Recorder) -> None:
    """A 400 without a hint is the caller's mistake: no second try."""
    recorder.reply(_failure(400), Reply())
    async with _client(recorder) as client:
        with pytest.raises(BadRequestError):
            await client.generate(prompt="p")
    assert len(recorder.requests) == 1


async def test_insufficient_quota_is_not_retried(recorder: Recorder) -> None:
    """A 429 whose code is ``insufficient_quota`` fails at once: waiting will not refill it."""
    recorder.reply(_failure(429, code="insufficient_quota"), Reply())
    async with _client(recorder) as client:
        with pytest.raises(RateLimitError) as caught:
            await client.generate(prompt="p")
    assert caught.value.code == "insufficient_quota"
    assert len(recorder.requests) == 1


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503, 504])
async def test_retryable_statuses_are_retried(recorder: Recorder, status: int) -> None:
    """Timeouts, conflicts, rate limits and server errors get another try."""
    recorder.reply(_failure(status), Reply())
    async with _client(recorder) as client:
        await client.generate(prompt="p")
    assert len(recorder.requests) == 2


async def test_a_dropped_connection_is_retried(recorder: Recorder) -> None:
    """A connection the server closes without answering is retried, then succeeds."""

    async def hang_up(request: web.Request) -> web.StreamResponse:
        assert request.transport is not None
        request.transport.close()
        return web.Response()

    recorder.reply(Reply(handler=hang_up), Reply())
    async with _client(recorder, max_retries=1) as client:
        response = await client.generate(prompt="p")
    assert len(recorder.requests) == 2
    assert response.request_id == "req_2"


async def test_a_dropped_connection_without_retries_is_a_connection_error(
    recorder: Recorder,
) -> None:
    """With no retries left, a dropped connection surfaces as APIConnectionError."""

    async def hang_up(request: web.Request) -> web.StreamResponse:
        assert request.transport is not None
        request.transport.close()
        return web.Response()

    recorder.reply(Reply(handler=hang_up))
    async with _client(recorder, max_retries=0) as client:
        with pytest.raises(APIConnectionError):
            await client.generate(prompt="p")


async def test_a_one_shot_upload_is_not_retried(recorder: Recorder) -> None:
    """An image read from a pipe cannot be sent twice, so a 500 is raised after one try."""
    png = make_png(8, 8)
    read_end, write_end = os.pipe()
    with os.fdopen(write_end, "wb") as writer:
        writer.write(png)
    recorder.reply(_failure(500), Reply())
    with os.fdopen(read_end, "rb") as reader:
        assert not reader.seekable()
        async with _client(recorder, max_retries=3) as client:
            with pytest.raises(InternalServerError):
                await client.edit(image=reader, prompt="p", model="gpt-image-1.5")
    assert len(recorder.requests) == 1
    (image,) = [part for part in recorder.requests[0].parts if part.filename]
    assert image.content == png


async def test_a_retried_upload_resends_the_identical_body(
    recorder: Recorder, tmp_path: Path
) -> None:
    """A multipart edit sent again after a 500 carries byte-for-byte the same body."""
    path = tmp_path / "photo.png"
    path.write_bytes(make_png(40, 40))
    mask = make_png(40, 40, alpha=True)
    recorder.reply(_failure(500), Reply())
    async with _client(recorder) as client:
        await client.edit(
            image=[path, make_png(20, 20)], mask=mask, prompt="p", model="gpt-image-1.5", n=2
        )
    first, second = recorder.requests
    assert first.headers["Content-Type"] == second.headers["Content-Type"]
    assert first.body == second.body
    assert [p.content for p in second.parts if p.filename] == [
        path.read_bytes(),
        make_png(20, 20),
        mask,
    ]


async def test_a_json_edit_is_retried(recorder: Recorder) -> None:
    """A JSON edit by reference is replayable and retried like a generation."""
    recorder.reply(_failure(503), Reply())
    async with _client(recorder) as client:
        await client.edit(images=[ImageRef(file_id="file-1")], prompt="p", model="gpt-image-1.5")
    first, second = recorder.requests
    assert (
        first.json
        == second.json
        == {
            "prompt": "p",
            "model": "gpt-image-1.5",
            "images": [{"file_id": "file-1"}],
        }
    )


async def test_status_error_carries_the_final_headers(recorder: Recorder) -> None:
    """The error after the last retry exposes that response's headers (retry hints too)."""
    recorder.reply(_failure(429), _failure(429, **{"x-ratelimit-remaining-requests": "0"}))
    async with _client(recorder, max_retries=1) as client:
        with pytest.raises(APIStatusError) as caught:
            await client.generate(prompt="p")
    assert caught.value.headers["x-ratelimit-remaining-requests"] == "0"
