"""The batch's shared limiter: cap, server budget, AIMD and pauses, on a fake clock."""

from __future__ import annotations

import itertools
import math

import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st

from openai_images._ratelimit import BatchLimiter, ItemAttempts, Pacer


class FakeClock:
    """A clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def budget(limit: int, remaining: int, reset: str) -> dict[str, str]:
    """The three request rate-limit headers."""
    return {
        "x-ratelimit-limit-requests": str(limit),
        "x-ratelimit-remaining-requests": str(remaining),
        "x-ratelimit-reset-requests": reset,
    }


def start_when_allowed(pacer: Pacer, clock: FakeClock) -> int:
    """Move the clock to the first moment the pacer allows, and start an attempt there."""
    wait = pacer.delay()
    assert math.isfinite(wait)
    clock.advance(wait)
    assert pacer.delay() == 0
    return pacer.start()


def test_the_cap_spaces_starts_evenly_and_never_exceeds_it_in_a_minute() -> None:
    """With a cap of 120 a minute, starts are 0.5 s apart and 120 fit in the first minute."""
    clock = FakeClock()
    pacer = Pacer(requests_per_minute=120, clock=clock)
    times = []
    for _ in range(300):
        seq = start_when_allowed(pacer, clock)
        times.append(clock.now)
        pacer.record(seq, status=200, headers={})
    assert all(later - earlier >= 0.5 for earlier, later in itertools.pairwise(times))
    for begin in times:
        assert sum(begin <= t < begin + 60 for t in times) <= 120
    assert sum(t < 60 for t in times) == 120


def test_without_a_cap_or_news_attempts_go_at_once() -> None:
    """A limiter that knows nothing holds nothing back (after the probe)."""
    clock = FakeClock()
    pacer = Pacer(clock=clock)
    for _ in range(50):
        assert pacer.delay() == 0
        pacer.start()


def test_a_budget_is_used_then_spread_over_its_refill() -> None:
    """Two requests left of 60 a minute: two go now, the third when one has refilled."""
    clock = FakeClock()
    pacer = Pacer(clock=clock)
    seq = pacer.start()
    pacer.record(seq, status=200, headers=budget(60, 2, "58s"))
    assert pacer.budget() == 2
    pacer.start()
    pacer.start()
    assert pacer.delay() == pytest.approx(1.0)
    clock.advance(1.0)
    assert pacer.delay() == pytest.approx(0.0)


def test_a_reading_discounts_the_attempts_started_after_it() -> None:
    """Attempts that began after the one reporting may not be counted by the server yet."""
    clock = FakeClock()
    pacer = Pacer(clock=clock)
    first = pacer.start()
    for _ in range(4):
        pacer.start()
    pacer.record(first, status=200, headers=budget(600, 10, "59s"))
    assert pacer.budget() == 6


def test_an_empty_budget_on_a_success_waits_for_one_request_to_refill() -> None:
    """``remaining: 0`` holds new attempts until the bucket has refilled one request."""
    clock = FakeClock()
    pacer = Pacer(clock=clock)
    seq = pacer.start()
    pacer.record(seq, status=200, headers=budget(120, 0, "1m0s"))
    assert pacer.delay() == pytest.approx(0.5)


def test_a_full_bucket_refills_at_its_limit_per_minute() -> None:
    """With nothing used, the refill is taken as the limit per minute."""
    clock = FakeClock()
    pacer = Pacer(clock=clock)
    seq = pacer.start()
    pacer.record(seq, status=200, headers=budget(60, 60, "0s"))
    for _ in range(60):
        pacer.start()
    assert pacer.delay() == pytest.approx(1.0)


def test_a_429_pauses_every_attempt_for_the_hint() -> None:
    """``retry-after-ms`` holds back all new attempts of the batch, not just the retry."""
    clock = FakeClock()
    pacer = Pacer(clock=clock)
    seq = pacer.start()
    pacer.record(seq, status=429, headers={"retry-after-ms": "1500"})
    assert pacer.rate_limited == 1
    assert pacer.paused_until == 1.5
    assert pacer.delay() == pytest.approx(1.5)
    clock.advance(1.5)
    assert pacer.delay() == 0


@pytest.mark.parametrize(
    ("headers", "pause"),
    [
        ({}, 1.0),
        ({"retry-after": "600"}, 1.0),
        ({"retry-after": "2"}, 2.0),
        (budget(60, 0, "1m0s"), 1.0),
        (budget(600, 0, "1m0s"), 0.1),
    ],
)
def test_a_429_without_a_usable_hint_pauses_by_the_budget_or_a_second(
    headers: dict[str, str], pause: float
) -> None:
    """No hint (or an absurd one): the time to refill one request, else one second."""
    clock = FakeClock()
    pacer = Pacer(clock=clock)
    seq = pacer.start()
    pacer.record(seq, status=429, headers=headers)
    assert pacer.paused_until == pytest.approx(pause)


def test_a_429_cuts_the_attempts_allowed_out_to_seventy_percent() -> None:
    """Ten out and a 429: seven may be out until successes widen the window again."""
    clock = FakeClock()
    pacer = Pacer(clock=clock)
    seqs = [pacer.start() for _ in range(10)]
    pacer.record(seqs[0], status=429, headers={"retry-after-ms": "10"})
    assert pacer.window == pytest.approx(7)
    clock.advance(0.01)
    assert pacer.delay() == math.inf
    for seq in seqs[1:3]:
        pacer.record(seq, status=None, headers=None)
    assert pacer.in_flight == 7
    assert pacer.delay() == math.inf
    pacer.record(seqs[3], status=200, headers={})
    assert pacer.window == pytest.approx(7 + 1 / 7)
    assert pacer.delay() == 0


def test_the_window_is_cut_once_per_round() -> None:
    """429s of attempts sent before a cut do not cut again; a later attempt's 429 does."""
    clock = FakeClock()
    pacer = Pacer(clock=clock)
    seqs = [pacer.start() for _ in range(10)]
    for seq in seqs:
        pacer.record(seq, status=429, headers={"retry-after-ms": "10"})
    assert pacer.rate_limited == 10
    assert pacer.window == pytest.approx(7)
    later = [start_when_allowed(pacer, clock) for _ in range(7)]
    pacer.record(later[0], status=429, headers={"retry-after-ms": "10"})
    assert pacer.window == pytest.approx(4.9)


