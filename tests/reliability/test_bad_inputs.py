"""Bad input: the client sends a request or refuses it before any I/O, never anything else.

Hypothesis fills every field with values of the right type but any content (any integer,
any text, lone surrogates included, any bytes as an image). A validating client either
sends the request unchanged or raises :class:`RequestValidationError` without a byte on
the wire; no other exception escapes. Input files that are missing, unreadable, not
images or over the size limits are refused before the upload, naming the field; a file
deleted after it was checked fails at the upload with the same error, and no retry.
"""

from __future__ import annotations

import io
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import anyio
import attrs
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from openai_images import (
    AsyncImagesClient,
    EditRequest,
    GenerateRequest,
    RequestValidationError,
    VariationRequest,
)
from openai_images._converter import request_fields
from openai_images._multipart import build_multipart
from openai_images._requests import ImageRequest
from openai_images._rules import MODELS
from tests.images import make_png
from tests.recorder import Recorder

from .conftest import KEY

pytestmark = pytest.mark.anyio

MiB = 1 << 20
PNG = make_png(16, 16)
SQUARE_MASK = make_png(16, 16, alpha=True)

EXAMPLES = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture
async def recorder() -> AsyncIterator[Recorder]:
    """A server that takes any request and answers a small valid response."""
    async with Recorder() as running:
        yield running


@pytest.fixture
async def client(recorder: Recorder) -> AsyncIterator[AsyncImagesClient]:
    """A validating client that does not retry."""
    async with AsyncImagesClient(api_key=KEY, base_url=recorder.base_url, max_retries=0) as c:
        yield c


# -- any value of the right type ----------------------------------------------------------

SURROGATES = st.text(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1)
TEXT = st.one_of(st.text(max_size=30), st.builds(str.__add__, st.text(max_size=5), SURROGATES))
INTS = st.one_of(st.integers(-5, 20), st.integers(), st.integers(min_value=2**63))


@st.composite
def _sometimes(draw: st.DrawFn, anything: st.SearchStrategy[Any], *known: Any) -> Any:
    """Mostly unset, sometimes a usual value, now and then anything of the type."""
    roll = draw(st.integers(0, 9))
    if roll < 6:
        return None
    if roll < 9 and known:
        return draw(st.sampled_from(known))
    return draw(anything)


def _maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return _sometimes(strategy, 1, 2)


def _text_or_known(*known: str) -> st.SearchStrategy[Any]:
    return _sometimes(TEXT, *known)


FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "model": _text_or_known(*MODELS),
    "n": _maybe(INTS),
    "size": _text_or_known("256x256", "1024x1024", "1536x1024", "2048x1152", "auto"),
    "quality": _text_or_known("standard", "hd", "low", "medium", "high", "auto"),
    "response_format": _text_or_known("url", "b64_json"),
    "user": _maybe(TEXT),
}
GPT: dict[str, st.SearchStrategy[Any]] = {
    "prompt": st.one_of(st.just("a fox"), TEXT),
    "background": _text_or_known("transparent", "opaque", "auto"),
    "moderation": _text_or_known("low", "auto"),
    "output_format": _text_or_known("png", "jpeg", "webp"),
    "output_compression": _maybe(INTS),
    "partial_images": _maybe(INTS),
}
IMAGES = st.one_of(
    st.just(PNG),
    st.binary(max_size=64),
    st.builds(bytes.__add__, st.just(PNG[:24]), st.binary(max_size=32)),
    st.tuples(TEXT, st.just(PNG)),
)

any_generation = st.builds(
    GenerateRequest, **FIELDS, **GPT, style=_text_or_known("vivid", "natural")
)
any_edit = st.builds(
    EditRequest,
    **FIELDS,
    **GPT,
    input_fidelity=_text_or_known("high", "low"),
    image=st.one_of(IMAGES, st.lists(IMAGES, min_size=0, max_size=3)),
    mask=st.one_of(st.none(), st.just(SQUARE_MASK), IMAGES),
)
any_variation = st.builds(
    VariationRequest,
    **{name: value for name, value in FIELDS.items() if name != "quality"},
    image=IMAGES,
)


async def _sends_or_refuses(
    client: AsyncImagesClient, recorder: Recorder, request: ImageRequest
) -> None:
    before = len(recorder.requests)
    refusal: RequestValidationError | None = None
    try:
        await client.send(request)
    except RequestValidationError as error:
        refusal = error
    if refusal is not None:
        event("refused")
        assert refusal.violations
        assert len(recorder.requests) == before, "a refused request went out"
        assert recorder.unfinished == 0
        return
    event("sent")
    assert len(recorder.requests) == before + 1
    sent = recorder.requests[-1]
    expected = {k: v for k, v in request_fields(request).items() if v is not None}
    if isinstance(request, GenerateRequest):
        assert sent.json == expected
    else:
        assert sent.fields == {k: _as_text(v) for k, v in expected.items()}


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else str(value).lower()


@EXAMPLES
@given(request=any_generation)
async def test_any_generation_is_sent_or_refused(
    client: AsyncImagesClient, recorder: Recorder, request: GenerateRequest
) -> None:
    """Any typed generation goes out unchanged or is refused before I/O, nothing else."""
    await _sends_or_refuses(client, recorder, request)


@EXAMPLES
@given(request=any_edit)
async def test_any_edit_is_sent_or_refused(
    client: AsyncImagesClient, recorder: Recorder, request: EditRequest
) -> None:
    """Any typed edit, with any bytes as images and mask, is sent or refused before I/O."""
    await _sends_or_refuses(client, recorder, request)


@EXAMPLES
@given(request=any_variation)
async def test_any_variation_is_sent_or_refused(
    client: AsyncImagesClient, recorder: Recorder, request: VariationRequest
) -> None:
    """Any typed variation is sent or refused before I/O."""
    await _sends_or_refuses(client, recorder, request)


