"""The graded notebook for formgrader, built from a submission without running it (no worker, no TensorFlow)."""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path

import nbformat
import pytest
from conftest import RELEASE, ROOT, SOLUTION, cell, notebook

from autograder.graded_notebook import (
    HIDDEN_PLACEHOLDER,
    SUMMARY_CELL_ID,
    graded_notebook,
    without_hidden_tests,
    write_graded_notebook,
)
from autograder.notebook import load_release, load_spec
from autograder.results import CheckResult, Finding, ManualAnswer, SubmissionResult

A = "autoencoder"


@pytest.fixture(scope="module")
def spec():
    return load_spec(ROOT / "source" / A / f"{A}.ipynb", A)


@pytest.fixture(scope="module")
def release():
    return load_release(ROOT, A)


def result_for(path: Path, spec, findings=()) -> SubmissionResult:
    checks = [
        CheckResult(
            f"{t.grade_id}: shape",
            t.grade_id,
            "shape",
            t.points / 2,
            t.points,
            False,
            "got (7, 7), expected (14, 14)",
            hidden=True,
            diagnosis="pooling twice",
        )
        for t in spec.tests
    ]
    sha = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None
    return SubmissionResult(
        A, "ada", checks, list(findings), spec.max_score, 1.0, "test", sha, "2026-11-26T12:00:00+00:00"
    )


def build(path: Path, spec, release, **kw):
    nb, manual = graded_notebook(path, spec, release, result_for(path, spec, **kw))
    node = nbformat.from_dict(nb)
    nbformat.validate(node)  # formgrader reads it with nbformat
    from nbgrader.nbgraderformat import MetadataValidator

    MetadataValidator().validate_nb(node)  # and nbgrader checks its cell metadata as its own tools do
    return nb, manual


def graded_ids(nb: dict) -> list[str]:
    return [c["metadata"]["nbgrader"]["grade_id"] for c in nb["cells"] if "nbgrader" in c["metadata"]]


def save(tmp_path: Path, nb: dict) -> Path:
    path = tmp_path / "submission.ipynb"
    path.write_text(json.dumps(nb))
    return path


def test_the_solution_as_formgrader_reads_it(spec, release):
    from nbgrader.utils import compute_checksum

    nb, manual = build(SOLUTION, spec, release)
    assert (
        nb["cells"][0]["id"] == SUMMARY_CELL_ID
        and f"{spec.max_score / 2:g} / {spec.max_score:g} points" in nb["cells"][0]["source"]
    )
    assert graded_ids(nb) == graded_ids(release)  # each graded cell once, in the release's order
    assert nb["metadata"]["kernelspec"] == release["metadata"]["kernelspec"]
    for gid in graded_ids(release):
        mine, released, source = cell(nb, gid), cell(release, gid), next(c for c in spec.cells if c.grade_id == gid)
        meta = dict(mine["metadata"]["nbgrader"])
        if source.kind in ("answer", "manual") or not released["metadata"]["nbgrader"].get("locked"):
            # the release's checksum (none for an unlocked cell that is not an answer) tells an untouched answer
            assert meta == released["metadata"]["nbgrader"]
            assert mine["source"] == "".join(cell(notebook(SOLUTION), gid)["source"])
        else:
            assert mine["source"] == without_hidden_tests(source.code)
            assert meta.pop("checksum") == compute_checksum(nbformat.from_dict(mine))  # of the text written
            assert meta == {k: v for k, v in released["metadata"]["nbgrader"].items() if k != "checksum"}
    shapes = cell(nb, "encoder_block_shapes")["source"]
    public = 'run_check("block_output_shape", define_encoder_block, input_shape=(28, 28, 1)'
    assert public in shapes and HIDDEN_PLACEHOLDER in shapes  # the public checks stay, the hidden ones are a comment
    assert "HIDDEN TESTS" not in json.dumps(nb) and "input_shape=(7, 7, 3)" not in json.dumps(nb)
    [output] = cell(nb, "encoder_block_shapes")["outputs"]
    assert output["output_type"] == "stream" and output["text"].startswith("Autograder: 1 / 2 points\n")
    assert "FAILED  1 / 2  encoder_block_shapes: shape (hidden)" in output["text"]
    assert "likely mistake: pooling twice" in output["text"]
    assert all(
        not c.get("outputs")
        for c in nb["cells"]
        if c["cell_type"] == "code"
        and c["metadata"].get("nbgrader", {}).get("grade_id") != "encoder_block_shapes"
        and not c["metadata"].get("nbgrader", {}).get("points")
    )
    assert manual == [ManualAnswer("bottleneck_answer", 3.0, answered=True)]


