"""The helper that sets the fences up, then execs the student's command.

The grader runs this file by its path, not as a module of the package: `python -I -S .../helper.py _enter
SPEC_FD STATUS_FD` (loop.py). With no package around it, it imports nothing of the kit and only cheap built-in
modules (the grader's side, dataclasses, subprocess, logging..., would add ~40 ms to every run). The grader's
modules import it for its constants and `_unescape`.

    H (the main below): joins the run's cgroups (pids, memory), unshares the mount, pid, network and IPC
       namespaces (plus a user namespace when not root), forks
    A (`_init`): pid 1 of the new pid namespace: mounts a read-only view of the machine (tmpfs over hidden paths,
       private /tmp, /dev and /proc, read-write binds of cwd and `writable`, read-only binds of Python and the kit
       when they lie under /tmp; in the GPU fence set a writable /proc with its dangerous parts read-only, and the
       GPU's device files), forks, reaps, reports
    B (`_exec_student`): sets rlimits, drops every capability, sets no_new_privs (`_fence_student`), execs argv

A fork server (zygote.py) runs the same steps in a child forked from it (`_enter` with its own B, which runs the
worker in its own memory instead of exec'ing a new interpreter).

Each step reports one line on the status pipe ("fence NAME 0|1 DETAIL", "exit N", "cpu S", "error MESSAGE"...);
when `strict` (every run but the probe's), a fence that fails ends the helper with SETUP_FAILED before argv runs.
"""

from __future__ import annotations

import ctypes
import marshal
import os
import resource
import sys

try:
    import _signal as signal  # the C module: `signal` would import enum (and re), ~10 ms per run
except ImportError:  # pragma: no cover
    import signal

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

HELPER_PROCS = 2  # the helper and the namespace's init are in the run's pids cgroup too
DEV_NODES = ("null", "zero", "full", "random", "urandom")
SETUP_FAILED = 125  # the helper's exit status when it gave up

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
    return _c().prctl(
        ctypes.c_int(option), ctypes.c_ulong(arg2), ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0)
    )


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    def enc(text: str | None) -> bytes | None:
        return None if text is None else text.encode()

    _check(_c().mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)), f"mount {target}")


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
    _enter(spec, _Status(status_fd, spec["strict"]), _exec_student)


def _enter(spec: dict, st: _Status, student) -> None:
    """H: join the run's cgroups, unshare the namespaces, fork A (which forks B to run `student(spec, st)`), wait
    for A, exit. Run by the helper process, and by a fork server's child (zygote.py) with its own `student`."""
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
    except BaseException as err:  # a bug here must not run the student code unfenced
        st.fail(f"helper: {type(err).__name__}: {err}")
    pid = os.fork()
    if pid == 0:
        try:
            _init(spec, st, got, student)
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
    for name, flag in (("mount", CLONE_NEWNS), ("pid", CLONE_NEWPID), ("net", CLONE_NEWNET), ("ipc", CLONE_NEWIPC)):
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


def _init(spec: dict, st: _Status, got: dict, student) -> None:
    """Process A: pid 1 of the new pid namespace (when there is one); B runs `student(spec, st)`, which never
    returns."""
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if spec["mounts"] and got.get("mount"):
        try:
            newproc = _setup_mounts(spec, got.get("pid", False) and spec["newproc"], st)
            st.fence("mounts", True)
            if spec["newproc"]:  # asked for (the probe found a pid namespace): its absence fails a strict run
                st.fence("newproc", newproc, "" if newproc else "no pid namespace")
        except OSError as err:
            st.fence("mounts", False, str(err))
    elif spec["mounts"]:
        st.fence("mounts", False, "no mount namespace")
    child = os.fork()
    if child == 0:
        try:
            student(spec, st)
        finally:
            os._exit(SETUP_FAILED)  # `student` returned or raised past its own handlers: nothing of it runs on
    while True:
        try:
            pid, status, usage = os.wait4(-1, 0)
        except ChildProcessError:
            os._exit(0)
        if pid == child:
            break
    report = [
        f"exit {os.WEXITSTATUS(status)}" if os.WIFEXITED(status) else f"signal {os.WTERMSIG(status)}",
        f"cpu {usage.ru_utime + usage.ru_stime:.3f}",
        f"maxrss {usage.ru_maxrss}",
    ]
    for line in report:
        st.say(line)
    os._exit(0)


