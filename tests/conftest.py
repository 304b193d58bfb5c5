"""Shared fixtures: a scratch copy of the course with a tiny training profile, and notebook mutators."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# A profile small enough for the default test run (a few seconds of training); the real ones are in course.yaml.
TINY = {
    "train_images": 2500,
    "test_images": 500,
    "epochs": 3,
    "batch_size": 32,
    "learning_rate": 0.002,
    "latent_dim": 16,
    "filters": [8, 16],
    "wall_s": 60,
}


def copy_course(dest: Path, assignments=("autoencoder",), *, count=("retrain",)) -> Path:
    """A copy of the course's files for `assignments`. `count`: the quality checks that count in the copy; the
    retraining one alone by default, so that a solution graded without its trained weights file beside it gets
    full marks (tests/test_student_weights.py counts the submitted model too)."""
    for item in ("course.yaml", "nbgrader_config.py"):
        shutil.copy2(ROOT / item, dest / item)
    config = yaml.safe_load((dest / "course.yaml").read_text())
    for body in config["assignments"].values():
        body["quality"]["count"] = list(count)
    (dest / "course.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    for folder in ("source", "release", "solutions", "reference_weights"):
        for name in assignments:
            if (ROOT / folder / name).is_dir():
                shutil.copytree(ROOT / folder / name, dest / folder / name)
    return dest


def calibrated_course(dest: Path, assignment: str, profile: dict, wall_s: int):
    """A copy of the course with one assignment whose cpu profile is `profile` and whose cells and checks get `wall_s`
    each (hostile loops end sooner), calibrated with one seed."""
    from autograder.calibrate import calibrate
    from autograder.config import load_course

    root = copy_course(dest, assignments=(assignment,))
    config = yaml.safe_load((root / "course.yaml").read_text())
    config["assignments"][assignment]["quality"]["profiles"]["cpu"] = json.loads(json.dumps(profile))
    config["worker"]["wall_s"] = wall_s
    (root / "course.yaml").write_text(yaml.safe_dump(config))
    calibrate(load_course(root), assignment, profile="cpu", seeds=1, log=lambda *_: None)
    return load_course(root)


def without_quality(grader):
    """The same grader without its training-based checks: every other check, in a few seconds per notebook."""
    from dataclasses import replace

    training = {call.id for call in grader.spec.training_calls}
    cells = tuple(
        c for c in grader.spec.cells if not (c.kind == "test" and any(call.id in training for call in c.calls))
    )
    return replace(grader, spec=replace(grader.spec, cells=cells), thresholds={})


def solution_namespace(assignment: str) -> dict:
    """The source notebook's setup and answer cells, run in this process (instructor code): the reference functions."""
    from autograder.calibrate import run_source
    from autograder.notebook import load_spec

    return run_source(load_spec(ROOT / "source" / assignment / f"{assignment}.ipynb", assignment))


def catalogue(assignment: str) -> dict:
    """The assignment's catalogued mistakes (source/<a>/mistakes.yaml), by id."""
    from autograder.mistakes import load_mistakes

    return {m.id: m for m in load_mistakes(ROOT, assignment)}


def finding_kinds(result: dict) -> set[str]:
    return {f["kind"] for f in result["extra_data"]["findings"]}


# ------------------------------------------------------------------------------ one assignment per test module
# A test module of one assignment names it in ASSIGNMENT and gives the small cpu profile its whole-notebook tests
# train with in PROFILE; these fixtures then give it a calibrated copy of the course, its grader, that grader
# without the training checks, and the source solution's functions.


@pytest.fixture(scope="module")
def assignment_course(request, tmp_path_factory):
    """A copy of the course whose cpu profile for the module's ASSIGNMENT is its PROFILE, calibrated once."""
    assignment = request.module.ASSIGNMENT
    return calibrated_course(
        tmp_path_factory.mktemp(f"{assignment}-course"), assignment, request.module.PROFILE, wall_s=30
    )


@pytest.fixture(scope="module")
def assignment_grader(request, assignment_course):
    from autograder.grading import Grader

    return Grader.create(assignment_course, request.module.ASSIGNMENT, profile="cpu")


