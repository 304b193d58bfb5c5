"""The file layer: atomic writes that concurrent writers cannot break, the cache folder, the thresholds reader."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest

from autograder.errors import KitError
from autograder.files import CoursePaths, atomic_path, atomic_write, cache_dir, profile_thresholds, read_thresholds


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
