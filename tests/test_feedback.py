"""The per-student feedback page, rendered from results.json fixtures (no TensorFlow, no grading)."""

from __future__ import annotations

import copy
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from autograder.feedback import format_number, render_feedback, render_unreadable
from autograder.results import CheckResult, SubmissionResult

FIXTURES = Path(__file__).parent / "fixtures" / "results"
HOSTILE = '<script>alert("x")</script>'


def load(student: str) -> dict:
    return json.loads((FIXTURES / f"{student}.json").read_text())


class _Text(HTMLParser):
    """The visible text of a page, one string with single spaces, and every tag met."""

    def __init__(self):
        super().__init__()
        self.parts: list[str] = []
        self.tags: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self._skip += tag in ("style", "script")

    def handle_endtag(self, tag):
        self._skip -= tag in ("style", "script")

    def handle_data(self, data):
        if not self._skip:
            self.parts.append(data)


def text_of(html: str) -> tuple[str, list[str]]:
    parser = _Text()
    parser.feed(html)
    text = re.sub(r"\s+", " ", " ".join(parser.parts)).strip()
    return re.sub(r" ([),.:])", r"\1", text), parser.tags


def test_total_questions_and_checks_with_points():
    text, _ = text_of(render_feedback(load("cy")))
    assert "autoencoder: feedback for cy" in text
    assert "3.5 / 10" in text and "35%" in text
    assert "3 of 6 checks passed" in text
    # The subtotal of each question, in the order of the checks.
    assert re.search(
        r"encoder_block_tests 2 / 3 2 of 3 decoder_block_tests 1.5 / 3 1 of 2 "
        r"reconstruction_quality 0 / 4 0 of 1",
        text,
    )
    assert "failed decoder_layers got Conv2D, expected Conv2DTranspose Likely mistake: Conv2D used instead" in text
    assert "passed decoder_output_shape got (28, 28, 16), expected (28, 28, 16) 1.5 / 1.5" in text


def test_partial_credit_is_shown_as_partial():
    text, _ = text_of(render_feedback(load("bo")))
    assert "partial test_mse test_mse 0.0471: partial credit" in text
    assert "2 / 4" in text


def test_hidden_checks_are_marked_and_only_those():
    html = render_feedback(load("cy"))
    rows = re.findall(r'<tr class="check .*?</tr>', html, flags=re.S)
    assert len(rows) == 6
    marked = [r for r in rows if "hidden check" in r]
    assert len(marked) == 1 and "block_output_values" in marked[0]


def test_findings_come_first_and_stand_out():
    html = render_feedback(load("cy"))
    assert 'class="card findings"' in html
    assert html.index('id="findings"') < html.index('id="questions"')
    text, _ = text_of(html)
    assert "Please read: 1 problem with this submission Locked cell edited (cell setup)" in text
    assert 'id="findings"' not in render_feedback(load("ada"))


def test_diagnosis_is_shown_once_not_also_inside_the_message():
    html = render_feedback(load("cy"))
    assert html.count("ReLU missing after the convolution") == 1
    assert "Likely mistake: ReLU" not in html.replace("<strong>Likely mistake:</strong> ReLU", "")


def test_quality_metrics_are_listed():
    text, _ = text_of(render_feedback(load("bo")))
    assert "Quality of your trained model Check Metric Value reconstruction_quality: test_mse test_mse 0.0471" in text


@pytest.mark.parametrize(
    "where",
    ["finding", "check message", "diagnosis", "check name", "student", "metric name", "grade_id"],
)
def test_student_controlled_strings_are_escaped(where):
    result = load("cy")
    test = result["tests"][4]
    if where == "finding":
        result["extra_data"]["findings"][0]["message"] = HOSTILE
    elif where == "check message":
        test["output"] = HOSTILE
    elif where == "diagnosis":
        test["extra_data"]["diagnosis"] = HOSTILE
    elif where == "check name":
        test["name"] = test["extra_data"]["check"] = HOSTILE
    elif where == "student":
        result["extra_data"]["student"] = HOSTILE
    elif where == "metric name":
        result["tests"][5]["extra_data"]["metrics"] = {HOSTILE: 1.0}
    else:
        test["extra_data"]["grade_id"] = HOSTILE
    html = render_feedback(result)
    _, tags = text_of(html)
    assert "script" not in tags
    assert "<script" not in html
    assert "&lt;script&gt;" in html


def test_same_result_same_page_and_only_the_timestamp_differs():
    first, second = render_feedback(load("bo")), render_feedback(load("bo"))
    assert first == second
    later = load("bo")
    later["extra_data"]["timestamp"] = "2027-01-01T00:00:00+00:00"
    diff = [(a, b) for a, b in zip(first.splitlines(), render_feedback(later).splitlines()) if a != b]
    assert len(diff) == 1 and "2027-01-01" in diff[0][1]


def test_page_is_self_contained():
    html = render_feedback(load("cy"))
    assert "http://" not in html and "https://" not in html
    _, tags = text_of(html)
    assert "link" not in tags and "script" not in tags and "img" not in tags


@pytest.mark.parametrize(
    "result",
    [
        {},
        {"score": "many", "max_score": None, "tests": "none", "extra_data": []},
        {"score": 1, "max_score": 2, "tests": [None, 3, {"name": "q: c"}], "extra_data": {"findings": [None, {}]}},
    ],
)
def test_broken_results_still_render(result):
    text, _ = text_of(render_feedback(result))
    assert "\u2014 / \u2014" in text or "1 / 2" in text


