"""Values that come from a hostile or careless source stay honest and small.

A result's base64 is decoded strictly (a lenient decoder silently drops bad characters and
hands back a broken image), and the reprs of requests and references stay short however
large the data they hold (a 5 MiB ``data:`` URL once made a 7-million-character repr).
"""

from __future__ import annotations

import base64
import binascii
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from openai_images import (
    APIResponseValidationError,
    EditRequest,
    Image,
    ImageGenCompletedEvent,
    ImageRef,
    InvalidImageDataError,
)

FIVE_MIB = 5 * 1024 * 1024


def test_invalid_characters_are_refused_not_dropped() -> None:
    """``"aGk=!!!!"`` once decoded to ``b"hi"``; now it is a library error naming the image."""
    with pytest.raises(InvalidImageDataError, match=r"Image\.b64_json .* not valid base64"):
        Image(b64_json="aGk=!!!!").content()


@pytest.mark.parametrize("text", ["aGk", "aGk=\n", "a Gk=", "aGké=", "====", "aGk=aGk="])
def test_malformed_base64_is_an_api_response_validation_error(text: str) -> None:
    """Bad padding, white space, non-ASCII and data after padding are all refused, never
    ``binascii.Error`` or a bare ``ValueError``."""
    with pytest.raises(APIResponseValidationError) as info:
        Image(b64_json=text).content()
    assert isinstance(info.value, InvalidImageDataError)
    assert info.value.__cause__ is None


def test_a_stream_event_decodes_strictly_too() -> None:
    """Partial and completed events share the decoder, and so its strictness."""
    event = ImageGenCompletedEvent(
        type="image_generation.completed", b64_json="aGk=!!", created_at=0
    )
    with pytest.raises(InvalidImageDataError, match="ImageGenCompletedEvent"):
        event.content()


def test_nothing_is_saved_when_the_data_does_not_decode(tmp_path: Path) -> None:
    """``save`` decodes before it writes: no file, not even a temporary one, is left."""
    with pytest.raises(InvalidImageDataError):
        Image(b64_json="aGk=!!!!").save(tmp_path / "out.png")
    assert list(tmp_path.iterdir()) == []


@given(st.binary(max_size=256))
def test_valid_base64_round_trips(data: bytes) -> None:
    """Whatever the standard encoder makes, the strict decoder reads back exactly."""
    assert Image(b64_json=base64.b64encode(data).decode()).content() == data


@given(st.text(max_size=64))
def test_decoding_agrees_with_the_strict_standard(text: str) -> None:
    """Our decoder accepts exactly what ``b64decode(validate=True)`` accepts."""
    try:
        expected: bytes | None = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        expected = None
    if expected is None:
        with pytest.raises(InvalidImageDataError):
            Image(b64_json=text).content()
    else:
        assert Image(b64_json=text).content() == expected


def test_a_huge_data_url_has_a_short_repr() -> None:
    """A 5 MiB ``data:`` URL shows its media type and size in the reference and the request."""
    url = "data:image/png;base64," + "A" * FIVE_MIB
    ref = ImageRef(image_url=url)
    assert (
        repr(ref) == f"ImageRef(image_url='data:image/png;base64,<{FIVE_MIB} chars>', file_id=None)"
    )
    request = EditRequest(prompt="p", images=[ref, ref], mask=ref)
    assert len(repr(request)) < 1000


def test_a_long_https_url_is_cut_in_the_repr() -> None:
    """A long plain URL (a signed one, say) shows its start and its length."""
    url = "https://example.com/" + "x" * 10_000
    shown = repr(ImageRef(image_url=url))
    assert len(shown) < 300
    assert f"<{len(url)} chars>" in shown


def test_uploaded_inputs_never_reach_the_repr() -> None:
    """Multipart inputs (bytes, tuples) are left out of a request's repr altogether."""
    blob = b"\x89PNG" + b"\x00" * FIVE_MIB
    request = EditRequest(prompt="p", image=[blob, ("a.png", blob)], mask=blob, markup=blob)
    assert len(repr(request)) < 1000
