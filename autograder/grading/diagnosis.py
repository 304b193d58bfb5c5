"""Diagnosis: a catalogued mistake is named only when everything the student's answer cell did agrees with it.

exercised_cells(spec)   which answer cells each check call runs: the cell that defines the function it calls,
                        and every answer cell that the setup code it calls reaches (a model builder)
diagnose(...)           the rule, a pure function of plain results (docs/architecture.md, "Diagnosis")
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping, Sequence

from ..mistakes import Mistake
from ..notebook import CheckCall, Spec
from ..runner import Outcome

# Does the first result pass the check's judge against the second one?
Same = Callable[[CheckCall, Outcome, Outcome], bool]


def exercised_cells(spec: Spec) -> dict[str, frozenset[str]]:
    """Call id -> the grade_ids of the answer cells whose code the call runs, read from the source notebook: the
    cell that defines the called function, and every answer cell that the names it uses lead to, through the setup
    cells' functions (`build_cvae` uses `condition_encoder_input`, defined in an answer cell)."""
    defined: dict[str, tuple[str | None, ast.AST]] = {}  # name -> (its answer cell, or None for setup code; node)
    for cell in spec.cells:
        if cell.kind not in ("setup", "answer"):
            continue
        try:
            tree = ast.parse(cell.code)
        except SyntaxError:
            continue
        for node in tree.body:
            for name in _defined_names(node):
                defined[name] = (cell.grade_id if cell.kind == "answer" else None, node)

    def reached(name: str, seen: set[str]) -> set[str]:
        if name in seen or name not in defined:
            return set()
        seen.add(name)
        cell, node = defined[name]
        found = {cell} if cell else set()
        for used in _used_names(node):
            found |= reached(used, seen)
        return found

    return {call.id: frozenset(reached(call.function, set())) for call in spec.calls}


def _defined_names(node: ast.AST) -> set[str]:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {node.name}
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return {(alias.asname or alias.name).split(".")[0] for alias in node.names}
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}


def _used_names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def diagnose(
    calls: Sequence[CheckCall],
    *,
    student: Mapping[str, Outcome | None],
    reference: Mapping[str, Outcome | None],
    mistakes: Sequence[Mistake],
    wrong: Callable[[Mistake, CheckCall], Outcome | None],
    cells: Mapping[str, frozenset[str]],
    same: Same,
) -> dict[str, str]:
    """Call id -> the sentence of the catalogued mistake that explains that failing check.

    `student`, `reference`: each call's result (by call id); `wrong(mistake, call)`: the mistake's result, None when
    it was not run; `cells`: the answer cells each call exercises (`exercised_cells`); `same`: the check's judge.

    For each answer cell, a mistake of that cell is named only when every check that exercises the cell, public and
    hidden, agrees with it: the student passes where the mistake passes, and fails where it fails, with the same
    result (or both raise the same kind of error), and at least one failure is explained. A check that also runs
    other answer cells counts only when those cells are right (all the checks of theirs alone pass); otherwise it
    neither confirms nor contradicts. When two mistakes with different sentences both agree, neither is named: the
    checks cannot tell them apart. A named mistake's sentence goes on each failing check where the mistake fails too.
    """

    def passes(call: CheckCall, out: Outcome | None) -> bool:
        ref = reference.get(call.id)
        return out is not None and out.ok and ref is not None and ref.ok and same(call, out, ref)

    def agrees(call: CheckCall, mistake: Mistake) -> bool | None:
        mine, theirs = student.get(call.id), wrong(mistake, call)
        if theirs is None:
            return None  # the mistake was not run on this check: no evidence either way
        if passes(call, mine) or passes(call, theirs):
            return passes(call, mine) and passes(call, theirs)
        if mine is None or not mine.ok or not theirs.ok:
            return mine is not None and not mine.ok and not theirs.ok and mine.raised == theirs.raised
        return same(call, mine, theirs)

    by_cell: dict[str, list[CheckCall]] = {}
    for call in calls:
        for cell in cells.get(call.id, ()):
            by_cell.setdefault(cell, []).append(call)
    alone = {cell: [c for c in cell_calls if cells[c.id] == {cell}] for cell, cell_calls in by_cell.items()}
    right = {cell: bool(own) and all(passes(c, student.get(c.id)) for c in own) for cell, own in alone.items()}

    found: dict[str, str] = {}
    for cell, cell_calls in by_cell.items():
        counted = [c for c in cell_calls if all(right.get(other, False) for other in cells[c.id] - {cell})]
        named = []
        for mistake in (m for m in mistakes if m.grade_id == cell):
            verdicts = {c.id: agrees(c, mistake) for c in cell_calls}
            if any(verdicts[c.id] is False for c in counted):
                continue
            if any(verdicts[c.id] and not passes(c, student.get(c.id)) for c in counted):
                named.append((mistake, verdicts))
        if len({mistake.says for mistake, _ in named}) != 1:
            continue
        mistake, verdicts = named[0]
        for call in cell_calls:
            if verdicts[call.id] and not passes(call, student.get(call.id)) and call.id not in found:
                found[call.id] = mistake.says
    return found
