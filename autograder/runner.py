"""Runs a worker plan in the sandbox and turns what comes back into outcomes per item.

When a worker dies (os._exit, a crash, a limit), the item that was in flight gets the reason, and a fresh worker
runs the items still to do, skipping the ones that killed earlier workers. So one hostile cell or check costs its
own points, never the others'.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .plain import decode
from .sandbox import Limits, run_limited

MAX_DEATHS = 4
EVENTS_LIMIT = 64 * 1024 * 1024


@dataclass(frozen=True)
class Outcome:
    ok: bool
    value: Any = None
    error: str | None = None


@dataclass
class PlanRun:
    outcomes: dict[str, Outcome]
    deaths: list[str]  # one sentence per worker that died, naming the item in flight
    killed: list[str]  # the ids of those items
    output_tail: str


def worker_env(scratch: Path) -> dict[str, str]:
    """A scrubbed environment: nothing of the grader's leaks in, beyond what Python and TensorFlow need."""
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(scratch),
        "LANG": "C.UTF-8",
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "KERAS_HOME": str(scratch / ".keras"),
        "MPLBACKEND": "Agg",
        "TMPDIR": str(scratch),
    }
    for key in ("CUDA_VISIBLE_DEVICES", "TF_ENABLE_ONEDNN_OPTS"):
        if key in os.environ:
            env[key] = os.environ[key]
    return env


def run_plan(plan: dict, *, workdir: Path, limits: Limits, hide: list[Path],
             files: dict[str, Any] | None = None) -> PlanRun:
    """Run `plan` (cells, probes, evaluations) in the empty folder `workdir` (the worker's only writable place;
    the caller removes it) and return one outcome per item id. `files` maps names in `workdir` to array dicts
    (written as .npz) or paths (copied) that the plan reads."""
    scratch = Path(workdir)
    _write_files(scratch, files or {})
    items = [c["id"] for c in plan.get("cells", [])] + [p["id"] for p in plan.get("probes", [])] + [
        e["id"] for e in plan.get("evaluations", [])]
    outcomes: dict[str, Outcome] = {}
    deaths: list[str] = []
    skip: list[str] = []
    tail = ""
    while True:
        events = scratch / f"events-{len(deaths)}.jsonl"
        # A new worker runs every cell again (its namespace is new) but no check that already has an outcome.
        run = dict(plan, events=events.name, skip=skip + [i for i in outcomes if not _is_cell(i)])
        (scratch / "plan.json").write_text(json.dumps(run), encoding="utf-8")
        result = run_limited([sys.executable, "-s", "-P", "-m", "autograder.worker", "plan.json"],
                             cwd=scratch, env=worker_env(scratch), limits=limits, hide=hide)
        tail = result.output_tail
        finished, in_flight = _read_events(events, outcomes)
        if finished:
            break
        reason = result.reason or (f"it exited with status {result.returncode} before finishing"
                                   if result.returncode is not None else "it stopped before finishing")
        if in_flight is None:
            deaths.append(f"The worker stopped outside any cell or check: {reason}.")
            break
        outcomes[in_flight] = Outcome(False, error=reason)
        deaths.append(f"{_describe_item(in_flight)} stopped the worker: {reason}.")
        skip.append(in_flight)
        if len(deaths) >= MAX_DEATHS:
            break
    for item in items:
        outcomes.setdefault(item, Outcome(False, error="not run: the worker stopped before it"))
    return PlanRun(outcomes, deaths, skip, tail)


def _is_cell(item: str) -> bool:
    return item.split("|")[-1].startswith(("setup:", "answer:"))


def _describe_item(item: str) -> str:
    kind, _, name = item.split("|")[-1].partition(":")
    return {"answer": f"Answer cell {name}", "setup": f"Setup cell {name}"}.get(kind, f"Check {item.split('|')[-1]}")


def _write_files(scratch: Path, files: dict[str, Any]) -> None:
    import numpy as np

    for name, content in files.items():
        target = scratch / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, dict):
            np.savez(target, **content)
        else:
            shutil.copytree(content, target) if Path(content).is_dir() else shutil.copy(content, target)


def _read_events(path: Path, outcomes: dict[str, Outcome]) -> tuple[bool, str | None]:
    """Fold a worker's events into `outcomes`; return (finished, item in flight when it stopped)."""
    finished, in_flight = False, None
    if not path.exists():
        return False, None
    with open(path, "rb") as fh:
        data = fh.read(EVENTS_LIMIT)
    for raw in data.splitlines():
        try:
            event = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            continue
        if not isinstance(event, dict):
            continue
        if event.get("finished") is True:
            finished = True
        elif isinstance(event.get("start"), str):
            in_flight = event["start"]
        elif isinstance(event.get("done"), str):
            item = event["done"]
            if "error" in event:
                outcomes[item] = Outcome(False, error=str(event["error"])[:500])
            else:
                try:
                    outcomes[item] = Outcome(True, value=decode(event.get("value")))
                except ValueError as err:
                    outcomes[item] = Outcome(False, error=f"its result could not be read: {err}")
            if in_flight == item:
                in_flight = None
    return finished, in_flight
