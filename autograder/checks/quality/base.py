"""The training check: its own kind of check, with one path from the student's builder to a score.

- `probe` runs in the student's worker: `build` calls the notebook's given builder (student code inside), `train`
  trains the model with the kit's seeded recipe on the training subset the grader wrote, and `export` saves each
  of `parts` (encoder, decoder) as a `.keras` file, with the published model's weights beside them.
- `evaluate` runs in a second, clean worker that holds no student code: it loads those files with Keras' safe
  mode (standard layers only), refuses a model far larger than the reference (`param_factor`), and hands the
  loaded parts to `measure`. The held-out data never enters the student's worker.
- `judge` runs in the grader: each of `metrics` against the profile's calibrated `Thresholds`, with partial credit.
- `train_assets` runs in calibration, in the instructor's process: the reference models a measure needs (a
  classifier). Calibration hands it what it needs from the course: the assets' folder and the source notebook's
  builder.

A training check says only what is particular to it:
    name, label, dataset, metrics            what it is, what it trains on, what it measures
    builder_args(x, y, recipe, settings, seed) -> the keyword arguments of the notebook's builder
    measure(models, x, y, recipe, settings, assets) -> {metric: value}; raises ValueError with a sentence for
                                             the student when the model has the wrong form
    baselines(test, assets)                  per metric, what trivial models score (calibration's failure level)
and, where the defaults do not fit: `extra` (the course.yaml settings it reads), `dataset_options` (e.g. the
image size of the subset the grader writes), `fit_data` (what `fit` trains on; the images alone by default),
`loss` (None: the model computes its own), `build` and `train` (a model that `fit` cannot train, such as a
GAN's two), `parts`, `published`, `assets` with `train_assets`, `higher_is_better`, `param_factor`,
`measured_on`, and the words `model_kind`, `material` and `load_hint` of its refusals.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from ..base import CheckBase, Verdict
from ..messages import fmt_shape
from ..student import call_student, keras_model, model_part, plain_errors
from .extra import ExtraSetting, read_extra
from .thresholds import Thresholds, score_metric

WEIGHTS = "model.weights.h5"  # the published model's weights: what calibration publishes for the notebook
PREDICT_BATCH = 256
# The source notebook's builder of a training check, as calibration hands it over: a call runs the source's setup
# and answer cells in the calibrating process and returns the builder, so only a check that needs it pays for it.
SourceBuilder = Callable[[], Callable[..., Any]]


class Trained(NamedTuple):
    """What `train` reports: the history (per loss, one value per pass) and how many images it went through."""

    history: dict[str, list[float]]
    images: int


# ----------------------------------------------------------------------------------------- shared helpers


def fit_shuffled(model, inputs, targets, *, batch_size: int, epochs: int, seed: int) -> dict[str, list[float]]:
    """`model.fit` on NumPy arrays, each pass over the rows in the order of the next permutation drawn from
    `np.random.default_rng(seed)`, so one seed trains on the same batches in the same order on TensorFlow, JAX
    and PyTorch. `inputs` may be a tuple of arrays (a model with several inputs); `targets` None for a model whose
    own loss needs nothing else. Returns the history, one value per pass. Plain arrays, not a `PyDataset`: Keras
    feeds them without a Python call per batch (the same batches, and as fast as a bare `fit`)."""
    rng = np.random.default_rng(seed)
    rows = len(inputs[0] if isinstance(inputs, tuple) else inputs)
    history: dict[str, list[float]] = {}
    for _ in range(int(epochs)):
        order = rng.permutation(rows)
        x = tuple(a[order] for a in inputs) if isinstance(inputs, tuple) else inputs[order]
        y = None if targets is None else targets[order]
        run = model.fit(x, y, batch_size=int(batch_size), epochs=1, shuffle=False, verbose=0)
        for key, values in run.history.items():
            history.setdefault(key, []).extend(float(v) for v in values)
    return history


def load_safely(path: Path):
    """A `.keras` file loaded in Keras' safe mode: standard layers only, no code from the file runs."""
    import keras

    return keras.models.load_model(path, safe_mode=True, compile=False)


