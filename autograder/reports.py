"""The TA's reports: from the graded submissions' results.json to CSVs, a class summary, feedback and the gradebook.

`write_reports(course_root)` reads `autograded/<student>/<assignment>/results.json` (Gradescope's schema, written by
the grader) and writes, for each assignment:

- `reports/<a>/class.csv`: one row per student (sorted), one column per check (in the order of the checks), one per
  question (the grade_id's subtotal), then total, max_score, percent, late and errors (the findings' kinds).
- `reports/<a>/canvas.csv`: Canvas's gradebook import format. Canvas reads the columns `Student, ID, SIS User ID,
  SIS Login ID, Section`, then one column per assignment. We fill `Student` and `SIS Login ID` with the nbgrader
  student id and leave `ID`, `SIS User ID` and `Section` empty (Canvas matches a row by whichever it can). The
  assignment's column is headed by its plain name, and a second row `Points Possible` gives its points: in Canvas's
  exports a number in parentheses after the name, `Name (12345)`, is Canvas's internal assignment id, so a header
  `autoencoder (10)` would be read as a link to assignment id 10, not as 10 points. To update an assignment that
  already exists in Canvas, rename the header to the one in Canvas's own export. An unreadable result is left blank,
  which Canvas reads as "no change", never as a zero.
- `reports/<a>/summary.html`: the class at a glance, with its figures embedded as base64 PNGs (one file that opens
  anywhere) and also written beside it: score distribution, pass rate per check, each quality metric against its
  threshold and failure level (from `reference_weights/<a>/thresholds.json` when it has them), the most frequent
  diagnosed mistakes, and a table of findings per student.
- `feedback/<student>/<a>/<a>.html` under the course root, via `render_feedback`: where nbgrader's `generate_feedback`
  puts a notebook's feedback, so `nbgrader release_feedback` delivers it. The submission's `timestamp.txt` and
  `submission_secret.txt` (nbgrader's exchange writes them when a student submits) are copied beside it, because
  release_feedback names the released page by a hash of that secret.
- the scores in nbgrader's `gradebook.db` (`write_gradebook`), so `nbgrader export` and formgrader show them.

A results.json that cannot be read (not JSON, missing keys) becomes a row with the error `malformed_results`, never an
exception; a problem with the gradebook is a logged warning (and a line in the summary), never an exception.
"""

from __future__ import annotations

import base64
import csv
import functools
import io
import json
import logging
import math
import re
import statistics
import textwrap
import warnings
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from .errors import KitError
from .feedback import check_view, environment, format_number, render_feedback
from .student_files import as_utc, read_small_file, read_timestamp

log = logging.getLogger(__name__)

MALFORMED = "malformed_results"
SECRET = "submission_secret.txt"  # release_feedback names a released page by a hash of it
EXCHANGE_FILES = ("timestamp.txt", SECRET)  # nbgrader submit writes both
CANVAS_IDENTITY = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
# Colours of the summary's figures: the same three states as the feedback page.
RED, AMBER, GREEN, GREY = "#cf222e", "#d4a72c", "#2da44e", "#8c959f"


@dataclass
class Submission:
    """One student's graded submission of one assignment, as the reports see it."""

    student: str
    result: dict | None  # the parsed results.json; None when it could not be read
    error: str | None = None  # why it could not be read
    late: bool | None = None  # None when the submission time or the due date is unknown
    notes: list[str] = field(default_factory=list)  # problems met while reading, e.g. an unreadable timestamp

    @functools.cached_property
    def checks(self) -> list[dict]:
        return [check_view(t) for t in self.result["tests"]] if self.result else []

    @property
    def findings(self) -> list[dict]:
        if self.result is None:
            return [{"kind": MALFORMED, "message": self.error or "results.json could not be read", "grade_id": None}]
        found = (self.result.get("extra_data") or {}).get("findings") or []
        return [
            {
                "kind": str(f.get("kind") or "finding"),
                "message": str(f.get("message") or ""),
                "grade_id": f.get("grade_id"),
            }
            for f in found
            if isinstance(f, Mapping)
        ]

    @property
    def score(self) -> float | None:
        return float(self.result["score"]) if self.result else None

    @property
    def max_score(self) -> float | None:
        return float(self.result["max_score"]) if self.result else None


