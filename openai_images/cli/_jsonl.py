"""The batch-file format: one request per line, in the API's own field names.

Each non-blank line is a JSON object with the fields of its endpoint's request, plus an
optional ``"endpoint"`` (``generations``, ``edits`` or ``variations``; a line with
``image`` or ``images`` is an edit unless it says ``variations``) and an optional
``"name"`` for its output files. Image and mask paths are relative to the file's folder.
Lines are structured by the library's converter in its strict mode and checked by the
rules table, so every line is known good before anything is sent; a bad one is reported
with its file, line and field.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import orjson

from openai_images._errors import RequestValidationError
from openai_images._requests import ImageRequest, VariationRequest
from openai_images._rules import check

from ._failures import CommandError
from ._fields import REQUEST_CLASSES, StructureFailure, structure

__all__ = ["BatchLine", "check_batch_outputs", "parse_batch_line", "read_batch_file"]

_PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,200}")


@attrs.frozen(kw_only=True)
class BatchLine:
    """One request of a batch file.

    Attributes:
        line: Its line number in the file, from 1.
        key: What its output files are named after: ``{file stem}-{line:06d}``, or the
            line's ``"name"``.
        request: The request.
    """

    line: int
    key: str
    request: ImageRequest


def read_batch_file(path: Path) -> list[BatchLine]:
    """Read and check every line of a JSONL batch file before anything is sent.

    Raises:
        CommandError: A line is not a valid request (naming the file, line and field), or
            an input image is missing.
    """
    base = path.parent
    items: list[BatchLine] = []
    seen: dict[str, int] = {}
    with path.open("rb") as file:
        for number, raw in enumerate(file, start=1):
            if not raw.strip():
                continue
            where = f"{path}:{number}"
            try:
                data = orjson.loads(raw)
            except orjson.JSONDecodeError as error:
                raise CommandError(f"{where}: not a JSON object ({error})") from error
            if not isinstance(data, dict):
                raise CommandError(f"{where}: a line must be a JSON object, not {raw[:40]!r}")
            name, request = parse_batch_line(data, base=base, where=where)
            key = name if name is not None else f"{path.stem}-{number:06d}"
            if key in seen:
                raise CommandError(f"{where}: the name {key!r} is taken by line {seen[key]}")
            seen[key] = number
            items.append(BatchLine(line=number, key=key, request=request))
    if not items:
        raise CommandError(f"{path}: no requests in the file")
    return items


def parse_batch_line(
    data: dict[str, Any], *, base: Path, where: str = "line"
) -> tuple[str | None, ImageRequest]:
    """One line of a batch file as its output name (or ``None``) and its request.

    Raises:
        CommandError: The line is not a valid request, naming ``where`` and the field.

    Example:
        >>> parse_batch_line({"prompt": "a fox", "model": "gpt-image-1.5"}, base=Path("."))
        (None, GenerateRequest(prompt='a fox', model='gpt-image-1.5', ...))
    """
    fields = dict(data)
    endpoint = fields.pop("endpoint", None)
    name = fields.pop("name", None)
    if name is not None and (not isinstance(name, str) or not _PLAIN_NAME.fullmatch(name)):
        raise CommandError(f"{where}: name must be a plain file name, not {name!r}")
    if endpoint is None:
        endpoint = "edits" if ("image" in fields or "images" in fields) else "generations"
    cls = REQUEST_CLASSES.get(endpoint) if isinstance(endpoint, str) else None
    if cls is None:
        raise CommandError(
            f"{where}: endpoint must be generations, edits or variations, not {endpoint!r}"
        )
    # Paths are resolved (and checked) here; the converter takes file fields as given.
    if cls is VariationRequest and fields.get("image") is None:
        raise CommandError(f"{where}: image is missing")
    if fields.get("image") is not None:
        fields["image"] = _input_paths(fields["image"], base=base, where=where, param="image")
    mask = fields.get("mask")
    if mask is not None and not isinstance(mask, dict):
        fields["mask"] = _input_paths(mask, base=base, where=where, param="mask")
    try:
        request: ImageRequest = structure(cls, fields)
    except StructureFailure as failure:
        problem = failure.problem
        if problem.code == "unknown_parameter":
            raise CommandError(
                f"{where}: unknown field {problem.param!r} for {endpoint}"
            ) from failure
        if problem.code == "missing_required_parameter":
            raise CommandError(f"{where}: {problem.param} is missing") from failure
        detail = " ".join(problem.detail.split())
        raise CommandError(f"{where}: {problem.param}: {detail}") from failure
    violations = check(request)
    if violations:
        raise CommandError(f"{where}: {RequestValidationError(violations)}")
    return name, request


def _input_paths(value: Any, *, base: Path, where: str, param: str) -> Path | list[Path]:
    """Image paths of a line, relative to the batch file's folder, checked to exist."""
    values = value if isinstance(value, list) else [value]
    if not values or not all(isinstance(item, str) and item for item in values):
        raise CommandError(f"{where}: {param} must be a path or a list of paths")
    paths = [base / item for item in values]
    for path in paths:
        if not path.is_file():
            raise CommandError(f"{where}: {param}: no such file: {path}")
    return paths if isinstance(value, list) else paths[0]


def check_batch_outputs(directory: Path, keys: Sequence[str]) -> None:
    """Fail before sending anything when a line's outputs are already there."""
    if not directory.is_dir():
        return
    taken = sorted(entry.name for entry in directory.iterdir())
    for key in keys:
        found = next(
            (
                name
                for name in taken
                if name.startswith((f"{key}.", f"{key}-")) and not name.endswith(".part")
            ),
            f".{key}.done" if f".{key}.done" in taken else None,
        )
        if found is not None:
            raise CommandError(
                f"{directory / found} already exists (use --resume to skip finished lines, "
                "or --overwrite)"
            )
