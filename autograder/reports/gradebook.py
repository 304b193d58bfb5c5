"""The scores in nbgrader's `gradebook.db`, so that `nbgrader export` and formgrader show them.

A problem with the gradebook (no database, no such assignment, a locked file) is a note, logged and shown in the class
summary, never an exception: the other reports are written all the same.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping
from pathlib import Path

from ..results import MalformedResult, SubmissionResult, as_result, format_points

log = logging.getLogger(__name__)


def write_gradebook(course_root: Path, assignment: str, results: Mapping[str, SubmissionResult | Mapping]) -> int:
    """Put each student's scores into nbgrader's `gradebook.db`; returns how many students were written.

    `results` maps a student to their result (or its results.json as a dict). Creates the student and the submission
    when missing, and sets each code grade cell's `auto_score` to the sum of the checks with that grade_id (0 when
    none), clipped to the cell's points; manually graded (markdown) cells and manual scores are left alone, and a
    grade with a manual score stays marked for review, as nbgrader does. When the database, the assignment or its
    notebook (`<a>.ipynb`) is missing, nothing is written and a warning says why.
    """
    count, notes = fill_gradebook(course_root, assignment, results)
    for note in notes:
        log.warning(note)
    return count


def fill_gradebook(
    course_root: Path, assignment: str, results: Mapping[str, SubmissionResult | Mapping]
) -> tuple[int, list[str]]:
    """`write_gradebook` without the logging: (students written, notes on what was skipped and why)."""
    db = Path(course_root) / "gradebook.db"
    fix = f"run `nbgrader generate_assignment {assignment}` in {course_root} first"
    if not db.is_file():
        return 0, [f"No gradebook: {db} does not exist, so the scores of {assignment} are not in it ({fix})."]
    from nbgrader.api import Gradebook, MissingEntry

    notes: list[str] = []
    written = 0
    try:
        # course_id "" is what nbgrader's own commands use by default: it adds no course row.
        with warnings.catch_warnings(), Gradebook(f"sqlite:///{db.resolve()}", course_id="") as gb:
            # nbgrader's add_submission sets off SQLAlchemy's harmless "not in session" autoflush warnings.
            warnings.filterwarnings("ignore", message=".*not in session.*")
            try:
                gb.find_assignment(assignment)
                notebook = gb.find_notebook(assignment, assignment)
            except MissingEntry as exc:
                return 0, [f"Gradebook skipped for {assignment}: {exc} in {db} ({fix})."]
            cells = {c.name: c for c in notebook.grade_cells if c.cell_type == "code"}
            mentioned: set[str] = set()
            for student in sorted(results):
                try:
                    result = as_result(results[student])
                except MalformedResult as exc:
                    notes.append(f"Gradebook: {student} skipped, {exc.reason}.")
                    continue
                sums: dict[str, float] = {}
                for check in result.checks:
                    sums[check.grade_id] = sums.get(check.grade_id, 0.0) + check.score
                mentioned |= set(sums)
                gb.update_or_create_student(student)
                try:
                    gb.find_submission(assignment, student)
                except MissingEntry:
                    gb.add_submission(assignment, student)
                for name, cell in sorted(cells.items()):
                    try:
                        grade = gb.find_grade(name, assignment, assignment, student)
                    except MissingEntry:
                        notes.append(f"Gradebook: {student}'s submission has no grade for cell {name!r}.")
                        continue
                    score = max(0.0, sums.get(name, 0.0))
                    if score > cell.max_score + 1e-9:
                        notes.append(
                            f"Gradebook: {student} scored {format_points(score)} on {name!r}, more than its"
                            f" {format_points(cell.max_score)} points in the gradebook; clipped."
                        )
                        score = float(cell.max_score)
                    grade.auto_score = round(score, 4)
                    grade.needs_manual_grade = grade.manual_score is not None
                gb.db.commit()
                written += 1
            for name in sorted(mentioned - set(cells)):
                notes.append(
                    f"Gradebook: checks of {name!r} have no code grade cell in {assignment}.ipynb; not written."
                )
            for name in sorted(set(cells) - mentioned):
                notes.append(f"Gradebook: grade cell {name!r} has no checks in any result; its auto_score is 0.")
    except Exception as exc:  # a locked or corrupt database must not stop the other reports
        notes.append(f"Gradebook: writing {db} failed after {written} students: {exc.__class__.__name__}: {exc}")
    return written, notes
