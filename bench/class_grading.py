"""Benchmark (not a test): grading a generated class, the kit with 1 and 2 workers against `nbgrader autograde`, and
the kit's cost per submission as the class grows.

The class (deterministic): of every 10 students, 5 submit the solution, 3 the solution with one catalogued mistake
(source/autoencoder/mistakes.yaml, in turn), 2 something broken (in turn: not JSON, the untouched release notebook,
an answer cell with a syntax error, an answer cell that raises). Every notebook's heavy training cell is the kit's CPU
recipe (as in bench/grading_time.py; in the scratch course's source, release and solution notebooks too), so
nbgrader, which executes the notebook, trains what the kit trains.

    .venv/bin/python bench/class_grading.py                      # 30 with 1 and 2 workers + nbgrader; 10, 30, 100
    .venv/bin/python bench/class_grading.py --sizes 10,30         # skip the 100 (about an hour on 2 cores)
    .venv/bin/python bench/class_grading.py --sizes 100 --no-compare   # only the 100, added to the same JSON

Each size is a scratch copy of the course; the kit's reference results are computed before the timings (a class pays
them once). Writes bench/out/class_grading.json (merged with an earlier run's sizes) and prints the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
sys.path.insert(0, str(ROOT / "bench"))
from grading_time import TRAIN_AS_RECIPE  # noqa: E402 - the same training cell as the one-notebook benchmark

A = "autoencoder"
OUT = ROOT / "bench" / "out" / "class_grading.json"
BROKEN = ("not_json", "release", "syntax_error", "raises")


def copy_course(dest: Path) -> Path:
    """A scratch course whose training cell is the recipe's in the source, release and solution notebooks alike:
    nbgrader autograde restores locked cells (the training cell is one) from the source, and the kit compares them
    with the release, so all three must agree for both tools to grade the same notebooks as unedited."""
    for item in ("course.yaml", "nbgrader_config.py"):
        shutil.copy2(ROOT / item, dest / item)
    for folder in ("source", "release", "solutions", "reference_weights"):
        shutil.copytree(ROOT / folder / A, dest / folder / A)
        if folder != "reference_weights":
            path = dest / folder / A / f"{A}.ipynb"
            nb = json.loads(path.read_text())
            for cell in _cells(nb, "train"):
                cell["source"] = TRAIN_AS_RECIPE.strip()
            path.write_text(json.dumps(nb, indent=1))
    return dest


def _cells(nb: dict, grade_id: str) -> list[dict]:
    return [c for c in nb["cells"] if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == grade_id]


def make_class(course: Path, n: int) -> dict[str, str]:
    """submitted/<student>/autoencoder/autoencoder.ipynb for n students; returns student -> kind."""
    from autograder.mistakes import load_mistakes

    solution = json.loads((course / "solutions" / A / f"{A}.ipynb").read_text())
    release = json.loads((course / "release" / A / f"{A}.ipynb").read_text())
    mistakes = load_mistakes(ROOT, A)
    kinds = {}
    for i in range(n):
        student, slot = f"s{i:03d}", i % 10
        nb = json.loads(json.dumps(solution))
        if slot < 5:
            kind = "correct"
        elif slot < 8:
            mistake = mistakes[(i // 10 * 3 + slot - 5) % len(mistakes)]
            kind = f"wrong:{mistake.id}"
            for cell in _cells(nb, mistake.grade_id):
                cell["source"] = mistake.code
        else:
            kind = f"broken:{BROKEN[(i // 10 * 2 + slot - 8) % len(BROKEN)]}"
            if kind == "broken:release":
                nb = json.loads(json.dumps(release))
            elif kind == "broken:syntax_error":
                _cells(nb, "encoder_block")[0]["source"] = "def define_encoder_block(x, num_filters)\n    return x\n"
            elif kind == "broken:raises":
                _cells(nb, "decoder_block")[0]["source"] = (
                    "def define_decoder_block(x, num_filters):\n    raise ValueError('not done yet')\n"
                )
        nb.setdefault("metadata", {})["bench_student"] = student  # every notebook's bytes differ, as in a class
        folder = course / "submitted" / student / A
        folder.mkdir(parents=True)
        text = '{"cells": [ this is not a notebook' if kind == "broken:not_json" else json.dumps(nb, indent=1)
        (folder / f"{A}.ipynb").write_text(text)
        kinds[student] = kind
    return kinds


def warm(course: Path) -> None:
    """The reference results (and the data cache), once, outside the timings."""
    code = (
        "from autograder.config import load_course; from autograder.grading import Grader; "
        f"Grader.create(load_course({str(course)!r}), {A!r}).prepare()"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=course, capture_output=True)


def kit(course: Path, workers: int, out: Path) -> dict:
    start = time.perf_counter()
    run = subprocess.run(
        [
            str(BIN / "autograder"),
            "grade",
            "submitted",
            "--assignment",
            A,
            "--workers",
            str(workers),
            "--out",
            str(out),
            "--no-progress",
            "--course",
            str(course),
        ],
        cwd=course,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - start
    if run.returncode != 0:
        raise SystemExit(f"autograder grade failed:\n{run.stdout[-2000:]}\n{run.stderr[-2000:]}")
    results = {p.parent.parent.name: json.loads(p.read_text()) for p in out.glob(f"*/{A}/results.json")}
    scores = {s: r["score"] for s, r in sorted(results.items())}
    findings = sorted({f["kind"] for r in results.values() for f in r["extra_data"]["findings"]})
    return {
        "wall_s": round(wall, 1),
        "graded": len(scores),
        "scores": scores,
        "finding_kinds": findings,
        "summary": run.stdout.splitlines()[-4:],
        "load_average_after": os.getloadavg(),
    }


def nbgrader(course: Path) -> dict:
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}")  # nbgrader runs `alembic` from PATH
    shutil.rmtree(course / "release" / A)
    subprocess.run(
        [str(BIN / "nbgrader"), "generate_assignment", A, "--force"],
        cwd=course,
        env=env,
        check=True,
        capture_output=True,
    )
    start = time.perf_counter()
    run = subprocess.run(
        [str(BIN / "nbgrader"), "autograde", A, "--force", "--ExecutePreprocessor.timeout=900"],
        cwd=course,
        env=env,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - start
    graded = len(list((course / "autograded").glob(f"*/{A}/{A}.ipynb")))
    return {
        "wall_s": round(wall, 1),
        "graded": graded,
        "returncode": run.returncode,
        "load_average_after": os.getloadavg(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,30,100", help="class sizes for the cost per submission (2 workers)")
    parser.add_argument(
        "--compare",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="at 30: the kit with 1 worker and nbgrader autograde too",
    )
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    report = json.loads(OUT.read_text()) if OUT.is_file() else {}
    report.setdefault("sizes", {})
    report["machine"] = {"cpus": os.cpu_count(), "load_average_at_start": os.getloadavg()}
    report["command"] = "bench/class_grading.py " + " ".join(sys.argv[1:])
    for n in sorted(set(sizes) | ({30} if args.compare else set())):
        with tempfile.TemporaryDirectory(prefix="class-bench-") as tmp:
            course = copy_course(Path(tmp))
            kinds = make_class(course, n)
            warm(course)
            if args.compare and n == 30:
                w1 = kit(course, 1, Path(tmp) / "w1")
                print(f"30 submissions, kit --workers 1: {w1['wall_s']:.0f} s", flush=True)
                report["compare_30"] = {"kinds": kinds, "kit_workers_1": w1}
            w2 = kit(course, 2, Path(tmp) / "w2")
            print(f"{n} submissions, kit --workers 2: {w2['wall_s']:.0f} s ({w2['wall_s'] / n:.1f} s each)", flush=True)
            report["sizes"][str(n)] = {
                "kit_workers_2_s": w2["wall_s"],
                "per_submission_s": round(w2["wall_s"] / n, 2),
                "load_average_after": os.getloadavg(),
            }
            if args.compare and n == 30:
                report["compare_30"]["kit_workers_2"] = w2
                if w1["scores"] != w2["scores"]:
                    report["compare_30"]["scores_differ"] = True
                nbg = nbgrader(course)
                print(f"30 submissions, nbgrader autograde: {nbg['wall_s']:.0f} s ({nbg['graded']} graded)", flush=True)
                c = report["compare_30"]
                c["nbgrader_autograde"] = nbg
                c["ratios"] = {
                    "kit_w1_over_w2": round(w1["wall_s"] / w2["wall_s"], 2),
                    "nbgrader_over_kit_w1": round(nbg["wall_s"] / w1["wall_s"], 2),
                    "nbgrader_over_kit_w2": round(nbg["wall_s"] / w2["wall_s"], 2),
                }
            OUT.parent.mkdir(parents=True, exist_ok=True)
            OUT.write_text(json.dumps(report, indent=1, sort_keys=True) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k != "compare_30"}, indent=1))
    if "compare_30" in report:
        print(json.dumps(report["compare_30"].get("ratios"), indent=1))


if __name__ == "__main__":
    main()
