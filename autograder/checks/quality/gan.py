"""The GAN assignment's training check (`gan_quality`): the notebook's `build_gan` (the student's losses and generator
block inside) trained with the kit's seeded recipe, then samples of the trained generator read by the reference digit
classifier of the VAE assignment (digits.py): the share it recognizes with confidence, and how many of the ten digits
those cover, so that a generator that draws one digit (mode collapse) loses marks and is told so.

A GAN is not trained by `fit` on one model: `build_gan` returns an object with a `generator` (a Keras model from a
code to an image) and `train_step(real_images, codes)`, which trains the discriminator and then the generator on
one batch (two compiled models, `train_on_batch`, on every Keras backend). The kit's recipe decides the batches, the
codes and their order, from the seed; only the generator is exported and measured.

Calibration's failure level includes the untrained generator: `train_assets` builds the GAN with the source
notebook's `build_gan`, which calibration hands it (the source's own setup and answer cells, run in the instructor's
calibrating process, never a submission), and measures its samples, without training, like a trained one's.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ...errors import KitError
from ...files import write_json
from ..base import Verdict, register
from ..messages import fmt_shape
from ..student import call_student, model_part
from .base import SourceBuilder, Trained, TrainingCheck, predict, require_inputs
from .digits import CLASSIFIER, SAMPLE_SETTINGS, sample_baselines, sample_metrics, train_digit_classifier

UNTRAINED_REPORT = "untrained_generator.json"
UNTRAINED = "untrained_generator"  # its name among the baselines


def gan_trainer(value, what: str):
    """What `build_gan` must return: an object with a Keras model `generator` and a method `train_step`."""
    import keras

    if not isinstance(getattr(value, "generator", None), keras.Model) or not callable(
        getattr(value, "train_step", None)
    ):
        raise TypeError(
            f"{what} returned a {type(value).__name__}, not a GAN with a Keras model `generator` and a "
            "method `train_step(real_images, codes)`"
        )
    return value


@register
class GANQuality(TrainingCheck):
    name = "gan_quality"
    label = "samples of the generator after the kit's training recipe, read by a reference digit classifier"
    dataset = "mnist"
    metrics = ("sample_recognizable", "sample_classes")
    higher_is_better = ("sample_recognizable", "sample_classes")
    assets = (CLASSIFIER,)
    parts = ("generator",)
    published = "generator"  # what the notebook loads as the course's trained generator
    reported_loss = "g_loss"
    param_factor = 10.0  # a generator that stores digits instead of drawing them is refused
    measured_on = {
        "sample_recognizable": "of the generator's samples",
        "sample_classes": "digits among the recognized samples",
    }
    model_kind, material = "a generator", "the digits"
    extra = dict(SAMPLE_SETTINGS)  # the VAE's names and meanings: one reference classifier serves both

    def builder_args(self, *, x, y, recipe, settings, seed):
        return {
            "latent_dim": int(recipe["latent_dim"]),
            "filters": tuple(recipe["filters"]),
            "learning_rate": float(recipe["learning_rate"]),
        }

    def build(self, fn, args):
        return call_student(fn, **args, returns=gan_trainer, what="build_gan")

    def train(self, model, *, x, y, recipe, seed):
        """Batch by batch, the GAN's own `train_step`: each pass goes over whole batches of a new seeded
        permutation, each batch with new codes."""
        batch, latent = int(recipe["batch_size"]), int(recipe["latent_dim"])
        rng = np.random.default_rng([int(seed), 23])
        history: dict[str, list[float]] = {}
        steps = len(x) // batch
        for _ in range(int(recipe["epochs"])):
            order = rng.permutation(len(x))
            totals: dict[str, float] = {}
            for i in range(steps):
                codes = rng.standard_normal((batch, latent)).astype("float32")
                losses = model.train_step(x[order[i * batch : (i + 1) * batch]], codes)
                for key, value in dict(losses or {}).items():
                    totals[str(key)] = totals.get(str(key), 0.0) + float(value)
            for key, total in totals.items():
                history.setdefault(key, []).append(total / max(steps, 1))
        return Trained(history, steps * batch * int(recipe["epochs"]))

    def measure(self, models, *, x, y, recipe, settings, assets):
        generator = models["generator"]
        samples = generated(generator, latent_dim=int(recipe["latent_dim"]), settings=settings)
        if samples.shape[1:] != x.shape[1:]:
            raise ValueError(
                f"the generator draws images of shape {fmt_shape(samples.shape[1:])}, expected {fmt_shape(x.shape[1:])}"
            )
        return sample_metrics(samples, self.load_asset(assets, CLASSIFIER), confidence=settings["confidence"])

    def judge(self, metrics, thresholds):
        """The thresholds' verdict; when the samples cover so few digits that their count is nearer the failure
        level than full marks, it names mode collapse."""
        verdict = super().judge(metrics, thresholds)
        classes, rule = metrics.get("sample_classes"), thresholds.metrics.get("sample_classes")
        if (
            verdict.passed
            or not isinstance(classes, float)
            or rule is None
            or classes >= (rule.threshold + rule.fail) / 2
        ):
            return verdict
        if classes == 0.0:
            words = " The classifier recognizes none of the samples as a digit."
        else:
            # What the samples show, named; why the generator collapsed (its loss, the discriminator's, the block)
            # the samples do not tell: the losses' own checks and the catalogue's mistakes do.
            words = (
                f" The recognized samples cover about {classes:.1f} of the ten digits: the generator draws few "
                "kinds of digit whatever the code (mode collapse)."
            )
        return Verdict(False, verdict.message + words, verdict.fraction)

    def baselines(self, test, *, assets):
        """Image sets without digit structure (digits.py) and the untrained generator, read by the reference
        classifier; the failure level is the best of them."""
        out = sample_baselines(assets)
        report = Path(assets) / UNTRAINED_REPORT
        try:
            untrained = json.loads(report.read_text())["metrics"]
        except (OSError, ValueError, KeyError, TypeError):
            raise KitError(
                f"the untrained generator's scores are not in {report}: run `autograder calibrate`, "
                "which measures them."
            ) from None
        for metric in self.metrics:
            out[metric] = {**out[metric], UNTRAINED: float(untrained[metric])}
        return out

    def train_assets(self, out_dir, *, train, test, recipe, seed, source_builder=None):
        """The reference digit classifier, then the untrained generator's scores under it. The classifier is the
        VAE's: a copy of reference_weights/vae/digit_classifier.keras in `out_dir` is kept, since its recorded
        settings are this check's (a fresh training with the same settings does not reproduce its weights).
        `source_builder` gives the source notebook's `build_gan`, which makes the untrained generator."""
        if source_builder is None:
            raise KitError(
                "the untrained generator is built with the source notebook's build_gan, which "
                "calibration hands to this check; none was given."
            )
        settings = self.settings(recipe)
        out = Path(out_dir)
        written = train_digit_classifier(out, test=test, settings=settings, seed=seed)
        written.append(
            self._measure_untrained(out, source_builder, test=test, recipe=recipe, settings=settings, seed=seed)
        )
        return written

    def _measure_untrained(self, out_dir: Path, source_builder: SourceBuilder, *, test, recipe, settings, seed) -> Path:
        import keras

        build_gan = source_builder()
        keras.utils.set_random_seed(int(seed))
        args = self.builder_args(x=test["x"], y=None, recipe=recipe, settings={}, seed=int(seed))
        generator = model_part(gan_trainer(build_gan(**args), "build_gan"), "generator")
        samples = generated(generator, latent_dim=int(recipe["latent_dim"]), settings=settings)
        classifier = keras.models.load_model(out_dir / CLASSIFIER, compile=False)  # the instructor's own file
        metrics = sample_metrics(samples, classifier, confidence=settings["confidence"])
        return write_json(
            out_dir / UNTRAINED_REPORT,
            {
                "about": "samples of the source notebook's generator before any training, read by the reference "
                "digit classifier: one of the sample metrics' baselines",
                "recipe": {k: recipe[k] for k in ("latent_dim", "filters", "learning_rate")},
                "seed": int(seed),
                "metrics": metrics,
            },
        )


def generated(generator, *, latent_dim: int, settings: dict) -> np.ndarray:
    """The generator's images for `prior_samples` seeded codes from N(0, I)."""
    require_inputs(generator, "generator", [(latent_dim,)], f"it must take a code of latent_dim={latent_dim} values")
    rng = np.random.default_rng([int(settings["prior_seed"]), latent_dim])
    codes = rng.standard_normal((int(settings["prior_samples"]), latent_dim)).astype("float32")
    return np.asarray(predict(generator, codes), dtype="float32")
