"""Reading the small files that sit beside a submission (nbgrader's `timestamp.txt`, `submission_secret.txt`).

They come from the student's folder, so they are read like the notebook: never through a link (it could point at the
solutions), never from a FIFO or a device (a read could block or never end), and never more than a few kilobytes.
"""

from __future__ import annotations

import datetime as dt
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


def read_timestamp(path: Path) -> tuple[dt.datetime | None, str | None]:
    """nbgrader's `timestamp.txt` as a UTC time: (time, None); (None, None) when there is no file to read (missing,
    a link, too big); (None, its text) when the text is not a time."""
    data = read_small_file(path)
    if data is None:
        return None, None
    text = data.decode("utf-8", errors="replace").strip()
    try:
        from nbgrader.utils import parse_utc  # nbgrader's own reader of its timestamp.txt

        time = parse_utc(text)
    except Exception:  # noqa: BLE001 - whatever the parser raises on odd text, it is not a time
        return None, text
    return as_utc(time), None


def as_utc(moment: dt.datetime) -> dt.datetime:
    """An aware UTC time; a naive one is taken as UTC, as nbgrader does."""
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)
