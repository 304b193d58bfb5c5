"""The graded notebook that nbgrader's formgrader opens: `autograded/<student>/<a>/<a>.ipynb`.

It is the submission as nbgrader's autograde would leave it, made without running anything: outputs cleared, each
graded cell found as the grader found it (the last copy of a grade_id, else its cell id), locked cells restored from
the source notebook, nbgrader's cell metadata from the release, missing graded cells put back, and the release's
kernel. Hidden tests are not put back: each HIDDEN TESTS block becomes a one-line comment, so that no nbgrader view or
export of this notebook (formgrader, generate_feedback, nbconvert) can show their inputs. The kit's results go in as
plain text: each test cell's checks as its output, the findings in a first markdown cell. The notebook is data here:
nothing in it is run. formgrader shows markdown and raw cells as HTML in the TA's logged-in browser, so the student's
HTML is made harmless first (nbconvert's own sanitizer; a raw cell becomes text). See docs/reports.md for how a TA
grades with it.
"""

from __future__ import annotations

import copy
import html
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .files import atomic_write
from .notebook import HIDDEN_BEGIN, HIDDEN_END, Spec
from .results import ManualAnswer, SubmissionResult, as_result, format_points
from .submission import Submission, graded_cells, read_notebook_json

SUMMARY_CELL_ID = "autograder-summary"
# What a HIDDEN TESTS block of a test cell becomes: the checks' results are the cell's output, their inputs stay secret.
HIDDEN_PLACEHOLDER = "# Hidden checks: their inputs are not shown; their results are in this cell's output."
_CELL_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")  # nbformat 4.5's rule for cell ids
_KEPT_FLAGS = ("deletable", "editable")  # the cell metadata nbgrader's LockCells sets beside its own
_HTML_TAG = re.compile(r"<[A-Za-z!/?]")  # where markdown holds HTML (a bare `x < 3` does not)
# A `javascript:` link, however spelled (browsers skip tabs and newlines in it; markdown decodes entities first).
_SCRIPT_URL = re.compile(r"j\W*a\W*v\W*a\W*s\W*c\W*r\W*i\W*p\W*t\W*:", re.IGNORECASE)


def write_graded_notebook(
    submission: Path, out: Path, spec: Spec, release: dict, result: SubmissionResult | Mapping
) -> list[ManualAnswer]:
    """Write the graded notebook of `submission` to `out` (atomically) and return its written answers as found."""
    notebook, manual = graded_notebook(submission, spec, release, as_result(result))
    atomic_write(out, json.dumps(notebook, indent=1, sort_keys=True, ensure_ascii=False) + "\n")
    return manual


def graded_notebook(
    submission: Path, spec: Spec, release: dict, result: SubmissionResult
) -> tuple[dict, list[ManualAnswer]]:
    """The graded notebook (as JSON) and the state of each written answer; never raises for the submission's
    content. An unreadable submission gives the release with the reason on top, so that it can be graded by hand."""
    read = Submission()
    data = read_notebook_json(Path(submission), read)
    cells = data["cells"] if data is not None else copy.deepcopy(release["cells"])
    notes = (
        []
        if data is not None
        else ["The submission could not be read, so this is the released notebook: its answers are blank."]
    )
    if data is not None and read.sha256 != result.notebook_sha256:
        notes.append("The submission changed after it was graded; the next `autograder grade` grades it again.")
    graded = _restore(cells, spec, release, result)
    manual = [_manual_state(c, graded) for c in spec.manual]
    summary = _summary_cell(result, spec, notes)
    notebook = {
        "cells": [summary, *graded],
        "metadata": {
            k: copy.deepcopy(release["metadata"][k])
            for k in ("kernelspec", "language_info")
            if k in release.get("metadata", {})
        },
        "nbformat": 4,
        "nbformat_minor": max(5, release.get("nbformat_minor", 5)),  # 4.5: cells carry ids
    }
    return notebook, manual


# ---------------------------------------------------------------------------------------------- the cells


def _restore(cells: list, spec: Spec, release: dict, result: SubmissionResult) -> list[dict]:
    """The submission's cells, cleaned, with each released grade_id once, in the submission's order; the graded
    cells it lacks are put back after the graded cell that precedes them in the release."""
    released = {c["metadata"]["nbgrader"]["grade_id"]: c for c in release["cells"] if _grade_id(c)}
    source = {c.grade_id: c for c in spec.cells if c.grade_id}
    chosen = {index: gid for gid, index in graded_cells(cells, release).items() if gid in source}
    out: list[dict] = []
    placed: dict[str, int] = {}
    for index, cell in enumerate(cells):
        gid = chosen.get(index)
        if gid is not None:
            placed[gid] = len(out)
            out.append(_graded_cell(released[gid], source[gid], cell, result))
        else:
            clean = _student_cell(cell)
            if clean is not None:
                out.append(clean)
    previous = None
    for gid in (g for g in released if g in source):
        if gid not in placed:
            at = placed[previous] + 1 if previous is not None else 0
            out.insert(at, _graded_cell(released[gid], source[gid], None, result))
            placed = {g: i + (i >= at) for g, i in placed.items()}
            placed[gid] = at
        previous = gid
    return _unique_ids(out)


