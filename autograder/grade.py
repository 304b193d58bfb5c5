"""Grading one submission, end to end: read, run in the worker, judge, score.

    notebook -> read + validate -> answer cells (by grade_id) + the source's setup cells -> worker (limited)
             -> probe results -> judged here against the reference's (and the catalogue of known mistakes)
             -> quality: the student's trained model, measured in a clean worker -> scored against thresholds
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from . import __version__, checks
from .config import Course, Profile
from .errors import KitError
from .mistakes import Mistake, load_mistakes
from .notebook import CheckCall, Spec, load_release, load_spec, read_submission
from .plain import decode, encode
from .results import CheckResult, Finding, SubmissionResult
from .runner import Outcome, run_plan, unsafe_tree
from .sandbox import Limits

REFERENCE = "reference"
SETUP_TIMEOUT_S = 120.0  # at least, for a setup cell (imports); answer cells and checks have the course's wall_s
MAX_MESSAGE = 1000  # a check's message quotes what the student's code gave: never a megabyte of it


@dataclass
class StudentRun:
    outcomes: dict  # item id -> Outcome, from the student's worker
    deaths: list[str]
    killed: list[str]  # items that stopped a worker
    metrics: dict  # "eval|<call id>" -> Outcome, from the clean worker
# Course folders that no worker may read: the answers, the instructor's files, other students' work.
PRIVATE = ("source", "solutions", "reference_weights", "submitted", "autograded", "feedback", "reports",
           "gradebook.db", ".autograder-cache", "tests", "bench")


def pick_profile(course: Course, assignment: str) -> Profile:
    """The GPU profile when a GPU is visible (or AUTOGRADER_PROFILE says so), else the CPU profile."""
    wanted = os.environ.get("AUTOGRADER_PROFILE") or ("gpu" if gpu_visible() else "cpu")
    profiles = course.assignment(assignment).profiles
    if wanted not in profiles:
        raise KitError(f"AUTOGRADER_PROFILE={wanted!r} is not a profile of '{assignment}' ({', '.join(profiles)}).")
    return profiles[wanted]


def gpu_visible() -> bool:
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return False
    if not shutil.which("nvidia-smi"):
        return False
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return False
    return out.returncode == 0 and "GPU" in out.stdout


@dataclass
class Grader:
    """Everything that is the same for every submission of one assignment; built once per batch."""

    course: Course
    assignment: str
    spec: Spec
    release: dict
    profile: Profile
    thresholds: dict
    mistakes: list[Mistake]
    limits: Limits
    hide: list[Path]
    _reference: dict | None = None

    @classmethod
    def create(cls, course: Course, assignment: str, *, hide_extra: list[Path] = (),
               calibrating: bool = False) -> "Grader":
        course.assignment(assignment)
        spec = load_spec(course.source_notebook(assignment), assignment)
        profile = pick_profile(course, assignment)
        quality = any(checks.get(c.check).quality for c in spec.calls)
        thresholds = load_thresholds(course, assignment, profile.name) if quality and not calibrating else {}
        hide = [course.root / p for p in PRIVATE if (course.root / p).exists()] + [Path(p) for p in hide_extra]
        return cls(course, assignment, spec, load_release(course.root, assignment), profile, thresholds,
                   load_mistakes(course.root, assignment), Limits(**course.limits), hide)

    # ------------------------------------------------------------------------------------------ reference

    def reference(self) -> dict[str, Outcome]:
        """Probe results of the source's solution and of each catalogued mistake, computed once and cached."""
        if self._reference is None:
            key = hashlib.sha256(json.dumps([__version__, self.spec.sha256, [m.key() for m in self.mistakes],
                                             self.course.seed]).encode()).hexdigest()[:16]
            path = self.course.root / ".autograder-cache" / self.assignment / f"reference-{key}.json"
            if path.is_file():
                raw = json.loads(path.read_text())
                self._reference = {k: Outcome(v["ok"], decode(v["value"]), v["error"]) for k, v in raw.items()}
            else:
                self._reference = self._compute_reference()
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(".tmp")
                tmp.write_text(json.dumps({k: {"ok": o.ok, "value": encode(o.value), "error": o.error}
                                           for k, o in self._reference.items()}))
                os.replace(tmp, path)
        return self._reference

    def _compute_reference(self) -> dict[str, Outcome]:
        variants = {REFERENCE: {c.grade_id: c.code for c in self.spec.answers}}
        for m in self.mistakes:
            variants[m.id] = dict(variants[REFERENCE], **{m.grade_id: m.code})
        plan = {"seed": self.course.seed, "item_timeout_s": self.limits.wall_s, "cells": [], "probes": []}
        for name, answers in variants.items():
            plan["cells"] += self._cells(answers, ns=name)
            plan["probes"] += self._probes(ns=name, quality=False)
        with tempfile.TemporaryDirectory(prefix="autograder-ref-") as tmp:
            run = run_plan(plan, workdir=Path(tmp), limits=replace(self.limits, wall_s=self._wall(plan)),
                           hide=self.hide)
        outcomes = run.outcomes
        for call in self.spec.calls:
            out = outcomes.get(f"{REFERENCE}|{call.id}")
            if not checks.get(call.check).quality and (out is None or not out.ok):
                raise KitError(f"the source solution of '{self.assignment}' fails check {call.id} "
                               f"({call.check}): {out.error if out else 'not run'}. Fix the source notebook.")
        return outcomes

    # ------------------------------------------------------------------------------------------ plans

    def _cells(self, answers: dict[str, str], *, ns: str) -> list[dict]:
        cells = []
        for cell in self.spec.cells:
            if cell.kind == "setup":  # the course's own code: its time is TensorFlow's import on a busy machine
                cells.append({"id": f"{ns}|setup:{cell.grade_id}", "ns": ns, "code": cell.code,
                              "timeout_s": max(self.limits.wall_s, SETUP_TIMEOUT_S)})
            elif cell.kind == "answer" and cell.grade_id in answers:
                cells.append({"id": f"{ns}|answer:{cell.grade_id}", "ns": ns, "code": answers[cell.grade_id]})
        return cells

    def _probes(self, *, ns: str, quality: bool, seed: int | None = None) -> list[dict]:
        probes = []
        for call in self.spec.calls:
            is_quality = checks.get(call.check).quality
            if is_quality and not quality:
                continue
            probe = {"id": f"{ns}|{call.id}", "ns": ns, "check": call.check, "function": call.function,
                     "args": dict(call.args)}
            if is_quality:
                probe["args"].update(recipe=self.profile.recipe(), data="train.npz",
                                     export_dir=f"export/{call.grade_id}",
                                     seed=self.course.seed if seed is None else seed)
                probe["timeout_s"] = self.profile.wall_s
            probes.append(probe)
        return probes

    def _quality_data(self, split: str) -> dict[str, np.ndarray]:
        datasets = {checks.get(c.check).dataset for c in self.spec.calls if checks.get(c.check).quality}
        arrays = {}
        for name in sorted(datasets):
            n = self.profile.train_images if split == "train" else self.profile.test_images
            arrays.update(quality_subset(name, split, n=n, seed=self.course.seed, data=self.course.data,
                                         image_size=int(self.profile.extra.get("image_size", 64))))
        return arrays

    # ------------------------------------------------------------------------------------------ grading

    def grade(self, path: Path, *, student: str) -> SubmissionResult:
        start = time.monotonic()
        sub = read_submission(Path(path), self.spec, self.release)
        findings = list(sub.findings)
        run = StudentRun({}, [], [], {})
        if sub.readable:
            run = self.run_answers(sub.answers, seed=self.course.seed, hide=[Path(path).resolve().parent])
            findings += [Finding("worker_stopped", d) for d in run.deaths] + cell_errors(run.outcomes, run.killed)
        results = [self._judge(call, run.outcomes, run.metrics) for call in self.spec.calls]
        return SubmissionResult(
            assignment=self.assignment, student=student, checks=results, findings=findings,
            max_score=self.spec.max_score, execution_time=time.monotonic() - start, kit_version=__version__,
            notebook_sha256=sub.sha256, timestamp=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))

    def run_answers(self, answers: dict[str, str], *, seed: int, hide: list[Path] = (), keep: Path | None = None,
                    quality_only: bool = False) -> "StudentRun":
        """Run answer cells (with the source's setup cells) and every probe in a worker, then measure the trained
        models in a clean worker. `keep` receives the exported models (calibration keeps the reference's)."""
        with tempfile.TemporaryDirectory(prefix="autograder-student-") as tmp:
            probes = self._probes(ns="student", quality=True, seed=seed)
            if quality_only:
                probes = [p for p in probes if "timeout_s" in p]
            plan = {"seed": seed, "item_timeout_s": self.limits.wall_s,
                    "cells": self._cells(answers, ns="student"), "probes": probes}
            files = {"train.npz": self._quality_data("train")} if self.thresholds or quality_only else {}
            run = run_plan(plan, workdir=Path(tmp), limits=replace(self.limits, wall_s=self._wall(plan)),
                           hide=self.hide + list(hide), files=files)
            metrics = self._evaluate(Path(tmp), run.outcomes)
            if keep is not None and (Path(tmp) / "export").is_dir():
                shutil.copytree(Path(tmp) / "export", keep, dirs_exist_ok=True)
        return StudentRun(run.outcomes, run.deaths, run.killed, metrics)

    def _wall(self, plan: dict) -> float:
        """The worker's wall-clock limit: each item's own limit, plus start-up. Item timers fire first."""
        timed = [p["timeout_s"] for p in plan["cells"] + plan["probes"] if "timeout_s" in p]
        untimed = len(plan["cells"]) + len(plan["probes"]) - len(timed)
        return self.limits.wall_s * untimed + sum(timed) + 60.0

    def _evaluate(self, workdir: Path, outcomes: dict[str, Outcome]) -> dict[str, Outcome]:
        """Measure each exported model in a clean worker: no student code, held-out data it alone sees."""
        evaluations, files, refused = [], {}, {}
        for call in self.spec.calls:
            check = checks.get(call.check)
            out = outcomes.get(f"student|{call.id}")
            if not check.quality or out is None or not out.ok:
                continue
            export = workdir / "export" / call.grade_id
            if not os.path.lexists(export):
                continue
            problem = unsafe_tree(export, within=workdir)
            if problem:  # a link to the reference model, a device, a disk filler: measure nothing
                refused[f"eval|{call.id}"] = Outcome(False, error=f"the exported model was refused ({problem})")
                continue
            files[f"export/{call.grade_id}"] = export
            args = {"data": "test.npz", "recipe": self.profile.recipe()}
            budget = self._param_budget(call, check)
            if budget is not None:
                args["max_params"] = budget
            if check.assets:  # reference models the measure needs, copied in: the worker cannot read the course
                for name in check.assets:
                    files[f"assets/{name}"] = self.course.root / "reference_weights" / self.assignment / name
                args["assets"] = "assets"
            evaluations.append({"id": f"eval|{call.id}", "check": call.check, "export_dir": f"export/{call.grade_id}",
                                "args": args, "timeout_s": 300})
        if not evaluations:
            return refused
        files["test.npz"] = self._quality_data("test")
        with tempfile.TemporaryDirectory(prefix="autograder-eval-") as tmp:
            run = run_plan({"seed": self.course.seed, "evaluations": evaluations}, workdir=Path(tmp),
                           limits=replace(self.limits, wall_s=600.0), hide=self.hide, files=files)
        return {**run.outcomes, **refused}

    def _param_budget(self, call: CheckCall, check) -> int | None:
        """`param_factor` times the parameters of the calibrated reference model (its published `.keras` files,
        read here without TensorFlow); None while calibrating, when those files are being made."""
        if not getattr(check, "param_factor", None) or not self.thresholds:
            return None
        folder = self.course.root / "reference_weights" / self.assignment
        files = sorted(folder.glob(f"{call.grade_id}.*.keras"))
        return int(check.param_factor * sum(keras_file_params(f) for f in files)) if files else None

    def _judge(self, call: CheckCall, outcomes: dict[str, Outcome], metrics: dict[str, Outcome]) -> CheckResult:
        check = checks.get(call.check)
        cell = next(c for c in self.spec.tests if c.grade_id == call.grade_id)
        share = cell.points / len(cell.calls)
        out = outcomes.get(f"student|{call.id}", Outcome(False, error="not run"))
        result = CheckResult(name=f"{call.grade_id}: {check.name}" + (f" #{call.index + 1}" if len(cell.calls) > 1
                                                                      else ""),
                             grade_id=call.grade_id, check=check.name, score=0.0, max_score=share, passed=False,
                             message="", hidden=call.hidden)
        if not out.ok:
            result.message = f"{call.function}: {hide_inputs(out.error) if call.hidden else out.error}"
            return result
        if check.quality:
            measured = metrics.get(f"eval|{call.id}", Outcome(False, error="the trained model was not exported"))
            if not measured.ok:
                result.message = f"Your trained model could not be measured: {measured.error}."
                return result
            verdict = check.judge(measured.value, dict(self.thresholds, profile=self.profile.name), hidden=False)
            # NaN and inf are not JSON: results.json says null instead (the message still says nan)
            result.metrics = {str(k): (float(v) if isinstance(v, (int, float)) and math.isfinite(v) else None)
                              for k, v in dict(measured.value).items()}
        else:
            ref = self.reference()[f"{REFERENCE}|{call.id}"].value
            try:
                verdict = check.judge(out.value, ref, hidden=call.hidden)
            except Exception as err:  # noqa: BLE001 - a forged result of any form is a failed check
                verdict = checks.Verdict(False, f"the result has an unexpected form ({type(err).__name__})")
            if not verdict.passed:
                result.diagnosis = self._diagnose(call, check, out.value, ref)
        fraction = 1.0 if verdict.passed else (verdict.fraction or 0.0)
        result.passed, result.score = verdict.passed, round(share * min(1.0, max(0.0, fraction)), 6)
        result.message = f"{call.function}: {verdict.message}"[:MAX_MESSAGE]
        return result

    def _diagnose(self, call: CheckCall, check, got, ref) -> str | None:
        for mistake in self.mistakes:
            wrong = self.reference().get(f"{mistake.id}|{call.id}")
            if wrong is None or not wrong.ok:
                continue
            try:
                if (check.judge(got, wrong.value, hidden=False).passed
                        and not check.judge(wrong.value, ref, hidden=False).passed):
                    return mistake.says
            except Exception:  # noqa: BLE001 - see _judge
                continue
        return None


