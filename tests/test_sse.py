"""The server-sent-events decoder: the WHATWG parsing rules, any chunking, big data lines."""

from __future__ import annotations

import base64
import itertools
import random

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from openai_images._sse import ServerSentEvent, SSEDecoder

STREAM = (
    b": keep-alive\r\n"
    b"event: image_generation.partial_image\r\n"
    b'data: {"type": "image_generation.partial_image", "partial_image_index": 0}\r\n'
    b"\r\n"
    b"event: image_generation.completed\r\n"
    b'data: {"type": "image_generation.completed",\r\n'
    b'data:  "usage": {"total_tokens": 3}}\r\n'
    b"\r\n"
    b"data: [DONE]\r\n"
    b"\r\n"
)
STREAM_EVENTS = [
    ServerSentEvent(
        event="image_generation.partial_image",
        data='{"type": "image_generation.partial_image", "partial_image_index": 0}',
    ),
    ServerSentEvent(
        event="image_generation.completed",
        data='{"type": "image_generation.completed",\n "usage": {"total_tokens": 3}}',
    ),
    ServerSentEvent(data="[DONE]"),
]


def decode(*chunks: bytes) -> list[ServerSentEvent]:
    """Feed the chunks in order to a new decoder, then close it."""
    decoder = SSEDecoder()
    events = [event for chunk in chunks for event in decoder.feed(chunk)]
    return events + decoder.close()


def split(data: bytes, points: list[int]) -> list[bytes]:
    """Cut ``data`` at the given offsets (taken modulo its length, in any order)."""
    cuts = sorted({point % (len(data) + 1) for point in points})
    bounds = [0, *cuts, len(data)]
    return [data[start:end] for start, end in itertools.pairwise(bounds)]


def test_whole_stream_at_once() -> None:
    """A stream like the API's, fed in one chunk, gives its events; [DONE] is plain data."""
    assert decode(STREAM) == STREAM_EVENTS


def test_byte_by_byte() -> None:
    """Feeding one byte at a time gives the same events as feeding the whole stream."""
    assert decode(*(STREAM[i : i + 1] for i in range(len(STREAM)))) == STREAM_EVENTS


@given(points=st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=40))
def test_any_split_gives_the_same_events(points: list[int]) -> None:
    """However the stream is cut into chunks, the events are the same."""
    assert decode(*split(STREAM, points)) == STREAM_EVENTS


def test_events_come_out_as_soon_as_they_are_complete() -> None:
    """An event is returned by the feed that brings its blank line, not later."""
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\n") == []
    assert decoder.feed(b"\ndata: b") == [ServerSentEvent(data="a")]
    assert decoder.feed(b"\n\n") == [ServerSentEvent(data="b")]


def test_mixed_line_ends() -> None:
    """LF, CR and CRLF all end a line, mixed in one stream."""
    stream = b"data: a\rdata: b\r\ndata: c\n\r\nevent: e\rdata: d\n\r"
    assert decode(stream) == [ServerSentEvent(data="a\nb\nc"), ServerSentEvent(event="e", data="d")]


