"""Collecting: an LMS download (a zip, or a folder) into nbgrader's submitted/<student>/<assignment>/ layout.

Names it understands, in this order:

- Canvas: `lastfirst_12345_67890_<original name>.ipynb`, or `lastfirst_LATE_12345_67890_...` (12345 is the
  Canvas user id, 67890 the submission's); the student is `lastfirst` (with `_<user id>` added when two Canvas
  users share that name in one download);
- plain: `<student>.ipynb`;
- a folder per student: `<student>/<anything>.ipynb`.

The same names with a trained weights file (`.h5` or `.keras`, docs/student-weights.md) place it beside the
student's notebook under the name the grader looks for, `<a>.weights.h5` (or `<a>.keras`), by the same rules.

Canvas's names give no first and last names (`lastfirst` is both, lowercased and run together), so the students get
none: the report says how to import them into nbgrader's gradebook, where formgrader shows them.

A single folder that wraps everything (as some zips have) is looked through. Each placed notebook becomes
`submitted/<student>/<a>/<a>.ipynb` with nbgrader's `timestamp.txt`: the zip entry's time (its UTC extended
timestamp when the zip has one, else its DOS time read as UTC, which is what Canvas writes), or a file's
modification time. When a student has several notebooks, the newest is used and the others are listed. A
submission already collected is replaced only by a newer one, unless `force`; either way the report says so.
Everything that could not be placed (other files, names it cannot read, notebooks too large) is listed.
"""

from __future__ import annotations

import datetime as dt
import re
import struct
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from .checks.quality.weights_file import MAX_BYTES as MAX_WEIGHTS_BYTES
from .errors import KitError
from .files import CoursePaths, atomic_write
from .student_files import read_timestamp

MAX_BYTES = 100 * 1024 * 1024  # a notebook larger than this is listed, not unpacked
NOTEBOOK, WEIGHTS = "notebook", "weights"  # the two kinds of file a student hands in
WEIGHTS_SUFFIXES = (".h5", ".keras")
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S.%f %Z"  # nbgrader's Exchange.timestamp_format
CANVAS = re.compile(r"^(?P<name>[^_/]+)_(?:(?P<late>late)_)?(?P<user>\d+)_(?P<sub>\d+)_(?P<file>.+)$", re.IGNORECASE)
STUDENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$")
NAMES_HINT = (
    "Canvas's file names give no first and last names, so formgrader shows these students as 'None, None'; "
    "to show names, run `nbgrader db student import students.csv` (columns id,first_name,last_name,email; "
    "the ids as collected here) after `autograder report`."
)


@dataclass
class Entry:
    """One notebook of the download, with the student it belongs to."""

    name: str  # its path inside the download
    student: str
    time: dt.datetime  # aware, UTC
    read: Callable[[], bytes]
    canvas_user: str | None = None
    canvas_submission: int = 0
    late: bool = False
    kind: str = NOTEBOOK  # or WEIGHTS
    suffix: str = ".ipynb"  # the file's own (".h5" or ".keras" for weights)


@dataclass
class CollectReport:
    assignment: str
    collected: list[str] = field(default_factory=list)  # "student (from name)"
    replaced: list[str] = field(default_factory=list)  # an older one was there
    unchanged: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # a newer one was there: not replaced
    superseded: list[str] = field(default_factory=list)  # older notebooks of a student in this download
    unplaced: list[tuple[str, str]] = field(default_factory=list)  # (name, why)
    late: list[str] = field(default_factory=list)  # students Canvas marked late
    renamed: list[str] = field(default_factory=list)  # students whose Canvas name was shared
    weights: list[str] = field(default_factory=list)  # trained weights files placed beside a notebook
    canvas: bool = False  # some students were named by Canvas, which gives no first and last names

    def __str__(self) -> str:
        placed = len(self.collected) + len(self.replaced)
        lines = [
            f"collected {placed} submission(s) of '{self.assignment}' into submitted/ ({len(self.collected)} new,"
            f" {len(self.replaced)} replacing older ones); {len(self.unchanged)} unchanged."
        ]
        for title, items in (
            ("kept, because the one already collected is newer (--force replaces it)", self.kept),
            ("not used, a newer notebook of the same student is in the download", self.superseded),
            ("marked late by Canvas", self.late),
            ("named with their Canvas user id, because two Canvas users share the name", self.renamed),
            ("trained weights placed beside the notebook", self.weights),
        ):
            if items:
                lines.append(f"{title}:")
                lines += [f"  - {item}" for item in items]
        if self.unplaced:
            lines.append(f"could not place {len(self.unplaced)} file(s):")
            lines += [f"  - {name}: {why}" for name, why in self.unplaced]
        if self.canvas:
            lines.append(NAMES_HINT)
        return "\n".join(lines)


