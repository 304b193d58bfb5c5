"""The one file layer: atomic writes, the data cache folder, the course's paths and its thresholds.

Every file the kit writes for someone else to read (a cache another worker may be filling at the same moment, a
results.json a rerun trusts, thresholds.json, a report) goes through `atomic_write` or `atomic_path`: the bytes go to
a uniquely named temporary file in the destination's own folder, are flushed to disk, and are renamed over the
destination. A reader sees the old file or the new one, never half of one; two writers of the same file never share
a temporary name, so the last rename wins and neither fails.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import KitError


def _umask() -> int:
    """The process's umask, read without changing it (os.umask can only be read by setting it, which would race
    with the grader's other threads creating files); 0o022 where /proc does not say."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    return 0o022


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], *, suffix: str = "") -> Iterator[Path]:
    """A temporary path beside `path` for a writer that wants a file name (numpy, h5py, zipfile). Once the block
    ends without an exception the file is synced and renamed to `path`; on an exception it is removed. `suffix`
    keeps an extension that the writer insists on (np.savez appends `.npz` to any other name)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{suffix}", dir=path.parent)
    os.fchmod(fd, 0o666 & ~_umask())  # mkstemp's 0600 would hide thresholds and reports from a TA's account
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def atomic_write(path: str | os.PathLike[str], data: bytes | str) -> Path:
    """Write `data` (text is UTF-8) to `path` atomically; returns the path."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        fh.write(raw)
    return Path(path)


def write_json(path: str | os.PathLike[str], value: Any, *, indent: int | None = 1) -> Path:
    """`value` as JSON (sorted keys, a final newline), atomically."""
    return atomic_write(path, json.dumps(value, indent=indent, sort_keys=True) + "\n")


def cache_dir(override: str | os.PathLike[str] | None = None) -> Path:
    """The data cache folder (decoded MNIST, generated faces): `override` (course.yaml's data.cache_dir), else
    $AUTOENCODER_KIT_CACHE, else ~/.cache/autoencoder-kit. Shared by every process on the machine: write into it
    only with `atomic_write` / `atomic_path`."""
    path = Path(override or os.environ.get("AUTOENCODER_KIT_CACHE") or Path.home() / ".cache" / "autoencoder-kit")
    path = path.expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


PUBLISHED_PROFILE = "cpu"  # the training profile whose reference models ship in reference_weights/<a>/ itself

# The names of a course's folders and files (an nbgrader course directory, plus the kit's own), spelled only here:
# CoursePaths joins them to a root, and other modules take a name alone only where there is no root to join it to
# (an archive's members, the parts of a submission's path).
COURSE_FILE = "course.yaml"  # its presence marks a folder as a course root
SOURCE, RELEASE, SOLUTIONS, REFERENCE = "source", "release", "solutions", "reference_weights"
SUBMITTED, AUTOGRADED, FEEDBACK, REPORTS = "submitted", "autograded", "feedback", "reports"
GRADEBOOK, GRADING_CACHE = "gradebook.db", ".autograder-cache"
MISTAKES, VARIANTS, THRESHOLDS, RESULTS = "mistakes.yaml", "variants.yaml", "thresholds.json", "results.json"

# What no worker may read, relative to the course root: the answers, the instructor's files, other students' work,
# and the kit's own tests and benchmarks, which hold the catalogues' code in a checkout of the bundled course.
PRIVATE = (
    SOURCE,
    SOLUTIONS,
    REFERENCE,
    SUBMITTED,
    AUTOGRADED,
    FEEDBACK,
    REPORTS,
    GRADEBOOK,
    GRADING_CACHE,
    "tests",
    "bench",
)


