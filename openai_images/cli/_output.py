"""Where a command's images go, and what it prints about them.

Results are saved as ``{prefix}-{n}.{ext}`` (``n`` from 1), partial images of a stream as
``{prefix}-partial-{i}.{ext}``; the extension follows the image's real format. Nothing
existing is replaced unless ``--overwrite``. With ``--json``, a response's metadata is
printed in place of the paths, without the image data.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import anyio
import orjson

from openai_images._converter import converter
from openai_images._responses import ImagesResponse, Usage, write_atomically
from openai_images._sniff import image_extension

from ._failures import CommandError

__all__ = ["Outputs", "print_json", "response_metadata", "slug", "usage_data"]


def slug(text: str, *, limit: int = 40) -> str:
    """A file-name prefix from a prompt: lower-case words joined by ``-``.

    Example:
        >>> slug("A watercolor lighthouse, at dusk!")
        'a-watercolor-lighthouse-at-dusk'
        >>> slug("***")
        'image'
    """
    words = re.findall(r"[a-z0-9]+", text.lower())
    out = ""
    for word in words:
        candidate = f"{out}-{word}" if out else word
        if len(candidate) > limit:
            break
        out = candidate
    return out or (words[0][:limit] if words else "image")


class Outputs:
    """Where a command's images go: ``{directory}/{prefix}-{label}.{ext}``.

    Nothing existing is replaced unless ``overwrite``: ``check_free`` (blocking) fails
    before a request is sent when a predicted name is taken, and ``save`` checks again.
    """

    def __init__(self, directory: Path, prefix: str, *, overwrite: bool) -> None:
        self.directory = directory
        self.prefix = prefix
        self.overwrite = overwrite

    def path(self, label: str | int, ext: str) -> Path:
        """The path of one output."""
        return self.directory / f"{self.prefix}-{label}.{ext}"

    def check_free(self, paths: Sequence[Path]) -> None:
        """Fail naming the first path that exists (unless overwriting)."""
        if self.overwrite:
            return
        for path in paths:
            if path.exists():
                raise CommandError(f"{path} already exists (use --overwrite to replace it)")

    async def save(self, label: str | int, data: bytes, *, fallback_ext: str) -> Path:
        """Write one image atomically and return its path."""
        path = self.path(label, image_extension(data, fallback=fallback_ext))
        await anyio.to_thread.run_sync(self._write, path, data)
        return path

    def _write(self, path: Path, data: bytes) -> None:
        self.check_free([path])
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, data)


def print_json(data: Any, out: TextIO | None = None) -> None:
    """Print ``data`` as indented JSON (to standard output by default)."""
    stream = out if out is not None else sys.stdout
    stream.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")


def usage_data(usage: Usage | None) -> dict[str, Any] | None:
    """Token usage as JSON data, or ``None``."""
    return converter.unstructure(usage) if usage is not None else None


def response_metadata(response: ImagesResponse, paths: Sequence[Path]) -> dict[str, Any]:
    """A response as JSON data, with saved paths in place of the image data."""
    return {
        "created": response.created,
        "request_id": response.request_id,
        "size": response.size,
        "quality": response.quality,
        "background": response.background,
        "output_format": response.output_format,
        "usage": usage_data(response.usage),
        "images": [
            {"path": str(path), "url": image.url, "revised_prompt": image.revised_prompt}
            for path, image in zip(paths, response.data, strict=True)
        ],
    }
