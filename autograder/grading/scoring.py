"""Scoring and diagnosis: pure functions of plain data (no worker, no file, no TensorFlow).

points of a test cell -> split over its checks in cents, so the parts add up to the cell's points exactly
a value check's probe result + the reference's, or a training check's measured metrics + the profile's
thresholds -> a CheckResult
every check's result, and the catalogued mistake the whole answer cell agrees with -> its sentence, as the
diagnosis of the failing checks it explains (the rule: diagnosis.py)
what the workers reported about cells and deaths -> findings
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

from ..checks import Check, Thresholds, Verdict, get, training_check, value_check
from ..errors import KitError
from ..hardware import UsedDevice
from ..items import ANSWER, SETUP, STUDENT, ItemId
from ..mistakes import Mistake
from ..notebook import CheckCall, SourceCell, Spec
from ..results import GPU_NOT_USED, MACHINE_BUSY, SANDBOX_UNAVAILABLE, CheckResult, Finding
from ..runner import Outcome
from . import diagnosis, plans
from .expectations import Expectations

MAX_MESSAGE = 1000  # a check's message quotes what the student's code gave: never a megabyte of it
NOT_RUN = Outcome(False, error="not run")
NOT_EXPORTED = Outcome(False, error="the trained model was not exported")


def split_points(points: float, n: int) -> list[float]:
    """A test cell's points over its n checks: equal shares in hundredths, the first ones taking the leftover
    cents (1 point over 3 checks: 0.34, 0.33, 0.33), so that the shares add up to `points` exactly and each one
    reads as a number with at most two decimals."""
    if n <= 0:
        return []
    cents = Fraction(str(points)) * 100
    if cents.denominator != 1:  # points with more than two decimals: equal shares
        return [points / n] * n
    base, extra = divmod(int(cents), n)
    return [(base + (1 if i < extra else 0)) / 100 for i in range(n)]


def check_name(call: CheckCall, cell: SourceCell) -> str:
    label = get(call.check).name
    return f"{call.grade_id}: {label}" + (f" #{call.index + 1}" if len(cell.calls) > 1 else "")


def score_checks(
    spec: Spec,
    *,
    outcomes: dict[ItemId, Outcome],
    measured: dict[ItemId, Outcome],
    expected: Expectations | None,
    mistakes: list[Mistake],
    thresholds: dict[str, Any],
    profile: str,
    submitted: tuple[dict[str, Any], str] | None = None,
) -> list[CheckResult]:
    """Every check's result, in the order of the source's test cells, from what the workers gave back (`outcomes`:
    the student's probes; `measured`: the clean worker's measures), with the diagnoses of the failing ones.
    `submitted`: the thresholds and name of the profile that judges submitted weights (`plans.submitted` calls)."""
    results, calls = [], []
    rules, training_ids = Thresholds.from_entry(thresholds, profile=profile), {c.id for c in spec.training_calls}
    submitted_rules = Thresholds.from_entry(submitted[0], profile=submitted[1]) if submitted else rules
    for cell in spec.tests:
        for call, share in zip(cell.calls, split_points(cell.points, len(cell.calls))):
            calls.append(call)
            student, name = outcomes.get(plans.probe_id(STUDENT, call)), check_name(call, cell)
            if call.id in training_ids:
                results.append(
                    judge_training(
                        call,
                        share=share,
                        name=name,
                        student=student,
                        measured=measured.get(plans.measure_id(call)),
                        thresholds=submitted_rules if plans.submitted(call) else rules,
                    )
                )
            else:
                results.append(judge_value(call, share=share, name=name, student=student, expected=expected))
    if expected is not None and mistakes:
        named = diagnoses(spec, outcomes, expected, mistakes)
        for call, result in zip(calls, results):
            if not result.passed:
                result.diagnosis = named.get(call.id)
    return results


def judge_value(
    call: CheckCall, *, share: float, name: str, student: Outcome | None, expected: Expectations | None
) -> CheckResult:
    """A value check's result: the student's probe result judged against the reference's."""
    check = value_check(call.check)
    result, out = _started(call, share=share, name=name, student=student)
    if out.ok:
        reference = expected.reference(call) if expected is not None else None
        if reference is None:  # `Grader.score` prepares the expectations whenever the spec has value checks
            raise KitError(f"no reference result for check {call.id}: the expectations are incomplete")
        got = with_call_args(out.value, reference.value)
        _scored(result, call, safe_judge(check, got, reference.value, hidden=call.hidden), share=share)
    return result


def with_call_args(got: Any, trusted: Any) -> Any:
    """The student's probe result with the arguments of the call taken from a trusted probe result of the same
    call (the reference's, or a catalogued mistake's). A probe sends back the arguments it ran with, and a summary
    remakes inputs from them (seeds, sizes, draws); the student's worker could send other ones, so they are never
    read from it."""
    if isinstance(got, dict) and isinstance(trusted, dict) and "args" in trusted:
        return {**got, "args": trusted["args"]}
    return got


def judge_training(
    call: CheckCall,
    *,
    share: float,
    name: str,
    student: Outcome | None,
    measured: Outcome | None,
    thresholds: Thresholds,
) -> CheckResult:
    """A training check's result: the metrics the clean worker measured, judged against the profile's thresholds."""
    check = training_check(call.check)
    result, out = _started(call, share=share, name=name, student=student)
    if not out.ok:
        return result
    measured = measured or NOT_EXPORTED
    if not measured.ok:
        result.message = f"Your trained model could not be measured: {measured.error}."
        return result
    verdict = check.judge(measured.value, thresholds)
    # NaN and inf are not JSON: results.json says null instead (the message still says nan)
    result.metrics = {
        str(k): (float(v) if isinstance(v, (int, float)) and math.isfinite(v) else None)
        for k, v in dict(measured.value).items()
    }
    _scored(result, call, verdict, share=share)
    return result


