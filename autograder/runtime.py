"""Which Keras backend the workers run, and what results and manifests record about where they ran.

course.yaml's `backend:` (tensorflow by default) chooses it for a course; AUTOGRADER_BACKEND overrides it for one
run. The grader never imports the backend itself: it tells every worker through KERAS_BACKEND, which Keras reads
when it is first imported, and reads versions from the installed packages' metadata.
"""

from __future__ import annotations

import os
from importlib.metadata import PackageNotFoundError, version

from .errors import KitError
from .hardware import gpu_name, gpu_visible

BACKENDS = ("tensorflow", "jax", "torch")
ENV = "AUTOGRADER_BACKEND"
_DISTRIBUTIONS = {
    "tensorflow": ("tensorflow", "tensorflow-cpu"),
    "jax": ("jax",),
    "torch": ("torch",),
    "keras": ("keras",),
}


def choose_backend(configured: str = "tensorflow", requested: str | None = None) -> str:
    """`requested` (a caller's explicit choice), else $AUTOGRADER_BACKEND, else course.yaml's `backend:`. An
    unknown name is an error that says where it came from and what to use."""
    for source, wanted in ((None, requested), (ENV, os.environ.get(ENV)), ("course.yaml's backend", configured)):
        if not wanted:
            continue
        if wanted not in BACKENDS:
            where = f" ({source})" if source else ""
            raise KitError(
                f"{wanted!r}{where} is not a Keras backend the kit supports: use one of {', '.join(BACKENDS)}."
            )
        return wanted
    return BACKENDS[0]


def students_backend() -> str:
    """The backend a student's Keras runs on: $KERAS_BACKEND when set; else TensorFlow, Keras' own default, when it
    is installed (the kit's `[tensorflow]` extra, or Colab); else the first other backend installed (the kit itself
    brings JAX). With none installed, a KitError says which install line brings one."""
    chosen = os.environ.get("KERAS_BACKEND")
    if chosen:
        return chosen
    for backend in BACKENDS:
        if package_version(backend):
            return backend
    raise KitError(
        "No Keras backend is installed: install the kit with one, e.g. "
        '`pip install "autoencoder-course-kit[tensorflow]"` (or `[jax]`, the lighter one), then restart '
        "the notebook's kernel."
    )


def package_version(name: str) -> str | None:
    for distribution in _DISTRIBUTIONS.get(name, (name,)):
        try:
            return version(distribution)
        except PackageNotFoundError:
            continue
    return None


def worker_environment(backend: str) -> dict[str, str]:
    """What every worker's environment gets so that Keras runs on `backend` (and shares a GPU with others)."""
    return {
        "KERAS_BACKEND": backend,
        # JAX takes 75% of a GPU's memory at its first operation by default: one worker would leave the others
        # none. Allocating as needed lets `--workers N` share one GPU.
        "XLA_PYTHON_CLIENT_PREALLOCATE": "false",
        "TF_FORCE_GPU_ALLOW_GROWTH": "true",  # the same for TensorFlow on a GPU
    }


def describe_runtime(backend: str) -> dict:
    """What a results.json and a calibration manifest record about where the workers ran: the backend, versions,
    the device, and the sandbox's fences that were active (on Gradescope, for instance, the container decides)."""
    from .sandbox import fences

    return {
        "backend": backend,
        "backend_version": package_version(backend),
        "keras_version": package_version("keras"),
        "device": f"gpu ({gpu_name()})" if gpu_visible() else "cpu",
        "fences": sorted(name for name, on in fences().items() if on),
    }
