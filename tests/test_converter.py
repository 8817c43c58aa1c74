"""The one converter: tolerant for the client, strict for what arrives from outside."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from openai_images import EditRequest, GenerateRequest, ImageRef, VariationRequest
from openai_images._converter import converter, make_converter, structure_problems

STRICT = make_converter(detailed_validation=True, strict=True)

VALUES = st.none() | st.booleans() | st.integers() | st.text(max_size=5)
WIRE = st.recursive(
    VALUES,
    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=6,
)
FIELDS = st.sampled_from(["prompt", "n", "size", "images", "mask", "image", "model", "zz"])


def test_the_client_ignores_unknown_fields_the_strict_mode_names_them() -> None:
    """A newer API's extra field passes the client; batch files and the server refuse it."""
    data = {"prompt": "p", "images": [{"file_id": "file-1", "detail": "high"}]}
    assert converter.structure(data, EditRequest).images == (ImageRef(file_id="file-1"),)
    with pytest.raises(Exception) as caught:
        STRICT.structure(data, EditRequest)
    (problem,) = structure_problems(caught.value)
    assert (problem.param, problem.code) == ("images[0].detail", "unknown_parameter")


def test_strict_mode_takes_file_fields_as_given(tmp_path: Path) -> None:
    """Paths stay paths; a mask object becomes an ImageRef."""
    path = tmp_path / "a.png"
    edit = STRICT.structure({"prompt": "p", "image": [path], "mask": path}, EditRequest)
    assert (edit.image, edit.mask) == ([path], path)
    by_reference = STRICT.structure({"prompt": "p", "mask": {"file_id": "f"}}, EditRequest)
    assert by_reference.mask == ImageRef(file_id="f")
    assert STRICT.structure({"image": path}, VariationRequest).image == path


def test_problems_come_unknown_then_missing_then_wrongly_typed() -> None:
    """The first problem is the one to report, as the API orders them."""
    with pytest.raises(Exception) as caught:
        STRICT.structure({"n": "2", "zz": 1}, GenerateRequest)
    problems = [(p.param, p.code) for p in structure_problems(caught.value)]
    assert problems == [
        ("zz", "unknown_parameter"),
        ("prompt", "missing_required_parameter"),
        ("n", "invalid_type"),
    ]


@given(st.dictionaries(FIELDS, WIRE, max_size=5))
def test_strict_structuring_builds_the_request_or_names_a_field(data: dict[str, Any]) -> None:
    """Any wire data: a request, or problems that each name a field and a known code."""
    try:
        request = STRICT.structure(data, EditRequest)
    except Exception as error:
        problems = structure_problems(error)
        assert problems
        assert all(problem.param for problem in problems)
    else:
        assert isinstance(request, EditRequest)
