"""The check registry: one name per check, used by three callers.

A check has two halves:
- `probe(fn, **args)` runs the student's function on inputs and returns plain data. It runs in the student's
  kernel (public checks in the notebook), or in a limited worker process (`autograder check` and `grade`);
  never in the grader's process.
- `judge(got, expected, hidden=...)` compares two probe results and returns a `Verdict`. It runs in the grader's
  process, on plain data only. `expected` is the probe result of the source notebook's solution (or, in a
  student's kernel, the literal `expected=` of a public check).

A hidden check's message may say what the student's code gave, never the hidden inputs or the expected value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from ..plain import decode, encode


@dataclass(frozen=True)
class Verdict:
    passed: bool
    message: str
    fraction: float | None = None  # partial credit in [0, 1]; None means all (passed) or nothing (failed)


class Check:
    name: str = ""
    label: str = ""  # what is checked, for reports: "output shape of the block"
    quality: bool = False  # trains a model: its expected value comes from thresholds, not from the reference
    dataset: str = ""  # for quality checks: the data set the grader subsets for training and held-out testing
    assets: tuple[str, ...] = ()  # files in reference_weights/<a>/ that `evaluate` needs (e.g. a classifier)

    def train_assets(self, out_dir, *, train: dict, test: dict, recipe: dict, seed: int) -> list:
        """Calibration hook (runs in the instructor's process): train and save `assets` into `out_dir`, return
        the paths written. Quality checks that measure with a reference model (a classifier) override it."""
        return []

    def probe(self, fn: Callable, **args: Any) -> Any:
        raise NotImplementedError

    def judge(self, got: Any, expected: Any, *, hidden: bool) -> Verdict:
        raise NotImplementedError


REGISTRY: dict[str, Check] = {}


def register(cls: type[Check]) -> type[Check]:
    if cls.name in REGISTRY:
        raise ValueError(f"check {cls.name!r} registered twice")
    REGISTRY[cls.name] = cls()
    return cls


def get(name: str) -> Check:
    _load_all()
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"no check named {name!r}; known: {', '.join(sorted(REGISTRY))}") from None


def _load_all() -> None:
    from . import blocks, quality  # noqa: F401  (registers the checks)
    from . import vae  # noqa: F401
    from . import cvae  # noqa: F401


class CheckFailed(AssertionError):
    """Raised in a student's kernel so that a failing public check fails its notebook cell."""


def run_check(name: str, fn: Callable, /, *, expected: Any = None, **args: Any) -> None:
    """Run a check in the notebook. With `expected`, the result is judged here; without it, the check is one that
    only the autograder can judge (hidden tests, training-based quality), and this only shows it runs."""
    check = get(name)
    if check.quality:
        print(f"{check.label}: scored by the autograder, which trains your model with the kit's fixed recipe.")
        return
    got = decode(encode(check.probe(fn, **args)))
    if expected is None:
        print(f"{check.label}: ran without error; the autograder compares it with the reference.")
        return
    verdict = check.judge(got, decode(encode(expected)), hidden=False)
    if not verdict.passed:
        raise CheckFailed(verdict.message)
    print(f"passed: {verdict.message}")


__all__ = ["Check", "CheckFailed", "REGISTRY", "Verdict", "get", "register", "run_check"]
