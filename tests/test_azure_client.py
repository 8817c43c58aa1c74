"""The Azure clients end to end against the local server's Azure mode.

The matrix: both routes (deployments, v1) x both credentials (a key, a token provider),
for generate, a multi-image edit with a mask, a JSON edit, a stream, a batch, and Azure's
errors; the sync client on both routes; a token renewed on a fake clock through a call.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

import openai_images._azure_client as azure_client_module
from openai_images import (
    AsyncAzureImagesClient,
    AuthenticationError,
    AzureImagesClient,
    AzureSettingsError,
    BadRequestError,
    GenerateRequest,
    ImageRef,
    MissingAzureCredentialError,
    ModerationBlockedError,
    NotFoundError,
    RequestValidationError,
)
from openai_images.testing import AzureMode, LocalImagesServer
from openai_images.testing._server import redact_key
from tests.images import make_png

pytestmark = pytest.mark.anyio

VERSION = "2025-04-01-preview"
KEY = "azure-key-0123456789abcdef"
TOKENS = ("entra-token-first-0123456789", "entra-token-second-0123456789")
MODE = AzureMode(
    deployments={
        "prod-images": "gpt-image-1.5",
        "flare": "gpt-image-2.5-flare",
        "gpt-image-1.5": "gpt-image-1.5",
    },
    ad_tokens=set(TOKENS),
)
ROUTES = ["deployments", "v1"]
CREDENTIALS = ["key", "provider"]


class FakeClock:
    """Seconds since the epoch that move only when a test says so."""

    def __init__(self, now: float = 2_000_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Token:
    """The shape of azure-core's ``AccessToken``."""

    def __init__(self, token: str, expires_on: float) -> None:
        self.token = token
        self.expires_on = expires_on


class Provider:
    """An async token provider handing out ``TOKENS`` in turn, each valid for an hour."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.calls = 0

    async def __call__(self) -> Token:
        token = TOKENS[min(self.calls, len(TOKENS) - 1)]
        self.calls += 1
        return Token(token, self.clock.now + 3600)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """The clock the Azure clients read token expiries by, under the test's control."""
    fake = FakeClock()
    monkeypatch.setattr(azure_client_module, "_now", fake)
    return fake


