"""The road of a request below the client: the ``Sender``, its observer contract, markup
uploads, validation once, and the request id (closing during calls: tests/reliability)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import pytest
from aiohttp import web

from openai_images import (
    APIError,
    AsyncImagesClient,
    BadRequestError,
    EditRequest,
    GenerateRequest,
    NotFoundError,
    RateLimitError,
    RequestValidationError,
)
from openai_images._config import Settings
from openai_images._send import BaseURLRoute, BearerAuth, Sender
from openai_images._transport import Transport

from .images import make_png
from .recorder import Recorder, Reply

FAST = {"retry-after-ms": "1"}


@pytest.fixture
async def recorder() -> AsyncIterator[Recorder]:
    async with Recorder() as rec:
        yield rec


def _client(recorder: Recorder, *, max_retries: int = 2) -> AsyncImagesClient:
    return AsyncImagesClient(api_key="sk-test", base_url=recorder.base_url, max_retries=max_retries)


def _rate_limited() -> Reply:
    body = {"error": {"message": "slow down", "type": "requests", "code": "rate_limit_exceeded"}}
    return Reply(status=429, json=body, headers=FAST)


class _Observer:
    """Counts attempts and takes charge of the first ``absorb`` failures it sees."""

    def __init__(self, *, absorb: int = 0, give_up_after: int | None = None) -> None:
        self.absorb = absorb
        self.give_up_after = give_up_after
        self.before = 0
        self.seen: list[tuple[int | None, type[APIError] | None]] = []

    async def before_attempt(self) -> None:
        if self.give_up_after is not None and self.before >= self.give_up_after:
            raise LookupError("the observer gave up")
        self.before += 1

    def after_attempt(
        self, *, status: int | None, headers: Mapping[str, str] | None, error: APIError | None
    ) -> bool:
        self.seen.append((status, type(error) if error is not None else None))
        if error is not None and self.absorb > 0:
            self.absorb -= 1
            return True
        return False


@pytest.mark.anyio
async def test_an_absorbed_failure_does_not_spend_a_retry(recorder: Recorder) -> None:
    """Two 429s the observer takes charge of are retried although max_retries is 0."""
    recorder.reply(_rate_limited(), _rate_limited(), Reply())
    observer = _Observer(absorb=2)
    async with _client(recorder, max_retries=0) as client:
        response = await client._sender.send(GenerateRequest(prompt="p"), observer=observer)
    assert response.request_id == "req_3"
    assert observer.before == 3
    assert observer.seen == [(429, RateLimitError), (429, RateLimitError), (200, None)]


@pytest.mark.anyio
async def test_an_unabsorbed_failure_follows_the_retry_rules(recorder: Recorder) -> None:
    """Returning False leaves the 429 to max_retries: with 0 retries it is raised."""
    recorder.reply(_rate_limited(), Reply())
    observer = _Observer()
    async with _client(recorder, max_retries=0) as client:
        with pytest.raises(RateLimitError):
            await client._sender.send(GenerateRequest(prompt="p"), observer=observer)
    assert observer.seen == [(429, RateLimitError)]
    assert len(recorder.requests) == 1


@pytest.mark.anyio
async def test_before_attempt_may_give_the_request_up(recorder: Recorder) -> None:
    """An exception from before_attempt reaches the caller as is, and nothing more is sent."""
    recorder.reply(_rate_limited(), Reply())
    observer = _Observer(absorb=5, give_up_after=1)
    async with _client(recorder) as client:
        with pytest.raises(LookupError, match="gave up"):
            await client._sender.send(GenerateRequest(prompt="p"), observer=observer)
    assert len(recorder.requests) == 1


@pytest.mark.anyio
async def test_call_reaches_any_api_path_with_auth_and_retries(recorder: Recorder) -> None:
    """``call`` sends JSON to another path, authenticated, retried, query merged."""
    recorder.reply(Reply(status=503, json={"error": {"message": "busy"}}, headers=FAST))
    settings = Settings.from_arguments(
        api_key="sk-test",
        base_url=recorder.base_url,
        organization=None,
        project=None,
        timeout=None,
        max_retries=2,
        default_headers=None,
    )
    sender = Sender(
        settings=settings,
        transport=Transport(),
        auth=BearerAuth(settings),
        route=BaseURLRoute(settings.base_url),
    )
    try:
        exchange = await sender.call(
            "POST", "batches/b_1/cancel", json={"why": "test"}, params={"limit": "2"}
        )
    finally:
        await sender.aclose()
    assert exchange.status == 200
    first, second = recorder.requests
    assert second.path == "/v1/batches/b_1/cancel"
    assert second.query == {"limit": "2"}
    assert second.json == {"why": "test"}
    assert second.headers["Authorization"] == "Bearer sk-test"
    assert first.path == second.path


@pytest.mark.anyio
async def test_markup_goes_as_a_file_part_with_its_sniffed_type(
    recorder: Recorder, tmp_path: Path
) -> None:
    """``markup`` uploads like ``mask``: a file part typed by its content."""
    image = tmp_path / "room.png"
    image.write_bytes(make_png(32, 32))
    markup = tmp_path / "arrows.bin"
    markup.write_bytes(make_png(32, 32, alpha=True))
    async with _client(recorder) as client:
        await client.edit(image=image, markup=markup, prompt="p", model="gpt-image-2.5-flare")
    parts = {part.name: part for part in recorder.requests[0].parts}
    assert parts["markup"].content_type == "image/png"
    assert parts["markup"].content == markup.read_bytes()


@pytest.mark.anyio
async def test_a_refused_edit_names_its_fields_and_its_files_at_once(
    recorder: Recorder, tmp_path: Path
) -> None:
    """Fields and files are checked in one pass: both kinds of violation are listed."""
    not_an_image = tmp_path / "notes.txt"
    not_an_image.write_text("hello")
    async with _client(recorder) as client:
        with pytest.raises(RequestValidationError) as caught:
            await client.send(EditRequest(image=not_an_image, prompt="", model="gpt-image-2"))
    params = [violation.param for violation in caught.value.violations]
    assert "prompt" in params
    assert "image" in params
    assert recorder.requests == []


@pytest.mark.anyio
async def test_the_request_id_falls_back_to_apim_request_id(recorder: Recorder) -> None:
    """Without ``x-request-id``, Azure's ``apim-request-id`` is the request id."""

    async def azure_like(request: web.Request) -> web.StreamResponse:
        return web.json_response(
            {"error": {"message": "no"}}, status=404, headers={"apim-request-id": "apim-1"}
        )

    recorder.reply(Reply(handler=azure_like))
    async with _client(recorder) as client:
        with pytest.raises(APIError) as caught:
            await client.generate(prompt="p")
    assert caught.value.request_id == "apim-1"


