"""The local server's image making: real, deterministic images of the asked size and format."""

from __future__ import annotations

import io
import random
import re
import struct
import xml.etree.ElementTree as ET
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageChops, ImageStat

from openai_images.testing import _images
from openai_images.testing._images import (
    ImageDecodeError,
    RenderJob,
    inspect_image,
    render,
    render_partials,
)

Format = Literal["png", "jpeg", "webp"]
COLOURS = [(220, 20, 60), (30, 144, 255), (50, 205, 50), (255, 215, 0), (128, 0, 128)]


def decode(data: bytes) -> Image.Image:
    """Decode encoded image bytes fully, leaving no file open."""
    # Not "with ... as": under Python 3.10 typing, mypy sees Pillow's __enter__ as Any.
    picture = Image.open(io.BytesIO(data))
    with picture:
        picture.load()
        return picture.copy()


def describe(data: bytes) -> tuple[str | None, tuple[int, int], str]:
    """The format, size and mode of encoded image bytes."""
    picture = Image.open(io.BytesIO(data))
    with picture:
        return picture.format, picture.size, picture.mode


def save(path: Path, picture: Image.Image, format: str = "PNG") -> Path:
    """Write ``picture`` to ``path`` and give the path back."""
    picture.save(path, format=format)
    return path


def noise(size: tuple[int, int], seed: int) -> Image.Image:
    """A reproducible RGB image of random pixels."""
    return Image.frombytes("RGB", size, random.Random(seed).randbytes(size[0] * size[1] * 3))


def difference(a: Image.Image, b: Image.Image) -> float:
    """The mean absolute difference of two images' RGB channels, 0 to 255."""
    diff = ImageChops.difference(a.convert("RGB"), b.convert("RGB"))
    return sum(ImageStat.Stat(diff).mean) / 3


def generation(**changes: Any) -> RenderJob:
    """A small generation job, with some fields changed."""
    job = RenderJob(
        kind="generation",
        prompt="a lighthouse at dusk",
        width=64,
        height=64,
        n=1,
        output_format="png",
        seed=1,
    )
    return attrs.evolve(job, **changes)


