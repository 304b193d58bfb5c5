"""The Gradescope zip, unpacked into a root laid out like Gradescope's and run there offline: its prepare step (what
setup.sh runs after installing), then run_autograder for a solution, an untouched release notebook, a broken file
and an empty submission. setup.sh's installs need the network and root, so the kit's own interpreter stands in for
the image's virtual environment (AUTOGRADER_PYTHON)."""

import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import copy_course

from autograder.config import load_course
from autograder.gradescope import build_zip, find_notebook, pinned_requirements

ROOT = Path(__file__).resolve().parent.parent
A = "autoencoder"


@pytest.fixture(scope="module")
def gradescope_root(tmp_path_factory):
    """The zip of a course that counts the student's trained weights too, unpacked where Gradescope unpacks it, with
    the image's cache filled by the prepare step."""
    tmp = tmp_path_factory.mktemp("gradescope")
    (tmp / "course").mkdir()
    course = copy_course(tmp / "course", (A,), count=("retrain", "submitted"))
    shutil.copytree(ROOT / "requirements", course / "requirements")  # the zip pins the course's lock file
    zip_path = build_zip(load_course(course), A, tmp / "out")
    root = tmp / "autograder"
    with zipfile.ZipFile(zip_path) as z:
        z.extractall(root / "source")
        for info in z.infolist():  # ZipFile.extractall drops the permission bits that Gradescope keeps
            mode = info.external_attr >> 16
            if mode:
                os.chmod(root / "source" / info.filename, stat.S_IMODE(mode))
    env = _env(root)
    subprocess.run(
        [sys.executable, "-m", "autograder.gradescope", "prepare", "--root", str(root), "--assignment", A],
        env=env,
        check=True,
        capture_output=True,
        timeout=600,
    )
    return root


