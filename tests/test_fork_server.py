"""The fork server (autograder/sandbox/zygote.py): workers forked from a process that imported Keras once give the
same results as workers started as new interpreters, in the same fences, and the grader goes back to new
interpreters when a server is not there. Attacks on the server and between its children: test_hostile_fork_server.py.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest
from conftest import SOLUTION, graded

from autograder import launch, runner
from autograder.items import ANSWER, STUDENT, Cell, ItemId, Plan
from autograder.launch import FORK_SERVER_ENV
from autograder.runner import run_plan
from autograder.sandbox import Limits, fences, run_limited
from autograder.sandbox.forkserver import ForkServer, ForkServerError

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the sandbox's fences are Linux-only")

LIMITS = Limits(wall_s=60, memory_mb=4096, fork_server=True)
FRESH = Limits(wall_s=60, memory_mb=4096, fork_server=False)

# What a cell can see of the process it runs in, and numbers that depend on every seed: written to a file in its
# folder, compared between a forked and a new worker.
LOOK = r"""
import json, os, random, sys, tempfile
import numpy as np
links = {}
for fd in os.listdir("/proc/self/fd"):
    try:
        links[int(fd)] = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        pass  # the listing's own descriptor
unseeded = [random.random(), float(np.random.rand())]
import keras
keras.utils.set_random_seed(3)
model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), keras.layers.Dense(1)])
out = model(np.ones((2, 4), dtype="float32"))
look = {
    "unseeded": unseeded,
    "prediction": np.asarray(out).tolist(),
    "python_random": random.random(),
    "numpy_random": float(np.random.rand()),
    "env": dict(os.environ),
    "cwd": os.getcwd(),
    "tempdir": tempfile.gettempdir(),
    "argv": sys.argv,
    "pid": os.getpid(),
    "ppid": os.getppid(),
    "fds": sorted(links),
    "sockets": [link for link in links.values() if link.startswith("socket:")],
    "main": sys.modules["__main__"].__file__,
    "flags": [sys.flags.no_user_site, sys.flags.safe_path, sys.flags.hash_randomization],
    "path": sys.path,
    "status": {k: v.strip() for k, v in (l.split(":", 1) for l in open("/proc/self/status") if ":" in l)
               if k in ("NoNewPrivs", "CapEff", "CapBnd", "Seccomp")},
}
open("look.json", "w").write(json.dumps(look))
"""


def one_cell(code: str, backend: str = "tensorflow") -> Plan:
    return Plan(seed=0, item_timeout_s=60, backend=backend, cells=[Cell(ItemId(STUDENT, ANSWER, "a"), code)])


def needs_namespaces():
    have = fences()
    if not (have.get("pid_namespace") and have.get("mount_namespace")):
        pytest.skip("no pid and mount namespaces here: the fork server is not used")


def look(tmp_path: Path, limits: Limits, name: str, backend: str = "tensorflow") -> tuple[dict, runner.PlanRun]:
    folder = tmp_path / name
    folder.mkdir()
    run = run_plan(one_cell(LOOK, backend), workdir=folder, limits=limits, hide=[])
    assert run.outcomes[ItemId(STUDENT, ANSWER, "a")].ok, (run.outcomes, run.output_tail[-2000:])
    seen = json.loads((folder / "look.json").read_text())
    for key in ("env", "cwd", "tempdir"):  # the folder's own name
        seen[key] = json.loads(json.dumps(seen[key]).replace(str(folder.resolve()), "FOLDER"))
    return seen, run


@pytest.mark.parametrize("backend", ["tensorflow", pytest.param("jax", marks=pytest.mark.slow)])
def test_a_forked_worker_sees_what_a_new_one_sees(tmp_path, monkeypatch, backend):
    needs_namespaces()
    monkeypatch.delenv(FORK_SERVER_ENV, raising=False)
    fresh, fresh_run = look(tmp_path, FRESH, "fresh", backend)
    forked, forked_run = look(tmp_path, LIMITS, "forked", backend)
    again, _ = look(tmp_path, LIMITS, "again", backend)
    assert not fresh_run.forked and forked_run.forked
    for seen in (fresh, forked, again):
        assert seen["sockets"] == []  # no way back to the server (nor, for a new one, to the grader)
        assert seen["pid"] == 2 and seen["ppid"] == 1  # B, under its own pid namespace's init
        assert seen["status"]["NoNewPrivs"] == "1" and int(seen["status"]["CapEff"], 16) == 0
    # the random generators are seeded afresh, as at an interpreter's start (no child predicts the next one's);
    # nothing else may differ
    assert forked["unseeded"][0] != again["unseeded"][0] and forked["unseeded"][1] != again["unseeded"][1]
    for seen in (fresh, forked, again):
        del seen["unseeded"]
    assert forked == fresh
    assert again == fresh


def test_the_run_limits_and_the_wall_clock_still_end_a_forked_worker(tmp_path, monkeypatch):
    needs_namespaces()
    monkeypatch.delenv(FORK_SERVER_ENV, raising=False)
    start = time.monotonic()
    plan = Plan(
        seed=0, item_timeout_s=2, backend="tensorflow", cells=[Cell(ItemId(STUDENT, ANSWER, "a"), "while True: pass")]
    )
    run = run_plan(plan, workdir=tmp_path, limits=LIMITS, hide=[])
    assert run.forked
    assert run.outcomes[ItemId(STUDENT, ANSWER, "a")].error == "it ran past its time limit (an endless loop?)"
    assert time.monotonic() - start < 60
    server = launch.fork_servers.get("tensorflow", launch.STUDENT)
    assert server is not None and server.alive
    time.sleep(0.2)
    assert _children(server.pid) == []  # reaped, nothing left under the server


def test_a_run_whose_server_is_gone_starts_a_new_interpreter(tmp_path):
    needs_namespaces()
    folder = tmp_path / "server"
    folder.mkdir()
    server = ForkServer.start(launch.worker_argv(), env=launch.worker_env(folder, "tensorflow"), cwd=str(folder))
    server.proc.kill()
    server.proc.wait()
    scratch = tmp_path / "run"
    scratch.mkdir()
    runner.write_plan(scratch, one_cell("x = 1").to_dict(events="events.jsonl"))
    outcome = run_limited(
        launch.worker_argv(runner.PLAN),
        cwd=scratch,
        env=launch.worker_env(scratch, "tensorflow"),
        limits=LIMITS,
        readable=launch.worker_kit(),
        fork_server=server,
    )
    assert outcome.returncode == 0 and not outcome.forked, outcome
    assert '"finished": true' in (scratch / "events.jsonl").read_text()
    server.close()


def test_a_server_that_cannot_import_keras_is_refused_and_says_why(tmp_path):
    folder = tmp_path / "server"
    folder.mkdir()
    env = dict(launch.worker_env(folder, "tensorflow"), KERAS_BACKEND="no-such-backend")
    with pytest.raises(ForkServerError, match="did not get ready"):
        ForkServer.start(launch.worker_argv(), env=env, cwd=str(folder))


def test_the_switch_and_its_override(monkeypatch):
    monkeypatch.delenv(FORK_SERVER_ENV, raising=False)
    assert launch.fork_server_wanted(LIMITS) and not launch.fork_server_wanted(FRESH)
    monkeypatch.setenv(FORK_SERVER_ENV, "0")
    assert not launch.fork_server_wanted(LIMITS)
    monkeypatch.setenv(FORK_SERVER_ENV, "1")
    assert launch.fork_server_wanted(FRESH)


def test_without_namespaces_no_server_is_started(monkeypatch):
    monkeypatch.setattr("autograder.sandbox.fences", lambda: {"pid_namespace": False, "mount_namespace": True})
    servers = launch.ForkServers()
    assert servers.get("tensorflow", launch.STUDENT) is None
    assert "namespaces" in json.dumps(servers.describe())


@pytest.mark.slow
def test_a_submission_grades_the_same_forked_or_fresh(grader, monkeypatch):
    """The autoencoder's solution, graded with every worker (the student's, the clean one ahead) forked, and with
    every worker a new interpreter: the same results.json but for its times."""
    needs_namespaces()
    forked = []
    original = runner.run_limited

    def spy(*args, **kwargs):
        outcome = original(*args, **kwargs)
        forked.append(outcome.forked)
        return outcome

    monkeypatch.setattr(runner, "run_limited", spy)
    monkeypatch.setenv(FORK_SERVER_ENV, "0")
    fresh = graded(grader, SOLUTION)
    assert forked and not any(forked)
    forked.clear()
    monkeypatch.setenv(FORK_SERVER_ENV, "1")
    via_server = graded(grader, SOLUTION)
    assert forked and all(forked)
    assert fresh["extra_data"]["environment"]["worker"] == "a new interpreter"
    assert via_server["extra_data"]["environment"]["worker"] == "forked from a fork server"
    for result in (fresh, via_server):
        result.pop("execution_time", None)
        result.get("extra_data", {}).pop("timestamp", None)
        for varies in ("load_average", "worker"):
            result.get("extra_data", {}).get("environment", {}).pop(varies, None)
    assert json.dumps(fresh, sort_keys=True) == json.dumps(via_server, sort_keys=True)
    assert via_server["score"] == grader.spec.max_score


def _children(pid: int) -> list[int]:
    out = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/children") as fh:
            out += [int(p) for p in fh.read().split()]
    return out
