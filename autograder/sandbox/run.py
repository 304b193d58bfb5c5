"""`run_limited`: one command in the fences that work here (the public entry of the sandbox)."""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from ..hardware import gpu_device_paths
from ..owntime import OwnClock
from . import forkserver, probe
from .cgroups import _Cgroup
from .gpu import DRIVER_SYS_PATHS, GPU_MAX_PIDS, PROC_MASKED, PROC_READ_ONLY, FenceSet
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
    fence_set: FenceSet | None = None,
    fork_server: forkserver.ForkServer | None = None,
) -> ProcessOutcome:
    """Run `argv` in `cwd` (a scratch directory it may write) with exactly `env`, inside the fences that work
    here, and return how it ended. Never raises because of what the child does. `readable`: folders the command
    reads that may lie under /tmp (which the child sees as a private, empty tmpfs), such as the code it imports;
    the interpreter's own are added. `watch`, when given, is called about once a second while the child runs, with
    the own-time clock of the child's process tree (owntime.OwnClock); a sentence from it ends the run at once
    (killed, `timed_out`, with that sentence as the reason): the caller's own deadlines, e.g. per item of a plan.
    `fence_set`: the fences to set up (gpu.FenceSet); default: the GPU set when `env` lets the child see a GPU
    (`probe.gpu_fences`), else the CPU set. `fork_server`: a server for `argv`'s interpreter and module
    (forkserver.py) that forks the child instead, in the same fences, where it can (`forkserver.usable`); the
    outcome's `forked` says whether it did."""
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
    fs = fence_set if fence_set is not None else FenceSet(gpu=probe.gpu_fences(env))
    if fs.opens("gpu_pids"):
        limits = replace(limits, max_pids=max(limits.max_pids, GPU_MAX_PIDS))
    no_address_limit = fs.opens("address_space")
    memory = plan.get("cgroup_memory", False) and not fs.lifts("cgroup_memory")
    pids = plan.get("cgroup_pids", False) and not fs.lifts("cgroup_pids")

    cgroup = None
    start = time.monotonic()
    setup_error = None
    if memory or pids:
        try:
            cgroup = _Cgroup.create(limits, memory=memory, pids=pids, headroom=not no_address_limit)
        except OSError as err:
            setup_error = f"cannot create its cgroup: {err}"
    if setup_error:
        return _setup_failure(setup_error, start)

    spec = {
        "parent": os.getpid(),
        "strict": True,
        "ns": _namespaces(plan.get("ns", {}), fs),
        "mounts": plan.get("mounts", False) and not fs.lifts("mount_namespace"),
        "newproc": plan.get("newproc", False) and not fs.lifts("pid_namespace"),
        "argv": argv,
        "env": {str(k): str(v) for k, v in env.items()},
        "cwd": cwd_s,
        "writable": writable_s,
        "hide": sorted({*hide_s, *(_existing(DRIVER_SYS_PATHS) if fs.gpu and not fs.opens("driver_sys") else ())}),
        "sockets": [] if fs.lifts("hidden_run") else _unix_socket_paths(),
        "hide_run": not fs.lifts("hidden_run"),
        "runtime": _runtime_paths([os.fspath(p) for p in readable]),
        "gpu_devices": _gpu_devices(fs),
        "ro_root": not fs.lifts("read_only_root"),
        "private_dev": not fs.lifts("private_dev"),
        "proc_rw": fs.opens("proc_writable"),
        "proc_read_only": [] if fs.lifts("proc_read_only_parts") else list(PROC_READ_ONLY),
        "proc_masked": [] if fs.lifts("proc_read_only_parts") else list(PROC_MASKED),
        "tmpfs_mb": max(16, limits.memory_mb),
        "rlimits": _rlimits_of(limits, no_address_limit, plan, fs),
        "drop_caps": not fs.lifts("caps_dropped"),
        "cgroup_procs": cgroup.procs_files() if cgroup else [],
    }
    server = None
    if fork_server is not None and fork_server.alive and fork_server.serves(argv) and forkserver.usable(spec):
        server = fork_server
        spec["worker_args"] = argv[len(server.prefix) :]
    try:
        return _run(spec, limits, cgroup, stdin_data, start, watch=watch, fork_server=server)
    finally:
        if cgroup:
            cgroup.remove()


_NAMESPACE_FENCES = {
    "user": "user_namespace",
    "mount": "mount_namespace",
    "pid": "pid_namespace",
    "net": "network_namespace",
    "ipc": "ipc_namespace",
}


def _namespaces(probed: dict[str, bool], fs: FenceSet) -> dict[str, bool]:
    """The namespaces the probe found working, less those `fs` lifts."""
    return {ns: on and not fs.lifts(_NAMESPACE_FENCES[ns]) for ns, on in probed.items()}


def _gpu_devices(fs: FenceSet) -> list[str]:
    """Every GPU device file there is (NVIDIA's nvidiactl, nvidiaN, nvidia-uvm, nvidia-uvm-tools, nvidia-modeset
    and the nvidia-caps folder; AMD's kfd and dri), in the GPU set only."""
    if not fs.gpu:
        return []
    return [p for p in gpu_device_paths() if fs.opens("uvm_tools") or p != "/dev/nvidia-uvm-tools"]


def _rlimits_of(limits: Limits, no_address_limit: bool, plan: dict, fs: FenceSet) -> list[list[int]]:
    if not fs.lifts("rlimits"):
        return _rlimits(limits, no_address_limit, plan)
    # lifted for a bisection: only RLIMIT_NPROC, the fork-bomb fence of a grader with no pids cgroup, stays
    return [r for r in _rlimits(limits, no_address_limit, plan) if r[0] == resource.RLIMIT_NPROC]


def _existing(paths: Sequence[str]) -> list[str]:
    return [p for p in paths if os.path.lexists(p)]
