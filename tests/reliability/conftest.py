"""The reliability suites' shared pieces: the fault catalogue, where faults happen, leaks.

Every fault the client must survive is one :class:`FaultCase`: where it happens (a
:class:`Venue`), what the user gets (an exception class, or a result), how many requests
reach the server and how many retries the client takes. The async, sync and batch suites
(and the secrets suite) all run this one catalogue, so they cannot drift apart.

Retry waits are recorded, not slept: :func:`delays` wraps the client's ``retry_delay``, so
a test sees the wait the client chose (the server's hint, or the backoff) and then goes on
at once. Nothing here touches the network beyond 127.0.0.1, and host name lookups are
refused in-process (see :func:`no_dns`).
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import gzip
import ipaddress
import os
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, Literal

import anyio
import attrs
import pytest
from aiohttp import web
from anyio.from_thread import BlockingPortal, start_blocking_portal

from openai_images import (
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AsyncImagesClient,
    ImagesClient,
    InsufficientQuotaError,
    InternalServerError,
    OpenAIImagesError,
    Timeout,
)
from openai_images._errors import ResponseTooLargeError
from openai_images._retry import RetryPolicy, parse_retry_after, retry_delay
from openai_images.testing import Fault, LocalImagesServer
from tests.recorder import Recorded, Recorder, Reply

KEY = "sk-proj-reliabilityTOPSECRETkey0123456789abcd"
"""The key every client of these suites uses; no output may ever contain it."""

KEY_MIDDLE = KEY[8:-6]
"""The part of the key a redacted form hides: it must not show either."""

MAX_RETRIES = 2
"""The clients' retries: a fault that never clears is met ``MAX_RETRIES + 1`` times."""

FLOOD_BYTES = 4 << 20
"""How much a flooding server sends; the clients' response limit is far below it."""

BOMB_BYTES = 32 << 20
"""What a compressed response inflates to: far more than it announces."""

RESPONSE_LIMIT = 64 << 10
"""``max_response_bytes`` of the clients in the oversized-response cases."""

HANG_GUARD = 10.0
"""Seconds after which a wait for a condition fails: a guard against hangs, not a timing."""

VenueKind = Literal[
    "local", "refused", "dns", "redirect", "flood", "oversized", "gzip-bomb", "stream-flood"
]


# -- the catalogue ------------------------------------------------------------------------


def _http_date(seconds_from_now: float) -> str:
    return email.utils.formatdate(time.time() + seconds_from_now, usegmt=True)


@attrs.frozen(kw_only=True)
class FaultCase:
    """One fault, and what a user of the client must see.

    Attributes:
        name: The test id.
        venue: Where the request goes (see :func:`open_venue`).
        faults: Makes the local server's faults (called when the server starts, so that
            HTTP dates are fresh).
        error: The exact class raised, or ``None`` when the call succeeds in the end.
        attempts: Requests that reach the venue (lookups for ``dns``); ``None`` when
            nothing can count them (a refused connection).
        retries: Waits the client takes before trying again.
        delay: Bounds of the first wait the client chooses, in seconds.
        status: The ``status_code`` of an :class:`APIStatusError`.
        code: The ``code`` of an :class:`APIStatusError`.
        stream: Whether the call streams (the batch engine takes no streams).
        events: Stream events delivered before the error.
        timeout: The call's timeout.
        max_response_bytes: The client's response limit.
    """

    name: str
    venue: VenueKind = "local"
    faults: Callable[[], tuple[Fault, ...]] = tuple
    error: type[OpenAIImagesError] | None
    attempts: int | None
    retries: int
    delay: tuple[float, float] | None = None
    status: int | None = None
    code: str | None = None
    stream: bool = False
    events: int | None = None
    timeout: Timeout | None = None
    max_response_bytes: int = 1 << 30


def _always(**fields: Any) -> Callable[[], tuple[Fault, ...]]:
    """A fault that hits every attempt of one call."""
    return lambda: (Fault(times=MAX_RETRIES + 1, **fields),)


def _once(**fields: Any) -> Callable[[], tuple[Fault, ...]]:
    return lambda: (Fault(**fields),)


