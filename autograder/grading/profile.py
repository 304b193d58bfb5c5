"""Which training profile a grading uses: chosen once, by the caller, and passed on as an argument."""

from __future__ import annotations

import os

from ..config import Course, Profile
from ..errors import KitError
from ..hardware import gpu_visible

ENV = "AUTOGRADER_PROFILE"  # read (never written) as the default of `--profile`


def choose_profile(course: Course, assignment: str, requested: str | None = None) -> Profile:
    """`requested`, else $AUTOGRADER_PROFILE, else the gpu profile when this machine shows a GPU, else cpu."""
    wanted = requested or os.environ.get(ENV) or ("gpu" if gpu_visible() else "cpu")
    profiles = course.assignment(assignment).profiles
    if wanted not in profiles:
        raise KitError(f"'{wanted}' is not a training profile of '{assignment}' ({', '.join(profiles)}): pass "
                       f"--profile with one of them (or set {ENV}).")
    return profiles[wanted]
