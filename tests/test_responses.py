"""Response helpers: decoding, atomic saving, and reprs that stay readable."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest

from openai_images import (
    Image,
    ImageEditCompletedEvent,
    ImageGenCompletedEvent,
    SvgUsage,
)
from openai_images._converter import converter, structure_response


def test_content_decodes_base64() -> None:
    """content() gives the image's bytes."""
    assert Image(b64_json="aGk=").content() == b"hi"


def test_content_of_a_url_result_points_to_download() -> None:
    """A url result has no bytes of its own; the error says how to fetch them."""
    with pytest.raises(ValueError, match="download"):
        Image(url="https://example.com/a.png").content()


def test_save_leaves_no_temporary_file_and_normal_permissions(tmp_path: Path) -> None:
    """save() writes through a rename and the file gets the umask's usual mode."""
    target = Image(b64_json="aGk=").save(tmp_path / "out.png")
    assert target.read_bytes() == b"hi"
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask


def test_save_replaces_an_existing_file_whole(tmp_path: Path) -> None:
    """Saving over a file swaps it for the new one in one step."""
    target = tmp_path / "out.png"
    target.write_bytes(b"old contents")
    ImageGenCompletedEvent(b64_json="aGk=").save(target)
    assert target.read_bytes() == b"hi"


def test_repr_hides_base64_and_handles_url_results() -> None:
    """A repr shows the base64 length, never megabytes of it, and works without it."""
    assert "<4 chars>" in repr(Image(b64_json="aGk="))
    assert "b64_json=None" in repr(Image(url="https://example.com/a.png"))


SVG_TEXT = '<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>'
SVG_B64 = base64.b64encode(SVG_TEXT.encode()).decode()
GIF_B64 = base64.b64encode(b"GIF89a" + b"\0" * 20).decode()


def test_a_response_carries_todays_fields_and_its_raw_json() -> None:
    """safety_identifier and a typed svg_usage; unknown fields tolerated and kept in raw."""
    body = {
        "created": 1,
        "data": [{"b64_json": SVG_B64, "a_new_image_field": 1}],
        "output_format": "svg",
        "quality": "max",
        "size": "1536x864",
        "safety_identifier": "hashed-1",
        "svg_usage": {
            "input_tokens": 10,
            "model": "gpt-5.5",
            "output_tokens": 20,
            "reasoning_tokens": 5,
            "total_tokens": 30,
            "a_new_usage_field": True,
        },
        "a_field_from_next_year": {"x": 1},
    }
    response = structure_response(body, request_id="req_1")
    assert response.safety_identifier == "hashed-1"
    assert response.svg_usage == SvgUsage(
        model="gpt-5.5", input_tokens=10, output_tokens=20, reasoning_tokens=5, total_tokens=30
    )
    assert response.raw["a_field_from_next_year"] == {"x": 1}
    assert response.data[0].output_format == "svg"


def test_completed_events_carry_the_safety_identifier() -> None:
    """Completed stream events parse safety_identifier, partial ones tolerate it."""
    event = converter.structure(
        {"type": "image_generation.completed", "b64_json": "aGk=", "safety_identifier": "s"},
        ImageGenCompletedEvent,
    )
    assert event.safety_identifier == "s"
    edit = converter.structure({"safety_identifier": "s"}, ImageEditCompletedEvent)
    assert edit.safety_identifier == "s"


@pytest.mark.parametrize(
    ("image", "name"),
    [
        (Image(b64_json=SVG_B64, output_format="svg"), "out.svg"),
        (Image(b64_json=SVG_B64), "out.svg"),
        (Image(b64_json=GIF_B64), "out.gif"),
        (Image(b64_json="aGk=", output_format="gif"), "out.gif"),
        (Image(b64_json="aGk=", output_format="jpeg"), "out.jpg"),
        (Image(b64_json="aGk="), "out.png"),
        (ImageGenCompletedEvent(b64_json="aGk=", output_format="webp"), "out.webp"),
    ],
)
def test_save_without_a_suffix_picks_the_extension(
    tmp_path: Path, image: Image | ImageGenCompletedEvent, name: str
) -> None:
    """The extension comes from the bytes, else the output format; a given suffix is kept."""
    assert image.save(tmp_path / "out") == tmp_path / name
    assert image.save(tmp_path / "kept.bin") == tmp_path / "kept.bin"


def test_an_svg_is_saved_and_read_as_its_text(tmp_path: Path) -> None:
    """text() gives the SVG document; save() writes exactly that text."""
    image = Image(b64_json=SVG_B64, output_format="svg")
    assert image.text() == SVG_TEXT
    assert image.save(tmp_path / "logo").read_text() == SVG_TEXT
    with pytest.raises(ValueError, match="not SVG"):
        Image(b64_json=GIF_B64).text()
