"""The ``openai-images`` command line (also ``python -m openai_images``).

Commands: ``generate``, ``edit``, ``variation``, ``batch``, ``serve`` and ``demo``. Every
field of the API has an option named after it; the key comes from ``OPENAI_API_KEY`` (or
``--api-key``) and the server from ``OPENAI_BASE_URL`` (or ``--base-url``).

Results are saved as ``{prefix}-{n}.{ext}`` (``n`` from 1) in the output folder, partial
images of a stream as ``{prefix}-partial-{i}.{ext}``. An existing file is never replaced
unless ``--overwrite`` is given. Each saved path is printed, or with ``--json`` the
response's metadata (without the image data) for scripts.

Failures print one line, ``error: <what happened>``, to stderr and exit with status 1;
usage mistakes exit with 2 and an interrupt with 130. ``--debug`` shows the traceback
and the library's log.

Example:
    $ openai-images generate "a watercolor lighthouse" --model gpt-image-1 -o out/
    out/a-watercolor-lighthouse-1.png
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import os
import re
import sys
import traceback
import typing
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

import anyio
import attrs
import orjson

from ._batch import BatchProgress, BatchResult, BatchSummary, ProgressBar, progress_bar
from ._client import AsyncImagesClient
from ._converter import converter, make_converter
from ._errors import APIError, APIStatusError, OpenAIImagesError, RequestValidationError
from ._requests import EditRequest, GenerateRequest, ImageRef, ImageRequest, VariationRequest
from ._responses import (
    Image,
    ImageEditPartialImageEvent,
    ImageGenPartialImageEvent,
    ImagesResponse,
    Usage,
    write_atomically,
)
from ._rules import check
from ._sniff import format_extension, image_extension
from ._version import __version__

__all__ = ["main"]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

logger = logging.getLogger("openai_images.cli")


class CommandError(Exception):
    """A failure of the command itself (a file in the way, a bad batch file...)."""


# -- options ---------------------------------------------------------------------------

# One entry per API field: its flags, its type and its help. The option's dest is the
# field's own name, so a parsed namespace maps straight onto a request class.
_FIELDS: dict[str, tuple[tuple[str, ...], type, str]] = {
    "model": (
        ("-m", "--model"),
        str,
        "the model: gpt-image-1, gpt-image-1-mini, gpt-image-1.5, gpt-image-2, dall-e-2, "
        "dall-e-3... (the API's default when unset)",
    ),
    "n": (("-n",), int, "how many images to make (1-10; dall-e-3: 1)"),
    "size": (("-s", "--size"), str, "WIDTHxHEIGHT (e.g. 1024x1024) or auto"),
    "quality": (
        ("--quality",),
        str,
        "low, medium, high or auto (GPT image models); standard or hd (DALL-E)",
    ),
    "background": (
        ("--background",),
        str,
        "transparent, opaque or auto (GPT image models)",
    ),
    "moderation": (("--moderation",), str, "low or auto (GPT image models)"),
    "input_fidelity": (("--input-fidelity",), str, "high or low (edits, GPT image models)"),
    "output_format": (("--format", "--output-format"), str, "png, jpeg or webp"),
    "output_compression": (
        ("--compression", "--output-compression"),
        int,
        "0-100, for jpeg and webp",
    ),
    "response_format": (
        ("--response-format",),
        str,
        "url or b64_json (DALL-E; url results are downloaded)",
    ),
    "style": (("--style",), str, "vivid or natural (dall-e-3)"),
    "user": (("--user",), str, "an id of your end user, for abuse monitoring"),
    "partial_images": (
        ("--partial-images",),
        int,
        "partial images to stream and save, 0-3 (implies --stream)",
    ),
}

GENERATE_FIELDS = (
    "model",
    "n",
    "size",
    "quality",
    "background",
    "moderation",
    "output_format",
    "output_compression",
    "response_format",
    "style",
    "user",
    "partial_images",
)
EDIT_FIELDS = (
    "model",
    "n",
    "size",
    "quality",
    "background",
    "moderation",
    "input_fidelity",
    "output_format",
    "output_compression",
    "response_format",
    "user",
    "partial_images",
)
VARIATION_FIELDS = ("model", "n", "size", "response_format", "user")


def _add_fields(parser: argparse.ArgumentParser, names: Sequence[str], *, stream: bool) -> None:
    group = parser.add_argument_group("request fields (as the API names them)")
    for name in names:
        flags, kind, text = _FIELDS[name]
        long_flag = next((flag for flag in flags if flag.startswith("--")), name)
        metavar = "N" if kind is int else long_flag.lstrip("-").upper().replace("-", "_")
        group.add_argument(*flags, dest=name, type=kind, default=None, metavar=metavar, help=text)
    if stream:
        group.add_argument(
            "--stream", action="store_true", help="stream the result, saving partial images"
        )


def _fields(args: argparse.Namespace, names: Sequence[str]) -> dict[str, Any]:
    return {name: getattr(args, name) for name in names if getattr(args, name) is not None}


def _connection_options() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("connection")
    group.add_argument(
        "--api-key",
        default=None,
        metavar="KEY",
        help="the API key (default: $OPENAI_API_KEY); it is never printed",
    )
    group.add_argument(
        "--base-url",
        default=None,
        metavar="URL",
        help="the API root (default: $OPENAI_BASE_URL or https://api.openai.com/v1)",
    )
    group.add_argument(
        "--organization", default=None, metavar="ORG", help="default: $OPENAI_ORG_ID"
    )
    group.add_argument(
        "--project", default=None, metavar="PROJECT", help="default: $OPENAI_PROJECT_ID"
    )
    group.add_argument(
        "--timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="for each request (default 900)",
    )
    group.add_argument(
        "--max-retries",
        type=int,
        default=2,
        metavar="N",
        help="retries of a failed request (default 2)",
    )
    return parent


def _common_options() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "--debug", action="store_true", help="show tracebacks and the library's log"
    )
    return parent


def _output_options(*, prefix: bool = True) -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("output")
    group.add_argument(
        "-o",
        "--output-dir",
        type=Path,
        default=Path("."),
        metavar="DIR",
        help="where to save the images (made if missing; default: the current folder)",
    )
    if prefix:
        group.add_argument(
            "--prefix",
            default=None,
            metavar="PREFIX",
            help="file names start with this (default: from the prompt or the input's name)",
        )
    group.add_argument(
        "--overwrite", action="store_true", help="replace existing files instead of failing"
    )
    group.add_argument(
        "--json",
        action="store_true",
        help="print the response's metadata (paths, usage, request id) as JSON",
    )
    return parent


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the whole command line."""
    common = _common_options()
    connection = _connection_options()
    output = _output_options()
    parser = argparse.ArgumentParser(
        prog="openai-images",
        description="Generate, edit and vary images with the OpenAI Images API.",
        epilog="Run 'openai-images COMMAND --help' for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"openai-images {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    generate = commands.add_parser(
        "generate",
        parents=[common, connection, output],
        help="create images from a prompt",
        description="Create images from a prompt (POST /images/generations).",
    )
    generate.add_argument("prompt", help="what to draw")
    _add_fields(generate, GENERATE_FIELDS, stream=True)
    generate.set_defaults(run=_generate)

    edit = commands.add_parser(
        "edit",
        parents=[common, connection, output],
        help="edit or combine images",
        description=(
            "Edit or combine images (POST /images/edits). Give files with -i (several for "
            "GPT image models), or references with --image-url / --image-file-id."
        ),
    )
    edit.add_argument("prompt", help="what to make of the images")
    edit.add_argument(
        "-i",
        "--image",
        dest="images",
        action="append",
        type=Path,
        default=[],
        metavar="IMAGE",
        help="an input image file; repeat for several (up to 16)",
    )
    edit.add_argument(
        "--image-url",
        dest="image_urls",
        action="append",
        default=[],
        metavar="URL",
        help="an input image by https:// or data: URL (a JSON edit); repeatable",
    )
    edit.add_argument(
        "--image-file-id",
        dest="image_file_ids",
        action="append",
        default=[],
        metavar="FILE_ID",
        help="an input image by uploaded file id (a JSON edit); repeatable",
    )
    mask = edit.add_mutually_exclusive_group()
    mask.add_argument(
        "--mask", type=Path, default=None, help="a PNG whose transparent pixels mark where to edit"
    )
    mask.add_argument("--mask-url", default=None, help="the mask by URL (a JSON edit)")
    mask.add_argument("--mask-file-id", default=None, help="the mask by file id (a JSON edit)")
    _add_fields(edit, EDIT_FIELDS, stream=True)
    edit.set_defaults(run=_edit)

    variation = commands.add_parser(
        "variation",
        parents=[common, connection, output],
        help="make variations of an image (dall-e-2)",
        description="Make variations of a square PNG (POST /images/variations, dall-e-2).",
    )
    variation.add_argument("image", type=Path, help="a square PNG under 4 MB")
    _add_fields(variation, VARIATION_FIELDS, stream=False)
    variation.set_defaults(run=_variation)

    batch = commands.add_parser(
        "batch",
        parents=[common, connection, _output_options(prefix=False)],
        help="send many requests from a JSONL file",
        description=(
            "Send every request of a JSONL file, several at a time, within a rate limit. "
            "Each line is one request in the API's own field names, with an optional "
            '"endpoint" (generations, edits or variations; otherwise a line with "image" or '
            '"images" is an edit, any other a generation) and an optional "name" for its '
            "files. Image paths are relative to the file's folder. Every line is checked "
            "before anything is sent. Results are saved as NAME.EXT (NAME-I.EXT for several "
            "images), NAME being the line's name or FILE-LINE (e.g. jobs-000042); with "
            "--resume, lines whose results are all saved are skipped."
        ),
    )
    batch.add_argument("file", type=Path, help="the JSONL file of requests")
    batch.add_argument(
        "-c",
        "--concurrency",
        type=int,
        metavar="N",
        default=16,
        help="requests in flight (default 16)",
    )
    batch.add_argument(
        "--rpm",
        type=int,
        metavar="N",
        default=None,
        help="requests per minute at most (default: no limit)",
    )
    batch.add_argument(
        "--resume", action="store_true", help="skip lines whose results are already saved"
    )
    batch.add_argument("--no-progress", action="store_true", help="do not show a progress bar")
    batch.set_defaults(run=_batch)

    serve = commands.add_parser(
        "serve",
        parents=[common],
        help="run the local Images server (for tests and demos)",
        description=(
            "Run the local Images server, which makes real images without a network or a "
            "key, until Ctrl-C. Point a client at it with OPENAI_BASE_URL."
        ),
    )
    serve.add_argument("--host", default="127.0.0.1", help="default 127.0.0.1")
    serve.add_argument(
        "--port", type=int, metavar="PORT", default=8000, help="default 8000 (0: any free port)"
    )
    serve.add_argument(
        "--latency",
        type=float,
        metavar="SECONDS",
        default=0.0,
        help="seconds added to every answer (default 0)",
    )
    serve.add_argument(
        "--rpm",
        type=int,
        metavar="N",
        default=None,
        help="requests per minute before 429s (default: none)",
    )
    serve.add_argument(
        "--api-key",
        dest="api_keys",
        action="append",
        default=None,
        metavar="KEY",
        help="a key the server accepts; repeatable (default: any key)",
    )
    serve.add_argument(
        "--control",
        action="store_true",
        help="enable the control route that scripts faults (for tests)",
    )
    serve.set_defaults(run=_serve)

    demo = commands.add_parser(
        "demo",
        parents=[common],
        help="show what the library does, against a local server",
        description=(
            "Generate, edit four product photos into a gift basket, vary, stream and batch, "
            "then print a table of timings. Uses a local server unless --real."
        ),
    )
    demo.add_argument(
        "-o",
        "--output-dir",
        type=Path,
        default=Path("openai-images-demo"),
        metavar="DIR",
        help="where to write the images (default: ./openai-images-demo)",
    )
    demo.add_argument(
        "--real",
        action="store_true",
        help="use the real API with $OPENAI_API_KEY (this costs money)",
    )
    demo.add_argument(
        "--batch-size",
        type=int,
        metavar="N",
        default=200,
        help="edits in the batch step (default 200)",
    )
    demo.add_argument(
        "--concurrency",
        type=int,
        metavar="N",
        default=32,
        help="batch requests in flight (default 32)",
    )
    demo.set_defaults(run=_demo)
    return parser


# -- running ---------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit status.

    Args:
        argv: The arguments after the program's name (default: ``sys.argv[1:]``).

    Example:
        ```python
        main(["generate", "a red fox", "--model", "gpt-image-1"])
        # -> 0
        ```
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else EXIT_USAGE
    usage = _usage_problem(args)
    if usage is not None:
        print(f"openai-images {args.command}: error: {usage}", file=sys.stderr)
        return EXIT_USAGE
    if args.debug:
        logging.basicConfig(
            level=logging.DEBUG, format="%(asctime)s %(name)s %(levelname)s %(message)s"
        )
    run: Callable[[argparse.Namespace], Awaitable[int]] = args.run
    try:
        return anyio.run(run, args)
    except (KeyboardInterrupt, asyncio.CancelledError):
        # Before Python 3.11, Ctrl-C surfaces from anyio.run as the main task's cancellation.
        if args.command == "serve":
            # Ctrl-C is how a server is meant to stop.
            print("stopped", file=sys.stderr)
            return EXIT_OK
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (OpenAIImagesError, CommandError, OSError) as error:
        if args.debug:
            traceback.print_exc()
        print(f"error: {describe_error(error)}", file=sys.stderr)
        return EXIT_ERROR


def _usage_problem(args: argparse.Namespace) -> str | None:
    """A mistake argparse cannot see by itself, or ``None``."""
    if args.command == "edit":
        if not (args.images or args.image_urls or args.image_file_ids):
            return "give at least one input: -i IMAGE, --image-url URL or --image-file-id ID"
        if args.images and (args.image_urls or args.image_file_ids):
            return "give files (-i) or references (--image-url, --image-file-id), not both"
        if args.mask is not None and not args.images:
            return "--mask goes with -i files; use --mask-url or --mask-file-id with references"
        if (args.mask_url or args.mask_file_id) and args.images:
            return "--mask-url and --mask-file-id go with references; use --mask with -i files"
    if args.command == "batch":
        if args.concurrency < 1:
            return "--concurrency must be 1 or more"
        if args.rpm is not None and args.rpm < 1:
            return "--rpm must be 1 or more"
    if args.command == "demo" and args.batch_size < 1:
        return "--batch-size must be 1 or more"
    return None


def describe_error(error: BaseException) -> str:
    """One line saying what went wrong, with the HTTP status and request id when known.

    Example:
        >>> from openai_images import BadRequestError
        >>> describe_error(BadRequestError("Invalid size.", status_code=400, request_id="req_1"))
        'Invalid size. (HTTP 400, request id req_1)'
    """
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


def _client(args: argparse.Namespace) -> AsyncImagesClient:
    return AsyncImagesClient(
        api_key=args.api_key,
        base_url=args.base_url,
        organization=args.organization,
        project=args.project,
        timeout=args.timeout,
        max_retries=args.max_retries,
    )


# -- saving ----------------------------------------------------------------------------


def slug(text: str, *, limit: int = 40) -> str:
    """A file-name prefix from a prompt: lower-case words joined by ``-``.

    Example:
        >>> slug("A watercolor lighthouse, at dusk!")
        'a-watercolor-lighthouse-at-dusk'
        >>> slug("***")
        'image'
    """
    words = re.findall(r"[a-z0-9]+", text.lower())
    out = ""
    for word in words:
        candidate = f"{out}-{word}" if out else word
        if len(candidate) > limit:
            break
        out = candidate
    return out or (words[0][:limit] if words else "image")


class Outputs:
    """Where a command's images go: ``{directory}/{prefix}-{label}.{ext}``.

    Nothing existing is replaced unless ``overwrite``: ``check_free`` (blocking) fails
    before a request is sent when a predicted name is taken, and ``save`` checks again.
    """

    def __init__(self, directory: Path, prefix: str, *, overwrite: bool) -> None:
        self.directory = directory
        self.prefix = prefix
        self.overwrite = overwrite

    def path(self, label: str | int, ext: str) -> Path:
        """The path of one output."""
        return self.directory / f"{self.prefix}-{label}.{ext}"

    def check_free(self, paths: Sequence[Path]) -> None:
        """Fail naming the first path that exists (unless overwriting)."""
        if self.overwrite:
            return
        for path in paths:
            if path.exists():
                raise CommandError(f"{path} already exists (use --overwrite to replace it)")

    async def save(self, label: str | int, data: bytes, *, fallback_ext: str) -> Path:
        """Write one image atomically and return its path."""
        path = self.path(label, image_extension(data, fallback=fallback_ext))
        await anyio.to_thread.run_sync(self._write, path, data)
        return path

    def _write(self, path: Path, data: bytes) -> None:
        self.check_free([path])
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, data)


async def image_bytes(client: AsyncImagesClient, image: Image) -> bytes:
    """An image's bytes: decoded from ``b64_json``, or downloaded from its ``url``."""
    if image.b64_json is None:
        return await client.download(image)
    return image.content()


def _print_json(data: Any, out: TextIO) -> None:
    out.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")


def response_metadata(response: ImagesResponse, paths: Sequence[Path]) -> dict[str, Any]:
    """A response as JSON data, with saved paths in place of the image data."""
    return {
        "created": response.created,
        "request_id": response.request_id,
        "size": response.size,
        "quality": response.quality,
        "background": response.background,
        "output_format": response.output_format,
        "usage": converter.unstructure(response.usage) if response.usage else None,
        "images": [
            {"path": str(path), "url": image.url, "revised_prompt": image.revised_prompt}
            for path, image in zip(paths, response.data, strict=True)
        ],
    }


async def _send_and_save(
    args: argparse.Namespace, request: ImageRequest, outputs: Outputs, *, stream: bool
) -> int:
    fields: dict[str, Any] = converter.unstructure(request)
    fallback_ext = format_extension(fields.get("output_format"))
    expected = [outputs.path(i, fallback_ext) for i in range(1, (fields.get("n") or 1) + 1)]
    if stream:
        partials = fields.get("partial_images") or 0
        expected += [outputs.path(f"partial-{i}", fallback_ext) for i in range(1, partials + 1)]
    await anyio.to_thread.run_sync(outputs.check_free, expected)
    async with _client(args) as client:
        if stream:
            assert isinstance(request, (GenerateRequest, EditRequest))
            return await _stream_and_save(args, client, request, outputs, fallback_ext)
        response = await client.send(request)
        paths: list[Path] = []
        for index, image in enumerate(response.data, start=1):
            data = await image_bytes(client, image)
            paths.append(await outputs.save(index, data, fallback_ext=fallback_ext))
            if not args.json:
                print(paths[-1], flush=True)
    if args.json:
        _print_json(response_metadata(response, paths), sys.stdout)
    return EXIT_OK


async def _stream_and_save(
    args: argparse.Namespace,
    client: AsyncImagesClient,
    request: GenerateRequest | EditRequest,
    outputs: Outputs,
    fallback_ext: str,
) -> int:
    events: list[dict[str, Any]] = []
    completed = 0
    usage: Usage | None = None
    async with await client.send_stream(request) as stream:
        async for event in stream:
            index: int | None = None
            if isinstance(event, (ImageGenPartialImageEvent, ImageEditPartialImageEvent)):
                index = event.partial_image_index
                label: str | int = f"partial-{index + 1}"
            else:
                completed += 1
                label = completed
                usage = event.usage
            path = await outputs.save(label, event.content(), fallback_ext=fallback_ext)
            events.append({"type": event.type, "partial_image_index": index, "path": str(path)})
            if not args.json:
                print(path, flush=True)
        request_id = stream.request_id
    if args.json:
        _print_json(
            {
                "request_id": request_id,
                "usage": converter.unstructure(usage) if usage is not None else None,
                "events": events,
            },
            sys.stdout,
        )
    return EXIT_OK


# -- commands --------------------------------------------------------------------------


async def _generate(args: argparse.Namespace) -> int:
    fields = _fields(args, GENERATE_FIELDS)
    stream = args.stream or args.partial_images is not None
    request = GenerateRequest(prompt=args.prompt, **fields)
    outputs = Outputs(args.output_dir, args.prefix or slug(args.prompt), overwrite=args.overwrite)
    return await _send_and_save(args, request, outputs, stream=stream)


async def _edit(args: argparse.Namespace) -> int:
    fields = _fields(args, EDIT_FIELDS)
    stream = args.stream or args.partial_images is not None
    if args.images:
        image: Any = args.images[0] if len(args.images) == 1 else list(args.images)
        request = EditRequest(prompt=args.prompt, image=image, mask=args.mask, **fields)
    else:
        refs = [ImageRef(image_url=url) for url in args.image_urls]
        refs += [ImageRef(file_id=file_id) for file_id in args.image_file_ids]
        mask = None
        if args.mask_url or args.mask_file_id:
            mask = ImageRef(image_url=args.mask_url, file_id=args.mask_file_id)
        request = EditRequest(prompt=args.prompt, images=refs, mask=mask, **fields)
    outputs = Outputs(args.output_dir, args.prefix or slug(args.prompt), overwrite=args.overwrite)
    return await _send_and_save(args, request, outputs, stream=stream)


async def _variation(args: argparse.Namespace) -> int:
    fields = _fields(args, VARIATION_FIELDS)
    request = VariationRequest(image=args.image, **fields)
    prefix = args.prefix or f"{slug(args.image.stem)}-variation"
    outputs = Outputs(args.output_dir, prefix, overwrite=args.overwrite)
    return await _send_and_save(args, request, outputs, stream=False)


async def _serve(args: argparse.Namespace) -> int:
    from .testing._server import LocalImagesServer, serve_forever

    def ready(server: LocalImagesServer) -> None:
        # The URL alone on stdout, so a script can read it; the rest is for people.
        print(server.base_url, flush=True)
        print(
            f"Serving the Images API locally (Ctrl-C to stop). Point clients at it with:\n"
            f"  export OPENAI_BASE_URL={server.base_url} OPENAI_API_KEY=any-key",
            file=sys.stderr,
            flush=True,
        )

    # The access log (one line per request) is the server's output.
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    await serve_forever(
        host=args.host,
        port=args.port,
        api_keys=args.api_keys,
        latency=args.latency,
        requests_per_minute=args.rpm,
        control_route=args.control,
        on_ready=ready,
    )
    return EXIT_OK


async def _batch(args: argparse.Namespace) -> int:
    items = await anyio.to_thread.run_sync(read_batch_file, args.file)
    keys = [item.key for item in items]
    if not args.resume and not args.overwrite:
        await anyio.to_thread.run_sync(_check_batch_outputs, args.output_dir, keys)
    failures: list[tuple[BatchLine, BatchResult]] = []
    records: list[dict[str, Any]] = []
    async with _client(args) as client:
        progress = _batch_progress(total=len(items), enabled=not args.no_progress)
        try:
            batch = client.map(
                [item.request for item in items],
                concurrency=args.concurrency,
                requests_per_minute=args.rpm,
                output_dir=args.output_dir,
                resume=args.resume,
                key=lambda request, index: keys[index],
                on_progress=progress,
            )
            async with batch:
                async for result in batch:
                    line = items[result.index]
                    if result.error is not None:
                        failures.append((line, result))
                    records.append(_batch_record(line, result))
        finally:
            progress.close()
        summary = batch.summary()
    if args.json:
        records.sort(key=lambda record: int(record["line"]))
        _print_json({"summary": attrs.asdict(summary), "results": records}, sys.stdout)
    else:
        _print_summary(summary, total=len(items), output_dir=args.output_dir)
    failures.sort(key=lambda failure: failure[0].line)
    for line, result in failures[:_SHOWN_FAILURES]:
        assert result.error is not None
        print(f"error: {args.file}:{line.line}: {describe_error(result.error)}", file=sys.stderr)
    if len(failures) > _SHOWN_FAILURES:
        print(f"error: and {len(failures) - _SHOWN_FAILURES} more failures", file=sys.stderr)
    return EXIT_ERROR if failures else EXIT_OK


# -- batch files -----------------------------------------------------------------------

_SHOWN_FAILURES = 20
_REQUEST_CLASSES: dict[str, type[GenerateRequest | EditRequest | VariationRequest]] = {
    "generations": GenerateRequest,
    "edits": EditRequest,
    "variations": VariationRequest,
}
_strict_converter = make_converter()


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

    Each non-blank line is a JSON object with the API's field names, plus an optional
    ``"endpoint"`` (``generations``, ``edits`` or ``variations``; a line with ``image`` or
    ``images`` is an edit unless it says ``variations``) and an optional ``"name"`` for its
    output files. Image and mask paths are relative to the file's folder.

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

    Example:
        >>> parse_batch_line({"prompt": "a fox", "model": "dall-e-2"}, base=Path("."))
        (None, GenerateRequest(prompt='a fox', model='dall-e-2', ...))
    """
    fields = dict(data)
    endpoint = fields.pop("endpoint", None)
    name = fields.pop("name", None)
    if name is not None and (not isinstance(name, str) or not _PLAIN_NAME.fullmatch(name)):
        raise CommandError(f"{where}: name must be a plain file name, not {name!r}")
    if endpoint is None:
        endpoint = "edits" if ("image" in fields or "images" in fields) else "generations"
    cls = _REQUEST_CLASSES.get(endpoint) if isinstance(endpoint, str) else None
    if cls is None:
        raise CommandError(
            f"{where}: endpoint must be generations, edits or variations, not {endpoint!r}"
        )
    types = _FIELD_TYPES[endpoint]
    for field_name in fields:
        if field_name not in types:
            raise CommandError(f"{where}: unknown field {field_name!r} for {endpoint}")
    if "prompt" in types and "prompt" not in fields:
        raise CommandError(f"{where}: prompt is missing")
    kwargs: dict[str, Any] = {}
    for field_name, value in fields.items():
        if field_name in ("image", "mask"):
            continue
        try:
            kwargs[field_name] = _strict_converter.structure(value, types[field_name])
        except Exception as error:
            problem = " ".join(str(error).split())
            raise CommandError(f"{where}: {field_name}: {problem}") from error
    image = fields.get("image")
    if image is not None:
        kwargs["image"] = _input_paths(image, base=base, where=where, param="image")
    elif cls is VariationRequest:
        raise CommandError(f"{where}: image is missing")
    mask = fields.get("mask")
    if isinstance(mask, dict):
        try:
            kwargs["mask"] = _strict_converter.structure(mask, ImageRef)
        except Exception as error:
            raise CommandError(f"{where}: mask: {' '.join(str(error).split())}") from error
    elif mask is not None:
        kwargs["mask"] = _input_paths(mask, base=base, where=where, param="mask")
    request: ImageRequest = cls(**kwargs)
    violations = check(request)
    if violations:
        raise CommandError(f"{where}: {RequestValidationError(violations)}")
    return name, request


def _field_types(cls: type[ImageRequest]) -> dict[str, Any]:
    """The request class's settable fields and their types."""
    hints = typing.get_type_hints(cls)
    return {field.name: hints[field.name] for field in attrs.fields(cls) if field.init}


_FIELD_TYPES = {endpoint: _field_types(cls) for endpoint, cls in _REQUEST_CLASSES.items()}


_PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,200}")


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


