"""Run one command in a limited child process: the fences around student code.

`run_limited(argv, cwd=..., env=..., limits=...)` starts this file as a small helper (`python -I -S sandbox.py
_enter ...`) that sets the fences up and then execs `argv`:

    grader --Popen(start_new_session)--> helper H
        H: joins the run's cgroups (pids, memory), unshares the mount, pid, network and IPC namespaces
           (plus a user namespace when not root), forks
        A: pid 1 of the new pid namespace: mounts a read-only view of the machine (tmpfs over hidden paths,
           private /tmp, /dev and /proc, read-write binds of cwd and `writable`, read-only binds of Python and
           the kit when they lie under /tmp), forks, reaps, reports
        B: sets rlimits, drops every capability, sets no_new_privs, execs argv

The grader kills the process group, the cgroup and (through A's death) the whole pid namespace at the wall-clock
limit, reads the exit status from a pipe, keeps the tail of stdout+stderr from another pipe, and removes the
cgroups. Where a fence is not available (not root, no user namespaces, no cgroups) the run goes ahead with the
fences that work; `fences()` says which those are and `describe_fences()` says what is missing and what to do.
A fence that `fences()` found working but that fails during a later run makes that run fail closed: the
student code is not started.

Layout: the helper side comes first and imports only cheap built-in modules; when this file runs as the helper
it stops at the `_enter` guard, before the grader side's imports (dataclasses, subprocess, logging...), which
would add ~40 ms to every run. The public API (Limits, Outcome, fences, describe_fences, run_limited) follows.
"""


from __future__ import annotations

import ctypes
import marshal
import os
import resource
import sys

try:
    import _signal as signal    # the C module: `signal` would import enum (and re), ~10 ms per run
except ImportError:             # pragma: no cover
    import signal

# --------------------------------------------------------------------------------------------------------------
# Constants shared by the grader side and the helper side

CLONE_NEWNS = 0x00020000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_NOATIME, MS_NODIRATIME, MS_BIND, MS_REC = 32, 1024, 2048, 4096, 16384
MS_PRIVATE, MS_RELATIME, MS_STRICTATIME = 1 << 18, 1 << 21, 1 << 24

PR_SET_PDEATHSIG, PR_CAPBSET_DROP, PR_SET_SECUREBITS = 1, 24, 28
PR_SET_NO_NEW_PRIVS, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 38, 47, 4
# SECBIT_NOROOT, NO_SETUID_FIXUP, KEEP_CAPS_LOCKED, NO_CAP_AMBIENT_RAISE and their locks
SECUREBITS_LOCKED_DOWN = 0x01 | 0x02 | 0x04 | 0x08 | 0x20 | 0x40 | 0x80

HELPER_PROCS = 2           # the helper and the namespace's init are in the run's pids cgroup too
CGROUP_PREFIX = "autograder-sb-"
DEV_NODES = ("null", "zero", "full", "random", "urandom")
SETUP_FAILED = 125

FENCE_NAMES = ("network_namespace", "mount_namespace", "read_only_root", "pid_namespace", "cgroup_memory",
               "cgroup_pids", "rlimits", "caps_dropped")


# ==============================================================================================================
# Helper side: runs as `python -I -S sandbox.py _enter SPEC_FD STATUS_FD`, cheap built-in modules only

_libc = None


def _c():
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    return _libc


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _prctl(option: int, arg2: int = 0) -> int:
    return _c().prctl(ctypes.c_int(option), ctypes.c_ulong(arg2), ctypes.c_ulong(0), ctypes.c_ulong(0),
                      ctypes.c_ulong(0))


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    enc = (lambda s: None if s is None else s.encode())
    _check(_c().mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)),
           f"mount {target}")


class _Status:
    def __init__(self, fd: int, strict: bool):
        self.fd, self.strict = fd, strict

    def say(self, line: str) -> None:
        try:
            os.write(self.fd, (line.replace("\n", " ")[:3000] + "\n").encode("utf-8", "replace"))
        except OSError:
            pass

    def fence(self, name: str, ok: bool, detail: str = "") -> None:
        if not ok and self.strict:
            self.fail(f"{name}: {detail}")
        self.say(f"fence {name} {int(ok)} {detail}".rstrip())

    def fail(self, message: str) -> None:
        self.say(f"error {message}")
        os._exit(SETUP_FAILED)


