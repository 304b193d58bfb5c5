"""The CVAE assignment's training check (`cvae_quality`): after the kit's training recipe, reconstruction of
held-out faces, and attribute control: each held-out face's code decoded with one attribute switched on and then
off, the attribute read back by the reference classifier (trained by `autograder calibrate cvae`), and the share
read as asked. A decoder that ignores its condition draws the same face both times, so it is read right exactly
once per pair: 0.5."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ...data import ATTRIBUTES
from ...errors import KitError
from ...files import atomic_path, write_json
from ..base import register
from ..conditioning import attribute_names
from .base import (
    TrainingCheck,
    blurred,
    fit_shuffled,
    mean_squared_error,
    predict,
    require_images,
    require_inputs,
    shape_of,
    trivial_reconstructions,
)
from .extra import ExtraSetting

CLASSIFIER = "attribute_classifier.keras"
CLASSIFIER_REPORT = "attribute_classifier.json"
# The share of blurred held-out faces that the reference classifier must read right, per controlled attribute,
# before calibration accepts it as a judge (decoded faces are blurry, so it is trained and tested on blur too).
CLASSIFIER_MIN_ACCURACY = 0.85


def build_classifier(image_size: int, n_attributes: int):
    """The reference attribute classifier: a small CNN of standard layers, so the clean worker loads it safely."""
    import keras
    from keras import layers

    inputs = keras.Input(shape=(image_size, image_size, 3), name="image")
    x = inputs
    for filters in (16, 32, 64):
        x = layers.Conv2D(filters, 3, activation="relu", padding="same")(x)
        x = layers.MaxPooling2D()(x)
    x = layers.Flatten()(x)
    x = layers.Dense(64, activation="relu")(x)
    outputs = layers.Dense(n_attributes, activation="sigmoid", name="attributes")(x)
    return keras.Model(inputs, outputs, name="attribute_classifier")


def controlled(settings: dict, names: list[str]) -> list[str]:
    """The attributes whose control is measured: `control_attributes` (default: all) among `names`."""
    wanted = settings.get("control_attributes") or names
    return [n for n in wanted if n in names]


def attribute_control(decoder, classifier, z_mean: np.ndarray, y: np.ndarray, settings: dict) -> dict[str, float]:
    """Per controlled attribute: the share of decodings read as asked, over the first `control_images` held-out
    codes, each decoded with the attribute switched on and with it switched off (the other attributes as they are).
    `settings` are the check's extra settings."""
    names = attribute_names(int(y.shape[1]))
    n = min(len(z_mean), int(settings["control_images"]))
    z, base = z_mean[:n], y[:n]
    shares = {}
    for name in controlled(settings, names):
        k = names.index(name)
        asked = []
        for value in (1.0, 0.0):
            attrs = base.copy()
            attrs[:, k] = value
            read = predict(classifier, predict(decoder, [z, attrs]))[:, k] > 0.5
            asked.append(read == bool(value))
        shares[name] = float(np.mean(np.concatenate(asked)))
    return shares


