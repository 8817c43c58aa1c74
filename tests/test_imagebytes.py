"""One result image as bytes: decoded, or downloaded without the key."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from openai_images import APIResponseValidationError, AsyncImagesClient, Image
from openai_images._imagebytes import image_bytes

from .images import make_png
from .recorder import Recorder, Reply

pytestmark = pytest.mark.anyio

PNG = make_png(8, 8)


class NoDownloads:
    """A downloader that must not be used."""

    async def download(self, url: str, /) -> bytes:
        raise AssertionError(f"downloaded {url}")


@pytest.fixture
async def recorder() -> AsyncIterator[Recorder]:
    """A scripted server that records what arrives."""
    async with Recorder() as rec:
        yield rec


async def test_b64_json_is_decoded_without_a_download() -> None:
    """A b64_json result is its decoded bytes."""
    image = Image(b64_json=base64.b64encode(PNG).decode())
    assert await image_bytes(image, downloader=NoDownloads()) == PNG


async def test_a_large_payload_decodes_the_same_off_the_loop() -> None:
    """Past the threshold the decoding moves to a worker thread, with the same result."""
    data = bytes(range(256)) * 4096  # 1 MiB: 1.3 MiB of base64
    image = Image(b64_json=base64.b64encode(data).decode())
    assert await image_bytes(image, downloader=NoDownloads()) == data


async def test_a_url_is_downloaded_without_the_key(recorder: Recorder) -> None:
    """A url result goes through the client's download road, with no Authorization."""
    recorder.reply(Reply(body=PNG, content_type="image/png"))
    url = recorder.base_url.removesuffix("/v1") + "/files/signed.png?sig=1"
    async with AsyncImagesClient(api_key="sk-secret-key-1", base_url=recorder.base_url) as client:
        assert await image_bytes(Image(url=url), downloader=client) == PNG
    (sent,) = recorder.requests
    assert sent.path == "/files/signed.png"
    assert "Authorization" not in sent.headers


async def test_an_image_with_neither_is_a_response_error() -> None:
    """Neither b64_json nor url: the response broke the contract."""
    with pytest.raises(APIResponseValidationError, match=r"image 2 .* neither b64_json nor url"):
        await image_bytes(Image(), downloader=NoDownloads(), position=2)


@given(st.text(alphabet="abc=!-_ ", min_size=1, max_size=12))
async def test_bad_base64_is_a_response_error_or_bytes(text: str) -> None:
    """Any b64_json text gives bytes or an APIResponseValidationError, nothing else."""
    outcome: bytes | str
    try:
        outcome = await image_bytes(Image(b64_json=text), downloader=NoDownloads())
    except APIResponseValidationError as error:
        outcome = str(error)
    assert isinstance(outcome, bytes) or "is not valid base64" in outcome
