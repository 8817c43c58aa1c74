"""What the local server makes for a valid request, and the answers that carry it (sans-I/O).

``make_plan`` resolves everything the API leaves to itself (the model's defaults,
``auto`` sizes, qualities and backgrounds) into a ``Plan``: the render job, the
fields the answer reports, a ``revised_prompt`` for dall-e-3 and plausible token counts
for GPT image models. The answer objects are the client's own response and event
classes, turned into wire JSON by the shared converter.
"""

from __future__ import annotations

import base64
import hashlib
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, TypeAlias

import attrs
import orjson

from openai_images._converter import converter
from openai_images._requests import (
    EditRequest,
    GenerateRequest,
    ImageRequest,
    OutputFormat,
    VariationRequest,
)
from openai_images._responses import (
    Image,
    ImageEditCompletedEvent,
    ImageEditPartialImageEvent,
    ImageGenCompletedEvent,
    ImageGenPartialImageEvent,
    ImagesResponse,
    InputTokensDetails,
    OutputTokensDetails,
    SvgUsage,
    Usage,
)
from openai_images._rules import MODELS, effective_model, parse_size

from ._images import RenderJob

__all__ = [
    "InputImage",
    "Plan",
    "StreamEvent",
    "images_response",
    "make_plan",
    "stream_events",
    "wire_body",
]

StreamEvent: TypeAlias = (
    ImageGenPartialImageEvent
    | ImageGenCompletedEvent
    | ImageEditPartialImageEvent
    | ImageEditCompletedEvent
)

_KINDS: dict[str, Literal["generation", "edit", "variation"]] = {
    "generations": "generation",
    "edits": "edit",
    "variations": "variation",
}
# The API's published output tokens per image at 1024x1024, 1024x1536 and 1536x1024.
_OUTPUT_TOKENS = {
    "low": (272, 408, 400),
    "medium": (1056, 1584, 1568),
    "high": (4160, 6240, 6208),
    # The 2.5 models' top qualities: plausible multiples of "high", not published figures.
    "xhigh": (8320, 12480, 12416),
    "max": (16640, 24960, 24832),
}
# Text tokens spent planning the picture, by complexity (only when it is asked for).
_PLANNING_TOKENS = {"low": 16, "medium": 64, "high": 256}
# Who renders a request that names no model: the API's own choice, here a current model.
UNNAMED_MODEL = "gpt-image-1.5"
UNNAMED_VARIATION_MODEL = "dall-e-2"  # the only model that ever made variations
DEFAULT_SVG_AUTHOR = "gpt-5.5"
_PARTIAL_IMAGE_TOKENS = 100  # each partial image costs this many more output tokens
_HIGH_FIDELITY_TOKENS = 4160  # added per input image with input_fidelity "high"
_SQUARE = 1024 * 1024


@attrs.frozen(kw_only=True)
class InputImage:
    """An input image the server has checked: where it is, its size, and its digest."""

    path: Path
    width: int
    height: int
    digest: str


@attrs.frozen(kw_only=True)
class Plan:
    """Everything the server will make and report for one valid request.

    Attributes:
        endpoint: ``"generations"``, ``"edits"`` or ``"variations"``.
        model: The model, defaults applied.
        gpt: Whether it is a GPT image model (reports quality, size, usage...).
        job: What to render (``job.n`` is 1 for a stream).
        size: The resolved ``WIDTHxHEIGHT``.
        quality: The resolved quality (GPT image models).
        background: ``"transparent"`` or ``"opaque"`` (GPT image models).
        output_format: ``"png"``, ``"jpeg"`` or ``"webp"``.
        response_format: ``"b64_json"`` or ``"url"``.
        stream: Whether to answer with server-sent events.
        partial_images: How many partial images a stream sends first.
        revised_prompt: dall-e-3's rewritten prompt.
        usage: Token counts (GPT image models).
        svg_usage: The SVG author's token counts (SVG output).
        safety_identifier: The end-user id to echo: ``safety_identifier``, else ``user``.
    """

    endpoint: str
    model: str
    gpt: bool
    job: RenderJob
    size: str
    quality: str | None
    background: str | None
    output_format: OutputFormat
    response_format: str
    stream: bool
    partial_images: int
    revised_prompt: str | None
    usage: Usage | None
    svg_usage: SvgUsage | None = None
    safety_identifier: str | None = None