def _helper_main(args: list[str]) -> None:
    spec_fd, status_fd = int(args[0]), int(args[1])
    with os.fdopen(spec_fd, "rb") as fh:
        spec = marshal.loads(fh.read())
    os.set_inheritable(status_fd, False)
    st = _Status(status_fd, spec["strict"])
    try:
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != spec["parent"]:
            os._exit(SETUP_FAILED)
        for path in spec["cgroup_procs"]:
            try:
                with open(path, "w") as fh:
                    fh.write(str(os.getpid()))
            except OSError as err:
                st.fail(f"cannot join cgroup {path}: {err}")
        got = _unshare(spec, st)
    except BaseException as err:     # a bug here must not run the student code unfenced
        st.fail(f"helper: {type(err).__name__}: {err}")
    pid = os.fork()
    if pid == 0:
        try:
            _init(spec, st, got)
        except BaseException as err:
            st.fail(f"init: {type(err).__name__}: {err}")
        os._exit(SETUP_FAILED)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        st.say(f"initsignal {os.WTERMSIG(status)}")
    os._exit(0)


def _unshare(spec: dict, st: _Status) -> dict[str, bool]:
    want = spec["ns"]
    got = {}
    uid, gid = os.geteuid(), os.getegid()
    if want.get("user"):
        try:
            _check(_c().unshare(ctypes.c_int(CLONE_NEWUSER)), "unshare(CLONE_NEWUSER)")
            for name, text in (("setgroups", "deny"), ("uid_map", f"0 {uid} 1"), ("gid_map", f"0 {gid} 1")):
                with open(f"/proc/self/{name}", "w") as fh:
                    fh.write(text)
            got["user"] = True
            st.fence("user", True)
        except OSError as err:
            got["user"] = False
            st.fence("user", False, str(err))
    for name, flag in (("mount", CLONE_NEWNS), ("pid", CLONE_NEWPID), ("net", CLONE_NEWNET),
                       ("ipc", CLONE_NEWIPC)):
        if not want.get(name):
            continue
        try:
            _check(_c().unshare(ctypes.c_int(flag)), f"unshare({name})")
            got[name] = True
            st.fence(name, True)
        except OSError as err:
            got[name] = False
            st.fence(name, False, str(err))
    return got


def _init(spec: dict, st: _Status, got: dict) -> None:
    """Process A: pid 1 of the new pid namespace (when there is one)."""
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if spec["mounts"] and got.get("mount"):
        try:
            newproc = _setup_mounts(spec, got.get("pid", False) and spec["newproc"], st)
            st.fence("mounts", True)
            st.fence("newproc", newproc, "" if newproc else "no pid namespace")
        except OSError as err:
            st.fence("mounts", False, str(err))
    elif spec["mounts"]:
        st.fence("mounts", False, "no mount namespace")
    child = os.fork()
    if child == 0:
        _exec_student(spec, st)
    while True:
        try:
            pid, status, usage = os.wait4(-1, 0)
        except ChildProcessError:
            os._exit(0)
        if pid == child:
            break
    report = [f"exit {os.WEXITSTATUS(status)}" if os.WIFEXITED(status) else f"signal {os.WTERMSIG(status)}",
              f"cpu {usage.ru_utime + usage.ru_stime:.3f}", f"maxrss {usage.ru_maxrss}"]
    for line in report:
        st.say(line)
    os._exit(0)


def _unescape(text: str) -> str:
    """Undo the octal escapes of /proc/self/mountinfo."""
    return (text.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n")
            .replace("\\134", "\\"))


def _mountinfo() -> list[tuple[str, set[str]]]:
    out = []
    with open("/proc/self/mountinfo") as fh:
        for line in fh:
            fields = line.partition(" - ")[0].split()
            if len(fields) >= 6:
                out.append((_unescape(fields[4]), set(fields[5].split(","))))
    return out


def _remount_flags(options: set[str]) -> int:
    flags = 0
    for name, flag in (("nosuid", MS_NOSUID), ("nodev", MS_NODEV), ("noexec", MS_NOEXEC),
                       ("nodiratime", MS_NODIRATIME)):
        if name in options:
            flags |= flag
    if "noatime" in options:
        flags |= MS_NOATIME
    elif "relatime" in options:
        flags |= MS_RELATIME
    else:
        flags |= MS_STRICTATIME
    return flags


def _options_of(path: str) -> set[str]:
    """The per-mount options of the topmost mount at `path` (a remount must keep the ones it cannot change)."""
    options: set[str] = set()
    for mountpoint, opts in _mountinfo():
        if mountpoint == path:
            options = opts
    return options


def _make_readonly(path: str, options: set[str] | None = None) -> None:
    options = _options_of(path) if options is None else options
    _mount(None, path, None, MS_REMOUNT | MS_BIND | MS_RDONLY | _remount_flags(options))


