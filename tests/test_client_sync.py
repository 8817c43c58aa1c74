"""``ImagesClient``: the blocking facade, from plain code, many threads and a running loop.

The recorder runs on its own event loop in a background thread, so that a test blocking
in the sync client never blocks the server.
"""

from __future__ import annotations

import base64
import gc
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import anyio
import orjson
import pytest
from aiohttp import web
from anyio.from_thread import start_blocking_portal

from openai_images import (
    BadRequestError,
    Image,
    ImageEditCompletedEvent,
    ImageGenCompletedEvent,
    ImageGenPartialImageEvent,
    ImagesClient,
    ImageStream,
    RequestValidationError,
)

from .images import make_png
from .recorder import Recorder, Reply, sse_handler

PNG = make_png(8, 8)


def _forget(objects: list[object]) -> None:
    """Drop the last references to ``objects`` and collect them, cycles included."""
    objects.clear()
    gc.collect()


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    with (
        start_blocking_portal(name="recorder") as portal,
        portal.wrap_async_context_manager(Recorder()) as rec,
    ):
        yield rec


@pytest.fixture
def client(recorder: Recorder) -> Iterator[ImagesClient]:
    with ImagesClient(api_key="sk-test", base_url=recorder.base_url, max_retries=0) as c:
        yield c


def _event(kind: str, **extra: Any) -> bytes:
    payload = {"type": kind, "b64_json": base64.b64encode(PNG).decode(), **extra}
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def _endless_stream(gone: threading.Event) -> Callable[[web.Request], Any]:
    """A handler sending one event, then pings until the client goes away."""

    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        try:
            await response.write(_event("image_generation.partial_image"))
            while True:
                await anyio.sleep(0.01)
                await response.write(b": ping\n\n")
        except ConnectionError:
            gone.set()
        return response

    return handler


def test_generate(client: ImagesClient, recorder: Recorder) -> None:
    """A blocking generation returns the typed response."""
    response = client.generate(prompt="a fox", model="gpt-image-1.5")
    assert response.data[0].content() == b"hi"
    assert response.request_id == "req_1"
    assert recorder.requests[0].json == {"prompt": "a fox", "model": "gpt-image-1.5"}


def test_edit(client: ImagesClient, recorder: Recorder) -> None:
    """A blocking edit uploads its image as multipart."""
    client.edit(image=PNG, prompt="bluer", model="gpt-image-1.5")
    (image,) = [p for p in recorder.requests[0].parts if p.filename]
    assert (image.name, image.content) == ("image", PNG)


def test_create_variation(client: ImagesClient, recorder: Recorder) -> None:
    """A blocking variation posts to /images/variations."""
    client.create_variation(image=PNG, n=2)
    assert recorder.requests[0].path == "/v1/images/variations"
    assert recorder.requests[0].fields == {"n": "2"}


def test_download_follows_redirects_without_the_key(
    client: ImagesClient, recorder: Recorder
) -> None:
    """``download`` fetches a url result, following a redirect, never sending the key."""
    recorder.reply(
        Reply(status=302, body=b"", headers={"Location": "/files/real.png"}),
        Reply(body=PNG, content_type="image/png"),
    )
    url = recorder.base_url.removesuffix("/v1") + "/files/signed.png?sig=1"
    assert client.download(Image(url=url)) == PNG
    assert [r.path for r in recorder.requests] == ["/files/signed.png", "/files/real.png"]
    assert recorder.requests[0].query == {"sig": "1"}
    assert all("Authorization" not in r.headers for r in recorder.requests)


def test_download_refuses_an_image_without_url(client: ImagesClient) -> None:
    """A b64_json result has nothing to download."""
    with pytest.raises(ValueError, match="no url"):
        client.download(Image(b64_json="aGk="))


def test_errors_reach_the_caller_unchanged(client: ImagesClient, recorder: Recorder) -> None:
    """API errors and validation errors raise the same classes as in the async client."""
    recorder.reply(Reply(status=400, json={"error": {"message": "no", "param": "prompt"}}))
    with pytest.raises(BadRequestError) as caught:
        client.generate(prompt="p")
    assert caught.value.param == "prompt"
    with pytest.raises(RequestValidationError):
        client.generate(prompt="p", model="dall-e-3", n=2)
    assert len(recorder.requests) == 1