def test_a_result_without_checks_says_so():
    result = copy.deepcopy(load("cy"))
    result["tests"] = []
    text, _ = text_of(render_feedback(result))
    assert "No checks ran on this submission: see the problems above." in text


@pytest.mark.parametrize(
    "value, text",
    [
        (7.5, "7.5"),
        (10.0, "10"),
        (10, "10"),
        (0.017234567, "0.0172"),
        (1 / 3, "0.3333"),
        (None, "\u2014"),
        (float("nan"), "\u2014"),
        (True, "\u2014"),
        ("3", "\u2014"),
    ],
)
def test_format_number(value, text):
    assert format_number(value) == text


def thirds_result() -> SubmissionResult:
    """A 1-point question of three checks (one failed), and a quality check with partial credit."""
    third = 1 / 3
    checks = [CheckResult(f"q1: c{i}", "q1", f"c{i}", third if i < 2 else 0.0, third, i < 2, "msg") for i in range(3)]
    checks.append(
        CheckResult(
            "quality: mse", "quality", "mse", 10.01823, 18.0, False, "partial credit", metrics={"test_mse": 0.017234567}
        )
    )
    return SubmissionResult("vae", "ada", checks, [], 19.0, 3.0, "0.2.0")


def test_points_show_two_decimals_and_metrics_keep_theirs():
    text, _ = text_of(render_feedback(thirds_result()))
    assert "10.68 / 19" in text  # the total
    assert "q1 0.67 / 1 2 of 3" in text  # the question's subtotal
    assert "passed c0 msg 0.33 / 0.33" in text and "failed c2 msg 0 / 0.33" in text
    assert "partial mse partial credit test_mse = 0.0172 10.02 / 18" in text
    assert "0.3333" not in text and "10.6849" not in text


def test_a_result_and_its_results_json_give_the_same_page():
    result = thirds_result()
    assert render_feedback(result) == render_feedback(result.to_dict())


def test_unreadable_results_page_says_why_and_shows_no_score():
    text, _ = text_of(render_unreadable("vae", "bo", "results.json is not valid JSON"))
    assert "vae: feedback for bo" in text and "\u2014 / \u2014" in text
    assert "could not be read, so no score is shown; staff will look at it (results.json is not valid JSON)" in text


def with_written_answer(answered: bool = True) -> SubmissionResult:
    from autograder.results import ManualAnswer

    result = thirds_result()
    result.manual = [ManualAnswer("explain", 2.0, answered)]
    return result


def test_a_written_answer_not_graded_yet_is_pending_and_so_is_the_total():
    text, _ = text_of(render_feedback(with_written_answer()))
    assert "explain pending / 2 Not graded yet." in text
    assert "Autograded so far: 10.68 / 19. Total pending: 1 written answer (explain) not graded yet; " in text
    assert "the assignment is out of 21" in text
    # Unanswered: worth 0 without a TA, as nbgrader decides, and the total is final.
    text, _ = text_of(render_feedback(with_written_answer(answered=False)))
    assert "explain 0 / 2 Not answered." in text and "10.68 / 21" in text and "pending" not in text


def test_the_tas_points_comments_and_scores_join_the_page():
    from autograder.reports.totals import CellGrade

    grades = {
        "explain": CellGrade(manual_score=1.5, comment="Good, but " + HOSTILE),
        "q1": CellGrade(manual_score=1.0),  # the TA gave the full point the checks did not
        "encoder_cell": CellGrade(comment="Nice use of padding."),  # a comment on a code answer cell
    }
    html = render_feedback(with_written_answer(), grades=grades)
    text, tags = text_of(html)
    assert "12.52 / 21" in text and "60%" in text  # 10.68 - 0.67 + 1 + 1.5 (as nbgrader totals the cells)
    assert (
        "Total 12.52 / 21: the autograder's 10.68 / 19 and the written answers, graded by hand, with your TA's" in text
    )
    assert "q1 1 / 1 2 of 3 (your TA's score; the autograder's: 0.67)" in text
    assert "explain 1.5 / 2 Good, but " + HOSTILE in text and "script" not in tags
    assert "Comments from your TA Cell Comment encoder_cell Nice use of padding." in text
    # Without grades the page is the autograder's alone, as before.
    assert "your TA" not in text_of(render_feedback(thirds_result()))[0]


def test_a_regrade_shows_what_changed():
    from autograder.regrade_record import Change, Regrade

    record = Regrade(
        time="2026-12-01T10:00:00+00:00",
        reason="asked by " + HOSTILE,
        old_score=9.0,
        new_score=10.68,
        max_score=19.0,
        changes=(Change("q1: c1", "changed", 0.0, 1 / 3, 1 / 3, "got 3, expected 4", "msg"),),
    )
    html = render_feedback(thirds_result(), regrades=[record])
    text, tags = text_of(html)
    assert f"Regraded 2026-12-01T10:00:00+00:00 (asked by {HOSTILE}): autograded score 9 → 10.68 / 19." in text
    assert "q1: c1 0 / 0.33 got 3, expected 4 0.33 / 0.33 msg" in text and "script" not in tags
    quiet = Regrade("2026-12-02T10:00:00+00:00", "", 10.68, 10.68, 19.0)
    text, _ = text_of(render_feedback(thirds_result(), regrades=[record, quiet]))
    assert text.index("2026-12-02") < text.index("2026-12-01")  # newest first
    assert "Regraded 2026-12-02T10:00:00+00:00: autograded score 10.68 → 10.68 / 19; no check changed." in text
