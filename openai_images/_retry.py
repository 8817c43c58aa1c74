"""Which outcomes are retried and how long to wait before the next try (no I/O).

The rules follow the API and the official SDK: connection errors, timeouts, 408, 409, 429
and 5xx are retried; an ``x-should-retry: true|false`` header overrides the status; an
empty budget (``insufficient_quota`` and the other out-of-money codes) is never retried,
since waiting does not refill it. The wait is the server's hint (``retry-after-ms``, then
``retry-after``) when it is sane, and otherwise an exponential backoff with jitter.

Headers may be a case-insensitive mapping (what aiohttp gives) or a plain ``dict``; names
are looked up in lower case first.
"""

from __future__ import annotations

import datetime
import email.utils
import math
import random
import re
import time
from collections.abc import Callable, Mapping

import attrs

from ._errors import is_out_of_money

__all__ = [
    "RetryPolicy",
    "parse_reset_duration",
    "parse_retry_after",
    "retry_delay",
    "should_retry",
]

_RETRIED_STATUSES = frozenset({408, 409, 429})
# Plain decimal numbers only: float() would also take "nan", "inf", "1_0" and signs.
_NUMBER = re.compile(r"\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*")
_DURATION_UNITS = {
    "h": 3600.0,
    "m": 60.0,
    "s": 1.0,
    "ms": 1e-3,
    "us": 1e-6,
    "\u00b5s": 1e-6,  # micro sign
    "\u03bcs": 1e-6,  # Greek mu
    "ns": 1e-9,
}
# Two-letter units first, so that "ms" is not read as minutes followed by a stray "s".
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(ms|us|\u00b5s|\u03bcs|ns|h|m|s)")
_DURATION = re.compile(rf"(?:{_DURATION_PART.pattern})+")


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """How long to wait between tries (how many tries is each call's ``max_retries``).

    Attributes:
        initial_delay: The backoff before the first retry, in seconds; it doubles each time.
        max_delay: The cap of the backoff, in seconds.
        max_retry_after: The longest server hint (``retry-after``) obeyed, in seconds; a
            longer one is taken as a mistake and the backoff is used instead.
    """

    initial_delay: float = 0.5
    max_delay: float = 8.0
    max_retry_after: float = 60.0


def should_retry(
    *,
    status: int | None,
    headers: Mapping[str, str] | None,
    error_code: str | None = None,
    error_type: str | None = None,
) -> bool:
    """Whether an outcome is worth another try.

    Args:
        status: The HTTP status, or ``None`` for a connection error or a timeout.
        headers: The response headers, if there was a response.
        error_code: The ``error.code`` of the response body, if any.
        error_type: The ``error.type`` of the response body, if any.

    Example:
        >>> should_retry(status=503, headers={})
        True
        >>> should_retry(status=503, headers={"x-should-retry": "false"})
        False
        >>> should_retry(status=429, headers={}, error_code="insufficient_quota")
        False
        >>> should_retry(status=429, headers={}, error_code="project_spend_limit_exceeded")
        False
    """
    if is_out_of_money(type=error_type, code=error_code):
        return False
    if status is None:
        return True
    verdict = _header(headers, "x-should-retry")
    if verdict is not None:
        verdict = verdict.strip().lower()
        if verdict == "true":
            return True
        if verdict == "false":
            return False
    return status in _RETRIED_STATUSES or status >= 500


def retry_delay(
    policy: RetryPolicy,
    *,
    attempt: int,
    headers: Mapping[str, str] | None,
    now: float | None = None,
    rng: Callable[[], float] = random.random,
) -> float:
    """How many seconds to wait before a retry.

    The server's hint wins when it is more than 0 and at most ``policy.max_retry_after``;
    otherwise ``initial_delay * 2**attempt``, capped at ``max_delay``, less a random jitter
    of up to 25%.

    Args:
        policy: The limits.
        attempt: ``0`` before the first retry, ``1`` before the second, and so on.
        headers: The headers of the response being retried, if any.
        now: The current unix time, for ``retry-after`` dates; ``time.time`` if ``None``.
        rng: Gives a float in ``[0, 1)``; fixed in tests.

    Example:
        >>> retry_delay(RetryPolicy(), attempt=0, headers={"retry-after-ms": "1500"})
        1.5
        >>> retry_delay(RetryPolicy(), attempt=10, headers=None, rng=lambda: 0.0)
        8.0
    """
    hint = parse_retry_after(headers, now=now)
    if hint is not None and 0 < hint <= policy.max_retry_after:
        return hint
    # The exponent is capped so a huge attempt number cannot overflow the float.
    backoff = min(policy.initial_delay * 2.0 ** min(attempt, 1000), policy.max_delay)
    return backoff * (1.0 - 0.25 * rng())


def parse_retry_after(
    headers: Mapping[str, str] | None, *, now: float | None = None
) -> float | None:
    """The server's hint of how long to wait, in seconds.

    ``retry-after-ms`` (milliseconds) comes first, then ``retry-after`` (seconds, or an HTTP
    date). ``None`` when neither is there or parses, or when the hint is negative (a date in
    the past).

    Example:
        >>> parse_retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:10 GMT"}, now=1445412480)
        10.0
    """
    millis = _number(_header(headers, "retry-after-ms"))
    if millis is not None:
        return millis / 1000.0
    text = _header(headers, "retry-after")
    if text is None:
        return None
    seconds = _number(text)
    if seconds is not None:
        return seconds
    try:
        when = email.utils.parsedate_to_datetime(text)
        if when.tzinfo is None:  # "-0000" means UTC with no zone information
            when = when.replace(tzinfo=datetime.timezone.utc)
        delay = when.timestamp() - (time.time() if now is None else now)
    except (TypeError, ValueError, IndexError, OverflowError):
        # Out-of-range days, hours, years or zone offsets: not a date.
        return None
    return delay if delay >= 0 else None


def parse_reset_duration(text: str) -> float | None:
    """Seconds in a rate-limit reset header (``x-ratelimit-reset-*``), or ``None``.

    The format is Go's duration text: numbers, possibly fractional, each with a unit among
    ``h``, ``m``, ``s``, ``ms``, ``us``/``µs`` and ``ns``.

    Example:
        >>> [parse_reset_duration(t) for t in ("1s", "6m0s", "20ms", "1h2m3.5s", "soon")]
        [1.0, 360.0, 0.02, 3723.5, None]
    """
    text = text.strip()
    if text == "0":
        return 0.0
    if not _DURATION.fullmatch(text):
        return None
    return sum(
        float(number) * _DURATION_UNITS[unit] for number, unit in _DURATION_PART.findall(text)
    )


def _header(headers: Mapping[str, str] | None, name: str) -> str | None:
    if not headers:
        return None
    value = headers.get(name)
    if value is None and not hasattr(headers, "getall"):
        # A plain dict with its keys in their original case; multidicts already ignore case.
        value = next((v for k, v in headers.items() if k.lower() == name), None)
    return value


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    match = _NUMBER.fullmatch(text)
    if match is None:
        return None
    value = float(match.group(1))
    return value if math.isfinite(value) else None