def collect(source: Path, course_root: Path, assignment: str, *, force: bool = False) -> CollectReport:
    """Place the notebooks of `source` (a zip or a folder) into `course_root`/submitted/<student>/<assignment>/."""
    report = CollectReport(assignment)
    files = list(_files(Path(source)))
    if not files:
        raise KitError(f"{source} holds no files.")
    prefix = _common_folder([name for name, _, _, _ in files])
    entries: list[Entry] = []
    for name, size, time, read in files:
        inner = name[len(prefix) :] if prefix else name
        entry = _entry(inner, size, time, read, assignment)
        if isinstance(entry, str):
            report.unplaced.append((name, entry))
        else:
            entry.name = name
            entries.append(entry)
    _disambiguate(entries, report)
    report.canvas = any(e.canvas_user for e in entries)
    newest: dict[tuple[str, str], Entry] = {}
    paths = CoursePaths(Path(course_root))
    for entry in sorted(entries, key=lambda e: (e.student, e.time, e.canvas_submission, e.name)):
        if (entry.student, entry.kind) in newest:
            older = newest[entry.student, entry.kind]
            report.superseded.append(
                f"{older.name} ({_show(older.time)}; {entry.student} has {entry.name}, {_show(entry.time)})"
            )
        newest[entry.student, entry.kind] = entry
    notebooks = {student for student, kind in newest if kind == NOTEBOOK}
    for (student, kind), entry in sorted(newest.items()):
        if kind == WEIGHTS:
            if student not in notebooks and not paths.submission_dir(student, assignment).is_dir():
                report.unplaced.append((entry.name, f"trained weights of {student}, who handed in no notebook"))
                continue
            _place_weights(entry, paths.submission_dir(student, assignment), assignment, force, report)
            continue
        _place(entry, paths.submission_dir(student, assignment), assignment, force, report)
        if entry.late:
            report.late.append(student)
    return report


def _files(source: Path):
    """(name, size, UTC time, read) for each file of a zip or a folder, skipping macOS and hidden litter."""
    if source.is_dir():
        for path in sorted(source.rglob("*")):
            rel = path.relative_to(source).as_posix()
            if path.is_file() and not _litter(rel):
                stat = path.stat()
                yield rel, stat.st_size, dt.datetime.fromtimestamp(stat.st_mtime, dt.UTC), path.read_bytes
    elif zipfile.is_zipfile(source):
        archive = zipfile.ZipFile(source)
        for info in archive.infolist():
            if not info.is_dir() and not _litter(info.filename):
                yield info.filename, info.file_size, _zip_time(info), (lambda i=info: archive.read(i))
    elif source.suffix == ".ipynb":
        stat = source.stat()
        yield source.name, stat.st_size, dt.datetime.fromtimestamp(stat.st_mtime, dt.UTC), source.read_bytes
    else:
        raise KitError(f"{source} is neither a zip archive, a folder nor a notebook.")


def _litter(name: str) -> bool:
    parts = PurePosixPath(name).parts
    return any(p.startswith(".") or p == "__MACOSX" for p in parts)


def _common_folder(names: list[str]) -> str:
    """'wrapper/' when every file is inside that one folder (and some are deeper), else ''."""
    tops = {n.split("/", 1)[0] for n in names}
    if len(tops) == 1 and all("/" in n for n in names):
        return tops.pop() + "/"
    return ""


def _zip_time(info: zipfile.ZipInfo) -> dt.datetime:
    """The entry's UTC time: the extended timestamp field (0x5455) when present, else the DOS time read as UTC."""
    extra = info.extra
    while len(extra) >= 4:
        tag, size = struct.unpack("<HH", extra[:4])
        body = extra[4 : 4 + size]
        if tag == 0x5455 and len(body) >= 5 and body[0] & 1:
            return dt.datetime.fromtimestamp(struct.unpack("<i", body[1:5])[0], dt.UTC)
        extra = extra[4 + size :]
    return dt.datetime(*info.date_time, tzinfo=dt.UTC)


