"""The client refuses requests that break the contract's rules, before any network I/O.

Every invalid request raises :class:`RequestValidationError` naming the offending
``param``, and the recorder sees nothing. Valid ones, unknown models and ``validate=False``
go through untouched.
"""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from openai_images import (
    AsyncImagesClient,
    EditRequest,
    GenerateRequest,
    ImageRef,
    RequestValidationError,
    SvgOptions,
    VariationRequest,
)
from openai_images._converter import request_fields
from openai_images._rules import check

from .images import make_png
from .recorder import Recorder

pytestmark = pytest.mark.anyio

MiB = 1024 * 1024
SQUARE = make_png(64, 64)
ALPHA_MASK = make_png(64, 64, alpha=True)


def _jpeg(width: int, height: int) -> bytes:
    """The start of a baseline JPEG: enough for sniffing its type and size."""
    frame = struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + b"\xff\xc0" + frame + b"\xff\xd9"


def _text_file(tmp_path: Path) -> Path:
    path = tmp_path / "notes.txt"
    path.write_text("this is not an image\n")
    return path


def _big_png(tmp_path: Path) -> Path:
    """A square PNG over dall-e-2's 4 MB limit: a valid header, then a big trailing chunk."""
    path = tmp_path / "big.png"
    path.write_bytes(SQUARE + b"\0" * (5 * MiB))
    return path


Build = Callable[[Path], dict[str, Any]]


def _given(*bases: dict[str, Any], **changes: Any) -> Build:
    """A request's keyword arguments: the bases merged, then the changes."""
    merged: dict[str, Any] = {}
    for base in bases:
        merged.update(base)
    merged.update(changes)
    return lambda _: merged


def _case(endpoint: str, build: Build, param: str, id: str) -> Any:
    return pytest.param(endpoint, build, param, id=id)


GPT1 = {"model": "gpt-image-1.5", "prompt": "p"}
DE2 = {"model": "dall-e-2", "prompt": "p"}
DE3 = {"model": "dall-e-3", "prompt": "p"}
G2 = {"model": "gpt-image-2", "prompt": "p"}
EDIT1 = {"model": "gpt-image-1.5", "prompt": "p", "image": SQUARE}
EDIT_DE2 = {"model": "dall-e-2", "prompt": "p", "image": SQUARE}
DE2V = {"model": "dall-e-2", "image": SQUARE}

