"""The fault catalogue against the synchronous client, ``ImagesClient``.

The same outcomes as the async client's: the sync client runs it on a background loop and
hands back its result or its exception unchanged. After each case the background loop's
thread, its descriptors and its connections are gone.
"""

from __future__ import annotations

import pytest
from anyio.from_thread import BlockingPortal

from openai_images import ImagesClient, ImagesResponse

from .conftest import (
    CASES,
    FaultCase,
    Snapshot,
    assert_released_sync,
    call_sync,
    check_counts,
    check_error,
    client_options,
    open_venue,
    wait_until_sync,
)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_each_fault_gives_its_documented_outcome(
    case: FaultCase, delays: list[float], portal: BlockingPortal
) -> None:
    """The documented error or result, attempts and retry waits; nothing left open."""
    with portal.wrap_async_context_manager(open_venue(case)) as venue:
        before = Snapshot.take()
        with ImagesClient(**client_options(case, venue)) as client:
            outcome = call_sync(client, case)
        wait_until_sync(lambda: (venue.count() or 0) >= (case.attempts or 0))
        assert_released_sync(before)
        check_error(case, outcome.error)
        check_counts(case, venue, delays)
    if case.events is not None:
        assert len(outcome.events) == case.events
    if case.error is None:
        assert isinstance(outcome.result, ImagesResponse)
        assert outcome.result.data
