"""The rate limiter one batch shares: when may the next attempt go out?

Every attempt of every item in a batch asks the same ``BatchLimiter`` first, so one
rate limit answer slows the whole batch down, not just the request that got it. It
combines four rules, and an attempt waits for the strictest:

- **A cap** (``requests_per_minute``): starts spaced at least ``60 / rpm`` seconds apart.
- **The server's budget**: the ``x-ratelimit-limit-requests``, ``-remaining-requests`` and
  ``-reset-requests`` headers describe a bucket that refills ``limit - remaining`` requests
  over ``reset``. The limiter keeps a copy of that bucket, takes one request from it per
  attempt and, once it is empty, spreads the refill over time instead of bursting into a
  429. A fresh reading replaces the copy, less the attempts that started after the one it
  came with (the server may not have counted them yet).
- **AIMD**: a 429 cuts the attempts allowed out at once to 70% of those that were out
  (once per round: answers to attempts that began before the last cut do not cut
  again), and each success widens that window by ``1 / window``, so by one attempt per
  round trip, as TCP (CUBIC's cut) does. This is what slows the batch against a server
  that sends no budget headers.
- **A pause**: after a 429, no attempt starts until the server's hint (``retry-after-ms``,
  ``retry-after``) or, without one, until the budget holds a request again.

Before the first answer the limiter knows nothing, so the first wave goes out whole; if
the budget is smaller, its 429s are retried once the pause and the budget allow (waiting
for the limiter does not use up an item's retries).

``Pacer`` is the decision logic with an injected clock and no I/O (unit-tested with a
fake clock); ``BatchLimiter`` waits on it; ``ItemAttempts`` is the
``ExchangeObserver`` given to each item's request, which also
counts its retries.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping

import anyio

from ._retry import _header, parse_reset_duration, parse_retry_after

__all__ = ["BatchLimiter", "Clock", "ItemAttempts", "Pacer"]

Clock = Callable[[], float]

# How long a 429 may pause the whole batch: a longer hint is taken as a mistake (the
# retry policy ignores such hints too) and the default pause is used instead.
_MAX_PAUSE = 60.0
_DEFAULT_PAUSE = 1.0
# TCP CUBIC's cut: gentler than halving, so the window hovers nearer the server's limit.
_DECREASE = 0.7


def _count(text: str | None) -> int | None:
    if text is None:
        return None
    text = text.strip()
    return int(text) if text.isascii() and text.isdigit() else None


class Pacer:
    """The limiter's decisions, with an injected clock and no waiting.

    Ask ``delay`` how long the next attempt must wait; when it is 0, ``start`` the
    attempt and keep its number, then ``record`` its outcome with that number (every
    started attempt must be recorded once, even one cut short, with ``status=None``).

    Args:
        requests_per_minute: A cap on attempts per minute; ``None`` for none.
        clock: Seconds from any fixed point (``time.monotonic`` by default).

    Example:
        >>> now = [0.0]
        >>> pacer = Pacer(requests_per_minute=120, clock=lambda: now[0])
        >>> pacer.delay(), pacer.start(), pacer.delay()
        (0.0, 0, 0.5)
        >>> now[0] = 0.5
        >>> pacer.delay()
        0.0
    """

    def __init__(
        self, *, requests_per_minute: float | None = None, clock: Clock = time.monotonic
    ) -> None:
        if requests_per_minute is not None and not requests_per_minute > 0:
            raise ValueError(f"requests_per_minute must be more than 0, not {requests_per_minute}")
        self._clock = clock
        self._interval = 60.0 / requests_per_minute if requests_per_minute else 0.0
        self._cap_next = -math.inf
        self._started = 0
        self._out = 0
        self._paused_until = -math.inf
        # AIMD: no window of its own until the first 429.
        self._window: float | None = None
        self._round_start = 0
        # The copy of the server's request bucket, once a response has described it.
        self._level: float | None = None
        self._capacity = math.inf
        self._refill = 0.0
        self._level_at = 0.0
        self.rate_limited = 0
        """How many 429 answers were recorded."""

    @property
    def started(self) -> int:
        """How many attempts have started."""
        return self._started

    @property
    def in_flight(self) -> int:
        """Attempts started and not yet recorded."""
        return self._out

    @property
    def window(self) -> float | None:
        """The attempts AIMD allows out at once, or ``None`` before the first 429."""
        return self._window

    @property
    def paused_until(self) -> float:
        """The clock time before which no attempt starts (after a 429)."""
        return self._paused_until

    def budget(self) -> float | None:
        """The requests the server's bucket is believed to hold now, if it said."""
        if self._level is None:
            return None
        elapsed = max(0.0, self._clock() - self._level_at)
        return min(self._capacity, self._level + elapsed * self._refill)

    def delay(self) -> float:
        """Seconds until the next attempt may start: 0 for now, ``inf`` until an outcome."""
        if self._window is not None and self._out >= self._window:
            return math.inf
        now = self._clock()
        wait = max(0.0, self._paused_until - now, self._cap_next - now)
        level = self.budget()
        if level is not None and level < 1.0:
            wait = max(wait, (1.0 - level) / self._refill)
        return wait

    def start(self) -> int:
        """Count an attempt as started now and return its number (for ``record``)."""
        now = self._clock()
        if self._interval:
            self._cap_next = max(self._cap_next, now) + self._interval
        level = self.budget()
        if level is not None:
            self._level, self._level_at = level - 1.0, now
        seq = self._started
        self._started += 1
        self._out += 1
        return seq

    def record(self, seq: int, *, status: int | None, headers: Mapping[str, str] | None) -> None:
        """Learn from the outcome of attempt ``seq`` (``status`` ``None``: no answer)."""
        now = self._clock()
        out = self._out
        self._out = max(0, out - 1)
        self._read_budget(seq, headers, now)
        if status == 429:
            self.rate_limited += 1
            self._pause(headers, now)
            if seq >= self._round_start:
                # Cut from what was out when this attempt ended: the load the server refused.
                self._window = max(1.0, out * _DECREASE)
                self._round_start = self._started
        elif status is not None and 200 <= status < 300 and self._window is not None:
            self._window += 1.0 / self._window

    def _read_budget(self, seq: int, headers: Mapping[str, str] | None, now: float) -> None:
        remaining = _count(_header(headers, "x-ratelimit-remaining-requests"))
        limit = _count(_header(headers, "x-ratelimit-limit-requests"))
        if remaining is None or limit is None or limit < remaining:
            return
        reset_text = _header(headers, "x-ratelimit-reset-requests")
        reset = parse_reset_duration(reset_text) if reset_text is not None else None
        self._capacity = float(max(limit, 1))
        if reset and limit > remaining:
            self._refill = (limit - remaining) / reset
        elif not self._refill:
            # A full bucket says nothing of its refill; the API's limits are per minute.
            self._refill = self._capacity / 60.0
        # Attempts that started after this one may not be in the server's count yet.
        self._level = float(remaining - (self._started - seq - 1))
        self._level_at = now

    def _pause(self, headers: Mapping[str, str] | None, now: float) -> None:
        level = self.budget()
        if level is not None:
            # Whatever the copy of the bucket said, the server has none left.
            level = min(level, 0.0)
            self._level, self._level_at = level, now
        hint = parse_retry_after(headers)
        if hint is None or not 0 < hint <= _MAX_PAUSE:
            if level is not None:
                hint = min(_MAX_PAUSE, (1.0 - level) / self._refill)
            else:
                hint = _DEFAULT_PAUSE
        self._paused_until = max(self._paused_until, now + hint)