def keras_file_params(path: Path) -> int:
    """The number of values in a `.keras` file's weights (the instructor's own file: read with h5py, no Keras)."""
    import io
    import zipfile

    import h5py

    with zipfile.ZipFile(path) as archive, archive.open("model.weights.h5") as fh:
        data = io.BytesIO(fh.read())
    sizes = []
    with h5py.File(data, "r") as h5:
        h5.visititems(lambda _, obj: sizes.append(obj.size) if isinstance(obj, h5py.Dataset) else None)
    return int(sum(sizes))


def hide_inputs(error: str) -> str:
    """An error on a hidden input, without its message (which may quote the input's shape). The grader's own
    sentences ("it ran past its time limit", "it was killed by signal 11", "not run: ...") quote no input."""
    if error.startswith(("it ", "not run: ")):
        return error
    named = re.match(r"^([A-Za-z_][\w.]*)(?::|$| \(line )", error)  # "ValueError: ...", "MemoryError (line 3..."
    kind = named.group(1) if named else "an error"
    where = re.search(r"\(line \d+ of answer cell [\w-]+\)$", error)
    return f"raised {kind} on a hidden input" + (f" {where.group(0)}" if where else "") + "."


def cell_errors(outcomes: dict[str, Outcome], killed: list[str]) -> list[Finding]:
    """A finding per answer cell that failed to run (those that stopped the worker have one already), and per
    setup cell: those are the course's own code, so their failure is the grader's problem, said as such."""
    found = []
    for item, out in outcomes.items():
        ns, _, name = item.partition("|")
        if ns != "student" or out.ok or item in killed or not name.startswith(("answer:", "setup:")):
            continue
        gid = name.split(":", 1)[1]
        if name.startswith("answer:"):
            found.append(Finding("answer_cell_error", f"Answer cell '{gid}' failed when run: {out.error}", gid))
        elif name.startswith("setup:"):
            found.append(Finding("setup_cell_error", f"The course's setup cell '{gid}' failed ({out.error}), so "
                                 "the checks after it could not run. This is not a problem with your code: please "
                                 "tell the course staff.", gid))
    return found


