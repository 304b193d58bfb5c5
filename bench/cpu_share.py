"""One grading of an assignment's solution with the whole machine, then with a CPU quota such as Gradescope's
default (half a vCPU), alternating, in one run; prints the wall times and their ratio.

    sudo .venv/bin/python bench/cpu_share.py autoencoder --share 0.5 --repeats 2

The quota is a cgroup's CPU bandwidth limit (cgroup v2 `cpu.max`, v1 `cpu.cfs_quota_us`), the mechanism Docker's
`--cpus` and Gradescope's CPU setting use; every process of the grading, its sandboxed workers included, stays in
it. Needs root (to make the cgroup). Load averages are printed before and after, since these machines are shared.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PERIOD_US = 100_000


def _quota_cgroup(share: float) -> Path:
    """A new cgroup whose processes get `share` of one CPU in all."""
    name = f"autograder-bench-{uuid.uuid4().hex[:8]}"
    v2 = Path("/sys/fs/cgroup/cgroup.controllers")
    if v2.is_file():
        path = Path("/sys/fs/cgroup") / name
        path.mkdir()
        (path / "cpu.max").write_text(f"{int(share * PERIOD_US)} {PERIOD_US}")
    else:
        path = Path("/sys/fs/cgroup/cpu") / name
        path.mkdir()
        (path / "cpu.cfs_period_us").write_text(str(PERIOD_US))
        (path / "cpu.cfs_quota_us").write_text(str(int(share * PERIOD_US)))
    return path


def _grade_once(assignment: str, cgroup: Path | None) -> float:
    """Wall seconds of `autograder grade --force` of the solution, inside `cgroup` when given."""
    with tempfile.TemporaryDirectory(prefix="bench-share-") as tmp:
        notebook = Path(tmp) / f"{assignment}.ipynb"
        shutil.copy(ROOT / "solutions" / assignment / notebook.name, notebook)
        command = [
            str(ROOT / ".venv" / "bin" / "autograder"),
            "grade",
            str(notebook),
            "--assignment",
            assignment,
            "--out",
            str(Path(tmp) / "out"),
            "--force",
        ]
        enter = None
        if cgroup is not None:  # the child moves itself into the cgroup before it starts the grader
            procs = cgroup / "cgroup.procs"

            def enter() -> None:
                procs.write_text(str(os.getpid()))

        began = time.monotonic()
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, preexec_fn=enter)
        took = time.monotonic() - began
        if done.returncode != 0:
            sys.exit(f"grading failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
        return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("assignment")
    parser.add_argument("--share", type=float, default=0.5, help="CPUs in the quota (Gradescope's default: 0.5)")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("needs root, to make the cgroup that holds the quota")
    cgroup = _quota_cgroup(args.share)
    try:
        _grade_once(args.assignment, None)  # warm-up: the reference results and the data cache
        whole, quota = [], []
        print(f"load average before: {os.getloadavg()[0]:.1f}")
        for _ in range(args.repeats):
            whole.append(_grade_once(args.assignment, None))
            quota.append(_grade_once(args.assignment, cgroup))
        print(f"load average after: {os.getloadavg()[0]:.1f}")
    finally:
        cgroup.rmdir()
    w, q = statistics.median(whole), statistics.median(quota)
    print(
        f"{args.assignment}: whole machine ({os.cpu_count()} CPUs) {w:.1f} s; {args.share} CPU {q:.1f} s; "
        f"ratio {q / w:.2f} (medians of {args.repeats})"
    )


if __name__ == "__main__":
    main()
