"""The Dask pool: a batch's jobs graded by the workers of a Dask distributed cluster instead of local threads.

    client: the course archive (course.yaml; source/, release/, reference_weights/ and the grading cache of each
            assignment, with the expectations `prepare` computed), broadcast once to every worker;
            one task per submission: the notebook's bytes, the trained weights found beside it (vetted by the
            client, as the local pool does: a SubmittedWeights), the student, the batch's profile, the client's
            `graded_with`
    worker: unpacks the archive once per archive, builds the Grader once per process with the batch's profile,
            refuses to grade when its own `graded_with` differs from the client's (another kit version: a
            grader_error result, not a wrong grade), grades the bytes in a temporary folder, returns the
            SubmissionResult (pickled back as it is)
    client: writes each result as it arrives, exactly as with the thread pool (driver.py)

So a worker needs the kit installed (the same version) and the data offline, not the course checkout or a shared
file system, and a result graded on the cluster is byte for byte the local one, apart from timestamps.

The profile: one per batch, so a class is never graded against two sets of thresholds. The caller's (`--profile`,
else $AUTOGRADER_PROFILE) when it gave one; else gpu when a worker declares a GPU (`dask worker --resources GPU=1`),
else cpu. It is passed to every grader as an argument, never through the environment. With the gpu profile the
tasks of assignments that train ask for GPU=1, so only GPU workers run them, one per GPU at a time.

The connection: a scheduler off this machine is reached with TLS only (`--certs`, certs.py), unless the user says
`--insecure`; decided from the address as written, before connecting (`connection_security`).

A worker that dies (SIGKILL included) loses its gradings in flight, which Dask runs again on another worker; their
sandboxes die with it (the sandbox's parent-death signal), and their scratch folders, all in the worker process's
own temporary folder, are removed by a janitor process that waits for the worker's end (`_own_scratch`).
"""

from __future__ import annotations

import hashlib
import io
import ipaddress
import os
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from ..checks.quality.weights_file import SubmittedWeights
from ..config import Course, load_course
from ..errors import KitError
from ..files import COURSE_FILE, CoursePaths, atomic_write
from ..grading import Grader
from ..grading.profile import profile_name
from ..results import SubmissionResult
from .jobs import Job, error_result, grade_safely, graded_with, kit_fingerprint

if TYPE_CHECKING:
    from distributed.security import Security

GPU = "GPU"  # the Dask resource that GPU workers declare
TLS_DOCS = 'docs/class-grading.md, section "TLS between the machines"'


def connection_security(
    address: str, *, certs: Path | None = None, insecure: bool = False, log: Callable[[str], object] = print
) -> Security | None:
    """How to connect to the scheduler at `address`, decided from the address as written, before any connection:
    TLS with the course's certificates (`certs`) for tls://; nothing for a scheduler on this machine (a loopback
    address or `localhost`) or in this process; a KitError for any other unencrypted address, unless `insecure`.
    Dask's scheduler runs whatever a client sends it, so an open port on a network lets anyone run code on every
    grading machine."""
    from distributed.comm import parse_address, parse_host_port

    try:
        scheme, location = parse_address(address)
        host = "" if scheme == "inproc" else parse_host_port(location)[0]
    except ValueError as err:
        raise KitError(f"--scheduler {address} is not a Dask address such as tcp://host:8786 ({err}).") from None
    if scheme in ("tls", "wss"):
        if certs is not None:
            from .certs import security

            return security(certs)
        import dask

        if dask.config.get("distributed.comm.tls.ca-file", None):
            from distributed.security import Security

            return Security()  # the TLS files that Dask's own configuration names
        raise KitError(
            f"--scheduler {address} uses TLS: pass --certs DIR, the folder `autograder cluster-certs DIR` wrote "
            f"({TLS_DOCS})."
        )
    if certs is not None:
        raise KitError(
            f"--certs is for a TLS scheduler, and {address} is not one: start the scheduler with the certificates "
            f"and grade with --scheduler tls://HOST:PORT ({TLS_DOCS})."
        )
    if scheme == "inproc" or _loopback(host):
        return None
    if insecure:
        log(
            f"warning: --insecure: the connection to {address} is neither encrypted nor authenticated; anyone who "
            "can reach the scheduler's port can run code on every grading machine."
        )
        return None
    raise KitError(
        f"refusing to send work to the Dask scheduler at {address} without TLS: it is not on this machine, and "
        "anyone who can reach its port could run code on every grading machine. Make certificates with "
        "`autograder cluster-certs DIR`, start the scheduler and workers with them, and grade with "
        f"--scheduler tls://{host}:PORT --certs DIR ({TLS_DOCS}); on a network you trust, pass --insecure."
    )


