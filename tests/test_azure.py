"""Azure settings, routes and auth (``openai_images._azure``), called directly, no sender."""

from __future__ import annotations

import base64
import datetime
import logging
import threading
from collections.abc import Mapping
from typing import Any, NamedTuple

import anyio
import attrs
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from openai_images import GenerateRequest, MissingAPIKeyError
from openai_images._azure import (
    AzureDeployment,
    AzureDeploymentsRoute,
    AzureKeyAuth,
    AzureSettings,
    AzureSettingsError,
    AzureTokenAuth,
    AzureTokenProviderAuth,
    AzureV1Route,
    MissingAzureCredentialError,
    check_api_version,
    token_expiry,
)

ENDPOINT = "https://res.openai.azure.com"
VERSION = "2025-04-01-preview"
KEY = "key-0123456789abcdef0123"
TOKEN = "token-abcdefghij0123456789"


class FakeClock:
    """Seconds since the epoch that move only when a test says so."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class AccessToken(NamedTuple):
    """The shape of azure-core's ``AccessToken``."""

    token: str
    expires_on: int


class AccessTokenInfo(NamedTuple):
    """The shape of azure-core's ``AccessTokenInfo``, with its ``refresh_on``."""

    token: str
    expires_on: int
    refresh_on: int | None = None


def jwt(claims: Mapping[str, Any]) -> str:
    """An unsigned JWT carrying ``claims``."""

    def part(data: Mapping[str, Any]) -> str:
        return base64.urlsafe_b64encode(orjson.dumps(data)).decode().rstrip("=")

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}.signature"


# -- api_version ----------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["2025-04-01-preview", "2024-10-21", "v1", "2024-02-29"])
def test_good_api_versions(version: str) -> None:
    """Dated versions (with or without -preview) and 'v1' pass as they are."""
    assert check_api_version(version) == version


@pytest.mark.parametrize(
    "version",
    ["", "2025-04-01-Preview", "2025-4-1", "2023-02-29", "latest", "v2", " 2024-10-21", "2024-10"],
)
def test_bad_api_versions_are_refused_with_an_example(version: str) -> None:
    """Anything else is refused, naming the value and a good one."""
    with pytest.raises(AzureSettingsError, match="2025-04-01-preview") as caught:
        check_api_version(version)
    assert repr(version) in str(caught.value)
    assert isinstance(caught.value, ValueError)


@given(st.one_of(st.text(max_size=24), st.dates().map(str), st.dates().map("{}-preview".format)))
def test_api_version_check_agrees_with_the_calendar(version: str) -> None:
    """A version passes exactly when it is 'v1' or a real date, optionally -preview."""
    date = version.removesuffix("-preview")
    try:
        real = datetime.date.fromisoformat(date).isoformat() == date
    except ValueError:
        real = False
    if version == "v1" or real:
        assert check_api_version(version) == version
    else:
        with pytest.raises(AzureSettingsError):
            check_api_version(version)


# -- routes ---------------------------------------------------------------------------------


def test_deployments_route_uses_the_configured_deployment() -> None:
    """Image paths go to azure_deployment, whatever the model, with the api-version query."""
    route = AzureDeploymentsRoute(
        azure_endpoint=f"{ENDPOINT}/", api_version=VERSION, azure_deployment="prod images"
    )
    for endpoint in ("generations", "edits", "variations"):
        url, params = route.url(f"images/{endpoint}", model="gpt-image-1.5")
        assert url == f"{ENDPOINT}/openai/deployments/prod%20images/images/{endpoint}"
        assert params == {"api-version": VERSION}


def test_deployments_route_takes_the_model_as_deployment() -> None:
    """Without azure_deployment the model names the deployment; a leading slash is fine."""
    route = AzureDeploymentsRoute(azure_endpoint=ENDPOINT, api_version=VERSION)
    url, _ = route.url("/images/generations", model="my/images")
    assert url == f"{ENDPOINT}/openai/deployments/my%2Fimages/images/generations"


def test_deployments_route_without_any_deployment_is_refused() -> None:
    """No deployment and no model: a clear error before sending."""
    route = AzureDeploymentsRoute(azure_endpoint=ENDPOINT, api_version=VERSION)
    with pytest.raises(AzureSettingsError, match="azure_deployment"):
        route.url("images/generations")


def test_deployments_route_sends_other_paths_under_openai() -> None:
    """Files and batches are not per deployment, and keep the api-version."""
    route = AzureDeploymentsRoute(
        azure_endpoint=ENDPOINT, api_version="2024-10-21", azure_deployment="d"
    )
    assert route.url("batches/b_1/cancel") == (
        f"{ENDPOINT}/openai/batches/b_1/cancel",
        {"api-version": "2024-10-21"},
    )