def test_successes_widen_the_window_by_one_per_round_trip() -> None:
    """Each success adds ``1 / window``: a whole window of successes adds about one."""
    clock = FakeClock()
    pacer = Pacer(clock=clock)
    seqs = [pacer.start() for _ in range(10)]
    pacer.record(seqs[0], status=429, headers={"retry-after-ms": "10"})
    for seq in seqs[1:]:
        pacer.record(seq, status=None, headers=None)
    clock.advance(0.01)
    for _ in range(7):
        pacer.record(start_when_allowed(pacer, clock), status=200, headers={})
    assert 7.9 < (pacer.window or 0) < 8.0


def test_a_cap_must_be_positive() -> None:
    """A cap of zero or less is refused."""
    with pytest.raises(ValueError, match="requests_per_minute"):
        Pacer(requests_per_minute=0)


header_text = st.one_of(
    st.none(),
    st.text(max_size=12),
    st.integers(min_value=-5, max_value=10**12).map(str),
    st.sampled_from(["0s", "1ms", "6m0s", "1h", "nan", "inf", "-1", "\u00b2", "1e9"]),
)


@given(
    limit=header_text,
    remaining=header_text,
    reset=header_text,
    retry=header_text,
    status=st.sampled_from([None, 200, 429, 500]),
    steps=st.lists(st.floats(min_value=0, max_value=100), max_size=5),
)
def test_any_headers_leave_a_sane_wait(
    limit: str | None,
    remaining: str | None,
    reset: str | None,
    retry: str | None,
    status: int | None,
    steps: list[float],
) -> None:
    """Whatever the headers say, the wait is never negative or NaN, and time shortens it."""
    names = [
        "x-ratelimit-limit-requests",
        "x-ratelimit-remaining-requests",
        "x-ratelimit-reset-requests",
        "retry-after",
    ]
    headers = {
        name: value
        for name, value in zip(names, [limit, remaining, reset, retry], strict=True)
        if value is not None
    }
    clock = FakeClock()
    pacer = Pacer(clock=clock)
    pacer.record(pacer.start(), status=status, headers=headers)
    previous = pacer.delay()
    assert previous >= 0
    assert not math.isnan(previous)
    for step in steps:
        clock.advance(step)
        wait = pacer.delay()
        assert 0 <= wait <= previous
        previous = wait


@pytest.mark.anyio
async def test_attempts_wait_their_turn_and_count_their_retries() -> None:
    """Items queue on the shared limiter in order; each observer counts its attempts."""
    limiter = BatchLimiter(requests_per_minute=60_000)
    order: list[int] = []

    async def item(number: int, failures: int) -> ItemAttempts:
        observer = ItemAttempts(limiter)
        for _ in range(failures):
            await observer.before_attempt()
            observer.after_attempt(status=503, headers={})
        await observer.before_attempt()
        order.append(number)
        observer.after_attempt(status=200, headers=budget(6000, 5000, "10s"))
        return observer

    observers: list[ItemAttempts] = []

    async def run(number: int) -> None:
        observers.append(await item(number, failures=number % 2))

    with anyio.fail_after(5):
        async with anyio.create_task_group() as group:
            for number in range(6):
                group.start_soon(run, number)
    assert sorted(order) == list(range(6))
    assert limiter.pacer.started == 9
    assert sorted(observer.retries for observer in observers) == [0, 0, 0, 1, 1, 1]
