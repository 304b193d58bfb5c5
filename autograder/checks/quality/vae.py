"""The VAE assignment's training check (`vae_quality`): the notebook's `build_vae` retrained with the kit's recipe,
measured in the clean worker on reconstruction and KL of held-out digits, and on samples from the prior as read by
the reference digit classifier (digits.py), which `autograder calibrate vae` trains."""

from __future__ import annotations

import numpy as np

from ..base import register
from .base import (
    TrainingCheck,
    mean_squared_error,
    predict,
    require_images,
    require_inputs,
    shape_of,
    trivial_reconstructions,
)
from .digits import CLASSIFIER, SAMPLE_SETTINGS, sample_baselines, sample_metrics, train_digit_classifier
from .extra import ExtraSetting


def _bce_per_image(x: np.ndarray, p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-7, 1 - 1e-7)
    return -np.sum(x * np.log(p) + (1 - x) * np.log(1 - p), axis=tuple(range(1, x.ndim)))


@register
class VAEQuality(TrainingCheck):
    name = "vae_quality"
    label = "reconstruction, KL and samples from the prior after the kit's training recipe"
    dataset = "mnist"
    metrics = ("reconstruction_mse", "kl", "sample_recognizable", "sample_classes")
    higher_is_better = ("sample_recognizable", "sample_classes")
    assets = (CLASSIFIER,)
    param_factor = 10.0  # see TrainingCheck: a model that stores digits instead of compressing them is refused
    measured_on = {
        "kl": "nats per held-out image",
        "sample_recognizable": "of the samples from the prior",
        "sample_classes": "among the recognized samples from the prior",
    }
    model_kind, material = "a VAE", "the digits"
    extra = {
        "beta": ExtraSetting(float, 1.0, "weight of the KL term in the loss the model trains with"),
        **SAMPLE_SETTINGS,
    }

    def builder_args(self, *, x, y, recipe, settings, seed):
        return {
            "input_shape": tuple(x.shape[1:]),
            "latent_dim": int(recipe["latent_dim"]),
            "filters": tuple(recipe["filters"]),
            "beta": float(settings["beta"]),
            "seed": int(seed),
        }

    def measure(self, models, *, x, y, recipe, settings, assets):
        encoder, decoder = models["encoder"], models["decoder"]
        latent = int(recipe["latent_dim"])
        require_inputs(decoder, "decoder", [(latent,)], f"it must take a code of latent_dim={latent} values")
        codes = predict(encoder, x)
        if not isinstance(codes, (list, tuple)) or len(codes) != 2:
            raise ValueError("the encoder must have two outputs, z_mean and z_log_var")
        z_mean, z_log_var = (np.asarray(c, dtype="float64") for c in codes)
        if z_mean.shape != (len(x), latent) or z_log_var.shape != (len(x), latent):
            raise ValueError(
                f"the encoder gives z_mean of shape {shape_of(z_mean)} and z_log_var of shape "
                f"{shape_of(z_log_var)} per image; both must be latent_dim={latent} values"
            )
        decoded = predict(decoder, z_mean.astype("float32"))
        require_images(decoded, x)
        with np.errstate(over="ignore", invalid="ignore"):
            kl = float(np.mean(np.sum(-0.5 * (1 + z_log_var - z_mean**2 - np.exp(z_log_var)), axis=1)))
        rng = np.random.default_rng([int(settings["prior_seed"]), latent])
        prior = rng.standard_normal((int(settings["prior_samples"]), latent)).astype("float32")
        samples = predict(decoder, prior)
        measured = {"reconstruction_mse": mean_squared_error(decoded, x), "kl": kl}
        measured.update(sample_metrics(samples, self.load_asset(assets, CLASSIFIER), confidence=settings["confidence"]))
        return measured

    def baselines(self, test, *, assets):
        """Trivial models on the held-out set. Reconstruction: all zeros, the mean image. KL: the information in
        an image beyond the best input-free model (binary cross-entropy of the mean image minus the pixels' own
        entropy); a code that costs more nats than that makes the ELBO worse than ignoring the input, however
        good the reconstruction. Samples: image sets without digit structure, read by the reference classifier
        (measured by `train_assets`, which calibration runs first, and read from its report in `assets`)."""
        x = test["x"].astype("float64")
        mean = x.mean(axis=0)
        information = float(np.mean(_bce_per_image(x, np.broadcast_to(mean, x.shape)) - _bce_per_image(x, x)))
        out = {"reconstruction_mse": trivial_reconstructions(x), "kl": {"image_information": information}}
        out.update(sample_baselines(assets))
        return out

    def train_assets(self, out_dir, *, train, test, recipe, seed, source_builder=None):
        """The reference digit classifier (see digits.py); an existing one trained with the same settings is
        reused, so that recalibrating, or calibrating another profile, keeps the same judge."""
        return train_digit_classifier(out_dir, test=test, settings=self.settings(recipe), seed=seed)
