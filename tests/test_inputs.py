"""Tests for openai_images._inputs: every input kind to a sniffed, streamable source."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import IO, Any, cast

import anyio
import anyio.to_thread
import pytest
from PIL import Image

from openai_images import _inputs
from openai_images._errors import RequestValidationError
from openai_images._inputs import ImageSource, resolve_image, resolve_images

from .resources import OneWayStream, open_fds


def encode(size: tuple[int, int], fmt: str = "PNG", mode: str = "RGBA") -> bytes:
    """A small image made with Pillow."""
    out = io.BytesIO()
    Image.new(mode, size).save(out, fmt)
    return out.getvalue()


PNG = encode((7, 5))
JPEG = encode((6, 4), "JPEG", "RGB")
WEBP = encode((3, 9), "WEBP", "RGB")


async def read_all(source: ImageSource, chunk_size: int = 1000) -> bytes:
    """The source's whole content, checking that no chunk is longer than asked."""
    out = bytearray()
    async for chunk in source.chunks(chunk_size=chunk_size):
        assert 0 < len(chunk) <= chunk_size
        out += chunk
    return bytes(out)


@pytest.fixture
def png_path(tmp_path: Path) -> Path:
    """A 7x5 RGBA PNG on disk."""
    path = tmp_path / "cat.png"
    path.write_bytes(PNG)
    return path


@pytest.mark.anyio
@pytest.mark.parametrize("as_str", [True, False], ids=["str", "pathlike"])
async def test_path(png_path: Path, as_str: bool) -> None:
    """A path gives its file name, sniffed facts and size, and replays from the start."""
    source = await resolve_image(str(png_path) if as_str else png_path, param="image")
    info = source.info
    assert (info.filename, info.content_type, info.size) == ("cat.png", "image/png", len(PNG))
    assert (info.width, info.height, info.has_alpha) == (7, 5, True)
    assert source.replayable
    assert await read_all(source) == PNG
    assert await read_all(source, chunk_size=7) == PNG


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("data", "filename", "content_type"),
    [
        (PNG, "image.png", "image/png"),
        (JPEG, "image.jpg", "image/jpeg"),
        (WEBP, "image.webp", "image/webp"),
    ],
)
async def test_bytes(data: bytes, filename: str, content_type: str) -> None:
    """Bytes are named after their sniffed type and stream in slices, again and again."""
    source = await resolve_image(data, param="image")
    assert (source.info.filename, source.info.content_type) == (filename, content_type)
    assert source.info.size == len(data)
    assert source.replayable
    assert await read_all(source, chunk_size=100) == data
    assert await read_all(source, chunk_size=len(data)) == data


@pytest.mark.anyio
async def test_bytes_in_one_chunk_are_not_copied() -> None:
    """Bytes that fit in one chunk come out as the very same object."""
    source = await resolve_image(PNG, param="image")
    chunks = [chunk async for chunk in source.chunks()]
    assert chunks == [PNG]
    assert chunks[0] is PNG


@pytest.mark.anyio
async def test_seekable_file_object_rewinds_to_where_it_was() -> None:
    """A file object positioned past a prefix sizes and replays from that position."""
    file = io.BytesIO(b"prefix" + JPEG)
    file.seek(6)
    source = await resolve_image(file, param="image")
    assert (source.info.filename, source.info.content_type) == ("image.jpg", "image/jpeg")
    assert (source.info.size, source.info.width, source.info.height) == (len(JPEG), 6, 4)
    assert file.tell() == 6
    assert source.replayable
    assert await read_all(source) == JPEG
    file.seek(0)
    assert await read_all(source) == JPEG


@pytest.mark.anyio
async def test_open_file_is_named_after_its_path(png_path: Path) -> None:
    """An open file is named by the basename of its ``name``, and stays open afterwards."""
    with png_path.open("rb") as file:
        source = await resolve_image(file, param="image")
        assert source.info.filename == "cat.png"
        assert await read_all(source) == PNG
        assert not file.closed


