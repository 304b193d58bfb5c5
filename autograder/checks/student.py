"""The one way a check calls student code: `call_student`.

A probe never calls the student's function directly. `call_student(fn, *args, returns=..., **kwargs)`:
- runs `fn` with Keras' wrapping of errors removed: an exception raised in a layer's `call()` comes out as the
  student's own (its type, its message, a traceback that points at the line of the answer cell), not as Keras'
  "Exception encountered when calling ..." with terminal colour codes;
- lets the worker's item timer through untouched (it is a BaseException, never caught here), so a function that
  runs too long stops its item and is reported as past its time limit;
- hands the returned value to `returns`, which turns a value of the wrong kind (None, a dict, a tensor made up
  without layers, ...) into a TypeError that says what came back.

The error then becomes the check's result where the check runs: in the worker, the item's error for the
student's feedback (worker.describe_error); in the student's kernel, the failing cell's exception.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from contextlib import contextmanager
from typing import Any

import numpy as np

Returns = Callable[[Any, str], Any]  # (value, what) -> the value to use; raises TypeError for a wrong kind


def call_student(
    fn: Callable, /, *args: Any, returns: Returns | None = None, what: str = "the function", **kwargs: Any
) -> Any:
    """`fn(*args, **kwargs)` with plain errors, its result checked by `returns`; `what` names it in messages."""
    with plain_errors():
        value = fn(*args, **kwargs)
    return value if returns is None else returns(value, what)


@contextmanager
def plain_errors():
    """Re-raise an error that Keras wrapped ("Exception encountered when calling ...") as the original one, with
    its traceback. Any other error passes as it is. Training code that runs student layers uses it too."""
    try:
        yield
    except Exception as err:  # noqa: BLE001 - re-raised, unwrapped or as it was
        text = str(err)
        inner = re.search(r"\x1b\[1m(.*?)\x1b\[0m", text, re.S)
        if "Exception encountered when calling" not in text or inner is None:
            raise
        message = inner.group(1).strip()
        try:
            plain = type(err)(message) if message else type(err)()
        except Exception:  # noqa: BLE001 - an exception class with another constructor: keep Keras' version
            raise err from None
        raise plain.with_traceback(err.__traceback__) from None


# ------------------------------------------------------------------------------------------ what may come back


def keras_tensor_from(*inputs) -> Returns:
    """A Keras tensor computed from `inputs` through layers. `type(...) is`, not isinstance: an object can claim
    any class through a `__class__` property; and a tensor made up on the spot (keras.KerasTensor(shape)) has the
    right shape but no layers behind it."""

    def check(value, what):
        import keras

        if type(value) is not keras.KerasTensor:
            raise TypeError(f"{what} returned a {type(value).__name__}, not a Keras tensor")
        try:
            keras.Model(list(inputs) if len(inputs) > 1 else inputs[0], value)
        except Exception:  # noqa: BLE001 - Keras says "disconnected" in several ways
            source = "its inputs" if len(inputs) > 1 else "its input x"
            raise TypeError(f"{what} returned a Keras tensor that is not computed from {source}") from None
        return value

    return check


def keras_layer(value, what: str):
    import keras

    if not isinstance(value, keras.layers.Layer):
        raise TypeError(f"{what} made a {type(value).__name__}, not a Keras layer")
    return value


def keras_model(value, what: str):
    import keras

    if not isinstance(value, keras.Model):
        raise TypeError(f"{what} returned a {type(value).__name__}, not a Keras model")
    return value


def model_part(model, name: str):
    """The sub-model `name` of a student's model: its attribute of that name (`vae.encoder`), else its layer of that
    name (`autoencoder.get_layer("encoder")`)."""
    import keras

    part = getattr(model, name, None)
    if not isinstance(part, keras.layers.Layer):
        try:
            part = model.get_layer(name)
        except (ValueError, AttributeError):
            part = None
    if not isinstance(part, keras.layers.Layer):
        raise AttributeError(f"the model built has no '{name}' part")
    return part


def numeric_array(value, what: str) -> np.ndarray:
    """Anything NumPy reads as an array of numbers (a list, a NumPy array, a tensor), as float64."""
    if value is None:
        raise TypeError(f"{what} returned None; return an array of numbers (a NumPy array)")
    from keras import ops

    try:
        if ops.is_tensor(value):  # a tensor of the running backend, wherever it lives (a GPU, a PyTorch graph)
            value = ops.convert_to_numpy(value)
        return np.asarray(value, dtype="float64")
    except (TypeError, ValueError):
        raise TypeError(f"{what} returned a {type(value).__name__}, not an array of numbers") from None


def tensor_as_array(value, what: str) -> np.ndarray:
    """A backend tensor (or anything Keras converts) as a float64 NumPy array."""
    from keras import ops

    try:
        return np.asarray(ops.convert_to_numpy(value), dtype="float64")
    except Exception:  # noqa: BLE001 - whatever it is, it is not a tensor of numbers
        raise TypeError(f"{what} returned a {type(value).__name__}, not a tensor of numbers") from None


def as_sent(value: np.ndarray):
    """An array as a probe sends it to the grader: a 0-d array as its Python number (plain's array encoding keeps
    no 0-d shape), any other array as it is, so that the grader sees the shape the student's function gave."""
    return value.tolist() if value.ndim == 0 else value
