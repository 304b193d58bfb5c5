"""A sandbox that cannot be set up is the grader's fault, known by data (never by searching a sentence)."""

from __future__ import annotations

import pytest

import autograder.runner as runner
from autograder.grading.scoring import findings
from autograder.items import ANSWER, STUDENT, Cell, ItemId, Plan
from autograder.results import SANDBOX_UNAVAILABLE
from autograder.sandbox import Limits, ProcessOutcome, fences, run_limited


def test_a_cgroup_that_cannot_be_made_is_a_sandbox_failure(tmp_path, monkeypatch):
    if not (fences().get("cgroup_memory") or fences().get("cgroup_pids")):
        pytest.skip("no cgroup fence on this machine")
    from autograder.sandbox import cgroups

    def refuse(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(cgroups._Cgroup, "create", refuse)
    out = run_limited(["/bin/true"], cwd=tmp_path, env={"PATH": "/usr/bin:/bin"}, limits=Limits(wall_s=10))
    assert out.sandbox_failed and out.returncode is None
    monkeypatch.undo()
    assert not run_limited(
        ["/bin/true"], cwd=tmp_path, env={"PATH": "/usr/bin:/bin"}, limits=Limits(wall_s=10)
    ).sandbox_failed


def test_the_plan_run_and_the_findings_carry_it(tmp_path, monkeypatch):
    sentence = "the grader could not set up its sandbox (cgroup gone); this is not a problem with your code"
    monkeypatch.setattr(
        runner, "run_limited", lambda *a, **k: ProcessOutcome(None, None, False, 0.0, sentence, "", sandbox_failed=True)
    )
    plan = Plan(seed=0, item_timeout_s=5, cells=[Cell(ItemId(STUDENT, ANSWER, "enc"), "x = 1")])
    run = runner.run_plan(plan, workdir=tmp_path, limits=Limits(), hide=[])
    assert run.sandbox_error == sentence and run.deaths == []
    got = findings(run.outcomes, deaths=run.deaths, killed=run.killed, sandbox_error=run.sandbox_error)
    assert [f.kind for f in got] == [SANDBOX_UNAVAILABLE] and got[0].grader_fault
