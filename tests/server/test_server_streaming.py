"""Streamed generations and edits: server-sent events in the contract's shapes."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from openai_images.testing import LocalImagesServer

from ._support import assert_matches, data_url, decode, form, parse_sse, picture

pytestmark = pytest.mark.anyio

GPT = {"model": "gpt-image-1.5", "quality": "low", "stream": True}


async def stream(
    http: aiohttp.ClientSession, server: LocalImagesServer, endpoint: str, **kwargs: Any
) -> list[tuple[str | None, Any]]:
    """POST a streaming request; check the content type and return its events."""
    async with http.post(f"{server.base_url}/images/{endpoint}", **kwargs) as response:
        assert response.status == 200, await response.text()
        assert response.content_type == "text/event-stream"
        assert response.headers["x-request-id"].startswith("req_")
        return parse_sse(await response.text())


async def test_a_generation_streams_partials_then_the_completed_image(
    server: LocalImagesServer, http: aiohttp.ClientSession
) -> None:
    """partial_images partial events, in order, then the completed event with usage."""
    body = {"prompt": "a kite", "partial_images": 3, "output_format": "webp", **GPT}
    events = await stream(http, server, "generations", json=body)
    names = [name for name, _ in events]
    assert names == ["image_generation.partial_image"] * 3 + ["image_generation.completed"]
    for name, data in events:
        assert data["type"] == name
        assert_matches(data, "ImageGenStreamEvent")
        assert (data["size"], data["quality"], data["output_format"]) == (
            "1024x1024",
            "low",
            "webp",
        )
        assert decode(data["b64_json"]).format == "WEBP"
    assert [data["partial_image_index"] for _, data in events[:-1]] == [0, 1, 2]
    completed = events[-1][1]
    assert_matches(completed, "ImageGenCompletedEvent")
    assert completed["usage"]["output_tokens"] == 272 + 3 * 100


async def test_no_partials_means_only_the_completed_event(
    server: LocalImagesServer, http: aiohttp.ClientSession
) -> None:
    """Without partial_images the stream is one completed event."""
    events = await stream(http, server, "generations", json={"prompt": "a kite", **GPT})
    assert [name for name, _ in events] == ["image_generation.completed"]


async def test_a_stream_carries_one_image_whatever_n(
    server: LocalImagesServer, http: aiohttp.ClientSession
) -> None:
    """n is accepted with stream, and the stream carries the first image only."""
    body = {"prompt": "a kite", "n": 3, "partial_images": 1, **GPT}
    events = await stream(http, server, "generations", json=body)
    assert [name for name, _ in events] == [
        "image_generation.partial_image",
        "image_generation.completed",
    ]
    assert events[-1][1]["usage"]["output_tokens"] == 272 + 100


async def test_a_multipart_edit_streams_edit_events(
    server: LocalImagesServer, http: aiohttp.ClientSession
) -> None:
    """Edits stream image_edit.* events, and the final image is the asked size."""
    files = [("image", "a.png", picture(64, 64), "image/png")]
    fields = {key: str(value).lower() for key, value in GPT.items()}
    fields |= {"prompt": "add a moon", "partial_images": "2", "size": "1024x1536"}
    events = await stream(http, server, "edits", data=form(fields, files))
    assert [name for name, _ in events] == ["image_edit.partial_image"] * 2 + [
        "image_edit.completed"
    ]
    for _, data in events:
        assert_matches(data, "ImageEditStreamEvent")
    assert decode(events[-1][1]["b64_json"]).size == (1024, 1536)
    assert server.requests[-1].fields["stream"] is True


async def test_a_json_edit_streams_too(
    server: LocalImagesServer, http: aiohttp.ClientSession
) -> None:
    """A JSON edit by data: URL reference streams the same events."""
    body = {"prompt": "add a moon", "images": [{"image_url": data_url(picture(32, 32))}], **GPT}
    events = await stream(http, server, "edits", json=body | {"partial_images": 1})
    assert [name for name, _ in events] == ["image_edit.partial_image", "image_edit.completed"]
    assert_matches(events[-1][1], "ImageEditCompletedEvent")
