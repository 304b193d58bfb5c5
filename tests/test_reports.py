"""The TA's reports from a small class of results.json fixtures: CSVs, summary, feedback files, the gradebook."""

from __future__ import annotations

import base64
import csv
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import warnings
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from autograder.errors import KitError
from autograder.reports import write_gradebook, write_reports
from autograder.results import MalformedResult, SubmissionResult, read_result

if TYPE_CHECKING:
    from nbgrader.api import Gradebook

FIXTURES = Path(__file__).parent / "fixtures" / "results"
A = "autoencoder"
DUE = datetime(2026, 11, 21, 21, 0)  # naive: UTC, as nbgrader reads it
PNG = b"\x89PNG\r\n\x1a\n"

# ada: full marks, on time. bo: decoder wrong (Conv2D instead of Conv2DTranspose), partial quality credit, late.
# cy: a hidden encoder check failed, the decoder's layers wrong, no quality credit, an edited locked cell.
# dee: results.json cut off mid-file. The written answer `explain_latent` (2 points, graded by hand): ada and cy
# answered it (pending until a TA grades it), bo left it as released (0, final).
MANUAL = {"ada": True, "bo": False, "cy": True}
CLASS_CSV = """\
student,encoder_block_tests: block_output_shape,encoder_block_tests: block_layers,\
encoder_block_tests: block_output_values,decoder_block_tests: decoder_output_shape,\
decoder_block_tests: decoder_layers,reconstruction_quality: test_mse,encoder_block_tests,decoder_block_tests,\
reconstruction_quality,explain_latent,autograded,manual,total,max_score,percent,status,late,errors
ada,1,1,1,1.5,1.5,4,3,3,4,pending,10,,,12,,pending: explain_latent,no,
bo,1,1,1,0,0,2,3,0,2,0,5,0,5,12,41.67,final,yes,
cy,1,1,0,1.5,0,0,2,1.5,0,pending,3.5,,,12,,pending: explain_latent,no,locked_cell_edited
dee,,,,,,,,,,,,,,,,,,malformed_results
"""
CANVAS_CSV = """\
Student,ID,SIS User ID,SIS Login ID,Section,autoencoder
Points Possible,,,,,12
ada,,,ada,,
bo,,,bo,,5
cy,,,cy,,
dee,,,dee,,
"""
MOODLE_CSV = """\
Username,autoencoder
bo,5
"""


def make_course(root: Path, students=("ada", "bo", "cy", "dee"), thresholds=True, manual=MANUAL) -> Path:
    """nbgrader's layout: autograded/<s>/<a>/results.json, submitted/<s>/<a>/timestamp.txt. `manual` says who
    answered the written question `explain_latent` (the batch records it in results.json)."""
    for student in students:
        graded = root / "autograded" / student / A
        graded.mkdir(parents=True)
        shutil.copy(FIXTURES / f"{student}.json", graded / "results.json")
        if student in manual:
            data = json.loads((graded / "results.json").read_text())
            data["extra_data"]["manual"] = [{"grade_id": "explain_latent", "max_score": 2, "answered": manual[student]}]
            (graded / "results.json").write_text(json.dumps(data))
        stamp = FIXTURES / f"{student}.timestamp.txt"
        if stamp.exists():
            (root / "submitted" / student / A).mkdir(parents=True)
            shutil.copy(stamp, root / "submitted" / student / A / "timestamp.txt")
    if thresholds:
        (root / "reference_weights" / A).mkdir(parents=True)
        shutil.copy(FIXTURES / "thresholds.json", root / "reference_weights" / A / "thresholds.json")
    return root


@pytest.fixture
def course(tmp_path) -> Path:
    return make_course(tmp_path / "course")


@pytest.fixture(scope="module")
def reported(tmp_path_factory) -> tuple[Path, list[Path]]:
    """The class's reports, written once for the tests that only read them."""
    course = make_course(tmp_path_factory.mktemp("reported"))
    return course, write_reports(course, due={A: DUE})


def results(*students) -> dict[str, dict]:
    return {s: json.loads((FIXTURES / f"{s}.json").read_text()) for s in students}


# ---- CSVs ----------------------------------------------------------------------------------------------------------


def test_class_canvas_and_moodle_csv_exact(reported):
    course, _ = reported
    assert (course / "reports" / A / "class.csv").read_text() == CLASS_CSV
    assert (course / "reports" / A / "canvas.csv").read_text() == CANVAS_CSV
    assert (course / "reports" / A / "moodle.csv").read_text() == MOODLE_CSV


def test_without_written_answers_every_readable_total_is_final(tmp_path):
    course = make_course(tmp_path, manual={})
    write_reports(course)
    rows = {r["student"]: r for r in csv.DictReader((course / "reports" / A / "class.csv").open())}
    assert [(rows[s]["total"], rows[s]["max_score"], rows[s]["status"]) for s in ("ada", "bo", "cy")] == [
        ("10", "10", "final"),
        ("5", "10", "final"),
        ("3.5", "10", "final"),
    ]
    assert "explain_latent" not in rows["ada"] and rows["dee"]["status"] == ""
    assert (course / "reports" / A / "moodle.csv").read_text() == "Username,autoencoder\nada,10\nbo,5\ncy,3.5\n"


