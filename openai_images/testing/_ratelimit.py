"""The local server's rate limits: token buckets and the API's rate-limit headers (sans-I/O).

Buckets, as the API keeps them: one counts requests, one tokens and, with an
``images_per_minute`` limit, one counts images. The request bucket holds a full minute's
worth (``capacity == requests_per_minute``: a client may burst that many requests at once)
unless ``burst`` sets a smaller one, and refills at ``requests_per_minute / 60`` per second.
A request takes one request when it is admitted, and ``n`` images once its body is read.
A refused request takes one request too, as the API counts it (``count_refused``, on by
default): a storm of 429s eats the budget it waits for. The request bucket may then go
below zero, by at most its capacity (the API forgets a refusal once its minute is over),
and a refusal's ``retry_after`` counts the refusal itself. The token bucket is charged
after an image is made, with the answer's ``usage.total_tokens``, and may go below zero
(the API, too, only learns the cost once the work is done); while it holds less than one
token, new requests are refused.

With ``slice_seconds`` the limits are quantized, as the API may enforce them: 60,000 a
minute becomes at most 1,000 in each one-second slice, 60 a minute one a second. The
headers still describe the per-minute buckets, so they can show room the server refuses.

Without a limit the buckets still count, and the headers tell the truth about a large
limit that is never enforced. The headers describe each bucket as it is: with ``burst``,
``x-ratelimit-limit-requests`` is the burst, so that ``(limit - remaining) / reset`` is
the refill.

The clock is injected, so tests move time by hand instead of sleeping.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import attrs

__all__ = [
    "LIMITED_RESOURCES",
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

LIMITED_RESOURCES = ("requests", "images", "tokens")
"""What a limit counts; a 429's ``error.type`` names the one that refused."""


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


@attrs.define
class Slices:
    """At most ``allowance`` per slice of ``seconds``, slices aligned on the clock's zero.

    Example:
        >>> now = [0.25]
        >>> slices = Slices(seconds=1.0, allowance=2, clock=lambda: now[0])
        >>> slices.take(1), slices.take(1), slices.take(1), slices.wait_time()
        (True, True, False, 0.75)
    """

    seconds: float
    allowance: float
    clock: Clock = time.monotonic
    _index: int = attrs.field(init=False, default=-1)
    _used: float = attrs.field(init=False, default=0.0)

    def _roll(self) -> None:
        index = math.floor(self.clock() / self.seconds)
        if index != self._index:
            self._index, self._used = index, 0.0

    def fits(self, amount: float) -> bool:
        """Whether ``amount`` more fit in the current slice."""
        self._roll()
        return self._used + amount <= self.allowance

    def take(self, amount: float) -> bool:
        """Count ``amount`` in this slice if it fits; report whether it did."""
        if not self.fits(amount):
            return False
        self._used += amount
        return True

    def charge(self, amount: float) -> None:
        """Count ``amount`` in this slice whether it fits or not."""
        self._roll()
        self._used += amount

    def wait_time(self) -> float:
        """Seconds until the next slice begins."""
        return (math.floor(self.clock() / self.seconds) + 1) * self.seconds - self.clock()


@attrs.frozen(kw_only=True)
class Admission:
    """Whether a request may go ahead, and if not, which limit refused it and for how long.

    Attributes:
        allowed: The request took a slot and may go ahead.
        limit: ``"requests"``, ``"images"`` or ``"tokens"``: the limit that refused it
            (``None`` if allowed).
        retry_after: Seconds until a retry would be admitted (0 if allowed).
    """

    allowed: bool
    limit: str | None = None
    retry_after: float = 0.0


@attrs.define
class _Limit:
    """One enforced limit: its per-minute bucket, and its slices when quantized."""

    bucket: TokenBucket
    enforced: bool
    slices: Slices | None
    count_refused: bool = False

    def take(self, amount: float) -> float:
        """Take ``amount`` and return 0, or return the seconds until it would fit."""
        if not self.enforced:
            # Never refuse without a limit; the count goes on so the headers stay truthful.
            self.bucket.charge(amount)
            return 0.0
        if (self.slices is None or self.slices.fits(amount)) and self.bucket.take(amount):
            if self.slices is not None:
                self.slices.take(amount)
            return 0.0
        if self.count_refused:
            self.count(amount)
        wait = self.bucket.wait_time(amount)
        if self.slices is not None and not self.slices.fits(amount):
            wait = max(wait, self.slices.wait_time())
        return max(wait, 1e-3)

    def count(self, amount: float) -> None:
        """Count ``amount`` that was refused: the bucket goes down to at most one capacity
        below zero, and the current slice fills up."""
        bucket = self.bucket
        bucket.charge(min(amount, bucket.level + bucket.capacity))
        if self.slices is not None:
            self.slices.charge(amount)

    def headers(self, resource: str) -> dict[str, str]:
        bucket = self.bucket
        return {
            f"x-ratelimit-limit-{resource}": str(int(bucket.capacity)),
            f"x-ratelimit-remaining-{resource}": str(max(0, math.floor(bucket.level))),
            f"x-ratelimit-reset-{resource}": format_duration(bucket.time_to_full()),
        }


