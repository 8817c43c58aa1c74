"""Response helpers: decoding, atomic saving, and reprs that stay readable."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from openai_images import Image, ImageGenCompletedEvent


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
