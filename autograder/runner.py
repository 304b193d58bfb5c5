"""Runs a worker plan in the sandbox and turns what comes back into outcomes per item.

When a worker dies (os._exit, a crash, a limit), the item that was in flight gets the reason, and a fresh worker
runs the items still to do, skipping the ones that killed earlier workers. So one hostile cell or check costs its
own points, never the others'.

Student code runs in the worker's own process, so it can write to the events file too. The runner therefore
believes the file only as far as the protocol allows (`EventLog`): events of items that are not in the plan,
a `done` for an item that is not the one in flight, a second `start` or `done` of an item, and anything after
`finished` are ignored, and `finished` counts only when every item has an outcome. What is left, a student could
also have produced by returning those values from their functions (docs/threat-model.md). The runner also
enforces each item's time limit from outside (a watchdog on the events), because code in the worker can catch or
switch off the worker's own timer.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import tempfile
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .files import atomic_write
from .hardware import UsedDevice
from .items import ItemId, Plan
from .launch import CLEAN, STUDENT, fork_server_for, worker_argv, worker_env, worker_kit
from .owntime import CONTENTION_MARGIN, OwnClock
from .plain import decode
from .sandbox import Limits, ProcessOutcome, run_limited
from .worker import CANCEL

WHERE = re.compile(r"line \d{1,6} of answer cell [\w-]{1,100}")  # the only form a worker's `where` may take
MAX_DEATHS = 4
MAX_LINE = 128 * 1024 * 1024  # one event: an array of plain.MAX_ARRAY_BYTES in base64, and then some
GRACE_S = 5.0  # past an item's own limit, before the watchdog kills a worker whose timer did not end the item
IDLE_S = 60.0  # longest time with no item in flight: start-up, between items, exit after `finished`
# Limits are judged on the worker's own time (owntime.py); wall time only backs them up, at this multiple of the own
# time an item is allowed, so that on a machine up to this many times slower than a quiet one a correct item is never
# a timeout and an endless loop is still stopped by its own time and named. When the backstop ends an item that had
# not used its own time, the machine stopped it: a grader fault, never a score.
BACKSTOP = 10.0
MACHINE_BUSY = (
    "the grading machine was too busy to run it: it had used {own:.0f} s of its {limit:g} s after "
    "{wall:.0f} s of waiting. This is not a verdict on your code; it will be graded again"
)
MAX_COPY_BYTES = 1024 * 1024 * 1024  # files a worker left behind that the grader copies on (exported models)
MAX_COPY_FILES = 1000


@dataclass(frozen=True)
class Outcome:
    ok: bool
    value: Any = None
    error: str | None = None  # one line for the student
    raised: str | None = None  # the exception's class name, when the student's code raised one
    where: str | None = None  # "line 3 of answer cell encoder_block", when the answer cell's line is known


@dataclass
class PlanRun:
    outcomes: dict[ItemId, Outcome]
    deaths: list[str]  # one sentence per worker that died, naming the item in flight
    killed: list[ItemId]  # the items that stopped a worker
    output_tail: str
    sandbox_error: str | None = None  # why the sandbox could not be set up (the grader's fault, not the student's)
    machine_busy: bool = False  # the wall-clock backstop ended an item that the machine's load had held back
    device: UsedDevice | None = None  # what the worker's backend said it computes on, before any item ran
    forked: bool = False  # its first worker was forked from a fork server (ForkServers), not a new interpreter


def run_plan(
    plan: Plan,
    *,
    workdir: Path,
    limits: Limits,
    hide: list[Path],
    files: dict[str, Any] | None = None,
    standby: Standby | None = None,
) -> PlanRun:
    """Run `plan` (cells, probes, measures) in the empty folder `workdir` (the worker's only writable place; the
    caller removes it) and return one outcome per item. `files` maps names in `workdir` to array dicts (written as
    .npz) or paths (copied) that the plan reads. The worker's wall-clock limit is the plan's (`Plan.wall_s`).
    `standby`: a worker already waiting in `workdir` (started with the same hide list), used as the first one."""
    scratch = Path(workdir)
    _write_files(scratch, files or {})
    timeouts = {str(k): v for k, v in plan.timeouts().items()}
    # A backstop for the whole worker: each item's own time is watched (EventLog.watch), this only ends a worker that
    # the machine held back past BACKSTOP times everything it is allowed.
    limits = replace(limits, wall_s=BACKSTOP * (sum(map(own_allowance, timeouts.values())) + IDLE_S))
    items = list(timeouts)
    outcomes: dict[str, Outcome] = {}
    deaths: list[str] = []
    skip: list[str] = []
    tail = ""
    sandbox_error = None
    machine_busy = False
    device: UsedDevice | None = None
    forked = False
    hide = list(hide) + _temp_root()
    side = CLEAN if standby is not None or (plan.measures and not plan.cells and not plan.probes) else STUDENT
    from .sandbox import fences

    while True:
        events = scratch / f"events-{len(deaths)}.jsonl"
        # A new worker runs every cell again (its namespace is new) but no check that already has an outcome.
        skipped = skip + [i for i in outcomes if not ItemId.parse(i).is_cell]
        run = plan.to_dict(
            events=events.name,
            skip=skipped,
            pid_namespace=bool(fences().get("pid_namespace")),
            report_device=plan.backend is not None,  # a plan on a named backend: say which device it really uses
        )
        log = EventLog(events, timeouts, skip=skipped)
        # The first worker may be one started ahead, waiting in this folder (only a clean worker is: see Standby).
        result = standby.take(run, log, wall_s=limits.wall_s) if standby is not None and not deaths else None
        if result is None:
            write_plan(scratch, run)
            result = run_limited(
                worker_argv(PLAN),
                cwd=scratch,
                env=worker_env(scratch, plan.backend),
                limits=limits,
                hide=hide,
                readable=worker_kit(),
                watch=log.watch,
                fork_server=fork_server_for(limits, plan.backend, side),
            )
        if not deaths:
            forked = result.forked
        tail = result.output_tail
        log.poll()
        device = device or log.device
        # The sandbox's wall limit (a backstop, far above the items' own limits) or the watchdog's backstop: the
        # machine held the worker back, not its code.
        machine_busy |= log.busy or (result.timed_out and log.stopped is None and not result.sandbox_failed)
        outcomes.update(log.outcomes)
        if log.finished:
            break
        if result.sandbox_failed:  # nothing of the plan ran: no item is to blame
            sandbox_error = result.reason
            break
        reason = result.reason or (
            f"it exited with status {result.returncode} before finishing"
            if result.returncode is not None
            else "it stopped before finishing"
        )
        # Nothing in flight: the worker died between items (a background thread, a forged event, a child
        # process): the item that ran last is the likeliest culprit, and skipping it lets the rest run.
        culprit = log.in_flight or log.last_started
        if culprit is None:
            deaths.append(f"The worker stopped outside any cell or check: {reason}.")
            break
        outcomes[culprit] = Outcome(False, error=reason)
        deaths.append(f"{ItemId.parse(culprit).describe()} stopped the worker: {reason}.")
        skip.append(culprit)
        if len(deaths) >= MAX_DEATHS:
            break
    for item in items:
        outcomes.setdefault(item, Outcome(False, error="not run: the worker stopped before it"))
    return PlanRun(
        {ItemId.parse(k): v for k, v in outcomes.items()},
        deaths,
        [ItemId.parse(k) for k in skip],
        tail,
        sandbox_error,
        machine_busy,
        device,
        forked,
    )


PLAN = "plan.json"  # in the worker's folder


def write_plan(scratch: Path, run: dict) -> None:
    """Whole or not at all: a worker on standby starts as soon as the file is there."""
    atomic_write(scratch / PLAN, json.dumps(run))


class Standby:
    """A clean worker started before its plan exists: it imports Keras and its backend (seconds) while the
    student's worker runs, then waits in its own empty folder. `run_plan(..., standby=)` hands it the plan as its
    first worker; `close()` stops it when no plan came. It runs no student code and sees only what its folder is
    given later (the held-out data, the exported models); a standby that ended, for whatever reason, is passed
    over and a fresh worker runs the plan."""

    def __init__(
        self, workdir: Path, *, backend: str | None, limits: Limits, hide: list[Path], wait_s: float, run_s: float
    ):
        self.workdir, self.wait_s = Path(workdir), float(wait_s)
        self.log: EventLog | None = None
        self.handed_at: float | None = None
        self.wall_s = float(run_s)
        self.result: ProcessOutcome | None = None
        self._closed = False
        argv = worker_argv(PLAN, "--standby", f"{self.wait_s:g}")
        limits = replace(limits, wall_s=self.wait_s + self.wall_s)
        hide = list(hide) + _temp_root()
        self._thread = threading.Thread(
            target=self._run, args=(argv, backend, limits, hide), daemon=True, name="clean-worker-standby"
        )
        self._thread.start()

    def _run(self, argv, backend, limits, hide) -> None:
        try:
            self.result = run_limited(
                argv,
                cwd=self.workdir,
                env=worker_env(self.workdir, backend),
                limits=limits,
                hide=hide,
                readable=worker_kit(),
                watch=self._watch,
                fork_server=fork_server_for(limits, backend, CLEAN),
            )
        except Exception:  # noqa: BLE001 - e.g. its folder is gone: then it is simply not there to take
            self.result = None

    def _watch(self, clock: OwnClock) -> str | None:
        if self.log is None or self.handed_at is None:  # set together, when the worker is handed its plan
            return "it was not needed" if self._closed else None
        if time.monotonic() - self.handed_at > self.wall_s:
            return f"it ran past its {self.wall_s:g} s limit"
        return self.log.watch(clock)

    def take(self, run: dict, log: EventLog, *, wall_s: float) -> ProcessOutcome | None:
        """Hand `run` (the plan file's content) to the waiting worker and wait for its end; None when it is no
        longer waiting (it failed to start, or waited too long): then nothing was handed over."""
        if self._closed or not self._thread.is_alive():
            return None
        self.log, self.handed_at, self.wall_s = log, time.monotonic(), float(wall_s)
        write_plan(self.workdir, run)
        self._thread.join()
        if self.result is None or (not log.started and not self.result.sandbox_failed):
            return None  # it ended before it could read the plan: a fresh worker runs it
        return self.result

    def close(self) -> None:
        """Stop the worker if it is still waiting (it sees the file within a few hundredths of a second)."""
        if self.log is None and not self._closed:
            self._closed = True
            (self.workdir / CANCEL).touch()
        self._thread.join()


def _temp_root() -> list[Path]:
    """The grader's temporary folder holds every grading's scratch (other students' code, held-out data). Under
    /tmp the sandbox's private /tmp covers it; elsewhere (TMPDIR=/var/tmp...) it is hidden like a course folder."""
    root = Path(tempfile.gettempdir()).resolve()
    return [] if root == Path("/tmp") or Path("/tmp") in root.parents else [root]


def own_allowance(limit: float) -> float:
    """The own time after which the watchdog stops an item whose limit is `limit` (its own timer fires first)."""
    return limit * CONTENTION_MARGIN + GRACE_S


class EventLog:
    """A worker's events file, read as it grows, and believed only as far as the protocol goes: a `start` of a
    plan item not started before, then a `done` of that same item, ..., then `finished`. `watch` (called by the
    sandbox about once a second) stops a worker whose item runs past its limit or that stops making progress,
    judged on the worker's own time; past `BACKSTOP` times that allowance in wall time, it stops it as `busy`."""

    def __init__(self, path: Path, timeouts: dict[str, float], *, skip=()):
        self.path, self.timeouts = Path(path), timeouts
        self.expected = [i for i in timeouts if i not in set(skip)]
        self.outcomes: dict[str, Outcome] = {}
        self.started: set[str] = set()
        self.in_flight: str | None = None
        self.last_started: str | None = None
        self.claimed_finished = False
        self.changed = time.monotonic()  # when the state last moved on
        self.own_changed: float | None = None  # the worker's own time then (None: not read since that moment)
        self.stopped: str | None = None  # why `watch` stopped the worker
        self.busy = False  # it was the wall-clock backstop that stopped it
        self.device: UsedDevice | None = None  # believed only before the first item starts (no student code yet)
        self._pos, self._partial, self._skipping = 0, b"", False

    @property
    def finished(self) -> bool:
        return self.claimed_finished and all(i in self.outcomes for i in self.expected)

    def watch(self, clock: OwnClock) -> str | None:
        """Why the worker must stop now, or None; `clock` is its process tree's own time (see owntime.py)."""
        self.poll()
        own = clock.tick()
        if self.own_changed is None:  # the state moved on since the last reading: the item's time starts here
            self.own_changed = own
        waited, waited_own = time.monotonic() - self.changed, own - self.own_changed
        limit = self.timeouts[self.in_flight] if self.in_flight is not None else IDLE_S
        allowed = own_allowance(limit)
        if waited_own > allowed:
            self.stopped = (
                f"it ran past its {limit:g} s time limit and did not stop when asked"
                if self.in_flight is not None
                else f"it did nothing that the grader could see for {IDLE_S:g} s"
            )
        elif waited > BACKSTOP * allowed:  # a machine under BACKSTOP times slower still names an endless loop
            self.busy = True
            self.stopped = MACHINE_BUSY.format(own=waited_own, limit=limit, wall=waited)
        return self.stopped

    def poll(self) -> None:
        """Read what the worker appended since the last call."""
        try:
            with open(self.path, "rb") as fh:
                size = os.fstat(fh.fileno()).st_size
                if size < self._pos:  # truncated under us: read again; the protocol drops what was seen
                    self._pos, self._partial, self._skipping = 0, b"", False
                fh.seek(self._pos)
                while True:
                    chunk = fh.read(16 * 1024 * 1024)
                    if not chunk:
                        break
                    self._pos += len(chunk)
                    self._feed(chunk)
        except OSError:
            return

    def _feed(self, chunk: bytes) -> None:
        lines = chunk.split(b"\n")
        for i, piece in enumerate(lines):
            last = i == len(lines) - 1
            if self._skipping:
                if not last:
                    self._skipping = False
                continue
            if last:
                self._partial += piece
                if len(self._partial) > MAX_LINE:  # a line too long to be an event: drop it to its end
                    self._partial, self._skipping = b"", True
                continue
            line, self._partial = self._partial + piece, b""
            if len(line) <= MAX_LINE:
                self._event(line)

    def _event(self, raw: bytes) -> None:
        if self.claimed_finished:
            return
        try:
            event = json.loads(raw)
        except (ValueError, UnicodeDecodeError, RecursionError):
            return
        if not isinstance(event, dict):
            return
        if event.get("finished") is True:
            self.claimed_finished = True
            self.changed, self.own_changed = time.monotonic(), None
            return
        start, done = event.get("start"), event.get("done")
        if "device" in event and not self.started and self.device is None:
            self.device = UsedDevice.from_event(event["device"])
            return
        if isinstance(start, str) and start in self.timeouts and start not in self.started:
            self.started.add(start)
            self.in_flight = self.last_started = start
            self.changed, self.own_changed = time.monotonic(), None
        elif isinstance(done, str) and done == self.in_flight and done not in self.outcomes:
            self.outcomes[done] = _outcome_of(event)
            self.in_flight = None
            self.changed, self.own_changed = time.monotonic(), None


def _outcome_of(event: dict) -> Outcome:
    if "error" in event:
        raised, where = event.get("raised"), event.get("where")
        return Outcome(
            False,
            error=str(event["error"])[:500],
            raised=raised if isinstance(raised, str) and raised.isidentifier() and len(raised) < 100 else None,
            where=where if isinstance(where, str) and WHERE.fullmatch(where) else None,
        )
    try:
        return Outcome(True, value=decode(event.get("value")))
    except (ValueError, TypeError, RecursionError) as err:
        return Outcome(False, error=f"its result could not be read: {str(err)[:200]}")


def _write_files(scratch: Path, files: dict[str, Any]) -> None:
    import numpy as np

    for name, content in files.items():
        target = scratch / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, dict):
            np.savez(target, **content)
        elif Path(content).is_dir():
            copy_tree(Path(content), target)
        else:
            shutil.copy(content, target)


def unsafe_tree(
    path: Path, *, within: Path | None = None, max_bytes: int = MAX_COPY_BYTES, max_files: int = MAX_COPY_FILES
) -> str | None:
    """Why a folder that a worker wrote (under `within`) may not be copied on, or None. Only plain folders and
    regular files pass: a symbolic link would make the grader copy whatever it points at (the reference model,
    /dev/zero, another student's scratch)."""
    path = Path(path)
    for part in [path, *path.parents]:
        if within is not None and part == Path(within):
            break
        if os.path.islink(part):
            return f"{part.name} is a symbolic link"
    if not path.is_dir():
        return f"{path.name} is not a folder"
    total, count = 0, 0
    for root, dirs, names in os.walk(path, followlinks=False):
        for name in dirs + names:
            entry = os.path.join(root, name)
            info = os.lstat(entry)
            shown = os.path.relpath(entry, path)
            if stat.S_ISLNK(info.st_mode):
                return f"{shown} is a symbolic link"
            if not (stat.S_ISDIR(info.st_mode) or stat.S_ISREG(info.st_mode)):
                return f"{shown} is not a regular file"
            count += 1
            total += info.st_size if stat.S_ISREG(info.st_mode) else 0
            if count > max_files or total > max_bytes:
                return f"it holds more than {max_files} files or {max_bytes // 2**20} MB"
    return None


def copy_tree(src: Path, dest: Path) -> None:
    """Copy a folder a worker wrote, refusing links and special files (see `unsafe_tree`)."""
    problem = unsafe_tree(src)
    if problem:
        raise ValueError(f"{src.name}: {problem}")
    dest.mkdir(parents=True, exist_ok=True)
    for root, dirs, names in os.walk(src, followlinks=False):
        rel = Path(root).relative_to(src)
        for name in dirs:
            (dest / rel / name).mkdir(exist_ok=True)
        for name in names:
            fd = os.open(os.path.join(root, name), os.O_RDONLY | os.O_NOFOLLOW)
            with os.fdopen(fd, "rb") as fin, open(dest / rel / name, "xb") as fout:
                shutil.copyfileobj(fin, fout)
