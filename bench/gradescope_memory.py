"""Peak memory of one Gradescope run: the zip built and unpacked into a Gradescope-like root, prepared, then
run_autograder on the solution, with the memory of the whole process tree (the grader and its workers: the
student's and the clean one, which run side by side) sampled every 50 ms. Gradescope's memory setting must cover that
peak.

    .venv/bin/python bench/gradescope_memory.py [ASSIGNMENT]
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from autograder.config import load_course  # noqa: E402
from autograder.gradescope import build_zip  # noqa: E402

PAGE = os.sysconf("SC_PAGE_SIZE")


def tree_memory(pid: int) -> tuple[int, int]:
    """(resident, proportional) bytes of `pid` and all its descendants, read from /proc. The resident sum counts
    a library that several processes map (TensorFlow's, in the student's and the clean worker) once per process;
    the proportional one (PSS) shares it out, and is nearer what a container's memory limit charges."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            statm = Path(f"/proc/{entry}/statm").read_text().split()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
        rss[int(entry)] = int(statm[1]) * PAGE
    total, pss, todo = 0, 0, [pid]
    while todo:
        p = todo.pop()
        total += rss.get(p, 0)
        pss += proportional(p)
        todo += children.get(p, [])
    return total, pss


def proportional(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def main() -> None:
    assignment = sys.argv[1] if len(sys.argv) > 1 else "autoencoder"
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "autograder"
        zip_path = build_zip(load_course(ROOT), assignment, Path(tmp))
        with zipfile.ZipFile(zip_path) as z:
            z.extractall(root / "source")
        os.chmod(root / "source" / "run_autograder", 0o755)
        for folder in ("submission", "results"):
            (root / folder).mkdir()
        shutil.copy(ROOT / "solutions" / assignment / f"{assignment}.ipynb", root / "submission")
        env = dict(
            os.environ,
            AUTOGRADER_ROOT=str(root),
            AUTOGRADER_PYTHON=sys.executable,
            AUTOENCODER_KIT_CACHE=str(root / "source" / "cache"),
        )
        subprocess.run(
            [sys.executable, "-m", "autograder.gradescope", "prepare", "--root", str(root), "--assignment", assignment],
            env=env,
            check=True,
            capture_output=True,
        )
        began = time.monotonic()
        proc = subprocess.Popen(
            [str(root / "source" / "run_autograder")], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        peak = [0, 0]

        def sample() -> None:
            while proc.poll() is None:
                rss, pss = tree_memory(proc.pid)
                peak[0], peak[1] = max(peak[0], rss), max(peak[1], pss)
                time.sleep(0.05)

        sampler = threading.Thread(target=sample)
        sampler.start()
        proc.wait()
        sampler.join()
        result = (root / "results" / "results.json").read_text()
    print(
        f"{assignment}: run_autograder took {time.monotonic() - began:.0f} s; peak memory of its process tree: "
        f"{peak[0] / 2**20:.0f} MiB resident (summed per process), {peak[1] / 2**20:.0f} MiB proportional (PSS); "
        f"results.json {len(result)} bytes; load average {os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    main()
