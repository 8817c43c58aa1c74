"""Batch progress on a terminal: a tqdm bar, or plain lines when tqdm is not installed.

``progress_bar`` is the public tqdm bar (``openai-images[progress]``); ``progress_display``
is what the command line and the demo show: the bar when it can be drawn, else a line
every few seconds, else nothing. Each is an ``on_progress`` callback with a ``close()``.
"""

from __future__ import annotations

import math
import sys
from types import TracebackType
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from ._batch import BatchProgress

__all__ = ["PlainProgress", "ProgressBar", "ProgressDisplay", "progress_bar", "progress_display"]


class ProgressBar:
    """An ``on_progress`` callback that draws a tqdm bar; close it when the batch is done.

    Make one with ``progress_bar``.
    """

    def __init__(self, *, total: int | None, desc: str, options: dict[str, Any]) -> None:
        try:
            from tqdm.auto import tqdm  # type: ignore[import-untyped]  # tqdm ships no types
        except ImportError as error:
            raise ImportError(
                "progress_bar() draws with tqdm, which is not installed: "
                "pip install 'openai-images[progress]'"
            ) from error
        self._bar = tqdm(total=total, desc=desc, unit="item", **options)

    def __call__(self, progress: BatchProgress) -> None:
        """Move the bar to ``progress``."""
        self._bar.set_postfix(
            ok=progress.ok,
            failed=progress.failed,
            skipped=progress.skipped,
            in_flight=progress.in_flight,
            refresh=False,
        )
        self._bar.update(progress.done - self._bar.n)

    def close(self) -> None:
        """Finish the bar."""
        self._bar.close()

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def progress_bar(*, total: int | None = None, desc: str = "images", **options: Any) -> ProgressBar:
    """A tqdm progress bar to pass as ``on_progress`` (needs ``openai-images[progress]``).

    Args:
        total: How many items the batch has, if known (e.g. ``len(requests)``).
        desc: The bar's label.
        **options: More ``tqdm`` arguments (``file=``, ``leave=``...).

    Example:
        ```python
        with progress_bar(total=len(requests)) as bar:
            report = await client.run_batch(requests, on_progress=bar)
        ```
    """
    return ProgressBar(total=total, desc=desc, options=options)


class PlainProgress:
    """Progress as a line now and then, for when tqdm is not installed.

    Example:
        ```python
        show = PlainProgress(total=100, out=sys.stderr)
        # each call prints at most every 2 s, and always the last one:
        # 100/100 done (98 ok, 2 failed, 0 skipped), 7.5 requests/s
        ```
    """

    def __init__(self, *, total: int | None, every: float = 2.0, out: TextIO) -> None:
        self._total = total
        self._every = every
        self._out = out
        self._last = -math.inf

    def __call__(self, progress: BatchProgress) -> None:
        """Print a line if the last one is old enough, or the batch is done."""
        finished = self._total is not None and progress.done >= self._total
        if not finished and progress.elapsed - self._last < self._every:
            return
        self._last = progress.elapsed
        of = f"/{self._total}" if self._total is not None else ""
        self._out.write(
            f"{progress.done}{of} done ({progress.ok} ok, {progress.failed} failed, "
            f"{progress.skipped} skipped), {progress.rate:.1f} requests/s\n"
        )
        self._out.flush()

    def close(self) -> None:
        """Nothing to finish."""


class _NoProgress:
    def __call__(self, progress: BatchProgress) -> None:
        """Show nothing."""

    def close(self) -> None:
        """Nothing to finish."""


ProgressDisplay = ProgressBar | PlainProgress | _NoProgress
"""An ``on_progress`` callback with a ``close()``, as ``progress_display`` makes them."""


def progress_display(
    *, total: int | None, desc: str, out: TextIO | None = None, enabled: bool = True
) -> ProgressDisplay:
    """A tqdm bar on ``out`` if tqdm is installed, else plain lines, or nothing if not ``enabled``.

    Args:
        total: How many items the batch has, if known.
        desc: The bar's label.
        out: Where to draw (default: ``sys.stderr``).
        enabled: ``False`` shows nothing (``--no-progress``).

    Example:
        ```python
        display = progress_display(total=len(requests), desc="batch")
        try:
            report = await client.run_batch(requests, on_progress=display)
        finally:
            display.close()
        ```
    """
    if not enabled:
        return _NoProgress()
    stream = out if out is not None else sys.stderr
    try:
        return progress_bar(total=total, desc=desc, file=stream)
    except ImportError:
        return PlainProgress(total=total, out=stream)
