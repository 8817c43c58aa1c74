"""The batch's shared limiter: caps, server budgets, the first wave, the accepted rate,
pauses, patience and stops, on a fake clock."""

from __future__ import annotations

import itertools
import math

import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st

from openai_images import InsufficientQuotaError, ModerationBlockedError, RateLimitError
from openai_images._ratelimit import BatchLimiter, BatchStopped, ItemAttempts, Pacer


class FakeClock:
    """A clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def budget(limit: int, remaining: int, reset: str, resource: str = "requests") -> dict[str, str]:
    """The three rate-limit headers of ``resource``."""
    return {
        f"x-ratelimit-limit-{resource}": str(limit),
        f"x-ratelimit-remaining-{resource}": str(remaining),
        f"x-ratelimit-reset-{resource}": reset,
    }


def heard(pacer: Pacer) -> None:
    """Let the pacer hear from a server with room to spare (ending its first wave)."""
    pacer.record(pacer.start(), status=200, headers=budget(10**6, 10**6 - 1, "1ms"))


def refusal(kind: str = "requests", headers: dict[str, str] | None = None) -> RateLimitError:
    """A 429 as the client raises it."""
    body = {"error": {"message": "Rate limit reached", "type": kind}}
    return RateLimitError(
        "Rate limit reached", status_code=429, type=kind, body=body, headers=headers or {}
    )


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


def test_once_heard_without_limits_attempts_go_at_once() -> None:
    """A server with room to spare holds nothing back once it has said so."""
    clock = FakeClock()
    pacer = Pacer(clock=clock)
    heard(pacer)
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


def test_a_cap_must_be_positive() -> None:
    """A cap of zero or less is refused."""
    with pytest.raises(ValueError, match="requests_per_minute"):
        Pacer(requests_per_minute=0)


def test_the_first_wave_ramps_until_the_server_speaks() -> None:
    """Four out at once, doubling every 0.1 s (and one more per success) until heard."""
    clock = FakeClock()
    pacer = Pacer(clock=clock)
    seqs = [pacer.start() for _ in range(4)]
    assert pacer.binding() == "first_wave"
    assert pacer.delay() == pytest.approx(0.1 * math.log2(5 / 4))
    clock.advance(0.1)
    assert pacer.delay() == 0
    seqs += [pacer.start() for _ in range(4)]
    assert pacer.delay() > 0
    pacer.record(seqs[0], status=200, headers={})
    assert pacer.delay() == 0, "a success without headers widens the wave by one"
    seqs.append(pacer.start())
    clock.advance(0.8)
    assert pacer.delay() == 0
    assert not pacer.heard
    pacer.record(seqs[1], status=200, headers=budget(10_000, 9_000, "6s"))
    assert pacer.heard
    for _ in range(100):
        assert pacer.delay() == 0
        pacer.start()


def test_a_refusal_ends_the_first_wave() -> None:
    """A 429 is news: from then on the pause and the accepted rate pace the batch."""
    clock = FakeClock()
    pacer = Pacer(clock=clock)
    seqs = [pacer.start() for _ in range(4)]
    clock.advance(0.5)
    for seq in seqs[1:]:
        pacer.record(seq, status=429, headers={"retry-after-ms": "1000"})
    assert pacer.heard
    assert pacer.binding() == "server_requests"
    clock.advance(1.0)
    # One accepted in the half second the batch had run: 90% of two a second.
    assert pacer.rate == pytest.approx(1.8)
    pacer.start()
    # The start used the rate as soon as it allowed, so the rate grows a little.
    assert pacer.delay() == pytest.approx(1 / 1.82)


def run_against_slices(pacer: Pacer, clock: FakeClock, *, allowance: int, seconds: float) -> int:
    """Start attempts whenever the pacer allows, against a server that admits ``allowance``
    a second in one-second slices and answers at once; return the 429s."""
    refused = 0
    used: dict[int, int] = {}
    end = clock.now + seconds
    while clock.now < end:
        wait = pacer.delay()
        clock.advance(max(wait, 1e-3))
        if pacer.delay() > 0:
            continue
        seq = pacer.start()
        slot = math.floor(clock.now)
        if used.get(slot, 0) < allowance:
            used[slot] = used.get(slot, 0) + 1
            pacer.record(seq, status=200, headers=budget(60 * allowance, 59 * allowance, "1s"))
        else:
            refused += 1
            retry = math.ceil((slot + 1 - clock.now) * 1000)
            pacer.record(seq, status=429, headers={"retry-after-ms": str(retry)})
    return refused


def test_headers_that_claim_room_are_outweighed_by_429s() -> None:
    """Per-minute headers with room to spare, a per-second slice enforced: the batch settles
    near the enforced rate with few 429s."""
    clock = FakeClock()
    pacer = Pacer(clock=clock)
    run_against_slices(pacer, clock, allowance=20, seconds=10)
    started = pacer.started
    refused = run_against_slices(pacer, clock, allowance=20, seconds=30)
    assert 0.9 * 20 * 30 <= pacer.started - started <= 20 * 30 + 20
    assert refused < 0.05 * (pacer.started - started)


def test_a_429_paces_by_ninety_percent_of_the_accepted_rate() -> None:
    """Forty starts in a second of which twenty were refused: 18 a second from then on."""
    clock = FakeClock()
    pacer = Pacer(clock=clock)
    heard(pacer)
    seqs = []
    for _ in range(40):
        clock.advance(1 / 40)
        seqs.append(pacer.start())
    for seq in seqs[:20]:
        pacer.record(seq, status=200, headers={})
    for seq in seqs[20:]:
        pacer.record(seq, status=429, headers={"retry-after-ms": "100"})
    clock.advance(0.1)
    assert pacer.rate == pytest.approx(0.9 * 20)
    pacer.start()
    assert pacer.delay() == pytest.approx(1 / pacer.rate, rel=0.01)


def test_the_rate_is_cut_once_per_round() -> None:
    """429s of attempts sent before a cut do not cut again; a later attempt's 429 does."""
    clock = FakeClock()
    pacer = Pacer(clock=clock)
    heard(pacer)
    early = [pacer.start() for _ in range(10)]
    pacer.record(early[0], status=429, headers={"retry-after-ms": "10"})
    clock.advance(0.01)
    first = pacer.rate
    assert first is not None
    for seq in early[1:]:
        pacer.record(seq, status=429, headers={"retry-after-ms": "10"})
    clock.advance(0.01)
    assert pacer.rate == first
    later = start_when_allowed(pacer, clock)
    pacer.record(later, status=429, headers={"retry-after-ms": "10"})
    clock.advance(0.01)
    assert pacer.rate != first


