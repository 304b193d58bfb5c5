"""Results of grading, from one check up to one submission, and the one way to and from a results.json.

`SubmissionResult.to_dict()` gives Gradescope's schema, the form a results.json is written in (`result_json`, its
one writer); `SubmissionResult.from_dict()` and `read_result()` are the only readers of that form: everything that
reads a results.json back (batch, feedback, reports, the CLI) goes through them, and a file they cannot use raises
`MalformedResult`, whose message says what is wrong with it.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import KitError

# Finding kinds that say the grader, not the submission, failed: such a result is never final (a rerun grades the
# submission again) and no student is told it is a verdict on their work.
GRADER_ERROR = "grader_error"  # an exception in the grader itself
SANDBOX_UNAVAILABLE = "sandbox_unavailable"  # the sandbox could not be set up for the worker
MACHINE_BUSY = "machine_busy"  # the machine's load, not the code, kept an item past its wall-clock backstop
GPU_NOT_USED = "gpu_not_used"  # a grading with the gpu profile whose worker's backend computed on the CPU
GRADER_FAULTS = frozenset({GRADER_ERROR, SANDBOX_UNAVAILABLE, MACHINE_BUSY, GPU_NOT_USED})
# The kind the reports give a submission whose results.json cannot be read.
MALFORMED_RESULTS = "malformed_results"

# Gradescope shows only a test's `output`, so `to_dict` appends the diagnosis to it after this label; `from_dict`
# takes it off again, so that nothing else has to know the text.
DIAGNOSIS_LABEL = "\nLikely mistake: "

# Scores a person reads are shown to this many decimals; metrics keep `format_number`'s default precision.
POINT_DIGITS = 2


@dataclass
class CheckResult:
    """One check of one test cell. `score` is already scaled to the check's share of the cell's points."""

    name: str  # "<grade_id>: <check label>", unique in a submission
    grade_id: str
    check: str  # the registry name of the check, e.g. "block_output_shape"
    score: float
    max_score: float
    passed: bool
    message: str  # "got X, expected Y" for public checks; never hidden inputs or expected values
    hidden: bool = False
    diagnosis: str | None = None  # a catalogued mistake's sentence, when the whole answer cell agrees with it
    # quality metrics (e.g. {"test_mse": 0.017}) for reports; None for one that was not a finite number
    metrics: dict[str, float | None] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        extra: dict[str, Any] = {"grade_id": self.grade_id, "check": self.check, "hidden": self.hidden}
        if self.diagnosis:
            extra["diagnosis"] = self.diagnosis
        if self.metrics:
            extra["metrics"] = self.metrics
        return {
            "name": self.name,
            "score": round(self.score, 4),
            "max_score": round(self.max_score, 4),
            "status": "passed" if self.passed else "failed",
            "output": self.message + (f"{DIAGNOSIS_LABEL}{self.diagnosis}" if self.diagnosis else ""),
            "visibility": "visible",
            "extra_data": extra,
        }

    @classmethod
    def from_dict(cls, data: Any, where: str = "a test") -> CheckResult:
        """The check one entry of results.json's `tests` describes; `where` names the entry in error messages."""
        test = _Fields(data, where)
        name = test.text("name")
        score, max_score = test.number("score"), test.number("max_score")
        status = test.optional("status", str, "text", "failed")
        if status not in ("passed", "failed"):
            raise MalformedResult(f"{where}: 'status' is {status!r}, not 'passed' or 'failed'")
        output = test.optional("output", str, "text", "")
        extra = _Fields(test.optional("extra_data", Mapping, "an object", {}), f"{where}'s extra_data")
        diagnosis = extra.optional("diagnosis", str, "text", None) or None
        if diagnosis and output.endswith(DIAGNOSIS_LABEL + diagnosis):
            output = output[: -len(DIAGNOSIS_LABEL + diagnosis)]
        metrics = extra.optional("metrics", Mapping, "an object", {})
        for metric, value in metrics.items():
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise MalformedResult(f"{where}'s extra_data: metric {str(metric)!r} is not a number")
        return cls(
            name=name,
            grade_id=extra.optional("grade_id", str, "text", None) or name.split(":", 1)[0].strip(),
            check=extra.optional("check", str, "text", None) or name,
            score=score,
            max_score=max_score,
            passed=status == "passed",
            message=output,
            hidden=extra.optional("hidden", bool, "true or false", False),
            diagnosis=diagnosis,
            metrics=dict(metrics),
        )


