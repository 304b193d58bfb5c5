"""Grading on a Dask cluster: a LocalCluster in this process gives the results the local pool gives; GPU workers get
the training tasks; a worker with another kit refuses to grade."""

from __future__ import annotations

import copy
import hashlib
import json
import shutil
import tempfile

import pytest
from conftest import RELEASE

from autograder.batch import dask_pool
from autograder.batch.dask_pool import DaskPool, course_archive, grade_remote, task_resources
from autograder.batch.jobs import graded_with
from autograder.errors import KitError
from autograder.results import GRADER_ERROR

A = "autoencoder"


def comparable(result: dict) -> dict:
    out = copy.deepcopy(result)
    out.pop("execution_time", None)
    out["extra_data"].pop("timestamp", None)
    out["extra_data"].get("environment", {}).pop("load_average", None)
    return out


@pytest.fixture(scope="module")
def cluster():
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=":0") as c:
        yield c


def test_local_cluster_grades_like_the_local_pool(roomy_course, cluster, tmp_path):
    from autograder.batch import grade_paths

    temp = tempfile.gettempdir()
    subs = tmp_path / "submitted"
    for student, text in {"bob": '{"cells": [ not a notebook', "cyd": RELEASE.read_text()}.items():
        (subs / student / A).mkdir(parents=True)
        (subs / student / A / f"{A}.ipynb").write_text(text)
    lines = []
    summary = grade_paths(
        roomy_course,
        [subs],
        assignment=A,
        out=tmp_path / "out",
        scheduler=cluster.scheduler_address,
        log=lines.append,
        progress=False,
    )
    assert summary.graded == 2 and summary.errors == [] and "the Dask cluster (1 workers, 2 threads)" in str(summary)
    # a worker in this process keeps this process's temporary folder (only a worker process of its own gets one)
    assert tempfile.gettempdir() == temp and not dask_pool._janitor
    assert any("1 worker(s), 2 thread(s), 0 GPU(s); grading with the cpu profile" in line for line in lines)
    grade_paths(
        roomy_course,
        [subs],
        assignment=A,
        out=tmp_path / "here",
        workers=1,
        profile="cpu",
        log=lambda *_: None,
        progress=False,
    )
    for student in ("bob", "cyd"):
        got = json.loads((tmp_path / "out" / student / A / "results.json").read_text())
        here = json.loads((tmp_path / "here" / student / A / "results.json").read_text())
        assert comparable(got) == comparable(here)
    # Resumable the same way: nothing left to do.
    again = grade_paths(
        roomy_course,
        [subs],
        assignment=A,
        out=tmp_path / "out",
        scheduler=cluster.scheduler_address,
        log=lambda *_: None,
        progress=False,
    )
    assert (again.graded, again.skipped) == (0, 2)


def test_gpu_workers_take_the_training_tasks_with_the_gpu_profile(tiny_course, tmp_path, monkeypatch):
    """A cluster whose worker declares GPU=1: the batch picks the gpu profile (its thresholds), and tasks that ask for
    the GPU resource run there. (A broken notebook: no training, so no GPU needed to check the plumbing.)"""
    from distributed import LocalCluster

    from autograder.batch import grade_paths
    from autograder.config import load_course

    root = tmp_path / "course"
    shutil.copytree(tiny_course.root, root)
    thresholds = root / "reference_weights" / A / "thresholds.json"
    data = json.loads(thresholds.read_text())
    data["profiles"]["gpu"] = data["profiles"]["cpu"]  # as if calibrated on a GPU
    thresholds.write_text(json.dumps(data))
    subs = tmp_path / "submitted"
    (subs / "bob" / A).mkdir(parents=True)
    (subs / "bob" / A / f"{A}.ipynb").write_text("{ not a notebook")
    monkeypatch.delenv("AUTOGRADER_PROFILE", raising=False)
    lines = []
    with LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0", resources={"GPU": 1}
    ) as gpu_cluster:
        summary = grade_paths(
            load_course(root),
            [subs],
            assignment=A,
            out=tmp_path / "out",
            scheduler=gpu_cluster.scheduler_address,
            log=lines.append,
            progress=False,
        )
    assert summary.graded == 1 and any("1 GPU(s); grading with the gpu profile" in line for line in lines)
    result = json.loads((tmp_path / "out" / "bob" / A / "results.json").read_text())
    assert "not_json" in [f["kind"] for f in result["extra_data"]["findings"]]


