"""TLS settings: a private CA, an ``SSLContext``, ``verify=False`` and client certificates.

Every test talks HTTPS to a server on 127.0.0.1 whose certificate a CA made for the test
signed (see :func:`tests.reliability.hostile.make_pki`); the system's CAs do not know it.
"""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from anyio.from_thread import BlockingPortal

from openai_images import (
    APIConnectionError,
    AsyncImagesClient,
    ClientCertificate,
    ImagesClient,
)

from .conftest import KEY, texts_of
from .hostile import PKI, TLSServer, make_pki

PROMPT = {"prompt": "a fox", "model": "dall-e-2", "size": "256x256"}


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, made once."""
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.mark.anyio
async def test_the_system_cas_refuse_a_private_server(pki: PKI) -> None:
    """By default the server's certificate is checked: an unknown CA is a connection error
    that says so, and the request (with the key) never leaves."""
    async with (
        TLSServer(pki) as server,
        AsyncImagesClient(api_key=KEY, base_url=server.base_url, max_retries=0) as client,
    ):
        with pytest.raises(APIConnectionError, match="certificate verify failed"):
            await client.generate(**PROMPT)
    assert server.headers == []


@pytest.mark.anyio
@pytest.mark.parametrize("as_path", [True, False], ids=["path", "str"])
async def test_a_ca_bundle_path_is_trusted(pki: PKI, as_path: bool) -> None:
    """``verify=<CA bundle>`` (a path or a string) trusts the private CA."""
    verify = pki.ca if as_path else str(pki.ca)
    async with (
        TLSServer(pki) as server,
        AsyncImagesClient(api_key=KEY, base_url=server.base_url, verify=verify) as client,
    ):
        result = await client.generate(**PROMPT)
    assert result.data[0].content() == b"hi"
    assert server.headers[0]["Authorization"] == f"Bearer {KEY}"


@pytest.mark.anyio
async def test_another_ca_bundle_is_refused(pki: PKI) -> None:
    """A bundle of a CA that did not sign the server's certificate does not help."""
    async with (
        TLSServer(pki) as server,
        AsyncImagesClient(
            api_key=KEY, base_url=server.base_url, verify=pki.other_ca, max_retries=0
        ) as client,
    ):
        with pytest.raises(APIConnectionError, match="certificate verify failed") as caught:
            await client.generate(**PROMPT)
    assert server.headers == []
    assert all(KEY not in text for text in texts_of(caught.value))


@pytest.mark.anyio
async def test_an_ssl_context_is_used_as_given(pki: PKI) -> None:
    """``verify=<SSLContext>`` is the caller's own context, client certificate included."""
    context = ssl.create_default_context(cafile=str(pki.ca))
    context.load_cert_chain(pki.client_cert, pki.client_key, pki.client_key_password)
    async with (
        TLSServer(pki, require_client_cert=True) as server,
        AsyncImagesClient(api_key=KEY, base_url=server.base_url, verify=context) as client,
    ):
        await client.generate(**PROMPT)
    assert server.peer_certs[0] is not None


@pytest.mark.anyio
async def test_verify_false_warns_and_then_skips_the_checks(pki: PKI) -> None:
    """``verify=False`` warns loudly when the client is made, then talks to any server."""
    async with TLSServer(pki) as server:
        with pytest.warns(UserWarning, match="verification is OFF"):
            client = AsyncImagesClient(api_key=KEY, base_url=server.base_url, verify=False)
        async with client:
            result = await client.generate(**PROMPT)
    assert result.data[0].content() == b"hi"


# On CPython 3.10, asyncio's old sslproto leaves the transport of a failed TLS handshake
# (the second call below) unclosed; 3.11's rewritten sslproto closes it. Seen only there.
@pytest.mark.filterwarnings(
    "ignore:unclosed transport <asyncio.sslproto._SSLProtocolTransport:ResourceWarning"
)
@pytest.mark.anyio
async def test_a_client_certificate_with_an_encrypted_key(pki: PKI) -> None:
    """``client_cert=`` presents the certificate to a server that requires one; without it
    the handshake fails."""
    cert = ClientCertificate(
        cert_file=pki.client_cert, key_file=pki.client_key, password=pki.client_key_password
    )
    async with TLSServer(pki, require_client_cert=True) as server:
        async with AsyncImagesClient(
            api_key=KEY, base_url=server.base_url, verify=pki.ca, client_cert=cert
        ) as client:
            await client.generate(**PROMPT)
        async with AsyncImagesClient(
            api_key=KEY, base_url=server.base_url, verify=pki.ca, max_retries=0
        ) as client:
            with pytest.raises(APIConnectionError):
                await client.generate(**PROMPT)
    assert len(server.headers) == 1
    # typeshed types a certificate's fields loosely; this is ssl's documented shape.
    subject = dict(field[0] for field in server.peer_certs[0]["subject"])  # type: ignore[index]  # typeshed: a value of str or tuples
    assert subject["commonName"] == "images-client"
    assert "client-key-pw" not in repr(cert)


def test_the_sync_client_takes_the_same_settings(pki: PKI, portal: BlockingPortal) -> None:
    """``ImagesClient`` passes ``verify`` and ``client_cert`` through."""
    cert = ClientCertificate(
        cert_file=pki.client_cert, key_file=pki.client_key, password=pki.client_key_password
    )
    with (
        portal.wrap_async_context_manager(TLSServer(pki, require_client_cert=True)) as server,
        ImagesClient(
            api_key=KEY, base_url=server.base_url, verify=pki.ca, client_cert=cert
        ) as client,
    ):
        assert client.generate(**PROMPT).data[0].content() == b"hi"


def test_wrong_tls_settings_fail_when_the_client_is_made(pki: PKI, tmp_path: Path) -> None:
    """A missing bundle, a wrong key password, or a certificate next to a ready context
    fail at once, not at the first request."""
    with pytest.raises(FileNotFoundError):
        AsyncImagesClient(api_key=KEY, verify=tmp_path / "missing.pem")
    wrong = ClientCertificate(cert_file=pki.client_cert, key_file=pki.client_key, password="no")
    with pytest.raises(ssl.SSLError):
        AsyncImagesClient(api_key=KEY, client_cert=wrong)
    with pytest.raises(ValueError, match="SSLContext"):
        AsyncImagesClient(api_key=KEY, verify=ssl.create_default_context(), client_cert=wrong)