def test_the_rate_probes_upward_two_percent_a_second_while_it_binds() -> None:
    """Started as fast as allowed, the rate grows by about 2% a second; unused, it stays."""
    clock = FakeClock()
    pacer = Pacer(clock=clock)
    accepted, refused = pacer.start(), pacer.start()
    clock.advance(0.5)
    pacer.record(accepted, status=200, headers={})
    pacer.record(refused, status=429, headers={"retry-after-ms": "500"})
    clock.advance(0.5)
    begin = pacer.rate
    assert begin == pytest.approx(0.9 * 1 / 0.5)
    for _ in range(30):
        pacer.record(start_when_allowed(pacer, clock), status=200, headers={})
    grown = pacer.rate
    assert grown is not None
    assert 1.015**clock.now < grown / begin < 1.025**clock.now
    clock.advance(100)
    pacer.record(pacer.start(), status=200, headers={})
    assert pacer.rate == pytest.approx(grown)


def test_images_count_against_the_cap_and_the_servers_image_budget() -> None:
    """``n=4`` at 240 images a minute: a start a second; the image headers count ``n``."""
    clock = FakeClock()
    pacer = Pacer(images_per_minute=240, clock=clock)
    pacer.record(pacer.start(images=4), status=200, headers=budget(400, 396, "1s", "images"))
    assert pacer.budget("images") == 396
    assert pacer.delay(images=4) == pytest.approx(1.0)
    assert pacer.binding(images=4) == "images_per_minute"
    clock.advance(1.0)
    first = pacer.start(images=4)
    pacer.start(images=4)
    pacer.record(first, status=200, headers=budget(400, 392, "2s", "images"))
    assert pacer.budget("images") == 388


def test_tokens_headers_are_read_like_requests_and_count_what_is_still_out() -> None:
    """The token budget subtracts the expected cost of the attempts still out, and waits
    for an attempt's expected cost to refill."""
    clock = FakeClock()
    pacer = Pacer(clock=clock)
    heard(pacer)
    pacer.learn_tokens(400, images=2, estimated=0)
    assert pacer.tokens_estimate(1) == 200
    first = pacer.start()
    pacer.start()
    pacer.start()
    pacer.record(first, status=200, headers=budget(6000, 700, "53s", "tokens"))
    # 700 left less the 400 the two still out will cost; 100 a second come back.
    assert pacer.budget("tokens") == pytest.approx(300)
    pacer.start()
    assert pacer.binding() == "server_tokens"
    assert pacer.delay() == pytest.approx(1.0)


def test_a_token_cap_is_corrected_by_the_usage_reported() -> None:
    """Before any usage a start costs nothing; a reported 600 tokens at 600 a minute waits
    a minute, less what the estimate had already charged."""
    clock = FakeClock()
    pacer = Pacer(tokens_per_minute=600, clock=clock)
    heard(pacer)
    pacer.learn_tokens(600, images=1, estimated=0)
    assert pacer.delay() == pytest.approx(60.0)
    clock.advance(60)
    pacer.start()
    assert pacer.delay() == pytest.approx(60.0)
    pacer.learn_tokens(300, images=1, estimated=600)
    assert pacer.delay() == pytest.approx(30.0)
    assert pacer.binding() == "tokens_per_minute"


