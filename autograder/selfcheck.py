"""`autograder check NOTEBOOK`: the student's self-check.

It needs nothing but the student's own notebook and the kit: the notebook's setup and answer cells run in a
limited worker (as in grading), and each public check is judged against the `expected=` value written in its
test cell. What the autograder runs besides is only counted, by kind: the release notebook carries the counts
(`autograder generate` writes them from the source, whose hidden checks the release does not hold).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from . import checks
from .errors import KitError
from .items import ANSWER, PROBE, SETUP, STUDENT, Cell, ItemId, Plan, Probe
from .notebook import CheckCall, Spec, load_spec
from .runner import run_plan
from .runtime import students_backend
from .sandbox import Limits

# The kinds of check the autograder runs beyond the public ones, in the order the self-check names them, with what
# each kind is to a student.
UNSEEN_KINDS = {
    "hidden": "hidden (the public checks' properties on inputs you do not see)",
    "structure": "on structure (the kinds, order and settings of your layers, and their parameter count)",
    "training": "training (your model retrained with the course's recipe and measured against thresholds)",
}
METADATA_KEY = "autograder"  # the release notebook's metadata entry that holds the counts


def public_calls(spec: Spec) -> list[CheckCall]:
    """The checks a student can run themselves: value checks that show their `expected=` value."""
    return [call for call in spec.value_calls if call.expected is not None]


def unseen_counts(spec: Spec) -> dict[str, int]:
    """How many checks of each kind the autograder runs beyond the public checks of `spec` (the source notebook)."""
    counts = dict.fromkeys(UNSEEN_KINDS, 0)
    for call in spec.value_calls:
        if call.expected is None:
            counts["structure" if checks.value_check(call.check).structural else "hidden"] += 1
    counts["training"] = len(spec.training_calls)
    return counts


def _recorded_counts(metadata: Any) -> dict[str, int] | None:
    """The counts `autograder generate` wrote into a release notebook, when they are there and well formed."""
    entry = metadata.get(METADATA_KEY) if isinstance(metadata, dict) else None
    counts = entry.get("unseen_checks") if isinstance(entry, dict) else None
    if not (
        isinstance(counts, dict)
        and set(counts) <= set(UNSEEN_KINDS)
        and all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in counts.values())
    ):
        return None
    return {kind: counts.get(kind, 0) for kind in UNSEEN_KINDS}


def unseen_sentence(counts: dict[str, int]) -> str:
    """'11 more checks are run by the autograder: 4 hidden (...), 6 on structure (...), 1 training (...).'"""
    total = sum(counts.values())
    if not total:
        return "The autograder runs no other checks."
    parts = [f"{n} {UNSEEN_KINDS[kind]}" for kind, n in counts.items() if n]
    return (
        f"{total} more check{'s are' if total > 1 else ' is'} run by the autograder, not here: "
        + "; ".join(parts)
        + "."
    )


def self_check(path: Path, *, log=print, limits: Limits | None = None) -> bool:
    try:
        spec = load_spec(path, path.stem)
    except KitError:
        raise
    except Exception as err:  # noqa: BLE001 - anything wrong with the file is the student's to fix
        raise KitError(
            f"{path} could not be read as a notebook ({type(err).__name__}: {err}); save it from Jupyter again."
        ) from None
    public = public_calls(spec)
    if not spec.answers or not public:
        raise KitError(f"{path} has no answer cells or no public checks: check a notebook from the course.")
    # The student's own backend, as their notebook's set-up cell picks it (autograder.quiet).
    plan = Plan(
        seed=0,
        item_timeout_s=60.0,
        backend=students_backend(),
        cells=[
            Cell(ItemId(STUDENT, SETUP if c.kind == "setup" else ANSWER, c.grade_id or ""), c.code)
            for c in spec.cells
            if c.kind in ("setup", "answer")
        ],
        probes=[Probe(ItemId(STUDENT, PROBE, call.id), call.check, call.function, dict(call.args)) for call in public],
    )
    limits = limits or Limits()
    with tempfile.TemporaryDirectory(prefix="autograder-check-") as tmp:
        run = run_plan(plan, workdir=Path(tmp), limits=limits, hide=[path.resolve().parent])
    if run.sandbox_error:
        raise KitError(f"the self-check could not start its worker: {run.sandbox_error}.")
    for death in run.deaths:
        log(f"! {death}")
    for cell in spec.answers:
        out = run.outcomes.get(ItemId(STUDENT, ANSWER, cell.grade_id or ""))
        if out is not None and not out.ok:
            log(f"! answer cell {cell.grade_id} failed: {out.error}")
    passed = 0
    for call in public:
        out = run.outcomes[ItemId(STUDENT, PROBE, call.id)]
        if not out.ok:
            log(f"FAIL {call.id} {call.check}: {call.function}: {out.error}")
            continue
        verdict = checks.value_check(call.check).judge(out.value, call.expected, hidden=False)
        passed += verdict.passed
        log(f"{'ok  ' if verdict.passed else 'FAIL'} {call.id} {call.check}: {call.function}: {verdict.message}")
    counts = _recorded_counts(_notebook_metadata(path)) or unseen_counts(spec)
    log(f"\n{passed} of {len(public)} public checks passed. {unseen_sentence(counts)}")
    return passed == len(public)


def _notebook_metadata(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("metadata")
    except (OSError, ValueError, AttributeError):
        return None
