"""The sync client's engine: one event loop, driven by whichever thread needs it.

Each ``ImagesClient`` owns one event loop (and so one connection pool). A call from a
thread that finds the loop free drives it itself (``run_forever`` until the call's done
callback stops it): no thread hop, so a sync call costs about what the async call does.
A call that finds another thread driving (or that comes from a thread already running an
event loop: a notebook cell) is handed over: it is scheduled on the loop, which keeps
running either in the driving thread or, once that one's own call is done, in a helper
thread that sleeps until calls are handed to it. Many threads thus share one loop and
one pool.

After ``os.fork()`` the child starts afresh on its first call: a new loop, new locks, a
new helper. The parent's loop is closed in the child when that is harmless (it was not
running at the fork) and otherwise left alone; nothing the parent still uses (its
sockets, its kernel poll state) is touched from the child.
"""

from __future__ import annotations

import asyncio
import atexit
import collections
import concurrent.futures
import contextlib
import contextvars
import os
import selectors
import threading
import weakref
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

if TYPE_CHECKING:
    from _typeshed import FileDescriptorLike

from ._errors import ClientClosedError

__all__ = ["Runner", "fork_generation"]

_CLOSED = "this client is closed; make a new one"

P = ParamSpec("P")
T = TypeVar("T")

# Bumped in a child process after each fork(): objects made in an earlier generation belong
# to the parent (their loop's thread does not exist here, their locks may be held forever).
_generation = 0
# The parent's loops, clients and streams a child let go of: kept referenced so that their
# finalizers never run here (an aiohttp connector finalized on a live loop would close,
# and for TLS shut down, connections the parent still uses).
_abandoned: list[object] = []
# Guards making a runner's engine; a fresh lock in each child, as one held by another
# thread at the fork would stay held there.
_engine_lock = threading.Lock()


def fork_generation() -> int:
    """How many forks separate this process from the one that imported the package."""
    return _generation


def abandon(thing: object) -> None:
    """Keep ``thing``, made before a fork, alive and untouched in this child process."""
    _abandoned.append(thing)


def _after_fork_in_child() -> None:
    global _generation, _engine_lock
    _generation += 1
    _engine_lock = threading.Lock()


if hasattr(os, "register_at_fork"):  # not on Windows, which cannot fork
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _async_library_var() -> contextvars.ContextVar[str | None] | None:
    """sniffio's variable naming the running async library; anyio reads it when installed."""
    try:
        from sniffio import current_async_library_cvar
    except ImportError:  # anyio then takes a running asyncio loop as its own
        return None
    return current_async_library_cvar


def _async_library_thread() -> Any:
    """sniffio's per-thread record of an async library running the thread (trio's)."""
    try:
        from sniffio import thread_local
    except ImportError:
        return None
    return thread_local


_async_library = _async_library_var()
_library_thread = _async_library_thread()


if hasattr(selectors, "PollSelector"):  # not on Windows

    class _PollSelector(selectors.PollSelector):
        """``poll()``, noting which sockets it watches for writing, so that the check
        after every call (``_writing``) is one look at a set, not a walk over all keys."""

        def __init__(self) -> None:
            super().__init__()
            self.writers: set[int] = set()

        def register(
            self, fileobj: FileDescriptorLike, events: int, data: Any = None
        ) -> selectors.SelectorKey:
            key = super().register(fileobj, events, data)
            self._note(key)
            return key

        def modify(
            self, fileobj: FileDescriptorLike, events: int, data: Any = None
        ) -> selectors.SelectorKey:
            key = super().modify(fileobj, events, data)
            self._note(key)
            return key

        def unregister(self, fileobj: FileDescriptorLike) -> selectors.SelectorKey:
            key = super().unregister(fileobj)
            self.writers.discard(key.fd)
            return key

        def _note(self, key: selectors.SelectorKey) -> None:
            if key.events & selectors.EVENT_WRITE:
                self.writers.add(key.fd)
            else:
                self.writers.discard(key.fd)


def _new_loop() -> tuple[asyncio.AbstractEventLoop, _PollSelector | None]:
    """A loop, and the selector it waits with where we chose it."""
    # poll() keeps its interest list in this process; epoll and kqueue keep theirs in the
    # kernel, shared with (epoll) or lost to (kqueue) a forked child, where closing the
    # parent's loop would unregister the parent's own sockets. A sync client's loop watches
    # a few connections, where poll() costs no more than epoll.
    if hasattr(selectors, "PollSelector"):
        selector = _PollSelector()
        return asyncio.SelectorEventLoop(selector), selector
    return asyncio.new_event_loop(), None


