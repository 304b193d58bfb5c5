"""Checks of the VAE's sampling layer (`fn` is the student's `Sampling` class, built as `fn(seed=...)` and called on
`[z_mean, z_log_var]`):
- `sampler_shape`: the output has the shape of `z_mean`.
- `sampler_statistics`: over many draws of one row, the sample mean and standard deviation of `z` are `z_mean` and
  `exp(0.5 * z_log_var)`; the tolerance follows from the number of draws.
- `sampler_gradients`: dz/dz_mean = 1 and dz/dz_log_var = 0.5 * (z - z_mean) (= 0.5 * eps * exp(0.5 * z_log_var)).
- `sampler_limit`: with z_log_var very negative (no variance), z equals z_mean.
- `sampler_randomness`: new noise at each call, for each example and for each latent dimension (an epsilon of
  shape (batch, 1) shared by the dimensions passes every other check: each dimension alone is right); the same seed
  gives the same draws.

Every probe returns the student's raw outputs (draws of z, the gradients the backend computed through the layer)
and the arguments it was given; the summary of the behaviour (ratios, offsets in units of the standard deviation,
gradient slopes, yes/no answers) is worked out in the grader (`summary`, `properties`), where patching numpy or Keras
in the student's process changes nothing. A judge compares behaviours, and a student's result can be matched with
a catalogued mistake's (`source/vae/mistakes.yaml`) by the same judge. Hidden checks say what is wrong, never a
value that depends on the hidden input.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .base import Check, PropertiesCheck, SummaryCheck, Verdict, register
from .gradients import input_gradients
from .messages import fmt_shape, got_expected_shape
from .student import call_student, keras_layer, tensor_as_array

LIMIT_LOG_VAR = -80.0  # exp(0.5 * -80) = 4e-18: no noise left at float32 precision
# Two latent dimensions whose noise over a batch correlates this closely (|r|) are drawn from one epsilon: independent
# draws of 9 or more examples come this close with a chance far below one in a million.
SHARED_CORRELATION = 0.999


def latent_inputs(batch_size: int, latent_dim: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded z_mean and z_log_var (float32). Log-variances keep away from 0 (|z_log_var| in [0.5, 2]), where the
    standard deviation exp(0.5 * v) and the wrong exp(v) would agree."""
    rng = np.random.default_rng([int(seed), int(batch_size), int(latent_dim)])
    z_mean = rng.normal(0.0, 1.5, (batch_size, latent_dim))
    z_log_var = rng.choice([-1.0, 1.0], (batch_size, latent_dim)) * rng.uniform(0.5, 2.0, (batch_size, latent_dim))
    return z_mean.astype("float32"), z_log_var.astype("float32")


def _sampler(fn: Callable, seed: int):
    return call_student(fn, seed=int(seed), returns=keras_layer, what="Sampling(seed=...)")


def _sample(layer, z_mean: np.ndarray, z_log_var: np.ndarray) -> np.ndarray:
    from keras import ops

    z = call_student(
        layer,
        [ops.convert_to_tensor(z_mean), ops.convert_to_tensor(z_log_var)],
        returns=tensor_as_array,
        what="the layer",
    )
    if z.shape != z_mean.shape:
        raise ValueError(
            f"the layer returned shape {fmt_shape(z.shape)} for a z_mean of shape {fmt_shape(z_mean.shape)}"
        )
    return z


def _one_tensor(value, what: str):
    """A tensor (z), left as it is so that gradients still flow through it; a symbolic one where the layer is
    built by a symbolic call."""
    import keras

    if not (keras.ops.is_tensor(value) or type(value) is keras.KerasTensor):
        raise TypeError(f"{what} returned a {type(value).__name__}, not a tensor")
    return value


@register
class SamplerShape(Check):
    name = "sampler_shape"
    label = "shape of the sampling layer's output"

    def probe(self, fn, *, batch_size, latent_dim, seed=0):
        from keras import ops

        z_mean, z_log_var = latent_inputs(batch_size, latent_dim, seed)
        z = call_student(
            _sampler(fn, seed),
            [ops.convert_to_tensor(z_mean), ops.convert_to_tensor(z_log_var)],
            returns=tensor_as_array,
            what="the layer",
        )
        return {"shape": [int(s) for s in z.shape], "input_shape": [int(batch_size), int(latent_dim)]}

    def judge(self, got, expected, *, hidden):
        if got["shape"] == expected["shape"]:
            return Verdict(
                True, "z has the shape of z_mean" + (" on hidden inputs" if hidden else f" {fmt_shape(got['shape'])}")
            )
        if hidden:
            return Verdict(
                False,
                "on a hidden input, z does not have the shape of z_mean.",
            )
        return Verdict(
            False,
            f"for z_mean of shape {fmt_shape(got['input_shape'])}: "
            f"{got_expected_shape('z of shape', got['shape'], expected['shape'])}.",
        )


