"""Grading many notebooks: find the submissions, grade each, write results.json and feedback.html per submission.

A failing submission never stops the batch: anything that goes wrong inside one becomes that submission's result.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from .config import Course
from .errors import KitError
from .feedback import render_feedback
from .grade import Grader


@dataclass(frozen=True)
class Task:
    notebook: Path
    student: str
    assignment: str
    out_dir: Path


def find_tasks(course: Course, paths: list[Path], *, assignment: str | None, out: Path | None) -> list[Task]:
    found: list[tuple[Path, str, str | None]] = []
    for path in paths:
        path = path.resolve()
        if path.is_file():
            found.append((path, *_who(path)))
        else:
            notebooks = sorted(path.rglob("*.ipynb"))
            notebooks = [nb for nb in notebooks if ".ipynb_checkpoints" not in nb.parts]
            if not notebooks:
                raise KitError(f"no notebooks under {path}.")
            found += [(nb, *_who(nb)) for nb in notebooks]
    tasks = []
    single = len(found) == 1 and out is not None and paths[0].is_file()
    for nb, student, layout_assignment in found:
        name = assignment or layout_assignment
        if name is None:
            if len(course.assignments) != 1:
                raise KitError(f"cannot tell which assignment {nb.name} is: pass --assignment "
                               f"({', '.join(course.assignments)}).")
            name = next(iter(course.assignments))
        if assignment and layout_assignment and layout_assignment != assignment:
            continue  # another assignment's folder in a submitted/ tree
        base = out or course.root / "autograded"
        tasks.append(Task(nb, student, name, base if single else base / student / name))
    return tasks


def _who(notebook: Path) -> tuple[str, str | None]:
    """(student, assignment) from nbgrader's submitted/<student>/<assignment>/<file>.ipynb, else from the name."""
    parts = notebook.parts
    if len(parts) >= 4 and parts[-4] == "submitted":
        return parts[-3], parts[-2]
    return notebook.stem, None


def write_result(task: Task, result: dict) -> None:
    """Atomic writes: a reader (or a rerun after a crash) sees a whole results.json or none."""
    task.out_dir.mkdir(parents=True, exist_ok=True)
    for name, text in (("feedback.html", render_feedback(result)),
                       ("results.json", json.dumps(result, indent=1, sort_keys=True) + "\n")):
        tmp = task.out_dir / f".{name}.tmp"
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, task.out_dir / name)


def grade_paths(course: Course, paths: list[Path], *, assignment: str | None = None, out: Path | None = None,
                workers: int = 1, log=print) -> str:
    tasks = find_tasks(course, paths, assignment=assignment, out=out)
    graders: dict[str, Grader] = {}
    scores = []
    for task in tasks:
        if task.assignment not in graders:
            graders[task.assignment] = Grader.create(course, task.assignment,
                                                     hide_extra=[t.notebook.parent for t in tasks])
        result = graders[task.assignment].grade(task.notebook, student=task.student).to_dict()
        write_result(task, result)
        scores.append(result["score"] / result["max_score"] if result["max_score"] else 0.0)
        log(f"{task.student} {task.assignment}: {result['score']:g}/{result['max_score']:g}"
            + (f" ({len(result['extra_data']['findings'])} findings)" if result["extra_data"]["findings"] else ""))
    mean = sum(scores) / len(scores) if scores else 0.0
    return f"graded {len(tasks)} submission(s); mean {mean:.0%}."
