"""``ImagesClient`` mirrors ``AsyncImagesClient``: the same members, signatures and docs.

``tools/unasync.py`` writes the sync methods from the async ones; this test states the
contract independently of it. A parameter, overload or method added to the async client
without its sync twin fails here (run ``python tools/unasync.py`` to bring them level).
"""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typing_extensions import get_overloads

from openai_images import (
    AsyncAzureImagesClient,
    AsyncImagesClient,
    AzureImagesClient,
    ImagesClient,
)

RENAMES = {
    "AsyncImagesClient": "ImagesClient",
    "AsyncImageStream": "ImageStream",
    "AsyncBatchIterator": "BatchIterator",
    "AsyncRawResponses": "RawResponses",
    "BatchAPI": "SyncBatchAPI",
}
ASYNC_ONLY = {"aclose"}
"""Async members whose sync twin has another name (``close``) or none."""
SYNC_ONLY = {"close", "async_client"}
"""Sync members with no async twin of that name."""


def translate(text: str) -> str:
    """What an async docstring or annotation says in the sync client."""
    text = re.sub(r"\bawait\s+", "", text)
    text = re.sub(r"\basync\s+(with|for)\b", r"\1", text)
    for old, new in RENAMES.items():
        text = re.sub(rf"\b{old}\b", new, text)
    return text


def public(cls: type) -> set[str]:
    """The public members of a class, inherited ones included, plus its constructor."""
    defined = {name for klass in cls.__mro__[:-1] for name in vars(klass)}
    return {name for name in defined if not name.startswith("_")} | {"__init__"}


def own(cls: type) -> set[str]:
    """The public members a class defines itself (not those it inherits), plus ``__init__``."""
    return {name for name in vars(cls) if not name.startswith("_")} | {"__init__"}


def member(cls: type, name: str) -> Any:
    """A member as the class or the nearest base defines it (a property stays one)."""
    return next(vars(klass)[name] for klass in cls.__mro__ if name in vars(klass))


def annotation(value: Any) -> str:
    """An annotation as text (they are strings: the modules use postponed evaluation)."""
    return value if isinstance(value, str) else repr(value)


def assert_same_signature(async_fn: Callable[..., Any], sync_fn: Callable[..., Any]) -> None:
    """Same parameters (names, kinds, defaults, annotations) and the mapped return type."""
    expected, actual = inspect.signature(async_fn), inspect.signature(sync_fn)
    assert list(actual.parameters) == list(expected.parameters)
    for name, parameter in expected.parameters.items():
        twin = actual.parameters[name]
        assert twin.kind == parameter.kind, name
        assert twin.default == parameter.default, name
        assert annotation(twin.annotation) == translate(annotation(parameter.annotation)), name
    assert annotation(actual.return_annotation) == translate(annotation(expected.return_annotation))


def test_the_sync_client_has_every_public_member() -> None:
    """Every public async member has its sync twin, and the sync client adds only its own."""
    async_members = public(AsyncImagesClient) - ASYNC_ONLY
    sync_members = public(ImagesClient) - SYNC_ONLY
    assert sync_members == async_members


@pytest.mark.parametrize("name", sorted(public(AsyncImagesClient) - ASYNC_ONLY))
def test_signatures_and_docstrings_match(name: str) -> None:
    """Each method pair agrees, overloads included; each docstring reads as translated."""
    async_member, sync_member = member(AsyncImagesClient, name), member(ImagesClient, name)
    if isinstance(async_member, property):
        assert isinstance(sync_member, property)
        assert sync_member.__doc__ == translate(async_member.__doc__ or "")
        assert async_member.fget is not None
        assert sync_member.fget is not None
        assert_same_signature(async_member.fget, sync_member.fget)
        return
    assert inspect.iscoroutinefunction(sync_member) is False
    assert_same_signature(async_member, sync_member)
    assert inspect.getdoc(sync_member) == (translate(inspect.getdoc(async_member) or "") or None)
    async_overloads, sync_overloads = get_overloads(async_member), get_overloads(sync_member)
    assert len(sync_overloads) == len(async_overloads)
    for async_overload, sync_overload in zip(async_overloads, sync_overloads, strict=True):
        assert_same_signature(async_overload, sync_overload)


def test_the_keyword_methods_are_inherited() -> None:
    """The generated keyword methods are compared too, though each client inherits them."""
    for cls in (AsyncImagesClient, ImagesClient):
        assert {"generate", "edit", "create_variation"} <= public(cls) - set(vars(cls))


def test_translation_of_an_example() -> None:
    """The rules turn async examples into sync ones."""
    text = "async with client.map(r) as results:\n    async for x in results: await f(x)"
    assert translate(text) == "with client.map(r) as results:\n    for x in results: f(x)"
    assert translate("an ``AsyncImageStream``") == "an ``ImageStream``"


def test_the_azure_clients_agree() -> None:
    """``AzureImagesClient`` (hand-written over ``ImagesClient``) takes exactly the async
    Azure client's arguments, and has its public members with the same signatures."""
    assert_same_signature(AsyncAzureImagesClient.__init__, AzureImagesClient.__init__)
    async_members = own(AsyncAzureImagesClient) - {"__init__", "with_options"}
    assert async_members == own(AzureImagesClient) - {"__init__"}
    for name in async_members:
        async_member, sync_member = (
            vars(AsyncAzureImagesClient)[name],
            vars(AzureImagesClient)[name],
        )
        assert isinstance(async_member, property), name
        assert isinstance(sync_member, property), name
        assert async_member.fget is not None
        assert sync_member.fget is not None
        assert_same_signature(async_member.fget, sync_member.fget)
        assert sync_member.__doc__ == async_member.__doc__
    # The Azure with_options keeps the base's parameters (the sync twin forwards them all).
    base, azure = (
        inspect.signature(cls.with_options) for cls in (AsyncImagesClient, AsyncAzureImagesClient)
    )
    assert azure.parameters == base.parameters


def test_the_generated_sync_code_is_up_to_date() -> None:
    """``tools/unasync.py --check`` passes: the sync modules are what the generator writes
    from the async ones (CI runs only the tests, so the check lives here too)."""
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, str(root / "tools" / "unasync.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
