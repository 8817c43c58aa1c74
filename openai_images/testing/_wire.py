"""The API's error shape, shared by every part of the local server (sans-I/O)."""

from __future__ import annotations

from typing import Any

import orjson

__all__ = ["Rejection", "dumps", "error_body"]


def error_body(
    message: str,
    *,
    type: str = "invalid_request_error",
    param: str | None = None,
    code: str | None = None,
) -> dict[str, Any]:
    """The API's error body.

    Example:
        >>> error_body("Invalid value for 'n'.", param="n", code="invalid_value")["error"]["param"]
        'n'
    """
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


def dumps(data: Any) -> bytes:
    """JSON bytes, as the server sends them."""
    return orjson.dumps(data)


class Rejection(Exception):
    """A request the server refuses, carrying the API's error fields.

    Example:
        >>> Rejection("Missing required parameter: 'prompt'.", param="prompt").status
        400
    """

    def __init__(
        self,
        message: str,
        *,
        status: int = 400,
        param: str | None = None,
        code: str | None = None,
        type: str = "invalid_request_error",
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.param = param
        self.code = code
        self.type = type
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        """The error body to send."""
        return error_body(self.message, type=self.type, param=self.param, code=self.code)
