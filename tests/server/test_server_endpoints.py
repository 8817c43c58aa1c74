"""The local server's three endpoints and url downloads, driven with raw aiohttp."""

from __future__ import annotations

import base64
import functools
import json
import re
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import orjson
import pytest
from multidict import CIMultiDict

from openai_images.testing import LocalImagesServer
from openai_images.testing._server import serve_forever

from ._support import assert_error, assert_matches, data_url, decode, form, picture

pytestmark = pytest.mark.anyio


async def post(
    http: aiohttp.ClientSession, server: LocalImagesServer, endpoint: str, **kwargs: Any
) -> tuple[int, CIMultiDict[str], Any]:
    """POST to an endpoint; return the status, the headers and the decoded JSON body."""
    async with http.post(f"{server.base_url}/images/{endpoint}", **kwargs) as response:
        return response.status, CIMultiDict(response.headers), await response.json()


async def test_dall_e_2_generation_returns_images_of_the_asked_size(
    legacy_server: LocalImagesServer, http: aiohttp.ClientSession
) -> None:
    """Two b64 images of 256x256, distinct, in a body the contract accepts (legacy server)."""
    body = {"prompt": "a lighthouse", "n": 2, "size": "256x256", "response_format": "b64_json"}
    body["model"] = "dall-e-2"
    status, _, answer = await post(http, legacy_server, "generations", json=body)
    assert status == 200
    assert_matches(answer, "ImagesResponse")
    assert set(answer) == {"created", "data"}
    images = [decode(item["b64_json"]) for item in answer["data"]]
    assert [(i.format, i.size) for i in images] == [("PNG", (256, 256))] * 2
    assert answer["data"][0]["b64_json"] != answer["data"][1]["b64_json"]


@pytest.mark.parametrize(
    ("output_format", "pillow_format", "extra"),
    [
        ("png", "PNG", {}),
        ("jpeg", "JPEG", {"output_compression": 60}),
        ("webp", "WEBP", {"output_compression": 80}),
    ],
)
async def test_gpt_generation_reports_resolved_fields_and_usage(
    server: LocalImagesServer,
    http: aiohttp.ClientSession,
    output_format: str,
    pillow_format: str,
    extra: dict[str, Any],
) -> None:
    """A GPT image model answers in the asked format with size, quality, background and usage."""
    body = {"prompt": "a red fox in snow", "model": "gpt-image-1.5", "quality": "low"}
    body |= {"output_format": output_format, "size": "1536x1024", **extra}
    status, _, answer = await post(http, server, "generations", json=body)
    assert status == 200
    assert_matches(answer, "ImagesResponse")
    assert answer["size"] == "1536x1024"
    assert (answer["quality"], answer["background"]) == ("low", "opaque")
    assert answer["output_format"] == output_format
    usage = answer["usage"]
    assert usage["input_tokens_details"]["text_tokens"] == 5
    assert usage["output_tokens"] == 400
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    assert decode(answer["data"][0]["b64_json"]).format == pillow_format
    assert decode(answer["data"][0]["b64_json"]).size == (1536, 1024)


async def test_gpt_image_2_makes_any_allowed_size(
    server: LocalImagesServer, http: aiohttp.ClientSession
) -> None:
    """gpt-image-2 takes WIDTHxHEIGHT sizes beyond the enum, and reports them as made."""
    body = {"prompt": "a wide view", "model": "gpt-image-2", "quality": "low", "size": "640x368"}
    status, _, answer = await post(http, server, "generations", json=body)
    assert status == 200
    assert answer["size"] == "640x368"
    assert decode(answer["data"][0]["b64_json"]).size == (640, 368)


async def test_gpt_auto_settings_resolve_to_concrete_values(
    server: LocalImagesServer, http: aiohttp.ClientSession
) -> None:
    """``auto`` size and quality are reported as what was made, never as ``auto``."""
    body = {"prompt": "fox", "model": "gpt-image-1-mini", "size": "auto", "quality": "auto"}
    status, _, answer = await post(http, server, "generations", json=body)
    assert status == 200
    assert_matches(answer, "ImagesResponse")
    assert (answer["size"], answer["quality"]) == ("1024x1024", "high")
    assert decode(answer["data"][0]["b64_json"]).size == (1024, 1024)


