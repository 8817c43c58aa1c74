"""The Batch API for synchronous code: ``ImagesClient.batch_api``.

The same job as ``BatchAPI``/``BatchAPIJob``, each call run to completion by the sync
client's runner (given as ``run``), so this module knows nothing of threads or loops.
"""

from __future__ import annotations

import functools
import os
from collections.abc import AsyncIterable, Callable, Iterable, Iterator, Mapping
from pathlib import Path

from openai_images._batch import BatchResult, KeyFunction, RunToCompletion
from openai_images._requests import ImageRequest

from ._job import (
    DEFAULT_IMAGE_PURPOSE,
    BatchAPI,
    BatchAPIJob,
    BatchAPIProgress,
    BatchAPIReport,
    ImageStrategy,
    RemoteBatch,
)

__all__ = ["SyncBatchAPI", "SyncBatchAPIJob"]


class SyncBatchAPI:
    """OpenAI's Batch API for ``ImagesClient``: ``submit`` and ``resume`` a job.

    Example:
        ```python
        job = client.batch_api.submit(requests, output_dir="out")
        job.wait(progress=print)
        for result in job.results():
            print(result.index, result.paths or result.error)
        ```
    """

    def __init__(self, batch_api: BatchAPI, run: RunToCompletion) -> None:
        self._batch_api = batch_api
        self._run = run

    def with_limits(
        self, *, max_lines: int | None = None, max_bytes: int | None = None
    ) -> SyncBatchAPI:
        """The same Batch API with lower per-file limits, to shard sooner."""
        limited = self._batch_api.with_limits(max_lines=max_lines, max_bytes=max_bytes)
        return SyncBatchAPI(limited, self._run)

    def submit(
        self,
        requests: Iterable[ImageRequest] | AsyncIterable[ImageRequest],
        *,
        output_dir: str | os.PathLike[str],
        key: KeyFunction | None = None,
        metadata: Mapping[str, str] | None = None,
        images: ImageStrategy = "upload",
        image_purpose: str = DEFAULT_IMAGE_PURPOSE,
    ) -> SyncBatchAPIJob:
        """Check every request, upload what is needed and create the batches
        (see ``BatchAPI.submit``)."""
        submit = functools.partial(
            self._batch_api.submit,
            requests,
            output_dir=output_dir,
            key=key,
            metadata=metadata,
            images=images,
            image_purpose=image_purpose,
        )
        return SyncBatchAPIJob(self._run(submit), self._run)

    def resume(self, state_file: str | os.PathLike[str]) -> SyncBatchAPIJob:
        """Pick a job up from its state file (see ``BatchAPI.resume``)."""
        job = self._run(functools.partial(self._batch_api.resume, state_file))
        return SyncBatchAPIJob(job, self._run)

    def load(self, state_file: str | os.PathLike[str]) -> SyncBatchAPIJob:
        """The job of a state file as it stands, without carrying it on (see
        ``BatchAPI.load``)."""
        job = self._run(functools.partial(self._batch_api.load, state_file))
        return SyncBatchAPIJob(job, self._run)


class SyncBatchAPIJob:
    """A Batch API job for synchronous code (see ``BatchAPIJob``)."""

    def __init__(self, job: BatchAPIJob, run: RunToCompletion) -> None:
        self._job = job
        self._run = run

    @property
    def state_file(self) -> Path:
        """Where the job remembers itself (give it to ``resume``)."""
        return self._job.state_file

    @property
    def batch_ids(self) -> tuple[str, ...]:
        """The remote batches' ids."""
        return self._job.batch_ids

    @property
    def total(self) -> int:
        """How many requests the job holds."""
        return self._job.total

    @property
    def final(self) -> bool:
        """Whether every batch is done (completed, failed, expired or cancelled)."""
        return self._job.final

    def progress(self) -> BatchAPIProgress:
        """The counts as last seen (``refresh`` or ``wait`` update them)."""
        return self._job.progress()

    def refresh(self, *, every: bool = False) -> tuple[RemoteBatch, ...]:
        """Fetch every batch's state once (see ``BatchAPIJob.refresh``)."""
        return self._run(functools.partial(self._job.refresh, every=every))

    def wait(
        self,
        *,
        progress: Callable[[BatchAPIProgress], object] | None = None,
        poll_interval: float = 5.0,
        max_interval: float = 60.0,
        interrupt_note: bool = True,
    ) -> tuple[RemoteBatch, ...]:
        """Poll until every batch is final (see ``BatchAPIJob.wait``; Ctrl-C leaves the
        remote batches running)."""
        wait = functools.partial(
            self._job.wait,
            progress=progress,
            poll_interval=poll_interval,
            max_interval=max_interval,
            interrupt_note=interrupt_note,
        )
        return self._run(wait)

    def cancel(self) -> tuple[RemoteBatch, ...]:
        """Ask every batch to stop."""
        return self._run(self._job.cancel)

    def results(self) -> Iterator[BatchResult]:
        """Each line's ``BatchResult`` (any order), its images saved; call after ``wait``."""
        lines = self._job.results()
        try:
            while True:
                try:
                    yield self._run(lines.__anext__)
                except StopAsyncIteration:
                    return
        finally:
            aclose = getattr(lines, "aclose", None)  # an async generator's, when it is one
            if aclose is not None:
                self._run(aclose)

    def report(self, *, input_price: float = 5.0, output_price: float = 20.0) -> BatchAPIReport:
        """The job's totals and a cost estimate (see ``BatchAPIJob.report``)."""
        return self._job.report(input_price=input_price, output_price=output_price)
