"""A soak: thousands of requests through random faults, and nothing grows.

Sixteen workers send generations, uploads and streams to the local server, a third of
them through a random fault (error statuses, 429s, resets before and during the body,
broken JSON, HTML pages, slow headers and bodies, cut and failing streams). Every call
ends in a result or a library error. Between the middle and the end of the run the
process must not grow: traced memory, live Python objects, open descriptors and asyncio
tasks (resident memory is shown too). The figures are printed (``pytest -s``) and
recorded in the test's report (``record_property``).

CI runs 1,500 requests (300 of warm-up, then two halves of 600 to compare).
``OPENAI_IMAGES_SOAK_SECONDS=120`` (what ``nox -s soak`` sets) runs the two halves for that
long in all instead.
"""

from __future__ import annotations

import asyncio
import gc
import os
import random
import time
import tracemalloc
from collections import Counter
from collections.abc import AsyncIterator, Callable

import anyio
import attrs
import pytest

from openai_images import AsyncImagesClient, OpenAIImagesError
from openai_images.testing import Fault, LocalImagesServer
from tests.images import make_png

from .conftest import KEY, open_fds

pytestmark = pytest.mark.anyio

SOAK_SECONDS = float(os.environ.get("OPENAI_IMAGES_SOAK_SECONDS", "0"))
WARM_UP = 300
HALF = 600
CONCURRENCY = 16
FAULT_RATE = 0.3

# What a settled process may differ by between two counts: buffers at their working size.
TRACED_MARGIN = 256 << 10
OBJECTS_MARGIN = 500
FDS_MARGIN = 2

SQUARE = make_png(16, 16)

_FAULTS: list[Callable[[random.Random], Fault]] = [
    lambda rng: Fault(kind="status", status=rng.choice([500, 502, 503]), retry_after_ms=1),
    lambda rng: Fault(kind="status", status=429, retry_after_ms=1),
    lambda rng: Fault(kind="status", status=429, code="insufficient_quota"),
    lambda rng: Fault(kind="reset"),
    lambda rng: Fault(kind="reset_mid_body"),
    lambda rng: Fault(kind="truncated_json"),
    lambda rng: Fault(kind="non_json"),
    lambda rng: Fault(kind="delay_headers", delay=0.005),
    lambda rng: Fault(kind="stall_body", delay=0.005),
]
_STREAM_FAULTS: list[Callable[[random.Random], Fault]] = [
    lambda rng: Fault(kind="stream_cut", after_events=rng.randint(0, 1)),
    lambda rng: Fault(kind="stream_error", after_events=rng.randint(0, 1)),
]


@attrs.frozen
class Figures:
    """What the process holds at one moment."""

    traced: int
    rss: int
    objects: int
    fds: int
    tasks: int

    @classmethod
    async def take(cls) -> Figures:
        # Let closing connections finish on both ends before counting.
        await anyio.sleep(0.2)
        gc.collect()
        return cls(
            traced=tracemalloc.get_traced_memory()[0],
            rss=_resident_bytes(),
            objects=len(gc.get_objects()),
            fds=len(open_fds()),
            tasks=len(asyncio.all_tasks()),
        )


def _resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@attrs.define
class Soak:
    """The workers' shared state: what to send next and how each call ended."""

    client: AsyncImagesClient
    server: LocalImagesServer
    rng: random.Random
    outcomes: Counter[str] = attrs.Factory(Counter)
    sent: int = 0

    async def run(self, *, requests: int | None = None, seconds: float | None = None) -> None:
        """Send until ``requests`` more calls are made or ``seconds`` have passed."""
        stop_at = self.sent + requests if requests is not None else None
        deadline = time.monotonic() + seconds if seconds is not None else None

        def more() -> bool:
            if stop_at is not None:
                return self.sent < stop_at
            assert deadline is not None
            return time.monotonic() < deadline

        async def worker() -> None:
            while more():
                self.sent += 1
                await self.one()

        async with anyio.create_task_group() as group:
            for _ in range(CONCURRENCY):
                group.start_soon(worker)

    async def one(self) -> None:
        """One call of a random kind, maybe through a random fault."""
        rng = self.rng
        kind = rng.choices(["generate", "edit", "stream"], weights=[80, 15, 5])[0]
        if rng.random() < FAULT_RATE:
            makers = _STREAM_FAULTS if kind == "stream" and rng.random() < 0.5 else _FAULTS
            self.server.inject(rng.choice(makers)(rng))
        try:
            if kind == "generate":
                # b64_json: the server keeps ``url`` results for an hour, as the API does.
                await self.client.generate(
                    prompt="soak", model="gpt-image-2.5-flare", size="256x256", quality="low"
                )
            elif kind == "edit":
                await self.client.edit(
                    image=SQUARE, prompt="soak", model="gpt-image-2.5-flare", size="256x256",
                    quality="low",
                )  # fmt: skip
            else:
                stream = await self.client.generate(
                    prompt="soak", model="gpt-image-1.5", size="1024x1024", quality="low",
                    stream=True, partial_images=1,
                )  # fmt: skip
                async with stream:
                    async for _event in stream:
                        pass
        except OpenAIImagesError as error:
            self.outcomes[type(error).__name__] += 1
        else:
            self.outcomes["ok"] += 1


@pytest.fixture
async def soak(delays: list[float]) -> AsyncIterator[Soak]:
    """A server that keeps few records, and a client that retries at once."""
    async with (
        LocalImagesServer(max_recorded=50) as server,
        AsyncImagesClient(api_key=KEY, base_url=server.base_url, max_retries=2) as client,
    ):
        yield Soak(client=client, server=server, rng=random.Random(1234))
        delays.clear()


async def test_thousands_of_faulty_requests_leave_nothing_behind(
    soak: Soak, record_property: Callable[[str, object], None]
) -> None:
    """Between the middle and the end of a long run through random faults (after a
    warm-up), no Python memory, objects, fds or tasks are gained; every call ended in a
    result or a library error.

    Memory is what tracemalloc sees allocated and still alive: it counts every Python
    allocation exactly, where the resident size also moves with the allocator's arenas.
    """
    await soak.run(requests=WARM_UP)
    tracemalloc.start()
    try:
        started = time.monotonic()
        half = {"seconds": SOAK_SECONDS / 2} if SOAK_SECONDS else {"requests": HALF}
        await soak.run(**half)
        middle = await Figures.take()
        await soak.run(**half)
        soak.server.clear()
        end = await Figures.take()
        elapsed = time.monotonic() - started
    finally:
        tracemalloc.stop()
    report = {
        "requests": soak.sent,
        "seconds": round(elapsed, 1),
        "outcomes": dict(soak.outcomes),
        "middle": attrs.asdict(middle),
        "end": attrs.asdict(end),
    }
    print(f"\nsoak: {report}")
    for name, value in report.items():
        record_property(f"soak_{name}", value)
    assert sum(soak.outcomes.values()) == soak.sent
    assert soak.outcomes["ok"] > soak.sent // 2
    assert end.traced - middle.traced < TRACED_MARGIN
    assert end.objects - middle.objects < OBJECTS_MARGIN
    assert end.fds - middle.fds <= FDS_MARGIN
    assert end.tasks <= middle.tasks
