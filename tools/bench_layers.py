"""Where the client's CPU per small generation goes, layer by layer, against a real server.

Row 1 of ``nox -s bench`` compares the whole client with a bare ``aiohttp`` session. This
splits the difference: each layer below makes the same small generation (2,000 of them,
64 at a time, against the benchmark server in its own process), adding one floor of the
road at a time, and the layers take turns within every round, so the machine's drift
spreads over all of them::

    python tools/bench_layers.py [--rounds 7] [--requests 4000]

Prints each layer's CPU per request (``time.process_time``, this process only), median
and range over the rounds, and what it adds to the layer before it. The layers:

- ``aiohttp-no-timers``: a bare session with no timeout at all (no timer per request);
- ``aiohttp``: a bare session, as the benchmark's ``raw-aiohttp`` peer (aiohttp's default
  ``total`` timeout: one timer per request);
- ``aiohttp+timeouts``: the same with our default timeouts (aiohttp's ``total`` and
  ``sock_read`` timers);
- ``transport``: ``Transport.send`` (pool slots, error attribution, the size limit) and
  ``orjson.loads``;
- ``transport+parse``: the body parsed into an ``ImagesResponse``;
- ``sender.call``: ``Sender.call`` (auth, route, retries, status errors) and the parse;
- ``client``: ``AsyncImagesClient.generate``: the request class, the rules and the body.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path.cwd()))

import aiohttp
import anyio
import orjson

from openai_images import AsyncImagesClient
from openai_images._config import Timeout
from openai_images._send import parse_images_response
from openai_images._transport import Body, Transport
from tests.benchmarks._peers import API_KEY, GENERATE, settle_allocator
from tests.benchmarks._server import running_server

CONCURRENCY = 64
Call = Callable[[], Awaitable[Any]]


class Layers:
    """One caller per layer, sharing nothing but the server."""

    def __init__(self, root: str) -> None:
        self.url = f"{root}/v1/images/generations"
        self.root = root
        self.headers = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}
        self.sessions: list[aiohttp.ClientSession] = []
        self.transport = Transport()
        self.client = AsyncImagesClient(api_key=API_KEY, base_url=f"{root}/v1")

    def calls(self) -> dict[str, Call]:
        """Each layer's call, in the order the road stacks them."""
        untimed = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None))
        bare = aiohttp.ClientSession()
        timed = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=900, connect=10, sock_read=300)
        )
        self.sessions += [untimed, bare, timed]
        our_headers = {"Authorization": f"Bearer {API_KEY}", "Accept": "application/json"}
        timeout = Timeout()
        sender = self.client._sender

        async def session_call(session: aiohttp.ClientSession) -> None:
            async with session.post(
                self.url, data=orjson.dumps(GENERATE), headers=self.headers
            ) as response:
                response.raise_for_status()
                orjson.loads(await response.read())

        async def transport_call() -> Any:
            body = Body(content_type="application/json", data=orjson.dumps(GENERATE))
            return await self.transport.send(
                "POST", self.url, headers=our_headers, body=body, timeout=timeout
            )

        async def transport_loads() -> None:
            orjson.loads((await transport_call()).body)

        async def transport_parse() -> None:
            parse_images_response(await transport_call())

        async def sender_call() -> None:
            parse_images_response(await sender.call("POST", "images/generations", json=GENERATE))

        async def client_call() -> None:
            await self.client.generate(**GENERATE)

        return {
            "aiohttp-no-timers": lambda: session_call(untimed),
            "aiohttp": lambda: session_call(bare),
            "aiohttp+timeouts": lambda: session_call(timed),
            "transport": transport_loads,
            "transport+parse": transport_parse,
            "sender.call": sender_call,
            "client": client_call,
        }

    async def aclose(self) -> None:
        """Close every session."""
        for session in self.sessions:
            await session.close()
        await self.transport.aclose()
        await self.client.aclose()


async def _cpu_per_request(call: Call, requests: int) -> float:
    """Microseconds of this process's CPU per call, ``CONCURRENCY`` calls at a time."""
    left = iter(range(requests))

    async def worker() -> None:
        for _ in left:
            await call()

    started = time.process_time()
    async with anyio.create_task_group() as group:
        for _ in range(CONCURRENCY):
            group.start_soon(worker)
    return (time.process_time() - started) / requests * 1e6


async def taking_turns(
    calls: dict[str, Call], *, rounds: int, requests: int
) -> dict[str, list[float]]:
    """Each call's CPU per request in every round, after a warm-up; the calls take turns,
    each round starting one further along, so the machine's drift spreads over all."""
    for call in calls.values():  # warm every pool and cache
        await _cpu_per_request(call, requests // 4)
    figures: dict[str, list[float]] = {name: [] for name in calls}
    names = list(calls)
    for round_ in range(rounds):
        turn = round_ % len(names)
        for name in names[turn:] + names[:turn]:
            figures[name].append(await _cpu_per_request(calls[name], requests))
        print(f"  round {round_ + 1}/{rounds}", file=sys.stderr, flush=True)
    return figures


async def _main(rounds: int, requests: int) -> None:
    with running_server() as root:
        layers = Layers(root)
        try:
            figures = await taking_turns(layers.calls(), rounds=rounds, requests=requests)
        finally:
            await layers.aclose()
    print(f"CPU per request, µs: median [range] over {rounds} rounds of {requests}")
    before: float | None = None
    for name, values in figures.items():
        median = statistics.median(values)
        added = "" if before is None else f"  +{median - before:.1f}"
        print(f"  {name:<18} {median:6.1f} [{min(values):.1f}-{max(values):.1f}]{added}")
        before = median


def main() -> None:
    """Parse the arguments and run the rounds."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--requests", type=int, default=4000)
    args = parser.parse_args()
    settle_allocator()  # as the benchmark's workers do
    asyncio.run(_main(args.rounds, args.requests))


if __name__ == "__main__":
    main()
