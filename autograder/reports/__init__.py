"""The TA's reports: from the graded submissions' results.json to CSVs, a class summary, feedback and the gradebook.

`write_reports(course_root)` reads `autograded/<student>/<assignment>/results.json` and writes, for each assignment:

- the scores in nbgrader's `gradebook.db` (`gradebook`, which records the assignment there first when it is
  missing), then the grades TAs entered in formgrader, read back for the totals (`totals`);
- `reports/<a>/class.csv`, `reports/<a>/canvas.csv` and `reports/<a>/moodle.csv` (`tables`);
- `reports/<a>/summary.html` with its figures beside it (`summary`, drawn by `figures`);
- `feedback/<student>/<a>/<a>.html`, where `nbgrader release_feedback` finds it (`release`).

What they read is read in `reading`: the results through `results.read_result`, the thresholds through
`files.read_thresholds`. A results.json that cannot be read becomes a row with the error `malformed_results`, never
an exception; a problem with the gradebook or thresholds.json is a logged warning, never an exception.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path

from ..errors import KitError
from ..files import CoursePaths, atomic_write
from ..regrade_record import read_regrades
from ..results import MalformedResult, read_result
from .gradebook import fill_gradebook, read_grades, write_gradebook
from .reading import GradedSubmission, collect, find_assignments, metric_rules
from .release import write_feedback, write_feedback_pages
from .summary import write_summary
from .tables import canvas_csv, class_csv, moodle_csv
from .unexplained import find_unexplained
from .weights import flag_weights, reference_hashes, weights_csv

__all__ = [
    "write_reports",
    "write_student_feedback",
    "write_gradebook",
    "collect",
    "GradedSubmission",
    "class_csv",
    "canvas_csv",
    "moodle_csv",
]

log = logging.getLogger(__name__)


def write_reports(
    course_root: Path,
    *,
    assignments: Sequence[str] | None = None,
    out_dir: Path | None = None,
    due: Mapping[str, datetime | None] = {},
) -> list[Path]:
    """Write every report of each assignment found under `autograded/`; returns the files written.

    `due` maps an assignment to its due date (a naive date is taken as UTC, as nbgrader does); a submission is late
    when its `timestamp.txt` (nbgrader's, in `submitted/` or `autograded/`) is after it.
    """
    course_root = Path(course_root)
    paths = CoursePaths(course_root)
    out_dir = Path(out_dir) if out_dir is not None else paths.reports
    found = find_assignments(course_root)
    if assignments is None:
        if not found:
            raise KitError(
                f"No results to report on: {paths.autograded} holds no <student>/<assignment>/results.json."
                " Run `autograder grade` first."
            )
        assignments = found
    missing = [a for a in assignments if a not in found]
    if missing:
        raise KitError(
            f"No graded submissions of {', '.join(map(repr, missing))} under {paths.autograded}"
            f" (found: {', '.join(found) or 'none'}). Check the assignment name, or run `autograder grade` first."
        )

    written: list[Path] = []
    for assignment in assignments:
        subs = collect(course_root, assignment, due=due.get(assignment))
        folder = out_dir / assignment
        results = {s.student: s.result for s in subs if s.result is not None}
        count, notes = fill_gradebook(
            course_root, assignment, results, timestamps={s.student: s.time for s in subs if s.time is not None}
        )
        grades, emails, more = read_grades(course_root, assignment)
        notes += more
        for sub in subs:
            sub.grades = grades.get(sub.student, {})
        notes += _not_final(assignment, subs)
        for note in notes:
            log.warning(note)
        written.append(atomic_write(folder / "class.csv", class_csv(subs)))
        written.append(atomic_write(folder / "canvas.csv", canvas_csv(assignment, subs)))
        written.append(atomic_write(folder / "moodle.csv", moodle_csv(assignment, subs, emails)))
        gradebook = {"written": count, "notes": notes}
        unexplained, why_not = find_unexplained(course_root, assignment, subs)
        if why_not:
            log.warning(why_not)
        flags = flag_weights(subs, reference_hashes(course_root, assignment))  # submitted weights (weights.py)
        for flag in flags:
            log.warning(f"{assignment}: {flag.student}: {flag.message}")
        if any(s.result is not None and s.result.weights is not None for s in subs):
            written.append(atomic_write(folder / "weights.csv", weights_csv(subs, flags)))
        written += write_summary(
            folder,
            assignment,
            subs,
            metric_rules(course_root, assignment),
            gradebook,
            unexplained=unexplained,
            unexplained_note=why_not,
            more_findings=[f.row() for f in flags],
        )
        written += write_feedback_pages(course_root, assignment, subs)
    return written


def write_student_feedback(course_root: Path, assignment: str, student: str) -> list[Path]:
    """One student's feedback page (and the exchange files beside it), the same as `write_reports` writes it: what
    nbgrader's "Generate Feedback" gives in this course (see `nbgrader_hooks`)."""
    paths = CoursePaths(Path(course_root))
    path = paths.results_file(student, assignment)
    try:
        sub = GradedSubmission(student, read_result(path))
    except MalformedResult as exc:
        sub = GradedSubmission(student, None, exc.reason)
    sub.regrades = read_regrades(path.parent)
    grades, _, notes = read_grades(course_root, assignment, students={student})
    for note in notes:
        log.warning(note)
    sub.grades = grades.get(student, {})
    return write_feedback(Path(course_root), assignment, sub)


def _not_final(assignment: str, subs: list[GradedSubmission]) -> list[str]:
    """The submissions whose written answers are still to grade in formgrader: no final total yet."""
    pending = [f"{s.student} ({' '.join(s.totals.pending)})" for s in subs if s.totals and not s.totals.final]
    if not pending:
        return []
    return [
        f"{assignment}: {len(pending)} submission(s) have written answers to grade in formgrader, so no final "
        f"total yet (blank in canvas.csv, left out of moodle.csv): {', '.join(pending)}."
    ]
