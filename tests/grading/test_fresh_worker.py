"""One death should not cost unrelated answers: once a submission's worker has died the runner's allowed number of
times, the checks it never reached run in fresh workers, grouped by the answer cells they exercise; those of a cell
whose checks stopped a worker stay "not run" (the limit still ends a grading that would never end).

A fake runner plays the real runner's rules (items in order; a new worker after each death runs every cell again,
skips the items that killed one and the checks that have an outcome; it gives up after MAX_DEATHS deaths), so the
tests need no worker process."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import copy_course, without_quality

from autograder.config import load_course
from autograder.grading import Grader, scoring
from autograder.items import ANSWER, PROBE, STUDENT, ItemId
from autograder.runner import MAX_DEATHS, Outcome, PlanRun

A = "autoencoder"
NOT_RUN = Outcome(False, error="not run: the worker stopped before it")


class DyingRunner:
    """Runs a plan by the real runner's rules; an item in `killers` stops its worker every time it runs."""

    def __init__(self, killers: set[ItemId]):
        self.killers = killers
        self.plans: list = []

    def run_plan(self, plan, *, workdir: Path, limits, hide, files=None, standby=None) -> PlanRun:
        self.plans.append(plan)
        items = list(plan.timeouts())
        outcomes: dict[ItemId, Outcome] = {}
        deaths: list[str] = []
        skip: list[ItemId] = []
        while True:
            died = None
            for item in items:
                if item in skip or (not item.is_cell and item in outcomes):
                    continue
                if item in self.killers:
                    died = item
                    break
                outcomes[item] = Outcome(True, value="ok")
            if died is None:
                break
            outcomes[died] = Outcome(False, error="killed by signal 9")
            deaths.append(f"{died.describe()} stopped the worker: killed by signal 9.")
            skip.append(died)
            if len(deaths) >= MAX_DEATHS:
                break
        for item in items:
            outcomes.setdefault(item, NOT_RUN)
        return PlanRun(outcomes, deaths, skip, "", None)

    def standby(self, workdir, **settings):
        return None


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    return load_course(copy_course(tmp_path_factory.mktemp("fresh")))


def run_with(course, killers: set[ItemId]):
    runner = DyingRunner(killers)
    grader = without_quality(Grader.create(course, A, profile="cpu", runner=runner))
    answers = {c.grade_id: c.code for c in grader.spec.answers}
    return grader, runner, grader.run_answers(answers, seed=course.seed)


def probes_of(grader, cell: str) -> list[ItemId]:
    return [ItemId(STUDENT, PROBE, call.id) for call in grader.spec.value_calls if call.grade_id.startswith(cell)]


def test_checks_never_reached_run_in_a_fresh_worker_and_the_killers_cell_stays_lost(course):
    grader, runner, run = run_with(course, set(probes_of(Grader.create(course, A, profile="cpu"), "encoder_block")))
    encoder, decoder = probes_of(grader, "encoder_block"), probes_of(grader, "decoder_block")
    assert len(encoder) > MAX_DEATHS and decoder  # the first worker dies on the encoder's checks alone
    # The unrelated decoder: graded in a fresh worker, all its checks, with every cell before them.
    assert all(run.outcomes[item].ok for item in decoder), {i: run.outcomes[i] for i in decoder}
    assert len(runner.plans) == 2
    fresh = runner.plans[1]
    assert [p.id for p in fresh.probes] == decoder
    assert [c.id for c in fresh.cells] == [c.id for c in runner.plans[0].cells]
    # The encoder's checks: those that killed a worker, and the rest of them, not run (no endless retries).
    assert run.killed == encoder[:MAX_DEATHS] and len(run.deaths) == MAX_DEATHS
    assert all(run.outcomes[item] == NOT_RUN for item in encoder[MAX_DEATHS:])
    kinds = {f.kind for f in scoring.findings(run.outcomes, deaths=run.deaths, killed=run.killed, sandbox_error=None)}
    assert "worker_stopped" in kinds


def test_a_fresh_worker_that_dies_too_has_its_own_limit(course):
    grader = without_quality(Grader.create(course, A, profile="cpu"))
    encoder, decoder = probes_of(grader, "encoder_block"), probes_of(grader, "decoder_block")
    grader, runner, run = run_with(course, set(encoder[:MAX_DEATHS]) | {decoder[0]})
    assert len(runner.plans) == 2  # the encoder's other checks are blamed; the decoder's get a worker
    assert run.outcomes[decoder[0]].ok is False and all(run.outcomes[i].ok for i in decoder[1:])
    assert run.killed == [*encoder[:MAX_DEATHS], decoder[0]] and len(run.deaths) == MAX_DEATHS + 1


def test_fewer_deaths_than_the_limit_change_nothing(course):
    grader = without_quality(Grader.create(course, A, profile="cpu"))
    encoder = probes_of(grader, "encoder_block")
    grader, runner, run = run_with(course, {encoder[0]})
    assert len(runner.plans) == 1 and run.killed == [encoder[0]]
    assert all(out.ok for item, out in run.outcomes.items() if item != encoder[0])


def test_an_answer_cell_that_kills_is_not_run_again(course):
    """A cell that stops its worker is left out of the fresh workers, and the checks of it are not retried."""
    grader = without_quality(Grader.create(course, A, profile="cpu"))
    decoder = probes_of(grader, "decoder_block")
    killers = {ItemId(STUDENT, ANSWER, "encoder_block"), *decoder[:3]}
    grader, runner, run = run_with(course, killers)
    assert len(run.deaths) == MAX_DEATHS
    # Everything was reached or blamed: the killers' cells are encoder_block and decoder_block.
    assert len(runner.plans) == 1


@pytest.mark.slow
def test_a_real_worker_killed_by_the_encoder_still_grades_the_decoder(course, tmp_path):
    """Real workers: define_encoder_block ends its process each time it is called. Its checks outnumber the
    runner's limit of deaths, so without a fresh worker the decoder's checks would be lost."""
    from conftest import SOLUTION, with_answer

    killer = "import os\n\ndef define_encoder_block(x, num_filters):\n    os._exit(1)\n"
    path = with_answer(SOLUTION, tmp_path / "killer.ipynb", "encoder_block", killer)
    grader = without_quality(Grader.create(course, A, profile="cpu"))
    result = grader.grade(path, student="killer")
    decoder = [c for c in result.checks if c.grade_id.startswith("decoder_block")]
    encoder = [c for c in result.checks if c.grade_id.startswith("encoder_block")]
    assert decoder and all(c.passed for c in decoder), [(c.name, c.message) for c in decoder]
    assert encoder and not any(c.passed for c in encoder)
    assert sum(f.kind == "worker_stopped" for f in result.findings) == MAX_DEATHS
