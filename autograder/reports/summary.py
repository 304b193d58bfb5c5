"""`summary.html`: the class at a glance, one file that opens anywhere.

Its figures are embedded as base64 PNGs and also written beside it: score distribution, pass rate per check, each
quality metric against its threshold and failure level (from thresholds.json when it has them), the most frequent
diagnosed mistakes. Then the points per question, a table of findings per student and what was written to the
gradebook. Scores are shown to two decimals, metrics to four.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..feedback import environment, metric_values
from ..files import atomic_write
from . import figures as fig
from .reading import GradedSubmission, MetricRules
from .tables import ordered_union, usual_max_score, usual_max_total
from .unexplained import Unexplained


def write_summary(
    folder: Path,
    assignment: str,
    subs: Sequence[GradedSubmission],
    thresholds: MetricRules,
    gradebook: Mapping,
    *,
    unexplained: Sequence[Unexplained] = (),
    unexplained_note: str | None = None,
    more_findings: Sequence[Mapping[str, Any]] = (),
) -> list[Path]:
    """summary.html and its figures' PNGs in `folder`; returns the files written, the page first.

    `gradebook` is {"written": students written, "notes": [what went wrong]}; `unexplained`: the groups of failing
    answer cells no catalogued mistake explains (`unexplained.find_unexplained`), and why they could not be found.
    """
    view, figures = summary_view(assignment, subs, thresholds, gradebook)
    # Findings about the class rather than one file (e.g. the same weights submitted twice: reports/weights.py)
    view["findings"] = view["findings"] + [dict(f) for f in more_findings]
    view["n_with_findings"] = len({f["student"] for f in view["findings"]})
    view["unexplained"] = [_unexplained_view(g) for g in unexplained]
    view["n_unexplained"] = sum(len(g.students) for g in unexplained)
    view["unexplained_note"] = unexplained_note
    pngs = [atomic_write(folder / f["file"], f["png"]) for f in figures]
    html = environment().get_template("summary.html").render(**view)
    return [atomic_write(folder / "summary.html", html), *pngs]


def summary_view(
    assignment: str, subs: Sequence[GradedSubmission], thresholds: MetricRules, gradebook: Mapping
) -> tuple[dict, list[dict]]:
    """The values of summary.html and its figures (each with its PNG bytes)."""
    graded = [s for s in subs if s.result is not None]
    scores = [s.result.score for s in graded if s.result is not None]  # all of `graded`
    max_score = usual_max_score(graded)
    ranked = _checks_worst_first(graded)
    questions = _questions(graded)
    diagnoses: Counter[str] = Counter()
    for sub in graded:
        diagnoses.update({c.diagnosis for c in sub.checks if c.diagnosis})
    common = sorted(diagnoses.items(), key=lambda kv: (-kv[1], kv[0]))

    figures = []
    if scores:
        figures.append(
            fig.figure(
                "score-distribution",
                "Score distribution",
                fig.plot_scores(scores, max_score),
                "Total score of each graded submission; dashed: mean, dotted: median.",
            )
        )
    if ranked:
        figures.append(
            fig.figure(
                "pass-rate",
                "Pass rate per check, worst first",
                fig.plot_pass_rates(ranked),
                "Share of students who passed each check (red below 50%, amber below 80%).",
            )
        )
    for metric, values in _metric_values(graded).items():
        rules = thresholds.get(metric, [])
        what = "with its threshold (full credit) and failure level (no credit)" if rules else "(no threshold known)"
        figures.append(
            fig.figure(
                f"metric-{fig.slug(metric)}",
                f"Quality metric: {metric}",
                fig.plot_metric(metric, values, rules),
                f"{metric} of each student's trained model, {what}.",
            )
        )
    if common:
        figures.append(
            fig.figure(
                "diagnoses",
                "Most frequent diagnosed mistakes",
                fig.plot_diagnoses(common[:12], len(graded)),
                "Number of students whose submission showed each known mistake.",
            )
        )

    findings = [
        {"student": s.student, "kind": f.kind, "message": f.message, "grade_id": f.grade_id}
        for s in subs
        for f in s.findings
    ] + [{"student": s.student, "kind": "bad_timestamp", "message": n, "grade_id": None} for s in subs for n in s.notes]
    view = {
        "assignment": assignment,
        "n_students": len(subs),
        "n_graded": len(graded),
        "max_score": max_score,
        "max_total": usual_max_total(graded),  # with the written answers, which a person grades
        "mean": statistics.fmean(scores) if scores else None,
        "median": statistics.median(scores) if scores else None,
        "low": min(scores) if scores else None,
        "high": max(scores) if scores else None,
        "late": [s.student for s in subs if s.late],
        "struggles": [c for c in ranked if c["rate"] < 1][:3],
        "questions": questions,
        "checks": ranked,
        "figures": [{k: v for k, v in f.items() if k != "png"} for f in figures],
        "findings": findings,
        "n_with_findings": len({f["student"] for f in findings}),
        "diagnoses": common,
        "gradebook": gradebook,
    }
    return view, figures


def _unexplained_view(group: Unexplained) -> dict:
    return {
        "grade_id": group.grade_id,
        "students": group.students,
        "example": group.example,
        "code": group.code,
        "checks": [
            {"name": c.name, "score": c.score, "max_score": c.max_score, "message": c.message, "hidden": c.hidden}
            for c in group.checks
        ],
    }


def _checks_worst_first(graded: Sequence[GradedSubmission]) -> list[dict]:
    """Per check: how many of the students who have it passed it; lowest pass rate first, ties in check order."""
    order = ordered_union([c.name for c in s.checks] for s in graded)
    stats: dict[str, dict[str, Any]] = {name: {"name": name, "passed": 0, "n": 0, "hidden": False} for name in order}
    for sub in graded:
        for c in sub.checks:
            st = stats[c.name]
            st["n"] += 1
            st["passed"] += c.passed
            st["hidden"] |= c.hidden
    checks = [dict(st, rate=st["passed"] / st["n"]) for st in stats.values() if st["n"]]
    return sorted(checks, key=lambda c: (c["rate"], order.index(c["name"])))


def _questions(graded: Sequence[GradedSubmission]) -> list[dict]:
    """Per question (grade_id): each student's points, their mean, and the mean as a share of the points."""
    questions: dict[str, dict] = {}
    for sub in graded:
        totals: dict[str, list[float]] = {}
        for c in sub.checks:
            t = totals.setdefault(c.grade_id, [0.0, 0.0])
            t[0] += c.score
            t[1] += c.max_score
        for gid, (got, of) in totals.items():
            questions.setdefault(gid, {"grade_id": gid, "scores": [], "max_score": of})["scores"].append(got)
    rows = []
    for q in questions.values():
        mean = statistics.fmean(q["scores"])
        rows.append(dict(q, mean=mean, rate=mean / q["max_score"] if q["max_score"] else None))
    return rows


def _metric_values(graded: Sequence[GradedSubmission]) -> dict[str, list[tuple[str, float]]]:
    """metric -> [(student, value)] over every check that measured it; values that are not numbers are left out."""
    out: dict[str, list[tuple[str, float]]] = {}
    for sub in graded:
        for c in sub.checks:
            for name, value in metric_values(c):
                if value is not None:
                    out.setdefault(name, []).append((sub.student, value))
    return out
