"""The ``batch`` command end to end: batch files, resuming, failures, Ctrl-C."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from openai_images.cli import main
from openai_images.testing import Fault, LocalImagesServer
from tests.cli_support import one_line, running_server, server
from tests.images import make_png

__all__ = ["running_server", "server"]  # fixtures, imported to be found

ROOT = Path(__file__).resolve().parent.parent


def write_jobs(folder: Path) -> Path:
    """A batch file with a generation, an edit with a relative path, and a variation."""
    (folder / "inputs").mkdir(parents=True)
    (folder / "inputs" / "jam.png").write_bytes(make_png(64, 64))
    lines = [
        {"prompt": "a fox", "model": "dall-e-2", "size": "256x256", "response_format": "b64_json"},
        {
            "prompt": "a jar",
            "image": ["inputs/jam.png"],
            "model": "gpt-image-1",
            "quality": "low",
            "name": "jar",
        },
        {
            "endpoint": "variations",
            "image": "inputs/jam.png",
            "size": "256x256",
            "n": 2,
            "response_format": "b64_json",
        },
    ]
    path = folder / "jobs.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(line) for line in lines) + b"\n")
    return path


def test_batch_saves_every_line_and_resumes(
    server: LocalImagesServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A batch saves each line's images; a rerun refuses; --resume redoes only what is missing."""
    jobs = write_jobs(tmp_path / "work")
    assert main(["batch", str(jobs), "-o", "out", "--concurrency", "2"]) == 0
    assert sorted(path.name for path in Path("out").glob("*.png")) == [
        "jar.png",
        "jobs-000001.png",
        "jobs-000003-0.png",
        "jobs-000003-1.png",
    ]
    assert "3 requests: 3 ok, 0 failed" in capsys.readouterr().out
    assert main(["batch", str(jobs), "-o", "out"]) == 1
    assert "already exists (use --resume" in one_line(capsys.readouterr().err)

    Path("out/jar.png").unlink()
    server.clear()
    assert main(["batch", str(jobs), "-o", "out", "--resume", "--json", "--no-progress"]) == 0
    report = orjson.loads(capsys.readouterr().out)
    assert report["summary"]["ok"] == 1
    assert report["summary"]["skipped"] == 2
    assert [r["skipped"] for r in report["results"]] == [True, False, True]
    assert [r.endpoint for r in server.requests] == ["edits"]
    assert Path("out/jar.png").is_file()


def test_batch_checks_every_line_before_sending(
    server: LocalImagesServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bad line fails the whole file up front, naming the file, the line and the field."""
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text('{"prompt": "a fox"}\n\n{"prompt": "a fox", "model": "dall-e-3", "n": 2}\n')
    assert main(["batch", str(jobs)]) == 1
    assert (
        one_line(capsys.readouterr().err)
        == f"error: {jobs}:3: n: n is 2; it must be 1 for dall-e-3"
    )
    jobs.write_text('{"prompt": "a fox", "colour": "red"}\n')
    assert main(["batch", str(jobs)]) == 1
    assert "unknown field 'colour' for generations" in capsys.readouterr().err
    assert server.requests == []


def test_batch_reports_failed_lines(
    server: LocalImagesServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A line the API refuses is reported with its line number; the others are saved."""
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text(
        '{"prompt": "a fox", "model": "dall-e-2", "response_format": "b64_json"}\n'
        '{"prompt": "a fox", "model": "not-a-model"}\n'
    )
    assert main(["batch", str(jobs), "--no-progress"]) == 1
    captured = capsys.readouterr()
    assert "2 requests: 1 ok, 1 failed" in captured.out
    assert one_line(captured.err).startswith(f"error: {jobs}:2: Invalid value: 'not-a-model'.")
    assert Path("jobs-000001.png").is_file()


@pytest.mark.parametrize(
    ("options", "limited_by"),
    [
        (["--rpm", "120"], "requests_per_minute"),
        (["--requests-per-minute", "120"], "requests_per_minute"),
        (["--ipm", "240"], "images_per_minute"),
        (["--images-per-minute", "240"], "images_per_minute"),
        (["--tpm", "60000"], "tokens_per_minute"),
        (["--tokens-per-minute", "60000"], "tokens_per_minute"),
    ],
)
def test_batch_caps_pace_the_batch_and_the_report_names_them(
    server: LocalImagesServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    options: list[str],
    limited_by: str,
) -> None:
    """Each per-minute cap, by either name, reaches the batch engine: it holds the second
    line back about half a second (the local server enforces nothing), and the summary
    names it."""
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text(
        "".join(
            f'{{"prompt": "fox {i}", "model": "gpt-image-1-mini", "quality": "low", "n": 2}}\n'
            for i in range(2)
        )
    )
    # One at a time, so the token cap has heard an answer's usage before the next start.
    assert main(["batch", str(jobs), "--no-progress", "--json", "-c", "1", *options]) == 0
    summary = orjson.loads(capsys.readouterr().out)["summary"]
    assert summary["ok"] == 2
    assert summary["rate_limited"] == 0
    assert summary["limited_by"] == limited_by
    assert len(server.requests) == 2


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--rpm", "0"], "--rpm/--requests-per-minute must be 1 or more, got 0"),
        (["--images-per-minute", "-5"], "--ipm/--images-per-minute must be 1 or more, got -5"),
        (["--tpm", "0"], "--tpm/--tokens-per-minute must be 1 or more, got 0"),
        (
            ["--via", "batch-api", "--ipm", "60"],
            "--ipm and --tpm are for live batches (the Batch API sets its own pace)",
        ),
        (
            ["--via", "batch-api", "--tokens-per-minute", "60000"],
            "--ipm and --tpm are for live batches (the Batch API sets its own pace)",
        ),
    ],
)
def test_batch_caps_are_checked_before_anything_is_sent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], options: list[str], message: str
) -> None:
    """A cap below 1 is a usage error naming its flag; the Batch API, which paces itself,
    refuses the caps rather than ignore them (status 2, nothing read or sent)."""
    assert main(["batch", str(tmp_path / "jobs.jsonl"), *options]) == 2
    assert one_line(capsys.readouterr().err) == f"openai-images batch: error: {message}"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"prompt": "a fox", "n": "2"}', "1: n: expected an integer, got str"),
        ('{"model": "gpt-image-1"}', "1: prompt is missing"),
        ('{"prompt": "a fox", "colour": "red"}', "1: unknown field 'colour' for generations"),
        (
            '{"prompt": "p", "images": [{"image_url": "https://example.com/a.png", "x": 1}]}',
            "1: unknown field 'images[0].x' for edits",
        ),
        ('{"prompt": "p", "images": "https://example.com/a.png"}', "1: images: expected a list"),
        ('{"endpoint": "variations", "n": 2}', "1: image is missing"),
        ('{"prompt": "p", "image": "missing.png"}', "1: image: no such file: "),
    ],
)
def test_batch_line_errors_name_the_line_and_the_field(
    server: LocalImagesServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    line: str,
    message: str,
) -> None:
    """The shared converter's strict mode reads batch lines: each error names the field."""
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text(line + "\n")
    assert main(["batch", str(jobs), "--no-progress"]) == 1
    assert one_line(capsys.readouterr().err).startswith(f"error: {jobs}:{message}")
    assert server.requests == []


