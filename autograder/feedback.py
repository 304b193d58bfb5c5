"""Per-student feedback: one self-contained HTML page from one graded submission.

The page shows the total, a subtotal per question (grade_id), every check with its status, points, message and
diagnosis, hidden checks marked as hidden, the submission's findings (tampering, limits) at the top, and the quality
metrics. Points are shown to two decimals, metrics to four. Everything a student controls (messages quote their
output, findings quote their cells) is escaped by Jinja2's autoescape. The output depends only on the result, so the
same result gives the same page, byte for byte.

The page is rendered from a `SubmissionResult`; a results.json's parsed form is read through
`SubmissionResult.from_dict` first, and one that cannot be read gets the page that says so. What the TAs entered in
nbgrader's formgrader (`grades`: manual scores, extra credit and comments, by cell) joins it: the written answers'
points (or "pending" until a TA grades them), a TA's score that replaces the autograder's on a test cell, the TAs'
comments, and the total of both parts (`reports.totals`, the rule the class tables use). `regrades`: what
`autograder regrade` changed, newest first on the page.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2

from .results import (
    MALFORMED_RESULTS,
    CheckResult,
    Finding,
    MalformedResult,
    SubmissionResult,
    as_number,
    as_result,
    format_number,
    format_points,
)

if TYPE_CHECKING:
    from .regrade_record import Regrade
    from .reports.totals import CellGrade

__all__ = [
    "environment",
    "render_feedback",
    "render_unreadable",
    "feedback_view",
    "check_view",
    "format_number",
    "format_points",
    "format_percent",
]

TEMPLATES = Path(__file__).parent / "templates"


@functools.lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """The Jinja2 environment of the kit's templates (shared with `reports`): autoescape on, undefined names fail."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["num"] = format_number  # metrics, times: full precision
    env.filters["points"] = format_points  # scores: two decimals
    env.filters["percent"] = format_percent
    return env


def render_feedback(
    result: SubmissionResult | Mapping[str, Any],
    *,
    grades: Mapping[str, CellGrade] | None = None,
    regrades: Sequence[Regrade] = (),
) -> str:
    """The feedback page of one graded submission, from its result or its results.json as a dict, with the TAs'
    grades and comments from nbgrader's gradebook (by cell name) and the submission's regrades (oldest first).

    A dict that is not a usable results.json gives the page that says the results could not be read (with what is
    wrong), never an exception.
    """
    try:
        view = feedback_view(as_result(result), grades=grades, regrades=regrades)
    except MalformedResult as exc:
        view = unreadable_view("assignment", "", exc.reason)
    return _render(view)


def render_unreadable(assignment: str, student: str, reason: str) -> str:
    """The page of a submission whose results.json could not be read: no score, and a finding that says why."""
    return _render(unreadable_view(assignment, student, reason))


def feedback_view(
    result: SubmissionResult,
    *,
    grades: Mapping[str, CellGrade] | None = None,
    regrades: Sequence[Regrade] = (),
) -> dict:
    """The plain values the feedback template shows, with questions grouped in the order of their first check."""
    from .reports.totals import totals  # the reports import this module: their rule is read when a page is made

    grades = grades or {}
    questions: dict[str, dict] = {}
    for check in map(check_view, result.checks):
        question = questions.setdefault(
            check["grade_id"], {"grade_id": check["grade_id"], "checks": [], "score": 0.0, "max_score": 0.0}
        )
        question["checks"].append(check)
        question["score"] += check["score"] or 0.0
        question["max_score"] += check["max_score"] or 0.0
    for question in questions.values():
        question["passed"] = sum(c["state"] == "passed" for c in question["checks"])
        all_passed = question["passed"] == len(question["checks"])
        question["state"] = _state(question["score"], question["max_score"], all_passed)

    score, max_score = as_number(result.score), as_number(result.max_score)
    checks = [c for q in questions.values() for c in q["checks"]]
    total = totals(result, grades)
    for gid, question in questions.items():
        graded = total.questions.get(gid)
        question["ta_score"] = graded if graded is not None and _ta_graded(grades.get(gid)) else None
    written = [
        {
            "grade_id": answer.grade_id,
            "max_score": answer.max_score,
            "score": total.questions.get(answer.grade_id),
            "pending": answer.grade_id in total.pending,
            "answered": answer.answered,
            "comment": _comment(grades.get(answer.grade_id)),
        }
        for answer in result.manual
    ]
    in_table = {answer.grade_id for answer in result.manual}
    comments = [
        {"cell": name, "comment": text}
        for name, text in sorted((name, _comment(grade)) for name, grade in grades.items())
        if text and name not in in_table
    ]
    with_ta = bool(written) or any(q["ta_score"] is not None for q in questions.values())
    return {
        "assignment": result.assignment or "assignment",
        "student": result.student,
        "timestamp": result.timestamp,
        "kit_version": result.kit_version or None,
        "notebook_sha256": result.notebook_sha256,
        "execution_time": as_number(result.execution_time),
        "score": score,
        "max_score": max_score,
        "fraction": (score / max_score) if score is not None and max_score else None,
        "findings": [_finding_view(f) for f in result.findings],
        "questions": list(questions.values()),
        "metrics": [(c, name, value) for c in checks for name, value in c["metrics"]],
        "passed": sum(c["state"] == "passed" for c in checks),
        "n_checks": len(checks),
        "with_ta": with_ta,  # the total has a part graded by a person: show both parts
        "ta_overrides": any(q["ta_score"] is not None for q in questions.values()),
        "total": total.total,
        "max_total": total.max_score,
        "total_fraction": (total.total / total.max_score) if total.total is not None and total.max_score else None,
        "pending": total.pending,
        "written": written,
        "comments": comments,
        "regrades": [_regrade_view(r) for r in reversed(regrades)],
    }


