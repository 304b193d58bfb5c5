"""The words of check messages, written one way: shapes, numbers, lists of problems, "got X, expected Y"."""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np


def fmt_shape(shape: Iterable) -> str:
    """A shape as Python writes a tuple: (28, 28, 1), (16,), ()."""
    dims = [str(s) for s in shape]
    return "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"


def fmt_number(value: float) -> str:
    """A measured number with six significant digits: 744.301, 0.0171234."""
    return f"{float(value):.6g}"


def fmt_values(values, decimals: int = 4) -> str:
    """An array's values, rounded, as a list: [1.0, -0.25]."""
    return str(np.round(np.asarray(values, dtype="float64"), decimals).tolist())


def got_expected(what: str, got: str, expected: str) -> str:
    """The sentence of a failed public check: "got output shape (14, 14, 8), expected (14, 14, 16)". `got` and
    `expected` are already written with the formatters above."""
    return f"got {what + ' ' if what else ''}{got}, expected {expected}"


def got_expected_shape(what: str, got: Iterable, expected: Iterable) -> str:
    """The same, for two shapes: "got output shape (14, 14, 8), expected (14, 14, 16)"."""
    return got_expected(what, fmt_shape(got), fmt_shape(expected))


def problems(found: Sequence[str], *, limit: int = 4) -> str:
    """Several problems as one sentence: the first `limit` of them, and "..." when there are more."""
    return "; ".join(found[:limit]) + ("; ..." if len(found) > limit else "") + "."
