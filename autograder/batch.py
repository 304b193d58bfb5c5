"""Grading a class: find the submissions, skip those graded already, grade the rest in a pool, write each result as
soon as it is known.

    find_tasks -> plan: a submission is up to date when its results.json names the same notebook sha256 and the same
                  `graded_with` (kit, source, release, reference files, settings); --force regrades everything
               -> pool: threads in this process (`ThreadPool`), or a Dask cluster (`cluster.ClusterPool`)
               -> write_result in the main thread, one submission at a time, atomically -> BatchSummary

Why threads: grading one submission is almost all waiting on sandboxed child processes (runner.py), and a thread
that waits on a pipe holds no GIL. One process keeps one Grader per assignment: the source parsed once and the
reference computed once, before the pool starts (`Grader.reference()` is not thread-safe). A process pool would add
an interpreter, numpy and the kit per worker and pickle every result, for nothing: the limit is the sandboxed
workers, and N threads run at most N of them at a time.

Crash safety: each result is renamed into place as it arrives, so a kill at any moment loses only the submissions in
flight; the rerun grades exactly those whose results are missing or stale, and writes what an uninterrupted run
would have written. A failure inside one submission (an exception in the grader itself) becomes that submission's
result with a `grader_error` finding, which the next run grades again; it never stops the batch.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import functools
import hashlib
import json
import os
import queue
import statistics
import threading
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from . import __version__
from .config import Course
from .errors import KitError
from .feedback import format_number, render_feedback
from .grade import PRIVATE, Grader
from .results import Finding, SubmissionResult
from .student_files import read_small_file

GRADER_ERROR = "grader_error"
# How the sandbox words a run it could not start (sandbox.py's _setup_failure): the grader's fault, like a
# grader_error, so such a result is never taken as final.
SANDBOX_FAILURE = "could not set up its sandbox"


@dataclass(frozen=True)
class Task:
    notebook: Path
    student: str
    assignment: str
    out_dir: Path
    timestamp: Path | None = None  # nbgrader's submitted/<s>/<a>/timestamp.txt, copied beside the result


@dataclass(frozen=True)
class Job:
    """One submission to grade, with what the pool needs to grade it and to tell whether a result is current."""

    task: Task
    sha256: str | None  # of the notebook's bytes, read before grading
    grader: Grader
    graded_with: dict


# ---------------------------------------------------------------------------------------------- finding the work


def find_tasks(course: Course, paths: list[Path], *, assignment: str | None, out: Path | None,
               notes: list[str] | None = None) -> list[Task]:
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
                raise KitError(f"cannot tell which assignment {nb.name} is: pass --assignment "
                               f"({', '.join(course.assignments)}).")
            name = next(iter(course.assignments))
        if assignment and layout_assignment and layout_assignment != assignment:
            continue  # another assignment's folder in a submitted/ tree
        base = out or course.root / "autograded"
        stamp = nb.parent / "timestamp.txt" if layout_assignment and (nb.parent / "timestamp.txt").is_file() else None
        task = Task(nb, student, name, base if single else base / student / name, stamp)
        other = tasks.get(task.out_dir)
        if other is not None:
            keep, drop = sorted([other, task], key=lambda t: _preference(t), reverse=True)
            if notes is not None:
                notes.append(f"{student}: graded {keep.notebook.name}, not {drop.notebook} (one notebook per "
                             f"student and assignment).")
            task = keep
        tasks[task.out_dir] = task
    return sorted(tasks.values(), key=lambda t: (t.assignment, t.student))


def _preference(task: Task) -> tuple:
    """The notebook named after the assignment first, then the most recently changed."""
    return task.notebook.name == f"{task.assignment}.ipynb", task.notebook.stat().st_mtime, task.notebook.name


def _who(notebook: Path) -> tuple[str, str | None]:
    """(student, assignment) from nbgrader's submitted/<student>/<assignment>/<file>.ipynb, else from the name."""
    parts = notebook.parts
    if len(parts) >= 4 and parts[-4] == "submitted":
        return parts[-3], parts[-2]
    return notebook.stem, None


def _hidden_submissions(course: Course, tasks: list[Task]) -> list[Path]:
    """Folders of submissions that no worker may read: each submission's folder, minus those inside a folder that
    is hidden already (the course's submitted/), reduced to the outermost."""
    hidden = [course.root.resolve() / p for p in PRIVATE]
    folders: list[Path] = []
    for parent in sorted({t.notebook.parent for t in tasks}, key=lambda p: len(p.parts)):
        if not any(parent.is_relative_to(h) for h in hidden + folders):
            folders.append(parent)
    return folders


