"""The commands that send one request (``generate``, ``edit``, ``variation``), and
``serve`` and ``demo``; ``batch`` has a module of its own.

Each takes the parsed arguments and returns the exit status. A request is built from
the options by the library's converter (``_fields.structure``), its outputs' names are
checked before anything is sent, and each image is saved as it comes.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Any

import anyio

from openai_images._azure import EDITS_API_VERSION
from openai_images._azure_client import AsyncAzureImagesClient
from openai_images._client import AsyncImagesClient
from openai_images._converter import converter
from openai_images._imagebytes import image_bytes
from openai_images._requests import EditRequest, GenerateRequest, ImageRequest, VariationRequest
from openai_images._responses import ImageEditPartialImageEvent, ImageGenPartialImageEvent, Usage
from openai_images._sniff import format_extension

from ._failures import CommandError
from ._fields import structure
from ._output import Outputs, print_json, response_metadata, slug, usage_data
from ._parser import request_fields

__all__ = ["EXIT_ERROR", "EXIT_OK", "demo", "edit", "generate", "make_client", "serve", "variation"]

EXIT_OK = 0
EXIT_ERROR = 1


def make_client(args: argparse.Namespace) -> AsyncImagesClient:
    """The client the connection options describe: an Azure one when any Azure option is
    given (the endpoint, the version and the key may then come from the environment)."""
    if _wants_azure(args):
        return _azure_client(args)
    return AsyncImagesClient(
        api_key=args.api_key,
        base_url=args.base_url,
        organization=args.organization,
        project=args.project,
        timeout=args.timeout,
        max_retries=args.max_retries,
        trust_env=args.trust_env,
    )


_AZURE_OPTIONS = ("azure_endpoint", "api_version", "deployment", "deployment_model")


def _wants_azure(args: argparse.Namespace) -> bool:
    return any(getattr(args, name, None) is not None for name in _AZURE_OPTIONS)


def _azure_client(args: argparse.Namespace) -> AsyncAzureImagesClient:
    for name in ("base_url", "organization", "project"):
        if getattr(args, name) is not None:
            raise CommandError(
                f"--{name.replace('_', '-')} is for the OpenAI API; with Azure give "
                "--azure-endpoint URL"
            )
    if not (args.azure_endpoint or os.environ.get("AZURE_OPENAI_ENDPOINT")):
        raise CommandError(
            "no Azure endpoint: give --azure-endpoint https://NAME.openai.azure.com or set "
            "the AZURE_OPENAI_ENDPOINT environment variable"
        )
    if not (args.api_version or os.environ.get("OPENAI_API_VERSION")):
        raise CommandError(
            f"no API version: give --api-version {EDITS_API_VERSION} (or v1 for the v1 route) "
            "or set the OPENAI_API_VERSION environment variable"
        )
    return AsyncAzureImagesClient(
        azure_endpoint=args.azure_endpoint,
        api_version=args.api_version,
        azure_deployment=args.deployment,
        deployment_model=args.deployment_model,
        api_key=args.api_key,
        timeout=args.timeout,
        max_retries=args.max_retries,
        trust_env=args.trust_env,
    )


async def generate(args: argparse.Namespace) -> int:
    """``openai-images generate PROMPT``."""
    fields = request_fields(args, GenerateRequest)
    request = structure(GenerateRequest, {"prompt": args.prompt, **fields})
    outputs = Outputs(args.output_dir, args.prefix or slug(args.prompt), overwrite=args.overwrite)
    return await _send_and_save(args, request, outputs, stream=_streams(args))


async def edit(args: argparse.Namespace) -> int:
    """``openai-images edit PROMPT -i IMAGE...`` (or by reference, as a JSON edit)."""
    data: dict[str, Any] = {"prompt": args.prompt, **request_fields(args, EditRequest)}
    data["markup"] = args.markup  # uploaded; the rules refuse it with a JSON edit
    if args.images:
        data["image"] = args.images[0] if len(args.images) == 1 else list(args.images)
        data["mask"] = args.mask
    else:
        data["images"] = [{"image_url": url} for url in args.image_urls] + [
            {"file_id": file_id} for file_id in args.image_file_ids
        ]
        if args.mask_url is not None:
            data["mask"] = {"image_url": args.mask_url}
        elif args.mask_file_id is not None:
            data["mask"] = {"file_id": args.mask_file_id}
    request = structure(EditRequest, data)
    outputs = Outputs(args.output_dir, args.prefix or slug(args.prompt), overwrite=args.overwrite)
    return await _send_and_save(args, request, outputs, stream=_streams(args))


async def variation(args: argparse.Namespace) -> int:
    """``openai-images variation IMAGE`` (the endpoint is retired at OpenAI: say so)."""
    print(
        "note: OpenAI retired /images/variations (and dall-e-2) on 2026-05-12; this works "
        "only where a server still serves it. For new work, use 'openai-images edit'.",
        file=sys.stderr,
    )
    fields = request_fields(args, VariationRequest)
    request = structure(VariationRequest, {"image": args.image, **fields})
    prefix = args.prefix or f"{slug(args.image.stem)}-variation"
    outputs = Outputs(args.output_dir, prefix, overwrite=args.overwrite)
    return await _send_and_save(args, request, outputs, stream=False)


def _streams(args: argparse.Namespace) -> bool:
    return bool(args.stream or args.partial_images is not None)


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
    async with make_client(args) as client:
        if stream:
            assert isinstance(request, (GenerateRequest, EditRequest))
            return await _stream_and_save(args, client, request, outputs, fallback_ext)
        response = await client.send(request)
        paths: list[Path] = []
        for position, image in enumerate(response.data):
            data = await image_bytes(image, downloader=client, position=position)
            paths.append(await outputs.save(position + 1, data, fallback_ext=fallback_ext))
            if not args.json:
                print(paths[-1], flush=True)
    if args.json:
        print_json(response_metadata(response, paths))
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
        print_json({"request_id": request_id, "usage": usage_data(usage), "events": events})
    return EXIT_OK


async def serve(args: argparse.Namespace) -> int:
    """``openai-images serve``: the local server, until Ctrl-C."""
    from openai_images.testing._server import LocalImagesServer, serve_forever

    def ready(server: LocalImagesServer) -> None:
        # The URL alone on stdout, so a script can read it; the rest is for people.
        if args.azure:
            print(server.url, flush=True)
            print(
                "Serving the Images API locally as an Azure OpenAI resource (Ctrl-C to stop); "
                "today's models are deployed under their own names. Point clients at it with:\n"
                f"  export AZURE_OPENAI_ENDPOINT={server.url} "
                f"OPENAI_API_VERSION={EDITS_API_VERSION} AZURE_OPENAI_API_KEY=any-key",
                file=sys.stderr,
                flush=True,
            )
            return
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
        azure=args.azure,
        legacy=args.legacy,
        on_ready=ready,
    )
    return EXIT_OK


async def demo(args: argparse.Namespace) -> int:
    """``openai-images demo``: the library's tour, against a local server unless ``--real``."""
    try:
        from openai_images._demo import run_demo
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