INVALID = [
    # n
    _case("generate", _given(GPT1, n=0), "n", "n-zero"),
    _case("generate", _given(GPT1, n=11), "n", "n-eleven"),
    _case("generate", _given(DE2, n=-1), "n", "n-negative-dalle2"),
    _case("generate", _given(DE3, n=2), "n", "dalle3-n-2"),
    _case("generate", _given(prompt="p", model="gpt-image-9", n=11), "n", "n-unknown-model"),
    _case("edit", _given(EDIT1, n=11), "n", "edit-n-eleven"),
    _case("variation", _given(image=SQUARE, n=11), "n", "variation-n-eleven"),
    # sizes
    _case("generate", _given(DE2, size="1792x1024"), "size", "dalle2-size"),
    _case("generate", _given(DE3, size="512x512"), "size", "dalle3-size"),
    _case("generate", _given(GPT1, size="2048x1152"), "size", "gpt1-custom-size"),
    _case("generate", _given(GPT1, size="256x256"), "size", "gpt1-dalle-size"),
    _case("generate", _given(G2, size="1000x1000"), "size", "gpt2-not-16"),
    _case("generate", _given(G2, size="3840x960"), "size", "gpt2-ratio-4-1"),
    _case("generate", _given(G2, size="512x2048"), "size", "gpt2-ratio-1-4"),
    _case("generate", _given(G2, size="4096x2304"), "size", "gpt2-too-wide"),
    _case("generate", _given(G2, size="3840x2176"), "size", "gpt2-too-tall"),
    _case("generate", _given(G2, size="big"), "size", "gpt2-not-a-size"),
    _case("edit", _given(EDIT1, size="1792x1024"), "size", "edit-size"),
    _case("variation", _given(DE2V, size="1024x1536"), "size", "variation-size"),
    # quality, style, background, moderation, formats
    _case("generate", _given(DE2, quality="hd"), "quality", "dalle2-hd"),
    _case("generate", _given(DE3, quality="high"), "quality", "dalle3-high"),
    _case("generate", _given(GPT1, quality="hd"), "quality", "gpt1-hd"),
    _case("generate", _given(GPT1, quality="standard"), "quality", "gpt1-standard"),
    _case("generate", _given(GPT1, style="vivid"), "style", "gpt1-style"),
    _case("generate", _given(DE2, style="natural"), "style", "dalle2-style"),
    _case("generate", _given(DE3, style="dreamy"), "style", "dalle3-bad-style"),
    _case("generate", _given(DE3, background="opaque"), "background", "dalle3-background"),
    _case("generate", _given(GPT1, background="clear"), "background", "gpt1-bad-background"),
    _case("generate", _given(DE2, moderation="low"), "moderation", "dalle2-moderation"),
    _case("generate", _given(GPT1, moderation="high"), "moderation", "gpt1-bad-moderation"),
    _case("generate", _given(DE3, output_format="png"), "output_format", "dalle3-format"),
    _case(
        "generate",
        _given(GPT1, model="gpt-image-1", output_format="gif"),
        "output_format",
        "gpt1-gif",
    ),
    _case("generate", _given(GPT1, response_format="url"), "response_format", "gpt1-url"),
    _case("generate", _given(DE2, response_format="png"), "response_format", "dalle2-bad-rf"),
    _case("edit", _given(EDIT1, response_format="b64_json"), "response_format", "edit-rf"),
    # output_compression and background with output_format
    _case("generate", _given(GPT1, output_compression=50), "output_compression", "comp-alone"),
    _case(
        "generate",
        _given(GPT1, output_compression=50, output_format="png"),
        "output_compression",
        "comp-with-png",
    ),
    _case(
        "generate",
        _given(GPT1, output_compression=101, output_format="jpeg"),
        "output_compression",
        "comp-101",
    ),
    _case("generate", _given(DE3, output_compression=50), "output_compression", "comp-dalle3"),
    _case(
        "generate",
        _given(GPT1, background="transparent", output_format="jpeg"),
        "background",
        "transparent-jpeg",
    ),
    # streaming
    _case("generate", _given(GPT1, partial_images=4), "partial_images", "partial-4"),
    _case("generate", _given(GPT1, partial_images=-1), "partial_images", "partial-negative"),
    _case("generate", _given(DE2, stream=True), "stream", "stream-dalle2"),
    _case("generate", _given(DE3, partial_images=1), "partial_images", "partial-dalle3"),
    _case("edit", _given(EDIT_DE2, stream=True), "stream", "edit-stream-dalle2"),
    # prompts
    _case("generate", _given(model="dall-e-2", prompt="x" * 1001), "prompt", "dalle2-prompt"),
    _case("generate", _given(model="dall-e-3", prompt="x" * 4001), "prompt", "dalle3-prompt"),
    _case("generate", _given(model="gpt-image-1.5", prompt="x" * 32001), "prompt", "gpt1-prompt"),
    _case("generate", _given(prompt=""), "prompt", "empty-prompt"),
    _case("edit", _given(EDIT_DE2, prompt="x" * 1001), "prompt", "edit-dalle2-prompt"),
    # models and endpoints
    _case("edit", _given(EDIT1, model="dall-e-3"), "model", "edit-dalle3"),
    _case("variation", _given(image=SQUARE, model="gpt-image-1.5"), "model", "variation-gpt1"),
    _case("variation", _given(image=SQUARE, model="dall-e-3"), "model", "variation-dalle3"),
    _case(
        "edit",
        _given(model="dall-e-2", prompt="p", images=[ImageRef(file_id="file-1")]),
        "model",
        "json-edit-dalle2",
    ),
    _case(
        "edit",
        _given(EDIT1, model="gpt-image-1-mini", input_fidelity="high"),
        "input_fidelity",
        "fidelity-mini",
    ),
    _case("edit", _given(EDIT_DE2, input_fidelity="low"), "input_fidelity", "fidelity-dalle2"),
    # references
    _case(
        "edit",
        _given(GPT1, images=[ImageRef(image_url="https://e.x/a.png", file_id="file-1")]),
        "images[0]",
        "ref-both",
    ),
    _case("edit", _given(GPT1, images=[ImageRef()]), "images[0]", "ref-none"),
    _case(
        "edit",
        _given(GPT1, images=[ImageRef(file_id="f"), ImageRef(image_url="ftp://e.x/a.png")]),
        "images[1].image_url",
        "ref-ftp",
    ),
    _case(
        "edit",
        _given(GPT1, images=[ImageRef(file_id=f"file-{i}") for i in range(17)]),
        "images",
        "seventeen-refs",
    ),
    _case("edit", _given(GPT1, images=[]), "images", "no-refs"),
    _case(
        "edit",
        _given(GPT1, images=[ImageRef(file_id="f")], mask=ALPHA_MASK),
        "mask",
        "json-edit-uploaded-mask",
    ),
    _case(
        "edit",
        _given(GPT1, image=SQUARE, images=[ImageRef(file_id="f")]),
        "image",
        "uploads-and-refs",
    ),
    _case("edit", _given(EDIT1, mask=ImageRef(file_id="m")), "mask", "upload-with-ref-mask"),
    # uploads
    _case("edit", _given(GPT1), "image", "no-image"),
    _case("edit", _given(GPT1, image=[SQUARE] * 17), "image", "seventeen-images"),
    _case("edit", _given(GPT1, image=[]), "image", "empty-image-list"),
    _case("edit", _given(EDIT_DE2, image=[SQUARE, SQUARE]), "image", "dalle2-two-images"),
    _case("edit", lambda tmp: {**GPT1, "image": _text_file(tmp)}, "image", "text-file"),
    _case(
        "edit",
        lambda tmp: {**GPT1, "image": [SQUARE, _text_file(tmp)]},
        "image[1]",
        "text-file-in-list",
    ),
    _case("edit", lambda tmp: {**GPT1, "image": tmp / "missing.png"}, "image", "missing-file"),
    _case("edit", lambda tmp: {**GPT1, "image": tmp}, "image", "a-directory"),
    _case("variation", lambda tmp: {"image": _text_file(tmp)}, "image", "variation-text-file"),
    _case("variation", _given(DE2V, image=make_png(64, 32)), "image", "variation-not-square"),
    _case("edit", _given(EDIT_DE2, image=make_png(32, 64)), "image", "dalle2-edit-not-square"),
    _case("variation", _given(DE2V, image=_jpeg(64, 64)), "image", "variation-jpeg"),
    _case("edit", lambda tmp: {**EDIT_DE2, "image": _big_png(tmp)}, "image", "dalle2-5mb"),
    _case("variation", lambda tmp: {**DE2V, "image": _big_png(tmp)}, "image", "variation-5mb"),
    _case("edit", _given(EDIT1, mask=make_png(32, 32, alpha=True)), "mask", "mask-size"),
    _case("edit", _given(EDIT1, mask=make_png(64, 64)), "mask", "mask-no-alpha"),
    _case("edit", _given(EDIT1, mask=_jpeg(64, 64)), "mask", "mask-jpeg"),
    _case("edit", _given(EDIT1, mask=b"not an image"), "mask", "mask-not-image"),
]


