"""JSON response bodies parsed a piece at a time, so a large one does not triple in memory.

``orjson.loads`` keeps a working copy of the whole document until it returns, so a 40 MB
answer of ten ``b64_json`` images needs the body, that copy and the new strings at once:
three times its size. ``loads`` instead finds the members of the top-level object, and
the elements of its ``data`` array, with a few byte searches, and gives each to orjson on
its own; each working copy is gone before the next one is made (sans-I/O: bytes in,
objects out).

Only whitespace and punctuation are looked at here; every value, key included, is still
parsed and checked by orjson. Whatever the scanner does not expect (another shape, a
syntax error) falls back to one ``orjson.loads`` of the whole body, so the result, or the
``orjson.JSONDecodeError``, is always orjson's own.

Example:
    >>> loads(b'{"created": 1, "data": [{"b64_json": "aGk="}]}', split_above=0)
    {'created': 1, 'data': [{'b64_json': 'aGk='}]}
"""

from __future__ import annotations

import re
from typing import Any

import orjson

__all__ = ["SPLIT_ABOVE", "loads"]

SPLIT_ABOVE = 4 * 1024 * 1024
"""Bodies at least this long are parsed piece by piece; smaller ones in one call."""

_WHITESPACE = re.compile(rb"[ \t\n\r]*")
# Outside strings only brackets and quotes matter to find where a value ends.
_STRUCTURAL = re.compile(rb'["\[\]{}]')
_SCALAR = re.compile(rb"[^,\]}\s]+")
_QUOTE, _BACKSLASH, _COMMA, _COLON = 0x22, 0x5C, 0x2C, 0x3A
# Deeper values go to orjson whole, whose nesting limit counts from the document's top.
_MAX_DEPTH = 256
_OPEN_OBJECT, _CLOSE_OBJECT, _OPEN_ARRAY, _CLOSE_ARRAY = 0x7B, 0x7D, 0x5B, 0x5D


class _Unexpected(Exception):
    """The body is not what the scanner handles; orjson will judge it whole."""


def loads(body: bytes, *, split_above: int = SPLIT_ABOVE) -> Any:
    """Decode a JSON body like ``orjson.loads``, with a lower peak of memory when it is large.

    Args:
        body: The response body.
        split_above: The size from which the body is parsed piece by piece.

    Raises:
        orjson.JSONDecodeError: The body is not valid JSON.
    """
    if len(body) < split_above:
        return orjson.loads(body)
    try:
        return _Scanner(body).document()
    except (_Unexpected, IndexError, orjson.JSONDecodeError):
        return orjson.loads(body)


class _Scanner:
    def __init__(self, body: bytes) -> None:
        self._body = body
        self._view = memoryview(body)

    def document(self) -> dict[str, Any]:
        body, view = self._body, self._view
        pos = self._skip(0)
        if body[pos] != _OPEN_OBJECT:
            raise _Unexpected
        result: dict[str, Any] = {}
        pos = self._skip(pos + 1)
        if body[pos] == _CLOSE_OBJECT:
            return self._finish(pos + 1, result)
        while True:
            if body[pos] != _QUOTE:
                raise _Unexpected
            key_end = self._string_end(pos)
            key = orjson.loads(view[pos:key_end])
            pos = self._skip(key_end)
            if body[pos] != _COLON:
                raise _Unexpected
            pos = self._skip(pos + 1)
            if key == "data" and body[pos] == _OPEN_ARRAY:
                value, pos = self._array(pos)
            else:
                end = self._value_end(pos)
                value, pos = orjson.loads(view[pos:end]), end
            # A repeated key keeps its last value, as with orjson.
            result[key] = value
            pos = self._skip(pos)
            if body[pos] == _CLOSE_OBJECT:
                return self._finish(pos + 1, result)
            if body[pos] != _COMMA:
                raise _Unexpected
            pos = self._skip(pos + 1)

    def _finish(self, pos: int, result: dict[str, Any]) -> dict[str, Any]:
        if self._skip(pos) != len(self._body):
            raise _Unexpected
        return result

    def _array(self, pos: int) -> tuple[list[Any], int]:
        """Parse the array at ``pos`` element by element; return it and where it ends."""
        body, view = self._body, self._view
        items: list[Any] = []
        pos = self._skip(pos + 1)
        if body[pos] == _CLOSE_ARRAY:
            return items, pos + 1
        while True:
            end = self._value_end(pos)
            items.append(orjson.loads(view[pos:end]))
            pos = self._skip(end)
            if body[pos] == _CLOSE_ARRAY:
                return items, pos + 1
            if body[pos] != _COMMA:
                raise _Unexpected
            pos = self._skip(pos + 1)

    def _skip(self, pos: int) -> int:
        match = _WHITESPACE.match(self._body, pos)
        assert match is not None  # it matches the empty string
        return match.end()

    def _string_end(self, pos: int) -> int:
        """Where the string opened at ``pos`` ends (just after its closing quote)."""
        body = self._body
        search = pos + 1
        while True:
            quote = body.find(b'"', search)
            if quote < 0:
                raise _Unexpected
            # A quote is escaped when an odd number of backslashes comes right before it.
            backslashes = 0
            while body[quote - 1 - backslashes] == _BACKSLASH:
                backslashes += 1
            if backslashes % 2 == 0:
                return quote + 1
            search = quote + 1

    def _value_end(self, pos: int) -> int:
        """Where the value that starts at ``pos`` ends; orjson checks what lies between."""
        body = self._body
        first = body[pos]
        if first == _QUOTE:
            return self._string_end(pos)
        if first not in (_OPEN_OBJECT, _OPEN_ARRAY):
            match = _SCALAR.match(body, pos)
            if match is None:
                raise _Unexpected
            return match.end()
        depth = 0
        while True:
            match = _STRUCTURAL.search(body, pos)
            if match is None:
                raise _Unexpected
            at = match.start()
            char = body[at]
            if char == _QUOTE:
                pos = self._string_end(at)
                continue
            pos = at + 1
            if char in (_OPEN_OBJECT, _OPEN_ARRAY):
                depth += 1
                if depth > _MAX_DEPTH:
                    raise _Unexpected
            else:
                depth -= 1
                if depth == 0:
                    return pos
