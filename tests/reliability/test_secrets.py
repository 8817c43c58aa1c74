"""The API key stays secret: never printed, logged or recorded, never sent to another host.

The whole fault catalogue runs with every logger at DEBUG (aiohttp's included), and so do
hostile servers (responses no HTTP parser accepts, streams cut or stalled mid-event) and
proxies (refusing, failing, asking for credentials): no error (its text, repr, args, notes,
attributes, causes and contexts, none of which is an aiohttp exception), no log record, no
repr of a client, request, response or recorded request holds the key or the part of it a
redaction hides. The CLI's output does not either. The key goes nowhere but the API host:
not with ``url`` downloads, not after a redirect, and not over plain ``http://`` to a
remote host without a warning that comes before any network I/O.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from anyio.from_thread import BlockingPortal

from openai_images import (
    APIConnectionError,
    APIStatusError,
    AsyncAzureImagesClient,
    AsyncImagesClient,
    AzureImagesClient,
    GenerateRequest,
    ImagesClient,
    OpenAIImagesError,
    Timeout,
)
from openai_images._transport import MAX_REDIRECTS, Transport
from openai_images.cli import build_parser, main
from openai_images.testing import AzureMode, Fault, LocalImagesServer
from openai_images.testing._server import redact_key
from tests.recorder import Recorder, Reply

from .conftest import (
    CASES,
    KEY,
    KEY_MIDDLE,
    call,
    call_sync,
    chained,
    client_options,
    closed_port,
    no_dns,
    open_venue,
    texts_of,
)
from .hostile import PROXIED_HOST, STALL, Proxy, RawServer, chunk, http_response, sse_event


def assert_secret(texts: list[str]) -> None:
    """No text holds the key, nor the middle of it that redactions hide."""
    for text in texts:
        assert KEY not in text, text[:300]
        assert KEY_MIDDLE not in text, text[:300]


@contextlib.contextmanager
def everything_logged(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Every logger at DEBUG, aiohttp's and asyncio's included, into ``caplog``."""
    names = ["", "aiohttp", "aiohttp.client", "aiohttp.server", "aiohttp.access", "asyncio"]
    with contextlib.ExitStack() as stack:
        for name in names:
            stack.enter_context(caplog.at_level(logging.DEBUG, logger=name))
        yield


