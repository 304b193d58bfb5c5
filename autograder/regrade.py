"""Regrading one student's submission, with a record of what changed (`autograder regrade`).

`regrade(course, student, assignment, reason=...)` grades the submission again (forced), keeps the results.json it
replaces beside the new one (`results.<time it was graded>.json`), and records what changed, per check (old and new
points and message): in `autograded/<student>/<a>/regrades.json`, which the student's feedback page shows, and as
rows of the class's `reports/<a>/regrades.csv`. It then writes that student's scores to nbgrader's gradebook and
their feedback page, as `autograder report` does. The TAs' manual grades live in the gradebook and are left as they
are, so they survive the regrade.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import KitError
from .files import RESULTS, CoursePaths, atomic_write
from .results import MalformedResult, SubmissionResult, format_points, read_result

__all__ = [
    "Change",
    "Regrade",
    "compare",
    "csv_rows",
    "describe",
    "read_regrades",
    "regrade",
    "REGRADES",
    "CSV_COLUMNS",
]

REGRADES = "regrades.json"  # beside results.json: this submission's regrades, oldest first
CSV_NAME = "regrades.csv"  # in reports/<a>/: the class's regrades, a row per changed check
CSV_COLUMNS = [
    "time",
    "student",
    "reason",
    "check",
    "change",
    "old_points",
    "new_points",
    "max_points",
    "old_message",
    "new_message",
]
CHANGED, ADDED, REMOVED, NONE = "changed", "added", "removed", "none"


@dataclass(frozen=True)
class Change:
    """One check whose result differs between two gradings (`kind`: changed, added or removed)."""

    check: str
    kind: str
    old_score: float | None
    new_score: float | None
    max_score: float
    old_message: str | None
    new_message: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "kind": self.kind,
            "old_score": self.old_score,
            "new_score": self.new_score,
            "max_score": self.max_score,
            "old_message": self.old_message,
            "new_message": self.new_message,
        }


@dataclass(frozen=True)
class Regrade:
    """One regrade of one submission: when, why, the autograded score before and after, and what changed."""

    time: str
    reason: str
    old_score: float | None
    new_score: float
    max_score: float
    changes: tuple[Change, ...] = ()
    previous: str | None = None  # the file the replaced results.json was kept as, beside the new one
    notes: list[str] = field(default_factory=list, compare=False)  # for the log: what was not done, and why

    def to_dict(self) -> dict[str, Any]:
        return {
            "time": self.time,
            "reason": self.reason,
            "old_score": self.old_score,
            "new_score": self.new_score,
            "max_score": self.max_score,
            "previous": self.previous,
            "changes": [c.to_dict() for c in self.changes],
        }

    @classmethod
    def from_dict(cls, data: Any) -> Regrade:
        """A regrade as `to_dict` wrote it; raises ValueError (or KeyError, TypeError) on anything else."""
        changes = tuple(
            Change(
                check=str(c["check"]),
                kind=str(c["kind"]),
                old_score=_number(c.get("old_score")),
                new_score=_number(c.get("new_score")),
                max_score=float(c["max_score"]),
                old_message=_text(c.get("old_message")),
                new_message=_text(c.get("new_message")),
            )
            for c in data["changes"]
        )
        return cls(
            time=str(data["time"]),
            reason=str(data.get("reason") or ""),
            old_score=_number(data.get("old_score")),
            new_score=float(data["new_score"]),
            max_score=float(data["max_score"]),
            changes=changes,
            previous=_text(data.get("previous")),
        )


def compare(old: SubmissionResult | None, new: SubmissionResult) -> list[Change]:
    """The checks whose points or message differ between two results of one submission, in the new result's order
    (then those the new result no longer has). Two gradings of one notebook with one kit give none."""
    before = {c.name: c for c in old.checks} if old is not None else {}
    changes = []
    for check in new.checks:
        was = before.pop(check.name, None)
        if was is None:
            changes.append(Change(check.name, ADDED, None, check.score, check.max_score, None, check.message))
        elif round(was.score, 4) != round(check.score, 4) or was.message != check.message:
            changes.append(
                Change(check.name, CHANGED, was.score, check.score, check.max_score, was.message, check.message)
            )
    for was in before.values():
        changes.append(Change(was.name, REMOVED, was.score, None, was.max_score, was.message, None))
    return changes


def read_regrades(folder: Path) -> list[Regrade]:
    """The regrades recorded in a submission's folder, oldest first; [] when there are none or the file is not
    one the kit wrote (the feedback page then shows none, and the reports go on)."""
    path = Path(folder) / REGRADES
    if not path.is_file() or path.is_symlink():
        return []
    try:
        return [Regrade.from_dict(entry) for entry in json.loads(path.read_text(encoding="utf-8"))]
    except (OSError, ValueError, KeyError, TypeError):
        return []


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
    _append_csv(paths.reports / assignment / CSV_NAME, student, record)

    _, notes = fill_gradebook(course.root, assignment, {student: new})
    record.notes.extend(notes)
    write_student_feedback(course.root, assignment, student)
    return record


def describe(student: str, record: Regrade) -> list[str]:
    """The regrade in a few lines, for the command's output."""
    old = "none" if record.old_score is None else format_points(record.old_score)
    lines = [
        f"{student}: regraded, {old} -> {format_points(record.new_score)} / {format_points(record.max_score)} "
        f"autograded points; {_count(len(record.changes))} changed."
    ]
    for c in record.changes:
        lines.append(f"  {c.check}: {_points(c.old_score)} -> {_points(c.new_score)} ({c.kind})")
    if record.previous:
        lines.append(f"  the previous results are kept as {record.previous}")
    return lines


def csv_rows(student: str, record: Regrade) -> list[list[str]]:
    """The rows `regrades.csv` gets for one regrade: one per changed check, or one that says nothing changed."""
    base = [record.time, student, record.reason]
    if not record.changes:
        score = _points(record.new_score)
        return [[*base, "", NONE, _points(record.old_score), score, _points(record.max_score), "", ""]]
    return [
        [
            *base,
            c.check,
            c.kind,
            _points(c.old_score),
            _points(c.new_score),
            _points(c.max_score),
            c.old_message or "",
            c.new_message or "",
        ]
        for c in record.changes
    ]


def _append_csv(path: Path, student: str, record: Regrade) -> None:
    """Adds the regrade's rows to the class's regrades.csv (with its header when the file is new); written whole,
    atomically, so that a reader never sees half a row."""
    before = path.read_text(encoding="utf-8") if path.is_file() else ""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    if not before:
        writer.writerow(CSV_COLUMNS)
    elif not before.endswith("\n"):
        buffer.write("\n")
    writer.writerows(csv_rows(student, record))
    atomic_write(path, before + buffer.getvalue())


def _count(n: int) -> str:
    return "no check" if n == 0 else ("1 check" if n == 1 else f"{n} checks")


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


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _points(value: float | None) -> str:
    return "" if value is None else format_points(value)
