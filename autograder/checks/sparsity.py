"""Checks of the KL sparsity penalty: `fn(activations, rho)`, where `activations` is a backend tensor (batch, units)
of values in [0, 1] (a sigmoid layer's outputs), returns the scalar

    sum over units j of  rho * log(rho / rho_hat_j) + (1 - rho) * log((1 - rho) / (1 - rho_hat_j)),

rho_hat_j being unit j's mean activation over the batch, kept away from 0 and 1 so that the penalty stays finite.

- `sparsity_penalty_value`: the value on seeded activations, against the reference to a relative 1e-5 (and 1e-6
  per unit); the units' mean activations lie between 0.02 and 0.5, on both sides of the rhos the checks use, away
  from the edges (where clipping rho_hat and adding an epsilon inside the logarithms, both correct, differ more);
- `sparsity_penalty_limits`: a scalar; zero when every rho_hat_j is rho, positive when they are not; finite, with a
  finite gradient, when units are dead (rho_hat = 0) or saturated (rho_hat = 1), and growing all the way there
  (larger at rho_hat = 1e-3 than at 2e-3, and larger still at 0: clipped with a small epsilon, not a large one);
- `sparsity_penalty_gradient`: the gradient with respect to the activations, computed by the running backend,
  against the reference's; its sign follows rho_hat_j - rho, and it is the same for every example of a unit (the
  penalty depends on the batch mean only).

The probes return the penalties the student's function gave and the gradients the backend computed through it
(values of the student's own function), with the arguments they were given; every sum, sign, comparison and
finiteness test is made in the grader (`judge`, `summary`), where patching numpy or Keras in the student's process
changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .base import Check, SummaryCheck, Verdict, register
from .gradients import input_gradients
from .messages import fmt_number, fmt_shape, got_expected
from .student import as_sent, call_student, tensor_as_array

VALUE_RTOL = 1e-5
# An epsilon of 1e-7 inside the logarithms (another correct way of keeping them finite) moves each unit's KL term by
# up to about 1e-6 at the checks' mean activations; on a small penalty that is more than the relative tolerance.
VALUE_ATOL_PER_UNIT = 1e-6
GRADIENT_RTOL = 1e-4
NEAR_EDGE = 1e-3  # a mean activation beside the edges, where the penalty must still grow toward them
INSIDE = 2e-2  # further in, where a penalty clipped with a large eps (up to this) responds to the units again


def activations(batch_size: int, units: int, seed: int) -> np.ndarray:
    """Seeded activations (float32): unit j's values spread uniformly over [0.1 m_j, 1.9 m_j], with m_j between 0.02
    and 0.5 on a log scale, so that the units' means fall on both sides of a rho between 0.03 and 0.3, away from 0
    and 1."""
    rng = np.random.default_rng([int(seed), int(batch_size), int(units), 13])
    means = np.exp(rng.uniform(np.log(0.02), np.log(0.5), int(units)))
    return (2.0 * means * rng.uniform(0.05, 0.95, (int(batch_size), int(units)))).astype("float32")


def _penalty_tensor(value, what: str):
    """The penalty as a backend tensor, left as it is so that gradients flow through it."""
    import keras

    if not keras.ops.is_tensor(value):
        raise TypeError(
            f"{what} returned a {type(value).__name__}, not a tensor: compute it with keras.ops, "
            "so that gradients can flow through it"
        )
    return value


def _penalty(fn: Callable, acts: np.ndarray, rho: float) -> np.ndarray:
    from keras import ops

    return call_student(fn, ops.convert_to_tensor(acts), float(rho), returns=tensor_as_array, what="sparsity_penalty")


def _gradient(fn: Callable, acts: np.ndarray, rho: float) -> tuple[np.ndarray, np.ndarray]:
    """The penalty and its gradient with respect to the activations (zeros where none flows)."""
    value, (grad,) = input_gradients(
        fn,
        [acts],
        call=lambda f, tensors: call_student(
            f, tensors[0], float(rho), returns=_penalty_tensor, what="sparsity_penalty"
        ),
    )
    return np.asarray(value), grad


def _where(args: dict) -> str:
    return f"on a batch of {args['batch_size']} x {args['units']} activations with rho={args['rho']:g}"


@register
class SparsityPenaltyValue(Check):
    name = "sparsity_penalty_value"
    label = "value of the sparsity penalty on fixed activations"

    def probe(self, fn, *, batch_size, units, rho, seed=0):
        value = _penalty(fn, activations(batch_size, units, seed), rho)
        return {
            "shape": list(value.shape),
            "value": value.tolist(),
            "args": {"batch_size": int(batch_size), "units": int(units), "rho": float(rho)},
        }

    def judge(self, got, expected, *, hidden):
        if list(got["shape"]) != list(expected["shape"]):
            shape = "is not a scalar on a hidden input" if hidden else f"has shape {fmt_shape(got['shape'])}"
            return Verdict(
                False, f"the penalty {shape}; it must be a scalar (shape ()), the sum of the units' KL terms."
            )
        value, want = float(np.ravel(got["value"])[0]), float(np.ravel(expected["value"])[0])
        if np.isclose(value, want, rtol=VALUE_RTOL, atol=VALUE_ATOL_PER_UNIT * int(expected["args"]["units"])):
            return Verdict(
                True,
                "the penalty is right on hidden activations"
                if hidden
                else f"penalty {fmt_number(value)} {_where(got['args'])}",
            )
        if hidden:
            return Verdict(
                False,
                "the penalty is wrong on hidden activations (another batch, number of units or "
                "rho than the public checks).",
            )
        return Verdict(
            False,
            f"{_where(got['args'])}: {got_expected('penalty', fmt_number(value), fmt_number(want))}"
            f" (tolerance {VALUE_RTOL:g} relative, {VALUE_ATOL_PER_UNIT:g} per unit).",
        )


@register
class SparsityPenaltyLimits(SummaryCheck):
    name = "sparsity_penalty_limits"
    label = "the sparsity penalty at rho_hat = rho and at the edges 0 and 1"

    SUMMARY_KEYS = (
        "shape",
        "scalar",
        "zero_at_rho",
        "positive_elsewhere",
        "finite_at_edges",
        "finite_gradient_at_edges",
        "growing_to_edges",
    )

    def probe(self, fn, *, batch_size, units, rho):
        rho, shape = float(rho), (int(batch_size), int(units))
        at_rho = _penalty(fn, np.full(shape, rho, dtype="float32"), rho)
        # Every unit's mean a little above rho, then every one a little below: a KL divergence is positive on both
        # sides (the formula's first term alone is negative above rho).
        above = _penalty(fn, np.full(shape, 1.5 * rho, dtype="float32"), rho)
        below = _penalty(fn, np.full(shape, 0.5 * rho, dtype="float32"), rho)
        # Dead and saturated units (means exactly 0 and 1) among ordinary ones; the same units just beside the
        # edges, and a little further in. The KL divergence grows all the way to the edges: a penalty whose rho_hat
        # is clipped with a large eps is flat there (the same beside the edge and further in).
        kind = np.arange(shape[1]) % 3

        def units_at(edge: float) -> np.ndarray:
            means = np.where(kind == 0, edge, np.where(kind == 1, 1.0 - edge, rho))
            return np.broadcast_to(means, shape).astype("float32")

        at_edges, grad = _gradient(fn, units_at(0.0), rho)
        beside, further = _penalty(fn, units_at(NEAR_EDGE), rho), _penalty(fn, units_at(2 * NEAR_EDGE), rho)
        inside = _penalty(fn, units_at(INSIDE), rho)  # does the penalty respond to these units at all?
        sent = {
            "at_rho": at_rho,
            "above": above,
            "below": below,
            "at_edges": np.asarray(at_edges, dtype="float64"),
            "beside": beside,
            "further": further,
            "inside": inside,
        }
        return {**{k: as_sent(v) for k, v in sent.items()}, "gradient_at_edges": grad}

    def summary(self, raw):
        """In the grader, from the student's penalties (and the gradient at the edges) on the probe's batches."""
        at_rho, above, below, at_edges, grad, beside, further = (
            np.asarray(raw[k], dtype="float64")
            for k in ("at_rho", "above", "below", "at_edges", "gradient_at_edges", "beside", "further")
        )
        scalar = all(np.shape(v) == () for v in (at_rho, above, below, at_edges, beside, further))
        total = {
            name: float(np.sum(v))
            for name, v in (
                ("at_rho", at_rho),
                ("above", above),
                ("below", below),
                ("at_edges", at_edges),
                ("beside", beside),
                ("further", further),
            )
        }
        finite = bool(np.isfinite(total["at_edges"]))
        growing = total["at_edges"] >= total["beside"] * (1 - 1e-5) and total["beside"] > total["further"] * (1 + 1e-4)
        # The same at the edges, beside them and a little further in, and yet another further in: rho_hat is held
        # off the edges (clipped with an eps between 2 * NEAR_EDGE and INSIDE). Without "inside" (a probe of an
        # older kit) nothing is concluded.
        inside = float(np.sum(np.asarray(raw["inside"], dtype="float64"))) if "inside" in raw else None

        def same(a: float, b: float) -> bool:
            return abs(a - b) <= 1e-6 * max(abs(a), abs(b), 1e-12)

        flat = bool(
            finite
            and inside is not None
            and np.isfinite(inside)
            and same(total["at_edges"], total["further"])
            and same(total["beside"], total["further"])
            and not same(inside, total["further"])
        )
        return {
            "shape": list(np.shape(at_rho)),
            "scalar": scalar,
            "at_rho": total["at_rho"],
            "zero_at_rho": bool(abs(total["at_rho"]) <= 1e-5),
            "positive_elsewhere": bool(total["above"] > 1e-6 and total["below"] > 1e-6),
            "finite_at_edges": finite,
            "finite_gradient_at_edges": bool(np.all(np.isfinite(grad))),
            "growing_to_edges": bool(finite and growing),
            "flat_at_edges": flat,
        }

    SAYS = {
        "zero_at_rho": (
            "zero when every unit's mean activation is rho",
            "the penalty is not zero when every unit's mean activation equals rho (where KL(rho || rho) is 0)",
        ),
        "positive_elsewhere": (
            "positive when the mean activations differ from rho",
            "the penalty is not positive when the mean activations differ from rho (all above it, then all "
            "below); a KL divergence is positive there",
        ),
        "finite_at_edges": (
            "finite for dead and saturated units",
            "the penalty is not finite when a unit's mean activation is exactly 0 or 1 (a dead "
            "or saturated sigmoid unit), so a logarithm or a division there meets 0: keep rho_hat off the "
            "edges (clip it to [eps, 1 - eps] with a small eps)",
        ),
        "finite_gradient_at_edges": (
            "with a finite gradient there",
            "the penalty's gradient is not finite when a unit's mean activation is exactly 0 or 1",
        ),
        "growing_to_edges": (
            "and growing all the way to the edges",
            f"the penalty stops growing before the edges (a unit whose mean activation is "
            f"{NEAR_EDGE:g} or {1 - NEAR_EDGE:g} costs no more than one at {2 * NEAR_EDGE:g} or "
            f"{1 - 2 * NEAR_EDGE:g}, or a dead or saturated unit costs less), so it stops pushing such units back",
        ),
    }
    # Said after `growing_to_edges` only when the penalty is the same at the edges, beside them and further in: a
    # rho_hat held away from the edges by more than 2 * NEAR_EDGE, which a small eps would not do. A penalty that
    # shrinks toward the edges for another reason (a term swapped, say) is not told to clip.
    FLAT_AT_THE_EDGES = (
        f": it is flat there, as when rho_hat is clipped with an eps above {2 * NEAR_EDGE:g}; clip it with a small "
        "eps (1e-7, say)"
    )

    def judge_summary(self, got, expected, *, hidden):
        if bool(got["scalar"]) != bool(expected["scalar"]) or list(got["shape"]) != list(expected["shape"]):
            return Verdict(
                False,
                "the penalty is not a scalar; it must be one value, the sum of the units' KL terms."
                if expected["scalar"]
                else "the penalty is a scalar; the reference's is not.",
            )
        wrong = [k for k in self.SAYS if bool(got[k]) != bool(expected[k])]
        if not wrong:
            return Verdict(True, "; ".join(self.SAYS[k][0] for k in self.SAYS if expected[k]))
        if "zero_at_rho" in wrong and not hidden:
            wrong_zero = f": it is {fmt_number(got['at_rho'])}"
        else:
            wrong_zero = ""
        flat = self.FLAT_AT_THE_EDGES if got.get("flat_at_edges") else ""
        if "finite_at_edges" in wrong and not got["finite_at_edges"]:
            wrong = [k for k in wrong if k != "growing_to_edges"]  # an infinite penalty neither grows nor stops
        says = [
            self.SAYS[k][1] + {"zero_at_rho": wrong_zero, "growing_to_edges": flat}.get(k, "")
            if expected[k]
            else f"unexpected: {self.SAYS[k][0]}"
            for k in wrong
        ]
        return Verdict(False, "; ".join(says) + ".")


@register
class SparsityPenaltyGradient(SummaryCheck):
    name = "sparsity_penalty_gradient"
    label = "gradient of the sparsity penalty with respect to the activations"

    SUMMARY_KEYS = ("per_unit", "follows_rho_hat_minus_rho", "same_for_each_example")

    def probe(self, fn, *, batch_size, units, rho, seed=0):
        acts = activations(batch_size, units, seed)
        _, grad = _gradient(fn, acts, rho)
        if grad.shape != acts.shape:
            raise ValueError(
                f"the gradient has shape {fmt_shape(grad.shape)}, not the activations' {fmt_shape(acts.shape)}"
            )
        return {
            "gradient": grad,
            "args": {"batch_size": int(batch_size), "units": int(units), "rho": float(rho), "seed": int(seed)},
        }

    def summary(self, raw):
        """In the grader: the activations made again from the probe's arguments, the gradient the student's
        penalty gave (computed by the backend through it)."""
        args = raw["args"]
        acts = activations(args["batch_size"], args["units"], args["seed"])
        grad, rho = np.asarray(raw["gradient"], dtype="float64"), float(args["rho"])
        if grad.shape != acts.shape:
            raise ValueError(
                f"the gradient has shape {fmt_shape(grad.shape)}, not the activations' {fmt_shape(acts.shape)}"
            )
        direction = np.sign(acts.astype("float64").mean(axis=0) - float(rho))  # the penalty falls toward rho
        per_unit = grad.mean(axis=0)
        spread = np.max(np.abs(grad - per_unit), axis=0)
        # Every example of a unit gets the same gradient when the penalty depends on the batch mean alone: one
        # value per unit says it all (and keeps a public check's expected value short).
        return {
            "per_unit": per_unit.tolist(),
            "follows_rho_hat_minus_rho": bool(np.all(np.sign(grad) == direction[None, :])),
            "same_for_each_example": bool(np.all(spread <= 1e-6 * (1.0 + np.abs(grad).max()))),
        }

    def judge_summary(self, got, expected, *, hidden):
        grad, want = np.asarray(got["per_unit"], float), np.asarray(expected["per_unit"], float)
        if (
            grad.shape == want.shape
            and np.allclose(grad, want, rtol=GRADIENT_RTOL, atol=1e-7)
            and got["same_for_each_example"] == expected["same_for_each_example"]
        ):
            return Verdict(
                True,
                "the gradient with respect to each activation is right"
                + (
                    " on hidden activations"
                    if hidden
                    else ": its sign follows rho_hat - rho, and every example of a unit gets the same one"
                ),
            )
        parts = []
        if got["follows_rho_hat_minus_rho"] != expected["follows_rho_hat_minus_rho"]:
            parts.append(
                "its sign does not follow rho_hat - rho (raising a unit's activations must raise the "
                "penalty when the unit's mean is above rho, and lower it when below)"
            )
        if got["same_for_each_example"] != expected["same_for_each_example"]:
            parts.append(
                "it differs between the examples of a unit, where a penalty of each unit's mean over the batch "
                "(axis 0) gives every example of the unit the same gradient"
            )
        if not parts and grad.shape == want.shape and not hidden:
            scale = float(np.sum(grad * want) / max(np.sum(want * want), 1e-30))
            if np.allclose(grad, scale * want, rtol=GRADIENT_RTOL, atol=1e-7):
                parts.append(f"it is {scale:.4g} times the expected gradient everywhere")
        if not parts:
            parts.append("its values differ from those of the penalty's formula")
        return Verdict(
            False,
            ("on hidden activations, " if hidden else "the gradient with respect to the activations: ")
            + "; ".join(parts)
            + ".",
        )
