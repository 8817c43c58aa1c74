"""What the command-line tests share: a local server and the environment pointing at it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from openai_images.testing import LocalImagesServer

PNG = b"\x89PNG\r\n\x1a\n"
ROOT = Path(__file__).resolve().parent.parent


def this_copy(**variables: str) -> dict[str, str]:
    """The environment for a child ``python -m openai_images``: ours plus ``variables``,
    with this copy of the package first on ``PYTHONPATH``.

    A child started from another folder (the ``server`` fixture moves to a fresh one) would
    otherwise import whichever copy is installed in the environment, not the one under test.
    """
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return {**os.environ, **variables, "PYTHONPATH": path}


@pytest.fixture(scope="module")
def running_server() -> Iterator[LocalImagesServer]:
    """One local server for the whole module (each test clears what it recorded).

    Legacy, so the commands for retired models and the retired variations endpoint can be
    tested too.
    """
    with LocalImagesServer.in_thread(legacy=True) as server:
        yield server


@pytest.fixture
def server(
    running_server: LocalImagesServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> LocalImagesServer:
    """The server, with the environment pointing at it and a fresh working folder."""
    running_server.clear()
    monkeypatch.setenv("OPENAI_BASE_URL", running_server.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-cli-key-0123456789")
    monkeypatch.chdir(tmp_path)
    return running_server


def one_line(text: str) -> str:
    """The text's only line (failing if there are several)."""
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    return lines[0]