@pytest.fixture
async def recorder() -> AsyncIterator[Recorder]:
    async with Recorder() as rec:
        yield rec


@pytest.fixture
async def client(recorder: Recorder) -> AsyncIterator[AsyncImagesClient]:
    async with AsyncImagesClient(api_key="sk-test", base_url=recorder.base_url, max_retries=0) as c:
        yield c


async def _call(client: AsyncImagesClient, endpoint: str, kwargs: dict[str, Any]) -> Any:
    if endpoint == "generate":
        return await client.generate(**kwargs)
    if endpoint == "edit":
        return await client.edit(**kwargs)
    return await client.create_variation(**kwargs)


@pytest.mark.parametrize(("endpoint", "build", "param"), INVALID)
async def test_invalid_request_is_refused_before_sending(
    client: AsyncImagesClient,
    recorder: Recorder,
    tmp_path: Path,
    endpoint: str,
    build: Build,
    param: str,
) -> None:
    """Each broken rule raises RequestValidationError naming its param; nothing is sent."""
    with pytest.raises(RequestValidationError) as caught:
        await _call(client, endpoint, build(tmp_path))
    error = caught.value
    assert isinstance(error, ValueError)
    assert error.param == param
    assert param in [v.param for v in error.violations]
    assert str(error).startswith(f"{param}: ")
    assert recorder.requests == []


