"""`autograder check NOTEBOOK`: the student's self-check.

It needs nothing but the student's own notebook and the kit: the notebook's setup and answer cells run in a
limited worker (as in grading), and each public check is judged against the `expected=` value written in its
test cell. What the autograder runs besides is only counted, by kind: the release notebook carries the counts
(`autograder generate` writes them from the source, whose hidden checks the release does not hold).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from . import checks
from .checks.quality.submitted import WEIGHTS_IN_WORKER, is_submitted
from .checks.quality.weights_file import SubmittedWeights, find_weights
from .config import Course, Profile
from .errors import KitError
from .items import ANSWER, MEASURE, PROBE, SETUP, STUDENT, Cell, ItemId, Measure, Plan, Probe
from .notebook import CheckCall, Spec, load_spec
from .runner import run_plan
from .runtime import students_backend
from .sandbox import Limits

# The kinds of check the autograder runs beyond the public ones, in the order the self-check names them, with what
# each kind is to a student.
UNSEEN_KINDS = {
    "hidden": "hidden (the public checks' properties on inputs you do not see)",
    "structure": "on structure (the kinds, order and settings of your layers, and their parameter count)",
    "training": "training (your model retrained with the course's recipe and measured against thresholds)",
    "submitted": "on your trained model (the weights you submit, measured on held-out data against thresholds)",
}
METADATA_KEY = "autograder"  # the release notebook's metadata entry that holds the counts


def public_calls(spec: Spec) -> list[CheckCall]:
    """The checks a student can run themselves: value checks that show their `expected=` value."""
    return [call for call in spec.value_calls if call.expected is not None]


def unseen_counts(spec: Spec) -> dict[str, int]:
    """How many checks of each kind the autograder runs beyond the public checks of `spec` (the source notebook)."""
    counts = dict.fromkeys(UNSEEN_KINDS, 0)
    for call in spec.value_calls:
        if call.expected is None:
            counts["structure" if checks.value_check(call.check).structural else "hidden"] += 1
    submitted = [c for c in spec.training_calls if is_submitted(checks.get(c.check))]
    counts["training"] = len(spec.training_calls) - len(submitted)
    counts["submitted"] = len(submitted)
    return counts


def release_metadata(spec: Spec, course: Course, assignment: str) -> dict[str, Any]:
    """What `autograder generate` records in a release notebook's metadata: the counts of unseen checks, and the
    recipe of submitted weights, which `autograder train` and `autograder check` use on a machine without the
    course (a student's)."""
    from .grading.plans import counted

    settings = course.assignment(assignment)
    spec = counted(spec, settings.count)  # the checks that count: a quality check that does not is not run either
    entry: dict[str, Any] = {"unseen_checks": unseen_counts(spec)}
    if any(is_submitted(checks.get(c.check)) for c in spec.training_calls):
        entry["submitted"] = {"profile": settings.submitted_profile, "recipe": settings.submitted.recipe()}
    return entry


def recorded_recipe(path: Path) -> Profile | None:
    """The recipe of submitted weights that a release notebook records (`release_metadata`), or None."""
    metadata = _notebook_metadata(path)
    entry = metadata.get(METADATA_KEY) if isinstance(metadata, dict) else None
    submitted = entry.get("submitted") if isinstance(entry, dict) else None
    recipe = submitted.get("recipe") if isinstance(submitted, dict) else None
    if not isinstance(recipe, dict):
        return None
    try:
        return Profile(**dict(recipe, filters=tuple(int(f) for f in recipe["filters"])))
    except (TypeError, KeyError, ValueError):
        return None


def _recorded_counts(metadata: Any) -> dict[str, int] | None:
    """The counts `autograder generate` wrote into a release notebook, when they are there and well formed."""
    entry = metadata.get(METADATA_KEY) if isinstance(metadata, dict) else None
    counts = entry.get("unseen_checks") if isinstance(entry, dict) else None
    if not (
        isinstance(counts, dict)
        and set(counts) <= set(UNSEEN_KINDS)
        and all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in counts.values())
    ):
        return None
    return {kind: counts.get(kind, 0) for kind in UNSEEN_KINDS}


