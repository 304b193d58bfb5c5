"""Checks of the VAE loss (`fn` is `vae_loss(x, x_decoded, z_mean, z_log_var, beta)`), on seeded inputs:
- `vae_loss_value`: the value, against the reference to a relative 1e-5; the loss with beta=0 gives the
  reconstruction term alone, so a message can say which of the two terms is wrong.
- `vae_loss_properties`: a scalar, unchanged when the batch is reordered or given twice (a mean over the batch).

The probes return the losses the student's function gave; every comparison is made in the grader (`judge`,
`summary`), where patching numpy or Keras in the student's process changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .base import Check, SummaryCheck, Verdict, register
from .messages import fmt_number, fmt_shape, got_expected
from .student import as_sent, call_student, tensor_as_array

LOSS_RTOL = 1e-5


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


def _call_loss(fn: Callable, arrays, beta: float) -> np.ndarray:
    from keras import ops

    return call_student(
        fn, *[ops.convert_to_tensor(a) for a in arrays], beta=float(beta), returns=tensor_as_array, what="vae_loss"
    )


def _where_loss(args: dict) -> str:
    return (
        f"on a batch of {args['batch_size']} images of shape {fmt_shape(args['image_shape'])}, "
        f"latent_dim={args['latent_dim']}, beta={args['beta']:g}"
    )


@register
class VAELossValue(Check):
    name = "vae_loss_value"
    label = "value of the VAE loss on fixed inputs"

    def probe(self, fn, *, batch_size, image_shape, latent_dim, beta, seed=0):
        arrays = loss_inputs(batch_size, image_shape, latent_dim, seed)
        value = _call_loss(fn, arrays, beta)
        reconstruction = _call_loss(fn, arrays, 0.0)  # the loss with beta = 0 is the reconstruction term alone
        return {
            "shape": list(value.shape),
            "value": value.tolist(),
            "reconstruction": reconstruction.tolist(),
            "args": {
                "batch_size": int(batch_size),
                "image_shape": list(image_shape),
                "latent_dim": int(latent_dim),
                "beta": float(beta),
            },
        }

    @staticmethod
    def _close(a, b) -> bool:
        a, b = np.asarray(a, float), np.asarray(b, float)
        return a.shape == b.shape and bool(np.allclose(a, b, rtol=LOSS_RTOL, atol=1e-6))

    def judge(self, got, expected, *, hidden):
        if list(got["shape"]) != list(expected["shape"]) or np.shape(got["value"]) != np.shape(expected["value"]):
            shape = "is not a scalar on a hidden input" if hidden else f"has shape {fmt_shape(got['shape'])}"
            return Verdict(False, f"the loss {shape}; it must be a scalar (shape ()), the mean over the batch.")
        total_ok = self._close(got["value"], expected["value"])
        rec_ok = self._close(got["reconstruction"], expected["reconstruction"])
        beta = float(got["args"]["beta"])
        kl, want_kl = (
            (float(np.ravel(r["value"])[0]) - float(np.ravel(r["reconstruction"])[0])) / beta for r in (got, expected)
        )
        kl_ok = bool(np.isclose(kl, want_kl, rtol=1e-4, atol=1e-4 * abs(float(np.ravel(expected["value"])[0]))))
        value, want = float(np.ravel(got["value"])[0]), float(np.ravel(expected["value"])[0])
        if total_ok and rec_ok:
            return Verdict(
                True,
                "the loss is right on hidden inputs"
                if hidden
                else f"loss {fmt_number(value)} {_where_loss(got['args'])}",
            )
        terms = (
            f"the reconstruction term (your loss with beta=0) is {'right' if rec_ok else 'wrong'}, and the KL "
            f"term ((loss - reconstruction) / beta) is {'right' if kl_ok else 'wrong'}"
        )
        if hidden:
            return Verdict(
                False,
                "the loss is wrong on a hidden input (another batch size, image size, latent size "
                f"or beta than the public checks): {terms}.",
            )
        rec, want_rec = float(np.ravel(got["reconstruction"])[0]), float(np.ravel(expected["reconstruction"])[0])
        return Verdict(
            False,
            f"{_where_loss(got['args'])}: {got_expected('loss', fmt_number(value), fmt_number(want))}"
            f" (relative tolerance {LOSS_RTOL:g}); reconstruction term {fmt_number(rec)} (expected "
            f"{fmt_number(want_rec)}), KL term {fmt_number(kl)} (expected {fmt_number(want_kl)}).",
        )


@register
class VAELossProperties(SummaryCheck):
    name = "vae_loss_properties"
    label = "the VAE loss is a scalar mean over the batch"

    SUMMARY_KEYS = ("shape", "order_invariant", "batch_twice_ratio")

    def probe(self, fn, *, batch_size, image_shape, latent_dim, beta, seed=0):
        arrays = loss_inputs(batch_size, image_shape, latent_dim, seed)
        value = _call_loss(fn, arrays, beta)
        order = np.random.default_rng([int(seed), 11]).permutation(int(batch_size))
        permuted = _call_loss(fn, [a[order] for a in arrays], beta)
        doubled = _call_loss(fn, [np.concatenate([a, a]) for a in arrays], beta)
        return {"value": as_sent(value), "permuted": as_sent(permuted), "doubled": as_sent(doubled)}

    def summary(self, raw):
        """In the grader, from the student's three losses (the batch, reordered, given twice)."""
        value, permuted, doubled = (np.asarray(raw[k], dtype="float64") for k in ("value", "permuted", "doubled"))
        scalar = value.shape == () and permuted.shape == () and doubled.shape == ()
        return {
            "shape": list(value.shape),
            "order_invariant": bool(scalar and abs(permuted - value) <= 1e-5 * (abs(value) + 1e-6)),
            "batch_twice_ratio": float(doubled / value) if scalar and value != 0 else None,
        }

    def judge_summary(self, got, expected, *, hidden):
        if list(got["shape"]) != list(expected["shape"]):
            shape = "is not a scalar on a hidden input" if hidden else f"has shape {fmt_shape(got['shape'])}"
            return Verdict(
                False,
                f"the loss {shape}; it must be a scalar (shape ()), the mean of the per-example losses over the batch.",
            )
        parts = []
        if bool(got["order_invariant"]) != bool(expected["order_invariant"]):
            parts.append("the loss changes when the examples of the batch are reordered")
        ratio, want = got["batch_twice_ratio"], expected["batch_twice_ratio"]
        if (ratio is None) != (want is None) or (ratio is not None and not abs(ratio - want) <= 1e-4):
            if ratio is not None and abs(ratio - 2.0) <= 1e-4:
                parts.append(
                    "the loss doubles when the same batch is given twice: it is summed over the batch, not averaged"
                )
            else:
                parts.append(
                    "the loss changes when the same batch is given twice"
                    + ("" if ratio is None else f" (it becomes {ratio:.4g} times as large)")
                    + "; a mean over the batch stays the same"
                )
        if parts:
            return Verdict(False, "; ".join(parts) + ".")
        return Verdict(True, "a scalar, the same for any order of the batch and for the batch given twice")
