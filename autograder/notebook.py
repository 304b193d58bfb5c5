"""Notebooks: the source's structure (cells, checks, points), and a submission read defensively.

The source notebook says what runs and what is worth what: its setup cells (given code) are run in place of the
submission's, its test cells list the checks (`run_check(...)` calls, public or between nbgrader's HIDDEN TESTS
markers), its manual cells (markdown answers graded by hand in nbgrader's formgrader) are never run, and its
`points` are the only points. From a submission the grader takes the answer cells alone, by grade_id, and reports
every difference in the locked cells it was released with.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import json
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat

from .errors import KitError
from .files import CoursePaths
from .results import Finding

MAX_NOTEBOOK_BYTES = 20 * 1024 * 1024
HIDDEN_BEGIN, HIDDEN_END = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
HEAVY_TAG = "heavy"  # training, plots, widgets: never run by the grader


@dataclass(frozen=True)
class CheckCall:
    grade_id: str
    index: int
    check: str
    function: str
    args: dict
    hidden: bool
    expected: Any = None  # the literal `expected=` of a public check, if any

    @property
    def id(self) -> str:
        return f"{self.grade_id}/{self.index}"


@dataclass(frozen=True)
class SourceCell:
    kind: str  # setup | answer | test | manual | heavy | markdown
    grade_id: str | None
    code: str
    points: float = 0.0
    calls: tuple[CheckCall, ...] = ()


@dataclass(frozen=True)
class Spec:
    assignment: str
    cells: tuple[SourceCell, ...]
    sha256: str

    @property
    def tests(self) -> list[SourceCell]:
        return [c for c in self.cells if c.kind == "test"]

    @property
    def answers(self) -> list[SourceCell]:
        return [c for c in self.cells if c.kind == "answer"]

    @property
    def manual(self) -> list[SourceCell]:
        """The written answers a person grades (in nbgrader's formgrader); the autograder never runs them."""
        return [c for c in self.cells if c.kind == "manual"]

    @property
    def max_score(self) -> float:
        """The autograded points (the test cells'); the manual cells' points are `manual_max_score`."""
        return float(sum(c.points for c in self.tests))

    @property
    def manual_max_score(self) -> float:
        return float(sum(c.points for c in self.manual))

    @property
    def calls(self) -> list[CheckCall]:
        return [call for cell in self.tests for call in cell.calls]

    @property
    def value_calls(self) -> tuple[CheckCall, ...]:
        """The calls of value checks (judged against the reference's probe results), in the notebook's order."""
        return self._calls_by_kind[0]

    @property
    def training_calls(self) -> tuple[CheckCall, ...]:
        """The calls of training checks (measured in a clean worker, judged against thresholds), in order."""
        return self._calls_by_kind[1]

    @functools.cached_property
    def _calls_by_kind(self) -> tuple[tuple[CheckCall, ...], tuple[CheckCall, ...]]:
        # Split once per spec by the checks' own types; a frozen dataclass still has a __dict__ to cache it in.
        from . import checks

        return checks.split_calls(self.calls)


def graded_id(cell: SourceCell) -> str:
    """The grade_id of an answer, test or written answer cell, which `load_spec` never leaves without one."""
    if cell.grade_id is None:
        raise KitError(f"a {cell.kind} cell of the source notebook has no grade_id")
    return cell.grade_id


def _source_text(cell) -> str:
    src = cell.get("source", "")
    return "".join(s if isinstance(s, str) else "" for s in src) if isinstance(src, list) else str(src)


def _meta(cell) -> dict:
    meta = cell.get("metadata", {})
    nbg = meta.get("nbgrader", {}) if isinstance(meta, dict) else {}
    return nbg if isinstance(nbg, dict) else {}


def _gid(cell) -> str | None:
    gid = _meta(cell).get("grade_id")
    return gid if isinstance(gid, str) else None


def _tags(cell) -> list:
    meta = cell.get("metadata", {})
    tags = meta.get("tags", []) if isinstance(meta, dict) else []
    return tags if isinstance(tags, list) else []


def load_spec(path: Path, assignment: str) -> Spec:
    """Parse the source notebook. Mistakes here are the instructor's: they raise KitError naming the cell."""
    if not path.is_file():
        raise KitError(f"no source notebook at {path}: each assignment needs source/<name>/<name>.ipynb.")
    raw = path.read_bytes()
    nb = nbformat.reads(raw.decode("utf-8"), as_version=4)
    cells, seen = [], set()
    for cell in nb.cells:
        meta, text = _meta(cell), _source_text(cell)
        gid = meta.get("grade_id")
        if gid is not None:
            if gid in seen:
                raise KitError(f"{path}: grade_id '{gid}' is used twice; grade_ids must be unique.")
            seen.add(gid)
        if (meta.get("grade") or meta.get("solution")) and not (isinstance(gid, str) and gid):
            raise KitError(
                f"{path}: a graded cell ({_source_text(cell)[:40]!r}...) has no grade_id; nbgrader needs "
                "one for every grade and solution cell: set it in the cell's nbgrader metadata."
            )
        if meta.get("task"):
            raise KitError(
                f"{path}: cell '{gid}' is an nbgrader task cell, which the kit does not grade; make it "
                "a markdown answer cell (grade and solution) for a written answer graded by hand."
            )
        if cell.cell_type != "code":
            cells.append(_markdown_cell(meta, gid, text, path))
        elif meta.get("grade") and meta.get("solution"):
            raise KitError(
                f"{path}: code cell '{gid}' is both a grade and a solution cell (code graded by hand). "
                "The kit grades code with run_check test cells: make it an answer cell (solution only) "
                "followed by a test cell, or ask for a written answer in a markdown cell."
            )
        elif meta.get("grade") and not meta.get("solution"):
            calls = tuple(_parse_test_cell(text, str(gid), path))
            cells.append(SourceCell("test", gid, text, float(meta.get("points", 0)), calls))
        elif meta.get("solution"):
            cells.append(SourceCell("answer", gid, text))
        elif HEAVY_TAG in _tags(cell):
            cells.append(SourceCell("heavy", gid, text))
        else:
            cells.append(SourceCell("setup", gid, text))
    return Spec(assignment, tuple(cells), hashlib.sha256(raw).hexdigest())


def _markdown_cell(meta: dict, grade_id: str | None, text: str, path: Path) -> SourceCell:
    """A markdown cell: text, or a written answer graded by hand (nbgrader's grade + solution), worth its points."""
    if not (meta.get("grade") or meta.get("solution")):
        return SourceCell("markdown", grade_id, text)
    if not (meta.get("grade") and meta.get("solution")):
        which = "grade" if meta.get("grade") else "solution"
        raise KitError(
            f"{path}: markdown cell '{grade_id}' is a {which} cell only; a written answer graded by hand "
            "needs both `grade` and `solution` in its nbgrader metadata (and `points`)."
        )
    points = meta.get("points")
    if isinstance(points, bool) or not isinstance(points, (int, float)) or not points > 0:
        raise KitError(
            f"{path}: the written answer '{grade_id}' needs a positive number of `points` in its nbgrader "
            f"metadata (it has {points!r})."
        )
    return SourceCell("manual", grade_id, text, float(points))


def _parse_test_cell(text: str, grade_id: str, path: Path) -> list[CheckCall]:
    calls: list[CheckCall] = []
    hidden = False
    block: list[str] = []

    def flush() -> None:
        source = "\n".join(block)
        try:
            tree = ast.parse(source)
        except SyntaxError as err:
            raise KitError(f"{path}: test cell '{grade_id}' does not parse: {err}") from None
        for node in tree.body:
            if not (
                isinstance(node, ast.Expr)
                and isinstance(node.value, ast.Call)
                and isinstance(node.value.func, ast.Name)
                and node.value.func.id == "run_check"
            ):
                raise KitError(
                    f"{path}: test cell '{grade_id}' may hold only run_check(...) calls "
                    f"(line {node.lineno}: {ast.unparse(node)[:60]})."
                )
            call = node.value
            if (
                len(call.args) != 2
                or not isinstance(call.args[0], ast.Constant)
                or not isinstance(call.args[0].value, str)
                or not isinstance(call.args[1], ast.Name)
            ):
                raise KitError(f"{path}: test cell '{grade_id}': write run_check(\"check_name\", function_name, ...).")
            try:
                kwargs = {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords}
            except ValueError:
                raise KitError(f"{path}: test cell '{grade_id}': run_check arguments must be literals.") from None
            expected = kwargs.pop("expected", None)
            calls.append(CheckCall(grade_id, len(calls), call.args[0].value, call.args[1].id, kwargs, hidden, expected))

    for line in text.splitlines():
        if line.strip() in (HIDDEN_BEGIN, HIDDEN_END):
            flush()
            block, hidden = [], line.strip() == HIDDEN_BEGIN
        else:
            block.append(line)
    flush()
    from . import checks

    for call in calls:
        try:
            checks.get(call.check)
        except KeyError as err:
            raise KitError(f"{path}: test cell '{grade_id}': {err.args[0]}") from None
    return calls


# ----------------------------------------------------------------------------------------------- submissions


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
        gid = _meta(cell).get("grade_id")
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
        sub.answers[gid] = _source_text(found[-1])
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
    released = [c for c in release["cells"] if _meta(c).get("grade_id") == grade_id]
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
    released = [c for c in release["cells"] if _meta(c).get("grade_id")]
    for rel in released:
        meta, gid = _meta(rel), _meta(rel)["grade_id"]
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
        if _without_hidden(_source_text(mine)) != _without_hidden(_source_text(rel)):
            sub.findings.append(
                Finding(
                    "locked_cell_edited",
                    f"Locked cell '{gid}' was edited; the grader ignored the edit and used the released version.",
                    gid,
                )
            )
        mine_meta = _meta(mine)
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
        if gid in {_meta(r)["grade_id"] for r in released}
    ]
    expected = [_meta(r)["grade_id"] for r in released if _meta(r)["grade_id"] in set(order)]
    if list(dict.fromkeys(order)) != expected:
        sub.findings.append(
            Finding(
                "cells_moved", "Cells were moved out of the released order; the grader runs them in the released order."
            )
        )
    known = {_meta(r)["grade_id"] for r in released}
    known_ids = {r.get("id") for r in released if isinstance(r.get("id"), str)}
    extra = [
        c
        for c in cells
        if isinstance(c, dict)
        and c.get("cell_type") == "code"
        and _gid(c) not in known
        and not (isinstance(c.get("id"), str) and c["id"] in known_ids)
        and _source_text(c).strip()
    ]
    if extra:
        sub.findings.append(
            Finding(
                "cells_not_graded",
                f"{len(extra)} code cell(s) you added were not run by the "
                "grader: only answer cells count, so put helper code inside them.",
            )
        )


def _without_hidden(text: str) -> str:
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


def load_release(course_root: Path, assignment: str) -> dict:
    path = CoursePaths(Path(course_root)).release_notebook(assignment)
    if not path.is_file():
        raise KitError(f"no release notebook at {path}: run `autograder generate {assignment}` first.")
    return json.loads(path.read_text(encoding="utf-8"))
