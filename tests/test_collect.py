"""Collecting an LMS download into nbgrader's submitted/ layout: Canvas zips, plain names, folders, resubmissions."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from autograder.collect import collect
from autograder.errors import KitError

A = "autoencoder"
UTC = dt.UTC


def nb(tag: str) -> bytes:
    return json.dumps({"cells": [], "metadata": {"tag": tag}, "nbformat": 4, "nbformat_minor": 5}).encode()


def make_zip(path: Path, entries: list[tuple[str, bytes, tuple]]) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        for name, data, when in entries:
            z.writestr(zipfile.ZipInfo(name, date_time=when), data)
    return path


def stamp(root: Path, student: str) -> str:
    return (root / "submitted" / student / A / "timestamp.txt").read_text().strip()


def content(root: Path, student: str) -> bytes:
    return (root / "submitted" / student / A / f"{A}.ipynb").read_bytes()


CANVAS_ZIP = [
    ("lovelaceada_101_9001_autoencoder.ipynb", nb("ada"), (2026, 11, 20, 10, 0, 0)),
    # bob resubmitted: Canvas adds -1 to the original name; the later one wins whatever the order in the zip.
    ("babbagebob_LATE_102_9003_autoencoder-1.ipynb", nb("bob-2"), (2026, 11, 22, 9, 30, 0)),
    ("babbagebob_102_9002_autoencoder.ipynb", nb("bob-1"), (2026, 11, 19, 8, 0, 0)),
    ("hoppergrace_103_9004_my notebook (final).ipynb", nb("grace"), (2026, 11, 21, 23, 0, 0)),
    ("cyd.ipynb", nb("cyd"), (2026, 11, 20, 12, 0, 0)),
    ("hoppergrace_103_9005_report.pdf", b"%PDF-1.4", (2026, 11, 21, 23, 0, 0)),
    ("autoencoder.ipynb", nb("whose?"), (2026, 11, 20, 12, 0, 0)),
    ("__MACOSX/._cyd.ipynb", b"\0\0", (2026, 11, 20, 12, 0, 0)),
    ("Ünïcode name!.ipynb", nb("?"), (2026, 11, 20, 12, 0, 0)),
]


def test_canvas_zip_into_nbgrader_layout(tmp_path):
    archive = make_zip(tmp_path / "submissions.zip", CANVAS_ZIP)
    root = tmp_path / "course"
    report = collect(archive, root, A)

    students = sorted(p.name for p in (root / "submitted").iterdir())
    assert students == ["babbagebob", "cyd", "hoppergrace", "lovelaceada"]
    assert content(root, "babbagebob") == nb("bob-2")
    assert content(root, "hoppergrace") == nb("grace")
    assert stamp(root, "lovelaceada") == "2026-11-20 10:00:00.000000 UTC"
    assert stamp(root, "babbagebob") == "2026-11-22 09:30:00.000000 UTC"
    assert report.late == ["babbagebob"]
    assert [s.split(" ")[0] for s in report.collected] == students
    assert len(report.superseded) == 1 and "babbagebob_102_9002_autoencoder.ipynb" in report.superseded[0]
    unplaced = dict(report.unplaced)
    assert set(unplaced) == {"hoppergrace_103_9005_report.pdf", "autoencoder.ipynb", "Ünïcode name!.ipynb"}
    assert "not a notebook" in unplaced["hoppergrace_103_9005_report.pdf"]
    assert "does not say whose it is" in unplaced["autoencoder.ipynb"]
    text = str(report)
    assert "collected 4 submission(s)" in text and "could not place 3 file(s)" in text
    assert "marked late by Canvas:\n  - babbagebob" in text
    assert text.endswith(
        "run `nbgrader db student import students.csv` (columns id,first_name,last_name,email; the "
        "ids as collected here) after `autograder report`."
    )  # Canvas gives no names to show


def test_nbgrader_reads_the_timestamps(tmp_path):
    from nbgrader.utils import parse_utc

    collect(make_zip(tmp_path / "s.zip", CANVAS_ZIP[:1]), tmp_path, A)
    assert parse_utc(stamp(tmp_path, "lovelaceada")) == dt.datetime(2026, 11, 20, 10, 0)


def test_an_older_download_never_silently_replaces_a_newer_submission(tmp_path):
    root = tmp_path / "course"
    collect(make_zip(tmp_path / "new.zip", [("ada.ipynb", nb("new"), (2026, 11, 21, 10, 0, 0))]), root, A)
    old = make_zip(tmp_path / "old.zip", [("ada.ipynb", nb("old"), (2026, 11, 20, 10, 0, 0))])

    report = collect(old, root, A)
    assert content(root, "ada") == nb("new") and stamp(root, "ada").startswith("2026-11-21 10:00")
    assert len(report.kept) == 1 and "ada: collected 2026-11-21 10:00 UTC" in report.kept[0]
    assert "--force replaces it" in str(report)

    forced = collect(old, root, A, force=True)
    assert content(root, "ada") == nb("old") and stamp(root, "ada").startswith("2026-11-20 10:00")
    assert "it replaced a NEWER one, from 2026-11-21 10:00 UTC (--force)" in forced.replaced[0]

    newer = make_zip(tmp_path / "newer.zip", [("ada.ipynb", nb("newest"), (2026, 11, 23, 10, 0, 0))])
    report = collect(newer, root, A)
    assert content(root, "ada") == nb("newest") and "was from 2026-11-20 10:00 UTC" in report.replaced[0]
    assert collect(newer, root, A).unchanged and content(root, "ada") == nb("newest")


def test_folder_with_plain_names_and_student_folders(tmp_path):
    src = tmp_path / "download" / "wrapper"  # one folder around everything is looked through
    (src / "dee").mkdir(parents=True)
    (src / "ada.ipynb").write_bytes(nb("ada"))
    (src / "dee" / "whatever.ipynb").write_bytes(nb("dee"))
    (src / "notes.txt").write_text("hi")
    (src / ".DS_Store").write_bytes(b"\0")
    report = collect(tmp_path / "download", tmp_path / "course", A)
    assert content(tmp_path / "course", "ada") == nb("ada") and content(tmp_path / "course", "dee") == nb("dee")
    assert report.unplaced == [("wrapper/notes.txt", "not a notebook (.ipynb) or trained weights (.h5, .keras)")]
    assert "nbgrader db student import" not in str(report)  # no Canvas names: nothing to say about names


def test_two_canvas_users_with_one_name_get_their_ids(tmp_path):
    archive = make_zip(
        tmp_path / "s.zip",
        [
            ("smithjo_201_1_a.ipynb", nb("1"), (2026, 1, 1, 0, 0, 0)),
            ("smithjo_202_2_a.ipynb", nb("2"), (2026, 1, 1, 0, 0, 0)),
        ],
    )
    report = collect(archive, tmp_path, A)
    assert content(tmp_path, "smithjo_201") == nb("1") and content(tmp_path, "smithjo_202") == nb("2")
    assert len(report.renamed) == 2


def test_zip_extended_timestamp_is_used(tmp_path):
    """Info-ZIP's UTC extended timestamp (0x5455) wins over the DOS local time."""
    info = zipfile.ZipInfo("ada.ipynb", date_time=(2026, 1, 1, 0, 0, 0))
    when = int(dt.datetime(2026, 11, 20, 10, 0, 5, tzinfo=UTC).timestamp())
    info.extra = b"\x55\x54\x05\x00\x01" + when.to_bytes(4, "little")
    with zipfile.ZipFile(tmp_path / "s.zip", "w") as z:
        z.writestr(info, nb("ada"))
    collect(tmp_path / "s.zip", tmp_path / "course", A)
    assert stamp(tmp_path / "course", "ada") == "2026-11-20 10:00:05.000000 UTC"


def test_not_an_archive_is_a_clear_error(tmp_path):
    (tmp_path / "x.tar").write_bytes(b"nope")
    with pytest.raises(KitError, match="neither a zip archive"):
        collect(tmp_path / "x.tar", tmp_path, A)


def test_cli_collect(tmp_path):
    root = Path(__file__).resolve().parents[1]
    course = tmp_path / "course"
    course.mkdir()
    (course / "course.yaml").write_bytes((root / "course.yaml").read_bytes())
    archive = make_zip(tmp_path / "s.zip", CANVAS_ZIP)
    run = subprocess.run(
        [sys.executable, "-m", "autograder.cli", "collect", str(archive), "-a", A, "--course", str(course)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert "collected 4 submission(s) of 'autoencoder'" in run.stdout
    assert (course / "submitted" / "cyd" / A / f"{A}.ipynb").is_file()
    bad = subprocess.run(
        [sys.executable, "-m", "autograder.cli", "collect", str(archive), "-a", "nope", "--course", str(course)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 1 and "unknown assignment 'nope'" in bad.stderr
