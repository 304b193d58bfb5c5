"""Grading a class: finding submissions, skipping current results, a failure inside the batch, a SIGKILLed run
resumed, and the class's CSV and gradebook from real gradings."""

from __future__ import annotations

import copy
import csv
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import RELEASE, SOLUTION, cell

from autograder.batch import grade_paths
from autograder.batch.jobs import file_sha256, find_tasks, graded_with, grader_failed, hidden_submissions, write_result
from autograder.notebook import load_spec
from autograder.results import GRADER_ERROR, SANDBOX_UNAVAILABLE, CheckResult, Finding, SubmissionResult

A = "autoencoder"


def comparable(result: dict) -> dict:
    """A result without what may differ between two gradings of the same notebook."""
    out = copy.deepcopy(result)
    out.pop("execution_time", None)
    out["extra_data"].pop("timestamp", None)
    out["extra_data"].get("environment", {}).pop("load_average", None)
    out["extra_data"]["graded_with"].pop("kit", None)  # the same code, possibly hashed from another copy
    return out


def with_code(nb: dict, grade_id: str, code: str) -> dict:
    cell(nb, grade_id)["source"] = code
    return nb


def make_class(root: Path, contents: dict[str, str | bytes]) -> Path:
    """nbgrader's submitted/<student>/autoencoder/autoencoder.ipynb under `root`."""
    for student, text in contents.items():
        folder = root / "submitted" / student / A
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{A}.ipynb"
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return root / "submitted"


def results_of(out: Path) -> dict[str, dict]:
    return {p.parent.parent.name: json.loads(p.read_text()) for p in sorted(out.glob(f"*/{A}/results.json"))}


# ---- with a scripted grader: the batch's own logic, in milliseconds --------------------------------------------


class Scripted:
    """Stands in for Grader.grade: full marks for "ok", a finding for "meh", an exception for "boom"."""

    def __init__(self, grader):
        self.grader = copy.copy(grader)
        self.grader.grade = self.grade
        self.grader.prepare = lambda: None
        self.calls: list[str] = []

    def grade(self, path: Path, *, student: str, weights=None) -> SubmissionResult:
        self.calls.append(student)
        text = Path(path).read_text()
        if "boom" in text:
            raise RuntimeError("the grader tripped")
        check = CheckResult("q: c", "q", "c", 14.0 if "ok" in text else 7.0, 14.0, "ok" in text, "msg")
        return SubmissionResult(A, student, [check], [], 14.0, 0.1, "0", file_sha256(Path(path)), "2026-01-01")


@pytest.fixture
def scripted(grader):
    return Scripted(grader)


def run(course, paths, scripted, **kw):
    kw.setdefault("log", lambda *_: None)
    return grade_paths(course, paths, assignment=A, graders={A: scripted.grader}, progress=False, **kw)


def test_an_exception_in_the_middle_is_that_submissions_result(tiny_course, scripted, tmp_path):
    subs = make_class(tmp_path, {"ada": "ok", "bob": "boom", "cyd": "meh"})
    out = tmp_path / "out"
    summary = run(tiny_course, [subs], scripted, out=out, workers=2)
    got = results_of(out)
    assert sorted(got) == ["ada", "bob", "cyd"] and summary.graded == 3
    assert got["ada"]["score"] == 14 and got["cyd"]["score"] == 7
    bob = got["bob"]
    assert bob["score"] == 0 and bob["max_score"] == 14 and bob["tests"] == []
    [finding] = bob["extra_data"]["findings"]
    assert finding["kind"] == GRADER_ERROR and "RuntimeError: the grader tripped" in finding["message"]
    assert bob["extra_data"]["notebook_sha256"] == file_sha256(subs / "bob" / A / f"{A}.ipynb")
    assert (out / "bob" / A / "feedback.html").is_file()
    assert summary.errors == ["bob"] and "grader errors (1, graded again on the next run): bob" in str(summary)
    # The next run grades bob alone: a grader error is never a final result.
    scripted.calls.clear()
    (subs / "bob" / A / f"{A}.ipynb").write_text("ok, fixed")  # (the grader would be fixed; here the notebook is)
    assert run(tiny_course, [subs], scripted, out=out).graded == 1 and scripted.calls == ["bob"]
    assert results_of(out)["bob"]["score"] == 14