def unseen_sentence(counts: dict[str, int]) -> str:
    """'11 more checks are run by the autograder: 4 hidden (...), 6 on structure (...), 1 training (...).'"""
    total = sum(counts.values())
    if not total:
        return "The autograder runs no other checks."
    parts = [f"{n} {UNSEEN_KINDS[kind]}" for kind, n in counts.items() if n]
    return (
        f"{total} more check{'s are' if total > 1 else ' is'} run by the autograder, not here: "
        + "; ".join(parts)
        + "."
    )


def self_check(path: Path, *, log=print, limits: Limits | None = None) -> bool:
    try:
        spec = load_spec(path, path.stem)
    except KitError:
        raise
    except Exception as err:  # noqa: BLE001 - anything wrong with the file is the student's to fix
        raise KitError(
            f"{path} could not be read as a notebook ({type(err).__name__}: {err}); save it from Jupyter again."
        ) from None
    public = public_calls(spec)
    if not spec.answers or not public:
        raise KitError(f"{path} has no answer cells or no public checks: check a notebook from the course.")
    trained = _trained_model(path, spec)
    # The student's own backend, as their notebook's set-up cell picks it (autograder.quiet).
    plan = Plan(
        seed=0,
        item_timeout_s=60.0,
        backend=students_backend(),
        cells=[
            Cell(ItemId(STUDENT, SETUP if c.kind == "setup" else ANSWER, c.grade_id or ""), c.code)
            for c in spec.cells
            if c.kind in ("setup", "answer")
        ],
        probes=[Probe(ItemId(STUDENT, PROBE, call.id), call.check, call.function, dict(call.args)) for call in public]
        + trained.probes(),
    )
    limits = limits or Limits()
    with tempfile.TemporaryDirectory(prefix="autograder-check-") as tmp:
        run = run_plan(plan, workdir=Path(tmp), limits=limits, hide=[path.resolve().parent], files=trained.files(tmp))
        lines = trained.report(run, Path(tmp), limits=limits, hide=[path.resolve().parent])
    if run.sandbox_error:
        raise KitError(f"the self-check could not start its worker: {run.sandbox_error}.")
    for death in run.deaths:
        log(f"! {death}")
    for cell in spec.answers:
        out = run.outcomes.get(ItemId(STUDENT, ANSWER, cell.grade_id or ""))
        if out is not None and not out.ok:
            log(f"! answer cell {cell.grade_id} failed: {out.error}")
    passed = 0
    for call in public:
        out = run.outcomes[ItemId(STUDENT, PROBE, call.id)]
        if not out.ok:
            log(f"FAIL {call.id} {call.check}: {call.function}: {out.error}")
            continue
        verdict = checks.value_check(call.check).judge(out.value, call.expected, hidden=False)
        passed += verdict.passed
        log(f"{'ok  ' if verdict.passed else 'FAIL'} {call.id} {call.check}: {call.function}: {verdict.message}")
    for line in lines:
        log(line)
    counts = _recorded_counts(_notebook_metadata(path)) or unseen_counts(spec)
    log(f"\n{passed} of {len(public)} public checks passed. {unseen_sentence(counts)}")
    return passed == len(public)


