"""Regrading one student's submission, with a record of what changed (`autograder regrade`).

`regrade(course, student, assignment, reason=...)` grades the submission again (forced), keeps the results.json it
replaces beside the new one (`results.<time it was graded>.json`), and records what changed, per check (old and new
points and message): in `autograded/<student>/<a>/regrades.json`, which the student's feedback page shows, and as
rows of the class's `reports/<a>/regrades.csv`. It then writes that student's scores to nbgrader's gradebook and
their feedback page, as `autograder report` does. The TAs' manual grades live in the gradebook and are left as they
are, so they survive the regrade.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import KitError
from .files import RESULTS, CoursePaths, atomic_write
from .regrade_record import CSV_NAME, REGRADES, Regrade, append_csv, compare, read_regrades
from .results import MalformedResult, SubmissionResult, read_result


def regrade(
    course,
    student: str,
    assignment: str,
    *,
    reason: str = "",
    profile: str | None = None,
    log: Callable[[str], object] = print,
    grade: Callable[..., Any] | None = None,
) -> Regrade:
    """Grade `student`'s submission of `assignment` again and record what changed (see the module's docstring).

    `grade` is `batch.grade_paths` (tests pass a stand-in); it is called with the submission's folder and
    `force=True`. Raises KitError when there is no submission, or when the grading wrote no new result.
    """
    from .reports import write_student_feedback
    from .reports.gradebook import fill_gradebook

    course.assignment(assignment)
    paths = CoursePaths(Path(course.root))
    submission = paths.submission_dir(student, assignment)
    if not submission.is_dir() or not any(submission.glob("*.ipynb")):
        raise KitError(
            f"No submission of {assignment} by {student!r}: {submission} holds no notebook. Check the student id "
            f"(the folder names under {paths.submitted})."
        )
    folder = paths.autograded_dir(student, assignment)
    results = folder / RESULTS
    old_bytes = results.read_bytes() if results.is_file() else None
    old = _readable(results) if old_bytes is not None else None
    if grade is None:
        from .batch import grade_paths

        grade = grade_paths
    summary = grade(course, [submission], assignment=assignment, force=True, profile=profile, log=log)
    if summary.interrupted:
        raise KitError(f"The regrade of {student} was interrupted: its results are as they were.")
    new = _readable(results) if results.is_file() else None
    if new is None or summary.graded < 1:
        raise KitError(f"The regrade of {student} wrote no new result in {folder}; see the log above.")

    previous = None
    if old_bytes is not None:
        previous = _previous_name(folder, old)
        atomic_write(folder / previous, old_bytes)
    record = Regrade(
        time=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        reason=reason,
        old_score=old.score if old is not None else None,
        new_score=new.score,
        max_score=new.max_score,
        changes=tuple(compare(old, new)),
        previous=previous,
    )
    history = read_regrades(folder) + [record]
    atomic_write(folder / REGRADES, json.dumps([r.to_dict() for r in history], indent=1) + "\n")
    append_csv(paths.reports / assignment / CSV_NAME, student, record)

    _, notes = fill_gradebook(course.root, assignment, {student: new})
    record.notes.extend(notes)
    write_student_feedback(course.root, assignment, student)
    return record


def _readable(path: Path) -> SubmissionResult | None:
    try:
        return read_result(path)
    except MalformedResult:
        return None


def _previous_name(folder: Path, old: SubmissionResult | None) -> str:
    """`results.<when it was graded>.json` (a number added when that name is taken); `results.previous.json` for a
    result without a readable time."""
    stamp = _compact_time(old.timestamp) if old is not None and old.timestamp else ""
    stem = f"results.{stamp}" if stamp else "results.previous"
    name, n = f"{stem}.json", 1
    while (folder / name).exists():
        n += 1
        name = f"{stem}.{n}.json"
    return name


def _compact_time(text: str) -> str:
    """An ISO time as a file name's part: 20261205T214004Z (in UTC), or its letters and digits when it is not one."""
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        return re.sub(r"[^0-9A-Za-z]+", "-", text).strip("-")[:40]
    if when.tzinfo is not None:
        when = when.astimezone(dt.UTC)
    return when.strftime("%Y%m%dT%H%M%SZ")
