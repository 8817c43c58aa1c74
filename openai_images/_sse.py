"""A server-sent-events decoder that takes bytes and gives events (sans-I/O).

It follows the WHATWG event-stream parsing rules: LF, CR and CRLF line ends, comment
lines, ``field: value`` lines, multi-line ``data``, an optional leading byte order mark,
and no event without data. It knows nothing of sockets or of what the events mean;
``[DONE]`` and JSON belong to the layer above.

Streamed images arrive as ``data:`` lines of several megabytes split into many network
chunks, so the decoder keeps the unfinished line as a list of pieces and searches only each
new chunk for line ends: the work is linear in the size of the stream.
"""

from __future__ import annotations

import codecs
import re

import attrs

__all__ = ["SSEDecoder", "ServerSentEvent"]

_LINE_END = re.compile(r"\r\n?|\n")


@attrs.frozen(kw_only=True)
class ServerSentEvent:
    """One dispatched event.

    Attributes:
        event: The ``event:`` field, or ``None`` when the event set none (the spec's
            ``"message"``).
        data: The ``data:`` lines, joined with ``"\\n"``.
        id: The stream's last event ID when this event was dispatched; like the spec's
            state it carries over to later events until another ``id:`` changes it.
        retry: The reconnection time in milliseconds last announced by the stream, carried
            over the same way.
    """

    event: str | None = None
    data: str = ""
    id: str | None = None
    retry: int | None = None


class SSEDecoder:
    """Turn the bytes of a ``text/event-stream`` into ``ServerSentEvent`` objects.

    Feed it the chunks in order, split anywhere (even inside a UTF-8 character or a CRLF),
    then call ``close`` at the end of the input.

    Example:
        >>> decoder = SSEDecoder()
        >>> decoder.feed(b"event: ping\\r\\ndata: {\\"a\\"")
        []
        >>> decoder.feed(b": 1}\\r\\n\\r\\n")
        [ServerSentEvent(event='ping', data='{"a": 1}', id=None, retry=None)]
        >>> decoder.close()
        []
    """

    def __init__(self) -> None:
        # utf-8-sig drops one leading byte order mark, even one split over several chunks.
        self._decoder = codecs.getincrementaldecoder("utf-8-sig")(errors="replace")
        self._pieces: list[str] = []  # the line so far, joined once its end arrives
        self._after_cr = False
        self._event: str | None = None
        self._data: list[str] = []
        self._last_id: str | None = None
        self._retry: int | None = None

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """Take the next bytes of the stream and return the events they complete."""
        text = self._decoder.decode(chunk)
        if not text:
            return []
        if self._after_cr:
            # The chunk before ended in CR, already taken as a line end: this LF is its pair.
            self._after_cr = False
            if text[0] == "\n":
                text = text[1:]
        events: list[ServerSentEvent] = []
        start = 0
        for match in _LINE_END.finditer(text):
            self._pieces.append(text[start : match.start()])
            line = "".join(self._pieces)
            self._pieces.clear()
            event = self._process(line)
            if event is not None:
                events.append(event)
            start = match.end()
        if start < len(text):
            self._pieces.append(text[start:])
        else:
            self._after_cr = text.endswith("\r")
        return events

    def close(self) -> list[ServerSentEvent]:
        """End the input and return the events it completes.

        The spec discards an event that the stream did not end with a blank line, and a last
        line without a line end, so nothing is ever dispatched here; the decoder is reset
        and can read a new stream.
        """
        self._decoder.reset()
        self._pieces.clear()
        self._after_cr = False
        self._event = None
        self._data = []
        self._last_id = None
        self._retry = None
        return []

    def _process(self, line: str) -> ServerSentEvent | None:
        if not line:
            return self._dispatch()
        if line[0] == ":":
            return None
        colon = line.find(":")
        if colon < 0:
            name, value = line, ""
        else:
            name = line[:colon]
            start = colon + 1
            if line.startswith(" ", start):
                start += 1
            # One slice: a data line may be megabytes long.
            value = line[start:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            if "\0" not in value:
                self._last_id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self._retry = int(value)
        return None

    def _dispatch(self) -> ServerSentEvent | None:
        data, event = self._data, self._event
        self._data, self._event = [], None
        if not data:
            return None
        return ServerSentEvent(
            event=event or None, data="\n".join(data), id=self._last_id, retry=self._retry
        )
