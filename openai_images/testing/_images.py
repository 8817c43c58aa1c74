"""Real images for the local Images server, made with Pillow (synchronous and CPU-bound).

The server calls these functions through ``anyio.to_thread.run_sync``. Everything comes from
the ``RenderJob`` alone, so one job always gives the same bytes: colours come from a hash
of the prompt, the layout from ``random.Random`` seeded with the job's seed and the image's
index, and the encoders run with fixed settings and without metadata.

- generations: a gradient in the prompt's colours, seeded shapes, and the prompt's words;
- edits: a collage of every input image with a prompt-coloured overlay, applied only where the
  mask's alpha is 0 when there is a mask;
- variations: the input, slightly zoomed, hue-shifted and tinted per variant;
- markup (edits): drawn over the first input before anything else;
- GIF output: ``frame_count`` frames of the picture scrolling sideways, with a progress bar;
- SVG output: a well-formed SVG document of the same gradient, shapes and words, as vectors.

``complexity`` sets how many shapes a picture gets (``low`` fewer, ``high`` more).

Example:
    >>> job = RenderJob(kind="generation", prompt="a red fox", width=64, height=64, n=2,
    ...                 output_format="png", seed=7)
    >>> [png[:4] for png in render(job)]
    [b'\\x89PNG', b'\\x89PNG']
"""

from __future__ import annotations

import colorsys
import contextlib
import ctypes
import ctypes.util
import hashlib
import io
import math
import random
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Literal, TypeVar
from xml.sax.saxutils import escape, quoteattr

import attrs

from openai_images._requests import OutputFormat

try:
    from PIL import Image, ImageChops, ImageDraw, ImageFile, ImageFont, ImageOps
except ImportError as error:
    raise ImportError(
        "The local Images server needs Pillow: pip install 'openai-images[server]'"
    ) from error

__all__ = [
    "MAX_DECODING_PIXELS",
    "MAX_INPUT_PIXELS",
    "MAX_REQUEST_PIXELS",
    "ImageDecodeError",
    "RenderJob",
    "inspect_image",
    "render",
    "render_partials",
]

MAX_INPUT_PIXELS = 40_000_000
"""The largest input image (width times height) the server decodes; larger ones are refused.

Checked on the header before any pixel is decoded. Pillow's own global guard
(``Image.MAX_IMAGE_PIXELS``) is left as it is, and its warning is turned into an error.
"""

MAX_REQUEST_PIXELS = 64_000_000
"""The most input pixels (all images and the mask together) one request may bring.

A 4 KB PNG can claim 6000x6000 pixels, so a request is judged by what it would decode, not
by its bytes; the server refuses a larger one with the API's ``invalid_value`` error.
"""

MAX_DECODING_PIXELS = 48_000_000
"""The most input pixels this process decodes at full size at once, across all requests.

A decode waits for room; a decoded image is at once scaled down to what an answer can use
(``_LOAD_PIXELS``), so a burst of large inputs costs one or two images' worth of memory
rather than one per request.
"""

# No answer is larger than 3840x2160: inputs are scaled to at most this as they are decoded.
_LOAD_PIXELS = 4096 * 4096
# Past this many pixels a decode hands its freed memory back to the system afterwards.
_TRIM_PIXELS = 4_000_000

_T = TypeVar("_T")


class _PixelBudget:
    """A weighted semaphore of pixels for the worker threads that decode inputs."""

    def __init__(self, total: int) -> None:
        self._total = total
        self._free = total
        self._changed = threading.Condition()

    @contextlib.contextmanager
    def hold(self, pixels: int) -> Iterator[None]:
        wanted = min(pixels, self._total)  # one image over the total may still go alone
        with self._changed:
            self._changed.wait_for(lambda: self._free >= wanted)
            self._free -= wanted
        try:
            yield
        finally:
            with self._changed:
                self._free += wanted
                self._changed.notify_all()


_DECODING = _PixelBudget(MAX_DECODING_PIXELS)


def _trim_memory() -> Callable[[], object]:
    """glibc's ``malloc_trim``: freed image blocks otherwise stay in the heap for good."""
    name = ctypes.util.find_library("c")
    try:
        trim = ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to hand back
        trim = None
    if trim is None:
        return lambda: None
    return lambda: trim(0)


_release_memory = _trim_memory()
_Colour = tuple[int, int, int]