@register
class SamplerStatistics(SummaryCheck):
    name = "sampler_statistics"
    label = "mean and standard deviation of the sampling layer's draws"

    SUMMARY_KEYS = ("draws", "mean_offset", "std_ratio")

    def probe(self, fn, *, latent_dim, draws, seed=0):
        z_mean, z_log_var = latent_inputs(1, latent_dim, seed)
        z = _sample(_sampler(fn, seed), np.repeat(z_mean, draws, axis=0), np.repeat(z_log_var, draws, axis=0))
        return {"z": z, "args": {"latent_dim": int(latent_dim), "draws": int(draws), "seed": int(seed)}}

    def summary(self, raw):
        """In the grader: z_mean and z_log_var made again from the probe's arguments, the draws the student's."""
        args = raw["args"]
        z_mean, z_log_var = latent_inputs(1, args["latent_dim"], args["seed"])
        std = np.exp(0.5 * z_log_var.astype("float64"))[0]
        z = np.asarray(raw["z"], dtype="float64")
        if z.shape != (int(args["draws"]), int(args["latent_dim"])):
            raise ValueError(f"the layer returned shape {fmt_shape(z.shape)}; expected the shape of z_mean")
        return {
            "draws": int(args["draws"]),
            "mean_offset": ((z.mean(axis=0) - z_mean[0]) / std).tolist(),  # in units of the true std
            "std_ratio": (z.std(axis=0) / std).tolist(),
        }

    @staticmethod
    def tolerances(draws: int) -> tuple[float, float]:
        """Five standard errors of the difference of two independent estimates from `draws` normal draws: for the
        mean (in units of the std) sqrt(2 / n), for the std ratio sqrt(2 / (2 n))."""
        return 5.0 * np.sqrt(2.0 / draws), 5.0 * np.sqrt(1.0 / draws)

    def judge_summary(self, got, expected, *, hidden):
        n = int(expected["draws"])
        tol_mean, tol_std = self.tolerances(n)
        mean, want_mean = np.asarray(got["mean_offset"], float), np.asarray(expected["mean_offset"], float)
        ratio, want_ratio = np.asarray(got["std_ratio"], float), np.asarray(expected["std_ratio"], float)
        if mean.shape != want_mean.shape or ratio.shape != want_ratio.shape:
            return Verdict(False, "the draws do not have one value per latent dimension.")
        bad_mean = ~(np.abs(mean - want_mean) <= tol_mean)  # NaN counts as bad
        bad_std = ~(np.abs(ratio - want_ratio) <= tol_std)
        if not bad_mean.any() and not bad_std.any():
            return Verdict(
                True,
                f"over {n:,} draws, mean z_mean and standard deviation exp(0.5 * z_log_var), "
                "within the sampling error" + (" on hidden inputs" if hidden else ""),
            )
        if hidden:
            what = [w for w, bad in (("mean", bad_mean.any()), ("standard deviation", bad_std.any())) if bad]
            target = {"mean": "z_mean", "standard deviation": "exp(0.5 * z_log_var)"}
            return Verdict(
                False,
                f"on a hidden input, the sample {' and '.join(what)} of z over {n:,} draws "
                f"{'is' if len(what) == 1 else 'are'} not "
                f"{' and '.join(target[w] for w in what)}.",
            )
        parts = []
        if bad_std.any():
            i = int(np.argmax(np.where(bad_std, np.abs(ratio - want_ratio), -1)))
            parts.append(
                f"in latent dimension {i}, the sample standard deviation of z is {ratio[i]:.3f} times "
                f"exp(0.5 * z_log_var) (expected {want_ratio[i]:.3f}, +-{tol_std:.3f})"
            )
        if bad_mean.any():
            i = int(np.argmax(np.where(bad_mean, np.abs(mean - want_mean), -1)))
            parts.append(
                f"in latent dimension {i}, the sample mean of z is z_mean {mean[i]:+.3f} standard "
                f"deviations (expected {want_mean[i]:+.3f}, +-{tol_mean:.3f})"
            )
        return Verdict(False, f"over {n:,} draws: " + "; ".join(parts) + ".")


