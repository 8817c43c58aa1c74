"""The Azure OpenAI clients: ``AsyncAzureImagesClient`` and its sync twin ``AzureImagesClient``.

They are the OpenAI clients with Azure's ``Auth`` (``api-key`` or an Entra token), its
``Route`` (the deployments route or the v1 route) and its ``Deployment`` (the v1 route's
``model``, and the model the rules check by) plugged into the same ``Sender``: every
method, batch and stream takes the same road. The Azure parts are in ``_azure``.
"""

from __future__ import annotations

import functools
import time
import urllib.parse
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING

import attrs

from ._azure import AzureDeployment, AzureSettings, AzureSettingsError, AzureTokenProvider
from ._client import AsyncImagesClient
from ._config import ClientCertificate, Settings, Timeout, Verify
from ._send import Auth, Route
from ._send import _is_loopback as is_loopback
from ._sync import ImagesClient

if TYPE_CHECKING:
    pass

__all__ = ["AsyncAzureImagesClient", "AzureImagesClient"]

_now = time.time
"""The clock token providers' expiries are read by (a fake one in tests)."""


def _base_url(settings: AzureSettings) -> str:
    """The root the official SDK would call ``base_url`` for these settings."""
    root = f"{settings.azure_endpoint}/openai"
    if settings.v1_route:
        return f"{root}/v1"
    if settings.azure_deployment is not None:
        return f"{root}/deployments/{urllib.parse.quote(settings.azure_deployment, safe='')}"
    return root


class AsyncAzureImagesClient(AsyncImagesClient):
    """An asynchronous client for the Images API of an Azure OpenAI resource.

    The methods are ``AsyncImagesClient``'s. ``api_version="v1"`` takes the v1 route
    (``{endpoint}/openai/v1/images/...``, the deployment sent as ``model``); a dated version
    takes the deployments route (``{endpoint}/openai/deployments/{deployment}/images/...``).
    Without ``azure_deployment``, each request's ``model`` names the deployment.

    Settings you leave unset come from the official SDK's environment variables:
    ``AZURE_OPENAI_ENDPOINT``, ``OPENAI_API_VERSION``, then ``AZURE_OPENAI_AD_TOKEN`` or
    ``AZURE_OPENAI_API_KEY`` when no credential is passed. Settings that cannot work
    (no endpoint, a malformed version, no credential or two) fail here, before any request.

    Args:
        azure_endpoint: The resource's root, e.g. ``https://NAME.openai.azure.com``.
        api_version: A dated version such as ``"2025-04-01-preview"``, or ``"v1"``.
        azure_deployment: The deployment image requests go to.
        deployment_model: The model the deployment runs (``"gpt-image-1.5"``...), so requests
            are checked by that model's rules. Unset, a deployment named after a model is
            checked as that model, and any other name skips the model rules.
        api_key: A key, sent as ``api-key``.
        azure_ad_token: A Microsoft Entra token, sent as ``Authorization: Bearer``.
        azure_ad_token_provider: A callable, sync or async, returning an Entra token (a
            ``str`` or an ``AccessToken``); called again as the token nears its expiry.
        timeout: Seconds for a whole request, or a ``Timeout``.
        max_retries: Retries after a connection error, a timeout, 408, 409, 429 or 5xx.
        default_headers: Headers added to every request.
        validate: Check requests against the contract's rules before sending them.
        max_connections: Connections open at once.
        trust_env: Send requests through the proxies in ``HTTPS_PROXY``/``HTTP_PROXY``
            (except to hosts in ``NO_PROXY``); ``False`` connects directly.
        max_response_bytes: A larger response fails rather than filling memory.
        verify: Check the server's certificate against the system's CAs (``True``), a
            CA bundle file, or your ``ssl.SSLContext``; ``False`` turns checks off (warns).
        client_cert: A client certificate for gateways that ask for one (mutual TLS).

    Example:
        ```python
        async with AsyncAzureImagesClient(
            azure_endpoint="https://NAME.openai.azure.com",
            api_version="2025-04-01-preview",
            azure_deployment="gpt-image-1.5",
        ) as client:
            result = await client.generate(prompt="a red fox")
        ```
    """

    def __init__(
        self,
        *,
        azure_endpoint: str | None = None,
        api_version: str | None = None,
        azure_deployment: str | None = None,
        deployment_model: str | None = None,
        api_key: str | None = None,
        azure_ad_token: str | None = None,
        azure_ad_token_provider: AzureTokenProvider | None = None,
        timeout: float | Timeout | None = None,
        max_retries: int = 2,
        default_headers: Mapping[str, str] | None = None,
        validate: bool = True,
        max_connections: int = 100,
        trust_env: bool = True,
        max_response_bytes: int = 1 << 30,
        verify: Verify = True,
        client_cert: ClientCertificate | None = None,
    ) -> None:
        azure = AzureSettings.from_arguments(
            azure_endpoint=azure_endpoint,
            api_version=api_version,
            azure_deployment=azure_deployment,
            api_key=api_key,
            azure_ad_token=azure_ad_token,
            azure_ad_token_provider=azure_ad_token_provider,
        )
        deployment = AzureDeployment(
            v1_route=azure.v1_route,
            azure_deployment=azure.azure_deployment,
            deployment_model=deployment_model,
        )
        self._azure = azure
        _warn_if_plain_http(azure.azure_endpoint)
        super().__init__(
            # The key (if the credential is one) rides in the settings so that
            # with_options(api_key=...) can replace it; OpenAI's key is never read.
            api_key=azure.api_key or "",
            base_url=_base_url(azure),
            timeout=timeout,
            max_retries=max_retries,
            default_headers=default_headers,
            validate=validate,
            max_connections=max_connections,
            trust_env=trust_env,
            max_response_bytes=max_response_bytes,
            verify=verify,
            client_cert=client_cert,
        )
        self._sender.deployment = deployment

    def _auth_for(self, settings: Settings) -> Auth:
        """``api-key`` or an Entra token; a key given to ``with_options`` replaces either."""
        azure = self._azure
        if settings.api_key and settings.api_key != azure.api_key:
            azure = _with_key(azure, settings.api_key)
        return azure.auth(clock=_now)

    def _route_for(self, settings: Settings) -> Route:
        """The deployments route or the v1 route, as ``api_version`` says."""
        return self._azure.route()

    @property
    def api_version(self) -> str:
        """The ``api-version`` (``"v1"`` for the v1 route)."""
        return self._azure.api_version

    @property
    def azure_deployment(self) -> str | None:
        """The deployment image requests go to (``None``: each request's ``model``)."""
        return self._azure.azure_deployment

    def __repr__(self) -> str:
        azure = self._azure
        return (
            f"{type(self).__name__}(azure_endpoint={azure.azure_endpoint!r}, "
            f"api_version={azure.api_version!r}, azure_deployment={azure.azure_deployment!r})"
        )

    def with_options(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        organization: str | None = None,
        project: str | None = None,
        timeout: float | Timeout | None = None,
        max_retries: int | None = None,
        default_headers: Mapping[str, str] | None = None,
        validate: bool | None = None,
    ) -> AsyncAzureImagesClient:
        """A copy of the client with some settings changed, sharing its connections.

        ``api_key`` replaces the credential (a token too) with that key. Azure has no
        organization or project, and the endpoint belongs to the client: make another
        client for another resource.

        Example:
            ```python
            patient = client.with_options(timeout=600, max_retries=5)
            ```
        """
        if base_url is not None or organization is not None or project is not None:
            raise AzureSettingsError(
                "an Azure client takes no base_url, organization or project: make a new "
                "client with azure_endpoint=... for another resource"
            )
        copy = super().with_options(
            api_key=api_key,
            timeout=timeout,
            max_retries=max_retries,
            default_headers=default_headers,
            validate=validate,
        )
        assert isinstance(copy, AsyncAzureImagesClient)  # the base copies type(self)
        copy._azure = self._azure if api_key is None else _with_key(self._azure, api_key)
        return copy


