"""Each student's feedback page where `nbgrader release_feedback` looks for it: `feedback/<student>/<a>/<a>.html`
under the course root, the folder nbgrader's own `generate_feedback` fills.

The submission's `timestamp.txt` and `submission_secret.txt` (nbgrader's exchange writes both when a student submits)
are copied beside the page, because release_feedback names the released page by a hash of that secret. They come
from the student's folder, so they are read like the notebook (`student_files.read_small_file`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

from ..feedback import render_feedback, render_unreadable
from ..files import CoursePaths, atomic_write
from ..student_files import read_small_file
from .reading import GradedSubmission

log = logging.getLogger(__name__)

SECRET = "submission_secret.txt"  # release_feedback names a released page by a hash of it
EXCHANGE_FILES = ("timestamp.txt", SECRET)  # nbgrader submit writes both


def write_feedback(course_root: Path, assignment: str, sub: GradedSubmission) -> list[Path]:
    """The student's page in nbgrader's feedback folder, with the exchange's files that release_feedback reads."""
    paths = CoursePaths(Path(course_root))
    folder = paths.feedback_dir(sub.student, assignment)
    if sub.result is not None:
        page = render_feedback(sub.result, grades=sub.grades, regrades=sub.regrades)
    else:
        page = render_unreadable(assignment, sub.student, sub.error or "results.json could not be read")
    written = [atomic_write(folder / f"{assignment}.html", page)]
    for name in EXCHANGE_FILES:
        data = read_small_file(paths.submission_dir(sub.student, assignment) / name)
        if data is not None:
            written.append(atomic_write(folder / name, data))
    return written


def write_feedback_pages(course_root: Path, assignment: str, subs: Sequence[GradedSubmission]) -> list[Path]:
    """Every student's page; warns when only some students have a submission secret (see `_warn_without_secret`)."""
    pages = {sub.student: write_feedback(course_root, assignment, sub) for sub in subs}
    _warn_without_secret(assignment, pages)
    return [path for paths in pages.values() for path in paths]


def _warn_without_secret(assignment: str, pages: Mapping[str, list[Path]]) -> None:
    """release_feedback stops at the first student without a secret, so the TA is told how to release the others.
    When no student has one, the class did not submit through nbgrader (an LMS class): no warning."""
    without = sorted(s for s, paths in pages.items() if not any(p.name == SECRET for p in paths))
    if without and len(without) < len(pages):
        log.warning(
            f"{assignment}: nbgrader release_feedback stops at the first student without a "
            f"submission_secret.txt (not submitted through nbgrader's exchange): {', '.join(without)}. "
            f"Release the others with --CourseDirectory.student_id_exclude={','.join(without)} and "
            "return these pages another way."
        )
