"""What a person sees of a batch: a progress line (or bar) per submission graded, and the summary at the end.
Nothing here can change a result (kit_fingerprint leaves this module out)."""

from __future__ import annotations

import statistics
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class BatchSummary:
    """What a batch did; `str()` is the summary printed at its end."""

    submissions: int = 0
    graded: int = 0
    skipped: int = 0  # up to date
    errors: list[str] = field(default_factory=list)  # students whose grading failed (a grader-fault finding)
    findings: Counter[str] = field(default_factory=Counter)  # finding kind -> submissions with it
    percents: list[float] = field(default_factory=list)  # of the submissions graded in this run
    wall_s: float = 0.0
    pool: str = ""
    interrupted: bool = False
    notes: list[str] = field(default_factory=list)
    retried: int = 0  # gradings done again because the machine was too busy for the first

    def __str__(self) -> str:
        lines = [
            f"graded {self.graded} of {self.submissions} submission(s) in {duration(self.wall_s)} with "
            f"{self.pool}"
            + (f" ({self.wall_s / self.graded:.1f} s each)" if self.graded else "")
            + (f"; {self.skipped} up to date, skipped (--force regrades them)" if self.skipped else "")
            + "."
        ]
        if self.interrupted:
            lines.append(
                f"interrupted: {self.submissions - self.graded - self.skipped} not graded; run the same "
                "command again to grade them."
            )
        if self.percents:
            lines.append(
                f"scores: mean {statistics.mean(self.percents):.0f}%, median "
                f"{statistics.median(self.percents):.0f}%, {sum(p >= 100 for p in self.percents)} full, "
                f"{sum(p == 0 for p in self.percents)} zero."
            )
        if self.findings:
            lines.append("findings: " + ", ".join(f"{kind} {n}" for kind, n in self.findings.most_common()) + ".")
        if self.retried:
            lines.append(
                f"retried {self.retried} grading(s) that the machine was too busy for (an item waited ten "
                "times its time limit for a CPU); such a grading is never scored."
            )
        if self.errors:
            lines.append(
                f"grader errors ({len(self.errors)}, graded again on the next run): " + ", ".join(self.errors) + "."
            )
        lines += self.notes
        return "\n".join(lines)


def duration(seconds: float) -> str:
    seconds = round(seconds)
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


class Progress:
    """A rich progress bar (counts, elapsed, ETA) on a terminal; elsewhere one line per submission with the same
    counts and ETA, which is what a log file wants."""

    def __init__(self, total: int, *, log: Callable[[str], object], show: bool | None):
        self.total, self.log, self.done = total, log, 0
        self.start = time.monotonic()
        self.bar = None
        if total:
            from rich.console import Console

            console = Console(stderr=True)
            if show if show is not None else console.is_terminal:
                from rich.progress import (
                    BarColumn,
                    MofNCompleteColumn,
                    SpinnerColumn,
                    TextColumn,
                    TimeElapsedColumn,
                    TimeRemainingColumn,
                )
                from rich.progress import Progress as Bar

                self.bar = Bar(
                    SpinnerColumn(),
                    TextColumn("grading"),
                    BarColumn(),
                    MofNCompleteColumn(),
                    TimeElapsedColumn(),
                    TextColumn("eta"),
                    TimeRemainingColumn(),
                    console=console,
                    redirect_stdout=False,
                    redirect_stderr=False,
                )
                self.task = self.bar.add_task("grading", total=total)

    def __enter__(self) -> Progress:
        if self.bar is not None:
            self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()

    def say(self, line: str) -> None:
        if self.bar is not None:
            self.bar.console.print(line, markup=False, highlight=False)
        else:
            self.log(line)

    def advance(self, line: str) -> None:
        self.done += 1
        if self.bar is not None:
            self.bar.advance(self.task)
            self.say(line)
            return
        elapsed = time.monotonic() - self.start
        left = self.total - self.done
        eta = f", eta {duration(elapsed / self.done * left)}" if left else ""
        self.log(f"[{self.done}/{self.total} {duration(elapsed)}{eta}] {line}")
