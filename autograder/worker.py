"""The worker: the only place where student code runs. Started as `python -m autograder.worker PLAN` inside the
sandbox (see runner.py); it never receives expected values or thresholds. A clean worker may be started before its
plan exists (`PLAN --standby WAIT_S`): it imports Keras, then waits for the file (`runner.Standby`).

It executes the plan's cells in one namespace (setup cells from the source notebook, answer cells from the
submission), then calls each probe, then each evaluation, and appends one JSON line per event to the events file:
`{"start": id}` before an item and `{"done": id, "value": ...}` or `{"done": id, "error": ...}` after it. When an
item kills the process (os._exit, a crash, a limit), the runner sees which item was in flight and starts a new
worker that skips it. Each item has its own timer; the runner's watchdog and the sandbox's wall-clock limit back
it up (student code can catch or cancel the timer). Processes that student code starts do not outlive its item:
a forked copy of the worker stops when it gets back here, and, in the sandbox's own pid namespace, every other
process is killed after each item, and gone, before the next one starts.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import traceback

STRAYS_GONE_S = 5.0  # how long the worker waits, after an item, for the processes it started to be gone


class ItemTimeout(BaseException):
    """Raised by the item timer; a BaseException so that `except Exception` in student code does not swallow it."""


class NotRun(Exception):
    """A check the worker did not run; its message is the whole sentence for the student."""


TICK_S = 0.25  # how often the item timer reads the worker's own time


class _ItemTimer:
    """The running item's limit, judged on the worker's own time (autograder/owntime.py), read at each SIGALRM: a
    busy machine slows the item down without bringing its limit closer. The runner's watchdog backs it up."""

    current: tuple | None = None  # (OwnClock, limit in seconds) while an item runs

    @classmethod
    def start(cls, timeout: float) -> None:
        from autograder.owntime import OwnClock, process_tree

        pid = os.getpid()
        cls.current = (OwnClock(lambda: process_tree(pid)), timeout)
        tick = min(TICK_S, max(timeout, 0.001))
        signal.setitimer(signal.ITIMER_REAL, tick, tick)

    @classmethod
    def stop(cls) -> None:
        signal.setitimer(signal.ITIMER_REAL, 0)
        cls.current = None


def _on_alarm(signum, frame):
    timer = _ItemTimer.current
    from autograder.owntime import CONTENTION_MARGIN

    if timer is not None and timer[0].tick() >= timer[1] * CONTENTION_MARGIN:
        _ItemTimer.stop()
        raise ItemTimeout()


def _reap_children() -> None:
    """Collect this process's children that have ended, without waiting for the others."""
    while True:
        try:
            if os.waitpid(-1, os.WNOHANG)[0] == 0:
                return
        except ChildProcessError:
            return


def describe_error(err: BaseException, tb=None) -> dict:
    """The error event's fields: `error`, one line for the student; `raised`, the exception's class name, and
    `where`, the line of the answer cell it came from, both absent for the worker's own sentences (a timeout, a
    check not run). The grader reads `raised` and `where` to word an error on a hidden input without its message."""
    if isinstance(err, ItemTimeout):
        return {"error": "it ran past its time limit (an endless loop?)"}
    if isinstance(err, NotRun):
        return {"error": f"not run: {err}"}
    if isinstance(err, NotImplementedError) and not str(err):
        text = "NotImplementedError: the stub is not implemented yet"
    else:
        text = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
    if len(text) > 300:
        text = text[:300] + "..."
    fields = {"raised": type(err).__name__}
    frames = [f for f in traceback.extract_tb(tb or err.__traceback__) if f.filename.startswith("<answer:")]
    if frames:
        fields["where"] = f"line {frames[-1].lineno} of answer cell {frames[-1].filename[8:-1]}"
        text += f" ({fields['where']})"
    return {"error": text, **fields}