@dataclass
class Finding:
    """Something about the submission itself (tampering, a crash, a limit) that is not a check."""

    kind: str  # e.g. "locked_cell_edited", "timeout", "memory_limit", "invalid_notebook"
    message: str
    grade_id: str | None = None

    @property
    def grader_fault(self) -> bool:
        return self.kind in GRADER_FAULTS

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "message": self.message, "grade_id": self.grade_id}

    @classmethod
    def from_dict(cls, data: Any, where: str = "a finding") -> Finding:
        finding = _Fields(data, where)
        return cls(
            kind=finding.text("kind"),
            message=finding.optional("message", str, "text", ""),
            grade_id=finding.optional("grade_id", str, "text", None),
        )


@dataclass
class ManualAnswer:
    """A written answer that a person grades (in nbgrader's formgrader), as the grader found it. The grader gives it
    no points: an answer left as released, or missing, is worth 0 without anyone grading it (as nbgrader decides)."""

    grade_id: str
    max_score: float
    answered: bool

    def to_dict(self) -> dict[str, Any]:
        return {"grade_id": self.grade_id, "max_score": self.max_score, "answered": self.answered}

    @classmethod
    def from_dict(cls, data: Any, where: str = "a written answer") -> ManualAnswer:
        answer = _Fields(data, where)
        return cls(
            grade_id=answer.text("grade_id"),
            max_score=answer.number("max_score"),
            answered=answer.optional("answered", bool, "true or false", True),
        )