def _env(root: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTOGRADER_", "AUTOENCODER_KIT_"))}
    env.update(
        AUTOGRADER_ROOT=str(root),
        AUTOGRADER_PYTHON=sys.executable,
        AUTOENCODER_KIT_CACHE=str(root / "source" / "cache"),
    )
    return env


def _submit(root: Path, files: dict[str, bytes]) -> dict:
    """One Gradescope run: a fresh submission and results folder, then run_autograder as Gradescope calls it."""
    for folder in ("submission", "results"):
        shutil.rmtree(root / folder, ignore_errors=True)
        (root / folder).mkdir()
    for name, data in files.items():
        (root / "submission" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "submission" / name).write_bytes(data)
    done = subprocess.run(
        [str(root / "source" / "run_autograder")], env=_env(root), capture_output=True, text=True, timeout=900, cwd=root
    )
    results = root / "results" / "results.json"
    assert results.is_file(), f"run_autograder left no results.json:\n{done.stdout}\n{done.stderr}"
    return json.loads(results.read_text())


def test_the_zip_holds_the_scripts_the_assignment_and_nothing_else(tmp_path):
    zip_path = build_zip(load_course(ROOT), A, tmp_path)
    with zipfile.ZipFile(zip_path) as z:
        names = set(z.namelist())
        modes = {i.filename: i.external_attr >> 16 for i in z.infolist()}
        course_yaml = z.read("course.yaml").decode()
        requirements = z.read("requirements.txt").decode().split()
    assert {
        "setup.sh",
        "run_autograder",
        "course.yaml",
        "requirements.txt",
        f"source/{A}/{A}.ipynb",
        f"source/{A}/mistakes.yaml",
        f"release/{A}/{A}.ipynb",
        f"reference_weights/{A}/thresholds.json",
    } <= names
    assert modes["setup.sh"] & 0o111 and modes["run_autograder"] & 0o111
    assert [n for n in names if n.startswith("wheels/")] and all(
        n.endswith(".whl") for n in names if n.startswith("wheels/")
    )
    others = [a for a in load_course(ROOT).assignments if a != A]
    assert not [n for n in names if any(f"/{o}/" in n for o in others)], "other assignments stay out"
    assert not [n for n in names if n.startswith(("solutions/", "tests/", "autograder/", "submitted/"))]
    assert not [n for n in names if n.startswith(f"reference_weights/{A}/") and n.count("/") > 2], (
        "another profile's models (a GPU's) stay out: Gradescope has no GPU"
    )
    assert f"\n  {A}:" in course_yaml and not any(f"\n  {o}:" in course_yaml for o in others)
    pinned = {r.split("==")[0].lower().replace("_", "-") for r in requirements}
    assert {"tensorflow-cpu", "keras", "nbformat", "numpy"} <= pinned
    assert not pinned & {"nbgrader", "dask", "pytest", "jupyterlab"}, "instructor-only tools stay out"


def test_pinned_requirements_follow_the_lock(tmp_path):
    lock = tmp_path / "lock.txt"
    lines = (ROOT / "requirements" / "lock.txt").read_text().splitlines()
    lock.write_text("\n".join(line for line in lines if not line.lower().startswith("jinja2==")))
    with pytest.raises(Exception, match="does not pin jinja2"):
        pinned_requirements(lock)


def test_the_notebook_is_found_wherever_gradescope_puts_it(tmp_path):
    assert find_notebook(tmp_path, A)[0] is None and "Upload your autoencoder.ipynb" in find_notebook(tmp_path, A)[1]
    (tmp_path / "sub" / ".ipynb_checkpoints").mkdir(parents=True)
    (tmp_path / "sub" / ".ipynb_checkpoints" / f"{A}.ipynb").write_text("{}")
    (tmp_path / "sub" / "draft.ipynb").write_text("{}")
    assert find_notebook(tmp_path, A) == (tmp_path / "sub" / "draft.ipynb", "")
    (tmp_path / f"{A}.ipynb").write_text("{}")
    chosen, note = find_notebook(tmp_path, A)
    assert chosen == tmp_path / f"{A}.ipynb" and "sub/draft.ipynb" in note


def test_run_autograder_grades_a_solution_and_its_trained_weights_fully(gradescope_root):
    """The student uploads the notebook and the weights file the notebook's training section saved."""
    weights = ROOT / "solutions" / A / f"{A}.weights.h5"
    upload = {
        "mine.ipynb": (ROOT / "solutions" / A / f"{A}.ipynb").read_bytes(),
        f"{A}.weights.h5": weights.read_bytes(),
    }
    result = _submit(gradescope_root, upload)
    assert result["max_score"] > 0 and result["score"] == result["max_score"], result.get("output")
    environment = result["extra_data"]["environment"]
    assert environment["profile"] == "cpu" and isinstance(environment["fences"], list)
    assert result["extra_data"]["weights"]["sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()


def test_run_autograder_without_the_weights_file_costs_that_check_alone(gradescope_root):
    result = _submit(gradescope_root, {f"{A}.ipynb": (ROOT / "solutions" / A / f"{A}.ipynb").read_bytes()})
    (submitted,) = [t for t in result["tests"] if t["name"].startswith("submitted_weights")]
    assert submitted["score"] == 0 and "no trained weights submitted" in submitted["output"]
    assert result["score"] == result["max_score"] - submitted["max_score"] > 0


def test_run_autograder_gives_an_untouched_release_notebook_zero(gradescope_root):
    result = _submit(gradescope_root, {f"{A}.ipynb": (ROOT / "release" / A / f"{A}.ipynb").read_bytes()})
    assert result["score"] == 0 and result["max_score"] > 0 and result["tests"]


def test_run_autograder_answers_a_broken_file_with_reasons(gradescope_root):
    result = _submit(gradescope_root, {f"{A}.ipynb": b'{"cells": [ this is not json'})
    assert result["score"] == 0
    assert "notebook" in result["output"].lower(), result["output"]


def test_run_autograder_answers_an_empty_submission(gradescope_root):
    result = _submit(gradescope_root, {"answers.pdf": b"%PDF-1.4"})
    assert result["score"] == 0 and "No notebook was found" in result["output"]


def test_run_autograder_writes_results_even_when_the_kit_cannot_start(gradescope_root, tmp_path):
    env = _env(gradescope_root)
    env["AUTOGRADER_PYTHON"] = str(tmp_path / "no-python-here")
    shutil.rmtree(gradescope_root / "results", ignore_errors=True)
    subprocess.run([str(gradescope_root / "source" / "run_autograder")], env=env, capture_output=True, timeout=60)
    result = json.loads((gradescope_root / "results" / "results.json").read_text())
    assert result["score"] == 0 and "could not start" in result["output"]
