"""The two kinds of check, on one small base, and the registry that holds them both by name.

- A value check (`Check`) has two halves. `probe(fn, **args)` runs the student's function on inputs and returns
  plain data; it runs in the student's kernel (public checks in the notebook), or in a limited worker process
  (`autograder check` and `grade`), never in the grader's process. `judge(got, expected, hidden=...)` compares two
  probe results and returns a `Verdict`; it runs in the grader's process, on plain data only. `expected` is the
  probe result of the source notebook's solution (or, in a student's kernel, the literal `expected=` of a public
  check). A hidden check's message may say what the student's code gave, never the hidden inputs or the expected
  value.
- A training check (`quality.base.TrainingCheck`) builds, trains and exports a model in the student's worker (its
  `probe`), is measured in a clean worker (`evaluate`) and judged against calibrated thresholds.

Both register themselves by name with `@register`; `registry.get(name)` finds them, and `registry.split_calls` is
the one place that tells their calls apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar


@dataclass(frozen=True)
class Verdict:
    passed: bool
    message: str
    fraction: float | None = None  # partial credit in [0, 1]; None means all (passed) or nothing (failed)


class CheckBase:
    """What every check has, whatever its kind: a name, a label for reports, and the `probe` that the worker runs
    next to student code, which returns plain data."""

    name: str = ""
    label: str = ""  # what is checked, for reports: "output shape of the block"

    def probe(self, *args: Any, **kwargs: Any) -> Any:
        """`probe(fn, **arguments)`: each check names its own arguments (keyword-only, after the student's `fn`)."""
        raise NotImplementedError


class Check(CheckBase):
    """A value check: its probe result is judged against the reference's probe result."""

    structural: bool = False  # judges the layers themselves (kinds, order, settings, parameters), not their values

    def judge(self, got: Any, expected: Any, *, hidden: bool) -> Verdict:
        raise NotImplementedError


REGISTRY: dict[str, CheckBase] = {}
AnyCheck = TypeVar("AnyCheck", bound=CheckBase)


def register(cls: type[AnyCheck]) -> type[AnyCheck]:
    """Class decorator: one instance of each check, under its name."""
    if cls.name in REGISTRY:
        raise ValueError(f"check {cls.name!r} registered twice")
    REGISTRY[cls.name] = cls()
    return cls


class SummaryCheck(Check):
    """A check judged on a summary of what the student's code returned (statistics, shares, slopes), against the
    reference's summary. The probe returns the student's raw outputs (and the arguments it was given); `summary`
    works the numbers out of them in the grader, where patching numpy or Keras in the student's process changes
    nothing, and `judge_summary` compares two summaries. `expected` is the reference's raw outputs, or, in a public
    check's `expected=`, the summary itself (a dict holding every key of SUMMARY_KEYS). `got` is always read as raw
    outputs: a summary sent in their place is not believed (it fails to be summarised)."""

    SUMMARY_KEYS: tuple[str, ...] = ()

    def summary(self, raw: dict) -> dict:
        raise NotImplementedError

    def _as_summary(self, value: dict) -> dict:
        if all(k in value for k in self.SUMMARY_KEYS):
            return dict(value)
        return self.summary(value)

    def judge_summary(self, got: dict, expected: dict, *, hidden: bool) -> Verdict:
        raise NotImplementedError

    def judge(self, got, expected, *, hidden):
        return self.judge_summary(self.summary(got), self._as_summary(expected), hidden=hidden)


class PropertiesCheck(SummaryCheck):
    """A summary check whose summary is yes/no properties: SAYS maps each property to (what holding it means, what
    to fix when the reference has it and the submission does not); `properties` works them out in the grader."""

    SAYS: dict[str, tuple[str, str]] = {}

    @property
    def SUMMARY_KEYS(self) -> tuple[str, ...]:  # type: ignore[override]  # the properties SAYS names
        return tuple(self.SAYS)

    def properties(self, raw: dict) -> dict[str, bool]:
        raise NotImplementedError

    def summary(self, raw: dict) -> dict:
        return self.properties(raw)

    def judge_summary(self, got: dict, expected: dict, *, hidden: bool) -> Verdict:
        wrong = [k for k in self.SAYS if bool(got[k]) != bool(expected[k])]
        if not wrong:
            return Verdict(True, "; ".join(self.SAYS[k][0] for k in self.SAYS if expected[k]))
        return Verdict(
            False, "; ".join(self.SAYS[k][1] if expected[k] else f"unexpected: {self.SAYS[k][0]}" for k in wrong) + "."
        )