# Only the formats an image API plausibly meets: Pillow would also open EPS (through
# Ghostscript) and a dozen exotic formats, which a server fed by strangers should not.
_FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP")
# What Pillow raises on broken data, besides its bomb guard: OSError (truncated, unidentified),
# SyntaxError (broken PNG chunks), ValueError (oversized PNG text), EOFError (cut-off frames).
_DECODE_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    Image.DecompressionBombError,
    Image.DecompressionBombWarning,
)
# warnings.catch_warnings swaps process-wide state; overlapping exits from two threads would
# restore each other's filters.
_WARNINGS_LOCK = threading.Lock()

_SKETCH_SIDE = 256  # generations are drawn this big, then scaled up: fast at any size
_RESAMPLE = Image.Resampling.BILINEAR
_WHITE: _Colour = (255, 255, 255)
_BLACK: _Colour = (0, 0, 0)
_GOLDEN_TURN = 0.381966  # spreads variant tints around the colour wheel without repeats
_TINT_WEIGHT = 0.12  # enough to tell a flat input's variants apart, little enough to look alike


MAX_FRAME_DURATION_MS = 655_350
"""The longest frame delay a GIF can encode (65,535 hundredths of a second)."""

_SHAPES = {"low": (2, 4), "medium": (4, 8), "high": (8, 14)}
# Characters XML 1.0 allows; a prompt may carry others (NUL), which an SVG must leave out.
_NOT_XML = dict.fromkeys((*range(9), 11, 12, *range(14, 32), 65534, 65535))


class ImageDecodeError(ValueError):
    """An input image that Pillow cannot read, or one too large to decode safely."""


@attrs.frozen(kw_only=True)
class RenderJob:
    """Everything that decides what one request's images look like.

    Attributes:
        kind: Which endpoint the images are for.
        prompt: The request's prompt; ``""`` for variations.
        width: The output width in pixels.
        height: The output height in pixels.
        n: How many images to make.
        output_format: The encoding of every output image.
        compression: JPEG or WebP quality, 0 to 100; ``None`` means the best
            (95 for JPEG, 100 for WebP).
        transparent: Whether the background is transparent (PNG and WebP keep alpha).
        seed: Derived by the caller from the request's fields.
        inputs: The input images on disk (edits: 1 to 16, variations: 1).
        mask: A PNG whose alpha 0 marks where to edit the first input.
        markup: A PNG drawn over the first input (edits).
        complexity: ``"low"``, ``"medium"`` or ``"high"``: fewer or more shapes.
        frame_count: Frames of a GIF.
        frame_duration_ms: Each GIF frame's delay, rounded to 10 ms and capped at
            ``MAX_FRAME_DURATION_MS``.
    """

    kind: Literal["generation", "edit", "variation"]
    prompt: str
    width: int = attrs.field(validator=attrs.validators.ge(1))
    height: int = attrs.field(validator=attrs.validators.ge(1))
    n: int = attrs.field(validator=attrs.validators.ge(1))
    output_format: OutputFormat
    compression: int | None = attrs.field(
        default=None,
        validator=attrs.validators.optional([attrs.validators.ge(0), attrs.validators.le(100)]),
    )
    transparent: bool = False
    seed: int
    inputs: tuple[Path, ...] = ()
    mask: Path | None = None
    markup: Path | None = None
    complexity: str | None = None
    frame_count: int = attrs.field(default=9, validator=attrs.validators.ge(1))
    frame_duration_ms: int = attrs.field(default=200, validator=attrs.validators.ge(0))

    def __attrs_post_init__(self) -> None:
        if self.kind != "generation" and not self.inputs:
            raise ValueError(f"{self.kind} jobs need at least one input image")


def render(job: RenderJob) -> list[bytes]:
    """Make the job's ``n`` images, encoded in its output format.

    Raises:
        ImageDecodeError: An input image or the mask cannot be decoded.
    """
    if job.output_format == "svg":
        return [_svg(job, index) for index in range(job.n)]
    make = _maker(job)
    if job.output_format == "gif":
        return [_gif(make(index), job) for index in range(job.n)]
    return [_encode(make(index), job) for index in range(job.n)]


def render_partials(job: RenderJob, *, index: int, count: int) -> list[bytes]:
    """Make ``count`` partial images, each closer to image ``index`` of ``render``.

    They are the final image pixelated less and less, at its size and in its format.

    Raises:
        ImageDecodeError: An input image or the mask cannot be decoded.
        ValueError: ``count`` is not 0 to 3, or ``index`` is not below ``job.n``.
    """
    if not 0 <= count <= 3:
        raise ValueError(f"count must be 0 to 3, not {count}")
    if not 0 <= index < job.n:
        raise ValueError(f"index must be 0 to {job.n - 1}, not {index}")
    if count == 0:
        return []
    final = _maker(job)(index)
    return [_encode(_pixelate(final, 2 ** (count + 1 - step)), job) for step in range(count)]


