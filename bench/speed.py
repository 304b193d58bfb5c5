"""Benchmark (not a test): the three speed figures of the kit, in one run on one machine.

1. Per assignment: one full grading (`autograder grade --force`: the student's worker, every check including
   training, the clean measuring worker) of every assignment's solution; the first grading of each assignment
   (it computes and caches the reference results) is a warm-up and is not counted. Prints the average over the
   assignments of each one's median.
2. Training: images per second of the training inside the grader (the training probe's own `fit` timing, in the
   fenced worker) over the same model and recipe trained by a bare `model.fit` on NumPy arrays in one plain
   process (for the GAN, which trains batch by batch, its own loop in a plain process). The two alternate.
3. A class: the 30 generated submissions of bench/class_grading.py (5 of 10 correct, 3 with a catalogued mistake,
   2 broken), `autograder grade --workers 2` against `nbgrader autograde` (which grades one notebook after the
   other; it has no setting for more), both training with the same recipe.

    .venv/bin/python bench/speed.py                       # all three (about 20 minutes on 2 cores)
    .venv/bin/python bench/speed.py --skip class          # the two quick ones
    .venv/bin/python bench/speed.py --class-size 10 --workers 2
    .venv/bin/python bench/speed.py --skip assignments training class --fork-class-size 6   # fork server only

4. The fork server (docs/isolation.md): the same generated class graded by `autograder grade --workers N` with every
   worker a new interpreter and with every worker forked from a fork server ($AUTOGRADER_FORK_SERVER=0 / 1), the
   two alternating in one run; prints both medians and their ratio, and checks that every score is the same.

Each section prints the load average before and after it. Writes bench/out/speed.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
import class_grading  # noqa: E402 - the generated class and both tools' runs
from three_assignments import grade_once  # noqa: E402 - one `autograder grade --force` of a solution

OUT = ROOT / "bench" / "out" / "speed.json"
SECTIONS = ("assignments", "training", "class", "fork_server")


def load() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def assignments() -> list[str]:
    from autograder.config import load_course

    course = load_course(ROOT)
    return [a for a in course.assignments if (ROOT / "solutions" / a / f"{a}.ipynb").is_file()]


# ------------------------------------------------------------------------------------------------ 1. assignments


def per_assignment(names: list[str], repeats: int) -> dict:
    report = {"load_before": load()}
    for name in names:  # warm-up: the reference cache
        grade_once(name)
    runs: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(repeats):
        for name in names:  # alternating: a busy moment slows every assignment alike
            run = grade_once(name)
            if run["score"] != run["max_score"]:
                raise SystemExit(f"the {name} solution scored {run['score']}/{run['max_score']}")
            runs[name].append(round(run["wall_s"], 2))
    medians = {name: statistics.median(values) for name, values in runs.items()}
    report.update(runs=runs, median_s=medians, average_s=round(statistics.mean(medians.values()), 2), load_after=load())
    return report


# ------------------------------------------------------------------------------------------------ 2. training


def solution_namespace(assignment: str) -> dict:
    """The solution notebook's setup and answer cells run in one namespace, as the worker runs them."""
    from autograder.notebook import load_release, load_spec
    from autograder.submission import read_submission
    from autograder.worker import compile_cell

    spec = load_spec(ROOT / "source" / assignment / f"{assignment}.ipynb", assignment)
    sub = read_submission(ROOT / "solutions" / assignment / f"{assignment}.ipynb", spec, load_release(ROOT, assignment))
    namespace = {"__name__": "__main__"}
    for cell in spec.cells:
        code = cell.code if cell.kind == "setup" else sub.answers.get(cell.grade_id)
        if cell.kind in ("setup", "answer") and code is not None:
            exec(compile_cell({"id": f"student|answer:{cell.grade_id}", "code": code}), namespace)
    return namespace


