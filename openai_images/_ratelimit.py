"""The rate limiter one batch shares: when may the next attempt go out?

Every attempt of every item in a batch asks the same ``BatchLimiter`` first, so one
rate limit answer slows the whole batch down, not just the request that got it. An
attempt waits for the strictest of these rules:

- **Caps** (``requests_per_minute``, ``images_per_minute``, ``tokens_per_minute``): starts
  are spaced by what they cost: one request, ``n`` images, and the tokens an image has
  cost so far (corrected once the answer's ``usage`` is known).
- **The server's budgets**: the ``x-ratelimit-limit-*``, ``-remaining-*`` and ``-reset-*``
  headers of ``requests``, ``images`` and ``tokens`` each describe a bucket that refills
  ``limit - remaining`` over ``reset``. The limiter keeps a copy of each, takes an
  attempt's cost from it when the attempt starts and, once it is empty, spreads the refill
  over time. A fresh reading replaces the copy, less what the server has not counted yet:
  the requests and images of attempts that started after the one it came with, the tokens
  of every attempt still out (the API charges tokens when the image is made).
- **The accepted rate**: the API may enforce a per-minute limit over one-second slices, so
  headers can show room the server does not grant. A 429 that came while the headers
  claimed room (or with none) sets a rate of its own: 90% of the rate the server accepted
  in the busier of the last two seconds (attempts not refused count as accepted:
  refusals come back within milliseconds, images can take a minute). While that rate
  holds the batch back it grows by 2% a second, so the batch probes upward slowly and a
  later 429 cuts it again (once per round: answers to attempts that began before the
  last cut do not cut again). A 429 whose headers show the budget spent is left to the
  copy of the budget.
- **A pause**: after a 429, no attempt starts until the server's hint (``retry-after-ms``,
  ``retry-after``) or, without one, until the budget holds a request again.
- **The first wave**: until the server has said anything about its limits (a 429, or an
  answer with rate-limit headers), at most four attempts are out at once, a number that
  doubles every 0.1 seconds (and grows by one per success), so a small tier is not hit
  by the whole batch at once while a large one reaches full concurrency within a second.

A 429 the limiter absorbs this way does not use up the item's own retries: the item asks
the limiter again. Items give up on rate limits only when the whole batch has had no
answer but 429s for ``patience`` seconds; then the batch stops, as it does at once on an
out-of-money 429 (``InsufficientQuotaError``).

``Pacer`` is the decision logic with an injected clock and no I/O (unit-tested with a
fake clock); ``BatchLimiter`` waits on it; ``ItemAttempts`` is the ``ExchangeObserver``
given to each item's request.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Mapping

import anyio
import attrs

from ._errors import APIStatusError, InsufficientQuotaError, RateLimitError
from ._retry import _header, parse_reset_duration, parse_retry_after

__all__ = [
    "DEFAULT_PATIENCE",
    "RESOURCES",
    "BatchLimiter",
    "Clock",
    "ItemAttempts",
    "Pacer",
]

Clock = Callable[[], float]

RESOURCES = ("requests", "images", "tokens")
"""What the API counts, as its ``x-ratelimit-*-{resource}`` headers name them."""

DEFAULT_PATIENCE = 300.0
"""Seconds a batch may go without any answer but 429s before its items give up."""

# How long a 429 may pause the whole batch: a longer hint is taken as a mistake (the
# retry policy ignores such hints too) and the default pause is used instead.
_MAX_PAUSE = 60.0
_DEFAULT_PAUSE = 1.0
# The first wave: this many out at once, doubling every _RAMP_DOUBLING seconds.
_RAMP_START = 4
_RAMP_DOUBLING = 0.1
# After a 429: this share of the accepted rate, measured over one-second spans.
_CUT = 0.9
_SPAN = 1.0
_SPANS = 2
_MIN_COVERED = 0.1
# Growth of the rate per start while it holds the batch back (in starts a second): as
# many starts a second as the rate, so the rate grows by 2% a second.
_PROBE = 0.02


def _count(text: str | None) -> int | None:
    if text is None:
        return None
    text = text.strip()
    return int(text) if text.isascii() and text.isdigit() else None


@attrs.define
class _Budget:
    """The limiter's copy of one of the server's buckets."""

    level: float
    capacity: float
    refill: float
    level_at: float
    # The least refill the readings so far allow, per second.
    refill_bound: float = math.inf

    def at(self, now: float) -> float:
        elapsed = max(0.0, now - self.level_at)
        return min(self.capacity, self.level + elapsed * self.refill)

    def take(self, amount: float, now: float) -> None:
        self.level, self.level_at = self.at(now) - amount, now

    def wait(self, amount: float, now: float) -> float:
        missing = min(amount, self.capacity) - self.at(now)
        return missing / self.refill if missing > 0 else 0.0


@attrs.define
class _Start:
    """One attempt that started: when, what it cost, what was taken up to it."""

    seq: int
    at: float
    images: int
    tokens: float
    # Images taken up to and including this attempt.
    taken_images: float
    refused: bool = False


class Pacer:
    """The limiter's decisions, with an injected clock and no waiting.

    Ask ``delay`` how long the next attempt must wait; when it is 0, ``start`` the
    attempt and keep its number, then ``record`` its outcome with that number (every
    started attempt must be recorded once, even one cut short, with ``status=None``).

    Args:
        requests_per_minute: A cap on attempts per minute; ``None`` for none.
        images_per_minute: A cap on images asked for (``n``) per minute.
        tokens_per_minute: A cap on tokens per minute (as the answers' ``usage`` counts).
        patience: Seconds with nothing but 429s after which ``gives_up`` says so.
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
        self,
        *,
        requests_per_minute: float | None = None,
        images_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
        patience: float = DEFAULT_PATIENCE,
        clock: Clock = time.monotonic,
    ) -> None:
        for name, value in (
            ("requests_per_minute", requests_per_minute),
            ("images_per_minute", images_per_minute),
            ("tokens_per_minute", tokens_per_minute),
            ("patience", patience),
        ):
            if value is not None and not (value > 0 and math.isfinite(value)):
                raise ValueError(f"{name} must be a number above 0, not {value!r}")
        self._clock = clock
        self._caps = {
            name: 60.0 / value
            for name, value in (
                ("requests_per_minute", requests_per_minute),
                ("images_per_minute", images_per_minute),
                ("tokens_per_minute", tokens_per_minute),
            )
            if value
        }
        self._cap_next = dict.fromkeys(self._caps, -math.inf)
        self._patience = patience
        self._started = 0
        self._first_at: float | None = None
        self._out: dict[int, _Start] = {}
        # The estimated tokens of the attempts in ``_out``, kept as they come and go.
        self._tokens_out = 0.0
        self._recent: deque[_Start] = deque()
        self._taken_images = 0.0
        self._tokens_per_image: float | None = None
        self._budgets: dict[str, _Budget] = {}
        self._heard = False
        self._successes = 0
        self._paused_until = -math.inf
        self._rate: float | None = None
        self._rate_next = -math.inf
        self._round_start = 0
        self._cut_at: float | None = None
        self._refused_kind = "requests"
        self._progress_at: float | None = None
        self._refused_at = -math.inf
        self.rate_limited = 0
        """How many 429 answers were recorded."""

    # -- what tests and reports read ---------------------------------------------------------

    @property
    def started(self) -> int:
        """How many attempts have started."""
        return self._started

    @property
    def in_flight(self) -> int:
        """Attempts started and not yet recorded."""
        return len(self._out)

    @property
    def heard(self) -> bool:
        """Whether the server has said anything of its limits (the first wave is over)."""
        return self._heard

    @property
    def rate(self) -> float | None:
        """Starts a second allowed since the last 429, or ``None`` before any."""
        self._settle(self._clock())
        return self._rate

    @property
    def paused_until(self) -> float:
        """The clock time before which no attempt starts (after a 429)."""
        return self._paused_until

    def budget(self, resource: str = "requests") -> float | None:
        """What the server's ``resource`` bucket is believed to hold now, if it said."""
        found = self._budgets.get(resource)
        return None if found is None else found.at(self._clock())

    def tokens_estimate(self, images: int = 1) -> float:
        """The tokens an attempt for ``images`` images is expected to cost (0 before any
        answer has reported its usage)."""
        return images * (self._tokens_per_image or 0.0)

    # -- deciding ----------------------------------------------------------------------------

    def waits(self, *, images: int = 1) -> dict[str, float]:
        """Each rule's wait for the next attempt, by the name of the limit behind it.

        Names: the caps (``"requests_per_minute"``...), ``"server_requests"``,
        ``"server_images"`` and ``"server_tokens"`` (budgets, and 429s of that kind) and
        ``"first_wave"``.
        """
        now = self._clock()
        self._settle(now)
        # A cap charges a start when it starts, so the next waits for what it cost.
        found = {name: max(0.0, next_at - now) for name, next_at in self._cap_next.items()}
        for resource, held in self._budgets.items():
            cost = self._cost(resource, images)
            found[f"server_{resource}"] = held.wait(cost, now)
        refused = f"server_{self._refused_kind}"
        held_back = max(self._paused_until - now, self._rate_next - now if self._rate else 0.0)
        if held_back > 0:
            found[refused] = max(found.get(refused, 0.0), held_back)
        if not self._heard:
            found["first_wave"] = self._ramp_wait(now)
        return found

    def delay(self, *, images: int = 1) -> float:
        """Seconds until the next attempt (asking for ``images``) may start; 0 for now."""
        return max(self.waits(images=images).values(), default=0.0)

    def binding(self, *, images: int = 1) -> str | None:
        """The name of the limit holding the next attempt back now, or ``None``."""
        waits = self.waits(images=images)
        name = max(waits, key=lambda key: waits[key], default=None)
        return name if name is not None and waits[name] > 0 else None

    def start(self, *, images: int = 1) -> int:
        """Count an attempt (asking for ``images``) as started now; return its number."""
        now = self._clock()
        self._settle(now)
        if self._first_at is None:
            self._first_at = self._progress_at = now
        tokens = self.tokens_estimate(images)
        cost = {
            "requests_per_minute": 1.0,
            "images_per_minute": float(images),
            "tokens_per_minute": tokens,
        }
        for name, interval in self._caps.items():
            self._cap_next[name] = max(self._cap_next[name], now) + interval * cost[name]
        for resource, held in self._budgets.items():
            held.take(self._cost(resource, images), now)
        if self._rate:
            # Only a rate that holds the batch back is probed upward.
            if now - self._rate_next < 1.0 / self._rate:
                self._rate += _PROBE
            self._rate_next = max(self._rate_next, now) + 1.0 / self._rate
        self._taken_images += images
        begun = _Start(
            seq=self._started,
            at=now,
            images=images,
            tokens=tokens,
            taken_images=self._taken_images,
        )
        self._out[begun.seq] = begun
        self._tokens_out += tokens
        # Only the last spans are measured (from a 429 still to be settled, if any).
        horizon = (self._cut_at if self._cut_at is not None else now) - _SPAN * _SPANS
        while self._recent and self._recent[0].at < horizon:
            self._recent.popleft()
        self._recent.append(begun)
        self._started += 1
        return begun.seq

    def record(
        self,
        seq: int,
        *,
        status: int | None,
        headers: Mapping[str, str] | None,
        kind: str | None = None,
    ) -> None:
        """Learn from the outcome of attempt ``seq`` (``status`` ``None``: no answer).

        ``kind`` is a 429's ``error.type`` when it names what ran out (``"requests"``,
        ``"images"``, ``"tokens"``).
        """
        now = self._clock()
        begun = self._out.pop(seq, None)
        if begun is None:
            return
        # (Back to exactly 0 when nothing is out, so rounding never accumulates.)
        self._tokens_out = self._tokens_out - begun.tokens if self._out else 0.0
        for resource in RESOURCES:
            self._read_budget(resource, begun, headers, now)
        if status == 429:
            begun.refused = True
            self.rate_limited += 1
            self._heard = True
            self._refused_at = now
            if kind in RESOURCES:
                self._refused_kind = kind
            self._pause(headers, now)
            # A 429 whose headers show the budget spent is explained: the copy of the
            # budget paces from here. One that came while they claimed room sets a rate.
            left = _count(_header(headers, f"x-ratelimit-remaining-{self._refused_kind}"))
            need = max(1.0, self._cost(self._refused_kind, begun.images))
            if seq >= self._round_start and (left is None or left >= need):
                self._round_start = self._started
                self._cut_at = now
        elif status is not None:
            self._progress_at = now
            if 200 <= status < 300:
                self._successes += 1

    def learn_tokens(self, tokens: float, *, images: int, estimated: float) -> None:
        """An answer's ``usage.total_tokens``, for an attempt estimated at ``estimated``."""
        images = max(1, images)
        each = tokens / images
        known = self._tokens_per_image
        self._tokens_per_image = each if known is None else known + 0.2 * (each - known)
        interval = self._caps.get("tokens_per_minute")
        if interval:
            self._cap_next["tokens_per_minute"] += (tokens - estimated) * interval

    def gives_up_at(self) -> float | None:
        """When items give up on rate limits: ``patience`` after the last answer that was
        not a 429, if only 429s came since; ``None`` while the batch makes progress."""
        if self._progress_at is None or self._refused_at < self._progress_at:
            return None
        return self._progress_at + self._patience

    # -- the rules ---------------------------------------------------------------------------

    def _cost(self, resource: str, images: int) -> float:
        if resource == "requests":
            return 1.0
        if resource == "images":
            return float(images)
        return self.tokens_estimate(images)

    def _ramp_wait(self, now: float) -> float:
        out = len(self._out)
        if out < _RAMP_START + self._successes or self._first_at is None:
            return 0.0
        # Out at once may be _RAMP_START * 2 ** (elapsed / _RAMP_DOUBLING).
        ready = self._first_at + _RAMP_DOUBLING * math.log2((out + 1) / _RAMP_START)
        return max(0.0, ready - now)

    def _settle(self, now: float) -> None:
        """Set the rate after a 429 once its pause is over, when every quick refusal of
        that moment has come back."""
        if self._cut_at is None or now < self._paused_until:
            return
        cut_at, self._cut_at = self._cut_at, None
        while self._recent and self._recent[0].at < cut_at - _SPAN * _SPANS:
            self._recent.popleft()
        spans = [0] * _SPANS
        for begun in self._recent:
            back = int((cut_at - begun.at) // _SPAN)
            if 0 <= back < _SPANS and not begun.refused:
                spans[back] += 1
        # A young batch has run for less than a span: its rate is over the time it ran
        # (an overestimate is soon cut again; an underestimate would take long to grow).
        first = self._first_at if self._first_at is not None else cut_at
        rates = []
        for back, accepted in enumerate(spans):
            begin = max(cut_at - (back + 1) * _SPAN, first)
            covered = cut_at - back * _SPAN - begin
            if covered > 0 or back == 0:
                rates.append(accepted / max(covered, _MIN_COVERED))
        accepted_rate = max(rates, default=0.0)
        if accepted_rate > 0:
            # (Nothing accepted says only that the pause was needed.)
            self._rate = _CUT * accepted_rate
        self._rate_next = max(self._rate_next, self._paused_until)

    def _read_budget(
        self, resource: str, begun: _Start, headers: Mapping[str, str] | None, now: float
    ) -> None:
        remaining = _count(_header(headers, f"x-ratelimit-remaining-{resource}"))
        limit = _count(_header(headers, f"x-ratelimit-limit-{resource}"))
        if remaining is None or limit is None or limit < remaining:
            return
        self._heard = True
        reset_text = _header(headers, f"x-ratelimit-reset-{resource}")
        reset = parse_reset_duration(reset_text) if reset_text is not None else None
        held = self._budgets.get(resource)
        capacity = float(max(limit, 1))
        if held is None or held.capacity != capacity:
            held = self._budgets[resource] = _Budget(
                level=0.0, capacity=capacity, refill=capacity / 60.0, level_at=now
            )
        if reset and limit > remaining:
            # ``remaining`` is rounded down, so this is at least the refill, and the
            # closer the fuller the bucket was: the least of the readings is kept.
            held.refill = min(held.refill_bound, (limit - remaining) / reset)
            held.refill_bound = held.refill
        # (A full bucket says nothing of its refill: the API's limits are per minute.)
        # What the server has not counted yet: requests and images are counted when an
        # attempt is admitted, tokens when its image is made.
        if resource == "requests":
            uncounted = float(self._started - begun.seq - 1)
        elif resource == "images":
            uncounted = self._taken_images - begun.taken_images
        else:
            uncounted = self._tokens_out
        held.level, held.level_at = remaining - uncounted, now

    def _pause(self, headers: Mapping[str, str] | None, now: float) -> None:
        held = self._budgets.get(self._refused_kind)
        level = None
        if held is not None:
            # Whatever the copy of the bucket said, the server has none left.
            level = min(held.at(now), 0.0)
            held.level, held.level_at = level, now
        hint = parse_retry_after(headers)
        if hint is None or not 0 < hint <= _MAX_PAUSE:
            if held is not None and level is not None:
                hint = min(_MAX_PAUSE, (1.0 - level) / held.refill)
            else:
                hint = _DEFAULT_PAUSE
        self._paused_until = max(self._paused_until, now + hint)


class BatchStopped(Exception):
    """The batch was stopped (out of quota, or out of patience); nothing more starts."""

    def __init__(self, error: APIStatusError) -> None:
        super().__init__(str(error))
        self.error = error


class BatchLimiter:
    """A ``Pacer`` that tasks wait on: attempts queue in order and start when allowed.

    It also holds the batch's stop: ``stop(error)`` makes every waiting and later
    ``acquire`` raise ``BatchStopped``. Create it inside the event loop that uses it.

    Example:
        ```python
        async def send(limiter):
            seq = await limiter.acquire()
            response = await post(...)
            limiter.record(seq, status=response.status, headers=response.headers)
        ```
    """

    def __init__(
        self,
        *,
        requests_per_minute: float | None = None,
        images_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
        patience: float = DEFAULT_PATIENCE,
        clock: Clock = time.monotonic,
    ) -> None:
        self.pacer = Pacer(
            requests_per_minute=requests_per_minute,
            images_per_minute=images_per_minute,
            tokens_per_minute=tokens_per_minute,
            patience=patience,
            clock=clock,
        )
        self._clock = clock
        # One waiter watches the clock at a time; the others queue behind it, first come
        # first served, instead of all waking for every free slot. Taking it when nobody
        # holds it does not yield to the event loop: that round trip was a large part of
        # an attempt's cost when nothing holds the batch back.
        self._turn = anyio.Lock(fast_acquire=True)
        self._news = anyio.Event()
        self._watched = False
        self._last_refusal: RateLimitError | None = None
        self.stopped_by: APIStatusError | None = None
        """The error that stopped the batch, if one did."""
        self.waited: dict[str, float] = {}
        """Seconds the batch waited on each limit (see ``Pacer.waits`` for the names)."""

    def bound_by(self) -> str | None:
        """The limit the batch waited on longest, or ``None`` if none held it back."""
        return max(self.waited, key=lambda name: self.waited[name], default=None)

    async def acquire(self, *, images: int = 1) -> int:
        """Wait until an attempt may start, start it, and return its number.

        Raises:
            BatchStopped: The batch was stopped, or gave up on rate limits here.
        """
        async with self._turn:
            while True:
                if self.stopped_by is not None:
                    raise BatchStopped(self.stopped_by)
                pacer = self.pacer
                now = self._clock()
                give_up = pacer.gives_up_at() if self._last_refusal is not None else None
                if give_up is not None and now >= give_up:
                    assert self._last_refusal is not None
                    self.stop(self._last_refusal)
                    continue
                wait = pacer.delay(images=images)
                if wait <= 0:
                    return pacer.start(images=images)
                name = pacer.binding(images=images) or "server_requests"
                if give_up is not None:
                    wait = min(wait, give_up - now)
                news = self._news
                self._watched = True
                # An outcome may change the wait (free a slot, or pause after a 429).
                with anyio.move_on_after(wait):
                    await news.wait()
                self.waited[name] = self.waited.get(name, 0.0) + self._clock() - now

    def record(
        self,
        seq: int,
        *,
        status: int | None,
        headers: Mapping[str, str] | None,
        error: BaseException | None = None,
    ) -> None:
        """Report the outcome of attempt ``seq``; waiting attempts look again."""
        kind = error.type if isinstance(error, RateLimitError) else None
        self.pacer.record(seq, status=status, headers=headers, kind=kind)
        if isinstance(error, RateLimitError) and not isinstance(error, InsufficientQuotaError):
            self._last_refusal = error
        self._wake()

    def stop(self, error: APIStatusError) -> None:
        """Stop the batch: no attempt starts from now on (the first cause is kept)."""
        if self.stopped_by is None:
            self.stopped_by = error
        self._wake()

    def _wake(self) -> None:
        # Only a waiter needs the news; without one, the next acquire looks afresh anyway.
        if self._watched:
            self._watched = False
            self._news.set()
            self._news = anyio.Event()


def _again(error: APIStatusError) -> APIStatusError:
    """The same error, as a new exception for another item to raise."""
    return type(error)(
        error.message,
        status_code=error.status_code,
        request_id=error.request_id,
        type=error.type,
        code=error.code,
        param=error.param,
        body=error.body,
        headers=error.headers,
    )


class ItemAttempts:
    """The observer of one item's request: asks the shared limiter, counts the attempts.

    A 429 for want of rate is the limiter's to handle (``after_attempt`` returns ``True``,
    so the client retries without spending one of the item's retries); an out-of-money 429
    stops the batch. Call ``close`` when the request is over, so that an attempt cut short
    (cancelled, or failed without an answer) still gives its place back.

    Args:
        limiter: The batch's limiter.
        images: The images the request asks for (``n``).
    """

    def __init__(self, limiter: BatchLimiter, *, images: int = 1) -> None:
        self._limiter = limiter
        self._images = images
        self._seq: int | None = None
        self._estimate = 0.0
        self._refusal: RateLimitError | None = None
        self.attempts = 0

    @property
    def retries(self) -> int:
        """Attempts after the first."""
        return max(0, self.attempts - 1)

    async def before_attempt(self) -> None:
        """Wait for the shared limiter's go.

        Raises:
            APIStatusError: The batch stopped: this item's own last 429, or the error that
                stopped the batch.
        """
        try:
            self._seq = await self._limiter.acquire(images=self._images)
        except BatchStopped as stopped:
            own = self._refusal
            if own is not None and not isinstance(stopped.error, InsufficientQuotaError):
                raise own from None
            raise _again(stopped.error) from None
        self._estimate = self._limiter.pacer.tokens_estimate(self._images)
        self.attempts += 1

    def after_attempt(
        self,
        *,
        status: int | None,
        headers: Mapping[str, str] | None,
        error: BaseException | None = None,
    ) -> bool:
        """Tell the shared limiter how the attempt went; ``True`` when it takes charge of
        the failure (a 429 it absorbs by pacing the batch)."""
        seq, self._seq = self._seq, None
        if seq is not None:
            self._limiter.record(seq, status=status, headers=headers, error=error)
        if isinstance(error, InsufficientQuotaError):
            self._limiter.stop(error)
            return False
        if not isinstance(error, RateLimitError):
            return False
        self._refusal = error
        verdict = _header(headers, "x-should-retry")
        return verdict is None or verdict.strip().lower() != "false"

    def used(self, tokens: int) -> None:
        """Report the ``usage.total_tokens`` of the answer that ended the request."""
        self._limiter.pacer.learn_tokens(tokens, images=self._images, estimated=self._estimate)

    def close(self) -> None:
        """Report an attempt still out as ended without an answer."""
        self.after_attempt(status=None, headers=None)