def test_a_batch_without_a_key_says_so_once(
    server: LocalImagesServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A missing key stops the batch with one line naming --api-key, not one per line."""
    monkeypatch.delenv("OPENAI_API_KEY")
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text('{"prompt": "a fox"}\n{"prompt": "a cat"}\n{"prompt": "an owl"}\n')
    assert main(["batch", str(jobs), "--no-progress"]) == 1
    line = one_line(capsys.readouterr().err)
    assert "--api-key" in line
    assert "OPENAI_API_KEY" in line
    assert "api_key=" not in line


def test_ctrl_c_during_a_batch_prints_how_to_resume(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An interrupted batch exits with 130 and prints the command that finishes it."""
    jobs = tmp_path / "my jobs.jsonl"
    lines = [
        {"prompt": "a fox", "model": "gpt-image-1-mini", "size": "1024x1024", "quality": "low"},
        {"prompt": "a jar", "image": "jam.png", "model": "gpt-image-1.5", "quality": "low"},
    ]
    (tmp_path / "jam.png").write_bytes(make_png(64, 64))
    jobs.write_bytes(b"\n".join(orjson.dumps(line) for line in lines) + b"\n")
    args = ["batch", jobs.name, "-o", "out", "-c", "1", "--no-progress", "--overwrite"]
    with LocalImagesServer.in_thread() as server:
        # The edit hangs, so the interrupt lands while it is in flight.
        server.inject(Fault(kind="delay_headers", delay=120, endpoint="edits"))
        process = subprocess.Popen(
            [sys.executable, "-m", "openai_images", *args],
            cwd=tmp_path,
            env={
                **os.environ,
                "OPENAI_BASE_URL": server.base_url,
                "OPENAI_API_KEY": "k",
                "PYTHONPATH": str(ROOT),  # this copy of the package, from another folder
            },
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            while server.faults and process.poll() is None:
                time.sleep(0.05)
            assert process.poll() is None, process.communicate()
            process.send_signal(signal.SIGINT)
            _, err = process.communicate(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
        assert process.returncode == 130, err
        assert "Traceback" not in err
        command = "openai-images batch 'my jobs.jsonl' -o out -c 1 --no-progress --resume"
        assert err.strip().splitlines()[-1].strip() == command
        assert (tmp_path / "out" / "my jobs-000001.png").is_file()

        # The command it printed sends only the line that did not finish.
        server.clear()
        monkeypatch.chdir(tmp_path)
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "k")
        assert main(shlex.split(command)[1:]) == 0
        assert [request.endpoint for request in server.requests] == ["edits"]
