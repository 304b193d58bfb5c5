"""The class teaches the catalogue: failing answer cells that no catalogued mistake explains are listed in the
summary, grouped by identical failing checks, and `autograder mistakes suggest` prints a mistakes.yaml stub for each
group, with the student's code anonymised or removed.

The fast tests build results.json files from the source's real check names (no grading); the slow one grades the
demo class (`make demo`'s) plus a few generated wrong cells, then reports and suggests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from conftest import ROOT, SOLUTION, cell, copy_course, notebook, without_quality

from autograder.errors import KitError
from autograder.mistakes import load_catalogue
from autograder.notebook import load_spec
from autograder.reports import write_reports
from autograder.reports.suggest import anonymise, suggest
from autograder.results import CheckResult, SubmissionResult, result_json

A = "autoencoder"
NAMED = "# Zebedee Quartz's decoder, student 4711\n"
WRONG_DECODER = (
    NAMED
    + '''def define_decoder_block(x, num_filters):
    """By Zebedee Quartz."""
    print("zebedee was here")
    x = layers.UpSampling2D(size=3, interpolation="bilinear")(x)
    x = layers.Conv2D(num_filters, 3, padding="same")(x)
    x = layers.BatchNormalization()(x)
    return layers.Activation("relu")(x)
'''
)


def fake_result(student: str, failing: dict[str, str], *, diagnosis: str | None = None) -> SubmissionResult:
    """A result of the source's real checks: those in `failing` (name -> message) failed, the rest passed."""
    from autograder.grading.scoring import check_name

    spec = load_spec(ROOT / "source" / A / f"{A}.ipynb", A)
    checks = []
    for test in spec.tests:
        for call in test.calls:
            name = check_name(call, test)
            failed = name in failing
            checks.append(
                CheckResult(
                    name,
                    call.grade_id,
                    call.check,
                    0.0 if failed else 1.0,
                    1.0,
                    not failed,
                    failing.get(name, "ok"),
                    diagnosis=diagnosis if failed else None,
                )
            )
    return SubmissionResult(A, student, checks, [], float(len(checks)), 1.0, "test")


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Path:
    """Three students whose decoder fails alike (one of them diagnosed: explained), one whose encoder fails
    otherwise, and one with full marks."""
    root = copy_course(tmp_path_factory.mktemp("suggest"))
    shape = "decoder_block_shapes: block_output_shape #1"
    layers = "decoder_block_structure: block_layer_settings #2"
    decoder = {shape: "define_decoder_block: got shape (None, 12, 12, 8), expected (None, 8, 8, 8)", layers: "size 3"}
    results = {
        "s1": fake_result("s1", decoder),
        "s2": fake_result("s2", decoder),
        "s3": fake_result("s3", decoder, diagnosis="A catalogued mistake."),
        "s4": fake_result("s4", {"encoder_block_shapes: block_output_shape #2": "got (1,), expected (2,)"}),
        "s5": fake_result("s5", {}),
    }
    for student, result in results.items():
        graded = root / "autograded" / student / A
        graded.mkdir(parents=True)
        (graded / "results.json").write_text(result_json(result))
        nb = notebook(SOLUTION)
        if student in ("s1", "s2", "s3"):
            cell(nb, "decoder_block")["source"] = WRONG_DECODER.replace("4711", student)
        (root / "submitted" / student / A).mkdir(parents=True)
        (root / "submitted" / student / A / f"{A}.ipynb").write_text(json.dumps(nb))
    return root


def entries(text: str) -> list[dict]:
    return yaml.safe_load(text)


def test_suggest_prints_one_stub_per_unexplained_group_most_students_first(course, tmp_path):
    text = suggest(course, A)
    stubs = entries(text)
    assert [(s["grade_id"], s["id"]) for s in stubs] == [
        ("decoder_block", "decoder_block_unexplained_1"),
        ("encoder_block", "encoder_block_unexplained_2"),
    ]
    assert "# decoder_block: 2 submission(s) fail these checks alike:" in text
    assert "#   decoder_block_shapes: block_output_shape #1 (0 / 1): define_decoder_block: got shape" in text
    assert all(set(s) == {"id", "grade_id", "says", "code"} and s["says"].startswith("TODO") for s in stubs)
    # Anonymised: the example's code without its comments, docstrings and prints; no student named anywhere.
    code = stubs[0]["code"]
    assert 'UpSampling2D(size=3, interpolation="bilinear")' in code.replace("'", '"')
    assert "Zebedee" not in text and "zebedee" not in text and "s1" not in text and "s2" not in text
    # Ready to edit: written as a mistakes.yaml, the catalogue's loader reads it.
    (tmp_path / "mistakes.yaml").write_text(text)
    assert [e["id"] for e in load_catalogue(tmp_path / "mistakes.yaml", describe="says")] == [s["id"] for s in stubs]