def _setup_mounts(spec: dict, newproc: bool, st: _Status) -> bool:
    """In the new mount namespace: everything read-only, then private /dev, /proc, /tmp, hidden paths covered,
    cwd and `writable` bound read-write. Returns whether a fresh /proc was mounted."""
    # file descriptors of what is bound back later, opened while the original view is still there
    keep: dict[str, int] = {}
    for path in [spec["cwd"], *spec["writable"]]:
        keep[path] = os.open(path, os.O_PATH | os.O_CLOEXEC)
    runtime = {path: os.open(path, os.O_PATH | os.O_CLOEXEC) for path in spec.get("runtime", [])}
    devices: dict[str, int] = {}
    for path in [f"/dev/{n}" for n in DEV_NODES] + spec["gpu_devices"]:
        try:
            devices[path] = os.open(path, os.O_PATH | os.O_CLOEXEC)
        except OSError:
            pass

    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    for path, options in _mountinfo():
        if "ro" in options:
            continue
        try:
            _make_readonly(path, options)
        except FileNotFoundError:
            continue           # shadowed or unreachable
    # check: the topmost mount at each mount point must now be read-only
    top: dict[str, set[str]] = {}
    for path, options in _mountinfo():
        top[path] = options
    for path, options in top.items():
        if "ro" not in options and os.path.exists(path):
            raise OSError(f"{path} is still writable after the read-only remount")

    made_proc = False
    if newproc:
        try:
            _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY)
            made_proc = True
        except OSError as err:
            st.say(f"warn fresh /proc: {err}")
            if st.strict:
                raise

    def fd_path(fd: int) -> str:
        return f"/proc/self/fd/{fd}"

    # a minimal /dev: no disks, only the harmless character devices (and GPUs when asked)
    _mount("tmpfs", "/dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=755,size=1m")
    for path, fd in devices.items():
        if os.path.isdir(fd_path(fd)):
            os.makedirs(path, exist_ok=True)
            _mount(fd_path(fd), path, None, MS_BIND | MS_REC)
        else:
            open(path, "w").close()
            _mount(fd_path(fd), path, None, MS_BIND)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
                         ("stderr", "/proc/self/fd/2")):
        os.symlink(target, f"/dev/{name}")
    tmp_size = f"size={int(spec['tmpfs_mb'])}m"
    os.mkdir("/dev/shm")
    _mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, f"mode=1777,{tmp_size}")
    _mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, f"mode=1777,{tmp_size}")
    # Python and the kit where the private /tmp just covered them (a virtual environment under /tmp), read-only
    for path, fd in runtime.items():
        os.makedirs(path, exist_ok=True)
        _mount(fd_path(fd), path, None, MS_BIND | MS_REC)
        _make_readonly(path)
    readonly_later = ["/dev"]
    null = devices.get("/dev/null")

    def hide(path: str) -> None:
        if not os.path.lexists(path):
            return
        if os.path.isdir(path) and not os.path.islink(path):
            _mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=755,size=64k")
            readonly_later.append(path)
        else:
            if null is None:
                raise OSError(f"cannot hide {path}: no /dev/null")
            _mount(fd_path(null), path, None, MS_BIND)
            _make_readonly(path)

    for path in ["/run", *spec["sockets"]]:
        if os.path.lexists(path) and not any(path == w or path.startswith(w + "/") for w in keep):
            hide(path)

    ops = [(p, 1, "write") for p in keep] + [(p, 2, "hide") for p in spec["hide"]]
    ops.sort(key=lambda op: (op[0].rstrip("/").count("/"), op[1]))    # parents before children
    for path, _, kind in ops:
        if kind == "hide":
            hide(path)
            continue
        fd = keep[path]
        if not os.path.lexists(path):        # e.g. under /tmp, now a fresh tmpfs, or under a hidden directory
            if os.path.isdir(fd_path(fd)):
                os.makedirs(path)
            else:
                os.makedirs(os.path.dirname(path), exist_ok=True)
                open(path, "w").close()
        _mount(fd_path(fd), path, None, MS_BIND | MS_REC)
        _mount(None, path, None, MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NODEV | _remount_flags(_options_of(path)))
    for path in readonly_later:
        _make_readonly(path)
    for fd in [*keep.values(), *runtime.values(), *devices.values()]:
        os.close(fd)
    return made_proc


