"""The local server's Azure OpenAI mode: routes, ``api-version``, keys and tokens, Azure's errors.

``LocalImagesServer(azure=True)`` (or ``azure=AzureMode(...)``) answers like an Azure OpenAI
resource instead of the OpenAI API. Two routes reach the same image endpoints::

    POST /openai/deployments/{deployment}/images/{generations|edits|variations}?api-version=...
    POST /openai/v1/images/{generations|edits|variations}      (the deployment name is "model")

Everything Azure-specific is decided here, sans-I/O; the server only calls in:

- ``place`` reads the route: on the deployments route ``api-version`` is required (missing:
  Azure's 404 "Resource not found"; unknown or malformed: 400 "API version not supported";
  older than ``2025-04-01-preview`` on edits and variations: 404, as Azure answers an old version),
  and the deployment must exist (404 ``DeploymentNotFound``). It returns a ``Placement``
  that rewrites the body's ``model`` to the model the deployment runs, and refuses prompts
  that trip the content filter (400 ``contentFilter`` with its filter results).
- ``authenticate`` takes the ``api-key`` header, or ``Authorization: Bearer`` with a
  Microsoft Entra token.
- ``error_body`` gives refusals Azure's shape: ``{"error": {"code", "message"}}``, no
  ``type``. Validation errors of the request itself keep the OpenAI shape, as the service
  behind Azure's gateway words them.
- ``headers`` names the request id ``apim-request-id`` (there is no ``x-request-id``).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import Any

import attrs

from openai_images._azure import EDITS_API_VERSION, V1, AzureSettingsError, check_api_version
from openai_images._rules import MODELS

from ._wire import Rejection

__all__ = [
    "DEFAULT_API_VERSIONS",
    "DEFAULT_BLOCKED_WORDS",
    "FILTER_CATEGORIES",
    "AzureMode",
    "AzureRejection",
    "Placement",
    "own_name_deployments",
]

DEFAULT_API_VERSIONS = frozenset(
    {
        "2024-02-01",
        "2024-06-01",
        "2024-10-21",
        "2024-02-15-preview",
        "2024-05-01-preview",
        "2024-08-01-preview",
        "2024-10-01-preview",
        "2024-12-01-preview",
        "2025-01-01-preview",
        "2025-02-01-preview",
        "2025-03-01-preview",
        "2025-04-01-preview",
    }
)
"""The dated ``api-version`` values the local Azure mode knows by default."""

FILTER_CATEGORIES = ("hate", "self_harm", "sexual", "violence")
"""The content filter's categories, each reported in a refusal's filter results."""

DEFAULT_BLOCKED_WORDS: Mapping[str, str] = {"gore": "violence"}
"""Prompt words the content filter refuses by default, each with the category it trips."""

_WORD = re.compile(r"[\w'-]+")
_KEY_MISSING = (
    "Access denied due to missing subscription key. Make sure to include a subscription key "
    "(the api-key header) or an Entra ID token when making requests to an API."
)
_KEY_WRONG = (
    "Access denied due to invalid subscription key or wrong API endpoint. Make sure to "
    "provide a valid key for an active subscription and use a correct regional API endpoint "
    "for your resource."
)
_TOKEN_WRONG = (
    "Unauthorized. Access token is missing, invalid, audience is incorrect "
    "(https://cognitiveservices.azure.com), or have expired."
)
_FILTERED = (
    "Your request was rejected as a result of our safety system. Your prompt may contain "
    "text that is not allowed by our safety system."
)


def own_name_deployments(*, legacy: bool = False) -> dict[str, str]:
    """Each model the server serves, deployed under its own name: today's models, and the
    retired ones too for a ``legacy`` server (elsewhere they would only answer 404).

    Example:
        >>> own_name_deployments()["gpt-image-1.5"]
        'gpt-image-1.5'
        >>> "dall-e-3" in own_name_deployments(), "dall-e-3" in own_name_deployments(legacy=True)
        (False, True)
    """
    return {name: name for name, rules in MODELS.items() if legacy or rules.retired is None}


def _copied(deployments: Mapping[str, str]) -> dict[str, str]:
    return dict(deployments)


def _tokens(value: Collection[str] | None) -> frozenset[str] | None:
    return frozenset(value) if value is not None else None


def _lowered(words: Mapping[str, str]) -> dict[str, str]:
    return {word.lower(): category for word, category in words.items()}


class AzureRejection(Rejection):
    """A refusal in Azure's error shape: ``code`` and ``message`` (no ``type``).

    Example:
        >>> AzureRejection("Resource not found", status=404, code="404").body()
        {'error': {'code': '404', 'message': 'Resource not found'}}
    """

    def __init__(
        self,
        message: str,
        *,
        status: int,
        code: str,
        param: str | None = None,
        inner: Mapping[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message, status=status, param=param, code=code, headers=headers)
        self.inner = dict(inner) if inner is not None else None

    def body(self) -> dict[str, Any]:
        """Azure's error body: ``param`` and ``innererror`` only when there are some."""
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.param is not None:
            error["param"] = self.param
        if self.inner is not None:
            error["innererror"] = self.inner
        return {"error": error}


