"""What arrives at the local server, read into the shared request classes.

JSON bodies are parsed with orjson. Multipart bodies are read as a stream: text fields are
coerced by the request class's field types (integers from decimal text, booleans from
``true``/``false``), and files are spooled to disk chunk by chunk, never held whole in
memory, into a folder the caller owns. JSON edits' ``data:`` URLs are decoded to files
the same way.

What arrived is then structured into ``GenerateRequest`` / ``EditRequest`` /
``VariationRequest`` by the client's own converter in its strict mode
(``openai_images._converter.make_converter(strict=True)``): file fields arrive as spooled
paths, and unknown fields are refused. Its errors become ``Rejection`` s naming the
offending ``param``.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import functools
import hashlib
import re
import shutil
import tempfile
import typing
import urllib.parse
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import anyio
import attrs
import cattrs
import orjson
from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.multipart import BadContentDispositionHeader, BadContentDispositionParam

from openai_images._converter import FILE_FIELDS, make_converter, structure_problems
from openai_images._requests import (
    EditRequest,
    ImageRef,
    ImageRequest,
    VariationRequest,
)
from openai_images._rules import MAX_INPUT_IMAGES
from openai_images._sniff import sniff

from ._wire import Rejection

__all__ = [
    "MAX_FORM_PARTS",
    "Arrival",
    "Upload",
    "check_declared_type",
    "check_reference_shapes",
    "read_json",
    "read_json_value",
    "read_multipart",
    "request_workdir",
    "spool_reference",
    "structure_request",
    "too_large",
    "unknown_parameter",
]

RequestT = TypeVar("RequestT", bound=ImageRequest)

_CHUNK = 256 * 1024
_WRITE_AT = 1024 * 1024  # gather this much before a write: one thread hop per MiB
_TEXT_LIMIT = 256 * 1024  # a 32,000-character prompt is at most 128 KB of UTF-8
_IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/webp"})
# Every field once, 16 images, a mask and a markup, and room for nested fields: a form with
# more parts is abuse, refused before it costs the event loop seconds of parsing.
MAX_FORM_PARTS = 64

_BAD_JSON = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't "
    "using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was "
    "sent was not valid JSON.)"
)


@attrs.frozen(kw_only=True)
class Upload:
    """One file that arrived, spooled to disk.

    Attributes:
        field: The request field it belongs to: ``"image"``, ``"mask"`` or ``"markup"``.
        part: The part's name as sent (``"image"``, ``"image[]"``, ``"mask"``), or the
            JSON reference's path (``"images[0]"``).
        filename: The part's filename (a reference's path for ``data:`` URLs).
        content_type: The declared content type, if any.
        path: Where it was spooled.
        size: Its size in bytes.
        digest: A hex digest of its bytes (it seeds the images made from it).
    """

    field: str
    part: str
    filename: str
    content_type: str | None
    path: Path
    size: int
    digest: str


@attrs.frozen(kw_only=True)
class Arrival:
    """A request body as it arrived: wire fields and spooled files."""

    fields: dict[str, Any]
    uploads: tuple[Upload, ...] = ()


def too_large(max_bytes: int) -> Rejection:
    """The 413 for a body over ``max_bytes``."""
    return Rejection(
        f"Request too large: the body is over the server's limit of {max_bytes} bytes.",
        status=413,
        code="request_too_large",
    )


@contextlib.asynccontextmanager
async def request_workdir(parent: Path | None = None) -> AsyncIterator[Path]:
    """A fresh folder for one request's files, removed on exit even when cancelled."""
    made = await anyio.to_thread.run_sync(
        functools.partial(tempfile.mkdtemp, prefix="openai-images-", dir=parent)
    )
    path = Path(made)
    try:
        yield path
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(
                functools.partial(shutil.rmtree, path, ignore_errors=True)
            )


async def read_json_value(request: web.Request, *, max_bytes: int) -> Any:
    """The request's body as any JSON value.

    Raises:
        Rejection: The body is larger than ``max_bytes`` or not JSON.
    """
    if request.content_length is not None and request.content_length > max_bytes:
        raise too_large(max_bytes)
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge as error:
        raise too_large(max_bytes) from error
    if len(raw) > max_bytes:
        raise too_large(max_bytes)
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise Rejection(_BAD_JSON) from error


async def read_json(request: web.Request, *, max_bytes: int) -> dict[str, Any]:
    """The request's JSON object, ``null`` fields dropped (the schema's "unset").

    Raises:
        Rejection: The body is too large, not JSON, or not an object.
    """
    data = await read_json_value(request, max_bytes=max_bytes)
    if not isinstance(data, dict):
        raise Rejection(
            f"Invalid type for the request body: expected an object, got {_json_type(data)}.",
            code="invalid_type",
        )
    return {key: value for key, value in data.items() if value is not None}