def test_a_worker_with_another_kit_refuses_to_grade(tiny_course, grader):
    grader.prepare()  # cached in the course, so the archive carries it (as grade_paths does before sending)
    archive = course_archive(tiny_course, [A])
    expected = dict(graded_with(grader), kit="0.0.1+elsewhere")
    result = grade_remote(
        archive,
        hashlib.sha256(archive).hexdigest()[:16],
        A,
        grader.profile.name,
        grader.backend,
        expected,
        [],
        "x.ipynb",
        RELEASE.read_bytes(),
        "cyd",
    )
    [finding] = result.findings
    assert finding.kind == GRADER_ERROR and "another kit than the client" in finding.message
    assert result.score == 0 and result.checks == []


def test_course_archive_is_deterministic_and_has_what_a_worker_reads(tiny_course):
    import io
    import tarfile

    grader_files = course_archive(tiny_course, [A])
    assert course_archive(tiny_course, [A]) == grader_files
    names = tarfile.open(fileobj=io.BytesIO(grader_files)).getnames()
    assert "course.yaml" in names and f"source/{A}/{A}.ipynb" in names and f"release/{A}/{A}.ipynb" in names
    assert f"reference_weights/{A}/thresholds.json" in names
    assert not [n for n in names if n.startswith(("solutions/", "submitted/"))]


def test_training_tasks_ask_for_a_gpu_only_with_the_gpu_profile(grader):
    assert task_resources(grader, "gpu") == {"GPU": 1}
    assert task_resources(grader, "cpu") is None
    no_training = copy.copy(grader)
    kept = tuple(c for c in grader.spec.cells if c.grade_id != "reconstruction_quality")
    no_training.spec = type(grader.spec)(A, kept, grader.spec.sha256)
    assert task_resources(no_training, "gpu") is None


def test_gpu_profile_without_gpu_workers_is_a_clear_error(grader):
    pool = DaskPool.__new__(DaskPool)  # its connection is not needed to decide this
    pool.profile, pool.gpus = "gpu", 0
    with pytest.raises(KitError, match="no worker of the cluster declares a GPU.*--resources GPU=1"):
        pool.adapt(grader)


def test_unreachable_scheduler_is_a_clear_error(tiny_course, tmp_path):
    with pytest.raises(KitError, match="cannot reach the Dask scheduler"):
        DaskPool("tcp://127.0.0.1:9", course=tiny_course, timeout=2)


def test_a_killed_worker_process_s_scratch_folder_is_removed_by_its_janitor(tmp_path):
    """What `_own_scratch` sets up in a Dask worker process, in a process of its own that is then SIGKILLed: its
    folder (with a file still open in it) is removed, and the janitor ends."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import psutil

    folder = tmp_path / "autograder-worker-x"
    folder.mkdir()
    owner = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from autograder.batch.dask_pool import remove_when_gone; "
            "j = remove_when_gone(sys.argv[1]); f = open(sys.argv[1] + '/scratch.txt', 'w'); "
            "print(j.pid, flush=True); time.sleep(600)",
            str(folder),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    janitor = psutil.Process(int(owner.stdout.readline()))
    assert (folder / "scratch.txt").exists()
    time.sleep(0.5)
    assert folder.exists() and janitor.is_running()  # nothing happens while the owner lives
    os.kill(owner.pid, signal.SIGKILL)
    owner.wait()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (folder.exists() or janitor.is_running()):
        time.sleep(0.1)
        if janitor.is_running() and janitor.status() == psutil.STATUS_ZOMBIE:
            break
    assert not folder.exists()
    assert not janitor.is_running() or janitor.status() == psutil.STATUS_ZOMBIE