# What a hint beyond RetryPolicy.max_retry_after (a server's mistake) gets instead: backoff.
_BACKOFF = (0.0, RetryPolicy().max_delay)
_SLOW = Timeout(connect=5.0, read=5.0, total=0.15)
_STALLED = Timeout(connect=5.0, read=0.15, total=30.0)

CASES: tuple[FaultCase, ...] = (
    FaultCase(name="connection-refused", venue="refused", error=APIConnectionError,
              attempts=None, retries=MAX_RETRIES),
    FaultCase(name="dns-failure", venue="dns", error=APIConnectionError,
              attempts=MAX_RETRIES + 1, retries=MAX_RETRIES),
    FaultCase(name="reset-before-response", faults=_always(kind="reset"),
              error=APIConnectionError, attempts=MAX_RETRIES + 1, retries=MAX_RETRIES),
    FaultCase(name="reset-once-then-success", faults=_once(kind="reset"),
              error=None, attempts=2, retries=1),
    FaultCase(name="reset-mid-body", faults=_always(kind="reset_mid_body"),
              error=APIConnectionError, attempts=MAX_RETRIES + 1, retries=MAX_RETRIES),
    FaultCase(name="truncated-json", faults=_once(kind="truncated_json"),
              error=APIResponseValidationError, attempts=1, retries=0),
    FaultCase(name="html-502-from-a-proxy", faults=_always(kind="non_json"),
              error=InternalServerError, status=502, attempts=MAX_RETRIES + 1,
              retries=MAX_RETRIES),
    FaultCase(name="429-retry-after-ms", faults=_once(kind="status", status=429,
                                                       retry_after_ms=1500),
              error=None, attempts=2, retries=1, delay=(1.5, 1.5)),
    FaultCase(name="429-retry-after-seconds", faults=_once(kind="status", status=429,
                                                            retry_after=2),
              error=None, attempts=2, retries=1, delay=(2.0, 2.0)),
    FaultCase(name="429-retry-after-http-date",
              faults=lambda: (Fault(kind="status", status=429, retry_after=_http_date(30)),),
              error=None, attempts=2, retries=1, delay=(25.0, 31.0)),
    FaultCase(name="429-absurd-retry-after", faults=_once(kind="status", status=429,
                                                           retry_after=10**9),
              error=None, attempts=2, retries=1, delay=_BACKOFF),
    FaultCase(name="429-absurd-retry-after-ms", faults=_once(kind="status", status=429,
                                                              retry_after_ms=10**12),
              error=None, attempts=2, retries=1, delay=_BACKOFF),
    FaultCase(name="429-insufficient-quota", faults=_once(kind="status", status=429,
                                                          code="insufficient_quota"),
              error=InsufficientQuotaError, status=429, code="insufficient_quota", attempts=1,
              retries=0),
    FaultCase(name="500-then-success", faults=_once(kind="status", status=500),
              error=None, attempts=2, retries=1),
    FaultCase(name="503-should-retry-false",
              faults=_once(kind="status", status=503, headers={"x-should-retry": "false"}),
              error=InternalServerError, status=503, attempts=1, retries=0),
    FaultCase(name="headers-slower-than-the-timeout", faults=_always(kind="delay_headers",
                                                                     delay=5.0),
              error=APITimeoutError, attempts=MAX_RETRIES + 1, retries=MAX_RETRIES,
              timeout=_SLOW),
    FaultCase(name="body-stalls-mid-way", faults=_always(kind="stall_body", delay=5.0),
              error=APITimeoutError, attempts=MAX_RETRIES + 1, retries=MAX_RETRIES,
              timeout=_STALLED),
    FaultCase(name="stream-cut-after-2-events", faults=_once(kind="stream_cut", after_events=2),
              error=APIConnectionError, attempts=1, retries=0, stream=True, events=2),
    FaultCase(name="error-event-in-a-stream", faults=_once(kind="stream_error", after_events=1),
              error=InternalServerError, status=500, attempts=1, retries=0, stream=True,
              events=1),
    FaultCase(name="redirect-to-another-host", venue="redirect", error=APIStatusError,
              status=307, attempts=1, retries=0),
    FaultCase(name="response-larger-than-the-limit", venue="flood", error=ResponseTooLargeError,
              attempts=1, retries=0, max_response_bytes=RESPONSE_LIMIT),
    FaultCase(name="announced-length-over-the-limit", venue="oversized",
              error=ResponseTooLargeError, attempts=1, retries=0,
              max_response_bytes=RESPONSE_LIMIT),
    FaultCase(name="gzip-bomb-over-the-limit", venue="gzip-bomb", error=ResponseTooLargeError,
              attempts=1, retries=0, max_response_bytes=RESPONSE_LIMIT),
    FaultCase(name="endless-stream-event", venue="stream-flood", error=ResponseTooLargeError,
              attempts=1, retries=0, stream=True, events=0, max_response_bytes=RESPONSE_LIMIT),
)  # fmt: skip

