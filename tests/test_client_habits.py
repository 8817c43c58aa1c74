"""The official SDK's habits, kept: OPENAI_LOG, with_options, with_raw_response,
OPENAI_CUSTOM_HEADERS; and the public ``openai_images.typing`` module."""

from __future__ import annotations

import ast
import inspect
import logging
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import openai_images
import openai_images.typing
from openai_images import AsyncImagesClient, RawResponse, Timeout, _send

from .images import make_png
from .recorder import Recorder, Reply

pytestmark = pytest.mark.anyio
KEY = "sk-habits-SECRET-0123456789"
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
async def recorder() -> AsyncIterator[Recorder]:
    async with Recorder() as rec:
        yield rec


async def test_each_request_is_logged_without_the_key(
    recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    """At INFO, one line per request: method, URL, status, request id, retries, timing;
    retries get their own line; neither the key nor the body appears."""
    fail = {"error": {"message": "busy"}}
    recorder.reply(Reply(status=500, json=fail, headers={"retry-after-ms": "1"}), Reply())
    caplog.set_level(logging.INFO, logger="openai_images")
    async with AsyncImagesClient(api_key=KEY, base_url=recorder.base_url) as client:
        await client.generate(prompt="a secret prompt")
    lines = [record.getMessage() for record in caplog.records]
    done = [line for line in lines if line.startswith("HTTP POST")]
    assert done == [line for line in done if f"{recorder.base_url}/images/generations" in line]
    assert "-> 200 (request id req_2, 1 retries" in done[0]
    assert any(line.startswith("Retrying POST") for line in lines)
    assert not any(KEY in line or "secret prompt" in line or "aGk=" in line for line in lines)


async def test_openai_log_turns_logging_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """``OPENAI_LOG=debug`` sets the package logger's level and gives it a handler, once."""
    logger = logging.getLogger("openai_images")
    monkeypatch.setattr(_send, "_logging_configured", False)
    monkeypatch.setattr(logger, "handlers", [])
    monkeypatch.setattr(logger, "level", logging.NOTSET)
    _send.configure_logging({"OPENAI_LOG": "nonsense"})
    assert logger.handlers == []
    _send.configure_logging({"OPENAI_LOG": "debug"})
    _send.configure_logging({"OPENAI_LOG": "debug"})
    assert logger.level == logging.DEBUG
    assert len(logger.handlers) == 1


async def test_with_options_shares_the_pool_and_changes_settings(recorder: Recorder) -> None:
    """The copy has its own timeout, retries and headers, the same connections, and the
    original keeps its settings; closing the original closes both."""
    client = AsyncImagesClient(api_key=KEY, base_url=recorder.base_url)
    copy = client.with_options(timeout=5, max_retries=0, default_headers={"X-Team": "a"})
    assert copy._sender.transport is client._sender.transport
    assert (copy.timeout.total, copy.max_retries) == (5.0, 0)
    assert (client.timeout, client.max_retries) == (Timeout(), 2)
    await copy.generate(prompt="p")
    await client.generate(prompt="p")
    first, second = recorder.requests
    assert first.headers["X-Team"] == "a"
    assert "X-Team" not in second.headers
    await client.aclose()
    assert copy._sender.closed


async def test_with_raw_response_gives_status_headers_and_body(recorder: Recorder) -> None:
    """The raw answer arrives with the parsed one; ``parse()`` returns the latter."""
    async with AsyncImagesClient(api_key=KEY, base_url=recorder.base_url) as client:
        raw = await client.with_raw_response.generate(prompt="p")
    assert isinstance(raw, RawResponse)
    assert raw.status_code == 200
    assert raw.headers["x-request-id"] == "req_1"
    assert raw.content.startswith(b"{")
    assert raw.parse().data[0].b64_json == "aGk="
    assert raw.parse().request_id == "req_1"


async def test_custom_headers_come_from_the_environment(
    recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``OPENAI_CUSTOM_HEADERS`` lines are sent; ``default_headers`` win over them."""
    monkeypatch.setenv("OPENAI_CUSTOM_HEADERS", "X-Env: test\nX-Team: from-env\nnot a header")
    async with AsyncImagesClient(
        api_key=KEY, base_url=recorder.base_url, default_headers={"X-Team": "given"}
    ) as client:
        await client.generate(prompt="p")
    headers = recorder.requests[0].headers
    assert (headers["X-Env"], headers["X-Team"]) == ("test", "given")


async def test_create_variation_is_deprecated(recorder: Recorder) -> None:
    """The retired endpoint still works against servers that serve it, with a warning."""
    async with AsyncImagesClient(api_key=KEY, base_url=recorder.base_url) as client:
        with pytest.warns(DeprecationWarning, match="retired"):
            await client.create_variation(image=make_png(8, 8), model="dall-e-2")
    assert recorder.requests[0].path == "/v1/images/variations"


def test_typing_exports_the_types_of_public_signatures() -> None:
    """Every name of ``openai_images.typing`` imports and is documented; the aliases in the
    client's public signatures are among them."""
    names = openai_images.typing.__all__
    assert names == sorted(names)
    for name in names:
        assert getattr(openai_images.typing, name) is not None
    # The client's keyword methods are inherited from the generated ``_endpoints``.
    source = inspect.getsource(openai_images._client) + inspect.getsource(openai_images._endpoints)
    annotations = {
        node.id
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Name) and node.id[:1].isupper()
    }
    for alias in ("ImageInput", "KeyFunction", "ProgressCallback", "Quality", "OutputFormat"):
        assert alias in annotations
        assert alias in names


def test_the_generated_client_is_up_to_date() -> None:
    """``tools/generate_client.py --check`` passes: the keyword methods match the classes."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "generate_client.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_request_field_is_a_keyword_of_its_method() -> None:
    """A field added to a request class reaches the client's method (and its docstring)."""
    import attrs

    pairs = [
        (AsyncImagesClient.generate, openai_images.GenerateRequest),
        (AsyncImagesClient.edit, openai_images.EditRequest),
        (AsyncImagesClient.create_variation, openai_images.VariationRequest),
    ]
    for method, cls in pairs:
        parameters = inspect.signature(method).parameters
        for field in attrs.fields(cls):
            if field.init:
                assert field.name in parameters, (method.__name__, field.name)
                assert f"{field.name}: " in (method.__doc__ or ""), (method.__name__, field.name)


async def test_with_options_may_change_the_key_and_the_base_url(recorder: Recorder) -> None:
    """A copy with another key authenticates with it; with another base URL it goes there."""
    async with Recorder() as other:
        client = AsyncImagesClient(api_key=KEY, base_url=recorder.base_url)
        await client.with_options(api_key="sk-other-0123456789").generate(prompt="p")
        await client.with_options(base_url=other.base_url).generate(prompt="p")
        await client.generate(prompt="p")
        await client.aclose()
    first, mine = recorder.requests
    assert first.headers["Authorization"] == "Bearer sk-other-0123456789"
    assert mine.headers["Authorization"] == f"Bearer {KEY}"
    assert other.requests[0].headers["Authorization"] == f"Bearer {KEY}"
