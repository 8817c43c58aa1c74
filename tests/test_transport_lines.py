"""``StreamingExchange.lines``: a body split into lines however its chunks arrive."""

from __future__ import annotations

from typing import Any, cast

import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st

from openai_images import ResponseTooLargeError
from openai_images._config import Timeout
from openai_images._transport import StreamingExchange, _Attempt


class FakeContent:
    """An aiohttp body that hands over the given chunks, then ``b""``."""

    def __init__(self, chunks: list[bytes]) -> None:
        self._chunks = list(chunks)

    async def readany(self) -> bytes:
        """The next chunk."""
        return self._chunks.pop(0) if self._chunks else b""


class FakeResponse:
    """The parts of an aiohttp response a ``StreamingExchange`` uses."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.status = 200
        self.headers = {"x-request-id": "req_1"}
        self.content = FakeContent(chunks)
        self.closed = False

    def close(self) -> None:
        """Drop the connection."""
        self.closed = True


def exchange(chunks: list[bytes], *, limit: int) -> tuple[StreamingExchange, FakeResponse]:
    """An exchange over the chunks, and its fake response."""
    response = FakeResponse(chunks)
    attempt = _Attempt("GET", "http://x/files/f/content", Timeout(), proxy=None, headers={})
    made = StreamingExchange(
        cast(Any, response), limit=limit, attempt=attempt, release=lambda: None
    )
    return made, response


def split(body: bytes, cuts: list[int]) -> list[bytes]:
    """The body in chunks at the given (sorted, in-range) cut points."""
    points = sorted({min(cut, len(body)) for cut in cuts})
    return [body[a:b] for a, b in zip([0, *points], [*points, len(body)], strict=True) if b > a]


def read_lines(made: StreamingExchange) -> list[bytes]:
    """Every line of the exchange."""

    async def run() -> list[bytes]:
        return [line async for line in made.lines()]

    return anyio.run(run)


@given(
    lines=st.lists(st.binary(max_size=30).map(lambda b: b.replace(b"\n", b"")), max_size=12),
    end=st.booleans(),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=20),
)
def test_lines_come_out_whole_whatever_the_chunks(
    lines: list[bytes], end: bool, cuts: list[int]
) -> None:
    """Joined with newlines and cut anywhere, the body gives back the same lines; the
    body as a whole may be far over the limit, each line within it."""
    body = b"\n".join(lines) + (b"\n" if end and lines else b"")
    made, _ = exchange(split(body, cuts), limit=30)
    expected = body.split(b"\n")
    if expected and expected[-1] == b"":
        expected.pop()
    assert read_lines(made) == expected


@pytest.mark.parametrize("ended", [True, False])
def test_a_line_over_the_limit_fails_and_drops_the_connection(ended: bool) -> None:
    """Ended or still growing, a line longer than the limit is ResponseTooLargeError."""
    long = b"x" * 11 + (b"\n" if ended else b"")
    made, response = exchange([b"ok\n", long[:6], long[6:]], limit=10)
    with pytest.raises(ResponseTooLargeError, match="line is longer than the limit of 10") as info:
        read_lines(made)
    assert info.value.request_id == "req_1"
    assert response.closed
