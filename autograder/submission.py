"""A student's notebook, read defensively: its answer cells by grade_id, and every difference from the locked cells
it was released with, as findings. Nothing inside the file makes the reader raise.

The source notebook's structure (`Spec`) comes from `autograder.notebook`.
"""

from __future__ import annotations

import hashlib
import json
import stat
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from .notebook import HIDDEN_BEGIN, HIDDEN_END, Spec, cell_source, graded_id, nbgrader_meta
from .results import Finding

MAX_NOTEBOOK_BYTES = 20 * 1024 * 1024


def _gid(cell) -> str | None:
    gid = nbgrader_meta(cell).get("grade_id")
    return gid if isinstance(gid, str) else None


@dataclass
class Submission:
    answers: dict[str, str] = field(default_factory=dict)  # grade_id -> code
    findings: list[Finding] = field(default_factory=list)
    sha256: str | None = None
    readable: bool = False


def read_submission(path: Path, spec: Spec, release: dict | None) -> Submission:
    """Read a student's notebook; never raises for anything inside the file."""
    sub = Submission()
    data = read_notebook_json(path, sub)
    if data is None:
        return sub
    try:
        nbformat.validate(nbformat.from_dict(data))
    except nbformat.ValidationError as err:
        sub.findings.append(
            Finding(
                "invalid_notebook",
                f"The notebook does not follow the notebook format "
                f"({str(err.message)[:120]}); the grader read what it could.",
            )
        )
    except Exception as err:  # noqa: BLE001 - the validator on hostile data: whatever it raises is a finding
        sub.findings.append(
            Finding(
                "invalid_notebook",
                f"The notebook does not follow the notebook format "
                f"({type(err).__name__}); the grader read what it could.",
            )
        )
    metadata = data.get("metadata")
    if not isinstance(metadata, dict) or "kernelspec" not in metadata:
        sub.findings.append(
            Finding("no_kernel_metadata", "The notebook has no kernel metadata; it was graded as Python.")
        )
    sub.readable = True
    _extract(data["cells"], spec, release, sub)
    return sub


def read_notebook_json(path: Path, sub: Submission) -> dict | None:
    """The submission's notebook as parsed JSON with a list of cells, in format version 4 (not yet validated),
    or None with a finding in `sub` that says why not; sets `sub.sha256` when the file could be read."""
    try:
        info = path.lstat()
        if not stat.S_ISREG(info.st_mode):  # a FIFO would block the grader; a link may point at the solutions
            what = "a symbolic link" if stat.S_ISLNK(info.st_mode) else "not a regular file"
            sub.findings.append(Finding("not_a_file", f"The submission is {what}; submit the notebook file itself."))
            return None
        size = info.st_size
        if size > MAX_NOTEBOOK_BYTES:
            sub.findings.append(
                Finding(
                    "notebook_too_large",
                    f"The notebook is {size / 2**20:.0f} MB, over the "
                    f"{MAX_NOTEBOOK_BYTES // 2**20} MB limit: clear its outputs and submit again.",
                )
            )
            return None
        raw = path.read_bytes()
    except OSError as err:
        sub.findings.append(Finding("unreadable", f"The notebook could not be read: {err.strerror}."))
        return None
    sub.sha256 = hashlib.sha256(raw).hexdigest()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        sub.findings.append(
            Finding("not_utf8", f"The notebook is not UTF-8 text (byte {err.start}); save it from Jupyter again.")
        )
        return None
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as err:  # RecursionError: JSON nested thousands of levels deep
        sub.findings.append(
            Finding(
                "not_json",
                f"The file is not a notebook: it is not valid JSON ({err}). Submit the .ipynb file that Jupyter saves.",
            )
        )
        return None
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        sub.findings.append(Finding("not_a_notebook", "The file is JSON but not a Jupyter notebook (no cells)."))
        return None
    if data.get("nbformat") != 4:
        sub.findings.append(
            Finding(
                "wrong_format_version",
                f"The notebook is in format version "
                f"{data.get('nbformat')!r}; the grader reads version 4, which every current "
                "Jupyter writes. Open it in Jupyter and save it again.",
            )
        )
        return None
    return data


