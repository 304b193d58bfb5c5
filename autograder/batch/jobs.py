"""The per-submission jobs of a batch: which submissions there are, whether a result on disk is current, grading
one submission without ever stopping the batch, and writing its result.

    find_tasks  -> Task per (student, assignment): the notebook, where its result goes, nbgrader's timestamp
    graded_with -> what besides the notebook a result depends on (kit, source, release, reference files, settings)
    staleness   -> None when results.json names the same notebook sha256 and the same `graded_with`, else why not
    grade_safely / error_result -> a SubmissionResult, a `grader_error` finding in place of an exception
    write_result -> feedback.html then results.json, each written atomically

Nothing here knows about pools: the thread pool and the Dask pool (and the Dask workers) all use these functions.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import hashlib
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .. import __version__
from ..checks.quality.weights_file import SubmittedWeights
from ..config import Course
from ..errors import KitError
from ..feedback import render_feedback
from ..files import SUBMITTED, CoursePaths, atomic_write
from ..grading import Grader
from ..results import GRADER_ERROR, MACHINE_BUSY, Finding, MalformedResult, SubmissionResult, read_result, result_json
from ..student_files import read_small_file


@dataclass(frozen=True)
class Task:
    notebook: Path
    student: str
    assignment: str
    out_dir: Path
    timestamp: Path | None = None  # nbgrader's submitted/<s>/<a>/timestamp.txt, copied beside the result


@dataclass(frozen=True)
class Job:
    """One submission to grade, with what a pool needs to grade it and to tell whether a result is current."""

    task: Task
    sha256: str | None  # of the notebook's bytes, read before grading
    grader: Grader
    graded_with: dict[str, str]


# ---------------------------------------------------------------------------------------------- finding the work


def find_tasks(
    course: Course, paths: list[Path], *, assignment: str | None, out: Path | None, notes: list[str] | None = None
) -> list[Task]:
    """The submissions under `paths`: notebooks, folders of notebooks, or nbgrader's submitted/<s>/<a>/ tree. Where
    one student's folder holds several notebooks, `<assignment>.ipynb` (else the newest) is graded and `notes`
    says which were left out."""
    found: list[tuple[Path, str, str | None]] = []
    for path in paths:
        path = path.resolve()
        if path.is_file():
            found.append((path, *_who(path)))
        else:
            notebooks = sorted(path.rglob("*.ipynb"))
            notebooks = [nb for nb in notebooks if ".ipynb_checkpoints" not in nb.parts]
            if not notebooks:
                raise KitError(f"no notebooks under {path}.")
            found += [(nb, *_who(nb)) for nb in notebooks]
    tasks: dict[Path, Task] = {}
    single = len(found) == 1 and out is not None and paths[0].is_file()
    for nb, student, layout_assignment in found:
        name = assignment or layout_assignment
        if name is None:
            if len(course.assignments) != 1:
                raise KitError(
                    f"cannot tell which assignment {nb.name} is: pass --assignment ({', '.join(course.assignments)})."
                )
            name = next(iter(course.assignments))
        if assignment and layout_assignment and layout_assignment != assignment:
            continue  # another assignment's folder in a submitted/ tree
        base = out or course.paths.autograded
        stamp = nb.parent / "timestamp.txt" if layout_assignment and (nb.parent / "timestamp.txt").is_file() else None
        task = Task(nb, student, name, base if single else base / student / name, stamp)
        other = tasks.get(task.out_dir)
        if other is not None:
            keep, drop = sorted([other, task], key=_preference, reverse=True)
            if notes is not None:
                notes.append(
                    f"{student}: graded {keep.notebook.name}, not {drop.notebook} (one notebook per "
                    f"student and assignment)."
                )
            task = keep
        tasks[task.out_dir] = task
    return sorted(tasks.values(), key=lambda t: (t.assignment, t.student))


def _preference(task: Task) -> tuple[bool, float, str]:
    """The notebook named after the assignment first, then the most recently changed."""
    return task.notebook.name == f"{task.assignment}.ipynb", task.notebook.stat().st_mtime, task.notebook.name


def _who(notebook: Path) -> tuple[str, str | None]:
    """(student, assignment) from nbgrader's submitted/<student>/<assignment>/<file>.ipynb, else from the name."""
    parts = notebook.parts
    if len(parts) >= 4 and parts[-4] == SUBMITTED:
        return parts[-3], parts[-2]
    return notebook.stem, None


def hidden_submissions(course: Course, tasks: list[Task]) -> list[Path]:
    """Folders of submissions that no worker may read: each submission's folder, minus those inside a folder that
    is hidden already (the course's submitted/), reduced to the outermost."""
    hidden = CoursePaths(course.root.resolve()).private()
    folders: list[Path] = []
    for parent in sorted({t.notebook.parent for t in tasks}, key=lambda p: len(p.parts)):
        if not any(parent.is_relative_to(h) for h in hidden + folders):
            folders.append(parent)
    return folders


# --------------------------------------------------------------------------------------------- what a result depends on


# Modules (paths inside the package) that cannot change a results.json: the CLI, collecting, reports and feedback
# pages, notebook generation, calibration (its output, thresholds.json, is hashed with the reference files), the
# batch's progress display. Any other module counts, new ones too.
NOT_GRADING = (
    "cli.py",
    "collect.py",
    "demo.py",
    "reports/",
    "feedback.py",
    "generate.py",
    "calibrate.py",
    "templates/",
    "batch/progress.py",
    "batch/certs.py",  # the cluster's TLS certificates
    "doctor.py",  # diagnoses the machine, grades nothing
    "train.py",  # trains a student's model on their side: grading reads only the weights file it wrote
)


