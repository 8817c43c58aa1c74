"""Reading requests into the shared classes, and planning the answers (no sockets)."""

from __future__ import annotations

import base64
import urllib.parse
from pathlib import Path
from typing import Any

import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st

from openai_images import EditRequest, GenerateRequest, ImageRef, VariationRequest
from openai_images._multipart import flatten_fields
from openai_images.testing import _intake
from openai_images.testing._intake import spool_reference, structure_request
from openai_images.testing._results import InputImage, images_response, make_plan, wire_body
from openai_images.testing._server import redact_key
from openai_images.testing._wire import Rejection

from ._support import assert_matches

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
KEYS = st.sampled_from(["prompt", "model", "n", "size", "images", "mask", "stream", "user", "x"])


@given(st.dictionaries(KEYS, JSON, max_size=6), st.sampled_from([GenerateRequest, EditRequest]))
def test_structuring_either_builds_the_request_or_names_a_param(
    data: dict[str, Any], cls: type[GenerateRequest] | type[EditRequest]
) -> None:
    """Arbitrary wire data becomes the request class or a Rejection, never another error."""
    outcome: object
    try:
        outcome = structure_request(cls, data)
    except Rejection as rejection:
        outcome = rejection
    if isinstance(outcome, Rejection):
        assert outcome.status == 400
        assert outcome.code in {"unknown_parameter", "missing_required_parameter", "invalid_type"}
        assert outcome.param
    else:
        assert isinstance(outcome, cls)


def test_unknown_fields_are_reported_before_type_errors() -> None:
    """An unknown field is named first, as the API does."""
    with pytest.raises(Rejection) as caught:
        structure_request(GenerateRequest, {"prompt": 3, "zzz": 1})
    assert (caught.value.param, caught.value.code) == ("zzz", "unknown_parameter")


def test_file_fields_arrive_as_paths(tmp_path: Path) -> None:
    """Uploads are structured as the spooled paths, a list for image[] parts."""
    paths = [tmp_path / "a", tmp_path / "b"]
    request = structure_request(EditRequest, {"prompt": "p", "image": paths, "mask": paths[0]})
    assert isinstance(request, EditRequest)
    assert (request.image, request.mask) == (paths, paths[0])
    variation = structure_request(VariationRequest, {"image": paths[0], "n": 2})
    assert variation == VariationRequest(image=paths[0], n=2)


def test_json_masks_are_references() -> None:
    """A JSON edit's mask object becomes an ImageRef."""
    request = structure_request(
        EditRequest, {"prompt": "p", "images": [{"file_id": "f"}], "mask": {"file_id": "m"}}
    )
    assert isinstance(request, EditRequest)
    assert request.mask == ImageRef(file_id="m")
    assert list(request.images or ()) == [ImageRef(file_id="f")]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("data:image/png;base64," + base64.b64encode(b"\x89PNG-ish").decode(), b"\x89PNG-ish"),
        ("data:image/png," + urllib.parse.quote(b"\x89PNG raw"), b"\x89PNG raw"),
    ],
)
async def test_data_urls_are_decoded_to_files(tmp_path: Path, url: str, expected: bytes) -> None:
    """base64 and percent-encoded data: URLs both land on disk as their bytes."""
    upload = await spool_reference(
        ImageRef(image_url=url), param="images[0]", field="image", path=tmp_path / "x"
    )
    assert (upload.content_type, upload.size) == ("image/png", len(expected))
    assert await anyio.Path(upload.path).read_bytes() == expected


def test_plans_resolve_the_api_defaults() -> None:
    """Each model's defaults become concrete sizes, formats and response formats."""
    unnamed = make_plan(GenerateRequest(prompt="p"))
    assert (unnamed.model, unnamed.size, unnamed.response_format, unnamed.output_format) == (
        "gpt-image-1.5",
        "1024x1024",
        "b64_json",
        "png",
    )
    dall_e = make_plan(GenerateRequest(prompt="p", model="dall-e-2"))
    assert (dall_e.model, dall_e.size, dall_e.response_format, dall_e.usage) == (
        "dall-e-2",
        "1024x1024",
        "url",
        None,
    )
    source = InputImage(path=Path("a.png"), width=8, height=8, digest="d")
    variation = make_plan(VariationRequest(image=b""), inputs=[source])
    assert (variation.model, variation.response_format) == ("dall-e-2", "url")
    portrait = make_plan(GenerateRequest(prompt="p", model="gpt-image-1.5", size="1024x1536"))
    assert (portrait.job.width, portrait.job.height) == (1024, 1536)
    assert portrait.usage is not None
    assert portrait.usage.output_tokens == 6240


def test_usage_counts_words_input_images_and_fidelity(tmp_path: Path) -> None:
    """Input tokens grow with the prompt's words and each input image's tiles."""
    inputs = [InputImage(path=tmp_path / "a", width=2048, height=1024, digest="d")]
    low = make_plan(EditRequest(prompt="three word prompt", image=tmp_path / "a"), inputs=inputs)
    high = make_plan(
        EditRequest(prompt="three word prompt", image=tmp_path / "a", input_fidelity="high"),
        inputs=inputs,
    )
    assert low.usage is not None
    assert high.usage is not None
    assert low.usage.input_tokens_details is not None
    assert low.usage.input_tokens_details.text_tokens == 3
    # 2048x1024 scales to 1536x768: 3x2 tiles.
    assert low.usage.input_tokens_details.image_tokens == 65 + 129 * 6
    assert high.usage.input_tokens - low.usage.input_tokens == 4160


def test_wire_bodies_leave_out_unset_fields_and_client_metadata() -> None:
    """The JSON has no nulls, no request_id and no headers, and matches the contract."""
    plan = make_plan(GenerateRequest(prompt="p", model="gpt-image-1.5", quality="medium"))
    body = wire_body(images_response(plan, [b"img"], created=5))
    assert body == {
        "created": 5,
        "data": [{"b64_json": base64.b64encode(b"img").decode()}],
        "background": "opaque",
        "output_format": "png",
        "quality": "medium",
        "size": "1024x1024",
        "usage": body["usage"],
    }
    assert_matches(body, "ImagesResponse")


@pytest.mark.parametrize(
    ("key", "shown"),
    [
        ("", ""),
        ("abc", "***"),
        ("test-key", "****-key"),
        ("sk-0123456789abcdef", "sk-************cdef"),
    ],
)
def test_keys_are_redacted(key: str, shown: str) -> None:
    """Short keys are hidden whole; long ones keep a prefix and the last four characters."""
    assert redact_key(key) == shown


_keys = st.text(
    alphabet=st.characters(blacklist_characters="[]", blacklist_categories=["Cs"]),
    min_size=1,
    max_size=6,
)
_nested: st.SearchStrategy[Any] = st.recursive(
    st.text(max_size=6),
    lambda inner: st.dictionaries(_keys, inner, min_size=1, max_size=3),
    max_leaves=6,
)


@given(fields=st.dictionaries(_keys, _nested, max_size=4))
def test_bracketed_fields_read_back_as_the_objects_sent(fields: dict[str, Any]) -> None:
    """What the client flattens to ``a[b][c]`` fields, the server nests back, unchanged."""
    read: dict[str, Any] = {}
    for name, value in flatten_fields(fields):
        path = _intake._bracketed(name)
        if path is None:
            read[name] = value
        else:
            _intake._nest(read, name, path, value)
    assert read == fields
