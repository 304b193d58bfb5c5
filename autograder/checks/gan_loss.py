"""Checks of the GAN's two losses, both computed from the discriminator's logits (no sigmoid applied):
`discriminator_loss(real_logits, fake_logits)` and `generator_loss(fake_logits)`, each logit array of shape
(batch, 1), each loss a scalar.

- `*_loss_value`: the value on seeded, moderate logits, against the reference to a relative 1e-5;
- `*_loss_properties`: what the loss does where GAN training goes wrong: a confident discriminator's logits must
  give finite, exact values, at +-50 (where 1 - sigmoid(50) is already 0 in float32) and beyond the points where
  float32 itself breaks (exp overflows above 88.7, sigmoid underflows to 0 below about -88.7, and below -104 even
  where it keeps denormals), where a naive `log(sigmoid(x))` or `log(1 + exp(x))` that is exact at +-50 is not;
  the gradient must push each logit the right way (the discriminator raises real logits and lowers fake ones, the
  generator raises fake ones); the generator's gradient must stay strong when the discriminator rejects its
  samples (the non-saturating loss); the loss is a mean over the batch.

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
# Logits past float32's own limits: exp(x) overflows above 88.7; sigmoid(x) is 0 below about -88.7 (and below -104
# where denormals are kept), so a log of it is -inf. 100 lies between those two limits, 120 beyond both.
FAR = (100.0, 120.0)
EXTREME_ATOL = 1e-3  # relative to the loss at such logits, where the exact value is 0 or a multiple of the logit
REJECTED = -5.0  # a fake logit the discriminator rejects clearly (sigmoid(-5) = 0.0067)
GRADIENT_ATOL = 1e-3  # on the gradient per example (batch size times the gradient of the mean)

# Which logits each loss takes, in the order of its arguments.
ARGUMENTS = {"discriminator_loss": ("real_logits", "fake_logits"), "generator_loss": ("fake_logits",)}
# The signs of the logits, one per argument, where the discriminator is right and sure, and where it is wrong and
# sure (the generator "wins" at positive logits); times EXTREME or one of FAR.
SIGNS: dict[str, dict[str, tuple[float, ...]]] = {
    "discriminator_loss": {"right": (1.0, -1.0), "wrong": (-1.0, 1.0)},
    "generator_loss": {"right": (1.0,), "wrong": (-1.0,)},
}
CONFIDENT = {
    loss: {case: tuple(EXTREME * s for s in signs) for case, signs in cases.items()} for loss, cases in SIGNS.items()
}


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

        def at(case: str, magnitude: float):
            full = [np.full((int(batch_size), 1), sign * magnitude, dtype="float32") for sign in SIGNS[self.loss][case]]
            return as_sent(_call(fn, self.loss, full))

        raw["at"] = {case: at(case, EXTREME) for case in SIGNS[self.loss]}
        raw["far"] = {case: [at(case, magnitude) for magnitude in FAR] for case in SIGNS[self.loss]}
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
        out["value"] = _number(value)  # on the seeded, moderate logits
        for case in SIGNS[self.loss]:
            out[f"confident_{case}"] = _number(_scalar(np.asarray(raw["at"][case], dtype="float64")))
            if "far" in raw:
                out[f"far_{case}"] = [_number(_scalar(np.asarray(v, dtype="float64"))) for v in raw["far"][case]]
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
        found = self._confident_problems(got, expected)
        for name, want in expected["push"].items():
            mine = got["push"].get(name)
            if mine != want:
                found.append(
                    f"its gradient pushes {name} {_push_words(mine)}; training must push them {_push_words(want)}"
                )
        if "rejected_gradient" in expected:
            mine, want = got["rejected_gradient"], expected["rejected_gradient"]
            if not _near(mine, want, GRADIENT_ATOL):
                text = (
                    f"where the discriminator rejects the fakes (logit {REJECTED:g}) its gradient per "
                    f"example is {_written(mine)}, expected {_written(want)}"
                )
                if _vanishes(mine, want):  # what the saturating loss does, and only a loss that saturates does
                    text += (
                        ": it nearly vanishes where the generator is losing, as the saturating loss's does; the "
                        "non-saturating loss keeps pushing the generator there"
                    )
                found.append(text)
        ratio, want = got["batch_twice_ratio"], expected["batch_twice_ratio"]
        if not _near(ratio, want, 1e-4):
            doubles = ratio is not None and abs(ratio - 2.0) <= 1e-4
            found.append(
                "it doubles when the same batch is given twice: it is summed over the batch, not averaged"
                if doubles
                else f"it changes when the same batch is given twice (it becomes {_written(ratio)} times as large; "
                "a mean over the batch stays the same)"
            )
        if found:
            return Verdict(False, f"{self.loss}: " + problems(found))
        return Verdict(
            True,
            f"{self.loss} is exact and finite at logits of +-{EXTREME:g} and beyond float32's limits "
            f"(+-{', +-'.join(f'{m:g}' for m in FAR)}), pushes the logits the right way, and is a mean over the batch",
        )

    def _confident_problems(self, got, expected) -> list[str]:
        """Where the discriminator is sure: the values measured and expected, at +-EXTREME and at each of FAR (a
        public check's `expected=` may hold +-EXTREME only). Advice only where the measurement shows the cause:
        inf or NaN (a step overflowed or took the log of 0), or a loss exact on the moderate logits and not here
        (a formula that loses exactness at large logits)."""
        found, unstable = [], False
        for case in ("wrong", "right"):
            pairs = [(EXTREME, got[f"confident_{case}"], expected[f"confident_{case}"])]
            if f"far_{case}" in expected and f"far_{case}" in got:
                pairs += list(zip(FAR, got[f"far_{case}"], expected[f"far_{case}"]))
            wrong = [(m, v, w) for m, v, w in pairs if not _near(v, w, EXTREME_ATOL * max(1.0, abs(w or 0.0)))]
            if wrong:
                where = _listed([f"+-{m:g}" for m, _, _ in wrong])
                gives, wants = (_listed([_written(t[i]) for t in wrong]) for i in (1, 2))
                found.append(
                    f"where the discriminator is sure and {case} (logits of {where}) it gives {gives}, expected {wants}"
                )
                unstable = unstable or any(v is None and w is not None for _, v, w in wrong)
        if not found:
            return found
        moderate, want = got.get("value"), expected.get("value")
        exact_elsewhere = want is not None and _near(moderate, want, VALUE_RTOL * abs(want) + 1e-6)
        if unstable:
            found[-1] += (
                ": a step of the formula overflows there or takes the log of 0; compute it from the logits with a "
                "formula that stays exact for every logit (from_logits=True, softplus or log_sigmoid)"
            )
        elif exact_elsewhere:
            found[-1] += (
                " (on the moderate logits it is exact): the formula loses exactness at large logits; compute it "
                "from the logits as they are with one that stays exact for every logit (from_logits=True, "
                "softplus or log_sigmoid)"
            )
        return found


def _vanishes(mine: float | None, want: float | None) -> bool:
    """A gradient of the expected sign but a tenth of its size or less (not none at all: that is no gradient
    flowing, which a saturating loss does not do)."""
    return mine is not None and want is not None and want != 0 and 0 < mine / want <= 0.1


def _listed(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


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
