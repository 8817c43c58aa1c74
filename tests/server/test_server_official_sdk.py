"""The official ``openai`` SDK (3.57.0) against the local server: it cannot tell it from the API.

Every images call the SDK offers, with today's models, fields and formats, streaming
included; the retired models and ``create_variation`` against a ``legacy=True`` server,
and refused by the default one as the API refuses them.
"""

from __future__ import annotations

import base64
import io
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator

import aiohttp
import openai
import pytest
from openai.types import ImagesResponse
from PIL import Image

from openai_images.testing import LocalImagesServer

from ._support import data_url, decode, picture

pytestmark = pytest.mark.anyio

FLARE = "gpt-image-2.5-flare"
SUNBURST = "gpt-image-2.5-sunburst"


@pytest.fixture
async def sdk(server: LocalImagesServer) -> AsyncIterator[openai.AsyncOpenAI]:
    """An official async client for the server, without retries."""
    async with openai.AsyncOpenAI(
        api_key="sk-test", base_url=server.base_url, max_retries=0
    ) as client:
        yield client


@pytest.fixture
async def legacy_sdk(legacy_server: LocalImagesServer) -> AsyncIterator[openai.AsyncOpenAI]:
    """An official async client for a server that still serves the retired models."""
    async with openai.AsyncOpenAI(
        api_key="sk-test", base_url=legacy_server.base_url, max_retries=0
    ) as client:
        yield client


def test_the_pinned_sdk_is_the_one_installed() -> None:
    """The suite speaks to the SDK version pinned in the test extra (3.57.0)."""
    assert openai.__version__ == "3.57.0"


@pytest.mark.parametrize(
    "model",
    [
        "gpt-image-1.5",
        "gpt-image-2",
        "gpt-image-2-2026-04-21",
        SUNBURST,
        "gpt-image-2.5-sunburst-2026-09-08",
        FLARE,
        "gpt-image-2.5-flare-2026-09-08",
        "gpt-image-2.6-sunburst",
        "gpt-image-2.6-flare",
        "gpt-image-1-mini",
        "chatgpt-image-latest",
    ],
)
async def test_generate_with_each_current_model(sdk: openai.AsyncOpenAI, model: str) -> None:
    """Every model the SDK lists as current generates, reporting usage and resolved fields."""
    result = await sdk.images.generate(
        prompt="a harbour", model=model, quality="low", output_format="jpeg"
    )
    assert result.usage is not None
    assert result.usage.total_tokens == result.usage.input_tokens + result.usage.output_tokens
    assert (result.size, result.output_format) == ("1024x1024", "jpeg")
    assert decode((result.data or [])[0].b64_json or "").format == "JPEG"


async def test_generate_without_a_model(sdk: openai.AsyncOpenAI) -> None:
    """No model: no hidden dall-e-2, so a 1,500-character prompt is fine and b64 comes back."""
    result = await sdk.images.generate(prompt="x" * 1500, size="1024x1024", quality="low")
    assert decode((result.data or [])[0].b64_json or "").size == (1024, 1024)


async def test_new_fields_are_honoured_and_echoed(sdk: openai.AsyncOpenAI) -> None:
    """safety_identifier wins over user and is echoed; complexity and xhigh are accepted."""
    result = await sdk.images.generate(
        prompt="a lighthouse",
        model=SUNBURST,
        quality="xhigh",
        complexity="high",
        safety_identifier="hashed-user-1",
        user="legacy-user",
        size="1536x864",
    )
    assert result.safety_identifier == "hashed-user-1"
    assert (result.quality, result.size) == ("xhigh", "1536x864")
    assert result.usage is not None
    assert result.usage.output_tokens_details is not None
    assert result.usage.output_tokens_details.text_tokens > 0  # planning, from complexity
    only_user = await sdk.images.generate(
        prompt="a lighthouse", model=FLARE, quality="max", user="legacy-user"
    )
    assert (only_user.safety_identifier, only_user.quality) == ("legacy-user", "max")


async def test_gif_generation_has_the_asked_frames(sdk: openai.AsyncOpenAI) -> None:
    """output_format gif: a real animated GIF, frame_count frames, rounded frame duration."""
    result = await sdk.images.generate(
        prompt="a spinning top",
        model=FLARE,
        output_format="gif",
        frame_count=5,
        frame_duration_ms=123,
        size="256x256",
    )
    assert result.output_format == "gif"
    with Image.open(io.BytesIO(base64.b64decode((result.data or [])[0].b64_json or ""))) as gif:
        assert (gif.format, gif.n_frames, gif.size) == ("GIF", 5, (256, 256))
        assert gif.info["duration"] == 120


