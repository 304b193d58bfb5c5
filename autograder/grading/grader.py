"""The grader of one assignment: a short orchestrator of the typed stages.

Grader.create(course, assignment, profile=...)   the source's spec, the release, the profile and its thresholds,
                                                 the mistake catalogue, the worker limits: once per batch
prepare()                                        the expectations, computed (or read from the cache) up front
grade(path, student=)                            read + validate -> execute.run_student -> scoring -> result
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import __version__
from ..checks import validate_extra
from ..checks.quality.weights_file import SubmittedWeights, find_weights
from ..config import Course, Profile
from ..errors import KitError
from ..files import profile_thresholds
from ..launch import worker_start
from ..mistakes import Mistake, load_mistakes
from ..notebook import Spec, load_release, load_spec
from ..results import CheckResult, Finding, SubmissionResult
from ..runtime import choose_backend, describe_runtime
from ..sandbox import Limits
from ..submission import read_submission
from . import execute, expectations, plans, scoring
from .profile import choose_profile
from .workers import Runner, SandboxRunner


@dataclass
class Grader:
    """Everything that is the same for every submission of one assignment; built once per batch. `grade` may be
    called from several threads at once."""

    course: Course
    assignment: str
    spec: Spec
    release: dict[str, Any]
    profile: Profile
    thresholds: dict[str, Any]
    mistakes: list[Mistake]
    limits: Limits
    hide: list[Path]
    backend: str = "tensorflow"
    calibrating: bool = False
    environment: dict[str, Any] = field(default_factory=dict)  # where the workers run (backend, versions, device)
    runner: Runner = field(default_factory=SandboxRunner, repr=False, compare=False)  # a fake in tests of scoring
    submitted: Profile | None = None  # the profile that judges submitted weights, when a counted check measures them
    submitted_thresholds: dict[str, Any] = field(default_factory=dict)
    _expected: expectations.Expectations | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @classmethod
    def create(
        cls,
        course: Course,
        assignment: str,
        *,
        profile: str | None = None,
        backend: str | None = None,
        hide_extra: Sequence[Path] = (),
        calibrating: bool = False,
        runner: Runner | None = None,
    ) -> Grader:
        """`profile`: a profile's name; None lets this machine choose (see `choose_profile`). `backend`: the
        workers' Keras backend; None: $AUTOGRADER_BACKEND, else course.yaml's. While `calibrating` the thresholds
        are not read (they are being made). `runner`: the workers (default: sandboxed processes)."""
        settings = course.assignment(assignment)
        # The quality checks that count (course.yaml); calibrating retrains the reference, never loads weights.
        spec = plans.counted(
            load_spec(course.source_notebook(assignment), assignment),
            ("retrain",) if calibrating else settings.count,
        )
        chosen = choose_profile(course, assignment, profile)
        for prof in course.assignment(assignment).profiles.values():  # each key read by this assignment's checks
            validate_extra(
                prof.extra,
                names=[c.check for c in spec.training_calls],
                where=f"assignments.{assignment}.quality.profiles.{prof.name}.extra",
                file=course.paths.course_file,
            )
        hide = [p for p in course.paths.private() if p.exists()] + [Path(p) for p in hide_extra]
        backend = choose_backend(course.backend, backend)
        grader = cls(
            course,
            assignment,
            spec,
            load_release(course.root, assignment),
            chosen,
            {},
            load_mistakes(course.root, assignment),
            Limits(**course.limits),
            hide,
            backend,
            calibrating,
            describe_runtime(backend),
            runner=runner or SandboxRunner(),
        )
        grader.thresholds = grader._thresholds(chosen.name)
        if any(plans.submitted(c) for c in spec.training_calls):
            grader.submitted = settings.submitted
            grader.submitted_thresholds = grader._submitted_thresholds()
        return grader

    def _thresholds(self, profile: str, backend: str | None = None) -> dict[str, Any]:
        """`profile`'s thresholds as calibrated on `backend` (default: this grader's), where they differ."""
        if not self.trains or self.calibrating:
            return {}
        return profile_thresholds(self.course.paths, self.assignment, profile, backend=backend or self.backend)

    def _submitted_thresholds(self, backend: str | None = None) -> dict[str, Any]:
        """The thresholds of the recipe that judges submitted weights; none yet (not calibrated) leaves each such
        check's result saying that it has no calibrated threshold."""
        if self.submitted is None:
            return {}
        try:
            return profile_thresholds(
                self.course.paths, self.assignment, self.submitted.name, backend=backend or self.backend
            )
        except KitError:
            return {}

    @property
    def trains(self) -> bool:
        """Whether the assignment has training checks (they need a profile's thresholds, and a GPU if it has one)."""
        return bool(self.spec.training_calls)

    def with_profile(self, name: str) -> Grader:
        """The same grader with another training profile and that profile's thresholds."""
        if name == self.profile.name:
            return self
        profile = choose_profile(self.course, self.assignment, name)
        return dataclasses.replace(
            self, profile=profile, thresholds=self._thresholds(name), _expected=self._expected, _lock=threading.Lock()
        )

    def with_backend(self, name: str) -> Grader:
        """The same grader with its workers on another Keras backend (its expectations and thresholds are that
        backend's)."""
        backend = choose_backend(self.course.backend, name)
        if backend == self.backend:
            return self
        return dataclasses.replace(
            self,
            backend=backend,
            thresholds=self._thresholds(self.profile.name, backend),
            submitted_thresholds=self._submitted_thresholds(backend),
            environment=describe_runtime(backend),
            _expected=None,
            _lock=threading.Lock(),
        )

    # ------------------------------------------------------------------------------------------ stages

    def prepare(self) -> expectations.Expectations:
        """The expectations (reference and catalogued mistakes), computed once; safe to call from any thread."""
        with self._lock:
            if self._expected is None:
                self._expected = expectations.load_or_compute(
                    self.spec,
                    self.mistakes,
                    seed=self.course.seed,
                    backend=self.backend,
                    profile=self.profile,
                    limits=self.limits,
                    hide=self.hide,
                    cache=self.course.paths.grading_cache(self.assignment),
                    runner=self.runner,
                )
            return self._expected

    def setting(self) -> execute.Setting:
        return execute.Setting(
            spec=self.spec,
            profile=self.profile,
            limits=self.limits,
            hide=tuple(self.hide),
            data=self.course.data,
            seed=self.course.seed,
            backend=self.backend,
            reference_dir=self.course.paths.reference_dir(self.assignment),
            models_dir=self.course.paths.models_dir(self.assignment, self.profile.name),
            budgets=not self.calibrating,
            runner=self.runner,
            submitted=self.submitted,
            submitted_models_dir=(
                self.course.paths.models_dir(self.assignment, self.submitted.name) if self.submitted else None
            ),
            heldout_seed=self.course.data.get("heldout_seed"),
        )

    def run_answers(
        self,
        answers: dict[str, str],
        *,
        seed: int,
        hide: Sequence[Path] = (),
        keep: Path | None = None,
        only_training: bool = False,
        weights: SubmittedWeights | None = None,
    ) -> execute.StudentRun:
        return execute.run_student(
            self.setting(), answers, seed=seed, hide=list(hide), keep=keep, only_training=only_training, weights=weights
        )

    def find_weights(self, notebook: Path) -> SubmittedWeights | None:
        """The trained weights submitted beside `notebook`, vetted, when a counted check measures them."""
        return find_weights(Path(notebook).parent, self.assignment) if self.submitted is not None else None

    def grade(self, path: Path, *, student: str, weights: SubmittedWeights | None = None) -> SubmissionResult:
        """Grade the notebook at `path`. `weights`: the trained weights found beside the notebook where it was
        submitted, when that is not beside `path` (a cluster's worker grades a copy of the notebook; the client
        reads the weights); by default the grader looks beside `path` itself."""
        start = time.monotonic()
        sub = read_submission(Path(path), self.spec, self.release)
        found = list(sub.findings)
        run = execute.StudentRun()
        if weights is None:
            weights = self.find_weights(Path(path))
        if weights is not None and weights.problem:
            found.append(Finding(weights.kind or "weights_refused", f"Trained weights: {weights.problem}."))
        if sub.readable:
            run = self.run_answers(
                sub.answers, seed=self.course.seed, hide=[Path(path).resolve().parent], weights=weights
            )
            found += scoring.findings(
                run.outcomes,
                deaths=run.deaths,
                killed=run.killed,
                sandbox_error=run.sandbox_error,
                machine_busy=run.machine_busy,
            )
        environment = dict(self.environment, profile=self.profile.name, load_average=_load_average())
        if sub.readable:  # a worker ran
            environment["worker"] = worker_start(run.forked, self.limits)
        if run.device is not None:  # what the worker's backend really used, rather than what the grader saw
            environment["device"] = run.device.describe()
        fault = scoring.device_fault(self.profile.name, self.backend, run.device)
        return SubmissionResult(
            assignment=self.assignment,
            student=student,
            checks=[] if fault else self.score(run),
            findings=[fault] if fault else found,
            max_score=self.spec.max_score,
            execution_time=time.monotonic() - start,
            kit_version=__version__,
            notebook_sha256=sub.sha256,
            timestamp=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            environment=environment,
            weights=weights.summary() if weights is not None else None,
        )

    def score(self, run: execute.StudentRun) -> list[CheckResult]:
        """Every check's result, from what the workers gave back."""
        expected = self.prepare() if self.spec.value_calls else None
        return scoring.score_checks(
            self.spec,
            outcomes=run.outcomes,
            measured=run.measured,
            expected=expected,
            mistakes=self.mistakes,
            thresholds=self.thresholds,
            profile=self.profile.name,
            submitted=(self.submitted_thresholds, self.submitted.name) if self.submitted else None,
        )


def _load_average() -> float | None:
    """The machine's load over the last minute, as the grading ends: a reader of results.json can tell a grading
    on a busy machine (whose limits were judged on the worker's own time, docs/isolation.md)."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None
