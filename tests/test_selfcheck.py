"""The student's side: `autograder check`, and public checks run inside the student's own kernel."""

import json

import pytest

from autograder.checks import CheckFailed
from autograder.selfcheck import self_check
from conftest import RELEASE, ROOT, SOLUTION, cell, notebook, run_cells, with_answer
from autograder.mistakes import load_mistakes


def test_self_check_passes_the_solution_and_fails_the_stubs(tmp_path):
    lines = []
    assert self_check(SOLUTION, log=lines.append)
    assert "4 of 4 public checks passed." in "\n".join(lines)
    lines.clear()
    assert not self_check(RELEASE, log=lines.append)
    assert "not implemented yet" in "\n".join(lines)


def test_self_check_shows_got_and_expected(tmp_path):
    padding = next(m for m in load_mistakes(ROOT, "autoencoder") if m.id == "encoder_valid_padding")
    path = with_answer(RELEASE, tmp_path / "mine.ipynb", "encoder_block", padding.code)
    lines = []
    assert not self_check(path, log=lines.append)
    assert "got output shape (12, 12, 16), expected (14, 14, 16)" in "\n".join(lines)


def test_public_checks_in_the_students_kernel():
    """The release notebook's test cells, run in-process as Jupyter would: they pass on the solution's code."""
    ns = {}
    run_cells(notebook(SOLUTION), ns, {"setup", "answer"})
    run_cells(notebook(RELEASE), ns, {"test"})  # prints the checks, raises nothing
    wrong = next(m for m in load_mistakes(ROOT, "autoencoder") if m.id == "encoder_no_pooling")
    exec(wrong.code, ns)
    with pytest.raises(CheckFailed, match=r"got output shape \(28, 28, 16\), expected \(14, 14, 16\)"):
        exec("".join(cell(notebook(RELEASE), "encoder_block_shapes")["source"]), ns)