@pytest.mark.parametrize(
    "code, expected",
    [
        ("a()\n### BEGIN HIDDEN TESTS\nsecret(1)\n### END HIDDEN TESTS\nb()\n", f"a()\n{HIDDEN_PLACEHOLDER}\nb()\n"),
        ("a()\n  ### BEGIN HIDDEN TESTS\nsecret(1)\n### END HIDDEN TESTS", f"a()\n  {HIDDEN_PLACEHOLDER}"),
        ("### BEGIN HIDDEN TESTS\nsecret(1)\n", f"{HIDDEN_PLACEHOLDER}\n"),  # never closed: hidden to the end
        (
            "x = 1\n### BEGIN HIDDEN TESTS\ns(1)\n### END HIDDEN TESTS\n"
            "### BEGIN HIDDEN TESTS\ns(2)\n### END HIDDEN TESTS\n",
            f"x = 1\n{HIDDEN_PLACEHOLDER}\n{HIDDEN_PLACEHOLDER}\n",
        ),
        ("no hidden tests\n", "no hidden tests\n"),
    ],
)
def test_hidden_test_blocks_become_a_placeholder(code, expected):
    assert without_hidden_tests(code) == expected


def test_no_hidden_test_of_any_assignment_reaches_its_graded_notebook():
    """Every hidden run_check line of every source notebook is absent from the graded notebook, whose cells nbgrader
    views and exports show as they are."""
    from autograder.notebook import HIDDEN_BEGIN, HIDDEN_END

    for source in sorted((ROOT / "source").glob("*/*.ipynb")):
        a = source.parent.name
        spec, release = load_spec(source, a), load_release(ROOT, a)
        hidden = [line.strip() for c in spec.tests for line in _hidden_lines(c.code, HIDDEN_BEGIN, HIDDEN_END)]
        assert hidden, a  # each assignment has hidden checks, so this test looks at something
        result = SubmissionResult(a, "ada", [], [], spec.max_score, 1.0, "test")
        text = json.dumps(graded_notebook(ROOT / "solutions" / a / f"{a}.ipynb", spec, release, result)[0])
        assert not [line for line in hidden if json.dumps(line)[1:-1] in text], a


def _hidden_lines(code: str, begin: str, end: str) -> list[str]:
    lines, inside = [], False
    for line in code.splitlines():
        if line.strip() in (begin, end):
            inside = line.strip() == begin
        elif inside and line.strip():
            lines.append(line)
    return lines


def test_an_untouched_release_has_its_answers_blank_and_its_written_answer_unanswered(spec, release):
    nb, manual = build(RELEASE, spec, release)
    assert manual == [ManualAnswer("bottleneck_answer", 3.0, answered=False)]
    assert "raise NotImplementedError()" in cell(nb, "encoder_block")["source"]


def test_a_tampered_submission_is_graded_as_the_grader_read_it(tmp_path, spec, release):
    nb = notebook(SOLUTION)
    early = copy.deepcopy(cell(nb, "encoder_block"))
    cell(nb, "encoder_block")["source"] = "def define_encoder_block(x, num_filters):\n    return x  # the last\n"
    nb["cells"].insert(1, early)  # an earlier copy: the grader takes the last one
    del cell(nb, "decoder_block")["metadata"]["nbgrader"]  # found by its cell id
    nb["cells"].remove(cell(nb, "decoder_block_shapes"))  # deleted: put back after its predecessor
    cell(nb, "setup")["source"] = "import os\nos.system('rm -rf /')\n"  # edited: the source's text counts
    cell(nb, "reconstruction_quality")["outputs"] = [
        {"output_type": "display_data", "metadata": {}, "data": {"text/html": "<script>alert(1)</script>"}}
    ]
    cell(nb, "build_model")["metadata"]["nbgrader"]["grade_id"] = "bonus"  # unknown: no grade for it
    nb["cells"].append(
        {
            "cell_type": "code",
            "id": "cell-05",
            "metadata": {},
            "source": "helper = 1",
            "outputs": [],
            "execution_count": 3,
        }
    )  # a repeated id
    nb["cells"].append(
        {
            "cell_type": "raw",
            "id": "bad id!",
            "metadata": {"raw_mimetype": "text/html"},
            "source": "<script>alert(2)</script>",
        }
    )
    got, _ = build(save(tmp_path, nb), spec, release)

    answers = [c for c in got["cells"] if c["source"].startswith("def define_encoder_block")]
    assert [("nbgrader" in c["metadata"], "the last" in c["source"]) for c in answers] == [(False, False), (True, True)]
    assert cell(got, "decoder_block")["source"] == "".join(cell(notebook(SOLUTION), "decoder_block")["source"])
    ids = graded_ids(got)
    assert ids.index("decoder_block_shapes") == ids.index("decoder_block") + 1 and "bonus" not in ids
    assert cell(got, "build_model")["source"] == next(c.code for c in spec.cells if c.grade_id == "build_model")
    assert "rm -rf" not in json.dumps(got) and "<script>alert(1)" not in json.dumps(got)
    assert cell(got, "decoder_block_shapes")["outputs"][0]["text"].startswith("Autograder: 1 / 2 points")
    cell_ids = [c["id"] for c in got["cells"]]
    assert len(set(cell_ids)) == len(cell_ids)
    last = got["cells"][-1]
    assert last["cell_type"] == "markdown" and "```text\n<script>alert(2)</script>\n```" in last["source"]


