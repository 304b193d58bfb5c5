"""release/ and solutions/ are what nbgrader makes from source/ today."""

import json

import pytest

from autograder.config import load_course
from autograder.generate import out_of_sync
from autograder.notebook import load_spec
from conftest import ROOT, cell


def test_release_and_solutions_match_a_fresh_generation():
    course = load_course(ROOT)
    names = [a for a in course.assignments if course.source_notebook(a).is_file()]
    assert out_of_sync(course, names) == []


@pytest.mark.parametrize("name", ["autoencoder", "vae", "cvae"])
def test_written_answers_are_released_blank_and_unlocked_with_their_points(name):
    """nbgrader's ClearSolutions blanks a markdown answer ("YOUR ANSWER HERE") and keeps its metadata, so a student
    can write in it and formgrader knows its points; the solutions keep the model answer."""
    spec = load_spec(ROOT / "source" / name / f"{name}.ipynb", name)
    release = json.loads((ROOT / "release" / name / f"{name}.ipynb").read_text())
    solutions = json.loads((ROOT / "solutions" / name / f"{name}.ipynb").read_text())
    for answer in spec.manual:
        released, solved = cell(release, answer.grade_id), cell(solutions, answer.grade_id)
        assert released["cell_type"] == "markdown" and "".join(released["source"]) == "YOUR ANSWER HERE"
        meta = released["metadata"]["nbgrader"]
        assert (meta["grade"], meta["solution"], meta["locked"], meta["points"]) == (True, True, False, answer.points)
        assert "checksum" in meta and released["metadata"].get("editable", True)
        assert "".join(solved["source"]) == answer.code
        question = release["cells"][release["cells"].index(released) - 1]
        assert question["metadata"]["nbgrader"]["locked"] and question["metadata"]["editable"] is False


@pytest.mark.parametrize("name", ["autoencoder", "vae", "cvae"])
def test_release_has_no_solutions_or_hidden_tests_and_source_has_no_outputs(name):
    release = (ROOT / "release" / name / f"{name}.ipynb").read_text()
    assert "BEGIN SOLUTION" not in release and "BEGIN HIDDEN TESTS" not in release
    assert "raise NotImplementedError()" in release
    source = json.loads((ROOT / "source" / name / f"{name}.ipynb").read_text())
    assert all(not c.get("outputs") for c in source["cells"] if c["cell_type"] == "code")
    assert not (ROOT / "release" / name / "mistakes.yaml").exists(), "the catalogue stays with the instructor"
