"""The scores in nbgrader's `gradebook.db`, so that `nbgrader export` and formgrader show them, and the grades TAs
entered in formgrader, read back for the totals.

The autograder's points go in per grade cell, as nbgrader's autograde stores them: a test cell's `auto_score` is the
sum of its checks; a written answer gets no automatic score and waits for a TA, unless it was left as released (then
0 and "No response.", as nbgrader decides). A TA's manual score is never touched; it is marked for review again only
when the autograder's verdict on its cell changes.

When the gradebook lacks the assignment or its notebook (or does not exist yet), it is recorded first by nbgrader's
own `generate_assignment` step, run on the source notebook with its release written to a scratch folder: the
assignment, its notebook and its grade, solution and source cells, exactly as the instructor's `autograder generate`
records them.

A problem with the gradebook (no source notebook to record it from, a locked file) is a note, logged and shown in the
class summary, never an exception: the other reports are written all the same.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Collection, Mapping
from datetime import datetime
from pathlib import Path

from ..files import CoursePaths
from ..results import MalformedResult, SubmissionResult, as_result, format_points
from ..student_files import as_utc
from .totals import CellGrade

log = logging.getLogger(__name__)

NO_RESPONSE = "No response."  # nbgrader's automatic comment on an answer left as released


def write_gradebook(
    course_root: Path,
    assignment: str,
    results: Mapping[str, SubmissionResult | Mapping],
    *,
    timestamps: Mapping[str, datetime] = {},
) -> int:
    """Put each student's scores into nbgrader's `gradebook.db`; returns how many students were written.

    `results` maps a student to their result (or its results.json as a dict), `timestamps` to the time of the
    submission (nbgrader's, which formgrader compares with `submitted/`). Creates the student and the submission
    when missing; sets each code grade cell's `auto_score` to the sum of the checks with that grade_id (0 when none),
    clipped to the cell's points; leaves each written answer (a markdown grade cell) to a TA, except one left as
    released, which gets 0. Manual scores are never changed. When the database, the assignment or its notebook
    (`<a>.ipynb`) is missing, they are recorded from `source/<a>/<a>.ipynb` first (`record_assignment`); when that
    cannot be done, nothing is written and a warning says why.
    """
    count, notes = fill_gradebook(course_root, assignment, results, timestamps=timestamps)
    for note in notes:
        log.warning(note)
    return count


def fill_gradebook(
    course_root: Path,
    assignment: str,
    results: Mapping[str, SubmissionResult | Mapping],
    *,
    timestamps: Mapping[str, datetime] = {},
) -> tuple[int, list[str]]:
    """`write_gradebook` without the logging: (students written, notes on what was skipped and why)."""
    db = CoursePaths(Path(course_root)).gradebook
    fix = (
        f"run `nbgrader generate_assignment {assignment}` in {course_root} first (`autograder generate` works in a "
        "scratch copy and leaves the gradebook as it is)"
    )
    try:
        notes = record_assignment(course_root, assignment)
    except Exception as exc:  # noqa: BLE001 - a locked or corrupt database must not stop the other reports
        return 0, [f"Gradebook: reading {db} failed: {exc.__class__.__name__}: {exc}"]
    if notes:
        return 0, notes
    from nbgrader.api import Gradebook, MissingEntry

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
            written_answers = {c.name for c in notebook.grade_cells if c.cell_type != "code"}
            mentioned: set[str] = set()
            mentioned_answers: set[str] = set()
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
                stamp = timestamps.get(student)
                # nbgrader keeps naive UTC times; formgrader counts a submission as autograded when they agree.
                when = {"timestamp": as_utc(stamp).replace(tzinfo=None)} if stamp else {}
                gb.update_or_create_submission(assignment, student, **when)
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
                    _set_auto_score(grade, round(score, 4))
                answered = {m.grade_id: m.answered for m in result.manual}
                mentioned_answers |= set(answered)
                for name in sorted(written_answers):
                    try:
                        grade = gb.find_grade(name, assignment, assignment, student)
                    except MissingEntry:
                        notes.append(f"Gradebook: {student}'s submission has no grade for written answer {name!r}.")
                        continue
                    blank = not answered.get(name, True)  # not in the result: a TA looks at it
                    grade.auto_score = 0.0 if blank else None
                    grade.needs_manual_grade = grade.auto_score is None and grade.manual_score is None
                    try:
                        gb.find_comment(name, assignment, assignment, student).auto_comment = (
                            NO_RESPONSE if blank else None
                        )
                    except MissingEntry:  # a grade cell that is no solution cell has no comment
                        pass
                gb.db.commit()
                written += 1
            for name in sorted(mentioned - set(cells)):
                notes.append(
                    f"Gradebook: checks of {name!r} have no code grade cell in {assignment}.ipynb; not written."
                )
            for name in sorted(mentioned_answers - written_answers):
                notes.append(
                    f"Gradebook: the written answer {name!r} has no markdown grade cell in {assignment}.ipynb"
                    f" ({fix}); its grades cannot be entered in formgrader."
                )
            for name in sorted(set(cells) - mentioned):
                notes.append(f"Gradebook: grade cell {name!r} has no checks in any result; its auto_score is 0.")
    except Exception as exc:  # a locked or corrupt database must not stop the other reports
        notes.append(f"Gradebook: writing {db} failed after {written} students: {exc.__class__.__name__}: {exc}")
    return written, notes


def missing_from_gradebook(course_root: Path, assignment: str) -> str | None:
    """What the gradebook lacks to take the scores of `assignment` (the database, the assignment, its notebook
    `<a>.ipynb`), or None when it has them all."""
    db = CoursePaths(Path(course_root)).gradebook
    if not db.is_file():
        return f"{db} does not exist"
    from nbgrader.api import Gradebook, MissingEntry

    try:
        with Gradebook(f"sqlite:///{db.resolve()}", course_id="") as gb:
            gb.find_assignment(assignment)
            gb.find_notebook(assignment, assignment)
    except MissingEntry as exc:
        return f"{exc} in {db}"
    return None


def record_assignment(course_root: Path, assignment: str) -> list[str]:
    """Make sure the gradebook holds `assignment`, its notebook and its cells; [] when it does, else notes on why it
    could not. What is missing is recorded by nbgrader's `generate_assignment` run on `source/<a>/<a>.ipynb` (with
    the course's nbgrader_config.py), whose release goes to a scratch folder so that release/ is left as it is."""
    course_root = Path(course_root)
    missing = missing_from_gradebook(course_root, assignment)
    if missing is None:
        return []
    source = CoursePaths(course_root).source_notebook(assignment)
    if not source.is_file():
        return [
            (
                f"Gradebook skipped for {assignment}: {missing}, and there is no source notebook {source} to record "
                f"the assignment from (as `nbgrader generate_assignment {assignment}` does); copy the course's "
                "source/ folder here, or report in the course directory."
            )
        ]
    log.info(f"Recording {assignment} in nbgrader's gradebook ({missing}), as `nbgrader generate_assignment` does.")
    # nbgrader runs the `alembic` script (from PATH) when it creates a database: this Python's scripts come first.
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    with tempfile.TemporaryDirectory(prefix="autograder-gradebook-") as scratch:
        try:
            run = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "nbgrader",
                    "generate_assignment",
                    assignment,
                    "--force",
                    "--log-level=WARN",
                    f"--CourseDirectory.release_directory={scratch}",
                ],
                cwd=course_root,
                env=env,
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return [
                (
                    f"Gradebook skipped for {assignment}: {missing}, and recording it with `nbgrader "
                    f"generate_assignment {assignment}` could not run ({exc.__class__.__name__}: {exc})."
                )
            ]
    if run.returncode != 0:
        why = _nbgrader_reason(run.stderr + run.stdout) or f"exit status {run.returncode}"
        return [
            (
                f"Gradebook skipped for {assignment}: {missing}, and `nbgrader generate_assignment {assignment}` "
                f"failed to record it: {why[:300]}. Run it in {course_root} to see the whole error."
            )
        ]
    still = missing_from_gradebook(course_root, assignment)
    if still is not None:
        return [f"Gradebook skipped for {assignment}: `nbgrader generate_assignment {assignment}` ran but {still}."]
    return []