class BatchLimiter:
    """A ``Pacer`` that tasks wait on: attempts queue in order and start when allowed.

    Create it inside the event loop that uses it.

    Example:
        ```python
        async def send(limiter):
            seq = await limiter.acquire()
            response = await post(...)
            limiter.record(seq, status=response.status, headers=response.headers)
        ```
    """

    def __init__(self, *, requests_per_minute: float | None = None) -> None:
        self.pacer = Pacer(requests_per_minute=requests_per_minute)
        # One waiter watches the clock at a time; the others queue behind it, first come
        # first served, instead of all waking for every free slot.
        self._turn = anyio.Lock()
        self._news = anyio.Event()

    async def acquire(self) -> int:
        """Wait until an attempt may start, start it, and return its number."""
        async with self._turn:
            while True:
                wait = self.pacer.delay()
                if wait <= 0:
                    return self.pacer.start()
                news = self._news
                # An outcome may change the wait (free a slot, or pause after a 429).
                with anyio.move_on_after(wait):
                    await news.wait()

    def record(self, seq: int, *, status: int | None, headers: Mapping[str, str] | None) -> None:
        """Report the outcome of attempt ``seq``; waiting attempts look again."""
        self.pacer.record(seq, status=status, headers=headers)
        self._news.set()
        self._news = anyio.Event()


class ItemAttempts:
    """The observer of one item's request: asks the shared limiter, counts the attempts.

    Call ``close`` when the request is over, so that an attempt cut short (cancelled,
    or failed without an answer) still gives its place back.
    """

    def __init__(self, limiter: BatchLimiter) -> None:
        self._limiter = limiter
        self._seq: int | None = None
        self.attempts = 0

    @property
    def retries(self) -> int:
        """Attempts after the first."""
        return max(0, self.attempts - 1)

    async def before_attempt(self) -> None:
        """Wait for the shared limiter's go."""
        self._seq = await self._limiter.acquire()
        self.attempts += 1

    def after_attempt(self, *, status: int | None, headers: Mapping[str, str] | None) -> None:
        """Tell the shared limiter how the attempt went."""
        seq, self._seq = self._seq, None
        if seq is not None:
            self._limiter.record(seq, status=status, headers=headers)

    def close(self) -> None:
        """Report an attempt still out as ended without an answer."""
        self.after_attempt(status=None, headers=None)