def logged_texts(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Every record as a handler would write it, tracebacks included, and its raw args."""
    return [caplog.text] + [
        f"{record.getMessage()} {record.args!r} {record.exc_text}" for record in caplog.records
    ]


# -- the fault catalogue, logged --------------------------------------------------------


@pytest.mark.anyio
async def test_no_error_log_or_repr_of_the_async_fault_suite_holds_the_key(
    caplog: pytest.LogCaptureFixture, delays: list[float]
) -> None:
    """Every case of the catalogue, with DEBUG logs: the key shows nowhere."""
    texts: list[str] = []
    errors = 0
    with everything_logged(caplog):
        for case in CASES:
            async with open_venue(case) as venue:
                async with AsyncImagesClient(**client_options(case, venue)) as client:
                    texts.append(repr(client))
                    outcome = await call(client, case)
                if venue.server is not None:
                    texts += [repr(recorded) for recorded in venue.server.requests]
            if outcome.error is not None:
                errors += 1
                assert_clean(outcome.error)
                texts += texts_of(outcome.error)
            texts += [repr(outcome.result), *map(repr, outcome.events)]
    assert errors == sum(case.error is not None for case in CASES)
    assert any("Retrying" in record.getMessage() for record in caplog.records)
    assert_secret(texts + logged_texts(caplog))


def test_no_error_log_or_repr_of_the_sync_fault_suite_holds_the_key(
    caplog: pytest.LogCaptureFixture, delays: list[float], portal: BlockingPortal
) -> None:
    """The same for the sync client, whose calls run on a loop in another thread."""
    texts: list[str] = []
    with everything_logged(caplog):
        for case in CASES:
            with (
                portal.wrap_async_context_manager(open_venue(case)) as venue,
                ImagesClient(**client_options(case, venue)) as client,
            ):
                texts.append(repr(client))
                outcome = call_sync(client, case)
            if outcome.error is not None:
                assert_clean(outcome.error)
                texts += texts_of(outcome.error)
            texts += [repr(outcome.result), *map(repr, outcome.events)]
    assert_secret(texts + logged_texts(caplog))


@pytest.mark.anyio
async def test_a_wrong_key_is_redacted_in_the_error_and_the_records() -> None:
    """A refused key comes back redacted in the 401 message and in ``server.requests``."""
    async with (
        LocalImagesServer(api_keys={"sk-the-right-one"}) as server,
        AsyncImagesClient(api_key=KEY, base_url=server.base_url, max_retries=0) as client,
    ):
        with pytest.raises(APIStatusError) as refused:
            await client.generate(prompt="p", model="gpt-image-2.5-flare", size="256x256")
        (recorded,) = server.requests
    assert refused.value.status_code == 401
    assert recorded.api_key == redact_key(KEY)
    assert_secret([*texts_of(refused.value), repr(recorded), repr(server.requests)])


def test_settings_and_requests_do_not_show_the_key() -> None:
    """The client's settings and the request objects have nothing of the key in reprs."""
    client = AsyncImagesClient(api_key=KEY, base_url="http://127.0.0.1:9/v1")
    request = GenerateRequest(prompt="a fox", model="gpt-image-1.5")
    assert_secret(
        [repr(client), repr(client._sender.settings), str(client._sender.settings), repr(request)]
    )


# -- hostile servers and proxies ----------------------------------------------------------

_STREAM_HEAD = http_response(
    "HTTP/1.1 200 OK\nContent-Type: text/event-stream\nTransfer-Encoding: chunked\n"
    "x-request-id: req_hostile"
)
_PARTIAL = sse_event(
    {"type": "image_generation.partial_image", "b64_json": "aGk=", "partial_image_index": 0,
     "created_at": 1, "size": "1024x1024", "quality": "low", "background": "opaque",
     "output_format": "png"}
)  # fmt: skip

HOSTILE: dict[str, list[bytes | object]] = {
    "status-line-not-a-number": [http_response("HTTP/1.1 abc")],
    "header-without-a-colon": [
        http_response("HTTP/1.1 200 OK\nContent-Type application/json\nContent-Length: 2", b"{}")
    ],
    "content-length-not-a-number": [
        http_response("HTTP/1.1 200 OK\nContent-Length: twelve", b"{}")
    ],
    "header-line-too-long": [http_response("HTTP/1.1 200 OK\nX-Long: " + "a" * 20000)],
    "closed-mid-head": [b"HTTP/1.1 200 OK\r\nContent-Le"],
    "chunk-size-not-hex": [
        http_response("HTTP/1.1 200 OK\nContent-Type: application/json\n"
                      "Transfer-Encoding: chunked"),
        b"zz\r\n{}",
    ],
    "gzip-that-is-not": [
        http_response("HTTP/1.1 200 OK\nContent-Encoding: gzip\nContent-Length: 9", b"not gzip!")
    ],
    "body-stalls": [http_response("HTTP/1.1 200 OK\nContent-Length: 100", b"{"), STALL],
    "stream-chunk-not-hex": [_STREAM_HEAD, chunk(_PARTIAL), b"zz\r\n"],
    "stream-cut-mid-chunk": [_STREAM_HEAD, chunk(_PARTIAL), b"40\r\ndata: {"],
    "stream-stalls": [_STREAM_HEAD, chunk(_PARTIAL), STALL],
}  # fmt: skip
"""Answers no well-behaved server sends; aiohttp's exceptions for several hold our headers."""

_QUICK = Timeout(connect=5.0, read=0.2, total=10.0)


async def _fail(client: AsyncImagesClient, *, stream: bool) -> OpenAIImagesError:
    """The library error a call meets (it must meet one)."""
    try:
        if stream:
            async with await client.generate(
                prompt="p", model="gpt-image-1.5", stream=True, partial_images=1
            ) as events:
                async for _ in events:
                    pass
        else:
            await client.generate(prompt="p", model="gpt-image-1.5", size="1024x1024")
    except OpenAIImagesError as error:
        return error
    raise AssertionError("the call succeeded")


def _fail_sync(client: ImagesClient, *, stream: bool) -> OpenAIImagesError:
    """:func:`_fail` for the sync client."""
    try:
        if stream:
            with client.generate(prompt="p", model="gpt-image-1.5", stream=True) as events:
                list(events)
        else:
            client.generate(prompt="p", model="gpt-image-1.5", size="1024x1024")
    except OpenAIImagesError as error:
        return error
    raise AssertionError("the call succeeded")


def assert_clean(error: BaseException) -> None:
    """No text of the error holds the key, and nothing chained to it is aiohttp's."""
    assert_secret(texts_of(error))
    for linked in chained(error):
        assert not type(linked).__module__.startswith("aiohttp"), repr(linked)[:300]


@pytest.mark.anyio
@pytest.mark.parametrize("name", list(HOSTILE))
async def test_hostile_responses_leave_no_key_in_errors_or_logs(
    name: str, caplog: pytest.LogCaptureFixture, delays: list[float]
) -> None:
    """Unparseable heads, bodies and streams, retried once: the error and the logs are
    clean, and no aiohttp exception (whose ``request_info`` holds our headers) is chained."""
    with everything_logged(caplog):
        async with (
            RawServer(HOSTILE[name]) as server,
            AsyncImagesClient(
                api_key=KEY, base_url=server.base_url, max_retries=1, timeout=_QUICK
            ) as client,
        ):
            error = await _fail(client, stream=name.startswith("stream"))
    assert isinstance(error, APIConnectionError)
    assert_clean(error)
    assert_secret(logged_texts(caplog))


def test_hostile_responses_leave_no_key_in_the_sync_client(portal: BlockingPortal) -> None:
    """The sync client hands over the same clean errors from its loop thread."""
    for name in ("status-line-not-a-number", "stream-cut-mid-chunk"):
        with (
            portal.wrap_async_context_manager(RawServer(HOSTILE[name])) as server,
            ImagesClient(api_key=KEY, base_url=server.base_url, max_retries=0) as client,
        ):
            error = _fail_sync(client, stream=name.startswith("stream"))
        assert_clean(error)


@pytest.mark.anyio
@pytest.mark.parametrize(
    "proxy_answer",
    [
        None,
        b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 abc\r\n\r\n",
    ],
    ids=["proxy-down", "proxy-407", "proxy-502", "proxy-unparseable"],
)
@pytest.mark.parametrize("scheme", ["http", "https"])
async def test_proxy_failures_leave_no_key_or_proxy_password_in_errors(
    proxy_answer: bytes | None,
    scheme: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A proxy that is down, refuses, fails or speaks nonsense: the error names the proxy
    without its password and holds neither that password nor the key."""
    async with Proxy(refuse=proxy_answer) as proxy:
        port = proxy.url.rsplit(":", 1)[1] if proxy_answer else str(closed_port())
        monkeypatch.setenv(f"{scheme}_proxy", f"http://user:proxy-pw-123@127.0.0.1:{port}")
        # A host that is not looked up (nor this machine): the proxy is asked for it.
        plain_http = pytest.warns(UserWarning, match="plain http")
        with no_dns(), everything_logged(caplog):
            async with AsyncImagesClient(
                api_key=KEY, base_url=f"{scheme}://{PROXIED_HOST}:9/v1", max_retries=0
            ) as client:
                with plain_http if scheme == "http" else contextlib.nullcontext():
                    error = await _fail(client, stream=False)
    assert len(proxy.request_lines) == (0 if proxy_answer is None else 1)
    texts = texts_of(error) + logged_texts(caplog)
    assert_clean(error)
    assert_secret(texts)
    assert not any("proxy-pw-123" in text for text in texts)
    if isinstance(error, APIConnectionError):
        assert f"through the proxy http://127.0.0.1:{port}" in str(error)


# -- the command line -------------------------------------------------------------------


@pytest.mark.parametrize("key_from", ["option", "environment"])
def test_the_cli_never_prints_the_key(
    key_from: str,
    portal: BlockingPortal,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    delays: list[float],
) -> None:
    """Successes, API errors, retries, bad requests and --debug tracebacks: no key."""
    key_args = ["--api-key", KEY] if key_from == "option" else []
    if key_from == "environment":
        monkeypatch.setenv("OPENAI_API_KEY", KEY)
    outputs: list[str] = []
    with (
        portal.wrap_async_context_manager(LocalImagesServer()) as server,
        everything_logged(caplog),
    ):
        common = [*key_args, "--base-url", server.base_url, "-o", str(tmp_path), "--overwrite"]
        runs = [
            ["generate", "a fox", "--model", "gpt-image-2.5-flare", "--size", "256x256", *common],
            [
                "generate",
                "a fox",
                "--model",
                "gpt-image-2.5-flare",
                "--size",
                "256x256",
                "--json",
                *common,
            ],
            ["generate", "a fox", "--model", "gpt-image-2.5-flare", "--n", "11", *common],
            [
                "generate",
                "a fox",
                "--model",
                "gpt-image-2.5-flare",
                "--size",
                "256x256",
                "--debug",
                *common,
            ],
        ]
        statuses = []
        for index, argv in enumerate(runs):
            if index == 3:
                server.inject(Fault(kind="status", status=500, times=5))
            statuses.append(main(argv))
            captured = capsys.readouterr()
            outputs += [captured.out, captured.err]
    with portal.wrap_async_context_manager(LocalImagesServer(api_keys={"sk-other"})) as server:
        argv = ["generate", "a fox", *key_args, "--base-url", server.base_url, "--debug"]
        statuses.append(main(argv))
        captured = capsys.readouterr()
        outputs += [captured.out, captured.err]
    assert statuses == [0, 0, 2, 1, 1]  # ok, ok, refused (a usage error), 500s, 401
    assert "Incorrect API key" in outputs[-1]
    assert_secret(outputs + logged_texts(caplog))


def test_the_cli_server_binds_to_loopback_without_the_control_route() -> None:
    """``openai-images serve`` listens on 127.0.0.1 and scripts no faults unless asked."""
    args = build_parser().parse_args(["serve"])
    assert args.host == "127.0.0.1"
    assert args.control is False


# -- where the key goes -----------------------------------------------------------------


@pytest.mark.anyio
async def test_downloads_never_carry_the_key() -> None:
    """``download`` sends no Authorization, to the URL's host or where it redirects."""
    async with Recorder() as storage, Recorder() as mirror:
        target = f"{mirror.base_url}/blob.png"
        storage.reply(Reply(status=302, body=b"", headers={"Location": target}))
        mirror.reply(Reply(body=b"PNG-BYTES", content_type="image/png"))
        async with AsyncImagesClient(api_key=KEY, base_url="http://127.0.0.1:9/v1") as client:
            data = await client.download(f"{storage.base_url}/signed.png?sig=abc")
    assert data == b"PNG-BYTES"
    for recorded in [*storage.requests, *mirror.requests]:
        assert "Authorization" not in recorded.headers
        assert_secret([repr(recorded.headers)])


@pytest.mark.anyio
async def test_url_results_of_the_local_server_are_fetched_without_the_key() -> None:
    """A dall-e ``url`` result (legacy server) is downloaded from the file route with no key."""
    async with (
        LocalImagesServer(legacy=True) as server,
        AsyncImagesClient(api_key=KEY, base_url=server.base_url) as client,
    ):
        result = await client.generate(
            prompt="a fox", model="dall-e-2", size="256x256", response_format="url"
        )
        data = await client.download(result.data[0])
        generation, download = server.requests
    assert data.startswith(b"\x89PNG")
    assert generation.api_key == redact_key(KEY)
    assert (download.endpoint, download.api_key) == ("files", None)


@pytest.mark.anyio
@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_an_api_redirect_is_not_followed(status: int) -> None:
    """A redirect answer to an API call is an error; the other host hears nothing."""
    async with Recorder() as api, Recorder() as elsewhere:
        location = f"{elsewhere.base_url}/images/generations"
        api.reply(Reply(status=status, body=b"", headers={"Location": location}))
        async with AsyncImagesClient(api_key=KEY, base_url=api.base_url) as client:
            with pytest.raises(APIStatusError) as caught:
                await client.generate(prompt="p")
    assert caught.value.status_code == status
    assert len(api.requests) == 1
    assert elsewhere.requests == []


@pytest.mark.anyio
async def test_plain_http_to_a_remote_host_warns_before_any_lookup() -> None:
    """The warning comes first: as an error (``filterwarnings = error``) it stops the call
    before even the host name is looked up; let through, the lookup comes after it."""
    base_url = "http://images.example.invalid/v1"
    with no_dns() as looked_up:
        async with AsyncImagesClient(api_key=KEY, base_url=base_url, max_retries=0) as client:
            with pytest.raises(UserWarning, match="plain http"):
                await client.generate(prompt="p")
            assert looked_up == []
        async with AsyncImagesClient(api_key=KEY, base_url=base_url, max_retries=0) as client:
            with pytest.warns(UserWarning, match="plain http"), pytest.raises(OpenAIImagesError):
                await client.generate(prompt="p")
            assert looked_up == ["images.example.invalid"]


def test_plain_http_warns_before_any_lookup_in_the_sync_client() -> None:
    """The sync client hands the same warning back from its loop, before any lookup."""
    with (
        no_dns() as looked_up,
        ImagesClient(api_key=KEY, base_url="http://images.example.invalid/v1") as client,
    ):
        with pytest.raises(UserWarning, match="plain http"):
            client.generate(prompt="p")
        assert looked_up == []


@pytest.mark.anyio
async def test_the_local_server_is_loopback_only_and_has_no_control_route_by_default() -> None:
    """It listens on 127.0.0.1 alone, and ``/_control/faults`` is an unknown URL."""
    async with LocalImagesServer() as server:
        assert server.url.startswith("http://127.0.0.1:")
        port = int(server.url.rsplit(":", 1)[1])
        assert _listening_addresses(port) == ["127.0.0.1"]
        async with AsyncImagesClient(api_key=KEY, base_url=server.base_url) as client:
            transport = client._sender.transport
            for method in ("GET", "POST", "DELETE"):
                answer = await transport.send(
                    method,
                    f"{server.url}/_control/faults",
                    headers={"Authorization": f"Bearer {KEY}"},
                    timeout=client.timeout,
                )
                assert answer.status == 404
    assert server.faults == ()


def _listening_addresses(port: int) -> list[str]:
    """The IPv4 and IPv6 addresses a TCP port of this machine listens on (from /proc)."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError), open(table) as lines:
            for line in list(lines)[1:]:
                local, state = line.split()[1], line.split()[3]
                address, port_hex = local.split(":")
                if state == "0A" and int(port_hex, 16) == port:
                    found.append(_address(address))
    return found


def _address(hex_address: str) -> str:
    if len(hex_address) == 8:
        return ".".join(str(b) for b in reversed(bytes.fromhex(hex_address)))
    return hex_address


# -- redirects the transport follows --------------------------------------------------------

CREDENTIALS = {
    "Authorization": f"Bearer {KEY}",
    "api-key": KEY,
    "Ocp-Apim-Subscription-Key": KEY,
    "Cookie": f"session={KEY}",
}


@pytest.mark.anyio
@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_a_redirect_to_another_origin_carries_no_credential_header(status: int) -> None:
    """Followed redirects leave Authorization, api-key and the other credentials behind
    when they lead to another origin (aiohttp itself drops only Authorization)."""
    async with Recorder() as first, Recorder() as elsewhere:
        first.reply(Reply(status=status, body=b"", headers={"Location": elsewhere.base_url}))
        elsewhere.reply(Reply(body=b"done", content_type="text/plain"))
        transport = Transport(trust_env=False)
        try:
            answer = await transport.send(
                "GET",
                f"{first.base_url}/start",
                headers={**CREDENTIALS, "Accept": "text/plain"},
                timeout=Timeout(total=10),
                allow_redirects=True,
            )
        finally:
            await transport.aclose()
    assert (answer.status, answer.body) == (200, b"done")
    (arrived,) = elsewhere.requests
    assert arrived.headers["Accept"] == "text/plain"
    assert_secret([repr(arrived.headers)])
    assert first.requests[0].headers["api-key"] == KEY


@pytest.mark.anyio
async def test_a_redirect_on_the_same_origin_keeps_the_credentials() -> None:
    """A redirect within the API's own origin still authenticates; a 303 turns into GET."""
    async with Recorder() as api:
        api.reply(Reply(status=303, body=b"", headers={"Location": "/moved?x=1"}))
        transport = Transport(trust_env=False)
        try:
            await transport.send(
                "POST",
                f"{api.base_url}/start",
                headers=CREDENTIALS,
                timeout=Timeout(total=10),
                allow_redirects=True,
            )
        finally:
            await transport.aclose()
    first, moved = api.requests
    assert (first.method, moved.method, moved.path, moved.query) == (
        "POST",
        "GET",
        "/moved",
        {"x": "1"},
    )
    assert moved.headers["api-key"] == KEY
    assert moved.headers["Authorization"] == f"Bearer {KEY}"


@pytest.mark.anyio
async def test_endless_redirects_end_in_a_connection_error() -> None:
    """A redirect loop stops after ten redirects, as aiohttp's did."""
    async with Recorder() as api:
        api.reply(*[Reply(status=302, body=b"", headers={"Location": "/again"})] * 20)
        transport = Transport(trust_env=False)
        try:
            with pytest.raises(APIConnectionError, match="redirects"):
                await transport.send(
                    "GET", api.base_url, headers={}, timeout=Timeout(total=10), allow_redirects=True
                )
        finally:
            await transport.aclose()
    assert len(api.requests) == MAX_REDIRECTS


# -- the Azure clients ---------------------------------------------------------------------

AZURE_TOKEN = "eyJentra.TOPSECRETtokenPAYLOAD0123456789.signature"
AZURE_MODE = AzureMode(deployments={"prod-images": "gpt-image-1.5"}, ad_tokens={AZURE_TOKEN})


def _azure_credentials() -> list[dict[str, object]]:
    async def provider() -> str:
        return AZURE_TOKEN

    return [
        {"api_key": KEY},
        {"azure_ad_token": AZURE_TOKEN},
        {"azure_ad_token_provider": provider},
    ]


@pytest.mark.anyio
@pytest.mark.parametrize("api_version", ["2025-04-01-preview", "v1"])
async def test_the_azure_clients_never_show_the_key_or_token(
    caplog: pytest.LogCaptureFixture, api_version: str
) -> None:
    """Azure keys and Entra tokens: in no repr, log record or error (a 401, a refused
    deployment, the content filter, a wrong key), on either route."""
    texts: list[str] = []
    with everything_logged(caplog):
        async with LocalImagesServer(azure=AZURE_MODE, api_keys={KEY}) as server:
            for credential in _azure_credentials():
                async with AsyncAzureImagesClient(
                    azure_endpoint=server.url,
                    api_version=api_version,
                    max_retries=0,
                    **credential,  # type: ignore[arg-type]  # one credential keyword of three
                ) as client:
                    await client.generate(prompt="a fox", model="prod-images", quality="low")
                    texts += [repr(client), repr(client._sender.auth), repr(client._azure)]
                    texts += [repr(client._sender.settings), repr(client.with_options())]
                    for bad in (
                        client.generate(prompt="gore", model="prod-images", quality="low"),
                        client.with_options(api_key=KEY[::-1]).generate(prompt="p", model="x"),
                        client.generate(prompt="p", model="elsewhere", extra_query={"x": KEY[:4]}),
                    ):
                        with pytest.raises(OpenAIImagesError) as caught:
                            await bad
                        texts += texts_of(caught.value)
            texts += [repr(recorded) for recorded in server.requests]
    for text in texts + logged_texts(caplog):
        assert AZURE_TOKEN not in text, text[:300]
        assert "TOPSECRETtoken" not in text, text[:300]
    assert_secret(texts + logged_texts(caplog))


def test_the_sync_azure_client_shows_no_secret() -> None:
    """The sync Azure client's repr holds neither the key nor the token."""
    for credential in _azure_credentials():
        client = AzureImagesClient(
            azure_endpoint="https://res.openai.azure.com",
            api_version="v1",
            **credential,  # type: ignore[arg-type]  # one credential keyword of three
        )
        try:
            text = repr(client)
        finally:
            client.close()
        assert_secret([text])
        assert AZURE_TOKEN not in text
