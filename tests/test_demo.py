"""The demo: it runs every step against its own local server and writes what it says."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from openai_images._demo import PRODUCTS, StepResult, draw_products, format_table
from openai_images.cli import main
from openai_images.testing import LocalImagesServer


def test_demo_writes_every_image_and_its_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A small run: every step's images land in the folder, and the table lists each step."""
    out = tmp_path / "demo"
    assert main(["demo", "-o", str(out), "--batch-size", "6", "--concurrency", "3"]) == 0
    names = {path.relative_to(out).as_posix() for path in out.rglob("*.*")}
    assert names >= {
        *(f"inputs/{product}.png" for product in PRODUCTS),
        "inputs/mask.png",
        "inputs/markup.png",
        "generation-1.png",
        "gift-basket-1.png",
        "markup-edit-1.png",
        "animation-1.gif",
        "logo-1.svg",
        "stream-partial-1.png",
        "stream-partial-3.png",
        "stream-final.png",
        *(f"batch/edit-{number:03d}.png" for number in range(1, 7)),
    }
    with Image.open(out / "gift-basket-1.png") as basket:
        assert basket.size == (1024, 1024)
    with Image.open(out / "animation-1.gif") as animation:
        assert animation.n_frames == 6
    assert (out / "logo-1.svg").read_text().startswith("<?xml")
    table = capsys.readouterr().out.split("\n\n")[-1].splitlines()
    assert table[0].split() == ["step", "requests", "wall", "time", "throughput", "tokens"]
    assert [line.split()[0] for line in table[1:]] == [
        "generate",
        "edit:",
        "markup",
        "gif",
        "svg",
        "stream",
        "batch:",
        "total",
    ]
    assert table[-1].split()[1] == "12"


def test_real_mode_needs_a_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """--real without OPENAI_API_KEY stops before anything is drawn or sent."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert main(["demo", "--real", "-o", str(tmp_path / "demo")]) == 1
    assert "OPENAI_API_KEY" in capsys.readouterr().err
    assert not (tmp_path / "demo").exists()


def test_real_mode_uses_the_configured_api(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """--real uses OPENAI_BASE_URL and OPENAI_API_KEY (here a local server), after a warning."""
    with LocalImagesServer.in_thread(api_keys=["sk-real-key"]) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-real-key")
        assert main(["demo", "--real", "-o", str(tmp_path), "--batch-size", "2"]) == 0
        assert len(server.requests) == 8  # six steps and two batch edits
    captured = capsys.readouterr()
    assert "This costs money." in captured.err
    assert f"Using the API at {server.base_url}" in captured.out


def test_products_are_square_pngs_and_the_mask_is_clear_in_the_middle(tmp_path: Path) -> None:
    """The edit's inputs are square PNGs; the mask edits the centre."""
    photos, mask = draw_products(tmp_path, size=128)
    assert [photo.stem for photo in photos] == list(PRODUCTS)
    for photo in photos:
        with Image.open(photo) as image:
            assert (image.format, image.size) == ("PNG", (128, 128))
    with Image.open(mask) as image:
        assert image.mode == "RGBA"
        assert image.getpixel((64, 64))[3] == 0
        assert image.getpixel((0, 0))[3] == 255


def test_table_totals_requests_and_tokens() -> None:
    """The total row adds requests and tokens; a step without tokens shows '-'."""
    table = format_table(
        [
            StepResult(name="generate", requests=1, seconds=0.5, tokens=300),
            StepResult(name="batch", requests=9, seconds=1.5, tokens=None),
        ]
    )
    rows = [line.split() for line in table.splitlines()[1:]]
    assert rows[1][-1] == "-"
    assert rows[2][:2] == ["total", "10"]
    assert rows[2][-1] == "300"