def test_one_total_everywhere_the_summary_names_both_parts(reported):
    """The summary's scores are the autograder's (out of 10); it says the written answer brings the assignment to
    the 12 of class.csv and canvas.csv, and results.json's own sentence says the same."""
    course, _ = reported
    summary = (course / "reports" / A / "summary.html").read_text()
    assert "the autograder's, out of 10 points" in summary and "bring the assignment to 12" in summary
    assert "mean autograded score" in summary
    result = read_result(course / "autograded" / "ada" / A / "results.json")
    assert result.to_dict()["output"].startswith(
        "ada: 10 / 10 autograded points on autoencoder. The written answer explain_latent (2 points) is graded by "
        "hand, outside this score: the assignment is out of 12 in all."
    )


def test_late_flag_needs_both_a_due_date_and_a_timestamp(course):
    write_reports(course)  # no due date
    rows = (course / "reports" / A / "class.csv").read_text().splitlines()
    assert [row.split(",")[-2] for row in rows[1:]] == ["", "", "", ""]
    # An aware due date one minute before cy's submission (20:59:59 UTC) makes cy late; dee has no timestamp.
    write_reports(course, due={A: datetime(2026, 11, 21, 21, 58, tzinfo=timezone(timedelta(hours=1)))})
    rows = (course / "reports" / A / "class.csv").read_text().splitlines()
    assert [row.split(",")[-2] for row in rows[1:]] == ["no", "yes", "yes", ""]


def test_unreadable_timestamp_is_an_error_not_a_crash(course):
    (course / "submitted" / "ada" / A / "timestamp.txt").write_text("yesterday-ish")
    write_reports(course, due={A: DUE})
    ada = (course / "reports" / A / "class.csv").read_text().splitlines()[1]
    assert ada.endswith(",12,,pending: explain_latent,,bad_timestamp")


def test_columns_follow_the_checks_when_students_differ(tmp_path):
    course = make_course(tmp_path, students=("ada", "cy"))
    cy = course / "autograded" / "cy" / A / "results.json"
    data = json.loads(cy.read_text())
    extra = dict(data["tests"][0], name="encoder_block_tests: extra_check")
    data["tests"].insert(1, extra)  # only cy has it, right after block_output_shape
    cy.write_text(json.dumps(data))
    write_reports(course)
    header = (course / "reports" / A / "class.csv").read_text().splitlines()[0].split(",")
    assert header[1:4] == [
        "encoder_block_tests: block_output_shape",
        "encoder_block_tests: extra_check",
        "encoder_block_tests: block_layers",
    ]
    assert (course / "reports" / A / "class.csv").read_text().splitlines()[1].split(",")[2] == ""  # ada lacks it


def test_scores_in_the_tables_and_summary_have_two_decimals(tmp_path):
    course = make_course(tmp_path, students=("ada", "bo"))
    bo = course / "autograded" / "bo" / A / "results.json"
    data = json.loads(bo.read_text())
    data["tests"][5]["score"] = 2 / 3  # partial quality credit, written unrounded
    data["score"] = 3 + 2 / 3
    bo.write_text(json.dumps(data))
    write_reports(course)
    bo_row = (course / "reports" / A / "class.csv").read_text().splitlines()[2].split(",")
    assert bo_row[6] == "0.67" and bo_row[-8:-3] == ["3.67", "0", "3.67", "12", "30.56"]
    assert "bo,,,bo,,3.67" in (course / "reports" / A / "canvas.csv").read_text()
    summary = (course / "reports" / A / "summary.html").read_text()
    assert "6.83</div>" in summary and "3.67 &ndash; 10</div>" in summary  # the mean; the lowest and highest
    assert "0.6667" not in summary and "3.6667" not in summary


# ---- malformed input -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content, error",
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "holds a list, not an object"),
        ('{"score": 1, "max_score": 2}', "missing the key 'tests'"),
        ('{"tests": []}', "missing the keys 'score', 'max_score'"),
        ('{"score": "1", "max_score": 2, "tests": []}', "'score' is not a number"),
        (
            '{"score": 1, "max_score": 2, "tests": [{"name": "a: b", "score": 1}]}',
            "tests[0] is missing the key 'max_score'",
        ),
        ('{"score": 1, "max_score": 2, "tests": {}}', "'tests' is not a list"),
    ],
)
def test_read_result_names_the_problem(tmp_path, content, error):
    path = tmp_path / "results.json"
    path.write_text(content)
    with pytest.raises(MalformedResult) as caught:
        read_result(path)
    assert error in caught.value.reason and str(path) in str(caught.value)


