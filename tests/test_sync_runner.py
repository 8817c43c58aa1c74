"""The sync client's runner: who drives the loop, results, errors, cancels, hand-overs."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import select
import selectors
import signal
import socket
import threading
from collections.abc import Iterator

import anyio
import anyio.abc
import anyio.lowlevel
import anyio.to_thread
import pytest
import sniffio
from hypothesis import given
from hypothesis import strategies as st

from openai_images._runner import Runner as _Runner
from openai_images._runner import _Engine, _PollSelector, _Waiter, _writing

REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("REQUEST_ID", default="-")


@pytest.fixture
def runner() -> Iterator[_Runner]:
    """A started runner, stopped after the test."""
    runner = _Runner()
    yield runner
    runner.stop(anyio.lowlevel.checkpoint)


async def double(value: int) -> int:
    """A call that awaits something before it answers."""
    await anyio.lowlevel.checkpoint()
    return value * 2


async def fail() -> None:
    """A call that fails."""
    raise ValueError("no")


class Forever:
    """A call that waits until cancelled, noting when it started and when it cleaned up."""

    def __init__(self) -> None:
        self.started, self.cleaned = threading.Event(), threading.Event()

    async def wait(self) -> None:
        """Wait forever; the cleanup runs when cancelled."""
        try:
            self.started.set()
            await anyio.sleep_forever()
        finally:
            self.cleaned.set()


def test_results_and_errors_reach_the_caller(runner: _Runner) -> None:
    """The call's value comes back; its exception is raised unchanged."""
    assert runner.run(double, 21) == 42
    with pytest.raises(ValueError, match="no"):
        runner.run(fail)


def test_the_call_sees_the_callers_context(runner: _Runner) -> None:
    """Context variables set by the caller are visible on the loop, as with the portal."""

    async def read() -> str:
        return REQUEST_ID.get()

    token = REQUEST_ID.set("req-7")
    try:
        assert runner.run(read) == "req-7"
    finally:
        REQUEST_ID.reset(token)


def test_the_call_runs_as_asyncio_whatever_the_caller_claims(runner: _Runner) -> None:
    """A caller marked as another async library (a trio thread) still gets asyncio calls."""

    async def library() -> str:
        await anyio.lowlevel.checkpoint()
        return sniffio.current_async_library()

    token = sniffio.current_async_library_cvar.set("trio")
    try:
        assert runner.run(library) == "asyncio"
    finally:
        sniffio.current_async_library_cvar.reset(token)


def test_cancelling_the_future_cancels_the_call(runner: _Runner) -> None:
    """An interrupted wait cancels the task on the loop, which runs its cleanup."""
    waiting = Forever()

    future = runner.submit(waiting.wait)
    assert waiting.started.wait(5)
    assert future.cancel()
    assert waiting.cleaned.wait(5)


def test_stop_lets_other_threads_calls_finish(runner: _Runner) -> None:
    """Closing while another thread's call runs waits for it rather than cancelling it."""
    started = threading.Event()
    outcome: list[object] = []

    async def slow() -> str:
        started.set()
        await anyio.sleep(0.1)
        return "done"

    def call() -> None:
        outcome.append(runner.run(slow))

    thread = threading.Thread(target=call)
    thread.start()
    assert started.wait(5)
    runner.stop(anyio.lowlevel.checkpoint)
    thread.join(5)
    assert outcome == ["done"]
    with pytest.raises(RuntimeError, match="closed"):
        runner.run(double, 1)


async def thread_id() -> int:
    """The thread running the loop at the time of the call."""
    await anyio.lowlevel.checkpoint()
    return threading.get_ident()


def test_a_free_loop_is_driven_by_the_calling_thread(runner: _Runner) -> None:
    """No thread hop when nobody else uses the loop: the call runs in the caller's thread."""
    assert runner.run(thread_id) == threading.get_ident()


