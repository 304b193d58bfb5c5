"""A process tree's own time: how long its threads ran or slept, leaving out the time they waited for a CPU that
other work held. Time limits are judged on it, so that a busy machine does not turn correct code into "an endless
loop" (docs/isolation.md, "Time limits").

Linux keeps, per thread, the nanoseconds it ran and the nanoseconds it waited in a run queue
(/proc/<pid>/task/<tid>/schedstat, first and second fields). Between two readings of the whole tree, `wall` apart:

    demand     = (ran + waited) / wall          how many of its threads wanted a CPU at once, on average
    held back  = waited / max(1, demand)        the wall time the tree as a whole spent waiting for a CPU
    own time  += max(wall - held back, ran / cpus), never more than `wall`

For one thread that is exactly the wall time less its time in the run queue. A thread that sleeps neither runs nor
waits, so sleep counts in full. The floor `ran / cpus` keeps a tree that keeps every CPU busy itself (threads
competing with each other, not with others) from counting its own queueing as the machine's. Only the standard
library: the worker imports it too.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable

# A limit allows this much own time: contention still costs some CPU time (cold caches, context switches). Measured
# here: a small Keras fit ran 2.3 s alone and was charged 3.0 s of own time among 6 spinning processes per core.
CONTENTION_MARGIN = 1.5


def thread_times(pids: Iterable[int], proc: str = "/proc") -> dict[tuple[int, int], tuple[int, int]]:
    """(ran ns, waited ns) of every thread of `pids` that can still be read."""
    times: dict[tuple[int, int], tuple[int, int]] = {}
    for pid in pids:
        try:
            tids = os.listdir(f"{proc}/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                with open(f"{proc}/{pid}/task/{tid}/schedstat", "rb") as fh:
                    fields = fh.read().split()
                times[(pid, int(tid))] = (int(fields[0]), int(fields[1]))
            except (OSError, ValueError, IndexError):
                continue
    return times


def process_tree(pid: int, proc: str = "/proc") -> list[int]:
    """`pid` and every process below it (through each thread's `children` list)."""
    found: list[int] = []
    todo = [pid]
    while todo and len(found) < 4096:
        current = todo.pop()
        found.append(current)
        try:
            tids = os.listdir(f"{proc}/{current}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                with open(f"{proc}/{current}/task/{tid}/children", "rb") as fh:
                    todo += [int(p) for p in fh.read().split()]
            except (OSError, ValueError):
                continue
    return found


def usable_cpus() -> float:
    """The CPUs this process may use: its affinity mask, lowered by a cgroup CPU quota (as in containers)."""
    cpus = float(len(os.sched_getaffinity(0)))
    for path, parse in (("/sys/fs/cgroup/cpu.max", _v2_quota), ("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", _v1_quota)):
        try:
            with open(path, encoding="ascii") as fh:
                quota = parse(fh.read(), path)
        except (OSError, ValueError):
            continue
        if quota:
            cpus = min(cpus, quota)
    return max(cpus, 0.1)


def _v2_quota(text: str, _path: str) -> float | None:
    limit, period = text.split()[:2]
    return None if limit == "max" else int(limit) / int(period)


def _v1_quota(text: str, path: str) -> float | None:
    quota = int(text)
    if quota <= 0:
        return None
    with open(os.path.join(os.path.dirname(path), "cpu.cfs_period_us"), encoding="ascii") as fh:
        return quota / int(fh.read())


class OwnClock:
    """The own time of the processes `pids()` names, from the moment the clock is made; `tick()` reads it. Call it
    about once a second or more often: each reading covers the time since the previous one."""

    def __init__(self, pids: Callable[[], Iterable[int]], *, cpus: float | None = None, proc: str = "/proc"):
        self._pids, self._proc = pids, proc
        self.cpus = cpus or usable_cpus()
        self.own = 0.0
        self.started = self._at = time.monotonic()
        self._last = thread_times(self._pids(), proc)

    @property
    def wall(self) -> float:
        return time.monotonic() - self.started

    def tick(self) -> float:
        """The own time so far, in seconds."""
        now = time.monotonic()
        current = thread_times(self._pids(), self._proc)
        ran = waited = 0
        for key, (run_ns, wait_ns) in current.items():
            before_run, before_wait = self._last.get(key, (0, 0))  # a thread born since the last reading: all new
            ran += max(0, run_ns - before_run)
            waited += max(0, wait_ns - before_wait)
        passed = now - self._at
        demand = (ran + waited) / 1e9 / passed if passed > 0 else 0.0
        held_back = waited / 1e9 / max(1.0, demand)
        self.own += min(passed, max(passed - held_back, ran / 1e9 / self.cpus, 0.0))
        self._last, self._at = current, now
        return self.own
