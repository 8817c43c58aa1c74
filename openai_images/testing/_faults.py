"""Scripted faults for the local server: what goes wrong, for which requests, how often.

A ``Fault`` describes one misbehaviour; the server keeps them in a ``FaultQueue``
and each request takes the first one that fits it. Faults act at one of four moments,
so each waits for a request it can act on:

- ``"request"``: as soon as an image request arrives, before the key is checked:
  ``status``, ``non_json``, ``reset``, ``delay_headers``, ``quota``;
- ``"prompt"``: once the request is read and valid, for its prompt: ``moderation``;
- ``"body"``: when a successful JSON answer is ready: ``truncated_json``,
  ``reset_mid_body``, ``stall_body``;
- ``"stream"``: when a stream of events is ready: ``stream_cut``, ``stream_error``.

Example:
    >>> queue = FaultQueue()
    >>> queue.add(Fault(kind="status", status=503, times=2, endpoint="edits"))
    >>> queue.take(endpoint="generations", stage="request") is None
    True
    >>> queue.take(endpoint="edits", stage="request").status
    503
    >>> [fault.times for fault in queue.pending()]
    [1]
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import Any, Literal, TypeAlias

import attrs

from openai_images._errors import OUT_OF_MONEY_CODES

from ._wire import error_body

__all__ = [
    "FAULT_KINDS",
    "Fault",
    "FaultKind",
    "FaultQueue",
    "Stage",
    "fault_error",
    "fault_from_json",
    "stage_of",
]

FaultKind: TypeAlias = Literal[
    "status",
    "reset",
    "reset_mid_body",
    "truncated_json",
    "non_json",
    "delay_headers",
    "stall_body",
    "stream_cut",
    "stream_error",
    "quota",
    "moderation",
]
Stage: TypeAlias = Literal["request", "prompt", "body", "stream"]

_STAGES: dict[str, Stage] = {
    "status": "request",
    "non_json": "request",
    "reset": "request",
    "delay_headers": "request",
    "truncated_json": "body",
    "reset_mid_body": "body",
    "stall_body": "body",
    "stream_cut": "stream",
    "stream_error": "stream",
    "quota": "request",
    "moderation": "prompt",
}
FAULT_KINDS = frozenset(_STAGES)
_ENDPOINTS = frozenset({"generations", "edits", "variations"})

# The API's own wording for its common failures.
_MESSAGES = {
    429: "Rate limit reached for requests. Please try again later.",
    500: "The server had an error while processing your request. Sorry about that!",
    502: "Bad gateway.",
    503: "The server is overloaded or not ready yet.",
}
_QUOTA_MESSAGE = (
    "You exceeded your current quota, please check your plan and billing details. For more "
    "information on this error, read the docs: "
    "https://platform.openai.com/docs/guides/error-codes/api-errors."
)
_MODERATION_MESSAGE = (
    "Your request was rejected as a result of our safety system. Your request may contain "
    "content that is not allowed by our safety system."
)
_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}


def _status_default(kind: str) -> int:
    return {"non_json": 502, "quota": 429, "moderation": 400}.get(kind, 500)


def _check_status(instance: Fault, attribute: attrs.Attribute[int], value: int) -> None:
    if not 400 <= value <= 599:
        raise ValueError(f"status must be an error status (400..599), got {value}")


def _check_kind(instance: Fault, attribute: attrs.Attribute[str], value: str) -> None:
    if value not in FAULT_KINDS:
        raise ValueError(f"kind must be one of {sorted(FAULT_KINDS)}, got {value!r}")


def _check_endpoint(
    instance: Fault, attribute: attrs.Attribute[str | None], value: str | None
) -> None:
    if value is not None and value not in _ENDPOINTS:
        raise ValueError(f"endpoint must be one of {sorted(_ENDPOINTS)} or None, got {value!r}")


def _copy_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return dict(headers)


def _strings(values: Iterable[str]) -> tuple[str, ...]:
    if isinstance(values, str):
        raise TypeError("give a list of strings, not one string")
    return tuple(values)


def _not_bool(instance: Fault, attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool):
        raise TypeError(f"{attribute.name} must be a number, got a boolean")


@attrs.frozen(kw_only=True)
class Fault:
    """One scripted misbehaviour of the local server.

    Attributes:
        kind: What goes wrong (see the module's docstring for when each acts):
            ``"status"`` an error status with an API-shaped body; ``"non_json"`` a 502
            with an HTML page, as from a proxy; ``"reset"`` the connection closed before
            any answer; ``"delay_headers"`` a pause of ``delay`` seconds before answering;
            ``"truncated_json"`` a 200 whose JSON body is cut short (with a matching
            ``Content-Length``); ``"reset_mid_body"`` the headers and part of the body,
            then the connection closed; ``"stall_body"`` part of the body, a pause of
            ``delay`` seconds, then the rest; ``"stream_cut"`` a stream that ends after
            ``after_events`` partial images, without its completed event;
            ``"stream_error"`` an ``{"error": ...}`` event after ``after_events`` partials;
            ``"quota"`` a 429 for want of money (``type: insufficient_quota``, ``code``
            ``"insufficient_quota"`` unless another out-of-money code is given);
            ``"moderation"`` a 400 moderation block (``type:
            image_generation_user_error``, ``code: moderation_blocked``, with
            ``moderation_details``) for the requests whose prompt is in ``prompts``.
        status: The HTTP status of ``"status"`` (default 500) and ``"non_json"`` (502).
        times: How many matching requests the fault hits.
        endpoint: Only requests to this endpoint (``"generations"``, ``"edits"``,
            ``"variations"``); ``None`` for any.
        after_events: For the stream kinds, how many partial-image events come first.
        delay: Seconds of ``"delay_headers"`` and ``"stall_body"``.
        code: The error body's ``code`` (``"insufficient_quota"``...).
        message: The error body's ``message``; the API's usual wording when ``None``.
        retry_after: A ``retry-after`` header: seconds, or an HTTP date as a string.
        retry_after_ms: A ``retry-after-ms`` header, in milliseconds.
        headers: More response headers, e.g. ``{"x-should-retry": "false"}``.
        prompts: For ``"moderation"``: only requests with one of these prompts (any if
            empty).
        categories: For ``"moderation"``: the categories its details name.

    Example:
        >>> Fault(kind="status", status=429, code="insufficient_quota").status
        429
    """

    kind: FaultKind = attrs.field(validator=_check_kind)
    status: int = attrs.field(
        default=attrs.Factory(lambda self: _status_default(self.kind), takes_self=True),
        validator=[attrs.validators.instance_of(int), _not_bool, _check_status],
    )
    times: int = attrs.field(
        default=1, validator=[attrs.validators.instance_of(int), _not_bool, attrs.validators.ge(1)]
    )
    endpoint: str | None = attrs.field(default=None, validator=_check_endpoint)
    after_events: int = attrs.field(
        default=1, validator=[attrs.validators.instance_of(int), _not_bool, attrs.validators.ge(0)]
    )
    delay: float = attrs.field(
        default=30.0,
        validator=[attrs.validators.instance_of((int, float)), _not_bool, attrs.validators.ge(0)],
    )
    code: str | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.instance_of(str))
    )
    message: str | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.instance_of(str))
    )
    retry_after: float | str | None = attrs.field(
        default=None,
        validator=attrs.validators.optional(
            [
                attrs.validators.instance_of((int, float, str)),
                _not_bool,
            ]
        ),
    )
    retry_after_ms: float | None = attrs.field(
        default=None,
        validator=attrs.validators.optional(
            [
                attrs.validators.instance_of((int, float)),
                _not_bool,
            ]
        ),
    )
    headers: Mapping[str, str] = attrs.field(
        factory=dict,
        converter=_copy_headers,
        validator=attrs.validators.deep_mapping(
            key_validator=attrs.validators.instance_of(str),
            value_validator=attrs.validators.instance_of(str),
        ),
    )

    prompts: tuple[str, ...] = attrs.field(
        default=(),
        converter=_strings,
        validator=attrs.validators.deep_iterable(attrs.validators.instance_of(str)),
    )
    categories: tuple[str, ...] = attrs.field(
        default=("violence",),
        converter=_strings,
        validator=attrs.validators.deep_iterable(attrs.validators.instance_of(str)),
    )

    @property
    def stage(self) -> Stage:
        """When the fault acts: ``"request"``, ``"body"`` or ``"stream"``."""
        return stage_of(self.kind)

    def response_headers(self) -> dict[str, str]:
        """The retry hints and extra headers this fault adds to its answer."""
        found: dict[str, str] = {}
        if self.retry_after is not None:
            found["retry-after"] = _number(self.retry_after)
        if self.retry_after_ms is not None:
            found["retry-after-ms"] = _number(self.retry_after_ms)
        found.update(self.headers)
        return found


def _number(value: float | str) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def stage_of(kind: str) -> Stage:
    """When faults of ``kind`` act.

    Example:
        >>> stage_of("stream_cut")
        'stream'
    """
    return _STAGES[kind]


def fault_error(fault: Fault) -> dict[str, Any]:
    """The API-shaped error body of a ``"status"`` or ``"stream_error"`` fault."""
    status = fault.status
    if fault.kind == "quota" or fault.code in OUT_OF_MONEY_CODES:
        code = fault.code or "insufficient_quota"
        return error_body(fault.message or _QUOTA_MESSAGE, type="insufficient_quota", code=code)
    if fault.kind == "moderation":
        body = error_body(
            fault.message or _MODERATION_MESSAGE,
            type="image_generation_user_error",
            code="moderation_blocked",
        )
        body["error"]["moderation_details"] = {
            "moderation_stage": "input",
            "categories": list(fault.categories),
        }
        return body
    error_type = "server_error" if status >= 500 else _TYPES.get(status, "invalid_request_error")
    message = fault.message or _MESSAGES.get(status, f"The server answered {status}.")
    return error_body(message, type=error_type, code=fault.code)


def fault_from_json(data: object) -> Fault:
    """Build a fault from the control route's JSON object.

    Raises:
        ValueError: ``data`` is not an object, names an unknown field, or a value is invalid.
    """
    if not isinstance(data, dict):
        raise ValueError('a fault is a JSON object such as {"kind": "status", "status": 500}')
    known = {field.name for field in attrs.fields(Fault)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"unknown fault field {unknown[0]!r}; fields are {sorted(known)}")
    try:
        return Fault(**data)
    except (TypeError, ValueError) as error:
        # attrs' validators put the attribute and more after the message.
        raise ValueError(str(error.args[0]) if error.args else repr(error)) from error


class FaultQueue:
    """Faults waiting for their requests, in the order they were added; thread-safe.

    The server takes from it on its event loop while tests add from their own thread.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: list[Fault] = []

    def add(self, fault: Fault) -> None:
        """Queue ``fault`` behind those already waiting."""
        with self._lock:
            self._pending.append(fault)

    def take(self, *, endpoint: str, stage: Stage, prompt: object = None) -> Fault | None:
        """The first waiting fault for this endpoint and stage (and, for those that name
        prompts, this prompt), counting one use of it."""
        with self._lock:
            for position, fault in enumerate(self._pending):
                if fault.stage != stage or fault.endpoint not in (None, endpoint):
                    continue
                if fault.prompts and prompt not in fault.prompts:
                    continue
                if fault.times == 1:
                    del self._pending[position]
                else:
                    self._pending[position] = attrs.evolve(fault, times=fault.times - 1)
                return fault
        return None

    def pending(self) -> tuple[Fault, ...]:
        """The faults still waiting, each with the uses it has left in ``times``."""
        with self._lock:
            return tuple(self._pending)

    def clear(self) -> None:
        """Drop every waiting fault."""
        with self._lock:
            self._pending.clear()
