"""Check that an edit uploading 4 files of 50 MB given as paths keeps memory flat.

Run ``python -m tests.benchmarks.upload_memory`` from the repo root. The files are sparse
(a valid PNG header, then a hole), so they cost no disk space; the canned-answer server
runs in another process and throws the upload away as it arrives. This process's peak RSS
during the call is compared with its RSS just before it: the files stream from disk in
chunks, so the rise must stay under :data:`LIMIT_MIB`. Exits 1 when it does not.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from tests.benchmarks._peers import make_sparse_png, run_worker, write_small_png
from tests.benchmarks._server import running_server

FILES = 4
FILE_BYTES = 50_000_000
LIMIT_MIB = 10.0


def main() -> int:
    """Measure one upload with ``AsyncImagesClient`` in this process; print the figure."""
    with tempfile.TemporaryDirectory(prefix="openai-images-upload-") as tmp:
        folder = Path(tmp)
        paths = [folder / f"input-{index}.png" for index in range(FILES)]
        for path in paths:
            make_sparse_png(path, FILE_BYTES)
        write_small_png(folder / "small.png")
        with running_server() as root:
            figures = run_worker(
                {
                    "scenario": "edit",
                    "peer": "ours",
                    "root": root,
                    "warm_path": str(folder / "small.png"),
                    "paths": [str(path) for path in paths],
                    "repeats": 1,
                }
            )
    rise = figures["rss_mb"]
    total_mb = FILES * FILE_BYTES / 1e6
    verdict = "ok" if rise < LIMIT_MIB else "TOO MUCH"
    print(
        f"edit of {FILES} x {FILE_BYTES / 1e6:.0f} MB ({total_mb:.0f} MB) given as paths: "
        f"peak RSS rose by {rise:.2f} MiB (limit {LIMIT_MIB:.0f} MiB) in "
        f"{figures['wall_s'] * 1e3:.0f} ms: {verdict}"
    )
    return 0 if rise < LIMIT_MIB else 1


if __name__ == "__main__":
    sys.exit(main())
