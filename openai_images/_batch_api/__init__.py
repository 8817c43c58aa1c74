"""The OpenAI Batch API for image requests: lines, uploads, shards, polling, collecting, resume.

``BatchAPI(client)`` is the entry point (``client.batch_api`` once the clients are wired to
it); see ``_job.py`` for the road of a job, ``_lines.py`` for the sans-I/O line format,
``_state.py`` for what a job remembers, and ``_remote.py`` for its only HTTP.
"""

from ._job import (
    DEFAULT_IMAGE_PURPOSE,
    BatchAPI,
    BatchAPIJob,
    BatchAPIProgress,
    BatchAPIReport,
    BatchProblem,
    RemoteBatch,
    RequestCounts,
)
from ._lines import BatchLineError
from ._sync import SyncBatchAPI, SyncBatchAPIJob

__all__ = [
    "DEFAULT_IMAGE_PURPOSE",
    "BatchAPI",
    "BatchAPIJob",
    "BatchAPIProgress",
    "BatchAPIReport",
    "BatchLineError",
    "BatchProblem",
    "RemoteBatch",
    "RequestCounts",
    "SyncBatchAPI",
    "SyncBatchAPIJob",
]
