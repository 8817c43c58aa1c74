"""The contract's per-model rules, as data, and the checks that read them.

One table (``MODELS``) says what each model accepts. The client checks a request
against it before any network I/O; the local server checks what arrives against the same
table and answers with the API's error shape. A model the table does not know skips the
model rules (the API grows) but still gets the bounds the schema itself sets.

The checks are pure: they take a request (and, for uploads, ``ImageInfo`` facts
about each file) and return every ``Violation``, or an empty list.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import attrs

from ._errors import RequestValidationError, Violation
from ._requests import EditRequest, GenerateRequest, ImageRef, ImageRequest
from ._sniff import ImageInfo

__all__ = [
    "MAX_IMAGE_URL_LENGTH",
    "MODELS",
    "ModelRules",
    "Retirement",
    "check",
    "check_images",
    "effective_model",
    "ensure_valid",
    "legacy_model_note",
    "parse_size",
]

MiB = 1024 * 1024
MAX_IMAGE_URL_LENGTH = 20 * MiB
MAX_INPUT_IMAGES = 16
MAX_FRAME_COUNT = 16
MAX_PIXELS = 3840 * 2160  # the largest image any model makes today

_IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/webp"})
_GPT_SIZES = ("1024x1024", "1536x1024", "1024x1536", "auto")
_SIZE_RE = re.compile(r"^([1-9][0-9]{0,5})x([1-9][0-9]{0,5})$")
# Output formats that are not one still picture: no stream, partial images or compression.
_ANIMATED_OR_VECTOR = frozenset({"gif", "svg"})


@attrs.frozen(kw_only=True)
class Retirement:
    """When a model stopped being served, and what to use instead.

    Example:
        >>> MODELS["gpt-image-1"].retired.successors
        ('gpt-image-2.5-sunburst', 'gpt-image-2.5-flare')
    """

    date: str
    """The day it stopped, ``YYYY-MM-DD``."""
    verb: str
    """How the API words it: ``"shut down"`` or ``"retired"``."""
    successors: tuple[str, ...] = ()
    """Models to move to; empty means any current GPT image model."""


@attrs.frozen(kw_only=True)
class ModelRules:
    """What one model accepts. An empty set means the field is not accepted at all."""

    name: str
    endpoints: frozenset[str]
    json_edits: bool
    prompt_max_length: int
    n_max: int
    qualities: frozenset[str]
    response_formats: frozenset[str]
    output_formats: frozenset[str]
    backgrounds: frozenset[str]
    moderations: frozenset[str]
    styles: frozenset[str]
    input_fidelities: frozenset[str]
    complexities: frozenset[str]
    streaming: bool
    markup: bool
    sizes: tuple[str, ...]
    custom_sizes: bool
    max_input_images: int
    max_image_bytes: int
    image_types: frozenset[str]
    square_images: bool
    retired: Retirement | None = None

    @property
    def is_gpt_image(self) -> bool:
        """Whether this is a GPT image model (always answers with ``b64_json``)."""
        return not self.response_formats


_BASE_QUALITIES = frozenset({"low", "medium", "high", "auto"})
_TODAY_FORMATS = frozenset({"png", "jpeg", "webp", "gif", "svg"})
_BOTH_FIDELITIES = frozenset({"high", "low"})


def _gpt_image(
    name: str,
    *,
    custom_sizes: bool = False,
    fidelities: frozenset[str] = _BOTH_FIDELITIES,
    top_qualities: bool = False,
    markup: bool = False,
    retired: Retirement | None = None,
) -> ModelRules:
    # A retired model keeps the rules it had: none of the fields added after it left.
    current = retired is None
    return ModelRules(
        name=name,
        endpoints=frozenset({"generations", "edits"}),
        json_edits=True,
        prompt_max_length=32000,
        n_max=10,
        qualities=_BASE_QUALITIES | ({"xhigh", "max"} if top_qualities else set()),
        response_formats=frozenset(),
        output_formats=_TODAY_FORMATS if current else frozenset({"png", "jpeg", "webp"}),
        backgrounds=frozenset({"transparent", "opaque", "auto"}),
        moderations=frozenset({"low", "auto"}),
        styles=frozenset(),
        input_fidelities=fidelities,
        complexities=frozenset({"low", "medium", "high"}) if current else frozenset(),
        streaming=True,
        markup=markup,
        sizes=_GPT_SIZES,
        custom_sizes=custom_sizes,
        max_input_images=MAX_INPUT_IMAGES,
        max_image_bytes=50 * MiB,
        image_types=_IMAGE_TYPES,
        square_images=False,
        retired=retired,
    )


def _gpt_image_2_5(name: str) -> ModelRules:
    return _gpt_image(name, custom_sizes=True, top_qualities=True, markup=True)


_DALL_E_RETIREMENT = Retirement(date="2026-05-12", verb="retired")


def _dall_e(
    name: str,
    *,
    endpoints: frozenset[str],
    prompt_max_length: int = 1000,
    n_max: int = 10,
    qualities: frozenset[str] = frozenset({"standard"}),
    styles: frozenset[str] = frozenset(),
    sizes: tuple[str, ...] = ("256x256", "512x512", "1024x1024"),
) -> ModelRules:
    return ModelRules(
        name=name,
        endpoints=endpoints,
        json_edits=False,
        prompt_max_length=prompt_max_length,
        n_max=n_max,
        qualities=qualities,
        response_formats=frozenset({"url", "b64_json"}),
        output_formats=frozenset(),
        backgrounds=frozenset(),
        moderations=frozenset(),
        styles=styles,
        input_fidelities=frozenset(),
        complexities=frozenset(),
        streaming=False,
        markup=False,
        sizes=sizes,
        custom_sizes=False,
        max_input_images=1,
        max_image_bytes=4 * MiB,
        image_types=frozenset({"image/png"}),
        square_images=True,
        retired=_DALL_E_RETIREMENT,
    )


MODELS: dict[str, ModelRules] = {
    rules.name: rules
    for rules in (
        # Today's models. input_fidelity: both on 1.5, "low" only on the mini, none on
        # gpt-image-2; the newer names are not pinned down publicly, so the API decides.
        _gpt_image("gpt-image-1.5"),
        _gpt_image("gpt-image-2", custom_sizes=True, fidelities=frozenset()),
        _gpt_image("gpt-image-2-2026-04-21", custom_sizes=True, fidelities=frozenset()),
        _gpt_image_2_5("gpt-image-2.5-sunburst"),
        _gpt_image_2_5("gpt-image-2.5-sunburst-2026-09-08"),
        _gpt_image_2_5("gpt-image-2.5-flare"),
        _gpt_image_2_5("gpt-image-2.5-flare-2026-09-08"),
        _gpt_image("gpt-image-2.6-sunburst"),
        _gpt_image("gpt-image-2.6-flare"),
        _gpt_image("gpt-image-1-mini", fidelities=frozenset({"low"})),
        _gpt_image("chatgpt-image-latest"),
        # Retired: requests still go out (Azure deployments and compatible servers may
        # serve them), checked against the rules the models had.
        _gpt_image(
            "gpt-image-1",
            retired=Retirement(
                date="2026-10-23",
                verb="shut down",
                successors=("gpt-image-2.5-sunburst", "gpt-image-2.5-flare"),
            ),
        ),
        _dall_e("dall-e-2", endpoints=frozenset({"generations", "edits", "variations"})),
        _dall_e(
            "dall-e-3",
            endpoints=frozenset({"generations"}),
            prompt_max_length=4000,
            n_max=1,
            qualities=frozenset({"standard", "hd"}),
            styles=frozenset({"vivid", "natural"}),
            sizes=("1024x1024", "1792x1024", "1024x1792"),
        ),
    )
}


def legacy_model_note(model: str | None) -> str | None:
    """A sentence on a retired model's retirement and successors; ``None`` for any other.

    The clients add it to the error when a server refuses a request for a retired model.

    Example:
        >>> legacy_model_note("gpt-image-1")
        'gpt-image-1 was shut down on 2026-10-23; use gpt-image-2.5-sunburst or gpt-image-2.5-flare'
        >>> legacy_model_note("dall-e-3")
        'dall-e-3 was retired on 2026-05-12; use a current GPT image model such as gpt-image-1.5'
        >>> legacy_model_note("gpt-image-2") is None
        True
    """
    rules = MODELS.get(model) if model is not None else None
    if rules is None or rules.retired is None:
        return None
    retired = rules.retired
    instead = (
        " or ".join(retired.successors)
        if retired.successors
        else "a current GPT image model such as gpt-image-1.5"
    )
    return f"{rules.name} was {retired.verb} on {retired.date}; use {instead}"


def effective_model(request: ImageRequest) -> str | None:
    """The model whose rules apply: the request's own, or ``None``.

    There is no hidden default: without a model, the API picks one, and only the rules
    every model shares are checked here.

    Example:
        >>> effective_model(GenerateRequest(prompt="x")) is None
        True
        >>> effective_model(GenerateRequest(prompt="x", model="gpt-image-2"))
        'gpt-image-2'
    """
    return request.model


def parse_size(size: str) -> tuple[int, int] | None:
    """``"1536x1024"`` as ``(1536, 1024)``; ``None`` for ``"auto"`` or anything else."""
    match = _SIZE_RE.match(size)
    if match is None:
        return None
    return int(match.group(1)), int(match.group(2))


def ensure_valid(
    request: ImageRequest,
    images: Sequence[ImageInfo] = (),
    mask: ImageInfo | None = None,
    *,
    markup: ImageInfo | None = None,
) -> None:
    """Raise ``RequestValidationError`` if the request or its files break a rule."""
    violations = check(request)
    if images or mask is not None or markup is not None:
        violations += check_images(request, images, mask, markup=markup)
    if violations:
        raise RequestValidationError(violations)


def check(request: ImageRequest) -> list[Violation]:
    """Every rule the request's own fields break (its files are checked by ``check_images``).

    Example:
        >>> [v.param for v in check(GenerateRequest(prompt="x", model="gpt-image-2.5-flare", n=11))]
        ['n']
        >>> [v.param for v in check(GenerateRequest(prompt="x", output_format="svg", n=2))]
        ['n']
    """
    found = _Found()
    model_name = effective_model(request)
    rules = MODELS.get(model_name) if model_name is not None else None

    if isinstance(request, (GenerateRequest, EditRequest)):
        _check_prompt(found, request.prompt, rules)
    _check_n(found, request.n, rules)

    if rules is not None:
        endpoint = request.endpoint
        if isinstance(request, EditRequest) and request.is_json and not rules.json_edits:
            found.add(
                "model",
                f"{rules.name} does not take JSON edits by image reference; "
                "upload the images instead",
            )
        elif endpoint not in rules.endpoints:
            found.add(
                "model",
                f"{rules.name} does not support image {endpoint}; "
                f"models that do: {_quote(_models_for(endpoint))}",
                code="unsupported_model",
            )
        _check_size(found, request.size, rules)
        _check_choice(
            found,
            "response_format",
            request.response_format,
            rules.response_formats,
            rules.name,
            hint="GPT image models always return b64_json",
        )
    elif model_name is None:
        _check_any_size(found, request.size)

    if isinstance(request, (GenerateRequest, EditRequest)):
        _check_gpt_fields(found, request, rules)
        _check_output_kinds(found, request, rules)
    if isinstance(request, EditRequest):
        _check_edit_inputs(found, request, rules)
    return found.violations


def check_images(
    request: ImageRequest,
    images: Sequence[ImageInfo],
    mask: ImageInfo | None = None,
    *,
    markup: ImageInfo | None = None,
) -> list[Violation]:
    """Every rule the uploaded files break: type, size, count, shape, the mask's and markup's fit.

    Example:
        >>> info = ImageInfo(filename="a.gif", content_type=None, size=10)
        >>> [v.message for v in check_images(EditRequest(prompt="p", image=b""), [info])]
        ["'a.gif' is not a PNG, JPEG or WebP image"]
    """
    found = _Found()
    model_name = effective_model(request)
    rules = MODELS.get(model_name) if model_name is not None else None
    allowed_types = rules.image_types if rules is not None else _IMAGE_TYPES
    max_bytes = rules.max_image_bytes if rules is not None else 50 * MiB
    listed = isinstance(request, EditRequest) and isinstance(request.image, list)
    for index, info in enumerate(images):
        param = f"image[{index}]" if listed else "image"
        _check_file(found, param, info, allowed_types, max_bytes)
        if (
            rules is not None
            and rules.square_images
            and _known_and_unequal(info.width, info.height)
        ):
            found.add(
                param,
                f"{info.filename!r} is {info.width}x{info.height}; "
                f"{rules.name} needs a square image",
            )
    first = images[0] if images else None
    if mask is not None:
        _check_file(found, "mask", mask, frozenset({"image/png"}), 4 * MiB)
        _check_overlay(found, "mask", mask, first)
    if markup is not None:
        _check_file(found, "markup", markup, frozenset({"image/png"}), 50 * MiB)
        _check_overlay(found, "markup", markup, first)
    return found.violations


def _check_overlay(found: _Found, param: str, overlay: ImageInfo, first: ImageInfo | None) -> None:
    """A mask or markup: a PNG with transparent pixels, as big as the first image."""
    if overlay.has_alpha is False:
        why = (
            "the mask's fully transparent pixels mark where to edit"
            if param == "mask"
            else "markup is drawn over the image, so it needs transparent pixels"
        )
        found.add(param, f"{overlay.filename!r} has no alpha channel; {why}")
    if (
        first is not None
        and None not in (overlay.width, overlay.height, first.width, first.height)
        and (overlay.width, overlay.height) != (first.width, first.height)
    ):
        found.add(
            param,
            f"{overlay.filename!r} is {overlay.width}x{overlay.height} but the image "
            f"{first.filename!r} is {first.width}x{first.height}; they must match",
        )


@attrs.define
class _Found:
    violations: list[Violation] = attrs.Factory(list)

    def add(self, param: str, message: str, *, code: str = "invalid_value") -> None:
        self.violations.append(Violation(param=param, message=message, code=code))


def _quote(values: Iterable[str]) -> str:
    return ", ".join(repr(v) for v in values)


def _models_for(endpoint: str) -> list[str]:
    return [name for name, rules in MODELS.items() if endpoint in rules.endpoints]


def _known_and_unequal(a: int | None, b: int | None) -> bool:
    return a is not None and b is not None and a != b


def _check_prompt(found: _Found, prompt: str, rules: ModelRules | None) -> None:
    if not prompt:
        found.add("prompt", "a non-empty prompt is required", code="missing_required_parameter")
    elif rules is not None and len(prompt) > rules.prompt_max_length:
        found.add(
            "prompt",
            f"the prompt is {len(prompt)} characters; {rules.name} takes at most "
            f"{rules.prompt_max_length}",
            code="string_above_max_length",
        )


def _check_n(found: _Found, n: int | None, rules: ModelRules | None) -> None:
    if n is None:
        return
    n_max = rules.n_max if rules is not None else 10
    if not 1 <= n <= n_max:
        allowed = "1" if n_max == 1 else f"1..{n_max}"
        model = f" for {rules.name}" if rules is not None else ""
        found.add("n", f"n is {n}; it must be {allowed}{model}")


def _check_choice(
    found: _Found,
    param: str,
    value: str | None,
    allowed: frozenset[str],
    model: str,
    *,
    hint: str = "",
) -> None:
    if value is None:
        return
    if not allowed:
        extra = f" ({hint})" if hint else ""
        found.add(
            param, f"{param} is not supported with {model}{extra}", code="unsupported_parameter"
        )
    elif value not in allowed:
        found.add(
            param,
            f"{value!r} is not a valid {param} for {model}; "
            f"supported values are {_quote(sorted(allowed))}",
        )


def _check_size(found: _Found, size: str | None, rules: ModelRules) -> None:
    if size is None or size in rules.sizes:
        return
    choices = _quote(rules.sizes)
    if not rules.custom_sizes:
        found.add(
            "size", f"{size!r} is not a valid size for {rules.name}; supported sizes are {choices}"
        )
        return
    parsed = parse_size(size)
    if parsed is None:
        found.add(
            "size", f"{size!r} is not a valid size for {rules.name}: use {choices} or WIDTHxHEIGHT"
        )
        return
    width, height = parsed
    if width % 16 or height % 16:
        found.add("size", f"{size!r}: both sides must be multiples of 16 for {rules.name}")
    elif not 1 / 3 <= width / height <= 3:
        found.add("size", f"{size!r}: the aspect ratio must be between 1:3 and 3:1")
    elif max(width, height) > 3840 or min(width, height) > 2160:
        found.add("size", f"{size!r}: {rules.name} makes images of at most 3840x2160")


def _check_any_size(found: _Found, size: str | None) -> None:
    """Without a model, only what no model makes is refused: past 3840x2160, or not a size."""
    if size is None or size == "auto":
        return
    parsed = parse_size(size)
    if parsed is None:
        found.add("size", f"{size!r} is not a size: use 'auto' or WIDTHxHEIGHT")
    elif max(parsed) > 3840 or parsed[0] * parsed[1] > MAX_PIXELS:
        found.add("size", f"{size!r}: no image model makes images larger than 3840x2160")


def _check_gpt_fields(
    found: _Found,
    request: GenerateRequest | EditRequest,
    rules: ModelRules | None,
) -> None:
    if request.partial_images is not None and not 0 <= request.partial_images <= 3:
        found.add("partial_images", f"partial_images is {request.partial_images}; it must be 0..3")
    compression = request.output_compression
    if compression is not None and not 0 <= compression <= 100:
        found.add("output_compression", f"output_compression is {compression}; it must be 0..100")
    if rules is None:
        return
    model = rules.name
    _check_choice(found, "quality", request.quality, rules.qualities, model)
    _check_choice(found, "background", request.background, rules.backgrounds, model)
    _check_choice(found, "moderation", request.moderation, rules.moderations, model)
    _check_choice(found, "output_format", request.output_format, rules.output_formats, model)
    _check_choice(found, "complexity", request.complexity, rules.complexities, model)
    if isinstance(request, GenerateRequest):
        _check_choice(found, "style", request.style, rules.styles, model)
    else:
        _check_choice(
            found, "input_fidelity", request.input_fidelity, rules.input_fidelities, model
        )
    if compression is not None:
        if not rules.output_formats:
            found.add(
                "output_compression",
                f"output_compression is not supported with {model}",
                code="unsupported_parameter",
            )
        elif request.output_format not in ("jpeg", "webp", *_ANIMATED_OR_VECTOR):
            # (GIF and SVG refuse compression of their own, in _check_output_kinds.)
            found.add(
                "output_compression", "output_compression needs output_format 'jpeg' or 'webp'"
            )
    if (
        request.background == "transparent"
        and rules.backgrounds
        and request.output_format not in (None, "png", "webp")
    ):
        found.add("background", "a transparent background needs output_format 'png' or 'webp'")
    if not rules.streaming:
        if request.stream:
            found.add(
                "stream", f"streaming is not supported with {model}", code="unsupported_parameter"
            )
        if request.partial_images is not None:
            found.add(
                "partial_images",
                f"partial_images is not supported with {model}",
                code="unsupported_parameter",
            )


def _check_output_kinds(
    found: _Found, request: GenerateRequest | EditRequest, rules: ModelRules | None
) -> None:
    """The rules of GIF and SVG output, which hold whatever the model."""
    output = request.output_format
    if output in _ANIMATED_OR_VECTOR:
        kind = output.upper()
        if request.stream:
            found.add("stream", f"{kind} output cannot be streamed", code="unsupported_parameter")
        if request.partial_images is not None:
            found.add(
                "partial_images",
                f"{kind} output has no partial images",
                code="unsupported_parameter",
            )
        if request.output_compression is not None:
            found.add(
                "output_compression",
                f"{kind} output takes no output_compression",
                code="unsupported_parameter",
            )
    if output == "svg" and request.n is not None and request.n != 1:
        found.add("n", f"n is {request.n}; SVG output makes one image, so n must be 1")
    if output == "gif" and isinstance(request, EditRequest) and request.mask is not None:
        found.add("mask", "GIF output takes no mask", code="unsupported_parameter")

    frames = request.frame_count
    for param, value in (("frame_count", frames), ("frame_duration_ms", request.frame_duration_ms)):
        if value is not None and output != "gif":
            found.add(param, f"{param} needs output_format 'gif'", code="unsupported_parameter")
    if frames is not None and not 2 <= frames <= MAX_FRAME_COUNT:
        found.add("frame_count", f"frame_count is {frames}; it must be 2..{MAX_FRAME_COUNT}")
    duration = request.frame_duration_ms
    if duration is not None and duration < 0:
        found.add("frame_duration_ms", f"frame_duration_ms is {duration}; it must be 0 or more")

    if request.svg is not None:
        if output != "svg":
            found.add("svg", "svg options need output_format 'svg'", code="unsupported_parameter")
        if not request.svg.model:
            found.add("svg.model", "svg.model names the SVG author; it cannot be empty")


def _check_edit_inputs(found: _Found, request: EditRequest, rules: ModelRules | None) -> None:
    if request.markup is not None:
        if request.mask is not None:
            found.add("markup", "give markup or a mask, not both")
        if request.is_json:
            found.add("markup", "markup is uploaded: send the edit as multipart, not JSON")
        if rules is not None and not rules.markup:
            able = [name for name, model in MODELS.items() if model.markup]
            found.add(
                "markup",
                f"markup is not supported with {rules.name}; models that take it: {_quote(able)}",
                code="unsupported_parameter",
            )
    if request.images is not None:
        if request.image is not None:
            found.add("image", "give either image (uploads) or images (references), not both")
        if not 1 <= len(request.images) <= MAX_INPUT_IMAGES:
            found.add("images", f"{len(request.images)} image references; give 1..16")
        for index, ref in enumerate(request.images):
            _check_ref(found, f"images[{index}]", ref)
        if request.mask is not None:
            if isinstance(request.mask, ImageRef):
                _check_ref(found, "mask", request.mask)
            else:
                found.add("mask", "a JSON edit takes its mask as an ImageRef")
        return
    if request.image is None:
        found.add(
            "image",
            "an edit needs image (one input or a list) or images (references)",
            code="missing_required_parameter",
        )
        return
    if isinstance(request.mask, ImageRef):
        found.add("mask", "an ImageRef mask needs image references in images=, not uploads")
    count = len(request.image_inputs)
    limit = rules.max_input_images if rules is not None else MAX_INPUT_IMAGES
    if not 1 <= count <= limit:
        model = f" with {rules.name}" if rules is not None else ""
        found.add("image", f"{count} images; an edit takes 1..{limit}{model}")


def _check_ref(found: _Found, param: str, ref: ImageRef) -> None:
    if (ref.image_url is None) == (ref.file_id is None):
        found.add(param, "an image reference needs exactly one of image_url or file_id")
        return
    url = ref.image_url
    if url is None:
        if not ref.file_id:
            found.add(f"{param}.file_id", "file_id is empty")
        return
    if len(url) > MAX_IMAGE_URL_LENGTH:
        found.add(f"{param}.image_url", f"image_url is {len(url)} characters; at most 20 MiB")
    if not url.startswith(("https://", "http://", "data:")):
        found.add(f"{param}.image_url", "image_url must be an http(s) URL or a data: URL")


def _check_file(
    found: _Found,
    param: str,
    info: ImageInfo,
    allowed_types: frozenset[str],
    max_bytes: int,
) -> None:
    if info.content_type is None:
        found.add(param, f"{info.filename!r} is not a PNG, JPEG or WebP image")
    elif info.content_type not in allowed_types:
        kinds = " or ".join(t.removeprefix("image/").upper() for t in sorted(allowed_types))
        found.add(param, f"{info.filename!r} is {info.content_type}; this model takes {kinds}")
    if info.size is not None and info.size >= max_bytes:
        found.add(
            param,
            f"{info.filename!r} is {info.size} bytes; it must be under {max_bytes // MiB} MB",
            code="file_too_large",
        )
