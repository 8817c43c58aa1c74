"""The command line against the local server's Azure mode, and its Azure and proxy options."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from openai_images import AsyncAzureImagesClient, AzureImagesClient
from openai_images.cli import build_parser, main
from openai_images.cli._commands import make_client
from openai_images.testing import AzureMode, LocalImagesServer
from tests.cli_support import PNG, one_line, this_copy
from tests.images import make_png

VERSION = "2025-04-01-preview"
KEY = "azure-cli-key-0123456789abcdef"
MODE = AzureMode(deployments={"prod-images": "gpt-image-1.5", "flare": "gpt-image-2.5-flare"})


@pytest.fixture(scope="module")
def running_server() -> Iterator[LocalImagesServer]:
    """One Azure-mode server for the module (each test clears what it recorded)."""
    with LocalImagesServer.in_thread(azure=MODE, api_keys={KEY}) as server:
        yield server


@pytest.fixture
def azure(
    running_server: LocalImagesServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> LocalImagesServer:
    """The server; the Azure key in AZURE_OPENAI_API_KEY, no other Azure or OpenAI setting."""
    running_server.clear()
    for name in (
        "AZURE_OPENAI_ENDPOINT",
        "AZURE_OPENAI_AD_TOKEN",
        "OPENAI_API_VERSION",
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", KEY)
    monkeypatch.chdir(tmp_path)
    return running_server


def connection(server: LocalImagesServer, api_version: str = VERSION) -> list[str]:
    """The Azure options for ``server``'s deployment prod-images."""
    return [
        "--azure-endpoint",
        server.url,
        "--api-version",
        api_version,
        "--deployment",
        "prod-images",
    ]


@pytest.mark.parametrize("api_version", [VERSION, "v1"])
def test_generate_on_azure(
    azure: LocalImagesServer, capsys: pytest.CaptureFixture[str], api_version: str
) -> None:
    """``generate`` with the Azure options reaches the deployment, with the key from the
    environment; --json shows Azure's request id."""
    code = main(
        ["generate", "a fox", "--quality", "low", "--json", *connection(azure, api_version)]
    )
    assert code == 0, capsys.readouterr().err
    printed = orjson.loads(capsys.readouterr().out)
    recorded = azure.requests[-1]
    assert printed["request_id"] == recorded.request_id
    assert Path(printed["images"][0]["path"]).read_bytes().startswith(PNG)
    if api_version == "v1":
        assert recorded.path == "/openai/v1/images/generations"
        assert recorded.fields["model"] == "prod-images"
    else:
        assert recorded.path == "/openai/deployments/prod-images/images/generations"


def test_edit_on_azure(azure: LocalImagesServer, tmp_path: Path) -> None:
    """``edit`` uploads several images and a mask to the deployment's edits."""
    for name, data in (("a.png", make_png(32, 32)), ("b.png", make_png(32, 32, shade=5))):
        (tmp_path / name).write_bytes(data)
    (tmp_path / "mask.png").write_bytes(make_png(32, 32, alpha=True))
    args = ["edit", "both", "-i", "a.png", "-i", "b.png", "--mask", "mask.png", "--quality", "low"]
    assert main([*args, *connection(azure)]) == 0
    recorded = azure.requests[-1]
    assert recorded.path == "/openai/deployments/prod-images/images/edits"
    assert [part for part, *_ in recorded.files] == ["image[]", "image[]", "mask"]


def test_batch_on_azure(azure: LocalImagesServer, tmp_path: Path) -> None:
    """``batch`` sends every line to the deployment named by --model (no --deployment)."""
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_bytes(b'{"prompt": "one", "quality": "low"}\n{"prompt": "two", "quality": "low"}\n')
    code = main(
        [
            "batch", str(jobs), "-o", "out", "--no-progress",
            "--azure-endpoint", azure.url, "--api-version", "v1", "--deployment", "prod-images",
        ]
    )  # fmt: skip
    assert code == 0
    assert sorted(path.name for path in (tmp_path / "out").glob("*.png")) == [
        "jobs-000001.png",
        "jobs-000002.png",
    ]
    assert {recorded.path for recorded in azure.requests} == {"/openai/v1/images/generations"}


