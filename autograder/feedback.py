"""Per-student feedback: one self-contained HTML page from one results.json (Gradescope's schema).

The page shows the total, a subtotal per question (grade_id), every check with its status, points, message and
diagnosis, hidden checks marked as hidden, the submission's findings (tampering, limits) at the top, and the quality
metrics. Everything a student controls (messages quote their output, findings quote their cells) is escaped by
Jinja2's autoescape. The output depends only on the result, so the same result gives the same page, byte for byte.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jinja2

TEMPLATES = Path(__file__).parent / "templates"


@functools.lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """The Jinja2 environment of the kit's templates (shared with `reports`): autoescape on, undefined names fail."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["num"] = format_number
    env.filters["percent"] = format_percent
    return env


def render_feedback(result: Mapping[str, Any]) -> str:
    """The feedback page of one graded submission, from its results.json as a dict.

    Tolerates missing or malformed parts (a result without tests, a test without extra_data): what is missing is
    shown as missing, never an exception.
    """
    return environment().get_template("feedback.html").render(**feedback_view(result))


def feedback_view(result: Mapping[str, Any]) -> dict:
    """The plain values the feedback template shows, with questions grouped in the order of their first check."""
    extra = _mapping(result.get("extra_data"))
    questions: dict[str, dict] = {}
    for test in result.get("tests") or []:
        if not isinstance(test, Mapping):
            continue
        check = check_view(test)
        question = questions.setdefault(
            check["grade_id"], {"grade_id": check["grade_id"], "checks": [], "score": 0.0, "max_score": 0.0}
        )
        question["checks"].append(check)
        question["score"] += check["score"] or 0.0
        question["max_score"] += check["max_score"] or 0.0
    for question in questions.values():
        question["passed"] = sum(c["state"] == "passed" for c in question["checks"])
        all_passed = question["passed"] == len(question["checks"])
        question["state"] = _state(question["score"], question["max_score"], all_passed)

    score, max_score = _number(result.get("score")), _number(result.get("max_score"))
    findings = [
        {
            "kind": str(f.get("kind") or "finding"),
            "title": str(f.get("kind") or "finding").replace("_", " ").capitalize(),
            "message": str(f.get("message") or ""),
            "grade_id": f.get("grade_id"),
        }
        for f in extra.get("findings") or []
        if isinstance(f, Mapping)
    ]
    checks = [c for q in questions.values() for c in q["checks"]]
    return {
        "assignment": str(extra.get("assignment") or "assignment"),
        "student": str(extra.get("student") or ""),
        "timestamp": extra.get("timestamp"),
        "kit_version": extra.get("kit_version"),
        "notebook_sha256": extra.get("notebook_sha256"),
        "execution_time": _number(result.get("execution_time")),
        "score": score,
        "max_score": max_score,
        "fraction": (score / max_score) if score is not None and max_score else None,
        "findings": findings,
        "questions": list(questions.values()),
        "metrics": [(c, name, value) for c in checks for name, value in c["metrics"]],
        "passed": sum(c["state"] == "passed" for c in checks),
        "n_checks": len(checks),
    }


def check_view(test: Mapping[str, Any]) -> dict:
    """One test of results.json as the plain values a page shows (also used by the class reports)."""
    extra = _mapping(test.get("extra_data"))
    name = str(test.get("name") or "unnamed check")
    grade_id = str(extra.get("grade_id") or name.split(":", 1)[0].strip())
    diagnosis = extra.get("diagnosis")
    message = str(test.get("output") or "")
    # results.py appends the diagnosis to the message for Gradescope; the page shows it in its own box instead.
    suffix = f"\nLikely mistake: {diagnosis}"
    if diagnosis and message.endswith(suffix):
        message = message[: -len(suffix)]
    score, max_score = _number(test.get("score")), _number(test.get("max_score"))
    passed = test.get("status") == "passed"
    metrics = _mapping(extra.get("metrics"))
    return {
        "name": name,
        "grade_id": grade_id,
        "label": str(extra.get("check") or name),
        "score": score,
        "max_score": max_score,
        "state": _state(score, max_score, passed),
        "message": message,
        "diagnosis": str(diagnosis) if diagnosis else None,
        "hidden": bool(extra.get("hidden")),
        "metrics": [(str(k), _number(v)) for k, v in sorted(metrics.items(), key=lambda kv: str(kv[0]))],
    }


def format_number(value: Any, digits: int = 4) -> str:
    """A score or metric as short text: 7.5, 10, 0.0172; missing values as an em dash."""
    number = _number(value)
    if number is None:
        return "\u2014"
    text = repr(round(number, digits))
    return text[:-2] if text.endswith(".0") else text


def format_percent(fraction: Any) -> str:
    number = _number(fraction)
    return "\u2014" if number is None else f"{100 * number:.0f}%"


def _state(score: float | None, max_score: float | None, passed: bool) -> str:
    if passed:
        return "passed"
    return "partial" if score and max_score and 0 < score < max_score else "failed"


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _mapping(value: Any) -> Mapping:
    return value if isinstance(value, Mapping) else {}
