"""What a Batch API job remembers between runs: the state file and the collected journal.

The state file (``batch_api.json`` in the output folder) is rewritten atomically after
each step that matters (an image uploaded, a shard uploaded, a batch created, a result
file collected), so a process killed anywhere resumes without uploading, submitting or
downloading anything twice. The lines collected from a result file that was only partly
read are kept in an append-only journal (one ``custom_id`` a line, flushed each line);
a torn last line is ignored.

Layout of the output folder::

    batch_api.json            the state
    .batch_api/draft.jsonl    the lines before their images had references
    .batch_api/inputs/        spooled copies of in-memory input images, by digest
    .batch_api/shard-*.jsonl  the input files uploaded to /v1/files
    .batch_api/collected.log  the journal
    .batch_api/cli-lines.json the command line's map from request index to batch-file line
    <key>.png, .<key>.done    the images and done-markers, as run_batch writes them
"""

from __future__ import annotations

from pathlib import Path
from typing import IO, Any

import attrs
import cattrs
import orjson

from openai_images._responses import write_atomically

__all__ = ["STATE_NAME", "Journal", "JobState", "ShardState"]

STATE_NAME = "batch_api.json"
WORK_DIR = ".batch_api"
_VERSION = 1
_converter = cattrs.Converter(forbid_extra_keys=False)


@attrs.define(kw_only=True)
class ShardState:
    """One input file and its batch.

    Attributes:
        number: Its position among the job's shards.
        endpoint: ``"generations"`` or ``"edits"``.
        path: The JSONL file, relative to the work folder.
        lines: Its lines.
        size: Its size in bytes.
        input_file_id: Once uploaded.
        batch_id: Once created.
        status: The batch's last known status.
        output_file_id: The batch's output file, once final.
        error_file_id: The batch's error file, once final.
        collected: The result files read to their end (file ids).
        finished: Final and every result file collected.
    """

    number: int
    endpoint: str
    path: str
    lines: int
    size: int
    input_file_id: str | None = None
    batch_id: str | None = None
    status: str | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None
    collected: list[str] = attrs.Factory(list)
    finished: bool = False


@attrs.define(kw_only=True)
class JobState:
    """A job, as the state file holds it.

    Attributes:
        output_dir: Where images and the state go.
        images: ``"upload"`` or ``"inline"``: how local input images are referenced.
        purpose: The purpose uploaded images get.
        metadata: Sent with each batch.
        total: Lines in the job.
        sources: The file name of each local input image's spooled copy (in ``inputs/``),
            by digest.
        uploads: The ``file_id`` of each uploaded image, by digest.
        shards: The input files and their batches.
        prepared: Every shard is written (uploads and batches may still be missing).
    """

    output_dir: str
    images: str
    purpose: str
    metadata: dict[str, str] = attrs.Factory(dict)
    total: int = 0
    sources: dict[str, str] = attrs.Factory(dict)
    uploads: dict[str, str] = attrs.Factory(dict)
    shards: list[ShardState] = attrs.Factory(list)
    prepared: bool = False
    version: int = _VERSION

    @property
    def path(self) -> Path:
        """The state file."""
        return Path(self.output_dir) / STATE_NAME

    @property
    def work_dir(self) -> Path:
        """The folder of the job's own files."""
        return Path(self.output_dir) / WORK_DIR

    def save(self) -> None:
        """Write the state atomically (blocking)."""
        data = orjson.dumps(_converter.unstructure(self), option=orjson.OPT_INDENT_2)
        write_atomically(self.path, data)

    @classmethod
    def load(cls, path: str | Path) -> JobState:
        """Read a state file (blocking).

        Raises:
            ValueError: It is not a state file of this version.
            OSError: It cannot be read.
        """
        data: Any = orjson.loads(Path(path).read_bytes())
        if not isinstance(data, dict) or data.get("version") != _VERSION:
            raise ValueError(f"{path} is not a Batch API state file of version {_VERSION}")
        state = _converter.structure(data, cls)
        # The folder is where the state file is now (it may have been moved with it).
        state.output_dir = str(Path(path).parent)
        return state


class Journal:
    """The ``custom_id`` of every line collected so far, appended one by one (blocking I/O).

    Each journal line is the ``custom_id`` and, tab-separated, what the caller adds
    (the job records the outcome and the tokens, for its report).

    Example:
        >>> import tempfile, pathlib
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> with Journal(folder / "collected.log") as journal:
        ...     journal.add("0:a")
        >>> "0:a" in Journal(folder / "collected.log")
        True
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._seen: set[str] = set()
        self._file: IO[bytes] | None = None
        if path.exists():
            data = path.read_bytes()
            complete = data[: data.rfind(b"\n") + 1]
            self._seen = {line.split(b"\t", 1)[0].decode() for line in complete.splitlines()}
            if len(complete) != len(data):  # a torn last line, from a crash mid-write
                with path.open("r+b") as file:
                    file.truncate(len(complete))

    def __contains__(self, custom_id: str) -> bool:
        return custom_id in self._seen

    def __len__(self) -> int:
        return len(self._seen)

    def add(self, custom_id: str, *details: str) -> None:
        """Record a line as collected (with tab-separated details), surviving a crash."""
        if self._file is None:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self._path.open("ab")
        self._file.write("\t".join((custom_id, *details)).encode() + b"\n")
        self._file.flush()
        self._seen.add(custom_id)

    def close(self) -> None:
        """Close the file."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
