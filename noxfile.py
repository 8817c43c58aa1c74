"""Developer tasks: ``nox -s tests lint typecheck docs bench demo soak``."""

from __future__ import annotations

import nox

nox.options.sessions = ["tests", "lint", "typecheck"]
nox.options.reuse_existing_virtualenvs = True

PYTHON = ["3.11"]
SUPPORTED = ["3.10", "3.11", "3.12", "3.13"]


@nox.session(python=SUPPORTED)
def tests(session: nox.Session) -> None:
    """Run the test suite (what CI runs)."""
    session.install("-e", ".[test]")
    session.run("python", "-m", "pytest", *session.posargs)


@nox.session(python=PYTHON)
def soak(session: nox.Session) -> None:
    """Soak the client for two minutes of faulty requests (CI runs a short form of it)."""
    session.install("-e", ".[test]")
    session.run(
        "python",
        "-m",
        "pytest",
        "-s",
        "tests/reliability/test_soak.py",
        *session.posargs,
        env={"OPENAI_IMAGES_SOAK_SECONDS": "120"},
    )


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """Check style and common mistakes with ruff."""
    session.install(".[lint]")
    session.run("ruff", "check", "openai_images", "tests", "tools", "noxfile.py")
    session.run("ruff", "format", "--check", "openai_images", "tests", "tools", "noxfile.py")
    # The client's keyword methods are generated from the request classes, and the sync
    # client's methods from the async client's: stale is an error.
    session.run("python", "tools/generate_client.py", "--check")
    session.run("python", "tools/unasync.py", "--check")


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    """Type-check the package with mypy --strict."""
    session.install("-e", ".[test]", "mypy")
    session.run("mypy", "--strict", "openai_images")


@nox.session(python=PYTHON)
def docs(session: nox.Session) -> None:
    """Build the documentation site strictly (a broken reference fails)."""
    session.install("-e", ".[server]", "mkdocs-material", "mkdocstrings[python]")
    # The config lives in docs/ so the top level stays small; it writes the site to ./site.
    # NO_MKDOCS_2_WARNING: mkdocs-material's banner about its successor is not a build problem.
    session.run(
        "mkdocs",
        "build",
        "--strict",
        "-f",
        "docs/mkdocs.yml",
        *session.posargs,
        env={"NO_MKDOCS_2_WARNING": "1"},
    )


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Measure against the official SDK and raw aiohttp; print the table."""
    session.install("-e", ".[server]", "openai[aiohttp]", "psutil")
    session.run("python", "-m", "tests.benchmarks", *session.posargs)


@nox.session(python=PYTHON)
def demo(session: nox.Session) -> None:
    """Run the demo against the embedded local server."""
    session.install("-e", ".[server,progress]")
    session.run("openai-images", "demo", *session.posargs)
