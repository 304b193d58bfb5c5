"""Gradients of a layer's output with respect to its inputs, on whichever Keras backend is running.

Keras 3 has no backend-independent way to ask "how does this scalar change with the layer's inputs?", and a
check that looks at gradients (the sampling layer's reparameterization) must give the same answer on TensorFlow,
JAX and PyTorch. `input_gradients` is the one place that knows how each backend differentiates:

- TensorFlow: a `tf.GradientTape` that watches the inputs;
- JAX: `jax.value_and_grad` of a pure function. The layer runs inside a `keras.StatelessScope` that holds its
  variables (weights and SeedGenerator states), so a seeded random draw inside the trace reads the generator's
  state and writes its next state into the scope, never into the variable; after the trace the new state is
  assigned, so the layer has advanced exactly as after an ordinary call. A draw without a seed (which Keras
  refuses inside a JAX trace) gets a seeded stand-in for Keras' global generator, so that such a layer is
  differentiated as on the other backends (this reaches into `keras.src`, the one private name used here);
- PyTorch: `torch.autograd.grad` from input tensors that require gradients.

An input that the scalar does not depend on (no path, or a path cut by `stop_gradient`) gets a gradient of zeros
on every backend. Results come back as float64 NumPy arrays.

What a probe sends from here is the raw gradient arrays, the values the running backend computes through the
student's own layer or function (their own object, as its output is). Nothing here is a verdict: every sum, slope,
sign and comparison made of the gradients is computed in the grader, in the checks' `summary` and `judge`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

Call = Callable[[Callable, list], Any]  # (the layer, its input tensors) -> its outputs


def _plain_call(layer: Callable, inputs: list) -> Any:
    return layer(inputs)


def _sum_all(outputs) -> Any:
    from keras import ops, tree

    return sum(ops.sum(o) for o in tree.flatten(outputs))


def _as_numpy(structure) -> Any:
    from keras import ops, tree

    return tree.map_structure(lambda t: np.asarray(ops.convert_to_numpy(t), dtype="float64"), structure)


def input_gradients(
    layer, inputs: Sequence[np.ndarray], *, scalar: Callable | None = None, call: Call | None = None
) -> tuple[Any, list[np.ndarray]]:
    """`layer` called once on the list `inputs` (NumPy arrays, converted to backend tensors), and the gradient of
    `scalar(outputs)` (default: the sum of every output element) with respect to each input.

    `call(layer, tensors)` makes the call (default `layer(tensors)`); a check passes one that runs student code
    through `call_student`. Returns (the outputs as float64 NumPy arrays, in their structure; one float64 array
    per input, of that input's shape)."""
    from keras import backend

    arrays = [np.asarray(a) for a in inputs]
    scalar = scalar or _sum_all
    call = call or _plain_call
    name = backend.backend()
    if name == "tensorflow":
        outputs, grads = _tensorflow(layer, arrays, scalar, call)
    elif name == "jax":
        outputs, grads = _jax(layer, arrays, scalar, call)
    elif name == "torch":
        outputs, grads = _torch(layer, arrays, scalar, call)
    else:
        raise RuntimeError(f"input gradients are not available on the Keras backend {name!r}")
    return _as_numpy(outputs), [
        np.zeros(a.shape) if g is None else np.asarray(g, dtype="float64") for a, g in zip(arrays, grads)
    ]


# ------------------------------------------------------------------------------------------------ TensorFlow


def _tensorflow(layer, arrays, scalar, call):
    import tensorflow as tf

    tensors = [tf.constant(a) for a in arrays]
    with tf.GradientTape() as tape:
        for t in tensors:
            tape.watch(t)
        outputs = call(layer, tensors)
        total = scalar(outputs)
    grads = tape.gradient(total, tensors, unconnected_gradients=tf.UnconnectedGradients.ZERO)
    return outputs, [None if g is None else g.numpy() for g in grads]


# ------------------------------------------------------------------------------------------------ PyTorch


def _torch(layer, arrays, scalar, call):
    import torch
    from keras import ops

    tensors = [ops.convert_to_tensor(a).detach().requires_grad_(True) for a in arrays]
    with torch.enable_grad():
        outputs = call(layer, tensors)
        total = scalar(outputs)
    if not (isinstance(total, torch.Tensor) and total.requires_grad):
        return outputs, [None] * len(tensors)  # nothing that reaches the scalar is differentiable
    grads = torch.autograd.grad(total, tensors, allow_unused=True)
    return outputs, [None if g is None else g.detach().cpu().numpy() for g in grads]


# ------------------------------------------------------------------------------------------------ JAX


def _jax(layer, arrays, scalar, call):
    import jax
    import keras

    with _seeded_global_draws():
        _build(layer, arrays, call)
    variables = list(getattr(layer, "variables", []))  # a plain function of tensors has none
    values = [v.value for v in variables]

    def pure(*tensors):
        with keras.StatelessScope(state_mapping=list(zip(variables, values))) as scope:
            outputs = call(layer, list(tensors))
            total = scalar(outputs)
        state = [scope.get_current_value(v) for v in variables]
        return total, (outputs, state)

    tensors = [jax.numpy.asarray(a) for a in arrays]
    with _seeded_global_draws():
        (_, (outputs, state)), grads = jax.value_and_grad(pure, argnums=tuple(range(len(tensors))), has_aux=True)(
            *tensors
        )
    for variable, new, old in zip(variables, state, values):
        if new is not None and new is not old:
            variable.assign(new)  # the layer moves on (its seed generator advances) as after an ordinary call
    return outputs, [np.asarray(g) for g in grads]


def _build(layer, arrays, call: Call) -> None:
    """Create the layer's variables before the trace (a fresh layer builds on its first call): one symbolic call,
    made as the real call will be, builds it without drawing random numbers or touching its state."""
    import keras

    if getattr(layer, "built", True):
        return
    call(layer, [keras.KerasTensor(a.shape, dtype=str(a.dtype)) for a in arrays])


STAND_IN_SEED = 20240917  # the stand-in's seed: fixed, so that a differentiated call is reproducible


@contextmanager
def _seeded_global_draws():
    """While JAX traces, Keras refuses random draws made without a seed: they would use its global generator,
    whose state cannot change inside a trace. For the one differentiated call, stand a seeded generator of our
    own in for the global one. Its state updates stay in the trace's StatelessScope, and nothing global is read or
    advanced (no Python, NumPy or Keras random state), so the checks that run after it are not shifted."""
    import keras

    try:
        from keras.src.random import seed_generator as module
    except ImportError:  # another Keras layout: unseeded draws fail inside the trace with Keras' own message
        yield
        return
    original = getattr(module, "global_seed_generator", None)
    if original is None:
        yield
        return
    stand_in = keras.random.SeedGenerator(STAND_IN_SEED)
    module.global_seed_generator = lambda: stand_in
    try:
        yield
    finally:
        module.global_seed_generator = original
