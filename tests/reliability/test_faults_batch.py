"""The fault catalogue inside a batch: a failed item is a result, and the batch goes on.

Each batch is three generations, one at a time, so a fault scripted on the local server hits
the first item (all of its attempts) and the other two succeed; a fault of the venue itself
(refused, no DNS, a redirect, an oversized answer) hits all three. Either way every item
gets a :class:`BatchResult`, in order, carrying the documented error and retry count.
"""

from __future__ import annotations

import random

import pytest
from anyio.from_thread import BlockingPortal

from openai_images import (
    APIConnectionError,
    APIResponseValidationError,
    AsyncImagesClient,
    BatchResult,
    GenerateRequest,
    ImagesClient,
    InsufficientQuotaError,
    InternalServerError,
    OpenAIImagesError,
    RateLimitError,
    RequestOptions,
)
from openai_images.testing import Fault
from openai_images.testing._faults import FaultKind

from .conftest import (
    CASES,
    WHOLE_CASES,
    FaultCase,
    Snapshot,
    Venue,
    assert_released,
    assert_released_sync,
    check_error,
    client_options,
    generation,
    open_venue,
    settle_count,
    wait_until_sync,
)

pytestmark = pytest.mark.usefixtures("quick_batch_pauses")

ITEMS = 3


def requests(case: FaultCase) -> list[GenerateRequest]:
    return [GenerateRequest(**generation(case)) for _ in range(ITEMS)]


def check_results(
    case: FaultCase, venue: Venue, results: list[BatchResult], delays: list[float]
) -> None:
    """Every item has its result; the faulted ones carry the case's error and retries.

    Two faults act on the whole batch: a rate-limit 429 is retried when the batch's limiter
    allows (no retry delay of the client's), and an out-of-money 429 stops the batch: items
    already pulled end with the same error, unsent, and the rest are never pulled.
    """
    hit = ITEMS if case.venue != "local" else 1
    stops = case.error is InsufficientQuotaError
    paced = case.status is None and case.name.startswith("429-")
    if stops:
        hit = len(results)
    assert [result.index for result in results] == list(range(hit if stops else ITEMS))
    # A fault served once meets whichever item reaches the server first: not always the
    # first by index, since the first wave goes out together.
    faulted = [result for result in results if not result.ok or result.retries]
    clean = [result for result in results if result.ok and not result.retries]
    if case.error is None and case.retries == 0:
        faulted, clean = results[:hit], results[hit:]
    assert len(faulted) == hit
    for result in faulted:
        check_error(case, result.error)
        assert result.retries == case.retries
    for result in clean:
        assert result.ok, result.error
        assert result.retries == 0
        assert result.response is not None
    if case.attempts is not None:
        assert venue.count() == (case.attempts if stops else hit * case.attempts + ITEMS - hit)
    assert len(delays) == (0 if paced else hit * case.retries)
    assert venue.elsewhere() == []


@pytest.mark.anyio
@pytest.mark.parametrize("case", WHOLE_CASES, ids=lambda case: case.name)
async def test_async_batch_meets_each_fault_and_goes_on(
    case: FaultCase, delays: list[float]
) -> None:
    """``run_batch`` gives every item a result; the fault stays with the items it hit."""
    async with open_venue(case) as venue:
        before = Snapshot.take()
        async with AsyncImagesClient(**client_options(case, venue)) as client:
            report = await client.run_batch(
                requests(case),
                concurrency=1,
                options=RequestOptions(timeout=case.timeout),
            )
        await settle_count(case, venue)
        await assert_released(before)
        check_results(case, venue, report.results, delays)
    failed = sum(not result.ok for result in report.results)
    assert (report.summary.ok, report.summary.failed) == (len(report.results) - failed, failed)
    assert report.summary.retries == sum(result.retries for result in report.results)


@pytest.mark.parametrize("case", WHOLE_CASES, ids=lambda case: case.name)
def test_sync_batch_meets_each_fault_and_goes_on(
    case: FaultCase, delays: list[float], portal: BlockingPortal
) -> None:
    """``ImagesClient.map`` yields every item's result, the faulted ones with their error."""
    with portal.wrap_async_context_manager(open_venue(case)) as venue:
        before = Snapshot.take()
        with ImagesClient(**client_options(case, venue)) as client:
            options = RequestOptions(timeout=case.timeout)
            with client.map(requests(case), concurrency=1, ordered=True, options=options) as batch:
                results = list(batch)
        wait_until_sync(lambda: (venue.count() or 0) >= (case.attempts or 0))
        assert_released_sync(before)
        check_results(case, venue, results, delays)


# What each fault of the local server may leave a failed item with (after its retries).
_MIX: dict[FaultKind, tuple[type[OpenAIImagesError], ...]] = {
    "status": (InternalServerError, RateLimitError),
    "reset": (APIConnectionError,),
    "reset_mid_body": (APIConnectionError,),
    "truncated_json": (APIResponseValidationError,),
    "non_json": (InternalServerError,),
}


@pytest.mark.anyio
async def test_a_concurrent_batch_through_mixed_faults_accounts_for_every_attempt(
    delays: list[float],
) -> None:
    """Forty items, eight at a time, through sixty random faults: every attempt is counted.

    Each item ends ok or with an error a fault can cause; the server saw exactly one
    request per attempt, and the summary's retries are the items' retries.
    """
    rng = random.Random(20240605)
    faults = []
    for _ in range(60):
        kind = rng.choice(sorted(_MIX))
        if kind == "status":
            faults.append(Fault(kind="status", status=rng.choice([429, 500, 502, 503])))
        else:
            faults.append(Fault(kind=kind))
    case = next(case for case in CASES if case.venue == "local")
    async with open_venue(case) as venue:
        assert venue.server is not None
        venue.server.inject(*faults)
        before = Snapshot.take()
        async with AsyncImagesClient(**client_options(case, venue)) as client:
            batch = [GenerateRequest(**generation(case)) for _ in range(40)]
            report = await client.run_batch(batch, concurrency=8)
        await assert_released(before)
        attempts = sum(1 + result.retries for result in report.results)
        assert venue.count() == attempts
    allowed = tuple({cls for classes in _MIX.values() for cls in classes})
    assert len(report.results) == 40
    for result in report.results:
        assert result.ok or isinstance(result.error, allowed), result.error
    assert report.summary.ok + report.summary.failed == 40
    assert report.summary.retries == sum(result.retries for result in report.results)
    # The 429s are retried when the batch's limiter allows, without a delay of the client's.
    assert len(delays) == report.summary.retries - report.summary.rate_limited
    assert report.summary.failed > 0
    assert report.summary.ok > 0
