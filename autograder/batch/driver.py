"""Grading a class: find the submissions, skip those graded already, grade the rest in a pool, write each result as
soon as it is known.

    find_tasks -> plan: a submission is up to date when its results.json names the same notebook sha256 and the same
                  `graded_with` (kit, source, release, reference files, settings); `force` regrades everything
               -> graders: one per assignment, with the pool's profile (else the caller's), prepared before the
                  pool starts (the expectations computed once, up front)
               -> pool.run: threads here or a Dask cluster (pool.py), results handed back one at a time
               -> write_result in this thread, one submission at a time, atomically -> BatchSummary; first the
                  graded notebook for nbgrader's formgrader (graded_notebook.py), whose written answers the result
                  then lists

Crash safety: each result is renamed into place as it arrives, so a kill at any moment loses only the submissions in
flight; the rerun grades exactly those whose results are missing or stale, and writes what an uninterrupted run
would have written. A failure inside one submission (an exception in the grader itself) becomes that submission's
result with a `grader_error` finding, which the next run grades again; it never stops the batch.
"""

from __future__ import annotations

import importlib
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from ..config import Course
from ..errors import KitError
from ..graded_notebook import write_graded_notebook
from ..grading import Grader
from ..results import ManualAnswer, SubmissionResult, format_points
from .jobs import (
    Job,
    Task,
    file_sha256,
    find_tasks,
    graded_with,
    grader_failed,
    hidden_submissions,
    staleness,
    write_result,
)
from .pool import Pool, open_pool
from .progress import BatchSummary, Progress, duration


def grade_paths(
    course: Course,
    paths: list[Path],
    *,
    assignment: str | None = None,
    out: Path | None = None,
    workers: int = 1,
    force: bool = False,
    scheduler: str | None = None,
    profile: str | None = None,
    log: Callable[[str], object] = print,
    graders: dict[str, Grader] | None = None,
    progress: bool | None = None,
    pool: Pool | None = None,
    graded_notebooks: bool = True,
    certs: Path | None = None,
    insecure: bool = False,
) -> BatchSummary:
    """Grade every submission under `paths` that has no current result (all with `force`) and write each result as
    it arrives. The pool: `pool` when given (the caller closes it), else `workers` threads here or the Dask cluster
    at `scheduler` (see `open_pool`). `profile` names the training profile (None: the pool's or this machine's
    choice). `graders` replaces the graders made from `course` (tests pass fakes); `progress` forces the progress
    bar on or off (default: on a terminal). `graded_notebooks=False` writes results alone, without the notebooks for
    nbgrader's formgrader (Gradescope has no formgrader, and its image no nbgrader): every written answer is then
    left to a person. `certs` and `insecure`: how to reach the scheduler (TLS, or plain off loopback; dask_pool.py)."""
    start = time.monotonic()
    summary = BatchSummary()
    tasks = find_tasks(course, paths, assignment=assignment, out=out, notes=summary.notes)
    summary.submissions = len(tasks)
    own = pool is None
    if pool is None:
        pool = open_pool(
            course, workers=workers, scheduler=scheduler, profile=profile, log=log, certs=certs, insecure=insecure
        )
    try:
        ready = _graders(course, tasks, pool, dict(graders or {}), profile)
        summary.pool = pool.describe()
        jobs = _plan(tasks, ready, force, summary, log)
        for name in sorted({j.task.assignment for j in jobs}):
            began = time.monotonic()
            ready[name].prepare()  # once, before the pool, whatever the number of threads
            if time.monotonic() - began > 2:
                log(
                    f"computed the reference results of '{name}' in {duration(time.monotonic() - began)} "
                    "(cached until the kit or the source notebook changes)."
                )
        if jobs and graded_notebooks:
            # the graded notebook's nbgrader functions (a second of imports) load while the first workers run
            threading.Thread(
                target=importlib.import_module, args=("nbgrader.utils",), daemon=True, name="import-ahead"
            ).start()
        with Progress(len(jobs), log=log, show=progress) as bar:

            def on_result(job: Job, result: SubmissionResult) -> None:
                _record(job, result, summary, bar, graded_notebooks)

            summary.interrupted = pool.run(
                jobs,
                on_result,
                lambda: bar.say(
                    "stopping: the submissions in flight finish and are written (Ctrl-C again to drop them)."
                ),
            )
    finally:
        if own:
            pool.close()
    summary.wall_s = time.monotonic() - start
    return summary


