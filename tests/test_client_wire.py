"""What the async client puts on the wire for each endpoint and input kind.

Today's fields are compared with what the official SDK (3.57.0) sends to the same recorder.
"""

from __future__ import annotations

import functools
import io
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import openai
import pytest

from openai_images import (
    AsyncImagesClient,
    EditRequest,
    GenerateRequest,
    ImageRef,
    SvgOptions,
    SvgReasoning,
    __version__,
)
from openai_images._config import Timeout
from openai_images._converter import request_fields
from openai_images._inputs import resolve_image
from openai_images._multipart import build_multipart
from openai_images._transport import Body, Transport

from .images import make_png
from .recorder import Recorded, Recorder

pytestmark = pytest.mark.anyio


@pytest.fixture
async def recorder() -> AsyncIterator[Recorder]:
    async with Recorder() as rec:
        yield rec


@pytest.fixture
async def client(recorder: Recorder) -> AsyncIterator[AsyncImagesClient]:
    async with AsyncImagesClient(
        api_key="sk-test-key-123456", base_url=recorder.base_url, max_retries=0
    ) as c:
        yield c


async def test_generate_sends_json_without_unset_fields(
    client: AsyncImagesClient, recorder: Recorder
) -> None:
    """A generation posts JSON with exactly the fields given, under their API names."""
    await client.generate(prompt="a fox", model="gpt-image-1.5", n=2, quality="low")
    (sent,) = recorder.requests
    assert sent.method == "POST"
    assert sent.path == "/v1/images/generations"
    assert sent.headers["Content-Type"] == "application/json"
    assert sent.json == {"prompt": "a fox", "model": "gpt-image-1.5", "n": 2, "quality": "low"}


async def test_headers_name_the_library_and_carry_the_settings(recorder: Recorder) -> None:
    """Authorization, organization, project, default and extra headers all go out."""
    async with AsyncImagesClient(
        api_key="sk-abc",
        base_url=recorder.base_url,
        organization="org-1",
        project="proj-1",
        default_headers={"X-Team": "imaging"},
    ) as client:
        await client.generate(prompt="p", extra_headers={"X-Trace": "t1"})
    headers = recorder.requests[0].headers
    assert headers["Authorization"] == "Bearer sk-abc"
    assert headers["OpenAI-Organization"] == "org-1"
    assert headers["OpenAI-Project"] == "proj-1"
    assert headers["X-Team"] == "imaging"
    assert headers["X-Trace"] == "t1"
    assert headers["User-Agent"].startswith(f"openai-images/{__version__} Python/")
    assert "aiohttp/" in headers["User-Agent"]


async def test_extra_query_and_body_are_merged(
    client: AsyncImagesClient, recorder: Recorder
) -> None:
    """extra_query lands in the URL and extra_body in the JSON."""
    await client.generate(prompt="p", extra_query={"debug": "1"}, extra_body={"future": True})
    sent = recorder.requests[0]
    assert sent.query == {"debug": "1"}
    assert sent.json == {"prompt": "p", "future": True}


async def test_single_image_edit_uses_the_image_part(
    client: AsyncImagesClient, recorder: Recorder, tmp_path: Path
) -> None:
    """One input goes as the part ``image`` with its real content type and a length."""
    path = tmp_path / "photo.png"
    path.write_bytes(make_png(32, 32))
    await client.edit(image=path, prompt="make it blue", model="gpt-image-1.5", n=1)
    sent = recorder.requests[0]
    assert sent.path == "/v1/images/edits"
    assert sent.headers["Content-Type"].startswith("multipart/form-data; boundary=")
    assert int(sent.headers["Content-Length"]) == len(sent.body)
    files = [p for p in sent.parts if p.filename]
    assert [(p.name, p.filename, p.content_type) for p in files] == [
        ("image", "photo.png", "image/png")
    ]
    assert files[0].content == path.read_bytes()
    assert sent.fields == {"prompt": "make it blue", "model": "gpt-image-1.5", "n": "1"}