def test_old_api_version_refuses_edits_but_not_generations() -> None:
    """Edits and variations need 2025-04-01-preview or later; generations do not."""
    route = AzureDeploymentsRoute(
        azure_endpoint=ENDPOINT, api_version="2024-10-21", azure_deployment="d"
    )
    assert route.url("images/generations")[0].endswith("/deployments/d/images/generations")
    for path in ("images/edits", "images/variations"):
        with pytest.raises(AzureSettingsError, match="2025-04-01-preview"):
            route.url(path)
    later = AzureDeploymentsRoute(
        azure_endpoint=ENDPOINT, api_version="2025-04-01", azure_deployment="d"
    )
    assert later.url("images/edits")[0].endswith("/images/edits")


def test_deployments_route_refuses_v1() -> None:
    """'v1' is the other route's selector, not a version of this one."""
    with pytest.raises(AzureSettingsError, match="v1 route"):
        AzureDeploymentsRoute(azure_endpoint=ENDPOINT, api_version="v1")


def test_v1_route_has_no_query() -> None:
    """The v1 route puts every path under /openai/v1 and adds no api-version."""
    route = AzureV1Route(azure_endpoint=f"{ENDPOINT}/")
    assert route.url("images/edits", model="prod") == (f"{ENDPOINT}/openai/v1/images/edits", {})
    assert route.url("files")[0] == f"{ENDPOINT}/openai/v1/files"


def test_endpoint_with_a_path_prefix_is_kept() -> None:
    """A gateway's path prefix stays in front of /openai."""
    route = AzureV1Route(azure_endpoint="http://127.0.0.1:8080/gateway/")
    assert route.url("images/generations")[0] == (
        "http://127.0.0.1:8080/gateway/openai/v1/images/generations"
    )


@pytest.mark.parametrize(
    ("endpoint", "message"),
    [
        ("res.openai.azure.com", "http"),
        ("ftp://res.openai.azure.com", "http"),
        ("https://", "http"),
        (f"{ENDPOINT}/openai", "without '/openai"),
        (f"{ENDPOINT}/openai/v1/", "without '/openai"),
        (f"{ENDPOINT}/openai/deployments/d", "without '/openai"),
        (f"{ENDPOINT}?api-version=2024-10-21", "no query"),
    ],
)
def test_bad_endpoints_are_refused(endpoint: str, message: str) -> None:
    """An endpoint that is not a resource's root says what it should be."""
    with pytest.raises(AzureSettingsError, match=message):
        AzureV1Route(azure_endpoint=endpoint)


# -- settings from arguments and the environment --------------------------------------------


def test_settings_from_the_environment() -> None:
    """Endpoint, api-version and key come from the SDK's variables."""
    environ = {
        "AZURE_OPENAI_ENDPOINT": ENDPOINT,
        "OPENAI_API_VERSION": VERSION,
        "AZURE_OPENAI_API_KEY": KEY,
    }
    settings = AzureSettings.from_arguments(azure_deployment="d", environ=environ)
    assert (settings.azure_endpoint, settings.api_version, settings.api_key) == (
        ENDPOINT,
        VERSION,
        KEY,
    )
    assert isinstance(settings.route(), AzureDeploymentsRoute)
    assert (
        settings.route().url("images/edits")[0] == f"{ENDPOINT}/openai/deployments/d/images/edits"
    )


def test_arguments_win_over_the_environment() -> None:
    """Passed values win; a passed credential keeps the environment's out entirely."""
    environ = {
        "AZURE_OPENAI_ENDPOINT": "https://other.openai.azure.com",
        "OPENAI_API_VERSION": "2024-10-21",
        "AZURE_OPENAI_AD_TOKEN": TOKEN,
    }
    settings = AzureSettings.from_arguments(
        azure_endpoint=ENDPOINT, api_version="v1", api_key=KEY, environ=environ
    )
    assert (settings.azure_endpoint, settings.api_version) == (ENDPOINT, "v1")
    assert (settings.api_key, settings.azure_ad_token) == (KEY, None)
    assert isinstance(settings.route(), AzureV1Route)


def test_environment_token_wins_over_environment_key() -> None:
    """With no credential passed, AZURE_OPENAI_AD_TOKEN comes before AZURE_OPENAI_API_KEY."""
    environ = {"AZURE_OPENAI_AD_TOKEN": TOKEN, "AZURE_OPENAI_API_KEY": KEY}
    settings = AzureSettings.from_arguments(
        azure_endpoint=ENDPOINT, api_version=VERSION, environ=environ
    )
    assert (settings.azure_ad_token, settings.api_key) == (TOKEN, None)
    assert isinstance(settings.auth(), AzureTokenAuth)