def _drop_caps() -> None:
    _prctl(PR_SET_SECUREBITS, SECUREBITS_LOCKED_DOWN)     # fails without CAP_SETPCAP: fine, then no caps
    try:
        with open("/proc/sys/kernel/cap_last_cap") as fh:
            last = int(fh.read())
    except (OSError, ValueError):
        last = 63
    for cap in range(last + 1):
        if _prctl(PR_CAPBSET_DROP, cap) != 0:
            err = ctypes.get_errno()
            if err == 1 and os.geteuid() != 0:   # EPERM: an unprivileged process has nothing to drop
                break
            if err != 22:                        # EINVAL: the kernel does not know this capability
                raise OSError(err, f"cannot drop capability {cap}: {os.strerror(err)}")
    _prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                    ("inheritable", ctypes.c_uint32)]

    header, data = Header(0x20080522, 0), (Data * 2)()
    _check(_c().capset(ctypes.byref(header), ctypes.byref(data)), "capset")
    _check(_prctl(PR_SET_NO_NEW_PRIVS, 1), "no_new_privs")


def _exec_student(spec: dict, st: _Status) -> None:
    """Process B: limits, no capabilities, then exec argv (the status fd closes on exec)."""
    argv = spec["argv"]
    try:
        os.chdir(spec["cwd"])
        for res, soft, hard in spec["rlimits"]:
            cur_soft, cur_hard = resource.getrlimit(res)
            if cur_hard != resource.RLIM_INFINITY:
                hard = min(hard, cur_hard)
                soft = min(soft, hard)
            resource.setrlimit(res, (soft, hard))
        if spec["drop_caps"]:
            try:
                _drop_caps()
                st.fence("caps", True)
            except OSError as err:
                st.fence("caps", False, str(err))
        for sig in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, [])
    except BaseException as err:
        st.fail(f"child setup: {type(err).__name__}: {err}")
    try:
        os.execvpe(argv[0], argv, spec["env"])
    except OSError as err:
        os.write(2, f"sandbox: cannot run {argv[0]}: {err.strerror}\n".encode())
        os._exit(127)


if __name__ == "__main__" and len(sys.argv) >= 4 and sys.argv[1] == "_enter":
    _helper_main(sys.argv[2:])      # never returns


# ==============================================================================================================
# Grader side (everything below is imported only by the grader, never by the helper)

import fcntl  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import select  # noqa: E402
import signal  # noqa: E402,F811
import stat  # noqa: E402
import subprocess  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Callable, Sequence  # noqa: E402


log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limits:
    wall_s: float = 120.0
    cpu_s: int = 600
    memory_mb: int = 4096      # TensorFlow on the CPU needs >= ~2 GB of address space
    max_pids: int = 64         # processes and threads of the student's code
    file_size_mb: int = 256
    output_kb: int = 256       # only the last output_kb of stdout+stderr is kept


@dataclass(frozen=True)
class Outcome:
    returncode: int | None     # None when killed by a signal (or never started)
    signal: int | None
    timed_out: bool
    wall_s: float
    reason: str | None         # None on a normal exit; else a short sentence for a student
    output_tail: str           # last bytes of combined stdout/stderr, decoded with errors="replace"


_fence_lock = threading.Lock()
_fence_cache: dict[str, bool] | None = None
_fence_notes: dict[str, str] = {}
_plan_cache: dict | None = None      # what run_limited asks the helper to set up (from the probe)


def fences() -> dict[str, bool]:
    """Which fences are active on this machine (probed once with a real sandboxed child, then cached)."""
    global _fence_cache
    with _fence_lock:
        if _fence_cache is None:
            _fence_cache = _probe()
        return dict(_fence_cache)


def describe_fences() -> str:
    """One paragraph for the grader's start-up: what is enforced, and what is missing with what to do instead."""
    active = fences()
    on = [_FENCE_TEXT[name][0] for name in FENCE_NAMES if active.get(name)]
    off = [name for name in FENCE_NAMES if not active.get(name)]
    text = "Student code runs in a child process with a wall-clock limit that kills its whole process group"
    if on:
        text += ", " + ", ".join(on)
    text += "."
    if _gpu_visible(os.environ):
        text += (" A GPU is visible, so there is no address-space limit (it breaks CUDA); memory is bounded by "
                 "the memory cgroup" + ("" if active.get("cgroup_memory") else " only, which is MISSING here") + ".")
    if not off:
        return text + " All fences are active."
    missing = []
    for name in off:
        note = _fence_notes.get(name)
        missing.append(f"{_FENCE_TEXT[name][1]}" + (f" [{note}]" if note else ""))
    text += " MISSING: " + " ".join(missing)
    text += (" To get every fence, run the grader as root on Linux (cgroups and namespaces need it), or inside a "
             "container that allows them (e.g. `docker run --privileged` or a rootless Podman with cgroups v2 "
             "delegation), or on a machine with unprivileged user namespaces enabled "
             "(sysctl kernel.unprivileged_userns_clone=1 / user.max_user_namespaces > 0) for the namespace "
             "fences; bubblewrap (`bwrap --unshare-all --ro-bind / / ...`) gives the same namespaces without root.")
    return text


