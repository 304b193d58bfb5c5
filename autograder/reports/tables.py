"""The class's tables: `class.csv` for the TA and `canvas.csv` for Canvas's gradebook import.

- class.csv: one row per student (sorted), one column per check (in the order of the checks), one per question (the
  grade_id's subtotal), then total, max_score, percent, late and errors (the findings' kinds).
- canvas.csv: Canvas reads the columns `Student, ID, SIS User ID, SIS Login ID, Section`, then one column per
  assignment. `Student` and `SIS Login ID` hold the nbgrader student id; `ID`, `SIS User ID` and `Section` stay empty
  (Canvas matches a row by whichever it can). The assignment's column is headed by its plain name and a second row,
  `Points Possible`, gives its points: in Canvas's own exports a number in parentheses after the name, `Name (12345)`,
  is Canvas's internal assignment id, so a header `autoencoder (10)` would be read as a link to assignment 10, not as
  10 points. To update an assignment that already exists in Canvas, rename the header to the one in Canvas's export.
  An unreadable result is left blank, which Canvas reads as "no change", never as a zero.

Scores are written to two decimals, as a person reads them (the gradebook keeps the exact values).
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterable, Sequence

from ..results import format_points
from .reading import Submission

CANVAS_IDENTITY = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]


def class_csv(subs: Sequence[Submission]) -> str:
    """The class table: student, checks, question subtotals, total, max_score, percent, late, errors."""
    checks = ordered_union([c.name for c in s.checks] for s in subs)
    questions = ordered_union([c.grade_id for c in s.checks] for s in subs)
    rows = [["student", *checks, *questions, "total", "max_score", "percent", "late", "errors"]]
    for sub in subs:
        by_name = {c.name: c.score for c in sub.checks}
        by_question: dict[str, float] = {}
        for c in sub.checks:
            by_question[c.grade_id] = by_question.get(c.grade_id, 0.0) + c.score
        percent = 100 * sub.score / sub.max_score if sub.result is not None and sub.max_score else None
        kinds = list(dict.fromkeys(f.kind for f in sub.findings))
        if sub.notes:
            kinds.append("bad_timestamp")
        rows.append(
            [
                sub.student,
                *(_cell(by_name.get(name)) for name in checks),
                *(_cell(by_question.get(q)) for q in questions),
                _cell(sub.score),
                _cell(sub.max_score),
                _cell(percent),
                {True: "yes", False: "no", None: ""}[sub.late],
                ";".join(kinds),
            ]
        )
    return _csv(rows)


def canvas_csv(assignment: str, subs: Sequence[Submission]) -> str:
    """Canvas's gradebook import: identity columns, the assignment's column, a Points Possible row."""
    rows = [CANVAS_IDENTITY + [assignment], ["Points Possible", "", "", "", "", _cell(usual_max_score(subs))]]
    rows += [[s.student, "", "", s.student, "", _cell(s.score)] for s in subs]
    return _csv(rows)


def usual_max_score(subs: Sequence[Submission]) -> float | None:
    """The max_score most of the readable results have (they all should); None when none is readable."""
    maxima = Counter(s.max_score for s in subs if s.result is not None)
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