@functools.lru_cache(maxsize=1)
def kit_fingerprint() -> str:
    """The kit's version and a hash of the code that grades: changed grading code makes every result stale."""
    package = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*")):
        rel = path.relative_to(package).as_posix()
        if (
            path.is_file()
            and "__pycache__" not in path.parts
            and path.suffix in (".py", ".json", ".yaml")
            and not rel.startswith(NOT_GRADING)
        ):
            digest.update(rel.encode() + b"\0" + path.read_bytes() + b"\0")
    return f"{__version__}+{digest.hexdigest()[:12]}"


def graded_with(grader: Grader) -> dict[str, str]:
    """Everything besides the notebook that can change a result, as short hashes (stored in results.json, so a
    rerun can say what changed): the kit; the source notebook (checks, points, setup cells); the release notebook
    (locked cells are compared with it); the reference files (weights, thresholds, the mistake catalogue); the
    settings (training profile, seed, worker limits, data sources)."""
    folder = grader.course.paths.reference_dir(grader.assignment)
    reference = hashlib.sha256()
    for path in sorted(folder.rglob("*")) if folder.is_dir() else []:
        if path.is_file():
            reference.update(path.relative_to(folder).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    reference.update(json.dumps([m.key() for m in grader.mistakes]).encode())
    settings = {
        "profile": grader.profile.recipe(),
        "thresholds": grader.thresholds,
        "seed": grader.course.seed,
        "limits": dataclasses.asdict(grader.limits),
        "data": grader.course.data,
        "backend": grader.backend,
    }
    return {
        "kit": kit_fingerprint(),
        "source": grader.spec.sha256[:16],
        "release": _short(json.dumps(grader.release, sort_keys=True)),
        "reference": reference.hexdigest()[:16],
        "settings": _short(json.dumps(settings, sort_keys=True, default=str)),
    }


def _short(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def file_sha256(path: Path) -> str | None:
    try:
        with open(path, "rb") as fh:
            return hashlib.file_digest(fh, "sha256").hexdigest()
    except OSError:
        return None


def staleness(job: Job) -> str | None:
    """None when the submission's results.json is current; else why it must be graded (for the log)."""
    path = job.task.out_dir / "results.json"
    if not path.exists():
        return "new"
    try:
        old = read_result(path)
    except MalformedResult:
        return "unreadable result"
    if grader_failed(old.findings):
        return "grader error last time"
    if job.sha256 is None or old.notebook_sha256 != job.sha256:
        return "notebook changed"
    if getattr(job.grader, "submitted", None) is not None:  # the trained weights beside the notebook are graded too
        current = job.grader.find_weights(job.task.notebook)
        if (current.sha256 if current is not None else None) != old.weights_sha256:
            return "trained weights changed"
    if old.graded_with is None:
        return "graded by an older kit"
    changed = [k for k in job.graded_with if old.graded_with.get(k) != job.graded_with[k]]
    return f"{' and '.join(changed)} changed" if changed else None


def grader_failed(findings: Iterable[Finding]) -> bool:
    """Whether a result's findings say the grader, not the submission, failed (`results.GRADER_FAULTS`)."""
    return any(f.grader_fault for f in findings)


# ---------------------------------------------------------------------------------------------- one submission


# A grading that the machine's load stopped (a MACHINE_BUSY finding) is thrown away and done again after these
# pauses; the last one stands, as a grader fault that the next `autograder grade` retries in its turn.
BUSY_BACKOFF_S = (15.0, 60.0)


def grade_safely(
    grader: Grader,
    path: Path,
    *,
    student: str,
    weights: SubmittedWeights | None = None,
    backoff: tuple[float, ...] = BUSY_BACKOFF_S,
) -> SubmissionResult:
    """Grade one submission; an exception in the grader becomes the result (a `grader_error` finding), never a
    crash of the batch. A grading the machine was too busy for is retried after each pause of `backoff`.
    `weights`: as `Grader.grade` takes them."""
    for retries, pause in enumerate((*backoff, None)):
        start = time.monotonic()
        try:
            result = grader.grade(path, student=student, weights=weights)
        except Exception as err:  # noqa: BLE001 - one submission's failure is its own result
            return error_result(grader, student, err, elapsed=time.monotonic() - start, sha256=file_sha256(path))
        result.retries = retries
        if pause is None or not any(f.kind == MACHINE_BUSY for f in result.findings):
            return result
        time.sleep(pause)
    raise AssertionError("unreachable: the last pause is None")


def error_result(
    grader: Grader, student: str, err: BaseException | str, *, elapsed: float = 0.0, sha256: str | None = None
) -> SubmissionResult:
    """The result of a submission the grader failed on: no checks, one `grader_error` finding (graded again by the
    next run)."""
    what = err if isinstance(err, str) else f"{type(err).__name__}: {err}"
    finding = Finding(
        GRADER_ERROR,
        f"The grader failed on this submission ({what[:300]}). This is not a verdict "
        "on your work: it will be graded again.",
    )
    return SubmissionResult(
        assignment=grader.assignment,
        student=student,
        checks=[],
        findings=[finding],
        max_score=grader.spec.max_score,
        execution_time=elapsed,
        kit_version=__version__,
        notebook_sha256=sha256,
        timestamp=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    )


def write_result(task: Task, result: SubmissionResult) -> None:
    """nbgrader's timestamp (when the submission has one), feedback.html, then results.json, each atomically: a
    reader, or a rerun after a crash, sees a whole results.json or none, and a results.json always has its page."""
    stamp = read_small_file(task.timestamp) if task.timestamp is not None else None
    if stamp is not None:
        atomic_write(task.out_dir / "timestamp.txt", stamp)
    atomic_write(task.out_dir / "feedback.html", render_feedback(result))
    atomic_write(task.out_dir / "results.json", result_json(result))
