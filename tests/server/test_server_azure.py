"""The local server's Azure OpenAI mode, raw and through the official SDK's Azure clients."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import openai
import pytest
from hypothesis import given
from hypothesis import strategies as st
from multidict import CIMultiDict

from openai_images.testing import AzureMode, LocalImagesServer
from openai_images.testing._azure import DEFAULT_API_VERSIONS, AzureRejection

from ._support import assert_error, assert_matches, data_url, decode, form, picture

pytestmark = pytest.mark.anyio

VERSION = "2025-04-01-preview"
KEY = "azure-key-0123456789abcdef"
TOKEN = "entra-token-0123456789"
MODE = AzureMode(
    deployments={
        "prod-images": "gpt-image-1.5",
        "flare": "gpt-image-2.5-flare",
        "gpt-image-1.5": "gpt-image-1.5",
    },
    ad_tokens={TOKEN},
)


@pytest.fixture
async def azure() -> AsyncIterator[LocalImagesServer]:
    """A server in Azure mode with one key, one Entra token and three deployments."""
    async with LocalImagesServer(azure=MODE, api_keys={KEY}) as running:
        yield running


@pytest.fixture
async def raw() -> AsyncIterator[aiohttp.ClientSession]:
    """A raw aiohttp session that sends no credential of its own."""
    async with aiohttp.ClientSession() as session:
        yield session


def deployment_url(
    server: LocalImagesServer, endpoint: str, deployment: str = "prod-images"
) -> str:
    """The deployments route of ``endpoint``, without its query."""
    return f"{server.url}/openai/deployments/{deployment}/images/{endpoint}"


async def post(
    http: aiohttp.ClientSession, url: str, **kwargs: Any
) -> tuple[int, CIMultiDict[str], Any]:
    """POST; return the status, the headers and the decoded JSON body."""
    kwargs.setdefault("headers", {"api-key": KEY})
    async with http.post(url, **kwargs) as response:
        return response.status, CIMultiDict(response.headers), await response.json()


def assert_azure_error(body: Any, *, code: str) -> None:
    """``body`` is Azure's error shape: a code and a message, and no ``type``."""
    assert set(body) == {"error"}, body
    assert "type" not in body["error"], body
    assert body["error"]["code"] == code, body
    assert body["error"]["message"], body


# -- routes and api-version -----------------------------------------------------------------


async def test_deployments_route_answers_with_the_deployments_model(
    azure: LocalImagesServer, raw: aiohttp.ClientSession
) -> None:
    """The deployment's model makes the images; the request id comes as apim-request-id."""
    status, headers, body = await post(
        raw,
        deployment_url(azure, "generations"),
        params={"api-version": VERSION},
        json={"prompt": "a harbour", "quality": "low", "size": "1024x1536"},
    )
    assert status == 200, body
    assert_matches(body, "ImagesResponse")
    assert decode(body["data"][0]["b64_json"]).size == (1024, 1536)
    assert "usage" in body  # a GPT image model answered, though the body named no model
    assert "x-request-id" not in headers
    assert headers["apim-request-id"] == azure.requests[-1].request_id
    assert "openai-version" not in headers
    recorded = azure.requests[-1]
    assert recorded.path == "/openai/deployments/prod-images/images/generations"
    assert recorded.fields == {"prompt": "a harbour", "quality": "low", "size": "1024x1536"}


async def test_v1_route_takes_the_deployment_as_model(
    azure: LocalImagesServer, raw: aiohttp.ClientSession
) -> None:
    """On /openai/v1 the body's model names the deployment; no api-version is needed."""
    status, _, body = await post(
        raw,
        f"{azure.url}/openai/v1/images/generations",
        json={"prompt": "a harbour", "model": "flare", "quality": "xhigh", "size": "1280x720"},
    )
    assert status == 200, body
    # Only a 2.5 model takes xhigh with a custom size: gpt-image-2.5-flare answered.
    assert body["quality"] == "xhigh"
    assert decode(body["data"][0]["b64_json"]).size == (1280, 720)
    assert azure.requests[-1].fields["model"] == "flare"  # recorded as sent


async def test_v1_route_without_model_is_refused(
    azure: LocalImagesServer, raw: aiohttp.ClientSession
) -> None:
    """Without a model the v1 route cannot tell which deployment is meant."""
    status, _, body = await post(
        raw, f"{azure.url}/openai/v1/images/generations", json={"prompt": "a harbour"}
    )
    assert status == 400
    assert_azure_error(body, code="missing_required_parameter")
    assert body["error"]["param"] == "model"


