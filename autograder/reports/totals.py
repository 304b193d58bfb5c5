"""A submission's total: the autograder's points, what TAs entered in nbgrader's formgrader, and whether the written
answers are graded yet.

The one rule, as nbgrader scores a cell: a TA's manual score replaces the cell's automatic one, and extra credit adds
to it. A test cell's automatic score is the sum of its checks in results.json; a written answer has none, except an
answer left as released (or missing), which is worth 0 as nbgrader decides. A written answer that was answered and has
no manual score yet is pending, and so is the total: it is not final until a TA grades it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ..results import SubmissionResult


@dataclass(frozen=True)
class CellGrade:
    """What nbgrader's gradebook holds for one cell of one submission: a grade cell's manual score and extra credit,
    and a solution cell's comment from a TA (formgrader's comment box; None when there is none)."""

    manual_score: float | None = None
    extra_credit: float | None = None
    comment: str | None = None


@dataclass(frozen=True)
class Totals:
    questions: dict[str, float | None]  # grade_id -> points (None: a written answer still to grade), in order
    autograded: float  # the autograder's score, as results.json has it
    max_score: float  # the autograded points and the written answers' points
    pending: list[str] = field(default_factory=list)  # the written answers still to grade
    manual: float | None = None  # the written answers' points, when all are graded (None when there are none)
    total: float | None = None  # None while a written answer is pending

    @property
    def final(self) -> bool:
        return not self.pending


def totals(result: SubmissionResult, grades: Mapping[str, CellGrade]) -> Totals:
    """The points of each question (test cells' grade_ids, then the written answers) and the total."""
    autograded: dict[str, float] = {}
    for check in result.checks:
        autograded[check.grade_id] = autograded.get(check.grade_id, 0.0) + check.score
    questions: dict[str, float | None] = {}
    adjustment = 0.0  # what the TAs' scores change in the autograded part
    for gid, kit in autograded.items():
        score = _graded(grades.get(gid), kit)
        adjustment += score - kit
        questions[gid] = score
    pending, manual = [], 0.0
    for answer in result.manual:
        grade = grades.get(answer.grade_id)
        if answer.answered and (grade is None or grade.manual_score is None):
            pending.append(answer.grade_id)
            questions[answer.grade_id] = None
            continue
        score = _graded(grade, 0.0)
        questions[answer.grade_id] = score
        manual += score
    max_score = result.max_score + sum(a.max_score for a in result.manual)
    done = not pending
    return Totals(
        questions=questions,
        autograded=result.score,
        max_score=round(max_score, 4),
        pending=pending,
        manual=round(manual, 4) if done and result.manual else None,
        total=round(result.score + adjustment + manual, 4) if done else None,
    )


def _graded(grade: CellGrade | None, automatic: float) -> float:
    if grade is None:
        return automatic
    score = grade.manual_score if grade.manual_score is not None else automatic
    return score + (grade.extra_credit or 0.0)
