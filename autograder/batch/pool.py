"""What the batch asks of a pool, and the one place that picks a pool: threads here, or a Dask cluster.

    grade_paths -> pool.profile    the profile the pool grades with (None: the graders' own choice)
                -> pool.adapt(g)   the grader the pool grades with (that profile), or a KitError when it cannot
                -> pool.describe() for the summary ("2 workers", "the Dask cluster (...)")
                -> pool.run(jobs, on_result, on_interrupt) -> interrupted?
                -> pool.close()

`run` calls `on_result(job, result)` in the caller's thread as each result arrives, and `on_interrupt()` once
on a first Ctrl-C (the pool then stops starting new gradings and returns True).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from ..config import Course
from ..errors import KitError
from ..grading import Grader
from ..owntime import usable_cpus
from ..results import SubmissionResult
from .dask_pool import DaskPool
from .jobs import Job
from .thread_pool import ThreadPool


class Pool(Protocol):
    @property
    def profile(self) -> str | None: ...  # read-only: a pool may hold a `str` or a `None` here

    def describe(self) -> str: ...

    def adapt(self, grader: Grader) -> Grader: ...

    def run(
        self, jobs: list[Job], on_result: Callable[[Job, SubmissionResult], None], on_interrupt: Callable[[], None]
    ) -> bool: ...

    def close(self) -> None: ...


def open_pool(
    course: Course,
    *,
    workers: int = 1,
    scheduler: str | None = None,
    profile: str | None = None,
    log: Callable[[str], object] = print,
    certs: Path | None = None,
    insecure: bool = False,
) -> Pool:
    """The Dask cluster at `scheduler` when there is one (`workers` is then unused), else `workers` threads here.
    `profile` is the caller's choice of training profile; without one, the Dask pool decides it from its workers.
    `certs` (the course's TLS certificates) and `insecure` say how to reach the scheduler (dask_pool.py)."""
    if scheduler:
        return DaskPool(scheduler, course=course, profile=profile, log=log, certs=certs, insecure=insecure)
    if certs is not None or insecure:
        raise KitError("--certs and --insecure are for grading on a Dask cluster: pass --scheduler too.")
    cpus = usable_cpus()
    if workers > cpus:  # scores stay right (limits are judged on each worker's own time), but nothing is gained
        log(
            f"warning: --workers {workers} is more than the {cpus:g} CPU(s) this grader may use (its affinity and "
            "cgroup quota): the gradings will share them and each take longer; no score changes."
        )
    return ThreadPool(workers)