@pytest.mark.parametrize("route", ["deployments", "v1"])
async def test_unknown_deployment_is_404(
    azure: LocalImagesServer, raw: aiohttp.ClientSession, route: str
) -> None:
    """A deployment the resource does not have is Azure's DeploymentNotFound."""
    if route == "deployments":
        url = deployment_url(azure, "generations", deployment="gpt-image-2")
        body_json: dict[str, Any] = {"prompt": "a harbour"}
    else:
        url = f"{azure.url}/openai/v1/images/generations"
        body_json = {"prompt": "a harbour", "model": "gpt-image-2"}
    status, _, body = await post(raw, url, params={"api-version": VERSION}, json=body_json)
    assert status == 404
    assert_azure_error(body, code="DeploymentNotFound")
    assert "gpt-image-2" in body["error"]["message"]


@pytest.mark.parametrize("legacy", [False, True])
async def test_azure_true_deploys_the_models_served(
    raw: aiohttp.ClientSession, legacy: bool
) -> None:
    """``azure=True`` deploys today's models under their own names, and the retired ones
    only on a legacy server (elsewhere they are no deployment at all)."""
    async with LocalImagesServer(azure=True, legacy=legacy) as server:
        answers = {}
        for deployment in ("gpt-image-1.5", "gpt-image-2.5-flare", "gpt-image-1"):
            answers[deployment] = await post(
                raw,
                deployment_url(server, "generations", deployment=deployment),
                params={"api-version": VERSION},
                json={"prompt": "a harbour", "quality": "low"},
                headers={"api-key": "k"},
            )
    assert answers["gpt-image-1.5"][0] == 200, answers["gpt-image-1.5"][2]
    assert answers["gpt-image-2.5-flare"][0] == 200, answers["gpt-image-2.5-flare"][2]
    status, _, body = answers["gpt-image-1"]
    if legacy:
        assert status == 200, body
    else:
        assert status == 404
        assert_azure_error(body, code="DeploymentNotFound")


async def test_missing_api_version_is_resource_not_found(
    azure: LocalImagesServer, raw: aiohttp.ClientSession
) -> None:
    """Azure answers a deployments request without api-version with a bare 404."""
    status, headers, body = await post(
        raw, deployment_url(azure, "generations"), json={"prompt": "a harbour"}
    )
    assert (status, body) == (404, {"error": {"code": "404", "message": "Resource not found"}})
    assert "apim-request-id" in headers
    assert azure.requests[-1].fields == {}  # refused before the body was read


@pytest.mark.parametrize("version", ["2023-01-01", "2025-04-01-Preview", "latest", "2025-4-1"])
async def test_unknown_api_version_is_not_supported(
    azure: LocalImagesServer, raw: aiohttp.ClientSession, version: str
) -> None:
    """A malformed or unknown api-version is a 400 BadRequest."""
    status, _, body = await post(
        raw,
        deployment_url(azure, "generations"),
        params={"api-version": version},
        json={"prompt": "a harbour"},
    )
    assert status == 400
    assert body == {"error": {"code": "BadRequest", "message": "API version not supported"}}


async def test_old_api_version_has_no_edits(
    azure: LocalImagesServer, raw: aiohttp.ClientSession
) -> None:
    """An api-version from before image edits answers edits with 404, generations with 200."""
    upload = form({"prompt": "add a boat"}, [("image", "a.png", picture(32, 32), "image/png")])
    status, _, body = await post(
        raw, deployment_url(azure, "edits"), params={"api-version": "2024-10-21"}, data=upload
    )
    assert (status, body["error"]["code"]) == (404, "404")
    status, _, body = await post(
        raw,
        deployment_url(azure, "generations"),
        params={"api-version": "2024-10-21"},
        json={"prompt": "a harbour", "quality": "low"},
    )
    assert status == 200, body


async def test_openai_routes_are_not_served(
    azure: LocalImagesServer, raw: aiohttp.ClientSession
) -> None:
    """In Azure mode /v1/images/... is an unknown route, in Azure's 404 shape."""
    status, _, body = await post(raw, f"{azure.base_url}/images/generations", json={})
    assert (status, body) == (404, {"error": {"code": "404", "message": "Resource not found"}})


async def test_validation_errors_keep_the_openai_shape(
    azure: LocalImagesServer, raw: aiohttp.ClientSession
) -> None:
    """A broken rule of the deployment's model is refused as the image service words it."""
    status, _, body = await post(
        raw,
        deployment_url(azure, "generations"),
        params={"api-version": VERSION},
        json={"prompt": "a harbour", "size": "1280x720"},
    )
    assert status == 400
    assert_error(body, param="size", code="invalid_value")


