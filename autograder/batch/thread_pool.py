"""The local pool: `workers` threads in this process, each grading one submission at a time.

Why threads: grading one submission is almost all waiting on sandboxed child processes, and a thread that waits on
a pipe holds no GIL. One process keeps one Grader per assignment: the source parsed once and the expectations
prepared once, before the pool starts. A process pool would add an interpreter, numpy and the kit per worker and
pickle every result, for nothing: the limit is the sandboxed workers, and N threads run at most N of them at a time.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

from ..errors import KitError
from ..grading import Grader
from ..results import SubmissionResult
from .jobs import Job, grade_safely


class ThreadPool:
    """The `Pool` of a batch graded on this machine (see the module's docstring)."""

    profile = None  # the graders' own choice: the caller's profile, else this machine's

    def __init__(self, workers: int):
        if workers < 1:
            raise KitError(f"--workers must be at least 1, not {workers}.")
        self.workers = workers
        self.stop = threading.Event()

    def describe(self) -> str:
        return f"{self.workers} worker{'s' if self.workers > 1 else ''}"

    def adapt(self, grader: Grader) -> Grader:
        return grader  # this machine grades with what the grader was made with

    def run(
        self, jobs: list[Job], on_result: Callable[[Job, SubmissionResult], None], on_interrupt: Callable[[], None]
    ) -> bool:
        """Grade `jobs`, calling `on_result` in this thread as each finishes. A first Ctrl-C stops new gradings and
        waits for those in flight (returns True); a second one leaves at once."""
        todo: queue.Queue[Job] = queue.Queue()
        done: queue.Queue[tuple[Job, SubmissionResult]] = queue.Queue()
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
        threads = [
            threading.Thread(target=work, name=f"grade-{i}", daemon=True) for i in range(min(self.workers, len(jobs)))
        ]
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