def _extract(cells: list, spec: Spec, release: dict | None, sub: Submission) -> None:
    by_id: dict[str, list] = {}
    for cell in cells:
        if not isinstance(cell, dict):
            continue
        gid = nbgrader_meta(cell).get("grade_id")
        if isinstance(gid, str):
            by_id.setdefault(gid, []).append(cell)
    for gid, found in by_id.items():
        if len(found) > 1:
            sub.findings.append(
                Finding(
                    "duplicated_cell",
                    f"Cell '{gid}' appears {len(found)} times; the grader "
                    "used the last one for an answer and the released one otherwise.",
                    gid,
                )
            )
    for cell in spec.answers:
        gid = graded_id(cell)
        found = by_id.get(gid) or _by_cell_id(cells, release, gid)
        if found and _gid(found[-1]) is None:
            sub.findings.append(
                Finding(
                    "cell_metadata_removed",
                    f"The answer cell '{cell.grade_id}' lost its "
                    "nbgrader metadata; the grader found it by its cell id.",
                    cell.grade_id,
                )
            )
        elif found and _gid(found[-1]) != cell.grade_id:
            sub.findings.append(
                Finding(
                    "cell_metadata_changed",
                    f"Cell '{cell.grade_id}': its nbgrader "
                    f"'grade_id' was changed to {_gid(found[-1])!r}; the grader found it by "
                    "its cell id.",
                    cell.grade_id,
                )
            )
        if not found:
            sub.findings.append(
                Finding(
                    "missing_answer_cell",
                    f"The answer cell '{cell.grade_id}' is missing, so "
                    "its checks fail. Copy it back from the released notebook.",
                    cell.grade_id,
                )
            )
            continue
        if found[-1].get("cell_type") != "code":
            sub.findings.append(
                Finding(
                    "answer_cell_changed_type",
                    f"The answer cell '{cell.grade_id}' is no longer a code cell.",
                    cell.grade_id,
                )
            )
            continue
        sub.answers[gid] = cell_source(found[-1])
    for cell in spec.manual:
        if not (by_id.get(graded_id(cell)) or _by_cell_id(cells, release, graded_id(cell))):
            sub.findings.append(
                Finding(
                    "missing_answer_cell",
                    f"The written answer cell '{cell.grade_id}' is "
                    "missing, so there is no answer to grade. Copy it back from the released "
                    "notebook.",
                    cell.grade_id,
                )
            )
    if release is not None:
        _compare_locked(release, by_id, cells, sub)


def graded_cells(cells: list, release: dict) -> dict[str, int]:
    """For each grade_id of the release, the index in `cells` (a submission's) of the cell the grader takes for it:
    the last one with that grade_id, else the one found by its cell id (see `_by_cell_id`)."""
    found: dict[str, int] = {}
    for index, cell in enumerate(cells):
        gid = _gid(cell) if isinstance(cell, dict) else None
        if gid is not None:
            found[gid] = index
    out = {}
    for rel in release["cells"]:
        gid = _gid(rel)
        if gid is None:
            continue
        if gid in found:
            out[gid] = found[gid]
        else:
            match = _by_cell_id(cells, release, gid)
            if match:
                out[gid] = next(i for i, c in enumerate(cells) if c is match[0])
    return out


def _by_cell_id(cells: list, release: dict | None, grade_id: str) -> list:
    """The submission's cell with the same nbformat cell id and type as the released cell `grade_id`, when its
    nbgrader metadata was removed (copying cells into a fresh notebook does that) or its grade_id changed to one
    the release does not have."""
    if release is None:
        return []
    known = {_gid(c) for c in release["cells"]} - {None}
    released = [c for c in release["cells"] if nbgrader_meta(c).get("grade_id") == grade_id]
    if not released or not isinstance(released[0].get("id"), str):
        return []
    cell_id, cell_type = released[0]["id"], released[0].get("cell_type")
    return [
        c
        for c in cells
        if isinstance(c, dict) and c.get("id") == cell_id and c.get("cell_type") == cell_type and _gid(c) not in known
    ][-1:]


