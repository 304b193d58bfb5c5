"""Which training profile a grading uses: chosen once, by the caller, and passed on as an argument."""

from __future__ import annotations

import os

from ..config import Course, Profile
from ..errors import KitError
from ..hardware import gpu_visible

ENV = "AUTOGRADER_PROFILE"  # read (never written) as the default of `--profile`


def profile_name(requested: str | None = None, *, gpu: bool | None = None) -> str:
    """The rule, in one place: `requested`, else $AUTOGRADER_PROFILE, else gpu when a GPU is there (`gpu`: the
    caller's answer, e.g. a cluster's; default: this machine's), else cpu."""
    return requested or os.environ.get(ENV) or ("gpu" if (gpu_visible() if gpu is None else gpu) else "cpu")


def choose_profile(course: Course, assignment: str, requested: str | None = None) -> Profile:
    """The profile `profile_name` picks, checked against the assignment's profiles."""
    wanted = profile_name(requested)
    profiles = course.assignment(assignment).profiles
    if wanted not in profiles:
        raise KitError(
            f"'{wanted}' is not a training profile of '{assignment}' ({', '.join(profiles)}): pass "
            f"--profile with one of them (or set {ENV})."
        )
    return profiles[wanted]
