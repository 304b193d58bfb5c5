"""Attacks from workers forked by a fork server (autograder/sandbox/zygote.py) on the server and on each other
(docs/threat-model.md, "Fork server"). Each attack runs as an answer cell of a worker forked from the real server
of the student's side; the cell fails (AssertionError) when the attack got through, and the test then checks from
outside that the server is whole: the same process, no child or thread left under it, and the next child clean.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from autograder import launch, runner
from autograder.items import ANSWER, STUDENT, Cell, ItemId, Plan
from autograder.launch import FORK_SERVER_ENV
from autograder.owntime import process_tree
from autograder.runner import run_plan
from autograder.sandbox import Limits, fences

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the sandbox's fences are Linux-only")

LIMITS = Limits(wall_s=60, memory_mb=4096, fork_server=True)


@pytest.fixture
def server(monkeypatch):
    have = fences()
    if not (have.get("pid_namespace") and have.get("mount_namespace")):
        pytest.skip("no pid and mount namespaces here: the fork server is not used")
    monkeypatch.delenv(FORK_SERVER_ENV, raising=False)
    found = launch.fork_servers.get("tensorflow", launch.STUDENT)
    assert found is not None and found.alive, launch.fork_servers.describe()
    threads = len(os.listdir(f"/proc/{found.pid}/task"))
    yield found
    assert found.alive  # still the same process
    assert _settled(found.pid)  # no child of a run left under it
    assert len(os.listdir(f"/proc/{found.pid}/task")) <= threads  # no thread of a run in it (an import's may end)


def run_cells(folder: Path, **cells: str) -> runner.PlanRun:
    folder.mkdir(exist_ok=True)
    plan = Plan(
        seed=0,
        item_timeout_s=30,
        backend="tensorflow",
        cells=[Cell(ItemId(STUDENT, ANSWER, name), code) for name, code in cells.items()],
    )
    run = run_plan(plan, workdir=folder, limits=LIMITS, hide=[])
    assert run.forked, run.output_tail[-2000:]
    return run


def assert_ok(run: runner.PlanRun, *names: str) -> None:
    for name in names:
        outcome = run.outcomes[ItemId(STUDENT, ANSWER, name)]
        assert outcome.ok, (name, outcome, run.deaths, run.output_tail[-1500:])


REACH = """
import ctypes, os, signal
targets = {targets!r}
got = []
libc = ctypes.CDLL(None, use_errno=True)
for pid in targets:
    for sig in (0, signal.SIGSTOP, signal.SIGKILL):
        try:
            os.kill(pid, sig)
            got.append(f"signal {{sig}} reached {{pid}}")
        except OSError:
            pass
    if libc.ptrace(16, pid, 0, 0) == 0:  # PTRACE_ATTACH
        got.append(f"ptrace attached to {{pid}}")
    if libc.ptrace(0x4206, pid, 0, 0) == 0:  # PTRACE_SEIZE
        got.append(f"ptrace seized {{pid}}")
    for name in ("mem", "environ", "maps", "cwd/.", "root/tmp"):
        try:
            path = f"/proc/{{pid}}/{{name}}"
            if os.path.isdir(path):
                os.listdir(path)
            else:
                open(path, "rb").read(1)
            got.append(f"read {{path}}")
        except OSError:
            pass
for path in {paths!r}:
    if os.path.exists(path):
        got.append(f"sees {{path}}")
visible = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
if [p for p in visible if p > 50]:
    got.append(f"sees processes {{visible}}")
assert not got, got
"""


def test_a_child_cannot_signal_trace_or_read_the_server(server, tmp_path):
    folder = launch.fork_servers._folders[next(k for k, s in launch.fork_servers._servers.items() if s is server)]
    run = run_cells(tmp_path / "a", reach=REACH.format(targets=[server.pid], paths=[folder, f"/proc/{server.pid}"]))
    assert_ok(run, "reach")


def test_a_child_cannot_reach_a_sibling_that_runs_at_the_same_time(server, tmp_path):
    """A sibling forked from the same server, running meanwhile: its pids (as the grader sees them) are out of
    reach, and it finishes untouched."""
    before = set(_children(server.pid))
    sibling: dict = {}
    thread = threading.Thread(
        target=lambda: sibling.update(run=run_cells(tmp_path / "sibling", slow="import time; time.sleep(12)"))
    )
    thread.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        new = set(_children(server.pid)) - before
        tree = [p for pid in new for p in process_tree(pid)]
        if len(tree) >= 3:  # H, A and B of the sibling
            break
        time.sleep(0.05)
    assert len(tree) >= 3, "the sibling did not start"
    run = run_cells(tmp_path / "attacker", reach=REACH.format(targets=tree, paths=[str(tmp_path / "sibling")]))
    thread.join()
    assert_ok(run, "reach")
    assert_ok(sibling["run"], "slow")


LEAVE_BEHIND = """
import os, subprocess, threading, time
def beat():
    while True:
        open("/dev/shm/heartbeat", "a").write("x")
        time.sleep(0.05)