def test_suggest_with_the_code_removed_gives_the_solutions_cell_to_edit(course):
    stubs = entries(suggest(course, A, code="remove"))
    solution = {c.grade_id: c.code for c in load_spec(course / "source" / A / f"{A}.ipynb", A).answers}
    assert stubs[0]["code"].startswith("# TODO: change the solution's cell below into the mistake\n")
    assert stubs[0]["code"].rstrip().endswith(solution["decoder_block"].rstrip())
    assert "bilinear" not in stubs[0]["code"]
    with pytest.raises(KitError, match="--code must be one of"):
        suggest(course, A, code="keep")


def test_the_summary_lists_the_groups_with_one_example_each(course):
    write_reports(course, assignments=[A])
    html = (course / "reports" / A / "summary.html").read_text()
    section = html[html.index('id="unexplained"') : html.index("Findings per student")]
    assert "3 failing answer cells that no catalogued mistake explains, in 2 groups" in section
    assert "<code>decoder_block</code>: 2 students" in section and "Example: s1; also s2." in section
    assert "s3" not in section and "s5" not in section  # explained, and passing
    assert "got shape (None, 12, 12, 8)" in section and "bilinear" in section  # the example's cell
    assert "autograder mistakes suggest autoencoder" in section


def test_the_command_prints_the_stubs(course):
    from autograder.cli import cli

    out = CliRunner().invoke(cli, ["mistakes", "suggest", A, "--course", str(course), "--code", "remove"])
    assert out.exit_code == 0, out.output
    assert [s["grade_id"] for s in entries(out.output)] == ["decoder_block", "encoder_block"]


def test_anonymise_strips_comments_docstrings_and_prints_and_refuses_what_does_not_parse():
    code = anonymise(WRONG_DECODER)
    assert code is not None and "Zebedee" not in code and "zebedee" not in code and "print" not in code
    assert code.startswith("def define_decoder_block(x, num_filters):\n    x = layers.UpSampling2D(")
    assert anonymise("def f(:\n") is None
    assert anonymise('def f():\n    """only a docstring"""\n') == "def f():\n    pass\n"


@pytest.mark.slow
def test_the_demo_class_and_generated_wrong_cells(tmp_path):
    """Graded for real (the value checks; training takes no part in the catalogue): the demo class, where the
    catalogued mistakes are explained, and three generated wrong decoders, two of them alike."""
    from autograder.batch import grade_paths
    from autograder.config import load_course
    from autograder.demo import build_class
    from autograder.grading import Grader

    course = load_course(copy_course(tmp_path))
    build_class(course.paths, A)
    wrong = {
        "gen-1": WRONG_DECODER,
        "gen-2": WRONG_DECODER.replace(NAMED, "# another comment\n"),
        "gen-3": WRONG_DECODER.replace("size=3", "size=4"),
    }
    for student, code in wrong.items():
        nb = notebook(SOLUTION)
        cell(nb, "decoder_block")["source"] = code
        (course.paths.submission_dir(student, A)).mkdir(parents=True)
        (course.paths.submission_dir(student, A) / f"{A}.ipynb").write_text(json.dumps(nb))
    grader = without_quality(Grader.create(course, A, profile="cpu"))
    summary = grade_paths(course, [course.paths.submitted], assignment=A, graders={A: grader}, log=lambda *_: None)
    assert summary.graded == 7, str(summary)
    write_reports(course.root, assignments=[A])
    html = (course.root / "reports" / A / "summary.html").read_text()
    section = html[html.index('id="unexplained"') : html.index("Findings per student")]
    assert "<code>decoder_block</code>: 2 students" in section and "Example: gen-1; also gen-2." in section
    assert "demo-ada" not in section and "demo-cyd" not in section  # the solution; the catalogued mistakes
    stubs = entries(suggest(course.root, A))
    decoders = [s for s in stubs if s["grade_id"] == "decoder_block"]
    assert len(decoders) >= 2 and "size=3" in decoders[0]["code"] and "Zebedee" not in str(stubs)
    assert any("size=4" in s["code"] for s in decoders[1:])