def _entry(name: str, size: int, time: dt.datetime, read, assignment: str) -> Entry | str:
    """The student a file belongs to, or why it cannot be placed."""
    path = PurePosixPath(name)
    suffix = path.suffix.lower()
    kind = NOTEBOOK if suffix == ".ipynb" else WEIGHTS if suffix in WEIGHTS_SUFFIXES else None
    if kind is None:
        return "not a notebook (.ipynb) or trained weights (.h5, .keras)"
    limit, what = (MAX_BYTES, "a notebook") if kind == NOTEBOOK else (MAX_WEIGHTS_BYTES, "a weights file")
    if size > limit:
        return f"{size / 2**20:.0f} MB, over the {limit // 2**20} MB limit for {what}"
    canvas = CANVAS.match(path.name)
    if canvas:
        student = re.sub(r"[^a-z0-9.-]", "", canvas["name"].lower())
        if not student:
            return "a Canvas name without a student name in it"
        return Entry(name, student, time, read, canvas["user"], int(canvas["sub"]), bool(canvas["late"]), kind, suffix)
    if len(path.parts) == 1:
        student = path.name[: -len(".weights.h5")] if path.name.lower().endswith(".weights.h5") else path.stem
        if student == assignment or student.lower().startswith("untitled"):
            return f"named '{path.name}', which does not say whose it is (name it <student>{suffix})"
    elif len(path.parts) == 2:
        student = path.parts[0]
    else:
        return "too deep to tell the student (expected <student>.ipynb or <student>/<notebook>.ipynb)"
    if not STUDENT.match(student):
        return f"'{student}' is not a usable student id (letters, digits, . _ - @)"
    return Entry(name, student, time, read, kind=kind, suffix=suffix)


def _disambiguate(entries: list[Entry], report: CollectReport) -> None:
    """Two Canvas users with the same 'lastfirst' get their user id added to the student id."""
    users: dict[str, set[str]] = {}
    for e in entries:
        if e.canvas_user:
            users.setdefault(e.student, set()).add(e.canvas_user)
    for e in entries:
        if e.canvas_user and len(users[e.student]) > 1:
            report.renamed.append(f"{e.student}_{e.canvas_user} ({e.name})")
            e.student = f"{e.student}_{e.canvas_user}"


def _place(entry: Entry, folder: Path, assignment: str, force: bool, report: CollectReport) -> None:
    target = folder / f"{assignment}.ipynb"
    stamp = folder / "timestamp.txt"
    label = f"{entry.student} ({entry.name}, {_show(entry.time)})"
    content = entry.read()
    before, _ = read_timestamp(stamp)  # an unreadable timestamp counts as none
    if target.is_file():
        if target.read_bytes() == content:
            report.unchanged.append(label)
            return
        if before is not None and before > entry.time and not force:
            report.kept.append(f"{entry.student}: collected {_show(before)}, {entry.name} is from {_show(entry.time)}")
            return
        if before is None:
            note = "the one collected had no timestamp.txt"
        elif before > entry.time:
            note = f"it replaced a NEWER one, from {_show(before)} (--force)"
        else:
            note = f"the one collected was from {_show(before)}"
        report.replaced.append(f"{label}: {note}")
    else:
        report.collected.append(label)
    atomic_write(target, content)
    atomic_write(stamp, entry.time.strftime(TIMESTAMP_FORMAT) + "\n")


def _place_weights(entry: Entry, folder: Path, assignment: str, force: bool, report: CollectReport) -> None:
    """A trained weights file beside the student's notebook, under the name the grader looks for; the other name
    (a .keras file replacing a .weights.h5 one, or the reverse) is removed, so that one file stands."""
    name = f"{assignment}.keras" if entry.suffix == ".keras" else f"{assignment}.weights.h5"
    other = folder / (f"{assignment}.weights.h5" if entry.suffix == ".keras" else f"{assignment}.keras")
    target, label = folder / name, f"{entry.student} ({entry.name} -> {name}, {_show(entry.time)})"
    content = entry.read()
    if target.is_file() and target.read_bytes() == content:
        report.unchanged.append(label)
        return
    before, _ = read_timestamp(folder / "timestamp.txt")
    if target.is_file() and before is not None and before > entry.time and not force:
        report.kept.append(f"{entry.student}: weights collected {_show(before)}, {entry.name} is {_show(entry.time)}")
        return
    atomic_write(target, content)
    if other.is_file():
        other.unlink()
    report.weights.append(label)


def _show(time: dt.datetime) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC")