# -- input files --------------------------------------------------------------------------


def _sparse_png(path: Path, size: int) -> Path:
    """A PNG header and then ``size`` bytes in all, without writing them to disk."""
    with path.open("wb") as file:
        file.write(PNG)
        file.truncate(size)
    return path


class _Unreadable(io.RawIOBase):
    """A binary file object that refuses to be read, as one without permission does."""

    name = "locked.png"

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        raise PermissionError(13, "Permission denied")


def _fifo(tmp_path: Path) -> Path:
    path = tmp_path / "pipe.png"
    os.mkfifo(path)
    return path


BAD_FILES: dict[str, tuple[Callable[[Path], Path], str]] = {
    "missing": (lambda tmp: tmp / "nowhere.png", "no such file"),
    "a directory": (lambda tmp: tmp, "is a directory"),
    "a pipe": (_fifo, "not a regular file"),
    # Not even root may read this file: reading a process's memory at offset 0 fails.
    "unreadable (I/O error)": (lambda tmp: Path("/proc/self/mem"), "cannot read"),
    "not an image (text)": (lambda tmp: _write(tmp / "notes.png", b"hello world"), "not a PNG"),
    "not an image (empty)": (lambda tmp: _write(tmp / "empty.png", b""), "not a PNG"),
    "not an image (GIF)": (lambda tmp: _write(tmp / "a.gif", b"GIF89a" + bytes(20)), "not a PNG"),
    "over 50 MB": (lambda tmp: _sparse_png(tmp / "huge.png", 50 * MiB + 1), "under 50 MB"),
}


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("kind", sorted(BAD_FILES))
async def test_a_bad_input_file_is_refused_before_any_io(
    client: AsyncImagesClient, recorder: Recorder, tmp_path: Path, kind: str
) -> None:
    """Each bad file is a RequestValidationError naming ``image`` and saying why; no I/O."""
    make, why = BAD_FILES[kind]
    with pytest.raises(RequestValidationError, match=why) as refused:
        await client.edit(image=make(tmp_path), prompt="p", model="gpt-image-1.5")
    assert refused.value.param == "image"
    assert recorder.requests == []
    assert recorder.unfinished == 0


async def test_an_unreadable_file_object_is_refused_before_any_io(
    client: AsyncImagesClient, recorder: Recorder
) -> None:
    """A file object that may not be read is refused, naming it, before any I/O."""
    with pytest.raises(RequestValidationError, match="permission denied") as refused:
        await client.edit(image=io.BufferedReader(_Unreadable()), prompt="p", model="gpt-image-1.5")
    assert refused.value.param == "image"
    assert recorder.requests == []


@pytest.mark.parametrize("param", ["image", "mask"])
async def test_dall_e_2_files_over_4_mb_are_refused_before_any_io(
    client: AsyncImagesClient, recorder: Recorder, tmp_path: Path, param: str
) -> None:
    """dall-e-2 takes images and masks under 4 MB; a larger file never leaves the machine."""
    big = _sparse_png(tmp_path / "big.png", 4 * MiB)
    small = _write(tmp_path / "small.png", PNG)
    image, mask = (big, None) if param == "image" else (small, big)
    with pytest.raises(RequestValidationError, match="under 4 MB") as refused:
        await client.edit(prompt="p", model="dall-e-2", image=image, mask=mask)
    assert refused.value.param == param
    assert recorder.requests == []


async def test_a_file_deleted_after_its_check_fails_at_upload_without_retries(
    recorder: Recorder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file checked, then deleted before its upload, is a RequestValidationError naming
    it (not a connection error), and is not retried."""
    path = _write(tmp_path / "gone.png", PNG)
    real = build_multipart

    def build_then_delete(**kwargs: Any) -> Any:
        body = real(**kwargs)
        path.unlink()
        return body

    monkeypatch.setattr("openai_images._send.build_multipart", build_then_delete)
    async with AsyncImagesClient(api_key=KEY, base_url=recorder.base_url, max_retries=3) as c:
        with pytest.raises(RequestValidationError, match=r"gone\.png.*No such file") as refused:
            await c.edit(image=[PNG, path], prompt="p", model="gpt-image-1.5")
    assert refused.value.param == "image[1]"
    assert isinstance(refused.value.__cause__, FileNotFoundError)
    assert recorder.requests == []
    assert recorder.unfinished <= 1


async def test_a_file_name_that_is_not_utf8_still_uploads(
    client: AsyncImagesClient, recorder: Recorder, tmp_path: Path
) -> None:
    """A path whose bytes are not UTF-8 uploads; its name goes with replacement characters."""
    path = os.fsdecode(os.fsencode(tmp_path) + b"/\xff\xfe-photo.png")
    await anyio.Path(path).write_bytes(PNG)
    await client.edit(image=path, prompt="p", model="gpt-image-1.5")
    (part,) = [part for part in recorder.requests[0].parts if part.filename]
    assert part.filename is not None
    assert part.filename.endswith("-photo.png")
    assert part.content == PNG


@pytest.mark.parametrize("field", ["prompt", "user", "model"])
async def test_text_that_is_not_unicode_is_refused_even_unchecked(
    recorder: Recorder, field: str
) -> None:
    """A lone surrogate cannot be encoded: even ``validate=False`` refuses it by name."""
    changes: dict[str, Any] = {field: "fox \udcff"}
    request = attrs.evolve(GenerateRequest(prompt="a fox"), **changes)
    async with AsyncImagesClient(api_key=KEY, base_url=recorder.base_url, validate=False) as c:
        with pytest.raises(RequestValidationError) as refused:
            await c.send(request)
    assert refused.value.param == field
    assert recorder.requests == []