def test_read_result_accepts_the_fixtures():
    for student in ("ada", "bo", "cy"):
        assert read_result(FIXTURES / f"{student}.json").student == student
    assert SubmissionResult.from_dict(json.loads((FIXTURES / "ada.json").read_text())).score == 10


def test_malformed_results_become_rows_with_errors(course):
    (course / "autograded" / "bo" / A / "results.json").write_text('{"score": 5}')
    (course / "autograded" / "cy" / A / "results.json").write_bytes(b"\xff\xfe\x00")
    paths = write_reports(course, due={A: DUE})
    rows = (course / "reports" / A / "class.csv").read_text().splitlines()
    assert rows[2] == "bo,,,,,,,,,,,,,,,,,yes,malformed_results"
    assert rows[3] == "cy,,,,,,,,,,,,,,,,,no,malformed_results"
    summary = (course / "reports" / A / "summary.html").read_text()
    assert "results.json is missing the keys &#39;max_score&#39;, &#39;tests&#39;" in summary
    feedback = course / "feedback" / "dee" / A / f"{A}.html"
    assert feedback in paths
    assert "could not be read" in feedback.read_text()


# ---- summary -------------------------------------------------------------------------------------------------------


def test_summary_embeds_one_figure_of_each_kind_and_writes_them_beside_it(reported):
    course, paths = reported
    folder = course / "reports" / A
    html = (folder / "summary.html").read_text()
    figures = dict(
        re.findall(
            r'<figure id="(fig-[^"]+)">\s*<img class="figure" alt="[^"]*" '
            r'src="data:image/png;base64,([A-Za-z0-9+/=]+)">',
            html,
        )
    )
    assert sorted(figures) == ["fig-diagnoses", "fig-metric-test_mse", "fig-pass-rate", "fig-score-distribution"]
    for fig_id, b64 in figures.items():
        png = base64.b64decode(b64)
        assert png.startswith(PNG) and len(png) > 5000
        assert (folder / f"{fig_id[4:]}.png").read_bytes() == png
        assert folder / f"{fig_id[4:]}.png" in paths
    assert "http://" not in html and "https://" not in html and "<link" not in html


def test_summary_names_the_check_the_class_struggled_with(reported):
    course, _ = reported
    html = (course / "reports" / A / "summary.html").read_text()
    struggles = html[html.index('id="struggles"') : html.index("</section>", html.index('id="struggles"'))]
    items = re.findall(r"<li><code>([^<]+)</code>", struggles)
    # decoder_layers: 1 of 3 passed; test_mse: 1 of 3 (ties keep the checks' order); the hidden check: 2 of 3.
    assert items == [
        "decoder_block_tests: decoder_layers",
        "reconstruction_quality: test_mse",
        "encoder_block_tests: block_output_values",
    ]
    assert "33%</span> passed (1 of 3 students)" in struggles
    assert "Conv2D used instead of Conv2DTranspose, so the block does not upsample</strong> (2 students)" in struggles


def test_summary_tables_findings_per_student_and_escapes_them(reported):
    course, _ = reported
    html = (course / "reports" / A / "summary.html").read_text()
    findings = html[html.index('id="findings"') :]
    cy = '<td>cy</td><td><span class="kind">locked_cell_edited</span></td><td><code>setup</code>'
    assert cy in findings
    assert re.search(r"<td>dee</td><td><span class=\"kind\">malformed_results</span>", findings)
    assert "<script>" not in html and "&lt;script&gt;alert(&#34;pwned&#34;)&lt;/script&gt;" in html


def test_metric_plot_without_thresholds_file(tmp_path):
    course = make_course(tmp_path, thresholds=False)
    write_reports(course)
    html = (course / "reports" / A / "summary.html").read_text()
    assert 'id="fig-metric-test_mse"' in html and "(no threshold known)" in html
    (course / "reference_weights" / A).mkdir(parents=True)
    (course / "reference_weights" / A / "thresholds.json").write_text('{"profiles": {"cpu": {}}}')
    write_reports(course)
    assert "(no threshold known)" in (course / "reports" / A / "summary.html").read_text()


def test_reports_are_deterministic(course, tmp_path):
    first = {p.relative_to(course): p.read_bytes() for p in write_reports(course, due={A: DUE})}
    second = {p.relative_to(course): p.read_bytes() for p in write_reports(course, due={A: DUE})}
    # summary html, 3 CSVs, 4 PNGs, 4 feedback pages, and the 3 timestamps copied beside theirs
    assert first == second and len(first) == 1 + 3 + 4 + 4 + 3


def test_out_dir_and_feedback_layout(course, tmp_path):
    paths = write_reports(course, out_dir=tmp_path / "elsewhere")
    assert (tmp_path / "elsewhere" / A / "class.csv") in paths
    assert not (course / "reports").exists()
    for student in ("ada", "bo", "cy", "dee"):
        assert (course / "feedback" / student / A / f"{A}.html") in paths
    assert "3.5 / 10" in (course / "feedback" / "cy" / A / f"{A}.html").read_text()
    assert (course / "feedback" / "cy" / A / "timestamp.txt").read_text() == (
        course / "submitted" / "cy" / A / "timestamp.txt"
    ).read_text()
    assert not (course / "feedback" / "dee" / A / "timestamp.txt").exists()  # dee's submission has none