@pytest.mark.anyio
async def test_file_opened_from_a_descriptor_is_named_like_bytes(png_path: Path) -> None:
    """A file whose ``name`` is a descriptor number is named after its sniffed type."""
    fd = os.open(png_path, os.O_RDONLY)
    with await anyio.to_thread.run_sync(open, fd, "rb") as file:
        source = await resolve_image(file, param="image")
        assert source.info.filename == "image.png"


@pytest.mark.anyio
async def test_non_seekable_stream_is_one_shot() -> None:
    """A stream that cannot seek yields the sniffed head and the rest once, then refuses."""
    data = PNG + bytes(200_000)
    # Raw streams are not IO[bytes] to a type checker, but they read the same way.
    source = await resolve_image(cast("IO[bytes]", OneWayStream(data)), param="image")
    assert source.info.content_type == "image/png"
    assert source.info.size is None
    assert not source.replayable
    assert await read_all(source, chunk_size=4096) == data
    with pytest.raises(RuntimeError, match="one-shot stream and cannot be replayed"):
        await read_all(source)


@pytest.mark.anyio
async def test_pipe_is_one_shot() -> None:
    """A buffered reader over a real pipe, written to concurrently, streams once."""
    data = WEBP + os.urandom(300_000)
    read_fd, write_fd = os.pipe()

    def write_all() -> None:
        with open(write_fd, "wb") as writer:
            writer.write(data)

    async with anyio.create_task_group() as group:
        group.start_soon(anyio.to_thread.run_sync, write_all)
        # The reader closes before the group waits for the writer: should the test fail
        # part-way, a blocked writer then gets EPIPE instead of hanging the suite.
        with await anyio.to_thread.run_sync(open, read_fd, "rb") as reader:
            source = await resolve_image(reader, param="image")
            assert source.info.content_type == "image/webp"
            assert not source.replayable
            assert await read_all(source, chunk_size=65536) == data


@pytest.mark.anyio
async def test_tuple_with_bytes() -> None:
    """A (filename, bytes) tuple keeps the filename and sniffs the type."""
    source = await resolve_image(("photo.jpeg", JPEG), param="image")
    assert (source.info.filename, source.info.content_type) == ("photo.jpeg", "image/jpeg")


@pytest.mark.anyio
async def test_tuple_with_a_path(png_path: Path) -> None:
    """A (filename, path) tuple sends the file under the given name."""
    source = await resolve_image(("renamed.png", png_path), param="image")
    assert (source.info.filename, source.info.size) == ("renamed.png", len(PNG))
    assert await read_all(source) == PNG


@pytest.mark.anyio
async def test_tuple_content_type_is_kept_as_given() -> None:
    """The content type in a tuple wins over the sniffed one, even for non-image bytes."""
    source = await resolve_image(("a.png", io.BytesIO(JPEG), "image/png"), param="image")
    assert source.info.content_type == "image/png"
    assert (source.info.width, source.info.height) == (6, 4)
    insisted = await resolve_image(("raw.bin", b"not sniffable", "image/png"), param="image")
    assert insisted.info.content_type == "image/png"


@pytest.mark.anyio
async def test_missing_file_is_named(tmp_path: Path) -> None:
    """A missing file is refused before any upload, naming the path."""
    missing = tmp_path / "nope.png"
    with pytest.raises(RequestValidationError) as caught:
        await resolve_image(missing, param="mask")
    assert caught.value.param == "mask"
    assert caught.value.violations[0].message == f"no such file: {str(missing)!r}"


@pytest.mark.anyio
async def test_directory(tmp_path: Path) -> None:
    """A directory is not an image file."""
    with pytest.raises(RequestValidationError, match="is a directory, not an image file"):
        await resolve_image(tmp_path, param="image")


@pytest.mark.anyio
async def test_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    """A FIFO path is refused at once (opening it would wait for a writer)."""
    fifo = tmp_path / "queue"
    os.mkfifo(fifo)
    with pytest.raises(RequestValidationError, match="is not a regular file"):
        await resolve_image(fifo, param="image")