def test_rerun_skips_current_results_and_regrades_what_changed(tiny_course, scripted, tmp_path):
    subs = make_class(tmp_path, {"ada": "ok", "bob": "meh", "cyd": "ok"})
    out = tmp_path / "out"
    assert run(tiny_course, [subs], scripted, out=out).graded == 3
    first = {s: (out / s / A / "results.json").read_bytes() for s in ("ada", "bob", "cyd")}

    scripted.calls.clear()
    summary = run(tiny_course, [subs], scripted, out=out)
    assert (summary.graded, summary.skipped, scripted.calls) == (0, 3, [])
    assert {s: (out / s / A / "results.json").read_bytes() for s in first} == first  # not even rewritten

    (subs / "bob" / A / f"{A}.ipynb").write_text("ok now")  # a resubmission
    assert run(tiny_course, [subs], scripted, out=out).graded == 1 and scripted.calls == ["bob"]

    # New thresholds (say, a recalibration): every result is stale, and the log says why.
    scripted.calls.clear()
    scripted.grader = dataclasses.replace(scripted.grader, thresholds={"metrics": {"test_mse": {"threshold": 1}}})
    scripted.grader.grade, scripted.grader.prepare = scripted.grade, lambda: None
    lines = []
    assert run(tiny_course, [subs], scripted, out=out, log=lines.append).graded == 3
    assert "grading 3: 3 settings changed." in lines

    scripted.calls.clear()
    assert run(tiny_course, [subs], scripted, out=out, force=True).graded == 3 and len(scripted.calls) == 3


def test_a_sandbox_that_could_not_start_is_not_a_final_result(tiny_course, scripted, tmp_path):
    subs = make_class(tmp_path, {"ada": "ok"})
    out = tmp_path / "out"
    run(tiny_course, [subs], scripted, out=out)
    path = out / "ada" / A / "results.json"
    result = json.loads(path.read_text())
    result["extra_data"]["findings"] = [
        {
            "kind": SANDBOX_UNAVAILABLE,
            "grade_id": None,
            "message": (
                "The worker could not be started (cgroup gone); this is not a problem with your code, please tell the "
                "course staff."
            ),
        }
    ]
    path.write_text(json.dumps(result))
    scripted.calls.clear()
    assert run(tiny_course, [subs], scripted, out=out).graded == 1 and scripted.calls == ["ada"]


def test_a_grader_fault_is_told_by_the_finding_kind_not_its_message():
    """`sandbox_unavailable` and `grader_error` findings (as written, or as read back from a results.json) make a
    result the grader's failure; a sentence in another kind's message does not."""
    sandbox = Finding(SANDBOX_UNAVAILABLE, "any words at all")
    assert sandbox.grader_fault and grader_failed([sandbox]) and grader_failed([Finding.from_dict(sandbox.to_dict())])
    assert grader_failed([Finding(GRADER_ERROR, "")])
    assert grader_failed([Finding("timeout", "x"), Finding(SANDBOX_UNAVAILABLE, "")])
    assert not grader_failed([Finding("worker_stopped", "the grader could not set up its sandbox")])
    assert not grader_failed(
        [Finding("answer_cell_error", "sandbox_unavailable"), Finding("answer_cell_error", "grader_error")]
    )
    assert not grader_failed([])


def test_results_that_cannot_be_written_stop_the_batch_with_a_sentence(tiny_course, scripted, tmp_path):
    from autograder.errors import KitError

    subs = make_class(tmp_path, {"ada": "ok", "bob": "ok"})
    (tmp_path / "out").write_text("a file where the results folder should be")
    with pytest.raises(KitError, match=r"cannot write the results of ada to .*The 0 written so far are kept"):
        run(tiny_course, [subs], scripted, out=tmp_path / "out", workers=1)