def unreadable_view(assignment: str, student: str, reason: str) -> dict:
    """The template's values for a submission without a readable result."""
    message = f"Your graded results could not be read, so no score is shown; staff will look at it ({reason})."
    return {
        "assignment": assignment or "assignment",
        "student": student,
        "timestamp": None,
        "kit_version": None,
        "notebook_sha256": None,
        "execution_time": None,
        "score": None,
        "max_score": None,
        "fraction": None,
        "findings": [_finding_view(Finding(MALFORMED_RESULTS, message))],
        "questions": [],
        "metrics": [],
        "passed": 0,
        "n_checks": 0,
        "with_ta": False,
        "ta_overrides": False,
        "total": None,
        "max_total": None,
        "total_fraction": None,
        "pending": [],
        "written": [],
        "comments": [],
        "regrades": [],
    }


def check_view(check: CheckResult) -> dict:
    """One check as the plain values the page shows."""
    score, max_score = as_number(check.score), as_number(check.max_score)
    return {
        "name": check.name,
        "grade_id": check.grade_id,
        "label": check.check or check.name,
        "score": score,
        "max_score": max_score,
        "state": _state(score, max_score, check.passed),
        "message": check.message,  # the diagnosis has its own box: the reader took it off the message
        "diagnosis": check.diagnosis,
        "hidden": check.hidden,
        "metrics": metric_values(check),
    }


def metric_values(check: CheckResult) -> list[tuple[str, float | None]]:
    """The check's metrics sorted by name; a value that is not a finite number (a diverged training) is None."""
    return [(str(k), as_number(v)) for k, v in sorted(check.metrics.items(), key=lambda kv: str(kv[0]))]


def format_percent(fraction: Any) -> str:
    number = as_number(fraction)
    return "\u2014" if number is None else f"{100 * number:.0f}%"


def _finding_view(finding: Finding) -> dict:
    kind = finding.kind or "finding"
    return {
        "kind": kind,
        "title": kind.replace("_", " ").capitalize(),
        "message": finding.message,
        "grade_id": finding.grade_id,
    }


def _ta_graded(grade: CellGrade | None) -> bool:
    return grade is not None and (grade.manual_score is not None or bool(grade.extra_credit))


def _comment(grade: CellGrade | None) -> str | None:
    return grade.comment if grade is not None and grade.comment else None


def _regrade_view(record: Regrade) -> dict:
    return {
        "time": record.time,
        "reason": record.reason,
        "old_score": record.old_score,
        "new_score": record.new_score,
        "max_score": record.max_score,
        "changes": [
            {
                "check": c.check,
                "kind": c.kind,
                "old_score": c.old_score,
                "new_score": c.new_score,
                "max_score": c.max_score,
                "old_message": c.old_message,
                "new_message": c.new_message,
            }
            for c in record.changes
        ],
    }


def _render(view: dict) -> str:
    return environment().get_template("feedback.html").render(**view)


def _state(score: float | None, max_score: float | None, passed: bool) -> str:
    if passed:
        return "passed"
    return "partial" if score and max_score and 0 < score < max_score else "failed"