WHOLE_CASES = tuple(case for case in CASES if not case.stream)
"""The cases of whole (not streamed) responses: what a batch can meet."""


# -- where requests go --------------------------------------------------------------------


@attrs.define
class Venue:
    """Where one case's requests go, and what reached it.

    Attributes:
        base_url: The client's ``base_url``.
        count: How many requests (for ``dns``, lookups) arrived so far, or ``None``.
        elsewhere: Requests that reached another host (a redirect's target).
        server: The local server, for the local venue.
    """

    base_url: str
    count: Callable[[], int | None]
    elsewhere: Callable[[], list[Recorded]] = list
    server: LocalImagesServer | None = None


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def _is_address(host: object) -> bool:
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if not isinstance(host, str):
        return False
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


@contextlib.contextmanager
def no_dns() -> Iterator[list[str]]:
    """Make every host name lookup fail at once, in every event loop, with no network I/O.

    aiohttp resolves through ``loop.getaddrinfo`` (aiodns is not installed), so the lookup
    fails where a real one would. Yields the names looked up.
    """
    looked_up: list[str] = []
    real = asyncio.BaseEventLoop.getaddrinfo

    async def refuse(self: asyncio.BaseEventLoop, host: Any, port: Any, **kwargs: Any) -> Any:
        if _is_address(host) or host is None:
            return await real(self, host, port, **kwargs)
        looked_up.append(str(host))
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(asyncio.BaseEventLoop, "getaddrinfo", refuse)
        yield looked_up


