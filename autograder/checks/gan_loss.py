"""Checks of the GAN's two losses, both computed from the discriminator's logits (no sigmoid applied):
`discriminator_loss(real_logits, fake_logits)` and `generator_loss(fake_logits)`, each logit array of shape
(batch, 1), each loss a scalar.

- `*_loss_value`: the value on seeded, moderate logits, against the reference to a relative 1e-5;
- `*_loss_properties`: what the loss does where GAN training goes wrong: logits of +-50 (a confident discriminator)
  must give finite, exact values; the gradient must push each logit the right way (the discriminator raises real
  logits and lowers fake ones, the generator raises fake ones); the generator's gradient must stay strong when the
  discriminator rejects its samples (the non-saturating loss); the loss is a mean over the batch.

The probes return the losses the student's function gave and the gradients the backend computed through it (values
of the student's own function); `summary` works out, in the grader, the few numbers that describe the behaviour
(where patching numpy or Keras in the student's process changes nothing), so that a catalogued mistake's result
(labels swapped, the saturating loss, probabilities where logits are given, ...) can be told from another's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .base import SummaryCheck, Verdict, register
from .gradients import input_gradients
from .messages import fmt_number, fmt_shape, got_expected, problems
from .student import as_sent, call_student, tensor_as_array

VALUE_RTOL = 1e-5
EXTREME = 50.0  # the logit of a discriminator that is sure: sigmoid(50) is 1.0 in float32
EXTREME_ATOL = 1e-3  # the loss at +-50 logits, where the exact value is 0, 50 or 100
REJECTED = -5.0  # a fake logit the discriminator rejects clearly (sigmoid(-5) = 0.0067)
GRADIENT_ATOL = 1e-3  # on the gradient per example (batch size times the gradient of the mean)

# Which logits each loss takes, in the order of its arguments.
ARGUMENTS = {"discriminator_loss": ("real_logits", "fake_logits"), "generator_loss": ("fake_logits",)}
# Logits where the discriminator is right and sure, and where it is wrong and sure.
CONFIDENT: dict[str, dict[str, tuple[float, ...]]] = {
    "discriminator_loss": {"right": (EXTREME, -EXTREME), "wrong": (-EXTREME, EXTREME)},
    "generator_loss": {"right": (EXTREME,), "wrong": (-EXTREME,)},
}  # the generator "wins" at +50


def logits(loss: str, batch_size: int, seed: int) -> list[np.ndarray]:
    """Seeded logits of shape (batch_size, 1) for each argument of `loss`: real ones mostly positive, fake ones
    mostly negative, all within +-6 (where every stable and naive way of writing the loss agrees in float32)."""
    rng = np.random.default_rng([int(seed), int(batch_size), 31])
    centres = {"real_logits": 1.0, "fake_logits": -1.0}
    return [
        np.clip(rng.normal(centres[name], 1.5, (int(batch_size), 1)), -6, 6).astype("float32")
        for name in ARGUMENTS[loss]
    ]


def _call(fn: Callable, loss: str, arrays) -> np.ndarray:
    from keras import ops

    return call_student(fn, *[ops.convert_to_tensor(a) for a in arrays], returns=tensor_as_array, what=loss)


def _scalar(value: np.ndarray) -> float | None:
    """The loss as a number, or None when it is not one scalar."""
    return float(value) if np.shape(value) == () else None


def _number(value: float | None) -> float | None:
    """A value that crosses to the grader as JSON: inf and NaN as None, with `finite` saying which."""
    return float(value) if value is not None and np.isfinite(value) else None


def _where(loss: str, batch_size: int) -> str:
    return f"on a batch of {batch_size} {' and '.join(ARGUMENTS[loss])} of shape ({batch_size}, 1)"


class _LossValue(SummaryCheck):
    loss = ""
    SUMMARY_KEYS = ("shape", "value")

    def probe(self, fn, *, batch_size, seed=0):
        return {
            "loss": as_sent(_call(fn, self.loss, logits(self.loss, batch_size, seed))),
            "args": {"batch_size": int(batch_size)},
        }

    def summary(self, raw):
        """In the grader: the shape of the student's loss, and its value when it is one finite number."""
        value = np.asarray(raw["loss"], dtype="float64")
        return {
            "shape": list(value.shape),
            "value": _number(_scalar(value)),
            "args": {"batch_size": int(raw["args"]["batch_size"])},
        }

    def judge_summary(self, got, expected, *, hidden):
        if got["shape"] != expected["shape"]:
            shape = "is not a scalar on a hidden input" if hidden else f"has shape {fmt_shape(got['shape'])}"
            return Verdict(False, f"{self.loss} {shape}; it must be a scalar (shape ()), the mean over the batch.")
        value, want = got["value"], expected["value"]
        if _near(value, want, VALUE_RTOL * abs(want or 0.0) + 1e-6):
            return Verdict(
                True,
                f"{self.loss} is right on a hidden batch"
                if hidden
                else f"{self.loss} {_written(value)} {_where(self.loss, got['args']['batch_size'])}",
            )
        if hidden:
            return Verdict(False, f"{self.loss} gives a wrong value on a hidden batch of another size.")
        return Verdict(
            False,
            f"{_where(self.loss, got['args']['batch_size'])}: "
            f"{got_expected(self.loss, _written(value), _written(want))} (relative tolerance "
            f"{VALUE_RTOL:g}).",
        )


