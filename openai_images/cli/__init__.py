"""The ``openai-images`` command line (also ``python -m openai_images``).

Commands: ``generate``, ``edit``, ``variation``, ``batch`` (live, or ``--via batch-api``),
``batch-api`` (``status``, ``collect``, ``cancel`` a Batch API job), ``serve`` and
``demo``. Every field of the API has an option named after it; the key comes from
``OPENAI_API_KEY`` (or ``--api-key``) and the server from ``OPENAI_BASE_URL`` (or
``--base-url``).

Results are saved as ``{prefix}-{n}.{ext}`` (``n`` from 1) in the output folder, partial
images of a stream as ``{prefix}-partial-{i}.{ext}``. An existing file is never replaced
unless ``--overwrite`` is given. Each saved path is printed, or with ``--json`` the
response's metadata (without the image data) for scripts.

Failures print one line, ``error: <what happened>``, to stderr and exit with status 1;
usage mistakes exit with 2 and an interrupt with 130. ``--debug`` shows the traceback
and the library's log.

The rooms: ``_parser`` (the options, request fields derived from the request classes by
``_fields``), ``_commands`` (one request, ``serve``, ``demo``), ``_batch_command`` and
``_jsonl`` (batch files), ``_batch_api_command`` (the Batch API), ``_output`` (saving and
printing), ``_failures`` (what a failure says), ``_main`` (running a command).

Example:
    $ openai-images generate "a watercolor lighthouse" --model gpt-image-1.5 -o out/
    out/a-watercolor-lighthouse-1.png
"""

from ._main import main
from ._parser import build_parser

__all__ = ["build_parser", "main"]
