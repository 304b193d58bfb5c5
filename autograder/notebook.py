"""The source notebook's structure: cells, checks, points.

The source notebook says what runs and what is worth what: its setup cells (given code) are run in place of the
submission's, its test cells list the checks (`run_check(...)` calls, public or between nbgrader's HIDDEN TESTS
markers), its manual cells (markdown answers graded by hand in nbgrader's formgrader) are never run, and its
`points` are the only points. A student's notebook is read against it by `autograder.submission`.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat

from .errors import KitError
from .files import CoursePaths

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


def cell_source(cell) -> str:
    src = cell.get("source", "")
    return "".join(s if isinstance(s, str) else "" for s in src) if isinstance(src, list) else str(src)


def nbgrader_meta(cell) -> dict:
    meta = cell.get("metadata", {})
    nbg = meta.get("nbgrader", {}) if isinstance(meta, dict) else {}
    return nbg if isinstance(nbg, dict) else {}


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
        meta, text = nbgrader_meta(cell), cell_source(cell)
        gid = meta.get("grade_id")
        if gid is not None:
            if gid in seen:
                raise KitError(f"{path}: grade_id '{gid}' is used twice; grade_ids must be unique.")
            seen.add(gid)
        if (meta.get("grade") or meta.get("solution")) and not (isinstance(gid, str) and gid):
            raise KitError(
                f"{path}: a graded cell ({cell_source(cell)[:40]!r}...) has no grade_id; nbgrader needs "
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


def load_release(course_root: Path, assignment: str) -> dict:
    path = CoursePaths(Path(course_root)).release_notebook(assignment)
    if not path.is_file():
        raise KitError(f"no release notebook at {path}: run `autograder generate {assignment}` first.")
    return json.loads(path.read_text(encoding="utf-8"))
