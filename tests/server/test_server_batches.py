"""The local server's ``/v1/files`` and ``/v1/batches``, over raw HTTP and the official SDK."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import anyio
import openai
import orjson
import pytest

from openai_images.testing import LineFailure, LocalImagesServer

from ._support import assert_error, assert_matches, data_url, decode, picture

pytestmark = pytest.mark.anyio

GENERATIONS = "/v1/images/generations"
EDITS = "/v1/images/edits"


@pytest.fixture
async def sdk(server: LocalImagesServer) -> AsyncIterator[openai.AsyncOpenAI]:
    """An official async client for the server, without retries."""
    async with openai.AsyncOpenAI(
        api_key="sk-test", base_url=server.base_url, max_retries=0
    ) as client:
        yield client


def line(custom_id: str, body: dict[str, Any], url: str = GENERATIONS) -> dict[str, Any]:
    """One Batch API input line."""
    return {"custom_id": custom_id, "method": "POST", "url": url, "body": body}


def jsonl(lines: list[dict[str, Any]]) -> bytes:
    """Lines as a JSONL file's bytes."""
    return b"".join(orjson.dumps(item) + b"\n" for item in lines)


def small(prompt: str) -> dict[str, Any]:
    """A cheap generation body."""
    return {"prompt": prompt, "model": "gpt-image-1-mini", "size": "1024x1024", "quality": "low"}


async def until(sdk: openai.AsyncOpenAI, batch_id: str, *statuses: str) -> Any:
    """The batch once it has one of ``statuses`` (polled, as a client would)."""
    with anyio.fail_after(30):
        batch = await sdk.batches.retrieve(batch_id)
        while batch.status not in statuses:
            await anyio.sleep(0.02)
            batch = await sdk.batches.retrieve(batch_id)
        return batch


async def finished(sdk: openai.AsyncOpenAI, batch_id: str) -> Any:
    """The batch once it stops moving."""
    return await until(sdk, batch_id, "completed", "failed", "expired", "cancelled")


async def read_lines(sdk: openai.AsyncOpenAI, file_id: str | None) -> dict[str, Any]:
    """A result file's lines by custom_id."""
    if file_id is None:
        return {}
    content = await sdk.files.content(file_id)
    return {item["custom_id"]: item for item in map(orjson.loads, content.text.splitlines())}


async def submit(sdk: openai.AsyncOpenAI, lines: list[dict[str, Any]], endpoint: str) -> Any:
    """Upload the lines and create their batch."""
    uploaded = await sdk.files.create(file=("in.jsonl", jsonl(lines)), purpose="batch")
    return await sdk.batches.create(
        input_file_id=uploaded.id,
        endpoint=endpoint,  # type: ignore[arg-type]  # the SDK types it as a Literal
        completion_window="24h",
        metadata={"job": "t"},
    )


async def test_files_round_trip_with_the_sdk(sdk: openai.AsyncOpenAI) -> None:
    """Upload, retrieve, list, content and delete parse as the SDK's own types."""
    uploaded = await sdk.files.create(file=("cat.png", picture(32, 32)), purpose="vision")
    assert (uploaded.purpose, uploaded.bytes, uploaded.filename, uploaded.status) == (
        "vision",
        len(picture(32, 32)),
        "cat.png",
        "processed",
    )
    assert (await sdk.files.retrieve(uploaded.id)).id == uploaded.id
    assert [f.id async for f in sdk.files.list(purpose="vision")] == [uploaded.id]
    assert (await sdk.files.content(uploaded.id)).content == picture(32, 32)
    deleted = await sdk.files.delete(uploaded.id)
    assert deleted.deleted
    with pytest.raises(openai.NotFoundError):
        await sdk.files.retrieve(uploaded.id)


async def test_upload_is_refused_without_a_known_purpose(
    server: LocalImagesServer, http: aiohttp.ClientSession
) -> None:
    """An unknown purpose and a missing file are 400s in the API's error shape."""
    form = aiohttp.FormData()
    form.add_field("purpose", "holiday")
    form.add_field("file", io.BytesIO(b"x"), filename="x.bin")
    async with http.post(f"{server.base_url}/files", data=form) as response:
        assert response.status == 400
        assert_error(await response.json(), param="purpose", code="invalid_value")
    form = aiohttp.FormData(default_to_multipart=True)
    form.add_field("purpose", "batch")
    async with http.post(f"{server.base_url}/files", data=form) as response:
        assert_error(await response.json(), param="file", code="missing_required_parameter")