def test_nbgrader_release_feedback_delivers_the_pages(course, tmp_path, caplog):
    """nbgrader's own release_feedback finds each page and names it by the hash of the student's secret."""
    from nbgrader.utils import notebook_hash

    secrets = {"ada": "a1" * 32, "bo": "b2" * 32, "cy": "c3" * 32}
    for student, secret in secrets.items():
        (course / "submitted" / student / A / "submission_secret.txt").write_text(secret)
    with caplog.at_level(logging.WARNING, logger="autograder.reports"):
        write_reports(course)
    # dee's submission came without nbgrader's files: the TA is told how to release the others
    assert "release_feedback stops at the first student without a submission_secret.txt" in caplog.text
    assert "--CourseDirectory.student_id_exclude=dee " in caplog.text
    exchange = tmp_path / "exchange"
    exchange.mkdir()
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "nbgrader",
            "release_feedback",
            A,
            "--course=kit",
            f"--Exchange.root={exchange}",
            f"--CourseDirectory.root={course}",
            "--CourseDirectory.student_id_exclude=dee",
        ],
        capture_output=True,
        text=True,
        cwd=course,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    released = exchange / "kit" / "feedback"
    for student, secret in secrets.items():
        page = released / f"{notebook_hash(secret=secret, notebook_id=A)}.html"
        assert page.read_text() == (course / "feedback" / student / A / f"{A}.html").read_text()
    assert len(list(released.iterdir())) == 3


def test_linked_huge_or_special_files_beside_a_submission_are_not_read(course, tmp_path):
    outside = tmp_path / "grader-secret"
    outside.write_text("2020-01-01 00:00:00.000000 UTC")
    (course / "submitted" / "ada" / A / "submission_secret.txt").symlink_to(outside)
    (course / "submitted" / "bo" / A / "submission_secret.txt").write_text("x" * 10_000)
    cy = course / "submitted" / "cy" / A
    (cy / "timestamp.txt").unlink()
    (cy / "timestamp.txt").symlink_to(outside)  # an early time from a file outside: not believed
    os.mkfifo(cy / "submission_secret.txt")  # would block a plain read forever
    write_reports(course, due={A: DUE})
    for student in ("ada", "bo", "cy"):
        assert not (course / "feedback" / student / A / "submission_secret.txt").exists()
    assert not (course / "feedback" / "cy" / A / "timestamp.txt").exists()
    rows = {r.split(",")[0]: r.split(",") for r in (course / "reports" / A / "class.csv").read_text().splitlines()}
    assert rows["cy"][-2] == ""  # no readable timestamp: the late flag stays empty


def test_unknown_assignment_or_nothing_graded_is_a_clear_error(course, tmp_path):
    with pytest.raises(KitError, match="No graded submissions of 'vae'.*found: autoencoder"):
        write_reports(course, assignments=["vae"])
    with pytest.raises(KitError, match="Run `autograder grade` first"):
        write_reports(tmp_path / "empty")


# ---- gradebook -----------------------------------------------------------------------------------------------------


def new_gradebook(db: Path, monkeypatch) -> Gradebook:
    from nbgrader.api import Gradebook

    # nbgrader runs the `alembic` script when it creates a database: it must be on PATH even without an activated venv.
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    return Gradebook(f"sqlite:///{db}")


@pytest.fixture(scope="module")
def gradebook_template(tmp_path_factory) -> Path:
    """A gradebook as `nbgrader generate_assignment` leaves it, plus bo's earlier submission with a manual score.

    Built once: creating a database costs nbgrader an `alembic` subprocess (seconds on 2 cores); tests get copies.
    """
    db = tmp_path_factory.mktemp("gradebook") / "gradebook.db"
    with pytest.MonkeyPatch.context() as monkeypatch, new_gradebook(db, monkeypatch) as gb, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*not in session.*")  # nbgrader's add_submission, harmless
        gb.add_assignment(A)
        gb.add_notebook(A, A)
        for name, points in [("encoder_block_tests", 3), ("decoder_block_tests", 3), ("reconstruction_quality", 4)]:
            gb.add_grade_cell(name, A, A, max_score=points, cell_type="code")
        gb.add_grade_cell("explain_latent", A, A, max_score=2, cell_type="markdown")  # graded by hand
        gb.add_solution_cell("explain_latent", A, A)  # a written answer is both, as nbgrader saves it
        gb.add_student("bo", first_name="Bo")
        gb.add_submission(A, "bo")
        gb.find_grade("decoder_block_tests", A, A, "bo").manual_score = 1.0
        gb.db.commit()
    return db