async def test_every_input_kind_and_sixteen_images_with_a_mask(
    client: AsyncImagesClient, recorder: Recorder, tmp_path: Path
) -> None:
    """Paths, PathLike, bytes, files and tuples all upload as ``image[]`` parts in order."""
    contents = [make_png(16 + i, 16 + i) for i in range(16)]
    for i, data in enumerate(contents):
        (tmp_path / f"in{i}.png").write_bytes(data)
    # A real binary file object, opened off the event loop as the library itself would.
    raw = await anyio.to_thread.run_sync(functools.partial(open, tmp_path / "in3.png", "rb"))
    with raw as opened:
        inputs: list[object] = [
            str(tmp_path / "in0.png"),
            tmp_path / "in1.png",
            contents[2],
            opened,
            ("named.png", contents[4]),
            ("typed.png", io.BytesIO(contents[5]), "image/png"),
            ("from-path.png", os.fspath(tmp_path / "in6.png")),
        ]
        inputs += [tmp_path / f"in{i}.png" for i in range(7, 16)]
        mask = make_png(16, 16, alpha=True)
        await client.edit(
            image=inputs,  # type: ignore[arg-type]  # a list of every kind on purpose
            mask=("mask.png", mask),
            prompt="a collage",
            model="gpt-image-1.5",
        )
    files = [p for p in recorder.requests[0].parts if p.filename]
    assert [p.name for p in files] == ["image[]"] * 16 + ["mask"]
    assert [p.content for p in files[:16]] == contents
    assert files[4].filename == "named.png"
    assert files[16].content == mask
    assert {p.content_type for p in files} == {"image/png"}


async def test_json_edit_sends_references(client: AsyncImagesClient, recorder: Recorder) -> None:
    """Edits by reference go as application/json with images and mask objects."""
    await client.edit(
        images=[ImageRef(image_url="https://example.com/a.png"), ImageRef(file_id="file-9")],
        mask=ImageRef(file_id="file-mask"),
        prompt="merge",
        model="gpt-image-1.5",
    )
    sent = recorder.requests[0]
    assert sent.headers["Content-Type"] == "application/json"
    assert sent.json == {
        "prompt": "merge",
        "model": "gpt-image-1.5",
        "images": [{"image_url": "https://example.com/a.png"}, {"file_id": "file-9"}],
        "mask": {"file_id": "file-mask"},
    }


async def test_variation_sends_image_and_fields(
    client: AsyncImagesClient, recorder: Recorder
) -> None:
    """A variation is multipart with ``image`` and its text fields."""
    await client.create_variation(image=make_png(64, 64), n=2, size="256x256", user="u1")
    sent = recorder.requests[0]
    assert sent.path == "/v1/images/variations"
    assert sent.fields == {"n": "2", "size": "256x256", "user": "u1"}
    (image,) = [p for p in sent.parts if p.filename]
    assert (image.name, image.filename, image.content_type) == ("image", "image.png", "image/png")


async def test_response_exposes_request_id_and_headers(client: AsyncImagesClient) -> None:
    """The typed response carries the request id and the raw headers."""
    response = await client.generate(prompt="p")
    assert response.request_id == "req_1"
    assert response.headers["x-request-id"] == "req_1"
    assert response.data[0].content() == b"hi"


# -- today's fields, against the official SDK's own wire format --------------------------

SVG = {"model": "gpt-5.5", "reasoning": {"effort": "low"}}


def _raw_parts(sent: Recorded) -> list[bytes]:
    """Each multipart part's bytes (headers and content) as sent, in sorted order.

    The SDK orders its fields by name and ours follow the request class: the API reads a
    form by part name, so the parts must match byte for byte but their order may differ.
    """
    boundary = sent.headers["Content-Type"].split("boundary=", 1)[1].encode()
    pieces = sent.body.split(b"--" + boundary)
    assert pieces[0] == b""
    assert pieces[-1] == b"--\r\n"
    return sorted(pieces[1:-1])


@pytest.fixture
async def sdk(recorder: Recorder) -> AsyncIterator[openai.AsyncOpenAI]:
    """The official SDK, pointed at the same recorder."""
    async with openai.AsyncOpenAI(
        api_key="sk-test-key-123456", base_url=recorder.base_url, max_retries=0
    ) as client:
        yield client


NEW_FIELDS: dict[str, Any] = {
    "model": "gpt-image-2.5-sunburst",
    "quality": "xhigh",
    "complexity": "high",
    "safety_identifier": "hashed-1",
    "user": "legacy-user",
}


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param(NEW_FIELDS, id="new-fields"),
        pytest.param({**NEW_FIELDS, "output_format": "svg", "svg": SVG, "n": 1}, id="svg"),
        pytest.param(
            {**NEW_FIELDS, "output_format": "gif", "frame_count": 4, "frame_duration_ms": 120},
            id="gif",
        ),
        pytest.param({**NEW_FIELDS, "quality": "max", "size": "1536x864"}, id="max-custom-size"),
    ],
)
async def test_generation_json_equals_the_sdks(
    client: AsyncImagesClient, sdk: openai.AsyncOpenAI, recorder: Recorder, fields: dict[str, Any]
) -> None:
    """Our generation body is the SDK's, field for field, nested svg object included."""
    await sdk.images.generate(prompt="a fox", **fields)
    svg = fields.get("svg")
    options = {**fields, "svg": _svg_options(svg)} if svg else fields
    await client.send(GenerateRequest(prompt="a fox", **options))
    theirs, ours = recorder.requests
    assert ours.json == theirs.json


