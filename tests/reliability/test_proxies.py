"""Proxies from the environment, by default, as the official SDK does.

``HTTP_PROXY``, ``HTTPS_PROXY`` and ``NO_PROXY`` (or lowercase) are read when a client is
made; ``trust_env=False`` ignores them, and this machine's own addresses are never
proxied. Requests go through a small proxy on 127.0.0.1 that records every byte it is
sent and takes every host name for 127.0.0.1, so the clients name the servers
``images.test`` (and never look that name up themselves: :func:`no_dns`). A plain
``http://`` request is forwarded (the proxy sees it), an ``https://`` one goes through a
``CONNECT`` tunnel, so the proxy never sees the key. Nothing comes from ``~/.netrc``.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from anyio.from_thread import BlockingPortal

from openai_images import APIConnectionError, AsyncImagesClient, ImagesClient
from tests.recorder import Recorder, Reply

from .conftest import KEY, closed_port, no_dns
from .hostile import PKI, PROXIED_HOST, Proxy, TLSServer, make_pki

PROMPT = {"prompt": "a fox", "model": "dall-e-2", "size": "256x256"}


def named(url: str) -> str:
    """``url`` with ``images.test`` for 127.0.0.1: a host the proxy must be asked for."""
    return url.replace("127.0.0.1", PROXIED_HOST)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    """A CA and a server certificate for 127.0.0.1."""
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No proxy or netrc settings but the test's own."""
    for name in ("http_proxy", "https_proxy", "no_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))


@pytest.mark.anyio
@pytest.mark.parametrize("variable", ["HTTP_PROXY", "http_proxy"])
async def test_plain_http_goes_through_the_proxy_by_default(
    variable: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An ``http://`` API is reached through ``HTTP_PROXY`` (or lowercase), forwarded."""
    async with Proxy() as proxy, Recorder() as api:
        monkeypatch.setenv(variable, proxy.url)
        with no_dns() as looked_up:
            async with AsyncImagesClient(api_key=KEY, base_url=named(api.base_url)) as client:
                with pytest.warns(UserWarning, match="plain http"):
                    await client.generate(**PROMPT)
    assert proxy.request_lines == [f"POST {named(api.base_url)}/images/generations HTTP/1.1"]
    assert len(api.requests) == 1
    assert looked_up == []


@pytest.mark.anyio
@pytest.mark.parametrize("variable", ["HTTPS_PROXY", "https_proxy"])
async def test_https_goes_through_a_tunnel_the_proxy_cannot_read(
    variable: str, monkeypatch: pytest.MonkeyPatch, pki: PKI
) -> None:
    """An ``https://`` API is reached through a ``CONNECT`` tunnel: the proxy passes the
    bytes on, and the key is not among what it can read."""
    async with Proxy() as proxy, TLSServer(pki) as api:
        monkeypatch.setenv(variable, proxy.url)
        with no_dns():
            async with AsyncImagesClient(
                api_key=KEY, base_url=named(api.base_url), verify=pki.ca
            ) as client:
                result = await client.generate(**PROMPT)
    port = api.base_url.split(":")[2].split("/")[0]
    assert proxy.request_lines == [f"CONNECT {PROXIED_HOST}:{port} HTTP/1.1"]
    assert result.data[0].content() == b"hi"
    assert api.headers[0]["Authorization"] == f"Bearer {KEY}"
    assert len(proxy.seen) > 200  # the TLS handshake and the request passed through it
    assert KEY.encode() not in proxy.seen
    assert b"Bearer" not in proxy.seen


@pytest.mark.anyio
@pytest.mark.parametrize("no_proxy", [PROXIED_HOST, "localhost,.test", "*"])
async def test_no_proxy_and_trust_env_false_go_direct(
    no_proxy: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Hosts in ``NO_PROXY`` are reached directly (so the client looks their name up
    itself), and so is everything with ``trust_env=False``."""
    async with Proxy() as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        monkeypatch.setenv("NO_PROXY", no_proxy)
        base_url = f"https://{PROXIED_HOST}/v1"
        with no_dns() as looked_up:
            async with AsyncImagesClient(api_key=KEY, base_url=base_url, max_retries=0) as c:
                with pytest.raises(APIConnectionError):
                    await c.generate(**PROMPT)
            monkeypatch.delenv("NO_PROXY")
            async with AsyncImagesClient(
                api_key=KEY, base_url=base_url, max_retries=0, trust_env=False
            ) as client:
                with pytest.raises(APIConnectionError):
                    await client.generate(**PROMPT)
    assert proxy.request_lines == []
    assert looked_up == [PROXIED_HOST, PROXIED_HOST]


@pytest.mark.anyio
@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]"])
async def test_this_machine_is_never_proxied(host: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A local server (the package's own, in tests) is reached directly: a proxy on
    another machine could not reach this one's loopback."""
    async with Proxy() as proxy, Recorder() as api:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        port = api.base_url.split(":")[2].split("/")[0]
        async with AsyncImagesClient(api_key=KEY, base_url=api.base_url, max_retries=0) as client:
            await client.generate(**PROMPT)
            # Nothing listens on ::1 here; what matters is that the proxy is not asked.
            with contextlib.suppress(APIConnectionError):
                await client.download(f"http://{host}:{port}/blob.png")
    assert proxy.request_lines == []


@pytest.mark.anyio
async def test_an_error_through_a_proxy_names_it_without_its_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A proxy that is down: the connection error says a proxy was used, which one, and
    not its credentials."""
    port = closed_port()
    monkeypatch.setenv("HTTPS_PROXY", f"http://alice:s3cret-pw@127.0.0.1:{port}")
    async with AsyncImagesClient(
        api_key=KEY, base_url=f"https://{PROXIED_HOST}/v1", max_retries=0
    ) as client:
        with pytest.raises(APIConnectionError) as caught:
            await client.generate(**PROMPT)
    message = str(caught.value)
    assert f"through the proxy http://127.0.0.1:{port}" in message
    assert "s3cret-pw" not in message
    assert "alice" not in message


@pytest.mark.anyio
async def test_proxy_credentials_in_the_url_are_sent_to_the_proxy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``http://user:password@proxy`` authenticates to the proxy (``Proxy-Authorization``)."""
    async with Proxy() as proxy, Recorder() as storage:
        monkeypatch.setenv("HTTP_PROXY", proxy.url.replace("//", "//alice:s3cret-pw@"))
        async with AsyncImagesClient(api_key=KEY) as client:
            await client.download(named(f"{storage.base_url}/blob.png"))
    assert b"Proxy-Authorization: Basic YWxpY2U6czNjcmV0LXB3" in proxy.seen


@pytest.mark.anyio
async def test_netrc_credentials_are_never_added(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """aiohttp's own ``trust_env`` adds ``Authorization`` (and proxy credentials) from
    ``~/.netrc``; ours does not, for a download (which carries no key) nor a proxy."""
    netrc = tmp_path / "netrc"
    netrc.write_text(
        "machine 127.0.0.1 login netrc-user password netrc-pw\n"
        f"machine {PROXIED_HOST} login netrc-user password netrc-pw\n"
    )
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    async with Proxy() as proxy, Recorder() as storage:
        storage.reply(*[Reply(body=b"PNG", content_type="image/png")] * 2)
        async with AsyncImagesClient(api_key=KEY, trust_env=True) as client:
            await client.download(f"{storage.base_url}/blob.png")
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        async with AsyncImagesClient(api_key=KEY) as client:
            await client.download(named(f"{storage.base_url}/blob.png"))
    assert [r.headers.get("Authorization") for r in storage.requests] == [None, None]
    assert len(proxy.request_lines) == 1
    assert b"netrc" not in proxy.seen
    assert b"Authorization" not in proxy.seen


def test_the_sync_client_uses_the_proxy_by_default(
    monkeypatch: pytest.MonkeyPatch, portal: BlockingPortal
) -> None:
    """``ImagesClient`` reads the same variables."""
    with (
        portal.wrap_async_context_manager(Proxy()) as proxy,
        portal.wrap_async_context_manager(Recorder()) as storage,
    ):
        storage.reply(Reply(body=b"PNG", content_type="image/png"))
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        with ImagesClient(api_key=KEY) as client:
            assert client.download(named(f"{storage.base_url}/blob.png")) == b"PNG"
    assert len(proxy.request_lines) == 1
