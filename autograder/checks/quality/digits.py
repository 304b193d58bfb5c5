"""The reference digit classifier that reads the VAE's samples from the prior, and what it reads in them.

`autograder calibrate vae` trains it (on MNIST's training split, never on the held-out subset) with blurred
copies, since decoded digits are soft; it is kept while its settings stay the same, so that every profile and
every recalibration keeps one judge. Its report holds what it reads in image sets without digit structure: those
are the sample metrics' baselines.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import KitError
from ...files import atomic_path, write_json
from .base import blurred, fit_shuffled, predict
from .extra import ExtraSetting

CLASSIFIER = "digit_classifier.keras"
CLASSIFIER_REPORT = "digit_classifier.json"

CLASSIFIER_MIN_ACCURACY = 0.95  # on held-out digits, before calibration accepts the classifier as a judge
CLASSIFIER_VERSION = 1  # bump when build_classifier or its training changes: calibration then trains a new one
BLUR_SIZE = 14  # the classifier also learns digits shrunk to 14x14 and enlarged back
MAX_CLASS_SHARE = 0.15  # of the prior samples, the most that one digit class may count for as recognizable

# The profile's `extra:` settings of every check whose samples this classifier reads (the VAE's, the GAN's): one
# reference classifier serves them all, so they share the names and the meanings.
SAMPLE_SETTINGS = {
    "prior_samples": ExtraSetting(
        int, 1000, "codes drawn from N(0, I), turned into images by the model and read by the classifier"
    ),
    "prior_seed": ExtraSetting(int, 0, "seed of those codes"),
    "confidence": ExtraSetting(
        float, 0.9, "the classifier's probability for one digit that makes a sample recognizable"
    ),
    "classifier_images": ExtraSetting(
        int, 60000, "MNIST training digits (and as many blurred copies) for the reference classifier"
    ),
    "classifier_epochs": ExtraSetting(int, 2, "epochs of the reference classifier's training"),
}


def build_classifier():
    """A small CNN of standard layers, so the clean worker loads it in safe mode."""
    import keras
    from keras import layers

    inputs = keras.Input(shape=(28, 28, 1), name="image")
    x = inputs
    for filters in (16, 32):
        x = layers.Conv2D(filters, 3, activation="relu", padding="same")(x)
        x = layers.MaxPooling2D()(x)
    x = layers.Flatten()(x)
    x = layers.Dropout(0.3)(x)
    x = layers.Dense(64, activation="relu")(x)
    outputs = layers.Dense(10, activation="softmax", name="digit")(x)
    return keras.Model(inputs, outputs, name="digit_classifier")


def sample_metrics(images: np.ndarray, classifier, *, confidence: float) -> dict[str, float]:
    """What the reference classifier reads in a set of images.

    - sample_recognizable: the share of images it assigns to one digit with probability at least `confidence`,
      where no digit counts for more than MAX_CLASS_SHARE of the images (so a decoder that draws one blob the
      classifier takes for an 8, or only ones, cannot score high);
    - sample_classes: the effective number of digit classes among the recognized images (exp of the entropy of
      their class histogram: 10 when all digits are equally common, 1 when all are the same, 0 if none).
    """
    p = np.asarray(predict(classifier, np.asarray(images, dtype="float32")), dtype="float64")
    sure = p.max(axis=1) >= confidence
    counts = np.bincount(p.argmax(axis=1)[sure], minlength=p.shape[1]).astype("float64")
    recognizable = float(np.sum(np.minimum(counts, MAX_CLASS_SHARE * len(p))) / len(p))
    classes = 0.0
    if counts.sum():
        h = counts[counts > 0] / counts.sum()
        classes = float(np.exp(-np.sum(h * np.log(h))))
    return {"sample_recognizable": recognizable, "sample_classes": classes}


def sample_baselines(out_dir) -> dict:
    """The sample metrics' baselines that `train_digit_classifier` measured, from its report in `out_dir`."""
    report = Path(out_dir) / CLASSIFIER_REPORT
    try:
        return dict(json.loads(report.read_text())["sample_baselines"])
    except (OSError, ValueError, KeyError, TypeError):
        raise KitError(
            f"the sample baselines are not in {report}: run `autograder calibrate vae`, which "
            "trains the reference classifier and measures them."
        ) from None