def _compare_locked(release: dict, by_id: dict, cells: list, sub: Submission) -> None:
    """Every locked cell of the release must come back unchanged; the grader uses its own versions regardless."""
    released = [c for c in release["cells"] if nbgrader_meta(c).get("grade_id")]
    for rel in released:
        meta, gid = nbgrader_meta(rel), nbgrader_meta(rel)["grade_id"]
        if not (meta.get("locked") or meta.get("grade")) or meta.get("solution"):
            continue
        found = by_id.get(gid) or _by_cell_id(cells, release, gid)
        if not found:
            sub.findings.append(
                Finding(
                    "locked_cell_deleted", f"Locked cell '{gid}' was deleted; graded with the released version.", gid
                )
            )
            continue
        mine = found[-1]
        if _gid(mine) != gid:
            sub.findings.append(
                Finding(
                    "cell_metadata_removed" if _gid(mine) is None else "cell_metadata_changed",
                    f"Locked cell '{gid}' lost its nbgrader metadata or grade_id; the grader "
                    "used the released version.",
                    gid,
                )
            )
        if as_released(cell_source(mine)) != as_released(cell_source(rel)):
            sub.findings.append(
                Finding(
                    "locked_cell_edited",
                    f"Locked cell '{gid}' was edited; the grader ignored the edit and used the released version.",
                    gid,
                )
            )
        mine_meta = nbgrader_meta(mine)
        for key in ("points", "grade", "solution", "locked"):
            if mine_meta.get(key) != meta.get(key):
                sub.findings.append(
                    Finding(
                        "cell_metadata_changed",
                        f"Cell '{gid}': its nbgrader '{key}' was changed; the released value counts.",
                        gid,
                    )
                )
        if "checksum" in meta and "checksum" in mine_meta and mine_meta["checksum"] != meta["checksum"]:
            sub.findings.append(
                Finding(
                    "checksum_changed",
                    f"Cell '{gid}': its nbgrader checksum does not match the released notebook.",
                    gid,
                )
            )
    order = [
        gid
        for gid in (_gid(c) for c in cells if isinstance(c, dict))
        if gid in {nbgrader_meta(r)["grade_id"] for r in released}
    ]
    expected = [nbgrader_meta(r)["grade_id"] for r in released if nbgrader_meta(r)["grade_id"] in set(order)]
    if list(dict.fromkeys(order)) != expected:
        sub.findings.append(
            Finding(
                "cells_moved", "Cells were moved out of the released order; the grader runs them in the released order."
            )
        )
    known = {nbgrader_meta(r)["grade_id"] for r in released}
    known_ids = {r.get("id") for r in released if isinstance(r.get("id"), str)}
    extra = [
        c
        for c in cells
        if isinstance(c, dict)
        and c.get("cell_type") == "code"
        and _gid(c) not in known
        and not (isinstance(c.get("id"), str) and c["id"] in known_ids)
        and cell_source(c).strip()
    ]
    if extra:
        sub.findings.append(
            Finding(
                "cells_not_graded",
                f"{len(extra)} code cell(s) you added were not run by the "
                "grader: only answer cells count, so put helper code inside them.",
            )
        )


def as_released(text: str) -> str:
    """A test cell as released: nbgrader removes the HIDDEN TESTS blocks (a solution notebook still has them)."""
    lines, hidden = [], False
    for line in text.splitlines():
        if line.strip() == HIDDEN_BEGIN:
            hidden = True
        elif line.strip() == HIDDEN_END:
            hidden = False
        elif not hidden:
            lines.append(line.rstrip())
    return "\n".join(lines).strip()
