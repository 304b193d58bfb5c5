"""Benchmark (not a test): what grading the model a student trained costs, next to retraining their code.

Three copies of the course differ only in which quality checks count for one assignment (`quality.count`): the
submitted model alone, the retraining alone, and both (as shipped). The assignment's solution is graded in each
with its trained weights file beside it (`autograder grade --force`), REPEATS times, the three alternating, after
one warm-up grading per copy (it fills the reference results' cache). Prints the median of results.json's
`execution_time` (both workers, every check) and of the whole command, and the load average.

    .venv/bin/python bench/submitted_cost.py autoencoder --repeats 3

Writes bench/out/submitted_cost-<a>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
AUTOGRADER = Path(sys.executable).parent / "autograder"
COUNTS = {"submitted": ["submitted"], "retrain": ["retrain"], "both": ["retrain", "submitted"]}


def course_copy(dest: Path, assignment: str, count: list[str]) -> Path:
    for item in ("course.yaml", "nbgrader_config.py"):
        shutil.copy2(ROOT / item, dest / item)
    config = yaml.safe_load((dest / "course.yaml").read_text())
    config["assignments"] = {assignment: config["assignments"][assignment]}
    config["assignments"][assignment]["quality"]["count"] = count
    (dest / "course.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    for folder in ("source", "release", "solutions", "reference_weights"):
        shutil.copytree(ROOT / folder / assignment, dest / folder / assignment)
    return dest


def grade(course: Path, assignment: str, out: Path, env: dict[str, str]) -> tuple[float, float, float, float]:
    """(execution_time, the command's wall time, score, max_score) of one grading of the solution."""
    notebook = course / "solutions" / assignment / f"{assignment}.ipynb"
    start = time.monotonic()
    subprocess.run(
        [str(AUTOGRADER), "grade", str(notebook), "--assignment", assignment, "--out", str(out), "--force"],
        cwd=course,
        env=env,
        check=True,
        capture_output=True,
    )
    wall = time.monotonic() - start
    result = json.loads(next(out.rglob("results.json")).read_text())
    return float(result["execution_time"]), wall, float(result["score"]), float(result["max_score"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("assignment")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    a = args.assignment
    if not (ROOT / "solutions" / a / f"{a}.weights.h5").is_file():
        raise SystemExit(f"solutions/{a}/{a}.weights.h5 is missing: calibrate the full recipe and generate first")
    with tempfile.TemporaryDirectory(prefix="bench-submitted-") as tmp:
        env = dict(os.environ, AUTOENCODER_KIT_CACHE=str(Path(tmp) / "cache"))
        courses = {}
        for kind, count in COUNTS.items():
            (Path(tmp) / kind).mkdir()
            courses[kind] = course_copy(Path(tmp) / kind, a, count)
            grade(courses[kind], a, Path(tmp) / f"warm-{kind}", env)
        load_before = os.getloadavg()[0]
        runs: dict[str, list[tuple[float, float, float, float]]] = {kind: [] for kind in COUNTS}
        for i in range(args.repeats):
            for kind, course in courses.items():
                runs[kind].append(grade(course, a, Path(tmp) / f"{kind}-{i}", env))
        load_after = os.getloadavg()[0]
    summary = {}
    for kind, got in runs.items():
        grading = statistics.median(r[0] for r in got)
        command = statistics.median(r[1] for r in got)
        summary[kind] = {"execution_time": grading, "command": command, "score": [f"{r[2]:g}/{r[3]:g}" for r in got]}
        print(f"{kind:10s} grading {grading:6.1f} s, whole command {command:6.1f} s, scores {summary[kind]['score']}")
    print(f"load average {load_before:.1f} before the timed runs, {load_after:.1f} after")
    out = ROOT / "bench" / "out" / f"submitted_cost-{a}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"summary": summary, "load_average": [load_before, load_after]}, indent=1))


if __name__ == "__main__":
    main()