def _graders(
    course: Course, tasks: list[Task], pool: Pool, given: dict[str, Grader], profile: str | None
) -> dict[str, Grader]:
    """One grader per assignment of `tasks` (those `given` first), made with the pool's profile, else the caller's,
    and adapted to the pool."""
    hidden = hidden_submissions(course, tasks)
    chosen = pool.profile or profile
    for name in sorted({t.assignment for t in tasks} - set(given)):
        given[name] = Grader.create(course, name, profile=chosen, hide_extra=hidden)
    return {name: pool.adapt(g) for name, g in given.items()}


def _plan(
    tasks: list[Task], graders: dict[str, Grader], force: bool, summary: BatchSummary, log: Callable[[str], object]
) -> list[Job]:
    """The jobs whose results are missing or stale (all with `force`); the log says how many and why."""
    stamps = {name: graded_with(g) for name, g in graders.items()}
    jobs: list[Job] = []
    why: Counter[str] = Counter()
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
    return jobs


def _record(job: Job, typed: SubmissionResult, summary: BatchSummary, bar: Progress, graded_notebook: bool) -> None:
    """Write one result as it arrives and count it; a result that cannot be written stops the batch."""
    typed.graded_with = job.graded_with
    try:
        typed.manual = _write_graded_notebook(job, typed, bar) if graded_notebook else _left_to_a_person(job)
        write_result(job.task, typed)
    except OSError as err:  # a full disk, a lost mount: no point grading what cannot be written
        raise KitError(
            f"cannot write the results of {job.task.student} to {job.task.out_dir}: "
            f"{err.strerror or err}. The {summary.graded} written so far are kept; run the same command "
            "again to grade the rest."
        ) from None
    summary.graded += 1
    summary.retried += typed.retries
    kinds = sorted({f.kind for f in typed.findings})
    summary.findings.update(kinds)
    if grader_failed(typed.findings):
        summary.errors.append(job.task.student)
    else:
        summary.percents.append(100 * typed.score / typed.max_score if typed.max_score else 0.0)
    score = f"{format_points(typed.score)}/{format_points(typed.max_score)}"
    bar.advance(f"{job.task.student} {job.task.assignment}: {score}" + (f" ({', '.join(kinds)})" if kinds else ""))


def _write_graded_notebook(job: Job, result: SubmissionResult, bar: Progress) -> list[ManualAnswer]:
    """`<out>/<assignment>.ipynb`, the notebook formgrader opens, before results.json (so a results.json always has
    its notebook); returns the written answers as found. It never replaces the submission itself, and a failure to
    build it (a fault of the kit) leaves every written answer to grade by hand, without stopping the class."""
    spec = job.grader.spec
    out = job.task.out_dir / f"{job.task.assignment}.ipynb"
    if out.resolve() == job.task.notebook.resolve():
        bar.say(
            f"{job.task.student}: no graded notebook, it would replace the submission {out}; grade into "
            "another folder (--out) for formgrader."
        )
        return _left_to_a_person(job)
    try:
        return write_graded_notebook(job.task.notebook, out, spec, job.grader.release, result)
    except OSError:
        raise
    except Exception as err:  # noqa: BLE001 - one submission's notebook must not stop the class
        bar.say(
            f"{job.task.student}: the graded notebook could not be written ({type(err).__name__}: {err}); "
            "its written answers are left for a TA."
        )
        return _left_to_a_person(job)


def _left_to_a_person(job: Job) -> list[ManualAnswer]:
    """Every written answer as waiting for a person, when no graded notebook tells which were left as released."""
    # "" for a written answer without a grade_id, which results.json could not hold as null
    return [ManualAnswer(c.grade_id or "", c.points, answered=True) for c in job.grader.spec.manual]