def test_student_html_in_markdown_is_made_harmless_and_plain_markdown_is_kept(tmp_path, spec, release):
    nb = notebook(SOLUTION)
    cell(nb, "bottleneck_answer")["source"] = "Bigger is sharper, `x < 3`, **bold** $z \\in R^2$"
    nb["cells"].append(
        {
            "cell_type": "markdown",
            "id": "note",
            "metadata": {},
            "source": 'Note <img src=x onerror="alert(1)"> <b>ok</b>',
        }
    )
    got, manual = build(save(tmp_path, nb), spec, release)
    assert cell(got, "bottleneck_answer")["source"] == "Bigger is sharper, `x < 3`, **bold** $z \\in R^2$"
    assert got["cells"][-1]["source"] == 'Note &lt;img src=x onerror="alert(1)"&gt; <b>ok</b>'
    assert manual[0].answered


@pytest.mark.parametrize(
    "link",
    [
        "[see](javascript:alert(1))",
        "[see](JaVa\tScRiPt:alert(1))",
        "[see](&#106;avascript:alert(1))",
        "[see][1]\n\n[1]: javascript:alert(1)",
    ],
)
def test_a_script_link_in_markdown_is_shown_as_text(tmp_path, spec, release, link):
    nb = notebook(SOLUTION)
    cell(nb, "bottleneck_answer")["source"] = f"My answer, {link}"
    got, _ = build(save(tmp_path, nb), spec, release)
    assert cell(got, "bottleneck_answer")["source"] == f"```text\nMy answer, {link}\n```"


def test_an_unreadable_submission_gives_the_release_to_grade_by_hand(tmp_path, spec, release):
    path = tmp_path / "broken.ipynb"
    path.write_text('{"cells": [ not json')
    finding = Finding("not_json", "The file is not a notebook: it is not valid JSON (x).")
    got, manual = build(path, spec, release, findings=[finding])
    assert graded_ids(got) == graded_ids(release)
    summary = got["cells"][0]["source"]
    assert "could not be read, so this is the released notebook" in summary and "not valid JSON" in summary
    assert manual == [ManualAnswer("bottleneck_answer", 3.0, answered=False)]


@pytest.mark.parametrize(
    "cells",
    [
        [1, None, "text", {"cell_type": "code"}, {"cell_type": "widget", "source": "x"}],
        [
            {"cell_type": "markdown", "metadata": {"nbgrader": ["grade_id"]}, "source": [1, "a", None]},
            {"cell_type": "code", "metadata": "x", "source": {"a": 1}, "id": 7},
        ],
    ],
)
def test_hostile_cells_never_stop_it(tmp_path, spec, release, cells):
    nb = notebook(SOLUTION)
    nb["cells"] = cells + nb["cells"]
    got, _ = build(save(tmp_path, nb), spec, release)
    assert graded_ids(got) == graded_ids(release)


def test_findings_sit_in_a_fence_longer_than_any_backticks_they_quote(tmp_path, spec, release):
    finding = Finding("cell_metadata_changed", "Cell 'x': its grade_id was changed to '````<script>'.")
    got, _ = build(SOLUTION, spec, release, findings=[finding])
    summary = got["cells"][0]["source"]
    assert "\n`````text\n- Cell 'x': its grade_id was changed to '````<script>'.\n`````" in summary


