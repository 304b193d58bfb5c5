"""Grading one submission in typed stages: plans -> execute (workers) -> expectations -> scoring -> the result.

`Grader` (grader.py) ties them together; `choose_profile` (profile.py) picks the training profile once, for the
caller to pass on.
"""

from .execute import StudentRun
from .grader import Grader
from .profile import choose_profile

__all__ = ["Grader", "StudentRun", "choose_profile"]