VALID = [
    pytest.param("generate", _given(G2, size="2048x1152"), id="gpt2-custom-size"),
    pytest.param("generate", _given(G2, size="3840x2160"), id="gpt2-largest"),
    pytest.param("generate", _given(G2, size="2160x3840"), id="gpt2-largest-portrait"),
    pytest.param("generate", _given(G2, size="1536x512"), id="gpt2-ratio-3-1"),
    pytest.param(
        "generate", _given(DE3, quality="hd", style="natural", size="1792x1024"), id="de3"
    ),
    pytest.param(
        "generate",
        _given(GPT1, output_format="webp", output_compression=0, background="transparent"),
        id="webp-transparent",
    ),
    pytest.param("generate", _given(GPT1, stream=True, partial_images=3), id="stream-3"),
    pytest.param("generate", _given(prompt="x" * 1500), id="no-model-no-dalle2-limit"),
    pytest.param("edit", _given(prompt="x" * 1500, image=make_png(64, 32)), id="no-model-edit"),
    pytest.param("variation", _given(image=make_png(64, 32)), id="no-model-variation"),
    pytest.param("generate", _given(GPT1, model="gpt-image-1"), id="retired-still-goes-out"),
    pytest.param("edit", _given(EDIT1, mask=ALPHA_MASK, input_fidelity="high"), id="edit-mask"),
    pytest.param("edit", _given(EDIT_DE2, mask=ALPHA_MASK, size="256x256"), id="dalle2-edit"),
    pytest.param("edit", _given(EDIT1, image=[SQUARE] * 16), id="sixteen-images"),
    pytest.param("edit", _given(EDIT1, image=_jpeg(64, 64)), id="gpt1-jpeg"),
    pytest.param(
        "edit",
        _given(GPT1, images=[ImageRef(image_url="data:image/png;base64,aGk=")]),
        id="json-edit-data-url",
    ),
    pytest.param("variation", _given(image=SQUARE, n=10, size="512x512"), id="variation"),
]


REQUEST_CLASSES: dict[str, Any] = {
    "generate": GenerateRequest,
    "edit": EditRequest,
    "variation": VariationRequest,
}


