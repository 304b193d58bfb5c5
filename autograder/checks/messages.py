"""The words of check messages, written one way: shapes, numbers, lists of problems, "got X, expected Y"."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

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


def got_asked(got: str, asked: str) -> str:
    """The sentence of a failed check whose answer the assignment's text states openly (a block's layers), said
    the same way on public and hidden inputs: "got Conv2D, MaxPooling2D; the assignment asks for Conv2D, Conv2D,
    MaxPooling2D"."""
    return f"got {got}; the assignment asks for {asked}"


def shape_difference(got: Sequence, expected: Sequence, names: Sequence[str] | None = None) -> str:
    """Which axes of a shape are wrong, and whether too large or too small, without a number: what a hidden check
    may say about a shape ("its height and width are too large; its channels are right"). `names` names the axes
    after the batch axis (default: "axis 1", "axis 2", ...)."""
    got, expected = list(got), list(expected)
    if len(got) != len(expected):
        return (
            f"it has {len(got)} {'axis' if len(got) == 1 else 'axes'} after the batch axis, where the "
            f"assignment asks for {len(expected)}"
        )
    names = list(names) if names is not None and len(names) == len(got) else [f"axis {i + 1}" for i in range(len(got))]
    groups: dict[str, list[str]] = {"too large": [], "too small": [], "wrong": [], "right": []}
    for name, mine, want in zip(names, got, expected):
        if mine == want:
            groups["right"].append(name)
        elif isinstance(mine, (int, float)) and isinstance(want, (int, float)):
            groups["too large" if mine > want else "too small"].append(name)
        else:
            groups["wrong"].append(name)
    parts = [f"its {_and(axes)} {'is' if len(axes) == 1 else 'are'} {how}" for how, axes in groups.items() if axes]
    return "; ".join(parts)


def _and(words: Sequence[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]
