"""``ImageStream``: a streamed generation or edit, for synchronous code.

It wraps an ``AsyncImageStream`` and reads each event on the sync client's loop, through
its ``Runner``. A stream opened before ``os.fork()`` belongs to the parent: the child
refuses to read it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from types import TracebackType
from typing import Generic, TypeVar

from ._errors import ClientClosedError
from ._runner import Runner, abandon, fork_generation
from ._streaming import AsyncImageStream

__all__ = ["ImageStream"]

E = TypeVar("E")


class ImageStream(Generic[E]):
    """A streamed generation or edit for synchronous code: iterate it, then close it.

    Example:
        ```python
        with client.generate(prompt="a fox", model="gpt-image-1.5", stream=True,
                             partial_images=2) as stream:
            for event in stream:
                print(event.type)
        ```
    """

    def __init__(self, stream: AsyncImageStream[E], runner: Runner) -> None:
        self._stream = stream
        self._runner = runner
        self._generation = runner.generation
        self.request_id = stream.request_id
        self.headers = stream.headers

    def _forked(self) -> bool:
        if self._generation == fork_generation():
            return False
        if self._generation >= 0:
            abandon(self._stream)  # the parent's connection: never read or closed here
            self._generation = -1
        return True

    def __iter__(self) -> Iterator[E]:
        return self

    def __next__(self) -> E:
        if self._forked():
            raise RuntimeError("this stream was opened before fork(); open it again here")
        try:
            return self._runner.run(self._stream.__anext__)
        except StopAsyncIteration:
            raise StopIteration from None

    def close(self) -> None:
        """Close the connection; the stream yields nothing more. Harmless once the client
        is closed (closing it closed the connection)."""
        if not self._forked():
            with contextlib.suppress(ClientClosedError):
                self._runner.run(self._stream.aclose)

    def __enter__(self) -> ImageStream[E]:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