# ---------------------------------------------------------------------------------------------- what a result depends on


# Modules that cannot change a results.json: the CLI, collecting, reports and feedback pages, notebook generation,
# calibration (its output, thresholds.json, is hashed with the reference files). Any other module counts, new ones too.
NOT_GRADING = ("cli.py", "collect.py", "demo.py", "reports.py", "feedback.py", "generate.py", "calibrate.py",
               "templates/")


@functools.lru_cache(maxsize=1)
def kit_fingerprint() -> str:
    """The kit's version and a hash of the code that grades: changed grading code makes every result stale."""
    package = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*")):
        rel = path.relative_to(package).as_posix()
        if (path.is_file() and "__pycache__" not in path.parts and path.suffix in (".py", ".json", ".yaml")
                and not rel.startswith(NOT_GRADING)):
            digest.update(rel.encode() + b"\0" + path.read_bytes() + b"\0")
    return f"{__version__}+{digest.hexdigest()[:12]}"


def graded_with(grader: Grader) -> dict[str, str]:
    """Everything besides the notebook that can change a result, as short hashes (stored in results.json, so a
    rerun can say what changed): the kit; the source notebook (checks, points, setup cells); the release notebook
    (locked cells are compared with it); the reference files (weights, thresholds, the mistake catalogue); the
    settings (training profile, seed, worker limits, data sources)."""
    folder = grader.course.root / "reference_weights" / grader.assignment
    reference = hashlib.sha256()
    for path in sorted(folder.rglob("*")) if folder.is_dir() else []:
        if path.is_file():
            reference.update(path.relative_to(folder).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    reference.update(json.dumps([m.key() for m in grader.mistakes]).encode())
    settings = {"profile": grader.profile.recipe(), "thresholds": grader.thresholds, "seed": grader.course.seed,
                "limits": dataclasses.asdict(grader.limits), "data": grader.course.data}
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
    try:
        old = json.loads((job.task.out_dir / "results.json").read_text(encoding="utf-8"))
        extra = old["extra_data"]
    except FileNotFoundError:
        return "new"
    except (OSError, ValueError, KeyError, TypeError):
        return "unreadable result"
    if not isinstance(extra, dict):
        return "unreadable result"
    if grader_failed(extra.get("findings")):
        return "grader error last time"
    if job.sha256 is None or extra.get("notebook_sha256") != job.sha256:
        return "notebook changed"
    before = extra.get("graded_with")
    if not isinstance(before, dict):
        return "graded by an older kit"
    changed = [k for k in job.graded_with if before.get(k) != job.graded_with[k]]
    return f"{' and '.join(changed)} changed" if changed else None


def grader_failed(findings) -> bool:
    """Whether a result's findings say the grader, not the submission, failed."""
    return any(isinstance(f, dict) and (f.get("kind") == GRADER_ERROR or SANDBOX_FAILURE in str(f.get("message")))
               for f in findings or [])


# ---------------------------------------------------------------------------------------------- one submission


def grade_safely(grader: Grader, path: Path, *, student: str) -> dict:
    """Grade one submission; an exception in the grader becomes the result (a `grader_error` finding), never a
    crash of the batch."""
    start = time.monotonic()
    try:
        return grader.grade(path, student=student).to_dict()
    except Exception as err:  # noqa: BLE001 - one submission's failure is its own result
        return error_result(grader, student, err, elapsed=time.monotonic() - start, sha256=file_sha256(path))


def error_result(grader: Grader, student: str, err: BaseException | str, *, elapsed: float = 0.0,
                 sha256: str | None = None) -> dict:
    what = err if isinstance(err, str) else f"{type(err).__name__}: {err}"
    finding = Finding(GRADER_ERROR, f"The grader failed on this submission ({what[:300]}). This is not a verdict "
                                    "on your work: it will be graded again.")
    return SubmissionResult(
        assignment=grader.assignment, student=student, checks=[], findings=[finding], max_score=grader.spec.max_score,
        execution_time=elapsed, kit_version=__version__, notebook_sha256=sha256,
        timestamp=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")).to_dict()


def write_result(task: Task, result: dict) -> None:
    """Atomic writes: a reader (or a rerun after a crash) sees a whole results.json or none. feedback.html comes
    first, so a results.json on disk always has its page."""
    task.out_dir.mkdir(parents=True, exist_ok=True)
    files = [("feedback.html", render_feedback(result).encode()),
             ("results.json", (json.dumps(result, indent=1, sort_keys=True) + "\n").encode())]
    stamp = read_small_file(task.timestamp) if task.timestamp is not None else None
    if stamp is not None:
        files.insert(0, ("timestamp.txt", stamp))
    for name, data in files:
        tmp = task.out_dir / f".{name}.{os.getpid()}.tmp"
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, task.out_dir / name)


# ---------------------------------------------------------------------------------------------- pools


class ThreadPool:
    """`workers` threads in this process, each grading one submission at a time (see the module's docstring)."""

    def __init__(self, workers: int):
        if workers < 1:
            raise KitError(f"--workers must be at least 1, not {workers}.")
        self.workers = workers
        self.stop = threading.Event()

    def describe(self) -> str:
        return f"{self.workers} worker{'s' if self.workers > 1 else ''}"

    def choosing_profile(self):
        return contextlib.nullcontext()  # Grader.create picks the profile from this machine's GPUs

    def adapt(self, grader: Grader) -> Grader:
        return grader

    def run(self, jobs: list[Job], on_result: Callable[[Job, dict], None],
            on_interrupt: Callable[[], None]) -> bool:
        """Grade `jobs`, calling `on_result` in this thread as each finishes. A first Ctrl-C stops new gradings and
        waits for those in flight (returns True); a second one leaves at once."""
        todo: queue.Queue[Job] = queue.Queue()
        done: queue.Queue[tuple[Job, dict]] = queue.Queue()
        for job in jobs:
            todo.put(job)

        def work() -> None:
            while not self.stop.is_set():
                try:
                    job = todo.get_nowait()
                except queue.Empty:
                    return
                done.put((job, grade_safely(job.grader, job.task.notebook, student=job.task.student)))

        # Daemon threads: a second Ctrl-C leaves at once; the sandbox kills each worker when its thread is gone.
        threads = [threading.Thread(target=work, name=f"grade-{i}", daemon=True)
                   for i in range(min(self.workers, len(jobs)))]
        for t in threads:
            t.start()
        interrupted = False
        while any(t.is_alive() for t in threads) or not done.empty():
            try:
                on_result(*done.get(timeout=0.2))
            except queue.Empty:
                continue
            except KeyboardInterrupt:
                if interrupted:
                    raise
                interrupted = True
                self.stop.set()
                on_interrupt()
        return interrupted

    def close(self) -> None:
        pass


# ---------------------------------------------------------------------------------------------- the batch


@dataclass
class BatchSummary:
    """What a batch did; `str()` is the summary printed at its end."""

    submissions: int = 0
    graded: int = 0
    skipped: int = 0  # up to date
    errors: list[str] = field(default_factory=list)  # students whose grading failed (grader_error)
    findings: Counter = field(default_factory=Counter)  # finding kind -> submissions with it
    percents: list[float] = field(default_factory=list)  # of the submissions graded in this run
    wall_s: float = 0.0
    pool: str = ""
    interrupted: bool = False
    notes: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [f"graded {self.graded} of {self.submissions} submission(s) in {_duration(self.wall_s)} with "
                 f"{self.pool}" + (f" ({self.wall_s / self.graded:.1f} s each)" if self.graded else "")
                 + (f"; {self.skipped} up to date, skipped (--force regrades them)" if self.skipped else "") + "."]
        if self.interrupted:
            lines.append(f"interrupted: {self.submissions - self.graded - self.skipped} not graded; run the same "
                         "command again to grade them.")
        if self.percents:
            lines.append(f"scores: mean {statistics.mean(self.percents):.0f}%, median "
                         f"{statistics.median(self.percents):.0f}%, {sum(p >= 100 for p in self.percents)} full, "
                         f"{sum(p == 0 for p in self.percents)} zero.")
        if self.findings:
            lines.append("findings: " + ", ".join(f"{kind} {n}" for kind, n in self.findings.most_common()) + ".")
        if self.errors:
            lines.append(f"grader errors ({len(self.errors)}, graded again on the next run): "
                         + ", ".join(self.errors) + ".")
        lines += self.notes
        return "\n".join(lines)


def grade_paths(course: Course, paths: list[Path], *, assignment: str | None = None, out: Path | None = None,
                workers: int = 1, force: bool = False, scheduler: str | None = None, log=print,
                graders: dict[str, Grader] | None = None, progress: bool | None = None) -> BatchSummary:
    """Grade every submission under `paths` that has no current result (all with `force`), `workers` at a time
    here or on the Dask cluster at `scheduler`; write each result as it arrives. `graders` replaces the graders
    made from `course` (tests pass fakes); `progress` forces the progress bar on or off (default: on a terminal)."""
    start = time.monotonic()
    summary = BatchSummary()
    tasks = find_tasks(course, paths, assignment=assignment, out=out, notes=summary.notes)
    summary.submissions = len(tasks)
    graders = dict(graders or {})
    hidden = _hidden_submissions(course, tasks)
    if scheduler:
        from .cluster import ClusterPool

        pool = ClusterPool(scheduler, course=course, log=log)
    else:
        pool = ThreadPool(workers)
    try:
        with pool.choosing_profile():
            for name in sorted({t.assignment for t in tasks} - set(graders)):
                graders[name] = Grader.create(course, name, hide_extra=hidden)
        graders = {name: pool.adapt(g) for name, g in graders.items()}
        summary.pool = pool.describe()
        stamps = {name: graded_with(g) for name, g in graders.items()}
        jobs, why = [], Counter()
        for task in tasks:
            job = Job(task, file_sha256(task.notebook), graders[task.assignment], stamps[task.assignment])
            reason = "forced" if force else staleness(job)
            if reason is None:
                summary.skipped += 1
            else:
                jobs.append(job)
                why[reason] += 1
        if summary.skipped:
            log(f"{summary.skipped} of {len(tasks)} submission(s) already graded with this kit and course: skipped.")
        if jobs and why:
            log(f"grading {len(jobs)}: " + ", ".join(f"{n} {reason}" for reason, n in why.most_common()) + ".")
        for name in sorted({j.task.assignment for j in jobs}):
            began = time.monotonic()
            graders[name].reference()  # once, before the pool: computing it is not thread-safe
            if time.monotonic() - began > 2:
                log(f"computed the reference results of '{name}' in {_duration(time.monotonic() - began)} "
                    "(cached until the kit or the source notebook changes).")
        with _Progress(len(jobs), log=log, show=progress) as bar:
            def on_result(job: Job, result: dict) -> None:
                result.setdefault("extra_data", {})["graded_with"] = job.graded_with
                try:
                    write_result(job.task, result)
                except OSError as err:  # a full disk, a lost mount: no point grading what cannot be written
                    raise KitError(f"cannot write the results of {job.task.student} to {job.task.out_dir}: "
                                   f"{err.strerror or err}. The {summary.graded} written so far are kept; run the "
                                   "same command again to grade the rest.") from None
                summary.graded += 1
                extra = result["extra_data"]
                kinds = sorted({f["kind"] for f in extra.get("findings", [])})
                summary.findings.update(kinds)
                if grader_failed(extra.get("findings")):
                    summary.errors.append(job.task.student)
                else:
                    summary.percents.append(100 * result["score"] / result["max_score"] if result["max_score"]
                                            else 0.0)
                score = f"{format_number(result['score'], 2)}/{format_number(result['max_score'], 2)}"
                bar.advance(f"{job.task.student} {job.task.assignment}: {score}"
                            + (f" ({', '.join(kinds)})" if kinds else ""))

            summary.interrupted = pool.run(jobs, on_result, lambda: bar.say(
                "stopping: the submissions in flight finish and are written (Ctrl-C again to drop them)."))
    finally:
        pool.close()
    summary.wall_s = time.monotonic() - start
    return summary


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


class _Progress:
    """A rich progress bar (counts, elapsed, ETA) on a terminal; elsewhere one line per submission with the same
    counts and ETA, which is what a log file wants."""

    def __init__(self, total: int, *, log, show: bool | None):
        self.total, self.log, self.done = total, log, 0
        self.start = time.monotonic()
        self.bar = None
        if total:
            from rich.console import Console

            console = Console(stderr=True)
            if show if show is not None else console.is_terminal:
                from rich.progress import (BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn,
                                           TimeElapsedColumn, TimeRemainingColumn)

                self.bar = Progress(SpinnerColumn(), TextColumn("grading"), BarColumn(), MofNCompleteColumn(),
                                    TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
                                    console=console, redirect_stdout=False, redirect_stderr=False)
                self.task = self.bar.add_task("grading", total=total)

    def __enter__(self) -> "_Progress":
        if self.bar is not None:
            self.bar.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()

    def say(self, line: str) -> None:
        if self.bar is not None:
            self.bar.console.print(line, markup=False, highlight=False)
        else:
            self.log(line)

    def advance(self, line: str) -> None:
        self.done += 1
        if self.bar is not None:
            self.bar.advance(self.task)
            self.say(line)
            return
        elapsed = time.monotonic() - self.start
        left = self.total - self.done
        eta = f", eta {_duration(elapsed / self.done * left)}" if left else ""
        self.log(f"[{self.done}/{self.total} {_duration(elapsed)}{eta}] {line}")

