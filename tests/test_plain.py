import math

import numpy as np
import pytest

from autograder.plain import decode, encode


def test_round_trip_of_plain_values():
    value = {
        "a": [1, 2.5, None, True, "x"],
        "arr": np.arange(6, dtype="float32").reshape(2, 3),
        "nan": float("nan"),
        "inf": np.float32("inf"),
        "t": (1, 2),
    }
    back = decode(encode(value))
    assert back["a"] == [1, 2.5, None, True, "x"] and back["t"] == [1, 2]
    np.testing.assert_array_equal(back["arr"], value["arr"])
    assert back["arr"].dtype == np.float32
    assert math.isnan(back["nan"]) and back["inf"] == math.inf


def test_objects_that_are_not_plain_data_are_refused():
    class FakeArray:
        shape = (14, 14, 16)

    with pytest.raises(TypeError):
        encode(FakeArray())
    with pytest.raises(TypeError):
        encode(np.array([object()], dtype=object))


@pytest.mark.parametrize(
    "forged",
    [
        {"__ndarray__": "AAAA", "dtype": "object", "shape": [1]},
        {"__ndarray__": "AAAA", "dtype": "float32", "shape": [1000]},
        {"__ndarray__": "!!", "dtype": "uint8", "shape": [1]},
        {"__float__": "__import__('os')"},
    ],
)
def test_forged_payloads_are_rejected(forged):
    with pytest.raises(ValueError):
        decode(forged)


def test_deep_nesting_is_rejected():
    deep = []
    for _ in range(100):
        deep = [deep]
    with pytest.raises(ValueError):
        decode(deep)


def test_arrays_keep_their_shape_zero_dimensional_and_transposed_included():
    """A loss a student's function returns as a 0-d array must reach the grader as 0-d ("a scalar"), not (1,)."""
    for arr in (np.array(3.5, dtype="float32"), np.arange(6).reshape(2, 3).T, np.zeros((0, 3))):
        back = decode(encode(arr))
        assert back.shape == arr.shape and back.dtype == arr.dtype
        np.testing.assert_array_equal(back, arr)