def load_thresholds(course: Course, assignment: str, profile: str) -> dict:
    path = course.root / "reference_weights" / assignment / "thresholds.json"
    if not path.is_file():
        raise KitError(f"no {path}: run `autograder calibrate {assignment} --profile {profile}` first.")
    data = json.loads(path.read_text())
    if profile not in data.get("profiles", {}):
        raise KitError(f"{path} has no '{profile}' profile: run `autograder calibrate {assignment} --profile "
                       f"{profile}` on a machine with that hardware, or set AUTOGRADER_PROFILE=cpu.")
    return {"metrics": data["profiles"][profile]["metrics"]}


def quality_subset(dataset: str, split: str, *, n: int, seed: int, data: dict,
                   image_size: int = 64) -> dict[str, np.ndarray]:
    """A seeded subset of a data set's train or test split, the same for every submission."""
    if dataset == "mnist":
        from .data import load_mnist

        (x_train, y_train), (x_test, y_test) = load_mnist(source=data.get("mnist_source", "auto"),
                                                          cache=data.get("cache_dir"))
        x, y = (x_train, y_train) if split == "train" else (x_test, y_test)
    elif dataset == "faces":
        from .data import load_faces

        # The face generator has its own fixed train/test split; the first n of each are the subset.
        (x_train, a_train), (x_test, a_test), _ = load_faces(
            source=data.get("faces_source", "generated"), celeba_dir=data.get("celeba_dir"),
            cache_dir=data.get("cache_dir"), image_size=image_size, n_train=n if split == "train" else 1,
            n_test=n if split != "train" else 1, seed=seed)
        x, y = (x_train, a_train) if split == "train" else (x_test, a_test)
        return {"x": x[:n], "y": y[:n]}
    else:
        raise KitError(f"unknown data set {dataset!r} in a quality check")
    order = np.random.default_rng([seed, 0 if split == "train" else 1]).permutation(len(x))[:n]
    return {"x": x[order], "y": y[order]}
