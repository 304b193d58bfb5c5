"""The expectations: what the source's solution, and each catalogued mistake, give for every check.

They are computed by running the source's answer cells (and, for each mistake, the solution with that one cell
replaced) through the same worker as a submission, once per kit version, source notebook, catalogue and seed, and
cached in the course's grading cache. The cache file is written atomically under a unique temporary name, so
graders on several threads, processes or Dask workers that fill it at once each end with a whole file.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .. import __version__, checks
from ..config import Profile
from ..errors import KitError
from ..files import atomic_write
from ..items import REFERENCE, ItemId, Plan
from ..mistakes import Mistake
from ..notebook import CheckCall, Spec
from ..plain import decode, encode
from ..runner import Outcome
from ..sandbox import Limits
from . import plans
from .workers import Runner, SandboxRunner


@dataclass(frozen=True)
class Expectations:
    """Probe results of the reference and of each catalogued mistake, by item."""

    outcomes: dict[ItemId, Outcome]

    def reference(self, call: CheckCall) -> Outcome | None:
        return self.outcomes.get(plans.probe_id(REFERENCE, call))

    def mistake(self, mistake: Mistake, call: CheckCall) -> Outcome | None:
        return self.outcomes.get(plans.probe_id(mistake.id, call))


def cache_key(spec: Spec, mistakes: list[Mistake], seed: int, backend: str) -> str:
    return hashlib.sha256(
        json.dumps(
            [__version__, checks_fingerprint(), spec.sha256, [m.key() for m in mistakes], seed, backend]
        ).encode()
    ).hexdigest()[:16]


def checks_fingerprint() -> str:
    """A hash of the checks' source: a probe that describes its result otherwise (a new field, a canonical form)
    must not be judged against expectations cached by its older self."""
    digest = hashlib.sha256()
    for path in sorted(Path(checks.__file__).parent.rglob("*.py")):
        digest.update(path.relative_to(Path(checks.__file__).parent).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def load_or_compute(
    spec: Spec,
    mistakes: list[Mistake],
    *,
    seed: int,
    backend: str,
    profile: Profile,
    limits: Limits,
    hide: list[Path],
    cache: Path,
    runner: Runner | None = None,
) -> Expectations:
    """The cached expectations when `cache` holds them for this key, else computed now and cached. They are
    computed on the students' backend, so that a judge never compares two backends' rounding."""
    path = Path(cache) / f"reference-{cache_key(spec, mistakes, seed, backend)}.json"
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return Expectations(
            {ItemId.parse(k): Outcome(v["ok"], decode(v["value"]), v["error"], v.get("raised")) for k, v in raw.items()}
        )
    except (OSError, ValueError, KeyError, TypeError):
        pass  # missing or unreadable: computed again
    found = compute(
        spec, mistakes, seed=seed, backend=backend, profile=profile, limits=limits, hide=hide, runner=runner
    )
    # `raised` too: a diagnosis compares the kind of error a student's code and a mistake's raise
    atomic_write(
        path,
        json.dumps(
            {
                str(k): {"ok": o.ok, "value": encode(o.value), "error": o.error, "raised": o.raised}
                for k, o in found.outcomes.items()
            }
        ),
    )
    return found


def compute(
    spec: Spec,
    mistakes: list[Mistake],
    *,
    seed: int,
    backend: str,
    profile: Profile,
    limits: Limits,
    hide: list[Path],
    runner: Runner | None = None,
) -> Expectations:
    reference = {c.grade_id or "": c.code for c in spec.answers}  # "" as in `plans.cells`
    variants = {REFERENCE: reference, **{m.id: dict(reference, **{m.grade_id: m.code}) for m in mistakes}}
    plan = Plan(seed=seed, item_timeout_s=limits.wall_s, backend=backend)
    for variant, answers in variants.items():
        plan.cells += plans.cells(spec, answers, run=variant, wall_s=limits.wall_s)
        plan.probes += plans.probes(spec, run=variant, profile=profile, seed=seed, training=False)
    with tempfile.TemporaryDirectory(prefix="autograder-ref-") as tmp:
        run = (runner or SandboxRunner()).run_plan(plan, workdir=Path(tmp), limits=limits, hide=hide)
    if run.sandbox_error:
        raise KitError(f"the reference solution could not run: {run.sandbox_error}")
    found = Expectations(run.outcomes)
    for call in spec.value_calls:  # a training check has no reference probe: it is judged against thresholds
        out = found.reference(call)
        if out is None or not out.ok:
            raise KitError(
                f"the source solution of '{spec.assignment}' fails check {call.id} "
                f"({call.check}): {out.error if out else 'not run'}. Fix the source notebook."
            )
    return found