def _graded_cell(released: dict, source, student: dict | None, result: SubmissionResult) -> dict:
    """A graded cell: the student's text for an answer or a cell the release leaves unlocked (the release's text
    when it is missing), the source's text for every locked cell with its hidden tests replaced; the release's type
    and nbgrader metadata. Only a locked cell's checksum is computed again, for the text written here; an answer
    keeps the release's, which tells an untouched answer."""
    from nbformat import from_dict
    from nbgrader.utils import compute_checksum

    answer = source.kind in ("answer", "manual")
    locked = bool(released["metadata"]["nbgrader"].get("locked"))
    # A cell the release leaves open (the shortcut flag's) is the student's to edit, as an answer is: show theirs.
    theirs = answer or not locked
    text = (
        _text(student)
        if (theirs and student is not None)
        else (_text(released) if theirs else without_hidden_tests(source.code))
    )
    if theirs and student is not None and released["cell_type"] == "markdown":
        text = _harmless_markdown(text)
    cell = _blank(released["cell_type"], text, released.get("id"))
    cell["metadata"] = {k: released["metadata"][k] for k in _KEPT_FLAGS if k in released["metadata"]}
    cell["metadata"]["nbgrader"] = copy.deepcopy(released["metadata"]["nbgrader"])
    if locked:
        cell["metadata"]["nbgrader"]["checksum"] = compute_checksum(from_dict(cell))
    if source.kind == "test":
        cell["outputs"] = [_check_output(result, source.grade_id)]
    if student is not None and released["cell_type"] == "markdown" and student.get("cell_type") == "markdown":
        attachments = _attachments(student)
        if attachments:
            cell["attachments"] = attachments
    return cell


def without_hidden_tests(code: str) -> str:
    """`code` with each block from a HIDDEN TESTS begin marker to its end marker (both included) replaced by
    `HIDDEN_PLACEHOLDER`; a block that is never closed runs to the end of the cell, so it is replaced too."""
    lines: list[str] = []
    hidden = False
    for line in code.splitlines(keepends=True):
        marker = line.strip()
        if marker == HIDDEN_BEGIN and not hidden:
            hidden = True
            indent = line[: len(line) - len(line.lstrip())]
            lines.append(f"{indent}{HIDDEN_PLACEHOLDER}\n")
        elif marker == HIDDEN_END and hidden:
            hidden = False
        elif not hidden:
            lines.append(line)
    text = "".join(lines)
    return text if code.endswith("\n") else text.removesuffix("\n")


def _student_cell(cell: Any) -> dict | None:
    """A cell the grader did not take (the student's own, or an earlier copy of a graded one): its type, text and
    id only. Its nbgrader metadata goes, so that formgrader shows no grade for it; nbgrader's autograde drops it
    too."""
    if not isinstance(cell, dict) or cell.get("cell_type") not in ("code", "markdown", "raw"):
        return None
    if cell["cell_type"] == "raw":  # nbconvert writes a raw cell without a mime type into the page as it is
        return _blank("markdown", _fenced(_text(cell)), cell.get("id"))
    text = _harmless_markdown(_text(cell)) if cell["cell_type"] == "markdown" else _text(cell)
    clean = _blank(cell["cell_type"], text, cell.get("id"))
    if cell["cell_type"] == "markdown":
        attachments = _attachments(cell)
        if attachments:
            clean["attachments"] = attachments
    return clean


def _blank(cell_type: str, text: str, cell_id: Any) -> dict:
    cell: dict[str, Any] = {
        "cell_type": cell_type,
        "id": cell_id if isinstance(cell_id, str) else "",
        "metadata": {},
        "source": text,
    }
    if cell_type == "code":
        cell.update(outputs=[], execution_count=None)
    return cell


def _unique_ids(cells: list[dict]) -> list[dict]:
    """Every cell with a valid id, unique in the notebook: a missing, invalid or repeated one is replaced by its
    position's (the same submission always gets the same ids)."""
    seen: set[str] = set()
    for index, cell in enumerate(cells):
        if not _CELL_ID.match(cell["id"]) or cell["id"] in seen or cell["id"] == SUMMARY_CELL_ID:
            cell["id"] = next(
                f"graded-{index}{suffix}"
                for suffix in ("", *(f"-{n}" for n in range(1, len(cells) + 1)))
                if f"graded-{index}{suffix}" not in seen
            )
        seen.add(cell["id"])
    return cells


