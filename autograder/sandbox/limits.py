"""What one sandboxed run may use (`Limits`), and the rlimits the helper sets from it before the exec."""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass

from .helper import HELPER_PROCS


@dataclass(frozen=True)
class Limits:
    wall_s: float = 120.0
    cpu_s: int = 600
    memory_mb: int = 4096  # TensorFlow on the CPU needs >= ~2 GB of address space
    max_pids: int = 64  # processes and threads of the student's code
    file_size_mb: int = 256
    output_kb: int = 256  # only the last output_kb of stdout+stderr is kept
    # Workers are forked from a fork server that imported Keras once (zygote.py), where the namespaces allow it
    # (course.yaml's worker.fork_server; launch.FORK_SERVER_ENV overrides it)
    fork_server: bool = False


def _rlimits(limits: Limits, no_address_limit: bool, plan: dict) -> list[list[int]]:
    """[resource, soft, hard] for the helper's spec. No address-space limit in the GPU fence set (it breaks
    CUDA); RLIMIT_NPROC only where the probe found that it binds (`plan["nproc_binds"]`)."""
    mb = 1024 * 1024
    out = [
        [resource.RLIMIT_CPU, int(limits.cpu_s), int(limits.cpu_s) + 2],
        [resource.RLIMIT_FSIZE, int(limits.file_size_mb) * mb, int(limits.file_size_mb) * mb],
        [resource.RLIMIT_CORE, 0, 0],
    ]
    if not no_address_limit:
        out.append([resource.RLIMIT_AS, int(limits.memory_mb) * mb, int(limits.memory_mb) * mb])
    if plan.get("nproc_binds"):
        # RLIMIT_NPROC counts every task of the user, the grader's included: leave room for those
        nproc = _user_tasks() + int(limits.max_pids) + HELPER_PROCS
        out.append([resource.RLIMIT_NPROC, nproc, nproc])
    return out


def _user_tasks() -> int:
    uid, count = os.getuid(), 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/status") as fh:
                fields = dict(line.split(":", 1) for line in fh if ":" in line)
            if int(fields["Uid"].split()[0]) == uid:
                count += int(fields.get("Threads", "1"))
        except (OSError, ValueError, KeyError):
            continue
    return count
