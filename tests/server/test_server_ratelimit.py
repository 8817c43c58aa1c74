"""Rate limits: the token buckets, their headers, and the server's 429s."""

from __future__ import annotations

import aiohttp
import pytest
from hypothesis import given
from hypothesis import strategies as st

from openai_images.testing import Fault, LocalImagesServer
from openai_images.testing._ratelimit import (
    UNLIMITED_REQUESTS_PER_MINUTE,
    RateLimiter,
    TokenBucket,
    format_duration,
)

from ._support import assert_error


class FakeClock:
    """A clock tests move by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (-1, "0s"),
        (0.0001, "1ms"),
        (0.02, "20ms"),
        (0.999, "999ms"),
        (1, "1s"),
        (8.64, "8.64s"),
        (59.9999, "1m0s"),
        (360, "6m0s"),
        (3725.5, "1h2m5.5s"),
    ],
)
def test_durations_read_like_the_api_headers(seconds: float, text: str) -> None:
    """Durations use the API's units and round up to the millisecond."""
    assert format_duration(seconds) == text


@given(st.floats(min_value=0.001, max_value=100_000))
def test_durations_never_promise_less_than_the_wait(seconds: float) -> None:
    """Reading a formatted duration back gives at least the original wait."""
    text = format_duration(seconds)
    total = 0.0
    rest = text
    for unit, scale in (("h", 3600.0), ("m", 60.0)):
        if unit in rest and not rest.endswith("ms"):
            head, rest = rest.split(unit, 1)
            total += float(head) * scale
    total += float(rest[:-2]) / 1000 if rest.endswith("ms") else float(rest[:-1])
    assert total >= seconds - 1e-9


def test_a_bucket_refills_continuously_up_to_its_capacity() -> None:
    """Tokens come back at the refill rate and never beyond the capacity."""
    clock = FakeClock()
    bucket = TokenBucket(capacity=3, per_second=0.5, clock=clock)
    assert [bucket.take(1) for _ in range(4)] == [True, True, True, False]
    assert bucket.wait_time(1) == 2.0
    clock.now += 1
    assert bucket.level == 0.5
    clock.now += 100
    assert bucket.level == 3
    assert bucket.time_to_full() == 0


def test_a_limiter_refuses_when_empty_and_reports_the_wait() -> None:
    """Over the limit, admit says which limit and how long until a retry succeeds (here
    with refusals free, so the wait is the plain refill)."""
    clock = FakeClock()
    limiter = RateLimiter(requests_per_minute=2, count_refused=False, clock=clock)
    assert limiter.admit().allowed
    assert limiter.headers()["x-ratelimit-remaining-requests"] == "1"
    assert limiter.admit().allowed
    refused = limiter.admit()
    assert (refused.allowed, refused.limit, refused.retry_after) == (False, "requests", 30.0)
    assert limiter.headers()["x-ratelimit-reset-requests"] == "1m0s"
    clock.now += 30
    assert limiter.admit().allowed


def test_a_token_limit_refuses_after_a_costly_answer() -> None:
    """Tokens are charged after the fact; below one token, requests wait for the refill."""
    clock = FakeClock()
    limiter = RateLimiter(tokens_per_minute=600, clock=clock)
    assert limiter.admit().allowed
    limiter.charge_tokens(900)
    refused = limiter.admit()
    assert (refused.allowed, refused.limit) == (False, "tokens")
    assert refused.retry_after == pytest.approx(30.1)
    assert limiter.headers()["x-ratelimit-remaining-tokens"] == "0"


def test_without_limits_nothing_is_refused_and_headers_stay_truthful() -> None:
    """The unlimited limiter admits everything while still counting."""
    limiter = RateLimiter(clock=FakeClock())
    assert all(limiter.admit().allowed for _ in range(100))
    headers = limiter.headers()
    assert headers["x-ratelimit-limit-requests"] == str(UNLIMITED_REQUESTS_PER_MINUTE)
    assert headers["x-ratelimit-remaining-requests"] == str(UNLIMITED_REQUESTS_PER_MINUTE - 100)


