"""Keras imported without its backend's start-up log lines: a notebook's set-up cell starts with
`import autograder.quiet`, and its own `import keras` then finds Keras already loaded.

TensorFlow's C++ runtime writes some lines straight to the process's standard error before its logging is set up
("oneDNN custom operations are on", "Could not find cuda drivers", ...), so `TF_CPP_MIN_LOG_LEVEL` alone does not
stop them all, and Jupyter shows them under the cell. The process's standard error goes to /dev/null for the
import alone: an import that fails still raises its Python error as usual.
"""

from __future__ import annotations

import os
import sys


def import_keras_quietly() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if "keras" in sys.modules:
        return
    from .runtime import students_backend

    # Keras falls back to TensorFlow, which a student who installed the kit without its `[tensorflow]` extra lacks.
    os.environ["KERAS_BACKEND"] = students_backend()
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, 2)
        finally:
            os.close(devnull)
        import keras  # noqa: F401 - loaded now, so that the notebook's own import is silent
    finally:
        os.dup2(saved, 2)
        os.close(saved)


import_keras_quietly()