class RateLimiter:
    """The request, image and token buckets of one server, and the headers that describe them.

    Args:
        requests_per_minute: Enforced request limit; ``None`` for no limit.
        tokens_per_minute: Enforced token limit; ``None`` for no limit.
        images_per_minute: Enforced image limit (each request counts its ``n``); ``None``
            for none (and no ``-images`` headers).
        burst: The request bucket's capacity, if smaller than a minute's worth.
        slice_seconds: Enforce the per-minute limits over slices this long (quantized).
        count_refused: Count a refused request against the request limit, as the API does
            (``True``, the default); ``False`` lets a client retry as often as it likes
            for free.
        clock: Seconds from any fixed point (``time.monotonic`` by default).

    Example:
        >>> limiter = RateLimiter(requests_per_minute=60, burst=1, clock=lambda: 0.0)
        >>> limiter.admit().allowed
        True
        >>> limiter.headers()["x-ratelimit-remaining-requests"]
        '0'
        >>> refused = limiter.admit()  # counted: one second of refill is owed
        >>> refused.allowed, refused.retry_after
        (False, 2.0)
    """

    def __init__(
        self,
        *,
        requests_per_minute: int | None = None,
        tokens_per_minute: int | None = None,
        images_per_minute: int | None = None,
        burst: int | None = None,
        slice_seconds: float | None = None,
        count_refused: bool = True,
        clock: Clock = time.monotonic,
    ) -> None:
        for name, value in (
            ("requests_per_minute", requests_per_minute),
            ("tokens_per_minute", tokens_per_minute),
            ("images_per_minute", images_per_minute),
            ("burst", burst),
        ):
            if value is not None and value < 1:
                raise ValueError(f"{name} must be at least 1, got {value}")
        if slice_seconds is not None and not 0 < slice_seconds <= 60:
            raise ValueError(f"slice_seconds must be above 0 and at most 60, got {slice_seconds}")
        self._enforce_tokens = tokens_per_minute is not None

        def limit(per_minute: int | None, unlimited: int, capacity: int | None) -> _Limit:
            rate = per_minute or unlimited
            slices = None
            if per_minute is not None and slice_seconds is not None:
                allowance = max(1.0, per_minute * slice_seconds / 60)
                slices = Slices(seconds=slice_seconds, allowance=allowance, clock=clock)
            bucket = TokenBucket(capacity=capacity or rate, per_second=rate / 60, clock=clock)
            return _Limit(bucket=bucket, enforced=per_minute is not None, slices=slices)

        self._requests = limit(
            requests_per_minute,
            UNLIMITED_REQUESTS_PER_MINUTE,
            burst if requests_per_minute else None,
        )
        self._requests.count_refused = count_refused
        self._images = (
            limit(images_per_minute, images_per_minute, None) if images_per_minute else None
        )
        tpm = tokens_per_minute or UNLIMITED_TOKENS_PER_MINUTE
        self.tokens = TokenBucket(capacity=tpm, per_second=tpm / 60, clock=clock)

    @property
    def requests(self) -> TokenBucket:
        """The request bucket."""
        return self._requests.bucket

    @property
    def images(self) -> TokenBucket | None:
        """The image bucket, with an ``images_per_minute`` limit."""
        return self._images.bucket if self._images is not None else None

    def capacity(self, resource: str) -> float:
        """The per-minute limit of ``resource`` as the headers show it."""
        if resource == "tokens":
            return self.tokens.capacity
        if resource == "images" and self._images is not None:
            return self._images.bucket.capacity
        return self._requests.bucket.capacity

    def admit(self) -> Admission:
        """Take a request slot if both the request and the token limits allow one."""
        if self._enforce_tokens and self.tokens.level < 1:
            # One token admits: the real cost is only known once the image is made.
            wait = self.tokens.wait_time(1)
            if self._requests.count_refused:
                self._requests.count(1)
            return Admission(allowed=False, limit="tokens", retry_after=wait)
        wait = self._requests.take(1)
        if wait:
            return Admission(allowed=False, limit="requests", retry_after=wait)
        return Admission(allowed=True)

    def admit_images(self, count: int) -> Admission:
        """Take ``count`` images (a request's ``n``) if the image limit allows them."""
        if self._images is None:
            return Admission(allowed=True)
        wait = self._images.take(count)
        if wait:
            return Admission(allowed=False, limit="images", retry_after=wait)
        return Admission(allowed=True)

    def charge_tokens(self, tokens: int) -> None:
        """Count the tokens a finished request used against the token limit."""
        self.tokens.charge(tokens)

    def headers(self) -> dict[str, str]:
        """The ``x-ratelimit-*`` headers as things stand now (six, or nine with images)."""
        found = self._requests.headers("requests")
        found.update(_Limit(bucket=self.tokens, enforced=True, slices=None).headers("tokens"))
        if self._images is not None:
            found.update(self._images.headers("images"))
        return found