def train_digit_classifier(out_dir, *, test: dict, settings: dict, seed: int) -> list[Path]:
    """Train (or reuse) the classifier in `out_dir`, check it on held-out digits, and measure in its report what
    it reads in trivial image sets. `settings` are the VAE check's extra settings."""
    out = Path(out_dir)
    trained = {
        "classifier_images": int(settings["classifier_images"]),
        "classifier_epochs": int(settings["classifier_epochs"]),
        "seed": int(seed),
        "blur_size": BLUR_SIZE,
        "version": CLASSIFIER_VERSION,
    }
    report_file = out / CLASSIFIER_REPORT
    if (
        (out / CLASSIFIER).is_file()
        and report_file.is_file()
        and json.loads(report_file.read_text()).get("settings") == trained
    ):
        import keras

        classifier = keras.models.load_model(out / CLASSIFIER, compile=False)  # the instructor's own file
    else:
        classifier = _train(trained)
        with atomic_path(out / CLASSIFIER, suffix=".keras") as tmp:
            classifier.save(tmp)
    report: dict[str, Any] = {"settings": trained, "trained_on": 2 * trained["classifier_images"]}
    for kind, images in (("sharp", test["x"]), ("blurred", blurred(test["x"], BLUR_SIZE))):
        read = predict(classifier, images).argmax(axis=1)
        report[f"accuracy_{kind}"] = round(float(np.mean(read == test["y"])), 4)
    if report["accuracy_sharp"] < CLASSIFIER_MIN_ACCURACY:
        raise KitError(
            f"the reference digit classifier reads only {report['accuracy_sharp']:.1%} of held-out "
            f"digits right (at least {CLASSIFIER_MIN_ACCURACY:.0%} needed to judge samples); give "
            "extra.classifier_images or classifier_epochs more."
        )
    rng = np.random.default_rng([seed, 9])
    n_samples = int(settings["prior_samples"])
    xt = test["x"].astype("float64")
    picks = xt[rng.integers(0, len(xt), n_samples)]
    mean = xt.mean(axis=0)
    sets = {
        "mean_image": np.repeat(mean[None], n_samples, axis=0),
        "independent_pixels": (rng.random((n_samples, *mean.shape)) < mean).astype("float64"),
        "shuffled_pixels": np.stack([rng.permutation(p.ravel()).reshape(p.shape) for p in picks]),
        "uniform_noise": rng.random((n_samples, *mean.shape)),
    }
    confidence = settings["confidence"]
    per_set = {name: sample_metrics(images, classifier, confidence=confidence) for name, images in sets.items()}
    report["sample_baselines"] = {
        m: {name: values[m] for name, values in per_set.items()} for m in ("sample_recognizable", "sample_classes")
    }
    report["test_images"] = sample_metrics(test["x"], classifier, confidence=confidence)
    write_json(report_file, report)
    return [out / CLASSIFIER, report_file]


def _train(settings: dict):
    import keras

    from ...data import load_mnist

    keras.utils.set_random_seed(settings["seed"])
    (x_all, y_all), _ = load_mnist()
    order = np.random.default_rng([settings["seed"], 5]).permutation(len(x_all))[: settings["classifier_images"]]
    x, y = x_all[order], y_all[order]
    classifier = build_classifier()
    classifier.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    fit_shuffled(
        classifier,
        np.concatenate([x, blurred(x, settings["blur_size"])]),
        np.concatenate([y, y]),
        batch_size=64,
        epochs=settings["classifier_epochs"],
        seed=settings["seed"],
    )
    return classifier