def _resource_not_found() -> AzureRejection:
    return AzureRejection("Resource not found", status=404, code="404")


@attrs.frozen(kw_only=True)
class Placement:
    """Where a request landed: the deployment, and the model it runs.

    Attributes:
        deployment: The deployment named by the path, or ``None`` on the v1 route (the
            body's ``model`` names it).
    """

    mode: AzureMode
    deployment: str | None

    def apply(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        """The body's fields as the image service sees them: ``model`` is the real model.

        Raises:
            AzureRejection: The deployment does not exist, or the prompt trips the content
                filter.
        """
        deployment = self.deployment
        if deployment is None:
            named = fields.get("model")
            if not isinstance(named, str) or not named:
                raise AzureRejection(
                    "The 'model' field must name one of your deployments on the v1 route.",
                    status=400,
                    code="missing_required_parameter",
                    param="model",
                )
            deployment = named
        model = self.mode.model_of(deployment)
        self.mode.check_prompt(fields.get("prompt"))
        return {**fields, "model": model}


@attrs.frozen(kw_only=True)
class AzureMode:
    """How the local server plays an Azure OpenAI resource.

    Args:
        deployments: Each deployment name and the model it runs; by default every model
            the server serves is deployed under its own name (``own_name_deployments``).
        ad_tokens: The Microsoft Entra tokens that pass as ``Authorization: Bearer``;
            ``None`` lets any non-empty token through. Keys (the ``api-key`` header) are
            the server's ``api_keys``.
        api_versions: The dated ``api-version`` values the deployments route accepts.
        blocked_words: Prompt words the content filter refuses (case does not matter),
            each with the category it trips (one of ``FILTER_CATEGORIES``).
        region: The ``x-ms-region`` header's value.

    Example:
        ```python
        mode = AzureMode(deployments={"prod-images": "gpt-image-1.5"}, ad_tokens={"tok"})
        async with LocalImagesServer(azure=mode, api_keys={"key"}) as server:
            url = f"{server.url}/openai/deployments/prod-images/images/generations"
        ```
    """

    deployments: Mapping[str, str] = attrs.field(factory=own_name_deployments, converter=_copied)
    ad_tokens: frozenset[str] | None = attrs.field(default=None, converter=_tokens)
    api_versions: frozenset[str] = attrs.field(default=DEFAULT_API_VERSIONS, converter=frozenset)
    blocked_words: Mapping[str, str] = attrs.field(
        default=DEFAULT_BLOCKED_WORDS, converter=_lowered
    )
    region: str = "localhost"

    @blocked_words.validator
    def _known_categories(self, _: Any, words: Mapping[str, str]) -> None:
        for word, category in words.items():
            if category not in FILTER_CATEGORIES:
                raise ValueError(
                    f"blocked word {word!r}: unknown category {category!r}; "
                    f"use one of {', '.join(FILTER_CATEGORIES)}"
                )

    @api_versions.validator
    def _well_formed(self, _: Any, versions: Collection[str]) -> None:
        for version in versions:
            if version == V1:
                raise ValueError("the v1 route takes no api-version: list dated versions only")
            try:
                check_api_version(version)
            except AzureSettingsError as error:
                raise ValueError(str(error)) from None

    def place(
        self, *, endpoint: str, deployment: str | None, query: Mapping[str, str]
    ) -> Placement:
        """Check the route's ``api-version`` and deployment (``None``: the v1 route).

        Raises:
            AzureRejection: ``api-version`` is missing, unknown or too old for the endpoint
                on the deployments route, or the deployment does not exist.

        Example:
            >>> mode = AzureMode()
            >>> query = {"api-version": "2025-04-01-preview"}
            >>> mode.place(endpoint="edits", deployment="gpt-image-1.5", query=query).deployment
            'gpt-image-1.5'
        """
        if deployment is None:
            # The v1 route takes no api-version; the deployment is the body's model.
            return Placement(mode=self, deployment=None)
        version = query.get("api-version")
        if not version:
            raise _resource_not_found()
        if version not in self.api_versions:
            raise AzureRejection("API version not supported", status=400, code="BadRequest")
        if endpoint != "generations" and version[:10] < EDITS_API_VERSION[:10]:
            raise _resource_not_found()
        self.model_of(deployment)  # an unknown deployment is refused before the body is read
        return Placement(mode=self, deployment=deployment)

    def model_of(self, deployment: str) -> str:
        """The model a deployment runs.

        Raises:
            AzureRejection: 404 ``DeploymentNotFound``.
        """
        model = self.deployments.get(deployment)
        if model is None:
            raise AzureRejection(
                f"The API deployment '{deployment}' does not exist for this resource. If you "
                "created it within the last 5 minutes, wait a moment and try again.",
                status=404,
                code="DeploymentNotFound",
            )
        return model

    def authenticate(
        self,
        headers: Mapping[str, str],
        *,
        api_keys: frozenset[str] | None,
        placement: Placement,
    ) -> str:
        """The credential a request carries (a key or a token), once it passes.

        The ``api-key`` header wins when both are sent. ``Authorization: Bearer`` carries an
        Entra token; on the v1 route it may carry a key too (as the plain OpenAI client
        sends it).

        Raises:
            AzureRejection: No credential, or one that does not pass (401).
        """
        key = headers.get("api-key", "").strip()
        if key:
            if api_keys is not None and key not in api_keys:
                raise AzureRejection(_KEY_WRONG, status=401, code="401")
            return key
        scheme, _, token = headers.get("Authorization", "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise AzureRejection(_KEY_MISSING, status=401, code="401")
        if placement.deployment is None and api_keys is not None and token in api_keys:
            return token
        if self.ad_tokens is not None and token not in self.ad_tokens:
            raise AzureRejection(_TOKEN_WRONG, status=401, code="401")
        return token

    def check_prompt(self, prompt: object) -> None:
        """Refuse a prompt holding a blocked word, with the content filter's results.

        Raises:
            AzureRejection: 400, ``code: contentFilter``.

        Example:
            >>> AzureMode().check_prompt("a quiet harbour")  # passes
            >>> try:
            ...     AzureMode().check_prompt("GORE everywhere")
            ... except AzureRejection as refused:
            ...     refused.body()["error"]["innererror"]["content_filter_results"]["violence"]
            {'filtered': True, 'severity': 'high'}
        """
        if not isinstance(prompt, str) or not self.blocked_words:
            return
        tripped = {
            self.blocked_words[word]
            for word in _WORD.findall(prompt.lower())
            if word in self.blocked_words
        }
        if not tripped:
            return
        results = {
            category: (
                {"filtered": True, "severity": "high"}
                if category in tripped
                else {"filtered": False, "severity": "safe"}
            )
            for category in FILTER_CATEGORIES
        }
        raise AzureRejection(
            _FILTERED,
            status=400,
            code="contentFilter",
            param="prompt",
            inner={"code": "ResponsibleAIPolicyViolation", "content_filter_results": results},
        )

    def error_body(self, rejection: Rejection) -> dict[str, Any]:
        """A refusal's body: Azure's shape for the gateway's own errors (401, 404, 429)."""
        if isinstance(rejection, AzureRejection):
            return rejection.body()
        if rejection.status == 404:
            return _resource_not_found().body()
        if rejection.status == 429:
            seconds = rejection.headers.get("retry-after", "1")
            message = (
                "Requests to the Images operation under this Azure OpenAI resource have "
                f"exceeded the call rate limit of your pricing tier. Please retry after "
                f"{seconds} seconds."
            )
            return AzureRejection(message, status=429, code="429").body()
        return rejection.body()

    def headers(self, openai_headers: Mapping[str, str]) -> dict[str, str]:
        """The server's usual headers as Azure sends them: ``apim-request-id``, no
        ``x-request-id`` or ``openai-version``, and only the remaining rate-limit counts."""
        headers = {
            name: value
            for name, value in openai_headers.items()
            if name not in ("x-request-id", "openai-version")
            and not (name.startswith("x-ratelimit-") and not name.startswith("x-ratelimit-rem"))
        }
        headers["apim-request-id"] = openai_headers["x-request-id"]
        headers["x-ms-region"] = self.region
        return headers