@pytest.fixture
def gradebook(course, gradebook_template) -> Path:
    return Path(shutil.copy(gradebook_template, course / "gradebook.db"))


def grades(db: Path) -> dict[str, dict[str, tuple]]:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{db}") as gb:
        return {
            sub.student.id: {
                g.name: (g.auto_score, g.manual_score, g.needs_manual_grade, g.score) for g in sub.notebooks[0].grades
            }
            for sub in gb.assignment_submissions(A)
        }


def test_write_gradebook_sets_auto_scores_per_grade_cell(course, gradebook):
    assert write_gradebook(course, A, results("ada", "bo", "cy")) == 3
    assert grades(gradebook) == {
        "ada": {
            "encoder_block_tests": (3.0, None, False, 3.0),
            "decoder_block_tests": (3.0, None, False, 3.0),
            "reconstruction_quality": (4.0, None, False, 4.0),
            "explain_latent": (None, None, True, 0.0),
        },
        # bo's manual score on the decoder stays, and stays marked for review, as nbgrader's autograde does.
        "bo": {
            "encoder_block_tests": (3.0, None, False, 3.0),
            "decoder_block_tests": (0.0, 1.0, True, 1.0),
            "reconstruction_quality": (2.0, None, False, 2.0),
            "explain_latent": (None, None, True, 0.0),
        },
        "cy": {
            "encoder_block_tests": (2.0, None, False, 2.0),
            "decoder_block_tests": (1.5, None, False, 1.5),
            "reconstruction_quality": (0.0, None, False, 0.0),
            "explain_latent": (None, None, True, 0.0),
        },
    }
    # Writing again updates; it adds nothing.
    assert write_gradebook(course, A, results("ada", "bo", "cy")) == 3
    assert len(grades(gradebook)) == 3


def test_nbgrader_export_shows_the_scores(course, gradebook, tmp_path):
    write_gradebook(course, A, results("ada", "bo", "cy"))
    out = tmp_path / "grades.csv"
    subprocess.run(
        [sys.executable, "-m", "nbgrader", "export", f"--CourseDirectory.root={course}", f"--to={out}"],
        check=True,
        capture_output=True,
        cwd=course,
        timeout=120,
    )
    rows = {r.split(",")[3]: r.split(",")[7] for r in out.read_text().splitlines()[1:]}
    assert rows == {"ada": "10.0", "bo": "6.0", "cy": "3.5"}  # raw_score; bo's includes the manual decoder point


def test_write_gradebook_skips_malformed_results_and_unknown_cells(course, gradebook, caplog):
    data = results("ada", "cy")
    data["cy"] = {"score": 3}
    data["ada"]["tests"].append(
        dict(data["ada"]["tests"][0], name="bonus: extra", extra_data={"grade_id": "bonus", "check": "extra"})
    )
    with caplog.at_level(logging.WARNING, logger="autograder.reports"):
        assert write_gradebook(course, A, data) == 1
    assert "cy skipped, results.json is missing the keys 'max_score', 'tests'" in caplog.text
    assert "checks of 'bonus' have no code grade cell in autoencoder.ipynb" in caplog.text
    assert grades(gradebook)["ada"]["encoder_block_tests"][0] == 3.0


@pytest.mark.parametrize("missing", ["database", "assignment", "notebook"])
def test_write_gradebook_without_the_assignment_or_its_source_warns_and_writes_nothing(
    course, gradebook_template, caplog, missing
):
    """The course has no source notebook to record the assignment from, so nothing is written (see the next test for
    a course that has one)."""
    from nbgrader.api import Gradebook

    if missing != "database":
        db = Path(shutil.copy(gradebook_template, course / "gradebook.db"))
        with Gradebook(f"sqlite:///{db}") as gb:
            if missing == "assignment":
                gb.remove_assignment(A)
            else:
                gb.remove_notebook(A, A)
    with caplog.at_level(logging.WARNING, logger="autograder.reports"):
        assert write_gradebook(course, A, results("ada")) == 0
    expected = {
        "database": "does not exist",
        "assignment": "No such assignment: autoencoder",
        "notebook": "No such notebook: autoencoder/autoencoder",
    }[missing]
    assert expected in caplog.text and "nbgrader generate_assignment autoencoder" in caplog.text
    assert "there is no source notebook" in caplog.text
    assert (course / "gradebook.db").exists() == (missing != "database")


