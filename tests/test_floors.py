"""No import runs back up the floors (docs/pages/architecture.md), not even for typing."""

from __future__ import annotations

import ast
from pathlib import Path

import openai_images

PACKAGE = Path(openai_images.__file__).parent

# Top floor first. A module imports only from its own floor or the ones below it.
FLOORS = [
    {
        "__init__",
        "__main__",
        "typing",
        "_client",
        "_sync",
        "_raw",
        "cli",
        "_demo",
        "_azure_client",
    },
    {"_endpoints", "_sync_endpoints", "_sync_streaming"},
    {"_runner"},
    {"testing"},
    {"_batch", "_ratelimit", "_batch_api", "_progress"},
    {"_send", "_azure"},
    {"_streaming"},
    {"_transport"},
    {"_sse", "_multipart", "_jsonsplit", "_retry", "_rules", "_converter", "_inputs"},
    {"_imagebytes"},
    {"_requests", "_responses", "_errors", "_config", "_version", "_sniff"},
]


def _floor(module: str) -> int:
    for number, names in enumerate(FLOORS):
        if module in names:
            return number
    raise AssertionError(f"place openai_images.{module} on a floor in {__file__}")


def _imports(path: Path) -> set[str]:
    """The package's top-level modules a file imports (relative or absolute)."""
    top_level = len(path.relative_to(PACKAGE).parts)  # the dots that reach the package
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.level == top_level and node.module:
            found.add(node.module.split(".")[0])
        elif node.level == top_level:
            found.update(alias.name for alias in node.names)
        elif node.level == 0 and (node.module or "").startswith("openai_images."):
            found.add((node.module or "").split(".")[1])
    return found


def _modules() -> dict[str, list[Path]]:
    """Each top-level module or subpackage with the files it is made of."""
    found: dict[str, list[Path]] = {path.stem: [path] for path in PACKAGE.glob("*.py")}
    for init in PACKAGE.glob("*/__init__.py"):
        found[init.parent.name] = sorted(init.parent.rglob("*.py"))
    return found


def test_no_import_runs_up_the_floors() -> None:
    """Each top-level module or subpackage imports only from its own floor or lower ones."""
    modules = _modules()
    upward = []
    for module, paths in sorted(modules.items()):
        for path in paths:
            for imported in _imports(path):
                if imported in modules and _floor(imported) < _floor(module):
                    upward.append(f"{path.relative_to(PACKAGE)} -> {imported}")
    assert upward == []


def test_the_batch_engine_never_imports_the_client() -> None:
    """``_batch`` takes a Sender: it imports neither client, even under TYPE_CHECKING."""
    assert not {"_client", "_sync"} & _imports(PACKAGE / "_batch.py")
