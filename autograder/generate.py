"""source/<a>/ -> release/<a>/ (student notebooks) and solutions/<a>/, through nbgrader's own converters.

nbgrader strips solutions and hidden tests, locks cells and records checksums; solutions are generated without
executing them (see nbgrader_config.py), so generation is deterministic and `in_sync` can prove the committed
notebooks match their source. The reference weights, when calibrated, are published next to the release notebook.
nbgrader runs in a scratch copy of the course, and only a generation that succeeded replaces release/<a>/ and
solutions/<a>/: nbgrader's `--force` empties the release folder before it checks the gradebook, so a refusal there
(an assignment whose cells changed after submissions were recorded) would otherwise leave no release notebook.
"""

from __future__ import annotations

import filecmp
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .config import Course
from .errors import KitError
from .files import COURSE_FILE, CoursePaths, atomic_path


def generate(course: Course, assignments: list[str]) -> list[Path]:
    """Generate release/<a>/ and solutions/<a>/ of the course. Returns the notebooks written."""
    paths = course.paths
    with _scratch_course(course, assignments) as scratch:
        _generate(course, assignments, scratch)
        copy = CoursePaths(scratch)
        for name in assignments:
            for fresh, committed in _outputs(copy, paths, name):
                made = _generated_files(fresh)
                for file in made:
                    with atomic_path(committed / file.name) as part:
                        shutil.copy2(file, part)
                for old in _generated_files(committed):
                    if old.name not in {f.name for f in made}:  # e.g. reference weights no longer calibrated
                        old.unlink()
    return [p for name in assignments for p in (paths.release_notebook(name), paths.solution_notebook(name))]


def _generate(course: Course, assignments: list[str], root: Path) -> None:
    """nbgrader's generate_assignment and generate_solution in the course copy at `root`, then the kit's part."""
    paths, out = course.paths, CoursePaths(root)
    # nbgrader runs `alembic` from PATH: the venv's bin folder must come first.
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    for name in assignments:
        for command in ("generate_assignment", "generate_solution"):
            proc = subprocess.run(
                [sys.executable, "-m", "nbgrader", command, name, "--force", "--log-level=WARN"],
                cwd=root,
                capture_output=True,
                text=True,
                env=env,
            )
            if proc.returncode != 0:
                raise KitError(f"nbgrader {command} {name} failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
        _record_unseen_checks(course, name, paths.source_notebook(name), out.release_notebook(name))
        weights = paths.reference_weights(name)
        if weights.is_file():
            with atomic_path(out.release_dir(name) / weights.name) as part:
                shutil.copy2(weights, part)
        # The solution trained with the recipe of submitted weights, under the name a student submits it with: the
        # solutions notebook then grades as a student who submits their trained model (docs/student-weights.md).
        trained = paths.models_dir(name, course.assignment(name).submitted_profile) / weights.name
        if trained.is_file():
            with atomic_path(out.solutions_dir(name) / f"{name}.weights.h5") as part:
                shutil.copy2(trained, part)


@contextmanager
def _scratch_course(course: Course, assignments: list[str]) -> Iterator[Path]:
    """A temporary course holding course.yaml, nbgrader's configuration and the assignments' sources and reference
    folders (and a gradebook of its own)."""
    with tempfile.TemporaryDirectory(prefix="autograder-generate-") as tmp:
        scratch = Path(tmp)
        for item in (COURSE_FILE, "nbgrader_config.py"):
            shutil.copy2(course.root / item, scratch / item)
        paths, copy = course.paths, CoursePaths(scratch)
        for name in assignments:
            course.assignment(name)
            if not paths.source_notebook(name).is_file():
                raise KitError(
                    f"no source notebook for '{name}' (expected {paths.source_notebook(name).relative_to(paths.root)})."
                )
            shutil.copytree(paths.source_dir(name), copy.source_dir(name))
            if paths.reference_dir(name).is_dir():
                shutil.copytree(paths.reference_dir(name), copy.reference_dir(name))
        yield scratch


def _outputs(copy: CoursePaths, paths: CoursePaths, name: str) -> tuple[tuple[Path, Path], ...]:
    """(generated, the course's) for the release and solutions folders of `name`."""
    return (
        (copy.release_dir(name), paths.release_dir(name)),
        (copy.solutions_dir(name), paths.solutions_dir(name)),
    )


def _generated_files(folder: Path) -> list[Path]:
    """What generation writes in a release or solutions folder: every file but the students' wheel that
    `make wheel` puts beside a release notebook (published, not generated)."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix != ".whl") if folder.is_dir() else []


def _record_unseen_checks(course: Course, name: str, source: Path, release: Path) -> None:
    """Write into the release notebook's metadata how many checks of each kind the autograder runs beyond its
    public ones, which `autograder check` tells the student (the release holds no hidden check to count), and the
    recipe of submitted weights (`autograder train` and `check` on a student's machine)."""
    import nbformat

    from .notebook import load_spec
    from .selfcheck import METADATA_KEY, release_metadata

    notebook = nbformat.read(release, as_version=nbformat.NO_CONVERT)
    notebook.metadata[METADATA_KEY] = release_metadata(load_spec(source, source.stem), course, name)
    nbformat.write(notebook, release)


def out_of_sync(course: Course, assignments: list[str]) -> list[str]:
    """Generate into a scratch copy of the course and list the committed files that differ from it."""
    paths = course.paths
    with _scratch_course(course, assignments) as scratch:
        _generate(course, assignments, scratch)
        copy = CoursePaths(scratch)
        differ = []
        for name in assignments:
            for fresh, committed in _outputs(copy, paths, name):
                names = sorted({p.name for d in (fresh, committed) for p in _generated_files(d)})
                for file in names:
                    a, b = fresh / file, committed / file
                    if not (a.is_file() and b.is_file() and filecmp.cmp(a, b, shallow=False)):
                        differ.append((committed / file).relative_to(paths.root).as_posix())
        return differ
