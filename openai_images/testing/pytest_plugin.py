"""pytest fixtures for the local Images server, registered as the ``openai_images`` plugin.

- ``images_server``: a running ``LocalImagesServer`` (async:
  use it from ``@pytest.mark.anyio`` tests);
- ``images_client``: an ``AsyncImagesClient`` pointed at it, with the
  key ``"test-key"``;
- ``images_server_thread``: a server on its own event loop in a background thread, for
  synchronous tests.

Everything is imported inside the fixtures, so the plugin loads (and pytest starts) even
where Pillow, which the server needs, is not installed.

Example:
    ```python
    @pytest.mark.anyio
    async def test_fox(images_client, images_server):
        await images_client.generate(prompt="a fox", model="gpt-image-1-mini", quality="low")
        assert images_server.requests[-1].fields["prompt"] == "a fox"
    ```
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from openai_images import AsyncImagesClient
    from openai_images.testing import LocalImagesServer

__all__ = ["images_client", "images_server", "images_server_thread"]


@pytest.fixture
async def images_server() -> AsyncIterator[LocalImagesServer]:
    """A running local Images server on 127.0.0.1, on a free port."""
    from openai_images.testing import LocalImagesServer

    async with LocalImagesServer() as server:
        yield server


@pytest.fixture
async def images_client(images_server: LocalImagesServer) -> AsyncIterator[AsyncImagesClient]:
    """An async client for ``images_server``, closed after the test."""
    from openai_images import AsyncImagesClient

    async with AsyncImagesClient(api_key="test-key", base_url=images_server.base_url) as client:
        yield client


@pytest.fixture
def images_server_thread() -> Iterator[LocalImagesServer]:
    """A local Images server running on its own event loop in a background thread."""
    from openai_images.testing import LocalImagesServer

    with LocalImagesServer.in_thread() as server:
        yield server
