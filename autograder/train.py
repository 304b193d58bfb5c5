"""`autograder train NOTEBOOK`: train the notebook's model in a sandboxed worker with the recipe that course.yaml
names for submitted weights (the full one by default), and write the weights file beside the notebook, under the
name the grader looks for (`<assignment>.weights.h5`, docs/student-weights.md).

The worker runs the notebook's own set-up and answer cells (heavy cells never run), then the training check's
probe: the same build, seeded training and export that grading uses, so the file holds exactly what a retrained
model would export, seeded with a number drawn for this run (or `--seed`): a student who trains the reference
solution's code must not get the course's reference weights byte for byte, which `autograder report` flags as
handed in rather than trained (the reference is trained with the calibration's seeds). Inside a course folder the
recipe comes from course.yaml; elsewhere (a student's laptop) from
the recipe `autograder generate` records in the release notebook.
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .checks.quality.base import WEIGHTS
from .checks.quality.weights_file import file_names, read_weights
from .config import Course, Profile
from .errors import KitError
from .files import atomic_path
from .grading import plans
from .grading.data import training_data
from .items import ANSWER, PROBE, SETUP, STUDENT, Cell, ItemId, Plan, Probe
from .notebook import CheckCall, Spec, load_spec
from .runner import run_plan
from .runtime import choose_backend, students_backend
from .sandbox import Limits

# A student's machine has no course.yaml: a training worker there gets room for the full recipe's images.
STUDENT_LIMITS = Limits(wall_s=120.0, cpu_s=4 * 3600, memory_mb=8192)


@dataclass(frozen=True)
class Trained:
    path: Path  # the weights file written beside the notebook
    sha256: str
    profile: str
    seed: int  # the training's seed (the data are the course's, chosen with the course's seed)
    seconds: float
    images: int
    loss: float | None


def train_notebook(
    notebook: Path,
    *,
    course: Course | None,
    assignment: str | None = None,
    profile: str | None = None,
    seed: int | None = None,
    log=print,
) -> Trained:
    """Train `notebook`'s model with the recipe for submitted weights (or `profile`'s) and write its weights.
    `seed`: the training's seed (default: one drawn for this run)."""
    notebook = Path(notebook)
    name = assignment or notebook.stem
    if course is not None:
        settings = course.assignment(name)
        chosen = settings.profiles.get(profile or settings.submitted_profile)
        if chosen is None:
            raise KitError(f"'{profile}' is not a training profile of '{name}' ({', '.join(settings.profiles)}).")
        data_seed, data, limits = course.seed, course.data, Limits(**course.limits)
        backend = choose_backend(course.backend, None)
    else:
        from .selfcheck import recorded_recipe

        chosen = recorded_recipe(notebook)
        if chosen is None:
            raise KitError(
                f"{notebook} records no training recipe, and there is no course.yaml here: train the course's "
                "release notebook, or run this in the course folder with --assignment."
            )
        if profile and profile != chosen.name:
            raise KitError(f"{notebook} records the '{chosen.name}' recipe only; run without --profile.")
        data_seed, data, limits, backend = 0, {}, STUDENT_LIMITS, students_backend()
    training_seed = secrets.randbelow(2**31) if seed is None else seed
    spec = _spec(notebook, name)
    call = _training_call(spec, notebook)
    log(
        f"training {notebook.name}'s model with the '{chosen.name}' recipe ({_recipe_words(chosen)}) in a sandboxed "
        f"worker, seed {training_seed}; this takes minutes on a CPU"
    )
    plan = Plan(
        seed=training_seed,
        item_timeout_s=limits.wall_s,
        backend=backend,
        cells=[
            Cell(ItemId(STUDENT, SETUP if c.kind == "setup" else ANSWER, c.grade_id or ""), c.code)
            for c in spec.cells
            if c.kind in ("setup", "answer")
        ],
        probes=[
            Probe(
                ItemId(STUDENT, PROBE, call.id),
                call.check,
                call.function,
                dict(
                    call.args,
                    recipe=chosen.recipe(),
                    data=plans.TRAIN_DATA,
                    export_dir=plans.export_dir(call),
                    seed=training_seed,
                ),
                chosen.wall_s,
            )
        ],
    )
    files = {plans.TRAIN_DATA: training_data(spec, chosen, "train", seed=data_seed, data=data)}
    target = notebook.parent / file_names(name)[0]
    with tempfile.TemporaryDirectory(prefix="autograder-train-") as tmp:
        run = run_plan(plan, workdir=Path(tmp), limits=limits, hide=[notebook.resolve().parent], files=files)
        if run.sandbox_error:
            raise KitError(f"the training worker could not start: {run.sandbox_error}.")
        for cell in spec.answers:
            out = run.outcomes.get(ItemId(STUDENT, ANSWER, cell.grade_id or ""))
            if out is not None and not out.ok:
                log(f"! answer cell {cell.grade_id} failed: {out.error}")
        out = run.outcomes.get(ItemId(STUDENT, PROBE, call.id))
        if out is None or not out.ok:
            why = out.error if out is not None else "; ".join(run.deaths) or "it did not run"
            raise KitError(f"training failed: {call.function}: {why}")
        weights = Path(tmp) / plans.export_dir(call) / WEIGHTS
        if not weights.is_file() or weights.is_symlink():
            raise KitError("training ran but exported no weights file")
        with atomic_path(target) as part:  # an interrupted copy never replaces a file the student had
            shutil.copyfile(weights, part)
    vetted = read_weights(target)
    if not vetted.usable or vetted.sha256 is None:
        raise KitError(f"the weights written are not usable: {vetted.problem}")
    value = out.value if isinstance(out.value, dict) else {}
    losses = value.get("train_loss") or []
    return Trained(
        target,
        vetted.sha256,
        chosen.name,
        training_seed,
        float(value.get("train_seconds") or 0.0),
        int(value.get("train_images") or 0),
        float(losses[-1]) if losses else None,
    )


def _spec(notebook: Path, assignment: str) -> Spec:
    try:
        return load_spec(notebook, assignment)
    except KitError:
        raise
    except Exception as err:  # noqa: BLE001 - anything wrong with the file is the student's to fix
        raise KitError(f"{notebook} could not be read as a notebook ({type(err).__name__}: {err}).") from None


def _training_call(spec: Spec, notebook: Path) -> CheckCall:
    """The notebook's training check (the retraining one, whose probe builds, trains and exports)."""
    calls = [c for c in spec.training_calls if not plans.submitted(c)]
    if not calls:
        raise KitError(f"{notebook} has no training check (a run_check of a quality check): nothing to train.")
    return calls[0]


def _recipe_words(profile: Profile) -> str:
    return (
        f"{profile.epochs} epoch{'s' if profile.epochs != 1 else ''} over {profile.train_images:,} images in batches "
        f"of {profile.batch_size}, latent_dim {profile.latent_dim}, filters {list(profile.filters)}"
    )
