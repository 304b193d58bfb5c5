"""Benchmark (not a test): how long each notebook's own training cell takes a student on this machine's CPU.

For each assignment, in a fresh process: the source notebook's code cells before its training cell (grade_id
`train`) run as in Jupyter, test cells left out and plots drawn off screen; `USE_REFERENCE_WEIGHTS` is then set to
False, and the training cell runs as written except that its `EPOCHS = N` becomes `EPOCHS = 1`. That one-epoch run of
the whole cell (building, the epoch, the evaluation after it) times N estimates the cell a student runs. Full
trainings take tens of minutes on 2 cores; one epoch each is a few minutes in all.

    TF_CPP_MIN_LOG_LEVEL=3 .venv/bin/python bench/notebook_training_time.py [ASSIGNMENT ...]

Prints a table (with the load average before and after each run: the machines here are shared) and writes
bench/out/notebook_training_time.json. docs/benchmarks.md keeps the figures the notebooks quote.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out" / "notebook_training_time.json"
ASSIGNMENTS = ("autoencoder", "vae", "cvae", "denoising", "gan")
TRAIN_CELL = "train"


def one_epoch(code: str) -> tuple[str, int]:
    """The training cell with its `EPOCHS = N` (alone or in a tuple assignment) set to 1, and N. The change is
    made on the syntax tree, so a comment or another number on that line cannot be taken for it."""
    tree = ast.parse(code)
    found = []
    for node in tree.body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1):
            continue
        target, value = node.targets[0], node.value
        if isinstance(target, ast.Tuple) and isinstance(value, ast.Tuple) and len(target.elts) == len(value.elts):
            pairs = list(zip(target.elts, value.elts))
        else:
            pairs = [(target, value)]
        for name, constant in pairs:
            if (
                isinstance(name, ast.Name)
                and name.id == "EPOCHS"
                and isinstance(constant, ast.Constant)
                and type(constant.value) is int
            ):
                found.append(constant.value)
                constant.value = 1
    if len(found) != 1:
        raise SystemExit(
            f"the training cell must set EPOCHS to a number exactly once at its top level "
            f"(found {len(found)} such assignments)"
        )
    return ast.unparse(tree), found[0]


def measure(assignment: str) -> dict:
    """In this process: the notebook up to its training cell, then that cell with one epoch, timed."""
    import nbformat

    nb = nbformat.read(ROOT / "source" / assignment / f"{assignment}.ipynb", as_version=4)
    grade_ids = [c.metadata.get("nbgrader", {}).get("grade_id") for c in nb.cells]
    if TRAIN_CELL not in grade_ids:
        raise SystemExit(f"{assignment}: no cell with grade_id '{TRAIN_CELL}'")
    index = grade_ids.index(TRAIN_CELL)
    code, epochs = one_epoch(nb.cells[index].source)
    namespace = {"__name__": "__main__"}
    # The notebook's relative paths (the weights) must not find the course's files: the cell has to train.
    with tempfile.TemporaryDirectory(prefix="notebook-training-") as scratch:
        os.chdir(scratch)
        for cell in nb.cells[:index]:
            if cell.cell_type == "code" and not cell.metadata.get("nbgrader", {}).get("grade"):
                exec(compile(cell.source, f"<{assignment} cell {cell.get('id')}>", "exec"), namespace)
        namespace["USE_REFERENCE_WEIGHTS"] = False  # the cvae notebook loads the published weights by default
        cpu, wall = time.process_time(), time.perf_counter()
        exec(compile(code, f"<{assignment} training cell, one epoch>", "exec"), namespace)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        os.chdir(ROOT)
    return {
        "assignment": assignment,
        "epochs": epochs,
        "one_epoch_s": round(wall, 1),
        "one_epoch_cpu_s": round(cpu, 1),
        "estimate_min": round(wall * epochs / 60, 1),
    }


def run_one(assignment: str) -> dict:
    """`measure` in a fresh interpreter (TensorFlow's threads and caches start cold, as in a new kernel); its
    output (Keras' progress bars) is dropped, its figures come back through a file."""
    with tempfile.TemporaryDirectory() as tmp:
        result = Path(tmp) / "result.json"
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", MPLBACKEND="Agg", PYTHONWARNINGS="ignore")
        before = os.getloadavg()[0]
        proc = subprocess.run(
            [sys.executable, __file__, "--one", assignment, "--result", str(result)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise SystemExit(f"{assignment}: the measurement failed:\n{proc.stderr[-3000:]}")
        report = json.loads(result.read_text())
    report["load_before"], report["load_after"] = round(before, 2), round(os.getloadavg()[0], 2)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("assignments", nargs="*", metavar="ASSIGNMENT", help=f"any of {', '.join(ASSIGNMENTS)}")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # the child process: measure one assignment
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        Path(args.result).write_text(json.dumps(measure(args.one)))
        return
    unknown = sorted(set(args.assignments) - set(ASSIGNMENTS))
    if unknown:
        parser.error(f"no assignment named {', '.join(unknown)} (choose from {', '.join(ASSIGNMENTS)})")
    print(f"{os.cpu_count()} CPUs; {sys.executable}")
    print(
        f"{'assignment':<12} {'epochs':>6} {'one epoch':>10} {'CPU time':>9} {'whole cell':>11}  load before -> after"
    )
    rows = []
    for name in args.assignments or ASSIGNMENTS:
        row = run_one(name)
        rows.append(row)
        print(
            f"{name:<12} {row['epochs']:>6} {row['one_epoch_s']:>9.0f}s {row['one_epoch_cpu_s']:>8.0f}s "
            f"{row['estimate_min']:>7.1f} min  {row['load_before']:.1f} -> {row['load_after']:.1f}",
            flush=True,
        )
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(
        json.dumps({"cpus": os.cpu_count(), "when": time.strftime("%Y-%m-%d %H:%M"), "rows": rows}, indent=1)
    )


if __name__ == "__main__":
    main()
