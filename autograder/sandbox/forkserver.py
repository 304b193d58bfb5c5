"""The grader's side of a fork server (zygote.py): start one, hand it a run, get the run's process back as a handle
that loop.py waits for and kills like the helper's process, and stop it.

A `ForkServer` serves one kind of worker: the interpreter command `prefix` (`python -s -P -m autograder.worker`)
with one environment (the backend's, less the per-run folders). `run_limited(argv, fork_server=...)` uses it for an
argv that starts with `prefix`, where the probe found the namespaces that keep a child away from the server and from
its siblings (`usable`); else, or when the server is gone, the run starts a new interpreter as before.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence

from . import zygote
from .loop import _Drain, _readable

log = logging.getLogger(__name__)

READY_S = 180.0  # importing Keras on a loaded machine
OUTPUT_KB = 64  # the server's own output (import warnings) kept for a failure's message


class ForkServerError(OSError):
    """The fork server could not start, or stopped answering: runs go back to new interpreters."""


class ForkServer:
    def __init__(self, proc: subprocess.Popen, sock: socket.socket, drain: _Drain, prefix: list[str]):
        self.proc, self.sock, self.drain, self.prefix = proc, sock, drain, prefix
        self.pid = proc.pid
        self.threads = 0
        self._lock = threading.Lock()
        self._closed = False

    @classmethod
    def start(cls, prefix: Sequence[str], *, env: dict[str, str], cwd: str, ready_s: float = READY_S) -> ForkServer:
        """Start a server that runs `prefix`'s interpreter with `env` in the empty folder `cwd`, and wait until it
        has imported Keras. Raises ForkServerError (with the server's last output) when it does not get there."""
        prefix = [os.fspath(a) for a in prefix]
        if "-m" not in prefix or prefix.index("-m") != len(prefix) - 2:
            raise ValueError(f"a fork server runs `python ... -m MODULE`, not {prefix}")
        if prefix[-1] != "autograder.worker":
            raise ValueError("a fork server runs the worker only")
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        out_r, out_w = os.pipe()
        drain = _Drain(out_r, OUTPUT_KB * 1024)
        try:
            proc = subprocess.Popen(
                [*prefix[:-2], "-m", "autograder.sandbox.zygote", str(theirs.fileno())],
                stdin=subprocess.DEVNULL,
                stdout=out_w,
                stderr=out_w,
                pass_fds=(theirs.fileno(),),
                env=env,
                cwd=cwd,
                start_new_session=True,
                close_fds=True,
            )
        except OSError as err:
            ours.close()
            os.close(out_r)
            raise ForkServerError(f"cannot start the fork server: {err}") from None
        finally:
            theirs.close()
            os.close(out_w)
        drain.start()
        server = cls(proc, ours, drain, prefix)
        try:
            message = server._wait_ready(time.monotonic() + ready_s)
        except BaseException:
            server.close()
            raise
        server.threads = int(message.get("threads", 0))
        return server

    def _wait_ready(self, deadline: float) -> dict:
        while time.monotonic() < deadline:
            if _readable(self.sock.fileno(), 0.5):
                message, fds = zygote.receive(self.sock)
                for fd in fds:
                    os.close(fd)
                if message is None:
                    break
                if message.get("ready") != self.pid:
                    raise ForkServerError(f"the fork server said {message!r} instead of ready")
                if message.get("shared"):
                    raise ForkServerError(
                        "the fork server maps memory its children could share for writing: "
                        + "; ".join(message["shared"])[:500]
                    )
                return message
            if self.proc.poll() is not None:
                break
        raise ForkServerError(f"the fork server did not get ready: {self.output()[-1500:]}")

    def output(self) -> str:
        return bytes(self.drain.buf).decode("utf-8", "replace")

    @property
    def alive(self) -> bool:
        return not self._closed and self.proc.poll() is None

    def serves(self, argv: Sequence[str]) -> bool:
        """Whether `argv` is this server's command with arguments of its own after it."""
        return list(argv[: len(self.prefix)]) == self.prefix

    def start_run(self, spec: dict, stdin_fd: int, out_fd: int, status_fd: int) -> ForkedRun:
        """Fork a child for `spec` (run_limited's, with `worker_args`); the three descriptors are passed on and
        stay the caller's to close. Raises ForkServerError when the server cannot."""
        reply = self._ask({"run": spec}, [stdin_fd, out_fd, status_fd])
        if not isinstance(reply.get("pid"), int):
            raise ForkServerError(f"the fork server could not fork: {reply.get('error', reply)!r}")
        return ForkedRun(self, reply["pid"])

    def reap(self, pid: int) -> int:
        """The wait status of the child `pid`, once it has ended (the grader has killed it): the server reaps it."""
        reply = self._ask({"reap": pid})
        if not isinstance(reply.get("status"), int):
            raise ForkServerError(f"the fork server could not reap {pid}: {reply.get('error', reply)!r}")
        return reply["status"]

    def _ask(self, message: dict, fds: list[int] | None = None) -> dict:
        with self._lock:
            if not self.alive:
                raise ForkServerError("the fork server is not running")
            try:
                zygote.send(self.sock, message, fds or [])
                reply, got = zygote.receive(self.sock)
            except OSError as err:
                self._broken()
                raise ForkServerError(f"the fork server stopped answering: {err}") from None
            for fd in got:
                os.close(fd)
            if reply is None:
                self._broken()
                raise ForkServerError(f"the fork server ended: {self.output()[-500:]}")
            return reply

    def _broken(self) -> None:
        log.warning("fork server %s stopped: %s", self.pid, self.output()[-500:])
        self._closed = True

    def close(self) -> None:
        """Stop the server: the end of its socket ends it; its children die with it (PDEATHSIG)."""
        with self._lock:
            self._closed = True
            try:
                self.sock.close()
            except OSError:
                pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except OSError:
                pass
            self.proc.wait()
        self.drain.finish(deadline=time.monotonic() + 1.0)


class ForkedRun:
    """A run's first process (H) forked by a server: what loop.py needs of a `subprocess.Popen`. Its pid stays
    reserved (unreaped by the server) until `wait`, so signalling it or its process group never hits another."""

    def __init__(self, server: ForkServer, pid: int):
        self.server, self.pid = server, pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        """None while the child runs; once it has ended, its status when `wait` has read it, else 0 (it is not
        reaped here: its pid must stay reserved until the grader has killed its process group)."""
        if self.returncode is not None:
            return self.returncode
        try:
            pidfd = os.pidfd_open(self.pid)
        except OSError:
            return None
        try:
            return 0 if _readable(pidfd, 0) else None
        finally:
            os.close(pidfd)

    def wait(self) -> int:
        if self.returncode is None:
            try:
                status = self.server.reap(self.pid)
                self.returncode = os.waitstatus_to_exitcode(status)
            except ForkServerError:
                self.returncode = -signal.SIGKILL  # the server is gone, and with it this child (PDEATHSIG)
        return self.returncode


def usable(spec: dict) -> bool:
    """Whether a child forked by a server would be as far from it as the helper's B is from the grader: its own
    mount and pid namespaces with a fresh /proc (the server and siblings unseen, unsignalled, unreadable)."""
    ns = spec.get("ns", {})
    return bool(
        sys.platform == "linux" and ns.get("pid") and ns.get("mount") and spec.get("mounts") and spec.get("newproc")
    )
