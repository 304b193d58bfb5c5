"""Which fences work on this machine: `fences()` finds out once per process by running a real sandboxed child
that reports what it sees, and keeps the plan `run_limited` then asks every helper for; `describe_fences()` says
in words what is enforced, what is missing and what to do about it."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Mapping

from ..hardware import gpu_visible
from .cgroups import _Cgroup, _remove_stale_cgroups
from .gpu import GPU_MAX_PIDS
from .limits import Limits, _rlimits
from .loop import _run
from .paths import _runtime_paths

FENCE_NAMES = (
    "network_namespace",
    "mount_namespace",
    "read_only_root",
    "pid_namespace",
    "cgroup_memory",
    "cgroup_pids",
    "rlimits",
    "caps_dropped",
)

_FORCE_USER_NAMESPACE = False  # tests set this to run the non-root code path (a user namespace) as root
_FORCE_GPU_FENCES = False  # tests set this to run the GPU fence set on a machine without a GPU

_fence_lock = threading.Lock()
_fence_cache: dict[str, bool] | None = None
_fence_notes: dict[str, str] = {}
_plan_cache: dict | None = None  # what run_limited asks the helper to set up (from the probe)


def fences() -> dict[str, bool]:
    """Which fences are active on this machine (probed once with a real sandboxed child, then cached)."""
    global _fence_cache
    with _fence_lock:
        if _fence_cache is None:
            _fence_cache = _probe()
        return dict(_fence_cache)


def gpu_fences(env: Mapping[str, str]) -> bool:
    """Whether a child started with `env` gets the GPU fence set (gpu.py): when it can see a GPU (hardware.py)."""
    return _FORCE_GPU_FENCES or gpu_visible(env)


def describe_fences() -> str:
    """One paragraph for the grader's start-up: what is enforced, and what is missing with what to do instead."""
    active = fences()
    on = [_FENCE_TEXT[name][0] for name in FENCE_NAMES if active.get(name)]
    off = [name for name in FENCE_NAMES if not active.get(name)]
    text = "Student code runs in a child process with a wall-clock limit that kills its whole process group"
    if on:
        text += ", " + ", ".join(on)
    text += "."
    if gpu_fences(os.environ):
        text += (
            " A GPU is visible, so workers get the GPU fence set: the GPU's device files, a /proc in which they "
            "can name their own threads (its /proc/sys, /proc/driver and the like read-only), at least "
            f"{GPU_MAX_PIDS} processes and threads, and no address-space limit (it breaks CUDA); memory is bounded by "
            "the memory cgroup" + ("" if active.get("cgroup_memory") else " only, which is MISSING here") + "."
        )
    if not off:
        return text + " All fences are active."
    missing = []
    for name in off:
        note = _fence_notes.get(name)
        missing.append(f"{_FENCE_TEXT[name][1]}" + (f" [{note}]" if note else ""))
    text += " MISSING: " + " ".join(missing)
    text += (
        " To get every fence, run the grader as root on Linux (cgroups and namespaces need it), or inside a "
        "container that allows them (e.g. `docker run --privileged` or a rootless Podman with cgroups v2 "
        "delegation), or on a machine with unprivileged user namespaces enabled "
        "(sysctl kernel.unprivileged_userns_clone=1 / user.max_user_namespaces > 0) for the namespace "
        "fences; bubblewrap (`bwrap --unshare-all --ro-bind / / ...`) gives the same namespaces without root."
    )
    return text


_FENCE_TEXT = {
    "network_namespace": (
        "no network at all (an empty network namespace, loopback included)",
        "No network namespace: student code can open network connections, including to "
        "services on this machine's loopback.",
    ),
    "mount_namespace": (
        "a private mount namespace with hidden paths covered by empty tmpfs mounts",
        "No mount namespace: hidden paths (reference weights, solutions, other submissions) are "
        "readable by student code, and /tmp is shared.",
    ),
    "read_only_root": (
        "a read-only view of the machine except its scratch directory and private /tmp",
        "No read-only root: student code can write wherever the grader's user can, e.g. into "
        "the virtual environment that later gradings import.",
    ),
    "pid_namespace": (
        "a private pid namespace (it cannot see or signal other processes; when its main process "
        "ends, everything it started ends)",
        "No pid namespace: student code can see the grader's processes and signal those of the "
        "same user; processes it starts outside its process group may outlive it.",
    ),
    "cgroup_memory": (
        "a memory cgroup limit",
        "No memory cgroup: memory is bounded only by the address-space rlimit per process "
        "(none at all when a GPU is visible).",
    ),
    "cgroup_pids": (
        "a pids cgroup limit (fork bombs stop at the limit)",
        "No pids cgroup: a fork bomb is bounded by RLIMIT_NPROC when the grader is not root (it "
        "counts all of the user's processes and threads, set to their number at the start plus "
        "max_pids), and only by the wall-clock limit when it is root.",
    ),
    "rlimits": ("rlimits (CPU seconds, file size, no core dumps, address space without a GPU)", "No rlimits."),
    "caps_dropped": (
        "no capabilities and no_new_privs (root inside cannot undo these fences)",
        "Capabilities not dropped: a root child could undo the mount fences.",
    ),
}


# --------------------------------------------------------------------------------------------------------------
# The probe behind fences()

