"""The catalogues beside a source notebook: known mistakes, and correct answers written another way.

Both files list answer cells in one format, read by one loader (`load_catalogue`):

    - id: conv_transpose                 # a name for reports, unique in its file
      grade_id: decoder_block            # the answer cell this entry replaces
      says: Your decoder block upsamples with Conv2DTranspose; ...   # mistakes.yaml: one sentence for the student
      about: Activation layers after linear convolutions.             # variants.yaml: how the entry differs
      code: |                            # the whole answer cell, as a student would write it
        def define_decoder_block(x, num_filters):
            ...

`source/<a>/mistakes.yaml` holds real wrong implementations (key `says`). The grader runs each one like a
submission (the solution with that one cell replaced) once per kit version and caches its probe results next to the
reference's; the feedback names a mistake when the student's results agree with it (grading/diagnosis.py).
`source/<a>/variants.yaml` holds correct answer cells written otherwise than the solution (key `about`); the grader
never reads it: the tests grade each entry and require full marks and no diagnosis. Neither file may reach the
release (nbgrader_config.py's CourseDirectory.ignore names both).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import yaml

from .errors import KitError
from .files import CoursePaths


@dataclass(frozen=True)
class Mistake:
    id: str
    grade_id: str
    says: str
    code: str

    def key(self) -> str:
        return hashlib.sha256(f"{self.id}\0{self.grade_id}\0{self.says}\0{self.code}".encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Variant:
    """A correct answer cell written otherwise than the solution."""

    id: str
    grade_id: str
    about: str
    code: str


def load_catalogue(path: Path, *, describe: str) -> list[dict[str, str]]:
    """The entries of one catalogue file, each with exactly the keys id, grade_id, code and `describe` (the
    description field of that kind of catalogue), all text; a missing file is an empty catalogue."""
    if not path.is_file():
        return []
    try:
        entries = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    except yaml.YAMLError as err:
        raise KitError(f"{path} is not valid YAML: {err}") from None
    if not isinstance(entries, list):
        raise KitError(f"{path} must be a list of entries (each line of the first level starting with '- id:').")
    keys = {"id", "grade_id", describe, "code"}
    found, seen = [], set()
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or set(entry) != keys:
            raise KitError(f"{path}: entry {i + 1} must have exactly the keys {', '.join(sorted(keys))}.")
        if entry["id"] in seen:
            raise KitError(f"{path}: the id '{entry['id']}' is used twice.")
        seen.add(entry["id"])
        found.append({k: str(v) for k, v in entry.items()})
    return found


def load_mistakes(course_root: Path, assignment: str) -> list[Mistake]:
    path = CoursePaths(Path(course_root)).mistakes_file(assignment)
    return [Mistake(**entry) for entry in load_catalogue(path, describe="says")]


def load_variants(course_root: Path, assignment: str) -> list[Variant]:
    path = CoursePaths(Path(course_root)).variants_file(assignment)
    return [Variant(**entry) for entry in load_catalogue(path, describe="about")]
