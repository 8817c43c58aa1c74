"""Typed requests for the three Images endpoints.

Each class holds one request exactly as the REST API names its fields. ``None`` means
"not set": unset fields are left out of the body, so the API applies its own defaults.
The same classes serve the client (built from keyword arguments) and the local server
(built from what arrived), so the two cannot drift apart.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import IO, Literal, TypeAlias

import attrs

__all__ = [
    "Background",
    "Complexity",
    "EditRequest",
    "Endpoint",
    "FileContent",
    "GenerateRequest",
    "ImageInput",
    "ImageRef",
    "ImageRequest",
    "InputFidelity",
    "Moderation",
    "OutputFormat",
    "Quality",
    "ReasoningEffort",
    "ResponseFormat",
    "Style",
    "SvgOptions",
    "SvgReasoning",
    "VariationRequest",
]

Endpoint: TypeAlias = Literal["generations", "edits", "variations"]
"""The three Images endpoints, as their paths end."""
Quality: TypeAlias = Literal["standard", "hd", "low", "medium", "high", "xhigh", "max", "auto"]
"""How much effort goes into an image; which values a model takes is in the rules."""
Background: TypeAlias = Literal["transparent", "opaque", "auto"]
"""A transparent, opaque or automatic background."""
Moderation: TypeAlias = Literal["low", "auto"]
"""How strict the content moderation is."""
OutputFormat: TypeAlias = Literal["png", "jpeg", "webp", "gif", "svg"]
"""The file format of the results."""
ResponseFormat: TypeAlias = Literal["url", "b64_json"]
"""Results as signed URLs or as base64 (legacy dall-e models)."""
Style: TypeAlias = Literal["vivid", "natural"]
"""dall-e-3's look."""
InputFidelity: TypeAlias = Literal["high", "low"]
"""How closely an edit keeps the inputs' features."""
Complexity: TypeAlias = Literal["low", "medium", "high"]
"""Planning effort, independent of quality."""
ReasoningEffort: TypeAlias = Literal["none", "minimal", "low", "medium", "high", "xhigh", "max"]
"""How hard the SVG author reasons."""

FileContent: TypeAlias = bytes | IO[bytes] | str | os.PathLike[str]
"""What a tuple input may carry as its content: bytes, a binary file object, or a path."""

ImageInput: TypeAlias = (
    str
    | os.PathLike[str]
    | bytes
    | IO[bytes]
    | tuple[str, FileContent]
    | tuple[str, FileContent, str]
)
"""One input image: a path, bytes, a binary file object, or ``(filename, content[, type])``."""


_URL_REPR_LIMIT = 200


def _url_repr(url: str | None) -> str:
    """A URL as a repr shows it: a ``data:`` URL by its media type and size, never its bytes."""
    if url is None or len(url) <= _URL_REPR_LIMIT:
        return repr(url)
    if url.startswith("data:"):
        head, _, payload = url.partition(",")
        return repr(f"{head},<{len(payload)} chars>")
    return repr(f"{url[:_URL_REPR_LIMIT]}...<{len(url)} chars>")


@attrs.frozen(kw_only=True)
class ImageRef:
    """An input image by reference, for JSON edits: exactly one of ``image_url`` or ``file_id``.

    ``image_url`` is an ``https://`` URL or a ``data:`` URL (at most 20 MiB). The repr shows
    a long ``data:`` URL by its media type and size, so logging a request stays cheap.

    Example:
        >>> ImageRef(image_url="https://example.com/cat.png")
        ImageRef(image_url='https://example.com/cat.png', file_id=None)
        >>> ImageRef(image_url="data:image/png;base64," + "A" * 4000)
        ImageRef(image_url='data:image/png;base64,<4000 chars>', file_id=None)
    """

    image_url: str | None = attrs.field(default=None, repr=_url_repr)
    file_id: str | None = None


@attrs.frozen(kw_only=True)
class SvgReasoning:
    """How hard the SVG author reasons (``svg.reasoning``); unset uses the author's default."""

    effort: ReasoningEffort | None = None


