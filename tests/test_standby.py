"""The clean worker started ahead (`runner.Standby`): it runs the plan it is handed, stops when it is not needed,
is passed over when it is no longer waiting, and stays out of reach of the student's worker that runs meanwhile."""

from __future__ import annotations

import dataclasses
import json
import sys
import time

import pytest
from conftest import SOLUTION, cell, graded, notebook

from autograder.grading.workers import SandboxRunner
from autograder.items import ANSWER, Cell, ItemId, Plan
from autograder.runner import Standby, run_plan
from autograder.sandbox import Limits, fences

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the sandbox's fences are Linux-only")

LIMITS = Limits(wall_s=60, memory_mb=4096)


def small_plan(code: str = "x = 6 * 7\nx") -> Plan:
    return Plan(seed=0, item_timeout_s=30, cells=[Cell(ItemId("clean", ANSWER, "a"), code)])


def test_a_handed_plan_runs_in_the_waiting_worker(tmp_path):
    standby = Standby(tmp_path, backend="tensorflow", limits=LIMITS, hide=[], wait_s=120, run_s=60)
    time.sleep(1.0)  # it is importing Keras, or already waiting
    run = run_plan(small_plan(), workdir=tmp_path, limits=LIMITS, hide=[], standby=standby)
    standby.close()
    assert run.outcomes[ItemId("clean", ANSWER, "a")].ok
    assert run.deaths == [] and run.sandbox_error is None
    assert standby.log is not None and standby.log.finished  # the plan ran in the standby, not in a fresh worker
    assert not (tmp_path / "events-1.jsonl").exists()


def test_a_standby_not_needed_stops_at_once(tmp_path):
    standby = Standby(tmp_path, backend="tensorflow", limits=LIMITS, hide=[], wait_s=600, run_s=60)
    time.sleep(0.5)
    start = time.monotonic()
    standby.close()
    assert time.monotonic() - start < 15  # the cancel file, or the watch within about a second
    assert not standby._thread.is_alive()
    assert standby.result is not None and not standby.result.sandbox_failed


def test_a_standby_that_stopped_waiting_is_passed_over(tmp_path):
    standby = Standby(tmp_path, backend="tensorflow", limits=LIMITS, hide=[], wait_s=0.1, run_s=60)
    standby._thread.join(timeout=120)  # gave up waiting: it has ended
    run = run_plan(small_plan(), workdir=tmp_path, limits=LIMITS, hide=[], standby=standby)
    assert run.outcomes[ItemId("clean", ANSWER, "a")].ok and run.deaths == []
    assert standby.log is None  # nothing was handed over: a fresh worker ran the plan


# A student's worker that looks, for its whole life, for the clean worker's folder and plants a plan there whose
# cell would forge the measurement (a perfect test error). Were it found, the standby would run the forged plan.
PLANT = r'''
import glob as _glob, json as _json, os as _os, tempfile as _tempfile, threading as _threading, time as _time

_FORGER = """import json, time
while 'evaluations' not in open('plan.json').read():  # the grader's own plan has come: answer for it
    time.sleep(0.01)
item = 'clean|measure:reconstruction_quality/0'
with open('events-0.jsonl', 'a') as fh:
    for event in ({'start': item}, {'done': item, 'value': {'test_mse': 1e-9}}, {'finished': True}):
        fh.write(json.dumps(event) + '\\n')
"""

def _plant():
    forged = {"seed": 0, "item_timeout_s": 60, "events": "forged.jsonl",
              "cells": [{"id": "clean|answer:x", "ns": "clean", "code": _FORGER}]}
    roots = {"/tmp", "/var/tmp", "/dev/shm", _tempfile.gettempdir(), _os.environ.get("TMPDIR", "/tmp")}
    while True:
        for root in roots:
            for folder in _glob.glob(_os.path.join(root, "autograder-eval-*")):
                try:
                    with open(_os.path.join(folder, "plan.json"), "x") as fh:
                        fh.write(_json.dumps(forged))
                except OSError:
                    pass
        _time.sleep(0.05)

_threading.Thread(target=_plant, daemon=True).start()
'''


def test_the_students_worker_cannot_plant_a_plan_for_the_waiting_clean_worker(grader, tmp_path):
    if not fences().get("mount_namespace"):
        pytest.skip("no mount namespace here: the grader starts no clean worker ahead (the test has no target)")
    honest = graded(grader, SOLUTION)
    nb = notebook(SOLUTION)
    answer = cell(nb, "encoder_block")
    answer["source"] = PLANT + "".join(answer["source"])
    path = tmp_path / "planted.ipynb"
    path.write_text(json.dumps(nb))
    hostile = graded(grader, path)

    def quality(result):
        return [
            (t["score"], t["output"])
            for t in result["tests"]
            if t["extra_data"]["grade_id"] == "reconstruction_quality"
        ]

    assert quality(hostile) == quality(honest)  # measured, not forged: the same model gives the same error
    assert hostile["score"] == honest["score"] == grader.spec.max_score


def test_the_clean_worker_is_not_started_ahead_without_a_mount_namespace(grader, monkeypatch):
    """Without a private /tmp the student's worker could reach the waiting worker's folder: none is started."""
    from autograder.grading import workers

    started = []
    monkeypatch.setattr(workers, "fences", lambda: dict(fences(), mount_namespace=False))
    monkeypatch.setattr(workers, "Standby", lambda *a, **k: started.append(1))
    result = graded(grader, SOLUTION)
    assert started == [] and result["score"] == grader.spec.max_score


class _NoStandby(SandboxRunner):
    """The sandboxed workers, with the clean one started after the student's instead of ahead."""

    def standby(self, workdir, **settings):
        return None


def test_results_are_the_same_with_the_clean_worker_started_ahead_or_after(grader):
    ahead = graded(grader, SOLUTION)
    after = graded(dataclasses.replace(grader, runner=_NoStandby()), SOLUTION)
    for result in (ahead, after):
        result.pop("execution_time", None)
        result.get("extra_data", {}).pop("timestamp", None)
    assert json.dumps(ahead["tests"], sort_keys=True) == json.dumps(after["tests"], sort_keys=True)