@dataclass
class SubmissionResult:
    assignment: str
    student: str
    checks: list[CheckResult]
    findings: list[Finding]
    max_score: float  # from the SOURCE notebook, never from the submission
    execution_time: float
    kit_version: str
    notebook_sha256: str | None = None
    timestamp: str | None = None  # ISO time of grading; the only field allowed to differ between two gradings
    graded_with: dict[str, str] | None = None  # short hashes of what besides the notebook the result depends on (batch)
    environment: dict[str, Any] | None = None  # where the workers ran: Keras backend and its version, device, profile
    # The written answers graded by hand, outside `score` and `max_score` (which are the autograder's alone).
    manual: list[ManualAnswer] = field(default_factory=list)
    retries: int = 0  # gradings thrown away before this one because the machine was too busy (MACHINE_BUSY)
    # The total a results.json holds, set by `from_dict`: kept as written, because the sum of its tests' scores
    # (each rounded to 4 decimals) can miss the total of the unrounded scores in the last decimal.
    recorded_score: float | None = field(default=None, compare=False)
    # The trained weights submitted beside the notebook, when a check measures them: {"file", "sha256", "bytes",
    # "used"} (checks/quality/weights_file.py); reports compare the hashes across a class and with the reference's.
    weights: dict[str, Any] | None = None

    @property
    def weights_sha256(self) -> str | None:
        sha = (self.weights or {}).get("sha256")
        return sha if isinstance(sha, str) else None

    @property
    def score(self) -> float:
        if self.recorded_score is not None:
            return self.recorded_score
        return round(min(self.max_score, sum(c.score for c in self.checks)), 4)

    @property
    def manual_max_score(self) -> float:
        return float(sum(m.max_score for m in self.manual))

    def total_line(self) -> str:
        """The score in one sentence; with written answers, the autograded and the hand-graded parts both named,
        so that no place shows a total out of the autograded points beside another out of the course's."""
        line = f"{self.student}: {format_points(self.score)} / {format_points(self.max_score)} on {self.assignment}."
        if not self.manual:
            return line
        total = format_points(self.max_score + self.manual_max_score)
        if len(self.manual) == 1:
            answers = f"The written answer {self.manual[0].grade_id} ({format_points(self.manual_max_score)} points) is"
        else:
            names = ", ".join(f"{m.grade_id} ({format_points(m.max_score)})" for m in self.manual)
            answers = f"The written answers {names}, {format_points(self.manual_max_score)} points, are"
        return (
            f"{self.student}: {format_points(self.score)} / {format_points(self.max_score)} autograded points on "
            f"{self.assignment}. {answers} graded by hand, outside this score: the assignment is out of {total} "
            "in all."
        )

    def to_dict(self) -> dict[str, Any]:
        lines = [self.total_line()]
        lines += [f"- {f.message}" for f in self.findings]
        return {
            "score": self.score,
            "max_score": self.max_score,
            "execution_time": round(self.execution_time, 1),
            "output": "\n".join(lines),
            "visibility": "visible",
            "stdout_visibility": "hidden",
            "tests": [c.to_dict() for c in self.checks],
            "extra_data": {
                "assignment": self.assignment,
                "student": self.student,
                "kit_version": self.kit_version,
                "notebook_sha256": self.notebook_sha256,
                "timestamp": self.timestamp,
                "findings": [f.to_dict() for f in self.findings],
                **({"graded_with": self.graded_with} if self.graded_with is not None else {}),
                **({"environment": self.environment} if self.environment is not None else {}),
                **({"manual": [m.to_dict() for m in self.manual]} if self.manual else {}),
                **({"retries": self.retries} if self.retries else {}),
                **({"weights": self.weights} if self.weights is not None else {}),
            },
        }

    @classmethod
    def from_dict(cls, data: Any) -> SubmissionResult:
        """The result a parsed results.json describes; raises `MalformedResult` naming the first thing wrong.

        Gradescope's keys `score`, `max_score` and `tests` (each test with `name`, `score`, `max_score`) are
        required; everything else has a default when missing and must have the right type when present. The
        diagnosis that `to_dict` appended to a test's output is taken off it again.
        """
        top = _Fields(data, "results.json")
        missing = [k for k in ("score", "max_score", "tests") if k not in top.data]
        if missing:
            raise MalformedResult(
                f"results.json is missing the key{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing))}"
            )
        score, max_score = top.number("score"), top.number("max_score")
        tests = top.sequence("tests")
        extra = _Fields(top.optional("extra_data", Mapping, "an object", {}), "results.json's extra_data")
        findings = extra.optional("findings", list, "a list", [])
        graded_with = extra.optional("graded_with", Mapping, "an object", None)
        environment = extra.optional("environment", Mapping, "an object", None)
        manual = extra.optional("manual", list, "a list", [])
        weights = extra.optional("weights", Mapping, "an object", None)
        return cls(
            assignment=extra.optional("assignment", str, "text", ""),
            student=extra.optional("student", str, "text", ""),
            checks=[CheckResult.from_dict(t, f"results.json's tests[{i}]") for i, t in enumerate(tests)],
            findings=[Finding.from_dict(f, f"results.json's extra_data.findings[{i}]") for i, f in enumerate(findings)],
            max_score=max_score,
            execution_time=top.optional_number("execution_time", 0.0),
            kit_version=extra.optional("kit_version", str, "text", ""),
            notebook_sha256=extra.optional("notebook_sha256", str, "text", None),
            timestamp=extra.optional("timestamp", str, "text", None),
            graded_with=dict(graded_with) if graded_with is not None else None,
            environment=dict(environment) if environment is not None else None,
            manual=[ManualAnswer.from_dict(m, f"results.json's extra_data.manual[{i}]") for i, m in enumerate(manual)],
            retries=int(extra.optional_number("retries", 0)),
            recorded_score=score,
            weights=dict(weights) if weights is not None else None,
        )


