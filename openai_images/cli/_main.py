"""Running a command: parse, check what argparse cannot, run it, and turn failures into
one line and an exit status.

Failures print ``error: <what happened>`` to stderr and exit with 1; usage mistakes exit
with 2 and an interrupt with 130 (an interrupted batch also prints the command that
finishes it). ``--debug`` shows the traceback and the library's log.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import traceback
from collections.abc import Awaitable, Callable, Sequence

import anyio

from openai_images._errors import OpenAIImagesError

from ._batch_api_command import batch_api, batch_api_usage_problem, interrupted_hint
from ._batch_command import batch
from ._commands import EXIT_ERROR, EXIT_OK, demo, edit, generate, serve, variation
from ._failures import CommandError, describe_error, resume_command
from ._fields import StructureFailure
from ._parser import build_parser

__all__ = ["EXIT_INTERRUPTED", "EXIT_USAGE", "main"]

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

Command = Callable[[argparse.Namespace], Awaitable[int]]

_COMMANDS: dict[str, Command] = {
    "generate": generate,
    "edit": edit,
    "variation": variation,
    "batch": batch,
    "batch-api": batch_api,
    "serve": serve,
    "demo": demo,
}

# The batch's per-minute caps and the flags that set them (both spellings: either was typed).
_BATCH_CAPS = {
    "rpm": "--rpm/--requests-per-minute",
    "ipm": "--ipm/--images-per-minute",
    "tpm": "--tpm/--tokens-per-minute",
}

# Commands whose request fields come from options, so errors name the options.
_FIELDS_FROM_OPTIONS = frozenset({"generate", "edit", "variation"})


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit status.

    Args:
        argv: The arguments after the program's name (default: ``sys.argv[1:]``).

    Example:
        ```python
        main(["generate", "a red fox", "--model", "gpt-image-1.5"])
        # -> 0
        ```
    """
    arguments = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(arguments)
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else EXIT_USAGE
    usage = _usage_problem(args)
    if usage is not None:
        print(f"{parser.prog} {args.command}: error: {usage}", file=sys.stderr)
        return EXIT_USAGE
    if args.debug:
        logging.basicConfig(
            level=logging.DEBUG, format="%(asctime)s %(name)s %(levelname)s %(message)s"
        )
    try:
        return anyio.run(_COMMANDS[args.command], args)
    except (KeyboardInterrupt, asyncio.CancelledError):
        # Before Python 3.11, Ctrl-C surfaces from anyio.run as the main task's cancellation.
        if args.command == "serve":
            # Ctrl-C is how a server is meant to stop.
            print("stopped", file=sys.stderr)
            return EXIT_OK
        print("interrupted", file=sys.stderr)
        if args.command == "batch" and args.via == "live":
            print(
                "the lines that finished are saved; to send the rest, run:\n"
                f"  {resume_command(arguments)}",
                file=sys.stderr,
            )
        elif args.command in ("batch", "batch-api"):
            print(interrupted_hint(args), file=sys.stderr)
        return EXIT_INTERRUPTED
    except (OpenAIImagesError, CommandError, StructureFailure, OSError) as error:
        if args.debug:
            traceback.print_exc()
        flags = args.command in _FIELDS_FROM_OPTIONS
        print(f"error: {describe_error(error, flags=flags)}", file=sys.stderr)
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
        if args.concurrency is not None and args.concurrency < 1:
            return "--concurrency must be 1 or more"
        for name, flags in _BATCH_CAPS.items():
            value = getattr(args, name)
            if value is not None and value < 1:
                return f"{flags} must be 1 or more, got {value}"
    if args.command in ("batch", "batch-api"):
        problem = batch_api_usage_problem(args)
        if problem is not None:
            return problem
    if args.command == "demo" and args.batch_size < 1:
        return "--batch-size must be 1 or more"
    return None
