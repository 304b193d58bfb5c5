"""The denoising assignment's training check (`denoising_quality`): the notebook's `build_denoiser` (the student's
transposed-convolution block inside) trained on noisy digits against the clean ones, then measured in the clean
worker by the peak signal-to-noise ratio of its output on held-out noisy digits against their clean versions.

The noise is the kit's own, the same for every submission: Gaussian, of standard deviation `NOISE_STD`, clipped to
[0, 1]. The noise level is the task the notebook states, not a budget, so it is the same under every profile. The
student's `add_noise` has its own checks and is not used here, so that a mistake in it costs its checks only.
"""

from __future__ import annotations

import numpy as np

from ..base import register
from .base import TrainingCheck, encode_decode, require_inputs

NOISE_STD = 0.4  # the notebook's NOISE_STD
TRAIN_NOISE_SEED, TEST_NOISE_SEED = 1, 2
MSE_FLOOR = 1e-10  # a perfect image scores 100 dB instead of infinity


def noisy_copy(images: np.ndarray, noise_std: float, seed: int) -> np.ndarray:
    """The images with Gaussian noise of standard deviation `noise_std`, clipped to [0, 1] (float32)."""
    rng = np.random.default_rng(seed)
    return np.clip(images + noise_std * rng.standard_normal(images.shape), 0.0, 1.0).astype("float32")


def mean_psnr(images: np.ndarray, clean: np.ndarray) -> float:
    """The mean over images of the peak signal-to-noise ratio, in dB, of each image against its clean version:
    10 log10(1 / MSE), the peak being 1 (pixels in [0, 1])."""
    diff = np.asarray(images, dtype="float64") - clean
    mse = np.mean(diff**2, axis=tuple(range(1, diff.ndim)))
    return float(np.mean(10.0 * np.log10(1.0 / np.maximum(mse, MSE_FLOOR))))


@register
class DenoisingQuality(TrainingCheck):
    name = "denoising_quality"
    label = "denoising of held-out noisy digits after the kit's training recipe"
    dataset = "mnist"
    metrics = ("test_psnr",)
    higher_is_better = ("test_psnr",)
    param_factor = 10.0  # see TrainingCheck: a model that stores digits instead of compressing them is refused
    loss = "binary_crossentropy"
    measured_on = {"test_psnr": "dB on held-out noisy digits"}
    model_kind, material = "a denoiser", "the digits"

    def builder_args(self, *, x, y, recipe, settings, seed):
        return {
            "input_shape": tuple(x.shape[1:]),
            "latent_dim": int(recipe["latent_dim"]),
            "filters": tuple(recipe["filters"]),
        }

    def fit_data(self, x, y):
        return noisy_copy(x, NOISE_STD, TRAIN_NOISE_SEED), x  # noisy inputs, clean targets

    def measure(self, models, *, x, y, recipe, settings, assets):
        encoder, decoder = models["encoder"], models["decoder"]
        latent, steps = int(recipe["latent_dim"]), len(recipe["filters"])
        code_shape = (x.shape[1] // 2**steps, x.shape[2] // 2**steps, latent)
        rule = f"the code must be {latent} feature maps at 1/{2**steps} of the image's height and width"
        require_inputs(decoder, "decoder", [code_shape], rule)
        noisy = noisy_copy(x, NOISE_STD, TEST_NOISE_SEED)
        denoised = encode_decode(encoder, decoder, noisy, x, code_shape=code_shape, rule=rule)
        return {"test_psnr": mean_psnr(denoised, x)}

    def baselines(self, test, *, assets):
        """Trivial denoisers on the held-out set: give back the noisy input, or the mean image whatever the input."""
        x = test["x"].astype("float32")
        mean = np.broadcast_to(x.mean(axis=0), x.shape)
        return {
            "test_psnr": {
                "noisy_input": mean_psnr(noisy_copy(x, NOISE_STD, TEST_NOISE_SEED), x),
                "mean_image": mean_psnr(mean, x),
            }
        }
