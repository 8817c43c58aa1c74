"""The one converter: tolerant for the client, strict for what arrives from outside."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from openai_images import EditRequest, GenerateRequest, ImageRef, VariationRequest
from openai_images._converter import (
    _builder,
    _converted_response,
    converter,
    make_converter,
    structure_problems,
    structure_response,
)

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


ODD = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=3)


def _mostly(good: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``good`` seven times in eight, else a value of any type."""
    return st.integers(0, 7).flatmap(lambda roll: good if roll else ODD)


TEXT = _mostly(st.none() | st.text(max_size=3))
COUNT = _mostly(st.integers(min_value=0, max_value=10**20))


def _object(
    fields: dict[str, st.SearchStrategy[Any]], required: tuple[str, ...] = ()
) -> st.SearchStrategy[Any]:
    """Mostly objects with some of ``fields`` and unknown ones; a ``required`` one is
    missing once in eight."""
    known = st.fixed_dictionaries(
        {name: fields[name] for name in required},
        optional={name: value for name, value in fields.items() if name not in required},
    )
    unknown = st.dictionaries(st.sampled_from(["zz", "request_id", "headers", "raw"]), ODD)
    both = st.tuples(known, unknown).map(lambda pair: {**pair[1], **pair[0]})
    if required:
        both = both | st.fixed_dictionaries({}, optional=fields)
    return _mostly(both)


DETAILS = st.none() | _object({"text_tokens": COUNT, "image_tokens": COUNT})
USAGE = st.none() | _object(
    {
        "input_tokens": COUNT,
        "output_tokens": COUNT,
        "total_tokens": COUNT,
        "input_tokens_details": DETAILS,
        "output_tokens_details": DETAILS,
    }
)
IMAGE = _object({"b64_json": TEXT, "url": TEXT, "revised_prompt": TEXT, "output_format": TEXT})
RESPONSE = _object(
    {
        "created": COUNT,
        "data": _mostly(st.lists(IMAGE, max_size=3)) | st.tuples(IMAGE),
        "background": TEXT,
        "output_format": TEXT,
        "quality": TEXT,
        "size": TEXT,
        "usage": USAGE,
        "svg_usage": st.none()
        | _object({"model": TEXT, "input_tokens": COUNT, "reasoning_tokens": COUNT}),
        "safety_identifier": TEXT,
    },
    required=("created",),
)


def _outcome(build: Any, data: Any) -> Any:
    try:
        response = build(data, request_id="req_1", headers={"x-request-id": "req_1"})
    except Exception as error:
        return type(error), str(error), error.__context__ is None
    # request_id, headers and raw take no part in ==; each image's fields all do.
    return response, response.request_id, response.headers, response.raw


@given(RESPONSE)
def test_the_fast_path_agrees_with_the_converter(data: Any) -> None:
    """Any body, of the common shape or not: the same response, or the same error."""
    assert _outcome(structure_response, data) == _outcome(_converted_response, data)


@attrs.frozen(kw_only=True)
class _Checked:
    count: int = attrs.field(default=0, validator=attrs.validators.ge(0))


@attrs.frozen(kw_only=True)
class _Hooked:
    count: int = 0
    seen: list[int] = attrs.field(factory=list, eq=False)

    def __attrs_post_init__(self) -> None:
        self.seen.append(self.count)


@attrs.frozen(kw_only=True)
class _Plain:
    count: int = 0
    name: str | None = None


def test_builders_run_validators_and_hooks_and_set_plain_slots_directly() -> None:
    """A class with a validator or an init hook is made through its ``__init__``; a plain
    one gets its slots set directly, with the same result as its ``__init__``."""
    with pytest.raises(ValueError, match="count"):
        _builder(_Checked)({"count": -1})
    hooked = _builder(_Hooked, given=("seen",))({"count": 3}, [])
    assert hooked.seen == [3]
    plain = _builder(_Plain)({"count": 2})
    assert plain == _Plain(count=2)
    assert attrs.asdict(plain) == {"count": 2, "name": None}
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        plain.count = 3  # type: ignore[misc]  # frozen, as the test shows
