"""How the async client reports failures: status errors, bad bodies, dead hosts, timeouts.

It also checks that the API key never leaks into a repr, an error or a log record.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator

import aiohttp
import pytest

from openai_images import (
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AsyncImagesClient,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    ImagesClient,
    InternalServerError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RequestValidationError,
    Timeout,
    UnprocessableEntityError,
)

from .recorder import Recorder, Reply

pytestmark = pytest.mark.anyio

KEY = "sk-proj-SECRET0123456789abcdefXYZ"


@pytest.fixture
async def recorder() -> AsyncIterator[Recorder]:
    async with Recorder() as rec:
        yield rec


@pytest.fixture
async def client(recorder: Recorder) -> AsyncIterator[AsyncImagesClient]:
    async with AsyncImagesClient(api_key=KEY, base_url=recorder.base_url, max_retries=0) as c:
        yield c


def _closed_port() -> int:
    """A local port with nothing listening on it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _error_body(status: int) -> dict[str, object]:
    return {
        "error": {
            "message": f"failure {status}",
            "type": "some_error_type",
            "param": "size",
            "code": "some_code",
        }
    }


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (409, ConflictError),
        (422, UnprocessableEntityError),
        (429, RateLimitError),
        (500, InternalServerError),
        (503, InternalServerError),
    ],
)
async def test_status_maps_to_its_error_class(
    client: AsyncImagesClient, recorder: Recorder, status: int, cls: type[APIStatusError]
) -> None:
    """Each error status raises its class, carrying every part of the API's error body."""
    body = _error_body(status)
    recorder.reply(Reply(status=status, json=body, headers={"x-ratelimit-limit-requests": "5"}))
    with pytest.raises(cls) as caught:
        await client.generate(prompt="p")
    error = caught.value
    assert type(error) is cls
    assert error.status_code == status
    assert error.request_id == "req_1"
    assert error.message == f"failure {status}"
    assert (error.type, error.code, error.param) == ("some_error_type", "some_code", "size")
    assert error.body == body
    assert error.headers["x-request-id"] == "req_1"
    assert error.headers["x-ratelimit-limit-requests"] == "5"
    assert f"failure {status}" in str(error)
    assert "req_1" in str(error)


async def test_an_unlisted_status_is_a_plain_status_error(
    client: AsyncImagesClient, recorder: Recorder
) -> None:
    """A 4xx without a class of its own is an :class:`APIStatusError`."""
    recorder.reply(Reply(status=418, json=_error_body(418)))
    with pytest.raises(APIStatusError) as caught:
        await client.generate(prompt="p")
    assert type(caught.value) is APIStatusError
    assert caught.value.status_code == 418


async def test_html_error_page_gives_a_short_clear_message(
    client: AsyncImagesClient, recorder: Recorder
) -> None:
    """A proxy's HTML 502 page becomes an InternalServerError naming it, not pasting it."""
    page = (
        "<html><head><title>502 Bad Gateway</title></head><body>"
        + "<p>upstream went away</p>" * 200
        + "</body></html>"
    )
    recorder.reply(Reply(status=502, body=page.encode(), content_type="text/html"))
    with pytest.raises(InternalServerError) as caught:
        await client.generate(prompt="p")
    error = caught.value
    assert error.status_code == 502
    assert "not JSON" in error.message
    assert "502 Bad Gateway" in error.message
    assert len(error.message) < 400
    assert page not in str(error)
    assert error.body == page
    assert error.type is None
    assert error.code is None


async def test_an_empty_error_body_still_names_the_status(
    client: AsyncImagesClient, recorder: Recorder
) -> None:
    """A 500 with no body at all is an InternalServerError saying which status came."""
    recorder.reply(Reply(status=500, body=b""))
    with pytest.raises(InternalServerError) as caught:
        await client.generate(prompt="p")
    assert "500" in caught.value.message


async def test_broken_json_on_success_is_a_response_validation_error(
    client: AsyncImagesClient, recorder: Recorder
) -> None:
    """A 200 whose body is not JSON raises APIResponseValidationError with the raw body."""
    recorder.reply(Reply(body=b'{"created": 1, "data": ['))
    with pytest.raises(APIResponseValidationError) as caught:
        await client.generate(prompt="p")
    error = caught.value
    assert error.status_code == 200
    assert error.request_id == "req_1"
    assert error.body == b'{"created": 1, "data": ['
    assert isinstance(error.__cause__, ValueError)


