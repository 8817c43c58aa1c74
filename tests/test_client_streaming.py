"""Streamed generations and edits through the async client: typed events, errors, closing."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import orjson
import pytest
from aiohttp import web

from openai_images import (
    APIConnectionError,
    APIResponseValidationError,
    APITimeoutError,
    AsyncImagesClient,
    AsyncImageStream,
    BadRequestError,
    GenerateRequest,
    ImageEditCompletedEvent,
    ImageEditPartialImageEvent,
    ImageGenCompletedEvent,
    ImageGenPartialImageEvent,
    InputTokensDetails,
    InternalServerError,
    RateLimitError,
    Timeout,
    Usage,
)

from .images import make_png
from .recorder import Recorder, Reply, iterate, sse_handler

pytestmark = pytest.mark.anyio

PARTIAL = make_png(4, 4, shade=10)
FINAL = make_png(4, 4, shade=200)
USAGE = {
    "input_tokens": 10,
    "input_tokens_details": {"text_tokens": 10, "image_tokens": 0},
    "output_tokens": 100,
    "total_tokens": 110,
}


def _event(payload: dict[str, Any], *, name: str | None = None, crlf: bool = False) -> bytes:
    kind = name or str(payload.get("type", "message"))
    text = f"event: {kind}\ndata: {orjson.dumps(payload).decode()}\n\n"
    return (text.replace("\n", "\r\n") if crlf else text).encode()


def _image_event(kind: str, data: bytes, **extra: Any) -> dict[str, Any]:
    return {
        "type": kind,
        "b64_json": base64.b64encode(data).decode(),
        "created_at": 1700000000,
        "size": "1024x1024",
        "quality": "low",
        "background": "opaque",
        "output_format": "png",
        **extra,
    }


def _generation_events() -> list[bytes]:
    return [
        _event(_image_event("image_generation.partial_image", PARTIAL, partial_image_index=0)),
        _event(_image_event("image_generation.partial_image", PARTIAL, partial_image_index=1)),
        _event(_image_event("image_generation.completed", FINAL, usage=USAGE)),
    ]


async def _drain(stream: AsyncImageStream[Any], *, into: list[object]) -> None:
    """Read every event into ``into``, so that those before a failure can be checked."""
    async for event in stream:
        into.append(event)


@pytest.fixture
async def recorder() -> AsyncIterator[Recorder]:
    async with Recorder() as rec:
        yield rec


@pytest.fixture
async def client(recorder: Recorder) -> AsyncIterator[AsyncImagesClient]:
    async with AsyncImagesClient(api_key="sk-test", base_url=recorder.base_url, max_retries=0) as c:
        yield c


async def test_generation_stream_gives_typed_events(
    client: AsyncImagesClient, recorder: Recorder
) -> None:
    """Partial and completed generation events arrive typed, with their images and usage."""
    recorder.reply(Reply(handler=sse_handler(_generation_events())))
    stream = await client.generate(
        prompt="a fox", model="gpt-image-1.5", stream=True, partial_images=2
    )
    assert isinstance(stream, AsyncImageStream)
    assert stream.request_id == "req_stream"
    async with stream:
        events = await iterate(stream)
    assert [type(e) for e in events] == [
        ImageGenPartialImageEvent,
        ImageGenPartialImageEvent,
        ImageGenCompletedEvent,
    ]
    first, second, done = events
    assert isinstance(first, ImageGenPartialImageEvent)
    assert isinstance(second, ImageGenPartialImageEvent)
    assert isinstance(done, ImageGenCompletedEvent)
    assert (first.partial_image_index, second.partial_image_index) == (0, 1)
    assert first.content() == PARTIAL
    assert done.content() == FINAL
    assert done.usage == Usage(
        input_tokens=10,
        output_tokens=100,
        total_tokens=110,
        input_tokens_details=InputTokensDetails(text_tokens=10, image_tokens=0),
    )
    assert done.size == "1024x1024"
    assert done.created_at == 1700000000


async def test_generation_stream_request_asks_for_a_stream(
    client: AsyncImagesClient, recorder: Recorder
) -> None:
    """The request carries ``stream: true`` and accepts ``text/event-stream``."""
    recorder.reply(Reply(handler=sse_handler(_generation_events())))
    async with await client.generate(
        prompt="a fox", model="gpt-image-1.5", stream=True, partial_images=2
    ) as stream:
        await iterate(stream)
    sent = recorder.requests[0]
    assert sent.json == {
        "prompt": "a fox",
        "model": "gpt-image-1.5",
        "stream": True,
        "partial_images": 2,
    }
    assert sent.headers["Accept"] == "text/event-stream"


async def test_edit_stream_gives_typed_events(
    client: AsyncImagesClient, recorder: Recorder
) -> None:
    """A streamed multipart edit sends ``stream=true`` and yields edit events."""
    events = [
        _event(_image_event("image_edit.partial_image", PARTIAL, partial_image_index=0)),
        _event(_image_event("image_edit.completed", FINAL, usage=USAGE)),
    ]
    recorder.reply(Reply(handler=sse_handler(events)))
    stream = await client.edit(
        image=make_png(16, 16), prompt="bluer", model="gpt-image-1.5", stream=True, partial_images=1
    )
    async with stream:
        received = await iterate(stream)
    partial, done = received
    assert isinstance(partial, ImageEditPartialImageEvent)
    assert isinstance(done, ImageEditCompletedEvent)
    assert partial.content() == PARTIAL
    assert done.content() == FINAL
    assert done.usage is not None
    assert done.usage.total_tokens == 110
    fields = recorder.requests[0].fields
    assert fields["stream"] == "true"
    assert fields["partial_images"] == "1"


async def test_the_final_image_may_come_before_the_partials(
    client: AsyncImagesClient, recorder: Recorder
) -> None:
    """Events keep the server's order, even a completed event before a partial one."""
    done, partial = _generation_events()[2], _generation_events()[0]
    recorder.reply(Reply(handler=sse_handler([done, partial])))
    async with await client.generate(prompt="p", model="gpt-image-1.5", stream=True) as stream:
        events = await iterate(stream)
    assert [type(e) for e in events] == [ImageGenCompletedEvent, ImageGenPartialImageEvent]