def test_a_provider_keeps_the_environment_out() -> None:
    """A token provider is a credential: the environment's key is not added to it."""
    settings = AzureSettings.from_arguments(
        azure_endpoint=ENDPOINT,
        api_version=VERSION,
        azure_ad_token_provider=lambda: TOKEN,
        environ={"AZURE_OPENAI_API_KEY": KEY},
    )
    assert settings.api_key is None
    assert isinstance(settings.auth(), AzureTokenProviderAuth)


def test_empty_environment_values_count_as_unset() -> None:
    """An exported but empty variable is no setting."""
    environ = {"AZURE_OPENAI_AD_TOKEN": "", "AZURE_OPENAI_API_KEY": KEY, "OPENAI_API_VERSION": ""}
    with pytest.raises(AzureSettingsError, match="No api_version"):
        AzureSettings.from_arguments(azure_endpoint=ENDPOINT, environ=environ)
    settings = AzureSettings.from_arguments(
        azure_endpoint=ENDPOINT, api_version=VERSION, environ=environ
    )
    assert settings.api_key == KEY


def test_missing_endpoint_api_version_and_credential() -> None:
    """Each missing setting is its own clear error, naming its variable."""
    with pytest.raises(AzureSettingsError, match="AZURE_OPENAI_ENDPOINT"):
        AzureSettings.from_arguments(api_version=VERSION, api_key=KEY, environ={})
    with pytest.raises(AzureSettingsError, match="OPENAI_API_VERSION"):
        AzureSettings.from_arguments(azure_endpoint=ENDPOINT, api_key=KEY, environ={})
    with pytest.raises(MissingAzureCredentialError, match="AZURE_OPENAI_API_KEY") as caught:
        AzureSettings.from_arguments(azure_endpoint=ENDPOINT, api_version=VERSION, environ={})
    assert isinstance(caught.value, MissingAPIKeyError)


def test_two_credentials_are_refused() -> None:
    """api_key, azure_ad_token and azure_ad_token_provider exclude each other."""
    with pytest.raises(AzureSettingsError, match="exclude each other") as caught:
        AzureSettings.from_arguments(
            azure_endpoint=ENDPOINT,
            api_version=VERSION,
            api_key=KEY,
            azure_ad_token=TOKEN,
            environ={},
        )
    assert KEY not in str(caught.value)
    assert TOKEN not in str(caught.value)


@pytest.mark.parametrize("name", ["api_key", "azure_ad_token", "azure_deployment"])
def test_empty_settings_are_refused(name: str) -> None:
    """An empty key, token or deployment is refused when settings are made."""
    arguments: dict[str, Any] = {"api_key": KEY, name: ""}
    if name == "azure_ad_token":
        arguments["api_key"] = None
    with pytest.raises(AzureSettingsError, match=f"{name} is empty"):
        AzureSettings(azure_endpoint=ENDPOINT, api_version=VERSION, **arguments)


def test_malformed_api_version_in_settings() -> None:
    """A malformed api_version (here from the environment) is refused when settings are made."""
    with pytest.raises(AzureSettingsError, match="dated version"):
        AzureSettings.from_arguments(
            azure_endpoint=ENDPOINT, api_key=KEY, environ={"OPENAI_API_VERSION": "2025-13-01"}
        )


def test_reprs_never_show_a_secret() -> None:
    """Settings and every auth hide the key and the token."""

    def entra_token() -> str:
        return TOKEN

    shown = [
        repr(AzureSettings(azure_endpoint=ENDPOINT, api_version=VERSION, api_key=KEY)),
        repr(AzureSettings(azure_endpoint=ENDPOINT, api_version=VERSION, azure_ad_token=TOKEN)),
        repr(AzureKeyAuth(api_key=KEY)),
        repr(AzureTokenAuth(azure_ad_token=TOKEN)),
        repr(AzureTokenProviderAuth(entra_token)),
    ]
    assert not [text for text in shown if KEY in text or TOKEN in text], shown
    assert "entra_token" in shown[-1]


# -- auth headers ---------------------------------------------------------------------------


@pytest.mark.anyio
async def test_key_and_token_headers() -> None:
    """A key goes in api-key, a token in Authorization: Bearer."""
    assert await AzureKeyAuth(api_key=KEY).headers() == {"api-key": KEY}
    assert await AzureTokenAuth(azure_ad_token=TOKEN).headers() == {
        "Authorization": f"Bearer {TOKEN}"
    }


