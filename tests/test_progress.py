"""Batch progress on a terminal: the tqdm bar, or plain lines, or nothing."""

from __future__ import annotations

import io
import sys

import pytest

from openai_images import BatchProgress, ProgressBar
from openai_images._progress import PlainProgress, progress_display


def at(done: int, elapsed: float) -> BatchProgress:
    """Progress of ``done`` ok items at ``elapsed`` seconds (a made-up clock)."""
    return BatchProgress(done=done, ok=done, elapsed=elapsed, rate=done / max(elapsed, 1))


def test_the_display_is_the_tqdm_bar_when_it_can_be() -> None:
    """With tqdm installed, the display is the public progress bar."""
    out = io.StringIO()
    display = progress_display(total=3, desc="batch", out=out)
    assert isinstance(display, ProgressBar)
    display(at(3, 1.0))
    display.close()
    assert "3/3" in out.getvalue()


def test_without_tqdm_the_display_prints_plain_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without tqdm: a line at most every two seconds, and always the last one."""
    monkeypatch.setitem(sys.modules, "tqdm", None)
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    out = io.StringIO()
    display = progress_display(total=4, desc="batch", out=out)
    assert isinstance(display, PlainProgress)
    for done, elapsed in [(1, 0.5), (2, 1.0), (3, 2.6), (4, 2.7)]:
        display(at(done, elapsed))
    display.close()
    assert [line.split(" done")[0] for line in out.getvalue().splitlines()] == [
        "1/4",
        "3/4",
        "4/4",
    ]


def test_a_disabled_display_shows_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    """``enabled=False`` (--no-progress) prints nothing at all."""
    display = progress_display(total=2, desc="batch", enabled=False)
    display(at(2, 1.0))
    display.close()
    assert capsys.readouterr() == ("", "")