def test_limits_must_be_positive() -> None:
    """A zero limit is a mistake, not "no limit"."""
    with pytest.raises(ValueError, match="requests_per_minute"):
        RateLimiter(requests_per_minute=0)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("count_refused", "wait", "reset"), [(True, 60, "1m30s"), (False, 30, "1m0s")]
)
async def test_the_server_answers_429_with_retry_hints(
    http: aiohttp.ClientSession, count_refused: bool, wait: int, reset: str
) -> None:
    """Over the limit: 429 rate_limit_exceeded with retry-after(-ms); after the wait, served.
    By default the 429 itself counts, as at the API, so the wait covers it too."""
    clock = FakeClock()
    async with LocalImagesServer(
        requests_per_minute=2, count_refused=count_refused, clock=clock
    ) as server:
        url = f"{server.base_url}/images/generations"
        remaining = []
        for _ in range(2):
            # A refused request (no prompt) still takes a slot, and renders nothing.
            async with http.post(url, json={}) as response:
                assert response.status == 400
                remaining.append(response.headers["x-ratelimit-remaining-requests"])
                assert response.headers["x-ratelimit-limit-requests"] == "2"
        assert remaining == ["1", "0"]
        async with http.post(url, json={}) as response:
            assert response.status == 429
            body = await response.json()
            assert response.headers["retry-after"] == str(wait)
            assert response.headers["retry-after-ms"] == str(wait * 1000)
            assert response.headers["x-ratelimit-reset-requests"] == reset
        assert_error(body, param=None, code="rate_limit_exceeded")
        assert body["error"]["type"] == "requests"
        clock.now += wait
        async with http.post(url, json={}) as response:
            assert response.status == 400
        assert [r.status for r in server.requests] == [400, 400, 429, 400]


@pytest.mark.anyio
async def test_the_server_charges_tokens_from_usage(http: aiohttp.ClientSession) -> None:
    """A token limit below one answer's usage refuses the next request."""
    clock = FakeClock()
    async with LocalImagesServer(tokens_per_minute=100, clock=clock) as server:
        url = f"{server.base_url}/images/generations"
        body = {"prompt": "fox", "model": "gpt-image-1.5", "quality": "low"}
        async with http.post(url, json=body) as response:
            assert response.status == 200
            usage = (await response.json())["usage"]
            assert response.headers["x-ratelimit-remaining-tokens"] == "0"
        async with http.post(url, json=body) as response:
            assert response.status == 429
            assert (await response.json())["error"]["type"] == "tokens"
            wait = (usage["total_tokens"] - 100 + 1) * 60 / 100
            assert int(response.headers["retry-after-ms"]) == pytest.approx(wait * 1000, abs=1)


def test_a_burst_is_a_smaller_bucket_and_the_headers_describe_it() -> None:
    """``burst=2`` at 60 a minute: two at once, then one a second; the headers' limit is
    the burst, so ``(limit - remaining) / reset`` is the refill."""
    clock = FakeClock()
    limiter = RateLimiter(requests_per_minute=60, burst=2, count_refused=False, clock=clock)
    assert [limiter.admit().allowed for _ in range(3)] == [True, True, False]
    headers = limiter.headers()
    assert headers["x-ratelimit-limit-requests"] == "2"
    assert headers["x-ratelimit-reset-requests"] == "2s"
    clock.now += 1
    assert limiter.admit().allowed


def test_quantized_limits_refuse_within_a_slice_while_the_headers_show_room() -> None:
    """1,200 a minute over one-second slices: 20 a slice, though the minute has room."""
    clock = FakeClock()
    limiter = RateLimiter(
        requests_per_minute=1200, slice_seconds=1.0, count_refused=False, clock=clock
    )
    assert all(limiter.admit().allowed for _ in range(20))
    refused = limiter.admit()
    assert (refused.allowed, refused.limit) == (False, "requests")
    assert refused.retry_after == pytest.approx(1.0)
    assert int(limiter.headers()["x-ratelimit-remaining-requests"]) == 1180
    clock.now += 1
    assert limiter.admit().allowed


def test_refused_requests_count_against_the_limit_as_at_the_api() -> None:
    """By default a 429 takes a request too: the bucket goes below zero (by at most its
    capacity), each refusal's wait covers the refusals so far, and a client asking more
    often than the refill never gets in, while one that waits the hint does."""
    clock = FakeClock()
    limiter = RateLimiter(requests_per_minute=60, burst=2, clock=clock)
    assert [limiter.admit().allowed for _ in range(2)] == [True, True]
    waits = [limiter.admit().retry_after for _ in range(4)]
    assert waits == [2.0, 3.0, 3.0, 3.0]  # the debt stops at one bucket (2) below zero
    assert limiter.headers()["x-ratelimit-remaining-requests"] == "0"
    assert limiter.headers()["x-ratelimit-reset-requests"] == "4s"
    for _ in range(10):  # a storm faster than the refill eats what comes back
        clock.now += 0.5
        assert not limiter.admit().allowed
    refused = limiter.admit()
    clock.now += refused.retry_after
    assert limiter.admit().allowed


def test_refusals_count_in_the_slice_and_the_minute_and_for_tokens() -> None:
    """Quantized, a refusal counts in the per-minute bucket (the headers show it) and in
    its slice; a refusal for want of tokens takes a request as well."""
    clock = FakeClock()
    limiter = RateLimiter(requests_per_minute=1200, slice_seconds=1.0, clock=clock)
    assert all(limiter.admit().allowed for _ in range(20))
    assert not any(limiter.admit().allowed for _ in range(5))
    assert limiter.headers()["x-ratelimit-remaining-requests"] == "1175"
    clock.now += 1
    assert limiter.admit().allowed

    limiter = RateLimiter(requests_per_minute=60, tokens_per_minute=600, clock=clock)
    assert limiter.admit().allowed
    limiter.charge_tokens(900)
    assert limiter.admit().limit == "tokens"
    assert limiter.headers()["x-ratelimit-remaining-requests"] == "58"


