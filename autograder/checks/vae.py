"""Checks of the variational autoencoder assignment (`vae`).

The sampling layer (`fn` is the student's `Sampling` class, built as `fn(seed=...)` and called on
`[z_mean, z_log_var]`):
- `sampler_shape`: the output has the shape of `z_mean`.
- `sampler_statistics`: over many draws of one row, the sample mean and standard deviation of `z` are `z_mean` and
  `exp(0.5 * z_log_var)`; the tolerance follows from the number of draws.
- `sampler_gradients`: dz/dz_mean = 1 and dz/dz_log_var = 0.5 * (z - z_mean) (= 0.5 * eps * exp(0.5 * z_log_var)).
- `sampler_limit`: with z_log_var very negative (no variance), z equals z_mean.
- `sampler_randomness`: new noise at each call and for each example; the same seed gives the same draws.

The loss (`fn` is `vae_loss(x, x_decoded, z_mean, z_log_var, beta)`), on seeded inputs:
- `vae_loss_value`: the value, against the reference to a relative 1e-5.
- `vae_loss_properties`: a scalar, unchanged when the batch is reordered or given twice (a mean over the batch).

The trained model (`fn` is the notebook's `build_vae`): `vae_quality` retrains it with the kit's recipe and measures,
in the clean worker, reconstruction and KL on held-out digits, and the quality of samples from the prior as read by
a reference digit classifier that `autograder calibrate vae` trains (`digit_classifier.keras`).

Every probe returns a summary of the behaviour (ratios, offsets in units of the standard deviation, gradient
slopes), so a judge compares behaviours, and a student's result can be matched with a catalogued mistake's
(`source/vae/mistakes.yaml`) by the same judge. Hidden checks say what is wrong, never a value that depends on the
hidden input.
"""

from __future__ import annotations

import json
import re
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

import numpy as np

from . import Check, Verdict, register
from .quality import QualityCheck, _dataset, _load

CLASSIFIER = "digit_classifier.keras"
CLASSIFIER_REPORT = "digit_classifier.json"
CLASSIFIER_MIN_ACCURACY = 0.95  # on held-out digits, before calibration accepts the classifier as a judge
CLASSIFIER_VERSION = 1  # bump when build_classifier or its training changes: calibration then trains a new one
BLUR_SIZE = 14  # the classifier also learns digits shrunk to 14x14 and enlarged back
MAX_CLASS_SHARE = 0.15  # of the prior samples, the most that one digit class may count for as recognizable
LOSS_RTOL = 1e-5
LIMIT_LOG_VAR = -80.0  # exp(0.5 * -80) = 4e-18: no noise left at float32 precision


def _fmt(shape) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


# ------------------------------------------------------------------------------------------------- inputs


