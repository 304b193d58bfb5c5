"""Benchmark (not a test): grading a generated class, the kit with 1 and 2 workers against `nbgrader autograde`, and
the kit's cost per submission as the class grows.

The class (deterministic): of every 10 students, 5 submit the solution, 3 the solution with one catalogued mistake
(source/autoencoder/mistakes.yaml, in turn), 2 something broken (in turn: not JSON, the untouched release notebook,
an answer cell with a syntax error, an answer cell that raises). Every notebook's heavy training cell is the kit's CPU
recipe (as in bench/grading_time.py; in the scratch course's source, release and solution notebooks too), so
nbgrader, which executes the notebook, trains what the kit trains.

    .venv/bin/python bench/class_grading.py                      # 30 with 1 and 2 workers + nbgrader; 10, 30, 100
    .venv/bin/python bench/class_grading.py --sizes 10,30         # skip the 100 (about an hour on 2 cores)
    .venv/bin/python bench/class_grading.py --sizes 100 --no-compare   # only the 100, added to the same JSON
    .venv/bin/python bench/class_grading.py --cluster --sizes 30,100,300

--cluster: each size on a loopback Dask cluster (a `dask scheduler`, 2 `dask worker` processes of one thread), a class
with hostile submissions (of every 10: 5 correct, 3 mistaken, 1 broken, 1 hostile: an endless loop, a fork bomb, a
64 GB allocation or a search for the reference files, in turn); wall time, CPU time (the grader, and each worker with
the sandboxes it ran), peak memory per worker. Writes bench/out/class_grading_cluster.json.

Each size is a scratch copy of the course; the kit's reference results are computed before the timings (a class pays
them once). Writes bench/out/class_grading.json (merged with an earlier run's sizes) and prints the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
sys.path.insert(0, str(ROOT / "bench"))
from grading_time import TRAIN_AS_RECIPE  # noqa: E402 - the same training cell as the one-notebook benchmark

A = "autoencoder"
OUT = ROOT / "bench" / "out" / "class_grading.json"
BROKEN = ("not_json", "release", "syntax_error", "raises")


def copy_course(dest: Path) -> Path:
    """A scratch course whose training cell is the recipe's in the source, release and solution notebooks alike:
    nbgrader autograde restores locked cells (the training cell is one) from the source, and the kit compares them
    with the release, so all three must agree for both tools to grade the same notebooks as unedited."""
    for item in ("course.yaml", "nbgrader_config.py"):
        shutil.copy2(ROOT / item, dest / item)
    for folder in ("source", "release", "solutions", "reference_weights"):
        shutil.copytree(ROOT / folder / A, dest / folder / A)
        if folder != "reference_weights":
            path = dest / folder / A / f"{A}.ipynb"
            nb = json.loads(path.read_text())
            for cell in _cells(nb, "train"):
                cell["source"] = TRAIN_AS_RECIPE.strip()
            for cell in _cells(nb, "save_trained_weights"):  # the full recipe, minutes: the kit never runs it
                cell["source"] = "# the student's full-recipe training: not run by either tool here"
            path.write_text(json.dumps(nb, indent=1))
    return dest


def _cells(nb: dict, grade_id: str) -> list[dict]:
    return [c for c in nb["cells"] if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == grade_id]


# Hostile submissions (the cluster run's class): code in an answer cell that misbehaves, in turn; each then defines
# the right function, so whatever the sandbox lets through would show as points.
HOSTILE = {
    "endless_loop": "while True:\n    pass\n",
    "fork_bomb": "import os as _os\nwhile True:\n    _os.fork()\n",
    "memory_hog": "_hog = bytearray(64 * 2**30)\n",
    "snoop": (
        "import glob as _glob\n"
        "for _p in _glob.glob('/**/reference_weights/**', recursive=True)[:50] + ['/etc/shadow']:\n"
        "    try:\n        open(_p, 'rb').read(16)\n    except OSError:\n        pass\n"
    ),
}


def make_class(course: Path, n: int, *, hostile: bool = False) -> dict[str, str]:
    """submitted/<student>/autoencoder/autoencoder.ipynb for n students; returns student -> kind. With `hostile`
    (the cluster run), the last of every 10 is hostile (HOSTILE, in turn) instead of broken: 5 correct, 3 mistaken,
    1 broken, 1 hostile. The correct ones hand in the solution's trained weights beside the notebook (a 4-point
    check of the shipped course); the others hand in the notebook alone."""
    from autograder.mistakes import load_mistakes

    solution = json.loads((course / "solutions" / A / f"{A}.ipynb").read_text())
    release = json.loads((course / "release" / A / f"{A}.ipynb").read_text())
    mistakes = load_mistakes(ROOT, A)
    weights = course / "solutions" / A / f"{A}.weights.h5"
    kinds = {}
    for i in range(n):
        student, slot = f"s{i:03d}", i % 10
        nb = json.loads(json.dumps(solution))
        if slot < 5:
            kind = "correct"
        elif slot < 8:
            mistake = mistakes[(i // 10 * 3 + slot - 5) % len(mistakes)]
            kind = f"wrong:{mistake.id}"
            for cell in _cells(nb, mistake.grade_id):
                cell["source"] = mistake.code
        elif hostile and slot == 9:
            kind = f"hostile:{list(HOSTILE)[i // 10 % len(HOSTILE)]}"
            cell = _cells(nb, "encoder_block")[0]
            source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
            cell["source"] = HOSTILE[kind.split(":", 1)[1]] + source
        else:
            turn = i // 10 if hostile else i // 10 * 2 + slot - 8
            kind = f"broken:{BROKEN[turn % len(BROKEN)]}"
            if kind == "broken:release":
                nb = json.loads(json.dumps(release))
            elif kind == "broken:syntax_error":
                _cells(nb, "encoder_block")[0]["source"] = "def define_encoder_block(x, num_filters)\n    return x\n"
            elif kind == "broken:raises":
                _cells(nb, "decoder_block")[0]["source"] = (
                    "def define_decoder_block(x, num_filters):\n    raise ValueError('not done yet')\n"
                )
        nb.setdefault("metadata", {})["bench_student"] = student  # every notebook's bytes differ, as in a class
        folder = course / "submitted" / student / A
        folder.mkdir(parents=True)
        text = '{"cells": [ this is not a notebook' if kind == "broken:not_json" else json.dumps(nb, indent=1)
        (folder / f"{A}.ipynb").write_text(text)
        if kind == "correct" and weights.is_file():  # the trained weights the shipped course asks for, beside it
            shutil.copy2(weights, folder / weights.name)
        kinds[student] = kind
    return kinds


def warm(course: Path, env: dict[str, str] | None = None) -> None:
    """The reference results (and the data cache), once, outside the timings."""
    code = (
        "from autograder.config import load_course; from autograder.grading import Grader; "
        f"Grader.create(load_course({str(course)!r}), {A!r}).prepare()"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=course, capture_output=True, env=env)


def kit(course: Path, workers: int, out: Path) -> dict:
    start = time.perf_counter()
    run = subprocess.run(
        [
            str(BIN / "autograder"),
            "grade",
            "submitted",
            "--assignment",
            A,
            "--workers",
            str(workers),
            "--out",
            str(out),
            "--no-progress",
            "--course",
            str(course),
        ],
        cwd=course,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - start
    if run.returncode != 0:
        raise SystemExit(f"autograder grade failed:\n{run.stdout[-2000:]}\n{run.stderr[-2000:]}")
    results = {p.parent.parent.name: json.loads(p.read_text()) for p in out.glob(f"*/{A}/results.json")}
    scores = {s: r["score"] for s, r in sorted(results.items())}
    findings = sorted({f["kind"] for r in results.values() for f in r["extra_data"]["findings"]})
    return {
        "wall_s": round(wall, 1),
        "graded": len(scores),
        "scores": scores,
        "finding_kinds": findings,
        "summary": run.stdout.splitlines()[-4:],
        "load_average_after": os.getloadavg(),
    }


def nbgrader(course: Path) -> dict:
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}")  # nbgrader runs `alembic` from PATH
    shutil.rmtree(course / "release" / A)
    subprocess.run(
        [str(BIN / "nbgrader"), "generate_assignment", A, "--force"],
        cwd=course,
        env=env,
        check=True,
        capture_output=True,
    )
    start = time.perf_counter()
    run = subprocess.run(
        [
            str(BIN / "nbgrader"),
            "autograde",
            A,
            "--force",
            "--ExecutePreprocessor.timeout=900",
            # the course's nbgrader_config.py refuses autograde (the kit grades it); nbgrader's own exporter here
            "--Autograde.exporter_class=nbconvert.exporters.notebook.NotebookExporter",
        ],
        cwd=course,
        env=env,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - start
    graded = len(list((course / "autograded").glob(f"*/{A}/{A}.ipynb")))
    if graded == 0:
        raise SystemExit(f"nbgrader autograde graded nothing:\n{run.stdout[-2000:]}\n{run.stderr[-2000:]}")
    return {
        "wall_s": round(wall, 1),
        "graded": graded,
        "returncode": run.returncode,
        "load_average_after": os.getloadavg(),
    }


# ---------------------------------------------------------------------------------------------- on a Dask cluster


CPUACCT = Path("/sys/fs/cgroup/cpuacct")  # cgroup v1's CPU accounting, where this machine has it


class LoopbackCluster:
    """`dask scheduler` and `workers` `dask worker` processes on 127.0.0.1 (one thread each), as docs/class-grading.md
    starts them; a sampler thread records the peak memory (PSS) of each worker's process tree (the worker and the
    sandboxes it started) every second. Each process starts in a cpuacct cgroup of its own where the machine lets
    the bench make one (root, cgroup v1): its CPU time then counts everything it ever started, the sandboxes forked by
    a fork server included, which the worker never reaps itself (a child's rusage would miss them)."""

    def __init__(self, folder: Path, workers: int, env: dict[str, str]):
        import psutil

        self.folder, self.procs, self.env = folder, [], env
        self.cpu_groups: dict[str, Path] = {}
        info = folder / "scheduler.json"
        self._start("scheduler", "--host", "127.0.0.1", "--port", "0", "--dashboard-address", ":0")
        deadline = time.monotonic() + 120
        while not info.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        self.address = json.loads(info.read_text())["address"]
        for i in range(workers):
            self._start(
                f"w{i + 1}", self.address, "--nthreads", "1", "--memory-limit", "0", "--dashboard-address", ":0"
            )
        from distributed import Client

        with Client(self.address, timeout=60) as client:
            client.wait_for_workers(workers, timeout=300)
        # each `dask worker` is a nanny; the worker process is the child it spawned (another may be multiprocessing's
        # resource tracker)
        self.workers = [
            next(c for c in psutil.Process(p.pid).children() if "spawn_main" in " ".join(c.cmdline()))
            for p in self.procs[1:]
        ]
        self.peak_tree_mb = [0.0] * workers
        self.stop = threading.Event()
        self.sampler = threading.Thread(target=self._sample, daemon=True)
        self.sampler.start()

    def _start(self, name: str, *args: str) -> None:
        extra = ["--scheduler-file", str(self.folder / "scheduler.json")] if name == "scheduler" else []
        cmd = [str(BIN / "dask"), "scheduler" if name == "scheduler" else "worker", *args, *extra]
        group = CPUACCT / f"{self.folder.parent.name}-{name}"
        try:
            group.mkdir()
            self.cpu_groups[name] = group
        except OSError:
            group = None  # no cpuacct here: CPU time falls back to what the worker reaped (see measure)

        def enter_group() -> None:  # in the child, before dask starts: all it starts is counted there
            if group is not None:
                (group / "cgroup.procs").write_text(str(os.getpid()))

        with open(self.folder / f"{name}.log", "ab") as log:
            self.procs.append(
                subprocess.Popen(
                    cmd,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=self.folder,
                    env=self.env,
                    start_new_session=True,
                    preexec_fn=enter_group,
                )
            )

    def _sample(self) -> None:
        import psutil

        while not self.stop.wait(1.0):
            for i, worker in enumerate(self.workers):
                try:
                    tree = [worker, *worker.children(recursive=True)]
                except psutil.NoSuchProcess:
                    continue
                total = 0
                for proc in tree:
                    try:  # PSS: pages shared between the processes (a forked copy, TensorFlow's libraries) once
                        total += proc.memory_full_info().pss
                    except (psutil.NoSuchProcess, psutil.AccessDenied):
                        pass
                self.peak_tree_mb[i] = max(self.peak_tree_mb[i], total / 2**20)

    def measure(self) -> list[dict]:
        """Per worker: CPU seconds of the `dask worker` command and all it started (its cpuacct group; else the
        worker process and the processes it reaped, which misses forked sandboxes), the worker process's own CPU
        seconds and peak RSS (VmHWM), the peak PSS of its tree as sampled."""
        out = []
        for i, (worker, tree_mb) in enumerate(zip(self.workers, self.peak_tree_mb)):
            t = worker.cpu_times()
            group = self.cpu_groups.get(f"w{i + 1}")
            if group is not None:
                cpu, source = int((group / "cpuacct.usage").read_text()) / 1e9, "cpuacct cgroup"
            else:
                cpu, source = t.user + t.system + t.children_user + t.children_system, "rusage (no forked sandboxes)"
            hwm = next(
                int(line.split()[1]) / 1024
                for line in Path(f"/proc/{worker.pid}/status").read_text().splitlines()
                if line.startswith("VmHWM:")
            )
            out.append(
                {
                    "cpu_s": round(cpu, 1),
                    "cpu_source": source,
                    "cpu_s_worker_process": round(t.user + t.system, 1),
                    "peak_rss_worker_process_mb": round(hwm),
                    "peak_pss_tree_mb": round(tree_mb),
                }
            )
        return out

    def close(self) -> None:
        self.stop.set()
        for proc in self.procs:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for proc in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                pass
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for group in self.cpu_groups.values():
            for _ in range(50):  # a group goes once its last process has been reaped
                try:
                    group.rmdir()
                    break
                except OSError:
                    time.sleep(0.2)
            proc.wait()


def cluster_run(n: int, workers: int) -> dict:
    """A class of `n` (with hostile submissions) graded by `autograder grade --scheduler` on a loopback cluster of
    `workers` worker processes: wall time, CPU time (client, each worker with its sandboxes), peak memory."""
    with tempfile.TemporaryDirectory(prefix="class-bench-") as tmp:
        # every process imports one snapshot of the kit: the checkout may change under a run of an hour, and the
        # client refuses workers whose kit differs from its own
        shutil.copytree(ROOT / "autograder", Path(tmp) / "kit" / "autograder", ignore=shutil.ignore_patterns("__py*"))
        env = dict(os.environ, PYTHONPATH=str(Path(tmp) / "kit"))
        (Path(tmp) / "course").mkdir()
        course = copy_course(Path(tmp) / "course")
        kinds = make_class(course, n, hostile=True)
        warm(course, env)
        (Path(tmp) / "cluster").mkdir()
        cluster = LoopbackCluster(Path(tmp) / "cluster", workers, env)
        try:
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            run = subprocess.run(
                [str(BIN / "autograder"), "grade", "submitted", "--assignment", A, "--scheduler", cluster.address]
                + ["--out", str(Path(tmp) / "out"), "--no-progress", "--course", str(course)],
                cwd=course,
                env=env,
                capture_output=True,
                text=True,
            )
            wall = time.perf_counter() - start
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            per_worker = cluster.measure()
            group = cluster.cpu_groups.get("scheduler")
            scheduler_cpu = int((group / "cpuacct.usage").read_text()) / 1e9 if group else None
        finally:
            cluster.close()
        if run.returncode != 0:
            raise SystemExit(f"autograder grade --scheduler failed:\n{run.stdout[-2000:]}\n{run.stderr[-2000:]}")
        out = Path(tmp) / "out"
        results = {p.parent.parent.name: json.loads(p.read_text()) for p in out.glob(f"*/{A}/results.json")}
        by_kind: dict[str, list[float]] = {}
        for student, kind in kinds.items():
            if student in results:
                by_kind.setdefault(kind.split(":")[0], []).append(results[student]["score"])
        client_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        cpu = client_cpu + sum(w["cpu_s"] for w in per_worker)
        return {
            "wall_s": round(wall, 1),
            "per_submission_s": round(wall / n, 2),
            "cpu_s": round(cpu, 1),
            "cpu_per_submission_s": round(cpu / n, 2),
            "client_cpu_s": round(client_cpu, 1),
            "scheduler_cpu_s": None if scheduler_cpu is None else round(scheduler_cpu, 1),
            "workers": per_worker,
            "graded": len(results),
            "mix": dict(Counter(k.split(":")[0] for k in kinds.values())),
            "mean_score_by_kind": {k: round(sum(v) / len(v), 2) for k, v in sorted(by_kind.items())},
            "summary": run.stdout.splitlines()[-4:],
            "load_average_after": os.getloadavg(),
        }


def main_cluster(sizes: list[int], workers: int) -> None:
    out = OUT.with_name("class_grading_cluster.json")
    report = json.loads(out.read_text()) if out.is_file() else {}
    report.setdefault("sizes", {})
    report["machine"] = {"cpus": os.cpu_count(), "load_average_at_start": os.getloadavg()}
    report["command"] = "bench/class_grading.py " + " ".join(sys.argv[1:])
    report["started"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    for n in sizes:
        began = time.strftime("%H:%M", time.gmtime())
        got = cluster_run(n, workers)
        got["utc"] = f"{began}-{time.strftime('%H:%M', time.gmtime())}"
        report["sizes"][str(n)] = got
        print(
            f"{n} submissions on {workers} worker processes: {got['wall_s']:.0f} s wall ({got['per_submission_s']} s "
            f"each), {got['cpu_s']:.0f} s CPU ({got['cpu_per_submission_s']} s each), peak memory per worker "
            f"{[w['peak_pss_tree_mb'] for w in got['workers']]} MB (PSS of the worker and its sandboxes)",
            flush=True,
        )
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=1, sort_keys=True) + "\n")
    print(json.dumps(report, indent=1, sort_keys=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,30,100", help="class sizes for the cost per submission (2 workers)")
    parser.add_argument(
        "--compare",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="at 30: the kit with 1 worker and nbgrader autograde too",
    )
    parser.add_argument(
        "--cluster",
        action="store_true",
        help="grade each size (a class with hostile submissions) on a loopback Dask cluster of worker processes",
    )
    parser.add_argument("--cluster-workers", type=int, default=2, help="worker processes of the cluster")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    if args.cluster:
        main_cluster(sizes, args.cluster_workers)
        return
    report = json.loads(OUT.read_text()) if OUT.is_file() else {}
    report.setdefault("sizes", {})
    report["machine"] = {"cpus": os.cpu_count(), "load_average_at_start": os.getloadavg()}
    report["command"] = "bench/class_grading.py " + " ".join(sys.argv[1:])
    for n in sorted(set(sizes) | ({30} if args.compare else set())):
        with tempfile.TemporaryDirectory(prefix="class-bench-") as tmp:
            course = copy_course(Path(tmp))
            kinds = make_class(course, n)
            warm(course)
            if args.compare and n == 30:
                w1 = kit(course, 1, Path(tmp) / "w1")
                print(f"30 submissions, kit --workers 1: {w1['wall_s']:.0f} s", flush=True)
                report["compare_30"] = {"kinds": kinds, "kit_workers_1": w1}
            w2 = kit(course, 2, Path(tmp) / "w2")
            print(f"{n} submissions, kit --workers 2: {w2['wall_s']:.0f} s ({w2['wall_s'] / n:.1f} s each)", flush=True)
            report["sizes"][str(n)] = {
                "kit_workers_2_s": w2["wall_s"],
                "per_submission_s": round(w2["wall_s"] / n, 2),
                "load_average_after": os.getloadavg(),
            }
            if args.compare and n == 30:
                report["compare_30"]["kit_workers_2"] = w2
                if w1["scores"] != w2["scores"]:
                    report["compare_30"]["scores_differ"] = True
                nbg = nbgrader(course)
                print(f"30 submissions, nbgrader autograde: {nbg['wall_s']:.0f} s ({nbg['graded']} graded)", flush=True)
                c = report["compare_30"]
                c["nbgrader_autograde"] = nbg
                c["ratios"] = {
                    "kit_w1_over_w2": round(w1["wall_s"] / w2["wall_s"], 2),
                    "nbgrader_over_kit_w1": round(nbg["wall_s"] / w1["wall_s"], 2),
                    "nbgrader_over_kit_w2": round(nbg["wall_s"] / w2["wall_s"], 2),
                }
            OUT.parent.mkdir(parents=True, exist_ok=True)
            OUT.write_text(json.dumps(report, indent=1, sort_keys=True) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k != "compare_30"}, indent=1))
    if "compare_30" in report:
        print(json.dumps(report["compare_30"].get("ratios"), indent=1))


if __name__ == "__main__":
    main()
