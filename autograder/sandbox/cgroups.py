"""The run's cgroups: one uniquely named cgroup per run in the pids and memory controllers (v1), or one in the
unified tree (v2), created before the helper starts, killed and removed after the run."""

from __future__ import annotations

import logging
import os
import signal
import time
import uuid
from pathlib import Path

from .helper import HELPER_PROCS, _unescape
from .limits import Limits

log = logging.getLogger(__name__)

CGROUP_PREFIX = "autograder-sb-"  # then the grader's pid, so a later grader can remove what a dead one left


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
                    mounts.append((rfields[0], _unescape(fields[3]), _unescape(fields[4]), set(rfields[2].split(","))))
        own: dict[str, str] = {}
        with open("/proc/self/cgroup") as fh:
            for line in fh:
                parts = line.rstrip("\n").split(":", 2)
                if len(parts) == 3:
                    for controller in parts[1].split(",") if parts[1] else [""]:
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
            pid = entry.name[len(CGROUP_PREFIX) :].split("-", 1)[0]
            if pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
                try:
                    os.rmdir(entry.path)
                except OSError:
                    pass
