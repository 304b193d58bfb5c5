"""The README's "## TAs" section, followed as written: `autograder collect` a Canvas download, `autograder grade`,
`autograder report`, with no `autograder generate` before; the gradebook then holds the scores and the written answer
waits for a TA in formgrader. A TA's grade (what formgrader stores) and a second report make the total final.

The slow test runs the three commands as a TA types them, grading for real; the fast one grades with a scripted
grader (nothing runs in a worker) between the real `collect` and `report` commands.
"""

from __future__ import annotations

import copy
import csv
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import RELEASE, SOLUTION, copy_course

from autograder.batch.jobs import file_sha256
from autograder.results import CheckResult, SubmissionResult

A = "autoencoder"
ANSWER = "bottleneck_answer"  # the assignment's written answer, graded by hand
# Canvas's "Download Submissions" names: lastfirst_userid_submissionid_<the student's file name>. Ada answered
# everything; Bob handed the release back untouched.
CANVAS = {"lovelaceada_101_9001_autoencoder.ipynb": SOLUTION, "babbagebob_102_9002_autoencoder-1.ipynb": RELEASE}


def kit(course: Path, *args: str) -> subprocess.CompletedProcess:
    """An `autograder` command run in the course directory, as the README has it. PATH is left as the test found it:
    the commands must find nbgrader's tools without an activated virtual environment."""
    run = subprocess.run(
        [sys.executable, "-m", "autograder.cli", *args],
        cwd=course,
        capture_output=True,
        text=True,
        timeout=900,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
        check=False,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return run


def canvas_zip(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, notebook in CANVAS.items():
            archive.writestr(zipfile.ZipInfo(name, date_time=(2026, 11, 20, 10, 0, 0)), notebook.read_bytes())
    return path


def gradebook(course: Path) -> dict[str, dict[str, tuple]]:
    """student -> grade cell -> (auto_score, manual_score, needs_manual_grade), as formgrader reads them."""
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", course_id="") as gb:
        return {
            sub.student.id: {
                g.name: (g.auto_score, g.manual_score, g.needs_manual_grade) for g in sub.notebooks[0].grades
            }
            for sub in gb.assignment_submissions(A)
        }


def class_rows(course: Path) -> dict[str, dict]:
    return {r["student"]: r for r in csv.DictReader((course / "reports" / A / "class.csv").open())}


def collect_and_check(course: Path, tmp_path: Path) -> None:
    said = kit(course, "collect", str(canvas_zip(tmp_path / "submissions.zip")), "--assignment", A).stdout
    assert "collected 2 submission(s)" in said
    assert sorted(p.name for p in (course / "submitted").iterdir()) == ["babbagebob", "lovelaceada"]
    assert not (course / "gradebook.db").exists()  # nobody ran `autograder generate` or nbgrader


def report_and_check(course: Path, points: dict[str, float]) -> None:
    """`autograder report` fills the gradebook by itself; the written answer waits for a TA; once a TA grades it
    (what formgrader's grade handler stores), the next report's total is final."""
    from nbgrader.api import Gradebook

    release_before = (course / "release" / A / f"{A}.ipynb").read_bytes()
    said = kit(course, "report")
    assert "No gradebook" not in said.stdout + said.stderr and "Gradebook skipped" not in said.stdout + said.stderr
    assert (course / "release" / A / f"{A}.ipynb").read_bytes() == release_before  # recording it left release/ be
    book = gradebook(course)
    assert book["lovelaceada"] == {**{gid: (p, None, False) for gid, p in points.items()}, ANSWER: (None, None, True)}
    assert book["babbagebob"] == {**{gid: (0.0, None, False) for gid in points}, ANSWER: (0.0, None, False)}
    summary = (course / "reports" / A / "summary.html").read_text()
    assert "2 students written to nbgrader's gradebook." in summary
    rows = class_rows(course)
    assert (rows["lovelaceada"][ANSWER], rows["lovelaceada"]["total"], rows["lovelaceada"]["status"]) == (
        "pending",
        "",
        f"pending: {ANSWER}",
    )
    assert (rows["babbagebob"]["total"], rows["babbagebob"]["status"]) == ("0", "final")

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", course_id="") as gb:  # the TA, in formgrader
        grade = gb.find_grade(ANSWER, A, A, "lovelaceada")
        grade.manual_score, grade.needs_manual_grade = 2.0, False
        gb.db.commit()
    kit(course, "report")
    row = class_rows(course)["lovelaceada"]
    full = sum(points.values())
    assert (row[ANSWER], row["total"], row["status"]) == ("2", f"{full + 2:g}", "final")


def test_the_ta_path_with_a_scripted_grader(tmp_path):
    from autograder.batch import grade_paths
    from autograder.config import load_course
    from autograder.grading import Grader

    (tmp_path / "course").mkdir()
    course = copy_course(tmp_path / "course", (A,), count=("retrain", "submitted"))  # every graded cell counts
    collect_and_check(course, tmp_path)
    real = Grader.create(load_course(course), A, profile="cpu")
    scripted = copy.copy(real)

    def grade(path: Path, *, student: str, weights=None) -> SubmissionResult:  # Ada's checks pass, Bob's fail
        full = student == "lovelaceada"
        checks = [
            CheckResult(
                f"{t.grade_id}: check",
                t.grade_id,
                "check",
                t.points if full else 0.0,
                t.points,
                full,
                "got (2, 2), expected (4, 4)",
            )
            for t in real.spec.tests
        ]
        return SubmissionResult(
            A,
            student,
            checks,
            [],
            real.spec.max_score,
            0.1,
            "test",
            file_sha256(Path(path)),
            "2026-11-26T12:00:00+00:00",
        )

    scripted.grade, scripted.prepare = grade, (lambda: None)
    summary = grade_paths(
        load_course(course),
        [course / "submitted"],
        assignment=A,
        graders={A: scripted},
        progress=False,
        log=lambda *_: None,
    )
    assert summary.graded == 2
    report_and_check(course, {t.grade_id: t.points for t in real.spec.tests})


@pytest.mark.slow
def test_the_ta_path_as_the_readme_has_it(roomy_course, tmp_path):
    """The three commands for real, on the course copy with the small training profile."""
    from autograder.notebook import load_spec

    course = tmp_path / "course"
    shutil.copytree(
        roomy_course.root,
        course,
        ignore=shutil.ignore_patterns("gradebook.db", "submitted", "autograded", "feedback", "reports"),
    )
    collect_and_check(course, tmp_path)
    said = kit(course, "grade", "submitted/", "--assignment", A, "--workers", "2", "--no-progress")
    assert "graded 2 of 2 submission(s)" in said.stdout
    spec = load_spec(course / "source" / A / f"{A}.ipynb", A)
    report_and_check(course, {t.grade_id: t.points for t in spec.tests})
