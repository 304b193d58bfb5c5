"""The canonical form of the layers a block adds: everything that computes the same function compares equal.

A structure check's probe describes each layer (or Keras operation) the student's block adds as plain data, its
class and its configuration (`get_config()`, where Keras has already made every argument explicit). `canonical`
turns such a list into the form the checks compare, pure Python on plain data:

- what does not change what the layer computes is dropped: names, `trainable`, the dtype policy, regularizers
  and constraints (they act on training only), an initializer's seed;
- spellings Keras treats as one become one: an initializer is named by what it draws (`HeNormal()`, "he_normal"
  and the `VarianceScaling` they stand for are all "he_normal"), tuples and lists are lists, an axis counts from
  the front;
- every spelling of one activation function is one step: `Activation("relu")`, `ReLU()`, `keras.ops.relu` are
  `Activation("relu")`; `Activation("leaky_relu")` (slope 0.2, the function's default), `ReLU(negative_slope=s)`,
  `keras.ops.leaky_relu` and `LeakyReLU(negative_slope=s)` are `LeakyReLU` with their slope; aliases take one name;
- element-wise activation steps without a setting of their own are folded into the layer they follow when that
  layer is linear and has an `activation` argument, so `Conv2D(..., activation="relu")` and `Conv2D(...)` then
  `ReLU()` are the same layer; a leaky ReLU, whose slope is a setting, goes the other way: a layer's
  `activation="leaky_relu"` becomes the linear layer and a `LeakyReLU(negative_slope=0.2)` step after it, so it is
  always a step of its own (and said as one); identity steps go.

`kinds` names an `Activation` step with its function (`Activation("relu")`), so that a check, or a catalogued
mistake, about one activation function is not about every other.

`describe_value` writes a setting as the assignment writes it (`padding="same"`, `kernel_size=(3, 3)`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

# Configuration keys that do not change what a layer computes from its input.
_IGNORED = {
    "name",
    "trainable",
    "dtype",
    "autocast",
    "input_shape",
    "batch_input_shape",
    "batch_shape",
    "sparse",
    "ragged",
}
_IGNORED_SUFFIXES = ("_regularizer", "_constraint")

# The VarianceScaling settings behind Keras' named initializers: (scale, mode, distribution) -> name.
_VARIANCE_SCALING = {
    (2.0, "fan_in", "truncated_normal"): "he_normal",
    (2.0, "fan_in", "uniform"): "he_uniform",
    (1.0, "fan_avg", "truncated_normal"): "glorot_normal",
    (1.0, "fan_avg", "uniform"): "glorot_uniform",
    (1.0, "fan_in", "truncated_normal"): "lecun_normal",
    (1.0, "fan_in", "uniform"): "lecun_uniform",
}
_INITIALIZER_IGNORED = {"seed", "input_axes", "output_axes"}

# Activation functions as Keras names them in a layer's `activation` argument.
LINEAR = "linear"
_IDEMPOTENT = {"relu", "relu6"}  # f(f(x)) == f(x): a second one after the first changes nothing
_ALIASES = {"swish": "silu"}  # two names Keras gives one function
LEAKY = "LeakyReLU"  # the kind of a leaky ReLU step, with its `negative_slope`
LEAKY_FUNCTION, LEAKY_FUNCTION_SLOPE = "leaky_relu", 0.2  # keras.activations.leaky_relu and its default slope

# Element-wise operations without settings (keras.ops / keras.activations applied to a Keras tensor), by class.
_OPS = {
    "Relu": "relu",
    "Relu6": "relu6",
    "Sigmoid": "sigmoid",
    "Tanh": "tanh",
    "Softplus": "softplus",
    "Softsign": "softsign",
    "Silu": "silu",
    "Swish": "silu",
    "Exp": "exponential",
}

# The kind of a step that applies an activation function alone.
ACTIVATION = "Activation"


@dataclass
class Layer:
    """One layer in canonical form: its kind (a Keras class name, or the module path of the student's own class)
    and its settings, every argument explicit, in plain values."""

    kind: str
    settings: dict[str, Any] = field(default_factory=dict)


def canonical(described: Iterable[dict]) -> list[Layer]:
    """The canonical form of a block's layers, from the probe's descriptions (`{"class": ..., **config}`), in the
    order the block applies them."""
    out: list[Layer] = []
    for item in described:
        layer = _one(dict(item))
        if layer is None:
            continue
        if layer.kind != ACTIVATION and layer.settings.get("activation") == LEAKY_FUNCTION:
            out += [Layer(layer.kind, {**layer.settings, "activation": LINEAR}), _leaky(LEAKY_FUNCTION_SLOPE)]
            continue
        function = layer.settings.get("activation") if layer.kind == ACTIVATION else None
        if function is not None and out:
            previous = out[-1]
            if previous.settings.get("activation") == LINEAR:  # a linear layer that takes an activation argument
                previous.settings["activation"] = function
                continue
            if previous.settings.get("activation") == function and function in _IDEMPOTENT:
                continue
        out.append(layer)
    return out


def _leaky(slope: Any) -> Layer:
    return Layer(LEAKY, {"negative_slope": _number(slope)})


def kind_name(layer: Layer) -> str:
    """A layer's kind as the checks compare and say it: an `Activation` step with its function."""
    if layer.kind == ACTIVATION:
        return f'{ACTIVATION}("{layer.settings.get("activation")}")'
    return layer.kind


def kinds(layers: Iterable[Layer]) -> list[str]:
    return [kind_name(layer) for layer in layers]


def _one(item: dict) -> Layer | None:
    """One description in canonical form; None for a step that computes the identity."""
    kind = str(item.pop("class", "?"))
    rank = item.pop("rank", None)
    if kind.startswith("ops."):
        return _operation(kind[len("ops.") :], item)
    settings = {}
    for key, value in item.items():
        if key in _IGNORED or key.endswith(_IGNORED_SUFFIXES):
            continue
        if key.endswith("_initializer"):
            value = initializer_name(value)
        elif key == "axis" and isinstance(value, int) and isinstance(rank, int) and rank > 0:
            value = value % rank  # -1 and 3 are the same axis of 4-D data
        elif key == "activation" and isinstance(value, str):
            value = _ALIASES.get(value, value)
        settings[key] = _plain(value)
    return _activation_layer(kind, settings)


def _activation_layer(kind: str, settings: dict) -> Layer | None:
    """Keras' activation layers as one kind, `Activation` with the function's name; identities dropped."""
    function = None
    if kind == ACTIVATION:
        function = settings.get("activation")
        if function == LEAKY_FUNCTION:
            return _leaky(LEAKY_FUNCTION_SLOPE)
    elif kind == LEAKY:
        return _leaky(settings.get("negative_slope", 0.3))  # the layer's own default slope
    elif kind == "ReLU":
        slope, threshold, top = (settings.get(k) for k in ("negative_slope", "threshold", "max_value"))
        if slope and not threshold and top is None:
            return _leaky(slope)
        if not slope and not threshold and top in (None, 6, 6.0):
            function = "relu" if top is None else "relu6"
    elif kind == "Softmax" and settings.get("axis", -1) in (-1, [-1]):
        function = "softmax"
    elif kind == "ELU" and settings.get("alpha", 1.0) == 1.0:
        function = "elu"
    elif kind == "Identity":
        return None
    if function is None:
        return Layer(kind, settings)
    return None if function == LINEAR else Layer(ACTIVATION, {"activation": function})


def _operation(name: str, attributes: dict) -> Layer | None:
    """A Keras operation applied to a tensor (no layer behind it): an activation when it is one."""
    if name == "ReLU":  # keras.activations.relu, with its optional arguments
        return _activation_layer("ReLU", {k: _plain(v) for k, v in attributes.items()})
    if name == "LeakyRelu":  # keras.ops.leaky_relu, keras.activations.leaky_relu
        return _activation_layer(LEAKY, {"negative_slope": attributes.get("negative_slope", LEAKY_FUNCTION_SLOPE)})
    if name in _OPS:
        return Layer(ACTIVATION, {"activation": _OPS[name]})
    return Layer(f"keras.ops.{_snake(name)}", {k: _plain(v) for k, v in attributes.items()})


def initializer_name(value: Any) -> Any:
    """An initializer as one name for what it draws: "he_normal" for HeNormal(), "he_normal" and the
    VarianceScaling(2.0, "fan_in", "truncated_normal") they stand for; others as their snake-case name and settings."""
    if isinstance(value, str):
        return _snake(value) if value[:1].isupper() else value
    if not isinstance(value, dict) or "class_name" not in value:
        return _plain(value)
    name = str(value["class_name"])
    config = {k: v for k, v in dict(value.get("config") or {}).items() if k not in _INITIALIZER_IGNORED}
    if name == "VarianceScaling":
        distribution = str(config.get("distribution", "truncated_normal")).lower()
        distribution = "truncated_normal" if distribution == "normal" else distribution
        key = (float(config.get("scale", 1.0)), str(config.get("mode", "fan_in")), distribution)
        if key in _VARIANCE_SCALING:
            return _VARIANCE_SCALING[key]
        config = dict(config, distribution=distribution)
    if not config:
        return _snake(name)
    return f"{_snake(name)}(" + ", ".join(f"{k}={_plain(v)!r}" for k, v in sorted(config.items())) + ")"


def _number(value: Any) -> Any:
    """A slope as a float (0 and 0.0 alike), anything else as it is."""
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def describe_value(value: Any) -> str:
    """A setting's value as Python source writes it: "same" quoted, (3, 3) as a tuple, None."""
    if isinstance(value, list):
        return "(" + ", ".join(describe_value(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    if isinstance(value, str):
        return f'"{value}"'
    return repr(value)