@dataclass(frozen=True)
class CoursePaths:
    """Where a course keeps what the kit reads and writes, relative to its root (an nbgrader course directory).
    Every course path the kit builds comes from here."""

    root: Path

    @property
    def course_file(self) -> Path:
        return self.root / COURSE_FILE

    # --- the instructor's side: source/, release/, solutions/, reference_weights/

    def source_dir(self, assignment: str) -> Path:
        return self.root / SOURCE / assignment

    def source_notebook(self, assignment: str) -> Path:
        return self.source_dir(assignment) / f"{assignment}.ipynb"

    def mistakes_file(self, assignment: str) -> Path:
        """The catalogue of known mistakes (mistakes.py), beside the source notebook."""
        return self.source_dir(assignment) / MISTAKES

    def variants_file(self, assignment: str) -> Path:
        """The catalogue of correct answers written otherwise (mistakes.py), beside the source notebook."""
        return self.source_dir(assignment) / VARIANTS

    def release_dir(self, assignment: str) -> Path:
        return self.root / RELEASE / assignment

    def release_notebook(self, assignment: str) -> Path:
        return self.release_dir(assignment) / f"{assignment}.ipynb"

    def solutions_dir(self, assignment: str) -> Path:
        return self.root / SOLUTIONS / assignment

    def solution_notebook(self, assignment: str) -> Path:
        return self.solutions_dir(assignment) / f"{assignment}.ipynb"

    def reference_dir(self, assignment: str) -> Path:
        """Reference weights, thresholds.json, manifest.json and the measuring models of one assignment."""
        return self.root / REFERENCE / assignment

    def models_dir(self, assignment: str, profile: str) -> Path:
        """The reference models that calibrating `profile` trained. The default profile's are the published ones,
        which the notebooks load, beside thresholds.json; another profile's go into a folder of its own, so that
        calibrating on a GPU never replaces them."""
        folder = self.reference_dir(assignment)
        return folder if profile == PUBLISHED_PROFILE else folder / profile

    @staticmethod
    def reference_weights_name(assignment: str) -> str:
        """The file name of the whole reference model's weights, which the notebook loads: calibration writes it
        into models_dir, generation publishes the default profile's beside the release notebook. Not the name a
        student's own trained weights have (`<assignment>.weights.h5`, docs/student-weights.md): the two never mix
        in a student's folder."""
        return f"{assignment}.reference.weights.h5"

    def reference_weights(self, assignment: str) -> Path:
        """The published reference weights (the default profile's)."""
        return self.reference_dir(assignment) / self.reference_weights_name(assignment)

    def thresholds_file(self, assignment: str) -> Path:
        return self.reference_dir(assignment) / THRESHOLDS

    def grading_cache(self, assignment: str) -> Path:
        """The course's own cache (the reference's probe results), kept apart from the data cache."""
        return self.root / GRADING_CACHE / assignment

    # --- the students' side: submitted/, autograded/, feedback/, reports/, the gradebook

    @property
    def submitted(self) -> Path:
        """nbgrader's submitted/<student>/<assignment>/ tree."""
        return self.root / SUBMITTED

    def submission_dir(self, student: str, assignment: str) -> Path:
        return self.submitted / student / assignment

    @property
    def autograded(self) -> Path:
        return self.root / AUTOGRADED

    def autograded_dir(self, student: str, assignment: str) -> Path:
        return self.autograded / student / assignment

    def results_file(self, student: str, assignment: str) -> Path:
        """The results.json that grading wrote for one student's submission."""
        return self.autograded_dir(student, assignment) / RESULTS

    def feedback_dir(self, student: str, assignment: str) -> Path:
        """Where nbgrader's release_feedback looks for a student's feedback page."""
        return self.root / FEEDBACK / student / assignment

    @property
    def reports(self) -> Path:
        return self.root / REPORTS

    @property
    def gradebook(self) -> Path:
        """nbgrader's gradebook database."""
        return self.root / GRADEBOOK

    def private(self) -> list[Path]:
        """The folders and files of PRIVATE under this root, whether they exist or not."""
        return [self.root / name for name in PRIVATE]


def read_thresholds(paths: CoursePaths, assignment: str) -> dict[str, dict[str, Any]]:
    """thresholds.json's profiles (profile name -> {"metrics": {...}, ...}); {} when the file does not exist.
    A file that exists but cannot be read is an error that names it."""
    path = paths.thresholds_file(assignment)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as err:
        raise KitError(f"{path} cannot be read ({err}): run `autograder calibrate {assignment}` again.") from None
    profiles = data.get("profiles") if isinstance(data, dict) else None
    if not isinstance(profiles, dict):
        raise KitError(f"{path} has no 'profiles' mapping: run `autograder calibrate {assignment}` again.")
    return profiles


BACKENDS = "backends"  # a profile's calibrations on other Keras backends than its own, by backend


def calibration(entry: dict[str, Any], backend: str | None) -> dict[str, Any]:
    """The calibration of one profile's entry that grading on `backend` uses. An entry is one calibration (its
    `calibrated_on` names the backend); where another backend's calibration differs it sits under
    entry["backends"][backend]. A backend without one of its own (or None) gets the entry itself, as every file
    written before backends had keys does."""
    others = entry.get(BACKENDS)
    own = others.get(backend) if backend and isinstance(others, dict) else None
    return own if isinstance(own, dict) else entry


def profile_thresholds(
    paths: CoursePaths, assignment: str, profile: str, *, backend: str | None = None
) -> dict[str, Any]:
    """One profile's thresholds ({"metrics": {...}}) for grading on `backend` (`calibration`), as the quality
    checks' judges read them."""
    profiles = read_thresholds(paths, assignment)
    path = paths.thresholds_file(assignment)
    if not profiles:
        raise KitError(f"no {path}: run `autograder calibrate {assignment} --profile {profile}` first.")
    if profile not in profiles:
        raise KitError(
            f"{path} has no '{profile}' profile: run `autograder calibrate {assignment} --profile "
            f"{profile}` on a machine with that hardware, or grade with the cpu profile "
            "(`--profile cpu`, or AUTOGRADER_PROFILE=cpu)."
        )
    return {"metrics": calibration(profiles[profile], backend)["metrics"]}
