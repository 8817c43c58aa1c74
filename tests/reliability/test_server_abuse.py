"""The local server stays fair and bounded under hostile bodies (issue 13, findings 7 and 8).

A multipart body of ten thousand tiny parts once held the event loop for seconds while it was
parsed and refused; a 4 KB PNG claiming 6000x6000 pixels cost 300 MiB to decode, and four
such edits at once over a gigabyte that stayed. Now a form is refused at its first unknown
field or past ``MAX_FORM_PARTS`` parts, parsing yields to other requests between parts, a
request's inputs may not claim more than ``MAX_REQUEST_PIXELS``, and the decodes of all
requests together share ``MAX_DECODING_PIXELS``.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import pytest

from openai_images.testing import LocalImagesServer, _images
from openai_images.testing._intake import MAX_FORM_PARTS
from tests.server._support import AUTH, assert_error, bomb_png, form, picture


@pytest.fixture
async def server() -> AsyncIterator[LocalImagesServer]:
    """A local Images server with default settings."""
    async with LocalImagesServer() as running:
        yield running


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """A raw session that sends the server's test key."""
    async with aiohttp.ClientSession(headers=AUTH) as session:
        yield session


def _many_parts(count: int, *, first: tuple[str, str] | None = None) -> aiohttp.FormData:
    data = aiohttp.FormData(default_to_multipart=True)
    if first is not None:
        data.add_field(*first)
    data.add_field("prompt", "a cat")
    data.add_field("model", "gpt-image-1.5")
    for _ in range(count):
        data.add_field("n", "1")
    data.add_field("image", picture(16, 16), filename="a.png", content_type="image/png")
    return data


@pytest.mark.anyio
async def test_a_form_of_many_tiny_parts_is_refused_past_the_bound(
    server: LocalImagesServer, http: aiohttp.ClientSession
) -> None:
    """10,000 text parts: refused as too many parts, in the API's error shape."""
    async with http.post(f"{server.base_url}/images/edits", data=_many_parts(10_000)) as reply:
        assert reply.status == 400
        body = await reply.json()
    assert_error(body, param=None, code="invalid_value")
    assert f"at most {MAX_FORM_PARTS}" in body["error"]["message"]


@pytest.mark.anyio
async def test_an_unknown_field_is_refused_at_once(
    server: LocalImagesServer, http: aiohttp.ClientSession
) -> None:
    """The first unknown name ends the request, whatever follows it."""
    data = _many_parts(40, first=("zzz", "1"))
    async with http.post(f"{server.base_url}/images/edits", data=data) as reply:
        assert reply.status == 400
        assert_error(await reply.json(), param="zzz", code="unknown_parameter")


@pytest.mark.anyio
async def test_ten_thousand_unknown_fields_cost_one_part(
    server: LocalImagesServer, http: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reported abuse: 10,000 distinct unknown text fields (600 KB) were all read, then
    structured into 10,000 errors, holding the event loop for seconds. Now reading stops at
    the first, and a normal request sent meanwhile is answered."""
    from openai_images.testing import _intake

    read = 0
    real_read_text = _intake._read_text

    async def counting(*args: Any, **kwargs: Any) -> str:
        nonlocal read
        read += 1
        return await real_read_text(*args, **kwargs)

    monkeypatch.setattr(_intake, "_read_text", counting)
    data = aiohttp.FormData(default_to_multipart=True)
    data.add_field("prompt", "a cat")
    for number in range(10_000):
        data.add_field(f"field_{number:05d}", "x" * 40)
    statuses: list[int] = []

    async def abuse() -> None:
        async with http.post(f"{server.base_url}/images/edits", data=data) as reply:
            assert_error(await reply.json(), param="field_00000", code="unknown_parameter")

    async def normal() -> None:
        body = {"prompt": "a cat", "model": "gpt-image-1.5", "size": "1024x1024"}
        async with http.post(f"{server.base_url}/images/generations", json=body) as reply:
            statuses.append(reply.status)

    async with anyio.create_task_group() as group:
        group.start_soon(abuse)
        group.start_soon(normal)
    assert read == 1  # the prompt; the first unknown name is refused before its text is read
    assert statuses == [200]


@pytest.mark.anyio
async def test_inputs_claiming_too_many_pixels_are_refused(
    server: LocalImagesServer, http: aiohttp.ClientSession
) -> None:
    """Two tiny PNGs that claim 6000x6000 each are 72 million pixels: refused before any
    pixel is decoded, in the API's error shape."""
    bomb = bomb_png(6000, 6000)
    data = form(
        {"prompt": "a cat", "model": "gpt-image-1.5"},
        [("image[]", f"{i}.png", bomb, "image/png") for i in range(2)],
    )
    async with http.post(f"{server.base_url}/images/edits", data=data) as reply:
        assert reply.status == 400
        body = await reply.json()
    assert_error(body, param="image", code="invalid_value")
    assert f"{_images.MAX_REQUEST_PIXELS:,}" in body["error"]["message"]


def test_a_large_input_is_scaled_down_as_it_is_decoded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the scaled copy outlives the decode, and the decode holds its pixels from the
    process-wide budget while it runs."""
    held: list[int] = []

    class Recording(_images._PixelBudget):
        def hold(self, pixels: int) -> contextlib.AbstractContextManager[None]:
            held.append(pixels)
            return super().hold(pixels)

    monkeypatch.setattr(_images, "_LOAD_PIXELS", 64 * 64)
    monkeypatch.setattr(_images, "_DECODING", Recording(1000))
    path = tmp_path / "big.png"
    path.write_bytes(picture(300, 200))
    loaded = _images._load(path)
    assert loaded.width * loaded.height <= 64 * 64
    assert loaded.mode == "RGBA"
    assert held == [300 * 200]


def test_decodes_wait_for_room_in_the_pixel_budget() -> None:
    """Two decodes that together exceed the budget run one after the other; an image larger
    than the whole budget still goes, alone."""
    budget = _images._PixelBudget(100)
    first_in = threading.Event()
    release_first = threading.Event()
    events: list[str] = []

    def first() -> None:
        with budget.hold(60):
            events.append("first in")
            first_in.set()
            release_first.wait(5)
            events.append("first out")

    def second() -> None:
        first_in.wait(5)
        with budget.hold(60):
            events.append("second in")

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    first_in.wait(5)
    # The second decode cannot enter while the first holds 60 of 100 pixels.
    threads[1].join(0.05)
    assert events == ["first in"]
    release_first.set()
    for thread in threads:
        thread.join(5)
    assert events == ["first in", "first out", "second in"]
    with budget.hold(10_000):  # larger than the total: waits for all, then goes alone
        pass