def test_written_twice_it_is_the_same_bytes(tmp_path, spec, release):
    result = result_for(SOLUTION, spec)
    first, second = tmp_path / "a.ipynb", tmp_path / "b.ipynb"
    assert write_graded_notebook(SOLUTION, first, spec, release, result) == write_graded_notebook(
        SOLUTION, second, spec, release, result.to_dict()
    )
    assert first.read_bytes() == second.read_bytes()


def test_written_answers_go_through_results_json():
    result = SubmissionResult(A, "ada", [], [], 14.0, 1.0, "test", manual=[ManualAnswer("q", 3.0, answered=False)])
    data = result.to_dict()
    assert data["extra_data"]["manual"] == [{"grade_id": "q", "max_score": 3.0, "answered": False}]
    assert data["score"] == 0 and data["max_score"] == 14.0  # the autograder's points alone (Gradescope's view)
    assert SubmissionResult.from_dict(data).manual == result.manual
    assert "manual" not in SubmissionResult(A, "ada", [], [], 14.0, 1.0, "test").to_dict()["extra_data"]


# ---- written by the batch ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def scripted_grader():
    """The course's grader whose `grade` is scripted: the batch's own writing, without a worker."""
    from autograder.config import load_course
    from autograder.grading import Grader

    real = Grader.create(load_course(ROOT), A, profile="cpu")
    fake = copy.copy(real)
    fake.grade = lambda path, *, student, weights=None: result_for(Path(path), real.spec)
    fake.prepare = lambda: None
    return fake


def test_the_batch_writes_the_graded_notebook_then_results_json_listing_the_written_answers(tmp_path, scripted_grader):
    from autograder.batch import grade_paths
    from autograder.config import load_course

    folder = tmp_path / "submitted" / "ada" / A
    folder.mkdir(parents=True)
    (folder / f"{A}.ipynb").write_bytes(RELEASE.read_bytes())
    out = tmp_path / "autograded"
    grade_paths(
        load_course(ROOT),
        [tmp_path / "submitted"],
        assignment=A,
        out=out,
        graders={A: scripted_grader},
        progress=False,
        log=lambda *_: None,
    )
    graded = json.loads((out / "ada" / A / f"{A}.ipynb").read_text())
    assert graded_ids(graded) == graded_ids(notebook(RELEASE))
    result = json.loads((out / "ada" / A / "results.json").read_text())
    assert result["extra_data"]["manual"] == [{"grade_id": "bottleneck_answer", "max_score": 3.0, "answered": False}]


def test_the_batch_never_writes_over_the_submission(tmp_path, scripted_grader):
    from autograder.batch import grade_paths
    from autograder.config import load_course

    mine = tmp_path / f"{A}.ipynb"
    mine.write_bytes(SOLUTION.read_bytes())
    said = []
    grade_paths(
        load_course(ROOT),
        [mine],
        assignment=A,
        out=tmp_path,
        graders={A: scripted_grader},
        progress=False,
        log=said.append,
    )
    assert mine.read_bytes() == SOLUTION.read_bytes()
    assert any("no graded notebook, it would replace the submission" in line for line in said)
    # a TA looks at the written answer, since the grader could not say whether it was answered
    assert json.loads((tmp_path / "results.json").read_text())["extra_data"]["manual"][0]["answered"] is True


def test_the_cell_a_student_may_edit_shows_their_text_without_a_checksum(tmp_path, spec, release):
    """The shortcut flag's cell is unlocked in the release: formgrader shows what the student set, not the source's."""
    nb = notebook(SOLUTION)
    flag = cell(nb, "use_reference_weights")
    flag["source"] = "".join(flag["source"]).replace("USE_REFERENCE_WEIGHTS = False", "USE_REFERENCE_WEIGHTS = True")
    assert "USE_REFERENCE_WEIGHTS = True" in flag["source"]
    graded, _ = build(save(tmp_path, nb), spec, release)
    shown = cell(graded, "use_reference_weights")
    assert "USE_REFERENCE_WEIGHTS = True" in "".join(shown["source"])
    assert "checksum" not in shown["metadata"]["nbgrader"] and not shown["metadata"]["nbgrader"].get("locked")
    assert "checksum" in cell(graded, "train")["metadata"]["nbgrader"]  # a locked cell keeps one