def _unescape(text: str) -> str:
    """Undo the octal escapes of /proc/self/mountinfo."""
    return text.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")


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
    for name, flag in (
        ("nosuid", MS_NOSUID),
        ("nodev", MS_NODEV),
        ("noexec", MS_NOEXEC),
        ("nodiratime", MS_NODIRATIME),
    ):
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
    if spec.get("ro_root", True):
        for path, options in _mountinfo():
            if "ro" in options:
                continue
            try:
                _make_readonly(path, options)
            except FileNotFoundError:
                continue  # shadowed or unreachable
        # check: the topmost mount at each mount point must now be read-only
        top: dict[str, set[str]] = {}
        for path, options in _mountinfo():
            top[path] = options
        for path, options in top.items():
            if "ro" not in options and os.path.exists(path):
                raise OSError(f"{path} is still writable after the read-only remount")

    def fd_path(fd: int) -> str:
        return f"/proc/self/fd/{fd}"

    made_proc = False
    if newproc:
        try:
            # writable only in the GPU set, where the driver names its threads in /proc/self/task/<tid>/comm
            rdonly = 0 if spec.get("proc_rw") else MS_RDONLY
            _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC | rdonly)
            made_proc = True
        except OSError as err:
            st.say(f"warn fresh /proc: {err}")
            if st.strict:
                raise
        if made_proc and spec.get("proc_rw"):
            _protect_proc(spec, fd_path(devices["/dev/null"]) if "/dev/null" in devices else None)

    if spec.get("private_dev", True):
        # a minimal /dev: no disks, only the harmless character devices (and GPUs when asked)
        _mount("tmpfs", "/dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=755,size=1m")
        for path, fd in devices.items():
            if os.path.isdir(fd_path(fd)):
                os.makedirs(path, exist_ok=True)
                _mount(fd_path(fd), path, None, MS_BIND | MS_REC)
            else:
                open(path, "w").close()
                _mount(fd_path(fd), path, None, MS_BIND)
        for name, target in (
            ("fd", "/proc/self/fd"),
            ("stdin", "/proc/self/fd/0"),
            ("stdout", "/proc/self/fd/1"),
            ("stderr", "/proc/self/fd/2"),
        ):
            os.symlink(target, f"/dev/{name}")
    tmp_size = f"size={int(spec['tmpfs_mb'])}m"
    os.makedirs("/dev/shm", exist_ok=True)
    _mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, f"mode=1777,{tmp_size}")
    _mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, f"mode=1777,{tmp_size}")
    # Python and the kit where the private /tmp just covered them (a virtual environment under /tmp), read-only
    for path, fd in runtime.items():
        os.makedirs(path, exist_ok=True)
        _mount(fd_path(fd), path, None, MS_BIND | MS_REC)
        _make_readonly(path)
    readonly_later = ["/dev"] if spec.get("private_dev", True) else []
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

    for path in [*(["/run"] if spec.get("hide_run", True) else []), *spec["sockets"]]:
        if os.path.lexists(path) and not any(path == w or path.startswith(w + "/") for w in keep):
            hide(path)

    ops = [(p, 1, "write") for p in keep] + [(p, 2, "hide") for p in spec["hide"]]
    ops.sort(key=lambda op: (op[0].rstrip("/").count("/"), op[1]))  # parents before children
    for path, _, kind in ops:
        if kind == "hide":
            hide(path)
            continue
        fd = keep[path]
        if not os.path.lexists(path):  # e.g. under /tmp, now a fresh tmpfs, or under a hidden directory
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


def _protect_proc(spec: dict, null: str | None) -> None:
    """In a writable /proc (the GPU set): keep `proc_read_only` read-only and cover `proc_masked`, as container
    runtimes do (root without capabilities may still write sysctls, sysrq-trigger and IRQ affinities by file mode)."""
    for path in spec.get("proc_read_only", []):
        if os.path.lexists(path):
            _mount(path, path, None, MS_BIND | MS_REC)
            _make_readonly(path)
    for path in spec.get("proc_masked", []):
        if not os.path.lexists(path):
            continue
        if os.path.isdir(path):
            _mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY, "mode=555,size=4k")
        else:
            if null is None:
                raise OSError(f"cannot cover {path}: no /dev/null")
            _mount(null, path, None, MS_BIND)
            _make_readonly(path)


def _drop_caps() -> None:
    _prctl(PR_SET_SECUREBITS, SECUREBITS_LOCKED_DOWN)  # fails without CAP_SETPCAP: fine, then no caps
    try:
        with open("/proc/sys/kernel/cap_last_cap") as fh:
            last = int(fh.read())
    except (OSError, ValueError):
        last = 63
    for cap in range(last + 1):
        if _prctl(PR_CAPBSET_DROP, cap) != 0:
            err = ctypes.get_errno()
            if err == 1 and os.geteuid() != 0:  # EPERM: an unprivileged process has nothing to drop
                break
            if err != 22:  # EINVAL: the kernel does not know this capability
                raise OSError(err, f"cannot drop capability {cap}: {os.strerror(err)}")
    _prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]

    header, data = Header(0x20080522, 0), (Data * 2)()
    _check(_c().capset(ctypes.byref(header), ctypes.byref(data)), "capset")
    _check(_prctl(PR_SET_NO_NEW_PRIVS, 1), "no_new_privs")


def _fence_student(spec: dict, st: _Status) -> None:
    """Process B's fences: its folder, rlimits, no capabilities, no_new_privs. A fence that fails ends B (`st`)."""
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
    except BaseException as err:
        st.fail(f"child setup: {type(err).__name__}: {err}")


def _exec_student(spec: dict, st: _Status) -> None:
    """Process B: limits, no capabilities, then exec argv (the status fd closes on exec)."""
    argv = spec["argv"]
    _fence_student(spec, st)
    try:
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
    _helper_main(sys.argv[2:])  # never returns
