"""release/ and solutions/ are what nbgrader makes from source/ today."""

import json

import pytest

from autograder.config import load_course
from autograder.generate import out_of_sync
from conftest import ROOT


def test_release_and_solutions_match_a_fresh_generation():
    course = load_course(ROOT)
    names = [a for a in course.assignments if course.source_notebook(a).is_file()]
    assert out_of_sync(course, names) == []


@pytest.mark.parametrize("name", ["autoencoder"])
def test_release_has_no_solutions_or_hidden_tests_and_source_has_no_outputs(name):
    release = (ROOT / "release" / name / f"{name}.ipynb").read_text()
    assert "BEGIN SOLUTION" not in release and "BEGIN HIDDEN TESTS" not in release
    assert "raise NotImplementedError()" in release
    source = json.loads((ROOT / "source" / name / f"{name}.ipynb").read_text())
    assert all(not c.get("outputs") for c in source["cells"] if c["cell_type"] == "code")
    assert not (ROOT / "release" / name / "mistakes.yaml").exists(), "the catalogue stays with the instructor"
