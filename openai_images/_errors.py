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
    ├── ClientClosedError (also a RuntimeError)       the client was closed before or during it
    └── APIError                                       something went wrong talking to the API
        ├── APIConnectionError                         no usable HTTP exchange
        │   ├── APITimeoutError                        a timeout expired
        │   └── ResponseTooLargeError                  over ``max_response_bytes`` (not retried)
        ├── APIResponseValidationError                 a body that does not parse
        │   └── InvalidImageDataError                  a result's b64_json is not base64
        └── APIStatusError                             a 4xx or 5xx answer (or a stream error event)
            ├── BadRequestError                        400
            │   └── ModerationBlockedError             refused by moderation (never retried)
            ├── AuthenticationError                    401
            ├── PermissionDeniedError                  403
            ├── NotFoundError                          404
            ├── ConflictError                          409
            ├── UnprocessableEntityError               422
            ├── RateLimitError                         429
            │   └── InsufficientQuotaError             out of money, not of rate (never retried)
            └── InternalServerError                    5xx

Retries happen inside the client (see ``openai_images._retry``); what reaches the
caller is the outcome of the last attempt. Every mapping of a status or an error body onto
this tree lives here (``error_from_response``, ``error_from_payload``,
``error_event_status``), whether the answer came whole or as a stream's error event.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import orjson

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "ClientClosedError",
    "ConflictError",
    "InsufficientQuotaError",
    "InternalServerError",
    "InvalidImageDataError",
    "MissingAPIKeyError",
    "ModerationBlockedError",
    "ModerationDetails",
    "NotFoundError",
    "OpenAIImagesError",
    "PermissionDeniedError",
    "RateLimitError",
    "RequestValidationError",
    "ResponseTooLargeError",
    "UnprocessableEntityError",
    "Violation",
    "error_event_status",
    "error_from_payload",
    "error_from_response",
    "is_out_of_money",
    "request_id_of",
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


class ClientClosedError(OpenAIImagesError, RuntimeError):
    """The client was closed before or during this call.

    Closing a client cancels its running calls promptly (one waiting on a retry, or in
    flight) rather than waiting them out. Also a ``RuntimeError``, as using a closed client
    has always been.
    """

    def __init__(self, message: str = "The client was closed during this call") -> None:
        super().__init__(message)


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


class ResponseTooLargeError(APIConnectionError):
    """A response over the client's ``max_response_bytes``; another try would fetch the same."""


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


class InvalidImageDataError(APIResponseValidationError):
    """A result image's ``b64_json`` is not valid base64, so it has no bytes to give.

    Decoding is strict: a lenient decoder would silently drop the bad characters and hand
    back a different, broken image. ``body`` holds the start of the offending text.
    """


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


@attrs.frozen(kw_only=True)
class ModerationDetails:
    """What a moderation block says about itself, when the API tells.

    Attributes:
        moderation_stage: ``"input"`` (the prompt or images), ``"output"`` (the result), or
            ``"unknown"``.
        categories: The public moderation categories that fired (new ones may appear).
    """

    moderation_stage: str = "unknown"
    categories: tuple[str, ...] = ()


class ModerationBlockedError(BadRequestError):
    """400: the request or its result was blocked by moderation; retrying will not help.

    The API says so with ``type="image_generation_user_error"`` and
    ``code="moderation_blocked"``; Azure with ``code="contentFilter"``.

    Attributes:
        moderation_details: The stage and categories, when the error body carries them
            (from Azure's content filter results: the prompt's, and the categories filtered).
        content_filter_results: Azure's content filter results, as sent: each category
            (``hate``, ``self_harm``, ``sexual``, ``violence``...) with ``filtered`` and
            ``severity``; ``None`` from OpenAI.
    """

    @property
    def content_filter_results(self) -> dict[str, Any] | None:
        """Azure's filter results (``error.innererror.content_filter_results``), if any."""
        error = self.body.get("error") if isinstance(self.body, dict) else None
        inner = error.get("innererror") if isinstance(error, dict) else None
        results = inner.get("content_filter_results") if isinstance(inner, dict) else None
        return results if isinstance(results, dict) else None

    @property
    def moderation_details(self) -> ModerationDetails | None:
        """The stage and categories of the block, when the error body carries them."""
        error = self.body.get("error") if isinstance(self.body, dict) else None
        details = error.get("moderation_details") if isinstance(error, dict) else None
        if not isinstance(details, dict):
            filtered = self.content_filter_results
            if filtered is None:
                return None
            # Azure refuses with a 400 before generating: its filter judged the prompt.
            return ModerationDetails(
                moderation_stage="input",
                categories=tuple(
                    name
                    for name, result in filtered.items()
                    if isinstance(result, dict) and result.get("filtered") is True
                ),
            )
        stage = details.get("moderation_stage")
        categories = details.get("categories")
        return ModerationDetails(
            moderation_stage=stage if isinstance(stage, str) else "unknown",
            categories=tuple(c for c in categories if isinstance(c, str))
            if isinstance(categories, list)
            else (),
        )


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


