"""One helper process from start to end: start it with its spec, wait for it (or the wall clock, or the caller's
`watch`), kill everything it left, drain the output, and read its report into a ProcessOutcome.

The spec reaches the helper through a memfd, its report comes back on a pipe and the child's stdout and stderr
share another pipe, which a thread drains keeping only the last `output_kb`.
"""

from __future__ import annotations

import dataclasses
import fcntl
import functools
import logging
import marshal
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from ..owntime import OwnClock, process_tree
from . import helper
from .cgroups import _Cgroup
from .limits import Limits
from .outcome import ProcessOutcome, _outcome, _setup_failure

log = logging.getLogger(__name__)

# run by its path, never as a module (see helper.py)
HELPER_PATH = os.path.abspath(helper.__file__)


def _run(
    spec: dict,
    limits: Limits,
    cgroup: _Cgroup | None,
    stdin_data: bytes | None,
    start: float,
    status_lines: list[str] | None = None,
    watch: Callable[[OwnClock], str | None] | None = None,
    fork_server=None,
) -> ProcessOutcome:
    """Run the helper with `spec` (already in `cgroup`, when there is one) and return how the run ended.
    `status_lines`, when given, receives the helper's report as it came (the probe reads its fence lines).
    `watch` gets the own-time clock of the helper's process tree (owntime.py), for limits judged on it.
    `fork_server` (forkserver.ForkServer): fork the run's first process from it rather than start the helper; when
    it cannot, the helper runs as without it. The outcome's `forked` says which it was."""
    stdin_fd = _memfd(stdin_data) if stdin_data is not None else os.open(os.devnull, os.O_RDONLY)
    status_r, status_w = os.pipe()
    out_r, out_w = os.pipe()
    try:
        fcntl.fcntl(out_r, 1031, 1 << 20)  # F_SETPIPE_SZ: fewer wake-ups when a child prints a lot
    except OSError:
        pass
    keep = max(1, limits.output_kb) * 1024
    drain = _Drain(out_r, keep)
    proc: Any = None
    if fork_server is not None:
        try:
            proc = fork_server.start_run(spec, stdin_fd, out_w, status_w)
        except OSError as err:  # forkserver.ForkServerError: the server is gone; a new interpreter runs it
            log.warning("sandbox: the fork server could not run this worker, starting a new one: %s", err)
    spec_fd = _memfd(marshal.dumps(spec)) if proc is None else os.open(os.devnull, os.O_RDONLY)
    try:
        if proc is None:
            proc = subprocess.Popen(
                [sys.executable, "-I", "-S", HELPER_PATH, "_enter", str(spec_fd), str(status_w)],
                stdin=stdin_fd,
                stdout=out_w,
                stderr=out_w,
                pass_fds=(spec_fd, status_w),
                env={},
                cwd=spec["cwd"],
                start_new_session=True,
                close_fds=True,
            )
    except OSError as err:
        for fd in (out_r, status_r):
            os.close(fd)
        return _setup_failure(f"cannot start its helper: {err}", start)
    finally:
        for fd in (spec_fd, stdin_fd, status_w, out_w):
            os.close(fd)
    drain.start()
    timed_out = False
    stopped: list[str] = []
    clock = OwnClock(lambda: process_tree(proc.pid))
    watch_tree = functools.partial(watch, clock) if watch is not None else None
    try:
        timed_out = not _wait_exit(proc, start + limits.wall_s, watch_tree, stopped)
        wall = time.monotonic() - start
        _kill_everything(proc, cgroup)
        proc.wait()
    except BaseException:
        _kill_everything(proc, cgroup)
        proc.wait()
        raise
    finally:
        status = _read_all(status_r, deadline=time.monotonic() + 2.0)
        os.close(status_r)
        drain.finish(deadline=time.monotonic() + 5.0)
    lines = status.decode("utf-8", "replace").splitlines()
    if status_lines is not None:
        status_lines.extend(lines)
    tail = bytes(drain.buf[-keep:]).decode("utf-8", errors="replace")
    stats = cgroup.stats() if cgroup else {}
    if stopped:
        outcome = ProcessOutcome(None, signal.SIGKILL, True, wall, stopped[0], tail)
    else:
        outcome = _outcome(lines, proc.returncode, timed_out, wall, tail, limits, stats)
    return dataclasses.replace(outcome, forked=not isinstance(proc, subprocess.Popen))


