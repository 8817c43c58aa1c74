"""The command line's options: one parser, its commands and their option groups.

The request fields' options come from the request classes (``_fields.field_options``);
the rest (connection, output, batch and server settings) are the command line's own.
Each command is named in ``args.command``; ``_main`` runs it.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from openai_images._requests import EditRequest, GenerateRequest, ImageRequest, VariationRequest
from openai_images._version import __version__

from ._failures import PROG
from ._fields import field_options

__all__ = ["add_fields", "build_parser", "request_fields"]


def add_fields(parser: argparse.ArgumentParser, cls: type[ImageRequest], *, stream: bool) -> None:
    """Add an option for each field of ``cls`` (and ``--stream`` if it streams)."""
    group = parser.add_argument_group("request fields (as the API names them)")
    for option in field_options(cls):
        option.add_to(group)
    if stream:
        group.add_argument(
            "--stream", action="store_true", help="stream the result, saving partial images"
        )


def request_fields(args: argparse.Namespace, cls: type[ImageRequest]) -> dict[str, Any]:
    """The fields of ``cls`` given on the command line, as wire data."""
    values = ((option.name, getattr(args, option.name)) for option in field_options(cls))
    return {name: value for name, value in values if value is not None}


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
    group.add_argument(
        "--no-proxy",
        dest="trust_env",
        action="store_false",
        help="connect directly, ignoring HTTPS_PROXY/HTTP_PROXY (default: use them)",
    )
    azure = parent.add_argument_group(
        "Azure OpenAI (any of these selects Azure; --api-key is then the Azure key)"
    )
    azure.add_argument(
        "--azure-endpoint",
        default=None,
        metavar="URL",
        help="the resource, e.g. https://NAME.openai.azure.com (default: $AZURE_OPENAI_ENDPOINT)",
    )
    azure.add_argument(
        "--api-version",
        default=None,
        metavar="VERSION",
        help="a dated version such as 2025-04-01-preview, or v1 for the v1 route "
        "(default: $OPENAI_API_VERSION)",
    )
    azure.add_argument(
        "--deployment",
        default=None,
        metavar="NAME",
        help="the deployment to use (default: --model names it)",
    )
    azure.add_argument(
        "--deployment-model",
        default=None,
        metavar="MODEL",
        help="the model the deployment runs, to check requests by its rules",
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
        prog=PROG,
        description="Generate, edit and vary images with the OpenAI Images API.",
        epilog="Run 'openai-images COMMAND --help' for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    generate = commands.add_parser(
        "generate",
        parents=[common, connection, output],
        help="create images from a prompt",
        description="Create images from a prompt (POST /images/generations).",
    )
    generate.add_argument("prompt", help="what to draw")
    add_fields(generate, GenerateRequest, stream=True)

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
    edit.add_argument(
        "--markup",
        type=Path,
        default=None,
        help="a transparent PNG drawn over the first image to guide the edit (GPT Image 2.5; "
        "not with --mask)",
    )
    add_fields(edit, EditRequest, stream=True)

    variation = commands.add_parser(
        "variation",
        parents=[common, connection, output],
        help="make variations of an image (retired at OpenAI; dall-e-2 servers)",
        description=(
            "Make variations of a square PNG (POST /images/variations, dall-e-2). OpenAI "
            "retired this endpoint and dall-e-2 on 2026-05-12: it works only against servers "
            "that still serve it (an Azure deployment, a compatible server, or "
            "'openai-images serve --legacy'). For new work use 'edit'."
        ),
    )
    variation.add_argument("image", type=Path, help="a square PNG under 4 MB")
    add_fields(variation, VariationRequest, stream=False)

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
        "--via",
        choices=("live", "batch-api"),
        default="live",
        help="live requests (default), or OpenAI's Batch API: half the price, within 24 h",
    )
    batch.add_argument(
        "-c",
        "--concurrency",
        type=int,
        metavar="N",
        default=None,
        help="requests in flight (default 16)",
    )
    # Short names, as the API's limits are written (RPM, IPM, TPM), and the library's names.
    batch.add_argument(
        "--rpm",
        "--requests-per-minute",
        dest="rpm",
        type=int,
        metavar="N",
        default=None,
        help="requests per minute at most, retries included (default: no cap)",
    )
    batch.add_argument(
        "--ipm",
        "--images-per-minute",
        dest="ipm",
        type=int,
        metavar="N",
        default=None,
        help="images per minute at most, each request counting its n (default: no cap)",
    )
    batch.add_argument(
        "--tpm",
        "--tokens-per-minute",
        dest="tpm",
        type=int,
        metavar="N",
        default=None,
        help="tokens per minute at most, as the answers' usage counts them (default: no cap)",
    )
    batch.add_argument(
        "--resume",
        action="store_true",
        help="skip lines whose results are already saved (--via batch-api: carry on the job "
        "in the output folder)",
    )
    batch.add_argument("--no-progress", action="store_true", help="do not show a progress bar")
    _add_batch_api_options(batch)
    _add_batch_api_command(commands, common, connection)

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
        "--azure",
        action="store_true",
        help="answer like an Azure OpenAI resource (both routes, api-key, Azure's errors)",
    )
    serve.add_argument(
        "--legacy",
        action="store_true",
        help="also serve the retired models and /images/variations (as the API did before)",
    )
    serve.add_argument(
        "--control",
        action="store_true",
        help="enable the control route that scripts faults (for tests)",
    )

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
    return parser


def _add_batch_api_options(batch: argparse.ArgumentParser) -> None:
    group = batch.add_argument_group("the Batch API (with --via batch-api)")
    group.add_argument(
        "--images",
        choices=("upload", "inline"),
        default=None,
        help="edits' input files: uploaded once each and sent by file id (default), or "
        "inlined as data: URLs",
    )
    group.add_argument(
        "--image-purpose",
        default=None,
        metavar="PURPOSE",
        help="the purpose uploaded images get (default vision; or user_data)",
    )
    group.add_argument(
        "--metadata",
        action="append",
        default=None,
        metavar="KEY=VALUE",
        help="metadata of each batch; repeatable (at most 16)",
    )
    group.add_argument(
        "--max-lines",
        type=int,
        default=None,
        metavar="N",
        help="lines per batch (default and most 50,000; more lines make more batches)",
    )
    _add_wait_options(group)
    group.add_argument(
        "--no-wait",
        action="store_true",
        help="submit and exit; 'batch-api collect' saves the results later",
    )


def _add_wait_options(group: argparse._ActionsContainer) -> None:
    group.add_argument(
        "--poll-interval",
        type=float,
        default=None,
        metavar="SECONDS",
        help="seconds between the first polls (default 5; up to 60 while nothing moves)",
    )


def _add_batch_api_command(
    commands: Any, common: argparse.ArgumentParser, connection: argparse.ArgumentParser
) -> None:
    """``batch-api status|collect|cancel JOB``: a Batch API job started earlier."""
    batch_api = commands.add_parser(
        "batch-api",
        help="look at, collect or cancel a Batch API job",
        description=(
            "A job started with 'batch FILE --via batch-api' (or from Python), named by its "
            "state file or its output folder."
        ),
    )
    actions = batch_api.add_subparsers(dest="action", metavar="ACTION", required=True)
    job_help = "the job's output folder, or its batch_api.json"
    status = actions.add_parser(
        "status",
        parents=[common, connection],
        help="each batch's status and counts",
        description="Show each batch's status and counts, and what is collected so far.",
    )
    collect = actions.add_parser(
        "collect",
        parents=[common, connection],
        help="wait for the batches and save the results",
        description=(
            "Carry on the job: submit what is left, wait for every batch, save every line's "
            "images (only those not saved before) and report."
        ),
    )
    cancel = actions.add_parser(
        "cancel",
        parents=[common, connection],
        help="stop the batches still running",
        description="Ask every batch still running to stop; finished lines stay collectable.",
    )
    for action in (status, collect, cancel):
        action.add_argument("job", type=Path, metavar="JOB", help=job_help)
        action.add_argument("--json", action="store_true", help="print the result as JSON")
    _add_wait_options(collect)
    collect.add_argument("--no-progress", action="store_true", help="do not show a progress bar")