async def test_svg_generation_is_a_well_formed_document(sdk: openai.AsyncOpenAI) -> None:
    """output_format svg with svg options: an SVG document, and the author's own usage."""
    result = await sdk.images.generate(
        prompt="a logo <with> & odd \x00 characters",
        model=SUNBURST,
        output_format="svg",
        svg={"model": "gpt-5.5", "reasoning": {"effort": "high"}},
        size="512x512",
    )
    assert result.output_format == "svg"
    document = ET.fromstring(base64.b64decode((result.data or [])[0].b64_json or ""))
    assert document.tag == "{http://www.w3.org/2000/svg}svg"
    assert result.svg_usage is not None
    assert result.svg_usage.model == "gpt-5.5"
    assert result.svg_usage.reasoning_tokens > 0


async def test_edit_with_several_images_and_a_mask(
    sdk: openai.AsyncOpenAI, server: LocalImagesServer
) -> None:
    """A list of images goes as image[] parts; the server reads them and the mask."""
    result = await sdk.images.edit(
        image=[("a.png", picture(64, 64), "image/png"), ("b.png", picture(64, 64), "image/png")],
        mask=("mask.png", picture(64, 64, alpha=True), "image/png"),
        prompt="a basket of both",
        model="gpt-image-1.5",
        quality="low",
        size="1536x1024",
        input_fidelity="high",
    )
    assert decode((result.data or [])[0].b64_json or "").size == (1536, 1024)
    assert [part for part, *_ in server.requests[-1].files] == ["image[]", "image[]", "mask"]


async def test_markup_edit_draws_over_the_first_image(
    sdk: openai.AsyncOpenAI, server: LocalImagesServer
) -> None:
    """markup is a file part; the server overlays it on the first image before editing."""
    plain = await sdk.images.edit(
        image=("a.png", picture(64, 64), "image/png"), prompt="tidy it", model=FLARE
    )
    marked = await sdk.images.edit(
        image=("a.png", picture(64, 64), "image/png"),
        markup=("markup.png", picture(64, 64, alpha=True, colour=(255, 0, 0)), "image/png"),
        prompt="tidy it",
        model=FLARE,
        safety_identifier="u-7",
    )
    assert [part for part, *_ in server.requests[-1].files] == ["image", "markup"]
    assert marked.safety_identifier == "u-7"
    assert (marked.data or [])[0].b64_json != (plain.data or [])[0].b64_json


async def test_svg_edit_sends_bracketed_fields(
    sdk: openai.AsyncOpenAI, server: LocalImagesServer
) -> None:
    """A multipart edit's svg options arrive as svg[model] and svg[reasoning][effort]."""
    result = await sdk.images.edit(
        image=("a.png", picture(64, 64), "image/png"),
        prompt="as a vector drawing",
        model=SUNBURST,
        output_format="svg",
        svg={"model": "gpt-5.5", "reasoning": {"effort": "low"}},
        complexity="low",
    )
    assert result.output_format == "svg"
    ET.fromstring(base64.b64decode((result.data or [])[0].b64_json or ""))
    assert server.requests[-1].fields["svg"] == {"model": "gpt-5.5", "reasoning": {"effort": "low"}}


async def test_gif_edit(sdk: openai.AsyncOpenAI) -> None:
    """An edit can be a GIF too, with the default nine frames."""
    result = await sdk.images.edit(
        image=("a.png", picture(64, 64), "image/png"),
        prompt="make it dance",
        model=FLARE,
        output_format="gif",
        size="256x256",
    )
    with Image.open(io.BytesIO(base64.b64decode((result.data or [])[0].b64_json or ""))) as gif:
        assert gif.n_frames == 9


async def test_json_edit_with_data_urls(sdk: openai.AsyncOpenAI) -> None:
    """A JSON edit by data: URL reference, posted through the SDK's raw post."""
    result = await sdk.post(
        "/images/edits",
        body={
            "model": "gpt-image-2",
            "prompt": "repaint it",
            "quality": "low",
            "images": [{"image_url": data_url(picture(32, 32))}],
            "mask": {"image_url": data_url(picture(32, 32, alpha=True))},
        },
        cast_to=ImagesResponse,
    )
    assert decode((result.data or [])[0].b64_json or "").size == (1024, 1024)


