"""`run_limited`: one command in the fences that work here (the public entry of the sandbox)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from ..hardware import gpu_device_paths, gpu_visible
from ..owntime import OwnClock
from . import probe
from .cgroups import _Cgroup
from .limits import Limits, _rlimits
from .loop import _run
from .outcome import ProcessOutcome, _setup_failure
from .paths import _runtime_paths, _unix_socket_paths


def run_limited(
    argv: list[str],
    *,
    cwd: Path,
    env: dict[str, str],
    limits: Limits,
    hide: Sequence[Path] = (),
    writable: Sequence[Path] = (),
    readable: Sequence[Path] = (),
    stdin_data: bytes | None = None,
    watch: Callable[[OwnClock], str | None] | None = None,
) -> ProcessOutcome:
    """Run `argv` in `cwd` (a scratch directory it may write) with exactly `env`, inside the fences that work
    here, and return how it ended. Never raises because of what the child does. `readable`: folders the command
    reads that may lie under /tmp (which the child sees as a private, empty tmpfs), such as the code it imports;
    the interpreter's own are added. `watch`, when given, is called about once a second while the child runs, with
    the own-time clock of the child's process tree (owntime.OwnClock); a sentence from it ends the run at once
    (killed, `timed_out`, with that sentence as the reason): the caller's own deadlines, e.g. per item of a plan."""
    probe.fences()
    plan = dict(probe._plan_cache or {})  # read at each run: tests replace it
    argv = [os.fspath(a) for a in argv]
    if not argv:
        raise ValueError("run_limited needs a command")
    cwd_s = os.path.realpath(cwd)
    if not os.path.isdir(cwd_s):
        raise ValueError(f"the sandbox's working directory {cwd} does not exist")
    writable_s = []
    for path in writable:
        real = os.path.realpath(path)
        if not os.path.exists(real):
            raise ValueError(f"the sandbox's writable path {path} does not exist")
        writable_s.append(real)
    hide_s = sorted({os.path.realpath(p) for p in hide})
    gpu = gpu_visible(env)

    cgroup = None
    start = time.monotonic()
    setup_error = None
    if plan.get("cgroup_memory") or plan.get("cgroup_pids"):
        try:
            cgroup = _Cgroup.create(
                limits, memory=plan.get("cgroup_memory", False), pids=plan.get("cgroup_pids", False), headroom=not gpu
            )
        except OSError as err:
            setup_error = f"cannot create its cgroup: {err}"
    if setup_error:
        return _setup_failure(setup_error, start)

    spec = {
        "parent": os.getpid(),
        "strict": True,
        "ns": plan.get("ns", {}),
        "mounts": plan.get("mounts", False),
        "newproc": plan.get("newproc", False),
        "argv": argv,
        "env": {str(k): str(v) for k, v in env.items()},
        "cwd": cwd_s,
        "writable": writable_s,
        "hide": hide_s,
        "sockets": _unix_socket_paths(),
        "runtime": _runtime_paths([os.fspath(p) for p in readable]),
        "gpu_devices": gpu_device_paths() if gpu else [],
        "tmpfs_mb": max(16, limits.memory_mb),
        "rlimits": _rlimits(limits, gpu, plan),
        "drop_caps": True,
        "cgroup_procs": cgroup.procs_files() if cgroup else [],
    }
    try:
        return _run(spec, limits, cgroup, stdin_data, start, watch=watch)
    finally:
        if cgroup:
            cgroup.remove()