def test_what_makes_a_result_stale(grader, tiny_course):
    base = graded_with(grader)
    assert graded_with(grader) == base and set(base) == {"kit", "source", "release", "reference", "settings"}
    spec = dataclasses.replace(grader.spec, sha256="0" * 64)
    assert graded_with(dataclasses.replace(grader, spec=spec))["source"] != base["source"]
    release = copy.deepcopy(grader.release)
    release["cells"][0]["source"] = "changed"
    assert graded_with(dataclasses.replace(grader, release=release))["release"] != base["release"]
    limits = dataclasses.replace(grader.limits, wall_s=1)
    assert graded_with(dataclasses.replace(grader, limits=limits))["settings"] != base["settings"]
    assert graded_with(dataclasses.replace(grader, mistakes=grader.mistakes[1:]))["reference"] != base["reference"]


def test_find_tasks_one_notebook_per_student_and_assignment(tiny_course, tmp_path):
    subs = make_class(tmp_path, {"ada": "x", "bob": "x"})
    (subs / "ada" / A / "Untitled.ipynb").write_text("scratch")
    (subs / "bob" / A / f"{A}.ipynb").unlink()
    (subs / "bob" / A / "old.ipynb").write_text("1")
    (subs / "bob" / A / "new.ipynb").write_text("2")
    os.utime(subs / "bob" / A / "old.ipynb", (1, 1))
    (subs / "bob" / "vae").mkdir()
    (subs / "bob" / "vae" / "vae.ipynb").write_text("other assignment")
    (subs / "ada" / A / "timestamp.txt").write_text("2026-11-20 10:00:00.000000 UTC\n")
    notes = []
    tasks = find_tasks(tiny_course, [subs], assignment=A, out=tmp_path / "out", notes=notes)
    assert [(t.student, t.notebook.name) for t in tasks] == [("ada", f"{A}.ipynb"), ("bob", "new.ipynb")]
    assert tasks[0].timestamp == subs / "ada" / A / "timestamp.txt" and tasks[1].timestamp is None
    assert len(notes) == 2 and "ada: graded autoencoder.ipynb, not" in notes[0]
    # Results carry nbgrader's timestamp beside them, for the late flag.
    small = SubmissionResult.from_dict({"score": 1, "max_score": 2, "tests": [], "extra_data": {"findings": []}})
    write_result(tasks[0], small)
    assert (tmp_path / "out" / "ada" / A / "timestamp.txt").read_text().startswith("2026-11-20 10:00")
    assert sorted(p.name for p in (tmp_path / "out" / "ada" / A).iterdir()) == [
        "feedback.html",
        "results.json",
        "timestamp.txt",
    ]  # no temporary files left
    # A timestamp.txt that is a link (to an earlier time, or to a file of the grader's) is not copied.
    link = subs / "bob" / A / "timestamp.txt"
    link.symlink_to(subs / "ada" / A / "timestamp.txt")
    write_result(dataclasses.replace(tasks[1], timestamp=link), small)
    assert sorted(p.name for p in tasks[1].out_dir.iterdir()) == ["feedback.html", "results.json"]


def test_hidden_folders_are_few(tiny_course, tmp_path):
    course = dataclasses.replace(tiny_course, root=tmp_path / "course")
    inside = make_class(course.root, {"ada": "x", "bob": "x"})
    outside = tmp_path / "loose"
    (outside / "deeper").mkdir(parents=True)
    for name in ("p", "q", "deeper/r"):
        (outside / f"{name}.ipynb").write_text("x")
    tasks = find_tasks(course, [inside, outside], assignment=A, out=tmp_path / "o")
    assert len(tasks) == 5
    assert hidden_submissions(course, tasks) == [outside]  # submitted/ is hidden with the course's private folders


def test_progress_lines_have_counts_and_eta(tiny_course, scripted, tmp_path):
    subs = make_class(tmp_path, {"ada": "ok", "bob": "meh"})
    lines = []
    summary = run(tiny_course, [subs], scripted, out=tmp_path / "out", workers=1, log=lines.append)
    progress = [line for line in lines if line.startswith("[")]
    assert progress[0].startswith("[1/2 ") and ", eta " in progress[0]
    assert progress[0].endswith("ada autoencoder: 14/14")
    assert progress[1].startswith("[2/2 ") and "eta" not in progress[1]
    text = str(summary)
    assert "graded 2 of 2 submission(s)" in text and "scores: mean 75%, median 75%, 1 full, 0 zero." in text


