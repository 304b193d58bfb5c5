"""Running a submission: its answer cells and every probe in the student's worker, then its trained models
measured in a clean worker that holds no student code and alone sees the held-out data."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..checks import TrainingCheck, training_check
from ..config import Profile
from ..items import STUDENT, ItemId, Measure, Plan
from ..notebook import Spec
from ..runner import Outcome, Standby, unsafe_tree
from ..sandbox import Limits
from . import plans
from .data import training_data
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


def run_student(
    setting: Setting,
    answers: dict[str, str],
    *,
    seed: int,
    hide: Sequence[Path] = (),
    keep: Path | None = None,
    only_training: bool = False,
) -> StudentRun:
    """Run answer cells (with the source's setup cells) and the probes in a worker, then measure the trained
    models in a clean worker. `keep` receives the exported models (calibration keeps the reference's)."""
    spec, profile = setting.spec, setting.profile
    plan = Plan(
        seed=seed,
        item_timeout_s=setting.limits.wall_s,
        backend=setting.backend,
        cells=plans.cells(spec, answers, run=STUDENT, wall_s=setting.limits.wall_s),
        probes=plans.probes(spec, run=STUDENT, profile=profile, seed=seed, only_training=only_training),
    )
    training = spec.training_calls  # each has a probe in the plan: run_student always trains
    with (
        tempfile.TemporaryDirectory(prefix="autograder-student-") as tmp,
        tempfile.TemporaryDirectory(prefix="autograder-eval-") as clean,
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
            if training
            else None
        )
        try:
            files = (
                {plans.TRAIN_DATA: training_data(spec, profile, "train", seed=setting.seed, data=setting.data)}
                if training
                else {}
            )
            run = setting.runner.run_plan(
                plan, workdir=Path(tmp), limits=setting.limits, hide=[*setting.hide, *hide], files=files
            )
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
        run.outcomes, run.deaths, run.killed, measured, run.sandbox_error, run.machine_busy or measured_busy
    )


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
        args: dict[str, Any] = {"data": plans.TEST_DATA, "recipe": setting.profile.recipe()}
        budget = param_budget(setting, call.grade_id, check)
        if budget is not None:
            args["max_params"] = budget
        if check.assets:  # reference models the measure needs, copied in: the worker cannot read the course
            for name in check.assets:
                files[f"assets/{name}"] = setting.reference_dir / name
            args["assets"] = "assets"
        measures.append(Measure(plans.measure_id(call), call.check, plans.export_dir(call), args, MEASURE_TIMEOUT_S))
    if not measures:
        return refused, False
    files[plans.TEST_DATA] = training_data(setting.spec, setting.profile, "test", seed=setting.seed, data=setting.data)
    plan = Plan(seed=setting.seed, item_timeout_s=MEASURE_TIMEOUT_S, backend=setting.backend, measures=measures)
    with contextlib.ExitStack() as stack:
        folder = clean or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="autograder-eval-")))
        run = setting.runner.run_plan(
            plan, workdir=folder, limits=setting.limits, hide=list(setting.hide), files=files, standby=standby
        )
    return {**run.outcomes, **refused}, run.machine_busy


def param_budget(setting: Setting, grade_id: str, check: TrainingCheck) -> int | None:
    """`param_factor` times the parameters of the calibrated reference model (its published `.keras` files, read
    here without TensorFlow); None while calibrating, when those files are being made."""
    if not check.param_factor or not setting.budgets:
        return None
    files = sorted(setting.models_dir.glob(f"{grade_id}.*.keras"))
    return int(check.param_factor * sum(keras_file_params(f) for f in files)) if files else None


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
