"""Fixtures shared by the whole test suite."""

from __future__ import annotations

import pytest
from hypothesis import settings

# Hypothesis's 200 ms deadline measures the machine as much as the code: on a busy
# two-core CI runner a parser example can take longer, and a timing failure says nothing
# about correctness. Speed is the benchmarks' business.
settings.register_profile("openai-images", deadline=None)
settings.load_profile("openai-images")


@pytest.fixture
def anyio_backend() -> str:
    """Run every ``@pytest.mark.anyio`` test on asyncio only."""
    return "asyncio"