def _writing(selector: _PollSelector) -> bool:
    """Whether a socket the loop watches has bytes waiting to be sent."""
    if not selector.writers:
        return False  # after almost every call; the walk below costs about 1.3 µs
    # A modify that fails unregisters behind _PollSelector's back: the keys decide.
    return any(key.events & selectors.EVENT_WRITE for key in selector.get_map().values())


def _call_context() -> contextvars.Context:
    """The caller's context variables, told the call runs on asyncio (whatever the caller's
    own library: a trio thread may call the sync client)."""
    context = contextvars.copy_context()
    if _async_library is not None:
        context.run(_async_library.set, "asyncio")
    return context


async def _await(awaitable: Awaitable[T]) -> T:
    return await awaitable


def _coroutine(awaitable: Awaitable[T]) -> Coroutine[Any, Any, T]:
    if asyncio.iscoroutine(awaitable):
        return awaitable
    return _await(awaitable)


class _Waiter:
    """Where a call handed over by ``Runner.run`` leaves its outcome, for the one thread
    blocked on it: a lock that the loop releases.

    A ``concurrent.futures.Future`` (still what ``Runner.submit`` returns) costs a
    condition, a fresh lock for every wait and callbacks: work done with the loop's thread
    and the caller's contending for the GIL, on every call, when many threads share a loop.
    """

    __slots__ = ("_cancelled", "_error", "_loop", "_ready", "_task", "_value")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._ready = threading.Lock()
        self._ready.acquire()
        self._value: Any = None
        self._error: BaseException | None = None
        self._task: asyncio.Task[Any] | None = None
        self._cancelled = False

    def result(self) -> Any:
        """Wait for the call; its result, or raise its error. Interrupted (Ctrl-C), the wait
        cancels the call."""
        try:
            self._ready.acquire()
        except BaseException:
            self.cancel()
            raise
        error, self._error = self._error, None
        if error is None:
            return self._value
        try:
            raise error
        finally:
            del error  # no cycle through this frame's traceback

    def cancel(self) -> None:
        """Cancel the call, started or not (from the waiting thread)."""
        self._cancelled = True
        task = self._task  # read after the flag: one of this and ``started`` sees the other
        if task is not None:
            with contextlib.suppress(RuntimeError):  # the loop is already closed
                self._loop.call_soon_threadsafe(task.cancel)

    # -- on the loop -----------------------------------------------------------------------

    def started(self, task: asyncio.Task[Any]) -> None:
        self._task = task
        if self._cancelled:
            task.cancel()

    def settle(self, task: asyncio.Task[Any]) -> None:
        if task.cancelled():
            self._error = concurrent.futures.CancelledError()
        else:
            self._error = task.exception()
            if self._error is None:
                self._value = task.result()
        self._ready.release()

    def fail(self, error: BaseException) -> None:
        self._error = error
        self._ready.release()


class _Promise:
    """A handed call's outcome in a ``concurrent.futures.Future``, for ``Runner.submit``
    and the engine's own calls: cancelling the future cancels the call."""

    __slots__ = ("_loop", "future")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.future: concurrent.futures.Future[Any] = concurrent.futures.Future()

    def started(self, task: asyncio.Task[Any]) -> None:
        def cancel_task(settled: concurrent.futures.Future[Any]) -> None:
            if settled.cancelled():
                with contextlib.suppress(RuntimeError):  # the loop is already closed
                    self._loop.call_soon_threadsafe(task.cancel)

        self.future.add_done_callback(cancel_task)

    def settle(self, task: asyncio.Task[Any]) -> None:
        """Hand ``task``'s outcome on (the future is pending until now: still cancellable)."""
        future = self.future
        if task.cancelled():
            future.cancel()
            future.set_running_or_notify_cancel()
            return
        exc = task.exception()
        if future.set_running_or_notify_cancel():
            if exc is None:
                future.set_result(task.result())
            else:
                future.set_exception(exc)

    def fail(self, error: BaseException) -> None:
        if self.future.set_running_or_notify_cancel():
            self.future.set_exception(error)


_Outcome = _Waiter | _Promise