_FENCE_TEXT = {
    "network_namespace": ("no network at all (an empty network namespace, loopback included)",
                          "No network namespace: student code can open network connections, including to "
                          "services on this machine's loopback."),
    "mount_namespace": ("a private mount namespace with hidden paths covered by empty tmpfs mounts",
                        "No mount namespace: hidden paths (reference weights, solutions, other submissions) are "
                        "readable by student code, and /tmp is shared."),
    "read_only_root": ("a read-only view of the machine except its scratch directory and private /tmp",
                       "No read-only root: student code can write wherever the grader's user can, e.g. into "
                       "the virtual environment that later gradings import."),
    "pid_namespace": ("a private pid namespace (it cannot see or signal other processes; when its main process "
                      "ends, everything it started ends)",
                      "No pid namespace: student code can see the grader's processes and signal those of the "
                      "same user; processes it starts outside its process group may outlive it."),
    "cgroup_memory": ("a memory cgroup limit",
                      "No memory cgroup: memory is bounded only by the address-space rlimit per process "
                      "(none at all when a GPU is visible)."),
    "cgroup_pids": ("a pids cgroup limit (fork bombs stop at the limit)",
                    "No pids cgroup: a fork bomb is bounded by RLIMIT_NPROC when the grader is not root (it "
                    "counts all of the user's processes and threads, set to their number at the start plus "
                    "max_pids), and only by the wall-clock limit when it is root."),
    "rlimits": ("rlimits (CPU seconds, file size, no core dumps, address space without a GPU)",
                "No rlimits."),
    "caps_dropped": ("no capabilities and no_new_privs (root inside cannot undo these fences)",
                     "Capabilities not dropped: a root child could undo the mount fences."),
}


def run_limited(argv: list[str], *, cwd: Path, env: dict[str, str], limits: Limits,
                hide: Sequence[Path] = (), writable: Sequence[Path] = (), readable: Sequence[Path] = (),
                stdin_data: bytes | None = None, watch: Callable[[], str | None] | None = None) -> Outcome:
    """Run `argv` in `cwd` (a scratch directory it may write) with exactly `env`, inside the fences that work
    here, and return how it ended. Never raises because of what the child does. `readable`: folders the command
    reads that may lie under /tmp (which the child sees as a private, empty tmpfs), such as the code it imports;
    the interpreter's own are added. `watch`, when given, is called about once a second while the child runs; a
    sentence from it ends the run at once (killed, `timed_out`, with that sentence as the reason): the caller's own
    deadlines, e.g. per item of a plan."""
    fences()
    plan = dict(_plan_cache or {})
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
    gpu = _gpu_visible(env)

    cgroup = None
    start = time.monotonic()
    setup_error = None
    if plan.get("cgroup_memory") or plan.get("cgroup_pids"):
        try:
            cgroup = _Cgroup.create(limits, memory=plan.get("cgroup_memory", False),
                                    pids=plan.get("cgroup_pids", False), headroom=not gpu)
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
        "gpu_devices": _gpu_device_paths() if gpu else [],
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


def _setup_failure(message: str, start: float) -> Outcome:
    log.error("sandbox setup failed: %s", message)
    return Outcome(None, None, False, time.monotonic() - start,
                   f"the grader could not set up its sandbox ({message}); this is not a problem with your code, "
                   "please tell the course staff", "")


def _run(spec: dict, limits: Limits, cgroup: _Cgroup | None, stdin_data: bytes | None, start: float,
         status_lines: list[str] | None = None, watch: Callable[[], str | None] | None = None) -> Outcome:
    spec_fd = _memfd(marshal.dumps(spec))
    stdin_fd = _memfd(stdin_data) if stdin_data is not None else os.open(os.devnull, os.O_RDONLY)
    status_r, status_w = os.pipe()
    out_r, out_w = os.pipe()
    try:
        fcntl.fcntl(out_r, 1031, 1 << 20)  # F_SETPIPE_SZ: fewer wake-ups when a child prints a lot
    except OSError:
        pass
    keep = max(1, limits.output_kb) * 1024
    drain = _Drain(out_r, keep)
    proc = None
    try:
        proc = subprocess.Popen(
            [sys.executable, "-I", "-S", os.path.abspath(__file__), "_enter", str(spec_fd), str(status_w)],
            stdin=stdin_fd, stdout=out_w, stderr=out_w, pass_fds=(spec_fd, status_w), env={},
            cwd=spec["cwd"], start_new_session=True, close_fds=True)
    except OSError as err:
        for fd in (out_r, status_r):
            os.close(fd)
        return _setup_failure(f"cannot start its helper: {err}", start)
    finally:
        for fd in (spec_fd, stdin_fd, status_w, out_w):
            os.close(fd)
    drain.start()
    timed_out, stopped = False, []
    try:
        timed_out = not _wait_exit(proc, start + limits.wall_s, watch, stopped)
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
        return Outcome(None, signal.SIGKILL, True, wall, stopped[0], tail)
    return _outcome(lines, proc.returncode, timed_out, wall, tail, limits, stats)