threading.Thread(target=beat, daemon=True).start()
threading.Thread(target=beat).start()                      # not a daemon: it would hold a normal exit
subprocess.Popen(["sleep", "300"], start_new_session=True)  # a detached child
if os.fork() == 0:                                          # a double-forked daemon
    os.setsid()
    if os.fork() == 0:
        time.sleep(300)
    os._exit(0)
"""


def test_threads_and_processes_a_child_leaves_end_with_it(server, tmp_path):
    run = run_cells(tmp_path / "a", leave=LEAVE_BEHIND, after="import time; time.sleep(0.5)")
    assert_ok(run, "leave", "after")
    # the server's fixture checks that nothing is left under the server; the next child starts clean
    run = run_cells(tmp_path / "b", look="import os\nassert not os.path.exists('/dev/shm/heartbeat')")
    assert_ok(run, "look")


PATCH = """
import sys
import numpy as np
import keras
np.sum = lambda *a, **k: 42
np.random.rand = lambda *a: 0.0
keras.ops.mean = lambda *a, **k: 0.0
np.ndarray.__module__  # touch the C type too
sys.modules["autograder.checks"].PLANTED = True
sys.modules["builtins"].PLANTED = True
import random
random.random = lambda: 0.0
"""

CHECK_PATCH = """
import builtins, random, sys
import numpy as np
import keras
assert np.sum([1, 2]) == 3, "numpy.sum is still patched"
assert keras.ops.mean is not None and float(keras.ops.mean(np.array([2.0, 4.0]))) == 3.0, "keras.ops.mean patched"
assert not hasattr(sys.modules["autograder.checks"], "PLANTED"), "a module kept the plant"
assert not hasattr(builtins, "PLANTED"), "builtins kept the plant"
assert random.random() != 0.0
"""


def test_monkey_patching_numpy_in_one_child_does_not_reach_the_next(server, tmp_path):
    taken = "import numpy as np, builtins\nassert np.sum([1, 2]) == 42 and builtins.PLANTED"
    run = run_cells(tmp_path / "a", patch=PATCH, check_own=taken)
    assert_ok(run, "patch", "check_own")  # the patch did take, in its own child
    run = run_cells(tmp_path / "b", check=CHECK_PATCH)
    assert_ok(run, "check")


def test_filling_dev_shm_and_tmp_leaves_nothing_for_the_next_child(server, tmp_path):
    tag = f"planted-{uuid.uuid4().hex}"
    fill = f"""
import os
for folder in ("/dev/shm", "/tmp"):
    with open(os.path.join(folder, "{tag}"), "wb") as fh:
        try:
            for _ in range(8):
                fh.write(b"x" * (8 << 20))
        except OSError:
            pass
assert os.path.getsize("/dev/shm/{tag}") > 0
"""
    run = run_cells(tmp_path / "a", fill=fill)
    assert_ok(run, "fill")
    assert not os.path.exists(f"/dev/shm/{tag}") and not os.path.exists(f"/tmp/{tag}")  # the grader's own
    run = run_cells(
        tmp_path / "b", look=f"import os\nassert os.listdir('/dev/shm') == [] and not os.path.exists('/tmp/{tag}')"
    )
    assert_ok(run, "look")


def test_a_child_holds_no_descriptor_of_the_server_and_cannot_ask_it_for_an_unfenced_child(server, tmp_path):
    """The only way to the server is the grader's socket: a child has no socket at all, so it cannot send the
    server a spec of its own (one without namespaces, say)."""
    ask = """
import os, socket
links = {}
for fd in os.listdir("/proc/self/fd"):
    try:
        links[int(fd)] = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        pass
assert not [l for l in links.values() if l.startswith("socket:")], links
for fd in range(3, 1024):
    try:
        s = socket.socket(fileno=os.dup(fd))
    except OSError:
        continue
    try:
        s.send(b"{}")
        raise AssertionError(f"sent to descriptor {fd}")
    except OSError:
        pass
"""
    run = run_cells(tmp_path / "a", ask=ask)
    assert_ok(run, "ask")


def _children(pid: int) -> list[int]:
    out = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as fh:
                out += [int(p) for p in fh.read().split()]
        except OSError:
            continue
    return out


def _settled(pid: int, wait_s: float = 5.0) -> bool:
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if not _children(pid):
            return True
        time.sleep(0.05)
    return False
