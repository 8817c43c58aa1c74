"""Lay generated code out as ``nox -s lint`` expects it: ``ruff``, run on text.

Shared by ``generate_client.py`` and ``unasync.py`` (run as scripts from the repository
root, so this module is importable beside them). ``ruff`` must be installed.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

FORMAT = ("format", "--quiet")
SORT_IMPORTS = ("check", "--select", "I", "--fix-only", "--quiet", "--exit-zero")


def ruff(text: str, *, path: Path, commands: tuple[tuple[str, ...], ...] = (FORMAT,)) -> str:
    """``text`` after each ``ruff`` command, with the settings that apply to ``path``."""
    for command in commands:
        done = subprocess.run(
            [sys.executable, "-m", "ruff", *command, "--stdin-filename", str(path), "-"],
            input=text,
            capture_output=True,
            text=True,
            check=False,
            cwd=ROOT,
        )
        if done.returncode != 0:
            raise SystemExit(f"ruff {command[0]} failed:\n{done.stderr}")
        text = done.stdout
    return text