@register
class SamplerGradients(SummaryCheck):
    name = "sampler_gradients"
    label = "gradients through the sampling layer (the reparameterization trick)"

    SUMMARY_KEYS = ("dz_dmean", "dz_dlogvar_per_noise", "elementwise")
    STEP = 0.05  # the finite differences' step in z_log_var

    def probe(self, fn, *, batch_size, latent_dim, seed=0):
        zm, lv = latent_inputs(batch_size, latent_dim, seed)
        # One call of a fresh layer, and the gradients of sum(z) with respect to z_mean and z_log_var (zeros where
        # no gradient flows), computed as the running Keras backend computes them: values of the student's layer.
        z, (d_mean, d_log_var) = input_gradients(
            _sampler(fn, seed),
            [zm, lv],
            call=lambda layer, tensors: call_student(layer, tensors, returns=_one_tensor, what="the layer"),
        )
        if np.shape(z) != zm.shape or d_mean.shape != zm.shape or d_log_var.shape != zm.shape:
            raise ValueError(f"the layer returned shape {fmt_shape(np.shape(z))}; expected the shape of z_mean")
        # Does z change with z_log_var at all? Draws of fresh layers of the same seed (the same epsilon), at
        # z_log_var and a step either side, for finite differences in the grader.
        h = self.STEP
        first, again = _sample(_sampler(fn, seed), zm, lv), _sample(_sampler(fn, seed), zm, lv)
        up, down = _sample(_sampler(fn, seed), zm, lv + h), _sample(_sampler(fn, seed), zm, lv - h)
        return {
            "z": np.asarray(z, dtype="float64"),
            "d_mean": d_mean,
            "d_log_var": d_log_var,
            "first": first,
            "again": again,
            "up": up,
            "down": down,
            "args": {"batch_size": int(batch_size), "latent_dim": int(latent_dim), "seed": int(seed)},
        }

    def summary(self, raw):
        """In the grader, from the student's z, gradients and draws: the slopes, whether each element follows the
        rule with one factor, and whether z depends on z_log_var (None when the draws are not reproducible)."""
        args = raw["args"]
        zm, _ = latent_inputs(args["batch_size"], args["latent_dim"], args["seed"])
        z, d_mean, d_log_var, first, again, up, down = (
            np.asarray(raw[k], dtype="float64") for k in ("z", "d_mean", "d_log_var", "first", "again", "up", "down")
        )
        noise = z - zm.astype("float64")
        if any(a.shape != noise.shape for a in (d_mean, d_log_var, first, again, up, down)):
            raise ValueError(f"the layer returned shape {fmt_shape(noise.shape)}; expected the shape of z_mean")
        energy = float(np.sum(noise**2))
        slope = float(np.sum(d_log_var * noise) / energy) if energy > 1e-12 else 0.0
        depends = None
        if np.allclose(first, again, rtol=0, atol=1e-6) and energy > 1e-12:
            h = self.STEP
            depends = bool(abs(np.sum((up - down) / (2 * h) * (first - zm)) / energy) > 0.05)
        mean_grad = float(np.median(d_mean))
        # Does each element follow the rule with one factor? (dz/dz_mean the same everywhere, dz/dz_log_var
        # proportional to z - z_mean)
        consistent = bool(
            np.max(np.abs(d_mean - mean_grad)) <= 1e-4
            and np.max(np.abs(d_log_var - slope * noise)) <= 1e-4 * (1.0 + np.max(np.abs(noise)))
        )
        return {
            "dz_dmean": mean_grad,
            "dz_dlogvar_per_noise": slope,
            "elementwise": consistent,
            "z_depends_on_log_var": depends,
        }

    def judge_summary(self, got, expected, *, hidden):
        ok_mean = abs(got["dz_dmean"] - expected["dz_dmean"]) <= 1e-3
        ok_var = abs(got["dz_dlogvar_per_noise"] - expected["dz_dlogvar_per_noise"]) <= 1e-3
        ok_form = got["elementwise"] == expected["elementwise"]
        depends, want_depends = got.get("z_depends_on_log_var"), expected.get("z_depends_on_log_var")
        ok_depends = depends is None or want_depends is None or depends == want_depends
        if ok_mean and ok_var and ok_form and ok_depends:
            return Verdict(
                True,
                "dz/dz_mean = 1 and dz/dz_log_var = 0.5 * eps * exp(0.5 * z_log_var)"
                + (" on hidden inputs" if hidden else ""),
            )
        parts = []
        if not ok_mean:
            parts.append(
                f"dz/dz_mean is {got['dz_dmean']:.3f}, where z = z_mean + exp(0.5 * z_log_var) * eps "
                f"gives {expected['dz_dmean']:.3f}"
            )
        if not ok_var and depends and abs(got["dz_dlogvar_per_noise"]) < 1e-6:
            # A value that changes with an input but passes no gradient back to it is cut from the graph; which
            # part is cut the gradients tell: none reaching z_mean either means z as a whole.
            cut = "z is" if abs(got["dz_dmean"]) < 1e-6 else "the standard deviation is"
            parts.append(f"z changes with z_log_var, but no gradient reaches z_log_var: {cut} detached from the graph")
        elif not ok_var:
            parts.append(
                f"dz/dz_log_var is {got['dz_dlogvar_per_noise']:.3f} * (z - z_mean), where the "
                f"reparameterization gives {expected['dz_dlogvar_per_noise']:.3f} * (z - z_mean), i.e. "
                "0.5 * eps * exp(0.5 * z_log_var)"
            )
        if not ok_depends:
            parts.append("z does not change with z_log_var" if not depends else "z changes with z_log_var")
        if not ok_form and ok_mean and ok_var:
            parts.append("the gradients do not follow z = z_mean + exp(0.5 * z_log_var) * eps element by element")
        where = "on a hidden input, " if hidden else ""
        return Verdict(False, where + "; ".join(parts) + ".")


