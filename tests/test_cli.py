"""The command line end to end, against a local server in a background thread."""

from __future__ import annotations

import argparse
import base64
import signal
import subprocess
import sys
from pathlib import Path
from typing import Literal

import attrs
import orjson
import pytest

from openai_images import (
    EditRequest,
    GenerateRequest,
    ImageRequest,
    ImagesClient,
    VariationRequest,
)
from openai_images.cli import build_parser, main
from openai_images.cli._fields import field_options
from openai_images.testing import LocalImagesServer
from tests.cli_support import PNG, one_line, running_server, server, this_copy
from tests.images import make_png

__all__ = ["running_server", "server"]  # fixtures, imported to be found


def test_generate_saves_numbered_files(
    server: LocalImagesServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each image is saved as {prefix}-{n}.{ext} and its path printed."""
    code = main(
        [
            "generate",
            "A red fox!",
            "--model",
            "dall-e-2",
            "--size",
            "256x256",
            "-n",
            "2",
            "--response-format",
            "b64_json",
        ]
    )
    assert code == 0
    assert capsys.readouterr().out.split() == ["a-red-fox-1.png", "a-red-fox-2.png"]
    assert Path("a-red-fox-2.png").read_bytes().startswith(PNG)
    assert server.requests[-1].fields["n"] == 2


def test_every_field_has_an_option(server: LocalImagesServer) -> None:
    """Options reach the wire under the API's field names; jpeg files end in .jpg."""
    code = main(
        [
            "generate",
            "a lamp",
            "--model",
            "gpt-image-1.5",
            "--size",
            "1024x1024",
            "--quality",
            "low",
            "--format",
            "jpeg",
            "--compression",
            "50",
            "--background",
            "opaque",
            "--moderation",
            "low",
            "--user",
            "u-1",
            "-o",
            "out",
            "--prefix",
            "lamp",
        ]
    )
    assert code == 0
    assert server.requests[-1].fields == {
        "prompt": "a lamp",
        "model": "gpt-image-1.5",
        "size": "1024x1024",
        "quality": "low",
        "output_format": "jpeg",
        "output_compression": 50,
        "background": "opaque",
        "moderation": "low",
        "user": "u-1",
    }
    assert Path("out/lamp-1.jpg").read_bytes().startswith(b"\xff\xd8")


def test_url_results_are_downloaded(server: LocalImagesServer) -> None:
    """A dall-e-2 url result is fetched and saved like a b64_json one."""
    assert main(["generate", "a cat", "--model", "dall-e-2", "--size", "256x256"]) == 0
    assert Path("a-cat-1.png").read_bytes().startswith(PNG)
    assert [r.endpoint for r in server.requests] == ["generations", "files"]


def test_invalid_size_is_one_line_and_exit_1(
    server: LocalImagesServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """A rule broken on the client's side: one line naming the option, nothing sent."""
    code = main(["generate", "a fox", "--model", "gpt-image-1.5", "--size", "13x13"])
    captured = capsys.readouterr()
    assert code == 1
    assert one_line(captured.err).startswith("error: --size: '13x13' is not a valid size")
    assert "Traceback" not in captured.err
    assert server.requests == []


def test_api_error_shows_message_status_and_request_id(
    server: LocalImagesServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """The API's refusal: its message, the HTTP status and the request id, and no key."""
    code = main(["generate", "a fox", "--model", "no-such-model", "--api-key", "sk-secret-99"])
    captured = capsys.readouterr()
    line = one_line(captured.err)
    request_id = server.requests[-1].request_id
    assert code == 1
    assert line.startswith("error: Invalid value: 'no-such-model'.")
    assert line.endswith(f"(HTTP 400, request id {request_id})")
    assert "sk-secret-99" not in captured.out + captured.err


def test_debug_shows_the_traceback(
    server: LocalImagesServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """--debug adds the traceback before the error line."""
    code = main(["generate", "a fox", "--model", "dall-e-3", "-n", "2", "--debug"])
    err = capsys.readouterr().err
    assert code == 1
    assert "Traceback" in err
    assert err.strip().splitlines()[-1].startswith("error: -n is 2;")


def test_missing_key_is_a_clear_error(
    server: LocalImagesServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without a key the command says how to give one."""
    monkeypatch.delenv("OPENAI_API_KEY")
    assert main(["generate", "a fox", "--model", "dall-e-2"]) == 1
    line = one_line(capsys.readouterr().err)
    assert "OPENAI_API_KEY" in line
    assert "--api-key" in line
    assert "api_key=" not in line


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["--format", "jpeg", "--compression", "150"], "error: --compression is 150; "),
        (["--partial-images", "7"], "error: --partial-images is 7; it must be 0..3"),
        (["-n", "2", "--quality", "ultra"], "error: --quality: 'ultra' is not a valid quality"),
    ],
)
def test_field_errors_name_the_option(
    server: LocalImagesServer,
    capsys: pytest.CaptureFixture[str],
    options: list[str],
    expected: str,
) -> None:
    """A broken rule names the option that sets the field, not the API's field name."""
    assert main(["generate", "a fox", "--model", "gpt-image-1", *options]) == 1
    line = one_line(capsys.readouterr().err)
    assert line.startswith(expected)
    assert "output_compression" not in line
    assert "partial_images" not in line
    assert server.requests == []


def test_edit_reference_errors_name_the_option(
    server: LocalImagesServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bad reference names --image-url, the option that gave it."""
    assert main(["edit", "a frame", "--image-url", "ftp://x/a.png", "--model", "gpt-image-1"]) == 1
    assert one_line(capsys.readouterr().err).startswith("error: --image-url ")
    assert server.requests == []


@pytest.mark.parametrize(
    ("command", "cls"),
    [("generate", GenerateRequest), ("edit", EditRequest), ("variation", VariationRequest)],
)
def test_every_request_field_has_an_option(command: str, cls: type[ImageRequest]) -> None:
    """Options are derived from the request classes: a new field gets one for free."""
    inputs = {"endpoint", "prompt", "image", "images", "mask"}
    fields = {field.name for field in attrs.fields(cls) if field.name not in inputs}
    subparsers = next(
        action
        for action in build_parser()._actions
        if isinstance(action, argparse._SubParsersAction)
    )
    dests = {action.dest for action in subparsers.choices[command]._actions}
    assert fields <= dests


@attrs.frozen(kw_only=True)
class FutureRequest:
    """A request class with fields of every kind an option can take."""

    prompt: str
    seed: int | None = None
    strength: float | None = None
    tone: Literal["warm", "cool"] | None = None
    watermark: bool | None = None
    region: dict[str, int] | None = None


def test_an_option_is_typed_after_its_field() -> None:
    """Integers, numbers, text, booleans (--x/--no-x) and other values (JSON) alike."""

    options = {option.name: option for option in field_options(FutureRequest)}
    assert {name: option.kind for name, option in options.items()} == {
        "seed": int,
        "strength": float,
        "tone": str,
        "watermark": bool,
        "region": object,
    }
    assert options["tone"].help == "one of: warm, cool"
    parser = argparse.ArgumentParser()
    group = parser.add_argument_group()
    for option in options.values():
        option.add_to(group)
    args = parser.parse_args(["--seed", "7", "--no-watermark", "--region", '{"x": 1}'])
    assert (args.seed, args.watermark, args.region, args.tone) == (7, False, {"x": 1}, None)


def test_an_existing_file_is_never_overwritten(
    server: LocalImagesServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """A taken name fails before sending, naming the file; --overwrite replaces it."""
    Path("a-fox-1.png").write_bytes(b"mine")
    args = ["generate", "a fox", "--model", "dall-e-2", "--response-format", "b64_json"]
    assert main(args) == 1
    assert one_line(capsys.readouterr().err) == (
        "error: a-fox-1.png already exists (use --overwrite to replace it)"
    )
    assert Path("a-fox-1.png").read_bytes() == b"mine"
    assert server.requests == []
    assert main([*args, "--overwrite"]) == 0
    assert Path("a-fox-1.png").read_bytes().startswith(PNG)


def test_json_prints_metadata_without_image_data(
    server: LocalImagesServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """--json gives paths, usage and the request id, and no base64."""
    code = main(["generate", "a fox", "--model", "gpt-image-1.5", "--quality", "low", "--json"])
    out = capsys.readouterr().out
    data = orjson.loads(out)
    assert code == 0
    assert data["request_id"] == server.requests[-1].request_id
    assert data["images"] == [{"path": "a-fox-1.png", "url": None, "revised_prompt": None}]
    assert data["usage"]["total_tokens"] > 0
    assert "b64_json" not in out


def test_stream_saves_partial_images_as_they_come(
    server: LocalImagesServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """--stream with --partial-images saves each partial, then the final image."""
    code = main(
        [
            "generate",
            "a boat",
            "--model",
            "gpt-image-1.5",
            "--quality",
            "low",
            "--stream",
            "--partial-images",
            "2",
        ]
    )
    assert code == 0
    assert capsys.readouterr().out.split() == [
        "a-boat-partial-1.png",
        "a-boat-partial-2.png",
        "a-boat-1.png",
    ]
    assert server.requests[-1].fields["stream"] is True
    assert Path("a-boat-partial-2.png").read_bytes().startswith(PNG)


def test_edit_sends_several_images_and_a_mask(server: LocalImagesServer, tmp_path: Path) -> None:
    """Each -i is one image[] part; --mask is the mask part."""
    for name in ("soap", "jam"):
        (tmp_path / f"{name}.png").write_bytes(make_png(32, 32))
    (tmp_path / "mask.png").write_bytes(make_png(32, 32, alpha=True))
    code = main(
        [
            "edit",
            "a gift basket",
            "-i",
            "soap.png",
            "-i",
            "jam.png",
            "--mask",
            "mask.png",
            "--model",
            "gpt-image-1.5",
            "--quality",
            "low",
            "--input-fidelity",
            "high",
        ]
    )
    assert code == 0
    sent = server.requests[-1]
    assert [(part, filename) for part, filename, *_ in sent.files] == [
        ("image[]", "soap.png"),
        ("image[]", "jam.png"),
        ("mask", "mask.png"),
    ]
    assert sent.fields["input_fidelity"] == "high"
    assert Path("a-gift-basket-1.png").is_file()


def test_edit_sends_a_markup_and_new_fields(server: LocalImagesServer, tmp_path: Path) -> None:
    """--markup is a file part like the mask; today's fields are options of their own."""
    (tmp_path / "shelf.png").write_bytes(make_png(32, 32))
    (tmp_path / "markup.png").write_bytes(make_png(32, 32, alpha=True))
    code = main(
        [
            "edit",
            "put the jar here",
            "-i",
            "shelf.png",
            "--markup",
            "markup.png",
            "--model",
            "gpt-image-2.5-flare",
            "--quality",
            "low",
            "--complexity",
            "high",
            "--safety-identifier",
            "user-123",
        ]
    )
    assert code == 0
    sent = server.requests[-1]
    assert [(part, filename) for part, filename, *_ in sent.files] == [
        ("image", "shelf.png"),
        ("markup", "markup.png"),
    ]
    assert sent.fields["complexity"] == "high"
    assert sent.fields["safety_identifier"] == "user-123"


def test_a_markup_with_a_json_edit_names_the_option(
    server: LocalImagesServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A markup is uploaded: with --image-url (a JSON edit) it is refused, naming --markup."""
    (tmp_path / "markup.png").write_bytes(make_png(8, 8, alpha=True))
    data_url = "data:image/png;base64," + base64.b64encode(make_png(8, 8)).decode()
    code = main(
        [
            "edit",
            "p",
            "--image-url",
            data_url,
            "--markup",
            "markup.png",
            "--model",
            "gpt-image-2.5-flare",
        ]
    )
    assert code != 0
    assert "--markup" in capsys.readouterr().err
    assert server.requests == []


def test_edit_by_reference_goes_as_json(server: LocalImagesServer) -> None:
    """--image-url makes a JSON edit with image references."""
    data_url = "data:image/png;base64," + base64.b64encode(make_png(8, 8)).decode()
    code = main(
        ["edit", "a frame", "--image-url", data_url, "--model", "gpt-image-1.5", "--quality", "low"]
    )
    assert code == 0
    assert server.requests[-1].content_type == "application/json"
    assert server.requests[-1].fields["images"] == [{"image_url": data_url}]


def test_edit_needs_an_input(server: LocalImagesServer, capsys: pytest.CaptureFixture[str]) -> None:
    """A usage mistake exits with 2 and says what is missing."""
    assert main(["edit", "a basket"]) == 2
    assert "give at least one input" in capsys.readouterr().err


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    """argparse's own mistakes (an unknown option, a bad number) exit with 2."""
    assert main(["generate", "a fox", "--no-such-option"]) == 2
    assert main(["generate", "a fox", "-n", "two"]) == 2
    assert main([]) == 2
    assert "usage:" in capsys.readouterr().err


def test_variation_saves_after_the_input_name(
    server: LocalImagesServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A variation is named after its input: {stem}-variation-{n}."""
    (tmp_path / "jam.png").write_bytes(make_png(64, 64))
    code = main(
        [
            "variation",
            "jam.png",
            "-n",
            "2",
            "--size",
            "256x256",
            "--response-format",
            "b64_json",
            "-o",
            "out",
        ]
    )
    assert code == 0
    captured = capsys.readouterr()
    assert captured.out.split() == ["out/jam-variation-1.png", "out/jam-variation-2.png"]
    assert "retired /images/variations" in captured.err
    assert server.requests[-1].endpoint == "variations"


def test_python_m_runs_the_command_line(server: LocalImagesServer, tmp_path: Path) -> None:
    """``python -m openai_images generate`` works as a real process."""
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "openai_images",
            "generate",
            "a fox",
            "--model",
            "dall-e-2",
            "--size",
            "256x256",
            "--response-format",
            "b64_json",
            "-o",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=this_copy(OPENAI_BASE_URL=server.base_url, OPENAI_API_KEY="k"),
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == str(tmp_path / "a-fox-1.png")


def test_serve_prints_its_url_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    """``serve`` answers at the URL it prints, and Ctrl-C stops it cleanly."""
    process = subprocess.Popen(
        [sys.executable, "-m", "openai_images", "serve", "--port", "0", "--api-key", "k1"],
        env=this_copy(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        base_url = process.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:")
        assert base_url.endswith("/v1")
        with ImagesClient(api_key="k1", base_url=base_url) as client:
            result = client.generate(
                prompt="a fox", model="gpt-image-2.5-flare", size="256x256", quality="low"
            )
        assert result.data[0].content().startswith(PNG)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0
    assert "Traceback" not in err


def test_serve_legacy_serves_the_retired_models_and_variations(tmp_path: Path) -> None:
    """``serve --legacy`` answers dall-e-2 variations, as the API did before 2026-05-12."""
    (tmp_path / "jam.png").write_bytes(make_png(64, 64))
    process = subprocess.Popen(
        [sys.executable, "-m", "openai_images", "serve", "--port", "0", "--legacy"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        base_url = process.stdout.readline().strip()
        with (
            ImagesClient(api_key="k1", base_url=base_url) as client,
            pytest.warns(DeprecationWarning, match="retired"),
        ):
            result = client.create_variation(
                image=tmp_path / "jam.png", size="256x256", response_format="b64_json"
            )
        assert result.data[0].content().startswith(PNG)
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0
