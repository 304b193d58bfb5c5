"""The submitted-weights checks: the model the student trained, measured like a retrained one (docs/student-weights.md).

Each training check has a twin named `submitted_<name>` (e.g. `submitted_reconstruction_quality`): the same build,
parts, export, measure and judge, with one step changed. Where the training check trains the model with the kit's
recipe, its twin loads the weights the student submitted beside the notebook into the model the student's code
builds (with the recipe course.yaml names for submitted weights: the full one by default). The grader vets the file
first (`weights_file`: size, format, no code), and only HDF5 weights enter the student's worker. The exported parts
then go to the clean worker exactly as a retrained model's do, and are judged against that recipe's thresholds.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..base import REGISTRY
from ..student import model_part, plain_errors
from .base import Trained, TrainingCheck, read_arrays

PREFIX = "submitted_"
WEIGHTS_IN_WORKER = "submitted.weights.h5"  # the vetted weights, in the student's worker


class SubmittedWeights(TrainingCheck):
    """The twin of a training check: `train` loads the student's weights instead of training. Made by `twin`."""

    base_name: str = ""  # the training check this one is the twin of
    in_notebook = (
        "scored by the autograder, which loads the weights you submit beside the notebook (saved by the training "
        "section's last cell, or `autograder train`) into the model your code builds; `autograder check` tries it."
    )

    def probe(self, fn, *, recipe, data, export_dir, seed=0, weights=None):
        """Runs in the student's worker: build the model with the recipe, load the submitted weights into it (or
        into its published part, as the notebook saves it), export the parts as a retrained model's."""
        if weights is None:
            raise ValueError("no trained weights were given to the worker")
        x, y = read_arrays(data)  # a few images and labels: the builder's input shapes, nothing to train on
        args = self.builder_args(x=x, y=y, recipe=recipe, settings=self.settings(recipe), seed=int(seed))
        model = self.build(fn, args)
        with plain_errors():
            load_into(model if self.published is None else model_part(model, self.published), Path(weights), recipe)
            out = Path(export_dir)
            out.mkdir(parents=True, exist_ok=True)
            self.export(model, out)
        return {"export_dir": str(out), "train_loss": [], "history": {}, "train_seconds": 0.0, "train_images": 0}

    def train(self, model, *, x, y, recipe, seed) -> Trained:
        raise TypeError(f"{self.name} measures the weights the student submitted; it never trains")

    def train_assets(self, out_dir, **_):
        return []  # the training check it is the twin of makes the reference models

    def after_recipe(self, profile: str) -> str:
        return f" of the model you trained and submitted, against the thresholds of the kit's {profile} recipe."


def is_submitted(check) -> bool:
    return isinstance(check, SubmittedWeights)


def twin(base: TrainingCheck) -> SubmittedWeights:
    """The submitted-weights check of `base`: a subclass of both, so that everything but the probe is `base`'s."""
    cls = type(
        f"Submitted{type(base).__name__}",
        (SubmittedWeights, type(base)),
        {
            "name": PREFIX + base.name,
            "base_name": base.name,
            "label": f"the submitted trained model, measured as for {base.name}",
        },
    )
    return cls()


def register_twins() -> None:
    """Give every registered training check its submitted-weights twin (idempotent)."""
    for check in list(REGISTRY.values()):
        if isinstance(check, TrainingCheck) and not is_submitted(check) and PREFIX + check.name not in REGISTRY:
            REGISTRY[PREFIX + check.name] = twin(check)


# ----------------------------------------------------------------------------------------- loading, in the worker

_SHAPES = re.compile(r"variable\.shape=(\([^)]*\)), Received: value\.shape=(\([^)]*\))")
_PATH = re.compile(r"<Variable path=([^,>]+)")
_EXPECTED = re.compile(r"Layer '([^']+)' expected (\d+) variables?, but received (\d+)")


def load_into(model, path: Path, recipe: dict) -> None:
    """Load HDF5 weights into `model` (built by the student's code): by Keras' own `load_weights`, which reads only
    the arrays (an optimizer's state in the file is left out). Raises ValueError with a sentence that names what did
    not match: the first variable whose shape differs, a layer the file has no weights for, or a file that changed
    none of the model's weights."""
    import h5py
    import numpy as np

    try:
        with h5py.File(path, "r"):
            pass
    except (OSError, ValueError) as err:
        raise ValueError(f"the submitted weights could not be read as HDF5 ({err})") from None
    built = (
        f"the model your code builds with the course's recipe (latent_dim={recipe.get('latent_dim')}, "
        f"filters={list(recipe.get('filters', []))})"
    )
    before = [np.array(w) for w in model.weights]
    try:
        model.load_weights(str(path))
    except Exception as err:  # noqa: BLE001 - Keras says a mismatch in several ways; each becomes one sentence
        raise ValueError(f"the submitted weights do not fit {built}: {mismatch(str(err))}") from None
    after = [np.array(w) for w in model.weights]
    if before and all(np.array_equal(a, b) for a, b in zip(before, after)):
        raise ValueError(
            f"loading the submitted weights changed none of the weights of {built}: the file holds no weights for "
            "it (another model's, or an untrained one's)"
        )


def mismatch(text: str) -> str:
    """What Keras' loading error says did not match, in a few words (its message quotes whole arrays)."""
    shapes, where, expected = _SHAPES.search(text), _PATH.search(text), _EXPECTED.search(text)
    if shapes:
        place = f"{where.group(1)} " if where else ""
        return f"{place}has shape {shapes.group(1)} in your model and {shapes.group(2)} in the file"
    if expected:
        return f"layer '{expected.group(1)}' has {expected.group(2)} weight arrays, the file {expected.group(3)} for it"
    return text.strip().splitlines()[0][:300] if text.strip() else "Keras could not load them"