def _attachments(cell: dict) -> dict | None:
    """A markdown cell's pasted images, when they have nbformat's shape ({name: {mime type: text}})."""
    attachments = cell.get("attachments")
    if not isinstance(attachments, dict):
        return None
    for name, bundle in attachments.items():
        if not (
            isinstance(name, str)
            and isinstance(bundle, dict)
            and all(
                isinstance(k, str)
                and (isinstance(v, str) or (isinstance(v, list) and all(isinstance(x, str) for x in v)))
                for k, v in bundle.items()
            )
        ):
            return None
    return copy.deepcopy(attachments)


def _harmless_markdown(text: str) -> str:
    """The student's markdown with its HTML cleaned by nbconvert's sanitizer (scripts, event handlers and unknown
    tags become visible text); markdown without HTML is left exactly as written. Markdown with a `javascript:`
    link (which nbconvert would render as one) is shown as plain text."""
    if _SCRIPT_URL.search(html.unescape(text)):
        return _fenced(text)
    if not _HTML_TAG.search(text):
        return text
    from nbconvert.filters.strings import clean_html

    return clean_html(text)


def _fenced(text: str) -> str:
    """`text` as a fenced block, which markdown shows as plain text whatever it holds."""
    fence = "`" * max(3, 1 + max((len(run) for run in re.findall(r"`+", text)), default=0))
    return f"{fence}text\n{text}\n{fence}"


def _text(cell: dict) -> str:
    source = cell.get("source", "")
    if isinstance(source, list):
        return "".join(s for s in source if isinstance(s, str))
    return source if isinstance(source, str) else ""


def _grade_id(cell: dict) -> str | None:
    nbgrader = cell.get("metadata", {}).get("nbgrader", {})
    gid = nbgrader.get("grade_id") if isinstance(nbgrader, dict) else None
    return gid if isinstance(gid, str) else None


# ---------------------------------------------------------------------------------------------- the kit's results


def _manual_state(cell, graded: list[dict]) -> ManualAnswer:
    """Whether the written answer `cell` (of the spec) was answered: nbgrader's own rule, an answer whose checksum
    is still the release's was left untouched (and is worth 0 without a grader)."""
    from nbformat import from_dict
    from nbgrader.utils import determine_grade

    mine = next(c for c in graded if _grade_id(c) == cell.grade_id)
    auto_score, _ = determine_grade(from_dict(mine))
    return ManualAnswer(cell.grade_id, cell.points, answered=auto_score is None)


def _check_output(result: SubmissionResult, grade_id: str) -> dict:
    """A test cell's output: the autograder's verdict on each of its checks, as plain text."""
    checks = [c for c in result.checks if c.grade_id == grade_id]
    if not checks:
        lines = ["The autograder ran no check of this cell (see the findings at the top)."]
    else:
        got, of = sum(c.score for c in checks), sum(c.max_score for c in checks)
        lines = [f"Autograder: {format_points(got)} / {format_points(of)} points"]
        for c in checks:
            state = "passed" if c.passed else "FAILED"
            hidden = " (hidden)" if c.hidden else ""
            lines.append(f"  {state}  {format_points(c.score)} / {format_points(c.max_score)}  {c.name}{hidden}")
            lines += [f"      {line}" for line in c.message.splitlines() if line.strip()]
            if c.diagnosis:
                lines.append(f"      likely mistake: {c.diagnosis}")
    return {"name": "stdout", "output_type": "stream", "text": "\n".join(lines) + "\n"}


def _summary_cell(result: SubmissionResult, spec: Spec, notes: list[str]) -> dict:
    """The first cell: the autograder's total, the points left to grade by hand, and the findings. Whatever comes
    from the submission (findings may quote it) sits in a fenced block, which formgrader shows as plain text."""
    lines = [
        f"**Autograder:** {format_points(result.score)} / {format_points(result.max_score)} points for the code "
        f"of `{result.assignment or spec.assignment}`, graded {result.timestamp or 'at an unknown time'}. "
        "The score of each test cell below is the autograder's; a score entered here replaces it in the "
        "totals of `autograder report`."
    ]
    if spec.manual:
        names = ", ".join(f"`{c.grade_id}` ({format_points(c.points)})" for c in spec.manual)
        lines.append(
            f"\n**Graded by hand:** {format_points(spec.manual_max_score)} points for written answers: {names}."
        )
    messages = list(dict.fromkeys(notes + [f.message for f in result.findings]))
    if messages:
        lines.append("\n**Findings:**\n\n" + _fenced("\n".join(f"- {m}" for m in messages)))
    return {"cell_type": "markdown", "id": SUMMARY_CELL_ID, "metadata": {}, "source": "\n".join(lines)}
