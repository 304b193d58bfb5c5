"""The notebook side: `run_check`, which the course's test cells call in the student's own kernel."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..plain import decode, encode
from .base import Check
from .registry import get


class CheckFailed(AssertionError):
    """Raised in a student's kernel so that a failing public check fails its notebook cell."""


def run_check(name: str, fn: Callable, /, *, expected: Any = None, **args: Any) -> None:
    """Run a check in the notebook. With `expected`, the result is judged here; without it, the check is one that
    only the autograder can judge (hidden tests, training-based quality), and this only shows it runs."""
    check = get(name)
    if not isinstance(check, Check):  # a training check: only the autograder trains and measures the model
        print(f"{check.label}: {getattr(check, 'in_notebook', 'scored by the autograder.')}")
        return
    # Through plain data and back, as in the grader: the judge sees what it would see there.
    got = decode(encode(check.probe(fn, **args)))
    if expected is None:
        print(f"{check.label}: ran without error; the autograder compares it with the reference.")
        return
    verdict = check.judge(got, decode(encode(expected)), hidden=False)
    if not verdict.passed:
        raise CheckFailed(verdict.message)
    print(f"passed: {verdict.message}")
