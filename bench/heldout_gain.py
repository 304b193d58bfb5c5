"""Benchmark (not a test): what a student gains by training on the held-out split the grader measures with.

For MNIST the held-out split is MNIST's own test split, which is public (docs/student-weights.md). This trains the
source's solution with a profile's recipe twice per seed, in the grader's own fenced workers (as calibration does):
once on the profile's training subset, as the course asks, and once on that subset with the held-out subset added
(what a student who trains on `x_test` too would do). Both are measured by the clean worker on the same held-out
subset, and the thresholds of the profile in thresholds.json say what the difference is worth.

    .venv/bin/python bench/heldout_gain.py autoencoder --profile cpu --seeds 3
    .venv/bin/python bench/heldout_gain.py autoencoder --profile gpu --seeds 1   # the full recipe: minutes per run

Prints one line per run and the mean change of each metric; writes bench/out/heldout_gain-<a>-<profile>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from autograder.config import load_course  # noqa: E402
from autograder.files import read_thresholds  # noqa: E402
from autograder.grading import Grader, execute  # noqa: E402
from autograder.grading.plans import measure_id  # noqa: E402


def with_heldout(original):
    """`training_data` whose "train" split also holds the held-out ("test") images of the same profile."""

    def data(spec, profile, split, *, seed, data, n=None):
        arrays = original(spec, profile, split, seed=seed, data=data, n=n)
        if split != "train" or n is not None:
            return arrays
        held = original(spec, profile, "test", seed=seed, data=data)
        return {k: np.concatenate([v, held[k]]) if k in held else v for k, v in arrays.items()}

    return data


def measure(grader: Grader, answers: dict[str, str], seed: int) -> dict[str, float]:
    run = grader.run_answers(answers, seed=seed, only_training=True)
    out: dict[str, float] = {}
    for call in grader.spec.training_calls:
        got = run.measured.get(measure_id(call))
        if got is None or not got.ok:
            raise SystemExit(f"seed {seed}: {call.check} was not measured: {got and got.error}")
        out.update({k: float(v) for k, v in got.value.items()})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("assignment")
    ap.add_argument("--profile", default="cpu")
    ap.add_argument("--seeds", type=int, default=3)
    args = ap.parse_args()
    course = load_course(ROOT)
    grader = Grader.create(course, args.assignment, profile=args.profile, calibrating=True)
    answers = {c.grade_id or "": c.code for c in grader.spec.answers}
    plain = execute.training_data
    runs = []
    for seed in range(args.seeds):
        row: dict = {"seed": seed}
        for arm, source in (("train", plain), ("train+heldout", with_heldout(plain))):
            execute.training_data = source
            start = time.monotonic()
            row[arm] = measure(grader, answers, seed)
            row[f"{arm} seconds"] = round(time.monotonic() - start, 1)
        execute.training_data = plain
        runs.append(row)
        print(f"seed {seed}: train {row['train']} | train+heldout {row['train+heldout']}", flush=True)
    thresholds = read_thresholds(course.paths, args.assignment).get(args.profile, {}).get("metrics", {})
    summary = {}
    for metric in runs[0]["train"]:
        base = statistics.mean(r["train"][metric] for r in runs)
        leak = statistics.mean(r["train+heldout"][metric] for r in runs)
        limit = thresholds.get(metric, {}).get("threshold")
        summary[metric] = {"train": base, "train+heldout": leak, "change": leak / base - 1, "threshold": limit}
        words = f", full-marks threshold {limit:.4f}" if limit is not None else ""
        print(f"{metric}: {base:.5f} -> {leak:.5f} ({leak / base - 1:+.1%}){words}")
    load = os.getloadavg()[0]
    print(f"load average at the end: {load:.1f}")
    out = ROOT / "bench" / "out" / f"heldout_gain-{args.assignment}-{args.profile}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"runs": runs, "summary": summary, "load_average": load}, indent=1))


if __name__ == "__main__":
    main()
