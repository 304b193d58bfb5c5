"""A real Dask cluster: `dask scheduler` and `dask worker` processes started from their command lines on 127.0.0.1
(as docs/class-grading.md tells a user to), the kit's CLI pointed at them. The results equal the local pool's; a
worker SIGKILLed mid-class costs a retry and leaves nothing behind; a grader killed and started again resumes; TLS
with certificates `autograder cluster-certs` made; a GPU worker (a declared resource) takes the training tasks; and
an unencrypted scheduler off loopback is refused before any connection."""

from __future__ import annotations

import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from conftest import RELEASE, SOLUTION, notebook
from test_batch import comparable, make_class, results_of, with_code

from autograder.batch.certs import security, write_certs
from autograder.batch.dask_pool import TLS_DOCS, DaskPool, connection_security
from autograder.errors import KitError

A = "autoencoder"
BIN = Path(sys.executable).parent  # the virtual environment's bin/: dask, autograder
KIT_FOLDERS = ("autograder-worker-", "autograder-student-", "autograder-eval-", "autograder-submission-")

CLASS = {
    "ada": SOLUTION.read_bytes(),  # trains: the long one
    "bob": b'{"cells": [ not a notebook',
    "cyd": RELEASE.read_bytes(),
    "dan": json.dumps(with_code(notebook(SOLUTION), "decoder_block", "def define_decoder_block(x,")).encode(),
}


# ---- the address, before any connection: quick --------------------------------------------------------------------


@pytest.mark.parametrize(
    "address", ["tcp://127.0.0.1:8786", "127.0.0.1:8786", "tcp://127.0.0.9:1", "localhost:8786", "tcp://[::1]:8786"]
)
def test_a_scheduler_on_loopback_needs_no_tls(address):
    assert connection_security(address) is None


# Addresses off loopback: decided as written, so nothing is ever sent to them (only `.invalid` names, which can never
# resolve, go as far as DaskPool and the CLI: were the refusal broken, no packet could leave for them).
@pytest.mark.parametrize(
    "address",
    [
        "tcp://10.0.0.5:8786",
        "192.168.1.2:8786",
        "tcp://0.0.0.0:8786",
        "tcp://grader.example.edu:8786",
        "ws://[fe80::1]:1",
    ],
)
def test_a_scheduler_off_loopback_without_tls_is_refused_unless_insecure(address):
    with pytest.raises(KitError, match="without TLS") as refused:
        connection_security(address)
    assert "--insecure" in str(refused.value) and TLS_DOCS in str(refused.value)
    assert "autograder cluster-certs DIR" in str(refused.value)
    warned: list[str] = []
    assert connection_security(address, insecure=True, log=warned.append) is None
    assert "neither encrypted nor authenticated" in warned[0]


def test_the_pool_refuses_before_connecting(tiny_course):
    began = time.monotonic()
    with pytest.raises(KitError, match="refusing to send work to the Dask scheduler at tcp://grader.invalid:8786"):
        DaskPool("tcp://grader.invalid:8786", course=tiny_course, timeout=20)
    assert time.monotonic() - began < 5  # no connection tried: it would have taken the 20 s timeout to fail