@register
class CVAEQuality(TrainingCheck):
    name = "cvae_quality"
    label = "reconstruction and attribute control after the kit's training recipe"
    dataset = "faces"
    metrics = ("test_mse", "attribute_control")
    higher_is_better = ("attribute_control",)
    assets = (CLASSIFIER,)
    param_factor = 10.0  # see TrainingCheck: a model that stores faces instead of compressing them is refused
    model_kind, material = "a CVAE", "the faces"
    load_hint = "build the conditioning from Dense, Reshape and Concatenate, without Lambda layers"
    extra = {
        "image_size": ExtraSetting(int, 64, "side of the square faces, in pixels (the data set and the classifier)"),
        "beta": ExtraSetting(float, 1.0, "weight of the KL term in the loss the model trains with"),
        "control_images": ExtraSetting(int, 200, "held-out codes decoded with each attribute on and off"),
        "control_attributes": ExtraSetting(
            list, None, "the attributes whose control is measured (default: all)", item=str, choices=tuple(ATTRIBUTES)
        ),
        "classifier_images": ExtraSetting(
            int, None, "the first training faces the reference classifier learns from (default: all of them)"
        ),
        "classifier_epochs": ExtraSetting(int, 3, "epochs of the reference classifier's training"),
    }

    def dataset_options(self, recipe: dict) -> dict:
        return {"image_size": int(self.settings(recipe)["image_size"])}

    def builder_args(self, *, x, y, recipe, settings, seed):
        return {
            "image_size": int(x.shape[1]),
            "n_attributes": int(y.shape[1]),
            "latent_dim": recipe["latent_dim"],
            "filters": tuple(recipe["filters"]),
            "beta": float(settings["beta"]),
        }

    def fit_data(self, x, y):
        return (x, y.astype("float32")), None  # the model's input is the pair (images, attributes)

    def measure(self, models, *, x, y, recipe, settings, assets):
        encoder, decoder = models["encoder"], models["decoder"]
        y = y.astype("float32")
        latent = int(recipe["latent_dim"])
        image_shape, n_attr = tuple(x.shape[1:]), int(y.shape[1])
        require_inputs(
            encoder, "encoder", [image_shape, (n_attr,)], f"it must take the images and their {n_attr} attributes"
        )
        require_inputs(
            decoder,
            "decoder",
            [(latent,), (n_attr,)],
            f"it must take a code of latent_dim={latent} values and the {n_attr} attributes",
        )
        codes = predict(encoder, [x, y])
        z_mean = np.asarray(codes[0] if isinstance(codes, (list, tuple)) else codes)
        if z_mean.shape != (len(x), latent):
            raise ValueError(
                f"the encoder's first output (z_mean) has shape {shape_of(z_mean)} per image; it must "
                f"be latent_dim={latent} values"
            )
        decoded = predict(decoder, [z_mean, y])
        require_images(decoded, x)
        control = attribute_control(decoder, self.load_asset(assets, CLASSIFIER), z_mean, y, settings)
        return {"test_mse": mean_squared_error(decoded, x), "attribute_control": float(np.mean(list(control.values())))}

    def baselines(self, test, *, assets):
        return {
            "test_mse": trivial_reconstructions(test["x"]),
            # The same face for "on" and "off" is read right once in each pair, whatever the classifier says.
            "attribute_control": {"decoder_ignores_condition": 0.5},
        }

    def train_assets(self, out_dir, *, train, test, recipe, seed, source_builder=None):
        """The reference attribute classifier, trained on the first `classifier_images` training faces (a prefix of
        the training split, the same in every profile, so that the profiles share one judge) and blurred copies
        of them, then checked on blurred held-out faces for each controlled attribute."""
        import keras

        keras.utils.set_random_seed(seed)
        settings = self.settings(recipe)
        n = len(train["x"]) if settings["classifier_images"] is None else int(settings["classifier_images"])
        x, y = train["x"][:n], train["y"][:n].astype("float32")
        size = int(x.shape[1])
        soft = [max(4, size // 2), max(4, (3 * size) // 8)]
        x_all = np.concatenate([x] + [blurred(x, s) for s in soft])
        y_all = np.concatenate([y] * (1 + len(soft)))
        classifier = build_classifier(size, int(y.shape[1]))
        classifier.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy")
        fit_shuffled(classifier, x_all, y_all, batch_size=64, epochs=int(settings["classifier_epochs"]), seed=seed)
        names = attribute_names(int(y.shape[1]))
        truth = test["y"] > 0.5
        report: dict[str, Any] = {"sharp": {}, "blurred": {}, "trained_on": int(len(x_all)), "blur_sizes": soft}
        for kind, images in (("sharp", test["x"]), ("blurred", blurred(test["x"], soft[0]))):
            read = predict(classifier, images) > 0.5
            report[kind] = {n: round(float(np.mean(read[:, i] == truth[:, i])), 4) for i, n in enumerate(names)}
        weak = [n for n in controlled(settings, names) if report["blurred"][n] < CLASSIFIER_MIN_ACCURACY]
        if weak:
            raise KitError(
                f"the reference attribute classifier reads {', '.join(weak)} right on fewer than "
                f"{CLASSIFIER_MIN_ACCURACY:.0%} of blurred held-out faces ({report['blurred']}); it cannot "
                "judge attribute control. Give the profile more training images, or leave those "
                "attributes out of extra.control_attributes."
            )
        out = Path(out_dir)
        with atomic_path(out / CLASSIFIER, suffix=".keras") as tmp:
            classifier.save(tmp)
        write_json(out / CLASSIFIER_REPORT, report)
        return [out / CLASSIFIER, out / CLASSIFIER_REPORT]
