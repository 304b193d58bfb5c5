"""`autograder regrade`: one student graded again, the previous results kept, what changed recorded (regrades.json,
the class's regrades.csv, the feedback page), the TAs' manual grades kept. The grading itself is a stand-in here
(the acceptance check `ta-loop` runs the real one): these tests are about the record."""

from __future__ import annotations

import csv
import dataclasses
import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
from test_feedback import text_of
from test_reports import FIXTURES, A, gradebook, gradebook_template, make_course  # noqa: F401 - fixtures

from autograder.errors import KitError
from autograder.regrade import regrade
from autograder.regrade_record import CSV_COLUMNS, REGRADES, compare, read_regrades
from autograder.reports import write_reports
from autograder.results import SubmissionResult, read_result


class Course:
    """What `regrade` reads of a course: its root, and whether it has the assignment."""

    def __init__(self, root: Path):
        self.root = root

    def assignment(self, name: str):
        if name != A:
            raise KitError(f"no assignment {name!r}")


def grader_writing(data: dict | None, calls: list):
    """A stand-in for batch.grade_paths that writes `data` as the student's new results.json."""

    def grade(course, paths, *, assignment, force, profile, log):
        calls.append((paths, assignment, force))
        if data is not None:
            student = paths[0].parent.name
            (course.root / "autograded" / student / assignment / "results.json").write_text(json.dumps(data))
        return SimpleNamespace(interrupted=False, graded=int(data is not None))

    return grade


@pytest.fixture
def course(tmp_path) -> Path:
    root = make_course(tmp_path)
    for student in ("ada", "bo"):
        (root / "submitted" / student / A).mkdir(parents=True, exist_ok=True)
        (root / "submitted" / student / A / f"{A}.ipynb").write_text("{}")  # the stand-in never reads it
    return root


def ada_with_a_failed_decoder() -> dict:
    data = json.loads((FIXTURES / "ada.json").read_text())
    data["tests"][3].update(score=0.0, status="failed", output="define_decoder_block: got (8, 8), expected (16, 16)")
    data["score"] = 8.5
    data["extra_data"]["timestamp"] = "2026-12-02T10:00:00+00:00"
    data["extra_data"]["manual"] = [{"grade_id": "explain_latent", "max_score": 2, "answered": True}]
    return data


def test_compare_lists_changed_added_and_removed_checks():
    old = SubmissionResult.from_dict(json.loads((FIXTURES / "ada.json").read_text()))
    assert compare(old, old) == []
    new = SubmissionResult.from_dict(ada_with_a_failed_decoder())
    new.checks = new.checks[1:] + [dataclasses.replace(new.checks[0], name="extra: check")]
    kinds = {(c.check, c.kind) for c in compare(old, new)}
    assert kinds == {
        ("decoder_block_tests: decoder_output_shape", "changed"),
        ("extra: check", "added"),
        ("encoder_block_tests: block_output_shape", "removed"),
    }
    changed = next(c for c in compare(old, new) if c.kind == "changed")
    assert (changed.old_score, changed.new_score, changed.max_score) == (1.5, 0.0, 1.5)
    assert changed.new_message == "define_decoder_block: got (8, 8), expected (16, 16)"


def test_a_regrade_keeps_the_old_result_records_the_change_and_keeps_manual_points(course, gradebook):  # noqa: F811
    from nbgrader.api import Gradebook

    write_reports(course)
    with Gradebook(f"sqlite:///{gradebook}") as gb:
        gb.find_grade("explain_latent", A, A, "ada").manual_score = 1.75
        gb.find_comment("explain_latent", A, A, "ada").manual_comment = "See me about the bottleneck."
        gb.db.commit()
    folder = course / "autograded" / "ada" / A
    before = (folder / "results.json").read_bytes()
    calls: list = []
    record = regrade(
        Course(course), "ada", A, reason="student asked", grade=grader_writing(ada_with_a_failed_decoder(), calls)
    )
    assert calls == [([course / "submitted" / "ada" / A], A, True)]  # that student alone, forced
    (change,) = record.changes
    assert (change.check, change.kind, change.old_score, change.new_score, change.max_score) == (
        "decoder_block_tests: decoder_output_shape",
        "changed",
        1.5,
        0.0,
        1.5,
    )
    assert change.new_message == "define_decoder_block: got (8, 8), expected (16, 16)"
    assert (record.old_score, record.new_score, record.reason) == (10, 8.5, "student asked")
    # The previous results.json, beside the new one, byte for byte; the new one is what the grading wrote.
    assert record.previous and (folder / record.previous).read_bytes() == before
    assert read_result(folder / "results.json").score == 8.5
    assert [r.to_dict() for r in read_regrades(folder)] == [record.to_dict()]
    rows = list(csv.DictReader((course / "reports" / A / "regrades.csv").open()))
    assert list(rows[0]) == CSV_COLUMNS and len(rows) == 1
    assert {k: rows[0][k] for k in ("student", "reason", "check", "change", "old_points", "new_points")} == {
        "student": "ada",
        "reason": "student asked",
        "check": "decoder_block_tests: decoder_output_shape",
        "change": "changed",
        "old_points": "1.5",
        "new_points": "0",
    }
    # The student's page says what changed and keeps the TA's points and comment; so does the next report.
    for _ in range(2):
        text, _ = text_of((course / "feedback" / "ada" / A / f"{A}.html").read_text())
        assert "Regraded" in text and "(student asked): autograded score 10 → 8.5 / 10." in text
        assert "got (8, 8), expected (16, 16)" in text
        assert "explain_latent 1.75 / 2 See me about the bottleneck." in text and "10.25 / 12" in text
        write_reports(course)
    with Gradebook(f"sqlite:///{gradebook}") as gb:
        assert gb.find_grade("explain_latent", A, A, "ada").manual_score == 1.75
        assert gb.find_grade("decoder_block_tests", A, A, "ada").auto_score == 1.5  # the new verdict: 3 - 1.5

    # A second regrade that changes nothing: one row that says so, and the result it replaced kept too.
    regrade(Course(course), "ada", A, grade=grader_writing(json.loads(before), []))
    again = regrade(Course(course), "ada", A, reason="again", grade=grader_writing(json.loads(before), []))
    assert again.changes == () and again.previous != record.previous
    rows = list(csv.DictReader((course / "reports" / A / "regrades.csv").open()))
    assert [(r["reason"], r["change"]) for r in rows][-1] == ("again", "none")
    assert len(read_regrades(folder)) == 3 and len(list(folder.glob("results.*.json"))) == 3


def test_a_regrade_without_a_submission_or_a_new_result_is_a_clear_error(course):
    with pytest.raises(KitError, match=r"No submission of autoencoder by 'zed'"):
        regrade(Course(course), "zed", A, grade=grader_writing(None, []))
    folder = course / "autograded" / "bo" / A
    before = (folder / "results.json").read_bytes()
    with pytest.raises(KitError, match="wrote no new result"):
        regrade(Course(course), "bo", A, grade=grader_writing(None, []))
    assert (folder / "results.json").read_bytes() == before and not (folder / REGRADES).exists()
    assert not (course / "reports" / A / "regrades.csv").exists()


def test_a_regrades_file_that_is_not_the_kits_is_ignored(tmp_path):
    (tmp_path / REGRADES).write_text('[{"time": 1}]')
    assert read_regrades(tmp_path) == []
    shutil.copy(FIXTURES / "ada.json", tmp_path / REGRADES)
    assert read_regrades(tmp_path) == []
