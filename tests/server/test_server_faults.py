"""Scripted faults: each kind, how many requests it hits, and the control route."""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest

from openai_images.testing import Fault, LocalImagesServer
from openai_images.testing._faults import FaultQueue, fault_from_json

from ._support import assert_error, assert_matches, parse_sse

pytestmark = pytest.mark.anyio

BODY = {"prompt": "a fox", "size": "256x256", "response_format": "b64_json"}
STREAM = {
    "prompt": "a fox",
    "model": "gpt-image-1.5",
    "quality": "low",
    "stream": True,
    "partial_images": 2,
}


@pytest.fixture
async def control() -> AsyncIterator[LocalImagesServer]:
    """A server with the control route on."""
    async with LocalImagesServer(control_route=True) as running:
        yield running


async def generate(
    http: aiohttp.ClientSession, server: LocalImagesServer, body: dict[str, Any] = BODY
) -> tuple[int, aiohttp.ClientResponse, bytes]:
    """POST a generation and read the whole answer."""
    async with http.post(f"{server.base_url}/images/generations", json=body) as response:
        return response.status, response, await response.read()


@pytest.mark.parametrize(
    ("fault", "error_type"),
    [
        (Fault(kind="status"), "server_error"),
        (Fault(kind="status", status=502), "server_error"),
        (Fault(kind="status", status=503, message="Slow down."), "server_error"),
        (Fault(kind="status", status=429), "rate_limit_error"),
        (Fault(kind="status", status=429, code="insufficient_quota"), "insufficient_quota"),
        (Fault(kind="status", status=400, code="moderation_blocked"), "invalid_request_error"),
    ],
)
async def test_status_faults_answer_api_shaped_errors(
    server: LocalImagesServer, http: aiohttp.ClientSession, fault: Fault, error_type: str
) -> None:
    """A status fault answers its status with the API's error body, then the next is normal."""
    server.inject(fault)
    status, response, body = await generate(http, server)
    assert status == fault.status
    error = orjson.loads(body)
    assert_error(error, param=None, code=fault.code)
    assert error["error"]["type"] == error_type
    if fault.message is not None:
        assert error["error"]["message"] == fault.message
    assert response.headers["x-request-id"].startswith("req_")
    assert (await generate(http, server))[0] == 200


async def test_retry_hints_and_extra_headers(
    server: LocalImagesServer, http: aiohttp.ClientSession
) -> None:
    """retry-after, retry-after-ms and extra headers such as x-should-retry are sent."""
    server.inject(
        Fault(
            kind="status",
            status=503,
            retry_after=2,
            retry_after_ms=1500,
            headers={"x-should-retry": "false"},
        )
    )
    _, response, _ = await generate(http, server)
    assert response.headers["retry-after"] == "2"
    assert response.headers["retry-after-ms"] == "1500"
    assert response.headers["x-should-retry"] == "false"


async def test_times_and_endpoint_choose_the_requests_hit(
    server: LocalImagesServer, http: aiohttp.ClientSession
) -> None:
    """A fault hits its next ``times`` requests to its endpoint only, counting down."""
    server.inject(Fault(kind="status", status=500, times=2, endpoint="generations"))
    server.inject(Fault(kind="status", status=502, endpoint="variations"))
    assert [f.times for f in server.faults] == [2, 1]
    assert (await generate(http, server))[0] == 500
    assert [f.times for f in server.faults] == [1, 1]
    assert (await generate(http, server))[0] == 500
    assert (await generate(http, server))[0] == 200
    assert [f.endpoint for f in server.faults] == ["variations"]
    server.clear()
    assert server.faults == ()
    assert server.requests == []


async def test_reset_closes_the_connection_before_any_answer(
    server: LocalImagesServer, http: aiohttp.ClientSession
) -> None:
    """The client sees the server disconnect; the request is recorded without a status."""
    server.inject(Fault(kind="reset"))
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await generate(http, server)
    assert server.requests[-1].status is None
    assert (await generate(http, server))[0] == 200