def test_patience_runs_from_the_last_answer_that_was_not_a_429() -> None:
    """Nothing but 429s for ``patience`` seconds is when items give up; an answer resets it."""
    clock = FakeClock()
    pacer = Pacer(patience=30, clock=clock)
    first = pacer.start()
    assert pacer.gives_up_at() is None
    clock.advance(1)
    pacer.record(first, status=200, headers={})
    clock.advance(1)
    pacer.record(pacer.start(), status=429, headers={})
    assert pacer.gives_up_at() == pytest.approx(31)
    clock.advance(5)
    pacer.record(pacer.start(), status=400, headers={})
    assert pacer.gives_up_at() is None


@pytest.mark.parametrize(
    ("name", "value"),
    [("images_per_minute", 0), ("tokens_per_minute", -1), ("patience", math.inf)],
)
def test_limits_must_be_positive_numbers(name: str, value: float) -> None:
    """Zero, negative or endless limits are refused."""
    with pytest.raises(ValueError, match=name):
        Pacer(**{name: value})


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


@pytest.mark.anyio
async def test_a_rate_429_is_absorbed_and_an_item_gives_up_with_its_own_when_patience_ends() -> (
    None
):
    """The limiter takes charge of a 429 (``True``: no retry spent); after ``patience`` of
    nothing but 429s, the batch stops and the item raises its own last 429."""
    clock = FakeClock()
    limiter = BatchLimiter(patience=10, clock=clock)
    item = ItemAttempts(limiter)
    await item.before_attempt()
    error = refusal(headers={"retry-after-ms": "1"})
    assert item.after_attempt(status=429, headers=error.headers, error=error) is True
    clock.advance(11)
    with pytest.raises(RateLimitError) as raised:
        await item.before_attempt()
    assert raised.value is error
    assert limiter.stopped_by is error
    other = ItemAttempts(limiter)
    with pytest.raises(RateLimitError) as copied:
        await other.before_attempt()
    assert copied.value is not error
    assert (copied.value.status_code, copied.value.type) == (429, "requests")


@pytest.mark.anyio
async def test_an_out_of_money_429_stops_the_batch_and_is_not_absorbed() -> None:
    """``InsufficientQuotaError`` is the item's failure and stops every later attempt."""
    limiter = BatchLimiter(clock=FakeClock())
    item = ItemAttempts(limiter)
    await item.before_attempt()
    broke = InsufficientQuotaError(
        "no credits", status_code=429, type="insufficient_quota", code="insufficient_quota"
    )
    assert item.after_attempt(status=429, headers={}, error=broke) is False
    assert limiter.stopped_by is broke
    with pytest.raises(BatchStopped):
        await limiter.acquire()
    with pytest.raises(InsufficientQuotaError) as raised:
        await ItemAttempts(limiter).before_attempt()
    assert raised.value.code == "insufficient_quota"


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("status", "error", "headers"),
    [
        (
            400,
            ModerationBlockedError("blocked", status_code=400, code="moderation_blocked"),
            {},
        ),
        (429, refusal(), {"x-should-retry": "false"}),
        (None, None, None),
    ],
)
async def test_other_outcomes_are_left_to_the_client(
    status: int | None, error: Exception | None, headers: dict[str, str] | None
) -> None:
    """A moderation block, a 429 the server says not to retry, a lost connection: the
    limiter does not take charge, and the batch goes on."""
    limiter = BatchLimiter(clock=FakeClock())
    item = ItemAttempts(limiter)
    await item.before_attempt()
    assert item.after_attempt(status=status, headers=headers, error=error) is False
    assert limiter.stopped_by is None


@pytest.mark.anyio
async def test_the_limit_waited_on_longest_is_the_one_that_bound() -> None:
    """The waits are counted by the limit behind them."""
    limiter = BatchLimiter(requests_per_minute=6000)
    pacer = limiter.pacer
    pacer.record(pacer.start(), status=200, headers=budget(10**6, 10**6 - 1, "1ms"))
    with anyio.fail_after(5):
        for _ in range(5):
            await limiter.acquire()
    assert limiter.bound_by() == "requests_per_minute"
    assert limiter.waited["requests_per_minute"] > 0


def test_a_window_of_nothing_but_429s_sets_no_rate_and_old_starts_are_forgotten() -> None:
    """Everything refused says only that the pause was needed; a long batch keeps only the
    last seconds of starts for measuring."""
    clock = FakeClock()
    pacer = Pacer(clock=clock)
    heard(pacer)
    for _ in range(2000):
        clock.advance(0.05)
        pacer.record(pacer.start(), status=200, headers={})
    assert len(pacer._recent) <= 2 / 0.05 + 1  # the memory bound itself
    clock.advance(5)
    refused = [pacer.start() for _ in range(3)]
    for seq in refused:
        pacer.record(seq, status=429, headers={"retry-after-ms": "10"})
    clock.advance(0.01)
    assert pacer.rate is None