def test_a_stop_left_on_the_loop_does_not_end_the_next_call_early(runner: _Runner) -> None:
    """A stop still pending from an interrupted call (its done callback had not run yet)
    ends a run of the loop before the next call is done: that call still gets its value."""
    assert runner.run(double, 1) == 2
    loop = runner._current().loop
    loop.call_soon(loop.stop)
    assert runner.run(double, 2) == 4
    assert runner.run(double, 3) == 6


def test_callbacks_of_a_calls_last_step_run_before_it_returns(runner: _Runner) -> None:
    """What the call's last step scheduled (a dropped connection's close) has run by the
    time the caller has the result, not at the next call."""
    ran: list[str] = []

    async def schedule_and_return() -> str:
        asyncio.get_running_loop().call_soon(ran.append, "closed")
        return "done"

    assert runner.run(schedule_and_return) == "done"
    assert ran == ["closed"]


@pytest.mark.anyio
async def test_a_caller_running_its_own_loop_hands_the_call_over() -> None:
    """From inside a running event loop (a notebook cell) the helper thread runs the call."""
    runner = _Runner()
    try:
        assert runner.run(thread_id) != threading.get_ident()
    finally:
        runner.stop(anyio.lowlevel.checkpoint)


def test_a_busy_loop_takes_other_threads_calls_too(runner: _Runner) -> None:
    """While one thread drives a long call, another thread's calls complete meanwhile."""
    release = threading.Event()
    started = threading.Event()

    async def long_call() -> str:
        started.set()
        await anyio.to_thread.run_sync(release.wait)
        return "long"

    outcome: list[str] = []
    driver = threading.Thread(target=lambda: outcome.append(runner.run(long_call)))
    driver.start()
    assert started.wait(5)
    assert [runner.run(double, n) for n in range(3)] == [0, 2, 4]
    release.set()
    driver.join(5)
    assert outcome == ["long"]


class BusyLoop:
    """Another thread drives the runner's loop (one long call), so calls from this thread
    are handed over to it."""

    def __init__(self, runner: _Runner) -> None:
        self._release = threading.Event()
        self._started = threading.Event()
        self._thread = threading.Thread(target=runner.run, args=(self._long_call,))

    async def _long_call(self) -> None:
        self._started.set()
        await anyio.to_thread.run_sync(self._release.wait)

    def __enter__(self) -> BusyLoop:
        self._thread.start()
        assert self._started.wait(5)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._release.set()
        self._thread.join(5)


def test_a_handed_call_returns_its_value_and_raises_its_error(runner: _Runner) -> None:
    """Through the hand-over too, the value comes back and the error is raised unchanged."""
    error = ValueError("mine")

    async def raise_it() -> None:
        await anyio.lowlevel.checkpoint()
        raise error

    with BusyLoop(runner):
        assert runner.run(thread_id) != threading.get_ident()
        assert runner.run(double, 4) == 8
        with pytest.raises(ValueError, match="mine") as raised:
            runner.run(raise_it)
        assert raised.value is error


def test_a_handed_call_cancelled_on_the_loop_raises_cancelled_error(runner: _Runner) -> None:
    """A handed call whose task is cancelled on the loop ends its caller's wait with
    ``concurrent.futures.CancelledError``, as the future it replaces did."""

    async def cancel_itself() -> None:
        task = asyncio.current_task()
        assert task is not None
        task.cancel()
        await asyncio.sleep(0)

    with BusyLoop(runner), pytest.raises(concurrent.futures.CancelledError):
        runner.run(cancel_itself)


def test_ctrl_c_while_waiting_for_a_handed_call_cancels_it(runner: _Runner) -> None:
    """A KeyboardInterrupt in a thread waiting for a call handed over reaches that thread,
    and the call is cancelled on the loop, running its cleanup."""
    waiting = Forever()

    main = threading.main_thread().ident
    assert main is not None
    assert threading.get_ident() == main  # signals go to this thread

    def interrupt() -> None:
        if waiting.started.wait(5):
            signal.pthread_kill(main, signal.SIGINT)

    interrupter = threading.Thread(target=interrupt)
    with BusyLoop(runner):
        interrupter.start()
        try:
            with pytest.raises(KeyboardInterrupt):
                runner.run(waiting.wait)
        finally:
            interrupter.join(5)
        assert waiting.cleaned.wait(5)