def test_crlf_split_between_chunks() -> None:
    """A CR ending one chunk and an LF starting the next are one line end, not two."""
    assert decode(b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n") == [ServerSentEvent(data="a\nb")]


def test_cr_then_lf_in_a_later_chunk_after_an_empty_one() -> None:
    """An empty chunk between the CR and the LF does not break the pair."""
    assert decode(b"data: a\r", b"", b"\n\r\n") == [ServerSentEvent(data="a")]


def test_split_character_between_two_crs() -> None:
    """A character cut in two between CR line ends neither breaks nor joins lines."""
    snowman = "\u2603".encode()
    chunks = (b"data: a\r", b"data: " + snowman[:1], snowman[1:] + b"\r", b"\n\r\n")
    assert decode(*chunks) == [ServerSentEvent(data="a\n\u2603")]


def test_comments_are_ignored() -> None:
    """Lines starting with a colon are comments, wherever they are."""
    stream = b":\n: ping\ndata: a\n:data: no\ndata: b\n\n: bye\n\n"
    assert decode(stream) == [ServerSentEvent(data="a\nb")]


def test_multi_line_data() -> None:
    """Several data lines join with LF; an empty data line adds an empty line."""
    assert decode(b"data: one\ndata:\ndata: three\n\n") == [ServerSentEvent(data="one\n\nthree")]


def test_one_leading_space_is_removed() -> None:
    """Only one space after the colon is dropped; none is needed."""
    assert decode(b"data:x\n\ndata:  x\n\ndata: x \n\n") == [
        ServerSentEvent(data="x"),
        ServerSentEvent(data=" x"),
        ServerSentEvent(data="x "),
    ]


def test_field_without_colon() -> None:
    """A line without a colon is a field with an empty value."""
    assert decode(b"data\ndata\n\nevent\ndata: x\n\n") == [
        ServerSentEvent(data="\n"),
        ServerSentEvent(data="x"),
    ]


def test_colon_in_the_value_is_kept() -> None:
    """Only the first colon separates the name from the value."""
    assert decode(b"data: a: b:c\n\n") == [ServerSentEvent(data="a: b:c")]


def test_leading_bom_is_dropped() -> None:
    """One UTF-8 byte order mark at the start is ignored, even when split byte by byte."""
    stream = b"\xef\xbb\xbfdata: a\n\n"
    assert decode(stream) == [ServerSentEvent(data="a")]
    assert decode(*(stream[i : i + 1] for i in range(len(stream)))) == [ServerSentEvent(data="a")]


def test_only_the_first_bom_is_dropped() -> None:
    """A second byte order mark is part of the field name, which is then unknown."""
    assert decode(b"\xef\xbb\xbf\xef\xbb\xbfdata: a\n\ndata: b\n\n") == [ServerSentEvent(data="b")]


def test_multi_byte_characters_split_anywhere() -> None:
    """A character cut between chunks is decoded whole."""
    text = "data: é€😀 ok\n\n".encode()
    for cut in range(len(text) + 1):
        assert decode(text[:cut], text[cut:]) == [ServerSentEvent(data="é€😀 ok")]


def test_invalid_utf8_becomes_replacement_characters() -> None:
    """Bytes that are not UTF-8 are replaced, as the spec's decoding does, not raised."""
    assert decode(b"data: a\xffb\xe2\x82\n\n") == [ServerSentEvent(data="a\ufffdb\ufffd")]


def test_no_data_no_event() -> None:
    """A block with no data line dispatches nothing, and its event name does not leak."""
    assert decode(b"event: lost\n\nid: 7\n\n\n\ndata: x\n\n") == [ServerSentEvent(data="x", id="7")]


def test_empty_data_line_is_still_an_event() -> None:
    """``data:`` with nothing after it dispatches an event with empty data."""
    assert decode(b"event: e\ndata:\n\n") == [ServerSentEvent(event="e", data="")]


def test_empty_event_name_means_default() -> None:
    """An empty ``event:`` is the same as none."""
    assert decode(b"event:\ndata: x\n\n") == [ServerSentEvent(data="x")]


def test_id_persists_and_ignores_nul() -> None:
    """The last event ID carries over, an empty id resets it, and one with NUL is ignored."""
    stream = b"id: 1\ndata: a\n\ndata: b\n\nid: 2\x00\ndata: c\n\nid\ndata: d\n\n"
    assert decode(stream) == [
        ServerSentEvent(data="a", id="1"),
        ServerSentEvent(data="b", id="1"),
        ServerSentEvent(data="c", id="1"),
        ServerSentEvent(data="d", id=""),
    ]


@pytest.mark.parametrize("value", ["", "1a", "-5", "+5", " 5", "1.5", "\u0661\u0662", "²"])
def test_retry_needs_ascii_digits(value: str) -> None:
    """A ``retry`` value that is not only ASCII digits is ignored."""
    stream = f"retry: 100\ndata: a\n\nretry: {value}\ndata: b\n\n".encode()
    assert decode(stream) == [
        ServerSentEvent(data="a", retry=100),
        ServerSentEvent(data="b", retry=100),
    ]


def test_retry_is_read() -> None:
    """A digits-only ``retry`` sets the reconnection time carried by later events."""
    assert decode(b"retry: 0\ndata: a\n\nretry: 3000\ndata: b\n\n") == [
        ServerSentEvent(data="a", retry=0),
        ServerSentEvent(data="b", retry=3000),
    ]


def test_unknown_fields_are_ignored() -> None:
    """Fields the spec does not name, and names in another case, do nothing."""
    assert decode(b"foo: bar\nData: no\nDATA: no\ndata: yes\n\n") == [ServerSentEvent(data="yes")]


@pytest.mark.parametrize("tail", [b"data: x\n", b"data: x", b"data: x\r", b"event: e\ndata"])
def test_close_discards_an_unfinished_event(tail: bytes) -> None:
    """An event not ended by a blank line is not dispatched, at feed or at close."""
    decoder = SSEDecoder()
    assert decoder.feed(b"data: done\n\n" + tail) == [ServerSentEvent(data="done")]
    assert decoder.close() == []


def test_close_resets_for_a_new_stream() -> None:
    """After close the decoder starts over: the id is forgotten and a BOM is dropped again."""
    decoder = SSEDecoder()
    assert decoder.feed(b"id: 1\nretry: 5\ndata: a\n\ndata: half") == [
        ServerSentEvent(data="a", id="1", retry=5)
    ]
    assert decoder.close() == []
    assert decoder.feed(b"\xef\xbb\xbfdata: b\n\n") == [ServerSentEvent(data="b")]


def test_big_data_line_in_64k_chunks() -> None:
    """A 4 MB base64 image in one data line, fed in 64 KiB chunks, comes out whole."""
    b64 = base64.b64encode(random.Random(0).randbytes(3 * 1024 * 1024)).decode()
    payload = '{"type": "image_generation.completed", "b64_json": "' + b64 + '"}'
    stream = (
        b"event: image_generation.completed\r\ndata: "
        + payload.encode()
        + b"\r\n\r\ndata: [DONE]\r\n\r\n"
    )
    chunk = 64 * 1024
    decoder = SSEDecoder()
    events = []
    for start in range(0, len(stream), chunk):
        events.extend(decoder.feed(stream[start : start + chunk]))
    assert events == [
        ServerSentEvent(event="image_generation.completed", data=payload),
        ServerSentEvent(data="[DONE]"),
    ]
    assert len(events[0].data) > 4_000_000


# Field values: any text without line ends (and without NUL for ids, as NUL ids are ignored).
_LINE = st.text(st.characters(codec="utf-8", exclude_characters="\r\n"))
_ID = st.text(st.characters(codec="utf-8", exclude_characters="\r\n\x00"))


@attrs.frozen(kw_only=True)
class Wire:
    """What a server writes for one event; ``None`` leaves the field out."""

    data: list[str]
    event: str | None
    id: str | None
    retry: int | None
    comment: str | None

    def encode(self, line_end: str) -> str:
        """The event's lines, in a fixed order, then the blank line."""
        lines = [f":{self.comment}"] if self.comment is not None else []
        if self.event is not None:
            lines.append(f"event: {self.event}")
        if self.id is not None:
            lines.append(f"id: {self.id}")
        if self.retry is not None:
            lines.append(f"retry: {self.retry}")
        lines.extend(f"data: {line}" for line in self.data)
        return "".join(line + line_end for line in lines) + line_end


_WIRES = st.builds(
    Wire,
    data=st.lists(_LINE, min_size=1, max_size=4),
    event=st.none() | _LINE.filter(bool),
    id=st.none() | _ID,
    retry=st.none() | st.integers(min_value=0, max_value=10**12),
    comment=st.none() | _LINE,
)


@given(
    wires=st.lists(_WIRES, max_size=5),
    line_end=st.sampled_from(["\n", "\r", "\r\n"]),
    bom=st.booleans(),
    points=st.lists(st.integers(min_value=0), max_size=10),
)
def test_round_trip(wires: list[Wire], line_end: str, bom: bool, points: list[int]) -> None:
    """Encoded events, in any line-end style and chunking, decode to what was encoded."""
    text = ("\ufeff" if bom else "") + "".join(wire.encode(line_end) for wire in wires)
    expected = []
    last_id: str | None = None
    retry: int | None = None
    for wire in wires:
        last_id = last_id if wire.id is None else wire.id
        retry = retry if wire.retry is None else wire.retry
        expected.append(
            ServerSentEvent(event=wire.event, data="\n".join(wire.data), id=last_id, retry=retry)
        )
    assert decode(*split(text.encode(), points)) == expected