def _warn_if_plain_http(endpoint: str) -> None:
    """Warn (once per client, when it is made) that credentials would cross the network
    unencrypted: ``http://`` to a host that is not this machine."""
    parts = urllib.parse.urlsplit(endpoint)
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        warnings.warn(
            f"Sending Azure credentials over plain http:// to {parts.hostname}; use https://",
            stacklevel=3,
        )


def _with_key(azure: AzureSettings, api_key: str) -> AzureSettings:
    return attrs.evolve(azure, api_key=api_key, azure_ad_token=None, azure_ad_token_provider=None)


class AzureImagesClient(ImagesClient):
    """A synchronous client for the Images API of an Azure OpenAI resource.

    It takes ``AsyncAzureImagesClient``'s arguments and has ``ImagesClient``'s methods.

    Example:
        ```python
        with AzureImagesClient(
            azure_endpoint="https://NAME.openai.azure.com", api_version="v1"
        ) as client:
            client.generate(prompt="a red fox", model="my-deployment").data[0].save("fox.png")
        ```
    """

    def __init__(
        self,
        *,
        azure_endpoint: str | None = None,
        api_version: str | None = None,
        azure_deployment: str | None = None,
        deployment_model: str | None = None,
        api_key: str | None = None,
        azure_ad_token: str | None = None,
        azure_ad_token_provider: AzureTokenProvider | None = None,
        timeout: float | Timeout | None = None,
        max_retries: int = 2,
        default_headers: Mapping[str, str] | None = None,
        validate: bool = True,
        max_connections: int = 100,
        trust_env: bool = True,
        max_response_bytes: int = 1 << 30,
        verify: Verify = True,
        client_cert: ClientCertificate | None = None,
    ) -> None:
        self._setup(
            functools.partial(
                AsyncAzureImagesClient,
                azure_endpoint=azure_endpoint,
                api_version=api_version,
                azure_deployment=azure_deployment,
                deployment_model=deployment_model,
                api_key=api_key,
                azure_ad_token=azure_ad_token,
                azure_ad_token_provider=azure_ad_token_provider,
                timeout=timeout,
                max_retries=max_retries,
                default_headers=default_headers,
                validate=validate,
                max_connections=max_connections,
                trust_env=trust_env,
                max_response_bytes=max_response_bytes,
                verify=verify,
                client_cert=client_cert,
            )
        )

    @property
    def api_version(self) -> str:
        """The ``api-version`` (``"v1"`` for the v1 route)."""
        return self._azure_twin.api_version

    @property
    def azure_deployment(self) -> str | None:
        """The deployment image requests go to (``None``: each request's ``model``)."""
        return self._azure_twin.azure_deployment

    @property
    def _azure_twin(self) -> AsyncAzureImagesClient:
        client = self._async
        assert isinstance(client, AsyncAzureImagesClient)
        return client

    def __repr__(self) -> str:
        return repr(self._azure_twin).removeprefix("Async")