async def test_multipart_edit_on_the_deployments_route(
    azure: LocalImagesServer, raw: aiohttp.ClientSession
) -> None:
    """A multipart edit with two images and a mask, the model taken from the deployment."""
    upload = form(
        {"prompt": "both in a basket", "quality": "low"},
        [
            ("image[]", "a.png", picture(64, 64), "image/png"),
            ("image[]", "b.png", picture(64, 64), "image/png"),
            ("mask", "m.png", picture(64, 64, alpha=True), "image/png"),
        ],
    )
    status, _, body = await post(
        raw, deployment_url(azure, "edits"), params={"api-version": VERSION}, data=upload
    )
    assert status == 200, body
    assert decode(body["data"][0]["b64_json"]).size == (1024, 1024)


async def test_json_edit_on_the_v1_route(
    azure: LocalImagesServer, raw: aiohttp.ClientSession
) -> None:
    """A JSON edit by data: URL, the deployment named by model, made by the deployment's model."""
    status, _, body = await post(
        raw,
        f"{azure.url}/openai/v1/images/edits",
        json={
            "model": "prod-images",
            "prompt": "repaint it",
            "quality": "low",
            "images": [{"image_url": data_url(picture(32, 32))}],
        },
    )
    assert status == 200, body
    assert "usage" in body


# -- auth -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"api-key": KEY}, 200),
        ({"Authorization": f"Bearer {TOKEN}"}, 200),
        ({"api-key": KEY, "Authorization": "Bearer wrong"}, 200),  # api-key wins
        ({}, 401),
        ({"api-key": "wrong-key"}, 401),
        ({"Authorization": "Bearer wrong"}, 401),
        ({"Authorization": f"Bearer {KEY}"}, 401),  # a key is no token on this route
        ({"Authorization": TOKEN}, 401),  # no scheme
    ],
)
async def test_deployments_route_auth(
    azure: LocalImagesServer,
    raw: aiohttp.ClientSession,
    headers: dict[str, str],
    status: int,
) -> None:
    """api-key carries keys and Bearer carries Entra tokens; failures are Azure's 401."""
    answered, _, body = await post(
        raw,
        deployment_url(azure, "generations"),
        params={"api-version": VERSION},
        json={"prompt": "a harbour", "quality": "low"},
        headers=headers,
    )
    assert answered == status, body
    if status == 401:
        assert_azure_error(body, code="401")
        assert azure.requests[-1].api_key is None
    else:
        assert azure.requests[-1].api_key is not None
        assert KEY not in azure.requests[-1].api_key


async def test_v1_route_takes_a_key_as_bearer(
    azure: LocalImagesServer, raw: aiohttp.ClientSession
) -> None:
    """The v1 route accepts a key in Authorization: Bearer, as the plain OpenAI client sends."""
    status, _, body = await post(
        raw,
        f"{azure.url}/openai/v1/images/generations",
        json={"prompt": "a harbour", "model": "flare", "quality": "low"},
        headers={"Authorization": f"Bearer {KEY}"},
    )
    assert status == 200, body


# -- content filter and rate limits ---------------------------------------------------------


async def test_content_filter_refusal(azure: LocalImagesServer, raw: aiohttp.ClientSession) -> None:
    """A blocked word is a 400 contentFilter naming the prompt, with each category's result."""
    status, _, body = await post(
        raw,
        deployment_url(azure, "generations"),
        params={"api-version": VERSION},
        json={"prompt": "a scene full of Gore", "quality": "low"},
    )
    assert status == 400
    assert_azure_error(body, code="contentFilter")
    assert body["error"]["param"] == "prompt"
    inner = body["error"]["innererror"]
    assert inner["code"] == "ResponsibleAIPolicyViolation"
    assert inner["content_filter_results"] == {
        "hate": {"filtered": False, "severity": "safe"},
        "self_harm": {"filtered": False, "severity": "safe"},
        "sexual": {"filtered": False, "severity": "safe"},
        "violence": {"filtered": True, "severity": "high"},
    }


