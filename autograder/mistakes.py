"""The catalogue of known mistakes: real wrong implementations, kept beside the source notebook.

`source/<a>/mistakes.yaml` lists entries of the form

    - id: conv_transpose                 # a name for reports
      grade_id: decoder_block            # the answer cell this mistake replaces
      says: Your decoder block upsamples with Conv2DTranspose; ...   # one sentence for the student
      code: |                            # the wrong answer cell, as a student would write it
        def define_decoder_block(x, num_filters):
            ...

The grader runs each entry like a submission (the solution with that one cell replaced) once per kit version and
caches its probe results next to the reference's. When a student's check fails and their result matches a
mistake's result, the feedback names the mistake. The same entries are test fixtures: each must be diagnosed.
nbgrader never copies this file into the release (nbgrader_config.py ignores it).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import yaml

from .errors import KitError

FILENAME = "mistakes.yaml"


@dataclass(frozen=True)
class Mistake:
    id: str
    grade_id: str
    says: str
    code: str

    def key(self) -> str:
        return hashlib.sha256(f"{self.id}\0{self.grade_id}\0{self.says}\0{self.code}".encode()).hexdigest()[:16]


def load_mistakes(course_root: Path, assignment: str) -> list[Mistake]:
    path = course_root / "source" / assignment / FILENAME
    if not path.is_file():
        return []
    try:
        entries = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    except yaml.YAMLError as err:
        raise KitError(f"{path} is not valid YAML: {err}") from None
    mistakes, seen = [], set()
    for i, entry in enumerate(entries):
        keys = {"id", "grade_id", "says", "code"}
        if not isinstance(entry, dict) or set(entry) != keys:
            raise KitError(f"{path}: entry {i + 1} must have exactly the keys {', '.join(sorted(keys))}.")
        if entry["id"] in seen:
            raise KitError(f"{path}: the id '{entry['id']}' is used twice.")
        seen.add(entry["id"])
        mistakes.append(Mistake(**{k: str(v) for k, v in entry.items()}))
    return mistakes
