"""How a sandboxed run ended (`ProcessOutcome`), and the short sentence for the student that says why.

The order in which reasons are decided is in docs/isolation.md ("How reasons are decided").
"""

from __future__ import annotations

import logging
import signal
import time
from dataclasses import dataclass

from .limits import Limits

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProcessOutcome:
    """How one sandboxed process ended, as the operating system and the fences saw it (not what the code in it
    returned: that is `runner.Outcome`, one per item of a worker's plan)."""

    returncode: int | None  # None when killed by a signal (or never started)
    signal: int | None
    timed_out: bool
    wall_s: float
    reason: str | None  # None on a normal exit; else a short sentence for a student
    output_tail: str  # last bytes of combined stdout/stderr, decoded with errors="replace"
    # True when the grader could not set the sandbox up, so the command never ran: the grader's fault, not the
    # student's (`reason` then says so in words). The one field to test for it; never search `reason`.
    sandbox_failed: bool = False
    forked: bool = False  # its worker was forked from a fork server (zygote.py), not started as a new interpreter


def _setup_sentence(detail: str) -> str:
    return (
        f"the grader could not set up its sandbox ({detail}); this is not a problem with your code, "
        "please tell the course staff"
    )


def _setup_failure(message: str, start: float) -> ProcessOutcome:
    """A run stopped by the grader's side before the helper could report (no cgroup, no helper process)."""
    log.error("sandbox setup failed: %s", message)
    return ProcessOutcome(
        None, None, False, time.monotonic() - start, _setup_sentence(message), "", sandbox_failed=True
    )


def _outcome(
    lines: list[str], helper_rc: int | None, timed_out: bool, wall: float, tail: str, limits: Limits, stats: dict
) -> ProcessOutcome:
    """The ProcessOutcome from the helper's status lines, its exit status and the cgroup's statistics."""
    info: dict[str, str] = {}
    for line in lines:
        key, _, value = line.partition(" ")
        if key in ("error", "warn"):
            (log.error if key == "error" else log.warning)("sandbox helper: %s", value)
        info.setdefault(key, value)
    if timed_out:
        return ProcessOutcome(None, signal.SIGKILL, True, wall, f"it ran past the {limits.wall_s:g} s time limit", tail)
    if "error" in info:
        return ProcessOutcome(None, None, False, wall, _setup_sentence(info["error"]), tail, sandbox_failed=True)
    returncode, sig = None, None
    if "exit" in info:
        returncode = int(info["exit"])
    elif "signal" in info:
        sig = int(info["signal"])
    elif "initsignal" in info:
        sig = int(info["initsignal"])
    elif helper_rc is not None and helper_rc < 0:
        sig = -helper_rc
    else:
        sig = signal.SIGKILL  # the helper died without a word: only a kill does that
    cpu = float(info.get("cpu", 0) or 0)
    maxrss_mb = int(info.get("maxrss", 0) or 0) / 1024
    peak_mb = max(maxrss_mb, stats.get("memory_peak", 0) / 2**20)
    oom = stats.get("oom_kills", 0) > 0
    near_memory = oom or peak_mb >= 0.75 * limits.memory_mb
    memory_text = f"it ran out of memory (limit {limits.memory_mb} MB) or crashed"
    reason = None
    if sig is not None:
        name = _signal_name(sig)
        if sig == signal.SIGXCPU or (sig == signal.SIGKILL and cpu >= limits.cpu_s - 0.5 and not oom):
            reason = f"it used more than {limits.cpu_s} s of CPU"
        elif sig == signal.SIGXFSZ:
            reason = f"it tried to write a file larger than the {limits.file_size_mb} MB limit"
        elif sig == signal.SIGKILL and near_memory:
            reason = memory_text
        elif sig in (signal.SIGSEGV, signal.SIGBUS, signal.SIGABRT) and near_memory:
            reason = f"{memory_text} (signal {sig}, {name})"
        else:
            reason = f"it was killed by signal {sig} ({name})"
    elif returncode != 0:
        end = tail[-4096:]
        if oom or "MemoryError" in end:
            reason = memory_text
        elif "[Errno 27] File too large" in end:
            reason = f"it tried to write a file larger than the {limits.file_size_mb} MB limit"
    return ProcessOutcome(returncode, sig, False, wall, reason, tail)


def _signal_name(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"