def _check_batch_outputs(directory: Path, keys: Sequence[str]) -> None:
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


class _PlainProgress:
    """Progress as a line now and then, for when tqdm is not installed."""

    def __init__(self, *, total: int, every: float = 2.0, out: TextIO = sys.stderr) -> None:
        self._total = total
        self._every = every
        self._out = out
        self._last = -math.inf

    def __call__(self, progress: BatchProgress) -> None:
        if progress.done < self._total and progress.elapsed - self._last < self._every:
            return
        self._last = progress.elapsed
        self._out.write(
            f"{progress.done}/{self._total} done ({progress.ok} ok, {progress.failed} failed, "
            f"{progress.skipped} skipped), {progress.rate:.1f} requests/s\n"
        )
        self._out.flush()

    def close(self) -> None:
        """Nothing to finish."""


class _NoProgress:
    def __call__(self, progress: BatchProgress) -> None:
        """Show nothing."""

    def close(self) -> None:
        """Nothing to finish."""


def _batch_progress(*, total: int, enabled: bool) -> ProgressBar | _PlainProgress | _NoProgress:
    if not enabled:
        return _NoProgress()
    try:
        return progress_bar(total=total, desc="batch", file=sys.stderr)
    except ImportError:
        return _PlainProgress(total=total)


def _batch_record(line: BatchLine, result: BatchResult) -> dict[str, Any]:
    response = result.response
    error = result.error
    return {
        "line": line.line,
        "name": line.key,
        "ok": result.ok,
        "skipped": result.skipped,
        "retries": result.retries,
        "paths": [str(path) for path in result.paths],
        "request_id": response.request_id
        if response is not None
        else getattr(error, "request_id", None),
        "usage": converter.unstructure(response.usage)
        if response is not None and response.usage is not None
        else None,
        "error": describe_error(error) if error is not None else None,
    }


