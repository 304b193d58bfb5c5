"""Checks of a function that adds layers to a Keras tensor: `fn(x, num_filters) -> tensor` (encoder and decoder
blocks, and any block with the same calling convention)."""

from __future__ import annotations

from typing import Any, Callable

from .base import Check, Verdict, register
from .messages import fmt_shape, got_expected, got_expected_shape, problems
from .student import call_student, keras_tensor_from

# The layer settings that the structure checks compare, in the order they are reported.
_SETTINGS = ("filters", "kernel_size", "strides", "padding", "activation", "kernel_initializer", "pool_size", "size")


def _call_block(fn: Callable, input_shape, num_filters) -> tuple[Any, Any]:
    import keras

    inputs = keras.Input(shape=tuple(input_shape))
    return inputs, call_student(fn, inputs, num_filters, returns=keras_tensor_from(inputs))


def _describe(layer) -> dict:
    import keras

    config = layer.get_config()
    kind = type(layer).__name__
    if getattr(keras.layers, kind, None) is not type(layer):  # a class of the student's that takes a Keras name
        kind = f"{type(layer).__module__}.{type(layer).__qualname__}"
    out = {"class": kind}
    for key in _SETTINGS:
        if key not in config:
            continue
        value = config[key]
        if key == "kernel_initializer" and isinstance(value, dict):
            value = value.get("class_name")
        out[key] = list(value) if isinstance(value, tuple) else value
    return out


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
        return {"shape": [None if s is None else int(s) for s in outputs.shape[1:]],
                "args": {"input_shape": list(input_shape), "num_filters": int(num_filters)}}

    def judge(self, got, expected, *, hidden):
        where = _where(got["args"], hidden)
        if got["shape"] == expected["shape"]:
            return Verdict(True, "the output shape is right on a hidden input" if hidden
                           else f"output shape {fmt_shape(got['shape'])} {where}")
        if hidden:
            return Verdict(False, "the output shape is wrong on a hidden input; the shape rules of the public "
                                  "check must hold for every input size, odd ones included.")
        return Verdict(False, f"{where}: {got_expected_shape('output shape', got['shape'], expected['shape'])}.")


class _BlockSummary(Check):
    """Checks that judge the layers the block adds, from one summary of them."""

    def probe(self, fn, *, input_shape, num_filters):
        import keras

        inputs, outputs = _call_block(fn, input_shape, num_filters)
        model = keras.Model(inputs, outputs)
        layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
        return {"layers": [_describe(layer) for layer in layers], "params": int(model.count_params()),
                "args": {"input_shape": list(input_shape), "num_filters": int(num_filters)}}


def _kinds(summary) -> list[str]:
    return [layer["class"] for layer in summary["layers"]]


@register
class BlockLayers(_BlockSummary):
    name = "block_layers"
    label = "kinds and order of the block's layers"

    def judge(self, got, expected, *, hidden):
        have, want = _kinds(got), _kinds(expected)
        if have == want:
            return Verdict(True, "the layers are of the kinds and in the order asked for" if hidden
                           else f"layers {', '.join(have)}")
        if hidden:
            return Verdict(False, f"the block's layers are {', '.join(have) or 'none'}, which is not the "
                                  "sequence the assignment describes.")
        return Verdict(False, got_expected("layers", ", ".join(have) or "none", ", ".join(want)) + ".")


@register
class BlockLayerSettings(_BlockSummary):
    name = "block_layer_settings"
    label = "settings of the block's layers (kernel size, activation, padding, initializer, ...)"

    def judge(self, got, expected, *, hidden):
        # Layers are paired by kind in order, so a missing layer is reported by `block_layers`, not twice here.
        found = []
        for kind in dict.fromkeys(_kinds(expected)):
            mine = [layer for layer in got["layers"] if layer["class"] == kind]
            theirs = [layer for layer in expected["layers"] if layer["class"] == kind]
            for i, (a, b) in enumerate(zip(mine, theirs), start=1):
                for key in _SETTINGS:
                    if key in b and a.get(key) != b[key]:
                        what = f"{kind} #{i}: {key} is {a.get(key)!r}"
                        found.append(what if hidden else f"{what}, expected {b[key]!r}")
        if not any(layer["class"] in _kinds(expected) for layer in got["layers"]):
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
        if hidden:
            return Verdict(False, f"the block has {got['params']:,} parameters {_where(got['args'], True)}, which "
                                  "does not match the layers the assignment describes.")
        return Verdict(False, f"{_where(got['args'], False)}: got {got['params']:,} parameters, "
                              f"expected {expected['params']:,}.")
