"""The local server's rate limits: token buckets and the API's rate-limit headers (sans-I/O).

Two buckets, as the API keeps them: one counts requests, one counts tokens. The request
bucket holds a full minute's worth (``capacity == requests_per_minute``: a client may burst
that many requests at once) and refills at ``requests_per_minute / 60`` per second. A
request takes one token when it is admitted; a refused request takes nothing. The token
bucket is charged after an image is made, with the answer's ``usage.total_tokens``, and may
go below zero (the API, too, only learns the cost once the work is done); while it holds
less than one token, new requests are refused.

Without a limit the buckets still count, and the headers tell the truth about a large
limit that is never enforced.

The clock is injected, so tests move time by hand instead of sleeping.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import attrs

__all__ = [
    "UNLIMITED_REQUESTS_PER_MINUTE",
    "UNLIMITED_TOKENS_PER_MINUTE",
    "Admission",
    "RateLimiter",
    "TokenBucket",
    "format_duration",
]

Clock = Callable[[], float]

UNLIMITED_REQUESTS_PER_MINUTE = 1_000_000
"""The limit the headers show when no request limit is set."""

UNLIMITED_TOKENS_PER_MINUTE = 100_000_000
"""The limit the headers show when no token limit is set."""


def format_duration(seconds: float) -> str:
    """A duration the way the API's ``x-ratelimit-reset-*`` headers write it, rounded up.

    Example:
        >>> [format_duration(s) for s in (0, 0.02, 1, 8.64, 360, 3725.5)]
        ['0s', '20ms', '1s', '8.64s', '6m0s', '1h2m5.5s']
    """
    if seconds <= 0:
        return "0s"
    # Rounding up: a client that waits exactly this long finds the bucket refilled.
    millis = math.ceil(seconds * 1000)
    if millis < 1000:
        return f"{millis}ms"
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    whole, fraction = divmod(millis, 1000)
    text = f"{whole}.{fraction:03d}".rstrip("0").rstrip(".") + "s"
    if hours or minutes:
        text = f"{minutes}m{text}"
    if hours:
        text = f"{hours}h{text}"
    return text


@attrs.define
class TokenBucket:
    """A bucket of ``capacity`` tokens, refilled continuously at ``per_second``.

    It starts full. ``take`` and ``charge`` are the only ways tokens leave.

    Example:
        >>> now = [0.0]
        >>> bucket = TokenBucket(capacity=2, per_second=1, clock=lambda: now[0])
        >>> bucket.take(1), bucket.take(1), bucket.take(1)
        (True, True, False)
        >>> bucket.wait_time(1)
        1.0
        >>> now[0] = 1.0
        >>> bucket.take(1)
        True
    """

    capacity: float
    per_second: float
    clock: Clock = time.monotonic
    _level: float = attrs.field(init=False)
    _updated: float = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self._level = self.capacity
        self._updated = self.clock()

    def _refill(self) -> None:
        now = self.clock()
        elapsed = max(0.0, now - self._updated)
        self._level = min(self.capacity, self._level + elapsed * self.per_second)
        self._updated = now

    @property
    def level(self) -> float:
        """The tokens in the bucket now (negative after a ``charge`` beyond it)."""
        self._refill()
        return self._level

    def take(self, amount: float) -> bool:
        """Take ``amount`` tokens if the bucket holds them; report whether it did."""
        self._refill()
        if self._level < amount:
            return False
        self._level -= amount
        return True

    def charge(self, amount: float) -> None:
        """Take ``amount`` tokens whatever the level, going below zero if need be."""
        self._refill()
        self._level -= amount

    def wait_time(self, amount: float) -> float:
        """Seconds until the bucket holds ``amount`` tokens (0 if it does now)."""
        missing = amount - self.level
        return max(0.0, missing / self.per_second)

    def time_to_full(self) -> float:
        """Seconds until the bucket is full again."""
        return self.wait_time(self.capacity)


@attrs.frozen(kw_only=True)
class Admission:
    """Whether a request may go ahead, and if not, which limit refused it and for how long.

    Attributes:
        allowed: The request took a slot and may go ahead.
        limit: ``"requests"`` or ``"tokens"``: the limit that refused it (``None`` if allowed).
        retry_after: Seconds until a retry would be admitted (0 if allowed).
    """

    allowed: bool
    limit: str | None = None
    retry_after: float = 0.0


class RateLimiter:
    """The request and token buckets of one server, and the headers that describe them.

    Args:
        requests_per_minute: Enforced request limit; ``None`` for no limit.
        tokens_per_minute: Enforced token limit; ``None`` for no limit.
        clock: Seconds from any fixed point (``time.monotonic`` by default).

    Example:
        >>> limiter = RateLimiter(requests_per_minute=60, clock=lambda: 0.0)
        >>> limiter.admit().allowed
        True
        >>> limiter.headers()["x-ratelimit-remaining-requests"]
        '59'
    """

    def __init__(
        self,
        *,
        requests_per_minute: int | None = None,
        tokens_per_minute: int | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        for name, value in (
            ("requests_per_minute", requests_per_minute),
            ("tokens_per_minute", tokens_per_minute),
        ):
            if value is not None and value < 1:
                raise ValueError(f"{name} must be at least 1, got {value}")
        self._enforce_requests = requests_per_minute is not None
        self._enforce_tokens = tokens_per_minute is not None
        rpm = requests_per_minute or UNLIMITED_REQUESTS_PER_MINUTE
        tpm = tokens_per_minute or UNLIMITED_TOKENS_PER_MINUTE
        self.requests = TokenBucket(capacity=rpm, per_second=rpm / 60, clock=clock)
        self.tokens = TokenBucket(capacity=tpm, per_second=tpm / 60, clock=clock)

    def admit(self) -> Admission:
        """Take a request slot if both limits allow one."""
        if self._enforce_tokens and self.tokens.level < 1:
            # One token admits: the real cost is only known once the image is made.
            wait = self.tokens.wait_time(1)
            return Admission(allowed=False, limit="tokens", retry_after=wait)
        if self.requests.take(1):
            return Admission(allowed=True)
        if not self._enforce_requests:
            # Never refuse without a limit; the count goes on so the headers stay truthful.
            self.requests.charge(1)
            return Admission(allowed=True)
        return Admission(allowed=False, limit="requests", retry_after=self.requests.wait_time(1))

    def charge_tokens(self, tokens: int) -> None:
        """Count the tokens a finished request used against the token limit."""
        self.tokens.charge(tokens)

    def headers(self) -> dict[str, str]:
        """The six ``x-ratelimit-*`` headers as things stand now."""
        return {
            "x-ratelimit-limit-requests": str(int(self.requests.capacity)),
            "x-ratelimit-remaining-requests": str(max(0, math.floor(self.requests.level))),
            "x-ratelimit-reset-requests": format_duration(self.requests.time_to_full()),
            "x-ratelimit-limit-tokens": str(int(self.tokens.capacity)),
            "x-ratelimit-remaining-tokens": str(max(0, math.floor(self.tokens.level))),
            "x-ratelimit-reset-tokens": format_duration(self.tokens.time_to_full()),
        }
