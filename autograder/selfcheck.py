"""`autograder check NOTEBOOK`: the student's self-check.

It needs nothing but the student's own notebook and the kit: the notebook's setup and answer cells run in a
limited worker (as in grading), and each public check is judged against the `expected=` value written in its
test cell. Hidden checks and training-based checks are only listed: the autograder runs those.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from . import checks
from .errors import KitError
from .items import ANSWER, PROBE, SETUP, STUDENT, Cell, ItemId, Plan, Probe
from .notebook import load_spec
from .runner import run_plan
from .sandbox import Limits


def self_check(path: Path, *, log=print, limits: Limits | None = None) -> bool:
    try:
        spec = load_spec(path, path.stem)
    except KitError:
        raise
    except Exception as err:  # noqa: BLE001 - anything wrong with the file is the student's to fix
        raise KitError(f"{path} could not be read as a notebook ({type(err).__name__}: {err}); "
                       "save it from Jupyter again.") from None
    public = [c for c in spec.calls if c.expected is not None and not checks.is_training(c.check)]
    if not spec.answers or not public:
        raise KitError(f"{path} has no answer cells or no public checks: check a notebook from the course.")
    # The student's own backend (KERAS_BACKEND, as their notebook uses it), else Keras' default.
    plan = Plan(seed=0, item_timeout_s=60.0, backend=os.environ.get("KERAS_BACKEND") or None,
                cells=[Cell(ItemId(STUDENT, SETUP if c.kind == "setup" else ANSWER, c.grade_id), c.code)
                       for c in spec.cells if c.kind in ("setup", "answer")],
                probes=[Probe(ItemId(STUDENT, PROBE, call.id), call.check, call.function, dict(call.args))
                        for call in public])
    limits = limits or Limits()
    with tempfile.TemporaryDirectory(prefix="autograder-check-") as tmp:
        run = run_plan(plan, workdir=Path(tmp), limits=limits, hide=[path.resolve().parent])
    if run.sandbox_error:
        raise KitError(f"the self-check could not start its worker: {run.sandbox_error}.")
    for death in run.deaths:
        log(f"! {death}")
    for cell in spec.answers:
        out = run.outcomes.get(ItemId(STUDENT, ANSWER, cell.grade_id))
        if out is not None and not out.ok:
            log(f"! answer cell {cell.grade_id} failed: {out.error}")
    passed = 0
    for call in public:
        out = run.outcomes[ItemId(STUDENT, PROBE, call.id)]
        if not out.ok:
            log(f"FAIL {call.id} {call.check}: {call.function}: {out.error}")
            continue
        verdict = checks.get(call.check).judge(out.value, call.expected, hidden=False)
        passed += verdict.passed
        log(f"{'ok  ' if verdict.passed else 'FAIL'} {call.id} {call.check}: {call.function}: {verdict.message}")
    others = [c for c in spec.calls if c not in public]
    log(f"\n{passed} of {len(public)} public checks passed."
        + (f" {len(others)} more checks (hidden, or training-based) are run by the autograder." if others else ""))
    return passed == len(public)