# ---- real gradings ----------------------------------------------------------------------------------------------

CLASS = {"ada": SOLUTION.read_bytes(), "bob": b'{"cells": [ not a notebook', "cyd": RELEASE.read_bytes()}
CLASS["dan"] = json.dumps(with_code(json.loads(SOLUTION.read_text()), "decoder_block", "def define_decoder_block(x,"))


@pytest.fixture(scope="module")
def graded_class(roomy_course, tmp_path_factory):
    """The class graded once, uninterrupted, 2 workers: one thread trains ada's model while the other grades the
    three cheap ones; the broken submission (bob) is in the middle."""
    root = tmp_path_factory.mktemp("class")
    subs = make_class(root, CLASS)
    out = root / "out"
    summary = grade_paths(roomy_course, [subs], assignment=A, out=out, workers=2, log=lambda *_: None, progress=False)
    return subs, out, summary


def test_a_real_class_with_a_broken_submission_in_the_middle(graded_class):
    _, out, summary = graded_class
    got = results_of(out)
    assert (summary.graded, summary.errors) == (4, [])
    assert got["ada"]["score"] == got["ada"]["max_score"] == 14
    assert [f["kind"] for f in got["bob"]["extra_data"]["findings"]] == ["not_json"] and got["bob"]["score"] == 0
    assert got["cyd"]["score"] == 0 and len(got["cyd"]["tests"]) == len(got["ada"]["tests"])
    assert "answer_cell_error" in [f["kind"] for f in got["dan"]["extra_data"]["findings"]]
    assert 0 < got["dan"]["score"] < 14  # the encoder's checks pass
    assert "scores: mean " in str(summary) and "findings: " in str(summary)


def test_sigkill_mid_batch_then_rerun_gives_the_uninterrupted_results(graded_class, roomy_course, tmp_path):
    """A real `autograder grade`, killed with SIGKILL (with its workers) as soon as one result is written, then run
    again: it keeps what was written, grades the rest, and ends with the uninterrupted run's results."""
    subs, reference, _ = graded_class
    cheap = make_class(tmp_path / "class", {s: CLASS[s] for s in ("bob", "cyd", "dan")})  # no training: quick
    # A snapshot of the kit, so that an edit to the working tree between the two runs cannot change the kit's hash.
    shutil.copytree(
        Path(__import__("autograder").__file__).parent,
        tmp_path / "kit" / "autograder",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    (tmp_path / "tmp").mkdir()  # the killed run's scratch folders stay in this test's folder
    env = dict(os.environ, PYTHONPATH=str(tmp_path / "kit"), TMPDIR=str(tmp_path / "tmp"))
    out = tmp_path / "out"
    cmd = [
        sys.executable,
        "-m",
        "autograder.cli",
        "grade",
        str(cheap),
        "-a",
        A,
        "--workers",
        "1",
        "--out",
        str(out),
        "--course",
        str(roomy_course.root),
        "--no-progress",
    ]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True, cwd=tmp_path, env=env
    )
    deadline = time.monotonic() + 300
    while not list(out.glob(f"*/{A}/results.json")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the grader and everything it started, at once
    proc.wait()
    before = {p: p.read_bytes() for p in out.glob(f"*/{A}/results.json")}
    assert 1 <= len(before) < 3, f"{len(before)} results when killed"

    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=tmp_path, env=env)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{len(before)} of 3 submission(s) already graded with this kit and course: skipped." in rerun.stdout
    assert {p: p.read_bytes() for p in before} == before  # what survived the kill is kept as it was
    expected = {s: comparable(r) for s, r in results_of(reference).items() if s != "ada"}
    assert {s: comparable(r) for s, r in results_of(out).items()} == expected
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]


