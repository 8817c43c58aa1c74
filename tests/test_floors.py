"""No import runs back up the floors (docs/pages/architecture.md), not even for typing."""

from __future__ import annotations

import ast
from pathlib import Path

import openai_images

PACKAGE = Path(openai_images.__file__).parent

# Top floor first. A module imports only from its own floor or the ones below it.
FLOORS = [
    {"__init__", "__main__", "typing", "_client", "_sync", "_raw", "cli", "_demo", "testing"},
    {"_batch", "_ratelimit"},
    {"_send"},
    {"_streaming"},
    {"_transport"},
    {"_sse", "_multipart", "_sniff", "_jsonsplit", "_retry", "_rules", "_converter", "_inputs"},
    {"_requests", "_responses", "_errors", "_config", "_version"},
]


def _floor(module: str) -> int:
    for number, names in enumerate(FLOORS):
        if module in names:
            return number
    raise AssertionError(f"place openai_images.{module} on a floor in {__file__}")


def _imports(path: Path) -> set[str]:
    """The package's top-level modules a file imports (relative or absolute)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 and node.module:
                found.add(node.module.split(".")[0])
            elif node.level == 1:
                found.update(alias.name for alias in node.names)
            elif node.level == 0 and (node.module or "").startswith("openai_images."):
                found.add((node.module or "").split(".")[1])
    return found


def test_no_import_runs_up_the_floors() -> None:
    """Each top-level module imports only from its own floor or lower ones."""
    upward = []
    for path in sorted(PACKAGE.glob("*.py")):
        module = path.stem
        for imported in _imports(path):
            if (PACKAGE / f"{imported}.py").exists() and _floor(imported) < _floor(module):
                upward.append(f"{module} -> {imported}")
    assert upward == []


def test_the_batch_engine_never_imports_the_client() -> None:
    """``_batch`` takes a Sender: it imports neither client, even under TYPE_CHECKING."""
    assert not {"_client", "_sync"} & _imports(PACKAGE / "_batch.py")