class MalformedResult(KitError):
    """A results.json (or its parsed form) that cannot be used. `reason` says what is wrong without naming the
    file's place on disk (reports and feedback pages show it); the message adds the path when there is one."""

    def __init__(self, reason: str, path: str | os.PathLike[str] | None = None):
        self.reason = reason
        self.path = Path(path) if path is not None else None
        if self.path is None:
            message = reason
        else:
            rest = reason[len("results.json") :] if reason.startswith("results.json") else f": {reason}"
            message = f"{self.path}{rest}. Grade this submission again to write it anew."
        super().__init__(message)


def read_result(path: str | os.PathLike[str]) -> SubmissionResult:
    """The result in the results.json at `path`; raises `MalformedResult` when it cannot be read (missing,
    unreadable, not UTF-8, not JSON, or not in the schema `to_dict` writes)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise MalformedResult(f"results.json could not be read: {exc.__class__.__name__}", path) from None
    except json.JSONDecodeError as exc:
        raise MalformedResult(
            f"results.json is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})", path
        ) from None
    try:
        return SubmissionResult.from_dict(data)
    except MalformedResult as exc:
        raise MalformedResult(exc.reason, path) from None


def result_json(result: SubmissionResult) -> str:
    """The text of a results.json: the only place a result becomes JSON (`read_result` is the only reader)."""
    return json.dumps(result.to_dict(), indent=1, sort_keys=True) + "\n"


def as_result(value: SubmissionResult | Mapping[str, Any]) -> SubmissionResult:
    """`value` itself when it already is a result, else the result its parsed results.json describes."""
    return value if isinstance(value, SubmissionResult) else SubmissionResult.from_dict(value)


# ---- numbers -------------------------------------------------------------------------------------------------------


def as_number(value: Any) -> float | None:
    """`value` as a float when it is a finite real number (not a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def format_number(value: Any, digits: int = 4) -> str:
    """A number as short text, to at most `digits` decimals: 7.5, 10, 0.0172; a missing value as an em dash."""
    number = as_number(value)
    if number is None:
        return "\u2014"
    text = repr(round(number, digits) + 0.0)  # + 0.0: never "-0"
    return text[:-2] if text.endswith(".0") else text


def format_points(value: Any) -> str:
    """A score as a person reads it: at most two decimals (0.33, 10.68, 19)."""
    return format_number(value, POINT_DIGITS)


# ---- validation ----------------------------------------------------------------------------------------------------


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    return "list" if isinstance(value, list) else type(value).__name__


class _Fields:
    """The keys of one JSON object, read with the type each must have; `where` names the object in messages."""

    def __init__(self, data: Any, where: str):
        if not isinstance(data, Mapping):
            raise MalformedResult(f"{where} holds a {_json_type(data)}, not an object")
        self.data, self.where = data, where

    def _required(self, key: str) -> Any:
        if key not in self.data:
            raise MalformedResult(f"{self.where} is missing the key {key!r}")
        return self.data[key]

    def number(self, key: str) -> float:
        value = as_number(self._required(key))
        if value is None:
            raise MalformedResult(f"{self.where}: {key!r} is not a number")
        return value

    def optional_number(self, key: str, default: float) -> float:
        return self.number(key) if key in self.data else default

    def text(self, key: str) -> str:
        value = self._required(key)
        if not isinstance(value, str):
            raise MalformedResult(f"{self.where}: {key!r} is not text")
        return value

    def sequence(self, key: str) -> list[Any]:
        value = self._required(key)
        if not isinstance(value, list):
            raise MalformedResult(f"{self.where}: {key!r} is not a list")
        return value

    def optional(self, key: str, kind: type, described: str, default: Any) -> Any:
        """The value of `key` when present (null counts as missing), checked to be a `kind`, else `default`."""
        value = self.data.get(key)
        if value is None:
            return default
        if not isinstance(value, kind):
            raise MalformedResult(f"{self.where}: {key!r} is not {described}")
        return value
