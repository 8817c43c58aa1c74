"""Azure OpenAI: where a request goes (two routes) and how it is authenticated (key or token).

An Azure OpenAI resource serves the Images API on two routes:

- the **deployments route**,
  ``{endpoint}/openai/deployments/{deployment}/images/{generations|edits|variations}``
  with a required ``?api-version=`` (a dated version such as ``2025-04-01-preview``);
- the **v1 route**, ``{endpoint}/openai/v1/images/...``, with no ``api-version`` and the
  deployment name sent as the body's ``model``. ``api_version="v1"`` selects it.

Credentials: an API key goes in the ``api-key`` header; a Microsoft Entra token (scope
``https://cognitiveservices.azure.com/.default``) in ``Authorization: Bearer``, either fixed
or from a provider called again when the token nears its expiry.

``AzureSettings.from_arguments`` reads the official SDK's environment variables
(``AZURE_OPENAI_ENDPOINT``, ``OPENAI_API_VERSION``, ``AZURE_OPENAI_API_KEY``,
``AZURE_OPENAI_AD_TOKEN``) and refuses, before anything is sent, a missing endpoint, a
missing or malformed ``api_version``, and a missing or doubled credential. Its ``route()`` and
``auth()`` are the ``Route`` and ``Auth`` a sender uses; they are structural, so this module
imports neither the sender nor aiohttp.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import inspect
import logging
import math
import os
import re
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Mapping
from typing import Protocol, TypeAlias, TypeVar

import anyio
import anyio.to_thread
import attrs
import orjson

from ._errors import MissingAPIKeyError, OpenAIImagesError
from ._requests import ImageRequest
from ._rules import MODELS

__all__ = [
    "DEFAULT_REFRESH_MARGIN",
    "EDITS_API_VERSION",
    "V1",
    "AccessTokenLike",
    "AzureDeployment",
    "AzureDeploymentsRoute",
    "AzureKeyAuth",
    "AzureSettings",
    "AzureSettingsError",
    "AzureTokenAuth",
    "AzureTokenProvider",
    "AzureTokenProviderAuth",
    "AzureV1Route",
    "MissingAzureCredentialError",
    "check_api_version",
    "token_expiry",
]

_logger = logging.getLogger("openai_images")

V1 = "v1"
"""The ``api_version`` that selects the v1 route (no ``api-version`` query is sent)."""

EDITS_API_VERSION = "2025-04-01-preview"
"""The first ``api-version`` with image edits: older ones answer edits with 404."""

DEFAULT_REFRESH_MARGIN = 300.0
"""Seconds before its expiry that a provided token is replaced (Azure's SDKs use 5 minutes)."""

_DATED = re.compile(r"([0-9]{4}-[0-9]{2}-[0-9]{2})(-preview)?")


class AzureSettingsError(OpenAIImagesError, ValueError):
    """Azure settings that cannot work: no endpoint, a malformed ``api_version``, two
    credentials, or a request the route cannot place. Raised before anything is sent."""


class MissingAzureCredentialError(MissingAPIKeyError):
    """No Azure credential in the arguments or the environment."""

    def __init__(self) -> None:
        OpenAIImagesError.__init__(
            self,
            "No Azure credential: pass api_key=..., azure_ad_token=... or "
            "azure_ad_token_provider=..., or set AZURE_OPENAI_API_KEY or AZURE_OPENAI_AD_TOKEN.",
        )


class AccessTokenLike(Protocol):
    """A token with its expiry, as ``azure.core.credentials.AccessToken`` has them.

    Attributes:
        token: The bearer token.
        expires_on: When it expires, in seconds since the Unix epoch.
    """

    @property
    def token(self) -> str: ...

    @property
    def expires_on(self) -> float: ...


_Provided: TypeAlias = str | AccessTokenLike
AzureTokenProvider: TypeAlias = Callable[[], _Provided | Awaitable[_Provided]]
"""A callable, sync or async, returning an Entra token: a ``str``, or an object with
``token`` and ``expires_on`` (such as azure-identity's ``AccessToken``)."""


def check_api_version(api_version: str) -> str:
    """``api_version`` if it is ``"v1"`` or a real date, optionally ``-preview``.

    Raises:
        AzureSettingsError: Anything else, with an example of a good value.

    Example:
        >>> check_api_version("2025-04-01-preview")
        '2025-04-01-preview'
        >>> check_api_version("2025-04-31")
        Traceback (most recent call last):
        ...
        openai_images._azure.AzureSettingsError: api_version must be a dated version such as \
'2025-04-01-preview' or '2024-10-21', or 'v1' for the v1 route; got '2025-04-31'
    """
    matched = _DATED.fullmatch(api_version)
    if api_version == V1:
        return api_version
    if matched is not None:
        try:
            datetime.date.fromisoformat(matched.group(1))
        except ValueError:
            pass
        else:
            return api_version
    raise AzureSettingsError(
        f"api_version must be a dated version such as '{EDITS_API_VERSION}' or '2024-10-21', "
        f"or 'v1' for the v1 route; got {api_version!r}"
    )


def _check_endpoint(endpoint: str) -> str:
    parts = urllib.parse.urlsplit(endpoint.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise AzureSettingsError(
            "azure_endpoint must be an http(s) URL such as 'https://NAME.openai.azure.com'; "
            f"got {endpoint!r}"
        )
    path = parts.path.rstrip("/")
    if "/openai/" in path + "/":
        raise AzureSettingsError(
            "azure_endpoint is the resource's root, such as 'https://NAME.openai.azure.com', "
            f"without '/openai/...' (the route adds it); got {endpoint!r}"
        )
    if parts.query or parts.fragment:
        raise AzureSettingsError(
            f"azure_endpoint takes no query or fragment (api_version sets the query); "
            f"got {endpoint!r}"
        )
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def _relative(path: str) -> str:
    return path.lstrip("/")


@attrs.frozen(kw_only=True)
class AzureDeploymentsRoute:
    """The deployments route: ``{endpoint}/openai/deployments/{deployment}/{path}?api-version=``.

    Image paths go to a deployment: ``azure_deployment``, else the request's ``model``
    (taken as a deployment name, as the official SDK does). Other paths (``files``,
    ``batches``) go to ``{endpoint}/openai/{path}``, with the same ``api-version``.

    Example:
        >>> route = AzureDeploymentsRoute(azure_endpoint="https://res.openai.azure.com",
        ...                               api_version="2025-04-01-preview")
        >>> route.url("images/edits", model="prod-images")
        ('https://res.openai.azure.com/openai/deployments/prod-images/images/edits', \
{'api-version': '2025-04-01-preview'})
    """

    azure_endpoint: str = attrs.field(converter=_check_endpoint)
    api_version: str = attrs.field(converter=check_api_version)
    azure_deployment: str | None = None

    @api_version.validator
    def _dated(self, _: object, api_version: str) -> None:
        if api_version == V1:
            raise AzureSettingsError(
                "the deployments route needs a dated api_version such as "
                f"'{EDITS_API_VERSION}'; 'v1' selects the v1 route"
            )

    def url(self, path: str, *, model: str | None = None) -> tuple[str, Mapping[str, str]]:
        """The absolute URL for an API-relative ``path`` and the ``api-version`` query.

        Raises:
            AzureSettingsError: An image request with neither ``azure_deployment`` nor a
                ``model`` to name the deployment, or an edit on an ``api_version`` older
                than image edits.
        """
        path = _relative(path)
        params = {"api-version": self.api_version}
        if not path.startswith("images/"):
            return f"{self.azure_endpoint}/openai/{path}", params
        deployment = self.azure_deployment or model
        if not deployment:
            raise AzureSettingsError(
                "an image request on the deployments route needs a deployment: pass "
                "azure_deployment=... to the client, or model=<deployment name>"
            )
        if path != "images/generations" and self.api_version[:10] < EDITS_API_VERSION[:10]:
            raise AzureSettingsError(
                f"{path} needs api_version '{EDITS_API_VERSION}' or later (Azure answers "
                f"older versions with 404); got {self.api_version!r}"
            )
        quoted = urllib.parse.quote(deployment, safe="")
        return f"{self.azure_endpoint}/openai/deployments/{quoted}/{path}", params


@attrs.frozen(kw_only=True)
class AzureV1Route:
    """The v1 route: ``{endpoint}/openai/v1/{path}``, no query; the deployment is the ``model``.

    Example:
        >>> AzureV1Route(azure_endpoint="https://res.openai.azure.com/").url("images/generations")
        ('https://res.openai.azure.com/openai/v1/images/generations', {})
    """

    azure_endpoint: str = attrs.field(converter=_check_endpoint)

    def url(self, path: str, *, model: str | None = None) -> tuple[str, Mapping[str, str]]:
        """The absolute URL for an API-relative ``path``; ``model`` travels in the body."""
        return f"{self.azure_endpoint}/openai/v1/{_relative(path)}", {}


_R = TypeVar("_R", bound=ImageRequest)


def _known_model(_: object, __: object, model: str | None) -> None:
    if model is not None and model not in MODELS:
        raise AzureSettingsError(
            f"deployment_model {model!r} is not a model this version knows "
            f"({', '.join(sorted(MODELS))}); leave it unset to skip the model rules"
        )


@attrs.frozen(kw_only=True)
class AzureDeployment:
    """What Azure changes in an image request: the deployment's name and model.

    On the v1 route the deployment is the body's ``model``: a request without one gets
    ``azure_deployment``. The contract's model rules are checked by the model the
    deployment runs: ``deployment_model`` when given, else the deployment's name, so a
    deployment named after its model (``gpt-image-1.5``) is checked as that model and one
    named otherwise (``prod-images``) skips the model rules (the common rules still apply).

    Attributes:
        v1_route: Whether requests take the v1 route.
        azure_deployment: The client's deployment, if any.
        deployment_model: The model the deployment runs, if the user says.

    Example:
        >>> from openai_images import GenerateRequest
        >>> deployment = AzureDeployment(v1_route=True, azure_deployment="prod-images",
        ...                              deployment_model="gpt-image-1.5")
        >>> deployment.sent(GenerateRequest(prompt="a fox")).model
        'prod-images'
        >>> deployment.checked(GenerateRequest(prompt="a fox")).model
        'gpt-image-1.5'
    """

    v1_route: bool
    azure_deployment: str | None = None
    deployment_model: str | None = attrs.field(default=None, validator=_known_model)

    def deployment_of(self, request: ImageRequest) -> str | None:
        """The deployment a request goes to (as each route picks it)."""
        if self.v1_route:
            return request.model or self.azure_deployment
        return self.azure_deployment or request.model

    def sent(self, request: _R) -> _R:
        """The request as it goes out: on the v1 route, ``model`` names the deployment.

        Raises:
            AzureSettingsError: A v1 request with neither ``model`` nor ``azure_deployment``.
        """
        if not self.v1_route or request.model is not None:
            return request
        if self.azure_deployment is None:
            raise AzureSettingsError(
                "an image request on the v1 route needs a deployment: pass "
                "azure_deployment=... to the client, or model=<deployment name>"
            )
        return attrs.evolve(request, model=self.azure_deployment)

    def checked(self, request: _R) -> _R:
        """The request as the model rules see it: ``model`` is the deployment's model."""
        model = self.deployment_model or self.deployment_of(request)
        if model is None or model == request.model:
            return request
        return attrs.evolve(request, model=model)


def _hidden(secret: str | None) -> str:
    return "None" if secret is None else "'***'"


def _provider_repr(provider: AzureTokenProvider | None) -> str:
    if provider is None:
        return "None"
    name = getattr(provider, "__qualname__", None) or type(provider).__qualname__
    return f"<provider {name}>"


def _non_empty(name: str) -> Callable[[object, object, str], None]:
    def check(_: object, __: object, value: str) -> None:
        if not value:
            raise AzureSettingsError(f"{name} is empty")

    return check


@attrs.frozen(kw_only=True)
class AzureKeyAuth:
    """An API key in the ``api-key`` header.

    Example:
        >>> AzureKeyAuth(api_key="0123456789abcdef")
        AzureKeyAuth(api_key='***')
    """

    api_key: str = attrs.field(repr=_hidden, validator=_non_empty("api_key"))

    async def headers(self) -> Mapping[str, str]:
        """``{"api-key": KEY}``."""
        return {"api-key": self.api_key}


@attrs.frozen(kw_only=True)
class AzureTokenAuth:
    """A fixed Microsoft Entra token in ``Authorization: Bearer``.

    Example:
        >>> AzureTokenAuth(azure_ad_token="eyJ0eXAi...")
        AzureTokenAuth(azure_ad_token='***')
    """

    azure_ad_token: str = attrs.field(repr=_hidden, validator=_non_empty("azure_ad_token"))

    async def headers(self) -> Mapping[str, str]:
        """``{"Authorization": "Bearer TOKEN"}``."""
        return {"Authorization": f"Bearer {self.azure_ad_token}"}


def token_expiry(token: str) -> float | None:
    """The ``exp`` claim of a JWT (Entra tokens are JWTs), read without verifying it.

    Only the time is read, to know when to ask for a new token; the API checks the token.

    Example:
        >>> token_expiry("opaque-token") is None
        True
    """
    parts = token.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1]
    try:
        claims = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (binascii.Error, ValueError):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    if isinstance(exp, bool) or not isinstance(exp, (int, float)) or not math.isfinite(exp):
        return None
    return float(exp)


@attrs.frozen
class _Token:
    value: str = attrs.field(repr=False)
    refresh_at: float
    expires_at: float


class AzureTokenProviderAuth:
    """Entra tokens from a provider, in ``Authorization: Bearer``, renewed as they near expiry.

    How the expiry is known, in order:

    1. the provider returns an object with ``token`` and ``expires_on`` (Unix seconds), as
       azure-identity's ``credential.get_token(scope)`` does (a ``refresh_on``, when set,
       brings the renewal forward);
    2. it returns a ``str`` that is a JWT: its ``exp`` claim (Entra tokens are JWTs);
    3. otherwise the expiry is unknown and the provider is called before every request, as
       the official SDK does (a provider from ``get_bearer_token_provider`` caches by itself).

    A token is replaced ``refresh_margin`` seconds before it expires. One call renews it for
    all concurrent requests. If a renewal fails while the current token is still valid, the
    current one is used (and the failure logged); once expired, the provider's exception
    propagates. A sync provider runs in a worker thread, so a slow credential never blocks
    the event loop.

    Args:
        provider: A sync or async callable returning a ``str`` or an ``AccessTokenLike``.
        refresh_margin: Seconds before expiry to renew.
        clock: Seconds since the Unix epoch (a fake clock in tests).

    Example:
        ```python
        from azure.identity.aio import DefaultAzureCredential

        credential = DefaultAzureCredential()

        async def entra_token():
            return await credential.get_token("https://cognitiveservices.azure.com/.default")

        auth = AzureTokenProviderAuth(entra_token)
        ```
    """

    def __init__(
        self,
        provider: AzureTokenProvider,
        *,
        refresh_margin: float = DEFAULT_REFRESH_MARGIN,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not callable(provider):
            raise AzureSettingsError(
                f"azure_ad_token_provider must be callable, got {type(provider).__name__}"
            )
        if not refresh_margin >= 0:
            raise AzureSettingsError(f"refresh_margin must be 0 or more, got {refresh_margin}")
        self._provider = provider
        self._refresh_margin = refresh_margin
        self._clock = clock
        self._token: _Token | None = None
        self._renewing = anyio.Lock()

    def __repr__(self) -> str:
        return (
            f"AzureTokenProviderAuth(provider={_provider_repr(self._provider)}, "
            f"refresh_margin={self._refresh_margin})"
        )

    async def headers(self) -> Mapping[str, str]:
        """``{"Authorization": "Bearer TOKEN"}`` with a token that is not about to expire."""
        return {"Authorization": f"Bearer {await self._current()}"}

    async def _current(self) -> str:
        token = self._token
        if token is not None and self._clock() < token.refresh_at:
            return token.value
        async with self._renewing:
            token = self._token
            now = self._clock()
            if token is not None and now < token.refresh_at:
                return token.value  # renewed by a request that held the lock first
            try:
                fresh = await self._fetch(now)
            except Exception:
                if token is None or now >= token.expires_at:
                    raise
                _logger.warning(
                    "azure_ad_token_provider failed; using the current token, valid for "
                    "%.0f s more",
                    token.expires_at - now,
                    exc_info=True,
                )
                return token.value
            self._token = fresh
            return fresh.value

    async def _fetch(self, now: float) -> _Token:
        provider = self._provider
        if inspect.iscoroutinefunction(provider):
            provided: object = provider()
        else:
            provided = await anyio.to_thread.run_sync(provider)
        if inspect.isawaitable(provided):
            provided = await provided
        return self._read(provided, now)

    def _read(self, provided: object, now: float) -> _Token:
        value: object = provided
        expires_at: float | None = None
        refresh_on: object = None
        if isinstance(provided, str):
            expires_at = token_expiry(provided)
        else:
            value = getattr(provided, "token", None)
            expires_on = getattr(provided, "expires_on", None)
            refresh_on = getattr(provided, "refresh_on", None)
            if isinstance(expires_on, (int, float)) and not isinstance(expires_on, bool):
                expires_at = float(expires_on)
            if not isinstance(value, str) or expires_at is None:
                raise AzureSettingsError(
                    "azure_ad_token_provider must return a str or an object with 'token' "
                    f"and 'expires_on' (such as AccessToken); got {type(provided).__name__}"
                )
        if not isinstance(value, str) or not value:
            raise AzureSettingsError("azure_ad_token_provider returned an empty token")
        if expires_at is None:
            return _Token(value, refresh_at=now, expires_at=now)  # unknown: ask every time
        refresh_at = expires_at - self._refresh_margin
        if isinstance(refresh_on, (int, float)) and not isinstance(refresh_on, bool):
            refresh_at = min(refresh_at, float(refresh_on))
        return _Token(value, refresh_at=refresh_at, expires_at=expires_at)


AzureAuth: TypeAlias = AzureKeyAuth | AzureTokenAuth | AzureTokenProviderAuth
AzureRoute: TypeAlias = AzureDeploymentsRoute | AzureV1Route


@attrs.frozen(kw_only=True)
class AzureSettings:
    """Resolved Azure settings of one client. Keys and tokens never appear in a repr.

    Attributes:
        azure_endpoint: The resource's root, e.g. ``https://NAME.openai.azure.com``.
        api_version: A dated version (the deployments route) or ``"v1"`` (the v1 route).
        azure_deployment: The deployment image requests go to; ``None`` uses each
            request's ``model`` as the deployment name.
        api_key: Sent as ``api-key``.
        azure_ad_token: A fixed Entra token, sent as ``Authorization: Bearer``.
        azure_ad_token_provider: Called for Entra tokens (see ``AzureTokenProviderAuth``).

    Example:
        >>> settings = AzureSettings.from_arguments(
        ...     azure_endpoint="https://res.openai.azure.com", api_version="v1",
        ...     api_key="0123456789abcdef", environ={})
        >>> settings.route().url("images/generations")
        ('https://res.openai.azure.com/openai/v1/images/generations', {})
        >>> settings.auth()
        AzureKeyAuth(api_key='***')
    """

    azure_endpoint: str = attrs.field(converter=_check_endpoint)
    api_version: str = attrs.field(converter=check_api_version)
    azure_deployment: str | None = None
    api_key: str | None = attrs.field(default=None, repr=_hidden)
    azure_ad_token: str | None = attrs.field(default=None, repr=_hidden)
    azure_ad_token_provider: AzureTokenProvider | None = attrs.field(
        default=None, repr=_provider_repr
    )

    def __attrs_post_init__(self) -> None:
        given = [
            credential
            for credential in (self.api_key, self.azure_ad_token, self.azure_ad_token_provider)
            if credential is not None
        ]
        if not given:
            raise MissingAzureCredentialError()
        if len(given) > 1:
            raise AzureSettingsError(
                "api_key, azure_ad_token and azure_ad_token_provider exclude each other: "
                "pass only one"
            )
        for name in ("api_key", "azure_ad_token", "azure_deployment"):
            if getattr(self, name) == "":
                raise AzureSettingsError(f"{name} is empty")

    @classmethod
    def from_arguments(
        cls,
        *,
        azure_endpoint: str | None = None,
        api_version: str | None = None,
        azure_deployment: str | None = None,
        api_key: str | None = None,
        azure_ad_token: str | None = None,
        azure_ad_token_provider: AzureTokenProvider | None = None,
        environ: Mapping[str, str] = os.environ,
    ) -> AzureSettings:
        """Fill unset settings from the official SDK's environment variables.

        ``AZURE_OPENAI_ENDPOINT`` and ``OPENAI_API_VERSION`` fill their settings. Only when
        no credential is passed does the environment supply one: ``AZURE_OPENAI_AD_TOKEN``
        first, then ``AZURE_OPENAI_API_KEY``.

        Raises:
            AzureSettingsError: No endpoint or api_version, a malformed one, or two
                credentials passed.
            MissingAzureCredentialError: No credential anywhere.
        """
        endpoint = azure_endpoint or environ.get("AZURE_OPENAI_ENDPOINT") or None
        if endpoint is None:
            raise AzureSettingsError(
                "No Azure endpoint: pass azure_endpoint='https://NAME.openai.azure.com' or "
                "set AZURE_OPENAI_ENDPOINT."
            )
        version = api_version or environ.get("OPENAI_API_VERSION") or None
        if version is None:
            raise AzureSettingsError(
                f"No api_version: pass api_version='{EDITS_API_VERSION}' (the deployments "
                "route) or api_version='v1' (the v1 route), or set OPENAI_API_VERSION."
            )
        if api_key is None and azure_ad_token is None and azure_ad_token_provider is None:
            azure_ad_token = environ.get("AZURE_OPENAI_AD_TOKEN") or None
            if azure_ad_token is None:
                api_key = environ.get("AZURE_OPENAI_API_KEY") or None
        return cls(
            azure_endpoint=endpoint,
            api_version=version,
            azure_deployment=azure_deployment,
            api_key=api_key,
            azure_ad_token=azure_ad_token,
            azure_ad_token_provider=azure_ad_token_provider,
        )

    @property
    def v1_route(self) -> bool:
        """Whether requests take the v1 route (``api_version="v1"``)."""
        return self.api_version == V1

    def route(self) -> AzureRoute:
        """The route these settings select."""
        if self.v1_route:
            return AzureV1Route(azure_endpoint=self.azure_endpoint)
        return AzureDeploymentsRoute(
            azure_endpoint=self.azure_endpoint,
            api_version=self.api_version,
            azure_deployment=self.azure_deployment,
        )

    def auth(self, *, clock: Callable[[], float] = time.time) -> AzureAuth:
        """The credential's ``Auth``; each call makes a new one (a provider's cache is its own)."""
        if self.api_key is not None:
            return AzureKeyAuth(api_key=self.api_key)
        if self.azure_ad_token is not None:
            return AzureTokenAuth(azure_ad_token=self.azure_ad_token)
        assert self.azure_ad_token_provider is not None  # __attrs_post_init__ saw one
        return AzureTokenProviderAuth(self.azure_ad_token_provider, clock=clock)