async def test_transparent_background_keeps_alpha(
    server: LocalImagesServer, http: aiohttp.ClientSession
) -> None:
    """A transparent background is reported and the PNG has an alpha channel."""
    body = {"prompt": "a sticker", "model": "gpt-image-1.5", "quality": "low"}
    body |= {"background": "transparent", "output_format": "png", "size": "1024x1024"}
    status, _, answer = await post(http, server, "generations", json=body)
    assert status == 200
    assert answer["background"] == "transparent"
    assert decode(answer["data"][0]["b64_json"]).mode == "RGBA"


async def test_same_request_gives_same_images(
    server: LocalImagesServer, http: aiohttp.ClientSession
) -> None:
    """Images come from the request's fields, not from time: a repeat gives the same bytes."""
    body = {"prompt": "a teapot", "size": "256x256", "response_format": "b64_json"}
    first = (await post(http, server, "generations", json=body))[2]
    again = (await post(http, server, "generations", json=body))[2]
    other = (await post(http, server, "generations", json=body | {"prompt": "a kettle"}))[2]
    assert first["data"] == again["data"]
    assert first["data"] != other["data"]


async def test_dall_e_3_revises_the_prompt(
    legacy_server: LocalImagesServer, http: aiohttp.ClientSession
) -> None:
    """dall-e-3 (legacy server) answers with a revised_prompt that builds on the prompt."""
    body = {"prompt": "a quiet harbour", "model": "dall-e-3", "response_format": "b64_json"}
    status, _, answer = await post(http, legacy_server, "generations", json=body)
    assert status == 200
    assert_matches(answer, "ImagesResponse")
    assert answer["data"][0]["revised_prompt"].startswith("a quiet harbour")
    assert decode(answer["data"][0]["b64_json"]).size == (1024, 1024)


async def test_url_results_download_until_they_expire(http: aiohttp.ClientSession) -> None:
    """DALL·E's default is a url; it serves the PNG until url_ttl passes, then a storage 404."""
    now = [100.0]
    async with LocalImagesServer(url_ttl=60, clock=lambda: now[0], legacy=True) as server:
        body = {"prompt": "a cat", "size": "256x256", "model": "dall-e-2"}
        status, _, answer = await post(http, server, "generations", json=body)
        assert status == 200
        assert_matches(answer, "ImagesResponse")
        url = answer["data"][0]["url"]
        assert url.startswith(server.base_url)
        async with aiohttp.ClientSession() as anonymous, anonymous.get(url) as download:
            assert download.status == 200
            assert download.content_type == "image/png"
            assert decode(await download.read()).size == (256, 256)
        now[0] += 61
        async with http.get(url) as expired:
            assert expired.status == 404
            assert "<Code>BlobNotFound</Code>" in await expired.text()
        assert server.requests[-1].endpoint == "files"


async def test_multipart_edit_with_several_images_and_a_mask(
    server: LocalImagesServer, http: aiohttp.ClientSession
) -> None:
    """``image[]`` parts and a mask make an edit; the request is recorded with its files."""
    files = [
        ("image[]", "a.png", picture(64, 64), "image/png"),
        ("image[]", "b.webp", picture(48, 32, fmt="WEBP"), "image/webp"),
        ("mask", "mask.png", picture(64, 64, alpha=True), "image/png"),
    ]
    fields = {"prompt": "put them together", "model": "gpt-image-1.5", "quality": "low", "n": "2"}
    status, _, answer = await post(http, server, "edits", data=form(fields, files))
    assert status == 200
    assert_matches(answer, "ImagesResponse")
    assert len(answer["data"]) == 2
    assert answer["usage"]["input_tokens_details"]["image_tokens"] == 2 * (65 + 129)
    assert decode(answer["data"][0]["b64_json"]).size == (1024, 1024)
    recorded = server.requests[-1]
    assert recorded.endpoint == "edits"
    assert recorded.fields["n"] == 2
    assert [(part, name, kind) for part, name, kind, _ in recorded.files] == [
        ("image[]", "a.png", "image/png"),
        ("image[]", "b.webp", "image/webp"),
        ("mask", "mask.png", "image/png"),
    ]
    assert recorded.files[0][3] == len(files[0][2])


async def test_gpt_edit_auto_size_follows_the_input(
    server: LocalImagesServer, http: aiohttp.ClientSession
) -> None:
    """``size=auto`` on an edit follows the first input's orientation."""
    files = [("image", "wide.png", picture(90, 60), "image/png")]
    fields = {"prompt": "widen", "model": "gpt-image-1.5", "quality": "low", "size": "auto"}
    status, _, answer = await post(http, server, "edits", data=form(fields, files))
    assert status == 200
    assert answer["size"] == "1536x1024"


