"""Grading through the Runner seam with a fake: scoring, diagnosis and findings from scripted worker outcomes, with
no worker process at all. The reference's and the mistakes' outcomes are the real ones (computed once by the session's
grader and cached), replayed; the student's are whatever each test scripts."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import SOLUTION

from autograder.grading import Grader, plans
from autograder.items import PROBE, REFERENCE, STUDENT, ItemId
from autograder.results import SANDBOX_UNAVAILABLE
from autograder.runner import Outcome, PlanRun

A = "autoencoder"


class ScriptedRunner:
    """Answers each item of a plan from `outcomes`; an item it has no answer for was 'not run'. Records the plans."""

    def __init__(self, outcomes: dict[ItemId, Outcome], *, deaths: list[str] = (), sandbox_error: str | None = None):
        self.outcomes, self.deaths, self.sandbox_error = outcomes, list(deaths), sandbox_error
        self.plans = []

    def run_plan(self, plan, *, workdir: Path, limits, hide, files=None, standby=None) -> PlanRun:
        self.plans.append(plan)
        if self.sandbox_error:
            return PlanRun({}, [], [], "", self.sandbox_error)
        answered = {
            item: self.outcomes.get(item, Outcome(False, error="not run: the worker stopped before it"))
            for item in plan.timeouts()
        }
        return PlanRun(answered, self.deaths, [], "", None)

    def standby(self, workdir, **settings):
        return None


@pytest.fixture(scope="module")
def recorded(grader):
    """Every item the reference and the catalogued mistakes gave, as the real workers computed them."""
    return grader.prepare().outcomes


def _as_student(recorded: dict[ItemId, Outcome], run: str) -> dict[ItemId, Outcome]:
    """The outcomes of `run` (the reference, or a mistake's id) as though the student's worker had given them."""
    return {ItemId(STUDENT, item.kind, item.name): out for item, out in recorded.items() if item.run == run}


def _grade(grader: Grader, runner: ScriptedRunner):
    fake = Grader.create(grader.course, A, profile="cpu", runner=runner)
    return fake.grade(SOLUTION, student="ada")


def _cells_ok(grader: Grader) -> dict[ItemId, Outcome]:
    """Every setup and answer cell of the student's worker ran without an error."""
    answers = {c.grade_id: c.code for c in grader.spec.answers}
    cells = plans.cells(grader.spec, answers, run=STUDENT, wall_s=grader.limits.wall_s)
    return {cell.id: Outcome(True) for cell in cells}


def test_the_references_outputs_pass_every_value_check_without_a_worker(grader, recorded):
    runner = ScriptedRunner({**_cells_ok(grader), **_as_student(recorded, REFERENCE)})
    result = _grade(grader, runner)
    values = [c for c in result.checks if c.check != "reconstruction_quality"]
    assert values and all(c.passed and c.score == c.max_score for c in values), [c.message for c in values]
    quality = next(c for c in result.checks if c.check == "reconstruction_quality")
    assert not quality.passed and quality.score == 0  # nothing trained: the fake gave no model to measure
    assert runner.plans and all(p.probes or p.cells for p in runner.plans)


def test_a_mistakes_outputs_fail_its_checks_and_name_the_mistake(grader, recorded):
    mistake = next(m for m in grader.mistakes if m.id == "encoder_valid_padding")
    runner = ScriptedRunner({**_cells_ok(grader), **_as_student(recorded, mistake.id)})
    result = _grade(grader, runner)
    failed = [c for c in result.checks if not c.passed and c.check != "reconstruction_quality"]
    assert failed and all(c.grade_id.startswith("encoder_block") for c in failed), [c.name for c in failed]
    assert any(c.diagnosis == mistake.says for c in failed)
    assert any("got output shape (12, 12, 16), expected (14, 14, 16)" in c.message for c in failed)


def test_a_dead_worker_and_an_error_on_a_hidden_input_become_findings_and_messages(grader, recorded):
    outcomes = {**_cells_ok(grader), **_as_student(recorded, REFERENCE)}
    hidden = next(c for c in grader.spec.calls if c.hidden and c.check == "block_output_shape")
    outcomes[ItemId(STUDENT, PROBE, hidden.id)] = Outcome(
        False,
        error="ValueError: negative dimension (7, -1) (line 3 of answer cell encoder_block)",
        raised="ValueError",
        where="line 3 of answer cell encoder_block",
    )
    runner = ScriptedRunner(outcomes, deaths=["Check x stopped the worker: killed by signal 9."])
    result = _grade(grader, runner)
    check = next(c for c in result.checks if c.name.startswith(hidden.grade_id) and not c.passed)
    assert "raised ValueError on a hidden input (line 3 of answer cell encoder_block)" in check.message
    assert "(7, -1)" not in check.message  # the hidden input's shape never reaches the student
    assert any("stopped the worker" in f.message for f in result.findings)


def test_a_sandbox_that_cannot_start_is_the_graders_fault(grader):
    result = _grade(grader, ScriptedRunner({}, sandbox_error="no user namespaces"))
    assert [f.kind for f in result.findings] == [SANDBOX_UNAVAILABLE] and result.score == 0