def test_class_csv_and_gradebook_of_the_graded_class(graded_class, roomy_course, tmp_path, monkeypatch):
    from test_reports import grades, new_gradebook

    from autograder.grading import plans
    from autograder.reports import write_reports

    _, out, _ = graded_class
    course = tmp_path / "course"
    shutil.copytree(out, course / "autograded")
    (course / "submitted" / "bob" / A).mkdir(parents=True)
    (course / "submitted" / "bob" / A / "timestamp.txt").write_text("2026-12-05 10:00:00.000000 UTC\n")
    (course / "submitted" / "ada" / A).mkdir(parents=True)
    (course / "submitted" / "ada" / A / "timestamp.txt").write_text("2026-12-01 10:00:00.000000 UTC\n")
    counted = plans.counted(load_spec(roomy_course.source_notebook(A), A), roomy_course.assignment(A).count)
    spec_cells = [(c.grade_id, c.points) for c in counted.tests]
    with new_gradebook(course / "gradebook.db", monkeypatch) as gb:
        gb.add_assignment(A)
        gb.add_notebook(A, A)
        for name, points in spec_cells:
            gb.add_grade_cell(name, A, A, max_score=points, cell_type="code")
        gb.add_grade_cell("bottleneck_answer", A, A, max_score=3, cell_type="markdown")
        gb.add_solution_cell("bottleneck_answer", A, A)
    write_reports(course, due={A: roomy_course.assignments[A].due})

    rows = {r["student"]: r for r in csv.DictReader((course / "reports" / A / "class.csv").open())}
    assert sorted(rows) == ["ada", "bob", "cyd", "dan"]
    # ada answered the written question, which waits for a TA: no final total yet.
    assert (
        rows["ada"]["autograded"],
        rows["ada"]["status"],
        rows["ada"]["total"],
        rows["ada"]["late"],
        rows["ada"]["errors"],
    ) == ("14", "pending: bottleneck_answer", "", "no", "")
    assert (rows["bob"]["total"], rows["bob"]["status"], rows["bob"]["late"], rows["bob"]["errors"]) == (
        "0",
        "final",
        "yes",
        "not_json",
    )
    assert (rows["cyd"]["total"], rows["cyd"]["late"]) == ("0", "")  # no timestamp: lateness unknown
    assert all(rows["ada"][gid] == f"{points:g}" for gid, points in spec_cells)
    canvas = (course / "reports" / A / "canvas.csv").read_text().splitlines()
    assert canvas[1] == "Points Possible,,,,,17" and "ada,,,ada,," in canvas
    book = grades(course / "gradebook.db")
    assert {s: sum(g[3] for g in cells.values()) for s, cells in book.items()} == {
        "ada": 14,
        "bob": 0,
        "cyd": 0,
        "dan": float(rows["dan"]["autograded"]),
    }
    assert book["ada"][spec_cells[0][0]][0] == spec_cells[0][1]


def test_a_grading_the_machine_was_too_busy_for_is_retried_and_counted(tmp_path):
    """A MACHINE_BUSY result is thrown away and the submission graded again after each pause; the retries are
    recorded in the result, and the last grading stands."""
    from autograder.batch.jobs import grade_safely
    from autograder.results import MACHINE_BUSY

    class Busy:
        assignment, calls = A, 0

        def grade(self, path, *, student, weights=None):
            self.calls += 1
            findings = [Finding(MACHINE_BUSY, "too busy")] if self.calls < 3 else []
            return SubmissionResult(A, student, [], findings, 14.0, 1.0, "test")

    grader = Busy()
    result = grade_safely(grader, tmp_path / "x.ipynb", student="ada", backoff=(0.0, 0.0))
    assert grader.calls == 3 and result.retries == 2 and result.findings == []
    assert SubmissionResult.from_dict(result.to_dict()).retries == 2
    always = Busy()
    always.calls = -10  # busy every time: the last grading stands, as the grader fault it is
    last = grade_safely(always, tmp_path / "x.ipynb", student="ada", backoff=(0.0, 0.0))
    assert always.calls == -7 and last.retries == 2 and [f.kind for f in last.findings] == [MACHINE_BUSY]
