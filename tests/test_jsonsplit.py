"""Large JSON bodies parsed piece by piece: always orjson's result, or orjson's error."""

from __future__ import annotations

import base64
import json
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from openai_images import _jsonsplit
from openai_images._jsonsplit import SPLIT_ABOVE, loads

# Text with the characters a scanner could trip on: quotes, backslashes, brackets.
TEXT = st.text(alphabet=st.sampled_from('ab"\\{}[],: \n\u00e9\U0001f98a'), max_size=12) | st.text(
    max_size=8
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=20,
)
DOCUMENTS = st.dictionaries(TEXT, VALUES, max_size=5) | st.fixed_dictionaries(
    {"created": st.integers(0, 2**40), "data": st.lists(VALUES, max_size=5)},
    optional={"usage": VALUES},
)


def outcome(body: bytes, **kwargs: Any) -> tuple[str, Any]:
    """What ``loads`` (or orjson) makes of ``body``: the value, or the error's message."""
    parse = loads if kwargs else orjson.loads
    try:
        return "value", parse(body, **kwargs)
    except orjson.JSONDecodeError as error:
        return "error", str(error)


def layouts(document: Any) -> list[bytes]:
    """The same document compact, with spaces, and indented with tabs and CRLF."""
    return [
        orjson.dumps(document),
        json.dumps(document, ensure_ascii=False).encode(),
        json.dumps(document, indent="\t").replace("\n", "\r\n").encode(),
        b" \n" + orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n ",
    ]


@given(DOCUMENTS)
def test_valid_documents_match_orjson(document: dict[str, Any]) -> None:
    """Whatever the layout, a valid document is split (no fallback) and equals orjson's."""
    for body in layouts(document):
        assert _jsonsplit._Scanner(body).document() == orjson.loads(body)
        assert outcome(body, split_above=0) == outcome(body)


@pytest.mark.parametrize(
    "body",
    [
        b'{"d\\u0061ta": [1, {"a": "}"}], "created": 1}',
        b'{"data": [1], "data": [2, 3]}',
        b'{"data": {"not": "a list"}}',
        b'{"data": []}',
        b"{}",
        b'{"a": "\\\\", "b": "\\"}"}',
    ],
)
def test_escapes_repeats_and_empty_values(body: bytes) -> None:
    """Escaped keys, a repeated key (the last wins), empty containers: as orjson."""
    assert _jsonsplit._Scanner(body).document() == orjson.loads(body)


@given(VALUES)
def test_other_top_level_values_match_orjson(value: Any) -> None:
    """A body that is not an object (a list, a string, a number) is orjson's to parse."""
    body = orjson.dumps(value)
    assert outcome(body, split_above=0) == outcome(body)


@given(
    DOCUMENTS,
    st.integers(min_value=0),
    st.sampled_from([b"", b'"', b"\\", b"{", b"}", b"[", b"]", b",", b":", b"x", b"\xff"]),
    st.booleans(),
)
def test_broken_documents_fail_as_orjson_fails(
    document: dict[str, Any], where: int, byte: bytes, replace: bool
) -> None:
    """A damaged body gives orjson's own error (or value, if still valid), never another."""
    body = orjson.dumps(document)
    at = where % (len(body) + 1)
    broken = body[:at] + byte + body[at + (1 if replace else 0) :]
    assert outcome(broken, split_above=0) == outcome(broken)


@given(st.binary(max_size=64))
def test_arbitrary_bytes_fail_as_orjson_fails(body: bytes) -> None:
    """Random bytes are judged as orjson judges them."""
    assert outcome(body, split_above=0) == outcome(body)


def test_a_large_answer_is_split_and_equal() -> None:
    """An answer of several large images, above the threshold, parses to the same value."""
    image = base64.b64encode(bytes(range(256)) * 8192).decode()
    document = {
        "created": 1,
        "data": [{"b64_json": image, "revised_prompt": 'a "fox" \\ cub'} for _ in range(3)],
        "usage": {"total_tokens": 3},
    }
    body = orjson.dumps(document)
    assert len(body) >= SPLIT_ABOVE
    assert loads(body) == document


def test_nesting_beyond_the_scanner_depth_goes_to_orjson() -> None:
    """Deep nesting inside a member is left to orjson, whose depth limit spans the document."""
    deep = b"[" * 2000 + b"]" * 2000
    body = b'{"data": ' + deep + b"}"
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(body)
    with pytest.raises(orjson.JSONDecodeError):
        loads(body, split_above=0)
    shallow = b'{"x": ' + b"[" * (_jsonsplit._MAX_DEPTH + 1) + b"]" * (_jsonsplit._MAX_DEPTH + 1)
    assert loads(shallow + b"}", split_above=0) == orjson.loads(shallow + b"}")
