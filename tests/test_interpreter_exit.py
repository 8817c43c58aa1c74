"""A client left open must not crash or hang the interpreter on its way out."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

SCRIPTS = {
    "sync": """
        from openai_images import ImagesClient
        from openai_images.testing import LocalImagesServer

        with LocalImagesServer.in_thread() as server:
            client = ImagesClient(api_key="sk-test", base_url=server.base_url)
            client.generate(prompt="left open", model="gpt-image-2.5-flare", size="256x256",
                            quality="low")
            print("made an image")
        # no client.close(): the interpreter exits with the client's loop still running
    """,
    "async": """
        import asyncio
        from openai_images import AsyncImagesClient
        from openai_images.testing import LocalImagesServer

        async def main() -> None:
            async with LocalImagesServer() as server:
                client = AsyncImagesClient(api_key="sk-test", base_url=server.base_url)
                await client.generate(prompt="left open", model="gpt-image-2.5-flare",
                                      size="256x256", quality="low")
                print("made an image")
                globals()["kept"] = client  # never closed, still referenced at exit

        asyncio.run(main())
    """,
}


@pytest.mark.parametrize("kind", sorted(SCRIPTS))
def test_unclosed_client_exits_cleanly(kind: str) -> None:
    """The process ends promptly with status 0 and no traceback."""
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(SCRIPTS[kind])],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "made an image" in result.stdout
    assert "Traceback" not in result.stderr