def bare_fit(assignment: str) -> dict:
    """In this plain process: the training check's model built from the solution, trained by `model.fit` on
    arrays with the profile's recipe. Returns images per second of `fit` alone."""
    import keras

    from autograder.checks import training_check
    from autograder.checks.student import call_student, keras_model
    from autograder.config import load_course
    from autograder.grading.data import training_data
    from autograder.grading.plans import submitted
    from autograder.grading.profile import choose_profile
    from autograder.notebook import load_spec

    course = load_course(ROOT)
    spec = load_spec(course.source_notebook(assignment), assignment)
    profile = choose_profile(course, assignment, "cpu")
    call = next(c for c in spec.training_calls if not submitted(c))  # the retraining check, not its twin
    check, recipe = training_check(call.check), profile.recipe()
    data = training_data(spec, profile, "train", seed=course.seed, data=course.data)
    namespace = solution_namespace(assignment)
    keras.utils.set_random_seed(course.seed)
    if check.name == "gan_quality":  # no `fit`: its own batch loop, outside the sandbox
        with tempfile.TemporaryDirectory() as tmp:
            arrays = Path(tmp) / "train.npz"
            import numpy as np

            np.savez(arrays, **data)
            out = check.probe(
                namespace[call.function], recipe=recipe, data=str(arrays), export_dir=f"{tmp}/e", seed=course.seed
            )
        return {"images_per_s": out["train_images"] / out["train_seconds"], "how": "the check's batch loop"}
    x, y = data["x"], data.get("y")
    args = check.builder_args(x=x, y=y, recipe=recipe, settings=check.settings(recipe), seed=course.seed)
    model = call_student(namespace[call.function], **args, returns=keras_model)
    model.compile(
        optimizer=keras.optimizers.Adam(recipe["learning_rate"]), **({"loss": check.loss} if check.loss else {})
    )
    inputs, targets = check.fit_data(x, y)
    start = time.perf_counter()
    model.fit(inputs, targets, batch_size=recipe["batch_size"], epochs=recipe["epochs"], shuffle=True, verbose=0)
    seconds = time.perf_counter() - start
    return {"images_per_s": len(x) * recipe["epochs"] / seconds, "how": "model.fit on arrays"}


def grader_fit(assignment: str) -> dict:
    """The same training inside the grader: the solution's training probe in its fenced worker."""
    from autograder.config import load_course
    from autograder.grading import Grader
    from autograder.submission import read_submission

    grader = Grader.create(load_course(ROOT), assignment, profile="cpu")
    sub = read_submission(ROOT / "solutions" / assignment / f"{assignment}.ipynb", grader.spec, grader.release)
    run = grader.run_answers(sub.answers, seed=grader.course.seed, only_training=True)
    value = next(
        o.value for o in run.outcomes.values() if o.ok and isinstance(o.value, dict) and "train_seconds" in o.value
    )
    return {"images_per_s": value["train_images"] / value["train_seconds"]}


def in_fresh_process(function: str, assignment: str) -> dict:
    """`function(assignment)` of this file in a new interpreter (each side imports Keras and builds alone)."""
    code = (
        f"import json, sys; sys.path.insert(0, {str(ROOT / 'bench')!r}); import speed; "
        f"print(json.dumps(speed.{function}({assignment!r})))"
    )
    run = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
    )
    if run.returncode != 0:
        raise SystemExit(f"{function}({assignment}) failed:\n{run.stderr[-3000:]}")
    return json.loads(run.stdout.strip().splitlines()[-1])


def training(names: list[str], repeats: int) -> dict:
    report = {"load_before": load(), "assignments": {}}
    for name in names:
        grader, bare = [], []
        for _ in range(repeats):
            grader.append(round(in_fresh_process("grader_fit", name)["images_per_s"], 1))
            bare.append(round(in_fresh_process("bare_fit", name)["images_per_s"], 1))
        ratio = statistics.median(grader) / statistics.median(bare)
        report["assignments"][name] = {
            "grader_images_per_s": grader,
            "bare_images_per_s": bare,
            "ratio": round(ratio, 3),
        }
        print(
            f"  {name}: grader {statistics.median(grader):.0f} images/s, bare fit "
            f"{statistics.median(bare):.0f} images/s, ratio {ratio:.2f}",
            flush=True,
        )
    report["ratio_mean"] = round(statistics.mean(a["ratio"] for a in report["assignments"].values()), 3)
    report["load_after"] = load()
    return report


# ------------------------------------------------------------------------------------------------ 3. a class


def a_class(size: int, workers: int) -> dict:
    report = {"load_before": load(), "size": size, "workers": workers}
    with tempfile.TemporaryDirectory(prefix="speed-class-") as tmp:
        course = class_grading.copy_course(Path(tmp))
        report["kinds"] = class_grading.make_class(course, size)
        class_grading.warm(course)
        kit = class_grading.kit(course, workers, Path(tmp) / "kit")
        print(f"  kit --workers {workers}: {kit['wall_s']:.0f} s", flush=True)
        nbg = class_grading.nbgrader(course)
        print(f"  nbgrader autograde: {nbg['wall_s']:.0f} s ({nbg['graded']} graded)", flush=True)
    report.update(
        kit_s=kit["wall_s"],
        kit_scores=kit["scores"],
        nbgrader_s=nbg["wall_s"],
        nbgrader_graded=nbg["graded"],
        ratio=round(kit["wall_s"] / nbg["wall_s"], 3),
        load_after=load(),
    )
    return report