async def test_stream_decoding_tolerates_what_the_contract_allows(
    client: AsyncImagesClient, recorder: Recorder
) -> None:
    """Comments, CRLF, a misleading ``event:`` line, multi-line data, unknown kinds, [DONE]."""
    partial = _image_event("image_generation.partial_image", PARTIAL, partial_image_index=0)
    completed = orjson.dumps(_image_event("image_generation.completed", FINAL)).decode()
    split_at = completed.index(",") + 1
    chunks = [
        b": keep-alive comment\r\n\r\n",
        _event(partial, name="something.else", crlf=True),
        _event({"type": "image_generation.thinking", "note": "new in a later API"}),
        b"event: image_generation.completed\r\ndata: " + completed[:split_at].encode(),
        b"\r\ndata: " + completed[split_at:].encode() + b"\r\n\r\n",
        b"data: [DONE]\n\n",
        _event(_image_event("image_generation.partial_image", PARTIAL)),
    ]
    recorder.reply(Reply(handler=sse_handler(chunks)))
    async with await client.generate(prompt="p", model="gpt-image-1.5", stream=True) as stream:
        events = await iterate(stream)
    assert [type(e) for e in events] == [ImageGenPartialImageEvent, ImageGenCompletedEvent]
    assert events[1].content() == FINAL


async def test_events_split_byte_by_byte_still_decode(
    client: AsyncImagesClient, recorder: Recorder
) -> None:
    """However the network cuts the bytes, the same events come out."""
    whole = b"".join(_generation_events())
    recorder.reply(Reply(handler=sse_handler([whole[i : i + 7] for i in range(0, len(whole), 7)])))
    async with await client.generate(prompt="p", model="gpt-image-1.5", stream=True) as stream:
        events = await iterate(stream)
    assert len(events) == 3
    assert events[2].content() == FINAL