def test_empty_credentials_are_refused() -> None:
    """An empty key or token is a settings error, not a 401 later."""
    with pytest.raises(AzureSettingsError, match="api_key is empty"):
        AzureKeyAuth(api_key="")
    with pytest.raises(AzureSettingsError, match="azure_ad_token is empty"):
        AzureTokenAuth(azure_ad_token="")


class Provider:
    """A sync token provider handing out numbered tokens that live ``lifetime`` seconds."""

    def __init__(self, clock: FakeClock, lifetime: float = 3600.0) -> None:
        self.clock = clock
        self.lifetime = lifetime
        self.calls = 0
        self.threads: set[int] = set()

    def __call__(self) -> AccessToken:
        self.calls += 1
        self.threads.add(threading.get_ident())
        return AccessToken(f"token-{self.calls}", int(self.clock() + self.lifetime))


async def bearer(auth: AzureTokenProviderAuth) -> str:
    """The token an auth sends now."""
    return (await auth.headers())["Authorization"].removeprefix("Bearer ")


@pytest.mark.anyio
async def test_provider_token_is_reused_until_it_nears_expiry() -> None:
    """An AccessToken is kept until refresh_margin before expires_on, then renewed."""
    clock = FakeClock()
    provider = Provider(clock, lifetime=3600)
    auth = AzureTokenProviderAuth(provider, refresh_margin=300, clock=clock)
    assert await bearer(auth) == "token-1"
    clock.now += 3299
    assert await bearer(auth) == "token-1"
    clock.now += 1
    assert await bearer(auth) == "token-2"
    assert provider.calls == 2
    assert threading.get_ident() not in provider.threads  # sync providers run in a thread


@pytest.mark.anyio
async def test_async_provider_and_refresh_on() -> None:
    """An async provider's AccessTokenInfo is renewed at its refresh_on when that is sooner."""
    clock = FakeClock(0)
    calls: list[float] = []

    async def provider() -> AccessTokenInfo:
        calls.append(clock())
        return AccessTokenInfo(f"token-{len(calls)}", expires_on=3600, refresh_on=1800)

    auth = AzureTokenProviderAuth(provider, clock=clock)
    assert await bearer(auth) == "token-1"
    clock.now = 1799
    assert await bearer(auth) == "token-1"
    clock.now = 1800
    assert await bearer(auth) == "token-2"


@pytest.mark.anyio
async def test_jwt_string_is_renewed_by_its_exp_claim() -> None:
    """A plain str that is a JWT is kept until its exp claim nears."""
    clock = FakeClock(1000)
    tokens = [jwt({"exp": 1000 + 3600, "n": n}) for n in range(2)]
    calls: list[str] = []

    def provider() -> str:
        calls.append("call")
        return tokens[len(calls) - 1]

    auth = AzureTokenProviderAuth(provider, refresh_margin=60, clock=clock)
    assert await bearer(auth) == tokens[0]
    clock.now += 3539
    assert await bearer(auth) == tokens[0]
    clock.now += 1
    assert await bearer(auth) == tokens[1]


@pytest.mark.anyio
async def test_opaque_string_asks_the_provider_every_time() -> None:
    """Without a known expiry the provider is called before each request, as the SDK does."""
    calls: list[str] = []

    def provider() -> str:
        calls.append("call")
        return f"opaque-{len(calls)}"

    auth = AzureTokenProviderAuth(provider, clock=FakeClock())
    assert [await bearer(auth) for _ in range(3)] == ["opaque-1", "opaque-2", "opaque-3"]


@pytest.mark.anyio
async def test_concurrent_requests_share_one_renewal() -> None:
    """Ten requests needing a token at once make one provider call."""
    clock = FakeClock()
    calls: list[str] = []
    release = anyio.Event()

    async def provider() -> AccessToken:
        calls.append("call")
        await release.wait()
        return AccessToken("shared", int(clock() + 3600))

    auth = AzureTokenProviderAuth(provider, clock=clock)
    seen: list[str] = []

    async def one() -> None:
        seen.append(await bearer(auth))

    async with anyio.create_task_group() as group:
        for _ in range(10):
            group.start_soon(one)
        await anyio.wait_all_tasks_blocked()
        release.set()
    assert seen == ["shared"] * 10
    assert calls == ["call"]


