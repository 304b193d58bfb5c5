"""Calibration: train the source's solution under a profile with several seeds and derive the thresholds.

Threshold rule (lower-is-better metrics; mirrored for higher-is-better): the failure level is the best trivial
baseline (for reconstruction: predicting the mean image). Calibration refuses a recipe whose worst reference run
does not reach half the failure level. The full-marks threshold sits a fifth of the way from the worst reference
run to the failure level, which leaves room for seed-to-seed noise and for correct solutions written differently.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import platform
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__, checks
from .checks.quality.base import WEIGHTS, SourceBuilder
from .config import Course
from .errors import KitError
from .files import BACKENDS, atomic_path, read_thresholds, write_json
from .grading import Grader
from .grading.data import training_data
from .grading.plans import measure_id, probe_id
from .grading.scoring import device_fault
from .hardware import gpu_visible
from .items import STUDENT
from .notebook import CheckCall, Spec

RULE = (
    "fail = the best trivial baseline; refuse unless the worst reference run is at most half of it; "
    "threshold = worst + 0.2 * (fail - worst); higher-is-better metrics mirrored"
)
MARGIN = 0.2


def derive(values: list[float], baselines: dict[str, float], *, higher_is_better: bool) -> dict:
    sign = -1.0 if higher_is_better else 1.0
    runs = [sign * v for v in values]
    fail = min(sign * b for b in baselines.values())
    worst = max(runs)
    if fail - worst < 0.5 * abs(fail):
        raise KitError(
            f"the reference reaches only {sign * worst:.4f} against a trivial baseline of "
            f"{sign * fail:.4f}: the recipe is too weak to grade with. Give the profile more data or "
            "epochs."
        )
    threshold = worst + MARGIN * (fail - worst)
    return {
        "threshold": sign * threshold,
        "fail": sign * fail,
        "higher_is_better": higher_is_better,
        "reference": values,
        "mean": float(np.mean(values)),
        "std": float(np.std(values)),
        "baselines": baselines,
    }


def training_speed(probe_value) -> dict:
    """How fast a calibration run trained, from what the training probe reported: {"seconds", "images",
    "images_per_s"}, or {} when it reported nothing usable. Kept out of results.json, which must be the same each
    time a submission is graded."""
    try:
        seconds, images = float(probe_value["train_seconds"]), int(probe_value["train_images"])
    except (TypeError, KeyError, ValueError):
        return {}
    if not (math.isfinite(seconds) and seconds > 0 and images > 0):
        return {}
    return {"seconds": round(seconds, 2), "images": images, "images_per_s": round(images / seconds, 1)}


def calibrate(course: Course, assignment: str, *, profile: str, seeds: int = 3, log=print) -> Path:
    grader = Grader.create(course, assignment, profile=profile, calibrating=True)
    quality = grader.spec.training_calls
    if not quality:
        raise KitError(f"'{assignment}' has no training-based check to calibrate.")
    answers = {c.grade_id or "": c.code for c in grader.spec.answers}  # "" as in `plans.cells`
    data = {
        split: training_data(grader.spec, grader.profile, split, seed=course.seed, data=course.data)
        for split in ("train", "test")
    }
    train, test = data["train"], data["test"]
    out_dir = course.paths.reference_dir(assignment)
    out_dir.mkdir(parents=True, exist_ok=True)
    per_metric: dict[str, list[float]] = {}
    speeds: list[dict] = []
    # Reference models that the measures use (e.g. a classifier) come first: every evaluation below needs them.
    published: list[Path] = []
    first_calls: dict[str, CheckCall] = {}
    for call in quality:
        first_calls.setdefault(call.check, call)  # each check once, with the builder its first call names
    for call in first_calls.values():
        published += checks.training_check(call.check).train_assets(
            out_dir,
            train=train,
            test=test,
            recipe=grader.profile.recipe(),
            seed=course.seed,
            source_builder=source_builder(grader.spec, call.function),
        )
    with tempfile.TemporaryDirectory(prefix="autograder-calibrate-") as tmp:
        for seed in range(seeds):
            keep = Path(tmp) / f"seed{seed}"
            run = grader.run_answers(answers, seed=seed, keep=keep, only_training=True)
            if run.device is not None and gpu_visible() and device_fault(profile, grader.backend, run.device):
                # a GPU is here but the workers did not reach it: thresholds calibrated so would be wrong for good.
                # Without a GPU the recipe is calibrated on the CPU (the full recipe of submitted weights,
                # docs/student-weights.md), and `calibrated_on` says so; a GPU calibration replaces it.
                raise KitError(
                    f"calibration of the gpu profile stopped: the workers' Keras backend ({grader.backend}) computed "
                    f"on {run.device.describe()}, not on a GPU. `autograder doctor --bisect` says which fence stops it."
                )
            device = run.device.describe() if run.device is not None else grader.environment["device"]
            for call in quality:
                measured = run.measured.get(measure_id(call))
                if measured is None or not measured.ok:
                    trained = run.outcomes.get(probe_id(STUDENT, call))
                    raise KitError(
                        f"calibration run with seed {seed} failed: "
                        f"{(measured and measured.error) or (trained and trained.error)}"
                    )
                for metric, value in measured.value.items():
                    per_metric.setdefault(metric, []).append(float(value))
                speeds.append(training_speed(run.outcomes[probe_id(STUDENT, call)].value))
                log(f"seed {seed}: " + ", ".join(f"{k} {v:.4f}" for k, v in measured.value.items()))
        baselines, higher = {}, set()
        for name in dict.fromkeys(c.check for c in quality):
            baselines.update(checks.training_check(name).baselines(test, assets=out_dir))
            higher |= set(checks.training_check(name).higher_is_better)
        metrics = {m: derive(v, baselines[m], higher_is_better=m in higher) for m, v in per_metric.items()}
        profiles = read_thresholds(course.paths, assignment)
        own = owns(profiles.get(profile), grader.environment["backend"])
        models = course.paths.models_dir(assignment, profile)
        models.mkdir(parents=True, exist_ok=True)
        whole = course.paths.reference_weights_name(assignment)  # the name under which the notebook loads them
        for call in quality if own else ():  # another backend's calibration leaves the published models be
            source = Path(tmp) / "seed0" / call.grade_id
            for file in sorted(source.iterdir()):
                name = whole if file.name == WEIGHTS else f"{call.grade_id}.{file.name}"
                with atomic_path(models / name) as part:  # an interrupted copy never replaces a published model
                    shutil.copy2(file, part)
                published.append(models / name)
    entry = {
        "rule": RULE,
        "seeds": list(range(seeds)),
        "recipe": grader.profile.recipe(),
        "metrics": metrics,
        "training": [s for s in speeds if s],
        "calibrated_on": {**{k: grader.environment[k] for k in ("backend", "backend_version")}, "device": device},
    }
    place_calibration(profiles, profile, entry)
    thresholds_file = write_json(
        course.paths.thresholds_file(assignment), {"assignment": assignment, "profiles": profiles}
    )
    if own:  # another backend's calibration leaves the published models, and their manifest, as they were
        write_manifest(out_dir, assignment, profile, grader.profile.recipe(), published, grader.environment)
    return thresholds_file


def owns(current: Any, backend: str) -> bool:
    """Whether a calibration on `backend` is a profile's own (its entry in thresholds.json, whose models are the
    published ones): no entry yet, or one calibrated on that backend (or on one that it does not name)."""
    if not isinstance(current, dict):
        return True
    calibrated_on = current.get("calibrated_on")
    return not isinstance(calibrated_on, dict) or calibrated_on.get("backend") in (None, backend)


def place_calibration(profiles: dict[str, Any], profile: str, entry: dict[str, Any]) -> None:
    """Put a new calibration of `profile` into thresholds.json's `profiles`, in place. A profile's entry is the
    calibration on its own backend (`owns`); calibrating there again keeps the other backends' calibrations. One
    on another backend goes under entry["backends"][backend] (files.calibration reads it when grading there): a
    model trains another way on each backend, a GAN above all, and its thresholds differ."""
    backend = entry["calibrated_on"]["backend"]
    current = profiles.get(profile)
    if isinstance(current, dict) and not owns(current, backend):
        current.setdefault(BACKENDS, {})[backend] = entry
        return
    others = dict(current.get(BACKENDS) or {}) if isinstance(current, dict) else {}
    others.pop(backend, None)
    profiles[profile] = {**entry, **({BACKENDS: others} if others else {})}


def run_source(spec: Spec) -> dict[str, Any]:
    """The source notebook's setup and answer cells run in this process, in a fresh namespace, which is returned:
    the solution's functions by name. Only for the instructor's own notebook, never a submission."""
    namespace: dict[str, Any] = {"__name__": "__main__"}
    for cell in spec.cells:
        if cell.kind in ("setup", "answer"):
            exec(compile(cell.code, f"<{spec.assignment}.ipynb:{cell.grade_id}>", "exec"), namespace)  # noqa: S102
    return namespace


def source_builder(spec: Spec, function: str) -> SourceBuilder:
    """What a training check gets of the course for its assets: the source's `function` (the builder its test cell
    names), made only when the check asks, since running the source's cells costs a Keras import and more."""
    return lambda: run_source(spec)[function]


def write_manifest(
    out_dir: Path, assignment: str, profile: str, recipe: dict, files: list[Path], environment: dict
) -> None:
    path = out_dir / "manifest.json"
    manifest: dict[str, Any] = json.loads(path.read_text()) if path.is_file() else {"assignment": assignment}
    manifest.setdefault("profiles", {})[profile] = {
        "recipe": recipe,
        "seed_of_published_weights": 0,
        "files": {f.relative_to(out_dir).as_posix(): hashlib.sha256(f.read_bytes()).hexdigest() for f in files},
        "versions": {
            "kit": __version__,
            environment["backend"]: environment["backend_version"],
            "keras": environment["keras_version"],
            "numpy": np.__version__,
            "python": platform.python_version(),
        },
        "device": environment["device"],
        "calibrated": dt.date.today().isoformat(),
    }
    write_json(path, manifest)