@pytest.mark.anyio
async def test_a_refused_retired_model_names_its_date_and_successor(recorder: Recorder) -> None:
    """The request for a retired model still goes out; when the server refuses the model,
    the error says when it retired and what to use instead."""
    body = {"error": {"message": "The model does not exist.", "code": "model_not_found"}}
    recorder.reply(Reply(status=404, json=body))
    async with _client(recorder) as client:
        with pytest.raises(NotFoundError) as caught:
            await client.generate(prompt="a fox", model="gpt-image-1")
    assert len(recorder.requests) == 1
    message = str(caught.value)
    assert "The model does not exist." in message
    assert "2026-10-23" in message
    assert "gpt-image-2.5-sunburst" in message


@pytest.mark.anyio
async def test_an_unrelated_refusal_of_a_retired_model_is_left_as_it_is(
    recorder: Recorder,
) -> None:
    """A 400 about another field says nothing of the model's retirement."""
    body = {"error": {"message": "bad prompt", "param": "prompt", "code": "invalid_value"}}
    recorder.reply(Reply(status=400, json=body))
    async with _client(recorder) as client:
        with pytest.raises(BadRequestError) as caught:
            await client.generate(prompt="a fox", model="dall-e-3")
    assert caught.value.message == "bad prompt"


@pytest.mark.anyio
async def test_markup_is_checked_with_the_images_before_sending(
    recorder: Recorder, tmp_path: Path
) -> None:
    """A markup whose size differs from the first image is refused before any I/O, in the
    one check of fields and files together."""
    image, markup = tmp_path / "a.png", tmp_path / "m.png"
    image.write_bytes(make_png(64, 64))
    markup.write_bytes(make_png(32, 32, alpha=True))
    async with _client(recorder) as client:
        with pytest.raises(RequestValidationError) as caught:
            await client.edit(image=image, markup=markup, prompt="p", model="gpt-image-2.5-flare")
    assert caught.value.param == "markup"
    assert recorder.requests == []
