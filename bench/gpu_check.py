"""The GPU check (run by hand on a machine with a GPU; not a test): calibrate the `gpu` profile of every
assignment, then grade under it the solution, the untouched release notebook and every catalogued mistake, and
write a report.

    AUTOGRADER_BACKEND=jax python bench/gpu_check.py [--seeds 3] [--workers 4] [--assignments a,b] [--out DIR]

Calibration writes the `gpu` profile into reference_weights/<a>/thresholds.json and manifest.json (commit them);
the report goes to DIR/gpu_check.json and DIR/gpu_check.md (default bench/out/). Per assignment it gives the
calibration's and the grading's wall time, training images per second, each submission's score and diagnoses,
and the thresholds. Sized for one H100 with JAX: about 5 minutes for the three assignments (docs/gpu.md).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def submissions(root: Path, assignment: str, folder: Path) -> dict[str, str | None]:
    """submitted/<student>/<a>/<a>.ipynb for the solution, the release and each catalogued mistake; returns each
    student's expected diagnosis (None for the solution and the release)."""
    from autograder.mistakes import load_mistakes

    solution = json.loads((root / "solutions" / assignment / f"{assignment}.ipynb").read_text())
    notebooks = {
        "solution": (solution, None),
        "release": (json.loads((root / "release" / assignment / f"{assignment}.ipynb").read_text()), None),
    }
    for mistake in load_mistakes(root, assignment):
        nb = json.loads(json.dumps(solution))
        for cell in nb["cells"]:
            if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") == mistake.grade_id:
                cell["source"] = mistake.code
        notebooks[f"mistake-{mistake.id}"] = (nb, mistake.says)
    for student, (nb, _) in notebooks.items():
        path = folder / "submitted" / student / assignment / f"{assignment}.ipynb"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps(nb))
    return {student: says for student, (_, says) in notebooks.items()}


def check_assignment(course, assignment: str, *, profile: str, seeds: int, workers: int, log) -> dict:
    from autograder.batch import grade_paths
    from autograder.calibrate import calibrate
    from autograder.files import read_thresholds

    report: dict = {"assignment": assignment}
    start = time.monotonic()
    calibrate(course, assignment, profile=profile, seeds=seeds, log=lambda line: log(f"  {assignment} {line}"))
    report["calibration_s"] = round(time.monotonic() - start, 1)
    calibrated = read_thresholds(course.paths, assignment)[profile]
    report["thresholds"] = {
        m: {k: rule[k] for k in ("threshold", "fail", "mean", "std", "reference")}
        for m, rule in calibrated["metrics"].items()
    }
    report["recipe"] = calibrated["recipe"]
    speeds = [s["images_per_s"] for s in calibrated.get("training", [])]  # the calibration runs' training speed
    report["images_per_s"] = (
        {"median": statistics.median(speeds), "min": min(speeds), "max": max(speeds)} if speeds else None
    )
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        expected = submissions(course.root, assignment, Path(tmp))
        start = time.monotonic()
        summary = grade_paths(
            course,
            [Path(tmp) / "submitted"],
            assignment=assignment,
            out=Path(tmp) / "graded",
            workers=workers,
            force=True,
            profile=profile,
            log=lambda line: None,
            progress=False,
        )
        report["grading_s"] = round(time.monotonic() - start, 1)
        report["submissions"] = summary.submissions
        rows = []
        for student, says in expected.items():
            result = json.loads((Path(tmp) / "graded" / student / assignment / "results.json").read_text())
            diagnoses = sorted({t["extra_data"].get("diagnosis") for t in result["tests"]} - {None})
            rows.append(
                {
                    "student": student,
                    "score": result["score"],
                    "max_score": result["max_score"],
                    "findings": [f["kind"] for f in result["extra_data"]["findings"]],
                    "diagnosed": None if says is None else says in diagnoses,
                    "environment": result["extra_data"].get("environment"),
                }
            )
        report["results"] = rows
    sol = next(r for r in rows if r["student"] == "solution")
    rel = next(r for r in rows if r["student"] == "release")
    mistakes = [r for r in rows if r["diagnosed"] is not None]
    report["verdict"] = {
        "solution_full": sol["score"] == sol["max_score"],
        "release_zero": rel["score"] == 0,
        "mistakes_diagnosed": sum(bool(r["diagnosed"]) for r in mistakes),
        "mistakes": len(mistakes),
    }
    log(
        f"{assignment}: calibrated in {report['calibration_s']} s, graded {summary.submissions} in "
        f"{report['grading_s']} s; {report['verdict']}"
    )
    return report