async def read_multipart(
    request: web.Request,
    *,
    cls: type[EditRequest] | type[VariationRequest],
    workdir: Path,
    max_bytes: int,
) -> Arrival:
    """Read a multipart form: text fields coerced, files spooled into ``workdir``.

    Raises:
        Rejection: The form is malformed, too large, has an unknown file field, or a text
            field that does not read as its type.
    """
    if request.content_length is not None and request.content_length > max_bytes:
        raise too_large(max_bytes)
    kinds = _text_kinds(cls)
    file_fields = FILE_FIELDS[cls]
    budget = _Budget(max_bytes)
    fields: dict[str, Any] = {}
    uploads: list[Upload] = []
    parts = 0
    try:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            # A body already buffered parses without ever waiting on the socket: yield, so
            # one request of many tiny parts cannot hold the loop from every other client.
            await anyio.lowlevel.checkpoint()
            parts += 1
            if parts > MAX_FORM_PARTS:
                raise Rejection(
                    f"Too many parts in the multipart form: at most {MAX_FORM_PARTS}.",
                    code="invalid_value",
                )
            if not isinstance(part, BodyPartReader):
                raise Rejection("Nested multipart bodies are not supported.")
            name = part.name
            if not name:
                raise Rejection("A multipart part has no name in its Content-Disposition.")
            field = name.removesuffix("[]")
            if field.split("[", 1)[0] not in kinds:
                # Refused at the first unknown name, not after reading what follows it.
                raise unknown_parameter(name)
            if part.filename is None:
                if field in file_fields:
                    raise Rejection(
                        f"Invalid type for '{field}': expected a file (a part with a "
                        "filename), got text.",
                        param=field,
                        code="invalid_type",
                    )
                text = await _read_text(part, budget, name)
                path = _bracketed(name)
                if path is None:
                    fields[name] = _coerce(name, text, kinds)
                else:
                    _nest(fields, name, path, text)
                continue
            if field not in file_fields:
                if field in kinds:
                    raise Rejection(
                        f"Invalid type for '{field}': expected text, got a file.",
                        param=field,
                        code="invalid_type",
                    )
                raise unknown_parameter(name)
            # Spooling stops only past one image too many and a mask: up to there the rules
            # judge the request, naming its first broken rule as the client does.
            if len(uploads) > MAX_INPUT_IMAGES + 1:
                images = sum(upload.field == "image" for upload in uploads)
                raise Rejection(
                    f"Too many files: an edit takes at most {MAX_INPUT_IMAGES} images and a mask.",
                    param="image" if images > MAX_INPUT_IMAGES else field,
                    code="invalid_value",
                )
            spooled = workdir / f"upload-{len(uploads)}"
            uploads.append(await _spool_part(part, field, name, spooled, budget))
    except (
        ValueError,
        AssertionError,
        RuntimeError,
        KeyError,
        HttpProcessingError,
        # aiohttp warns of a malformed Content-Disposition: an error where warnings are
        # errors (a test suite); otherwise the part has no name and is refused above.
        BadContentDispositionHeader,
        BadContentDispositionParam,
    ) as error:
        raise Rejection(f"Could not parse the multipart form: {error}") from error
    return Arrival(fields=fields, uploads=tuple(uploads))


def check_declared_type(upload: Upload, *, param: str) -> None:
    """Refuse a file whose declared content type is not an image type, as the API does.

    Raises:
        Rejection: The part (or ``data:`` URL) declared ``application/octet-stream`` or
            another type than PNG, JPEG or WebP.
    """
    declared = (upload.content_type or "application/octet-stream").split(";")[0].strip()
    if declared.lower() not in _IMAGE_TYPES:
        raise Rejection(
            f"Invalid file '{param}': unsupported mimetype ('{declared}'). Supported file "
            "formats are 'image/jpeg', 'image/png', and 'image/webp'.",
            param=param,
            code="unsupported_file_mimetype",
        )