@pytest.mark.parametrize(
    "payload",
    [
        {"created": "yesterday", "data": []},
        {"data": [{"b64_json": "aGk="}]},
        {"created": 1, "data": "not a list"},
        [1, 2, 3],
    ],
    ids=["created-a-string", "created-missing", "data-a-string", "a-list"],
)
async def test_json_of_the_wrong_shape_is_a_response_validation_error(
    client: AsyncImagesClient, recorder: Recorder, payload: object
) -> None:
    """A 200 whose JSON does not fit ImagesResponse raises APIResponseValidationError."""
    recorder.reply(Reply(json=payload))
    with pytest.raises(APIResponseValidationError) as caught:
        await client.generate(prompt="p")
    assert caught.value.status_code == 200
    assert caught.value.request_id == "req_1"


async def test_unknown_fields_and_values_are_accepted(
    client: AsyncImagesClient, recorder: Recorder
) -> None:
    """A newer API's extra fields and new enum values parse without complaint."""
    recorder.reply(
        Reply(
            json={
                "created": 5,
                "data": [{"b64_json": "aGk=", "sparkle": True}],
                "size": "2048x1152",
                "output_format": "avif",
                "brand_new": {"x": 1},
            }
        )
    )
    response = await client.generate(prompt="p", model="gpt-image-2")
    assert response.size == "2048x1152"
    assert response.output_format == "avif"


async def test_connection_refused_is_an_api_connection_error() -> None:
    """Nobody listening gives APIConnectionError, chained to the cause, never aiohttp's type."""
    url = f"http://127.0.0.1:{_closed_port()}/v1"
    async with AsyncImagesClient(api_key=KEY, base_url=url, max_retries=0) as client:
        with pytest.raises(APIConnectionError) as caught:
            await client.generate(prompt="p")
    error = caught.value
    assert type(error) is APIConnectionError
    assert type(error).__module__.startswith("openai_images")
    assert not isinstance(error, aiohttp.ClientError)
    assert error.__cause__ is not None
    assert error.request_id is None


async def test_timeout_is_an_api_timeout_error(recorder: Recorder) -> None:
    """A server slower than the timeout gives APITimeoutError, never aiohttp's or asyncio's."""
    recorder.reply(Reply(delay=1.0))
    tiny = Timeout(connect=0.2, read=0.2, total=0.2)
    async with AsyncImagesClient(
        api_key=KEY, base_url=recorder.base_url, timeout=tiny, max_retries=0
    ) as client:
        with pytest.raises(APITimeoutError) as caught:
            await client.generate(prompt="p")
    error = caught.value
    assert isinstance(error, APIConnectionError)
    assert type(error).__module__.startswith("openai_images")
    assert not isinstance(error, aiohttp.ClientError)
    assert error.__cause__ is not None
    assert len(recorder.requests) == 1


async def test_per_call_timeout_applies(recorder: Recorder, client: AsyncImagesClient) -> None:
    """``timeout=`` on one call overrides the client's default for that call only."""
    recorder.reply(Reply(delay=1.0))
    with pytest.raises(APITimeoutError):
        await client.generate(prompt="p", timeout=0.2)
    response = await client.generate(prompt="p")
    assert response.request_id == "req_2"


async def test_the_key_never_shows_in_reprs_errors_or_logs(
    recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    """Neither reprs, error texts nor DEBUG logs of failed and retried calls hold the key."""
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []
    retry_fast = {"retry-after-ms": "1"}
    recorder.reply(
        Reply(status=500, json=_error_body(500), headers=retry_fast),
        Reply(status=401, json=_error_body(401)),
        Reply(status=503, json=_error_body(503), headers=retry_fast),
        Reply(),
    )
    async with AsyncImagesClient(api_key=KEY, base_url=recorder.base_url, max_retries=1) as client:
        seen.append(repr(client))
        with pytest.raises(AuthenticationError) as status_error:
            await client.generate(prompt="p")
        await client.generate(prompt="p")
        with pytest.raises(RequestValidationError) as invalid:
            await client.generate(prompt="p", model="dall-e-3", n=2)
    async with AsyncImagesClient(
        api_key=KEY, base_url=f"http://127.0.0.1:{_closed_port()}/v1", max_retries=0
    ) as dead:
        with pytest.raises(APIConnectionError) as unreachable:
            await dead.generate(prompt="p")
    with ImagesClient(api_key=KEY, base_url=recorder.base_url) as sync_client:
        seen.append(repr(sync_client))
    for caught in (status_error, invalid, unreachable):
        seen += [str(caught.value), repr(caught.value), repr(caught.value.__cause__)]
    seen += [record.getMessage() for record in caplog.records]
    assert any("Retrying" in record.getMessage() for record in caplog.records)
    assert len(recorder.requests) == 4
    for text in seen:
        assert KEY not in text
        assert KEY[8:-4] not in text