def fake_png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` pixels, with no pixel data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    """A 64x64 PNG with smooth colour ramps, like a small photo."""
    ramp = Image.linear_gradient("L").resize((64, 64))
    picture = Image.merge("RGB", (ramp, ramp.rotate(90), Image.new("L", (64, 64), 90)))
    return save(tmp_path / "photo.png", picture)


@pytest.fixture
def solids(tmp_path: Path) -> list[Path]:
    """Five PNGs of one distinct colour each, of different sizes."""
    return [
        save(tmp_path / f"solid{at}.png", Image.new("RGB", (40 + 8 * at, 48), colour))
        for at, colour in enumerate(COLOURS)
    ]


@pytest.fixture
def jobs(photo: Path, solids: list[Path]) -> dict[str, RenderJob]:
    """One small job of each kind, making three images."""
    return {
        "generation": generation(n=3),
        "edit": generation(kind="edit", inputs=(solids[0], photo), n=3),
        "variation": generation(kind="variation", prompt="", inputs=(photo,), n=3),
    }


@pytest.mark.parametrize("output_format", ["png", "jpeg", "webp"])
@pytest.mark.parametrize("kind", ["generation", "edit", "variation"])
def test_outputs_have_the_requested_size_and_format(
    jobs: dict[str, RenderJob], kind: str, output_format: Format
) -> None:
    """Every kind makes ``n`` opaque images of exactly the asked size, in the asked format."""
    job = attrs.evolve(jobs[kind], width=80, height=48, output_format=output_format)
    outputs = render(job)
    assert len(outputs) == job.n
    for data in outputs:
        assert describe(data) == (output_format.upper(), (80, 48), "RGB")


def test_a_large_generation_is_exactly_1024_square() -> None:
    """A full-size generation comes out at 1024x1024."""
    (data,) = render(generation(width=1024, height=1024))
    assert decode(data).size == (1024, 1024)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    width=st.integers(1, 96),
    height=st.integers(1, 96),
    inputs=st.integers(1, 16),
    kind=st.sampled_from(["generation", "edit"]),
)
def test_any_size_and_input_count_gives_that_size(
    photo: Path, width: int, height: int, inputs: int, kind: str
) -> None:
    """Tiny and odd sizes, with up to 16 inputs, still give exactly the asked size."""
    job = generation(kind=kind, width=width, height=height, inputs=(photo,) * inputs)
    (data,) = render(job)
    assert decode(data).size == (width, height)


@pytest.mark.parametrize("output_format", ["png", "webp"])
def test_a_transparent_background_has_alpha(output_format: Format) -> None:
    """A transparent PNG or WebP is RGBA, clear around the shapes and opaque on them."""
    (data,) = render(generation(transparent=True, output_format=output_format))
    picture = decode(data)
    assert picture.mode == "RGBA"
    assert picture.getchannel("A").getextrema() == (0, 255)


def test_a_transparent_jpeg_is_laid_on_white() -> None:
    """JPEG has no alpha: the transparent picture comes laid on a white background."""
    (png,) = render(generation(transparent=True))
    (jpeg,) = render(generation(transparent=True, output_format="jpeg"))
    clear = decode(png)
    on_white = Image.new("RGB", clear.size, "white")
    on_white.paste(clear, (0, 0), clear)
    assert decode(jpeg).mode == "RGB"
    assert difference(decode(jpeg), on_white) < 3


@pytest.mark.parametrize("output_format", ["png", "jpeg", "webp"])
@pytest.mark.parametrize("kind", ["generation", "edit", "variation"])
def test_the_same_job_gives_the_same_bytes(
    jobs: dict[str, RenderJob], kind: str, output_format: Format
) -> None:
    """Rendering a job twice gives byte-identical images, partials included."""
    job = attrs.evolve(jobs[kind], output_format=output_format)
    assert render(job) == render(job)
    assert render_partials(job, index=1, count=2) == render_partials(job, index=1, count=2)


@pytest.mark.parametrize("kind", ["generation", "edit", "variation"])
def test_the_n_images_of_a_job_differ(jobs: dict[str, RenderJob], kind: str) -> None:
    """The images of one job are all different from each other."""
    outputs = render(jobs[kind])
    assert len(set(outputs)) == len(outputs) == 3


def test_the_n_variations_of_a_flat_image_differ(solids: list[Path]) -> None:
    """Even a one-colour input, which zoom and hue shifts leave alone, gives distinct variants."""
    outputs = render(generation(kind="variation", prompt="", inputs=(solids[0],), n=10))
    assert len(set(outputs)) == 10


def test_another_prompt_gives_another_image() -> None:
    """The prompt decides the picture: same seed, other prompt, visibly other image."""
    (first,) = render(generation(prompt="a lighthouse at dusk"))
    (second,) = render(generation(prompt="a bowl of ramen"))
    assert difference(decode(first), decode(second)) > 10


def test_another_seed_gives_another_image() -> None:
    """The caller's seed decides the layout."""
    assert render(generation(seed=1)) != render(generation(seed=2))


def test_an_edit_shows_every_input(solids: list[Path]) -> None:
    """Each of five solid-colour inputs shows up, exact, somewhere in the edit."""
    (data,) = render(generation(kind="edit", inputs=tuple(solids), width=96, height=96))
    colours = {colour for _, colour in decode(data).getcolors(96 * 96) or []}
    assert set(COLOURS) <= colours


def test_an_edit_adds_a_prompt_overlay(solids: list[Path]) -> None:
    """Over a plain input the edit draws something, and another prompt draws something else."""
    plain = Image.new("RGB", (64, 64), COLOURS[0])
    job = generation(kind="edit", inputs=(solids[0],))
    (sunset,) = render(attrs.evolve(job, prompt="sunset"))
    (storm,) = render(attrs.evolve(job, prompt="storm"))
    assert difference(decode(sunset), plain) > 1
    assert decode(sunset).tobytes() != decode(storm).tobytes()


def test_a_mask_keeps_its_opaque_pixels_exactly(tmp_path: Path, solids: list[Path]) -> None:
    """Where the mask is opaque the first input stays pixel for pixel; elsewhere it is edited."""
    first = noise((64, 64), seed=3)
    mask = Image.new("RGBA", (64, 64), (0, 0, 0, 255))
    mask.paste((0, 0, 0, 0), (32, 0, 64, 64))  # edit the right half only
    job = generation(
        kind="edit",
        inputs=(save(tmp_path / "first.png", first), *solids),
        mask=save(tmp_path / "mask.png", mask),
        n=2,
    )
    for data in render(job):
        picture = decode(data)
        assert picture.crop((0, 0, 32, 64)).tobytes() == first.crop((0, 0, 32, 64)).tobytes()
        assert difference(picture.crop((32, 0, 64, 64)), first.crop((32, 0, 64, 64))) > 10


def test_a_mask_is_scaled_to_the_output_size(tmp_path: Path, solids: list[Path]) -> None:
    """A smaller first input and mask are both scaled up: the kept area keeps its colour."""
    mask = Image.new("RGBA", (40, 48), (0, 0, 0, 0))
    mask.paste((0, 0, 0, 255), (0, 0, 40, 24))  # keep the top half
    job = generation(
        kind="edit", inputs=(solids[0], solids[1]), mask=save(tmp_path / "mask.png", mask)
    )
    (data,) = render(job)
    kept = decode(data).crop((0, 0, 64, 32))
    assert kept.getcolors() == [(64 * 32, COLOURS[0])]


def test_a_mask_with_transparent_output_keeps_the_input_alpha(tmp_path: Path) -> None:
    """With a transparent background the kept pixels keep their colour and their alpha."""
    first = Image.new("RGBA", (64, 64), (10, 200, 30, 128))
    mask = Image.new("LA", (64, 64), (0, 255))
    job = generation(
        kind="edit",
        transparent=True,
        inputs=(save(tmp_path / "first.png", first),),
        mask=save(tmp_path / "mask.png", mask),
    )
    (data,) = render(job)
    assert decode(data).getcolors() == [(64 * 64, (10, 200, 30, 128))]


def test_a_variation_looks_like_its_input(photo: Path) -> None:
    """A variation keeps the input's colours and layout, unlike the input turned around."""
    opened = Image.open(photo)
    with opened:
        source = opened.convert("RGB")
    for data in render(generation(kind="variation", prompt="", inputs=(photo,), n=3)):
        variant = decode(data)
        for ours, theirs in zip(
            ImageStat.Stat(variant).mean, ImageStat.Stat(source).mean, strict=True
        ):
            assert abs(ours - theirs) < 30
        assert difference(variant, source) < difference(variant, source.rotate(180)) / 2


@pytest.mark.parametrize("count", [0, 1, 2, 3])
@pytest.mark.parametrize("output_format", ["png", "webp"])
def test_partials_have_the_final_size_and_format(count: int, output_format: Format) -> None:
    """``count`` partials come back, each the size and format of the final image."""
    job = generation(width=80, height=48, n=2, output_format=output_format, transparent=True)
    partials = render_partials(job, index=1, count=count)
    assert len(partials) == count
    for data in partials:
        assert describe(data) == (output_format.upper(), (80, 48), "RGBA")


@pytest.mark.parametrize("kind", ["generation", "edit", "variation"])
def test_partials_approach_the_final_image(jobs: dict[str, RenderJob], kind: str) -> None:
    """Each partial is closer to its final image than the one before."""
    job = jobs[kind]
    final = decode(render(job)[2])
    distances = [difference(decode(data), final) for data in render_partials(job, index=2, count=3)]
    assert distances == sorted(distances, reverse=True)
    assert distances[-1] < distances[0]


@pytest.mark.parametrize(("index", "count"), [(0, 4), (0, -1), (3, 1), (-1, 1)])
def test_partials_refuse_a_bad_count_or_index(index: int, count: int) -> None:
    """Only 0 to 3 partials of one of the job's images can be asked for."""
    with pytest.raises(ValueError, match="must be"):
        render_partials(generation(n=3), index=index, count=count)


@pytest.mark.parametrize("output_format", ["jpeg", "webp"])
def test_compression_makes_smaller_files(output_format: Format) -> None:
    """A low compression quality gives a smaller file than the default."""
    job = generation(width=256, height=256, output_format=output_format)
    (best,) = render(job)
    (rough,) = render(attrs.evolve(job, compression=10))
    assert len(rough) < len(best)


def test_inputs_metadata_is_not_copied(tmp_path: Path) -> None:
    """An input's ICC profile and EXIF do not reach the outputs, even where it is kept whole."""
    exif = Image.Exif()
    exif[0x010E] = "a description"
    source = Image.new("RGB", (64, 64), COLOURS[1])
    path = tmp_path / "tagged.png"
    source.save(path, icc_profile=b"not a real profile", exif=exif)
    mask = save(tmp_path / "mask.png", Image.new("LA", (64, 64), (0, 255)))
    job = generation(kind="edit", inputs=(path,), mask=mask, transparent=True)
    for output_format in ("png", "jpeg", "webp"):
        (data,) = render(attrs.evolve(job, output_format=output_format))
        assert not {"icc_profile", "exif"} & decode(data).info.keys()


@pytest.mark.parametrize(
    ("picture", "format", "facts"),
    [
        (Image.new("RGBA", (30, 20)), "PNG", ("image/png", 30, 20, True)),
        (Image.new("RGB", (16, 24)), "PNG", ("image/png", 16, 24, False)),
        (Image.new("RGB", (16, 24)), "JPEG", ("image/jpeg", 16, 24, False)),
        (Image.new("RGBA", (40, 40)), "WEBP", ("image/webp", 40, 40, True)),
        (Image.new("RGB", (40, 40)), "WEBP", ("image/webp", 40, 40, False)),
        (Image.new("LA", (8, 8)), "PNG", ("image/png", 8, 8, True)),
    ],
)
def test_inspect_image_reports_type_size_and_alpha(
    tmp_path: Path, picture: Image.Image, format: str, facts: tuple[str, int, int, bool]
) -> None:
    """inspect_image reads the content type, dimensions and alpha that Pillow sees."""
    assert inspect_image(save(tmp_path / "picture", picture, format)) == facts


def test_inspect_image_sees_palette_transparency(tmp_path: Path) -> None:
    """A palette PNG with a transparent index counts as having alpha."""
    picture = Image.new("P", (8, 8))
    picture.info["transparency"] = 0
    assert inspect_image(save(tmp_path / "palette.png", picture))[3] is True


def truncated_png(tmp_path: Path) -> Path:
    """A PNG cut off in the middle of its pixel data."""
    whole = io.BytesIO()
    noise((64, 64), seed=5).save(whole, format="PNG")
    path = tmp_path / "truncated.png"
    path.write_bytes(whole.getvalue()[:2000])
    return path


def corrupt_png(tmp_path: Path) -> Path:
    """A PNG whose header checksum is wrong."""
    data = bytearray(fake_png_header(16, 16))
    data[29] ^= 0xFF
    path = tmp_path / "corrupt.png"
    path.write_bytes(bytes(data))
    return path


def garbage(tmp_path: Path) -> Path:
    """A file that is no image at all."""
    path = tmp_path / "notes.png"
    path.write_bytes(b"these are not the pixels you are looking for" * 10)
    return path


def eps(tmp_path: Path) -> Path:
    """An EPS file, which Pillow could only open by running Ghostscript."""
    path = tmp_path / "drawing.eps"
    path.write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n")
    return path


@pytest.mark.parametrize("make_bad", [garbage, truncated_png, eps])
@pytest.mark.parametrize("kind", ["edit", "variation"])
def test_an_undecodable_input_raises_image_decode_error(
    tmp_path: Path, photo: Path, make_bad: Callable[[Path], Path], kind: str
) -> None:
    """A broken input fails with ImageDecodeError naming the file, not a Pillow error."""
    bad = make_bad(tmp_path)
    job = generation(kind=kind, inputs=(photo, bad) if kind == "edit" else (bad,))
    with pytest.raises(ImageDecodeError, match=re.escape(bad.name)):
        render(job)


def test_an_undecodable_mask_raises_image_decode_error(tmp_path: Path, photo: Path) -> None:
    """A mask that is no image fails like a broken input does."""
    job = generation(kind="edit", inputs=(photo,), mask=garbage(tmp_path))
    with pytest.raises(ImageDecodeError, match="notes"):
        render_partials(job, index=0, count=1)


@pytest.mark.parametrize("make_bad", [garbage, corrupt_png, eps])
def test_inspect_image_refuses_what_pillow_cannot_verify(
    tmp_path: Path, make_bad: Callable[[Path], Path]
) -> None:
    """inspect_image raises ImageDecodeError for non-images and broken PNGs."""
    bad = make_bad(tmp_path)
    with pytest.raises(ImageDecodeError, match=re.escape(bad.name)):
        inspect_image(bad)


@pytest.mark.parametrize(
    ("side", "cause"),
    [
        (100_000, Image.DecompressionBombError),  # past twice Pillow's limit: it raises
        (10_000, Image.DecompressionBombWarning),  # past Pillow's limit: it only warns
    ],
)
def test_a_decompression_bomb_raises_image_decode_error(
    tmp_path: Path, photo: Path, side: int, cause: type[BaseException]
) -> None:
    """A header claiming a huge image is refused before any pixel is decoded."""
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(fake_png_header(side, side))
    with pytest.raises(ImageDecodeError, match="bomb") as raised:
        inspect_image(bomb)
    assert isinstance(raised.value.__cause__, cause)
    with pytest.raises(ImageDecodeError, match="bomb"):
        render(generation(kind="edit", inputs=(photo,), mask=bomb))


def test_images_over_the_servers_own_limit_are_refused(
    photo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Below Pillow's limits, MAX_INPUT_PIXELS still refuses a larger image."""
    monkeypatch.setattr(_images, "MAX_INPUT_PIXELS", 64 * 64 - 1)
    with pytest.raises(ImageDecodeError, match="more than 4095 pixels"):
        inspect_image(photo)
    with pytest.raises(ImageDecodeError, match="photo"):
        render(generation(kind="variation", prompt="", inputs=(photo,)))


@pytest.mark.parametrize("kind", ["edit", "variation"])
def test_edits_and_variations_need_an_input(kind: Literal["edit", "variation"]) -> None:
    """A job for an edit or a variation without input images is refused when made."""
    with pytest.raises(ValueError, match="need at least one input image"):
        generation(kind=kind)


@pytest.mark.parametrize(
    "changes", [{"width": 0}, {"height": -1}, {"n": 0}, {"compression": 101}, {"compression": -1}]
)
def test_a_job_refuses_impossible_numbers(changes: dict[str, int]) -> None:
    """Sizes and counts below 1, and qualities outside 0 to 100, are refused."""
    with pytest.raises(ValueError, match="must be"):
        generation(**changes)


def _gif_job(**changes: Any) -> RenderJob:
    fields: dict[str, Any] = {
        "kind": "generation",
        "prompt": "a spinning top",
        "width": 64,
        "height": 48,
        "n": 2,
        "output_format": "gif",
        "seed": 3,
    }
    return RenderJob(**(fields | changes))


@pytest.mark.parametrize(
    ("frames", "asked", "encoded"), [(2, 0, 0), (9, 123, 120), (16, 10**6, 655_350)]
)
def test_a_gif_has_the_asked_frames_and_their_duration(
    frames: int, asked: int, encoded: int
) -> None:
    """frame_count frames, each shown frame_duration_ms rounded to 10 ms and capped."""
    for data in render(_gif_job(frame_count=frames, frame_duration_ms=asked)):
        with Image.open(io.BytesIO(data)) as gif:
            assert (gif.format, gif.size, gif.n_frames) == ("GIF", (64, 48), frames)
            assert gif.info.get("duration", 0) == encoded


@settings(max_examples=25, deadline=None)
@given(
    prompt=st.text(max_size=40),
    width=st.integers(16, 200),
    height=st.integers(16, 200),
    complexity=st.sampled_from([None, "low", "medium", "high"]),
    transparent=st.booleans(),
)
def test_an_svg_is_always_a_well_formed_document(
    prompt: str, width: int, height: int, complexity: str | None, transparent: bool
) -> None:
    """Any prompt (control characters, markup, lone surrogates) gives parseable SVG of the size."""
    job = RenderJob(
        kind="generation",
        prompt=prompt,
        width=width,
        height=height,
        n=1,
        output_format="svg",
        seed=1,
        complexity=complexity,
        transparent=transparent,
    )
    (data,) = render(job)
    root = ET.fromstring(data)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert (root.get("width"), root.get("height")) == (str(width), str(height))


def test_complexity_sets_how_many_shapes_an_svg_has() -> None:
    """low complexity draws fewer shapes than high, for the same prompt and seed."""

    def shapes(complexity: str) -> int:
        job = RenderJob(
            kind="generation",
            prompt="a fox",
            width=64,
            height=64,
            n=1,
            output_format="svg",
            seed=5,
            complexity=complexity,
        )
        root = ET.fromstring(render(job)[0])
        return sum(1 for item in root.iter() if item.tag.split("}")[1] in SHAPE_TAGS)

    assert shapes("low") < shapes("high")


SHAPE_TAGS = {"ellipse", "polygon", "rect"}


def test_markup_is_drawn_over_the_first_input(tmp_path: Path, solids: list[Path]) -> None:
    """An edit with markup differs from one without, where the markup is opaque."""
    markup = tmp_path / "markup.png"
    overlay = Image.new("RGBA", (32, 32), (0, 0, 0, 0))
    overlay.paste((255, 0, 0, 255), (0, 0, 16, 16))
    overlay.save(markup)
    job = RenderJob(
        kind="edit",
        prompt="",
        width=32,
        height=32,
        n=1,
        output_format="png",
        seed=1,
        inputs=(solids[0],),
    )
    plain = decode(render(job)[0]).convert("RGB")
    marked = decode(render(attrs.evolve(job, markup=markup))[0]).convert("RGB")
    assert marked.getpixel((2, 2)) == (255, 0, 0)
    assert marked.getpixel((2, 2)) != plain.getpixel((2, 2))
