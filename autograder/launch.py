"""How a worker process starts: its command, its scrubbed environment, the code the sandbox must leave visible to
it, and the fork servers (sandbox/zygote.py) it may be forked from instead of starting a new interpreter, one per
backend and side of a grading (docs/isolation.md, "The fork server"). runner.py runs the workers."""

from __future__ import annotations

import atexit
import functools
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

from .runtime import worker_environment
from .sandbox import Limits
from .sandbox.forkserver import ForkServer, ForkServerError

logger = logging.getLogger(__name__)


def worker_env(scratch: Path, backend: str | None = None) -> dict[str, str]:
    """A scrubbed environment: nothing of the grader's leaks in, beyond what Python and Keras' backend need."""
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(scratch),
        "LANG": "C.UTF-8",
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "KERAS_HOME": str(scratch / ".keras"),
        "MPLBACKEND": "Agg",
        "TMPDIR": str(scratch),
    }
    for key in ("CUDA_VISIBLE_DEVICES", "TF_ENABLE_ONEDNN_OPTS"):
        if key in os.environ:
            env[key] = os.environ[key]
    if backend is not None:
        env.update(worker_environment(backend))
    return env


WORKER_FLAGS = ["-s", "-P"]  # no user site-packages, no working directory on sys.path
WORKER_MODULE = "autograder.worker"
PER_RUN_ENV = ("HOME", "KERAS_HOME", "TMPDIR")  # the worker's own folder: the one part of worker_env a run sets
FORK_SERVER_ENV = "AUTOGRADER_FORK_SERVER"  # "1" or "0": overrides course.yaml's worker.fork_server (tests, bench)
STUDENT, CLEAN = "student", "clean"  # the two sides of a grading, each with fork servers of its own


def worker_argv(*args: str) -> list[str]:
    return [sys.executable, *WORKER_FLAGS, "-m", WORKER_MODULE, *args]


def fork_server_wanted(limits: Limits) -> bool:
    """Whether workers are forked from a fork server: $AUTOGRADER_FORK_SERVER, else course.yaml's switch."""
    chosen = os.environ.get(FORK_SERVER_ENV, "").strip()
    if chosen in ("0", "1"):
        return chosen == "1"
    return bool(limits.fork_server)


class ForkServers:
    """The fork servers of this grader process (sandbox/zygote.py): one per backend, side (the student's workers;
    the clean workers that measure) and environment, started at the first worker that asks for it and kept for the
    rest of the batch, stopped by `close` (at the latest when the process exits). A server that cannot start is not
    tried again; its side's workers start as new interpreters, and `describe` says why."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._servers: dict[tuple, ForkServer] = {}
        self._folders: dict[tuple, str] = {}
        self._failed: dict[tuple, str] = {}

    def get(self, backend: str, side: str) -> ForkServer | None:
        from .sandbox import fences

        active = fences()
        if not (active.get("pid_namespace") and active.get("mount_namespace")):
            self._failed[("*",)] = "no pid and mount namespaces for its children here"
            return None
        env = worker_env(Path("/nonexistent"), backend)
        key = (backend, side, tuple(sorted((k, v) for k, v in env.items() if k not in PER_RUN_ENV)))
        with self._lock:
            server = self._servers.get(key)
            if server is not None and server.alive:
                return server
            if key in self._failed:
                return None
            folder = tempfile.mkdtemp(prefix=f"autograder-zygote-{side}-")
            try:
                server = ForkServer.start(worker_argv(), env=worker_env(Path(folder), backend), cwd=folder)
            except ForkServerError as err:
                logger.warning("no fork server for the %s workers on %s: %s", side, backend, err)
                self._failed[key] = str(err)[:300]
                shutil.rmtree(folder, ignore_errors=True)
                return None
            self._servers[key], self._folders[key] = server, folder
            return server

    def describe(self) -> dict[str, Any]:
        """For a results.json's environment: which servers run, and why any could not."""
        with self._lock:
            return {
                "running": sorted(f"{k[0]}/{k[1]}" for k, s in self._servers.items() if s.alive),
                "failed": {("/".join(map(str, k[:2]))): why for k, why in self._failed.items()},
            }

    def close(self) -> None:
        with self._lock:
            servers, folders = list(self._servers.values()), list(self._folders.values())
            self._servers, self._folders = {}, {}
        for server in servers:
            server.close()
        for folder in folders:
            shutil.rmtree(folder, ignore_errors=True)


fork_servers = ForkServers()
atexit.register(fork_servers.close)


def worker_start(forked: bool, limits: Limits) -> str:
    """How a grading's student worker started, for its results.json's environment."""
    if forked:
        return "forked from a fork server"
    if not fork_server_wanted(limits):
        return "a new interpreter"
    why = "; ".join(fork_servers.describe()["failed"].values()) or "the fork server did not take this run"
    return f"a new interpreter (no fork server: {why})"


def fork_server_for(limits: Limits, backend: str | None, side: str) -> ForkServer | None:
    """The server for a worker on `backend`, when the switch is on. None for a plan on no named backend: its worker
    may never import Keras, and a child of a server would carry Keras' memory into its address-space limit."""
    if backend is None or not fork_server_wanted(limits):
        return None
    return fork_servers.get(backend, side)


@functools.lru_cache(maxsize=1)
def worker_kit() -> tuple[Path, ...]:
    """The folder(s) the worker imports the kit from, which the sandbox must leave visible. Not always the
    grader's own copy: the worker gets no PYTHONPATH, so it imports the installed kit (an editable checkout, say)."""
    code = "import importlib.util as u; print(*u.find_spec('autograder').submodule_search_locations, sep='\\n')"
    try:
        found = subprocess.run(
            [sys.executable, *WORKER_FLAGS, "-c", code],
            env={"PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            timeout=60,
        )
    except (OSError, subprocess.SubprocessError):
        return ()
    return tuple(Path(line) for line in found.stdout.splitlines() if line.strip())
