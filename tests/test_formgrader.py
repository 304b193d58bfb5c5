"""nbgrader's formgrader on the graded notebooks the kit writes: a running formgrader (on 127.0.0.1) opens a graded
submission of each assignment, a manual score entered through its own API reaches `autograder report`'s totals, and
pending written answers are reported as pending.

The class is graded by the real batch (`grade_paths`: graded notebooks, results.json) with graders whose `grade`
is scripted, so nothing trains; the course's gradebook comes from `nbgrader generate_assignment`, as an instructor's.
"""

from __future__ import annotations

import copy
import csv
import html
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from conftest import ROOT, cell, copy_course

from autograder.batch import grade_paths
from autograder.batch.jobs import file_sha256
from autograder.config import load_course
from autograder.grading import Grader
from autograder.notebook import load_spec
from autograder.reports import write_reports
from autograder.results import CheckResult, Finding, SubmissionResult

ASSIGNMENTS = tuple(load_course(ROOT).assignments)  # every assignment of the course, as it grows
ANSWER = {a: load_spec(load_course(ROOT).paths.source_notebook(a), a).manual[0].grade_id for a in ASSIGNMENTS}
TOKEN = "kit-formgrader-test"
WRITTEN = "A larger code keeps more detail; a small one forces a summary of what varies most."
HOSTILE = WRITTEN + ' <script>document.title="pwned"</script><img src=x onerror="alert(1)"> **bold**'


def scripted(grader: Grader) -> Grader:
    """The grader with a scripted `grade`: ada's checks all pass, the others' all fail, cyd gets a finding."""
    fake = copy.copy(grader)

    def grade(path: Path, *, student: str, weights=None) -> SubmissionResult:
        full = student == "ada"
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
            for t in grader.spec.tests
        ]
        findings = (
            [Finding("locked_cell_edited", "Locked cell 'setup' was edited; the grader ignored the edit.", "setup")]
            if student == "cyd"
            else []
        )
        return SubmissionResult(
            grader.assignment,
            student,
            checks,
            findings,
            grader.spec.max_score,
            0.1,
            "test",
            file_sha256(Path(path)),
            "2026-11-26T12:00:00+00:00",
        )

    fake.grade, fake.prepare = grade, (lambda: None)
    return fake


