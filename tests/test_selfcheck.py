"""The student's side: `autograder check`, and public checks run inside the student's own kernel."""

import json

import pytest
from conftest import RELEASE, ROOT, SOLUTION, cell, notebook, run_cells, with_answer

from autograder.checks import CheckFailed
from autograder.mistakes import load_mistakes
from autograder.selfcheck import self_check


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


def test_self_check_counts_by_kind_what_the_autograder_runs_beyond_it(tmp_path):
    """The release holds no hidden check; the counts come from the source, through the release's metadata."""
    from autograder.notebook import load_spec
    from autograder.selfcheck import unseen_counts

    lines = []
    assert not self_check(RELEASE, log=lines.append)
    counts = unseen_counts(load_spec(ROOT / "source" / "autoencoder" / "autoencoder.ipynb", "autoencoder"))
    assert counts == {"hidden": 4, "structure": 6, "training": 1, "submitted": 1}
    assert lines[-1].endswith(
        "12 more checks are run by the autograder, not here: 4 hidden (the public checks' "
        "properties on inputs you do not see); 6 on structure (the kinds, order and settings of "
        "your layers, and their parameter count); 1 training (your model retrained with the "
        "course's recipe and measured against thresholds); 1 on your trained model (the weights you submit, "
        "measured on held-out data against thresholds)."
    ), lines[-1]
    # no weights file beside the release notebook: said, as the grader would say it (docs/student-weights.md)
    assert any("FAIL trained weights: no trained weights submitted" in line for line in lines), lines


@pytest.mark.parametrize("assignment", ["autoencoder", "vae", "cvae", "denoising", "gan"])
def test_each_release_records_the_counts_of_its_source(assignment):
    from autograder.config import load_course
    from autograder.grading.plans import counted
    from autograder.notebook import load_spec
    from autograder.selfcheck import METADATA_KEY, public_calls, unseen_counts

    source = load_spec(ROOT / "source" / assignment / f"{assignment}.ipynb", assignment)
    source = counted(source, load_course(ROOT).assignment(assignment).count)  # the quality checks that count
    release = json.loads((ROOT / "release" / assignment / f"{assignment}.ipynb").read_text())
    assert release["metadata"][METADATA_KEY]["unseen_checks"] == unseen_counts(source)
    public = public_calls(load_spec(ROOT / "release" / assignment / f"{assignment}.ipynb", assignment))
    assert len(public) + sum(unseen_counts(source).values()) == len(source.calls)


def test_a_student_with_jax_alone_runs_on_jax(monkeypatch):
    from autograder import runtime

    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    monkeypatch.setattr(runtime, "package_version", lambda name: "0.10" if name == "jax" else None)
    assert runtime.students_backend() == "jax"
    monkeypatch.setattr(runtime, "package_version", lambda name: None)
    with pytest.raises(Exception, match=r"autoencoder-course-kit\[tensorflow\]"):
        runtime.students_backend()
    monkeypatch.setenv("KERAS_BACKEND", "torch")
    assert runtime.students_backend() == "torch"
