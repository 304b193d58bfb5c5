"""Scores do not depend on the machine's load: time limits are judged on the worker's own time (autograder/owntime.py),
with wall time only as a backstop at ten times a limit.

The same notebooks are graded on the machine as it is and again while processes this test starts keep every core
busy (four per core): the results are the same. A real endless loop, busy or sleeping, is still stopped within its
own limit plus a bounded grace and named as the student's. Slow: it grades several notebooks twice."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from contextlib import contextmanager

import pytest
from conftest import SOLUTION, cell, graded, notebook
from test_standby import PLANT

from autograder.items import ANSWER, STUDENT, Cell, ItemId, Plan
from autograder.owntime import OwnClock, process_tree
from autograder.results import MACHINE_BUSY
from autograder.runner import BACKSTOP, own_allowance, run_plan
from autograder.sandbox import Limits

pytestmark = pytest.mark.slow
SPINNERS_PER_CORE = 4


@contextmanager
def busy_machine(per_core: int = SPINNERS_PER_CORE):
    """Every core kept busy by processes that only spin, for as long as the block runs."""
    spinners = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(per_core * (os.cpu_count() or 1))
    ]
    try:
        time.sleep(1.0)
        yield
    finally:
        for p in spinners:
            p.kill()
        for p in spinners:
            p.wait()


def _comparable(result: dict) -> str:
    result = json.loads(json.dumps(result))
    result.pop("execution_time", None)
    result["extra_data"].pop("timestamp", None)
    result["extra_data"].get("environment", {}).pop("load_average", None)
    return json.dumps(result, sort_keys=True, indent=1)


def _notebooks(tmp_path) -> dict:
    tampered = notebook(SOLUTION)
    cell(tampered, "setup")["source"] = "".join(cell(tampered, "setup")["source"]) + "\n# an edited locked cell\n"
    planted = notebook(SOLUTION)
    cell(planted, "encoder_block")["source"] = PLANT + "".join(cell(planted, "encoder_block")["source"])
    paths = {"solution": SOLUTION}
    for name, nb in (("tampered", tampered), ("planted", planted)):
        paths[name] = tmp_path / f"{name}.ipynb"
        paths[name].write_text(json.dumps(nb))
    return paths


def test_the_same_results_on_a_quiet_and_on_a_busy_machine(grader, tmp_path):
    paths = _notebooks(tmp_path)
    grader.prepare()
    quiet = {name: graded(grader, path) for name, path in paths.items()}
    assert quiet["solution"]["score"] == grader.spec.max_score
    with busy_machine():
        busy = {name: graded(grader, path) for name, path in paths.items()}
    for name in paths:
        kinds = [f["kind"] for f in busy[name]["extra_data"]["findings"]]
        assert MACHINE_BUSY not in kinds, f"{name}: the backstop fired at {SPINNERS_PER_CORE} spinners per core"
        assert _comparable(busy[name]) == _comparable(quiet[name]), name
    assert busy["solution"]["extra_data"]["environment"]["load_average"] is not None


ITEM_S = 3.0


@pytest.mark.parametrize(
    "loop",
    [
        "while True:\n    pass",
        "import time\nwhile True:\n    time.sleep(0.1)",
        "while True:\n    try:\n        while True:\n            pass\n    except BaseException:\n        pass",
    ],
)
def test_an_endless_loop_is_still_stopped_and_named_on_a_busy_machine(tmp_path, loop):
    """Busy, sleeping, or catching the worker's own timer (then the runner's watchdog stops it): each is stopped
    within its own limit plus the watchdog's grace, as the student's, never as the machine's."""
    plan = Plan(seed=0, item_timeout_s=ITEM_S, cells=[Cell(ItemId(STUDENT, ANSWER, "loop"), loop)])
    with busy_machine():
        began = time.monotonic()
        run = run_plan(plan, workdir=tmp_path, limits=Limits(wall_s=60, memory_mb=2048), hide=[])
        took = time.monotonic() - began
    out = run.outcomes[ItemId(STUDENT, ANSWER, "loop")]
    assert not out.ok and "time limit" in out.error, out.error
    assert not run.machine_busy
    assert took < BACKSTOP * own_allowance(ITEM_S) + 60, took  # plus the worker's start on a loaded machine


def test_own_time_leaves_out_the_wait_for_a_cpu_but_not_sleep():
    """A spinning process among many spinners ran for a fraction of the wall time: that fraction is its own time. A
    sleeping one waited for nothing: all of the wall time is its own."""
    with busy_machine():
        own = {}
        for name, code in (
            ("spin", "print(1, flush=True)\nwhile True: pass"),
            ("sleep", "import time; print(1, flush=True); time.sleep(60)"),
        ):
            child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
            child.stdout.readline()  # started: the interpreter's own start-up waited for a CPU too
            clock = OwnClock(lambda pid=child.pid: process_tree(pid))
            for _ in range(12):
                time.sleep(0.25)
                clock.tick()
            child.kill()
            child.wait()
            own[name] = clock.own / clock.wall
    assert own["spin"] < 0.6, own  # at most a share of the cores, among 4 spinners per core
    assert own["sleep"] > 0.9, own