def submissions(root: Path) -> None:
    """Per assignment: ada submits the solutions (a model answer), bob the release untouched (no answer); for the
    autoencoder, cyd a tampered notebook: an edited setup cell, a deleted test cell, a raw cell and HTML in the
    written answer."""
    for a in ASSIGNMENTS:
        for student, folder in (("ada", "solutions"), ("bob", "release")):
            dest = root / "submitted" / student / a
            dest.mkdir(parents=True)
            shutil.copy(ROOT / folder / a / f"{a}.ipynb", dest / f"{a}.ipynb")
            (dest / "timestamp.txt").write_text("2026-11-20 18:03:12.512345 UTC")
    nb = json.loads((ROOT / "solutions" / "autoencoder" / "autoencoder.ipynb").read_text())
    cell(nb, "setup")["source"] = "print('edited')\n"
    cell(nb, ANSWER["autoencoder"])["source"] = HOSTILE
    nb["cells"] = [
        c for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("grade_id") != "decoder_block_shapes"
    ]
    nb["cells"].append({"cell_type": "raw", "id": "raw-1", "metadata": {}, "source": "<b onmouseover=alert(2)>x</b>"})
    dest = root / "submitted" / "cyd" / "autoencoder"
    dest.mkdir(parents=True)
    (dest / "autoencoder.ipynb").write_text(json.dumps(nb))


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Path:
    """A course whose gradebook nbgrader made, graded once by the batch and reported once."""
    root = tmp_path_factory.mktemp("formgrader")
    copy_course(root, ASSIGNMENTS)
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    for a in ASSIGNMENTS:  # the instructor's step that fills gradebook.db with the assignment's cells
        run = subprocess.run(
            [sys.executable, "-m", "nbgrader", "generate_assignment", a, "--force", "--log-level=WARN"],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert run.returncode == 0, run.stderr[-2000:]
    submissions(root)
    kit = load_course(root)
    graders = {a: scripted(Grader.create(kit, a, profile="cpu")) for a in ASSIGNMENTS}
    for a in ASSIGNMENTS:
        summary = grade_paths(
            kit, [root / "submitted"], assignment=a, graders={a: graders[a]}, progress=False, log=lambda *_: None
        )
        assert summary.graded == (3 if a == "autoencoder" else 2)
    write_reports(root)
    return root


@pytest.fixture(scope="module")
def formgrader(course):
    """nbgrader's formgrader (a Jupyter server with nbgrader's extension) on 127.0.0.1, serving the course."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = dict(
        os.environ,
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        JUPYTER_CONFIG_DIR=str(course / ".jupyter"),
        JUPYTER_RUNTIME_DIR=str(course / ".jupyter-runtime"),
    )
    log = (course / "formgrader.log").open("w")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyter_server",
            "--no-browser",
            "--allow-root",
            "--ip=127.0.0.1",
            f"--port={port}",
            f"--ServerApp.token={TOKEN}",
            f"--ServerApp.root_dir={course}",
            "--ServerApp.port_retries=0",
        ],
        cwd=course,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                get(base, "/api/status")
                break
            except (urllib.error.URLError, ConnectionError):
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"formgrader did not start: {(course / 'formgrader.log').read_text()[-2000:]}")
                time.sleep(0.5)
        yield base
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def request(base: str, path: str, data: dict | None = None, method: str = "PUT") -> tuple[int, str]:
    req = urllib.request.Request(
        base + path,
        method="GET" if data is None else method,
        data=None if data is None else json.dumps(data).encode(),
        headers={"Authorization": f"token {TOKEN}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=60) as response:
        return response.status, response.read().decode()


def get(base: str, path: str):
    status, body = request(base, path)
    assert status == 200, (path, status)
    return json.loads(body) if path.startswith(("/api", "/formgrader/api")) else body


def submission_ids(base: str, assignment: str) -> dict[str, dict]:
    return {s["student"]: s for s in get(base, f"/formgrader/api/submitted_notebooks/{assignment}/{assignment}")}


def class_rows(course: Path, assignment: str) -> dict[str, dict]:
    return {r["student"]: r for r in csv.DictReader((course / "reports" / assignment / "class.csv").open())}


# ---- formgrader opens the graded notebooks -------------------------------------------------------------------------


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_formgrader_opens_a_graded_submission_of_each_assignment(course, formgrader, assignment):
    from autograder.config import load_course
    from autograder.grading import plans
    from autograder.notebook import load_spec

    counts = load_course(course).assignment(assignment).count  # a cell of a check that does not count is not graded
    spec = plans.counted(load_spec(course / "source" / assignment / f"{assignment}.ipynb", assignment), counts)
    listed = submission_ids(formgrader, assignment)
    assert {"ada", "bob"} <= set(listed)
    for student, sub in listed.items():
        page = get(formgrader, f"/formgrader/submissions/{sub['id']}/")
        assert "Submission notebook file not found" not in page and "formgrade_404" not in page
        # every grade cell of the source has its score box (formgrader finds cells by their grade_id)
        for gid in [c.grade_id for c in spec.tests] + [c.grade_id for c in spec.manual]:
            assert f'id="{gid}"' in page, (student, gid)
        assert "Autograder:" in page  # the kit's verdicts, shown with each test cell
        grades = {g["name"]: g for g in get(formgrader, f"/formgrader/api/grades?submission_id={sub['id']}")}
        expected = {t.grade_id: (t.points if student == "ada" else 0.0) for t in spec.tests}
        assert {gid: grades[gid]["auto_score"] for gid in expected} == expected
        assert grades[ANSWER[assignment]]["max_score"] == spec.manual[0].points
    ada = get(formgrader, f"/formgrader/submissions/{listed['ada']['id']}/")
    assert spec.manual[0].code.split("\n")[1][:40] in ada  # the model answer, as ada wrote it
    assert "YOUR ANSWER HERE" in get(formgrader, f"/formgrader/submissions/{listed['bob']['id']}/")


def test_formgrader_shows_the_tampered_notebook_as_graded_and_harmless(course, formgrader):
    cyd = submission_ids(formgrader, "autoencoder")["cyd"]
    page = get(formgrader, f"/formgrader/submissions/{cyd['id']}/")
    assert 'id="decoder_block_shapes"' in page  # the deleted test cell is back, as the grader used it
    assert "print(&#39;edited&#39;)" not in page and "print('edited')" not in page  # the setup cell as released
    assert "was edited; the grader ignored the edit." in page  # the kit's findings, on top
    # The student's HTML reaches the TA's browser as text, never as markup.
    assert "<script>document.title" not in page and "&lt;script&gt;document.title" in page
    assert not re.search(r"<[a-z][^<>]*\son(error|mouseover)=", page)  # no element carries the handlers
    assert "&lt;b onmouseover=alert(2)&gt;" in page  # the raw cell, as text
    assert "<strong>bold</strong>" in page  # markdown itself still renders
    graded = json.loads((course / "autograded" / "cyd" / "autoencoder" / "autoencoder.ipynb").read_text())
    assert [c["cell_type"] for c in graded["cells"]][-1] == "markdown"  # the raw cell, now shown as text


# ---- manual grades and the report ----------------------------------------------------------------------------------


def test_pending_written_answers_are_reported_as_pending(course, formgrader):
    listed = submission_ids(formgrader, "vae")
    assert listed["ada"]["needs_manual_grade"] is True  # answered: formgrader asks a TA
    assert listed["bob"]["needs_manual_grade"] is False  # left as released: 0, as nbgrader decides
    rows = class_rows(course, "vae")
    assert (rows["ada"]["beta_answer"], rows["ada"]["total"], rows["ada"]["status"]) == (
        "pending",
        "",
        "pending: beta_answer",
    )
    assert (rows["bob"]["beta_answer"], rows["bob"]["total"], rows["bob"]["status"]) == ("0", "0", "final")
    assert (course / "reports" / "vae" / "moodle.csv").read_text() == "Username,vae\nbob,0\n"
    assert "ada,,,ada,," in (course / "reports" / "vae" / "canvas.csv").read_text().splitlines()


def test_a_manual_score_entered_in_formgrader_reaches_the_report(course, formgrader):
    gid = ANSWER["cvae"]
    ada = submission_ids(formgrader, "cvae")["ada"]
    assert class_rows(course, "cvae")["ada"]["status"] == f"pending: {gid}"
    grades = {g["name"]: g for g in get(formgrader, f"/formgrader/api/grades?submission_id={ada['id']}")}
    assert grades[gid]["needs_manual_grade"] is True and grades[gid]["auto_score"] is None
    # What the TA's "2.5 + 0.5 extra credit" in formgrader sends: nbgrader's own grade handler stores it.
    status, body = request(
        formgrader, f"/formgrader/api/grade/{grades[gid]['id']}", {"manual_score": 2.5, "extra_credit": 0.5}
    )
    assert status == 200 and json.loads(body)["needs_manual_grade"] is False
    # And a TA's override of an autograded cell: formgrader's total counts it, so does the report.
    test_cell = next(g for name, g in grades.items() if name != gid)
    request(formgrader, f"/formgrader/api/grade/{test_cell['id']}", {"manual_score": 0.0, "extra_credit": None})
    write_reports(course)
    row = class_rows(course, "cvae")["ada"]
    max_auto = float(row["autograded"])
    expected = max_auto - test_cell["auto_score"] + 3.0
    assert (row[gid], row["manual"], row["status"]) == ("3", "3", "final")
    assert float(row["total"]) == pytest.approx(expected) and row["max_score"] == f"{max_auto + 3:g}"
    assert f"ada,{expected:g}" in (course / "reports" / "cvae" / "moodle.csv").read_text().splitlines()
    # formgrader's own total for the submission agrees with the report's
    assert submission_ids(formgrader, "cvae")["ada"]["score"] == pytest.approx(expected)
    # Reporting again keeps the TA's grades and asks nothing again.
    write_reports(course)
    again = {g["name"]: g for g in get(formgrader, f"/formgrader/api/grades?submission_id={ada['id']}")}
    assert again[gid]["manual_score"] == 2.5 and again[gid]["needs_manual_grade"] is False
    assert class_rows(course, "cvae")["ada"]["total"] == row["total"]


# ---- formgrader's other buttons, and nbgrader's own commands, on a course the kit grades ---------------------------


def nbgrader(course: Path, *args: str) -> subprocess.CompletedProcess:
    """An nbgrader command in the course, as a TA runs it: the course's nbgrader_config.py applies."""
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    return subprocess.run(
        [sys.executable, "-m", "nbgrader", *args],
        cwd=course,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def post(base: str, path: str) -> dict:
    status, body = request(base, path, {}, method="POST")
    assert status == 200, (path, status)
    return json.loads(body)


def check_lines(assignment: str, *, hidden: bool) -> list[str]:
    """The source's test cell lines between the HIDDEN TESTS markers (the hidden checks and their inputs), or the
    public run_check lines outside them."""
    from autograder.notebook import HIDDEN_BEGIN, HIDDEN_END, load_spec

    lines: list[str] = []
    for test in load_spec(ROOT / "source" / assignment / f"{assignment}.ipynb", assignment).tests:
        inside = False
        for line in test.code.splitlines():
            if line.strip() in (HIDDEN_BEGIN, HIDDEN_END):
                inside = line.strip() == HIDDEN_BEGIN
            elif inside == hidden and line.strip().startswith("run_check("):
                lines.append(line.strip())
    assert lines, assignment  # every assignment has both kinds, so the tests below look at something
    return lines


def hidden_lines(assignment: str) -> list[str]:
    return check_lines(assignment, hidden=True)


def shown_text(page: str) -> str:
    """What a browser shows of an HTML page: without tags (syntax highlighting splits code into spans), unescaped."""
    return html.unescape(re.sub(r"<[^>]*>", "", page))


def files_of(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_formgrader_shows_no_hidden_test_of_a_graded_submission(course, formgrader, assignment):
    from autograder.graded_notebook import HIDDEN_PLACEHOLDER

    ada = submission_ids(formgrader, assignment)["ada"]
    text = shown_text(get(formgrader, f"/formgrader/submissions/{ada['id']}/"))
    assert HIDDEN_PLACEHOLDER in text
    # The public checks show, spelled as in the source: so would the hidden ones, were they there.
    assert [line for line in check_lines(assignment, hidden=False) if line not in text] == []
    assert "HIDDEN TESTS" not in text
    assert [line for line in hidden_lines(assignment) if line in text] == []


def test_generate_feedback_writes_the_kits_page_which_holds_no_hidden_test(course, formgrader):
    """nbgrader's generate_feedback, from the command line and from formgrader's button, writes the page that
    `autograder report` wrote, byte for byte, and nothing of nbgrader's own rendering."""
    feedback = course / "feedback"
    before = files_of(feedback)
    assert "ada/autoencoder/autoencoder.html" in before
    run = nbgrader(course, "generate_feedback", "autoencoder", "--force")
    assert run.returncode == 0, run.stderr[-3000:]
    assert files_of(feedback) == before  # no results.json, no feedback.html copied beside the pages either
    (feedback / "bob" / "vae" / "vae.html").unlink()
    answer = post(formgrader, "/formgrader/api/assignment/vae/bob/generate_feedback")
    assert answer["success"] is True, answer
    assert files_of(feedback) == before
    for assignment in ASSIGNMENTS:
        for student in ("ada", "bob"):
            page = (feedback / student / assignment / f"{assignment}.html").read_text()
            assert [line for line in hidden_lines(assignment) if line in shown_text(page)] == []


def test_autograde_refuses_and_names_the_kits_command_leaving_everything_as_it_was(course, formgrader):
    """nbgrader's autograde would run the students' code outside the kit's sandbox; formgrader's button passes
    --force, which would first delete the kit's results. Both stop before touching anything, and say what to run."""
    graded, book = files_of(course / "autograded"), (course / "gradebook.db").read_bytes()
    run = nbgrader(course, "autograde", "autoencoder", "--force")
    assert run.returncode == 1
    assert "`autograder grade submitted/ --assignment autoencoder`" in run.stderr
    assert "Nothing was changed" in run.stderr
    answer = post(formgrader, "/formgrader/api/submission/vae/ada/autograde")
    assert answer["success"] is False and "`autograder grade submitted/ --assignment vae`" in answer["log"]
    assert files_of(course / "autograded") == graded and (course / "gradebook.db").read_bytes() == book


def test_names_imported_into_nbgrader_are_kept_by_the_report_and_shown_in_formgrader(course, formgrader):
    """An LMS download gives no first and last names (Canvas's names only `lastfirst`); nbgrader's own roster import
    adds them, and `autograder report` keeps them."""
    roster = course / "students.csv"
    roster.write_text("id,first_name,last_name,email\nada,Ada,Lovelace,ada@uni.example\nbob,Bob,Babbage,\n")
    run = nbgrader(course, "db", "student", "import", str(roster))
    assert run.returncode == 0, run.stderr[-3000:]
    write_reports(course)
    shown = {
        s["student"]: (s["first_name"], s["last_name"])
        for s in get(formgrader, "/formgrader/api/submissions/autoencoder")
    }
    assert shown["ada"] == ("Ada", "Lovelace") and shown["bob"] == ("Bob", "Babbage")
    assert shown["cyd"] == (None, None)  # not in the roster: formgrader's "None, None"