def write_reports(
    course_root: Path,
    *,
    assignments: Sequence[str] | None = None,
    out_dir: Path | None = None,
    due: Mapping[str, datetime | None] = {},
) -> list[Path]:
    """Write every report of each assignment found under `autograded/`; returns the files written.

    `due` maps an assignment to its due date (a naive date is taken as UTC, as nbgrader does); a submission is late
    when its `timestamp.txt` (nbgrader's, in `submitted/` or `autograded/`) is after it.
    """
    course_root = Path(course_root)
    out_dir = Path(out_dir) if out_dir is not None else course_root / "reports"
    found = _find_assignments(course_root)
    if assignments is None:
        if not found:
            raise KitError(
                f"No results to report on: {course_root / 'autograded'} holds no <student>/<assignment>/results.json."
                " Run `autograder grade` first."
            )
        assignments = found
    missing = [a for a in assignments if a not in found]
    if missing:
        raise KitError(
            f"No graded submissions of {', '.join(map(repr, missing))} under {course_root / 'autograded'}"
            f" (found: {', '.join(found) or 'none'}). Check the assignment name, or run `autograder grade` first."
        )

    written: list[Path] = []
    for assignment in assignments:
        subs = collect(course_root, assignment, due=due.get(assignment))
        folder = out_dir / assignment
        folder.mkdir(parents=True, exist_ok=True)
        written.append(_write_text(folder / "class.csv", class_csv(subs)))
        written.append(_write_text(folder / "canvas.csv", canvas_csv(assignment, subs)))
        results = {s.student: s.result for s in subs if s.result is not None}
        count, gradebook_notes = _write_gradebook(course_root, assignment, results)
        for note in gradebook_notes:
            log.warning(note)
        gradebook = {"written": count, "notes": gradebook_notes}
        thresholds = load_thresholds(course_root, assignment)
        written += _write_summary(folder, assignment, subs, thresholds, gradebook)
        pages = {sub.student: _write_feedback(course_root, assignment, sub) for sub in subs}
        written += [path for paths in pages.values() for path in paths]
        no_secret = sorted(s for s, paths in pages.items() if not any(p.name == SECRET for p in paths))
        if no_secret and len(no_secret) < len(pages):  # all missing: an LMS class, whose pages go back through the LMS
            log.warning(f"{assignment}: nbgrader release_feedback stops at the first student without a "
                        f"submission_secret.txt (not submitted through nbgrader's exchange): {', '.join(no_secret)}. "
                        f"Release the others with --CourseDirectory.student_id_exclude={','.join(no_secret)} and "
                        "return these pages another way.")
    return written


def _write_feedback(course_root: Path, assignment: str, sub: Submission) -> list[Path]:
    """The student's page in nbgrader's feedback folder, with the exchange's files that release_feedback reads."""
    folder = course_root / "feedback" / sub.student / assignment
    page = render_feedback(sub.result if sub.result is not None else _unreadable_result(assignment, sub))
    written = [_write_text(folder / f"{assignment}.html", page)]
    for name in EXCHANGE_FILES:
        data = read_small_file(course_root / "submitted" / sub.student / assignment / name)
        if data is not None:
            written.append(_write_bytes(folder / name, data))
    return written


# ---- reading -------------------------------------------------------------------------------------------------------


