"""Every error after a response's head arrived carries its request id.

The request id (``x-request-id``, else Azure's ``apim-request-id``) is what support asks
for. A stream that stalls after its first partial image, a chunked stream cut mid-event, a
body that stalls or breaks, a body over the size limit: each error keeps it.
"""

from __future__ import annotations

import pytest
from anyio.from_thread import BlockingPortal

from openai_images import (
    APIConnectionError,
    APITimeoutError,
    AsyncImagesClient,
    ImagesClient,
    OpenAIImagesError,
    Timeout,
)
from openai_images._errors import ResponseTooLargeError

from .conftest import CASES, KEY, call, client_options, open_venue
from .hostile import STALL, RawServer, chunk, http_response, sse_event

_QUICK = Timeout(connect=5.0, read=0.2, total=10.0)
_PARTIAL = sse_event(
    {"type": "image_generation.partial_image", "b64_json": "aGk=", "partial_image_index": 0,
     "created_at": 1, "size": "1024x1024", "quality": "low", "background": "opaque",
     "output_format": "png"}
)  # fmt: skip


def _stream_head(id_header: str) -> bytes:
    return http_response(
        "HTTP/1.1 200 OK\nContent-Type: text/event-stream\nTransfer-Encoding: chunked\n"
        f"{id_header}: req_abc123"
    )


async def _stream_error(base_url: str) -> tuple[int, OpenAIImagesError]:
    """The events a stream gave, and the error it ended with."""
    events = 0
    async with AsyncImagesClient(api_key=KEY, base_url=base_url, timeout=_QUICK) as client:
        stream = await client.generate(
            prompt="p", model="gpt-image-1", stream=True, partial_images=2
        )
        try:
            async with stream:
                async for _ in stream:
                    events += 1
        except OpenAIImagesError as error:
            return events, error
    raise AssertionError("the stream ended without an error")


@pytest.mark.anyio
@pytest.mark.parametrize("id_header", ["x-request-id", "apim-request-id"])
@pytest.mark.parametrize(
    ("ending", "expected"),
    [
        ([STALL], APITimeoutError),
        ([b"40\r\ndata: {"], APIConnectionError),
    ],
    ids=["stall-after-the-first-partial-image", "cut-mid-event"],
)
async def test_a_stream_error_keeps_the_request_id(
    id_header: str, ending: list[bytes | object], expected: type[OpenAIImagesError]
) -> None:
    """After one partial image, a stall times out and a cut stream fails, each with the
    request id of the head (Azure's header too).

    (Garbage sent in the same packet as the head fails aiohttp's parse of the head itself,
    so no head ever arrives: no id to keep.)"""
    async with RawServer([_stream_head(id_header), chunk(_PARTIAL), *ending]) as server:
        events, error = await _stream_error(server.base_url)
    assert events == 1
    assert type(error) is expected
    assert error.request_id == "req_abc123"


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ([http_response("HTTP/1.1 200 OK\nContent-Length: 100\nx-request-id: req_abc123",
                        b"{"), STALL], APITimeoutError),
        ([http_response("HTTP/1.1 200 OK\nContent-Length: 100\nx-request-id: req_abc123",
                        b"{")], APIConnectionError),
        ([http_response("HTTP/1.1 200 OK\nContent-Length: 9\nContent-Encoding: gzip\n"
                        "apim-request-id: req_abc123", b"not gzip!")], APIConnectionError),
        ([http_response("HTTP/1.1 200 OK\nContent-Length: 99999999999\n"
                        "x-request-id: req_abc123")], ResponseTooLargeError),
    ],
    ids=["body-stalls", "body-cut", "body-not-gzip", "announced-too-large"],
)  # fmt: skip
async def test_a_body_error_keeps_the_request_id(
    script: list[bytes | object], expected: type[OpenAIImagesError]
) -> None:
    """A whole (not streamed) body that stalls, breaks or is too large: the error of the
    last attempt carries the request id of its head."""
    async with (
        RawServer(script) as server,
        AsyncImagesClient(
            api_key=KEY, base_url=server.base_url, timeout=_QUICK, max_retries=0
        ) as client,
    ):
        with pytest.raises(expected) as caught:
            await client.generate(prompt="p", model="dall-e-2", size="256x256")
    assert type(caught.value) is expected
    assert caught.value.request_id == "req_abc123"


@pytest.mark.anyio
@pytest.mark.parametrize(
    "name", ["reset-mid-body", "body-stalls-mid-way", "stream-cut-after-2-events"]
)
async def test_the_local_servers_mid_body_faults_keep_the_request_id(
    name: str, delays: list[float]
) -> None:
    """The catalogue's faults that strike after the head: the error has the server's id."""
    (case,) = [case for case in CASES if case.name == name]
    async with open_venue(case) as venue:
        async with AsyncImagesClient(**client_options(case, venue)) as client:
            outcome = await call(client, case)
        assert venue.server is not None
        assert outcome.error is not None
        assert outcome.error.request_id == venue.server.requests[-1].request_id


def test_the_sync_stream_keeps_the_request_id(portal: BlockingPortal) -> None:
    """The sync client's stream error carries it too."""
    script = [_stream_head("x-request-id"), chunk(_PARTIAL), STALL]
    with (
        portal.wrap_async_context_manager(RawServer(script)) as server,
        ImagesClient(api_key=KEY, base_url=server.base_url, timeout=_QUICK) as client,
        client.generate(prompt="p", model="gpt-image-1", stream=True) as stream,
        pytest.raises(APITimeoutError) as caught,
    ):
        list(stream)
    assert caught.value.request_id == "req_abc123"
