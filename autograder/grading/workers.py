"""The seam between grading and the worker processes: a `Runner` runs a plan's items and gives back their outcomes.

`SandboxRunner` is the real one: sandboxed worker processes (`runner.run_plan`), and a clean worker started ahead of
its plan where that is safe. The Grader takes any Runner, so tests of scoring, diagnosis and findings hand it a fake
that runs no process at all (tests/grading/test_fake_runner.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from ..items import Plan
from ..runner import PlanRun, Standby, run_plan
from ..sandbox import Limits, fences


class Runner(Protocol):
    def run_plan(
        self,
        plan: Plan,
        *,
        workdir: Path,
        limits: Limits,
        hide: list[Path],
        files: dict[str, Any] | None = None,
        standby: Standby | None = None,
    ) -> PlanRun:
        """Run `plan` in the empty folder `workdir` and return one outcome per item (see `runner.run_plan`)."""
        ...

    def standby(
        self, workdir: Path, *, backend: str, limits: Limits, hide: list[Path], wait_s: float, run_s: float
    ) -> Standby | None:
        """A clean worker started now in the empty folder `workdir`, to take a later plan; None when there is none."""
        ...


class SandboxRunner:
    """Sandboxed worker processes (docs/isolation.md)."""

    def run_plan(
        self,
        plan: Plan,
        *,
        workdir: Path,
        limits: Limits,
        hide: list[Path],
        files: dict[str, Any] | None = None,
        standby: Standby | None = None,
    ) -> PlanRun:
        return run_plan(plan, workdir=workdir, limits=limits, hide=hide, files=files, standby=standby)

    def standby(
        self, workdir: Path, *, backend: str, limits: Limits, hide: list[Path], wait_s: float, run_s: float
    ) -> Standby | None:
        # Only where the student's worker has a mount namespace, whose private /tmp keeps the waiting worker's
        # folder out of its reach while both run.
        if not fences().get("mount_namespace"):
            return None
        return Standby(workdir, backend=backend, limits=limits, hide=hide, wait_s=wait_s, run_s=run_s)
