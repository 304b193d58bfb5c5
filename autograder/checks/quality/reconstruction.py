"""The autoencoder assignment's training check: reconstruction of held-out digits through a `latent_dim` bottleneck.

The notebook's `build_autoencoder` is trained on (image, image) pairs with binary cross-entropy. The clean worker
checks that the bottleneck really is `latent_dim` values wide, encodes the held-out images, decodes the codes
alone, and measures the mean squared error.
"""

from __future__ import annotations

from ..base import register
from .base import TrainingCheck, encode_decode, mean_squared_error, require_inputs, trivial_reconstructions


@register
class ReconstructionQuality(TrainingCheck):
    name = "reconstruction_quality"
    label = "reconstruction quality after the kit's training recipe"
    dataset = "mnist"
    metrics = ("test_mse",)
    param_factor = 10.0
    loss = "binary_crossentropy"

    def builder_args(self, *, x, y, recipe, settings, seed):
        return {
            "input_shape": tuple(x.shape[1:]),
            "latent_dim": recipe["latent_dim"],
            "filters": tuple(recipe["filters"]),
        }

    def fit_data(self, x, y):
        return x, x  # an autoencoder learns to give back its input

    def measure(self, models, *, x, y, recipe, settings, assets):
        encoder, decoder = models["encoder"], models["decoder"]
        latent = int(recipe["latent_dim"])
        require_inputs(
            decoder, "decoder", [(latent,)], f"the bottleneck must be a vector of latent_dim={latent} values"
        )
        decoded = encode_decode(
            encoder, decoder, x, x, code_shape=(latent,), rule=f"the bottleneck must be latent_dim={latent} values"
        )
        return {"test_mse": mean_squared_error(decoded, x)}

    def baselines(self, test, *, assets):
        """What trivial models score on the held-out set: a calibrated threshold must beat them by far."""
        return {"test_mse": trivial_reconstructions(test["x"])}