def _started(call: CheckCall, *, share: float, name: str, student: Outcome | None) -> tuple[CheckResult, Outcome]:
    """A check's result before its judge, and the student's probe outcome; a probe that failed is said here."""
    out = student or NOT_RUN
    result = CheckResult(
        name=name,
        grade_id=call.grade_id,
        check=get(call.check).name,
        score=0.0,
        max_score=share,
        passed=False,
        message="",
        hidden=call.hidden,
    )
    if not out.ok:
        result.message = f"{call.function}: {hide_inputs(out) if call.hidden else out.error}"
    return result, out


def _scored(result: CheckResult, call: CheckCall, verdict: Verdict, *, share: float) -> None:
    fraction = 1.0 if verdict.passed else (verdict.fraction or 0.0)
    result.passed = verdict.passed
    result.score = share if verdict.passed else round(share * min(1.0, max(0.0, fraction)), 6)
    result.message = f"{call.function}: {verdict.message}"[:MAX_MESSAGE]


def safe_judge(check: Check, got: Any, expected: Any, *, hidden: bool) -> Verdict:
    try:
        return check.judge(got, expected, hidden=hidden)
    except Exception as err:  # noqa: BLE001 - a forged result of any form is a failed check
        return Verdict(False, f"the result has an unexpected form ({type(err).__name__})")


def diagnoses(
    spec: Spec, outcomes: dict[ItemId, Outcome], expected: Expectations, mistakes: list[Mistake]
) -> dict[str, str]:
    """Call id -> the sentence of the catalogued mistake that the student's whole answer cell agrees with, for the
    failing checks it explains (diagnosis.diagnose). Training checks take no part: no mistake is trained."""
    calls = list(spec.value_calls)

    def same(call: CheckCall, got: Outcome, want: Outcome) -> bool:
        return safe_judge(
            value_check(call.check), with_call_args(got.value, want.value), want.value, hidden=False
        ).passed

    return diagnosis.diagnose(
        calls,
        student={c.id: outcomes.get(plans.probe_id(STUDENT, c)) for c in calls},
        reference={c.id: expected.reference(c) for c in calls},
        mistakes=mistakes,
        wrong=expected.mistake,
        cells=diagnosis.exercised_cells(spec),
        same=same,
    )


def hide_inputs(out: Outcome) -> str:
    """An error on a hidden input, without its message (which may quote the input's shape). The grader's own
    sentences ("it ran past its time limit", "not run: ...") quote no input and are kept."""
    if out.raised is None:
        return out.error or "it failed"
    return f"raised {out.raised} on a hidden input" + (f" ({out.where})" if out.where else "") + "."


def findings(
    outcomes: dict[ItemId, Outcome],
    *,
    deaths: list[str],
    killed: list[ItemId],
    sandbox_error: str | None,
    machine_busy: bool = False,
) -> list[Finding]:
    """What the workers reported about the submission as a whole: a sandbox that could not be set up (the
    grader's fault), workers that died, and each answer cell that failed to run (those that stopped a worker have
    a finding already), and setup cells, which are the course's own code: their failure is the grader's problem,
    said as such."""
    if sandbox_error:
        return [Finding(SANDBOX_UNAVAILABLE, sandbox_error)]
    if machine_busy:  # its items' outcomes are the machine's, not the code's: nothing of this grading is a verdict
        return [
            Finding(
                MACHINE_BUSY,
                "The grading machine was too busy to grade this submission in time: an item "
                "waited ten times its time limit for a CPU. This is not a verdict on your "
                "work: it will be graded again.",
            )
        ]
    found = [Finding("worker_stopped", d) for d in deaths]
    for item, out in outcomes.items():
        if item.run != STUDENT or out.ok or item in killed:
            continue
        if item.kind == ANSWER:
            found.append(
                Finding("answer_cell_error", f"Answer cell '{item.name}' failed when run: {out.error}", item.name)
            )
        elif item.kind == SETUP:
            found.append(
                Finding(
                    "setup_cell_error",
                    f"The course's setup cell '{item.name}' failed ({out.error}), "
                    "so the checks after it could not run. This is not a problem with your code: "
                    "please tell the course staff.",
                    item.name,
                )
            )
    return found


def device_fault(profile: str, backend: str, device: UsedDevice | None) -> Finding | None:
    """A grading with the gpu profile whose worker's backend said it computes on anything but a GPU: the grader's
    fault (its GPU is not reaching the workers), never scores judged against the gpu profile's thresholds. None when
    the device is fine, or when no worker got as far as saying (its death is a finding of its own)."""
    if profile != "gpu" or device is None or device.kind == "gpu":
        return None
    return Finding(
        GPU_NOT_USED,
        f"The grader is set to train on a GPU (the gpu profile), but its worker's Keras backend ({backend}) "
        f"computed on {device.describe()}, not on a GPU, so nothing was scored. This is not a verdict on your work: "
        "it will be graded again. (For the course staff: `autograder doctor` on the grading machine says whether "
        "the workers reach the GPU and, with --bisect, which fence stops them.)",
    )
