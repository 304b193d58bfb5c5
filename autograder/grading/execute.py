"""Running a submission: its answer cells and every probe in the student's worker, then its trained models
measured in a clean worker that holds no student code and alone sees the held-out data."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..checks import TrainingCheck, training_check
from ..checks.quality.submitted import WEIGHTS_IN_WORKER
from ..checks.quality.weights_file import SubmittedWeights
from ..config import Profile
from ..hardware import UsedDevice
from ..items import ANSWER, SETUP, STUDENT, ItemId, Measure, Plan, Probe
from ..notebook import CheckCall, Spec
from ..runner import MAX_DEATHS, Outcome, PlanRun, Standby, unsafe_tree
from ..sandbox import Limits
from . import plans
from .data import training_data
from .diagnosis import exercised_cells
from .workers import Runner, SandboxRunner

MEASURE_TIMEOUT_S = 300.0


@dataclass
class StudentRun:
    """What the workers gave back for one submission."""

    outcomes: dict[ItemId, Outcome] = field(default_factory=dict)  # the student's worker, by item
    deaths: list[str] = field(default_factory=list)  # a sentence per worker that died
    killed: list[ItemId] = field(default_factory=list)  # the items that stopped a worker
    measured: dict[ItemId, Outcome] = field(default_factory=dict)  # the clean worker's measures, by item
    sandbox_error: str | None = None  # the sandbox could not be set up: nothing ran
    machine_busy: bool = False  # an item was stopped by the wall-clock backstop, held back by the machine's load
    device: UsedDevice | None = None  # the device the student's worker's backend said it computes on
    forked: bool = False  # the student's worker was forked from a fork server (launch.ForkServers)


@dataclass(frozen=True)
class Setting:
    """What a run needs besides the answers: the same for every submission of one grading."""

    spec: Spec
    profile: Profile
    limits: Limits
    hide: tuple[Path, ...]
    data: dict[str, Any]  # course.yaml's data settings
    seed: int  # the course's seed: it picks the data subsets and seeds the clean worker, whatever the run's seed
    backend: str  # the Keras backend of every worker
    reference_dir: Path  # the measuring models (assets), the same for every profile
    models_dir: Path  # the profile's reference models, whose size sets a training check's parameter budget
    budgets: bool = True  # False while calibrating: the reference models that set the budgets are being made
    runner: Runner = field(default_factory=SandboxRunner)  # the workers (a fake in tests of scoring)
    submitted: Profile | None = None  # the recipe submitted weights are measured with (course.yaml's choice)
    submitted_models_dir: Path | None = None  # that profile's reference models (the parameter budget)
    heldout_seed: int | None = None  # the seed of a submitted model's held-out set (None: `seed` + 1)

    def recipe_profile(self, call: CheckCall) -> Profile:
        """The profile whose recipe and held-out data a training call is measured with."""
        if plans.submitted(call):
            if self.submitted is None:
                raise ValueError("a submitted-weights check needs the profile course.yaml names for it")
            return self.submitted
        return self.profile


def run_student(
    setting: Setting,
    answers: dict[str, str],
    *,
    seed: int,
    hide: Sequence[Path] = (),
    keep: Path | None = None,
    only_training: bool = False,
    weights: SubmittedWeights | None = None,
) -> StudentRun:
    """Run answer cells (with the source's setup cells) and the probes in a worker, then measure the trained
    models in a clean worker. `keep` receives the exported models (calibration keeps the reference's). `weights`:
    what the grader found beside the notebook, for the submitted-weights checks (None: no such check runs)."""
    spec, profile = setting.spec, setting.profile
    usable = weights is not None and weights.usable and setting.submitted is not None
    plan = Plan(
        seed=seed,
        item_timeout_s=setting.limits.wall_s,
        backend=setting.backend,
        cells=plans.cells(spec, answers, run=STUDENT, wall_s=setting.limits.wall_s),
        probes=plans.probes(
            spec,
            run=STUDENT,
            profile=profile,
            seed=seed,
            only_training=only_training,
            submitted_profile=setting.submitted if usable else None,
        ),
    )
    training = spec.training_calls  # each has a probe in the plan, but a submitted one without usable weights
    retrain = [c for c in training if not plans.submitted(c)]
    loads = [c for c in training if plans.submitted(c)] if usable else []
    with (
        tempfile.TemporaryDirectory(prefix="autograder-student-") as tmp,
        tempfile.TemporaryDirectory(prefix="autograder-eval-") as clean,
        tempfile.TemporaryDirectory(prefix="autograder-weights-") as given,
    ):
        # The clean worker that will measure the trained models starts now, in its own empty folder: its Keras
        # import overlaps the student's run instead of following it (where the runner finds that safe).
        standby = (
            setting.runner.standby(
                Path(clean),
                backend=setting.backend,
                limits=setting.limits,
                hide=list(setting.hide),
                wait_s=plan.wall_s(),
                run_s=len(training) * MEASURE_TIMEOUT_S + 60.0,
            )
            if retrain or loads
            else None
        )
        try:
            files: dict[str, Any] = (
                {plans.TRAIN_DATA: training_data(spec, profile, "train", seed=setting.seed, data=setting.data)}
                if retrain
                else {}
            )
            if loads and weights is not None and weights.weights is not None and setting.submitted is not None:
                files[plans.SUBMITTED_SHAPES] = training_data(
                    spec, setting.submitted, "train", seed=setting.seed, data=setting.data, n=plans.SHAPE_IMAGES
                )
                # The bytes the grader vetted and hashed, from its own copy: the file beside the notebook may change.
                copy = Path(given) / WEIGHTS_IN_WORKER
                copy.write_bytes(weights.weights)
                files[WEIGHTS_IN_WORKER] = copy
            run = setting.runner.run_plan(
                plan, workdir=Path(tmp), limits=setting.limits, hide=[*setting.hide, *hide], files=files
            )
            if not run.sandbox_error:
                run = grade_the_rest(setting, plan, run, workdir=Path(tmp), hide=[*setting.hide, *hide], files=files)
            for call in training:  # a submitted-weights check that had nothing to load: the grader's own outcome
                if plans.submitted(call) and not loads:
                    run.outcomes[plans.probe_id(STUDENT, call)] = Outcome(False, error=no_weights(weights))
            measured, measured_busy = (
                measure(setting, Path(tmp), run.outcomes, clean=Path(clean), standby=standby)
                if not run.sandbox_error
                else ({}, False)
            )
            if keep is not None and (Path(tmp) / "export").is_dir():
                shutil.copytree(Path(tmp) / "export", keep, dirs_exist_ok=True)
        finally:
            if standby is not None:
                standby.close()
    return StudentRun(
        run.outcomes,
        run.deaths,
        run.killed,
        measured,
        run.sandbox_error,
        run.machine_busy or measured_busy,
        device=run.device,
        forked=run.forked,
    )


def grade_the_rest(
    setting: Setting, plan: Plan, run: PlanRun, *, workdir: Path, hide: list[Path], files: dict[str, Any]
) -> PlanRun:
    """The checks a worker never reached because its deaths hit the runner's limit (`MAX_DEATHS`), run in fresh
    workers rather than lost: one death should not cost unrelated answers. The checks are grouped by the answer cells
    they exercise, each group in a fresh worker of its own (every cell but those that stopped a worker, then the
    group's checks); a group that exercises a cell whose code or checks stopped a worker already is left as not run.
    Each fresh worker has the runner's own limit of deaths and there are at most as many as groups, so the grading
    still ends. Models that the fresh workers train are put where `measure` looks for them (`workdir`)."""
    if len(run.deaths) < MAX_DEATHS or not run.killed or any(k.kind == SETUP for k in run.killed):
        return run
    order = list(plan.timeouts())
    if run.killed[-1] not in order:
        return run
    # The runner runs the items in order, a new worker going on after the item that killed the last one: what
    # follows the last culprit was never reached.
    never = order[order.index(run.killed[-1]) + 1 :]
    reached = exercised_cells(setting.spec)
    blamed: set[str] = set()
    for item in run.killed:
        blamed |= {item.name} if item.kind == ANSWER else set(reached.get(item.name, ()))
    probes = {p.id: p for p in plan.probes}
    groups: dict[frozenset[str], list[Probe]] = {}
    for item in never:
        exercised = reached.get(item.name, frozenset())
        if item in probes and not exercised & blamed:
            groups.setdefault(exercised, []).append(probes[item])
    cells = [c for c in plan.cells if c.id not in run.killed]
    unreached_cells = [c.id for c in cells if c.id in never]
    outcomes = dict(run.outcomes)
    deaths, killed, busy = list(run.deaths), list(run.killed), run.machine_busy
    for group in groups.values():
        fresh = Plan(
            seed=plan.seed, item_timeout_s=plan.item_timeout_s, backend=plan.backend, cells=cells, probes=group
        )
        with tempfile.TemporaryDirectory(prefix="autograder-student-") as tmp:
            again = setting.runner.run_plan(fresh, workdir=Path(tmp), limits=setting.limits, hide=hide, files=files)
            if (Path(tmp) / "export").is_dir():
                shutil.copytree(Path(tmp) / "export", workdir / "export", dirs_exist_ok=True)
        if again.sandbox_error:
            break
        for item in [p.id for p in group] + unreached_cells:
            if item in again.outcomes:
                outcomes[item] = again.outcomes[item]
        unreached_cells = []
        deaths += again.deaths
        killed += again.killed
        busy |= again.machine_busy
    return dataclasses.replace(run, outcomes=outcomes, deaths=deaths, killed=killed, machine_busy=busy)


def measure(
    setting: Setting,
    workdir: Path,
    outcomes: dict[ItemId, Outcome],
    *,
    clean: Path | None = None,
    standby: Standby | None = None,
) -> tuple[dict[ItemId, Outcome], bool]:
    """Measure each model that a training probe exported under `workdir`, in a clean worker: `standby`, one
    already waiting in the empty folder `clean`, else a fresh one (in a folder of its own when `clean` is None).
    Returns the measures' outcomes, and whether the machine's load stopped the clean worker (`PlanRun.machine_busy`)."""
    measures: list[Measure] = []
    files: dict[str, Any] = {}  # a path in the worker's folder -> a file or folder to copy there, or arrays
    refused: dict[ItemId, Outcome] = {}
    for call in setting.spec.training_calls:
        check, out = training_check(call.check), outcomes.get(plans.probe_id(STUDENT, call))
        export = workdir / plans.export_dir(call)
        if out is None or not out.ok or not os.path.lexists(export):
            continue
        problem = unsafe_tree(export, within=workdir)
        if problem:  # a link to the reference model, a device, a disk filler: measure nothing
            refused[plans.measure_id(call)] = Outcome(False, error=f"the exported model was refused ({problem})")
            continue
        files[plans.export_dir(call)] = export
        profile = setting.recipe_profile(call)
        held_out, seed = plans.TEST_DATA, setting.seed
        if plans.submitted(call):  # a set the student could not train on: not the one the release can draw
            held_out, seed = (
                plans.SUBMITTED_TEST,
                setting.seed + 1 if setting.heldout_seed is None else setting.heldout_seed,
            )
        if held_out not in files:
            files[held_out] = training_data(setting.spec, profile, "test", seed=seed, data=setting.data)
        args: dict[str, Any] = {"data": held_out, "recipe": profile.recipe()}
        budget = param_budget(setting, call, check)
        if budget is not None:
            args["max_params"] = budget
        if check.assets:  # reference models the measure needs, copied in: the worker cannot read the course
            for name in check.assets:
                files[f"assets/{name}"] = setting.reference_dir / name
            args["assets"] = "assets"
        measures.append(Measure(plans.measure_id(call), call.check, plans.export_dir(call), args, MEASURE_TIMEOUT_S))
    if not measures:
        return refused, False
    plan = Plan(seed=setting.seed, item_timeout_s=MEASURE_TIMEOUT_S, backend=setting.backend, measures=measures)
    with contextlib.ExitStack() as stack:
        folder = clean or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="autograder-eval-")))
        run = setting.runner.run_plan(
            plan, workdir=folder, limits=setting.limits, hide=list(setting.hide), files=files, standby=standby
        )
    return {**run.outcomes, **refused}, run.machine_busy


def param_budget(setting: Setting, call: CheckCall, check: TrainingCheck) -> int | None:
    """`param_factor` times the parameters of the calibrated reference model (its published `.keras` files, read
    here without TensorFlow); None while calibrating, when those files are being made. A submitted model's budget
    is that of the reference the submitted profile calibrated (under its training check's grade_id)."""
    if not check.param_factor or not setting.budgets:
        return None
    folder, grade_ids = setting.models_dir, [call.grade_id]
    if plans.submitted(call):
        base = getattr(check, "base_name", "")
        folder = setting.submitted_models_dir or folder
        grade_ids = [c.grade_id for c in setting.spec.training_calls if c.check == base] or [base]
    for grade_id in grade_ids:
        files = sorted(folder.glob(f"{grade_id}.*.keras"))
        if files:
            return int(check.param_factor * sum(keras_file_params(f) for f in files))
    return None


def no_weights(weights: SubmittedWeights | None) -> str:
    """Why a submitted-weights check had nothing to measure, for its result."""
    if weights is None or weights.problem is None:
        return "no trained weights were given to the grader"
    return weights.problem


def keras_file_params(path: Path) -> int:
    """The number of values in a `.keras` file's weights (the instructor's own file: read with h5py, no Keras)."""
    import io
    import zipfile

    import h5py

    # "model.weights.h5" is Keras' own name for the weights inside every .keras archive, not a file of the course.
    with zipfile.ZipFile(path) as archive, archive.open("model.weights.h5") as fh:
        data = io.BytesIO(fh.read())
    sizes = []
    with h5py.File(data, "r") as h5:
        h5.visititems(lambda _, obj: sizes.append(obj.size) if isinstance(obj, h5py.Dataset) else None)
    return int(sum(sizes))
