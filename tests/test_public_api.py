"""The package's public names: sorted, importable, documented, and complete."""

from __future__ import annotations

import ast
import inspect
import itertools
from pathlib import Path

import pytest

import openai_images

REQUIRED = {
    "AsyncImagesClient",
    "ImagesClient",
    "GenerateRequest",
    "EditRequest",
    "VariationRequest",
    "ImageRef",
    "ImagesResponse",
    "Image",
    "Usage",
    "ImageGenPartialImageEvent",
    "ImageGenCompletedEvent",
    "ImageEditPartialImageEvent",
    "ImageEditCompletedEvent",
    "OpenAIImagesError",
    "APIError",
    "APIConnectionError",
    "APITimeoutError",
    "APIResponseValidationError",
    "APIStatusError",
    "BadRequestError",
    "AuthenticationError",
    "PermissionDeniedError",
    "NotFoundError",
    "ConflictError",
    "UnprocessableEntityError",
    "RateLimitError",
    "InternalServerError",
    "RequestValidationError",
    "MissingAPIKeyError",
    "Timeout",
}


def test_all_is_sorted_without_duplicates() -> None:
    """``__all__`` is in sorted order and names nothing twice."""
    names = openai_images.__all__
    assert names == sorted(names)
    assert len(names) == len(set(names))


def test_all_has_every_required_name() -> None:
    """Every name the issue asks for is public."""
    assert set(openai_images.__all__) >= REQUIRED


def _alias_docstrings() -> dict[str, str]:
    """Module-level ``NAME = ...`` assignments followed by a string, across the package."""
    found: dict[str, str] = {}
    for path in Path(openai_images.__file__).parent.glob("*.py"):
        body = ast.parse(path.read_text(encoding="utf-8")).body
        for statement, after in itertools.pairwise(body):
            targets = (
                statement.targets
                if isinstance(statement, ast.Assign)
                else [statement.target]
                if isinstance(statement, ast.AnnAssign)
                else []
            )
            if (
                isinstance(after, ast.Expr)
                and isinstance(after.value, ast.Constant)
                and isinstance(after.value.value, str)
            ):
                found.update({t.id: after.value.value for t in targets if isinstance(t, ast.Name)})
    return found


@pytest.mark.parametrize("name", [n for n in openai_images.__all__ if n != "__version__"])
def test_every_public_name_is_importable_and_documented(name: str) -> None:
    """Each public name resolves on the package and has a docstring of its own.

    Classes and functions carry ``__doc__``; a type alias is documented by the string
    right after its assignment (what Sphinx reads).
    """
    value = getattr(openai_images, name)
    if inspect.isclass(value) or inspect.isroutine(value):
        assert value.__doc__, f"{name} has no docstring of its own"
    else:
        assert _alias_docstrings().get(name), f"the alias {name} has no docstring"


def test_version_is_a_string() -> None:
    """``__version__`` is public and a non-empty string."""
    assert "__version__" in openai_images.__all__
    assert isinstance(openai_images.__version__, str)
    assert openai_images.__version__


def test_star_import_gives_exactly_all() -> None:
    """``from openai_images import *`` binds every name of ``__all__``."""
    namespace: dict[str, object] = {}
    exec("from openai_images import *", namespace)
    assert set(openai_images.__all__) <= set(namespace)


def test_error_classes_form_the_documented_tree() -> None:
    """Status errors are API errors; validation errors are also ValueErrors."""
    assert issubclass(openai_images.RateLimitError, openai_images.APIStatusError)
    assert issubclass(openai_images.APITimeoutError, openai_images.APIConnectionError)
    assert issubclass(openai_images.APIStatusError, openai_images.APIError)
    assert issubclass(openai_images.RequestValidationError, ValueError)
    for name in REQUIRED:
        value = getattr(openai_images, name)
        if inspect.isclass(value) and issubclass(value, Exception):
            assert issubclass(value, openai_images.OpenAIImagesError), name