def _wait_exit(proc: subprocess.Popen, deadline: float, watch=None, stopped: list | None = None) -> bool:
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


def _watch_says_stop(watch, stopped: list | None) -> bool:
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


def _outcome(lines: list[str], helper_rc: int | None, timed_out: bool, wall: float, tail: str,
             limits: Limits, stats: dict) -> Outcome:
    info: dict[str, str] = {}
    for line in lines:
        key, _, value = line.partition(" ")
        if key in ("error", "warn"):
            (log.error if key == "error" else log.warning)("sandbox helper: %s", value)
        info.setdefault(key, value)
    if timed_out:
        return Outcome(None, signal.SIGKILL, True, wall, f"it ran past the {limits.wall_s:g} s time limit", tail)
    if "error" in info:
        return Outcome(None, None, False, wall,
                       f"the grader could not set up its sandbox ({info['error']}); this is not a problem with "
                       "your code, please tell the course staff", tail)
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
        sig = signal.SIGKILL     # the helper died without a word: only a kill does that
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
    return Outcome(returncode, sig, False, wall, reason, tail)


def _signal_name(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"


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
                    del self.buf[:-self.keep]
        except OSError:
            return

    def finish(self, *, deadline: float) -> None:
        """Wait for the end of the output; a writer that escaped every fence cannot hold us past `deadline`."""
        self._stop_at = deadline
        self.join()          # returns by the deadline (+ one select period): only then is the fd closed
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
            view = view[os.write(fd, view):]
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


def _rlimits(limits: Limits, gpu: bool, plan: dict) -> list[list[int]]:
    mb = 1024 * 1024
    out = [
        [resource.RLIMIT_CPU, int(limits.cpu_s), int(limits.cpu_s) + 2],
        [resource.RLIMIT_FSIZE, int(limits.file_size_mb) * mb, int(limits.file_size_mb) * mb],
        [resource.RLIMIT_CORE, 0, 0],
    ]
    if not gpu:
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


def _gpu_visible(env) -> bool:
    if env.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1", "none", "NoDevFiles"):
        return False
    return bool(_gpu_device_paths())


def _gpu_device_paths() -> list[str]:
    try:
        names = os.listdir("/dev")
    except OSError:
        return []
    return sorted(f"/dev/{n}" for n in names
                  if (n.startswith("nvidia") or n in ("kfd", "dri")))


def _runtime_paths(readable: Sequence[str] = ()) -> list[str]:
    """The interpreter's prefixes and `readable` where the sandbox's private /tmp or /dev/shm would cover them (a
    virtual environment or a checkout under /tmp): the child is given these back, read-only."""
    wanted = {sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix,
              os.path.dirname(os.path.realpath(sys.executable)), *readable}
    covered = [p for p in {os.path.realpath(p) for p in wanted if p}
               if p.startswith(("/tmp/", "/dev/shm/")) and os.path.isdir(p)]
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
            continue      # those directories are replaced inside anyway
        try:
            if stat.S_ISSOCK(os.lstat(path).st_mode):
                out.append(os.path.realpath(path))
        except OSError:
            continue
    return out


# --------------------------------------------------------------------------------------------------------------
# cgroups

class _Cgroup:
    """One uniquely named cgroup per run, in the pids and memory controllers (v1) or in the unified tree (v2)."""

    def __init__(self, dirs: dict[str, Path], version: int):
        self.dirs, self.version = dirs, version

    @classmethod
    def create(cls, limits: Limits, *, memory: bool, pids: bool, headroom: bool = False) -> _Cgroup:
        """`headroom`: an address-space rlimit is set too; the cgroup limit then sits a little above it (the
        helpers' memory and page cache count in the cgroup, not in the rlimit), so that a process that allocates
        too much gets a MemoryError with a traceback from the rlimit rather than a silent OOM kill."""
        parents, version = _cgroup_parents()
        name = f"{CGROUP_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:12]}"
        dirs: dict[str, Path] = {}
        self = cls(dirs, version)
        want = [c for c, on in (("memory", memory), ("pids", pids)) if on]
        try:
            for controller in want:
                if controller not in parents:
                    raise OSError(f"no writable {controller} cgroup controller")
                path = parents[controller] / name
                if version == 2 and dirs:
                    dirs[controller] = next(iter(dirs.values()))
                    continue
                path.mkdir()
                dirs[controller] = path
            mem = int(limits.memory_mb) * 2**20
            if headroom:
                mem += max(256, int(limits.memory_mb) // 8) * 2**20
            if version == 1:
                if "memory" in dirs:
                    _write(dirs["memory"] / "memory.limit_in_bytes", mem)
                    if (dirs["memory"] / "memory.memsw.limit_in_bytes").exists():
                        _write(dirs["memory"] / "memory.memsw.limit_in_bytes", mem)
                if "pids" in dirs:
                    _write(dirs["pids"] / "pids.max", int(limits.max_pids) + HELPER_PROCS)
            else:
                path = next(iter(dirs.values()))
                if "memory" in dirs:
                    _write(path / "memory.max", mem)
                    for extra, value in (("memory.swap.max", 0), ("memory.oom.group", 1)):
                        if (path / extra).exists():
                            _write(path / extra, value)
                if "pids" in dirs:
                    _write(path / "pids.max", int(limits.max_pids) + HELPER_PROCS)
        except BaseException:
            self.remove()
            raise
        return self

    def procs_files(self) -> list[str]:
        return sorted({str(d / "cgroup.procs") for d in self.dirs.values()})

    def kill(self) -> None:
        for path in set(self.dirs.values()):
            if self.version == 2 and (path / "cgroup.kill").exists():
                try:
                    _write(path / "cgroup.kill", 1)
                    continue
                except OSError:
                    pass
            for _ in range(100):
                pids = _read_pids(path / "cgroup.procs")
                if not pids:
                    break
                for pid in pids:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except OSError:
                        pass
                time.sleep(0.005)

    def stats(self) -> dict:
        out = {"oom_kills": 0, "memory_peak": 0, "pids_peak": 0}
        mem = self.dirs.get("memory")
        if mem is not None:
            if self.version == 1:
                out["oom_kills"] = _keyed(mem / "memory.oom_control").get("oom_kill", 0)
                out["memory_peak"] = _read_int(mem / "memory.max_usage_in_bytes")
            else:
                out["oom_kills"] = _keyed(mem / "memory.events").get("oom_kill", 0)
                out["memory_peak"] = _read_int(mem / "memory.peak")
        pids = self.dirs.get("pids")
        if pids is not None:
            out["pids_peak"] = _read_int(pids / "pids.peak")
        return out

    def remove(self) -> None:
        paths = list(set(self.dirs.values()))
        deadline = time.monotonic() + 5.0
        while paths:
            self.kill()
            left = []
            for path in paths:
                try:
                    path.rmdir()
                except FileNotFoundError:
                    pass
                except OSError:
                    left.append(path)
            paths = left
            if not paths:
                break
            if time.monotonic() > deadline:
                log.warning("sandbox: could not remove cgroup(s) %s", ", ".join(map(str, paths)))
                break
            time.sleep(0.01)
        self.dirs = {}


def _write(path: Path, value) -> None:
    with open(path, "w") as fh:
        fh.write(str(value))


def _read_int(path: Path) -> int:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0


def _keyed(path: Path) -> dict[str, int]:
    out = {}
    try:
        for line in path.read_text().splitlines():
            key, _, value = line.partition(" ")
            if value.strip().lstrip("-").isdigit():
                out[key] = int(value)
    except OSError:
        pass
    return out


def _read_pids(path: Path) -> list[int]:
    try:
        return [int(x) for x in path.read_text().split()]
    except (OSError, ValueError):
        return []


def _cgroup_parents() -> tuple[dict[str, Path], int]:
    """Where this process may create child cgroups: {controller: directory}, and the cgroup version.
    v1: under this process's own cgroup in each controller's hierarchy (so the grader's own limits still
    apply). v2: under this process's own cgroup when it delegates memory and pids to children, else the root."""
    mounts = []
    try:
        with open("/proc/self/mountinfo") as fh:
            for line in fh:
                left, _, right = line.partition(" - ")
                fields, rfields = left.split(), right.split()
                if len(fields) >= 5 and len(rfields) >= 3 and rfields[0] in ("cgroup", "cgroup2"):
                    mounts.append((rfields[0], _unescape(fields[3]), _unescape(fields[4]),
                                   set(rfields[2].split(","))))
        own: dict[str, str] = {}
        with open("/proc/self/cgroup") as fh:
            for line in fh:
                parts = line.rstrip("\n").split(":", 2)
                if len(parts) == 3:
                    for controller in (parts[1].split(",") if parts[1] else [""]):
                        own[controller] = parts[2]
    except OSError:
        return {}, 0

    def under(root: str, mountpoint: str, path: str) -> Path:
        rel = os.path.relpath(path, root) if path.startswith(root) else path.lstrip("/")
        return Path(os.path.normpath(os.path.join(mountpoint, rel)))

    v1: dict[str, Path] = {}
    for kind, root, mountpoint, options in mounts:
        if kind != "cgroup":
            continue
        for controller in ("memory", "pids"):
            if controller in options and controller in own and controller not in v1:
                path = under(root, mountpoint, own[controller])
                if os.access(path, os.W_OK):
                    v1[controller] = path
    if v1:
        return v1, 1
    for kind, root, mountpoint, _ in mounts:
        if kind != "cgroup2" or "" not in own:
            continue
        for candidate in (under(root, mountpoint, own[""]), Path(mountpoint)):
            try:
                enabled = set((candidate / "cgroup.subtree_control").read_text().split())
            except OSError:
                continue
            if os.access(candidate, os.W_OK) and {"memory", "pids"} & enabled:
                return {c: candidate for c in ("memory", "pids") if c in enabled}, 2
    return {}, 0


def _remove_stale_cgroups() -> None:
    """Remove empty cgroups left by graders that died (their name carries their pid)."""
    parents, _ = _cgroup_parents()
    for parent in set(parents.values()):
        try:
            entries = list(os.scandir(parent))
        except OSError:
            continue
        for entry in entries:
            if not entry.name.startswith(CGROUP_PREFIX):
                continue
            pid = entry.name[len(CGROUP_PREFIX):].split("-", 1)[0]
            if pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
                try:
                    os.rmdir(entry.path)
                except OSError:
                    pass


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
        cgroup = _Cgroup.create(Limits(), memory=plan.get("cgroup_memory", False),
                                pids=plan.get("cgroup_pids", False)) if (
            plan.get("cgroup_memory") or plan.get("cgroup_pids")) else None
    except OSError:
        cgroup = None
    lines: list[str] = []
    with tempfile.TemporaryDirectory(prefix="sandbox-probe-") as scratch:
        limits = Limits(wall_s=30, cpu_s=30)
        spec = {
            "parent": os.getpid(), "strict": False, "ns": want_ns, "mounts": True, "newproc": True,
            "argv": [sys.executable, "-I", "-S", "-c", _PROBE_CHILD], "env": {"PATH": os.defpath},
            "cwd": os.path.realpath(scratch), "writable": [], "hide": [], "sockets": [], "gpu_devices": [],
            "runtime": _runtime_paths(),
            "tmpfs_mb": 16, "rlimits": _rlimits(limits, _gpu_visible(os.environ), {}), "drop_caps": True,
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
                _fence_notes.setdefault({"net": "network_namespace", "mount": "mount_namespace",
                                         "pid": "pid_namespace", "mounts": "mount_namespace",
                                         "newproc": "pid_namespace", "caps": "caps_dropped",
                                         "user": "mount_namespace"}.get(parts[1], parts[1]), parts[3])
    report = None
    for text_line in outcome.output_tail.splitlines():
        if text_line.startswith("{"):
            try:
                report = json.loads(text_line)
            except ValueError:
                pass
    if report is None or outcome.returncode != 0:
        _fence_notes.setdefault("mount_namespace", "the probe child failed: "
                                + (outcome.reason or "") + " " + outcome.output_tail[-300:])
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
    result["caps_dropped"] = caps["CapEff"] == 0 and caps["CapPrm"] == 0 and report["nnp"] and (
        caps["CapBnd"] == 0 or not (root or ns_ok.get("user")))
    if not result["read_only_root"] and "read_only_root" not in _fence_notes:
        _fence_notes["read_only_root"] = "needs the mount namespace"
    # RLIMIT_NPROC never binds root (uid 0 of the first user namespace); it does bind any other user, inside a
    # user namespace too (measured: a non-root grader's child stopped at the limit)
    plan["nproc_binds"] = not root
    _plan_cache = plan
    return result


_FORCE_USER_NAMESPACE = False     # tests set this to run the non-root code path (a user namespace) as root


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "_enter":
        _helper_main(sys.argv[2:])
    else:
        logging.basicConfig()
        print(json.dumps(fences(), indent=2))
        print(describe_fences())