@attrs.frozen(kw_only=True)
class SvgOptions:
    """Who authors an SVG result (``svg``), with ``output_format="svg"`` only.

    ``model`` names the SVG author; the request's own ``model`` still makes the reference image.

    Example:
        >>> SvgOptions(model="gpt-5.5", reasoning=SvgReasoning(effort="low"))
        SvgOptions(model='gpt-5.5', reasoning=SvgReasoning(effort='low'))
    """

    model: str
    reasoning: SvgReasoning | None = None


@attrs.frozen(kw_only=True)
class GenerateRequest:
    """A request to ``POST /images/generations``.

    Attributes:
        prompt: What to make, in words.
        model: The model, e.g. ``"gpt-image-2"`` (name one: the API no longer picks).
        n: How many images to make.
        size: ``"1024x1024"``, ``"1536x1024"``, ``"auto"``... or ``WIDTHxHEIGHT`` where the
            model takes custom sizes.
        quality: ``"low"``, ``"medium"``, ``"high"``, ``"auto"`` (``"xhigh"``, ``"max"`` on
            the 2.5 models; ``"standard"``, ``"hd"`` for dall-e-3).
        background: ``"transparent"``, ``"opaque"`` or ``"auto"``.
        moderation: ``"low"`` or ``"auto"``.
        output_format: ``"png"``, ``"jpeg"``, ``"webp"``, ``"gif"`` or ``"svg"``.
        output_compression: 0-100, for jpeg and webp output.
        response_format: ``"url"`` or ``"b64_json"`` (legacy dall-e models).
        style: ``"vivid"`` or ``"natural"`` (dall-e-3).
        user: A stable end-user id (deprecated: use ``safety_identifier``).
        safety_identifier: A stable, hashed end-user id for abuse monitoring.
        complexity: Planning effort, ``"low"``, ``"medium"`` or ``"high"``.
        frame_count: Frames of a gif result, 2-16.
        frame_duration_ms: Milliseconds per gif frame.
        svg: Who authors an svg result (``output_format="svg"`` only).
        stream: Stream partial images as events (GPT image models).
        partial_images: Partial images to stream before the final one, 0-3.

    Example:
        >>> GenerateRequest(prompt="a fox", model="gpt-image-2.5-flare", size="1536x864")
        GenerateRequest(prompt='a fox', model='gpt-image-2.5-flare', n=None, size='1536x864', ...)

    ``output_format="gif"`` takes ``frame_count`` and ``frame_duration_ms``;
    ``output_format="svg"`` takes ``svg`` (and ``n=1``). ``safety_identifier`` is a stable,
    hashed id of the end user, preferred over the deprecated ``user``.
    """

    endpoint: Endpoint = attrs.field(default="generations", init=False, repr=False)

    prompt: str
    model: str | None = None
    n: int | None = None
    size: str | None = None
    quality: Quality | None = None
    background: Background | None = None
    moderation: Moderation | None = None
    output_format: OutputFormat | None = None
    output_compression: int | None = None
    response_format: ResponseFormat | None = None
    style: Style | None = None
    user: str | None = None
    safety_identifier: str | None = None
    complexity: Complexity | None = None
    frame_count: int | None = None
    frame_duration_ms: int | None = None
    svg: SvgOptions | None = None
    stream: bool | None = None
    partial_images: int | None = None