def make_plan(
    request: ImageRequest,
    *,
    inputs: Sequence[InputImage] = (),
    mask: Path | None = None,
    markup: Path | None = None,
) -> Plan:
    """Resolve a request that passed the rules into what to make and report.

    The seed comes from the request's fields and the inputs' digests, so the same request
    always gives the same images.

    Example:
        >>> plan = make_plan(GenerateRequest(prompt="a fox", model="gpt-image-2.5-flare"))
        >>> plan.size, plan.quality, plan.background, plan.job.width
        ('1024x1024', 'high', 'opaque', 1024)
    """
    unnamed = UNNAMED_VARIATION_MODEL if isinstance(request, VariationRequest) else UNNAMED_MODEL
    model = effective_model(request) or unnamed
    rules = MODELS[model]
    gpt = rules.is_gpt_image
    stream = bool(getattr(request, "stream", None)) and gpt
    width, height = _resolve_size(request, gpt, inputs)
    output_format: OutputFormat = "png"
    compression = None
    transparent = False
    quality = background = None
    prompt = "" if isinstance(request, VariationRequest) else request.prompt
    complexity = frame_count = frame_duration = safety_identifier = None
    svg_usage = None
    if not isinstance(request, VariationRequest):
        complexity = request.complexity
        frame_count, frame_duration = request.frame_count, request.frame_duration_ms
        # The API echoes the id it used: a non-empty safety_identifier wins over user.
        safety_identifier = request.safety_identifier or request.user or None
    if gpt and not isinstance(request, VariationRequest):
        output_format = request.output_format or "png"
        if output_format != "png":
            compression = request.output_compression
        transparent = request.background == "transparent"
        background = "transparent" if transparent else "opaque"
        quality = request.quality if request.quality in _OUTPUT_TOKENS else "high"
        if output_format == "svg":
            svg = request.svg
            author = svg.model if svg is not None and svg.model else DEFAULT_SVG_AUTHOR
            svg_usage = _svg_usage(
                prompt, author, svg.reasoning.effort if svg and svg.reasoning else None
            )
    # A stream carries one image: n is accepted, and the first image is the one streamed.
    n = 1 if stream else (request.n or 1)
    partials = (getattr(request, "partial_images", None) or 0) if stream else 0
    job = RenderJob(
        kind=_KINDS[request.endpoint],
        prompt=prompt,
        width=width,
        height=height,
        n=n,
        output_format=output_format,
        compression=compression,
        transparent=transparent,
        seed=_seed(request, inputs),
        inputs=tuple(image.path for image in inputs),
        mask=mask,
        markup=markup,
        complexity=complexity,
        frame_count=frame_count or 9,
        frame_duration_ms=200 if frame_duration is None else frame_duration,
    )
    usage = None
    if gpt and quality is not None:
        fidelity = getattr(request, "input_fidelity", None) == "high"
        usage = _usage(prompt, inputs, quality, width, height, n, partials, fidelity, complexity)
    revised = None
    if model == "dall-e-3" and isinstance(request, GenerateRequest):
        revised = _revised_prompt(request.prompt, request.style or "vivid")
    return Plan(
        endpoint=request.endpoint,
        model=model,
        gpt=gpt,
        job=job,
        size=f"{width}x{height}",
        quality=quality,
        background=background,
        output_format=output_format,
        response_format="b64_json" if gpt else (request.response_format or "url"),
        stream=stream,
        partial_images=partials,
        revised_prompt=revised,
        usage=usage,
        svg_usage=svg_usage,
        safety_identifier=safety_identifier,
    )


def images_response(
    plan: Plan,
    images: Sequence[bytes],
    *,
    created: int,
    urls: Sequence[str] | None = None,
) -> ImagesResponse:
    """The answer to a non-streaming request, as the client's own class.

    ``urls`` (one per image) replace ``b64_json`` for ``response_format="url"``.
    """
    data = tuple(
        Image(
            b64_json=None if urls else _b64(image),
            url=urls[index] if urls else None,
            revised_prompt=plan.revised_prompt,
        )
        for index, image in enumerate(images)
    )
    if not plan.gpt:
        return ImagesResponse(created=created, data=data, safety_identifier=plan.safety_identifier)
    return ImagesResponse(
        created=created,
        data=data,
        background=plan.background,
        output_format=plan.output_format,
        quality=plan.quality,
        size=plan.size,
        usage=plan.usage,
        svg_usage=plan.svg_usage,
        safety_identifier=plan.safety_identifier,
    )


def stream_events(
    plan: Plan, partials: Sequence[bytes], final: bytes, *, created: int
) -> list[StreamEvent]:
    """A stream's events: the partial images in order, then the completed event."""
    common: dict[str, Any] = {
        "created_at": created,
        "size": plan.size,
        "quality": plan.quality,
        "background": plan.background,
        "output_format": plan.output_format,
    }
    edit = plan.endpoint == "edits"
    partial_cls = ImageEditPartialImageEvent if edit else ImageGenPartialImageEvent
    completed_cls = ImageEditCompletedEvent if edit else ImageGenCompletedEvent
    events: list[StreamEvent] = [
        partial_cls(b64_json=_b64(image), partial_image_index=index, **common)
        for index, image in enumerate(partials)
    ]
    events.append(
        completed_cls(
            b64_json=_b64(final),
            usage=plan.usage,
            safety_identifier=plan.safety_identifier,
            **common,
        )
    )
    return events