async def test_dall_e_2_edit_with_one_square_png(
    legacy_server: LocalImagesServer, http: aiohttp.ClientSession
) -> None:
    """dall-e-2 (legacy server) edits one square PNG, answering a url by default."""
    files = [("image", "a.png", picture(64, 64), "image/png")]
    fields = {"prompt": "add a hat", "model": "dall-e-2", "size": "256x256"}
    status, _, answer = await post(http, legacy_server, "edits", data=form(fields, files))
    assert status == 200
    assert_matches(answer, "ImagesResponse")
    async with http.get(answer["data"][0]["url"]) as download:
        assert decode(await download.read()).size == (256, 256)


async def test_json_edit_with_data_urls(
    server: LocalImagesServer, http: aiohttp.ClientSession
) -> None:
    """A JSON edit's data: URL references are decoded and used, mask included."""
    body = {
        "prompt": "paint it",
        "model": "gpt-image-1.5",
        "quality": "low",
        "images": [
            {"image_url": data_url(picture(32, 32))},
            {"image_url": data_url(picture(16, 16))},
        ],
        "mask": {"image_url": data_url(picture(32, 32, alpha=True))},
        "output_format": "jpeg",
    }
    status, _, answer = await post(http, server, "edits", json=body)
    assert status == 200
    assert_matches(answer, "ImagesResponse")
    assert decode(answer["data"][0]["b64_json"]).format == "JPEG"
    assert server.requests[-1].content_type == "application/json"


async def test_variation_makes_n_images(
    legacy_server: LocalImagesServer, http: aiohttp.ClientSession
) -> None:
    """A variation (legacy server; dall-e-2 when no model is named) answers n distinct images."""
    files = [("image", "a.png", picture(40, 40), "image/png")]
    fields = {"n": "2", "size": "256x256", "response_format": "b64_json"}
    status, _, answer = await post(http, legacy_server, "variations", data=form(fields, files))
    assert status == 200
    assert_matches(answer, "ImagesResponse")
    assert [decode(item["b64_json"]).size for item in answer["data"]] == [(256, 256)] * 2
    assert answer["data"][0] != answer["data"][1]


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/v1/images/generations"), ("POST", "/v1/nothing"), ("GET", "/")],
)
async def test_unknown_routes_answer_an_api_shaped_404(
    server: LocalImagesServer, http: aiohttp.ClientSession, method: str, path: str
) -> None:
    """Unknown routes and wrong methods get the API's "Invalid URL" 404."""
    async with http.request(method, server.url + path) as response:
        assert response.status == 404
        body = await response.json()
    assert_error(body, param=None)
    assert body["error"]["message"] == f"Invalid URL ({method} {path})"


async def test_every_answer_carries_the_common_headers(
    server: LocalImagesServer, http: aiohttp.ClientSession
) -> None:
    """Successes, refusals and 404s all carry a request id, processing time and rate limits."""
    ok = await post(http, server, "generations", json={"prompt": "x", "size": "256x256"})
    refused = await post(http, server, "generations", json={"prompt": ""})
    async with http.get(server.url + "/nope") as missing:
        lost = (missing.status, CIMultiDict(missing.headers))
    for status, headers in ((ok[0], ok[1]), (refused[0], refused[1]), lost):
        assert re.fullmatch(r"req_[0-9a-f]{32}", headers["x-request-id"]), status
        assert int(headers["openai-processing-ms"]) >= 0
        for name in ("limit", "remaining", "reset"):
            assert f"x-ratelimit-{name}-requests" in headers
            assert f"x-ratelimit-{name}-tokens" in headers
    assert [r.request_id for r in server.requests] == [
        ok[1]["x-request-id"],
        refused[1]["x-request-id"],
        lost[1]["x-request-id"],
    ]


async def test_a_missing_key_is_refused(server: LocalImagesServer) -> None:
    """Without a bearer key the answer is 401 in the API's shape."""
    async with (
        aiohttp.ClientSession() as anonymous,
        anonymous.post(f"{server.base_url}/images/generations", json={"prompt": "x"}) as response,
    ):
        assert response.status == 401
        assert_error(await response.json(), param=None)
    assert server.requests[-1].api_key is None


