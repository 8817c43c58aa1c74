"""Retry decisions and delays: the status table, header overrides, hints and backoff."""

from __future__ import annotations

import email.utils
import math
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st
from multidict import CIMultiDict

from openai_images._retry import (
    RetryPolicy,
    parse_reset_duration,
    parse_retry_after,
    retry_delay,
    should_retry,
)

NOW = 1_700_000_000.0
POLICY = RetryPolicy()


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (None, True),
        (200, False),
        (400, False),
        (401, False),
        (403, False),
        (404, False),
        (408, True),
        (409, True),
        (422, False),
        (429, True),
        (500, True),
        (502, True),
        (503, True),
        (504, True),
        (599, True),
    ],
)
def test_status_table(status: int | None, expected: bool) -> None:
    """Connection errors, timeouts, 408, 409, 429 and 5xx are retried; other statuses not."""
    assert should_retry(status=status, headers={}) is expected
    assert should_retry(status=status, headers=None) is expected


@pytest.mark.parametrize("status", [400, 404, 422])
@pytest.mark.parametrize("value", ["true", "True", " TRUE "])
def test_should_retry_header_forces_a_retry(status: int, value: str) -> None:
    """``x-should-retry: true`` retries a status that is not retried by default."""
    assert should_retry(status=status, headers={"x-should-retry": value}) is True


@pytest.mark.parametrize("status", [408, 409, 429, 500, 503])
def test_should_retry_header_forbids_a_retry(status: int) -> None:
    """``x-should-retry: false`` stops a retry the status would give."""
    assert should_retry(status=status, headers={"x-should-retry": "false"}) is False


@pytest.mark.parametrize("value", ["", "yes", "1", "maybe"])
def test_other_should_retry_values_are_ignored(value: str) -> None:
    """A value other than true or false leaves the decision to the status."""
    assert should_retry(status=503, headers={"x-should-retry": value}) is True
    assert should_retry(status=400, headers={"x-should-retry": value}) is False


def test_header_names_in_any_case() -> None:
    """Mixed-case names are found in a plain dict and in a case-insensitive mapping."""
    assert should_retry(status=500, headers={"X-Should-Retry": "false"}) is False
    assert should_retry(status=500, headers=CIMultiDict({"X-Should-Retry": "false"})) is False
    assert parse_retry_after({"Retry-After-Ms": "250"}) == 0.25
    assert parse_retry_after(CIMultiDict({"RETRY-AFTER": "3"})) == 3.0


@pytest.mark.parametrize("headers", [{}, {"x-should-retry": "true"}, {"retry-after": "1"}])
@pytest.mark.parametrize("status", [429, 500])
def test_insufficient_quota_is_never_retried(status: int, headers: dict[str, str]) -> None:
    """An exhausted quota is final, whatever the status and headers say."""
    assert should_retry(status=status, headers=headers, error_code="insufficient_quota") is False


def test_other_error_codes_do_not_matter() -> None:
    """Only ``insufficient_quota`` changes the decision."""
    assert should_retry(status=429, headers={}, error_code="rate_limit_exceeded") is True
    assert should_retry(status=400, headers={}, error_code="invalid_value") is False


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after-ms": "1500"}, 1.5),
        ({"retry-after-ms": "20.5"}, 0.0205),
        ({"retry-after": "2"}, 2.0),
        ({"retry-after": " 2.5 "}, 2.5),
        ({"retry-after-ms": "100", "retry-after": "7"}, 0.1),
        ({"retry-after-ms": "soon", "retry-after": "7"}, 7.0),
        ({"retry-after": email.utils.formatdate(NOW + 30, usegmt=True)}, 30.0),
        ({"retry-after": email.utils.formatdate(NOW + 30)}, 30.0),
        ({"retry-after": "Tue, 14 Nov 2023 22:13:50 -0000"}, 30.0),
        ({"retry-after": email.utils.formatdate(NOW)}, 0.0),
    ],
)
def test_parse_retry_after(headers: dict[str, str], expected: float) -> None:
    """Milliseconds come first, then seconds or an HTTP date measured from ``now``."""
    assert parse_retry_after(headers, now=NOW) == pytest.approx(expected)