@pytest.mark.anyio
async def test_failed_renewal_keeps_a_valid_token(caplog: pytest.LogCaptureFixture) -> None:
    """A renewal that fails while the token is valid keeps it; once expired, the error shows."""
    clock = FakeClock()
    outcomes: list[AccessToken | Exception] = [
        AccessToken("first", int(clock() + 600)),
        ConnectionError("Entra is down"),
        ConnectionError("Entra is still down"),
    ]

    async def provider() -> AccessToken:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    auth = AzureTokenProviderAuth(provider, refresh_margin=300, clock=clock)
    assert await bearer(auth) == "first"
    clock.now += 400  # inside the margin: renewal is due, the token still valid
    with caplog.at_level(logging.WARNING, logger="openai_images"):
        assert await bearer(auth) == "first"
    assert "azure_ad_token_provider failed" in caplog.text
    assert "first" not in caplog.text
    clock.now += 200  # expired
    with pytest.raises(ConnectionError, match="still down"):
        await auth.headers()


@pytest.mark.anyio
@pytest.mark.parametrize(
    "returned",
    [None, "", 42, AccessToken("", 10**10), AccessTokenInfo("t", None), b"bytes-token"],
)
async def test_provider_returning_no_token_is_refused(returned: object) -> None:
    """A provider returning anything but a token is a clear settings error."""
    auth = AzureTokenProviderAuth(lambda: returned, clock=FakeClock())
    with pytest.raises(AzureSettingsError, match="azure_ad_token_provider"):
        await auth.headers()


@pytest.mark.anyio
async def test_callable_object_with_async_call() -> None:
    """An object whose __call__ is async works like an async function."""

    class Credential:
        async def __call__(self) -> str:
            return TOKEN

    assert await bearer(AzureTokenProviderAuth(Credential(), clock=FakeClock())) == TOKEN


def test_provider_must_be_callable_and_margin_not_negative() -> None:
    """A token where a provider belongs, or a negative margin, is refused at once."""
    with pytest.raises(AzureSettingsError, match="callable"):
        AzureTokenProviderAuth(TOKEN)
    with pytest.raises(AzureSettingsError, match="refresh_margin"):
        AzureTokenProviderAuth(lambda: TOKEN, refresh_margin=-1)


@given(st.text(max_size=200))
def test_token_expiry_never_fails(token: str) -> None:
    """Any text reads as an expiry or as none, never as an exception."""
    expiry = token_expiry(token)
    assert expiry is None or isinstance(expiry, float)


@given(st.integers(min_value=0, max_value=2**40), st.dictionaries(st.text(), st.text()))
def test_token_expiry_reads_the_exp_claim(exp: int, other: dict[str, str]) -> None:
    """A JWT's exp claim is read back whatever else it carries."""
    assert token_expiry(jwt({**other, "exp": exp})) == float(exp)
    assert token_expiry(jwt({"exp": "soon"})) is None


# -- the deployment: the v1 route's model, the model the rules see -------------------------

_names = st.one_of(st.none(), st.sampled_from(["prod-images", "gpt-image-1", "dall-e-2", "x"]))


@given(
    v1_route=st.booleans(),
    azure_deployment=_names,
    deployment_model=st.one_of(st.none(), st.sampled_from(["gpt-image-1", "dall-e-3"])),
    model=_names,
    size=st.one_of(st.none(), st.sampled_from(["1024x1024", "256x256"])),
)
def test_deployment_changes_only_the_model(
    v1_route: bool,
    azure_deployment: str | None,
    deployment_model: str | None,
    model: str | None,
    size: str | None,
) -> None:
    """``sent`` fills the v1 route's model with the deployment (or refuses a request naming
    none); ``checked`` gives the rules the deployment's model, or its name. Nothing else
    of the request changes."""
    deployment = AzureDeployment(
        v1_route=v1_route, azure_deployment=azure_deployment, deployment_model=deployment_model
    )
    request = GenerateRequest(prompt="p", model=model, size=size)
    named = (model or azure_deployment) if v1_route else (azure_deployment or model)
    assert deployment.deployment_of(request) == named
    if v1_route and named is None:
        with pytest.raises(AzureSettingsError, match="v1 route needs a deployment"):
            deployment.sent(request)
    else:
        sent = deployment.sent(request)
        assert sent.model == (named if v1_route else model)
        assert attrs.evolve(sent, model=model) == request
    checked = deployment.checked(request)
    assert checked.model == (deployment_model or named)
    assert attrs.evolve(checked, model=model) == request


def test_deployment_model_must_be_known() -> None:
    """A deployment_model without rules here is refused, naming the models there are."""
    with pytest.raises(AzureSettingsError, match="gpt-image-1"):
        AzureDeployment(v1_route=True, deployment_model="prod-images")