class _LossProperties(SummaryCheck):
    loss = ""
    SUMMARY_KEYS = ("scalar", "batch_twice_ratio")

    def probe(self, fn, *, batch_size, seed=0):
        names = ARGUMENTS[self.loss]
        arrays = logits(self.loss, batch_size, seed)
        value = _call(fn, self.loss, arrays)
        doubled = _call(fn, self.loss, [np.concatenate([a, a]) for a in arrays])
        raw: dict[str, Any] = {"loss": as_sent(value), "doubled": as_sent(doubled), "batch_size": int(batch_size)}
        if value.shape != ():
            return raw  # the judge stops at the shape: a gradient needs a scalar
        raw["at"] = {
            case: as_sent(_call(fn, self.loss, [np.full((int(batch_size), 1), v, dtype="float32") for v in values]))
            for case, values in CONFIDENT[self.loss].items()
        }
        # The gradients at the seeded logits (which way gradient descent moves each logit), computed by the backend
        # through the student's loss.
        _, grads = input_gradients(fn, arrays, call=self._student_call)
        raw["gradients"] = dict(zip(names, grads))
        if self.loss == "generator_loss":  # how hard it pushes fakes that the discriminator rejects clearly
            rejected = [np.full((int(batch_size), 1), REJECTED, dtype="float32")]
            _, (grad,) = input_gradients(fn, rejected, call=self._student_call)
            raw["rejected"] = grad
        return raw

    def summary(self, raw):
        """In the grader, from the student's losses and the gradients through them."""
        value = _scalar(np.asarray(raw["loss"], dtype="float64"))
        doubled = _scalar(np.asarray(raw["doubled"], dtype="float64"))
        out: dict[str, Any] = {
            "scalar": value is not None,
            "batch_twice_ratio": _number(doubled / value) if value and doubled is not None else None,
        }
        if value is None:
            return out
        for case in CONFIDENT[self.loss]:
            out[f"confident_{case}"] = _number(_scalar(np.asarray(raw["at"][case], dtype="float64")))
        out["push"] = {
            name: _direction(np.asarray(raw["gradients"][name], dtype="float64")) for name in ARGUMENTS[self.loss]
        }
        if self.loss == "generator_loss":
            # per example: the batch size times the gradient of a mean
            grad = np.asarray(raw["rejected"], dtype="float64")
            out["rejected_gradient"] = _number(float(np.mean(grad)) * int(raw["batch_size"]))
        return out

    def _student_call(self, fn, tensors):
        return call_student(fn, *tensors, what=self.loss)

    def judge_summary(self, got, expected, *, hidden):
        if not got["scalar"]:
            return Verdict(False, f"{self.loss} does not return a scalar (shape ()): average over the batch.")
        found = []
        for case, meaning in (("wrong", "wrong"), ("right", "right")):
            value, want = got[f"confident_{case}"], expected[f"confident_{case}"]
            if not _near(value, want, EXTREME_ATOL * max(1.0, abs(want or 0.0))):
                found.append(
                    f"where the discriminator is sure and {meaning} (logits of +-{EXTREME:g}) it gives "
                    f"{_written(value)}, expected {_written(want)}: compute it from the logits with a stable "
                    "formula (from_logits=True), not from sigmoid probabilities"
                )
        for name, want in expected["push"].items():
            mine = got["push"].get(name)
            if mine != want:
                found.append(
                    f"its gradient pushes {name} {_push_words(mine)}; training must push them {_push_words(want)}"
                )
        if "rejected_gradient" in expected:
            mine, want = got["rejected_gradient"], expected["rejected_gradient"]
            if not _near(mine, want, GRADIENT_ATOL):
                found.append(
                    f"where the discriminator rejects the fakes (logit {REJECTED:g}) its gradient per "
                    f"example is {_written(mine)}, expected {_written(want)}: the non-saturating loss keeps "
                    "pushing the generator when it is losing"
                )
        ratio, want = got["batch_twice_ratio"], expected["batch_twice_ratio"]
        if not _near(ratio, want, 1e-4):
            doubles = ratio is not None and abs(ratio - 2.0) <= 1e-4
            found.append(
                "it doubles when the same batch is given twice: it is summed over the batch, not averaged"
                if doubles
                else "it changes when the same batch is given twice: average over the batch"
            )
        if found:
            return Verdict(False, f"{self.loss}: " + problems(found))
        return Verdict(
            True,
            f"{self.loss} is exact and finite at logits of +-{EXTREME:g}, pushes the logits the "
            "right way, and is a mean over the batch",
        )


def _written(value: float | None) -> str:
    return "inf or NaN" if value is None else fmt_number(value)


def _near(value: float | None, want: float | None, atol: float) -> bool:
    """Two measured numbers within `atol`; None (inf or NaN) is near only None."""
    if value is None or want is None:
        return value is None and want is None
    return abs(value - want) <= atol


def _direction(grad: np.ndarray) -> str:
    if np.all(grad < 0):
        return "up"  # raising the logit lowers the loss: gradient descent raises it
    if np.all(grad > 0):
        return "down"
    if np.all(grad == 0):
        return "nowhere"
    return "both ways"


def _push_words(direction: str | None) -> str:
    return {"up": "up", "down": "down", "nowhere": "nowhere (no gradient)", "both ways": "both up and down"}.get(
        direction or "", "nowhere"
    )


@register
class DiscriminatorLossValue(_LossValue):
    name = "discriminator_loss_value"
    label = "value of the discriminator's loss on fixed logits"
    loss = "discriminator_loss"


@register
class DiscriminatorLossProperties(_LossProperties):
    name = "discriminator_loss_properties"
    label = "the discriminator's loss: stable at large logits, the right direction, a mean over the batch"
    loss = "discriminator_loss"


@register
class GeneratorLossValue(_LossValue):
    name = "generator_loss_value"
    label = "value of the generator's loss on fixed logits"
    loss = "generator_loss"


@register
class GeneratorLossProperties(_LossProperties):
    name = "generator_loss_properties"
    label = "the generator's loss: stable, non-saturating, the right direction, a mean over the batch"
    loss = "generator_loss"
