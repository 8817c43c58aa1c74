"""``ImagesClient.map`` and ``run_batch`` from synchronous code: results, close, Ctrl-C."""

from __future__ import annotations

import gc
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from openai_images import (
    BatchIterator,
    BatchProgress,
    GenerateRequest,
    ImagesClient,
    RequestValidationError,
)
from openai_images.testing import LocalImagesServer

from .resources import open_fds

KEY = "test-key"


def generation(index: int) -> GenerateRequest:
    """A cheap request: one small image (a custom size) from a current model."""
    return GenerateRequest(
        prompt=f"item {index}", model="gpt-image-2.5-flare", size="256x256", quality="low"
    )


@pytest.fixture
def server() -> Iterator[LocalImagesServer]:
    """A local Images server on its own loop in a background thread."""
    with LocalImagesServer.in_thread() as running:
        yield running


@pytest.fixture
def client(server: LocalImagesServer) -> Iterator[ImagesClient]:
    """A synchronous client of the local server."""
    with ImagesClient(api_key=KEY, base_url=server.base_url) as opened:
        yield opened


def test_map_yields_every_result(client: ImagesClient) -> None:
    """A plain ``for`` over ``client.map`` gives one result per request."""
    requests = [generation(i) for i in range(12)]
    with client.map(requests, concurrency=4) as results:
        got = list(results)
    assert sorted(result.index for result in got) == list(range(12))
    assert all(result.ok for result in got)
    assert results.summary().ok == 12


def test_map_in_order_from_a_generator_with_progress(client: ImagesClient) -> None:
    """A generator is pulled on the loop's thread; ``on_progress`` sees every item."""
    seen: list[BatchProgress] = []
    threads: set[str] = set()

    def requests() -> Iterator[GenerateRequest]:
        for i in range(8):
            threads.add(threading.current_thread().name)
            yield generation(i)

    with client.map(requests(), ordered=True, on_progress=seen.append) as results:
        got = [result.index for result in results]
    assert got == list(range(8))
    assert [progress.done for progress in seen] == list(range(1, 9))
    assert threading.current_thread().name not in threads


def test_run_batch_writes_outputs_and_reports(client: ImagesClient, tmp_path: Path) -> None:
    """``run_batch`` returns the results in order and the counts, with files written."""
    requests = [generation(i) for i in range(5)]
    requests[2] = GenerateRequest(prompt="p", model="gpt-image-2.5-flare", size="1x1")
    report = client.run_batch(requests, output_dir=tmp_path, concurrency=2)
    assert [result.index for result in report.results] == list(range(5))
    assert isinstance(report.results[2].error, RequestValidationError)
    assert (report.summary.ok, report.summary.failed) == (4, 1)
    assert sorted(path.name for path in tmp_path.glob("*.png")) == [
        "000000.png",
        "000001.png",
        "000003.png",
        "000004.png",
    ]


def test_leaving_early_cancels_the_rest_and_the_client_goes_on(
    client: ImagesClient, server: LocalImagesServer
) -> None:
    """A ``break`` out of the ``with`` stops the batch; the client still works after."""
    with client.map([generation(i) for i in range(500)], concurrency=4) as results:
        for _ in results:
            break
    assert next(results, None) is None
    assert len(server.requests) < 20
    assert client.generate(prompt="after", model="gpt-image-2.5-flare", size="256x256").data


def test_closing_the_client_closes_an_unfinished_map(server: LocalImagesServer) -> None:
    """``client.close()`` cancels a batch still running instead of waiting for it."""
    client = ImagesClient(api_key=KEY, base_url=server.base_url)
    results = client.map([generation(i) for i in range(500)], concurrency=2)
    assert isinstance(results, BatchIterator)
    assert next(results).ok
    client.close()
    assert next(results, None) is None


def test_closing_the_client_from_another_thread_ends_a_waiting_next() -> None:
    """A thread blocked in ``next()`` sees the end of the batch when the client closes."""
    with LocalImagesServer.in_thread(latency=60) as server:
        client = ImagesClient(api_key=KEY, base_url=server.base_url)
        results = client.map([generation(i) for i in range(100)], concurrency=4)
        waiting = threading.Event()

        def close_when_busy() -> None:
            while results.progress().in_flight < 4 and not waiting.wait(0.01):
                pass
            client.close()

        closer = threading.Thread(target=close_when_busy)
        closer.start()
        try:
            assert next(results, None) is None
        finally:
            waiting.set()
            closer.join()
        assert results.progress().done == 0


def test_ctrl_c_while_waiting_cancels_the_batch_and_closes_everything() -> None:
    """A KeyboardInterrupt in ``next()`` cancels the batch at once; nothing stays open."""
    baseline = open_fds()
    with LocalImagesServer.in_thread(latency=60) as server:
        client = ImagesClient(api_key=KEY, base_url=server.base_url)
        results = client.map([generation(i) for i in range(100)], concurrency=6)
        main = threading.main_thread().ident
        assert main is not None
        busy = threading.Event()

        def interrupt() -> None:
            # Once every worker waits on the server, the main thread waits in next().
            while results.progress().in_flight < 6:
                if busy.wait(0.01):
                    return
            busy.wait(0.1)
            signal.pthread_kill(main, signal.SIGINT)

        interrupter = threading.Thread(target=interrupt)
        interrupter.start()
        try:
            with pytest.raises(KeyboardInterrupt):
                next(results)
        finally:
            busy.set()
            interrupter.join()
        assert next(results, None) is None
        assert results.progress().in_flight == 0
        client.close()
    gc.collect()
    assert open_fds() <= baseline
