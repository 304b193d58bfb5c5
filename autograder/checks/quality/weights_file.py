"""The weights file a student submits beside the notebook: found, vetted and hashed in the grader's process, before
anything of it reaches a worker. Only the standard library (and no Keras): the grader reads the file as data.

    <assignment>.weights.h5   Keras weights (HDF5): what `model.save_weights` writes; it goes into the worker as is
    <assignment>.keras        a whole saved model (a zip): its config is read as JSON and refused when it holds code
                              (a Lambda layer, a function); only the weights inside it (`model.weights.h5`) go into
                              the worker, where they are loaded into the model the student's code builds. No layer
                              of the file is ever built, which is stricter than Keras' safe mode.

A file over `MAX_BYTES` is refused from its size alone, before a byte is read; a symbolic link or anything but a
regular file is refused too (it could point at the reference weights). A missing file and a refused one are each a
finding that costs the submitted-weights check its points, and nothing else.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MAX_BYTES = 64 * 2**20  # the course's models hold at most a few MB of weights; a limit far above that
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"  # the first bytes of every HDF5 file Keras writes
KERAS_WEIGHTS = "model.weights.h5"  # Keras' own name for the weights inside a .keras archive
KERAS_CONFIG = "config.json"
MAX_CONFIG_BYTES = 4 * 2**20
# What a .keras config holds when the file carries code: a Lambda layer (its function marshalled into the file), a
# serialized lambda, or a layer that loads a TensorFlow SavedModel. (A function named by its registered name, such
# as a loss, is no code of the file: Keras' safe mode allows it too.)
CODE_CLASSES = frozenset({"Lambda", "__lambda__", "TFSMLayer"})

NO_WEIGHTS = "no_trained_weights"  # the finding's kind when there is no file
WEIGHTS_REFUSED = "weights_refused"  # the finding's kind when the file cannot be used


def file_names(assignment: str) -> tuple[str, ...]:
    """The names the grader looks for beside the notebook, the preferred first."""
    return (f"{assignment}.weights.h5", f"{assignment}.keras")


@dataclass(frozen=True)
class SubmittedWeights:
    """What the grader found beside a notebook. `weights` are HDF5 bytes for the worker, or None with `problem`
    (a sentence for the student) and `kind` (the finding's kind)."""

    name: str  # the file's name, or the expected name when there is none
    sha256: str | None = None  # of the file as submitted
    size: int = 0
    weights: bytes | None = None
    problem: str | None = None
    kind: str | None = None

    @property
    def usable(self) -> bool:
        return self.weights is not None

    def summary(self) -> dict[str, Any]:
        """What results.json records of the file."""
        return {"file": self.name, "sha256": self.sha256, "bytes": self.size, "used": self.usable}


def find_weights(folder: Path, assignment: str, *, max_bytes: int = MAX_BYTES) -> SubmittedWeights:
    """The weights file beside a notebook in `folder`, vetted; never raises for anything about the file."""
    for name in file_names(assignment):
        path = Path(folder) / name
        if os.path.lexists(path):
            return read_weights(path, max_bytes=max_bytes)
    expected = file_names(assignment)[0]
    return SubmittedWeights(
        expected,
        problem=(
            f"no trained weights submitted: {expected} was not beside the notebook (the notebook's last training "
            "cell, or `autograder train`, writes it; submit it with the notebook)"
        ),
        kind=NO_WEIGHTS,
    )


def read_weights(path: Path, *, max_bytes: int = MAX_BYTES) -> SubmittedWeights:
    """One weights file, vetted: its size from `lstat` before any read, then its format."""
    name = path.name

    def refused(why: str, sha256: str | None = None, size: int = 0) -> SubmittedWeights:
        return SubmittedWeights(name, sha256, size, problem=f"{name} was refused: {why}", kind=WEIGHTS_REFUSED)

    try:
        info = path.lstat()
        if not stat.S_ISREG(info.st_mode):
            what = "a symbolic link" if stat.S_ISLNK(info.st_mode) else "not a regular file"
            return refused(f"it is {what}; submit the file itself")
        if info.st_size > max_bytes:
            return refused(
                f"it is {info.st_size / 2**20:,.0f} MB, over the {max_bytes / 2**20:g} MB limit for a weights file "
                f"(the course's models need a few MB)",
                size=info.st_size,
            )
        with open(path, "rb", opener=_no_follow) as fh:
            raw = fh.read(max_bytes + 1)
    except OSError as err:
        return refused(f"it could not be read ({err.strerror})")
    if len(raw) > max_bytes:  # it grew after lstat
        return refused(f"it is over the {max_bytes / 2**20:g} MB limit for a weights file")
    digest = hashlib.sha256(raw).hexdigest()
    if name.endswith(".keras"):
        weights, why = keras_archive_weights(raw, max_bytes=max_bytes)
        if weights is None:
            return refused(why, digest, len(raw))
    else:
        weights = raw
    if not weights.startswith(HDF5_SIGNATURE):
        return refused(
            "it is not a Keras weights file (not HDF5: corrupt, or not what `model.save_weights` wrote)",
            digest,
            len(raw),
        )
    return SubmittedWeights(name, digest, len(raw), weights)


def keras_archive_weights(raw: bytes, *, max_bytes: int = MAX_BYTES) -> tuple[bytes | None, str]:
    """The HDF5 weights inside a .keras archive, or None and why not: not a zip, a member that would unpack past
    `max_bytes`, no weights, or a config that holds code."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(raw))
        members = {info.filename: info for info in archive.infolist()}
    except (zipfile.BadZipFile, ValueError, OSError):
        return None, "it is not a .keras file (not a zip archive)"
    if sum(info.file_size for info in members.values()) > max_bytes:
        return None, f"it unpacks to more than {max_bytes / 2**20:g} MB"
    if KERAS_WEIGHTS not in members:
        return None, f"it holds no weights ({KERAS_WEIGHTS})"
    try:
        if KERAS_CONFIG in members:
            if members[KERAS_CONFIG].file_size > MAX_CONFIG_BYTES:
                return None, "its config is too large"
            code = code_in_config(json.loads(archive.read(KERAS_CONFIG).decode("utf-8")))
            if code:
                return None, (
                    f"it holds code ({code}), and no code from a submitted file runs: save the weights alone "
                    "(`model.save_weights(...)`, a .weights.h5 file)"
                )
        return archive.read(KERAS_WEIGHTS), ""
    except (zipfile.BadZipFile, ValueError, OSError, RecursionError, EOFError):
        return None, "its contents could not be read (a corrupt archive)"


def code_in_config(config: Any) -> str | None:
    """What in a .keras config is code (e.g. "a Lambda layer"), or None. The config is walked as plain JSON data."""
    todo = [config]
    while todo:
        item = todo.pop()
        if isinstance(item, dict):
            kind = item.get("class_name")
            if isinstance(kind, str) and kind in CODE_CLASSES:
                return "a Lambda layer" if kind == "Lambda" else f"a serialized {kind}"
            todo.extend(item.values())
        elif isinstance(item, list):
            todo.extend(item)
    return None


def _no_follow(path: str, flags: int) -> int:
    """Open without following a link that replaced the file after `lstat`."""
    return os.open(path, flags | getattr(os, "O_NOFOLLOW", 0))