async def test_streaming_generate(sdk: openai.AsyncOpenAI) -> None:
    """A streamed generation yields typed partial and completed events, the id echoed."""
    stream = await sdk.images.generate(
        prompt="a kite",
        model=FLARE,
        quality="low",
        stream=True,
        partial_images=2,
        safety_identifier="s-1",
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
    assert completed.safety_identifier == "s-1"
    assert decode(base64.b64decode(completed.b64_json)).size == (1024, 1024)


async def test_streaming_edit(sdk: openai.AsyncOpenAI) -> None:
    """A streamed edit yields image_edit events."""
    stream = await sdk.images.edit(
        image=("a.png", picture(64, 64), "image/png"),
        prompt="add stars",
        model="gpt-image-1.5",
        quality="low",
        stream=True,
        partial_images=1,
        user="u-2",
    )
    events = [event async for event in stream]
    assert [event.type for event in events] == ["image_edit.partial_image", "image_edit.completed"]
    assert events[-1].safety_identifier == "u-2"


async def test_errors_map_onto_the_sdk_exceptions(sdk: openai.AsyncOpenAI) -> None:
    """A broken rule is a BadRequestError naming the param, with the request id."""
    with pytest.raises(openai.BadRequestError) as caught:
        await sdk.images.generate(prompt="x", model=SUNBURST, output_format="svg", n=2)
    assert (caught.value.param, caught.value.code) == ("n", "invalid_value")
    assert (caught.value.request_id or "").startswith("req_")


@pytest.mark.parametrize(
    ("model", "successor"),
    [("gpt-image-1", "gpt-image-2.5-sunburst or gpt-image-2.5-flare"), ("dall-e-3", "gpt-image")],
)
async def test_retired_models_are_refused_naming_the_successor(
    sdk: openai.AsyncOpenAI, model: str, successor: str
) -> None:
    """Today's server refuses a retired model with a 404 that says what to use instead."""
    with pytest.raises(openai.NotFoundError) as caught:
        await sdk.images.generate(prompt="x", model=model)
    assert (caught.value.param, caught.value.code) == ("model", "model_not_found")
    assert successor in caught.value.message


async def test_variations_are_refused_by_todays_server(sdk: openai.AsyncOpenAI) -> None:
    """create_variation reaches a retired endpoint: a 404 pointing at edits."""
    with (
        pytest.warns(DeprecationWarning, match="deprecated"),
        pytest.raises(openai.NotFoundError, match="edits"),
    ):
        await sdk.images.create_variation(image=("a.png", picture(64, 64), "image/png"))


async def test_legacy_server_still_serves_variations(legacy_sdk: openai.AsyncOpenAI) -> None:
    """create_variation (deprecated in the SDK) gets its images from a legacy server."""
    with pytest.warns(DeprecationWarning, match="deprecated"):
        result = await legacy_sdk.images.create_variation(
            image=("a.png", picture(64, 64), "image/png"),
            n=2,
            size="256x256",
            response_format="b64_json",
        )
    assert len(result.data or []) == 2


async def test_legacy_server_serves_dall_e_urls(
    legacy_sdk: openai.AsyncOpenAI, http: aiohttp.ClientSession
) -> None:
    """A url result (DALL·E's default) parses, and the link serves the PNG."""
    result = await legacy_sdk.images.generate(prompt="a cat", model="dall-e-2", size="256x256")
    url = (result.data or [])[0].url
    assert url is not None
    async with http.get(url) as response:
        assert decode(await response.read()).size == (256, 256)


async def test_legacy_server_serves_gpt_image_1(legacy_sdk: openai.AsyncOpenAI) -> None:
    """gpt-image-1 still works where a deployment serves it."""
    result = await legacy_sdk.images.generate(prompt="a cat", model="gpt-image-1", quality="low")
    assert result.output_format == "png"


async def test_a_wrong_key_is_an_authentication_error() -> None:
    """With api_keys set, the SDK sees AuthenticationError for another key."""
    async with (
        LocalImagesServer(api_keys=["right"]) as server,
        openai.AsyncOpenAI(api_key="wrong", base_url=server.base_url, max_retries=0) as client,
    ):
        with pytest.raises(openai.AuthenticationError):
            await client.images.generate(prompt="x", model="gpt-image-1.5")
