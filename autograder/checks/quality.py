"""Training-based quality checks.

The probe half runs in the student's worker: it rebuilds the model from the student's code with the notebook's
given builder, trains it with the kit's seeded recipe on the training subset the grader wrote, and saves the
encoder and decoder as `.keras` files. The evaluate half runs in a second, clean worker that holds no student
code: it loads those files with Keras' safe mode (standard layers only), checks that the bottleneck really is
`latent_dim` values wide, encodes the held-out images, decodes the codes alone, and measures. The held-out images
never enter the student's worker. The judge scores the metrics against `reference_weights/<a>/thresholds.json`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import Check, Verdict, register


def score_metric(value: float, *, threshold: float, fail: float, higher_is_better: bool) -> float:
    """Full credit at or beyond the threshold, none at or beyond the failure level, linear between."""
    if not np.isfinite(value):
        return 0.0
    if higher_is_better:
        value, threshold, fail = -value, -threshold, -fail
    if value <= threshold:
        return 1.0
    if value >= fail:
        return 0.0
    return float((fail - value) / (fail - threshold))


def _dataset(x, y, batch_size, *, shuffle_seed=None):
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((x, y))
    if shuffle_seed is not None:
        ds = ds.shuffle(len(x), seed=shuffle_seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).prefetch(2)


def _load(path: Path):
    import keras

    return keras.models.load_model(path, safe_mode=True, compile=False)


class QualityCheck(Check):
    """A training-based check: `probe` trains and exports (student worker), `evaluate` measures (clean worker),
    `judge` scores each of `metrics` against the calibrated thresholds. Subclasses say what they measure."""

    quality = True
    metrics: tuple[str, ...] = ()
    higher_is_better: tuple[str, ...] = ()  # the metrics among `metrics` where more is better
    # When set, `evaluate` gets `max_params` = this factor times the parameters of the calibrated reference model,
    # and refuses larger models: a model that stores the images (a lookup table of the training set, or of a
    # public test set) needs far more parameters than one that compresses them.
    param_factor: float | None = None
    # Where a metric is measured, for the message, when not on the held-out images (e.g. on samples from a prior).
    measured_on: dict[str, str] = {}

    def evaluate(self, export_dir, *, data, recipe, assets=None) -> dict:
        raise NotImplementedError

    def baselines(self, test: dict, *, assets) -> dict[str, dict[str, float]]:
        """Per metric, what trivial models score on the held-out set; the failure level is the best of them.
        `assets` is the folder where `train_assets` wrote the reference models that the measures use."""
        raise NotImplementedError

    def judge(self, got, expected, *, hidden):
        # `expected` is the profile's entry of thresholds.json: {"metrics": {"test_mse": {...}}, "profile": "cpu"}
        fractions, parts = [], []
        for metric in self.metrics:
            rule = expected["metrics"].get(metric)
            if rule is None:
                return Verdict(False, f"{metric} has no calibrated threshold; ask your instructor.", 0.0)
            value = got.get(metric)
            if not isinstance(value, float):
                return Verdict(False, f"{metric} could not be measured.", 0.0)
            frac = score_metric(value, threshold=rule["threshold"], fail=rule["fail"],
                                higher_is_better=rule["higher_is_better"])
            fractions.append(frac)
            better, worse = ("at or above", "at or below") if rule["higher_is_better"] else ("at or below", "at or above")
            where = self.measured_on.get(metric, "on held-out images")
            parts.append(f"{metric} {value:.4f} {where} (full marks {better} {rule['threshold']:.4f}, "
                         f"none {worse} {rule['fail']:.4f})")
        fraction = float(np.mean(fractions)) if fractions else 0.0
        message = "; ".join(parts) + f" after the kit's {expected['profile']} training recipe."
        return Verdict(fraction >= 1.0, message, fraction)


@register
class ReconstructionQuality(QualityCheck):
    name = "reconstruction_quality"
    label = "reconstruction quality after the kit's training recipe"
    dataset = "mnist"
    metrics = ("test_mse",)
    param_factor = 10.0

    def probe(self, fn, *, recipe, data, export_dir, seed=0):
        import keras

        with np.load(data, allow_pickle=False) as npz:
            x = npz["x"]
        autoencoder = fn(input_shape=x.shape[1:], latent_dim=recipe["latent_dim"], filters=tuple(recipe["filters"]))
        autoencoder.compile(optimizer=keras.optimizers.Adam(recipe["learning_rate"]), loss="binary_crossentropy")
        history = autoencoder.fit(_dataset(x, x, recipe["batch_size"], shuffle_seed=seed), epochs=recipe["epochs"],
                                  verbose=0)
        out = Path(export_dir)
        out.mkdir(parents=True, exist_ok=True)
        autoencoder.get_layer("encoder").save(out / "encoder.keras")
        autoencoder.get_layer("decoder").save(out / "decoder.keras")
        autoencoder.save_weights(out / "model.weights.h5")  # what calibration publishes for the notebook
        return {"train_loss": [float(v) for v in history.history["loss"]], "export_dir": str(out)}

    def evaluate(self, export_dir, *, data, recipe, assets=None, max_params=None):
        """Runs in the clean worker. Returns metrics, or raises with a sentence for the student."""
        with np.load(data, allow_pickle=False) as npz:
            x = npz["x"]
        encoder, decoder = _load(Path(export_dir) / "encoder.keras"), _load(Path(export_dir) / "decoder.keras")
        params = int(encoder.count_params()) + int(decoder.count_params())
        if max_params is not None and params > max_params:
            raise ValueError(f"the model has {params:,} parameters, more than {self.param_factor:g} times the "
                             f"reference model's: an autoencoder must compress the images, not store them")
        latent = int(recipe["latent_dim"])
        if tuple(decoder.input_shape[1:]) != (latent,):
            raise ValueError(f"the decoder takes inputs of shape {tuple(decoder.input_shape[1:])}; the bottleneck "
                             f"must be a vector of latent_dim={latent} values")
        codes = encoder.predict(x, batch_size=256, verbose=0)
        if codes.shape != (len(x), latent):
            raise ValueError(f"the encoder gives codes of shape {codes.shape[1:]} per image; the bottleneck must be "
                             f"latent_dim={latent} values")
        decoded = decoder.predict(codes, batch_size=256, verbose=0)
        if decoded.shape != x.shape:
            raise ValueError(f"the decoder gives images of shape {decoded.shape[1:]}, expected {x.shape[1:]}")
        return {"test_mse": float(np.mean((decoded.astype("float64") - x) ** 2))}

    def baselines(self, test: dict, *, assets) -> dict:
        """What trivial models score on the held-out set: a calibrated threshold must beat them by far."""
        x = test["x"].astype("float64")
        return {"test_mse": {"all_zeros": float(np.mean(x ** 2)),
                             "mean_image": float(np.mean((x - x.mean(axis=0)) ** 2))}}