class InsufficientQuotaError(RateLimitError):
    """429 for want of money, not of rate: no credits, or a usage or spend limit reached.

    Never retried, and a batch stops on it: waiting does not refill a budget. ``code`` says
    which limit (``"insufficient_quota"``, ``"credit_balance_exhausted"``,
    ``"organization_spend_limit_exceeded"``...).
    """


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
    "image_generation_user_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "conflict_error": 409,
    "rate_limit_error": 429,
    "insufficient_quota": 429,
    "server_error": 500,
}


# The codes of a 429 that means "out of money": no wait makes them go away.
OUT_OF_MONEY_CODES = frozenset(
    {
        "insufficient_quota",
        "credit_balance_exhausted",
        "organization_usage_limit_exceeded",
        "organization_spend_limit_exceeded",
        "project_spend_limit_exceeded",
    }
)
# The codes of a moderation block: the API's own, and Azure's content filter.
_MODERATION_CODES = frozenset({"moderation_blocked", "contentFilter", "content_filter"})


def error_event_status(error: Mapping[str, Any]) -> int:
    """The HTTP status a stream's error event stands for (it has none of its own).

    Its ``type`` says which, and a moderation ``code`` makes it a 400 whatever the type.

    Example:
        >>> error_event_status({"type": "image_generation_user_error"})
        400
        >>> error_event_status({"type": "server_error"})
        500
    """
    if error.get("code") in _MODERATION_CODES:
        return 400
    return STATUS_BY_ERROR_TYPE.get(str(error.get("type")), 500)


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


def is_out_of_money(*, type: str | None, code: str | None) -> bool:
    """Whether an error's ``type`` and ``code`` say the account is out of money.

    Example:
        >>> is_out_of_money(type="requests", code="credit_balance_exhausted")
        True
        >>> is_out_of_money(type="requests", code="rate_limit_exceeded")
        False
    """
    return type == "insufficient_quota" or code in OUT_OF_MONEY_CODES


def error_from_payload(
    payload: Any,
    *,
    status_code: int,
    request_id: str | None,
    headers: Mapping[str, str] | None = None,
) -> APIStatusError:
    """The ``APIStatusError`` subclass for an API error body ``{"error": {...}}``.

    The status picks the class; the body's ``type`` and ``code`` refine it where they tell
    two kinds of the same status apart (a moderation block among 400s, an empty budget
    among 429s).

    Example:
        >>> body = {"error": {"message": "no", "code": "moderation_blocked"}}
        >>> type(error_from_payload(body, status_code=400, request_id=None)).__name__
        'ModerationBlockedError'
    """
    error = payload.get("error") if isinstance(payload, dict) else None
    if not isinstance(error, dict):
        error = {}
    message = error.get("message")
    if not isinstance(message, str) or not message:
        if isinstance(payload, str):
            # A proxy's HTML error page, say: name it without pasting the page.
            snippet = " ".join(payload.split())[:200]
            message = f"HTTP {status_code} with a body that is not JSON: {snippet!r}"
        else:
            message = f"HTTP {status_code}"
    error_type = _str_or_none(error.get("type"))
    code = _str_or_none(error.get("code"))
    cls = status_error_class(status_code)
    if cls is BadRequestError and code in _MODERATION_CODES:
        cls = ModerationBlockedError
    elif cls is RateLimitError and is_out_of_money(type=error_type, code=code):
        cls = InsufficientQuotaError
    return cls(
        message,
        status_code=status_code,
        request_id=request_id,
        type=error_type,
        code=code,
        param=_str_or_none(error.get("param")),
        body=payload,
        headers=headers,
    )


def request_id_of(headers: Mapping[str, str]) -> str | None:
    """The id support asks for: ``x-request-id``, else Azure's ``apim-request-id``.

    Example:
        >>> request_id_of({"apim-request-id": "a-1"})
        'a-1'
    """
    return headers.get("x-request-id") or headers.get("apim-request-id")


def error_from_response(*, status: int, headers: Mapping[str, str], body: bytes) -> APIStatusError:
    """The ``APIStatusError`` for a whole error answer (status, headers and raw body).

    A body that is not JSON (a proxy's HTML page) is kept as text.

    Example:
        >>> body = b'{"error": {"message": "no"}}'
        >>> error = error_from_response(status=404, headers={}, body=body)
        >>> type(error).__name__, error.message
        ('NotFoundError', 'no')
    """
    payload: Any
    try:
        payload = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        payload = body.decode("utf-8", "replace")
    return error_from_payload(
        payload, status_code=status, request_id=request_id_of(headers), headers=headers
    )


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None
