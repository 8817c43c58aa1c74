"""Side-by-side performance benchmarks: ``nox -s bench`` (or ``python -m tests.benchmarks``).

Our client, the official SDK (with its default HTTP client and with aiohttp) and raw
aiohttp make the same calls against one fast local server running in another process;
each measurement runs in a fresh worker process. See ``__main__`` for the rows.
"""
