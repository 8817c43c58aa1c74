"""Fixtures of the local server's tests: a running server and a raw HTTP session."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from openai_images.testing import LocalImagesServer

from ._support import AUTH


@pytest.fixture
async def server() -> AsyncIterator[LocalImagesServer]:
    """A local Images server with default settings."""
    async with LocalImagesServer() as running:
        yield running


@pytest.fixture
async def legacy_server() -> AsyncIterator[LocalImagesServer]:
    """A local Images server that also serves the retired models and variations."""
    async with LocalImagesServer(legacy=True) as running:
        yield running


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """A raw aiohttp session that sends the bearer key ``test-key``."""
    async with aiohttp.ClientSession(headers=AUTH) as session:
        yield session
