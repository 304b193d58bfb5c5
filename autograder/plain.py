"""Plain data across the worker boundary: JSON with numpy arrays as base64, decoded with limits.

Only numbers, strings, booleans, None, lists, dicts with string keys and numeric arrays cross. Decoding
never builds arbitrary objects (no pickle), caps sizes, and rejects unknown dtypes, so whatever a hostile
worker writes, the grader gets plain values or a `ValueError`.
"""

from __future__ import annotations

import base64
import math
from typing import Any

import numpy as np

MAX_ARRAY_BYTES = 64 * 1024 * 1024
_DTYPES = {"float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "bool"}


def encode(obj: Any) -> Any:
    """Turn a value made of numpy/Python scalars, arrays, tuples, lists and dicts into JSON-able data."""
    if isinstance(obj, np.ndarray):
        arr = obj if obj.flags.c_contiguous else obj.copy(order="C")  # ascontiguousarray would make 0-d 1-d
        if arr.dtype.name not in _DTYPES:
            raise TypeError(f"arrays of dtype {arr.dtype} cannot be returned")
        if arr.nbytes > MAX_ARRAY_BYTES:
            raise ValueError(f"an array of {arr.nbytes} bytes is over the {MAX_ARRAY_BYTES} byte limit")
        return {
            "__ndarray__": base64.b64encode(arr.tobytes()).decode(),
            "dtype": arr.dtype.name,
            "shape": list(arr.shape),
        }
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        value = float(obj)
        return value if math.isfinite(value) else {"__float__": repr(value)}
    if obj is None or isinstance(obj, str):
        return obj
    if isinstance(obj, (list, tuple)):
        return [encode(x) for x in obj]
    if isinstance(obj, dict):
        return {str(k): encode(v) for k, v in obj.items()}
    raise TypeError(f"a value of type {type(obj).__name__} cannot be returned")


def decode(obj: Any, *, depth: int = 0) -> Any:
    """The inverse of `encode`, for data that may have been forged: types and sizes are checked."""
    if depth > 32:
        raise ValueError("data nested too deeply")
    if isinstance(obj, dict):
        if "__ndarray__" in obj:
            return _array(obj)
        if "__float__" in obj:
            text = obj["__float__"]
            if text not in ("nan", "inf", "-inf"):
                raise ValueError("malformed float")
            return float(text)
        return {str(k): decode(v, depth=depth + 1) for k, v in obj.items()}
    if isinstance(obj, list):
        return [decode(x, depth=depth + 1) for x in obj]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise ValueError(f"unexpected value of type {type(obj).__name__}")


def _array(obj: dict) -> np.ndarray:
    dtype, shape = obj.get("dtype"), obj.get("shape")
    if dtype not in _DTYPES or not isinstance(shape, list) or not all(isinstance(s, int) and s >= 0 for s in shape):
        raise ValueError("malformed array")
    raw = base64.b64decode(obj["__ndarray__"], validate=True)
    if len(raw) > MAX_ARRAY_BYTES or len(raw) != int(np.prod(shape)) * np.dtype(dtype).itemsize:
        raise ValueError("array size does not match its shape")
    return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()