async def spool_reference(
    ref: ImageRef,
    *,
    param: str,
    field: str,
    path: Path,
    files: Callable[[str], Path | None] | None = None,
) -> Upload:
    """Decode a JSON edit's ``data:`` URL reference to a file, or find its ``file_id``.

    Args:
        files: Where an uploaded file's bytes are, by id (``/v1/files``); ``None`` if unknown.

    Raises:
        Rejection: The reference is an unknown ``file_id`` or an http(s) URL (the local
            server cannot fetch it), or a malformed ``data:`` URL.
    """
    if ref.image_url is None:
        stored = files(ref.file_id or "") if files is not None else None
        if stored is None:
            raise Rejection(
                f"No such file: '{ref.file_id}'. Upload it to this server's /v1/files, send "
                "the image as a data: URL, or upload it as multipart.",
                param=f"{param}.file_id",
                code="invalid_value",
            )
        size, digest, head = await anyio.to_thread.run_sync(_digest_file, stored)
        # A stored file declares no type: it has the type its bytes show.
        sniffed = sniff(head, filename=stored.name, size=size).content_type
        return Upload(
            field=field,
            part=param,
            filename=ref.file_id or param,
            content_type=sniffed,
            path=stored,
            size=size,
            digest=digest,
        )
    if not ref.image_url.startswith("data:"):
        raise Rejection(
            "The local server cannot download images from URLs; send the image as a data: "
            "URL, or upload it as multipart.",
            param=f"{param}.image_url",
            code="invalid_image_url",
        )
    try:
        declared, size, digest = await anyio.to_thread.run_sync(
            _decode_data_url, ref.image_url, path
        )
    except ValueError as error:
        raise Rejection(
            f"Invalid data URL in '{param}.image_url': {error}",
            param=f"{param}.image_url",
            code="invalid_image_url",
        ) from error
    return Upload(
        field=field,
        part=param,
        filename=param,
        content_type=declared,
        path=path,
        size=size,
        digest=digest,
    )


def structure_request(cls: type[RequestT], data: dict[str, Any]) -> RequestT:
    """Structure wire data (with file fields as paths) into ``cls``.

    Raises:
        Rejection: An unknown field, a missing required one, or a value of the wrong type;
            unknown fields are reported first.
    """
    try:
        request: RequestT = _CONVERTER.structure(data, cls)
    except (cattrs.BaseValidationError, ValueError, TypeError, KeyError) as error:
        problems = structure_problems(error)
        if not problems:
            raise Rejection(f"Invalid request body: {error}") from error
        first = problems[0]
        if first.code == "unknown_parameter":
            raise unknown_parameter(first.param) from error
        if first.code == "missing_required_parameter":
            raise Rejection(
                f"Missing required parameter: '{first.param}'.",
                param=first.param,
                code="missing_required_parameter",
            ) from error
        raise Rejection(
            f"Invalid type for '{first.param}': {first.detail}.",
            param=first.param,
            code="invalid_type",
        ) from error
    return request


def unknown_parameter(name: str) -> Rejection:
    """The API's error for a field it does not know."""
    return Rejection(f"Unknown parameter: '{name}'.", param=name, code="unknown_parameter")


def check_reference_shapes(data: Mapping[str, Any]) -> None:
    """Refuse a JSON edit whose ``images`` / ``mask`` are not reference objects.

    Raises:
        Rejection: ``images`` is not a list of objects, ``mask`` not an object, or ``image``
            (an upload field) appears in JSON.
    """
    if "image" in data:
        raise Rejection(
            "Unknown parameter: 'image'. A JSON edit gives its inputs as 'images' "
            "references; upload files with multipart/form-data instead.",
            param="image",
            code="unknown_parameter",
        )
    images = data.get("images")
    if images is not None:
        if not isinstance(images, list):
            raise _wrong_type("images", "an array of image references", images)
        for index, item in enumerate(images):
            if not isinstance(item, dict):
                raise _wrong_type(f"images[{index}]", "an object", item)
    mask = data.get("mask")
    if mask is not None and not isinstance(mask, dict):
        raise _wrong_type("mask", "an object", mask)


_CONVERTER = make_converter(detailed_validation=True, strict=True)


def _json_type(value: Any) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return names.get(type(value), "null")


def _wrong_type(param: str, expected: str, value: Any) -> Rejection:
    return Rejection(
        f"Invalid type for '{param}': expected {expected}, got {_json_type(value)}.",
        param=param,
        code="invalid_type",
    )


def _text_kinds(cls: type[ImageRequest]) -> dict[str, str | None]:
    """Each field's text coercion: ``"int"``, ``"bool"``, ``"str"``, or ``None`` (not text)."""
    known = _KINDS_BY_CLASS.get(cls)
    if known is not None:
        return known
    kinds: dict[str, str | None] = {}
    for name, hint in typing.get_type_hints(cls).items():
        if name == "endpoint":
            continue
        options = typing.get_args(hint) or (hint,)
        if bool in options:
            kinds[name] = "bool"
        elif int in options:
            kinds[name] = "int"
        elif str in options or any(typing.get_origin(o) is typing.Literal for o in options):
            kinds[name] = "str"
        else:
            kinds[name] = None
    _KINDS_BY_CLASS[cls] = kinds
    return kinds


_KINDS_BY_CLASS: dict[type[Any], dict[str, str | None]] = {}


