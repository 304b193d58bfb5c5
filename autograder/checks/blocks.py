"""Checks of a function that adds layers to a Keras tensor: `fn(x, num_filters) -> tensor` (encoder and decoder
blocks, and any block with the same calling convention).

The structure checks compare the block's layers by meaning: the probe describes every layer and operation the block
adds (nested models opened), and the judges compare their canonical forms (layer_forms.py), so that code Keras
treats as the same computation gets the same verdict. The layers a block should have are stated openly by the
assignment, so a failure says what the block has and what the assignment asks for, on hidden inputs too; only
numbers that depend on the input (the filters as a count, the parameter count) stay unsaid there.

What the probes send is the student's block's own description: the output tensor's shape, each layer's class and
`get_config()`, and `count_params()`, read by Keras from the student's own layers. Forging any of them (patching
Keras in the student's process) is writing a block that describes itself that way; no numpy statistic or
comparison is made in the worker, and every comparison is made in the grader (the judges, `layer_forms`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import layer_forms
from .base import Check, Verdict, register
from .messages import fmt_shape, got_asked, got_expected_shape, problems, shape_difference
from .student import call_student, keras_tensor_from

# The settings reported first, in this order (the ones the assignment's text names); any other follows by name.
_SETTINGS = ("filters", "kernel_size", "strides", "padding", "activation", "kernel_initializer", "pool_size", "size")
# Attributes of a Keras operation (keras.ops / keras.activations on a tensor) that change what it computes.
_OP_ATTRIBUTES = ("negative_slope", "max_value", "threshold", "alpha", "axis", "approximate")
_AXES = ("height", "width", "channels")


def _call_block(fn: Callable, input_shape, num_filters) -> tuple[Any, Any]:
    import keras

    inputs = keras.Input(shape=tuple(input_shape))
    return inputs, call_student(fn, inputs, num_filters, returns=keras_tensor_from(inputs))


def _steps(model) -> list:
    """The layers and operations of a functional model in the order it applies them, with the models nested in it
    (a keras.Sequential called on a tensor, a keras.Model used as a layer) opened. `type() is`: a class of the
    student's is described as itself, never opened or taken for Keras' own."""
    import keras
    from keras.src.models.functional import Functional

    found = []
    inner = model.layers if type(model) is keras.Sequential else model.operations
    for step in inner:
        if isinstance(step, keras.layers.InputLayer):
            continue
        if type(step) in (keras.Sequential, Functional):
            found += _steps(step)
        else:
            found.append(step)
    return found


def _plain_setting(value: Any) -> Any:
    """A configuration value as plain data (what may cross from the worker): numbers, text, lists, dicts."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain_setting(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain_setting(v) for k, v in value.items()}
    return type(value).__name__


def _describe(step) -> dict:
    """One layer or operation as plain data: its class and its configuration (every argument explicit)."""
    import keras

    kind = type(step).__name__
    if not isinstance(step, keras.layers.Layer):  # an operation applied to a tensor
        out: dict[str, Any] = {"class": f"ops.{kind}"}
        out.update({key: _plain_setting(getattr(step, key)) for key in _OP_ATTRIBUTES if hasattr(step, key)})
        return out
    if getattr(keras.layers, kind, None) is not type(step):  # a class of the student's that takes a Keras name
        return {"class": f"{type(step).__module__}.{type(step).__qualname__}"}
    out = {"class": kind, **{str(k): _plain_setting(v) for k, v in step.get_config().items()}}
    if "axis" in out:
        try:
            out["rank"] = len(step.output.shape)
        except (AttributeError, ValueError):  # a layer used more than once has no single output
            pass
    return out


def describe_steps(model) -> list[dict]:
    """Every layer and operation of a functional model, in the order it applies them, as plain data (`_steps`,
    `_describe`): what a structure check's probe sends, for `layer_forms.canonical` in the grader."""
    return [_describe(step) for step in _steps(model)]


def _where(args: dict, hidden: bool) -> str:
    if hidden:
        return "on a hidden input"
    return f"on a {fmt_shape(args['input_shape'])} input with num_filters={args['num_filters']}"


@register
class BlockOutputShape(Check):
    name = "block_output_shape"
    label = "output shape of the block"

    def probe(self, fn, *, input_shape, num_filters):
        _, outputs = _call_block(fn, input_shape, num_filters)
        return {
            "shape": [None if s is None else int(s) for s in outputs.shape[1:]],
            "args": {"input_shape": list(input_shape), "num_filters": int(num_filters)},
        }

    def judge(self, got, expected, *, hidden):
        where = _where(got["args"], hidden)
        if got["shape"] == expected["shape"]:
            return Verdict(
                True,
                "the output shape is right on a hidden input"
                if hidden
                else f"output shape {fmt_shape(got['shape'])} {where}",
            )
        if hidden:
            return Verdict(
                False,
                f"the output shape is wrong on a hidden input: "
                f"{shape_difference(got['shape'], expected['shape'], _AXES)}. The shape rules of "
                "the public check must hold for every input size, odd ones included.",
            )
        return Verdict(False, f"{where}: {got_expected_shape('output shape', got['shape'], expected['shape'])}.")