def wire_body(answer: ImagesResponse | StreamEvent) -> dict[str, Any]:
    """An answer object as the API's JSON: unset fields left out, no client-side metadata."""
    body: dict[str, Any] = converter.unstructure(answer)
    body.pop("request_id", None)
    body.pop("headers", None)
    body.pop("raw", None)
    dropped: dict[str, Any] = _drop_none(body)
    return dropped


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _drop_none(item) for key, item in value.items() if item is not None}
    if isinstance(value, (list, tuple)):
        return [_drop_none(item) for item in value]
    return value


def _b64(image: bytes) -> str:
    return base64.b64encode(image).decode("ascii")


def _resolve_size(
    request: ImageRequest, gpt: bool, inputs: Sequence[InputImage]
) -> tuple[int, int]:
    parsed = parse_size(request.size) if request.size is not None else None
    if parsed is not None:
        return parsed
    if gpt and request.size in (None, "auto") and isinstance(request, EditRequest) and inputs:
        # "auto" (an edit's default since 2026) follows the first input's orientation.
        first = inputs[0]
        if first.width * 5 > first.height * 6:
            return 1536, 1024
        if first.height * 5 > first.width * 6:
            return 1024, 1536
    return 1024, 1024


def _seed(request: ImageRequest, inputs: Sequence[InputImage]) -> int:
    fields = converter.unstructure(request)
    digest = hashlib.blake2b(digest_size=8)
    digest.update(orjson.dumps(fields, option=orjson.OPT_SORT_KEYS, default=str))
    for image in inputs:
        digest.update(image.digest.encode("ascii"))
    return int.from_bytes(digest.digest(), "big")


def _output_tokens(quality: str, width: int, height: int) -> int:
    square, portrait, landscape = _OUTPUT_TOKENS[quality]
    if (width, height) == (1024, 1536):
        return portrait
    if (width, height) == (1536, 1024):
        return landscape
    return max(1, round(square * width * height / _SQUARE))


def _input_image_tokens(width: int, height: int, high_fidelity: bool) -> int:
    # The vision rule: fit in 2048x2048, shortest side at most 768, then 512-pixel tiles.
    scale = min(1.0, 2048 / max(width, height))
    scale *= min(1.0, 768 / (min(width, height) * scale))
    tiles = math.ceil(width * scale / 512) * math.ceil(height * scale / 512)
    return 65 + 129 * tiles + (_HIGH_FIDELITY_TOKENS if high_fidelity else 0)


def _usage(
    prompt: str,
    inputs: Sequence[InputImage],
    quality: str,
    width: int,
    height: int,
    n: int,
    partials: int,
    high_fidelity: bool,
    complexity: str | None = None,
) -> Usage:
    text_tokens = max(1, len(prompt.split()))
    image_tokens = sum(
        _input_image_tokens(image.width, image.height, high_fidelity) for image in inputs
    )
    output = n * _output_tokens(quality, width, height) + partials * _PARTIAL_IMAGE_TOKENS
    planning = _PLANNING_TOKENS.get(complexity or "", 0)
    return Usage(
        input_tokens=text_tokens + image_tokens,
        output_tokens=output + planning,
        total_tokens=text_tokens + image_tokens + output + planning,
        input_tokens_details=InputTokensDetails(text_tokens=text_tokens, image_tokens=image_tokens),
        output_tokens_details=OutputTokensDetails(text_tokens=planning, image_tokens=output),
    )


def _svg_usage(prompt: str, author: str, effort: str | None) -> SvgUsage:
    """Plausible counts for the SVG author: more reasoning, more tokens."""
    efforts = ("none", "minimal", "low", "medium", "high", "xhigh", "max")
    step = efforts.index(effort) if effort in efforts else 3
    input_tokens = 200 + max(1, len(prompt.split()))
    reasoning = 128 * step
    output = 900 + reasoning
    return SvgUsage(
        model=author,
        input_tokens=input_tokens,
        output_tokens=output,
        reasoning_tokens=reasoning,
        total_tokens=input_tokens + output,
    )


def _revised_prompt(prompt: str, style: str) -> str:
    look = (
        "natural, true-to-life colours and soft light"
        if style == "natural"
        else "vivid, saturated colours and dramatic light"
    )
    return (
        f"{prompt.strip().rstrip('.')}. The scene is shown in {look}, with a clear focal "
        "point and fine detail throughout."
    )