def test_eight_threads_share_one_client(client: ImagesClient, recorder: Recorder) -> None:
    """Concurrent calls from eight threads all succeed on one client."""
    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(lambda i: client.generate(prompt=f"p{i}", n=1), range(8)))
    assert all(r.data[0].content() == b"hi" for r in responses)
    assert sorted(r.json["prompt"] for r in recorder.requests) == [f"p{i}" for i in range(8)]


@pytest.mark.anyio
async def test_works_inside_a_running_event_loop(recorder: Recorder) -> None:
    """Called straight from async code (a notebook cell), the sync client still works."""
    recorder.reply(Reply(), Reply(handler=sse_handler([_event("image_generation.completed")])))
    with ImagesClient(api_key="sk-test", base_url=recorder.base_url) as client:
        response = client.generate(prompt="from a notebook")
        with client.generate(prompt="p", model="gpt-image-1.5", stream=True) as stream:
            events = list(stream)
    assert response.request_id == "req_1"
    assert [type(e) for e in events] == [ImageGenCompletedEvent]


def test_stream_iteration(client: ImagesClient, recorder: Recorder) -> None:
    """A sync stream yields typed events and carries the request id."""
    recorder.reply(
        Reply(
            handler=sse_handler(
                [
                    _event("image_generation.partial_image", partial_image_index=0),
                    _event("image_generation.completed"),
                ]
            )
        )
    )
    with client.generate(prompt="p", model="gpt-image-1.5", stream=True) as stream:
        assert isinstance(stream, ImageStream)
        assert stream.request_id == "req_stream"
        events = list(stream)
    assert [type(e) for e in events] == [ImageGenPartialImageEvent, ImageGenCompletedEvent]
    assert events[1].content() == PNG


def test_edit_stream_iteration(client: ImagesClient, recorder: Recorder) -> None:
    """A sync streamed edit yields edit events."""
    recorder.reply(Reply(handler=sse_handler([_event("image_edit.completed")])))
    with client.edit(image=PNG, prompt="p", model="gpt-image-1.5", stream=True) as stream:
        (event,) = list(stream)
    assert isinstance(event, ImageEditCompletedEvent)


def test_stream_early_close_drops_the_connection(client: ImagesClient, recorder: Recorder) -> None:
    """Leaving a sync stream's ``with`` early closes its connection; iteration then stops."""
    gone = threading.Event()
    recorder.reply(Reply(handler=_endless_stream(gone)))
    with client.generate(prompt="p", model="gpt-image-1.5", stream=True) as stream:
        first = next(stream)
    assert isinstance(first, ImageGenPartialImageEvent)
    assert gone.wait(timeout=10)
    assert list(stream) == []
    assert client.generate(prompt="still usable").request_id == "req_2"


def test_with_closes_and_use_after_close_raises(recorder: Recorder) -> None:
    """After ``with`` the client is closed: calls raise RuntimeError; close() is idempotent."""
    with ImagesClient(api_key="sk-test", base_url=recorder.base_url) as client:
        client.generate(prompt="p")
    with pytest.raises(RuntimeError, match="closed"):
        client.generate(prompt="p")
    client.close()
    assert len(recorder.requests) == 1


def test_close_stops_the_background_thread(recorder: Recorder) -> None:
    """The loop thread starts on first use and is gone once the client is closed."""
    before = set(threading.enumerate())
    client = ImagesClient(api_key="sk-test", base_url=recorder.base_url)
    assert set(threading.enumerate()) == before
    client.generate(prompt="p")
    assert set(threading.enumerate()) > before
    client.close()
    assert set(threading.enumerate()) == before


def test_closing_an_unused_client_is_fine() -> None:
    """A client never used starts no loop and closes without fuss."""
    client = ImagesClient(api_key="sk-test", base_url="http://127.0.0.1:9/v1")
    client.close()
    with pytest.raises(RuntimeError):
        client.generate(prompt="p")


def test_a_client_never_closed_warns(recorder: Recorder) -> None:
    """A used sync client dropped without close() gives a ResourceWarning."""
    client = ImagesClient(api_key="sk-test", base_url=recorder.base_url)
    client.generate(prompt="p")
    # Kept to shut the background loop down cleanly once the warning is seen.
    runner, inner = client._runner, client.async_client
    dropped = [client]
    del client
    with pytest.warns(ResourceWarning, match="never closed"):
        _forget(dropped)
    runner.stop(inner.aclose)