def test_a_wait_cancelled_before_the_call_starts_never_lets_it_run() -> None:
    """A call cancelled while it waits in the inbox is cancelled as soon as it starts: its
    body never runs."""
    loop = asyncio.new_event_loop()
    try:
        ran: list[str] = []

        async def body() -> None:
            ran.append("body")

        waiter = _Waiter(loop)
        waiter.cancel()
        task = loop.create_task(body())
        task.add_done_callback(waiter.settle)
        waiter.started(task)
        with pytest.raises(asyncio.CancelledError):
            loop.run_until_complete(task)
    finally:
        loop.close()
    assert ran == []
    with pytest.raises(concurrent.futures.CancelledError):
        waiter.result()


def test_calls_handed_to_a_busy_loop_start_together_in_order(
    runner: _Runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Calls handed over while the loop is busy wait in the inbox: the first wakes the
    loop, and one drain starts them all, in the order they were handed."""
    drains: list[int] = []
    drain = _Engine._drain

    def counting(engine: _Engine) -> None:
        drains.append(len(engine.inbox))
        drain(engine)

    monkeypatch.setattr(_Engine, "_drain", counting)
    busy, release = threading.Event(), threading.Event()

    async def hold_the_loop() -> None:
        busy.set()
        release.wait(5)  # blocks the loop on purpose, so calls queue up

    started: list[int] = []

    async def note(index: int) -> int:
        started.append(index)
        return index

    driver = threading.Thread(target=runner.run, args=(hold_the_loop,))
    driver.start()
    assert busy.wait(5)
    futures = [runner.submit(note, index) for index in range(5)]
    release.set()
    assert [future.result(5) for future in futures] == [0, 1, 2, 3, 4]
    driver.join(5)
    assert started == [0, 1, 2, 3, 4]
    assert drains == [5]


def test_calling_from_the_loop_itself_is_refused(runner: _Runner) -> None:
    """A sync call made from a call on the same loop (it would wait on itself) fails."""

    async def reenter() -> int:
        return runner.run(double, 1)

    with pytest.raises(RuntimeError, match="its own event loop"):
        runner.run(reenter)


def test_a_started_task_runs_until_stop_cancels_it() -> None:
    """``start_task`` returns the started value; the task runs on until the runner stops."""
    runner = _Runner()
    cancelled = threading.Event()

    async def hold(*, task_status: anyio.abc.TaskStatus[str]) -> None:
        task_status.started("ready")
        try:
            await anyio.sleep_forever()
        finally:
            cancelled.set()

    future, value = runner.start_task(hold)
    assert value == "ready"
    assert not future.done()
    runner.stop(anyio.lowlevel.checkpoint)
    assert cancelled.is_set()
    assert future.cancelled()


INTERESTS = st.sampled_from(
    [selectors.EVENT_READ, selectors.EVENT_WRITE, selectors.EVENT_READ | selectors.EVENT_WRITE]
)


@pytest.mark.skipif(not hasattr(select, "poll"), reason="poll() is not on this platform")
@given(st.lists(st.tuples(st.integers(0, 2), st.booleans(), INTERESTS)))
def test_the_poll_selector_knows_when_a_socket_waits_to_be_written(
    steps: list[tuple[int, bool, int]],
) -> None:
    """Whatever sockets come, change interest and go, the quick answer is the keys' own."""
    selector = _PollSelector()
    pairs = [socket.socketpair() for _ in range(3)]
    try:
        for index, drop, events in steps:
            sock = pairs[index][0]
            registered = sock.fileno() in selector.get_map()
            if drop:
                if registered:
                    selector.unregister(sock)
            elif registered:
                selector.modify(sock, events)
            else:
                selector.register(sock, events)
            walked = any(key.events & selectors.EVENT_WRITE for key in selector.get_map().values())
            assert _writing(selector) is walked
    finally:
        selector.close()
        for left, right in pairs:
            left.close()
            right.close()