@pytest.mark.anyio
async def test_text_file_is_not_an_image(tmp_path: Path) -> None:
    """A text file is refused, named by its path."""
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    with pytest.raises(RequestValidationError) as caught:
        await resolve_image(notes, param="image")
    assert str(caught.value) == f"image: {str(notes)!r} is not a PNG, JPEG or WebP image"


@pytest.mark.anyio
async def test_text_in_a_tuple_is_named_by_its_filename() -> None:
    """Non-image content in a tuple is named by the tuple's filename."""
    with pytest.raises(RequestValidationError) as caught:
        await resolve_image(("notes.txt", b"hello"), param="image")
    assert str(caught.value) == "image: 'notes.txt' is not a PNG, JPEG or WebP image"


@pytest.mark.anyio
async def test_unreadable_file(png_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file that cannot be opened for lack of permission says so (simulated: tests may run
    as root, who reads everything)."""

    def forbidden(*args: object, **kwargs: object) -> Any:
        raise PermissionError(13, "Permission denied", str(png_path))

    monkeypatch.setattr(_inputs, "open", forbidden, raising=False)
    with pytest.raises(RequestValidationError, match="permission denied"):
        await resolve_image(png_path, param="image")


@pytest.mark.anyio
async def test_closed_and_write_only_files(tmp_path: Path) -> None:
    """A closed file and a file open only for writing are refused."""
    closed = io.BytesIO(PNG)
    closed.close()
    with pytest.raises(RequestValidationError, match="is closed"):
        await resolve_image(closed, param="image")
    with (
        (tmp_path / "out.png").open("wb") as writer,
        pytest.raises(RequestValidationError, match="is not open for reading"),
    ):
        await resolve_image(writer, param="image")


@pytest.mark.anyio
async def test_text_mode_file(png_path: Path) -> None:
    """A file opened in text mode is a programming error: TypeError."""
    with png_path.open(encoding="latin-1") as text, pytest.raises(TypeError, match="'rb'"):
        await resolve_image(text, param="image")  # type: ignore[arg-type]  # the wrong type on purpose


@pytest.mark.anyio
@pytest.mark.parametrize(
    "value",
    [42, None, bytearray(PNG), ("a.png",), ("a.png", PNG, "image/png", "x"), (1, PNG)],
    ids=["int", "none", "bytearray", "short-tuple", "long-tuple", "int-filename"],
)
async def test_wrong_python_types(value: Any) -> None:
    """Values of an unsupported Python type raise TypeError."""
    with pytest.raises(TypeError):
        await resolve_image(value, param="image")


# A file in chunks, and a file no bigger than a chunk (read in one go).
CHUNK_SIZES = pytest.mark.parametrize("chunk_size", [10, 1000], ids=["chunked", "whole"])


@pytest.mark.anyio
@CHUNK_SIZES
async def test_file_that_shrinks_after_resolving(png_path: Path, chunk_size: int) -> None:
    """A file cut short between resolving and sending is an error, not a short body."""
    source = await resolve_image(png_path, param="image")
    await anyio.Path(png_path).write_bytes(PNG[:10])
    with pytest.raises(RuntimeError, match=f"shrank from {len(PNG)} to 10 bytes"):
        await read_all(source, chunk_size=chunk_size)


@pytest.mark.anyio
@CHUNK_SIZES
async def test_file_that_grows_after_resolving(png_path: Path, chunk_size: int) -> None:
    """A file that grew between resolving and sending is an error, not a cut body."""
    source = await resolve_image(png_path, param="image")
    await anyio.Path(png_path).write_bytes(PNG + b"more")
    with pytest.raises(RuntimeError, match="grew"):
        await read_all(source, chunk_size=chunk_size)


@pytest.mark.anyio
@CHUNK_SIZES
async def test_a_seekable_file_that_changed_size_is_an_error(chunk_size: int) -> None:
    """A file object cut short after resolving fails as a path does, read whole or not."""
    file = io.BytesIO(b"prefix" + PNG)
    file.seek(6)
    source = await resolve_image(file, param="image")
    file.truncate(6 + 10)
    with pytest.raises(RuntimeError, match=f"shrank from {len(PNG)} to 10 bytes"):
        await read_all(source, chunk_size=chunk_size)


@pytest.mark.anyio
async def test_a_small_file_is_one_chunk_and_closed_at_once(png_path: Path) -> None:
    """A file no bigger than a chunk comes whole, its file already closed."""
    before = open_fds()
    source = await resolve_image(png_path, param="image")
    chunks = source.chunks(chunk_size=len(PNG))
    assert await chunks.__anext__() == PNG
    assert open_fds() == before
    with pytest.raises(StopAsyncIteration):
        await chunks.__anext__()


@pytest.mark.anyio
async def test_chunk_size_must_be_positive() -> None:
    """A chunk size of zero is refused."""
    source = await resolve_image(PNG, param="image")
    with pytest.raises(ValueError, match="chunk_size"):
        await read_all(source, chunk_size=0)


@pytest.mark.anyio
async def test_early_close_closes_the_file(png_path: Path) -> None:
    """Closing the generator after one chunk closes the file it opened."""
    before = open_fds()
    source = await resolve_image(png_path, param="image")
    chunks = source.chunks(chunk_size=10)
    assert await chunks.__anext__() == PNG[:10]
    assert open_fds() == before + 1
    await chunks.aclose()
    assert open_fds() == before


@pytest.mark.anyio
async def test_cancelled_read_closes_the_file(png_path: Path) -> None:
    """Cancelling the task while the generator reads closes the file too."""
    before = open_fds()
    source = await resolve_image(png_path, param="image")
    with anyio.CancelScope() as scope:
        chunks = source.chunks(chunk_size=10)
        await chunks.__anext__()
        scope.cancel()
        await chunks.__anext__()
    assert scope.cancelled_caught
    assert open_fds() == before


@pytest.mark.anyio
async def test_resolve_images_keeps_order_and_names_params(tmp_path: Path) -> None:
    """Many inputs resolve concurrently into sources in input order."""
    paths = []
    for index in range(20):
        path = tmp_path / f"{index}.png"
        path.write_bytes(encode((index + 1, 3)))
        paths.append(path)
    sources = await resolve_images(paths, param="image", listed=True)
    assert [source.info.filename for source in sources] == [f"{i}.png" for i in range(20)]
    assert [source.info.width for source in sources] == list(range(1, 21))


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("listed", "params"), [(True, ["image[1]", "image[3]"]), (False, ["image"] * 2)]
)
async def test_resolve_images_reports_every_refused_input(
    tmp_path: Path, listed: bool, params: list[str]
) -> None:
    """Every refused input is reported, as image[i] for a list and image otherwise."""
    values: list[Any] = [PNG, tmp_path / "missing.png", JPEG, b"text"]
    with pytest.raises(RequestValidationError) as caught:
        await resolve_images(values, param="image", listed=listed)
    assert [violation.param for violation in caught.value.violations] == params


@pytest.mark.anyio
async def test_resolve_images_reports_refusals_in_order_among_files_and_bytes(
    tmp_path: Path,
) -> None:
    """Several files (looked at concurrently) among bytes (looked at in place): the
    sources and the refusals keep the input's order."""
    (tmp_path / "a.png").write_bytes(PNG)
    values: list[Any] = [b"text", tmp_path / "a.png", JPEG, tmp_path / "missing.png", WEBP]
    with pytest.raises(RequestValidationError) as caught:
        await resolve_images(values, param="image", listed=True)
    assert [violation.param for violation in caught.value.violations] == ["image[0]", "image[3]"]
    del values[3], values[0]
    sources = await resolve_images(values, param="image", listed=True)
    assert [source.info.content_type for source in sources] == [
        "image/png",
        "image/jpeg",
        "image/webp",
    ]


@pytest.mark.anyio
async def test_resolve_images_type_error_before_any_io() -> None:
    """A wrong Python type among the inputs raises TypeError, not an exception group."""
    with pytest.raises(TypeError):
        await resolve_images([PNG, 3], param="image", listed=True)  # type: ignore[list-item]  # on purpose
