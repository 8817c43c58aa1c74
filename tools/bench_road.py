"""CPU per call of the road above the transport: ``Transport.send`` answers from memory.

Run from a checkout's root, once per tree to compare (alternate them: the machine drifts)::

    python tools/bench_road.py [label]

Prints the median and range over 7 blocks of 5,000 ``client.generate`` calls, each parsed
and validated as usual; nothing goes over the network.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path.cwd()))

from multidict import CIMultiDict, CIMultiDictProxy

import openai_images
from openai_images import _transport

BODY = (
    b'{"created": 1, "data": [{"b64_json": "aGk="}], "usage": {"total_tokens": 10,'
    b' "input_tokens": 4, "output_tokens": 6,'
    b' "input_tokens_details": {"text_tokens": 4, "image_tokens": 0}}}'
)
HEADERS = CIMultiDictProxy(CIMultiDict({"x-request-id": "req_1"}))
BLOCKS, CALLS = 7, 5000


async def _answer(self: Any, method: str, url: str, **kwargs: Any) -> _transport.Exchange:
    return _transport.Exchange(status=200, headers=HEADERS, body=BODY)


async def main(label: str) -> None:
    # The road alone: the transport answers at once, with no socket.
    _transport.Transport.send = _answer  # type: ignore[method-assign]  # the road alone: no socket
    client = openai_images.AsyncImagesClient(api_key="sk-bench", base_url="http://127.0.0.1:9/v1")
    call = {"prompt": "a small red fox in the snow", "model": "gpt-image-1.5", "quality": "low"}
    for _ in range(CALLS // 2):
        await client.generate(**call)
    blocks = []
    for _ in range(BLOCKS):
        started = time.process_time()
        for _ in range(CALLS):
            await client.generate(**call)
        blocks.append((time.process_time() - started) / CALLS * 1e6)
    print(
        f"{label}: {statistics.median(blocks):.1f} us CPU per call above the transport "
        f"(range {min(blocks):.1f}-{max(blocks):.1f})"
    )


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else str(Path.cwd())))
