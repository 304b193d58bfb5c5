"""Building the workers' plans: which cells and probes run, under which ids and time limits."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from ..checks import get
from ..checks.quality.submitted import WEIGHTS_IN_WORKER, is_submitted
from ..config import Profile
from ..items import ANSWER, MEASURE, PROBE, SETUP, Cell, ItemId, Probe
from ..notebook import CheckCall, Spec

SETUP_TIMEOUT_S = 120.0  # at least, for a setup cell (imports); answer cells and checks have the course's wall_s
TRAIN_DATA = "train.npz"  # the training subset, in the student's worker
TEST_DATA = "test.npz"  # the held-out subset, in the clean worker only
SUBMITTED_SHAPES = "submitted-shapes.npz"  # a few images of the submitted recipe's data: the builder's shapes
SUBMITTED_TEST = "submitted-test.npz"  # the submitted recipe's held-out subset, in the clean worker only
SHAPE_IMAGES = 8


def submitted(call: CheckCall) -> bool:
    """Whether `call` measures the weights the student submitted (a `SubmittedWeights` check), not a retraining."""
    return is_submitted(get(call.check))


def counted(spec: Spec, kinds: Iterable[str]) -> Spec:
    """`spec` without the test cells of the quality checks that do not count (`kinds`: course.yaml's `count`, of
    "retrain" and "submitted"): such a cell is neither run nor scored, and its points leave `max_score`."""
    kinds = set(kinds)
    training = {call.id for call in spec.training_calls}

    def counts(call: CheckCall) -> bool:
        return call.id not in training or ("submitted" if submitted(call) else "retrain") in kinds

    cells = tuple(c for c in spec.cells if c.kind != "test" or not c.calls or any(counts(x) for x in c.calls))
    return spec if len(cells) == len(spec.cells) else dataclasses.replace(spec, cells=cells)


def probe_id(run: str, call: CheckCall) -> ItemId:
    return ItemId(run, PROBE, call.id)


def measure_id(call: CheckCall) -> ItemId:
    return ItemId("clean", MEASURE, call.id)


def export_dir(call: CheckCall) -> str:
    """Where the student's worker saves a training check's models, relative to its scratch folder."""
    return f"export/{call.grade_id}"


def cells(spec: Spec, answers: dict[str, str], *, run: str, wall_s: float) -> list[Cell]:
    """The source's setup cells and the given answer cells, in the notebook's order."""
    out = []
    for cell in spec.cells:
        grade_id = cell.grade_id or ""  # a source cell without one: ItemId refuses the empty name
        if cell.kind == "setup":  # the course's own code: its time is TensorFlow's import on a busy machine
            out.append(Cell(ItemId(run, SETUP, grade_id), cell.code, max(wall_s, SETUP_TIMEOUT_S)))
        elif cell.kind == "answer" and grade_id in answers:
            out.append(Cell(ItemId(run, ANSWER, grade_id), answers[grade_id]))
    return out


def probes(
    spec: Spec,
    *,
    run: str,
    profile: Profile,
    seed: int,
    training: bool = True,
    only_training: bool = False,
    submitted_profile: Profile | None = None,
) -> list[Probe]:
    """One probe per run_check call of the source's test cells. A training check's probe trains the model with
    the profile's recipe and exports it; `training=False` leaves those out (the reference's expectations). A
    submitted-weights check's probe loads the submitted weights into the model built with `submitted_profile`'s
    recipe; without that profile (no usable weights file) it is left out, and the caller says why."""
    out, training_ids = [], {call.id for call in spec.training_calls}
    for call in spec.calls:  # in the notebook's order, whatever the kind: the worker runs them in this order
        trains = call.id in training_ids
        if (trains and not training) or (only_training and not trains):
            continue
        args, timeout = dict(call.args), None
        if trains and submitted(call):
            if submitted_profile is None:
                continue
            args.update(
                recipe=submitted_profile.recipe(),
                data=SUBMITTED_SHAPES,
                export_dir=export_dir(call),
                weights=WEIGHTS_IN_WORKER,
                seed=seed,
            )
        elif trains:
            args.update(recipe=profile.recipe(), data=TRAIN_DATA, export_dir=export_dir(call), seed=seed)
            timeout = profile.wall_s
        out.append(Probe(probe_id(run, call), call.check, call.function, args, timeout))
    return out
