"""The Gradescope zip as shipped, in a root laid out as Gradescope's: the zip unpacked into a folder that a private
mount namespace binds at /autograder, its setup.sh run as Gradescope runs it (root, the system's PATH, installs from
the package index into /autograder/venv), then run_autograder for a solution, the release notebook, a broken file
and a renamed upload. Unlike tests/test_gradescope.py, nothing of the checkout's venv is used: this is what a course
gets. Slow (setup.sh installs TensorFlow) and needs root with `unshare`, as on the development machines and CI."""

import json
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from autograder.config import load_course
from autograder.gradescope import build_zip

ROOT = Path(__file__).resolve().parent.parent
A = "autoencoder"
MOUNT = Path("/autograder")
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"  # what Gradescope's image runs with

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        os.geteuid() != 0 or shutil.which("unshare") is None,
        reason="binding a folder at /autograder needs root and unshare",
    ),
]


def _in_gradescope_root(root: Path, script: str, log: Path) -> subprocess.CompletedProcess:
    """Run `script` (bash) with `root` bound at /autograder, in a mount namespace of its own."""
    env = {"PATH": SYSTEM_PATH, "HOME": "/root", "LANG": "C.UTF-8"}
    command = f"mount --bind '{root}' {MOUNT} && cd {MOUNT} && {script}"
    done = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "bash", "-c", command],
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    log.write_text(done.stdout + done.stderr)
    return done


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    """The unpacked zip after setup.sh: the autograder's image, as Gradescope builds it."""
    tmp = tmp_path_factory.mktemp("gradescope-image")
    zip_path = build_zip(load_course(ROOT), A, tmp / "out")
    root = tmp / "root"
    for folder in ("source", "submission", "results"):
        (root / folder).mkdir(parents=True)
    with zipfile.ZipFile(zip_path) as z:
        z.extractall(root / "source")  # as Gradescope does; it keeps the scripts' modes, which extractall drops
    for script in ("setup.sh", "run_autograder"):
        (root / "source" / script).chmod(0o755)
    shutil.copy2(root / "source" / "run_autograder", root / "run_autograder")
    made = not MOUNT.exists()
    if made:
        MOUNT.mkdir()
    try:
        done = _in_gradescope_root(root, "bash source/setup.sh", tmp / "setup.log")
        assert done.returncode == 0, f"setup.sh failed:\n{(done.stdout + done.stderr)[-3000:]}"
        yield root, tmp
    finally:
        if made:
            MOUNT.rmdir()


def _submit(image, label: str, files: dict[str, bytes]) -> tuple[dict, str]:
    root, tmp = image
    for folder in ("submission", "results"):
        shutil.rmtree(root / folder)
        (root / folder).mkdir()
    for name, data in files.items():
        (root / "submission" / name).write_bytes(data)
    done = _in_gradescope_root(root, "./run_autograder", tmp / f"{label}.log")
    results = root / "results" / "results.json"
    assert results.is_file(), f"no results.json:\n{done.stdout}\n{done.stderr}"
    text = results.read_text()
    log = done.stdout + done.stderr
    assert "Traceback" not in log + text, log[-3000:]
    return json.loads(text), log


SOLUTION = (ROOT / "solutions" / A / f"{A}.ipynb").read_bytes()
# the shipped course counts the student's trained weights: a full-marks upload carries them
WEIGHTS = {f"{A}.weights.h5": (ROOT / "solutions" / A / f"{A}.weights.h5").read_bytes()}


def test_a_solution_gets_full_marks_and_is_told_where_the_written_answer_is_graded(image):
    result, log = _submit(image, "solution", {f"{A}.ipynb": SOLUTION, **WEIGHTS})
    assert result["max_score"] > 0 and result["score"] == result["max_score"], result["output"]
    assert "graded by hand" in result["output"]
    assert "graded notebook could not be written" not in log


def test_the_release_notebook_gets_zero(image):
    result, _ = _submit(image, "release", {f"{A}.ipynb": (ROOT / "release" / A / f"{A}.ipynb").read_bytes()})
    assert result["score"] == 0 and result["max_score"] > 0 and result["tests"]


def test_a_broken_file_gets_zero_with_the_reason(image):
    result, _ = _submit(image, "broken", {f"{A}.ipynb": b'{"cells": [ this is not json'})
    assert result["score"] == 0 and "not valid JSON" in result["output"], result["output"]


def test_a_renamed_upload_is_graded_in_full(image):
    result, _ = _submit(image, "renamed", {"Homework 1 (final).ipynb": SOLUTION, **WEIGHTS})
    assert result["max_score"] > 0 and result["score"] == result["max_score"], result["output"]