def _wait_exit(
    proc: subprocess.Popen[bytes],
    deadline: float,
    watch: Callable[[], str | None] | None = None,
    stopped: list[str] | None = None,
) -> bool:
    """Wait until the helper has exited (left as a zombie, so its process group stays reserved) or the deadline
    passes, or `watch` returns a reason (appended to `stopped`). True when it exited."""
    try:
        pidfd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):
        pidfd = None
    if pidfd is not None:
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                ready = _readable(pidfd, min(left, 1.0))
                if ready:
                    return True
                if _watch_says_stop(watch, stopped):
                    return False
        finally:
            os.close(pidfd)
    last = time.monotonic()
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return True
        time.sleep(0.02)
        if time.monotonic() - last >= 1.0:
            last = time.monotonic()
            if _watch_says_stop(watch, stopped):
                return False
    return proc.poll() is not None


def _watch_says_stop(watch: Callable[[], str | None] | None, stopped: list[str] | None) -> bool:
    if watch is None:
        return False
    reason = watch()
    if reason and stopped is not None:
        stopped.append(reason)
    return bool(reason)


def _kill_everything(proc: subprocess.Popen, cgroup: _Cgroup | None) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    if cgroup:
        cgroup.kill()


def _readable(fd: int, timeout_s: float) -> bool:
    """poll, not select: select fails for descriptors above 1023, which a busy grader may have."""
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLHUP | select.POLLERR)
    return bool(poller.poll(max(0, int(timeout_s * 1000))))


def _read_all(fd: int, *, deadline: float) -> bytes:
    data = bytearray()
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return bytes(data)
        ready = _readable(fd, left)
        if not ready:
            return bytes(data)
        chunk = os.read(fd, 65536)
        if not chunk:
            return bytes(data)
        data += chunk
        if len(data) > 1 << 20:
            return bytes(data)


class _Drain(threading.Thread):
    """Reads a pipe to its end, keeping only the last `keep` bytes: printing a gigabyte costs no memory or disk."""

    def __init__(self, fd: int, keep: int):
        super().__init__(daemon=True, name="sandbox-output")
        self.fd, self.keep, self.buf = fd, keep, bytearray()
        self._stop_at: float | None = None

    def run(self) -> None:
        try:
            while True:
                if self._stop_at is not None and time.monotonic() > self._stop_at:
                    return
                ready = _readable(self.fd, 0.1)
                if not ready:
                    continue
                chunk = os.read(self.fd, 1 << 20)
                if not chunk:
                    return
                self.buf += chunk
                if len(self.buf) > 4 * self.keep + (1 << 20):
                    del self.buf[: -self.keep]
        except OSError:
            return

    def finish(self, *, deadline: float) -> None:
        """Wait for the end of the output; a writer that escaped every fence cannot hold us past `deadline`."""
        self._stop_at = deadline
        self.join()  # returns by the deadline (+ one select period): only then is the fd closed
        os.close(self.fd)


def _memfd(data: bytes) -> int:
    """A read-only file descriptor holding `data` (no file on disk)."""
    try:
        fd = os.memfd_create("sandbox", 0)
    except (AttributeError, OSError):
        import tempfile

        fd = os.dup(tempfile.TemporaryFile().fileno())
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        try:
            ro = os.open(f"/proc/self/fd/{fd}", os.O_RDONLY)
            os.close(fd)
            return ro
        except OSError:
            os.lseek(fd, 0, os.SEEK_SET)
            return fd
    except BaseException:
        os.close(fd)
        raise