async def test_reset_mid_body_cuts_a_promised_body(
    server: LocalImagesServer, http: aiohttp.ClientSession
) -> None:
    """Headers and part of the body arrive, then the connection closes short of its length."""
    server.inject(Fault(kind="reset_mid_body"))
    async with http.post(f"{server.base_url}/images/generations", json=BODY) as response:
        assert response.status == 200
        with pytest.raises(aiohttp.ClientPayloadError):
            await response.read()


async def test_truncated_json_is_a_short_200_with_a_matching_length(
    server: LocalImagesServer, http: aiohttp.ClientSession
) -> None:
    """The body is cut JSON whose Content-Length is its own, so only parsing fails."""
    server.inject(Fault(kind="truncated_json"))
    status, response, body = await generate(http, server)
    assert status == 200
    assert response.content_length == len(body)
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(body)


async def test_non_json_is_a_proxy_page(
    server: LocalImagesServer, http: aiohttp.ClientSession
) -> None:
    """A 502 with an HTML body, as a proxy in front of the API would send."""
    server.inject(Fault(kind="non_json"))
    status, response, body = await generate(http, server)
    assert status == 502
    assert response.content_type == "text/html"
    assert b"<h1>502 Bad Gateway</h1>" in body


async def test_delay_headers_holds_the_answer(
    server: LocalImagesServer, http: aiohttp.ClientSession
) -> None:
    """A client that waits less than the delay times out; the next request is served."""
    server.inject(Fault(kind="delay_headers", delay=30))
    with pytest.raises(asyncio.TimeoutError):  # not the builtin one before 3.11
        async with http.post(
            f"{server.base_url}/images/generations",
            json=BODY,
            timeout=aiohttp.ClientTimeout(total=0.2),
        ):
            pass
    assert (await generate(http, server))[0] == 200


async def test_stall_body_stops_after_part_of_the_body(
    server: LocalImagesServer, http: aiohttp.ClientSession
) -> None:
    """The headers come, the body stops half way: a read timeout fires."""
    server.inject(Fault(kind="stall_body", delay=30))
    async with http.post(
        f"{server.base_url}/images/generations",
        json=BODY,
        timeout=aiohttp.ClientTimeout(sock_read=0.2),
    ) as response:
        assert response.status == 200
        with pytest.raises(asyncio.TimeoutError):  # not the builtin one before 3.11
            await response.read()


async def test_a_short_stall_still_delivers_the_whole_body(
    server: LocalImagesServer, http: aiohttp.ClientSession
) -> None:
    """A stall shorter than the client's patience only slows the body down."""
    server.inject(Fault(kind="stall_body", delay=0.01))
    status, _, body = await generate(http, server)
    assert status == 200
    assert_matches(orjson.loads(body), "ImagesResponse")


async def test_stream_cut_ends_without_the_completed_event(
    server: LocalImagesServer, http: aiohttp.ClientSession
) -> None:
    """After ``after_events`` partial images the stream ends cleanly, with no completed event."""
    server.inject(Fault(kind="stream_cut", after_events=1))
    status, _, body = await generate(http, server, STREAM)
    assert status == 200
    assert [name for name, _ in parse_sse(body.decode())] == ["image_generation.partial_image"]


async def test_stream_error_sends_an_error_event(
    server: LocalImagesServer, http: aiohttp.ClientSession
) -> None:
    """An ``{"error": ...}`` data event follows the partial images, and the stream ends."""
    server.inject(Fault(kind="stream_error", after_events=2, status=503))
    _, _, body = await generate(http, server, STREAM)
    events = parse_sse(body.decode())
    assert [name for name, _ in events] == [
        "image_generation.partial_image",
        "image_generation.partial_image",
        "error",
    ]
    assert_error(events[-1][1], param=None)
    assert events[-1][1]["error"]["type"] == "server_error"


async def test_stream_faults_wait_for_a_stream(
    server: LocalImagesServer, http: aiohttp.ClientSession
) -> None:
    """A stream fault leaves plain JSON answers alone and hits the next stream."""
    server.inject(Fault(kind="stream_cut", after_events=0))
    assert (await generate(http, server))[0] == 200
    _, _, body = await generate(http, server, STREAM)
    assert parse_sse(body.decode()) == []


