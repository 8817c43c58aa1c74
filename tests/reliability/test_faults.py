"""The fault catalogue against the async client.

Each case ends in the documented error (or a result), after the documented number of
requests and retries, with every descriptor, task and connection it opened closed again,
and no warning (``filterwarnings = error`` would fail the test).
"""

from __future__ import annotations

import tracemalloc

import pytest

from openai_images import (
    APIConnectionError,
    AsyncImagesClient,
    ImagesResponse,
)

from .conftest import (
    BOMB_BYTES,
    CASES,
    FLOOD_BYTES,
    FaultCase,
    Snapshot,
    assert_released,
    call,
    check_counts,
    check_error,
    client_options,
    open_venue,
    settle_count,
)

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
async def test_each_fault_gives_its_documented_outcome(
    case: FaultCase, delays: list[float]
) -> None:
    """The documented error or result, attempts and retry waits; nothing left open."""
    async with open_venue(case) as venue:
        before = Snapshot.take()
        async with AsyncImagesClient(**client_options(case, venue)) as client:
            outcome = await call(client, case)
        await settle_count(case, venue)
        await assert_released(before)
        check_error(case, outcome.error)
        check_counts(case, venue, delays)
    if case.events is not None:
        assert len(outcome.events) == case.events
    if case.error is None:
        assert isinstance(outcome.result, ImagesResponse)
        assert outcome.result.data


async def test_the_client_recovers_after_every_fault(delays: list[float]) -> None:
    """One client meets every local-server fault in turn and still answers the next call."""
    local = [case for case in CASES if case.venue == "local"]
    async with open_venue(local[0]) as venue:
        server = venue.server
        assert server is not None
        server.clear()
        async with AsyncImagesClient(**client_options(local[0], venue)) as client:
            for case in local:
                server.inject(*case.faults())
                outcome = await call(client, case)
                check_error(case, outcome.error)
                server.clear()
            result = await client.generate(
                prompt="after all that", model="gpt-image-2.5-flare", size="256x256"
            )
    assert result.data


@pytest.mark.parametrize(
    "case",
    [case for case in CASES if case.venue in ("flood", "stream-flood", "gzip-bomb")],
    ids=lambda case: case.name,
)
async def test_an_endless_response_is_cut_without_filling_memory(
    case: FaultCase, delays: list[float]
) -> None:
    """A response far over ``max_response_bytes`` fails early: memory never holds it."""
    async with (
        open_venue(case) as venue,
        AsyncImagesClient(**client_options(case, venue)) as client,
    ):
        tracemalloc.start()
        try:
            outcome = await call(client, case)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert isinstance(outcome.error, APIConnectionError)
    assert "larger than the limit" in str(outcome.error)
    # Server and client share this process: the peak covers both, and is still a fraction.
    sent = BOMB_BYTES if case.venue == "gzip-bomb" else FLOOD_BYTES
    assert peak < sent // 4, f"peak {peak} bytes"
