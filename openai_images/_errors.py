"""The exceptions openai-images raises.

Every exception the library raises on purpose derives from ``OpenAIImagesError``,
so ``except OpenAIImagesError`` catches them all. aiohttp's exception types never reach
the caller: the transport maps them onto this tree and chains, as ``__cause__``, a plain
``UnderlyingError`` with the original's class and message (never the original itself,
which may hold the request's headers).

::

    OpenAIImagesError
    ├── RequestValidationError (also a ValueError)   refused before any network I/O
    ├── MissingAPIKeyError                             no key in arguments or environment
    └── APIError                                       something went wrong talking to the API
        ├── APIConnectionError                         no usable HTTP exchange
        │   └── APITimeoutError                        a timeout expired
        ├── APIResponseValidationError                 a body that does not parse
        └── APIStatusError                             a 4xx or 5xx answer (or a stream error event)
            ├── BadRequestError                        400
            ├── AuthenticationError                    401
            ├── PermissionDeniedError                  403
            ├── NotFoundError                          404
            ├── ConflictError                          409
            ├── UnprocessableEntityError               422
            ├── RateLimitError                         429
            └── InternalServerError                    5xx

Retries happen inside the client (see ``openai_images._retry``); what reaches the
caller is the outcome of the last attempt.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "ConflictError",
    "InternalServerError",
    "MissingAPIKeyError",
    "NotFoundError",
    "OpenAIImagesError",
    "PermissionDeniedError",
    "RateLimitError",
    "RequestValidationError",
    "UnprocessableEntityError",
    "Violation",
    "status_error_class",
]


class OpenAIImagesError(Exception):
    """The root of every exception openai-images raises on purpose."""


@attrs.frozen(kw_only=True)
class Violation:
    """One broken rule of the contract.

    Attributes:
        param: The offending field, in the API's own name (``"size"``, ``"image[2]"``).
        message: A sentence naming the value and the rule it breaks.
        code: The API's error code (``"invalid_value"``, ``"missing_required_parameter"``...).
    """

    param: str
    message: str
    code: str = "invalid_value"


class RequestValidationError(OpenAIImagesError, ValueError):
    """A request breaks a rule of the API and was refused before any network I/O.

    Attributes:
        violations: Every rule the request breaks, the first one in ``str(error)``.
        param: The field of the first violation.

    Example:
        >>> from openai_images import Violation
        >>> err = RequestValidationError([Violation(param="n", message="n must be 1 for dall-e-3")])
        >>> err.param
        'n'
    """

    def __init__(self, violations: Sequence[Violation]) -> None:
        if not violations:
            raise ValueError("RequestValidationError needs at least one violation")
        self.violations = tuple(violations)
        self.param = self.violations[0].param
        more = len(self.violations) - 1
        text = f"{self.param}: {self.violations[0].message}"
        if more:
            text += f" (and {more} more: {', '.join(v.param for v in self.violations[1:])})"
        super().__init__(text)


class MissingAPIKeyError(OpenAIImagesError):
    """No API key was given and ``OPENAI_API_KEY`` is not set."""

    def __init__(self) -> None:
        super().__init__(
            "No API key: pass api_key=... to the client or set the OPENAI_API_KEY "
            "environment variable."
        )


class APIError(OpenAIImagesError):
    """Something went wrong while talking to the API.

    Attributes:
        message: What happened, in one sentence.
        request_id: The ``x-request-id`` of the response, when there was one.
    """

    def __init__(self, message: str, *, request_id: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.request_id = request_id


class APIConnectionError(APIError):
    """No usable HTTP exchange: refused, reset, DNS failure, or a broken body."""


class APITimeoutError(APIConnectionError):
    """A timeout expired (connecting, waiting for headers, or reading the body)."""


class APIResponseValidationError(APIError):
    """The API answered with a body this library cannot read as the contract says.

    Attributes:
        status_code: The HTTP status of the response.
        body: The raw body, cut to its first 2,000 bytes.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        body: bytes = b"",
        request_id: str | None = None,
    ) -> None:
        super().__init__(message, request_id=request_id)
        self.status_code = status_code
        self.body = body[:2000]


class APIStatusError(APIError):
    """The API answered with an error status (or sent an error event in a stream).

    Attributes:
        status_code: The HTTP status (for a stream error event, the status its type implies).
        type: The error's ``type`` (``"invalid_request_error"``...), when the body had one.
        code: The error's ``code`` (``"insufficient_quota"``...), when the body had one.
        param: The offending parameter, when the body named one.
        body: The decoded JSON body, or the raw text when it was not JSON.
        headers: The response headers (``retry-after``, rate-limit headers...).
    """

    status_code: int

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        request_id: str | None = None,
        type: str | None = None,
        code: str | None = None,
        param: str | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message, request_id=request_id)
        self.status_code = status_code
        self.type = type
        self.code = code
        self.param = param
        self.body = body
        self.headers: Mapping[str, str] = headers if headers is not None else {}

    def __str__(self) -> str:
        rid = f" (request id {self.request_id})" if self.request_id else ""
        return f"Error code: {self.status_code} - {self.message}{rid}"


class BadRequestError(APIStatusError):
    """400: the API refused the request's content."""


class AuthenticationError(APIStatusError):
    """401: the key is missing, wrong or revoked."""


class PermissionDeniedError(APIStatusError):
    """403: the key may not do this (model access, organization verification...)."""


class NotFoundError(APIStatusError):
    """404: no such route, model or file."""


class ConflictError(APIStatusError):
    """409: a conflicting request is in progress (retried by default)."""


class UnprocessableEntityError(APIStatusError):
    """422: the request was well formed but cannot be processed."""


class RateLimitError(APIStatusError):
    """429: too many requests or tokens, or no quota left (``code == "insufficient_quota"``)."""


class InternalServerError(APIStatusError):
    """5xx: the API failed (retried by default)."""


_BY_STATUS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: UnprocessableEntityError,
    429: RateLimitError,
}

# A stream's error event has no status of its own; its type says which class it is.
STATUS_BY_ERROR_TYPE: dict[str, int] = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "conflict_error": 409,
    "rate_limit_error": 429,
    "insufficient_quota": 429,
    "server_error": 500,
}


def status_error_class(status_code: int) -> type[APIStatusError]:
    """The exception class for an HTTP error status.

    Example:
        >>> status_error_class(429).__name__
        'RateLimitError'
        >>> status_error_class(503).__name__
        'InternalServerError'
    """
    if status_code >= 500:
        return InternalServerError
    return _BY_STATUS.get(status_code, APIStatusError)