def inspect_image(path: Path) -> tuple[str, int, int, bool]:
    """Open and verify an image with Pillow, without decoding its pixels.

    Returns:
        ``(content_type, width, height, has_alpha)``, e.g. ``("image/png", 1024, 1024, True)``.

    Raises:
        ImageDecodeError: Pillow cannot read it, or it is larger than ``MAX_INPUT_PIXELS``.
    """

    def facts(picture: ImageFile.ImageFile) -> tuple[str, int, int, bool]:
        found = (
            picture.get_format_mimetype() or f"image/{(picture.format or 'unknown').lower()}",
            picture.width,
            picture.height,
            picture.has_transparency_data,
        )
        picture.verify()
        return found

    return _read(path, facts)


def _read(path: Path, use: Callable[[ImageFile.ImageFile], _T]) -> _T:
    """Open ``path`` and ``use`` it, turning every way decoding fails into ImageDecodeError."""
    try:
        with _WARNINGS_LOCK, warnings.catch_warnings():
            # Between its two limits Pillow only warns; a server fed by strangers refuses.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            picture = Image.open(path, formats=_FORMATS)
        with picture:
            if picture.width * picture.height > MAX_INPUT_PIXELS:
                raise ImageDecodeError(
                    f"image {path.name!r} is {picture.width}x{picture.height}, more than "
                    f"{MAX_INPUT_PIXELS} pixels"
                )
            return use(picture)
    except ImageDecodeError:
        raise
    except _DECODE_ERRORS as error:
        raise ImageDecodeError(f"cannot decode image {path.name!r}: {error}") from error


def _load(path: Path) -> Image.Image:
    """Decode an image as RGBA, at most ``_LOAD_PIXELS`` large; the file is closed on return.

    The full-size decode happens inside the process-wide pixel budget and is scaled down
    at once, so only the small copy outlives it.
    """

    def decode(picture: ImageFile.ImageFile) -> Image.Image:
        pixels = picture.width * picture.height
        with _DECODING.hold(pixels):
            if pixels > _LOAD_PIXELS:
                # JPEG can decode at a fraction of its size; other formats decode whole.
                shrink = math.sqrt(pixels / _LOAD_PIXELS)
                picture.draft(None, (int(picture.width / shrink), int(picture.height / shrink)))
            scaled: Image.Image = picture
            left = picture.width * picture.height
            if left > _LOAD_PIXELS:
                scaled = picture.reduce(math.ceil(math.sqrt(left / _LOAD_PIXELS)))
            result = scaled.convert("RGBA")
            del scaled
        if pixels >= _TRIM_PIXELS:
            _release_memory()
        return result

    return _read(path, decode)


def _maker(job: RenderJob) -> Callable[[int], Image.Image]:
    """Decode the job's inputs once, and return what draws image ``index`` from them."""
    if job.kind == "edit":
        return _edit_maker(job)
    if job.kind == "variation":
        return _variation_maker(job)
    return lambda index: _generate(job, index)


def _generate(job: RenderJob, index: int) -> Image.Image:
    """A gradient in the prompt's colours, seeded shapes on it, and the prompt's words."""
    rng = _rng(job, index)
    palette = _palette(job.prompt)
    sketch_size = _sketch_size(job.width, job.height)
    sketch = Image.new("RGBA", sketch_size, (0, 0, 0, 0))
    _draw_shapes(
        ImageDraw.Draw(sketch), rng, palette, sketch_size, outline=None, complexity=job.complexity
    )
    if not job.transparent:
        background = _gradient(sketch_size, palette[0], palette[1], rng).convert("RGBA")
        sketch = Image.alpha_composite(background, sketch).convert("RGB")
    image = sketch.resize((job.width, job.height), _RESAMPLE)
    _write_words(image, job.prompt)
    return image