# ------------------------------------------------------------------------------------------------ 4. fork server


def fork_server(size: int, workers: int, repeats: int) -> dict:
    report: dict = {"load_before": load(), "size": size, "workers": workers}
    runs: dict[str, list[float]] = {"fresh": [], "forked": []}
    scores: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="speed-fork-") as tmp:
        course = class_grading.copy_course(Path(tmp))
        report["kinds"] = class_grading.make_class(course, size)
        class_grading.warm(course)
        for i in range(repeats):
            for side, switch in (("fresh", "0"), ("forked", "1")):  # alternating: a busy moment slows both alike
                os.environ["AUTOGRADER_FORK_SERVER"] = switch
                try:
                    kit = class_grading.kit(course, workers, Path(tmp) / f"out-{side}-{i}")
                finally:
                    del os.environ["AUTOGRADER_FORK_SERVER"]
                runs[side].append(kit["wall_s"])
                if scores.setdefault(side, kit["scores"]) != kit["scores"]:
                    raise SystemExit(f"the {side} gradings gave different scores from one run to the next")
                print(f"  {side}: {kit['wall_s']:.0f} s, load {load()}", flush=True)
    if scores["fresh"] != scores["forked"]:
        raise SystemExit(f"forked and fresh workers scored differently: {scores}")
    medians = {side: statistics.median(values) for side, values in runs.items()}
    report.update(
        runs=runs,
        median_s=medians,
        ratio=round(medians["forked"] / medians["fresh"], 3),
        scores=scores["forked"],
        load_after=load(),
    )
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2, help="gradings per assignment, trainings per side")
    parser.add_argument("--class-size", type=int, default=30)
    parser.add_argument("--workers", type=int, default=2, help="the kit's workers for the class")
    parser.add_argument("--skip", nargs="*", default=[], choices=SECTIONS)
    parser.add_argument("--assignments", nargs="*", default=None)
    parser.add_argument("--fork-class-size", type=int, default=10, help="the class graded with and without forking")
    args = parser.parse_args()
    names = args.assignments or assignments()
    report = {
        "command": "bench/speed.py " + " ".join(sys.argv[1:]),
        "cpus": os.cpu_count(),
        "date": time.strftime("%Y-%m-%d %H:%M"),
    }
    if "assignments" not in args.skip:
        print("one submission per assignment ...", flush=True)
        report["assignments"] = per_assignment(names, args.repeats)
    if "training" not in args.skip:
        print("training inside the grader against a bare fit ...", flush=True)
        report["training"] = training(names, args.repeats)
    if "class" not in args.skip:
        print(f"a class of {args.class_size} ...", flush=True)
        report["class"] = a_class(args.class_size, args.workers)
    if "fork_server" not in args.skip:
        print(f"a class of {args.fork_class_size}, new interpreters against a fork server ...", flush=True)
        report["fork_server"] = fork_server(args.fork_class_size, args.workers, args.repeats)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(report, indent=1) + "\n")
    print()
    if "assignments" in report:
        a = report["assignments"]
        each = ", ".join(f"{name} {seconds:.1f}" for name, seconds in a["median_s"].items())
        print(
            f"per assignment, one submission: {a['average_s']:.1f} s on average ({each}); "
            f"load {a['load_before']} -> {a['load_after']}"
        )
    if "training" in report:
        t = report["training"]
        each = ", ".join(f"{name} {a['ratio']:.2f}" for name, a in t["assignments"].items())
        print(
            f"training in the grader / bare fit: {t['ratio_mean']:.2f} on average ({each}); "
            f"load {t['load_before']} -> {t['load_after']}"
        )
    if "class" in report:
        c = report["class"]
        print(
            f"class of {c['size']}: kit {c['kit_s']:.0f} s / nbgrader {c['nbgrader_s']:.0f} s = {c['ratio']:.2f}; "
            f"load {c['load_before']} -> {c['load_after']}"
        )
    if "fork_server" in report:
        f = report["fork_server"]
        print(
            f"class of {f['size']}, fork server / new interpreters: {f['median_s']['forked']:.0f} s / "
            f"{f['median_s']['fresh']:.0f} s = {f['ratio']:.2f}; load {f['load_before']} -> {f['load_after']}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