def _loopback(host: str) -> bool:
    """Whether `host`, as written, names this machine: `localhost`, or an address in 127.0.0.0/8 or ::1."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: where it points is not decided by resolving it
        return False


def task_resources(grader: Grader, profile: str) -> dict[str, int] | None:
    """The resources a submission's task asks for: a GPU when the batch trains on GPUs."""
    return {GPU: 1} if profile == "gpu" and grader.trains else None


class DaskPool:
    """The `Pool` of a batch graded on a Dask cluster (see the module's docstring)."""

    def __init__(
        self,
        address: str,
        *,
        course: Course,
        profile: str | None = None,
        log: Callable[[str], object] = print,
        timeout: float = 30,
        certs: Path | None = None,
        insecure: bool = False,
    ):
        try:
            from distributed import Client
        except ImportError:  # pragma: no cover - installed with the kit
            raise KitError("--scheduler needs dask[distributed]: pip install 'dask[distributed]'.") from None
        self.course, self.log = course, log
        security = connection_security(address, certs=certs, insecure=insecure, log=log)
        try:
            self.client = Client(address, timeout=timeout, security=security)
        except (OSError, TimeoutError) as err:
            raise KitError(
                f"cannot reach the Dask scheduler at {address}: {err}. Start one with `dask scheduler` "
                + ("with the same certificates " if security is not None else "")
                + "(see docs/class-grading.md)."
            ) from None
        try:
            self.client.wait_for_workers(1, timeout=60)
        except TimeoutError:
            self.client.close()
            raise KitError(
                f"the Dask scheduler at {address} has no workers after 60 s: start some with `dask worker {address}`."
            ) from None
        workers = self.client.scheduler_info(n_workers=-1)["workers"]
        self.gpus = sum(int(w.get("resources", {}).get(GPU, 0)) for w in workers.values())
        self.threads = sum(int(w.get("nthreads", 1)) for w in workers.values())
        self.n_workers = len(workers)
        mine = kit_fingerprint()
        theirs = self.client.run(kit_fingerprint)
        other = sorted(w for w, fp in theirs.items() if fp != mine)
        if other:
            self.client.close()
            raise KitError(
                f"{len(other)} Dask worker(s) run another version of the kit ({', '.join(other[:3])}: "
                f"{theirs[other[0]]}, here {mine}): install the same kit there."
            )
        self.profile: str = profile_name(profile, gpu=bool(self.gpus))
        log(
            f"Dask cluster at {address}: {self.n_workers} worker(s), {self.threads} thread(s), {self.gpus} GPU(s); "
            f"grading with the {self.profile} profile."
        )

    def describe(self) -> str:
        return f"the Dask cluster ({self.n_workers} workers, {self.threads} threads)"

    def adapt(self, grader: Grader) -> Grader:
        if task_resources(grader, self.profile) and not self.gpus:
            raise KitError(
                f"the {self.profile} profile trains on GPUs, but no worker of the cluster declares a GPU: "
                "start GPU workers with `--resources GPU=1`, or grade with `--profile cpu`."
            )
        return grader.with_profile(self.profile)

    def run(
        self, jobs: list[Job], on_result: Callable[[Job, SubmissionResult], None], on_interrupt: Callable[[], None]
    ) -> bool:
        """Submit every job, call `on_result` as results arrive. Ctrl-C cancels what is left (the cluster cannot
        stop a task in flight; its result is dropped and the next run grades it)."""
        from distributed import as_completed

        if not jobs:
            return False
        bundle = course_archive(self.course, sorted({j.task.assignment for j in jobs}))
        bundle_id = hashlib.sha256(bundle).hexdigest()[:16]
        [shared] = self.client.scatter([bundle], broadcast=True, hash=False)
        futures = {}
        for job in jobs:
            try:
                content = job.task.notebook.read_bytes()
            except OSError as err:
                on_result(job, error_result(job.grader, job.task.student, f"cannot read the notebook: {err}"))
                continue
            # the trained weights beside the notebook, found and vetted here (the worker grades a copy of the
            # notebook, with nothing beside it); None when no counted check measures them
            weights = job.grader.find_weights(job.task.notebook)
            future = self.client.submit(
                grade_remote,
                shared,
                bundle_id,
                job.task.assignment,
                self.profile,
                job.grader.backend,
                job.graded_with,
                [str(p) for p in job.grader.hide],
                job.task.notebook.name,
                content,
                job.task.student,
                weights,
                key=f"grade-{job.task.assignment}-{job.task.student}-{uuid.uuid4().hex[:8]}",
                resources=task_resources(job.grader, self.profile),
                pure=False,
            )
            futures[future] = job
        try:
            for future in as_completed(futures):
                job = futures.pop(future)
                try:
                    result = future.result()
                except Exception as err:  # noqa: BLE001 - a worker lost, a task error: that submission's result
                    result = error_result(
                        job.grader, job.task.student, f"on the cluster, {type(err).__name__}: {err}", sha256=job.sha256
                    )
                on_result(job, result)
        except KeyboardInterrupt:
            self.client.cancel(list(futures))
            on_interrupt()
            return True
        return False

    def close(self) -> None:
        self.client.close()


