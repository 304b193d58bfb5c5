"""The one reader of results.json: `SubmissionResult.from_dict` and `read_result` give back what `to_dict` wrote."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from autograder.errors import KitError
from autograder.results import (
    DIAGNOSIS_LABEL,
    GRADER_ERROR,
    CheckResult,
    Finding,
    MalformedResult,
    SubmissionResult,
    format_points,
    read_result,
)

FIXTURES = Path(__file__).parent / "fixtures" / "results"


def full_result() -> SubmissionResult:
    """Every field set, including the awkward ones: thirds of a point, a diagnosis, metrics, graded_with."""
    third = 1 / 3
    return SubmissionResult(
        assignment="vae",
        student="ada",
        checks=[
            CheckResult("sampling_shape: a", "sampling_shape", "a", third, third, True, "got (2, 4), as expected"),
            CheckResult("sampling_shape: b", "sampling_shape", "b", third, third, True, "ok", hidden=True),
            CheckResult(
                "sampling_shape: c",
                "sampling_shape",
                "c",
                0.0,
                third,
                False,
                "got 3, expected 4",
                diagnosis="z_log_var used as a standard deviation",
            ),
            CheckResult(
                "vae_quality: quality",
                "vae_quality",
                "quality",
                4.123456,
                6.0,
                False,
                "partial credit",
                metrics={"reconstruction_mse": 0.0172345, "kl": 12.5},
            ),
        ],
        findings=[
            Finding("locked_cell_edited", "the locked cell was edited", "setup"),
            Finding("timeout", "a cell ran too long"),
        ],
        max_score=7.0,
        execution_time=31.26,
        kit_version="0.2.0",
        notebook_sha256="ab" * 32,
        timestamp="2026-11-23T10:00:00+00:00",
        graded_with={"kit": "0.2.0+abc", "source": "1234"},
    )


def grader_error_result() -> SubmissionResult:
    return SubmissionResult("vae", "bo", [], [Finding(GRADER_ERROR, "The grader failed.")], 19.0, 0.4, "0.2.0")


@pytest.mark.parametrize("make", [full_result, grader_error_result])
def test_round_trip_keeps_every_field(make):
    written = make().to_dict()
    again = SubmissionResult.from_dict(json.loads(json.dumps(written)))
    assert again.to_dict() == written
    assert SubmissionResult.from_dict(again.to_dict()).to_dict() == written


def test_read_back_result_has_the_fields_it_was_written_with():
    original = full_result()
    again = SubmissionResult.from_dict(original.to_dict())
    assert (again.assignment, again.student, again.kit_version, again.graded_with) == (
        "vae",
        "ada",
        "0.2.0",
        {"kit": "0.2.0+abc", "source": "1234"},
    )
    assert again.findings == original.findings
    failed = again.checks[2]
    # The diagnosis comes back in its own field and no longer inside the message.
    assert failed.message == "got 3, expected 4" and failed.diagnosis == "z_log_var used as a standard deviation"
    assert [c.hidden for c in again.checks] == [False, True, False, False]
    assert again.checks[3].metrics == {"reconstruction_mse": 0.0172345, "kl": 12.5}
    assert again.score == original.to_dict()["score"]


def test_recorded_total_is_kept_not_added_up_again():
    data = full_result().to_dict()
    data["score"] = 5.5  # a total that the tests' rounded scores do not add up to
    assert SubmissionResult.from_dict(data).score == 5.5


def test_a_message_that_does_not_end_with_its_diagnosis_is_left_alone():
    data = full_result().to_dict()
    data["tests"][2]["output"] = "got 3, expected 4"
    assert SubmissionResult.from_dict(data).checks[2].message == "got 3, expected 4"
    data["tests"][2]["output"] = f"got 3{DIAGNOSIS_LABEL}something else"
    assert SubmissionResult.from_dict(data).checks[2].message == f"got 3{DIAGNOSIS_LABEL}something else"


def test_the_fixtures_read_and_write_back_unchanged():
    for student in ("ada", "bo", "cy"):
        data = json.loads((FIXTURES / f"{student}.json").read_text())
        assert read_result(FIXTURES / f"{student}.json").to_dict() == data


def test_a_minimal_gradescope_result_gets_defaults():
    result = SubmissionResult.from_dict(
        {"score": 1, "max_score": 2, "tests": [{"name": "q1: c", "score": 1, "max_score": 2}]}
    )
    check = result.checks[0]
    assert (check.grade_id, check.check, check.passed, check.message, check.hidden) == ("q1", "q1: c", False, "", False)
    assert result.findings == [] and result.graded_with is None and result.score == 1


def broken(change) -> dict:
    data = copy.deepcopy(full_result().to_dict())
    change(data)
    return data


@pytest.mark.parametrize(
    "change, reason",
    [
        (lambda d: d["tests"].__setitem__(1, None), "results.json's tests[1] holds a null, not an object"),
        (lambda d: d["tests"][0].__setitem__("name", 3), "results.json's tests[0]: 'name' is not text"),
        (lambda d: d["tests"][0].__setitem__("status", "ok"), "tests[0]: 'status' is 'ok', not 'passed' or 'failed'"),
        (lambda d: d["tests"][0].__setitem__("extra_data", []), "tests[0]: 'extra_data' is not an object"),
        (
            lambda d: d["tests"][1]["extra_data"].__setitem__("hidden", "yes"),
            "tests[1]'s extra_data: 'hidden' is not true or false",
        ),
        (
            lambda d: d["tests"][3]["extra_data"]["metrics"].__setitem__("kl", "12"),
            "tests[3]'s extra_data: metric 'kl' is not a number",
        ),
        (lambda d: d["tests"][0].__setitem__("score", float("nan")), "tests[0]: 'score' is not a number"),
        (lambda d: d["extra_data"].__setitem__("findings", {}), "extra_data: 'findings' is not a list"),
        (lambda d: d["extra_data"]["findings"][1].pop("kind"), "extra_data.findings[1] is missing the key 'kind'"),
        (lambda d: d.__setitem__("max_score", True), "results.json: 'max_score' is not a number"),
        (lambda d: d.__setitem__("execution_time", "31 s"), "results.json: 'execution_time' is not a number"),
    ],
)
def test_malformed_parts_are_named(change, reason):
    with pytest.raises(MalformedResult) as caught:
        SubmissionResult.from_dict(broken(change))
    assert reason in caught.value.reason and str(caught.value) == caught.value.reason


def test_read_result_raises_one_kit_error_that_names_the_file(tmp_path):
    missing = tmp_path / "autograded" / "ada" / "vae" / "results.json"
    with pytest.raises(MalformedResult) as caught:
        read_result(missing)
    assert isinstance(caught.value, KitError) and caught.value.path == missing
    assert str(caught.value).startswith(f"{missing} could not be read: FileNotFoundError")
    assert caught.value.reason == "results.json could not be read: FileNotFoundError"
    missing.parent.mkdir(parents=True)
    missing.write_text('{"score": 1, "max_score": 2, "tests": [3]}')
    with pytest.raises(MalformedResult, match=r"results\.json's tests\[0\] holds a number, not an object"):
        read_result(missing)


@pytest.mark.parametrize(
    "value, text",
    [
        (1 / 3, "0.33"),
        (2 / 3, "0.67"),
        (10.6849, "10.68"),
        (19.0, "19"),
        (18.9999, "19"),
        (0.005, "0.01"),
        (-0.001, "0"),
        (None, "\u2014"),
    ],
)
def test_points_are_shown_to_two_decimals(value, text):
    assert format_points(value) == text


def test_gradescope_output_line_shows_points_to_two_decimals():
    result = full_result()
    assert result.to_dict()["output"].startswith("ada: 4.79 / 7 on vae.")
