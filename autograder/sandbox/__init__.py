"""Run one command in a limited child process: the fences around student code (docs/isolation.md).

`run_limited(argv, cwd=..., env=..., limits=...)` starts a small helper that sets the fences up and then execs
`argv`:

    grader --Popen(start_new_session)--> helper H --fork--> A (pid 1 of a new pid namespace) --fork--> B: exec argv

The grader kills the process group, the cgroup and (through A's death) the whole pid namespace at the wall-clock
limit, reads the exit status from a pipe, keeps the tail of stdout+stderr from another pipe, and removes the
cgroups. Where a fence is not available (not root, no user namespaces, no cgroups) the run goes ahead with the
fences that work; `fences()` says which those are and `describe_fences()` says what is missing and what to do.
A fence that `fences()` found working but that fails during a later run makes that run fail closed: the student
code is not started, and its ProcessOutcome has `sandbox_failed` set.

With a fork server (zygote.py, docs/isolation.md "The fork server"), H is forked from a server that imported Keras
once, and B runs the worker in its own memory instead of exec'ing argv; the fences are the same functions.

Modules, each importing only those listed before it:
    helper    the helper process H, A, B (run by its path; built-in modules only)
    limits    `Limits` and the rlimits the helper sets
    outcome   `ProcessOutcome` and the reason a run ended
    cgroups   the run's pids and memory cgroups
    gpu       the GPU fence set (what opens for CUDA) and the switches `autograder doctor --bisect` turns
    paths     interpreter folders and unix sockets the child's mount view must handle
    loop      one helper process from start to end: start, wait, kill, drain, read its report
    probe     `fences()`, `describe_fences()` and the plan every run asks the helper for
    inprocess B of a fork server's child: the fences, then the worker in the forked memory (imports helper only)
    zygote    the fork server process and its children (imports helper, inprocess)
    forkserver the grader's side of a fork server: start it, hand it a run, reap, stop
    run       `run_limited` (with `fork_server=`, the worker forked from a server where that is safe)
State that tests replace (`_plan_cache`, `_fence_cache`, `_fence_notes`, `_FORCE_USER_NAMESPACE`,
`_FORCE_GPU_FENCES`) lives in
probe.py and is read there at each call: patch it on `autograder.sandbox.probe`, not here.
"""

from __future__ import annotations

from .cgroups import CGROUP_PREFIX
from .gpu import FenceSet
from .limits import Limits
from .outcome import ProcessOutcome
from .probe import FENCE_NAMES, describe_fences, fences
from .run import run_limited

__all__ = [
    "Limits",
    "ProcessOutcome",
    "FenceSet",
    "fences",
    "describe_fences",
    "run_limited",
    "FENCE_NAMES",
    "CGROUP_PREFIX",
]
