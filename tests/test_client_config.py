"""Client settings: the environment, explicit arguments, the key, timeouts, plain http."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from openai_images import (
    AsyncImagesClient,
    ImagesClient,
    MissingAPIKeyError,
    RequestValidationError,
    Timeout,
)
from openai_images._config import DEFAULT_BASE_URL, DEFAULT_TIMEOUT

from .recorder import Recorder

ENV_NAMES = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test here sees the settings of the machine it runs on."""
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
async def recorder() -> AsyncIterator[Recorder]:
    async with Recorder() as rec:
        yield rec


@pytest.mark.anyio
async def test_settings_come_from_the_environment(
    recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Key, base URL, organization and project are read from OPENAI_* variables."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    monkeypatch.setenv("OPENAI_BASE_URL", recorder.base_url + "/")
    monkeypatch.setenv("OPENAI_ORG_ID", "org-env")
    monkeypatch.setenv("OPENAI_PROJECT_ID", "proj-env")
    async with AsyncImagesClient() as client:
        assert client.base_url == recorder.base_url
        await client.generate(prompt="p")
    headers = recorder.requests[0].headers
    assert headers["Authorization"] == "Bearer sk-from-env"
    assert headers["OpenAI-Organization"] == "org-env"
    assert headers["OpenAI-Project"] == "proj-env"


@pytest.mark.anyio
async def test_explicit_arguments_win_over_the_environment(
    recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Arguments given to the client override every OPENAI_* variable."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    monkeypatch.setenv("OPENAI_BASE_URL", "https://elsewhere.invalid/v1")
    monkeypatch.setenv("OPENAI_ORG_ID", "org-env")
    monkeypatch.setenv("OPENAI_PROJECT_ID", "proj-env")
    async with AsyncImagesClient(
        api_key="sk-explicit",
        base_url=recorder.base_url,
        organization="org-arg",
        project="proj-arg",
    ) as client:
        await client.generate(prompt="p")
    headers = recorder.requests[0].headers
    assert headers["Authorization"] == "Bearer sk-explicit"
    assert headers["OpenAI-Organization"] == "org-arg"
    assert headers["OpenAI-Project"] == "proj-arg"


@pytest.mark.anyio
async def test_unset_organization_and_project_send_no_header(recorder: Recorder) -> None:
    """Without organization or project, their headers are left out."""
    async with AsyncImagesClient(api_key="sk-1", base_url=recorder.base_url) as client:
        await client.generate(prompt="p")
    headers = recorder.requests[0].headers
    assert "OpenAI-Organization" not in headers
    assert "OpenAI-Project" not in headers


def test_the_default_base_url_is_the_api() -> None:
    """With nothing set, requests go to https://api.openai.com/v1."""
    client = AsyncImagesClient(api_key="sk-1")
    assert client.base_url == DEFAULT_BASE_URL == "https://api.openai.com/v1"


@pytest.mark.anyio
@pytest.mark.parametrize("key", [None, ""])
async def test_a_missing_key_fails_at_the_first_request(
    recorder: Recorder, monkeypatch: pytest.MonkeyPatch, key: str | None
) -> None:
    """No key anywhere: MissingAPIKeyError names OPENAI_API_KEY, and nothing is sent."""
    if key is not None:
        monkeypatch.setenv("OPENAI_API_KEY", key)
    client = AsyncImagesClient(base_url=recorder.base_url)
    with pytest.raises(MissingAPIKeyError, match="OPENAI_API_KEY"):
        await client.generate(prompt="p")
    assert recorder.requests == []
    assert not client._sender.transport.is_open
    await client.aclose()


def test_a_missing_key_fails_in_the_sync_client_too() -> None:
    """The sync client raises the same error, naming the variable to set."""
    with (
        ImagesClient(base_url="http://127.0.0.1:9/v1") as client,
        pytest.raises(MissingAPIKeyError, match="OPENAI_API_KEY"),
    ):
        client.generate(prompt="p")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, DEFAULT_TIMEOUT),
        (Timeout(connect=1.0, read=2.0, total=3.0), Timeout(connect=1.0, read=2.0, total=3.0)),
        (30, Timeout(connect=10.0, read=30.0, total=30.0)),
        (5.5, Timeout(connect=5.5, read=5.5, total=5.5)),
        (600.0, Timeout(connect=10.0, read=300.0, total=600.0)),
    ],
)
def test_timeout_coerce(value: float | Timeout | None, expected: Timeout) -> None:
    """A number is the total (capping connect and read); a Timeout is kept; None is the default."""
    assert Timeout.coerce(value, default=DEFAULT_TIMEOUT) == expected


def test_timeout_coerce_fills_unbounded_defaults() -> None:
    """Against a default that waits forever, a number bounds every phase."""
    forever = Timeout(connect=None, read=None, total=None)
    assert Timeout.coerce(7, default=forever) == Timeout(connect=7.0, read=7.0, total=7.0)


def test_client_timeout_and_retries_are_exposed() -> None:
    """The client shows its resolved timeout and retry count."""
    client = AsyncImagesClient(api_key="sk-1", timeout=20, max_retries=4)
    assert client.timeout == Timeout(connect=10.0, read=20.0, total=20.0)
    assert client.max_retries == 4


def test_negative_max_retries_is_refused() -> None:
    """``max_retries`` below zero is a ValueError at construction."""
    with pytest.raises(ValueError, match="max_retries"):
        AsyncImagesClient(api_key="sk-1", max_retries=-1)


@pytest.mark.anyio
async def test_plain_http_to_a_remote_host_warns_before_any_io() -> None:
    """Preparing the key for http:// to a non-loopback host warns; nothing goes out."""
    client = AsyncImagesClient(api_key="sk-1", base_url="http://example.invalid/v1")
    with pytest.warns(UserWarning, match="plain http"):
        headers = await client._sender.auth.headers()
    assert headers["Authorization"] == "Bearer sk-1"
    assert not client._sender.transport.is_open


@pytest.mark.anyio
async def test_plain_http_warning_comes_before_the_request(tmp_path: Path) -> None:
    """A request to a plain-http remote host warns before sending anything.

    The upload is not an image, so the request stops at validation with no network I/O.
    """
    not_an_image = tmp_path / "notes.txt"
    not_an_image.write_text("hello")
    async with AsyncImagesClient(api_key="sk-1", base_url="http://example.invalid/v1") as client:
        with (
            pytest.warns(UserWarning, match="example.invalid"),
            pytest.raises(RequestValidationError),
        ):
            await client.edit(image=not_an_image, prompt="p", model="gpt-image-1.5")
        assert not client._sender.transport.is_open


@pytest.mark.parametrize(
    "base_url",
    [
        "http://127.0.0.1:8000/v1",
        "http://localhost:8000/v1",
        "http://[::1]:8000/v1",
        "https://example.invalid/v1",
    ],
)
@pytest.mark.anyio
async def test_loopback_or_https_does_not_warn(base_url: str) -> None:
    """Local servers over http and any https host get no warning."""
    client = AsyncImagesClient(api_key="sk-1", base_url=base_url)
    assert (await client._sender.auth.headers())["Authorization"] == "Bearer sk-1"


def test_the_settings_repr_hides_the_key() -> None:
    """The resolved settings never print the whole key."""
    key = "sk-proj-VERYSECRETKEY123"
    client = AsyncImagesClient(api_key=key, base_url="http://127.0.0.1:9/v1")
    assert key not in repr(client)
    assert key not in repr(client._sender.settings)