async def test_an_error_event_raises_after_the_events_before_it(
    client: AsyncImagesClient, recorder: Recorder
) -> None:
    """An ``{"error": ...}`` payload raises its status class, with the stream's request id."""
    error = {
        "error": {
            "message": "slow down",
            "type": "rate_limit_error",
            "param": None,
            "code": "rate_limit_exceeded",
        }
    }
    chunks = [_generation_events()[0], f"data: {orjson.dumps(error).decode()}\n\n".encode()]
    recorder.reply(Reply(handler=sse_handler(chunks)))
    received: list[object] = []
    async with await client.generate(prompt="p", model="gpt-image-1.5", stream=True) as stream:
        with pytest.raises(RateLimitError) as caught:
            await _drain(stream, into=received)
    assert [type(e) for e in received] == [ImageGenPartialImageEvent]
    assert caught.value.request_id == "req_stream"
    assert caught.value.status_code == 429
    assert caught.value.message == "slow down"
    assert caught.value.code == "rate_limit_exceeded"
    assert caught.value.body == error


async def test_an_error_event_of_unknown_type_is_a_server_error(
    client: AsyncImagesClient, recorder: Recorder
) -> None:
    """An error event whose type the client does not know counts as a 500."""
    error = {"error": {"message": "boom", "type": "cosmic_ray"}}
    recorder.reply(
        Reply(handler=sse_handler([f"data: {orjson.dumps(error).decode()}\n\n".encode()]))
    )
    async with await client.generate(prompt="p", model="gpt-image-1.5", stream=True) as stream:
        with pytest.raises(InternalServerError):
            await iterate(stream)


async def test_a_stream_that_ends_early_is_a_connection_error(
    client: AsyncImagesClient, recorder: Recorder
) -> None:
    """A stream that finishes without its completed event raises after its partials."""
    recorder.reply(Reply(handler=sse_handler(_generation_events()[:2])))
    received: list[object] = []
    async with await client.generate(prompt="p", model="gpt-image-1.5", stream=True) as stream:
        with pytest.raises(APIConnectionError) as caught:
            await _drain(stream, into=received)
    assert len(received) == 2
    assert caught.value.request_id == "req_stream"