@pytest.mark.parametrize("missing", ["database", "notebook"])
def test_write_gradebook_records_a_missing_assignment_from_its_source_as_nbgrader_does(
    tmp_path, gradebook_template, missing
):
    """Without `autograder generate`, the report records the assignment itself, with nbgrader's generate_assignment
    (release/ is left alone): the gradebook then holds the source's grade cells and takes the scores."""
    from nbgrader.api import Gradebook

    from autograder.notebook import load_spec

    root = Path(__file__).resolve().parents[1]
    course = make_course(tmp_path / "course", students=("ada",), manual={})
    for item in ("course.yaml", "nbgrader_config.py"):
        shutil.copy(root / item, course / item)
    shutil.copytree(root / "source" / A, course / "source" / A)
    if missing == "notebook":  # an assignment recorded without its notebook (as `nbgrader db assignment add` does)
        with Gradebook(f"sqlite:///{shutil.copy(gradebook_template, course / 'gradebook.db')}") as gb:
            gb.remove_submission(A, "bo")  # nbgrader adds no notebook to an assignment that has submissions
            gb.remove_notebook(A, A)
    spec = load_spec(course / "source" / A / f"{A}.ipynb", A)
    data = {"ada": SubmissionResult(A, "ada", [], [], spec.max_score, 1.0, "test").to_dict()}
    assert write_gradebook(course, A, data) == 1
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        cells = {c.name: (c.max_score, c.cell_type) for c in gb.find_notebook(A, A).grade_cells}
        assert gb.find_submission(A, "ada").student.id == "ada"
    expected = {c.grade_id: (c.points, "code") for c in spec.tests}
    expected.update({c.grade_id: (c.points, "markdown") for c in spec.manual})
    assert cells == expected
    assert not (course / "release").exists()  # nbgrader's release went to a scratch folder


@pytest.mark.parametrize(
    "output, reason",
    [
        (
            (
                "[GenerateAssignmentApp | WARNING] root '.'\n[GenerateAssignmentApp | ERROR] Cannot modify 'x'\n"
                "[GenerateAssignmentApp | ERROR] Traceback (most recent call last):\n"
                '  File "a.py"\n    NbGraderException: y\n'
                "[GenerateAssignmentApp | ERROR] Please see the the above traceback"
            ),
            "Cannot modify 'x'",
        ),
        (
            (
                "[GenerateAssignmentApp | ERROR] There was an error processing assignment: source/./a\n"
                "[GenerateAssignmentApp | ERROR] Traceback (most recent call last):\n"
                "    raise child_exception_type(errno)\n"
                "    FileNotFoundError: [Errno 2] No such file or directory: 'alembic'\n    \n"
                "[GenerateAssignmentApp | ERROR] Please see the the above traceback for details"
            ),
            "FileNotFoundError: [Errno 2] No such file or directory: 'alembic'",
        ),
        ("Killed\n", "Killed"),
        ("", None),
    ],
)
def test_the_reason_taken_from_a_failed_nbgrader_command(output, reason):
    from autograder.reports.gradebook import _nbgrader_reason

    assert _nbgrader_reason(output) == reason


def test_a_gradebook_nbgrader_cannot_record_into_is_a_note_naming_nbgrader_s_reason(
    tmp_path, gradebook_template, caplog
):
    from nbgrader.api import Gradebook

    root = Path(__file__).resolve().parents[1]
    course = make_course(tmp_path / "course", students=("ada",), manual={})
    shutil.copy(root / "nbgrader_config.py", course / "nbgrader_config.py")
    shutil.copytree(root / "source" / A, course / "source" / A)
    with Gradebook(f"sqlite:///{shutil.copy(gradebook_template, course / 'gradebook.db')}") as gb:
        gb.remove_notebook(A, A)  # bo's submission stays: nbgrader refuses to change the assignment under it
    with caplog.at_level(logging.WARNING, logger="autograder.reports"):
        assert write_gradebook(course, A, results("ada")) == 0
    assert "No such notebook: autoencoder/autoencoder" in caplog.text
    assert (
        "failed to record it: Cannot modify existing assignment 'Assignment<autoencoder>' because there are "
        "submissions associated with it." in caplog.text
    )


def test_write_reports_fills_the_gradebook_and_says_so(course, gradebook):
    write_reports(course)
    assert set(grades(gradebook)) == {"ada", "bo", "cy"}  # dee's results are unreadable: not written
    html = (course / "reports" / A / "summary.html").read_text()
    assert "3 students written to nbgrader's gradebook." in html
    assert "2 submission(s) have written answers to grade in formgrader" in html
    assert "ada (explain_latent), cy (explain_latent)" in html


def rows_of(course: Path) -> dict[str, dict]:
    return {r["student"]: r for r in csv.DictReader((course / "reports" / A / "class.csv").open())}