def _edit_maker(job: RenderJob) -> Callable[[int], Image.Image]:
    """A collage of every input with a seeded overlay, let through the mask's clear pixels."""
    size = (job.width, job.height)
    collage = Image.new("RGBA", size, (0, 0, 0, 0))
    base: Image.Image | None = None
    for position, (path, box) in enumerate(
        zip(job.inputs, _grid(len(job.inputs), size), strict=True)
    ):
        picture = _load(path)
        if position == 0 and job.markup is not None:
            # Markup guides the edit: it is drawn over the first image, at its size.
            markup = _load(job.markup).resize(picture.size, _RESAMPLE)
            picture = Image.alpha_composite(picture, markup)
        left, top, right, bottom = box
        collage.paste(
            picture.resize((max(1, right - left), max(1, bottom - top)), _RESAMPLE), box[:2]
        )
        if position == 0 and job.mask is not None:
            base = picture.resize(size, _RESAMPLE)
        del picture  # inputs may be up to 50 MB each: hold one decoded at a time
    edit_here = None
    if job.mask is not None:
        kept = _load(job.mask).getchannel("A").resize(size, Image.Resampling.NEAREST)
        edit_here = ImageChops.invert(kept)
    palette = _palette(job.prompt)
    outline = max(2, min(size) // 48)

    def make(index: int) -> Image.Image:
        image = collage.copy()
        _draw_shapes(
            ImageDraw.Draw(image),
            _rng(job, index),
            palette,
            size,
            outline=outline,
            complexity=job.complexity,
        )
        _write_words(image, job.prompt)
        if base is None or edit_here is None:
            return image
        result = base.copy()
        result.paste(image, (0, 0), edit_here)
        return result

    return make


def _variation_maker(job: RenderJob) -> Callable[[int], Image.Image]:
    """The input, zoomed in a little, hue-turned and tinted differently for each variant."""
    source = _load(job.inputs[0])
    size = (job.width, job.height)

    def make(index: int) -> Image.Image:
        rng = _rng(job, index)
        zoom = rng.uniform(0.92, 0.98)
        crop_width, crop_height = source.width * zoom, source.height * zoom
        left = rng.uniform(0, source.width - crop_width)
        top = rng.uniform(0, source.height - crop_height)
        picture = source.resize(
            size, _RESAMPLE, box=(left, top, left + crop_width, top + crop_height)
        )
        tint = colorsys.hsv_to_rgb((rng.random() + index * _GOLDEN_TURN) % 1.0, 1.0, 1.0)
        recolour = _recolour_matrix(math.radians(rng.uniform(-15, 15)), tint, _TINT_WEIGHT)
        result = picture.convert("RGB").convert("RGB", recolour)
        result.putalpha(picture.getchannel("A"))
        return result

    return make


def _recolour_matrix(
    angle: float, tint: tuple[float, float, float], weight: float
) -> tuple[float, ...]:
    """The RGB matrix that turns hues by ``angle`` and mixes in ``weight`` of ``tint`` (0 to 1).

    Turning hues is a rotation about the grey axis; as one matrix for ``Image.convert`` it
    costs a fraction of a round trip through HSV.
    """
    cos, sin = math.cos(angle), math.sin(angle) / math.sqrt(3)
    same, plus, minus = cos + (1 - cos) / 3, (1 - cos) / 3 + sin, (1 - cos) / 3 - sin
    rows = ((same, minus, plus), (plus, same, minus), (minus, plus, same))
    matrix: list[float] = []
    for row, channel in zip(rows, tint, strict=True):
        matrix.extend((1 - weight) * factor for factor in row)
        matrix.append(255 * weight * channel)
    return tuple(matrix)


def _rng(job: RenderJob, index: int) -> random.Random:
    # A str seed is hashed with SHA-512: stable across runs, unlike hash(). The prompt is in
    # it too, so another prompt moves the shapes even if the caller's seed stays the same.
    prompt = hashlib.sha256(job.prompt.encode("utf-8", "surrogatepass")).hexdigest()
    return random.Random(f"{job.kind}:{job.seed}:{index}:{prompt}")


def _palette(prompt: str) -> list[_Colour]:
    digest = hashlib.sha256(prompt.encode("utf-8", "surrogatepass")).digest()
    return [(digest[at], digest[at + 1], digest[at + 2]) for at in range(0, 18, 3)]


def _sketch_size(width: int, height: int) -> tuple[int, int]:
    scale = min(1.0, _SKETCH_SIDE / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def _gradient(
    size: tuple[int, int], start: _Colour, end: _Colour, rng: random.Random
) -> Image.Image:
    if rng.random() < 0.25:
        ramp = Image.radial_gradient("L")
    else:
        ramp = Image.linear_gradient("L").rotate(90 * rng.randrange(4))
    return ImageOps.colorize(ramp.resize(size, _RESAMPLE), start, end)


def _draw_shapes(
    draw: ImageDraw.ImageDraw,
    rng: random.Random,
    palette: list[_Colour],
    size: tuple[int, int],
    *,
    outline: int | None,
    complexity: str | None = None,
) -> None:
    """Draw seeded shapes (4 to 8 at medium complexity): filled, or outlined ``outline`` thick."""
    width, height = size
    fewest, most = _SHAPES.get(complexity or "medium", _SHAPES["medium"])
    for _ in range(rng.randint(fewest, most)):
        extent = rng.uniform(0.12, 0.4) * min(width, height)
        left = rng.uniform(0, width - extent)
        top = rng.uniform(0, height - extent)
        right, bottom = left + extent, top + extent * rng.uniform(0.6, 1.4)
        shape = rng.randrange(3)
        colour = (*rng.choice(palette), 255 if outline else rng.randint(190, 255))
        fill, line = (None, colour) if outline else (colour, None)
        if shape == 0:
            draw.ellipse((left, top, right, bottom), fill=fill, outline=line, width=outline or 1)
        elif shape == 1:
            draw.rectangle((left, top, right, bottom), fill=fill, outline=line, width=outline or 1)
        else:
            corners = [(left, bottom), (right, bottom), ((left + right) / 2, top)]
            draw.polygon(corners, fill=fill, outline=line, width=outline or 1)


def _write_words(image: Image.Image, text: str) -> None:
    """Write the first words of ``text`` across the top third, white on a black outline."""
    width, height = image.size
    font_size = max(8, min(width, height) // 16)
    font = ImageFont.load_default(size=font_size)
    margin = max(2, font_size // 2)
    spacing = max(1, font_size // 4)
    max_lines = max(1, (height // 3) // (font_size + spacing))
    lines = _wrap(text.split(), font, width - 2 * margin, max_lines)
    if lines:
        ImageDraw.Draw(image).multiline_text(
            (margin, margin),
            "\n".join(lines),
            font=font,
            fill=(*_WHITE, 255),
            spacing=spacing,
            stroke_width=max(1, font_size // 10),
            stroke_fill=(*_BLACK, 255),
        )


def _wrap(
    words: Iterable[str], font: ImageFont.FreeTypeFont | ImageFont.ImageFont, room: int, most: int
) -> list[str]:
    """Fill at most ``most`` lines ``room`` pixels wide, greedily, and drop the rest."""
    lines: list[str] = []
    line = ""
    for whole in words:
        word = whole[:32]  # a 32,000-letter "word" must not cost a 32,000-letter measurement
        candidate = f"{line} {word}" if line else word
        if not line or font.getlength(candidate) <= room:
            line = candidate
            continue
        lines.append(line)
        if len(lines) == most:
            return lines
        line = word
    if line:
        lines.append(line)
    return lines


def _grid(count: int, size: tuple[int, int]) -> list[tuple[int, int, int, int]]:
    """Split ``size`` into ``count`` cells in rows; the last row's cells widen to fill it."""
    width, height = size
    columns = math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    cells = []
    for row in range(rows):
        in_row = min(columns, count - row * columns)
        top, bottom = row * height // rows, (row + 1) * height // rows
        for column in range(in_row):
            cells.append((column * width // in_row, top, (column + 1) * width // in_row, bottom))
    return cells


def _pixelate(image: Image.Image, block: int) -> Image.Image:
    width, height = image.size
    coarse = image.resize((max(1, width // block), max(1, height // block)), Image.Resampling.BOX)
    return coarse.resize(image.size, Image.Resampling.NEAREST)


def _encode(image: Image.Image, job: RenderJob) -> bytes:
    if not job.transparent or job.output_format == "jpeg":
        image = _flatten(image)
    # Inputs' ICC profiles and EXIF ride along in ``info`` through resizing; encode pixels only.
    image.info.clear()
    buffer = io.BytesIO()
    if job.output_format == "jpeg":
        quality = 95 if job.compression is None else job.compression
        image.save(buffer, format="JPEG", quality=quality)
    elif job.output_format == "webp":
        quality = 100 if job.compression is None else job.compression
        # method 0 is libwebp's fastest; a test server favours speed over size.
        image.save(buffer, format="WEBP", quality=quality, method=0)
    else:
        image.save(buffer, format="PNG", optimize=False, compress_level=1)
    return buffer.getvalue()


def _gif(image: Image.Image, job: RenderJob) -> bytes:
    """An animated GIF: the picture scrolls one step sideways per frame, a bar grows below."""
    # One palette for every frame, worked out once: the frames are the same picture moved.
    base = _flatten(image).quantize(colors=255, method=Image.Quantize.FASTOCTREE)
    palette = base.getpalette() or []
    palette = palette[: 255 * 3] + [0] * max(0, 255 * 3 - len(palette)) + list(_WHITE)
    base.putpalette(palette)
    width, height = base.size
    bar = max(2, height // 64)
    frames = []
    for frame in range(job.frame_count):
        shifted = ImageChops.offset(base, frame * width // job.frame_count, 0)
        # The bar (palette entry 255, white) keeps every frame distinct, so the encoder
        # never merges two of them.
        ImageDraw.Draw(shifted).rectangle(
            (0, height - bar, (frame + 1) * width // job.frame_count - 1, height - 1),
            fill=255,
        )
        frames.append(shifted)
    duration = min(MAX_FRAME_DURATION_MS, round(job.frame_duration_ms / 10) * 10)
    buffer = io.BytesIO()
    frames[0].save(
        buffer,
        format="GIF",
        save_all=True,
        append_images=frames[1:],
        duration=duration,
        loop=0,
        optimize=False,
        disposal=1,
    )
    return buffer.getvalue()


def _svg(job: RenderJob, index: int) -> bytes:
    """A well-formed SVG document: the prompt's gradient, seeded shapes, and its words."""
    rng = _rng(job, index)
    palette = _palette(job.prompt)
    width, height = job.width, job.height
    hexes = ["#{:02x}{:02x}{:02x}".format(*colour) for colour in palette]
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}">',
        f"<title>{_xml_text(job.prompt[:200])}</title>",
        '<defs><linearGradient id="bg" x1="0" y1="0" x2="1" y2="1">'
        f'<stop offset="0" stop-color="{hexes[0]}"/><stop offset="1" stop-color="{hexes[1]}"/>'
        "</linearGradient></defs>",
    ]
    if not job.transparent:
        parts.append(f'<rect width="{width}" height="{height}" fill="url(#bg)"/>')
    fewest, most = _SHAPES.get(job.complexity or "medium", _SHAPES["medium"])
    for _ in range(rng.randint(fewest, most)):
        extent = rng.uniform(0.12, 0.4) * min(width, height)
        left, top = rng.uniform(0, width - extent), rng.uniform(0, height - extent)
        tall = extent * rng.uniform(0.6, 1.4)
        fill = f'fill="{rng.choice(hexes)}" fill-opacity="{rng.randint(190, 255) / 255:.2f}"'
        shape = rng.randrange(3)
        if shape == 0:
            parts.append(
                f'<ellipse cx="{left + extent / 2:.1f}" cy="{top + tall / 2:.1f}" '
                f'rx="{extent / 2:.1f}" ry="{tall / 2:.1f}" {fill}/>'
            )
        elif shape == 1:
            parts.append(
                f'<rect x="{left:.1f}" y="{top:.1f}" width="{extent:.1f}" '
                f'height="{tall:.1f}" {fill}/>'
            )
        else:
            points = (
                f"{left:.1f},{top + tall:.1f} {left + extent:.1f},{top + tall:.1f} "
                f"{left + extent / 2:.1f},{top:.1f}"
            )
            parts.append(f'<polygon points="{points}" {fill}/>')
    font_size = max(8, min(width, height) // 16)
    words = " ".join(job.prompt.split()[:12])
    parts.append(
        f'<text x="{font_size // 2}" y="{font_size * 3 // 2}" font-family="sans-serif" '
        f'font-size="{font_size}" fill="white" stroke="black" stroke-width="1" '
        f"aria-label={quoteattr(_xml_text(words))}>{_xml_text(words)}</text>"
    )
    parts.append("</svg>")
    return "\n".join(parts).encode("utf-8")


def _xml_text(text: str) -> str:
    """Text safe inside an XML element: escaped, and without characters XML forbids."""
    kept = text.translate(_NOT_XML)
    # Lone surrogates cannot be encoded as UTF-8 at all.
    kept = kept.encode("utf-8", "ignore").decode("utf-8")
    return escape(kept)


def _flatten(image: Image.Image) -> Image.Image:
    """Lay an RGBA image on white (an opaque pixel keeps its exact colour)."""
    if image.mode == "RGB":
        return image
    flat = Image.new("RGB", image.size, _WHITE)
    flat.paste(image, (0, 0), image.getchannel("A"))
    return flat
