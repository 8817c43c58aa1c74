"""The client and the local server agree on every request: both accept it or both refuse it.

Hypothesis builds requests over every field of the three endpoints, valid and not. The
client's verdict is what a validating client does with the request: send it, or refuse it
with :class:`RequestValidationError` before any I/O (never any other exception). The
server's verdict is its answer to the same request sent by a client with
``validate=False``. They must agree, and a refusal must name the same first ``param``.

Only a model the rules table does not know is judged differently, on purpose: the client
sends it as is and the server (like the API) decides. So is a retired model: the client
checks it against the rules it had and sends it, and today's server refuses it (the
agreement runs on a ``legacy=True`` server, which still serves them). Those cases have
tests of their own.

The server's image rendering is replaced by a stub returning one tiny PNG per image: the
verdicts are all decided before rendering, and real 3840x2160 images would only cost time.
"""

from __future__ import annotations

import base64
import io
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from PIL import Image as PILImage

import openai_images.testing._server
from openai_images import (
    AsyncImagesClient,
    BadRequestError,
    EditRequest,
    GenerateRequest,
    ImageRef,
    NotFoundError,
    RequestValidationError,
    SvgOptions,
    SvgReasoning,
    VariationRequest,
)
from openai_images._requests import ImageRequest
from openai_images._rules import MODELS, ModelRules, check
from openai_images.testing import LocalImagesServer
from openai_images.testing._images import RenderJob

from .conftest import KEY

pytestmark = pytest.mark.anyio

EXAMPLES = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _encode(width: int, height: int, *, fmt: str = "PNG", alpha: bool = False) -> bytes:
    buffer = io.BytesIO()
    image = PILImage.new("RGBA" if alpha else "RGB", (width, height), (20, 90, 200))
    if alpha:
        image.putalpha(0)
    image.save(buffer, format=fmt)
    return buffer.getvalue()


TINY = _encode(1, 1)
SQUARE = ("square.png", _encode(16, 16))
SQUARE_ALPHA = ("square-alpha.png", _encode(16, 16, alpha=True))
WIDE = ("wide.png", _encode(32, 16))
JPEG = ("photo.jpg", _encode(16, 16, fmt="JPEG"))
WEBP = ("picture.webp", _encode(16, 16, fmt="WEBP"))
MASK = ("mask.png", _encode(16, 16, alpha=True))
MASK_WRONG_SIZE = ("mask-small.png", _encode(8, 8, alpha=True))
MASK_OPAQUE = ("mask-opaque.png", _encode(16, 16))
MASK_JPEG = ("mask.jpg", _encode(16, 16, fmt="JPEG"))


