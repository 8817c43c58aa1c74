"""The official ``openai`` SDK against the local server: it cannot tell it from the API."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

import aiohttp
import openai
import pytest
from openai.types import ImagesResponse

from openai_images.testing import LocalImagesServer

from ._support import data_url, decode, picture

pytestmark = pytest.mark.anyio


@pytest.fixture
async def sdk(server: LocalImagesServer) -> AsyncIterator[openai.AsyncOpenAI]:
    """An official async client for the server, without retries."""
    async with openai.AsyncOpenAI(
        api_key="sk-test", base_url=server.base_url, max_retries=0
    ) as client:
        yield client


async def test_generate(sdk: openai.AsyncOpenAI) -> None:
    """images.generate returns decodable images of the asked size."""
    result = await sdk.images.generate(
        prompt="a harbour at dawn",
        model="dall-e-2",
        size="256x256",
        n=2,
        response_format="b64_json",
    )
    assert [decode(image.b64_json or "").size for image in result.data or []] == [(256, 256)] * 2


async def test_generate_gpt_reports_usage(sdk: openai.AsyncOpenAI) -> None:
    """A GPT image model's answer parses with its usage and resolved fields."""
    result = await sdk.images.generate(
        prompt="a harbour", model="gpt-image-1", quality="low", output_format="jpeg"
    )
    assert result.usage is not None
    assert result.usage.total_tokens == result.usage.input_tokens + result.usage.output_tokens
    assert (result.size, result.output_format) == ("1024x1024", "jpeg")
    assert decode((result.data or [])[0].b64_json or "").format == "JPEG"


async def test_edit_with_several_images_and_a_mask(
    sdk: openai.AsyncOpenAI, server: LocalImagesServer
) -> None:
    """A list of images goes as image[] parts; the server reads them and the mask."""
    result = await sdk.images.edit(
        image=[("a.png", picture(64, 64), "image/png"), ("b.png", picture(64, 64), "image/png")],
        mask=("mask.png", picture(64, 64, alpha=True), "image/png"),
        prompt="a basket of both",
        model="gpt-image-1",
        quality="low",
        size="1536x1024",
    )
    assert decode((result.data or [])[0].b64_json or "").size == (1536, 1024)
    assert [part for part, *_ in server.requests[-1].files] == ["image[]", "image[]", "mask"]


async def test_json_edit_with_data_urls(sdk: openai.AsyncOpenAI) -> None:
    """A JSON edit by data: URL reference, posted through the SDK's raw post."""
    result = await sdk.post(
        "/images/edits",
        body={
            "model": "gpt-image-1",
            "prompt": "repaint it",
            "quality": "low",
            "images": [{"image_url": data_url(picture(32, 32))}],
            "mask": {"image_url": data_url(picture(32, 32, alpha=True))},
        },
        cast_to=ImagesResponse,
    )
    assert decode((result.data or [])[0].b64_json or "").size == (1024, 1024)


async def test_variation(sdk: openai.AsyncOpenAI) -> None:
    """create_variation (deprecated in the SDK) still gets its images."""
    with pytest.warns(DeprecationWarning, match="deprecated"):
        result = await sdk.images.create_variation(
            image=("a.png", picture(64, 64), "image/png"),
            n=2,
            size="256x256",
            response_format="b64_json",
        )
    assert len(result.data or []) == 2


async def test_url_result_downloads(sdk: openai.AsyncOpenAI, http: aiohttp.ClientSession) -> None:
    """A url result (DALL·E's default) parses, and the link serves the PNG."""
    result = await sdk.images.generate(prompt="a cat", model="dall-e-2", size="256x256")
    url = (result.data or [])[0].url
    assert url is not None
    async with http.get(url) as response:
        assert decode(await response.read()).size == (256, 256)


async def test_streaming_generate(sdk: openai.AsyncOpenAI) -> None:
    """A streamed generation yields typed partial and completed events."""
    stream = await sdk.images.generate(
        prompt="a kite", model="gpt-image-1", quality="low", stream=True, partial_images=2
    )
    events = [event async for event in stream]
    assert [event.type for event in events] == [
        "image_generation.partial_image",
        "image_generation.partial_image",
        "image_generation.completed",
    ]
    completed = events[-1]
    assert completed.type == "image_generation.completed"
    assert completed.usage.output_tokens == 472
    assert decode(base64.b64decode(completed.b64_json)).size == (1024, 1024)


async def test_streaming_edit(sdk: openai.AsyncOpenAI) -> None:
    """A streamed edit yields image_edit events."""
    stream = await sdk.images.edit(
        image=("a.png", picture(64, 64), "image/png"),
        prompt="add stars",
        model="gpt-image-1",
        quality="low",
        stream=True,
        partial_images=1,
    )
    assert [event.type async for event in stream] == [
        "image_edit.partial_image",
        "image_edit.completed",
    ]


async def test_errors_map_onto_the_sdk_exceptions(sdk: openai.AsyncOpenAI) -> None:
    """A broken rule is a BadRequestError naming the param, with the request id."""
    with pytest.raises(openai.BadRequestError) as caught:
        await sdk.images.generate(prompt="x", model="dall-e-3", n=2)
    assert (caught.value.param, caught.value.code) == ("n", "invalid_value")
    assert (caught.value.request_id or "").startswith("req_")


async def test_a_wrong_key_is_an_authentication_error() -> None:
    """With api_keys set, the SDK sees AuthenticationError for another key."""
    async with (
        LocalImagesServer(api_keys=["right"]) as server,
        openai.AsyncOpenAI(api_key="wrong", base_url=server.base_url, max_retries=0) as client,
    ):
        with pytest.raises(openai.AuthenticationError):
            await client.images.generate(prompt="x", size="256x256")
