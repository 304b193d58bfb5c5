"""Benchmark (not a test): one full grading of one submission of every assignment, the course's 45 s budget.

Grades each assignment's solution notebook with `autograder grade --force` (a fresh worker, the kit's CPU recipe,
the clean measuring worker), REPEATS times, the assignments alternating so that a busy machine slows all of them
alike. The first grading of each assignment (it computes and caches the reference and the catalogue of mistakes,
once per kit version) is a warm-up and is not counted. Reports per assignment the median wall-clock time, the
median CPU time of the grading process and its workers, and the machine's load average, since timings on a shared
machine mean little without it.

    .venv/bin/python bench/three_assignments.py [--repeats 3] [--assignments autoencoder vae cvae]
    .venv/bin/python bench/three_assignments.py --assignments autoencoder gan   # the gan against the autoencoder
    .venv/bin/python bench/three_assignments.py --assignments autoencoder denoising   # the same for the denoiser

Prints a table and writes bench/out/three_assignments.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def grade_once(assignment: str) -> dict:
    notebook = ROOT / "solutions" / assignment / f"{assignment}.ipynb"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        subprocess.run(
            [str(BIN / "autograder"), "grade", str(notebook), "--assignment", assignment, "--out", out, "--force"],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        wall = time.perf_counter() - start
        result = json.loads(next(Path(out).rglob("results.json")).read_text())
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "score": result["score"],
        "max_score": result["max_score"],
        "load1": os.getloadavg()[0],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--assignments", nargs="*", default=None)
    args = parser.parse_args()
    names = args.assignments or [
        a for a in ("autoencoder", "vae", "cvae") if (ROOT / "solutions" / a / f"{a}.ipynb").is_file()
    ]
    for name in names:  # warm-up: the reference cache
        grade_once(name)
    runs: dict[str, list[dict]] = {name: [] for name in names}
    for _ in range(args.repeats):
        for name in names:
            runs[name].append(grade_once(name))
    table = {}
    for name, rs in runs.items():
        table[name] = {
            "median_wall_s": statistics.median(r["wall_s"] for r in rs),
            "median_cpu_s": statistics.median(r["cpu_s"] for r in rs),
            "scores": sorted({f"{r['score']:g}/{r['max_score']:g}" for r in rs}),
            "load1": [round(r["load1"], 1) for r in rs],
            "runs": rs,
        }
    total_wall = sum(t["median_wall_s"] for t in table.values())
    total_cpu = sum(t["median_cpu_s"] for t in table.values())
    print(f"{'assignment':<12} {'wall s (median)':>16} {'cpu s (median)':>15}  scores  load (1 min) per run")
    for name, t in table.items():
        print(
            f"{name:<12} {t['median_wall_s']:>16.1f} {t['median_cpu_s']:>15.1f}  {','.join(t['scores'])}  {t['load1']}"
        )
    print(f"{'all':<12} {total_wall:>16.1f} {total_cpu:>15.1f}  (budget: about 45 s of wall-clock time on 2 cores)")
    # Each assignment against the autoencoder, graded in the same run (the gan's budget: at most 1.5 times).
    relative = {}
    if "autoencoder" in table:
        base = table["autoencoder"]
        for name, t in table.items():
            if name != "autoencoder":
                relative[name] = {
                    "wall": t["median_wall_s"] / base["median_wall_s"],
                    "cpu": t["median_cpu_s"] / base["median_cpu_s"],
                }
                print(
                    f"{name} / autoencoder: {relative[name]['wall']:.2f}x wall-clock, "
                    f"{relative[name]['cpu']:.2f}x CPU time"
                )
    out = ROOT / "bench" / "out"
    out.mkdir(exist_ok=True)
    (out / "three_assignments.json").write_text(
        json.dumps(
            {
                "cpu_count": os.cpu_count(),
                "repeats": args.repeats,
                "assignments": table,
                "total_median_wall_s": total_wall,
                "total_median_cpu_s": total_cpu,
                "relative_to_autoencoder": relative,
            },
            indent=1,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