async def test_only_listed_keys_pass_and_keys_are_never_echoed() -> None:
    """With api_keys set, another key gets invalid_api_key with the key redacted."""
    secret = "sk-proj-abcdefghijklmnopqrstuvwxyz"
    async with LocalImagesServer(api_keys=["good-key-123"]) as server:
        url = f"{server.base_url}/images/generations"
        body = {"prompt": "x", "size": "256x256", "response_format": "b64_json"}
        async with aiohttp.ClientSession() as session:
            bad_headers = {"Authorization": f"Bearer {secret}"}
            async with session.post(url, json=body, headers=bad_headers) as response:
                assert response.status == 401
                text = await response.text()
            good_headers = {"Authorization": "Bearer good-key-123"}
            async with session.post(url, json=body, headers=good_headers) as response:
                assert response.status == 200
    assert secret not in text
    assert_error(orjson.loads(text), param=None, code="invalid_api_key")
    assert "sk-" in text
    assert "wxyz" in text
    assert [r.api_key for r in server.requests] == [
        "sk-***************************wxyz",
        "********-123",
    ]


async def test_bodies_over_the_limit_get_413(http: aiohttp.ClientSession) -> None:
    """JSON and multipart bodies over max_body_bytes are refused with an API-shaped 413."""
    async with LocalImagesServer(max_body_bytes=2000) as server:
        status, _, body = await post(http, server, "generations", json={"prompt": "x" * 3000})
        assert status == 413
        assert_error(body, param=None)
        files = [("image", "a.png", picture(64, 64) + b"\0" * 3000, "image/png")]
        status, _, body = await post(http, server, "edits", data=form({"prompt": "x"}, files))
        assert status == 413
        assert_error(body, param=None)


async def test_uploads_are_spooled_to_disk_and_removed(
    http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    """Each request's upload folder is gone once answered, on success and on refusal."""
    async with LocalImagesServer(tmp_dir=tmp_path) as server:
        good = [("image", "a.png", picture(64, 64), "image/png")]
        fields = {"prompt": "x", "model": "gpt-image-1-mini", "quality": "low"}
        assert (await post(http, server, "edits", data=form(fields, good)))[0] == 200
        bad = [("image", "a.png", b"not an image", "image/png")]
        assert (await post(http, server, "edits", data=form(fields, bad)))[0] == 400
    assert [path async for path in anyio.Path(tmp_path).iterdir()] == []


def test_in_thread_serves_synchronous_code() -> None:
    """in_thread runs the server on its own loop; urllib reaches it and requests are recorded."""
    with LocalImagesServer.in_thread() as server:
        request = urllib.request.Request(
            f"{server.base_url}/images/generations",
            data=json.dumps(
                {"prompt": "x", "size": "256x256", "response_format": "b64_json"}
            ).encode(),
            headers={"Authorization": "Bearer k", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request) as response:
            answer = json.load(response)
        assert decode(base64.b64decode(answer["data"][0]["b64_json"])).size == (256, 256)
        assert [r.status for r in server.requests] == [200]
        server.clear()
        assert server.requests == []


def test_a_server_that_is_not_running_has_no_url() -> None:
    """base_url before start is an error, not a guess."""
    with pytest.raises(RuntimeError, match="not running"):
        _ = LocalImagesServer().base_url


async def test_serve_forever_runs_until_cancelled(http: aiohttp.ClientSession) -> None:
    """The command line's entry point serves (with the control route) until cancelled."""
    started: list[LocalImagesServer] = []
    ready = anyio.Event()

    def on_ready(server: LocalImagesServer) -> None:
        started.append(server)
        ready.set()

    async with anyio.create_task_group() as group:
        group.start_soon(
            functools.partial(serve_forever, port=0, access_log=False, on_ready=on_ready)
        )
        await ready.wait()
        server = started[0]
        async with http.get(f"{server.url}/_control/faults") as response:
            assert await response.json() == {"faults": []}
        body = {"prompt": "x", "size": "256x256", "response_format": "b64_json"}
        assert (await post(http, server, "generations", json=body))[0] == 200
        assert server.requests == []
        group.cancel_scope.cancel()


async def test_an_edit_without_a_size_follows_its_input(
    server: LocalImagesServer, http: aiohttp.ClientSession
) -> None:
    """An edit's size defaults to auto (since 2026): a wide input makes a wide image."""
    files = [("image", "wide.png", picture(96, 48), "image/png")]
    fields = {"prompt": "tidy it", "model": "gpt-image-1.5", "quality": "low"}
    status, _, answer = await post(http, server, "edits", data=form(fields, files))
    assert status == 200
    assert answer["size"] == "1536x1024"