async def test_a_cut_connection_mid_stream_is_a_connection_error(
    client: AsyncImagesClient, recorder: Recorder
) -> None:
    """A server that drops the connection mid-stream gives APIConnectionError, not aiohttp's."""

    async def cut(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(_generation_events()[0] + b'data: {"type": "image_gen')
        assert request.transport is not None
        request.transport.close()
        return response

    recorder.reply(Reply(handler=cut))
    received: list[object] = []
    async with await client.generate(prompt="p", model="gpt-image-1.5", stream=True) as stream:
        with pytest.raises(APIConnectionError) as caught:
            await _drain(stream, into=received)
    assert [type(e) for e in received] == [ImageGenPartialImageEvent]
    assert type(caught.value).__module__.startswith("openai_images")
    with pytest.raises(StopAsyncIteration):
        await stream.__anext__()


async def test_a_malformed_event_is_a_response_validation_error(
    client: AsyncImagesClient, recorder: Recorder
) -> None:
    """An event whose data is not JSON raises APIResponseValidationError."""
    recorder.reply(Reply(handler=sse_handler([b"data: {not json\n\n"])))
    async with await client.generate(prompt="p", model="gpt-image-1.5", stream=True) as stream:
        with pytest.raises(APIResponseValidationError):
            await iterate(stream)


def _endless_stream(gone: anyio.Event) -> Callable[[web.Request], Any]:
    """A handler sending one event, then pings until the client goes away."""

    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        try:
            await response.write(_generation_events()[0])
            while True:
                await anyio.sleep(0.01)
                await response.write(b": ping\n\n")
        except ConnectionError:
            gone.set()
        return response

    return handler


async def test_leaving_early_closes_the_connection(
    client: AsyncImagesClient, recorder: Recorder
) -> None:
    """Breaking out of ``async with`` drops the connection: the server sees the client go."""
    gone = anyio.Event()
    recorder.reply(Reply(handler=_endless_stream(gone)))
    async with await client.generate(prompt="p", model="gpt-image-1.5", stream=True) as stream:
        async for event in stream:
            assert isinstance(event, ImageGenPartialImageEvent)
            break
    with anyio.fail_after(10):
        await gone.wait()
    with pytest.raises(StopAsyncIteration):
        await stream.__anext__()
    response = await client.generate(prompt="the client still works")
    assert response.request_id == "req_2"


async def test_aclose_without_reading_closes_the_connection(
    client: AsyncImagesClient, recorder: Recorder
) -> None:
    """Closing a stream before reading any event also drops its connection."""
    gone = anyio.Event()
    recorder.reply(Reply(handler=_endless_stream(gone)))
    stream = await client.generate(prompt="p", model="gpt-image-1.5", stream=True)
    await stream.aclose()
    await stream.aclose()
    with anyio.fail_after(10):
        await gone.wait()


async def test_an_error_status_raises_before_any_event(
    client: AsyncImagesClient, recorder: Recorder
) -> None:
    """A 400 to a stream request raises from the call itself, with the API's error."""
    body = {"error": {"message": "bad size", "type": "invalid_request_error", "param": "size"}}
    recorder.reply(Reply(status=400, json=body))
    with pytest.raises(BadRequestError) as caught:
        await client.generate(prompt="p", model="gpt-image-1.5", stream=True)
    assert caught.value.param == "size"
    assert caught.value.request_id == "req_1"


async def test_a_failed_stream_request_is_retried(recorder: Recorder) -> None:
    """A 503 before the stream begins is retried like any request."""
    failure = Reply(
        status=503, json={"error": {"message": "busy"}}, headers={"retry-after-ms": "1"}
    )
    recorder.reply(failure, Reply(handler=sse_handler(_generation_events())))
    async with (
        AsyncImagesClient(api_key="sk-test", base_url=recorder.base_url, max_retries=1) as client,
        await client.generate(prompt="p", model="gpt-image-1.5", stream=True) as stream,
    ):
        events = await iterate(stream)
    assert len(events) == 3
    assert len(recorder.requests) == 2


async def test_send_refuses_a_stream_request(client: AsyncImagesClient) -> None:
    """``send()`` returns whole responses; a stream request must go through send_stream()."""
    with pytest.raises(ValueError, match="send_stream"):
        await client.send(GenerateRequest(prompt="p", model="gpt-image-1.5", stream=True))


async def test_send_stream_takes_a_request_built_beforehand(
    client: AsyncImagesClient, recorder: Recorder
) -> None:
    """``send_stream()`` turns a plain request into a streamed one."""
    recorder.reply(Reply(handler=sse_handler(_generation_events())))
    request = GenerateRequest(prompt="p", model="gpt-image-1.5")
    async with await client.send_stream(request) as stream:
        events = await iterate(stream)
    assert len(events) == 3
    assert recorder.requests[0].json["stream"] is True


async def test_a_stalled_stream_times_out(recorder: Recorder) -> None:
    """A stream that stops sending for longer than the read timeout raises APITimeoutError."""
    release = anyio.Event()

    async def stall(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(_generation_events()[0])
        await release.wait()
        return response

    recorder.reply(Reply(handler=stall))
    tiny = Timeout(connect=5.0, read=0.2, total=None)
    received: list[object] = []
    async with (
        AsyncImagesClient(
            api_key="sk-test", base_url=recorder.base_url, timeout=tiny, max_retries=0
        ) as client,
        await client.generate(prompt="p", model="gpt-image-1.5", stream=True) as stream,
    ):
        with pytest.raises(APITimeoutError):
            await _drain(stream, into=received)
    release.set()
    assert [type(e) for e in received] == [ImageGenPartialImageEvent]