def _coerce(name: str, text: str, kinds: Mapping[str, str | None]) -> Any:
    if name not in kinds:
        return text  # the converter names it as an unknown parameter
    kind = kinds[name]
    if kind == "int":
        stripped = text.strip()
        if stripped.lstrip("-").isdecimal() and stripped.isascii():
            return int(stripped)
        raise Rejection(
            f"Invalid type for '{name}': expected an integer, got '{text[:40]}'.",
            param=name,
            code="invalid_type",
        )
    if kind == "bool":
        lowered = text.strip().lower()
        if lowered in ("true", "false"):
            return lowered == "true"
        raise Rejection(
            f"Invalid type for '{name}': expected a boolean (true or false), got '{text[:40]}'.",
            param=name,
            code="invalid_type",
        )
    if kind is None:
        raise Rejection(
            f"Invalid type for '{name}': an object goes as bracketed fields "
            f"('{name}[key]'), image references in an application/json body.",
            param=name,
            code="invalid_type",
        )
    return text


_BRACKETED = re.compile(r"([^\[\]]+)((?:\[[^\[\]]+\])+)")


def _bracketed(name: str) -> list[str] | None:
    """``svg[reasoning][effort]`` as ``["svg", "reasoning", "effort"]``; ``None`` if plain."""
    match = _BRACKETED.fullmatch(name)
    if match is None:
        return None
    return [match.group(1), *re.findall(r"\[([^\[\]]+)\]", match.group(2))]


def _nest(fields: dict[str, Any], name: str, path: list[str], text: str) -> None:
    """Put a bracketed field's text into nested objects, as a JSON body would carry it."""
    node = fields
    for key in path[:-1]:
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            raise Rejection(
                f"Invalid type for '{key}': sent both as a value and as an object ({name}).",
                param=key,
                code="invalid_type",
            )
        node = child
    node[path[-1]] = text


@attrs.define
class _Budget:
    """Counts the bytes read from a body and refuses more than ``limit``."""

    limit: int
    spent: int = 0

    def spend(self, amount: int) -> None:
        self.spent += amount
        if self.spent > self.limit:
            raise too_large(self.limit)


async def _read_text(part: BodyPartReader, budget: _Budget, name: str) -> str:
    data = bytearray()
    while chunk := await part.read_chunk(_CHUNK):
        budget.spend(len(chunk))
        data += chunk
        if len(data) > _TEXT_LIMIT:
            raise Rejection(
                f"Invalid value for '{name}': the field is over {_TEXT_LIMIT} bytes.",
                param=name,
                code="string_above_max_length",
            )
    try:
        return data.decode(part.get_charset(default="utf-8"))
    except (UnicodeDecodeError, LookupError) as error:
        raise Rejection(
            f"Invalid value for '{name}': the text is not valid {error}.",
            param=name,
            code="invalid_value",
        ) from error


async def _spool_part(
    part: BodyPartReader, field: str, name: str, path: Path, budget: _Budget
) -> Upload:
    digest = hashlib.blake2b(digest_size=16)
    size = 0
    pending = bytearray()
    async with await anyio.open_file(path, "wb") as out:
        while chunk := await part.read_chunk(_CHUNK):
            budget.spend(len(chunk))
            size += len(chunk)
            digest.update(chunk)
            pending += chunk
            if len(pending) >= _WRITE_AT:
                await out.write(bytes(pending))
                pending.clear()
        if pending:
            await out.write(bytes(pending))
    return Upload(
        field=field,
        part=name,
        filename=part.filename or name,
        content_type=part.headers.get("Content-Type"),
        path=path,
        size=size,
        digest=digest.hexdigest(),
    )


def _decode_data_url(url: str, path: Path) -> tuple[str, int, str]:
    """Write a ``data:`` URL's bytes to ``path``; return (declared type, size, digest)."""
    header, comma, payload = url.removeprefix("data:").partition(",")
    if not comma:
        raise ValueError("no comma between the media type and the data")
    declared = header.removesuffix(";base64").split(";")[0].strip() or "text/plain"
    if header.endswith(";base64"):
        try:
            data = base64.b64decode(payload, validate=True)
        except binascii.Error as error:
            raise ValueError(f"the base64 data does not decode ({error})") from error
    else:
        data = urllib.parse.unquote_to_bytes(payload)
    path.write_bytes(data)
    return declared, len(data), hashlib.blake2b(data, digest_size=16).hexdigest()


def _digest_file(path: Path) -> tuple[int, str, bytes]:
    """A stored file's size, digest and first bytes."""
    digest = hashlib.blake2b(digest_size=16)
    size = 0
    head = b""
    with path.open("rb") as source:
        while chunk := source.read(_CHUNK):
            head = head or chunk[:4096]
            size += len(chunk)
            digest.update(chunk)
    return size, digest.hexdigest(), head