@given(
    steps=st.lists(st.floats(min_value=0, max_value=3), max_size=60),
    burst=st.integers(min_value=1, max_value=5),
    sliced=st.booleans(),
)
def test_counting_refusals_never_admits_more(steps: list[float], burst: int, sliced: bool) -> None:
    """For any arrivals, a limiter that counts refusals admits only requests the free one
    admits too, and its bucket never owes more than its capacity."""
    clock = FakeClock()
    counting, free = (
        RateLimiter(
            requests_per_minute=60,
            burst=burst,
            slice_seconds=1.0 if sliced else None,
            count_refused=count_refused,
            clock=clock,
        )
        for count_refused in (True, False)
    )
    for step in steps:
        clock.now += step
        if counting.admit().allowed:
            assert free.admit().allowed
        else:
            free.admit()
        assert counting.requests.level >= -burst - 1e-9


def test_images_are_counted_by_n_with_their_own_headers() -> None:
    """An images-per-minute limit takes ``n`` per request and has ``-images`` headers."""
    clock = FakeClock()
    limiter = RateLimiter(images_per_minute=10, clock=clock)
    assert limiter.admit_images(4).allowed
    assert limiter.admit_images(4).allowed
    refused = limiter.admit_images(4)
    assert (refused.allowed, refused.limit) == (False, "images")
    assert refused.retry_after == pytest.approx(12.0)
    headers = limiter.headers()
    assert (headers["x-ratelimit-limit-images"], headers["x-ratelimit-remaining-images"]) == (
        "10",
        "2",
    )
    assert "x-ratelimit-limit-images" not in RateLimiter(clock=clock).headers()


@pytest.mark.anyio
async def test_the_server_refuses_images_beyond_its_limit(http: aiohttp.ClientSession) -> None:
    """A request for more images than are left is a 429 of type ``images``."""
    clock = FakeClock()
    async with LocalImagesServer(images_per_minute=3, clock=clock) as server:
        url = f"{server.base_url}/images/generations"
        body = {"prompt": "fox", "model": "gpt-image-1-mini", "quality": "low", "n": 2}
        async with http.post(url, json=body) as response:
            assert response.status == 200
            assert response.headers["x-ratelimit-remaining-images"] == "1"
        async with http.post(url, json=body) as response:
            assert response.status == 429
            error = (await response.json())["error"]
        assert (error["type"], error["code"]) == ("images", "rate_limit_exceeded")
        assert "(IPM): Limit 3" in error["message"]


@pytest.mark.anyio
@pytest.mark.parametrize("code", [None, "organization_spend_limit_exceeded"])
async def test_a_quota_fault_is_an_out_of_money_429(
    http: aiohttp.ClientSession, code: str | None
) -> None:
    """``kind="quota"``: 429, ``type: insufficient_quota``, the code given (or the usual)."""
    async with LocalImagesServer() as server:
        server.inject(Fault(kind="quota", code=code))
        url = f"{server.base_url}/images/generations"
        async with http.post(url, json={"prompt": "fox"}) as response:
            assert response.status == 429
            error = (await response.json())["error"]
    assert error["type"] == "insufficient_quota"
    assert error["code"] == (code or "insufficient_quota")


@pytest.mark.anyio
async def test_a_moderation_fault_blocks_only_the_prompts_named(
    http: aiohttp.ClientSession,
) -> None:
    """``kind="moderation"`` answers its prompts with the API's block, details included."""
    async with LocalImagesServer() as server:
        server.inject(Fault(kind="moderation", prompts=["a bad fox"], categories=["violence"]))
        url = f"{server.base_url}/images/generations"
        body = {"model": "gpt-image-1-mini", "quality": "low"}
        async with http.post(url, json={**body, "prompt": "a good fox"}) as response:
            assert response.status == 200
        async with http.post(url, json={**body, "prompt": "a bad fox"}) as response:
            assert response.status == 400
            error = (await response.json())["error"]
        async with http.post(url, json={**body, "prompt": "a bad fox"}) as response:
            assert response.status == 200
    assert (error["type"], error["code"]) == ("image_generation_user_error", "moderation_blocked")
    assert error["moderation_details"] == {"moderation_stage": "input", "categories": ["violence"]}


def test_a_moderation_fault_takes_a_list_of_prompts_not_one_string() -> None:
    """One string would be read as its letters; it is refused."""
    with pytest.raises(TypeError, match="list of strings"):
        Fault(kind="moderation", prompts="a bad fox")  # type: ignore[arg-type]  # on purpose