# A handed call waiting to start: the call, where its outcome goes, whether it keeps the
# loop running (``Runner.start_task``), and its caller's context.
_Handed = tuple[Callable[[], Awaitable[Any]], _Outcome, bool, contextvars.Context]


class _Started:
    """The ``task_status`` handed to a task started with ``Runner.start_task``."""

    def __init__(self, future: concurrent.futures.Future[Any]) -> None:
        self._future = future

    def started(self, value: Any = None) -> None:
        self._future.set_result(value)


class _Engine:
    """One loop of one process generation, and who drives it.

    ``driving`` is held by whichever thread runs the loop. ``handed`` counts the calls
    handed over and not yet finished: while it is above zero, the helper thread waits for
    ``driving`` and runs the loop until they are all done. Handed calls wait in ``inbox``
    for the loop to start them, many at a time: only the first of a burst wakes the loop.
    """

    def __init__(self) -> None:
        self.generation = _generation
        self.loop, self._selector = _new_loop()
        self.driving = threading.Lock()
        self.guard = threading.Lock()
        self.wake = threading.Condition(self.guard)
        self.handed = 0
        self.inbox: collections.deque[_Handed] = collections.deque()
        self.draining = False  # a _drain is scheduled and has not yet emptied the inbox
        self.stopping = False
        self.idle: asyncio.Future[None] | None = None
        # Only the thread driving the loop touches these two.
        self.calls: set[asyncio.Task[Any]] = set()
        self.held: set[asyncio.Task[Any]] = set()
        self.helper = threading.Thread(target=self._help, name="openai-images", daemon=True)
        self.helper.start()

    # -- the calling thread drives ---------------------------------------------------------

    def drive(self, awaitable: Awaitable[T]) -> T:
        """Run a call's coroutine on the loop from this thread, which holds ``driving``."""
        loop = self.loop
        coroutine = _coroutine(awaitable)
        if _async_library is not None and _async_library.get() not in (None, "asyncio"):
            task = _call_context().run(loop.create_task, coroutine)
        else:
            task = loop.create_task(coroutine)
        self.calls.add(task)
        task.add_done_callback(self._driven_done)
        try:
            # As run_until_complete, without its bookkeeping (about 3 µs a call): the done
            # callback stops the loop. A stop left by an interrupted call may end a run
            # before this call's end, hence the loop.
            while not task.done():
                loop.run_forever()
        except BaseException:
            # Ctrl-C (or any interruption of this thread) cancels the call, and the loop
            # runs on until it has closed its connections and files.
            if not task.done():
                task.cancel()
                while not task.done():
                    loop.run_forever()
            raise
        return task.result()

    def _driven_done(self, task: asyncio.Task[Any]) -> None:
        # Scheduled when the call's last step ends, so the callbacks that step scheduled (a
        # dropped connection's close) run before the loop stops.
        self.calls.discard(task)
        self.loop.stop()

    def flush_later(self, *, closed: Callable[[], bool]) -> None:
        """After driving the loop (``driving`` still held): if a connection still has bytes
        to send (the close of a cancelled upload waits for them), keep the loop running in
        the helper until they are sent, rather than until the next call."""
        if self._selector is None or closed():
            return
        if _writing(self._selector):
            with contextlib.suppress(RuntimeError):  # closed meanwhile
                self.hand(self._flush, closed=closed, held=True)

    async def _flush(self) -> None:
        selector = self._selector
        assert selector is not None
        await asyncio.sleep(0)  # the callbacks the call's last step scheduled
        # Nothing signals a drained socket; a rare path, so look every few milliseconds.
        while _writing(selector):  # noqa: ASYNC110  # no event marks a drained socket
            await asyncio.sleep(0.005)

    # -- the call is handed over -----------------------------------------------------------

    def hand(
        self,
        call: Callable[[], Awaitable[T]],
        *,
        closed: Callable[[], bool],
        held: bool = False,
    ) -> concurrent.futures.Future[T]:
        """Schedule ``call`` on the loop; its outcome arrives in the returned future."""
        promise = _Promise(self.loop)
        self.schedule(call, promise, closed=closed, held=held)
        return promise.future

    def schedule(
        self,
        call: Callable[[], Awaitable[Any]],
        outcome: _Outcome,
        *,
        closed: Callable[[], bool],
        held: bool = False,
    ) -> None:
        """Schedule ``call`` on the loop, its outcome going to ``outcome``."""
        context = _call_context()
        with self.guard:
            if closed():
                raise ClientClosedError(_CLOSED)
            self.handed += 1
            self.inbox.append((call, outcome, held, context))
            if not self.draining:
                # Scheduled under the guard: once a closer has seen no call admitted, every
                # admitted one is already queued ahead of the closing work. A drain already
                # scheduled takes this call too, without another wake-up of the loop.
                self.draining = True
                self.loop.call_soon_threadsafe(self._drain)
            if self.handed == 1:  # the helper sleeps only while no call is handed
                self.wake.notify()

    def _drain(self) -> None:
        """Start every call in the inbox, each in its caller's context."""
        with self.guard:
            waiting = list(self.inbox)
            self.inbox.clear()
            self.draining = False
        interrupted: BaseException | None = None
        for call, outcome, held, context in waiting:
            try:
                context.run(self._spawn, call, outcome, held)
            except BaseException as exc:  # KeyboardInterrupt, SystemExit: after the others
                interrupted = interrupted or exc
        if interrupted is not None:
            raise interrupted

    def _spawn(self, call: Callable[[], Awaitable[Any]], outcome: _Outcome, held: bool) -> None:
        try:
            coroutine = _coroutine(call())
        except BaseException as exc:
            outcome.fail(exc)
            self._handed_done()
            if not isinstance(exc, Exception):
                raise
            return
        task = self.loop.create_task(coroutine)
        tasks = self.held if held else self.calls
        tasks.add(task)

        def done(task: asyncio.Task[Any]) -> None:
            tasks.discard(task)
            try:
                outcome.settle(task)
            finally:
                self._handed_done()

        task.add_done_callback(done)
        outcome.started(task)

    def _handed_done(self) -> None:
        with self.guard:
            self.handed -= 1
            if not self.handed and self.idle is not None and not self.idle.done():
                self.idle.set_result(None)

    def _help(self) -> None:
        """The helper thread: drive the loop while handed calls are unfinished."""
        while True:
            with self.wake:
                while not self.handed and not self.stopping:
                    self.wake.wait()
                if not self.handed:
                    return
            # A call that raised KeyboardInterrupt or SystemExit has handed that to its
            # caller already; the helper lives on for the others.
            with self.driving:
                with contextlib.suppress(BaseException):
                    self.loop.run_until_complete(self._serve())
                self.flush_later(closed=self._stopping)

    def _stopping(self) -> bool:
        return self.stopping

    async def _serve(self) -> None:
        while True:
            with self.guard:
                if not self.handed:
                    return
                self.idle = self.loop.create_future()
            await self.idle

    # -- the end ---------------------------------------------------------------------------

    async def closing(self, final: Callable[[], Awaitable[None]]) -> None:
        """Run ``final``, wait for the calls of other threads, cancel held tasks, and tidy
        up the loop's async generators and executor."""
        try:
            await final()
        finally:
            current = asyncio.current_task()
            while others := {task for task in self.calls if task is not current}:
                await asyncio.wait(others)
            for task in self.held:
                task.cancel()
            if self.held:
                await asyncio.wait(set(self.held))
            await self.loop.shutdown_asyncgens()
            await self.loop.shutdown_default_executor()

    def shut_down(self) -> None:
        """Stop the helper thread and close the loop."""
        with self.guard:
            self.stopping = True
            self.wake.notify()
        if threading.current_thread() is not self.helper:
            self.helper.join()
        with self.driving:
            self.loop.close()

    def abandon(self) -> None:
        """In a child process: let go of the parent's loop."""
        abandon(self)
        if not self.loop.is_running():
            # Harmless here: the poll selector's state and the loop's wake-up pipe are this
            # process's copies. A loop running at the fork (in a thread that the child does
            # not have) cannot be closed and stays as it is.
            self.loop.close()