def load_result(path: Path) -> tuple[dict | None, str | None]:
    """(the parsed results.json, None), or (None, why it cannot be used): never raises for a bad file."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        return None, f"results.json could not be read: {exc.__class__.__name__}"
    except json.JSONDecodeError as exc:
        return None, f"results.json is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
    problem = validate_result(data)
    return (None, problem) if problem else (data, None)


def validate_result(data: Any) -> str | None:
    """None when `data` has what the reports need (Gradescope's keys, with numbers where numbers belong), else why."""
    if not isinstance(data, Mapping):
        return f"results.json holds a {type(data).__name__}, not an object"
    missing = [k for k in ("score", "max_score", "tests") if k not in data]
    if missing:
        return f"results.json is missing the key{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing))}"
    for key in ("score", "max_score"):
        if not _is_number(data[key]):
            return f"results.json's {key!r} is not a number"
    if not isinstance(data["tests"], list):
        return "results.json's 'tests' is not a list"
    for i, test in enumerate(data["tests"]):
        if not isinstance(test, Mapping):
            return f"results.json's tests[{i}] is not an object"
        for key in ("name", "score", "max_score"):
            if key not in test:
                return f"results.json's tests[{i}] is missing the key {key!r}"
        if not isinstance(test["name"], str) or not (_is_number(test["score"]) and _is_number(test["max_score"])):
            return f"results.json's tests[{i}] has a name that is not text or a score that is not a number"
    return None


def collect(course_root: Path, assignment: str, *, due: datetime | None = None) -> list[Submission]:
    """Every graded submission of `assignment`, sorted by student id."""
    subs = []
    for path in sorted((Path(course_root) / "autograded").glob(f"*/{assignment}/results.json")):
        student = path.parent.parent.name
        result, error = load_result(path)
        sub = Submission(student, result, error)
        stamp = _submission_time(course_root, student, assignment, sub.notes)
        if stamp is not None and due is not None:
            sub.late = stamp > as_utc(due)
        subs.append(sub)
    return sorted(subs, key=lambda s: s.student)


def load_thresholds(course_root: Path, assignment: str) -> dict[str, list[tuple[str, dict]]]:
    """metric -> [(profile, {"threshold", "fail", "higher_is_better"})] from thresholds.json; {} when it has none."""
    path = Path(course_root) / "reference_weights" / assignment / "thresholds.json"
    try:
        profiles = json.loads(path.read_text(encoding="utf-8"))["profiles"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    out: dict[str, list[tuple[str, dict]]] = {}
    for profile, spec in sorted(profiles.items()) if isinstance(profiles, Mapping) else []:
        metrics = spec.get("metrics") if isinstance(spec, Mapping) else None
        for metric, rule in (metrics or {}).items():
            if isinstance(rule, Mapping) and _is_number(rule.get("threshold")):
                out.setdefault(str(metric), []).append((str(profile), dict(rule)))
    return out


def _find_assignments(course_root: Path) -> list[str]:
    return sorted({p.parent.name for p in (Path(course_root) / "autograded").glob("*/*/results.json")})


def _submission_time(course_root: Path, student: str, assignment: str, notes: list[str]) -> datetime | None:
    for folder in ("submitted", "autograded"):
        time, bad = read_timestamp(Path(course_root) / folder / student / assignment / "timestamp.txt")
        if bad is not None:
            notes.append(f"{folder}/{student}/{assignment}/timestamp.txt is not a time: {bad[:40]!r}")
        if time is not None or bad is not None:
            return time
    return None


# ---- CSVs ----------------------------------------------------------------------------------------------------------


def class_csv(subs: Sequence[Submission]) -> str:
    """The class table: student, checks, question subtotals, total, max_score, percent, late, errors."""
    checks = _ordered_union([c["name"] for c in s.checks] for s in subs)
    questions = _ordered_union([c["grade_id"] for c in s.checks] for s in subs)
    rows = [["student", *checks, *questions, "total", "max_score", "percent", "late", "errors"]]
    for sub in subs:
        by_name = {c["name"]: c["score"] for c in sub.checks}
        by_question: dict[str, float] = {}
        for c in sub.checks:
            by_question[c["grade_id"]] = by_question.get(c["grade_id"], 0.0) + (c["score"] or 0.0)
        percent = 100 * sub.score / sub.max_score if sub.result and sub.max_score else None
        kinds = list(dict.fromkeys(f["kind"] for f in sub.findings))
        if sub.notes:
            kinds.append("bad_timestamp")
        rows.append(
            [
                sub.student,
                *(_cell(by_name.get(name)) for name in checks),
                *(_cell(by_question.get(q)) for q in questions),
                _cell(sub.score),
                _cell(sub.max_score),
                _cell(percent, 2),
                {True: "yes", False: "no", None: ""}[sub.late],
                ";".join(kinds),
            ]
        )
    return _csv(rows)


def canvas_csv(assignment: str, subs: Sequence[Submission]) -> str:
    """Canvas's gradebook import: identity columns, the assignment's column, a Points Possible row (see the top)."""
    maxima = Counter(s.max_score for s in subs if s.result is not None)
    points = maxima.most_common(1)[0][0] if maxima else None
    rows = [CANVAS_IDENTITY + [assignment], ["Points Possible", "", "", "", "", _cell(points)]]
    rows += [[s.student, "", "", s.student, "", _cell(s.score)] for s in subs]
    return _csv(rows)


def _ordered_union(sequences) -> list[str]:
    """Names in the order they appear: a name missing from earlier lists goes right after its predecessor."""
    out: list[str] = []
    for names in sequences:
        previous = None
        for name in names:
            if name not in out:
                out.insert(out.index(previous) + 1 if previous is not None else 0, name)
            previous = name
    return out


def _cell(value: float | None, digits: int = 4) -> str:
    return "" if value is None else format_number(value, digits)


def _csv(rows: list[list[str]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


# ---- gradebook -----------------------------------------------------------------------------------------------------


def write_gradebook(course_root: Path, assignment: str, results: Mapping[str, dict]) -> int:
    """Put each student's scores into nbgrader's `gradebook.db`; returns how many students were written.

    Creates the student and the submission when missing, and sets each code grade cell's `auto_score` to the sum of
    the checks with that grade_id (0 when none), clipped to the cell's points; manually graded (markdown) cells and
    manual scores are left alone, and a grade with a manual score stays marked for review, as nbgrader does. When the
    database, the assignment or its notebook (`<a>.ipynb`) is missing, nothing is written and a warning says why.
    """
    count, notes = _write_gradebook(course_root, assignment, results)
    for note in notes:
        log.warning(note)
    return count


def _write_gradebook(course_root: Path, assignment: str, results: Mapping[str, dict]) -> tuple[int, list[str]]:
    db = Path(course_root) / "gradebook.db"
    fix = f"run `nbgrader generate_assignment {assignment}` in {course_root} first"
    if not db.is_file():
        return 0, [f"No gradebook: {db} does not exist, so the scores of {assignment} are not in it ({fix})."]
    from nbgrader.api import Gradebook, MissingEntry

    notes: list[str] = []
    written = 0
    try:
        # course_id "" is what nbgrader's own commands use by default: it adds no course row.
        with warnings.catch_warnings(), Gradebook(f"sqlite:///{db.resolve()}", course_id="") as gb:
            # nbgrader's add_submission sets off SQLAlchemy's harmless "not in session" autoflush warnings.
            warnings.filterwarnings("ignore", message=".*not in session.*")
            try:
                gb.find_assignment(assignment)
                notebook = gb.find_notebook(assignment, assignment)
            except MissingEntry as exc:
                return 0, [f"Gradebook skipped for {assignment}: {exc} in {db} ({fix})."]
            cells = {c.name: c for c in notebook.grade_cells if c.cell_type == "code"}
            mentioned: set[str] = set()
            for student in sorted(results):
                problem = validate_result(results[student])
                if problem:
                    notes.append(f"Gradebook: {student} skipped, {problem}.")
                    continue
                sums: dict[str, float] = {}
                for test in results[student]["tests"]:
                    c = check_view(test)
                    sums[c["grade_id"]] = sums.get(c["grade_id"], 0.0) + (c["score"] or 0.0)
                mentioned |= set(sums)
                gb.update_or_create_student(student)
                try:
                    gb.find_submission(assignment, student)
                except MissingEntry:
                    gb.add_submission(assignment, student)
                for name, cell in sorted(cells.items()):
                    try:
                        grade = gb.find_grade(name, assignment, assignment, student)
                    except MissingEntry:
                        notes.append(f"Gradebook: {student}'s submission has no grade for cell {name!r}.")
                        continue
                    score = max(0.0, sums.get(name, 0.0))
                    if score > cell.max_score + 1e-9:
                        notes.append(
                            f"Gradebook: {student} scored {format_number(score)} on {name!r}, more than its"
                            f" {format_number(cell.max_score)} points in the gradebook; clipped."
                        )
                        score = float(cell.max_score)
                    grade.auto_score = round(score, 4)
                    grade.needs_manual_grade = grade.manual_score is not None
                gb.db.commit()
                written += 1
            for name in sorted(mentioned - set(cells)):
                notes.append(
                    f"Gradebook: checks of {name!r} have no code grade cell in {assignment}.ipynb; not written."
                )
            for name in sorted(set(cells) - mentioned):
                notes.append(f"Gradebook: grade cell {name!r} has no checks in any result; its auto_score is 0.")
    except Exception as exc:  # a locked or corrupt database must not stop the other reports
        notes.append(f"Gradebook: writing {db} failed after {written} students: {exc.__class__.__name__}: {exc}")
    return written, notes


# ---- summary -------------------------------------------------------------------------------------------------------


def _write_summary(folder: Path, assignment: str, subs, thresholds, gradebook) -> list[Path]:
    view, figures = summary_view(assignment, subs, thresholds, gradebook)
    paths = []
    for fig in figures:
        path = folder / fig["file"]
        path.write_bytes(fig["png"])
        paths.append(path)
    html = environment().get_template("summary.html").render(**view)
    return [_write_text(folder / "summary.html", html), *paths]


def summary_view(
    assignment: str, subs: Sequence[Submission], thresholds: Mapping, gradebook: Mapping
) -> tuple[dict, list[dict]]:
    """The values of summary.html and its figures (each with its PNG bytes)."""
    graded = [s for s in subs if s.result is not None]
    scores = [s.score for s in graded]
    maxima = Counter(s.max_score for s in graded)
    max_score = maxima.most_common(1)[0][0] if maxima else None

    # Per check: how many of the students who have it passed it.
    order = _ordered_union([c["name"] for c in s.checks] for s in graded)
    stats = {name: {"name": name, "passed": 0, "n": 0, "hidden": False} for name in order}
    questions: dict[str, dict] = {}
    for sub in graded:
        for c in sub.checks:
            st = stats[c["name"]]
            st["n"] += 1
            st["passed"] += c["state"] == "passed"
            st["hidden"] |= c["hidden"]
        totals: dict[str, list[float]] = {}
        for c in sub.checks:
            t = totals.setdefault(c["grade_id"], [0.0, 0.0])
            t[0] += c["score"] or 0.0
            t[1] += c["max_score"] or 0.0
        for gid, (got, of) in totals.items():
            q = questions.setdefault(gid, {"grade_id": gid, "scores": [], "max_score": of})
            q["scores"].append(got)
    checks = [dict(st, rate=st["passed"] / st["n"]) for st in stats.values() if st["n"]]
    ranked = sorted(checks, key=lambda c: (c["rate"], order.index(c["name"])))
    struggles = [c for c in ranked if c["rate"] < 1][:3]
    question_rows = []
    for q in questions.values():
        mean = statistics.fmean(q["scores"])
        question_rows.append(dict(q, mean=mean, rate=mean / q["max_score"] if q["max_score"] else None))

    figures = []
    if scores:
        figures.append(_figure("score-distribution", "Score distribution", _plot_scores(scores, max_score),
                               "Total score of each graded submission; dashed: mean, dotted: median."))
    if checks:
        figures.append(_figure("pass-rate", "Pass rate per check, worst first", _plot_pass_rates(ranked),
                               "Share of students who passed each check (red below 50%, amber below 80%)."))
    metrics = _metric_values(graded)
    for metric, values in metrics.items():
        rules = _pick_profiles(thresholds.get(metric, []), graded)
        what = "with its threshold (full credit) and failure level (no credit)" if rules else "(no threshold known)"
        png = _plot_metric(metric, values, rules)
        caption = f"{metric} of each student's trained model, {what}."
        figures.append(_figure(f"metric-{_slug(metric)}", f"Quality metric: {metric}", png, caption))
    diagnoses = Counter()
    for sub in graded:
        diagnoses.update({c["diagnosis"] for c in sub.checks if c["diagnosis"]})
    if diagnoses:
        common = sorted(diagnoses.items(), key=lambda kv: (-kv[1], kv[0]))[:12]
        figures.append(_figure("diagnoses", "Most frequent diagnosed mistakes", _plot_diagnoses(common, len(graded)),
                               "Number of students whose submission showed each known mistake."))

    findings = [
        {"student": s.student, "kind": f["kind"], "message": f["message"], "grade_id": f["grade_id"]}
        for s in subs
        for f in s.findings
    ] + [{"student": s.student, "kind": "bad_timestamp", "message": n, "grade_id": None} for s in subs for n in s.notes]
    view = {
        "assignment": assignment,
        "n_students": len(subs),
        "n_graded": len(graded),
        "max_score": max_score,
        "mean": statistics.fmean(scores) if scores else None,
        "median": statistics.median(scores) if scores else None,
        "low": min(scores) if scores else None,
        "high": max(scores) if scores else None,
        "late": [s.student for s in subs if s.late],
        "struggles": struggles,
        "questions": question_rows,
        "checks": [dict(c, rate_text=f"{100 * c['rate']:.0f}%") for c in ranked],
        "figures": [{k: v for k, v in f.items() if k != "png"} for f in figures],
        "findings": findings,
        "n_with_findings": len({f["student"] for f in findings}),
        "diagnoses": sorted(diagnoses.items(), key=lambda kv: (-kv[1], kv[0])),
        "gradebook": gradebook,
    }
    return view, figures


def _metric_values(graded: Sequence[Submission]) -> dict[str, list[tuple[str, float]]]:
    out: dict[str, list[tuple[str, float]]] = {}
    for sub in graded:
        for c in sub.checks:
            for name, value in c["metrics"]:
                if value is not None:
                    out.setdefault(name, []).append((sub.student, value))
    return out


def _pick_profiles(rules: list[tuple[str, dict]], graded: Sequence[Submission]) -> list[tuple[str, dict]]:
    """The thresholds of the budget profile(s) the results name, else of every profile that has the metric."""
    named = set()
    for sub in graded:
        extra = sub.result.get("extra_data") or {}
        if isinstance(extra, Mapping) and extra.get("profile"):
            named.add(str(extra["profile"]))
        for test in sub.result["tests"]:
            ed = test.get("extra_data")
            if isinstance(ed, Mapping) and ed.get("profile"):
                named.add(str(ed["profile"]))
    chosen = [r for r in rules if r[0] in named]
    return chosen or rules


# ---- figures (matplotlib's object API on the Agg canvas: no pyplot, no global state) -----------------------------


def _figure(key: str, title: str, png: bytes, caption: str) -> dict:
    return {"id": f"fig-{key}", "title": title, "caption": caption, "file": f"{key}.png", "png": png,
            "b64": base64.b64encode(png).decode("ascii")}


def _new_figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})  # no version stamp: same input, same bytes
    return buffer.getvalue()


def _style(ax) -> None:
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def _plot_scores(scores: list[float], max_score: float | None) -> bytes:
    import numpy as np
    from matplotlib.ticker import MaxNLocator

    top = max_score if max_score and max_score >= max(scores) else max(max(scores), 1.0)
    fig = _new_figure(10, 3.2)
    ax = fig.add_subplot()
    ax.hist(scores, bins=np.linspace(0, top, 11), color="#54aeff", edgecolor="white")
    mean, median = statistics.fmean(scores), statistics.median(scores)
    ax.axvline(mean, color="#0969da", linestyle="--", linewidth=1.5, label=f"mean {format_number(mean, 2)}")
    ax.axvline(median, color="#1f2328", linestyle=":", linewidth=1.5, label=f"median {format_number(median, 2)}")
    ax.set_xlim(0, top)
    ax.set_xlabel(f"total score (out of {format_number(top)})")
    ax.set_ylabel("students")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(frameon=False, loc="lower right", bbox_to_anchor=(1, 1), ncol=2)
    ax.set_title(f"{len(scores)} graded submissions", loc="left", fontsize=10)
    _style(ax)
    return _png(fig)


def _plot_pass_rates(ranked: list[dict]) -> bytes:
    fig = _new_figure(10, 0.42 * len(ranked) + 1.1)
    ax = fig.add_subplot()
    labels = [_label(c["name"] + (" (hidden)" if c["hidden"] else ""), 60) for c in ranked]
    rates = [c["rate"] for c in ranked]
    colours = [RED if r < 0.5 else AMBER if r < 0.8 else GREEN for r in rates]
    y = range(len(ranked))
    ax.barh(y, rates, color=colours, height=0.7)
    for i, c in enumerate(ranked):
        ax.text(c["rate"] + 0.01, i, f"{100 * c['rate']:.0f}%  ({c['passed']}/{c['n']})", va="center", fontsize=9)
    ax.set_yticks(list(y), labels, fontsize=9)
    ax.invert_yaxis()  # the worst check on top
    ax.set_xlim(0, 1.18)
    ax.set_xticks([0, 0.25, 0.5, 0.75, 1], ["0%", "25%", "50%", "75%", "100%"])
    ax.set_xlabel("students who passed")
    _style(ax)
    return _png(fig)


def _plot_metric(metric: str, values: list[tuple[str, float]], rules: list[tuple[str, dict]]) -> bytes:
    import numpy as np
    from matplotlib.ticker import MaxNLocator

    xs = [v for _, v in values]
    marks = [x for _, r in rules for x in (r.get("threshold"), r.get("fail")) if _is_number(x)]
    lo, hi = min(xs + marks), max(xs + marks)
    pad = (hi - lo) * 0.08 or abs(hi) * 0.1 or 1.0
    lo, hi = lo - pad, hi + pad
    fig = _new_figure(10, 3.2)
    ax = fig.add_subplot()
    title = f"{len(xs)} students"
    if len(rules) == 1:  # shade full credit, partial credit and no credit, and count the students in each
        rule = rules[0][1]
        t, f = rule.get("threshold"), rule.get("fail")
        if _is_number(t) and _is_number(f):
            better = bool(rule.get("higher_is_better"))
            good, bad = ((t, hi), (lo, f)) if better else ((lo, t), (f, hi))
            ax.axvspan(*good, color=GREEN, alpha=0.08, linewidth=0)
            ax.axvspan(min(t, f), max(t, f), color=AMBER, alpha=0.10, linewidth=0)
            ax.axvspan(*bad, color=RED, alpha=0.08, linewidth=0)
            full = sum((x >= t) if better else (x <= t) for x in xs)
            none = sum((x <= f) if better else (x >= f) for x in xs)
            title += f": {full} full credit, {len(xs) - full - none} partial, {none} no credit"
    ax.hist(xs, bins=np.linspace(lo, hi, 21), color="#54aeff", edgecolor="white")
    styles = ["--", ":", "-."]
    for i, (profile, rule) in enumerate(rules):
        where = f" ({profile})" if len(rules) > 1 else ""
        arrow = "\u2265" if rule.get("higher_is_better") else "\u2264"
        ax.axvline(rule["threshold"], color=GREEN, linestyle=styles[i % 3], linewidth=2, zorder=3,
                   label=f"full credit {arrow} {format_number(rule['threshold'])}{where}")
        if _is_number(rule.get("fail")):
            arrow = "\u2264" if rule.get("higher_is_better") else "\u2265"
            ax.axvline(rule["fail"], color=RED, linestyle=styles[i % 3], linewidth=2, zorder=3,
                       label=f"no credit {arrow} {format_number(rule['fail'])}{where}")
    ax.set_xlim(lo, hi)
    ax.set_xlabel(_label(metric, 80))
    ax.set_ylabel("students")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(title, loc="left", fontsize=10)
    if rules:  # above the axes, where it never hides a bar
        ax.legend(frameon=False, loc="lower right", bbox_to_anchor=(1, 1), ncol=2 * len(rules), fontsize=9)
    _style(ax)
    return _png(fig)


def _plot_diagnoses(common: list[tuple[str, int]], n_graded: int) -> bytes:
    fig = _new_figure(10, 0.55 * len(common) + 1.1)
    ax = fig.add_subplot()
    y = range(len(common))
    ax.barh(y, [n for _, n in common], color=AMBER, height=0.7)
    for i, (_, n) in enumerate(common):
        ax.text(n, i, f"  {n}", va="center", fontsize=10, fontweight="bold")
    ax.set_yticks(list(y), [_label(text, 55) for text, _ in common], fontsize=9)
    ax.invert_yaxis()
    top = max(n for _, n in common)
    ax.set_xlim(0, max(top * 1.15, top + 0.6))
    ax.set_xlabel(f"students (of {n_graded} graded)")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    _style(ax)
    return _png(fig)


def _label(text: str, width: int) -> str:
    """Wrapped, and with `$` escaped so that matplotlib never reads a label as mathtext."""
    return "\n".join(textwrap.wrap(text, width, max_lines=3, placeholder=" \u2026")).replace("$", r"\$")


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "metric"


# ---- helpers -------------------------------------------------------------------------------------------------------


def _unreadable_result(assignment: str, sub: Submission) -> dict:
    message = f"Your graded results could not be read, so no score is shown; staff will look at it ({sub.error})."
    return {
        "score": None,
        "max_score": None,
        "tests": [],
        "extra_data": {
            "assignment": assignment,
            "student": sub.student,
            "findings": [{"kind": MALFORMED, "message": message, "grade_id": None}],
        },
    }


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _write_text(path: Path, text: str) -> Path:
    return _write_bytes(path, text.encode("utf-8"))


def _write_bytes(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path
