"""The Batch API's line format (sans-I/O): building, sharding and parsing result lines."""

from __future__ import annotations

import contextlib
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from openai_images import (
    APIResponseValidationError,
    BadRequestError,
    EditRequest,
    GenerateRequest,
    ImageRef,
    InternalServerError,
    RequestValidationError,
    VariationRequest,
)
from openai_images._batch_api._lines import (
    BatchLineError,
    LocalImage,
    Sharder,
    custom_id,
    draft_line,
    final_line,
    local_digests,
    parse_custom_id,
    parse_result_line,
)

from .server._support import validator

LINE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["custom_id", "method", "url", "body"],
    "additionalProperties": False,
    "properties": {
        "custom_id": {"type": "string", "minLength": 1},
        "method": {"const": "POST"},
        "url": {"enum": ["/v1/images/generations", "/v1/images/edits"]},
        "body": {"type": "object"},
    },
}
"""The ``BatchRequestInput`` shape of CHANGES-2026-11.md (the schema file has none)."""

keys = st.text(
    st.characters(codec="utf-8", exclude_characters="/\\\0"), min_size=1, max_size=20
).filter(lambda k: k not in (".", ".."))
prompts = st.text(min_size=1, max_size=50)
gpt_generations = st.builds(
    GenerateRequest,
    prompt=prompts,
    model=st.just("gpt-image-1"),
    n=st.integers(1, 4),
    size=st.sampled_from(["1024x1024", "1536x1024", "auto"]),
    quality=st.sampled_from(["low", "medium", "high", None]),
    output_format=st.sampled_from(["png", "jpeg", "webp", None]),
)
digests = st.text("0123456789abcdef", min_size=8, max_size=8)


def check_line(line: dict[str, Any]) -> None:
    """A line has the BatchRequestInput shape and a body valid for its endpoint."""
    problems = [e.message for e in Draft202012Validator(LINE_SCHEMA).iter_errors(line)]
    assert not problems, problems
    name = "CreateImageRequest" if line["url"].endswith("generations") else "EditImageBodyJsonParam"
    errors = [e.message for e in validator(name).iter_errors(line["body"])]
    assert not errors, errors


# The first example builds the schema validators, far over Hypothesis's default deadline.
@settings(deadline=None)
@given(request=gpt_generations, index=st.integers(0, 10**6), key=keys)
def test_generation_lines_are_their_json_bodies(
    request: GenerateRequest, index: int, key: str
) -> None:
    """A generation's line carries its JSON body and a custom_id naming index and key."""
    line = draft_line(request, index=index, key=key)
    check_line(line)
    assert parse_custom_id(line["custom_id"]) == (index, key)
    assert line["body"]["prompt"] == request.prompt
    assert orjson.loads(final_line(line, lambda d: {"file_id": d})) == line


@settings(deadline=None)
@given(
    count=st.integers(1, 16),
    shared=st.lists(digests, min_size=1, max_size=3),
    mask=st.booleans(),
    data=st.data(),
)
def test_edits_become_json_edits_by_reference(
    count: int, shared: list[str], mask: bool, data: st.DataObject
) -> None:
    """Local inputs become references, in order; the final line validates as a JSON edit."""
    local = [
        LocalImage(digest=data.draw(st.sampled_from(shared)), content_type="image/png", size=9)
        for _ in range(count)
    ]
    the_mask = LocalImage(digest="m" * 8, content_type="image/png", size=9) if mask else None
    request = EditRequest(
        prompt="hats",
        image=[f"in{i}.png" for i in range(count)],
        mask="mask.png" if mask else None,
        model="gpt-image-1",
    )
    draft = draft_line(request, index=3, key="k", images=local, mask=the_mask)
    expected = [image.digest for image in local] + (["m" * 8] if mask else [])
    assert local_digests(draft) == expected
    line = orjson.loads(final_line(draft, lambda d: {"file_id": f"file-{d}"}))
    check_line(line)
    assert [ref["file_id"] for ref in line["body"]["images"]] == [
        f"file-{image.digest}" for image in local
    ]
    assert ("mask" in line["body"]) is mask


def test_json_edits_pass_as_they_are() -> None:
    """An edit already by reference keeps its references."""
    request = EditRequest(
        prompt="p", images=[ImageRef(image_url="https://example.com/a.png")], model="gpt-image-1"
    )
    line = draft_line(request, index=0, key="a")
    check_line(line)
    assert line["body"]["images"] == [{"image_url": "https://example.com/a.png"}]


