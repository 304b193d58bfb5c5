"""The file layer: atomic writes that concurrent writers cannot break, the cache folder, the course's paths, the
thresholds reader."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
import threading

import numpy as np
import pytest

from autograder.errors import KitError
from autograder.files import (
    PUBLISHED_PROFILE,
    CoursePaths,
    atomic_path,
    atomic_write,
    cache_dir,
    profile_thresholds,
    read_thresholds,
)
from autograder.runner import PLAN, write_plan


def test_atomic_write_replaces_whole_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "sub" / "out.json"
    atomic_write(target, "first")
    atomic_write(target, b"second")
    assert target.read_text() == "second"
    assert [p.name for p in target.parent.iterdir()] == ["out.json"]


def test_writers_of_the_same_file_at_once_all_succeed(tmp_path):
    """Each writer has its own temporary name: the last rename wins, none fails (a fixed name made one fail)."""
    target = tmp_path / "shared.npz"
    barrier, errors = threading.Barrier(8), []

    def write(i: int) -> None:
        try:
            with atomic_path(target, suffix=".npz") as tmp:
                np.savez(tmp, x=np.full(1000, i))
                barrier.wait(timeout=10)  # every writer holds an unfinished file at the same moment
        except Exception as err:  # noqa: BLE001
            errors.append(err)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with np.load(target) as npz:
        assert len(set(npz["x"].tolist())) == 1  # one writer's whole array, not a mix
    assert [p.name for p in tmp_path.iterdir()] == ["shared.npz"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "keep.txt"
    atomic_write(target, "old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("disk full")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o077])
def test_written_files_get_the_mode_the_umask_gives_any_new_file(tmp_path, umask):
    """mkstemp's 0600 made thresholds.json, manifests and reports unreadable to a TA's account on a shared course
    folder; the kit's files now get what `open` would give them under the same umask."""
    code = (
        "import os, sys\n"
        f"os.umask({umask})\n"
        "from autograder.files import atomic_write\n"
        "atomic_write(sys.argv[1] + '/kit.json', '{}')\n"
        "open(sys.argv[1] + '/plain.json', 'w').close()\n"
    )
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=True)
    kit, plain = (stat.S_IMODE((tmp_path / name).stat().st_mode) for name in ("kit.json", "plain.json"))
    assert kit == plain == 0o666 & ~umask


def test_plans_written_at_once_into_one_folder_all_land_whole(tmp_path):
    """The runner's plan.json went through one fixed temporary name, so two writers could rename each other's."""
    barrier, errors = threading.Barrier(8), []

    def write(i: int) -> None:
        try:
            barrier.wait(timeout=10)
            write_plan(tmp_path, {"writer": i, "items": list(range(10_000))})
        except Exception as err:  # noqa: BLE001
            errors.append(err)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert json.loads((tmp_path / PLAN).read_text())["items"] == list(range(10_000))
    assert [p.name for p in tmp_path.iterdir()] == [PLAN]


def test_course_paths_hide_from_workers_everything_but_the_release(tmp_path):
    paths = CoursePaths(tmp_path)
    private = paths.private()
    hidden = {
        "source notebook": paths.source_notebook("a"),
        "mistakes": paths.mistakes_file("a"),
        "variants": paths.variants_file("a"),
        "solution": paths.solution_notebook("a"),
        "reference weights": paths.reference_weights("a"),
        "thresholds": paths.thresholds_file("a"),
        "gpu models": paths.models_dir("a", "gpu"),
        "grading cache": paths.grading_cache("a"),
        "submission": paths.submission_dir("ada", "a"),
        "results": paths.results_file("ada", "a"),
        "feedback": paths.feedback_dir("ada", "a"),
        "reports": paths.reports,
        "gradebook": paths.gradebook,
    }
    for what, path in hidden.items():
        assert path.is_relative_to(tmp_path)
        assert any(path.is_relative_to(p) for p in private), f"the {what} ({path}) is readable by a worker"
    for public in (paths.release_notebook("a"), paths.course_file):
        assert not any(public.is_relative_to(p) for p in private), f"{public} is hidden from the workers"
    assert paths.source_notebook("a") == tmp_path / "source" / "a" / "a.ipynb"
    assert paths.release_notebook("a") == tmp_path / "release" / "a" / "a.ipynb"
    # The notebook loads the published weights by this name, from reference_weights/ and beside the release; a
    # student's own trained weights are a.weights.h5 (docs/student-weights.md), never mixed up with them.
    assert paths.reference_weights("a").name == paths.reference_weights_name("a") == "a.reference.weights.h5"
    assert paths.models_dir("a", PUBLISHED_PROFILE) == paths.reference_dir("a") != paths.models_dir("a", "gpu")


def test_cache_dir_order(tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOENCODER_KIT_CACHE", str(tmp_path / "env"))
    assert cache_dir() == tmp_path / "env" and (tmp_path / "env").is_dir()
    assert cache_dir(tmp_path / "override") == tmp_path / "override"


def test_thresholds_reader(tmp_path):
    paths = CoursePaths(tmp_path)
    assert read_thresholds(paths, "a") == {}
    with pytest.raises(KitError, match="autograder calibrate a --profile cpu"):
        profile_thresholds(paths, "a", "cpu")
    paths.reference_dir("a").mkdir(parents=True)
    paths.thresholds_file("a").write_text("{broken")
    with pytest.raises(KitError, match="cannot be read"):
        read_thresholds(paths, "a")
    paths.thresholds_file("a").write_text(json.dumps({"profiles": {"cpu": {"metrics": {"m": {"threshold": 1}}}}}))
    assert profile_thresholds(paths, "a", "cpu") == {"metrics": {"m": {"threshold": 1}}}
    with pytest.raises(KitError, match="no 'gpu' profile"):
        profile_thresholds(paths, "a", "gpu")
