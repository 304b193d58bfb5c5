"""The class's tables: `class.csv` for the TA, `canvas.csv` and `moodle.csv` for the LMS gradebook imports.

Totals come from `totals`: the autograder's points, with the scores TAs entered in formgrader, and a written answer
still to grade makes the total pending. A pending or unreadable total is never sent to an LMS as a number.

- class.csv: one row per student (sorted), one column per check (in the order of the checks), one per question (the
  grade_id's subtotal, a written answer's score or `pending`), then autograded (the autograder's score), manual (the
  written answers' points), total, max_score (both parts), percent, status (`final`, or `pending:` and the written
  answers still to grade), late and errors (the findings' kinds). A pending submission has no total or percent.
- canvas.csv: Canvas reads the columns `Student, ID, SIS User ID, SIS Login ID, Section`, then one column per
  assignment. `Student` and `SIS Login ID` hold the nbgrader student id; `ID`, `SIS User ID` and `Section` stay empty
  (Canvas matches a row by whichever it can). The assignment's column is headed by its plain name and a second row,
  `Points Possible`, gives its points: in Canvas's own exports a number in parentheses after the name, `Name (12345)`,
  is Canvas's internal assignment id, so a header `autoencoder (10)` would be read as a link to assignment 10, not as
  10 points. To update an assignment that already exists in Canvas, rename the header to the one in Canvas's export.
  An unreadable or pending result is left blank, which Canvas reads as "no change", never as a zero.
- moodle.csv: Moodle's CSV grade import (Grades > Import > CSV file) maps users by one identifier column and each other
  column to a grade item, chosen in its form. The columns are `Username` (the nbgrader student id), `Email address`
  when the gradebook knows every student's, and one column headed by the assignment, holding the total. Moodle reads
  an empty cell as "no grade" (it would clear a grade) and stops the whole import at an unknown user or an empty
  identifier, so pending and unreadable submissions are left out of the file (the summary lists them).

Scores are written to two decimals, as a person reads them (the gradebook keeps the exact values).
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

from ..results import format_points
from .reading import GradedSubmission

CANVAS_IDENTITY = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]


PENDING = "pending"


def class_csv(subs: Sequence[GradedSubmission]) -> str:
    """The class table: student, checks, question subtotals, autograded, manual, total, max_score, percent, status,
    late, errors."""
    checks = ordered_union([c.name for c in s.checks] for s in subs)
    questions = ordered_union(
        [*(c.grade_id for c in s.checks), *(m.grade_id for m in s.result.manual)] for s in subs if s.result is not None
    )
    rows = [
        [
            "student",
            *checks,
            *questions,
            "autograded",
            "manual",
            "total",
            "max_score",
            "percent",
            "status",
            "late",
            "errors",
        ]
    ]
    for sub in subs:
        by_name = {c.name: c.score for c in sub.checks}
        totals = sub.totals
        by_question = totals.questions if totals is not None else {}
        percent = (
            100 * totals.total / totals.max_score if totals and totals.total is not None and totals.max_score else None
        )
        kinds = list(dict.fromkeys(f.kind for f in sub.findings))
        if sub.notes:
            kinds.append("bad_timestamp")
        rows.append(
            [
                sub.student,
                *(_cell(by_name.get(name)) for name in checks),
                *(
                    PENDING if q in by_question and by_question[q] is None else _cell(by_question.get(q))
                    for q in questions
                ),
                _cell(sub.score),
                _cell(totals.manual if totals else None),
                _cell(totals.total if totals else None),
                _cell(totals.max_score if totals else None),
                _cell(percent),
                status(sub),
                {True: "yes", False: "no", None: ""}[sub.late],
                ";".join(kinds),
            ]
        )
    return _csv(rows)


def status(sub: GradedSubmission) -> str:
    """`final`, `pending: <the written answers still to grade>`, or empty for a result that could not be read."""
    totals = sub.totals
    if totals is None:
        return ""
    return "final" if totals.final else f"{PENDING}: {' '.join(totals.pending)}"


def canvas_csv(assignment: str, subs: Sequence[GradedSubmission]) -> str:
    """Canvas's gradebook import: identity columns, the assignment's column, a Points Possible row."""
    rows = [CANVAS_IDENTITY + [assignment], ["Points Possible", "", "", "", "", _cell(usual_max_total(subs))]]
    rows += [[s.student, "", "", s.student, "", _cell(final_total(s))] for s in subs]
    return _csv(rows)


def moodle_csv(assignment: str, subs: Sequence[GradedSubmission], emails: Mapping[str, str]) -> str:
    """Moodle's CSV grade import: the user's identifiers, then the assignment's total; final totals only."""
    final = [s for s in subs if final_total(s) is not None]
    with_email = bool(final) and all(emails.get(s.student) for s in final)
    rows = [["Username", *(["Email address"] if with_email else []), assignment]]
    rows += [[s.student, *([emails[s.student]] if with_email else []), _cell(final_total(s))] for s in final]
    return _csv(rows)


def final_total(sub: GradedSubmission) -> float | None:
    """The total an LMS may receive: None while unreadable or pending."""
    totals = sub.totals
    return totals.total if totals is not None else None


def usual_max_score(subs: Sequence[GradedSubmission]) -> float | None:
    """The max_score most of the readable results have (they all should); None when none is readable."""
    maxima = Counter(s.max_score for s in subs if s.result is not None)
    return maxima.most_common(1)[0][0] if maxima else None


def usual_max_total(subs: Sequence[GradedSubmission]) -> float | None:
    """The same for the total: the autograded points and the written answers'."""
    maxima = Counter(t.max_score for t in (s.totals for s in subs if s.result is not None) if t is not None)
    return maxima.most_common(1)[0][0] if maxima else None


def ordered_union(sequences: Iterable[list[str]]) -> list[str]:
    """Names in the order they appear: a name missing from earlier lists goes right after its predecessor."""
    out: list[str] = []
    for names in sequences:
        previous = None
        for name in names:
            if name not in out:
                out.insert(out.index(previous) + 1 if previous is not None else 0, name)
            previous = name
    return out


def _cell(value: float | None) -> str:
    return "" if value is None else format_points(value)


def _csv(rows: list[list[str]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()
