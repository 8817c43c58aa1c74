"""The pytest plugin: its fixtures, used from a test suite of their own."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

SUITE = '''
import json
import urllib.request

import aiohttp
import pytest


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.mark.anyio
async def test_server(images_server):
    """The async fixture is a running server."""
    url = images_server.base_url + "/images/generations"
    body = {"prompt": "a fox", "size": "256x256", "response_format": "b64_json"}
    headers = {"Authorization": "Bearer k"}
    async with aiohttp.ClientSession() as session:
        async with session.post(url, json=body, headers=headers) as response:
            assert response.status == 200
    assert images_server.requests[0].fields["prompt"] == "a fox"


@pytest.mark.anyio
async def test_client(images_client, images_server):
    """The client fixture talks to the server fixture."""
    result = await images_client.generate(
        prompt="a fox", model="gpt-image-1-mini", size="1024x1024", quality="low"
    )
    assert result.data[0].content()[:4] == b"\\x89PNG"
    assert images_server.requests[-1].api_key == "****-key"


def test_thread(images_server_thread):
    """The thread fixture serves synchronous code."""
    request = urllib.request.Request(
        images_server_thread.base_url + "/images/generations",
        data=json.dumps({"prompt": "x", "size": "256x256"}).encode(),
        headers={"Authorization": "Bearer k", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request) as response:
        assert response.status == 200
'''


def test_the_plugin_fixtures_work_in_a_test_suite(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A suite that loads the plugin gets a server, a client and a threaded server."""
    # Load exactly these plugins, whether or not the package's entry point is installed.
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    pytester.makeini("[pytest]\nfilterwarnings = error\n")
    pytester.makepyfile(test_suite=SUITE)
    result = pytester.runpytest(
        "-p", "anyio.pytest_plugin", "-p", "openai_images.testing.pytest_plugin"
    )
    result.assert_outcomes(passed=3)
