"""Process B of a fork server's child (zygote.py): the fences every worker gets (helper.py's `_fence_student`), then
the worker itself, run in this process's memory, a copy of the server's, instead of in a new interpreter.

What a new interpreter would start with, and a copy of the server does not, is put right first: exactly the run's
environment (os.environ, and the C library's through it) with what the server's imports added to it (as a new
worker's imports add it), its working folder, tempfile's folder found again from
TMPDIR, Keras' home folder from KERAS_HOME, Python's and NumPy's global random generators seeded from the system
as at any interpreter's start, and no signal blocked. Signal handlers are left as the imports set them, as in a new
worker after `import keras` (the server sets none of its own). The status pipe is closed before the worker's first
line, as an exec would close it. Then `autograder.worker` runs as `__main__`, as `python -m autograder.worker` does.
"""

from __future__ import annotations

import os
import sys

from . import helper

WORKER = "autograder.worker"


def run_worker(spec: dict, st: helper._Status) -> None:
    """B: fence, then run the worker with `spec["worker_args"]` as its arguments; never returns."""
    helper._fence_student(spec, st)
    try:
        _fresh_process(spec)
    except BaseException as err:  # noqa: BLE001 - no worker line has run yet: the run fails closed
        st.fail(f"child setup: {type(err).__name__}: {err}")
    os.close(st.fd)
    os._exit(_run_module(WORKER, list(spec["worker_args"])))


def _fresh_process(spec: dict) -> None:
    import random
    import signal
    import tempfile

    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    os.environ.clear()
    os.environ.update(spec["env"])
    os.environ.update(spec.get("import_env", {}))  # what a new worker's imports would have added by now
    tempfile.tempdir = None  # found again from TMPDIR at the first use
    config = sys.modules.get("keras.src.backend.config")
    if config is not None and "KERAS_HOME" in spec["env"]:
        config.__dict__["_KERAS_DIR"] = spec["env"]["KERAS_HOME"]  # read once, at import, in the server
    random.seed()
    numpy_random = sys.modules.get("numpy.random")
    if numpy_random is not None:
        numpy_random.seed()


def _run_module(name: str, args: list[str]) -> int:
    """Run module `name` as `__main__` with `args` (sys.argv[0] becomes its file, as with `python -m`); the exit
    status a new interpreter would have had when it returns or raises."""
    import runpy
    import traceback

    sys.argv = [name, *args]
    code = 0
    try:
        runpy.run_module(name, run_name="__main__", alter_sys=True)
    except SystemExit as stop:
        if stop.code is None:
            code = 0
        elif isinstance(stop.code, int):
            code = stop.code & 0xFF
        else:
            print(stop.code, file=sys.stderr)
            code = 1
    except BaseException:  # noqa: BLE001 - as an interpreter would: the traceback on stderr, status 1
        traceback.print_exc()
        code = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    return code
