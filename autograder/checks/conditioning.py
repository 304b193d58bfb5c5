"""Checks of the CVAE's conditioning (the `cvae` assignment):
- `conditioned_shape`, `conditioning_layers`: what a conditioning function `fn(x, attributes) -> tensor` builds,
  for the encoder side (an image and its attributes) and the decoder side (a latent code and the attributes); the
  layers are compared in their canonical forms (layer_forms.py), as the block checks compare theirs.
- `uses_condition`: the notebook's CVAE, freshly built (seeded, untrained), really reads its condition: each
  attribute changes the decoded image (or the encoder's code), the code changes it too, and the same input gives the
  same output.

The probes send what the student's code gave: the output's shape, the layers of the model built from it (their
classes and `get_config()`, as Keras describes the student's own layers, and the parameter count), and, for
`uses_condition`, the model's raw outputs, whose differences are measured in the grader (`UsesCondition.summary`),
where patching numpy or Keras in the student's process changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from . import layer_forms
from .base import Check, SummaryCheck, Verdict, register
from .blocks import describe_steps
from .messages import fmt_shape, got_expected_shape, problems
from .student import call_student, keras_model, keras_tensor_from, model_part, tensor_as_array


def attribute_names(n: int) -> list[str]:
    """The names of `n` face attributes: the kit's own when there are as many, else "attribute i"."""
    from ..data import ATTRIBUTES

    return list(ATTRIBUTES) if n == len(ATTRIBUTES) else [f"attribute {i}" for i in range(n)]


def _call_conditioning(fn: Callable, input_shape, n_attributes: int):
    import keras

    x = keras.Input(shape=tuple(input_shape), name="x")
    a = keras.Input(shape=(int(n_attributes),), name="attributes")
    return x, a, call_student(fn, x, a, returns=keras_tensor_from(x, a))


def _where(args: dict, hidden: bool) -> str:
    if hidden:
        return "on a hidden input"
    return f"on an input of shape {fmt_shape(args['input_shape'])} with {args['n_attributes']} attributes"


@register
class ConditionedShape(Check):
    name = "conditioned_shape"
    label = "shape of the conditioned input"

    def probe(self, fn, *, input_shape, n_attributes):
        _, _, out = _call_conditioning(fn, input_shape, n_attributes)
        return {
            "shape": [None if s is None else int(s) for s in out.shape[1:]],
            "args": {"input_shape": list(input_shape), "n_attributes": int(n_attributes)},
        }

    def judge(self, got, expected, *, hidden):
        where = _where(got["args"], hidden)
        if got["shape"] == expected["shape"]:
            return Verdict(
                True,
                "the shape is right on a hidden input" if hidden else f"output shape {fmt_shape(got['shape'])} {where}",
            )
        if hidden:  # the shape would tell the hidden input
            return Verdict(
                False,
                "the output shape is wrong on a hidden input; the rule of the public check must "
                "hold for every image size, number of channels and number of attributes.",
            )
        return Verdict(False, f"{where}: {got_expected_shape('output shape', got['shape'], expected['shape'])}.")


@register
class ConditioningLayers(Check):
    """The layers compared by meaning, as the block checks compare theirs: the probe describes every layer and
    operation the conditioning adds (blocks.describe_steps), the judge compares their canonical forms
    (layer_forms), so that `Dense(n)` and `Dense(units=n, activation=None)`, `Concatenate()` and
    `Concatenate(axis=3)` on images, or a Dense layer followed by `Activation("relu")` and one with
    `activation="relu"`, get the same verdict."""

    name = "conditioning_layers"
    structural = True
    label = "layers of the conditioning (kinds, sizes, parameters)"

    def probe(self, fn, *, input_shape, n_attributes):
        import keras

        x, a, out = _call_conditioning(fn, input_shape, n_attributes)
        model = keras.Model([x, a], out)
        return {
            "layers": describe_steps(model),
            "params": int(model.count_params()),
            "args": {"input_shape": list(input_shape), "n_attributes": int(n_attributes)},
        }

    def judge(self, got, expected, *, hidden):
        have, want = layer_forms.canonical(got["layers"]), layer_forms.canonical(expected["layers"])
        if layer_forms.kinds(have) != layer_forms.kinds(want):
            text = f"the conditioning adds the layers {', '.join(layer_forms.kinds(have)) or 'none'}"
            return Verdict(
                False,
                text
                + (
                    ", which is not what the assignment describes."
                    if hidden
                    else f"; expected {', '.join(layer_forms.kinds(want))}."
                ),
            )
        found = []
        for mine, ref in zip(have, want):
            name = layer_forms.kind_name(mine)
            for key in sorted(set(ref.settings) | set(mine.settings), key=_setting_order):
                if key.endswith("_initializer"):  # the assignment states none: any initial weights will do
                    continue
                value, asked = mine.settings.get(key), ref.settings.get(key)
                if value == asked:
                    continue
                if key == "axis":
                    found.append(
                        f"{name} joins on axis {value!r}" + ("" if hidden else f", expected {asked!r} (the last one)")
                    )
                elif hidden and key in _SAID_AS_A_RULE:  # the numbers would tell the hidden input
                    found.append(f"{name} has the wrong {_SAID_AS_A_RULE[key]}")
                else:
                    found.append(
                        f"{name} has {_setting(key, value)}" + ("" if hidden else f", expected {_setting(key, asked)}")
                    )
        if not found and got["params"] != expected["params"]:
            found.append(
                "the parameter count differs from the layers the assignment describes"
                if hidden
                else f"{got['params']:,} parameters, expected {expected['params']:,}"
            )
        if found:
            return Verdict(False, problems(found))
        return Verdict(
            True,
            "layers as the assignment describes"
            if hidden
            else f"layers {', '.join(layer_forms.kinds(have))}, {got['params']:,} parameters",
        )