def _wire_text(value: object) -> str:
    """A field as a multipart body carries it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@pytest.mark.parametrize(("endpoint", "build"), VALID)
async def test_valid_request_is_sent(
    client: AsyncImagesClient,
    recorder: Recorder,
    tmp_path: Path,
    endpoint: str,
    build: Build,
) -> None:
    """Requests at the edges of the rules are sent once, unchanged."""
    kwargs = build(tmp_path)
    result = await _call(client, endpoint, kwargs)
    if kwargs.get("stream"):
        await result.aclose()
    (sent,) = recorder.requests
    expected = request_fields(REQUEST_CLASSES[endpoint](**kwargs))
    if sent.headers["Content-Type"] == "application/json":
        assert sent.json == expected
    else:
        assert sent.fields == {name: _wire_text(value) for name, value in expected.items()}


async def test_unknown_models_skip_the_model_rules(
    client: AsyncImagesClient, recorder: Recorder
) -> None:
    """A model the table does not know goes to the server with whatever values it has."""
    await client.generate(
        prompt="x" * 5000, model="gpt-image-9", quality="hd", style="vivid", size="999x999"
    )
    await client.edit(image=[SQUARE] * 3, prompt="p", model="gpt-image-9", input_fidelity="high")
    assert recorder.requests[0].json == {
        "prompt": "x" * 5000,
        "model": "gpt-image-9",
        "quality": "hd",
        "style": "vivid",
        "size": "999x999",
    }
    assert recorder.requests[1].fields["input_fidelity"] == "high"


async def test_validate_false_sends_invalid_requests_as_they_are(recorder: Recorder) -> None:
    """With ``validate=False`` the server, not the client, judges the request."""
    async with AsyncImagesClient(
        api_key="sk-test", base_url=recorder.base_url, validate=False, max_retries=0
    ) as client:
        await client.generate(prompt="p", model="dall-e-3", n=2, quality="low")
        await client.edit(image=make_png(32, 64), mask=make_png(8, 8), prompt="p", model="dall-e-2")
        await client.create_variation(image=SQUARE, model="gpt-image-1.5")
    first, second, third = recorder.requests
    assert first.json == {"prompt": "p", "model": "dall-e-3", "n": 2, "quality": "low"}
    assert [p.name for p in second.parts if p.filename] == ["image", "mask"]
    assert third.fields == {"model": "gpt-image-1.5"}


async def test_every_violation_is_listed(client: AsyncImagesClient) -> None:
    """One error lists all the broken rules; the first names ``param``."""
    with pytest.raises(RequestValidationError) as caught:
        await client.generate(prompt="p", model="dall-e-3", n=3, size="1x1", quality="low")
    assert [v.param for v in caught.value.violations] == ["n", "size", "quality"]
    assert "and 2 more" in str(caught.value)


MODELS = [
    None,
    "dall-e-2",
    "dall-e-3",
    "gpt-image-1",
    "gpt-image-1.5",
    "gpt-image-1-mini",
    "gpt-image-2",
    "gpt-image-2.5-sunburst",
    "gpt-image-2.6-flare",
]


def _often_unset(*values: Any) -> st.SearchStrategy[Any]:
    """Mostly ``None``, so that a fair share of generated requests is valid."""
    return st.sampled_from([None] * 2 * len(values) + list(values))


generate_requests = st.builds(
    GenerateRequest,
    prompt=st.sampled_from(["a fox", "a fox", "a fox", "", "x" * 1001, "x" * 4001]),
    model=st.sampled_from([*MODELS, "gpt-image-9"]),
    n=_often_unset(-1, 0, 1, 2, 10, 11),
    size=_often_unset("auto", "256x256", "1024x1024", "1792x1024", "2048x1152", "100x100"),
    quality=_often_unset("standard", "hd", "low", "high", "xhigh", "max", "auto", "ultra"),
    background=_often_unset("transparent", "opaque", "auto"),
    moderation=_often_unset("low", "auto"),
    output_format=_often_unset("png", "jpeg", "webp", "gif", "svg"),
    output_compression=_often_unset(-1, 0, 80, 100, 101),
    response_format=_often_unset("url", "b64_json"),
    style=_often_unset("vivid", "natural"),
    user=_often_unset("user-1"),
    safety_identifier=_often_unset("", "hashed-1"),
    complexity=_often_unset("low", "high"),
    frame_count=_often_unset(1, 2, 16, 17),
    frame_duration_ms=_often_unset(-10, 0, 200, 700_000),
    svg=_often_unset(SvgOptions(model="gpt-5.5"), SvgOptions(model="")),
    partial_images=_often_unset(-1, 0, 3, 4),
)


@given(request=generate_requests)
def test_check_never_fails_on_any_combination(request: GenerateRequest) -> None:
    """The rules check returns violations (maybe none) for any field combination."""
    violations = check(request)
    assert all(v.param and v.message for v in violations)


# One recorder and client serve every example; a local round trip has no fixed duration.
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(request=generate_requests)
async def test_client_sends_or_refuses_exactly_as_the_rules_say(
    client: AsyncImagesClient, recorder: Recorder, request: GenerateRequest
) -> None:
    """For any generation the client sends it as is, or refuses it with the first violation."""
    violations = check(request)
    before = len(recorder.requests)
    if violations:
        event("refused")
        with pytest.raises(RequestValidationError) as caught:
            await client.send(request)
        assert caught.value.param == violations[0].param
        assert len(recorder.requests) == before
    else:
        event("sent")
        await client.send(request)
        assert recorder.requests[-1].json == request_fields(request)
        assert len(recorder.requests) == before + 1