@register
class SamplerLimit(SummaryCheck):
    name = "sampler_limit"
    label = "no noise when the variance vanishes"

    SUMMARY_KEYS = ("max_deviation",)

    def probe(self, fn, *, batch_size, latent_dim, seed=0):
        z_mean, _ = latent_inputs(batch_size, latent_dim, seed)
        z = _sample(_sampler(fn, seed), z_mean, np.full_like(z_mean, LIMIT_LOG_VAR))
        return {"z": z, "args": {"batch_size": int(batch_size), "latent_dim": int(latent_dim), "seed": int(seed)}}

    def summary(self, raw):
        """In the grader: the largest distance of the student's z from z_mean (made again from the arguments)."""
        args = raw["args"]
        z_mean, _ = latent_inputs(args["batch_size"], args["latent_dim"], args["seed"])
        z = np.asarray(raw["z"], dtype="float64")
        if z.shape != z_mean.shape:
            raise ValueError(f"the layer returned shape {fmt_shape(z.shape)}; expected the shape of z_mean")
        deviation = float(np.max(np.abs(z - z_mean))) if np.all(np.isfinite(z)) else float("inf")
        return {"max_deviation": deviation}

    @staticmethod
    def _kind(deviation: float) -> str:
        if not np.isfinite(deviation) or deviation > 1e6:
            return "explodes"
        return "equal" if deviation <= 1e-5 else "noisy"

    def judge_summary(self, got, expected, *, hidden):
        mine, want = self._kind(got["max_deviation"]), self._kind(expected["max_deviation"])
        same = mine == want and (mine != "noisy" or 0.5 <= got["max_deviation"] / expected["max_deviation"] <= 2)
        if same:
            return Verdict(
                True,
                f"with z_log_var = {LIMIT_LOG_VAR:g} (no variance) z equals z_mean"
                if mine == "equal"
                else "behaves as expected when the variance vanishes",
            )
        if mine == "explodes":
            return Verdict(
                False,
                f"with z_log_var = {LIMIT_LOG_VAR:g} (no variance) z is not finite or huge: the "
                "standard deviation must be exp(+0.5 * z_log_var), which goes to 0.",
            )
        if mine == "noisy":
            # Noise left where the variance vanishes: unscaled noise, or a scale that does not go to 0 (a floor added
            # to the standard deviation, say); the draws do not tell which.
            by = "" if hidden else f" by up to {got['max_deviation']:.3g}"
            return Verdict(
                False,
                f"with z_log_var = {LIMIT_LOG_VAR:g} (no variance) z still differs from z_mean{by}; the noise must "
                f"vanish there (its standard deviation exp(0.5 * z_log_var) is {np.exp(0.5 * LIMIT_LOG_VAR):.0e}).",
            )
        return Verdict(False, f"with z_log_var = {LIMIT_LOG_VAR:g}, z equals z_mean; the reference differs here.")