def test_written_answers_wait_for_a_ta_and_manual_grades_make_the_totals_final(course, gradebook):
    from nbgrader.api import Gradebook
    from nbgrader.utils import parse_utc

    write_reports(course, due={A: DUE})
    book = grades(gradebook)
    assert book["ada"]["explain_latent"] == (None, None, True, 0.0)  # answered: a TA grades it
    assert book["bo"]["explain_latent"] == (0.0, None, False, 0.0)  # left as released: 0, as nbgrader decides
    with Gradebook(f"sqlite:///{gradebook}") as gb:
        assert gb.find_comment("explain_latent", A, A, "bo").auto_comment == "No response."
        assert gb.find_comment("explain_latent", A, A, "ada").auto_comment is None
        # nbgrader's timestamp, as autograde stores it: formgrader then counts the submission as autograded
        stamp = (course / "submitted" / "ada" / A / "timestamp.txt").read_text()
        assert gb.find_submission(A, "ada").timestamp == parse_utc(stamp)
    rows = rows_of(course)
    # bo's manual point on the decoder (from the gradebook) replaces the autograder's 0, as in nbgrader's totals
    assert (rows["bo"]["decoder_block_tests"], rows["bo"]["autograded"], rows["bo"]["total"]) == ("1", "5", "6")
    assert (rows["ada"]["total"], rows["ada"]["status"]) == ("", "pending: explain_latent")

    # The TA grades ada's and cy's answers (what formgrader's grade handler stores), with extra credit for cy.
    with Gradebook(f"sqlite:///{gradebook}") as gb:
        for student, points, extra in (("ada", 1.5, None), ("cy", 2.0, 0.5)):
            grade = gb.find_grade("explain_latent", A, A, student)
            grade.manual_score, grade.extra_credit, grade.needs_manual_grade = points, extra, False
        gb.find_grade("decoder_block_tests", A, A, "bo").needs_manual_grade = False  # reviewed
        gb.db.commit()
    write_reports(course, due={A: DUE})
    rows = rows_of(course)
    got = {
        s: (rows[s]["explain_latent"], rows[s]["manual"], rows[s]["total"], rows[s]["percent"], rows[s]["status"])
        for s in ("ada", "bo", "cy")
    }
    assert got == {
        "ada": ("1.5", "1.5", "11.5", "95.83", "final"),
        "bo": ("0", "0", "6", "50", "final"),
        "cy": ("2.5", "2.5", "6", "50", "final"),
    }
    assert "ada,,,ada,,11.5" in (course / "reports" / A / "canvas.csv").read_text()
    assert (course / "reports" / A / "moodle.csv").read_text() == "Username,autoencoder\nada,11.5\nbo,6\ncy,6\n"
    book = grades(gradebook)
    # The TA's work stays: grading again changed no verdict, so nothing is marked for review again.
    assert book["ada"]["explain_latent"] == (None, 1.5, False, 1.5)
    assert book["bo"]["decoder_block_tests"] == (0.0, 1.0, False, 1.0)
    assert {s: sum(g[3] for g in cells.values()) for s, cells in book.items()} == {"ada": 11.5, "bo": 6, "cy": 6}


def test_a_changed_verdict_asks_the_ta_to_look_again(course, gradebook):
    write_reports(course)
    assert grades(gradebook)["bo"]["decoder_block_tests"][2] is True  # bo's earlier manual score: review it
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{gradebook}") as gb:
        gb.find_grade("decoder_block_tests", A, A, "bo").needs_manual_grade = False
        gb.db.commit()
    bo = course / "autograded" / "bo" / A / "results.json"
    data = json.loads(bo.read_text())
    data["tests"][3]["score"], data["tests"][3]["status"] = 1.5, "passed"  # regraded: the decoder's shape passes
    bo.write_text(json.dumps(data))
    write_reports(course)
    assert grades(gradebook)["bo"]["decoder_block_tests"] == (1.5, 1.0, True, 1.0)


def test_moodle_csv_carries_email_addresses_when_the_gradebook_has_every_one(tmp_path, gradebook_template):
    from nbgrader.api import Gradebook

    course = make_course(tmp_path / "course", manual={})
    db = Path(shutil.copy(gradebook_template, course / "gradebook.db"))
    write_reports(course)
    with Gradebook(f"sqlite:///{db}") as gb:
        for student in ("ada", "bo"):
            gb.update_or_create_student(student, email=f"{student}@uni.example")
    write_reports(course)
    assert (course / "reports" / A / "moodle.csv").read_text().splitlines()[0] == "Username,autoencoder"  # cy: none
    with Gradebook(f"sqlite:///{db}") as gb:
        gb.update_or_create_student("cy", email="cy@uni.example")
    write_reports(course)
    assert (course / "reports" / A / "moodle.csv").read_text() == (
        "Username,Email address,autoencoder\nada,ada@uni.example,10\nbo,bo@uni.example,6\ncy,cy@uni.example,3.5\n"
    )


