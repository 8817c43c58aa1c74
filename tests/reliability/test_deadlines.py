"""``Timeout.read`` and ``Timeout.total`` as the transport keeps them: one watch for all.

The transport gives aiohttp no ``total`` or ``sock_read`` timer (two timers per request,
rescheduled as data arrives); ``_Deadlines`` looks at every exchange in flight once a
tick and drops the connection of one past its limit. The rules (when an exchange is
overdue, how often the watch looks) are tested on given times; the cut itself against
servers that stall where aiohttp would otherwise see a clean end.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import anyio
import pytest
from aiohttp import web

from openai_images import APITimeoutError, AsyncImagesClient, Timeout
from openai_images._transport import _Attempt, _tick
from tests.recorder import Recorder, Reply

from .conftest import KEY, wait_until
from .hostile import STALL, RawServer, http_response

MODEL = "gpt-image-1.5"


def watched(timeout: Timeout, *, started: float = 100.0) -> _Attempt:
    """An attempt as ``_Deadlines.watch`` leaves it at ``started``."""
    attempt = _Attempt("POST", "http://127.0.0.1/v1/x", timeout, proxy=None, headers={})
    attempt.deadline = None if timeout.total is None else started + timeout.total
    attempt.read = timeout.read
    attempt.progress = started
    return attempt


def answered(attempt: _Attempt, received: int) -> None:
    """Give ``attempt`` a response head that has received ``received`` body bytes."""
    response: Any = SimpleNamespace(content=SimpleNamespace(total_bytes=received))
    attempt.response = response


def test_the_total_limit_expires_at_its_deadline() -> None:
    """An exchange is overdue once ``total`` has passed since it began, data or not."""
    attempt = watched(Timeout(read=None, total=5.0))
    assert not attempt.overdue(104.9)
    answered(attempt, 10)
    assert attempt.overdue(105.0)
    assert attempt.expired == "total"


def test_the_read_limit_counts_from_the_last_data_seen() -> None:
    """``read`` is the time without progress: the start, then each change of the bytes
    received (the head counts as progress when first seen)."""
    attempt = watched(Timeout(read=2.0, total=None))
    assert not attempt.overdue(101.9)  # waiting for the head
    answered(attempt, 0)
    assert not attempt.overdue(101.95)  # the head came: progress
    assert not attempt.overdue(103.9)
    answered(attempt, 5)
    assert not attempt.overdue(104.0)  # more bytes: progress again
    assert attempt.overdue(106.0)
    assert attempt.expired == "read"


def test_no_head_within_the_read_limit_is_overdue() -> None:
    """A server that never answers is caught by ``read`` when it is the shorter limit."""
    attempt = watched(Timeout(read=1.0, total=60.0))
    assert attempt.overdue(101.0)
    assert attempt.expired == "read"


@pytest.mark.parametrize(
    ("timeout", "tick"),
    [
        (Timeout(), 1.0),
        (Timeout(read=2.0, total=None), 0.2),
        (Timeout(read=None, total=0.5), 0.05),
        (Timeout(read=0.01, total=1.0), 0.005),
        (Timeout(read=None, total=None), None),
    ],
)
def test_the_watch_looks_often_enough_to_be_at_most_ten_percent_late(
    timeout: Timeout, tick: float | None
) -> None:
    """A tick is a tenth of the shorter limit, at most a second and at least 5 ms; an
    exchange without limits is not watched."""
    assert _tick(timeout) == tick


@pytest.mark.anyio
async def test_a_body_read_to_its_end_that_stalls_is_a_timeout_not_a_short_body() -> None:
    """A body with neither a length nor chunks is read until the connection ends: the cut
    that ends it must fail as the read limit, not parse as a truncated body."""
    script = [http_response("HTTP/1.1 200 OK\nContent-Type: application/json", b"{"), STALL]
    async with (
        RawServer(script) as server,
        AsyncImagesClient(api_key=KEY, base_url=server.base_url, max_retries=0) as client,
    ):
        with pytest.raises(APITimeoutError, match=r"no data for 0\.1 s \(Timeout\.read\)"):
            await client.generate(
                prompt="a fox", model=MODEL, timeout=Timeout(connect=5, read=0.1, total=10)
            )


async def trickle(request: web.Request) -> web.StreamResponse:
    """An answer that comes a few bytes at a time, 20 ms apart, for about 0.3 s."""
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    await response.prepare(request)
    body = b'{"created": 1, "data": [{"b64_json": "aGk="}]}'
    for start in range(0, len(body), 3):
        await response.write(body[start : start + 3])
        await anyio.sleep(0.02)
    await response.write_eof()
    return response


@pytest.fixture
async def trickling() -> AsyncIterator[str]:
    """A server whose answers trickle (see ``trickle``); its base URL."""
    async with Recorder() as server:
        server.reply(*[Reply(handler=trickle)] * 2)
        yield server.base_url


@pytest.mark.anyio
async def test_steady_data_keeps_a_slow_answer_alive(trickling: str) -> None:
    """An answer slower than ``read`` in all but whose bytes keep coming is not cut (the
    limit is 1 s; the answer takes about 0.3 s, with 20 ms gaps)."""
    async with AsyncImagesClient(api_key=KEY, base_url=trickling, max_retries=0) as client:
        result = await client.generate(
            prompt="a fox", model=MODEL, timeout=Timeout(read=1.0, total=30.0)
        )
    assert result.data[0].b64_json == "aGk="


@pytest.mark.anyio
async def test_the_watch_lets_go_when_nothing_is_in_flight(trickling: str) -> None:
    """Once every exchange is done, nothing is watched and the watch's timer stops (a
    client at rest schedules nothing)."""
    async with AsyncImagesClient(api_key=KEY, base_url=trickling, max_retries=0) as client:
        await client.generate(prompt="a fox", model=MODEL, timeout=Timeout(read=0.5, total=5.0))
        deadlines = client._sender.transport._deadlines
        assert deadlines is not None
        assert not deadlines._watched
        await wait_until(lambda: deadlines._timer is None)