def latent_inputs(batch_size: int, latent_dim: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded z_mean and z_log_var (float32). Log-variances keep away from 0 (|z_log_var| in [0.5, 2]), where the
    standard deviation exp(0.5 * v) and the wrong exp(v) would agree."""
    rng = np.random.default_rng([int(seed), int(batch_size), int(latent_dim)])
    z_mean = rng.normal(0.0, 1.5, (batch_size, latent_dim))
    z_log_var = rng.choice([-1.0, 1.0], (batch_size, latent_dim)) * rng.uniform(0.5, 2.0, (batch_size, latent_dim))
    return z_mean.astype("float32"), z_log_var.astype("float32")


def loss_inputs(batch_size: int, image_shape, latent_dim: int, seed: int) -> tuple[np.ndarray, ...]:
    """Seeded (x, x_decoded, z_mean, z_log_var): pixels in [0, 1], decoded pixels in [0.02, 0.98] (so that every
    way of writing binary cross-entropy agrees to float32 precision)."""
    rng = np.random.default_rng([int(seed), int(batch_size), int(latent_dim), 7])
    shape = (int(batch_size), *[int(s) for s in image_shape])
    x = rng.random(shape)
    x_decoded = rng.uniform(0.02, 0.98, shape)
    z_mean = rng.normal(0.0, 2.0, (batch_size, latent_dim))
    z_log_var = rng.uniform(-2.5, 1.5, (batch_size, latent_dim))
    return tuple(a.astype("float32") for a in (x, x_decoded, z_mean, z_log_var))


@contextmanager
def plain_errors():
    """Keras wraps an error raised in a layer's call() in "Exception encountered when calling ...", with terminal
    colour codes and the arguments received; give the student the original error instead, with its traceback (which
    points at the line of the answer cell)."""
    try:
        yield
    except Exception as err:  # noqa: BLE001 - re-raised, unwrapped or as it was
        text = str(err)
        inner = re.search(r"\x1b\[1m(.*?)\x1b\[0m", text, re.S)
        if "Exception encountered when calling" not in text or inner is None:
            raise
        message = inner.group(1).strip()
        try:
            plain = type(err)(message) if message else type(err)()
        except Exception:  # noqa: BLE001 - an exception class with another constructor: keep Keras' version
            raise err from None
        raise plain.with_traceback(err.__traceback__) from None


# ------------------------------------------------------------------------------------------------- sampler


def _sampler(fn: Callable, seed: int):
    import keras

    with plain_errors():
        layer = fn(seed=int(seed))
    if not isinstance(layer, keras.layers.Layer):
        raise TypeError(f"Sampling(seed=...) made a {type(layer).__name__}, not a Keras layer")
    return layer


def _sample(layer, z_mean: np.ndarray, z_log_var: np.ndarray) -> np.ndarray:
    from keras import ops

    with plain_errors():
        z = layer([ops.convert_to_tensor(z_mean), ops.convert_to_tensor(z_log_var)])
    z = np.asarray(ops.convert_to_numpy(z), dtype="float64")
    if z.shape != z_mean.shape:
        raise ValueError(f"the layer returned shape {_fmt(z.shape)} for a z_mean of shape {_fmt(z_mean.shape)}")
    return z


@register
class SamplerShape(Check):
    name = "sampler_shape"
    label = "shape of the sampling layer's output"

    def probe(self, fn, *, batch_size, latent_dim, seed=0):
        from keras import ops

        z_mean, z_log_var = latent_inputs(batch_size, latent_dim, seed)
        layer = _sampler(fn, seed)
        with plain_errors():
            z = layer([ops.convert_to_tensor(z_mean), ops.convert_to_tensor(z_log_var)])
        return {"shape": [int(s) for s in z.shape], "input_shape": [int(batch_size), int(latent_dim)]}

    def judge(self, got, expected, *, hidden):
        if got["shape"] == expected["shape"]:
            return Verdict(True, "z has the shape of z_mean" + (" on hidden inputs" if hidden else
                                                                 f" {_fmt(got['shape'])}"))
        if hidden:
            return Verdict(False, "on a hidden input, z does not have the shape of z_mean: draw epsilon with "
                                  "the full shape of z_mean (batch and latent dimensions).")
        return Verdict(False, f"for z_mean of shape {_fmt(got['input_shape'])}: got z of shape "
                              f"{_fmt(got['shape'])}, expected {_fmt(expected['shape'])}.")


@register
class SamplerStatistics(Check):
    name = "sampler_statistics"
    label = "mean and standard deviation of the sampling layer's draws"

    def probe(self, fn, *, latent_dim, draws, seed=0):
        z_mean, z_log_var = latent_inputs(1, latent_dim, seed)
        std = np.exp(0.5 * z_log_var.astype("float64"))[0]
        z = _sample(_sampler(fn, seed), np.repeat(z_mean, draws, axis=0), np.repeat(z_log_var, draws, axis=0))
        return {"draws": int(draws),
                "mean_offset": ((z.mean(axis=0) - z_mean[0]) / std).tolist(),  # in units of the true std
                "std_ratio": (z.std(axis=0) / std).tolist()}

    @staticmethod
    def tolerances(draws: int) -> tuple[float, float]:
        """Five standard errors of the difference of two independent estimates from `draws` normal draws: for the
        mean (in units of the std) sqrt(2 / n), for the std ratio sqrt(2 / (2 n))."""
        return 5.0 * np.sqrt(2.0 / draws), 5.0 * np.sqrt(1.0 / draws)

    def judge(self, got, expected, *, hidden):
        n = int(expected["draws"])
        tol_mean, tol_std = self.tolerances(n)
        mean, want_mean = np.asarray(got["mean_offset"], float), np.asarray(expected["mean_offset"], float)
        ratio, want_ratio = np.asarray(got["std_ratio"], float), np.asarray(expected["std_ratio"], float)
        if mean.shape != want_mean.shape or ratio.shape != want_ratio.shape:
            return Verdict(False, "the draws do not have one value per latent dimension.")
        bad_mean = ~(np.abs(mean - want_mean) <= tol_mean)  # NaN counts as bad
        bad_std = ~(np.abs(ratio - want_ratio) <= tol_std)
        if not bad_mean.any() and not bad_std.any():
            return Verdict(True, f"over {n:,} draws, mean z_mean and standard deviation exp(0.5 * z_log_var), "
                                 "within the sampling error" + (" on hidden inputs" if hidden else ""))
        if hidden:
            what = [w for w, bad in (("mean", bad_mean.any()), ("standard deviation", bad_std.any())) if bad]
            target = {"mean": "z_mean", "standard deviation": "exp(0.5 * z_log_var)"}
            return Verdict(False, f"on a hidden input, the sample {' and '.join(what)} of z over {n:,} draws "
                                  f"{'is' if len(what) == 1 else 'are'} not "
                                  f"{' and '.join(target[w] for w in what)}.")
        parts = []
        if bad_std.any():
            i = int(np.argmax(np.where(bad_std, np.abs(ratio - want_ratio), -1)))
            parts.append(f"in latent dimension {i}, the sample standard deviation of z is {ratio[i]:.3f} times "
                         f"exp(0.5 * z_log_var) (expected {want_ratio[i]:.3f}, +-{tol_std:.3f})")
        if bad_mean.any():
            i = int(np.argmax(np.where(bad_mean, np.abs(mean - want_mean), -1)))
            parts.append(f"in latent dimension {i}, the sample mean of z is z_mean {mean[i]:+.3f} standard "
                         f"deviations (expected {want_mean[i]:+.3f}, +-{tol_mean:.3f})")
        return Verdict(False, f"over {n:,} draws: " + "; ".join(parts) + ".")


@register
class SamplerGradients(Check):
    name = "sampler_gradients"
    label = "gradients through the sampling layer (the reparameterization trick)"

    def probe(self, fn, *, batch_size, latent_dim, seed=0):
        import tensorflow as tf
        from keras import ops

        z_mean, z_log_var = (tf.constant(a) for a in latent_inputs(batch_size, latent_dim, seed))
        layer = _sampler(fn, seed)
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(z_mean)
            tape.watch(z_log_var)
            with plain_errors():
                z = layer([z_mean, z_log_var])
            total = ops.sum(z)
        grads = []
        for var in (z_mean, z_log_var):
            g = tape.gradient(total, var)
            grads.append(np.zeros(var.shape) if g is None else np.asarray(g, dtype="float64"))
        del tape
        d_mean, d_log_var = grads
        noise = np.asarray(z, dtype="float64") - z_mean.numpy().astype("float64")
        if d_mean.shape != noise.shape or d_log_var.shape != noise.shape:
            raise ValueError(f"the layer returned shape {_fmt(noise.shape)}; expected the shape of z_mean")
        energy = float(np.sum(noise ** 2))
        slope = float(np.sum(d_log_var * noise) / energy) if energy > 1e-12 else 0.0
        # Does z change with z_log_var at all? Finite differences with fresh layers of the same seed (the same
        # epsilon), when the layer's draws are reproducible; None when they are not (the randomness check says so).
        zm, lv = z_mean.numpy(), z_log_var.numpy()
        first, again = _sample(_sampler(fn, seed), zm, lv), _sample(_sampler(fn, seed), zm, lv)
        depends = None
        if np.allclose(first, again, rtol=0, atol=1e-6) and energy > 1e-12:
            h = 0.05
            up, down = _sample(_sampler(fn, seed), zm, lv + h), _sample(_sampler(fn, seed), zm, lv - h)
            depends = bool(abs(np.sum((up - down) / (2 * h) * (first - zm)) / energy) > 0.05)
        mean_grad = float(np.median(d_mean))
        # Does each element follow the rule with one factor? (dz/dz_mean the same everywhere, dz/dz_log_var
        # proportional to z - z_mean)
        consistent = bool(np.max(np.abs(d_mean - mean_grad)) <= 1e-4
                          and np.max(np.abs(d_log_var - slope * noise)) <= 1e-4 * (1.0 + np.max(np.abs(noise))))
        return {"dz_dmean": mean_grad, "dz_dlogvar_per_noise": slope, "elementwise": consistent,
                "z_depends_on_log_var": depends}

    def judge(self, got, expected, *, hidden):
        ok_mean = abs(got["dz_dmean"] - expected["dz_dmean"]) <= 1e-3
        ok_var = abs(got["dz_dlogvar_per_noise"] - expected["dz_dlogvar_per_noise"]) <= 1e-3
        ok_form = got["elementwise"] == expected["elementwise"]
        depends, want_depends = got.get("z_depends_on_log_var"), expected.get("z_depends_on_log_var")
        ok_depends = depends is None or want_depends is None or depends == want_depends
        if ok_mean and ok_var and ok_form and ok_depends:
            return Verdict(True, "dz/dz_mean = 1 and dz/dz_log_var = 0.5 * eps * exp(0.5 * z_log_var)"
                           + (" on hidden inputs" if hidden else ""))
        parts = []
        if not ok_mean:
            parts.append(f"dz/dz_mean is {got['dz_dmean']:.3f}, where z = z_mean + exp(0.5 * z_log_var) * eps "
                         f"gives {expected['dz_dmean']:.3f}")
        if not ok_var and depends and abs(got["dz_dlogvar_per_noise"]) < 1e-6:
            parts.append("z changes with z_log_var, but no gradient reaches z_log_var: the standard deviation is "
                         "detached from the graph (stop_gradient?)")
        elif not ok_var:
            parts.append(f"dz/dz_log_var is {got['dz_dlogvar_per_noise']:.3f} * (z - z_mean), where the "
                         f"reparameterization gives {expected['dz_dlogvar_per_noise']:.3f} * (z - z_mean), i.e. "
                         "0.5 * eps * exp(0.5 * z_log_var)")
        if not ok_depends:
            parts.append("z does not change with z_log_var" if not depends else "z changes with z_log_var")
        if not ok_form and ok_mean and ok_var:
            parts.append("the gradients do not follow z = z_mean + exp(0.5 * z_log_var) * eps element by element")
        where = "on a hidden input, " if hidden else ""
        return Verdict(False, where + "; ".join(parts) + ".")


@register
class SamplerLimit(Check):
    name = "sampler_limit"
    label = "no noise when the variance vanishes"

    def probe(self, fn, *, batch_size, latent_dim, seed=0):
        z_mean, _ = latent_inputs(batch_size, latent_dim, seed)
        z = _sample(_sampler(fn, seed), z_mean, np.full_like(z_mean, LIMIT_LOG_VAR))
        deviation = float(np.max(np.abs(z - z_mean))) if np.all(np.isfinite(z)) else float("inf")
        return {"max_deviation": deviation}

    @staticmethod
    def _kind(deviation: float) -> str:
        if not np.isfinite(deviation) or deviation > 1e6:
            return "explodes"
        return "equal" if deviation <= 1e-5 else "noisy"

    def judge(self, got, expected, *, hidden):
        mine, want = self._kind(got["max_deviation"]), self._kind(expected["max_deviation"])
        same = mine == want and (mine != "noisy" or 0.5 <= got["max_deviation"] / expected["max_deviation"] <= 2)
        if same:
            return Verdict(True, f"with z_log_var = {LIMIT_LOG_VAR:g} (no variance) z equals z_mean" if mine == "equal"
                           else "behaves as expected when the variance vanishes")
        if mine == "explodes":
            return Verdict(False, f"with z_log_var = {LIMIT_LOG_VAR:g} (no variance) z is not finite or huge: the "
                                  "standard deviation must be exp(+0.5 * z_log_var), which goes to 0.")
        if mine == "noisy":
            by = "" if hidden else f" by up to {got['max_deviation']:.3g}"
            return Verdict(False, f"with z_log_var = {LIMIT_LOG_VAR:g} (no variance) z still differs from "
                                  f"z_mean{by}: scale the noise by exp(0.5 * z_log_var).")
        return Verdict(False, f"with z_log_var = {LIMIT_LOG_VAR:g}, z equals z_mean; the reference differs here.")


@register
class SamplerRandomness(Check):
    name = "sampler_randomness"
    label = "fresh, seeded noise in the sampling layer"

    def probe(self, fn, *, batch_size, latent_dim, seed=0):
        z_mean, z_log_var = latent_inputs(1, latent_dim, seed)
        z_mean, z_log_var = np.repeat(z_mean, batch_size, axis=0), np.repeat(z_log_var, batch_size, axis=0)
        layer = _sampler(fn, seed)
        first, second = _sample(layer, z_mean, z_log_var), _sample(layer, z_mean, z_log_var)
        again = _sample(_sampler(fn, seed), z_mean, z_log_var)
        rows = np.any(np.abs(first[1:] - first[:1]) > 1e-7, axis=1)
        return {"new_noise_each_call": bool(np.mean(np.abs(first - second) > 1e-7) > 0.5),
                "new_noise_each_example": bool(np.mean(rows) > 0.5),
                "same_seed_same_draws": bool(np.allclose(first, again, rtol=0, atol=1e-6))}

    SAYS = {"new_noise_each_call": ("each call draws new noise", "two calls of the same layer give the same z: draw "
                                    "epsilon inside call(), with the layer's SeedGenerator"),
            "new_noise_each_example": ("each example of a batch gets its own noise", "every example of a batch gets "
                                       "the same epsilon: draw it with the shape of z_mean, batch included"),
            "same_seed_same_draws": ("two layers made with the same seed draw the same noise", "two layers made "
                                     "with the same seed draw different noise: pass seed=self.seed_generator "
                                     "to keras.random.normal")}

    def judge(self, got, expected, *, hidden):
        wrong = [k for k in self.SAYS if bool(got[k]) != bool(expected[k])]
        if not wrong:
            return Verdict(True, "; ".join(self.SAYS[k][0] for k in self.SAYS if expected[k]))
        return Verdict(False, "; ".join(self.SAYS[k][1] if expected[k] else f"unexpected: {self.SAYS[k][0]}"
                                        for k in wrong) + ".")


# ------------------------------------------------------------------------------------------------- loss


def _call_loss(fn: Callable, arrays, beta: float) -> np.ndarray:
    from keras import ops

    with plain_errors():
        out = fn(*[ops.convert_to_tensor(a) for a in arrays], beta=float(beta))
    return np.asarray(ops.convert_to_numpy(out), dtype="float64")


def _where_loss(args: dict) -> str:
    return (f"on a batch of {args['batch_size']} images of shape {_fmt(args['image_shape'])}, "
            f"latent_dim={args['latent_dim']}, beta={args['beta']:g}")


@register
class VAELossValue(Check):
    name = "vae_loss_value"
    label = "value of the VAE loss on fixed inputs"

    def probe(self, fn, *, batch_size, image_shape, latent_dim, beta, seed=0):
        arrays = loss_inputs(batch_size, image_shape, latent_dim, seed)
        value = _call_loss(fn, arrays, beta)
        reconstruction = _call_loss(fn, arrays, 0.0)  # the loss with beta = 0 is the reconstruction term alone
        return {"shape": list(value.shape), "value": value.tolist(), "reconstruction": reconstruction.tolist(),
                "args": {"batch_size": int(batch_size), "image_shape": list(image_shape),
                         "latent_dim": int(latent_dim), "beta": float(beta)}}

    @staticmethod
    def _close(a, b) -> bool:
        a, b = np.asarray(a, float), np.asarray(b, float)
        return a.shape == b.shape and bool(np.allclose(a, b, rtol=LOSS_RTOL, atol=1e-6))

    def judge(self, got, expected, *, hidden):
        if list(got["shape"]) != list(expected["shape"]) or np.shape(got["value"]) != np.shape(expected["value"]):
            shape = "is not a scalar on a hidden input" if hidden else f"has shape {_fmt(got['shape'])}"
            return Verdict(False, f"the loss {shape}; it must be a scalar (shape ()), the mean over the batch.")
        total_ok = self._close(got["value"], expected["value"])
        rec_ok = self._close(got["reconstruction"], expected["reconstruction"])
        beta = float(got["args"]["beta"])
        kl, want_kl = ((float(np.ravel(r["value"])[0]) - float(np.ravel(r["reconstruction"])[0])) / beta
                       for r in (got, expected))
        kl_ok = bool(np.isclose(kl, want_kl, rtol=1e-4, atol=1e-4 * abs(float(np.ravel(expected["value"])[0]))))
        if total_ok and rec_ok:
            return Verdict(True, "the loss is right on hidden inputs" if hidden
                           else f"loss {float(np.ravel(got['value'])[0]):.6g} {_where_loss(got['args'])}")
        terms = (f"the reconstruction term (your loss with beta=0) is {'right' if rec_ok else 'wrong'}, and the KL "
                 f"term ((loss - reconstruction) / beta) is {'right' if kl_ok else 'wrong'}")
        if hidden:
            return Verdict(False, "the loss is wrong on a hidden input (another batch size, image size, latent size "
                                  f"or beta than the public checks): {terms}.")
        rec, want_rec = float(np.ravel(got["reconstruction"])[0]), float(np.ravel(expected["reconstruction"])[0])
        return Verdict(False, f"{_where_loss(got['args'])}: got loss {float(np.ravel(got['value'])[0]):.6g}, "
                              f"expected {float(np.ravel(expected['value'])[0]):.6g} (relative tolerance "
                              f"{LOSS_RTOL:g}); reconstruction term {rec:.6g} (expected {want_rec:.6g}), KL term "
                              f"{kl:.6g} (expected {want_kl:.6g}).")


@register
class VAELossProperties(Check):
    name = "vae_loss_properties"
    label = "the VAE loss is a scalar mean over the batch"

    def probe(self, fn, *, batch_size, image_shape, latent_dim, beta, seed=0):
        arrays = loss_inputs(batch_size, image_shape, latent_dim, seed)
        value = _call_loss(fn, arrays, beta)
        order = np.random.default_rng([int(seed), 11]).permutation(int(batch_size))
        permuted = _call_loss(fn, [a[order] for a in arrays], beta)
        doubled = _call_loss(fn, [np.concatenate([a, a]) for a in arrays], beta)
        scalar = value.shape == () and permuted.shape == () and doubled.shape == ()
        return {"shape": list(value.shape),
                "order_invariant": bool(scalar and abs(permuted - value) <= 1e-5 * (abs(value) + 1e-6)),
                "batch_twice_ratio": float(doubled / value) if scalar and value != 0 else None}

    def judge(self, got, expected, *, hidden):
        if list(got["shape"]) != list(expected["shape"]):
            shape = "is not a scalar on a hidden input" if hidden else f"has shape {_fmt(got['shape'])}"
            return Verdict(False, f"the loss {shape}; it must be a scalar (shape ()): average the per-example "
                                  "losses over the batch.")
        parts = []
        if bool(got["order_invariant"]) != bool(expected["order_invariant"]):
            parts.append("the loss changes when the examples of the batch are reordered")
        ratio, want = got["batch_twice_ratio"], expected["batch_twice_ratio"]
        if (ratio is None) != (want is None) or (ratio is not None and not abs(ratio - want) <= 1e-4):
            if ratio is not None and abs(ratio - 2.0) <= 1e-4:
                parts.append("the loss doubles when the same batch is given twice: it is summed over the batch, "
                             "not averaged")
            else:
                parts.append("the loss changes when the same batch is given twice: average over the batch")
        if parts:
            return Verdict(False, "; ".join(parts) + ".")
        return Verdict(True, "a scalar, the same for any order of the batch and for the batch given twice")


# ------------------------------------------------------------------------------------------------- quality


def build_classifier():
    """The reference digit classifier: a small CNN of standard layers, so the clean worker loads it safely."""
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


def blurred(x: np.ndarray, size: int) -> np.ndarray:
    """Images shrunk to `size` pixels and enlarged back: the softness of a short-trained decoder's output."""
    import tensorflow as tf

    full = x.shape[1:3]
    return tf.image.resize(tf.image.resize(x, (size, size), antialias=True), full).numpy().astype("float32")


def sample_metrics(images: np.ndarray, classifier, *, confidence: float) -> dict[str, float]:
    """What the reference classifier reads in a set of images.

    - sample_recognizable: the share of images it assigns to one digit with probability at least `confidence`,
      where no digit counts for more than MAX_CLASS_SHARE of the images (so a decoder that draws one blob the
      classifier takes for an 8, or only ones, cannot score high);
    - sample_classes: the effective number of digit classes among the recognized images (exp of the entropy of
      their class histogram: 10 when all digits are equally common, 1 when all are the same, 0 if none).
    """
    p = classifier.predict(np.asarray(images, dtype="float32"), batch_size=256, verbose=0).astype("float64")
    sure = p.max(axis=1) >= confidence
    counts = np.bincount(p.argmax(axis=1)[sure], minlength=p.shape[1]).astype("float64")
    recognizable = float(np.sum(np.minimum(counts, MAX_CLASS_SHARE * len(p))) / len(p))
    classes = 0.0
    if counts.sum():
        h = counts[counts > 0] / counts.sum()
        classes = float(np.exp(-np.sum(h * np.log(h))))
    return {"sample_recognizable": recognizable, "sample_classes": classes}


def _bce_per_image(x: np.ndarray, p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-7, 1 - 1e-7)
    return -np.sum(x * np.log(p) + (1 - x) * np.log(1 - p), axis=tuple(range(1, x.ndim)))


def _extra(recipe: dict) -> dict:
    extra = dict(recipe.get("extra") or {})
    extra.setdefault("beta", 1.0)
    extra.setdefault("prior_samples", 1000)
    extra.setdefault("confidence", 0.9)
    return extra


@register
class VAEQuality(QualityCheck):
    name = "vae_quality"
    label = "reconstruction, KL and samples from the prior after the kit's training recipe"
    dataset = "mnist"
    metrics = ("reconstruction_mse", "kl", "sample_recognizable", "sample_classes")
    higher_is_better = ("sample_recognizable", "sample_classes")
    assets = (CLASSIFIER,)
    param_factor = 10.0  # see QualityCheck: a model that stores digits instead of compressing them is refused
    measured_on = {"kl": "nats per held-out image", "sample_recognizable": "of the samples from the prior",
                   "sample_classes": "among the recognized samples from the prior"}

    def probe(self, fn, *, recipe, data, export_dir, seed=0):
        import keras

        with np.load(data, allow_pickle=False) as npz:
            x, y = npz["x"], npz["y"]
        with plain_errors():
            vae = fn(input_shape=tuple(x.shape[1:]), latent_dim=int(recipe["latent_dim"]),
                     filters=tuple(recipe["filters"]), beta=float(_extra(recipe)["beta"]), seed=int(seed))
            vae.compile(optimizer=keras.optimizers.Adam(recipe["learning_rate"]))
            history = vae.fit(_dataset(x, y, recipe["batch_size"], shuffle_seed=seed), epochs=recipe["epochs"],
                              verbose=0)
        out = Path(export_dir)
        out.mkdir(parents=True, exist_ok=True)
        vae.encoder.save(out / "encoder.keras")
        vae.decoder.save(out / "decoder.keras")
        vae.save_weights(out / "model.weights.h5")  # what calibration publishes for the notebook
        return {key: [float(v) for v in values] for key, values in history.history.items()}

    def evaluate(self, export_dir, *, data, recipe, assets=None, max_params=None):
        """Runs in the clean worker. Returns the metrics, or raises with a sentence for the student."""
        with np.load(data, allow_pickle=False) as npz:
            x = npz["x"]
        export = Path(export_dir)
        try:
            encoder, decoder = _load(export / "encoder.keras"), _load(export / "decoder.keras")
        except Exception as err:  # noqa: BLE001 - any failure to load is the same sentence for the student
            raise ValueError(f"the encoder or decoder could not be loaded with standard Keras layers only ({err})")
        params = int(encoder.count_params()) + int(decoder.count_params())
        if max_params is not None and params > max_params:
            raise ValueError(f"the model has {params:,} parameters, more than {self.param_factor:g} times the "
                             "reference model's: a VAE must compress the digits, not store them")
        latent = int(recipe["latent_dim"])
        if tuple(decoder.input_shape[1:]) != (latent,):
            raise ValueError(f"the decoder takes inputs of shape {tuple(decoder.input_shape[1:])}; it must take a "
                             f"code of latent_dim={latent} values")
        codes = encoder.predict(x, batch_size=256, verbose=0)
        if not isinstance(codes, (list, tuple)) or len(codes) != 2:
            raise ValueError("the encoder must have two outputs, z_mean and z_log_var")
        z_mean, z_log_var = (np.asarray(c, dtype="float64") for c in codes)
        if z_mean.shape != (len(x), latent) or z_log_var.shape != (len(x), latent):
            raise ValueError(f"the encoder gives z_mean of shape {z_mean.shape[1:]} and z_log_var of shape "
                             f"{z_log_var.shape[1:]} per image; both must be latent_dim={latent} values")
        decoded = decoder.predict(z_mean.astype("float32"), batch_size=256, verbose=0)
        if decoded.shape != x.shape:
            raise ValueError(f"the decoder gives images of shape {decoded.shape[1:]}, expected {x.shape[1:]}")
        with np.errstate(over="ignore", invalid="ignore"):
            kl = float(np.mean(np.sum(-0.5 * (1 + z_log_var - z_mean ** 2 - np.exp(z_log_var)), axis=1)))
        extra = _extra(recipe)
        rng = np.random.default_rng([int(extra.get("prior_seed", 0)), latent])
        prior = rng.standard_normal((int(extra["prior_samples"]), latent)).astype("float32")
        samples = decoder.predict(prior, batch_size=256, verbose=0)
        measured = {"reconstruction_mse": float(np.mean((decoded.astype("float64") - x) ** 2)), "kl": kl}
        measured.update(sample_metrics(samples, _load(Path(assets) / CLASSIFIER), confidence=extra["confidence"]))
        return measured

    def baselines(self, test: dict, *, assets) -> dict:
        """Trivial models on the held-out set. Reconstruction: all zeros, the mean image. KL: the information in
        an image beyond the best input-free model (binary cross-entropy of the mean image minus the pixels' own
        entropy); a code that costs more nats than that makes the ELBO worse than ignoring the input, however
        good the reconstruction. Samples: image sets without digit structure, read by the reference classifier
        (measured by `train_assets`, which calibration runs first, and read from its report in `assets`)."""
        from ..errors import KitError

        x = test["x"].astype("float64")
        mean = x.mean(axis=0)
        information = float(np.mean(_bce_per_image(x, np.broadcast_to(mean, x.shape)) - _bce_per_image(x, x)))
        out = {"reconstruction_mse": {"all_zeros": float(np.mean(x ** 2)),
                                      "mean_image": float(np.mean((x - mean) ** 2))},
               "kl": {"image_information": information}}
        report = Path(assets) / CLASSIFIER_REPORT
        try:
            out.update(json.loads(report.read_text())["sample_baselines"])
        except (OSError, ValueError, KeyError, TypeError):
            raise KitError(f"the sample baselines are not in {report}: run `autograder calibrate vae`, which "
                           "trains the reference classifier and measures them.") from None
        return out

    def train_assets(self, out_dir, *, train, test, recipe, seed):
        """The reference digit classifier, trained on MNIST's training split (never on the held-out test subset)
        with blurred copies, since decoded digits are soft. An existing classifier trained with the same settings
        is reused, so that recalibrating, or calibrating another profile, keeps the same judge. It is checked on
        held-out digits, and it measures the sample metrics of the trivial image sets, which its report keeps for
        `baselines`."""
        import keras

        from ..errors import KitError

        extra = _extra(recipe)
        out = Path(out_dir)
        settings = {"classifier_images": int(extra.get("classifier_images", 60000)),
                    "classifier_epochs": int(extra.get("classifier_epochs", 2)), "seed": int(seed),
                    "blur_size": BLUR_SIZE, "version": CLASSIFIER_VERSION}
        previous = out / CLASSIFIER_REPORT
        if (out / CLASSIFIER).is_file() and previous.is_file() and \
                json.loads(previous.read_text()).get("settings") == settings:
            classifier = keras.models.load_model(out / CLASSIFIER, compile=False)  # the instructor's own file
        else:
            classifier = self._train_classifier(settings)
            classifier.save(out / CLASSIFIER)
        report = {"settings": settings, "trained_on": 2 * settings["classifier_images"]}
        for kind, images in (("sharp", test["x"]), ("blurred", blurred(test["x"], BLUR_SIZE))):
            read = classifier.predict(images, batch_size=256, verbose=0).argmax(axis=1)
            report[f"accuracy_{kind}"] = round(float(np.mean(read == test["y"])), 4)
        if report["accuracy_sharp"] < CLASSIFIER_MIN_ACCURACY:
            raise KitError(f"the reference digit classifier reads only {report['accuracy_sharp']:.1%} of held-out "
                           f"digits right (at least {CLASSIFIER_MIN_ACCURACY:.0%} needed to judge samples); give "
                           "extra.classifier_images or classifier_epochs more.")
        rng = np.random.default_rng([seed, 9])
        n_samples = int(extra["prior_samples"])
        xt = test["x"].astype("float64")
        picks = xt[rng.integers(0, len(xt), n_samples)]
        mean = xt.mean(axis=0)
        sets = {
            "mean_image": np.repeat(mean[None], n_samples, axis=0),
            "independent_pixels": (rng.random((n_samples, *mean.shape)) < mean).astype("float64"),
            "shuffled_pixels": np.stack([rng.permutation(p.ravel()).reshape(p.shape) for p in picks]),
            "uniform_noise": rng.random((n_samples, *mean.shape)),
        }
        per_set = {name: sample_metrics(images, classifier, confidence=extra["confidence"])
                   for name, images in sets.items()}
        report["sample_baselines"] = {m: {name: values[m] for name, values in per_set.items()}
                                      for m in ("sample_recognizable", "sample_classes")}
        report["test_images"] = sample_metrics(test["x"], classifier, confidence=extra["confidence"])
        previous.write_text(json.dumps(report, indent=1, sort_keys=True) + "\n")
        return [out / CLASSIFIER, previous]

    @staticmethod
    def _train_classifier(settings: dict):
        import keras

        from ..data import load_mnist

        keras.utils.set_random_seed(settings["seed"])
        (x_all, y_all), _ = load_mnist()
        order = np.random.default_rng([settings["seed"], 5]).permutation(len(x_all))[:settings["classifier_images"]]
        x, y = x_all[order], y_all[order]
        classifier = build_classifier()
        classifier.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
        classifier.fit(_dataset(np.concatenate([x, blurred(x, settings["blur_size"])]), np.concatenate([y, y]), 64,
                                shuffle_seed=settings["seed"]), epochs=settings["classifier_epochs"], verbose=0)
        return classifier
