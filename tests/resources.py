"""What tests use to see that nothing leaks: descriptor counts, and a stream that can't seek."""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path
from typing import Any


def open_fds() -> int:
    """How many file descriptors this process has open."""
    return len(os.listdir("/proc/self/fd"))


def files_open(path: Path) -> int:
    """How many of this process's descriptors point at ``path``."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # a descriptor closed while we looked
            count += os.readlink(f"/proc/self/fd/{fd}") == str(path)
    return count


class OneWayStream(io.RawIOBase):
    """A non-seekable raw stream that hands out at most 1000 bytes per read, like a pipe."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        """It can be read."""
        return True

    def readinto(self, buffer: Any) -> int:
        """Copy at most 1000 bytes into ``buffer``."""
        piece = self._data.read(min(len(buffer), 1000))
        buffer[: len(piece)] = piece
        return len(piece)