def read_arrays(path) -> tuple[np.ndarray, np.ndarray | None]:
    """The images `x` and, when the file has them, the labels or attributes `y` of a subset the grader wrote."""
    with np.load(path, allow_pickle=False) as npz:
        return npz["x"], (npz["y"] if "y" in npz.files else None)


def input_shapes(model) -> list[tuple]:
    """A model's input shapes, one per input, each without the batch dimension."""
    shape = model.input_shape
    shapes = shape if isinstance(shape, list) or (shape and isinstance(shape[0], (tuple, list))) else [shape]
    return [tuple(s[1:]) for s in shapes]


def shapes_of(shapes: list[tuple]) -> str:
    """Input shapes as messages write them: (16,) or (16,), (8,)."""
    return ", ".join(fmt_shape(s) for s in shapes)


def shape_of(array) -> str:
    """An array's shape per example (without the batch dimension), as messages write it; a model's several
    outputs one after the other."""
    if isinstance(array, (list, tuple)):
        return " and ".join(shape_of(a) for a in array)
    return fmt_shape(np.shape(array)[1:])


def require_inputs(model, part: str, shapes: list[tuple], rule: str) -> None:
    """Refuse a loaded `part` (encoder, decoder) whose inputs are not `shapes`; `rule` says what they must be."""
    found = input_shapes(model)
    if found != shapes:
        raise ValueError(f"the {part} takes inputs of shape{'s' if len(found) > 1 else ''} {shapes_of(found)}; {rule}")


def require_images(decoded, x: np.ndarray) -> None:
    """Refuse decoded images whose shape is not the held-out images'."""
    if np.shape(decoded) != x.shape:
        raise ValueError(f"the decoder gives images of shape {shape_of(decoded)}, expected {shape_of(x)}")


def predict(model, inputs) -> Any:
    return model.predict(inputs, batch_size=PREDICT_BATCH, verbose=0)


def encode_decode(encoder, decoder, inputs, images: np.ndarray, *, code_shape: tuple, rule: str) -> np.ndarray:
    """The decoder's images of the encoder's codes of `inputs` (the decoder sees the codes alone). Codes that are
    not `code_shape` per image are refused with a sentence that ends with `rule`; the images must be shaped like
    `images`."""
    codes = predict(encoder, inputs)
    if np.shape(codes) != (len(images), *code_shape):
        raise ValueError(f"the encoder gives codes of shape {shape_of(codes)} per image; {rule}")
    decoded = predict(decoder, codes)
    require_images(decoded, images)
    return decoded


def blurred(x: np.ndarray, size: int) -> np.ndarray:
    """Images shrunk to `size` pixels (bilinear, antialiased) and enlarged back (bilinear): the softness of a
    short-trained decoder's output."""
    from keras import ops

    full = tuple(int(s) for s in x.shape[1:3])
    small = ops.image.resize(x, (size, size), interpolation="bilinear", antialias=True)
    return ops.convert_to_numpy(ops.image.resize(small, full, interpolation="bilinear")).astype("float32")


def mean_squared_error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean((np.asarray(a, dtype="float64") - b) ** 2))


def trivial_reconstructions(x: np.ndarray) -> dict[str, float]:
    """What a model that ignores its input scores on reconstruction: all zeros, and the mean image."""
    x = x.astype("float64")
    return {"all_zeros": float(np.mean(x**2)), "mean_image": float(np.mean((x - x.mean(axis=0)) ** 2))}


# ----------------------------------------------------------------------------------------- the base