@pytest.fixture(scope="module")
def checks_only(assignment_grader):
    """The module's grader without its training checks."""
    return without_quality(assignment_grader)


@pytest.fixture(scope="module")
def ns(request):
    """The module's assignment's source solution, run in this process: the reference functions by name."""
    return solution_namespace(request.module.ASSIGNMENT)


@pytest.fixture(scope="session")
def tiny_course(tmp_path_factory):
    """A copy of the course whose autoencoder cpu profile is TINY, calibrated once for the session."""
    return calibrated_course(tmp_path_factory.mktemp("course"), "autoencoder", TINY, wall_s=20)


@pytest.fixture(scope="session")
def roomy_course(tiny_course, tmp_path_factory):
    """The tiny course with 120 s per cell instead of 20: for tests that grade several notebooks at once. The limit
    is wall-clock time, and two gradings at once on a loaded 2-core machine can take 20 s to import TensorFlow in a
    setup cell (which then fails every check, so the results would depend on the machine's load)."""
    from autograder.config import load_course

    root = tmp_path_factory.mktemp("roomy") / "course"
    shutil.copytree(tiny_course.root, root)
    config = yaml.safe_load((root / "course.yaml").read_text())
    config["worker"]["wall_s"] = 120
    (root / "course.yaml").write_text(yaml.safe_dump(config))
    return load_course(root)


@pytest.fixture(scope="session")
def grader(tiny_course):
    from autograder.grading import Grader

    return Grader.create(tiny_course, "autoencoder", profile="cpu")


def notebook(path: Path) -> dict:
    return json.loads(Path(path).read_text())


def cell(nb: dict, grade_id: str) -> dict:
    return next(c for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("grade_id") == grade_id)


def with_answer(src: Path, dest: Path, grade_id: str, code: str) -> Path:
    """A copy of `src` whose answer cell `grade_id` holds `code`."""
    nb = notebook(src)
    cell(nb, grade_id)["source"] = code
    dest.write_text(json.dumps(nb))
    return dest


SOLUTION = ROOT / "solutions" / "autoencoder" / "autoencoder.ipynb"
RELEASE = ROOT / "release" / "autoencoder" / "autoencoder.ipynb"


def graded(grader, path: Path, student: str = "student") -> dict:
    return grader.grade(path, student=student).to_dict()


def by_grade_id(result: dict) -> dict[str, float]:
    totals: dict[str, float] = {}
    for t in result["tests"]:
        gid = t["extra_data"]["grade_id"]
        totals[gid] = totals.get(gid, 0) + t["score"]
    return {gid: round(v, 3) for gid, v in totals.items()}


def run_cells(nb: dict, ns: dict, kinds: set[str], *, skip: tuple[str, ...] = ()) -> None:
    """Run a notebook's code cells of the given kinds ("setup", "answer", "test") in `ns`, as Jupyter would,
    leaving out cells tagged `heavy` (full training) and the grade ids in `skip`."""
    for c in nb["cells"]:
        meta = c["metadata"].get("nbgrader", {})
        if c["cell_type"] != "code" or "heavy" in c["metadata"].get("tags", []) or meta.get("grade_id") in skip:
            continue
        kind = "test" if meta.get("grade") else "answer" if meta.get("solution") else "setup"
        if kind in kinds:
            exec("".join(c["source"]), ns)


def with_code(ns: dict, code: str, name: str):
    """`name` as defined by `code` run on top of a copy of `ns` (a student's variant of one function)."""
    local = dict(ns)
    exec(code, local)
    return local[name]


def probe_and_judge(name: str, fn, reference, **args):
    """The verdict of check `name` on `fn` against `reference`, both probed here with `args`."""
    from autograder import checks

    check = checks.get(name)
    return check.judge(check.probe(fn, **args), check.probe(reference, **args), hidden=False)


def assert_self_check(solution: Path, release: Path) -> None:
    """`autograder check` passes the solution and fails the release's stubs as not implemented."""
    from autograder.selfcheck import self_check

    lines: list[str] = []
    assert self_check(solution, log=lines.append), "\n".join(lines)
    lines.clear()
    assert not self_check(release, log=lines.append)
    assert "not implemented yet" in "\n".join(lines)
