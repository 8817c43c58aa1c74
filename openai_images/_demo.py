"""``openai-images demo``: what the library is for, in one run, with timings.

It starts a local Images server in-process (or, with ``real=True``, uses the real API),
then generates an image with a current model, draws four product photos and edits them
into one gift basket with a mask, guides an edit with markup drawn over a photo, makes an
animated GIF and an SVG, streams a generation with partial images, and sends a batch of
concurrent edits with a progress bar. Every image lands under the output folder; a table
of requests, wall time, throughput and tokens per step comes last.

Only the public API is used, so this file doubles as an example of it.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TextIO

import anyio
import attrs

from openai_images import (
    AsyncImagesClient,
    EditRequest,
    GenerateRequest,
    ImageGenCompletedEvent,
    ImageGenPartialImageEvent,
    ImagesResponse,
    SvgOptions,
    SvgReasoning,
    Usage,
)
from openai_images._imagebytes import image_bytes
from openai_images._progress import progress_display
from openai_images._responses import write_atomically
from openai_images._sniff import image_extension

try:
    from PIL import Image, ImageDraw, ImageFont
except ImportError as error:
    raise ImportError(
        "The demo draws its inputs with Pillow: pip install 'openai-images[server]'"
    ) from error

__all__ = ["DEMO_KEY", "PRODUCTS", "StepResult", "draw_products", "format_table", "run_demo"]

DEMO_KEY = "sk-local-demo"
"""The key the demo's local server is given (and the client sends)."""

PRODUCTS = ("soap", "candle", "tea", "jam")
"""The product photos the demo draws, in the order the edit sends them."""

_PHOTO_SIZE = 256

MODEL = "gpt-image-2.5-flare"
"""The demo's image model: a current one, with custom sizes, GIF and SVG output, and markup."""


@attrs.frozen(kw_only=True)
class StepResult:
    """The measurements of one step of the demo.

    Attributes:
        name: What the step did.
        requests: The requests it sent.
        seconds: Its wall time.
        tokens: The tokens the API reported, or ``None`` when it reports none.
        files: The images it wrote.
        failed: Its requests that failed.
    """

    name: str
    requests: int
    seconds: float
    tokens: int | None
    files: tuple[Path, ...] = ()
    failed: int = 0

    @property
    def throughput(self) -> float:
        """Requests per second."""
        return self.requests / self.seconds if self.seconds > 0 else float("inf")


# -- the inputs: four product photos and a mask, drawn with Pillow ----------------------


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def _label(draw: ImageDraw.ImageDraw, centre: tuple[int, int], text: str, fill: str) -> None:
    font = _font(26)
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    x = centre[0] - (right - left) // 2 - left
    y = centre[1] - (bottom - top) // 2 - top
    draw.text((x, y), text, fill=fill, font=font)


def _soap(draw: ImageDraw.ImageDraw) -> None:
    for x, y, r in ((60, 60, 14), (190, 50, 20), (210, 200, 10), (40, 200, 16), (150, 35, 8)):
        draw.ellipse((x - r, y - r, x + r, y + r), outline="#7fb8d8", width=3)
    draw.rounded_rectangle((40, 95, 216, 175), radius=32, fill="#bfe6d4", outline="#6aa88a")
    _label(draw, (128, 135), "SOAP", "#2f6b52")


def _candle(draw: ImageDraw.ImageDraw) -> None:
    draw.rectangle((88, 110, 168, 222), fill="#f3e3c3", outline="#b89a66", width=3)
    draw.ellipse((88, 100, 168, 120), fill="#f8ecd4", outline="#b89a66", width=3)
    draw.line((128, 110, 128, 90), fill="#333333", width=3)
    draw.ellipse((116, 52, 140, 94), fill="#ff9a1f")
    draw.ellipse((122, 66, 134, 92), fill="#ffe066")
    draw.rectangle((88, 150, 168, 180), fill="#8c5a9e")
    _label(draw, (128, 165), "LAV", "#ffffff")


def _tea(draw: ImageDraw.ImageDraw) -> None:
    draw.rounded_rectangle((70, 78, 186, 222), radius=10, fill="#3f7a4a", outline="#24482b")
    draw.rectangle((64, 62, 192, 84), fill="#2b5633", outline="#1b3520", width=3)
    draw.ellipse((98, 96, 158, 136), fill="#9fd37f", outline="#24482b", width=2)
    draw.line((104, 130, 152, 100), fill="#24482b", width=2)
    _label(draw, (128, 178), "TEA", "#f5f0d0")


