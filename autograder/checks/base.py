"""What every check is: a `probe` that runs next to student code and a `judge` that runs in the grader.

- `probe(fn, **args)` runs the student's function on inputs and returns plain data. It runs in the student's
  kernel (public checks in the notebook), or in a limited worker process (`autograder check` and `grade`);
  never in the grader's process.
- `judge(got, expected, hidden=...)` compares two probe results and returns a `Verdict`. It runs in the grader's
  process, on plain data only. `expected` is the probe result of the source notebook's solution (or, in a
  student's kernel, the literal `expected=` of a public check).

A hidden check's message may say what the student's code gave, never the hidden inputs or the expected value.
Checks register themselves by name with `@register`; `registry.get(name)` finds them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable


@dataclass(frozen=True)
class Verdict:
    passed: bool
    message: str
    fraction: float | None = None  # partial credit in [0, 1]; None means all (passed) or nothing (failed)


class Check:
    name: str = ""
    label: str = ""  # what is checked, for reports: "output shape of the block"
    quality: bool = False  # trains a model: its expected value comes from thresholds, not from the reference
    structural: bool = False  # judges the layers themselves (kinds, order, settings, parameters), not their values
    dataset: str = ""  # for training checks: the data set the grader subsets for training and held-out testing
    assets: tuple[str, ...] = ()  # files in reference_weights/<a>/ that `evaluate` needs (e.g. a classifier)

    def train_assets(self, out_dir, *, train: dict, test: dict, recipe: dict, seed: int) -> list:
        """Calibration hook (runs in the instructor's process): train and save `assets` into `out_dir`, return
        the paths written. Training checks that measure with a reference model (a classifier) override it."""
        return []

    def probe(self, fn: Callable, **args: Any) -> Any:
        raise NotImplementedError

    def judge(self, got: Any, expected: Any, *, hidden: bool) -> Verdict:
        raise NotImplementedError


REGISTRY: dict[str, Check] = {}


def register(cls: type[Check]) -> type[Check]:
    """Class decorator: one instance of each check, under its name."""
    if cls.name in REGISTRY:
        raise ValueError(f"check {cls.name!r} registered twice")
    REGISTRY[cls.name] = cls()
    return cls


class PropertiesCheck(Check):
    """A check whose probe reports yes/no properties, judged against the reference's: SAYS maps each property to
    (what holding it means, what to fix when the reference has it and the submission does not)."""

    SAYS: dict[str, tuple[str, str]] = {}

    def judge(self, got, expected, *, hidden):
        wrong = [k for k in self.SAYS if bool(got[k]) != bool(expected[k])]
        if not wrong:
            return Verdict(True, "; ".join(self.SAYS[k][0] for k in self.SAYS if expected[k]))
        return Verdict(False, "; ".join(self.SAYS[k][1] if expected[k] else f"unexpected: {self.SAYS[k][0]}"
                                        for k in wrong) + ".")