def _notebook_metadata(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("metadata")
    except (OSError, ValueError, AttributeError):
        return None


# ------------------------------------------------------------------------------------------ the trained model

PUBLIC_SEED = 0  # the data a student has: MNIST's public test split, the faces the notebook draws by default


class _TrainedModel:
    """The self-check of the weights file beside the notebook: found and vetted as the grader does, loaded into
    the student's model in the worker (its probe), then measured in a second worker on the public test split when
    the measure needs no reference model of the course."""

    def __init__(self, path: Path, spec: Spec):
        calls = [c for c in spec.training_calls if is_submitted(checks.get(c.check))]
        self.spec, self.assignment = spec, spec.assignment
        self.recipe = (recorded_recipe(path) or _course_recipe(path, spec.assignment)) if calls else None
        self.calls = calls if self.recipe is not None else []  # no recipe recorded: the course does not count it
        self.weights: SubmittedWeights | None = find_weights(path.parent, spec.assignment) if self.calls else None

    @property
    def loads(self) -> bool:
        return bool(self.calls) and self.recipe is not None and self.weights is not None and self.weights.usable

    def probes(self) -> list[Probe]:
        from .grading import plans

        if not self.loads or self.recipe is None:
            return []
        return [
            Probe(
                ItemId(STUDENT, PROBE, call.id),
                call.check,
                call.function,
                dict(
                    call.args,
                    recipe=self.recipe.recipe(),
                    data=plans.SUBMITTED_SHAPES,
                    export_dir=plans.export_dir(call),
                    weights=WEIGHTS_IN_WORKER,
                    seed=PUBLIC_SEED,
                ),
            )
            for call in self.calls
        ]

    def files(self, tmp: str) -> dict[str, Any]:
        from .grading import plans
        from .grading.data import training_data

        if not self.loads or self.recipe is None or self.weights is None or self.weights.weights is None:
            return {}
        copy = Path(tmp).with_name(Path(tmp).name + "-weights.h5")  # beside the worker's folder, removed below
        copy.write_bytes(self.weights.weights)
        self._copy = copy
        shapes = training_data(self.spec, self.recipe, "train", seed=PUBLIC_SEED, data={}, n=plans.SHAPE_IMAGES)
        return {plans.SUBMITTED_SHAPES: shapes, WEIGHTS_IN_WORKER: copy}

    def report(self, run, workdir: Path, *, limits: Limits, hide: list[Path]) -> list[str]:
        if not self.calls or self.recipe is None:
            return []
        copy = getattr(self, "_copy", None)
        if copy is not None:
            copy.unlink(missing_ok=True)
        weights = self.weights
        if weights is None or not weights.usable:
            return [f"\nFAIL trained weights: {weights.problem if weights else 'not looked for'}."]
        lines = [
            f"\nok   trained weights: {weights.name} is there ({weights.size / 1e6:.1f} MB, sha256 {weights.sha256})."
        ]
        for call in self.calls:
            out = run.outcomes.get(ItemId(STUDENT, PROBE, call.id))
            if out is None or not out.ok:
                lines.append(f"FAIL {call.id} {call.check}: {call.function}: {out.error if out else 'not run'}")
                continue
            lines.append(
                f"ok   {call.id} {call.check}: the weights load into the model {call.function} builds with the "
                f"'{self.recipe.name}' recipe, as the grader will load them."
            )
            lines.append(self._measure(call, workdir, limits=limits, hide=hide))
        return lines

    def _measure(self, call: CheckCall, workdir: Path, *, limits: Limits, hide: list[Path]) -> str:
        from .grading import plans
        from .grading.data import training_data

        check = checks.training_check(call.check)
        if check.assets or self.recipe is None:
            return (
                "     its quality is measured by the grader only: the measure needs the course's reference "
                "classifier, which is not published."
            )
        test = training_data(self.spec, self.recipe, "test", seed=PUBLIC_SEED, data={})
        plan = Plan(
            seed=PUBLIC_SEED,
            item_timeout_s=300.0,
            backend=students_backend(),
            measures=[
                Measure(
                    ItemId("clean", MEASURE, call.id),
                    call.check,
                    plans.export_dir(call),
                    {"data": plans.TEST_DATA, "recipe": self.recipe.recipe()},
                )
            ],
        )
        with tempfile.TemporaryDirectory(prefix="autograder-check-measure-") as tmp:
            run = run_plan(
                plan,
                workdir=Path(tmp),
                limits=limits,
                hide=hide,
                files={plans.export_dir(call): workdir / plans.export_dir(call), plans.TEST_DATA: test},
            )
        out = run.outcomes.get(ItemId("clean", MEASURE, call.id))
        if out is None or not out.ok or not isinstance(out.value, dict):
            return f"     its quality could not be measured: {out.error if out else 'the measure did not run'}."
        values = ", ".join(f"{k} {float(v):.4f}" for k, v in out.value.items() if isinstance(v, (int, float)))
        return (
            f"     on the public test split ({self.recipe.test_images:,} images the notebook can load): {values}. "
            "The grader measures it on held-out data against the recipe's thresholds."
        )


def _trained_model(path: Path, spec: Spec) -> _TrainedModel:
    return _TrainedModel(path, spec)


def _course_recipe(path: Path, assignment: str) -> Profile | None:
    """The recipe of submitted weights from the course folder this is run in (an instructor's), else None."""
    from .config import load_course

    try:
        settings = load_course().assignment(assignment)
    except KitError:
        return None
    return settings.submitted if "submitted" in settings.count else None