def _svg_options(svg: dict[str, Any]) -> SvgOptions:
    reasoning = svg.get("reasoning")
    return SvgOptions(
        model=svg["model"],
        reasoning=SvgReasoning(effort=reasoning["effort"]) if reasoning else None,
    )


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param(NEW_FIELDS, id="new-fields"),
        pytest.param({**NEW_FIELDS, "output_format": "svg", "svg": SVG}, id="svg-bracketed"),
        pytest.param({**NEW_FIELDS, "output_format": "svg", "svg": {"model": "m"}}, id="svg-bare"),
        pytest.param(
            {**NEW_FIELDS, "output_format": "gif", "frame_count": 16, "frame_duration_ms": 0},
            id="gif",
        ),
    ],
)
async def test_edit_multipart_equals_the_sdks(
    client: AsyncImagesClient, sdk: openai.AsyncOpenAI, recorder: Recorder, fields: dict[str, Any]
) -> None:
    """Our multipart edit has the SDK's parts byte for byte: svg[model], svg[reasoning][effort]."""
    images = [("a.png", make_png(16, 16), "image/png"), ("b.png", make_png(8, 8), "image/png")]
    await sdk.images.edit(image=images, prompt="a fox", **fields)
    svg = fields.get("svg")
    options = {**fields, "svg": _svg_options(svg)} if svg else fields
    await client.send(EditRequest(image=list(images), prompt="a fox", **options))
    theirs, ours = recorder.requests
    assert _raw_parts(ours) == _raw_parts(theirs)
    if svg:
        assert any(part.name == "svg[model]" for part in ours.parts)


async def test_markup_part_equals_the_sdks(sdk: openai.AsyncOpenAI, recorder: Recorder) -> None:
    """markup is a file part with a sniffed PNG type, as the SDK sends it with its type given.

    The clients resolve markup like any input (in the Sender); here the body is laid out
    the same way from the request, its files resolved with the library's own resolver.
    """
    image, markup = make_png(16, 16), make_png(16, 16, alpha=True)
    await sdk.images.edit(
        image=("a.png", image, "image/png"),
        markup=("markup.png", markup, "image/png"),
        prompt="tidy",
        model="gpt-image-2.5-flare",
    )
    request = EditRequest(
        image=("a.png", image),
        markup=("markup.png", markup),
        prompt="tidy",
        model="gpt-image-2.5-flare",
    )
    assert request.markup is not None
    sources = [
        ("image", await resolve_image(request.image_inputs[0], param="image")),
        ("markup", await resolve_image(request.markup, param="markup")),
    ]
    assert sources[1][1].info.content_type == "image/png"
    body = build_multipart(fields=request_fields(request), files=sources, boundary="b")
    sent = b"".join([chunk async for chunk in body.stream()])
    ours = Recorded(
        method="POST",
        path="/v1/images/edits",
        query={},
        headers={"Content-Type": body.content_type},
        body=sent,
    )
    assert _raw_parts(ours) == _raw_parts(recorder.requests[0])


async def test_user_and_safety_identifier_both_pass_through(
    client: AsyncImagesClient, recorder: Recorder
) -> None:
    """The deprecated user and its successor go out side by side: the API picks."""
    await client.send(GenerateRequest(prompt="p", user="u1", safety_identifier="s1"))
    assert recorder.requests[0].json == {"prompt": "p", "user": "u1", "safety_identifier": "s1"}


@pytest.mark.parametrize("method", ["POST", "GET", "DELETE"])
async def test_a_request_without_a_body_claims_no_content_type(
    recorder: Recorder, method: str
) -> None:
    """A body-less request (a batch's cancel POST) has no Content-Type, not aiohttp's guess;
    one with a body has its own."""
    transport = Transport()
    try:
        url = f"{recorder.base_url}/batches/b_1/cancel"
        await transport.send(method, url, headers={}, timeout=Timeout())
        body = Body(content_type="application/json", data=b"{}")
        await transport.send(method, url, headers={}, body=body, timeout=Timeout())
    finally:
        await transport.aclose()
    bare, with_body = recorder.requests
    assert "Content-Type" not in bare.headers
    assert with_body.headers["Content-Type"] == "application/json"