def shares_noise_across_dimensions(draws: np.ndarray) -> bool:
    """Whether draws of z (examples x latent dimensions, the same z_mean and z_log_var in every row) take their
    noise from one epsilon per example: then the noise of any two dimensions over the examples is perfectly
    correlated, whatever each dimension's scale. Dimensions without noise across the examples (another property's
    fault) tell nothing and are left out; so is a batch too small to tell."""
    draws = np.asarray(draws, dtype="float64")
    if draws.ndim != 2 or draws.shape[0] < 3:
        return False
    noisy = draws[:, np.std(draws, axis=0) > 1e-7]
    if noisy.shape[1] < 2 or not np.all(np.isfinite(noisy)):
        return False
    r = np.corrcoef(noisy, rowvar=False)
    pairs = np.abs(r[np.triu_indices_from(r, k=1)])
    return bool(np.median(pairs) > SHARED_CORRELATION)


@register
class SamplerRandomness(PropertiesCheck):
    name = "sampler_randomness"
    label = "fresh, seeded noise in the sampling layer"

    def probe(self, fn, *, batch_size, latent_dim, seed=0):
        z_mean, z_log_var = latent_inputs(1, latent_dim, seed)
        z_mean, z_log_var = np.repeat(z_mean, batch_size, axis=0), np.repeat(z_log_var, batch_size, axis=0)
        layer = _sampler(fn, seed)
        first, second = _sample(layer, z_mean, z_log_var), _sample(layer, z_mean, z_log_var)
        again = _sample(_sampler(fn, seed), z_mean, z_log_var)
        args = {"batch_size": int(batch_size), "latent_dim": int(latent_dim), "seed": int(seed)}
        return {"first": first, "second": second, "again": again, "args": args}

    def properties(self, raw):
        """In the grader, from the three draws (the same z_mean for every example of the batch), each of the shape
        the call's arguments give."""
        first, second, again = (np.asarray(raw[k], dtype="float64") for k in ("first", "second", "again"))
        want = (int(raw["args"]["batch_size"]), int(raw["args"]["latent_dim"]))
        if first.shape != want or second.shape != want or again.shape != want:
            return dict.fromkeys(self.SAYS, False)
        rows = np.any(np.abs(first[1:] - first[:1]) > 1e-7, axis=1)
        return {
            "new_noise_each_call": bool(np.mean(np.abs(first - second) > 1e-7) > 0.5),
            "new_noise_each_example": bool(np.mean(rows) > 0.5),
            "new_noise_each_dimension": not shares_noise_across_dimensions(first),
            "same_seed_same_draws": bool(np.all(np.abs(first - again) <= 1e-6)),
        }

    def _as_summary(self, value: dict) -> dict:
        """A public check's `expected=` written before the dimensions were looked at holds the other properties
        only; the solution's draws have noise of their own in each dimension."""
        if "new_noise_each_dimension" not in value and all(
            k in value for k in self.SAYS if k != "new_noise_each_dimension"
        ):
            value = {**value, "new_noise_each_dimension": True}
        return super()._as_summary(value)

    SAYS = {
        # Each sentence says what the draws show and what they should show: the draws do not tell why (a fixed
        # seed, epsilon drawn once in __init__, no noise at all, ...), the catalogue's mistakes do.
        "new_noise_each_call": (
            "each call draws new noise",
            "two calls of the same layer give the same z; each call must draw new noise",
        ),
        "new_noise_each_example": (
            "each example of a batch gets its own noise",
            "every example of a batch gets the same noise; each example must get its own",
        ),
        "new_noise_each_dimension": (
            "each latent dimension gets its own noise",
            "the latent dimensions share one epsilon: over the batch, the noise of each dimension is that of "
            "another, scaled; each latent dimension must get noise of its own",
        ),
        "same_seed_same_draws": (
            "two layers made with the same seed draw the same noise",
            "two layers made with the same seed draw different noise; the same seed must give the same draws",
        ),
    }