_GENERIC_ERRORS = ("There was an error processing", "Traceback (most recent call last)", "Please see the")
_RAISED = re.compile(r"^\s*[\w.]+(Error|Exception): \S")


def _nbgrader_reason(output: str) -> str | None:
    """The line of a failed nbgrader command's output that says why: nbgrader's own error message, else the exception
    its traceback ends with (nbgrader logs "see the above traceback" around it), else its last line."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line.split("| ERROR]", 1)[1].strip() for line in lines if "| ERROR]" in line]
    specific = [error for error in errors if error and not error.startswith(_GENERIC_ERRORS)]
    raised = [line for line in lines if _RAISED.match(line)]
    reasons = specific or raised[-1:] or lines[-1:]
    return reasons[0] if reasons else None


def _set_auto_score(grade, score: float) -> None:
    """A test cell's automatic score. A TA's manual score on it is marked for review again when the autograder's
    verdict changed (as nbgrader's autograde does on every run; the kit writes the gradebook at every report, so
    it asks again only when there is something new to look at)."""
    if grade.auto_score != score:
        grade.needs_manual_grade = grade.manual_score is not None
        grade.auto_score = score


def read_grades(
    course_root: Path, assignment: str, *, students: Collection[str] | None = None
) -> tuple[dict[str, dict[str, CellGrade]], dict[str, str], list[str]]:
    """The grades TAs entered in formgrader: (student -> cell name -> manual score, extra credit and comment, the
    students' email addresses where the gradebook has them, notes on what could not be read). `students`: only
    these (default: every student with a submission)."""
    db = CoursePaths(Path(course_root)).gradebook
    if not db.is_file():
        return {}, {}, []  # fill_gradebook has said so already
    from nbgrader.api import Gradebook, MissingEntry

    grades: dict[str, dict[str, CellGrade]] = {}
    emails: dict[str, str] = {}
    try:
        with Gradebook(f"sqlite:///{db.resolve()}", course_id="") as gb:
            try:
                submissions = gb.assignment_submissions(assignment)
            except MissingEntry:
                return {}, {}, []
            for submission in submissions:
                student = submission.student
                if students is not None and student.id not in students:
                    continue
                if student.email:
                    emails[student.id] = student.email
                grades[student.id] = _cell_grades(submission)
    except Exception as exc:  # a locked or corrupt database: the totals go without the manual grades, and say so
        return {}, {}, [f"Gradebook: reading the manual grades from {db} failed: {exc.__class__.__name__}: {exc}"]
    return grades, emails, []


def _cell_grades(submission) -> dict[str, CellGrade]:
    """One submission's manual scores, extra credit and the TAs' comments, by cell name (a written answer is both a
    grade cell and a solution cell: its score and its comment join)."""
    scores: dict[str, tuple[float | None, float | None]] = {}
    comments: dict[str, str] = {}
    for notebook in submission.notebooks:
        for grade in notebook.grades:
            if grade.manual_score is not None or grade.extra_credit:
                scores[grade.name] = (grade.manual_score, grade.extra_credit)
        for comment in notebook.comments:
            text = (comment.manual_comment or "").strip()
            if text:
                comments[comment.name] = text
    return {
        name: CellGrade(*scores.get(name, (None, None)), comment=comments.get(name))
        for name in sorted(set(scores) | set(comments))
    }