def test_faults_can_be_injected_from_another_thread() -> None:
    """in_thread servers take faults from the test's own thread."""
    with LocalImagesServer.in_thread() as server:
        server.inject(Fault(kind="status", status=503))
        assert [fault.kind for fault in server.faults] == ["status"]
        request = urllib.request.Request(
            f"{server.base_url}/images/generations",
            data=orjson.dumps(BODY),
            headers={"Authorization": "Bearer k", "Content-Type": "application/json"},
        )
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(request)
        assert caught.value.code == 503
        caught.value.close()
        assert server.faults == ()


async def test_control_route_scripts_faults_over_http(
    control: LocalImagesServer, http: aiohttp.ClientSession
) -> None:
    """POST adds a fault or a list, GET lists them, DELETE drops them all."""
    url = f"{control.url}/_control/faults"
    faults = [{"kind": "status", "status": 500, "times": 2}, {"kind": "reset"}]
    async with http.post(url, json=faults) as response:
        assert response.status == 200
        listed = (await response.json())["faults"]
    assert [(f["kind"], f["times"]) for f in listed] == [("status", 2), ("reset", 1)]
    assert (await generate(http, control))[0] == 500
    async with http.get(url) as response:
        assert (await response.json())["faults"][0]["times"] == 1
    async with http.delete(url) as response:
        assert (await response.json()) == {"faults": []}
    assert (await generate(http, control))[0] == 200
    assert [r.path for r in control.requests] == ["/v1/images/generations"] * 2


@pytest.mark.parametrize(
    "payload",
    [{"kind": "explode"}, {"kind": "status", "status": 200}, {"kind": "reset", "when": 1}, 3],
)
async def test_control_route_refuses_bad_faults(
    control: LocalImagesServer, http: aiohttp.ClientSession, payload: Any
) -> None:
    """An invalid fault gets an API-shaped 400 and nothing is queued."""
    async with http.post(f"{control.url}/_control/faults", json=payload) as response:
        assert response.status == 400
        assert_error(await response.json(), param=None)
    assert control.faults == ()


async def test_control_route_is_off_by_default(
    server: LocalImagesServer, http: aiohttp.ClientSession
) -> None:
    """Without control_route=True the route is an unknown URL."""
    async with http.post(f"{server.url}/_control/faults", json={"kind": "reset"}) as response:
        assert response.status == 404
    assert server.faults == ()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"kind": "explode"}, "kind must be one of"),
        ({"kind": "status", "status": 302}, "error status"),
        ({"kind": "status", "times": 0}, "times"),
        ({"kind": "status", "endpoint": "images"}, "endpoint must be one of"),
        ({"kind": "stall_body", "delay": -1}, "delay"),
        ({"kind": "status", "headers": {"x": 1}}, "must be <class 'str'>"),
    ],
)
def test_invalid_faults_are_refused_at_construction(fields: dict[str, Any], message: str) -> None:
    """Fault checks its fields, so a typo fails where it is written."""
    with pytest.raises((ValueError, TypeError), match=message):
        Fault(**fields)
    with pytest.raises(ValueError, match=message):
        fault_from_json(fields)


def test_fault_defaults_follow_the_kind() -> None:
    """A status fault is a 500 and a non_json fault a 502 unless told otherwise."""
    assert Fault(kind="status").status == 500
    assert Fault(kind="non_json").status == 502
    assert Fault(kind="status", retry_after=1.0).response_headers() == {"retry-after": "1"}


def test_the_queue_takes_faults_by_stage_in_order() -> None:
    """Faults of another stage wait; the same stage goes first in, first out."""
    queue = FaultQueue()
    queue.add(Fault(kind="stream_cut"))
    queue.add(Fault(kind="truncated_json"))
    queue.add(Fault(kind="reset"))
    queue.add(Fault(kind="status"))
    assert queue.take(endpoint="edits", stage="request") == Fault(kind="reset")
    assert queue.take(endpoint="edits", stage="body") == Fault(kind="truncated_json")
    assert [f.kind for f in queue.pending()] == ["stream_cut", "status"]
