"""Failures no catalogued mistake explains: the class's own material for new entries of mistakes.yaml.

An answer cell fails unexplained when some value check that exercises it fails and none of those failing checks
carries a diagnosis (`grading/diagnosis.py` puts a catalogued mistake's sentence on every failing check it explains).
Cells failing alike (the same checks failing with the same points and messages: a *signature*) form one group, with
how many students share it and one example. A check that also runs another answer cell counts only when that cell is
right (its own checks all pass), as in the diagnosis rule; training checks take no part (no catalogued mistake is
trained, and their metrics differ from student to student). Submissions with a grader fault are left out: their
failures say nothing about the code.

`unexplained_failures` is the pure rule; `find_unexplained` reads what it needs from the course (the source
notebook's checks, each group's example answer cell) and is what the summary and `autograder mistakes suggest` use.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..files import CoursePaths
from .reading import GradedSubmission

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FailedCheck:
    name: str
    score: float
    max_score: float
    message: str
    hidden: bool = False


@dataclass
class Unexplained:
    """One group: an answer cell failing these checks alike in `students` (sorted); `code` is the first student's
    answer cell, when it could be read."""

    grade_id: str
    checks: tuple[FailedCheck, ...]
    students: list[str] = field(default_factory=list)
    code: str | None = None

    @property
    def example(self) -> str:
        return self.students[0]


def answer_cells(spec) -> dict[str, frozenset[str]]:
    """Check name (as results.json names it) -> the answer cells it exercises, for the value checks of `spec`."""
    from ..grading.diagnosis import exercised_cells
    from ..grading.scoring import check_name

    cells = exercised_cells(spec)
    training = {call.id for call in spec.training_calls}
    return {
        check_name(call, cell): cells[call.id]
        for cell in spec.tests
        for call in cell.calls
        if call.id not in training and cells.get(call.id)
    }


def unexplained_failures(subs: Sequence[GradedSubmission], cells: Mapping[str, frozenset[str]]) -> list[Unexplained]:
    """The groups, most students first (then by answer cell and signature), from the submissions' results and the
    answer cells each check exercises (`answer_cells`; a check not in it is left out)."""
    groups: dict[tuple[str, tuple[FailedCheck, ...]], Unexplained] = {}
    for sub in sorted(subs, key=lambda s: s.student):
        if sub.result is None or any(f.grader_fault for f in sub.findings):
            continue
        results = {c.name: c for c in sub.checks if c.name in cells}
        by_cell: dict[str, list[str]] = {}
        for name in results:
            for cell in sorted(cells[name]):
                by_cell.setdefault(cell, []).append(name)
        own = {cell: [n for n in names if cells[n] == {cell}] for cell, names in by_cell.items()}
        right = {cell: bool(names) and all(results[n].passed for n in names) for cell, names in own.items()}
        for cell, names in by_cell.items():
            counted = [n for n in names if all(right.get(other, False) for other in cells[n] - {cell})]
            failing = [results[n] for n in counted if not results[n].passed]
            if not failing or any(c.diagnosis for c in failing):
                continue
            signature = tuple(
                FailedCheck(c.name, round(c.score, 4), round(c.max_score, 4), c.message, c.hidden) for c in failing
            )
            groups.setdefault((cell, signature), Unexplained(cell, signature)).students.append(sub.student)
    return sorted(groups.values(), key=lambda g: (-len(g.students), g.grade_id, [c.name for c in g.checks]))


def find_unexplained(
    course_root: Path, assignment: str, subs: Sequence[GradedSubmission]
) -> tuple[list[Unexplained], str | None]:
    """The groups of a graded class, each with its example's answer cell; and a note when they cannot be found (no
    source notebook to tell which answer cell each check exercises)."""
    from ..notebook import load_spec

    paths = CoursePaths(Path(course_root))
    source = paths.source_notebook(assignment)
    if not source.is_file():
        return [], f"Unexplained failures are not listed: there is no source notebook {source} to read the checks from."
    try:
        spec = load_spec(source, assignment)
    except Exception as exc:  # noqa: BLE001 - a source the grader cannot read must not stop the reports
        return [], f"Unexplained failures are not listed: {source} could not be read ({exc.__class__.__name__}: {exc})."
    groups = unexplained_failures(subs, answer_cells(spec))
    release = _release(course_root, assignment)
    for group in groups:
        group.code = answer_code(paths, assignment, group.example, group.grade_id, spec, release)
    return groups, None


def answer_code(paths: CoursePaths, assignment: str, student: str, grade_id: str, spec, release) -> str | None:
    """The student's answer cell as the grader took it: from the graded notebook (autograded/), else from the
    submission; None when neither can be read."""
    from ..submission import read_submission

    graded = paths.autograded_dir(student, assignment) / f"{assignment}.ipynb"
    submitted = paths.submission_dir(student, assignment)
    candidates = [graded, submitted / f"{assignment}.ipynb", *sorted(submitted.glob("*.ipynb"))]
    for path in candidates:
        if path.is_file() and not path.is_symlink():
            code = read_submission(path, spec, release).answers.get(grade_id)
            if code is not None:
                return code
    return None


def _release(course_root: Path, assignment: str) -> dict | None:
    from ..notebook import load_release

    try:
        return load_release(Path(course_root), assignment)
    except Exception:  # noqa: BLE001 - without the release, answer cells are found by their grade_id alone
        return None