def markdown(report: dict) -> str:
    lines = [
        f"GPU check of {report['when']} on {report['device']}, Keras {report['keras']} on "
        f"{report['backend']} {report['backend_version']}; `{report['command']}`, {report['total_s']} s in all.",
        "",
        "| assignment | calibration | grading (submissions) | training images/s (calibration, median) | "
        "solution | release | mistakes diagnosed |",
        "|---|---|---|---|---|---|---|",
    ]
    for a in report["assignments"]:
        sol = next(r for r in a["results"] if r["student"] == "solution")
        rel = next(r for r in a["results"] if r["student"] == "release")
        speed = f"{a['images_per_s']['median']:.0f}" if a["images_per_s"] else "-"
        lines.append(
            f"| {a['assignment']} | {a['calibration_s']} s | {a['grading_s']} s ({a['submissions']}) | "
            f"{speed} | {sol['score']:g}/{sol['max_score']:g} | {rel['score']:g}/{rel['max_score']:g} | "
            f"{a['verdict']['mistakes_diagnosed']}/{a['verdict']['mistakes']} |"
        )
    lines += [
        "",
        "| assignment | metric | threshold | failure level | reference runs (mean, std) |",
        "|---|---|---|---|---|",
    ]
    for a in report["assignments"]:
        for metric, t in a["thresholds"].items():
            runs = ", ".join(f"{v:.4f}" for v in t["reference"])
            lines.append(
                f"| {a['assignment']} | {metric} | {t['threshold']:.4f} | {t['fail']:.4f} | {runs} "
                f"({t['mean']:.4f}, {t['std']:.4f}) |"
            )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=4, help="submissions graded at once (they share the GPU)")
    parser.add_argument("--assignments", default="autoencoder,vae,cvae")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    parser.add_argument(
        "--profile",
        default="gpu",
        help="another profile only to try the script out (on a copy of "
        "the course: calibrating rewrites its thresholds)",
    )
    args = parser.parse_args()

    from autograder.config import load_course
    from autograder.hardware import gpu_visible
    from autograder.runtime import choose_backend, describe_runtime

    if args.profile == "gpu" and not gpu_visible():
        print("no GPU is visible here: this check calibrates and grades the gpu profile", file=sys.stderr)
        return 2
    course = load_course(ROOT)
    env = describe_runtime(choose_backend(course.backend))
    report = {
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "device": env["device"],
        "backend": env["backend"],
        "backend_version": env["backend_version"],
        "keras": env["keras_version"],
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "command": ("AUTOGRADER_BACKEND=" + env["backend"] + " python bench/gpu_check.py " + " ".join(sys.argv[1:])),
        "assignments": [],
    }
    start = time.monotonic()
    args.out.mkdir(parents=True, exist_ok=True)
    for assignment in args.assignments.split(","):  # the report is written after each one: a cut run keeps them
        report["assignments"].append(
            check_assignment(
                course,
                assignment,
                profile=args.profile,
                seeds=args.seeds,
                workers=args.workers,
                log=lambda line: print(line, flush=True),
            )
        )
        report["total_s"] = round(time.monotonic() - start, 1)
        (args.out / "gpu_check.json").write_text(json.dumps(report, indent=1) + "\n")
        (args.out / "gpu_check.md").write_text(markdown(report))
    print(markdown(report))
    ok = all(a["verdict"]["solution_full"] and a["verdict"]["release_zero"] for a in report["assignments"])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