@pytest.mark.parametrize(
    "headers",
    [
        None,
        {},
        {"retry-after": ""},
        {"retry-after": "soon"},
        {"retry-after": "-5"},
        {"retry-after": "nan"},
        {"retry-after": "inf"},
        {"retry-after": "1_000"},
        {"retry-after": "9" * 400},
        {"retry-after-ms": "-1"},
        {"retry-after": "Tue, 32 Nov 2023 25:00:00 GMT"},
        {"retry-after": email.utils.formatdate(NOW - 30, usegmt=True)},
        {"retry-after": "32 Feb 25:61:61 9999999999999"},
        {"retry-after": "Tue, 14 Nov 2023 22:13:50 +99999999999999"},
        {"retry-after": "Tue, 14 Nov 99999 22:13:50 GMT"},
    ],
)
def test_parse_retry_after_refuses(headers: dict[str, str] | None) -> None:
    """Missing, garbled, non-finite and negative hints (past dates) give ``None``."""
    assert parse_retry_after(headers, now=NOW) is None


def test_parse_retry_after_uses_the_clock_by_default() -> None:
    """Without ``now``, a date is measured from the current time."""
    when = 4_000_000_000  # in 2096
    before = time.time()
    hint = parse_retry_after({"retry-after": email.utils.formatdate(when, usegmt=True)})
    after = time.time()
    assert hint is not None
    assert when - after <= hint <= when - before


@given(text=st.text())
def test_parse_retry_after_never_raises(text: str) -> None:
    """Whatever the server sends, the parser answers a non-negative number or ``None``."""
    for name in ("retry-after", "retry-after-ms"):
        hint = parse_retry_after({name: text}, now=NOW)
        assert hint is None or (math.isfinite(hint) and hint >= 0)


_DATE_WORDS = st.sampled_from(["Tue,", "14", "32", "Nov", "Feb", "2023", "99999", "0001", "0"]) | (
    st.sampled_from(["9999999999999", "22:13:50", "25:61:61", "GMT", "-0000", "+9999", "Z", "-"])
)


@given(words=st.lists(_DATE_WORDS, max_size=8))
def test_parse_retry_after_survives_date_like_text(words: list[str]) -> None:
    """Text close to an HTTP date, with fields out of range, never makes the parser raise."""
    hint = parse_retry_after({"retry-after": " ".join(words)}, now=NOW)
    assert hint is None or (math.isfinite(hint) and hint >= 0)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after-ms": "1500"}, 1.5),
        ({"retry-after": "60"}, 60.0),
        ({"retry-after": email.utils.formatdate(NOW + 12, usegmt=True)}, 12.0),
    ],
)
def test_sane_hints_are_obeyed(headers: dict[str, str], expected: float) -> None:
    """A hint above 0 and up to a minute is the delay, with no jitter."""
    assert retry_delay(POLICY, attempt=3, headers=headers, now=NOW, rng=lambda: 0.9) == expected


@pytest.mark.parametrize(
    "headers",
    [
        {"retry-after": "36000"},  # ten hours
        {"retry-after": "60.5"},
        {"retry-after-ms": "0"},
        {"retry-after": "0"},
        {"retry-after": "-3"},
        {"retry-after": "garbage"},
        {"retry-after": email.utils.formatdate(NOW - 30, usegmt=True)},
        {"retry-after": email.utils.formatdate(NOW + 36_000, usegmt=True)},
    ],
)
def test_insane_hints_fall_back_to_backoff(headers: dict[str, str]) -> None:
    """Absurd, zero, negative or garbled hints are ignored in favour of the backoff."""
    assert retry_delay(POLICY, attempt=1, headers=headers, now=NOW, rng=lambda: 0.0) == 1.0


def test_max_retry_after_is_configurable() -> None:
    """A policy can accept longer hints than a minute."""
    policy = RetryPolicy(max_retry_after=120.0)
    assert retry_delay(policy, attempt=0, headers={"retry-after": "90"}, now=NOW) == 90.0


def test_backoff_doubles_then_caps() -> None:
    """Without jitter the delay is 0.5 s doubling per attempt, capped at 8 s."""
    delays = [retry_delay(POLICY, attempt=n, headers=None, rng=lambda: 0.0) for n in range(8)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0, 8.0]


def test_backoff_with_full_jitter() -> None:
    """The largest jitter takes a quarter off the delay."""
    delays = [retry_delay(POLICY, attempt=n, headers={}, rng=lambda: 1.0) for n in range(6)]
    assert delays == [0.375, 0.75, 1.5, 3.0, 6.0, 6.0]


def test_backoff_follows_the_policy() -> None:
    """The initial delay and the cap come from the policy."""
    policy = RetryPolicy(initial_delay=0.1, max_delay=0.3)
    delays = [retry_delay(policy, attempt=n, headers=None, rng=lambda: 0.0) for n in range(4)]
    assert delays == pytest.approx([0.1, 0.2, 0.3, 0.3])