# Settings said first, in this order (the ones the assignment's text names); any other follows by name.
_SETTINGS = ("units", "activation", "target_shape", "axis", "use_bias")
# On a hidden input, sizes are said as the rule they break: the numbers would tell the input.
_SAID_AS_A_RULE = {"units": "units (one per pixel: H * W)", "target_shape": "target shape (it must be (H, W, 1))"}


def _setting_order(key: str) -> tuple[int, str]:
    return (_SETTINGS.index(key) if key in _SETTINGS else len(_SETTINGS), key)


def _setting(key: str, value) -> str:
    return f"no {key}" if value is None and key != "activation" else f"{key}={layer_forms.describe_value(value)}"


@register
class UsesCondition(SummaryCheck):
    """Probes a freshly built, untrained CVAE: `fn` is the notebook's builder, `part` is "decoder" or "encoder"."""

    name = "uses_condition"
    label = "the model reads its condition"
    TOLERANCE = 1e-7  # a change smaller than this (mean absolute difference) counts as none
    SUMMARY_KEYS = ("attribute_changes", "input_change", "repeat_change")

    def probe(self, fn, *, part, image_size, latent_dim, filters, n_attributes=8, samples=4, seed=0):
        rng = np.random.default_rng(seed)
        model = call_student(
            fn,
            image_size=image_size,
            n_attributes=n_attributes,
            latent_dim=latent_dim,
            filters=tuple(filters),
            returns=keras_model,
            what="build_cvae",
        )
        sub = model_part(model, part)
        attrs = rng.integers(0, 2, size=(samples, n_attributes)).astype("float32")
        if part == "decoder":
            first = rng.normal(size=(samples, latent_dim)).astype("float32")
            other = rng.normal(size=(samples, latent_dim)).astype("float32")
        else:
            first = rng.uniform(size=(samples, image_size, image_size, 3)).astype("float32")
            other = rng.uniform(size=(samples, image_size, image_size, 3)).astype("float32")

        def run(x, a):
            out = call_student(sub, [x, a], training=False, what=f"the {part}")
            out = out[0] if isinstance(out, (list, tuple)) else out  # the encoder's z_mean
            return tensor_as_array(out, f"the {part}")  # (a PyTorch output that requires grad included)

        base = run(first, attrs)
        flipped_outputs = []
        for k in range(n_attributes):
            flipped = attrs.copy()
            flipped[:, k] = 1.0 - flipped[:, k]
            flipped_outputs.append(run(first, flipped))
        return {
            "part": part,
            "base": base,
            "flipped": flipped_outputs,
            "other": run(other, attrs),
            "repeat": run(first, attrs),
            "names": attribute_names(n_attributes),
        }

    def summary(self, raw):
        """In the grader: how far (mean absolute difference) each output of the student's model lies from the
        first one."""
        base = np.asarray(raw["base"], dtype="float64")

        def change(out) -> float:
            out = np.asarray(out, dtype="float64")
            if out.shape != base.shape:
                raise ValueError(
                    f"the {raw['part']} gave outputs of shapes {fmt_shape(base.shape)} and {fmt_shape(out.shape)}"
                )
            return float(np.mean(np.abs(out - base)))

        return {
            "part": raw["part"],
            "attribute_changes": [change(out) for out in raw["flipped"]],
            "input_change": change(raw["other"]),
            "repeat_change": change(raw["repeat"]),
            "names": list(raw["names"]),
        }

    def pattern(self, result) -> tuple:
        """What the judge compares: which inputs change the output, and whether a repeat gives the same output."""
        tol = self.TOLERANCE
        return (
            tuple(c > tol for c in result["attribute_changes"]),
            result["input_change"] > tol,
            result["repeat_change"] <= tol,
        )

    def judge_summary(self, got, expected, *, hidden):
        # The reference reads every attribute and its input, and repeats itself; a result passes when it behaves the
        # same way (so a catalogued mistake that ignores the condition can be recognised by its pattern too).
        part = got["part"]
        what = "decoded image" if part == "decoder" else "encoder's code (z_mean)"
        source = "latent code" if part == "decoder" else "image"
        attributes, reads_input, repeats = self.pattern(got)
        if self.pattern(got) == self.pattern(expected):
            return Verdict(
                True,
                f"each of the {len(got['names'])} attributes and the {source} change the {what}; "
                "the same input gives the same output",
            )
        found = []
        ignored = [name for name, changes in zip(got["names"], attributes) if not changes]
        if len(ignored) == len(got["names"]):
            found.append(f"switching any attribute leaves the {what} unchanged: the {part} ignores its condition")
        elif ignored:
            found.append(f"switching {', '.join(ignored)} leaves the {what} unchanged")
        if not reads_input:
            found.append(f"another {source} gives the same {what}: the {part} ignores its {source}")
        if not repeats:
            found.append(f"the same {source} and attributes give a different {what} each time; they must give the same")
        return Verdict(False, "; ".join(found or [f"the {part} does not read its inputs as the reference does"]) + ".")