@pytest.mark.parametrize(
    ("request_", "param"),
    [
        (GenerateRequest(prompt="p", model="gpt-image-1", stream=True), "stream"),
        (VariationRequest(image=b"x", model="dall-e-2"), "endpoint"),
        (
            EditRequest(prompt="p", image="a.png", model="dall-e-2", response_format="b64_json"),
            "response_format",
        ),
        (GenerateRequest(prompt="p", model="dall-e-3", n=2), "n"),
    ],
)
def test_refusals_name_the_line(request_: Any, param: str) -> None:
    """What the Batch API cannot take, or what breaks a rule, is refused naming the line."""
    local = [LocalImage(digest="d", content_type="image/png", size=1)]
    with pytest.raises(RequestValidationError, match="line 41") as refused:
        draft_line(request_, index=41, key="k", images=local)
    assert refused.value.param == param


@given(
    lines=st.lists(
        st.tuples(st.sampled_from(["generations", "edits"]), st.integers(1, 60)), max_size=200
    ),
    max_lines=st.integers(1, 10),
    max_bytes=st.integers(60, 300),
)
def test_shards_keep_one_endpoint_within_the_limits(
    lines: list[tuple[str, int]], max_lines: int, max_bytes: int
) -> None:
    """Every shard holds one endpoint, at most max_lines lines and max_bytes bytes."""
    sharder = Sharder(max_lines=max_lines, max_bytes=max_bytes)
    placed: dict[int, list[tuple[str, int]]] = {}
    for endpoint, size in lines:
        placed.setdefault(sharder.place(endpoint, size), []).append((endpoint, size))
    assert sorted(placed) == list(range(len(sharder.shards)))
    for number, members in placed.items():
        assert {endpoint for endpoint, _ in members} == {sharder.shards[number][0]}
        assert len(members) <= max_lines
        assert sum(size for _, size in members) <= max_bytes
        assert sharder.shards[number][1:] == (len(members), sum(s for _, s in members))


def test_a_line_over_the_file_limit_is_refused() -> None:
    """A single line larger than a whole file cannot be placed."""
    with pytest.raises(ValueError, match="over the file limit"):
        Sharder(max_bytes=10).place("edits", 11)


@given(index=st.integers(0, 10**9), key=keys)
def test_custom_ids_round_trip(index: int, key: str) -> None:
    """Every custom_id maps back to its index and key."""
    assert parse_custom_id(custom_id(index, key)) == (index, key)


@pytest.mark.parametrize("value", ["", "abc", ":x", "1:", "-1:x"])
def test_foreign_custom_ids_are_refused(value: str) -> None:
    """A custom_id not made by us is not mistaken for one."""
    with pytest.raises(ValueError, match="not a custom_id"):
        parse_custom_id(value)


def result(response: Any = None, error: Any = None, cid: str = "5:five") -> bytes:
    """A result line as the API writes it."""
    return orjson.dumps(
        {"id": "batch_req_1", "custom_id": cid, "response": response, "error": error}
    )


@given(status=st.sampled_from([400, 404, 429, 500, 503]), message=st.text(min_size=1))
def test_error_lines_are_typed_like_live_calls(status: int, message: str) -> None:
    """A failed line's error is the exception class a live call would raise."""
    body = {"error": {"message": message, "type": "x", "param": "size", "code": "c"}}
    outcome = parse_result_line(
        result({"status_code": status, "request_id": "req_1", "body": body})
    )
    assert (outcome.index, outcome.key, outcome.response) == (5, "five", None)
    error = outcome.error
    assert error is not None
    assert getattr(error, "status_code", None) == status
    assert error.request_id == "req_1"
    if status == 400:
        assert isinstance(error, BadRequestError)
    if status >= 500:
        assert isinstance(error, InternalServerError)


def test_success_lines_become_images_responses() -> None:
    """A 200 line is an ImagesResponse with its request id."""
    body = {"created": 1, "data": [{"b64_json": "aGk="}], "usage": {"input_tokens": 1}}
    outcome = parse_result_line(result({"status_code": 200, "request_id": "req_9", "body": body}))
    assert outcome.error is None
    assert outcome.response is not None
    assert outcome.response.request_id == "req_9"
    assert outcome.response.data[0].b64_json == "aGk="


def test_expired_lines_carry_their_code() -> None:
    """A line never run is a BatchLineError with the API's code."""
    outcome = parse_result_line(result(error={"code": "batch_expired", "message": "late"}))
    assert isinstance(outcome.error, BatchLineError)
    assert outcome.error.code == "batch_expired"


@given(raw=st.binary(max_size=200))
def test_garbage_lines_raise_one_error_type(raw: bytes) -> None:
    """Any bytes either parse or raise APIResponseValidationError, nothing else."""
    with contextlib.suppress(APIResponseValidationError):
        parse_result_line(raw)