def test_huge_attempt_does_not_overflow() -> None:
    """A very late attempt still gets the capped delay."""
    assert retry_delay(POLICY, attempt=100_000, headers=None, rng=lambda: 0.0) == 8.0


@given(
    attempt=st.integers(min_value=0, max_value=10_000),
    draw=st.floats(min_value=0.0, max_value=1.0, exclude_max=True),
)
def test_jitter_bounds(attempt: int, draw: float) -> None:
    """The delay lies between 75% and 100% of the capped backoff."""
    base = min(0.5 * 2.0 ** min(attempt, 100), 8.0)
    delay = retry_delay(POLICY, attempt=attempt, headers=None, rng=lambda: draw)
    assert 0.75 * base <= delay <= base


def test_default_rng_stays_in_bounds() -> None:
    """The real random source gives delays within the jitter bounds."""
    for _ in range(100):
        assert 1.5 <= retry_delay(POLICY, attempt=2, headers=None) <= 2.0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1s", 1.0),
        ("6m0s", 360.0),
        ("20ms", 0.02),
        ("1h2m3.5s", 3723.5),
        ("0.5s", 0.5),
        (".5s", 0.5),
        ("2.s", 2.0),
        ("0s", 0.0),
        ("0", 0.0),
        ("1m", 60.0),
        ("3h", 10_800.0),
        ("1m30s", 90.0),
        ("1.5ms", 0.0015),
        ("250us", 0.00025),
        ("250\u00b5s", 0.00025),
        ("250\u03bcs", 0.00025),
        ("100ns", 1e-7),
        (" 1s ", 1.0),
        ("1s500ms", 1.5),
    ],
)
def test_parse_reset_duration(text: str, expected: float) -> None:
    """Go-style durations in the rate-limit reset headers read as seconds."""
    assert parse_reset_duration(text) == pytest.approx(expected)


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        "s",
        "1",
        "10",
        "1x",
        "-1s",
        "+1s",
        "1 s",
        "1s ms",
        "1.2.3s",
        ".s",
        "1e3s",
        "\u0661s",
        "1S",
    ],
)
def test_parse_reset_duration_refuses(text: str) -> None:
    """Text that is not a duration gives ``None``."""
    assert parse_reset_duration(text) is None


def go_duration(nanoseconds: int) -> str:
    """Format a duration the way Go's ``time.Duration.String`` does (for non-negative ones)."""

    def fixed(value: int, unit: int) -> str:
        whole, fraction = divmod(value, unit)
        digits = str(fraction).rjust(len(str(unit)) - 1, "0").rstrip("0")
        return f"{whole}.{digits}" if digits else str(whole)

    if nanoseconds == 0:
        return "0s"
    if nanoseconds < 1_000_000_000:
        for suffix, unit in (("ms", 1_000_000), ("\u00b5s", 1_000), ("ns", 1)):
            if nanoseconds >= unit:
                return fixed(nanoseconds, unit) + suffix
    hours, rest = divmod(nanoseconds, 3_600_000_000_000)
    minutes, rest = divmod(rest, 60_000_000_000)
    text = f"{hours}h" if hours else ""
    if hours or minutes:
        text += f"{minutes}m"
    return text + fixed(rest, 1_000_000_000) + "s"


def test_go_duration_matches_go() -> None:
    """The test's formatter writes what Go writes for a few known values."""
    assert [go_duration(n) for n in (0, 20_000_000, 6 * 60 * 10**9, 3_723_500_000_000)] == [
        "0s",
        "20ms",
        "6m0s",
        "1h2m3.5s",
    ]


@given(nanoseconds=st.integers(min_value=0, max_value=10**15))
def test_reset_duration_round_trip(nanoseconds: int) -> None:
    """Any duration Go would print parses back to its length in seconds."""
    parsed = parse_reset_duration(go_duration(nanoseconds))
    assert parsed == pytest.approx(nanoseconds / 1e9, rel=1e-9, abs=1e-12)


@given(
    parts=st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=10**6),
            st.sampled_from([("h", 3600.0), ("m", 60.0), ("s", 1.0), ("ms", 1e-3), ("ns", 1e-9)]),
        ),
        min_size=1,
        max_size=5,
    )
)
def test_reset_duration_sums_its_parts(parts: list[tuple[int, tuple[str, float]]]) -> None:
    """A duration made of any sequence of number-unit parts is the sum of the parts."""
    text = "".join(f"{number}{unit}" for number, (unit, _) in parts)
    expected = sum(number * size for number, (_, size) in parts)
    assert parse_reset_duration(text) == pytest.approx(expected, rel=1e-9, abs=1e-12)