def test_the_cli_refuses_and_names_the_fix(tiny_course, tmp_path):
    nb = tmp_path / "bob.ipynb"
    nb.write_text("{ not a notebook")
    args = [str(BIN / "autograder"), "grade", str(nb), "-a", A, "--course", str(tiny_course.root), "--no-progress"]
    done = subprocess.run([*args, "--scheduler", "grader.invalid:8786"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "refusing to send work" in done.stderr and "--insecure" in done.stderr and TLS_DOCS in done.stderr
    done = subprocess.run([*args, "--certs", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "pass --scheduler too" in done.stderr


def test_tls_needs_certificates_and_certificates_need_tls(tmp_path):
    with pytest.raises(KitError, match="uses TLS: pass --certs DIR"):
        connection_security("tls://10.0.0.5:8786")  # (pure: connects to nothing)
    write_certs(tmp_path / "c")
    with pytest.raises(KitError, match="--certs is for a TLS scheduler"):
        connection_security("tcp://127.0.0.1:8786", certs=tmp_path / "c")
    with pytest.raises(KitError, match="has no ca.pem, node.pem, node-key.pem"):
        connection_security("tls://10.0.0.5:8786", certs=tmp_path)
    sec = connection_security("tls://10.0.0.5:8786", certs=tmp_path / "c")
    assert sec is not None and sec.require_encryption and sec.tls_client_cert == str(tmp_path / "c" / "node.pem")


def test_cluster_certs_are_a_ca_and_one_node_certificate_it_signed(tmp_path):
    folder = tmp_path / "certs"
    paths = write_certs(folder)
    assert [p.name for p in paths] == ["ca.pem", "node.pem", "node-key.pem"]
    assert (folder / "node-key.pem").stat().st_mode & 0o077 == 0  # the key to the cluster: the owner's alone
    assert "PRIVATE KEY" not in (folder / "ca.pem").read_text() + (folder / "node.pem").read_text()
    # the node certificate is accepted by a TLS context that trusts only ca.pem, as Dask builds it
    ctx = security(folder).get_connection_args("client")["ssl_context"]
    assert ctx.verify_mode == ssl.CERT_REQUIRED
    other = tmp_path / "other"
    write_certs(other)
    with pytest.raises(KitError, match="already holds ca.pem"):
        write_certs(other)
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature

    node = x509.load_pem_x509_certificate((folder / "node.pem").read_bytes())
    ca = x509.load_pem_x509_certificate((folder / "ca.pem").read_bytes())
    node.verify_directly_issued_by(ca)
    with pytest.raises(InvalidSignature):  # another course's CA did not sign it
        node.verify_directly_issued_by(x509.load_pem_x509_certificate((other / "ca.pem").read_bytes()))


# ---- a real cluster of separate processes ------------------------------------------------------------------------


class Cluster:
    """A `dask scheduler` and `dask worker` processes, each in its own session with its own log and temporary
    folder; `close` ends every process it started (their process groups), also when a test fails."""

    def __init__(self, root: Path, env: dict[str, str], tls: list[str] | None = None):
        self.root, self.env, self.tls = root, env, tls or []
        self.procs: dict[str, subprocess.Popen] = {}
        self.address = ""

    def start_scheduler(self) -> str:
        info = self.root / "scheduler.json"
        self._start(
            "scheduler",
            ["scheduler", "--host", "127.0.0.1", "--port", "0", "--dashboard-address", ":0", "--scheduler-file"]
            + [str(info), *self.tls],
        )
        deadline = time.monotonic() + 120
        while not info.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        self.address = json.loads(info.read_text())["address"]
        return self.address

    def start_worker(self, name: str, *extra: str) -> subprocess.Popen:
        (self.root / name).mkdir(exist_ok=True)
        return self._start(
            name,
            ["worker", self.address, "--name", name, "--nthreads", "1", "--memory-limit", "0"]
            + ["--dashboard-address", ":0", *extra, *self.tls],
            tmpdir=self.root / name,
        )

    def wait_for_workers(self, n: int, sec=None) -> None:
        from distributed import Client

        with Client(self.address, security=sec, timeout=60) as client:
            client.wait_for_workers(n, timeout=180)

    def _start(self, name: str, args: list[str], tmpdir: Path | None = None) -> subprocess.Popen:
        env = dict(self.env, TMPDIR=str(tmpdir)) if tmpdir else self.env
        with open(self.root / f"{name}.log", "ab") as log:
            proc = subprocess.Popen(
                [str(BIN / "dask"), *args],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.root,
                start_new_session=True,
            )
        self.procs[name] = proc
        return proc

    def close(self) -> None:
        for proc in self.procs.values():
            _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            _signal_group(proc, signal.SIGKILL)
            proc.wait()


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    """A snapshot of the kit that every process of these tests imports (through PYTHONPATH, run outside the
    checkout), so that an edit to the working tree meanwhile cannot give the client and the workers two kits."""
    root = tmp_path_factory.mktemp("kit")
    shutil.copytree(
        Path(__import__("autograder").__file__).parent,
        root / "autograder",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTOGRADER_", "DASK_"))}
    return dict(env, PYTHONPATH=str(root))


def grade_cli(kit_env, course, subs: Path, out: Path, *extra: str, cwd: Path, **popen) -> subprocess.Popen:
    cmd = [str(BIN / "autograder"), "grade", str(subs), "-a", A, "--out", str(out)]
    cmd += ["--course", str(course.root), "--no-progress", *extra]
    return subprocess.Popen(cmd, env=kit_env, cwd=cwd, text=True, start_new_session=True, **popen)


def finish(proc: subprocess.Popen, timeout: float = 1800) -> str:
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _signal_group(proc, signal.SIGKILL)
        raise
    assert proc.returncode == 0, out[-3000:]
    return out


@pytest.fixture(scope="module")
def the_class(roomy_course, kit, tmp_path_factory):
    """The class, and its results graded by the local pool (2 threads) with the same kit snapshot."""
    root = tmp_path_factory.mktemp("class")
    subs = make_class(root, CLASS)
    out = root / "local"
    finish(grade_cli(kit, roomy_course, subs, out, "--workers", "2", cwd=root, stdout=subprocess.PIPE))
    return subs, {s: comparable(r) for s, r in results_of(out).items()}


@pytest.fixture(scope="module")
def cluster(kit, tmp_path_factory):
    """A scheduler and two worker processes on 127.0.0.1, one thread each."""
    c = Cluster(tmp_path_factory.mktemp("cluster"), kit)
    try:
        c.start_scheduler()
        c.start_worker("w1")
        c.start_worker("w2")
        c.wait_for_workers(2)
        yield c
    finally:
        c.close()


def graded_lines(stdout: str) -> dict[str, int]:
    """How many times each student's grading was reported (one line per written result)."""
    counts: dict[str, int] = {}
    for line in stdout.splitlines():
        if line.startswith("[") and f" {A}: " in line:
            student = line.split("] ", 1)[1].split(" ", 1)[0]
            counts[student] = counts.get(student, 0) + 1
    return counts


@pytest.mark.slow
def test_a_cluster_of_processes_grades_like_the_local_pool(the_class, cluster, roomy_course, kit, tmp_path):
    subs, local = the_class
    out = tmp_path / "out"
    stdout = finish(grade_cli(kit, roomy_course, subs, out, "--scheduler", cluster.address, cwd=tmp_path, stdout=-1))
    assert "2 worker(s), 2 thread(s), 0 GPU(s); grading with the cpu profile" in stdout
    assert graded_lines(stdout) == dict.fromkeys(CLASS, 1)
    assert {s: comparable(r) for s, r in results_of(out).items()} == local
    assert local["bob"]["score"] == 0 < local["dan"]["score"] < local["ada"]["score"]


def _scratch(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("autograder-*") if p.name.startswith(KIT_FOLDERS)]


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.mark.slow
def test_a_worker_killed_mid_class_costs_a_retry_and_leaves_nothing_behind(
    the_class, cluster, roomy_course, kit, tmp_path
):
    """SIGKILL to worker w1's nanny and worker process while a sandbox of its grading runs; a fresh worker joins.
    Every submission is graded once, as by the local pool. How we know nothing is left behind: every process that
    descended from w1 just before the kill (its sandboxes, the janitor) is gone afterwards, and w1's temporary
    folder (TMPDIR) holds none of the kit's scratch folders, though it held some at the kill."""
    subs, local = the_class
    out = tmp_path / "out"
    grader = grade_cli(kit, roomy_course, subs, out, "--scheduler", cluster.address, cwd=tmp_path, stdout=-1)
    nanny = psutil.Process(cluster.procs["w1"].pid)
    w1_tmp = cluster.root / "w1"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and grader.poll() is None:
        try:
            below = [p for w in nanny.children() for p in w.children(recursive=True)]
        except psutil.NoSuchProcess:
            below = []
        if len(below) >= 2 and any(p.name.startswith("autograder-student-") for p in _scratch(w1_tmp)):
            break  # w1 is grading: its worker process has a sandbox besides its janitor, with a scratch folder
        time.sleep(0.1)
    else:
        pytest.fail("worker w1 never started a sandbox")
    workers = nanny.children()
    family = workers + [p for w in workers for p in w.children(recursive=True)]
    left = _scratch(w1_tmp)
    nanny.kill()
    for proc in workers:
        proc.kill()  # the worker process itself; its sandboxes are left to their own fences
    cluster.procs["w1"].wait()
    cluster.start_worker("w3")
    stdout = finish(grader)

    assert graded_lines(stdout) == dict.fromkeys(CLASS, 1), stdout  # each written once, none lost
    assert "graded 4 of 4 submission(s)" in stdout
    assert {s: comparable(r) for s, r in results_of(out).items()} == local
    assert any(p.name.startswith("autograder-worker-") for p in left)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (any(_alive(p) for p in family) or _scratch(w1_tmp)):
        time.sleep(0.5)
    assert not [p for p in family if _alive(p)], "a process of the killed worker is still running"
    assert _scratch(w1_tmp) == [], "the killed worker's scratch folders are still there"


@pytest.mark.slow
def test_a_grader_killed_and_started_again_resumes_on_the_same_cluster(the_class, cluster, roomy_course, kit, tmp_path):
    subs, local = the_class
    out = tmp_path / "out"
    cheap = make_class(tmp_path / "cheap", {s: CLASS[s] for s in ("bob", "cyd", "dan")})
    grader = grade_cli(kit, roomy_course, cheap, out, "--scheduler", cluster.address, cwd=tmp_path, stdout=-3)
    deadline = time.monotonic() + 600
    while not list(out.glob(f"*/{A}/results.json")) and grader.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    _signal_group(grader, signal.SIGKILL)
    grader.wait()
    before = {p: p.read_bytes() for p in out.glob(f"*/{A}/results.json")}
    assert 1 <= len(before) < 3, f"{len(before)} results when killed"

    stdout = finish(grade_cli(kit, roomy_course, cheap, out, "--scheduler", cluster.address, cwd=tmp_path, stdout=-1))
    assert f"{len(before)} of 3 submission(s) already graded with this kit and course: skipped." in stdout
    assert sum(graded_lines(stdout).values()) == 3 - len(before)
    assert {p: p.read_bytes() for p in before} == before
    assert {s: comparable(r) for s, r in results_of(out).items()} == {s: local[s] for s in ("bob", "cyd", "dan")}


@pytest.mark.slow
def test_a_tls_cluster_grades_with_the_certificates_cluster_certs_made(the_class, roomy_course, kit, tmp_path):
    subs, local = the_class
    cheap = make_class(tmp_path / "cheap", {s: CLASS[s] for s in ("bob", "cyd")})
    certs = tmp_path / "certs"
    made = subprocess.run(
        [str(BIN / "autograder"), "cluster-certs", str(certs)], env=kit, cwd=tmp_path, capture_output=True, text=True
    )
    assert made.returncode == 0, made.stderr
    tls = ["--tls-ca-file", str(certs / "ca.pem"), "--tls-cert", str(certs / "node.pem")]
    tls += ["--tls-key", str(certs / "node-key.pem")]
    c = Cluster(tmp_path / "tls", kit, tls=tls)
    c.root.mkdir()
    try:
        address = c.start_scheduler()
        assert address.startswith("tls://127.0.0.1:")
        c.start_worker("w1")
        c.wait_for_workers(1, sec=security(certs))
        out = tmp_path / "out"
        args = ("--scheduler", address, "--certs", str(certs))
        finish(grade_cli(kit, roomy_course, cheap, out, *args, cwd=tmp_path, stdout=-1))
        assert {s: comparable(r) for s, r in results_of(out).items()} == {s: local[s] for s in ("bob", "cyd")}
        # Another course's certificates do not open this cluster.
        write_certs(tmp_path / "other")
        with pytest.raises(KitError, match="cannot reach the Dask scheduler"):
            DaskPool(address, course=roomy_course, certs=tmp_path / "other", timeout=5)
        # Nor does a connection without TLS.
        with pytest.raises(KitError, match="cannot reach the Dask scheduler"):
            DaskPool(address.replace("tls://", "tcp://"), course=roomy_course, timeout=5)
    finally:
        c.close()


@pytest.mark.slow
def test_a_gpu_worker_process_takes_the_training_tasks_with_the_gpu_profile(tiny_course, kit, tmp_path):
    """A CPU worker and a worker that declares GPU=1 on its command line (no GPU here: the resource is what Dask
    schedules by). The batch picks the gpu profile (its thresholds), and every task of an assignment that trains asks
    for the GPU, so only that worker grades: only it ever unpacked the course. (Broken notebooks: no training.)"""
    root = tmp_path / "course"
    shutil.copytree(tiny_course.root, root)
    thresholds = root / "reference_weights" / A / "thresholds.json"
    data = json.loads(thresholds.read_text())
    data["profiles"]["gpu"] = data["profiles"]["cpu"]  # as if calibrated on a GPU
    thresholds.write_text(json.dumps(data))
    from autograder.config import load_course

    course = load_course(root)
    subs = make_class(tmp_path / "class", {"bob": b"{ not a notebook", "eve": b'{"cells": [ nor this'})
    c = Cluster(tmp_path / "gpu", kit)
    c.root.mkdir()
    try:
        c.start_scheduler()
        c.start_worker("cpu")
        c.start_worker("gpu", "--resources", "GPU=1")
        c.wait_for_workers(2)
        out = tmp_path / "out"
        stdout = finish(grade_cli(kit, course, subs, out, "--scheduler", c.address, cwd=tmp_path, stdout=-1))
    finally:
        c.close()
    assert "2 worker(s), 2 thread(s), 1 GPU(s); grading with the gpu profile" in stdout
    got = results_of(out)
    assert "not_json" in [f["kind"] for f in got["bob"]["extra_data"]["findings"]]
    assert list((c.root / "gpu").glob("autograder-course-*")) and not list((c.root / "cpu").glob("autograder-course-*"))
