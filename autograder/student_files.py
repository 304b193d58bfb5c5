"""Reading the small files that sit beside a submission (nbgrader's `timestamp.txt`, `submission_secret.txt`).

They come from the student's folder, so they are read like the notebook: never through a link (it could point at the
solutions), never from a FIFO or a device (a read could block or never end), and never more than a few kilobytes.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

SMALL_FILE_BYTES = 4096


def read_small_file(path: Path, limit: int = SMALL_FILE_BYTES) -> bytes | None:
    """The bytes of a regular file of at most `limit` bytes, or None for anything else (missing, a link, too big)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        data = fh.read(limit + 1)
    return data if len(data) <= limit else None