def course_archive(course: Course, assignments: list[str]) -> bytes:
    """The files a worker's grader reads, as one tar archive (deterministic: the same files give the same bytes)."""

    def clean(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
        if "__pycache__" in info.name or ".ipynb_checkpoints" in info.name:
            return None
        info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
        return info

    paths = course.paths
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.add(paths.course_file, COURSE_FILE, filter=clean)
        for name in assignments:
            folders = (
                paths.source_dir(name),
                paths.release_dir(name),
                paths.reference_dir(name),
                paths.grading_cache(name),
            )
            for folder in folders:
                if folder.is_dir():
                    for item in sorted(folder.rglob("*")):
                        if item.is_file():
                            tar.add(item, item.relative_to(course.root).as_posix(), filter=clean)
    return buf.getvalue()


# ---------------------------------------------------------------------------------------------- on the worker

_lock = threading.Lock()
_graders: dict[tuple[str, str, str, str, tuple[str, ...]], Grader] = {}


def grade_remote(
    bundle: bytes,
    bundle_id: str,
    assignment: str,
    profile: str,
    backend: str,
    expected: dict[str, str],
    hide: list[str],
    filename: str,
    content: bytes,
    student: str,
    weights: SubmittedWeights | None = None,
) -> SubmissionResult:
    """Runs on a Dask worker: grade one submission's bytes with the grader built from the client's archive, with
    the client's profile and Keras backend, and the trained weights the client found beside the notebook."""
    _own_scratch()
    grader = _worker_grader(bundle, bundle_id, assignment, profile, backend, hide)
    mine = graded_with(grader)
    if mine != expected:
        differ = ", ".join(k for k in expected if mine.get(k) != expected[k])
        return error_result(
            grader,
            student,
            f"worker {socket.gethostname()} would grade with another {differ} "
            f"than the client: install the same kit there",
        )
    with tempfile.TemporaryDirectory(prefix="autograder-submission-") as tmp:
        path = Path(tmp) / "submission" / Path(filename).name
        path.parent.mkdir()
        path.write_bytes(content)
        return grade_safely(grader, path, student=student, weights=weights)


# Runs apart from the worker, in its own session (a kill of the worker's process group spares it): waits for the end
# of its standard input, whose only writer is the worker process, then removes the worker's temporary folder, again
# while the sandboxes (killed with their parent) may still be letting go of their files.
_JANITOR = """
import os, shutil, sys, time
sys.stdin.buffer.read()
for _ in range(60):
    shutil.rmtree(sys.argv[1], ignore_errors=True)
    if not os.path.lexists(sys.argv[1]):
        break
    time.sleep(0.5)
"""

_system_tmp = Path(tempfile.gettempdir())  # where the course archive is unpacked: shared by a machine's workers
_janitor: subprocess.Popen[bytes] | None = None


def _own_scratch() -> None:
    """In a Dask worker process of its own, once: a temporary folder for this process alone
    (`autograder-worker-<pid>-*`), made the process's default one, so that every scratch folder its gradings make
    (the sandboxes' among them) is inside it; and a janitor that removes it when the process ends, however it ends.
    A worker in the client's process (an in-process LocalCluster) keeps that process's temporary folder."""
    global _janitor
    try:
        from distributed import get_worker

        if get_worker().address.startswith("inproc://"):
            return
    except ValueError:  # not on a Dask worker: a direct call
        return
    with _lock:
        if _janitor is not None:
            return
        root = tempfile.mkdtemp(prefix=f"autograder-worker-{os.getpid()}-", dir=_system_tmp)
        _janitor = remove_when_gone(root)
        tempfile.tempdir = root  # this process is a grading worker: all its temporary files are scratch


def remove_when_gone(folder: str) -> subprocess.Popen[bytes]:
    """Start the janitor that removes `folder` when this process ends (SIGKILL included); keep the returned object
    for the life of the process: its open pipe is what the janitor watches."""
    return subprocess.Popen(
        [sys.executable, "-I", "-S", "-c", _JANITOR, folder],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def _worker_grader(
    bundle: bytes, bundle_id: str, assignment: str, profile: str, backend: str, hide: list[str]
) -> Grader:
    key = (bundle_id, assignment, profile, backend, tuple(hide))
    with _lock:  # one grader per process, archive and profile; its expectations are prepared (or read) once
        if key not in _graders:
            root = _unpack(bundle, bundle_id)
            grader = Grader.create(
                load_course(root), assignment, profile=profile, backend=backend, hide_extra=[Path(p) for p in hide]
            )
            grader.prepare()
            _graders[key] = grader
        return _graders[key]


def _unpack(bundle: bytes, bundle_id: str) -> Path:
    """The archive's files in this machine's temporary folder, one folder per archive. Each file is written with
    `atomic_write` and course.yaml last, so a folder with a course.yaml is complete; two processes unpacking the
    same archive at once write the same bytes, and either may finish first."""
    root = _system_tmp / f"autograder-course-{bundle_id}"
    root.mkdir(mode=0o700, exist_ok=True)
    info = root.lstat()
    if not root.is_dir() or root.is_symlink() or info.st_uid != os.getuid():
        raise KitError(f"{root} is not a folder of this user's: remove it, then grade again.")
    if CoursePaths(root).course_file.is_file():
        return root
    with tarfile.open(fileobj=io.BytesIO(bundle)) as tar:
        members = []
        for member in tar.getmembers():
            safe = tarfile.data_filter(member, str(root))  # raises on names outside root, links, devices
            if safe is not None and safe.isfile():
                members.append((safe.name, member))
        for name, member in sorted(members, key=lambda m: m[0] == COURSE_FILE):
            source = tar.extractfile(member)
            if source is None:  # only regular files were kept above, and each has a file object
                raise KitError(f"{name} in the course's archive is not a regular file: grade again.")
            atomic_write(root / name, source.read())
    return root
