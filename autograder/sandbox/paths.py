"""The paths the grader adds to the helper's spec so that the child's view of the machine stays whole and shut:
the interpreter and kit folders a private /tmp would cover, and the unix sockets to cover."""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Sequence


def _runtime_paths(readable: Sequence[str] = ()) -> list[str]:
    """The interpreter's prefixes and `readable` where the sandbox's private /tmp or /dev/shm would cover them (a
    virtual environment or a checkout under /tmp): the child is given these back, read-only."""
    wanted = {
        sys.prefix,
        sys.exec_prefix,
        sys.base_prefix,
        sys.base_exec_prefix,
        os.path.dirname(os.path.realpath(sys.executable)),
        *readable,
    }
    covered = [
        p
        for p in {os.path.realpath(p) for p in wanted if p}
        if p.startswith(("/tmp/", "/dev/shm/")) and os.path.isdir(p)
    ]
    return sorted(p for p in covered if not any(p.startswith(q + "/") for q in covered))  # outermost only


def _unix_socket_paths() -> list[str]:
    """Unix sockets bound to files (from /proc/net/unix): connecting to one works even on a read-only mount,
    so each gets /dev/null bound over it."""
    paths = set()
    try:
        with open("/proc/net/unix") as fh:
            next(fh, None)
            for line in fh:
                parts = line.split()
                if len(parts) >= 8 and parts[-1].startswith("/"):
                    paths.add(parts[-1])
    except OSError:
        return []
    out = []
    for path in sorted(paths):
        if path.startswith(("/tmp/", "/run/", "/dev/")):
            continue  # those directories are replaced inside anyway
        try:
            if stat.S_ISSOCK(os.lstat(path).st_mode):
                out.append(os.path.realpath(path))
        except OSError:
            continue
    return out
