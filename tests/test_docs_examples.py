"""Every Python example in README.md and docs/pages/*.md runs, against a local server.

So the examples cannot rot. How they run:

- The ```python blocks of one page run in order in one namespace, like the cells of a
  notebook: a later block may use what an earlier one defined.
- The working folder is a fresh temporary one holding ``soap.png``, ``candle.png``,
  ``tea.png``, ``jam.png`` and ``mask.png`` (the demo's product photos), and
  ``OPENAI_BASE_URL`` / ``OPENAI_API_KEY`` point at a local server in a thread.
- ``__name__`` is not ``"__main__"``, so an ``if __name__ == "__main__":`` block (a web
  server that would run forever) is defined but not started.
- A block titled like a pytest file (```python title="test_x.py") is written to that
  file and run by pytest in a subprocess, as a user's test suite would be.

There is no way to skip a block: an example that cannot run here does not belong in the
docs.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

from openai_images._demo import draw_products
from openai_images.testing import AzureMode, LocalImagesServer

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs" / "pages").glob("*.md"))]

_FENCE = re.compile(r"^```python(?P<info>[^\n`]*)$")
_TITLE = re.compile(r'title="(?P<title>[^"]+)"')


@attrs.frozen(kw_only=True)
class Block:
    """One ```python block of a page."""

    page: Path
    line: int
    code: str
    title: str | None

    @property
    def is_test_file(self) -> bool:
        """Whether pytest runs it (its title names a test file) rather than exec."""
        return self.title is not None and re.fullmatch(r"test_\w+\.py", self.title) is not None


def python_blocks(page: Path) -> list[Block]:
    """The page's ```python blocks, in order, with the line each starts on."""
    blocks: list[Block] = []
    lines = page.read_text(encoding="utf-8").splitlines()
    index = 0
    while index < len(lines):
        match = _FENCE.match(lines[index])
        if match is None:
            index += 1
            continue
        start = index + 1
        end = start
        while lines[end].strip() != "```":
            end += 1
        title = _TITLE.search(match["info"])
        blocks.append(
            Block(
                page=page,
                line=start + 1,
                code="\n".join(lines[start:end]) + "\n",
                title=title["title"] if title else None,
            )
        )
        index = end + 1
    return blocks


def page_id(page: Path) -> str:
    """The page's path from the repository's root, as the test's id."""
    return page.relative_to(ROOT).as_posix()


@pytest.fixture
def docs_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalImagesServer]:
    """A local server, the environment pointing at it, and a folder with the input photos."""
    draw_products(tmp_path)
    monkeypatch.chdir(tmp_path)
    with LocalImagesServer.in_thread() as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-docs-examples")
        yield server


def test_the_pages_have_examples() -> None:
    """The extraction finds the README's examples and some on most pages."""
    counts = {page.name: len(python_blocks(page)) for page in PAGES}
    assert counts["README.md"] >= 5
    assert sum(1 for count in counts.values() if count) >= 10


@pytest.fixture
def azure_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalImagesServer]:
    """A local server in Azure mode (deployment ``prod-images`` runs gpt-image-1.5), and the
    official SDK's Azure variables pointing at it, for the pages with Azure examples."""
    mode = AzureMode(deployments={"prod-images": "gpt-image-1.5", "gpt-image-1.5": "gpt-image-1.5"})
    with LocalImagesServer.in_thread(azure=mode) as server:
        monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", server.url)
        monkeypatch.setenv("OPENAI_API_VERSION", "2025-04-01-preview")
        monkeypatch.setenv("AZURE_OPENAI_API_KEY", "azure-docs-examples")
        monkeypatch.delenv("AZURE_OPENAI_AD_TOKEN", raising=False)
        yield server


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_examples_run(
    page: Path, docs_env: LocalImagesServer, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Each page's examples run without error, and its pytest examples pass."""
    if page.name in ("azure.md", "README.md"):
        request.getfixturevalue("azure_env")
    namespace: dict[str, object] = {"__name__": "docs_example"}
    test_files: list[str] = []
    for block in python_blocks(page):
        if block.is_test_file:
            assert block.title is not None
            (tmp_path / block.title).write_text(block.code, encoding="utf-8")
            test_files.append(block.title)
            continue
        code = compile(block.code, f"{page_id(page)}:{block.line}", "exec")
        exec(code, namespace)
    if test_files:
        completed = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                "-W",
                "error",
                *test_files,
            ],
            cwd=tmp_path,
            # The package under test, not whichever copy is installed in the environment.
            env={
                **os.environ,
                "PYTHONPATH": os.pathsep.join(
                    filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])
                ),
            },
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert completed.returncode == 0, completed.stdout + completed.stderr