class Worker:
    def __init__(self, plan: dict):
        self.plan = plan
        self.events = open(plan["events"], "a", buffering=1, encoding="utf-8")
        self.namespaces: dict[str, dict] = {}  # one per variant: the student's, or the reference and each mistake
        self.skip = set(plan.get("skip", ()))
        self.hung: set[str] = set()  # functions that ran past a timer: later checks of them fail at once
        self.pid = os.getpid()

    def emit(self, **event) -> None:
        self.events.write(json.dumps(event) + "\n")
        self.events.flush()

    def run_item(self, item_id: str, timeout: float, fn):
        if item_id in self.skip:
            return
        self.emit(start=item_id)
        _ItemTimer.start(timeout)
        try:
            value = fn()
        except BaseException as err:  # noqa: BLE001 - SystemExit and KeyboardInterrupt are student mistakes too
            _ItemTimer.stop()
            self.after_item()
            self.emit(done=item_id, **describe_error(err))
            return
        _ItemTimer.stop()
        self.after_item()
        from autograder.plain import encode

        try:
            self.emit(done=item_id, value=encode(value))
        except (TypeError, ValueError) as err:
            self.emit(done=item_id, error=f"the result could not be read back: {err}")

    def after_item(self) -> None:
        """A forked copy of the worker that returns here stops; other processes the item started are killed."""
        if os.getpid() != self.pid:
            os._exit(0)
        # kill(-1) reaches every process this one may signal, except itself and pid 1: inside the sandbox's own
        # pid namespace (whose pid 1 is our parent) that is exactly what student code started. Never outside it.
        # Belt and braces: inside the namespace this process has a tiny pid (its parent is 1); outside, it never does.
        # They must be gone, not just signalled, before the next item: until they are reaped they still count
        # against the cgroup's pids limit, and TensorFlow aborts when it cannot start a thread.
        if self.plan.get("pid_namespace") and os.getppid() == 1 and self.pid <= 3:
            deadline = time.monotonic() + STRAYS_GONE_S
            while time.monotonic() < deadline:
                try:
                    os.kill(-1, signal.SIGKILL)  # ESRCH once no process is left (pid 1 reaps the orphans)
                except OSError:
                    break
                _reap_children()
                time.sleep(0.005)
            _reap_children()

    def run(self) -> None:
        signal.signal(signal.SIGALRM, _on_alarm)
        if self.plan.get("report_device"):
            # Before any student code runs, so that the answer is the backend's own: the device it really uses.
            from autograder.hardware import backend_device

            self.emit(device=backend_device(os.environ.get("KERAS_BACKEND", "tensorflow")).to_event())
        timeout = float(self.plan.get("item_timeout_s", 60))
        for cell in self.plan.get("cells", []):
            code = compile_cell(cell)
            ns = self.namespace(cell.get("ns", ""))
            self.run_item(cell["id"], float(cell.get("timeout_s", timeout)), lambda code=code, ns=ns: exec(code, ns))
        from autograder import checks

        for probe in self.plan.get("probes", []):
            check = checks.get(probe["check"])
            self.run_item(
                probe["id"],
                float(probe.get("timeout_s", timeout)),
                lambda check=check, probe=probe: self.call_probe(check, probe),
            )
        for ev in self.plan.get("evaluations", []):
            check = checks.training_check(ev["check"])
            self.run_item(
                ev["id"],
                float(ev.get("timeout_s", timeout)),
                lambda check=check, ev=ev: check.evaluate(ev["export_dir"], **ev["args"]),
            )
        self.emit(finished=True)

    def namespace(self, name: str) -> dict:
        return self.namespaces.setdefault(name, {"__name__": "__main__"})

    def call_probe(self, check, probe: dict):
        import keras

        keras.utils.set_random_seed(int(self.plan.get("seed", 0)))
        name = probe["function"]
        fn = self.namespace(probe.get("ns", "")).get(name)
        if fn is None:
            raise NameError(f"{name} is not defined (did its answer cell run without errors?)")
        if not callable(fn):
            raise TypeError(f"{name} is a {type(fn).__name__}, not a function")
        if name in self.hung:
            raise NotRun(f"{name} ran past its time limit in an earlier check")
        try:
            return check.probe(fn, **probe["args"])
        except ItemTimeout:
            self.hung.add(name)
            raise


def compile_cell(cell: dict):
    """Answer cells compile under the name `<answer:GRADE_ID>` so that errors can point at the student's line."""
    from autograder.items import ItemId

    name = ItemId.parse(cell["id"]).code_name()
    source = strip_magics(cell["code"])
    try:
        return compile(source, name, "exec")
    except SyntaxError as err:  # raised when the cell runs, from the offending line, so it reads like any error
        line = err.lineno if isinstance(err.lineno, int) and err.lineno > 0 else 1
        return compile("\n" * (line - 1) + f"raise SyntaxError({err.msg!r})", name, "exec")


def strip_magics(source: str) -> str:
    """IPython's `%magic` and `!shell` lines mean nothing outside a kernel; they become comments."""
    lines = []
    for line in source.splitlines():
        stripped = line.lstrip()
        lines.append(("# " + line) if stripped.startswith(("%", "!")) else line)
    return "\n".join(lines)


def wait_for_plan(path: str, wait_s: float) -> None:
    """A clean worker started ahead of its plan (`runner.Standby`): import Keras and the checks now, while the
    student's worker runs, then wait for the grader to write the plan. A `cancel` file, or no plan within
    `wait_s`, ends the process quietly."""
    import keras  # noqa: F401 - the backend's import is what is paid ahead

    import autograder.checks  # noqa: F401

    deadline = time.monotonic() + wait_s
    while not os.path.exists(path):
        if os.path.exists(CANCEL) or time.monotonic() > deadline:
            os._exit(0)
        time.sleep(0.02)


CANCEL = "cancel"  # the file in the worker's folder that stops a waiting worker


def main(argv: list[str]) -> None:
    """`python -m autograder.worker PLAN [--standby WAIT_S]`."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if len(argv) == 4 and argv[2] == "--standby":
        wait_for_plan(argv[1], float(argv[3]))
    with open(argv[1], encoding="utf-8") as fh:
        plan = json.load(fh)
    Worker(plan).run()
    # Every event is written and flushed: leave without the interpreter's shutdown, which with TensorFlow loaded
    # costs about half a second, and without running exit handlers that student code may have registered.
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv)