class _BlockSummary(Check):
    """Checks that judge the layers the block adds, from one summary of them."""

    structural = True

    def probe(self, fn, *, input_shape, num_filters):
        import keras

        inputs, outputs = _call_block(fn, input_shape, num_filters)
        model = keras.Model(inputs, outputs)
        return {
            "layers": describe_steps(model),
            "params": int(model.count_params()),
            "args": {"input_shape": list(input_shape), "num_filters": int(num_filters)},
        }


def _layers(summary) -> list[layer_forms.Layer]:
    return layer_forms.canonical(summary["layers"])


def _kind_list(layers: list[layer_forms.Layer]) -> str:
    return ", ".join(layer_forms.kinds(layers)) or "no layers"


def _setting(key: str, value: Any, args: dict) -> str:
    """A setting in the assignment's words: the filters as `num_filters` when they are, else `key=value`."""
    if key == "filters" and value == args.get("num_filters"):
        return "num_filters filters"
    if key == "filters" and isinstance(value, int):
        return f"{value} filters"
    return f"{key}={layer_forms.describe_value(value)}"


def _setting_problem(kind: str, index: int, key: str, mine: Any, asked: Any, args: dict, hidden: bool) -> str:
    where = f"{kind} #{index}"
    if key == "filters" and hidden and isinstance(mine, int):  # a count of the student's own could tell the input
        return f"{where} does not have {_setting(key, asked, args)}"
    got = "no " + key if mine is None and key != "activation" else _setting(key, mine, args)
    return f"{where} has {got} where the assignment asks for {_setting(key, asked, args)}"


@register
class BlockLayers(_BlockSummary):
    name = "block_layers"
    label = "kinds and order of the block's layers"

    def judge(self, got, expected, *, hidden):
        have, want = _layers(got), _layers(expected)
        if layer_forms.kinds(have) == layer_forms.kinds(want):
            return Verdict(
                True,
                "the layers are of the kinds and in the order asked for" if hidden else f"layers {_kind_list(have)}",
            )
        return Verdict(False, got_asked(f"the layers {_kind_list(have)}", _kind_list(want)) + ".")


@register
class BlockLayerSettings(_BlockSummary):
    name = "block_layer_settings"
    label = "settings of the block's layers (kernel size, activation, padding, initializer, ...)"

    def judge(self, got, expected, *, hidden):
        # Layers are paired by kind in order, so a missing layer is reported by `block_layers`, not twice here.
        have, want = _layers(got), _layers(expected)
        args, found = got["args"], []
        for kind in dict.fromkeys(layer_forms.kinds(want)):
            mine = [layer for layer in have if layer_forms.kind_name(layer) == kind]
            theirs = [layer for layer in want if layer_forms.kind_name(layer) == kind]
            for i, (a, b) in enumerate(zip(mine, theirs), start=1):
                keys = [k for k in _SETTINGS if k in b.settings] + sorted(set(b.settings) - set(_SETTINGS))
                found += [
                    _setting_problem(kind, i, key, a.settings.get(key), b.settings[key], args, hidden)
                    for key in keys
                    if a.settings.get(key) != b.settings[key]
                ]
        if not set(layer_forms.kinds(have)) & set(layer_forms.kinds(want)):
            found.append("none of the block's layers is of a kind the assignment asks for")
        if found:
            return Verdict(False, problems(found))
        return Verdict(True, "kernel sizes, activations, padding and initializers as specified")


@register
class BlockParamCount(_BlockSummary):
    name = "block_param_count"
    label = "number of trainable parameters of the block"

    def judge(self, got, expected, *, hidden):
        if got["params"] == expected["params"]:
            return Verdict(True, "the parameter count is right" if hidden else f"{got['params']:,} parameters")
        if hidden:  # the counts depend on the input's channels and num_filters: say only which way it is off
            more = "more" if got["params"] > expected["params"] else "fewer"
            return Verdict(
                False,
                f"on a hidden input the block has {more} parameters than the layers the "
                "assignment describes (more or fewer filters, a kernel of another size, or a "
                "layer with weights added or missing).",
            )
        return Verdict(
            False, f"{_where(got['args'], False)}: got {got['params']:,} parameters, expected {expected['params']:,}."
        )
