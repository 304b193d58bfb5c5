"""What a regrade changed, as records: `autograded/<student>/<a>/regrades.json` (the submission's regrades, oldest
first, which its feedback page shows) and rows of the class's `reports/<a>/regrades.csv`. `autograder.regrade` makes
them; the feedback pages and reports read them."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .files import atomic_write
from .results import SubmissionResult, format_points

__all__ = [
    "Change",
    "Regrade",
    "append_csv",
    "compare",
    "csv_rows",
    "describe",
    "read_regrades",
    "REGRADES",
    "CSV_COLUMNS",
    "CSV_NAME",
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


def _count(n: int) -> str:
    return "no check" if n == 0 else ("1 check" if n == 1 else f"{n} checks")


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _points(value: float | None) -> str:
    return "" if value is None else format_points(value)


def append_csv(path: Path, student: str, record: Regrade) -> None:
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