def _data_url(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode()


_sizes = sorted({size for rules in MODELS.values() for size in rules.sizes})
# Custom sizes around gpt-image-2's rules: multiples of 16, ratio, 3840x2160 at most.
_custom = [f"{w}x{h}" for w in (16, 1024, 2560, 3840, 3856) for h in (16, 1024, 1440, 2160, 2176)]
ANY: dict[str, list[Any]] = {
    "model": [*sorted(MODELS), None],
    "n": [-1, 0, 1, 2, 10, 11],
    "size": [*_sizes, *_custom, "1024X1024", "1024x", "0x0", "big"],
    "quality": ["standard", "hd", "low", "medium", "high", "xhigh", "max", "auto"],
    "response_format": ["url", "b64_json"],
    "background": ["transparent", "opaque", "auto"],
    "moderation": ["low", "auto"],
    "output_format": ["png", "jpeg", "webp", "gif", "svg"],
    "output_compression": [-1, 0, 50, 100, 101],
    "style": ["vivid", "natural"],
    "input_fidelity": ["high", "low"],
    "stream": [True, False],
    "partial_images": [-1, 0, 1, 3, 4],
    "prompt": ["a red fox in the snow", "x" * 1000, "x" * 1001, "x" * 4001, "", "é\u0000🦊"],
    "user": ["user-42"],
    "safety_identifier": ["", "hashed-user-42"],
    "complexity": ["low", "medium", "high", "extreme"],
    "frame_count": [-1, 1, 2, 9, 16, 17],
    "frame_duration_ms": [-10, 0, 123, 200, 700_000],
    "svg": [
        SvgOptions(model="gpt-5.5"),
        SvgOptions(model="gpt-5.5", reasoning=SvgReasoning(effort="high")),
        SvgOptions(model="gpt-5.5", reasoning=SvgReasoning()),
        SvgOptions(model=""),
    ],
}


def _allowed(rules: ModelRules | None, name: str) -> list[Any]:
    """What the model accepts for a field (unknown: everything)."""
    if rules is None:
        return ANY[name]
    by_field: dict[str, Any] = {
        "n": [1, rules.n_max] if rules.n_max > 1 else [1],
        "size": list(rules.sizes) + (["2048x1152", "3840x2160"] if rules.custom_sizes else []),
        "quality": rules.qualities,
        "response_format": rules.response_formats,
        "background": rules.backgrounds,
        "moderation": rules.moderations,
        "output_format": rules.output_formats,
        "output_compression": [0, 100] if rules.output_formats else [],
        "style": rules.styles,
        "input_fidelity": rules.input_fidelities,
        "stream": [True, False] if rules.streaming else [False],
        "partial_images": [0, 3] if rules.streaming else [],
        "prompt": ["a red fox in the snow", "x" * rules.prompt_max_length],
        "user": ["user-42"],
        "safety_identifier": ["hashed-user-42"],
        "complexity": rules.complexities,
        "frame_count": [2, 16] if "gif" in rules.output_formats else [],
        "frame_duration_ms": [0, 200] if "gif" in rules.output_formats else [],
        "svg": [SvgOptions(model="gpt-5.5")] if "svg" in rules.output_formats else [],
    }
    return sorted(by_field[name], key=repr)


def _field(draw: st.DrawFn, rules: ModelRules | None, name: str) -> Any:
    """Mostly unset or what the model takes; now and then anything at all."""
    if name != "prompt" and draw(st.booleans()):
        return None
    if draw(st.integers(0, 7)) == 0:
        return draw(st.sampled_from(ANY[name]))
    allowed = _allowed(rules, name)
    return draw(st.sampled_from(allowed)) if allowed else None


def _fields(draw: st.DrawFn, names: list[str], *, endpoint: str) -> dict[str, Any]:
    able = [name for name, rules in MODELS.items() if endpoint in rules.endpoints]
    model = draw(st.sampled_from([None, *able, *able] + ANY["model"]))
    # No hidden default: without a model, only the rules every model shares apply.
    rules = MODELS.get(model) if model is not None else None
    fields = {"model": model, **{name: _field(draw, rules, name) for name in names}}
    if fields.get("output_format") in ("gif", "svg") and draw(st.booleans()):
        # Often enough to matter, the output kind's own fields come along.
        extra = (
            ["frame_count", "frame_duration_ms"] if fields["output_format"] == "gif" else ["svg"]
        )
        fields |= {name: _field(draw, rules, name) for name in extra}
    return fields


_COMMON = ["n", "size", "response_format", "user"]
_GPT = ["prompt", "quality", "background", "moderation", "output_format",
        "output_compression", "stream", "partial_images", "safety_identifier",
        "complexity", "frame_count", "frame_duration_ms", "svg"]  # fmt: skip


@st.composite
def generations(draw: st.DrawFn) -> GenerateRequest:
    return GenerateRequest(**_fields(draw, [*_COMMON, *_GPT, "style"], endpoint="generations"))


_UPLOADS = [SQUARE, SQUARE_ALPHA, WIDE, JPEG, WEBP]


@st.composite
def uploaded_edits(draw: st.DrawFn) -> EditRequest:
    fields = _fields(draw, [*_COMMON, *_GPT, "input_fidelity"], endpoint="edits")
    image: Any = draw(
        st.one_of(
            st.sampled_from(_UPLOADS),
            st.lists(st.sampled_from(_UPLOADS), min_size=1, max_size=3),
            st.just([SQUARE] * 17),
        )
    )
    mask = draw(st.sampled_from([None, None, MASK, MASK_WRONG_SIZE, MASK_OPAQUE, MASK_JPEG]))
    return EditRequest(**fields, image=image, mask=mask)


_REF = ImageRef(image_url=_data_url(SQUARE[1]))


@st.composite
def referenced_edits(draw: st.DrawFn) -> EditRequest:
    fields = _fields(draw, [*_COMMON, *_GPT, "input_fidelity"], endpoint="edits")
    images = [_REF] * draw(st.sampled_from([0, 1, 1, 2, 16, 17]))
    mask = draw(st.sampled_from([None, ImageRef(image_url=_data_url(MASK[1]))]))
    return EditRequest(**fields, images=images, mask=mask)


@st.composite
def variations(draw: st.DrawFn) -> VariationRequest:
    fields = _fields(draw, _COMMON, endpoint="variations")
    return VariationRequest(**fields, image=draw(st.sampled_from(_UPLOADS)))


def _render(job: RenderJob) -> list[bytes]:
    return [TINY] * job.n


def _render_partials(job: RenderJob, *, index: int, count: int) -> list[bytes]:
    return [TINY] * count


@pytest.fixture
async def server(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[LocalImagesServer]:
    """A legacy local server (the retired models too) whose images cost nothing to make.

    The verdicts all come before the rendering.
    """
    monkeypatch.setattr(openai_images.testing._server, "render", _render)
    monkeypatch.setattr(openai_images.testing._server, "render_partials", _render_partials)
    async with LocalImagesServer(max_recorded=10, legacy=True) as running:
        yield running


@pytest.fixture
async def clients(
    server: LocalImagesServer,
) -> AsyncIterator[tuple[AsyncImagesClient, AsyncImagesClient]]:
    """A validating client and a non-validating one, neither retrying."""
    async with (
        AsyncImagesClient(api_key=KEY, base_url=server.base_url, max_retries=0) as checked,
        AsyncImagesClient(
            api_key=KEY, base_url=server.base_url, max_retries=0, validate=False
        ) as unchecked,
    ):
        yield checked, unchecked


async def _send(client: AsyncImagesClient, request: ImageRequest) -> None:
    """Send as a user would: a stream is read to its end."""
    if getattr(request, "stream", None):
        assert not isinstance(request, VariationRequest)
        async with await client.send_stream(request) as stream:
            events = [event async for event in stream]
        assert events
    else:
        response = await client.send(request)
        assert response.data


async def _verdicts(
    server: LocalImagesServer,
    clients: tuple[AsyncImagesClient, AsyncImagesClient],
    request: ImageRequest,
) -> tuple[str | None, str | None]:
    """The first refused param of the client and of the server (``None``: accepted)."""
    checked, unchecked = clients
    before = len(server.requests)
    try:
        await _send(checked, request)
    except RequestValidationError as refusal:
        # Refused before any I/O: the server never heard of it.
        assert len(server.requests) == before
        client_says = refusal.param
    else:
        # Sent, and the server took it: both accept.
        return None, None
    try:
        await _send(unchecked, request)
    except BadRequestError as error:
        return client_says, error.param
    return client_says, None


def _check_agreement(client_says: str | None, server_says: str | None) -> None:
    event("refused" if client_says else "accepted")
    assert client_says == server_says, f"client: {client_says!r}, server: {server_says!r}"


@EXAMPLES
@given(request=generations())
async def test_generations_are_judged_alike(
    server: LocalImagesServer,
    clients: tuple[AsyncImagesClient, AsyncImagesClient],
    request: GenerateRequest,
) -> None:
    """Any generation is accepted by both or refused by both, for the same param."""
    client_says, server_says = await _verdicts(server, clients, request)
    violations = check(request)
    assert client_says == (violations[0].param if violations else None)
    _check_agreement(client_says, server_says)


@EXAMPLES
@given(request=uploaded_edits())
async def test_uploaded_edits_are_judged_alike(
    server: LocalImagesServer,
    clients: tuple[AsyncImagesClient, AsyncImagesClient],
    request: EditRequest,
) -> None:
    """Any multipart edit, with its images and mask, is judged alike by both."""
    _check_agreement(*await _verdicts(server, clients, request))


@EXAMPLES
@given(request=referenced_edits())
async def test_edits_by_reference_are_judged_alike(
    server: LocalImagesServer,
    clients: tuple[AsyncImagesClient, AsyncImagesClient],
    request: EditRequest,
) -> None:
    """Any JSON edit by ``data:`` URL reference is judged alike by both."""
    _check_agreement(*await _verdicts(server, clients, request))


@EXAMPLES
@given(request=variations())
async def test_variations_are_judged_alike(
    server: LocalImagesServer,
    clients: tuple[AsyncImagesClient, AsyncImagesClient],
    request: VariationRequest,
) -> None:
    """Any variation is judged alike by both."""
    _check_agreement(*await _verdicts(server, clients, request))


@pytest.mark.parametrize(
    "request_",
    [
        GenerateRequest(prompt="a fox", model="gpt-image-9"),
        EditRequest(prompt="a fox", model="dall-e-9", image=SQUARE),
        VariationRequest(model="dall-e-9", image=SQUARE),
    ],
    ids=["generation", "edit", "variation"],
)
async def test_an_unknown_model_is_left_to_the_server(
    server: LocalImagesServer,
    clients: tuple[AsyncImagesClient, AsyncImagesClient],
    request_: ImageRequest,
) -> None:
    """The client sends a model it does not know (the API grows); the server refuses it."""
    checked, _ = clients
    with pytest.raises(BadRequestError) as refused:
        await checked.send(request_)
    assert refused.value.param == "model"
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    "request_",
    [
        GenerateRequest(prompt="a fox", model="gpt-image-1"),
        GenerateRequest(prompt="a fox", model="dall-e-3"),
        EditRequest(prompt="a fox", model="dall-e-2", image=SQUARE),
        VariationRequest(model="dall-e-2", image=SQUARE),
        VariationRequest(image=SQUARE),
    ],
    ids=["gpt-image-1", "dall-e-3", "dall-e-2-edit", "dall-e-2-variation", "variation"],
)
async def test_todays_server_has_the_last_word_on_retired_models(
    monkeypatch: pytest.MonkeyPatch, request_: ImageRequest
) -> None:
    """The client sends a valid request for a retired model or endpoint; today's server refuses.

    The refusal is a 404 that names the retirement and what to use instead.
    """
    monkeypatch.setattr(openai_images.testing._server, "render", _render)
    async with (
        LocalImagesServer(max_recorded=10) as today,
        AsyncImagesClient(api_key=KEY, base_url=today.base_url, max_retries=0) as client,
    ):
        assert check(request_) == []
        with pytest.raises(NotFoundError) as refused:
            await client.send(request_)
        assert len(today.requests) == 1
    assert "2026" in str(refused.value) or "edits" in str(refused.value)