_PROBE_CHILD = r"""
import json, os, socket
status = dict(line.split(":", 1) for line in open("/proc/self/status") if ":" in line)
caps = {k: int(status.get(k, "0").strip(), 16) for k in ("CapEff", "CapPrm", "CapBnd")}
nnp = status.get("NoNewPrivs", "0").strip() == "1"
def writable(directory):
    path = os.path.join(directory, ".sandbox-probe-%d" % os.getpid())
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except OSError:
        return False
    os.unlink(path)
    return True
try:
    links = [name for _, name in socket.if_nameindex()]
except OSError:
    links = ["?"]
print(json.dumps({"caps": caps, "nnp": nnp, "root_writable": writable("/"), "cwd_writable": writable("."),
                  "links": links, "pid": os.getpid()}))
"""


def _probe() -> dict[str, bool]:
    global _plan_cache
    import tempfile

    _fence_notes.clear()
    root = os.geteuid() == 0
    result = {name: False for name in FENCE_NAMES}
    result["rlimits"] = True
    plan: dict = {"ns": {}, "mounts": False, "newproc": False}
    if sys.platform != "linux":
        _fence_notes["mount_namespace"] = "not Linux"
        _plan_cache = plan
        return result

    try:
        _remove_stale_cgroups()
    except OSError:
        pass
    for controller in ("memory", "pids"):
        try:
            _Cgroup.create(Limits(), memory=controller == "memory", pids=controller == "pids").remove()
            result[f"cgroup_{controller}"] = True
            plan[f"cgroup_{controller}"] = True
        except OSError as err:
            _fence_notes[f"cgroup_{controller}"] = str(err)

    want_ns = {"user": not root or _FORCE_USER_NAMESPACE, "mount": True, "pid": True, "net": True, "ipc": True}
    cgroup = None
    try:
        cgroup = (
            _Cgroup.create(Limits(), memory=plan.get("cgroup_memory", False), pids=plan.get("cgroup_pids", False))
            if (plan.get("cgroup_memory") or plan.get("cgroup_pids"))
            else None
        )
    except OSError:
        cgroup = None
    lines: list[str] = []
    with tempfile.TemporaryDirectory(prefix="sandbox-probe-") as scratch:
        limits = Limits(wall_s=30, cpu_s=30)
        spec = {
            "parent": os.getpid(),
            "strict": False,
            "ns": want_ns,
            "mounts": True,
            "newproc": True,
            "argv": [sys.executable, "-I", "-S", "-c", _PROBE_CHILD],
            "env": {"PATH": os.defpath},
            "cwd": os.path.realpath(scratch),
            "writable": [],
            "hide": [],
            "sockets": [],
            "gpu_devices": [],
            "runtime": _runtime_paths(),
            "tmpfs_mb": 16,
            "rlimits": _rlimits(limits, gpu_visible(os.environ), {}),
            "drop_caps": True,
            "cgroup_procs": cgroup.procs_files() if cgroup else [],
        }
        try:
            outcome = _run(spec, limits, cgroup, None, time.monotonic(), status_lines=lines)
        finally:
            if cgroup:
                cgroup.remove()
    got = {}
    for line in lines:
        parts = line.split(" ", 3)
        if parts[0] == "fence" and len(parts) >= 3:
            got[parts[1]] = parts[2] == "1"
            if parts[2] != "1" and len(parts) == 4:
                _fence_notes.setdefault(
                    {
                        "net": "network_namespace",
                        "mount": "mount_namespace",
                        "pid": "pid_namespace",
                        "mounts": "mount_namespace",
                        "newproc": "pid_namespace",
                        "caps": "caps_dropped",
                        "user": "mount_namespace",
                    }.get(parts[1], parts[1]),
                    parts[3],
                )
    report = None
    for text_line in outcome.output_tail.splitlines():
        if text_line.startswith("{"):
            try:
                report = json.loads(text_line)
            except ValueError:
                pass
    if report is None or outcome.returncode != 0:
        _fence_notes.setdefault(
            "mount_namespace", "the probe child failed: " + (outcome.reason or "") + " " + outcome.output_tail[-300:]
        )
        _plan_cache = plan
        return result
    ns_ok = {k: got.get(k, False) for k in want_ns if want_ns[k]}
    plan["ns"] = {k: v for k, v in ns_ok.items()}
    plan["mounts"] = got.get("mounts", False)
    plan["newproc"] = got.get("newproc", False)
    caps = report["caps"]
    result["network_namespace"] = ns_ok.get("net", False) and report["links"] in ([], ["lo"])
    result["mount_namespace"] = plan["mounts"]
    result["read_only_root"] = plan["mounts"] and not report["root_writable"] and report["cwd_writable"]
    result["pid_namespace"] = ns_ok.get("pid", False) and plan["newproc"] and report["pid"] <= 3
    result["caps_dropped"] = (
        caps["CapEff"] == 0
        and caps["CapPrm"] == 0
        and report["nnp"]
        and (caps["CapBnd"] == 0 or not (root or ns_ok.get("user")))
    )
    if not result["read_only_root"] and "read_only_root" not in _fence_notes:
        _fence_notes["read_only_root"] = "needs the mount namespace"
    # RLIMIT_NPROC never binds root (uid 0 of the first user namespace); it does bind any other user, inside a
    # user namespace too (measured: a non-root grader's child stopped at the limit)
    plan["nproc_binds"] = not root
    _plan_cache = plan
    return result