@attrs.frozen(kw_only=True)
class EditRequest:
    """A request to ``POST /images/edits``.

    Give ``image`` (one input, or a list of up to 16) for a multipart upload, or ``images``
    (a list of ``ImageRef``) for a JSON edit by reference. ``mask`` is an input for
    multipart edits and an ``ImageRef`` for JSON edits. ``markup`` (GPT Image 2.5, uploads
    only, never with ``mask``) is a PNG with transparent pixels drawn over the first image
    to guide the edit.

    Attributes:
        prompt: What to change, in words.
        image: One input or a list of up to 16: a path, bytes, a binary file, or
            ``(filename, content[, content_type])``. Files stream from disk as they upload.
        images: Inputs by reference (``ImageRef``), for an edit sent as JSON.
        mask: Where to edit: an input (multipart) or an ``ImageRef`` (JSON edits).
        markup: A PNG whose drawn pixels are overlaid on the first image (2.5 models).
        model: The model, e.g. ``"gpt-image-2"`` (name one: the API no longer picks).
        n: How many images to make.
        size: ``"1024x1024"``, ``"1536x1024"``, ``"auto"``... or ``WIDTHxHEIGHT`` where the
            model takes custom sizes.
        quality: ``"low"``, ``"medium"``, ``"high"``, ``"auto"`` (``"xhigh"``, ``"max"`` on
            the 2.5 models).
        background: ``"transparent"``, ``"opaque"`` or ``"auto"``.
        moderation: ``"low"`` or ``"auto"``.
        input_fidelity: How closely to keep the inputs' features, ``"high"`` or ``"low"``.
        output_format: ``"png"``, ``"jpeg"``, ``"webp"``, ``"gif"`` or ``"svg"``.
        output_compression: 0-100, for jpeg and webp output.
        response_format: ``"url"`` or ``"b64_json"`` (legacy dall-e models).
        user: A stable end-user id (deprecated: use ``safety_identifier``).
        safety_identifier: A stable, hashed end-user id for abuse monitoring.
        complexity: Planning effort, ``"low"``, ``"medium"`` or ``"high"``.
        frame_count: Frames of a gif result, 2-16.
        frame_duration_ms: Milliseconds per gif frame.
        svg: Who authors an svg result (``output_format="svg"`` only).
        stream: Stream partial images as events (GPT image models).
        partial_images: Partial images to stream before the final one, 0-3.

    Example:
        >>> EditRequest(image=["a.png", "b.png"], prompt="put them in a basket").image_count
        2
    """

    endpoint: Endpoint = attrs.field(default="edits", init=False, repr=False)

    prompt: str
    image: ImageInput | list[ImageInput] | None = attrs.field(default=None, repr=False)
    images: Sequence[ImageRef] | None = None
    mask: ImageInput | ImageRef | None = attrs.field(default=None, repr=False)
    markup: ImageInput | None = attrs.field(default=None, repr=False)
    model: str | None = None
    n: int | None = None
    size: str | None = None
    quality: Quality | None = None
    background: Background | None = None
    moderation: Moderation | None = None
    input_fidelity: InputFidelity | None = None
    output_format: OutputFormat | None = None
    output_compression: int | None = None
    response_format: ResponseFormat | None = None
    user: str | None = None
    safety_identifier: str | None = None
    complexity: Complexity | None = None
    frame_count: int | None = None
    frame_duration_ms: int | None = None
    svg: SvgOptions | None = None
    stream: bool | None = None
    partial_images: int | None = None

    @property
    def is_json(self) -> bool:
        """Whether this edit goes as ``application/json`` (image references) or multipart."""
        return self.images is not None

    @property
    def image_inputs(self) -> list[ImageInput]:
        """The multipart inputs as a list (empty for a JSON edit)."""
        if self.image is None:
            return []
        if isinstance(self.image, list):
            return self.image
        return [self.image]

    @property
    def image_count(self) -> int:
        """How many input images the edit carries, by upload or by reference."""
        if self.images is not None:
            return len(self.images)
        return len(self.image_inputs)


@attrs.frozen(kw_only=True)
class VariationRequest:
    """A request to ``POST /images/variations``: retired by the API, kept for compatible servers.

    Only ``dall-e-2`` (itself retired on 2026-05-12) ever made variations; edit with a GPT
    image model instead.

    Attributes:
        image: The square PNG to vary: a path, bytes, a binary file, or
            ``(filename, content[, content_type])``.
        model: ``"dall-e-2"``, the only model the endpoint served.
        n: How many variations to make.
        size: ``"256x256"``, ``"512x512"`` or ``"1024x1024"``.
        response_format: ``"url"`` or ``"b64_json"``.
        user: A stable end-user id.

    Example:
        >>> VariationRequest(image="cat.png", n=2, size="512x512")
        VariationRequest(model=None, n=2, size='512x512', response_format=None, user=None)
    """

    endpoint: Endpoint = attrs.field(default="variations", init=False, repr=False)

    image: ImageInput = attrs.field(repr=False)
    model: str | None = None
    n: int | None = None
    size: str | None = None
    response_format: ResponseFormat | None = None
    user: str | None = None


ImageRequest: TypeAlias = GenerateRequest | EditRequest | VariationRequest
"""Any of the three request classes."""
