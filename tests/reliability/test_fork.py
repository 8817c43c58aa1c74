"""A sync client used before ``os.fork()`` works in the child (issue 13, finding 2).

The child gets a fresh event loop and a fresh connection pool on its first call; the
parent's connections are never touched from the child, so the parent goes on using its
client. Every child runs under a deadline and is killed if it outlives it, so a regression
fails instead of hanging the suite.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import anyio
import pytest
from anyio.from_thread import BlockingPortal

from openai_images import ImagesClient
from openai_images.testing import LocalImagesServer
from tests.recorder import Recorder

from .conftest import KEY, wait_until_sync

pytestmark = pytest.mark.skipif(
    not hasattr(os, "fork") or sys.platform == "darwin",
    reason="fork() is POSIX-only (and unsafe with threads on macOS)",
)

CHILD_DEADLINE = 60.0
"""Seconds a child may take before it counts as hung (a hang guard, not a timing)."""


@contextmanager
def forking_allowed() -> Iterator[None]:
    """Python 3.12+ warns when a process with threads forks; these tests mean to."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


def generate(client: ImagesClient, prompt: str) -> str:
    """One small generation; its request id."""
    response = client.generate(
        prompt=prompt, model="gpt-image-1-mini", size="1024x1024", quality="low"
    )
    assert response.data[0].content()
    return response.request_id or ""


def fork_and_run(child: Callable[[], object]) -> str:
    """Run ``child`` in a raw ``os.fork()`` child; what it returned, or its error."""
    read_end, write_end = os.pipe()
    with forking_allowed():
        pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        status = 1
        try:
            os.close(read_end)
            outcome = f"ok {child()}"
            status = 0
        except BaseException as exc:
            outcome = f"error {exc!r}"
        finally:
            try:
                os.write(write_end, outcome.encode())
            finally:
                os._exit(status)
    os.close(write_end)
    try:
        deadline = time.monotonic() + CHILD_DEADLINE
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                pytest.fail("the forked child hung")
            time.sleep(0.01)
        with os.fdopen(read_end, "rb") as pipe:
            outcome = pipe.read().decode()
    finally:
        if not done:
            os.close(read_end)
    assert os.waitstatus_to_exitcode(status) == 0, outcome
    return outcome


def test_a_client_used_before_fork_works_in_the_child() -> None:
    """After a raw fork the child's calls succeed, and so do the parent's afterwards."""
    with (
        LocalImagesServer.in_thread() as server,
        ImagesClient(api_key=KEY, base_url=server.base_url, timeout=20) as client,
    ):
        generate(client, "in the parent")
        parent_pool = client.async_client

        def child() -> str:
            generate(client, "in the child")
            assert client.async_client is not parent_pool, "the child has its own pool"
            generate(client, "again in the child")
            client.close()
            return "done"

        assert fork_and_run(child) == "ok done"
        assert client.async_client is parent_pool
        generate(client, "in the parent, after the child")
        prompts = [request.fields["prompt"] for request in server.requests]
    assert sorted(prompts) == sorted(
        ["in the parent", "in the child", "again in the child", "in the parent, after the child"]
    )


def test_a_stream_opened_before_fork_refuses_to_run_in_the_child() -> None:
    """A stream belongs to the parent's connection: the child gets a clear error."""
    with (
        LocalImagesServer.in_thread() as server,
        ImagesClient(api_key=KEY, base_url=server.base_url, timeout=20) as client,
        client.generate(
            prompt="p", model="gpt-image-1.5", size="1024x1024", quality="low",
            stream=True, partial_images=2,
        ) as stream,
    ):  # fmt: skip
        next(stream)

        def child() -> str:
            with pytest.raises(RuntimeError, match="before fork"):
                next(stream)
            stream.close()  # nothing to do here: the connection is the parent's
            return generate(client, "the client itself works")

        assert fork_and_run(child).startswith("ok ")
        assert len(list(stream)) >= 1  # the parent's stream is intact


def test_fork_while_another_thread_is_inside_a_call(portal: BlockingPortal) -> None:
    """A fork in the middle of another thread's call (its loop running): the child still
    gets a working client, and the parent's call completes."""
    with portal.wrap_async_context_manager(Recorder()) as recorder:
        gate = recorder.gate = anyio.Event()
        with ImagesClient(api_key=KEY, base_url=recorder.base_url, timeout=20) as client:
            outcome: list[Any] = []
            caller = threading.Thread(target=lambda: outcome.append(client.generate(prompt="p")))
            caller.start()
            wait_until_sync(lambda: recorder.held == 1)

            def child() -> str:
                # The parent's request is still held at the gate; this one must not wait
                # for it, so the gate is off for every request after the first.
                return client.generate(prompt="from the child").request_id or ""

            recorder.gate = None
            assert fork_and_run(child).startswith("ok ")
            portal.call(gate.set)
            caller.join(CHILD_DEADLINE)
            assert not caller.is_alive()
        assert outcome
        assert sorted(r.json["prompt"] for r in recorder.requests) == ["from the child", "p"]


def _child_generates(client: ImagesClient, results: Any) -> None:
    results.put(generate(client, f"pid {os.getpid()}"))


def test_multiprocessing_with_fork_uses_the_parents_client() -> None:
    """``multiprocessing`` children (fork start method) inherit a used client and call it."""
    context = multiprocessing.get_context("fork")
    with (
        LocalImagesServer.in_thread() as server,
        ImagesClient(api_key=KEY, base_url=server.base_url, timeout=20) as client,
    ):
        generate(client, "parent")
        results = context.Queue()
        processes = [
            context.Process(target=_child_generates, args=(client, results)) for _ in range(3)
        ]
        with forking_allowed():
            for process in processes:
                process.start()
        for process in processes:
            process.join(CHILD_DEADLINE)
            if process.is_alive():
                process.kill()
                process.join()
                pytest.fail("a multiprocessing child hung")
            assert process.exitcode == 0
        ids = [results.get(timeout=CHILD_DEADLINE) for _ in processes]
        results.close()
        results.join_thread()
        generate(client, "parent again")
        assert len(server.requests) == 5
    assert all(ids)