@pytest.mark.parametrize(
    ("options", "unset", "expected"),
    [
        (["--api-version", VERSION], None, "no Azure endpoint: give --azure-endpoint"),
        (["--azure-endpoint", "{url}"], None, "no API version: give --api-version"),
        (
            ["--azure-endpoint", "{url}", "--api-version", "2025-13-01"],
            None,
            "--api-version must be a dated version",
        ),
        (
            ["--azure-endpoint", "{url}", "--api-version", VERSION],
            "AZURE_OPENAI_API_KEY",
            "no Azure credential: give --api-key KEY or set the AZURE_OPENAI_API_KEY",
        ),
        (
            ["--azure-endpoint", "{url}", "--api-version", VERSION],
            None,
            "an image request on the deployments route needs a deployment: give --deployment NAME",
        ),
        (
            ["--azure-endpoint", "{url}", "--api-version", VERSION, "--base-url", "http://x/v1"],
            None,
            "--base-url is for the OpenAI API; with Azure give --azure-endpoint URL",
        ),
        (
            ["--azure-endpoint", "{url}", "--api-version", VERSION, "--deployment-model", "x"],
            None,
            "--deployment-model 'x' is not a model this version knows",
        ),
    ],
)
def test_azure_errors_speak_cli(
    azure: LocalImagesServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    options: list[str],
    unset: str | None,
    expected: str,
) -> None:
    """Settings that cannot work are one line naming the options, and nothing is sent."""
    if unset is not None:
        monkeypatch.delenv(unset)
    filled = [option.replace("{url}", azure.url) for option in options]
    assert main(["generate", "a fox", *filled]) == 1
    line = one_line(capsys.readouterr().err)
    assert line.startswith(f"error: {expected}"), line
    assert "=" not in line.split(":", 1)[1].replace("NAME.openai", ""), line
    assert azure.requests == []


def test_an_unknown_deployment_shows_status_and_request_id(
    azure: LocalImagesServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """Azure's refusal is one line with the HTTP status and the apim-request-id."""
    options = ["--azure-endpoint", azure.url, "--api-version", VERSION, "--model", "nowhere"]
    assert main(["generate", "a fox", *options]) == 1
    line = one_line(capsys.readouterr().err)
    assert "HTTP 404" in line
    assert f"request id {azure.requests[-1].request_id}" in line


def test_no_proxy_connects_directly(monkeypatch: pytest.MonkeyPatch) -> None:
    """Proxies in the environment are used unless --no-proxy says otherwise."""
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    parser = build_parser()
    azure = ["--azure-endpoint", "https://r.openai.azure.com", "--api-version", "v1"]
    for extra, proxied in (([], True), (["--no-proxy"], False)):
        for azure_options in ([], [*azure, "--api-key", "k"]):
            args = parser.parse_args(["generate", "a fox", *extra, *azure_options])
            client = make_client(args)
            assert isinstance(client, AsyncAzureImagesClient) == bool(azure_options)
            assert bool(client._sender.transport._proxies) == proxied


def test_serve_azure(tmp_path: Path) -> None:
    """``serve --azure`` prints the endpoint; the Azure client works against it."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "openai_images",
            "serve",
            "--azure",
            "--port",
            "0",
            "--api-key",
            KEY,
        ],
        env=this_copy(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        endpoint = process.stdout.readline().strip()
        assert endpoint.startswith("http://127.0.0.1:")
        with AzureImagesClient(azure_endpoint=endpoint, api_version=VERSION, api_key=KEY) as client:
            result = client.generate(prompt="a fox", model="gpt-image-1.5", quality="low")
        assert result.data[0].content().startswith(PNG)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0
    assert "AZURE_OPENAI_ENDPOINT" in err
    assert "Traceback" not in err
