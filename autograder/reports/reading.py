"""What the reports read: each graded submission's results.json (through `results.read_result`), its nbgrader
timestamp for the late flag, and the thresholds of the quality metrics (through `files.read_thresholds`). The
gradebook's manual grades join a submission later (`gradebook.read_grades`), for its totals (`totals`).

A results.json that cannot be read becomes a `GradedSubmission` without a result and with the reader's reason, shown
as the finding `malformed_results`: one bad file never stops the reports of the others.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from ..errors import KitError
from ..files import RESULTS, CoursePaths, read_thresholds
from ..regrade_record import Regrade, read_regrades
from ..results import MALFORMED_RESULTS, CheckResult, Finding, MalformedResult, SubmissionResult, as_number, read_result
from ..student_files import as_utc, read_timestamp
from .totals import CellGrade, Totals, totals

log = logging.getLogger(__name__)

# metric -> [(profile, {"threshold", "fail", "higher_is_better"})], the profiles in name order
MetricRules = dict[str, list[tuple[str, dict]]]


@dataclass
class GradedSubmission:
    """One student's graded submission of one assignment, as the reports see it."""

    student: str
    result: SubmissionResult | None  # None when its results.json could not be read
    error: str | None = None  # why it could not be read
    late: bool | None = None  # None when the submission time or the due date is unknown
    notes: list[str] = field(default_factory=list)  # problems met while reading, e.g. an unreadable timestamp
    time: datetime | None = None  # when it was submitted (nbgrader's timestamp.txt), when known
    grades: dict[str, CellGrade] = field(default_factory=dict)  # the gradebook's manual grades and comments, by cell
    regrades: list[Regrade] = field(default_factory=list)  # `autograder regrade`'s records, oldest first

    @property
    def checks(self) -> list[CheckResult]:
        return self.result.checks if self.result is not None else []

    @property
    def findings(self) -> list[Finding]:
        if self.result is None:
            return [Finding(MALFORMED_RESULTS, self.error or "results.json could not be read")]
        return self.result.findings

    @property
    def score(self) -> float | None:
        return self.result.score if self.result is not None else None

    @property
    def max_score(self) -> float | None:
        return self.result.max_score if self.result is not None else None

    @property
    def totals(self) -> Totals | None:
        """The autograder's points with the TAs' manual grades; None when the result could not be read."""
        return totals(self.result, self.grades) if self.result is not None else None


def find_assignments(course_root: Path) -> list[str]:
    """The assignments that have at least one `autograded/<student>/<assignment>/results.json`."""
    return sorted({p.parent.name for p in CoursePaths(Path(course_root)).autograded.glob(f"*/*/{RESULTS}")})


def collect(course_root: Path, assignment: str, *, due: datetime | None = None) -> list[GradedSubmission]:
    """Every graded submission of `assignment`, sorted by student id; late when its timestamp is after `due`."""
    subs = []
    paths = CoursePaths(Path(course_root))
    for path in sorted(paths.autograded.glob(f"*/{assignment}/{RESULTS}")):
        student = path.parent.parent.name
        try:
            sub = GradedSubmission(student, read_result(path))
        except MalformedResult as exc:
            sub = GradedSubmission(student, None, exc.reason)
        sub.regrades = read_regrades(path.parent)
        stamp = _submission_time(paths, student, assignment, sub.notes)
        sub.time = stamp
        if stamp is not None and due is not None:
            sub.late = stamp > as_utc(due)
        subs.append(sub)
    return sorted(subs, key=lambda s: s.student)


def metric_rules(course_root: Path, assignment: str) -> MetricRules:
    """Each quality metric's threshold and failure level per profile of thresholds.json; {} when there are none.

    A thresholds.json that cannot be read is a logged warning here, not a stop: the summary then shows the metrics
    without thresholds.
    """
    try:
        profiles = read_thresholds(CoursePaths(Path(course_root)), assignment)
    except KitError as exc:
        log.warning(f"The class summary of {assignment} shows no thresholds: {exc}")
        return {}
    out: MetricRules = {}
    for profile, spec in sorted(profiles.items()):
        metrics = spec.get("metrics") if isinstance(spec, Mapping) else None
        for metric, rule in (metrics if isinstance(metrics, Mapping) else {}).items():
            if isinstance(rule, Mapping) and as_number(rule.get("threshold")) is not None:
                out.setdefault(str(metric), []).append((str(profile), dict(rule)))
    return out


def _submission_time(paths: CoursePaths, student: str, assignment: str, notes: list[str]) -> datetime | None:
    """nbgrader's timestamp.txt, from submitted/ or else autograded/; an unreadable one adds a note."""
    for folder in (paths.submission_dir(student, assignment), paths.autograded_dir(student, assignment)):
        time, bad = read_timestamp(folder / "timestamp.txt")
        if bad is not None:
            notes.append(f"{(folder / 'timestamp.txt').relative_to(paths.root)} is not a time: {bad[:40]!r}")
        if time is not None or bad is not None:
            return time
    return None