# ---- in a browser --------------------------------------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed (apt-get install chromium)")
def test_summary_renders_in_headless_chromium(reported, tmp_path):
    from PIL import Image

    course, _ = reported
    shot = tmp_path / "summary.png"
    subprocess.run(
        [
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--screenshot={shot}",
            "--window-size=1200,2000",
            (course / "reports" / A / "summary.html").as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    image = Image.open(shot).convert("RGB")
    assert image.size == (1200, 2000)
    colours = image.getcolors(maxcolors=1 << 20)
    assert len(colours) > 100  # text, bars and figures, not a blank page
    background = max(colours)[0] / (1200 * 2000)
    assert background < 0.9


def feedback_text(course: Path, student: str) -> str:
    from test_feedback import text_of

    return text_of((course / "feedback" / student / A / f"{A}.html").read_text())[0]


def test_the_tas_scores_and_comments_reach_the_students_page(course, gradebook):
    """What a TA enters in formgrader (stored through nbgrader's own Gradebook API) is on the student's page after
    `autograder report`: the written answer's points, the comments, a replaced test-cell score, the total; an
    answer still to grade says pending. nbgrader's generate_feedback path writes the same page."""
    from nbgrader.api import Gradebook

    from autograder.reports import write_student_feedback

    write_reports(course)
    ada = feedback_text(course, "ada")
    assert "explain_latent pending / 2 Not graded yet" in ada
    assert "Total pending: 1 written answer (explain_latent) not graded yet; the assignment is out of 12" in ada
    assert "Clear argument" not in ada
    with Gradebook(f"sqlite:///{gradebook}") as gb:
        grade = gb.find_grade("explain_latent", A, A, "ada")
        grade.manual_score, grade.needs_manual_grade = 1.25, False
        gb.find_comment("explain_latent", A, A, "ada").manual_comment = "Clear argument <b>about</b> the bottleneck."
        gb.find_grade("decoder_block_tests", A, A, "bo").manual_score = 2.5
        gb.db.commit()
    write_reports(course)
    page = (course / "feedback" / "ada" / A / f"{A}.html").read_text()
    ada = feedback_text(course, "ada")
    assert "11.25 / 12" in ada and "explain_latent 1.25 / 2 Clear argument <b>about</b> the bottleneck." in ada
    assert "&lt;b&gt;about&lt;/b&gt;" in page  # the TA's text is escaped like everything else
    assert "Total 11.25 / 12: the autograder's 10 / 10 and the written answers, graded by hand." in ada
    bo = feedback_text(course, "bo")  # bo left the answer as released (0), and got 2.5 by hand on the decoder
    assert "7.5 / 12" in bo and "explain_latent 0 / 2 Not answered." in bo
    assert "decoder_block_tests 2.5 / 3 0 of 2 (your TA's score; the autograder's: 0)" in bo
    assert "with your TA's scores in place of the autograder's" in bo
    # formgrader's "Generate Feedback" (nbgrader_hooks.KitFeedback) writes one student's page: the same bytes.
    (course / "feedback" / "ada" / A / f"{A}.html").unlink()
    write_student_feedback(course, A, "ada")
    assert (course / "feedback" / "ada" / A / f"{A}.html").read_text() == page


def test_unexplained_failures_are_grouped_by_signature(tmp_path):
    """The pure rule, on fixtures: the answer cells failing without a diagnosis, grouped by identical failing checks
    (names, points and messages), most students first; diagnosed ones (bo's, cy's) are left out."""
    from autograder.reports.reading import collect
    from autograder.reports.unexplained import unexplained_failures

    course = make_course(tmp_path, students=("ada", "bo", "cy"))
    for twin, like in (("bo2", "bo"), ("bo3", "bo"), ("cy2", "cy")):  # the same failures, no catalogued mistake
        data = json.loads((FIXTURES / f"{like}.json").read_text())
        for test in data["tests"]:
            test["extra_data"].pop("diagnosis", None)
            test["output"] = test["output"].split("\nLikely mistake: ")[0]
        (course / "autograded" / twin / A).mkdir(parents=True)
        (course / "autograded" / twin / A / "results.json").write_text(json.dumps(data))
    cells = {f"encoder_block_tests: {n}": frozenset({"encoder_block"}) for n in ("block_output_shape", "block_layers")}
    cells["encoder_block_tests: block_output_values"] = frozenset({"encoder_block"})
    cells |= {
        f"decoder_block_tests: {n}": frozenset({"decoder_block"}) for n in ("decoder_output_shape", "decoder_layers")
    }
    groups = unexplained_failures(collect(course, A), cells)
    got = [(g.grade_id, g.students, [c.name for c in g.checks]) for g in groups]
    assert got == [
        (
            "decoder_block",
            ["bo2", "bo3"],
            ["decoder_block_tests: decoder_output_shape", "decoder_block_tests: decoder_layers"],
        ),
        ("decoder_block", ["cy2"], ["decoder_block_tests: decoder_layers"]),
        ("encoder_block", ["cy2"], ["encoder_block_tests: block_output_values"]),
    ]
    bo = {t["name"]: t for t in json.loads((FIXTURES / "bo.json").read_text())["tests"]}
    shape = groups[0].checks[0]
    assert (shape.score, shape.max_score) == (bo[shape.name]["score"], bo[shape.name]["max_score"])
    assert shape.message == bo[shape.name]["output"].split("\nLikely mistake: ")[0] and "Likely" not in shape.message
    # A check that is not an answer cell's value check (the training check here) is never part of a signature.
    assert all("reconstruction_quality" not in c.name for g in groups for c in g.checks)
