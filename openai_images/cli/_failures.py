"""What the command line says when something fails: one line, in the command line's terms.

Errors from the library speak Python (``pass api_key=...``, ``output_compression``); here
they are worded for someone at a prompt: the options that fix them (``--api-key``,
``--compression``), the HTTP status and request id of an API refusal, the file of an
``OSError``. Batch files keep the API's field names, which are what their lines use.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Sequence

from openai_images._azure import AzureSettingsError, MissingAzureCredentialError
from openai_images._errors import (
    APIError,
    APIStatusError,
    MissingAPIKeyError,
    RequestValidationError,
    Violation,
)

from ._fields import StructureFailure, flag_for

__all__ = ["CommandError", "describe_error", "resume_command"]

PROG = "openai-images"


class CommandError(Exception):
    """A failure of the command itself (a file in the way, a bad batch file...)."""


def describe_error(error: BaseException, *, flags: bool = False) -> str:
    """One line saying what went wrong, with the HTTP status and request id when known.

    Args:
        error: What was raised.
        flags: Name request fields by the options that set them (``--compression``), as
            for ``generate``, ``edit`` and ``variation``; otherwise by the API's names.

    Example:
        >>> from openai_images import BadRequestError
        >>> describe_error(BadRequestError("Invalid size.", status_code=400, request_id="req_1"))
        'Invalid size. (HTTP 400, request id req_1)'
        >>> too_high = Violation(param="output_compression", message="output_compression is 101")
        >>> describe_error(RequestValidationError([too_high]), flags=True)
        '--compression is 101'
    """
    if isinstance(error, MissingAzureCredentialError):
        return (
            "no Azure credential: give --api-key KEY or set the AZURE_OPENAI_API_KEY "
            "(or AZURE_OPENAI_AD_TOKEN) environment variable"
        )
    if isinstance(error, MissingAPIKeyError):
        return "no API key: give --api-key KEY or set the OPENAI_API_KEY environment variable"
    if isinstance(error, AzureSettingsError):
        return _azure_flags(str(error))
    if isinstance(error, RequestValidationError) and flags:
        first, *more = error.violations
        text = _flagged(first)
        if more:
            text += f" (and {len(more)} more: {', '.join(flag_for(v.param) for v in more)})"
        return text
    if isinstance(error, StructureFailure):
        problem = error.problem
        name = flag_for(problem.param) if flags else problem.param
        return f"{name}: {problem.detail or problem.code.replace('_', ' ')}"
    if isinstance(error, APIError):
        details: list[str] = []
        if isinstance(error, APIStatusError):
            details.append(f"HTTP {error.status_code}")
        if error.request_id:
            details.append(f"request id {error.request_id}")
        suffix = f" ({', '.join(details)})" if details else ""
        return f"{error.message}{suffix}"
    if isinstance(error, OSError) and error.filename is not None and error.strerror:
        return f"{error.strerror}: {os.fsdecode(error.filename)}"
    return " ".join(str(error).split()) or type(error).__name__


_AZURE_FLAGS = (
    ("pass azure_deployment=... to the client, or model=<deployment name>",
     "give --deployment NAME, or --model NAME"),
    ("azure_endpoint", "--azure-endpoint"),
    ("deployment_model", "--deployment-model"),
    ("api_version", "--api-version"),
)  # fmt: skip


def _azure_flags(message: str) -> str:
    """An Azure settings error, naming the options rather than the keyword arguments."""
    for python, flag in _AZURE_FLAGS:
        message = message.replace(python, flag)
    return message


def _flagged(violation: Violation) -> str:
    """A violation naming the option: the rules' messages often start with the field's
    own name (``output_compression is 101``), which becomes the option's."""
    flag = flag_for(violation.param)
    field = violation.param.rsplit(".", 1)[-1].split("[", 1)[0]
    first, space, rest = violation.message.partition(" ")
    if space and first == field:
        return f"{flag} {rest}"
    return f"{flag}: {violation.message}"


def resume_command(argv: Sequence[str]) -> str:
    """The command that finishes an interrupted batch: the same one, with ``--resume``.

    Example:
        >>> resume_command(["batch", "my jobs.jsonl", "-o", "out", "--overwrite"])
        "openai-images batch 'my jobs.jsonl' -o out --resume"
    """
    # --overwrite would send the finished lines again; --resume skips them.
    kept = [arg for arg in argv if arg != "--overwrite"]
    if "--resume" not in kept:
        kept.append("--resume")
    return shlex.join([PROG, *kept])
