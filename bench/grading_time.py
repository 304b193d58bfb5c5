"""Benchmark (not a test): one full grading of the solution notebook by the kit, against `nbgrader autograde`
executing the same notebook with its training cell, on this machine, in one run.

For equal work, the notebook's heavy training cell is set to the kit's CPU recipe (10,000 images, one epoch,
batch 32, a 16-dimensional code) before nbgrader runs it; nbgrader executes every cell (data loading, plots),
the kit runs only answer cells, checks, and its own training. Each tool runs REPEATS times, alternating.

    .venv/bin/python bench/grading_time.py [--repeats 3]

Prints a table and writes bench/out/grading_time.json.
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

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TRAIN_AS_RECIPE = """
from pathlib import Path
autoencoder = build_autoencoder(latent_dim=16)
autoencoder.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy")
autoencoder.fit(x_train[:10000], x_train[:10000], epochs=1, batch_size=32, verbose=0)
encoder, decoder = autoencoder.get_layer("encoder"), autoencoder.get_layer("decoder")
print("test MSE:", float(((autoencoder.predict(x_test[:2000], verbose=0) - x_test[:2000]) ** 2).mean()))
"""


def kit_once(notebook: Path) -> float:
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        subprocess.run(
            [str(BIN / "autograder"), "grade", str(notebook), "--assignment", "autoencoder", "--out", out],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        elapsed = time.perf_counter() - start
        score = json.loads((Path(out) / "results.json").read_text())["score"]
    assert score == 14, f"the solution scored {score}"
    return elapsed


def with_recipe_training(path: Path, dest: Path) -> None:
    nb = json.loads(path.read_text())
    for cell in nb["cells"]:
        if cell["metadata"].get("nbgrader", {}).get("grade_id") == "train":
            cell["source"] = TRAIN_AS_RECIPE.strip()
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(json.dumps(nb))


def nbgrader_course(tmp: Path, notebook: Path) -> Path:
    """An nbgrader course whose SOURCE trains with the kit's recipe: nbgrader autograde restores locked cells (the
    training cell is one) from the gradebook, so changing only the submission would not change what it runs."""
    shutil.copy2(ROOT / "nbgrader_config.py", tmp / "nbgrader_config.py")
    with_recipe_training(
        ROOT / "source" / "autoencoder" / "autoencoder.ipynb", tmp / "source" / "autoencoder" / "autoencoder.ipynb"
    )
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}")
    subprocess.run(
        [str(BIN / "nbgrader"), "generate_assignment", "autoencoder", "--force"],
        cwd=tmp,
        env=env,
        check=True,
        capture_output=True,
    )
    with_recipe_training(notebook, tmp / "submitted" / "bench" / "autoencoder" / "autoencoder.ipynb")
    return tmp


def nbgrader_once(course: Path) -> float:
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}")
    start = time.perf_counter()
    subprocess.run(
        [str(BIN / "nbgrader"), "autograde", "autoencoder", "--force", "--ExecutePreprocessor.timeout=900"],
        cwd=course,
        env=env,
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    notebook = ROOT / "solutions" / "autoencoder" / "autoencoder.ipynb"
    kit_once(notebook)  # warm the reference cache and the data cache: a class pays these once
    kit, nbg = [], []
    with tempfile.TemporaryDirectory() as tmp:
        course = nbgrader_course(Path(tmp), notebook)
        for _ in range(args.repeats):
            kit.append(kit_once(notebook))
            nbg.append(nbgrader_once(course))
    result = {
        "kit_s": kit,
        "nbgrader_autograde_s": nbg,
        "kit_median_s": statistics.median(kit),
        "nbgrader_median_s": statistics.median(nbg),
        "ratio_nbgrader_over_kit": statistics.median(nbg) / statistics.median(kit),
        "load_average": os.getloadavg(),
    }
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / "grading_time.json").write_text(json.dumps(result, indent=1) + "\n")
    print(
        f"kit grade (isolated workers, hidden checks, training, clean measurement): "
        f"median {result['kit_median_s']:.1f} s  {[f'{v:.1f}' for v in kit]}"
    )
    print(
        f"nbgrader autograde (executes the notebook with the same training):       "
        f"median {result['nbgrader_median_s']:.1f} s  {[f'{v:.1f}' for v in nbg]}"
    )
    print(f"ratio nbgrader / kit: {result['ratio_nbgrader_over_kit']:.2f}")


if __name__ == "__main__":
    main()