class TrainingCheck(CheckBase):
    """A check that trains the student's model: scored by what a clean worker measures, against thresholds."""

    dataset: str = ""  # the data set the grader subsets for training and held-out testing
    assets: tuple[str, ...] = ()  # files in reference_weights/<a>/ that `evaluate` needs (e.g. a classifier)
    metrics: tuple[str, ...] = ()
    higher_is_better: tuple[str, ...] = ()  # the metrics among `metrics` where more is better
    # When set, `evaluate` gets `max_params` = this factor times the parameters of the calibrated reference model,
    # and refuses larger models: a model that stores the images (a lookup table of the training set, or of a
    # public test set) needs far more parameters than one that compresses them.
    param_factor: float | None = None
    # Where a metric is measured, for the message, when not on the held-out images (e.g. on samples from a prior).
    measured_on: dict[str, str] = {}
    extra: dict[str, ExtraSetting] = {}  # the profile's `extra:` settings this check reads (see extra.py)
    parts: tuple[str, ...] = ("encoder", "decoder")  # the sub-models exported, loaded and measured
    published: str | None = None  # the part whose weights the notebook loads; None: the whole model
    reported_loss: str = "loss"  # the history entry that the probe reports as `train_loss`
    loss: str | None = None  # the loss `compile` gets; None where the model computes its own (compute_loss)
    model_kind: str = "an autoencoder"  # for refusals: "an autoencoder must compress the images, not store them"
    material: str = "the images"
    load_hint: str = ""  # added to the sentence when an export cannot be loaded in safe mode
    in_notebook: str = "scored by the autograder, which trains your model with the kit's fixed recipe."

    # ------------------------------------------------------------------ what a training check says

    def builder_args(self, *, x: np.ndarray, y, recipe: dict, settings: dict, seed: int) -> dict:
        raise NotImplementedError

    def fit_data(self, x: np.ndarray, y) -> tuple[Any, Any]:
        """What `fit` trains on, as (inputs, targets): by default the images alone, for a model whose own loss
        (`compute_loss`) needs nothing else. A check whose model takes more inputs, or learns targets, says so."""
        return x, None

    def measure(
        self, models: dict, *, x: np.ndarray, y, recipe: dict, settings: dict, assets: Path | None
    ) -> dict[str, float]:
        raise NotImplementedError

    def baselines(self, test: dict, *, assets) -> dict[str, dict[str, float]]:
        """Per metric, what trivial models score on the held-out set; the failure level is the best of them.
        `assets` is the folder where `train_assets` wrote the reference models that the measures use."""
        raise NotImplementedError

    def dataset_options(self, recipe: dict) -> dict:
        """Keyword arguments for the grader's subset of `dataset` besides its size and seed (e.g. image_size)."""
        return {}

    def train_assets(
        self,
        out_dir: Path,
        *,
        train: dict,
        test: dict,
        recipe: dict,
        seed: int,
        source_builder: SourceBuilder | None = None,
    ) -> list[Path]:
        """Calibration hook (runs in the instructor's process): train and save `assets` into `out_dir`, return
        the paths written. `source_builder` gives the source notebook's builder of this check, for a check whose
        assets are measured on the source's own model. Training checks that measure with a reference model (a
        classifier) override it."""
        return []

    # ------------------------------------------------------------------ the student's worker

    def settings(self, recipe: dict) -> dict[str, Any]:
        """Every `extra` setting this check declares: the profile's value, else the declared default. Keys that
        other training checks read are left out."""
        return read_extra(recipe.get("extra"), self.extra, where="extra", unknown=True)

    def probe(self, fn, *, recipe, data, export_dir, seed=0):
        """Runs in the student's worker: build, train, export. Errors are the student's (Keras' wrapping removed)."""
        x, y = read_arrays(data)
        args = self.builder_args(x=x, y=y, recipe=recipe, settings=self.settings(recipe), seed=int(seed))
        model = self.build(fn, args)
        with plain_errors():  # the student's layers (and loss, for a VAE) run inside training
            start = time.perf_counter()
            trained = self.train(model, x=x, y=y, recipe=recipe, seed=int(seed))
            train_seconds = time.perf_counter() - start
            out = Path(export_dir)
            out.mkdir(parents=True, exist_ok=True)
            self.export(model, out)
        # The wall time of training alone and the images it went through, for the grader's images per second.
        return {
            "train_loss": trained.history.get(self.reported_loss, []),
            "history": trained.history,
            "export_dir": str(out),
            "train_seconds": float(train_seconds),
            "train_images": int(trained.images),
        }

    def build(self, fn, args: dict):
        """The notebook's builder called with `args` (student code inside): the model that `train` trains."""
        return call_student(fn, **args, returns=keras_model)

    def train(self, model, *, x: np.ndarray, y, recipe: dict, seed: int) -> Trained:
        """The kit's recipe: Adam at the recipe's learning rate on `loss`, then `fit` on `fit_data`, each pass over
        a new seeded permutation of the rows. A model that `fit` cannot train overrides it."""
        import keras

        model.compile(
            optimizer=keras.optimizers.Adam(recipe["learning_rate"]), **({"loss": self.loss} if self.loss else {})
        )
        inputs, targets = self.fit_data(x, y)
        history = fit_shuffled(
            model, inputs, targets, batch_size=recipe["batch_size"], epochs=recipe["epochs"], seed=seed
        )
        return Trained(history, int(len(x)) * int(recipe["epochs"]))

    def export(self, model, out: Path) -> None:
        """Each of `parts` as a `.keras` file, and the published model's weights (what the notebook loads)."""
        for name in self.parts:
            model_part(model, name).save(out / f"{name}.keras")
        (model if self.published is None else model_part(model, self.published)).save_weights(out / WEIGHTS)

    # ------------------------------------------------------------------ the clean worker

    def evaluate(self, export_dir, *, data, recipe, assets=None, max_params=None) -> dict[str, float]:
        """Runs in the clean worker. Returns the metrics, or raises with a sentence for the student."""
        x, y = read_arrays(data)
        models = self.load_export(Path(export_dir))
        params = sum(int(m.count_params()) for m in models.values())
        if max_params is not None and params > max_params:
            raise ValueError(
                f"the model has {params:,} parameters, more than {self.param_factor:g} times the "
                f"reference model's: {self.model_kind} must compress {self.material}, not store them"
            )
        return self.measure(
            models,
            x=x,
            y=y,
            recipe=recipe,
            settings=self.settings(recipe),
            assets=None if assets is None else Path(assets),
        )

    def load_export(self, export: Path) -> dict:
        try:
            return {name: load_safely(export / f"{name}.keras") for name in self.parts}
        except Exception as err:  # noqa: BLE001 - any failure to load is the same sentence for the student
            raise ValueError(
                f"the {' or '.join(self.parts)} could not be loaded with standard Keras layers only "
                f"({err})" + (f"; {self.load_hint}" if self.load_hint else "")
            ) from None

    def load_asset(self, assets: Path | None, name: str):
        """A reference model that calibration trained (a classifier), copied into the clean worker."""
        if assets is None:
            raise ValueError(f"the reference model {name} was not given to the measure")
        return load_safely(Path(assets) / name)

    # ------------------------------------------------------------------ the grader

    def judge(self, metrics: dict[str, Any], thresholds: Thresholds) -> Verdict:
        """The measured `metrics` against the profile's `thresholds`: the mean of each metric's partial credit."""
        fractions, parts = [], []
        for metric in self.metrics:
            rule = thresholds.metrics.get(metric)
            if rule is None:
                return Verdict(False, f"{metric} has no calibrated threshold; ask your instructor.", 0.0)
            value = metrics.get(metric)
            if not isinstance(value, float):
                return Verdict(False, f"{metric} could not be measured.", 0.0)
            frac = score_metric(value, threshold=rule.threshold, fail=rule.fail, higher_is_better=rule.higher_is_better)
            fractions.append(frac)
            better, worse = "at or above", "at or below"
            if not rule.higher_is_better:
                better, worse = worse, better
            where = self.measured_on.get(metric, "on held-out images")
            parts.append(
                f"{metric} {value:.4f} {where} (full marks {better} {rule.threshold:.4f}, none {worse} {rule.fail:.4f})"
            )
        fraction = float(np.mean(fractions)) if fractions else 0.0
        message = "; ".join(parts) + self.after_recipe(thresholds.profile)
        return Verdict(fraction >= 1.0, message, fraction)

    def after_recipe(self, profile: str) -> str:
        """How the verdict ends: what was measured (a submitted model's check says so)."""
        return f" after the kit's {profile} training recipe."