async def _flood(request: web.Request) -> web.StreamResponse:
    """Answer 200 with far more than any sane response, with no length announced.

    For a stream request it is one event whose ``data:`` line never ends.
    """
    streaming = request.headers.get("Accept") == "text/event-stream"
    kind = "text/event-stream" if streaming else "application/json"
    response = web.StreamResponse(headers={"Content-Type": kind})
    await response.prepare(request)
    chunk = b"x" * (64 << 10) if streaming else b" " * (64 << 10)
    with contextlib.suppress(ConnectionError):
        if streaming:
            await response.write(b"event: image_generation.partial_image\ndata: ")
        for _ in range(FLOOD_BYTES // len(chunk)):
            await response.write(chunk)
        await response.write_eof()
    return response


@contextlib.asynccontextmanager
async def open_venue(case: FaultCase) -> AsyncIterator[Venue]:
    """Start what ``case`` needs and hand over where to send requests."""
    if case.venue == "local":
        async with LocalImagesServer(max_recorded=100) as server:
            server.inject(*case.faults())
            yield Venue(base_url=server.base_url, count=lambda: len(server.requests), server=server)
    elif case.venue == "refused":
        yield Venue(base_url=f"http://127.0.0.1:{closed_port()}/v1", count=lambda: None)
    elif case.venue == "dns":
        with no_dns() as looked_up:
            # https: the key would not go over plain http; the lookup fails before TLS.
            yield Venue(base_url="https://images.example.invalid/v1", count=lambda: len(looked_up))
    elif case.venue == "redirect":
        async with Recorder() as origin, Recorder() as other:
            target = f"{other.base_url}/images/generations"
            for _ in range(MAX_RETRIES + 1):
                origin.reply(Reply(status=307, body=b"", headers={"Location": target}))
            yield Venue(
                base_url=origin.base_url,
                count=lambda: len(origin.requests),
                elsewhere=lambda: other.requests,
            )
    else:
        async with Recorder() as flooding:
            if case.venue in ("flood", "stream-flood"):
                reply = Reply(handler=_flood)
            elif case.venue == "gzip-bomb":
                # 32 MiB of JSON whitespace in 32 KiB on the wire, honestly announced.
                bomb = gzip.compress(b" " * BOMB_BYTES)
                reply = Reply(body=bomb, headers={"Content-Encoding": "gzip"})
            else:
                reply = Reply(body=b" " * (RESPONSE_LIMIT * 4))
            flooding.reply(*[reply] * (MAX_RETRIES + 1))
            yield Venue(base_url=flooding.base_url, count=lambda: len(flooding.requests))


# -- what a call of a case returns --------------------------------------------------------


@attrs.define
class Outcome:
    """What one call of a case gave: a result or an error, and the stream events before it."""

    result: object = None
    error: OpenAIImagesError | None = None
    events: list[Any] = attrs.Factory(list)


def generation(case: FaultCase) -> dict[str, Any]:
    """The call's arguments: small images, so a passing call costs the server little."""
    if case.stream:
        return {
            "prompt": "a lighthouse at dusk",
            "model": "gpt-image-1.5",
            "size": "1024x1024",
            "quality": "low",
            "partial_images": 3,
        }
    return {"prompt": "a lighthouse at dusk", "model": "gpt-image-2.5-flare", "size": "256x256"}


async def call(client: AsyncImagesClient, case: FaultCase) -> Outcome:
    """Make the case's call as a user of the async client would, keeping stream events."""
    outcome = Outcome()
    try:
        if case.stream:
            stream = await client.generate(**generation(case), stream=True, timeout=case.timeout)
            async with stream:
                async for event in stream:
                    outcome.events.append(event)
        else:
            outcome.result = await client.generate(**generation(case), timeout=case.timeout)
    except OpenAIImagesError as error:
        outcome.error = error
    return outcome


def call_sync(client: ImagesClient, case: FaultCase) -> Outcome:
    """Make the case's call as a user of the sync client would."""
    outcome = Outcome()
    try:
        if case.stream:
            with client.generate(**generation(case), stream=True, timeout=case.timeout) as stream:
                for event in stream:
                    outcome.events.append(event)
        else:
            outcome.result = client.generate(**generation(case), timeout=case.timeout)
    except OpenAIImagesError as error:
        outcome.error = error
    return outcome


def client_options(case: FaultCase, venue: Venue) -> dict[str, Any]:
    """The client's arguments for ``case``."""
    return {
        "api_key": KEY,
        "base_url": venue.base_url,
        "max_retries": MAX_RETRIES,
        "max_response_bytes": case.max_response_bytes,
    }


def check_error(case: FaultCase, error: BaseException | None) -> None:
    """The error is exactly the documented one (or there is none)."""
    if case.error is None:
        assert error is None, f"{case.name}: expected success, got {error!r}"
        return
    assert type(error) is case.error, f"{case.name}: expected {case.error}, got {error!r}"
    if case.status is not None:
        assert isinstance(error, APIStatusError)
        assert error.status_code == case.status
    if case.code is not None:
        assert isinstance(error, APIStatusError)
        assert error.code == case.code


def check_counts(case: FaultCase, venue: Venue, chosen: list[float]) -> None:
    """The venue saw the documented attempts, the client the documented retry waits."""
    assert venue.count() in (case.attempts, None), f"{case.name}: attempts {venue.count()}"
    assert len(chosen) == case.retries, f"{case.name}: waits {chosen}"
    if case.delay is not None:
        low, high = case.delay
        assert low <= chosen[0] <= high, f"{case.name}: first wait {chosen[0]}"
    assert venue.elsewhere() == [], "a request reached another host"


async def settle_count(case: FaultCase, venue: Venue) -> None:
    """Wait until the venue has recorded every attempt (a cut request is recorded late)."""
    await wait_until(lambda: (venue.count() or 0) >= (case.attempts or 0))


@pytest.fixture
def portal() -> Iterator[BlockingPortal]:
    """An event loop in a thread, for the servers the synchronous tests talk to."""
    with start_blocking_portal(backend="asyncio") as running:
        yield running


# -- retry waits, recorded and skipped ----------------------------------------------------


@pytest.fixture
def delays(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The retry waits the clients choose, in order; the clients then retry at once."""
    chosen: list[float] = []
    real = retry_delay

    def record(policy: RetryPolicy, *, attempt: int, headers: Any, **kwargs: Any) -> float:
        chosen.append(real(policy, attempt=attempt, headers=headers, **kwargs))
        return 0.0

    monkeypatch.setattr("openai_images._send.retry_delay", record)
    return chosen


@pytest.fixture
def quick_batch_pauses(monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch pauses a millisecond after a 429 instead of the hint (which tests check)."""
    real = parse_retry_after

    def short(headers: Any, *, now: float | None = None) -> float | None:
        return None if real(headers, now=now) is None else 0.001

    monkeypatch.setattr("openai_images._ratelimit.parse_retry_after", short)
    monkeypatch.setattr("openai_images._ratelimit._DEFAULT_PAUSE", 0.001)


# -- leaks --------------------------------------------------------------------------------


def open_fds() -> dict[str, str]:
    """This process's open descriptors and what each points at."""
    found = {}
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            found[fd] = os.readlink(f"/proc/self/fd/{fd}")
    return found


@attrs.frozen
class Snapshot:
    """What the process holds at one moment: descriptors, asyncio tasks, threads."""

    fds: dict[str, str]
    tasks: int
    threads: frozenset[str]

    @classmethod
    def take(cls) -> Snapshot:
        try:
            tasks = len(asyncio.all_tasks())
        except RuntimeError:  # no running loop: a synchronous test
            tasks = 0
        return cls(open_fds(), tasks, _own_threads())

    def leaks(self) -> list[str]:
        """What is held now and was not then."""
        now = Snapshot.take()
        found = [
            f"fd {fd} -> {target}"
            for fd, target in now.fds.items()
            if self.fds.get(fd) != target and not target.startswith("/proc/")
        ]
        if now.tasks > self.tasks:
            found.append(f"{now.tasks - self.tasks} more asyncio tasks")
        found += [f"thread {name}" for name in sorted(now.threads - self.threads)]
        return found


def _own_threads() -> frozenset[str]:
    """Running threads, less the pools that keep idle workers a while by design (anyio's
    worker threads, the loop's executor for name lookups)."""
    return frozenset(
        f"{thread.name} ({thread.ident})"
        for thread in threading.enumerate()
        if type(thread).__name__ != "WorkerThread" and not thread.name.startswith("asyncio_")
    )


async def wait_until(condition: Callable[[], bool]) -> None:
    """Wait for something another task, a thread or the kernel makes true."""
    with anyio.fail_after(HANG_GUARD):
        while True:
            if condition():
                return
            await anyio.sleep(0.005)


def wait_until_sync(condition: Callable[[], bool]) -> None:
    """:func:`wait_until` for synchronous tests."""
    deadline = time.monotonic() + HANG_GUARD
    while not condition():
        assert time.monotonic() < deadline, "gave up waiting (a hang guard, not a timing)"
        time.sleep(0.005)


async def assert_released(before: Snapshot) -> None:
    """Everything opened since ``before`` is closed again (the kernel may take a moment)."""
    with contextlib.suppress(TimeoutError):
        await wait_until(lambda: not before.leaks())
    assert before.leaks() == []


def assert_released_sync(before: Snapshot) -> None:
    """:func:`assert_released` for synchronous tests."""
    with contextlib.suppress(AssertionError):
        wait_until_sync(lambda: not before.leaks())
    assert before.leaks() == []


def chained(error: BaseException) -> list[BaseException]:
    """``error`` and everything attached to it: causes, contexts and grouped exceptions."""
    found: list[BaseException] = []
    seen: set[int] = set()
    todo: list[BaseException | None] = [error]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        found.append(current)
        todo += [current.__cause__, current.__context__, *getattr(current, "exceptions", ())]
    return found


def texts_of(error: BaseException) -> list[str]:
    """Every text a user (or an error tracker) may print of an error: str, repr, args,
    notes and the repr of every attribute, down all its causes and contexts."""
    texts: list[str] = []
    for current in chained(error):
        texts += [str(current), repr(current), *map(repr, current.args)]
        texts += [repr(value) for value in vars(current).values()]
        texts += [repr(note) for note in getattr(current, "__notes__", ())]
    return texts
