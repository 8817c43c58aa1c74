"""Batch API lines, in and out (sans-I/O).

In: a request becomes one JSONL line ``{"custom_id", "method", "url", "body"}``. A
generation's body is its JSON body; an edit goes as a JSON edit by reference, its local
inputs named by content hash (``LocalImage``) until the job knows their references
(``file_id`` or ``data:`` URL). Requests the Batch API cannot take are refused here.
The ``Sharder`` decides which input file each line goes to.

Out: an output or error line becomes a ``LineOutcome``: the caller's index and key (from
the ``custom_id``), and an ``ImagesResponse`` or the error a live call would have raised.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal, TypeAlias

import attrs
import orjson

from openai_images._converter import request_fields, structure_response
from openai_images._errors import (
    APIError,
    APIResponseValidationError,
    OpenAIImagesError,
    RequestValidationError,
    Violation,
    error_from_payload,
)
from openai_images._requests import EditRequest, GenerateRequest, ImageRef, ImageRequest
from openai_images._responses import ImagesResponse
from openai_images._rules import ensure_valid

__all__ = [
    "MAX_FILE_BYTES",
    "MAX_LINES",
    "URLS",
    "BatchLineError",
    "LineOutcome",
    "LocalImage",
    "Sharder",
    "check_request",
    "custom_id",
    "draft_line",
    "final_line",
    "parse_custom_id",
    "parse_result_line",
]

MAX_LINES = 50_000
"""Lines the Batch API takes in one input file."""
MAX_FILE_BYTES = 200 * 1024 * 1024
"""Bytes the Batch API takes in one input file (``data:`` URLs included)."""

BatchEndpoint: TypeAlias = Literal["generations", "edits"]
URLS: Mapping[str, str] = {
    "generations": "/v1/images/generations",
    "edits": "/v1/images/edits",
}
_LOCAL = "__local__"  # a draft's placeholder key for a local image, by content hash


class BatchLineError(APIError):
    """A line the Batch API never answered: expired, or cancelled with its batch.

    Attributes:
        code: ``"batch_expired"``, ``"batch_cancelled"``, or the API's line error code.
    """

    def __init__(self, message: str, *, code: str | None) -> None:
        super().__init__(message)
        self.code = code


@attrs.frozen(kw_only=True)
class LocalImage:
    """A local input image of an edit, known by the hash of its bytes.

    Attributes:
        digest: The hex digest of its content (one upload per digest).
        content_type: ``image/png``, ``image/jpeg`` or ``image/webp``.
        size: Its size in bytes.
    """

    digest: str
    content_type: str
    size: int


def custom_id(index: int, key: str) -> str:
    """The ``custom_id`` of the caller's request ``index`` with output key ``key``.

    Example:
        >>> custom_id(7, "cat")
        '7:cat'
        >>> parse_custom_id("7:cat")
        (7, 'cat')
    """
    return f"{index}:{key}"


def parse_custom_id(value: str) -> tuple[int, str]:
    """The index and key a ``custom_id`` of ours carries.

    Raises:
        ValueError: It is not one of ours.
    """
    head, colon, key = value.partition(":")
    if not colon or not head.isdigit() or not key:
        raise ValueError(f"{value!r} is not a custom_id made by openai-images")
    return int(head), key


def _refuse(param: str, message: str) -> RequestValidationError:
    return RequestValidationError([Violation(param=param, message=message)])


def check_request(request: ImageRequest) -> None:
    """Refuse a request the Batch API cannot take, or that breaks a rule as the line it
    becomes (an edit's local inputs judged as the references they will be). Sans-I/O.

    Raises:
        RequestValidationError: A stream, a variation, a multipart-only field, or a rule
            broken; the messages do not name a line (``draft_line``'s do).

    Example:
        >>> check_request(GenerateRequest(prompt="a fox", model="gpt-image-1.5", stream=True))
        Traceback (most recent call last):
        ...
        openai_images._errors.RequestValidationError: stream: the Batch API does not stream
    """
    if not isinstance(request, (GenerateRequest, EditRequest)):
        raise _refuse("endpoint", "the Batch API takes generations and edits only")
    if request.stream:
        raise _refuse("stream", "the Batch API does not stream")
    if request.partial_images is not None:
        raise _refuse("partial_images", "partial images come only with a stream")
    checked: ImageRequest = request
    if isinstance(request, EditRequest) and not request.is_json:
        if request.response_format is not None:
            # Edits by reference (the only kind a batch carries) have no response_format.
            raise _refuse("response_format", "response_format is a multipart-only field of edits")
        # The rules judge the edit as the JSON edit it becomes.
        count = len(request.image_inputs)
        checked = attrs.evolve(
            request,
            image=None,
            images=[ImageRef(file_id=f"file-local-{number}") for number in range(count)],
            mask=ImageRef(file_id="file-local-mask")
            if request.mask is not None and not isinstance(request.mask, ImageRef)
            else request.mask,
        )
    ensure_valid(checked)


def draft_line(
    request: ImageRequest,
    *,
    index: int,
    key: str,
    images: list[LocalImage] | None = None,
    mask: LocalImage | None = None,
) -> dict[str, Any]:
    """The line of a request, local images left as placeholders; checked by the rules.

    Args:
        request: A ``GenerateRequest`` or an ``EditRequest`` (JSON, or with local inputs).
        index: Its position in the caller's input (named in errors).
        key: Its output key.
        images: The edit's local inputs, resolved and hashed, in order.
        mask: The edit's local mask, resolved and hashed.

    Raises:
        RequestValidationError: The Batch API cannot take it (a stream, a variation, a
            multipart-only field), or it breaks a rule; the message names the line.

    Example:
        >>> draft_line(GenerateRequest(prompt="a fox", model="gpt-image-1.5"), index=0, key="fox")
        {'custom_id': '0:fox', 'method': 'POST', 'url': '/v1/images/generations', 'body': {...}}
    """
    try:
        check_request(request)
    except RequestValidationError as error:
        raise RequestValidationError(
            [attrs.evolve(v, message=f"line {index}: {v.message}") for v in error.violations]
        ) from error
    assert isinstance(request, (GenerateRequest, EditRequest))  # check_request saw to it
    fields = request_fields(request)
    if isinstance(request, EditRequest) and not request.is_json:
        local = images or []
        if len(local) != len(request.image_inputs):
            raise ValueError("draft_line needs one LocalImage per input image")
        fields["images"] = [{_LOCAL: image.digest} for image in local]
        if mask is not None:
            fields["mask"] = {_LOCAL: mask.digest}
    return {
        "custom_id": custom_id(index, key),
        "method": "POST",
        "url": URLS[request.endpoint],
        "body": fields,
    }


def final_line(draft: dict[str, Any], reference: Callable[[str], dict[str, str]]) -> bytes:
    """A draft line with its placeholders replaced, as JSONL bytes (newline included).

    Args:
        reference: The wire reference of a local image by digest, e.g.
            ``{"file_id": "file-..."}`` or ``{"image_url": "data:..."}``.

    Example:
        >>> draft = {"custom_id": "0:a", "body": {"images": [{"__local__": "ab"}]}}
        >>> final_line(draft, lambda digest: {"file_id": f"file-{digest}"})
        b'{"custom_id":"0:a","body":{"images":[{"file_id":"file-ab"}]}}\\n'
    """
    body = draft["body"]
    if "images" in body or "mask" in body:
        body = dict(body)
        if "images" in body:
            body["images"] = [_resolve(ref, reference) for ref in body["images"]]
        if isinstance(body.get("mask"), dict):
            body["mask"] = _resolve(body["mask"], reference)
        draft = {**draft, "body": body}
    return orjson.dumps(draft) + b"\n"


def _resolve(ref: dict[str, Any], reference: Callable[[str], dict[str, str]]) -> dict[str, Any]:
    digest = ref.get(_LOCAL)
    return reference(digest) if isinstance(digest, str) else ref


def local_digests(draft: dict[str, Any]) -> list[str]:
    """The digests of the local images a draft line refers to."""
    body = draft["body"]
    refs = list(body.get("images") or [])
    if isinstance(body.get("mask"), dict):
        refs.append(body["mask"])
    return [ref[_LOCAL] for ref in refs if isinstance(ref, dict) and _LOCAL in ref]


@attrs.define
class Sharder:
    """Which input file each line goes to: one endpoint per file, within the limits.

    Example:
        >>> sharder = Sharder(max_lines=2, max_bytes=100)
        >>> [sharder.place("generations", 10) for _ in range(3)]
        [0, 0, 1]
        >>> sharder.place("edits", 10), sharder.place("generations", 95)
        (2, 3)
    """

    max_lines: int = MAX_LINES
    max_bytes: int = MAX_FILE_BYTES
    shards: list[tuple[str, int, int]] = attrs.Factory(list)  # (endpoint, lines, bytes)
    _open: dict[str, int] = attrs.Factory(dict)

    def place(self, endpoint: str, size: int) -> int:
        """The shard a line of ``size`` bytes for ``endpoint`` goes to (a new one if full).

        Raises:
            ValueError: One line alone is over ``max_bytes``.
        """
        if size > self.max_bytes:
            raise ValueError(f"a line of {size} bytes is over the file limit of {self.max_bytes}")
        number = self._open.get(endpoint)
        if number is not None:
            _, lines, total = self.shards[number]
            if lines + 1 > self.max_lines or total + size > self.max_bytes:
                number = None
        if number is None:
            number = len(self.shards)
            self.shards.append((endpoint, 0, 0))
            self._open[endpoint] = number
        _, lines, total = self.shards[number]
        self.shards[number] = (endpoint, lines + 1, total + size)
        return number


@attrs.frozen(kw_only=True)
class LineOutcome:
    """One output or error line, parsed.

    Attributes:
        custom_id: As sent.
        index: The caller's index.
        key: The output key.
        response: The images, when the line succeeded.
        error: What a live call would have raised, otherwise.
    """

    custom_id: str
    index: int
    key: str
    response: ImagesResponse | None = None
    error: OpenAIImagesError | None = None


def parse_result_line(raw: bytes) -> LineOutcome:
    """An output or error file's line.

    Raises:
        APIResponseValidationError: The line is not the API's result shape, or not ours.

    Example:
        >>> line = b'{"custom_id": "3:x", "response": null, "error": {"code": "batch_expired",'
        >>> line += b' "message": "expired"}}'
        >>> parse_result_line(line).error.code
        'batch_expired'
    """
    try:
        data = orjson.loads(raw)
        index, key = parse_custom_id(data["custom_id"])
        response = data.get("response")
        error = data.get("error")
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise APIResponseValidationError(
            f"A Batch API result line is not of the expected shape: {exc}", status_code=200
        ) from exc
    cid = data["custom_id"]
    if isinstance(response, dict):
        status = response.get("status_code")
        body = response.get("body")
        request_id = response.get("request_id")
        request_id = request_id if isinstance(request_id, str) else None
        if isinstance(status, int) and 200 <= status < 300:
            try:
                images = structure_response(body, request_id=request_id)
            except Exception as exc:
                raise APIResponseValidationError(
                    f"The answer of line {cid!r} does not match the Images API's shape: {exc}",
                    status_code=status,
                    request_id=request_id,
                ) from exc
            return LineOutcome(custom_id=cid, index=index, key=key, response=images)
        failed = error_from_payload(
            body, status_code=status if isinstance(status, int) else 500, request_id=request_id
        )
        return LineOutcome(custom_id=cid, index=index, key=key, error=failed)
    code = error.get("code") if isinstance(error, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    return LineOutcome(
        custom_id=cid,
        index=index,
        key=key,
        error=BatchLineError(
            message if isinstance(message, str) else "The line was not answered.",
            code=code if isinstance(code, str) else None,
        ),
    )