def _can_drive(loop: asyncio.AbstractEventLoop) -> bool:
    """Whether this thread may run ``loop`` itself: it runs no event loop of its own."""
    running = asyncio._get_running_loop()  # the public get_running_loop() raises instead
    if running is loop:
        raise RuntimeError(
            "a sync ImagesClient cannot be called from its own event loop (e.g. from an "
            "on_progress callback of its batch); use the async client there"
        )
    if running is not None:
        return False
    return _library_thread is None or getattr(_library_thread, "name", None) is None


class Runner:
    """Runs coroutines for synchronous callers on one event loop; see the module's doc.

    Example:
        ```python
        runner = Runner()
        runner.run(asyncio.sleep, 0.1)
        runner.stop(some_async_cleanup)
        ```
    """

    def __init__(self, *, at_exit: Callable[[], Awaitable[None]] | None = None) -> None:
        self.at_exit = at_exit
        self.closed = False
        self._engine: _Engine | None = None

    @property
    def started(self) -> bool:
        """Whether a loop was made (by a first call in this process)."""
        engine = self._engine
        return engine is not None and engine.generation == _generation

    @property
    def generation(self) -> int:
        """The process generation whose loop runs the calls (see ``fork_generation``)."""
        return _generation

    def _current(self) -> _Engine:
        engine = self._engine
        if engine is not None and engine.generation == _generation:
            return engine
        with _engine_lock:
            if self.closed:
                raise ClientClosedError(_CLOSED)
            engine = self._engine
            if engine is None or engine.generation != _generation:
                if engine is not None:
                    engine.abandon()
                engine = self._engine = _Engine()
                _started_runners.add(self)
            return engine

    def _is_closed(self) -> bool:
        return self.closed

    def run(self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn(*args, **kwargs)`` on the loop and return its result.

        Interrupting the wait (Ctrl-C) cancels the call.
        """
        engine = self._current()
        if self.closed:
            raise ClientClosedError(_CLOSED)
        if _can_drive(engine.loop) and engine.driving.acquire(blocking=False):
            try:
                return engine.drive(fn(*args, **kwargs))
            finally:
                engine.flush_later(closed=self._is_closed)
                engine.driving.release()
        waiter = _Waiter(engine.loop)
        engine.schedule(lambda: fn(*args, **kwargs), waiter, closed=self._is_closed)
        result: T = waiter.result()
        return result

    def submit(
        self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs
    ) -> concurrent.futures.Future[T]:
        """Hand ``fn(*args, **kwargs)`` to the loop; cancelling the future cancels it."""
        return self._current().hand(lambda: fn(*args, **kwargs), closed=self._is_closed)

    def start_task(
        self, fn: Callable[..., Awaitable[Any]], /
    ) -> tuple[concurrent.futures.Future[Any], Any]:
        """Start ``fn(task_status=...)`` on the loop, as ``BlockingPortal.start_task`` does.

        Returns the task's future and the value it passed to ``task_status.started``.
        The task keeps the loop running until it ends; closing the runner cancels it.
        """
        started: concurrent.futures.Future[Any] = concurrent.futures.Future()
        future = self._current().hand(
            lambda: fn(task_status=_Started(started)), closed=self._is_closed, held=True
        )
        try:
            concurrent.futures.wait(
                [started, future], return_when=concurrent.futures.FIRST_COMPLETED
            )
            if not started.done():
                future.result()
                raise RuntimeError(f"{fn!r} ended without reporting that it started")
        except BaseException:
            future.cancel()
            raise
        return future, started.result()

    def stop(self, final: Callable[[], Awaitable[None]]) -> None:
        """Run ``final`` on the loop, let other threads' calls finish, then close the loop.

        Safe to call twice; calls made afterwards raise ``ClientClosedError``.
        """
        with _engine_lock:
            if self.closed:
                return
            engine = self._engine
            _started_runners.discard(self)
            if engine is None or engine.generation != _generation:
                self.closed = True
                if engine is not None:
                    engine.abandon()
                return
            with engine.guard:
                self.closed = True
        try:
            if _can_drive(engine.loop) and engine.driving.acquire(blocking=False):
                try:
                    engine.drive(engine.closing(final))
                finally:
                    engine.driving.release()
            else:
                engine.hand(lambda: engine.closing(final), closed=lambda: False).result()
        finally:
            engine.shut_down()


_started_runners: weakref.WeakSet[Runner] = weakref.WeakSet()


@atexit.register
def _stop_started_runners() -> None:
    # A loop left running at interpreter exit would be closed while the interpreter is
    # finalizing, when the helper thread can no longer run: waiting on it would hang the
    # exit. atexit still runs while threads do, so close what users left open here.
    for runner in list(_started_runners):
        runner.stop(runner.at_exit or _nothing)


async def _nothing() -> None:
    pass
