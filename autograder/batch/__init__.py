"""Grading a class in a pool of threads or on a Dask cluster.

    jobs.py         the per-submission work: find_tasks, staleness, graded_with, grade_safely, write_result
    pool.py         the `Pool` protocol and `open_pool`, which picks one of:
    thread_pool.py    threads in this process
    dask_pool.py      the workers of a Dask cluster (and what runs on them)
    driver.py       grade_paths: plan, prepare the graders, run the pool, write each result
    progress.py     the progress lines and the summary

The modules import each other in that order only (jobs <- pools <- pool <- driver): no cycle.
"""

from .driver import grade_paths
from .pool import Pool, open_pool
from .progress import BatchSummary

__all__ = ["BatchSummary", "Pool", "grade_paths", "open_pool"]