async def test_content_filter_words_are_configurable(raw: aiohttp.ClientSession) -> None:
    """Configured words trip their own category, on multipart edits and on the v1 route."""
    mode = AzureMode(blocked_words={"Spiders": "hate"})
    async with LocalImagesServer(azure=mode) as server:
        upload = form(
            {"prompt": "add spiders", "model": "gpt-image-1.5", "quality": "low"},
            [("image", "a.png", picture(32, 32), "image/png")],
        )
        status, _, body = await post(
            raw, f"{server.url}/openai/v1/images/edits", data=upload, headers={"api-key": "k"}
        )
        assert status == 400
        results = body["error"]["innererror"]["content_filter_results"]
        assert [name for name, result in results.items() if result["filtered"]] == ["hate"]
        status, _, body = await post(
            raw,
            f"{server.url}/openai/v1/images/generations",
            json={"prompt": "a gore-free meadow", "model": "gpt-image-1.5", "quality": "low"},
            headers={"api-key": "k"},
        )
        assert status == 200, body  # the default words are replaced, not extended


def test_blocked_words_need_a_known_category() -> None:
    """A category the filter does not report is refused when the mode is made."""
    with pytest.raises(ValueError, match="unknown category"):
        AzureMode(blocked_words={"spiders": "creepy"})


def test_api_versions_must_be_well_formed() -> None:
    """The versions a mode accepts are dated versions."""
    with pytest.raises(ValueError, match="dated version"):
        AzureMode(api_versions={"2025-02-30"})
    with pytest.raises(ValueError, match="v1 route"):
        AzureMode(api_versions={"v1"})


async def test_rate_limit_in_azure_shape(raw: aiohttp.ClientSession) -> None:
    """A 429 carries retry-after and Azure's body."""
    async with LocalImagesServer(azure=True, requests_per_minute=1) as server:
        url = f"{server.url}/openai/v1/images/generations"
        body_json = {"prompt": "a harbour", "model": "gpt-image-1.5", "quality": "low"}
        status, _, _ = await post(raw, url, json=body_json, headers={"api-key": "k"})
        assert status == 200
        status, headers, body = await post(raw, url, json=body_json, headers={"api-key": "k"})
    assert status == 429
    assert_azure_error(body, code="429")
    assert int(headers["retry-after"]) >= 1


@given(st.text(max_size=24))
def test_place_refuses_every_unknown_api_version(version: str) -> None:
    """Any api-version outside the accepted set is refused, never let through."""
    query = {"api-version": version} if version else {}
    if version in DEFAULT_API_VERSIONS:
        placed = MODE.place(endpoint="generations", deployment="prod-images", query=query)
        assert placed.apply({"prompt": "x"})["model"] == "gpt-image-1.5"
        return
    with pytest.raises(AzureRejection) as caught:
        MODE.place(endpoint="generations", deployment="prod-images", query=query)
    expected = (404, "404") if not version else (400, "BadRequest")
    assert (caught.value.status, caught.value.code) == expected


# -- the official SDK's Azure clients -------------------------------------------------------


@pytest.fixture
async def sdk(azure: LocalImagesServer) -> AsyncIterator[openai.AsyncAzureOpenAI]:
    """The official AsyncAzureOpenAI for the server, with a key and a deployment."""
    async with openai.AsyncAzureOpenAI(
        azure_endpoint=azure.url,
        api_version=VERSION,
        api_key=KEY,
        azure_deployment="prod-images",
        max_retries=0,
    ) as client:
        yield client


async def test_sdk_generate(sdk: openai.AsyncAzureOpenAI, azure: LocalImagesServer) -> None:
    """AzureOpenAI generates through the deployments route with its api-version."""
    result = await sdk.images.generate(prompt="a kite", model="prod-images", quality="low")
    assert result.usage is not None
    assert decode((result.data or [])[0].b64_json or "").size == (1024, 1024)
    assert azure.requests[-1].path == "/openai/deployments/prod-images/images/generations"


async def test_sdk_without_deployment_puts_the_model_in_the_path(
    azure: LocalImagesServer,
) -> None:
    """Without azure_deployment the SDK routes by the model, which names the deployment."""
    async with openai.AsyncAzureOpenAI(
        azure_endpoint=azure.url, api_version=VERSION, api_key=KEY, max_retries=0
    ) as client:
        result = await client.images.generate(prompt="a kite", model="flare", quality="low")
    assert len(result.data or []) == 1
    assert azure.requests[-1].path == "/openai/deployments/flare/images/generations"


async def test_sdk_edit_with_several_images_and_a_mask(
    sdk: openai.AsyncAzureOpenAI, azure: LocalImagesServer
) -> None:
    """A multi-image edit with a mask reaches the edits route of the deployment."""
    result = await sdk.images.edit(
        image=[("a.png", picture(64, 64), "image/png"), ("b.png", picture(64, 64), "image/png")],
        mask=("mask.png", picture(64, 64, alpha=True), "image/png"),
        prompt="a basket of both",
        model="prod-images",
        quality="low",
        size="1536x1024",
    )
    assert decode((result.data or [])[0].b64_json or "").size == (1536, 1024)
    recorded = azure.requests[-1]
    assert recorded.path == "/openai/deployments/prod-images/images/edits"
    assert [part for part, *_ in recorded.files] == ["image[]", "image[]", "mask"]


