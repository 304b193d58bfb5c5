"""`make demo`: the main job on the bundled course, offline.

For each assignment: generate release/ and solutions/ from source/, build a small demo class in nbgrader's
submitted/ layout (the solution with its trained weights, the untouched release notebook, a partly wrong notebook
made from the catalogue of known mistakes, and a file that is not a notebook), grade the class, and write every
report.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import sys
from pathlib import Path

from .batch import grade_paths
from .collect import TIMESTAMP_FORMAT
from .config import load_course
from .errors import KitError
from .files import CoursePaths, atomic_write
from .generate import generate
from .mistakes import load_mistakes
from .reports import write_reports

STUDENTS = ("demo-ada", "demo-bob", "demo-cyd", "demo-dan")
SUBMITTED = {
    "demo-ada": dt.timedelta(days=-2),
    "demo-bob": dt.timedelta(hours=-3),
    "demo-cyd": dt.timedelta(hours=5),
    "demo-dan": dt.timedelta(days=-1),
}  # relative to the due date


def build_class(paths: CoursePaths, assignment: str, *, due: dt.datetime | None = None) -> list[Path]:
    solution = json.loads(paths.solution_notebook(assignment).read_text())
    release = paths.release_notebook(assignment).read_text()
    wrong = json.loads(json.dumps(solution))
    used: set[str] = set()
    for mistake in load_mistakes(paths.root, assignment):  # one mistake per answer cell, the first listed of each
        if mistake.grade_id in used:
            continue
        used.add(mistake.grade_id)
        for cell in wrong["cells"]:
            if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") == mistake.grade_id:
                cell["source"] = mistake.code
        if len(used) == 2:
            break
    contents = {
        "demo-ada": json.dumps(solution, indent=1),
        "demo-bob": release,
        "demo-cyd": json.dumps(wrong, indent=1),
        "demo-dan": '{"cells": [ this is not a notebook',
    }
    folders = []
    for student in STUDENTS:
        folder = paths.submission_dir(student, assignment)
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        atomic_write(folder / f"{assignment}.ipynb", contents[student])
        trained = paths.solutions_dir(assignment) / f"{assignment}.weights.h5"
        if student == "demo-ada" and trained.is_file():  # the solution's trained model, submitted beside it
            shutil.copyfile(trained, folder / trained.name)  # (the report flags it: it is the course's own)
        if due is not None:  # nbgrader's timestamp.txt, so the reports' late flag has something to show: cyd is late
            when = (due if due.tzinfo else due.replace(tzinfo=dt.UTC)) + SUBMITTED[student]
            atomic_write(folder / "timestamp.txt", when.strftime(TIMESTAMP_FORMAT) + "\n")
        folders.append(folder)
    return folders


def main() -> int:
    try:
        course = load_course()
        names = [a for a in course.assignments if course.source_notebook(a).is_file()]
        print(f"generating release/ and solutions/ for {', '.join(names)}")
        generate(course, names)
        for name in names:
            folders = build_class(course.paths, name, due=course.assignments[name].due)
            print(f"\ngrading the demo class of '{name}' ({len(folders)} submissions, 2 at a time)", flush=True)
            # A progress bar on a terminal, a line per submission elsewhere; the summary at the end. A second
            # `make demo` skips the submissions already graded with the same kit and course files.
            print(grade_paths(course, folders, assignment=name, workers=2))
        written = write_reports(course.root, assignments=names, due={n: a.due for n, a in course.assignments.items()})
        print("\nreports:")
        for path in written:
            print(f"  {path.relative_to(course.root) if path.is_relative_to(course.root) else path}")
        print("\nOpen reports/<assignment>/summary.html in a browser for the class summary.")
        return 0
    except KitError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
