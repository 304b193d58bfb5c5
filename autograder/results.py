"""Results of grading, from one check up to one submission; `to_dict()` gives Gradescope's schema."""

from __future__ import annotations

from dataclasses import dataclass, field

# Finding kinds that say the grader, not the submission, failed: such a result is never final (a rerun grades the
# submission again) and no student is told it is a verdict on their work.
GRADER_ERROR = "grader_error"  # an exception in the grader itself
SANDBOX_UNAVAILABLE = "sandbox_unavailable"  # the sandbox could not be set up for the worker
GRADER_FAULTS = frozenset({GRADER_ERROR, SANDBOX_UNAVAILABLE})


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
    diagnosis: str | None = None  # a named mistake from the catalogue, when one matched
    metrics: dict = field(default_factory=dict)  # quality metrics (e.g. {"test_mse": 0.017}) for reports

    def to_dict(self) -> dict:
        out = {
            "name": self.name,
            "score": round(self.score, 4),
            "max_score": round(self.max_score, 4),
            "status": "passed" if self.passed else "failed",
            "output": self.message + (f"\nLikely mistake: {self.diagnosis}" if self.diagnosis else ""),
            "visibility": "visible",
            "extra_data": {"grade_id": self.grade_id, "check": self.check, "hidden": self.hidden},
        }
        if self.diagnosis:
            out["extra_data"]["diagnosis"] = self.diagnosis
        if self.metrics:
            out["extra_data"]["metrics"] = self.metrics
        return out


@dataclass
class Finding:
    """Something about the submission itself (tampering, a crash, a limit) that is not a check."""

    kind: str  # e.g. "locked_cell_edited", "timeout", "memory_limit", "invalid_notebook"
    message: str
    grade_id: str | None = None

    @property
    def grader_fault(self) -> bool:
        return self.kind in GRADER_FAULTS

    def to_dict(self) -> dict:
        return {"kind": self.kind, "message": self.message, "grade_id": self.grade_id}


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
    graded_with: dict | None = None  # short hashes of what besides the notebook the result depends on (batch)

    @property
    def score(self) -> float:
        return round(min(self.max_score, sum(c.score for c in self.checks)), 4)

    def to_dict(self) -> dict:
        lines = [f"{self.student}: {self.score:g} / {self.max_score:g} on {self.assignment}."]
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
            },
        }