@pytest.fixture
def no_azure_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """None of the official SDK's Azure variables set."""
    for name in (
        "AZURE_OPENAI_API_KEY",
        "AZURE_OPENAI_AD_TOKEN",
        "AZURE_OPENAI_ENDPOINT",
        "OPENAI_API_VERSION",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
async def server() -> AsyncIterator[LocalImagesServer]:
    """A server in Azure mode with one key, two Entra tokens and three deployments."""
    async with LocalImagesServer(azure=MODE, api_keys={KEY}) as running:
        yield running


def arguments(
    server: LocalImagesServer, route: str, credential: str, clock: FakeClock, **more: Any
) -> dict[str, Any]:
    """The constructor's arguments for a route and a credential (deployment prod-images)."""
    options: dict[str, Any] = {
        "azure_endpoint": server.url,
        "api_version": VERSION if route == "deployments" else "v1",
        "azure_deployment": "prod-images",
        "deployment_model": "gpt-image-1.5",
        "max_retries": 0,
    }
    if credential == "key":
        options["api_key"] = KEY
    else:
        options["azure_ad_token_provider"] = Provider(clock)
    return {**options, **more}


def expected_path(route: str, endpoint: str, deployment: str = "prod-images") -> str:
    """Where a request of ``route`` lands on the server."""
    if route == "v1":
        return f"/openai/v1/images/{endpoint}"
    return f"/openai/deployments/{deployment}/images/{endpoint}"


def png_data_url(data: bytes) -> str:
    """``data`` as a PNG ``data:`` URL."""
    return "data:image/png;base64," + base64.b64encode(data).decode()


@pytest.fixture(params=[(route, credential) for route in ROUTES for credential in CREDENTIALS])
async def azure(
    request: pytest.FixtureRequest, server: LocalImagesServer, clock: FakeClock
) -> AsyncIterator[tuple[AsyncAzureImagesClient, str]]:
    """An async Azure client on each route with each credential, and the route's name."""
    route, credential = request.param
    async with AsyncAzureImagesClient(**arguments(server, route, credential, clock)) as client:
        yield client, route


# -- the matrix ---------------------------------------------------------------------------


async def test_generate(
    azure: tuple[AsyncAzureImagesClient, str], server: LocalImagesServer
) -> None:
    """A generation reaches the deployment; the request id is Azure's apim-request-id."""
    client, route = azure
    result = await client.generate(prompt="a harbour", quality="low", size="1024x1536")
    recorded = server.requests[-1]
    assert recorded.path == expected_path(route, "generations")
    assert result.usage is not None  # gpt-image-1.5 answered
    assert result.request_id == recorded.request_id
    assert result.data[0].b64_json
    # On the v1 route the deployment is the body's model; on the other, the path's.
    assert recorded.fields.get("model") == ("prod-images" if route == "v1" else None)


async def test_multi_image_edit_with_a_mask(
    azure: tuple[AsyncAzureImagesClient, str], server: LocalImagesServer
) -> None:
    """Two uploads and a mask go as multipart to the deployment's edits."""
    client, route = azure
    result = await client.edit(
        image=[make_png(64, 64), make_png(64, 64, shade=90)],
        mask=make_png(64, 64, alpha=True),
        prompt="a basket of both",
        quality="low",
    )
    recorded = server.requests[-1]
    assert recorded.path == expected_path(route, "edits")
    assert [part for part, *_ in recorded.files] == ["image[]", "image[]", "mask"]
    assert len(result.data) == 1


async def test_json_edit(
    azure: tuple[AsyncAzureImagesClient, str], server: LocalImagesServer
) -> None:
    """An edit by reference goes as JSON to the deployment's edits."""
    client, route = azure
    result = await client.edit(
        images=[ImageRef(image_url=png_data_url(make_png(32, 32)))],
        prompt="brighter",
        quality="low",
    )
    recorded = server.requests[-1]
    assert recorded.path == expected_path(route, "edits")
    assert recorded.content_type == "application/json"
    assert len(result.data) == 1


async def test_stream(azure: tuple[AsyncAzureImagesClient, str], server: LocalImagesServer) -> None:
    """A streamed generation yields its partial image, then the completed one."""
    client, route = azure
    stream = await client.generate(prompt="a kite", quality="low", stream=True, partial_images=1)
    async with stream:
        kinds = [event.type async for event in stream]
    assert kinds == ["image_generation.partial_image", "image_generation.completed"]
    assert stream.request_id == server.requests[-1].request_id
    assert server.requests[-1].path == expected_path(route, "generations")


async def test_batch(azure: tuple[AsyncAzureImagesClient, str], server: LocalImagesServer) -> None:
    """``map`` sends every request of a batch through the same route and credential."""
    client, route = azure
    requests = [GenerateRequest(prompt=f"a fox {i}", quality="low") for i in range(3)]
    async with client.map(requests, concurrency=2) as results:
        done = [result async for result in results]
    assert sorted(result.index for result in done) == [0, 1, 2]
    assert all(result.ok for result in done), [result.error for result in done]
    assert {recorded.path for recorded in server.requests} == {expected_path(route, "generations")}


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("credential", CREDENTIALS)
async def test_unknown_deployment(
    server: LocalImagesServer, clock: FakeClock, route: str, credential: str
) -> None:
    """A deployment the resource lacks is NotFoundError, with Azure's code and request id."""
    options = arguments(server, route, credential, clock, azure_deployment=None)
    del options["deployment_model"]
    async with AsyncAzureImagesClient(**options) as client:
        with pytest.raises(NotFoundError) as caught:
            await client.generate(prompt="a fox", model="gpt-image-2")
    assert caught.value.code == "DeploymentNotFound"
    assert caught.value.request_id == server.requests[-1].request_id
    assert server.requests[-1].path == expected_path(route, "generations", "gpt-image-2")


async def test_content_filter(
    azure: tuple[AsyncAzureImagesClient, str], server: LocalImagesServer
) -> None:
    """A filtered prompt is ModerationBlockedError, its filter results within reach."""
    client, _ = azure
    with pytest.raises(ModerationBlockedError) as caught:
        await client.generate(prompt="a scene of gore", quality="low")
    error = caught.value
    assert error.code == "contentFilter"
    assert error.request_id == server.requests[-1].request_id
    results = error.content_filter_results
    assert results is not None
    assert results["violence"]["filtered"] is True
    assert error.moderation_details is not None
    assert error.moderation_details.categories == ("violence",)


async def test_wrong_credential_is_401(server: LocalImagesServer, clock: FakeClock) -> None:
    """A key or token the resource refuses is AuthenticationError, on both routes."""
    for route in ROUTES:
        for credential in ({"api_key": "not-the-key-0123456789"}, {"azure_ad_token": "nope"}):
            options = arguments(server, route, "key", clock)
            del options["api_key"]
            async with AsyncAzureImagesClient(**options, **credential) as client:
                with pytest.raises(AuthenticationError) as caught:
                    await client.generate(prompt="a fox", quality="low")
            assert caught.value.status_code == 401
            assert caught.value.request_id == server.requests[-1].request_id


async def test_api_version_the_resource_does_not_serve(
    server: LocalImagesServer, clock: FakeClock
) -> None:
    """A well-formed version the resource lacks is Azure's 400, in Azure's shape."""
    options = arguments(server, "deployments", "key", clock, api_version="2030-01-01")
    async with AsyncAzureImagesClient(**options) as client:
        with pytest.raises(BadRequestError) as caught:
            await client.generate(prompt="a fox", quality="low")
    assert caught.value.code == "BadRequest"
    assert caught.value.type is None


@pytest.mark.usefixtures("no_azure_environment")
async def test_missing_or_malformed_api_version_fails_before_sending(
    server: LocalImagesServer,
) -> None:
    """No api_version (and none in OPENAI_API_VERSION), or a malformed one: nothing sent."""
    with pytest.raises(AzureSettingsError, match="No api_version"):
        AsyncAzureImagesClient(azure_endpoint=server.url, api_key=KEY)
    with pytest.raises(AzureSettingsError, match="dated version"):
        AsyncAzureImagesClient(azure_endpoint=server.url, api_key=KEY, api_version="2025-13-01")
    with pytest.raises(MissingAzureCredentialError):
        AsyncAzureImagesClient(azure_endpoint=server.url, api_version=VERSION)
    assert server.requests == []


async def test_old_api_version_refuses_edits_before_sending(
    server: LocalImagesServer, clock: FakeClock
) -> None:
    """Edits on a version older than image edits fail here, not as Azure's bare 404."""
    options = arguments(server, "deployments", "key", clock, api_version="2024-10-21")
    async with AsyncAzureImagesClient(**options) as client:
        with pytest.raises(AzureSettingsError, match="images/edits needs api_version"):
            await client.edit(image=make_png(32, 32), prompt="p")
    assert server.requests == []


# -- the deployment's model and the rules ---------------------------------------------------


@pytest.mark.parametrize("route", ROUTES)
async def test_a_deployment_name_that_is_no_model_skips_the_model_rules(
    server: LocalImagesServer, clock: FakeClock, route: str
) -> None:
    """Without deployment_model, a request gpt-image-1.5's rules would refuse goes out: the
    deployment (named flare) runs gpt-image-2.5-flare."""
    options = arguments(server, route, "key", clock, azure_deployment="flare")
    del options["deployment_model"]
    async with AsyncAzureImagesClient(**options) as client:
        result = await client.generate(prompt="a fox", size="1280x720", quality="xhigh")
    assert result.usage is not None
    assert result.quality == "xhigh"


@pytest.mark.parametrize("route", ROUTES)
async def test_deployment_model_applies_its_rules(
    server: LocalImagesServer, clock: FakeClock, route: str
) -> None:
    """deployment_model="gpt-image-2.5-flare" checks requests by that model's rules, before
    sending."""
    options = arguments(server, route, "key", clock, azure_deployment="flare")
    options["deployment_model"] = "gpt-image-2.5-flare"
    async with AsyncAzureImagesClient(**options) as client:
        with pytest.raises(RequestValidationError) as caught:
            await client.generate(prompt="a fox", size="1000x1000")  # not multiples of 16
        assert [violation.param for violation in caught.value.violations] == ["size"]
        assert server.requests == []
        result = await client.generate(prompt="a fox", size="1280x720", quality="xhigh")
    assert result.quality == "xhigh"  # gpt-image-2.5-flare answered


async def test_a_deployment_named_after_its_model_is_checked_as_that_model(
    server: LocalImagesServer, clock: FakeClock
) -> None:
    """A request's model names the deployment; a model name brings that model's rules."""
    options = arguments(server, "v1", "key", clock, azure_deployment=None)
    del options["deployment_model"]
    async with AsyncAzureImagesClient(**options) as client:
        with pytest.raises(RequestValidationError):
            await client.generate(prompt="a fox", model="gpt-image-1.5", quality="hd")
    assert server.requests == []


def test_an_unknown_deployment_model_is_refused() -> None:
    """deployment_model must be a model this version has rules for."""
    with pytest.raises(AzureSettingsError, match="deployment_model"):
        AsyncAzureImagesClient(
            azure_endpoint="https://res.openai.azure.com",
            api_version="v1",
            api_key=KEY,
            deployment_model="prod-images",
        )


async def test_v1_request_without_any_deployment_fails_before_sending(
    server: LocalImagesServer, clock: FakeClock
) -> None:
    """On the v1 route with no azure_deployment, a request must name one as its model."""
    options = arguments(server, "v1", "key", clock, azure_deployment=None)
    async with AsyncAzureImagesClient(**options) as client:
        with pytest.raises(AzureSettingsError, match="v1 route needs a deployment"):
            await client.generate(prompt="a fox")
    assert server.requests == []


# -- tokens, options, the sync client -------------------------------------------------------


async def test_provider_token_is_renewed_on_a_fake_clock(
    server: LocalImagesServer, clock: FakeClock
) -> None:
    """The provider is asked once while its token is fresh, again as it nears expiry."""
    options = arguments(server, "deployments", "provider", clock)
    provider: Provider = options["azure_ad_token_provider"]
    async with AsyncAzureImagesClient(**options) as client:
        await client.generate(prompt="one", quality="low")
        clock.now += 3000  # 10 minutes left: more than the 5-minute margin
        await client.generate(prompt="two", quality="low")
        assert provider.calls == 1
        clock.now += 400  # 200 s left
        await client.generate(prompt="three", quality="low")
    assert provider.calls == 2
    sent = [recorded.api_key for recorded in server.requests]
    assert sent == [redact_key(TOKENS[0])] * 2 + [redact_key(TOKENS[1])]


async def test_with_options_keeps_azure_and_a_key_replaces_the_token(
    server: LocalImagesServer, clock: FakeClock
) -> None:
    """A copy is an Azure client on the same route; ``api_key`` swaps the credential."""
    async with AsyncAzureImagesClient(**arguments(server, "v1", "provider", clock)) as client:
        copy = client.with_options(api_key=KEY, timeout=30)
        assert isinstance(copy, AsyncAzureImagesClient)
        await copy.generate(prompt="a fox", quality="low")
        assert server.requests[-1].api_key == redact_key(KEY)
        await copy.with_options(max_retries=1).generate(prompt="a fox", quality="low")
        assert server.requests[-1].api_key == redact_key(KEY)
        with pytest.raises(AzureSettingsError, match="base_url"):
            client.with_options(base_url="https://elsewhere.example/v1")
    assert repr(copy).startswith("AsyncAzureImagesClient(azure_endpoint=")


async def test_base_url_is_the_sdks(server: LocalImagesServer, clock: FakeClock) -> None:
    """``base_url`` reads as the official SDK's for each route."""
    for route, expected in (
        ("deployments", "/openai/deployments/prod-images"),
        ("v1", "/openai/v1"),
    ):
        async with AsyncAzureImagesClient(**arguments(server, route, "key", clock)) as client:
            assert client.base_url == server.url + expected
            assert client.api_version == (VERSION if route == "deployments" else "v1")
            assert client.azure_deployment == "prod-images"


@pytest.fixture
def sync_server() -> Iterator[LocalImagesServer]:
    """The Azure-mode server on a thread of its own, for the sync client."""
    with LocalImagesServer.in_thread(azure=MODE, api_keys={KEY}) as running:
        yield running


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("credential", CREDENTIALS)
def test_sync_client(
    sync_server: LocalImagesServer, clock: FakeClock, route: str, credential: str
) -> None:
    """The sync client: generate, multipart edit with a mask, JSON edit, stream, batch."""
    with AzureImagesClient(**arguments(sync_server, route, credential, clock)) as client:
        result = client.generate(prompt="a fox", quality="low")
        assert result.request_id == sync_server.requests[-1].request_id
        client.edit(
            image=[make_png(32, 32), make_png(32, 32, shade=9)],
            mask=make_png(32, 32, alpha=True),
            prompt="p",
            quality="low",
        )
        client.edit(images=[ImageRef(image_url=png_data_url(make_png(32, 32)))], prompt="p")
        with client.generate(prompt="a kite", quality="low", stream=True) as stream:
            assert [event.type for event in stream] == ["image_generation.completed"]
        with client.map([GenerateRequest(prompt="x", quality="low")] * 2) as results:
            assert all(item.ok for item in results)
        with pytest.raises(ModerationBlockedError):
            client.generate(prompt="gore", quality="low")
        assert isinstance(client.with_options(timeout=5), AzureImagesClient)
    paths = {recorded.path for recorded in sync_server.requests}
    assert paths == {expected_path(route, "generations"), expected_path(route, "edits")}
    assert repr(client).startswith("AzureImagesClient(azure_endpoint=")


def test_plain_http_to_a_remote_endpoint_warns() -> None:
    """Credentials over http:// to another machine warn when the client is made; a
    loopback endpoint (the local server) does not."""
    with pytest.warns(UserWarning, match="plain http"):
        AsyncAzureImagesClient(
            azure_endpoint="http://res.example.invalid", api_version="v1", api_key=KEY
        )
    AsyncAzureImagesClient(azure_endpoint="http://127.0.0.1:9", api_version="v1", api_key=KEY)
