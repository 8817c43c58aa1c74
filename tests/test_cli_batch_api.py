"""``batch FILE --via batch-api`` and ``batch-api status|collect|cancel``, end to end."""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from openai_images import ImagesClient
from openai_images.cli import main
from openai_images.cli._batch_api_command import interrupted_hint
from openai_images.testing import LineFailure, LocalImagesServer
from tests.cli_support import one_line, running_server
from tests.images import make_png

__all__ = ["running_server"]  # a fixture, imported to be found

ROOT = Path(__file__).resolve().parent.parent
FAST = ["--poll-interval", "0.01", "--no-progress"]


@pytest.fixture
def server(
    running_server: LocalImagesServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[LocalImagesServer]:
    """The server with the environment pointing at it; its batches run again afterwards."""
    running_server.clear()
    monkeypatch.setenv("OPENAI_BASE_URL", running_server.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-cli-key-0123456789")
    monkeypatch.chdir(tmp_path)
    yield running_server
    running_server.batch_api.paused = False


def write_jobs(folder: Path) -> Path:
    """A batch file: a generation, an edit of a file by a relative path (named), another
    generation."""
    (folder / "inputs").mkdir(parents=True, exist_ok=True)
    (folder / "inputs" / "jam.png").write_bytes(make_png(64, 64))
    lines = [
        {"prompt": "a fox", "model": "gpt-image-1.5", "quality": "low"},
        {"prompt": "a jar", "image": "inputs/jam.png", "model": "gpt-image-1.5", "name": "jar"},
        {"prompt": "an owl", "model": "gpt-image-1.5", "quality": "low"},
    ]
    path = folder / "jobs.jsonl"
    path.write_bytes(b"\n\n".join(orjson.dumps(line) for line in lines) + b"\n")
    return path


def posts(server: LocalImagesServer, path: str) -> int:
    """How many POSTs the server saw to ``path``."""
    return sum(r.method == "POST" and r.path == path for r in server.requests)


def test_a_batch_file_runs_through_the_batch_api(
    server: LocalImagesServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Submitted, waited for and saved under the live batch's names, then reported."""
    jobs = write_jobs(tmp_path / "work")
    argv = ["batch", str(jobs), "--via", "batch-api", "-o", "out", *FAST]
    assert main([*argv, "--max-lines", "1", "--metadata", "run=t"]) == 0
    captured = capsys.readouterr()
    assert sorted(p.name for p in Path("out").glob("*.png")) == [
        "jar.png",
        "jobs-000001.png",
        "jobs-000005.png",
    ]
    assert "3 requests via the Batch API: 3 completed, 0 failed, 0 expired" in captured.out
    assert "about $" in captured.out
    assert captured.err == ""
    assert len(orjson.loads(Path("out/batch_api.json").read_bytes())["shards"]) == 3
    assert posts(server, "/v1/files") == 1 + 3  # the picture once, three input files
    assert posts(server, "/v1/batches") == 3

    # Run again, the folder holds the job: it says how to collect it; --resume does.
    assert main(argv) == 1
    assert "'openai-images batch-api collect out'" in one_line(capsys.readouterr().err)
    server.clear()
    assert main([*argv, "--resume", "--json"]) == 0
    report = orjson.loads(capsys.readouterr().out)
    assert report["report"]["completed"] == 3
    assert report["results"] == []  # every line was saved before
    assert posts(server, "/v1/files") == posts(server, "/v1/batches") == 0


def test_failed_lines_are_named_by_their_line(
    server: LocalImagesServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A line the batch answers with an error is reported as FILE:LINE, like a live batch."""
    jobs = write_jobs(tmp_path)
    server.batch_api.fail("2:jobs-000005", LineFailure(status=400, message="No owls."))
    argv = ["batch", str(jobs), "--via", "batch-api", "-o", "out", "--json", *FAST]
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert one_line(captured.err).startswith(f"error: {jobs}:5: No owls. (HTTP 400")
    report = orjson.loads(captured.out)
    assert (report["report"]["completed"], report["report"]["failed"]) == (2, 1)
    failed = [r for r in report["results"] if not r["ok"]]
    assert [r["line"] for r in failed] == [f"{jobs}:5"]
    assert Path("out/jar.png").is_file()


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            {"prompt": "p", "model": "gpt-image-1.5", "stream": True},
            "2: stream: the Batch API does not stream (with --via batch-api)",
        ),
        (
            {"endpoint": "variations", "image": "jam.png"},
            "2: endpoint: the Batch API takes generations and edits only",
        ),
        (
            {"prompt": "p", "image": "jam.png", "model": "dall-e-2", "response_format": "url"},
            "2: response_format: response_format is a multipart-only field of edits",
        ),
    ],
)
def test_lines_the_batch_api_cannot_take_are_refused_first(
    server: LocalImagesServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    line: dict[str, object],
    message: str,
) -> None:
    """Every line is checked for the Batch API before anything is sent, naming its line."""
    (tmp_path / "jam.png").write_bytes(make_png(64, 64))
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_bytes(b'{"prompt": "a fox"}\n' + orjson.dumps(line) + b"\n")
    assert main(["batch", str(jobs), "--via", "batch-api", *FAST]) == 1
    assert one_line(capsys.readouterr().err).startswith(f"error: {jobs}:{message}")
    assert server.requests == []


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            ["--via", "batch-api", "-c", "4"],
            "--concurrency and --rpm are for live batches (the Batch API sets its own pace)",
        ),
        (["--images", "inline"], "--images goes with --via batch-api"),
        (["--no-wait"], "--no-wait goes with --via batch-api"),
        (["--via", "batch-api", "--metadata", "run"], "--metadata takes KEY=VALUE, not 'run'"),
        (["--via", "batch-api", "--max-lines", "0"], "--max-lines must be from 1 to 50000"),
        (["--via", "batch-api", "--poll-interval", "0"], "--poll-interval must be more than 0"),
    ],
)
def test_options_of_the_other_engine_are_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], options: list[str], message: str
) -> None:
    """Live-only and Batch-API-only options are refused with the other engine (status 2)."""
    assert main(["batch", str(tmp_path / "jobs.jsonl"), *options]) == 2
    assert one_line(capsys.readouterr().err) == f"openai-images batch: error: {message}"


def test_status_cancel_and_collect_a_job_started_earlier(
    server: LocalImagesServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--no-wait submits; status shows the batches; cancel stops them; collect reports
    every line not run, by its line."""
    server.batch_api.paused = True
    jobs = write_jobs(tmp_path)
    assert main(["batch", str(jobs), "--via", "batch-api", "-o", "out", "--no-wait", "--json"]) == 0
    captured = capsys.readouterr()
    assert "'openai-images batch-api collect out'" in captured.err
    submitted = orjson.loads(captured.out)
    assert submitted["state_file"] == "out/batch_api.json"
    assert len(submitted["batch_ids"]) == 2

    assert main(["batch-api", "status", "out"]) == 0
    status = capsys.readouterr().out
    assert "out/batch_api.json: 3 requests in 2 batches" in status
    assert "edits" in status
    assert "generations" in status
    assert "collected 0 of 3" in status
    assert "to wait and save the results: openai-images batch-api collect out" in status

    assert main(["batch-api", "cancel", "out/batch_api.json", "--json"]) == 0
    cancelled = orjson.loads(capsys.readouterr().out)
    assert {b["status"] for b in cancelled["batches"]} == {"cancelling"}

    assert main(["batch-api", "collect", "out", *FAST]) == 1
    captured = capsys.readouterr()
    assert "3 requests via the Batch API: 0 completed, 0 failed, 0 expired, 3 cancelled" in (
        captured.out
    )
    errors = captured.err.strip().splitlines()
    assert [error.split(": ", 2)[1] for error in errors] == [f"{jobs}:{n}" for n in (1, 3, 5)]
    assert all("cancelled" in error for error in errors)
    assert not list(Path("out").glob("*.png"))


def test_a_job_from_python_is_collected_by_index(
    server: LocalImagesServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A job without the command line's line map names its failed lines by index."""
    from openai_images import GenerateRequest

    requests = [GenerateRequest(prompt="p", model="gpt-image-1.5", quality="low")] * 2
    server.batch_api.fail("1:000001", LineFailure(status=500, message="boom"))
    with ImagesClient(base_url=server.base_url, api_key="k") as client:
        client.batch_api.submit(requests, output_dir=tmp_path / "py")
    assert main(["batch-api", "collect", str(tmp_path / "py"), *FAST]) == 1
    assert one_line(capsys.readouterr().err).startswith("error: request 1: boom (HTTP 500")


def test_job_arguments_that_name_no_job(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A folder without a job, or a file that is not a state file, is one error line."""
    assert main(["batch-api", "status", str(tmp_path)]) == 1
    assert one_line(capsys.readouterr().err) == (
        f"error: {tmp_path}: no Batch API job here (no batch_api.json)"
    )
    (tmp_path / "batch_api.json").write_text("{}")
    assert main(["batch-api", "cancel", str(tmp_path), "--base-url", "http://127.0.0.1:9"]) == 1
    assert "is not a Batch API state file" in one_line(capsys.readouterr().err)


def test_the_hint_after_an_interrupt_names_the_job_and_the_connection(tmp_path: Path) -> None:
    """Before a state file there is nothing to collect; after, the commands carry the
    connection options given, never a key."""
    args = argparse.Namespace(
        command="batch",
        output_dir=tmp_path / "my out",
        api_key="sk-secret",
        base_url="http://127.0.0.1:1/v1",
    )
    assert interrupted_hint(args) == "nothing was submitted; run the same command again to start"
    (tmp_path / "my out").mkdir()
    (tmp_path / "my out" / "batch_api.json").write_text("{}")
    hint = interrupted_hint(args)
    job = str(tmp_path / "my out")
    collect = shlex.join(
        ["openai-images", "batch-api", "collect", job, "--base-url", "http://127.0.0.1:1/v1"]
    )
    assert f"\n  {collect}\n" in hint
    assert "sk-secret" not in hint
    assert hint.endswith("(give --api-key again)")


def test_ctrl_c_while_waiting_leaves_the_batches_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An interrupted wait exits with 130, cancels nothing and prints the commands; the
    collect command it printed saves every line."""
    jobs = write_jobs(tmp_path)
    argv = ["batch", jobs.name, "--via", "batch-api", "-o", "out", *FAST]
    with LocalImagesServer.in_thread() as server:
        server.batch_api.paused = True
        process = subprocess.Popen(
            [sys.executable, "-m", "openai_images", *argv],
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
            # Interrupt once both batches exist and are being polled.
            while process.poll() is None and not any(
                r.method == "GET" and r.path.startswith("/v1/batches/") for r in server.requests
            ):
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
        lines = [line.strip() for line in err.strip().splitlines()]
        assert lines[-3:] == [
            "openai-images batch-api collect out",
            "To stop them instead:",
            "openai-images batch-api cancel out",
        ]
        assert not any(r.path.endswith("/cancel") for r in server.requests)

        server.batch_api.paused = False
        server.clear()
        monkeypatch.chdir(tmp_path)
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "k")
        assert main([*shlex.split(lines[-3])[1:], *FAST]) == 0
        assert posts(server, "/v1/files") == posts(server, "/v1/batches") == 0
        assert len(list((tmp_path / "out").glob("*.png"))) == 3