def _print_summary(summary: BatchSummary, *, total: int, output_dir: Path) -> None:
    print(
        f"{total} requests: {summary.ok} ok, {summary.failed} failed, "
        f"{summary.skipped} skipped (already done), {summary.retries} retries, "
        f"{summary.rate_limited} rate-limited"
    )
    tokens = f", {summary.total_tokens:,} tokens" if summary.total_tokens else ""
    print(
        f"{summary.wall_time:.2f} s, {summary.requests_per_second:.1f} requests/s{tokens}; "
        f"images in {output_dir}"
    )


async def _demo(args: argparse.Namespace) -> int:
    try:
        from ._demo import run_demo
    except ImportError as error:
        raise CommandError(str(error)) from error
    if args.real:
        if not os.environ.get("OPENAI_API_KEY"):
            raise CommandError("--real needs your key in the OPENAI_API_KEY environment variable")
        print(
            f"--real: the demo sends {args.batch_size + 4} requests to the OpenAI API with your "
            "key. This costs money.",
            file=sys.stderr,
        )
    results = await run_demo(
        output_dir=args.output_dir,
        real=args.real,
        batch_size=args.batch_size,
        concurrency=args.concurrency,
    )
    return EXIT_ERROR if any(result.failed for result in results) else EXIT_OK