async def test_sdk_streaming_generate_and_edit(sdk: openai.AsyncAzureOpenAI) -> None:
    """Streams work on the deployments route, for generations and edits."""
    stream = await sdk.images.generate(
        prompt="a kite", model="prod-images", quality="low", stream=True, partial_images=1
    )
    events = [event async for event in stream]
    assert [event.type for event in events] == [
        "image_generation.partial_image",
        "image_generation.completed",
    ]
    completed = events[-1]
    assert completed.type == "image_generation.completed"
    assert decode(base64.b64decode(completed.b64_json)).size == (1024, 1024)
    edits = await sdk.images.edit(
        image=("a.png", picture(64, 64), "image/png"),
        prompt="add stars",
        model="prod-images",
        quality="low",
        stream=True,
    )
    assert [event.type async for event in edits] == ["image_edit.completed"]


async def test_sdk_token_provider(azure: LocalImagesServer) -> None:
    """An async token provider sends Authorization: Bearer; a wrong token is a 401."""
    calls: list[str] = []

    async def provider() -> str:
        calls.append("token")
        return TOKEN if len(calls) == 1 else "expired-token"

    async with openai.AsyncAzureOpenAI(
        azure_endpoint=azure.url,
        api_version=VERSION,
        azure_ad_token_provider=provider,
        azure_deployment="prod-images",
        max_retries=0,
    ) as client:
        await client.images.generate(prompt="a kite", model="prod-images", quality="low")
        assert azure.requests[-1].api_key is not None
        assert azure.requests[-1].api_key.endswith(TOKEN[-4:])
        with pytest.raises(openai.AuthenticationError) as caught:
            await client.images.generate(prompt="a kite", model="prod-images", quality="low")
    assert caught.value.code == "401"
    assert caught.value.type is None  # Azure's bodies have no type
    assert len(calls) == 2


async def test_sdk_content_filter(sdk: openai.AsyncAzureOpenAI) -> None:
    """The SDK sees the content filter as a BadRequestError with code contentFilter."""
    with pytest.raises(openai.BadRequestError) as caught:
        await sdk.images.generate(prompt="gore", model="prod-images")
    assert caught.value.code == "contentFilter"
    assert caught.value.param == "prompt"
    body = caught.value.body
    assert isinstance(body, dict)
    assert body["innererror"]["content_filter_results"]["violence"]["filtered"] is True


@pytest.mark.parametrize("credential", ["key", "token"])
async def test_plain_openai_client_on_the_v1_route(
    azure: LocalImagesServer, credential: str
) -> None:
    """The plain OpenAI client with base_url {endpoint}/openai/v1/ generates, edits and streams."""

    async def token() -> str:
        return TOKEN

    api_key = KEY if credential == "key" else token
    async with openai.AsyncOpenAI(
        api_key=api_key, base_url=f"{azure.url}/openai/v1/", max_retries=0
    ) as client:
        result = await client.images.generate(prompt="a kite", model="flare", quality="low")
        assert len(result.data or []) == 1
        edited = await client.images.edit(
            image=[("a.png", picture(64, 64), "image/png")],
            mask=("mask.png", picture(64, 64, alpha=True), "image/png"),
            prompt="add a boat",
            model="prod-images",
            quality="low",
        )
        assert decode((edited.data or [])[0].b64_json or "").size == (1024, 1024)
        stream = await client.images.generate(
            prompt="a kite", model="prod-images", quality="low", stream=True
        )
        assert [event.type async for event in stream] == ["image_generation.completed"]
    assert {request.path for request in azure.requests} == {
        "/openai/v1/images/generations",
        "/openai/v1/images/edits",
    }


def test_sync_azure_client_against_a_threaded_server() -> None:
    """The synchronous AzureOpenAI works against a server running in a thread."""
    with (
        LocalImagesServer.in_thread(azure=True) as server,
        openai.AzureOpenAI(
            azure_endpoint=server.url, api_version=VERSION, api_key="k", max_retries=0
        ) as client,
    ):
        result = client.images.generate(prompt="a kite", model="gpt-image-1.5", quality="low")
    assert len(result.data or []) == 1
    assert server.requests[-1].path == "/openai/deployments/gpt-image-1.5/images/generations"
