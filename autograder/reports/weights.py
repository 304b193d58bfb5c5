"""Submitted weights across a class: the same file handed in by several students, or the course's own reference
weights handed in as a student's. Each results.json records the sha256 of the weights file beside the notebook
(`SubmissionResult.weights`); nothing here reads a weights file of a student.

    reference_hashes   sha256 -> the course file it is (every reference weights file: published, calibrated,
                       and the solutions' copy)
    flag_weights       the flags, one per student concerned, as rows of the summary's findings table
    weights_csv        reports/<a>/weights.csv: every student's hash and what it matched, for a TA to sort
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..files import CoursePaths
from .reading import GradedSubmission

SHARED = "weights_shared"  # the finding kind: the same file as other students of the class
REFERENCE = "weights_reference"  # the finding kind: a file of the course's reference weights


@dataclass(frozen=True)
class WeightsFlag:
    student: str
    kind: str  # SHARED or REFERENCE
    sha256: str
    message: str

    def row(self) -> dict[str, str | None]:
        """The flag as a row of the summary's findings table."""
        return {"student": self.student, "kind": self.kind, "message": self.message, "grade_id": None}


def reference_hashes(course_root: Path, assignment: str) -> dict[str, str]:
    """sha256 -> the course's file it belongs to: every weights file in reference_weights/<a>/ (each profile's) and
    the copies generation publishes (release/<a>/, solutions/<a>/)."""
    paths = CoursePaths(Path(course_root))
    folders = [paths.reference_dir(assignment), paths.release_dir(assignment), paths.solutions_dir(assignment)]
    found: dict[str, str] = {}
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in sorted(folder.rglob("*.weights.h5")) + sorted(folder.rglob("*.keras")):
            if path.is_file() and not path.is_symlink():
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
                found.setdefault(digest, path.relative_to(paths.root).as_posix())
    return found


def submitted_hashes(subs: Iterable[GradedSubmission]) -> dict[str, str]:
    """student -> the sha256 of the weights file their results.json records (students without one left out)."""
    out = {}
    for sub in subs:
        sha = sub.result.weights_sha256 if sub.result is not None else None
        if sha:
            out[sub.student] = sha
    return out


def flag_weights(subs: Sequence[GradedSubmission], reference: Mapping[str, str]) -> list[WeightsFlag]:
    """Students whose weights file is byte for byte another student's, or the course's reference weights."""
    hashes = submitted_hashes(subs)
    by_hash: dict[str, list[str]] = {}
    for student, sha in sorted(hashes.items()):
        by_hash.setdefault(sha, []).append(student)
    flags = []
    for student, sha in sorted(hashes.items()):
        if sha in reference:
            flags.append(
                WeightsFlag(
                    student,
                    REFERENCE,
                    sha,
                    f"The submitted weights file is the course's reference weights ({reference[sha]}, sha256 "
                    f"{sha[:12]}), not a model the student trained.",
                )
            )
        others = [s for s in by_hash[sha] if s != student]
        if others:
            flags.append(
                WeightsFlag(
                    student,
                    SHARED,
                    sha,
                    f"The same weights file (sha256 {sha[:12]}) as {', '.join(others)}: identical trained weights "
                    "are not expected from students who train on their own.",
                )
            )
    return flags


def weights_csv(subs: Sequence[GradedSubmission], flags: Sequence[WeightsFlag]) -> str:
    """Every student with a weights file: its sha256, and what it matched (empty when nothing)."""
    kinds: dict[str, list[str]] = {}
    for flag in flags:
        kinds.setdefault(flag.student, []).append(flag.kind)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["student", "weights_sha256", "flags"])
    for student, sha in sorted(submitted_hashes(subs).items()):
        writer.writerow([student, sha, " ".join(kinds.get(student, []))])
    return out.getvalue()