async def test_files_need_a_key(server: LocalImagesServer) -> None:
    """The files and batches routes authenticate like the image endpoints."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{server.base_url}/batches") as response,
    ):
        assert response.status == 401


async def test_a_batch_of_generations_completes(
    sdk: openai.AsyncOpenAI, server: LocalImagesServer
) -> None:
    """Every line is answered in the output file, with usage summed on the batch."""
    lines = [line(f"r{i}", small(f"fox {i}")) for i in range(5)]
    lines.append(
        line(
            "gpt",
            {"prompt": "owl", "model": "gpt-image-1.5", "quality": "low", "size": "1024x1536"},
        )
    )
    batch = await submit(sdk, lines, GENERATIONS)
    assert batch.status == "validating"
    assert batch.metadata == {"job": "t"}
    done = await finished(sdk, batch.id)
    assert done.status == "completed"
    assert done.request_counts is not None
    assert (done.request_counts.total, done.request_counts.completed) == (6, 6)
    assert done.completed_at is not None
    assert done.in_progress_at is not None
    assert done.usage is not None
    assert done.usage.output_tokens > 0
    assert done.error_file_id is None
    outputs = await read_lines(sdk, done.output_file_id)
    assert set(outputs) == {f"r{i}" for i in range(5)} | {"gpt"}
    for item in outputs.values():
        assert item["error"] is None
        assert item["response"]["status_code"] == 200
        assert item["id"].startswith("batch_req_")
        assert_matches(item["response"]["body"], "ImagesResponse")
    assert decode(outputs["r0"]["response"]["body"]["data"][0]["b64_json"]).size == (1024, 1024)
    assert decode(outputs["gpt"]["response"]["body"]["data"][0]["b64_json"]).size == (1024, 1536)


async def test_lines_that_break_the_rules_go_to_the_error_file(
    sdk: openai.AsyncOpenAI, server: LocalImagesServer
) -> None:
    """A body the image endpoint would refuse is a 400 line; a scripted failure its status."""
    server.batch_api.fail("boom", LineFailure(status=500))
    lines = [
        line("ok", small("a")),
        line("bad", {"prompt": "a", "model": "gpt-image-1.5", "size": "999x999"}),
        line("stream", {"prompt": "a", "model": "gpt-image-1.5", "stream": True}),
        line("boom", small("b")),
    ]
    done = await finished(sdk, (await submit(sdk, lines, GENERATIONS)).id)
    assert done.status == "completed"
    assert done.request_counts is not None
    assert (done.request_counts.completed, done.request_counts.failed) == (1, 3)
    errors = await read_lines(sdk, done.error_file_id)
    assert errors["bad"]["response"]["status_code"] == 400
    assert_error(errors["bad"]["response"]["body"], param="size", code="invalid_value")
    assert errors["stream"]["response"]["body"]["error"]["param"] == "stream"
    assert errors["boom"]["response"]["status_code"] == 500
    assert set(await read_lines(sdk, done.output_file_id)) == {"ok"}


async def test_edits_resolve_uploaded_file_ids(sdk: openai.AsyncOpenAI) -> None:
    """A JSON edit referencing a file uploaded to the server is made from that file."""
    image = await sdk.files.create(file=("a.png", picture(64, 64)), purpose="vision")
    mask = await sdk.files.create(file=("m.png", picture(64, 64, alpha=True)), purpose="vision")
    body = {
        "prompt": "a hat",
        "model": "gpt-image-1.5",
        "quality": "low",
        "images": [{"file_id": image.id}, {"image_url": data_url(picture(64, 64))}],
        "mask": {"file_id": mask.id},
    }
    missing = {"prompt": "a hat", "model": "gpt-image-1.5", "images": [{"file_id": "file-nope"}]}
    done = await finished(
        sdk,
        (await submit(sdk, [line("e", body, EDITS), line("x", missing, EDITS)], EDITS)).id,
    )
    outputs = await read_lines(sdk, done.output_file_id)
    errors = await read_lines(sdk, done.error_file_id)
    assert "e" in outputs, (done, errors)
    assert outputs["e"]["response"]["status_code"] == 200
    assert errors["x"]["response"]["body"]["error"]["param"] == "images[0].file_id"


async def test_malformed_lines_fail_the_batch(sdk: openai.AsyncOpenAI) -> None:
    """Lines of the wrong shape fail the whole batch, each named by its line number."""
    lines = [line("a", small("a")), line("a", small("b")), line("c", small("c"), url=EDITS)]
    uploaded = await sdk.files.create(
        file=("in.jsonl", jsonl(lines) + b"not json\n"), purpose="batch"
    )
    batch = await sdk.batches.create(
        input_file_id=uploaded.id, endpoint=GENERATIONS, completion_window="24h"
    )
    done = await finished(sdk, batch.id)
    assert done.status == "failed"
    assert done.failed_at is not None
    assert done.errors is not None
    assert [(e.line, e.code) for e in done.errors.data or []] == [
        (2, "duplicate_custom_id"),
        (3, "mismatched_url"),
        (4, "invalid_json_line"),
    ]


async def test_create_is_refused_for_bad_arguments(sdk: openai.AsyncOpenAI) -> None:
    """An unknown file, a file of the wrong purpose and another endpoint are refused."""
    with pytest.raises(openai.NotFoundError):
        await sdk.batches.create(
            input_file_id="file-nope", endpoint=GENERATIONS, completion_window="24h"
        )
    image = await sdk.files.create(file=("a.png", picture(8, 8)), purpose="vision")
    with pytest.raises(openai.BadRequestError, match="purpose"):
        await sdk.batches.create(
            input_file_id=image.id, endpoint=GENERATIONS, completion_window="24h"
        )
    uploaded = await sdk.files.create(
        file=("in.jsonl", jsonl([line("a", small("a"))])), purpose="batch"
    )
    with pytest.raises(openai.BadRequestError, match="local server batches"):
        await sdk.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
        )


async def test_cancel_keeps_what_finished(
    sdk: openai.AsyncOpenAI, server: LocalImagesServer
) -> None:
    """A paused batch cancels: cancelling, then cancelled with no more lines run."""
    server.batch_api.paused = True
    batch = await submit(sdk, [line(f"r{i}", small("a")) for i in range(3)], GENERATIONS)
    await until(sdk, batch.id, "in_progress")
    cancelling = await sdk.batches.cancel(batch.id)
    assert cancelling.status == "cancelling"
    assert cancelling.cancelling_at is not None
    done = await finished(sdk, batch.id)
    assert done.status == "cancelled"
    assert done.request_counts is not None
    assert done.request_counts.completed == 0
    server.batch_api.paused = False
    other = await finished(sdk, (await submit(sdk, [line("z", small("z"))], GENERATIONS)).id)
    with pytest.raises(openai.ConflictError):
        await sdk.batches.cancel(other.id)


async def test_expiry_reports_unstarted_lines(
    sdk: openai.AsyncOpenAI, server: LocalImagesServer
) -> None:
    """An expired batch lists every line it never ran as batch_expired in the error file."""
    server.batch_api.paused = True
    batch = await submit(sdk, [line(f"r{i}", small("a")) for i in range(4)], GENERATIONS)
    server.batch_api.expire(batch.id)
    done = await finished(sdk, batch.id)
    assert done.status == "expired"
    assert done.expired_at is not None
    errors = await read_lines(sdk, done.error_file_id)
    assert set(errors) == {"r0", "r1", "r2", "r3"}
    assert all(
        e["response"] is None and e["error"]["code"] == "batch_expired" for e in errors.values()
    )


async def test_batches_list_newest_first(sdk: openai.AsyncOpenAI) -> None:
    """GET /v1/batches pages through the batches."""
    first = await submit(sdk, [line("a", small("a"))], GENERATIONS)
    second = await submit(sdk, [line("a", small("a"))], GENERATIONS)
    listed = [b.id async for b in sdk.batches.list(limit=1)]
    assert set(listed) == {first.id, second.id}