def _jam(draw: ImageDraw.ImageDraw) -> None:
    draw.rounded_rectangle((72, 92, 184, 222), radius=22, fill="#a8243c", outline="#6d1426")
    draw.rectangle((80, 62, 176, 94), fill="#d9c27a", outline="#9c8646", width=3)
    for x in range(80, 176, 16):
        draw.rectangle((x, 62, x + 8, 78), fill="#c4463c")
    draw.ellipse((90, 130, 166, 190), fill="#fff7ea", outline="#6d1426", width=2)
    _label(draw, (128, 160), "JAM", "#a8243c")


_DRAWINGS = {
    "soap": ("#e6f3f8", _soap),
    "candle": ("#fbf1e2", _candle),
    "tea": ("#eaf4e4", _tea),
    "jam": ("#fcecec", _jam),
}


def draw_products(folder: Path, *, size: int = _PHOTO_SIZE) -> tuple[list[Path], Path]:
    """Draw the four product photos and a mask as square PNGs in ``folder``.

    The mask is opaque with a transparent oval in the middle: the API edits only where
    the mask's alpha is 0. A markup sketch (``markup.png``) is drawn beside them.

    Returns:
        The photos' paths in ``PRODUCTS`` order, and the mask's path.
    """
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in PRODUCTS:
        background, draw_product = _DRAWINGS[name]
        photo = Image.new("RGB", (_PHOTO_SIZE, _PHOTO_SIZE), background)
        draw = ImageDraw.Draw(photo)
        draw.ellipse((40, 204, 216, 236), fill="#d6d0c8")
        draw_product(draw)
        if size != _PHOTO_SIZE:
            photo = photo.resize((size, size), Image.Resampling.LANCZOS)
        path = folder / f"{name}.png"
        photo.save(path, format="PNG")
        paths.append(path)
    mask = Image.new("RGBA", (size, size), (255, 255, 255, 255))
    inset = size // 8
    ImageDraw.Draw(mask).ellipse((inset, inset, size - inset, size - inset), fill=(0, 0, 0, 0))
    mask_path = folder / "mask.png"
    mask.save(mask_path, format="PNG")
    # Markup: transparent but for what the edit should follow, here a ring and an arrow.
    markup = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    sketch = ImageDraw.Draw(markup)
    sketch.ellipse((size // 4, size // 8, size * 3 // 4, size // 2), outline="#e0245e", width=4)
    sketch.line((size // 8, size * 7 // 8, size // 3, size // 2), fill="#e0245e", width=4)
    markup.save(folder / "markup.png", format="PNG")
    return paths, mask_path


# -- the steps --------------------------------------------------------------------------


def _tokens(usage: Usage | None) -> int | None:
    return usage.total_tokens if usage is not None else None


def _add(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else a + b


async def _save(
    client: AsyncImagesClient, response: ImagesResponse, folder: Path, stem: str
) -> list[Path]:
    paths = []
    for index, image in enumerate(response.data, start=1):
        data = await image_bytes(image, downloader=client, position=index - 1)
        extension = image_extension(data, output_format=response.output_format)
        path = folder / f"{stem}-{index}.{extension}"
        await anyio.to_thread.run_sync(write_atomically, path, data)
        paths.append(path)
    return paths


async def _generate(client: AsyncImagesClient, folder: Path) -> StepResult:
    started = time.perf_counter()
    response = await client.generate(
        prompt="a cosy kitchen shelf of handmade goods, morning light",
        model=MODEL,
        size="1024x1024",
        quality="low",
    )
    files = await _save(client, response, folder, "generation")
    return StepResult(
        name=f"generate ({MODEL})",
        requests=1,
        seconds=time.perf_counter() - started,
        tokens=_tokens(response.usage),
        files=tuple(files),
    )


async def _gift_basket(
    client: AsyncImagesClient, folder: Path, photos: Sequence[Path], mask: Path
) -> StepResult:
    started = time.perf_counter()
    response = await client.edit(
        image=list(photos),
        mask=mask,
        prompt="a gift basket with the soap, the candle, the tea and the jam, tied with a bow",
        model="gpt-image-1.5",
        size="1024x1024",
        quality="low",
    )
    files = await _save(client, response, folder, "gift-basket")
    return StepResult(
        name=f"edit: {len(photos)} photos + mask",
        requests=1,
        seconds=time.perf_counter() - started,
        tokens=_tokens(response.usage),
        files=tuple(files),
    )


async def _markup(client: AsyncImagesClient, folder: Path, photo: Path, markup: Path) -> StepResult:
    started = time.perf_counter()
    # markup is drawn over the image to guide the edit (GPT Image 2.5; never with a mask).
    request = EditRequest(
        image=photo,
        markup=markup,
        prompt="add a sprig of lavender where the ring is, following the arrow",
        model=MODEL,
        quality="low",
    )
    response = await client.send(request)
    files = await _save(client, response, folder, "markup-edit")
    return StepResult(
        name="markup edit",
        requests=1,
        seconds=time.perf_counter() - started,
        tokens=_tokens(response.usage),
        files=tuple(files),
    )


async def _gif(client: AsyncImagesClient, folder: Path) -> StepResult:
    started = time.perf_counter()
    request = GenerateRequest(
        prompt="a candle flame flickering, loopable",
        model=MODEL,
        output_format="gif",
        frame_count=6,
        frame_duration_ms=120,
        size="256x256",
    )
    response = await client.send(request)
    files = await _save(client, response, folder, "animation")
    return StepResult(
        name="gif (6 frames)",
        requests=1,
        seconds=time.perf_counter() - started,
        tokens=_tokens(response.usage),
        files=tuple(files),
    )


async def _svg(client: AsyncImagesClient, folder: Path) -> StepResult:
    started = time.perf_counter()
    request = GenerateRequest(
        prompt="a flat logo for a shop of handmade goods",
        model="gpt-image-2.5-sunburst",
        output_format="svg",
        svg=SvgOptions(model="gpt-5.5", reasoning=SvgReasoning(effort="low")),
        size="512x512",
    )
    response = await client.send(request)
    files = await _save(client, response, folder, "logo")
    svg_tokens = response.svg_usage.total_tokens if response.svg_usage is not None else None
    return StepResult(
        name="svg (logo)",
        requests=1,
        seconds=time.perf_counter() - started,
        tokens=_add(_tokens(response.usage), svg_tokens),
        files=tuple(files),
    )


async def _stream(client: AsyncImagesClient, folder: Path, out: TextIO) -> StepResult:
    started = time.perf_counter()
    files: list[Path] = []
    tokens = None
    stream = await client.generate(
        prompt="a lighthouse on a cliff at dusk, watercolor",
        model=MODEL,
        size="1024x1024",
        quality="low",
        stream=True,
        partial_images=3,
    )
    async with stream:
        async for event in stream:
            if isinstance(event, ImageGenPartialImageEvent):
                path = folder / f"stream-partial-{event.partial_image_index + 1}.png"
            elif isinstance(event, ImageGenCompletedEvent):
                path = folder / "stream-final.png"
                tokens = _tokens(event.usage)
            else:
                continue
            await anyio.to_thread.run_sync(event.save, path)
            files.append(path)
            print(f"  {time.perf_counter() - started:5.2f}s  {event.type:34} -> {path}", file=out)
    return StepResult(
        name="stream (3 partial images)",
        requests=1,
        seconds=time.perf_counter() - started,
        tokens=tokens,
        files=tuple(files),
    )


_TOUCHES = (
    "wrapped in kraft paper",
    "with a sprig of lavender",
    "on a marble tray",
    "tied with a linen ribbon",
    "beside a bowl of petals",
    "in a wicker crate",
    "with a handwritten tag",
    "on a bed of straw",
)


async def _batch(
    client: AsyncImagesClient,
    folder: Path,
    photo: Path,
    mask: Path,
    *,
    size: int,
    concurrency: int,
    out: TextIO,
) -> StepResult:
    # Generated lazily: the engine pulls a request only when a worker is free.
    requests = (
        EditRequest(
            image=photo,
            mask=mask,
            prompt=f"the bar of soap {_TOUCHES[index % len(_TOUCHES)]}, product photo #{index}",
            model=MODEL,
            size="256x256",
            quality="low",
        )
        for index in range(size)
    )
    bar = progress_display(total=size, desc="batch of edits")
    failed = []
    files: list[Path] = []
    try:
        async with client.map(
            requests,
            concurrency=concurrency,
            output_dir=folder,
            key=lambda request, index: f"edit-{index + 1:03d}",
            on_progress=bar,
        ) as results:
            async for result in results:
                if result.error is not None:
                    failed.append(result)
                files.extend(result.paths)
    finally:
        bar.close()
    summary = results.summary()
    for result in failed[:5]:
        print(f"  edit {result.index + 1} failed: {result.error}", file=out)
    return StepResult(
        name=f"batch: {size} edits",
        requests=summary.ok + summary.failed,
        seconds=summary.wall_time,
        tokens=summary.total_tokens or None,
        files=tuple(sorted(files)),
        failed=summary.failed,
    )


# -- the run ----------------------------------------------------------------------------


@asynccontextmanager
async def _client(*, real: bool, out: TextIO) -> AsyncIterator[AsyncImagesClient]:
    if real:
        async with AsyncImagesClient() as client:
            print(f"Using the API at {client.base_url}", file=out)
            yield client
        return
    from openai_images.testing import LocalImagesServer

    async with LocalImagesServer(api_keys=[DEMO_KEY]) as server:
        print(f"Local Images server at {server.base_url}", file=out)
        async with AsyncImagesClient(api_key=DEMO_KEY, base_url=server.base_url) as client:
            yield client


async def run_demo(
    *,
    output_dir: str | os.PathLike[str] = "openai-images-demo",
    real: bool = False,
    batch_size: int = 200,
    concurrency: int = 32,
    out: TextIO | None = None,
) -> list[StepResult]:
    """Run every step of the demo and print its table.

    Args:
        output_dir: Where the images go (made if missing).
        real: Use the real API with ``OPENAI_API_KEY`` instead of a local server. This
            costs money.
        batch_size: How many edits the batch step sends.
        concurrency: How many of them are in flight at once.
        out: Where to print (default: standard output).

    Returns:
        The measurements of each step, in order.

    Example:
        ```python
        import anyio
        results = anyio.run(run_demo)
        ```
    """
    out = out if out is not None else sys.stdout
    folder = Path(output_dir)
    inputs = folder / "inputs"
    photos, mask = await anyio.to_thread.run_sync(draw_products, inputs)
    print(f"Drew {len(photos)} product photos and a mask in {inputs}/", file=out)
    results: list[StepResult] = []
    async with _client(real=real, out=out) as client:
        results.append(await _generate(client, folder))
        _report(results[-1], out)
        results.append(await _gift_basket(client, folder, photos, mask))
        _report(results[-1], out)
        results.append(await _markup(client, folder, photos[1], inputs / "markup.png"))
        _report(results[-1], out)
        results.append(await _gif(client, folder))
        _report(results[-1], out)
        results.append(await _svg(client, folder))
        _report(results[-1], out)
        print("Streaming a generation:", file=out)
        results.append(await _stream(client, folder, out))
        _report(results[-1], out)
        results.append(
            await _batch(
                client,
                folder / "batch",
                photos[0],
                mask,
                size=batch_size,
                concurrency=concurrency,
                out=out,
            )
        )
        _report(results[-1], out)
    print(file=out)
    print(format_table(results), file=out)
    return results


def _report(result: StepResult, out: TextIO) -> None:
    shown = ", ".join(str(path) for path in result.files[:3])
    more = f" and {len(result.files) - 3} more" if len(result.files) > 3 else ""
    print(f"{result.name}: {result.seconds:.2f}s -> {shown}{more}", file=out)


def format_table(results: Sequence[StepResult]) -> str:
    """The demo's closing table: one row per step, and a total.

    Example:
        >>> print(format_table([StepResult(name="generate", requests=1, seconds=0.5, tokens=42)]))
        step                       requests   wall time      throughput     tokens
        generate                          1      0.50 s       2.0 req/s         42
        total                             1      0.50 s       2.0 req/s         42
    """
    total_tokens: int | None = None
    for result in results:
        total_tokens = _add(total_tokens, result.tokens)
    rows = [*results]
    if results:
        rows.append(
            StepResult(
                name="total",
                requests=sum(r.requests for r in results),
                seconds=sum(r.seconds for r in results),
                tokens=total_tokens,
            )
        )
    width = max([26, *(len(row.name) for row in rows)])
    head = f"{'step':<{width}} {'requests':>8} {'wall time':>11} {'throughput':>15} {'tokens':>10}"
    lines = [head]
    for row in rows:
        tokens = f"{row.tokens:,}" if row.tokens is not None else "-"
        lines.append(
            f"{row.name:<{width}} {row.requests:>8} {row.seconds:>9.2f} s"
            f" {row.throughput:>9.1f} req/s {tokens:>10}"
        )
    return "\n".join(lines)
