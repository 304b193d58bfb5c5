"""release/ and solutions/ are what nbgrader makes from source/ today, and what they let a student do."""

import ast
import json

import pytest
from conftest import ROOT, cell, copy_course, finding_kinds, graded, without_quality

from autograder.config import load_course
from autograder.generate import out_of_sync
from autograder.notebook import load_spec
from autograder.submission import read_submission


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


# ------------------------------------------------------------------------------- the shortcut past the training

ASSIGNMENTS = ("autoencoder", "vae", "cvae", "denoising", "gan")
FLAG = "use_reference_weights"  # the grade_id of the cell that holds USE_REFERENCE_WEIGHTS


def assigned_and_read(code: str) -> tuple[set[str], set[str]]:
    """The names a cell assigns and the names it reads, from its syntax tree."""
    names = [node for node in ast.walk(ast.parse(code)) if isinstance(node, ast.Name)]
    return ({n.id for n in names if isinstance(n.ctx, ast.Store)}, {n.id for n in names if isinstance(n.ctx, ast.Load)})


def cell_code(spec, grade_id: str) -> str:
    return next(c.code for c in spec.cells if c.grade_id == grade_id)


def with_flag_flipped(src, dest):
    """A copy of the notebook `src` whose flag cell is edited as a student would: the flag set to the other value
    (True where the release says False) and the weights looked for elsewhere."""
    nb = json.loads(src.read_text())
    flag = cell(nb, FLAG)
    original = "".join(flag["source"]).splitlines(keepends=True)
    edited = []
    for line in original:
        if line.startswith("USE_REFERENCE_WEIGHTS = "):
            line = line.replace("True", "False") if "= True" in line else line.replace("False", "True")
        elif line.startswith("REFERENCE_WEIGHTS = "):
            line = 'REFERENCE_WEIGHTS = Path("~/Downloads/weights.h5").expanduser()\n'
        edited.append(line)
    assert sum(a != b for a, b in zip(edited, original)) == 2, "both settings must be found and changed"
    flag["source"] = edited
    dest.write_text(json.dumps(nb))
    return dest


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_the_reference_weights_flag_is_released_in_its_own_editable_cell(name):
    """The notebook tells the student to set USE_REFERENCE_WEIGHTS to skip minutes of training: the flag must be in
    a cell that JupyterLab lets them edit (nbgrader's LockCells leaves a cell alone unless it is locked, graded or a
    solution), just before the locked training cell, which reads it and no longer sets it."""
    spec = load_spec(ROOT / "source" / name / f"{name}.ipynb", name)
    kinds = {c.grade_id: c.kind for c in spec.cells}
    assert kinds[FLAG] == kinds["train"] == "heavy"  # the grader runs neither
    train = next(c for c in spec.cells if c.grade_id == "train")
    assigned, read = assigned_and_read(train.code)
    assert "USE_REFERENCE_WEIGHTS" in read and not assigned & {"USE_REFERENCE_WEIGHTS", "REFERENCE_WEIGHTS"}
    assert {"USE_REFERENCE_WEIGHTS", "REFERENCE_WEIGHTS"} <= assigned_and_read(cell_code(spec, FLAG))[0]
    release = json.loads((ROOT / "release" / name / f"{name}.ipynb").read_text())
    solutions = json.loads((ROOT / "solutions" / name / f"{name}.ipynb").read_text())
    flag = cell(release, FLAG)
    meta = flag["metadata"]
    assert flag["cell_type"] == "code" and meta.get("editable", True) is True and meta.get("deletable", True) is True
    assert [meta["nbgrader"][key] for key in ("grade", "solution", "locked")] == [False, False, False]
    assert "checksum" not in meta["nbgrader"]  # nbgrader records a checksum only for a cell it will compare
    following = release["cells"][release["cells"].index(flag) + 1]
    assert following["metadata"]["nbgrader"]["grade_id"] == "train" and following["metadata"]["editable"] is False
    assert cell(solutions, FLAG)["source"] == flag["source"]
    # Where the student decides, the notebook says what the training costs, and that it was measured.
    above = "".join(release["cells"][release["cells"].index(flag) - 1]["source"])
    assert "USE_REFERENCE_WEIGHTS = True" in above and "2-core" in above and "measured" in above
    assert "minute" in "".join(following["source"]).splitlines()[0]


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_a_flipped_flag_is_no_finding_but_an_edited_training_cell_is(tmp_path, name):
    """A student who flips the flag, in the released notebook or in a finished one, is not reported for tampering
    (nor for code the grader did not run); the same line written into the locked training cell still is."""
    spec = load_spec(ROOT / "source" / name / f"{name}.ipynb", name)
    release = json.loads((ROOT / "release" / name / f"{name}.ipynb").read_text())
    for folder in ("release", "solutions"):
        path = with_flag_flipped(ROOT / folder / name / f"{name}.ipynb", tmp_path / f"{folder}.ipynb")
        sub = read_submission(path, spec, release)
        assert sub.readable and sub.findings == [], (folder, sub.findings)
    nb = json.loads((ROOT / "solutions" / name / f"{name}.ipynb").read_text())
    cell(nb, "train")["source"] = ["USE_REFERENCE_WEIGHTS = True\n", *cell(nb, "train")["source"]]
    path = tmp_path / "edited.ipynb"
    path.write_text(json.dumps(nb))
    found = {(f.kind, f.grade_id) for f in read_submission(path, spec, release).findings}
    assert ("locked_cell_edited", "train") in found


@pytest.mark.parametrize(
    "name", [pytest.param(a, marks=[] if a == "autoencoder" else pytest.mark.slow) for a in ASSIGNMENTS]
)
def test_a_solution_with_the_flag_flipped_is_graded_in_full_without_findings(tmp_path, name):
    """Through the whole grader (its worker, without the training checks): full marks and no finding."""
    from autograder.grading import Grader

    (tmp_path / "course").mkdir()
    root = copy_course(tmp_path / "course", assignments=(name,))
    grader = without_quality(Grader.create(load_course(root), name, profile="cpu"))
    result = graded(grader, with_flag_flipped(ROOT / "solutions" / name / f"{name}.ipynb", tmp_path / "s.ipynb"))
    assert finding_kinds(result) == set()
    assert result["max_score"] > 0 and result["score"] == result["max_score"]


def test_a_generation_that_nbgrader_refuses_leaves_the_release_as_it_was(tmp_path):
    from autograder.errors import KitError
    from autograder.generate import generate

    root = copy_course(tmp_path)
    release = root / "release" / "autoencoder" / "autoencoder.ipynb"
    before = release.read_bytes()
    (root / "source" / "autoencoder" / "autoencoder.ipynb").write_text('{"cells": [')  # nbgrader cannot read it
    with pytest.raises(KitError, match="nbgrader generate_assignment autoencoder failed"):
        generate(load_course(root), ["autoencoder"])
    assert release.read_bytes() == before
